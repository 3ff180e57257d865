//! Periodic reports: counts by kind and severity, top attacked hosts and sources, attacks.
//!
//! Contract: a [`ReportBuilder`] takes the messages of one period in any order and gives a
//! [`Report`] that serialises to JSON (serde) and renders as text ([`std::fmt::Display`]).
//! Memory is bounded: top lists are Space-Saving sketches of `sketch` keys (counts are upper
//! bounds, exact while fewer distinct hosts than `sketch` were seen) and at most `max_attacks`
//! DDoS attacks are tracked (the rest are counted in `attacks_not_listed`).
//!
//! - Attacked hosts are the victims (`attack-dst-ip`) of DDoS events and the destination
//!   addresses of the other attack events (virus, intrusion, web attack, VoIP/VoCN, botnet);
//!   sources are their source addresses. A DDoS attack stored as several updates counts once.
//! - An attack *started* in the period when its `start-time` is in `[from, to)`, and *ended* when
//!   its `end-time` is; its updates are merged (latest end, peak rate and throughput).
//! - [`Periodic`] cuts the clock into aligned periods, for the report task and for the
//!   `i2nsf-counter` period (minutes in the module).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use pharos_model::ident::Identity;
use pharos_model::{AddrRole, KIND_NAMES, Kind, Message, Notification, Severity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::sketch::SpaceSaving;

/// Keys of `[report]` spelled otherwise by earlier releases, still read with a warning.
pub const RENAMED_KEYS: &[pharos_model::config::RenamedKey] = &[
    pharos_model::config::RenamedKey::duration(
        "report",
        "interval_s",
        "interval",
        pharos_model::config::OldUnit::Secs,
    ),
    pharos_model::config::RenamedKey::duration(
        "report",
        "counter_period_min",
        "counter_period",
        pharos_model::config::OldUnit::Minutes,
    ),
];

/// Configuration of periodic reports (`[report]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// Report period, whole seconds (key `interval`); 0 disables the periodic report. Default
    /// "1h".
    #[serde(rename = "interval", with = "pharos_model::config::secs")]
    pub interval_s: u64,
    /// Rows of each top list. Default 10.
    pub top: usize,
    /// Distinct hosts each top list tracks (Space-Saving capacity). Default 256.
    pub sketch: usize,
    /// Most attacks listed; further ones are only counted. Default 1000.
    pub max_attacks: usize,
    /// `i2nsf-counter` period, whole minutes (key `counter_period`, e.g. "5m"): counters are
    /// reported this often; "0s" (default) disables.
    #[serde(rename = "counter_period", with = "minutes")]
    pub counter_period_min: u16,
}

/// `#[serde(with)]` of a period held in whole minutes and written as a duration (`"5m"`).
mod minutes {
    use pharos_model::config::ConfigDuration;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let v = ConfigDuration::deserialize(d)?;
        let ms = v.as_millis();
        if !ms.is_multiple_of(60_000) {
            return Err(serde::de::Error::custom(format!(
                "\"{v}\": expected whole minutes, e.g. \"5m\""
            )));
        }
        u16::try_from(ms / 60_000)
            .map_err(|_| serde::de::Error::custom(format!("\"{v}\": too long a period")))
    }

    pub fn serialize<S: Serializer>(v: &u16, s: S) -> Result<S::Ok, S::Error> {
        ConfigDuration::from_secs(u64::from(*v) * 60).serialize(s)
    }
}

impl ReportConfig {
    /// Checks the keys; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        for (key, v) in [("top", self.top), ("sketch", self.sketch)] {
            if v == 0 {
                return Err(crate::ConfigError::new(
                    "report",
                    key,
                    0,
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            interval_s: 3600,
            top: 10,
            sketch: 256,
            max_attacks: 1000,
            counter_period_min: 0,
        }
    }
}

/// A host and how many attack events (or attacks) name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCount {
    /// The address.
    pub addr: IpAddr,
    /// Events naming it (an upper bound when the sketch overflowed).
    pub count: u64,
}

/// One DDoS attack that started or ended in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttackLine {
    /// NSF (or detector) that reported it.
    pub nsf: String,
    /// `rule-name`.
    pub rule: String,
    /// `attack-type` identity name.
    pub attack_type: Option<String>,
    /// Victims (`attack-dst-ip`).
    pub victims: Vec<IpAddr>,
    /// `start-time`.
    pub start: Timestamp,
    /// `end-time`, if it ended.
    pub end: Option<Timestamp>,
    /// Highest `attack-rate` reported, packets/s.
    pub peak_pps: Option<u64>,
    /// Highest `attack-throughput` reported, bytes/s.
    pub peak_bytes_per_s: Option<u64>,
    /// Started in the period.
    pub started: bool,
    /// Ended in the period.
    pub ended: bool,
}

/// The report of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Start of the period (inclusive), if bounded.
    pub from: Option<Timestamp>,
    /// End of the period (exclusive), if bounded.
    pub to: Option<Timestamp>,
    /// Messages counted.
    pub messages: u64,
    /// Messages per kind name (kinds with none are left out).
    pub by_kind: BTreeMap<String, u64>,
    /// Messages per severity name (severities with none are left out).
    pub by_severity: BTreeMap<String, u64>,
    /// Most attacked hosts, most first.
    pub top_attacked: Vec<HostCount>,
    /// Most frequent attack sources, most first.
    pub top_sources: Vec<HostCount>,
    /// DDoS attacks started in the period.
    pub attacks_started: u64,
    /// DDoS attacks ended in the period.
    pub attacks_ended: u64,
    /// The attacks started or ended in the period, by start time.
    pub attacks: Vec<AttackLine>,
    /// Attacks past the `max_attacks` tracked: in neither the list nor the totals.
    pub attacks_not_listed: u64,
}

type AttackKey = (String, String, Timestamp, Option<IpAddr>);

/// Builds a [`Report`] from the messages of one period.
#[derive(Debug)]
pub struct ReportBuilder {
    cfg: ReportConfig,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    messages: u64,
    by_kind: [u64; KIND_NAMES.len()],
    by_severity: [u64; Severity::ALL.len()],
    attacked: SpaceSaving<IpAddr>,
    sources: SpaceSaving<IpAddr>,
    attacks: BTreeMap<AttackKey, AttackLine>,
    not_listed: u64,
}

fn within(t: Timestamp, from: Option<Timestamp>, to: Option<Timestamp>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
}

impl ReportBuilder {
    /// A builder for the period `[from, to)` (`None`: unbounded on that side).
    pub fn new(cfg: &ReportConfig, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        Self {
            cfg: cfg.clone(),
            from,
            to,
            messages: 0,
            by_kind: [0; KIND_NAMES.len()],
            by_severity: [0; Severity::ALL.len()],
            attacked: SpaceSaving::new(cfg.sketch),
            sources: SpaceSaving::new(cfg.sketch),
            attacks: BTreeMap::new(),
            not_listed: 0,
        }
    }

    /// Counts one message of the period.
    pub fn add(&mut self, msg: &Message) {
        self.messages += 1;
        let name = msg.kind.name();
        if let Some(i) = KIND_NAMES.iter().position(|k| *k == name) {
            self.by_kind[i] += 1;
        }
        if let Some(i) = Severity::ALL.iter().position(|s| *s == msg.common.severity) {
            self.by_severity[i] += 1;
        }
        match &msg.kind {
            Kind::Ddos(d) => {
                let key = (
                    msg.common.nsf_name.clone(),
                    d.rule_name.clone(),
                    d.start_time,
                    d.attack_dst_ip.first().copied(),
                );
                if let Some(line) = self.attacks.get_mut(&key) {
                    line.end = line.end.max(d.end_time);
                    line.ended = line.end.is_some_and(|e| within(e, self.from, self.to));
                    line.peak_pps = line.peak_pps.max(d.attack_rate);
                    line.peak_bytes_per_s = line.peak_bytes_per_s.max(d.attack_throughput);
                    return;
                }
                self.count_hosts(msg);
                let started = within(d.start_time, self.from, self.to);
                let ended = d.end_time.is_some_and(|e| within(e, self.from, self.to));
                if self.attacks.len() >= self.cfg.max_attacks {
                    self.not_listed += 1;
                    return;
                }
                let line = AttackLine {
                    nsf: msg.common.nsf_name.clone(),
                    rule: d.rule_name.clone(),
                    attack_type: d.attack_type.map(|t| t.name().to_string()),
                    victims: d.attack_dst_ip.clone(),
                    start: d.start_time,
                    end: d.end_time,
                    peak_pps: d.attack_rate,
                    peak_bytes_per_s: d.attack_throughput,
                    started,
                    ended,
                };
                self.attacks.insert(key, line);
            }
            k if k.notification() == Notification::NsfEvent => self.count_hosts(msg),
            _ => {}
        }
    }

    fn count_hosts(&mut self, msg: &Message) {
        for (role, a) in msg.addresses() {
            match role {
                AddrRole::Dst => self.attacked.add(a, 1),
                AddrRole::Src => self.sources.add(a, 1),
            }
        }
    }

    /// The report.
    pub fn finish(self) -> Report {
        let named = |names: &mut dyn Iterator<Item = &str>, counts: &[u64]| {
            names
                .zip(counts)
                .filter(|(_, c)| **c > 0)
                .map(|(n, c)| (n.to_string(), *c))
                .collect::<BTreeMap<_, _>>()
        };
        let top = |s: &SpaceSaving<IpAddr>| {
            s.top(self.cfg.top)
                .into_iter()
                .map(|e| HostCount {
                    addr: e.key,
                    count: e.count,
                })
                .collect::<Vec<_>>()
        };
        let mut attacks: Vec<AttackLine> = self
            .attacks
            .into_values()
            .filter(|a| a.started || a.ended)
            .collect();
        attacks.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.rule.cmp(&b.rule)));
        Report {
            from: self.from,
            to: self.to,
            messages: self.messages,
            by_kind: named(&mut KIND_NAMES.iter().copied(), &self.by_kind),
            by_severity: named(
                &mut Severity::ALL.iter().map(|s| s.as_str()),
                &self.by_severity,
            ),
            top_attacked: top(&self.attacked),
            top_sources: top(&self.sources),
            attacks_started: attacks.iter().filter(|a| a.started).count() as u64,
            attacks_ended: attacks.iter().filter(|a| a.ended).count() as u64,
            attacks,
            attacks_not_listed: self.not_listed,
        }
    }
}

impl Report {
    /// The report of `msgs` over `[from, to)`.
    pub fn from_messages<'a>(
        cfg: &ReportConfig,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        msgs: impl IntoIterator<Item = &'a Message>,
    ) -> Self {
        let mut b = ReportBuilder::new(cfg, from, to);
        for m in msgs {
            b.add(m);
        }
        b.finish()
    }
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Pharos report {} .. {}", time(self.from), time(self.to))?;
        writeln!(f, "messages: {}", self.messages)?;
        let sev: Vec<String> = Severity::ALL
            .iter()
            .filter_map(|s| {
                self.by_severity
                    .get(s.as_str())
                    .map(|c| format!("{} {c}", s.as_str()))
            })
            .collect();
        writeln!(f, "by severity: {}", sev.join(", "))?;
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, c)| format!("{k} {c}"))
            .collect();
        writeln!(f, "by kind: {}", kinds.join(", "))?;
        for (title, list) in [
            ("top attacked hosts", &self.top_attacked),
            ("top sources", &self.top_sources),
        ] {
            writeln!(f, "{title}:")?;
            for h in list {
                writeln!(f, "  {:<39} {}", h.addr.to_string(), h.count)?;
            }
        }
        writeln!(
            f,
            "attacks: {} started, {} ended",
            self.attacks_started, self.attacks_ended
        )?;
        for a in &self.attacks {
            let victims: Vec<String> = a.victims.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "  {} .. {}  {}  {}  {}  peak {} pps {} B/s  ({})",
                time(Some(a.start)),
                time(a.end),
                a.attack_type.as_deref().unwrap_or("-"),
                victims.join(","),
                a.rule,
                a.peak_pps.unwrap_or(0),
                a.peak_bytes_per_s.unwrap_or(0),
                a.nsf
            )?;
        }
        if self.attacks_not_listed > 0 {
            writeln!(
                f,
                "  ... {} more attacks not listed",
                self.attacks_not_listed
            )?;
        }
        Ok(())
    }
}

/// Aligned periods of a clock: the report task and the `i2nsf-counter` period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    period_ms: u64,
    next_end_ms: Option<u64>,
}

impl Periodic {
    /// Periods of `period_ms` (0 never falls due).
    pub fn new(period_ms: u64) -> Self {
        Self {
            period_ms,
            next_end_ms: None,
        }
    }

    /// The periods of the counters for `cfg.counter_period_min`.
    pub fn counters(cfg: &ReportConfig) -> Self {
        Self::new(u64::from(cfg.counter_period_min) * 60_000)
    }

    /// The report periods for `cfg.interval_s`.
    pub fn reports(cfg: &ReportConfig) -> Self {
        Self::new(cfg.interval_s.saturating_mul(1000))
    }

    /// The period `[start, end)` in Unix ms that ended at or before `now_ms` and was not yet
    /// returned (periods are aligned to multiples of the length; the first call only arms).
    /// Periods missed while the clock jumped are folded into the one returned.
    pub fn due(&mut self, now_ms: u64) -> Option<(u64, u64)> {
        if self.period_ms == 0 {
            return None;
        }
        let Some(end) = self.next_end_ms else {
            let end = (now_ms / self.period_ms).saturating_add(1);
            self.next_end_ms = Some(end.saturating_mul(self.period_ms));
            return None;
        };
        if now_ms < end {
            return None;
        }
        let last_end = now_ms / self.period_ms * self.period_ms;
        let start = end - self.period_ms;
        self.next_end_ms = Some(last_end.saturating_add(self.period_ms));
        Some((start, last_end))
    }
}

/// Most messages one window report reads ([`report_window`]).
pub const MAX_REPORT_MESSAGES: usize = 100_000;

/// A report and how much of its window it read.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    /// The report.
    pub report: Report,
    /// Messages read.
    pub read: usize,
    /// Earliest event time read when the cap was reached; `None` when the window was read whole.
    pub covered_from: Option<Timestamp>,
}

/// The report of `[from, to)` over `messages` (newest first, as a store pages them), at most
/// `cap` of them; the first error ends it. The messages come from wherever they are kept (the
/// message store's pages in the daemon and the API), so this logic has no storage of its own.
/// Past `cap` the report covers the newest part of the window, and says from when.
pub fn report_window<E>(
    cfg: &ReportConfig,
    from: Timestamp,
    to: Timestamp,
    cap: usize,
    messages: impl IntoIterator<Item = Result<Message, E>>,
) -> Result<WindowReport, E> {
    let mut b = ReportBuilder::new(cfg, Some(from), Some(to));
    let mut read = 0;
    let mut earliest = None;
    for m in messages {
        let m = m?;
        if read >= cap {
            return Ok(WindowReport {
                report: b.finish(),
                read,
                covered_from: earliest,
            });
        }
        b.add(&m);
        earliest = Some(m.common.event_time);
        read += 1;
    }
    Ok(WindowReport {
        report: b.finish(),
        read,
        covered_from: None,
    })
}

#[cfg(test)]
mod tests;
