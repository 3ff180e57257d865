//! `pharos events`: a client of a running instance's API, with tables for people and `--json`
//! (one message per line) for scripts.

use std::path::PathBuf;
use std::time::Duration;

use pharos_model::text::{json_safe, printable};

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
    /// Acknowledges an event (recorded with your token's name).
    Ack {
        /// The event's id.
        id: u64,
        /// Why, or what was done (printable text, at most 1024 bytes).
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Exports events for sharing: IODEF v2, IntelMQ, ECS, CSV or a MISP feed (docs/exports.md).
    Export(Box<crate::cmd_export::ExportArgs>),
}

/// Where the running instance is.
#[derive(Args, Clone)]
pub struct Conn {
    /// Base URL of the Pharos API (default: the address in `<data_dir>/api.addr` of the
    /// configuration, else its `[api] listen`).
    #[arg(long, env = "PHAROS_URL")]
    url: Option<String>,
    /// Configuration file to find the API from (default: ./pharos.toml if present).
    #[arg(long, short)]
    config: Option<PathBuf>,
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

    /// The API's base URL and where it was found: `--url`/`PHAROS_URL`, else the running
    /// daemon's `api.addr` in the configuration's data directory, else `[api] listen`.
    fn base(&self) -> anyhow::Result<(String, String)> {
        if let Some(u) = self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            return Ok((u.trim_end_matches('/').to_string(), "--url".into()));
        }
        let (cfg, origin) = crate::config::Config::load(self.config.as_deref())?;
        let scheme = if cfg.api.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let file = cfg.store.data_dir.join("api.addr");
        let (addr, from) = match std::fs::read_to_string(&file) {
            Ok(t) => {
                let a: std::net::SocketAddr = t.trim().parse().with_context(|| {
                    format!(
                        "{} does not hold an address; is it a Pharos data directory?",
                        file.display()
                    )
                })?;
                (a, file.display().to_string())
            }
            Err(_) => (cfg.api.listen, format!("[api] listen of {origin}")),
        };
        // A daemon listening on every address is reached on the loopback one.
        let ip = match addr.ip() {
            std::net::IpAddr::V4(v) if v.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(v) if v.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let addr = std::net::SocketAddr::new(ip, addr.port());
        Ok((format!("{scheme}://{addr}"), from))
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
    /// How many messages to fetch (`-n`).
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

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
        let conn = match &cmd {
            EventsCommand::List(a) => &a.conn,
            EventsCommand::Tail { filter, .. } => &filter.conn,
            EventsCommand::Ack { conn, .. } => conn,
            EventsCommand::Export(a) => &a.filter.conn,
        };
        let http = conn.http()?;
        let (base, from) = conn.base()?;
        eprintln!(
            "pharos: connecting to {} (from {})",
            printable(&base),
            printable(&from)
        );
        match cmd {
            EventsCommand::List(args) => {
                let mut items = fetch(&http, &base, &args, args.limit, None).await?;
                items.truncate(args.limit);
                print_items(&items, args.conn.json, true);
                Ok(())
            }
            EventsCommand::Tail { filter, interval } => tail(&http, &base, &filter, interval).await,
            EventsCommand::Export(args) => crate::cmd_export::run(&http, &base, *args).await,
            EventsCommand::Ack { id, comment, conn } => {
                let url = format!("{base}/api/v1/events/{id}/ack");
                let mut req = http.post(&url);
                if let Some(c) = comment {
                    req = req.json(&serde_json::json!({ "comment": c }));
                }
                let v = send(req, &url).await?;
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
    let reason = || printable(body["error"].as_str().unwrap_or("(no reason given)")).into_owned();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!(
            "{url} answered {status}: {}; pass a token with --token or PHAROS_TOKEN (`pharos token create`)",
            reason()
        );
    }
    if !status.is_success() {
        bail!("{url} answered {status}: {}", reason());
    }
    Ok(body)
}

/// Fetches up to `want` items following cursors.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    base: &str,
    args: &ListArgs,
    want: usize,
    after_id: Option<u64>,
) -> anyhow::Result<Vec<Value>> {
    let url = format!("{base}/api/v1/messages");
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

async fn tail(
    http: &reqwest::Client,
    base: &str,
    args: &ListArgs,
    interval: f64,
) -> anyhow::Result<()> {
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
    let mut last = fetch(http, base, &all, 100, None)
        .await?
        .iter()
        .map(id_of)
        .max()
        .unwrap_or(0);
    eprintln!("following messages stored after id {last} (Ctrl-C stops)");
    let mut header = true;
    loop {
        tokio::time::sleep(interval).await;
        let mut fresh = fetch(http, base, args, 10_000, Some(last)).await?;
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

/// Widths of the event table's fixed columns (ID, TIME (UTC), SEVERITY, KIND, NSF, STATE,
/// DURATION); SUMMARY takes the rest of [`TABLE_WIDTH`] and wraps onto further lines.
const COLS: [usize; 7] = [7, 19, 8, 14, 16, 6, 8];
/// The width the event table fits in.
const TABLE_WIDTH: usize = 120;
/// Most lines one summary wraps onto before it is cut (the whole text is in `--json`).
const SUMMARY_LINES: usize = 3;

fn print_items(items: &[Value], json: bool, header: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut lines = Vec::new();
    if json {
        for v in items {
            lines.push(json_safe(&v.to_string()).into_owned());
        }
    } else {
        if header {
            lines.push(row(
                [
                    "ID",
                    "TIME (UTC)",
                    "SEVERITY",
                    "KIND",
                    "NSF",
                    "STATE",
                    "DURATION",
                ],
                "SUMMARY",
            ));
        }
        for v in items {
            lines.push(item_row(v));
        }
    }
    for l in lines {
        // a closed pipe (`| head`) ends the listing quietly
        if writeln!(out, "{l}").is_err() {
            return;
        }
    }
}

/// One event as table text: every field from the network escaped, fitted to its column.
fn item_row(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("-");
    let time = s("event-time")
        .chars()
        .take(19)
        .collect::<String>()
        .replace('T', " ");
    let state = match s("state") {
        "acknowledged" => "acked",
        st => st,
    };
    let duration = duration(&v["notification"]);
    let (id, sev, kind, nsf) = (
        printable(s("id")),
        printable(s("severity")),
        printable(s("kind")),
        printable(s("nsf-name")),
    );
    row(
        [&id, &time, &sev, &kind, &nsf, state, &duration],
        &printable(&summary(v)),
    )
}

/// The fixed columns (each cut to its width with `…`) and the summary, wrapped under its column.
fn row(cols: [&str; 7], summary: &str) -> String {
    let mut line = String::new();
    for (text, w) in cols.iter().zip(COLS) {
        line.push_str(&fit(text, w));
        line.push(' ');
    }
    let indent = line.chars().count();
    let width = TABLE_WIDTH.saturating_sub(indent).max(20);
    let chars: Vec<char> = summary.chars().collect();
    let mut pieces: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
    if pieces.len() > SUMMARY_LINES {
        pieces.truncate(SUMMARY_LINES);
        if let Some(last) = pieces.last_mut() {
            last.pop();
            last.push('…');
        }
    }
    let mut pieces = pieces.into_iter();
    line.push_str(&pieces.next().unwrap_or_default());
    for p in pieces {
        line.push('\n');
        line.push_str(&" ".repeat(indent));
        line.push_str(&p);
    }
    line.trim_end().to_string()
}

/// `text` padded or cut (with `…`) to `w` characters.
fn fit(text: &str, w: usize) -> String {
    let n = text.chars().count();
    if n <= w {
        format!("{text:<w$}")
    } else {
        text.chars().take(w - 1).chain(['…']).collect()
    }
}

/// How long an attack lasted (`1h02m`, `5m03s`, `42s`), `ongoing` while it has no end, `-` for
/// events that have no start time.
fn duration(notification: &Value) -> String {
    let time = |k: &str| {
        find_key(notification, k)
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let Some(start) = time("start-time") else {
        return "-".into();
    };
    let Some(end) = time("end-time") else {
        return "ongoing".into();
    };
    let secs = (end - start).num_seconds().max(0);
    match secs {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// The first value under a key named `key` (with or without a module prefix), depth first.
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    for (k, x) in o {
        if k == key || k.rsplit(':').next() == Some(key) {
            return Some(x);
        }
    }
    o.values().find_map(|x| find_key(x, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_escape_network_text_and_fit_the_width() {
        let v = serde_json::json!({
            "id": "7", "event-time": "2026-12-07T07:52:35Z", "severity": "high",
            "kind": "system-event", "nsf-name": "fw\u{0}\u{1b}[2Jevil-name-that-is-long", "state": "open",
            "notification": {"m:e": {"message": format!("Failed \u{1b}]0;PWNED\u{7} {}", "x".repeat(200))}},
        });
        let text = item_row(&v);
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && pharos_model::text::is_unsafe_char(c)),
            "{text}"
        );
        assert!(text.contains("\\x1b]0;PWNED\\x07"), "{text}");
        for l in text.lines() {
            assert!(
                l.chars().count() <= TABLE_WIDTH,
                "{} columns: {l}",
                l.chars().count()
            );
        }
        assert_eq!(text.lines().count(), SUMMARY_LINES);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn ddos_events_show_their_duration() {
        let n = |end: Option<&str>| {
            let mut d = serde_json::json!({"start-time": "2026-12-07T07:00:00Z"});
            if let Some(e) = end {
                d["end-time"] = e.into();
            }
            serde_json::json!({"m:i2nsf-event": {"i2nsf-nsf-detection-ddos": d}})
        };
        assert_eq!(duration(&n(None)), "ongoing");
        assert_eq!(duration(&n(Some("2026-12-07T07:05:03Z"))), "5m03s");
        assert_eq!(duration(&n(Some("2026-12-07T08:02:00Z"))), "1h02m");
        assert_eq!(duration(&serde_json::json!({"m:e": {"message": "x"}})), "-");
    }
}
