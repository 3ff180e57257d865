//! `pharos token`: creates, lists and revokes API tokens in the data directory's `auth.db`
//! directly, so it works whether or not the daemon runs (a running daemon sees the change on the
//! next request).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use pharos_api::auth::tokens::parse_expiry;
use pharos_api::auth::{Role, TokenError, TokenStore};

use crate::config::Config;

/// `pharos token` subcommands.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Creates a token and prints its secret once on stdout.
    Create {
        /// viewer, analyst, admin or nsf.
        #[arg(long)]
        role: String,
        /// Name shown in lists and logs (letters, digits, '.', '_', '-').
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 30d, 12h, 15m (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
        /// Role nsf only: store what it pushes under this NSF name, whatever the documents say.
        #[arg(long)]
        nsf: Option<String>,
        /// Configuration file (its [store] data_dir holds auth.db).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Lists tokens (never their secrets).
    List {
        /// Configuration file (its [store] data_dir holds auth.db).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print JSON, one token per line.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a token: it is refused from its next request on. The last active admin token is
    /// kept unless --force: without one, nobody can manage tokens through the API.
    Revoke {
        /// The token's name.
        name: String,
        /// Revoke it even if it is the last active admin token (then only this command and
        /// `pharos token create` can make new tokens).
        #[arg(long)]
        force: bool,
        /// Configuration file (its [store] data_dir holds auth.db).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Opens (creating the data directory and auth.db if needed) the token database, for `create`.
fn open(config: Option<&std::path::Path>) -> anyhow::Result<TokenStore> {
    let (cfg, _) = Config::load(config)?;
    if let Some(pg) = &cfg.postgres {
        return TokenStore::open_postgres(pg, &cfg.api.token)
            .context("cannot open the token store in PostgreSQL ([postgres])");
    }
    let dir = &cfg.store.data_dir;
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the data directory {} ([store] data_dir); check permissions",
            dir.display()
        )
    })?;
    let path = dir.join("auth.db");
    TokenStore::open(&path, &cfg.api.token)
        .with_context(|| format!("cannot open the token database {}", path.display()))
}

/// Opens the token database only if it exists, for `list` and `revoke`: they never create the
/// data directory or auth.db. Without auth.db, `list` still shows the configured tokens
/// (`[[api.token]]`) when there are some; otherwise the error says how to get a database.
fn open_existing(
    config: Option<&std::path::Path>,
    configured_suffice: bool,
) -> anyhow::Result<TokenStore> {
    let (cfg, _) = Config::load(config)?;
    if let Some(pg) = &cfg.postgres {
        return TokenStore::open_postgres(pg, &cfg.api.token)
            .context("cannot open the token store in PostgreSQL ([postgres])");
    }
    let path = cfg.store.data_dir.join("auth.db");
    match TokenStore::open_existing(&path, &cfg.api.token)
        .with_context(|| format!("cannot open the token database {}", path.display()))?
    {
        Some(t) => Ok(t),
        None if configured_suffice && !cfg.api.token.is_empty() => {
            eprintln!(
                "no token database at {}: only the tokens of the configuration ([[api.token]]) are listed",
                path.display()
            );
            Ok(TokenStore::in_memory(&cfg.api.token)?)
        }
        None => anyhow::bail!(
            "no token database at {}; start `pharos run` once, or create a token with `pharos token create` ([store] data_dir decides where)",
            path.display()
        ),
    }
}

/// Runs a `token` subcommand.
pub fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            role,
            name,
            expires,
            nsf,
            config,
        } => {
            let role = Role::parse(&role)
                .with_context(|| format!("--role {role:?} is not a role; use {}", Role::ALL))?;
            let expires = match expires.as_deref() {
                None => None,
                Some(s) => Some(parse_expiry(s).with_context(|| {
                    format!("--expires {s:?} is not a duration; use one like 30d, 12h, 15m or 90s")
                })?),
            };
            let secret =
                open(config.as_deref())?.create_bound(&name, role, expires, nsf.as_deref())?;
            match &nsf {
                Some(n) => eprintln!(
                    "token {name:?} ({role}, pushes stored as NSF {n:?}) created; it is shown only once:"
                ),
                None => eprintln!("token {name:?} ({role}) created; it is shown only once:"),
            }
            println!("{secret}");
            Ok(())
        }
        TokenCommand::List { config, json } => {
            let list = open_existing(config.as_deref(), true)?.list()?;
            if json {
                for t in &list {
                    println!("{}", serde_json::to_string(t)?);
                }
                return Ok(());
            }
            println!(
                "{:<24} {:<8} {:<8} {:<20} {:<20} {:<20} NSF",
                "NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "LAST USED"
            );
            let t = |d: Option<chrono::DateTime<chrono::Utc>>| {
                d.map_or("-".to_string(), |d| {
                    d.format("%Y-%m-%d %H:%M:%S").to_string()
                })
            };
            for x in list {
                let state = if x.revoked {
                    "revoked"
                } else if x.expires.is_some_and(|e| e <= chrono::Utc::now()) {
                    "expired"
                } else if x.source == "config" {
                    "config"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<8} {:<8} {:<20} {:<20} {:<20} {}",
                    x.name,
                    x.role.name(),
                    state,
                    t(x.created),
                    t(x.expires),
                    t(x.last_used),
                    x.nsf.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        TokenCommand::Revoke {
            name,
            force,
            config,
        } => {
            match open_existing(config.as_deref(), false)?.revoke(&name, force) {
                Ok(()) => {}
                Err(e @ TokenError::LastAdmin(_)) => {
                    anyhow::bail!("{e}; or pass --force to revoke it anyway")
                }
                Err(e) => return Err(e.into()),
            }
            if force {
                eprintln!("token {name:?} revoked (--force)");
            } else {
                eprintln!("token {name:?} revoked");
            }
            Ok(())
        }
    }
}
