//! Element tree to model, naming the element path of every refusal.
//!
//! Contract: elements are matched by (namespace, local name), never by prefix. Children of a
//! known class are accepted in any order (emission restores the schema's order); an element of
//! the RID or IODEF namespace that the model skips (see [`crate::iodef`]) is ignored with its
//! subtree; any other element where a typed child is expected, a missing required attribute or
//! element, a second occurrence of a single element, or a value outside its type is an error.
//! Unknown unqualified attributes are ignored (forward compatibility); `ext-value` needs its
//! `ext-` companion.

use std::collections::HashMap;

use pharos_model::Timestamp;

use crate::ParseError;
use crate::enums::*;
use crate::iodef::*;
use crate::rid::*;
use crate::xml::{XmlContent, XmlElement};

type R<T> = Result<T, ParseError>;

/// IODEF classes the model does not carry: skipped, with their subtrees, wherever they appear.
const SKIPPED_IODEF: &[&str] = &[
    "AlternativeID",
    "RelatedActivity",
    "Method",
    "TimeImpact",
    "MonetaryImpact",
    "OperatingSystem",
    "Location",
    "NodeRole",
    "RegistryHandle",
    "PostalAddress",
    "Fax",
    "Application",
    "RecordPattern",
    "ProtoType",
    "ProtoCode",
    "ProtoField",
];

fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// An element with its path.
struct N<'a> {
    el: &'a XmlElement,
    path: String,
}

impl<'a> N<'a> {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.el.namespace.as_deref() == Some(ns) && self.el.name == name
    }

    fn iodef(&self) -> Option<&'a str> {
        (self.el.namespace.as_deref() == Some(IODEF_NS)).then_some(self.el.name.as_str())
    }

    fn rid(&self) -> Option<&'a str> {
        (self.el.namespace.as_deref() == Some(RID_NS)).then_some(self.el.name.as_str())
    }

    fn skippable(&self) -> bool {
        self.iodef().is_some_and(|n| SKIPPED_IODEF.contains(&n))
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        ParseError::Unexpected {
            path: self.path.clone(),
            found: self.el.expanded_name(),
            expected: expected.to_string(),
        }
    }

    fn missing(&self, what: impl Into<String>) -> ParseError {
        ParseError::Missing {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    fn invalid(
        &self,
        what: impl Into<String>,
        value: &str,
        expected: impl Into<String>,
    ) -> ParseError {
        ParseError::Invalid {
            path: self.path.clone(),
            what: what.into(),
            value: cut(value),
            expected: expected.into(),
        }
    }

    fn attr(&self, name: &str) -> Option<&'a str> {
        self.el.attribute(name)
    }

    fn attr_string(&self, name: &str) -> Option<String> {
        self.attr(name).map(str::to_string)
    }

    fn req_attr(&self, name: &str) -> R<&'a str> {
        self.attr(name)
            .ok_or_else(|| self.missing(format!("attribute {name}")))
    }

    fn enum_attr<E: XmlEnum>(&self, name: &str) -> R<Option<E>> {
        let Some(v) = self.attr(name) else {
            return Ok(None);
        };
        let ext = self.attr(&format!("ext-{name}"));
        E::from_xml(v, ext)
            .map(Some)
            .map_err(|expected| self.invalid(format!("attribute {name}"), v, expected))
    }

    fn req_enum_attr<E: XmlEnum>(&self, name: &str) -> R<E> {
        self.enum_attr(name)?
            .ok_or_else(|| self.missing(format!("attribute {name}")))
    }

    /// Element children with their paths (`[n]` among same-named siblings); non-whitespace
    /// text is an error. Linear in the number of children.
    fn children(&self) -> R<Vec<N<'a>>> {
        let mut total: HashMap<&str, usize> = HashMap::new();
        for c in &self.el.children {
            if let XmlContent::Element(e) = c {
                *total.entry(e.name.as_str()).or_default() += 1;
            }
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for c in &self.el.children {
            match c {
                XmlContent::Element(e) => {
                    let n = seen.entry(e.name.as_str()).or_default();
                    *n += 1;
                    let path = if total.get(e.name.as_str()).copied().unwrap_or(0) > 1 {
                        format!("{}/{}[{n}]", self.path, e.name)
                    } else {
                        format!("{}/{}", self.path, e.name)
                    };
                    out.push(N { el: e, path });
                }
                XmlContent::Text(t) if t.trim().is_empty() => {}
                XmlContent::Text(t) => {
                    return Err(ParseError::UnexpectedText {
                        path: self.path.clone(),
                        text: cut(t.trim()),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The text content; child elements are an error.
    fn text(&self) -> R<String> {
        let mut s = String::new();
        for c in &self.el.children {
            match c {
                XmlContent::Text(t) => s.push_str(t),
                XmlContent::Element(e) => {
                    return Err(ParseError::Unexpected {
                        path: format!("{}/{}", self.path, e.name),
                        found: e.expanded_name(),
                        expected: "text only".into(),
                    });
                }
            }
        }
        Ok(s)
    }

    fn parsed<T: std::str::FromStr>(&self, expected: &str) -> R<T> {
        let t = self.text()?;
        t.trim()
            .parse()
            .map_err(|_| self.invalid("text", &t, expected))
    }

    fn time(&self) -> R<Timestamp> {
        let t = self.text()?;
        parse_time(t.trim()).ok_or_else(|| {
            self.invalid(
                "text",
                &t,
                "an xs:dateTime with a time zone, like 2026-01-15T10:05:00Z",
            )
        })
    }
}

fn parse_time(s: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn once<T>(slot: &mut Option<T>, n: &N<'_>, v: T) -> R<()> {
    if slot.is_some() {
        return Err(ParseError::Duplicate {
            path: n.path.clone(),
            what: n.el.name.clone(),
        });
    }
    *slot = Some(v);
    Ok(())
}

fn required<T>(slot: Option<T>, parent: &N<'_>, name: &str) -> R<T> {
    slot.ok_or_else(|| parent.missing(format!("element {name}")))
}

fn at_least_one<T>(v: Vec<T>, parent: &N<'_>, name: &str) -> R<Vec<T>> {
    if v.is_empty() {
        Err(parent.missing(format!("element {name} (at least one)")))
    } else {
        Ok(v)
    }
}

fn root<'a>(el: &'a XmlElement, ns: &str, name: &str) -> R<N<'a>> {
    let n = N {
        el,
        path: format!("/{}", el.name),
    };
    if !n.is(ns, name) {
        return Err(n.unexpected(&format!("{{{ns}}}{name}")));
    }
    Ok(n)
}

// ---- RID ------------------------------------------------------------------------------------

pub(crate) fn rid(el: &XmlElement) -> R<Rid> {
    let n = root(el, RID_NS, "RID")?;
    let lang = n.req_attr("lang")?.trim().to_string();
    let (mut policy, mut status, mut source) = (None, None, None);
    for c in n.children()? {
        match c.rid() {
            Some("RIDPolicy") => once(&mut policy, &c, rid_policy(&c)?)?,
            Some("RequestStatus") => once(&mut status, &c, request_status(&c)?)?,
            Some("IncidentSource") => once(&mut source, &c, incident_source(&c)?)?,
            _ => return Err(c.unexpected("RIDPolicy, RequestStatus or IncidentSource")),
        }
    }
    if policy.is_none() && status.is_none() && source.is_none() {
        return Err(n.missing("RIDPolicy, RequestStatus or IncidentSource (at least one)"));
    }
    Ok(Rid {
        lang,
        policy,
        request_status: status,
        incident_source: source,
    })
}

fn rid_policy(n: &N<'_>) -> R<RidPolicy> {
    let mut regions = Vec::new();
    let mut node_el = None;
    let mut traffic = Vec::new();
    let mut id = None;
    let mut schema = None;
    for c in n.children()? {
        match (c.rid(), c.iodef()) {
            (Some("PolicyRegion"), _) => regions.push(c.req_enum_attr("region")?),
            (Some("TrafficType"), _) => traffic.push(c.req_enum_attr("type")?),
            (Some("ReportSchema"), _) => once(&mut schema, &c, report_schema(&c)?)?,
            (_, Some("Node")) => once(&mut node_el, &c, node(&c)?)?,
            (_, Some("IncidentID")) => once(&mut id, &c, incident_id(&c)?)?,
            _ => {
                return Err(c.unexpected(
                    "PolicyRegion, iodef:Node, TrafficType, iodef:IncidentID or ReportSchema",
                ));
            }
        }
    }
    Ok(RidPolicy {
        msg_type: n.req_enum_attr("MsgType")?,
        msg_destination: n.req_enum_attr("MsgDestination")?,
        restriction: n.enum_attr("restriction")?,
        regions: at_least_one(regions, n, "PolicyRegion")?,
        node: required(node_el, n, "iodef:Node")?,
        traffic_types: at_least_one(traffic, n, "TrafficType")?,
        incident_id: id,
        report_schema: schema,
    })
}

fn request_status(n: &N<'_>) -> R<RequestStatus> {
    if let Some(c) = n.children()?.into_iter().next() {
        return Err(c.unexpected("no child elements"));
    }
    Ok(RequestStatus {
        authorization: n.req_enum_attr("AuthorizationStatus")?,
        justification: n.enum_attr("Justification")?,
        restriction: n.enum_attr("restriction")?,
    })
}

fn incident_source(n: &N<'_>) -> R<IncidentSource> {
    let mut found = None;
    let mut nodes = Vec::new();
    for c in n.children()? {
        match (c.rid(), c.iodef()) {
            (Some("SourceFound"), _) => {
                let t = c.text()?;
                let v = match t.trim() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(c.invalid("text", &t, "true, false, 1 or 0")),
                };
                once(&mut found, &c, v)?;
            }
            (_, Some("Node")) => nodes.push(node(&c)?),
            _ => return Err(c.unexpected("SourceFound or iodef:Node")),
        }
    }
    Ok(IncidentSource {
        source_found: required(found, n, "SourceFound")?,
        nodes,
        restriction: n.enum_attr("restriction")?,
    })
}

fn report_schema(n: &N<'_>) -> R<ReportSchema> {
    let (mut doc, mut url) = (None, None);
    let mut signatures = Vec::new();
    for c in n.children()? {
        match c.rid() {
            Some("XMLDocument") => once(&mut doc, &c, xml_document(&c)?)?,
            Some("URL") => once(&mut url, &c, c.text()?.trim().to_string())?,
            Some("Signature") => signatures.push(extension(&c)?),
            _ => return Err(c.unexpected("XMLDocument, URL or Signature")),
        }
    }
    Ok(ReportSchema {
        version: n.enum_attr("Version")?,
        xml_schema_id: n.enum_attr("XMLSchemaID")?,
        document: required(doc, n, "XMLDocument")?,
        url,
        signatures,
    })
}

fn xml_document(n: &N<'_>) -> R<XmlDocument> {
    let elements: Vec<&XmlElement> =
        n.el.children
            .iter()
            .filter_map(|c| match c {
                XmlContent::Element(e) => Some(e),
                XmlContent::Text(_) => None,
            })
            .collect();
    let only_space =
        n.el.children
            .iter()
            .all(|c| !matches!(c, XmlContent::Text(t) if !t.trim().is_empty()));
    let payload = match elements.as_slice() {
        [e] if only_space
            && e.namespace.as_deref() == Some(IODEF_NS)
            && e.name == "IODEF-Document" =>
        {
            let c = N {
                el: e,
                path: format!("{}/{}", n.path, e.name),
            };
            Payload::Iodef(Box::new(iodef_document(&c)?))
        }
        _ => Payload::Other(n.el.children.clone()),
    };
    Ok(XmlDocument {
        dtype: n.req_enum_attr("dtype")?,
        meaning: n.attr_string("meaning"),
        formatid: n.attr_string("formatid"),
        restriction: n.enum_attr("restriction")?,
        payload,
    })
}

// ---- IODEF ----------------------------------------------------------------------------------

pub(crate) fn iodef_root(el: &XmlElement) -> R<IodefDocument> {
    iodef_document(&root(el, IODEF_NS, "IODEF-Document")?)
}

fn iodef_document(n: &N<'_>) -> R<IodefDocument> {
    if let Some(v) = n.attr("version")
        && v.trim() != "1.00"
    {
        return Err(n.invalid("attribute version", v, "1.00 (IODEF v1)"));
    }
    let mut incidents = Vec::new();
    for c in n.children()? {
        match c.iodef() {
            Some("Incident") => incidents.push(incident(&c)?),
            _ => return Err(c.unexpected("iodef:Incident")),
        }
    }
    Ok(IodefDocument {
        lang: n.req_attr("lang")?.trim().to_string(),
        formatid: n.attr_string("formatid"),
        incidents: at_least_one(incidents, n, "Incident")?,
    })
}

fn ml(n: &N<'_>) -> R<MlString> {
    Ok(MlString {
        text: n.text()?,
        lang: n.attr_string("lang"),
    })
}

fn extension(n: &N<'_>) -> R<Extension> {
    Ok(Extension {
        dtype: n.req_enum_attr("dtype")?,
        meaning: n.attr_string("meaning"),
        formatid: n.attr_string("formatid"),
        restriction: n.enum_attr("restriction")?,
        content: n.el.children.clone(),
    })
}

fn incident(n: &N<'_>) -> R<Incident> {
    let (mut id, mut detect, mut start, mut end, mut report, mut history) =
        (None, None, None, None, None, None);
    let (mut descriptions, mut assessments, mut contacts, mut event_data, mut additional) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in n.children()? {
        match c.iodef() {
            Some("IncidentID") => once(&mut id, &c, incident_id(&c)?)?,
            Some("DetectTime") => once(&mut detect, &c, c.time()?)?,
            Some("StartTime") => once(&mut start, &c, c.time()?)?,
            Some("EndTime") => once(&mut end, &c, c.time()?)?,
            Some("ReportTime") => once(&mut report, &c, c.time()?)?,
            Some("Description") => descriptions.push(ml(&c)?),
            Some("Assessment") => assessments.push(assessment(&c)?),
            Some("Contact") => contacts.push(contact(&c)?),
            Some("EventData") => event_data.push(event(&c)?),
            Some("History") => once(&mut history, &c, hist(&c)?)?,
            Some("AdditionalData") => additional.push(extension(&c)?),
            _ if c.skippable() => {}
            _ => return Err(c.unexpected("a child of iodef:Incident")),
        }
    }
    Ok(Incident {
        purpose: n.req_enum_attr("purpose")?,
        lang: n.attr_string("lang"),
        restriction: n.enum_attr("restriction")?,
        incident_id: required(id, n, "IncidentID")?,
        detect_time: detect,
        start_time: start,
        end_time: end,
        report_time: required(report, n, "ReportTime")?,
        descriptions,
        assessments: at_least_one(assessments, n, "Assessment")?,
        contacts: at_least_one(contacts, n, "Contact")?,
        event_data,
        history,
        additional_data: additional,
    })
}

fn incident_id(n: &N<'_>) -> R<IncidentId> {
    Ok(IncidentId {
        name: n.req_attr("name")?.to_string(),
        instance: n.attr_string("instance"),
        restriction: n.enum_attr("restriction")?,
        id: n.text()?,
    })
}

fn assessment(n: &N<'_>) -> R<Assessment> {
    let mut a = Assessment {
        occurrence: n.enum_attr("occurrence")?,
        restriction: n.enum_attr("restriction")?,
        ..Assessment::default()
    };
    let mut confidence = None;
    for c in n.children()? {
        match c.iodef() {
            Some("Impact") => a.impacts.push(Impact {
                impact_type: c.enum_attr("type")?.unwrap_or(ImpactType::Unknown),
                severity: c.enum_attr("severity")?,
                completion: c.enum_attr("completion")?,
                text: ml(&c)?,
            }),
            Some("Counter") => a.counters.push(counter(&c)?),
            Some("Confidence") => {
                let rating = c.req_enum_attr("rating")?;
                let t = c.text()?;
                let value = match t.trim() {
                    "" => None,
                    v => Some(parse_double(v).ok_or_else(|| c.invalid("text", &t, "a number"))?),
                };
                once(&mut confidence, &c, Confidence { rating, value })?;
            }
            Some("AdditionalData") => a.additional_data.push(extension(&c)?),
            _ if c.skippable() => {}
            _ => return Err(c.unexpected("Impact, Counter, Confidence or AdditionalData")),
        }
    }
    a.confidence = confidence;
    Ok(a)
}

fn parse_double(s: &str) -> Option<f64> {
    match s {
        "INF" | "+INF" => Some(f64::INFINITY),
        "-INF" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        s if s.eq_ignore_ascii_case("inf")
            || s.eq_ignore_ascii_case("infinity")
            || s.eq_ignore_ascii_case("nan") =>
        {
            None
        }
        s => s.parse().ok(),
    }
}

fn counter(n: &N<'_>) -> R<Counter> {
    let t = n.text()?;
    Ok(Counter {
        counter_type: n.req_enum_attr("type")?,
        meaning: n.attr_string("meaning"),
        duration: n.enum_attr("duration")?,
        value: parse_double(t.trim()).ok_or_else(|| n.invalid("text", &t, "an xs:double"))?,
    })
}

fn contact(n: &N<'_>) -> R<Contact> {
    let mut c = Contact {
        role: n.req_enum_attr("role")?,
        contact_type: n.req_enum_attr("type")?,
        restriction: n.enum_attr("restriction")?,
        name: None,
        descriptions: Vec::new(),
        emails: Vec::new(),
        telephones: Vec::new(),
        timezone: None,
        contacts: Vec::new(),
        additional_data: Vec::new(),
    };
    let (mut name, mut tz) = (None, None);
    for k in n.children()? {
        match k.iodef() {
            Some("ContactName") => once(&mut name, &k, ml(&k)?)?,
            Some("Description") => c.descriptions.push(ml(&k)?),
            Some("Email") => c.emails.push(k.text()?),
            Some("Telephone") => c.telephones.push(k.text()?),
            Some("Timezone") => once(&mut tz, &k, k.text()?.trim().to_string())?,
            Some("Contact") => c.contacts.push(contact(&k)?),
            Some("AdditionalData") => c.additional_data.push(extension(&k)?),
            _ if k.skippable() => {}
            _ => return Err(k.unexpected("a child of iodef:Contact")),
        }
    }
    c.name = name;
    c.timezone = tz;
    Ok(c)
}

fn event(n: &N<'_>) -> R<EventData> {
    let mut e = EventData {
        restriction: n.enum_attr("restriction")?,
        ..EventData::default()
    };
    let (mut detect, mut start, mut end, mut assess, mut record) = (None, None, None, None, None);
    for c in n.children()? {
        match c.iodef() {
            Some("Description") => e.descriptions.push(ml(&c)?),
            Some("DetectTime") => once(&mut detect, &c, c.time()?)?,
            Some("StartTime") => once(&mut start, &c, c.time()?)?,
            Some("EndTime") => once(&mut end, &c, c.time()?)?,
            Some("Contact") => e.contacts.push(contact(&c)?),
            Some("Assessment") => once(&mut assess, &c, assessment(&c)?)?,
            Some("Flow") => {
                let mut systems = Vec::new();
                for s in c.children()? {
                    match s.iodef() {
                        Some("System") => systems.push(system(&s)?),
                        _ => return Err(s.unexpected("iodef:System")),
                    }
                }
                e.flows.push(Flow {
                    systems: at_least_one(systems, &c, "System")?,
                });
            }
            Some("Expectation") => e.expectations.push(expectation(&c)?),
            Some("Record") => once(&mut record, &c, rec(&c)?)?,
            Some("EventData") => e.event_data.push(event(&c)?),
            Some("AdditionalData") => e.additional_data.push(extension(&c)?),
            _ if c.skippable() => {}
            _ => return Err(c.unexpected("a child of iodef:EventData")),
        }
    }
    e.detect_time = detect;
    e.start_time = start;
    e.end_time = end;
    e.assessment = assess;
    e.record = record;
    Ok(e)
}

fn expectation(n: &N<'_>) -> R<Expectation> {
    let mut x = Expectation::new(n.enum_attr("action")?.unwrap_or(Action::Other));
    x.severity = n.enum_attr("severity")?;
    x.restriction = n.enum_attr("restriction")?;
    let (mut start, mut end, mut who) = (None, None, None);
    for c in n.children()? {
        match c.iodef() {
            Some("Description") => x.descriptions.push(ml(&c)?),
            Some("StartTime") => once(&mut start, &c, c.time()?)?,
            Some("EndTime") => once(&mut end, &c, c.time()?)?,
            Some("Contact") => once(&mut who, &c, contact(&c)?)?,
            _ => return Err(c.unexpected("Description, StartTime, EndTime or Contact")),
        }
    }
    x.start_time = start;
    x.end_time = end;
    x.contact = who;
    Ok(x)
}

fn rec(n: &N<'_>) -> R<Record> {
    let mut data = Vec::new();
    for c in n.children()? {
        match c.iodef() {
            Some("RecordData") => {
                let mut d = RecordData {
                    restriction: c.enum_attr("restriction")?,
                    ..RecordData::default()
                };
                let mut dt = None;
                for k in c.children()? {
                    match k.iodef() {
                        Some("DateTime") => once(&mut dt, &k, k.time()?)?,
                        Some("Description") => d.descriptions.push(ml(&k)?),
                        Some("RecordItem") => d.items.push(extension(&k)?),
                        Some("AdditionalData") => d.additional_data.push(extension(&k)?),
                        _ if k.skippable() => {}
                        _ => return Err(k.unexpected("a child of iodef:RecordData")),
                    }
                }
                d.date_time = dt;
                d.items = at_least_one(d.items, &c, "RecordItem")?;
                data.push(d);
            }
            _ => return Err(c.unexpected("iodef:RecordData")),
        }
    }
    Ok(Record {
        restriction: n.enum_attr("restriction")?,
        data: at_least_one(data, n, "RecordData")?,
    })
}

fn hist(n: &N<'_>) -> R<History> {
    let mut items = Vec::new();
    for c in n.children()? {
        match c.iodef() {
            Some("HistoryItem") => {
                let (mut dt, mut id, mut who) = (None, None, None);
                let (mut descriptions, mut additional) = (Vec::new(), Vec::new());
                for k in c.children()? {
                    match k.iodef() {
                        Some("DateTime") => once(&mut dt, &k, k.time()?)?,
                        Some("IncidentID") => once(&mut id, &k, incident_id(&k)?)?,
                        Some("Contact") => once(&mut who, &k, contact(&k)?)?,
                        Some("Description") => descriptions.push(ml(&k)?),
                        Some("AdditionalData") => additional.push(extension(&k)?),
                        _ => return Err(k.unexpected("a child of iodef:HistoryItem")),
                    }
                }
                items.push(HistoryItem {
                    action: c.req_enum_attr("action")?,
                    restriction: c.enum_attr("restriction")?,
                    date_time: required(dt, &c, "DateTime")?,
                    incident_id: id,
                    contact: who,
                    descriptions,
                    additional_data: additional,
                });
            }
            _ => return Err(c.unexpected("iodef:HistoryItem")),
        }
    }
    Ok(History {
        restriction: n.enum_attr("restriction")?,
        items: at_least_one(items, n, "HistoryItem")?,
    })
}

fn system(n: &N<'_>) -> R<System> {
    let mut node_el = None;
    let (mut services, mut counters, mut descriptions, mut additional) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in n.children()? {
        match c.iodef() {
            Some("Node") => once(&mut node_el, &c, node(&c)?)?,
            Some("Service") => services.push(service(&c)?),
            Some("Counter") => counters.push(counter(&c)?),
            Some("Description") => descriptions.push(ml(&c)?),
            Some("AdditionalData") => additional.push(extension(&c)?),
            _ if c.skippable() => {}
            _ => return Err(c.unexpected("a child of iodef:System")),
        }
    }
    Ok(System {
        category: n.enum_attr("category")?,
        spoofed: n.enum_attr("spoofed")?,
        interface: n.attr_string("interface"),
        restriction: n.enum_attr("restriction")?,
        node: required(node_el, n, "Node")?,
        services,
        counters,
        descriptions,
        additional_data: additional,
    })
}

fn service(n: &N<'_>) -> R<Service> {
    let proto = n.req_attr("ip_protocol")?;
    let ip_protocol = proto.trim().parse().map_err(|_| {
        n.invalid(
            "attribute ip_protocol",
            proto,
            "an IP protocol number 0..=255",
        )
    })?;
    let mut ports = None;
    for c in n.children()? {
        match c.iodef() {
            Some("Port") => once(&mut ports, &c, Ports::Port(c.parsed("a port 0..=65535")?))?,
            Some("Portlist") => once(&mut ports, &c, portlist(&c)?)?,
            _ if c.skippable() => {}
            _ => return Err(c.unexpected("Port or Portlist")),
        }
    }
    Ok(Service { ip_protocol, ports })
}

fn portlist(n: &N<'_>) -> R<Ports> {
    let t = n.text()?;
    let bad = || n.invalid("text", &t, "ports and ranges like 53,123,1000-2000");
    let mut out = Vec::new();
    for part in t.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u16 = a.parse().map_err(|_| bad())?;
        let b: u16 = b.parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        out.push((a, b));
    }
    Ok(Ports::List(out))
}

fn node(n: &N<'_>) -> R<Node> {
    let mut out = Node::default();
    let mut dt = None;
    for c in n.children()? {
        match c.iodef() {
            Some("NodeName") => out.names.push(ml(&c)?),
            Some("Address") => {
                let vlan_num = match c.attr("vlan-num") {
                    None => None,
                    Some(v) => Some(
                        v.trim()
                            .parse()
                            .map_err(|_| c.invalid("attribute vlan-num", v, "an integer"))?,
                    ),
                };
                out.addresses.push(Address {
                    category: c
                        .enum_attr("category")?
                        .unwrap_or(AddressCategory::Ipv4Addr),
                    vlan_name: c.attr_string("vlan-name"),
                    vlan_num,
                    value: c.text()?,
                });
            }
            Some("DateTime") => once(&mut dt, &c, c.time()?)?,
            Some("Counter") => out.counters.push(counter(&c)?),
            _ if c.skippable() => {}
            _ => return Err(c.unexpected("NodeName, Address, DateTime or Counter")),
        }
    }
    out.date_time = dt;
    Ok(out)
}
