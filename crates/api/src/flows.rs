//! Flow archive queries: `GET /api/v1/flows/query`, `/api/v1/flows/top`, `/api/v1/flows/series`.
//! The scans run on blocking threads, at most [`MAX_CONCURRENT`] at a time (more get 503 with
//! `Retry-After`), so a burst of heavy queries cannot starve ingestion.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use pharos_flows::filter::{self, FilterError};
use pharos_flows::query::{Key, MAX_LIMIT, Metric, Order, QueryError, Scan, Selection};
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
    /// `<data_dir>/flows`.
    pub root: std::path::PathBuf,
    /// Bounds concurrent scans.
    pub permits: Arc<Semaphore>,
}

impl FlowArchive {
    /// The archive under `root`.
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        Self {
            root: root.into(),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
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

/// Runs `f` over the archive on a blocking thread, holding a scan permit; a client that goes
/// away cancels the scan and frees the permit.
async fn scan<T: Send + 'static>(
    state: &AppState,
    selection: Selection,
    f: impl FnOnce(&Scan) -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
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
    let root = archive.root.clone();
    // When the client goes away, hyper drops this future: the guard then stops the scan, which
    // would otherwise hold its permit until it finished for nobody.
    let progress = Arc::new(pharos_flows::query::Progress::default());
    let _cancel_on_drop = CancelOnDrop(progress.clone());
    let out = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut scan = Scan::new(root, selection);
        scan.progress = Some(progress);
        f(&scan)
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
    let l = scan(&state, sel, move |s| s.list(limit, order)).await?;
    Ok(Json(l.into()))
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
    let t = scan(&state, sel, move |s| s.top(key, by, n)).await?;
    Ok(Json(t.into()))
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
    let s = scan(&state, sel, move |s| s.series(interval, key, by)).await?;
    Ok(Json(s.into()))
}
