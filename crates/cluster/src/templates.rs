//! Exporter templates and sampling tables shared by the collectors through the key-value
//! bucket [`TEMPLATE_BUCKET`] (issue 20): any collector decodes any exporter after a failover,
//! without waiting for the exporter's next template refresh (RFC 7011 exporters over UDP resend
//! them only every few minutes; GoFlow2 shares them through Redis for the same reason).
//!
//! ```text
//! listener decoders --learned--> TemplateShare outbox --put--> KV pharos_templates
//! KV watch (last value of every key, then updates) --receive--> TemplateShare --> every decoder
//! ```
//!
//! Contract:
//! - [`start_sync`] spawns one task per node on the current Tokio runtime. Every 100 ms
//!   ([`PUT_INTERVAL`]) it puts what the node's decoders learned (the latest value per key; keys
//!   `<exporter>.<v9|ipfix>.<domain>.<template id|sampling>`, see [`pharos_wire::share`]); a
//!   failed put is retried (the entry goes back to the share's bounded outbox).
//! - It watches the whole bucket with its current values first, so a collector started (or
//!   restarted) after the others gets every known template at once. Deleted or purged keys are
//!   forgotten by the share (decoders keep what they applied until it times out). A watch that
//!   ends or fails is opened again after a pause ([`RETRY`]); the values it replays are no-ops.
//! - Every entry from the bucket is untrusted: [`TemplateShare::receive`] validates it and the
//!   decoders apply it with their own bounds. Refusals are counted in
//!   `pharos_cluster_templates_dropped_total{reason}` and logged (the first
//!   [`LOGGED_REFUSALS`], then one in 1000), never a panic.
//! - Metrics: `pharos_cluster_templates_put_total`, `pharos_cluster_templates_received_total`,
//!   `pharos_cluster_templates_dropped_total{reason="invalid|key_mismatch|full|outbox_full"}`,
//!   `pharos_cluster_template_errors_total{op="put|watch|bucket"}`.
//! - [`TemplateSync::stop`] puts what is still learned (for at most [`STOP_PATIENCE`]) and ends
//!   the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use pharos_wire::share::valid_key;
use pharos_wire::{SharedEntry, TemplateShare};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connect::{Cluster, TEMPLATE_BUCKET};

/// How often learned entries are put.
pub const PUT_INTERVAL: Duration = Duration::from_millis(100);
/// Pause before a failed bucket lookup, watch or put is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long [`TemplateSync::stop`] keeps putting what is still learned.
pub const STOP_PATIENCE: Duration = Duration::from_secs(2);
/// Refused bucket entries logged one by one before only one in 1000 is.
pub const LOGGED_REFUSALS: u64 = 10;

/// Counters of a sync task (readable without a metrics recorder).
#[derive(Debug, Default)]
struct Counters {
    put: AtomicU64,
    received: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
}

/// A point-in-time copy of a sync task's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncStats {
    /// Entries put into the bucket.
    pub put: u64,
    /// Entries from the bucket accepted by the share (new or changed).
    pub received: u64,
    /// Entries from the bucket refused (invalid, wrong key, share full).
    pub refused: u64,
    /// Failed bucket lookups, watches and puts (all retried).
    pub errors: u64,
}

/// The running sync task of [`start_sync`].
#[derive(Debug)]
pub struct TemplateSync {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

/// Dropping it stops the task too (without waiting for its last puts).
impl Drop for TemplateSync {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl TemplateSync {
    /// The counters so far.
    pub fn stats(&self) -> SyncStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SyncStats {
            put: g(&self.counters.put),
            received: g(&self.counters.received),
            refused: g(&self.counters.refused),
            errors: g(&self.counters.errors),
        }
    }

    /// Puts what the decoders still have learned (for at most [`STOP_PATIENCE`]), ends the task
    /// and returns its counters.
    pub async fn stop(mut self) -> SyncStats {
        let _ = self.stop.send(true);
        if let Err(e) = (&mut self.task).await
            && e.is_panic()
        {
            tracing::error!("the template sync task panicked: {e}");
        }
        self.stats()
    }
}

/// Starts sharing `share` (the one given to the node's flow listeners,
/// `FlowUdpConfig::templates`) through the cluster's [`TEMPLATE_BUCKET`] (made by
/// [`Cluster::ensure`]). Must be called within a Tokio runtime.
pub fn start_sync(cluster: &Cluster, share: TemplateShare) -> TemplateSync {
    let (stop, stop_rx) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let task = SyncTask {
        cluster: cluster.clone(),
        share,
        stop: stop_rx,
        counters: counters.clone(),
        outbox_dropped_seen: 0,
    };
    TemplateSync {
        stop,
        task: tokio::spawn(task.run()),
        counters,
    }
}

/// The sync task's state.
struct SyncTask {
    cluster: Cluster,
    share: TemplateShare,
    stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
    outbox_dropped_seen: u64,
}

impl SyncTask {
    async fn run(mut self) {
        let Some(store) = self.bucket().await else {
            return;
        };
        let mut tick = tokio::time::interval(PUT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut entries: Option<kv::Watch> = None;
        let mut watch_retry = tokio::time::Instant::now();
        loop {
            if entries.is_none() && tokio::time::Instant::now() >= watch_retry {
                match store.watch_with_history(">").await {
                    Ok(w) => entries = Some(w),
                    Err(e) => {
                        self.error("watch");
                        tracing::warn!(bucket = TEMPLATE_BUCKET, error = %e, "cannot watch the template bucket, retrying in {} s", RETRY.as_secs());
                        watch_retry = tokio::time::Instant::now() + RETRY;
                    }
                }
            }
            tokio::select! {
                biased;
                _ = self.stop.changed() => break,
                e = next(&mut entries) => match e {
                    Some(Ok(entry)) => self.received(entry),
                    Some(Err(err)) => {
                        self.error("watch");
                        tracing::warn!(bucket = TEMPLATE_BUCKET, error = %err, "template bucket watch failed, opening it again");
                        entries = None;
                        watch_retry = tokio::time::Instant::now() + RETRY;
                    }
                    None => {
                        entries = None;
                        watch_retry = tokio::time::Instant::now() + RETRY;
                    }
                },
                _ = tick.tick() => {
                    if !self.put_learned(&store).await {
                        // The next tick retries; don't hammer a server that refuses.
                        tokio::select! {
                            _ = tokio::time::sleep(RETRY) => {}
                            _ = self.stop.changed() => break,
                        }
                    }
                }
            }
        }
        let _ = tokio::time::timeout(STOP_PATIENCE, self.put_learned(&store)).await;
        tracing::debug!("template sync stopped");
    }

    /// The bucket, retried until it exists or the task is stopped.
    async fn bucket(&mut self) -> Option<kv::Store> {
        loop {
            match self.cluster.template_bucket().await {
                Ok(s) => return Some(s),
                Err(e) => {
                    self.error("bucket");
                    tracing::warn!(error = %e, "template sharing waits for the bucket {TEMPLATE_BUCKET}, retrying in {} s", RETRY.as_secs());
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = self.stop.changed() => return None,
            }
        }
    }

    fn error(&self, op: &'static str) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("pharos_cluster_template_errors_total", "op" => op).increment(1);
    }

    /// One entry of the bucket's watch into the share.
    fn received(&mut self, entry: kv::Entry) {
        match entry.operation {
            kv::Operation::Delete | kv::Operation::Purge => {
                self.share.forget(&entry.key);
            }
            kv::Operation::Put => match self.share.receive(&entry.key, &entry.value) {
                Ok(()) => {
                    self.counters.received.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("pharos_cluster_templates_received_total").increment(1);
                }
                Err(e) => {
                    let n = self.counters.refused.fetch_add(1, Ordering::Relaxed) + 1;
                    metrics::counter!("pharos_cluster_templates_dropped_total", "reason" => e.reason())
                        .increment(1);
                    if n <= LOGGED_REFUSALS || n.is_multiple_of(1000) {
                        tracing::warn!(bucket = TEMPLATE_BUCKET, refused = n, "{e}");
                    }
                }
            },
        }
    }

    /// Puts every learned entry; returns false when a put failed (the rest goes back to the
    /// share, to be tried again).
    async fn put_learned(&mut self, store: &kv::Store) -> bool {
        let dropped = self.share.stats().outbox_dropped;
        if dropped > self.outbox_dropped_seen {
            metrics::counter!("pharos_cluster_templates_dropped_total", "reason" => "outbox_full")
                .increment(dropped - self.outbox_dropped_seen);
            self.outbox_dropped_seen = dropped;
        }
        if !self.share.has_learned() {
            return true;
        }
        let mut learned = self.share.take_learned().into_iter();
        while let Some(SharedEntry { key, value }) = learned.next() {
            if !valid_key(&key) {
                // Keys are derived by pharos-wire and always valid; never send a subject
                // wildcard or an empty token if that ever changed.
                tracing::error!(key = ?key, "not a valid template bucket key, entry not shared");
                continue;
            }
            match store.put(&key, value.clone().into()).await {
                Ok(_) => {
                    self.counters.put.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("pharos_cluster_templates_put_total").increment(1);
                }
                Err(e) => {
                    self.error("put");
                    tracing::warn!(bucket = TEMPLATE_BUCKET, key = %key, error = %e, "cannot store a learned template, retrying");
                    let mut rest = vec![SharedEntry { key, value }];
                    rest.extend(learned);
                    self.share.return_learned(rest);
                    return false;
                }
            }
        }
        true
    }
}

/// The next entry of the watch, or never while there is none.
async fn next(w: &mut Option<kv::Watch>) -> Option<Result<kv::Entry, kv::WatcherError>> {
    match w {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bucket_name_is_a_valid_key_value_bucket() {
        assert!(
            super::TEMPLATE_BUCKET
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
    }
}
