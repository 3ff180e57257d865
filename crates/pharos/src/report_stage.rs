//! Periodic outputs of `pharos run` (`[report]`):
//! - the report: at the end of every aligned `interval` period, the report of that period is
//!   computed from the message store (as `GET /api/v1/reports` computes any window), written to
//!   `<data_dir>/reports/<end>.json` (the newest [`KEEP_REPORTS`] are kept) and logged as text;
//! - the `i2nsf-counter` period (`counter_period`): per flow exporter, one `i2nsf-counters`
//!   snapshot with a `system-interface` entry per ifIndex seen (packets and bytes in and out,
//!   renormalised by sampling, average rates over the period), stored like any message, so
//!   subscribers and the API get them. The nsf-name is the exporter's address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pharos_detect::report::{Periodic, ReportConfig};
use pharos_model::clock::now_ms;
use pharos_model::flow::{FlowBatch, addr_from_bytes, flags};
use pharos_model::{Counters, InterfaceCounters, Kind, Message, TrafficRates};
use pharos_store::MessageStore;

/// Periodic reports kept on disk.
pub const KEEP_REPORTS: usize = 168;

/// Writes the report of every period that ends, until aborted.
pub async fn run(store: Arc<dyn MessageStore>, cfg: ReportConfig, dir: PathBuf) {
    let mut periods = Periodic::reports(&cfg);
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        let Some((from, to)) = periods.due(now_ms()) else {
            continue;
        };
        let (s, c, d) = (store.clone(), cfg.clone(), dir.clone());
        let r = tokio::task::spawn_blocking(move || write_report(&*s, &c, &d, from, to)).await;
        match r {
            Ok(Ok(path)) => tracing::info!(path = %path.display(), "periodic report written"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "periodic report failed; next period will retry")
            }
            Err(e) => tracing::warn!(error = %e, "periodic report task failed"),
        }
    }
}

fn write_report(
    store: &dyn MessageStore,
    cfg: &ReportConfig,
    dir: &std::path::Path,
    from: u64,
    to: u64,
) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let t = |ms: u64| chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default();
    let (from, to) = (t(from), t(to));
    let w = pharos_detect::report::report_window(
        cfg,
        from,
        to,
        pharos_detect::report::MAX_REPORT_MESSAGES,
        pharos_store::messages_in(store, from, to),
    )?;
    tracing::info!(target: "pharos::report", "\n{}", w.report);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}; check permissions", dir.display()))?;
    let name = to.format("%Y%m%dT%H%M%SZ.json").to_string();
    let path = dir.join(name);
    let tmp = path.with_extension("json.tmp");
    let mut doc = serde_json::to_value(&w.report)?;
    doc["messages_read"] = w.read.into();
    if let Some(c) = w.covered_from {
        doc["capped"] = true.into();
        doc["covered_from"] = c.to_rfc3339().into();
    }
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)?;
    // keep the newest KEEP_REPORTS (names sort by time)
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    all.sort();
    if all.len() > KEEP_REPORTS {
        for p in &all[..all.len() - KEEP_REPORTS] {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(path)
}

/// Per exporter and ifIndex: `[in packets, in bytes, out packets, out bytes]`.
type Totals = HashMap<(IpAddr, u32), [u64; 4]>;

/// The interface counters of the flow exporters over the current `i2nsf-counter` period.
pub struct InterfaceTotals {
    periods: Periodic,
    totals: Totals,
    /// Most (exporter, ifIndex) pairs counted; further ones are counted in `dropped`.
    max_keys: usize,
    dropped: u64,
}

impl InterfaceTotals {
    /// Totals for `cfg.counter_period_min` (`None` when it is 0).
    pub fn new(cfg: &ReportConfig) -> Option<Self> {
        (cfg.counter_period_min > 0).then(|| Self {
            periods: Periodic::counters(cfg),
            totals: HashMap::new(),
            max_keys: 100_000,
            dropped: 0,
        })
    }

    /// Adds a batch: each flow counts in on its input interface and out on its output interface
    /// (0, unknown, is not counted).
    pub fn add(&mut self, b: &FlowBatch) {
        let n = b.len();
        for i in 0..n {
            let (Some(&e), Some(&f), Some(&p), Some(&by)) = (
                b.exporter.get(i),
                b.flags.get(i),
                b.packets.get(i),
                b.bytes.get(i),
            ) else {
                break;
            };
            let ip = addr_from_bytes(e, f & flags::EXPORTER_V4 != 0);
            for (ifx, off) in [(b.in_if.get(i), 0), (b.out_if.get(i), 2)] {
                let Some(&ifx) = ifx.filter(|x| **x != 0) else {
                    continue;
                };
                let len = self.totals.len();
                match self.totals.get_mut(&(ip, ifx)) {
                    Some(t) => {
                        t[off] = t[off].saturating_add(p);
                        t[off + 1] = t[off + 1].saturating_add(by);
                    }
                    None if len < self.max_keys => {
                        let mut t = [0u64; 4];
                        t[off] = p;
                        t[off + 1] = by;
                        self.totals.insert((ip, ifx), t);
                    }
                    None => self.dropped += 1,
                }
            }
        }
    }

    /// When a period ended at `now_ms`: one counters snapshot per exporter, and the totals start
    /// again.
    pub fn due(&mut self, now_ms: u64) -> Vec<Message> {
        let Some((from, to)) = self.periods.due(now_ms) else {
            return Vec::new();
        };
        if self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                "interface counters: more than 100000 exporter interfaces; some flows not counted"
            );
            self.dropped = 0;
        }
        snapshots(std::mem::take(&mut self.totals), from, to)
    }
}

fn snapshots(totals: Totals, from: u64, to: u64) -> Vec<Message> {
    let t = |ms: u64| chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default();
    let secs = ((to - from) / 1000).max(1);
    let mut by_exporter: HashMap<IpAddr, Vec<(u32, [u64; 4])>> = HashMap::new();
    for ((e, ifx), v) in totals {
        by_exporter.entry(e).or_default().push((ifx, v));
    }
    let mut out: Vec<Message> = by_exporter
        .into_iter()
        .map(|(exporter, mut ifs)| {
            ifs.sort_by_key(|(i, _)| *i);
            let system_interface = ifs
                .into_iter()
                .map(|(ifx, [ip, ib, op, ob])| {
                    let mut rates = TrafficRates::new(t(from));
                    rates.measurement_time = u32::try_from(secs).ok();
                    rates.total_traffic = Some(ip.saturating_add(op));
                    rates.in_traffic_average_rate = Some(ip / secs);
                    rates.in_traffic_average_throughput = Some(ib / secs);
                    rates.out_traffic_average_rate = Some(op / secs);
                    rates.out_traffic_average_throughput = Some(ob / secs);
                    InterfaceCounters {
                        interface_name: format!("ifindex-{ifx}"),
                        protocol: None,
                        in_total_traffic_pkts: Some(ip),
                        out_total_traffic_pkts: Some(op),
                        in_total_traffic_bytes: Some(ib),
                        out_total_traffic_bytes: Some(ob),
                        in_drop_traffic_pkts: None,
                        out_drop_traffic_pkts: None,
                        in_drop_traffic_bytes: None,
                        out_drop_traffic_bytes: None,
                        rates,
                    }
                })
                .collect();
            let mut m = Message::new(
                exporter.to_string(),
                Kind::Counters(Counters {
                    timestamp: Some(t(to)),
                    system_interface,
                    ..Counters::default()
                }),
            );
            m.common.acquisition_method =
                Some(pharos_model::ident::AcquisitionMethod::Subscription);
            m.common.emission_type = Some(pharos_model::ident::EmissionType::Periodic);
            m.common.event_time = t(to);
            m.common.source = Some("pharos:counters".into());
            m
        })
        .collect();
    out.sort_by(|a, b| a.common.nsf_name.cmp(&b.common.nsf_name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::flow::FlowRecord;

    #[test]
    fn interface_totals_give_one_snapshot_per_exporter_per_period() {
        let cfg = ReportConfig {
            counter_period_min: 1,
            ..ReportConfig::default()
        };
        let mut t = InterfaceTotals::new(&cfg).unwrap();
        assert!(t.due(60_000).is_empty(), "the first call arms");
        let mut b = FlowBatch::default();
        for (exp, i, o, p, by) in [
            ("192.0.2.1", 1, 2, 10, 1000),
            ("192.0.2.1", 1, 3, 5, 500),
            ("192.0.2.2", 7, 0, 1, 100),
        ] {
            let r = FlowRecord {
                exporter: exp.parse().unwrap(),
                in_if: i,
                out_if: o,
                packets: p,
                bytes: by,
                ..Default::default()
            };
            b.push(&r);
        }
        t.add(&b);
        assert!(t.due(110_000).is_empty());
        let snaps = t.due(120_000);
        assert_eq!(snaps.len(), 2);
        let Kind::Counters(c) = &snaps[0].kind else {
            panic!("{:?}", snaps[0].kind)
        };
        assert_eq!(snaps[0].common.nsf_name, "192.0.2.1");
        let names: Vec<_> = c
            .system_interface
            .iter()
            .map(|i| i.interface_name.as_str())
            .collect();
        assert_eq!(names, ["ifindex-1", "ifindex-2", "ifindex-3"]);
        assert_eq!(c.system_interface[0].in_total_traffic_pkts, Some(15));
        assert_eq!(c.system_interface[0].in_total_traffic_bytes, Some(1500));
        assert_eq!(c.system_interface[0].rates.in_traffic_average_rate, Some(0));
        assert_eq!(c.system_interface[1].out_total_traffic_bytes, Some(1000));
        assert_eq!(c.system_interface[2].out_total_traffic_pkts, Some(5));
        // the JSON validates structurally (encode/decode round trip)
        let doc = pharos_model::json::encode(&snaps[1]);
        let back = pharos_model::json::decode(&doc).unwrap();
        assert_eq!(back.kind, snaps[1].kind);
        // the next period starts from zero
        assert!(t.due(180_000).is_empty());
    }
}
