//! Versioned schema migrations: SQL files embedded in the binary, applied in order, each recorded
//! in `pharos_schema_migrations` (version, name, checksum of its SQL, when).
//!
//! Contract: [`migrate`] brings a database (empty or at any older version) to [`VERSION`] in one
//! transaction under an advisory lock, so nodes starting together apply each migration once and
//! a failure leaves the database as it was; run again it applies nothing. A database with a
//! version this build does not know is refused ([`StoreError::UnsupportedSchema`]), and so is one
//! whose applied migration's SQL differs from the embedded one (an edited migration: add a new
//! one instead).

use postgres::GenericClient;

use crate::{PgError, StoreError};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version it brings the schema to (1, 2, ...; no gaps).
    pub version: i32,
    /// Short name, recorded beside the version.
    pub name: &'static str,
    /// The SQL, run as one batch.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "messages",
        sql: include_str!("../migrations/0001_messages.sql"),
    },
    Migration {
        version: 2,
        name: "change_feed",
        sql: include_str!("../migrations/0002_change_feed.sql"),
    },
];

/// Newest schema version this build writes and reads.
pub const VERSION: i32 = 2;

/// Advisory lock key held while migrating ("pharos" in ASCII, then 1).
const LOCK_KEY: i64 = 0x7068_6172_6f73_0001;

/// FNV-1a (64 bit) of a migration's SQL, stored to notice migrations edited after release.
fn checksum(sql: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Brings the database to [`VERSION`]; returns the versions applied now (empty if none was due).
pub fn migrate(client: &mut impl GenericClient) -> Result<Vec<i32>, PgError> {
    migrate_to(client, VERSION)
}

/// Brings the database to `target` (at most [`VERSION`]), for tests of upgrades and for tools;
/// returns the versions applied now.
pub fn migrate_to(client: &mut impl GenericClient, target: i32) -> Result<Vec<i32>, PgError> {
    let sql = |what: &'static str| move |source| PgError::Sql { what, source };
    let mut tx = client.transaction().map_err(sql("begin the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .map_err(sql("take the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS pharos_schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             checksum bigint NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(sql("create pharos_schema_migrations"))?;
    let rows = tx
        .query(
            "SELECT version, checksum FROM pharos_schema_migrations ORDER BY version",
            &[],
        )
        .map_err(sql("read pharos_schema_migrations"))?;
    let mut found = 0;
    for row in rows {
        let (version, sum): (i32, i64) = (row.get(0), row.get(1));
        found = found.max(version);
        if version > VERSION {
            return Err(PgError::Store(StoreError::UnsupportedSchema {
                found: version.into(),
                supported: VERSION.into(),
            }));
        }
        let known = MIGRATIONS.iter().find(|m| m.version == version);
        if let Some(m) = known.filter(|m| checksum(m.sql) != sum) {
            return Err(PgError::EditedMigration {
                version,
                name: m.name,
            });
        }
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        tx.batch_execute(m.sql)
            .map_err(|source| PgError::Migration {
                version: m.version,
                name: m.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO pharos_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .map_err(sql("record a migration"))?;
        applied.push(m.version);
    }
    tx.commit().map_err(sql("commit the migration"))?;
    Ok(applied)
}

/// The versions recorded in `pharos_schema_migrations`, oldest first (empty for a new database).
pub fn applied(client: &mut impl GenericClient) -> Result<Vec<i32>, PgError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('pharos_schema_migrations') IS NOT NULL",
            &[],
        )
        .map_err(|source| PgError::Sql {
            what: "look for pharos_schema_migrations",
            source,
        })?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT version FROM pharos_schema_migrations ORDER BY version",
            &[],
        )
        .map_err(|source| PgError::Sql {
            what: "read pharos_schema_migrations",
            source,
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps_and_version_is_the_last() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(VERSION));
    }

    #[test]
    fn checksum_tells_edits_apart() {
        assert_eq!(checksum(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(checksum(MIGRATIONS[0].sql), checksum(MIGRATIONS[1].sql));
        assert_ne!(checksum("SELECT 1;"), checksum("SELECT 1; "));
    }
}
