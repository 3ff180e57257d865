//! The receive half of a listener: one thread that only drains the socket.
//!
//! Why a thread of its own: the kernel drops what does not fit in the socket's receive buffer,
//! and a thread that also decodes stops reading for as long as a burst takes to decode. This
//! thread does nothing but `recvmmsg`, copy the payloads into a [`RawBatch`] and hand it to the
//! listener's decode thread ([`super::decode`]), so the socket is drained at the speed of the
//! system call and a burst waits in memory instead of being dropped by the kernel.
//!
//! Contract:
//! - Raw datagrams waiting for the decoder are bounded in bytes ([`Backlog`], `[flow]
//!   backlog_bytes`). A read that would go beyond the budget is dropped whole and counted
//!   (`pharos_flow_dropped_total{reason="backlog"}`, datagrams) and logged at most every 10 s.
//! - The kernel's own drops for this socket are read here (`SO_RXQ_OVFL` with every read, and
//!   `/proc/net/udp` once a second) into `pharos_flow_kernel_drops_total{listener}`.
//! - When the stop flag is set the thread exits within one read timeout, dropping its sender:
//!   the decode thread then decodes what is left and exits too.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};

use super::socket::{self, BatchReader};
use super::{CollectorStats, ListenerInfo};

/// Datagrams of one read, copied out of the reader's buffers.
#[derive(Debug, Default)]
pub(super) struct RawBatch {
    /// The payloads, back to back.
    pub data: Vec<u8>,
    /// Each datagram's place in `data`.
    pub items: Vec<RawDatagram>,
    /// When the read returned (ms since the Unix epoch): the receive time of every datagram.
    pub received_ms: u64,
}

/// One datagram of a [`RawBatch`].
#[derive(Debug, Clone, Copy)]
pub(super) struct RawDatagram {
    /// Sender, when the kernel said.
    pub from: Option<SocketAddr>,
    /// Offset of the payload in [`RawBatch::data`].
    pub start: usize,
    /// Payload length.
    pub len: usize,
    /// The payload did not fit in the read buffer and was cut.
    pub truncated: bool,
}

impl RawBatch {
    /// Bytes this batch holds against the [`Backlog`] budget.
    pub fn weight(&self) -> usize {
        self.data.len() + self.items.len() * std::mem::size_of::<RawDatagram>()
    }

    /// The payload of `d`.
    pub fn payload(&self, d: &RawDatagram) -> &[u8] {
        &self.data[d.start..d.start + d.len]
    }

    fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }
}

/// Bytes of raw datagrams between a listener's receive and decode threads, against a budget.
#[derive(Debug)]
pub(super) struct Backlog {
    bytes: AtomicUsize,
    budget: usize,
    gauge: Gauge,
}

impl Backlog {
    pub fn new(budget: usize, listener: &str) -> Self {
        Self {
            bytes: AtomicUsize::new(0),
            budget,
            gauge: metrics::gauge!("pharos_flow_decode_backlog_bytes", "listener" => listener.to_string()),
        }
    }

    /// Takes `n` bytes if they fit in the budget (one batch always fits in an empty backlog).
    fn try_take(&self, n: usize) -> bool {
        let now = self.bytes.load(Ordering::Relaxed);
        if now > 0 && now + n > self.budget {
            return false;
        }
        let was = self.bytes.fetch_add(n, Ordering::Relaxed);
        self.gauge.set((was + n) as f64);
        true
    }

    /// Gives back `n` bytes (the decode thread took a batch).
    pub fn release(&self, n: usize) {
        let was = self.bytes.fetch_sub(n, Ordering::Relaxed);
        self.gauge.set(was.saturating_sub(n) as f64);
    }
}

/// Returned batches kept for reuse (their allocations), beyond which they are freed.
pub(super) const RECYCLE: usize = 64;

/// Longest the first datagram of a batch waits in the receive thread for more to join it.
const HOLD: Duration = Duration::from_millis(2);

/// The receive thread's state.
pub(super) struct ReceiveLoop {
    pub sock: UdpSocket,
    pub info: ListenerInfo,
    pub reader: BatchReader,
    pub tx: Sender<RawBatch>,
    pub recycle: Receiver<RawBatch>,
    pub backlog: Arc<Backlog>,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<CollectorStats>,
    pub kernel_drops_seen: u64,
    pub kernel_drops: Counter,
    pub backlog_drops: Counter,
    pub label: String,
    /// Datagrams that make a batch leave at once (a few reads' worth).
    pub full: usize,
    /// The socket's read timeout while nothing is pending (`[flow] read_timeout`).
    pub idle_timeout: Duration,
}

impl ReceiveLoop {
    pub fn new(
        sock: UdpSocket,
        info: ListenerInfo,
        config: &super::FlowUdpConfig,
        channel: (Sender<RawBatch>, Receiver<RawBatch>),
        backlog: Arc<Backlog>,
        stop: Arc<AtomicBool>,
        stats: Arc<CollectorStats>,
    ) -> Self {
        let label = info.local.to_string();
        metrics::gauge!("pharos_flow_receive_buffer_bytes", "listener" => label.clone())
            .set(info.receive_buffer.effective as f64);
        // A baseline read, so that drops of an earlier socket on the same port are not counted.
        let kernel_drops_seen = socket::proc_drops(&sock, info.local.is_ipv6()).unwrap_or(0);
        Self {
            reader: BatchReader::new(config.read_batch),
            kernel_drops: metrics::counter!("pharos_flow_kernel_drops_total", "listener" => label.clone()),
            backlog_drops: metrics::counter!("pharos_flow_dropped_total", "reason" => "backlog"),
            kernel_drops_seen,
            full: config.read_batch.max(1) * 4,
            idle_timeout: config.read_timeout,
            tx: channel.0,
            recycle: channel.1,
            label,
            sock,
            info,
            backlog,
            stop,
            stats,
        }
    }

    pub fn run(&mut self) {
        raise_priority(&self.info);
        let mut last_housekeeping = Instant::now();
        // Datagrams dropped on a full backlog since the last log line.
        let mut unlogged_drops = 0u64;
        let mut last_log: Option<Instant> = None;
        // The batch being filled and when its first datagram came: it leaves when it holds a
        // read's worth of datagrams, after HOLD, or when the socket has nothing more, so that at
        // moderate rates the decoder is woken once per HOLD rather than once per datagram.
        let mut pending = RawBatch::default();
        let mut pending_since: Option<Instant> = None;
        let mut waiting_short = false;
        while !self.stop.load(Ordering::Relaxed) {
            let short = pending_since.is_some();
            if short != waiting_short {
                let t = if short { HOLD } else { self.idle_timeout };
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
                if pending_since.is_none() {
                    pending = self.recycle.try_recv().unwrap_or_default();
                    pending.clear();
                    pending.received_ms = super::now_ms();
                    pending_since = Some(Instant::now());
                }
                self.pack(n, &mut pending);
            }
            if let Some(since) = pending_since
                && (n == 0 || pending.items.len() >= self.full || since.elapsed() >= HOLD)
            {
                pending_since = None;
                let Some(lost) = self.hand_over(std::mem::take(&mut pending)) else {
                    break;
                };
                unlogged_drops += lost;
            }
            if let Some(k) = self.reader.kernel_drops {
                self.note_kernel_drops(k);
            }
            if unlogged_drops > 0 && last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
            {
                tracing::warn!(
                    listener = %self.info.local,
                    "{unlogged_drops} flow datagrams dropped: the decoder is {} MiB behind ([flow] backlog_bytes); \
                     more CPU for Pharos or fewer flows per collector",
                    self.backlog.budget >> 20,
                );
                unlogged_drops = 0;
                last_log = Some(Instant::now());
            }
            if last_housekeeping.elapsed() >= Duration::from_secs(1) {
                if let Some(d) = socket::proc_drops(&self.sock, self.info.local.is_ipv6()) {
                    self.note_kernel_drops(d);
                }
                last_housekeeping = Instant::now();
            }
        }
        if !pending.items.is_empty() {
            self.hand_over(pending);
        }
        tracing::debug!(listener = %self.info.local, "flow receive thread stopped");
    }

    /// Sends a batch to the decoder if the backlog has room for it, else drops it (counted).
    /// Returns the datagrams dropped, `None` when the decode thread is gone.
    fn hand_over(&mut self, batch: RawBatch) -> Option<u64> {
        let weight = batch.weight();
        if self.backlog.try_take(weight) {
            if self.tx.send(batch).is_err() {
                // The decode thread is gone (it only exits after us unless it panicked).
                self.backlog.release(weight);
                return None;
            }
            Some(0)
        } else {
            let lost = batch.items.len() as u64;
            self.stats
                .dropped_datagrams
                .fetch_add(lost, Ordering::Relaxed);
            self.stats.backlog_drops.fetch_add(lost, Ordering::Relaxed);
            self.backlog_drops.increment(lost);
            Some(lost)
        }
    }

    /// Appends the `n` datagrams of the last read to `batch`.
    fn pack(&mut self, n: usize, batch: &mut RawBatch) {
        for i in 0..n {
            let r = self.reader.received(i);
            let payload = self.reader.payload(&r);
            batch.items.push(RawDatagram {
                from: r.from,
                start: batch.data.len(),
                len: payload.len(),
                truncated: r.truncated,
            });
            batch.data.extend_from_slice(payload);
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

/// Nice value of receive threads where the process may raise priorities (root or
/// `CAP_SYS_NICE`): draining the socket must not wait behind decoding, the archive or other
/// programs, or the kernel drops what its buffer cannot hold.
const RECEIVE_NICE: i32 = -10;

/// Raises the calling (receive) thread's priority when allowed; otherwise it keeps the default
/// and the decode backlog and socket buffer absorb the delays.
fn raise_priority(info: &ListenerInfo) {
    let tid = rustix::thread::gettid();
    match rustix::process::setpriority_process(Some(tid), RECEIVE_NICE) {
        Ok(()) => {
            tracing::debug!(listener = %info.local, "flow receive thread at nice {RECEIVE_NICE}")
        }
        Err(e) => {
            tracing::debug!(listener = %info.local, error = %e, "flow receive thread keeps its priority (needs CAP_SYS_NICE)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_holds_its_budget_and_always_takes_one_read() {
        let b = Backlog::new(1000, "test");
        // An empty backlog takes a read larger than the budget: one read always goes through.
        assert!(b.try_take(5000));
        assert!(!b.try_take(1), "full beyond the budget");
        b.release(5000);
        assert!(b.try_take(600));
        assert!(b.try_take(400), "exactly the budget");
        assert!(!b.try_take(1));
        b.release(400);
        assert!(b.try_take(300));
        assert_eq!(b.bytes.load(Ordering::Relaxed), 900);
    }

    #[test]
    fn a_raw_batch_weighs_its_payloads_and_their_index() {
        let mut r = RawBatch::default();
        for (i, p) in [&b"abc"[..], b"", b"defgh"].iter().enumerate() {
            r.items.push(RawDatagram {
                from: None,
                start: r.data.len(),
                len: p.len(),
                truncated: i == 1,
            });
            r.data.extend_from_slice(p);
        }
        assert_eq!(r.payload(&r.items[2]), b"defgh");
        assert_eq!(r.payload(&r.items[1]), b"");
        assert_eq!(r.weight(), 8 + 3 * std::mem::size_of::<RawDatagram>());
        r.clear();
        assert_eq!(r.weight(), 0);
    }
}
