//! The flow schema in ClickHouse, its versioned migrations, and retention per tier.
//!
//! Contract:
//! - [`MIGRATIONS`] lists every schema version in order; a version is a list of statements, each
//!   recorded as `(version, step)` in `pharos_schema_migrations` once it succeeded. [`migrate`]
//!   applies the steps not recorded, in order, so a migration interrupted half way resumes at
//!   the step that failed, and a second run is a no-op. Released steps never change; a change of
//!   schema is a new version.
//! - Every statement runs on ClickHouse 18.16 (Debian's package) and on current releases: no
//!   `LowCardinality`, `TTL`, `IPv6`, `DateTime64` or `Nullable`. Addresses are `FixedString(16)`
//!   (IPv4 as `::ffff:a.b.c.d`) with the family in the `flags` bits of
//!   [`pharos_model::flow::flags`]; absent optional fields are 0 with their presence bit clear.
//! - Every table is partitioned by day (`toYYYYMMDD(time)`, UTC); retention drops whole days
//!   ([`drop_expired`]), which frees their disk once ClickHouse removes the inactive parts
//!   (`old_parts_lifetime`, 8 minutes by default).
//! - Rollups (`flows_1m`, `flows_5m`, `flows_1h`) are `SummingMergeTree`s fed by materialized
//!   views at insert time, keyed by exporter, interfaces, protocol and AS numbers (no addresses
//!   or ports, so they stay small); read them with `sum(...) GROUP BY`, since rows of one key are
//!   merged only eventually.

use crate::Error;
use crate::client::Client;

/// One schema version: the statements that bring the previous version to this one.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version number (1, 2, ...), in order.
    pub version: u32,
    /// What it adds, for logs and `applied` lists.
    pub name: &'static str,
    /// The statements, applied in order; each is recorded when it succeeded.
    pub steps: &'static [&'static str],
}

/// The table that records applied steps.
pub const MIGRATIONS_TABLE: &str = "pharos_schema_migrations";

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS pharos_schema_migrations (
    version UInt32, step UInt32, name String, applied_at DateTime('UTC')
) ENGINE = MergeTree ORDER BY (version, step)";

/// Every schema version. Version 1: the raw table and the batch ledger; version 2: the rollups.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "raw flows and batch ledger",
        steps: &[
            // The raw flows. `time` is the start second (partition and order); `batch_id` and
            // `row` say which archived batch each flow came from (exactly-once inserts, and a
            // stable listing order). Order: 5-minute bucket first (time-range pruning), then
            // the destination and source addresses (address queries inside the window).
            "CREATE TABLE IF NOT EXISTS flows (
                time DateTime('UTC'),
                batch_id UInt64,
                row UInt32,
                flags UInt8,
                exporter FixedString(16),
                domain UInt32,
                in_if UInt32,
                out_if UInt32,
                src_addr FixedString(16),
                dst_addr FixedString(16),
                src_port UInt16,
                dst_port UInt16,
                proto UInt8,
                tcp_flags UInt8,
                tos UInt8,
                packets UInt64,
                bytes UInt64,
                start_ms UInt64,
                end_ms UInt64,
                src_as UInt32,
                dst_as UInt32,
                src_mask UInt8,
                dst_mask UInt8,
                next_hop FixedString(16),
                vlan UInt16,
                direction UInt8,
                sampling_rate UInt32,
                icmp_type UInt8,
                icmp_code UInt8,
                end_reason UInt8
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMMDD(time)
            ORDER BY (toStartOfFiveMinute(time), dst_addr, src_addr, time)",
            // One row per state of an archived batch: 0 started, 1 stored (crate::insert).
            "CREATE TABLE IF NOT EXISTS pharos_batches (
                time DateTime('UTC'),
                batch_id UInt64,
                state UInt8,
                rows UInt32,
                min_time DateTime('UTC'),
                max_time DateTime('UTC')
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMMDD(time)
            ORDER BY (batch_id, state)",
        ],
    },
    Migration {
        version: 2,
        name: "1 m, 5 m and 1 h rollups",
        steps: &[
            ROLLUP_1M.0,
            ROLLUP_1M.1,
            ROLLUP_5M.0,
            ROLLUP_5M.1,
            ROLLUP_1H.0,
            ROLLUP_1H.1,
            // Flows archived before the views existed (the views only see later inserts).
            // Run migrations before archivers write, or these rows count twice.
            ROLLUP_1M.2,
            ROLLUP_5M.2,
            ROLLUP_1H.2,
        ],
    },
];

/// The rollup table, its view and its backfill, for one bucket function.
macro_rules! rollup {
    ($table:literal, $bucket:literal) => {
        (
            concat!(
                "CREATE TABLE IF NOT EXISTS ",
                $table,
                " (
                time DateTime('UTC'),
                exporter FixedString(16),
                exporter_v4 UInt8,
                in_if UInt32,
                out_if UInt32,
                proto UInt8,
                src_as UInt32,
                dst_as UInt32,
                flows UInt64,
                packets UInt64,
                bytes UInt64
            ) ENGINE = SummingMergeTree((flows, packets, bytes))
            PARTITION BY toYYYYMMDD(time)
            ORDER BY (time, exporter, exporter_v4, in_if, out_if, proto, src_as, dst_as)"
            ),
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS ",
                $table,
                "_mv TO ",
                $table,
                " AS ",
                rollup_select!($bucket)
            ),
            concat!("INSERT INTO ", $table, " ", rollup_select!($bucket)),
        )
    };
}

macro_rules! rollup_select {
    ($bucket:literal) => {
        concat!(
            "SELECT ",
            $bucket,
            "(time) AS time, exporter, bitAnd(flags, 1) AS exporter_v4, in_if, out_if, proto, \
             src_as, dst_as, count() AS flows, sum(packets) AS packets, sum(bytes) AS bytes \
             FROM flows GROUP BY time, exporter, exporter_v4, in_if, out_if, proto, src_as, dst_as"
        )
    };
}

const ROLLUP_1M: (&str, &str, &str) = rollup!("flows_1m", "toStartOfMinute");
const ROLLUP_5M: (&str, &str, &str) = rollup!("flows_5m", "toStartOfFiveMinute");
const ROLLUP_1H: (&str, &str, &str) = rollup!("flows_1h", "toStartOfHour");

/// The latest schema version.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every missing step up to the latest version; returns the versions completed now.
pub async fn migrate(client: &Client) -> Result<Vec<u32>, Error> {
    migrate_to(client, latest_version()).await
}

/// Applies every missing step up to `target` (tests upgrade from an older version with it).
pub async fn migrate_to(client: &Client, target: u32) -> Result<Vec<u32>, Error> {
    if target > latest_version() {
        return Err(Error::Config(format!(
            "schema version {target} is newer than this build knows ({}): upgrade Pharos",
            latest_version()
        )));
    }
    client
        .execute_server(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            client.database()
        ))
        .await?;
    client.execute(BOOTSTRAP).await?;
    let done = applied_steps(client).await?;
    if let Some(&(v, _)) = done.last()
        && v > latest_version()
    {
        return Err(Error::Config(format!(
            "the database {} has schema version {v}, newer than this build knows ({}): \
             upgrade Pharos before pointing it at this database",
            client.database(),
            latest_version()
        )));
    }
    let mut completed = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version <= target) {
        let mut ran = false;
        for (i, sql) in m.steps.iter().enumerate() {
            let step = i as u32;
            if done.binary_search(&(m.version, step)).is_ok() {
                continue;
            }
            client.execute(sql).await.map_err(|e| Error::Migration {
                version: m.version,
                step,
                source: Box::new(e),
            })?;
            client
                .execute(&format!(
                    "INSERT INTO {MIGRATIONS_TABLE} (version, step, name, applied_at) \
                     VALUES ({}, {step}, '{}', now())",
                    m.version,
                    m.name.replace('\'', "")
                ))
                .await?;
            ran = true;
        }
        if ran {
            tracing::info!(
                version = m.version,
                name = m.name,
                "clickhouse schema migrated"
            );
            completed.push(m.version);
        }
    }
    Ok(completed)
}

/// The `(version, step)` pairs recorded as applied, sorted.
pub async fn applied_steps(client: &Client) -> Result<Vec<(u32, u32)>, Error> {
    let body = client
        .query(&format!(
            "SELECT DISTINCT version, step FROM {MIGRATIONS_TABLE} ORDER BY version, step \
             FORMAT RowBinary"
        ))
        .await?;
    let mut r = crate::client::Reader::new(&body, "applied migrations");
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push((r.u32()?, r.u32()?));
    }
    Ok(out)
}

/// The schema version of the database: the highest version whose steps are all applied (0 for
/// an empty database).
pub async fn current_version(client: &Client) -> Result<u32, Error> {
    client.execute(BOOTSTRAP).await?;
    let done = applied_steps(client).await?;
    let mut v = 0;
    for m in MIGRATIONS {
        let all = (0..m.steps.len() as u32).all(|s| done.binary_search(&(m.version, s)).is_ok());
        if !all {
            break;
        }
        v = m.version;
    }
    Ok(v)
}

/// A storage tier: the raw flows or one of the rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// `flows`: every flow, with addresses and ports (and the batch ledger, kept as long).
    Raw,
    /// `flows_1m`: per minute.
    Minute,
    /// `flows_5m`: per 5 minutes.
    FiveMinutes,
    /// `flows_1h`: per hour.
    Hour,
}

impl Tier {
    /// Every tier.
    pub const ALL: [Tier; 4] = [Tier::Raw, Tier::Minute, Tier::FiveMinutes, Tier::Hour];

    /// The tables of this tier.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Tier::Raw => &["flows", "pharos_batches"],
            Tier::Minute => &["flows_1m"],
            Tier::FiveMinutes => &["flows_5m"],
            Tier::Hour => &["flows_1h"],
        }
    }
}

/// How many days each tier keeps (whole days, because a partition is a day); 0 keeps forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Raw flows (with addresses and ports): default 7 days.
    pub raw_days: u32,
    /// 1-minute rollups: default 30 days.
    pub minute_days: u32,
    /// 5-minute rollups: default 90 days.
    pub five_minutes_days: u32,
    /// 1-hour rollups: default 730 days.
    pub hour_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_days: 7,
            minute_days: 30,
            five_minutes_days: 90,
            hour_days: 730,
        }
    }
}

impl Retention {
    /// Days kept by `tier` (0: forever).
    pub fn days(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Raw => self.raw_days,
            Tier::Minute => self.minute_days,
            Tier::FiveMinutes => self.five_minutes_days,
            Tier::Hour => self.hour_days,
        }
    }
}

/// One partition dropped by [`drop_expired`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The table.
    pub table: &'static str,
    /// The day, `YYYYMMDD`.
    pub day: u32,
}

/// `YYYYMMDD` of a Unix day number (days since 1970-01-01), proleptic Gregorian.
pub fn yyyymmdd(days: i64) -> u32 {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y.clamp(0, 9999) * 10_000 + m * 100 + d) as u32
}

/// Drops the day partitions each tier no longer keeps at `now_ms`: a tier that keeps `n` days
/// keeps today and the `n - 1` days before it (UTC). Returns what was dropped.
pub async fn drop_expired(
    client: &Client,
    retention: &Retention,
    now_ms: u64,
) -> Result<Vec<Dropped>, Error> {
    let today = (now_ms / 86_400_000) as i64;
    let mut dropped = Vec::new();
    for tier in Tier::ALL {
        let days = retention.days(tier);
        if days == 0 {
            continue;
        }
        let first_kept = yyyymmdd(today - i64::from(days) + 1);
        for &table in tier.tables() {
            for day in partitions(client, table).await? {
                if day < first_kept {
                    client
                        .execute(&format!("ALTER TABLE {table} DROP PARTITION {day}"))
                        .await?;
                    tracing::info!(table, day, "clickhouse partition dropped by retention");
                    dropped.push(Dropped { table, day });
                }
            }
        }
    }
    Ok(dropped)
}

/// The active day partitions of `table` (`YYYYMMDD`), ascending.
pub async fn partitions(client: &Client, table: &str) -> Result<Vec<u32>, Error> {
    let body = client
        .query(&format!(
            "SELECT DISTINCT toUInt32(partition) AS p FROM system.parts \
             WHERE database = currentDatabase() AND table = '{table}' AND active \
             ORDER BY p FORMAT RowBinary"
        ))
        .await?;
    let mut r = crate::client::Reader::new(&body, "partitions");
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.u32()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yyyymmdd_matches_known_days() {
        assert_eq!(yyyymmdd(0), 19700101);
        assert_eq!(yyyymmdd(20_454), 20260101);
        assert_eq!(yyyymmdd(11_016), 20000229);
        assert_eq!(yyyymmdd(-1), 19691231);
    }

    #[test]
    fn migrations_are_numbered_in_order_and_avoid_newer_types() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as u32 + 1);
            for s in m.steps {
                for bad in ["LowCardinality", "TTL ", "IPv6", "DateTime64", "Nullable"] {
                    assert!(!s.contains(bad), "{bad} in {s}");
                }
            }
        }
    }
}
