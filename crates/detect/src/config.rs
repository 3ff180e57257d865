//! Detector configuration (serde, for the `[detect]` tables of `pharos.toml`) and its validation.
//!
//! Contract: every field has a default ([`Default`] impls below are the documented defaults);
//! the detectors' `new` is the only place that rejects a config, with a [`ConfigError`] that
//! names the key, the value and what was expected.

use crate::class::{NCLASS, TrafficClass};
use crate::prefix::PrefixMap;
use ipnet::IpNet;
use pharos_model::config::{OldUnit, RenamedKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A configuration a detector cannot run with: section, key, value and what was expected.
pub use pharos_model::config::ConfigError;

/// Keys of `[detect]` spelled otherwise by earlier releases, still read with a warning.
pub const RENAMED_KEYS: &[RenamedKey] = &[
    RenamedKey::duration("detect.ddos", "window_s", "window", OldUnit::Secs),
    RenamedKey::duration("detect.ddos", "delay_s", "delay", OldUnit::Secs),
    RenamedKey::duration("detect.ddos", "hold_s", "hold", OldUnit::Secs),
    RenamedKey::duration(
        "detect.ddos",
        "update_interval_s",
        "update_interval",
        OldUnit::Secs,
    ),
    RenamedKey::duration("detect.ddos", "idle_evict_s", "idle_evict", OldUnit::Secs),
    RenamedKey::duration(
        "detect.ddos.baseline",
        "learning_s",
        "learning",
        OldUnit::Secs,
    ),
    RenamedKey::duration(
        "detect.ddos.baseline",
        "half_life_s",
        "half_life",
        OldUnit::Secs,
    ),
    RenamedKey::duration(
        "detect.ddos.groups.baseline",
        "learning_s",
        "learning",
        OldUnit::Secs,
    ),
    RenamedKey::duration(
        "detect.ddos.groups.baseline",
        "half_life_s",
        "half_life",
        OldUnit::Secs,
    ),
    RenamedKey::duration("detect.scan", "window_s", "window", OldUnit::Secs),
];

/// Per-class limits; each absent metric inherits the global default, and `0` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Packets per second.
    pub pps: Option<u64>,
    /// Bits per second.
    pub bps: Option<u64>,
    /// Flows per second.
    pub fps: Option<u64>,
}

impl Limit {
    const fn new(pps: u64, bps: u64, fps: u64) -> Self {
        Self {
            pps: Some(pps),
            bps: Some(bps),
            fps: Some(fps),
        }
    }
    /// `self` with absent metrics taken from `base`.
    fn over(self, base: Limit) -> Limit {
        Limit {
            pps: self.pps.or(base.pps),
            bps: self.bps.or(base.bps),
            fps: self.fps.or(base.fps),
        }
    }
}

/// Baseline mode: per host and class, an exponentially weighted moving average of each rate,
/// learned while the host is not under attack. After `learning` of a host being seen,
/// its threshold is `max(floor, multiplier * learned)` per metric instead of the absolute one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Whether baseline mode is on (default false: absolute thresholds only).
    pub enabled: bool,
    /// How long a host is observed before its learned rate is used, whole seconds (key
    /// `learning`, default "1d").
    #[serde(rename = "learning", with = "pharos_model::config::secs")]
    pub learning_s: u64,
    /// Half-life of the moving average, whole seconds (key `half_life`, default "1h").
    #[serde(rename = "half_life", with = "pharos_model::config::secs")]
    pub half_life_s: u64,
    /// Threshold = multiplier x learned rate (default 3.0).
    pub multiplier: f64,
    /// Lowest baseline threshold, per metric, for every class (default 1000 pps, 10 Mbit/s,
    /// 100 flows/s); a metric disabled in the absolute thresholds stays disabled.
    pub floor: Limit,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            learning_s: 86_400,
            half_life_s: 3_600,
            multiplier: 3.0,
            floor: Limit::new(1_000, 10_000_000, 100),
        }
    }
}

/// A named set of hosts with its own thresholds; the longest configured prefix decides a host's
/// group.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostGroupConfig {
    /// Group name (used in rule names: `<group>/<class>/<metric>`).
    pub name: String,
    /// Prefixes of the group (monitored, like `networks`).
    pub prefixes: Vec<String>,
    /// Per-class limits; absent metrics inherit the global ones.
    pub thresholds: BTreeMap<TrafficClass, Limit>,
    /// Baseline mode for this group; absent: the global one.
    pub baseline: Option<BaselineConfig>,
    /// Limits for each prefix of the group taken as a whole (an attack spread over many of its
    /// hosts, "carpet bombing"); reported on the prefix's network address as
    /// `<group>-aggregate/<class>/<metric>`. Empty (the default): no aggregate; absent metrics
    /// are off.
    pub aggregate: BTreeMap<TrafficClass, Limit>,
}

/// DDoS detector configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdosConfig {
    /// `nsf-name` of the events (default `pharos`).
    pub nsf_name: String,
    /// Monitored prefixes (group `default`); destinations outside every network and group are
    /// ignored.
    pub networks: Vec<String>,
    /// Host groups with their own thresholds.
    pub groups: Vec<HostGroupConfig>,
    /// Global per-class limits, over the built-in defaults ([`default_limits`]).
    pub thresholds: BTreeMap<TrafficClass, Limit>,
    /// Destinations never alarmed (longest prefix wins against networks and groups).
    pub allow: Vec<String>,
    /// Sources whose flows are ignored.
    pub allow_src: Vec<String>,
    /// Rates are averaged over this window, whole seconds (key `window`, default "5s", "1s" to
    /// "60s").
    #[serde(rename = "window", with = "pharos_model::config::secs")]
    pub window_s: u32,
    /// The window ends this long before now, so that flows exported at their end have arrived
    /// (key `delay`, default "2s", "0s" to "5m"); set it to the exporters' active timeout for
    /// exact rates.
    #[serde(rename = "delay", with = "pharos_model::config::secs")]
    pub delay_s: u32,
    /// An attack ends when its rate stayed below the threshold this long (key `hold`, default
    /// "30s").
    #[serde(rename = "hold", with = "pharos_model::config::secs")]
    pub hold_s: u32,
    /// An `Updated` is emitted this often while an attack lasts (key `update_interval`, default
    /// "10s", "0s" = never).
    #[serde(rename = "update_interval", with = "pharos_model::config::secs")]
    pub update_interval_s: u32,
    /// Most destination hosts tracked at once; flows to further hosts are counted and dropped
    /// (default 262144).
    pub max_hosts: usize,
    /// A host with no traffic and no attack for this long is forgotten (key `idle_evict`,
    /// default "10m").
    #[serde(rename = "idle_evict", with = "pharos_model::config::secs")]
    pub idle_evict_s: u32,
    /// Heavy-hitter sketch capacity per attack (default 64).
    pub sketch_capacity: usize,
    /// How many top sources and ports an event lists (default 10).
    pub top_n: usize,
    /// Global baseline mode.
    pub baseline: BaselineConfig,
}

impl Default for DdosConfig {
    fn default() -> Self {
        Self {
            nsf_name: "pharos".into(),
            networks: Vec::new(),
            groups: Vec::new(),
            thresholds: BTreeMap::new(),
            allow: Vec::new(),
            allow_src: Vec::new(),
            window_s: 5,
            delay_s: 2,
            hold_s: 30,
            update_interval_s: 10,
            max_hosts: 262_144,
            idle_evict_s: 600,
            sketch_capacity: 64,
            top_n: 10,
            baseline: BaselineConfig::default(),
        }
    }
}

/// Built-in global limits per class (pps, bits/s, flows/s; 0 = metric not used).
pub fn default_limits(c: TrafficClass) -> Limit {
    use TrafficClass::*;
    const AMP: Limit = Limit::new(5_000, 50_000_000, 0);
    match c {
        All => Limit::new(200_000, 2_000_000_000, 0),
        Tcp => Limit::new(0, 0, 20_000),
        Syn | SynAck | FinRst => Limit::new(20_000, 0, 0),
        Ack => Limit::new(100_000, 0, 0),
        Udp => Limit::new(100_000, 1_000_000_000, 0),
        Icmpv4 | Icmpv6 | Fragment | Sip => Limit::new(10_000, 0, 0),
        DnsQuery => Limit::new(20_000, 0, 0),
        DnsReply => Limit::new(10_000, 100_000_000, 0),
        Ntp | Ssdp | Memcached | Cldap | Chargen | Snmp => AMP,
        Http | Https | Tls => Limit::new(0, 0, 5_000),
    }
}

/// Thresholds of one metric set: `[pps, bytes/s, flows/s]`, `INFINITY` when disabled.
pub(crate) type Metrics = [f64; 3];

/// Metric names, in [`Metrics`] order.
pub(crate) const METRIC_NAMES: [&str; 3] = ["pps", "bps", "fps"];

fn to_metrics(l: Limit) -> Metrics {
    let f = |v: Option<u64>, scale: f64| match v {
        Some(0) | None => f64::INFINITY,
        Some(x) => x as f64 * scale,
    };
    // bps is configured in bits, measured in bytes
    [f(l.pps, 1.0), f(l.bps, 0.125), f(l.fps, 1.0)]
}

/// A compiled baseline mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baseline {
    pub learning_ms: u64,
    /// EWMA weight kept per second: `0.5^(1/half_life_s)`.
    pub keep_per_s: f64,
    pub multiplier: f64,
    pub floor: Metrics,
}

/// A compiled host group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub name: String,
    pub limits: [Metrics; NCLASS],
    /// Per metric, the lowest limit of any class.
    pub min_limits: Metrics,
    pub baseline: Option<Baseline>,
}

/// Per metric, the lowest of `limits`.
fn min_limits(limits: &[Metrics; NCLASS]) -> Metrics {
    let mut m = [f64::INFINITY; 3];
    for l in limits {
        for (x, y) in m.iter_mut().zip(l) {
            *x = x.min(*y);
        }
    }
    m
}

/// What the destination prefix table maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Monitored, in group `i`.
    Group(u16),
    /// Monitored in `group`; the prefix (`len` bits of the 16-byte form) is also measured as a
    /// whole, in group `aggregate`.
    GroupAndAggregate { group: u16, aggregate: u16, len: u8 },
    /// Allow-listed: never alarmed.
    Allowed,
}

/// A validated, compiled [`DdosConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub dst: PrefixMap<Target>,
    pub allow_src: PrefixMap<()>,
    pub groups: Vec<Group>,
}

fn parse_net(key: &str, s: &str) -> Result<IpNet, ConfigError> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| {
            at(
                key,
                format!("{s:?}"),
                "expected a prefix like \"192.0.2.0/24\" or \"2001:db8::/32\"",
            )
        })
}

fn range(key: &str, ok: bool, value: impl ToString, expected: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(at(key, value.to_string(), expected))
    }
}

/// The error of the dotted `path` (`detect.ddos.groups[0].prefixes`): the section is the table
/// of the file (`detect.ddos`), the key the rest.
fn at(path: &str, value: String, expected: &str) -> ConfigError {
    let split = if path.starts_with("detect.") { 2 } else { 1 };
    let mut parts = path.splitn(split + 1, '.');
    let section: Vec<&str> = parts.by_ref().take(split).collect();
    let key = parts.next().unwrap_or_default();
    ConfigError::new(section.join("."), key, value, expected)
}

/// A duration of whole seconds as the file writes it (`"30s"`).
fn dur(secs: impl Into<u64>) -> String {
    format!(
        "\"{}\"",
        pharos_model::config::ConfigDuration::from_secs(secs.into())
    )
}

fn compile_baseline(key: &str, b: &BaselineConfig) -> Result<Option<Baseline>, ConfigError> {
    if !b.enabled {
        return Ok(None);
    }
    range(
        &format!("{key}.multiplier"),
        b.multiplier.is_finite() && b.multiplier >= 1.0,
        b.multiplier,
        "expected a number >= 1.0",
    )?;
    range(
        &format!("{key}.half_life"),
        b.half_life_s >= 1,
        dur(b.half_life_s),
        "expected at least \"1s\"",
    )?;
    Ok(Some(Baseline {
        learning_ms: b.learning_s.saturating_mul(1000),
        keep_per_s: 0.5f64.powf(1.0 / b.half_life_s as f64),
        multiplier: b.multiplier,
        floor: to_metrics(b.floor),
    }))
}

impl DdosConfig {
    /// Validates and compiles the config.
    pub(crate) fn compile(&self) -> Result<Compiled, ConfigError> {
        let k = "detect.ddos";
        range(
            &format!("{k}.window"),
            (1..=60).contains(&self.window_s),
            dur(self.window_s),
            "expected \"1s\" to \"60s\"",
        )?;
        range(
            &format!("{k}.delay"),
            self.delay_s <= 300,
            dur(self.delay_s),
            "expected \"0s\" to \"5m\"",
        )?;
        range(
            &format!("{k}.max_hosts"),
            self.max_hosts >= 1,
            self.max_hosts,
            "expected at least 1",
        )?;
        range(
            &format!("{k}.sketch_capacity"),
            (1..=4096).contains(&self.sketch_capacity),
            self.sketch_capacity,
            "expected 1 to 4096",
        )?;
        let global: [Limit; NCLASS] = TrafficClass::ALL.map(|c| {
            self.thresholds
                .get(&c)
                .copied()
                .unwrap_or_default()
                .over(default_limits(c))
        });
        let global_baseline = compile_baseline(&format!("{k}.baseline"), &self.baseline)?;
        let limits = global.map(to_metrics);
        let mut groups = vec![Group {
            name: "default".into(),
            min_limits: min_limits(&limits),
            limits,
            baseline: global_baseline,
        }];
        let mut dst = PrefixMap::new();
        for n in &self.networks {
            dst.insert(parse_net(&format!("{k}.networks"), n)?, Target::Group(0));
        }
        range(
            &format!("{k}.groups"),
            self.groups.len() < 2048,
            self.groups.len(),
            "expected fewer than 2048 groups",
        )?;
        for (gi, g) in self.groups.iter().enumerate() {
            let gk = format!("{k}.groups[{gi}]");
            let limits = std::array::from_fn(|i| {
                let c = TrafficClass::ALL[i];
                to_metrics(
                    g.thresholds
                        .get(&c)
                        .copied()
                        .unwrap_or_default()
                        .over(global[i]),
                )
            });
            let baseline = match &g.baseline {
                Some(b) => compile_baseline(&format!("{gk}.baseline"), b)?,
                None => global_baseline,
            };
            let name = if g.name.is_empty() {
                format!("group{gi}")
            } else {
                g.name.clone()
            };
            let gidx = groups.len() as u16;
            groups.push(Group {
                name: name.clone(),
                min_limits: min_limits(&limits),
                limits,
                baseline,
            });
            let aggregate = if g.aggregate.is_empty() {
                None
            } else {
                let off = Limit::new(0, 0, 0);
                let limits = std::array::from_fn(|i| {
                    let c = TrafficClass::ALL[i];
                    to_metrics(g.aggregate.get(&c).copied().unwrap_or_default().over(off))
                });
                groups.push(Group {
                    name: format!("{name}-aggregate"),
                    min_limits: min_limits(&limits),
                    limits,
                    baseline: None,
                });
                Some(groups.len() as u16 - 1)
            };
            for p in &g.prefixes {
                let net = parse_net(&format!("{gk}.prefixes"), p)?;
                let target = match aggregate {
                    None => Target::Group(gidx),
                    Some(a) => Target::GroupAndAggregate {
                        group: gidx,
                        aggregate: a,
                        len: match net {
                            IpNet::V4(n) => n.prefix_len() + 96,
                            IpNet::V6(n) => n.prefix_len(),
                        },
                    },
                };
                dst.insert(net, target);
            }
        }
        for p in &self.allow {
            dst.insert(parse_net(&format!("{k}.allow"), p)?, Target::Allowed);
        }
        let mut allow_src = PrefixMap::new();
        for p in &self.allow_src {
            allow_src.insert(parse_net(&format!("{k}.allow_src"), p)?, ());
        }
        Ok(Compiled {
            dst,
            allow_src,
            groups,
        })
    }
}

/// Scan detector configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// `nsf-name` of the events (default `pharos`).
    pub nsf_name: String,
    /// Only flows towards these prefixes are considered (empty, the default: every flow).
    pub networks: Vec<String>,
    /// Length of the counting window, whole seconds (key `window`, default "1m").
    #[serde(rename = "window", with = "pharos_model::config::secs")]
    pub window_s: u32,
    /// Distinct destination ports of one host from one source that make a port scan
    /// (default 100).
    pub port_scan_ports: u32,
    /// Distinct hosts on one port from one source that make a host sweep (default 64).
    pub host_sweep_hosts: u32,
    /// Most (source, target) pairs tracked at once; new pairs are counted and dropped beyond
    /// (default 262144).
    pub max_tracked: usize,
    /// A flow is a probe when it has at most this many (unsampled) packets (default 3).
    pub max_probe_packets: u64,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            nsf_name: "pharos".into(),
            networks: Vec::new(),
            window_s: 60,
            port_scan_ports: 100,
            host_sweep_hosts: 64,
            max_tracked: 262_144,
            max_probe_packets: 3,
        }
    }
}

impl ScanConfig {
    /// Validates the config and compiles its networks.
    pub(crate) fn validate(&self) -> Result<PrefixMap<()>, ConfigError> {
        let k = "detect.scan";
        range(
            &format!("{k}.window"),
            (1..=86_400).contains(&self.window_s),
            dur(self.window_s),
            "expected \"1s\" to \"1d\"",
        )?;
        range(
            &format!("{k}.port_scan_ports"),
            (2..=4096).contains(&self.port_scan_ports),
            self.port_scan_ports,
            "expected 2 to 4096",
        )?;
        range(
            &format!("{k}.host_sweep_hosts"),
            (2..=4096).contains(&self.host_sweep_hosts),
            self.host_sweep_hosts,
            "expected 2 to 4096",
        )?;
        range(
            &format!("{k}.max_tracked"),
            self.max_tracked >= 1,
            self.max_tracked,
            "expected at least 1",
        )?;
        let mut m = PrefixMap::new();
        for p in &self.networks {
            m.insert(parse_net(&format!("{k}.networks"), p)?, ());
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_groups_override_per_metric_and_allow_wins_by_length() {
        let cfg: DdosConfig = toml::from_str(
            r#"
            networks = ["198.51.100.0/24", "2001:db8::/32"]
            allow = ["198.51.100.7"]
            [thresholds.syn]
            pps = 1000
            [[groups]]
            name = "web"
            prefixes = ["198.51.100.128/25"]
            thresholds.syn = { bps = 8000 }
            thresholds.udp = { pps = 0 }
            "#,
        )
        .unwrap();
        let c = cfg.compile().unwrap();
        let syn = TrafficClass::Syn.index();
        assert_eq!(c.groups[0].limits[syn][0], 1000.0);
        assert_eq!(c.groups[1].limits[syn], [1000.0, 1000.0, f64::INFINITY]);
        assert!(c.groups[1].limits[TrafficClass::Udp.index()][0].is_infinite());
        let at = |s: &str| {
            let (b, v4) = pharos_model::flow::addr_to_bytes(&s.parse().unwrap());
            c.dst.lookup(&b, v4)
        };
        assert_eq!(at("198.51.100.7"), Some(Target::Allowed));
        assert_eq!(at("198.51.100.200"), Some(Target::Group(1)));
        assert_eq!(at("198.51.100.1"), Some(Target::Group(0)));
        assert_eq!(at("203.0.113.1"), None);
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let cfg = DdosConfig {
            groups: vec![HostGroupConfig {
                prefixes: vec!["10.0.0.0/33".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = cfg.compile().unwrap_err().to_string();
        assert!(
            e.contains("[detect.ddos] groups[0].prefixes = \"10.0.0.0/33\""),
            "{e}"
        );
        let cfg = DdosConfig {
            window_s: 0,
            ..Default::default()
        };
        let e = cfg.compile().unwrap_err().to_string();
        assert!(e.starts_with("[detect.ddos] window = \"0s\": "), "{e}");
        assert!(toml::from_str::<DdosConfig>("thresholds.smurf = { pps = 1 }").is_err());
    }
}
