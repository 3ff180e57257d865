//! Pharos REST API: push ingest for NSFs, message and event queries, flow archive queries, health,
//! Prometheus metrics and the OpenAPI document.
//!
//! Subscriptions (`/api/v1/subscriptions`) and the SSE change stream (`/api/v1/stream`) are served
//! when [`AppState::emit`] is set (503 otherwise).
//!
//! Contract: `POST /api/v1/push` answers 2xx only after every message of the request is durable in
//! the store; a request with any invalid message is refused whole (400, each failure named) and
//! stores nothing. Read routes never change state. Every route except `/healthz` needs a token
//! (or, for push, a verified client certificate) with the role of [`auth::required`], and is
//! rate-limited per client; see [`auth`].

#![forbid(unsafe_code)]

pub mod auth;
mod config;
pub mod constituency;
mod error;
mod export;
pub mod flows;
pub mod json;
mod messages;
mod notices;
pub mod nsfs;
pub mod openapi;
pub mod overview;
mod push;
pub mod reports;
pub mod rid;
pub mod server;
mod session;
pub mod stream;
mod subscriptions;
pub mod traffic;
pub mod views;
pub mod yang;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::PrometheusHandle;
use pharos_emit::Dispatcher;
use pharos_store::MessageStore;
use pharos_store::writer::StoreWriter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::ApiConfigError;
pub use error::ApiError;
pub use messages::render_stored;

/// Settings of the API server (`[api]` in pharos.toml).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address and port to listen on (a host name such as `localhost:8080` is resolved).
    #[serde(deserialize_with = "pharos_model::listen::deserialize")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most messages accepted in one push request.
    pub max_push_messages: usize,
    /// Serve `/metrics` without a token.
    pub public_metrics: bool,
    /// Requests per second per client on every route except push (0: unlimited).
    pub rate_per_second: f64,
    /// Requests a client may send at once beyond its rate.
    pub burst: f64,
    /// Push requests per second per client (0: unlimited).
    pub push_rate_per_second: f64,
    /// Push requests a client may send at once beyond its rate.
    pub push_burst: f64,
    /// Pushed messages per second per NSF name (0: unlimited).
    pub nsf_messages_per_second: f64,
    /// `[[api.token]]`: tokens given by the SHA-256 of their secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token: Vec<auth::TokenConfig>,
    /// `[api.tls]`: serve HTTPS, optionally with client certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<auth::TlsConfig>,
    /// Longest a console session lasts after login (e.g. `12h`).
    pub session_lifetime: pharos_model::config::ConfigDuration,
    /// A console session ends after this long without a request (e.g. `1h`).
    pub session_idle: pharos_model::config::ConfigDuration,
    /// Most HTTP/2 streams a client may open at once on one connection (console pages, SSE).
    pub http2_max_streams: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 4 * 1024 * 1024,
            max_push_messages: 10_000,
            public_metrics: false,
            rate_per_second: 100.0,
            burst: 200.0,
            push_rate_per_second: 1000.0,
            push_burst: 2000.0,
            nsf_messages_per_second: 5000.0,
            token: Vec::new(),
            tls: None,
            session_lifetime: pharos_model::config::ConfigDuration::from_secs(12 * 3600),
            session_idle: pharos_model::config::ConfigDuration::from_secs(3600),
            http2_max_streams: 100,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Read access to stored messages, and event state changes.
    pub store: Arc<dyn MessageStore>,
    /// The store stage's writer (group commit, durable acknowledgements).
    pub writer: StoreWriter,
    /// Renders `/metrics`; `None` serves an empty page.
    pub metrics: Option<PrometheusHandle>,
    /// The API settings.
    pub config: Arc<ApiConfig>,
    /// The NSF inventory (`GET /api/v1/nsfs`), shared with the syslog normalise stage.
    pub nsfs: Arc<pharos_store::inventory::Inventory>,
    /// The flow archive (`GET /api/v1/flows/...`); `None` when the flow store is disabled.
    pub flows: Option<flows::FlowArchive>,
    /// Tokens, rate limits and the route rule.
    pub auth: Arc<auth::Auth>,
    /// Subscriptions and SSE streams; `None` answers 503 on those routes.
    pub emit: Option<EmitHandle>,
    /// What the console's overview and admin pages show of the daemon.
    pub console: Arc<overview::ConsoleInfo>,
}

/// What the subscription and stream routes use.
#[derive(Clone)]
pub struct EmitHandle {
    /// Runs the subscriptions.
    pub dispatcher: Arc<Dispatcher>,
    /// One permit per open SSE stream.
    pub streams: Arc<tokio::sync::Semaphore>,
    /// Most SSE streams open at once (the semaphore's size), for messages.
    pub max_streams: usize,
    /// Interval of SSE keep-alive comments.
    pub keep_alive: std::time::Duration,
    /// Set by [`EmitHandle::close`]: open streams end (so a graceful shutdown can finish).
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl EmitHandle {
    /// A handle over `dispatcher` allowing `max_streams` SSE streams with keep-alive comments every `keep_alive`.
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        max_streams: usize,
        keep_alive: std::time::Duration,
    ) -> Self {
        Self {
            dispatcher,
            streams: Arc::new(tokio::sync::Semaphore::new(max_streams)),
            max_streams,
            keep_alive,
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Ends every open SSE stream and refuses new ones (at shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// Every route of the API with its OpenAPI operation: each handler's `#[utoipa::path]` gives
/// its method and path to the router and its description to the document, so a route cannot be
/// served undocumented (the router of [`router`] and [`openapi::document`] both come from here).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(metrics_page))
        .routes(routes!(openapi::handler))
        .routes(routes!(push::push))
        .routes(routes!(messages::list))
        .routes(routes!(messages::get_one))
        .routes(routes!(export::export))
        .routes(routes!(messages::ack))
        .routes(routes!(nsfs::list))
        .routes(routes!(flows::query))
        .routes(routes!(flows::top))
        .routes(routes!(flows::series))
        .routes(routes!(reports::get))
        .routes(routes!(auth::routes::list, auth::routes::create))
        .routes(routes!(auth::routes::revoke))
        .routes(routes!(subscriptions::list, subscriptions::create))
        .routes(routes!(subscriptions::get_one, subscriptions::delete))
        .routes(routes!(stream::stream))
        .routes(routes!(yang::list))
        .routes(routes!(yang::get_one))
        .routes(routes!(rid::peers))
        .routes(routes!(rid::incidents))
        .routes(routes!(rid::incident))
        .routes(routes!(rid::trace))
        .routes(routes!(rid::approve))
        .routes(routes!(rid::deny))
        .routes(routes!(rid::investigate))
        .routes(routes!(rid::report))
        .routes(routes!(rid::query))
        .routes(routes!(notices::list))
        .routes(routes!(constituency::list, constituency::upsert))
        .routes(routes!(constituency::delete))
        .routes(routes!(constituency::lookup))
        .routes(routes!(session::login, session::current, session::logout))
        .routes(routes!(overview::overview))
        .routes(routes!(traffic::traffic))
        .routes(routes!(overview::config))
}

/// The API's routes over `state`.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The API's routes and `extra` (the web console's pages) over `state`, behind the same
/// authentication, authorisation and rate limits.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let (routes, _) = api_routes().split_for_parts();
    routes
        .merge(extra)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware::authenticate,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Liveness: `ok` while the server runs.
#[utoipa::path(get, path = "/healthz", tag = "server",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Prometheus metrics in text exposition format.
///
/// Public when `[api] public_metrics` is set; otherwise a viewer token is needed.
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain")))]
async fn metrics_page(axum::extract::State(state): axum::extract::State<AppState>) -> String {
    state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default()
}

#[cfg(test)]
mod emit_tests;
#[cfg(test)]
mod tests;

/// Registers the descriptions (`# HELP`) of the API's metrics: push, authentication, rate
/// limits, streams, flow queries.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pharos_push_received_total",
        "Notifications accepted by POST /api/v1/push, by kind"
    );
    describe_counter!(
        "pharos_push_rejected_total",
        "Notifications or requests refused by POST /api/v1/push, by reason"
    );
    describe_counter!(
        "pharos_push_dropped_total",
        "Valid pushed notifications not stored (overload, shutdown, store error), by reason"
    );
    describe_counter!(
        "pharos_api_stream_expired_total",
        "Changes a resumed SSE stream could not send because retention had deleted them"
    );
    describe_gauge!(
        "pharos_api_streams",
        "Open SSE streams (GET /api/v1/stream)"
    );
    describe_counter!(
        "pharos_api_events_acknowledged_total",
        "Events acknowledged through the API"
    );
    describe_counter!(
        "pharos_api_auth_failures_total",
        "API requests refused for their credentials, by reason (missing, malformed, unknown, expired, revoked, forbidden)"
    );
    describe_counter!(
        "pharos_api_rate_limited_total",
        "API requests refused with 429, by limit (api, push, nsf)"
    );
    describe_counter!(
        "pharos_api_tls_handshake_failures_total",
        "API TLS handshakes that failed or timed out (e.g. a client certificate of an unknown CA)"
    );
    describe_counter!(
        "pharos_api_flow_queries_total",
        "Flow archive queries answered by the API"
    );
    describe_counter!(
        "pharos_api_flow_queries_refused_total",
        "Flow archive queries refused because too many were running"
    );
    describe_counter!(
        "pharos_api_subscriptions_created_total",
        "Subscriptions created through the API"
    );
    describe_counter!(
        "pharos_api_stream_events_total",
        "Events sent on SSE streams"
    );
}
