//! The collector side: flow batches split by destination partition and published to
//! `pharos.flows.<p>`, at least once, with backpressure.
//!
//! - [`FlowPublisher::push`] appends each row to its partition's pending batch
//!   ([`Partitioner::split_into`]); a partition holding `batch_flows` rows is published at once,
//!   the others by [`FlowPublisher::tick`] once their oldest row waited `linger`.
//! - A publish is a task on the runtime that retries until JetStream acknowledges it (for up to
//!   [`PUBLISH_PATIENCE`]), under the same `Nats-Msg-Id` (`<node>-<nonce>-<seq>`, the nonce drawn
//!   per publisher), so a batch whose acknowledgement was lost is stored once (the stream's
//!   duplicate window is [`DUPLICATE_WINDOW`](crate::connect::DUPLICATE_WINDOW)).
//! - At most `max_in_flight` publishes await their acknowledgement; the next `push` then waits:
//!   the caller's bounded queue fills and counts what it cannot take.
//! - Flows whose publish failed for good are counted in [`FlowPublisher::dropped`] and in
//!   `pharos_cluster_publish_dropped_total{reason}`.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use bytes::Bytes;
use pharos_model::flow::FlowBatch;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connect::Cluster;
use crate::partition::{self, Partitioner};
use crate::wire;

/// How long a publish is retried before its flows are counted as dropped.
pub const PUBLISH_PATIENCE: Duration = Duration::from_secs(60);

/// How long a publish waits for its acknowledgement before it is sent again (same
/// `Nats-Msg-Id`, so stored once).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Room left under the server's `max_payload` for the headers and the protocol line.
const HEADER_ROOM: usize = 1024;

/// What the publish tasks share with the publisher.
#[derive(Default)]
struct Shared {
    /// Flows given up on.
    dropped: AtomicU64,
    /// Flows in publishes not yet acknowledged.
    in_flight_flows: AtomicU64,
    /// Set when `finish` ran out of patience: the tasks stop retrying and count nothing more.
    abandoned: AtomicBool,
}

impl Shared {
    fn drop_flows(&self, flows: u64, reason: &'static str) {
        self.dropped.fetch_add(flows, Ordering::Relaxed);
        metrics::counter!("pharos_cluster_publish_dropped_total", "reason" => reason)
            .increment(flows);
    }
}

/// Publishes flow batches by partition from a plain (non-async) thread; see the module doc.
pub struct FlowPublisher {
    cluster: Cluster,
    js: async_nats::jetstream::Context,
    handle: Handle,
    parts: Partitioner,
    pending: Vec<FlowBatch>,
    since: Vec<Option<Instant>>,
    batch_flows: usize,
    linger: Duration,
    max_in_flight: usize,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    id_prefix: String,
    seq: u64,
    buf: Vec<u8>,
}

impl FlowPublisher {
    /// A publisher for `cluster`'s `[cluster]` settings, spawning its publishes on `handle`.
    /// Use it on a thread that is not one of the runtime's: `push`, `tick` and `finish` block.
    pub fn new(cluster: &Cluster, handle: Handle) -> Self {
        let cfg = cluster.config();
        let partitions = usize::from(cfg.partitions.max(1));
        let max_in_flight = cfg
            .max_in_flight
            .clamp(1, Semaphore::MAX_PERMITS.min(1 << 20));
        // The context spawns its acknowledgement task on the runtime.
        let _runtime = handle.enter();
        let js = async_nats::jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .build(cluster.client().clone());
        Self {
            cluster: cluster.clone(),
            js,
            handle: handle.clone(),
            parts: Partitioner::from_config(cfg),
            pending: (0..partitions).map(|_| FlowBatch::new()).collect(),
            since: vec![None; partitions],
            batch_flows: cfg.batch_flows.max(1),
            linger: cfg.linger.get(),
            max_in_flight,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            shared: Arc::new(Shared::default()),
            id_prefix: format!("{}-{:016x}-", cfg.node, nonce()),
            seq: 0,
            buf: Vec::new(),
        }
    }

    /// Adds `batch`'s rows to their partitions' pending batches and publishes every partition
    /// that reached `batch_flows`. Blocks while `max_in_flight` publishes await their
    /// acknowledgement.
    pub fn push(&mut self, batch: &FlowBatch) {
        if batch.is_empty() {
            return;
        }
        let before: Vec<usize> = self.pending.iter().map(FlowBatch::len).collect();
        self.parts.split_into(batch, &mut self.pending);
        let now = Instant::now();
        for (p, before) in before.into_iter().enumerate() {
            if self.pending[p].len() > before && self.since[p].is_none() {
                self.since[p] = Some(now);
            }
            while self.pending[p].len() >= self.batch_flows {
                let mut full = std::mem::take(&mut self.pending[p]);
                let rest = split_off(&mut full, self.batch_flows);
                self.since[p] = (!rest.is_empty()).then_some(now);
                self.pending[p] = rest;
                self.publish(p, full, None);
            }
        }
    }

    /// Publishes the partitions whose oldest pending row waited `linger` or longer.
    pub fn tick(&mut self) {
        let now = Instant::now();
        for p in 0..self.pending.len() {
            if self.since[p].is_some_and(|t| now.duration_since(t) >= self.linger) {
                self.flush_partition(p, None);
            }
        }
    }

    /// Publishes every pending row and waits up to `patience` for all acknowledgements. Flows
    /// still unacknowledged then are counted as dropped (`reason="shutdown"`), and their
    /// publishes stop retrying.
    pub fn finish(&mut self, patience: Duration) {
        let deadline = Instant::now() + patience;
        for p in 0..self.pending.len() {
            self.flush_partition(p, Some(deadline));
        }
        let permits = self.permits.clone();
        let n = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        let waited = self.handle.block_on(async {
            tokio::time::timeout_at(deadline.into(), permits.acquire_many_owned(n)).await
        });
        if !matches!(waited, Ok(Ok(_))) {
            self.shared.abandoned.store(true, Ordering::SeqCst);
            let left = self.shared.in_flight_flows.swap(0, Ordering::SeqCst);
            if left > 0 {
                tracing::warn!(
                    flows = left,
                    "flow publishes still unacknowledged at shutdown, counted as dropped"
                );
                self.shared.drop_flows(left, "shutdown");
            }
        }
    }

    /// Flows whose publish failed for good (after retries, or at shutdown).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Rows waiting in the pending batches.
    pub fn pending(&self) -> usize {
        self.pending.iter().map(FlowBatch::len).sum()
    }

    /// Publishes awaiting their acknowledgement.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.permits.available_permits()
    }

    fn flush_partition(&mut self, p: usize, deadline: Option<Instant>) {
        self.since[p] = None;
        if self.pending[p].is_empty() {
            return;
        }
        let b = std::mem::take(&mut self.pending[p]);
        self.publish(p, b, deadline);
    }

    /// Encodes `batch` (halving it while it exceeds the server's payload limit) and hands each
    /// message to a publish task.
    fn publish(&mut self, p: usize, mut batch: FlowBatch, deadline: Option<Instant>) {
        let max_payload = self
            .cluster
            .client()
            .server_info()
            .max_payload
            .saturating_sub(HEADER_ROOM)
            .max(HEADER_ROOM);
        self.buf.clear();
        wire::encode(&batch, &mut self.buf);
        if self.buf.len() > max_payload {
            if batch.len() > 1 {
                let half = batch.len() / 2;
                let rest = split_off(&mut batch, half);
                self.publish(p, batch, deadline);
                self.publish(p, rest, deadline);
            } else {
                tracing::warn!(
                    bytes = self.buf.len(),
                    max_payload,
                    "one flow encodes larger than the NATS server's max_payload, dropped"
                );
                self.shared.drop_flows(1, "too_large");
            }
            return;
        }
        let flows = batch.len() as u64;
        let permit = self.acquire(deadline);
        let Some(permit) = permit else {
            self.shared.drop_flows(flows, "shutdown");
            return;
        };
        self.seq += 1;
        let msg_id = format!("{}{}", self.id_prefix, self.seq);
        let payload = Bytes::copy_from_slice(&self.buf);
        // `p` < partitions <= 1024 by the configuration's validation.
        let subject = partition::subject(u16::try_from(p).unwrap_or(u16::MAX));
        self.shared
            .in_flight_flows
            .fetch_add(flows, Ordering::SeqCst);
        metrics::gauge!("pharos_cluster_publish_in_flight").increment(1.0);
        let js = self.js.clone();
        let shared = self.shared.clone();
        self.handle.spawn(async move {
            publish_task(js, subject, msg_id, payload, flows, shared).await;
            metrics::gauge!("pharos_cluster_publish_in_flight").decrement(1.0);
            drop(permit);
        });
    }

    fn acquire(&self, deadline: Option<Instant>) -> Option<OwnedSemaphorePermit> {
        let permits = self.permits.clone();
        match deadline {
            None => self.handle.block_on(permits.acquire_owned()).ok(),
            Some(d) => self
                .handle
                .block_on(async {
                    tokio::time::timeout_at(d.into(), permits.acquire_owned()).await
                })
                .ok()
                .and_then(Result::ok),
        }
    }
}

impl Drop for FlowPublisher {
    /// Rows still pending (no [`FlowPublisher::finish`]) are counted as dropped
    /// (`reason="not_finished"`); publishes in flight go on on the runtime.
    fn drop(&mut self) {
        let left = self.pending() as u64;
        if left > 0 {
            tracing::warn!(
                flows = left,
                "flow publisher dropped without finish: its pending flows are lost"
            );
            self.shared.drop_flows(left, "not_finished");
        }
    }
}

/// Publishes one message until JetStream acknowledges it, [`PUBLISH_PATIENCE`] runs out, or the
/// publisher gave up at shutdown.
async fn publish_task(
    js: async_nats::jetstream::Context,
    subject: String,
    msg_id: String,
    payload: Bytes,
    flows: u64,
    shared: Arc<Shared>,
) {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id.as_str());
    let deadline = Instant::now() + PUBLISH_PATIENCE;
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let res = match js
            .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        if shared.abandoned.load(Ordering::SeqCst) {
            // `finish` counted these flows already.
            return;
        }
        let reason = match res {
            Ok(ack) => {
                shared.in_flight_flows.fetch_sub(flows, Ordering::SeqCst);
                metrics::counter!("pharos_cluster_published_flows_total").increment(flows);
                metrics::counter!("pharos_cluster_published_batches_total").increment(1);
                if ack.duplicate {
                    metrics::counter!("pharos_cluster_publish_duplicates_total").increment(1);
                }
                if attempt > 1 {
                    tracing::debug!(%subject, %msg_id, attempt, "flow batch published after retries");
                }
                return;
            }
            Err(e) => {
                let reason = match e.kind() {
                    PublishErrorKind::MaxPayloadExceeded => {
                        shared.in_flight_flows.fetch_sub(flows, Ordering::SeqCst);
                        tracing::warn!(%subject, error = %e, "flow batch larger than the server accepts, dropped");
                        shared.drop_flows(flows, "too_large");
                        return;
                    }
                    PublishErrorKind::TimedOut => "timeout",
                    PublishErrorKind::StreamNotFound => "no_stream",
                    PublishErrorKind::BrokenPipe => "disconnected",
                    _ => "error",
                };
                tracing::debug!(%subject, %msg_id, attempt, error = %e, "flow batch publish failed, retrying");
                metrics::counter!("pharos_cluster_publish_retries_total", "reason" => reason)
                    .increment(1);
                reason
            }
        };
        if Instant::now() + delay >= deadline {
            shared.in_flight_flows.fetch_sub(flows, Ordering::SeqCst);
            tracing::warn!(%subject, flows, reason, "flow batch not acknowledged by JetStream in {PUBLISH_PATIENCE:?}, dropped");
            shared.drop_flows(flows, reason);
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Moves the rows `at..` of `b` into a new batch.
fn split_off(b: &mut FlowBatch, at: usize) -> FlowBatch {
    let n = b.len();
    if at >= n {
        return FlowBatch::new();
    }
    let mut rest = FlowBatch::with_capacity(n - at);
    for i in at..n {
        rest.push(&b.get(i));
    }
    b.truncate(at);
    rest
}

/// A value unlikely to repeat across the publishers of all nodes and boots: the process's random
/// hash keys over the time, the process id and a counter.
fn nonce() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .hash(&mut h);
    std::process::id().hash(&mut h);
    COUNT.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::flow::FlowRecord;

    #[test]
    fn split_off_keeps_order_and_rows() {
        let mut b = FlowBatch::new();
        for i in 0..10u64 {
            b.push(&FlowRecord {
                bytes: i,
                ..Default::default()
            });
        }
        let rest = split_off(&mut b, 4);
        assert_eq!(b.len(), 4);
        assert_eq!(rest.len(), 6);
        assert_eq!(rest.get(0).bytes, 4);
        assert_eq!(b.get(3).bytes, 3);
        assert!(split_off(&mut b, 4).is_empty());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }
}
