//! The flow path of `pharos run`: the `[flow]` UDP collectors, the [`FlowStage`] that fans their
//! batches out, and its consumers besides detection: the archive writer (`[flow_store]`), the
//! taps (the `[state]` silence watch, the interface counters of `[report]`) and the console's
//! live traffic view ([`super::traffic`]).
//!
//! Contract: [`start`] writes `<data_dir>/flow.addr` once the collectors are bound;
//! [`FlowPath::stop`] stops the collectors, waits until every consumer has drained its queue and
//! finished (the archive wrote every flow it held) and removes `flow.addr`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use pharos_flows::segment::SegmentWriter;
use pharos_store::writer::StoreWriter;

/// The running flow collectors and the stage that takes their batches.
pub struct FlowPath {
    collector: pharos_sources::flow::FlowCollector,
    stage: super::FlowStage,
    detect: Option<std::thread::JoinHandle<()>>,
    /// The live traffic view the `traffic` consumer fills (the console's overview).
    traffic: pharos_api::traffic::LiveTraffic,
}

/// Batches the archive writer's queue holds (about 0.5 s at 1 M flows/s in datagram-sized
/// batches): the writer only copies and hands over, so this absorbs scheduling hiccups; a
/// slower disk is absorbed by the writer's memory budget and spill, not by this queue.
const ARCHIVE_QUEUE: usize = 16_384;
/// Batches the taps' queue holds.
const TAPS_QUEUE: usize = 4_096;
/// Batches the live traffic view's queue holds (about 0.1 s at 1 M flows/s): when it is full,
/// batches are missed by the view only, counted, and the view says it is partial.
const TRAFFIC_QUEUE: usize = 4_096;

/// Starts the `[flow]` UDP collectors and writes their bound addresses to `<data_dir>/flow.addr`
/// (one per line, in `[flow] listen` order); their batches go to the flow stage
/// ([`crate::flow_stage`]), which fans them out to the archive writer (`[flow_store]`), the
/// detection thread and the taps, each on its own thread and queue.
pub fn start(
    cfg: &crate::config::FlowConfig,
    store_cfg: &crate::config::FlowStoreConfig,
    data_dir: &Path,
    detect: Option<crate::detect_stage::DetectStage>,
    publishing: Option<Publishing>,
    taps: Taps,
) -> anyhow::Result<Option<FlowPath>> {
    let addr_file = data_dir.join("flow.addr");
    let _ = std::fs::remove_file(&addr_file);
    if !cfg.enabled {
        return Ok(None);
    }
    let writer = if store_cfg.enabled {
        let mut seg = store_cfg.to_segment_config(data_dir);
        seg.background_thread_init = Some(lower_thread_priority);
        let root = seg.root.clone();
        Some(SegmentWriter::open(seg).with_context(|| {
            format!(
                "cannot open the flow store {} ([flow_store]); check permissions or set enabled = false",
                root.display()
            )
        })?)
    } else {
        None
    };
    let mut udp = cfg.to_udp_config();
    // The `[state]` clock alarm reads the exporter clocks the collector publishes.
    if let Some(s) = &taps.seen {
        udp.clocks = s.clocks();
    }
    // A cluster's collectors share the templates they learn (pharos_cluster::templates).
    if let Some(p) = &publishing {
        udp.templates = p.templates.clone();
    }
    let mut collector = pharos_sources::flow::build(&udp)?;
    let addrs: String = collector
        .local_addrs()
        .iter()
        .map(|a| format!("{a}\n"))
        .collect();
    std::fs::write(&addr_file, addrs).context("writing flow.addr in the data directory")?;
    let rx = collector
        .take_receiver()
        .context("flow collector without a channel")?;
    let losses = crate::loss_report::LossReport::new(Some(collector.stats_handle()));
    let (detect_tx, detect) = match detect {
        Some(d) => (Some(d.tx), Some(d.thread)),
        None => (None, None),
    };
    let mut consumers = Vec::new();
    if let Some(w) = writer {
        consumers.push(super::ConsumerSpec {
            name: "archive",
            queue: ARCHIVE_QUEUE,
            archive: true,
            consumer: Box::new(Archive(w)),
        });
    }
    if let Some(p) = publishing {
        consumers.push(super::ConsumerSpec {
            name: "publish",
            queue: ARCHIVE_QUEUE,
            archive: true,
            consumer: p.lane,
        });
    }
    if taps.seen.is_some() || taps.counters.is_some() {
        consumers.push(super::ConsumerSpec {
            name: "taps",
            queue: TAPS_QUEUE,
            archive: false,
            consumer: Box::new(taps),
        });
    }
    // The console's live traffic view (GET /api/v1/traffic); its networks are set by `pharos
    // run` with the console's (FlowPath::traffic).
    let traffic = pharos_api::traffic::LiveTraffic::new();
    let traffic_dropped = std::sync::Arc::new(std::sync::OnceLock::new());
    consumers.push(super::ConsumerSpec {
        name: "traffic",
        queue: TRAFFIC_QUEUE,
        archive: false,
        consumer: Box::new(super::traffic::Traffic::new(
            traffic.clone(),
            traffic_dropped.clone(),
        )),
    });
    let stage = super::FlowStage::start(rx, consumers, detect_tx, losses)
        .context("starting the flow stage threads")?;
    if let Some((_, d)) = stage.dropped.iter().find(|(n, _)| *n == "traffic") {
        let _ = traffic_dropped.set(d.clone());
    }
    Ok(Some(FlowPath {
        collector,
        stage,
        detect,
        traffic,
    }))
}

/// How long a clean stop keeps retrying archive writes that fail before it gives up on the
/// flows held in memory (spilled ones stay on disk for the next start).
const ARCHIVE_STOP_PATIENCE: Duration = Duration::from_secs(5);

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

/// The archive consumer: copies each batch into the segment writer (which encodes on its own
/// threads, spilling beyond its memory budget) and ticks it (one-second segments, merges of
/// finished minutes, retention). At the end it writes everything it holds.
struct Archive(SegmentWriter);

impl super::Consumer for Archive {
    fn take(&mut self, b: &pharos_model::flow::FlowBatch) {
        self.0.push(b, pharos_model::clock::now_ms());
    }

    fn tick(&mut self) {
        self.0.tick(pharos_model::clock::now_ms());
    }

    fn finish(&mut self) {
        self.0.close(ARCHIVE_STOP_PATIENCE);
        if self.0.pending() == 0 && self.0.spilled() == 0 {
            tracing::info!(
                segments = self.0.segments().count(),
                "flow store: every received flow written"
            );
        }
    }

    fn own_losses(&self) -> u64 {
        self.0.dropped()
    }
}

impl super::Consumer for Taps {
    fn take(&mut self, b: &pharos_model::flow::FlowBatch) {
        if let Some(s) = &self.seen {
            mark_exporters(s, b);
        }
        if let Some(c) = self.counters.as_mut() {
            c.add(b);
        }
    }

    fn tick(&mut self) {
        self.counters_due();
    }
}

/// A cluster collector's lane to the flow stream (in place of the archive: its losses are flows
/// not archived) and the exporter templates its decoders share.
pub struct Publishing {
    /// The consumer that publishes ([`crate::cluster_stage::Publish`]).
    pub lane: Box<dyn super::Consumer>,
    /// Templates learned here go out, those learned by other collectors come in.
    pub templates: Option<pharos_wire::TemplateShare>,
}

/// What the flow stage feeds besides the archive and detection (the `taps` consumer).
pub struct Taps {
    /// The silence watch of `[state]`.
    pub seen: Option<crate::analyse_stage::SeenSources>,
    /// The interface counters of the `i2nsf-counter` period (`[report] counter_period_min`).
    pub counters: Option<crate::report_stage::InterfaceTotals>,
    /// Where the counters are stored.
    pub writer: StoreWriter,
    /// The runtime the counters are submitted on (the taps run on a thread of their own).
    pub rt: tokio::runtime::Handle,
}

impl Taps {
    /// Stores the counters of a period that ended (without waiting for the store).
    fn counters_due(&mut self) {
        let Some(c) = self.counters.as_mut() else {
            return;
        };
        let msgs = c.due(pharos_model::clock::now_ms());
        if msgs.is_empty() {
            return;
        }
        let w = self.writer.clone();
        self.rt.spawn(async move {
            let n = msgs.len();
            if let Err(e) = w.submit_raised(msgs).await {
                tracing::warn!(error = %e, snapshots = n, "interface counters not stored");
            }
        });
    }
}

/// Marks the exporters of a batch seen, for the silence watch of `[state]` (a batch holds the
/// records of one datagram or a few, so exporters change rarely within it).
fn mark_exporters(seen: &crate::analyse_stage::SeenSources, b: &pharos_model::flow::FlowBatch) {
    use pharos_model::flow::{addr_from_bytes, flags};
    let now = pharos_model::clock::now_ms();
    let mut last = None;
    for (e, f) in b.exporter.iter().zip(&b.flags) {
        let v4 = f & flags::EXPORTER_V4 != 0;
        if last == Some((e, v4)) {
            continue;
        }
        last = Some((e, v4));
        seen.seen(addr_from_bytes(*e, v4).to_string(), now);
    }
}

impl FlowPath {
    /// The running collectors (their exporter clocks are listed with the NSFs).
    pub fn collector(&self) -> &pharos_sources::flow::FlowCollector {
        &self.collector
    }

    /// The live traffic view (per second in and out of the monitored networks, top talkers and
    /// targets), filled by the `traffic` consumer; give it the monitored networks with
    /// [`pharos_api::traffic::LiveTraffic::set_networks`].
    pub fn traffic(&self) -> pharos_api::traffic::LiveTraffic {
        self.traffic.clone()
    }

    /// Stops the socket threads (each within ~100 ms), then the flow stage once the channel is
    /// empty and every consumer finished (the archive wrote every flow it held).
    pub fn stop(self, data_dir: std::path::PathBuf) {
        self.collector.stop();
        self.stage.join();
        if let Some(d) = self.detect {
            let _ = d.join();
        }
        let _ = std::fs::remove_file(data_dir.join("flow.addr"));
    }
}
