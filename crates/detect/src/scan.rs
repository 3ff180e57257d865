//! Scan detector: one source probing many ports of one host (port scan) or one port on many hosts
//! (host sweep), from flows and from firewall deny logs ([`ScanDetector::observe_denied`]).
//!
//! Contract:
//! - Only probe-like flows count: TCP with SYN and either no ACK (half-open scan) or RST (connect
//!   scan torn down), or UDP; at most `max_probe_packets` unsampled packets. Replies of the targets
//!   (SYN-ACK, RST-ACK) are not probes.
//! - Per (source, host) the distinct destination ports, and per (source, port) the distinct hosts,
//!   are counted in a tumbling window of `window_s` on the caller's clock, with a 1024-bit linear
//!   counting sketch (about 2% error at the default thresholds, exact enough to alarm once the
//!   count reaches the threshold). Each pair alarms at most once per window.
//! - Memory: at most `max_tracked` pairs of about 200 bytes; when full, expired pairs are purged
//!   and new pairs beyond are counted in [`ScanStats::dropped`].

use crate::config::{ConfigError, ScanConfig};
use crate::ddos::ts_common;
use crate::prefix::PrefixMap;
use foldhash::fast::RandomState;
use pharos_model::flow::{FlowBatch, addr_from_bytes, addr_to_bytes, flags};
use pharos_model::ident::{IntrusionAttackType, TransportProtocol};
use pharos_model::{IntrusionEvent, Kind, Message, Severity};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

/// Which scan pattern fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanKind {
    /// One source, one host, many ports.
    PortScan,
    /// One source, one port, many hosts.
    HostSweep,
}

/// A scan found in the flows.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanAlarm {
    /// The pattern.
    pub kind: ScanKind,
    /// The scanning source.
    pub src: IpAddr,
    /// The scanned host (port scan).
    pub dst: Option<IpAddr>,
    /// The scanned port (host sweep).
    pub port: Option<u16>,
    /// Distinct ports (port scan) or hosts (host sweep) seen in the window (estimate).
    pub distinct: u32,
    /// Start of the counting window, Unix ms.
    pub window_start_ms: u64,
    /// The intrusion event.
    pub message: Message,
}

/// Counters of the scan detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanStats {
    /// Flows received.
    pub flows: u64,
    /// Probe-like flows counted.
    pub probes: u64,
    /// Probes not counted because `max_tracked` pairs were tracked.
    pub dropped: u64,
    /// Pairs tracked now.
    pub tracked: u64,
    /// Alarms raised.
    pub alarms: u64,
}

const BITS: usize = 1024;

#[derive(Debug, Clone)]
struct Pair {
    window_start_ms: u64,
    seen: [u64; BITS / 64],
    ones: u32,
    alarmed: bool,
    /// AS numbers the pair's probes carried (unknown ones left out).
    src_as: crate::AsSeen,
    dst_as: crate::AsSeen,
}

impl Pair {
    fn new(now_ms: u64) -> Self {
        Self {
            window_start_ms: now_ms,
            seen: [0; BITS / 64],
            ones: 0,
            alarmed: false,
            src_as: crate::AsSeen::None,
            dst_as: crate::AsSeen::None,
        }
    }

    /// Adds a hashed value; returns the distinct-count estimate.
    #[inline]
    fn add(&mut self, h: u64) -> u32 {
        let bit = (h % BITS as u64) as usize;
        let w = &mut self.seen[bit / 64];
        if *w & (1 << (bit % 64)) == 0 {
            *w |= 1 << (bit % 64);
            self.ones += 1;
        }
        let zeros = (BITS as u32 - self.ones).max(1);
        (-(BITS as f64) * (f64::from(zeros) / BITS as f64).ln()).round() as u32
    }
}

#[inline]
fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Detects port scans and host sweeps from flow batches.
#[derive(Debug)]
pub struct ScanDetector {
    cfg: ScanConfig,
    nets: PrefixMap<()>,
    /// Key: (source, target host or port, kind and source family bits).
    pairs: HashMap<(u128, u128, u8), Pair, RandomState>,
    stats: ScanStats,
    now_ms: u64,
    purged_ms: u64,
}

/// One probe: a probe-like flow or a denied connection attempt.
struct Probe {
    src: [u8; 16],
    src_v4: bool,
    dst: [u8; 16],
    dst_v4: bool,
    port: u16,
    proto: u8,
    /// Source and destination AS numbers from the flow (0: unknown, and for denied logs).
    src_as: u32,
    dst_as: u32,
}

const K_SWEEP: u8 = 1;
const K_SRC_V4: u8 = 2;
const K_DST_V4: u8 = 4;

impl ScanDetector {
    /// A detector for `cfg`, or what is wrong with it.
    pub fn new(cfg: ScanConfig) -> Result<Self, ConfigError> {
        let nets = cfg.validate()?;
        Ok(Self {
            cfg,
            nets,
            pairs: HashMap::default(),
            stats: ScanStats::default(),
            now_ms: 0,
            purged_ms: 0,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> ScanStats {
        ScanStats {
            tracked: self.pairs.len() as u64,
            ..self.stats
        }
    }

    /// Counts a batch at `now_ms`, appending alarms to `out`.
    pub fn process(&mut self, b: &FlowBatch, now_ms: u64, out: &mut Vec<ScanAlarm>) {
        self.now_ms = self.now_ms.max(now_ms);
        let now_ms = self.now_ms;
        let n = crate::readable_rows(b);
        self.stats.flows = self.stats.flows.saturating_add(n as u64);
        for i in 0..n {
            let proto = b.proto[i];
            let tf = b.tcp_flags[i];
            let probe = match proto {
                6 => tf & 0x02 != 0 && (tf & 0x10 == 0 || tf & 0x04 != 0),
                17 => true,
                _ => false,
            };
            let raw_pkts = b.packets[i] / u64::from(b.sampling_rate[i].max(1));
            if !probe || raw_pkts > self.cfg.max_probe_packets {
                continue;
            }
            let f = b.flags[i];
            let dv4 = f & flags::DST_V4 != 0;
            if !self.nets.is_empty() && self.nets.lookup(&b.dst_addr[i], dv4).is_none() {
                continue;
            }
            let probe = Probe {
                src: b.src_addr[i],
                src_v4: f & flags::SRC_V4 != 0,
                dst: b.dst_addr[i],
                dst_v4: dv4,
                port: b.dst_port[i],
                proto,
                src_as: crate::as_at(&b.src_as, i),
                dst_as: crate::as_at(&b.dst_as, i),
            };
            self.count(&probe, now_ms, out);
        }
    }

    /// Counts one denied connection attempt (from a firewall's deny log) at `now_ms`: the same
    /// as a probe-like flow from `src` to `dst:dst_port` (the `networks` filter applies).
    pub fn observe_denied(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        dst_port: u16,
        proto: u8,
        now_ms: u64,
        out: &mut Vec<ScanAlarm>,
    ) {
        self.now_ms = self.now_ms.max(now_ms);
        let (dst_b, dst_v4) = addr_to_bytes(&dst);
        if !self.nets.is_empty() && self.nets.lookup(&dst_b, dst_v4).is_none() {
            return;
        }
        let (src_b, src_v4) = addr_to_bytes(&src);
        let probe = Probe {
            src: src_b,
            src_v4,
            dst: dst_b,
            dst_v4,
            port: dst_port,
            proto,
            src_as: 0,
            dst_as: 0,
        };
        self.count(&probe, self.now_ms, out);
    }

    /// Counts one probe into its port-scan and host-sweep pairs.
    fn count(&mut self, pr: &Probe, now_ms: u64, out: &mut Vec<ScanAlarm>) {
        let window_ms = u64::from(self.cfg.window_s) * 1000;
        self.stats.probes += 1;
        let src = u128::from_be_bytes(pr.src);
        let dst = u128::from_be_bytes(pr.dst);
        let port = pr.port;
        let fam = if pr.src_v4 { K_SRC_V4 } else { 0 } | if pr.dst_v4 { K_DST_V4 } else { 0 };
        let scan_key = (src, dst, fam);
        let sweep_key = (src, u128::from(port), fam | K_SWEEP);
        let dst_hash = mix((dst as u64) ^ mix((dst >> 64) as u64));
        for (key, h, kind, thr) in [
            (
                scan_key,
                mix(u64::from(port)),
                ScanKind::PortScan,
                self.cfg.port_scan_ports,
            ),
            (
                sweep_key,
                dst_hash,
                ScanKind::HostSweep,
                self.cfg.host_sweep_hosts,
            ),
        ] {
            if self.pairs.len() >= self.cfg.max_tracked && !self.pairs.contains_key(&key) {
                self.purge(now_ms, window_ms);
            }
            let len = self.pairs.len();
            let p = match self.pairs.entry(key) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => {
                    if len >= self.cfg.max_tracked {
                        self.stats.dropped += 1;
                        continue;
                    }
                    v.insert(Pair::new(now_ms))
                }
            };
            if now_ms.saturating_sub(p.window_start_ms) >= window_ms {
                *p = Pair::new(now_ms);
            }
            let distinct = p.add(h);
            p.src_as.add_known(pr.src_as);
            p.dst_as.add_known(pr.dst_as);
            if !p.alarmed && distinct >= thr {
                p.alarmed = true;
                self.stats.alarms += 1;
                let ws = p.window_start_ms;
                let asn = (p.src_as, p.dst_as);
                out.push(self.alarm(kind, key, pr.proto, distinct, ws, now_ms, asn));
            }
        }
    }

    /// Drops pairs whose window is over (at most once per second of the clock).
    fn purge(&mut self, now_ms: u64, window_ms: u64) {
        if now_ms.saturating_sub(self.purged_ms) < 1000 && self.purged_ms != 0 {
            return;
        }
        self.purged_ms = now_ms;
        self.pairs
            .retain(|_, p| now_ms.saturating_sub(p.window_start_ms) < window_ms);
    }

    #[allow(clippy::too_many_arguments)]
    fn alarm(
        &self,
        kind: ScanKind,
        key: (u128, u128, u8),
        proto: u8,
        distinct: u32,
        ws: u64,
        now_ms: u64,
        (src_as, dst_as): (crate::AsSeen, crate::AsSeen),
    ) -> ScanAlarm {
        let (s, t, fam) = key;
        let src = addr_from_bytes(s.to_be_bytes(), fam & K_SRC_V4 != 0);
        let (dst, port) = match kind {
            ScanKind::PortScan => (
                Some(addr_from_bytes(t.to_be_bytes(), fam & K_DST_V4 != 0)),
                None,
            ),
            ScanKind::HostSweep => (None, Some(t as u16)),
        };
        let secs = now_ms.saturating_sub(ws) / 1000;
        let (text, rule, attack_type) = match kind {
            ScanKind::PortScan => (
                format!(
                    "port scan from {src} to {}: {distinct} distinct ports in {secs} s",
                    dst.unwrap_or(src)
                ),
                "scan/port-scan",
                IntrusionAttackType::PortScan,
            ),
            ScanKind::HostSweep => (
                format!(
                    "host sweep from {src} on port {}: {distinct} distinct hosts in {secs} s",
                    t as u16
                ),
                "scan/host-sweep",
                IntrusionAttackType::HostSweep,
            ),
        };
        let event = IntrusionEvent {
            src_ip: Some(src),
            src_port: None,
            dst_ip: dst,
            dst_port: port,
            rule_name: rule.into(),
            protocol: match proto {
                6 => Some(TransportProtocol::Tcp),
                17 => Some(TransportProtocol::Udp),
                _ => None,
            },
            app: None,
            attack_type: Some(attack_type),
        };
        let mut common = ts_common(
            &self.cfg.nsf_name,
            "detect:scan",
            now_ms,
            Severity::Middle,
            text,
        );
        // the scanner's AS and the scanned host's (or, for a sweep, the one AS of every host
        // swept): the notice stage routes by them
        common.fields = crate::AsSeen::fields(src_as, dst_as);
        ScanAlarm {
            kind,
            src,
            dst,
            port,
            distinct,
            window_start_ms: ws,
            message: Message {
                common,
                kind: Kind::Intrusion(event),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Rng, flow};
    use pharos_model::flow::FlowRecord;

    const T0: u64 = 1_767_225_600_000;

    fn cfg() -> ScanConfig {
        ScanConfig {
            networks: vec!["198.51.100.0/24".into()],
            ..Default::default()
        }
    }

    fn syn(src: &str, dst: &str, port: u16, t: u64) -> FlowRecord {
        FlowRecord {
            tcp_flags: 0x02,
            packets: 1,
            bytes: 44,
            ..flow(src, dst, 6, 40000, port, t, t)
        }
    }

    #[test]
    fn port_scan_of_one_host_alarms_once_with_the_source_and_target() {
        let mut d = ScanDetector::new(cfg()).unwrap();
        let mut b = FlowBatch::new();
        for p in 1..=300u16 {
            b.push(&syn("203.0.113.9", "198.51.100.20", p, T0 + u64::from(p)));
        }
        let mut out = Vec::new();
        d.process(&b, T0 + 1000, &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        let a = &out[0];
        assert_eq!(a.kind, ScanKind::PortScan);
        assert_eq!(a.src, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(a.dst, Some("198.51.100.20".parse().unwrap()));
        assert!((95..=110).contains(&a.distinct), "{}", a.distinct);
        let Kind::Intrusion(e) = &a.message.kind else {
            panic!()
        };
        assert_eq!(e.attack_type, Some(IntrusionAttackType::PortScan));
        assert_eq!(e.rule_name, "scan/port-scan");
        let json = pharos_model::json::encode_string(&a.message);
        assert!(json.contains("pharos-i2nsf-extensions:port-scan"), "{json}");
        let back = pharos_model::json::decode_str(&json).unwrap();
        assert_eq!(back.kind, a.message.kind);
    }

    #[test]
    fn host_sweep_on_one_port_alarms_and_background_does_not() {
        let mut d = ScanDetector::new(cfg()).unwrap();
        let mut rng = Rng::new(7);
        let mut b = FlowBatch::new();
        // background: many clients, few servers, real connections (ACK, data)
        for _ in 0..20_000 {
            let c = format!("192.0.2.{}", rng.below(250));
            let s = format!("198.51.100.{}", rng.below(8));
            let mut f = flow(
                &c,
                &s,
                6,
                1024 + rng.below(60000) as u16,
                [80, 443, 22][rng.below(3) as usize],
                T0,
                T0 + 900,
            );
            f.tcp_flags = 0x1b;
            f.packets = 10 + rng.below(50);
            b.push(&f);
        }
        let mut out = Vec::new();
        d.process(&b, T0 + 1000, &mut out);
        assert!(out.is_empty(), "{out:#?}");
        b.clear();
        for h in 0..=255u16 {
            b.push(&syn(
                "203.0.113.50",
                &format!("198.51.100.{h}"),
                3389,
                T0 + 1000,
            ));
        }
        d.process(&b, T0 + 2000, &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].kind, ScanKind::HostSweep);
        assert_eq!(out[0].port, Some(3389));
        let Kind::Intrusion(e) = &out[0].message.kind else {
            panic!()
        };
        assert_eq!(e.attack_type, Some(IntrusionAttackType::HostSweep));
    }

    #[test]
    fn a_slow_scan_spread_over_windows_does_not_alarm_and_replies_are_not_probes() {
        let mut d = ScanDetector::new(ScanConfig {
            window_s: 10,
            ..cfg()
        })
        .unwrap();
        let mut out = Vec::new();
        let mut b = FlowBatch::new();
        for p in 0..400u64 {
            b.clear();
            let t = T0 + p * 1000; // one port a second: 10 per window
            b.push(&syn("203.0.113.9", "198.51.100.20", p as u16, t));
            // the target's SYN-ACK replies to many ports of the scanner
            let mut r = syn("198.51.100.20", "198.51.100.9", p as u16, t);
            r.tcp_flags = 0x12;
            b.push(&r);
            d.process(&b, t, &mut out);
        }
        assert!(out.is_empty(), "{out:#?}");
    }

    #[test]
    fn tracked_pairs_stay_bounded_and_drops_are_counted() {
        let mut d = ScanDetector::new(ScanConfig {
            max_tracked: 100,
            ..cfg()
        })
        .unwrap();
        let mut b = FlowBatch::new();
        for i in 0..1000u32 {
            let src = format!("10.{}.{}.1", i / 250, i % 250);
            b.push(&syn(&src, "198.51.100.1", 22, T0));
        }
        let mut out = Vec::new();
        d.process(&b, T0, &mut out);
        let s = d.stats();
        assert!(s.tracked <= 100);
        assert_eq!(s.dropped, 2 * 1000 - 100);
        // after a window, expired pairs make room again
        d.process(&b, T0 + 61_000, &mut out);
        assert!(d.stats().tracked <= 100);
        assert!(out.is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn no_input_panics(rows in proptest::collection::vec((proptest::prelude::any::<u64>(), proptest::prelude::any::<u16>(), proptest::prelude::any::<u8>(), proptest::prelude::any::<u32>()), 0..64), now in proptest::prelude::any::<u64>()) {
            let mut d = ScanDetector::new(ScanConfig { port_scan_ports: 2, host_sweep_hosts: 2, max_tracked: 8, ..Default::default() }).unwrap();
            let mut b = FlowBatch::new();
            for (packets, port, flags, sampling) in rows {
                let mut f = syn("203.0.113.1", "198.51.100.1", port, now);
                f.packets = packets;
                f.tcp_flags = flags;
                f.sampling_rate = sampling;
                f.proto = if flags & 1 == 0 { 6 } else { 17 };
                b.push(&f);
            }
            let mut out = Vec::new();
            d.process(&b, now, &mut out);
            d.process(&b, now.saturating_add(u64::MAX / 2), &mut out);
            proptest::prop_assert!(d.stats().tracked <= 8);
        }
    }

    #[test]
    fn firewall_denies_count_like_probes() {
        let mut d = ScanDetector::new(cfg()).unwrap();
        let mut out = Vec::new();
        let src: IpAddr = "203.0.113.77".parse().unwrap();
        for h in 0..100u8 {
            let dst = IpAddr::from([198, 51, 100, h]);
            d.observe_denied(src, dst, 445, 6, T0 + u64::from(h), &mut out);
        }
        // outside the monitored networks: ignored
        d.observe_denied(src, "192.0.2.1".parse().unwrap(), 445, 6, T0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, ScanKind::HostSweep);
        assert_eq!(out[0].port, Some(445));
        assert_eq!(d.stats().probes, 100);
    }
}
