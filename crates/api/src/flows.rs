//! Flow archive queries: `GET /api/v1/flows/query`, `/api/v1/flows/top`, `/api/v1/flows/series`.
//! The scans run on blocking threads, at most [`MAX_CONCURRENT`] at a time (more get 503 with
//! `Retry-After`), so a burst of heavy queries cannot starve ingestion.
//!
//! The archive is the local Parquet archive ([`FlowArchive::new`]) or the flow archive in
//! ClickHouse of a scale-out deployment ([`FlowArchive::clickhouse`], docs/clickhouse.md): the
//! same routes, parameters and JSON answers (the `stats` of a ClickHouse answer carry only
//! `rows_matched`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use pharos_flows::filter::{self, FilterError};
use pharos_flows::query::{
    Key, Listing, MAX_LIMIT, Metric, Order, QueryError, Scan, Selection, Series, TopN,
};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::error::ErrorBody;
use crate::json::Json;
use crate::views::{FlowList, FlowSeries, FlowTop};
use crate::{ApiError, AppState};

/// Flow scans that may run at once.
pub const MAX_CONCURRENT: usize = 2;

/// The flow archive as the API sees it.
#[derive(Clone)]
pub struct FlowArchive {
    /// `<data_dir>/flows` (empty when the archive is in ClickHouse).
    pub root: std::path::PathBuf,
    /// The archive in ClickHouse, which then answers instead of `root`.
    pub clickhouse: Option<pharos_clickhouse::Archive>,
    /// Bounds concurrent scans.
    pub permits: Arc<Semaphore>,
}

impl FlowArchive {
    /// The Parquet archive under `root`.
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        Self {
            root: root.into(),
            clickhouse: None,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
        }
    }

    /// The flow archive in ClickHouse (the `api` role of a scale-out deployment): the routes
    /// answer from it with the Parquet engine's answers.
    pub fn clickhouse(archive: pharos_clickhouse::Archive) -> Self {
        Self {
            root: std::path::PathBuf::new(),
            clickhouse: Some(archive),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
        }
    }
}

/// A question to the flow archive, for either engine.
enum Question {
    List(usize, Order),
    Top(Key, Metric, usize),
    Series(u64, Option<(Key, usize)>, Metric),
}

/// The answer to a [`Question`].
enum Answer {
    List(Listing),
    Top(TopN),
    Series(Series),
}

impl Question {
    fn parquet(self, s: &Scan) -> Result<Answer, QueryError> {
        Ok(match self {
            Self::List(limit, order) => Answer::List(s.list(limit, order)?),
            Self::Top(key, by, n) => Answer::Top(s.top(key, by, n)?),
            Self::Series(interval, key, by) => Answer::Series(s.series(interval, key, by)?),
        })
    }

    async fn clickhouse(
        self,
        a: &pharos_clickhouse::Archive,
        sel: &Selection,
    ) -> Result<Answer, pharos_clickhouse::Error> {
        Ok(match self {
            Self::List(limit, order) => Answer::List(a.list(sel, limit, order).await?),
            Self::Top(key, by, n) => Answer::Top(a.top(sel, key, by, n).await?),
            Self::Series(interval, key, by) => {
                Answer::Series(a.series(sel, interval, key, by).await?)
            }
        })
    }
}

/// A ClickHouse error as the API answers it: mistakes in the question are 400 as on Parquet;
/// an unreachable or failing server is 502, logged with its detail.
fn clickhouse_error(e: pharos_clickhouse::Error) -> ApiError {
    match e {
        pharos_clickhouse::Error::Query(q) => query_error(q),
        pharos_clickhouse::Error::Filter(f) => ApiError::bad_request(format!("filter: {f}")),
        e => {
            tracing::warn!(error = %e, "flow query in ClickHouse failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the flow archive in ClickHouse did not answer; see the server log",
            )
        }
    }
}

/// Parameters every flow route takes (each route reads those its description names).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueryParams {
    /// nfdump-style filter, e.g. `proto udp and dst port 53`, `src net 10.0.0.0/8`,
    /// `flags S and not flags A`; empty selects every flow.
    pub filter: Option<String>,
    /// Flows that started at or after (RFC 3339, `now`, `-1h`, Unix seconds).
    pub from: Option<String>,
    /// Flows that ended at or before (same forms).
    pub to: Option<String>,
    /// `query`: most flows returned, 1 to 1000000 (default 100).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// `query`: `time` (default, earliest first), `bytes` or `packets` (largest first).
    pub order: Option<String>,
    /// `top` (required), `series` (optional: also one series per top value): the key, one of
    /// srcip, dstip, ip, srcport, dstport, port, proto, srcas, dstas, as, exporter, inif, outif,
    /// tos, or a prefix such as srcip4/24, dstip6/48.
    pub key: Option<String>,
    /// `top`, `series`: `bytes` (default), `packets` or `flows`.
    pub by: Option<String>,
    /// `top`: rows (default 10); `series` with a key: key values (default 5).
    pub n: Option<usize>,
    /// `series`: interval length (default `1m`).
    pub interval: Option<String>,
}

fn filter_error(input: &str, e: &FilterError) -> ApiError {
    let mut err = ApiError::bad_request(format!("filter: {e}"));
    err.details.push(json!({
        "line": e.line,
        "column": e.column,
        "message": e.message,
        "context": e.render(input),
    }));
    err
}

fn query_error(e: QueryError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

impl QueryParams {
    fn selection(&self) -> Result<Selection, ApiError> {
        let text = self.filter.as_deref().unwrap_or("");
        let filter = filter::parse(text).map_err(|e| filter_error(text, &e))?;
        let now = pharos_model::clock::now_ms();
        let time = |name: &str, v: &Option<String>| -> Result<Option<u64>, ApiError> {
            v.as_deref()
                .map(|s| {
                    pharos_store::time::parse_time(s, now)
                        .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
                })
                .transpose()
        };
        Ok(Selection {
            filter,
            from_ms: time("from", &self.from)?,
            to_ms: time("to", &self.to)?,
        })
    }

    fn by(&self) -> Result<Metric, ApiError> {
        self.by
            .as_deref()
            .map_or(Ok(Metric::Bytes), str::parse)
            .map_err(query_error)
    }

    fn key(&self) -> Result<Option<Key>, ApiError> {
        self.key
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(query_error)
    }
}

/// Sets a scan's cancel flag when dropped.
struct CancelOnDrop(Arc<pharos_flows::query::Progress>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0
            .cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Answers `q` from the archive, holding a scan permit: a Parquet scan runs on a blocking thread;
/// a client that goes away cancels the scan (or drops the ClickHouse request) and frees the
/// permit.
async fn ask(state: &AppState, selection: Selection, q: Question) -> Result<Answer, ApiError> {
    let archive = state.flows.clone().ok_or_else(|| {
        ApiError::not_found("the flow store is disabled ([flow_store] enabled = false)")
    })?;
    let permit = archive.permits.clone().try_acquire_owned().map_err(|_| {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_CONCURRENT} flow queries are running; retry shortly"),
        );
        e.retry_after = Some(1);
        metrics::counter!("pharos_api_flow_queries_refused_total").increment(1);
        e
    })?;
    if let Some(ch) = &archive.clickhouse {
        let out = q.clickhouse(ch, &selection).await;
        drop(permit);
        metrics::counter!("pharos_api_flow_queries_total").increment(1);
        return out.map_err(clickhouse_error);
    }
    let root = archive.root.clone();
    // When the client goes away, hyper drops this future: the guard then stops the scan, which
    // would otherwise hold its permit until it finished for nobody.
    let progress = Arc::new(pharos_flows::query::Progress::default());
    let _cancel_on_drop = CancelOnDrop(progress.clone());
    let out = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut scan = Scan::new(root, selection);
        scan.progress = Some(progress);
        q.parquet(&scan)
    })
    .await
    .map_err(|e| ApiError::internal("flow query failed", e))?;
    metrics::counter!("pharos_api_flow_queries_total").increment(1);
    out.map_err(query_error)
}

/// `GET /api/v1/flows/query`: stored flows matching a filter and window, earliest first or
/// largest first.
#[utoipa::path(get, path = "/api/v1/flows/query", tag = "flows", params(QueryParams),
    summary = "Stored flows matching a filter and window, earliest first or largest first",
    responses(
        (status = 200, description = "The flows and what the scan did", body = FlowList),
        (status = 400, description = "A parameter or the filter is malformed", body = ErrorBody),
        (status = 404, description = "The flow store is disabled", body = ErrorBody),
        (status = 503, description = "Too many flow queries are running; retry after Retry-After", body = ErrorBody),
    ))]
pub async fn query(
    State(state): State<AppState>,
    Query(p): Query<QueryParams>,
) -> Result<Json<FlowList>, ApiError> {
    let sel = p.selection()?;
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit={limit}: give 1 to {MAX_LIMIT}"
        )));
    }
    let order: Order = p
        .order
        .as_deref()
        .map_or(Ok(Order::Time), str::parse)
        .map_err(query_error)?;
    match ask(&state, sel, Question::List(limit, order)).await? {
        Answer::List(l) => Ok(Json(l.into())),
        _ => Err(ApiError::internal("flow query", "a listing expected")),
    }
}

/// `GET /api/v1/flows/top`: the top values of a key (addresses, prefixes, ports, protocols, AS,
/// interfaces) by bytes, packets or flows.
#[utoipa::path(get, path = "/api/v1/flows/top", tag = "flows", params(QueryParams),
    summary = "Top values of a key (addresses, prefixes, ports, protocols, AS, interfaces) by bytes, packets or flows",
    responses(
        (status = 200, description = "The top rows and totals", body = FlowTop),
        (status = 400, description = "A parameter or the filter is malformed, or `key` is missing", body = ErrorBody),
        (status = 404, description = "The flow store is disabled", body = ErrorBody),
        (status = 503, description = "Too many flow queries are running; retry after Retry-After", body = ErrorBody),
    ))]
pub async fn top(
    State(state): State<AppState>,
    Query(p): Query<QueryParams>,
) -> Result<Json<FlowTop>, ApiError> {
    let sel = p.selection()?;
    let key = p
        .key()?
        .ok_or_else(|| ApiError::bad_request("key is required, e.g. key=dstip"))?;
    let by = p.by()?;
    let n = p.n.unwrap_or(10).min(10_000);
    match ask(&state, sel, Question::Top(key, by, n)).await? {
        Answer::Top(t) => Ok(Json(t.into())),
        _ => Err(ApiError::internal("flow query", "a top list expected")),
    }
}

/// `GET /api/v1/flows/series`: flows, packets and bytes per interval of flow start time,
/// optionally per top key value.
#[utoipa::path(get, path = "/api/v1/flows/series", tag = "flows", params(QueryParams),
    summary = "Flows, packets and bytes per interval of flow start time, optionally per top key value",
    responses(
        (status = 200, description = "The series", body = FlowSeries),
        (status = 400, description = "A parameter or the filter is malformed", body = ErrorBody),
        (status = 404, description = "The flow store is disabled", body = ErrorBody),
        (status = 503, description = "Too many flow queries are running; retry after Retry-After", body = ErrorBody),
    ))]
pub async fn series(
    State(state): State<AppState>,
    Query(p): Query<QueryParams>,
) -> Result<Json<FlowSeries>, ApiError> {
    let sel = p.selection()?;
    let interval = pharos_store::time::parse_duration_ms(p.interval.as_deref().unwrap_or("1m"))
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "interval={:?}: give a duration such as 10s, 1m, 1h",
                p.interval.as_deref().unwrap_or("")
            ))
        })?;
    let key = p.key()?.map(|k| (k, p.n.unwrap_or(5).min(1000)));
    let by = p.by()?;
    match ask(&state, sel, Question::Series(interval, key, by)).await? {
        Answer::Series(s) => Ok(Json(s.into())),
        _ => Err(ApiError::internal("flow query", "a series expected")),
    }
}

/// The throw-away ClickHouse server of the pharos-clickhouse tests.
#[cfg(test)]
#[path = "../../clickhouse/tests/server/mod.rs"]
mod ch_server;

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use pharos_model::flow::{FlowBatch, FlowRecord};
    use pharos_store::writer::{StoreWriter, WriterConfig};
    use pharos_store::{MessageStore, SqliteStore};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::FlowArchive;
    use super::ch_server::Server;
    use crate::{ApiConfig, AppState, router};

    /// 2026-12-07 12:00 UTC.
    const T0: u64 = 1_796_644_800_000;

    /// 3,000 flows over 10 minutes: TCP with several flag mixes, UDP, ICMP; 40 destinations.
    fn flows() -> Vec<FlowRecord> {
        (0..3_000u64)
            .map(|i| {
                let proto = [6u8, 6, 6, 17, 17, 1][(i % 6) as usize];
                FlowRecord {
                    exporter: "192.0.2.10".parse().unwrap(),
                    src_addr: format!("10.0.{}.{}", i % 7, i % 251).parse().unwrap(),
                    dst_addr: format!("198.51.100.{}", i * 7 % 40).parse().unwrap(),
                    src_port: if proto == 1 {
                        0
                    } else {
                        (1024 + i * 13 % 500) as u16
                    },
                    dst_port: if proto == 1 {
                        0
                    } else {
                        [53u16, 80, 443, 123][(i % 4) as usize]
                    },
                    proto,
                    tcp_flags: if proto == 6 {
                        [0x02u8, 0x12, 0x18, 0x11][(i % 4) as usize]
                    } else {
                        0
                    },
                    packets: 1 + i % 17,
                    bytes: 40 * (1 + i % 17) + i,
                    start_ms: T0 + i * 200,
                    end_ms: T0 + i * 200 + 1_500,
                    ..FlowRecord::default()
                }
            })
            .collect()
    }

    fn app(flows: FlowArchive) -> axum::Router {
        let config = ApiConfig::default();
        let store: Arc<dyn MessageStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (writer, _thread) = StoreWriter::spawn(store.clone(), WriterConfig::default());
        let state = AppState {
            store,
            writer,
            metrics: None,
            auth: crate::tests::test_auth(&config),
            config: Arc::new(config),
            nsfs: Arc::new(pharos_store::inventory::Inventory::in_memory(&[])),
            flows: Some(flows),
            emit: None,
            console: Default::default(),
        };
        router(state).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4321))))
    }

    async fn get(app: &axum::Router, path: &str) -> (StatusCode, Value) {
        let req = crate::tests::authed(Request::get(path).body(Body::empty()).unwrap());
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The answer without `stats`, which say what each engine did.
    fn answer(mut v: Value) -> Value {
        if let Some(o) = v.as_object_mut() {
            o.remove("stats");
        }
        v
    }

    #[tokio::test]
    async fn the_flow_routes_answer_the_same_from_clickhouse_as_from_parquet() {
        let Some(srv) = Server::start() else {
            return;
        };
        let flows = flows();
        let mut b = FlowBatch::new();
        b.extend_records(&flows);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("flows");
        let mut w = pharos_flows::segment::SegmentWriter::open(
            pharos_flows::segment::SegmentConfig::new(&root),
        )
        .unwrap();
        w.push(&b, T0 + 3_600_000);
        w.flush(T0 + 3_601_000).unwrap();
        let ch = srv.archive("pharos").await;
        ch.insert(1, &b).await.unwrap();
        let parquet = app(FlowArchive::new(root));
        let clickhouse = app(FlowArchive::clickhouse(ch));
        for path in [
            "/api/v1/flows/top?key=dstip&n=5",
            "/api/v1/flows/top?key=srcport&by=bytes&n=10&filter=proto%20udp",
            "/api/v1/flows/top?key=dstip&by=flows&filter=flags%20S%20and%20not%20flags%20A",
            "/api/v1/flows/top?key=srcip4/24&by=packets&from=2026-12-07T12:02:00Z&to=2026-12-07T12:07:00Z",
            "/api/v1/flows/series?interval=1m&key=proto&n=3",
            "/api/v1/flows/query?order=bytes&limit=25&filter=dst%20port%2053",
        ] {
            let (sp, p) = get(&parquet, path).await;
            let (sc, c) = get(&clickhouse, path).await;
            assert_eq!(
                (sp, sc),
                (StatusCode::OK, StatusCode::OK),
                "{path}: {p} / {c}"
            );
            assert_eq!(answer(p.clone()), answer(c.clone()), "{path}");
            assert!(
                p.to_string().len() > 200,
                "{path}: the answer holds flows: {p}"
            );
            // (A ClickHouse listing counts the flows it returns, not every match.)
            if !path.contains("/query") {
                assert_eq!(
                    p["stats"]["rows_matched"], c["stats"]["rows_matched"],
                    "{path}: rows matched"
                );
            }
        }
        // Mistakes are refused alike.
        for path in [
            "/api/v1/flows/top?key=nonsense",
            "/api/v1/flows/top?key=dstip&filter=proto%20(",
            "/api/v1/flows/series?interval=0s",
            "/api/v1/flows/query?order=size",
        ] {
            let (sp, _) = get(&parquet, path).await;
            let (sc, _) = get(&clickhouse, path).await;
            assert_eq!(sp, sc, "{path}");
        }
        // An unreachable server is a 502 naming ClickHouse, not an empty answer.
        drop(srv);
        let (s, v) = get(&clickhouse, "/api/v1/flows/top?key=dstip").await;
        assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
        assert!(v.to_string().contains("ClickHouse"), "{v}");
    }
}
