//! `pharos anon`: Crypto-PAn pseudonymisation offline (docs/sharing.md). `addr` maps plain
//! addresses, one per argument or stdin line, so anyone can check vectors or map a list; `json`
//! maps every address of JSON documents (I2NSF messages, exports), one per line. The key comes
//! from `--key-file` or `--key-hex` (or `PHAROS_ANON_KEY_HEX`) and is never printed.

use std::io::{BufRead, BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use pharos_anon::{CryptoPan, Key, anonymize_json};

/// Where the key comes from: exactly one of the two.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct KeyArgs {
    /// The 32-byte key as 64 hex digits, optionally 0x-prefixed (nfanon's -K form). Prefer
    /// --key-file or the environment: command lines are visible to other local users.
    #[arg(long, env = "PHAROS_ANON_KEY_HEX", hide_env_values = true)]
    key_hex: Option<String>,
    /// A file holding the key: 32 raw bytes, or 64 hex digits.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

impl KeyArgs {
    fn anonymiser(&self) -> anyhow::Result<CryptoPan> {
        let key = match (&self.key_hex, &self.key_file) {
            (Some(hex), _) => Key::from_hex(hex).context("--key-hex")?,
            (None, Some(path)) => Key::from_file(path)?,
            (None, None) => anyhow::bail!("give the key with --key-hex or --key-file"),
        };
        Ok(CryptoPan::new(&key))
    }
}

/// `pharos anon` subcommands.
#[derive(Subcommand)]
pub enum AnonCommand {
    /// Maps addresses (or prefixes such as 192.0.2.0/24), given as arguments or one per line on
    /// stdin, one pseudonym per line out. IPv4 takes the 32-bit path, anything written in IPv6
    /// form (::ffff:a.b.c.d included) the 128-bit path.
    Addr {
        #[command(flatten)]
        key: KeyArgs,
        /// Map pseudonyms back to the original addresses (needs the same key).
        #[arg(long)]
        reverse: bool,
        /// Addresses; none reads standard input.
        addrs: Vec<String>,
    },
    /// Replaces every IP address and prefix string of JSON documents (one per line, e.g. the
    /// output of `pharos parse --json` or `pharos events list --json`) by its pseudonym.
    Json {
        #[command(flatten)]
        key: KeyArgs,
        /// Input file; "-" or nothing reads standard input.
        file: Option<PathBuf>,
    },
}

/// Runs `pharos anon`.
pub fn anon(command: AnonCommand) -> anyhow::Result<()> {
    match command {
        AnonCommand::Addr {
            key,
            reverse,
            addrs,
        } => {
            let cp = key.anonymiser()?;
            let map = |s: &str| -> Option<String> {
                if reverse {
                    s.parse::<IpAddr>()
                        .ok()
                        .map(|a| cp.deanonymize(a).to_string())
                } else {
                    cp.anonymize_text(s)
                }
            };
            let what = if reverse {
                "an IP address"
            } else {
                "an IP address or prefix"
            };
            if addrs.is_empty() {
                each_line(None, |line| {
                    map(line).ok_or_else(|| format!("{line:?} is not {what}"))
                })
            } else {
                let mut out = BufWriter::new(std::io::stdout().lock());
                let mut bad = 0;
                for (i, a) in addrs.iter().enumerate() {
                    match map(a.trim()) {
                        Some(m) => writeln!(out, "{m}")?,
                        None => {
                            bad += 1;
                            eprintln!("argument {}: {a:?} is not {what}", i + 1);
                        }
                    }
                }
                out.flush()?;
                anyhow::ensure!(
                    bad == 0,
                    "{bad} of {} arguments were not mapped",
                    addrs.len()
                );
                Ok(())
            }
        }
        AnonCommand::Json { key, file } => {
            let cp = key.anonymiser()?;
            each_line(file, |line| {
                let mut doc: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
                anonymize_json(&cp, &mut doc);
                Ok(doc.to_string())
            })
        }
    }
}

/// Maps each non-blank line of `file` (stdin if none or "-") to one output line; a line that
/// fails is reported on stderr with its number and skipped, and the run fails at the end.
fn each_line(
    file: Option<PathBuf>,
    mut map: impl FnMut(&str) -> Result<String, String>,
) -> anyhow::Result<()> {
    let input: Box<dyn BufRead> = match file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut bad, mut total) = (0usize, 0usize);
    for (n, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        total += 1;
        match map(line) {
            Ok(m) => writeln!(out, "{m}")?,
            Err(why) => {
                bad += 1;
                out.flush()?;
                eprintln!("line {}: {}", n + 1, pharos_model::text::printable(&why));
            }
        }
    }
    out.flush()?;
    anyhow::ensure!(bad == 0, "{bad} of {total} lines were not mapped");
    Ok(())
}
