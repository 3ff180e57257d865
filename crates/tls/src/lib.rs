//! TLS for every part of Pharos, in one place below the listeners and the clients: rustls with
//! the ring provider (no C TLS stack), PEM files read with `rustls-pki-types`.
//!
//! - [`server_config`]: the listeners that speak TLS (syslog RFC 5425, the API, later RID), with
//!   optional client certificates verified against a CA.
//! - [`client_config`]: the clients (webhook and syslog sinks, the CLI), trusting the Mozilla
//!   roots plus an optional CA file for self-signed receivers.
//!
//! Errors are plain strings that name the configuration key and the fix; each caller puts them
//! in its own error type.

#![forbid(unsafe_code)]

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

/// A client configuration trusting the Mozilla roots plus the certificates of the PEM file
/// `ca_file` (for self-signed receivers). The error names the file and the fix; the caller
/// prefixes the configuration key it came from.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |e: String| {
            format!(
                "cannot read CA certificates from {:?}: {e}; give a PEM file with one or more CERTIFICATE blocks",
                path.display().to_string()
            )
        };
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("no certificate found".into()));
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// A client configuration (ring provider, Mozilla roots) for HTTPS clients that trust only the
/// public roots, e.g. the CLI's reqwest client, which is built without a default crypto provider.
pub fn https_client_config() -> rustls::ClientConfig {
    client_config(None).expect("the Mozilla roots and the ring provider always load")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn server_and_client_configs_load_and_errors_name_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair(tmp.path());
        server_config(&cert, &key, None, false).unwrap();
        server_config(&cert, &key, Some(&cert), true).unwrap();
        let e = server_config(&key, &key, None, false).unwrap_err();
        assert!(e.starts_with("cert = ") && e.contains("CERTIFICATE"), "{e}");
        let e = server_config(&cert, &tmp.path().join("nope.pem"), None, false).unwrap_err();
        assert!(e.starts_with("key = "), "{e}");
        client_config(Some(&cert)).unwrap();
        let e = client_config(Some(&key)).unwrap_err();
        assert!(e.contains("key.pem") && e.contains("no certificate"), "{e}");
        https_client_config();
    }
}
