//! The middleware in front of every route: identifies the client (bearer token, else console
//! session cookie with its CSRF token on state-changing requests, else verified client
//! certificate for push), checks the role the route needs by rule, applies the client's
//! rate limit, and puts the [`Principal`] into the request's extensions. Requests without an
//! identity (public routes, refused credentials) are limited per address.

use std::net::SocketAddr;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::session::{self, Found};
use super::tokens::{Refusal, TokenError};
use super::{ClientCert, Need, PUSH_PATH, Principal, Role, SESSION_PATH, required};
use crate::{ApiError, AppState};

fn unauthorized(reason: &'static str, message: String) -> Response {
    metrics::counter!("pharos_api_auth_failures_total", "reason" => reason).increment(1);
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    let challenge = if reason == "missing" {
        "Bearer realm=\"pharos\""
    } else {
        "Bearer realm=\"pharos\", error=\"invalid_token\""
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

/// Charges a request without an identity (public route, or refused credentials) to its address's
/// bucket of the API limiter; the 429 to answer when the address is over its rate.
fn over_ip_rate(state: &AppState, req: &Request) -> Option<Response> {
    let ext = req.extensions();
    let ip = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))?
        .ip();
    let client = format!("ip:{ip}");
    let wait = state.auth.limits.api.check(&client, 1.0).err()?;
    Some(too_many("api", &client, "[api] rate_per_second", wait))
}

fn too_many(limit: &'static str, client: &str, key: &str, wait: u64) -> Response {
    metrics::counter!("pharos_api_rate_limited_total", "limit" => limit).increment(1);
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests from {client} ({key}); retry after {wait} s, nothing was done"),
    );
    err.retry_after = Some(wait.min(u32::MAX as u64) as u32);
    err.into_response()
}

/// The bearer token of a request, if it has an `Authorization: Bearer` header.
fn bearer(req: &Request) -> Result<Option<&str>, ()> {
    let Some(v) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let (scheme, token) = v.trim().split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(());
    }
    Ok(Some(token))
}

/// Why a session cookie gave no identity.
enum SessionRefusal {
    /// No such session, or it ended.
    Ended,
    /// A state-changing request without the session's CSRF token.
    Csrf,
    /// The session's token was revoked or expired since login.
    Token(Refusal),
    /// The token database failed.
    Store(TokenError),
}

/// The identity of a request carrying a session cookie: the session must be live, its token still
/// valid (its role now, not at login), and a state-changing request must echo the CSRF token.
fn by_session(state: &AppState, req: &Request) -> Result<Principal, SessionRefusal> {
    let cookie = session::cookie_value(req.headers()).ok_or(SessionRefusal::Ended)?;
    let Found::Live(s) = state.auth.sessions.get(cookie) else {
        return Err(SessionRefusal::Ended);
    };
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !safe {
        let sent = req
            .headers()
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session::same(sent, &s.csrf) {
            return Err(SessionRefusal::Csrf);
        }
    }
    let grant = match state.auth.tokens.lookup_hash(&s.token_hash) {
        Ok(Ok(g)) => g,
        Ok(Err(r)) => {
            state.auth.sessions.close(cookie);
            return Err(SessionRefusal::Token(r));
        }
        Err(e) => return Err(SessionRefusal::Store(e)),
    };
    Ok(Principal {
        name: grant.name,
        role: grant.role,
        certificate: false,
        nsf: grant.nsf,
    })
}

/// For a console page (GET under `/ui/`) without a live session: the redirect to the login page,
/// which comes back to the page after login.
fn to_login(req: &Request) -> Option<Response> {
    let path = req.uri().path();
    if *req.method() != axum::http::Method::GET || !path.starts_with("/ui/") {
        return None;
    }
    let back = req
        .uri()
        .path_and_query()
        .map_or(path, |p| p.as_str())
        .to_string();
    let mut enc = String::with_capacity(back.len());
    for b in back.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let loc = HeaderValue::from_str(&format!("/ui/login?next={enc}")).ok()?;
    resp.headers_mut().insert(header::LOCATION, loc);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(resp)
}

/// Authenticates, authorises and rate-limits one request (see the module documentation).
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth = state.auth.clone();
    let need = required(req.method(), req.uri().path(), auth.public_metrics);
    let Need::Role(need) = need else {
        if let Some(r) = over_ip_rate(&state, &req) {
            return r;
        }
        return next.run(req).await;
    };
    let refuse = |req: &Request, reason: &'static str, message: String| {
        over_ip_rate(&state, req).unwrap_or_else(|| unauthorized(reason, message))
    };
    let cert = req.extensions().get::<ClientCert>().cloned();
    let principal = match bearer(&req) {
        Err(()) => {
            return refuse(
                &req,
                "malformed",
                "the Authorization header is not `Bearer <token>`; send `Authorization: Bearer phr_...`".into(),
            );
        }
        Ok(Some(token)) => match auth.tokens.lookup(token) {
            Ok(Ok(grant)) => Principal {
                name: grant.name,
                role: grant.role,
                certificate: false,
                nsf: grant.nsf,
            },
            Ok(Err(refusal)) => {
                let why = match refusal {
                    Refusal::Unknown => "the token is not known",
                    Refusal::Expired => "the token has expired",
                    Refusal::Revoked => "the token was revoked",
                };
                return refuse(
                    &req,
                    refusal.reason(),
                    format!("{why}; ask an admin for a new one (`pharos token create`)"),
                );
            }
            Err(e) => {
                return ApiError::internal("looking up the API token failed", e).into_response();
            }
        },
        Ok(None) if session::cookie_value(req.headers()).is_some() => {
            match by_session(&state, &req) {
                Ok(p) => p,
                Err(SessionRefusal::Ended) => {
                    if let Some(r) = over_ip_rate(&state, &req) {
                        return r;
                    }
                    if let Some(r) = to_login(&req) {
                        return r;
                    }
                    return unauthorized(
                        "expired",
                        "the console session has ended (logout, idle or lifetime); log in again"
                            .into(),
                    );
                }
                Err(SessionRefusal::Csrf) => {
                    metrics::counter!("pharos_api_auth_failures_total", "reason" => "csrf")
                        .increment(1);
                    return ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{} {} through a console session needs the session's CSRF token in the X-CSRF-Token header (from GET {SESSION_PATH}); nothing was done",
                            req.method(),
                            req.uri().path()
                        ),
                    )
                    .into_response();
                }
                Err(SessionRefusal::Token(refusal)) => {
                    return refuse(
                        &req,
                        refusal.reason(),
                        "the token this console session was opened with is no longer valid; log in again with a valid token".into(),
                    );
                }
                Err(SessionRefusal::Store(e)) => {
                    return ApiError::internal("looking up the API token failed", e)
                        .into_response();
                }
            }
        }
        Ok(None) => match &cert {
            Some(c) if need == Role::Nsf => Principal {
                name: c.nsf_name().to_string(),
                role: Role::Nsf,
                certificate: true,
                nsf: Some(c.nsf_name().to_string()),
            },
            _ => {
                if let Some(r) = to_login(&req) {
                    return r;
                }
                return refuse(
                    &req,
                    "missing",
                    "this route needs an API token: send `Authorization: Bearer <token>` (see `pharos token create`)".into(),
                );
            }
        },
    };
    if !principal.role.allows(need) {
        metrics::counter!("pharos_api_auth_failures_total", "reason" => "forbidden").increment(1);
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has role {}; {} {} needs role {}",
                principal.name,
                principal.role,
                req.method(),
                req.uri().path(),
                need
            ),
        )
        .into_response();
    }
    let client = if principal.certificate {
        format!("cert:{}", cert.as_ref().map_or("", |c| c.subject.as_str()))
    } else {
        format!("token:{}", principal.name)
    };
    let is_push = need == Role::Nsf && req.uri().path().trim_end_matches('/') == PUSH_PATH;
    let (limiter, label, bucket) = if is_push {
        ("push", "[api] push_rate_per_second", &auth.limits.push)
    } else {
        ("api", "[api] rate_per_second", &auth.limits.api)
    };
    if let Err(wait) = bucket.check(&client, 1.0) {
        return too_many(limiter, &client, label, wait);
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}
