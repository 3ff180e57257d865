//! Learned rates (baseline mode) that outlive a host's state: idle hosts of baseline groups are
//! parked instead of forgotten, and [`DdosDetector::learned`] / [`DdosDetector::restore_learned`]
//! carry them across restarts.
//!
//! Contract:
//! - A host of a baseline group evicted for idleness (`idle_evict_s`) with something learned is
//!   parked: its first-seen time (learning progress) and learned rates per class are kept, at most
//!   `max_hosts` of them. When it gets flows again it takes them back as they were: the idle
//!   seconds before eviction already pulled them down, and a longer silence must not make its
//!   ordinary traffic look like an attack when it comes back.
//! - [`DdosDetector::learned`] lists the learned rates of every host of a baseline group, live or
//!   parked. [`DdosDetector::restore_learned`] parks such a list (e.g. saved before a restart);
//!   hosts no longer in a baseline group, unknown class names and rates that are not finite and
//!   non-negative are skipped. Prefixes measured as a whole (aggregates) are not carried.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use foldhash::fast::RandomState;
use pharos_model::flow::{addr_from_bytes, addr_to_bytes};

use super::{DdosDetector, Host};
use crate::class::TrafficClass;
use crate::config::{Group, Metrics, Target};

/// An idle host of a baseline group, kept for what it learned.
#[derive(Debug, Clone)]
pub(crate) struct Dormant {
    first_seen_ms: u64,
    learned: Vec<(TrafficClass, Metrics)>,
}

/// One host's learned rates, as saved across restarts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LearnedHost {
    /// The host's address.
    pub addr: IpAddr,
    /// When it was first seen, ms on the detector's clock (learning counts from there).
    pub first_seen_ms: u64,
    /// Learned `[packets/s, bytes/s, flows/s]` per traffic class name.
    pub rates: BTreeMap<String, Metrics>,
}

/// Parks the idle host `h` (key `k`) if its group learns and it learned something.
pub(crate) fn park(
    dormant: &mut HashMap<(u128, u8), Dormant, RandomState>,
    max: usize,
    k: (u128, u8),
    h: &Host,
    groups: &[Group],
) {
    if h.victim.prefix_len < 128 || groups[h.group as usize].baseline.is_none() {
        return;
    }
    let learned: Vec<(TrafficClass, Metrics)> = h
        .classes
        .iter()
        .zip(&h.learned)
        .filter(|(_, l)| l.iter().any(|x| *x > 0.0))
        .map(|(c, l)| (*c, *l))
        .collect();
    if learned.is_empty() || (dormant.len() >= max && !dormant.contains_key(&k)) {
        return;
    }
    dormant.insert(
        k,
        Dormant {
            first_seen_ms: h.first_seen_ms,
            learned,
        },
    );
}

/// Gives a new host state `h` what it learned before it was parked.
pub(crate) fn wake(h: &mut Host, d: Dormant, ring: usize) {
    h.first_seen_ms = d.first_seen_ms;
    for (c, l) in d.learned {
        let slot = h.slot(c, ring);
        h.learned[slot] = l;
    }
}

impl DdosDetector {
    /// The learned rates of every host of a baseline group, live or parked, ordered by address.
    pub fn learned(&self) -> Vec<LearnedHost> {
        let mut out = Vec::new();
        for h in self.hosts.values() {
            let group = &self.c.groups[h.group as usize];
            if h.victim.prefix_len < 128 || group.baseline.is_none() {
                continue;
            }
            let rates: BTreeMap<String, Metrics> = h
                .classes
                .iter()
                .zip(&h.learned)
                .filter(|(_, l)| l.iter().any(|x| *x > 0.0))
                .map(|(c, l)| (c.name().to_string(), *l))
                .collect();
            if !rates.is_empty() {
                out.push(LearnedHost {
                    addr: addr_from_bytes(h.victim.addr, h.victim.v4),
                    first_seen_ms: h.first_seen_ms,
                    rates,
                });
            }
        }
        for (&(a, flags), d) in &self.dormant {
            out.push(LearnedHost {
                addr: addr_from_bytes(a.to_be_bytes(), flags & 1 != 0),
                first_seen_ms: d.first_seen_ms,
                rates: d
                    .learned
                    .iter()
                    .map(|(c, l)| (c.name().to_string(), *l))
                    .collect(),
            });
        }
        out.sort_by_key(|h| h.addr);
        out
    }

    /// Parks learned rates saved earlier (see the module's contract); returns how many hosts
    /// were taken.
    pub fn restore_learned(&mut self, hosts: &[LearnedHost]) -> usize {
        let mut taken = 0;
        for l in hosts {
            let (bytes, v4) = addr_to_bytes(&l.addr);
            let key = (u128::from_be_bytes(bytes), u8::from(v4));
            if self.hosts.contains_key(&key)
                || (self.dormant.len() >= self.cfg.max_hosts && !self.dormant.contains_key(&key))
                || self.dst_group(key.0, v4).and_then(|g| g.baseline).is_none()
            {
                continue;
            }
            let learned: Vec<(TrafficClass, Metrics)> = l
                .rates
                .iter()
                .filter_map(|(name, r)| {
                    let ok = r.iter().all(|x| x.is_finite() && *x >= 0.0);
                    TrafficClass::parse(name).filter(|_| ok).map(|c| (c, *r))
                })
                .collect();
            if learned.is_empty() {
                continue;
            }
            self.dormant.insert(
                key,
                Dormant {
                    first_seen_ms: l.first_seen_ms,
                    learned,
                },
            );
            taken += 1;
        }
        taken
    }

    /// The host group a destination address belongs to, if it is monitored.
    fn dst_group(&self, addr: u128, v4: bool) -> Option<&Group> {
        match self.c.dst.lookup(&addr.to_be_bytes(), v4)? {
            Target::Group(g) | Target::GroupAndAggregate { group: g, .. } => {
                self.c.groups.get(g as usize)
            }
            Target::Allowed => None,
        }
    }
}
