//! Threshold rules (Suricata `threshold`, `limit`, `both`, `detection_filter`, `backoff`,
//! `rate_filter` and `suppress` semantics) and their per-key trackers.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use ipnet::IpNet;

use super::{Fields, RateAction, ThresholdRule, ThresholdType, Track, UniqueOn};
use crate::config::ConfigError;

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
                    .map_err(|_| {
                        ConfigError::new(
                            "notify",
                            format!("thresholds[{i}].ip"),
                            format!("{s:?}"),
                            "expected a prefix like \"192.0.2.0/24\" or \"2001:db8::/32\"",
                        )
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
