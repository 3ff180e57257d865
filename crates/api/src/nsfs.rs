//! `GET /api/v1/nsfs`: the NSF inventory (configured and automatically registered senders) with
//! counts and last-seen times.

use axum::extract::State;
use pharos_store::inventory::NsfEntry;
use serde_json::{Value, json};

use crate::AppState;
use crate::json::Json;

/// One inventory entry as JSON.
pub fn render(e: &NsfEntry) -> Value {
    json!({
        "name": e.name,
        "configured": e.configured,
        "addresses": e.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "hostnames": e.hostnames,
        "vendor": e.vendor,
        "model": e.model,
        "type": e.nsf_type,
        "parser": e.parser,
        "detected-format": e.detected_format,
        "last-address": e.last_address.map(|a| a.to_string()),
        "first-seen": e.first_seen.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "last-seen": e.last_seen.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "received": e.received,
        "parsed": e.parsed,
        "unparsed": e.unparsed,
    })
}

pub(crate) async fn list(State(state): State<AppState>) -> Json<Value> {
    let items: Vec<Value> = state.nsfs.list().iter().map(render).collect();
    Json(json!({ "items": items }))
}
