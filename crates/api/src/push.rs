//! `POST /api/v1/push`: NSFs push I2NSF YANG-JSON notifications: one document, a JSON array of
//! documents, or NDJSON (one per line). All-or-nothing: one invalid document refuses the request.
//! Documents are decoded with [`pharos_model::json::decode_ingest`]: an `nsf-name` with a control
//! or invisible character is invalid (400 naming `.../nsf-name`, the character and its place).

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use pharos_model::Message;
use pharos_store::writer::SubmitError;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::ErrorBody;
use crate::json::Json;
use crate::{ApiError, AppState};

/// What a push answers: how many notifications were stored, and their ids in request order.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct PushResult {
    /// Notifications stored.
    stored: usize,
    /// Their message ids, in request order.
    ids: Vec<String>,
}

/// An I2NSF notification in YANG-JSON (RFC 7951) as defined by
/// ietf-i2nsf-monitoring-interface@2022-06-01 and pharos-i2nsf-extensions (GET /api/v1/yang): one
/// member `ietf-i2nsf-monitoring-interface:i2nsf-event`, `:i2nsf-log`, `:i2nsf-nsf-event` or
/// `:i2nsf-counters`; optionally wrapped as {"ietf-restconf:notification": {"eventTime": ...,
/// <notification>}}. Free-form YANG JSON: the server validates it against the modules and names
/// the first invalid member.
///
/// Documentation only: the push route decodes the body itself (`pharos_model::json`).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw1",
        "i2nsf-system-detection-alarm": {
            "alarm-category": "memory-alarm",
            "usage": 91,
            "threshold": 90
        }
    }
}))]
#[allow(dead_code)]
pub(crate) struct Notification {
    /// The notification's members.
    #[serde(flatten)]
    members: std::collections::BTreeMap<String, serde_json::Value>,
}

/// One notification, or a JSON array of them; also accepted as application/x-ndjson, one
/// notification per line.
///
/// Documentation only, as [`Notification`].
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum PushBody {
    /// One notification.
    One(Notification),
    /// Several.
    Many(Vec<Notification>),
}

/// Push I2NSF YANG-JSON notifications: one document, a JSON array, or NDJSON.
///
/// Answered only once every message is durable; one invalid document refuses the whole request
/// (400 naming the document and the member, e.g. an nsf-name with a control character).
#[utoipa::path(post, path = "/api/v1/push", tag = "ingest",
    request_body(
        description = "YANG-JSON notifications (RFC 7951): one document, a JSON array of them, or NDJSON (one per line)",
        content(
            (PushBody = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 200, description = "Stored", body = PushResult),
        (status = 400, description = "A notification is invalid (each named in details); nothing was stored", body = ErrorBody),
        (status = 413, description = "The body or the number of notifications exceeds the limit", body = ErrorBody),
        (status = 503, description = "Overloaded or shutting down; nothing was stored, retry after Retry-After", body = ErrorBody),
    ))]
pub(crate) async fn push(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    principal: Option<Extension<Principal>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PushResult>), ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let reason = if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "body" };
        metrics::counter!("pharos_push_rejected_total", "reason" => reason).increment(1);
        let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "request body exceeds the limit of {} bytes ([api] max_body_bytes); split the push into smaller requests",
                state.config.max_body_bytes
            )
        } else {
            format!("could not read the request body: {e}")
        };
        ApiError::new(status, msg)
    })?;
    let docs = split_documents(&body).inspect_err(|_| {
        metrics::counter!("pharos_push_rejected_total", "reason" => "malformed_json").increment(1);
    })?;
    if docs.is_empty() {
        metrics::counter!("pharos_push_rejected_total", "reason" => "empty").increment(1);
        return Err(ApiError::bad_request(
            "the request holds no notification; send a YANG-JSON document, an array of them, or NDJSON",
        ));
    }
    if docs.len() > state.config.max_push_messages {
        metrics::counter!("pharos_push_rejected_total", "reason" => "too_many").increment(1);
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} notifications in one request exceed the limit of {} ([api] max_push_messages); split the push",
                docs.len(),
                state.config.max_push_messages
            ),
        ));
    }
    let now = chrono::Utc::now();
    let source = Some(format!("push:{}", peer.ip()));
    // A client certificate, or a token bound to an NSF, names the NSF: its messages carry that
    // name whatever they say.
    let cert_nsf = principal.as_ref().and_then(|p| p.nsf.clone());
    let mut msgs = Vec::with_capacity(docs.len());
    let mut failures = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        match pharos_model::json::decode_ingest(doc) {
            Ok(mut m) => {
                m.common.id = None;
                m.common.receive_time = now;
                if let Some(n) = &cert_nsf {
                    m.common.nsf_name = n.clone();
                }
                if m.common.source.is_none() {
                    m.common.source = source.clone();
                }
                msgs.push(m);
            }
            Err(e) => failures.push(json!({ "index": i, "path": e.path, "error": e.reason })),
        }
    }
    if !failures.is_empty() {
        metrics::counter!("pharos_push_rejected_total", "reason" => "invalid")
            .increment(docs.len() as u64);
        let first = failures[0].clone();
        let mut err = ApiError::bad_request(format!(
            "{} of {} notifications are invalid, nothing was stored; first: notification {} at {}: {}",
            failures.len(),
            docs.len(),
            first["index"],
            first["path"].as_str().unwrap_or(""),
            first["error"].as_str().unwrap_or("")
        ));
        err.details = failures;
        return Err(err);
    }
    check_nsf_rate(&state, &msgs)?;
    for m in &msgs {
        metrics::counter!("pharos_push_received_total", "kind" => m.kind.name()).increment(1);
    }
    let n = msgs.len();
    let stored: Vec<Message> = state.writer.submit(msgs).await.map_err(|e| {
        metrics::counter!("pharos_push_dropped_total", "reason" => submit_reason(&e))
            .increment(n as u64);
        match e {
            SubmitError::Full(_) | SubmitError::Closed => {
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{e}; nothing was stored"),
                );
                err.retry_after = Some(1);
                err
            }
            SubmitError::Store(e) => {
                ApiError::internal("storing pushed notifications failed; nothing was stored", e)
            }
        }
    })?;
    record_pushes(&state, &stored, now, peer.ip());
    let ids: Vec<String> = stored
        .iter()
        .filter_map(|m| m.common.id)
        .map(|id| id.to_string())
        .collect();
    Ok((
        StatusCode::OK,
        Json(PushResult {
            stored: ids.len(),
            ids,
        }),
    ))
}

/// Counts stored pushes in the NSF inventory for the configured NSFs they name, so that
/// `GET /api/v1/nsfs` shows pushing NSFs as heard from, like syslog senders.
fn record_pushes(
    state: &AppState,
    stored: &[Message],
    now: chrono::DateTime<chrono::Utc>,
    peer: std::net::IpAddr,
) {
    for (name, n) in per_nsf(stored) {
        if let Some(i) = state.nsfs.find_configured(name) {
            let counts = pharos_store::inventory::NsfCounts {
                received: n,
                parsed: n,
                unparsed: 0,
            };
            state.nsfs.record(i, counts, now, peer, Some(PUSH_FORMAT));
        }
    }
}

/// How many of `msgs` each NSF name has, in order of first appearance.
fn per_nsf(msgs: &[Message]) -> Vec<(&str, u64)> {
    let mut out: Vec<(&str, u64)> = Vec::new();
    for m in msgs {
        let name = m.common.nsf_name.as_str();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => out.push((name, 1)),
        }
    }
    out
}

/// The format an NSF that pushes is shown with in the inventory.
pub const PUSH_FORMAT: &str = "i2nsf-json";

/// Charges each NSF's message bucket with its messages of the request, all or nothing.
fn check_nsf_rate(state: &AppState, msgs: &[Message]) -> Result<(), ApiError> {
    let costs: Vec<(&str, f64)> = per_nsf(msgs)
        .into_iter()
        .map(|(n, c)| (n, c as f64))
        .collect();
    let Err((nsf, wait)) = state.auth.limits.nsf_messages.check_all(&costs) else {
        return Ok(());
    };
    metrics::counter!("pharos_push_rejected_total", "reason" => "nsf_rate")
        .increment(msgs.len() as u64);
    metrics::counter!("pharos_api_rate_limited_total", "limit" => "nsf").increment(1);
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "NSF {nsf:?} is over its rate of {} messages per second ([api] nsf_messages_per_second); nothing was stored, retry after {wait} s",
            state.config.nsf_messages_per_second
        ),
    );
    err.retry_after = Some(wait.min(u32::MAX as u64) as u32);
    Err(err)
}

fn submit_reason(e: &SubmitError) -> &'static str {
    match e {
        SubmitError::Full(_) => "queue_full",
        SubmitError::Closed => "shutting_down",
        SubmitError::Store(_) => "store_error",
    }
}

/// Splits a body into JSON documents: one value, the elements of one top-level array, or a
/// sequence of values (NDJSON).
pub(crate) fn split_documents(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut count = 0usize;
    loop {
        match stream.next() {
            None => break,
            Some(Ok(v)) => {
                count += 1;
                out.push(v);
            }
            Some(Err(e)) => {
                let which = if count == 0 {
                    "the body".to_string()
                } else {
                    format!("document {}", count + 1)
                };
                return Err(ApiError::bad_request(format!(
                    "malformed JSON in {which} at line {}, column {}: {e}; nothing was stored",
                    e.line(),
                    e.column()
                )));
            }
        }
    }
    if out.len() == 1
        && out[0].is_array()
        && let Some(Value::Array(items)) = out.pop()
    {
        return Ok(items);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_accepts_single_array_and_ndjson() {
        assert_eq!(split_documents(br#"{"a":1}"#).unwrap().len(), 1);
        assert_eq!(split_documents(br#"[{"a":1},{"b":2}]"#).unwrap().len(), 2);
        assert_eq!(
            split_documents(b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n")
                .unwrap()
                .len(),
            3
        );
        assert_eq!(split_documents(b"  \n").unwrap().len(), 0);
    }

    #[test]
    fn split_names_the_malformed_document() {
        let e = split_documents(b"{\"a\":1}\n{\"b\":").unwrap_err();
        assert!(e.message.contains("document 2"), "{}", e.message);
        let e = split_documents(b"{nope}").unwrap_err();
        assert!(
            e.message.contains("the body") && e.message.contains("line 1"),
            "{}",
            e.message
        );
    }
}
