//! Model to XML text.
//!
//! Contract: output is one compact UTF-8 document (XML declaration, no indentation, so
//! mixed content and signed parts are not disturbed), RID elements prefixed `iodef-rid:` and
//! IODEF elements `iodef:` with both namespaces declared on the root, elements in the schemas'
//! sequence order, text and attribute values escaped so that every string reads back
//! unchanged (`&#13;` for CR, `&#9;`/`&#10;` in attributes). Foreign elements in extension content
//! get generated prefixes (`x1`, `x2`, ...) declared where first used. Characters XML 1.0 cannot
//! carry at all (most C0 controls) are replaced by U+FFFD.

use pharos_model::Timestamp;

use crate::enums::XmlEnum;
use crate::iodef::*;
use crate::rid::*;
use crate::xml::{XmlContent, XmlElement};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Renders a time as `xs:dateTime` in UTC (`Z`), with fractional seconds only when present.
pub(crate) fn format_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// An XML writer with one pending start tag and the namespace bindings in scope.
pub(crate) struct Writer {
    out: String,
    /// Open elements: (qualified name, number of scope bindings it declared).
    open: Vec<(String, usize)>,
    /// (prefix, namespace) in scope, innermost last.
    scope: Vec<(String, String)>,
    pending: bool,
    generated: usize,
}

fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' if !attr => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            out: String::with_capacity(4096),
            open: Vec::new(),
            scope: Vec::new(),
            pending: false,
            generated: 0,
        }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }

    fn close_pending(&mut self) {
        if self.pending {
            self.out.push('>');
            self.pending = false;
        }
    }

    /// Opens `<qname` (attributes may follow until the next child, text or end).
    pub(crate) fn start(&mut self, qname: &str) {
        self.close_pending();
        self.out.push('<');
        self.out.push_str(qname);
        self.open.push((qname.to_string(), 0));
        self.pending = true;
    }

    /// Declares `xmlns:prefix="ns"` on the open start tag.
    pub(crate) fn declare(&mut self, prefix: &str, ns: &str) {
        self.attr(&format!("xmlns:{prefix}"), ns);
        self.scope.push((prefix.to_string(), ns.to_string()));
        if let Some(top) = self.open.last_mut() {
            top.1 += 1;
        }
    }

    pub(crate) fn attr(&mut self, name: &str, value: &str) {
        debug_assert!(self.pending);
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        escape_into(&mut self.out, value, true);
        self.out.push('"');
    }

    pub(crate) fn attr_opt(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.attr(name, v);
        }
    }

    /// `name="value"` and, for an extension value, `ext-name="..."`.
    pub(crate) fn attr_enum<E: XmlEnum>(&mut self, name: &str, value: &E) {
        self.attr(name, value.xml_value());
        if let Some(ext) = value.xml_ext() {
            self.attr(&format!("ext-{name}"), ext);
        }
    }

    pub(crate) fn attr_enum_opt<E: XmlEnum>(&mut self, name: &str, value: Option<&E>) {
        if let Some(v) = value {
            self.attr_enum(name, v);
        }
    }

    pub(crate) fn text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.close_pending();
        escape_into(&mut self.out, s, false);
    }

    /// Closes the innermost open element (`/>` when it has no content).
    pub(crate) fn end(&mut self) {
        let Some((name, declared)) = self.open.pop() else {
            return;
        };
        for _ in 0..declared {
            self.scope.pop();
        }
        if self.pending {
            self.out.push_str("/>");
            self.pending = false;
        } else {
            self.out.push_str("</");
            self.out.push_str(&name);
            self.out.push('>');
        }
    }

    /// `<qname>text</qname>`.
    pub(crate) fn leaf(&mut self, qname: &str, text: &str) {
        self.start(qname);
        self.text(text);
        self.end();
    }

    fn prefix_for(&self, ns: &str) -> Option<String> {
        // the innermost binding of a prefix wins; a prefix is usable if its innermost binding
        // is still `ns`
        for (i, (p, n)) in self.scope.iter().enumerate().rev() {
            if n == ns && !self.scope[i + 1..].iter().any(|(q, _)| q == p) {
                return Some(p.clone());
            }
        }
        None
    }

    /// Writes a foreign element, declaring generated prefixes where needed.
    pub(crate) fn element(&mut self, el: &XmlElement) {
        let mut declare: Vec<(String, String)> = Vec::new();
        let prefix = |w: &mut Self, ns: &str, declare: &mut Vec<(String, String)>| {
            if ns == XML_NS {
                return "xml".to_string();
            }
            if let Some(p) = w.prefix_for(ns) {
                return p;
            }
            if let Some((p, _)) = declare.iter().find(|(_, n)| n == ns) {
                return p.clone();
            }
            w.generated += 1;
            let p = format!("x{}", w.generated);
            declare.push((p.clone(), ns.to_string()));
            p
        };
        let qname = match &el.namespace {
            Some(ns) => format!("{}:{}", prefix(self, ns, &mut declare), el.name),
            None => el.name.clone(),
        };
        let attrs: Vec<(String, &str)> = el
            .attributes
            .iter()
            .map(|a| {
                let n = match &a.namespace {
                    Some(ns) => format!("{}:{}", prefix(self, ns, &mut declare), a.name),
                    None => a.name.clone(),
                };
                (n, a.value.as_str())
            })
            .collect();
        self.start(&qname);
        for (p, ns) in &declare {
            self.declare(p, ns);
        }
        for (n, v) in attrs {
            self.attr(&n, v);
        }
        self.content(&el.children);
        self.end();
    }

    pub(crate) fn content(&mut self, content: &[XmlContent]) {
        for c in content {
            match c {
                XmlContent::Text(t) => self.text(t),
                XmlContent::Element(e) => self.element(e),
            }
        }
    }
}

// ---- RID ------------------------------------------------------------------------------------

pub(crate) fn rid(w: &mut Writer, r: &Rid) {
    w.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w.start("iodef-rid:RID");
    w.declare("iodef-rid", RID_NS);
    w.declare("iodef", IODEF_NS);
    w.attr("lang", &r.lang);
    if let Some(p) = &r.policy {
        policy(w, p);
    }
    if let Some(s) = &r.request_status {
        w.start("iodef-rid:RequestStatus");
        w.attr_enum("AuthorizationStatus", &s.authorization);
        w.attr_enum_opt("Justification", s.justification.as_ref());
        w.attr_enum_opt("restriction", s.restriction.as_ref());
        w.end();
    }
    if let Some(s) = &r.incident_source {
        w.start("iodef-rid:IncidentSource");
        w.attr_enum_opt("restriction", s.restriction.as_ref());
        w.leaf(
            "iodef-rid:SourceFound",
            if s.source_found { "true" } else { "false" },
        );
        for n in &s.nodes {
            node(w, n);
        }
        w.end();
    }
    w.end();
}

fn policy(w: &mut Writer, p: &RidPolicy) {
    w.start("iodef-rid:RIDPolicy");
    w.attr_enum("MsgType", &p.msg_type);
    w.attr_enum("MsgDestination", &p.msg_destination);
    w.attr_enum_opt("restriction", p.restriction.as_ref());
    for r in &p.regions {
        w.start("iodef-rid:PolicyRegion");
        w.attr_enum("region", r);
        w.end();
    }
    node(w, &p.node);
    for t in &p.traffic_types {
        w.start("iodef-rid:TrafficType");
        w.attr_enum("type", t);
        w.end();
    }
    if let Some(id) = &p.incident_id {
        incident_id(w, id);
    }
    if let Some(rs) = &p.report_schema {
        w.start("iodef-rid:ReportSchema");
        w.attr_enum_opt("Version", rs.version.as_ref());
        w.attr_enum_opt("XMLSchemaID", rs.xml_schema_id.as_ref());
        let d = &rs.document;
        w.start("iodef-rid:XMLDocument");
        w.attr_enum("dtype", &d.dtype);
        w.attr_opt("meaning", d.meaning.as_deref());
        w.attr_opt("formatid", d.formatid.as_deref());
        w.attr_enum_opt("restriction", d.restriction.as_ref());
        match &d.payload {
            Payload::Iodef(doc) => iodef_document(w, doc, false),
            Payload::Other(c) => w.content(c),
        }
        w.end();
        if let Some(u) = &rs.url {
            w.leaf("iodef-rid:URL", u);
        }
        for s in &rs.signatures {
            extension(w, "iodef-rid:Signature", s);
        }
        w.end();
    }
    w.end();
}

// ---- IODEF ----------------------------------------------------------------------------------

/// `standalone`: declare the namespace and write an XML declaration (a document of its own).
pub(crate) fn iodef_document(w: &mut Writer, d: &IodefDocument, standalone: bool) {
    if standalone {
        w.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    w.start("iodef:IODEF-Document");
    if standalone {
        w.declare("iodef", IODEF_NS);
    }
    w.attr("version", "1.00");
    w.attr("lang", &d.lang);
    w.attr_opt("formatid", d.formatid.as_deref());
    for i in &d.incidents {
        incident(w, i);
    }
    w.end();
}

fn time(w: &mut Writer, qname: &str, t: Option<&Timestamp>) {
    if let Some(t) = t {
        w.leaf(qname, &format_time(t));
    }
}

fn ml(w: &mut Writer, qname: &str, s: &MlString) {
    w.start(qname);
    w.attr_opt("lang", s.lang.as_deref());
    w.text(&s.text);
    w.end();
}

fn descriptions(w: &mut Writer, ds: &[MlString]) {
    for d in ds {
        ml(w, "iodef:Description", d);
    }
}

fn additional(w: &mut Writer, ads: &[Extension]) {
    for a in ads {
        extension(w, "iodef:AdditionalData", a);
    }
}

fn extension(w: &mut Writer, qname: &str, e: &Extension) {
    w.start(qname);
    w.attr_enum("dtype", &e.dtype);
    w.attr_opt("meaning", e.meaning.as_deref());
    w.attr_opt("formatid", e.formatid.as_deref());
    w.attr_enum_opt("restriction", e.restriction.as_ref());
    w.content(&e.content);
    w.end();
}

fn incident(w: &mut Writer, i: &Incident) {
    w.start("iodef:Incident");
    w.attr_enum("purpose", &i.purpose);
    w.attr_opt("lang", i.lang.as_deref());
    w.attr_enum_opt("restriction", i.restriction.as_ref());
    incident_id(w, &i.incident_id);
    time(w, "iodef:DetectTime", i.detect_time.as_ref());
    time(w, "iodef:StartTime", i.start_time.as_ref());
    time(w, "iodef:EndTime", i.end_time.as_ref());
    time(w, "iodef:ReportTime", Some(&i.report_time));
    descriptions(w, &i.descriptions);
    for a in &i.assessments {
        assessment(w, a);
    }
    for c in &i.contacts {
        contact(w, c);
    }
    for e in &i.event_data {
        event_data(w, e);
    }
    if let Some(h) = &i.history {
        w.start("iodef:History");
        w.attr_enum_opt("restriction", h.restriction.as_ref());
        for it in &h.items {
            w.start("iodef:HistoryItem");
            w.attr_enum_opt("restriction", it.restriction.as_ref());
            w.attr_enum("action", &it.action);
            time(w, "iodef:DateTime", Some(&it.date_time));
            if let Some(id) = &it.incident_id {
                incident_id(w, id);
            }
            if let Some(c) = &it.contact {
                contact(w, c);
            }
            descriptions(w, &it.descriptions);
            additional(w, &it.additional_data);
            w.end();
        }
        w.end();
    }
    additional(w, &i.additional_data);
    w.end();
}

fn incident_id(w: &mut Writer, id: &IncidentId) {
    w.start("iodef:IncidentID");
    w.attr("name", &id.name);
    w.attr_opt("instance", id.instance.as_deref());
    w.attr_enum_opt("restriction", id.restriction.as_ref());
    w.text(&id.id);
    w.end();
}

fn assessment(w: &mut Writer, a: &Assessment) {
    w.start("iodef:Assessment");
    w.attr_enum_opt("occurrence", a.occurrence.as_ref());
    w.attr_enum_opt("restriction", a.restriction.as_ref());
    for i in &a.impacts {
        w.start("iodef:Impact");
        w.attr_opt("lang", i.text.lang.as_deref());
        w.attr_enum_opt("severity", i.severity.as_ref());
        w.attr_enum_opt("completion", i.completion.as_ref());
        w.attr_enum("type", &i.impact_type);
        w.text(&i.text.text);
        w.end();
    }
    for c in &a.counters {
        counter(w, c);
    }
    if let Some(c) = &a.confidence {
        w.start("iodef:Confidence");
        w.attr_enum("rating", &c.rating);
        if let Some(v) = c.value {
            w.text(&v.to_string());
        }
        w.end();
    }
    additional(w, &a.additional_data);
    w.end();
}

fn counter(w: &mut Writer, c: &Counter) {
    w.start("iodef:Counter");
    w.attr_enum("type", &c.counter_type);
    w.attr_opt("meaning", c.meaning.as_deref());
    w.attr_enum_opt("duration", c.duration.as_ref());
    w.text(&format_double(c.value));
    w.end();
}

/// `xs:double` spelling: Rust's shortest round-trip form, with `INF`/`-INF`/`NaN`.
pub(crate) fn format_double(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "INF".into() } else { "-INF".into() }
    } else {
        v.to_string()
    }
}

fn contact(w: &mut Writer, c: &Contact) {
    w.start("iodef:Contact");
    w.attr_enum("role", &c.role);
    w.attr_enum("type", &c.contact_type);
    w.attr_enum_opt("restriction", c.restriction.as_ref());
    if let Some(n) = &c.name {
        ml(w, "iodef:ContactName", n);
    }
    descriptions(w, &c.descriptions);
    for e in &c.emails {
        w.leaf("iodef:Email", e);
    }
    for t in &c.telephones {
        w.leaf("iodef:Telephone", t);
    }
    if let Some(tz) = &c.timezone {
        w.leaf("iodef:Timezone", tz);
    }
    for sub in &c.contacts {
        contact(w, sub);
    }
    additional(w, &c.additional_data);
    w.end();
}

fn event_data(w: &mut Writer, e: &EventData) {
    w.start("iodef:EventData");
    w.attr_enum_opt("restriction", e.restriction.as_ref());
    descriptions(w, &e.descriptions);
    time(w, "iodef:DetectTime", e.detect_time.as_ref());
    time(w, "iodef:StartTime", e.start_time.as_ref());
    time(w, "iodef:EndTime", e.end_time.as_ref());
    for c in &e.contacts {
        contact(w, c);
    }
    if let Some(a) = &e.assessment {
        assessment(w, a);
    }
    for f in &e.flows {
        w.start("iodef:Flow");
        for s in &f.systems {
            system(w, s);
        }
        w.end();
    }
    for x in &e.expectations {
        w.start("iodef:Expectation");
        w.attr_enum_opt("restriction", x.restriction.as_ref());
        w.attr_enum_opt("severity", x.severity.as_ref());
        w.attr_enum("action", &x.action);
        descriptions(w, &x.descriptions);
        time(w, "iodef:StartTime", x.start_time.as_ref());
        time(w, "iodef:EndTime", x.end_time.as_ref());
        if let Some(c) = &x.contact {
            contact(w, c);
        }
        w.end();
    }
    if let Some(r) = &e.record {
        w.start("iodef:Record");
        w.attr_enum_opt("restriction", r.restriction.as_ref());
        for d in &r.data {
            w.start("iodef:RecordData");
            w.attr_enum_opt("restriction", d.restriction.as_ref());
            time(w, "iodef:DateTime", d.date_time.as_ref());
            descriptions(w, &d.descriptions);
            for it in &d.items {
                extension(w, "iodef:RecordItem", it);
            }
            additional(w, &d.additional_data);
            w.end();
        }
        w.end();
    }
    for sub in &e.event_data {
        event_data(w, sub);
    }
    additional(w, &e.additional_data);
    w.end();
}

fn system(w: &mut Writer, s: &System) {
    w.start("iodef:System");
    w.attr_enum_opt("restriction", s.restriction.as_ref());
    w.attr_opt("interface", s.interface.as_deref());
    w.attr_enum_opt("category", s.category.as_ref());
    w.attr_enum_opt("spoofed", s.spoofed.as_ref());
    node(w, &s.node);
    for sv in &s.services {
        w.start("iodef:Service");
        w.attr("ip_protocol", &sv.ip_protocol.to_string());
        match &sv.ports {
            Some(Ports::Port(p)) => w.leaf("iodef:Port", &p.to_string()),
            Some(Ports::List(l)) => {
                let s: Vec<String> = l
                    .iter()
                    .map(|&(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect();
                w.leaf("iodef:Portlist", &s.join(","));
            }
            None => {}
        }
        w.end();
    }
    for c in &s.counters {
        counter(w, c);
    }
    descriptions(w, &s.descriptions);
    additional(w, &s.additional_data);
    w.end();
}

fn node(w: &mut Writer, n: &Node) {
    w.start("iodef:Node");
    for name in &n.names {
        ml(w, "iodef:NodeName", name);
    }
    for a in &n.addresses {
        w.start("iodef:Address");
        w.attr_enum("category", &a.category);
        w.attr_opt("vlan-name", a.vlan_name.as_deref());
        if let Some(v) = a.vlan_num {
            w.attr("vlan-num", &v.to_string());
        }
        w.text(&a.value);
        w.end();
    }
    time(w, "iodef:DateTime", n.date_time.as_ref());
    for c in &n.counters {
        counter(w, c);
    }
    w.end();
}
