//! `GET /api/v1/reports`: the report of a window, computed over the stored messages.
//!
//! Contract: the report counts every stored message whose event time is in `[from, to)`, up to
//! [`MAX_REPORT_MESSAGES`]; past that the answer says `capped: true` and `covered_from`, the
//! earliest event time read (pages come newest first, so a capped report covers the newest part of
//! the window).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ErrorBody;
use crate::json::Json;
use crate::messages::parse_time;
use crate::views::ReportView;
use crate::{ApiError, AppState};

use pharos_detect::report::{MAX_REPORT_MESSAGES, ReportConfig, report_window};

/// Query string of `GET /api/v1/reports`; every parameter optional.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Window start: RFC 3339, `now`, relative (`-1h`) or Unix seconds; default one hour before
    /// `to`.
    pub from: Option<String>,
    /// Window end, exclusive; default now.
    pub to: Option<String>,
    /// Rows of each top list, 1 to 1000 (default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub top: Option<usize>,
    /// `json` (default) or `text`.
    pub format: Option<String>,
}

/// Report of a window over the stored messages.
///
/// Counts by kind and severity, top attacked hosts and sources, DDoS attacks started and ended
/// (at most 100000 messages read, newest first; `capped` says when the cap was reached).
#[utoipa::path(get, path = "/api/v1/reports", tag = "messages", params(ReportParams),
    responses(
        (status = 200, description = "The report (plain text with format=text)", content(
            (ReportView = "application/json"),
            (String = "text/plain"),
        )),
        (status = 400, description = "A parameter is malformed or unknown", body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<AppState>,
    params: Result<Query<ReportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!("{}; see /api/v1/openapi.json", e.body_text()))
    })?;
    let now = chrono::Utc::now();
    let to =
        p.to.as_deref()
            .map_or(Ok(now), |s| parse_time("to", s, now))?;
    let from = p
        .from
        .as_deref()
        .map_or(Ok(to - chrono::Duration::hours(1)), |s| {
            parse_time("from", s, now)
        })?;
    if from >= to {
        return Err(ApiError::bad_request(format!(
            "from={} is not before to={}: give a window with from earlier than to",
            from.to_rfc3339(),
            to.to_rfc3339()
        )));
    }
    let mut cfg = ReportConfig::default();
    if let Some(n) = p.top {
        if !(1..=1000).contains(&n) {
            return Err(ApiError::bad_request(format!(
                "top={n}: expected 1 to 1000"
            )));
        }
        cfg.top = n;
        cfg.sketch = cfg.sketch.max(n);
    }
    let text = match p.format.as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format={other:?}: expected json or text"
            )));
        }
    };
    let store = state.store.clone();
    let w = tokio::task::spawn_blocking(move || {
        let messages = pharos_store::messages_in(store.as_ref(), from, to);
        report_window(&cfg, from, to, MAX_REPORT_MESSAGES, messages)
    })
    .await
    .map_err(|e| ApiError::internal("report task failed", e))?
    .map_err(|e| ApiError::internal("message store failed", e))?;
    let note = w.covered_from.map(|t| {
        format!(
            "capped at {} messages: the report covers {} .. to",
            w.read,
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )
    });
    if text {
        let mut body = w.report.to_string();
        if let Some(n) = note {
            body.push_str(&n);
            body.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response());
    }
    let read = u64::try_from(w.read).unwrap_or(u64::MAX);
    Ok(Json(ReportView::new(w.report, read, w.covered_from, note)).into_response())
}
