//! UDP flow collector: NetFlow v5/v9, IPFIX and sFlow v5 on any number of UDP listeners.
//!
//! Contract:
//! - [`build`] binds every listener before it starts anything, so a bad address fails start-up
//!   with nothing left running. Each listener then gets one dedicated OS thread (not an async task)
//!   that reads datagrams in batches (`recvmmsg` on Linux), decodes them with its own
//!   [`FlowDecoder`] (the protocol is sniffed from the version field, so any protocol is accepted on
//!   any port) and sends decoded [`FlowBatch`]es on one bounded channel.
//! - A socket thread never blocks on the channel: when it is full the batch is dropped and counted
//!   (`pharos_flow_dropped_total{reason="queue_full"}` in datagrams and
//!   `pharos_flow_records_dropped_total{reason="queue_full"}` in flows).
//! - Every cause of loss is counted: the kernel's own receive-queue drops
//!   (`pharos_flow_kernel_drops_total`, from `SO_RXQ_OVFL` and `/proc/net/udp`), our drops per reason
//!   and the exporters' sequence gaps (`pharos_flow_lost_total{exporter}`).
//! - [`FlowCollector::stop`] (or dropping the collector) makes every socket thread exit within
//!   about one read timeout (100 ms by default), after sending what it had decoded; the channel
//!   closes once the last thread has exited.
//! - Exporter clocks ([`clock`]): each datagram's export time is compared with its receive time;
//!   the flows of an exporter whose clock is more than 2 s off ours are placed in our time (their
//!   start and end corrected by the estimated offset) before they leave the collector, so the
//!   archive, detection and reports see one clock. The estimates are published in
//!   [`FlowUdpConfig::clocks`] and `pharos_flow_exporter_clock_offset_seconds{exporter,domain}`.

pub mod clock;
#[allow(unsafe_code)]
mod socket;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge};
use pharos_model::flow::{ExporterClocks, FlowBatch};
use pharos_wire::{DecoderConfig, FlowDecoder, Protocol, WireError};

pub use socket::ReceiveBuffer;

/// Settings of the UDP flow collector (`[flow]` in `pharos.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowUdpConfig {
    /// UDP addresses to listen on; any flow protocol is accepted on any of them.
    /// Default: `0.0.0.0:2055` (NetFlow), `0.0.0.0:4739` (IPFIX), `0.0.0.0:6343` (sFlow).
    pub listen: Vec<SocketAddr>,
    /// Receive buffer asked for each socket, bytes. Default 32 MiB. Above `net.core.rmem_max` the
    /// kernel caps it unless Pharos runs as root (`SO_RCVBUFFORCE`); start-up then warns.
    pub receive_buffer_bytes: usize,
    /// Templates not refreshed for this long are forgotten. Default 30 minutes (RFC 6728).
    pub template_timeout: Duration,
    /// Decoded batches that may wait for the next stage; beyond that they are dropped and counted.
    /// Default 1024.
    pub queue: usize,
    /// Per-exporter sampling rate that replaces what the exporter says (1 in N packets).
    pub sampling: HashMap<IpAddr, u32>,
    /// A listener sends its batch once it holds this many flows, when its oldest flow is 20 ms
    /// old, or when the socket has been idle for a read timeout. Default 4096.
    pub batch_flows: usize,
    /// Datagrams read per system call. Default 64.
    pub read_batch: usize,
    /// How long a socket read waits before the thread looks at the stop flag. Default 100 ms.
    pub read_timeout: Duration,
    /// Skip (with an error in the log) listen addresses that cannot be bound instead of failing.
    /// Default false; `pharos run` sets it only for the built-in default listeners, so that a
    /// second instance or another collector on 2055 does not stop the daemon.
    pub skip_unbindable: bool,
    /// Where the socket threads publish their exporters' clock offsets (share a handle to read
    /// them: the API, the inventory, the `[state]` clock alarm). Default: a table of its own.
    pub clocks: ExporterClocks,
}

impl Default for FlowUdpConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 2055)),
                SocketAddr::from(([0, 0, 0, 0], 4739)),
                SocketAddr::from(([0, 0, 0, 0], 6343)),
            ],
            receive_buffer_bytes: 32 << 20,
            template_timeout: Duration::from_secs(1800),
            queue: 1024,
            sampling: HashMap::new(),
            batch_flows: 4096,
            read_batch: 64,
            read_timeout: Duration::from_millis(100),
            skip_unbindable: false,
            clocks: ExporterClocks::default(),
        }
    }
}

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum FlowSourceError {
    /// A listen address could not be bound.
    #[error(
        "cannot bind UDP {addr} ([flow] listen): {source}; {}",
        bind_hint(source)
    )]
    Bind {
        /// The address from `[flow] listen`.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The socket thread could not be started.
    #[error("cannot start the collector thread for UDP {addr}: {source}")]
    Spawn {
        /// The listener's address.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The configuration cannot work.
    #[error("[flow] {0}")]
    Config(String),
}

fn bind_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            "address in use (another collector?); choose another port or stop the other program"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023"
        }
        io::ErrorKind::AddrNotAvailable => {
            "that address is not on this host; use 0.0.0.0, [::] or one of its addresses"
        }
        _ => "check the address in [flow] listen",
    }
}

/// Counters of one collector, readable without a metrics recorder (tests, summaries).
#[derive(Debug, Default)]
pub struct CollectorStats {
    datagrams: AtomicU64,
    records: AtomicU64,
    batches: AtomicU64,
    dropped_datagrams: AtomicU64,
    queue_full_records: AtomicU64,
    kernel_drops: AtomicU64,
    lost: AtomicU64,
}

/// A point-in-time copy of [`CollectorStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Flow datagrams decoded (all listeners, all protocols).
    pub datagrams: u64,
    /// Flow records decoded.
    pub records: u64,
    /// Batches handed to the channel.
    pub batches: u64,
    /// Datagrams dropped by Pharos, any reason (malformed, not a flow, queue full...).
    pub dropped_datagrams: u64,
    /// Flow records dropped because the channel was full.
    pub queue_full_records: u64,
    /// Datagrams the kernel dropped before Pharos could read them.
    pub kernel_drops: u64,
    /// Datagrams or records the exporters numbered but never arrived (sequence gaps).
    pub lost: u64,
}

impl CollectorStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            datagrams: g(&self.datagrams),
            records: g(&self.records),
            batches: g(&self.batches),
            dropped_datagrams: g(&self.dropped_datagrams),
            queue_full_records: g(&self.queue_full_records),
            kernel_drops: g(&self.kernel_drops),
            lost: g(&self.lost),
        }
    }
}

/// One bound listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerInfo {
    /// The address asked for in `[flow] listen`.
    pub configured: SocketAddr,
    /// The address actually bound (port 0 resolved).
    pub local: SocketAddr,
    /// What the kernel granted for the receive buffer.
    pub receive_buffer: ReceiveBuffer,
}

/// A running flow collector: its socket threads and the receiving end of its channel.
pub struct FlowCollector {
    listeners: Vec<ListenerInfo>,
    receiver: Option<Receiver<FlowBatch>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<CollectorStats>,
    clocks: ExporterClocks,
}

impl std::fmt::Debug for FlowCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowCollector")
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

/// Binds every listener of `config` and starts one socket thread per listener.
pub fn build(config: &FlowUdpConfig) -> Result<FlowCollector, FlowSourceError> {
    if config.listen.is_empty() {
        return Err(FlowSourceError::Config(
            "listen is empty: give at least one address, or set enabled = false".into(),
        ));
    }
    if config.queue == 0 {
        return Err(FlowSourceError::Config(
            "queue = 0: must be at least 1".into(),
        ));
    }
    let mut bound = Vec::with_capacity(config.listen.len());
    for &addr in &config.listen {
        let (sock, buf) = match socket::bind(addr, config.receive_buffer_bytes, config.read_timeout)
        {
            Ok(b) => b,
            Err(e) if config.skip_unbindable => {
                tracing::error!(
                    "{e}; flow collection on {addr} is off (set [flow] listen to choose the addresses)"
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        let local = sock
            .local_addr()
            .map_err(|e| FlowSourceError::Bind { addr, source: e })?;
        if buf.capped {
            tracing::warn!(
                listener = %local,
                requested = buf.requested,
                effective = buf.effective,
                "the kernel capped the UDP receive buffer ([flow] receive_buffer_bytes = {}): bursts may be dropped; \
                 raise the limit with `sysctl -w net.core.rmem_max={}` (or run as root)",
                buf.requested,
                buf.requested,
            );
        }
        bound.push((
            sock,
            ListenerInfo {
                configured: addr,
                local,
                receive_buffer: buf,
            },
        ));
    }

    let (tx, rx) = sync_channel(config.queue);
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(CollectorStats::default());
    let mut collector = FlowCollector {
        listeners: bound.iter().map(|(_, i)| *i).collect(),
        receiver: Some(rx),
        stop: stop.clone(),
        threads: Vec::new(),
        stats: stats.clone(),
        clocks: config.clocks.clone(),
    };
    for (sock, info) in bound {
        let decoder = FlowDecoder::new(DecoderConfig {
            template_timeout: config.template_timeout,
            sampling_override: config.sampling.clone(),
            ..DecoderConfig::default()
        });
        let mut l = Listener::new(
            sock,
            info,
            decoder,
            tx.clone(),
            stop.clone(),
            stats.clone(),
            config,
        );
        let handle = std::thread::Builder::new()
            .name(format!("flow-udp-{}", info.local.port()))
            .spawn(move || l.run())
            .map_err(|e| FlowSourceError::Spawn {
                addr: info.configured,
                source: e,
            })?;
        collector.threads.push(handle);
        tracing::info!(listener = %info.local, receive_buffer = info.receive_buffer.effective, "flow collector listening on UDP {}", info.local);
    }
    Ok(collector)
}

impl FlowCollector {
    /// The bound listeners, in `[flow] listen` order.
    pub fn listeners(&self) -> &[ListenerInfo] {
        &self.listeners
    }

    /// The bound addresses (port 0 resolved), in `[flow] listen` order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.local).collect()
    }

    /// Takes the receiving end of the batch channel (once).
    pub fn take_receiver(&mut self) -> Option<Receiver<FlowBatch>> {
        self.receiver.take()
    }

    /// The collector's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The live counters, to read after the collector is handed over (the loss report).
    pub fn stats_handle(&self) -> Arc<CollectorStats> {
        self.stats.clone()
    }

    /// The exporters' clock offsets the socket threads publish (a shared handle; the same as
    /// [`FlowUdpConfig::clocks`]).
    pub fn clocks(&self) -> ExporterClocks {
        self.clocks.clone()
    }

    /// Stops every socket thread (each exits within about one read timeout) and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a flow collector thread panicked");
            }
        }
    }
}

impl Drop for FlowCollector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Registers descriptions of every metric the flow collector exports.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pharos_flow_datagrams_total",
        "Flow datagrams decoded, by listener and protocol"
    );
    describe_counter!(
        "pharos_flow_records_total",
        "Flow records decoded (sampled flows count once), by protocol"
    );
    describe_counter!(
        "pharos_flow_dropped_total",
        "Datagrams received but not turned into flows for the next stage, by reason (malformed, not_flow, truncated, queue_full, ...)"
    );
    describe_counter!(
        "pharos_flow_records_dropped_total",
        "Decoded flow records dropped, by reason (queue_full)"
    );
    describe_counter!(
        "pharos_flow_kernel_drops_total",
        "Datagrams the kernel dropped on a full socket receive queue, by listener"
    );
    describe_counter!(
        "pharos_flow_lost_total",
        "Sequence gaps, by exporter: lost datagrams (NetFlow v9, sFlow), lost flows (NetFlow v5), lost records (IPFIX)"
    );
    describe_counter!(
        "pharos_flow_decoder_drops_total",
        "Parts of accepted datagrams the decoder dropped (bad sets, records, samples, held data never matched), by reason"
    );
    describe_counter!(
        "pharos_flow_batches_total",
        "Flow batches handed to the next stage, by listener"
    );
    describe_counter!(
        "pharos_flow_counter_samples_total",
        "sFlow counter samples decoded (not stored yet)"
    );
    describe_counter!(
        "pharos_flow_receive_errors_total",
        "Socket read errors other than timeouts, by listener"
    );
    describe_gauge!(
        "pharos_flow_templates",
        "NetFlow v9 / IPFIX templates held, by listener"
    );
    describe_gauge!(
        "pharos_flow_receive_buffer_bytes",
        "Socket receive buffer granted by the kernel, by listener"
    );
    describe_gauge!(
        "pharos_flow_exporter_clock_offset_seconds",
        "Estimated offset of an exporter's clock from ours (export time minus receive time, median of recent datagrams; negative: behind), by exporter and domain"
    );
    describe_counter!(
        "pharos_flow_exporter_clock_untracked_total",
        "Datagrams of exporters beyond the clock-tracking limit (corrected by their own offset, not estimated)"
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Metric label for a decoded protocol (`netflow_v5`, `netflow_v9`, `ipfix`, `sflow5`).
pub fn protocol_label(p: Protocol) -> &'static str {
    p.name()
}

/// `pharos_flow_dropped_total` reason for a datagram the decoder refused: `not_flow` (not a
/// NetFlow/IPFIX/sFlow version), `malformed` (truncated or invalid structure) or `limit` (a bound on
/// templates, fields or exporters was reached).
pub fn drop_reason(e: &WireError) -> &'static str {
    match e {
        WireError::UnknownVersion(_) => "not_flow",
        WireError::Truncated { .. } | WireError::Malformed { .. } => "malformed",
        WireError::Limit { .. } => "limit",
    }
}

/// Longest a decoded flow waits in a listener before its batch is sent (at low rates batches are
/// small; at high rates they fill up to `batch_flows` first).
const FLUSH_AGE: Duration = Duration::from_millis(20);

/// Per-protocol metric handles of one listener.
struct ProtoCounters {
    datagrams: Counter,
    records: Counter,
}

/// One socket and its thread's state.
struct Listener {
    sock: UdpSocket,
    info: ListenerInfo,
    decoder: FlowDecoder,
    tx: SyncSender<FlowBatch>,
    stop: Arc<AtomicBool>,
    stats: Arc<CollectorStats>,
    reader: socket::BatchReader,
    batch: FlowBatch,
    batch_datagrams: u64,
    batch_flows: usize,
    label: String,
    protos: Vec<(Protocol, ProtoCounters)>,
    lost: HashMap<IpAddr, Counter>,
    kernel_drops_seen: u64,
    decoder_drops_seen: std::collections::BTreeMap<&'static str, u64>,
    kernel_drops: Counter,
    batches: Counter,
    templates: Gauge,
    clock: clock::ClockEstimator,
    clocks: ExporterClocks,
    clock_untracked_seen: u64,
    /// The socket's read timeout while no batch is pending (`[flow]`'s `read_timeout`).
    idle_timeout: Duration,
}

impl Listener {
    fn new(
        sock: UdpSocket,
        info: ListenerInfo,
        decoder: FlowDecoder,
        tx: SyncSender<FlowBatch>,
        stop: Arc<AtomicBool>,
        stats: Arc<CollectorStats>,
        config: &FlowUdpConfig,
    ) -> Self {
        let label = info.local.to_string();
        metrics::gauge!("pharos_flow_receive_buffer_bytes", "listener" => label.clone())
            .set(info.receive_buffer.effective as f64);
        // A baseline read, so that drops of an earlier socket on the same port are not counted.
        let kernel_drops_seen = socket::proc_drops(&sock, info.local.is_ipv6()).unwrap_or(0);
        Self {
            reader: socket::BatchReader::new(config.read_batch),
            batch: FlowBatch::with_capacity(config.batch_flows.max(1) + 64),
            batch_datagrams: 0,
            batch_flows: config.batch_flows.max(1),
            kernel_drops: metrics::counter!("pharos_flow_kernel_drops_total", "listener" => label.clone()),
            batches: metrics::counter!("pharos_flow_batches_total", "listener" => label.clone()),
            templates: metrics::gauge!("pharos_flow_templates", "listener" => label.clone()),
            protos: Vec::new(),
            lost: HashMap::new(),
            kernel_drops_seen,
            decoder_drops_seen: Default::default(),
            clock: clock::ClockEstimator::new(ExporterClocks::LIMIT),
            clocks: config.clocks.clone(),
            clock_untracked_seen: 0,
            idle_timeout: config.read_timeout,
            label,
            sock,
            info,
            decoder,
            tx,
            stop,
            stats,
        }
    }

    fn run(&mut self) {
        // When the oldest flow of the pending batch arrived: a batch leaves when it is full, when
        // it is FLUSH_AGE old, or when the socket has been idle for a read timeout.
        let mut pending_since: Option<Instant> = None;
        let mut last_housekeeping = Instant::now();
        // While a batch is pending the socket waits at most FLUSH_AGE, so a lone datagram (the
        // first of an attack, at a low background rate) leaves within 2 x FLUSH_AGE instead of
        // waiting for the next datagram or the idle read timeout.
        let mut waiting_short = false;
        while !self.stop.load(Ordering::Relaxed) {
            let short = !self.batch.is_empty();
            if short != waiting_short {
                let t = if short { FLUSH_AGE } else { self.idle_timeout };
                if self.sock.set_read_timeout(Some(t)).is_ok() {
                    waiting_short = short;
                }
            }
            let n = match self.reader.recv(&self.sock) {
                Ok(n) => n,
                Err(e) => {
                    metrics::counter!("pharos_flow_receive_errors_total", "listener" => self.label.clone()).increment(1);
                    tracing::warn!(listener = %self.info.local, error = %e, "flow socket read failed");
                    std::thread::sleep(Duration::from_millis(10));
                    0
                }
            };
            if n > 0 {
                self.decode_received(n);
            }
            if !self.batch.is_empty() {
                let since = *pending_since.get_or_insert_with(Instant::now);
                if n == 0 || self.batch.len() >= self.batch_flows || since.elapsed() >= FLUSH_AGE {
                    self.flush();
                    pending_since = None;
                }
            }
            if last_housekeeping.elapsed() >= Duration::from_secs(1) {
                self.housekeeping();
                last_housekeeping = Instant::now();
            }
        }
        self.flush();
        self.housekeeping();
        tracing::debug!(listener = %self.info.local, "flow socket thread stopped");
    }

    fn decode_received(&mut self, n: usize) {
        let received_ms = now_ms();
        let mut datagrams = 0u64;
        let mut records = 0u64;
        for i in 0..n {
            let r = self.reader.received(i);
            let Some(from) = r.from else {
                self.drop_datagram("no_source");
                continue;
            };
            if r.truncated {
                self.drop_datagram("truncated");
                continue;
            }
            let payload = self.reader.payload(&r);
            let first_row = self.batch.len();
            match self
                .decoder
                .decode(from, received_ms, payload, &mut self.batch)
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
        }
        self.stats.datagrams.fetch_add(datagrams, Ordering::Relaxed);
        self.stats.records.fetch_add(records, Ordering::Relaxed);
        if let Some(k) = self.reader.kernel_drops {
            self.note_kernel_drops(k);
        }
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

    /// Once a second: template expiry, kernel drop counter, template gauge, exporter clocks.
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
        if let Some(d) = socket::proc_drops(&self.sock, self.info.local.is_ipv6()) {
            self.note_kernel_drops(d);
        }
        let stats = self.decoder.stats();
        self.templates.set(stats.templates_active as f64);
        for (&reason, &n) in &stats.drops {
            let seen = self.decoder_drops_seen.entry(reason).or_insert(0);
            if n > *seen {
                metrics::counter!("pharos_flow_decoder_drops_total", "reason" => reason)
                    .increment(n - *seen);
                *seen = n;
            }
        }
    }

    /// `total` is the kernel's cumulative count for this socket (u32 in SO_RXQ_OVFL).
    fn note_kernel_drops(&mut self, total: u64) {
        if total > self.kernel_drops_seen {
            let delta = total - self.kernel_drops_seen;
            self.kernel_drops_seen = total;
            self.stats.kernel_drops.fetch_add(delta, Ordering::Relaxed);
            self.kernel_drops.increment(delta);
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
            let name = protocol_label(p);
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
