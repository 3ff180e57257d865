//! The schema-aware core shared by the JSON and XML codecs.
//!
//! Both wire formats are parsed into the same untyped tree ([`Node`]), which [`Reader`] walks with
//! the schema knowledge of one case at a time (types, ranges, mandatory leaves, unknown members);
//! encoding goes the other way through [`Writer`] into an [`Out`] tree that each format prints.

use std::net::IpAddr;
use std::sync::LazyLock;

use crate::ident::{self, Identity, YangEnum};
use crate::{MacAddr, ModelError, Severity, Timestamp};

// ---- input tree -----------------------------------------------------------------------------

/// How a scalar was written on the wire (JSON distinguishes strings from numbers; XML does not).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ScalarKind {
    /// A JSON string.
    Str,
    /// A JSON number (text as written).
    Num,
    /// A JSON `true`, `false` or `null`.
    Other,
    /// XML text.
    Xml,
}

/// A scalar value on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub text: String,
    pub kind: ScalarKind,
    /// XML only: `module:local` when the text is a QName whose prefix (or default namespace)
    /// resolves to a known module; used for identityref values.
    pub qualified: Option<String>,
}

/// A node of the untyped input tree.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Module of the node (resolved from the JSON prefix or the XML namespace).
    pub module: String,
    pub name: String,
    /// JSON: whether the node came from an array. XML: `None`.
    pub array: Option<bool>,
    pub value: NodeValue,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    Leaf(Scalar),
    Inner(Vec<Node>),
}

// ---- output tree ----------------------------------------------------------------------------

/// A scalar to emit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OutScalar {
    /// A string (JSON string, XML text).
    Str(String),
    /// A uint8/16/32 (JSON number).
    Num(u64),
    /// An identityref value.
    Ident {
        module: &'static str,
        name: &'static str,
    },
}

/// A node to emit.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub module: &'static str,
    pub name: &'static str,
    pub value: OutValue,
}

#[derive(Debug, Clone)]
pub(crate) enum OutValue {
    Leaf(OutScalar),
    LeafList(Vec<OutScalar>),
    Container(Vec<Out>),
    List(Vec<Vec<Out>>),
}

// ---- leaf types -----------------------------------------------------------------------------

/// A Rust type that is the value of one YANG leaf.
pub(crate) trait Leaf: Sized {
    fn encode(&self) -> OutScalar;
    /// Decodes a wire scalar; `module` is the module of the leaf (for bare identities).
    fn decode(s: &Scalar, module: &str) -> Result<Self, String>;
}

fn want_string(s: &Scalar, what: &str) -> Result<(), String> {
    match s.kind {
        ScalarKind::Str | ScalarKind::Xml => Ok(()),
        _ => Err(format!("expected {what} as a JSON string, got {}", s.text)),
    }
}

impl Leaf for String {
    fn encode(&self) -> OutScalar {
        OutScalar::Str(self.clone())
    }
    fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
        want_string(s, "a string")?;
        Ok(s.text.clone())
    }
}

macro_rules! small_uint {
    ($($t:ty: $yang:literal),*) => {$(
        impl Leaf for $t {
            fn encode(&self) -> OutScalar { OutScalar::Num(u64::from(*self)) }
            fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
                // in the schema's words (YANG type and range), never the Rust type
                let want = format!("expected a {} (an integer 0..{})", $yang, <$t>::MAX);
                match s.kind {
                    ScalarKind::Num | ScalarKind::Xml => {}
                    _ => return Err(format!("{want} as a JSON number, got {:?}", s.text)),
                }
                let t = s.text.as_str();
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{want}, got {t}"));
                }
                t.parse::<$t>().map_err(|_| format!("{want}, got {t}"))
            }
        }
    )*};
}
small_uint!(u8: "uint8", u16: "uint16", u32: "uint32");

impl Leaf for u64 {
    fn encode(&self) -> OutScalar {
        OutScalar::Str(self.to_string())
    }
    fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
        let want = "expected a uint64 (an integer 0..18446744073709551615)";
        if s.kind == ScalarKind::Num {
            return Err(format!(
                "{want} encoded as a JSON string (RFC 7951 §6.1), got the number {}",
                s.text
            ));
        }
        want_string(s, "a uint64")?;
        let t = s.text.as_str();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{want}, got {t:?}"));
        }
        t.parse::<u64>().map_err(|_| format!("{want}, got {t:?}"))
    }
}

impl Leaf for IpAddr {
    fn encode(&self) -> OutScalar {
        OutScalar::Str(self.to_string())
    }
    fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
        want_string(s, "an IP address")?;
        s.text.parse::<IpAddr>().map_err(|_| {
            format!(
                "expected an IPv4 or IPv6 address without zone, got {:?}",
                s.text
            )
        })
    }
}

impl Leaf for MacAddr {
    fn encode(&self) -> OutScalar {
        OutScalar::Str(self.to_string())
    }
    fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
        want_string(s, "a MAC address")?;
        s.text.parse()
    }
}

static DATE_AND_TIME: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$")
        .expect("static regex")
});

/// Renders a timestamp as yang:date-and-time, with as many fraction digits as it needs.
pub(crate) fn format_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Parses yang:date-and-time.
pub(crate) fn parse_time(t: &str) -> Result<Timestamp, String> {
    let want = || format!("expected a date-and-time like 2026-01-15T10:00:00Z, got {t:?}");
    if !DATE_AND_TIME.is_match(t) {
        return Err(want());
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&chrono::Utc))
        .map_err(|_| want())
}

impl Leaf for Timestamp {
    fn encode(&self) -> OutScalar {
        OutScalar::Str(format_time(self))
    }
    fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
        want_string(s, "a date-and-time")?;
        parse_time(&s.text)
    }
}

impl Leaf for Severity {
    fn encode(&self) -> OutScalar {
        OutScalar::Str(self.as_str().to_string())
    }
    fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
        want_string(s, "a severity")?;
        // Strict: the YANG typedef has no `medium`.
        match s.text.as_str() {
            "medium" => {
                Err("expected one of info, low, middle, high, critical, got \"medium\"".into())
            }
            t => Severity::parse(t).ok_or_else(|| {
                format!("expected one of info, low, middle, high, critical, got {t:?}")
            }),
        }
    }
}

macro_rules! leaf_identity {
    ($($t:ty),* $(,)?) => {$(
        impl Leaf for $t {
            fn encode(&self) -> OutScalar {
                OutScalar::Ident { module: self.module(), name: self.name() }
            }
            fn decode(s: &Scalar, module: &str) -> Result<Self, String> {
                want_string(s, "an identity")?;
                match (&s.qualified, <$t as Identity>::parse(&s.text, module)) {
                    (_, Ok(v)) => Ok(v),
                    (Some(q), Err(e)) => <$t as Identity>::parse(q, module).map_err(|_| e),
                    (None, Err(e)) => Err(e),
                }
            }
        }
    )*};
}

leaf_identity!(
    ident::AcquisitionMethod,
    ident::EmissionType,
    ident::DampeningType,
    ident::AuthenticationMode,
    ident::SystemAlarmCategory,
    ident::SystemEventCategory,
    ident::Protocol,
    ident::TransportProtocol,
    ident::ApplicationProtocol,
    ident::DdosType,
    ident::VirusType,
    ident::IntrusionAttackType,
    ident::WebAttackType,
    ident::ReqMethod,
    ident::FilterType,
    ident::DpiType,
    ident::IngressAction,
);

macro_rules! leaf_enum {
    ($($t:ty),* $(,)?) => {$(
        impl Leaf for $t {
            fn encode(&self) -> OutScalar { OutScalar::Str(self.as_str().to_string()) }
            fn decode(s: &Scalar, _: &str) -> Result<Self, String> {
                want_string(s, "an enumeration value")?;
                <$t as YangEnum>::parse(&s.text)
            }
        }
    )*};
}

leaf_enum!(
    ident::AlarmSeverity,
    ident::InterfaceState,
    ident::InterfaceType,
    ident::OperationType,
    ident::SystemStatus,
    ident::UserActivityType,
);

// ---- records --------------------------------------------------------------------------------

/// A YANG container or list entry with a fixed set of children.
pub(crate) trait Record: Sized {
    fn write(&self, w: &mut Writer);
    fn read(r: &mut Reader<'_>) -> Result<Self, ModelError>;
}

/// Builds the children of one node.
pub(crate) struct Writer {
    pub module: &'static str,
    pub out: Vec<Out>,
}

impl Writer {
    pub fn new(module: &'static str) -> Self {
        Self {
            module,
            out: Vec::new(),
        }
    }
    fn push(&mut self, name: &'static str, value: OutValue) {
        self.out.push(Out {
            module: self.module,
            name,
            value,
        });
    }
    /// A mandatory leaf.
    pub fn req<T: Leaf>(&mut self, name: &'static str, v: &T) {
        self.push(name, OutValue::Leaf(v.encode()));
    }
    /// An optional leaf.
    pub fn opt<T: Leaf>(&mut self, name: &'static str, v: &Option<T>) {
        if let Some(v) = v {
            self.req(name, v);
        }
    }
    /// A leaf-list (omitted when empty).
    pub fn many<T: Leaf>(&mut self, name: &'static str, v: &[T]) {
        if !v.is_empty() {
            self.push(
                name,
                OutValue::LeafList(v.iter().map(Leaf::encode).collect()),
            );
        }
    }
    /// A list of records (omitted when empty).
    pub fn list<R: Record>(&mut self, name: &'static str, v: &[R]) {
        if !v.is_empty() {
            let entries = v
                .iter()
                .map(|e| {
                    let mut w = Writer::new(self.module);
                    e.write(&mut w);
                    w.out
                })
                .collect();
            self.push(name, OutValue::List(entries));
        }
    }
    /// A container in `module` (omitted when it would be empty).
    pub fn cont_in<R: Record>(&mut self, module: &'static str, name: &'static str, v: &R) {
        let mut w = Writer::new(module);
        v.write(&mut w);
        if !w.out.is_empty() {
            self.out.push(Out {
                module,
                name,
                value: OutValue::Container(w.out),
            });
        }
    }
    /// A container in the current module (omitted when it would be empty).
    pub fn cont<R: Record>(&mut self, name: &'static str, v: &R) {
        self.cont_in(self.module, name, v);
    }
    /// The children of a grouping, inline.
    pub fn flat<R: Record>(&mut self, v: &R) {
        v.write(self);
    }
}

/// Reads the children of one node, tracking which were consumed.
pub(crate) struct Reader<'a> {
    pub path: String,
    pub module: &'static str,
    nodes: &'a [Node],
    used: Vec<bool>,
}

impl<'a> Reader<'a> {
    pub fn new(path: String, module: &'static str, nodes: &'a [Node]) -> Self {
        Self {
            path,
            module,
            used: vec![false; nodes.len()],
            nodes,
        }
    }

    /// Path of child `name`.
    pub fn at(&self, name: &str) -> String {
        format!("{}/{}", self.path, name)
    }

    /// An error at child `name`.
    pub fn err(&self, name: &str, reason: impl Into<String>) -> ModelError {
        ModelError::new(self.at(name), reason)
    }

    /// Whether a child `module:name` is present (without consuming it).
    pub fn has_in(&self, module: &str, name: &str) -> bool {
        self.nodes
            .iter()
            .any(|n| n.module == module && n.name == name)
    }

    fn take_in(&mut self, module: &str, name: &str) -> Vec<&'a Node> {
        let mut found = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.module == module && n.name == name {
                self.used[i] = true;
                found.push(n);
            }
        }
        found
    }

    fn one_leaf(&mut self, name: &str) -> Result<Option<&'a Scalar>, ModelError> {
        let found = self.take_in(self.module, name);
        match found.as_slice() {
            [] => Ok(None),
            [n] => match (&n.value, n.array) {
                (_, Some(true)) => Err(self.err(name, "expected a single value, got an array")),
                (NodeValue::Leaf(s), _) => Ok(Some(s)),
                (NodeValue::Inner(_), _) => Err(self.err(name, "expected a value, got an object")),
            },
            _ => Err(self.err(name, "expected a single value, got it repeated")),
        }
    }

    /// An optional leaf.
    pub fn opt<T: Leaf>(&mut self, name: &str) -> Result<Option<T>, ModelError> {
        let module = self.module;
        match self.one_leaf(name)? {
            None => Ok(None),
            Some(s) => T::decode(s, module)
                .map(Some)
                .map_err(|e| self.err(name, e)),
        }
    }

    /// A mandatory leaf.
    pub fn req<T: Leaf>(&mut self, name: &str) -> Result<T, ModelError> {
        self.opt(name)?
            .ok_or_else(|| self.err(name, "missing mandatory leaf"))
    }

    /// An optional uint8 percentage limited to `0..=100`.
    pub fn percent(&mut self, name: &str) -> Result<Option<u8>, ModelError> {
        let v: Option<u8> = self.opt(name)?;
        match v {
            Some(p) if p > 100 => Err(self.err(
                name,
                format!("expected a percentage in range 0..100, got {p}"),
            )),
            v => Ok(v),
        }
    }

    /// A leaf-list.
    pub fn many<T: Leaf>(&mut self, name: &str) -> Result<Vec<T>, ModelError> {
        let module = self.module;
        let found = self.take_in(module, name);
        let mut out = Vec::with_capacity(found.len());
        for (i, n) in found.into_iter().enumerate() {
            let p = format!("{}/{}[{}]", self.path, name, i);
            if n.array == Some(false) {
                return Err(ModelError::new(
                    self.at(name),
                    "expected a JSON array (leaf-list)",
                ));
            }
            match &n.value {
                NodeValue::Leaf(s) => {
                    out.push(T::decode(s, module).map_err(|e| ModelError::new(p, e))?)
                }
                NodeValue::Inner(_) => {
                    return Err(ModelError::new(p, "expected a value, got an object"));
                }
            }
        }
        Ok(out)
    }

    fn inner_nodes(&self, n: &'a Node, p: &str) -> Result<&'a [Node], ModelError> {
        match &n.value {
            NodeValue::Inner(c) => Ok(c),
            // An empty XML element is an empty container.
            NodeValue::Leaf(s) if s.kind == ScalarKind::Xml && s.text.trim().is_empty() => Ok(&[]),
            NodeValue::Leaf(_) => Err(ModelError::new(p, "expected an object")),
        }
    }

    /// A list of records whose key leaf is `key`.
    pub fn list<R: Record>(
        &mut self,
        name: &str,
        key: fn(&R) -> &str,
    ) -> Result<Vec<R>, ModelError> {
        let module = self.module;
        let found = self.take_in(module, name);
        let mut out: Vec<R> = Vec::with_capacity(found.len());
        for (i, n) in found.into_iter().enumerate() {
            let p = format!("{}/{}[{}]", self.path, name, i);
            if n.array == Some(false) {
                return Err(ModelError::new(
                    self.at(name),
                    "expected a JSON array (list)",
                ));
            }
            let mut r = Reader::new(p.clone(), module, self.inner_nodes(n, &p)?);
            let e = R::read(&mut r)?;
            r.finish()?;
            if out.iter().any(|o| key(o) == key(&e)) {
                return Err(ModelError::new(
                    p,
                    format!("duplicate list key {:?}", key(&e)),
                ));
            }
            out.push(e);
        }
        Ok(out)
    }

    /// An optional container in `module`, read by `f`.
    pub fn cont_in_with<T>(
        &mut self,
        module: &'static str,
        name: &str,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T, ModelError>,
    ) -> Result<Option<T>, ModelError> {
        let found = self.take_in(module, name);
        let p = self.at(name);
        match found.as_slice() {
            [] => Ok(None),
            [n] if n.array != Some(true) => {
                let mut r = Reader::new(p.clone(), module, self.inner_nodes(n, &p)?);
                let v = f(&mut r)?;
                r.finish()?;
                Ok(Some(v))
            }
            _ => Err(ModelError::new(p, "expected a single container")),
        }
    }

    /// An optional container in `module`.
    pub fn cont_in<R: Record>(
        &mut self,
        module: &'static str,
        name: &str,
    ) -> Result<Option<R>, ModelError> {
        self.cont_in_with(module, name, R::read)
    }

    /// A non-presence container in the current module (absent = default).
    pub fn cont<R: Record + Default>(&mut self, name: &str) -> Result<R, ModelError> {
        Ok(self.cont_in(self.module, name)?.unwrap_or_default())
    }

    /// The children of a grouping, inline.
    pub fn flat<R: Record>(&mut self) -> Result<R, ModelError> {
        R::read(self)
    }

    /// Fails on the first child that no read consumed.
    pub fn finish(&self) -> Result<(), ModelError> {
        match self.nodes.iter().zip(&self.used).find(|(_, u)| !**u) {
            None => Ok(()),
            Some((n, _)) => {
                let name = if n.module == self.module {
                    n.name.clone()
                } else {
                    format!("{}:{}", n.module, n.name)
                };
                Err(ModelError::new(
                    self.at(&name),
                    "unknown member (not defined in this place by the YANG modules)",
                ))
            }
        }
    }
}

/// A leaf-list with `min-elements 1`.
pub(crate) fn at_least_one<T>(r: &Reader<'_>, name: &str, v: Vec<T>) -> Result<Vec<T>, ModelError> {
    if v.is_empty() {
        return Err(r.err(name, "missing mandatory leaf-list (min-elements 1)"));
    }
    Ok(v)
}

static LANGUAGE_TAG: LazyLock<regex::Regex> = LazyLock::new(|| {
    // The `language` pattern of ietf-i2nsf-monitoring-interface (RFC 5646 language tags).
    let p = concat!(
        "((([A-Za-z]{2,3}(-[A-Za-z]{3}(-[A-Za-z]{3})",
        "{0,2})?)|[A-Za-z]{4}|[A-Za-z]{5,8})(-[A-Za-z]{4})?",
        "(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}",
        "|([0-9][A-Za-z0-9]{3})))*(-[0-9A-WYZa-wyz]",
        "(-([A-Za-z0-9]{2,8}))+)*(-[Xx](-([A-Za-z0-9]",
        "{1,8}))+)?|[Xx](-([A-Za-z0-9]{1,8}))+|",
        "(([Ee][Nn]-[Gg][Bb]-[Oo][Ee][Dd]|[Ii]-",
        "[Aa][Mm][Ii]|[Ii]-[Bb][Nn][Nn]|[Ii]-",
        "[Dd][Ee][Ff][Aa][Uu][Ll][Tt]|[Ii]-",
        "[Ee][Nn][Oo][Cc][Hh][Ii][Aa][Nn]",
        "|[Ii]-[Hh][Aa][Kk]|",
        "[Ii]-[Kk][Ll][Ii][Nn][Gg][Oo][Nn]|",
        "[Ii]-[Ll][Uu][Xx]|[Ii]-[Mm][Ii][Nn][Gg][Oo]|",
        "[Ii]-[Nn][Aa][Vv][Aa][Jj][Oo]|[Ii]-[Pp][Ww][Nn]|",
        "[Ii]-[Tt][Aa][Oo]|[Ii]-[Tt][Aa][Yy]|",
        "[Ii]-[Tt][Ss][Uu]|[Ss][Gg][Nn]-[Bb][Ee]-[Ff][Rr]|",
        "[Ss][Gg][Nn]-[Bb][Ee]-[Nn][Ll]|[Ss][Gg][Nn]-",
        "[Cc][Hh]-[Dd][Ee])|([Aa][Rr][Tt]-",
        "[Ll][Oo][Jj][Bb][Aa][Nn]|[Cc][Ee][Ll]-",
        "[Gg][Aa][Uu][Ll][Ii][Ss][Hh]|",
        "[Nn][Oo]-[Bb][Oo][Kk]|[Nn][Oo]-",
        "[Nn][Yy][Nn]|[Zz][Hh]-[Gg][Uu][Oo][Yy][Uu]|",
        "[Zz][Hh]-[Hh][Aa][Kk][Kk][Aa]|[Zz][Hh]-",
        "[Mm][Ii][Nn]|[Zz][Hh]-[Mm][Ii][Nn]-",
        "[Nn][Aa][Nn]|[Zz][Hh]-[Xx][Ii][Aa][Nn][Gg])))",
    );
    regex::Regex::new(&format!("^(?:{p})$")).expect("static regex")
});

/// Whether `s` matches the module's `language` pattern.
pub(crate) fn is_language_tag(s: &str) -> bool {
    LANGUAGE_TAG.is_match(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_pattern_accepts_tags_and_rejects_junk() {
        for ok in ["en-US", "de", "zh-Hant-TW", "x-private", "i-klingon"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "english!", "en_US", "-en"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn times_keep_their_precision() {
        for t in [
            "2026-01-15T10:00:00Z",
            "2026-01-15T10:00:00.123Z",
            "2026-01-15T10:00:00.123456789Z",
        ] {
            assert_eq!(format_time(&parse_time(t).unwrap()), t);
        }
        assert_eq!(
            format_time(&parse_time("2026-01-15T12:00:00+02:00").unwrap()),
            "2026-01-15T10:00:00Z"
        );
        assert!(parse_time("2026-01-15 10:00:00Z").is_err());
        assert!(parse_time("2026-13-15T10:00:00Z").is_err());
    }
}
