//! Message queries and event life cycle: `GET /api/v1/messages`, `GET /api/v1/messages/{id}`,
//! `POST /api/v1/events/{id}/ack`.
//!
//! Contract of the acknowledgement: the caller's token name is recorded as `acked-by`, with
//! `acked-at` and the optional `comment` of a `{"comment": "..."}` body (at most
//! [`MAX_ACK_COMMENT`] bytes of printable text). Acknowledging an acknowledged event answers 200
//! with the original record unchanged, and `pharos_api_events_acknowledged_total` counts each
//! event once.

use std::net::IpAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use ipnet::IpNet;
use pharos_model::text::{is_unsafe_char, printable};
use pharos_model::{EventState, KIND_NAMES, Severity, Timestamp};
use pharos_store::{MessageQuery, StoreError, StoredMessage};
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ErrorBody;
use crate::json::Json;
use crate::{ApiError, AppState};

/// The longest acknowledgement comment accepted, in bytes.
pub const MAX_ACK_COMMENT: usize = 1024;

/// Query string of `GET /api/v1/messages`; every parameter optional.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Event time at or after: RFC 3339, `now`, relative like `-1h`, `-30m`, `-7d`, or Unix
    /// seconds.
    pub from: Option<String>,
    /// Event time before (same forms as `from`).
    pub to: Option<String>,
    /// Comma-separated kinds: system-alarm, system-event, traffic-flows, session-table,
    /// system-access-log, resource-utilization-log, user-activity-log, dpi-log, ddos, virus,
    /// intrusion, web-attack, voip-vocn, counters, botnet, vulnerability-scan-log,
    /// firewall-traffic-log, generic-log.
    pub kind: Option<String>,
    /// Minimum severity: info, low, middle, high, critical (`min_severity` is the same, as
    /// subscription filters and the stream name it).
    #[serde(alias = "min_severity")]
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
    /// Page size, 1 to 10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only messages stored after the message with this id (for following new arrivals).
    pub after_id: Option<String>,
}

/// Parses a time argument: the forms of [`pharos_store::time::parse_time`] (RFC 3339, `now`,
/// relative such as `-1h`, Unix seconds...).
pub fn parse_time(name: &str, s: &str, now: Timestamp) -> Result<Timestamp, ApiError> {
    let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    pharos_store::time::parse_time(s, now_ms)
        .ok()
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(chrono::DateTime::from_timestamp_millis)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name}={s:?}: expected RFC 3339 (2026-11-24T14:00:00Z), `now`, a relative time like -1h, -30m, -7d, or Unix seconds"
            ))
        })
}

/// An address or prefix of query parameter `name`, or a 400 naming it.
pub(crate) fn parse_net(name: &str, s: &str) -> Result<IpNet, ApiError> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(a));
    }
    Err(ApiError::bad_request(format!(
        "{name}={s:?}: expected an IPv4 or IPv6 address or prefix, like 192.0.2.7, 198.51.100.0/24 or 2001:db8::/32"
    )))
}

impl ListParams {
    /// Turns the parameters into a store query, naming the first bad parameter.
    pub fn to_query(&self, now: Timestamp) -> Result<MessageQuery, ApiError> {
        let mut q = MessageQuery::default();
        if let Some(s) = &self.from {
            q.from = Some(parse_time("from", s, now)?);
        }
        if let Some(s) = &self.to {
            q.to = Some(parse_time("to", s, now)?);
        }
        if let Some(s) = &self.kind {
            for k in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                if !KIND_NAMES.contains(&k) {
                    return Err(ApiError::bad_request(format!(
                        "kind={k:?} is not a kind; expected one of {}",
                        KIND_NAMES.join(", ")
                    )));
                }
                q.kinds.push(k.to_string());
            }
        }
        if let Some(s) = &self.severity {
            q.min_severity = Some(Severity::parse(s.trim()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "severity={s:?}: expected info, low, middle, high or critical"
                ))
            })?);
        }
        if let Some(s) = &self.state {
            q.state = Some(EventState::parse(s.trim()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "state={s:?}: expected open, acknowledged or closed"
                ))
            })?);
        }
        q.nsf = self.nsf.clone();
        q.rule = self.rule.clone();
        q.text = self.text.clone().filter(|t| !t.is_empty());
        q.addr = self
            .addr
            .as_deref()
            .map(|s| parse_net("addr", s))
            .transpose()?;
        q.src = self
            .src
            .as_deref()
            .map(|s| parse_net("src", s))
            .transpose()?;
        q.dst = self
            .dst
            .as_deref()
            .map(|s| parse_net("dst", s))
            .transpose()?;
        if let Some(l) = self.limit {
            if l == 0 || l > 10_000 {
                return Err(ApiError::bad_request(format!(
                    "limit={l}: expected 1 to 10000"
                )));
            }
            q.limit = l;
        }
        q.cursor = self.cursor.clone();
        if let Some(a) = &self.after_id {
            q.after_id = Some(a.trim().parse().map_err(|_| {
                ApiError::bad_request(format!("after_id={a:?}: expected a message id (a number)"))
            })?);
        }
        Ok(q)
    }
}

/// One stored message as the API writes it (`GET /api/v1/messages/{id}`, the items of a page,
/// the data of a stream event): envelope summary plus the YANG-JSON notification.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = StoredMessage)]
pub struct MessageView {
    /// Message id (a number, as a string).
    #[schema(required = true)]
    pub id: Option<String>,
    /// Kind name, as the `kind` parameter takes it.
    pub kind: &'static str,
    /// info, low, middle, high or critical.
    #[schema(value_type = String, pattern = "^(info|low|middle|high|critical)$")]
    pub severity: &'static str,
    /// When it happened (the NSF's clock), RFC 3339.
    #[schema(format = DateTime)]
    pub event_time: String,
    /// When Pharos received it, RFC 3339.
    #[schema(format = DateTime)]
    pub receive_time: String,
    /// The NSF that reported it.
    pub nsf_name: String,
    /// Events only: open, acknowledged or closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^(open|acknowledged|closed)$")]
    pub state: Option<&'static str>,
    /// When the state last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub state_changed_at: Option<String>,
    /// Name of the token that acknowledged the event (absent for acknowledgements older than
    /// this field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    /// When the event was first acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub acked_at: Option<String>,
    /// The comment given with the acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_comment: Option<String>,
    /// The notification in YANG-JSON (the schema `Notification`).
    #[schema(value_type = Object)]
    pub notification: Value,
}

impl MessageView {
    /// The view of `s`.
    pub fn of(s: &StoredMessage) -> Self {
        let c = &s.message.common;
        let time = |t: &Timestamp| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        Self {
            id: c.id.map(|i| i.to_string()),
            kind: s.message.kind.name(),
            severity: c.severity.as_str(),
            event_time: time(&c.event_time),
            receive_time: time(&c.receive_time),
            nsf_name: c.nsf_name.clone(),
            state: s.state.map(|st| st.as_str()),
            state_changed_at: s.state_changed_at.as_ref().map(time),
            acked_by: s.ack.as_ref().and_then(|a| a.by.clone()),
            acked_at: s.ack.as_ref().map(|a| time(&a.at)),
            ack_comment: s.ack.as_ref().and_then(|a| a.comment.clone()),
            notification: pharos_model::json::encode(&s.message),
        }
    }
}

/// The API's JSON for one stored message: [`MessageView`] as a JSON value.
pub fn render_stored(s: &StoredMessage) -> Value {
    serde_json::to_value(MessageView::of(s)).unwrap_or(Value::Null)
}

/// A page of `GET /api/v1/messages`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    /// The messages, newest event time first.
    pub items: Vec<MessageView>,
    /// Cursor of the next page (absent or null on the last page).
    pub next_cursor: Option<String>,
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::BadCursor(c) => ApiError::bad_request(format!(
            "cursor={c:?} is not a cursor this server issued; start again without it"
        )),
        StoreError::NotFound(id) => ApiError::not_found(format!("no message with id {id}")),
        StoreError::NotAnEvent(id) => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "message {id} is a log or counters record, not an event: it has no state to acknowledge"
            ),
        ),
        other => ApiError::internal("message store failed", other),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("store task failed", e))?
        .map_err(store_error)
}

/// Stored messages, newest event time first, filtered and paged.
///
/// A parameter the server does not know is refused with 400 naming it.
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", params(ListParams),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, description = "A parameter is malformed or unknown", body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MessagePage>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::bad_request(format!("{}; see /api/v1/openapi.json", e.body_text()))
    })?;
    let q = params.to_query(chrono::Utc::now())?;
    let store = state.store.clone();
    let page = blocking(move || store.query(&q)).await?;
    Ok(Json(MessagePage {
        items: page.items.iter().map(MessageView::of).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("message id {s:?} is not a number")))
}

/// One stored message.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id (a number)")),
    responses(
        (status = 200, description = "The message", body = MessageView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No message with this id", body = ErrorBody),
    ))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    let id = parse_id(&id)?;
    let store = state.store.clone();
    match blocking(move || store.get(id)).await? {
        Some(s) => Ok(Json(MessageView::of(&s))),
        None => Err(ApiError::not_found(format!("no message with id {id}"))),
    }
}

/// The body of `POST /api/v1/events/{id}/ack`; the body itself is optional (may be empty).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckBody {
    /// Why, or what was done: printable text without control characters, at most 1024 bytes.
    #[serde(default)]
    #[schema(max_length = 1024)]
    comment: Option<String>,
}

/// The comment of an acknowledgement body: none for an empty body or an empty comment; 400 for
/// malformed JSON, a comment over [`MAX_ACK_COMMENT`] bytes or one with a control or invisible
/// character (named with its place).
fn ack_comment(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let body: AckBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "acknowledgement body: {e}; send {{\"comment\": \"...\"}} or nothing"
        ))
    })?;
    let Some(c) = body.comment.filter(|c| !c.trim().is_empty()) else {
        return Ok(None);
    };
    if c.len() > MAX_ACK_COMMENT {
        return Err(ApiError::bad_request(format!(
            "comment is {} bytes long; at most {MAX_ACK_COMMENT} are allowed, shorten it",
            c.len()
        )));
    }
    if let Some((i, ch)) = c.char_indices().find(|&(_, ch)| is_unsafe_char(ch)) {
        return Err(ApiError::bad_request(format!(
            "comment holds the control or invisible character {} at byte {i}; write it as one line of printable text",
            printable(ch.encode_utf8(&mut [0; 4]))
        )));
    }
    Ok(Some(c))
}

/// Acknowledge an event.
///
/// Records the token's name as `acked-by`, `acked-at` and the optional comment. Acknowledging an
/// acknowledged event answers 200 with the original record unchanged.
#[utoipa::path(post, path = "/api/v1/events/{id}/ack", tag = "messages",
    params(("id" = String, Path, description = "Message id of the event")),
    request_body(content = Option<AckBody>, description = "Optional: the body may be empty"),
    responses(
        (status = 200, description = "The event, acknowledged", body = MessageView),
        (status = 400, description = "The id or the body is malformed", body = ErrorBody),
        (status = 404, description = "No message with this id", body = ErrorBody),
        (status = 409, description = "The message is a log or counters record, not an event", body = ErrorBody),
    ))]
pub(crate) async fn ack(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<MessageView>, ApiError> {
    let id = parse_id(&id)?;
    let comment = ack_comment(&body)?;
    // The middleware sets the principal on every route that needs a role, as this one does.
    let by = principal.map_or_else(|| "unknown".to_string(), |Extension(p)| p.name);
    let store = state.store.clone();
    let actor = by.clone();
    let done = blocking(move || store.acknowledge(id, &actor, comment.as_deref())).await?;
    if done.first {
        metrics::counter!("pharos_api_events_acknowledged_total").increment(1);
        tracing::info!(id, by = %printable(&by), "event acknowledged");
    }
    Ok(Json(MessageView::of(&done.stored)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_documented_form() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_time("from", "now", now).unwrap(), now);
        assert_eq!(
            parse_time("from", "-1h", now).unwrap().to_rfc3339(),
            "2026-11-24T11:00:00+00:00"
        );
        assert_eq!(
            parse_time("from", "-7d", now).unwrap().to_rfc3339(),
            "2026-11-17T12:00:00+00:00"
        );
        assert_eq!(
            parse_time("from", "2026-11-24T10:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T09:00:00+00:00"
        );
        assert_eq!(parse_time("from", "0", now).unwrap().timestamp(), 0);
        let e = parse_time("from", "-1x", now).unwrap_err();
        assert!(e.message.contains("from=\"-1x\""), "{}", e.message);
        assert!(parse_time("to", "-99999999999999d", now).is_err());
    }

    #[test]
    fn params_name_the_bad_parameter() {
        let now = chrono::Utc::now();
        let p = ListParams {
            kind: Some("ddos,smurf".into()),
            ..Default::default()
        };
        assert!(p.to_query(now).unwrap_err().message.contains("smurf"));
        let p = ListParams {
            addr: Some("10.0.0.300".into()),
            ..Default::default()
        };
        assert!(p.to_query(now).unwrap_err().message.starts_with("addr="));
        let p = ListParams {
            addr: Some("10.1.2.3/8".into()),
            severity: Some("high".into()),
            ..Default::default()
        };
        let q = p.to_query(now).unwrap();
        assert_eq!(q.addr.unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(q.min_severity, Some(Severity::High));
        // min_severity is the same parameter (the stream's and subscriptions' name).
        let p: ListParams =
            serde_json::from_value(serde_json::json!({"min_severity": "high"})).unwrap();
        assert_eq!(p.to_query(now).unwrap().min_severity, Some(Severity::High));
        let p = ListParams {
            limit: Some(0),
            ..Default::default()
        };
        assert!(p.to_query(now).is_err());
    }
}
