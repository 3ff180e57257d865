//! DDoS detector: per destination host and traffic class, packet, byte and flow rates from flow
//! batches, thresholds (absolute or learned baseline) and the attack life cycle.
//!
//! Contract:
//! - The clock is the caller's `now_ms` (capture time in an offline replay); the detector never
//!   reads the wall clock. A `now_ms` earlier than one already seen is taken as the latest seen.
//! - Rate measurement: a flow's packets and bytes are spread evenly over its duration
//!   `[start_ms, end_ms]` (clamped to `now_ms`) into one-second buckets; its flow count goes to
//!   the second of its end. The rate at second `now` is the mean over the `window_s` seconds
//!   that end `delay_s` seconds before `now`, so flows exported at their end (up to `delay_s`
//!   long) have arrived: with `delay_s` at least the exporters' active timeout, the measured rate
//!   of a constant-rate attack is exact up to rounding. The window ending at `now` is checked
//!   too: it can only undercount, so when even it is over a threshold the attack starts at once
//!   (a strong attack is seen about one second after it begins). Data older than the ring is
//!   dropped (counted as late). A flow claiming to last more than an hour is counted at its end.
//! - One attack, one event. An attack starts when a class's rate reaches a threshold (any of
//!   pps, bits/s, flows/s) and no more specific class of the same host ([`TrafficClass::parent`])
//!   is also over or under attack: a NTP reflection is reported once, as `ntp-amp-flood`, not
//!   also as `udp-flood`. Its type at the first report is already the most specific one: when a
//!   coarse class crosses first (`all` counts the victim's ordinary traffic too), the attack is
//!   raised as the most specific class that carries more than half of the coarse class's rate
//!   (a SYN flood is a `syn-flood` from its start), held to the coarse class's threshold until
//!   its own crosses. When it cannot be told (a mix), it is raised on the coarse class and
//!   refined in place once a descendant crosses its own threshold: an `Updated` report at once,
//!   same [`AttackId`] (whose `class` stays the one raised; [`AttackSummary::class`] is the one
//!   now). Classes that are mostly the same traffic (SYNs to port 80 are `syn` and `http`) are
//!   one attack. Disjoint classes over their thresholds at once (an NTP reflection and a SYN
//!   flood on one victim) are two attacks, each with its type and id.
//! - An attack ends once its class stayed below the threshold it is held to for `hold_s` (an
//!   over-threshold ancestor that the attack's class still carries most of keeps it going).
//!   Every update carries the whole event so far (a store replaces the previous one with the
//!   same [`AttackId`]).
//! - Rates reported: the mean and peak over the settled seconds of the attack that reached the
//!   threshold; before a settled second was measured (an attack seen early through the window
//!   ending now), over the seconds from its start to now, never the window's mean with the
//!   quiet seconds before the attack in it.
//! - A host group with `aggregate` limits also measures each of its prefixes as a whole (one
//!   more state, keyed by the prefix): an attack spread thinly over many hosts is reported on
//!   the prefix (`AttackId::prefix_len`), independently of its hosts' own attacks.
//! - Memory: at most `max_hosts` hosts and prefixes (further ones are counted in
//!   [`DdosStats::dropped_hosts`]; from 90 % full, hosts under every threshold are forgotten at
//!   each evaluation instead of after `idle_evict`, so traffic spread over more destinations
//!   than that does not keep a victim out: it gets a place as soon as one of its flows comes
//!   before `max_hosts` other hosts have been seen in that second); per host, 12 bytes times `window_s + delay_s + 1` rounded up
//!   to a power of two, per class it has traffic in; per attack, sketches of `sketch_capacity`
//!   entries; per idle host of a baseline group parked for its learned rates (see `learned.rs`),
//!   about 40 bytes plus 32 per class, at most `max_hosts` of them; the latest 65,536
//!   monitored flows (about 4.5 MB), read only when an attack starts, so that its first event
//!   names the sources it already sent from. Per flow: one or two prefix
//!   lookups, one host hash lookup (two with aggregates), no allocation (except the first flow of
//!   a new host or class).
//! - No input panics: arithmetic on counts and times saturates.

mod attack;
mod learned;
#[cfg(test)]
mod tests;

pub(crate) use attack::Victim;
pub(crate) use attack::common as ts_common;
pub use attack::{AttackId, AttackReport, AttackSummary, AttackUpdate};
pub use learned::LearnedHost;

use crate::class::{ClassSet, NCLASS, TrafficClass, classify, common_ancestor, descendants};
use crate::config::{Compiled, ConfigError, DdosConfig, Metrics, Target};
use attack::{Attack, Trigger};
use foldhash::fast::RandomState;
use pharos_model::flow::{FlowBatch, flags};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Flows claiming a longer duration than this are counted at their end.
const MAX_FLOW_MS: u64 = 3_600_000;
/// No slot.
const NONE: u8 = u8::MAX;

/// Counters of what the detector saw and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DdosStats {
    /// Flows received.
    pub flows: u64,
    /// Flows counted into rates (a flow also counted for its prefix as a whole counts twice).
    pub counted: u64,
    /// Flows towards allow-listed destinations or from allow-listed sources.
    pub allowed: u64,
    /// Flows that ended before the measurement window.
    pub late: u64,
    /// Flows dropped because `max_hosts` hosts were tracked.
    pub dropped_hosts: u64,
    /// Hosts tracked now.
    pub hosts: u64,
    /// Idle hosts of baseline groups kept only for their learned rates.
    pub dormant: u64,
    /// Attacks going on now.
    pub active_attacks: u64,
    /// Attacks started since creation.
    pub started: u64,
    /// Attacks ended since creation.
    pub ended: u64,
}

/// One second of one class. `f32` halves the memory the hot path walks (relative precision
/// 6e-8 per addition: far finer than any threshold).
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    pkts: f32,
    bytes: f32,
    flows: f32,
}

/// A destination host's state.
#[derive(Debug)]
struct Host {
    group: u16,
    victim: Victim,
    first_seen_ms: u64,
    last_seen_sec: u64,
    /// Flows arrived since the last evaluation.
    dirty: bool,
    /// Newest second the rings hold.
    head_sec: u64,
    /// Second the learned rates were last updated.
    learned_sec: u64,
    slot_of: [u8; NCLASS],
    classes: Vec<TrafficClass>,
    /// `classes.len()` rings of `ring` buckets, slot after slot.
    buckets: Vec<Bucket>,
    /// Learned rate per slot (baseline mode).
    learned: Vec<Metrics>,
    /// Upper bound of the `all` class's packets, bytes and flows held by the ring (lets the
    /// evaluation pass over quiet hosts without reading their buckets).
    ring_total: [f64; 3],
    /// Classes with an attack going on.
    active: u32,
    attacks: Vec<Attack>,
}

impl Host {
    fn new(group: u16, victim: Victim, now_ms: u64) -> Self {
        Self {
            group,
            victim,
            first_seen_ms: now_ms,
            last_seen_sec: now_ms / 1000,
            dirty: false,
            head_sec: now_ms / 1000,
            learned_sec: now_ms / 1000,
            slot_of: [NONE; NCLASS],
            classes: Vec::new(),
            buckets: Vec::new(),
            learned: Vec::new(),
            ring_total: [0.0; 3],
            active: 0,
            attacks: Vec::new(),
        }
    }

    /// Moves the rings' head to `sec`, clearing the seconds that enter.
    #[inline]
    fn advance(&mut self, sec: u64, ring: usize) {
        if sec <= self.head_sec {
            return;
        }
        let gap = sec - self.head_sec;
        if gap >= ring as u64 {
            self.buckets.fill(Bucket::default());
            self.ring_total = [0.0; 3];
        } else {
            let n = self.classes.len();
            for s in self.head_sec + 1..=sec {
                // a second's buckets of every class are side by side: one or two cache lines
                let i = (s & (ring as u64 - 1)) as usize * n;
                if let Some(b) = self.buckets.get(i) {
                    let t = &mut self.ring_total;
                    t[0] = (t[0] - f64::from(b.pkts)).max(0.0);
                    t[1] = (t[1] - f64::from(b.bytes)).max(0.0);
                    t[2] = (t[2] - f64::from(b.flows)).max(0.0);
                }
                if let Some(sec) = self.buckets.get_mut(i..i + n) {
                    sec.fill(Bucket::default());
                }
            }
        }
        self.head_sec = sec;
    }

    #[inline]
    fn slot(&mut self, c: TrafficClass, ring: usize) -> usize {
        let s = self.slot_of[c.index()];
        if s != NONE {
            return s as usize;
        }
        let n = self.classes.len();
        self.slot_of[c.index()] = n as u8;
        self.classes.push(c);
        // second-major layout: second `i` holds the buckets of slots 0..n at `i * n`
        let mut wider = vec![Bucket::default(); ring * (n + 1)];
        for i in 0..ring {
            wider[i * (n + 1)..i * (n + 1) + n].copy_from_slice(&self.buckets[i * n..i * n + n]);
        }
        self.buckets = wider;
        self.learned.push([0.0; 3]);
        n
    }

    /// Per metric, the higher of the rates over the settled window (from `from`) and over the
    /// window ending now (from `fresh`).
    fn rate_now(&self, slot: usize, from: u64, fresh: u64, len: u32, ring: usize) -> Metrics {
        let a = self.rate(slot, from, len, ring);
        if fresh == from {
            return a;
        }
        let b = self.rate(slot, fresh, len, ring);
        [a[0].max(b[0]), a[1].max(b[1]), a[2].max(b[2])]
    }

    /// Mean rates `[pps, bytes/s, flows/s]` of `slot` over seconds `[from, from + len)`.
    fn rate(&self, slot: usize, from: u64, len: u32, ring: usize) -> Metrics {
        let mut m = [0.0; 3];
        for s in from..from + u64::from(len) {
            let b = bucket_metrics(&self.buckets, self.head_sec, slot, s, ring);
            m[0] += b[0];
            m[1] += b[1];
            m[2] += b[2];
        }
        let l = f64::from(len);
        [m[0] / l, m[1] / l, m[2] / l]
    }
}

/// Least time between two evaluations within one second, when flows arrive (the windows are made
/// of whole seconds; later evaluations in a second see the records that arrived since).
pub const EARLY_EVAL_MS: u64 = 100;

/// Detects volumetric attacks on monitored hosts from flow batches.
pub struct DdosDetector {
    cfg: DdosConfig,
    c: Compiled,
    ring: usize,
    hosts: HashMap<(u128, u8), Host, RandomState>,
    /// Keys of the hosts that got flows since the last evaluation.
    dirty: Vec<(u128, u8)>,
    /// Idle hosts of baseline groups, kept for their learned rates (at most `max_hosts`).
    dormant: HashMap<(u128, u8), learned::Dormant, RandomState>,
    now_ms: u64,
    evaluated_sec: u64,
    /// Clock of the latest evaluation, ms.
    evaluated_ms: u64,
    stats: DdosStats,
    desc: [u32; NCLASS],
    /// The latest monitored flows, to seed attacks that start (see [`Recent`]).
    recent: Recent,
}

impl std::fmt::Debug for DdosDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DdosDetector")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DdosDetector {
    /// A detector for `cfg`, or what is wrong with it.
    pub fn new(cfg: DdosConfig) -> Result<Self, ConfigError> {
        let c = cfg.compile()?;
        // a power of two, so that a second's bucket is a mask away
        let ring = ((cfg.window_s + cfg.delay_s + 1) as usize).next_power_of_two();
        Ok(Self {
            cfg,
            c,
            ring,
            hosts: HashMap::default(),
            dirty: Vec::new(),
            dormant: HashMap::default(),
            now_ms: 0,
            evaluated_sec: 0,
            evaluated_ms: 0,
            stats: DdosStats::default(),
            desc: descendants(),
            recent: Recent::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &DdosConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> DdosStats {
        let mut s = self.stats;
        s.hosts = self.hosts.len() as u64;
        s.dormant = self.dormant.len() as u64;
        s.active_attacks = self.hosts.values().map(|h| h.attacks.len() as u64).sum();
        s
    }

    /// The attacks going on, as of the latest clock seen, ordered by id.
    pub fn ongoing(&self) -> Vec<AttackReport> {
        let mut v: Vec<AttackReport> = self
            .hosts
            .values()
            .flat_map(|h| {
                h.attacks
                    .iter()
                    .map(|a| a.event(&self.cfg, &h.victim, self.now_ms, None))
            })
            .collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// Counts a batch of flows at time `now_ms`, then evaluates thresholds if a new second began
    /// or [`EARLY_EVAL_MS`] passed since the last evaluation (so that an attack whose first
    /// records arrive just after a second began starts then, not a second later), appending
    /// life-cycle updates to `out`.
    pub fn process(&mut self, batch: &FlowBatch, now_ms: u64, out: &mut Vec<AttackUpdate>) {
        self.ingest(batch, now_ms);
        self.poll(now_ms, out);
    }

    /// Evaluates what is due at `now_ms`: the hosts that got flows, once [`EARLY_EVAL_MS`]
    /// passed since the last evaluation, or every host when a new second began. Call it at
    /// [`DdosDetector::due_ms`] when no batch comes, so that flows counted just after an
    /// evaluation are evaluated [`EARLY_EVAL_MS`] later, not with the next batch or second.
    pub fn poll(&mut self, now_ms: u64, out: &mut Vec<AttackUpdate>) {
        let now_ms = self.clock(now_ms);
        if now_ms >= self.evaluated_ms.saturating_add(EARLY_EVAL_MS)
            && now_ms / 1000 == self.evaluated_sec
        {
            if !self.dirty.is_empty() {
                self.evaluated_ms = now_ms;
                self.evaluate(now_ms, true, out);
            }
        } else {
            self.tick(now_ms, out);
        }
    }

    /// When [`DdosDetector::poll`] has an early evaluation to make (hosts got flows since the
    /// last one), Unix ms; `None` when nothing waits for it but the next second.
    pub fn due_ms(&self) -> Option<u64> {
        (!self.dirty.is_empty()).then(|| self.evaluated_ms.saturating_add(EARLY_EVAL_MS))
    }

    /// Attacks that start have seen none of the flows that made them start (those were counted
    /// before the attack existed): their sketches take the latest monitored flows towards their
    /// victim ([`Recent`], those not older than the attack's window), and their `Started`
    /// reports are made again, so the first event (and the hook's input) already names the top
    /// sources and ports known at that moment, whatever triggered the evaluation.
    fn seed_started(&mut self, now_ms: u64, updates: &mut [AttackUpdate]) {
        let fresh: Vec<((u128, u8), TrafficClass, u64)> = updates
            .iter()
            .filter_map(|u| match u {
                AttackUpdate::Started(r) => Some((key_of(&r.id), r.id.class, r.id.start_ms)),
                _ => None,
            })
            .collect();
        let span_ms = u64::from(self.cfg.window_s + self.cfg.delay_s) * 1000;
        for f in self.recent.iter() {
            for key in [Some(f.host), f.whole].into_iter().flatten() {
                if !fresh.iter().any(|&(k, ..)| k == key) {
                    continue;
                }
                let Some(h) = self.hosts.get_mut(&key) else {
                    continue;
                };
                for a in h.attacks.iter_mut() {
                    let new = fresh
                        .iter()
                        .any(|&(k, c, s)| k == key && c == a.raised_as() && s == a.start_ms());
                    if new
                        && f.mask.contains(a.class)
                        && f.end_ms.saturating_add(span_ms) >= a.start_ms()
                    {
                        a.observe(f.src, f.sp, f.dp, f.proto, f.packets, f.sampling, f.asn);
                    }
                }
            }
        }
        for u in updates.iter_mut() {
            let AttackUpdate::Started(r) = u else {
                continue;
            };
            let key = key_of(&r.id);
            if let Some(h) = self.hosts.get(&key)
                && let Some(a) = h
                    .attacks
                    .iter()
                    .find(|a| a.raised_as() == r.id.class && a.start_ms() == r.id.start_ms)
            {
                *r = a.event(&self.cfg, &h.victim, now_ms, None);
            }
        }
    }

    /// Evaluates thresholds at `now_ms` if a new second began since the last evaluation (call it
    /// about once a second when no flows arrive, so that attacks end).
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<AttackUpdate>) {
        let now_ms = self.clock(now_ms);
        let sec = now_ms / 1000;
        if sec > self.evaluated_sec {
            self.evaluated_sec = sec;
            self.evaluated_ms = now_ms;
            self.evaluate(now_ms, false, out);
        }
    }

    /// Ends every attack going on at `now_ms` (end of an offline replay, shutdown).
    pub fn finish(&mut self, now_ms: u64, out: &mut Vec<AttackUpdate>) {
        let now_ms = self.clock(now_ms);
        let first = out.len();
        for h in self.hosts.values_mut() {
            for a in h.attacks.drain(..) {
                let end = a.end_ms(a.below_since_ms.unwrap_or(now_ms));
                out.push(AttackUpdate::Ended(a.event(
                    &self.cfg,
                    &h.victim,
                    now_ms,
                    Some(end),
                )));
                self.stats.ended += 1;
            }
            h.active = 0;
        }
        sort_updates(&mut out[first..]);
    }

    fn clock(&mut self, now_ms: u64) -> u64 {
        self.now_ms = self.now_ms.max(now_ms);
        self.now_ms
    }

    /// Counts a batch into the rates (no evaluation).
    pub fn ingest(&mut self, b: &FlowBatch, now_ms: u64) {
        let now_ms = self.clock(now_ms);
        let now_sec = now_ms / 1000;
        let ring = self.ring;
        let r = ring as u64;
        let oldest_sec = (now_sec + 1).saturating_sub(r);
        let oldest_ms = oldest_sec.saturating_mul(1000);
        let n = crate::readable_rows(b);
        self.stats.flows = self.stats.flows.saturating_add(n as u64);
        let max_hosts = self.cfg.max_hosts;
        for i in 0..n {
            let f = b.flags[i];
            let dst = &b.dst_addr[i];
            let dv4 = f & flags::DST_V4 != 0;
            let (group, aggregate) = match self.c.dst.lookup(dst, dv4) {
                None => continue,
                Some(Target::Allowed) => {
                    self.stats.allowed += 1;
                    continue;
                }
                Some(Target::Group(g)) => (g, None),
                Some(Target::GroupAndAggregate {
                    group,
                    aggregate,
                    len,
                }) => (group, Some((aggregate, len))),
            };
            if !self.c.allow_src.is_empty()
                && self
                    .c
                    .allow_src
                    .lookup(&b.src_addr[i], f & flags::SRC_V4 != 0)
                    .is_some()
            {
                self.stats.allowed += 1;
                continue;
            }
            let end = b.end_ms[i].min(now_ms);
            let mut start = b.start_ms[i].min(end);
            if end - start > MAX_FLOW_MS {
                start = end;
            }
            let end_sec = end / 1000;
            if end_sec < oldest_sec {
                self.stats.late += 1;
                continue;
            }
            let (sp, dp, proto, tf) = (b.src_port[i], b.dst_port[i], b.proto[i], b.tcp_flags[i]);
            let fv = FlowView {
                src: (b.src_addr[i], f & flags::SRC_V4 != 0),
                sp,
                dp,
                proto,
                mask: classify(proto, tf, sp, dp),
                packets: b.packets[i],
                bytes: b.bytes[i],
                sampling: b.sampling_rate[i],
                asn: (crate::as_at(&b.src_as, i), crate::as_at(&b.dst_as, i)),
                start,
                end,
            };
            let ctx = Ctx {
                now_ms,
                oldest_ms,
                ring,
                max_hosts,
            };
            let host = Victim {
                addr: *dst,
                v4: dv4,
                prefix_len: 128,
            };
            count(
                &mut self.hosts,
                &mut self.dirty,
                &mut self.dormant,
                &mut self.stats,
                &ctx,
                host,
                group,
                &fv,
            );
            let mut whole_key = None;
            if let Some((agg, len)) = aggregate {
                let net = crate::prefix::mask(u128::from_be_bytes(*dst), len).to_be_bytes();
                let whole = Victim {
                    addr: net,
                    v4: dv4,
                    prefix_len: len,
                };
                whole_key = Some(whole.key());
                count(
                    &mut self.hosts,
                    &mut self.dirty,
                    &mut self.dormant,
                    &mut self.stats,
                    &ctx,
                    whole,
                    agg,
                    &fv,
                );
            }
            self.recent.push(RecentFlow {
                host: host.key(),
                whole: whole_key,
                mask: fv.mask,
                src: fv.src,
                sp,
                dp,
                proto,
                packets: fv.packets,
                sampling: fv.sampling,
                asn: fv.asn,
                end_ms: end,
            });
        }
    }

    /// Evaluates every host, or with `only_new` only those that got flows since the last
    /// evaluation (within a second the others cannot have changed: same windows, same buckets;
    /// they are found through the dirty list, so an early evaluation costs nothing per quiet
    /// host).
    fn evaluate(&mut self, now_ms: u64, only_new: bool, out: &mut Vec<AttackUpdate>) {
        let now_sec = now_ms / 1000;
        let window = self.cfg.window_s;
        let e = Eval {
            cfg: &self.cfg,
            groups: &self.c.groups,
            desc: &self.desc,
            now_ms,
            now_sec,
            ring: self.ring,
            window,
            from: now_sec.saturating_sub(u64::from(self.cfg.delay_s + window)),
            hold_ms: u64::from(self.cfg.hold_s) * 1000,
            update_ms: u64::from(self.cfg.update_interval_s) * 1000,
            // A table nearly full of quiet hosts (traffic spread over more destinations than
            // `max_hosts`, a sweep over the monitored space) would leave no room for the next
            // victim until they idled out: under that pressure quiet hosts are forgotten at
            // once, so a host with real traffic finds a place within the next second.
            evict_sec: if only_new || self.hosts.len() < self.cfg.max_hosts / 10 * 9 {
                u64::from(self.cfg.idle_evict_s)
            } else {
                0
            },
            // seconds before `settled` have all their flows (up to `delay_s` long)
            settled: now_sec.saturating_sub(u64::from(self.cfg.delay_s)),
            // the window ending now: flows still under way are missing from it, so it can only
            // undercount; when even it is over a threshold, the attack starts without waiting
            fresh: now_sec.saturating_sub(u64::from(window)),
        };
        let first = out.len();
        let stats = &mut self.stats;
        if only_new {
            for key in self.dirty.drain(..) {
                if let Some(h) = self.hosts.get_mut(&key) {
                    // eviction waits for the next full evaluation
                    e.host(h, stats, out);
                }
            }
        } else {
            self.dirty.clear();
            let dormant = &mut self.dormant;
            let max = self.cfg.max_hosts;
            self.hosts.retain(|k, h| {
                let keep = e.host(h, stats, out);
                if !keep {
                    // an idle host of a baseline group keeps what it learned
                    learned::park(dormant, max, *k, h, e.groups);
                }
                keep
            });
        }
        if out[first..]
            .iter()
            .any(|u| matches!(u, AttackUpdate::Started(_)))
        {
            self.seed_started(now_ms, &mut out[first..]);
        }
        sort_updates(&mut out[first..]);
    }
}

/// How many of the latest monitored flows [`Recent`] keeps (about 4.5 MB).
const RECENT_FLOWS: usize = 1 << 16;

/// One monitored flow as an attack's sketches take it.
#[derive(Debug, Clone, Copy)]
struct RecentFlow {
    host: (u128, u8),
    whole: Option<(u128, u8)>,
    mask: ClassSet,
    src: ([u8; 16], bool),
    sp: u16,
    dp: u16,
    proto: u8,
    packets: u64,
    sampling: u32,
    /// Source and destination AS numbers (0: unknown).
    asn: (u32, u32),
    end_ms: u64,
}

/// The latest [`RECENT_FLOWS`] monitored flows, overwritten in a ring: what an attack that
/// starts has already sent (at a flood's rate the ring is all of its latest second; at low
/// rates it reaches further back, bounded by the attack's window when read).
#[derive(Debug, Default)]
struct Recent {
    buf: Vec<RecentFlow>,
    next: usize,
}

impl Recent {
    #[inline]
    fn push(&mut self, f: RecentFlow) {
        if self.buf.len() < RECENT_FLOWS {
            self.buf.push(f);
        } else {
            self.buf[self.next] = f;
            self.next = (self.next + 1) % RECENT_FLOWS;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &RecentFlow> {
        self.buf.iter()
    }
}

/// The clock and settings of one evaluation.
struct Eval<'a> {
    cfg: &'a DdosConfig,
    groups: &'a [crate::config::Group],
    desc: &'a [u32; NCLASS],
    now_ms: u64,
    now_sec: u64,
    ring: usize,
    window: u32,
    from: u64,
    hold_ms: u64,
    update_ms: u64,
    evict_sec: u64,
    settled: u64,
    fresh: u64,
}

impl Eval<'_> {
    /// Evaluates one host: thresholds, learning, life cycle; whether to keep it.
    fn host(&self, h: &mut Host, stats: &mut DdosStats, out: &mut Vec<AttackUpdate>) -> bool {
        let Eval {
            cfg,
            groups,
            desc,
            now_ms,
            now_sec,
            ring,
            window,
            from,
            hold_ms,
            update_ms,
            evict_sec,
            settled,
            fresh,
        } = *self;
        h.dirty = false;
        // no `advance`: readers ignore the seconds the rings do not hold (fewer writes)
        let group = &groups[h.group as usize];
        let learned_ok = group
            .baseline
            .is_some_and(|b| now_ms.saturating_sub(h.first_seen_ms) >= b.learning_ms);
        let dt = now_sec.saturating_sub(h.learned_sec);
        h.learned_sec = now_sec;
        // every class is part of `all`: when `all` is below the lowest threshold of every
        // class, no class can be over (absolute thresholds only; baseline hosts learn)
        if h.active == 0 && group.baseline.is_none() {
            let w = f64::from(window);
            let quiet = |rate: [f64; 3]| (0..3).all(|m| rate[m] < group.min_limits[m]);
            if quiet(h.ring_total.map(|x| x / w)) {
                return now_sec.saturating_sub(h.last_seen_sec) <= evict_sec;
            }
            // slot 0 is `all`: every flow is in it, first
            let rate = h.rate_now(0, from, fresh, window, ring);
            if (0..3).all(|m| rate[m] < group.min_limits[m]) {
                return now_sec.saturating_sub(h.last_seen_sec) <= evict_sec;
            }
        }
        let mut rates = [[0.0f64; 3]; NCLASS];
        let mut fired: [Option<(usize, bool, f64)>; NCLASS] = [None; NCLASS];
        // per class, how far towards its threshold it is (its highest rate / threshold ratio)
        let mut near = [0.0f64; NCLASS];
        let mut over = 0u32;
        for (slot, &c) in h.classes.iter().enumerate() {
            let ci = c.index();
            let rate = h.rate_now(slot, from, fresh, window, ring);
            rates[ci] = rate;
            let abs = group.limits[ci];
            let mut thr = abs;
            if let (Some(b), true) = (group.baseline, learned_ok) {
                for m in 0..3 {
                    let base = (b.multiplier * h.learned[slot][m]).max(b.floor[m]);
                    // a metric disabled by the absolute thresholds stays disabled
                    if abs[m].is_finite() {
                        thr[m] = abs[m].min(base);
                    }
                }
            }
            near[ci] = (0..3).fold(0.0, |n: f64, m| n.max(rate[m] / thr[m]));
            if let Some(m) = (0..3).find(|&m| rate[m] >= thr[m]) {
                over |= 1 << ci;
                fired[ci] = Some((m, thr[m] < abs[m], thr[m]));
            } else if let Some(b) = group.baseline
                && h.active & (1 << ci) == 0
                && dt > 0
            {
                let keep = b.keep_per_s.powf(dt as f64);
                let l = &mut h.learned[slot];
                let fresh = l.iter().all(|x| *x == 0.0);
                for m in 0..3 {
                    l[m] = if fresh {
                        rate[m]
                    } else {
                        keep * l[m] + (1.0 - keep) * rate[m]
                    };
                }
            }
        }
        let trigger_of = |c: TrafficClass| {
            fired[c.index()].map(|(metric, baseline, threshold)| Trigger {
                class: c,
                metric,
                threshold,
                baseline,
            })
        };
        // the most specific classes over their threshold (none of their descendants is)
        let mut leaves = over;
        for c in ClassSet(over).iter() {
            if desc[c.index()] & over != 0 {
                leaves &= !(1 << c.index());
            }
        }
        // Refinement: an attack raised on a coarse class (its threshold crossed first) whose
        // descendant now crosses its own becomes that descendant, in place (same id).
        let mut refined = 0u32;
        if leaves != 0 {
            for a in h.attacks.iter_mut() {
                let cands = leaves & desc[a.class.index()] & !h.active;
                if cands == 0 {
                    continue;
                }
                let c = most_over(cands, &fired, &rates);
                let Some(t) = trigger_of(c) else {
                    continue;
                };
                h.active = (h.active & !(1 << a.class.index())) | (1 << c.index());
                a.refine(c, t, &rates);
                refined |= 1 << c.index();
            }
        }
        // Leaves no attack is about yet start one below, unless an attack going on is the same
        // traffic: then they keep it going instead (`kept`). The same traffic: the attack's class
        // carries most of the leaf's (a SYN flood keeps its `syn` attack going while it also
        // holds `all` over), or shares most of its traffic with the class the leaf would start
        // as (SYNs to port 80 are both `syn` and `http`).
        let mut kept = 0u32;
        for c in ClassSet(leaves & !h.active).iter() {
            let ci = c.index();
            let Some(t) = trigger_of(c) else {
                continue;
            };
            if desc[ci] & h.active != 0 {
                // a more specific attack going on (perhaps in its hold time)
                let total = rates[ci][t.metric];
                for a in h.attacks.iter() {
                    if desc[ci] & (1 << a.class.index()) != 0
                        && rates[a.class.index()][t.metric] * 2.0 > total
                    {
                        kept |= 1 << a.class.index();
                    }
                }
                continue;
            }
            let class = dominant(c, t.metric, &rates, &near, &h.classes);
            if let Some(a) = h.attacks.iter().find(|a| overlaps(class, a.class, &rates)) {
                kept |= 1 << a.class.index();
            }
        }
        // life cycle of ongoing attacks
        let mut k = 0;
        while k < h.attacks.len() {
            let a = &mut h.attacks[k];
            let ci = a.class.index();
            let slot = h.slot_of[ci] as usize;
            if over & (1 << ci) != 0
                && a.trigger.class != a.class
                && let Some(t) = trigger_of(a.class)
            {
                // its own class crossed its threshold: held to it from now on
                a.retrigger(t);
            }
            let t = a.trigger;
            let tslot = h.slot_of[t.class.index()] as usize;
            a.feed(
                |sec| {
                    let v = bucket_metrics(&h.buckets, h.head_sec, slot, sec, ring);
                    let tv = if tslot == slot {
                        v[t.metric]
                    } else {
                        bucket_metrics(&h.buckets, h.head_sec, tslot, sec, ring)[t.metric]
                    };
                    (v, tv)
                },
                from,
                settled,
            );
            if a.unsettled()
                && let Some((mean, peak)) =
                    onset(&h.buckets, h.head_sec, slot, a.start_sec(), now_sec, ring)
            {
                a.set_onset(mean, peak);
            }
            if (over | kept) & (1 << ci) != 0 {
                a.below_since_ms = None;
                a.last_window = rates[ci];
                // a refined type is news: reported at once
                if refined & (1 << ci) != 0
                    || update_ms > 0 && now_ms.saturating_sub(a.last_update_ms) >= update_ms
                {
                    a.last_update_ms = now_ms;
                    out.push(AttackUpdate::Updated(a.event(cfg, &h.victim, now_ms, None)));
                }
                k += 1;
            } else {
                let since = *a.below_since_ms.get_or_insert(now_ms);
                if now_ms.saturating_sub(since) >= hold_ms {
                    let a = h.attacks.swap_remove(k);
                    h.active &= !(1 << ci);
                    stats.ended += 1;
                    out.push(AttackUpdate::Ended(a.event(
                        cfg,
                        &h.victim,
                        now_ms,
                        Some(a.end_ms(since)),
                    )));
                } else {
                    k += 1;
                }
            }
        }
        // New attacks, one per leaf no attack is about: reported at once as the most specific
        // class that carries most of the leaf's traffic (a SYN flood that holds `all` over its
        // threshold before `syn` is a `syn-flood` from its first event), held to the leaf's
        // threshold until its own class crosses its own.
        for c in ClassSet(leaves & !h.active).iter() {
            let ci = c.index();
            if desc[ci] & h.active != 0 {
                continue;
            }
            let Some(t) = trigger_of(c) else {
                continue;
            };
            let class = dominant(c, t.metric, &rates, &near, &h.classes);
            if h.attacks.iter().any(|a| overlaps(class, a.class, &rates)) {
                continue;
            }
            let span = window + cfg.delay_s;
            let start_ms = h.first_over_ms(
                h.slot_of[ci] as usize,
                from,
                span,
                ring,
                t.metric,
                t.threshold,
            );
            let mut a = Attack::start(cfg, class, t, &group.name, start_ms, now_ms, &rates);
            let slot = h.slot_of[class.index()] as usize;
            let tslot = h.slot_of[ci] as usize;
            a.feed(
                |sec| {
                    let v = bucket_metrics(&h.buckets, h.head_sec, slot, sec, ring);
                    let tv = bucket_metrics(&h.buckets, h.head_sec, tslot, sec, ring)[t.metric];
                    (v, tv)
                },
                from,
                settled,
            );
            if let Some((mean, peak)) =
                onset(&h.buckets, h.head_sec, slot, a.start_sec(), now_sec, ring)
            {
                a.set_onset(mean, peak);
            }
            h.active |= 1 << class.index();
            stats.started += 1;
            out.push(AttackUpdate::Started(a.event(cfg, &h.victim, now_ms, None)));
            h.attacks.push(a);
        }
        h.active != 0 || now_sec.saturating_sub(h.last_seen_sec) <= evict_sec
    }
}

/// Mean and peak `[packets, bytes, flows]` per second of `slot` over the seconds `[from, to)`
/// (`None` when empty): an attack's rates since its start, before a settled second measured them.
fn onset(
    buckets: &[Bucket],
    head: u64,
    slot: usize,
    from: u64,
    to: u64,
    ring: usize,
) -> Option<(Metrics, Metrics)> {
    let from = from.max(to.saturating_sub(ring as u64 - 1));
    if from >= to {
        return None;
    }
    let (mut sum, mut peak) = ([0.0; 3], [0.0f64; 3]);
    for s in from..to {
        let v = bucket_metrics(buckets, head, slot, s, ring);
        for m in 0..3 {
            sum[m] += v[m];
            peak[m] = peak[m].max(v[m]);
        }
    }
    let n = (to - from) as f64;
    Some((sum.map(|x| x / n), peak))
}

/// Of the classes in `set` (all over their threshold), the one furthest over it.
fn most_over(
    set: u32,
    fired: &[Option<(usize, bool, f64)>; NCLASS],
    rates: &[Metrics; NCLASS],
) -> TrafficClass {
    let ratio = |c: TrafficClass| {
        fired[c.index()].map_or(0.0, |(m, _, thr)| {
            rates[c.index()][m] / thr.max(f64::MIN_POSITIVE)
        })
    };
    let mut best = TrafficClass::All;
    let mut best_ratio = f64::NEG_INFINITY;
    for c in ClassSet(set).iter() {
        let r = ratio(c);
        if r > best_ratio {
            (best, best_ratio) = (c, r);
        }
    }
    best
}

/// The most specific class that carries more than half of `c`'s `metric`: down the class tree
/// from `c`, among the children that carry more than half of it, the one nearest its own
/// threshold (`near`; the first in index order on a tie): of SYNs to port 80, both `syn` and
/// `http`, the one that would cross first. `c` itself when no child does.
fn dominant(
    c: TrafficClass,
    metric: usize,
    rates: &[Metrics; NCLASS],
    near: &[f64; NCLASS],
    classes: &[TrafficClass],
) -> TrafficClass {
    let total = rates[c.index()][metric];
    let mut cur = c;
    loop {
        let mut best: Option<TrafficClass> = None;
        for &x in classes {
            if x.parent() != Some(cur) || rates[x.index()][metric] * 2.0 <= total {
                continue;
            }
            let (n, i) = (near[x.index()], x.index());
            if best.is_none_or(|b| n > near[b.index()] || n == near[b.index()] && i < b.index()) {
                best = Some(x);
            }
        }
        match best {
            Some(x) if total > 0.0 => cur = x,
            _ => return cur,
        }
    }
}

/// Whether classes `x` and `y` are mostly the same traffic: one contains the other, or, on some
/// metric, what they must share (their sum beyond the rate of their closest common ancestor) is
/// at least half of the smaller one (SYNs to port 80 are in `syn` and in `http`).
fn overlaps(x: TrafficClass, y: TrafficClass, rates: &[Metrics; NCLASS]) -> bool {
    let a = common_ancestor(x, y);
    if a == x || a == y {
        return true;
    }
    let (rx, ry, ra) = (rates[x.index()], rates[y.index()], rates[a.index()]);
    (0..3).any(|m| {
        let small = rx[m].min(ry[m]);
        small > 0.0 && rx[m] + ry[m] - ra[m] >= 0.5 * small
    })
}

/// `[packets, bytes, flows]` of one second of one slot whose ring ends at second `head`; zero for
/// a second the ring does not hold.
#[inline]
fn bucket_metrics(buckets: &[Bucket], head: u64, slot: usize, sec: u64, ring: usize) -> Metrics {
    if sec > head || head - sec >= ring as u64 {
        return [0.0; 3];
    }
    let n = buckets.len() / ring;
    let b = &buckets[(sec & (ring as u64 - 1)) as usize * n + slot];
    [f64::from(b.pkts), f64::from(b.bytes), f64::from(b.flows)]
}

impl Host {
    /// Start of the first second in the window whose `metric` reached `thr` (the window end when
    /// none did on its own).
    fn first_over_ms(
        &self,
        slot: usize,
        from: u64,
        len: u32,
        ring: usize,
        metric: usize,
        thr: f64,
    ) -> u64 {
        for s in from..from + u64::from(len) {
            let v = bucket_metrics(&self.buckets, self.head_sec, slot, s, ring)[metric];
            if v >= thr {
                return s.saturating_mul(1000);
            }
        }
        (from + u64::from(len)).saturating_mul(1000)
    }
}

/// What [`count`] needs of one flow.
struct FlowView {
    src: ([u8; 16], bool),
    sp: u16,
    dp: u16,
    proto: u8,
    mask: ClassSet,
    packets: u64,
    bytes: u64,
    sampling: u32,
    /// Source and destination AS numbers (0: unknown).
    asn: (u32, u32),
    /// Start and end, already clamped (`start <= end <= now`).
    start: u64,
    end: u64,
}

/// The clock and sizes of one ingest.
struct Ctx {
    now_ms: u64,
    oldest_ms: u64,
    ring: usize,
    max_hosts: usize,
}

/// Counts one flow into the rings of `victim` (a host, or a prefix as a whole).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn count(
    hosts: &mut HashMap<(u128, u8), Host, RandomState>,
    dirty: &mut Vec<(u128, u8)>,
    dormant: &mut HashMap<(u128, u8), learned::Dormant, RandomState>,
    stats: &mut DdosStats,
    ctx: &Ctx,
    victim: Victim,
    group: u16,
    f: &FlowView,
) {
    let (now_ms, ring) = (ctx.now_ms, ctx.ring);
    let now_sec = now_ms / 1000;
    let r = ring as u64;
    let hosts_len = hosts.len();
    let key = victim.key();
    let host = match hosts.entry(key) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(v) => {
            if hosts_len >= ctx.max_hosts {
                stats.dropped_hosts += 1;
                return;
            }
            let mut h = Host::new(group, victim, now_ms);
            if !dormant.is_empty()
                && let Some(d) = dormant.remove(&key)
            {
                learned::wake(&mut h, d, ring);
            }
            v.insert(h)
        }
    };
    stats.counted += 1;
    host.advance(now_sec, ring);
    host.last_seen_sec = now_sec;
    if !host.dirty {
        host.dirty = true;
        dirty.push(key);
    }
    let mut slots = [0usize; NCLASS];
    let mut ns = 0;
    for c in f.mask.iter() {
        slots[ns] = host.slot(c, ring);
        ns += 1;
    }
    let slots = &slots[..ns];
    let n = host.classes.len();
    let pk = f.packets as f32;
    let by = f.bytes as f32;
    let (start, end) = (f.start, f.end);
    let end_sec = end / 1000;
    let ei = (end_sec & (r - 1)) as usize * n;
    if start / 1000 == end_sec {
        for s in slots {
            let bk = &mut host.buckets[s + ei];
            bk.pkts += pk;
            bk.bytes += by;
            bk.flows += 1.0;
        }
    } else {
        let lo = start.max(ctx.oldest_ms);
        let dur = (end - start) as f32;
        for sec in lo / 1000..=end_sec {
            let a = lo.max(sec.saturating_mul(1000));
            let z = end.min(sec.saturating_mul(1000).saturating_add(1000));
            if z <= a {
                continue;
            }
            let w = (z - a) as f32 / dur;
            let idx = (sec & (r - 1)) as usize * n;
            for s in slots {
                let bk = &mut host.buckets[s + idx];
                bk.pkts += pk * w;
                bk.bytes += by * w;
            }
        }
        for s in slots {
            host.buckets[s + ei].flows += 1.0;
        }
    }
    let t = &mut host.ring_total;
    t[0] += f64::from(pk);
    t[1] += f64::from(by);
    t[2] += 1.0;
    if host.active & f.mask.0 != 0 {
        for a in host.attacks.iter_mut() {
            if f.mask.contains(a.class) {
                a.observe(f.src, f.sp, f.dp, f.proto, f.packets, f.sampling, f.asn);
            }
        }
    }
}

/// The state key of an attack's victim (host, or prefix taken as a whole).
fn key_of(id: &AttackId) -> (u128, u8) {
    let (addr, v4) = pharos_model::flow::addr_to_bytes(&id.victim);
    let prefix_len = match (id.prefix_len, v4) {
        (None, _) => 128,
        (Some(l), true) => l.saturating_add(96),
        (Some(l), false) => l,
    };
    Victim {
        addr,
        v4,
        prefix_len,
    }
    .key()
}

fn sort_updates(u: &mut [AttackUpdate]) {
    u.sort_by(|a, b| a.id().cmp(b.id()));
}
