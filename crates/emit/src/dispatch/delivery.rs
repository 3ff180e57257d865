//! [`Delivery`]: the task of one subscription, the exactly-once-in-order core of the dispatcher
//! (its contract is the one of [`super`]).
//!
//! Its fields are the loop's state and its methods the loop's steps, each small enough to test
//! alone: [`Delivery::bound_queue`] (skip the oldest beyond `max_queue`), [`Delivery::read_feed`]
//! (read and filter the next changes, count the holes retention left), [`Delivery::due_at`]
//! (when the next push is due: emission, dampening, retry backoff), [`Delivery::push`] (offer a
//! batch to the sink and account for its answer) and [`Delivery::persist`] (write the position).
//! [`Delivery::run`] only sequences them; a step that fails pauses the loop [`ERROR_PAUSE`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pharos_store::MessageStore;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{BATCH, DeliveryState, lock};
use crate::feed::Feed;
use crate::sink::BoxSink;
use crate::subscription::{Emission, Position, SubscriptionSpec, SubscriptionStore};
use crate::{Item, SinkError};

/// First retry delay after [`SinkError::Retry`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Least time between position writes that only skip non-matching changes.
const SKIP_PERSIST_EVERY: Duration = Duration::from_secs(1);
/// Least time between two warnings about expired changes.
const EXPIRED_WARN_EVERY: Duration = Duration::from_secs(60);
/// Pause after a step failed (message store or feed reader error) before trying again.
pub(super) const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What every delivery task of a dispatcher shares.
#[derive(Clone)]
pub(super) struct Shared {
    pub store: Arc<dyn MessageStore>,
    pub feed: Arc<Feed>,
    pub subs: Arc<SubscriptionStore>,
}

/// The per-subscription metrics (label `subscription`).
struct Metrics {
    delivered: metrics::Counter,
    failed: metrics::Counter,
    dropped: metrics::Counter,
    expired: metrics::Counter,
    retries: metrics::Counter,
    pending: metrics::Gauge,
}

impl Metrics {
    fn new(name: &str) -> Self {
        let labels = [("subscription", name.to_string())];
        Self {
            delivered: metrics::counter!("pharos_emit_delivered_total", &labels),
            failed: metrics::counter!("pharos_emit_failed_total", &labels),
            dropped: metrics::counter!("pharos_emit_dropped_total", &labels),
            expired: metrics::counter!("pharos_emit_expired_total", &labels),
            retries: metrics::counter!("pharos_emit_retries_total", &labels),
            pending: metrics::gauge!("pharos_emit_pending", &labels),
        }
    }
}

/// Exponential backoff with jitter after [`SinkError::Retry`]: 100 ms doubling to 60 s, each
/// delay drawn in [½, 1] of the current step.
#[derive(Debug)]
struct Backoff {
    /// The step of the next failure.
    next: Duration,
    /// When the failed batch may be offered again (none: no failure pending).
    retry_at: Option<Instant>,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: BACKOFF_MIN,
            retry_at: None,
        }
    }

    /// A delivery failed at `now`: schedules the retry and doubles the step.
    fn fail(&mut self, now: Instant) {
        let jitter = rand::random_range(0.5..=1.0);
        self.retry_at = Some(now + self.next.mul_f64(jitter));
        self.next = (self.next * 2).min(BACKOFF_MAX);
    }

    /// A delivery was answered (accepted or rejected): back to the first step.
    fn reset(&mut self) {
        *self = Self::new();
    }
}

/// What a turn of the loop asks for next.
#[derive(Debug, PartialEq)]
enum Turn {
    /// Go round again now (more to read, a push done or being gathered).
    Again,
    /// Nothing to do until a new change, this due time (if any), or stop.
    Wait(Option<Instant>),
}

/// The task of one subscription; see the module docs.
pub(super) struct Delivery {
    spec: SubscriptionSpec,
    shared: Shared,
    /// What the API shows, updated as the task goes.
    state: Arc<Mutex<DeliveryState>>,
    sink: BoxSink,
    stop: watch::Receiver<bool>,
    metrics: Metrics,
    /// The position and counters, as persisted by [`Self::persist`].
    pos: Position,
    /// Matching changes read but not yet delivered, in feed order.
    pending: Vec<Item>,
    /// Feed seq read up to (at least the position).
    scanned: u64,
    /// Whether `pos` moved since it was last persisted.
    dirty: bool,
    last_persist: Instant,
    backoff: Backoff,
    /// When the last push ended (for the dampening period).
    last_push: Option<Instant>,
    /// The next periodic push (periodic emission only).
    next_tick: Option<Instant>,
    /// Whether a push is under way: keep pushing until nothing is pending.
    pushing: bool,
    /// Whether changes are being dropped beyond `max_queue` (warned once per episode).
    overflow: bool,
    /// Whether the sink is failing (logged once when it starts and once when it recovers).
    failing: bool,
    /// When expired changes were last warned about.
    expired_warned: Option<Instant>,
}

impl Delivery {
    /// The task of `spec`, delivering through `sink` from `pos`; `state` is updated as it goes
    /// and `stop` ends it.
    pub(super) fn new(
        spec: SubscriptionSpec,
        sink: BoxSink,
        pos: Position,
        shared: Shared,
        state: Arc<Mutex<DeliveryState>>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let now = Instant::now();
        Self {
            metrics: Metrics::new(&spec.name),
            next_tick: match spec.emission {
                Emission::Periodic { interval } => Some(now + interval.0),
                Emission::OnChange => None,
            },
            spec,
            shared,
            state,
            sink,
            stop,
            pos,
            pending: Vec::new(),
            scanned: pos.seq,
            dirty: false,
            last_persist: now,
            backoff: Backoff::new(),
            last_push: None,
            pushing: false,
            overflow: false,
            failing: false,
            expired_warned: None,
        }
    }

    /// Runs until stopped: turns of the loop, waiting for changes in between; persists the
    /// position on the way out.
    pub(super) async fn run(mut self) {
        let mut changes = self.shared.store.watch_changes();
        loop {
            if *self.stop.borrow() {
                break;
            }
            changes.borrow_and_update();
            match self.turn().await {
                Ok(Turn::Again) => {}
                Ok(Turn::Wait(due)) => {
                    if self.dirty {
                        self.persist().await;
                    }
                    if !self.wait(&mut changes, due).await {
                        break;
                    }
                }
                Err(e) => {
                    self.set_error(e);
                    if self.sleep(ERROR_PAUSE).await {
                        break;
                    }
                }
            }
        }
        if self.dirty {
            self.persist().await;
        }
        lock(&self.state).position = self.pos.seq;
    }

    /// One turn: bound the queue, read more of the feed, push if due. `Err` when the store or
    /// the feed reader failed (the caller pauses).
    async fn turn(&mut self) -> Result<Turn, String> {
        let last = self
            .shared
            .store
            .last_change()
            .map_err(|e| format!("message store: {e}"))?;
        self.bound_queue(last).await?;
        if self.pending.len() < BATCH && self.scanned < last {
            self.read_feed(last).await?;
        }
        if self.dirty && self.last_persist.elapsed() >= SKIP_PERSIST_EVERY {
            self.persist().await;
        }
        self.publish(last);
        let now = Instant::now();
        let due = self.due_at(now);
        if due.is_some_and(|at| at <= now) {
            if !self.gathering(last) {
                self.push(last).await;
            }
            return Ok(Turn::Again);
        }
        if self.scanned < last && self.pending.len() < BATCH {
            return Ok(Turn::Again);
        }
        Ok(Turn::Wait(due))
    }

    /// Skips the oldest changes while more than `max_queue` are pending behind the feed's end
    /// `last`: the matching ones are counted as dropped and the position moves past them.
    async fn bound_queue(&mut self, last: u64) -> Result<(), String> {
        let lag = last.saturating_sub(self.pos.seq);
        if lag <= self.spec.max_queue {
            if self.overflow && lag <= self.spec.max_queue / 2 {
                self.overflow = false;
            }
            return Ok(());
        }
        let to = last - self.spec.max_queue;
        let dropped = self.count_dropped(to).await?;
        if !self.overflow {
            tracing::warn!(
                subscription = %self.spec.name,
                max_queue = self.spec.max_queue,
                "more changes pending than max_queue: skipping the oldest (counted as dropped) until the sink catches up"
            );
            self.overflow = true;
        }
        self.pos.dropped += dropped;
        self.metrics.dropped.increment(dropped);
        self.pos.seq = to;
        self.persist().await;
        Ok(())
    }

    /// Skips the feed up to `to`: counts the matching changes among the skipped ones (those
    /// pending and those not yet read) and removes them from `pending`.
    async fn count_dropped(&mut self, to: u64) -> Result<u64, String> {
        let before = self.pending.len();
        self.pending.retain(|i| i.seq > to);
        let mut n = (before - self.pending.len()) as u64;
        let mut after = self.scanned.max(self.pos.seq);
        while after < to {
            let feed = self.shared.feed.clone();
            let entries = tokio::task::spawn_blocking(move || feed.read(after, BATCH))
                .await
                .map_err(|e| format!("feed reader: {e}"))?
                .map_err(|e| format!("message store: {e}"))?;
            if entries.is_empty() {
                break;
            }
            for e in entries {
                if e.seq > to {
                    after = to;
                    break;
                }
                after = e.seq;
                if self.spec.filter.matches_entry(&e) {
                    n += 1;
                }
            }
        }
        self.scanned = self.scanned.max(to);
        lock(&self.state).dropped = self.pos.dropped + n;
        Ok(n)
    }

    /// Reads the next changes of the feed (up to [`BATCH`]) and queues the matching ones; holes
    /// in the feed seq (changes deleted by retention before they were read) are counted as
    /// expired, each once. With nothing pending, the position follows what was read.
    async fn read_feed(&mut self, last: u64) -> Result<(), String> {
        if self.pending.is_empty() && !self.pushing {
            // Periodic: what arrives now goes in the first push after now.
            self.next_tick = roll(self.next_tick, self.spec.emission, Instant::now());
        }
        let feed = self.shared.feed.clone();
        let after = self.scanned;
        let entries = tokio::task::spawn_blocking(move || feed.read(after, BATCH))
            .await
            .map_err(|e| format!("feed reader: {e}"))?
            .map_err(|e| format!("message store: {e}"))?;
        // The feed seq has no holes but those retention left. A hole read again after a restart
        // (behind a pending change) is not counted again.
        let mut gap = 0;
        let upto = self.pos.expired_upto;
        let mut hole = |from: u64, to: u64| gap += to.saturating_sub(from.max(upto));
        if entries.is_empty() {
            hole(self.scanned, last);
            self.scanned = last;
        }
        for e in entries {
            hole(self.scanned, e.seq - 1);
            self.scanned = e.seq;
            if self.spec.filter.matches_entry(&e) {
                self.pending.push(Item {
                    seq: e.seq,
                    change: e.change,
                    stored: e.stored.clone(),
                });
            }
        }
        self.pos.expired_upto = self.pos.expired_upto.max(self.scanned);
        if gap > 0 {
            self.expired(gap);
        }
        if self.pending.is_empty() && self.scanned > self.pos.seq {
            self.pos.seq = self.scanned;
            self.dirty = true;
        }
        Ok(())
    }

    /// Counts `n` changes as expired (warning at most once per [`EXPIRED_WARN_EVERY`]).
    fn expired(&mut self, n: u64) {
        self.pos.expired += n;
        self.metrics.expired.increment(n);
        lock(&self.state).expired = self.pos.expired;
        self.dirty = true;
        if self
            .expired_warned
            .is_none_or(|t| t.elapsed() >= EXPIRED_WARN_EVERY)
        {
            tracing::warn!(
                subscription = %self.spec.name,
                expired = self.pos.expired,
                "changes were deleted by retention before this subscription read them (counted in pharos_emit_expired_total); keep data longer or fix the sink"
            );
            self.expired_warned = Some(Instant::now());
        }
    }

    /// Shows the position and the pending count (read but undelivered, plus the unread lag
    /// behind `last`) in the state and the gauge.
    fn publish(&self, last: u64) {
        let mut st = lock(&self.state);
        st.position = self.pos.seq;
        st.pending = self.pending.len() as u64 + last.saturating_sub(self.scanned);
        self.metrics.pending.set(st.pending as f64);
    }

    /// When the next push is due, seen at `now`: none with nothing pending; now while a push is
    /// under way; else at the periodic tick, or once the dampening period since the last push
    /// passed. Never before a scheduled retry.
    fn due_at(&self, now: Instant) -> Option<Instant> {
        let due = if self.pending.is_empty() {
            None
        } else if self.pushing {
            Some(now)
        } else {
            match self.spec.emission {
                Emission::Periodic { .. } => self.next_tick,
                Emission::OnChange => match (self.spec.dampening_period, self.last_push) {
                    (Some(d), Some(t)) => Some(t + d.0),
                    _ => Some(now),
                },
            }
        };
        match (due, self.backoff.retry_at) {
            (Some(d), Some(r)) => Some(d.max(r)),
            (d, _) => d,
        }
    }

    /// Whether a due push waits to gather more: with dampening or periodic emission a push
    /// takes everything up to the feed's end `last` as one batch (in chunks of [`BATCH`]).
    fn gathering(&self, last: u64) -> bool {
        let gather = self.spec.dampening_period.is_some()
            || matches!(self.spec.emission, Emission::Periodic { .. });
        gather && !self.pushing && self.scanned < last && self.pending.len() < BATCH
    }

    /// Offers the oldest pending changes (up to [`BATCH`]) to the sink. Accepted: counted
    /// delivered; rejected: counted failed; either way skipped and the position persisted.
    /// [`SinkError::Retry`]: kept, offered again after the backoff. The push ends once nothing
    /// is pending up to the feed's end `last`.
    async fn push(&mut self, last: u64) {
        self.pushing = true;
        let n = self.pending.len().min(BATCH);
        // Not interrupted by stop: shutdown gives it SHUTDOWN_GRACE, then aborts.
        match self.sink.deliver(&self.pending[..n]).await {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!(subscription = %self.spec.name, "sink delivers again");
                }
                self.pos.delivered += n as u64;
                self.metrics.delivered.increment(n as u64);
                self.advance(n);
                self.backoff.reset();
                let mut st = lock(&self.state);
                st.last_error = None;
                st.last_delivery = Some(chrono::Utc::now());
            }
            Err(SinkError::Retry(e)) => {
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(subscription = %self.spec.name, "sink failing, retrying with backoff until it answers: {}",
                        pharos_model::text::printable(&e.to_string()));
                }
                self.set_error(format!("{e} (will retry)"));
                self.metrics.retries.increment(1);
                lock(&self.state).retries += 1;
                self.backoff.fail(Instant::now());
                return;
            }
            Err(SinkError::Rejected(e)) => {
                tracing::warn!(subscription = %self.spec.name, items = n, "sink rejected changes: {e}");
                self.set_error(format!("{e} (rejected; {n} changes skipped)"));
                self.pos.failed += n as u64;
                self.metrics.failed.increment(n as u64);
                self.advance(n);
                self.backoff.reset();
            }
        }
        self.persist().await;
        if self.pending.is_empty() && self.scanned >= last {
            self.pushing = false;
            self.last_push = Some(Instant::now());
            self.next_tick = roll(self.next_tick, self.spec.emission, Instant::now());
        }
    }

    /// Removes the first `n` pending items (handled) and moves the position past them.
    fn advance(&mut self, n: usize) {
        let upto = self.pending[n - 1].seq;
        self.pending.drain(..n);
        self.pos.seq = match self.pending.first() {
            Some(next) => next.seq - 1,
            None => self.scanned,
        }
        .max(upto);
        let mut st = lock(&self.state);
        st.position = self.pos.seq;
        st.pending = st.pending.saturating_sub(n as u64);
        st.delivered = self.pos.delivered;
        st.failed = self.pos.failed;
        st.dropped = self.pos.dropped;
    }

    /// Writes the position and counters (blocking work off the runtime); a failure is logged and
    /// shown as the last error, and the next write carries the same data.
    async fn persist(&mut self) {
        let subs = self.shared.subs.clone();
        let name = self.spec.name.clone();
        let pos = self.pos;
        let r = tokio::task::spawn_blocking(move || subs.save_position(&name, &pos)).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(subscription = %self.spec.name, "cannot persist position: {e}");
                self.set_error(format!("cannot persist position: {e}"));
            }
            Err(e) => {
                tracing::error!(subscription = %self.spec.name, "cannot persist position: {e}")
            }
        }
        self.last_persist = Instant::now();
        self.dirty = false;
    }

    fn set_error(&self, e: String) {
        lock(&self.state).last_error = Some(e);
    }

    /// Sleeps `d` unless stopped; true when stopped.
    async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => *self.stop.borrow(),
            _ = self.stop.changed() => true,
        }
    }

    /// Waits for a new change, `until`, or stop; false when stopped (or the store is gone and
    /// there is no deadline to wait for).
    async fn wait(&mut self, changes: &mut watch::Receiver<u64>, until: Option<Instant>) -> bool {
        let deadline = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.stop.changed() => false,
            // Err: the store is gone; only the deadline or stop could wake us.
            r = changes.changed() => r.is_ok(),
            _ = deadline => true,
        }
    }
}

/// The first periodic tick after `now` (ticks every interval from the first one).
fn roll(tick: Option<Instant>, emission: Emission, now: Instant) -> Option<Instant> {
    let (Some(t), Emission::Periodic { interval }) = (tick, emission) else {
        return tick;
    };
    if t > now {
        return Some(t);
    }
    let i = interval.0.as_nanos().max(1);
    let k = (now - t).as_nanos() / i + 1;
    Some(t + Duration::from_nanos((i * k).min(u64::MAX as u128) as u64))
}

#[cfg(test)]
mod tests;
