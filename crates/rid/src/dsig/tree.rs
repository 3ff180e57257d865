//! A prefix-keeping element tree for canonicalization, read under the same [`Limits`] as the
//! codec's reader.
//!
//! Contract: [`read`] refuses what `xml::read_tree` refuses (size, encoding, DOCTYPE, entities,
//! unbound prefixes, depth, element and attribute counts, attribute length) and in addition keeps
//! what exclusive canonicalization needs and the codec's tree drops: each element's and
//! attribute's prefix, processing instructions, and CDATA folded into text. Text is
//! line-end-normalised and unescaped; attribute values are normalised as an XML 1.0 parser
//! without a DTD normalises them. Comments are dropped (the canonical form used here omits them).

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::{QName, ResolveResult};

use crate::xml::{check_declaration, is_xml_char, reference_char};
use crate::{Limits, ParseError};

/// An element with its prefix and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    /// Prefix as written (`None`: unprefixed).
    pub prefix: Option<String>,
    /// Local name.
    pub local: String,
    /// Namespace name (`None`: no namespace).
    pub ns: Option<String>,
    /// Attributes other than namespace declarations, in document order.
    pub attrs: Vec<Attr>,
    /// Content in document order.
    pub children: Vec<Node>,
}

/// An attribute with its prefix and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    /// Prefix as written (`None`: unprefixed).
    pub prefix: Option<String>,
    /// Local name.
    pub local: String,
    /// Namespace name (`None` for an unprefixed attribute).
    pub ns: Option<String>,
    /// Normalised value.
    pub value: String,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// An element.
    Element(Element),
    /// Character data (adjacent text, CDATA and references merged).
    Text(String),
    /// A processing instruction: target and data (leading whitespace removed).
    Pi(String, String),
}

/// A document: processing instructions before the root, the root, those after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    /// Processing instructions before the root element.
    pub before: Vec<(String, String)>,
    /// The root element.
    pub root: Element,
    /// Processing instructions after the root element.
    pub after: Vec<(String, String)>,
}

impl Element {
    /// The unprefixed attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.local == name)
            .map(|a| a.value.as_str())
    }

    /// Whether this is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }

    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The element at `path` (child element indices into `children`), from this one.
    pub fn at(&self, path: &[usize]) -> Option<&Element> {
        let mut el = self;
        for &i in path {
            match el.children.get(i) {
                Some(Node::Element(e)) => el = e,
                _ => return None,
            }
        }
        Some(el)
    }

    /// All text children concatenated.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|c| match c {
                Node::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Visits every element (this one first) in document order with its path, depth-first.
    /// Iterative, so deep trees cannot overflow the stack.
    pub fn walk(&self, mut f: impl FnMut(&[usize], &Element)) {
        let mut stack: Vec<(Vec<usize>, &Element)> = vec![(Vec::new(), self)];
        while let Some((path, el)) = stack.pop() {
            f(&path, el);
            for (i, c) in el.children.iter().enumerate().rev() {
                if let Node::Element(e) = c {
                    let mut p = path.clone();
                    p.push(i);
                    stack.push((p, e));
                }
            }
        }
    }
}

fn path_of(stack: &[Element]) -> String {
    if stack.is_empty() {
        return "/".into();
    }
    let mut s = String::new();
    for e in stack {
        s.push('/');
        s.push_str(&e.local);
    }
    s
}

fn push_text(el: &mut Element, text: &str) {
    if let Some(Node::Text(t)) = el.children.last_mut() {
        t.push_str(text);
    } else {
        el.children.push(Node::Text(text.to_string()));
    }
}

fn resolved(res: ResolveResult<'_>) -> Result<Option<String>, String> {
    match res {
        ResolveResult::Bound(n) => Ok(Some(n.as_ref().to_string())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => Err(format!("namespace prefix {p:?} is not declared")),
    }
}

/// Parses `input` into a [`Document`] under `limits` (see the module contract).
pub(crate) fn read(input: &[u8], limits: &Limits) -> Result<Document, ParseError> {
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
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut elements = 0usize;
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let syntax = |stack: &[Element], e: &dyn std::fmt::Display| ParseError::Syntax {
            path: path_of(stack),
            offset,
            what: e.to_string(),
        };
        let (res, ev) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(syntax(&stack, &e)),
        };
        let ns = resolved(res).map_err(|e| syntax(&stack, &e))?;
        match ev {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(syntax(&stack, &"element after the root element"));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let qname = e.name();
                let local = qname.local_name().as_ref().to_string();
                let prefix = qname.prefix().map(|p| p.as_ref().to_string());
                elements += 1;
                let here = || {
                    let mut p = path_of(&stack);
                    if !stack.is_empty() {
                        p.push('/');
                    }
                    p.push_str(&local);
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
                let mut attrs: Vec<Attr> = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|err| syntax(&stack, &err))?;
                    let key = a.key.as_ref();
                    if a.value.contains('<') {
                        return Err(syntax(
                            &stack,
                            &format!("'<' in the value of attribute {key}"),
                        ));
                    }
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        if a.value.contains(['&', '"', '\t', '\n', '\r', '<']) {
                            return Err(syntax(
                                &stack,
                                &format!(
                                    "namespace name {key} holds a reference, quote or line break"
                                ),
                            ));
                        }
                        continue;
                    }
                    if attrs.len() >= limits.max_attributes {
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
                    let (ans, alocal) = reader.resolver().resolve_attribute(QName(key));
                    let ans = resolved(ans).map_err(|e| syntax(&stack, &e))?;
                    let alocal = alocal.as_ref().to_string();
                    let aprefix = QName(key).prefix().map(|p| p.as_ref().to_string());
                    let value = a
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|err| match err {
                            quick_xml::Error::Escape(
                                quick_xml::escape::EscapeError::UnrecognizedEntity(_, n),
                            ) => ParseError::Entity {
                                path: here(),
                                name: n,
                            },
                            other => syntax(&stack, &format!("attribute {alocal}: {other}")),
                        })?
                        .into_owned();
                    if attrs.iter().any(|b| b.ns == ans && b.local == alocal) {
                        return Err(syntax(
                            &stack,
                            &format!(
                                "attribute {alocal} appears twice (after namespace resolution)"
                            ),
                        ));
                    }
                    attrs.push(Attr {
                        prefix: aprefix,
                        local: alocal,
                        ns: ans,
                        value,
                    });
                }
                let el = Element {
                    prefix,
                    local,
                    ns,
                    attrs,
                    children: Vec::new(),
                };
                if empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
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
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let t = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => push_text(el, &t),
                    None if t.trim_matches([' ', '\t', '\r', '\n']).is_empty() => {}
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
            Event::PI(p) => {
                let target = p.target().to_string();
                let data = p
                    .content()
                    .trim_start_matches([' ', '\t', '\r', '\n'])
                    .replace("\r\n", "\n")
                    .replace('\r', "\n");
                match stack.last_mut() {
                    Some(el) => el.children.push(Node::Pi(target, data)),
                    None if root.is_none() => before.push((target, data)),
                    None => after.push((target, data)),
                }
            }
            Event::Comment(_) => {}
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
    let root = root.ok_or(ParseError::Syntax {
        path: "/".into(),
        offset: text.len(),
        what: "no root element".into(),
    })?;
    Ok(Document {
        before,
        root,
        after,
    })
}
