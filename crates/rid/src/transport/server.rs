//! The RID server: TLS with mutual authentication, the RFC 6546 routes, bounded bodies,
//! per-peer rates, and the handler call (see the module contract in `transport`).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::peers::{
    AllowList, AllowListClientVerifier, Peer, PeerId, load_certs, load_key, load_roots, provider,
};
use super::{
    CALLBACK_TOKEN_HEADER, CallbackToken, DEFAULT_MAX_BODY, DEFAULT_PORT, TransportError,
    clean_reason, is_xml_content_type, parse_reason,
};
use crate::enums::MsgType;
use crate::rid::Rid;
use crate::xml::Limits;

/// A per-peer token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per minute (default 60; must be at least 1).
    pub per_minute: u32,
    /// Requests allowed in a burst above the sustained rate (default 20; at least 1).
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_minute: 60,
            burst: 20,
        }
    }
}

/// The server's settings (`[rid.server]`); [`ServerSettings::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where to listen (default `0.0.0.0:4590`, the IANA port).
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM), with the DNS-ID peers dial.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA that signs the peers' client certificates (PEM).
    pub client_ca: PathBuf,
    /// The peer allow-list: only these peers may connect.
    pub peers: Vec<Peer>,
    /// Largest body accepted (default 4 MiB): a larger `Content-Length` is refused with 413
    /// before reading, a chunked body is cut at this size.
    pub max_body: usize,
    /// Parser limits (their `max_bytes` is lowered to `max_body`).
    pub limits: Limits,
    /// Time to complete the TLS handshake (default 10 s).
    pub handshake_timeout: Duration,
    /// Time to send a request's headers, and to start one on an idle connection (default 30 s).
    pub header_timeout: Duration,
    /// Time to send a request's body (default 60 s).
    pub body_timeout: Duration,
    /// Time the handler has to answer (default 30 s, RFC 6546's guidance for an inline
    /// reply; a slower handler should defer). Past it the peer gets 503.
    pub handler_timeout: Duration,
    /// Requests per peer.
    pub rate: RateLimit,
    /// Most open incidents one peer may have (default 100): passed to the handler, which
    /// refuses new requests past it ([`Incoming::max_open_incidents`]).
    pub max_open_incidents: u64,
    /// Most simultaneous connections (default 256); more wait in the kernel's backlog.
    pub max_connections: usize,
}

impl ServerSettings {
    /// The defaults, with the certificate, key, client CA and peers given.
    pub fn new(cert: PathBuf, key: PathBuf, client_ca: PathBuf, peers: Vec<Peer>) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            cert,
            key,
            client_ca,
            peers,
            max_body: DEFAULT_MAX_BODY,
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            handler_timeout: Duration::from_secs(30),
            rate: RateLimit::default(),
            max_open_incidents: 100,
            max_connections: 256,
        }
    }

    /// Checks the values that need no file (the files are read by [`RidServer::bind`]).
    pub fn validate(&self) -> Result<(), TransportError> {
        let nonzero = |key: &str, d: Duration| {
            if d.is_zero() {
                Err(TransportError::config(
                    key,
                    "is zero; give a duration like \"10s\"",
                ))
            } else {
                Ok(())
            }
        };
        nonzero("server.handshake_timeout", self.handshake_timeout)?;
        nonzero("server.header_timeout", self.header_timeout)?;
        nonzero("server.body_timeout", self.body_timeout)?;
        nonzero("server.handler_timeout", self.handler_timeout)?;
        if self.max_body == 0 {
            return Err(TransportError::config(
                "server.max_body",
                "is zero; give a size in bytes (default 4 MiB)",
            ));
        }
        if self.rate.per_minute == 0 || self.rate.burst == 0 {
            return Err(TransportError::config(
                "server.rate",
                format!(
                    "per_minute = {}, burst = {}: both must be at least 1",
                    self.rate.per_minute, self.rate.burst
                ),
            ));
        }
        if self.max_connections == 0 {
            return Err(TransportError::config(
                "server.max_connections",
                "is zero; give at least 1 (default 256)",
            ));
        }
        Ok(())
    }
}

/// One message received from an authenticated peer, for the handler.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Who sent it (its allow-list entry).
    pub peer: PeerId,
    /// The network address it came from (RFC 6546 callbacks go back to the peer).
    pub remote: SocketAddr,
    /// The parsed, checked message.
    pub msg: Rid,
    /// The body exactly as received (for the state table and signature checks).
    pub body: Bytes,
    /// The `RID-Callback-Token` the request carried: it answers an earlier deferral of ours.
    pub callback_token: Option<CallbackToken>,
    /// The token the server sends if the handler answers [`Reply::Deferred`]: record it with
    /// the incident, and carry it in the later callback.
    pub deferral_token: CallbackToken,
    /// The configured limit of open incidents per peer ([`ServerSettings::max_open_incidents`]);
    /// the handler compares it with the state table and refuses past it.
    pub max_open_incidents: u64,
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this message (its type must be allowed by `MsgType::may_reply_with` for the
    /// request's type, or the peer gets 500).
    Inline(Box<Rid>),
    /// 200 with an empty body (a Report, or a callback: Acknowledgement, Result).
    Empty,
    /// 202 with [`Incoming::deferral_token`] in `RID-Callback-Token`: the answer comes later by
    /// callback (Requests and Queries only).
    Deferred,
    /// An HTTP error.
    Error(ReplyError),
}

/// A handler's refusal or failure, sent as plain text (cleaned to visible ASCII, 300 chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// 400: the message is well-formed but cannot be acted on (unknown callback token, ...).
    BadRequest(String),
    /// 403: policy refuses this peer's message.
    Forbidden(String),
    /// 503 with `Retry-After`: try later (too many open incidents, overload).
    Busy {
        /// When to try again (whole seconds, rounded up; zero sends no `Retry-After`).
        retry_after: Duration,
        /// Why.
        reason: String,
    },
    /// 500: the handler failed.
    Failed(String),
}

/// What the server calls for every message.
pub trait RidHandler: Send + Sync + 'static {
    /// Handles one message; see [`Reply`] for the answers.
    fn handle(&self, req: Incoming) -> impl Future<Output = Reply> + Send;
}

type Body = Full<Bytes>;

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Shared<H> {
    handler: Arc<H>,
    settings: ServerSettings,
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl<H> Shared<H> {
    /// Takes a token from `peer`'s bucket, or says how long until one is available.
    fn take(&self, peer: &str) -> Result<(), Duration> {
        let rate = self.settings.rate;
        let per_sec = f64::from(rate.per_minute) / 60.0;
        let burst = f64::from(rate.burst);
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = b.entry(peer.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }
}

/// The RID server, bound and ready to [`run`](RidServer::run).
pub struct RidServer<H> {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    allow: Arc<AllowList>,
    shared: Arc<Shared<H>>,
}

impl<H> std::fmt::Debug for RidServer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RidServer")
            .field("listen", &self.listener.local_addr().ok())
            .field("peers", &self.allow.peers().len())
            .finish()
    }
}

impl<H: RidHandler> RidServer<H> {
    /// Loads the certificates, builds the allow-list and binds `settings.listen`.
    pub async fn bind(settings: ServerSettings, handler: Arc<H>) -> Result<Self, TransportError> {
        settings.validate()?;
        let allow = Arc::new(AllowList::new(settings.peers.clone(), "peers")?);
        let roots = load_roots(&settings.client_ca, "server.client_ca")?;
        let verifier = AllowListClientVerifier::new(roots, allow.clone(), "server.client_ca")?;
        let chain = load_certs(&settings.cert, "server.cert")?;
        let key = load_key(&settings.key, "server.key")?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::config("server", format!("TLS versions: {e}")))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(chain, key)
            .map_err(|e| {
                TransportError::config(
                    "server.key",
                    format!(
                        "{:?} is not the key of server.cert = {:?}: {e}",
                        settings.key.display().to_string(),
                        settings.cert.display().to_string()
                    ),
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| TransportError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let mut limits = settings.limits;
        limits.max_bytes = limits.max_bytes.min(settings.max_body);
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            allow: allow.clone(),
            shared: Arc::new(Shared {
                handler,
                settings,
                limits,
                buckets: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets open connections finish their request
    /// (for at most `handler_timeout` plus `body_timeout`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let slots = Arc::new(tokio::sync::Semaphore::new(
            self.shared.settings.max_connections,
        ));
        let mut conns = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let slot = tokio::select! {
                _ = &mut shutdown => break,
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => break,
                },
            };
            let (tcp, remote) = tokio::select! {
                _ = &mut shutdown => break,
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "RID: accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            while conns.try_join_next().is_some() {}
            let acceptor = self.acceptor.clone();
            let allow = self.allow.clone();
            let shared = self.shared.clone();
            let stop = stop_rx.clone();
            conns.spawn(async move {
                let _slot = slot;
                let _ = tcp.set_nodelay(true);
                let hs = shared.settings.handshake_timeout;
                let tls = match tokio::time::timeout(hs, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(%remote, error = %e, "RID: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%remote, "RID: TLS handshake timed out");
                        return;
                    }
                };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| allow.identify(c.as_ref()));
                let Some(peer) = peer else {
                    // The verifier already refused such a client; never serve one regardless.
                    return;
                };
                connection(tls, remote, peer, shared, stop).await;
            });
        }
        drop(self.listener);
        let _ = stop_tx.send(true);
        let drain = self.shared.settings.handler_timeout + self.shared.settings.body_timeout;
        let drained =
            tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                open = conns.len(),
                "RID: closing connections still open after shutdown"
            );
            conns.shutdown().await;
        }
    }
}

async fn connection<H: RidHandler>(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    remote: SocketAddr,
    peer: PeerId,
    shared: Arc<Shared<H>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let header_timeout = shared.settings.header_timeout;
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let shared = shared.clone();
        let peer = peer.clone();
        async move { Ok::<_, std::convert::Infallible>(respond(&shared, &peer, remote, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    if *stop.borrow() {
        conn.as_mut().graceful_shutdown();
    }
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%remote, error = %e, "RID: connection ended with an error");
            }
            return;
        }
        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

fn text(status: StatusCode, reason: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!(
        "{}\n",
        clean_reason(reason)
    ))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn retry_after(mut r: Response<Body>, wait: Duration) -> Response<Body> {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    r
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

async fn read_body(
    mut body: hyper::body::Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

fn is_request_or_query(t: &MsgType) -> bool {
    t.is_request() || *t == MsgType::Query
}

async fn respond<H: RidHandler>(
    shared: &Shared<H>,
    peer: &PeerId,
    remote: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let s = &shared.settings;
    if req.uri().path() != "/" {
        return text(StatusCode::NOT_FOUND, "RID answers on / only");
    }
    let method = req.method().clone();
    if method != Method::POST && method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "RID accepts POST / (GET and HEAD / answer 204)",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST, GET, HEAD"));
        return r;
    }
    if let Err(wait) = shared.take(&peer.name) {
        tracing::info!(peer = %peer.name, "RID: rate limit reached; answering 429");
        return retry_after(
            text(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "rate limit of {} requests per minute reached",
                    s.rate.per_minute
                ),
            ),
            wait,
        );
    }
    if method != Method::POST {
        return empty(StatusCode::NO_CONTENT);
    }
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_xml_content_type(ctype) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a RID message is sent with Content-Type: text/xml",
        );
    }
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(n) if n > s.max_body as u64 => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("body of {n} bytes is over the limit of {}", s.max_body),
                );
            }
            Some(_) => {}
            None => return text(StatusCode::BAD_REQUEST, "invalid Content-Length"),
        }
    }
    let callback_token = match req.headers().get(CALLBACK_TOKEN_HEADER) {
        None => None,
        Some(v) => match v
            .to_str()
            .map_err(|_| String::new())
            .and_then(CallbackToken::parse)
        {
            Ok(t) => Some(t),
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "RID-Callback-Token must be 1 to 255 visible ASCII characters",
                );
            }
        },
    };
    let body = match read_body(req.into_body(), s.max_body, s.body_timeout).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body is over the limit of {} bytes", s.max_body),
            );
        }
        Err(BodyError::Timeout) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                &format!("body not received within {} s", s.body_timeout.as_secs()),
            );
        }
        Err(BodyError::Broken) => return text(StatusCode::BAD_REQUEST, "body could not be read"),
    };
    let msg = match Rid::parse(&body, &shared.limits) {
        Ok(m) => m,
        Err(e) => {
            let reason = parse_reason(&e);
            tracing::info!(peer = %peer.name, %reason, "RID: refused a malformed message");
            return text(
                StatusCode::BAD_REQUEST,
                &format!("malformed RID message: {reason}"),
            );
        }
    };
    if let Err(e) = msg.check() {
        let reason = clean_reason(&e.to_string());
        tracing::info!(peer = %peer.name, %reason, "RID: refused an incomplete message");
        return text(StatusCode::BAD_REQUEST, &reason);
    }
    let Some(req_type) = msg.msg_type().cloned() else {
        return text(StatusCode::BAD_REQUEST, "RIDPolicy is required");
    };
    let incoming = Incoming {
        peer: peer.clone(),
        remote,
        msg,
        body,
        callback_token,
        deferral_token: CallbackToken::generate(),
        max_open_incidents: s.max_open_incidents,
    };
    let token = incoming.deferral_token.clone();
    let reply = match tokio::time::timeout(s.handler_timeout, shared.handler.handle(incoming)).await
    {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(peer = %peer.name, "RID: the handler did not answer in time; answering 503");
            return retry_after(
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the message could not be handled in time; try again later",
                ),
                Duration::from_secs(30),
            );
        }
    };
    match reply {
        Reply::Inline(rid) => {
            let allowed = rid.msg_type().is_some_and(|t| req_type.may_reply_with(t));
            if !allowed {
                tracing::error!(
                    peer = %peer.name,
                    request = req_type.as_str(),
                    reply = rid.msg_type().map(|t| t.as_str()).unwrap_or("none"),
                    "RID: the handler's inline reply type is not allowed for this request (RFC 6546 response matrix); answering 500"
                );
                return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
            let mut r = Response::new(Full::new(Bytes::from(rid.emit())));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=utf-8"),
            );
            r
        }
        Reply::Empty => {
            if is_request_or_query(&req_type) {
                tracing::error!(
                    peer = %peer.name,
                    request = req_type.as_str(),
                    "RID: the handler answered a Request or Query with an empty 200; answering 500"
                );
                return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
            empty(StatusCode::OK)
        }
        Reply::Deferred => {
            if !is_request_or_query(&req_type) {
                tracing::error!(
                    peer = %peer.name,
                    request = req_type.as_str(),
                    "RID: the handler deferred a message that takes no reply; answering 500"
                );
                return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
            let mut r = empty(StatusCode::ACCEPTED);
            match HeaderValue::from_str(token.as_str()) {
                Ok(v) => {
                    r.headers_mut().insert(CALLBACK_TOKEN_HEADER, v);
                    r
                }
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            }
        }
        Reply::Error(ReplyError::BadRequest(why)) => text(StatusCode::BAD_REQUEST, &why),
        Reply::Error(ReplyError::Forbidden(why)) => text(StatusCode::FORBIDDEN, &why),
        Reply::Error(ReplyError::Busy {
            retry_after: wait,
            reason,
        }) => {
            let r = text(StatusCode::SERVICE_UNAVAILABLE, &reason);
            if wait.is_zero() {
                r
            } else {
                retry_after(r, wait)
            }
        }
        Reply::Error(ReplyError::Failed(why)) => {
            tracing::warn!(peer = %peer.name, reason = %clean_reason(&why), "RID: the handler failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the receiver failed to handle the message; try again later",
            )
        }
    }
}
