//! The flow stage: takes the batches the flow collectors decode and fans each one out to
//! independent consumers: the archive writer, the detector, the taps (silence watch, interface
//! counters).
//!
//! ```text
//! collectors --FlowBatch--> bounded channel --> dispatcher thread (counts, loss report)
//!     --Arc<FlowBatch>--> [archive queue] --> flow-archive thread (SegmentWriter: push + tick)
//!     --FlowBatch------> [detect queue]  --> detection thread (detect_stage)
//!     --Arc<FlowBatch>--> [taps queue]    --> flow-taps thread (SeenSources, InterfaceTotals)
//! ```
//!
//! Contract:
//! - Each consumer runs on its own thread behind its own bounded queue. The dispatcher never
//!   waits on a consumer: it offers each batch to every queue without blocking, so a slow
//!   consumer (an archive whose disk stalls) delays none of the others. Detection latency under
//!   full ingest load is that of an idle machine, as long as detection itself keeps up.
//! - A batch a full queue cannot take is lost for that consumer only, and counted: per consumer in
//!   `pharos_flow_stage_dropped_batches_total{consumer}`; for the archive also in flows as
//!   `pharos_flow_store_dropped_total{reason="backlog"}`, for detection as
//!   `pharos_detect_dropped_batches_total`. The [`LossReport`] (polled by the dispatcher) logs
//!   these with the collector's losses at most every 10 s.
//! - Each consumer's `tick` runs at least every [`TICK`] whether batches come or not (the archive
//!   cuts its one-second segments there); `finish` runs once its queue is drained after the
//!   collectors stopped (the archive writes everything it holds).
//! - Shutdown: stop the collectors (their channel closes), then [`FlowStage::join`]: the
//!   dispatcher drains the channel, closes every queue, and each consumer drains its queue and
//!   finishes; the detection queue closes with the dispatcher.

mod start;
#[cfg(test)]
mod tests;
mod traffic;

pub use start::{Publishing, Taps, start as start_path};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pharos_model::flow::FlowBatch;

use crate::loss_report::LossReport;

/// Longest time between two `tick`s of a consumer.
pub const TICK: Duration = Duration::from_millis(20);

/// One consumer of the flow stage, run on its own thread.
pub trait Consumer: Send + 'static {
    /// Takes one batch (every consumer sees the same batches, in collector order, minus those
    /// its full queue could not take).
    fn take(&mut self, batch: &FlowBatch);
    /// Periodic work, at least every [`TICK`].
    fn tick(&mut self) {}
    /// Called once, after the last batch.
    fn finish(&mut self) {}
    /// Flows this consumer lost on its own so far (the archive: neither written nor spilled),
    /// for the loss report (published to the dispatcher after each tick).
    fn own_losses(&self) -> u64 {
        0
    }
}

/// A consumer and its queue.
pub struct ConsumerSpec {
    /// Its name: the `consumer` label, the thread is `flow-<name>`.
    pub name: &'static str,
    /// Batches its queue holds.
    pub queue: usize,
    /// Whether it is the archive (its losses are flows not archived).
    pub archive: bool,
    /// The consumer.
    pub consumer: Box<dyn Consumer>,
}

/// The dispatcher's end of a consumer.
struct Lane {
    name: &'static str,
    archive: bool,
    tx: SyncSender<Arc<FlowBatch>>,
    /// Batches and flows its full queue could not take.
    dropped_batches: Arc<AtomicU64>,
    dropped_flows: u64,
    /// Batches in its queue (gauge).
    queued: Arc<AtomicI64>,
    /// The consumer's own losses (see [`Consumer::own_losses`]), published by its thread.
    own_losses: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

/// The running flow stage.
pub struct FlowStage {
    dispatcher: JoinHandle<()>,
    dropped: Vec<(&'static str, Arc<AtomicU64>)>,
}

impl FlowStage {
    /// Starts one thread per consumer and the dispatcher over `rx`. `detect` is the detection
    /// stage's queue (its thread is the detection stage's own).
    pub fn start(
        rx: Receiver<FlowBatch>,
        consumers: Vec<ConsumerSpec>,
        detect: Option<SyncSender<FlowBatch>>,
        losses: LossReport,
    ) -> std::io::Result<Self> {
        let mut lanes = Vec::with_capacity(consumers.len());
        for c in consumers {
            lanes.push(start_lane(c)?);
        }
        let mut dropped: Vec<_> = lanes
            .iter()
            .map(|l| (l.name, l.dropped_batches.clone()))
            .collect();
        let detect_dropped = Arc::new(AtomicU64::new(0));
        dropped.push(("detect", detect_dropped.clone()));
        let dispatcher = std::thread::Builder::new()
            .name("flow-stage".into())
            .spawn(move || dispatch(rx, lanes, detect, detect_dropped, losses))?;
        Ok(Self {
            dispatcher,
            dropped,
        })
    }

    /// Batches consumer `name` (or `detect`) did not get because its queue was full.
    #[cfg(test)]
    pub fn dropped_batches(&self, name: &str) -> Option<u64> {
        self.dropped
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.load(Ordering::Relaxed))
    }

    /// Waits until the collectors' channel is closed and drained and every consumer finished;
    /// logs the batches each consumer missed since the start, if any.
    pub fn join(self) {
        let Self {
            dispatcher,
            dropped,
        } = self;
        let _ = dispatcher.join();
        for (name, d) in &dropped {
            let n = d.load(Ordering::Relaxed);
            if n > 0 {
                tracing::warn!(
                    consumer = *name,
                    batches = n,
                    "flow stage: batches this consumer missed (its queue was full) since the start"
                );
            }
        }
    }
}

fn start_lane(spec: ConsumerSpec) -> std::io::Result<Lane> {
    let (tx, rx) = mpsc::sync_channel::<Arc<FlowBatch>>(spec.queue.max(1));
    let queued = Arc::new(AtomicI64::new(0));
    let own_losses = Arc::new(AtomicU64::new(0));
    let (q, own) = (queued.clone(), own_losses.clone());
    let name = spec.name;
    let mut consumer = spec.consumer;
    let thread = std::thread::Builder::new()
        .name(format!("flow-{name}"))
        .spawn(move || {
            let gauge = metrics::gauge!("pharos_flow_stage_queued_batches", "consumer" => name);
            let mut last_tick = Instant::now();
            loop {
                match rx.recv_timeout(TICK) {
                    Ok(b) => {
                        q.fetch_sub(1, Ordering::Relaxed);
                        consumer.take(&b);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if last_tick.elapsed() >= TICK {
                    last_tick = Instant::now();
                    consumer.tick();
                    own.store(consumer.own_losses(), Ordering::Relaxed);
                    gauge.set(q.load(Ordering::Relaxed).max(0) as f64);
                }
            }
            consumer.finish();
            own.store(consumer.own_losses(), Ordering::Relaxed);
            gauge.set(0.0);
        })?;
    Ok(Lane {
        name,
        archive: spec.archive,
        tx,
        dropped_batches: Arc::new(AtomicU64::new(0)),
        dropped_flows: 0,
        queued,
        own_losses,
        thread,
    })
}

/// The dispatcher: offers every batch to every consumer without waiting, counts what a full
/// queue refuses, polls the loss report; at the end closes the queues and joins the consumers.
fn dispatch(
    rx: Receiver<FlowBatch>,
    mut lanes: Vec<Lane>,
    mut detect: Option<SyncSender<FlowBatch>>,
    detect_dropped: Arc<AtomicU64>,
    mut losses: LossReport,
) {
    let batches = metrics::counter!("pharos_flow_batches_consumed_total");
    let records = metrics::counter!("pharos_flow_records_consumed_total");
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(b) => {
                batches.increment(1);
                records.increment(b.len() as u64);
                if let Some(tx) = &detect {
                    match tx.try_send(b.clone()) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            detect_dropped.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!("pharos_detect_dropped_batches_total").increment(1);
                            metrics::counter!("pharos_flow_stage_dropped_batches_total", "consumer" => "detect")
                                .increment(1);
                        }
                        Err(TrySendError::Disconnected(_)) => {
                            tracing::error!(
                                "detection thread stopped; flows are no longer detected on"
                            );
                            detect = None;
                        }
                    }
                }
                let b = Arc::new(b);
                for l in &mut lanes {
                    l.queued.fetch_add(1, Ordering::Relaxed);
                    match l.tx.try_send(b.clone()) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                            l.queued.fetch_sub(1, Ordering::Relaxed);
                            l.dropped_batches.fetch_add(1, Ordering::Relaxed);
                            l.dropped_flows += b.len() as u64;
                            metrics::counter!("pharos_flow_stage_dropped_batches_total", "consumer" => l.name)
                                .increment(1);
                            if l.archive {
                                metrics::counter!("pharos_flow_store_dropped_total", "reason" => "backlog")
                                    .increment(b.len() as u64);
                            }
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let archive: u64 = lanes
            .iter()
            .filter(|l| l.archive)
            .map(|l| l.dropped_flows + l.own_losses.load(Ordering::Relaxed))
            .sum();
        losses.poll(archive, detect_dropped.load(Ordering::Relaxed));
    }
    // Closing the detection queue lets the detection thread finish its attacks; closing the
    // lanes lets each consumer drain and finish.
    drop(detect);
    let mut threads = Vec::new();
    for l in lanes {
        drop(l.tx);
        threads.push((l.name, l.thread));
    }
    for (name, t) in threads {
        if t.join().is_err() {
            tracing::error!(consumer = name, "a flow stage consumer panicked");
        }
    }
}

/// Registers the descriptions of the stage's metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "pharos_flow_stage_dropped_batches_total",
        "Flow batches a consumer (archive, detect, taps) did not get because its queue was full"
    );
    metrics::describe_gauge!(
        "pharos_flow_stage_queued_batches",
        "Flow batches waiting in a consumer's queue"
    );
}
