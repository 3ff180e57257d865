//! `pharos cluster`: the state of a scale-out cluster as NATS JetStream holds it (nodes and their
//! roles, partitions and who owns them, consumer lag, stream sizes), and which partition an
//! address falls in. Reads the `[cluster]` section of the configuration; needs no running node.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;

/// `pharos cluster` subcommands.
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Nodes, roles, partitions with their owner and consumer lag, stream and bucket sizes.
    Status {
        /// Configuration file with the [cluster] section.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The partition (and subject) of a destination address: which analyser sees its traffic.
    Partition {
        /// The address, IPv4 or IPv6.
        addr: std::net::IpAddr,
        /// Configuration file with the [cluster] section.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Runs a `pharos cluster` subcommand.
pub fn cluster(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Status { config, json } => {
            let cfg = cluster_config(config.as_deref())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let status = rt.block_on(async {
                let cluster = pharos_cluster::Cluster::connect(&cfg)
                    .await
                    .with_context(|| {
                        format!("cannot connect to NATS at {}", cfg.nats.join(", "))
                    })?;
                pharos_cluster::status::status(&cluster)
                    .await
                    .context("reading the cluster's state from JetStream")
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
            Ok(())
        }
        ClusterCommand::Partition { addr, config } => {
            let cfg = cluster_config(config.as_deref())?;
            let p = pharos_cluster::partition::Partitioner::from_config(&cfg).of_addr(addr);
            println!(
                "{addr}: partition {p} of {} (subject {})",
                cfg.partitions,
                pharos_cluster::partition::subject(p)
            );
            Ok(())
        }
    }
}

fn cluster_config(path: Option<&std::path::Path>) -> anyhow::Result<pharos_cluster::ClusterConfig> {
    let (cfg, origin) = Config::load(path)?;
    cfg.cluster.ok_or_else(|| {
        anyhow::anyhow!(
            "{origin} has no [cluster] section: this is a single node (docs/scale-out.md)"
        )
    })
}
