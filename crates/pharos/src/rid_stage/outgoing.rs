//! What an analyst originates besides traces (InvestigationRequests, Reports, Queries), and
//! the answers to the Queries peers send us.
//!
//! Contract:
//! - An InvestigationRequest goes straight to the named peer (believed to host the source), never
//!   relayed: IncidentID `<our name>:pharos-ddos-<event>#inv-<peer>`, the DDoS event as IODEF
//!   (purpose `mitigation`, no SP path) with example records from our archive under a detached
//!   signature. Its Result (inline, or a later message after the peer's analyst approved) closes
//!   the incident.
//! - A Report describes one of our DDoS events (IncidentID `<our name>:pharos-ddos-<event>`, no
//!   instance, purpose `reporting`, no path, no records); nothing is expected back, the incident
//!   is closed once sent.
//! - A Query asks a peer about one IncidentID (or, without one, about the incidents it shares
//!   with us); its signed IODEF document only names what is asked.
//! - A Query we receive is answered with a Report of the incident (its latest IODEF document,
//!   without path or records) when we know the IncidentID and the peer took part in it (or its
//!   `share_all` is set); without an IncidentID, with up to 5 of the incidents it took part in.
//!   Taking part means having sent or been sent a message of the incident other than a Query or
//!   an Acknowledgement: asking about an incident does not make a peer a party to it.
//!   Otherwise: Acknowledgement Denied (`Other` for an unknown incident or nothing to report,
//!   `Authentication` for an incident the peer may not see).

use std::sync::Arc;

use pharos_api::rid::RidSent;
use pharos_model::{DdosEvent, Severity};
use pharos_rid::config::PeerPolicy;
use pharos_rid::state::{IncidentFilter, IncidentRecord, Status};
use pharos_rid::transport::Answer;
use pharos_rid::{IncidentId, IodefDocument, Justification, MsgType, Rid, SystemCategory, dsig};

use super::{Core, archive, build, iid_text};

/// An HTTP status for the API and a reason.
type Failure = (u16, String);

/// Reports at most this many incidents in one Report (RFC 6545 §6.6 suggests 5).
const MAX_REPORTED: usize = 5;

fn internal(e: impl std::fmt::Display) -> Failure {
    (500, e.to_string())
}

/// Parses `NAME:NUMBER` or `NAME:NUMBER#INSTANCE`, as `pharos rid incidents` prints an
/// IncidentID.
pub fn parse_incident_id(s: &str) -> Result<IncidentId, String> {
    let bad = || {
        format!(
            "incident {s:?}: expected NAME:NUMBER or NAME:NUMBER#INSTANCE as `pharos rid incidents` prints it (e.g. rid-a.example:pharos-ddos-12#1)"
        )
    };
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let (main, instance) = match s.split_once('#') {
        Some((m, i)) if !i.is_empty() => (m, Some(i.to_string())),
        Some(_) => return Err(bad()),
        None => (s, None),
    };
    let (name, number) = main
        .split_once(':')
        .filter(|(n, i)| !n.is_empty() && !i.is_empty())
        .ok_or_else(bad)?;
    Ok(IncidentId {
        instance,
        ..IncidentId::new(name, number)
    })
}

/// One line about a message's IODEF incidents: IncidentID, impact, targets.
pub fn summary(msg: &Rid) -> String {
    let Some(doc) = msg.iodef() else {
        return "no IODEF document".into();
    };
    doc.incidents
        .iter()
        .map(|i| {
            let impact = i
                .assessments
                .iter()
                .flat_map(|a| &a.impacts)
                .map(|x| x.text.text.clone())
                .next()
                .unwrap_or_default();
            let targets: Vec<String> = i
                .systems(&SystemCategory::Target)
                .iter()
                .flat_map(|s| &s.node.addresses)
                .map(|a| a.value.clone())
                .collect();
            format!(
                "{}:{} {impact} toward {}",
                i.incident_id.name,
                i.incident_id.id,
                targets.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn sent_view(
    peer: &PeerPolicy,
    t: MsgType,
    iid: Option<&IncidentId>,
    incident: Option<i64>,
    answer: &Answer,
) -> RidSent {
    let mut v = RidSent {
        peer: peer.peer.name.clone(),
        msg_type: t.as_str().into(),
        incident_id: iid.map(|i| iid_text(Some(i))),
        incident,
        answer: String::new(),
        status: None,
        justification: None,
        source_found: None,
        body: None,
    };
    match answer {
        Answer::Inline { msg, body, .. } => {
            v.answer = msg.msg_type().map(|m| m.as_str()).unwrap_or("?").into();
            v.status = msg
                .request_status
                .as_ref()
                .map(|s| s.authorization.as_str().to_string());
            v.justification = msg
                .request_status
                .as_ref()
                .and_then(|s| s.justification.as_ref())
                .map(|j| j.as_str().to_string());
            v.source_found = msg.incident_source.as_ref().map(|s| s.source_found);
            v.body = Some(String::from_utf8_lossy(body).into_owned());
        }
        Answer::Empty => v.answer = "empty".into(),
        Answer::Deferred(_) => v.answer = "deferred".into(),
    }
    v
}

impl Core {
    /// The peer named `peer`, if we may send it `t`.
    fn sendable(&self, peer: &str, t: &MsgType) -> Result<PeerPolicy, Failure> {
        let p = self.peer(peer).cloned().ok_or_else(|| {
            (
                404,
                format!("no [[rid.peer]] named {peer:?}; list them with pharos rid peers"),
            )
        })?;
        if !p.send.contains(t) {
            return Err((
                409,
                format!(
                    "[[rid.peer]] {peer}: send does not list {}; add it there to send one",
                    t.as_str()
                ),
            ));
        }
        Ok(p)
    }

    fn incident_of(&self, iid: &IncidentId) -> Result<Option<IncidentRecord>, Failure> {
        self.state.incident_by_incident_id(iid).map_err(internal)
    }

    /// Sends an InvestigationRequest for our DDoS event `ev` (store id `sid`) to `peer`.
    pub(crate) async fn investigate_event(
        self: &Arc<Self>,
        sid: u64,
        ev: &DdosEvent,
        peer: &str,
    ) -> Result<RidSent, Failure> {
        let t = MsgType::InvestigationRequest;
        let peer = self.sendable(peer, &t)?;
        let iid = IncidentId {
            instance: Some(format!("inv-{}", peer.peer.name)),
            ..IncidentId::new(&self.name, format!("pharos-ddos-{sid}"))
        };
        if let Some(inc) = self.incident_of(&iid)? {
            return Err((
                409,
                format!(
                    "an InvestigationRequest for event {sid} went to {} already (incident {}, {}); see pharos rid show {}",
                    peer.peer.name,
                    inc.id,
                    inc.status.as_str(),
                    inc.id
                ),
            ));
        }
        let start = u64::try_from(ev.start_time.timestamp_millis()).unwrap_or(0);
        let w = archive::Wanted {
            victims: ev.attack_dst_ip.clone(),
            proto: ev.attack_type.and_then(pharos_rid::ip_protocol_of),
            src_ports: ev.attack_src_port.clone(),
            from_ms: start.saturating_sub(self.lookback.as_millis() as u64),
            to_ms: pharos_model::clock::now_ms() + 60_000,
            records: Vec::new(),
            tolerance_ms: 0,
        };
        let crossing = self.look(w).await.unwrap_or_default();
        let (doc, ids) = build::request_document(
            ev,
            &iid,
            &self.name,
            &self.contact,
            &crossing.examples,
            false,
        );
        let rid = Rid::new(build::policy(
            t.clone(),
            self.dns_of(&peer),
            &iid,
            &peer,
            Some(doc),
        ));
        let rid = if ids.is_empty() {
            rid
        } else {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let s = dsig::sign_detached_rid(&rid, &refs, &self.key, &self.cert_der)
                .map_err(internal)?;
            Rid::parse(s.as_bytes(), &self.limits).map_err(internal)?
        };
        let (body, signed) = self.sign(&rid).map_err(|e| internal(format!("{e:#}")))?;
        let answer = self
            .send(&peer, &signed, body, None)
            .await
            .map_err(|e| (502, format!("{e:#}")))?;
        let inc = self.incident_of(&iid)?.map(|i| i.id);
        let view = sent_view(&peer, t, Some(&iid), inc, &answer);
        self.event(
            Severity::Info,
            &peer.peer.name,
            format!(
                "InvestigationRequest for incident {} (attack {sid}) sent to {}: answered {}",
                iid_text(Some(&iid)),
                peer.peer.name,
                view.answer
            ),
        )
        .await;
        Ok(view)
    }

    /// Sends a Report of our DDoS event `ev` (store id `sid`) to `peer`.
    pub(crate) async fn report_event(
        self: &Arc<Self>,
        sid: u64,
        ev: &DdosEvent,
        peer: &str,
    ) -> Result<RidSent, Failure> {
        let t = MsgType::Report;
        let peer = self.sendable(peer, &t)?;
        let iid = IncidentId::new(&self.name, format!("pharos-ddos-{sid}"));
        let doc = build::report_document(ev, &iid, &self.contact);
        let rid = Rid::new(build::policy(
            t.clone(),
            self.dns_of(&peer),
            &iid,
            &peer,
            Some(doc),
        ));
        let (body, signed) = self.sign(&rid).map_err(|e| internal(format!("{e:#}")))?;
        let answer = self
            .send(&peer, &signed, body, None)
            .await
            .map_err(|e| (502, format!("{e:#}")))?;
        let inc = self.incident_of(&iid)?;
        if let Some(i) = &inc
            && i.msg_type == "Report"
            && i.status.is_open()
        {
            // A Report expects nothing back.
            let _ = self.state.set_status(i.id, Status::Closed);
        }
        let view = sent_view(&peer, t, Some(&iid), inc.map(|i| i.id), &answer);
        self.event(
            Severity::Info,
            &peer.peer.name,
            format!(
                "Report of incident {} (attack {sid}) sent to {}: answered {}",
                iid_text(Some(&iid)),
                peer.peer.name,
                view.answer
            ),
        )
        .await;
        Ok(view)
    }

    /// Sends `peer` a Query about `incident` (`NAME:NUMBER#INSTANCE`), or about the incidents
    /// it shares with us.
    pub(crate) async fn query_peer(
        self: &Arc<Self>,
        peer: &str,
        incident: Option<&str>,
    ) -> Result<RidSent, Failure> {
        let t = MsgType::Query;
        let peer = self.sendable(peer, &t)?;
        let asked = incident
            .map(parse_incident_id)
            .transpose()
            .map_err(|e| (400, e))?;
        let existed = match &asked {
            Some(i) => self.incident_of(i)?.is_some(),
            None => true,
        };
        let doc_iid = asked.clone().unwrap_or_else(|| {
            IncidentId::new(
                &self.name,
                format!("query-{}", pharos_model::clock::now_ms()),
            )
        });
        let mut policy = build::policy(
            t.clone(),
            self.dns_of(&peer),
            &doc_iid,
            &peer,
            Some(build::query_document(&doc_iid, &self.contact)),
        );
        policy.incident_id = asked.clone();
        let (body, signed) = self
            .sign(&Rid::new(policy))
            .map_err(|e| internal(format!("{e:#}")))?;
        let answer = self
            .send(&peer, &signed, body, None)
            .await
            .map_err(|e| (502, format!("{e:#}")))?;
        let inc = match &asked {
            Some(i) => self.incident_of(i)?,
            None => None,
        };
        if !existed && let Some(i) = &inc {
            // Opened by our question only: nothing more is expected.
            let _ = self.state.set_status(i.id, Status::Closed);
        }
        let view = sent_view(&peer, t, asked.as_ref(), inc.map(|i| i.id), &answer);
        self.event(
            Severity::Info,
            &peer.peer.name,
            format!(
                "Query about {} sent to {}: answered {}{}",
                asked.as_ref().map_or_else(
                    || "our shared incidents".into(),
                    |i| format!("incident {}", iid_text(Some(i)))
                ),
                peer.peer.name,
                view.answer,
                view.status
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            ),
        )
        .await;
        Ok(view)
    }

    /// Whether `peer` took part in our incident `id`: it sent or was sent one of its messages,
    /// Queries and Acknowledgements aside (asking about an incident does not make one a party).
    fn took_part(&self, id: i64, peer: &str) -> bool {
        self.state
            .messages(id)
            .unwrap_or_default()
            .iter()
            .any(|m| m.peer == peer && m.msg_type != "Query" && m.msg_type != "Acknowledgement")
    }

    /// The latest IODEF incident of our incident `id` (from the latest message that carried
    /// a document, Queries and Acknowledgements aside), without path or records.
    fn document_of(&self, id: i64) -> Option<pharos_rid::Incident> {
        let msgs = self.state.messages(id).ok()?;
        msgs.iter()
            .rev()
            .filter(|m| m.msg_type != "Query" && m.msg_type != "Acknowledgement")
            .find_map(|m| {
                Rid::parse(&m.body, &self.limits)
                    .ok()?
                    .iodef()?
                    .incidents
                    .first()
                    .cloned()
            })
            .map(build::shareable)
    }

    /// The signed Report answering `peer`'s Query about `asked` (`known`: our incident of that
    /// IncidentID, read before the Query was recorded), or the Justification of a denial and
    /// why.
    pub(crate) fn answer_query(
        &self,
        peer: &PeerPolicy,
        asked: Option<&IncidentId>,
        known: Option<&IncidentRecord>,
    ) -> Result<Rid, (Justification, String)> {
        let name = &peer.peer.name;
        let mut incidents = Vec::new();
        match asked {
            Some(iid) => {
                let Some(inc) = known else {
                    return Err((
                        Justification::Other,
                        format!("no incident {} here", iid_text(Some(iid))),
                    ));
                };
                if !peer.share_all && !self.took_part(inc.id, name) {
                    return Err((
                        Justification::Authentication,
                        format!(
                            "{name} took no part in incident {} (and its share_all is false)",
                            iid_text(Some(iid))
                        ),
                    ));
                }
                match self.document_of(inc.id) {
                    Some(d) => incidents.push(d),
                    None => {
                        return Err((
                            Justification::CannotProcess,
                            format!("incident {} holds no IODEF document", iid_text(Some(iid))),
                        ));
                    }
                }
            }
            None => {
                let filter = IncidentFilter {
                    peer: (!peer.share_all).then(|| name.clone()),
                    limit: Some(50),
                    ..IncidentFilter::default()
                };
                let list = self
                    .state
                    .list_incidents(&filter)
                    .map_err(|e| (Justification::CannotProcess, e.to_string()))?;
                for inc in list {
                    if incidents.len() >= MAX_REPORTED {
                        break;
                    }
                    if !peer.share_all && !self.took_part(inc.id, name) {
                        continue;
                    }
                    if let Some(d) = self.document_of(inc.id) {
                        incidents.push(d);
                    }
                }
                if incidents.is_empty() {
                    return Err((
                        Justification::Other,
                        format!("no incident shared with {name} to report"),
                    ));
                }
            }
        }
        let first = incidents[0].incident_id.clone();
        let doc = IodefDocument {
            lang: "en".into(),
            formatid: None,
            incidents,
        };
        let mut p = build::policy(MsgType::Report, self.dns_of(peer), &first, peer, Some(doc));
        p.incident_id = asked.cloned();
        let (_, signed) = self
            .sign(&Rid::new(p))
            .map_err(|e| (Justification::CannotProcess, format!("{e:#}")))?;
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_read_as_pharos_rid_incidents_prints_them() {
        let i = parse_incident_id("rid-a.test:pharos-ddos-7#inv-c").unwrap();
        assert_eq!(
            (i.name.as_str(), i.id.as_str(), i.instance.as_deref()),
            ("rid-a.test", "pharos-ddos-7", Some("inv-c"))
        );
        assert_eq!(iid_text(Some(&i)), "rid-a.test:pharos-ddos-7#inv-c");
        assert!(
            parse_incident_id("rid-a.test:9")
                .unwrap()
                .instance
                .is_none()
        );
        for bad in ["", "rid-a.test", ":9", "a:", "a:1#", "a:1 2"] {
            let e = parse_incident_id(bad).unwrap_err();
            assert!(e.contains("NAME:NUMBER"), "{bad}: {e}");
        }
    }
}
