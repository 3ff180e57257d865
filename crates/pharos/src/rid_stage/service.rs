//! The RID stage as the API sees it (`/api/v1/rid/...`, `pharos rid ...`): peers, incidents
//! and messages from the state table, and the analyst's actions.

use std::sync::Arc;

use axum::http::StatusCode;
use pharos_api::ApiError;
use pharos_api::rid::{
    IncidentParams, RidDecision, RidFuture, RidIncident, RidIncidentList, RidMessage, RidPeer,
    RidPeerList, RidSent, RidService, RidTrace,
};
use pharos_model::Kind;
use pharos_rid::state::{IncidentFilter, IncidentRecord, Status};
use pharos_store::MessageStore;

use super::{Core, iid_text};

/// [`RidService`] over the stage.
pub struct Service {
    /// The stage.
    pub core: Arc<Core>,
    /// The message store (DDoS events to trace).
    pub store: Arc<dyn MessageStore>,
}

fn err(code: u16, msg: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        msg,
    )
}

fn incident_view(i: &IncidentRecord) -> RidIncident {
    RidIncident {
        id: i.id,
        incident_id: iid_text(Some(&i.incident_id)),
        origin_peer: i.origin_peer.clone(),
        peers: i.peers.clone(),
        direction: i.direction.as_str().into(),
        msg_type: i.msg_type.clone(),
        status: i.status.as_str().into(),
        sp_path: i.sp_path.clone(),
        created: i.created.to_rfc3339(),
        updated: i.updated.to_rfc3339(),
        reason: i.reason.clone(),
        messages: None,
    }
}

/// The stored DDoS event `event`, or 404 naming how to find one.
async fn ddos_event(
    store: Arc<dyn MessageStore>,
    event: u64,
) -> Result<pharos_model::DdosEvent, ApiError> {
    let stored = blocking(move || {
        store
            .get(event)
            .map_err(|e| ApiError::internal("reading the message store", e))
    })
    .await?;
    match stored.map(|s| s.message.kind) {
        Some(Kind::Ddos(ev)) => Ok(ev),
        _ => Err(ApiError::not_found(format!(
            "message {event} is not a stored DDoS event; find one with GET /api/v1/messages?kind=ddos"
        ))),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("RID state task failed", e))?
}

impl RidService for Service {
    fn peers(&self) -> RidFuture<RidPeerList> {
        let core = self.core.clone();
        Box::pin(async move {
            let peers = core
                .peers
                .iter()
                .map(|p| RidPeer {
                    name: p.peer.name.clone(),
                    url: p.url.clone(),
                    fingerprint: p.peer.fingerprint.to_string(),
                    dns_id: p.peer.dns_id.clone(),
                    accept: p.accept.iter().map(|t| t.as_str().to_string()).collect(),
                    send: p.send.iter().map(|t| t.as_str().to_string()).collect(),
                    region: p.region.as_str().to_string(),
                    auto_approve: p.auto_approve,
                    auto_trace: p.auto_trace,
                    open_incidents: core.state.open_incidents_of(&p.peer.name).unwrap_or(0),
                })
                .collect();
            Ok(RidPeerList {
                name: core.name.clone(),
                peers,
            })
        })
    }

    fn incidents(&self, q: IncidentParams) -> RidFuture<RidIncidentList> {
        let core = self.core.clone();
        Box::pin(async move {
            let status = match q.status.as_deref() {
                None => None,
                Some(s) => Some(Status::parse(s).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "status={s:?}: expected received, pending-approval, approved, sent, relayed, denied, answered or closed"
                    ))
                })?),
            };
            let open = match q.open.as_deref() {
                None => None,
                Some("true" | "1") => Some(true),
                Some("false" | "0") => Some(false),
                Some(o) => {
                    return Err(ApiError::bad_request(format!(
                        "open={o:?}: expected true or false"
                    )));
                }
            };
            let filter = IncidentFilter {
                status,
                open,
                peer: q.peer,
                direction: None,
                limit: Some(q.limit.unwrap_or(100).min(10_000)),
            };
            let list = blocking(move || {
                core.state
                    .list_incidents(&filter)
                    .map_err(|e| ApiError::internal("reading the RID state table", e))
            })
            .await?;
            Ok(RidIncidentList {
                items: list.iter().map(incident_view).collect(),
            })
        })
    }

    fn incident(&self, id: i64) -> RidFuture<RidIncident> {
        let core = self.core.clone();
        Box::pin(async move {
            let (inc, msgs) = blocking(move || {
                let inc = core
                    .state
                    .incident(id)
                    .map_err(|e| ApiError::internal("reading the RID state table", e))?
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "no RID incident {id}; list them with GET /api/v1/rid/incidents"
                        ))
                    })?;
                let msgs = core
                    .state
                    .messages(id)
                    .map_err(|e| ApiError::internal("reading the RID state table", e))?;
                Ok((inc, msgs))
            })
            .await?;
            let mut v = incident_view(&inc);
            v.messages = Some(
                msgs.iter()
                    .map(|m| RidMessage {
                        id: m.id,
                        direction: m.direction.as_str().into(),
                        peer: m.peer.clone(),
                        msg_type: m.msg_type.clone(),
                        http_status: m.http_status,
                        callback_token: m.callback_token.is_some(),
                        at: m.at.to_rfc3339(),
                        body: String::from_utf8_lossy(&m.body).into_owned(),
                    })
                    .collect(),
            );
            Ok(v)
        })
    }

    fn trace(&self, event: u64) -> RidFuture<RidTrace> {
        let (core, store) = (self.core.clone(), self.store.clone());
        Box::pin(async move {
            let stored = blocking(move || {
                store
                    .get(event)
                    .map_err(|e| ApiError::internal("reading the message store", e))
            })
            .await?;
            let Some(Kind::Ddos(ev)) = stored.map(|s| s.message.kind) else {
                return Err(ApiError::not_found(format!(
                    "message {event} is not a stored DDoS event; find one with GET /api/v1/messages?kind=ddos"
                )));
            };
            let asked = core
                .trace_event(event, &ev, true)
                .await
                .map_err(|e| err(502, format!("{e:#}")))?;
            if asked.is_empty() {
                return Err(err(
                    409,
                    format!(
                        "no peer carried event {event}'s traffic in our flow archive (or it was traced already): check [[rid.peer]] exporters, neighbor_as, next_hops"
                    ),
                ));
            }
            Ok(RidTrace { event, asked })
        })
    }

    fn investigate(&self, event: u64, peer: String) -> RidFuture<RidSent> {
        let (core, store) = (self.core.clone(), self.store.clone());
        Box::pin(async move {
            let ev = ddos_event(store, event).await?;
            core.investigate_event(event, &ev, &peer)
                .await
                .map_err(|(code, msg)| err(code, msg))
        })
    }

    fn report(&self, event: u64, peer: String) -> RidFuture<RidSent> {
        let (core, store) = (self.core.clone(), self.store.clone());
        Box::pin(async move {
            let ev = ddos_event(store, event).await?;
            core.report_event(event, &ev, &peer)
                .await
                .map_err(|(code, msg)| err(code, msg))
        })
    }

    fn query(&self, peer: String, incident: Option<String>) -> RidFuture<RidSent> {
        let core = self.core.clone();
        Box::pin(async move {
            core.query_peer(&peer, incident.as_deref())
                .await
                .map_err(|(code, msg)| err(code, msg))
        })
    }

    fn decide(&self, id: i64, approve: bool, by: String) -> RidFuture<RidDecision> {
        let core = self.core.clone();
        Box::pin(async move {
            core.decide(id, approve, &by)
                .await
                .map_err(|(code, msg)| err(code, msg))
        })
    }
}
