//! The decode half of a listener: turns the raw datagrams of its receive thread
//! ([`super::receive`]) into [`FlowBatch`]es for the next stage.
//!
//! Contract:
//! - Datagrams are decoded in the order they were read, by one [`FlowDecoder`] per listener
//!   (templates and sequence numbers are per exporter, so order matters).
//! - A batch leaves when it holds `batch_flows` flows, when its oldest flow is [`FLUSH_AGE`] old,
//!   or when no datagram came for that long; it is handed on without blocking: a full channel
//!   drops it, counted (`queue_full`, or `shutdown` while stopping).
//! - Exporter clocks are estimated and corrected here ([`super::clock`]).
//! - With [`FlowUdpConfig::templates`] set, the decoder hands the templates and sampling tables
//!   it learns to the share when it learns them and applies what the share received before its
//!   next datagram (one atomic load per datagram otherwise; see `pharos_wire::share`); counted
//!   in `pharos_flow_templates_shared_total{listener,direction="out|in|ignored"}`.
//! - When the receive thread has gone (stop), what is left is decoded and sent, then the thread
//!   exits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};
use pharos_model::flow::{ExporterClocks, FlowBatch};
use pharos_wire::{FlowDecoder, Protocol};

use super::receive::{Backlog, RawBatch};
use super::{CollectorStats, FlowUdpConfig, ListenerInfo, clock, drop_reason, now_ms};

/// Longest a decoded flow waits in a listener before its batch is sent (at low rates batches are
/// small; at high rates they fill up to `batch_flows` first).
pub(super) const FLUSH_AGE: Duration = Duration::from_millis(20);

/// Per-protocol metric handles of one listener.
struct ProtoCounters {
    datagrams: Counter,
    records: Counter,
}

/// The decode thread's state.
pub(super) struct DecodeLoop {
    info: ListenerInfo,
    decoder: FlowDecoder,
    rx: Receiver<RawBatch>,
    recycle: SyncSender<RawBatch>,
    backlog: Arc<Backlog>,
    tx: SyncSender<FlowBatch>,
    stop: Arc<AtomicBool>,
    stats: Arc<CollectorStats>,
    batch: FlowBatch,
    batch_datagrams: u64,
    batch_flows: usize,
    label: String,
    protos: Vec<(Protocol, ProtoCounters)>,
    lost: HashMap<IpAddr, Counter>,
    decoder_drops_seen: std::collections::BTreeMap<&'static str, u64>,
    /// Shared templates counted so far: handed out, applied, ignored.
    shared_seen: [u64; 3],
    batches: Counter,
    templates: Gauge,
    clock: clock::ClockEstimator,
    clocks: ExporterClocks,
    clock_untracked_seen: u64,
    /// How long to wait for datagrams while no batch is pending (`[flow]`'s `read_timeout`).
    idle_timeout: Duration,
    /// When the oldest flow of the pending batch was decoded.
    pending_since: Option<Instant>,
}

/// The channels a decode thread works between.
pub(super) struct DecodeChannels {
    /// Raw datagrams from the receive thread.
    pub rx: Receiver<RawBatch>,
    /// Emptied raw batches back to the receive thread, for reuse.
    pub recycle: SyncSender<RawBatch>,
    /// Decoded batches to the next stage.
    pub tx: SyncSender<FlowBatch>,
}

impl DecodeLoop {
    pub fn new(
        info: ListenerInfo,
        decoder: FlowDecoder,
        channels: DecodeChannels,
        backlog: Arc<Backlog>,
        stop: Arc<AtomicBool>,
        stats: Arc<CollectorStats>,
        config: &FlowUdpConfig,
    ) -> Self {
        let label = info.local.to_string();
        Self {
            batch: FlowBatch::with_capacity(config.batch_flows.max(1) + 64),
            batch_datagrams: 0,
            batch_flows: config.batch_flows.max(1),
            batches: metrics::counter!("pharos_flow_batches_total", "listener" => label.clone()),
            templates: metrics::gauge!("pharos_flow_templates", "listener" => label.clone()),
            protos: Vec::new(),
            lost: HashMap::new(),
            decoder_drops_seen: Default::default(),
            shared_seen: [0; 3],
            clock: clock::ClockEstimator::new(ExporterClocks::LIMIT),
            clocks: config.clocks.clone(),
            clock_untracked_seen: 0,
            idle_timeout: config.read_timeout,
            pending_since: None,
            rx: channels.rx,
            recycle: channels.recycle,
            tx: channels.tx,
            label,
            info,
            decoder,
            backlog,
            stop,
            stats,
        }
    }

    pub fn run(&mut self) {
        let mut last_housekeeping = Instant::now();
        loop {
            // While a batch is pending wait at most FLUSH_AGE, so a lone datagram (the first of an
            // attack, at a low background rate) leaves within 2 x FLUSH_AGE.
            let wait = if self.batch.is_empty() {
                self.idle_timeout.min(Duration::from_secs(1))
            } else {
                FLUSH_AGE
            };
            let got = match self.rx.recv_timeout(wait) {
                Ok(raw) => {
                    self.decode_batch(&raw);
                    self.give_back(raw);
                    true
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if !self.batch.is_empty() {
                let since = *self.pending_since.get_or_insert_with(Instant::now);
                if !got || self.batch.len() >= self.batch_flows || since.elapsed() >= FLUSH_AGE {
                    self.flush();
                }
            }
            if last_housekeeping.elapsed() >= Duration::from_secs(1) {
                self.housekeeping();
                last_housekeeping = Instant::now();
            }
        }
        self.flush();
        self.housekeeping();
        tracing::debug!(listener = %self.info.local, "flow decode thread stopped");
    }

    /// Releases the batch's bytes from the backlog and hands its allocation back for reuse.
    fn give_back(&self, raw: RawBatch) {
        self.backlog.release(raw.weight());
        let _ = self.recycle.try_send(raw);
    }

    fn decode_batch(&mut self, raw: &RawBatch) {
        let received_ms = raw.received_ms;
        let mut datagrams = 0u64;
        let mut records = 0u64;
        for d in &raw.items {
            let Some(from) = d.from else {
                self.drop_datagram("no_source");
                continue;
            };
            if d.truncated {
                self.drop_datagram("truncated");
                continue;
            }
            let first_row = self.batch.len();
            match self
                .decoder
                .decode(from, received_ms, raw.payload(d), &mut self.batch)
            {
                Ok(out) => {
                    if let Some(export_ms) = out.export_ms {
                        self.place_in_time(
                            from.ip(),
                            out.domain,
                            export_ms,
                            received_ms,
                            first_row,
                        );
                    }
                    datagrams += 1;
                    records += out.flows as u64;
                    self.batch_datagrams += 1;
                    let c = proto_counters(&mut self.protos, &self.label, out.protocol);
                    c.datagrams.increment(1);
                    c.records.increment(out.flows as u64);
                    if out.lost > 0 {
                        self.stats.lost.fetch_add(out.lost, Ordering::Relaxed);
                        self.lost
                            .entry(from.ip())
                            .or_insert_with(|| metrics::counter!("pharos_flow_lost_total", "exporter" => from.ip().to_string()))
                            .increment(out.lost);
                    }
                    if !out.counters.is_empty() {
                        metrics::counter!("pharos_flow_counter_samples_total")
                            .increment(out.counters.len() as u64);
                    }
                }
                Err(e) => {
                    tracing::trace!(listener = %self.info.local, %from, error = %e, "flow datagram dropped");
                    self.drop_datagram(drop_reason(&e));
                }
            }
            // A batch leaves as soon as it is full, even in the middle of a read.
            if self.batch.len() >= self.batch_flows {
                self.flush();
            }
        }
        self.stats.datagrams.fetch_add(datagrams, Ordering::Relaxed);
        self.stats.records.fetch_add(records, Ordering::Relaxed);
    }

    /// Estimates the exporter's clock offset from one datagram and corrects the times of the
    /// flows it appended (rows from `first_row` on); publishes the estimate when it is new or its
    /// correction started or stopped (otherwise every second, in [`Self::housekeeping`]).
    fn place_in_time(
        &mut self,
        exporter: IpAddr,
        domain: u32,
        export_ms: u64,
        received_ms: u64,
        first_row: usize,
    ) {
        let o = self.clock.observe(exporter, domain, export_ms, received_ms);
        clock::correct(&mut self.batch, first_row, o.correction_ms);
        if o.urgent
            && let Some(c) = self.clock.entry(exporter, domain)
        {
            publish_clock(&self.clocks, c);
        }
    }

    fn drop_datagram(&self, reason: &'static str) {
        self.stats.dropped_datagrams.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("pharos_flow_dropped_total", "reason" => reason).increment(1);
    }

    /// Hands the current batch to the channel without blocking; a full channel drops it (counted).
    fn flush(&mut self) {
        self.pending_since = None;
        if self.batch.is_empty() {
            self.batch_datagrams = 0;
            return;
        }
        let batch = std::mem::replace(
            &mut self.batch,
            FlowBatch::with_capacity(self.batch_flows + 64),
        );
        let datagrams = std::mem::take(&mut self.batch_datagrams);
        match self.tx.try_send(batch) {
            Ok(()) => {
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.batches.increment(1);
            }
            Err(TrySendError::Full(mut b)) | Err(TrySendError::Disconnected(mut b)) => {
                let reason = if self.stop.load(Ordering::Relaxed) {
                    "shutdown"
                } else {
                    "queue_full"
                };
                self.stats
                    .dropped_datagrams
                    .fetch_add(datagrams, Ordering::Relaxed);
                self.stats
                    .queue_full_records
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                metrics::counter!("pharos_flow_dropped_total", "reason" => reason)
                    .increment(datagrams);
                metrics::counter!("pharos_flow_records_dropped_total", "reason" => reason)
                    .increment(b.len() as u64);
                // Reuse the allocation of the batch we could not hand over.
                b.clear();
                self.batch = b;
            }
        }
    }

    /// Once a second: template expiry, template gauge, decoder drops, exporter clocks.
    fn housekeeping(&mut self) {
        self.decoder.expire(now_ms());
        for (exporter, domain) in self.clock.expire(now_ms()) {
            self.clocks.remove(exporter, domain);
        }
        for c in self.clock.entries() {
            publish_clock(&self.clocks, c);
        }
        let untracked = self.clock.untracked();
        if untracked > self.clock_untracked_seen {
            metrics::counter!("pharos_flow_exporter_clock_untracked_total")
                .increment(untracked - self.clock_untracked_seen);
            self.clock_untracked_seen = untracked;
        }
        let stats = self.decoder.stats();
        self.templates.set(stats.templates_active as f64);
        let shared = [stats.shared_out, stats.shared_in, stats.shared_ignored];
        for (i, direction) in ["out", "in", "ignored"].into_iter().enumerate() {
            if shared[i] > self.shared_seen[i] {
                metrics::counter!("pharos_flow_templates_shared_total", "listener" => self.label.clone(), "direction" => direction)
                    .increment(shared[i] - self.shared_seen[i]);
                self.shared_seen[i] = shared[i];
            }
        }
        for (&reason, &n) in &stats.drops {
            let seen = self.decoder_drops_seen.entry(reason).or_insert(0);
            if n > *seen {
                metrics::counter!("pharos_flow_decoder_drops_total", "reason" => reason)
                    .increment(n - *seen);
                *seen = n;
            }
        }
    }
}

/// Publishes one exporter clock in the shared table and its gauge.
fn publish_clock(clocks: &ExporterClocks, c: pharos_model::flow::ExporterClock) {
    metrics::gauge!(
        "pharos_flow_exporter_clock_offset_seconds",
        "exporter" => c.exporter.to_string(),
        "domain" => c.domain.to_string()
    )
    .set(c.offset_ms as f64 / 1000.0);
    clocks.update(c);
}

fn proto_counters<'a>(
    protos: &'a mut Vec<(Protocol, ProtoCounters)>,
    listener: &str,
    p: Protocol,
) -> &'a ProtoCounters {
    let i = match protos.iter().position(|(q, _)| *q == p) {
        Some(i) => i,
        None => {
            let name = super::protocol_label(p);
            protos.push((
                p,
                ProtoCounters {
                    datagrams: metrics::counter!("pharos_flow_datagrams_total", "listener" => listener.to_string(), "protocol" => name),
                    records: metrics::counter!("pharos_flow_records_total", "protocol" => name),
                },
            ));
            protos.len() - 1
        }
    };
    &protos[i].1
}
