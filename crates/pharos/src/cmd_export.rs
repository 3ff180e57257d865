//! `pharos events export`: fetches the events matching the `events list` filters from a running
//! instance and writes them as IODEF v2, IntelMQ JSON, ECS NDJSON, CSV or a MISP feed directory
//! (docs/exports.md), optionally pseudonymised with Crypto-PAn under a local key file (the key
//! never leaves this machine).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use pharos_export::{ExportOptions, Format, Restriction};
use pharos_model::Message;
use serde_json::Value;

use crate::client::ListArgs;

/// Arguments of `pharos events export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Format: iodef2, intelmq, ecs, csv or misp (a directory: needs --out DIR).
    #[arg(long, value_parser = parse_format)]
    pub format: Format,
    /// Crypto-PAn key file (32 bytes, raw or hex, as `pharos anon` takes): every address in the
    /// export, in fields and in texts, is pseudonymised.
    #[arg(long)]
    pub anon_key_file: Option<PathBuf>,
    /// Output file (a directory for misp); default standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Our instance name, ideally the CSIRT's FQDN (IODEF IncidentID name, MISP UUID namespace).
    #[arg(long, env = "PHAROS_EXPORT_INSTANCE", default_value = "pharos")]
    pub instance: String,
    /// Our organisation (IODEF creator contact, MISP Orgc, IntelMQ feed.provider).
    #[arg(long, env = "PHAROS_EXPORT_ORG", default_value = "Pharos")]
    pub org: String,
    /// Our contact e-mail, written in the IODEF creator contact.
    #[arg(long, env = "PHAROS_EXPORT_EMAIL")]
    pub contact_email: Option<String>,
    /// TLP restriction of the incidents: white (clear), green, amber or red.
    #[arg(long, default_value = "amber", value_parser = parse_tlp)]
    pub tlp: Restriction,
    /// Which events (the filters of `pharos events list`; raise -n to export more than 50).
    #[command(flatten)]
    pub filter: ListArgs,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).map_err(|e| e.to_string())
}

fn parse_tlp(s: &str) -> Result<Restriction, String> {
    Restriction::parse(s).ok_or_else(|| format!("expected white, green, amber or red, got {s:?}"))
}

/// The messages of API items (`MessageView`s): their YANG-JSON notifications decoded.
fn messages(items: &[Value]) -> anyhow::Result<Vec<Message>> {
    items
        .iter()
        .map(|it| {
            let mut m = pharos_model::json::decode(&it["notification"])
                .with_context(|| format!("message {} from the API does not decode", it["id"]))?;
            if m.common.id.is_none() {
                m.common.id = it["id"].as_str().and_then(|s| s.parse().ok());
            }
            Ok(m)
        })
        .collect()
}

/// Runs `pharos events export` against the API at `base`.
pub async fn run(http: &reqwest::Client, base: &str, args: ExportArgs) -> anyhow::Result<()> {
    if args.format == Format::Misp && args.out.is_none() {
        bail!("--format misp writes a directory: give it with --out DIR");
    }
    let pan = match &args.anon_key_file {
        Some(p) => Some(pharos_anon::CryptoPan::new(
            &pharos_anon::Key::from_file(p)
                .with_context(|| format!("--anon-key-file {}", p.display()))?,
        )),
        None => None,
    };
    let anon = |a: std::net::IpAddr| match &pan {
        Some(p) => p.anonymize(a),
        None => a,
    };
    let items = crate::client::fetch(http, base, &args.filter, args.filter.limit(), None).await?;
    let msgs = messages(&items)?;
    let mut opts = ExportOptions::new(args.instance.clone());
    opts.organisation = args.org.clone();
    opts.contact_email = args.contact_email.clone();
    opts.restriction = args.tlp;
    if pan.is_some() {
        opts.anon = Some(&anon);
    }
    match (args.format, &args.out) {
        (Format::Misp, Some(dir)) => {
            pharos_export::write_misp_feed(dir, &msgs, &opts)?;
            eprintln!(
                "pharos: wrote a MISP feed of {} events to {}",
                msgs.len(),
                dir.display()
            );
        }
        (f, Some(file)) => {
            let mut out = std::fs::File::create(file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            pharos_export::export(f, &msgs, &opts, &mut out)?;
            eprintln!(
                "pharos: wrote {} events as {} to {}",
                msgs.len(),
                f.as_str(),
                file.display()
            );
        }
        (f, None) => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            pharos_export::export(f, &msgs, &opts, &mut lock)?;
            lock.flush()?;
        }
    }
    Ok(())
}
