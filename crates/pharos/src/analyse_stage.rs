//! The message analysis stage of `pharos run` (`[notify]`, `[state]`): runs on the store writer's
//! thread over every normalised or pushed submission, before it is stored (docs/detect.md).
//!
//! ```text
//! push / syslog stage --submit--> [writer thread: AnalyseStage -> insert / update] --> store
//! flow consumer --exporter seen--> SeenSources --tick--> StateAlarms
//! flow collector --clock offsets--> SeenSources::clocks --tick--> StateAlarms
//! ```
//!
//! Contract:
//! - Events (alarms, nsf events; [`pharos_model::Kind::is_event`]) go through the
//!   [`Notifier`]: thresholds may silence them (counted, not stored), identical ones within the
//!   dedup window fold into the first stored one, whose envelope `count`, `first-seen` and
//!   `last-seen` are updated in place when the window closes; dampening holds later outputs back.
//! - Logs and counters are stored as they are; the correlation rules see them too (a failed login
//!   log counts towards a brute-force rule) and what they raise is stored as a new event.
//! - Firewall traffic logs whose action is `drop` or `reject` are connection attempts for a scan
//!   detector of their own (`[detect.scan]` settings, when `[detect]` is set): one source probing
//!   many ports of a host, or one port on many hosts, gives a port-scan or host-sweep intrusion
//!   event, as the flow scan detector does from flows.
//! - Every message is observed by [`StateAlarms`] (resource usage, session table, interfaces,
//!   its NSF is seen); flow exporters are seen from the flow consumer. Alarms are stored as raised.
//! - Every tick, the exporter clock offsets the flow collector published in
//!   [`SeenSources::clocks`] are checked against `[state] clock_offset_max_s` (an estimate of at
//!   least [`CLOCK_MIN_SAMPLES`] datagrams: one odd first datagram raises nothing).
//! - `first-seen` and `last-seen` are when Pharos received the first and the last of a fold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pharos_detect::ScanDetector;
use pharos_detect::notify::{DedupKey, Notice, Notifier, Phase};
use pharos_detect::state::{StateAlarm, StateAlarms};
use pharos_model::Message;
use pharos_store::writer::{Analyse, Analysed};

/// Registers the descriptions of the stage's metrics (for `/metrics`).
pub fn describe_metrics() {
    use metrics::describe_counter;
    describe_counter!(
        "pharos_notify_received_total",
        "Events run through the notification stage ([notify])"
    );
    describe_counter!(
        "pharos_notify_thresholded_total",
        "Events silenced by [notify] threshold rules (not stored)"
    );
    describe_counter!(
        "pharos_notify_folded_total",
        "Events folded into an identical one stored earlier (its count was updated)"
    );
    describe_counter!(
        "pharos_notify_dampened_total",
        "Outputs held back by dampening (a later one replaced them or they were stored late)"
    );
    describe_counter!(
        "pharos_notify_correlated_total",
        "Events raised by [notify] correlation rules"
    );
    describe_counter!(
        "pharos_notify_untracked_total",
        "Notifications passed through unfolded because a [notify] table was full (max_keys)"
    );
    describe_counter!(
        "pharos_state_alarms_total",
        "Alarms raised from state ([state]), by cause"
    );
}

/// Datagrams an exporter clock estimate must rest on before it may raise the clock alarm.
pub const CLOCK_MIN_SAMPLES: u32 = 3;

/// What the flow side tells the stage: sources seen outside the writer thread (flow exporters),
/// for the silence watch (source name to the latest Unix ms it was seen), and the exporters' clock
/// offsets (give [`SeenSources::clocks`] to the flow collector, `FlowUdpConfig::clocks`).
#[derive(Clone, Default)]
pub struct SeenSources {
    seen: Arc<Mutex<HashMap<String, u64>>>,
    clocks: pharos_model::flow::ExporterClocks,
}

impl SeenSources {
    /// The exporter clock table the flow collector publishes into and the `[state]` clock alarm
    /// reads (a shared handle).
    pub fn clocks(&self) -> pharos_model::flow::ExporterClocks {
        self.clocks.clone()
    }

    /// Marks `source` seen at `now_ms`.
    pub fn seen(&self, source: String, now_ms: u64) {
        if let Ok(mut m) = self.seen.lock() {
            // bounded by the exporters that send: the stage drains it every tick
            if m.len() < 100_000 || m.contains_key(&source) {
                m.insert(source, now_ms);
            }
        }
    }

    fn drain(&self) -> Vec<(String, u64)> {
        self.seen
            .lock()
            .map(|mut m| m.drain().collect())
            .unwrap_or_default()
    }
}

/// The stage: notification handling and alarms from state.
pub struct AnalyseStage {
    notifier: Option<Notifier>,
    state: Option<StateAlarms>,
    /// Scans from firewall deny logs.
    denied: Option<ScanDetector>,
    scans: Vec<pharos_detect::ScanAlarm>,
    seen: SeenSources,
    /// Stored id of the first notice of each open fold, and when it was output (ms).
    ids: HashMap<DedupKey, (u64, u64)>,
    /// Keys of first notices output and not yet stored.
    awaiting: HashMap<DedupKey, u64>,
    /// How long an id is kept for a fold update (dedup window plus the longest dampening).
    horizon_ms: u64,
    notices: Vec<Notice>,
    alarms: Vec<StateAlarm>,
    last_stats: pharos_detect::notify::NotifyStats,
    now_ms: u64,
}

impl AnalyseStage {
    /// The stage for the given sections (`None` when neither is configured).
    pub fn new(
        notify: Option<&pharos_detect::notify::NotifyConfig>,
        state: Option<&pharos_detect::state::StateConfig>,
        scan: Option<&pharos_detect::ScanConfig>,
        seen: SeenSources,
    ) -> anyhow::Result<Option<Self>> {
        if notify.is_none() && state.is_none() && scan.is_none() {
            return Ok(None);
        }
        let horizon_ms = notify.map_or(0, |n| {
            let damp = n.dampening_s.values().copied().max().unwrap_or(0);
            (n.dedup_window_s + damp + 60) * 1000
        });
        Ok(Some(Self {
            notifier: notify
                .map(|n| Notifier::new(n.clone()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("[notify] {e}"))?,
            state: state
                .map(|s| StateAlarms::new(s.clone()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("[state] {e}"))?,
            denied: scan
                .map(|c| ScanDetector::new(c.clone()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("[detect.scan] {e}"))?,
            scans: Vec::new(),
            seen,
            ids: HashMap::new(),
            awaiting: HashMap::new(),
            horizon_ms,
            notices: Vec::new(),
            alarms: Vec::new(),
            last_stats: Default::default(),
            now_ms: 0,
        }))
    }

    /// Turns the notices and alarms raised so far into inserts and updates.
    fn flush(&mut self, now_ms: u64, out: &mut Analysed) {
        for n in self.notices.drain(..) {
            let mut m = n.message;
            if n.count > 1 || n.phase != Phase::First {
                m.common.count = Some(n.count);
                m.common.first_seen = Some(ts(n.first_seen_ms));
                m.common.last_seen = Some(ts(n.last_seen_ms));
            }
            match n.phase {
                Phase::Update => {
                    let key = DedupKey::of(&m);
                    match self.ids.remove(&key) {
                        Some((id, _)) => {
                            m.common.id = Some(id);
                            out.update.push(m);
                        }
                        // its first was dampened or stored too long ago: a message of its own
                        None => out.insert.push(m),
                    }
                }
                Phase::First => {
                    self.awaiting.insert(DedupKey::of(&m), now_ms);
                    out.insert.push(m);
                }
                Phase::Correlated => out.insert.push(m),
            }
        }
        for sc in self.scans.drain(..) {
            metrics::counter!("pharos_detect_scans_total").increment(1);
            let d = pharos_detect::Detection::Scan(sc);
            tracing::warn!(
                "scan found in firewall deny logs: {}",
                crate::detect_stage::render::readable(&d)
            );
            if let pharos_detect::Detection::Scan(sc) = d {
                out.insert.push(sc.message);
            }
        }
        for a in self.alarms.drain(..) {
            metrics::counter!("pharos_state_alarms_total", "cause" => format!("{:?}", a.cause).to_lowercase())
                .increment(1);
            out.insert.push(a.message);
        }
        self.export_stats();
    }

    fn export_stats(&mut self) {
        let Some(n) = &self.notifier else { return };
        let s = n.stats();
        let p = self.last_stats;
        metrics::counter!("pharos_notify_received_total").increment(s.received - p.received);
        metrics::counter!("pharos_notify_thresholded_total")
            .increment(s.thresholded - p.thresholded);
        metrics::counter!("pharos_notify_folded_total").increment(s.folded - p.folded);
        metrics::counter!("pharos_notify_dampened_total").increment(s.dampened - p.dampened);
        metrics::counter!("pharos_notify_correlated_total").increment(s.correlated - p.correlated);
        metrics::counter!("pharos_notify_untracked_total")
            .increment(s.dropped_full - p.dropped_full);
        self.last_stats = s;
    }
}

impl Analyse for AnalyseStage {
    fn submitted(&mut self, msgs: Vec<Message>, now_ms: u64, out: &mut Analysed) {
        let now_ms = now_ms.max(self.now_ms);
        self.now_ms = now_ms;
        for m in msgs {
            if let Some(st) = self.state.as_mut() {
                st.observe(&m, now_ms, &mut self.alarms);
            }
            if let (Some(d), Some((src, dst, port, proto))) = (self.denied.as_mut(), denied(&m)) {
                d.observe_denied(src, dst, port, proto, now_ms, &mut self.scans);
            }
            match self.notifier.as_mut() {
                Some(n) if m.kind.is_event() => n.process(&m, now_ms, &mut self.notices),
                Some(n) => {
                    n.correlate(&m, now_ms, &mut self.notices);
                    out.insert.push(m);
                }
                None => out.insert.push(m),
            }
        }
        self.flush(now_ms, out);
    }

    fn stored(&mut self, inserted: &[Message]) {
        if self.awaiting.is_empty() {
            return;
        }
        for m in inserted {
            if !m.kind.is_event() {
                continue;
            }
            let key = DedupKey::of(m);
            if let (Some(at), Some(id)) = (self.awaiting.remove(&key), m.common.id) {
                self.ids.insert(key, (id, at));
            }
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Analysed) {
        let now_ms = now_ms.max(self.now_ms);
        self.now_ms = now_ms;
        if let Some(st) = self.state.as_mut() {
            for (source, at) in self.seen.drain() {
                st.seen(&source, at.min(now_ms), &mut self.alarms);
            }
            st.tick(now_ms, &mut self.alarms);
            for c in self.seen.clocks.snapshot() {
                if c.samples >= CLOCK_MIN_SAMPLES {
                    let exporter = c.exporter.to_string();
                    st.clock(&exporter, c.domain, c.offset_ms, now_ms, &mut self.alarms);
                }
            }
        }
        if let Some(n) = self.notifier.as_mut() {
            n.tick(now_ms, &mut self.notices);
        }
        let horizon = self.horizon_ms;
        self.ids
            .retain(|_, (_, at)| now_ms.saturating_sub(*at) <= horizon);
        self.awaiting
            .retain(|_, at| now_ms.saturating_sub(*at) <= horizon);
        self.flush(now_ms, out);
    }

    fn finish(&mut self, now_ms: u64, out: &mut Analysed) {
        if let Some(n) = self.notifier.as_mut() {
            n.finish(now_ms, &mut self.notices);
        }
        self.flush(now_ms, out);
    }
}

/// A refused connection attempt of a firewall traffic log: source, destination, port, protocol.
fn denied(m: &Message) -> Option<(std::net::IpAddr, std::net::IpAddr, u16, u8)> {
    use pharos_model::ident::{IngressAction, Protocol};
    let pharos_model::Kind::FirewallTrafficLog(f) = &m.kind else {
        return None;
    };
    if !matches!(f.action, Some(IngressAction::Drop | IngressAction::Reject)) {
        return None;
    }
    let proto = match f.protocol {
        Some(Protocol::Udp) => 17,
        Some(Protocol::Sctp) => 132,
        _ => 6,
    };
    Some((f.src_ip?, f.dst_ip?, f.dst_port?, proto))
}

fn ts(ms: u64) -> pharos_model::Timestamp {
    chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_detect::notify::NotifyConfig;

    fn intrusion(src: &str) -> Message {
        Message::new(
            "ids-1",
            pharos_model::Kind::Intrusion(pharos_model::IntrusionEvent {
                src_ip: Some(src.parse().unwrap()),
                src_port: None,
                dst_ip: Some("192.0.2.10".parse().unwrap()),
                dst_port: Some(22),
                rule_name: "ssh-bf".into(),
                protocol: None,
                app: None,
                attack_type: None,
            }),
        )
    }

    /// Runs `msgs` as one submission, stores the inserts with fresh ids.
    fn submit(s: &mut AnalyseStage, msgs: Vec<Message>, now: u64, next_id: &mut u64) -> Analysed {
        let mut out = Analysed::default();
        s.submitted(msgs, now, &mut out);
        for m in &mut out.insert {
            m.common.id = Some(*next_id);
            *next_id += 1;
        }
        s.stored(&out.insert);
        out
    }

    #[test]
    fn identical_events_fold_into_the_first_stored_with_count_and_times() {
        let cfg = NotifyConfig {
            dedup_window_s: 10,
            ..NotifyConfig::default()
        };
        let mut s = AnalyseStage::new(Some(&cfg), None, None, SeenSources::default())
            .unwrap()
            .unwrap();
        let mut id = 1;
        let out = submit(&mut s, vec![intrusion("198.51.100.1")], 1_000, &mut id);
        assert_eq!(out.insert.len(), 1);
        assert_eq!(out.insert[0].common.count, None);
        let out = submit(
            &mut s,
            vec![intrusion("198.51.100.1"), intrusion("198.51.100.1")],
            2_000,
            &mut id,
        );
        assert!(out.insert.is_empty() && out.update.is_empty(), "{out:?}");
        // a different source is another notification
        let out = submit(&mut s, vec![intrusion("198.51.100.2")], 3_000, &mut id);
        assert_eq!(out.insert.len(), 1);
        let mut out = Analysed::default();
        s.tick(11_500, &mut out);
        assert!(out.insert.is_empty(), "{out:?}");
        assert_eq!(out.update.len(), 1, "{out:?}");
        let u = &out.update[0].common;
        assert_eq!(u.id, Some(1));
        assert_eq!(u.count, Some(3));
        assert_eq!(u.first_seen.map(|t| t.timestamp_millis()), Some(1_000));
        assert_eq!(u.last_seen.map(|t| t.timestamp_millis()), Some(2_000));
        // the fold of the second source had one notification: nothing to update
        let mut out = Analysed::default();
        s.tick(14_000, &mut out);
        assert!(out.update.is_empty() && out.insert.is_empty(), "{out:?}");
    }

    fn failed_login(src: [u8; 4]) -> Message {
        use pharos_model::*;
        Message::new(
            "sshd1",
            Kind::UserActivityLog(UserActivityLog {
                user: "root".into(),
                group: vec!["unknown".into()],
                ip_address: std::net::IpAddr::from(src),
                l4_port_number: 40000,
                authentication: None,
                online_duration: None,
                logout_duration: None,
                additional_info: AdditionalInfo {
                    activity_type: Some(ident::UserActivityType::FailedLogin),
                    cause: None,
                },
            }),
        )
    }

    #[test]
    fn logs_are_stored_as_they_are_and_feed_correlation() {
        let cfg: NotifyConfig = toml::from_str(
            r#"
            dedup_window = "1m"
            [[correlate]]
            name = "ssh-bf"
            activity = "failed-login"
            group_by = "src"
            count = 3
            seconds = 10
            emit = "brute-force"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut s = AnalyseStage::new(Some(&cfg), None, None, SeenSources::default())
            .unwrap()
            .unwrap();
        let mut id = 1;
        let mut logs = 0;
        let mut raised = Vec::new();
        for t in 0..4 {
            let out = submit(
                &mut s,
                vec![failed_login([203, 0, 113, 5])],
                1_000 + t * 100,
                &mut id,
            );
            for m in out.insert {
                if m.kind.is_event() {
                    raised.push(m);
                } else {
                    logs += 1;
                }
            }
        }
        // every log is stored (never folded); the third within 10 s raises one brute-force event
        assert_eq!(logs, 4);
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].kind.name(), "intrusion");
        assert_eq!(raised[0].rule_name(), Some("ssh-bf"));
    }

    #[test]
    fn published_exporter_clocks_raise_and_clear_the_state_clock_alarm() {
        let seen = SeenSources::default();
        let state = pharos_detect::state::StateConfig::default();
        let mut s = AnalyseStage::new(None, Some(&state), None, seen.clone())
            .unwrap()
            .unwrap();
        let clock = |offset_ms: i64, samples: u32| pharos_model::flow::ExporterClock {
            exporter: "192.0.2.7".parse().unwrap(),
            domain: 0,
            offset_ms,
            correction_ms: offset_ms,
            samples,
            datagrams: samples.into(),
            last_received_ms: 1_000,
            last_export_ms: 1_000,
        };
        let tick = |s: &mut AnalyseStage, now: u64| {
            let mut out = Analysed::default();
            s.tick(now, &mut out);
            out.insert
        };
        // one datagram is not an estimate yet
        seen.clocks().update(clock(-31_536_000_000, 1));
        assert!(tick(&mut s, 1_000).is_empty());
        seen.clocks().update(clock(-31_536_000_000, 3));
        let raised = tick(&mut s, 2_000);
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].common.nsf_name, "192.0.2.7");
        assert!(tick(&mut s, 3_000).is_empty(), "raised once");
        seen.clocks().update(clock(-200, 15));
        let back = tick(&mut s, 4_000);
        assert_eq!(back.len(), 1, "{back:?}");
        assert_eq!(back[0].common.severity, pharos_model::Severity::Low);
    }
}
