//! Syslog sources: UDP (RFC 5426), TCP (RFC 6587, both framings) and TLS (RFC 5425) listeners
//! that hand every received message, framing removed, as a [`RawRecord`] to the next stage.
//!
//! ```text
//! udp.rs / tcp.rs / tls.rs --RawRecord--> bounded mpsc channel (`queue`) --> the next stage
//! ```
//!
//! The next stage is the syslog normalise stage (header parse, NSF inventory, vendor normaliser,
//! store). It needs the store and the normalisers, which come after this crate in the data flow
//! (a crate depends only on crates before it), so the binary owns it:
//! `crates/pharos/src/syslog_stage`. [`start`] returns the receiving end of the channel for it.
//!
//! Contract:
//! - A listener never blocks on a full channel for UDP: the datagram is counted as dropped
//!   (`pharos_syslog_dropped_total{reason="queue_full"}`); TCP and TLS connections wait, which is
//!   natural backpressure on the sender.
//! - Limits (message size, connections in total and per peer, idle time) are enforced and
//!   counted; a frame over the size limit is truncated or skipped and the connection goes on.
//! - Once the channel is more than half full, a sender over `sender_messages_per_second` loses its
//!   place: its UDP datagrams are dropped (`reason="sender_rate"`), its TCP and TLS connections
//!   wait ([`fair`]); others within their rate still get in.
//! - [`SyslogHandle::shutdown`] stops accepting and ends the listeners and their connections;
//!   then the channel closes, so the next stage drains what was received and sees the end.

pub mod fair;
mod tcp;
mod tls;
mod udp;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pharos_model::Timestamp;
use pharos_model::config::{ConfigDuration, OldUnit, RenamedKey};
use pharos_wire::syslog::OversizePolicy;
use tokio::sync::{mpsc, watch};

/// Default port of the plain UDP and TCP listeners (unprivileged; 514 when configured).
pub const DEFAULT_PORT: u16 = 5514;
/// Default port of the TLS listener (RFC 5425).
pub const DEFAULT_TLS_PORT: u16 = 6514;

/// `[syslog]` settings; every key optional.
///
/// [`SyslogConfig::settings`] checks the listeners' keys. `timezone`, `year_margin`, `batch`,
/// `default_parser`, `max_auto_nsfs` and `relay` belong to the normalise stage, which the binary
/// checks and runs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// Runs the syslog listeners at all.
    pub enabled: bool,
    /// UDP listen address; "" turns UDP off.
    pub udp: String,
    /// TCP listen address (octet counting or LF/NUL/CRLF trailers, detected per connection); "" turns TCP off.
    pub tcp: String,
    /// TLS listener (RFC 5425); off unless `[syslog.tls]` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Largest message in bytes; longer ones are handled as `oversize` says.
    pub max_message_bytes: usize,
    /// "truncate" (keep the first max_message_bytes) or "skip" (drop, counted).
    pub oversize: String,
    /// Most open TCP and TLS connections in total; more are refused (counted).
    pub max_connections: usize,
    /// Most open TCP and TLS connections from one address.
    pub max_connections_per_peer: usize,
    /// A TCP or TLS connection silent this long is closed.
    pub idle_timeout: ConfigDuration,
    /// Zone of RFC 3164 timestamps: "UTC", "local" or an offset like "+01:00" (normalise stage).
    pub timezone: String,
    /// How far in the future (a duration like "1d", "12h", "0s") an RFC 3164 timestamp, which has
    /// no year, may be and still get the receive time's year; beyond, it gets the year before
    /// (normalise stage).
    pub year_margin: ConfigDuration,
    /// Received records that may wait for the normalise stage (UDP drops beyond it).
    pub queue: usize,
    /// Most messages per store submission (normalise stage).
    pub batch: usize,
    /// Parser for senders that match no `[[nsf]]` entry: "auto" or a format name (normalise stage).
    pub default_parser: String,
    /// Socket receive buffer of the UDP listener, in bytes (0 keeps the system default).
    pub udp_receive_buffer_bytes: usize,
    /// Most senders registered automatically; later unknown senders share one inventory entry
    /// (normalise stage).
    pub max_auto_nsfs: usize,
    /// Messages per second per sender (IPv4 address or IPv6 /64) that keep their place once the
    /// queue is more than half full: beyond, UDP is dropped and TCP/TLS waits; 0 turns it off.
    pub sender_messages_per_second: u32,
    /// `[[syslog.relay]]`: relays whose lines are attributed to the hostname in their header
    /// rather than to the relay (normalise stage).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relay: Vec<RelayConfig>,
}

/// Default of [`RelayConfig::max_hostnames`].
pub const DEFAULT_RELAY_MAX_HOSTNAMES: usize = 1024;

/// `[[syslog.relay]]`: a relay (rsyslog, syslog-ng, a load balancer) that forwards other devices'
/// lines. Its lines are attributed to the NSF their header hostname names, registered
/// automatically on first sight (within `max_hostnames`), and keep the relay's address as their
/// source. The binary's normalise stage checks it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Addresses or prefixes of the relay (`"192.0.2.10"`, `"10.9.0.0/24"`); relays that are one
    /// trust domain (a redundant pair) share one entry, and so share the hostnames they register.
    pub addresses: Vec<String>,
    /// Most hostnames this relay may register automatically; lines naming further unknown
    /// hostnames are counted together under the shared `unregistered-senders` entry.
    #[serde(default = "default_relay_max_hostnames")]
    pub max_hostnames: usize,
}

fn default_relay_max_hostnames() -> usize {
    DEFAULT_RELAY_MAX_HOSTNAMES
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            udp: format!("0.0.0.0:{DEFAULT_PORT}"),
            tcp: format!("0.0.0.0:{DEFAULT_PORT}"),
            tls: None,
            max_message_bytes: 64 * 1024,
            oversize: "truncate".into(),
            max_connections: 1024,
            max_connections_per_peer: 64,
            idle_timeout: ConfigDuration::from_secs(600),
            timezone: "UTC".into(),
            year_margin: ConfigDuration::from_secs(86_400),
            queue: 16_384,
            batch: 1000,
            default_parser: "auto".into(),
            udp_receive_buffer_bytes: 4 * 1024 * 1024,
            max_auto_nsfs: 4096,
            sender_messages_per_second: 10_000,
            relay: Vec::new(),
        }
    }
}

/// `[syslog.tls]`: the RFC 5425 listener.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Listen address.
    #[serde(default = "default_tls_listen")]
    pub listen: String,
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; unset: no client certificates asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients without a certificate (true) or accept them too (false).
    #[serde(default = "yes")]
    pub require_client_cert: bool,
    /// Time a client has to complete the TLS handshake.
    #[serde(default = "default_handshake")]
    pub handshake_timeout: ConfigDuration,
}

fn default_tls_listen() -> String {
    format!("0.0.0.0:{DEFAULT_TLS_PORT}")
}
fn yes() -> bool {
    true
}
fn default_handshake() -> ConfigDuration {
    ConfigDuration::from_secs(10)
}

/// Keys of `[syslog]` spelled otherwise by earlier releases, still read with a warning.
pub const RENAMED_KEYS: &[RenamedKey] = &[
    RenamedKey::duration("syslog", "idle_timeout_secs", "idle_timeout", OldUnit::Secs),
    RenamedKey::duration(
        "syslog.tls",
        "handshake_timeout_secs",
        "handshake_timeout",
        OldUnit::Secs,
    ),
];

pub use pharos_model::config::ConfigError;

fn listen_addr(section: &str, key: &str, s: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    pharos_model::listen::socket_addr(s).map(Some).map_err(|e| {
        let quoted = format!("{s:?}");
        let why = e.strip_prefix(&format!("{quoted}: ")).unwrap_or(&e);
        ConfigError::new(
            section,
            key,
            quoted,
            format!("{why}, or \"\" to turn it off"),
        )
    })
}

/// The checked form of the listeners' keys of [`SyslogConfig`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// UDP listen address.
    pub udp: Option<SocketAddr>,
    /// TCP listen address.
    pub tcp: Option<SocketAddr>,
    /// TLS listener.
    pub tls: Option<(SocketAddr, TlsConfig)>,
    /// Largest message.
    pub max_message_bytes: usize,
    /// What to do with longer ones.
    pub oversize: OversizePolicy,
    /// Connection limits.
    pub max_connections: usize,
    /// Per-peer connection limit.
    pub max_connections_per_peer: usize,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Capacity of the channel to the next stage.
    pub queue: usize,
    /// UDP receive buffer.
    pub udp_receive_buffer_bytes: usize,
    /// True when the UDP/TCP addresses are the built-in defaults (a failed bind is then a warning).
    pub default_addresses: bool,
    /// Fair share per sender under pressure (0: off).
    pub sender_messages_per_second: u32,
}

impl SyslogConfig {
    /// Checks the listeners' keys; the error names the key and the fix.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let udp = listen_addr("syslog", "udp", &self.udp)?;
        let tcp = listen_addr("syslog", "tcp", &self.tcp)?;
        let tls = match &self.tls {
            Some(t) => {
                let a = listen_addr("syslog.tls", "listen", &t.listen)?.ok_or_else(|| {
                    ConfigError::new(
                        "syslog.tls",
                        "listen",
                        format!("{:?}", t.listen),
                        "give an address like \"0.0.0.0:6514\" or remove [syslog.tls]",
                    )
                })?;
                if t.handshake_timeout.is_zero() {
                    return Err(ConfigError::new(
                        "syslog.tls",
                        "handshake_timeout",
                        "\"0s\"",
                        "must be positive, e.g. \"10s\"",
                    ));
                }
                Some((a, t.clone()))
            }
            None => None,
        };
        if self.max_message_bytes < 480 {
            return Err(ConfigError::new(
                "syslog",
                "max_message_bytes",
                self.max_message_bytes,
                "must be at least 480 (RFC 5424 minimum); 65536 is a good value",
            ));
        }
        let oversize = match self.oversize.as_str() {
            "truncate" => OversizePolicy::Truncate,
            "skip" => OversizePolicy::Skip,
            o => {
                return Err(ConfigError::new(
                    "syslog",
                    "oversize",
                    format!("{o:?}"),
                    "expected \"truncate\" or \"skip\"",
                ));
            }
        };
        for (k, v) in [
            ("max_connections", self.max_connections),
            ("max_connections_per_peer", self.max_connections_per_peer),
            ("queue", self.queue),
        ] {
            if v == 0 {
                return Err(ConfigError::new("syslog", k, 0, "must be at least 1"));
            }
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::new(
                "syslog",
                "idle_timeout",
                "\"0s\"",
                "must be positive, e.g. \"10m\"",
            ));
        }
        let d = SyslogConfig::default();
        Ok(Settings {
            udp,
            tcp,
            tls,
            max_message_bytes: self.max_message_bytes,
            oversize,
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            idle_timeout: self.idle_timeout.get(),
            queue: self.queue,
            udp_receive_buffer_bytes: self.udp_receive_buffer_bytes,
            default_addresses: self.udp == d.udp && self.tcp == d.tcp,
            sender_messages_per_second: self.sender_messages_per_second,
        })
    }
}

/// Which listener a record came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// RFC 5426.
    Udp,
    /// RFC 6587.
    Tcp,
    /// RFC 5425.
    Tls,
}

impl Transport {
    /// `udp`, `tcp` or `tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// One received syslog message, before parsing.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Listener it came through.
    pub transport: Transport,
    /// Sender address.
    pub peer: SocketAddr,
    /// When it was received.
    pub received: Timestamp,
    /// The message bytes (framing removed).
    pub bytes: Bytes,
}

/// Errors starting the syslog sources.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("cannot listen for syslog over {transport} on {addr}: {source}; {hint}")]
    Bind {
        /// udp, tcp or tls.
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
        /// What to do.
        hint: String,
    },
    /// The TLS certificate, key or CA could not be loaded.
    #[error("[syslog.tls]: {0}")]
    Tls(String),
}

/// Running syslog listeners.
pub struct SyslogHandle {
    addrs: Vec<(Transport, SocketAddr)>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SyslogHandle {
    /// The bound addresses, one per listener.
    pub fn addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.addrs
    }

    /// The `syslog.addr` file content: one `transport address` line per listener.
    pub fn addr_lines(&self) -> String {
        self.addrs
            .iter()
            .map(|(t, a)| format!("{} {a}\n", t.as_str()))
            .collect()
    }

    /// Stops accepting and waits until the listeners and their connections have ended; their
    /// senders are gone then, so the channel closes once the receiver has drained it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Shared by the listeners: limits and the way to the next stage.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub tx: mpsc::Sender<RawRecord>,
    pub stop: watch::Receiver<bool>,
    pub settings: Arc<Settings>,
    pub conns: Arc<tcp::ConnLimits>,
    pub fair: Arc<fair::SenderLimiter>,
}

impl Ctx {
    /// True when less than half of the queue to the next stage is free.
    pub fn under_pressure(&self) -> bool {
        self.tx.capacity() < self.tx.max_capacity() / 2
    }
}

/// Starts the listeners; every received message comes out of the returned channel (capacity
/// `settings.queue`), which closes after [`SyslogHandle::shutdown`].
pub async fn start(
    settings: Settings,
) -> Result<(SyslogHandle, mpsc::Receiver<RawRecord>), StartError> {
    describe_metrics();
    let settings = Arc::new(settings);
    let (tx, rx) = mpsc::channel(settings.queue);
    let (stop, stop_rx) = watch::channel(false);
    let ctx = Ctx {
        tx,
        stop: stop_rx,
        settings: settings.clone(),
        conns: Arc::new(tcp::ConnLimits::new(
            settings.max_connections,
            settings.max_connections_per_peer,
        )),
        fair: Arc::new(fair::SenderLimiter::new(
            settings.sender_messages_per_second,
            fair::MAX_SENDERS,
        )),
    };
    let mut addrs = Vec::new();
    let mut tasks = Vec::new();
    let tolerate = |transport: &'static str, addr: SocketAddr, e: &std::io::Error| {
        if settings.default_addresses {
            tracing::warn!(%addr, error = %e, "cannot listen for syslog over {transport} on the default address; going on without it (set [syslog] {transport} to another address, or \"\" to turn it off)");
            true
        } else {
            false
        }
    };
    if let Some(addr) = settings.udp {
        match udp::bind(addr, settings.udp_receive_buffer_bytes) {
            Ok(sock) => {
                addrs.push((Transport::Udp, sock.local_addr().unwrap_or(addr)));
                tasks.push(tokio::spawn(udp::run(sock, ctx.clone())));
            }
            Err(e) if tolerate("udp", addr, &e) => {}
            Err(e) => return Err(bind_error("udp", addr, e)),
        }
    }
    if let Some(addr) = settings.tcp {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                addrs.push((Transport::Tcp, l.local_addr().unwrap_or(addr)));
                tasks.push(tokio::spawn(tcp::run(l, None, ctx.clone())));
            }
            Err(e) if tolerate("tcp", addr, &e) => {}
            Err(e) => return Err(bind_error("tcp", addr, e)),
        }
    }
    if let Some((addr, tls_cfg)) = &settings.tls {
        let acceptor = tls::acceptor(tls_cfg).map_err(StartError::Tls)?;
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| bind_error("tls", *addr, e))?;
        addrs.push((Transport::Tls, l.local_addr().unwrap_or(*addr)));
        tasks.push(tokio::spawn(tcp::run(l, Some(acceptor), ctx.clone())));
    }
    // From here on only the listeners hold senders: the channel closes when they end.
    drop(ctx);
    for (t, a) in &addrs {
        tracing::info!(transport = t.as_str(), addr = %a, "syslog listening");
    }
    Ok((SyslogHandle { addrs, stop, tasks }, rx))
}

fn bind_error(transport: &'static str, addr: SocketAddr, source: std::io::Error) -> StartError {
    let hint = match source.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary); or listen on {DEFAULT_PORT} and redirect 514 to it"
        ),
        std::io::ErrorKind::AddrInUse => {
            "another program (a syslog daemon or another Pharos) holds it: stop it or choose another [syslog] address".into()
        }
        _ => "check the [syslog] listen addresses".into(),
    };
    StartError::Bind {
        transport,
        addr,
        source,
        hint,
    }
}

/// Describes the listeners' metrics (the normalise stage describes its own).
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pharos_syslog_received_total",
        "Syslog messages received, by transport"
    );
    describe_counter!(
        "pharos_syslog_dropped_total",
        // One counter for every cause of loss: the listeners count queue_full, sender_rate, oversize and
        // incomplete, the normalise stage store_full, store_error and shutdown.
        "Syslog messages not stored, by reason (queue_full, sender_rate, oversize, incomplete, store_full, store_error, shutdown)"
    );
    describe_counter!(
        "pharos_syslog_throttled_total",
        "TCP and TLS syslog messages held back because their sender was over sender_messages_per_second while the queue was more than half full, by transport"
    );
    describe_counter!(
        "pharos_syslog_truncated_total",
        "Syslog messages longer than max_message_bytes that were truncated, by transport"
    );
    describe_gauge!(
        "pharos_syslog_connections",
        "Open syslog TCP and TLS connections, by transport"
    );
    describe_counter!(
        "pharos_syslog_connections_total",
        "Syslog TCP and TLS connections accepted, by transport"
    );
    describe_counter!(
        "pharos_syslog_connections_refused_total",
        "Syslog connections refused or closed early, by reason (max_connections, max_connections_per_peer, tls_handshake, idle_timeout, read_error)"
    );
}
