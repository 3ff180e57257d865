//! RID over HTTPS (RFC 6546): a server ([`RidServer`]) that receives RID messages from listed
//! peers and hands them to a [`RidHandler`], and a client ([`RidClient`]) that POSTs messages to
//! peers with idempotent retries.
//!
//! Contract:
//! - Both sides authenticate each other with X.509 over TLS 1.2 or 1.3 (rustls, ring): a
//!   certificate must chain to the configured CA **and** match the explicit peer allow-list
//!   ([`AllowList`]: a SHA-256 pin of the certificate or of its public key, optionally an exact
//!   DNS-ID; wildcard DNS-IDs are refused). A client outside the list fails the TLS handshake;
//!   nothing of its request is read.
//! - The server answers only `POST /` with a `text/xml` (or `application/xml`) body; `GET /` and
//!   `HEAD /` answer 204, other paths 404, other methods 405, never a redirect. Bodies are bounded
//!   (413 before reading when `Content-Length` is too large), parsed with [`Rid::parse`] and
//!   checked with [`Rid::check`] (400 with a short plain-text reason that never echoes the
//!   input); each peer has a request rate (429 with `Retry-After`).
//! - A handler's inline reply must be allowed by [`MsgType::may_reply_with`] for the request's
//!   type; a deferred reply is a 202 with a fresh `RID-Callback-Token` (256 random bits, hex),
//!   which the handler learns before it answers ([`Incoming::deferral_token`]) and which the
//!   callback carries back ([`Incoming::callback_token`]).
//! - The client follows no redirect, retries connection failures, 5xx and 429 (honouring
//!   `Retry-After`) with exponential backoff and jitter, never a 4xx, sending the same bytes each
//!   time (RFC 6546 §3: sending a message is idempotent).
//! - Every network step has a timeout (handshake, request headers, body, handler; connect and
//!   whole request on the client side).
//!
//! [`Rid::parse`]: crate::Rid::parse
//! [`Rid::check`]: crate::Rid::check
//! [`MsgType::may_reply_with`]: crate::MsgType::may_reply_with

mod client;
mod peers;
mod server;

use std::fmt;

/// The bytes type of message bodies ([`RidClient::send_bytes`], [`Incoming::body`]).
pub use bytes::Bytes;
pub use client::{Answer, ClientSettings, RidClient, SendError};
pub use peers::{AllowList, Fingerprint, Peer, PeerId};
pub use server::{Incoming, RateLimit, Reply, ReplyError, RidHandler, RidServer, ServerSettings};

/// The IANA port of "RID over HTTP/TLS" (RFC 6546 §6).
pub const DEFAULT_PORT: u16 = 4590;

/// The header carrying a deferred reply's token (RFC 6546 §3).
pub const CALLBACK_TOKEN_HEADER: &str = "RID-Callback-Token";

/// Default bound on a message body: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 << 20;

/// A transport setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A configuration value is wrong; the message names the key and the fix.
    #[error("[rid] {key}: {problem}")]
    Config {
        /// The key (`server.cert`, `peers[2].dns_id`, ...).
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The listening address could not be bound.
    #[error(
        "[rid] listen = \"{addr}\": cannot listen: {source}; choose a free address and port (default port 4590)"
    )]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

impl TransportError {
    pub(crate) fn config(key: &str, problem: impl Into<String>) -> Self {
        Self::Config {
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}

/// A `RID-Callback-Token`: 1 to 255 visible ASCII characters, no whitespace (RFC 6546 §3).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CallbackToken(String);

impl CallbackToken {
    /// A fresh, unguessable token: 256 bits from the system's CSPRNG, as 64 hex digits.
    pub fn generate() -> Self {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 32];
        // The system RNG fails only if the OS has no entropy source at all; a token of a fresh
        // time and address would then be guessable, so there is no fallback.
        ring::rand::SystemRandom::new()
            .fill(&mut b)
            .expect("the operating system's random number generator is unavailable");
        Self(peers::hex(&b))
    }

    /// Checks a received token.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 255 {
            return Err(format!(
                "{CALLBACK_TOKEN_HEADER} is {} characters long; expected 1 to 255",
                s.len()
            ));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{CALLBACK_TOKEN_HEADER} holds a character that is not visible ASCII; expected 1 to 255 visible characters without spaces"
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CallbackToken {
    /// Only a prefix: a token is a capability for the callback that carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.0.len().min(8);
        write!(f, "CallbackToken({}…)", &self.0[..end])
    }
}

/// Whether a `Content-Type` value names an XML body (`text/xml` or `application/xml`, with
/// parameters such as `charset` allowed).
pub(crate) fn is_xml_content_type(v: &str) -> bool {
    let essence = v.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/xml") || essence.eq_ignore_ascii_case("application/xml")
}

/// A reason safe to send or log: visible ASCII and spaces only (others become `?`), at most
/// 300 characters.
pub(crate) fn clean_reason(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(300)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > 300 {
        out.push_str("...");
    }
    out
}

/// A short reason for refusing a body, naming the problem and where, but not the input's values.
pub(crate) fn parse_reason(e: &crate::ParseError) -> String {
    use crate::ParseError as P;
    let r = match e {
        P::TooLarge { size, limit } => format!("body is {size} bytes, over the limit of {limit}"),
        P::Encoding { offset, .. } => format!("not UTF-8 XML (byte {offset})"),
        P::Doctype { .. } => "DOCTYPE declarations are refused".into(),
        P::Entity { path, .. } => format!("{path}: entity references are refused"),
        P::Syntax { path, offset, .. } => format!("{path}: malformed XML at byte {offset}"),
        P::Limit { path, what, limit } => format!("{path}: {what} exceeds the limit of {limit}"),
        P::Unexpected { path, expected, .. } => {
            format!("{path}: unexpected element; expected {expected}")
        }
        P::UnexpectedText { path, .. } => format!("{path}: unexpected text"),
        P::Missing { path, what } => format!("{path}: missing {what}"),
        P::Duplicate { path, what } => format!("{path}: {what} may appear only once"),
        P::Invalid {
            path,
            what,
            expected,
            ..
        } => format!("{path}: {what}: expected {expected}"),
    };
    clean_reason(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_visible_and_checked() {
        let a = CallbackToken::generate();
        let b = CallbackToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 64);
        assert_eq!(CallbackToken::parse(a.as_str()).unwrap(), a);
        assert!(CallbackToken::parse("").is_err());
        assert!(CallbackToken::parse("a b").is_err());
        assert!(CallbackToken::parse(&"x".repeat(256)).is_err());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn content_types_and_reasons() {
        assert!(is_xml_content_type("text/xml"));
        assert!(is_xml_content_type("Application/XML; charset=utf-8"));
        assert!(!is_xml_content_type("application/json"));
        assert!(!is_xml_content_type("text/xmlx"));
        assert_eq!(clean_reason("a\u{7}<é>"), "a?<?>");
        assert!(clean_reason(&"y".repeat(400)).ends_with("..."));
    }
}
