//! Webhook sink: POSTs each item (or each batch, as a JSON array) to an HTTPS URL, signed with
//! HMAC-SHA256.
//!
//! Contract:
//! - [`WebhookConfig::build`] refuses a URL whose host is not in `allow` (host names match exactly,
//!   case-insensitively; IP hosts match an address or a CIDR), and plain `http` except to loopback
//!   hosts (`localhost`, 127.0.0.0/8, `::1`). Redirects are not followed (a redirect could leave the
//!   allow-list) and the environment's proxy settings are ignored.
//! - Every request carries `Content-Type: application/json`, `X-Pharos-Signature: sha256=<hex>` (the
//!   HMAC-SHA256 of the exact body bytes with `secret`, see [`sign`] and [`verify`]),
//!   `X-Pharos-Delivery: <seq>` (of the first item of the body) and `X-Pharos-Change`.
//! - The body of one item is [`document`]: `{"seq", "change", "id", "state"?, "notification"}`;
//!   with `batch = true` one request carries a JSON array of those.
//! - [`WebhookSink::deliver`] returns `Ok` once the receiver answered 2xx to everything. 408, 429,
//!   5xx, timeouts and connection failures are [`SinkError::Retry`]; any other status is
//!   [`SinkError::Rejected`]. With one request per item, the items the receiver already accepted
//!   are remembered: when the caller offers the batch again, sending resumes after the last item
//!   acknowledged (items at or below that sequence are not sent again by this sink instance).
//! - The secret is never logged; [`WebhookSink::describe`] shows the URL without credentials or
//!   query string.

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{ConfigDuration, Item, SinkConfigError, SinkError};

const SINK: &str = "webhook";

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-Pharos-Signature";
/// Name of the header carrying the sequence number of the (first) item.
pub const DELIVERY_HEADER: &str = "X-Pharos-Delivery";
/// Name of the header carrying the change of the (first) item.
pub const CHANGE_HEADER: &str = "X-Pharos-Change";

/// A secret string: `Debug` never shows it; serialises as itself (redact before showing a config).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// Configuration of a webhook sink.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST: `https://...`, or `http://` to a loopback host only.
    pub url: String,
    /// HMAC-SHA256 key for `X-Pharos-Signature` (required, not empty).
    pub secret: Secret,
    /// `false` (default): one POST per item; `true`: one POST with a JSON array per batch.
    #[serde(default)]
    pub batch: bool,
    /// Time for one request, connecting included (default `"10s"`).
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// Extra CA certificates (PEM file) to trust besides the Mozilla roots, for self-signed receivers.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allowed destination hosts: names, IP addresses or CIDRs; the URL's host must match one.
    #[serde(default)]
    pub allow: Vec<String>,
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(10))
}

impl WebhookConfig {
    /// A configuration for `url` and `secret` with the defaults, allowing the URL's host.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        let url = url.into();
        let allow = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
            .into_iter()
            .collect();
        Self {
            url,
            secret: Secret(secret.into()),
            batch: false,
            timeout: default_timeout(),
            ca_file: None,
            allow,
        }
    }

    /// The same configuration with the secret replaced by `***` (to show it).
    pub fn redacted(&self) -> Self {
        Self {
            secret: Secret("***".into()),
            ..self.clone()
        }
    }

    /// Validates the configuration and builds the sink (no network access yet).
    pub fn build(&self) -> Result<WebhookSink, SinkConfigError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            SinkConfigError::new(
                "webhook.url",
                format!(
                    "{:?} is not a URL ({e}); write it like \"https://hooks.example.net/pharos\"",
                    self.url
                ),
            )
        })?;
        let host = url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            .ok_or_else(|| {
                SinkConfigError::new(
                    "webhook.url",
                    format!(
                        "{:?} has no host; write it like \"https://hooks.example.net/pharos\"",
                        self.url
                    ),
                )
            })?;
        let allow = parse_allow(&self.allow)?;
        if !allow.iter().any(|a| a.matches(&host)) {
            return Err(SinkConfigError::new(
                "webhook.allow",
                format!(
                    "the host {host:?} of webhook.url {} is not allowed; add \"{host}\" (or a CIDR that contains it) to webhook.allow",
                    redact_url(&url)
                ),
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(SinkConfigError::new(
                    "webhook.url",
                    format!(
                        "{} uses plain http to a host that is not loopback; use https:// (http:// is only for 127.0.0.1, ::1 and localhost)",
                        redact_url(&url)
                    ),
                ));
            }
            other => {
                return Err(SinkConfigError::new(
                    "webhook.url",
                    format!("scheme {other:?} is not supported; use https://"),
                ));
            }
        }
        if self.secret.0.is_empty() {
            return Err(SinkConfigError::new(
                "webhook.secret",
                "is empty; set a shared secret the receiver uses to check X-Pharos-Signature",
            ));
        }
        if self.timeout.0.is_zero() {
            return Err(SinkConfigError::new(
                "webhook.timeout",
                "is zero; give a duration like \"10s\"",
            ));
        }
        let tls = crate::client_tls_config(self.ca_file.as_deref(), "webhook.ca_file")?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(self.timeout.0)
            .connect_timeout(self.timeout.0)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("pharos/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                SinkConfigError::new("webhook", format!("HTTP client setup failed: {e}"))
            })?;
        Ok(WebhookSink {
            describe: format!(
                "webhook {}{}",
                redact_url(&url),
                if self.batch { " (batch)" } else { "" }
            ),
            url,
            secret: self.secret.0.as_bytes().to_vec(),
            batch: self.batch,
            client,
            acked: None,
        })
    }
}

impl crate::sink::SinkConfig for WebhookConfig {
    const KIND: &'static str = SINK;
    const KEYS: &'static [&'static str] =
        &["url", "secret", "batch", "timeout", "ca_file", "allow"];
    type Sink = WebhookSink;

    fn build(&self) -> Result<WebhookSink, SinkConfigError> {
        WebhookConfig::build(self)
    }

    fn redacted(&self) -> Self {
        WebhookConfig::redacted(self)
    }

    /// The webhook's own `allow` is replaced by `[emit] allow_hosts` (the URL's host is then
    /// checked against it by [`WebhookConfig::build`]); an empty `allow_hosts` refuses it.
    fn confine(&mut self, allow_hosts: &[String]) -> Result<(), String> {
        if allow_hosts.is_empty() {
            return Err("webhooks created through the API are refused while [emit] allow_hosts is empty; list the receivers' hosts there (or define the subscription in pharos.toml)".into());
        }
        self.allow = allow_hosts.to_vec();
        Ok(())
    }
}

/// One entry of the allow-list.
enum Allow {
    Name(String),
    Net(IpNet),
}

impl Allow {
    fn matches(&self, host: &str) -> bool {
        match self {
            Allow::Name(n) => n.eq_ignore_ascii_case(host),
            Allow::Net(net) => host.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
        }
    }
}

fn parse_allow(entries: &[String]) -> Result<Vec<Allow>, SinkConfigError> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            if let Ok(ip) = e.parse::<IpAddr>() {
                Ok(Allow::Net(IpNet::from(ip)))
            } else if let Ok(net) = e.parse::<IpNet>() {
                Ok(Allow::Net(net))
            } else if !e.is_empty()
                && !e.contains('/')
                && e.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            {
                Ok(Allow::Name(e.to_ascii_lowercase()))
            } else {
                Err(SinkConfigError::new(
                    "webhook.allow",
                    format!(
                        "{e:?} is neither a host name, an IP address nor a CIDR; write e.g. \"hooks.example.net\", \"192.0.2.10\" or \"192.0.2.0/24\""
                    ),
                ))
            }
        })
        .collect()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The URL without user, password and query (which may carry credentials).
fn redact_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The JSON document of one item: `{"seq", "change", "id", "state"?, "notification"}` (also the
/// NATS payload).
pub fn document(item: &Item) -> Value {
    let mut doc = json!({
        "seq": item.seq,
        "change": item.change.as_str(),
        "id": item.stored.message.common.id.map(|id| id.to_string()),
    });
    if let Some(state) = item.stored.state {
        doc["state"] = Value::from(state.as_str());
    }
    doc["notification"] = pharos_model::json::encode(&item.stored.message);
    doc
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `secret`, as sent in `X-Pharos-Signature`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// True when `header` is the `sha256=<hex>` signature of `body` with `secret` (constant-time).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    mac(secret, body).verify_slice(&sig).is_ok()
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    m.update(body);
    m
}

/// A webhook sink built from a [`WebhookConfig`].
pub struct WebhookSink {
    url: reqwest::Url,
    secret: Vec<u8>,
    batch: bool,
    client: reqwest::Client,
    describe: String,
    /// Highest seq the receiver acknowledged, in one-request-per-item mode.
    acked: Option<u64>,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("target", &self.describe)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// The target for logs and the API: `webhook <url without credentials or query>`.
    pub fn describe(&self) -> String {
        self.describe.clone()
    }

    /// Delivers `items` in order; `Ok` when the receiver acknowledged all of them.
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        if self.batch {
            let docs: Vec<Value> = items.iter().map(document).collect();
            let body = serde_json::to_vec(&docs).expect("JSON values serialise");
            self.post(body, &items[0], items.len()).await?;
        } else {
            for item in items {
                if self.acked.is_some_and(|a| item.seq <= a) {
                    continue;
                }
                let body = serde_json::to_vec(&document(item)).expect("JSON values serialise");
                self.post(body, item, 1).await?;
                self.acked = Some(item.seq);
            }
        }
        Ok(())
    }

    async fn post(&self, body: Vec<u8>, first: &Item, count: usize) -> Result<(), SinkError> {
        let signature = sign(&self.secret, &body);
        let res = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, first.seq.to_string())
            .header(CHANGE_HEADER, first.change.as_str())
            .body(body)
            .send()
            .await;
        let fail = |reason: &'static str, e: SinkError| {
            metrics::counter!("pharos_emit_sink_errors_total", "sink" => SINK, "reason" => reason)
                .increment(count as u64);
            Err(e)
        };
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                let reason = if e.is_timeout() {
                    "timeout"
                } else {
                    "unreachable"
                };
                return fail(
                    reason,
                    SinkError::Retry(format!("{}: {}", self.describe, error_chain(&e))),
                );
            }
        };
        let status = res.status();
        // Read (and drop) the body so the connection can be reused.
        let _ = res.bytes().await;
        if status.is_success() {
            metrics::counter!("pharos_emit_sent_total", "sink" => SINK).increment(count as u64);
            return Ok(());
        }
        let msg = format!("{}: HTTP {status}", self.describe);
        let code = status.as_u16();
        if code == 408 || code == 429 || status.is_server_error() {
            fail("status-retry", SinkError::Retry(msg))
        } else {
            fail("rejected", SinkError::Rejected(msg))
        }
    }
}

impl crate::sink::Sink for WebhookSink {
    fn describe(&self) -> String {
        WebhookSink::describe(self)
    }

    async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        WebhookSink::deliver(self, items).await
    }
}

/// The error and its sources on one line (reqwest's top-level message alone says little).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
