//! NATS JetStream sink: publishes each item to a subject derived from its kind and waits for
//! JetStream's acknowledgement of every publish.
//!
//! Contract:
//! - Subjects are `<prefix>.<category>.<scope>.<name>` ([`subject`]), every token `[a-z0-9-]+`,
//!   stable across releases: `pharos.alarms.system.cpu`, `pharos.events.nsf.ddos`,
//!   `pharos.logs.system.access`, `pharos.counters.nsf.snapshot`, ... so consumers can subscribe
//!   to `pharos.events.>` or `pharos.*.nsf.>`.
//! - The payload is the webhook's single-item document ([`crate::webhook::document`]); the header
//!   `Nats-Msg-Id: <message id>-<seq>` lets JetStream drop a publish retried after a lost ack
//!   (within the stream's duplicate window, 2 minutes for the stream created here).
//! - [`NatsSink::deliver`] publishes the whole batch in order, then waits for all acks; `Ok` only
//!   when every publish was acknowledged. A failed or timed-out ack, a missing stream, or a client
//!   that is not connected is [`SinkError::Retry`]; a payload larger than the server's limit is
//!   [`SinkError::Rejected`].
//! - The client connects on the first `deliver` and is reused (it reconnects on its own); if
//!   `stream` is set, that stream is created over `<prefix>.>` when missing.
//! - The token and credentials are never logged; [`NatsSink::describe`] shows the URL only.

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use pharos_model::Kind;
use pharos_model::ident::Identity;
use serde::{Deserialize, Serialize};

use crate::webhook::Secret;
use crate::{ConfigDuration, Item, SinkConfigError, SinkError};

const SINK: &str = "nats";

/// Configuration of a NATS JetStream sink.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, `nats://host:port` (or `tls://host:port`).
    pub url: String,
    /// First subject tokens (default `pharos`); each token `[a-z0-9-]+`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Credentials file (`.creds`, NKey + JWT), optional; never logged.
    #[serde(default)]
    pub creds: Option<PathBuf>,
    /// Authentication token, optional; never logged.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Extra CA certificates (PEM file) for a `tls://` server.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Stream to create over `<prefix>.>` when missing (default `PHAROS`; `""` to create none).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Time to wait for the acknowledgements of a batch, and to connect (default `"5s"`).
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: ConfigDuration,
}

fn default_prefix() -> String {
    "pharos".into()
}
fn default_stream() -> String {
    "PHAROS".into()
}
fn default_ack_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(5))
}

impl NatsConfig {
    /// A configuration for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            subject_prefix: default_prefix(),
            creds: None,
            token: None,
            ca_file: None,
            stream: default_stream(),
            ack_timeout: default_ack_timeout(),
        }
    }

    /// Validates the configuration and builds the sink (it connects on the first delivery).
    pub fn build(&self) -> Result<NatsSink, SinkConfigError> {
        let rest = self
            .url
            .strip_prefix("nats://")
            .or_else(|| self.url.strip_prefix("tls://"))
            .ok_or_else(|| {
                SinkConfigError::new(
                    "nats.url",
                    format!(
                        "{:?} is not a NATS URL; write it like \"nats://nats.example.net:4222\"",
                        self.url
                    ),
                )
            })?;
        if rest.is_empty() || rest.contains(['/', '@', ' ']) {
            return Err(SinkConfigError::new(
                "nats.url",
                "must be nats://host:port without credentials or path; put a token in nats.token or a creds file in nats.creds",
            ));
        }
        if self.subject_prefix.is_empty() || !self.subject_prefix.split('.').all(is_token) {
            return Err(SinkConfigError::new(
                "nats.subject_prefix",
                format!(
                    "{:?} must be dot-separated tokens of a-z, 0-9 and '-', like \"pharos\" or \"site-a.pharos\"",
                    self.subject_prefix
                ),
            ));
        }
        if self.creds.is_some() && self.token.is_some() {
            return Err(SinkConfigError::new(
                "nats.token",
                "is set together with nats.creds; keep one of them",
            ));
        }
        if !self.stream.is_empty()
            && !self
                .stream
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(SinkConfigError::new(
                "nats.stream",
                format!(
                    "{:?} is not a stream name; use letters, digits, '-' and '_' (or \"\" to create none)",
                    self.stream
                ),
            ));
        }
        if self.ack_timeout.0.is_zero() {
            return Err(SinkConfigError::new(
                "nats.ack_timeout",
                "is zero; give a duration like \"5s\"",
            ));
        }
        Ok(NatsSink {
            config: self.clone(),
            js: None,
        })
    }
}

impl crate::sink::SinkConfig for NatsConfig {
    const KIND: &'static str = SINK;
    const KEYS: &'static [&'static str] = &[
        "url",
        "subject_prefix",
        "creds",
        "token",
        "ca_file",
        "stream",
        "ack_timeout",
    ];
    type Sink = NatsSink;

    fn build(&self) -> Result<NatsSink, SinkConfigError> {
        NatsConfig::build(self)
    }

    /// The token replaced by `***`.
    fn redacted(&self) -> Self {
        Self {
            token: self.token.as_ref().map(|_| Secret("***".into())),
            ..self.clone()
        }
    }

    /// The host of `url` must be in `[emit] allow_hosts`.
    fn confine(&mut self, allow_hosts: &[String]) -> Result<(), String> {
        let rest = self
            .url
            .strip_prefix("nats://")
            .or_else(|| self.url.strip_prefix("tls://"))
            .unwrap_or(&self.url);
        crate::sink::require_allowed("nats.url", crate::sink::host_of(rest), allow_hosts)
    }
}

fn is_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// The subject of a message of `kind` under `prefix`: `<prefix>.<category>.<scope>.<name>`.
///
/// | kind | subject after the prefix |
/// |---|---|
/// | system-alarm | `alarms.system.<cpu, memory, disk, hardware, interface or other>` |
/// | system-event | `events.system.<access-violation, configuration-change or other>` |
/// | traffic-flows, session-table | `events.system.traffic-flows`, `events.system.session-table` |
/// | ddos, virus, intrusion, web-attack, voip-vocn, botnet | `events.nsf.<kind>` |
/// | system-access-log, resource-utilization-log, user-activity-log | `logs.system.<access, resource-utilization, user-activity>` |
/// | dpi-log, vulnerability-scan-log, firewall-traffic-log, generic-log | `logs.nsf.<dpi, vulnerability-scan, firewall-traffic, generic>` |
/// | counters | `counters.nsf.snapshot` |
pub fn subject(prefix: &str, kind: &Kind) -> String {
    let tail: &str = match kind {
        Kind::SystemAlarm(a) => {
            let cat = a
                .alarm_category
                .map(|c| c.name().trim_end_matches("-alarm"))
                .unwrap_or("other");
            return format!("{prefix}.alarms.system.{cat}");
        }
        Kind::SystemEvent(e) => {
            let cat = e.event_category.map(|c| c.name()).unwrap_or("other");
            return format!("{prefix}.events.system.{cat}");
        }
        Kind::TrafficFlows(_) => "events.system.traffic-flows",
        Kind::SessionTable(_) => "events.system.session-table",
        Kind::Ddos(_) => "events.nsf.ddos",
        Kind::Virus(_) => "events.nsf.virus",
        Kind::Intrusion(_) => "events.nsf.intrusion",
        Kind::WebAttack(_) => "events.nsf.web-attack",
        Kind::VoipVocn(_) => "events.nsf.voip-vocn",
        Kind::Botnet(_) => "events.nsf.botnet",
        Kind::SystemAccessLog(_) => "logs.system.access",
        Kind::ResourceUtilizationLog(_) => "logs.system.resource-utilization",
        Kind::UserActivityLog(_) => "logs.system.user-activity",
        Kind::DpiLog(_) => "logs.nsf.dpi",
        Kind::VulnerabilityScanLog(_) => "logs.nsf.vulnerability-scan",
        Kind::FirewallTrafficLog(_) => "logs.nsf.firewall-traffic",
        Kind::GenericLog(_) => "logs.nsf.generic",
        Kind::Counters(_) => "counters.nsf.snapshot",
    };
    format!("{prefix}.{tail}")
}

/// The `Nats-Msg-Id` of an item: `<message id>-<seq>`.
pub fn msg_id(item: &Item) -> String {
    let id = item.stored.message.common.id.unwrap_or(0);
    format!("{id}-{}", item.seq)
}

/// A NATS JetStream sink built from a [`NatsConfig`].
pub struct NatsSink {
    config: NatsConfig,
    js: Option<(async_nats::Client, jetstream::Context)>,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}

fn fail(reason: &'static str, n: usize, e: SinkError) -> SinkError {
    metrics::counter!("pharos_emit_sink_errors_total", "sink" => SINK, "reason" => reason)
        .increment(n as u64);
    e
}

impl crate::sink::Sink for NatsSink {
    fn describe(&self) -> String {
        NatsSink::describe(self)
    }

    async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        NatsSink::deliver(self, items).await
    }
}

impl NatsSink {
    /// The target for logs and the API: `nats <url> <prefix>.>`.
    pub fn describe(&self) -> String {
        format!("nats {} {}.>", self.config.url, self.config.subject_prefix)
    }

    async fn connect(&self) -> Result<(async_nats::Client, jetstream::Context), String> {
        let c = &self.config;
        let mut opts = async_nats::ConnectOptions::new()
            .name("pharos")
            .connection_timeout(c.ack_timeout.0)
            .request_timeout(Some(c.ack_timeout.0));
        if let Some(t) = &c.token {
            opts = opts.token(t.0.clone());
        }
        if let Some(path) = &c.creds {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|e| format!("cannot read nats.creds {}: {e}", path.display()))?;
        }
        if let Some(ca) = &c.ca_file {
            opts = opts.add_root_certificates(ca.clone());
        }
        if c.url.starts_with("tls://") {
            opts = opts.require_tls(true);
        }
        let client = opts
            .connect(c.url.as_str())
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(c.ack_timeout.0);
        if !c.stream.is_empty() {
            js.get_or_create_stream(jetstream::stream::Config {
                name: c.stream.clone(),
                subjects: vec![format!("{}.>", c.subject_prefix)],
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("stream {}: {e}", c.stream))?;
        }
        Ok((client, js))
    }

    /// Publishes `items` in order and waits for every ack; `Ok` when all were acknowledged.
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        if items.is_empty() {
            return Ok(());
        }
        let n = items.len();
        let target = self.describe();
        let retry = |m: String| SinkError::Retry(format!("{target}: {m}"));
        if self.js.is_none() {
            match self.connect().await {
                Ok(c) => self.js = Some(c),
                Err(e) => return Err(fail("unreachable", n, retry(e))),
            }
        }
        let (client, js) = self.js.as_ref().expect("connected above");
        if client.connection_state() != async_nats::connection::State::Connected {
            return Err(fail(
                "unreachable",
                n,
                retry("not connected (reconnecting)".into()),
            ));
        }
        let mut acks = Vec::with_capacity(n);
        for item in items {
            let payload =
                serde_json::to_vec(&crate::webhook::document(item)).expect("JSON values serialise");
            let publish = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(msg_id(item));
            let subject = subject(&self.config.subject_prefix, &item.stored.message.kind);
            match js.send_publish(subject, publish).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    use jetstream::context::PublishErrorKind as K;
                    let msg = format!("{target}: publish seq {}: {e}", item.seq);
                    return Err(if e.kind() == K::MaxPayloadExceeded {
                        fail("rejected", n, SinkError::Rejected(msg))
                    } else {
                        fail("publish", n, SinkError::Retry(msg))
                    });
                }
            }
        }
        let results =
            futures_util::future::join_all(acks.into_iter().map(|a| a.into_future())).await;
        for (item, r) in items.iter().zip(results) {
            if let Err(e) = r {
                return Err(fail(
                    "ack",
                    n,
                    retry(format!("no ack for seq {}: {e}", item.seq)),
                ));
            }
        }
        metrics::counter!("pharos_emit_sent_total", "sink" => SINK).increment(n as u64);
        Ok(())
    }
}
