//! Aggregation: per-worker group tables that switch to hash partitions past a size, the top-N
//! merge, per-key callbacks and series accumulators.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_buffer::BooleanBuffer;
use ipnet::IpNet;
use pharos_model::flow::flags;

use super::eval::{Cols, MAPPED_V4, need, u128_at};
use super::key::{Key, KeyField, KeyValue, Metric, Totals};
use super::{MAX_BUCKETS, MAX_GROUPS};
use crate::filter::Family;
use crate::schema::col;

/// A group key: the value (addresses in their stored 16-byte form) and whether it is IPv4.
pub(super) type GroupKey = (u128, bool);

/// A multiply-rotate hasher for group keys (fixed-size integers; not DoS-resistant, which is
/// fine for keys taken from our own archive and bounded by [`MAX_GROUPS`]).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // murmur3's finaliser: every output bit depends on every input bit.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(26) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

pub(super) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Distinct keys a worker aggregates in one hash table before it switches to partitions (tiny
/// in tests, so that the property tests go through spills and compactions).
pub(super) const DIRECT_KEYS: usize = if cfg!(test) { 4 } else { 1 << 16 };
/// Partitions of the partitioned aggregation (by bits 32..40 of the key's hash, so that the bits
/// the hash tables use stay spread).
pub(super) const PARTS: usize = 256;
/// Buffered tuples of a worker that trigger a compaction of its partitions.
pub(super) const COMPACT_AT: usize = if cfg!(test) { 16 } else { 1 << 22 };

/// One pre-aggregated group in a partition buffer: the key and its totals (bit 63 of `flows_v4`
/// is the key's IPv4 flag).
#[derive(Clone, Copy)]
pub(super) struct Tuple {
    hi: u64,
    lo: u64,
    packets: u64,
    bytes: u64,
    flows_v4: u64,
}

pub(super) const V4_BIT: u64 = 1 << 63;

impl Tuple {
    fn new((k, v4): GroupKey, t: &Totals) -> Self {
        Tuple {
            hi: (k >> 64) as u64,
            lo: k as u64,
            packets: t.packets,
            bytes: t.bytes,
            flows_v4: t.flows | if v4 { V4_BIT } else { 0 },
        }
    }

    fn key(&self) -> GroupKey {
        (
            u128::from(self.hi) << 64 | u128::from(self.lo),
            self.flows_v4 & V4_BIT != 0,
        )
    }

    fn totals(&self) -> Totals {
        Totals {
            flows: self.flows_v4 & !V4_BIT,
            packets: self.packets,
            bytes: self.bytes,
        }
    }
}

/// A row in a partition buffer whose key fits in 64 bits (IPv4 addresses, with [`V4_BIT`] set;
/// numbers; IPv6 keys below 2^63): one flow, 24 bytes instead of a [`Tuple`]'s 40.
#[derive(Clone, Copy)]
pub(super) struct Narrow {
    key: u64,
    packets: u64,
    bytes: u64,
}

/// The 64-bit form of `k`, when it has one (IPv4 keys are `::ffff:a.b.c.d` masked, so their
/// address bits say all).
pub(super) fn narrow_key((k, v4): GroupKey) -> Option<u64> {
    if v4 {
        Some(u64::from(k as u32) | V4_BIT)
    } else if k < 1u128 << 63 {
        Some(k as u64)
    } else {
        None
    }
}

pub(super) fn from_narrow(key: u64) -> GroupKey {
    if key & V4_BIT != 0 {
        (MAPPED_V4 | u128::from(key as u32), true)
    } else {
        (u128::from(key), false)
    }
}

pub(super) fn part_of(k: &GroupKey) -> usize {
    use std::hash::BuildHasher;
    let h = BuildHasherDefault::<KeyHasher>::default().hash_one(k);
    ((h >> 32) as usize) & (PARTS - 1)
}

/// A worker's top-N aggregation: one hash table while the keys are few; past [`DIRECT_KEYS`],
/// rows go into [`PARTS`] partition buffers by key hash, aggregated partition by partition at
/// the end (each partition's table fits in cache, and no table is merged into another).
#[derive(Default)]
pub(super) struct Groups {
    pub(super) map: FastMap<GroupKey, Totals>,
    /// Aggregated groups and rows of wide keys, by partition.
    pub(super) parts: Vec<Vec<Tuple>>,
    /// Rows of narrow keys, by partition.
    pub(super) narrow: Vec<Vec<Narrow>>,
    pub(super) buffered: usize,
    pub(super) compact_at: usize,
    pub(super) total: Totals,
    pub(super) overflow: bool,
}

impl Groups {
    #[inline]
    fn bump(&mut self, k: GroupKey, p: u64, b: u64) {
        if self.parts.is_empty() {
            if let Some(t) = self.map.get_mut(&k) {
                t.add(p, b);
                return;
            }
            let mut t = Totals::default();
            t.add(p, b);
            self.map.insert(k, t);
            if self.map.len() > DIRECT_KEYS {
                self.spill();
            }
        } else {
            let part = part_of(&k);
            match narrow_key(k) {
                Some(key) => self.narrow[part].push(Narrow {
                    key,
                    packets: p,
                    bytes: b,
                }),
                None => {
                    let mut t = Totals::default();
                    t.add(p, b);
                    self.parts[part].push(Tuple::new(k, &t));
                }
            }
            self.buffered += 1;
            if self.buffered >= self.compact_at {
                self.compact();
            }
        }
    }

    /// Moves the hash table into the partition buffers.
    fn spill(&mut self) {
        if self.parts.is_empty() {
            self.parts = (0..PARTS).map(|_| Vec::new()).collect();
            self.narrow = (0..PARTS).map(|_| Vec::new()).collect();
            self.compact_at = COMPACT_AT;
        }
        for (k, t) in self.map.drain() {
            self.parts[part_of(&k)].push(Tuple::new(k, &t));
            self.buffered += 1;
        }
        self.map = FastMap::default();
    }

    /// Aggregates each partition buffer in place; when most tuples are distinct keys, waits for
    /// twice as many before the next compaction. Past [`MAX_GROUPS`] keys, flags the overflow.
    fn compact(&mut self) {
        let mut table = FastMap::<GroupKey, Totals>::default();
        let mut kept = 0;
        for (part, narrow) in self.parts.iter_mut().zip(&mut self.narrow) {
            table.clear();
            for t in part.iter() {
                table.entry(t.key()).or_default().merge(&t.totals());
            }
            for n in narrow.drain(..) {
                table
                    .entry(from_narrow(n.key))
                    .or_default()
                    .add(n.packets, n.bytes);
            }
            narrow.shrink_to(narrow.capacity() / 2);
            part.clear();
            part.extend(table.iter().map(|(k, t)| Tuple::new(*k, t)));
            part.shrink_to(part.len() * 2);
            kept += part.len();
        }
        self.buffered = kept;
        if kept > MAX_GROUPS {
            self.overflow = true;
            for part in &mut self.parts {
                part.clear();
            }
            self.buffered = 0;
        }
        if kept * 2 > self.compact_at {
            self.compact_at = self.compact_at.saturating_mul(2);
        }
    }

    pub(super) fn add(&mut self, key: &Key, c: &Cols, sel: &BooleanBuffer) -> Result<(), String> {
        let p = need(c.packets, col::PACKETS)?;
        let b = need(c.bytes, col::BYTES)?;
        for i in sel.set_indices() {
            self.total.add(p[i], b[i]);
        }
        if self.overflow {
            return Ok(());
        }
        for_each_key(key, c, sel, |i, k| self.bump(k, p[i], b[i]))
    }
}

/// The top `n` of `groups` (one per worker) by `by`, ties to the smaller key; and the number of
/// distinct keys. Partitions are aggregated in parallel on `threads` threads.
pub(super) fn top_of(
    mut groups: Vec<Groups>,
    by: Metric,
    n: usize,
    threads: usize,
) -> Result<(Vec<(GroupKey, Totals)>, u64), ()> {
    let order = |a: &(GroupKey, Totals), b: &(GroupKey, Totals)| {
        b.1.get(by).cmp(&a.1.get(by)).then(a.0.cmp(&b.0))
    };
    let top_n = |mut rows: Vec<(GroupKey, Totals)>| {
        if rows.len() > n && n > 0 {
            rows.select_nth_unstable_by(n - 1, order);
        }
        rows.truncate(n);
        rows
    };
    if groups.iter().any(|g| g.overflow) {
        return Err(());
    }
    if groups.iter().all(|g| g.parts.is_empty()) {
        // Few keys: merge the tables into the largest.
        groups.sort_by_key(|g| std::cmp::Reverse(g.map.len()));
        let mut it = groups.into_iter();
        let mut all = it.next().map(|g| g.map).unwrap_or_default();
        for g in it {
            for (k, t) in g.map {
                all.entry(k).or_default().merge(&t);
            }
        }
        let distinct = all.len() as u64;
        let mut rows = top_n(all.into_iter().collect());
        rows.sort_unstable_by(order);
        return Ok((rows, distinct));
    }
    for g in &mut groups {
        g.spill();
    }
    let groups = &groups;
    let next = AtomicUsize::new(0);
    let results: Vec<(Vec<(GroupKey, Totals)>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.clamp(1, PARTS))
            .map(|_| {
                s.spawn(|| {
                    let mut best = Vec::new();
                    let mut distinct = 0u64;
                    let mut table = FastMap::<GroupKey, Totals>::default();
                    loop {
                        let p = next.fetch_add(1, Ordering::Relaxed);
                        if p >= PARTS {
                            break;
                        }
                        table.clear();
                        for g in groups {
                            for t in &g.parts[p] {
                                table.entry(t.key()).or_default().merge(&t.totals());
                            }
                            for n in &g.narrow[p] {
                                table
                                    .entry(from_narrow(n.key))
                                    .or_default()
                                    .add(n.packets, n.bytes);
                            }
                        }
                        distinct += table.len() as u64;
                        best.extend(top_n(table.drain().collect()));
                        best = top_n(best);
                    }
                    (best, distinct)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let distinct = results.iter().map(|r| r.1).sum();
    let mut rows = top_n(results.into_iter().flat_map(|r| r.0).collect());
    rows.sort_unstable_by(order);
    Ok((rows, distinct))
}

/// Calls `f(row, key)` for every selected row and every key value it has (two for `ip`, `port`
/// and `as`; none for an address of the other family than a prefix key's).
pub(super) fn for_each_key(
    key: &Key,
    c: &Cols,
    sel: &BooleanBuffer,
    mut f: impl FnMut(usize, GroupKey),
) -> Result<(), String> {
    use KeyField::*;
    let num = |v: &[u32], f: &mut dyn FnMut(usize, GroupKey)| {
        for i in sel.set_indices() {
            f(i, (u128::from(v[i]), false));
        }
    };
    match key.field {
        SrcAddr | DstAddr | Addr | Exporter => {
            let fam = need(c.family, col::FAMILY)?;
            let sides: Vec<(&[u8], u8)> = match key.field {
                SrcAddr => vec![(need(c.src_addr, col::SRC_ADDR)?, flags::SRC_V4)],
                DstAddr => vec![(need(c.dst_addr, col::DST_ADDR)?, flags::DST_V4)],
                Exporter => vec![(need(c.exporter, col::EXPORTER)?, flags::EXPORTER_V4)],
                _ => vec![
                    (need(c.src_addr, col::SRC_ADDR)?, flags::SRC_V4),
                    (need(c.dst_addr, col::DST_ADDR)?, flags::DST_V4),
                ],
            };
            let (mask, want_v4) = match key.prefix {
                None => (!0u128, None),
                Some((Family::V4, len)) => {
                    let l = 96 + u32::from(len);
                    (!0u128 << (128 - l), Some(true))
                }
                Some((Family::V6, len)) => (
                    if len == 0 {
                        0
                    } else {
                        !0u128 << (128 - u32::from(len))
                    },
                    Some(false),
                ),
            };
            for i in sel.set_indices() {
                for (a, bit) in &sides {
                    let v4 = fam[i] & bit != 0;
                    if want_v4.is_some_and(|w| w != v4) {
                        continue;
                    }
                    f(i, (u128_at(a, i) & mask, v4));
                }
            }
        }
        SrcPort | DstPort | Port => {
            let s = match key.field {
                SrcPort | Port => Some(need(c.src_port, col::SRC_PORT)?),
                _ => None,
            };
            let d = match key.field {
                DstPort | Port => Some(need(c.dst_port, col::DST_PORT)?),
                _ => None,
            };
            for i in sel.set_indices() {
                if let Some(s) = s {
                    f(i, (u128::from(s[i]), false));
                }
                if let Some(d) = d {
                    f(i, (u128::from(d[i]), false));
                }
            }
        }
        Proto | Tos => {
            let v = if key.field == Proto {
                need(c.proto, col::PROTO)?
            } else {
                need(c.tos, col::TOS)?
            };
            for i in sel.set_indices() {
                f(i, (u128::from(v[i]), false));
            }
        }
        SrcAs => num(need(c.src_as, col::SRC_AS)?, &mut f),
        DstAs => num(need(c.dst_as, col::DST_AS)?, &mut f),
        InIf => num(need(c.in_if, col::IN_IF)?, &mut f),
        OutIf => num(need(c.out_if, col::OUT_IF)?, &mut f),
        As => {
            let s = need(c.src_as, col::SRC_AS)?;
            let d = need(c.dst_as, col::DST_AS)?;
            for i in sel.set_indices() {
                f(i, (u128::from(s[i]), false));
                f(i, (u128::from(d[i]), false));
            }
        }
    }
    Ok(())
}

pub(super) fn key_value(key: &Key, (v, v4): GroupKey) -> KeyValue {
    use KeyField::*;
    match key.field {
        SrcAddr | DstAddr | Addr | Exporter => {
            let addr = if v4 {
                IpAddr::V4(Ipv4Addr::from(v as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(v))
            };
            match key.prefix {
                Some((_, len)) => IpNet::new(addr, len).map_or(KeyValue::Addr(addr), KeyValue::Net),
                None => KeyValue::Addr(addr),
            }
        }
        _ => KeyValue::Num(v as u32),
    }
}

#[derive(Default)]
pub(super) struct SeriesAcc {
    pub(super) buckets: FastMap<u64, Totals>,
    pub(super) per_key: FastMap<(u64, GroupKey), Totals>,
    pub(super) key_totals: FastMap<GroupKey, Totals>,
    pub(super) overflow: bool,
}

impl SeriesAcc {
    pub(super) fn add(
        &mut self,
        interval: u64,
        key: Option<&Key>,
        c: &Cols,
        sel: &BooleanBuffer,
    ) -> Result<(), String> {
        let s = need(c.start, col::START_TIME)?;
        let p = need(c.packets, col::PACKETS)?;
        let b = need(c.bytes, col::BYTES)?;
        let bucket = |i: usize| {
            let t = u64::try_from(s[i]).unwrap_or(0);
            t - t % interval
        };
        for i in sel.set_indices() {
            self.buckets.entry(bucket(i)).or_default().add(p[i], b[i]);
        }
        if self.buckets.len() as u64 > MAX_BUCKETS {
            self.overflow = true;
            return Ok(());
        }
        if let Some(k) = key {
            let (per_key, key_totals) = (&mut self.per_key, &mut self.key_totals);
            let mut over = false;
            for_each_key(k, c, sel, |i, gk| {
                if per_key.len() >= MAX_GROUPS {
                    over = true;
                    return;
                }
                per_key.entry((bucket(i), gk)).or_default().add(p[i], b[i]);
                key_totals.entry(gk).or_default().add(p[i], b[i]);
            })?;
            self.overflow |= over;
        }
        Ok(())
    }

    pub(super) fn merge(&mut self, o: SeriesAcc) {
        self.overflow |= o.overflow;
        for (k, t) in o.buckets {
            self.buckets.entry(k).or_default().merge(&t);
        }
        for (k, t) in o.per_key {
            self.per_key.entry(k).or_default().merge(&t);
        }
        for (k, t) in o.key_totals {
            self.key_totals.entry(k).or_default().merge(&t);
        }
    }
}
