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

use super::tokens::{TokenError, parse_expiry};
use super::{Principal, Role};
use crate::error::ErrorBody;
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

/// API tokens: name, role, created, expiry, revoked, last used; never the secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin",
    responses((status = 200, description = "The tokens", body = crate::views::TokenList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
) -> Result<Json<crate::views::TokenList>, ApiError> {
    let items = state.auth.tokens.list().map_err(token_error)?;
    Ok(Json(crate::views::TokenList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// The body of `POST /api/v1/tokens`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// 1 to 64 letters, digits, '.', '_' or '-' (a control character is refused with 400 naming
    /// it).
    name: String,
    /// viewer, analyst, admin or nsf.
    #[schema(pattern = "^(viewer|analyst|admin|nsf)$")]
    role: String,
    /// Lifetime like 30d, 12h, 15m or 90s; absent: no expiry.
    #[serde(default)]
    expires_in: Option<String>,
    /// Role nsf only: store what it pushes under this NSF name, whatever the documents say.
    #[serde(default)]
    nsf: Option<String>,
}

/// The answer to `POST /api/v1/tokens`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct TokenCreated {
    /// The token's name.
    name: String,
    /// Its role.
    #[schema(value_type = String)]
    role: Role,
    /// When it expires (absent or null: never).
    #[schema(value_type = Option<String>, format = DateTime)]
    expires: Option<chrono::DateTime<chrono::Utc>>,
    /// Role nsf: the NSF name its pushes are stored under.
    nsf: Option<String>,
    /// The secret (`phr_...`), shown only this once.
    token: String,
    /// A reminder that the secret is not shown again.
    note: &'static str,
}

/// The answer to `DELETE /api/v1/tokens/{name}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Revoked {
    /// The token's name.
    name: String,
    /// Always true.
    revoked: bool,
}

/// Create an API token; the answer holds the secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin",
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created", body = TokenCreated),
        (status = 400, description = "The body is malformed, or a name, role or lifetime is invalid", body = ErrorBody),
        (status = 409, description = "A token of this name exists", body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    body: Result<axum::Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
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
        Json(TokenCreated {
            name: body.name,
            role,
            expires: expires_at,
            nsf: body.nsf,
            token: secret,
            note: "the token is shown only once; store it now",
        }),
    ))
}

/// Revoke an API token; it is refused from its next request on.
///
/// 409 when the token is defined in pharos.toml, or is the last active admin token (create
/// another admin token first).
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "admin",
    params(("name" = String, Path, description = "Token name")),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 404, description = "No token of this name", body = ErrorBody),
        (status = 409, description = "Defined in pharos.toml, or the last active admin token", body = ErrorBody),
    ))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    Path(name): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let by = actor(&principal);
    let token = printable(&name);
    match state.auth.tokens.revoke(&name, false) {
        Ok(()) => {
            tracing::info!(%token, %by, "API token revoked through the API");
            Ok(Json(Revoked {
                name,
                revoked: true,
            }))
        }
        Err(e @ TokenError::LastAdmin(_)) => {
            tracing::warn!(%token, %by, "refused to revoke the last active admin token");
            Err(token_error(e))
        }
        Err(e) => Err(token_error(e)),
    }
}
