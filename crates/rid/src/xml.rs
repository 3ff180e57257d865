//! The hostile-input boundary: bytes to a namespace-resolved element tree, under [`Limits`].
//!
//! Contract: [`read_tree`] is the only code that looks at untrusted bytes. It refuses, before
//! building anything larger than the input: more than `max_bytes`, non-UTF-8 input or a declared
//! encoding other than UTF-8, any `<!DOCTYPE` (so no DTD, no entity definitions, no billion
//! laughs), entity references other than the five predefined ones and character references,
//! unbound prefixes, nesting deeper than `max_depth`, more than `max_elements` elements, more
//! than `max_attributes` attributes on one element, attribute values longer than
//! `max_attribute_len`, and anything that is not one well-formed root element. Names are
//! resolved to (namespace, local name): prefixes are the sender's business. Memory is bounded by
//! a small multiple of the input size. The typed decoder then works on the tree.

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::events::attributes::Attribute;
use quick_xml::name::{QName, ResolveResult};

use crate::ParseError;

/// Bounds on what [`Rid::parse`](crate::Rid::parse) accepts. The defaults fit any RID message
/// Pharos expects (a few incidents with example records) with a wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document in bytes (default 8 MiB). Transports should refuse larger bodies before
    /// reading them whole.
    pub max_bytes: usize,
    /// Deepest element nesting (default 64; a full TraceRequest nests about 14 deep).
    pub max_depth: usize,
    /// Most elements in one document (default 100 000).
    pub max_elements: usize,
    /// Most attributes on one element (default 64).
    pub max_attributes: usize,
    /// Longest attribute value in bytes, before unescaping (default 64 KiB).
    pub max_attribute_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 8 << 20,
            max_depth: 64,
            max_elements: 100_000,
            max_attributes: 64,
            max_attribute_len: 64 << 10,
        }
    }
}

/// An XML element of any namespace, as found in `ExtensionType` content (RecordItem,
/// AdditionalData, Signature, a non-IODEF XMLDocument). Prefixes are not kept: emission picks
/// its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XmlElement {
    /// Namespace name (`None`: no namespace).
    pub namespace: Option<String>,
    /// Local name.
    pub name: String,
    /// Attributes other than namespace declarations, in document order.
    pub attributes: Vec<XmlAttribute>,
    /// Children in document order (adjacent text is merged).
    pub children: Vec<XmlContent>,
}

/// An attribute of an [`XmlElement`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XmlAttribute {
    /// Namespace name (`None` for an unprefixed attribute).
    pub namespace: Option<String>,
    /// Local name.
    pub name: String,
    /// The value, unescaped and normalised.
    pub value: String,
}

/// A child of an element: an element or text (CDATA sections are text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum XmlContent {
    /// An element.
    Element(XmlElement),
    /// Character data.
    Text(String),
}

impl XmlElement {
    /// The unprefixed attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// `{namespace}name`, for messages.
    pub fn expanded_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{{{ns}}}{}", self.name),
            None => self.name.clone(),
        }
    }
}

fn path_of(stack: &[XmlElement]) -> String {
    if stack.is_empty() {
        return "/".into();
    }
    let mut s = String::new();
    for e in stack {
        s.push('/');
        s.push_str(&e.name);
    }
    s
}

fn push_text(el: &mut XmlElement, text: &str) {
    if let Some(XmlContent::Text(t)) = el.children.last_mut() {
        t.push_str(text);
    } else {
        el.children.push(XmlContent::Text(text.to_string()));
    }
}

/// XML 1.0 `Char`: tab, newline, carriage return and everything from U+0020 except the
/// surrogates, U+FFFE and U+FFFF.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// The character a reference stands for (`&#x41;`, `&amp;`): a character reference to an XML 1.0
/// `Char`, or one of the five predefined entities; anything else is refused, naming `path`.
pub(crate) fn reference_char(
    r: &quick_xml::events::BytesRef<'_>,
    path: impl Fn() -> String,
    offset: usize,
) -> Result<char, ParseError> {
    let syntax = |what: String| ParseError::Syntax {
        path: path(),
        offset,
        what,
    };
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(c),
            Ok(Some(c)) => Err(syntax(format!(
                "reference to U+{:04X}, not allowed in XML 1.0",
                c as u32
            ))),
            Ok(None) => Err(syntax("bad character reference".into())),
            Err(e) => Err(syntax(e.to_string())),
        };
    }
    let name = r.xml10_content().into_owned();
    predefined(&name).ok_or_else(|| ParseError::Entity { path: path(), name })
}

/// Refuses an XML declaration whose encoding is not UTF-8.
pub(crate) fn check_declaration(
    d: &quick_xml::events::BytesDecl<'_>,
    path: impl Fn() -> String,
    offset: usize,
) -> Result<(), ParseError> {
    let Some(enc) = d.encoding() else {
        return Ok(());
    };
    let enc = enc.map_err(|e| ParseError::Syntax {
        path: path(),
        offset,
        what: e.to_string(),
    })?;
    if enc.eq_ignore_ascii_case("utf-8") || enc.eq_ignore_ascii_case("utf8") {
        return Ok(());
    }
    Err(ParseError::Encoding {
        what: format!("declared encoding {enc:?} (only UTF-8 is accepted)"),
        offset,
    })
}

/// Parses `input` into its root element under `limits` (see the module contract).
pub(crate) fn read_tree(input: &[u8], limits: &Limits) -> Result<XmlElement, ParseError> {
    if input.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: input.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|e| ParseError::Encoding {
        what: "invalid UTF-8".into(),
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some((offset, c)) = text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(ParseError::Encoding {
            what: format!("character U+{:04X} is not allowed in XML 1.0", c as u32),
            offset,
        });
    }
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_comments = true;
    let mut stack: Vec<XmlElement> = Vec::new();
    let mut root: Option<XmlElement> = None;
    let mut elements = 0usize;
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let syntax = |stack: &[XmlElement], e: &dyn std::fmt::Display| ParseError::Syntax {
            path: path_of(stack),
            offset,
            what: e.to_string(),
        };
        let (res, ev) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(syntax(&stack, &e)),
        };
        let ns = match res {
            ResolveResult::Bound(n) => Some(n.as_ref().to_string()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(syntax(
                    &stack,
                    &format!("namespace prefix {p:?} is not declared"),
                ));
            }
        };
        match ev {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let name = e.local_name().as_ref().to_string();
                return Err(syntax(
                    &stack,
                    &format!("element {name} after the root element"),
                ));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.local_name().as_ref().to_string();
                elements += 1;
                let here = || {
                    let mut p = path_of(&stack);
                    if !stack.is_empty() {
                        p.push('/');
                    }
                    p.push_str(&name);
                    p
                };
                if elements > limits.max_elements {
                    return Err(ParseError::Limit {
                        path: here(),
                        what: "element count",
                        limit: limits.max_elements,
                    });
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(ParseError::Limit {
                        path: here(),
                        what: "nesting depth",
                        limit: limits.max_depth,
                    });
                }
                let mut attributes = Vec::new();
                for a in e.attributes() {
                    let a: Attribute = a.map_err(|err| syntax(&stack, &err))?;
                    let key = a.key.as_ref();
                    if a.value.contains('<') {
                        return Err(syntax(
                            &stack,
                            &format!("'<' in the value of attribute {key}"),
                        ));
                    }
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        if a.value.contains(['&', '"', '\t', '\n', '\r']) {
                            return Err(syntax(
                                &stack,
                                &format!(
                                    "namespace name {key} holds a reference, quote or line break (not a URI)"
                                ),
                            ));
                        }
                        continue;
                    }
                    if attributes.len() >= limits.max_attributes {
                        return Err(ParseError::Limit {
                            path: here(),
                            what: "attribute count",
                            limit: limits.max_attributes,
                        });
                    }
                    if a.value.len() > limits.max_attribute_len {
                        return Err(ParseError::Limit {
                            path: here(),
                            what: "attribute length",
                            limit: limits.max_attribute_len,
                        });
                    }
                    let (ans, local) = reader.resolver().resolve_attribute(QName(key));
                    let ans = match ans {
                        ResolveResult::Bound(n) => Some(n.as_ref().to_string()),
                        ResolveResult::Unbound => None,
                        ResolveResult::Unknown(p) => {
                            return Err(syntax(
                                &stack,
                                &format!("namespace prefix {p:?} is not declared"),
                            ));
                        }
                    };
                    let local = local.as_ref().to_string();
                    let value = a
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|err| match err {
                            quick_xml::Error::Escape(
                                quick_xml::escape::EscapeError::UnrecognizedEntity(_, n),
                            ) => ParseError::Entity {
                                path: here(),
                                name: n,
                            },
                            other => syntax(&stack, &format!("attribute {local}: {other}")),
                        })?
                        .into_owned();
                    attributes.push(XmlAttribute {
                        namespace: ans,
                        name: local,
                        value,
                    });
                }
                let el = XmlElement {
                    namespace: ns,
                    name,
                    attributes,
                    children: Vec::new(),
                };
                if empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(XmlContent::Element(el)),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(syntax(&stack, &"end tag without a start tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(XmlContent::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let t = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => push_text(el, &t),
                    None if t.trim().is_empty() => {}
                    None => return Err(syntax(&stack, &"text outside the root element")),
                }
            }
            Event::CData(t) => {
                let t = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => push_text(el, &t),
                    None => return Err(syntax(&stack, &"CDATA outside the root element")),
                }
            }
            Event::GeneralRef(r) => {
                let c = reference_char(&r, || path_of(&stack), offset)?;
                match stack.last_mut() {
                    Some(el) => push_text(el, c.encode_utf8(&mut [0u8; 4])),
                    None => return Err(syntax(&stack, &"reference outside the root element")),
                }
            }
            Event::DocType(_) => {
                return Err(ParseError::Doctype {
                    path: path_of(&stack),
                });
            }
            Event::Decl(d) => check_declaration(&d, || path_of(&stack), offset)?,
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Syntax {
            path: path_of(&stack),
            offset: text.len(),
            what: "document ends inside an element".into(),
        });
    }
    root.ok_or(ParseError::Syntax {
        path: "/".into(),
        offset: text.len(),
        what: "no root element".into(),
    })
}
