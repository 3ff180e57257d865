//! Migrations and retention against a real ClickHouse server (tests/server).

mod server;

use std::time::{Duration, Instant};

use pharos_clickhouse::{
    Archive, MIGRATIONS, Retention, applied_steps, current_version, latest_version, migrate,
    migrate_to, partitions,
};
use pharos_model::flow::{FlowBatch, FlowRecord};
use server::Server;

const DAY_MS: u64 = 86_400_000;
/// 2026-12-07 12:00 UTC.
const NOW_MS: u64 = 1_796_644_800_000;

fn flows_at(start_ms: u64, n: usize) -> FlowBatch {
    let mut b = FlowBatch::new();
    for i in 0..n {
        b.push(&FlowRecord {
            exporter: "192.0.2.1".parse().unwrap(),
            src_addr: "10.0.0.1".parse().unwrap(),
            dst_addr: "10.0.0.2".parse().unwrap(),
            proto: 6,
            src_port: 1000 + i as u16,
            dst_port: 443,
            in_if: 3,
            packets: 2,
            bytes: 100,
            start_ms: start_ms + i as u64,
            end_ms: start_ms + i as u64 + 10,
            ..FlowRecord::default()
        });
    }
    b
}

async fn count(a: &Archive, sql: &str) -> u64 {
    let body = a
        .client()
        .query(&format!("{sql} FORMAT TSV"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    String::from_utf8(body)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn tables(a: &Archive) -> Vec<String> {
    let body = a
        .client()
        .query("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name FORMAT TSV")
        .await
        .unwrap();
    String::from_utf8(body)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn migrations_apply_from_empty_then_twice_is_a_no_op() {
    let Some(srv) = Server::start() else { return };
    let c = srv.client("fresh");
    let a = Archive::new(c.clone());
    let done = migrate(&c).await.unwrap();
    assert_eq!(done, (1..=latest_version()).collect::<Vec<_>>());
    assert_eq!(current_version(&c).await.unwrap(), latest_version());
    let t = tables(&a).await;
    for name in [
        "flows",
        "flows_1h",
        "flows_1h_mv",
        "flows_1m",
        "flows_1m_mv",
        "flows_5m",
        "flows_5m_mv",
        "pharos_batches",
        "pharos_schema_migrations",
    ] {
        assert!(t.iter().any(|x| x == name), "{name} missing from {t:?}");
    }
    let steps: usize = MIGRATIONS.iter().map(|m| m.steps.len()).sum();
    assert_eq!(applied_steps(&c).await.unwrap().len(), steps);

    // Twice: nothing applied, nothing recorded again, same tables.
    assert_eq!(migrate(&c).await.unwrap(), Vec::<u32>::new());
    assert_eq!(
        count(&a, "SELECT count() FROM pharos_schema_migrations").await,
        steps as u64
    );
    assert_eq!(tables(&a).await, t);
}

#[tokio::test]
async fn upgrade_from_v1_to_v2_keeps_flows_and_backfills_the_rollups() {
    let Some(srv) = Server::start() else { return };
    let c = srv.client("upgrade");
    assert_eq!(migrate_to(&c, 1).await.unwrap(), vec![1]);
    assert_eq!(current_version(&c).await.unwrap(), 1);
    let a = Archive::new(c.clone());
    assert!(!tables(&a).await.iter().any(|t| t == "flows_1m"));
    // Flows written by a v1 archiver: 3 minutes, 50 flows each.
    for m in 0..3u64 {
        a.insert(m, &flows_at(NOW_MS + m * 60_000, 50))
            .await
            .unwrap();
    }
    assert_eq!(migrate(&c).await.unwrap(), vec![2]);
    assert_eq!(current_version(&c).await.unwrap(), 2);
    assert_eq!(count(&a, "SELECT count() FROM flows").await, 150);
    for t in ["flows_1m", "flows_5m", "flows_1h"] {
        assert_eq!(
            count(&a, &format!("SELECT sum(flows) FROM {t}")).await,
            150,
            "{t}"
        );
    }
    assert_eq!(
        count(
            &a,
            "SELECT count() FROM (SELECT time FROM flows_1m GROUP BY time)"
        )
        .await,
        3
    );
    // Flows written after the upgrade reach the rollups through the views, once.
    a.insert(10, &flows_at(NOW_MS + 3 * 60_000, 25))
        .await
        .unwrap();
    for t in ["flows_1m", "flows_5m", "flows_1h"] {
        assert_eq!(
            count(&a, &format!("SELECT sum(flows) FROM {t}")).await,
            175,
            "{t}"
        );
        assert_eq!(
            count(&a, &format!("SELECT sum(bytes) FROM {t}")).await,
            175 * 100,
            "{t}"
        );
    }
}

#[tokio::test]
async fn retention_drops_expired_days_per_tier_and_frees_their_disk() {
    let Some(srv) = Server::start() else { return };
    let a = srv.archive("retention").await;
    // Flows 0, 3, 10 and 40 days old.
    for (id, age) in [0u64, 3, 10, 40].into_iter().enumerate() {
        a.insert(id as u64, &flows_at(NOW_MS - age * DAY_MS, 100))
            .await
            .unwrap();
    }
    let c = a.client();
    assert_eq!(partitions(c, "flows").await.unwrap().len(), 4);
    let part_dirs = |day: u32| -> Vec<String> {
        let dir = srv.data_dir().join("data/retention/flows");
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&format!("{day}_")))
                    .collect()
            })
            .unwrap_or_default()
    };
    let day40 = pharos_clickhouse::yyyymmdd(((NOW_MS - 40 * DAY_MS) / DAY_MS) as i64);
    assert!(
        !part_dirs(day40).is_empty(),
        "the 40-day-old part is on disk"
    );

    let retention = Retention {
        raw_days: 7,
        minute_days: 30,
        five_minutes_days: 0,
        hour_days: 365,
    };
    let dropped = a.drop_expired(&retention, NOW_MS).await.unwrap();
    let raw: Vec<u32> = dropped
        .iter()
        .filter(|d| d.table == "flows")
        .map(|d| d.day)
        .collect();
    assert_eq!(raw.len(), 2, "{dropped:?}");
    assert!(
        dropped
            .iter()
            .any(|d| d.table == "flows_1m" && d.day == day40)
    );
    assert!(
        !dropped
            .iter()
            .any(|d| d.table == "flows_5m" || d.table == "flows_1h")
    );

    // What is left: raw 0 and 3 days; 1-minute rollups up to 30 days; the others everything.
    assert_eq!(count(&a, "SELECT count() FROM flows").await, 200);
    assert_eq!(count(&a, "SELECT sum(flows) FROM flows_1m").await, 300);
    assert_eq!(count(&a, "SELECT sum(flows) FROM flows_5m").await, 400);
    assert_eq!(count(&a, "SELECT sum(flows) FROM flows_1h").await, 400);
    assert_eq!(partitions(c, "flows").await.unwrap().len(), 2);

    // The disk is freed: the dropped parts' directories disappear (the test server removes
    // inactive parts after 1 s; the default old_parts_lifetime is 8 minutes).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !part_dirs(day40).is_empty() {
        assert!(
            Instant::now() < deadline,
            "parts of {day40} still on disk: {:?}",
            part_dirs(day40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Dropping again finds nothing.
    assert_eq!(a.drop_expired(&retention, NOW_MS).await.unwrap(), vec![]);
    // A tier with 0 days keeps everything.
    let keep = Retention {
        raw_days: 0,
        minute_days: 0,
        five_minutes_days: 0,
        hour_days: 0,
    };
    assert_eq!(
        a.drop_expired(&keep, NOW_MS + 1000 * DAY_MS).await.unwrap(),
        vec![]
    );
}
