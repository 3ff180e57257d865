//! Correlation rules (CrowdSec leaky-bucket and sliding-window semantics): buckets per group that
//! raise an intrusion event when they overflow.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use pharos_model::ident::Identity;
use pharos_model::{IntrusionEvent, Kind, Message, Severity};

use super::{CorrelationRule, Distinct, Fields, GroupBy, Notice, Phase};
use crate::ddos::ts_common;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct GroupKey {
    rule: usize,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub(super) struct Bucket {
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
    pub(super) buckets: HashMap<GroupKey, Bucket>,
    pub(super) blackholes: HashMap<GroupKey, u64>,
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
