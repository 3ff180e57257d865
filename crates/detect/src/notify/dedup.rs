//! The notification stage itself: identical notifications folded within the dedup window, and
//! RFC 8641 dampening per kind, after the correlation and threshold rules.

use std::collections::HashMap;
use std::net::IpAddr;

use pharos_model::ident::DampeningType;
use pharos_model::{AddrRole, Message};

use super::config::check;
use super::{
    Correlator, Fields, Notice, NotifyConfig, NotifyStats, Phase, RateAction, Thresholds, Verdict,
};
use crate::config::ConfigError;

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
pub(super) struct Fold {
    first_ms: u64,
    last_ms: u64,
    count: u64,
    end_ms: u64,
    latest: Message,
    action: Option<RateAction>,
}

#[derive(Debug, Clone)]
pub(super) struct Damper {
    last_emit_ms: u64,
    period_ms: u64,
    pending: Option<Notice>,
}

/// The notification stage: correlation, thresholds, dedup and dampening (see the module docs).
#[derive(Debug)]
pub struct Notifier {
    cfg: NotifyConfig,
    pub(super) thresholds: Thresholds,
    correlator: Correlator,
    pub(super) folds: HashMap<DedupKey, Fold>,
    pub(super) dampers: HashMap<DedupKey, Damper>,
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
