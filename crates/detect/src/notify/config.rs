//! What `[notify]` in `pharos.toml` holds: the stage's settings, threshold rules (Suricata
//! `threshold.config` vocabulary) and correlation rules (CrowdSec vocabulary), and the checks a
//! configuration must pass before the stage is built.

use std::collections::BTreeMap;

use pharos_model::config::{OldUnit, RenamedKey};
use pharos_model::ident::IntrusionAttackType;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Keys of `[notify]` spelled otherwise by earlier releases, still read with a warning.
pub const RENAMED_KEYS: &[RenamedKey] = &[
    RenamedKey::duration("notify", "dedup_window_s", "dedup_window", OldUnit::Secs),
    RenamedKey::duration("notify", "dampening_s", "dampening", OldUnit::Secs),
    RenamedKey::duration(
        "notify.correlate",
        "leakspeed_ms",
        "leakspeed",
        OldUnit::Millis,
    ),
    RenamedKey::duration(
        "notify.correlate",
        "blackhole_s",
        "blackhole",
        OldUnit::Secs,
    ),
];

/// Configuration of the notification stage (`[notify]` in `pharos.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// nsf-name of the events raised by correlation rules.
    pub nsf_name: String,
    /// Identical notifications within this window, whole seconds, fold into one (key
    /// `dedup_window`; "0s": no folding).
    #[serde(rename = "dedup_window", with = "pharos_model::config::secs")]
    pub dedup_window_s: u64,
    /// RFC 8641 `dampening-period` per kind name, whole seconds (key `dampening`, e.g.
    /// `{ intrusion = "30s" }`).
    #[serde(rename = "dampening", with = "pharos_model::config::secs_map")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UniqueOn {
    /// Count distinct source ports.
    SrcPort,
    /// Count distinct destination ports.
    DstPort,
}

/// Action a `rate_filter` switches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
    pub(super) fn attack_type(self) -> IntrusionAttackType {
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    /// Time to leak one event, milliseconds (key `leakspeed`, default "10s").
    #[serde(
        rename = "leakspeed",
        default = "default_leak",
        with = "pharos_model::config::millis"
    )]
    pub leakspeed_ms: u64,
    /// Sliding window: events (distinct values with `distinct`) that raise the event.
    #[serde(default)]
    pub count: u64,
    /// Sliding window: length, seconds.
    #[serde(default)]
    pub seconds: u64,
    /// How long a group stays silent after an overflow, whole seconds (key `blackhole`).
    #[serde(rename = "blackhole", default, with = "pharos_model::config::secs")]
    pub blackhole_s: u64,
    /// Attack type of the event raised.
    pub emit: Emit,
}

impl NotifyConfig {
    /// Checks the keys and rules; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(self)?;
        super::thresholds::Thresholds::new(self.thresholds.clone(), self.max_keys).map(|_| ())
    }
}

fn default_leak() -> u64 {
    10_000
}

/// What is wrong with `cfg`, if anything: each error names the `notify.` key and what it expects.
pub(super) fn check(cfg: &NotifyConfig) -> Result<(), ConfigError> {
    let bad = |key: &str, value: String, expected: &'static str| {
        Err(ConfigError::new("notify", key, value, expected))
    };
    if cfg.max_keys == 0 {
        return bad("max_keys", "0".into(), "expected at least 1");
    }
    for k in cfg.dampening_s.keys() {
        if !pharos_model::KIND_NAMES.contains(&k.as_str()) {
            return bad(
                "dampening",
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
