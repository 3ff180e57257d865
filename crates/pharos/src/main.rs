//! `pharos`: network security monitoring. One binary, subcommands for the daemon and its tools.

#![forbid(unsafe_code)]

mod analyse_stage;
mod client;
mod cluster_stage;
mod cmd_anon;
mod cmd_backup;
mod cmd_cluster;
mod cmd_constituency;
mod cmd_decode;
mod cmd_detect;
mod cmd_export;
mod cmd_feeds;
mod cmd_flows;
mod cmd_parse;
mod cmd_replay;
mod cmd_rid;
mod cmd_token;
mod config;
mod datadir;
mod detect_stage;
mod flow_stage;
mod log;
mod loss_report;
mod notice_stage;
mod report_stage;
mod rid_stage;
mod run;
mod shutdown;
mod syslog_stage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pharos: collects what routers and security functions report, homogenises it into I2NSF
/// messages, stores it and serves it.
#[derive(Parser)]
#[command(name = "pharos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon (API on 127.0.0.1:8080, data in ./pharos-data unless configured).
    Run {
        /// Configuration file (default: ./pharos.toml if present, else built-in defaults).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Checks a configuration file and prints the effective configuration.
    CheckConfig {
        /// Configuration file (default: ./pharos.toml if present, else built-in defaults).
        file: Option<PathBuf>,
    },
    /// Lists, follows and acknowledges events of a running instance.
    Events {
        #[command(subcommand)]
        command: client::EventsCommand,
    },
    /// Decodes the NetFlow/IPFIX/sFlow datagrams of a pcap or pcapng capture into flows.
    Decode(cmd_decode::DecodeArgs),
    /// Runs the DDoS and scan detectors over the flows of a capture (its timestamps are the clock).
    Detect(cmd_detect::DetectArgs),
    /// Queries the flow archive (query, top, series, export) and imports captures into it.
    Flows {
        #[command(subcommand)]
        command: cmd_flows::FlowsCommand,
    },
    /// Sends the UDP datagrams of a capture to a collector, paced or as fast as possible.
    Replay(cmd_replay::ReplayArgs),
    /// The state of a scale-out cluster: nodes, roles, partitions, consumer lag, stream sizes
    /// (docs/scale-out.md).
    Cluster {
        #[command(subcommand)]
        command: cmd_cluster::ClusterCommand,
    },
    /// Creates, lists and revokes API tokens (in the data directory's auth.db).
    Token {
        #[command(subcommand)]
        command: cmd_token::TokenCommand,
    },
    /// Copies the data directory's databases, flow archive and reports into DIR, consistently,
    /// while `pharos run` runs or not (docs/operations.md).
    Backup(cmd_backup::BackupArgs),
    /// Fills a stopped daemon's data directory from a backup made by `pharos backup`.
    Restore(cmd_backup::RestoreArgs),
    /// Normalises log lines offline (syslog header + vendor normaliser), one output line per line.
    Parse(cmd_parse::ParseArgs),
    /// Crypto-PAn pseudonymisation of addresses, message JSON, captures and flow archives
    /// (docs/sharing.md).
    Anon {
        #[command(subcommand)]
        command: cmd_anon::AnonCommand,
    },
    /// RID peering (docs/rid.md): peers, incidents, traces, and decisions on pending requests.
    Rid {
        #[command(subcommand)]
        command: cmd_rid::RidCommand,
    },
    /// The constituency registry: who holds an address, AS number or domain, and whom to tell
    /// (docs/constituency.md).
    Constituency(cmd_constituency::ConstituencyArgs),
    /// Incoming feeds (docs/feeds.md): imports Shadowserver CSV reports and IntelMQ JSON events
    /// as I2NSF messages into a running Pharos.
    Feeds {
        #[command(subcommand)]
        command: cmd_feeds::FeedsCommand,
    },
}

fn main() -> ExitCode {
    // One TLS provider for the whole process (ring: no C TLS stack); the HTTP clients and the
    // TLS listeners use it. Fails only if already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run::run(config.as_deref()),
        Command::CheckConfig { file } => check_config(file.as_deref()),
        Command::Events { command } => client::events(command),
        Command::Decode(args) => cmd_decode::decode(args),
        Command::Detect(args) => cmd_detect::detect(args),
        Command::Replay(args) => cmd_replay::replay(args),
        Command::Flows { command } => cmd_flows::flows(command),
        Command::Parse(args) => cmd_parse::parse_cmd(args),
        Command::Anon { command } => cmd_anon::anon(command),
        Command::Rid { command } => cmd_rid::rid(command),
        Command::Constituency(args) => cmd_constituency::constituency(args),
        Command::Feeds { command } => cmd_feeds::feeds(command),
        Command::Cluster { command } => cmd_cluster::cluster(command),
        Command::Token { command } => cmd_token::token(command),
        Command::Backup(args) => cmd_backup::backup(args),
        Command::Restore(args) => cmd_backup::restore(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // errors quote inputs (files, answers, addresses): no raw control character reaches
            // the terminal, line breaks of multi-line messages stay
            let text = format!("{e:#}");
            let shown: Vec<_> = text.lines().map(pharos_model::text::printable).collect();
            eprintln!("pharos: {}", shown.join("\n"));
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (cfg, origin) = config::Config::load(file)?;
    for d in &cfg.deprecations {
        eprintln!("pharos: warning: {origin}: {d}");
    }
    println!("# {origin}: ok. Effective configuration:");
    print!("{}", toml::to_string_pretty(&cfg)?);
    // The optional stages: absent, they do not run (docs/config.md).
    for (section, present) in [
        ("detect", cfg.detect.is_some()),
        ("notify", cfg.notify.is_some()),
        ("state", cfg.state.is_some()),
    ] {
        if !present {
            println!(
                "# [{section}] absent: that stage does not run (an empty [{section}] runs it with the defaults)"
            );
        }
    }
    Ok(())
}
