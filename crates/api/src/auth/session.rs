//! Console sessions: an API token exchanged for an HttpOnly cookie (`POST /api/v1/session`), so
//! the browser never keeps the token where scripts can read it.
//!
//! Contract:
//! - A session holds the token's SHA-256, never its secret, and every request through the session
//!   looks the token up again: revoking or expiring the token ends its sessions at once.
//! - A session ends at logout, after `[api] session_idle` without a request, or `[api]
//!   session_lifetime` after login, whichever comes first. Sessions live in memory: a restart
//!   logs everyone out (the tokens stay).
//! - The cookie is `HttpOnly; SameSite=Strict; Path=/` (and `Secure` on TLS). Requests that
//!   change state (any method but GET and HEAD) through a session must carry the session's CSRF
//!   token in `X-CSRF-Token`; the cookie alone is refused (403).
//! - At most [`MAX_SESSIONS`] at once; at the limit the oldest session is ended.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Role;

/// The session cookie's name.
pub const COOKIE: &str = "pharos_session";

/// The header carrying the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the token it was opened with.
    pub token_hash: [u8; 32],
    /// The token's name at login.
    pub name: String,
    /// The token's role at login (each request uses the role the token has then).
    pub role: Role,
    /// The CSRF token state-changing requests must echo.
    pub csrf: String,
    /// When it ends at the latest.
    pub expires_at: DateTime<Utc>,
    deadline: Instant,
    last_used: Instant,
}

/// What a session lookup found.
#[derive(Debug, Clone)]
pub enum Found {
    /// A live session.
    Live(Session),
    /// No such session, or it ended (logout, idle, lifetime).
    Ended,
}

/// The live sessions, by the SHA-256 of their cookie value.
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
    lifetime: Duration,
    idle: Duration,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl Sessions {
    /// Sessions that last at most `lifetime`, and end after `idle` without a request.
    pub fn new(lifetime: Duration, idle: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            lifetime,
            idle,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for a token; returns the cookie value and the session. `token_expires`
    /// caps its lifetime.
    pub fn open(
        &self,
        token_hash: [u8; 32],
        name: String,
        role: Role,
        token_expires: Option<DateTime<Utc>>,
    ) -> (String, Session) {
        let now = Instant::now();
        let mut expires_at =
            Utc::now() + chrono::Duration::from_std(self.lifetime).unwrap_or(chrono::Duration::MAX);
        let mut deadline = now + self.lifetime;
        if let Some(t) = token_expires.filter(|t| *t < expires_at) {
            let left = (t - Utc::now()).to_std().unwrap_or_default();
            expires_at = t;
            deadline = now + left;
        }
        let cookie = random_hex();
        let session = Session {
            token_hash,
            name,
            role,
            csrf: random_hex(),
            expires_at,
            deadline,
            last_used: now,
        };
        let mut map = self.map();
        map.retain(|_, s| s.deadline > now && now.duration_since(s.last_used) < self.idle);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(key(&cookie), session.clone());
        (cookie, session)
    }

    /// The live session of a cookie value, marking it used.
    pub fn get(&self, cookie: &str) -> Found {
        let k = key(cookie);
        let now = Instant::now();
        let mut map = self.map();
        let Some(s) = map.get_mut(&k) else {
            return Found::Ended;
        };
        if s.deadline <= now || now.duration_since(s.last_used) >= self.idle {
            map.remove(&k);
            return Found::Ended;
        }
        s.last_used = now;
        Found::Live(s.clone())
    }

    /// Ends the session of a cookie value (logout).
    pub fn close(&self, cookie: &str) {
        self.map().remove(&key(cookie));
    }

    /// Sessions held now (some may have ended without a request since).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of the session cookie in a `Cookie` header, if any.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Compares two strings in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `Set-Cookie` value opening a session.
pub fn set_cookie(value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value ending a session.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_at_logout_idle_and_lifetime() {
        let s = Sessions::new(Duration::from_secs(3600), Duration::from_millis(200));
        let (c, sess) = s.open([1; 32], "alice".into(), Role::Analyst, None);
        assert_eq!(c.len(), 64);
        assert!(matches!(s.get(&c), Found::Live(ref x) if x.csrf == sess.csrf));
        assert!(matches!(s.get("nope"), Found::Ended));
        std::thread::sleep(Duration::from_millis(250));
        assert!(matches!(s.get(&c), Found::Ended), "idle session ended");
        let (c2, _) = s.open([1; 32], "alice".into(), Role::Analyst, None);
        s.close(&c2);
        assert!(matches!(s.get(&c2), Found::Ended), "logged out");

        let short = Sessions::new(Duration::from_millis(100), Duration::from_secs(60));
        let (c3, _) = short.open([2; 32], "bob".into(), Role::Viewer, None);
        std::thread::sleep(Duration::from_millis(150));
        assert!(matches!(short.get(&c3), Found::Ended), "lifetime over");
    }

    #[test]
    fn a_token_expiring_sooner_caps_the_session() {
        let s = Sessions::new(Duration::from_secs(3600), Duration::from_secs(3600));
        let soon = Utc::now() + chrono::Duration::milliseconds(100);
        let (c, sess) = s.open([3; 32], "t".into(), Role::Viewer, Some(soon));
        assert_eq!(sess.expires_at, soon);
        std::thread::sleep(Duration::from_millis(150));
        assert!(matches!(s.get(&c), Found::Ended));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_bounded() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=b; pharos_session=abc123 ; c=d".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h), Some("abc123"));
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            format!("pharos_session={}", "x".repeat(500))
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie_value(&h), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        let c = set_cookie("v", Duration::from_secs(60), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
    }

    #[test]
    fn the_oldest_session_goes_at_the_limit() {
        let s = Sessions::new(Duration::from_secs(3600), Duration::from_secs(3600));
        let (first, _) = s.open([0; 32], "t".into(), Role::Viewer, None);
        for _ in 0..MAX_SESSIONS {
            s.open([0; 32], "t".into(), Role::Viewer, None);
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(matches!(s.get(&first), Found::Ended));
    }
}
