//! XML signatures for RID messages (RFC 6545 §9): the enveloped signature each sender adds
//! over the whole message, and the originator's detached signature over the example records,
//! which every relay forwards unchanged.
//!
//! Contract:
//!
//! - Algorithms: SignatureMethod `rsa-sha256` (PKCS#1 v1.5) or `ecdsa-sha256` (P-256,
//!   `r || s`), DigestMethod `sha256`, CanonicalizationMethod and the last Transform exclusive
//!   C14N 1.0 without comments (an empty `InclusiveNamespaces` is tolerated). Anything else is
//!   refused, naming the element and the algorithm.
//! - Placement: RID's schema gives the root `RID` no room for a `ds:Signature`; the one place
//!   it allows signatures is `RIDPolicy/ReportSchema/Signature` (an `iodef:ExtensionType`, lax
//!   content). Both signatures go there, each `ds:Signature` wrapped in its own
//!   `iodef-rid:Signature dtype="xml"`, so signed messages still validate. A message without a
//!   `ReportSchema` (a bare Acknowledgement) cannot carry a signature.
//! - The enveloped signature has one Reference, `URI=""`, transforms enveloped-signature then
//!   exc-c14n: it covers the whole document, detached signatures included, less itself.
//! - The detached signature has a Reference `URI="#id"` per signed element. IODEF v1 gives no
//!   element an `Id` attribute (Record, RecordData, RecordItem and the document itself accept
//!   only their schema attributes), so the signed element is an element of another namespace
//!   inside a `RecordItem dtype="xml"` (lax content), carrying an unprefixed `Id` attribute.
//! - Signing works on the message as [`Rid::emit`] writes it, so a relay that reads the message
//!   with [`Rid::parse`] and emits it again reproduces the detached signature and what it
//!   signs byte for byte (as long as it does not change what precedes them in the records).
//! - Verification works on the received bytes with its own prefix-keeping reader under the
//!   caller's [`Limits`]; it never panics. References resolve to exactly one element: `Id`,
//!   `ID`, `id` and `xml:id` attributes all count, and a value carried twice is refused.
//!   The caller gives the peer's certificate; `KeyInfo` in the message is informative only.

mod c14n;
mod keys;
mod tree;

#[cfg(test)]
mod tests;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest;

use crate::{
    DType, Extension, Limits, ParseError, RID_NS, Rid, XmlAttribute, XmlContent, XmlElement,
};

use keys::PublicKey;
pub use keys::{SigningKey, certificates_from_pem};
use tree::{Document, Element};

/// The XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Exclusive XML Canonicalization 1.0 without comments.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The enveloped-signature transform.
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// SHA-256 digests.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// RSA PKCS#1 v1.5 with SHA-256.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// ECDSA with SHA-256 (P-256 here), signature value `r || s`.
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// Longest `SignatureValue` text accepted (base64 of an 8192-bit RSA signature with line
/// breaks fits with room to spare).
const MAX_SIGNATURE_VALUE_CHARS: usize = 4096;
/// Most `ds:Signature` elements one message may carry.
const MAX_SIGNATURES: usize = 16;
/// Most References one signature may carry.
const MAX_REFERENCES: usize = 16;

/// A SignatureMethod this crate signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// `rsa-sha256`: RSA PKCS#1 v1.5 with SHA-256 (keys of 2048 to 8192 bits).
    RsaSha256,
    /// `ecdsa-sha256` with a P-256 key; the value is `r || s` (64 bytes).
    EcdsaP256Sha256,
}

impl SignatureAlgorithm {
    /// The algorithm URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::RsaSha256 => RSA_SHA256,
            Self::EcdsaP256Sha256 => ECDSA_SHA256,
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        match uri {
            RSA_SHA256 => Some(Self::RsaSha256),
            ECDSA_SHA256 => Some(Self::EcdsaP256Sha256),
            _ => None,
        }
    }
}

/// Why a message could not be signed, or why a signature was refused. Each names the element
/// (as a path) and says what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsigError {
    /// The message is not well-formed or breaks the reader's limits.
    #[error("the message cannot be read: {0}")]
    Parse(#[from] ParseError),
    /// The private key cannot be used.
    #[error("private key: {what}")]
    Key {
        /// What is wrong and how to fix it.
        what: String,
    },
    /// The certificate cannot be used.
    #[error("certificate: {what}")]
    Certificate {
        /// What is wrong.
        what: String,
    },
    /// The private key does not belong to the certificate given with it.
    #[error(
        "the certificate's public key ({cert}) is not the signing key's: give the certificate issued for this key"
    )]
    KeyCertificateMismatch {
        /// The certificate's key type.
        cert: &'static str,
    },
    /// There is no `RIDPolicy/ReportSchema` to hold a signature.
    #[error(
        "/RID/RIDPolicy/ReportSchema is missing: RID's schema allows XML signatures only in ReportSchema/Signature; add a ReportSchema to sign the message"
    )]
    NoReportSchema,
    /// No signature of the kind asked for.
    #[error(
        "no {kind} ds:Signature in the message (expected one in /RID/RIDPolicy/ReportSchema/Signature)"
    )]
    NoSignature {
        /// `enveloped` or `detached`.
        kind: &'static str,
    },
    /// More signatures of one kind than the verifier can attribute.
    #[error("{count} {kind} ds:Signature elements: expected {expected}")]
    TooManySignatures {
        /// `enveloped`, `detached` or `ds:Signature`.
        kind: &'static str,
        /// How many were found.
        count: usize,
        /// How many are accepted.
        expected: &'static str,
    },
    /// A signature element lacks a part or has one that is malformed.
    #[error("{path}: {what}")]
    Malformed {
        /// The element.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// An algorithm this crate does not implement.
    #[error("{path}: algorithm {algorithm:?} is not supported; expected {expected}")]
    UnsupportedAlgorithm {
        /// The element naming the algorithm.
        path: String,
        /// The algorithm URI found.
        algorithm: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A Reference URI other than `""` or `#id`.
    #[error(
        "{path}: Reference URI {uri:?} is not supported; expected \"\" (whole document) or \"#id\""
    )]
    UnsupportedUri {
        /// The Reference.
        path: String,
        /// The URI found.
        uri: String,
    },
    /// A Reference to an Id no element carries.
    #[error("{path}: no element carries Id {id:?}: the referenced content was removed or renamed")]
    MissingReference {
        /// The Reference (or `sign_detached` for signing).
        path: String,
        /// The Id.
        id: String,
    },
    /// A Reference to an Id carried by several elements (a signature-wrapping attempt, or a
    /// careless sender).
    #[error("{path}: {count} elements carry Id {id:?}: a reference must name exactly one")]
    DuplicateId {
        /// The Reference (or `sign_detached` for signing).
        path: String,
        /// The Id.
        id: String,
        /// How many elements carry it.
        count: usize,
    },
    /// The referenced content changed since it was signed.
    #[error(
        "{path}: DigestValue does not match the content of Reference URI {uri:?}: the signed content was altered"
    )]
    DigestMismatch {
        /// The Reference.
        path: String,
        /// Its URI.
        uri: String,
    },
    /// The SignatureValue does not verify with the certificate's key.
    #[error(
        "{path}: SignatureValue does not verify with the given certificate's key: the SignedInfo was altered or another key signed it"
    )]
    BadSignature {
        /// The SignatureValue.
        path: String,
    },
    /// The SignatureMethod does not fit the certificate's key.
    #[error(
        "{path}: SignatureMethod {algorithm} cannot be checked with {key} (the certificate's): wrong certificate for this peer?"
    )]
    KeyTypeMismatch {
        /// The SignatureMethod.
        path: String,
        /// The method URI.
        algorithm: &'static str,
        /// The certificate's key type.
        key: &'static str,
    },
}

/// Limits for documents this crate emitted itself (while signing).
fn own_limits() -> Limits {
    Limits {
        max_bytes: usize::MAX,
        max_depth: 1024,
        max_elements: usize::MAX,
        max_attributes: usize::MAX,
        max_attribute_len: usize::MAX,
    }
}

/// The exclusive canonical form (without comments) of the whole document `xml`.
pub fn exc_c14n(xml: &[u8], limits: &Limits) -> Result<Vec<u8>, DsigError> {
    let doc = tree::read(xml, limits)?;
    Ok(c14n::canonicalize(&doc, &[], None))
}

/// The exclusive canonical form (without comments) of the one element of `xml` carrying the Id
/// `id` (as a `URI="#id"` Reference sees it).
pub fn exc_c14n_id(xml: &[u8], id: &str, limits: &Limits) -> Result<Vec<u8>, DsigError> {
    let doc = tree::read(xml, limits)?;
    let path = find_id(&doc.root, id, "exc_c14n_id")?;
    Ok(c14n::canonicalize(&doc, &path, None))
}

/// Signs the RID message `xml` with an enveloped signature over the whole document (see the
/// module docs for placement); the message is read with default [`Limits`].
pub fn sign_enveloped(xml: &str, key: &SigningKey, cert_der: &[u8]) -> Result<String, DsigError> {
    let rid = Rid::parse(xml.as_bytes(), &Limits::default())?;
    sign_enveloped_rid(&rid, key, cert_der)
}

/// [`sign_enveloped`] for a message in hand. Sign last: anything added afterwards (another
/// signature included) breaks the enveloped one.
pub fn sign_enveloped_rid(
    rid: &Rid,
    key: &SigningKey,
    cert_der: &[u8],
) -> Result<String, DsigError> {
    sign(
        rid,
        key,
        cert_der,
        &[String::new()],
        "XML-DSig enveloped signature (RFC 6545 §9)",
    )
}

/// Signs the elements of the RID message `xml` carrying the Ids `ids` with one detached
/// signature (one Reference each), appended to `RIDPolicy/ReportSchema`; the message is read
/// with default [`Limits`].
pub fn sign_detached(
    xml: &str,
    ids: &[&str],
    key: &SigningKey,
    cert_der: &[u8],
) -> Result<String, DsigError> {
    let rid = Rid::parse(xml.as_bytes(), &Limits::default())?;
    sign_detached_rid(&rid, ids, key, cert_der)
}

/// [`sign_detached`] for a message in hand.
pub fn sign_detached_rid(
    rid: &Rid,
    ids: &[&str],
    key: &SigningKey,
    cert_der: &[u8],
) -> Result<String, DsigError> {
    if ids.is_empty() {
        return Err(DsigError::MissingReference {
            path: "sign_detached".into(),
            id: String::new(),
        });
    }
    let uris: Vec<String> = ids.iter().map(|id| format!("#{id}")).collect();
    sign(
        rid,
        key,
        cert_der,
        &uris,
        "XML-DSig detached signature over example records (RFC 6545 §9)",
    )
}

/// Verifies the one enveloped signature of `xml` (a Reference `URI=""`) with the public key of
/// the DER certificate `cert_der`: every Reference digest, then the SignatureValue.
pub fn verify_enveloped(xml: &[u8], cert_der: &[u8], limits: &Limits) -> Result<(), DsigError> {
    let key = PublicKey::from_certificate(cert_der)?;
    let doc = tree::read(xml, limits)?;
    let sigs = signatures(&doc)?;
    let enveloped: Vec<_> = sigs.iter().filter(|s| s.is_enveloped()).collect();
    match enveloped.as_slice() {
        [] => Err(DsigError::NoSignature { kind: "enveloped" }),
        [one] => one.verify(&doc, &key),
        more => Err(DsigError::TooManySignatures {
            kind: "enveloped",
            count: more.len(),
            expected: "exactly one (a relay removes the previous hop's with remove_enveloped)",
        }),
    }
}

/// Verifies every detached signature of `xml` (References `URI="#id"` only) with the public
/// key of the DER certificate `cert_der`; gives the Ids whose content is now known to be the
/// signer's, in document order.
pub fn verify_detached(
    xml: &[u8],
    cert_der: &[u8],
    limits: &Limits,
) -> Result<Vec<String>, DsigError> {
    let key = PublicKey::from_certificate(cert_der)?;
    let doc = tree::read(xml, limits)?;
    let sigs = signatures(&doc)?;
    let detached: Vec<_> = sigs.iter().filter(|s| !s.is_enveloped()).collect();
    if detached.is_empty() {
        return Err(DsigError::NoSignature { kind: "detached" });
    }
    let mut ids = Vec::new();
    for s in detached {
        s.verify(&doc, &key)?;
        for r in &s.references {
            if let Some(id) = r.uri.strip_prefix('#') {
                ids.push(id.to_string());
            }
        }
    }
    Ok(ids)
}

/// Removes the enveloped signatures (their `iodef-rid:Signature` wrappers) from a parsed
/// message, as a relay does before changing and re-signing it; gives how many it removed.
/// Detached signatures stay.
pub fn remove_enveloped(rid: &mut Rid) -> usize {
    let Some(rs) = rid.policy.as_mut().and_then(|p| p.report_schema.as_mut()) else {
        return 0;
    };
    let before = rs.signatures.len();
    rs.signatures
        .retain(|ext| !ext.content.iter().any(is_enveloped_model));
    before - rs.signatures.len()
}

fn is_enveloped_model(c: &XmlContent) -> bool {
    let XmlContent::Element(sig) = c else {
        return false;
    };
    let ds = |e: &XmlElement, name: &str| e.namespace.as_deref() == Some(DSIG_NS) && e.name == name;
    ds(sig, "Signature")
        && sig.children.iter().any(|c| match c {
            XmlContent::Element(si) if ds(si, "SignedInfo") => si.children.iter().any(|r| {
                matches!(r, XmlContent::Element(r) if ds(r, "Reference") && r.attribute("URI") == Some(""))
            }),
            _ => false,
        })
}

// ---------------------------------------------------------------------------------------------
// signing

fn ds_el(name: &str, attrs: &[(&str, &str)], children: Vec<XmlContent>) -> XmlContent {
    XmlContent::Element(XmlElement {
        namespace: Some(DSIG_NS.into()),
        name: name.into(),
        attributes: attrs
            .iter()
            .map(|(n, v)| XmlAttribute {
                namespace: None,
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
        children,
    })
}

fn ds_text(name: &str, text: &str) -> XmlContent {
    ds_el(
        name,
        &[],
        if text.is_empty() {
            Vec::new()
        } else {
            vec![XmlContent::Text(text.into())]
        },
    )
}

/// The `ds:Signature` element: `uris` with their digests (base64), the signature value
/// (base64), the signer's certificate.
fn signature_element(
    alg: SignatureAlgorithm,
    refs: &[(String, String)],
    value: &str,
    cert_der: &[u8],
) -> XmlContent {
    let mut signed_info = vec![
        ds_el(
            "CanonicalizationMethod",
            &[("Algorithm", EXC_C14N)],
            Vec::new(),
        ),
        ds_el("SignatureMethod", &[("Algorithm", alg.uri())], Vec::new()),
    ];
    for (uri, digest) in refs {
        let mut transforms = Vec::new();
        if uri.is_empty() {
            transforms.push(ds_el(
                "Transform",
                &[("Algorithm", ENVELOPED_SIGNATURE)],
                Vec::new(),
            ));
        }
        transforms.push(ds_el("Transform", &[("Algorithm", EXC_C14N)], Vec::new()));
        signed_info.push(ds_el(
            "Reference",
            &[("URI", uri)],
            vec![
                ds_el("Transforms", &[], transforms),
                ds_el("DigestMethod", &[("Algorithm", SHA256)], Vec::new()),
                ds_text("DigestValue", digest),
            ],
        ));
    }
    ds_el(
        "Signature",
        &[],
        vec![
            ds_el("SignedInfo", &[], signed_info),
            ds_text("SignatureValue", value),
            ds_el(
                "KeyInfo",
                &[],
                vec![ds_el(
                    "X509Data",
                    &[],
                    vec![ds_text("X509Certificate", &STANDARD.encode(cert_der))],
                )],
            ),
        ],
    )
}

/// Path (child indices) of the `ds:Signature` inside the `n`-th `iodef-rid:Signature` of
/// `RIDPolicy/ReportSchema`, in a document Pharos emitted.
fn emitted_signature_path(root: &Element, n: usize) -> Option<Vec<usize>> {
    let step = |el: &Element, ns: &str, local: &str, nth: usize| -> Option<usize> {
        el.children
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, tree::Node::Element(e) if e.is(ns, local)))
            .nth(nth)
            .map(|(i, _)| i)
    };
    let mut path = Vec::new();
    let policy = step(root, RID_NS, "RIDPolicy", 0)?;
    path.push(policy);
    let el = root.at(&path)?;
    path.push(step(el, RID_NS, "ReportSchema", 0)?);
    let el = root.at(&path)?;
    path.push(step(el, RID_NS, "Signature", n)?);
    let el = root.at(&path)?;
    path.push(step(el, DSIG_NS, "Signature", 0)?);
    Some(path)
}

fn sign(
    rid: &Rid,
    key: &SigningKey,
    cert_der: &[u8],
    uris: &[String],
    meaning: &str,
) -> Result<String, DsigError> {
    let cert_key = PublicKey::from_certificate(cert_der)?;
    if cert_key.bytes() != key.public_key_bytes() {
        return Err(DsigError::KeyCertificateMismatch {
            cert: cert_key.kind(),
        });
    }
    let alg = key.algorithm();
    let mut rid = rid.clone();
    let rs = rid
        .policy
        .as_mut()
        .and_then(|p| p.report_schema.as_mut())
        .ok_or(DsigError::NoReportSchema)?;
    let n = rs.signatures.len();
    let placeholder: Vec<(String, String)> =
        uris.iter().map(|u| (u.clone(), String::new())).collect();
    rs.signatures.push(Extension {
        dtype: DType::Xml,
        meaning: Some(meaning.into()),
        formatid: None,
        restriction: None,
        content: vec![signature_element(alg, &placeholder, "", cert_der)],
    });
    let set = |rid: &mut Rid, sig: XmlContent| {
        if let Some(ext) = rid
            .policy
            .as_mut()
            .and_then(|p| p.report_schema.as_mut())
            .and_then(|rs| rs.signatures.get_mut(n))
        {
            ext.content = vec![sig];
        }
    };
    let internal = |what: &str| DsigError::Malformed {
        path: "/RID/RIDPolicy/ReportSchema/Signature".into(),
        what: format!("internal: {what}"),
    };
    // 1. digests, over the document as emitted (the signature's own text does not matter:
    //    the enveloped transform removes it, detached references point elsewhere)
    let first = rid.emit();
    let doc = tree::read(first.as_bytes(), &own_limits())?;
    let sig_path = emitted_signature_path(&doc.root, n)
        .ok_or_else(|| internal("signature not found after emission"))?;
    let mut refs = Vec::new();
    for uri in uris {
        let (apex, exclude) = if uri.is_empty() {
            (Vec::new(), Some(sig_path.as_slice()))
        } else {
            let id = uri.strip_prefix('#').unwrap_or(uri);
            (find_id(&doc.root, id, "sign_detached")?, None)
        };
        let bytes = c14n::canonicalize(&doc, &apex, exclude);
        let d = digest::digest(&digest::SHA256, &bytes);
        refs.push((uri.clone(), STANDARD.encode(d.as_ref())));
    }
    // 2. the SignedInfo with its digests, as emitted, canonicalized and signed
    set(&mut rid, signature_element(alg, &refs, "", cert_der));
    let second = rid.emit();
    let doc = tree::read(second.as_bytes(), &own_limits())?;
    let sig_path = emitted_signature_path(&doc.root, n)
        .ok_or_else(|| internal("signature not found after emission"))?;
    let mut si_path = sig_path.clone();
    let sig_el = doc
        .root
        .at(&sig_path)
        .ok_or_else(|| internal("signature path"))?;
    let si = sig_el
        .children
        .iter()
        .position(|c| matches!(c, tree::Node::Element(e) if e.is(DSIG_NS, "SignedInfo")))
        .ok_or_else(|| internal("SignedInfo not found after emission"))?;
    si_path.push(si);
    let signed_info = c14n::canonicalize(&doc, &si_path, None);
    let value = key.sign(&signed_info)?;
    set(
        &mut rid,
        signature_element(alg, &refs, &STANDARD.encode(&value), cert_der),
    );
    let out = rid.emit();
    // 3. check what goes out, as a receiver will
    let doc = tree::read(out.as_bytes(), &own_limits())?;
    let sigs = signatures(&doc)?;
    let mine = sigs
        .iter()
        .find(|s| s.path == sig_path)
        .ok_or_else(|| internal("signature not found in the output"))?;
    mine.verify(&doc, &cert_key)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// verification

/// A `ds:Signature` read from a received document.
#[derive(Debug)]
struct Signature {
    /// Path of the `ds:Signature` element from the root.
    path: Vec<usize>,
    /// Path of its `SignedInfo`.
    signed_info: Vec<usize>,
    /// Human-readable path of the `ds:Signature`.
    name: String,
    method: SignatureAlgorithm,
    references: Vec<Reference>,
    value: Vec<u8>,
}

#[derive(Debug)]
struct Reference {
    name: String,
    uri: String,
    enveloped: bool,
    digest: Vec<u8>,
}

impl Signature {
    fn is_enveloped(&self) -> bool {
        self.references.iter().any(|r| r.uri.is_empty())
    }

    fn verify(&self, doc: &Document, key: &PublicKey) -> Result<(), DsigError> {
        for r in &self.references {
            let apex = if r.uri.is_empty() {
                Vec::new()
            } else {
                let id = r.uri.strip_prefix('#').unwrap_or(&r.uri);
                find_id(&doc.root, id, &r.name)?
            };
            let exclude = r.enveloped.then_some(self.path.as_slice());
            let bytes = c14n::canonicalize(doc, &apex, exclude);
            let d = digest::digest(&digest::SHA256, &bytes);
            if d.as_ref() != r.digest.as_slice() {
                return Err(DsigError::DigestMismatch {
                    path: r.name.clone(),
                    uri: r.uri.clone(),
                });
            }
        }
        let signed_info = c14n::canonicalize(doc, &self.signed_info, None);
        match key.verify(self.method, &signed_info, &self.value) {
            Some(true) => Ok(()),
            Some(false) => Err(DsigError::BadSignature {
                path: format!("{}/SignatureValue", self.name),
            }),
            None => Err(DsigError::KeyTypeMismatch {
                path: format!("{}/SignedInfo/SignatureMethod", self.name),
                algorithm: self.method.uri(),
                key: key.kind(),
            }),
        }
    }
}

/// Human-readable path of the element at `path`.
fn describe(root: &Element, path: &[usize]) -> String {
    let mut s = format!("/{}", root.local);
    let mut el = root;
    for &i in path {
        match el.children.get(i) {
            Some(tree::Node::Element(e)) => {
                let same: Vec<_> = el.elements().filter(|c| c.local == e.local).collect();
                s.push('/');
                s.push_str(&e.local);
                if same.len() > 1 {
                    let nth = el
                        .children
                        .iter()
                        .take(i)
                        .filter(|c| matches!(c, tree::Node::Element(x) if x.local == e.local))
                        .count();
                    s.push_str(&format!("[{}]", nth + 1));
                }
                el = e;
            }
            _ => break,
        }
    }
    s
}

fn is_id_attr(a: &tree::Attr) -> bool {
    match a.ns.as_deref() {
        None => matches!(a.local.as_str(), "Id" | "ID" | "id"),
        Some(ns) => ns == "http://www.w3.org/XML/1998/namespace" && a.local == "id",
    }
}

/// The path of the one element carrying Id `id`.
fn find_id(root: &Element, id: &str, context: &str) -> Result<Vec<usize>, DsigError> {
    let mut found: Vec<Vec<usize>> = Vec::new();
    root.walk(|path, el| {
        if el.attrs.iter().any(|a| is_id_attr(a) && a.value == id) {
            found.push(path.to_vec());
        }
    });
    match found.len() {
        0 => Err(DsigError::MissingReference {
            path: context.into(),
            id: id.into(),
        }),
        1 => Ok(found.swap_remove(0)),
        count => Err(DsigError::DuplicateId {
            path: context.into(),
            id: id.into(),
            count,
        }),
    }
}

/// Every `ds:Signature` of the document, read and checked for shape.
fn signatures(doc: &Document) -> Result<Vec<Signature>, DsigError> {
    let mut paths = Vec::new();
    doc.root.walk(|path, el| {
        if el.is(DSIG_NS, "Signature") {
            paths.push(path.to_vec());
        }
    });
    if paths.len() > MAX_SIGNATURES {
        return Err(DsigError::TooManySignatures {
            kind: "ds:Signature",
            count: paths.len(),
            expected: "at most 16",
        });
    }
    paths
        .into_iter()
        .map(|p| read_signature(&doc.root, p))
        .collect()
}

/// The element children of `el`, refusing non-whitespace text.
fn element_children<'a>(
    root: &Element,
    path: &[usize],
    el: &'a Element,
) -> Result<Vec<(usize, &'a Element)>, DsigError> {
    let mut out = Vec::new();
    for (i, c) in el.children.iter().enumerate() {
        match c {
            tree::Node::Element(e) => out.push((i, e)),
            tree::Node::Text(t) if t.trim_matches([' ', '\t', '\r', '\n']).is_empty() => {}
            tree::Node::Text(_) => {
                return Err(DsigError::Malformed {
                    path: describe(root, path),
                    what: "text where only elements may appear".into(),
                });
            }
            tree::Node::Pi(..) => {}
        }
    }
    Ok(out)
}

fn expect_ds<'a>(
    root: &Element,
    parent: &[usize],
    child: Option<&(usize, &'a Element)>,
    name: &str,
) -> Result<(Vec<usize>, &'a Element), DsigError> {
    match child {
        Some((i, e)) if e.is(DSIG_NS, name) => {
            let mut p = parent.to_vec();
            p.push(*i);
            Ok((p, e))
        }
        Some((i, e)) => {
            let mut p = parent.to_vec();
            p.push(*i);
            Err(DsigError::Malformed {
                path: describe(root, &p),
                what: format!(
                    "found {{{}}}{} where ds:{name} is expected",
                    e.ns.as_deref().unwrap_or(""),
                    e.local
                ),
            })
        }
        None => Err(DsigError::Malformed {
            path: describe(root, parent),
            what: format!("missing ds:{name}"),
        }),
    }
}

fn algorithm<'a>(root: &Element, path: &[usize], el: &'a Element) -> Result<&'a str, DsigError> {
    el.attr("Algorithm").ok_or_else(|| DsigError::Malformed {
        path: describe(root, path),
        what: "missing attribute Algorithm".into(),
    })
}

/// Checks an exc-c14n method element's content: nothing, or an `InclusiveNamespaces` with an
/// empty PrefixList.
fn check_exc_content(root: &Element, path: &[usize], el: &Element) -> Result<(), DsigError> {
    for (i, c) in element_children(root, path, el)? {
        let mut p = path.to_vec();
        p.push(i);
        let empty_list = c.is(EXC_C14N, "InclusiveNamespaces")
            && c.attr("PrefixList")
                .is_none_or(|l| l.trim_matches([' ', '\t', '\r', '\n']).is_empty());
        if !empty_list {
            return Err(DsigError::Malformed {
                path: describe(root, &p),
                what: "exc-c14n parameters are not supported (only an empty InclusiveNamespaces PrefixList)".into(),
            });
        }
    }
    Ok(())
}

/// Decodes base64 text (whitespace allowed) of at most `max` characters.
fn base64_text(
    root: &Element,
    path: &[usize],
    el: &Element,
    max: usize,
) -> Result<Vec<u8>, DsigError> {
    if el.elements().next().is_some() {
        return Err(DsigError::Malformed {
            path: describe(root, path),
            what: "elements inside a base64 value".into(),
        });
    }
    let text = el.text();
    if text.len() > max {
        return Err(DsigError::Malformed {
            path: describe(root, path),
            what: format!(
                "value is {} characters, longer than the {max} accepted",
                text.len()
            ),
        });
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| DsigError::Malformed {
            path: describe(root, path),
            what: format!("not valid base64: {e}"),
        })
}

fn read_signature(root: &Element, path: Vec<usize>) -> Result<Signature, DsigError> {
    let name = describe(root, &path);
    let sig = root.at(&path).ok_or_else(|| DsigError::Malformed {
        path: name.clone(),
        what: "signature vanished".into(),
    })?;
    let kids = element_children(root, &path, sig)?;
    let (si_path, si) = expect_ds(root, &path, kids.first(), "SignedInfo")?;
    let (sv_path, sv) = expect_ds(root, &path, kids.get(1), "SignatureValue")?;
    for (i, c) in kids.iter().skip(2) {
        if !(c.is(DSIG_NS, "KeyInfo") || c.is(DSIG_NS, "Object")) {
            let mut p = path.clone();
            p.push(*i);
            return Err(DsigError::Malformed {
                path: describe(root, &p),
                what: "only ds:KeyInfo and ds:Object may follow ds:SignatureValue".into(),
            });
        }
    }
    let value = base64_text(root, &sv_path, sv, MAX_SIGNATURE_VALUE_CHARS)?;
    let si_kids = element_children(root, &si_path, si)?;
    let (cm_path, cm) = expect_ds(root, &si_path, si_kids.first(), "CanonicalizationMethod")?;
    let cm_alg = algorithm(root, &cm_path, cm)?;
    if cm_alg != EXC_C14N {
        return Err(DsigError::UnsupportedAlgorithm {
            path: describe(root, &cm_path),
            algorithm: cm_alg.into(),
            expected: "exclusive C14N (http://www.w3.org/2001/10/xml-exc-c14n#)",
        });
    }
    check_exc_content(root, &cm_path, cm)?;
    let (sm_path, sm) = expect_ds(root, &si_path, si_kids.get(1), "SignatureMethod")?;
    let sm_alg = algorithm(root, &sm_path, sm)?;
    let method =
        SignatureAlgorithm::from_uri(sm_alg).ok_or_else(|| DsigError::UnsupportedAlgorithm {
            path: describe(root, &sm_path),
            algorithm: sm_alg.into(),
            expected: "rsa-sha256 or ecdsa-sha256 (http://www.w3.org/2001/04/xmldsig-more#)",
        })?;
    if !element_children(root, &sm_path, sm)?.is_empty() {
        return Err(DsigError::Malformed {
            path: describe(root, &sm_path),
            what: "SignatureMethod parameters are not supported".into(),
        });
    }
    let ref_kids = si_kids.get(2..).unwrap_or_default();
    if ref_kids.is_empty() {
        return Err(DsigError::Malformed {
            path: describe(root, &si_path),
            what: "missing ds:Reference".into(),
        });
    }
    if ref_kids.len() > MAX_REFERENCES {
        return Err(DsigError::Malformed {
            path: describe(root, &si_path),
            what: format!(
                "{} References, more than the {MAX_REFERENCES} accepted",
                ref_kids.len()
            ),
        });
    }
    let mut references = Vec::new();
    for k in ref_kids {
        let (r_path, r) = expect_ds(root, &si_path, Some(k), "Reference")?;
        references.push(read_reference(root, &r_path, r)?);
    }
    Ok(Signature {
        path,
        signed_info: si_path,
        name,
        method,
        references,
        value,
    })
}

fn read_reference(root: &Element, path: &[usize], r: &Element) -> Result<Reference, DsigError> {
    let name = describe(root, path);
    let uri = r.attr("URI").ok_or_else(|| DsigError::Malformed {
        path: name.clone(),
        what: "missing attribute URI (a Reference must name what it signs)".into(),
    })?;
    if !(uri.is_empty()
        || (uri.starts_with('#') && uri.len() > 1 && !uri.starts_with("#xpointer(")))
    {
        return Err(DsigError::UnsupportedUri {
            path: name,
            uri: uri.into(),
        });
    }
    let kids = element_children(root, path, r)?;
    let mut kids = kids.iter().peekable();
    let mut transforms: Vec<&str> = Vec::new();
    if let Some((i, t)) = kids.peek().filter(|(_, e)| e.is(DSIG_NS, "Transforms")) {
        let mut t_path = path.to_vec();
        t_path.push(*i);
        for k in element_children(root, &t_path, t)? {
            let (tr_path, tr) = expect_ds(root, &t_path, Some(&k), "Transform")?;
            let alg = algorithm(root, &tr_path, tr)?;
            match alg {
                EXC_C14N => check_exc_content(root, &tr_path, tr)?,
                ENVELOPED_SIGNATURE if element_children(root, &tr_path, tr)?.is_empty() => {}
                _ => {
                    return Err(DsigError::UnsupportedAlgorithm {
                        path: describe(root, &tr_path),
                        algorithm: alg.into(),
                        expected: "the transforms enveloped-signature and exc-c14n only",
                    });
                }
            }
            transforms.push(alg);
        }
        kids.next();
    }
    let enveloped = match transforms.as_slice() {
        [EXC_C14N] => false,
        [ENVELOPED_SIGNATURE, EXC_C14N] => true,
        _ => {
            return Err(DsigError::Malformed {
                path: format!("{name}/Transforms"),
                what: "expected the transforms exc-c14n, or enveloped-signature then exc-c14n"
                    .into(),
            });
        }
    };
    if uri.is_empty() && !enveloped {
        return Err(DsigError::Malformed {
            path: format!("{name}/Transforms"),
            what: "a Reference URI=\"\" needs the enveloped-signature transform".into(),
        });
    }
    let (dm_path, dm) = expect_ds(root, path, kids.next(), "DigestMethod")?;
    let dm_alg = algorithm(root, &dm_path, dm)?;
    if dm_alg != SHA256 {
        return Err(DsigError::UnsupportedAlgorithm {
            path: describe(root, &dm_path),
            algorithm: dm_alg.into(),
            expected: "sha256 (http://www.w3.org/2001/04/xmlenc#sha256)",
        });
    }
    let (dv_path, dv) = expect_ds(root, path, kids.next(), "DigestValue")?;
    let digest = base64_text(root, &dv_path, dv, 128)?;
    if digest.len() != 32 {
        return Err(DsigError::Malformed {
            path: describe(root, &dv_path),
            what: format!("a SHA-256 digest is 32 bytes, this one is {}", digest.len()),
        });
    }
    if let Some((i, _)) = kids.next() {
        let mut p = path.to_vec();
        p.push(*i);
        return Err(DsigError::Malformed {
            path: describe(root, &p),
            what: "unexpected element after ds:DigestValue".into(),
        });
    }
    Ok(Reference {
        name,
        uri: uri.into(),
        enveloped,
        digest,
    })
}
