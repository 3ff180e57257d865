//! `pharos replay FILE --to ADDR [--rate N/s | --burst] [--loop N]`: sends the UDP payloads of a
//! capture to a collector, paced (datagrams per second) or as fast as the sender can, with a
//! progress bar on a terminal and a one-line summary on stdout.
//!
//! Datagrams keep their capture order. Each original sender (address and port) gets its own UDP
//! socket, so a collector still tells exporters apart (their templates and sequence numbers stay
//! separate); `--single-source` sends everything from one socket.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cmd_decode::read_udp_datagrams;

/// Arguments of `pharos replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Capture file (pcap or pcapng) whose UDP datagrams are sent.
    pub file: PathBuf,
    /// Collector address, e.g. 127.0.0.1:2055.
    #[arg(long)]
    pub to: SocketAddr,
    /// Datagrams per second, e.g. 20000 or 20000/s.
    #[arg(long, value_parser = parse_rate, conflicts_with = "burst")]
    pub rate: Option<f64>,
    /// Send as fast as possible (the default when --rate is not given).
    #[arg(long)]
    pub burst: bool,
    /// Send the whole capture this many times.
    #[arg(long = "loop", default_value_t = 1, value_name = "N")]
    pub loops: u32,
    /// Only send datagrams whose destination port in the capture is this one.
    #[arg(long, value_name = "PORT")]
    pub only_port: Option<u16>,
    /// Send every datagram from one socket instead of one socket per original sender.
    #[arg(long)]
    pub single_source: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s");
    match n.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?}: expected datagrams per second, e.g. 20000 or 20000/s"
        )),
    }
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplaySummary {
    /// Datagrams handed to the kernel.
    pub datagrams: u64,
    /// Payload bytes handed to the kernel.
    pub bytes: u64,
    /// Sends that failed (e.g. nobody listening: connection refused).
    pub errors: u64,
    /// Wall time of the sending.
    pub elapsed: Duration,
}

/// Runs `pharos replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    // Everything in memory first: sending must not wait on the disk.
    let mut payloads: Vec<u8> = Vec::new();
    let mut index: Vec<(usize, usize, usize)> = Vec::new(); // (offset, len, sender socket)
    let mut senders: HashMap<SocketAddr, usize> = HashMap::new();
    let capture = read_udp_datagrams(&args.file, |_ts, src, dst, payload| {
        if args.only_port.is_some_and(|p| p != dst.port()) {
            return;
        }
        let next = senders.len();
        let sock = if args.single_source {
            0
        } else {
            *senders.entry(src).or_insert(next)
        };
        index.push((payloads.len(), payload.len(), sock));
        payloads.extend_from_slice(payload);
    })?;
    if let Some(e) = &capture.damaged {
        eprintln!(
            "pharos replay: {}: capture damaged after {} datagrams ({e}); sending those",
            args.file.display(),
            index.len()
        );
    }
    if index.is_empty() {
        anyhow::bail!(
            "{}: no UDP datagram to send{}",
            args.file.display(),
            if args.only_port.is_some() {
                " (none to the --only-port port)"
            } else {
                ""
            }
        );
    }
    let n_sockets = if args.single_source {
        1
    } else {
        senders.len().max(1)
    };
    let bind: SocketAddr = if args.to.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let sockets = (0..n_sockets)
        .map(|_| {
            let s = UdpSocket::bind(bind).context("cannot open a UDP socket to send from")?;
            s.connect(args.to)
                .with_context(|| format!("cannot send to {} (--to)", args.to))?;
            Ok(s)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let total = index.len() as u64 * u64::from(args.loops);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} datagrams {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let summary = send_all(&sockets, &payloads, &index, args.loops, args.rate, &bar);
    bar.finish_and_clear();
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    println!(
        "sent {} datagrams ({} bytes) to {} in {:.3} s: {:.0} datagrams/s, {:.1} Mbit/s; {} send errors",
        summary.datagrams,
        summary.bytes,
        args.to,
        secs,
        summary.datagrams as f64 / secs,
        summary.bytes as f64 * 8.0 / secs / 1e6,
        summary.errors
    );
    if summary.errors > 0 {
        eprintln!(
            "pharos replay: {} sends failed; is a collector listening on {}?",
            summary.errors, args.to
        );
    }
    Ok(())
}

fn send_all(
    sockets: &[UdpSocket],
    payloads: &[u8],
    index: &[(usize, usize, usize)],
    loops: u32,
    rate: Option<f64>,
    bar: &indicatif::ProgressBar,
) -> ReplaySummary {
    let mut s = ReplaySummary::default();
    let start = Instant::now();
    let mut sent_total: u64 = 0;
    for _ in 0..loops {
        for &(off, len, sock) in index {
            if let Some(rate) = rate {
                // Datagram k is due at k / rate seconds. Sleep while ahead of the schedule (timer
                // overshoot is caught up by sending the late ones back to back), so the long-run
                // rate is exact and the sender does not spin on a core the collector needs.
                let due_at = sent_total as f64 / rate;
                let now = start.elapsed().as_secs_f64();
                if due_at > now {
                    std::thread::sleep(Duration::from_secs_f64(due_at - now));
                }
            }
            match sockets[sock].send(&payloads[off..off + len]) {
                Ok(_) => {
                    s.datagrams += 1;
                    s.bytes += len as u64;
                }
                Err(_) => s.errors += 1,
            }
            sent_total += 1;
            if sent_total.is_multiple_of(1024) {
                bar.set_position(sent_total);
            }
        }
    }
    s.elapsed = start.elapsed();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_accepts_plain_and_per_second_forms() {
        assert_eq!(parse_rate("20000").unwrap(), 20000.0);
        assert_eq!(parse_rate("20000/s").unwrap(), 20000.0);
        assert!(parse_rate("0").is_err());
        assert!(
            parse_rate("fast")
                .unwrap_err()
                .contains("datagrams per second")
        );
    }
}
