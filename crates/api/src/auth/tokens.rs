//! API tokens: random secrets printed once (`phr_` + 64 hex digits), stored only as SHA-256 hashes
//! in `<data_dir>/auth.db` (SQLite, WAL), or in the shared PostgreSQL database of a cluster
//! (`pharos_tokens`, [`TokenStore::open_postgres`]), or given in the configuration as
//! `[[api.token]]`.
//!
//! Contract: [`TokenStore::lookup`] reads the database on every call, so a token revoked by the
//! API or by `pharos token revoke` (another process, another node of a cluster) is refused on its
//! next use. `last_used` is written at most once a minute per token (per process). A token of
//! role `nsf` may be bound to an NSF name: what it pushes is then stored under that name,
//! whatever the documents say. Both engines answer alike (the tests run one body on each).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pharos_model::text::{IdentifierError, check_identifier, printable};
use pharos_store_pg::{PgError, PostgresConfig, migrations::TableConnection};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{Role, TokenConfig};

mod pg;

/// The prefix of every token secret.
pub const PREFIX: &str = "phr_";

/// Seconds between two `last_used` writes of one token.
const LAST_USED_EVERY: i64 = 60;

/// A token management error.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name is empty, too long or has characters other than letters, digits, `.`, `_`, `-`.
    #[error(
        "token name {0:?} is not valid: use 1 to 64 letters, digits, '.', '_' or '-', e.g. \"grafana\""
    )]
    InvalidName(String),
    /// The name is empty, too long, or holds a control or invisible character (said which, where).
    #[error(
        "token name {name} {reason}; use 1 to 64 letters, digits, '.', '_' or '-', e.g. \"grafana\""
    )]
    UnsafeName {
        /// The name as given, escaped for display.
        name: String,
        /// What is wrong with it.
        reason: IdentifierError,
    },
    /// A token of that name exists (possibly revoked).
    #[error("a token named {0:?} exists already; choose another name")]
    Exists(String),
    /// No token of that name.
    #[error("no token named {0:?}; see `pharos token list`")]
    NotFound(String),
    /// Revoking the token would leave no active admin token, so nobody could manage tokens.
    #[error(
        "token {0:?} is the last active admin token: revoking it would leave nobody able to manage tokens; create another admin token first (`pharos token create --role admin --name NAME`, or POST /api/v1/tokens with role admin)"
    )]
    LastAdmin(String),
    /// The token is defined in the configuration.
    #[error(
        "token {0:?} is defined in the configuration ([[api.token]]); remove it there and restart"
    )]
    FromConfig(String),
    /// A `[[api.token]]` entry is wrong.
    #[error("[[api.token]] {0}")]
    Config(String),
    /// An NSF binding that cannot be made.
    #[error("{0}")]
    Binding(String),
    /// The database failed.
    #[error("token database: {0}")]
    Db(#[from] DbError),
}

/// A failure of the token database's engine.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite (`auth.db`).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL (the cluster's shared database); the message names the server, never the
    /// password.
    #[error(transparent)]
    Postgres(#[from] PgError),
}

impl From<rusqlite::Error> for TokenError {
    fn from(e: rusqlite::Error) -> Self {
        TokenError::Db(DbError::Sqlite(e))
    }
}

impl From<PgError> for TokenError {
    fn from(e: PgError) -> Self {
        TokenError::Db(DbError::Postgres(e))
    }
}

/// Why a presented token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token has this secret.
    Unknown,
    /// The token expired.
    Expired,
    /// The token was revoked.
    Revoked,
}

impl Refusal {
    /// The metric label and the reason sent to the client.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
        }
    }
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was created (`None` for configured tokens).
    pub created: Option<DateTime<Utc>>,
    /// When it expires, if ever.
    pub expires: Option<DateTime<Utc>>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When it was last used (to the minute).
    pub last_used: Option<DateTime<Utc>>,
    /// `database` or `config`.
    pub source: &'static str,
    /// The NSF its pushes are stored under, if it is bound to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsf: Option<String>,
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The NSF its pushes are stored under, if it is bound to one.
    pub nsf: Option<String>,
    /// When it expires, if ever.
    pub expires: Option<DateTime<Utc>>,
}

struct Configured {
    name: String,
    role: Role,
    hash: [u8; 32],
    nsf: Option<String>,
}

/// Checks an NSF binding: only `nsf` tokens, a name that passes [`check_identifier`].
fn check_binding(role: Role, nsf: Option<&str>) -> Result<(), String> {
    let Some(n) = nsf else { return Ok(()) };
    if role != Role::Nsf {
        return Err(format!(
            "only tokens of role nsf can be bound to an NSF, not {role}; drop the NSF name or use role nsf"
        ));
    }
    check_identifier(n).map_err(|e| {
        format!(
            "NSF name {} is not valid: it {e}; use 1 to 255 printable characters, e.g. \"edge-fw\"",
            printable(n)
        )
    })
}

/// Refuses a token name with a control or invisible character, saying which and where.
fn check_name(name: &str) -> Result<(), TokenError> {
    check_identifier(name).map_err(|reason| TokenError::UnsafeName {
        name: format!("\"{}\"", printable(name)),
        reason,
    })
}

/// The token database and the configured tokens.
pub struct TokenStore {
    db: Db,
    configured: Vec<Configured>,
    last_written: Mutex<HashMap<String, i64>>,
}

/// Where the tokens are.
enum Db {
    /// `auth.db` of one node.
    Sqlite(Mutex<Connection>),
    /// `pharos_tokens` of the cluster's shared database.
    Postgres(TableConnection),
}

/// A database row: name, role, created, expires, revoked, last_used, nsf.
type Row = (
    String,
    String,
    i64,
    Option<i64>,
    bool,
    Option<i64>,
    Option<String>,
);

/// What a lookup reads: name, role, expires, revoked, nsf.
type Found = (String, String, Option<i64>, bool, Option<String>);

/// The revocation rule, the same on both engines: unless `force`, the last active admin token
/// (`others` active admins besides it in the database, `configured_admin` if the configuration
/// has one) is not revoked.
#[allow(clippy::too_many_arguments)]
fn may_revoke(
    name: &str,
    role: &str,
    revoked: bool,
    expires: Option<i64>,
    now: i64,
    others: i64,
    configured_admin: bool,
    force: bool,
) -> Result<(), TokenError> {
    let active_admin = role == Role::Admin.name() && !revoked && expires.is_none_or(|e| e > now);
    if active_admin && !force && others == 0 && !configured_admin {
        return Err(TokenError::LastAdmin(name.to_string()));
    }
    Ok(())
}

/// SHA-256 of a secret as stored.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new random secret: `phr_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("{PREFIX}{}", hex::encode(b))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn ts(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
}

impl TokenStore {
    /// Opens (creating) the token database at `path` with the configured tokens.
    pub fn open(path: &Path, configured: &[TokenConfig]) -> Result<Self, TokenError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::with_connection(conn, configured)
    }

    /// Opens the token database at `path` only if it exists: never creates the file (nor its
    /// directory), for commands that only read or change existing tokens and must leave an empty
    /// directory empty. `None` when there is no database file at `path`.
    pub fn open_existing(
        path: &Path,
        configured: &[TokenConfig],
    ) -> Result<Option<Self>, TokenError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(c) => c,
            Err(_) if !path.exists() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Self::with_connection(conn, configured).map(Some)
    }

    /// An in-memory store (tests).
    pub fn in_memory(configured: &[TokenConfig]) -> Result<Self, TokenError> {
        Self::with_connection(Connection::open_in_memory()?, configured)
    }

    fn with_connection(conn: Connection, configured: &[TokenConfig]) -> Result<Self, TokenError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tokens (
                name TEXT PRIMARY KEY,
                hash BLOB NOT NULL UNIQUE,
                role TEXT NOT NULL,
                created INTEGER NOT NULL,
                expires INTEGER,
                revoked INTEGER NOT NULL DEFAULT 0,
                last_used INTEGER,
                nsf TEXT
            );",
        )?;
        // Databases made before NSF bindings lack the column.
        let has_nsf = conn
            .prepare("SELECT 1 FROM pragma_table_info('tokens') WHERE name = 'nsf'")?
            .exists([])?;
        if !has_nsf {
            conn.execute_batch("ALTER TABLE tokens ADD COLUMN nsf TEXT;")?;
        }
        let configured = validate_configured(configured)?;
        Ok(Self {
            db: Db::Sqlite(Mutex::new(conn)),
            configured,
            last_written: Mutex::new(HashMap::new()),
        })
    }

    /// Opens the tokens of a cluster in its shared PostgreSQL database (table `pharos_tokens`,
    /// created by the schema migrations if missing), with the configured tokens. Blocks (it
    /// connects); may be called from async code, as every method: the connection runs on a
    /// thread of its own. A connection lost later is opened again by itself.
    pub fn open_postgres(
        config: &PostgresConfig,
        configured: &[TokenConfig],
    ) -> Result<Self, TokenError> {
        let configured = validate_configured(configured)?;
        let conn = TableConnection::open(config)?;
        Ok(Self {
            db: Db::Postgres(conn),
            configured,
            last_written: Mutex::new(HashMap::new()),
        })
    }

    /// `"sqlite"` or `"postgresql"`: where the tokens are.
    pub fn engine(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgresql",
        }
    }

    fn sqlite(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when no token exists at all: none in the database, none configured.
    pub fn is_empty(&self) -> Result<bool, TokenError> {
        if !self.configured.is_empty() {
            return Ok(false);
        }
        let n: i64 = match &self.db {
            Db::Sqlite(c) => {
                Self::sqlite(c).query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0))?
            }
            Db::Postgres(c) => pg::count(c)?,
        };
        Ok(n == 0)
    }

    /// Creates a token; returns its secret, which is not stored and cannot be shown again.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        expires_in: Option<Duration>,
    ) -> Result<String, TokenError> {
        self.create_bound(name, role, expires_in, None)
    }

    /// Creates a token whose pushes are stored under `nsf` (role nsf only); returns its secret.
    pub fn create_bound(
        &self,
        name: &str,
        role: Role,
        expires_in: Option<Duration>,
        nsf: Option<&str>,
    ) -> Result<String, TokenError> {
        check_binding(role, nsf).map_err(TokenError::Binding)?;
        check_name(name)?;
        if !valid_name(name) {
            return Err(TokenError::InvalidName(name.to_string()));
        }
        if self.configured.iter().any(|c| c.name == name) {
            return Err(TokenError::Exists(name.to_string()));
        }
        let secret = new_secret();
        let now = Utc::now().timestamp();
        let expires = expires_in.map(|d| now.saturating_add(d.as_secs() as i64));
        let c = match &self.db {
            Db::Sqlite(c) => c,
            Db::Postgres(c) => {
                pg::insert(c, name, hash(&secret), role, now, expires, nsf)?;
                return Ok(secret);
            }
        };
        let r = Self::sqlite(c).execute(
            "INSERT INTO tokens (name, hash, role, created, expires, nsf) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, &hash(&secret)[..], role.name(), now, expires, nsf],
        );
        match r {
            Ok(_) => Ok(secret),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(TokenError::Exists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes the token `name` (revoking twice is not an error). Unless `force`, refuses with
    /// [`TokenError::LastAdmin`] to revoke the last active (not revoked, not expired) admin
    /// token, configured admin tokens included: nobody could manage tokens through the API after
    /// it. The check and the revocation are one transaction, so two revocations in two processes
    /// cannot both pass it.
    pub fn revoke(&self, name: &str, force: bool) -> Result<(), TokenError> {
        if self.configured.iter().any(|c| c.name == name) {
            return Err(TokenError::FromConfig(name.to_string()));
        }
        let configured_admin = self.configured.iter().any(|c| c.role == Role::Admin);
        let c = match &self.db {
            Db::Sqlite(c) => c,
            Db::Postgres(c) => return pg::revoke(c, name, configured_admin, force),
        };
        let mut conn = Self::sqlite(c);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Utc::now().timestamp();
        let target: Option<(String, bool, Option<i64>)> = tx
            .query_row(
                "SELECT role, revoked, expires FROM tokens WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((role, revoked, expires)) = target else {
            return Err(TokenError::NotFound(name.to_string()));
        };
        let others: i64 = tx.query_row(
            "SELECT COUNT(*) FROM tokens WHERE role = ?1 AND revoked = 0
                 AND (expires IS NULL OR expires > ?2) AND name != ?3",
            params![Role::Admin.name(), now, name],
            |r| r.get(0),
        )?;
        may_revoke(
            name,
            &role,
            revoked,
            expires,
            now,
            others,
            configured_admin,
            force,
        )?;
        tx.execute("UPDATE tokens SET revoked = 1 WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }

    /// Every token, configured ones first, then the database's by name.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let mut out: Vec<TokenInfo> = self
            .configured
            .iter()
            .map(|c| TokenInfo {
                name: c.name.clone(),
                role: c.role,
                created: None,
                expires: None,
                revoked: false,
                last_used: None,
                source: "config",
                nsf: c.nsf.clone(),
            })
            .collect();
        let rows: Vec<Row> = match &self.db {
            Db::Sqlite(c) => {
                let conn = Self::sqlite(c);
                let mut st = conn.prepare(
                    "SELECT name, role, created, expires, revoked, last_used, nsf FROM tokens ORDER BY name",
                )?;
                st.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, bool>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })?
                .collect::<Result<_, _>>()?
            }
            Db::Postgres(c) => pg::list(c)?,
        };
        for (name, role, created, expires, revoked, last_used, nsf) in rows {
            let Some(role) = Role::parse(&role) else {
                continue;
            };
            out.push(TokenInfo {
                name,
                role,
                created: ts(Some(created)),
                expires: ts(expires),
                revoked,
                last_used: ts(last_used),
                source: "database",
                nsf,
            });
        }
        Ok(out)
    }

    /// What the token with this secret grants, or why it is refused.
    pub fn lookup(&self, secret: &str) -> Result<Result<Grant, Refusal>, TokenError> {
        self.lookup_hash(&hash(secret))
    }

    /// [`TokenStore::lookup`] by the secret's SHA-256 (what a console session keeps instead of the
    /// secret, so revoking or expiring the token ends its sessions at their next request).
    pub fn lookup_hash(&self, h: &[u8; 32]) -> Result<Result<Grant, Refusal>, TokenError> {
        let h = *h;
        if let Some(c) = self.configured.iter().find(|c| c.hash == h) {
            return Ok(Ok(Grant {
                name: c.name.clone(),
                role: c.role,
                nsf: c.nsf.clone(),
                expires: None,
            }));
        }
        let row: Option<Found> = match &self.db {
            Db::Sqlite(c) => Self::sqlite(c)
                .query_row(
                    "SELECT name, role, expires, revoked, nsf FROM tokens WHERE hash = ?1",
                    [&h[..]],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, bool>(3)?,
                            r.get::<_, Option<String>>(4)?,
                        ))
                    },
                )
                .optional()?,
            Db::Postgres(c) => pg::find(c, h)?,
        };
        let Some((name, role, expires, revoked, nsf)) = row else {
            return Ok(Err(Refusal::Unknown));
        };
        if revoked {
            return Ok(Err(Refusal::Revoked));
        }
        let now = Utc::now().timestamp();
        if expires.is_some_and(|e| e <= now) {
            return Ok(Err(Refusal::Expired));
        }
        let Some(role) = Role::parse(&role) else {
            return Ok(Err(Refusal::Unknown));
        };
        let due = {
            let mut w = self.last_written.lock().unwrap_or_else(|e| e.into_inner());
            let last = w.get(&name).copied().unwrap_or(i64::MIN);
            if now.saturating_sub(last) >= LAST_USED_EVERY {
                w.insert(name.clone(), now);
                true
            } else {
                false
            }
        };
        if due {
            // Best effort: a busy database must not refuse a valid token.
            match &self.db {
                Db::Sqlite(c) => {
                    let _ = Self::sqlite(c).execute(
                        "UPDATE tokens SET last_used = ?1 WHERE name = ?2",
                        params![now, name],
                    );
                }
                Db::Postgres(c) => pg::touch(c, &name, now),
            }
        }
        Ok(Ok(Grant {
            name,
            role,
            nsf,
            expires: ts(expires),
        }))
    }
}

/// Checks `[[api.token]]` entries without opening a store.
pub(crate) fn check_configured(configured: &[TokenConfig]) -> Result<(), TokenError> {
    validate_configured(configured).map(|_| ())
}

fn validate_configured(configured: &[TokenConfig]) -> Result<Vec<Configured>, TokenError> {
    let mut out = Vec::with_capacity(configured.len());
    for (i, c) in configured.iter().enumerate() {
        let at = format!("#{} ({:?})", i + 1, c.name);
        if let Err(e) = check_identifier(&c.name) {
            return Err(TokenError::Config(format!(
                "{at}: name {e}; use 1 to 64 letters, digits, '.', '_' or '-'"
            )));
        }
        if !valid_name(&c.name) {
            return Err(TokenError::Config(format!(
                "{at}: name is not valid: use 1 to 64 letters, digits, '.', '_' or '-'"
            )));
        }
        let bytes = hex::decode(c.sha256.trim()).ok().filter(|b| b.len() == 32);
        let Some(bytes) = bytes else {
            return Err(TokenError::Config(format!(
                "{at}: sha256 = {:?} is not 64 hex digits; give the SHA-256 of the secret, e.g. `printf %s \"$TOKEN\" | sha256sum`",
                c.sha256
            )));
        };
        if out.iter().any(|o: &Configured| o.name == c.name) {
            return Err(TokenError::Config(format!(
                "{at}: the name is used twice; give each token its own name"
            )));
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes);
        check_binding(c.role, c.nsf.as_deref())
            .map_err(|e| TokenError::Config(format!("{at}: {e}")))?;
        out.push(Configured {
            name: c.name.clone(),
            role: c.role,
            hash,
            nsf: c.nsf.clone(),
        });
    }
    Ok(out)
}

/// Parses an expiry like `30d`, `12h`, `15m` or `90s` (the durations of
/// [`pharos_store::time::parse_duration_ms`]); zero is no expiry.
pub fn parse_expiry(s: &str) -> Option<Duration> {
    pharos_store::time::parse_duration_ms(s)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// A throwaway PostgreSQL server for the tests (shared with `pharos-store-pg`'s tests).
#[cfg(test)]
#[path = "../../../store-pg/tests/server/mod.rs"]
mod pg_server;

#[cfg(test)]
impl TokenStore {
    /// Moves the expiry of `name` (of every token if `None`) `secs` into the past.
    fn backdate(&self, name: Option<&str>, secs: i64) {
        match &self.db {
            Db::Sqlite(c) => {
                Self::sqlite(c)
                    .execute(
                        "UPDATE tokens SET expires = expires - ?1 WHERE ?2 IS NULL OR name = ?2",
                        params![secs, name],
                    )
                    .unwrap();
            }
            Db::Postgres(c) => pg::backdate(c, name, secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pg_server::PgServer;
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    type Open = Box<dyn Fn(&[TokenConfig]) -> Result<TokenStore, TokenError>>;
    type OnDisk = Box<dyn Fn(&[u8]) -> bool>;

    /// One token database on one engine; `open` gives a new handle on it (another process of a
    /// node, another node of a cluster).
    struct Engine {
        name: &'static str,
        open: Open,
        /// Whether the engine's files (flushed to disk first) hold these bytes.
        on_disk: OnDisk,
        _keep: Box<dyn std::any::Any>,
    }

    fn sqlite() -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let wal = dir.path().join("auth.db-wal");
        let p = path.clone();
        Engine {
            name: "sqlite",
            open: Box::new(move |c| TokenStore::open(&p, c)),
            on_disk: Box::new(move |what| {
                [&path, &wal].iter().any(|p| {
                    std::fs::read(p)
                        .unwrap_or_default()
                        .windows(what.len())
                        .any(|w| w == what)
                })
            }),
            _keep: Box::new(dir),
        }
    }

    /// A PostgreSQL database (skipped, saying why, when PostgreSQL is not installed).
    fn postgres() -> Option<Engine> {
        let server = std::sync::Arc::new(PgServer::start()?);
        let db = server.create_database();
        let config = PostgresConfig {
            url: server.url_for(&db),
            password_file: None,
        };
        let s = server.clone();
        Some(Engine {
            name: "postgresql",
            open: Box::new(move |c| TokenStore::open_postgres(&config, c)),
            on_disk: Box::new(move |what| {
                s.client(&db).batch_execute("CHECKPOINT").unwrap();
                // grep: the data directory is tens of MB, too slow to search in a debug build.
                let out = std::process::Command::new("grep")
                    .args(["-rlaF", "--"])
                    .arg(std::ffi::OsStr::from_bytes(what))
                    .arg(s.dir())
                    .output()
                    .unwrap();
                !out.stdout.is_empty()
            }),
            _keep: Box::new(server),
        })
    }

    /// Runs `body` on SQLite, then on PostgreSQL.
    fn on_both(body: impl Fn(&Engine)) {
        for e in [Some(sqlite()), postgres()].into_iter().flatten() {
            eprintln!("engine: {}", e.name);
            body(&e);
        }
    }

    fn configured(secret: &str) -> TokenConfig {
        TokenConfig {
            name: "ops".into(),
            role: Role::Admin,
            sha256: hex::encode(hash(secret)),
            nsf: None,
        }
    }

    fn grant(name: &str, role: Role, nsf: Option<&str>) -> Grant {
        Grant {
            name: name.into(),
            role,
            nsf: nsf.map(str::to_string),
            expires: None,
        }
    }

    #[test]
    fn open_existing_never_creates_the_database_and_reads_one_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        assert!(TokenStore::open_existing(&path, &[]).unwrap().is_none());
        assert!(!path.exists());
        TokenStore::open(&path, &[])
            .unwrap()
            .create("grafana", Role::Viewer, None)
            .unwrap();
        let listed = TokenStore::open_existing(&path, &[])
            .unwrap()
            .expect("the database exists")
            .list()
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "grafana");
    }

    #[test]
    fn created_tokens_are_found_by_secret_and_stored_only_hashed() {
        on_both(|e| {
            let s = (e.open)(&[]).unwrap();
            assert!(s.is_empty().unwrap());
            let secret = s.create("grafana", Role::Viewer, None).unwrap();
            assert!(
                secret.starts_with(PREFIX) && secret.len() == 4 + 64,
                "{secret}"
            );
            assert!(!s.is_empty().unwrap());
            assert_eq!(
                s.lookup(&secret).unwrap(),
                Ok(grant("grafana", Role::Viewer, None))
            );
            assert_eq!(s.lookup("phr_nope").unwrap(), Err(Refusal::Unknown));
            assert!(
                !(e.on_disk)(secret.as_bytes()),
                "the secret is in the database"
            );
            // The search does see the rows: the name is there.
            assert!((e.on_disk)(b"grafana"), "the search missed the table");
            assert!(matches!(
                s.create("grafana", Role::Admin, None),
                Err(TokenError::Exists(_))
            ));
            assert!(matches!(
                s.create("bad name", Role::Admin, None),
                Err(TokenError::InvalidName(_))
            ));
        });
    }

    #[test]
    fn revocation_by_another_handle_is_seen_at_once() {
        on_both(|e| {
            let daemon = (e.open)(&[]).unwrap();
            let cli = (e.open)(&[]).unwrap();
            let secret = cli.create("ci", Role::Analyst, None).unwrap();
            assert!(daemon.lookup(&secret).unwrap().is_ok());
            cli.revoke("ci", false).unwrap();
            assert_eq!(daemon.lookup(&secret).unwrap(), Err(Refusal::Revoked));
            assert!(matches!(
                cli.revoke("nope", false),
                Err(TokenError::NotFound(_))
            ));
            let list = daemon.list().unwrap();
            assert_eq!(list.len(), 1);
            assert!(list[0].revoked && list[0].last_used.is_some());
            assert_eq!(list[0].source, "database");
        });
    }

    #[test]
    fn expired_tokens_are_refused() {
        on_both(|e| {
            let s = (e.open)(&[]).unwrap();
            let secret = s
                .create("short", Role::Viewer, Some(Duration::from_secs(1)))
                .unwrap();
            s.backdate(None, 10);
            assert_eq!(s.lookup(&secret).unwrap(), Err(Refusal::Expired));
        });
    }

    #[test]
    fn configured_tokens_match_by_hash_and_cannot_be_revoked() {
        on_both(|e| {
            let s = (e.open)(&[configured("phr_secret")]).unwrap();
            assert!(!s.is_empty().unwrap());
            assert_eq!(
                s.lookup("phr_secret").unwrap(),
                Ok(grant("ops", Role::Admin, None))
            );
            assert!(matches!(
                s.revoke("ops", false),
                Err(TokenError::FromConfig(_))
            ));
            assert!(matches!(
                s.create("ops", Role::Viewer, None),
                Err(TokenError::Exists(_))
            ));
            assert_eq!(s.list().unwrap()[0].source, "config");
            let bad = TokenConfig {
                sha256: "abc".into(),
                ..configured("x")
            };
            let e = (e.open)(&[bad]).err().unwrap().to_string();
            assert!(e.contains("sha256") && e.contains("sha256sum"), "{e}");
        });
    }

    #[test]
    fn nsf_tokens_may_be_bound_to_an_nsf_and_other_roles_may_not() {
        on_both(|e| {
            let s = (e.open)(&[]).unwrap();
            let secret = s
                .create_bound("fw-token", Role::Nsf, None, Some("edge-fw"))
                .unwrap();
            assert_eq!(
                s.lookup(&secret).unwrap(),
                Ok(grant("fw-token", Role::Nsf, Some("edge-fw")))
            );
            assert_eq!(s.list().unwrap()[0].nsf.as_deref(), Some("edge-fw"));
            let m = s
                .create_bound("v", Role::Viewer, None, Some("edge-fw"))
                .unwrap_err()
                .to_string();
            assert!(m.contains("role nsf"), "{m}");
            let m = s
                .create_bound("n", Role::Nsf, None, Some(""))
                .unwrap_err()
                .to_string();
            assert!(m.contains("not valid"), "{m}");
            // Configured tokens too.
            let cfg = TokenConfig {
                role: Role::Nsf,
                nsf: Some("core-ids".into()),
                ..configured("phr_ids")
            };
            let c = (e.open)(std::slice::from_ref(&cfg)).unwrap();
            assert_eq!(
                c.lookup("phr_ids").unwrap().unwrap().nsf.as_deref(),
                Some("core-ids")
            );
            let bad = TokenConfig {
                role: Role::Admin,
                ..cfg
            };
            let m = (e.open)(&[bad]).err().unwrap().to_string();
            assert!(m.contains("[[api.token]]") && m.contains("role nsf"), "{m}");
        });
    }

    #[test]
    fn a_token_database_without_the_nsf_column_is_migrated_keeping_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE tokens (name TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,
                     role TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER,
                     revoked INTEGER NOT NULL DEFAULT 0, last_used INTEGER);",
            )
            .unwrap();
            c.execute(
                "INSERT INTO tokens (name, hash, role, created) VALUES ('old', ?1, 'viewer', 0)",
                [&hash("phr_old")[..]],
            )
            .unwrap();
        }
        let s = TokenStore::open(&path, &[]).unwrap();
        assert_eq!(
            s.lookup("phr_old").unwrap(),
            Ok(grant("old", Role::Viewer, None))
        );
    }

    #[test]
    fn the_last_active_admin_token_is_not_revoked_unless_forced() {
        on_both(|e| {
            let s = (e.open)(&[]).unwrap();
            s.create("root", Role::Admin, None).unwrap();
            s.create("viewer", Role::Viewer, None).unwrap();
            let err = s.revoke("root", false).unwrap_err();
            assert!(
                matches!(err, TokenError::LastAdmin(ref n) if n == "root"),
                "{err}"
            );
            assert!(
                err.to_string().contains("create another admin token"),
                "{err}"
            );
            assert!(!s.list().unwrap().iter().any(|t| t.revoked));
            // Tokens of other roles are revoked freely.
            s.revoke("viewer", false).unwrap();
            // An expired or revoked admin does not count as another.
            s.create("old", Role::Admin, Some(Duration::from_secs(1)))
                .unwrap();
            s.backdate(Some("old"), 10);
            assert!(matches!(
                s.revoke("root", false),
                Err(TokenError::LastAdmin(_))
            ));
            // With a second active admin, either may go, but not both.
            s.create("root2", Role::Admin, None).unwrap();
            s.revoke("root", false).unwrap();
            assert!(matches!(
                s.revoke("root2", false),
                Err(TokenError::LastAdmin(_))
            ));
            // Revoking a revoked admin again is not refused; forcing revokes the last one.
            s.revoke("root", false).unwrap();
            s.revoke("root2", true).unwrap();
            assert!(
                s.list()
                    .unwrap()
                    .iter()
                    .filter(|t| t.role == Role::Admin)
                    .all(|t| t.revoked || t.expires.is_some())
            );
        });
    }

    #[test]
    fn two_nodes_revoking_the_last_two_admins_at_once_cannot_both_succeed() {
        on_both(|e| {
            for round in 0..5 {
                let (a, b) = ((e.open)(&[]).unwrap(), (e.open)(&[]).unwrap());
                let (x, y) = (format!("x{round}"), format!("y{round}"));
                a.create(&x, Role::Admin, None).unwrap();
                a.create(&y, Role::Admin, None).unwrap();
                let barrier = std::sync::Barrier::new(2);
                let (ra, rb) = std::thread::scope(|sc| {
                    let ha = sc.spawn(|| {
                        barrier.wait();
                        a.revoke(&x, false)
                    });
                    let hb = sc.spawn(|| {
                        barrier.wait();
                        b.revoke(&y, false)
                    });
                    (ha.join().unwrap(), hb.join().unwrap())
                });
                let refused = [&ra, &rb]
                    .iter()
                    .filter(|r| matches!(r, Err(TokenError::LastAdmin(_))))
                    .count();
                assert_eq!(refused, 1, "round {round}: {ra:?} {rb:?}");
                assert!(ra.is_ok() || rb.is_ok(), "round {round}: {ra:?} {rb:?}");
                // The survivor goes (forced) before the next round.
                let left = if ra.is_ok() { &y } else { &x };
                a.revoke(left, true).unwrap();
            }
        });
    }

    #[test]
    fn a_configured_admin_token_counts_as_another_admin() {
        on_both(|e| {
            let s = (e.open)(&[configured("phr_ops")]).unwrap();
            s.create("root", Role::Admin, None).unwrap();
            s.revoke("root", false).unwrap();
        });
    }

    #[test]
    fn token_names_with_control_characters_are_refused_saying_which_and_where() {
        on_both(|e| {
            let s = (e.open)(&[]).unwrap();
            let err = s.create("ci\u{0}x", Role::Viewer, None).unwrap_err();
            assert!(matches!(err, TokenError::UnsafeName { .. }), "{err}");
            let m = err.to_string();
            assert!(
                m.contains("\\x00") && m.contains("byte 2") && !m.contains('\0'),
                "{m}"
            );
            let m = s
                .create_bound("fw", Role::Nsf, None, Some("edge\u{1b}[2J"))
                .unwrap_err()
                .to_string();
            assert!(m.contains("\\x1b") && !m.contains('\u{1b}'), "{m}");
            let bad = TokenConfig {
                name: "ops\u{7f}".into(),
                ..configured("phr_x")
            };
            let m = (e.open)(&[bad]).err().unwrap().to_string();
            assert!(m.contains("[[api.token]]") && m.contains("\\x7f"), "{m}");
            assert!(s.list().unwrap().is_empty());
        });
    }

    #[test]
    fn in_memory_stores_answer_as_files_do() {
        let s = TokenStore::in_memory(&[]).unwrap();
        assert_eq!(s.engine(), "sqlite");
        let secret = s.create("m", Role::Viewer, None).unwrap();
        assert_eq!(
            s.lookup(&secret).unwrap(),
            Ok(grant("m", Role::Viewer, None))
        );
    }

    #[test]
    fn postgres_tokens_survive_a_lost_connection_and_work_from_async_code() {
        let Some(e) = postgres() else {
            return;
        };
        let s = std::sync::Arc::new((e.open)(&[]).unwrap());
        assert_eq!(s.engine(), "postgresql");
        let secret = s.create("api", Role::Analyst, None).unwrap();
        // An administrator cuts every other connection: the next calls reconnect by themselves.
        let server = e._keep.downcast_ref::<std::sync::Arc<PgServer>>().unwrap();
        let cut = |server: &PgServer| {
            server
                .client("postgres")
                .batch_execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
                )
                .unwrap();
        };
        cut(server);
        assert!(s.lookup(&secret).unwrap().is_ok());
        cut(server);
        assert_eq!(s.list().unwrap().len(), 1);
        cut(server);
        s.revoke("api", false).unwrap();
        assert_eq!(s.lookup(&secret).unwrap(), Err(Refusal::Revoked));
        // From tasks of both kinds of runtime (the middleware calls lookup in async code), and
        // the last handle dropped inside a task.
        let secret = s.create("async", Role::Viewer, None).unwrap();
        for rt in [
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        ] {
            let (s2, secret2) = (s.clone(), secret.clone());
            let got = rt.block_on(async move { s2.lookup(&secret2).unwrap() });
            assert!(got.is_ok(), "{got:?}");
        }
        let other = (e.open)(&[]).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async move {
                assert_eq!(other.list().unwrap().len(), 2);
                drop(other);
            });
    }

    #[test]
    fn postgres_errors_name_the_server_and_never_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("pg.pass");
        std::fs::write(&pass, "s3cret-pw\n").unwrap();
        let config = PostgresConfig {
            url: format!(
                "host={} port=1 user=pharos dbname=pharos connect_timeout=2",
                dir.path().display()
            ),
            password_file: Some(pass),
        };
        let m = TokenStore::open_postgres(&config, &[])
            .err()
            .unwrap()
            .to_string();
        assert!(
            m.contains("token database") && m.contains("dbname=pharos") && !m.contains("s3cret"),
            "{m}"
        );
        let inline = PostgresConfig {
            url: "postgresql://pharos:s3cret-pw@127.0.0.1:1/pharos".into(),
            password_file: None,
        };
        let m = TokenStore::open_postgres(&inline, &[])
            .err()
            .unwrap()
            .to_string();
        assert!(m.contains("password_file") && !m.contains("s3cret"), "{m}");
    }

    #[test]
    fn expiry_durations_parse() {
        assert_eq!(parse_expiry("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_expiry("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_expiry("0d"), None);
        assert_eq!(parse_expiry("7x"), None);
        assert_eq!(parse_expiry("d"), None);
    }
}
