//! `GET /api/v1/stream`: the change feed as Server-Sent Events.
//!
//! Contract:
//! - Each event is one change of the store's feed: `id:` its seq, `event:` the change (`created`,
//!   `updated`, `state`), `data:` the message as `GET /api/v1/messages/{id}` renders it (as stored
//!   when read, so an early change may show a later update).
//! - With `Last-Event-ID` (header, or `?last_event_id=`), the changes after that seq are replayed
//!   from the store, then the stream follows live; both come from the store's feed read in seq
//!   order, so there is no gap and no duplicate. Without it (or with an id beyond the feed's end)
//!   the stream starts at the feed's end.
//!   Changes of messages deleted by retention meanwhile are gone; the stream says so with an
//!   `expired` event (`id:` the seq before the next change, `data:` `{"after": A, "upto": B,
//!   "count": N}`: the N changes in (A, B] were deleted before they could be sent), counted in
//!   `pharos_api_stream_expired_total`.
//! - A comment line is sent every 15 s (configurable) when there is nothing else to send.
//! - At most `[emit] max_streams` streams at once; beyond, 503 with `Retry-After`.
//! - [`crate::EmitHandle::close`] ends every open stream (at shutdown).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use pharos_emit::{Change, Filter};
use pharos_model::Severity;
use tokio::sync::mpsc;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// Feed entries read at once.
const READ_BATCH: usize = 500;

/// Query string of `GET /api/v1/stream`; every parameter optional.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Comma-separated kind names.
    pub kind: Option<String>,
    /// Minimum severity: info, low, middle, high, critical (`severity` is the same, as
    /// `GET /api/v1/messages` names it).
    #[serde(alias = "severity")]
    pub min_severity: Option<String>,
    /// Comma-separated exact NSF names.
    pub nsf: Option<String>,
    /// Comma-separated addresses or prefixes (source or destination within).
    pub addr: Option<String>,
    /// Comma-separated changes: created, updated, state (default all).
    pub change: Option<String>,
    /// Resume after this event id (as the `Last-Event-ID` header does).
    pub last_event_id: Option<String>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl StreamParams {
    /// The filter these parameters describe, naming the first bad parameter.
    pub fn to_filter(&self) -> Result<Filter, ApiError> {
        let mut f = Filter {
            kinds: list(&self.kind),
            nsf: list(&self.nsf),
            ..Default::default()
        };
        if let Some(s) = &self.min_severity {
            f.min_severity = Some(Severity::parse(s.trim()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "min_severity={s:?}: expected info, low, middle, high or critical"
                ))
            })?);
        }
        for a in list(&self.addr) {
            f.prefixes.push(crate::messages::parse_net("addr", &a)?);
        }
        for c in list(&self.change) {
            f.changes.push(Change::from_name(&c).ok_or_else(|| {
                ApiError::bad_request(format!("change={c:?}: expected created, updated or state"))
            })?);
        }
        f.validate()
            .map_err(|e| ApiError::bad_request(format!("{}: {}", e.key, e.message)))?;
        Ok(f)
    }
}

fn parse_seq(what: &str, s: &str) -> Result<u64, ApiError> {
    s.trim().parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "{what}={s:?}: expected the id of an event this stream sent (a number)"
        ))
    })
}

/// The change feed as Server-Sent Events.
///
/// `id` = feed seq, `event` = created, updated or state (or expired), `data` = the message as
/// `GET /api/v1/messages/{id}` renders it. Resumes after Last-Event-ID (header or parameter)
/// with no gap and no duplicate; keep-alive comments every 15 s.
#[utoipa::path(get, path = "/api/v1/stream", tag = "emission",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "The event stream", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A parameter is malformed or unknown", body = ErrorBody),
        (status = 503, description = "Emission is not running, too many streams are open, or the server is shutting down", body = ErrorBody),
    ))]
pub(crate) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::bad_request(format!("{}; see /api/v1/openapi.json", e.body_text()))
    })?;
    let emit = state.emit.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "emission is not running in this server",
        )
    })?;
    let filter = params.to_filter()?;
    let header = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?").to_string());
    let resume = match (header, &params.last_event_id) {
        (Some(h), _) => Some(parse_seq("Last-Event-ID", &h)?),
        (None, Some(q)) => Some(parse_seq("last_event_id", q)?),
        (None, None) => None,
    };
    let permit = emit.streams.clone().try_acquire_owned().map_err(|_| {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many streams open ({}); retry later or raise [emit] max_streams",
                emit.max_streams
            ),
        );
        e.retry_after = Some(5);
        e
    })?;
    let store = state.store.clone();
    let feed = emit.dispatcher.feed();
    let last = store
        .last_change()
        .map_err(|e| ApiError::internal("message store failed", e))?;
    // An id beyond the feed's end is not one of this store's (e.g. a database restored from an
    // older backup): follow from the end rather than skip what comes next.
    let start = resume.unwrap_or(last).min(last);
    let mut closing = emit.closing.subscribe();
    if *closing.borrow_and_update() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    }
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    metrics::gauge!("pharos_api_streams").increment(1.0);
    tokio::spawn(async move {
        let _permit = permit;
        tokio::select! {
            _ = follow(feed, filter, start, tx) => {}
            _ = closing.changed() => {}
        }
        metrics::gauge!("pharos_api_streams").decrement(1.0);
    });
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(emit.keep_alive)))
}

/// Sends the matching feed entries after `pos` to `tx`, then follows the feed, until the client
/// goes away.
async fn follow(
    feed: std::sync::Arc<pharos_emit::feed::Feed>,
    filter: Filter,
    mut pos: u64,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let store = feed.store().clone();
    let mut watch = store.watch_changes();
    loop {
        watch.borrow_and_update();
        let Ok(last) = store.last_change() else {
            return;
        };
        if pos < last {
            let f = feed.clone();
            let after = pos;
            let entries = match tokio::task::spawn_blocking(move || f.read(after, READ_BATCH)).await
            {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => {
                    tracing::warn!("stream: message store failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => return,
            };
            if entries.is_empty() {
                if !send_expired(&tx, pos, last).await {
                    return;
                }
                pos = last;
                continue;
            }
            for e in entries {
                if !send_expired(&tx, pos, e.seq - 1).await {
                    return;
                }
                pos = e.seq;
                if !filter.matches_entry(&e) {
                    continue;
                }
                // Rendered once for every stream that sends this entry.
                let data = e
                    .rendered
                    .get_or_init(|| render_data(&crate::render_stored(&e.stored)));
                let ev = Event::default()
                    .id(e.seq.to_string())
                    .event(e.change.as_str())
                    .data(data);
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
                metrics::counter!("pharos_api_stream_events_total").increment(1);
            }
            continue;
        }
        tokio::select! {
            r = watch.changed() => if r.is_err() { return },
            _ = tx.closed() => return,
        }
    }
}

/// Tells the client that the changes in (`after`, `upto`] were deleted before they could be sent
/// (nothing when there are none); false when the client went away.
async fn send_expired(tx: &mpsc::Sender<Result<Event, Infallible>>, after: u64, upto: u64) -> bool {
    if upto <= after {
        return true;
    }
    let count = upto - after;
    metrics::counter!("pharos_api_stream_expired_total").increment(count);
    let ev = Event::default()
        .id(upto.to_string())
        .event("expired")
        .data(render_data(
            &serde_json::json!({"after": after, "upto": upto, "count": count}),
        ));
    tx.send(Ok(ev)).await.is_ok()
}

/// The data of one SSE event: compact JSON with unsafe characters escaped ([`crate::json`]).
fn render_data(v: &serde_json::Value) -> String {
    crate::json::to_string(v).unwrap_or_else(|_| v.to_string())
}
