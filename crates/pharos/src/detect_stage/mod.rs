//! The detection stage of `pharos run` (`[detect]`): a thread that runs the DDoS and scan
//! detectors (`pharos_detect`) over the flow batches the flow consumer offers it, on wall-clock
//! time, and hands what they raise to the message store (one stored event per attack, updated in
//! place as it goes on and when it ends) and to the `[detect_hook]` command.
//!
//! ```text
//! flow consumer --FlowBatch (try_send, dropped and counted when full)--> detection thread
//!   --Detection--> store writer (start, scans) / MessageStore::update (updates, end) and hook
//! ```
//!
//! It lives in the binary because it joins the detector and the store (docs/detect.md).

pub mod hook;
pub mod learned;
pub mod render;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics::describe_counter;
use pharos_model::clock::now_ms;
use pharos_store::MessageStore;
use pharos_store::writer::StoreWriter;

/// Registers the descriptions of the detection stage's metrics (for `/metrics`).
pub fn describe_metrics() {
    describe_counter!(
        "pharos_detect_flows_total",
        "Flow records run through the DDoS and scan detectors"
    );
    describe_counter!(
        "pharos_detect_flows_skipped_total",
        "Flows the DDoS detector received but did not count, by reason (late: ended before the measurement window; max_hosts: to a new host while max_hosts hosts were tracked)"
    );
    describe_counter!(
        "pharos_detect_dropped_batches_total",
        "Flow batches not given to detection because its queue was full (they were still stored)"
    );
    describe_counter!(
        "pharos_detect_attacks_started_total",
        "DDoS attacks started, by attack type"
    );
    describe_counter!("pharos_detect_attacks_ended_total", "DDoS attacks ended");
    describe_counter!(
        "pharos_detect_attacks_adopted_total",
        "DDoS attacks found by this analyser that continue the ongoing event of another (a partition taken over in a cluster)"
    );
    describe_counter!(
        "pharos_detect_scans_total",
        "Port scans and host sweeps detected"
    );
    describe_counter!(
        "pharos_detect_store_failures_total",
        "Detection events that could not be stored or updated"
    );
    describe_counter!(
        "pharos_detect_baseline_save_failures_total",
        "Saves of the learned rates (baselines.json) that failed"
    );
    describe_counter!(
        "pharos_detect_hook_failures_total",
        "[detect_hook] runs that failed, by reason (spawn, exit, timeout, queue_full)"
    );
}

/// Batches that may wait for the detection thread before further ones skip detection.
const DETECT_QUEUE: usize = 64;

/// The detection thread and the sender the flow consumer offers batches on.
pub struct DetectStage {
    /// Where the flow consumer offers batches (without waiting).
    pub tx: std::sync::mpsc::SyncSender<pharos_model::flow::FlowBatch>,
    /// The detection thread.
    pub thread: std::thread::JoinHandle<()>,
}

/// Starts the detection thread (and the hook thread when `[detect_hook] command` is set), with
/// the learned rates saved in `data_dir` ([`learned`]). Must be called inside the tokio runtime:
/// stores go through `writer`, whose submissions are awaited on the runtime.
pub fn start(
    cfg: &pharos_detect::DetectConfig,
    hook: &crate::config::DetectHookConfig,
    store: Arc<dyn MessageStore>,
    writer: StoreWriter,
    data_dir: &std::path::Path,
    adopt: Option<Duration>,
) -> anyhow::Result<DetectStage> {
    let mut detector =
        pharos_detect::Detector::new(cfg.clone()).map_err(|e| anyhow::anyhow!("[detect]: {e}"))?;
    let learned_path = data_dir.join(learned::FILE);
    learned::load(&mut detector.ddos, &learned_path);
    let groups: Vec<String> = cfg
        .ddos
        .groups
        .iter()
        .map(|g| format!("{} ({})", g.name, g.prefixes.join(", ")))
        .collect();
    tracing::info!(
        networks = %cfg.ddos.networks.join(", "),
        groups = %groups.join("; "),
        scan_networks = %if cfg.scan.networks.is_empty() { "every destination".to_string() } else { cfg.scan.networks.join(", ") },
        hook = %hook.command,
        "detection started: DDoS on the networks and groups shown, scans on the scan networks"
    );
    let hook = if hook.command.is_empty() {
        None
    } else {
        Some(hook::Hook::start(hook).context("starting the detect hook thread")?)
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(DETECT_QUEUE);
    let rt = tokio::runtime::Handle::current();
    let sink = DetectSink {
        store,
        writer,
        rt,
        ids: Default::default(),
        adopt,
        adopted: Default::default(),
        hook,
    };
    let thread = std::thread::Builder::new()
        .name("pharos-detect".into())
        .spawn(move || detect_loop(rx, detector, sink, &learned_path))?;
    Ok(DetectStage { tx, thread })
}

/// Runs the detectors on wall-clock ms until the channel closes, ticking every second and saving
/// the learned rates every [`learned::SAVE_EVERY`]; then ends every attack going on, stores the
/// ends and saves the learned rates.
fn detect_loop(
    rx: std::sync::mpsc::Receiver<pharos_model::flow::FlowBatch>,
    mut detector: pharos_detect::Detector,
    mut sink: DetectSink,
    learned_path: &std::path::Path,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let flows = metrics::counter!("pharos_detect_flows_total");
    let mut skipped = Skipped::default();
    let mut found = Vec::new();
    // ticks at the start of each second (the detector evaluates every host once a second)
    let second_after = |ms: u64| (ms / 1000 + 1) * 1000;
    let mut next_tick = second_after(now_ms());
    let mut next_save = std::time::Instant::now() + learned::SAVE_EVERY;
    loop {
        let now = now_ms();
        // wake for the next second, or earlier for flows counted since the last evaluation
        let wake = detector.due_ms().map_or(next_tick, |d| d.min(next_tick));
        let wait = Duration::from_millis(wake.saturating_sub(now).clamp(1, 1000));
        match rx.recv_timeout(wait) {
            Ok(b) => {
                flows.increment(b.len() as u64);
                detector.process(&b, now_ms(), &mut found);
            }
            Err(RecvTimeoutError::Timeout) => detector.poll(now_ms(), &mut found),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = now_ms();
        if now >= next_tick {
            detector.tick(now, &mut found);
            next_tick = second_after(now);
            skipped.publish(&detector.ddos.stats());
        }
        sink.handle(&mut found);
        if std::time::Instant::now() >= next_save {
            learned::save(&detector.ddos, learned_path);
            next_save = std::time::Instant::now() + learned::SAVE_EVERY;
        }
    }
    detector.finish(now_ms(), &mut found);
    sink.handle(&mut found);
    learned::save(&detector.ddos, learned_path);
    if let Some(h) = sink.hook.take() {
        h.finish();
    }
}

/// Flows the DDoS detector received but did not count, published as
/// `pharos_detect_flows_skipped_total{reason}` and logged (at most once a minute) when hosts
/// beyond `max_hosts` were left out: a detector that silently stops counting is blind.
#[derive(Default)]
struct Skipped {
    late: u64,
    max_hosts: u64,
    unlogged: u64,
    logged_at: Option<std::time::Instant>,
}

impl Skipped {
    fn publish(&mut self, st: &pharos_detect::ddos::DdosStats) {
        if st.late > self.late {
            metrics::counter!("pharos_detect_flows_skipped_total", "reason" => "late")
                .increment(st.late - self.late);
            self.late = st.late;
        }
        if st.dropped_hosts > self.max_hosts {
            let n = st.dropped_hosts - self.max_hosts;
            metrics::counter!("pharos_detect_flows_skipped_total", "reason" => "max_hosts")
                .increment(n);
            self.max_hosts = st.dropped_hosts;
            self.unlogged += n;
        }
        if self.unlogged > 0
            && self
                .logged_at
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            tracing::warn!(
                hosts = st.hosts,
                "detection: {} flows to hosts beyond [detect.ddos] max_hosts were not counted; \
                 quiet hosts are forgotten each second while the table is this full, raise max_hosts \
                 if this goes on",
                self.unlogged
            );
            self.unlogged = 0;
            self.logged_at = Some(std::time::Instant::now());
        }
    }
}

/// Where detections go: the message store (attacks updated in place) and the hook.
struct DetectSink {
    store: Arc<dyn MessageStore>,
    writer: StoreWriter,
    rt: tokio::runtime::Handle,
    /// Stored id of each attack going on.
    ids: std::collections::HashMap<pharos_detect::AttackId, u64>,
    /// In a cluster (`analyser` role): how recently another analyser must have updated an
    /// ongoing attack on the same victim and type for a start found here to continue that event
    /// instead of storing a second one (a partition that moved after its analyser died).
    adopt: Option<Duration>,
    /// The start time of each adopted attack's stored event, kept in every update.
    adopted: std::collections::HashMap<pharos_detect::AttackId, pharos_model::Timestamp>,
    hook: Option<hook::Hook>,
}

impl DetectSink {
    fn handle(&mut self, found: &mut Vec<pharos_detect::Detection>) {
        use pharos_detect::{AttackUpdate, Detection};
        for d in found.drain(..) {
            match &d {
                Detection::Attack(AttackUpdate::Started(_)) => {
                    metrics::counter!("pharos_detect_attacks_started_total",
                        "type" => render::attack_type(&d))
                    .increment(1);
                    tracing::warn!("attack started: {}", render::readable(&d));
                }
                Detection::Attack(AttackUpdate::Ended(_)) => {
                    metrics::counter!("pharos_detect_attacks_ended_total").increment(1);
                    tracing::info!("attack ended: {}", render::readable(&d));
                }
                Detection::Attack(AttackUpdate::Updated(_)) => {}
                Detection::Scan(_) => {
                    metrics::counter!("pharos_detect_scans_total").increment(1);
                    tracing::warn!("scan found: {}", render::readable(&d));
                }
            }
            if let (Some(h), Detection::Attack(_)) = (&self.hook, &d) {
                h.offer(&d);
            }
            self.store(&d);
        }
    }

    /// Inserts a start or a scan; replaces the stored event of an attack on update and end (or
    /// inserts it then, when its start could not be stored).
    fn store(&mut self, d: &pharos_detect::Detection) {
        use pharos_detect::{AttackUpdate, Detection};
        use pharos_model::Kind;
        let ended = matches!(d, Detection::Attack(AttackUpdate::Ended(_)));
        let known = match d {
            Detection::Attack(u) if ended => self.ids.remove(u.id()),
            Detection::Attack(u) => self.ids.get(u.id()).copied(),
            Detection::Scan(_) => None,
        };
        let known = match (known, d, self.adopt) {
            (None, Detection::Attack(u @ AttackUpdate::Started(_)), Some(window)) => {
                self.adopt_ongoing(u, window)
            }
            (k, _, _) => k,
        };
        let stored = match known {
            Some(id) => {
                let mut m = d.message().clone();
                m.common.id = Some(id);
                if let (Detection::Attack(u), Kind::Ddos(e)) = (d, &mut m.kind) {
                    let adopted = if ended {
                        self.adopted.remove(u.id())
                    } else {
                        self.adopted.get(u.id()).copied()
                    };
                    if let Some(start) = adopted {
                        e.start_time = start;
                        m.common.event_time = start;
                    }
                }
                let r = self.store.update(&m).map_err(|e| e.to_string());
                // an attack that ended is over: its event is closed (unless already closed)
                if ended && r.is_ok() {
                    self.close(id);
                }
                r
            }
            None => self.insert(d).map(|id| match (d, id, ended) {
                (Detection::Attack(u), Some(id), false) => {
                    self.ids.insert(*u.id(), id);
                }
                (Detection::Attack(_), Some(id), true) => self.close(id),
                _ => {}
            }),
        };
        if let Err(e) = stored {
            metrics::counter!("pharos_detect_store_failures_total").increment(1);
            tracing::warn!(error = %e, event = %render::readable(d), "detection event not stored");
        }
    }

    /// The stored event of an attack on the same victim and of the same type that is still going
    /// on (no end) and was updated within `window`: another analyser's, whose partition this
    /// one took over. Its id is remembered for the attack's updates and end, which keep its
    /// start time. A store error is logged and means "none" (a second event beats a lost one).
    fn adopt_ongoing(&mut self, u: &pharos_detect::AttackUpdate, window: Duration) -> Option<u64> {
        use pharos_model::Kind;
        let Kind::Ddos(new) = &u.message().kind else {
            return None;
        };
        let victim = *new.attack_dst_ip.first()?;
        let q = pharos_store::MessageQuery {
            kinds: vec!["ddos".into()],
            dst: Some(ipnet::IpNet::from(victim)),
            limit: 20,
            ..Default::default()
        };
        let page = match self.store.query(&q) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "detection: cannot look for an ongoing event to continue");
                return None;
            }
        };
        let now = pharos_model::clock::now_ms();
        let recent = |t: pharos_model::Timestamp| {
            u64::try_from(t.timestamp_millis())
                .is_ok_and(|ms| now.saturating_sub(ms) <= window.as_millis() as u64)
        };
        let found = page.items.into_iter().find(|s| {
            matches!(&s.message.kind, Kind::Ddos(e)
                if e.end_time.is_none()
                    && e.attack_type == new.attack_type
                    && e.attack_dst_ip.first() == Some(&victim))
                && recent(s.message.common.receive_time)
                && s.state != Some(pharos_model::EventState::Closed)
        })?;
        let id = found.message.common.id?;
        let Kind::Ddos(old) = &found.message.kind else {
            return None;
        };
        tracing::info!(
            id,
            victim = %victim,
            "detection: continuing the ongoing attack event of another analyser (partition taken over)"
        );
        metrics::counter!("pharos_detect_attacks_adopted_total").increment(1);
        self.adopted.insert(*u.id(), old.start_time);
        self.ids.insert(*u.id(), id);
        Some(id)
    }

    /// Sets the stored event of an ended attack closed.
    fn close(&self, id: u64) {
        if let Err(e) = self.store.set_state(id, pharos_model::EventState::Closed) {
            metrics::counter!("pharos_detect_store_failures_total").increment(1);
            tracing::warn!(error = %e, id, "the event of an ended attack could not be closed");
        }
    }

    fn insert(&self, d: &pharos_detect::Detection) -> Result<Option<u64>, String> {
        let w = self.writer.clone();
        let m = d.message().clone();
        let stored = self
            .rt
            .block_on(async move { w.submit_raised(vec![m]).await })
            .map_err(|e| e.to_string())?;
        Ok(stored.first().and_then(|m| m.common.id))
    }
}
