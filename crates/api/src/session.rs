//! The console's login, session and logout: `POST /api/v1/session` exchanges an API token for a
//! session cookie, `GET /api/v1/session` describes the current one (with its CSRF token),
//! `DELETE /api/v1/session` ends it. See [`crate::auth::session`] for the contract.

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::session::{self, Found, Session};
use crate::auth::{Principal, Role};
use crate::error::ErrorBody;
use crate::json::Json;
use crate::server::Tls;
use crate::{ApiError, AppState};

/// The body of `POST /api/v1/session`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    /// An API token of role viewer, analyst or admin (`phr_...`).
    token: String,
}

/// A console session as the console sees it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The token's name.
    pub name: String,
    /// The token's role: viewer, analyst or admin.
    pub role: String,
    /// Echo this in `X-CSRF-Token` on every request that is not GET or HEAD.
    pub csrf: String,
    /// When the session ends at the latest (RFC 3339).
    pub expires_at: String,
}

fn view(s: &Session, role: Role) -> SessionView {
    SessionView {
        name: s.name.clone(),
        role: role.name().to_string(),
        csrf: s.csrf.clone(),
        expires_at: crate::views::millis(s.expires_at),
    }
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Logs in: exchanges an API token for a session cookie (HttpOnly, SameSite=Strict, Secure on
/// TLS). Tokens of role nsf cannot log in.
#[utoipa::path(post, path = "/api/v1/session", tag = "console", request_body = Login,
    responses(
        (status = 200, description = "Logged in; the cookie is set", body = SessionView),
        (status = 400, description = "Not a JSON body with `token`", body = ErrorBody),
        (status = 401, description = "Unknown, expired or revoked token", body = ErrorBody),
        (status = 403, description = "A token of role nsf", body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    tls: Option<Extension<Tls>>,
    body: Result<axum::Json<Login>, JsonRejection>,
) -> Result<Response, ApiError> {
    let axum::Json(login) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON {{\"token\": \"phr_...\"}}: {}",
            e.body_text()
        ))
    })?;
    let token = login.token.trim();
    let hash = crate::auth::tokens::hash(token);
    let grant = match state.auth.tokens.lookup_hash(&hash) {
        Ok(Ok(g)) => g,
        Ok(Err(refusal)) => {
            metrics::counter!("pharos_api_auth_failures_total", "reason" => refusal.reason())
                .increment(1);
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this token is not valid (unknown, expired or revoked); ask an admin for one (`pharos token create NAME --role viewer`)",
            ));
        }
        Err(e) => return Err(ApiError::internal("looking up the API token failed", e)),
    };
    if grant.role == Role::Nsf {
        metrics::counter!("pharos_api_auth_failures_total", "reason" => "forbidden").increment(1);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tokens of role nsf only push; log in with a viewer, analyst or admin token",
        ));
    }
    let (cookie, s) = state
        .auth
        .sessions
        .open(hash, grant.name.clone(), grant.role, grant.expires);
    tracing::info!(
        token = %pharos_model::text::printable(&grant.name),
        role = grant.role.name(),
        "console: logged in"
    );
    let max_age = (s.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let mut resp = Json(view(&s, grant.role)).into_response();
    let set = session::set_cookie(&cookie, max_age, tls.is_some());
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set).map_err(|e| ApiError::internal("session cookie", e))?,
    );
    Ok(no_store(resp))
}

/// The current console session: name, role (as the token has it now), CSRF token, end.
#[utoipa::path(get, path = "/api/v1/session", tag = "console",
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 401, description = "No session", body = ErrorBody)))]
pub(crate) async fn current(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let no_session = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no console session: log in with POST /api/v1/session",
        )
    };
    let cookie = session::cookie_value(&headers).ok_or_else(no_session)?;
    let Found::Live(s) = state.auth.sessions.get(cookie) else {
        return Err(no_session());
    };
    let role = principal.map_or(s.role, |p| p.role);
    Ok(no_store(Json(view(&s, role)).into_response()))
}

/// Logs out: ends the session and clears its cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "console",
    responses((status = 204, description = "Logged out")))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    tls: Option<Extension<Tls>>,
    headers: HeaderMap,
) -> Response {
    if let Some(c) = session::cookie_value(&headers) {
        state.auth.sessions.close(c);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(tls.is_some())) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    no_store(resp)
}
