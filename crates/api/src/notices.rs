//! Notices to the constituency (docs/early-warning.md): `GET /api/v1/notices`, every notice kept
//! by the notice stage with its recipient, events and delivery status.
//!
//! Contract: viewer role; newest first; answers 503 when the notice stage does not run (no
//! `[notice]` section).

use axum::Extension;
use axum::extract::Query;
use axum::http::StatusCode;
use pharos_constituency::notice::{NoticeFilter, NoticeStore, Status};

use crate::ApiError;
use crate::constituency::{ConstituencyHandle, blocking, handle};
use crate::error::ErrorBody;
use crate::json::Json;

/// Query string of `GET /api/v1/notices`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoticeParams {
    /// Only this delivery status: `pending`, `sent` or `failed`.
    pub status: Option<String>,
    /// Only recipients (mail address or URL) containing this text.
    pub recipient: Option<String>,
    /// Only notices to this organisation.
    pub org: Option<String>,
    /// Only notices carrying this event (message id).
    pub event: Option<u64>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

/// One kept notice.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    /// Its id.
    pub id: u64,
    /// `mail` or `webhook`.
    pub channel: String,
    /// The mail address or URL.
    pub recipient: String,
    /// The organisation.
    pub organisation: String,
    /// `immediate`, `hourly` or `daily`.
    pub interval: String,
    /// Subject line.
    pub subject: String,
    /// The events it carries (message ids).
    pub events: Vec<u64>,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it was made (RFC 3339).
    pub created: String,
    /// When it was delivered (RFC 3339).
    pub sent: Option<String>,
}

/// The notices, newest first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NoticeList {
    /// The notices.
    pub items: Vec<NoticeView>,
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Notices made for the constituency, with their recipients and delivery status.
#[utoipa::path(get, path = "/api/v1/notices", tag = "constituency",
    params(NoticeParams),
    responses(
        (status = 200, description = "The notices", body = NoticeList),
        (status = 400, description = "A filter is malformed", body = ErrorBody),
        (status = 503, description = "The notice stage does not run", body = ErrorBody),
    ))]
pub(crate) async fn list(
    h: Option<Extension<ConstituencyHandle>>,
    Query(p): Query<NoticeParams>,
) -> Result<Json<NoticeList>, ApiError> {
    let Some(path) = handle(h)?.notices else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the notice stage does not run: add a [notice] section (docs/early-warning.md)",
        ));
    };
    let status = match p.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status={:?}: expected pending, sent or failed",
                pharos_model::text::printable(s)
            ))
        })?),
    };
    let filter = NoticeFilter {
        status,
        recipient: p.recipient,
        org_id: p.org,
        event_id: p.event,
        limit: p.limit.unwrap_or(100),
    };
    let items = blocking(move || {
        NoticeStore::open(&path)
            .and_then(|s| s.list(&filter))
            .map_err(|e| ApiError::internal("notice table failed", e))
    })
    .await?;
    Ok(Json(NoticeList {
        items: items
            .into_iter()
            .map(|n| NoticeView {
                id: n.id,
                channel: n.channel.as_str().into(),
                recipient: n.recipient,
                organisation: n.org_id,
                interval: n.interval,
                subject: n.subject,
                events: n.events,
                status: n.status.as_str().into(),
                attempts: n.attempts,
                last_error: n.last_error,
                created: time(n.created_ms),
                sent: n.sent_ms.map(time),
            })
            .collect(),
    }))
}
