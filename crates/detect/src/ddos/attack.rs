//! One attack's state and the I2NSF DDoS event it is reported as.

use crate::class::{NCLASS, TrafficClass, type_from_mix};
use crate::config::{DdosConfig, METRIC_NAMES, Metrics};
use crate::sketch::SpaceSaving;
use pharos_model::flow::addr_from_bytes;
use pharos_model::ident::{DdosType, Identity};
use pharos_model::{Common, DdosEvent, Kind, Message, Severity, Timestamp};
use std::net::IpAddr;

/// What is attacked: one host, or a prefix as a whole (`prefix_len` < 128, in the 16-byte
/// address space: an IPv4 /24 is 120).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Victim {
    pub addr: [u8; 16],
    pub v4: bool,
    pub prefix_len: u8,
}

impl Victim {
    /// The key of its state: the address, and bits for IPv4 and for a prefix.
    #[inline]
    pub fn key(&self) -> (u128, u8) {
        let agg = if self.prefix_len < 128 { 2 } else { 0 };
        (u128::from_be_bytes(self.addr), u8::from(self.v4) | agg)
    }

    /// Prefix length as written for its family (`/24` for IPv4), `None` for a host.
    pub fn family_len(&self) -> Option<u8> {
        match (self.prefix_len, self.v4) {
            (128, _) => None,
            (l, true) => Some(l.saturating_sub(96)),
            (l, false) => Some(l),
        }
    }
}

/// Stable identity of an attack: a store updates the event with the same id in place, and every
/// phase of one attack (its start, each update, the refinement of its type, its end) has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttackId {
    /// The attacked host (the network address, for a prefix attacked as a whole).
    pub victim: IpAddr,
    /// For a prefix attacked as a whole, its length (`None` for a host).
    pub prefix_len: Option<u8>,
    /// The traffic class the attack was raised as. It stays when the attack is refined into a
    /// more specific class (an `all` attack that turns out to be a SYN flood keeps `all` here):
    /// the class it is reported as now is [`AttackSummary::class`], its type
    /// [`AttackSummary::attack_type`]. Two attacks on one victim at once are of disjoint classes.
    pub class: TrafficClass,
    /// When the attack started, Unix ms.
    pub start_ms: u64,
}

impl std::fmt::Display for AttackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix_len {
            Some(l) => write!(
                f,
                "ddos/{}/{l}/{}/{}",
                self.victim, self.class, self.start_ms
            ),
            None => write!(f, "ddos/{}/{}/{}", self.victim, self.class, self.start_ms),
        }
    }
}

/// What the detector knows about an attack, beyond what the I2NSF event holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackSummary {
    /// Reported `ddos-type`; `None` for a flood of a protocol the model has no identity for.
    pub attack_type: Option<DdosType>,
    /// The traffic class the attack is reported as now: the class it was raised as
    /// ([`AttackId::class`]) or, once refined, the more specific class its traffic turned out to be.
    pub class: TrafficClass,
    /// Host group of the victim.
    pub group: String,
    /// Rule that fired: `<group>/<class>/[baseline-]<pps|bps|fps>`.
    pub rule: String,
    /// Start, Unix ms.
    pub start_ms: u64,
    /// End, Unix ms (on `Ended` only).
    pub end_ms: Option<u64>,
    /// Mean packets/s over the attack's seconds (those whose own rate reached the threshold).
    pub avg_pps: f64,
    /// Highest packets/s measured.
    pub peak_pps: f64,
    /// Mean bytes/s.
    pub avg_bytes_ps: f64,
    /// Highest bytes/s.
    pub peak_bytes_ps: f64,
    /// Mean flows/s.
    pub avg_fps: f64,
    /// Heavy-hitter sources: flow records counted (Space-Saving estimate) for the sources that
    /// surely sent at least `1 / sketch_capacity` of the attack's flows; empty for a diffuse flood.
    pub top_sources: Vec<(IpAddr, u64)>,
    /// Sample of the sources: the heavy hitters, then a uniform sample of the attack's flows.
    pub source_sample: Vec<IpAddr>,
    /// Heaviest source ports by packets.
    pub top_src_ports: Vec<(u16, u64)>,
    /// Heaviest destination ports by packets.
    pub top_dst_ports: Vec<(u16, u64)>,
    /// Packets per IP protocol number, heaviest first.
    pub protocols: Vec<(u8, u64)>,
    /// Lowest and highest sampling rate (1 in N) of the attack's flows; `(0, 0)` when none seen.
    pub sampling: (u32, u32),
    /// Attack flows seen since the start.
    pub flows: u64,
}

/// One attack report: its id, the I2NSF message and the detector's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackReport {
    /// Stable id.
    pub id: AttackId,
    /// The `i2nsf-nsf-detection-ddos` event so far.
    pub message: Message,
    /// Figures beyond the event's leaves.
    pub summary: AttackSummary,
}

/// A step of an attack's life cycle.
#[derive(Debug, Clone, PartialEq)]
pub enum AttackUpdate {
    /// A threshold was crossed.
    Started(AttackReport),
    /// Periodic update while it lasts.
    Updated(AttackReport),
    /// The rate stayed below the threshold for the hold time (`end-time` set).
    Ended(AttackReport),
}

impl AttackUpdate {
    /// The report, whatever the step.
    pub fn report(&self) -> &AttackReport {
        match self {
            Self::Started(r) | Self::Updated(r) | Self::Ended(r) => r,
        }
    }
    /// The attack id.
    pub fn id(&self) -> &AttackId {
        &self.report().id
    }
    /// The event message.
    pub fn message(&self) -> &Message {
        &self.report().message
    }
    /// The step's name: `started`, `updated` or `ended`.
    pub fn phase(&self) -> &'static str {
        match self {
            Self::Started(_) => "started",
            Self::Updated(_) => "updated",
            Self::Ended(_) => "ended",
        }
    }
}

/// Time from Unix ms, clamped to what a timestamp can hold.
pub(crate) fn ts(ms: u64) -> Timestamp {
    Timestamp::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or(Timestamp::MAX_UTC)
}

/// A common part stamped with the detector's clock (never the wall clock).
pub(crate) fn common(
    nsf_name: &str,
    source: &str,
    now_ms: u64,
    severity: Severity,
    text: String,
) -> Common {
    Common {
        nsf_name: nsf_name.to_string(),
        vendor_name: Some("pharos".into()),
        device_model: None,
        software_version: Some(env!("CARGO_PKG_VERSION").into()),
        message: Some(text),
        language: None,
        acquisition_method: None,
        emission_type: None,
        dampening_type: None,
        id: None,
        event_time: ts(now_ms),
        receive_time: ts(now_ms),
        severity,
        source: Some(source.into()),
        raw: None,
        count: None,
        first_seen: None,
        last_seen: None,
        fields: None,
        classification: None,
    }
}

/// Size of the uniform source sample.
const RESERVOIR: usize = 32;

/// The threshold an attack is held to: the class whose rate is compared, the metric, its value,
/// whether it is a learned one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Trigger {
    pub class: TrafficClass,
    pub metric: usize,
    pub threshold: f64,
    pub baseline: bool,
}

/// The `ddos-type` of an attack in `class`, given every class's rates.
fn type_of(class: TrafficClass, rates: &[Metrics; NCLASS]) -> Option<DdosType> {
    let r = rates[class.index()];
    match class.ddos_type() {
        Some(DdosType::DnsReplyFlood) if r[1] > 512.0 * r[0] => Some(DdosType::DnsAmpFlood),
        Some(t) => Some(t),
        None => {
            let pps = |c: TrafficClass| rates[c.index()][0];
            type_from_mix(
                r[0],
                &[
                    (6, pps(TrafficClass::Tcp)),
                    (17, pps(TrafficClass::Udp)),
                    (1, pps(TrafficClass::Icmpv4)),
                    (58, pps(TrafficClass::Icmpv6)),
                ],
            )
        }
    }
}

/// An attack going on.
#[derive(Debug, Clone)]
pub(crate) struct Attack {
    /// The class it is reported as (its type, rates and sketches): [`Attack::raised_as`] or a
    /// more specific class it was refined into.
    pub class: TrafficClass,
    /// The class it was raised as, part of its [`AttackId`].
    raised_as: TrafficClass,
    /// The threshold it is held to: on `class` itself, or on an ancestor whose threshold fired
    /// while most of its traffic was in `class` (the attack lasts while a class on the path from
    /// `class` up to this one is over its threshold).
    pub trigger: Trigger,
    attack_type: Option<DdosType>,
    group: String,
    rule: String,
    start_ms: u64,
    pub below_since_ms: Option<u64>,
    pub last_update_ms: u64,
    /// Seconds whose own rate reached the threshold, and their sums and maximum.
    secs: u64,
    sum: Metrics,
    peak: Metrics,
    /// Next second to measure.
    next_sec: u64,
    /// Last measured second over the threshold.
    last_over_sec: Option<u64>,
    /// Rates of the last window over the threshold.
    pub last_window: Metrics,
    /// Mean and peak rates over the seconds from the start to the latest evaluation, settled or
    /// not: what is reported until a settled second was measured (the window's mean would
    /// include the quiet seconds before the attack).
    onset: Option<(Metrics, Metrics)>,
    sources: SpaceSaving<([u8; 16], bool)>,
    /// Uniform reservoir sample of the flows' sources (Algorithm R) and its generator state.
    reservoir: Vec<([u8; 16], bool)>,
    rng: u64,
    src_ports: SpaceSaving<u16>,
    dst_ports: SpaceSaving<u16>,
    protos: SpaceSaving<u8>,
    sampling: (u32, u32),
    flows: u64,
    /// AS numbers of the sources (all flows must carry the same known one) and of the victim
    /// (unknown ones left out).
    src_as: crate::AsSeen,
    dst_as: crate::AsSeen,
}

impl Attack {
    /// An attack reported as `class`, held to `trigger` (on `class` or an ancestor of it).
    pub fn start(
        cfg: &DdosConfig,
        class: TrafficClass,
        trigger: Trigger,
        group: &str,
        start_ms: u64,
        now_ms: u64,
        rates: &[Metrics; NCLASS],
    ) -> Attack {
        let r = rates[class.index()];
        let k = cfg.sketch_capacity;
        Attack {
            class,
            raised_as: class,
            trigger,
            attack_type: type_of(class, rates),
            group: group.to_string(),
            rule: rule(group, &trigger),
            start_ms: start_ms.min(now_ms),
            below_since_ms: None,
            last_update_ms: now_ms,
            secs: 0,
            sum: [0.0; 3],
            peak: [0.0; 3],
            next_sec: start_ms / 1000,
            last_over_sec: None,
            last_window: r,
            onset: None,
            sources: SpaceSaving::new(k),
            reservoir: Vec::new(),
            rng: start_ms | 1,
            src_ports: SpaceSaving::new(k),
            dst_ports: SpaceSaving::new(k),
            protos: SpaceSaving::new(16),
            sampling: (0, 0),
            flows: 0,
            src_as: crate::AsSeen::None,
            dst_as: crate::AsSeen::None,
        }
    }

    /// Holds the attack to `t` from now on (its rule names it).
    pub fn retrigger(&mut self, t: Trigger) {
        if self.trigger != t {
            self.trigger = t;
            self.rule = rule(&self.group, &t);
        }
    }

    /// Reports the attack as `class` from now on, a more specific class than the one it had,
    /// held to `t`: its type follows, and its rates are measured again from its start on the new
    /// class's seconds (those the ring still holds). Its id and sketches stay: the sources and
    /// ports seen so far were those of the wider class, mostly the same flows.
    pub fn refine(&mut self, class: TrafficClass, t: Trigger, rates: &[Metrics; NCLASS]) {
        self.class = class;
        self.attack_type = type_of(class, rates);
        self.retrigger(t);
        self.secs = 0;
        self.sum = [0.0; 3];
        self.peak = [0.0; 3];
        self.next_sec = self.start_ms / 1000;
        self.last_over_sec = None;
        self.last_window = rates[class.index()];
        self.onset = None;
    }

    /// Whether no settled second was measured yet (the report then needs [`Attack::set_onset`]).
    pub fn unsettled(&self) -> bool {
        self.secs == 0
    }

    /// Second the attack started in.
    pub fn start_sec(&self) -> u64 {
        self.start_ms / 1000
    }

    /// Mean and peak rates of the attack's class over the seconds since its start (see `onset`).
    pub fn set_onset(&mut self, mean: Metrics, peak: Metrics) {
        self.onset = Some((mean, peak));
    }

    /// Measures the settled seconds `[next, settled)` still in the window (from `from` on):
    /// the attack's rate is the mean of the seconds whose own rate reached the threshold, so the
    /// ramp of the window average at the start and end does not bias it. `second` gives a
    /// second's packets, bytes and flows of the attack's class, and the value of the trigger's
    /// metric in the trigger's class (the same class unless the attack is held to an ancestor).
    pub fn feed(&mut self, second: impl Fn(u64) -> (Metrics, f64), from: u64, settled: u64) {
        for s in self.next_sec.max(from)..settled {
            let (v, t) = second(s);
            if t >= self.trigger.threshold {
                self.secs += 1;
                self.last_over_sec = Some(s);
                for (m, x) in v.into_iter().enumerate() {
                    self.sum[m] += x;
                    self.peak[m] = self.peak[m].max(x);
                }
            }
        }
        self.next_sec = self.next_sec.max(settled);
    }

    /// Entries held by the sources, source ports, destination ports and protocol sketches.
    #[cfg(test)]
    pub fn sketch_sizes(&self) -> [usize; 4] {
        [
            self.sources.len(),
            self.src_ports.len(),
            self.dst_ports.len(),
            self.protos.len(),
        ]
    }

    /// When the attack ended, given that the detector saw it below its threshold from
    /// `below_ms`: the end of the last measured second over the threshold, else `below_ms`.
    pub fn end_ms(&self, below_ms: u64) -> u64 {
        self.last_over_sec.map_or(below_ms, |s| {
            s.saturating_add(1).saturating_mul(1000).min(below_ms)
        })
    }

    /// When the attack started, Unix ms (part of its [`AttackId`]).
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// The class it was raised as (part of its [`AttackId`]).
    pub fn raised_as(&self) -> TrafficClass {
        self.raised_as
    }

    /// Records one flow of the attack's class.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        src: ([u8; 16], bool),
        sp: u16,
        dp: u16,
        proto: u8,
        pkts: u64,
        sampling: u32,
        (src_as, dst_as): (u32, u32),
    ) {
        let w = pkts.max(1);
        self.src_as.add_all(src_as);
        self.dst_as.add_known(dst_as);
        // sources by flow records: a packet weight would let one large background flow outweigh
        // the many small flows of a diffuse flood
        self.sources.add(src, 1);
        let seen = self.sources.total();
        if self.reservoir.len() < RESERVOIR {
            self.reservoir.push(src);
        } else {
            // xorshift64
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let j = self.rng % seen.max(1);
            if (j as usize) < RESERVOIR {
                self.reservoir[j as usize] = src;
            }
        }
        self.src_ports.add(sp, w);
        self.dst_ports.add(dp, w);
        self.protos.add(proto, w);
        self.flows = self.flows.saturating_add(1);
        self.sampling = if self.sampling.0 == 0 {
            (sampling, sampling)
        } else {
            (self.sampling.0.min(sampling), self.sampling.1.max(sampling))
        };
    }

    fn summary(&self, cfg: &DdosConfig, end_ms: Option<u64>) -> AttackSummary {
        // before a whole second was measured, the seconds since the start stand in (else the
        // window's rates)
        let (sum, peak, n) = if self.secs == 0 {
            match self.onset {
                Some((mean, peak)) => (mean, peak, 1.0),
                None => (self.last_window, self.last_window, 1.0),
            }
        } else {
            (self.sum, self.peak, self.secs as f64)
        };
        let ports = |s: &SpaceSaving<u16>| -> Vec<(u16, u64)> {
            // only ports that carry a tenth of the attack: spoofed random ports are noise
            let total = s.total();
            s.top(cfg.top_n)
                .into_iter()
                .filter(|e| (e.count - e.error).saturating_mul(10) >= total)
                .map(|e| (e.key, e.count))
                .collect()
        };
        let total = self.sources.total();
        let cap = cfg.sketch_capacity as u64;
        let heavy: Vec<(([u8; 16], bool), u64)> = self
            .sources
            .top(cfg.top_n)
            .into_iter()
            .filter(|e| (e.count - e.error).saturating_mul(cap) >= total)
            .map(|e| (e.key, e.count))
            .collect();
        let mut sample: Vec<IpAddr> = Vec::with_capacity(cfg.top_n);
        for k in heavy
            .iter()
            .map(|h| h.0)
            .chain(self.reservoir.iter().copied())
        {
            let a = addr_from_bytes(k.0, k.1);
            if sample.len() < cfg.top_n && !sample.contains(&a) {
                sample.push(a);
            }
        }
        AttackSummary {
            attack_type: self.attack_type,
            class: self.class,
            group: self.group.clone(),
            rule: self.rule.clone(),
            start_ms: self.start_ms,
            end_ms,
            avg_pps: sum[0] / n,
            peak_pps: peak[0],
            avg_bytes_ps: sum[1] / n,
            peak_bytes_ps: peak[1],
            avg_fps: sum[2] / n,
            top_sources: heavy
                .iter()
                .map(|(k, c)| (addr_from_bytes(k.0, k.1), *c))
                .collect(),
            source_sample: sample,
            top_src_ports: ports(&self.src_ports),
            top_dst_ports: ports(&self.dst_ports),
            protocols: self
                .protos
                .top(16)
                .into_iter()
                .map(|e| (e.key, e.count))
                .collect(),
            sampling: self.sampling,
            flows: self.flows,
        }
    }

    /// The report at `now_ms`; `end_ms` set when the attack is over.
    pub fn event(
        &self,
        cfg: &DdosConfig,
        target: &Victim,
        now_ms: u64,
        end_ms: Option<u64>,
    ) -> AttackReport {
        let victim = addr_from_bytes(target.addr, target.v4);
        let prefix_len = target.family_len();
        let shown = match prefix_len {
            Some(l) => format!("{victim}/{l} as a whole"),
            None => victim.to_string(),
        };
        let s = self.summary(cfg, end_ms.map(|e| e.max(self.start_ms)));
        let id = AttackId {
            victim,
            prefix_len,
            class: self.raised_as,
            start_ms: self.start_ms,
        };
        // how far over its threshold the attack went decides the severity
        let m = self.trigger.metric;
        let ratio =
            self.peak[m].max(self.last_window[m]) / self.trigger.threshold.max(f64::MIN_POSITIVE);
        let severity = if ratio >= 10.0 {
            Severity::Critical
        } else {
            Severity::High
        };
        let sampling = match s.sampling {
            (0, _) => String::new(),
            (a, b) if a == b => format!("; sampling 1:{a}"),
            (a, b) => format!("; sampling 1:{a}..1:{b}"),
        };
        let text = format!(
            "{} on {shown}: {:.0} pps avg (peak {:.0}), {:.1} Mbit/s avg (peak {:.1}), {:.0} flows/s; rule {}{sampling}",
            self.attack_type.map_or("flood", |t| t.name()),
            s.avg_pps,
            s.peak_pps,
            s.avg_bytes_ps * 8e-6,
            s.peak_bytes_ps * 8e-6,
            s.avg_fps,
            s.rule,
        );
        let event = DdosEvent {
            attack_type: self.attack_type,
            start_time: ts(self.start_ms),
            end_time: s.end_ms.map(ts),
            attack_src_ip: s.source_sample.clone(),
            attack_dst_ip: vec![victim],
            attack_src_port: s.top_src_ports.iter().map(|(p, _)| *p).collect(),
            attack_dst_port: s.top_dst_ports.iter().map(|(p, _)| *p).collect(),
            rule_name: s.rule.clone(),
            attack_rate: Some(s.avg_pps.round() as u64),
            attack_throughput: Some(s.avg_bytes_ps.round() as u64),
        };
        // The event's time is the attack's start, in every update: stored events are listed
        // and filtered by when the attack began; the receive time says when this report was made.
        let mut common = common(&cfg.nsf_name, "detect:ddos", now_ms, severity, text);
        common.event_time = ts(self.start_ms);
        // the victim's AS, and the sources' when all their flows carried the same one: the
        // notice stage routes by them (an organisation known by its AS only)
        common.fields = crate::AsSeen::fields(self.src_as, self.dst_as);
        AttackReport {
            id,
            message: Message {
                common,
                kind: Kind::Ddos(event),
            },
            summary: s,
        }
    }
}

/// `<group>/<class>/[baseline-]<metric>`: the rule an attack is held to.
fn rule(group: &str, t: &Trigger) -> String {
    format!(
        "{group}/{}/{}{}",
        t.class,
        if t.baseline { "baseline-" } else { "" },
        METRIC_NAMES[t.metric]
    )
}
