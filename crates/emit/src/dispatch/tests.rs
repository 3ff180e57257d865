use std::sync::Arc;
use std::time::{Duration, Instant};

use pharos_model::{EventState, GenericLog, Kind, Message, Severity};
use pharos_store::{MessageStore, SqliteStore};

use super::test_sink::{Answer, TestSink};
use super::*;
use crate::ConfigDuration;
use crate::filter::Filter;
use crate::sink::{allowed, host_of};
use crate::subscription::{DEFAULT_MAX_QUEUE, Emission, SubscriptionStore};
use crate::webhook::WebhookConfig;

fn log(nsf: &str, sev: Severity) -> Message {
    let mut m = Message::new(nsf, Kind::GenericLog(GenericLog::default()));
    m.common.severity = sev;
    m.common.message = Some("x".into());
    m
}

fn spec(name: &str, sink: &TestSink) -> SubscriptionSpec {
    SubscriptionSpec {
        name: name.into(),
        filter: Filter::default(),
        emission: Emission::OnChange,
        dampening_period: None,
        sink: sink.spec(),
        max_queue: DEFAULT_MAX_QUEUE,
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    subs: Arc<SubscriptionStore>,
    subs_path: std::path::PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("messages.db")).unwrap());
    let subs_path = dir.path().join("subscriptions.db");
    let subs = Arc::new(SubscriptionStore::open(&subs_path).unwrap());
    Env {
        _dir: dir,
        store,
        subs,
        subs_path,
    }
}

fn insert(store: &SqliteStore, msgs: impl IntoIterator<Item = Message>) -> Vec<u64> {
    let mut v: Vec<Message> = msgs.into_iter().collect();
    store.insert_batch(&mut v).unwrap()
}

/// Polls `f` until it is true; panics with `what` after 10 s.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn start(e: &Env, specs: Vec<SubscriptionSpec>) -> Arc<Dispatcher> {
    Dispatcher::start(
        e.store.clone(),
        e.subs.clone(),
        DispatcherConfig::default(),
        specs,
    )
    .unwrap()
}

/// Starts a dispatcher as a restarted process would: the subscription store opened anew.
fn restart(e: &Env, specs: Vec<SubscriptionSpec>) -> Arc<Dispatcher> {
    let subs = Arc::new(SubscriptionStore::open(&e.subs_path).unwrap());
    Dispatcher::start(e.store.clone(), subs, DispatcherConfig::default(), specs).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_matching_changes_in_feed_order_and_persists_the_position() {
    let e = env();
    insert(&e.store, [log("before", Severity::High)]);
    let sink = TestSink::default();
    let mut s = spec("high", &sink);
    s.filter.min_severity = Some(Severity::High);
    let d = start(&e, vec![s]);
    // Starts at the feed's end: the message stored before is not delivered.
    insert(
        &e.store,
        [log("a", Severity::High), log("b", Severity::Low)],
    );
    insert(&e.store, [log("c", Severity::Critical)]);
    until("2 deliveries", || sink.acked().len() == 2).await;
    assert_eq!(sink.acked(), vec![2, 4]);
    until("position 4", || d.get("high").unwrap().state.position == 4).await;
    let st = d.get("high").unwrap().state;
    assert_eq!((st.delivered, st.pending, st.failed), (2, 0, 0));
    // The state moves on delivery; the stored position follows once the write is done.
    until("position 4 stored", || {
        e.subs.position("high").unwrap().unwrap().seq == 4
    })
    .await;
    // Updates and state changes are changes too.
    let mut m = e.store.get(2).unwrap().unwrap().message;
    m.common.message = Some("updated".into());
    e.store.update(&m).unwrap();
    until("update delivered", || sink.acked() == vec![2, 4, 5]).await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_offers_the_same_items_again_in_order_then_delivers_each_once() {
    let e = env();
    let sink = TestSink::with_script([Answer::Retry, Answer::Retry, Answer::Retry]);
    let d = start(&e, vec![spec("s", &sink)]);
    insert(&e.store, (0..5).map(|_| log("fw", Severity::Info)));
    until("delivered", || sink.acked().len() == 5).await;
    assert_eq!(sink.acked(), vec![1, 2, 3, 4, 5]);
    let offered = sink.offered();
    assert_eq!(offered[0].1, "retry");
    // Each retry starts with the same first item.
    assert!(offered.iter().all(|(seqs, _)| seqs[0] == 1), "{offered:?}");
    let st = d.get("s").unwrap().state;
    assert_eq!((st.delivered, st.retries, st.last_error), (5, 3, None));
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_items_are_counted_failed_and_skipped() {
    let e = env();
    let sink = TestSink::with_script([Answer::Reject]);
    let d = start(&e, vec![spec("s", &sink)]);
    insert(&e.store, [log("a", Severity::Info)]);
    until("failed", || d.get("s").unwrap().state.failed == 1).await;
    insert(&e.store, [log("b", Severity::Info)]);
    until("second delivered", || sink.acked() == vec![2]).await;
    // The sink records an item before the dispatcher counts it: wait for the count.
    until("delivered counted", || {
        d.get("s").unwrap().state.delivered == 1
    })
    .await;
    assert_eq!(d.get("s").unwrap().state.failed, 1);
    d.shutdown().await;
    assert_eq!(e.subs.position("s").unwrap().unwrap().failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_nothing_delivered_is_sent_again_and_nothing_pending_is_lost() {
    let e = env();
    let sink = TestSink::default();
    let d = start(&e, vec![spec("s", &sink)]);
    insert(&e.store, (0..3).map(|_| log("fw", Severity::Info)));
    until("3 delivered", || sink.acked().len() == 3).await;
    d.shutdown().await;
    // While stopped: more changes, and the receiver is down when it comes back.
    insert(&e.store, (0..4).map(|_| log("fw", Severity::Info)));
    let sink2 = TestSink::with_script([Answer::Retry]);
    let d = restart(&e, vec![spec("s", &sink2)]);
    until("4 delivered", || sink2.acked().len() == 4).await;
    assert_eq!(sink2.acked(), vec![4, 5, 6, 7]);
    // Counters persist: 3 before the restart, 4 after (counted just after the sink's answer).
    until("7 delivered counted", || {
        d.get("s").unwrap().state.delivered == 7
    })
    .await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_queue_the_oldest_are_dropped_and_counted() {
    let e = env();
    // The receiver refuses for a long while (backoff grows); 30 changes arrive meanwhile.
    let sink = TestSink::with_script(std::iter::repeat_n(Answer::Retry, 4));
    let mut s = spec("s", &sink);
    s.max_queue = 10;
    s.filter.nsf = vec!["keep".into()];
    let d = start(&e, vec![s]);
    insert(&e.store, [log("keep", Severity::Info)]);
    until("first retry", || !sink.offered().is_empty()).await;
    // 30 changes, of which every other matches.
    insert(
        &e.store,
        (0..30).map(|i| log(if i % 2 == 0 { "keep" } else { "other" }, Severity::Info)),
    );
    until("caught up", || {
        let st = d.get("s").unwrap().state;
        st.position == 31 && st.pending == 0
    })
    .await;
    let st = d.get("s").unwrap().state;
    // Seq 1..=31; only the newest 10 (22..=31) are kept: 11 matching among 1..=21 dropped.
    let acked = sink.acked();
    assert_eq!(st.dropped, 11, "{st:?} {acked:?}");
    assert_eq!(acked, vec![22, 24, 26, 28, 30]);
    assert_eq!(st.delivered + st.dropped, 16);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dampening_sends_at_most_one_push_per_period_with_the_changes_batched() {
    let e = env();
    let sink = TestSink::default();
    let mut s = spec("s", &sink);
    s.dampening_period = Some(ConfigDuration(Duration::from_millis(1000)));
    let d = start(&e, vec![s]);
    insert(&e.store, [log("a", Severity::Info)]);
    until("first push", || sink.acked().len() == 1).await;
    let first = Instant::now();
    for _ in 0..5 {
        insert(&e.store, [log("b", Severity::Info)]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until("second push", || sink.acked().len() == 6).await;
    assert!(
        first.elapsed() >= Duration::from_millis(900),
        "second push came after {:?}",
        first.elapsed()
    );
    let offered = sink.offered();
    assert_eq!(offered.len(), 2, "one batch for the period: {offered:?}");
    assert_eq!(offered[1].0, vec![2, 3, 4, 5, 6]);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_emission_pushes_what_gathered_each_interval() {
    let e = env();
    let sink = TestSink::default();
    let mut s = spec("s", &sink);
    s.emission = Emission::Periodic {
        interval: ConfigDuration(Duration::from_millis(1000)),
    };
    let d = start(&e, vec![s]);
    // One insert, so that no tick can fall between the three changes.
    insert(&e.store, (0..3).map(|_| log("a", Severity::Info)));
    until("a push", || sink.acked().len() == 3).await;
    assert_eq!(sink.offered().len(), 1, "{:?}", sink.offered());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_and_change_filter() {
    let e = env();
    let sink = TestSink::default();
    let mut s = spec("s", &sink);
    s.filter.changes = vec![crate::Change::State];
    let d = start(&e, vec![s]);
    let mut m = Message::new(
        "sys",
        Kind::SystemAlarm(pharos_model::SystemAlarm::default()),
    );
    m.common.severity = Severity::High;
    let id = insert(&e.store, [m])[0];
    e.store.set_state(id, EventState::Acknowledged).unwrap();
    until("state change", || sink.acked() == vec![2]).await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_added_and_removed_at_runtime_and_config_ones_are_kept() {
    let e = env();
    let sink = TestSink::default();
    let d = Dispatcher::start(
        e.store.clone(),
        e.subs.clone(),
        DispatcherConfig {
            allow_hosts: vec!["127.0.0.1".into()],
        },
        vec![spec("cfg", &sink)],
    )
    .unwrap();
    assert!(matches!(
        d.remove("cfg").await,
        Err(EmitError::ConfigDefined(_))
    ));
    assert!(matches!(
        d.remove("nope").await,
        Err(EmitError::NotFound(_))
    ));
    let api: SubscriptionSpec = serde_json::from_value(serde_json::json!({
        "name": "api-1",
        "sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "k",
                 "allow": ["evil.example"]}
    }))
    .unwrap();
    let info = d.add(api.clone()).unwrap();
    assert_eq!(info.origin, Origin::Api);
    let Some(w) = info.spec.sink.config::<WebhookConfig>() else {
        panic!()
    };
    assert_eq!(
        w.allow,
        vec!["127.0.0.1"],
        "allow-list replaced by [emit] allow_hosts"
    );
    assert_eq!(w.secret.0, "***");
    assert!(matches!(d.add(api.clone()), Err(EmitError::Exists(_))));
    let mut far = api.clone();
    far.name = "far".into();
    if let Some(w) = far.sink.config_mut::<WebhookConfig>() {
        w.url = "https://hooks.example.net/x".into();
    }
    let err = d.add(far).unwrap_err().to_string();
    assert!(err.contains("allow_hosts"), "{err}");
    assert_eq!(
        d.list()
            .iter()
            .map(|i| i.spec.name.as_str())
            .collect::<Vec<_>>(),
        vec!["api-1", "cfg"]
    );
    assert_eq!(e.subs.api_specs().unwrap().len(), 1);
    d.remove("api-1").await.unwrap();
    assert!(d.get("api-1").is_none());
    assert!(e.subs.api_specs().unwrap().is_empty());
    d.shutdown().await;

    // Without allow_hosts, API-created webhooks are refused naming the key.
    let d = start(&e, vec![]);
    let err = d.add(api).unwrap_err().to_string();
    assert!(err.contains("[emit] allow_hosts"), "{err}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_created_subscriptions_come_back_after_a_restart() {
    let e = env();
    let d = Dispatcher::start(
        e.store.clone(),
        e.subs.clone(),
        DispatcherConfig {
            allow_hosts: vec!["127.0.0.1".into()],
        },
        vec![],
    )
    .unwrap();
    let api: SubscriptionSpec = serde_json::from_value(serde_json::json!({
        "name": "api-1",
        "sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "k"}
    }))
    .unwrap();
    d.add(api).unwrap();
    d.shutdown().await;
    let d = start(&e, vec![]);
    let got = d.get("api-1").expect("restarted");
    assert_eq!(got.origin, Origin::Api);
    d.shutdown().await;
}

#[test]
fn api_created_syslog_and_nats_destinations_must_be_in_allow_hosts() {
    assert_eq!(host_of("127.0.0.1:514"), "127.0.0.1");
    assert_eq!(host_of("[2001:db8::1]:514"), "2001:db8::1");
    assert_eq!(host_of("siem.example.net:6514"), "siem.example.net");
    let allow = vec![
        "192.0.2.0/24".to_string(),
        "SIEM.example.net".to_string(),
        "::1".to_string(),
    ];
    assert!(allowed(&allow, "192.0.2.7"));
    assert!(allowed(&allow, "siem.example.net"));
    assert!(allowed(&allow, "::1"));
    assert!(!allowed(&allow, "198.51.100.1"));
    assert!(!allowed(&allow, "evil.example.net"));
    assert!(!allowed(&[], "127.0.0.1"));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let e = env();
        let d = Dispatcher::start(
            e.store.clone(),
            e.subs.clone(),
            DispatcherConfig {
                allow_hosts: vec!["127.0.0.1".into()],
            },
            vec![],
        )
        .unwrap();
        let spec = |sink: serde_json::Value| -> SubscriptionSpec {
            serde_json::from_value(serde_json::json!({"name": "s", "sink": sink})).unwrap()
        };
        let err = d
            .add(spec(
                serde_json::json!({"type": "syslog", "address": "198.51.100.1:514"}),
            ))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[emit] allow_hosts") && err.contains("syslog.address"),
            "{err}"
        );
        let err = d
            .add(spec(
                serde_json::json!({"type": "nats", "url": "nats://203.0.113.9:4222"}),
            ))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nats.url"), "{err}");
        d.add(spec(
            serde_json::json!({"type": "syslog", "address": "127.0.0.1:514"}),
        ))
        .unwrap();
        d.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_deleted_by_retention_before_they_were_read_are_counted_expired_once() {
    let e = env();
    let old = |nsf: &str| {
        let mut m = log(nsf, Severity::Info);
        m.common.event_time = chrono::DateTime::from_timestamp(1_000_000_000, 0).unwrap();
        m
    };
    // Position 0; then, while stopped: a new change (1), three old ones (2-4), a new one (5).
    let first = TestSink::with_script(std::iter::repeat_n(Answer::Retry, 1000));
    let d = start(&e, vec![spec("s", &first)]);
    d.shutdown().await;
    insert(&e.store, [log("new", Severity::Info)]);
    insert(&e.store, [old("old"), old("old"), old("old")]);
    insert(&e.store, [log("new", Severity::Info)]);
    let cut = chrono::Utc::now() - chrono::Duration::days(1);
    assert_eq!(e.store.delete_before(cut).unwrap(), 3);
    // The receiver is down: 1 and 5 stay pending; the hole between them is counted.
    let d = start(&e, vec![spec("s", &first)]);
    until("3 expired", || d.get("s").unwrap().state.expired == 3).await;
    assert_eq!(d.get("s").unwrap().state.position, 0, "1 is still pending");
    d.shutdown().await;
    // After a restart the same hole is read again and not counted again.
    let sink = TestSink::default();
    let d = restart(&e, vec![spec("s", &sink)]);
    until("delivered", || sink.acked() == vec![1, 5]).await;
    until("position 5", || d.get("s").unwrap().state.position == 5).await;
    assert_eq!(d.get("s").unwrap().state.expired, 3);
    d.shutdown().await;
    // Later holes count too (changes read before retention deleted them are still delivered:
    // hence stopped here).
    insert(&e.store, [old("old"), old("old")]);
    assert_eq!(e.store.delete_before(cut).unwrap(), 2);
    insert(&e.store, [log("new", Severity::Info)]);
    let d = restart(&e, vec![spec("s", &sink)]);
    until("delivered 8", || sink.acked() == vec![1, 5, 8]).await;
    until("5 expired", || d.get("s").unwrap().state.expired == 5).await;
    d.shutdown().await;
    assert_eq!(e.subs.position("s").unwrap().unwrap().expired, 5);
}
