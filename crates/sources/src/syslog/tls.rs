//! The RFC 5425 TLS acceptor, over the shared [`pharos_tls::server_config`].

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use super::TlsConfig;

/// Builds the acceptor from the certificate, key and optional client CA.
pub(super) fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, String> {
    let config = pharos_tls::server_config(
        &cfg.cert,
        &cfg.key,
        cfg.client_ca.as_deref(),
        cfg.require_client_cert,
    )?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
