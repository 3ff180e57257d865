//! TLS server configuration shared by the listeners that speak TLS (syslog RFC 5425, the API):
//! rustls with the ring provider, PEM files read with `rustls-pki-types`, optional client
//! certificates verified against a CA.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{what} = {:?}: cannot read PEM certificates: {e}; give the path of a readable PEM file",
                path.display().to_string()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{what} = {:?}: no CERTIFICATE block found; give a PEM file",
            path.display().to_string()
        ));
    }
    Ok(certs)
}

/// A server configuration from the certificate chain and key (PEM files) and, with `client_ca`,
/// client-certificate verification against that CA (clients without a certificate are refused
/// when `require_client_cert`, let through otherwise). Errors name the key (`cert`, `key`,
/// `client_ca`) and the fix.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    require_client_cert: bool,
) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(cert, "cert")?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "key = {:?}: cannot read a PEM private key: {e}; give the path of the server's private key (PKCS#8, PKCS#1 or SEC1 PEM)",
            key.display().to_string()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca, "client_ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("client_ca = {:?}: {e}", ca.display().to_string()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if require_client_cert {
                v
            } else {
                v.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| format!("client_ca = {:?}: {e}", ca.display().to_string()))?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    builder.with_single_cert(chain, key_der).map_err(|e| {
        format!(
            "cert = {:?} and key = {:?} do not make a usable pair: {e}; give the key of that certificate",
            cert.display().to_string(),
            key.display().to_string()
        )
    })
}
