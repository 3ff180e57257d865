//! The peer allow-list and the two certificate verifiers built on it: the server's (a client
//! certificate must chain to the CA and be listed) and the client's (the server's certificate
//! must chain to the CA, carry the DNS-ID dialled, and be listed).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::TransportError;

/// A SHA-256 fingerprint pinning a peer: of its whole certificate (changes at every renewal) or
/// of its SubjectPublicKeyInfo (survives a renewal that keeps the key).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fingerprint {
    /// SHA-256 of the certificate's DER; written `cert-sha256:<64 hex digits>`.
    Certificate([u8; 32]),
    /// SHA-256 of the certificate's DER SubjectPublicKeyInfo; written `spki-sha256:<64 hex>`.
    Spki([u8; 32]),
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub(crate) fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        Self::Certificate(sha256(der))
    }

    /// The SPKI fingerprint of a DER certificate (`None` if it does not parse as X.509 v3).
    pub fn of_spki(der: &[u8]) -> Option<Self> {
        let der = CertificateDer::from(der);
        let ee = webpki::EndEntityCert::try_from(&der).ok()?;
        Some(Self::Spki(sha256(ee.subject_public_key_info().as_ref())))
    }

    /// Parses `cert-sha256:<hex>` or `spki-sha256:<hex>` (64 hex digits, either case, `:`
    /// separators allowed, as `openssl x509 -fingerprint -sha256` prints them).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (kind, hexs) = s.split_once(':').ok_or_else(|| {
            format!("{s:?}: expected cert-sha256:<64 hex digits> or spki-sha256:<64 hex digits>")
        })?;
        let digits: Vec<u8> = hexs.bytes().filter(|b| *b != b':').collect();
        let bad = || {
            format!(
                "{s:?}: expected 64 hex digits after {kind}: (the SHA-256 of the certificate or of its public key)"
            )
        };
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let v = |c: u8| (c as char).to_digit(16);
            match (v(pair[0]), v(pair[1])) {
                (Some(a), Some(b)) => out[i] = (a * 16 + b) as u8,
                _ => return Err(bad()),
            }
        }
        match kind.to_ascii_lowercase().as_str() {
            "cert-sha256" | "sha256" => Ok(Self::Certificate(out)),
            "spki-sha256" => Ok(Self::Spki(out)),
            _ => Err(format!(
                "{s:?}: unknown fingerprint kind {kind:?}; use cert-sha256: or spki-sha256:"
            )),
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(d) => write!(f, "cert-sha256:{}", hex(d)),
            Self::Spki(d) => write!(f, "spki-sha256:{}", hex(d)),
        }
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One entry of the peer allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's name in Pharos (logs, state table, rate limits).
    pub name: String,
    /// The pin its certificate must match.
    pub fingerprint: Fingerprint,
    /// The DNS-ID its certificate must carry (exact match, no wildcard), if pinned. The client
    /// also requires a peer URL's host to be this name.
    pub dns_id: Option<String>,
}

impl Peer {
    /// A peer pinned by `fingerprint`, without a DNS-ID.
    pub fn new(name: impl Into<String>, fingerprint: Fingerprint) -> Self {
        Self {
            name: name.into(),
            fingerprint,
            dns_id: None,
        }
    }

    /// The same peer, requiring DNS-ID `dns_id`.
    pub fn with_dns_id(mut self, dns_id: impl Into<String>) -> Self {
        self.dns_id = Some(dns_id.into());
        self
    }
}

/// The identity of an authenticated peer, handed to the RID handler.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerId {
    /// The allow-list name.
    pub name: String,
    /// The pin it matched.
    pub fingerprint: Fingerprint,
    /// The DNS-ID it was pinned to, if any.
    pub dns_id: Option<String>,
    /// The end-entity certificate (DER) it presented: the key its enveloped signatures are
    /// checked with unless the configuration names another signing certificate.
    pub certificate: Vec<u8>,
}

/// The explicit allow-list of peer certificates (RFC 6546 §9.3).
#[derive(Debug, Clone)]
pub struct AllowList {
    peers: Vec<Peer>,
}

fn valid_dns_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl AllowList {
    /// Checks and builds the list: names unique and non-empty, DNS-IDs valid names without
    /// wildcards and unique. `key` names the configuration key in errors.
    pub fn new(peers: Vec<Peer>, key: &str) -> Result<Self, TransportError> {
        if peers.is_empty() {
            return Err(TransportError::config(
                key,
                "is empty: list at least one peer (name, fingerprint, dns_id); RID accepts only listed peers",
            ));
        }
        for (i, p) in peers.iter().enumerate() {
            let at = format!("{key}[{i}]");
            if p.name.trim().is_empty() || p.name.chars().any(char::is_control) {
                return Err(TransportError::config(
                    &at,
                    format!(
                        "name = {:?}: give a non-empty name without control characters",
                        p.name
                    ),
                ));
            }
            if peers[..i].iter().any(|q| q.name == p.name) {
                return Err(TransportError::config(
                    &at,
                    format!(
                        "name = {:?} appears twice: give each peer its own name",
                        p.name
                    ),
                ));
            }
            if let Some(d) = &p.dns_id {
                if d.contains('*') {
                    return Err(TransportError::config(
                        &at,
                        format!(
                            "dns_id = {d:?}: wildcards are refused (RFC 6546); give the peer's exact DNS name"
                        ),
                    ));
                }
                if !valid_dns_id(d) {
                    return Err(TransportError::config(
                        &at,
                        format!("dns_id = {d:?}: expected a DNS name like rid.example.net"),
                    ));
                }
                if peers[..i].iter().any(|q| {
                    q.dns_id
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(d))
                }) {
                    return Err(TransportError::config(
                        &at,
                        format!("dns_id = {d:?} appears twice: each peer has its own DNS-ID"),
                    ));
                }
            }
        }
        Ok(Self { peers })
    }

    /// The listed peers.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// The peer named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// The listed peer whose pin the DER certificate `der` matches, if any. A certificate that
    /// does not parse, or that presents a wildcard DNS-ID, matches nobody; a peer pinned to a
    /// DNS-ID matches only if the certificate presents exactly that name.
    pub fn identify(&self, der: &[u8]) -> Option<PeerId> {
        let cert = CertificateDer::from(der);
        let ee = webpki::EndEntityCert::try_from(&cert).ok()?;
        let names: Vec<&str> = ee.valid_dns_names().collect();
        if names.iter().any(|n| n.contains('*')) {
            return None;
        }
        let by_cert = Fingerprint::Certificate(sha256(der));
        let by_spki = Fingerprint::Spki(sha256(ee.subject_public_key_info().as_ref()));
        self.peers
            .iter()
            .find(|p| {
                (p.fingerprint == by_cert || p.fingerprint == by_spki)
                    && p.dns_id
                        .as_deref()
                        .is_none_or(|d| names.iter().any(|n| n.eq_ignore_ascii_case(d)))
            })
            .map(|p| PeerId {
                name: p.name.clone(),
                fingerprint: p.fingerprint,
                dns_id: p.dns_id.clone(),
                certificate: der.to_vec(),
            })
    }
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn load_certs(
    path: &Path,
    key: &str,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            TransportError::config(
                key,
                format!(
                    "{:?}: cannot read PEM certificates: {e}; give the path of a readable PEM file",
                    path.display().to_string()
                ),
            )
        })?;
    if certs.is_empty() {
        return Err(TransportError::config(
            key,
            format!(
                "{:?}: no CERTIFICATE block found; give a PEM file",
                path.display().to_string()
            ),
        ));
    }
    Ok(certs)
}

pub(crate) fn load_key(path: &Path, key: &str) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        TransportError::config(
            key,
            format!(
                "{:?}: cannot read a PEM private key: {e}; give the private key of the certificate (PKCS#8, PKCS#1 or SEC1 PEM)",
                path.display().to_string()
            ),
        )
    })
}

pub(crate) fn load_roots(path: &Path, key: &str) -> Result<rustls::RootCertStore, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(path, key)? {
        roots.add(c).map_err(|e| {
            TransportError::config(
                key,
                format!(
                    "{:?}: not a usable CA certificate: {e}",
                    path.display().to_string()
                ),
            )
        })?;
    }
    Ok(roots)
}

/// The server's verifier: WebPKI path validation against the CA, then the allow-list.
#[derive(Debug)]
pub(crate) struct AllowListClientVerifier {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    pub(crate) allow: Arc<AllowList>,
}

impl AllowListClientVerifier {
    pub(crate) fn new(
        roots: rustls::RootCertStore,
        allow: Arc<AllowList>,
        key: &str,
    ) -> Result<Self, TransportError> {
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TransportError::config(key, format!("client CA unusable: {e}")))?;
        Ok(Self { inner, allow })
    }
}

impl ClientCertVerifier for AllowListClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match self.allow.identify(end_entity.as_ref()) {
            Some(_) => Ok(ok),
            None => {
                tracing::info!(
                    fingerprint = %Fingerprint::of_certificate(end_entity.as_ref()),
                    "RID: refused a client certificate from the right CA that is not in the peer allow-list"
                );
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client's verifier: WebPKI path validation and DNS-ID check against the CA, then the
/// allow-list (the listed peer's DNS-ID, if pinned, must be the name dialled).
#[derive(Debug)]
pub(crate) struct AllowListServerVerifier {
    pub(crate) inner: Arc<WebPkiServerVerifier>,
    pub(crate) allow: Arc<AllowList>,
}

impl AllowListServerVerifier {
    pub(crate) fn new(
        roots: rustls::RootCertStore,
        allow: Arc<AllowList>,
        key: &str,
    ) -> Result<Self, TransportError> {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TransportError::config(key, format!("CA unusable: {e}")))?;
        Ok(Self { inner, allow })
    }
}

impl ServerCertVerifier for AllowListServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let dialled = server_name.to_str();
        match self.allow.identify(end_entity.as_ref()) {
            Some(p)
                if p.dns_id
                    .as_deref()
                    .is_none_or(|d| d.eq_ignore_ascii_case(&dialled)) =>
            {
                Ok(ok)
            }
            _ => {
                tracing::info!(
                    server = %dialled,
                    fingerprint = %Fingerprint::of_certificate(end_entity.as_ref()),
                    "RID: refused a server certificate that is not in the peer allow-list for that name"
                );
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_both_spellings_and_refuse_the_rest() {
        let d = [0xabu8; 32];
        let s = Fingerprint::Certificate(d).to_string();
        assert_eq!(Fingerprint::parse(&s).unwrap(), Fingerprint::Certificate(d));
        let colons = format!("spki-sha256:{}", vec!["AB"; 32].join(":"));
        assert_eq!(Fingerprint::parse(&colons).unwrap(), Fingerprint::Spki(d));
        assert!(Fingerprint::parse("md5:abcd").is_err());
        assert!(Fingerprint::parse("cert-sha256:zz").is_err());
        assert!(Fingerprint::parse(&format!("cert-sha256:{}", "g".repeat(64))).is_err());
        assert!(Fingerprint::parse("no colon").is_err());
    }

    #[test]
    fn allow_list_refuses_wildcards_duplicates_and_empty_names() {
        let f = Fingerprint::Certificate([1; 32]);
        assert!(AllowList::new(vec![], "rid.peers").is_err());
        let e = AllowList::new(
            vec![Peer::new("a", f).with_dns_id("*.example.net")],
            "rid.peers",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rid.peers[0]") && e.contains("wildcard"), "{e}");
        assert!(AllowList::new(vec![Peer::new("a", f), Peer::new("a", f)], "p").is_err());
        assert!(AllowList::new(vec![Peer::new(" ", f)], "p").is_err());
        assert!(AllowList::new(vec![Peer::new("a", f).with_dns_id("bad name")], "p").is_err());
        AllowList::new(vec![Peer::new("a", f).with_dns_id("rid.example.net")], "p").unwrap();
    }
}
