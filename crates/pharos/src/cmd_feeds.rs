//! `pharos feeds import`: early warning from outside (docs/feeds.md). Shadowserver CSV reports
//! and IntelMQ JSON events are normalised by `pharos-feeds` into I2NSF messages and pushed to
//! the running daemon's push API (`POST /api/v1/push`), so they are stored, routed to
//! constituents and sent to subscribers exactly like the events of our own devices: the daemon
//! owns the message store (the data directory is locked while it runs) and the push path is the
//! one that stores durably before answering. `--json` prints the messages instead (offline).

use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use pharos_feeds::{Format, Options};
use pharos_model::text::printable;

/// `pharos feeds` subcommands.
#[derive(Subcommand)]
pub enum FeedsCommand {
    /// Normalises feed files into I2NSF messages and pushes them to a running Pharos (or prints
    /// them with --json). Prints the rows imported and skipped per file; a skipped row is
    /// reported with its file:line and the reason.
    Import(ImportArgs),
}

/// `pharos feeds import` arguments.
#[derive(Args)]
pub struct ImportArgs {
    /// The feed format: shadowserver (CSV report) or intelmq (JSON events, one per line).
    #[arg(long)]
    format: Format,
    /// Shadowserver report type (scan_ntp, scan_dns, event4_sinkhole_http, blocklist, ...);
    /// default: from the file name (2026-12-01-scan_ntp-...csv).
    #[arg(long)]
    report: Option<String>,
    /// Print the messages as YANG-JSON, one per line, instead of pushing them.
    #[arg(long)]
    json: bool,
    /// Base URL of the Pharos API (default: `<data_dir>/api.addr` of the configuration, else
    /// its `[api] listen`).
    #[arg(long, env = "PHAROS_URL")]
    url: Option<String>,
    /// API token allowed to push (`pharos token create`).
    #[arg(long, env = "PHAROS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Configuration file to find the API from (default: ./pharos.toml if present).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Messages per push request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Feed files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Runs `pharos feeds`.
pub fn feeds(cmd: FeedsCommand) -> anyhow::Result<()> {
    match cmd {
        FeedsCommand::Import(a) => import(a),
    }
}

/// Where pushes go.
struct Target {
    url: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Target {
    fn new(a: &ImportArgs) -> anyhow::Result<Self> {
        let base = match a.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let (cfg, origin) = crate::config::Config::load(a.config.as_deref())?;
                let scheme = if cfg.api.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                let file = cfg.store.data_dir.join("api.addr");
                let addr: std::net::SocketAddr = match std::fs::read_to_string(&file) {
                    Ok(t) => t
                        .trim()
                        .parse()
                        .with_context(|| format!("{} does not hold an address", file.display()))?,
                    Err(_) => {
                        eprintln!(
                            "pharos feeds: no {}; using [api] listen of {origin}",
                            file.display()
                        );
                        cfg.api.listen
                    }
                };
                let ip = match addr.ip() {
                    std::net::IpAddr::V4(v) if v.is_unspecified() => {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    }
                    std::net::IpAddr::V6(v) if v.is_unspecified() => {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    }
                    ip => ip,
                };
                format!("{scheme}://{}", std::net::SocketAddr::new(ip, addr.port()))
            }
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = a.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
                .context("--token / PHAROS_TOKEN holds characters not allowed in a header")?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .default_headers(headers)
            .build()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            url: format!("{base}/api/v1/push"),
            client,
            rt,
        })
    }

    /// Pushes NDJSON documents; the daemon answers once they are durable.
    fn push(&self, docs: &[String]) -> anyhow::Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let body = docs.join("\n");
        let url = &self.url;
        self.rt.block_on(async {
            let resp = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .body(body)
                .send()
                .await
                .with_context(|| {
                    format!(
                        "cannot reach Pharos at {url}; is `pharos run` running? set --url or PHAROS_URL, or use --json"
                    )
                })?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
                bail!(
                    "{url} answered {status}: {}; pass a token allowed to push with --token or PHAROS_TOKEN (`pharos token create`)",
                    printable(&text)
                );
            }
            if !status.is_success() {
                bail!("{url} answered {status}: {}", printable(&text));
            }
            Ok(())
        })
    }
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    let target = if a.json { None } else { Some(Target::new(&a)?) };
    let batch = a.batch.clamp(1, 10_000);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut total_in, mut total_skip) = (0u64, 0u64);
    for file in &a.files {
        let shown = file.display().to_string();
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {shown}"))?;
        let opts = Options {
            report: a.report.clone(),
            file_name: shown.clone(),
        };
        let mut pending: Vec<String> = Vec::new();
        let mut failure: Option<anyhow::Error> = None;
        let (mut imported, mut skipped) = (0u64, 0u64);
        let mut shown_skips = 0u32;
        let summary = pharos_feeds::import(a.format, BufReader::new(f), &opts, |line, r| {
            if failure.is_some() {
                return;
            }
            // a message the push API would refuse is skipped here, so one row cannot fail a batch
            let r = r.and_then(|m| {
                let doc = pharos_model::json::encode(&m);
                pharos_model::json::decode_ingest(&doc)
                    .map(|_| doc.to_string())
                    .map_err(|e| format!("not a valid I2NSF message: {e}"))
            });
            match r {
                Ok(doc) => {
                    imported += 1;
                    pending.push(doc);
                }
                Err(why) => {
                    skipped += 1;
                    shown_skips += 1;
                    if shown_skips <= 100 {
                        eprintln!("{shown}:{line}: skipped: {}", printable(&why));
                    } else if shown_skips == 101 {
                        eprintln!("{shown}: more rows skipped; not shown");
                    }
                }
            }
            if pending.len() >= batch {
                let r = match &target {
                    Some(t) => t.push(&pending),
                    None => write_docs(&mut out, &pending),
                };
                pending.clear();
                if let Err(e) = r {
                    failure = Some(e);
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e.context(format!(
                "{shown}: stopped after {imported} rows; rows pushed before stay stored"
            )));
        }
        match &target {
            Some(t) => t.push(&pending)?,
            None => write_docs(&mut out, &pending)?,
        }
        debug_assert_eq!(summary.imported + summary.skipped, imported + skipped);
        eprintln!(
            "{shown}: {imported} rows imported, {skipped} skipped{}",
            if target.is_some() { " (pushed)" } else { "" }
        );
        total_in += imported;
        total_skip += skipped;
    }
    out.flush()?;
    if a.files.len() > 1 {
        eprintln!("total: {total_in} rows imported, {total_skip} skipped");
    }
    Ok(())
}

fn write_docs(out: &mut impl Write, docs: &[String]) -> anyhow::Result<()> {
    for d in docs {
        writeln!(out, "{d}")?;
    }
    Ok(())
}
