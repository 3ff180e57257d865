//! Exclusive XML Canonicalization 1.0, without comments
//! (`http://www.w3.org/2001/10/xml-exc-c14n#`), over an element subtree, optionally minus one
//! descendant subtree (the enveloped-signature transform).
//!
//! Contract: the output is what the W3C recommendation gives for the node-set "the apex element
//! and all its descendants (less comments), less the excluded subtree", with an empty
//! InclusiveNamespaces PrefixList:
//!
//! - a namespace declaration is rendered on an element only when the element or one of its
//!   attributes visibly uses its prefix and the nearest output ancestor did not already render
//!   the same binding; `xmlns=""` only to undo a rendered default namespace; declarations come
//!   first, default namespace first then by prefix; the `xml` prefix is never declared;
//! - attributes sorted by namespace URI (none first) then local name;
//! - text escapes `&amp; &lt; &gt; &#xD;`, attribute values `&amp; &lt; &quot; &#x9; &#xA;
//!   &#xD;`; line ends were normalised by the reader; CDATA is plain text;
//! - empty elements as a start and an end tag; no XML declaration, no DTD, no comments;
//!   processing instructions kept (`<?target data?>`; before or after the root on their own
//!   line when the whole document is canonicalized).

use super::tree::{Document, Element, Node};

/// The exclusive canonical form of the element at `apex` (child-index path from the root) of
/// `doc`, leaving out the subtree at `exclude` (a path from the root) when given. The whole
/// document (`apex` empty) includes the processing instructions around the root.
pub(crate) fn canonicalize(doc: &Document, apex: &[usize], exclude: Option<&[usize]>) -> Vec<u8> {
    let mut out = String::new();
    let Some(el) = doc.root.at(apex) else {
        return Vec::new();
    };
    let whole = apex.is_empty();
    if whole {
        for (t, d) in &doc.before {
            pi(&mut out, t, d);
            out.push('\n');
        }
    }
    let mut path = apex.to_vec();
    let mut rendered: Vec<(String, String)> = Vec::new();
    element(&mut out, el, &mut path, exclude, &mut rendered);
    if whole {
        for (t, d) in &doc.after {
            out.push('\n');
            pi(&mut out, t, d);
        }
    }
    out.into_bytes()
}

fn pi(out: &mut String, target: &str, data: &str) {
    out.push_str("<?");
    out.push_str(target);
    if !data.is_empty() {
        out.push(' ');
        out.push_str(data);
    }
    out.push_str("?>");
}

fn qname(prefix: Option<&str>, local: &str) -> String {
    match prefix {
        Some(p) => format!("{p}:{local}"),
        None => local.to_string(),
    }
}

/// The binding of `prefix` most recently rendered by an output ancestor (`""`: default).
fn in_scope<'a>(rendered: &'a [(String, String)], prefix: &str) -> Option<&'a str> {
    rendered
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, n)| n.as_str())
}

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

fn element(
    out: &mut String,
    el: &Element,
    path: &mut Vec<usize>,
    exclude: Option<&[usize]>,
    rendered: &mut Vec<(String, String)>,
) {
    // namespace bindings this element visibly uses: (prefix or "" for default, namespace or "")
    let mut used: Vec<(String, String)> = Vec::new();
    let own = (
        el.prefix.clone().unwrap_or_default(),
        el.ns.clone().unwrap_or_default(),
    );
    used.push(own);
    for a in &el.attrs {
        if let (Some(p), Some(n)) = (&a.prefix, &a.ns)
            && p != "xml"
            && !used.iter().any(|(q, _)| q == p)
        {
            used.push((p.clone(), n.clone()));
        }
    }
    let mut decls: Vec<(String, String)> = Vec::new();
    for (p, n) in used {
        if p == "xml" {
            continue;
        }
        let current = in_scope(rendered, &p);
        let render = if p.is_empty() && n.is_empty() {
            // xmlns="" only to undo a rendered non-empty default namespace
            matches!(current, Some(c) if !c.is_empty())
        } else {
            current != Some(n.as_str())
        };
        if render {
            decls.push((p, n));
        }
    }
    decls.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('<');
    out.push_str(&qname(el.prefix.as_deref(), &el.local));
    for (p, n) in &decls {
        if p.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(p);
            out.push_str("=\"");
        }
        escape_attr(out, n);
        out.push('"');
    }
    let mut attrs: Vec<_> = el.attrs.iter().collect();
    attrs.sort_by(|a, b| {
        (a.ns.as_deref().unwrap_or(""), a.local.as_str())
            .cmp(&(b.ns.as_deref().unwrap_or(""), b.local.as_str()))
    });
    for a in attrs {
        out.push(' ');
        let prefix = match (&a.prefix, a.ns.as_deref()) {
            (_, Some(XML_NS)) => Some("xml"),
            (p, _) => p.as_deref(),
        };
        out.push_str(&qname(prefix, &a.local));
        out.push_str("=\"");
        escape_attr(out, &a.value);
        out.push('"');
    }
    out.push('>');
    let pushed = decls.len();
    rendered.extend(decls);
    for (i, c) in el.children.iter().enumerate() {
        match c {
            Node::Element(child) => {
                path.push(i);
                if exclude != Some(path.as_slice()) {
                    element(out, child, path, exclude, rendered);
                }
                path.pop();
            }
            Node::Text(t) => escape_text(out, t),
            Node::Pi(t, d) => pi(out, t, d),
        }
    }
    rendered.truncate(rendered.len().saturating_sub(pushed));
    out.push_str("</");
    out.push_str(&qname(el.prefix.as_deref(), &el.local));
    out.push('>');
}

fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}
