//! The RID stage (`[rid]`, docs/rid.md): Pharos as a RID peer (RFC 6545/6546).
//!
//! It runs the RFC 6546 server with [`handler::Handler`] and a client, and the trace workflow:
//! - our DDoS events (read from the message store's change feed, as every other consumer of
//!   stored events does) start a TraceRequest to the peer(s) the attack's flows entered through,
//!   found in our flow archive;
//! - a received TraceRequest is checked against our archive and relayed to the peer the traffic
//!   came from, or answered with a Result (the `[detect_hook]` command run as mitigation) when it
//!   came from our own customers or did not cross us; Results travel back along the path.
//!
//! Contract: every message we send carries an enveloped signature with our key (a TraceRequest
//! we originate also a detached one over its example records, forwarded unchanged by relays);
//! every message we receive is verified against the sender's certificate (its configured
//! `signing_cert`, else the TLS certificate it presented) and refused when the signature is bad.
//! Every incident and message goes to the state table; RID activity is also stored as I2NSF
//! generic logs (`nsf-name` `pharos-rid`) so subscriptions see it.

mod archive;
mod build;
mod handler;
mod outgoing;
mod service;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use pharos_detect::hook::DetectHookConfig;
use pharos_model::{DdosEvent, Kind, Message, Severity};
use pharos_rid::config::{PeerPolicy, RidConfig};
use pharos_rid::dsig::{self, SigningKey};
use pharos_rid::state::{NewMessage, StateTable, Status};
use pharos_rid::transport::{Answer, Bytes, CallbackToken, RidClient, RidServer};
use pharos_rid::{IncidentId, Limits, MsgType, Rid};
use pharos_store::MessageStore;
use pharos_store::writer::StoreWriter;

use crate::shutdown::Topology;

/// Registers the descriptions of the stage's metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "pharos_rid_messages_total",
        "RID messages by peer, message type, direction (in, out) and outcome"
    );
}

fn count(peer: &str, t: &str, direction: &'static str, outcome: &'static str) {
    metrics::counter!("pharos_rid_messages_total", "peer" => peer.to_string(),
        "msg_type" => t.to_string(), "direction" => direction, "outcome" => outcome)
    .increment(1);
}

/// What the stage shares between the server's handler, the client side and the feed.
pub struct Core {
    name: String,
    contact: String,
    peers: Vec<PeerPolicy>,
    /// Configured signing certificates (DER), by peer name.
    signing: HashMap<String, Vec<u8>>,
    /// TLS certificates peers presented (DER), by peer name, as last seen.
    seen: Mutex<HashMap<String, Vec<u8>>>,
    key: SigningKey,
    cert_der: Vec<u8>,
    state: Arc<StateTable>,
    client: RidClient,
    archive: Option<PathBuf>,
    hook: DetectHookConfig,
    writer: StoreWriter,
    limits: Limits,
    lookback: Duration,
    examples: usize,
    incident_ttl: Duration,
}

/// How a signature check went.
#[derive(Debug, Clone, PartialEq)]
enum Verified {
    /// Verified.
    Yes,
    /// No certificate to check it with (recorded as unverified).
    Unknown,
    /// Absent (an unsigned message, e.g. a bare Acknowledgement).
    Absent,
    /// Does not verify.
    Bad(String),
}

impl Core {
    fn peer(&self, name: &str) -> Option<&PeerPolicy> {
        self.peers.iter().find(|p| p.peer.name == name)
    }

    fn peer_by_dns(&self, dns: &str) -> Option<&PeerPolicy> {
        self.peers.iter().find(|p| {
            p.peer
                .dns_id
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(dns))
        })
    }

    fn dns_of<'a>(&self, p: &'a PeerPolicy) -> &'a str {
        p.peer.dns_id.as_deref().unwrap_or(&p.peer.name)
    }

    /// The certificate `peer`'s signatures are checked with.
    fn cert_of(&self, peer: &str) -> Option<Vec<u8>> {
        if let Some(c) = self.signing.get(peer) {
            return Some(c.clone());
        }
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .cloned()
    }

    fn saw_certificate(&self, peer: &str, der: &[u8]) {
        if !der.is_empty() {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(peer.to_string(), der.to_vec());
        }
    }

    /// Checks the enveloped signature of `body` from `peer`, and the detached one against the
    /// originator (the first hop of the path) when we know its certificate.
    fn verify(&self, peer: &str, rid: &Rid, body: &[u8]) -> (Verified, Verified) {
        let has_schema = rid
            .policy
            .as_ref()
            .and_then(|p| p.report_schema.as_ref())
            .is_some_and(|s| !s.signatures.is_empty());
        if !has_schema {
            return (Verified::Absent, Verified::Absent);
        }
        let env = match self.cert_of(peer) {
            None => Verified::Unknown,
            Some(c) => match dsig::verify_enveloped(body, &c, &self.limits) {
                Ok(()) => Verified::Yes,
                Err(e) => Verified::Bad(e.to_string()),
            },
        };
        let origin = rid
            .iodef()
            .and_then(|d| d.incidents.first())
            .and_then(|i| {
                i.sp_hops()
                    .first()
                    .map(|h| h.node.names.first().map(|n| n.text.clone()))
            })
            .flatten();
        let has_detached = rid
            .policy
            .as_ref()
            .and_then(|p| p.report_schema.as_ref())
            .is_some_and(|s| s.signatures.len() > 1);
        let det = if !has_detached {
            Verified::Absent
        } else {
            // The originator: the first hop of the path, or (an InvestigationRequest has no
            // path) the sender.
            let cert = match origin.as_deref() {
                Some(o) => self.peer_by_dns(o).and_then(|p| self.cert_of(&p.peer.name)),
                None => self.cert_of(peer),
            };
            match cert {
                None => Verified::Unknown,
                Some(c) => match dsig::verify_detached(body, &c, &self.limits) {
                    Ok(_) => Verified::Yes,
                    Err(e) => Verified::Bad(e.to_string()),
                },
            }
        };
        (env, det)
    }

    /// Signs `rid` with our enveloped signature; gives the bytes and the message as parsed back
    /// (what goes on the wire).
    fn sign(&self, rid: &Rid) -> anyhow::Result<(String, Rid)> {
        let body = dsig::sign_enveloped_rid(rid, &self.key, &self.cert_der)
            .context("signing a RID message")?;
        let back = Rid::parse(body.as_bytes(), &self.limits).context("reading a signed message")?;
        Ok((body, back))
    }

    /// Records a RID activity as an I2NSF generic log in the message store.
    async fn event(&self, severity: Severity, peer: &str, text: String) {
        tracing::info!(peer, "RID: {text}");
        let mut m = Message::new(
            "pharos-rid",
            Kind::GenericLog(pharos_model::GenericLog {
                format: Some("rid".into()),
                reason: None,
                app_name: Some("rid".into()),
            }),
        );
        m.common.message = Some(format!("RID: {text}"));
        m.common.severity = severity;
        m.common.source = Some(format!("rid:{peer}"));
        if let Err(e) = self.writer.submit_raised(vec![m]).await {
            tracing::warn!(error = %e, "RID: the activity could not be stored");
        }
    }

    /// Sends `body` (signed `rid`) to `peer`, records it and its answer, and processes an
    /// inline answer as a received message.
    async fn send(
        self: &Arc<Self>,
        peer: &PeerPolicy,
        rid: &Rid,
        body: String,
        token: Option<&CallbackToken>,
    ) -> anyhow::Result<Answer> {
        let t = rid
            .msg_type()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let name = peer.peer.name.clone();
        if !rid.msg_type().is_some_and(|m| peer.send.contains(m)) {
            count(&name, &t, "out", "refused_by_policy");
            anyhow::bail!("[[rid.peer]] {name}: send does not list {t}; not sent");
        }
        let st = self.state.clone();
        let (rid2, body2, tok) = (
            rid.clone(),
            body.clone(),
            token.map(|t| t.as_str().to_string()),
        );
        let n2 = name.clone();
        let rec = tokio::task::spawn_blocking(move || {
            st.record_outgoing(NewMessage {
                peer: &n2,
                rid: &rid2,
                body: body2.as_bytes(),
                callback_token: tok.as_deref(),
                http_status: None,
            })
        })
        .await??;
        let answer = self
            .client
            .send_bytes(&name, &peer.url, Bytes::from(body), token)
            .await;
        let (status, tok) = match &answer {
            Ok(Answer::Deferred(t)) => (202, Some(t.as_str().to_string())),
            Ok(_) => (200, None),
            Err(e) => (e.status().unwrap_or(0), None),
        };
        let _ = self
            .state
            .set_message_result(rec.message, status, tok.as_deref());
        let answer = match answer {
            Ok(a) => {
                count(&name, &t, "out", "sent");
                a
            }
            Err(e) => {
                count(&name, &t, "out", "failed");
                self.event(
                    Severity::Middle,
                    &name,
                    format!("{t} to {name} failed: {e}"),
                )
                .await;
                return Err(e.into());
            }
        };
        if let Answer::Inline {
            msg,
            body,
            peer_certificate,
        } = &answer
        {
            self.saw_certificate(&name, peer_certificate);
            Box::pin(self.received_answer(peer, msg, body)).await;
        }
        Ok(answer)
    }

    /// An inline answer (Acknowledgement, Result, Report) from `peer`.
    async fn received_answer(self: &Arc<Self>, peer: &PeerPolicy, msg: &Rid, body: &[u8]) {
        let name = &peer.peer.name;
        let t = msg
            .msg_type()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let (env, _) = self.verify(name, msg, body);
        let rec = self.state.record_incoming(NewMessage {
            peer: name,
            rid: msg,
            body,
            callback_token: None,
            http_status: Some(200),
        });
        if let Verified::Bad(why) = &env {
            count(name, &t, "in", "bad_signature");
            self.event(
                Severity::High,
                name,
                format!("{t} answered by {name} refused: its signature does not verify ({why})"),
            )
            .await;
            return;
        }
        count(name, &t, "in", "accepted");
        let incident = rec.ok().and_then(|r| r.incident);
        match msg.msg_type() {
            Some(MsgType::Result) => self.on_result(peer, msg, incident).await,
            Some(MsgType::Acknowledgement) => {
                let status = msg
                    .request_status
                    .as_ref()
                    .map(|s| s.authorization.as_str().to_string())
                    .unwrap_or_default();
                if status == "Denied"
                    && let Some(i) = incident
                {
                    let _ = self.state.set_status(i, Status::Denied);
                }
                self.event(
                    Severity::Info,
                    name,
                    format!(
                        "Acknowledgement {status} from {name} for incident {}",
                        iid_text(msg.incident_id())
                    ),
                )
                .await;
            }
            Some(MsgType::Report) => {
                self.event(
                    Severity::Info,
                    name,
                    format!(
                        "Report from {name} for incident {}: {}",
                        iid_text(msg.incident_id()),
                        outgoing::summary(msg)
                    ),
                )
                .await;
            }
            _ => {}
        }
    }

    /// A Result (inline or by callback) from `peer` for our incident `incident`: relayed back to
    /// whoever asked us, or the end of our own trace.
    async fn on_result(self: &Arc<Self>, peer: &PeerPolicy, msg: &Rid, incident: Option<i64>) {
        let name = &peer.peer.name;
        let found = msg.incident_source.as_ref().is_some_and(|s| s.source_found);
        let sources: Vec<String> = msg
            .incident_source
            .iter()
            .flat_map(|s| &s.nodes)
            .flat_map(|n| &n.addresses)
            .map(|a| a.value.clone())
            .collect();
        let Some(inc_id) = incident else {
            self.event(
                Severity::Middle,
                name,
                format!("Result from {name} for an unknown incident"),
            )
            .await;
            return;
        };
        let Ok(Some(inc)) = self.state.incident(inc_id) else {
            return;
        };
        let iid = iid_text(Some(&inc.incident_id));
        if inc.direction == pharos_rid::state::Direction::In && inc.origin_peer != *name {
            // We relayed this request: the Result goes back to who asked us.
            let Some(back) = self.peer(&inc.origin_peer).cloned() else {
                return;
            };
            let token = self
                .state
                .messages(inc_id)
                .unwrap_or_default()
                .into_iter()
                .find(|m| {
                    m.direction == pharos_rid::state::Direction::In
                        && m.peer == inc.origin_peer
                        && m.callback_token.is_some()
                })
                .and_then(|m| m.callback_token)
                .and_then(|t| CallbackToken::parse(&t).ok());
            let mut fwd = msg.clone();
            dsig::remove_enveloped(&mut fwd);
            if let Some(p) = fwd.policy.as_mut() {
                p.node = pharos_rid::Node::named(self.dns_of(&back));
                p.regions = vec![back.region.clone()];
            }
            let sent = match self.sign(&fwd) {
                Ok((body, signed)) => self.send(&back, &signed, body, token.as_ref()).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(_) => {
                    let _ = self.state.set_status(inc_id, Status::Answered);
                    self.event(
                        Severity::Info,
                        name,
                        format!(
                            "Result for incident {iid} (source found: {found}) relayed from {name} back to {}",
                            back.peer.name
                        ),
                    )
                    .await;
                }
                Err(e) => {
                    self.event(
                        Severity::Middle,
                        &back.peer.name,
                        format!("relaying the Result for incident {iid} failed: {e:#}"),
                    )
                    .await
                }
            }
        } else {
            let _ = self.state.set_status(inc_id, Status::Closed);
            self.event(
                if found { Severity::Middle } else { Severity::Low },
                name,
                format!(
                    "trace of incident {iid} finished: Result from {name}, source found: {found}{}{}",
                    if sources.is_empty() { "" } else { ", sources " },
                    sources.join(", ")
                ),
            )
            .await;
        }
    }

    /// Looks for a DDoS attack in our archive (off the async threads).
    async fn look(&self, w: archive::Wanted) -> Result<archive::Crossing, String> {
        let Some(root) = self.archive.clone() else {
            return Ok(archive::Crossing::default());
        };
        let n = self.examples;
        tokio::task::spawn_blocking(move || archive::look(&root, &w, n))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The peers whose recognised entry points carried `c`'s flows, besides `except`, that we
    /// may send `t` to.
    fn entry_peers(&self, c: &archive::Crossing, except: Option<&str>) -> Vec<PeerPolicy> {
        self.peers
            .iter()
            .filter(|p| Some(p.peer.name.as_str()) != except)
            .filter(|p| p.send.contains(&MsgType::TraceRequest))
            .filter(|p| {
                c.entries
                    .keys()
                    .any(|&(exp, inif, asn, nh)| p.carried(exp, inif, asn, nh))
            })
            .cloned()
            .collect()
    }

    /// Starts a TraceRequest for our DDoS event `ev` (store id `sid`) to the peers it entered
    /// through (`only`: just that one; `analyst`: ignore `auto_trace`). Gives the peers asked;
    /// none when the archive shows no entry through a peer.
    pub async fn trace_event(
        self: &Arc<Self>,
        sid: u64,
        ev: &DdosEvent,
        analyst: bool,
    ) -> anyhow::Result<Vec<String>> {
        let now = pharos_model::clock::now_ms();
        let start = u64::try_from(ev.start_time.timestamp_millis()).unwrap_or(0);
        let w = archive::Wanted {
            victims: ev.attack_dst_ip.clone(),
            proto: ev.attack_type.and_then(pharos_rid::ip_protocol_of),
            src_ports: ev.attack_src_port.clone(),
            from_ms: start.saturating_sub(self.lookback.as_millis() as u64),
            to_ms: now + 60_000,
            records: Vec::new(),
            tolerance_ms: 0,
        };
        let crossing = self.look(w.clone()).await.map_err(anyhow::Error::msg)?;
        tracing::debug!(attack = sid, flows = crossing.flows, entries = ?crossing.entries.keys().collect::<Vec<_>>(),
            filter = ?archive::filter_text(&w), "RID: the attack's flows in our archive");
        let peers: Vec<PeerPolicy> = self
            .entry_peers(&crossing, None)
            .into_iter()
            .filter(|p| analyst || p.auto_trace)
            .collect();
        let mut asked = Vec::new();
        for (n, peer) in peers.iter().enumerate() {
            let iid = IncidentId {
                instance: Some((n + 1).to_string()),
                ..IncidentId::new(&self.name, format!("pharos-ddos-{sid}"))
            };
            if self.state.incident_by_incident_id(&iid)?.is_some() {
                continue;
            }
            let (doc, ids) =
                build::trace_document(ev, &iid, &self.name, &self.contact, &crossing.examples);
            let rid = Rid::new(build::policy(
                MsgType::TraceRequest,
                self.dns_of(peer),
                &iid,
                peer,
                Some(doc),
            ));
            let rid = if ids.is_empty() {
                rid
            } else {
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                let s = dsig::sign_detached_rid(&rid, &refs, &self.key, &self.cert_der)?;
                Rid::parse(s.as_bytes(), &self.limits)?
            };
            let (body, signed) = self.sign(&rid)?;
            let answer = self.send(peer, &signed, body, None).await;
            let how = match &answer {
                Ok(Answer::Deferred(_)) => "deferred (202)".to_string(),
                Ok(Answer::Inline { msg, .. }) => format!(
                    "answered with {}",
                    msg.msg_type().map(|m| m.as_str()).unwrap_or("?")
                ),
                Ok(Answer::Empty) => "accepted".into(),
                Err(e) => format!("failed: {e:#}"),
            };
            self.event(
                Severity::Info,
                &peer.peer.name,
                format!(
                    "TraceRequest for incident {} (attack {sid}) sent to {}: {how}",
                    iid_text(Some(&iid)),
                    peer.peer.name
                ),
            )
            .await;
            if answer.is_ok() {
                asked.push(peer.peer.name.clone());
            }
        }
        Ok(asked)
    }
}

/// What to do with an approved request.
pub(crate) enum Decision {
    /// Refuse it with this Justification.
    Deny(pharos_rid::Justification),
    /// Relay it (unsigned; ourselves appended to the path) to this peer.
    Relay(Box<PeerPolicy>, Box<Rid>),
    /// Answer it with this signed Result.
    Answer(Box<Rid>),
}

impl Core {
    /// Checks a request from `peer` against our archive: relay it to the peer its traffic
    /// entered through, or answer with a Result (the mitigation hook run when the source is
    /// ours).
    async fn investigate(&self, peer: &PeerPolicy, req: &Rid, body: &[u8]) -> Decision {
        use pharos_rid::{Action, Justification};
        let iid = iid_text(req.incident_id());
        let (Some(doc), Some(iid_v)) = (req.iodef().cloned(), req.incident_id().cloned()) else {
            return Decision::Deny(Justification::UnrecognizedFormat);
        };
        let Some(incident) = doc.incidents.first() else {
            return Decision::Deny(Justification::UnrecognizedFormat);
        };
        let Ok(ev) = pharos_rid::incident_to_ddos(incident) else {
            return Decision::Deny(Justification::UnrecognizedFormat);
        };
        let start = u64::try_from(ev.start_time.timestamp_millis()).unwrap_or(0);
        let records = archive::examples_of(incident);
        let lookback = self.lookback.as_millis() as u64;
        let (from_ms, to_ms) = if records.is_empty() {
            (
                start.saturating_sub(lookback),
                pharos_model::clock::now_ms() + 60_000,
            )
        } else {
            (
                records
                    .iter()
                    .map(|r| r.start_ms)
                    .min()
                    .unwrap_or(0)
                    .saturating_sub(lookback),
                records
                    .iter()
                    .map(|r| r.start_ms)
                    .max()
                    .unwrap_or(0)
                    .saturating_add(lookback),
            )
        };
        let n_records = records.len();
        let w = archive::Wanted {
            victims: ev.attack_dst_ip.clone(),
            proto: ev
                .attack_type
                .and_then(pharos_rid::ip_protocol_of)
                .or_else(|| {
                    incident
                        .systems(&pharos_rid::SystemCategory::Target)
                        .iter()
                        .flat_map(|s| &s.services)
                        .map(|s| s.ip_protocol)
                        .next()
                }),
            src_ports: ev.attack_src_port.clone(),
            from_ms,
            to_ms,
            records,
            tolerance_ms: lookback,
        };
        let crossing = match self.look(w).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "RID: the archive could not be searched");
                archive::Crossing::default()
            }
        };
        let name = &peer.peer.name;
        if req.msg_type() == Some(&MsgType::TraceRequest)
            && let Some(next) = self.entry_peers(&crossing, Some(name)).into_iter().next()
        {
            // Relay: ourselves appended to the path, the detached signature forwarded as is.
            let mut fwd = req.clone();
            dsig::remove_enveloped(&mut fwd);
            if let Some(i) = fwd.iodef_mut().and_then(|d| d.incidents.first_mut()) {
                i.append_sp_hop(build::our_hop(&self.name));
            }
            if let Some(p) = fwd.policy.as_mut() {
                p.node = pharos_rid::Node::named(self.dns_of(&next));
                p.regions = vec![next.region.clone()];
            }
            return Decision::Relay(Box::new(next), Box::new(fwd));
        }
        // The source is ours (customers), or the traffic did not cross us: a Result.
        let found = crossing.flows > 0;
        let sources: Vec<String> = crossing.sources.iter().cloned().collect();
        let compared = if n_records == 0 {
            String::new()
        } else {
            format!(
                " ({} of {n_records} example records found)",
                crossing.records_matched
            )
        };
        let mut actions = vec![build::history_item(
            Action::Investigate,
            if found {
                format!(
                    "{} matching flows found in {}'s archive{compared}, entering from customer networks {}",
                    crossing.flows,
                    self.name,
                    sources.join(", ")
                )
            } else {
                format!("no matching traffic in {}'s archive{compared}", self.name)
            },
            &self.name,
        )];
        if found {
            let phase = if req.msg_type() == Some(&MsgType::InvestigationRequest) {
                "rid-investigation"
            } else {
                "rid-trace"
            };
            let outcome = handler::run_hook(&self.hook, body, &iid, phase).await;
            actions.push(build::history_item(
                Action::RateLimitNetwork,
                format!("detect_hook: {outcome}"),
                &self.name,
            ));
        }
        let result = build::result(
            &iid_v,
            self.dns_of(peer),
            &self.name,
            peer,
            doc,
            found,
            &sources,
            actions,
        );
        match self.sign(&result) {
            Ok((_, s)) => {
                self.event(
                    if found {
                        Severity::Middle
                    } else {
                        Severity::Info
                    },
                    name,
                    format!(
                        "Result for {iid} to {name}: source found: {found}{}",
                        if found {
                            format!(" ({})", sources.join(", "))
                        } else {
                            String::new()
                        }
                    ),
                )
                .await;
                Decision::Answer(Box::new(s))
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "RID: signing a Result failed");
                Decision::Deny(Justification::CannotProcess)
            }
        }
    }

    /// Relays `fwd` (unsigned) to `next`, signed.
    async fn relay(self: &Arc<Self>, next: Box<PeerPolicy>, fwd: Box<Rid>) {
        let iid = iid_text(fwd.incident_id());
        let sent = match self.sign(&fwd) {
            Ok((body, signed)) => self.send(&next, &signed, body, None).await,
            Err(e) => Err(e),
        };
        let text = match &sent {
            Ok(_) => format!(
                "TraceRequest {iid} relayed to {} (traffic entered from it)",
                next.peer.name
            ),
            Err(e) => format!(
                "relaying TraceRequest {iid} to {} failed: {e:#}",
                next.peer.name
            ),
        };
        self.event(Severity::Info, &next.peer.name, text).await;
    }

    /// Signs (when it can carry a signature) and sends an Acknowledgement to `peer`.
    async fn send_ack(
        self: &Arc<Self>,
        peer: &PeerPolicy,
        req: &Rid,
        status: pharos_rid::AuthorizationStatus,
        why: Option<pharos_rid::Justification>,
    ) -> anyhow::Result<()> {
        let ack = build::acknowledgement(
            req.incident_id(),
            self.dns_of(peer),
            peer,
            req.iodef().cloned(),
            status,
            why,
        );
        let (body, signed) = self.sign(&ack)?;
        self.send(peer, &signed, body, None).await?;
        Ok(())
    }

    /// An analyst's decision on incident `id`, pending approval: approved, the request is
    /// investigated and relayed or answered by a new message; denied, the requester gets
    /// Acknowledgement Denied.
    pub(crate) async fn decide(
        self: &Arc<Self>,
        id: i64,
        approve: bool,
        by: &str,
    ) -> Result<pharos_api::rid::RidDecision, (u16, String)> {
        let inc = self
            .state
            .incident(id)
            .map_err(|e| (500, e.to_string()))?
            .ok_or((
                404,
                format!("no RID incident {id}; list them with pharos rid incidents"),
            ))?;
        if inc.status != Status::PendingApproval {
            return Err((
                409,
                format!(
                    "incident {id} is {}, not pending-approval: nothing to decide",
                    inc.status.as_str()
                ),
            ));
        }
        let Some(peer) = self.peer(&inc.origin_peer).cloned() else {
            return Err((
                409,
                format!("peer {} is no longer configured", inc.origin_peer),
            ));
        };
        let req = self
            .state
            .messages(id)
            .map_err(|e| (500, e.to_string()))?
            .into_iter()
            .find(|m| {
                m.direction == pharos_rid::state::Direction::In
                    && (m.msg_type == "TraceRequest" || m.msg_type == "InvestigationRequest")
            })
            .ok_or((409, format!("incident {id} holds no request")))?;
        let rid = Rid::parse(&req.body, &self.limits).map_err(|e| (500, e.to_string()))?;
        let iid = iid_text(Some(&inc.incident_id));
        if !approve {
            let _ = self.state.set_status(id, Status::Denied);
            self.event(
                Severity::Info,
                &peer.peer.name,
                format!("{iid} from {} denied by {by}", peer.peer.name),
            )
            .await;
            self.send_ack(
                &peer,
                &rid,
                pharos_rid::AuthorizationStatus::Denied,
                Some(pharos_rid::Justification::Other),
            )
            .await
            .map_err(|e| (502, format!("{e:#}")))?;
            return Ok(pharos_api::rid::RidDecision {
                incident: id,
                status: "denied".into(),
                to: None,
            });
        }
        let _ = self.state.set_status(id, Status::Approved);
        self.event(
            Severity::Info,
            &peer.peer.name,
            format!("{iid} from {} approved by {by}", peer.peer.name),
        )
        .await;
        match self.investigate(&peer, &rid, &req.body).await {
            Decision::Deny(why) => {
                let _ = self.state.set_status(id, Status::Denied);
                self.send_ack(
                    &peer,
                    &rid,
                    pharos_rid::AuthorizationStatus::Denied,
                    Some(why),
                )
                .await
                .map_err(|e| (502, format!("{e:#}")))?;
                Ok(pharos_api::rid::RidDecision {
                    incident: id,
                    status: "denied".into(),
                    to: None,
                })
            }
            Decision::Relay(next, fwd) => {
                let _ = self.state.set_status(id, Status::Relayed);
                let to = next.peer.name.clone();
                let core = self.clone();
                tokio::spawn(async move { core.relay(next, fwd).await });
                Ok(pharos_api::rid::RidDecision {
                    incident: id,
                    status: "relayed".into(),
                    to: Some(to),
                })
            }
            Decision::Answer(result) => {
                let body = result.emit();
                self.send(&peer, &result, body, None)
                    .await
                    .map_err(|e| (502, format!("{e:#}")))?;
                let _ = self.state.set_status(id, Status::Answered);
                Ok(pharos_api::rid::RidDecision {
                    incident: id,
                    status: "answered".into(),
                    to: None,
                })
            }
        }
    }
}

fn iid_text(iid: Option<&IncidentId>) -> String {
    match iid {
        Some(i) => format!(
            "{}:{}{}",
            i.name,
            i.id,
            i.instance
                .as_deref()
                .map(|x| format!("#{x}"))
                .unwrap_or_default()
        ),
        None => "(none)".into(),
    }
}

/// Starts the RID stage when `[rid] enabled = true`: the server, the client and the feed of
/// DDoS events.
pub async fn start(
    cfg: &RidConfig,
    hook: &DetectHookConfig,
    flows_enabled: bool,
    data_dir: &Path,
    store: Arc<dyn MessageStore>,
    writer: StoreWriter,
    topology: &mut Topology,
) -> anyhow::Result<Option<pharos_api::rid::RidHandle>> {
    if !cfg.enabled {
        return Ok(None);
    }
    let fail = |e: pharos_model::config::ConfigError| anyhow::anyhow!("config error: {e}");
    let peers = cfg.peers().map_err(fail)?;
    let mut signing = HashMap::new();
    for p in &peers {
        if let Some(path) = &p.signing_cert {
            let pem = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "config error: [[rid.peer]] {} signing_cert = {:?}: cannot read it; give a PEM certificate file",
                    p.peer.name,
                    path.display()
                )
            })?;
            let der = dsig::certificates_from_pem(&pem)
                .ok()
                .and_then(|c| c.into_iter().next())
                .with_context(|| {
                    format!(
                        "config error: [[rid.peer]] {} signing_cert = {:?}: no PEM certificate in it",
                        p.peer.name,
                        path.display()
                    )
                })?;
            signing.insert(p.peer.name.clone(), der);
        }
    }
    let key_pem = std::fs::read_to_string(&cfg.key).with_context(|| {
        format!(
            "config error: [rid] key = {:?}: cannot read it; give our private key (PEM)",
            cfg.key.display()
        )
    })?;
    let key = SigningKey::from_pkcs8_pem(&key_pem).with_context(|| {
        format!(
            "config error: [rid] key = {:?}: not a usable signing key; give an unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)",
            cfg.key.display()
        )
    })?;
    let cert_pem = std::fs::read_to_string(&cfg.cert).with_context(|| {
        format!(
            "config error: [rid] cert = {:?}: cannot read it; give our certificate (PEM)",
            cfg.cert.display()
        )
    })?;
    let cert_der = dsig::certificates_from_pem(&cert_pem)
        .ok()
        .and_then(|c| c.into_iter().next())
        .with_context(|| {
            format!(
                "config error: [rid] cert = {:?}: no PEM certificate in it",
                cfg.cert.display()
            )
        })?;
    let state_path = if cfg.state.as_os_str().is_empty() {
        data_dir.join("rid.db")
    } else {
        cfg.state.clone()
    };
    let state =
        Arc::new(StateTable::open(&state_path).with_context(|| {
            format!("cannot open the RID state table {}", state_path.display())
        })?);
    let client = RidClient::new(cfg.client_settings().map_err(fail)?)
        .map_err(|e| anyhow::anyhow!("config error: {e}"))?;
    let core = Arc::new(Core {
        name: cfg.name.clone(),
        contact: if cfg.contact.is_empty() {
            cfg.name.clone()
        } else {
            cfg.contact.clone()
        },
        peers,
        signing,
        seen: Mutex::new(HashMap::new()),
        key,
        cert_der,
        state,
        client,
        archive: flows_enabled.then(|| pharos_flows::archive_root(data_dir)),
        hook: hook.clone(),
        writer,
        limits: Limits::default(),
        lookback: cfg.lookback.get(),
        examples: cfg.example_records,
        incident_ttl: cfg.incident_ttl.get(),
    });
    let server = RidServer::bind(
        cfg.server_settings().map_err(fail)?,
        Arc::new(handler::Handler { core: core.clone() }),
    )
    .await
    .map_err(|e| anyhow::anyhow!("config error: {e}"))?;
    let addr = server.local_addr()?;
    std::fs::write(data_dir.join("rid.addr"), format!("{addr}\n"))
        .context("writing rid.addr in the data directory")?;
    tracing::info!(%addr, name = %cfg.name, peers = core.peers.len(), "RID listening");
    let stop = topology.shutdown().clone();
    let srv = tokio::spawn(server.run(async move {
        stop.stopped().await;
    }));
    topology.add("RID server (in-flight messages finished)", async move {
        let _ = srv.await;
    });
    let handle = pharos_api::rid::RidHandle(Arc::new(service::Service {
        core: core.clone(),
        store: store.clone(),
    }));
    topology.spawn("RID incident expiry", expiry(core.clone()));
    topology.spawn("RID trace feed", feed(core, store));
    Ok(Some(handle))
}

/// Closes open incidents idle for `[rid] incident_ttl`, every quarter of it (at least every
/// 100 ms, at most every minute).
async fn expiry(core: Arc<Core>) {
    let every = (core.incident_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        core.expire().await;
        tokio::time::sleep(every).await;
    }
}

impl Core {
    /// Closes the open incidents idle for `incident_ttl` (status `closed`, reason `expired`).
    async fn expire(&self) {
        let Ok(ttl) = chrono::TimeDelta::from_std(self.incident_ttl) else {
            return;
        };
        let before = chrono::Utc::now() - ttl;
        let st = self.state.clone();
        let closed = match tokio::task::spawn_blocking(move || st.expire_open(before)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "RID: closing expired incidents failed");
                return;
            }
            Err(_) => return,
        };
        for inc in closed {
            self.event(
                Severity::Low,
                &inc.origin_peer,
                format!(
                    "incident {} (#{}) closed: expired after {} without a change",
                    iid_text(Some(&inc.incident_id)),
                    inc.id,
                    humantime_secs(self.incident_ttl)
                ),
            )
            .await;
        }
    }
}

fn humantime_secs(d: Duration) -> String {
    pharos_model::config::ConfigDuration(d).to_string()
}

/// How often a DDoS event whose entry peer is not known yet is tried again (the archive may
/// not hold its flows yet), and for how many tries.
const RETRY_EVERY: Duration = Duration::from_secs(1);
const MAX_TRIES: u32 = 120;

/// Follows the message store's change feed: each ongoing DDoS event starts a trace once the
/// archive shows which peer it entered through (tried again every second for two minutes).
async fn feed(core: Arc<Core>, store: Arc<dyn MessageStore>) {
    let mut watch = store.watch_changes();
    let mut after = store.last_change().unwrap_or(0);
    let mut done: HashSet<u64> = HashSet::new();
    let mut pending: HashMap<u64, (DdosEvent, u32)> = HashMap::new();
    loop {
        let s = store.clone();
        let entries = match tokio::task::spawn_blocking(move || s.changes(after, 256)).await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "RID: reading the change feed failed; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
                continue;
            }
            Err(_) => return,
        };
        let idle = entries.is_empty();
        for (seq, _, stored) in entries {
            after = seq;
            let (Kind::Ddos(ev), Some(sid)) = (&stored.message.kind, stored.message.common.id)
            else {
                continue;
            };
            if ev.end_time.is_some() {
                pending.remove(&sid);
            } else if !done.contains(&sid) {
                let tries = pending.get(&sid).map_or(0, |p| p.1);
                pending.insert(sid, (ev.clone(), tries));
            }
        }
        let ids: Vec<u64> = pending.keys().copied().collect();
        for sid in ids {
            let Some((ev, _)) = pending.get(&sid).cloned() else {
                continue;
            };
            match core.trace_event(sid, &ev, false).await {
                Ok(asked) if !asked.is_empty() => {
                    done.insert(sid);
                    pending.remove(&sid);
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %format!("{e:#}"), attack = sid,
                    "RID: starting a trace failed"),
            }
            if let Some(p) = pending.get_mut(&sid) {
                p.1 += 1;
                if p.1 >= MAX_TRIES {
                    pending.remove(&sid);
                    tracing::info!(
                        attack = sid,
                        "RID: no peer found in the archive for this attack; no trace started"
                    );
                }
            }
        }
        if idle {
            if pending.is_empty() {
                if watch.changed().await.is_err() {
                    return;
                }
            } else {
                tokio::select! {
                    r = watch.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                }
            }
        }
    }
}
