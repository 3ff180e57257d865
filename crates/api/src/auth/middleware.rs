//! The middleware in front of every route: identifies the client (bearer token, else verified
//! client certificate for push), checks the role the route needs by rule, applies the client's
//! rate limit, and puts the [`Principal`] into the request's extensions. Requests without an
//! identity (public routes, refused credentials) are limited per address.

use std::net::SocketAddr;

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::tokens::Refusal;
use super::{ClientCert, Need, PUSH_PATH, Principal, Role, required};
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
        Ok(None) => match &cert {
            Some(c) if need == Role::Nsf => Principal {
                name: c.nsf_name().to_string(),
                role: Role::Nsf,
                certificate: true,
                nsf: Some(c.nsf_name().to_string()),
            },
            _ => {
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
