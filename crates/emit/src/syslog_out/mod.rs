//! Syslog out: each item as one RFC 5424 message over UDP, TCP or TLS.
//!
//! Contract:
//! - A line is `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [i2nsf@32473 ...] MSG`:
//!   PRI from the configured facility (default local4) and the message severity ([`syslog_severity`]),
//!   TIMESTAMP the message's event time in UTC, PROCID our process id, MSGID the kind name
//!   (`ddos`, `system-alarm`, ...), one structured-data element with the I2NSF fields the message
//!   has (values escaped per RFC 5424 §6.3.3), and MSG the message's `message` text or, when it has
//!   none, its compact YANG-JSON; a MSG that is not ASCII starts with the UTF-8 BOM.
//! - UDP: one datagram per item, cut at `max_udp_bytes` (at a character boundary; counted in
//!   `pharos_emit_truncated_total{sink="syslog"}`).
//! - TCP and TLS: octet-counting framing (RFC 6587 §3.4.1, RFC 5425) `LEN SP MSG`; the connection
//!   is kept across calls, checked for a peer close before each batch, and dropped on any error
//!   (the call returns [`SinkError::Retry`] and the next call reconnects).
//! - Syslog has no acknowledgement: `Ok` means every line was written to the socket (TCP, TLS) or
//!   sent (UDP). Nothing is ever rejected.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pharos_model::{Kind, Severity};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::{ConfigDuration, Item, SinkConfigError, SinkError};

const SINK: &str = "syslog";

/// SD-ID of our structured-data element. 32473 is the private enterprise number IANA reserves
/// for documentation (RFC 5612); Pharos has none of its own.
pub const SD_ID: &str = "i2nsf@32473";

/// How lines travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One datagram per line (RFC 5426).
    #[default]
    Udp,
    /// Octet-counted lines over TCP (RFC 6587).
    Tcp,
    /// Octet-counted lines over TLS (RFC 5425).
    Tls,
}

/// Configuration of a syslog-out sink.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogOutConfig {
    /// Receiver as `host:port` (`[v6]:port` for IPv6 addresses).
    pub address: String,
    /// `udp` (default), `tcp` or `tls`.
    #[serde(default)]
    pub transport: Transport,
    /// Extra CA certificates (PEM file) to trust for `tls`, besides the Mozilla roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// APP-NAME of every line (default `pharos`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME of every line (default: this machine's host name, or `-` when unknown).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Facility: a name (`kern` ... `local7`) or a number 0..=23 (default `local4`, 20).
    #[serde(default = "default_facility")]
    pub facility: String,
    /// Longest UDP datagram; longer lines are cut (default 2048).
    #[serde(default = "default_max_udp_bytes")]
    pub max_udp_bytes: usize,
    /// Time to connect and to write one batch (default `"10s"`).
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
}

fn default_app_name() -> String {
    "pharos".into()
}
fn default_facility() -> String {
    "local4".into()
}
fn default_max_udp_bytes() -> usize {
    2048
}
fn default_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(10))
}

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

impl SyslogOutConfig {
    /// A configuration for `address` over `transport` with the defaults.
    pub fn new(address: impl Into<String>, transport: Transport) -> Self {
        Self {
            address: address.into(),
            transport,
            ca_file: None,
            app_name: default_app_name(),
            hostname: None,
            facility: default_facility(),
            max_udp_bytes: default_max_udp_bytes(),
            timeout: default_timeout(),
        }
    }

    /// Validates the configuration and builds the sink (no network access yet).
    pub fn build(&self) -> Result<SyslogOutSink, SinkConfigError> {
        let (host, port) = split_address(&self.address).ok_or_else(|| {
            SinkConfigError::new(
                "syslog.address",
                format!(
                    "{:?} is not host:port; write it like \"logs.example.net:6514\" or \"[2001:db8::1]:514\"",
                    self.address
                ),
            )
        })?;
        let facility = match self.facility.parse::<u8>() {
            Ok(n) if n < 24 => n,
            _ => FACILITIES
                .iter()
                .position(|f| f.eq_ignore_ascii_case(&self.facility))
                .map(|p| p as u8)
                .ok_or_else(|| {
                    SinkConfigError::new(
                        "syslog.facility",
                        format!(
                            "{:?} is not a facility; use a name from kern to local7 or a number 0..=23",
                            self.facility
                        ),
                    )
                })?,
        };
        check_header_field("syslog.app_name", &self.app_name, 48)?;
        let hostname = match &self.hostname {
            Some(h) => {
                check_header_field("syslog.hostname", h, 255)?;
                h.clone()
            }
            None => machine_hostname(),
        };
        if self.transport == Transport::Udp && self.max_udp_bytes < 480 {
            return Err(SinkConfigError::new(
                "syslog.max_udp_bytes",
                format!(
                    "{} is too small; RFC 5426 asks receivers to take at least 480, give 480 or more (default 2048)",
                    self.max_udp_bytes
                ),
            ));
        }
        if self.timeout.0.is_zero() {
            return Err(SinkConfigError::new(
                "syslog.timeout",
                "is zero; give a duration like \"10s\"",
            ));
        }
        let tls = match self.transport {
            Transport::Tls => {
                let config = crate::client_tls_config(self.ca_file.as_deref(), "syslog.ca_file")?;
                let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                    SinkConfigError::new(
                        "syslog.address",
                        format!("{host:?} cannot be checked against a certificate: {e}"),
                    )
                })?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(SyslogOutSink {
            target: if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            },
            transport: self.transport,
            tls,
            header: Header {
                facility,
                hostname,
                app_name: self.app_name.clone(),
                proc_id: std::process::id().to_string(),
            },
            max_udp_bytes: self.max_udp_bytes,
            timeout: self.timeout.0,
            conn: None,
        })
    }
}

impl crate::sink::SinkConfig for SyslogOutConfig {
    const KIND: &'static str = SINK;
    const KEYS: &'static [&'static str] = &[
        "address",
        "transport",
        "ca_file",
        "app_name",
        "hostname",
        "facility",
        "max_udp_bytes",
        "timeout",
    ];
    type Sink = SyslogOutSink;

    fn build(&self) -> Result<SyslogOutSink, SinkConfigError> {
        SyslogOutConfig::build(self)
    }

    /// The host of `address` must be in `[emit] allow_hosts`.
    fn confine(&mut self, allow_hosts: &[String]) -> Result<(), String> {
        crate::sink::require_allowed(
            "syslog.address",
            crate::sink::host_of(&self.address),
            allow_hosts,
        )
    }
}

/// `host:port` or `[v6]:port` into the host (without brackets) and a non-zero port.
fn split_address(a: &str) -> Option<(String, u16)> {
    let (host, port) = a.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn check_header_field(key: &'static str, v: &str, max: usize) -> Result<(), SinkConfigError> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|c| (33..=126).contains(&c)) {
        return Err(SinkConfigError::new(
            key,
            format!("{v:?} must be 1 to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// This machine's host name from /proc, or `-` (the NILVALUE) when unknown.
fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|c| (33..=126).contains(&c)))
        .unwrap_or_else(|| "-".into())
}

/// Syslog severity of a Pharos severity: critical 2 (crit), high 3 (err), middle 4 (warning),
/// low 5 (notice), info 6 (info).
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Middle => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// The header fields that do not depend on the item.
#[derive(Debug, Clone)]
struct Header {
    facility: u8,
    hostname: String,
    app_name: String,
    proc_id: String,
}

/// Most addresses of one role put into the structured data (a DDoS event's bounded sample).
const MAX_ADDRS_PER_ROLE: usize = 16;

/// Appends ` name="value"` with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_param(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The structured-data element of an item: `[i2nsf@32473 seq=.. kind=.. severity=.. ...]`.
fn structured_data(item: &Item) -> String {
    let m = &item.stored.message;
    let c = &m.common;
    let mut sd = String::with_capacity(256);
    sd.push('[');
    sd.push_str(SD_ID);
    sd_param(&mut sd, "seq", &item.seq.to_string());
    sd_param(&mut sd, "change", item.change.as_str());
    if let Some(id) = c.id {
        sd_param(&mut sd, "id", &id.to_string());
    }
    sd_param(&mut sd, "kind", m.kind.name());
    sd_param(&mut sd, "severity", c.severity.as_str());
    if let Some(state) = item.stored.state {
        sd_param(&mut sd, "state", state.as_str());
    }
    sd_param(&mut sd, "nsf-name", &c.nsf_name);
    let (mut src, mut dst) = (0, 0);
    for (role, ip) in m.addresses() {
        let (name, n) = match role {
            pharos_model::AddrRole::Src => ("src-ip", &mut src),
            pharos_model::AddrRole::Dst => ("dst-ip", &mut dst),
        };
        if *n < MAX_ADDRS_PER_ROLE {
            *n += 1;
            sd_param(&mut sd, name, &ip.to_string());
        }
    }
    if let Some(rule) = m.rule_name() {
        sd_param(&mut sd, "rule", rule);
    }
    if let Kind::Ddos(d) = &m.kind {
        if let Some(r) = d.attack_rate {
            sd_param(&mut sd, "attack-rate", &r.to_string());
        }
        if let Some(t) = d.attack_throughput {
            sd_param(&mut sd, "attack-throughput", &t.to_string());
        }
    }
    sd.push(']');
    sd
}

/// The RFC 5424 line of one item (without framing).
fn format_line(h: &Header, item: &Item) -> Vec<u8> {
    let m = &item.stored.message;
    let pri = u16::from(h.facility) * 8 + u16::from(syslog_severity(m.common.severity));
    let mut line = String::with_capacity(512);
    let _ = write!(
        line,
        "<{pri}>1 {} {} {} {} {} {} ",
        m.common
            .event_time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        h.hostname,
        h.app_name,
        h.proc_id,
        m.kind.name(),
        structured_data(item),
    );
    let text = match &m.common.message {
        Some(t) if !t.is_empty() => t.clone(),
        _ => pharos_model::json::encode_string(m),
    };
    let mut out = line.into_bytes();
    if !text.is_ascii() {
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    out
}

/// `line` cut to at most `max` bytes, at a UTF-8 character boundary; true when it was cut.
fn truncate_utf8(line: &mut Vec<u8>, max: usize) -> bool {
    if line.len() <= max {
        return false;
    }
    let mut end = max;
    // A continuation byte is 0b10xx_xxxx: back up to the start of its character.
    while end > 0 && (line[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    line.truncate(end);
    true
}

/// An open stream connection.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }

    /// True when the receiver closed the connection (or it failed). Peeks through a duplicate
    /// of the socket's descriptor, because tokio's readiness is only as fresh as the last turn of
    /// its reactor; a TLS receiver's post-handshake data (session tickets) is read and dropped.
    fn peer_gone(&mut self) -> bool {
        use std::os::fd::AsFd;
        let Ok(fd) = self.tcp().as_fd().try_clone_to_owned() else {
            return true;
        };
        // The duplicate shares the non-blocking file description: peek never waits.
        let std_tcp = std::net::TcpStream::from(fd);
        let mut b = [0u8; 1];
        match std_tcp.peek(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Ok(0) | Err(_) => true,
            Ok(_) => match self {
                Conn::Tcp(_) => false,
                Conn::Tls(s) => {
                    use futures_util::FutureExt;
                    use tokio::io::AsyncReadExt;
                    let mut sink = [0u8; 512];
                    loop {
                        match s.read(&mut sink).now_or_never() {
                            None => return false,
                            Some(Ok(0)) | Some(Err(_)) => return true,
                            Some(Ok(_)) => continue,
                        }
                    }
                }
            },
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }
}

impl crate::sink::Sink for SyslogOutSink {
    fn describe(&self) -> String {
        SyslogOutSink::describe(self)
    }

    async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        SyslogOutSink::deliver(self, items).await
    }
}

/// A syslog-out sink built from a [`SyslogOutConfig`].
pub struct SyslogOutSink {
    target: String,
    transport: Transport,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
    header: Header,
    max_udp_bytes: usize,
    timeout: Duration,
    conn: Option<Conn>,
}

impl std::fmt::Debug for SyslogOutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogOutSink")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}

impl SyslogOutSink {
    /// The target for logs and the API: `syslog+<transport>://host:port`.
    pub fn describe(&self) -> String {
        let t = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        };
        format!("syslog+{t}://{}", self.target)
    }

    /// Sends `items` in order, one line each; `Ok` when all were written (syslog has no acks).
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let res = match self.transport {
            Transport::Udp => self.deliver_udp(items).await,
            Transport::Tcp | Transport::Tls => self.deliver_stream(items).await,
        };
        match &res {
            Ok(()) => metrics::counter!("pharos_emit_sent_total", "sink" => SINK)
                .increment(items.len() as u64),
            Err((reason, _)) => {
                metrics::counter!("pharos_emit_sink_errors_total", "sink" => SINK, "reason" => *reason)
                    .increment(items.len() as u64)
            }
        }
        res.map_err(|(_, e)| SinkError::Retry(format!("{}: {e}", self.describe())))
    }

    async fn deliver_udp(&mut self, items: &[Item]) -> Result<(), (&'static str, String)> {
        let io = |e: std::io::Error| ("unreachable", e.to_string());
        let target = &self.target;
        let addr = tokio::time::timeout(self.timeout, tokio::net::lookup_host(target))
            .await
            .map_err(|_| ("timeout", format!("resolving {target} timed out")))?
            .map_err(io)?
            .next()
            .ok_or_else(|| ("unreachable", format!("{target} resolves to no address")))?;
        let bind: std::net::SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).await.map_err(io)?;
        sock.connect(addr).await.map_err(io)?;
        for item in items {
            let mut line = format_line(&self.header, item);
            if truncate_utf8(&mut line, self.max_udp_bytes) {
                metrics::counter!("pharos_emit_truncated_total", "sink" => SINK).increment(1);
            }
            sock.send(&line).await.map_err(io)?;
        }
        Ok(())
    }

    async fn deliver_stream(&mut self, items: &[Item]) -> Result<(), (&'static str, String)> {
        if self.conn.as_mut().is_some_and(Conn::peer_gone) {
            tracing::debug!(target = %self.describe(), "syslog receiver closed the connection; reconnecting");
            self.conn = None;
        }
        let timeout = self.timeout;
        let mut buf = Vec::with_capacity(items.len() * 512);
        for item in items {
            let line = format_line(&self.header, item);
            let _ = std::io::Write::write_fmt(&mut buf, format_args!("{} ", line.len()));
            buf.extend_from_slice(&line);
        }
        let result = tokio::time::timeout(timeout, async {
            if self.conn.is_none() {
                self.conn = Some(self.connect().await?);
            }
            let conn = self.conn.as_mut().expect("connected above");
            conn.write_all(&buf)
                .await
                .map_err(|e| ("unreachable", e.to_string()))
        })
        .await
        .unwrap_or_else(|_| Err(("timeout", format!("no progress in {timeout:?}"))));
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn connect(&self) -> Result<Conn, (&'static str, String)> {
        let tcp = TcpStream::connect(&self.target)
            .await
            .map_err(|e| ("unreachable", format!("connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn::Tcp(tcp)),
            Some((connector, name)) => connector
                .connect(name.clone(), tcp)
                .await
                .map(|s| Conn::Tls(Box::new(s)))
                .map_err(|e| ("tls", format!("TLS handshake: {e}"))),
        }
    }
}
