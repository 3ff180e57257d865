//! Token management routes (admin only, by the rule of [`super::required`]):
//! `GET /api/v1/tokens`, `POST /api/v1/tokens`, `DELETE /api/v1/tokens/{name}`.
//!
//! Contract: `DELETE` of the last active admin token answers 409 and revokes nothing (see
//! [`super::TokenStore::revoke`]); creations and revocations are logged with the names of the
//! token and of the admin who did it, never a secret.

use axum::Extension;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pharos_model::text::printable;
use serde_json::{Value, json};

use super::tokens::{TokenError, parse_expiry};
use super::{Principal, Role};
use crate::json::Json;
use crate::{ApiError, AppState};

/// The name of who made the request, for logs.
fn actor(principal: &Option<Extension<Principal>>) -> String {
    principal
        .as_ref()
        .map_or_else(|| "-".to_string(), |p| printable(&p.name).into_owned())
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::InvalidName(_)
        | TokenError::UnsafeName { .. }
        | TokenError::Config(_)
        | TokenError::Binding(_) => ApiError::bad_request(e.to_string()),
        TokenError::Exists(_) | TokenError::FromConfig(_) | TokenError::LastAdmin(_) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        TokenError::NotFound(_) => ApiError::not_found(e.to_string()),
        TokenError::Db(e) => ApiError::internal("the token database failed", e),
    }
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let items = state.auth.tokens.list().map_err(token_error)?;
    Ok(Json(json!({ "items": items })))
}

/// The body of `POST /api/v1/tokens`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
    role: String,
    #[serde(default)]
    expires_in: Option<String>,
    /// Role nsf only: the NSF name its pushes are stored under.
    #[serde(default)]
    nsf: Option<String>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    body: Result<axum::Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let axum::Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; send {{\"name\": \"grafana\", \"role\": \"viewer\", \"expires_in\": \"30d\"}}",
            e.body_text()
        ))
    })?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {:?} is not a role; use {}",
            body.role,
            Role::ALL
        ))
    })?;
    let expires = match body.expires_in.as_deref() {
        None => None,
        Some(s) => Some(parse_expiry(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "expires_in {s:?} is not a duration; use one like \"30d\", \"12h\", \"15m\" or \"90s\""
            ))
        })?),
    };
    let secret = state
        .auth
        .tokens
        .create_bound(&body.name, role, expires, body.nsf.as_deref())
        .map_err(token_error)?;
    let expires_at = expires
        .and_then(|d| chrono::Utc::now().checked_add_signed(chrono::TimeDelta::from_std(d).ok()?));
    tracing::info!(token = %body.name, %role, by = %actor(&principal), "API token created through the API");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": body.name,
            "role": role,
            "expires": expires_at,
            "nsf": body.nsf,
            "token": secret,
            "note": "the token is shown only once; store it now",
        })),
    ))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let by = actor(&principal);
    let token = printable(&name);
    match state.auth.tokens.revoke(&name, false) {
        Ok(()) => {
            tracing::info!(%token, %by, "API token revoked through the API");
            Ok(Json(json!({ "name": name, "revoked": true })))
        }
        Err(e @ TokenError::LastAdmin(_)) => {
            tracing::warn!(%token, %by, "refused to revoke the last active admin token");
            Err(token_error(e))
        }
        Err(e) => Err(token_error(e)),
    }
}
