//! The `traffic` consumer of the flow stage: the live traffic view of the console's overview
//! (`GET /api/v1/traffic`, [`pharos_api::traffic`]).
//!
//! Contract:
//! - Per second of arrival (the second the consumer takes a batch): bytes, packets and flows to
//!   the monitored networks ("in": destination inside), from them ("out": source inside) and in
//!   total; published to the [`LiveTraffic`] when the second is over (at the next tick, within
//!   [`super::TICK`]), with the batches the consumer missed meanwhile (its full queue: counted by
//!   the dispatcher, read here). A second without batches is published as zeros.
//! - Top talkers (sources) and top targeted hosts (destinations) by bytes over the last
//!   [`TOP_WINDOW_BINS`] bins of [`BIN_MS`] plus the current one (5 to 5.5 minutes): one weighted
//!   Space-Saving sketch of [`SKETCH_CAP`] hosts per side and bin, merged once a second. Memory is
//!   bounded (the bins are reused; nothing grows with the number of hosts) and every host
//!   heavier than 1/[`SKETCH_CAP`] of a bin's bytes is in that bin's sketch.
//! - The monitored networks are those the view holds ([`LiveTraffic::set_networks`], set by
//!   `pharos run` with the console's networks); a change is picked up at the next tick.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use pharos_api::traffic::{Counts, LiveTraffic, MAX_TOP, Second, TopHost, Tops};
use pharos_detect::prefix::PrefixMap;
use pharos_model::flow::{FlowBatch, addr_from_bytes, flags};

/// Width of a top-list bin.
pub const BIN_MS: u64 = 30_000;
/// Finished bins the top lists cover besides the current one.
pub const TOP_WINDOW_BINS: usize = 10;
/// Hosts each sketch monitors.
pub const SKETCH_CAP: usize = 512;
/// Most zero seconds published at once after the thread was held up.
const MAX_GAP_S: u64 = pharos_api::traffic::HOUR_S as u64;

/// A fast keyed hash of 16-byte addresses (seeded per process, so crafted addresses cannot
/// aim at one hash chain).
#[derive(Clone, Copy)]
struct Seeded(u64);

impl Seeded {
    fn new() -> Self {
        Self(
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                | 1,
        )
    }
}

impl BuildHasher for Seeded {
    type Hasher = Mix;
    fn build_hasher(&self) -> Mix {
        Mix(self.0)
    }
}

struct Mix(u64);

impl Mix {
    #[inline]
    fn fold(&mut self, v: u64) {
        let p = u128::from(v ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.fold(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.fold(v as u64);
        self.fold((v >> 64) as u64);
    }
}

/// One monitored host of a sketch (its bytes are in the heap, at `pos`).
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u128,
    v4: bool,
    error: u64,
    packets: u64,
    flows: u64,
    /// Its place in the heap.
    pos: u32,
}

/// Weighted Space-Saving (Metwally et al. 2005) by bytes: a host's bytes overestimate its true
/// bytes by at most its `error`; packets and flows are counted since the host entered the
/// sketch. A new host replaces the lightest one, found in a 4-ary min-heap of (bytes, slot)
/// (no indirection while sifting); hosts are found by an open-addressing index.
struct Sketch {
    cap: usize,
    index: Index,
    slots: Vec<Slot>,
    heap: Vec<(u64, u32)>,
    total: Counts,
}

impl Sketch {
    fn new(cap: usize, hash: Seeded) -> Self {
        let cap = cap.clamp(1, u32::MAX as usize / 8);
        Self {
            cap,
            index: Index::new(cap, hash),
            slots: Vec::with_capacity(cap),
            heap: Vec::with_capacity(cap),
            total: Counts::default(),
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.heap.clear();
        self.total = Counts::default();
    }

    /// Whether it monitors as many hosts as it can (a host it lacks may then have had up to
    /// [`Self::min`] bytes).
    fn full(&self) -> bool {
        self.slots.len() >= self.cap
    }

    /// The lightest monitored host's bytes.
    fn min(&self) -> u64 {
        self.heap.first().map_or(0, |h| h.0)
    }

    /// The bytes of the host in slot `s`.
    fn bytes(&self, s: &Slot) -> u64 {
        self.heap[s.pos as usize].0
    }

    #[inline]
    fn add(&mut self, key: u128, v4: bool, bytes: u64, packets: u64) {
        self.total.add(&Counts {
            bytes,
            packets,
            flows: 1,
        });
        if let Some(s) = self.index.get(key, &self.slots) {
            let e = &mut self.slots[s as usize];
            e.packets = e.packets.saturating_add(packets);
            e.flows += 1;
            let pos = e.pos as usize;
            self.heap[pos].0 = self.heap[pos].0.saturating_add(bytes);
            self.sift_down(pos);
            return;
        }
        if self.slots.len() < self.cap {
            let s = self.slots.len() as u32;
            self.slots.push(Slot {
                key,
                v4,
                error: 0,
                packets,
                flows: 1,
                pos: self.heap.len() as u32,
            });
            self.heap.push((bytes, s));
            self.index.insert(key, s);
            self.sift_up(self.heap.len() - 1);
            return;
        }
        // Replace the lightest host: the newcomer may have had up to its bytes unseen.
        let (min, s) = self.heap[0];
        let old = self.slots[s as usize].key;
        self.index.remove(old, &self.slots);
        self.slots[s as usize] = Slot {
            key,
            v4,
            error: min,
            packets,
            flows: 1,
            pos: 0,
        };
        self.index.insert(key, s);
        self.heap[0].0 = min.saturating_add(bytes);
        self.sift_down(0);
    }

    #[inline]
    fn place(&mut self, pos: usize, item: (u64, u32)) {
        self.heap[pos] = item;
        self.slots[item.1 as usize].pos = pos as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        let item = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 4;
            if self.heap[parent].0 <= item.0 {
                break;
            }
            self.place(pos, self.heap[parent]);
            pos = parent;
        }
        self.place(pos, item);
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        let item = self.heap[pos];
        loop {
            let first = 4 * pos + 1;
            if first >= n {
                break;
            }
            let (mut c, mut cw) = (first, self.heap[first].0);
            for i in first + 1..(first + 4).min(n) {
                if self.heap[i].0 < cw {
                    (c, cw) = (i, self.heap[i].0);
                }
            }
            if item.0 <= cw {
                break;
            }
            self.place(pos, self.heap[c]);
            pos = c;
        }
        self.place(pos, item);
    }
}

/// An open-addressing (linear probing) index from a host to its slot, at most a quarter full;
/// removal shifts entries back (no tombstones).
struct Index {
    /// Slot + 1; 0 is empty.
    table: Vec<u32>,
    mask: usize,
    hash: Seeded,
}

impl Index {
    fn new(cap: usize, hash: Seeded) -> Self {
        let n = (cap * 4).next_power_of_two();
        Self {
            table: vec![0; n],
            mask: n - 1,
            hash,
        }
    }

    #[inline]
    fn home(&self, key: u128) -> usize {
        let mut h = self.hash.build_hasher();
        h.write_u128(key);
        h.finish() as usize & self.mask
    }

    fn clear(&mut self) {
        self.table.fill(0);
    }

    /// Where `key` is in the table and its slot, or the empty place that ends its probe.
    #[inline]
    fn find(&self, key: u128, slots: &[Slot]) -> (usize, Option<u32>) {
        let mut i = self.home(key);
        loop {
            match self.table[i] {
                0 => return (i, None),
                v if slots[(v - 1) as usize].key == key => return (i, Some(v - 1)),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    #[inline]
    fn get(&self, key: u128, slots: &[Slot]) -> Option<u32> {
        self.find(key, slots).1
    }

    /// Adds `key` (absent) at slot `s`.
    #[inline]
    fn insert(&mut self, key: u128, s: u32) {
        let mut i = self.home(key);
        while self.table[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.table[i] = s + 1;
    }

    /// Removes `key` (its slot still holds it).
    fn remove(&mut self, key: u128, slots: &[Slot]) {
        let (mut hole, found) = self.find(key, slots);
        if found.is_none() {
            return;
        }
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let v = self.table[j];
            if v == 0 {
                break;
            }
            // An entry moves into the hole unless its home lies cyclically in (hole, j].
            let k = self.home(slots[(v - 1) as usize].key);
            let stays = if hole <= j {
                hole < k && k <= j
            } else {
                hole < k || k <= j
            };
            if !stays {
                self.table[hole] = v;
                hole = j;
            }
        }
        self.table[hole] = 0;
    }
}

/// The top-list sketches of one bin.
struct Bin {
    /// Bin number (`ms / BIN_MS`).
    n: u64,
    talkers: Sketch,
    targets: Sketch,
}

/// The aggregation, apart from the thread and the view (tested alone).
pub struct Aggregator {
    nets: PrefixMap<()>,
    /// The second being counted (`ms / 1000`) and its counts.
    sec: u64,
    cur: Second,
    /// Seconds finished and not yet published.
    done: Vec<Second>,
    /// The current bin last; at most `TOP_WINDOW_BINS + 1`.
    bins: VecDeque<Bin>,
    hash: Seeded,
    cap: usize,
}

impl Aggregator {
    /// An aggregator classifying by `networks` (prefixes such as `10.0.0.0/8` or addresses;
    /// others are skipped with a warning), with sketches of `cap` hosts.
    pub fn new(networks: &[String], cap: usize) -> Self {
        Self {
            nets: prefixes(networks),
            sec: 0,
            cur: Second::default(),
            done: Vec::new(),
            bins: VecDeque::with_capacity(TOP_WINDOW_BINS + 1),
            hash: Seeded::new(),
            cap,
        }
    }

    /// Classifies by `networks` from now on.
    pub fn set_networks(&mut self, networks: &[String]) {
        self.nets = prefixes(networks);
    }

    /// Ends the seconds and bins before `now_ms`.
    pub fn roll(&mut self, now_ms: u64) {
        let s = now_ms / 1000;
        if self.sec == 0 {
            self.sec = s;
            self.cur = Second {
                t_ms: s * 1000,
                ..Second::default()
            };
        } else if s > self.sec {
            self.done.push(self.cur);
            let gap = (s - self.sec - 1).min(MAX_GAP_S);
            for k in (1..=gap).rev() {
                self.done.push(Second {
                    t_ms: (s - k) * 1000,
                    ..Second::default()
                });
            }
            self.sec = s;
            self.cur = Second {
                t_ms: s * 1000,
                ..Second::default()
            };
        }
        let b = now_ms / BIN_MS;
        if self.bins.back().is_none_or(|x| x.n < b) {
            let mut reuse = None;
            while self
                .bins
                .front()
                .is_some_and(|x| x.n + (TOP_WINDOW_BINS as u64) < b)
            {
                reuse = self.bins.pop_front();
            }
            let bin = match reuse {
                // The oldest bin's memory serves the new one.
                Some(mut old) => {
                    old.talkers.clear();
                    old.targets.clear();
                    old.n = b;
                    old
                }
                None => Bin {
                    n: b,
                    talkers: Sketch::new(self.cap, self.hash),
                    targets: Sketch::new(self.cap, self.hash),
                },
            };
            self.bins.push_back(bin);
        }
    }

    /// Forgets the seconds begun or finished and not taken (the next [`Self::roll`] starts a new
    /// second); the top lists stay.
    pub fn restart_seconds(&mut self) {
        self.done.clear();
        self.sec = 0;
    }

    /// Counts `b`, taken at `now_ms`.
    pub fn add(&mut self, b: &FlowBatch, now_ms: u64) {
        self.roll(now_ms);
        let Some(bin) = self.bins.back_mut() else {
            return;
        };
        let classify = !self.nets.is_empty();
        for i in 0..b.len() {
            let f = b.flags[i];
            let (sv4, dv4) = (f & flags::SRC_V4 != 0, f & flags::DST_V4 != 0);
            let c = Counts {
                bytes: b.bytes[i],
                packets: b.packets[i],
                flows: 1,
            };
            self.cur.total.add(&c);
            if classify {
                if self.nets.lookup(&b.dst_addr[i], dv4).is_some() {
                    self.cur.inbound.add(&c);
                }
                if self.nets.lookup(&b.src_addr[i], sv4).is_some() {
                    self.cur.outbound.add(&c);
                }
            }
            bin.talkers
                .add(u128::from_be_bytes(b.src_addr[i]), sv4, c.bytes, c.packets);
            bin.targets
                .add(u128::from_be_bytes(b.dst_addr[i]), dv4, c.bytes, c.packets);
        }
    }

    /// The seconds finished since the last call, oldest first.
    pub fn take_seconds(&mut self) -> Vec<Second> {
        std::mem::take(&mut self.done)
    }

    /// The `n` heaviest talkers and targets of the window ending at `now_ms`.
    pub fn tops(&self, now_ms: u64, n: usize) -> Tops {
        let mut total = Counts::default();
        for b in &self.bins {
            total.add(&b.talkers.total);
        }
        Tops {
            from_ms: self.bins.front().map_or(now_ms, |b| b.n * BIN_MS),
            to_ms: now_ms,
            total: total.into(),
            talkers: merge(self.bins.iter().map(|b| &b.talkers), n),
            targets: merge(self.bins.iter().map(|b| &b.targets), n),
        }
    }
}

/// The heaviest `n` hosts of the sketches summed: a host's bytes are the sum of its estimates;
/// its error adds their errors and, for each full sketch that lacks it, that sketch's lightest
/// bytes (what it may have had there unseen).
fn merge<'a>(sketches: impl Iterator<Item = &'a Sketch>, n: usize) -> Vec<TopHost> {
    struct Acc {
        v4: bool,
        bytes: u64,
        error: u64,
        packets: u64,
        flows: u64,
        /// The lightest bytes of the full sketches that hold it.
        present_min: u64,
    }
    let mut acc: HashMap<u128, Acc> = HashMap::new();
    let mut all_min = 0u64;
    for s in sketches {
        let min = if s.full() { s.min() } else { 0 };
        all_min += min;
        for e in &s.slots {
            let bytes = s.bytes(e);
            let a = acc.entry(e.key).or_insert(Acc {
                v4: e.v4,
                bytes: 0,
                error: 0,
                packets: 0,
                flows: 0,
                present_min: 0,
            });
            a.bytes = a.bytes.saturating_add(bytes);
            a.error = a.error.saturating_add(e.error);
            a.packets = a.packets.saturating_add(e.packets);
            a.flows = a.flows.saturating_add(e.flows);
            a.present_min += min;
        }
    }
    let mut v: Vec<(u128, Acc)> = acc.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v.into_iter()
        .map(|(k, a)| TopHost {
            addr: addr_from_bytes(k.to_be_bytes(), a.v4).to_string(),
            bytes: a.bytes,
            bytes_error: a
                .error
                .saturating_add(all_min.saturating_sub(a.present_min)),
            packets: a.packets,
            flows: a.flows,
        })
        .collect()
}

fn prefixes(networks: &[String]) -> PrefixMap<()> {
    let mut m = PrefixMap::new();
    for n in networks {
        let net = n
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match net {
            Ok(net) => m.insert(net.trunc(), ()),
            Err(_) => {
                tracing::warn!(network = %n, "live traffic view: not a prefix, not counted as monitored");
            }
        }
    }
    m
}

/// The consumer: an [`Aggregator`] publishing to a [`LiveTraffic`].
pub struct Traffic {
    agg: Aggregator,
    view: LiveTraffic,
    version: u64,
    /// The dispatcher's count of batches this consumer missed (set once the stage runs).
    dropped: Arc<OnceLock<Arc<AtomicU64>>>,
    dropped_seen: u64,
    /// When the top lists were last published (second).
    tops_sec: u64,
}

impl Traffic {
    /// A consumer filling `view`; `dropped` receives the dispatcher's counter of the batches
    /// this consumer's full queue refused.
    pub fn new(view: LiveTraffic, dropped: Arc<OnceLock<Arc<AtomicU64>>>) -> Self {
        let (nets, version) = view.networks();
        Self {
            agg: Aggregator::new(&nets, SKETCH_CAP),
            view,
            version,
            dropped,
            dropped_seen: 0,
            tops_sec: 0,
        }
    }

    fn publish(&mut self, now_ms: u64) {
        let version = self.view.version();
        if version != self.version {
            let (nets, v) = self.view.networks();
            self.agg.set_networks(&nets);
            self.version = v;
            // Seconds begun with other networks are not published (the view starts again).
            self.agg.restart_seconds();
        }
        self.agg.roll(now_ms);
        let seconds = self.agg.take_seconds();
        if seconds.is_empty() {
            return;
        }
        let dropped = self.dropped.get().map_or(0, |d| d.load(Ordering::Relaxed));
        let mut missed = dropped.saturating_sub(self.dropped_seen);
        self.dropped_seen = dropped;
        let n = seconds.len();
        for (i, mut s) in seconds.into_iter().enumerate() {
            // The batches missed since the last publication go to the newest second finished.
            if i + 1 == n {
                s.dropped_batches = std::mem::take(&mut missed);
            }
            self.view.publish_second(s, self.version, dropped);
        }
        let sec = now_ms / 1000;
        if sec != self.tops_sec {
            self.tops_sec = sec;
            self.view.publish_tops(self.agg.tops(now_ms, MAX_TOP));
        }
    }
}

impl super::Consumer for Traffic {
    fn take(&mut self, b: &FlowBatch) {
        self.agg.add(b, pharos_model::clock::now_ms());
    }

    fn tick(&mut self) {
        self.publish(pharos_model::clock::now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn batch(rows: &[(&str, &str, u64)]) -> FlowBatch {
        let mut b = FlowBatch::default();
        for (src, dst, bytes) in rows {
            let (s, sv4) = pharos_model::flow::addr_to_bytes(&src.parse::<IpAddr>().unwrap());
            let (d, dv4) = pharos_model::flow::addr_to_bytes(&dst.parse::<IpAddr>().unwrap());
            let mut f = 0;
            if sv4 {
                f |= flags::SRC_V4;
            }
            if dv4 {
                f |= flags::DST_V4;
            }
            b.flags.push(f);
            b.exporter.push([0; 16]);
            b.domain.push(0);
            b.in_if.push(0);
            b.out_if.push(0);
            b.src_addr.push(s);
            b.dst_addr.push(d);
            b.src_port.push(1234);
            b.dst_port.push(80);
            b.proto.push(6);
            b.tcp_flags.push(0);
            b.tos.push(0);
            b.packets.push(bytes / 100);
            b.bytes.push(*bytes);
            b.start_ms.push(0);
            b.end_ms.push(0);
            b.src_as.push(0);
            b.dst_as.push(0);
            b.src_mask.push(0);
            b.dst_mask.push(0);
            b.next_hop.push([0; 16]);
            b.vlan.push(0);
            b.direction.push(0);
            b.sampling_rate.push(1);
            b.icmp_type.push(0);
            b.icmp_code.push(0);
            b.end_reason.push(0);
        }
        b
    }

    const T0: u64 = 1_700_000_010_000;

    #[test]
    fn seconds_count_in_out_and_total_and_gaps_are_zeros() {
        let nets = ["198.51.100.0/24".to_string(), "2001:db8::/32".to_string()];
        let mut a = Aggregator::new(&nets, 16);
        a.add(
            &batch(&[
                ("203.0.113.1", "198.51.100.10", 1000),    // in
                ("198.51.100.10", "203.0.113.1", 300),     // out
                ("198.51.100.1", "198.51.100.2", 50),      // both
                ("203.0.113.1", "192.0.2.1", 7),           // neither
                ("2001:db8::1", "2001:db9::1", 20),        // out (IPv6)
                ("::ffff:198.51.100.9", "2001:db9::1", 1), // IPv6 row: not in the IPv4 prefix
            ]),
            T0 + 100,
        );
        a.add(&batch(&[("203.0.113.1", "198.51.100.10", 500)]), T0 + 999);
        assert!(a.take_seconds().is_empty(), "the second is not over");
        a.add(&batch(&[("203.0.113.1", "198.51.100.10", 9)]), T0 + 3500);
        let s = a.take_seconds();
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].t_ms, T0);
        assert_eq!(
            s[0].inbound,
            Counts {
                bytes: 1550,
                packets: 15,
                flows: 3
            }
        );
        assert_eq!(
            s[0].outbound,
            Counts {
                bytes: 370,
                packets: 3,
                flows: 3
            }
        );
        assert_eq!(s[0].total.flows, 7);
        assert_eq!(s[0].total.bytes, 1878);
        assert_eq!((s[1].t_ms, s[1].total), (T0 + 1000, Counts::default()));
        assert_eq!((s[2].t_ms, s[2].total), (T0 + 2000, Counts::default()));
        // Without networks nothing is in or out, everything in total.
        a.set_networks(&[]);
        a.add(&batch(&[("203.0.113.1", "198.51.100.10", 9)]), T0 + 4000);
        a.roll(T0 + 5000);
        let s = a.take_seconds();
        assert_eq!(s[0].t_ms, T0 + 3000);
        assert_eq!(s[0].inbound.bytes, 9, "counted before the change");
        assert_eq!(s[1].inbound, Counts::default());
        assert_eq!(s[1].total.bytes, 9);
    }

    #[test]
    fn tops_rank_hosts_by_bytes_over_the_window() {
        let mut a = Aggregator::new(&[], 64);
        let mut t = T0;
        // Bin 1: a heavy talker and 1,000 light ones; the target is one host.
        let mut rows = vec![("192.0.2.7".to_string(), 1_000_000u64)];
        for i in 0..1000 {
            rows.push((format!("10.{}.{}.1", i / 250, i % 250), 10));
        }
        let r: Vec<(&str, &str, u64)> = rows
            .iter()
            .map(|(s, b)| (s.as_str(), "198.51.100.10", *b))
            .collect();
        a.add(&batch(&r), t);
        // The next bin: a second talker, lighter.
        t += BIN_MS;
        a.add(&batch(&[("192.0.2.8", "198.51.100.20", 400_000)]), t);
        let top = a.tops(t + 1, 3);
        assert_eq!(top.from_ms, T0 - T0 % BIN_MS);
        assert_eq!(top.total.flows, 1002);
        assert_eq!(top.total.bytes, 1_000_000 + 10_000 + 400_000);
        assert_eq!(top.talkers[0].addr, "192.0.2.7");
        assert_eq!(top.talkers[0].flows, 1);
        assert_eq!(top.talkers[1].addr, "192.0.2.8");
        assert_eq!(top.talkers[1].bytes, 400_000);
        // The first bin's sketch was full: the second talker may have had its lightest there.
        assert!(top.talkers[1].bytes_error > 0);
        assert_eq!(top.talkers.len(), 3);
        assert_eq!(top.targets[0].addr, "198.51.100.10");
        assert_eq!(top.targets[0].bytes, 1_010_000);
        assert_eq!(top.targets[0].bytes_error, 0);
        assert_eq!(top.targets[0].flows, 1001);
        assert_eq!(top.targets[1].addr, "198.51.100.20");
        // Bins older than the window leave it; their memory is reused.
        t += BIN_MS * (TOP_WINDOW_BINS as u64);
        a.add(&batch(&[("192.0.2.9", "198.51.100.30", 5)]), t);
        assert_eq!(a.bins.len(), 2, "bins come with traffic");
        let top = a.tops(t, 10);
        assert!(top.talkers.iter().all(|h| h.addr != "192.0.2.7"), "{top:?}");
        assert_eq!(top.talkers[0].addr, "192.0.2.8");
        t += BIN_MS * 100;
        a.add(&batch(&[("192.0.2.9", "198.51.100.30", 5)]), t);
        assert_eq!(a.bins.len(), 1);
        assert_eq!(a.tops(t, 10).talkers.len(), 1);
    }

    #[test]
    fn the_sketch_keeps_heavy_hosts_in_a_stream_of_distinct_light_ones() {
        // Space-Saving's guarantee: a host with more than total/k bytes is monitored, and its
        // estimate is within `error` above the truth.
        let mut s = Sketch::new(100, Seeded::new());
        let mut truth = HashMap::new();
        let mut x: u64 = 12345;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (key, w) = if i % 10 == 0 {
                (u128::from(i % 3), 1500)
            } else {
                (u128::from(x % 1_000_000) + 10, 1 + x % 100)
            };
            *truth.entry(key).or_insert(0u64) += w;
            s.add(key, true, w, 1);
        }
        assert_eq!(s.slots.len(), 100);
        for k in 0..3u128 {
            let e = s.slots[s.index.get(k, &s.slots).unwrap() as usize];
            let bytes = s.bytes(&e);
            assert!(bytes >= truth[&k] && bytes - e.error <= truth[&k], "{e:?}");
        }
        // The heap is a heap and the index points at the right slots, and only at them.
        for (p, &(w, sl)) in s.heap.iter().enumerate() {
            assert_eq!(s.slots[sl as usize].pos as usize, p);
            if p > 0 {
                assert!(s.heap[(p - 1) / 4].0 <= w);
            }
            assert_eq!(s.index.get(s.slots[sl as usize].key, &s.slots), Some(sl));
        }
        assert_eq!(s.index.table.iter().filter(|&&v| v != 0).count(), 100);
        for k in [5u128, 9, 1 << 100] {
            assert_eq!(s.index.get(k, &s.slots), None);
        }
    }

    #[test]
    fn the_consumer_publishes_seconds_tops_and_missed_batches() {
        use crate::flow_stage::Consumer;
        let view = LiveTraffic::new();
        view.set_networks(vec!["198.51.100.0/24".into()]);
        let dropped = Arc::new(OnceLock::new());
        let counter = Arc::new(AtomicU64::new(0));
        let _ = dropped.set(counter.clone());
        let mut c = Traffic::new(view.clone(), dropped);
        let now = pharos_model::clock::now_ms();
        c.agg
            .add(&batch(&[("203.0.113.1", "198.51.100.10", 1000)]), now);
        counter.store(4, Ordering::Relaxed);
        c.publish(now + 1000);
        let v = view.snapshot(now + 1000, 1, 5);
        assert_eq!(v.points.t_ms, vec![now - now % 1000]);
        assert_eq!(v.points.inbound.bits_per_s, vec![8000.0]);
        assert_eq!(v.points.dropped_batches, vec![4]);
        assert!(v.partial);
        assert_eq!(v.top.targets[0].addr, "198.51.100.10");
        // New networks: the series starts again, classified by them.
        view.set_networks(vec!["203.0.113.0/24".into()]);
        let t1 = now + 1500;
        c.publish(t1);
        c.agg
            .add(&batch(&[("203.0.113.1", "198.51.100.10", 1000)]), t1);
        c.publish(t1 + 1000);
        let v = view.snapshot(t1 + 1000, 1, 5);
        assert_eq!(v.points.t_ms, vec![t1 - t1 % 1000]);
        assert_eq!(v.points.inbound.bits_per_s, vec![0.0]);
        assert_eq!(v.points.outbound.bits_per_s, vec![8000.0]);
        assert_eq!(v.points.total.bits_per_s, vec![8000.0]);
        assert_eq!(v.dropped_batches, 4);
        assert!(
            !v.partial,
            "the missed batches were counted with the old networks"
        );
        // The thread's own entry points.
        c.take(&batch(&[("203.0.113.1", "198.51.100.10", 1)]));
        c.tick();
    }
}
