//! The RFC 5425 TLS acceptor: rustls with the ring provider, PEM files read with
//! `rustls-pki-types`, optional client-certificate verification against a CA.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::TlsConfig;

fn certs(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{what} = {}: cannot read PEM certificates: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{what} = {}: no CERTIFICATE block found; give a PEM file",
            path.display()
        ));
    }
    Ok(certs)
}

/// Builds the acceptor from the certificate, key and optional client CA.
pub(super) fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&cfg.cert, "cert")?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| {
        format!(
            "key = {}: cannot read a PEM private key: {e}",
            cfg.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca, "client_ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("client_ca = {}: {e}", ca.display()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if cfg.require_client_cert {
                v
            } else {
                v.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| format!("client_ca = {}: {e}", ca.display()))?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "cert = {} and key = {} do not make a usable pair: {e}",
            cfg.cert.display(),
            cfg.key.display()
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
