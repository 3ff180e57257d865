//! The archiver: flow batches from the `pharos-archive` consumer into ClickHouse, each flow
//! counted exactly once.
//!
//! Contract: [`run_archiver`] pulls as a member of the consumer's pinned priority group (one
//! archiver at a time; a standby takes over after the pin timeout), writes consecutive stream
//! messages as one [`Archive::insert`] of at most [`ArchiverOptions::max_rows`] flows under the
//! batch id = the last stream sequence of the group, and acknowledges the messages only after
//! the insert returned. An insert that fails is retried with backoff (the messages stay
//! unacknowledged and are kept alive with progress acks); an undecodable message is terminated
//! and counted.
//!
//! Exactly once rests on one invariant: the archiver writes the stream in sequence order, each
//! group being the whole range of sequences after the previous group's id. So "every sequence up
//! to the highest stored batch id is stored" holds, and after a restart the archiver reads that
//! id from the ledger and acknowledges redelivered messages at or below it without writing them.
//! A message that arrives ahead of a missing sequence (the missing one is still held,
//! unacknowledged, by an archiver that died, and comes back after the ack wait) is held back
//! until the gap is filled, or until the consumer reports that nothing else is awaiting an ack
//! (the missing sequences were terminated or removed by the stream's limits). A group whose
//! insert had started when the previous archiver died (ledger state 0) is re-formed with the
//! same last sequence, so [`Archive::insert`] recognises it.
//!
//! Metrics: `pharos_cluster_archived_flows_total`,
//! `pharos_cluster_archive_batches_total{result="written|duplicate|recovered"}`,
//! `pharos_cluster_archive_skipped_messages_total` (redeliveries of stored messages),
//! `pharos_cluster_archive_failures_total{reason="insert|ledger|pull|ack"}`,
//! `pharos_cluster_archive_dropped_total{reason="undecodable"}` (flows unknown: messages),
//! gauge `pharos_cluster_archive_lag_messages` (messages in the stream not yet delivered).

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::PullConsumer;
use futures_util::StreamExt;
use pharos_clickhouse::{Archive, Inserted};
use pharos_model::flow::FlowBatch;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ClusterConfig;

/// How the archiver groups, pulls and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiverOptions {
    /// Most flows in one insert (default 200,000; at most
    /// [`pharos_clickhouse::MAX_BATCH_ROWS`]). One message is never split.
    pub max_rows: usize,
    /// Longest the first message of a group waits for more before the group is written
    /// (default 1 s).
    pub linger: Duration,
    /// The priority group of the consumer (default [`crate::connect::ARCHIVER_GROUP`]).
    pub group: String,
    /// Expiry of each pull request: well below the consumer's pin timeout, or the pin is lost
    /// between pulls (default 1 s; [`ArchiverOptions::from_config`]: a third of `pin_timeout`).
    pub pull_expiry: Duration,
    /// Messages asked for per pull (default 64).
    pub pull_batch: usize,
    /// Messages held back ahead of a missing sequence; more are refused (NAK) and come back
    /// later (default 4096).
    pub max_held: usize,
    /// First wait after a failed insert or ledger read; doubles up to `retry_max`
    /// (default 200 ms).
    pub retry_initial: Duration,
    /// Longest wait between retries (default 10 s).
    pub retry_max: Duration,
}

impl Default for ArchiverOptions {
    fn default() -> Self {
        Self {
            max_rows: 200_000,
            linger: Duration::from_secs(1),
            group: crate::connect::ARCHIVER_GROUP.into(),
            pull_expiry: Duration::from_secs(1),
            pull_batch: 64,
            max_held: 4096,
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
        }
    }
}

impl ArchiverOptions {
    /// The defaults, with the pull expiry a third of `[cluster] pin_timeout` (at most 1 s).
    pub fn from_config(cfg: &ClusterConfig) -> Self {
        Self {
            pull_expiry: (cfg.pin_timeout.get() / 3)
                .clamp(Duration::from_millis(100), Duration::from_secs(1)),
            ..Self::default()
        }
    }
}

/// What one run of the archiver did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiverStats {
    /// Messages received (redeliveries included).
    pub messages: u64,
    /// Flows written to ClickHouse.
    pub flows: u64,
    /// Inserts that wrote rows.
    pub written: u64,
    /// Inserts the ledger already had (nothing written).
    pub duplicates: u64,
    /// Inserts an earlier archiver had written but not recorded (recorded now).
    pub recovered: u64,
    /// Redelivered messages acknowledged without writing (already stored).
    pub skipped: u64,
    /// Messages that were not flow batches (terminated).
    pub undecodable: u64,
    /// Messages that arrived ahead of a missing sequence and were held back.
    pub held: u64,
    /// Failed insert attempts (each retried).
    pub insert_failures: u64,
    /// Highest stream sequence stored when the run ended.
    pub stored_upto: u64,
}

/// Why the archiver cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The ledger has a batch id above anything the stream ever held.
    #[error(
        "the ClickHouse ledger (pharos_batches) records stream sequence {stored} as stored, but \
         the flow stream ends at {stream_last}: the stream was recreated since. Archive into a \
         new [clickhouse] database, or clear the ledger with `TRUNCATE TABLE pharos_batches` \
         once the old flows are no longer needed for deduplication"
    )]
    LedgerAhead {
        /// Highest stored batch id.
        stored: u64,
        /// Last sequence of the stream, as the consumer sees it.
        stream_last: u64,
    },
}

/// Runs the archiver until `stop` turns true (or its sender is dropped); returns what it did.
/// A group being written when `stop` comes is tried once more and otherwise left
/// unacknowledged (it is redelivered to the next archiver).
pub async fn run_archiver(
    consumer: PullConsumer,
    archive: Archive,
    opts: ArchiverOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<ArchiverStats, ArchiveError> {
    let mut a = Archiver::new(consumer, archive, opts);
    if !a.start(&mut stop).await? {
        return Ok(a.stats);
    }
    let mut pull_retry = a.opts.retry_initial;
    'pulls: while !stopped(&stop) {
        let mut messages = match a
            .consumer
            .stream()
            .group(a.opts.group.clone())
            .expires(a.opts.pull_expiry)
            .heartbeat(a.opts.pull_expiry / 4)
            .max_messages_per_batch(a.opts.pull_batch)
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                failure("pull", &e);
                if sleep_or_stop(&mut stop, pull_retry).await {
                    break;
                }
                pull_retry = (pull_retry * 2).min(a.opts.retry_max);
                continue;
            }
        };
        pull_retry = a.opts.retry_initial;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        break 'pulls;
                    }
                }
                // Before the messages, so that a backlog does not starve linger and gaps.
                _ = tick.tick() => a.on_tick(&stop).await,
                m = messages.next() => match m {
                    Some(Ok(m)) => a.on_message(m, &stop).await,
                    Some(Err(e)) => {
                        failure("pull", &e);
                        // Heartbeats missed or the consumer changed: a new pull stream.
                        if sleep_or_stop(&mut stop, pull_retry).await {
                            break 'pulls;
                        }
                        continue 'pulls;
                    }
                    None => continue 'pulls,
                },
            }
        }
    }
    // Stopping: the complete group is written once more if possible; the rest is redelivered.
    if a.group.msgs > 0 && a.cut_ready() {
        a.flush(&stop, true).await;
    }
    a.stats.stored_upto = a.frontier;
    Ok(a.stats)
}

/// Whether the stop flag is up (or its sender gone).
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Sleeps `d`; returns true when `stop` came first.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        _ = tokio::time::sleep(d) => stopped(stop),
    }
}

/// The group being assembled: the contiguous sequences `first..=last` after the frontier.
#[derive(Default)]
struct Group {
    /// Messages in it (decodable ones; undecodable ones were terminated and only extend the
    /// sequence range).
    msgs: usize,
    /// Their handles by stream sequence, acknowledged after the insert.
    handles: BTreeMap<u64, Message>,
    /// Highest sequence in it (0: empty).
    last: u64,
    /// The flows.
    batch: FlowBatch,
    /// When its first message arrived.
    since: Option<Instant>,
}

/// The archiver's state (see the module doc); `run_archiver` only sequences its steps.
struct Archiver {
    consumer: PullConsumer,
    archive: Archive,
    opts: ArchiverOptions,
    /// Every sequence up to this one is stored (or was terminated / removed).
    frontier: u64,
    /// An insert that started but was not recorded as stored: the group must end exactly here.
    cut_at: Option<u64>,
    group: Group,
    /// Messages that arrived ahead of a missing sequence.
    held: BTreeMap<u64, Message>,
    /// When the consumer was last asked whether a gap can close.
    gap_checked: Option<Instant>,
    /// When progress acks were last sent.
    progress_at: Option<Instant>,
    ack_wait: Duration,
    stats: ArchiverStats,
}

impl Archiver {
    fn new(consumer: PullConsumer, archive: Archive, opts: ArchiverOptions) -> Self {
        let ack_wait = consumer.cached_info().config.ack_wait;
        let opts = ArchiverOptions {
            max_rows: opts.max_rows.clamp(1, pharos_clickhouse::MAX_BATCH_ROWS),
            ..opts
        };
        Self {
            consumer,
            archive,
            opts,
            frontier: 0,
            cut_at: None,
            group: Group::default(),
            held: BTreeMap::new(),
            gap_checked: None,
            progress_at: None,
            ack_wait: if ack_wait.is_zero() {
                Duration::from_secs(30)
            } else {
                ack_wait
            },
            stats: ArchiverStats::default(),
        }
    }

    /// Reads the ledger (retrying until it answers or `stop`): the frontier, and an insert left
    /// half done. Returns false when stopped first.
    async fn start(&mut self, stop: &mut watch::Receiver<bool>) -> Result<bool, ArchiveError> {
        let mut wait = self.opts.retry_initial;
        let (stored, started) = loop {
            match self.read_ledger().await {
                Ok(v) => break v,
                Err(e) => {
                    failure("ledger", &e);
                    if sleep_or_stop(stop, wait).await {
                        return Ok(false);
                    }
                    wait = (wait * 2).min(self.opts.retry_max);
                }
            }
        };
        // A ledger ahead of the stream belongs to another incarnation of it.
        let mut wait = self.opts.retry_initial;
        let info = loop {
            match self.consumer.get_info().await {
                Ok(i) => break i,
                Err(e) => {
                    failure("pull", &e);
                    if sleep_or_stop(stop, wait).await {
                        return Ok(false);
                    }
                    wait = (wait * 2).min(self.opts.retry_max);
                }
            }
        };
        let stream_last = info.delivered.stream_sequence + info.num_pending;
        if stored > stream_last {
            return Err(ArchiveError::LedgerAhead {
                stored,
                stream_last,
            });
        }
        self.frontier = stored;
        self.cut_at = started;
        tracing::info!(
            stored_upto = stored,
            unfinished = ?started,
            "archiver: starting after the stored stream sequences"
        );
        Ok(true)
    }

    /// The highest stored batch id, and the lowest batch id above it that was started but not
    /// stored.
    async fn read_ledger(&self) -> Result<(u64, Option<u64>), pharos_clickhouse::Error> {
        let c = self.archive.client();
        let body = c
            .query("SELECT max(batch_id) FROM pharos_batches WHERE state >= 1 FORMAT TabSeparated")
            .await?;
        let stored = parse_u64(&body)?.unwrap_or(0);
        let body = c
            .query(&format!(
                "SELECT min(batch_id) FROM (SELECT batch_id FROM pharos_batches \
                 WHERE batch_id > {stored} GROUP BY batch_id HAVING max(state) = 0) \
                 FORMAT TabSeparated"
            ))
            .await?;
        let started = parse_u64(&body)?.filter(|v| *v > stored);
        Ok((stored, started))
    }

    /// Whether the group may be written now: it reached its forced cut, or it has none.
    fn cut_ready(&self) -> bool {
        self.cut_at.is_none_or(|c| self.group.last >= c)
    }

    /// The next sequence the archiver can take.
    fn next_seq(&self) -> u64 {
        self.frontier.max(self.group.last) + 1
    }

    async fn on_message(&mut self, m: Message, stop: &watch::Receiver<bool>) {
        self.stats.messages += 1;
        let (seq, pending) = match m.info() {
            Ok(i) => (i.stream_sequence, i.pending),
            Err(e) => {
                // Not a JetStream delivery: nothing to acknowledge.
                failure("pull", &e);
                return;
            }
        };
        metrics::gauge!("pharos_cluster_archive_lag_messages").set(pending as f64);
        if seq <= self.frontier {
            // Stored already (a redelivery after a crash or a lost ack).
            self.stats.skipped += 1;
            metrics::counter!("pharos_cluster_archive_skipped_messages_total").increment(1);
            ack(&m, AckKind::Ack).await;
            return;
        }
        if seq <= self.group.last {
            // A second delivery of a message of the group: keep the newer handle.
            if let Some(h) = self.group.handles.get_mut(&seq) {
                *h = m;
            }
            return;
        }
        if seq != self.next_seq() {
            self.hold(seq, m).await;
            return;
        }
        self.take(seq, m, stop).await;
        self.drain_held(stop).await;
    }

    /// Keeps a message that arrived ahead of a missing sequence (or refuses it when too many
    /// are held).
    async fn hold(&mut self, seq: u64, m: Message) {
        let full = self.held.len() >= self.opts.max_held;
        self.stats.held += 1;
        match self.held.entry(seq) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                e.insert(m);
            }
            std::collections::btree_map::Entry::Vacant(e) if !full => {
                e.insert(m);
            }
            std::collections::btree_map::Entry::Vacant(_) => {
                ack(&m, AckKind::Nak(Some(self.opts.linger))).await;
            }
        }
    }

    /// Adds the message with the next sequence to the group, writing the group first when it
    /// would grow past `max_rows`.
    async fn take(&mut self, seq: u64, m: Message, stop: &watch::Receiver<bool>) {
        let mut batch = FlowBatch::new();
        if let Err(e) = crate::wire::decode_into(&m.payload, &mut batch) {
            self.stats.undecodable += 1;
            metrics::counter!("pharos_cluster_archive_dropped_total", "reason" => "undecodable")
                .increment(1);
            tracing::warn!(seq, subject = %m.subject, "archiver: terminating message: {e}");
            ack(&m, AckKind::Term).await;
            // The sequence is handled: it extends the group's range without rows.
            if self.group.msgs == 0 {
                self.frontier = seq;
                self.settle_cut();
            } else {
                self.group.last = seq;
            }
            self.flush_if_cut(stop).await;
            return;
        }
        if self.group.msgs > 0
            && self.cut_at.is_none()
            && self.group.batch.len() + batch.len() > self.opts.max_rows
        {
            self.flush(stop, false).await;
        }
        let g = &mut self.group;
        g.since.get_or_insert_with(Instant::now);
        g.msgs += 1;
        g.handles.insert(seq, m);
        g.last = seq;
        g.batch.extend_from(&batch);
        if g.batch.len() >= self.opts.max_rows && self.cut_at.is_none() {
            self.flush(stop, false).await;
        } else {
            self.flush_if_cut(stop).await;
        }
    }

    /// Writes the group when it reached the forced cut.
    async fn flush_if_cut(&mut self, stop: &watch::Receiver<bool>) {
        if let Some(c) = self.cut_at
            && self.group.last >= c
        {
            self.flush(stop, false).await;
        }
    }

    /// Takes the held messages that now follow the group.
    async fn drain_held(&mut self, stop: &watch::Receiver<bool>) {
        loop {
            let next = self.next_seq();
            // Redeliveries of what is now in the group or stored.
            while let Some(e) = self.held.first_entry() {
                if *e.key() >= next {
                    break;
                }
                let (seq, m) = e.remove_entry();
                if seq <= self.frontier {
                    self.stats.skipped += 1;
                    ack(&m, AckKind::Ack).await;
                } else if let Some(h) = self.group.handles.get_mut(&seq) {
                    *h = m;
                }
            }
            let Some(m) = self.held.remove(&next) else {
                return;
            };
            self.take(next, m, stop).await;
        }
    }

    /// Periodic work: write a group older than `linger`; ask whether a gap can close.
    async fn on_tick(&mut self, stop: &watch::Receiver<bool>) {
        if self.group.msgs > 0
            && self.cut_at.is_none()
            && self
                .group
                .since
                .is_some_and(|t| t.elapsed() >= self.opts.linger)
        {
            self.flush(stop, false).await;
        }
        if !self.held.is_empty()
            && self
                .gap_checked
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.gap_checked = Some(Instant::now());
            self.check_gap(stop).await;
        }
        if !self.group.handles.is_empty() || !self.held.is_empty() {
            self.keep_alive(false).await;
        }
    }

    /// When nothing but what this archiver holds awaits an acknowledgement, the missing
    /// sequences before the held messages will never come (terminated, or removed by the
    /// stream's limits): the group jumps over them.
    async fn check_gap(&mut self, stop: &watch::Receiver<bool>) {
        let info = match self.consumer.get_info().await {
            Ok(i) => i,
            Err(e) => {
                failure("pull", &e);
                return;
            }
        };
        let mine = self.group.handles.len() + self.held.len();
        if info.num_ack_pending > mine {
            return;
        }
        let Some((&first, _)) = self.held.first_key_value() else {
            return;
        };
        tracing::info!(
            from = self.next_seq(),
            to = first - 1,
            "archiver: stream sequences missing (terminated or expired): skipping them"
        );
        // A forced cut inside the gap ends the group there.
        if let Some(c) = self.cut_at
            && c < first
        {
            if self.group.msgs == 0 {
                self.frontier = self.frontier.max(c);
                self.settle_cut();
            } else {
                self.group.last = c;
                self.flush(stop, false).await;
            }
        }
        if self.group.msgs == 0 {
            self.frontier = self.frontier.max(first - 1);
            self.settle_cut();
        } else {
            self.group.last = first - 1;
        }
        self.drain_held(stop).await;
    }

    /// Progress acks for the held messages, at most every third of the ack wait (`force`:
    /// now), so they are not redelivered while they wait.
    async fn keep_alive(&mut self, force: bool) {
        let every = self.ack_wait / 3;
        if !force && self.progress_at.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.progress_at = Some(Instant::now());
        for m in self.group.handles.values().chain(self.held.values()) {
            ack(m, AckKind::Progress).await;
        }
    }

    /// Writes the group under its last sequence, retrying with backoff until it is stored (or,
    /// when `last_try`, or on `stop`, after one more failure), then acknowledges its messages.
    async fn flush(&mut self, stop: &watch::Receiver<bool>, last_try: bool) {
        let id = self.group.last;
        if id == 0 {
            return;
        }
        let mut wait = self.opts.retry_initial;
        let result = loop {
            match self.archive.insert(id, &self.group.batch).await {
                Ok(r) => break Some(r),
                Err(e) => {
                    self.stats.insert_failures += 1;
                    failure("insert", &format!("batch {id}: {e}"));
                    if last_try || stopped(stop) {
                        break None;
                    }
                    self.keep_alive(false).await;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.opts.retry_max);
                }
            }
        };
        let Some(result) = result else {
            return;
        };
        let rows = self.group.batch.len() as u64;
        let label = match result {
            Inserted::Written(n) => {
                self.stats.written += 1;
                self.stats.flows += n;
                metrics::counter!("pharos_cluster_archived_flows_total").increment(n);
                "written"
            }
            Inserted::Duplicate => {
                self.stats.duplicates += 1;
                "duplicate"
            }
            Inserted::Recovered => {
                self.stats.recovered += 1;
                "recovered"
            }
        };
        metrics::counter!("pharos_cluster_archive_batches_total", "result" => label).increment(1);
        tracing::debug!(
            batch_id = id,
            rows,
            result = label,
            "archiver: group stored"
        );
        let handles = std::mem::take(&mut self.group.handles);
        for m in handles.values() {
            ack(m, AckKind::Ack).await;
        }
        self.frontier = id;
        self.settle_cut();
        self.group.msgs = 0;
        self.group.last = 0;
        self.group.since = None;
        self.group.batch.clear();
    }

    /// Forgets a forced cut the frontier has passed.
    fn settle_cut(&mut self) {
        if self.cut_at.is_some_and(|c| c <= self.frontier) {
            self.cut_at = None;
        }
    }
}

/// Acknowledges `m` (a failure is counted: the message is redelivered and handled again).
async fn ack(m: &Message, kind: AckKind) {
    if let Err(e) = m.ack_with(kind).await {
        failure("ack", &e);
    }
}

/// Counts and logs a failure.
fn failure(reason: &'static str, e: &dyn std::fmt::Display) {
    metrics::counter!("pharos_cluster_archive_failures_total", "reason" => reason).increment(1);
    tracing::warn!(reason, "archiver: {e}");
}

/// Reads one unsigned number of a TabSeparated answer (`None` for an empty answer or `\N`).
fn parse_u64(body: &[u8]) -> Result<Option<u64>, pharos_clickhouse::Error> {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() || s == "\\N" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        pharos_clickhouse::Error::Decode(format!(
            "expected a batch id from pharos_batches, got {s:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_answers_parse_including_empty_ones() {
        assert_eq!(parse_u64(b"42\n").unwrap(), Some(42));
        assert_eq!(parse_u64(b"0\n").unwrap(), Some(0));
        assert_eq!(parse_u64(b"").unwrap(), None);
        assert_eq!(parse_u64(b"\\N\n").unwrap(), None);
        assert!(parse_u64(b"nope").is_err());
    }

    #[test]
    fn pull_expiry_stays_well_below_the_pin_timeout() {
        let mut cfg = ClusterConfig {
            pin_timeout: pharos_model::config::ConfigDuration::from_secs(1),
            ..ClusterConfig::default()
        };
        let o = ArchiverOptions::from_config(&cfg);
        assert!(o.pull_expiry * 2 < cfg.pin_timeout.get(), "{o:?}");
        cfg.pin_timeout = pharos_model::config::ConfigDuration::from_secs(60);
        assert_eq!(
            ArchiverOptions::from_config(&cfg).pull_expiry,
            Duration::from_secs(1)
        );
    }
}
