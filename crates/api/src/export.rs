//! `GET /api/v1/messages/export`: the messages matching the filters of `GET /api/v1/messages`,
//! exported for sharing as IODEF v2 (`application/xml`), IntelMQ or ECS (one JSON object per
//! line, `application/x-ndjson`) or CSV (`text/csv`); see docs/exports.md. A MISP feed is a
//! directory: `pharos events export --format misp --out DIR` writes it.
//!
//! Contract: newest event time first, at most `limit` messages (default 1000, at most 10000),
//! no anonymisation (export with `pharos events export --anon-key-file` to pseudonymise).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pharos_export::{ExportOptions, Format, Restriction};

use crate::error::ErrorBody;
use crate::messages::ListParams;
use crate::{ApiError, AppState};

/// The most messages one export answers.
pub const MAX_EXPORT: usize = 10_000;

/// Query string of `GET /api/v1/messages/export`: a format and the filters of
/// `GET /api/v1/messages`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Export format: iodef2, intelmq, ecs or csv (needed: 400 without it).
    #[param(pattern = "^(iodef2|intelmq|ecs|csv)$")]
    pub format: Option<String>,
    /// TLP restriction written on the incidents: white, green, amber (default) or red.
    pub tlp: Option<String>,
    /// Our instance name, ideally the CSIRT's FQDN (IODEF `IncidentID` name); default `pharos`.
    pub instance: Option<String>,
    /// Our organisation (IODEF creator contact, IntelMQ `feed.provider`); default `Pharos`.
    pub org: Option<String>,
    /// Event time at or after: RFC 3339, `now`, relative like `-1h`, or Unix seconds.
    pub from: Option<String>,
    /// Event time before (same forms as `from`).
    pub to: Option<String>,
    /// Comma-separated kinds (as `GET /api/v1/messages` takes them).
    pub kind: Option<String>,
    /// Minimum severity: info, low, middle, high, critical.
    pub severity: Option<String>,
    /// Exact NSF name.
    pub nsf: Option<String>,
    /// Source or destination address or prefix (v4 or v6).
    pub addr: Option<String>,
    /// Source address or prefix.
    pub src: Option<String>,
    /// Destination address or prefix.
    pub dst: Option<String>,
    /// Exact rule name.
    pub rule: Option<String>,
    /// Case-insensitive substring of the message text.
    pub text: Option<String>,
    /// Event state: open, acknowledged, closed.
    pub state: Option<String>,
    /// Most messages to export, 1 to 10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// One line of an IntelMQ export (ECS lines are the same idea, nested: `@timestamp`,
/// `event.*`, `source.*`, ... see docs/exports.md). Only the main keys are listed.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ExportedEvent {
    /// RSIT taxonomy, e.g. `availability`.
    #[serde(rename = "classification.taxonomy")]
    classification_taxonomy: String,
    /// RSIT type, e.g. `ddos`.
    #[serde(rename = "classification.type")]
    classification_type: String,
    /// What exactly, e.g. `syn-flood`.
    #[serde(rename = "classification.identifier")]
    classification_identifier: String,
    /// Source (attacker) address.
    #[serde(rename = "source.ip")]
    source_ip: Option<String>,
    /// Destination (victim) address.
    #[serde(rename = "destination.ip")]
    destination_ip: Option<String>,
    /// Event time, RFC 3339.
    #[serde(rename = "time.source")]
    time_source: String,
}

/// Export stored messages (IODEF v2, IntelMQ, ECS, CSV).
///
/// The filters are those of `GET /api/v1/messages`; the answer is one document in the format's
/// media type. A parameter the server does not know is refused with 400 naming it.
#[utoipa::path(get, path = "/api/v1/messages/export", tag = "messages", params(ExportParams),
    responses(
        (status = 200, description = "The export", content(
            (String = "application/xml"),
            (ExportedEvent = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A parameter is malformed or unknown", body = ErrorBody),
    ))]
pub(crate) async fn export(
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!("{}; see /api/v1/openapi.json", e.body_text()))
    })?;
    let asked = p.format.as_deref().unwrap_or_default();
    let format = Format::parse(asked)
        .ok()
        .filter(|f| *f != Format::Misp)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "format={asked:?}: expected iodef2, intelmq, ecs or csv (a MISP feed is a directory: `pharos events export --format misp --out DIR`)"
            ))
        })?;
    let restriction = match p.tlp.as_deref() {
        None => Restriction::Amber,
        Some(t) => Restriction::parse(t).ok_or_else(|| {
            ApiError::bad_request(format!("tlp={t:?}: expected white, green, amber or red"))
        })?,
    };
    let want = p.limit.unwrap_or(1000);
    if want == 0 || want > MAX_EXPORT {
        return Err(ApiError::bad_request(format!(
            "limit={want}: expected 1 to {MAX_EXPORT}"
        )));
    }
    let list = ListParams {
        from: p.from,
        to: p.to,
        kind: p.kind,
        severity: p.severity,
        nsf: p.nsf,
        addr: p.addr,
        src: p.src,
        dst: p.dst,
        rule: p.rule,
        text: p.text,
        state: p.state,
        ..ListParams::default()
    };
    let mut q = list.to_query(chrono::Utc::now())?;
    let (instance, org) = (p.instance, p.org);
    let store = state.store.clone();
    // Reading the pages and writing the export are both blocking work.
    let body = tokio::task::spawn_blocking(move || {
        let mut opts = ExportOptions::new(instance.unwrap_or_else(|| "pharos".into()));
        if let Some(o) = org {
            opts.organisation = o;
        }
        opts.restriction = restriction;
        let mut messages = Vec::new();
        while messages.len() < want {
            q.limit = (want - messages.len()).min(1000);
            let page = store
                .query(&q)
                .map_err(|e| ApiError::internal("message store failed", e))?;
            messages.extend(page.items.into_iter().map(|s| s.message));
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        pharos_export::export_string(format, &messages, &opts)
            .map_err(|e| ApiError::internal("export failed", e))
    })
    .await
    .map_err(|e| ApiError::internal("export task failed", e))??;
    let content_type = format.content_type().unwrap_or("application/octet-stream");
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
