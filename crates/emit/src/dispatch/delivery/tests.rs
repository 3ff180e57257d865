//! Unit tests of the delivery loop's steps, each on a [`Delivery`] built over a real store and
//! the scripted test sink, its fields set as the step needs them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant as StdInstant;

use pharos_model::{EventState, GenericLog, Kind, Message, Severity, Timestamp};
use pharos_store::{
    Acknowledged, FeedEntry, MessageQuery, Page, SqliteStore, StoreError, StoredMessage,
};

use super::*;
use crate::ConfigDuration;
use crate::dispatch::FEED_WINDOW;
use crate::dispatch::test_sink::{Answer, TestSink};
use crate::filter::Filter;
use crate::subscription::DEFAULT_MAX_QUEUE;

fn log(nsf: &str) -> Message {
    let mut m = Message::new(nsf, Kind::GenericLog(GenericLog::default()));
    m.common.severity = Severity::Info;
    m.common.message = Some("x".into());
    m
}

fn old(nsf: &str) -> Message {
    let mut m = log(nsf);
    m.common.event_time = chrono::DateTime::from_timestamp(1_000_000_000, 0).unwrap();
    m
}

/// A message store whose `changes` panics the first `panics` times, recording when it is called.
struct Flaky {
    inner: Arc<SqliteStore>,
    panics: AtomicUsize,
    calls: Mutex<Vec<StdInstant>>,
}

impl MessageStore for Flaky {
    fn insert_batch(&self, msgs: &mut [Message]) -> Result<Vec<u64>, StoreError> {
        self.inner.insert_batch(msgs)
    }
    fn update(&self, msg: &Message) -> Result<(), StoreError> {
        self.inner.update(msg)
    }
    fn get(&self, id: u64) -> Result<Option<StoredMessage>, StoreError> {
        self.inner.get(id)
    }
    fn query(&self, q: &MessageQuery) -> Result<Page, StoreError> {
        self.inner.query(q)
    }
    fn set_state(&self, id: u64, state: EventState) -> Result<StoredMessage, StoreError> {
        self.inner.set_state(id, state)
    }
    fn acknowledge(
        &self,
        id: u64,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Acknowledged, StoreError> {
        self.inner.acknowledge(id, by, comment)
    }
    fn delete_before(&self, t: Timestamp) -> Result<u64, StoreError> {
        self.inner.delete_before(t)
    }
    fn count(&self) -> Result<u64, StoreError> {
        self.inner.count()
    }
    fn count_by_kind(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.count_by_kind()
    }
    fn changes(&self, after_seq: u64, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.calls.lock().unwrap().push(StdInstant::now());
        if self
            .panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("feed reader test panic");
        }
        self.inner.changes(after_seq, limit)
    }
    fn last_change(&self) -> Result<u64, StoreError> {
        self.inner.last_change()
    }
    fn watch_changes(&self) -> watch::Receiver<u64> {
        self.inner.watch_changes()
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    subs: Arc<SubscriptionStore>,
    state: Arc<Mutex<DeliveryState>>,
    stop: watch::Sender<bool>,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("messages.db")).unwrap());
    let subs = Arc::new(SubscriptionStore::open(&dir.path().join("subscriptions.db")).unwrap());
    Fx {
        _dir: dir,
        store,
        subs,
        state: Arc::default(),
        stop: watch::channel(false).0,
    }
}

fn spec(sink: &TestSink) -> SubscriptionSpec {
    SubscriptionSpec {
        name: "s".into(),
        filter: Filter::default(),
        emission: Emission::OnChange,
        dampening_period: None,
        sink: sink.spec(),
        max_queue: DEFAULT_MAX_QUEUE,
    }
}

/// A delivery of `spec` over `store` (the fixture's store unless given), from position 0.
fn delivery_on(f: &Fx, spec: SubscriptionSpec, store: Arc<dyn MessageStore>) -> Delivery {
    let sink = spec.sink.build().unwrap();
    let shared = Shared {
        feed: Arc::new(Feed::new(store.clone(), FEED_WINDOW)),
        store,
        subs: f.subs.clone(),
    };
    Delivery::new(
        spec,
        sink,
        Position::default(),
        shared,
        f.state.clone(),
        f.stop.subscribe(),
    )
}

fn delivery(f: &Fx, spec: SubscriptionSpec) -> Delivery {
    delivery_on(f, spec, f.store.clone())
}

fn insert(store: &SqliteStore, msgs: impl IntoIterator<Item = Message>) -> Vec<u64> {
    let mut v: Vec<Message> = msgs.into_iter().collect();
    store.insert_batch(&mut v).unwrap()
}

fn seqs(d: &Delivery) -> Vec<u64> {
    d.pending.iter().map(|i| i.seq).collect()
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
    let now = Instant::now();
    let mut b = Backoff::new();
    assert_eq!(b.retry_at, None);
    let mut step = BACKOFF_MIN;
    for _ in 0..12 {
        b.fail(now);
        let wait = b.retry_at.unwrap() - now;
        assert!(
            wait >= step / 2 && wait <= step,
            "{wait:?} for step {step:?}"
        );
        step = (step * 2).min(BACKOFF_MAX);
        assert_eq!(b.next, step);
    }
    assert_eq!(b.next, BACKOFF_MAX);
    b.reset();
    assert_eq!((b.next, b.retry_at), (BACKOFF_MIN, None));
}

#[test]
fn roll_moves_a_periodic_tick_past_now_on_the_interval_grid() {
    let t0 = Instant::now();
    let every = Emission::Periodic {
        interval: ConfigDuration(Duration::from_secs(10)),
    };
    assert_eq!(roll(Some(t0), every, t0 - Duration::from_secs(1)), Some(t0));
    assert_eq!(
        roll(Some(t0), every, t0 + Duration::from_secs(25)),
        Some(t0 + Duration::from_secs(30))
    );
    assert_eq!(
        roll(Some(t0), every, t0),
        Some(t0 + Duration::from_secs(10))
    );
    assert_eq!(roll(None, Emission::OnChange, t0), None);
}

#[tokio::test]
async fn due_at_follows_emission_dampening_pushing_and_the_retry_time() {
    let f = fx();
    let sink = TestSink::default();
    let now = Instant::now();
    let s = Duration::from_secs(1);
    let mut d = delivery(&f, spec(&sink));
    // Nothing pending: nothing due, whatever the backoff says.
    d.backoff.retry_at = Some(now + s);
    assert_eq!(d.due_at(now), None);
    insert(&f.store, [log("a")]);
    d.read_feed(1).await.unwrap();
    // On change: now, but never before a scheduled retry.
    assert_eq!(d.due_at(now), Some(now + s));
    d.backoff.reset();
    assert_eq!(d.due_at(now), Some(now));
    // Dampening: a period after the last push (now when there was none).
    d.spec.dampening_period = Some(ConfigDuration(5 * s));
    assert_eq!(d.due_at(now), Some(now));
    d.last_push = Some(now - 2 * s);
    assert_eq!(d.due_at(now), Some(now + 3 * s));
    // A push under way goes on now.
    d.pushing = true;
    assert_eq!(d.due_at(now), Some(now));
    // Periodic: at the next tick.
    d.pushing = false;
    d.spec.emission = Emission::Periodic {
        interval: ConfigDuration(30 * s),
    };
    d.next_tick = Some(now + 7 * s);
    assert_eq!(d.due_at(now), Some(now + 7 * s));
}

#[tokio::test]
async fn gathering_holds_a_dampened_or_periodic_push_until_the_feed_end_is_read() {
    let f = fx();
    let sink = TestSink::default();
    let mut d = delivery(&f, spec(&sink));
    insert(&f.store, [log("a")]);
    d.read_feed(1).await.unwrap();
    // On change without dampening never gathers.
    assert!(!d.gathering(5));
    d.spec.dampening_period = Some(ConfigDuration(Duration::from_secs(1)));
    assert!(d.gathering(5), "feed end 5 not read yet");
    assert!(!d.gathering(1), "all read");
    d.pushing = true;
    assert!(!d.gathering(5), "a push under way takes what it has");
}

#[tokio::test]
async fn read_feed_queues_matching_changes_and_the_position_follows_when_none_is_pending() {
    let f = fx();
    let sink = TestSink::default();
    let mut s = spec(&sink);
    s.filter.nsf = vec!["keep".into()];
    let mut d = delivery(&f, s);
    insert(&f.store, [log("other"), log("other")]);
    d.read_feed(2).await.unwrap();
    // Nothing matched: the position moves with what was read (written later, it is dirty).
    assert_eq!((d.scanned, d.pos.seq, d.dirty), (2, 2, true));
    assert!(d.pending.is_empty());
    insert(&f.store, [log("keep"), log("other"), log("keep")]);
    d.read_feed(5).await.unwrap();
    assert_eq!(seqs(&d), vec![3, 5]);
    assert_eq!(d.scanned, 5);
    assert_eq!(d.pos.seq, 2, "the position stays before what is pending");
    assert_eq!(d.pos.expired, 0);
}

#[tokio::test]
async fn read_feed_counts_holes_left_by_retention_as_expired_once() {
    let f = fx();
    let sink = TestSink::default();
    let mut d = delivery(&f, spec(&sink));
    insert(&f.store, [log("new")]);
    insert(&f.store, [old("old"), old("old")]);
    insert(&f.store, [log("new")]);
    let cut = chrono::Utc::now() - chrono::Duration::days(1);
    assert_eq!(f.store.delete_before(cut).unwrap(), 2);
    d.read_feed(4).await.unwrap();
    assert_eq!(seqs(&d), vec![1, 4]);
    assert_eq!((d.pos.expired, d.pos.expired_upto), (2, 4));
    assert_eq!(f.state.lock().unwrap().expired, 2);
    // The same hole read again (after a restart, behind a pending change) is not counted again.
    d.pending.clear();
    d.scanned = 0;
    d.read_feed(4).await.unwrap();
    assert_eq!(d.pos.expired, 2);
    // A feed end past every row left: the rest is a hole too.
    insert(&f.store, [old("old")]);
    assert_eq!(f.store.delete_before(cut).unwrap(), 1);
    d.read_feed(5).await.unwrap();
    assert_eq!((d.scanned, d.pos.expired), (5, 3));
}

#[tokio::test]
async fn read_feed_reports_a_failed_feed_reader_as_an_error() {
    let f = fx();
    let flaky = Arc::new(Flaky {
        inner: f.store.clone(),
        panics: AtomicUsize::new(1),
        calls: Mutex::default(),
    });
    let sink = TestSink::default();
    let mut d = delivery_on(&f, spec(&sink), flaky.clone());
    insert(&f.store, [log("a")]);
    let e = d.read_feed(1).await.unwrap_err();
    assert!(e.starts_with("feed reader:"), "{e}");
    assert!(d.pending.is_empty());
    // The reader works again: nothing was lost.
    d.read_feed(1).await.unwrap();
    assert_eq!(seqs(&d), vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_pauses_after_a_failed_step_before_trying_again() {
    let f = fx();
    let flaky = Arc::new(Flaky {
        inner: f.store.clone(),
        panics: AtomicUsize::new(2),
        calls: Mutex::default(),
    });
    let sink = TestSink::default();
    let d = delivery_on(&f, spec(&sink), flaky.clone());
    let task = tokio::spawn(d.run());
    insert(&f.store, [log("a")]);
    let deadline = StdInstant::now() + Duration::from_secs(10);
    while sink.acked() != vec![1] {
        assert!(StdInstant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let calls = flaky.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "two failed reads, then one that worked");
    for w in calls.windows(2) {
        assert!(
            w[1] - w[0] >= ERROR_PAUSE - Duration::from_millis(50),
            "tried again after {:?}",
            w[1] - w[0]
        );
    }
    f.stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn bound_queue_skips_the_oldest_beyond_max_queue_counting_matching_ones_dropped() {
    let f = fx();
    let sink = TestSink::default();
    let mut s = spec(&sink);
    s.max_queue = 4;
    s.filter.nsf = vec!["keep".into()];
    let mut d = delivery(&f, s);
    // 1..=10, every other one matching; 1 and 3 already read and pending.
    insert(
        &f.store,
        (0..10).map(|i| log(if i % 2 == 0 { "keep" } else { "other" })),
    );
    d.read_feed(3).await.unwrap();
    d.pending.retain(|i| i.seq <= 3);
    d.scanned = 3;
    d.bound_queue(10).await.unwrap();
    // Seq 1..=6 skipped: 1, 3 (pending) and 5 (unread) matched.
    assert_eq!((d.pos.seq, d.pos.dropped, d.scanned), (6, 3, 6));
    assert!(d.pending.is_empty() && d.overflow && !d.dirty);
    assert_eq!(f.subs.position("s").unwrap().unwrap().dropped, 3);
    assert_eq!(f.state.lock().unwrap().dropped, 3);
    // Within the bound: nothing moves; at half of it the episode ends.
    d.bound_queue(9).await.unwrap();
    assert!(d.overflow);
    d.bound_queue(8).await.unwrap();
    assert_eq!((d.pos.seq, d.pos.dropped, d.overflow), (6, 3, false));
}

#[tokio::test]
async fn push_accounts_for_each_sink_answer() {
    let f = fx();
    let sink = TestSink::with_script([Answer::Retry, Answer::Ok, Answer::Reject]);
    let mut d = delivery(&f, spec(&sink));
    insert(&f.store, [log("a"), log("b")]);
    d.read_feed(2).await.unwrap();
    // Retry: kept, a retry scheduled, nothing persisted.
    d.push(2).await;
    assert_eq!(seqs(&d), vec![1, 2]);
    assert!(d.backoff.retry_at.is_some() && d.failing && d.pushing);
    assert_eq!(f.subs.position("s").unwrap(), None);
    let st = f.state.lock().unwrap().clone();
    assert_eq!(st.retries, 1);
    assert!(st.last_error.unwrap().contains("will retry"));
    // Ok: delivered, the position persisted past them, the push over.
    d.push(2).await;
    assert!(d.pending.is_empty() && !d.failing && !d.pushing);
    assert_eq!(d.backoff.retry_at, None);
    assert!(d.last_push.is_some());
    let p = f.subs.position("s").unwrap().unwrap();
    assert_eq!((p.seq, p.delivered), (2, 2));
    assert_eq!(f.state.lock().unwrap().last_error, None);
    // Rejected: counted failed and skipped.
    insert(&f.store, [log("c")]);
    d.read_feed(3).await.unwrap();
    d.push(3).await;
    assert!(d.pending.is_empty());
    let p = f.subs.position("s").unwrap().unwrap();
    assert_eq!((p.seq, p.delivered, p.failed), (3, 2, 1));
    assert_eq!(sink.acked(), vec![1, 2]);
}

#[tokio::test]
async fn push_offers_at_most_a_batch_and_keeps_pushing_until_the_rest_is_delivered() {
    let f = fx();
    let sink = TestSink::default();
    let mut d = delivery(&f, spec(&sink));
    let n = BATCH as u64 + 3;
    insert(&f.store, (0..n).map(|_| log("a")));
    d.read_feed(n).await.unwrap();
    d.read_feed(n).await.unwrap();
    d.push(n).await;
    assert_eq!(
        (d.pending.len(), d.pos.seq, d.pushing),
        (3, BATCH as u64, true)
    );
    d.push(n).await;
    assert_eq!((d.pending.len(), d.pos.seq, d.pushing), (0, n, false));
    assert_eq!(sink.offered().len(), 2);
}

#[tokio::test]
async fn persist_writes_the_position_and_counters_and_clears_dirty() {
    let f = fx();
    let sink = TestSink::default();
    let mut d = delivery(&f, spec(&sink));
    d.pos = Position {
        seq: 9,
        delivered: 5,
        failed: 1,
        dropped: 2,
        expired: 1,
        expired_upto: 9,
    };
    d.dirty = true;
    let before = d.last_persist;
    d.persist().await;
    assert!(!d.dirty && d.last_persist >= before);
    assert_eq!(f.subs.position("s").unwrap(), Some(d.pos));
}

#[tokio::test]
async fn publish_shows_the_position_and_pending_with_the_unread_lag() {
    let f = fx();
    let sink = TestSink::default();
    let mut d = delivery(&f, spec(&sink));
    insert(&f.store, [log("a"), log("b")]);
    d.read_feed(2).await.unwrap();
    d.publish(7);
    let st = f.state.lock().unwrap().clone();
    assert_eq!((st.position, st.pending), (0, 2 + 5));
}

#[tokio::test]
async fn turn_waits_when_nothing_is_due_and_goes_again_after_a_push() {
    let f = fx();
    let sink = TestSink::default();
    let mut d = delivery(&f, spec(&sink));
    assert_eq!(d.turn().await.unwrap(), Turn::Wait(None));
    insert(&f.store, [log("a")]);
    assert_eq!(d.turn().await.unwrap(), Turn::Again);
    assert_eq!(sink.acked(), vec![1]);
    assert_eq!(d.turn().await.unwrap(), Turn::Wait(None));
    // Dampened: the next push waits for the period.
    d.spec.dampening_period = Some(ConfigDuration(Duration::from_secs(60)));
    insert(&f.store, [log("b")]);
    let Turn::Wait(Some(at)) = d.turn().await.unwrap() else {
        panic!("a dampened push is due later")
    };
    assert!(at > Instant::now() + Duration::from_secs(50));
}
