//! Alarms from state: resource usage, interface and session-table state, silent NSFs and exporters.
//!
//! Contract: [`StateAlarms`] is a synchronous state machine fed with messages
//! ([`StateAlarms::observe`]), interface states ([`StateAlarms::interface`]), liveness
//! ([`StateAlarms::seen`]) and the clock ([`StateAlarms::tick`]); it never reads the wall clock,
//! never panics, and tracks at most `max_sources` sources and `max_items` resources and
//! interfaces (what it could not track is counted in [`StateStats`]).
//!
//! - CPU, memory and disk usage come from resource-utilisation logs (`cpu-usage`, `memory-usage`,
//!   `disks`). As the module says, an alarm is raised when usage *exceeds* the threshold. Re-arm
//!   rule: once raised, a resource raises again only after its usage has fallen to
//!   `threshold - hysteresis` or below, so a value hovering at the threshold gives one alarm.
//! - The session-table event is raised when current sessions exceed `session_threshold` percent of
//!   the table size (the NSF's own session-table `maximum-session`, else `session_table_size` for
//!   the `session-num` of resource-utilisation logs), with the same re-arm rule. Its `threshold`
//!   leaf is the threshold in sessions.
//! - Interface alarms are raised on a change of state; the first state known of an interface is
//!   a baseline (alarmed only when it is not `up`). Interface alarms that NSFs send themselves
//!   update the known state and raise nothing (the NSF's alarm is already the alarm).
//! - Silence: a watched source (in `silence`, or any source seen when `silence_default_s` > 0)
//!   that is not seen for longer than its interval raises a system alarm of category
//!   `hardware-alarm` (the model has no liveness case; `component-name` is `feed:<source>`),
//!   severity high; when it is seen again, another one of severity low says it came back.
//!   Configured sources never seen are watched from the first tick.
//! - Exporter clocks ([`StateAlarms::clock`], fed with the flow collector's estimates): an
//!   exporter's clock more than `clock_offset_max_s` off ours raises a system alarm of category
//!   `hardware-alarm` with `component-name` `clock:<exporter>` (`clock:<exporter>/<domain>` for a
//!   domain other than 0), severity middle, once; when the offset is back within 90 % of the
//!   bound (a clock hovering at the bound does not flap), another one of severity low says so.

use std::collections::BTreeMap;

use pharos_model::config::{OldUnit, RenamedKey};
use pharos_model::ident::{AlarmSeverity, InterfaceState, SystemAlarmCategory, YangEnum};
use pharos_model::{Kind, Message, SessionTable, Severity, SystemAlarm};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::ddos::ts_common;

/// Envelope `source` of the messages this engine raises.
pub const SOURCE: &str = "pharos:state";

/// Keys of `[state]` spelled otherwise by earlier releases, still read with a warning.
pub const RENAMED_KEYS: &[RenamedKey] = &[
    RenamedKey::duration(
        "state",
        "silence_default_s",
        "silence_default",
        OldUnit::Secs,
    ),
    RenamedKey::duration("state", "silence", "silence", OldUnit::Secs),
    RenamedKey::duration(
        "state",
        "clock_offset_max_s",
        "clock_offset_max",
        OldUnit::Secs,
    ),
];

/// Configuration of the state alarms (`[state]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// CPU usage threshold in percent (1..=100): alarm when usage exceeds it. Default 80.
    pub cpu_threshold: u8,
    /// Memory usage threshold in percent (1..=100). Default 80.
    pub memory_threshold: u8,
    /// Disk usage threshold in percent (1..=100), per disk. Default 90.
    pub disk_threshold: u8,
    /// Session-table threshold in percent of the table size (1..=100). Default 80.
    pub session_threshold: u8,
    /// Table size for `session-num` of resource-utilisation logs, when the NSF sends no
    /// session-table `maximum-session`. Default none (no session event from those logs).
    pub session_table_size: Option<u32>,
    /// Re-arm margin in percentage points: a raised resource re-arms at `threshold - hysteresis`.
    /// Default 5.
    pub hysteresis: u8,
    /// Silence interval, whole seconds, for sources not listed in `silence` (key
    /// `silence_default`); "0s" (default) watches only the listed sources.
    #[serde(rename = "silence_default", with = "pharos_model::config::secs")]
    pub silence_default_s: u64,
    /// Silence interval, whole seconds, per source (NSF name or exporter address); "0s" unwatches
    /// it.
    #[serde(with = "pharos_model::config::secs_map")]
    pub silence: BTreeMap<String, u64>,
    /// Most sources watched for silence. Default 10000.
    pub max_sources: usize,
    /// Most resources and interfaces tracked. Default 100000.
    pub max_items: usize,
    /// A flow exporter whose clock is further than this from ours, whole seconds (key
    /// `clock_offset_max`), raises an alarm; "0s" turns the clock alarm off. Default "1m".
    #[serde(rename = "clock_offset_max", with = "pharos_model::config::secs")]
    pub clock_offset_max_s: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            cpu_threshold: 80,
            memory_threshold: 80,
            disk_threshold: 90,
            session_threshold: 80,
            session_table_size: None,
            hysteresis: 5,
            silence_default_s: 0,
            silence: BTreeMap::new(),
            max_sources: 10_000,
            max_items: 100_000,
            clock_offset_max_s: 60,
        }
    }
}

/// What a [`StateAlarm`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmCause {
    /// CPU usage exceeded its threshold.
    Cpu,
    /// Memory usage exceeded its threshold.
    Memory,
    /// A disk's usage exceeded its threshold.
    Disk,
    /// Session-table use exceeded its threshold.
    SessionTable,
    /// An interface changed state.
    Interface,
    /// A source fell silent for longer than its interval.
    Silent,
    /// A silent source was seen again.
    Resumed,
    /// A flow exporter's clock is further from ours than `clock_offset_max_s`.
    ClockOffset,
    /// A flow exporter's clock is back within the bound.
    ClockBack,
}

/// One alarm raised from state, with the I2NSF message to store and emit.
#[derive(Debug, Clone, PartialEq)]
pub struct StateAlarm {
    /// Why it was raised.
    pub cause: AlarmCause,
    /// The system alarm or session-table event.
    pub message: Message,
}

/// What the engine counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateStats {
    /// Messages observed.
    pub observed: u64,
    /// Alarms raised.
    pub alarms: u64,
    /// Sources not watched because `max_sources` were already watched.
    pub dropped_sources: u64,
    /// Resources or interfaces not tracked because `max_items` were already tracked.
    pub dropped_items: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Cpu,
    Memory,
    Disk(String),
    Sessions,
    Interface(String),
}

#[derive(Debug, Clone, Copy)]
enum ItemState {
    /// Usage alarm raised (waiting to re-arm) or not.
    Raised(bool),
    /// Last known interface state.
    Iface(InterfaceState),
}

#[derive(Debug, Clone, Copy)]
struct Watch {
    interval_ms: u64,
    last_ms: u64,
    silent: bool,
}

/// The state-alarm engine.
#[derive(Debug)]
pub struct StateAlarms {
    cfg: StateConfig,
    items: BTreeMap<(String, Item), ItemState>,
    table_size: BTreeMap<String, u32>,
    watches: BTreeMap<String, Watch>,
    /// Exporter clocks (exporter, domain) known, and whether their alarm is raised.
    clocks: BTreeMap<(String, u32), bool>,
    started: bool,
    stats: StateStats,
}

fn percent(key: &str, v: u8) -> Result<u8, ConfigError> {
    if (1..=100).contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::new(
            "state",
            key,
            v,
            "a percentage from 1 to 100",
        ))
    }
}

impl StateConfig {
    /// Checks the thresholds; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        percent("cpu_threshold", self.cpu_threshold)?;
        percent("memory_threshold", self.memory_threshold)?;
        percent("disk_threshold", self.disk_threshold)?;
        percent("session_threshold", self.session_threshold)?;
        if self.hysteresis > 100 {
            return Err(ConfigError::new(
                "state",
                "hysteresis",
                self.hysteresis,
                "percentage points from 0 to 100",
            ));
        }
        Ok(())
    }
}

impl StateAlarms {
    /// An engine for `cfg`, or what is wrong with it.
    pub fn new(cfg: StateConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            items: BTreeMap::new(),
            table_size: BTreeMap::new(),
            watches: BTreeMap::new(),
            clocks: BTreeMap::new(),
            started: false,
            stats: StateStats::default(),
        })
    }

    /// What the engine counted so far.
    pub fn stats(&self) -> StateStats {
        self.stats
    }

    /// Feeds one message at `now_ms`: marks its NSF seen and appends the alarms it raises.
    pub fn observe(&mut self, msg: &Message, now_ms: u64, out: &mut Vec<StateAlarm>) {
        self.stats.observed += 1;
        let nsf = msg.common.nsf_name.as_str();
        self.seen(nsf, now_ms, out);
        match &msg.kind {
            Kind::ResourceUtilizationLog(r) => {
                let (cpu, mem) = (self.cfg.cpu_threshold, self.cfg.memory_threshold);
                if let Some(u) = r.cpu_usage {
                    self.usage(nsf, Item::Cpu, u, cpu, now_ms, out);
                }
                if let Some(u) = r.memory_usage {
                    self.usage(nsf, Item::Memory, u, mem, now_ms, out);
                }
                for d in &r.disks {
                    let used = d
                        .disk_usage
                        .or_else(|| d.disk_space_left.map(|l| 100u8.saturating_sub(l)));
                    if let Some(u) = used {
                        let item = Item::Disk(d.disk_id.clone());
                        self.usage(nsf, item, u, self.cfg.disk_threshold, now_ms, out);
                    }
                }
                let size = self
                    .table_size
                    .get(nsf)
                    .copied()
                    .or(self.cfg.session_table_size);
                if let (Some(cur), Some(max)) = (r.session_num, size) {
                    self.sessions(nsf, cur, max, now_ms, out);
                }
            }
            Kind::SessionTable(s) => {
                if let Some(max) = s.maximum_session.filter(|m| *m > 0) {
                    if self.table_size.len() < self.cfg.max_sources
                        || self.table_size.contains_key(nsf)
                    {
                        self.table_size.insert(nsf.to_string(), max);
                    }
                    if let Some(cur) = s.current_session {
                        self.sessions(nsf, cur, max, now_ms, out);
                    }
                }
            }
            Kind::SystemAlarm(a)
                if a.alarm_category == Some(SystemAlarmCategory::InterfaceAlarm) =>
            {
                if let (Some(name), Some(state)) = (&a.interface_name, a.interface_state) {
                    let key = (nsf.to_string(), Item::Interface(name.clone()));
                    self.set_item(key, ItemState::Iface(state));
                }
            }
            _ => {}
        }
    }

    /// Records the state of interface `iface` of `nsf` (from a poller); alarms on a change.
    pub fn interface(
        &mut self,
        nsf: &str,
        iface: &str,
        state: InterfaceState,
        now_ms: u64,
        out: &mut Vec<StateAlarm>,
    ) {
        let key = (nsf.to_string(), Item::Interface(iface.to_string()));
        let before = match self.items.get(&key) {
            Some(ItemState::Iface(s)) => Some(*s),
            _ => None,
        };
        if before == Some(state) || (before.is_none() && state == InterfaceState::Up) {
            self.set_item(key, ItemState::Iface(state));
            return;
        }
        if !self.set_item(key, ItemState::Iface(state)) {
            return;
        }
        let sev = match state {
            InterfaceState::Up => AlarmSeverity::Low,
            InterfaceState::Down | InterfaceState::LowerLayerDown | InterfaceState::NotPresent => {
                AlarmSeverity::High
            }
            _ => AlarmSeverity::Middle,
        };
        let from = before.map_or("unknown", |s| s.as_str());
        let text = format!(
            "interface {iface} of {nsf} is {} (was {from})",
            state.as_str()
        );
        let alarm = SystemAlarm {
            alarm_category: Some(SystemAlarmCategory::InterfaceAlarm),
            interface_name: Some(iface.to_string()),
            interface_state: Some(state),
            severity: Some(sev),
            ..SystemAlarm::default()
        };
        self.raise(
            AlarmCause::Interface,
            nsf,
            Kind::SystemAlarm(alarm),
            sev,
            text,
            now_ms,
            out,
        );
    }

    /// Marks `source` (an NSF name or exporter address) seen at `now_ms`; appends the alarm that
    /// it came back if it was silent.
    pub fn seen(&mut self, source: &str, now_ms: u64, out: &mut Vec<StateAlarm>) {
        if let Some(w) = self.watches.get_mut(source) {
            let was = w.silent.then_some(now_ms.saturating_sub(w.last_ms));
            w.last_ms = w.last_ms.max(now_ms);
            w.silent = false;
            if let Some(gap_ms) = was {
                let text = format!(
                    "{source} is sending again after {} s of silence",
                    gap_ms / 1000
                );
                self.feed_alarm(
                    AlarmCause::Resumed,
                    source,
                    AlarmSeverity::Low,
                    text,
                    now_ms,
                    out,
                );
            }
            return;
        }
        let interval_s = self
            .cfg
            .silence
            .get(source)
            .copied()
            .unwrap_or(self.cfg.silence_default_s);
        if interval_s == 0 {
            return;
        }
        if self.watches.len() >= self.cfg.max_sources {
            self.stats.dropped_sources += 1;
            return;
        }
        self.watches.insert(
            source.to_string(),
            Watch {
                interval_ms: interval_s.saturating_mul(1000),
                last_ms: now_ms,
                silent: false,
            },
        );
    }

    /// Advances the clock (call about once a second); appends the alarms of sources that fell
    /// silent.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<StateAlarm>) {
        if !self.started {
            self.started = true;
            let listed: Vec<String> = self.cfg.silence.keys().cloned().collect();
            for s in listed {
                let mut none = Vec::new();
                self.seen(&s, now_ms, &mut none);
            }
        }
        let mut fell = Vec::new();
        for (name, w) in &mut self.watches {
            if !w.silent && now_ms.saturating_sub(w.last_ms) > w.interval_ms {
                w.silent = true;
                fell.push((name.clone(), w.last_ms, w.interval_ms));
            }
        }
        for (name, last_ms, interval_ms) in fell {
            let text = format!(
                "{name} silent for {} s (interval {} s)",
                now_ms.saturating_sub(last_ms) / 1000,
                interval_ms / 1000
            );
            self.feed_alarm(
                AlarmCause::Silent,
                &name,
                AlarmSeverity::High,
                text,
                now_ms,
                out,
            );
        }
    }

    /// Records the latest clock offset estimate of flow `exporter`'s `domain` (its export time
    /// minus our receive time, ms); appends the alarm when it crossed `clock_offset_max_s`, or
    /// came back within 90 % of it.
    pub fn clock(
        &mut self,
        exporter: &str,
        domain: u32,
        offset_ms: i64,
        now_ms: u64,
        out: &mut Vec<StateAlarm>,
    ) {
        let bound_ms = self.cfg.clock_offset_max_s.saturating_mul(1000);
        if bound_ms == 0 {
            return;
        }
        let key = (exporter.to_string(), domain);
        let raised = match self.clocks.get(&key) {
            Some(r) => *r,
            None if self.clocks.len() >= self.cfg.max_sources => {
                self.stats.dropped_sources += 1;
                return;
            }
            None => false,
        };
        let off = offset_ms.unsigned_abs();
        let (now_raised, cause, sev) = if !raised && off > bound_ms {
            (true, AlarmCause::ClockOffset, AlarmSeverity::Middle)
        } else if raised && off <= bound_ms / 10 * 9 {
            (false, AlarmCause::ClockBack, AlarmSeverity::Low)
        } else {
            self.clocks.insert(key, raised);
            return;
        };
        self.clocks.insert(key, now_raised);
        let bound_s = self.cfg.clock_offset_max_s;
        let secs = offset_ms as f64 / 1000.0;
        let name = if domain == 0 {
            exporter.to_string()
        } else {
            format!("{exporter}/{domain}")
        };
        let text = if now_raised {
            let side = if offset_ms < 0 { "behind" } else { "ahead of" };
            format!(
                "clock of flow exporter {name} is {:.1} s {side} ours (offset {secs:+.1} s, bound {bound_s} s); its flow times are corrected by the offset",
                secs.abs()
            )
        } else {
            format!(
                "clock of flow exporter {name} is back within {bound_s} s of ours (offset {secs:+.1} s)"
            )
        };
        let alarm = SystemAlarm {
            alarm_category: Some(SystemAlarmCategory::HardwareAlarm),
            component_name: Some(format!("clock:{name}")),
            severity: Some(sev),
            ..SystemAlarm::default()
        };
        self.raise(
            cause,
            exporter,
            Kind::SystemAlarm(alarm),
            sev,
            text,
            now_ms,
            out,
        );
    }

    /// Exporter clocks (exporter, domain) whose alarm is raised now.
    pub fn clocks_off(&self) -> Vec<(&str, u32)> {
        self.clocks
            .iter()
            .filter(|(_, r)| **r)
            .map(|((e, d), _)| (e.as_str(), *d))
            .collect()
    }

    /// Sources watched for silence that are silent now.
    pub fn silent_sources(&self) -> Vec<&str> {
        self.watches
            .iter()
            .filter(|(_, w)| w.silent)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Stores `state` for `key`; false (and counted) when the table is full and `key` is new.
    fn set_item(&mut self, key: (String, Item), state: ItemState) -> bool {
        if self.items.len() >= self.cfg.max_items && !self.items.contains_key(&key) {
            self.stats.dropped_items += 1;
            return false;
        }
        self.items.insert(key, state);
        true
    }

    /// Applies the threshold and re-arm rule to `item`; true when it crossed upward now.
    fn crossed(&mut self, nsf: &str, item: Item, usage: u64, threshold: u64, rearm: u64) -> bool {
        let key = (nsf.to_string(), item);
        let raised = matches!(self.items.get(&key), Some(ItemState::Raised(true)));
        if !raised && usage > threshold {
            return self.set_item(key, ItemState::Raised(true));
        }
        if raised && usage <= rearm {
            self.set_item(key, ItemState::Raised(false));
        }
        false
    }

    fn usage(
        &mut self,
        nsf: &str,
        item: Item,
        usage: u8,
        threshold: u8,
        now_ms: u64,
        out: &mut Vec<StateAlarm>,
    ) {
        let usage = usage.min(100);
        let rearm = threshold.saturating_sub(self.cfg.hysteresis);
        let (cause, category, what) = match &item {
            Item::Cpu => (
                AlarmCause::Cpu,
                SystemAlarmCategory::CpuAlarm,
                "cpu".to_string(),
            ),
            Item::Memory => (
                AlarmCause::Memory,
                SystemAlarmCategory::MemoryAlarm,
                "memory".to_string(),
            ),
            Item::Disk(id) => (
                AlarmCause::Disk,
                SystemAlarmCategory::DiskAlarm,
                format!("disk {id}"),
            ),
            Item::Sessions | Item::Interface(_) => return,
        };
        if !self.crossed(nsf, item, usage.into(), threshold.into(), rearm.into()) {
            return;
        }
        let sev = if usage >= 95 {
            AlarmSeverity::Critical
        } else {
            AlarmSeverity::High
        };
        let text = format!("{what} usage of {nsf} is {usage}% (threshold {threshold}%)");
        let alarm = SystemAlarm {
            alarm_category: Some(category),
            severity: Some(sev),
            usage: Some(usage),
            threshold: Some(threshold),
            ..SystemAlarm::default()
        };
        self.raise(cause, nsf, Kind::SystemAlarm(alarm), sev, text, now_ms, out);
    }

    fn sessions(&mut self, nsf: &str, cur: u32, max: u32, now_ms: u64, out: &mut Vec<StateAlarm>) {
        if max == 0 {
            return;
        }
        let pct = |p: u8| u64::from(max) * u64::from(p) / 100;
        let threshold = pct(self.cfg.session_threshold);
        let rearm = pct(self
            .cfg
            .session_threshold
            .saturating_sub(self.cfg.hysteresis));
        if !self.crossed(nsf, Item::Sessions, cur.into(), threshold, rearm) {
            return;
        }
        let text =
            format!("session table of {nsf} holds {cur} of {max} sessions (threshold {threshold})");
        let event = SessionTable {
            current_session: Some(cur),
            maximum_session: Some(max),
            threshold: Some(u32::try_from(threshold).unwrap_or(u32::MAX)),
        };
        let kind = Kind::SessionTable(event);
        self.raise(
            AlarmCause::SessionTable,
            nsf,
            kind,
            AlarmSeverity::High,
            text,
            now_ms,
            out,
        );
    }

    fn feed_alarm(
        &mut self,
        cause: AlarmCause,
        source: &str,
        sev: AlarmSeverity,
        text: String,
        now_ms: u64,
        out: &mut Vec<StateAlarm>,
    ) {
        let alarm = SystemAlarm {
            alarm_category: Some(SystemAlarmCategory::HardwareAlarm),
            component_name: Some(format!("feed:{source}")),
            severity: Some(sev),
            ..SystemAlarm::default()
        };
        self.raise(
            cause,
            source,
            Kind::SystemAlarm(alarm),
            sev,
            text,
            now_ms,
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        cause: AlarmCause,
        nsf: &str,
        kind: Kind,
        sev: AlarmSeverity,
        text: String,
        now_ms: u64,
        out: &mut Vec<StateAlarm>,
    ) {
        self.stats.alarms += 1;
        let common = ts_common(nsf, SOURCE, now_ms, Severity::from(sev), text);
        out.push(StateAlarm {
            cause,
            message: Message { common, kind },
        });
    }
}

#[cfg(test)]
mod tests;
