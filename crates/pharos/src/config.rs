//! `pharos.toml`: every key optional with a documented default (docs/config.md). Unknown keys and
//! bad values stop start-up with a message that names the key, the line and the fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use pharos_api::ApiConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// detection stage runs only when the file has this section. Not printed back by
    /// `check-config` (the detector's config type is deserialise-only).
    #[serde(skip_serializing)]
    pub detect: Option<pharos_detect::DetectConfig>,
    /// `[detect_hook]`: the command run at each attack start, update and end.
    pub detect_hook: DetectHookConfig,
    /// `[notify]`: dedup, dampening, thresholds and correlation of the notifications received
    /// (docs/detect.md); runs only when the file has this section. Not printed back.
    #[serde(skip_serializing)]
    pub notify: Option<pharos_detect::notify::NotifyConfig>,
    /// `[state]`: alarms from state (resource usage, session table, interfaces, silent sources);
    /// runs only when the file has this section. Not printed back.
    #[serde(skip_serializing)]
    pub state: Option<pharos_detect::state::StateConfig>,
    /// `[report]`: the periodic report (and the `i2nsf-counter` period). Not printed back.
    #[serde(skip_serializing)]
    pub report: pharos_detect::report::ReportConfig,
    /// `[emit]`: subscriptions' common settings and the SSE stream limits.
    pub emit: EmitConfig,
    /// `[[subscription]]`: push subscriptions (webhook, syslog) defined here; printed back with
    /// secrets redacted.
    #[serde(serialize_with = "redacted_subscriptions")]
    pub subscription: Vec<pharos_emit::SubscriptionSpec>,
}

fn redacted_subscriptions<S: serde::Serializer>(
    v: &[pharos_emit::SubscriptionSpec],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| x.redacted()))
}

/// `[emit]` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmitConfig {
    /// Whether subscriptions and the SSE stream run.
    pub enabled: bool,
    /// Most SSE streams (`GET /api/v1/stream`) open at once; beyond, 503.
    pub max_streams: usize,
    /// Interval of SSE keep-alive comments.
    pub keep_alive: HumanDuration,
    /// Hosts (names, addresses, CIDRs) that subscriptions created through the API may send to;
    /// empty: API-created subscriptions are refused.
    pub allow_hosts: Vec<String>,
}

impl Default for EmitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_streams: 256,
            keep_alive: HumanDuration(Duration::from_secs(15)),
            allow_hosts: Vec::new(),
        }
    }
}

/// `[detect_hook]` settings: an operator's command (e.g. a blackholing script) run with the event
/// JSON on stdin at each attack start, update and end (docs/detect.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectHookConfig {
    /// Program to run (a path; no shell); empty: no hook.
    pub command: String,
    /// Arguments given to it.
    pub args: Vec<String>,
    /// Seconds a run may take before it is killed and counted as failed.
    pub timeout_seconds: u64,
}

impl Default for DetectHookConfig {
    fn default() -> Self {
        Self {
            command: String::new(),
            args: Vec::new(),
            timeout_seconds: 10,
        }
    }
}

/// `[store]` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory for all stored data (created if missing).
    pub data_dir: PathBuf,
    /// Messages older than this (by event time) are deleted; "0s" keeps them forever.
    pub retention: HumanDuration,
    /// Submissions that may wait for the store writer before pushes get 503.
    pub queue: usize,
    /// Most messages written in one transaction.
    pub max_batch: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./pharos-data"),
            retention: HumanDuration(Duration::from_secs(30 * 86_400)),
            queue: 1024,
            max_batch: 5000,
        }
    }
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

/// `[flow]` settings: UDP collectors for NetFlow v5/v9, IPFIX and sFlow v5 (docs/config.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Whether `pharos run` starts the flow collectors.
    pub enabled: bool,
    /// UDP addresses to listen on; every protocol is accepted on every address (version sniffing).
    /// Host names with a port (`localhost:2055`) are resolved.
    #[serde(deserialize_with = "pharos_model::listen::deserialize_list")]
    pub listen: Vec<std::net::SocketAddr>,
    /// Receive buffer asked for each socket, bytes (capped by net.core.rmem_max unless root).
    pub receive_buffer_bytes: usize,
    /// NetFlow v9 / IPFIX templates not refreshed for this long are forgotten.
    pub template_timeout: HumanDuration,
    /// Decoded batches that may wait for the next stage before batches are dropped and counted.
    pub queue: usize,
    /// Per-exporter sampling rate ("192.0.2.1" = 1000) replacing what the exporter says.
    pub sampling: std::collections::BTreeMap<std::net::IpAddr, u32>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        let d = pharos_sources::flow::FlowUdpConfig::default();
        Self {
            enabled: true,
            listen: d.listen,
            receive_buffer_bytes: d.receive_buffer_bytes,
            template_timeout: HumanDuration(d.template_timeout),
            queue: d.queue,
            sampling: Default::default(),
        }
    }
}

impl FlowConfig {
    /// The collector settings these keys stand for.
    pub fn to_udp_config(&self) -> pharos_sources::flow::FlowUdpConfig {
        pharos_sources::flow::FlowUdpConfig {
            listen: self.listen.clone(),
            receive_buffer_bytes: self.receive_buffer_bytes,
            template_timeout: self.template_timeout.0,
            queue: self.queue,
            sampling: self.sampling.iter().map(|(a, r)| (*a, *r)).collect(),
            // The built-in listeners are best effort (another collector may hold 2055); the
            // addresses a user chose must bind or start-up fails.
            skip_unbindable: self.listen == pharos_sources::flow::FlowUdpConfig::default().listen,
            ..Default::default()
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.enabled && self.listen.is_empty() {
            return Err("[flow] listen is empty: give at least one address like \"0.0.0.0:2055\", or set enabled = false".into());
        }
        if self.queue == 0 {
            return Err("[flow] queue = 0: must be at least 1".into());
        }
        if self.receive_buffer_bytes < 65_536 {
            return Err(format!(
                "[flow] receive_buffer_bytes = {}: must be at least 65536",
                self.receive_buffer_bytes
            ));
        }
        if self.template_timeout.0.is_zero() {
            return Err("[flow] template_timeout = \"0s\": must be positive, e.g. \"30m\"".into());
        }
        if let Some((a, _)) = self.sampling.iter().find(|(_, r)| **r == 0) {
            return Err(format!(
                "[flow.sampling] \"{a}\" = 0: a sampling rate is 1 in N packets, N at least 1"
            ));
        }
        Ok(())
    }
}

/// `[flow_store]` settings: the Parquet archive under `<data_dir>/flows` (docs/flows.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowStoreConfig {
    /// Whether collected flows are stored (`false`: counted and dropped).
    pub enabled: bool,
    /// Longest time received flows wait in memory before a segment is written: the most a crash
    /// loses.
    pub segment_seconds: u64,
    /// Segments older than this are deleted; "0s" keeps them forever.
    pub retention: HumanDuration,
    /// Most bytes the segments may take (oldest deleted first); 0 means no limit.
    pub disk_budget_bytes: u64,
    /// Most bytes of flows the archive writer holds in memory (the open segment, segments being
    /// encoded, failed writes held for a retry); beyond it flows are spilled to
    /// `<data_dir>/flows/.spill` and written when the encoders catch up.
    pub memory_budget_bytes: u64,
    /// Threads encoding the one-second segments; 0: one per core, at most 4.
    pub encode_threads: usize,
    /// Older key, still accepted: most flows held in memory (in addition to
    /// `memory_budget_bytes`); beyond it flows are spilled, not dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_held_flows: Option<usize>,
    /// Whether the short segments of each finished minute are merged into one file.
    pub compact: bool,
    /// Seconds after a minute ends before its segments are merged.
    pub compact_after_seconds: u64,
}

impl Default for FlowStoreConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            segment_seconds: 1,
            retention: HumanDuration(Duration::from_secs(30 * 86_400)),
            disk_budget_bytes: 0,
            memory_budget_bytes: pharos_flows::segment::DEFAULT_MEMORY_BUDGET,
            encode_threads: 0,
            max_held_flows: None,
            compact: true,
            compact_after_seconds: 10,
        }
    }
}

impl FlowStoreConfig {
    /// The writer settings these keys stand for, for a store under `data_dir`.
    pub fn to_segment_config(&self, data_dir: &Path) -> pharos_flows::segment::SegmentConfig {
        pharos_flows::segment::SegmentConfig {
            segment: Duration::from_secs(self.segment_seconds),
            retention: self.retention.0,
            disk_budget: self.disk_budget_bytes,
            max_held_flows: self.max_held_flows.unwrap_or(usize::MAX),
            memory_budget: self.memory_budget_bytes,
            encode_threads: match self.encode_threads {
                0 => pharos_flows::segment::default_encode_threads(),
                n => n,
            },
            background_thread_init: Some(lower_thread_priority),
            compact: self.compact,
            compact_after: Duration::from_secs(self.compact_after_seconds),
            ..pharos_flows::segment::SegmentConfig::new(pharos_flows::archive_root(data_dir))
        }
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.segment_seconds) {
            return Err(format!(
                "[flow_store] segment_seconds = {}: must be between 1 and 3600 (1 keeps a crash's loss to one second)",
                self.segment_seconds
            ));
        }
        if self.max_held_flows == Some(0) {
            return Err("[flow_store] max_held_flows = 0: must be at least 1 (or leave it out: memory_budget_bytes is the limit)".into());
        }
        let min_budget = 1 << 20;
        if self.memory_budget_bytes < min_budget {
            return Err(format!(
                "[flow_store] memory_budget_bytes = {}: must be at least {min_budget} (1 MiB; the default {} holds about 2 s at 1 M flows/s)",
                self.memory_budget_bytes,
                pharos_flows::segment::DEFAULT_MEMORY_BUDGET
            ));
        }
        if self.encode_threads > 64 {
            return Err(format!(
                "[flow_store] encode_threads = {}: must be at most 64 (0: one per core, at most 4)",
                self.encode_threads
            ));
        }
        if self.compact_after_seconds > 3600 {
            return Err(format!(
                "[flow_store] compact_after_seconds = {}: must be at most 3600 (the default 10 merges a minute 10 s after it ends)",
                self.compact_after_seconds
            ));
        }
        Ok(())
    }
}

/// Lowers the calling thread's scheduling priority to nice 19 (Linux keeps a nice value per
/// thread: `setpriority` on the thread id, through rustix's safe wrapper): the archive's encoder
/// and merge threads run on what the receiving threads leave, and catch up from memory or the
/// spill afterwards. Where that is refused the priority stays as it was (logged at debug level).
fn lower_thread_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!(error = %e, "the flow encoder thread keeps its priority");
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

/// A duration written like "30d", "12h", "15m", "90s" (or "0s" for never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses "30d", "12h", "15m", "90s", "2w".
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().ok()?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return None,
        };
        n.checked_mul(mult)
            .map(|secs| Self(Duration::from_secs(secs)))
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s != 0 && s.is_multiple_of(len) {
                return write!(f, "{}{unit}", s / len);
            }
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?}: expected a duration like \"7d\", \"12h\", \"15m\" or \"90s\""
            ))
        })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl Config {
    /// Parses configuration text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("config error in {origin}: {e}"))?;
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("config error in {origin}: {e}"))?;
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

    fn validate(&self) -> Result<(), String> {
        self.syslog.settings().map_err(|e| e.to_string())?;
        crate::syslog_stage::StageSettings::new(&self.syslog, &self.nsf)?;
        if self.api.max_body_bytes < 1024 {
            return Err(format!(
                "[api] max_body_bytes = {}: must be at least 1024",
                self.api.max_body_bytes
            ));
        }
        if self.api.max_push_messages == 0 {
            return Err("[api] max_push_messages = 0: must be at least 1".into());
        }
        for (key, v) in [
            ("rate_per_second", self.api.rate_per_second),
            ("push_rate_per_second", self.api.push_rate_per_second),
            ("nsf_messages_per_second", self.api.nsf_messages_per_second),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "[api] {key} = {v}: must be a number >= 0 (0 turns the limit off)"
                ));
            }
        }
        for (key, v) in [
            ("burst", self.api.burst),
            ("push_burst", self.api.push_burst),
        ] {
            if !v.is_finite() || v < 1.0 {
                return Err(format!("[api] {key} = {v}: must be at least 1"));
            }
        }
        pharos_api::auth::TokenStore::in_memory(&self.api.token).map_err(|e| e.to_string())?;
        if let Some(t) = &self.api.tls {
            pharos_api::server::tls_acceptor(t).map_err(|e| {
                let e = e.to_string();
                e.strip_prefix("config error: ").unwrap_or(&e).to_string()
            })?;
        }
        if self.store.queue == 0 {
            return Err("[store] queue = 0: must be at least 1".into());
        }
        if self.store.max_batch == 0 {
            return Err("[store] max_batch = 0: must be at least 1".into());
        }
        if self.store.data_dir.as_os_str().is_empty() {
            return Err(
                "[store] data_dir is empty: give a directory, e.g. \"./pharos-data\"".into(),
            );
        }
        self.flow.validate()?;
        self.flow_store.validate()?;
        if let Some(d) = &self.detect {
            pharos_detect::Detector::new(d.clone()).map_err(|e| {
                // "detect.ddos.window_s = 0: ..." -> "[detect.ddos] window_s = 0: ..."
                let e = e.to_string();
                let e = e.strip_prefix("config error: ").unwrap_or(&e);
                match e.split_once('.').and_then(|(_, r)| r.split_once('.')) {
                    Some((_, rest)) if e.starts_with("detect.") => {
                        format!("[{}] {rest}", &e[..e.len() - rest.len() - 1])
                    }
                    _ => format!("[detect] {e}"),
                }
            })?;
        }
        if let Some(n) = &self.notify {
            pharos_detect::notify::Notifier::new(n.clone()).map_err(|e| format!("[notify] {e}"))?;
        }
        if let Some(st) = &self.state {
            pharos_detect::state::StateAlarms::new(st.clone())
                .map_err(|e| format!("[state] {e}"))?;
        }
        if self.emit.max_streams == 0 {
            return Err("[emit] max_streams = 0: must be at least 1".into());
        }
        if self.emit.keep_alive.0.is_zero() {
            return Err("[emit] keep_alive = \"0s\": must be at least 1s, e.g. \"15s\"".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, sub) in self.subscription.iter().enumerate() {
            sub.validate()
                .map_err(|e| format!("[[subscription]] #{}: {e}", i + 1))?;
            if !names.insert(sub.name.as_str()) {
                return Err(format!(
                    "[[subscription]] #{}: name {:?} is used twice; give each subscription its own name",
                    i + 1,
                    sub.name
                ));
            }
        }
        self.detect_hook.validate()?;
        Ok(())
    }
}

impl DetectHookConfig {
    /// Checks the timeout, and that `command` names a program that exists and may be executed
    /// (a path, or a name found on `PATH`): a hook that cannot start would leave attacks
    /// unmitigated with nothing but a counter to say so.
    fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.timeout_seconds) {
            return Err(format!(
                "[detect_hook] timeout_seconds = {}: must be between 1 and 3600",
                self.timeout_seconds
            ));
        }
        if self.command.is_empty() {
            return Ok(());
        }
        let key = format!("[detect_hook] command = {:?}", self.command);
        let candidates: Vec<PathBuf> = if self.command.contains('/') {
            vec![PathBuf::from(&self.command)]
        } else {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(&self.command))
                        .collect()
                })
                .unwrap_or_default()
        };
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            return Err(if self.command.contains('/') {
                format!("{key}: no such file; give the path of the program to run")
            } else {
                format!("{key}: not found on PATH; give the program's full path")
            });
        };
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(found)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if mode & 0o111 == 0 {
            return Err(format!(
                "{key}: {} is not executable; make it so (chmod +x) or give another program",
                found.display()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.syslog.year_margin, "12h");
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
        assert_eq!(d.syslog.year_margin, "1d");
        assert_eq!(d.syslog.relay[0].max_hostnames, 1024);
        for (bad, want) in [
            (
                "[syslog]\nyear_margin = \"soon\"\n",
                "[syslog] year_margin = \"soon\"",
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
        assert_eq!((d.segment_seconds, d.disk_budget_bytes), (1, 0));
        assert_eq!(d.retention.to_string(), "30d");
        assert_eq!((d.compact, d.compact_after_seconds), (true, 10));
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
            "[flow_store]\nsegment_seconds = 5\nretention = \"7d\"\ndisk_budget_bytes = 1000000\ncompact = false\ncompact_after_seconds = 30\n",
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
        let e = Config::parse("[flow_store]\ncompact_after_seconds = 7200\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[flow_store] compact_after_seconds = 7200"),
            "{e}"
        );
        let e = Config::parse("[flow_store]\nsegment_secs = 5\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("segment_secs") && e.contains("segment_seconds"),
            "{e}"
        );
        let e = Config::parse("[flow_store]\nsegment_seconds = 0\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[flow_store] segment_seconds = 0"), "{e}");
        let e = Config::parse("[flow_store]\nretention = \"1y\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retention") && e.contains("line 2"), "{e}");
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
            "[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\nhold_s = 5\n[detect_hook]\ncommand = \"/bin/true\"\n",
            "p.toml",
        )
        .unwrap();
        let d = c.detect.unwrap();
        assert_eq!(d.ddos.networks, vec!["198.51.100.0/24".to_string()]);
        assert_eq!(d.ddos.hold_s, 5);
        assert_eq!(c.detect_hook.timeout_seconds, 10);
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
        let e = Config::parse("[detect_hook]\ntimeout_seconds = 0\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[detect_hook] timeout_seconds = 0"), "{e}");
    }

    #[test]
    fn durations_round_trip() {
        for s in ["0s", "90s", "15m", "12h", "7d", "14d"] {
            assert_eq!(HumanDuration::parse(s).unwrap().to_string(), s);
        }
        assert!(HumanDuration::parse("7").is_none());
        assert!(HumanDuration::parse("d").is_none());
        assert!(HumanDuration::parse("99999999999999999999d").is_none());
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
