//! `/api/v1/rid/...`: the RID peers, incidents and messages, and the analyst's actions (start
//! a trace from a DDoS event, send a peer an InvestigationRequest or a Report of one, send a
//! peer a Query, approve or deny a pending request).
//!
//! Contract: the routes answer from a [`RidService`] the binary puts in the router as an
//! `Extension<RidHandle>` when `[rid] enabled = true`; without one they answer 503 saying how
//! to turn RID on. Reads need `viewer`, actions (`POST`) `analyst`, by the route rule.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query};
use axum::http::StatusCode;

use crate::ApiError;
use crate::auth::Principal;
use crate::error::ErrorBody;
use crate::json::Json;

/// What a [`RidService`] call gives: its answer, or an API error.
pub type RidFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send>>;

/// The RID stage, as the API sees it.
pub trait RidService: Send + Sync + 'static {
    /// The configured peers and their policy.
    fn peers(&self) -> RidFuture<RidPeerList>;
    /// Incidents, newest first.
    fn incidents(&self, q: IncidentParams) -> RidFuture<RidIncidentList>;
    /// One incident with its messages.
    fn incident(&self, id: i64) -> RidFuture<RidIncident>;
    /// Starts a TraceRequest for the stored DDoS event `event` to the peers its traffic entered
    /// through.
    fn trace(&self, event: u64) -> RidFuture<RidTrace>;
    /// Approves (`true`) or denies a request pending an analyst's decision, as `by`.
    fn decide(&self, id: i64, approve: bool, by: String) -> RidFuture<RidDecision>;
    /// Sends `peer` an InvestigationRequest for the stored DDoS event `event`.
    fn investigate(&self, event: u64, peer: String) -> RidFuture<RidSent>;
    /// Sends `peer` a Report of the stored DDoS event `event`.
    fn report(&self, event: u64, peer: String) -> RidFuture<RidSent>;
    /// Sends `peer` a Query about `incident` (`NAME:NUMBER#INSTANCE`), or about the incidents
    /// it shares with us.
    fn query(&self, peer: String, incident: Option<String>) -> RidFuture<RidSent>;
}

/// A message an analyst sent a peer, and the peer's answer.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RidSent {
    /// The peer.
    pub peer: String,
    /// What we sent: `InvestigationRequest`, `Report` or `Query`.
    pub msg_type: String,
    /// The IncidentID it carried (`name:number#instance`).
    pub incident_id: Option<String>,
    /// Our incident in the state table, if the message has one.
    pub incident: Option<i64>,
    /// The answer: a MsgType (`Result`, `Acknowledgement`, `Report`), `empty` or `deferred`.
    pub answer: String,
    /// An Acknowledgement's AuthorizationStatus.
    pub status: Option<String>,
    /// An Acknowledgement's Justification.
    pub justification: Option<String>,
    /// A Result's SourceFound.
    pub source_found: Option<bool>,
    /// The answer's XML, as received.
    pub body: Option<String>,
}

/// Query string of `POST /api/v1/rid/peers/{peer}/query`.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RidQueryParams {
    /// The IncidentID asked about, `NAME:NUMBER` or `NAME:NUMBER#INSTANCE`; without it, the
    /// incidents the peer shares with us.
    pub incident: Option<String>,
}

/// `GET /api/v1/rid/peers`: our RID name and the peers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RidPeerList {
    /// Our RID system's DNS name.
    pub name: String,
    /// The peers.
    pub peers: Vec<RidPeer>,
}

/// One peer and its policy.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RidPeer {
    /// Its name in Pharos.
    pub name: String,
    /// Its RID server.
    pub url: String,
    /// The pin of its certificate.
    pub fingerprint: String,
    /// The DNS-ID its certificate carries.
    pub dns_id: Option<String>,
    /// Message types accepted from it.
    pub accept: Vec<String>,
    /// Message types sent to it.
    pub send: Vec<String>,
    /// PolicyRegion of our messages to it.
    pub region: String,
    /// Whether its requests are acted on without an analyst.
    pub auto_approve: bool,
    /// Whether attacks entering through it are traced without an analyst.
    pub auto_trace: bool,
    /// Open incidents it opened.
    pub open_incidents: u64,
}

/// `GET /api/v1/rid/incidents`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RidIncidentList {
    /// Incidents, newest first.
    pub items: Vec<RidIncident>,
}

/// One incident of the RID state table.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RidIncident {
    /// Our id.
    pub id: i64,
    /// The IODEF IncidentID: `name:number#instance`.
    pub incident_id: String,
    /// The peer whose message opened it, or the first peer we sent to.
    pub origin_peer: String,
    /// Every peer that took part, in order.
    pub peers: Vec<String>,
    /// `in` (a peer opened it) or `out` (we did).
    pub direction: String,
    /// The type of the message that opened it.
    pub msg_type: String,
    /// received, pending-approval, approved, sent, relayed, denied, answered or closed.
    pub status: String,
    /// The SP path, victim side first.
    pub sp_path: Vec<String>,
    /// Created (RFC 3339).
    pub created: String,
    /// Last changed (RFC 3339).
    pub updated: String,
    /// Why it was closed when no message closed it (`expired`: idle for `[rid] incident_ttl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its messages, oldest first (in `GET /api/v1/rid/incidents/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<RidMessage>>,
}

/// One message sent or received.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RidMessage {
    /// Our id.
    pub id: i64,
    /// `in` or `out`.
    pub direction: String,
    /// The peer.
    pub peer: String,
    /// Its MsgType.
    pub msg_type: String,
    /// The HTTP status of the exchange, once known.
    pub http_status: Option<u16>,
    /// Whether it carried or was answered with a RID-Callback-Token (never shown).
    pub callback_token: bool,
    /// When (RFC 3339).
    pub at: String,
    /// The XML exactly as on the wire.
    pub body: String,
}

/// `POST /api/v1/rid/trace/{event}`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RidTrace {
    /// The DDoS event.
    pub event: u64,
    /// The peers sent a TraceRequest.
    pub asked: Vec<String>,
}

/// An analyst's decision and what followed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RidDecision {
    /// The incident.
    pub incident: i64,
    /// Its status now: `denied`, `relayed` or `answered`.
    pub status: String,
    /// The peer the request was relayed to, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The RID stage handle the router carries (`Extension`).
#[derive(Clone)]
pub struct RidHandle(pub Arc<dyn RidService>);

/// Query string of `GET /api/v1/rid/incidents`.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentParams {
    /// Only this status (`received`, `pending-approval`, `approved`, `sent`, `relayed`,
    /// `denied`, `answered`, `closed`).
    pub status: Option<String>,
    /// Only open (`true` or `1`) or finished (`false` or `0`) incidents.
    pub open: Option<String>,
    /// Only incidents this peer took part in.
    pub peer: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

fn service(h: Option<Extension<RidHandle>>) -> Result<Arc<dyn RidService>, ApiError> {
    h.map(|Extension(h)| h.0).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "RID is not enabled: set [rid] enabled = true with its peers (docs/rid.md)",
        )
    })
}

/// The RID peers and their policy.
#[utoipa::path(get, path = "/api/v1/rid/peers", tag = "rid",
    responses(
        (status = 200, description = "The peers", body = RidPeerList),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn peers(h: Option<Extension<RidHandle>>) -> Result<Json<RidPeerList>, ApiError> {
    Ok(Json(service(h)?.peers().await?))
}

/// RID incidents, newest first, with their path and status.
#[utoipa::path(get, path = "/api/v1/rid/incidents", tag = "rid", params(IncidentParams),
    responses(
        (status = 200, description = "The incidents", body = RidIncidentList),
        (status = 400, description = "A parameter is malformed", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn incidents(
    h: Option<Extension<RidHandle>>,
    params: Result<Query<IncidentParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RidIncidentList>, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!("{}; see /api/v1/openapi.json", e.body_text()))
    })?;
    Ok(Json(service(h)?.incidents(p).await?))
}

/// One RID incident with every message sent and received (bodies as XML text).
#[utoipa::path(get, path = "/api/v1/rid/incidents/{id}", tag = "rid",
    params(("id" = i64, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "The incident and its messages", body = RidIncident),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn incident(
    h: Option<Extension<RidHandle>>,
    Path(id): Path<i64>,
) -> Result<Json<RidIncident>, ApiError> {
    Ok(Json(service(h)?.incident(id).await?))
}

/// Starts a TraceRequest for a stored DDoS event to the peers its traffic entered through.
#[utoipa::path(post, path = "/api/v1/rid/trace/{event}", tag = "rid",
    params(("event" = u64, Path, description = "The stored DDoS event's id")),
    responses(
        (status = 200, description = "The peers asked", body = RidTrace),
        (status = 404, description = "No such DDoS event", body = ErrorBody),
        (status = 409, description = "No peer carried its traffic", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn trace(
    h: Option<Extension<RidHandle>>,
    Path(event): Path<u64>,
) -> Result<Json<RidTrace>, ApiError> {
    Ok(Json(service(h)?.trace(event).await?))
}

/// Approves a request waiting for an analyst: it is acted on (relayed or answered).
#[utoipa::path(post, path = "/api/v1/rid/incidents/{id}/approve", tag = "rid",
    params(("id" = i64, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "Approved", body = RidDecision),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "It does not wait for a decision", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn approve(
    h: Option<Extension<RidHandle>>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<i64>,
) -> Result<Json<RidDecision>, ApiError> {
    let by = principal.map_or_else(|| "unknown".to_string(), |Extension(p)| p.name);
    Ok(Json(service(h)?.decide(id, true, by).await?))
}

/// Denies a request waiting for an analyst: the requester gets Acknowledgement Denied.
#[utoipa::path(post, path = "/api/v1/rid/incidents/{id}/deny", tag = "rid",
    params(("id" = i64, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "Denied", body = RidDecision),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "It does not wait for a decision", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn deny(
    h: Option<Extension<RidHandle>>,
    principal: Option<Extension<Principal>>,
    Path(id): Path<i64>,
) -> Result<Json<RidDecision>, ApiError> {
    let by = principal.map_or_else(|| "unknown".to_string(), |Extension(p)| p.name);
    Ok(Json(service(h)?.decide(id, false, by).await?))
}

/// Sends a peer an InvestigationRequest for a stored DDoS event (the peer is believed to host
/// its source); answers with the peer's answer (a Result, or Acknowledgement Pending or Denied).
#[utoipa::path(post, path = "/api/v1/rid/peers/{peer}/investigate/{event}", tag = "rid",
    params(("peer" = String, Path, description = "The peer's name"),
        ("event" = u64, Path, description = "The stored DDoS event's id")),
    responses(
        (status = 200, description = "Sent; the peer's answer", body = RidSent),
        (status = 404, description = "No such peer or DDoS event", body = ErrorBody),
        (status = 409, description = "Not allowed to this peer, or sent already", body = ErrorBody),
        (status = 502, description = "The peer could not be reached", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn investigate(
    h: Option<Extension<RidHandle>>,
    Path((peer, event)): Path<(String, u64)>,
) -> Result<Json<RidSent>, ApiError> {
    Ok(Json(service(h)?.investigate(event, peer).await?))
}

/// Sends a peer a Report of a stored DDoS event (IODEF); answers with the peer's answer.
#[utoipa::path(post, path = "/api/v1/rid/peers/{peer}/report/{event}", tag = "rid",
    params(("peer" = String, Path, description = "The peer's name"),
        ("event" = u64, Path, description = "The stored DDoS event's id")),
    responses(
        (status = 200, description = "Sent; the peer's answer", body = RidSent),
        (status = 404, description = "No such peer or DDoS event", body = ErrorBody),
        (status = 409, description = "Not allowed to this peer", body = ErrorBody),
        (status = 502, description = "The peer could not be reached", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn report(
    h: Option<Extension<RidHandle>>,
    Path((peer, event)): Path<(String, u64)>,
) -> Result<Json<RidSent>, ApiError> {
    Ok(Json(service(h)?.report(event, peer).await?))
}

/// Sends a peer a Query about an incident (or the incidents it shares with us); answers with
/// the peer's answer (a Report, or Acknowledgement Denied).
#[utoipa::path(post, path = "/api/v1/rid/peers/{peer}/query", tag = "rid",
    params(("peer" = String, Path, description = "The peer's name"), RidQueryParams),
    responses(
        (status = 200, description = "Sent; the peer's answer", body = RidSent),
        (status = 400, description = "A parameter is malformed", body = ErrorBody),
        (status = 404, description = "No such peer", body = ErrorBody),
        (status = 409, description = "Not allowed to this peer", body = ErrorBody),
        (status = 502, description = "The peer could not be reached", body = ErrorBody),
        (status = 503, description = "RID is not enabled", body = ErrorBody),
    ))]
pub(crate) async fn query(
    h: Option<Extension<RidHandle>>,
    Path(peer): Path<String>,
    params: Result<Query<RidQueryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RidSent>, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!("{}; see /api/v1/openapi.json", e.body_text()))
    })?;
    Ok(Json(service(h)?.query(peer, p.incident).await?))
}
