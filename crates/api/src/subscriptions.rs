//! Subscriptions: `GET/POST /api/v1/subscriptions`, `GET/DELETE /api/v1/subscriptions/{name}`.
//!
//! Contract: `POST` validates the spec (name, filter, emission, sink) and answers 400 naming the
//! key at fault, 409 when the name is taken; the destination must be in `[emit] allow_hosts` (a
//! webhook's own `allow` is replaced by it; a syslog address or NATS URL host must match it). `DELETE` of a subscription defined in
//! pharos.toml answers 409. Sink secrets are shown as `***`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pharos_emit::{EmitError, SubscriptionSpec};

use crate::error::ErrorBody;
use crate::json::Json;
use crate::views::{Subscription, SubscriptionList, SubscriptionSpecView};
use crate::{ApiError, AppState, EmitHandle};

fn emit(state: &AppState) -> Result<&EmitHandle, ApiError> {
    state.emit.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "emission is not running in this server",
        )
    })
}

fn emit_error(e: EmitError) -> ApiError {
    match e {
        EmitError::Invalid(e) => ApiError::bad_request(e.to_string()),
        EmitError::Exists(_) | EmitError::ConfigDefined(_) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        EmitError::NotFound(_) => ApiError::not_found(e.to_string()),
        other => ApiError::internal("subscription store failed", other),
    }
}

/// Every subscription (from pharos.toml and created through the API) with its delivery state.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "emission",
    responses(
        (status = 200, description = "The subscriptions", body = SubscriptionList),
        (status = 503, description = "Emission is not running", body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let items = emit(&state)?.dispatcher.list();
    Ok(Json(SubscriptionList {
        items: items.into_iter().map(Subscription::from).collect(),
    }))
}

/// Create a subscription.
///
/// A filter, on-change or periodic emission, a dampening period and a sink (one of the
/// registered sinks, to a host of [emit] allow_hosts). It gets the changes made from now on.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "emission",
    request_body = SubscriptionSpecView,
    responses(
        (status = 201, description = "Created", body = Subscription),
        (status = 400, description = "The spec is invalid (the key at fault is named)", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 503, description = "Emission is not running", body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    let d = emit(&state)?.dispatcher.clone();
    let spec: SubscriptionSpec = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "subscription body: {e}; expected {{\"name\": ..., \"filter\": {{...}}, \"sink\": {{\"type\": \"webhook\", \"url\": ..., \"secret\": ...}}}} (see /api/v1/openapi.json)"
        ))
    })?;
    let info = tokio::task::spawn_blocking(move || d.add(spec))
        .await
        .map_err(|e| ApiError::internal("subscription task failed", e))?
        .map_err(emit_error)?;
    metrics::counter!("pharos_api_subscriptions_created_total").increment(1);
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// One subscription with its delivery state (delivered, pending, failed, dropped, last error,
/// last delivery).
#[utoipa::path(get, path = "/api/v1/subscriptions/{name}", tag = "emission",
    params(("name" = String, Path, description = "Subscription name")),
    responses(
        (status = 200, description = "The subscription", body = Subscription),
        (status = 404, description = "No subscription of this name", body = ErrorBody),
        (status = 503, description = "Emission is not running", body = ErrorBody),
    ))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    emit(&state)?
        .dispatcher
        .get(&name)
        .map(|i| Json(i.into()))
        .ok_or_else(|| ApiError::not_found(format!("no subscription named {name:?}")))
}

/// Stop and delete a subscription created through the API (those of pharos.toml: 409).
#[utoipa::path(delete, path = "/api/v1/subscriptions/{name}", tag = "emission",
    params(("name" = String, Path, description = "Subscription name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No subscription of this name", body = ErrorBody),
        (status = 409, description = "Defined in pharos.toml", body = ErrorBody),
        (status = 503, description = "Emission is not running", body = ErrorBody),
    ))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    emit(&state)?
        .dispatcher
        .remove(&name)
        .await
        .map_err(emit_error)?;
    Ok(StatusCode::NO_CONTENT)
}
