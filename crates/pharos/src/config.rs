//! `pharos.toml`: every key optional with a documented default (docs/config.md). Unknown keys and
//! bad values stop start-up with a message that names the key, the line and the fix.
//!
//! Each section belongs to the crate that uses it (its struct, defaults and `validate()`); this
//! module only composes them, rewrites the keys of earlier releases ([`RenamedKey`], listed by
//! their owners) with a warning, and calls every section's `validate()`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pharos_api::ApiConfig;
use pharos_model::config::{OldUnit, RenamedKey};
use serde::{Deserialize, Serialize};

pub use pharos_detect::hook::DetectHookConfig;
pub use pharos_emit::EmitConfig;
pub use pharos_flows::FlowStoreConfig;
pub use pharos_sources::FlowConfig;
pub use pharos_store::StoreConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[api]`: the REST API server.
    pub api: ApiConfig,
    /// `[store]`: where and how long messages are kept.
    pub store: StoreConfig,
    /// `[log]`: Pharos' own log.
    pub log: LogConfig,
    /// `[flow]`: the UDP flow collectors (NetFlow, IPFIX, sFlow).
    pub flow: FlowConfig,
    /// `[flow_store]`: the Parquet archive of collected flows.
    pub flow_store: FlowStoreConfig,
    /// `[syslog]`: the syslog listeners (UDP, TCP, TLS) and their normalise stage.
    pub syslog: pharos_sources::syslog::SyslogConfig,
    /// `[[nsf]]`: the security functions that report over syslog.
    pub nsf: Vec<pharos_store::inventory::NsfConfig>,
    /// `[detect]`: the DDoS and scan detectors over the collected flows (docs/detect.md). The
    /// detection stage runs only when the file has this section.
    pub detect: Option<pharos_detect::DetectConfig>,
    /// `[detect_hook]`: the command run at each attack start, update and end.
    pub detect_hook: DetectHookConfig,
    /// `[notify]`: dedup, dampening, thresholds and correlation of the notifications received
    /// (docs/detect.md); runs only when the file has this section.
    pub notify: Option<pharos_detect::notify::NotifyConfig>,
    /// `[state]`: alarms from state (resource usage, session table, interfaces, silent sources);
    /// runs only when the file has this section.
    pub state: Option<pharos_detect::state::StateConfig>,
    /// `[report]`: the periodic report (and the `i2nsf-counter` period).
    pub report: pharos_detect::report::ReportConfig,
    /// `[emit]`: subscriptions' common settings and the SSE stream limits.
    pub emit: EmitConfig,
    /// `[[subscription]]`: push subscriptions (webhook, syslog) defined here; printed back with
    /// secrets redacted.
    #[serde(serialize_with = "redacted_subscriptions")]
    pub subscription: Vec<pharos_emit::SubscriptionSpec>,
    /// `[rid]`: RID (RFC 6545/6546) peering and the trace workflow (docs/rid.md); off unless
    /// `enabled = true`.
    pub rid: pharos_rid::config::RidConfig,
    /// `[constituency]`: the registry of who owns which addresses (docs/constituency.md), used by
    /// `pharos constituency`.
    pub constituency: pharos_constituency::ConstituencyConfig,
    /// `[anon]`: Crypto-PAn keys and their rotation by date, used by `pharos anon`
    /// (docs/sharing.md); hex keys are printed redacted.
    pub anon: pharos_anon::AnonConfig,
    /// `[notice]`: notices and digests to the constituency by mail and webhook
    /// (docs/early-warning.md); runs only when the file has this section.
    pub notice: Option<crate::notice_stage::NoticeConfig>,
    /// `[cluster]`: this node's roles in a scale-out over NATS JetStream (docs/scale-out.md);
    /// without it `pharos run` is the single-node embedded default.
    pub cluster: Option<pharos_cluster::ClusterConfig>,
    /// `[clickhouse]`: the flow archive in ClickHouse (docs/clickhouse.md), written by the
    /// `archiver` role and queried by `pharos flows` and the API when set.
    pub clickhouse: Option<pharos_clickhouse::ClickHouseConfig>,
    /// `[postgres]`: the message store in PostgreSQL (docs/postgresql.md), shared by the nodes of
    /// a cluster; without it messages are kept in SQLite under `[store] data_dir`.
    pub postgres: Option<pharos_store_pg::PostgresConfig>,
    /// Keys of an earlier release found in the file and read under their new names.
    #[serde(skip)]
    pub deprecations: Vec<Deprecation>,
}

fn redacted_subscriptions<S: serde::Serializer>(
    v: &[pharos_emit::SubscriptionSpec],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| x.redacted()))
}

/// `[log]` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Filter in `RUST_LOG` syntax, e.g. "info" or "info,pharos_api=debug" (RUST_LOG overrides).
    pub level: String,
    /// "text" for people (ANSI colour only when stderr is a terminal), "json" for log shippers
    /// (one object per line). Control characters of logged text are escaped in both.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Format of Pharos' own log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A key of an earlier release found in the file, read under its new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// The table it was found in (`detect.ddos`).
    pub table: &'static str,
    /// The old key and value as written (`hold_s`, `30`).
    pub old: (&'static str, String),
    /// The new key and the value in the new syntax (`hold`, `"30s"`).
    pub new: (&'static str, String),
}

impl fmt::Display for Deprecation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ((old, was), (new, now)) = (&self.old, &self.new);
        write!(
            f,
            "[{}] {old} = {was} is deprecated (read for this release only): write {new} = {now}; durations are strings with a unit, like \"500ms\", \"90s\", \"15m\", \"1h\", \"7d\"",
            self.table
        )
    }
}

/// Every renamed key of every section, from the sections' owners.
fn renamed_keys() -> impl Iterator<Item = &'static RenamedKey> {
    pharos_sources::syslog::RENAMED_KEYS
        .iter()
        .chain(pharos_flows::RENAMED_KEYS)
        .chain(pharos_emit::RENAMED_KEYS)
        .chain(pharos_detect::renamed_keys())
}

/// Rewrites the keys of earlier releases in `root` to their new names and value syntax (a
/// number of the old unit becomes a duration string; in a table of durations, each number),
/// returning what it rewrote. Both spellings in one table is an error.
pub fn rewrite_renamed_keys<'a>(
    root: &mut toml::Table,
    keys: impl IntoIterator<Item = &'a RenamedKey>,
) -> Result<Vec<Deprecation>, String> {
    let mut out = Vec::new();
    for key in keys {
        let mut tables: Vec<&mut toml::Table> = vec![&mut *root];
        for part in key.table.split('.') {
            let mut next = Vec::new();
            for t in tables {
                match t.get_mut(part) {
                    Some(toml::Value::Table(x)) => next.push(x),
                    Some(toml::Value::Array(a)) => {
                        next.extend(a.iter_mut().filter_map(toml::Value::as_table_mut))
                    }
                    _ => {}
                }
            }
            tables = next;
        }
        for t in tables {
            let Some(old) = t.get(key.old) else { continue };
            let new = match old {
                toml::Value::Integer(n) => as_duration(*n, key.unit),
                toml::Value::Table(m) => {
                    let mut m = m.clone();
                    let mut changed = false;
                    for (_, v) in m.iter_mut() {
                        if let toml::Value::Integer(n) = v
                            && let Some(d) = as_duration(*n, key.unit)
                        {
                            *v = d;
                            changed = true;
                        }
                    }
                    changed.then_some(toml::Value::Table(m))
                }
                _ => None,
            };
            let renamed = key.old != key.new;
            if renamed && t.contains_key(key.new) {
                return Err(format!(
                    "[{}] both {} (the key of an earlier release) and {} are given: keep only {}",
                    key.table, key.old, key.new, key.new
                ));
            }
            if new.is_none() && !renamed {
                continue; // already in the new syntax
            }
            let was = t.remove(key.old).unwrap_or(toml::Value::Boolean(false));
            let now = new.unwrap_or_else(|| was.clone());
            out.push(Deprecation {
                table: key.table,
                old: (key.old, was.to_string()),
                new: (key.new, now.to_string()),
            });
            t.insert(key.new.to_string(), now);
        }
    }
    Ok(out)
}

fn as_duration(n: i64, unit: OldUnit) -> Option<toml::Value> {
    let d = unit.duration(u64::try_from(n).ok()?)?;
    Some(toml::Value::String(d.to_string()))
}

impl Config {
    /// Parses configuration text; `origin` names the file in errors. Keys of an earlier release
    /// are read under their new names and listed in [`Config::deprecations`].
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let fail = |e: &dyn fmt::Display| anyhow::anyhow!("config error in {origin}: {e}");
        let mut table: toml::Table = toml::from_str(text).map_err(|e| fail(&e))?;
        let deprecations =
            rewrite_renamed_keys(&mut table, renamed_keys()).map_err(|e| fail(&e))?;
        let mut cfg: Config = if deprecations.is_empty() {
            // straight from the text, so that errors give the line
            toml::from_str(text).map_err(|e| fail(&e))?
        } else {
            toml::Value::Table(table).try_into().map_err(|e| fail(&e))?
        };
        cfg.deprecations = deprecations;
        cfg.validate().map_err(|e| fail(&e))?;
        Ok(cfg)
    }

    /// Loads `path`, or `./pharos.toml` when it exists, or the defaults; returns where it came from.
    pub fn load(path: Option<&Path>) -> anyhow::Result<(Self, String)> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("pharos.toml");
                if !p.exists() {
                    return Ok((Self::default(), "built-in defaults".into()));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "config error: cannot read {}; pass an existing file with --config",
                path.display()
            )
        })?;
        let origin = path.display().to_string();
        Ok((Self::parse(&text, &origin)?, origin))
    }

    /// Logs a warning for each key of an earlier release the file used (at start-up, once the
    /// log is set up).
    pub fn warn_deprecations(&self) {
        for d in &self.deprecations {
            tracing::warn!("pharos.toml: {d}");
        }
    }

    /// Calls every section's `validate()`.
    fn validate(&self) -> anyhow::Result<()> {
        self.api.validate()?;
        self.store.validate()?;
        self.flow.validate()?;
        self.flow_store.validate()?;
        self.syslog.settings()?;
        crate::syslog_stage::StageSettings::new(&self.syslog, &self.nsf)
            .map_err(anyhow::Error::msg)?;
        if let Some(d) = &self.detect {
            d.validate()?;
        }
        self.detect_hook.validate()?;
        if let Some(n) = &self.notify {
            n.validate()?;
        }
        if let Some(s) = &self.state {
            s.validate()?;
        }
        self.report.validate()?;
        self.emit.validate(&self.subscription)?;
        self.rid.validate()?;
        self.anon.validate()?;
        if let Some(n) = &self.notice {
            n.validate()?;
        }
        if let Some(c) = &self.cluster {
            c.validate()?;
        }
        if let Some(c) = &self.clickhouse {
            c.validate()
                .map_err(|e| anyhow::anyhow!("config error in [clickhouse]: {e}"))?;
        }
        if let Some(p) = &self.postgres {
            p.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store.data_dir, PathBuf::from("./pharos-data"));
        assert_eq!(c.store.retention.to_string(), "30d");
        assert_eq!(c.log.format, LogFormat::Text);
    }

    #[test]
    fn bad_duration_names_key_line_and_form() {
        let e = Config::parse("[store]\nretention = \"7x\"\n", "pharos.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pharos.toml") && e.contains("line 2") && e.contains("retention"),
            "{e}"
        );
        assert!(e.contains("expected a duration like"), "{e}");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let e = Config::parse("[api]\nlisen = \"127.0.0.1:1\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen") && e.contains("listen"), "{e}");
        let e = Config::parse("[apii]\n", "p.toml").unwrap_err().to_string();
        assert!(e.contains("apii"), "{e}");
    }

    #[test]
    fn bad_listen_address_is_refused() {
        let e = Config::parse("[api]\nlisten = \"localhost\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn flow_section_parses_listeners_sampling_and_timeout() {
        let c = Config::parse(
            "[flow]\nlisten = [\"127.0.0.1:0\"]\ntemplate_timeout = \"10m\"\n[flow.sampling]\n\"192.0.2.1\" = 1000\n",
            "p.toml",
        )
        .unwrap();
        let u = c.flow.to_udp_config();
        assert_eq!(u.listen, vec!["127.0.0.1:0".parse().unwrap()]);
        assert_eq!(u.template_timeout, Duration::from_secs(600));
        assert_eq!(u.sampling.get(&"192.0.2.1".parse().unwrap()), Some(&1000));
        assert!(!u.skip_unbindable, "listeners the user chose must bind");
        let d = Config::parse("", "p.toml").unwrap();
        assert!(d.flow.enabled && d.flow.to_udp_config().skip_unbindable);
        assert_eq!(d.flow.template_timeout.to_string(), "30m");
        let e = Config::parse("[flow.sampling]\n\"192.0.2.1\" = 0\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[flow.sampling]"), "{e}");
        let e = Config::parse("[flow]\nlisten = [\"localhost\"]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("listen") && e.contains("line 2") && e.contains("no port"),
            "{e}"
        );
        // The effective configuration prints and reads back.
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(
            Config::parse(&text, "back.toml").unwrap().flow.sampling,
            c.flow.sampling
        );
    }

    #[test]
    fn syslog_keys_of_the_listeners_and_of_the_stage_are_both_checked() {
        let e = Config::parse("[syslog]\noversize = \"cut\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.toml") && e.contains("[syslog] oversize"),
            "{e}"
        );
        let e = Config::parse("[syslog]\ndefault_parser = \"nope\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.toml") && e.contains("default_parser"), "{e}");
        let e = Config::parse(
            "[[nsf]]\nname = \"fw\"\naddresses = [\"192.0.2.7\"]\nparser = \"bogus\"\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[[nsf]] #1") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn syslog_year_margin_and_relays_are_read_checked_and_printed_back() {
        let text = "[syslog]\nyear_margin = \"12h\"\n\n[[syslog.relay]]\naddresses = [\"192.0.2.10\", \"10.9.0.0/24\"]\nmax_hostnames = 50\n";
        let c = Config::parse(text, "p.toml").unwrap();
        assert_eq!(c.syslog.year_margin.to_string(), "12h");
        assert_eq!(c.syslog.relay.len(), 1);
        assert_eq!(c.syslog.relay[0].max_hostnames, 50);
        let s = crate::syslog_stage::StageSettings::new(&c.syslog, &c.nsf).unwrap();
        assert_eq!(s.year_margin, chrono::TimeDelta::hours(12));
        assert_eq!(s.relays[0].addresses.len(), 2);
        // What check-config prints reads back the same.
        let again = Config::parse(&toml::to_string(&c).unwrap(), "printed").unwrap();
        assert_eq!(again.syslog, c.syslog);
        // Defaults: a day, no relays, 1024 hostnames per relay.
        let d =
            Config::parse("[[syslog.relay]]\naddresses = [\"192.0.2.10\"]\n", "p.toml").unwrap();
        assert_eq!(d.syslog.year_margin.to_string(), "1d");
        assert_eq!(d.syslog.relay[0].max_hostnames, 1024);
        for (bad, want) in [
            (
                "[syslog]\nyear_margin = \"soon\"\n",
                "\"soon\": expected a duration like",
            ),
            (
                "[[syslog.relay]]\naddresses = [\"relay.example\"]\n",
                "[[syslog.relay]] #1: addresses",
            ),
            (
                "[[syslog.relay]]\nadresses = [\"192.0.2.10\"]\n",
                "adresses",
            ),
        ] {
            let e = Config::parse(bad, "p.toml").unwrap_err().to_string();
            assert!(e.contains("p.toml") && e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn flow_store_section_has_defaults_and_names_bad_keys() {
        let d = Config::parse("", "p.toml").unwrap().flow_store;
        assert!(d.enabled);
        assert_eq!(
            (d.segment.to_string(), d.disk_budget_bytes),
            ("1s".into(), 0)
        );
        assert_eq!(d.retention.to_string(), "30d");
        assert!(d.compact);
        assert_eq!(d.compact_after.to_string(), "10s");
        assert_eq!((d.memory_budget_bytes, d.encode_threads), (256 << 20, 0));
        let s = d.to_segment_config(Path::new("/d"));
        assert_eq!((s.memory_budget, s.max_held_flows), (256 << 20, usize::MAX));
        assert!(s.encode_threads >= 1);
        // The budget key, and the older max_held_flows key still loads.
        let c = Config::parse(
            "[flow_store]\nmemory_budget_bytes = 67108864\nencode_threads = 3\nmax_held_flows = 500000\n",
            "p.toml",
        )
        .unwrap();
        let s = c.flow_store.to_segment_config(Path::new("/d"));
        assert_eq!(
            (s.memory_budget, s.encode_threads, s.max_held_flows),
            (64 << 20, 3, 500_000)
        );
        let e = Config::parse("[flow_store]\nmemory_budget_bytes = 1000\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[flow_store] memory_budget_bytes = 1000"), "{e}");
        let c = Config::parse(
            "[flow_store]\nsegment = \"5s\"\nretention = \"7d\"\ndisk_budget_bytes = 1000000\ncompact = false\ncompact_after = \"30s\"\n",
            "p.toml",
        )
        .unwrap();
        let s = c.flow_store.to_segment_config(Path::new("/d"));
        assert_eq!(s.root, PathBuf::from("/d/flows"));
        assert_eq!(s.segment, Duration::from_secs(5));
        assert_eq!(s.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(s.disk_budget, 1_000_000);
        assert!(!s.compact);
        assert_eq!(s.compact_after, Duration::from_secs(30));
        let e = Config::parse("[flow_store]\ncompact_after = \"2h\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[flow_store] compact_after = \"2h\""), "{e}");
        let e = Config::parse("[flow_store]\nsegment_secs = 5\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment_secs") && e.contains("segment"), "{e}");
        for bad in ["0s", "500ms", "2h"] {
            let e = Config::parse(&format!("[flow_store]\nsegment = \"{bad}\"\n"), "p.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("[flow_store] segment = \"{bad}\"")),
                "{e}"
            );
        }
        let e = Config::parse("[flow_store]\nretention = \"1y\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retention") && e.contains("line 2"), "{e}");
    }

    /// A file of the previous release: every renamed key, bare numbers where durations are now
    /// strings.
    const OLD_STYLE: &str = r#"
[syslog]
idle_timeout_secs = 300

[syslog.tls]
cert = "c.pem"
key = "k.pem"
handshake_timeout_secs = 5

[flow_store]
segment_seconds = 2
compact_after_seconds = 30

[detect.ddos]
networks = ["198.51.100.0/24"]
window_s = 10
delay_s = 3
hold_s = 45
update_interval_s = 20
idle_evict_s = 900

[detect.ddos.baseline]
learning_s = 3600
half_life_s = 600

[detect.scan]
window_s = 120

[detect_hook]
timeout_seconds = 20

[notify]
dedup_window_s = 30
dampening_s = { intrusion = 10 }

[[notify.correlate]]
name = "ssh-bf"
capacity = 5
leakspeed_ms = 2500
blackhole_s = 60
emit = "brute-force"

[state]
silence_default_s = 300
clock_offset_max_s = 90
[state.silence]
"fw-1" = 60

[report]
interval_s = 1800
counter_period_min = 5

[[subscription]]
name = "siem"
dampening_period = 5
[subscription.sink]
type = "syslog"
address = "127.0.0.1:514"
timeout = 3
"#;

    /// The same settings in the current spelling.
    const NEW_STYLE: &str = r#"
[syslog]
idle_timeout = "5m"

[syslog.tls]
cert = "c.pem"
key = "k.pem"
handshake_timeout = "5s"

[flow_store]
segment = "2s"
compact_after = "30s"

[detect.ddos]
networks = ["198.51.100.0/24"]
window = "10s"
delay = "3s"
hold = "45s"
update_interval = "20s"
idle_evict = "15m"

[detect.ddos.baseline]
learning = "1h"
half_life = "10m"

[detect.scan]
window = "2m"

[detect_hook]
timeout = "20s"

[notify]
dedup_window = "30s"
dampening = { intrusion = "10s" }

[[notify.correlate]]
name = "ssh-bf"
capacity = 5
leakspeed = "2500ms"
blackhole = "1m"
emit = "brute-force"

[state]
silence_default = "5m"
clock_offset_max = "90s"
[state.silence]
"fw-1" = "1m"

[report]
interval = "30m"
counter_period = "5m"

[[subscription]]
name = "siem"
dampening_period = "5s"
[subscription.sink]
type = "syslog"
address = "127.0.0.1:514"
timeout = "3s"
"#;

    #[test]
    fn an_old_style_file_loads_with_the_same_values_and_a_warning_per_old_key() {
        // [syslog.tls] names certificate files: validation reads them, so check the parsed
        // values through the typed sections and validate the rest without TLS.
        let without_tls = |t: &str| {
            let mut t: toml::Table = toml::from_str(t).unwrap();
            t["syslog"].as_table_mut().unwrap().remove("tls");
            toml::to_string(&t).unwrap()
        };
        let old = Config::parse(&without_tls(OLD_STYLE), "old.toml").unwrap();
        let new = Config::parse(&without_tls(NEW_STYLE), "new.toml").unwrap();
        assert!(new.deprecations.is_empty(), "{:?}", new.deprecations);
        let printed = |c: &Config| toml::to_string(c).unwrap();
        assert_eq!(printed(&old), printed(&new));
        assert_eq!(old.syslog.idle_timeout.as_secs(), 300);
        assert_eq!(old.flow_store.segment.as_secs(), 2);
        let d = old.detect.as_ref().unwrap();
        assert_eq!(
            (d.ddos.window_s, d.ddos.hold_s, d.scan.window_s),
            (10, 45, 120)
        );
        let n = old.notify.as_ref().unwrap();
        assert_eq!(n.correlate[0].leakspeed_ms, 2500);
        assert_eq!(old.report.counter_period_min, 5);
        assert_eq!(old.state.as_ref().unwrap().silence["fw-1"], 60);
        assert_eq!(old.subscription[0].dampening_period.unwrap().as_secs(), 5);

        // Every old key gives one warning naming the old key, the new key and the new value.
        let warnings: Vec<String> = old.deprecations.iter().map(|d| d.to_string()).collect();
        assert_eq!(warnings.len(), 23, "{warnings:#?}");
        for want in [
            "[syslog] idle_timeout_secs = 300 is deprecated",
            "write idle_timeout = \"5m\"",
            "[detect.ddos] hold_s = 45 is deprecated",
            "write hold = \"45s\"",
            "[detect.ddos.baseline] learning_s = 3600",
            "write learning = \"1h\"",
            "[notify.correlate] leakspeed_ms = 2500",
            "write leakspeed = \"2500ms\"",
            "[report] counter_period_min = 5",
            "write counter_period = \"5m\"",
            "[state] silence = { fw-1 = 60 }",
            "write silence = { fw-1 = \"1m\" }",
            "[subscription.sink] timeout = 3",
            "write timeout = \"3s\"",
            "[detect_hook] timeout_seconds = 20",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(want)),
                "no warning has {want:?}: {warnings:#?}"
            );
        }
        assert!(
            warnings
                .iter()
                .all(|w| w.contains("durations are strings with a unit"))
        );

        // [syslog.tls] too: its keys are rewritten before its certificate files are read.
        let mut t: toml::Table = toml::from_str(OLD_STYLE).unwrap();
        let d = rewrite_renamed_keys(&mut t, renamed_keys()).unwrap();
        assert_eq!(d.len(), 24);
        assert_eq!(t["syslog"]["tls"]["handshake_timeout"].as_str(), Some("5s"));
        let n: toml::Table = toml::from_str(NEW_STYLE).unwrap();
        assert_eq!(t, n);
    }

    #[test]
    fn an_old_and_a_new_key_together_are_refused() {
        let e = Config::parse("[detect.ddos]\nhold_s = 5\nhold = \"5s\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[detect.ddos] both hold_s") && e.contains("keep only hold"),
            "{e}"
        );
    }

    #[test]
    fn durations_are_strings_with_a_unit_and_errors_name_the_key() {
        let c = Config::parse(
            "[syslog]\nidle_timeout = \"1h30m\"\n[flow]\ntemplate_timeout = \"500ms\"\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(c.syslog.idle_timeout.as_secs(), 5400);
        assert_eq!(c.flow.template_timeout.as_millis(), 500);
        // a bare number under a new key: the hint says how to write it
        let e = Config::parse("[detect.ddos]\nhold = 30\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hold") && e.contains("write \"30s\" instead of 30"),
            "{e}"
        );
        let e = Config::parse("[emit]\nkeep_alive = 15\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("keep_alive") && e.contains("line 2") && e.contains("write \"15s\""),
            "{e}"
        );
        // garbage names the key and the forms expected
        for (text, key) in [
            ("[syslog]\nidle_timeout = \"soon\"\n", "idle_timeout"),
            ("[report]\ninterval = \"1 hour\"\n", "interval"),
            ("[notify]\ndedup_window = \"-5s\"\n", "dedup_window"),
        ] {
            let e = Config::parse(text, "p.toml").unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("expected a duration like \"500ms\""),
                "{text}: {e}"
            );
        }
        let e = Config::parse("[detect.ddos]\nhold = \"1500ms\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hold") && e.contains("whole seconds"), "{e}");
    }

    #[test]
    fn check_config_prints_every_section_and_it_reads_back() {
        let c = Config::parse(
            "[detect]\n[notify]\n[state]\n[state.silence]\nfw = \"1m\"\n",
            "p.toml",
        )
        .unwrap();
        let text = toml::to_string_pretty(&c).unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        for section in [
            "api",
            "store",
            "log",
            "flow",
            "flow_store",
            "syslog",
            "detect",
            "detect_hook",
            "notify",
            "state",
            "report",
            "emit",
        ] {
            assert!(t.contains_key(section), "[{section}] missing from:\n{text}");
        }
        assert_eq!(t["detect"]["ddos"]["hold"].as_str(), Some("30s"));
        assert_eq!(t["report"]["interval"].as_str(), Some("1h"));
        let again = Config::parse(&text, "printed").unwrap();
        assert_eq!(toml::to_string_pretty(&again).unwrap(), text);
        assert!(again.deprecations.is_empty());
    }

    #[test]
    fn a_detect_hook_that_cannot_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hook.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let parse = |cmd: &str| {
            Config::parse(&format!("[detect_hook]\ncommand = {cmd:?}\n"), "p.toml")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let e = parse(&script.display().to_string()).unwrap_err();
        assert!(
            e.contains("is not executable") && e.contains("chmod +x"),
            "{e}"
        );
        let e = parse("/nonexistent/blackhole").unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        let e = parse("no-such-program-pharos").unwrap_err();
        assert!(e.contains("not found on PATH"), "{e}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        parse(&script.display().to_string()).unwrap();
        parse("true").unwrap();
    }

    #[test]
    fn listen_addresses_take_host_names() {
        let c = Config::parse(
            "[api]\nlisten = \"localhost:27083\"\n[flow]\nlisten = [\"localhost:2055\"]\n",
            "p.toml",
        )
        .unwrap();
        assert!(c.api.listen.ip().is_loopback() && c.api.listen.port() == 27083);
        assert_eq!(c.flow.listen[0].port(), 2055);
        let e = Config::parse("[api]\nlisten = \"localhost\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no port") && e.contains("localhost:8080"), "{e}");
    }

    #[test]
    fn detect_section_is_checked_by_the_detector_and_names_the_key() {
        assert!(Config::parse("", "p.toml").unwrap().detect.is_none());
        let c = Config::parse(
            "[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\nhold = \"5s\"\n[detect_hook]\ncommand = \"/bin/true\"\n",
            "p.toml",
        )
        .unwrap();
        let d = c.detect.unwrap();
        assert_eq!(d.ddos.networks, vec!["198.51.100.0/24".to_string()]);
        assert_eq!(d.ddos.hold_s, 5);
        assert_eq!(c.detect_hook.timeout.as_secs(), 10);
        let e = Config::parse("[detect.ddos]\nnetworks = [\"10.0.0.0/33\"]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.toml")
                && e.contains("[detect.ddos] networks")
                && e.contains("10.0.0.0/33"),
            "{e}"
        );
        let e = Config::parse("[detect.ddos]\nwindw_s = 3\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("windw_s") && e.contains("line 2"), "{e}");
        let e = Config::parse("[detect_hook]\ntimeout = \"0s\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[detect_hook] timeout = \"0s\""), "{e}");
    }

    #[test]
    fn subscriptions_and_emit_parse_validate_and_print_without_secrets() {
        let c = Config::parse(
            r#"
[emit]
max_streams = 8
allow_hosts = ["hooks.example.net"]

[[subscription]]
name = "soc"
dampening_period = "5s"
[subscription.filter]
kinds = ["ddos"]
min_severity = "high"
prefixes = ["192.0.2.0/24"]
[subscription.sink]
type = "webhook"
url = "https://hooks.example.net/pharos"
secret = "s3cret"
allow = ["hooks.example.net"]

[[subscription]]
name = "siem"
emission = { periodic = { interval = "30s" } }
[subscription.sink]
type = "syslog"
address = "127.0.0.1:514"
"#,
            "pharos.toml",
        )
        .unwrap();
        assert_eq!(c.emit.max_streams, 8);
        assert_eq!(c.emit.keep_alive.0, Duration::from_secs(15));
        assert_eq!(c.subscription.len(), 2);
        let printed = toml::to_string(&c).unwrap();
        assert!(!printed.contains("s3cret"), "{printed}");

        let e = Config::parse(
            "[[subscription]]\nname = \"Bad!\"\n[subscription.sink]\ntype = \"syslog\"\naddress = \"127.0.0.1:514\"\n",
            "pharos.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("[[subscription]] #1") && e.contains("name"),
            "{e}"
        );
        let twice = "[[subscription]]\nname = \"a\"\n[subscription.sink]\ntype = \"syslog\"\naddress = \"127.0.0.1:514\"\n";
        let e = Config::parse(&format!("{twice}{twice}"), "pharos.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("used twice"), "{e}");
        let e = Config::parse("[emit]\nmax_streams = 0\n", "pharos.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[emit] max_streams"), "{e}");
    }
}
