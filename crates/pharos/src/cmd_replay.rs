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
use pharos_model::text::printable;

use crate::cmd_decode::{read_udp_datagrams, shown};

/// Arguments of `pharos replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Capture file (pcap or pcapng) whose UDP datagrams are sent.
    pub file: PathBuf,
    /// Collector: address or host name, and port, e.g. 127.0.0.1:2055, [::1]:2055,
    /// localhost:2055, collector.example.net:2055.
    #[arg(long, value_parser = parse_collector, value_name = "HOST:PORT")]
    pub to: SocketAddr,
    /// Datagrams per second, e.g. 20000 or 20000/s.
    #[arg(long, value_parser = parse_rate, conflicts_with = "burst")]
    pub rate: Option<f64>,
    /// Send as fast as possible (the default when --rate is not given).
    #[arg(long)]
    pub burst: bool,
    /// Send the whole capture this many times.
    #[arg(long = "loop", default_value_t = 1, value_name = "N", value_parser = parse_loops)]
    pub loops: u32,
    /// Only send datagrams whose destination port in the capture is this one.
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    pub only_port: Option<u16>,
    /// Send every datagram from one socket instead of one socket per original sender.
    #[arg(long)]
    pub single_source: bool,
}

/// `--to`: an address and port, or a host name and port resolved here (the first address the
/// resolver gives, IPv4 preferred, as most collectors listen on IPv4).
fn parse_collector(s: &str) -> Result<SocketAddr, String> {
    pharos_model::listen::socket_addr(s)
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.trim().parse::<u16>().map_err(|_| {
        format!(
            "expected a UDP port number 0..65535 such as 2055, found {:?}",
            printable(s)
        )
    })
}

fn parse_loops(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "expected how many times to send the capture (1 or more, e.g. 3), found {:?}",
            printable(s)
        )),
    }
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
            shown(&args.file),
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
        let Some(rate) = rate else {
            send_burst(sockets, payloads, index, &mut s, &mut sent_total, bar);
            continue;
        };
        for &(off, len, sock) in index {
            // Datagram k is due at k / rate seconds. Sleep while ahead of the schedule (timer
            // overshoot is caught up by sending the late ones back to back), so the long-run rate
            // is exact and the sender does not spin on a core the collector needs.
            let due_at = sent_total as f64 / rate;
            let now = start.elapsed().as_secs_f64();
            if due_at > now {
                std::thread::sleep(Duration::from_secs_f64(due_at - now));
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

/// Datagrams handed to the kernel per `sendmmsg` call in `--burst` mode.
const BURST: usize = 64;

/// `--burst`: each run of datagrams from the same original sender goes out in `sendmmsg` calls
/// of up to [`BURST`] datagrams (one system call instead of 64), so one sender core offers
/// several million flows per second. A datagram the kernel refuses (e.g. connection refused after
/// an ICMP port unreachable) is counted as an error and skipped.
#[cfg(target_os = "linux")]
fn send_burst(
    sockets: &[UdpSocket],
    payloads: &[u8],
    index: &[(usize, usize, usize)],
    s: &mut ReplaySummary,
    sent_total: &mut u64,
    bar: &indicatif::ProgressBar,
) {
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, sendmmsg};
    use std::io::IoSlice;
    let mut i = 0;
    while i < index.len() {
        let sock = index[i].2;
        let run = index[i..]
            .iter()
            .take(BURST)
            .take_while(|d| d.2 == sock)
            .count();
        let chunk = &index[i..i + run];
        let iovs: Vec<[IoSlice<'_>; 1]> = chunk
            .iter()
            .map(|&(off, len, _)| [IoSlice::new(&payloads[off..off + len])])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
            (0..run).map(|_| SendAncillaryBuffer::default()).collect();
        let mut msgs: Vec<MMsgHdr<'_>> = iovs
            .iter()
            .zip(controls.iter_mut())
            .map(|(iov, c)| MMsgHdr::new(iov, c))
            .collect();
        let mut done = 0;
        while done < run {
            match sendmmsg(&sockets[sock], &mut msgs[done..], SendFlags::empty()) {
                Ok(0) => {
                    s.errors += (run - done) as u64;
                    done = run;
                }
                Ok(n) => {
                    s.datagrams += n as u64;
                    s.bytes += chunk[done..done + n]
                        .iter()
                        .map(|d| d.1 as u64)
                        .sum::<u64>();
                    done += n;
                }
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(_) => {
                    s.errors += 1;
                    done += 1;
                }
            }
        }
        let before = *sent_total;
        *sent_total += run as u64;
        if before / 1024 != *sent_total / 1024 {
            bar.set_position(*sent_total);
        }
        i += run;
    }
}

/// `--burst` where `sendmmsg` does not exist: one `send` per datagram, back to back.
#[cfg(not(target_os = "linux"))]
fn send_burst(
    sockets: &[UdpSocket],
    payloads: &[u8],
    index: &[(usize, usize, usize)],
    s: &mut ReplaySummary,
    sent_total: &mut u64,
    bar: &indicatif::ProgressBar,
) {
    for &(off, len, sock) in index {
        match sockets[sock].send(&payloads[off..off + len]) {
            Ok(_) => {
                s.datagrams += 1;
                s.bytes += len as u64;
            }
            Err(_) => s.errors += 1,
        }
        *sent_total += 1;
    }
    bar.set_position(*sent_total);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collectors_are_addresses_or_resolved_host_names() {
        assert_eq!(
            parse_collector("127.0.0.1:2055").unwrap(),
            "127.0.0.1:2055".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_collector("[::1]:2055").unwrap(),
            "[::1]:2055".parse::<SocketAddr>().unwrap()
        );
        let a = parse_collector("localhost:2055").unwrap();
        assert!(a.ip().is_loopback() && a.port() == 2055, "{a}");
        let e = parse_collector("localhost").unwrap_err();
        assert!(
            e.contains("HOST:PORT") && e.contains("port is required"),
            "{e}"
        );
        let e = parse_collector("localhost:99999").unwrap_err();
        assert!(e.contains("not a port number"), "{e}");
        let e = parse_collector("no-such-host.invalid:2055").unwrap_err();
        assert!(
            e.contains("cannot resolve") && e.contains("no-such-host.invalid"),
            "{e}"
        );
        assert!(!e.contains("invalid socket address syntax"), "{e}");
    }

    #[test]
    fn ports_and_loops_are_refused_in_words() {
        assert_eq!(parse_port("2055"), Ok(2055));
        let e = parse_port("70000").unwrap_err();
        assert!(
            e.contains("UDP port number 0..65535") && !e.contains("u16"),
            "{e}"
        );
        assert_eq!(parse_loops("3"), Ok(3));
        assert!(parse_loops("0").unwrap_err().contains("1 or more"));
    }

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
