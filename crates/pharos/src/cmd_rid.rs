//! `pharos rid`: the RID peers and incidents of the running daemon, and the analyst's actions
//! (start a trace from a DDoS event, send a peer an InvestigationRequest, a Report or a Query,
//! approve or deny a pending request), through its API (`/api/v1/rid/...`, docs/rid.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use pharos_model::text::{json_safe, printable};
use serde_json::Value;

/// `pharos rid` subcommands.
#[derive(Subcommand)]
pub enum RidCommand {
    /// Lists the configured peers, their policy and open incidents.
    Peers {
        #[command(flatten)]
        conn: RidConn,
    },
    /// Lists RID incidents, newest first.
    Incidents {
        #[command(flatten)]
        conn: RidConn,
        /// Only this status (received, pending-approval, approved, sent, relayed, denied,
        /// answered, closed).
        #[arg(long)]
        status: Option<String>,
        /// Only open incidents.
        #[arg(long)]
        open: bool,
        /// Only incidents this peer took part in.
        #[arg(long)]
        peer: Option<String>,
        /// How many to list.
        #[arg(long, short = 'n', default_value_t = 50)]
        limit: usize,
    },
    /// Shows one incident with its messages (`--json` includes the XML bodies).
    Show {
        /// The incident's id.
        id: i64,
        #[command(flatten)]
        conn: RidConn,
    },
    /// Starts a TraceRequest for a stored DDoS event to the peers its traffic entered through.
    Trace {
        /// The DDoS event's id (`pharos events list --kind ddos`).
        event: u64,
        #[command(flatten)]
        conn: RidConn,
    },
    /// Sends a peer believed to host the source an InvestigationRequest for a stored DDoS event;
    /// prints its answer (a Result, or Acknowledgement Pending or Denied).
    Investigate {
        /// The DDoS event's id (`pharos events list --kind ddos`).
        event: u64,
        /// The peer (`pharos rid peers`).
        #[arg(long)]
        peer: String,
        #[command(flatten)]
        conn: RidConn,
    },
    /// Sends a peer a Report (IODEF) of a stored DDoS event; prints its answer.
    Report {
        /// The DDoS event's id (`pharos events list --kind ddos`).
        event: u64,
        /// The peer (`pharos rid peers`).
        #[arg(long)]
        peer: String,
        #[command(flatten)]
        conn: RidConn,
    },
    /// Asks a peer about an incident (or about the incidents it shares with us); prints its
    /// answer (a Report, or Acknowledgement Denied).
    Query {
        /// The peer (`pharos rid peers`).
        #[arg(long)]
        peer: String,
        /// The IncidentID, `NAME:NUMBER#INSTANCE` as `pharos rid incidents` prints it.
        #[arg(long)]
        incident: Option<String>,
        #[command(flatten)]
        conn: RidConn,
    },
    /// Approves a request waiting for an analyst.
    Approve {
        /// The incident's id.
        id: i64,
        #[command(flatten)]
        conn: RidConn,
    },
    /// Denies a request waiting for an analyst (the requester gets Acknowledgement Denied).
    Deny {
        /// The incident's id.
        id: i64,
        #[command(flatten)]
        conn: RidConn,
    },
}

/// Where the running instance is.
#[derive(Args, Clone)]
pub struct RidConn {
    /// Base URL of the Pharos API (default: the address in `<data_dir>/api.addr` of the
    /// configuration, else its `[api] listen`).
    #[arg(long, env = "PHAROS_URL")]
    url: Option<String>,
    /// Configuration file to find the API from (default: ./pharos.toml if present).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// API token (`phr_...`); reads need viewer, actions analyst.
    #[arg(long, env = "PHAROS_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl RidConn {
    fn base(&self) -> anyhow::Result<String> {
        if let Some(u) = self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            return Ok(u.trim_end_matches('/').to_string());
        }
        let (cfg, _) = crate::config::Config::load(self.config.as_deref())?;
        let scheme = if cfg.api.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let addr = std::fs::read_to_string(cfg.store.data_dir.join("api.addr"))
            .ok()
            .and_then(|t| t.trim().parse::<std::net::SocketAddr>().ok())
            .unwrap_or(cfg.api.listen);
        let ip = if addr.ip().is_unspecified() {
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        } else {
            addr.ip()
        };
        Ok(format!(
            "{scheme}://{}",
            std::net::SocketAddr::new(ip, addr.port())
        ))
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        let base = self.base()?;
        let mut rb = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?
            .request(method, format!("{base}{path}"));
        if let Some(t) = self
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.with_context(|| {
            format!("cannot reach the Pharos API at {base}; is `pharos run` running?")
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!(
                "{status}: {}",
                body["error"]
                    .as_str()
                    .unwrap_or("the API refused the request")
            );
        }
        Ok(body)
    }
}

/// A string field of an API answer, escaped for the terminal: peers' names, incident ids and
/// justifications come from the network.
fn text(v: &Value) -> std::borrow::Cow<'_, str> {
    printable(v.as_str().unwrap_or(""))
}

/// Prints what a peer answered: JSON with `--json`, else one line (and the XML of a Report).
fn print_sent(v: &Value, json: bool) {
    if json {
        println!("{}", json_safe(&v.to_string()));
        return;
    }
    let mut line = format!(
        "{} to {}: answered {}",
        text(&v["msg-type"]),
        text(&v["peer"]),
        text(&v["answer"])
    );
    for (key, label) in [("status", ""), ("justification", "justification ")] {
        if let Some(x) = v[key].as_str() {
            line.push_str(&format!(" {label}{}", printable(x)));
        }
    }
    if let Some(f) = v["source-found"].as_bool() {
        line.push_str(&format!(", source found: {f}"));
    }
    if let Some(i) = v["incident"].as_i64() {
        line.push_str(&format!(" (incident {i})"));
    }
    println!("{line}");
    if v["answer"] == "Report"
        && let Some(b) = v["body"].as_str()
    {
        for l in b.lines() {
            println!("{}", printable(l));
        }
    }
}

/// `s` escaped for a URL path segment or query value.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn print_incidents(items: &[Value]) {
    println!(
        "{:>5}  {:<36} {:<9} {:<17} {:<14} path",
        "id", "incident", "direction", "status", "origin"
    );
    for i in items {
        let path: Vec<std::borrow::Cow<'_, str>> = i["sp-path"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(printable).collect())
            .unwrap_or_default();
        println!(
            "{:>5}  {:<36} {:<9} {:<17} {:<14} {}",
            i["id"],
            text(&i["incident-id"]),
            text(&i["direction"]),
            text(&i["status"]),
            text(&i["origin-peer"]),
            path.join(" > ")
        );
    }
}

/// Runs a `pharos rid` subcommand.
pub fn rid(cmd: RidCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use reqwest::Method;
        match cmd {
            RidCommand::Peers { conn } => {
                let v = conn.call(Method::GET, "/api/v1/rid/peers").await?;
                if conn.json {
                    println!("{}", json_safe(&v.to_string()));
                    return Ok(());
                }
                println!("{:<14} {:<40} {:>5} policy", "peer", "url", "open");
                for p in v["peers"].as_array().into_iter().flatten() {
                    println!(
                        "{:<14} {:<40} {:>5} auto_approve={} auto_trace={}",
                        text(&p["name"]),
                        text(&p["url"]),
                        p["open-incidents"],
                        p["auto-approve"],
                        p["auto-trace"]
                    );
                }
            }
            RidCommand::Incidents {
                conn,
                status,
                open,
                peer,
                limit,
            } => {
                let mut q = format!("/api/v1/rid/incidents?limit={limit}");
                if let Some(s) = status {
                    q.push_str(&format!("&status={s}"));
                }
                if open {
                    q.push_str("&open=true");
                }
                if let Some(p) = peer {
                    q.push_str(&format!("&peer={p}"));
                }
                let v = conn.call(Method::GET, &q).await?;
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if conn.json {
                    for i in items {
                        println!("{}", json_safe(&i.to_string()));
                    }
                } else {
                    print_incidents(&items);
                }
            }
            RidCommand::Show { id, conn } => {
                let v = conn
                    .call(Method::GET, &format!("/api/v1/rid/incidents/{id}"))
                    .await?;
                if conn.json {
                    println!("{}", json_safe(&v.to_string()));
                    return Ok(());
                }
                print_incidents(std::slice::from_ref(&v));
                println!();
                for m in v["messages"].as_array().into_iter().flatten() {
                    println!(
                        "  {} {:<3} {:<8} {:<20} HTTP {}",
                        text(&m["at"]),
                        text(&m["direction"]),
                        text(&m["peer"]),
                        text(&m["msg-type"]),
                        m["http-status"]
                    );
                }
            }
            RidCommand::Trace { event, conn } => {
                let v = conn
                    .call(Method::POST, &format!("/api/v1/rid/trace/{event}"))
                    .await?;
                println!("{}", json_safe(&v.to_string()));
            }
            RidCommand::Investigate { event, peer, conn } => {
                let v = conn
                    .call(
                        Method::POST,
                        &format!("/api/v1/rid/peers/{}/investigate/{event}", escape(&peer)),
                    )
                    .await?;
                print_sent(&v, conn.json);
            }
            RidCommand::Report { event, peer, conn } => {
                let v = conn
                    .call(
                        Method::POST,
                        &format!("/api/v1/rid/peers/{}/report/{event}", escape(&peer)),
                    )
                    .await?;
                print_sent(&v, conn.json);
            }
            RidCommand::Query {
                peer,
                incident,
                conn,
            } => {
                let mut path = format!("/api/v1/rid/peers/{}/query", escape(&peer));
                if let Some(i) = incident {
                    path.push_str(&format!("?incident={}", escape(&i)));
                }
                let v = conn.call(Method::POST, &path).await?;
                print_sent(&v, conn.json);
            }
            RidCommand::Approve { id, conn } => {
                let v = conn
                    .call(Method::POST, &format!("/api/v1/rid/incidents/{id}/approve"))
                    .await?;
                println!("{}", json_safe(&v.to_string()));
            }
            RidCommand::Deny { id, conn } => {
                let v = conn
                    .call(Method::POST, &format!("/api/v1/rid/incidents/{id}/deny"))
                    .await?;
                println!("{}", json_safe(&v.to_string()));
            }
        }
        Ok(())
    })
}
