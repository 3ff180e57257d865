//! TCP (RFC 6587) and TLS (RFC 5425) connections: limits, framing, idle timeout.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pharos_wire::syslog::{Frame, SyslogCodec};
use tokio::io::AsyncRead;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedRead;

use super::fair::Verdict;
use super::{Ctx, RawRecord, Transport};

/// Open connections, in total and per peer address.
pub(crate) struct ConnLimits {
    max_total: usize,
    max_per_peer: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Releases a connection slot when dropped.
pub(crate) struct Slot<'a> {
    limits: &'a ConnLimits,
    peer: IpAddr,
}

impl ConnLimits {
    pub(crate) fn new(max_total: usize, max_per_peer: usize) -> Self {
        Self {
            max_total,
            max_per_peer,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// Takes a slot for `peer`, or says which limit refused it.
    pub(crate) fn acquire(&self, peer: IpAddr) -> Result<Slot<'_>, &'static str> {
        let mut g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 >= self.max_total {
            return Err("max_connections");
        }
        let n = g.1.entry(peer).or_insert(0);
        if *n >= self.max_per_peer {
            return Err("max_connections_per_peer");
        }
        *n += 1;
        g.0 += 1;
        Ok(Slot { limits: self, peer })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut g = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if let Some(n) = g.1.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                g.1.remove(&self.peer);
            }
        }
    }
}

/// Accepts connections until stopped; each is served by its own task.
pub(super) async fn run(listener: TcpListener, tls: Option<TlsAcceptor>, mut ctx: Ctx) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    tracing::warn!(error = %e, "syslog {} accept failed", transport.as_str());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = ctx.stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let ctx = ctx.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let limits = ctx.conns.clone();
            let _slot = match limits.acquire(peer.ip()) {
                Ok(s) => s,
                Err(reason) => {
                    metrics::counter!("pharos_syslog_connections_refused_total", "reason" => reason).increment(1);
                    tracing::debug!(%peer, reason, "syslog connection refused");
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            metrics::counter!("pharos_syslog_connections_total", "transport" => transport.as_str()).increment(1);
            let gauge = metrics::gauge!("pharos_syslog_connections", "transport" => transport.as_str());
            gauge.increment(1.0);
            match tls {
                None => serve(stream, peer, transport, ctx).await,
                Some(acceptor) => {
                    let limit = ctx.settings.tls.as_ref().map_or(Duration::from_secs(10), |(_, t)| t.handshake_timeout.get());
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve(s, peer, transport, ctx).await,
                        Ok(Err(e)) => {
                            metrics::counter!("pharos_syslog_connections_refused_total", "reason" => "tls_handshake").increment(1);
                            tracing::info!(%peer, error = %e, "syslog TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("pharos_syslog_connections_refused_total", "reason" => "tls_handshake").increment(1);
                            tracing::info!(%peer, "syslog TLS handshake timed out");
                        }
                    }
                }
            }
            gauge.decrement(1.0);
        });
    }
    // Stopping: connections see the stop signal and end; wait for them so their records are queued.
    while conns.join_next().await.is_some() {}
}

/// Reads frames from one connection until EOF, error, idle timeout or stop.
pub(super) async fn serve<S: AsyncRead + Unpin>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut ctx: Ctx,
) {
    let codec = SyslogCodec::new(ctx.settings.max_message_bytes, ctx.settings.oversize);
    let mut frames = FramedRead::with_capacity(stream, codec, 16 * 1024);
    let idle = ctx.settings.idle_timeout;
    let t = transport.as_str();
    loop {
        let next = tokio::select! {
            r = tokio::time::timeout(idle, frames.next()) => r,
            _ = ctx.stop.changed() => return,
        };
        let frame = match next {
            Err(_) => {
                metrics::counter!("pharos_syslog_connections_refused_total", "reason" => "idle_timeout").increment(1);
                tracing::debug!(%peer, "syslog connection idle: closed");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                metrics::counter!("pharos_syslog_connections_refused_total", "reason" => "read_error").increment(1);
                tracing::debug!(%peer, error = %e, "syslog connection read error");
                return;
            }
            Ok(Some(Ok(f))) => f,
        };
        let bytes = match frame {
            Frame::Message(b) => b,
            Frame::Truncated { data, length } => {
                metrics::counter!("pharos_syslog_truncated_total", "transport" => t).increment(1);
                tracing::debug!(%peer, ?length, "syslog frame over max_message_bytes: truncated");
                data
            }
            Frame::Skipped { length } => {
                metrics::counter!("pharos_syslog_received_total", "transport" => t).increment(1);
                metrics::counter!("pharos_syslog_dropped_total", "reason" => "oversize")
                    .increment(1);
                tracing::debug!(%peer, length, "syslog frame over max_message_bytes: skipped");
                continue;
            }
            Frame::Incomplete { length, have } => {
                metrics::counter!("pharos_syslog_dropped_total", "reason" => "incomplete")
                    .increment(1);
                tracing::debug!(%peer, length, have, "syslog connection closed inside a frame");
                continue;
            }
        };
        metrics::counter!("pharos_syslog_received_total", "transport" => t).increment(1);
        let rec = RawRecord {
            transport,
            peer,
            received: chrono::Utc::now(),
            bytes,
        };
        // Over its rate while the queue fills up, the sender waits for its next token (its fair
        // share, see fair.rs).
        if !ctx.fair.is_off() {
            let mut throttled = false;
            while let Verdict::Refuse(wait) =
                ctx.fair
                    .check(peer.ip(), ctx.under_pressure(), Instant::now())
            {
                if !throttled {
                    metrics::counter!("pharos_syslog_throttled_total", "transport" => t)
                        .increment(1);
                    throttled = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ctx.stop.changed() => return,
                }
            }
        }
        // Waiting here is the backpressure a stream sender feels.
        tokio::select! {
            r = ctx.tx.send(rec) => if r.is_err() { return },
            _ = ctx.stop.changed() => return,
        }
    }
}
