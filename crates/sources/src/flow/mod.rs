//! UDP flow collector: NetFlow v5/v9, IPFIX and sFlow v5 on any number of UDP listeners.
//!
//! Contract:
//! - [`build`] binds every listener before it starts anything, so a bad address fails start-up
//!   with nothing left running. Each listener then gets two dedicated OS threads (not async
//!   tasks): a receive thread ([`receive`]) that only drains the socket in batches (`recvmmsg` on
//!   Linux) into a backlog bounded in bytes (`[flow] backlog_bytes`), and a decode thread
//!   ([`decode`]) that decodes them with its own [`FlowDecoder`] (the protocol is sniffed from the
//!   version field, so any protocol is accepted on any port) and sends decoded [`FlowBatch`]es on
//!   one bounded channel. A burst the decoder cannot follow waits in memory instead of
//!   overflowing the kernel's buffer; beyond the budget it is dropped and counted
//!   (`pharos_flow_dropped_total{reason="backlog"}`).
//! - A decode thread never blocks on the channel: when it is full the batch is dropped and counted
//!   (`pharos_flow_dropped_total{reason="queue_full"}` in datagrams and
//!   `pharos_flow_records_dropped_total{reason="queue_full"}` in flows).
//! - Every cause of loss is counted: the kernel's own receive-queue drops
//!   (`pharos_flow_kernel_drops_total`, from `SO_RXQ_OVFL` and `/proc/net/udp`), our drops per reason
//!   and the exporters' sequence gaps (`pharos_flow_lost_total{exporter}`).
//! - [`FlowCollector::stop`] (or dropping the collector) makes every receive thread exit within
//!   about one read timeout (100 ms by default); each decode thread then decodes and sends what
//!   was received; the channel closes once the last thread has exited.
//! - Exporter clocks ([`clock`]): each datagram's export time is compared with its receive time;
//!   the flows of an exporter whose clock is more than 2 s off ours are placed in our time (their
//!   start and end corrected by the estimated offset) before they leave the collector, so the
//!   archive, detection and reports see one clock. The estimates are published in
//!   [`FlowUdpConfig::clocks`] and `pharos_flow_exporter_clock_offset_seconds{exporter,domain}`.

pub mod clock;
mod decode;
mod receive;
#[allow(unsafe_code)]
mod socket;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use pharos_model::clock::now_ms;
use pharos_model::flow::{ExporterClocks, FlowBatch};
use pharos_wire::{DecoderConfig, FlowDecoder, Protocol, TemplateShare, WireError};

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
    /// Bytes of received datagrams that may wait for a listener's decoder (a burst faster than
    /// decoding); beyond that reads are dropped and counted (`reason="backlog"`). Default
    /// [`default_backlog_bytes`]: 1/16 of the machine's memory, between 64 MiB and 1 GiB.
    pub backlog_bytes: usize,
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
    /// Templates, options templates and sampling tables shared with other collectors (scale-out,
    /// `pharos_cluster::templates`): every listener's decoder hands what it learns to the
    /// share and applies what the share received before its next datagram, so that an
    /// exporter failing over to this collector is decoded without waiting for its templates.
    /// Default `None`: each listener keeps its own.
    pub templates: Option<TemplateShare>,
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
            backlog_bytes: default_backlog_bytes(),
            sampling: HashMap::new(),
            batch_flows: 4096,
            read_batch: 64,
            read_timeout: Duration::from_millis(100),
            skip_unbindable: false,
            clocks: ExporterClocks::default(),
            templates: None,
        }
    }
}

/// The default decode backlog per listener: 1/16 of the machine's memory (`MemTotal` of
/// `/proc/meminfo`), at least 64 MiB and at most 1 GiB (256 MiB where memory cannot be read). At
/// 1 GiB a backlog holds about 20 M NetFlow v9 flows: several seconds of a flat-out sender.
pub fn default_backlog_bytes() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map(|kib| kib.saturating_mul(1024));
    match total {
        Some(bytes) => (bytes / 16).clamp(64 << 20, 1 << 30),
        None => 256 << 20,
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
    backlog_drops: AtomicU64,
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
    /// Datagrams dropped undecoded because the decoder's backlog was full (also in
    /// `dropped_datagrams`).
    pub backlog_drops: u64,
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
            backlog_drops: g(&self.backlog_drops),
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
        let mut decoder = FlowDecoder::new(DecoderConfig {
            template_timeout: config.template_timeout,
            sampling_override: config.sampling.clone(),
            ..DecoderConfig::default()
        });
        if let Some(share) = &config.templates {
            decoder.share_templates(share.clone());
        }
        let spawn_err = |e| FlowSourceError::Spawn {
            addr: info.configured,
            source: e,
        };
        let label = info.local.to_string();
        let backlog = Arc::new(receive::Backlog::new(config.backlog_bytes, &label));
        let (raw_tx, raw_rx) = channel();
        let (recycle_tx, recycle_rx) = sync_channel(receive::RECYCLE);
        let mut d = decode::DecodeLoop::new(
            info,
            decoder,
            decode::DecodeChannels {
                rx: raw_rx,
                recycle: recycle_tx,
                tx: tx.clone(),
            },
            backlog.clone(),
            stop.clone(),
            stats.clone(),
            config,
        );
        let handle = std::thread::Builder::new()
            .name(format!("flow-dec-{}", info.local.port()))
            .spawn(move || d.run())
            .map_err(spawn_err)?;
        collector.threads.push(handle);
        let mut r = receive::ReceiveLoop::new(
            sock,
            info,
            config,
            (raw_tx, recycle_rx),
            backlog,
            stop.clone(),
            stats.clone(),
        );
        let handle = std::thread::Builder::new()
            .name(format!("flow-udp-{}", info.local.port()))
            .spawn(move || r.run())
            .map_err(spawn_err)?;
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
        "Datagrams received but not turned into flows for the next stage, by reason (malformed, not_flow, truncated, limit, no_source, backlog, queue_full, shutdown)"
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
    describe_counter!(
        "pharos_flow_templates_shared_total",
        "Templates and sampling tables shared with other collectors ([cluster]), by listener and direction: out (learned here, handed to the cluster), in (learned elsewhere, applied), ignored (older than what this listener had)"
    );
    describe_gauge!(
        "pharos_flow_templates",
        "NetFlow v9 / IPFIX templates held, by listener"
    );
    describe_gauge!(
        "pharos_flow_decode_backlog_bytes",
        "Bytes of received datagrams waiting for the listener's decoder (at most [flow] backlog_bytes), by listener"
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
