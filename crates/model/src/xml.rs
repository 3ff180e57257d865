//! NETCONF notification XML (RFC 5277, RFC 7950 XML encoding) for [`Message`].
//!
//! Contract: [`encode_netconf`] emits `<notification>` with `<eventTime>` (the message's event
//! time) and the notification element in the monitoring module's namespace, identityrefs as
//! prefixed values (`i2nsfmi:`, `i2nsfnfi:`, `pharos:` bound on that element) and text escaped;
//! it validates with `yanglint -t nc-notif`. Counters are state data, not a notification: they are
//! emitted as a bare `<i2nsf-counters>` data tree (validates with `yanglint -t data`).
//! [`decode_netconf`] reads either form (and a bare notification element) with quick-xml's
//! namespace-aware reader, then applies exactly the same field mapping as the JSON codec.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{QName, ResolveResult};

use crate::codec::{
    Node, NodeValue, Out, OutScalar, OutValue, Scalar, ScalarKind, format_time, parse_time,
};
use crate::ident::{MONITORING, NSF_FACING, PHAROS, module_of_namespace, namespace_of, prefix_of};
use crate::{Kind, Message, ModelError, cases};

/// Namespace of the NETCONF notification envelope (RFC 5277).
pub const NETCONF_NOTIFICATION_NS: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
/// Deepest nesting accepted on input.
const MAX_DEPTH: usize = 32;

/// Encodes `m` as a NETCONF `<notification>` (counters: a bare `<i2nsf-counters>` data tree).
pub fn encode_netconf(m: &Message) -> String {
    let (top, out) = cases::to_out(m);
    let mut s = String::with_capacity(1024);
    let counters = matches!(m.kind, Kind::Counters(_));
    if !counters {
        s.push_str("<notification xmlns=\"");
        s.push_str(NETCONF_NOTIFICATION_NS);
        s.push_str("\"><eventTime>");
        s.push_str(&format_time(&m.common.event_time));
        s.push_str("</eventTime>");
    }
    s.push('<');
    s.push_str(top);
    for (attr, module) in [
        ("xmlns", MONITORING),
        ("xmlns:i2nsfmi", MONITORING),
        ("xmlns:i2nsfnfi", NSF_FACING),
        ("xmlns:pharos", PHAROS),
    ] {
        s.push_str(&format!(
            " {attr}=\"{}\"",
            namespace_of(module).unwrap_or_default()
        ));
    }
    s.push('>');
    write_children(&mut s, &out, MONITORING);
    s.push_str("</");
    s.push_str(top);
    s.push('>');
    if !counters {
        s.push_str("</notification>");
    }
    s
}

fn open(s: &mut String, o: &Out, parent: &str) {
    s.push('<');
    s.push_str(o.name);
    if o.module != parent {
        s.push_str(&format!(
            " xmlns=\"{}\"",
            namespace_of(o.module).unwrap_or_default()
        ));
    }
    s.push('>');
}

fn close(s: &mut String, o: &Out) {
    s.push_str("</");
    s.push_str(o.name);
    s.push('>');
}

fn scalar(s: &mut String, v: &OutScalar) {
    match v {
        OutScalar::Str(t) => escape_into(s, t),
        OutScalar::Num(n) => s.push_str(&n.to_string()),
        OutScalar::Ident { module, name } => {
            s.push_str(prefix_of(module).unwrap_or(module));
            s.push(':');
            s.push_str(name);
        }
    }
}

fn write_children(s: &mut String, out: &[Out], parent: &str) {
    for o in out {
        match &o.value {
            OutValue::Leaf(v) => {
                open(s, o, parent);
                scalar(s, v);
                close(s, o);
            }
            OutValue::LeafList(vs) => {
                for v in vs {
                    open(s, o, parent);
                    scalar(s, v);
                    close(s, o);
                }
            }
            OutValue::Container(c) => {
                open(s, o, parent);
                write_children(s, c, o.module);
                close(s, o);
            }
            OutValue::List(entries) => {
                for e in entries {
                    open(s, o, parent);
                    write_children(s, e, o.module);
                    close(s, o);
                }
            }
        }
    }
}

/// Escapes text content; CR is written as a character reference so it survives parsing.
fn escape_into(s: &mut String, t: &str) {
    for c in t.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '\r' => s.push_str("&#13;"),
            c => s.push(c),
        }
    }
}

/// An element of the parsed document.
struct El {
    /// Namespace URI, if bound.
    ns: Option<String>,
    local: String,
    children: Vec<El>,
    text: String,
    /// `module:local` when the text is a QName resolving to a known module.
    qualified: Option<String>,
}

fn xml_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::new("", format!("malformed XML: {e}"))
}

/// Parses the whole document into elements, namespace-resolved.
fn parse(s: &str) -> Result<El, ModelError> {
    let mut reader = NsReader::from_str(s);
    let mut stack: Vec<El> = Vec::new();
    let mut root: Option<El> = None;
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(xml_err)?;
        let ns = match res {
            ResolveResult::Bound(n) => Some(n.as_ref().to_string()),
            _ => None,
        };
        match ev {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                return Err(ModelError::new(
                    e.local_name().as_ref().to_string(),
                    "content after the root element",
                ));
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ModelError::new("", "nested too deeply"));
                }
                let local = e.local_name().as_ref().to_string();
                stack.push(El {
                    ns,
                    local,
                    children: Vec::new(),
                    text: String::new(),
                    qualified: None,
                });
            }
            Event::Empty(e) => {
                let local = e.local_name().as_ref().to_string();
                let el = El {
                    ns,
                    local,
                    children: Vec::new(),
                    text: String::new(),
                    qualified: None,
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => match stack.last_mut() {
                Some(el) => el.text.push_str(&t.xml10_content()),
                None if t.xml10_content().trim().is_empty() => {}
                None => return Err(ModelError::new("", "text outside the root element")),
            },
            Event::CData(t) => match stack.last_mut() {
                Some(el) => el.text.push_str(&t.into_inner()),
                None => return Err(ModelError::new("", "text outside the root element")),
            },
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(xml_err)?
                } else {
                    match r.xml10_content().as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    }
                };
                let Some(c) = c else {
                    return Err(ModelError::new(
                        "",
                        format!("unknown entity &{};", r.xml10_content()),
                    ));
                };
                match stack.last_mut() {
                    Some(el) => el.text.push(c),
                    None => return Err(ModelError::new("", "text outside the root element")),
                }
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return Err(xml_err("unexpected end tag"));
                };
                if el.children.is_empty() {
                    let (res, local) = reader.resolver().resolve(QName(el.text.as_str()), true);
                    if let ResolveResult::Bound(n) = res
                        && let Some(module) = module_of_namespace(n.as_ref())
                    {
                        el.qualified = Some(format!("{module}:{}", local.as_ref()));
                    }
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::DocType(_) => return Err(ModelError::new("", "DOCTYPE is not allowed")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(xml_err("unclosed element"));
    }
    root.ok_or_else(|| ModelError::new("", "empty document"))
}

fn module_name(el: &El) -> String {
    match el.ns.as_deref() {
        Some(ns) => module_of_namespace(ns)
            .map(str::to_string)
            .unwrap_or_else(|| ns.to_string()),
        None => String::new(),
    }
}

fn to_nodes(children: Vec<El>) -> Vec<Node> {
    children
        .into_iter()
        .map(|el| {
            let module = module_name(&el);
            let value = if el.children.is_empty() {
                NodeValue::Leaf(Scalar {
                    text: el.text,
                    kind: ScalarKind::Xml,
                    qualified: el.qualified,
                })
            } else {
                if !el.text.trim().is_empty() {
                    // Mixed content: keep it visible as an unknown member.
                    let mut c = to_nodes(el.children);
                    c.push(Node {
                        module: module.clone(),
                        name: "#text".into(),
                        array: None,
                        value: NodeValue::Leaf(Scalar {
                            text: el.text,
                            kind: ScalarKind::Xml,
                            qualified: None,
                        }),
                    });
                    return Node {
                        module,
                        name: el.local,
                        array: None,
                        value: NodeValue::Inner(c),
                    };
                }
                NodeValue::Inner(to_nodes(el.children))
            };
            Node {
                module,
                name: el.local,
                array: None,
                value,
            }
        })
        .collect()
}

/// Decodes a NETCONF `<notification>`, a bare notification element or a bare `<i2nsf-counters>`.
pub fn decode_netconf(s: &str) -> Result<Message, ModelError> {
    let root = parse(s)?;
    let (body, event_time) =
        if root.ns.as_deref() == Some(NETCONF_NOTIFICATION_NS) && root.local == "notification" {
            let mut event_time = None;
            let mut body = None;
            for el in root.children {
                if el.ns.as_deref() == Some(NETCONF_NOTIFICATION_NS) && el.local == "eventTime" {
                    event_time = Some(
                        parse_time(el.text.trim())
                            .map_err(|e| ModelError::new("notification/eventTime", e))?,
                    );
                } else if body.is_some() {
                    return Err(ModelError::new(
                        format!("notification/{}", el.local),
                        "expected one notification element",
                    ));
                } else {
                    body = Some(el);
                }
            }
            let Some(body) = body else {
                return Err(ModelError::new(
                    "notification",
                    "expected a notification element after eventTime",
                ));
            };
            if event_time.is_none() {
                return Err(ModelError::new(
                    "notification/eventTime",
                    "missing mandatory eventTime",
                ));
            }
            (body, event_time)
        } else {
            (root, None)
        };
    if body.ns.as_deref() != namespace_of(MONITORING)
        || !cases::TOP_NAMES.contains(&body.local.as_str())
    {
        return Err(ModelError::new(
            body.local.as_str(),
            format!(
                "unknown top-level element, expected one of {} in namespace {}",
                cases::TOP_NAMES.join(", "),
                namespace_of(MONITORING).unwrap_or_default()
            ),
        ));
    }
    let nodes = to_nodes(body.children);
    cases::from_nodes(&body.local, &nodes, event_time)
}
