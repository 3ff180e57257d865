//! Authentication, authorisation and rate limits of the API.
//!
//! Contract:
//! - Every route needs a role, decided by rule from the method and path ([`required`]), so routes
//!   added later are covered: `/healthz` is public, and so are the console's login page, its
//!   static assets, `/` (a redirect) and logging in (`POST /api/v1/session`);
//!   `GET /api/v1/config` needs `admin`; `GET`/`HEAD` need `viewer` (also `/metrics`
//!   unless `[api] public_metrics = true`); `POST /api/v1/push` needs `nsf` (or `admin`, or a
//!   verified client certificate); `/api/v1/tokens*` needs `admin`; any other method needs
//!   `analyst`.
//! - Tokens are `Authorization: Bearer phr_...`, or a console session cookie opened with one
//!   ([`session`], with a CSRF token on state-changing requests); only their SHA-256 is stored
//!   ([`tokens`]). A
//!   revoked or expired token is refused on the next request (every lookup reads the database).
//! - Missing, unknown, expired or revoked tokens get 401 with `WWW-Authenticate: Bearer`; a role
//!   too low gets 403; a client over its rate gets 429 with `Retry-After`. Tokens are never logged.

pub mod cert;
pub mod limit;
pub mod middleware;
pub(crate) mod routes;
pub mod session;
pub mod tokens;

use std::path::PathBuf;

use axum::http::Method;

pub use limit::RateLimiter;
pub use tokens::{TokenError, TokenInfo, TokenStore};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything (GET/HEAD).
    Viewer,
    /// Reads and changes state (acknowledge events, ...).
    Analyst,
    /// Everything, including token management and push.
    Admin,
    /// Pushes notifications only (`POST /api/v1/push`).
    Nsf,
}

impl Role {
    /// Every role, for messages.
    pub const ALL: &'static str = "viewer, analyst, admin or nsf";

    /// The role's name as written in the configuration and the API.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Nsf => "nsf",
        }
    }

    /// Parses a role name (`viewer`, `analyst`, `admin`, `nsf`).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            "nsf" => Some(Role::Nsf),
            _ => None,
        }
    }

    /// Whether a holder of `self` may do what needs `need`.
    pub fn allows(self, need: Role) -> bool {
        let rank = |r: Role| match r {
            Role::Viewer => 1,
            Role::Analyst => 2,
            Role::Admin => 3,
            Role::Nsf => 0,
        };
        match need {
            Role::Nsf => matches!(self, Role::Nsf | Role::Admin),
            _ => rank(self) >= rank(need),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: anyone may call it.
    Public,
    /// A token (or for push, a client certificate) with at least this role.
    Role(Role),
}

/// The path of the push route.
pub const PUSH_PATH: &str = "/api/v1/push";

/// The console's login, session and logout route.
pub const SESSION_PATH: &str = "/api/v1/session";

/// The role a request needs, by rule (see the module documentation).
pub fn required(method: &Method, path: &str, public_metrics: bool) -> Need {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if path == "/healthz" {
        return Need::Public;
    }
    // The console's login page and static assets carry no data; `/` only redirects; logging in
    // is what gives an identity.
    if (*method == Method::GET || *method == Method::HEAD)
        && (path == "/" || path == "/ui/login" || path.starts_with("/ui/assets/"))
    {
        return Need::Public;
    }
    if path == SESSION_PATH {
        return match *method {
            Method::POST => Need::Public,
            _ => Need::Role(Role::Viewer),
        };
    }
    if path == "/api/v1/config" {
        return Need::Role(Role::Admin);
    }
    if path == "/api/v1/tokens" || path.starts_with("/api/v1/tokens/") {
        return Need::Role(Role::Admin);
    }
    if *method == Method::GET || *method == Method::HEAD {
        if path == "/metrics" && public_metrics {
            return Need::Public;
        }
        return Need::Role(Role::Viewer);
    }
    if *method == Method::POST && path == PUSH_PATH {
        return Need::Role(Role::Nsf);
    }
    Need::Role(Role::Analyst)
}

/// `[[api.token]]`: a token defined in the configuration by the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Name shown in lists and used as the rate-limit client.
    pub name: String,
    /// viewer, analyst, admin or nsf.
    pub role: Role,
    /// Hex SHA-256 of the secret (`printf %s "$TOKEN" | sha256sum`); the secret is never written here.
    pub sha256: String,
    /// Role nsf only: the NSF name its pushes are stored under, whatever the documents say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsf: Option<String>,
}

/// `[api.tls]`: serve HTTPS, optionally asking for client certificates.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; unset: none asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients without a certificate (true) or let them use tokens (false).
    #[serde(default)]
    pub require_client_cert: bool,
}

/// Who made a request, as the middleware established it (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name, or the NSF name of a client certificate.
    pub name: String,
    /// The role granted.
    pub role: Role,
    /// True when the identity comes from a verified client certificate, not a token.
    pub certificate: bool,
    /// The NSF name its pushes are stored under (a certificate's NSF, or a token's binding).
    pub nsf: Option<String>,
}

/// The verified client certificate of the connection (a request extension, set by the TLS listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject, e.g. `CN=fw-1,O=Example`.
    pub subject: String,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// The configured `[[nsf]]` entry whose name or hostnames match the common name or a DNS name.
    pub nsf: Option<String>,
}

impl ClientCert {
    /// The NSF this certificate identifies: the inventory entry, else the common name, else the
    /// subject.
    pub fn nsf_name(&self) -> &str {
        self.nsf
            .as_deref()
            .or(self.common_name.as_deref())
            .unwrap_or(&self.subject)
    }
}

/// Limits applied per client (token name, else certificate subject, else IP address).
pub struct Limits {
    /// Every authenticated route except push.
    pub api: RateLimiter,
    /// `POST /api/v1/push` requests.
    pub push: RateLimiter,
    /// Pushed messages per NSF name.
    pub nsf_messages: RateLimiter,
}

/// Everything the middleware needs: tokens, limits, settings.
pub struct Auth {
    /// Database and configured tokens.
    pub tokens: TokenStore,
    /// Rate limiters.
    pub limits: Limits,
    /// `[api] public_metrics`.
    pub public_metrics: bool,
    /// Console sessions (cookies exchanged for tokens).
    pub sessions: session::Sessions,
}

impl Auth {
    /// Builds the limiters from `config` around `tokens`.
    pub fn new(tokens: TokenStore, config: &crate::ApiConfig) -> Self {
        let nsf_burst = config
            .nsf_messages_per_second
            .max(config.max_push_messages as f64);
        Self {
            tokens,
            limits: Limits {
                api: RateLimiter::new(config.rate_per_second, config.burst),
                push: RateLimiter::new(config.push_rate_per_second, config.push_burst),
                nsf_messages: RateLimiter::new(config.nsf_messages_per_second, nsf_burst),
            },
            public_metrics: config.public_metrics,
            sessions: session::Sessions::new(
                config.session_lifetime.get(),
                config.session_idle.get(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_covers_routes_by_method_and_path() {
        let r = |m: Method, p: &str| required(&m, p, false);
        assert_eq!(r(Method::GET, "/healthz"), Need::Public);
        assert_eq!(r(Method::GET, "/metrics"), Need::Role(Role::Viewer));
        assert_eq!(required(&Method::GET, "/metrics", true), Need::Public);
        assert_eq!(r(Method::GET, "/api/v1/stream"), Need::Role(Role::Viewer));
        assert_eq!(
            r(Method::HEAD, "/api/v1/messages"),
            Need::Role(Role::Viewer)
        );
        assert_eq!(r(Method::POST, "/api/v1/push"), Need::Role(Role::Nsf));
        assert_eq!(r(Method::POST, "/api/v1/push/"), Need::Role(Role::Nsf));
        assert_eq!(r(Method::GET, "/api/v1/tokens"), Need::Role(Role::Admin));
        assert_eq!(
            r(Method::DELETE, "/api/v1/tokens/x"),
            Need::Role(Role::Admin)
        );
        assert_eq!(
            r(Method::POST, "/api/v1/subscriptions"),
            Need::Role(Role::Analyst)
        );
        assert_eq!(r(Method::PUT, "/anything"), Need::Role(Role::Analyst));
        assert_eq!(r(Method::GET, "/"), Need::Public);
        assert_eq!(r(Method::GET, "/ui/login"), Need::Public);
        assert_eq!(r(Method::GET, "/ui/assets/x/app.js"), Need::Public);
        assert_eq!(r(Method::GET, "/ui/"), Need::Role(Role::Viewer));
        assert_eq!(r(Method::GET, "/ui/events/1"), Need::Role(Role::Viewer));
        assert_eq!(r(Method::POST, "/ui/login"), Need::Role(Role::Analyst));
        assert_eq!(r(Method::POST, "/api/v1/session"), Need::Public);
        assert_eq!(
            r(Method::DELETE, "/api/v1/session"),
            Need::Role(Role::Viewer)
        );
        assert_eq!(r(Method::GET, "/api/v1/config"), Need::Role(Role::Admin));
    }

    #[test]
    fn roles_are_ordered_and_nsf_only_pushes() {
        assert!(Role::Admin.allows(Role::Viewer));
        assert!(Role::Analyst.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Analyst));
        assert!(!Role::Analyst.allows(Role::Admin));
        assert!(Role::Nsf.allows(Role::Nsf));
        assert!(Role::Admin.allows(Role::Nsf));
        assert!(!Role::Analyst.allows(Role::Nsf));
        assert!(!Role::Nsf.allows(Role::Viewer));
    }
}
