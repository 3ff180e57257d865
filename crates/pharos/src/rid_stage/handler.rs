//! What the RID server calls for every message a peer sends: signature checks, policy, the
//! state table, and the trace workflow's answers (relay, Result, Acknowledgement).

use std::sync::Arc;

use pharos_model::Severity;
use pharos_rid::config::{PeerPolicy, confidence_rank};
use pharos_rid::state::{NewMessage, Status};
use pharos_rid::transport::{Incoming, Reply, ReplyError, RidHandler};
use pharos_rid::{AuthorizationStatus, Justification, MsgType, Rid};

use super::{Core, Decision, Verified, build, count, iid_text};

/// The stage's handler.
pub struct Handler {
    /// The shared stage.
    pub core: Arc<Core>,
}

impl RidHandler for Handler {
    async fn handle(&self, req: Incoming) -> Reply {
        let core = &self.core;
        let name = req.peer.name.clone();
        core.saw_certificate(&name, &req.peer.certificate);
        let t = req
            .msg
            .msg_type()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let Some(peer) = core.peer(&name).cloned() else {
            return Reply::Error(ReplyError::Forbidden("unknown peer".into()));
        };
        let (env, det) = core.verify(&name, &req.msg, &req.body);
        let token = req.callback_token.as_ref().map(|t| t.as_str().to_string());
        let record = |status: Option<u16>| {
            core.state.record_incoming(NewMessage {
                peer: &name,
                rid: &req.msg,
                body: &req.body,
                callback_token: token.as_deref(),
                http_status: status,
            })
        };
        let is_request = req.msg.msg_type().is_some_and(|m| m.is_request());
        let answerable = is_request || req.msg.msg_type() == Some(&MsgType::Query);
        // A bad signature: refused and recorded.
        let bad = match (&env, &det) {
            (Verified::Bad(w), _) => Some(format!("enveloped signature: {w}")),
            (_, Verified::Bad(w)) => Some(format!("detached signature over the records: {w}")),
            _ => None,
        };
        if let Some(why) = bad {
            count(&name, &t, "in", "bad_signature");
            let _ = record(Some(if answerable { 200 } else { 400 }));
            core.event(
                Severity::High,
                &name,
                format!(
                    "{t} from {name} for incident {} refused: {why}",
                    iid_text(req.msg.incident_id())
                ),
            )
            .await;
            return if answerable {
                self.deny(&peer, &req.msg, Justification::Authentication)
            } else {
                Reply::Error(ReplyError::BadRequest(
                    "the signature does not verify".into(),
                ))
            };
        }
        if matches!(env, Verified::Absent) && is_request {
            count(&name, &t, "in", "unsigned");
            let _ = record(Some(200));
            core.event(
                Severity::Middle,
                &name,
                format!("unsigned {t} from {name} refused"),
            )
            .await;
            return self.deny(&peer, &req.msg, Justification::Authentication);
        }
        // Policy: the types we accept from this peer.
        if !req.msg.msg_type().is_some_and(|m| peer.accept.contains(m)) {
            count(&name, &t, "in", "refused_by_policy");
            let _ = record(Some(if answerable { 200 } else { 403 }));
            core.event(
                Severity::Middle,
                &name,
                format!("{t} from {name} refused: [[rid.peer]] accept does not list it"),
            )
            .await;
            return if answerable {
                self.deny(&peer, &req.msg, Justification::Authentication)
            } else {
                Reply::Error(ReplyError::Forbidden(format!(
                    "{t} is not accepted from this peer"
                )))
            };
        }
        let unverified = matches!(det, Verified::Unknown) || matches!(env, Verified::Unknown);
        match req.msg.msg_type() {
            Some(MsgType::TraceRequest | MsgType::InvestigationRequest) => {
                self.request(&peer, &req, unverified).await
            }
            Some(MsgType::Result) => {
                let rec = record(Some(200));
                count(&name, &t, "in", "accepted");
                let incident = rec.ok().and_then(|r| r.incident);
                let core = core.clone();
                let msg = req.msg.clone();
                // Relaying back may take a while: the callback is answered at once.
                tokio::spawn(async move { core.on_result(&peer, &msg, incident).await });
                Reply::Empty
            }
            Some(MsgType::Acknowledgement) => {
                let rec = record(Some(200));
                count(&name, &t, "in", "accepted");
                let status = req
                    .msg
                    .request_status
                    .as_ref()
                    .map(|s| s.authorization.as_str().to_string())
                    .unwrap_or_default();
                if status == "Denied"
                    && let Some(i) = rec.ok().and_then(|r| r.incident)
                {
                    let _ = core.state.set_status(i, Status::Denied);
                }
                core.event(
                    Severity::Info,
                    &name,
                    format!(
                        "Acknowledgement {status} from {name} for incident {}",
                        iid_text(req.msg.incident_id())
                    ),
                )
                .await;
                Reply::Empty
            }
            Some(MsgType::Report) => {
                let rec = record(Some(200));
                count(&name, &t, "in", "accepted");
                if let Ok(r) = &rec
                    && r.new_incident
                    && let Some(i) = r.incident
                {
                    // A Report expects nothing: recorded, not open.
                    let _ = core.state.set_status(i, Status::Closed);
                }
                core.event(
                    Severity::Info,
                    &name,
                    format!(
                        "Report from {name} for incident {}: {}",
                        iid_text(req.msg.incident_id()),
                        super::outgoing::summary(&req.msg)
                    ),
                )
                .await;
                if req.callback_token.is_some() {
                    // A callback (the answer to a Query of ours) takes no reply.
                    Reply::Empty
                } else {
                    self.ack(&peer, &req.msg, AuthorizationStatus::Approved, None)
                }
            }
            Some(MsgType::Query) => {
                let asked = req.msg.incident_id().cloned();
                // Read before recording: recording adds the asker to the incident's peers.
                let known = asked
                    .as_ref()
                    .and_then(|i| core.state.incident_by_incident_id(i).ok().flatten());
                let rec = record(Some(200));
                count(&name, &t, "in", "accepted");
                let what = asked.as_ref().map_or_else(
                    || "the incidents it shares with us".to_string(),
                    |i| format!("incident {}", iid_text(Some(i))),
                );
                match core.answer_query(&peer, asked.as_ref(), known.as_ref()) {
                    Ok(report) => {
                        let body = report.emit();
                        let _ = core.state.record_outgoing(NewMessage {
                            peer: &name,
                            rid: &report,
                            body: body.as_bytes(),
                            callback_token: None,
                            http_status: Some(200),
                        });
                        count(&name, "Report", "out", "sent");
                        let n = report.iodef().map_or(0, |d| d.incidents.len());
                        core.event(
                            Severity::Info,
                            &name,
                            format!("Query from {name} about {what} answered with a Report of {n} incident(s)"),
                        )
                        .await;
                        Reply::Inline(Box::new(report))
                    }
                    Err((why, text)) => {
                        if let Ok(r) = &rec
                            && r.new_incident
                            && let Some(i) = r.incident
                        {
                            let _ = core.state.set_status(i, Status::Denied);
                        }
                        core.event(
                            Severity::Low,
                            &name,
                            format!("Query from {name} about {what} denied: {text}"),
                        )
                        .await;
                        self.deny(&peer, &req.msg, why)
                    }
                }
            }
            _ => {
                let _ = record(Some(200));
                count(&name, &t, "in", "not_processed");
                self.deny(&peer, &req.msg, Justification::CannotProcess)
            }
        }
    }
}

impl Handler {
    /// An Acknowledgement Denied with `why`, signed when it can be.
    fn deny(&self, peer: &PeerPolicy, req: &Rid, why: Justification) -> Reply {
        self.ack(peer, req, AuthorizationStatus::Denied, Some(why))
    }

    fn ack(
        &self,
        peer: &PeerPolicy,
        req: &Rid,
        status: AuthorizationStatus,
        why: Option<Justification>,
    ) -> Reply {
        let core = &self.core;
        let ack = build::acknowledgement(
            req.incident_id(),
            core.dns_of(peer),
            peer,
            req.iodef().cloned(),
            status,
            why,
        );
        let signed = if ack
            .policy
            .as_ref()
            .is_some_and(|p| p.report_schema.is_some())
        {
            match core.sign(&ack) {
                Ok((_, s)) => s,
                Err(_) => ack,
            }
        } else {
            ack
        };
        let body = signed.emit();
        let _ = core.state.record_outgoing(NewMessage {
            peer: &peer.peer.name,
            rid: &signed,
            body: body.as_bytes(),
            callback_token: None,
            http_status: Some(200),
        });
        count(&peer.peer.name, "Acknowledgement", "out", "sent");
        Reply::Inline(Box::new(signed))
    }

    /// A TraceRequest or InvestigationRequest.
    async fn request(&self, peer: &PeerPolicy, req: &Incoming, unverified: bool) -> Reply {
        let core = &self.core;
        let name = peer.peer.name.clone();
        let t = req.msg.msg_type().map(|m| m.as_str()).unwrap_or("?");
        let iid = iid_text(req.msg.incident_id());
        // Expired incidents stop counting before the limit is checked.
        core.expire().await;
        let open = core.state.open_incidents_of(&name).unwrap_or(0);
        let known = req
            .msg
            .incident_id()
            .and_then(|i| core.state.incident_by_incident_id(i).ok().flatten())
            .is_some();
        if !known && open >= req.max_open_incidents {
            let rec = core.state.record_incoming(NewMessage {
                peer: &name,
                rid: &req.msg,
                body: &req.body,
                callback_token: None,
                http_status: Some(200),
            });
            if let Ok(r) = rec
                && let Some(i) = r.incident
            {
                // Refused at once: it must not count as open itself.
                let _ = core.state.set_status(i, Status::Denied);
            }
            count(&name, t, "in", "too_many_incidents");
            core.event(
                Severity::Middle,
                &name,
                format!("{t} {iid} from {name} denied: {open} open incidents (max_open_incidents)"),
            )
            .await;
            return self.deny(peer, &req.msg, Justification::SystemResource);
        }
        let rec = match core.state.record_incoming(NewMessage {
            peer: &name,
            rid: &req.msg,
            body: &req.body,
            callback_token: None,
            http_status: None,
        }) {
            Ok(r) => r,
            Err(e) => return Reply::Error(ReplyError::Failed(e.to_string())),
        };
        let Some(inc) = rec.incident else {
            return Reply::Error(ReplyError::BadRequest("no IncidentID".into()));
        };
        count(&name, t, "in", "accepted");
        let confidence = req
            .msg
            .iodef()
            .and_then(|d| d.incidents.first())
            .and_then(|i| i.assessments.iter().find_map(|a| a.confidence.as_ref()))
            .map(confidence_rank)
            .unwrap_or(0);
        if confidence < peer.min_confidence {
            let _ = core.state.set_status(inc, Status::Denied);
            let _ = core.state.set_message_result(rec.message, 200, None);
            core.event(
                Severity::Low,
                &name,
                format!("{t} {iid} from {name} denied: confidence under min_confidence"),
            )
            .await;
            return self.deny(peer, &req.msg, Justification::Other);
        }
        if !peer.auto_approve {
            let _ = core.state.set_status(inc, Status::PendingApproval);
            let _ = core.state.set_message_result(rec.message, 200, None);
            core.event(
                Severity::Middle,
                &name,
                format!("{t} {iid} from {name} waits for an analyst (pending approval)"),
            )
            .await;
            return self.ack(peer, &req.msg, AuthorizationStatus::Pending, None);
        }
        let _ = core.state.set_status(inc, Status::Approved);
        core.event(
            Severity::Info,
            &name,
            format!(
                "{t} {iid} from {name} approved{}",
                if unverified {
                    " (the originator's signature over the records is unverified: its certificate is unknown here)"
                } else {
                    ""
                }
            ),
        )
        .await;
        self.investigate(peer, req, inc, rec.message).await
    }

    /// Checks the request against our archive and answers: relay (202), or a Result.
    async fn investigate(&self, peer: &PeerPolicy, req: &Incoming, inc: i64, msg_id: i64) -> Reply {
        let core = &self.core;
        match core.investigate(peer, &req.msg, &req.body).await {
            Decision::Deny(why) => self.deny(peer, &req.msg, why),
            Decision::Relay(next, fwd) => {
                let _ =
                    core.state
                        .set_message_result(msg_id, 202, Some(req.deferral_token.as_str()));
                let _ = core.state.set_status(inc, Status::Relayed);
                let core = core.clone();
                tokio::spawn(async move { core.relay(next, fwd).await });
                Reply::Deferred
            }
            Decision::Answer(signed) => {
                let body = signed.emit();
                let _ = core.state.set_message_result(msg_id, 200, None);
                let _ = core.state.record_outgoing(NewMessage {
                    peer: &peer.peer.name,
                    rid: &signed,
                    body: body.as_bytes(),
                    callback_token: None,
                    http_status: Some(200),
                });
                let _ = core.state.set_status(inc, Status::Answered);
                count(&peer.peer.name, "Result", "out", "sent");
                Reply::Inline(signed)
            }
        }
    }
}

/// Runs the `[detect_hook]` command with the request on stdin (`PHAROS_PHASE=rid-trace` or
/// `rid-investigation`,
/// `PHAROS_RID_INCIDENT`), off the async threads, within its timeout (at most 20 s, so that
/// the inline answer stays within the peer's patience); says what happened.
pub(super) async fn run_hook(
    cfg: &pharos_detect::hook::DetectHookConfig,
    request: &[u8],
    iid: &str,
    phase: &'static str,
) -> String {
    if cfg.command.is_empty() {
        return "no [detect_hook] command configured; nothing run".into();
    }
    let (cfg, request, iid) = (cfg.clone(), request.to_vec(), iid.to_string());
    tokio::task::spawn_blocking(move || run_hook_blocking(&cfg, &request, &iid, phase))
        .await
        .unwrap_or_else(|e| format!("the hook task failed: {e}"))
}

fn run_hook_blocking(
    cfg: &pharos_detect::hook::DetectHookConfig,
    request: &[u8],
    iid: &str,
    phase: &str,
) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = match Command::new(&cfg.command)
        .args(&cfg.args)
        .env("PHAROS_PHASE", phase)
        .env("PHAROS_RID_INCIDENT", iid)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return format!("{} could not start: {e}", cfg.command),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is not a failure.
        let _ = stdin.write_all(request);
        let _ = stdin.write_all(b"\n");
    }
    let timeout = cfg.timeout.get().min(std::time::Duration::from_secs(20));
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return format!("{} ran (exit 0)", cfg.command),
            Ok(Some(s)) => return format!("{} failed ({s})", cfg.command),
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return format!("{} timed out after {timeout:?} and was killed", cfg.command);
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return format!("{} failed: {e}", cfg.command),
        }
    }
}
