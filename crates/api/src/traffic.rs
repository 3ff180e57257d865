//! The live traffic view: `GET /api/v1/traffic`, the console overview's traffic chart and top
//! lists, fed by the flow stage instead of scans of the flow archive.
//!
//! Contract:
//! - `pharos run` fills a [`LiveTraffic`] from a flow-stage consumer of its own (its own bounded
//!   queue; see `crates/pharos/src/flow_stage/traffic.rs`): once per second it publishes that
//!   second's bytes, packets and flows in and out of the monitored networks (and in total), the
//!   flow batches its full queue made it miss, and the top talkers and top targeted hosts of the
//!   last minutes. The route only reads that (one short lock, no scan, no blocking thread), so it
//!   answers at once whatever the ingest rate and whatever the archive is doing.
//! - Times are those of arrival at Pharos (the second a flow's batch was taken), not the flows'
//!   own start or end: a flow exported at the end of a long active timeout counts in full in the
//!   second it arrived.
//! - The view holds at most [`HOUR_S`] seconds and a bounded top list: memory does not grow with
//!   the traffic.
//! - Counted honestly: a batch the consumer did not get (its queue was full) is not in the
//!   figures; the answer gives the batches missed in total and per point, and `partial` says
//!   whether any was missed in the hour shown.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;

use crate::error::ErrorBody;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Seconds the view keeps (one hour).
pub const HOUR_S: usize = 3600;
/// Most entries of each top list the route answers.
pub const MAX_TOP: usize = 100;

/// Bytes, packets and flows of one direction in one second (or summed over some).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Layer-3 bytes (renormalised by sampling).
    pub bytes: u64,
    /// Packets (renormalised by sampling).
    pub packets: u64,
    /// Flow records.
    pub flows: u64,
}

impl Counts {
    /// Adds `o`.
    pub fn add(&mut self, o: &Counts) {
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.packets = self.packets.saturating_add(o.packets);
        self.flows = self.flows.saturating_add(o.flows);
    }
}

/// One second of traffic as the flow stage saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Second {
    /// Start of the second, Unix ms (a multiple of 1000).
    pub t_ms: u64,
    /// To a monitored network (destination inside).
    pub inbound: Counts,
    /// From a monitored network (source inside).
    pub outbound: Counts,
    /// Every flow, monitored or not.
    pub total: Counts,
    /// Flow batches the view's consumer missed in this second (its queue was full).
    pub dropped_batches: u64,
}

/// One host of a top list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TopHost {
    /// The address.
    pub addr: String,
    /// Bytes (a Space-Saving estimate: the truth is within `bytes_error` of it).
    pub bytes: u64,
    /// Largest error of `bytes` (0: exact).
    pub bytes_error: u64,
    /// Packets counted since the host entered the list (at most the truth).
    pub packets: u64,
    /// Flows counted since the host entered the list (at most the truth).
    pub flows: u64,
}

/// The top lists of a window of the last minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Tops {
    /// Start of the window, Unix ms.
    pub from_ms: u64,
    /// End of the window, Unix ms.
    pub to_ms: u64,
    /// Every flow of the window (the denominator of a share).
    pub total: TotalCounts,
    /// Sources by bytes, heaviest first.
    pub talkers: Vec<TopHost>,
    /// Destinations by bytes, heaviest first.
    pub targets: Vec<TopHost>,
}

/// Bytes, packets and flows (as JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TotalCounts {
    /// Bytes.
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
    /// Flows.
    pub flows: u64,
}

impl From<Counts> for TotalCounts {
    fn from(c: Counts) -> Self {
        Self {
            bytes: c.bytes,
            packets: c.packets,
            flows: c.flows,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    networks: Vec<String>,
    /// Bumped by every change of `networks`.
    version: u64,
    /// When the view started counting with the current networks, Unix ms (0: not started).
    since_ms: u64,
    seconds: VecDeque<Second>,
    tops: Tops,
    dropped_batches: u64,
}

/// The live traffic view shared by the flow stage (which writes it) and the API (which reads it).
/// Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct LiveTraffic(Arc<Mutex<Inner>>);

impl LiveTraffic {
    /// An empty view without networks.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain counters behind: still readable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the monitored prefixes (traffic to them is "in", from them "out"); the series starts
    /// again (seconds counted with other networks are forgotten).
    pub fn set_networks(&self, networks: Vec<String>) {
        let mut g = self.lock();
        if g.networks == networks && g.version > 0 {
            return;
        }
        g.networks = networks;
        g.version += 1;
        g.seconds.clear();
        g.since_ms = 0;
    }

    /// The monitored prefixes and their version (bumped by every [`Self::set_networks`]).
    pub fn networks(&self) -> (Vec<String>, u64) {
        let g = self.lock();
        (g.networks.clone(), g.version)
    }

    /// The version of the networks (bumped by every [`Self::set_networks`]).
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Adds a finished second counted with the networks of `version` (ignored when the networks
    /// changed since), keeping the last [`HOUR_S`]; `dropped_total` is the batches the consumer
    /// missed since the start.
    pub fn publish_second(&self, s: Second, version: u64, dropped_total: u64) {
        let mut g = self.lock();
        g.dropped_batches = dropped_total;
        if version != g.version {
            return;
        }
        if g.since_ms == 0 {
            g.since_ms = s.t_ms;
        }
        if g.seconds.back().is_some_and(|b| b.t_ms >= s.t_ms) {
            return;
        }
        g.seconds.push_back(s);
        while g.seconds.len() > HOUR_S {
            g.seconds.pop_front();
        }
    }

    /// Replaces the top lists.
    pub fn publish_tops(&self, tops: Tops) {
        self.lock().tops = tops;
    }

    /// The view at `now_ms`, in points of `step_s` seconds, with at most `top` hosts per list.
    pub fn snapshot(&self, now_ms: u64, step_s: u64, top: usize) -> TrafficView {
        let step_s = step_s.max(1);
        let step_ms = step_s * 1000;
        let g = self.lock();
        let from_ms = now_ms.saturating_sub(HOUR_S as u64 * 1000);
        let mut points = Points::default();
        // Seconds summed per aligned step; a rate divides by the seconds the view holds in it.
        let mut cur: Option<(u64, Second, u64)> = None;
        let mut dropped_hour = 0;
        let flush = |p: &mut Points, (t, s, n): (u64, Second, u64)| {
            let secs = n.max(1) as f64;
            p.t_ms.push(t);
            p.inbound.push(&s.inbound, secs);
            p.outbound.push(&s.outbound, secs);
            p.total.push(&s.total, secs);
            p.dropped_batches.push(s.dropped_batches);
            p.seconds.push(n);
        };
        for s in g.seconds.iter().filter(|s| s.t_ms >= from_ms) {
            dropped_hour += s.dropped_batches;
            let t = s.t_ms - s.t_ms % step_ms;
            match &mut cur {
                Some((ct, acc, n)) if *ct == t => {
                    acc.inbound.add(&s.inbound);
                    acc.outbound.add(&s.outbound);
                    acc.total.add(&s.total);
                    acc.dropped_batches += s.dropped_batches;
                    *n += 1;
                }
                _ => {
                    if let Some(c) = cur.take() {
                        flush(&mut points, c);
                    }
                    cur = Some((t, *s, 1));
                }
            }
        }
        if let Some(c) = cur.take() {
            flush(&mut points, c);
        }
        let top = top.min(MAX_TOP);
        let mut tops = g.tops.clone();
        tops.talkers.truncate(top);
        tops.targets.truncate(top);
        TrafficView {
            now_ms,
            since_ms: (g.since_ms > 0).then_some(g.since_ms),
            networks: g.networks.clone(),
            step_s,
            points,
            top: tops,
            dropped_batches: g.dropped_batches,
            dropped_batches_last_hour: dropped_hour,
            partial: dropped_hour > 0,
        }
    }
}

/// Rates of one direction, one value per point.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Rates {
    /// Bits per second.
    pub bits_per_s: Vec<f64>,
    /// Packets per second.
    pub packets_per_s: Vec<f64>,
    /// Flows per second.
    pub flows_per_s: Vec<f64>,
}

impl Rates {
    fn push(&mut self, c: &Counts, seconds: f64) {
        self.bits_per_s.push(c.bytes as f64 * 8.0 / seconds);
        self.packets_per_s.push(c.packets as f64 / seconds);
        self.flows_per_s.push(c.flows as f64 / seconds);
    }
}

/// The series, as columns: point `i` of every array belongs to `t_ms[i]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Points {
    /// Start of each point, Unix ms (aligned to the step); points without any second counted are
    /// absent (before the view started, or while the consumer thread was not running).
    pub t_ms: Vec<u64>,
    /// Seconds the view counted in each point (the rates are averages over these; the newest
    /// point is usually incomplete).
    pub seconds: Vec<u64>,
    /// To the monitored networks.
    #[serde(rename = "in")]
    pub inbound: Rates,
    /// From the monitored networks.
    #[serde(rename = "out")]
    pub outbound: Rates,
    /// Every flow, monitored or not.
    pub total: Rates,
    /// Flow batches the view missed in each point (its queue was full): the point is partial.
    pub dropped_batches: Vec<u64>,
}

/// The answer of `GET /api/v1/traffic`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TrafficView {
    /// Server time, Unix ms.
    pub now_ms: u64,
    /// The first second counted (since `pharos run` started or the networks were set); absent
    /// before the first second ended.
    pub since_ms: Option<u64>,
    /// Monitored prefixes: traffic to them is "in", from them "out" (a flow between two of them
    /// is both).
    pub networks: Vec<String>,
    /// Seconds per point.
    pub step_s: u64,
    /// The last hour, one point per step, by arrival time at Pharos.
    pub points: Points,
    /// Top talkers and top targeted hosts of the last minutes, by bytes.
    pub top: Tops,
    /// Flow batches the view missed since the start (its queue was full).
    pub dropped_batches: u64,
    /// Of those, in the hour shown.
    pub dropped_batches_last_hour: u64,
    /// Whether the hour shown misses batches: its figures are lower than the traffic.
    pub partial: bool,
}

/// Parameters of `GET /api/v1/traffic`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrafficParams {
    /// Seconds per point, 1 to 300 (default 10).
    #[param(minimum = 1, maximum = 300)]
    pub step: Option<u64>,
    /// Hosts per top list, 0 to 100 (default 10).
    #[param(minimum = 0, maximum = 100)]
    pub top: Option<usize>,
}

/// `GET /api/v1/traffic`: traffic in and out of the monitored networks over the last hour, and
/// the top talkers and targeted hosts of the last minutes, live from the flow stage (no archive
/// scan).
#[utoipa::path(get, path = "/api/v1/traffic", tag = "console", params(TrafficParams),
    summary = "Live traffic in and out of the monitored networks, top talkers and targets",
    responses(
        (status = 200, description = "The live view", body = TrafficView),
        (status = 400, description = "A parameter is out of range", body = ErrorBody),
        (status = 401, description = "No token or session", body = ErrorBody),
        (status = 404, description = "No live view: the flow collectors are off ([flow] enabled = false)", body = ErrorBody),
    ))]
pub(crate) async fn traffic(
    State(state): State<AppState>,
    Query(p): Query<TrafficParams>,
) -> Result<Json<TrafficView>, ApiError> {
    let step = p.step.unwrap_or(10);
    if !(1..=300).contains(&step) {
        return Err(ApiError::bad_request(format!(
            "step={step}: give 1 to 300 seconds"
        )));
    }
    let top = p.top.unwrap_or(10);
    if top > MAX_TOP {
        return Err(ApiError::bad_request(format!(
            "top={top}: give 0 to {MAX_TOP}"
        )));
    }
    let Some(view) = &state.console.traffic else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no live traffic view: the flow collectors are off ([flow] enabled = false)",
        ));
    };
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    Ok(Json(view.snapshot(now, step, top)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn sec(t_ms: u64, bytes: u64, dropped: u64) -> Second {
        let c = Counts {
            bytes,
            packets: bytes / 100,
            flows: 1,
        };
        Second {
            t_ms,
            inbound: c,
            outbound: Counts::default(),
            total: c,
            dropped_batches: dropped,
        }
    }

    #[test]
    fn seconds_are_averaged_per_step_and_drops_make_the_view_partial() {
        let v = LiveTraffic::new();
        v.set_networks(vec!["10.0.0.0/8".into()]);
        let (_, ver) = v.networks();
        let t0 = 1_700_000_000_000; // a multiple of 10 s
        for i in 0..15 {
            v.publish_second(sec(t0 + i * 1000, 1000, u64::from(i == 12)), ver, 1);
        }
        // A second counted with older networks is ignored, as is one out of order.
        v.publish_second(sec(t0 + 20_000, 5, 0), ver + 7, 1);
        v.publish_second(sec(t0, 5, 0), ver, 1);
        let s = v.snapshot(t0 + 15_000, 10, 5);
        assert_eq!(s.since_ms, Some(t0));
        assert_eq!(s.points.t_ms, vec![t0, t0 + 10_000]);
        assert_eq!(s.points.seconds, vec![10, 5]);
        assert_eq!(s.points.inbound.bits_per_s, vec![8000.0, 8000.0]);
        assert_eq!(s.points.outbound.bits_per_s, vec![0.0, 0.0]);
        assert_eq!(s.points.total.flows_per_s, vec![1.0, 1.0]);
        assert_eq!(s.points.dropped_batches, vec![0, 1]);
        assert!(s.partial);
        assert_eq!(s.dropped_batches, 1);
        // More than an hour later nothing is shown, and nothing partial.
        let s = v.snapshot(t0 + 2 * 3600 * 1000, 10, 5);
        assert!(s.points.t_ms.is_empty());
        assert!(!s.partial);
        assert_eq!(s.dropped_batches, 1);
        // New networks start the series again.
        v.set_networks(vec!["192.0.2.0/24".into()]);
        assert!(v.snapshot(t0 + 15_000, 10, 5).points.t_ms.is_empty());
    }

    #[test]
    fn the_view_keeps_one_hour_of_seconds() {
        let v = LiveTraffic::new();
        v.set_networks(Vec::new());
        let (_, ver) = v.networks();
        for i in 0..(HOUR_S as u64 + 100) {
            v.publish_second(sec(i * 1000, 1, 0), ver, 0);
        }
        assert_eq!(v.lock().seconds.len(), HOUR_S);
        let s = v.snapshot((HOUR_S as u64 + 100) * 1000, 1, 5);
        assert_eq!(s.points.t_ms.len(), HOUR_S);
    }

    fn app(traffic: Option<LiveTraffic>) -> axum::Router {
        let store: Arc<dyn pharos_store::MessageStore> =
            Arc::new(pharos_store::SqliteStore::open_in_memory().unwrap());
        let (writer, _thread) = pharos_store::writer::StoreWriter::spawn(
            store.clone(),
            pharos_store::writer::WriterConfig::default(),
        );
        let config = crate::ApiConfig::default();
        let state = AppState {
            store,
            writer,
            metrics: None,
            auth: crate::tests::test_auth(&config),
            config: Arc::new(config),
            nsfs: Arc::new(pharos_store::inventory::Inventory::in_memory(&[])),
            flows: None,
            emit: None,
            console: Arc::new(crate::overview::ConsoleInfo {
                traffic,
                ..Default::default()
            }),
        };
        crate::router(state).layer(axum::extract::connect_info::MockConnectInfo(
            std::net::SocketAddr::from(([192, 0, 2, 9], 4321)),
        ))
    }

    async fn get(
        app: &axum::Router,
        uri: &str,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::get(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn the_route_serves_the_view_to_a_token_and_refuses_bad_parameters() {
        let view = LiveTraffic::new();
        view.set_networks(vec!["198.51.100.0/24".into()]);
        let (_, ver) = view.networks();
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
        let t = now - now % 1000 - 5000;
        view.publish_second(sec(t, 125, 3), ver, 3);
        view.publish_tops(Tops {
            from_ms: t - 60_000,
            to_ms: t + 1000,
            total: TotalCounts {
                bytes: 125,
                packets: 1,
                flows: 1,
            },
            talkers: vec![TopHost {
                addr: "<img src=x>".into(),
                bytes: 125,
                bytes_error: 0,
                packets: 1,
                flows: 1,
            }],
            targets: Vec::new(),
        });
        let app = app(Some(view));
        let (st, _) = get(&app, "/api/v1/traffic", None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let tok = Some(crate::tests::ADMIN);
        let (st, v) = get(&app, "/api/v1/traffic?step=1&top=3", tok).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["networks"], serde_json::json!(["198.51.100.0/24"]));
        assert_eq!(v["step_s"], 1);
        assert_eq!(v["points"]["t_ms"], serde_json::json!([t]));
        assert_eq!(v["points"]["in"]["bits_per_s"], serde_json::json!([1000.0]));
        assert_eq!(v["points"]["out"]["flows_per_s"], serde_json::json!([0.0]));
        assert_eq!(v["points"]["dropped_batches"], serde_json::json!([3]));
        assert_eq!(v["partial"], true);
        assert_eq!(v["dropped_batches"], 3);
        assert_eq!(v["top"]["talkers"][0]["addr"], "<img src=x>");
        assert_eq!(v["top"]["total"]["bytes"], 125);
        for bad in ["step=0", "step=301", "top=101", "step=x", "what=1"] {
            let (st, _) = get(&app, &format!("/api/v1/traffic?{bad}"), tok).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        }
        // Without flow collectors there is no view.
        let (st, v) = get(&self::app(None), "/api/v1/traffic", tok).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        assert!(v["error"].as_str().unwrap().contains("[flow]"), "{v}");
        // The route is documented.
        let doc = crate::openapi::document();
        assert!(doc["paths"]["/api/v1/traffic"]["get"].is_object());
        assert!(doc["components"]["schemas"]["TrafficView"].is_object());
    }
}
