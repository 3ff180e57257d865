//! The UDP listener (RFC 5426): one message per datagram; never waits on a full queue.

use std::net::SocketAddr;

use bytes::Bytes;
use pharos_wire::syslog::OversizePolicy;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;

use super::fair::Verdict;
use super::{Ctx, RawRecord, Transport};

/// Binds `addr` with a receive buffer of `rcvbuf` bytes (0: system default).
pub(super) fn bind(addr: SocketAddr, rcvbuf: usize) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if rcvbuf > 0 {
        // Best effort: the kernel caps it at net.core.rmem_max.
        let _ = s.set_recv_buffer_size(rcvbuf);
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

pub(super) async fn run(sock: UdpSocket, mut ctx: Ctx) {
    let max = ctx.settings.max_message_bytes;
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "syslog udp receive error");
                    continue;
                }
            },
            _ = ctx.stop.changed() => return,
        };
        metrics::counter!("pharos_syslog_received_total", "transport" => "udp").increment(1);
        let mut data = &buf[..n];
        while let [rest @ .., b'\n' | b'\r' | 0] = data {
            data = rest;
        }
        if data.is_empty() {
            continue;
        }
        if data.len() > max {
            match ctx.settings.oversize {
                OversizePolicy::Truncate => {
                    metrics::counter!("pharos_syslog_truncated_total", "transport" => "udp")
                        .increment(1);
                    data = &data[..max];
                }
                OversizePolicy::Skip => {
                    metrics::counter!("pharos_syslog_dropped_total", "reason" => "oversize")
                        .increment(1);
                    continue;
                }
            }
        }
        if let Verdict::Refuse(_) =
            ctx.fair
                .check(peer.ip(), ctx.under_pressure(), std::time::Instant::now())
        {
            metrics::counter!("pharos_syslog_dropped_total", "reason" => "sender_rate")
                .increment(1);
            continue;
        }
        let rec = RawRecord {
            transport: Transport::Udp,
            peer,
            received: chrono::Utc::now(),
            bytes: Bytes::copy_from_slice(data),
        };
        match ctx.tx.try_send(rec) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("pharos_syslog_dropped_total", "reason" => "queue_full")
                    .increment(1);
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
}
