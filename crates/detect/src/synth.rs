//! Synthetic, seeded flow traffic for the detectors' tests and benchmarks: background traffic over
//! many hosts and constant-rate attacks whose true rate is known.
//!
//! Contract: the same seed gives the same flows. Attack flows are exported at their end (the
//! record's `end_ms` is never after the `until_ms` it was emitted for), as NetFlow/IPFIX do.

use pharos_model::flow::{FlowBatch, FlowRecord};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
}

/// A flow between two textual addresses (panics on a bad address: test helper).
pub fn flow(
    src: &str,
    dst: &str,
    proto: u8,
    sp: u16,
    dp: u16,
    start_ms: u64,
    end_ms: u64,
) -> FlowRecord {
    FlowRecord {
        src_addr: src.parse().expect("source address"),
        dst_addr: dst.parse().expect("destination address"),
        src_port: sp,
        dst_port: dp,
        proto,
        packets: 1,
        bytes: 64,
        start_ms,
        end_ms,
        ..FlowRecord::default()
    }
}

/// `n` background flows ending in `[t_ms, t_ms + 1000)` towards `hosts` hosts from `base`
/// (IPv4, consecutive), plus some IPv6: web, DNS, NTP clients, ICMP, ssh; a few packets each.
pub fn background(
    rng: &mut Rng,
    b: &mut FlowBatch,
    base: Ipv4Addr,
    hosts: u32,
    n: usize,
    t_ms: u64,
) {
    let base = u32::from(base);
    for _ in 0..n {
        let h = rng.below(u64::from(hosts.max(1))) as u32;
        let v6 = rng.below(16) == 0;
        let dst = if v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, h as u16))
        } else {
            IpAddr::V4(Ipv4Addr::from(base.wrapping_add(h)))
        };
        let src = if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0xffff,
                0,
                0,
                0,
                rng.below(65536) as u16,
                1,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(0xc000_0000u32 | rng.below(1 << 24) as u32))
        };
        let end = t_ms + rng.below(1000);
        let dur = rng.below(3000);
        let pk = rng.range(1, 40);
        let (proto, sp, dp, fl, size) = match rng.below(10) {
            0..=4 => (
                6,
                rng.range(1024, 65535) as u16,
                [443, 80, 22, 8443][rng.below(4) as usize],
                0x1b,
                400,
            ),
            5 => (
                6,
                [443, 80][rng.below(2) as usize],
                rng.range(1024, 65535) as u16,
                0x1b,
                1200,
            ),
            6 => (17, 53, rng.range(1024, 65535) as u16, 0, 120),
            7 => (17, rng.range(1024, 65535) as u16, 53, 0, 70),
            8 => (
                17,
                rng.range(1024, 65535) as u16,
                rng.range(1024, 65535) as u16,
                0,
                600,
            ),
            _ => (if v6 { 58 } else { 1 }, 0, 0, 0, 84),
        };
        b.push(&FlowRecord {
            src_addr: src,
            dst_addr: dst,
            src_port: sp,
            dst_port: dp,
            proto,
            tcp_flags: fl,
            packets: pk,
            bytes: pk * size,
            start_ms: end.saturating_sub(dur),
            end_ms: end,
            ..FlowRecord::default()
        });
    }
}

/// A constant-rate attack on one victim.
#[derive(Debug, Clone)]
pub struct AttackSpec {
    /// The victim.
    pub victim: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// TCP flags of every flow.
    pub tcp_flags: u8,
    /// Fixed source port (reflection), or random.
    pub src_port: Option<u16>,
    /// Fixed destination port, or random.
    pub dst_port: Option<u16>,
    /// True packets per second, all sources together.
    pub pps: u64,
    /// Bytes per packet.
    pub pkt_size: u64,
    /// Number of sources (consecutive IPv4 addresses from 203.0.113.0).
    pub sources: u32,
    /// Flow duration range in ms (0 gives instantaneous flow records every 100 ms).
    pub flow_ms: (u64, u64),
    /// Packet sampling rate (1 in N) the exporter used: packet counts are multiples of it.
    pub sampling: u32,
}

/// Emits the flows of an [`AttackSpec`] as they end.
#[derive(Debug, Clone)]
pub struct AttackGen {
    spec: AttackSpec,
    /// Per source: current flow start and duration.
    next: Vec<(u64, u64)>,
    carry: Vec<f64>,
    rng: Rng,
}

impl AttackGen {
    /// Starts the attack at `t0_ms` (each source's first flow starts at a random offset within one
    /// flow duration, so exports are not synchronised).
    pub fn new(spec: AttackSpec, t0_ms: u64, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let next = (0..spec.sources.max(1))
            .map(|_| {
                let d = rng.range(spec.flow_ms.0, spec.flow_ms.1);
                // a source joins at t0 with a partial first flow
                let phase = rng.below(d.max(100));
                (t0_ms.saturating_sub(phase), d)
            })
            .collect();
        let carry = vec![0.0; spec.sources.max(1) as usize];
        Self {
            spec,
            next,
            carry,
            rng,
        }
    }

    /// Emits every flow that ends before `until_ms`; traffic before `t0` is not emitted.
    pub fn emit(&mut self, t0_ms: u64, until_ms: u64, b: &mut FlowBatch) {
        for i in 0..self.next.len() {
            loop {
                let (start, dur) = self.next[i];
                let end = start + dur.max(100);
                if end >= until_ms {
                    break;
                }
                self.push(i, start.max(t0_ms), end, b);
                let d = self.rng.range(self.spec.flow_ms.0, self.spec.flow_ms.1);
                self.next[i] = (end, d);
            }
        }
    }

    /// Stops the attack at `stop_ms`: every flow in progress is exported, cut at `stop_ms`.
    pub fn finish(&mut self, t0_ms: u64, stop_ms: u64, b: &mut FlowBatch) {
        self.emit(t0_ms, stop_ms, b);
        for i in 0..self.next.len() {
            let (start, _) = self.next[i];
            if start < stop_ms {
                self.push(i, start.max(t0_ms), stop_ms, b);
            }
            self.next[i] = (u64::MAX / 2, 0);
        }
    }

    fn push(&mut self, i: usize, from: u64, end: u64, b: &mut FlowBatch) {
        let s = &self.spec;
        let per_src = s.pps as f64 / f64::from(s.sources.max(1));
        let sampling = u64::from(s.sampling.max(1));
        let exact = per_src * end.saturating_sub(from) as f64 / 1000.0 + self.carry[i];
        let pk = ((exact / sampling as f64).round() as u64) * sampling;
        self.carry[i] = exact - pk as f64;
        if pk == 0 {
            return;
        }
        let instant = s.flow_ms.1 == 0;
        b.push(&FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::from(0xcb00_7100u32.wrapping_add(i as u32))),
            dst_addr: s.victim,
            src_port: s
                .src_port
                .unwrap_or_else(|| self.rng.range(1024, 65535) as u16),
            dst_port: s
                .dst_port
                .unwrap_or_else(|| self.rng.range(1, 65535) as u16),
            proto: s.proto,
            tcp_flags: s.tcp_flags,
            packets: pk,
            bytes: pk * s.pkt_size,
            start_ms: if instant { end } else { from },
            end_ms: end,
            sampling_rate: s.sampling.max(1),
            ..FlowRecord::default()
        });
    }
}

/// The benchmark's traffic: 30,000 hosts of 10.0.0.0/16 (and IPv6 twins in 2001:db8::/64) with
/// mixed background classes, plus a SYN flood on 10.0.1.1 and an NTP reflection on 10.0.2.2;
/// `secs` seconds of `per_sec` flows in `slices` batches a second, each with the clock it is to
/// be processed at.
pub fn mixed_traffic(t0: u64, secs: u64, per_sec: usize, slices: u64) -> Vec<(u64, FlowBatch)> {
    let mut rng = Rng::new(1);
    let attack = |victim: &str, proto, flags, sp, pps| AttackSpec {
        victim: victim.parse().expect("victim"),
        proto,
        tcp_flags: flags,
        src_port: sp,
        dst_port: Some(80),
        pps,
        pkt_size: 468,
        sources: 500,
        flow_ms: (200, 2_000),
        sampling: 1,
    };
    let mut syn = AttackGen::new(attack("10.0.1.1", 6, 0x02, None, 100_000), t0, 2);
    let mut ntp = AttackGen::new(attack("10.0.2.2", 17, 0, Some(123), 50_000), t0, 3);
    let slice_ms = 1000 / slices.max(1);
    let per_slice = per_sec / slices.max(1) as usize;
    let mut out = Vec::new();
    for s in 0..secs {
        for k in 0..slices.max(1) {
            let t = t0 + s * 1000 + k * slice_ms;
            let mut b = FlowBatch::with_capacity(per_slice + 1000);
            syn.emit(t0, t + slice_ms, &mut b);
            ntp.emit(t0, t + slice_ms, &mut b);
            let n = per_slice.saturating_sub(b.len());
            background(&mut rng, &mut b, Ipv4Addr::new(10, 0, 0, 0), 30_000, n, t);
            // background ends within the next second: clamp to this slice's clock
            for e in b.end_ms.iter_mut() {
                *e = (*e).min(t + slice_ms);
            }
            out.push((t + slice_ms, b));
        }
    }
    out
}
