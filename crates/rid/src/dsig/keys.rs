//! Keys: PKCS#8 private keys and X.509 certificates in PEM, and the public key of a certificate
//! found with a small bounded DER walk.
//!
//! Contract: nothing here panics on any input; a certificate is read only as far as its
//! `subjectPublicKeyInfo` (the chain of trust is the transport's business, the peer's
//! certificate is given by the caller), and only RSA (`rsaEncryption`) and ECDSA P-256
//! (`id-ecPublicKey` with `prime256v1`) keys are accepted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};

use super::{DsigError, SignatureAlgorithm};

/// A private key that signs RID messages: RSA (rsa-sha256, PKCS#1 v1.5) or ECDSA P-256
/// (ecdsa-sha256), loaded from PKCS#8.
pub struct SigningKey {
    inner: Inner,
    rng: SystemRandom,
}

enum Inner {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a `-----BEGIN PRIVATE KEY-----` (unencrypted PKCS#8) PEM block.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, DsigError> {
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----")
            || pem.contains("-----BEGIN EC PRIVATE KEY-----")
        {
            return Err(DsigError::Key {
                what: "the PEM holds a PKCS#1/SEC1 key; convert it to PKCS#8 with \
                       `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-pkcs8.pem`"
                    .into(),
            });
        }
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(DsigError::Key {
                what: "the PKCS#8 key is encrypted; give an unencrypted key \
                       (`openssl pkcs8 -topk8 -nocrypt`)"
                    .into(),
            });
        }
        let der = pem_blocks(pem, "PRIVATE KEY")
            .map_err(|what| DsigError::Key { what })?
            .into_iter()
            .next()
            .ok_or_else(|| DsigError::Key {
                what: "no -----BEGIN PRIVATE KEY----- block in the PEM".into(),
            })?;
        Self::from_pkcs8_der(&der)
    }

    /// Reads a DER PKCS#8 `PrivateKeyInfo` (RSA of 2048 bits or more, or ECDSA P-256).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, DsigError> {
        let rng = SystemRandom::new();
        if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            return Ok(Self {
                inner: Inner::Rsa(k),
                rng,
            });
        }
        match EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            Ok(k) => Ok(Self {
                inner: Inner::Ecdsa(k),
                rng,
            }),
            Err(e) => Err(DsigError::Key {
                what: format!(
                    "not an RSA (2048 to 8192 bits) or ECDSA P-256 PKCS#8 key ({e}); \
                     make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"
                ),
            }),
        }
    }

    /// The signature algorithm this key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self.inner {
            Inner::Rsa(_) => SignatureAlgorithm::RsaSha256,
            Inner::Ecdsa(_) => SignatureAlgorithm::EcdsaP256Sha256,
        }
    }

    /// The public key, in the form [`PublicKey`] compares with a certificate's.
    pub(crate) fn public_key_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Rsa(k) => k.public().as_ref(),
            Inner::Ecdsa(k) => k.public_key().as_ref(),
        }
    }

    /// Signs `msg`: PKCS#1 v1.5 with SHA-256, or ECDSA P-256 SHA-256 as raw `r || s`.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, DsigError> {
        let failed = |_| DsigError::Key {
            what: "the signing operation failed".into(),
        };
        match &self.inner {
            Inner::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            Inner::Ecdsa(k) => Ok(k.sign(&self.rng, msg).map_err(failed)?.as_ref().to_vec()),
        }
    }
}

/// Every `-----BEGIN CERTIFICATE-----` block of `pem`, as DER, in order.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, DsigError> {
    let certs = pem_blocks(pem, "CERTIFICATE").map_err(|what| DsigError::Certificate { what })?;
    if certs.is_empty() {
        return Err(DsigError::Certificate {
            what: "no -----BEGIN CERTIFICATE----- block in the PEM".into(),
        });
    }
    Ok(certs)
}

/// The base64 bodies of the PEM blocks labelled `label`, decoded.
fn pem_blocks(pem: &str, label: &str) -> Result<Vec<Vec<u8>>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let Some(stop) = body.find(&end) else {
            return Err(format!("{begin} without {end}"));
        };
        let b64: String = body[..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("{label} block is not valid base64: {e}"))?;
        out.push(der);
        rest = &body[stop + end.len()..];
    }
    Ok(out)
}

/// A certificate's public key, ready to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// `RSAPublicKey` DER (the subjectPublicKey bits).
    Rsa(Vec<u8>),
    /// An uncompressed P-256 point.
    EcP256(Vec<u8>),
}

impl PublicKey {
    /// The key of the DER certificate `cert`.
    pub(crate) fn from_certificate(cert: &[u8]) -> Result<Self, DsigError> {
        let bad = |what: &str| DsigError::Certificate {
            what: format!("{what} (expected a DER X.509 certificate)"),
        };
        let (tag, certificate, _) = tlv(cert).ok_or_else(|| bad("not DER"))?;
        if tag != 0x30 {
            return Err(bad("Certificate is not a SEQUENCE"));
        }
        let (tag, tbs, _) = tlv(certificate).ok_or_else(|| bad("no tbsCertificate"))?;
        if tag != 0x30 {
            return Err(bad("tbsCertificate is not a SEQUENCE"));
        }
        let mut rest = tbs;
        let mut fields = Vec::new();
        while !rest.is_empty() && fields.len() < 8 {
            let (tag, content, next) = tlv(rest).ok_or_else(|| bad("truncated tbsCertificate"))?;
            fields.push((tag, content));
            rest = next;
        }
        // skip the optional [0] version: serial, signature, issuer, validity, subject, spki
        let fields: Vec<_> = match fields.first() {
            Some((0xA0, _)) => fields.get(1..).unwrap_or_default().to_vec(),
            _ => fields,
        };
        let (tag, spki) = *fields
            .get(5)
            .ok_or_else(|| bad("tbsCertificate has no subjectPublicKeyInfo"))?;
        if tag != 0x30 {
            return Err(bad("subjectPublicKeyInfo is not a SEQUENCE"));
        }
        Self::from_spki_content(spki).ok_or_else(|| {
            bad("subjectPublicKeyInfo is not an RSA or ECDSA P-256 key (the only ones supported)")
        })
    }

    fn from_spki_content(spki: &[u8]) -> Option<Self> {
        const RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
        const EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
        const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
        let (tag, alg, rest) = tlv(spki)?;
        if tag != 0x30 {
            return None;
        }
        let (tag, bits, _) = tlv(rest)?;
        if tag != 0x03 {
            return None;
        }
        let (&unused, key) = bits.split_first()?;
        if unused != 0 {
            return None;
        }
        let (tag, oid, params) = tlv(alg)?;
        if tag != 0x06 {
            return None;
        }
        if oid == RSA {
            return Some(Self::Rsa(key.to_vec()));
        }
        if oid == EC {
            let (tag, curve, _) = tlv(params)?;
            if tag == 0x06 && curve == P256 && key.len() == 65 && key.first() == Some(&4) {
                return Some(Self::EcP256(key.to_vec()));
            }
        }
        None
    }

    /// The raw key bytes, as [`SigningKey::public_key_bytes`] gives them.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Rsa(k) | Self::EcP256(k) => k,
        }
    }

    /// A name for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "an RSA key",
            Self::EcP256(_) => "an ECDSA P-256 key",
        }
    }

    /// Whether `sig` is a valid `alg` signature of `msg` under this key; `None` when the
    /// algorithm does not fit the key type.
    pub(crate) fn verify(&self, alg: SignatureAlgorithm, msg: &[u8], sig: &[u8]) -> Option<bool> {
        let (params, key): (&dyn signature::VerificationAlgorithm, &[u8]) = match (alg, self) {
            (SignatureAlgorithm::RsaSha256, Self::Rsa(k)) => {
                (&signature::RSA_PKCS1_2048_8192_SHA256, k)
            }
            (SignatureAlgorithm::EcdsaP256Sha256, Self::EcP256(k)) => {
                (&signature::ECDSA_P256_SHA256_FIXED, k)
            }
            _ => return None,
        };
        Some(
            signature::UnparsedPublicKey::new(params, key)
                .verify(msg, sig)
                .is_ok(),
        )
    }
}

/// One DER tag-length-value: (tag, content, rest). Single-byte tags, definite lengths of at
/// most four length bytes, bounded by the input.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..n {
            let (&b, r) = rest.split_first()?;
            len = (len << 8) | usize::from(b);
            rest = r;
        }
        len
    };
    if len > rest.len() {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_refuses_truncation_and_long_lengths() {
        assert!(tlv(&[]).is_none());
        assert!(tlv(&[0x30]).is_none());
        assert!(tlv(&[0x30, 0x05, 1, 2]).is_none());
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(tlv(&[0x30, 0x80]).is_none());
        assert_eq!(
            tlv(&[0x02, 0x01, 7, 9]),
            Some((0x02, &[7u8][..], &[9u8][..]))
        );
        assert_eq!(
            tlv(&[0x04, 0x81, 0x01, 5]),
            Some((0x04, &[5u8][..], &[][..]))
        );
    }

    #[test]
    fn garbage_certificates_are_refused_not_panics() {
        for cert in [
            &b""[..],
            &[0x30, 0x00],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x30, 0x04, 0x30, 0x02, 0xA0, 0x00],
            &[0xFF; 64],
        ] {
            assert!(PublicKey::from_certificate(cert).is_err());
        }
    }
}
