//! The syslog normalise stage: takes the [`RawRecord`]s the syslog listeners
//! (`pharos_sources::syslog`) receive, parses their headers, resolves or registers the sending NSF
//! in the inventory, normalises them into I2NSF messages (`pharos_normalize`) and submits them in
//! batches to the store writer.
//!
//! ```text
//! pharos_sources::syslog listeners --RawRecord--> bounded channel --> this stage: a thread that
//! parses headers, resolves NSFs, normalises and batches --Vec<Message>--> a task that submits
//! the batches to the StoreWriter (durable, group commit) and counts every loss per cause
//! ```
//!
//! Contract:
//! - No line is dropped for not being understood: lines no normaliser understands are stored as
//!   generic logs and counted per NSF as unparsed (metrics and `GET /api/v1/nsfs`).
//! - Every loss is counted by cause in `pharos_syslog_dropped_total` (store_full, store_error,
//!   shutdown); stored messages in `pharos_syslog_stored_total`.
//! - A line belongs to the NSF the inventory resolves (`pharos_store::inventory`): from a
//!   `[[syslog.relay]]`, by its header hostname; else by the sender's address. Its `source` is always
//!   the sender's address (the relay's, for a relayed line).
//! - A new NSF is registered with the format its first line was recognised as, the one logged.
//!
//! It lives in the binary because it joins crates that the dependency order keeps apart (a crate
//! depends only on crates before it in the data flow, README "Layout": sources come before
//! normalise and store, so they cannot call them). `run.rs` wires it;
//! shutdown is: stop the listeners (the channel closes), [`SyslogStage::finish`] (drain what was
//! received, wait until it is stored, write the inventory).

mod start;
#[cfg(test)]
mod tests;

pub use start::start as start_path;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pharos_model::{Message, Timestamp};
use pharos_normalize::{Format, LogInput, Normalized, normalize};
use pharos_sources::syslog::{RawRecord, SyslogConfig};
use pharos_store::inventory::{
    Inventory, NsfConfig, NsfCounts, Registration, Relay, Resolved, parse_net,
};
use pharos_store::writer::{StoreWriter, SubmitError};
use pharos_wire::syslog::{ParseOptions, SyslogMessage, TimeZone, parse};
use tokio::sync::mpsc;

/// The checked `[syslog]` keys the stage reads.
#[derive(Debug, Clone)]
pub struct StageSettings {
    /// Zone of RFC 3164 header timestamps.
    pub tz: TimeZone,
    /// How far after the receive time an RFC 3164 timestamp may be and keep the receive year.
    pub year_margin: chrono::TimeDelta,
    /// Most messages per store submission.
    pub batch: usize,
    /// Parser of senders that match no `[[nsf]]` entry.
    pub default_parser: Format,
    /// Most senders registered automatically.
    pub max_auto_nsfs: usize,
    /// `[[syslog.relay]]`: senders whose lines belong to their header hostname.
    pub relays: Vec<Relay>,
}

/// Largest `[syslog] year_margin`, in days: a line written a year ago, less than the margin
/// ahead of the receive date in the calendar, is dated that far in the future, so the margin
/// stays a clock error, not a season.
const MAX_YEAR_MARGIN_DAYS: i64 = 31;

impl StageSettings {
    /// Checks `timezone`, `year_margin`, `batch`, `default_parser` and `[[syslog.relay]]` of
    /// `[syslog]` and the `[[nsf]]` entries; the error names the key and the fix.
    pub fn new(cfg: &SyslogConfig, nsfs: &[NsfConfig]) -> Result<Self, String> {
        let tz = TimeZone::parse(&cfg.timezone).ok_or_else(|| {
            format!(
                "[syslog] timezone = {:?}: expected \"UTC\", \"local\" or an offset like \"+01:00\" (zone names are not supported)",
                cfg.timezone
            )
        })?;
        let year_margin = chrono::TimeDelta::from_std(cfg.year_margin.get())
            .ok()
            .filter(|d| *d <= chrono::TimeDelta::days(MAX_YEAR_MARGIN_DAYS))
            .ok_or_else(|| {
                format!(
                    "[syslog] year_margin = \"{}\": expected a duration from \"0s\" to \"{MAX_YEAR_MARGIN_DAYS}d\", like \"1d\" or \"12h\"",
                    cfg.year_margin
                )
            })?;
        if cfg.batch == 0 {
            return Err("[syslog] batch = 0: must be at least 1".into());
        }
        let mut relays = Vec::with_capacity(cfg.relay.len());
        for (i, r) in cfg.relay.iter().enumerate() {
            let at = format!("[[syslog.relay]] #{}", i + 1);
            if r.addresses.is_empty() {
                return Err(format!(
                    "{at}: addresses is empty: give the relay's addresses, e.g. addresses = [\"192.0.2.10\"]"
                ));
            }
            let addresses = r
                .addresses
                .iter()
                .map(|a| parse_net(a).map_err(|e| format!("{at}: addresses: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            if r.max_hostnames == 0 {
                return Err(format!(
                    "{at}: max_hostnames = 0: must be at least 1 (remove the relay to attribute its lines to its address)"
                ));
            }
            relays.push(Relay {
                addresses,
                max_hostnames: r.max_hostnames,
            });
        }
        let default_parser: Format = cfg
            .default_parser
            .parse()
            .map_err(|e| format!("[syslog] default_parser: {e}"))?;
        for (i, n) in nsfs.iter().enumerate() {
            n.validate(i)?;
            n.parser
                .parse::<Format>()
                .map_err(|e| format!("[[nsf]] #{} ({:?}): parser: {e}", i + 1, n.name))?;
            if nsfs[..i].iter().any(|o| o.name == n.name) {
                return Err(format!(
                    "[[nsf]] #{}: name {:?} is used twice; NSF names must be unique",
                    i + 1,
                    n.name
                ));
            }
        }
        Ok(Self {
            tz,
            year_margin,
            batch: cfg.batch,
            default_parser,
            max_auto_nsfs: cfg.max_auto_nsfs,
            relays,
        })
    }
}

/// The normaliser's view of a parsed syslog message: `raw` is the whole record, `fallback_host`
/// (the sender's address) stands in when the header named no host.
pub fn log_input<'a>(
    m: &SyslogMessage<'a>,
    raw: &'a str,
    fallback_host: Option<&'a str>,
) -> LogInput<'a> {
    // Cisco ASA with a hostname sends `host : %ASA-...`: the colon is not part of the text.
    let text = m.text.strip_prefix(": ").unwrap_or(m.text);
    LogInput {
        text,
        raw,
        host: m.header_hostname().or(fallback_host),
        app_name: m.app_name,
        time: m.timestamp_utc(),
        facility: m.pri.map(|_| m.facility()),
        severity: m.pri.map(|_| m.severity()),
    }
}

/// How often the inventory is written while records flow.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The running stage: the normalise thread and the submit task.
pub struct SyslogStage {
    thread: std::thread::JoinHandle<()>,
    submit: tokio::task::JoinHandle<()>,
}

impl SyslogStage {
    /// Starts the stage on the listeners' channel `rx`; messages go to `writer`, senders and
    /// their counts to `inventory`. Must be called inside the tokio runtime.
    pub fn start(
        rx: mpsc::Receiver<RawRecord>,
        settings: StageSettings,
        inventory: Arc<Inventory>,
        writer: StoreWriter,
    ) -> std::io::Result<Self> {
        describe_metrics();
        let (btx, brx) = mpsc::channel::<Vec<Message>>(4);
        let submit = tokio::spawn(submit_loop(brx, writer));
        let thread = std::thread::Builder::new()
            .name("pharos-syslog-normalize".into())
            .spawn(move || normalize_loop(rx, btx, settings, inventory))?;
        Ok(Self { thread, submit })
    }

    /// Once the channel is closed (the listeners stopped): waits until everything received is
    /// normalised and stored and the inventory is written.
    pub async fn finish(self) {
        let t = self.thread;
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
        let _ = self.submit.await;
    }
}

fn normalize_loop(
    mut rx: mpsc::Receiver<RawRecord>,
    btx: mpsc::Sender<Vec<Message>>,
    settings: StageSettings,
    inventory: Arc<Inventory>,
) {
    let batch = settings.batch;
    let mut stage = Normalizer::new(settings, inventory.clone());
    let mut last_flush = Instant::now();
    let mut recs = Vec::with_capacity(batch);
    while let Some(first) = rx.blocking_recv() {
        recs.push(first);
        while recs.len() < batch {
            match rx.try_recv() {
                Ok(r) => recs.push(r),
                Err(_) => break,
            }
        }
        let msgs = stage.process(&recs);
        recs.clear();
        if let Err(e) = btx.blocking_send(msgs) {
            metrics::counter!("pharos_syslog_dropped_total", "reason" => "shutdown")
                .increment(e.0.len() as u64);
            break;
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            flush_inventory(&inventory);
            last_flush = Instant::now();
        }
    }
    flush_inventory(&inventory);
}

/// Writes the NSF inventory, logging (not failing) when it cannot.
pub(crate) fn flush_inventory(inventory: &Inventory) {
    if let Err(e) = inventory.flush() {
        tracing::warn!(error = %e, "writing the NSF inventory failed; counts stay in memory and are retried");
    }
}

/// Batches submitted at once: the store writer folds concurrent submissions into one transaction,
/// so a few in flight make bigger, cheaper commits while backpressure still reaches the listeners.
const IN_FLIGHT: usize = 4;

async fn submit_loop(mut brx: mpsc::Receiver<Vec<Message>>, writer: StoreWriter) {
    let mut inflight = tokio::task::JoinSet::new();
    loop {
        // Account finished submissions as they finish, take a new batch while there is room.
        let batch = tokio::select! {
            Some(r) = inflight.join_next(), if !inflight.is_empty() => {
                account(r);
                continue;
            }
            b = brx.recv(), if inflight.len() < IN_FLIGHT => match b {
                Some(b) => b,
                None => break,
            },
        };
        let w = writer.clone();
        inflight.spawn(async move {
            let n = batch.len() as u64;
            (n, w.submit(batch).await.map(|_| ()))
        });
    }
    while let Some(r) = inflight.join_next().await {
        account(r);
    }
}

fn account(r: Result<(u64, Result<(), SubmitError>), tokio::task::JoinError>) {
    let Ok((n, r)) = r else { return };
    match r {
        Ok(()) => metrics::counter!("pharos_syslog_stored_total").increment(n),
        Err(SubmitError::Full(q)) => {
            metrics::counter!("pharos_syslog_dropped_total", "reason" => "store_full").increment(n);
            tracing::warn!(
                messages = n,
                queue = q,
                "store queue full: syslog batch dropped"
            );
        }
        Err(SubmitError::Closed) => {
            metrics::counter!("pharos_syslog_dropped_total", "reason" => "shutdown").increment(n);
        }
        Err(SubmitError::Store(e)) => {
            metrics::counter!("pharos_syslog_dropped_total", "reason" => "store_error")
                .increment(n);
            tracing::error!(messages = n, error = %e, "store write failed: syslog batch dropped");
        }
    }
}

#[derive(Default)]
struct Tally {
    counts: NsfCounts,
    last: Option<(Timestamp, IpAddr)>,
    format: Option<&'static str>,
}

/// Turns raw records into messages; keeps per-NSF tallies between inventory updates.
struct Normalizer {
    settings: StageSettings,
    inventory: Arc<Inventory>,
    formats: HashMap<String, Format>,
}

impl Normalizer {
    fn new(settings: StageSettings, inventory: Arc<Inventory>) -> Self {
        inventory.set_relays(settings.relays.clone());
        Self {
            settings,
            inventory,
            formats: HashMap::new(),
        }
    }

    fn format(&mut self, parser: &str) -> Format {
        if let Some(f) = self.formats.get(parser) {
            return *f;
        }
        // Parsers were validated with the configuration; an unknown one falls back to detection.
        let f = parser.parse().unwrap_or(Format::Auto);
        self.formats.insert(parser.to_string(), f);
        f
    }

    /// Registers the NSF of a line the inventory does not know and normalises the line. The line
    /// is normalised first, so that the registration records (and logs) the format the line was
    /// recognised as, the one `GET /api/v1/nsfs` then shows as `detected-format`.
    fn register(
        &mut self,
        peer: IpAddr,
        host: Option<&str>,
        input: &LogInput<'_>,
    ) -> (Resolved, Normalized) {
        let mut n = normalize(input, self.settings.default_parser, &peer.to_string());
        let format = n.parsed.then_some(n.format);
        let (r, how) = self
            .inventory
            .register(peer, host, format, self.settings.max_auto_nsfs);
        let format = format.unwrap_or("unknown");
        match how {
            Registration::Existing => {}
            Registration::Overflow => {
                metrics::counter!("pharos_syslog_nsf_overflow_total").increment(1)
            }
            Registration::Address => {
                metrics::counter!("pharos_syslog_nsf_registered_total").increment(1);
                tracing::info!(%peer, format, "new syslog sender registered in the NSF inventory as {}", r.name);
            }
            Registration::Hostname => {
                metrics::counter!("pharos_syslog_nsf_registered_total").increment(1);
                tracing::info!(relay = %peer, format, "new NSF registered in the NSF inventory from a relayed syslog header as {}", r.name);
            }
        }
        n.message.common.nsf_name.clone_from(&r.name);
        (r, n)
    }

    /// Normalises a batch of records and updates the inventory and metrics once per NSF.
    fn process(&mut self, recs: &[RawRecord]) -> Vec<Message> {
        let mut out = Vec::with_capacity(recs.len());
        let mut tallies: HashMap<usize, (String, Tally)> = HashMap::new();
        // (format, outcome) -> lines: what each vendor's lines became, for
        // `pharos_syslog_format_lines_total` (bounded: formats x 3 outcomes)
        let mut outcomes: HashMap<(&'static str, &'static str), u64> = HashMap::new();
        for rec in recs {
            let text = String::from_utf8_lossy(&rec.bytes);
            let opts = ParseOptions {
                tz: self.settings.tz,
                received: rec.received,
                year_margin: self.settings.year_margin,
            };
            let h = parse(&text, &opts);
            for a in h.anomalies.names() {
                metrics::counter!("pharos_syslog_header_anomalies_total", "anomaly" => a)
                    .increment(1);
            }
            let peer = rec.peer.ip().to_canonical();
            let peer_str = peer.to_string();
            let host = h.header_hostname();
            let input = log_input(&h, &text, Some(&peer_str));
            let (nsf, n) = match self.inventory.resolve(peer, host) {
                Some(r) => {
                    let f = self.format(&r.parser);
                    let n = normalize(&input, f, &r.name);
                    (r, n)
                }
                None => self.register(peer, host, &input),
            };
            *outcomes.entry((n.format, outcome(&n))).or_default() += 1;
            let mut msg = n.message;
            msg.common.receive_time = rec.received;
            // The sender's address, which is the relay's for a relayed line.
            msg.common.source = Some(format!("syslog-{}:{peer}", rec.transport.as_str()));
            // What the operator configured wins over what the normaliser guessed.
            if nsf.vendor.is_some() {
                msg.common.vendor_name = nsf.vendor.clone();
            }
            if nsf.model.is_some() {
                msg.common.device_model = nsf.model.clone();
            }
            let (_, t) = tallies
                .entry(nsf.index)
                .or_insert_with(|| (nsf.name.clone(), Tally::default()));
            t.counts.received += 1;
            if n.parsed {
                t.counts.parsed += 1;
                t.format = Some(n.format);
            } else {
                t.counts.unparsed += 1;
            }
            if t.last.is_none_or(|(when, _)| when <= rec.received) {
                t.last = Some((rec.received, peer));
            }
            out.push(msg);
        }
        for ((format, outcome), lines) in outcomes {
            metrics::counter!("pharos_syslog_format_lines_total", "format" => format, "outcome" => outcome)
                .increment(lines);
        }
        for (index, (name, t)) in tallies {
            if t.counts.parsed > 0 {
                metrics::counter!("pharos_syslog_parsed_total", "nsf" => name.clone())
                    .increment(t.counts.parsed);
            }
            if t.counts.unparsed > 0 {
                metrics::counter!("pharos_syslog_unparsed_total", "nsf" => name)
                    .increment(t.counts.unparsed);
            }
            if let Some((when, peer)) = t.last {
                self.inventory.record(index, t.counts, when, peer, t.format);
            }
        }
        out
    }
}

/// What a normalised line became: `typed` (an I2NSF case), `fields` (a generic log that keeps
/// the vendor's parsed fields) or `unparsed` (a generic log with its raw text only: the format
/// names the vendor that recognised the line but has no table row for it, or `generic`).
pub fn outcome(n: &Normalized) -> &'static str {
    match (&n.message.kind, n.parsed) {
        (_, false) => "unparsed",
        (pharos_model::Kind::GenericLog(_), true) => "fields",
        (_, true) => "typed",
    }
}

/// Describes the stage's metrics (the listeners describe theirs, `pharos_syslog_dropped_total`
/// included, whose reasons store_full, store_error and shutdown are counted here).
fn describe_metrics() {
    use metrics::describe_counter;
    describe_counter!(
        "pharos_syslog_parsed_total",
        "Syslog lines a normaliser understood, by NSF"
    );
    describe_counter!(
        "pharos_syslog_format_lines_total",
        "Syslog lines by the format that recognised them (generic: none) and outcome: typed (an \
         I2NSF case), fields (a generic log with the vendor's fields) or unparsed (raw text only)"
    );
    describe_counter!(
        "pharos_syslog_unparsed_total",
        "Syslog lines stored as generic logs, by NSF"
    );
    describe_counter!(
        "pharos_syslog_stored_total",
        "Syslog messages stored durably"
    );
    describe_counter!(
        "pharos_syslog_header_anomalies_total",
        "Syslog headers deviating from RFC 5424/3164, by anomaly"
    );
    describe_counter!(
        "pharos_syslog_nsf_registered_total",
        "Unknown senders registered automatically in the NSF inventory"
    );
    describe_counter!(
        "pharos_syslog_nsf_overflow_total",
        "Lines from unknown senders beyond max_auto_nsfs, counted under the shared entry unregistered-senders"
    );
}
