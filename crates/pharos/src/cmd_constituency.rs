//! `pharos constituency`: the constituency registry offline (docs/constituency.md). `import`
//! replaces one source's automatic data from a CSV file or a RIPE split set, `list` shows the
//! organisations, `lookup` answers who holds an address, an AS number or a domain, `set` and
//! `remove` edit the manual layer. The database is `--db`, else `[constituency] db` of the
//! configuration, else `constituency.db` in the data directory.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use pharos_constituency::{
    Contact, Interval, Match, Organisation, Policy, Query, Registry, Suppression,
};
use pharos_model::Severity;
use pharos_model::text::printable;

/// `pharos constituency` and its options.
#[derive(clap::Args)]
pub struct ConstituencyArgs {
    /// The registry's database (default: `[constituency] db` of the configuration, else
    /// constituency.db in the data directory).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Configuration file (default: ./pharos.toml if present).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: ConstituencyCommand,
}

/// `pharos constituency` subcommands.
#[derive(Subcommand)]
enum ConstituencyCommand {
    /// Replaces the automatic data of one source by a CSV file or a RIPE split set, in one
    /// transaction (a failed import changes nothing). The manual layer is kept.
    Import {
        /// A CSV file (columns in docs/constituency.md).
        #[arg(long, required_unless_present = "ripe", conflicts_with = "ripe")]
        csv: Option<PathBuf>,
        /// A directory of RIPE split files (ripe.db.inetnum, ripe.db.inet6num,
        /// ripe.db.aut-num, ripe.db.organisation, ripe.db.role).
        #[arg(long)]
        ripe: Option<PathBuf>,
        /// The source name whose data is replaced (default: csv or ripe).
        #[arg(long)]
        source: Option<String>,
        /// Prints the import report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lists the organisations (manual layer first) with the size of their holdings.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Who holds an address (longest prefix), an AS number (AS64500) or a domain (exact or
    /// parent), and whom to tell.
    Lookup {
        /// Addresses, AS numbers or domains.
        #[arg(required = true)]
        queries: Vec<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Adds to (or creates) an organisation of the manual layer: it survives imports and wins
    /// over imported data for the same prefix or organisation id.
    Set(Box<SetArgs>),
    /// Removes an organisation of the manual layer.
    Remove {
        /// Its id.
        org: String,
    },
}

/// `pharos constituency set`.
#[derive(clap::Args)]
struct SetArgs {
    /// Organisation id (an imported id overrides that organisation's name and contacts).
    #[arg(long)]
    org: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// ISO 3166 two-letter country code.
    #[arg(long)]
    country: Option<String>,
    /// A prefix it holds (repeatable).
    #[arg(long = "prefix")]
    prefixes: Vec<String>,
    /// An AS number it holds, 64500 or AS64500 (repeatable).
    #[arg(long = "asn")]
    asns: Vec<String>,
    /// A domain it holds (repeatable).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// The contact's mail address.
    #[arg(long)]
    contact_mail: Option<String>,
    /// The contact's webhook URL.
    #[arg(long)]
    contact_webhook: Option<String>,
    /// The contact's name.
    #[arg(long, default_value = "")]
    contact_name: String,
    /// The contact's role.
    #[arg(long, default_value = "abuse")]
    role: String,
    /// immediate, hourly or daily.
    #[arg(long, default_value = "daily")]
    interval: String,
    /// Minimum severity: info, low, middle, high, critical.
    #[arg(long, default_value = "low")]
    min_severity: String,
    /// An event kind wanted (repeatable; none: all).
    #[arg(long = "kind")]
    kinds: Vec<String>,
    /// A taxonomy type wanted, e.g. availability/ddos (repeatable; none: all).
    #[arg(long = "taxonomy")]
    taxonomies: Vec<String>,
    /// Suppress events of this kind (repeatable).
    #[arg(long)]
    suppress_kind: Vec<String>,
    /// Suppress events whose source is in this prefix (repeatable).
    #[arg(long)]
    suppress_source: Vec<String>,
    /// Suppress events touching this prefix (repeatable).
    #[arg(long)]
    suppress_address: Vec<String>,
    /// Language of the notices (BCP 47).
    #[arg(long, default_value = "en")]
    language: String,
    /// Show other parties' addresses in clear in the notices (default: pseudonymised).
    #[arg(long)]
    no_anonymise: bool,
}

/// Runs `pharos constituency`.
pub fn constituency(args: ConstituencyArgs) -> anyhow::Result<()> {
    let path = db_path(args.db, args.config.as_deref())?;
    let reads = matches!(
        args.command,
        ConstituencyCommand::List { .. } | ConstituencyCommand::Lookup { .. }
    );
    anyhow::ensure!(
        !reads || path.exists(),
        "no constituency registry at {}: import one first (pharos constituency import --csv FILE or --ripe DIR), or give --db",
        path.display()
    );
    let mut reg = Registry::open(&path)?;
    match args.command {
        ConstituencyCommand::Import {
            csv,
            ripe,
            source,
            json,
        } => {
            let report = match (csv, ripe) {
                (Some(f), _) => reg.import_csv(&f, source.as_deref().unwrap_or("csv"))?,
                (None, Some(d)) => reg.import_ripe(&d, source.as_deref().unwrap_or("ripe"))?,
                (None, None) => anyhow::bail!("give --csv FILE or --ripe DIR"),
            };
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "source {}: {} organisations, {} prefixes, {} AS numbers, {} domains, {} contacts ({} records read, {} skipped, {} over-long lines)",
                    printable(&report.source),
                    report.organisations,
                    report.prefixes,
                    report.asns,
                    report.domains,
                    report.contacts,
                    report.records,
                    report.skipped,
                    report.long_lines
                );
            }
            for w in &report.warnings {
                eprintln!("pharos: warning: {}", printable(w));
            }
            Ok(())
        }
        ConstituencyCommand::List { json } => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            let list = reg.summaries()?;
            if !json {
                writeln!(
                    out,
                    "{:<9} {:<10} {:<24} {:<32} {:<2} {:>8} {:>5} {:>7} {:>8}",
                    "LAYER",
                    "SOURCE",
                    "ID",
                    "NAME",
                    "CC",
                    "PREFIXES",
                    "ASNS",
                    "DOMAINS",
                    "CONTACTS"
                )?;
            }
            for s in list {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&s)?)?;
                } else {
                    writeln!(
                        out,
                        "{:<9} {:<10} {:<24} {:<32} {:<2} {:>8} {:>5} {:>7} {:>8}",
                        s.layer.as_str(),
                        printable(&s.source),
                        printable(&s.id),
                        printable(&s.name),
                        printable(&s.country),
                        s.prefixes,
                        s.asns,
                        s.domains,
                        s.contacts
                    )?;
                }
            }
            out.flush()?;
            Ok(())
        }
        ConstituencyCommand::Lookup { queries, json } => {
            let table = reg.prefix_table()?;
            let mut out = BufWriter::new(std::io::stdout().lock());
            let mut bad = 0;
            for q in &queries {
                let query = match Query::parse(q) {
                    Ok(query) => query,
                    Err(e) => {
                        bad += 1;
                        eprintln!("pharos: {}", printable(&e.to_string()));
                        continue;
                    }
                };
                let m = reg.lookup(&table, &query)?;
                if json {
                    let v = serde_json::json!({ "query": q, "match": m });
                    writeln!(out, "{v}")?;
                } else {
                    show(&mut out, q, m.as_ref())?;
                }
            }
            out.flush()?;
            anyhow::ensure!(
                bad == 0,
                "{bad} of {} queries were not understood",
                queries.len()
            );
            Ok(())
        }
        ConstituencyCommand::Set(s) => {
            let org = organisation(&s)?;
            reg.upsert_manual(&org)?;
            println!("manual organisation {} set", printable(&s.org));
            Ok(())
        }
        ConstituencyCommand::Remove { org } => {
            anyhow::ensure!(
                reg.remove_manual(&org)?,
                "no manual organisation {:?} (see pharos constituency list)",
                printable(&org)
            );
            println!("manual organisation {} removed", printable(&org));
            Ok(())
        }
    }
}

fn show(out: &mut impl Write, q: &str, m: Option<&Match>) -> std::io::Result<()> {
    let Some(m) = m else {
        return writeln!(out, "{}: no organisation", printable(q));
    };
    let o = &m.organisation;
    let via = match &m.matched {
        pharos_constituency::MatchedBy::Prefix(p) => format!("prefix {p}"),
        pharos_constituency::MatchedBy::Asn(n) => format!("AS{n}"),
        pharos_constituency::MatchedBy::Domain(d) => format!("domain {d}"),
    };
    writeln!(
        out,
        "{}: {} ({}, {}) [{}, source {}] by {}",
        printable(q),
        printable(&o.id),
        printable(&o.name),
        printable(&o.country),
        o.layer.as_str(),
        printable(&o.source),
        printable(&via)
    )?;
    for c in &m.contacts {
        let to: Vec<&str> = c
            .mail
            .iter()
            .chain(c.webhook.iter())
            .map(String::as_str)
            .collect();
        writeln!(
            out,
            "  {} {} {} ({}, min {}, {}, {})",
            printable(&c.role),
            printable(&to.join(" ")),
            printable(&c.name),
            c.policy.interval.as_str(),
            c.policy.min_severity.as_str(),
            printable(&c.policy.language),
            if c.policy.anonymise {
                "anonymised"
            } else {
                "in clear"
            }
        )?;
    }
    Ok(())
}

fn organisation(s: &SetArgs) -> anyhow::Result<Organisation> {
    let mut o = Organisation::manual(&s.org);
    o.name = s.name.clone().unwrap_or_default();
    o.country = s.country.clone().unwrap_or_default().to_ascii_uppercase();
    for p in &s.prefixes {
        o.prefixes.push(
            p.parse().with_context(|| {
                format!("--prefix {p:?}: expected a prefix such as 192.0.2.0/24")
            })?,
        );
    }
    for a in &s.asns {
        let n = match Query::parse(a) {
            Ok(Query::Asn(n)) => n,
            _ => anyhow::bail!("--asn {a:?}: expected an AS number such as 64500 or AS64500"),
        };
        o.asns.push(n);
    }
    for d in &s.domains {
        match Query::parse(d) {
            Ok(Query::Domain(d)) => o.domains.push(d),
            _ => anyhow::bail!("--domain {d:?}: expected a domain such as example.org"),
        }
    }
    let has_contact = s.contact_mail.is_some() || s.contact_webhook.is_some();
    if has_contact {
        let net = |flag: &str, p: &String| -> anyhow::Result<pharos_constituency::IpNet> {
            p.parse::<pharos_constituency::IpNet>()
                .or_else(|_| {
                    p.parse::<std::net::IpAddr>()
                        .map(pharos_constituency::IpNet::from)
                })
                .with_context(|| format!("{flag} {p:?}: expected an address or prefix"))
        };
        let mut suppress: Vec<Suppression> = s
            .suppress_kind
            .iter()
            .map(|k| Suppression::Kind(k.clone()))
            .collect();
        for p in &s.suppress_source {
            suppress.push(Suppression::Source(net("--suppress-source", p)?));
        }
        for p in &s.suppress_address {
            suppress.push(Suppression::Address(net("--suppress-address", p)?));
        }
        o.contacts.push(Contact {
            name: s.contact_name.clone(),
            role: s.role.clone(),
            mail: s.contact_mail.clone(),
            webhook: s.contact_webhook.clone(),
            policy: Policy {
                interval: Interval::parse(&s.interval).with_context(|| {
                    format!(
                        "--interval {:?}: expected immediate, hourly or daily",
                        s.interval
                    )
                })?,
                kinds: s.kinds.clone(),
                taxonomies: s.taxonomies.clone(),
                min_severity: Severity::parse(&s.min_severity).with_context(|| {
                    format!(
                        "--min-severity {:?}: expected info, low, middle, high or critical",
                        s.min_severity
                    )
                })?,
                suppress,
                language: s.language.clone(),
                anonymise: !s.no_anonymise,
            },
        });
    }
    Ok(o)
}

/// `--db`, else `[constituency] db` of the configuration (`--config`, else ./pharos.toml when
/// present), else `constituency.db` in the configuration's `[store] data_dir` (./pharos-data).
fn db_path(db: Option<PathBuf>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(db) = db {
        return Ok(db);
    }
    let file = match config {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("pharos.toml")).filter(|p| p.exists()),
    };
    let mut data_dir = PathBuf::from("./pharos-data");
    if let Some(file) = file {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("config error: {}", file.display()))?;
        if let Some(section) = table.get("constituency") {
            let cfg: pharos_constituency::ConstituencyConfig = section
                .clone()
                .try_into()
                .with_context(|| format!("config error: {}: [constituency]", file.display()))?;
            if let Some(db) = cfg.db {
                return Ok(db);
            }
        }
        if let Some(d) = table
            .get("store")
            .and_then(|s| s.get("data_dir"))
            .and_then(|d| d.as_str())
        {
            data_dir = PathBuf::from(d);
        }
    }
    Ok(data_dir.join("constituency.db"))
}
