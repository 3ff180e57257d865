//! The checks of `[api]` ([`ApiConfig`]), its tokens and its TLS files.

use pharos_model::config::ConfigError;

use crate::ApiConfig;
use crate::auth::TokenError;
use crate::server::TlsError;

/// Why `[api]` cannot be used: a key out of range, a `[[api.token]]` entry, or the `[api.tls]`
/// files.
#[derive(Debug, thiserror::Error)]
pub enum ApiConfigError {
    /// A key of `[api]` out of its range.
    #[error(transparent)]
    Key(#[from] ConfigError),
    /// A `[[api.token]]` entry that cannot be used.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The `[api.tls]` certificate, key or CA cannot be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl ApiConfig {
    /// Checks the keys of `[api]`, `[[api.token]]` and `[api.tls]` (reading the certificate
    /// files); the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ApiConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "api",
                "max_body_bytes",
                self.max_body_bytes,
                "must be at least 1024",
            )
            .into());
        }
        if self.max_push_messages == 0 {
            return Err(
                ConfigError::new("api", "max_push_messages", 0, "must be at least 1").into(),
            );
        }
        for (key, v) in [
            ("rate_per_second", self.rate_per_second),
            ("push_rate_per_second", self.push_rate_per_second),
            ("nsf_messages_per_second", self.nsf_messages_per_second),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(ConfigError::new(
                    "api",
                    key,
                    v,
                    "must be a number >= 0 (0 turns the limit off)",
                )
                .into());
            }
        }
        for (key, v) in [("burst", self.burst), ("push_burst", self.push_burst)] {
            if !v.is_finite() || v < 1.0 {
                return Err(ConfigError::new("api", key, v, "must be at least 1").into());
            }
        }
        crate::auth::tokens::check_configured(&self.token)?;
        if let Some(t) = &self.tls {
            crate::server::tls_acceptor(t)?;
        }
        Ok(())
    }
}
