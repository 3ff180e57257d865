//! The analyser side: a task per partition pulls its consumer `pharos-analyse-<p>` in the
//! priority group [`ANALYSER_GROUP`], decodes each batch and hands it to the detection stage.
//!
//! Ownership is the server's pinned-client policy: the first analyser to receive a message of a
//! partition keeps it while it keeps pulling. [`start_partitions`] pulls the partitions this node
//! prefers at once; for the others it stands by from `standby_delay` on: it watches the
//! consumer (every pull expiry) and pulls only once no other client does, so that it never takes
//! a live owner's partition, not even one without a pin yet. The pin then moves to it
//! `pin_timeout` after the owner's last pull request (the owner died), or at once when the owner
//! stopped with [`Partitions::stop`], which unpins. With every analyser up, each owns its
//! preferred partitions.
//!
//! A batch is acknowledged (double ack: the server confirms) after the detection stage took it;
//! one that was delivered but not acknowledged (the analyser died) is redelivered after
//! `ack_wait`: at least once. A message that does not decode is terminated and counted in
//! `pharos_cluster_consume_dropped_total{reason="undecodable"}`.
//!
//! The detection stage must keep taking batches: a task blocked on a full channel does not pull,
//! and after `pin_timeout` without a pull its partition moves to a standby analyser.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use futures_util::{FutureExt, StreamExt};
use pharos_model::flow::FlowBatch;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connect::{ANALYSER_GROUP, Cluster, FLOW_STREAM, analyse_consumer_name};
use crate::wire;

/// Messages asked for in one pull request: few, so that few are in flight at a failover.
pub const PULL_BATCH: usize = 4;

/// The pull expiry for `pin_timeout`: under half of it, so that a live analyser renews its pull
/// (and keeps its pin) at least twice per `pin_timeout`.
pub fn pull_expiry(pin_timeout: Duration) -> Duration {
    (pin_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(10))
}

/// What a partition task shares with [`Partitions`].
#[derive(Default)]
struct PartState {
    /// When the last batch arrived, ms after `Partitions::epoch` plus one (0: never).
    last_ms: AtomicU64,
    /// The `Nats-Pin-Id` of the last message received.
    pin_id: Mutex<Option<String>>,
    /// The server said this node's pin id is the partition's pinned client.
    pinned: AtomicBool,
}

/// The partition tasks of this analyser; see the module doc.
pub struct Partitions {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    monitor: JoinHandle<()>,
    state: Arc<Vec<PartState>>,
    pin_timeout: Duration,
    epoch: Instant,
}

/// Starts a task per partition of `cluster` (call within a Tokio runtime): the partitions for
/// which `prefer(p)` holds pull at once, the others stand by from `standby_delay` on (see the
/// module doc). Each batch goes to `tx` (a blocking send off the runtime's threads) and is then
/// acknowledged.
pub fn start_partitions(
    cluster: &Cluster,
    prefer: impl Fn(u16) -> bool,
    tx: SyncSender<FlowBatch>,
    standby_delay: Duration,
) -> Partitions {
    let partitions = cluster.config().partitions;
    let pin_timeout = cluster.config().pin_timeout.get();
    let epoch = Instant::now();
    let state: Arc<Vec<PartState>> =
        Arc::new((0..partitions).map(|_| PartState::default()).collect());
    let (stop, stop_rx) = watch::channel(false);
    let tasks = (0..partitions)
        .map(|p| {
            let task = PartitionTask {
                cluster: cluster.clone(),
                p,
                tx: tx.clone(),
                state: state.clone(),
                stop: stop_rx.clone(),
                epoch,
                expiry: pull_expiry(pin_timeout),
            };
            let delay = (!prefer(p)).then_some(standby_delay);
            tokio::spawn(task.run(delay))
        })
        .collect();
    let monitor = tokio::spawn(monitor(
        cluster.clone(),
        state.clone(),
        stop_rx,
        pin_timeout,
        epoch,
    ));
    Partitions {
        stop,
        tasks,
        monitor,
        state,
        pin_timeout,
        epoch,
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn owned_of(state: &[PartState], epoch: Instant, pin_timeout: Duration) -> Vec<u16> {
    let now = ms_since(epoch);
    let window = u64::try_from(pin_timeout.as_millis()).unwrap_or(u64::MAX);
    state
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let last = s.last_ms.load(Ordering::Relaxed);
            (last != 0 && now.saturating_sub(last - 1) < window) || s.pinned.load(Ordering::Relaxed)
        })
        .filter_map(|(p, _)| u16::try_from(p).ok())
        .collect()
}

impl Partitions {
    /// The partitions this node received a batch of within the last `pin_timeout`, or whose pin
    /// the server last said is this node's.
    pub fn owned(&self) -> Vec<u16> {
        owned_of(&self.state, self.epoch, self.pin_timeout)
    }

    /// Stops pulling: messages received but not handed over are returned to the server (nak,
    /// redelivered at once), and each partition pinned to this node is unpinned so that a
    /// standby analyser takes it over now rather than after `pin_timeout`.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        for t in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await
                && e.is_panic()
            {
                tracing::error!(error = %e, "a partition task panicked");
            }
        }
        self.monitor.abort();
        metrics::gauge!("pharos_cluster_partitions_owned").set(0.0);
    }
}

impl Drop for Partitions {
    /// Without [`Partitions::stop`] the tasks are aborted: nothing is acknowledged or returned,
    /// as if the node died (its partitions move after `pin_timeout`, its unacknowledged batches
    /// are redelivered after `ack_wait`).
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.monitor.abort();
    }
}

/// Asks the server, every half `pin_timeout`, whether the pin ids this node holds are still the
/// pinned clients, and publishes the owned count.
async fn monitor(
    cluster: Cluster,
    state: Arc<Vec<PartState>>,
    mut stop: watch::Receiver<bool>,
    pin_timeout: Duration,
    epoch: Instant,
) {
    let period = (pin_timeout / 2).max(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        let stream = match cluster.jetstream().get_stream_no_info(FLOW_STREAM).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot look up the flow stream");
                continue;
            }
        };
        for (p, s) in state.iter().enumerate() {
            let mine = s.pin_id.lock().map(|g| g.clone()).unwrap_or(None);
            let Some(mine) = mine else {
                s.pinned.store(false, Ordering::Relaxed);
                continue;
            };
            let name = analyse_consumer_name(u16::try_from(p).unwrap_or(u16::MAX));
            match stream.consumer_info(&name).await {
                Ok(info) => {
                    let pinned = info.priority_groups.iter().any(|g| {
                        g.group == ANALYSER_GROUP && g.pinned_client_id.as_deref() == Some(&mine)
                    });
                    s.pinned.store(pinned, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(consumer = %name, error = %e, "consumer info failed"),
            }
        }
        let n = owned_of(&state, epoch, pin_timeout).len();
        metrics::gauge!("pharos_cluster_partitions_owned").set(n as f64);
    }
}

/// One partition's pull loop.
struct PartitionTask {
    cluster: Cluster,
    p: u16,
    tx: SyncSender<FlowBatch>,
    state: Arc<Vec<PartState>>,
    stop: watch::Receiver<bool>,
    epoch: Instant,
    expiry: Duration,
}

/// Why a pull stream ended.
enum End {
    Stop(Vec<async_nats::jetstream::Message>),
    Receiver,
    Retry,
}

impl PartitionTask {
    fn st(&self) -> &PartState {
        &self.state[usize::from(self.p)]
    }

    /// Sleeps `d` unless stopped first; returns whether stopped.
    async fn sleep_or_stop(&mut self, d: Duration) -> bool {
        if *self.stop.borrow() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => *self.stop.borrow(),
            _ = self.stop.changed() => true,
        }
    }

    async fn run(mut self, delay: Option<Duration>) {
        let expiry = pull_expiry(self.cluster.config().pin_timeout.get());
        if let Some(d) = delay {
            if self.sleep_or_stop(d).await {
                return;
            }
            // Standby: the server pins a partition to whichever client a message first goes to,
            // so pulling beside a live owner could take its partition at the first message.
            // Pull only once nobody else does (the owner's pull requests expired: it died or
            // stopped); from then on the pin decides, and a live owner keeps it.
            while self.others_pulling().await {
                if self.sleep_or_stop(expiry).await {
                    return;
                }
            }
            tracing::info!(
                partition = self.p,
                "partition without a puller: taking it over"
            );
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            if *self.stop.borrow() {
                return;
            }
            let consumer = match self.cluster.analyse_consumer(self.p).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(partition = self.p, error = %e, "cannot get the partition's consumer, retrying");
                    if self.sleep_or_stop(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let messages = consumer
                .stream()
                .group(ANALYSER_GROUP)
                .expires(expiry)
                .max_messages_per_batch(PULL_BATCH)
                .messages()
                .await;
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(partition = self.p, error = %e, "cannot pull the partition, retrying");
                    if self.sleep_or_stop(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            match self.pull(&mut messages).await {
                End::Stop(unhandled) => {
                    drop(messages);
                    self.release(unhandled).await;
                    return;
                }
                End::Receiver => {
                    drop(messages);
                    self.release(Vec::new()).await;
                    return;
                }
                End::Retry => {
                    if self.sleep_or_stop(Duration::from_millis(500)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Whether other clients have pull requests waiting on this partition's consumer (an
    /// unreachable server counts as yes: standing by longer is safe, taking over is not).
    async fn others_pulling(&self) -> bool {
        let name = analyse_consumer_name(self.p);
        let info = async {
            let stream = self
                .cluster
                .jetstream()
                .get_stream_no_info(FLOW_STREAM)
                .await
                .ok()?;
            stream.consumer_info(&name).await.ok()
        };
        match info.await {
            Some(i) => i.num_waiting > 0,
            None => true,
        }
    }

    async fn pull(&mut self, messages: &mut async_nats::jetstream::consumer::pull::Stream) -> End {
        loop {
            let next = tokio::select! {
                biased;
                _ = self.stop.changed() => {
                    // Take what already arrived, to give it back.
                    let mut unhandled = Vec::new();
                    while let Some(Some(Ok(m))) = messages.next().now_or_never() {
                        unhandled.push(m);
                    }
                    return End::Stop(unhandled);
                }
                m = messages.next() => m,
            };
            let msg = match next {
                None => return End::Retry,
                Some(Err(e)) => match e.kind() {
                    MessagesErrorKind::ConsumerDeleted
                    | MessagesErrorKind::PushBasedConsumer
                    | MessagesErrorKind::RequestLimitExceeded => {
                        tracing::warn!(partition = self.p, error = %e, "partition pull ended, pulling again");
                        return End::Retry;
                    }
                    _ => {
                        // The client reconnects and pulls again; do not spin meanwhile.
                        tracing::debug!(partition = self.p, error = %e, "partition pull error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                Some(Ok(m)) => m,
            };
            if !self.handle(msg).await {
                return End::Receiver;
            }
        }
    }

    /// Decodes, hands over and acknowledges one message; false when the receiver is gone.
    async fn handle(&self, msg: async_nats::jetstream::Message) -> bool {
        if let Some(id) = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Pin-Id"))
            .map(|v| v.as_str().to_owned())
            && let Ok(mut g) = self.st().pin_id.lock()
            && g.as_deref() != Some(id.as_str())
        {
            *g = Some(id);
        }
        self.st()
            .last_ms
            .store(ms_since(self.epoch) + 1, Ordering::Relaxed);
        let batch = match wire::decode(&msg.payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(partition = self.p, subject = %msg.subject, error = %e, "undecodable flow batch, terminated");
                metrics::counter!("pharos_cluster_consume_dropped_total", "reason" => "undecodable")
                    .increment(1);
                if let Err(e) = msg.ack_with(AckKind::Term).await {
                    tracing::debug!(error = %e, "terminating an undecodable message failed");
                }
                return true;
            }
        };
        if msg.info().is_ok_and(|i| i.delivered > 1) {
            metrics::counter!("pharos_cluster_consume_redelivered_total").increment(1);
        }
        let flows = batch.len() as u64;
        let tx = self.tx.clone();
        let sent = tokio::task::spawn_blocking(move || tx.send(batch).is_ok()).await;
        if !matches!(sent, Ok(true)) {
            tracing::info!(
                partition = self.p,
                "the detection stage is gone, stopping the partition"
            );
            if let Err(e) = msg.ack_with(AckKind::Nak(None)).await {
                tracing::debug!(error = %e, "returning a message failed");
            }
            return false;
        }
        metrics::counter!("pharos_cluster_consumed_flows_total").increment(flows);
        // Bounded by the pull expiry, so that a slow confirmation (a server failing over) does
        // not keep this task from pulling, and its partition's pin from being renewed.
        match tokio::time::timeout(self.expiry, msg.double_ack()).await {
            Ok(Ok(())) => {}
            // Redelivered after ack_wait if the server did not record it: at least once.
            Ok(Err(e)) => {
                tracing::debug!(partition = self.p, error = %e, "acknowledgement not confirmed")
            }
            Err(_) => tracing::debug!(partition = self.p, "acknowledgement not confirmed in time"),
        }
        true
    }

    /// After the pull stream was dropped: unpins the partition if its pin is this node's, then
    /// returns `unhandled` for redelivery.
    async fn release(&self, unhandled: Vec<async_nats::jetstream::Message>) {
        let mine = self.st().pin_id.lock().map(|g| g.clone()).unwrap_or(None);
        if let Some(mine) = mine {
            let name = analyse_consumer_name(self.p);
            if let Ok(stream) = self
                .cluster
                .jetstream()
                .get_stream_no_info(FLOW_STREAM)
                .await
            {
                let pinned = stream.consumer_info(&name).await.is_ok_and(|i| {
                    i.priority_groups.iter().any(|g| {
                        g.group == ANALYSER_GROUP && g.pinned_client_id.as_deref() == Some(&mine)
                    })
                });
                if pinned {
                    match stream.unpin_consumer(&name, ANALYSER_GROUP).await {
                        Ok(()) => tracing::debug!(partition = self.p, "partition unpinned"),
                        Err(e) => {
                            tracing::debug!(partition = self.p, error = %e, "unpinning failed")
                        }
                    }
                }
            }
        }
        self.st().pinned.store(false, Ordering::Relaxed);
        for m in unhandled {
            if let Err(e) = m.ack_with(AckKind::Nak(None)).await {
                tracing::debug!(error = %e, "returning a message failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_under_half_the_pin_timeout() {
        for s in [1u64, 2, 5, 30, 120] {
            let t = Duration::from_secs(s);
            assert!(pull_expiry(t) * 2 < t, "{s}");
        }
    }

    #[test]
    fn owned_by_recent_batch_or_pin() {
        let epoch = Instant::now() - Duration::from_secs(100);
        let state: Vec<PartState> = (0..3).map(|_| PartState::default()).collect();
        state[0]
            .last_ms
            .store(ms_since(epoch) + 1, Ordering::Relaxed);
        state[1].last_ms.store(1, Ordering::Relaxed);
        state[2].pinned.store(true, Ordering::Relaxed);
        assert_eq!(owned_of(&state, epoch, Duration::from_secs(5)), vec![0, 2]);
    }
}
