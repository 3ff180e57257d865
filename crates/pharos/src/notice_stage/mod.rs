//! The notice stage (`[notice]`, docs/early-warning.md): tells the constituency about the events
//! that touch its addresses.
//!
//! Contract:
//! - It reads the message store's change feed (as subscriptions do: [`MessageStore::changes`],
//!   woken by [`MessageStore::watch_changes`]) from the position kept in `notices.db`; each stored
//!   alarm or event (and, with `logs = true`, each log with an RSIT classification) is looked up
//!   in the constituency registry by every address it names (longest prefix) and by the AS
//!   numbers its envelope fields carry (`src-as`, `dst-as`: an organisation known by its AS
//!   only is reached too), and each contact
//!   whose policy wants it gets an (event, recipient) pair in the delivery table, in the same
//!   transaction as the new position ([`NoticeStore::enqueue`]): each event reaches each
//!   recipient once, across restarts.
//! - Immediate contacts get one notice per event at the next round (within a second); hourly and
//!   daily contacts one digest with every waiting event once the oldest has waited the interval
//!   (`digest_interval_override` shortens both, for tests and drills).
//! - Third-party addresses are pseudonymised (when the contact's policy says so) everywhere in a
//!   notice: the address columns, every address written in the event's text, and the IODEF
//!   attachment, which is `pharos-export`'s IODEF v2 writer.
//! - Notices are rendered once, kept with their payload, and sent by SMTP (STARTTLS) or webhook
//!   (JSON, HMAC-signed like subscriptions) until they succeed or `max_attempts` is reached,
//!   with exponential backoff; a notice whose send was under way at a crash may be sent again
//!   (at-least-once at that one point), never a second notice for the same pair.
//! - At the stop, a send under way finishes (bounded by `timeout`), then the loop ends.

mod render;
mod smtp;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use pharos_anon::{CryptoPan, Key, KeyRing};
use pharos_constituency::notice::{
    self, Channel, DueGroup, EventFacts, NoticeStore, Outgoing, Queued, Recipient,
};
use pharos_constituency::{Interval, Match, PrefixTable, Registry};
use pharos_model::config::ConfigDuration;
use pharos_model::{AddrRole, Message};
use pharos_store::{ChangeKind, MessageStore};
use serde::{Deserialize, Serialize};

pub use smtp::StartTls;

use crate::shutdown::Topology;

/// The `[notice]` section: the notice stage runs when the file has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoticeConfig {
    /// SMTP server host name (also the name its TLS certificate must carry).
    pub smtp_server: String,
    /// SMTP port (587: submission with STARTTLS).
    pub smtp_port: u16,
    /// `required` (default), `opportunistic` or `off`.
    pub starttls: StartTls,
    /// Extra CA certificates (PEM) trusted for the SMTP server, besides the Mozilla roots.
    pub smtp_ca: Option<PathBuf>,
    /// `AUTH PLAIN` user (only over TLS).
    pub smtp_user: Option<String>,
    /// File holding the SMTP password (first line); never logged.
    pub smtp_password_file: Option<PathBuf>,
    /// Sender address of the notices.
    pub from: String,
    /// Name of this Pharos in notices (IODEF `IncidentID name`, the EHLO name).
    pub site: String,
    /// File holding the HMAC-SHA256 secret that signs webhook notices (`X-Pharos-Signature`);
    /// without it webhook notices are not signed.
    pub webhook_secret_file: Option<PathBuf>,
    /// Replaces the hourly and daily digest intervals (tests, drills); unset: 1 h and 1 d.
    pub digest_interval_override: Option<ConfigDuration>,
    /// Also route logs that carry an RSIT classification (default: alarms and events only).
    pub logs: bool,
    /// Delivery attempts before a notice is marked failed.
    pub max_attempts: u32,
    /// First retry delay, doubled after every failure (at most 1 h).
    pub retry: ConfigDuration,
    /// Timeout of each network step (connect, each SMTP reply, the HTTP request).
    pub timeout: ConfigDuration,
}

impl Default for NoticeConfig {
    fn default() -> Self {
        Self {
            smtp_server: "localhost".into(),
            smtp_port: 587,
            starttls: StartTls::Required,
            smtp_ca: None,
            smtp_user: None,
            smtp_password_file: None,
            from: "pharos@localhost".into(),
            site: "pharos".into(),
            webhook_secret_file: None,
            digest_interval_override: None,
            logs: false,
            max_attempts: 8,
            retry: ConfigDuration::from_secs(30),
            timeout: ConfigDuration::from_secs(30),
        }
    }
}

impl NoticeConfig {
    /// Checks the values; the error names the key and what to write.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !smtp::valid_address(&self.from) {
            anyhow::bail!(
                "config error: [notice] from = {:?}: expected a mail address like \"cert@example.org\"",
                self.from
            );
        }
        if self.smtp_server.is_empty()
            || self.smtp_server.chars().any(|c| c.is_control() || c == ' ')
        {
            anyhow::bail!(
                "config error: [notice] smtp_server = {:?}: expected a host name like \"mail.example.org\"",
                self.smtp_server
            );
        }
        if self.site.chars().any(char::is_control) || self.site.is_empty() {
            anyhow::bail!(
                "config error: [notice] site: expected a non-empty name without control characters"
            );
        }
        if self.max_attempts == 0 {
            anyhow::bail!("config error: [notice] max_attempts = 0: expected 1 or more");
        }
        if self.smtp_user.is_some() != self.smtp_password_file.is_some() {
            anyhow::bail!(
                "config error: [notice] smtp_user and smtp_password_file go together: set both or neither"
            );
        }
        if let Some(d) = self.digest_interval_override
            && d.0.is_zero()
        {
            anyhow::bail!(
                "config error: [notice] digest_interval_override = \"0s\": expected a duration like \"10s\""
            );
        }
        Ok(())
    }

    fn digest_ms(&self, i: Interval) -> i64 {
        if let Some(d) = self.digest_interval_override {
            return d.0.as_millis() as i64;
        }
        match i {
            Interval::Immediate => 0,
            Interval::Hourly => 3_600_000,
            Interval::Daily => 86_400_000,
        }
    }
}

/// Registers the descriptions of the notice stage's metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "pharos_notice_deliveries_total",
        "Notice delivery attempts, by channel (mail, webhook) and outcome (sent, retry, failed)"
    );
    metrics::describe_counter!(
        "pharos_notice_queued_total",
        "(event, recipient) pairs queued for a notice"
    );
    metrics::describe_counter!(
        "pharos_notice_notices_total",
        "Notices made, by interval (immediate, hourly, daily)"
    );
}

/// The state the blocking steps share.
struct Inner {
    store: Arc<dyn MessageStore>,
    registry: Registry,
    table: PrefixTable,
    table_at: Instant,
    table_stamp: Stamp,
    notices: NoticeStore,
    keys: KeyRing,
    cfg: NoticeConfig,
}

/// What [`registry_stamp`] returns.
type Stamp = Vec<Option<(std::time::SystemTime, u64)>>;

/// The prefix table is rebuilt when the registry's files change (an import, `pharos constituency
/// set`, the API), and at least this often.
const TABLE_REFRESH: Duration = Duration::from_secs(60);

/// Modification time and size of the registry's database and write-ahead log: a write by any
/// process changes one of them.
fn registry_stamp(db: &Path) -> Stamp {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    [db.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .and_then(|m| Ok((m.modified()?, m.len())))
                .ok()
        })
        .collect()
}
/// Feed entries routed per transaction.
const BATCH: usize = 500;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The AS numbers an event's fields carry (source side, destination side).
fn as_numbers(m: &Message) -> [Option<u32>; 2] {
    m.common
        .fields
        .as_deref()
        .map_or([None, None], |f| [f.src_as, f.dst_as])
}

/// The organisations an event concerns, each once: by the longest prefix of every address it
/// names, then by the AS numbers its fields carry (an organisation the registry knows by its AS
/// only, with no prefix, is reached this way).
fn concerned(
    registry: &Registry,
    table: &PrefixTable,
    m: &Message,
    addresses: &[IpAddr],
) -> anyhow::Result<Vec<Match>> {
    let mut out: Vec<Match> = Vec::new();
    let hits = addresses
        .iter()
        .map(|a| registry.lookup_addr(table, *a))
        .chain(
            as_numbers(m)
                .into_iter()
                .flatten()
                .map(|n| registry.lookup_asn(n)),
        );
    for hit in hits {
        if let Some(hit) = hit?
            && !out.iter().any(|h| h.organisation.id == hit.organisation.id)
        {
            out.push(hit);
        }
    }
    Ok(out)
}

/// The (event, recipient) pairs of one stored event `id`: every contact of every organisation
/// it concerns whose policy wants it.
fn queue(
    registry: &Registry,
    table: &PrefixTable,
    m: &Message,
    id: u64,
) -> anyhow::Result<Vec<Queued>> {
    let facts = Inner::facts(m);
    let mut items = Vec::new();
    for hit in concerned(registry, table, m, &facts.addresses)? {
        for c in &hit.contacts {
            if !notice::wants(&c.policy, &facts) {
                continue;
            }
            for r in Recipient::of(c) {
                items.push(Queued {
                    event_id: id,
                    recipient: r,
                    org_id: hit.organisation.id.clone(),
                    contact: c.clone(),
                });
            }
        }
    }
    Ok(items)
}

/// The addresses of `events` that belong to organisation `org` (shown in clear in its
/// notices), and the organisation's name. An address is its own when its longest prefix is
/// the organisation's or, when no prefix of the registry holds it, when its side's AS number
/// (the event's `src-as` for sources, `dst-as` for destinations) is the organisation's.
fn own_addresses(
    registry: &Registry,
    table: &PrefixTable,
    org: &str,
    events: &[Message],
) -> anyhow::Result<(Vec<ipnet::IpNet>, Option<String>)> {
    let mut own = Vec::new();
    let mut name = None;
    let found = |hit: &Match, name: &mut Option<String>| {
        if name.is_none() && !hit.organisation.name.is_empty() {
            *name = Some(hit.organisation.name.clone());
        }
    };
    for m in events {
        let mut side_is_ours = [false; 2];
        for (i, asn) in as_numbers(m).into_iter().enumerate() {
            if let Some(n) = asn
                && let Some(hit) = registry.lookup_asn(n)?
                && hit.organisation.id == org
            {
                side_is_ours[i] = true;
                found(&hit, &mut name);
            }
        }
        for (role, a) in m.addresses() {
            let ours = match registry.lookup_addr(table, a)? {
                Some(hit) if hit.organisation.id == org => {
                    found(&hit, &mut name);
                    true
                }
                Some(_) => false,
                None => side_is_ours[usize::from(role == AddrRole::Dst)],
            };
            if ours {
                own.push(ipnet::IpNet::from(a));
            }
        }
    }
    Ok((own, name))
}

impl Inner {
    fn facts(m: &Message) -> EventFacts {
        let all = m.addresses();
        let mut addresses: Vec<IpAddr> = all.iter().map(|(_, a)| *a).collect();
        // an address can stand in several roles: look each up once
        addresses.sort_unstable();
        addresses.dedup();
        EventFacts {
            kind: m.kind.name().to_string(),
            taxonomy: m.common.classification_of(&m.kind).map(|c| c.as_path()),
            severity: m.common.severity,
            sources: all
                .iter()
                .filter(|(r, _)| *r == AddrRole::Src)
                .map(|(_, a)| *a)
                .collect(),
            addresses,
        }
    }

    /// Routes one batch of the change feed; true when there may be more.
    fn route(&mut self) -> anyhow::Result<bool> {
        let stamp = registry_stamp(self.registry.path());
        if stamp != self.table_stamp || self.table_at.elapsed() > TABLE_REFRESH {
            self.table = self.registry.prefix_table()?;
            self.table_at = Instant::now();
            self.table_stamp = stamp;
        }
        let after = match self.notices.position()? {
            Some(p) => p,
            // First start: from now on (events stored before are not notified).
            None => {
                let last = self.store.last_change()?;
                self.notices.enqueue(last, &[], now_ms())?;
                last
            }
        };
        let entries = self.store.changes(after, BATCH)?;
        let Some(last) = entries.last().map(|e| e.0) else {
            return Ok(false);
        };
        let mut items = Vec::new();
        for (_, change, stored) in &entries {
            let m = &stored.message;
            if *change != ChangeKind::Created {
                continue;
            }
            let wanted_kind = m.kind.is_event()
                || (self.cfg.logs && m.common.classification_of(&m.kind).is_some());
            let Some(id) = m.common.id.filter(|_| wanted_kind) else {
                continue;
            };
            items.extend(queue(&self.registry, &self.table, m, id)?);
        }
        let n = self.notices.enqueue(last, &items, now_ms())?;
        if n > 0 {
            metrics::counter!("pharos_notice_queued_total").increment(n as u64);
            tracing::debug!(pairs = n, "events queued for notices");
        }
        Ok(entries.len() == BATCH)
    }

    /// Makes the notices that are due.
    fn make_notices(&mut self) -> anyhow::Result<()> {
        let now = now_ms();
        let cfg = self.cfg.clone();
        for g in self.notices.due(now, |i| cfg.digest_ms(i))? {
            let (subject, payload) = self.render(&g)?;
            let id = self.notices.create_notice(&g, &subject, &payload, now)?;
            metrics::counter!("pharos_notice_notices_total", "interval" => g.contact.policy.interval.as_str())
                .increment(1);
            tracing::info!(
                notice = id,
                channel = g.recipient.channel.as_str(),
                org = %render::escape_text(&g.org_id),
                events = g.event_ids.len(),
                "notice made"
            );
        }
        Ok(())
    }

    fn render(&self, g: &DueGroup) -> anyhow::Result<(String, Vec<u8>)> {
        let mut events = Vec::new();
        for id in &g.event_ids {
            // An event deleted by retention since it was queued is left out.
            if let Some(s) = self.store.get(*id)? {
                events.push(s);
            }
        }
        let messages: Vec<Message> = events.iter().map(|s| s.message.clone()).collect();
        let (own, name) = own_addresses(&self.registry, &self.table, &g.org_id, &messages)?;
        let org_name = name.unwrap_or_else(|| g.org_id.clone());
        let anon = if g.contact.policy.anonymise {
            self.keys.at(now_ms())
        } else {
            None
        };
        let rows = render::rows(&events, &own, anon);
        let interval = g.contact.policy.interval.as_str();
        let texts = render::texts(&g.contact.policy.language);
        let subject = render::subject(texts, &self.cfg.site, &org_name, interval, &rows);
        let subject = render::header_value(&subject);
        let now = chrono::Utc::now();
        let payload = match g.recipient.channel {
            Channel::Mail => {
                let body = render::text_body(texts, &org_name, interval, &rows, anon.is_some());
                let iodef = render::iodef(&messages, &own, anon, &self.cfg.site, &self.cfg.from)?;
                render::mime(&render::Mail {
                    from: &self.cfg.from,
                    to: &g.recipient.address,
                    subject: &subject,
                    body: &body,
                    attachments: vec![
                        ("events.csv", "text/csv", render::csv(&rows).into_bytes()),
                        ("events.iodef.xml", "application/xml", iodef.into_bytes()),
                    ],
                    date: now.to_rfc2822(),
                    language: texts.code,
                    message_id: format!(
                        "{}.{}.{}@{}",
                        now.timestamp_millis(),
                        g.event_ids.first().copied().unwrap_or(0),
                        std::process::id(),
                        self.cfg.site.replace(
                            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
                            ""
                        )
                    ),
                })
            }
            Channel::Webhook => serde_json::to_vec(&serde_json::json!({
                "site": self.cfg.site,
                "organisation": g.org_id,
                "interval": interval,
                "subject": subject,
                "anonymised": anon.is_some(),
                "events": rows,
            }))?,
        };
        Ok((subject, payload))
    }
}

/// The delivery side: SMTP client, HTTP client, retries.
struct Sender {
    smtp: smtp::SmtpClient,
    http: reqwest::Client,
    webhook_secret: Option<Vec<u8>>,
    cfg: NoticeConfig,
}

impl Sender {
    async fn send(&self, o: &Outgoing) -> Result<(), (String, bool)> {
        match o.record.channel {
            Channel::Mail => self
                .smtp
                .send(&self.cfg.from, &o.record.recipient, &o.payload)
                .await
                .map_err(|e| (e.to_string(), e.permanent())),
            Channel::Webhook => {
                let mut req = self
                    .http
                    .post(&o.record.recipient)
                    .header("content-type", "application/json")
                    .header("x-pharos-notice", o.record.id.to_string())
                    .body(o.payload.clone());
                if let Some(s) = &self.webhook_secret {
                    req = req.header(
                        pharos_emit::webhook::SIGNATURE_HEADER,
                        pharos_emit::webhook::sign(s, &o.payload),
                    );
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err((
                        format!("webhook answered {}", r.status()),
                        r.status().is_client_error() && r.status().as_u16() != 429,
                    )),
                    Err(e) => Err((format!("webhook: {e}"), false)),
                }
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let d = self.cfg.retry.0.saturating_mul(1 << attempts.min(16));
        d.min(Duration::from_secs(3600))
    }
}

fn read_secret(path: &Path, key: &str) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(path).with_context(|| {
        format!(
            "config error: [notice] {key}: cannot read {}; check the path and its permissions",
            path.display()
        )
    })?;
    Ok(s.lines().next().unwrap_or("").trim_end().to_string())
}

/// The Crypto-PAn keys: `[anon]`'s when it has keys, else a key generated once and kept in
/// `notice-anon.key` in the data directory (so pseudonyms stay stable across restarts).
fn key_ring(anon: &pharos_anon::AnonConfig, data_dir: &Path) -> anyhow::Result<KeyRing> {
    if anon.has_keys() {
        return anon
            .key_ring()
            .map_err(|e| anyhow::anyhow!("config error: {e}"));
    }
    let path = data_dir.join("notice-anon.key");
    if !path.exists() {
        use std::io::{Read, Write};
        let mut bytes = [0u8; pharos_anon::KEY_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .context("reading /dev/urandom for the notice anonymisation key")?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(format!("{hex}\n").as_bytes())?;
        f.sync_all()?;
    }
    let key = Key::from_file(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(KeyRing::single(CryptoPan::new(&key)))
}

/// Starts the notice stage into `topology` when `cfg` is given.
pub fn start(
    cfg: Option<&NoticeConfig>,
    constituency: &pharos_constituency::ConstituencyConfig,
    anon: &pharos_anon::AnonConfig,
    data_dir: &Path,
    store: Arc<dyn MessageStore>,
    topology: &mut Topology,
) -> anyhow::Result<()> {
    let Some(cfg) = cfg else {
        return Ok(());
    };
    describe_metrics();
    let db = constituency
        .db
        .clone()
        .unwrap_or_else(|| data_dir.join("constituency.db"));
    let registry = Registry::open(&db)?;
    let table = registry.prefix_table()?;
    let notices = NoticeStore::open(&data_dir.join("notices.db"))?;
    let tls = pharos_tls::client_config(cfg.smtp_ca.as_deref())
        .map_err(|e| anyhow::anyhow!("config error: [notice] smtp_ca: {e}"))?;
    let auth = match (&cfg.smtp_user, &cfg.smtp_password_file) {
        (Some(u), Some(p)) => Some((u.clone(), read_secret(p, "smtp_password_file")?)),
        _ => None,
    };
    let webhook_secret = match &cfg.webhook_secret_file {
        Some(p) => Some(read_secret(p, "webhook_secret_file")?.into_bytes()),
        None => None,
    };
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(pharos_tls::https_client_config())
        .timeout(cfg.timeout.0)
        .build()
        .context("building the webhook client")?;
    let sender = Sender {
        smtp: smtp::SmtpClient {
            server: cfg.smtp_server.clone(),
            port: cfg.smtp_port,
            starttls: cfg.starttls,
            tls: Arc::new(tls),
            auth,
            helo: cfg.site.replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
                "",
            ),
            timeout: cfg.timeout.0,
        },
        http,
        webhook_secret,
        cfg: cfg.clone(),
    };
    let inner = Arc::new(Mutex::new(Inner {
        store: store.clone(),
        registry,
        table,
        table_at: Instant::now(),
        table_stamp: registry_stamp(&db),
        notices,
        keys: key_ring(anon, data_dir)?,
        cfg: cfg.clone(),
    }));
    let stop = topology.shutdown().clone();
    let task = tokio::spawn(run(inner, sender, store, stop));
    tracing::info!(registry = %db.display(), "notice stage running");
    topology.add("notices (sends under way finished)", async move {
        let _ = task.await;
    });
    Ok(())
}

async fn blocking<T: Send + 'static>(
    inner: &Arc<Mutex<Inner>>,
    f: impl FnOnce(&mut Inner) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let inner = inner.clone();
    tokio::task::spawn_blocking(move || {
        let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    })
    .await
    .context("notice task")?
}

async fn run(
    inner: Arc<Mutex<Inner>>,
    sender: Sender,
    store: Arc<dyn MessageStore>,
    stop: crate::shutdown::Shutdown,
) {
    let mut changes = store.watch_changes();
    loop {
        if stop.is_stopped() {
            return;
        }
        if let Err(e) = round(&inner, &sender, &stop).await {
            tracing::warn!(error = %e, "notice stage: round failed; will retry");
        }
        tokio::select! {
            _ = stop.stopped() => return,
            _ = changes.changed() => {}
            // Digests fall due and retries come back with time, not with changes.
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn round(
    inner: &Arc<Mutex<Inner>>,
    sender: &Sender,
    stop: &crate::shutdown::Shutdown,
) -> anyhow::Result<()> {
    while blocking(inner, Inner::route).await? {}
    blocking(inner, Inner::make_notices).await?;
    let out = blocking(inner, |i| Ok(i.notices.outgoing(now_ms())?)).await?;
    for o in out {
        if stop.is_stopped() {
            break;
        }
        let result = sender.send(&o).await;
        let channel = o.record.channel.as_str();
        let id = o.record.id;
        let attempts = o.record.attempts + 1;
        match result {
            Ok(()) => {
                metrics::counter!("pharos_notice_deliveries_total", "channel" => channel, "outcome" => "sent").increment(1);
                tracing::info!(notice = id, channel, attempts, "notice delivered");
                blocking(inner, move |i| Ok(i.notices.mark_sent(id, now_ms())?)).await?;
            }
            Err((err, permanent)) => {
                let give_up = permanent || attempts >= sender.cfg.max_attempts;
                let outcome = if give_up { "failed" } else { "retry" };
                metrics::counter!("pharos_notice_deliveries_total", "channel" => channel, "outcome" => outcome).increment(1);
                tracing::warn!(notice = id, channel, attempts, error = %render::escape_text(&err), "notice delivery failed{}", if give_up { ", giving up" } else { ", will retry" });
                let next =
                    (!give_up).then(|| now_ms() + sender.backoff(attempts - 1).as_millis() as i64);
                blocking(inner, move |i| Ok(i.notices.mark_failed(id, &err, next)?)).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_constituency::{Contact, Organisation};

    fn parse(s: &str) -> anyhow::Result<NoticeConfig> {
        let c: NoticeConfig = toml::from_str(s)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn notice_config_has_documented_defaults_and_names_bad_keys() {
        let c = parse("").unwrap();
        assert_eq!(c.smtp_port, 587);
        assert_eq!(c.starttls, StartTls::Required);
        assert_eq!(c.digest_ms(Interval::Daily), 86_400_000);
        let c = parse("starttls = \"opportunistic\"\ndigest_interval_override = \"12s\"").unwrap();
        assert_eq!(c.digest_ms(Interval::Hourly), 12_000);
        let e = parse("from = \"a@b\\r\\nBcc: x\"").unwrap_err().to_string();
        assert!(e.contains("[notice] from"), "{e}");
        let e = parse("smtp_user = \"u\"").unwrap_err().to_string();
        assert!(e.contains("smtp_password_file"), "{e}");
        assert!(parse("starttls = \"maybe\"").is_err());
        assert!(parse("smtp_pasword = \"x\"").is_err());
    }

    fn org(id: &str, name: &str, prefixes: &[&str], asns: &[u32], mail: &str) -> Organisation {
        let mut o = Organisation::manual(id);
        o.name = name.into();
        o.prefixes = prefixes.iter().map(|p| p.parse().unwrap()).collect();
        o.asns = asns.to_vec();
        let mut c = Contact::abuse_mail("", mail);
        c.policy.interval = Interval::Immediate;
        o.contacts.push(c);
        o
    }

    fn ddos(src: &str, dst: &str, src_as: Option<u32>, dst_as: Option<u32>) -> Message {
        let mut m = Message::new(
            "anti-ddos-1",
            pharos_model::Kind::Ddos(pharos_model::DdosEvent {
                attack_type: None,
                start_time: chrono::Utc::now(),
                end_time: None,
                attack_src_ip: vec![src.parse().unwrap()],
                attack_dst_ip: vec![dst.parse().unwrap()],
                attack_src_port: vec![],
                attack_dst_port: vec![],
                rule_name: "r".into(),
                attack_rate: None,
                attack_throughput: None,
            }),
        );
        m.common.severity = pharos_model::Severity::High;
        if src_as.is_some() || dst_as.is_some() {
            m.common.fields = Some(Box::new(pharos_model::LogFields {
                src_as,
                dst_as,
                ..Default::default()
            }));
        }
        m
    }

    fn registry() -> (Registry, PrefixTable) {
        let mut r = Registry::open_in_memory().unwrap();
        r.upsert_manual(&org(
            "UNI",
            "University",
            &["198.51.100.0/24"],
            &[64600],
            "cert@uni.example",
        ))
        .unwrap();
        // known by its AS only: no prefix
        r.upsert_manual(&org(
            "TRANSIT",
            "Transit Net",
            &[],
            &[64700],
            "noc@transit.example",
        ))
        .unwrap();
        let t = r.prefix_table().unwrap();
        (r, t)
    }

    fn recipients(items: &[Queued]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = items
            .iter()
            .map(|q| (q.org_id.clone(), q.recipient.address.clone()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn notices_are_routed_by_as_number_to_an_organisation_without_prefixes() {
        let (r, t) = registry();
        // by address only: UNI
        let m = ddos("203.0.113.9", "198.51.100.10", None, None);
        assert_eq!(
            recipients(&queue(&r, &t, &m, 1).unwrap()),
            [("UNI".to_string(), "cert@uni.example".to_string())]
        );
        // the victim's AS is TRANSIT's: both, each once
        let m = ddos("203.0.113.9", "198.51.100.10", None, Some(64700));
        assert_eq!(
            recipients(&queue(&r, &t, &m, 2).unwrap()),
            [
                ("TRANSIT".to_string(), "noc@transit.example".to_string()),
                ("UNI".to_string(), "cert@uni.example".to_string())
            ]
        );
        // the sources' AS alone, no address in the registry: TRANSIT only; UNI's AS too: UNI once
        let m = ddos("192.0.2.50", "203.0.113.80", Some(64700), Some(64600));
        assert_eq!(
            recipients(&queue(&r, &t, &m, 3).unwrap()),
            [
                ("TRANSIT".to_string(), "noc@transit.example".to_string()),
                ("UNI".to_string(), "cert@uni.example".to_string())
            ]
        );
        // an AS nobody holds: nobody
        let m = ddos("192.0.2.50", "203.0.113.80", Some(65000), None);
        assert!(queue(&r, &t, &m, 4).unwrap().is_empty());
    }

    #[test]
    fn addresses_on_the_side_of_an_organisations_as_are_its_own_unless_a_prefix_says_otherwise() {
        let (r, t) = registry();
        let events = [
            // TRANSIT's victim with no prefix in the registry: its own
            ddos("203.0.113.9", "192.0.2.50", None, Some(64700)),
            // a victim in UNI's prefix behind TRANSIT's AS: UNI's, not TRANSIT's
            ddos("203.0.113.9", "198.51.100.10", None, Some(64700)),
        ];
        let (own, name) = own_addresses(&r, &t, "TRANSIT", &events).unwrap();
        assert_eq!(own, ["192.0.2.50/32".parse::<ipnet::IpNet>().unwrap()]);
        assert_eq!(name.as_deref(), Some("Transit Net"));
        let (own, name) = own_addresses(&r, &t, "UNI", &events).unwrap();
        assert_eq!(own, ["198.51.100.10/32".parse::<ipnet::IpNet>().unwrap()]);
        assert_eq!(name.as_deref(), Some("University"));
    }
}
