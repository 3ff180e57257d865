//! `pharos events`: a client of a running instance's API, with tables for people and `--json`
//! (one message per line) for scripts.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// Event kinds listed by default (alarms and events, not logs or counters).
const EVENT_KINDS: &str = "system-alarm,system-event,traffic-flows,session-table,ddos,virus,intrusion,web-attack,voip-vocn,botnet";

/// `pharos events` subcommands.
#[derive(Subcommand)]
pub enum EventsCommand {
    /// Lists stored events, newest first.
    List(ListArgs),
    /// Prints new events as they arrive (polls the API).
    Tail {
        #[command(flatten)]
        filter: ListArgs,
        /// Seconds between polls.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Acknowledges an event.
    Ack {
        /// The event's id.
        id: u64,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Where the running instance is.
#[derive(Args, Clone)]
pub struct Conn {
    /// Base URL of the Pharos API.
    #[arg(long, env = "PHAROS_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Print JSON (one message per line) instead of a table.
    #[arg(long)]
    json: bool,
    /// API token (`phr_...`), sent as `Authorization: Bearer`; see `pharos token create`.
    #[arg(long, env = "PHAROS_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Conn {
    /// An HTTP client that sends the token, if any, with every request.
    fn http(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = self
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
                .context("--token / PHAROS_TOKEN holds characters not allowed in a header")?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        Ok(reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()?)
    }
}

/// Filters of `events list` and `events tail`.
#[derive(Args, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    conn: Conn,
    /// Comma-separated kinds (default: all alarm and event kinds; `all` for logs too).
    #[arg(long)]
    kind: Option<String>,
    /// Minimum severity: info, low, middle, high, critical.
    #[arg(long)]
    severity: Option<String>,
    /// State: open, acknowledged, closed.
    #[arg(long)]
    state: Option<String>,
    /// NSF name.
    #[arg(long)]
    nsf: Option<String>,
    /// Source or destination address or prefix.
    #[arg(long)]
    addr: Option<String>,
    /// Rule name.
    #[arg(long)]
    rule: Option<String>,
    /// Substring of the message text.
    #[arg(long)]
    text: Option<String>,
    /// Event time from (RFC 3339, `now`, `-1h`, ...).
    #[arg(long)]
    from: Option<String>,
    /// Event time to.
    #[arg(long)]
    to: Option<String>,
    /// How many to list.
    #[arg(long, short = 'n', default_value_t = 50)]
    limit: usize,
}

impl ListArgs {
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        match self.kind.as_deref() {
            None => p.push(("kind", EVENT_KINDS.to_string())),
            Some("all") => {}
            Some(k) => p.push(("kind", k.to_string())),
        }
        for (name, v) in [
            ("severity", &self.severity),
            ("state", &self.state),
            ("nsf", &self.nsf),
            ("addr", &self.addr),
            ("rule", &self.rule),
            ("text", &self.text),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = v {
                p.push((name, v.clone()));
            }
        }
        p
    }
}

/// Runs an `events` subcommand.
pub fn events(cmd: EventsCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let http = match &cmd {
            EventsCommand::List(a) => a.conn.http()?,
            EventsCommand::Tail { filter, .. } => filter.conn.http()?,
            EventsCommand::Ack { conn, .. } => conn.http()?,
        };
        match cmd {
            EventsCommand::List(args) => {
                let mut items = fetch(&http, &args, args.limit, None).await?;
                items.truncate(args.limit);
                print_items(&items, args.conn.json, true);
                Ok(())
            }
            EventsCommand::Tail { filter, interval } => tail(&http, &filter, interval).await,
            EventsCommand::Ack { id, conn } => {
                let url = format!("{}/api/v1/events/{id}/ack", conn.url.trim_end_matches('/'));
                let v = send(http.post(&url), &url).await?;
                print_items(&[v], conn.json, false);
                Ok(())
            }
        }
    })
}

async fn send(req: reqwest::RequestBuilder, url: &str) -> anyhow::Result<Value> {
    let resp = req.send().await.with_context(|| {
        format!("cannot reach Pharos at {url}; is `pharos run` running? set --url or PHAROS_URL")
    })?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .with_context(|| format!("{url} answered {status} with a body that is not JSON"))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!(
            "{url} answered {status}: {}; pass a token with --token or PHAROS_TOKEN (`pharos token create`)",
            body["error"].as_str().unwrap_or("(no reason given)")
        );
    }
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            body["error"].as_str().unwrap_or("(no reason given)")
        );
    }
    Ok(body)
}

/// Fetches up to `want` items following cursors.
async fn fetch(
    http: &reqwest::Client,
    args: &ListArgs,
    want: usize,
    after_id: Option<u64>,
) -> anyhow::Result<Vec<Value>> {
    let url = format!("{}/api/v1/messages", args.conn.url.trim_end_matches('/'));
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    while out.len() < want {
        let mut params = args.params();
        params.push(("limit", (want - out.len()).min(1000).to_string()));
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        if let Some(a) = after_id {
            params.push(("after_id", a.to_string()));
        }
        let page = send(http.get(&url).query(&params), &url).await?;
        if let Some(items) = page["items"].as_array() {
            out.extend(items.iter().cloned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    Ok(out)
}

async fn tail(http: &reqwest::Client, args: &ListArgs, interval: f64) -> anyhow::Result<()> {
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    let id_of = |v: &Value| {
        v["id"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Start after the highest id among the latest stored messages of any kind (ids grow with every
    // insert); then print every matching message stored later, whatever its event time, in
    // arrival order.
    let all = ListArgs {
        kind: Some("all".into()),
        severity: None,
        state: None,
        ..args.clone()
    };
    let mut last = fetch(http, &all, 100, None)
        .await?
        .iter()
        .map(id_of)
        .max()
        .unwrap_or(0);
    eprintln!("following messages stored after id {last} (Ctrl-C stops)");
    let mut header = true;
    loop {
        tokio::time::sleep(interval).await;
        let mut fresh = fetch(http, args, 10_000, Some(last)).await?;
        if fresh.is_empty() {
            continue;
        }
        fresh.sort_by_key(id_of);
        last = fresh.iter().map(id_of).max().unwrap_or(last);
        print_items(&fresh, args.conn.json, header);
        header = false;
    }
}

fn summary(v: &Value) -> String {
    let n = &v["notification"];
    let body = n
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(m) = body["message"].as_str() {
        return m.to_string();
    }
    // No free text: show the case's own leaves briefly.
    let case = body.as_object().and_then(|o| {
        o.iter()
            .find(|(_, v)| v.is_object())
            .map(|(_, v)| v.clone())
    });
    match case.and_then(|c| c.as_object().cloned()) {
        Some(o) => o
            .iter()
            .filter(|(_, v)| !v.is_object())
            .take(4)
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    k.rsplit(':').next().unwrap_or(k),
                    v.to_string().trim_matches('"')
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    }
}

fn print_items(items: &[Value], json: bool, header: bool) {
    if json {
        for v in items {
            println!("{v}");
        }
        return;
    }
    if header {
        println!(
            "{:<8} {:<20} {:<8} {:<22} {:<18} {:<12} SUMMARY",
            "ID", "EVENT TIME", "SEVERITY", "KIND", "NSF", "STATE"
        );
    }
    for v in items {
        let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
        let time = s("event-time")
            .chars()
            .take(19)
            .collect::<String>()
            .replace('T', " ");
        let mut sum = summary(v);
        if sum.chars().count() > 80 {
            sum = sum.chars().take(77).collect::<String>() + "...";
        }
        println!(
            "{:<8} {:<20} {:<8} {:<22} {:<18} {:<12} {}",
            s("id"),
            time,
            s("severity"),
            s("kind"),
            s("nsf-name"),
            v["state"].as_str().unwrap_or("-"),
            sum
        );
    }
}
