//! The RID client: POSTs one message to a listed peer over mutually authenticated TLS and
//! returns its answer, retrying what RFC 6546 lets it retry (see the module contract in
//! `transport`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::peers::{
    AllowList, AllowListServerVerifier, Peer, load_certs, load_key, load_roots, provider,
};
use super::{
    CALLBACK_TOKEN_HEADER, CallbackToken, DEFAULT_MAX_BODY, TransportError, clean_reason,
    is_xml_content_type, parse_reason,
};
use crate::enums::MsgType;
use crate::rid::Rid;
use crate::xml::Limits;

/// The client's settings (`[rid.client]`); [`ClientSettings::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Our client certificate chain (PEM), presented to every peer.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA that signs the peers' server certificates (PEM).
    pub ca: PathBuf,
    /// The peer allow-list: a server must present a certificate pinned here.
    pub peers: Vec<Peer>,
    /// Time to connect, TLS handshake included (default 10 s).
    pub connect_timeout: Duration,
    /// Time for one whole exchange, answer body included (default 60 s).
    pub request_timeout: Duration,
    /// Most attempts per message, the first included (default 5).
    pub max_attempts: u32,
    /// Wait before the first retry (default 1 s); doubles at each retry, with jitter.
    pub initial_backoff: Duration,
    /// Longest wait between attempts (default 60 s); a `Retry-After` longer than this ends the
    /// retries.
    pub max_backoff: Duration,
    /// Largest answer body read (default 4 MiB).
    pub max_body: usize,
    /// Parser limits for answers (their `max_bytes` is lowered to `max_body`).
    pub limits: Limits,
    /// Fixed addresses for peer host names, bypassing DNS (the port comes from the URL);
    /// default none.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

impl ClientSettings {
    /// The defaults, with our certificate, key, the peers' CA and the peers given.
    pub fn new(cert: PathBuf, key: PathBuf, ca: PathBuf, peers: Vec<Peer>) -> Self {
        Self {
            cert,
            key,
            ca,
            peers,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_body: DEFAULT_MAX_BODY,
            limits: Limits::default(),
            resolve: Vec::new(),
        }
    }

    /// Checks the values that need no file (the files are read by [`RidClient::new`]).
    pub fn validate(&self) -> Result<(), TransportError> {
        for (key, d) in [
            ("client.connect_timeout", self.connect_timeout),
            ("client.request_timeout", self.request_timeout),
            ("client.initial_backoff", self.initial_backoff),
            ("client.max_backoff", self.max_backoff),
        ] {
            if d.is_zero() {
                return Err(TransportError::config(
                    key,
                    "is zero; give a duration like \"10s\"",
                ));
            }
        }
        if self.max_attempts == 0 {
            return Err(TransportError::config(
                "client.max_attempts",
                "is zero; give at least 1 (default 5)",
            ));
        }
        if self.max_body == 0 {
            return Err(TransportError::config(
                "client.max_body",
                "is zero; give a size in bytes (default 4 MiB)",
            ));
        }
        Ok(())
    }
}

/// A peer's answer to one message.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with a RID message (parsed, checked, and of a type the request allows).
    Inline {
        /// The reply.
        msg: Box<Rid>,
        /// Its bytes as received.
        body: Bytes,
        /// The end-entity certificate (DER) the peer's server presented, pinned by the
        /// allow-list: the key its enveloped signature is checked with unless the configuration
        /// names another signing certificate (empty if the TLS layer did not report it).
        peer_certificate: Vec<u8>,
    },
    /// 200 (or 204) with an empty body: a Report or a callback was taken.
    Empty,
    /// 202: the reply comes later by callback, carrying this token.
    Deferred(CallbackToken),
}

/// Why a message was not delivered (or its answer not usable). Every variant names the peer
/// and the URL.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nothing was sent: the peer, URL or message cannot be used.
    #[error("RID peer {peer:?} ({url}): {problem}")]
    Refused {
        /// The peer.
        peer: String,
        /// The URL.
        url: String,
        /// What is wrong and the fix.
        problem: String,
    },
    /// The peer answered with an error status (after retries for 5xx and 429).
    #[error(
        "RID peer {peer:?} ({url}) answered HTTP {status}: {reason} (after {attempts} attempt(s))"
    )]
    Status {
        /// The peer.
        peer: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The peer's plain-text reason (cleaned, cut to 300 characters).
        reason: String,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After`, if the peer gave one.
        retry_after: Option<Duration>,
    },
    /// No answer: connection, TLS or timeout failure on every attempt.
    #[error(
        "RID peer {peer:?} ({url}): {error} (after {attempts} attempt(s)); check that the peer is up, that its certificate chains to client.ca and is pinned in peers, and that ours is in its allow-list"
    )]
    Connection {
        /// The peer.
        peer: String,
        /// The URL.
        url: String,
        /// The last error, with its causes.
        error: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The peer answered with a success status but an answer that RFC 6546 does not allow or
    /// that does not parse (it cannot be told: log it for the operator).
    #[error("RID peer {peer:?} ({url}) answered HTTP {status} with an unusable reply: {problem}")]
    BadReply {
        /// The peer.
        peer: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong.
        problem: String,
    },
}

impl SendError {
    /// The HTTP status the peer answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::BadReply { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The RID client (cheap to clone; connections are kept alive and reused).
#[derive(Debug, Clone)]
pub struct RidClient {
    http: reqwest::Client,
    allow: Arc<AllowList>,
    settings: Arc<ClientSettings>,
    limits: Limits,
}

/// The error and its causes on one line.
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    clean_reason(&s)
}

fn jitter_fraction() -> f64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

fn retry_after_of(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn read_limited(resp: &mut reqwest::Response, max: usize) -> Result<Option<Bytes>, String> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if buf.len() + chunk.len() > max {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

enum Failure {
    Connection(String),
    Status {
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl RidClient {
    /// Loads our certificate and key, the CA and the allow-list, and builds the HTTPS client
    /// (TLS 1.2+, ring, no redirects, no proxy, HTTP/1.1).
    pub fn new(settings: ClientSettings) -> Result<Self, TransportError> {
        settings.validate()?;
        let allow = Arc::new(AllowList::new(settings.peers.clone(), "peers")?);
        let roots = load_roots(&settings.ca, "client.ca")?;
        let verifier = AllowListServerVerifier::new(roots, allow.clone(), "client.ca")?;
        let chain = load_certs(&settings.cert, "client.cert")?;
        let key = load_key(&settings.key, "client.key")?;
        let tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::config("client", format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(chain, key)
            .map_err(|e| {
                TransportError::config(
                    "client.key",
                    format!(
                        "{:?} is not the key of client.cert = {:?}: {e}",
                        settings.key.display().to_string(),
                        settings.cert.display().to_string()
                    ),
                )
            })?;
        let mut builder = reqwest::Client::builder();
        for (host, addr) in &settings.resolve {
            builder = builder.resolve(host, *addr);
        }
        let http = builder
            .tls_backend_preconfigured(tls)
            .tls_info(true)
            .https_only(true)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("pharos-rid/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                TransportError::config("client", format!("HTTPS client setup failed: {e}"))
            })?;
        let mut limits = settings.limits;
        limits.max_bytes = limits.max_bytes.min(settings.max_body);
        Ok(Self {
            http,
            allow,
            settings: Arc::new(settings),
            limits,
        })
    }

    /// Sends `msg` to the listed peer `peer` at `url` (https, host = the peer's DNS-ID when
    /// pinned), with `callback_token` when it answers a deferral of theirs.
    pub async fn send(
        &self,
        peer: &str,
        url: &str,
        msg: &Rid,
        callback_token: Option<&CallbackToken>,
    ) -> Result<Answer, SendError> {
        self.send_bytes(peer, url, Bytes::from(msg.emit()), callback_token)
            .await
    }

    /// Sends a message already serialised (e.g. signed, or read back from the state table):
    /// the same bytes on every attempt. The bytes must parse as a RID message.
    pub async fn send_bytes(
        &self,
        peer: &str,
        url: &str,
        body: Bytes,
        callback_token: Option<&CallbackToken>,
    ) -> Result<Answer, SendError> {
        let refused = |problem: String| SendError::Refused {
            peer: peer.to_string(),
            url: url.to_string(),
            problem,
        };
        let Some(entry) = self.allow.by_name(peer) else {
            return Err(refused(
                "is not in the peer allow-list; add it to peers (name, fingerprint, dns_id)".into(),
            ));
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| refused(format!("not a URL ({e}); give https://<peer DNS-ID>:4590/")))?;
        if parsed.scheme() != "https" {
            return Err(refused(format!(
                "scheme {:?} refused: RID travels over https only",
                parsed.scheme()
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refused(
                "credentials in the URL are refused: RID peers authenticate with certificates; remove user:password@".into(),
            ));
        }
        let host = parsed.host_str().unwrap_or("");
        if let Some(d) = &entry.dns_id
            && !d.eq_ignore_ascii_case(host)
        {
            return Err(refused(format!(
                "host {host:?} is not the peer's DNS-ID {d:?}; use https://{d}:4590/"
            )));
        }
        let msg = Rid::parse(&body, &self.limits).map_err(|e| {
            refused(format!(
                "the message to send does not parse: {}",
                parse_reason(&e)
            ))
        })?;
        let Some(req_type) = msg.msg_type().cloned() else {
            return Err(refused("the message to send has no RIDPolicy".into()));
        };
        let s = &self.settings;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut rb = self
                .http
                .post(parsed.clone())
                .header(CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(body.clone());
            if let Some(t) = callback_token {
                rb = rb.header(CALLBACK_TOKEN_HEADER, t.as_str());
            }
            let failure = match rb.send().await {
                Err(e) => Failure::Connection(describe(&e)),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if resp.status().is_success() {
                        return self.answer(peer, url, &req_type, resp).await;
                    }
                    let retry_after = retry_after_of(&resp);
                    let reason = match read_limited(&mut resp, 4096).await {
                        Ok(Some(b)) => clean_reason(String::from_utf8_lossy(&b).trim()),
                        _ => String::new(),
                    };
                    let f = Failure::Status {
                        status,
                        reason,
                        retry_after,
                    };
                    if !(resp.status().is_server_error() || status == 429) {
                        return Err(self.failed(peer, url, f, attempt));
                    }
                    f
                }
            };
            if attempt >= s.max_attempts {
                return Err(self.failed(peer, url, failure, attempt));
            }
            let backoff = s
                .initial_backoff
                .saturating_mul(1u32 << (attempt - 1).min(20))
                .min(s.max_backoff);
            let wait = match &failure {
                Failure::Status {
                    retry_after: Some(ra),
                    ..
                } => {
                    if *ra > s.max_backoff {
                        return Err(self.failed(peer, url, failure, attempt));
                    }
                    *ra
                }
                _ => backoff.mul_f64(0.5 + 0.5 * jitter_fraction()),
            };
            tracing::info!(
                peer,
                url,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %match &failure {
                    Failure::Connection(e) => e.clone(),
                    Failure::Status { status, .. } => format!("HTTP {status}"),
                },
                "RID: sending failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn failed(&self, peer: &str, url: &str, f: Failure, attempts: u32) -> SendError {
        match f {
            Failure::Connection(error) => SendError::Connection {
                peer: peer.to_string(),
                url: url.to_string(),
                error,
                attempts,
            },
            Failure::Status {
                status,
                reason,
                retry_after,
            } => SendError::Status {
                peer: peer.to_string(),
                url: url.to_string(),
                status,
                reason,
                attempts,
                retry_after,
            },
        }
    }

    async fn answer(
        &self,
        peer: &str,
        url: &str,
        req_type: &MsgType,
        mut resp: reqwest::Response,
    ) -> Result<Answer, SendError> {
        let status = resp.status().as_u16();
        let bad = |problem: String| SendError::BadReply {
            peer: peer.to_string(),
            url: url.to_string(),
            status,
            problem,
        };
        let takes_deferral = req_type.is_request() || *req_type == MsgType::Query;
        let peer_certificate = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        if status == 202 {
            if !takes_deferral {
                return Err(bad(format!(
                    "a {} is not answered with 202 (RFC 6546)",
                    req_type.as_str()
                )));
            }
            let token = resp
                .headers()
                .get(CALLBACK_TOKEN_HEADER)
                .ok_or_else(|| bad(format!("202 without {CALLBACK_TOKEN_HEADER}")))?
                .to_str()
                .map_err(|_| bad(format!("{CALLBACK_TOKEN_HEADER} is not visible ASCII")))
                .and_then(|v| CallbackToken::parse(v).map_err(bad))?;
            return Ok(Answer::Deferred(token));
        }
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = read_limited(&mut resp, self.settings.max_body)
            .await
            .map_err(|e| bad(format!("answer body could not be read: {e}")))?
            .ok_or_else(|| {
                bad(format!(
                    "answer body over the limit of {} bytes",
                    self.settings.max_body
                ))
            })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            if takes_deferral {
                return Err(bad(format!(
                    "a {} is answered with a message or 202, not an empty 200",
                    req_type.as_str()
                )));
            }
            return Ok(Answer::Empty);
        }
        if !is_xml_content_type(&ctype) {
            return Err(bad(format!(
                "Content-Type {:?}; expected text/xml",
                clean_reason(&ctype)
            )));
        }
        let msg = Rid::parse(&body, &self.limits)
            .map_err(|e| bad(format!("malformed RID: {}", parse_reason(&e))))?;
        msg.check().map_err(|e| bad(clean_reason(&e.to_string())))?;
        let reply_type = msg.msg_type().cloned();
        if !reply_type
            .as_ref()
            .is_some_and(|t| req_type.may_reply_with(t))
        {
            return Err(bad(format!(
                "a {} may not be answered with a {} (RFC 6546 response matrix)",
                req_type.as_str(),
                reply_type
                    .as_ref()
                    .map(|t| t.as_str())
                    .unwrap_or("RID without RIDPolicy")
            )));
        }
        Ok(Answer::Inline {
            msg: Box::new(msg),
            body,
            peer_certificate,
        })
    }
}
