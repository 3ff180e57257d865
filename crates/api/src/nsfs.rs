//! `GET /api/v1/nsfs`: the NSF inventory (configured and automatically registered senders) with
//! counts and last-seen times, and the flow exporters (`exporters`: each exporter and observation
//! domain the flow collector tracks, with its clock offset).

use axum::extract::State;
use pharos_store::inventory::{ExporterEntry, NsfEntry};
use serde_json::{Value, json};

use crate::AppState;
use crate::json::Json;

/// One inventory entry as JSON.
pub fn render(e: &NsfEntry) -> Value {
    json!({
        "name": e.name,
        "configured": e.configured,
        "addresses": e.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "hostnames": e.hostnames,
        "vendor": e.vendor,
        "model": e.model,
        "type": e.nsf_type,
        "parser": e.parser,
        "detected-format": e.detected_format,
        "last-address": e.last_address.map(|a| a.to_string()),
        "first-seen": e.first_seen.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "last-seen": e.last_seen.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "received": e.received,
        "parsed": e.parsed,
        "unparsed": e.unparsed,
    })
}

/// One flow exporter as JSON: its clock offset (export time minus receive time, median of its
/// recent datagrams; negative: behind ours) and the correction applied to its flow times.
pub fn render_exporter(e: &ExporterEntry) -> Value {
    let c = &e.clock;
    let time = |ms: u64| {
        chrono::DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    json!({
        "exporter": c.exporter.to_string(),
        "domain": c.domain,
        "nsf": e.nsf,
        "clock-offset-seconds": c.offset_ms as f64 / 1000.0,
        "clock-correction-seconds": c.correction_ms as f64 / 1000.0,
        "clock-samples": c.samples,
        "datagrams": c.datagrams,
        "last-received": time(c.last_received_ms),
        "last-export-time": time(c.last_export_ms),
    })
}

/// The NSF inventory and the flow exporters.
///
/// Configured and automatically registered syslog senders, with received/parsed/unparsed counts
/// and last-seen time; and the flow exporters the collector tracks (per exporter and observation
/// domain), with their clock offsets.
#[utoipa::path(get, path = "/api/v1/nsfs", tag = "server",
    responses((status = 200, description = "The NSFs", body = ref("#/components/schemas/NsfList"))))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<Value> {
    let items: Vec<Value> = state.nsfs.list().iter().map(render).collect();
    let exporters: Vec<Value> = state.nsfs.exporters().iter().map(render_exporter).collect();
    Json(json!({ "items": items, "exporters": exporters }))
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
