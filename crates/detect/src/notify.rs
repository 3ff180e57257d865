//! Notification dedup, dampening, thresholds (Suricata semantics) and correlation rules.
//!
//! Contract: [`Notifier`] is a plain synchronous state machine fed with [`Message`]s and an
//! explicit clock (`now_ms`, Unix milliseconds); it never reads the wall clock and never panics.
//! For each message, in this order:
//! 1. every [correlation rule](CorrelationRule) sees it (CrowdSec leaky-bucket semantics) and may
//!    raise an intrusion event (brute force, port scan, ...), output at once;
//! 2. the [threshold rules](ThresholdRule) decide whether it is notified (Suricata `threshold`,
//!    `limit`, `both`, `detection_filter`, `backoff`, `rate_filter` and `suppress` semantics);
//! 3. identical notifications (same kind, NSF, rule name and addresses) within `dedup_window_s`
//!    fold into one: the first is output at once, an update with the count and the first and last
//!    seen times when the window closes ([`Notifier::tick`]);
//! 4. per kind, RFC 8641 `dampening-period`: after an output for an object (the dedup key), later
//!    outputs for it wait until the period has passed; only the latest is output then.
//!
//! Every table is bounded by `max_keys`; what does not fit is passed through unfolded (never
//! lost) and counted in [`NotifyStats`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use ipnet::IpNet;
use pharos_model::ident::{DampeningType, Identity, IntrusionAttackType, YangEnum};
use pharos_model::{AddrRole, IntrusionEvent, Kind, Message, Severity};
use serde::Deserialize;

use crate::config::ConfigError;
use crate::ddos::ts_common;

#[cfg(test)]
mod tests;

/// Configuration of the notification stage (`[notify]` in `pharos.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// nsf-name of the events raised by correlation rules.
    pub nsf_name: String,
    /// Identical notifications within this many seconds fold into one (0: no folding).
    pub dedup_window_s: u64,
    /// RFC 8641 `dampening-period` per kind name (e.g. `intrusion = 30`), in seconds.
    pub dampening_s: BTreeMap<String, u64>,
    /// Threshold rules (Suricata `threshold.config` semantics).
    pub thresholds: Vec<ThresholdRule>,
    /// Correlation rules (CrowdSec leaky-bucket semantics).
    pub correlate: Vec<CorrelationRule>,
    /// Most keys held in each table (folds, dampers, threshold trackers, buckets).
    pub max_keys: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            nsf_name: "pharos".into(),
            dedup_window_s: 60,
            dampening_s: BTreeMap::new(),
            thresholds: Vec::new(),
            correlate: Vec::new(),
            max_keys: 100_000,
        }
    }
}

/// Suricata threshold type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdType {
    /// Alert on every `count`-th match within `seconds`.
    Threshold,
    /// Alert on the first `count` matches within `seconds`.
    Limit,
    /// Alert once per `seconds` after `count` matches.
    Both,
    /// Alert on every match after the first `count` within `seconds`.
    DetectionFilter,
    /// Alert at the `count`-th match, then each time the count is multiplied by `multiplier`.
    Backoff,
    /// After more than `count` matches within `seconds`, apply `new_action` for `timeout` s.
    RateFilter,
    /// Never alert for matches within `ip` (by the tracked address).
    Suppress,
}

/// What a threshold rule counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    /// Per source address.
    #[default]
    BySrc,
    /// Per destination address.
    ByDst,
    /// Per rule.
    ByRule,
    /// Per (source, destination) pair.
    ByBoth,
    /// Per flow (addresses and ports, either direction).
    ByFlow,
    /// Either address (suppress only).
    ByEither,
}

/// Distinct counting of `detection_filter` (`unique_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniqueOn {
    /// Count distinct source ports.
    SrcPort,
    /// Count distinct destination ports.
    DstPort,
}

/// Action a `rate_filter` switches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateAction {
    /// Keep alerting.
    Alert,
    /// Alert, marked as dropped.
    Drop,
    /// Alert, marked as rejected.
    Reject,
    /// Stop alerting.
    Pass,
}

/// One threshold rule: which notifications it applies to, and how it counts them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRule {
    /// Rule name the notification must carry (Suricata `sig_id`); absent: any.
    #[serde(default)]
    pub rule: Option<String>,
    /// Kind name the notification must have; absent: any.
    #[serde(default)]
    pub kind: Option<String>,
    /// The threshold type.
    #[serde(rename = "type")]
    pub mode: ThresholdType,
    /// What it counts by.
    #[serde(default)]
    pub track: Track,
    /// Matches (or distinct ports) the type counts to.
    #[serde(default)]
    pub count: u64,
    /// Counting window, seconds.
    #[serde(default)]
    pub seconds: u64,
    /// `backoff` multiplier.
    #[serde(default)]
    pub multiplier: u64,
    /// `detection_filter` distinct counting.
    #[serde(default)]
    pub unique_on: Option<UniqueOn>,
    /// `rate_filter` new action.
    #[serde(default)]
    pub new_action: Option<RateAction>,
    /// `rate_filter` time the new action lasts, seconds.
    #[serde(default)]
    pub timeout: u64,
    /// `suppress` networks like `"192.0.2.0/24"` or addresses (absent: suppress every match).
    #[serde(default)]
    pub ip: Vec<String>,
}

impl ThresholdRule {
    /// A rule of `mode` for rule name `rule`, tracked by `track`, with `count` and `seconds`.
    pub fn new(
        rule: Option<&str>,
        mode: ThresholdType,
        track: Track,
        count: u64,
        seconds: u64,
    ) -> Self {
        Self {
            rule: rule.map(str::to_string),
            kind: None,
            mode,
            track,
            count,
            seconds,
            multiplier: 0,
            unique_on: None,
            new_action: None,
            timeout: 0,
            ip: Vec::new(),
        }
    }
}

/// Which field groups a correlation rule's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Source address.
    #[default]
    Src,
    /// Destination address.
    Dst,
    /// (source, destination).
    SrcDst,
    /// One bucket for everything the rule matches.
    Rule,
}

/// A field whose distinct values are counted (CrowdSec `distinct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distinct {
    /// User name.
    User,
    /// Destination port.
    DstPort,
    /// Source port.
    SrcPort,
    /// Destination address.
    Dst,
}

/// Attack type a correlation rule raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Emit {
    /// `brute-force`.
    BruteForce,
    /// `port-scan`.
    PortScan,
    /// `host-sweep`.
    HostSweep,
}

impl Emit {
    fn attack_type(self) -> IntrusionAttackType {
        match self {
            Emit::BruteForce => IntrusionAttackType::BruteForce,
            Emit::PortScan => IntrusionAttackType::PortScan,
            Emit::HostSweep => IntrusionAttackType::HostSweep,
        }
    }
}

/// A correlation rule, one bucket per group. Leaky (CrowdSec): the bucket holds `capacity`
/// events and leaks one every `leakspeed_ms`; an event that finds it full overflows it. Sliding
/// window (when `count` is set): `count` events within `seconds` overflow it. An overflow raises
/// an intrusion event; the group is then silent for `blackhole_s`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationRule {
    /// Name (the `rule-name` of the events raised).
    pub name: String,
    /// Kind names the rule reads (empty: any).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// User-activity type required (e.g. `failed-login`).
    #[serde(default)]
    pub activity: Option<String>,
    /// Firewall actions of which one is required (e.g. `drop`, `reject`).
    #[serde(default)]
    pub actions: Vec<String>,
    /// Substrings of which the message text (or raw record) must hold one (empty: any).
    #[serde(default)]
    pub text: Vec<String>,
    /// Substrings none of which the message text (or raw record) may hold.
    #[serde(default)]
    pub not_text: Vec<String>,
    /// Rule name required.
    #[serde(default)]
    pub rule: Option<String>,
    /// What the buckets are per.
    #[serde(default)]
    pub group_by: GroupBy,
    /// Only events with a value of this field not yet in the bucket count (values are
    /// remembered until the bucket empties, as CrowdSec's `distinct`).
    #[serde(default)]
    pub distinct: Option<Distinct>,
    /// Leaky: events the bucket holds (0 and no `count`: every event overflows, a trigger).
    #[serde(default)]
    pub capacity: u64,
    /// Milliseconds to leak one event.
    #[serde(default = "default_leak")]
    pub leakspeed_ms: u64,
    /// Sliding window: events (distinct values with `distinct`) that raise the event.
    #[serde(default)]
    pub count: u64,
    /// Sliding window: length, seconds.
    #[serde(default)]
    pub seconds: u64,
    /// Seconds a group stays silent after an overflow.
    #[serde(default)]
    pub blackhole_s: u64,
    /// Attack type of the event raised.
    pub emit: Emit,
}

fn default_leak() -> u64 {
    10_000
}

/// What happened to a notification; the output of [`Notifier`].
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The message to store and emit (the latest of its fold).
    pub message: Message,
    /// Why it is output.
    pub phase: Phase,
    /// Notifications it stands for (events in the bucket, for correlation events).
    pub count: u64,
    /// First of them, Unix ms.
    pub first_seen_ms: u64,
    /// Last of them, Unix ms.
    pub last_seen_ms: u64,
    /// `rate_filter` action in force, if any.
    pub action: Option<RateAction>,
}

/// Why a [`Notice`] is output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The first of its fold (output at once).
    First,
    /// The final count of a fold, at the end of its window (update the first in place).
    Update,
    /// An event raised by a correlation rule.
    Correlated,
}

/// Counters of the notification stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyStats {
    /// Messages fed.
    pub received: u64,
    /// Messages silenced by threshold rules.
    pub thresholded: u64,
    /// Messages folded into an earlier one.
    pub folded: u64,
    /// Outputs held back by dampening (and replaced or output later).
    pub dampened: u64,
    /// Events raised by correlation rules.
    pub correlated: u64,
    /// Notices output.
    pub output: u64,
    /// Keys not tracked because a table was full (the message passed through).
    pub dropped_full: u64,
}

/// The tracking and matching fields of a message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    /// Kind name.
    pub kind: &'static str,
    /// Rule name.
    pub rule: Option<&'a str>,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// User name.
    pub user: Option<&'a str>,
    /// User-activity type.
    pub activity: Option<&'static str>,
    /// Firewall action.
    pub action: Option<&'static str>,
    /// Message text.
    pub text: Option<&'a str>,
    /// Raw record.
    pub raw: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn holds(&self, s: &str) -> bool {
        self.text.is_some_and(|t| t.contains(s)) || self.raw.is_some_and(|t| t.contains(s))
    }

    /// The fields of `m`.
    pub fn of(m: &'a Message) -> Self {
        let mut f = Fields {
            kind: m.kind.name(),
            rule: m.rule_name(),
            text: m.common.message.as_deref(),
            raw: m.common.raw.as_deref(),
            ..Fields::default()
        };
        for (role, a) in m.addresses() {
            match role {
                AddrRole::Src if f.src.is_none() => f.src = Some(a),
                AddrRole::Dst if f.dst.is_none() => f.dst = Some(a),
                _ => {}
            }
        }
        match &m.kind {
            Kind::UserActivityLog(e) => {
                f.user = Some(&e.user);
                f.src_port = Some(e.l4_port_number).filter(|p| *p != 0);
                f.activity = e.additional_info.activity_type.map(|t| t.as_str());
            }
            Kind::SystemAccessLog(e) => f.user = Some(&e.user),
            Kind::SystemEvent(e) => f.user = Some(&e.user),
            Kind::FirewallTrafficLog(e) => {
                (f.src_port, f.dst_port) = (e.src_port, e.dst_port);
                f.user = e.user.as_deref();
                f.action = e.action.map(|a| a.name());
            }
            Kind::Intrusion(e) => (f.src_port, f.dst_port) = (e.src_port, e.dst_port),
            Kind::WebAttack(e) => (f.src_port, f.dst_port) = (e.src_port, e.dst_port),
            Kind::TrafficFlows(e) => (f.src_port, f.dst_port) = (e.src_port, e.dst_port),
            _ => {}
        }
        f
    }
}

/// What the threshold rules decide for one match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Notify, with the `rate_filter` action in force if any.
    Alert(Option<RateAction>),
    /// Do not notify.
    Silence,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TrackKey {
    Addr(IpAddr),
    Pair(IpAddr, IpAddr),
    Rule,
    Flow(u64),
}

#[derive(Debug, Clone)]
struct Tracker {
    start_ms: u64,
    count: u64,
    next: u64,
    timeout_ms: Option<u64>,
    ports: Vec<u16>,
}

/// The threshold rules and their trackers; usable alone (e.g. on raw signature matches).
#[derive(Debug)]
pub struct Thresholds {
    rules: Vec<ThresholdRule>,
    nets: Vec<Vec<IpNet>>,
    trackers: HashMap<(usize, TrackKey), Tracker>,
    max_keys: usize,
    /// Matches not tracked because the table was full (they alert: fail open).
    pub dropped_full: u64,
}

const UNSPEC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

fn flow_hash(f: &Fields<'_>) -> u64 {
    let a = (f.src.unwrap_or(UNSPEC), f.src_port.unwrap_or(0));
    let b = (f.dst.unwrap_or(UNSPEC), f.dst_port.unwrap_or(0));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (lo, hi).hash(&mut h);
    h.finish()
}

impl Thresholds {
    /// Trackers for `rules`, at most `max_keys` of them, or the `ip` that does not parse.
    pub fn new(rules: Vec<ThresholdRule>, max_keys: usize) -> Result<Self, ConfigError> {
        let mut nets = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let mut v = Vec::with_capacity(r.ip.len());
            for s in &r.ip {
                let net = s
                    .parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| ConfigError::Prefix {
                        key: format!("notify.thresholds[{i}].ip"),
                        value: s.clone(),
                    })?;
                v.push(net);
            }
            nets.push(v);
        }
        Ok(Self {
            rules,
            nets,
            trackers: HashMap::new(),
            max_keys,
            dropped_full: 0,
        })
    }

    fn applies(r: &ThresholdRule, f: &Fields<'_>) -> bool {
        r.rule.as_deref().is_none_or(|x| f.rule == Some(x))
            && r.kind.as_deref().is_none_or(|k| k == f.kind)
    }

    /// Decides for one match at `now_ms`: every rule that applies must let it through.
    pub fn check(&mut self, f: &Fields<'_>, now_ms: u64) -> Verdict {
        let mut verdict = Verdict::Alert(None);
        for i in 0..self.rules.len() {
            if !Self::applies(&self.rules[i], f) {
                continue;
            }
            match self.check_rule(i, f, now_ms) {
                Verdict::Silence => return Verdict::Silence,
                Verdict::Alert(Some(a)) => verdict = Verdict::Alert(Some(a)),
                Verdict::Alert(None) => {}
            }
        }
        verdict
    }

    fn check_rule(&mut self, i: usize, f: &Fields<'_>, now_ms: u64) -> Verdict {
        let r = &self.rules[i];
        if r.mode == ThresholdType::Suppress {
            let nets = self.nets.get(i).map_or(&[][..], Vec::as_slice);
            let hit = |a: Option<IpAddr>| a.is_some_and(|a| nets.iter().any(|n| n.contains(&a)));
            let suppressed = nets.is_empty()
                || match r.track {
                    Track::ByDst => hit(f.dst),
                    Track::ByEither => hit(f.src) || hit(f.dst),
                    _ => hit(f.src),
                };
            return if suppressed {
                Verdict::Silence
            } else {
                Verdict::Alert(None)
            };
        }
        let key = match r.track {
            Track::BySrc | Track::ByEither => TrackKey::Addr(f.src.unwrap_or(UNSPEC)),
            Track::ByDst => TrackKey::Addr(f.dst.unwrap_or(UNSPEC)),
            Track::ByBoth => TrackKey::Pair(f.src.unwrap_or(UNSPEC), f.dst.unwrap_or(UNSPEC)),
            Track::ByRule => TrackKey::Rule,
            Track::ByFlow => TrackKey::Flow(flow_hash(f)),
        };
        let unique = r.unique_on.map(|u| match u {
            UniqueOn::SrcPort => f.src_port.unwrap_or(0),
            UniqueOn::DstPort => f.dst_port.unwrap_or(0),
        });
        let window = r.seconds.saturating_mul(1000);
        let (mode, count, mult, timeout) = (r.mode, r.count, r.multiplier, r.timeout * 1000);
        let new_action = r.new_action.unwrap_or(RateAction::Alert);
        let full = self.trackers.len() >= self.max_keys;
        let fresh = !self.trackers.contains_key(&(i, key.clone()));
        if fresh && full {
            self.dropped_full += 1;
            return Verdict::Alert(None);
        }
        let t = self.trackers.entry((i, key)).or_insert(Tracker {
            start_ms: now_ms,
            count: 0,
            next: count.max(1),
            timeout_ms: None,
            ports: Vec::new(),
        });
        // A new window starts with the first match and again with the first after it ended.
        // (Backoff has no window; a rate filter in its timeout keeps its window.)
        let windowed = mode != ThresholdType::Backoff && t.timeout_ms.is_none();
        let restart = fresh || (windowed && now_ms.saturating_sub(t.start_ms) > window);
        if restart {
            (t.start_ms, t.count) = (now_ms, 0);
            t.ports.clear();
        }
        let alert = |b: bool| {
            if b {
                Verdict::Alert(None)
            } else {
                Verdict::Silence
            }
        };
        match mode {
            ThresholdType::Suppress => Verdict::Alert(None),
            ThresholdType::Limit => {
                t.count += 1;
                alert(t.count <= count)
            }
            ThresholdType::Threshold => {
                t.count += 1;
                let hit = t.count >= count;
                if hit {
                    t.count = 0;
                }
                alert(hit)
            }
            ThresholdType::Both => {
                t.count += 1;
                alert(t.count == count.max(1))
            }
            ThresholdType::DetectionFilter => {
                match unique {
                    // Distinct values: `count + 1` of them decide, so no more are kept.
                    Some(port) if !t.ports.contains(&port) => {
                        if t.ports.len() <= count as usize {
                            t.ports.push(port);
                        }
                        t.count += 1;
                    }
                    Some(_) => {}
                    None => t.count += 1,
                }
                alert(t.count > count)
            }
            ThresholdType::Backoff => {
                t.count = t.count.saturating_add(1);
                if t.count == t.next {
                    t.next = t.next.saturating_mul(mult.max(2));
                    Verdict::Alert(None)
                } else {
                    Verdict::Silence
                }
            }
            ThresholdType::RateFilter => {
                if let Some(since) = t.timeout_ms {
                    if now_ms.saturating_sub(since) > timeout {
                        (t.timeout_ms, t.start_ms, t.count) = (None, now_ms, 1);
                        return Verdict::Alert(None);
                    }
                    return rate_verdict(new_action);
                }
                t.count += 1;
                if t.count > count {
                    t.timeout_ms = Some(now_ms);
                    rate_verdict(new_action)
                } else {
                    Verdict::Alert(None)
                }
            }
        }
    }

    /// Forgets trackers whose window (and rate-filter timeout) ended before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let rules = &self.rules;
        self.trackers.retain(|(i, _), t| {
            let Some(r) = rules.get(*i) else { return false };
            if r.mode == ThresholdType::Backoff {
                return true;
            }
            let end = t
                .start_ms
                .saturating_add(r.seconds.saturating_mul(1000))
                .max(
                    t.timeout_ms
                        .map_or(0, |s| s.saturating_add(r.timeout * 1000)),
                );
            end >= now_ms
        });
    }

    /// Trackers held.
    pub fn len(&self) -> usize {
        self.trackers.len()
    }

    /// True when no tracker is held.
    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }
}

fn rate_verdict(a: RateAction) -> Verdict {
    match a {
        RateAction::Pass => Verdict::Silence,
        RateAction::Alert => Verdict::Alert(None),
        other => Verdict::Alert(Some(other)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    rule: usize,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
    first_ms: u64,
    events: u64,
    seen: HashSet<String>,
    times: VecDeque<u64>,
}

/// The correlation rules and their leaky buckets; usable alone.
#[derive(Debug)]
pub struct Correlator {
    rules: Vec<CorrelationRule>,
    nsf_name: String,
    buckets: HashMap<GroupKey, Bucket>,
    blackholes: HashMap<GroupKey, u64>,
    max_keys: usize,
    /// Events not poured because the bucket table was full.
    pub dropped_full: u64,
}

impl Correlator {
    /// Buckets for `rules`, at most `max_keys` of them; events carry `nsf_name`.
    pub fn new(rules: Vec<CorrelationRule>, nsf_name: &str, max_keys: usize) -> Self {
        Self {
            rules,
            nsf_name: nsf_name.to_string(),
            buckets: HashMap::new(),
            blackholes: HashMap::new(),
            max_keys,
            dropped_full: 0,
        }
    }

    fn matches(r: &CorrelationRule, f: &Fields<'_>) -> bool {
        (r.kinds.is_empty() || r.kinds.iter().any(|k| k == f.kind))
            && r.activity.as_deref().is_none_or(|a| f.activity == Some(a))
            && (r.actions.is_empty() || r.actions.iter().any(|a| f.action == Some(a.as_str())))
            && r.rule.as_deref().is_none_or(|x| f.rule == Some(x))
            && (r.text.is_empty() || r.text.iter().any(|s| f.holds(s)))
            && !r.not_text.iter().any(|s| f.holds(s))
    }

    /// Pours `m` into the buckets of every rule it matches; appends the events raised.
    pub fn process(&mut self, m: &Message, now_ms: u64, out: &mut Vec<Notice>) {
        let f = Fields::of(m);
        for i in 0..self.rules.len() {
            let r = &self.rules[i];
            if !Self::matches(r, &f) {
                continue;
            }
            let key = GroupKey {
                rule: i,
                src: matches!(r.group_by, GroupBy::Src | GroupBy::SrcDst)
                    .then_some(f.src)
                    .flatten(),
                dst: matches!(r.group_by, GroupBy::Dst | GroupBy::SrcDst)
                    .then_some(f.dst)
                    .flatten(),
            };
            if self
                .blackholes
                .get(&key)
                .is_some_and(|until| now_ms < *until)
            {
                continue;
            }
            let distinct = r.distinct.map(|d| match d {
                Distinct::User => f.user.unwrap_or("").to_string(),
                Distinct::DstPort => f.dst_port.map_or(String::new(), |p| p.to_string()),
                Distinct::SrcPort => f.src_port.map_or(String::new(), |p| p.to_string()),
                Distinct::Dst => f.dst.map_or(String::new(), |a| a.to_string()),
            });
            let (cap, leak) = (r.capacity as f64, r.leakspeed_ms.max(1) as f64);
            let full = self.buckets.len() >= self.max_keys;
            let b = match self.buckets.get_mut(&key) {
                Some(b) => b,
                None if full => {
                    self.dropped_full += 1;
                    continue;
                }
                None => self.buckets.entry(key.clone()).or_insert(Bucket {
                    tokens: cap,
                    last_ms: now_ms,
                    first_ms: now_ms,
                    events: 0,
                    seen: HashSet::new(),
                    times: VecDeque::new(),
                }),
            };
            let span = r.seconds.saturating_mul(1000);
            let empty = if r.count > 0 {
                while b
                    .times
                    .front()
                    .is_some_and(|t| now_ms.saturating_sub(*t) > span)
                {
                    b.times.pop_front();
                }
                b.times.is_empty()
            } else {
                let refill = now_ms.saturating_sub(b.last_ms) as f64 / leak;
                b.tokens = (b.tokens + refill).min(cap);
                b.tokens >= cap
            };
            b.last_ms = now_ms.max(b.last_ms);
            if empty && b.events > 0 {
                // The bucket leaked (or its window slid) empty: CrowdSec destroys it; start afresh.
                (b.events, b.first_ms) = (0, now_ms);
                b.seen.clear();
            }
            if let Some(v) = distinct {
                if b.seen.contains(&v) {
                    continue;
                }
                if b.seen.len() <= r.capacity.max(r.count) as usize {
                    b.seen.insert(v);
                }
            }
            b.events += 1;
            if r.count > 0 {
                b.times.push_back(now_ms);
                if b.times.len() as u64 > r.count {
                    b.times.pop_front();
                }
                if (b.times.len() as u64) < r.count {
                    continue;
                }
            } else if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                continue;
            }
            let (events, first) = (b.events, b.first_ms);
            self.buckets.remove(&key);
            if r.blackhole_s > 0 {
                if self.blackholes.len() >= self.max_keys {
                    self.dropped_full += 1;
                } else {
                    self.blackholes
                        .insert(key.clone(), now_ms.saturating_add(r.blackhole_s * 1000));
                }
            }
            out.push(self.event(i, &key, &f, events, first, now_ms));
        }
    }

    fn event(
        &self,
        i: usize,
        key: &GroupKey,
        f: &Fields<'_>,
        n: u64,
        first: u64,
        now: u64,
    ) -> Notice {
        let r = &self.rules[i];
        let (src, dst) = match r.group_by {
            GroupBy::Rule => (None, None),
            _ => (key.src.or(f.src), key.dst.or(f.dst)),
        };
        let who = src.map_or_else(|| "any source".to_string(), |a| a.to_string());
        let secs = now.saturating_sub(first) / 1000;
        let text = format!(
            "{} from {who}: {n} matching events in {secs} s (rule {})",
            r.emit.attack_type().name(),
            r.name
        );
        let event = IntrusionEvent {
            src_ip: src,
            src_port: None,
            dst_ip: dst,
            dst_port: None,
            rule_name: r.name.clone(),
            protocol: None,
            app: None,
            attack_type: Some(r.emit.attack_type()),
        };
        Notice {
            message: Message {
                common: ts_common(
                    &self.nsf_name,
                    "detect:correlate",
                    now,
                    Severity::High,
                    text,
                ),
                kind: Kind::Intrusion(event),
            },
            phase: Phase::Correlated,
            count: n,
            first_seen_ms: first,
            last_seen_ms: now,
            action: None,
        }
    }

    /// Forgets buckets that leaked empty and blackholes that ended before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let rules = &self.rules;
        self.buckets.retain(|k, b| {
            let Some(r) = rules.get(k.rule) else {
                return false;
            };
            if r.count > 0 {
                return b.last_ms.saturating_add(r.seconds.saturating_mul(1000)) >= now_ms;
            }
            let drain = (r.capacity as f64 - b.tokens).max(0.0) * r.leakspeed_ms as f64;
            (b.last_ms as f64 + drain) >= now_ms as f64
        });
        self.blackholes.retain(|_, until| *until > now_ms);
    }
}

/// What makes two notifications identical for dedup and dampening: kind, NSF, rule name and
/// addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey {
    kind: &'static str,
    nsf: String,
    rule: Option<String>,
    addrs: Vec<(AddrRole, IpAddr)>,
}

impl DedupKey {
    /// The key of `m`.
    pub fn of(m: &Message) -> Self {
        Self {
            kind: m.kind.name(),
            nsf: m.common.nsf_name.clone(),
            rule: m.rule_name().map(str::to_string),
            addrs: m.addresses(),
        }
    }
}

#[derive(Debug, Clone)]
struct Fold {
    first_ms: u64,
    last_ms: u64,
    count: u64,
    end_ms: u64,
    latest: Message,
    action: Option<RateAction>,
}

#[derive(Debug, Clone)]
struct Damper {
    last_emit_ms: u64,
    period_ms: u64,
    pending: Option<Notice>,
}

/// The notification stage: correlation, thresholds, dedup and dampening (see the module docs).
#[derive(Debug)]
pub struct Notifier {
    cfg: NotifyConfig,
    thresholds: Thresholds,
    correlator: Correlator,
    folds: HashMap<DedupKey, Fold>,
    dampers: HashMap<DedupKey, Damper>,
    stats: NotifyStats,
}

impl Notifier {
    /// The stage for `cfg`, or what is wrong with it.
    pub fn new(cfg: NotifyConfig) -> Result<Self, ConfigError> {
        check(&cfg)?;
        Ok(Self {
            thresholds: Thresholds::new(cfg.thresholds.clone(), cfg.max_keys)?,
            correlator: Correlator::new(cfg.correlate.clone(), &cfg.nsf_name, cfg.max_keys),
            folds: HashMap::new(),
            dampers: HashMap::new(),
            stats: NotifyStats::default(),
            cfg,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> NotifyStats {
        let mut s = self.stats;
        s.dropped_full += self.thresholds.dropped_full + self.correlator.dropped_full;
        s
    }

    /// Feeds one message at `now_ms`; appends what is to be stored and emitted now.
    pub fn process(&mut self, m: &Message, now_ms: u64, out: &mut Vec<Notice>) {
        self.stats.received += 1;
        self.correlate(m, now_ms, out);
        let action = match self.thresholds.check(&Fields::of(m), now_ms) {
            Verdict::Silence => {
                self.stats.thresholded += 1;
                return;
            }
            Verdict::Alert(a) => a,
        };
        let key = DedupKey::of(m);
        if let Some(f) = self.folds.get_mut(&key)
            && now_ms < f.end_ms
        {
            f.count += 1;
            f.last_ms = now_ms.max(f.last_ms);
            f.latest = m.clone();
            f.action = action.or(f.action);
            self.stats.folded += 1;
            return;
        }
        if let Some(f) = self.folds.remove(&key) {
            self.close(f, key.clone(), now_ms, out);
        }
        let first = Notice {
            message: m.clone(),
            phase: Phase::First,
            count: 1,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            action,
        };
        if self.cfg.dedup_window_s > 0 {
            if self.folds.len() < self.cfg.max_keys {
                let fold = Fold {
                    first_ms: now_ms,
                    last_ms: now_ms,
                    count: 1,
                    end_ms: now_ms.saturating_add(self.cfg.dedup_window_s * 1000),
                    latest: m.clone(),
                    action,
                };
                self.folds.insert(key.clone(), fold);
            } else {
                self.stats.dropped_full += 1;
            }
        }
        self.emit_keyed(key, first, now_ms, out);
    }

    /// Runs only the correlation rules over `m` (a log kept as it is, e.g. a failed login that
    /// counts towards a brute-force rule); appends the events they raise.
    pub fn correlate(&mut self, m: &Message, now_ms: u64, out: &mut Vec<Notice>) {
        let start = out.len();
        self.correlator.process(m, now_ms, out);
        let raised = out.len() - start;
        if raised == 0 {
            return;
        }
        self.stats.correlated += raised as u64;
        let events: Vec<Notice> = out.drain(start..).collect();
        for n in events {
            self.emit(n, now_ms, out);
        }
    }

    fn close(&mut self, f: Fold, key: DedupKey, now_ms: u64, out: &mut Vec<Notice>) {
        if f.count < 2 {
            return;
        }
        let mut message = f.latest;
        message.common.dampening_type = Some(DampeningType::OnRepetition);
        let n = Notice {
            message,
            phase: Phase::Update,
            count: f.count,
            first_seen_ms: f.first_ms,
            last_seen_ms: f.last_ms,
            action: f.action,
        };
        self.emit_keyed(key, n, now_ms, out);
    }

    fn emit(&mut self, n: Notice, now_ms: u64, out: &mut Vec<Notice>) {
        let key = DedupKey::of(&n.message);
        self.emit_keyed(key, n, now_ms, out);
    }

    fn emit_keyed(&mut self, key: DedupKey, n: Notice, now_ms: u64, out: &mut Vec<Notice>) {
        let period_ms = self
            .cfg
            .dampening_s
            .get(key.kind)
            .map_or(0, |s| s.saturating_mul(1000));
        if period_ms == 0 {
            self.stats.output += 1;
            out.push(n);
            return;
        }
        match self.dampers.get_mut(&key) {
            Some(d) if now_ms < d.last_emit_ms.saturating_add(d.period_ms) => {
                self.stats.dampened += 1;
                d.pending = Some(n);
            }
            Some(d) => {
                d.last_emit_ms = now_ms;
                d.pending = None;
                self.stats.output += 1;
                out.push(n);
            }
            None => {
                if self.dampers.len() < self.cfg.max_keys {
                    let d = Damper {
                        last_emit_ms: now_ms,
                        period_ms,
                        pending: None,
                    };
                    self.dampers.insert(key, d);
                } else {
                    self.stats.dropped_full += 1;
                }
                self.stats.output += 1;
                out.push(n);
            }
        }
    }

    /// Advances the clock (call about once a second); appends fold updates and dampened outputs
    /// that are due.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Notice>) {
        let due: Vec<DedupKey> = self
            .folds
            .iter()
            .filter(|(_, f)| f.end_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(f) = self.folds.remove(&k) {
                self.close(f, k, now_ms, out);
            }
        }
        self.release(now_ms, false, out);
        self.thresholds.expire(now_ms);
        self.correlator.expire(now_ms);
    }

    /// Outputs every fold update and dampened output still held (end of a replay, shutdown).
    pub fn finish(&mut self, now_ms: u64, out: &mut Vec<Notice>) {
        let keys: Vec<DedupKey> = self.folds.keys().cloned().collect();
        for k in keys {
            if let Some(f) = self.folds.remove(&k) {
                self.close(f, k, now_ms, out);
            }
        }
        self.release(now_ms, true, out);
    }

    fn release(&mut self, now_ms: u64, all: bool, out: &mut Vec<Notice>) {
        let mut n = 0u64;
        self.dampers.retain(|_, d| {
            let due = all || now_ms >= d.last_emit_ms.saturating_add(d.period_ms);
            if !due {
                return true;
            }
            match d.pending.take() {
                Some(p) => {
                    n += 1;
                    out.push(p);
                    d.last_emit_ms = now_ms;
                    !all
                }
                None => false,
            }
        });
        self.stats.output += n;
    }
}

fn check(cfg: &NotifyConfig) -> Result<(), ConfigError> {
    let bad = |key: &str, value: String, expected: &'static str| {
        Err(ConfigError::Range {
            key: format!("notify.{key}"),
            value,
            expected,
        })
    };
    if cfg.max_keys == 0 {
        return bad("max_keys", "0".into(), "expected at least 1");
    }
    for k in cfg.dampening_s.keys() {
        if !pharos_model::KIND_NAMES.contains(&k.as_str()) {
            return bad(
                "dampening_s",
                format!("{k:?}"),
                "expected a kind name like \"intrusion\" or \"system-alarm\"",
            );
        }
    }
    for (i, r) in cfg.thresholds.iter().enumerate() {
        let zero_ok = matches!(
            r.mode,
            ThresholdType::Suppress | ThresholdType::DetectionFilter | ThresholdType::RateFilter
        );
        if r.count == 0 && !zero_ok {
            return bad(
                &format!("thresholds[{i}].count"),
                "0".into(),
                "expected at least 1",
            );
        }
    }
    for (i, r) in cfg.correlate.iter().enumerate() {
        if r.name.is_empty() {
            return bad(
                &format!("correlate[{i}].name"),
                "\"\"".into(),
                "expected a name",
            );
        }
        if r.count > 0 && r.seconds == 0 {
            return bad(
                &format!("correlate[{i}].seconds"),
                "0".into(),
                "expected the window length in seconds (at least 1) with count",
            );
        }
    }
    Ok(())
}
