//! `GET /api/v1/nsfs`: the NSF inventory (configured and automatically registered senders) with
//! counts and last-seen times, and the flow exporters (`exporters`: each exporter and observation
//! domain the flow collector tracks, with its clock offset).

use axum::extract::State;
use pharos_store::inventory::{ExporterEntry, NsfEntry};
use serde_json::Value;

use crate::AppState;
use crate::json::Json;
use crate::views::{Exporter, Nsf, NsfList};

/// One inventory entry as JSON.
pub fn render(e: &NsfEntry) -> Value {
    serde_json::to_value(Nsf::from(e)).unwrap_or(Value::Null)
}

/// One flow exporter as JSON: its clock offset (export time minus receive time, median of its
/// recent datagrams; negative: behind ours) and the correction applied to its flow times.
pub fn render_exporter(e: &ExporterEntry) -> Value {
    serde_json::to_value(Exporter::from(e)).unwrap_or(Value::Null)
}

/// The NSF inventory and the flow exporters.
///
/// Configured and automatically registered syslog senders, with received/parsed/unparsed counts
/// and last-seen time; and the flow exporters the collector tracks (per exporter and observation
/// domain), with their clock offsets.
#[utoipa::path(get, path = "/api/v1/nsfs", tag = "server",
    responses((status = 200, description = "The NSFs", body = NsfList)))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<NsfList> {
    Json(NsfList {
        exporters: state.nsfs.exporters().iter().map(Exporter::from).collect(),
        items: state.nsfs.list().iter().map(Nsf::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exporter_shows_its_clock_offset_in_seconds_and_both_clocks_times() {
        let e = ExporterEntry {
            clock: pharos_model::flow::ExporterClock {
                exporter: "192.0.2.7".parse().unwrap(),
                domain: 256,
                offset_ms: -31_536_000_250,
                correction_ms: -31_536_000_250,
                samples: 15,
                datagrams: 40,
                last_received_ms: 1_796_000_000_000,
                last_export_ms: 1_764_463_999_750,
            },
            nsf: Some("edge-1".into()),
        };
        let v = render_exporter(&e);
        assert_eq!(v["exporter"], "192.0.2.7");
        assert_eq!(v["domain"], 256);
        assert_eq!(v["nsf"], "edge-1");
        assert_eq!(v["clock-offset-seconds"], -31_536_000.25);
        assert_eq!(v["clock-correction-seconds"], -31_536_000.25);
        assert_eq!(v["clock-samples"], 15);
        assert_eq!(v["last-received"], "2026-11-30T00:53:20.000Z");
        assert_eq!(v["last-export-time"], "2025-11-30T00:53:19.750Z");
    }
}
