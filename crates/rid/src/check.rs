//! What RFC 6545 §6 requires of each message type, checked on a parsed or built [`Rid`].
//!
//! Contract: [`Rid::check`] accepts a message exactly when it carries the classes the RFC
//! requires for its `MsgType` (see docs/rid.md for the table) and the schema's minimum
//! cardinalities that the model cannot enforce by itself (at least one Assessment with an Impact,
//! one Contact, ...); it lists every problem, each naming the element. A receiver answers a
//! message that fails the check with HTTP 4xx; Pharos never sends one.

use crate::CheckError;
use crate::enums::{AuthorizationStatus, MsgType, SystemCategory};
use crate::iodef::{EventData, Incident, IodefDocument, Ports};
use crate::rid::{Payload, Rid};

impl Rid {
    /// Checks the message against RFC 6545 §6 for its type (see the module contract).
    pub fn check(&self) -> Result<(), CheckError> {
        let mut p = Vec::new();
        let msg_type = self.msg_type().cloned();
        let Some(policy) = &self.policy else {
            return Err(CheckError {
                msg_type: "RID".into(),
                problems: vec!["RIDPolicy is required in every message".into()],
            });
        };
        if policy.regions.is_empty() {
            p.push("RIDPolicy: at least one PolicyRegion".into());
        }
        if policy.traffic_types.is_empty() {
            p.push("RIDPolicy: at least one TrafficType".into());
        }
        let doc = self.iodef();
        if let Some(rs) = &policy.report_schema
            && let Payload::Other(c) = &rs.document.payload
            && c.is_empty()
        {
            p.push("ReportSchema/XMLDocument is empty".into());
        }
        if let Some(d) = doc {
            check_document(d, &mut p);
        }
        let is = |t: MsgType| msg_type.as_ref() == Some(&t);
        if self.request_status.is_some() && !is(MsgType::Acknowledgement) {
            p.push("RequestStatus belongs in an Acknowledgement only".into());
        }
        if self.incident_source.is_some() && !is(MsgType::Result) {
            p.push("IncidentSource belongs in a Result only".into());
        }
        match &policy.msg_type {
            t @ (MsgType::TraceRequest | MsgType::InvestigationRequest) => {
                if policy.incident_id.is_none() {
                    p.push("RIDPolicy/IncidentID is required in a Request".into());
                }
                match doc {
                    None => p.push("a Request carries an IODEF document".into()),
                    Some(d) => {
                        for (i, inc) in d.incidents.iter().enumerate() {
                            check_request(inc, i, *t == MsgType::TraceRequest, &mut p);
                        }
                    }
                }
            }
            MsgType::Acknowledgement => match &self.request_status {
                None => p.push("an Acknowledgement carries RequestStatus".into()),
                Some(s) => {
                    if s.authorization == AuthorizationStatus::Denied && s.justification.is_none() {
                        p.push("RequestStatus: a Denied status carries a Justification".into());
                    }
                }
            },
            MsgType::Result => {
                if self.incident_source.is_none() {
                    p.push("a Result carries IncidentSource".into());
                }
                match doc {
                    None => p.push("a Result carries an IODEF document".into()),
                    Some(d) => {
                        for (i, inc) in d.incidents.iter().enumerate() {
                            if inc.history.as_ref().is_none_or(|h| h.items.is_empty()) {
                                p.push(format!(
                                    "Incident[{}]: a Result lists the actions taken in History",
                                    i + 1
                                ));
                            }
                        }
                    }
                }
            }
            MsgType::Report | MsgType::Query | MsgType::Ext(_) => {}
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(CheckError {
                msg_type: policy.msg_type.to_string(),
                problems: p,
            })
        }
    }
}

fn check_document(d: &IodefDocument, p: &mut Vec<String>) {
    if d.incidents.is_empty() {
        p.push("IODEF-Document: at least one Incident".into());
    }
    for (i, inc) in d.incidents.iter().enumerate() {
        let at = format!("Incident[{}]", i + 1);
        if inc.assessments.is_empty() {
            p.push(format!("{at}: at least one Assessment"));
        }
        for a in &inc.assessments {
            if a.impacts.is_empty() {
                p.push(format!("{at}/Assessment: at least one Impact"));
            }
        }
        if inc.contacts.is_empty() {
            p.push(format!("{at}: at least one Contact"));
        }
        for e in &inc.event_data {
            check_event(e, &at, p);
        }
    }
}

fn check_event(e: &EventData, at: &str, p: &mut Vec<String>) {
    for f in &e.flows {
        if f.systems.is_empty() {
            p.push(format!("{at}/EventData/Flow: at least one System"));
        }
        for s in &f.systems {
            for sv in &s.services {
                if let Some(Ports::List(l)) = &sv.ports
                    && l.is_empty()
                {
                    p.push(format!(
                        "{at}/EventData/Flow/System/Service: empty Portlist"
                    ));
                }
            }
        }
    }
    if let Some(r) = &e.record {
        if r.data.is_empty() {
            p.push(format!("{at}/EventData/Record: at least one RecordData"));
        }
        if r.data.iter().any(|d| d.items.is_empty()) {
            p.push(format!(
                "{at}/EventData/Record/RecordData: at least one RecordItem"
            ));
        }
    }
    for sub in &e.event_data {
        check_event(sub, at, p);
    }
}

fn check_request(inc: &Incident, i: usize, trace: bool, p: &mut Vec<String>) {
    let at = format!("Incident[{}]", i + 1);
    if inc.detect_time.is_none() && inc.start_time.is_none() {
        p.push(format!("{at}: a Request gives DetectTime or StartTime"));
    }
    if !inc
        .assessments
        .iter()
        .any(|a| !a.impacts.is_empty() && a.confidence.is_some())
    {
        p.push(format!(
            "{at}: a Request gives an Assessment with Impact and Confidence"
        ));
    }
    if inc.systems(&SystemCategory::Source).is_empty() {
        p.push(format!("{at}: a Request names the source System"));
    }
    if inc.systems(&SystemCategory::Target).is_empty() {
        p.push(format!(
            "{at}: a Request names the destination (target) System"
        ));
    }
    fn expects(e: &EventData) -> bool {
        !e.expectations.is_empty() || e.event_data.iter().any(expects)
    }
    if !inc.event_data.iter().any(expects) {
        p.push(format!(
            "{at}: a Request states the actions wanted in an Expectation"
        ));
    }
    if trace && inc.sp_path().is_none() {
        p.push(format!(
            "{at}: a TraceRequest carries the SP path (EventData of infrastructure Systems)"
        ));
    }
}
