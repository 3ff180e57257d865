//! [`Dispatcher`]: one task per subscription that follows the store's change feed and delivers the
//! matching changes through the subscription's sink.
//!
//! Contract:
//! - Changes are delivered in feed order. A subscription's position (the feed seq up to which
//!   everything was delivered, rejected, dropped or filtered out) is persisted in the
//!   [`SubscriptionStore`] after every acknowledged delivery, so after a restart nothing delivered
//!   is delivered again (as long as the receiver's acknowledgement reached us) and nothing pending
//!   is lost: the store's feed is the queue.
//! - [`SinkError::Retry`]: the same items are offered again, in order, after an exponential
//!   backoff with jitter (100 ms doubling to 60 s). [`SinkError::Rejected`]: the items are counted
//!   as failed and skipped.
//! - When more than `max_queue` changes are pending (feed seq lag), the oldest are skipped: the
//!   matching ones among them are counted as dropped, and a warning is logged once per episode.
//! - Changes deleted from the store (retention) before the subscription read them leave a gap in
//!   the feed seq: they are counted as expired (whether they matched is no longer known), and a
//!   warning is logged at most once a minute.
//! - Dampening (RFC 8641): at most one push per `dampening_period`; the changes of the period go
//!   in the next push as one batch. Periodic emission pushes what gathered every `interval`.
//! - `pending` in [`DeliveryState`] is the number of matching changes read but not yet delivered
//!   plus the feed seq lag not yet read (an upper bound: unread changes are not yet filtered).
//! - Metrics: `pharos_emit_delivered_total{subscription}`, `pharos_emit_failed_total{subscription}`,
//!   `pharos_emit_dropped_total{subscription}`, `pharos_emit_expired_total{subscription}`,
//!   `pharos_emit_retries_total{subscription}`,
//!   gauge `pharos_emit_pending{subscription}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pharos_store::MessageStore;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::feed::Feed;
use crate::subscription::{
    Emission, Position, SinkSpec, SpecError, SubscriptionSpec, SubscriptionStore,
    SubscriptionStoreError,
};
use crate::{Item, SinkError};

/// Most changes read from the feed, and offered to a sink, at once.
pub const BATCH: usize = 500;
/// Feed entries kept decoded for the subscriptions and streams that follow the feed closely.
pub const FEED_WINDOW: usize = 20_000;
/// First retry delay after [`SinkError::Retry`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Least time between position writes that only skip non-matching changes.
const SKIP_PERSIST_EVERY: Duration = Duration::from_secs(1);
/// Least time between two warnings about expired changes.
const EXPIRED_WARN_EVERY: Duration = Duration::from_secs(60);
/// How long [`Dispatcher::shutdown`] lets a delivery in progress finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where a subscription was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `[[subscription]]` in pharos.toml: cannot be deleted through the API.
    Config,
    /// Created with `POST /api/v1/subscriptions`.
    Api,
}

/// Delivery state of one subscription, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeliveryState {
    /// Feed seq up to which everything was handled.
    pub position: u64,
    /// Changes delivered (acknowledged by the sink).
    pub delivered: u64,
    /// Matching changes not yet delivered, plus the unread feed lag (an upper bound).
    pub pending: u64,
    /// Changes the sink rejected for good.
    pub failed: u64,
    /// Matching changes skipped because more than `max_queue` were pending.
    pub dropped: u64,
    /// Changes deleted from the store (retention) before they were read.
    pub expired: u64,
    /// Retries after [`SinkError::Retry`] since start.
    pub retries: u64,
    /// The last delivery error, if the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the sink last acknowledged a delivery (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery: Option<chrono::DateTime<chrono::Utc>>,
}

/// A subscription with its origin and delivery state.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionInfo {
    /// The spec, secrets redacted.
    pub spec: SubscriptionSpec,
    /// Where it was defined.
    pub origin: Origin,
    /// The sink, described (URL without credentials, address).
    pub sink: String,
    /// Delivery state.
    pub state: DeliveryState,
}

/// Settings of the dispatcher (`[emit]` in pharos.toml, the parts it uses).
#[derive(Debug, Clone, Default)]
pub struct DispatcherConfig {
    /// Hosts API-created subscriptions may send to (names, addresses, CIDRs); empty: API-created
    /// subscriptions are refused.
    pub allow_hosts: Vec<String>,
}

/// Why a subscription operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The spec is invalid (400).
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// A subscription of that name exists (409).
    #[error("subscription {0:?} exists; delete it first or choose another name")]
    Exists(String),
    /// No subscription has that name (404).
    #[error("no subscription named {0:?}")]
    NotFound(String),
    /// The subscription is defined in pharos.toml (409).
    #[error(
        "subscription {0:?} is defined in pharos.toml ([[subscription]]); remove it there and restart"
    )]
    ConfigDefined(String),
    /// The subscription store failed.
    #[error(transparent)]
    Store(#[from] SubscriptionStoreError),
    /// The message store failed.
    #[error("message store: {0}")]
    MessageStore(String),
}

struct Running {
    spec: SubscriptionSpec,
    origin: Origin,
    sink: String,
    state: Arc<Mutex<DeliveryState>>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// Runs the subscriptions; see the module docs.
pub struct Dispatcher {
    store: Arc<dyn MessageStore>,
    feed: Arc<Feed>,
    subs: Arc<SubscriptionStore>,
    config: DispatcherConfig,
    running: Mutex<HashMap<String, Running>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dispatcher {
    /// Starts the config-defined subscriptions and the API-created ones kept in `subs` (a config
    /// subscription wins over an API one of the same name, with a warning). Call within a tokio
    /// runtime.
    pub fn start(
        store: Arc<dyn MessageStore>,
        subs: Arc<SubscriptionStore>,
        config: DispatcherConfig,
        from_config: Vec<SubscriptionSpec>,
    ) -> Result<Arc<Self>, EmitError> {
        let d = Arc::new(Self {
            feed: Arc::new(Feed::new(store.clone(), FEED_WINDOW)),
            store,
            subs,
            config,
            running: Mutex::new(HashMap::new()),
        });
        for spec in from_config {
            spec.validate()?;
            if lock(&d.running).contains_key(&spec.name) {
                return Err(EmitError::Invalid(SpecError {
                    name: spec.name.clone(),
                    message:
                        "defined twice in pharos.toml; give each [[subscription]] its own name"
                            .into(),
                }));
            }
            d.launch(spec, Origin::Config)?;
        }
        for spec in d.subs.api_specs()? {
            if lock(&d.running).contains_key(&spec.name) {
                tracing::warn!(
                    subscription = %spec.name,
                    "an API-created subscription has the name of one in pharos.toml; the pharos.toml one is used"
                );
                continue;
            }
            if let Err(e) = spec.validate() {
                tracing::error!(subscription = %spec.name, "API-created subscription not started: {e}");
                continue;
            }
            d.launch(spec, Origin::Api)?;
        }
        Ok(d)
    }

    /// Starts the task of `spec` and registers it.
    fn launch(&self, spec: SubscriptionSpec, origin: Origin) -> Result<(), EmitError> {
        let mut running = lock(&self.running);
        let r = self.prepare(spec, origin)?;
        running.insert(r.spec.name.clone(), r);
        Ok(())
    }

    /// The shared reader of the change feed (for SSE streams).
    pub fn feed(&self) -> Arc<Feed> {
        self.feed.clone()
    }

    /// Starts the task of `spec` (position created at the feed's end if it has none).
    fn prepare(&self, spec: SubscriptionSpec, origin: Origin) -> Result<Running, EmitError> {
        let pos = match self.subs.position(&spec.name)? {
            Some(p) => p,
            None => {
                let p = Position {
                    seq: self
                        .store
                        .last_change()
                        .map_err(|e| EmitError::MessageStore(e.to_string()))?,
                    ..Default::default()
                };
                self.subs.save_position(&spec.name, &p)?;
                p
            }
        };
        let sink = Sink::build(&spec.sink).map_err(|message| SpecError {
            name: spec.name.clone(),
            message,
        })?;
        let describe = sink.describe();
        let state = Arc::new(Mutex::new(DeliveryState {
            position: pos.seq,
            delivered: pos.delivered,
            failed: pos.failed,
            dropped: pos.dropped,
            expired: pos.expired,
            ..Default::default()
        }));
        let (stop, stop_rx) = watch::channel(false);
        let task = Task {
            spec: spec.clone(),
            store: self.store.clone(),
            feed: self.feed.clone(),
            subs: self.subs.clone(),
            state: state.clone(),
            sink,
            pos,
            stop: stop_rx,
        };
        let handle = tokio::spawn(task.run());
        Ok(Running {
            spec,
            origin,
            sink: describe,
            state,
            stop,
            handle,
        })
    }

    /// Validates, stores and starts an API-created subscription. Its destination must be in
    /// `[emit] allow_hosts` (a webhook's own allow-list is replaced by it; a syslog address or NATS
    /// URL host must match it).
    pub fn add(&self, mut spec: SubscriptionSpec) -> Result<SubscriptionInfo, EmitError> {
        if let SinkSpec::Webhook(w) = &mut spec.sink {
            if self.config.allow_hosts.is_empty() {
                return Err(EmitError::Invalid(SpecError {
                    name: spec.name.clone(),
                    message: "webhooks created through the API are refused while [emit] allow_hosts is empty; list the receivers' hosts there (or define the subscription in pharos.toml)".into(),
                }));
            }
            w.allow = self.config.allow_hosts.clone();
        }
        let target = match &spec.sink {
            SinkSpec::Syslog(c) => Some(("syslog.address", host_of(&c.address))),
            SinkSpec::Nats(c) => Some((
                "nats.url",
                host_of(
                    c.url
                        .strip_prefix("nats://")
                        .or_else(|| c.url.strip_prefix("tls://"))
                        .unwrap_or(&c.url),
                ),
            )),
            _ => None,
        };
        if let Some((key, host)) = target
            && !allowed(&self.config.allow_hosts, host)
        {
            return Err(EmitError::Invalid(SpecError {
                name: spec.name.clone(),
                message: format!(
                    "sink.{key}: host {host:?} is not in [emit] allow_hosts ({}); subscriptions created through the API may only send to those hosts (or define it in pharos.toml)",
                    if self.config.allow_hosts.is_empty() {
                        "empty".to_string()
                    } else {
                        self.config.allow_hosts.join(", ")
                    }
                ),
            }));
        }
        spec.validate().map_err(|mut e| {
            if e.message.contains("allow") {
                e.message
                    .push_str(" (API-created webhooks may target the hosts of [emit] allow_hosts)");
            }
            e
        })?;
        // Checked, stored and started under the lock: two requests for one name cannot both win.
        let mut running = lock(&self.running);
        if running.contains_key(&spec.name) {
            return Err(EmitError::Exists(spec.name));
        }
        self.subs.save_spec(&spec)?;
        let r = match self.prepare(spec.clone(), Origin::Api) {
            Ok(r) => r,
            Err(e) => {
                let _ = self.subs.delete(&spec.name);
                return Err(e);
            }
        };
        let out = info(&r);
        running.insert(spec.name, r);
        Ok(out)
    }

    /// Stops and deletes an API-created subscription (its position too).
    pub async fn remove(&self, name: &str) -> Result<(), EmitError> {
        let r = {
            let mut running = lock(&self.running);
            match running.get(name) {
                None => return Err(EmitError::NotFound(name.to_string())),
                Some(r) if r.origin == Origin::Config => {
                    return Err(EmitError::ConfigDefined(name.to_string()));
                }
                Some(_) => running.remove(name).expect("present"),
            }
        };
        stop_task(name, r).await;
        self.subs.delete(name)?;
        Ok(())
    }

    /// Every subscription, by name.
    pub fn list(&self) -> Vec<SubscriptionInfo> {
        let running = lock(&self.running);
        let mut out: Vec<SubscriptionInfo> = running.values().map(info).collect();
        out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        out
    }

    /// The subscription named `name`, if any.
    pub fn get(&self, name: &str) -> Option<SubscriptionInfo> {
        lock(&self.running).get(name).map(info)
    }

    /// Stops every task (a delivery in progress gets a few seconds to finish); positions are
    /// persisted.
    pub async fn shutdown(&self) {
        let all: Vec<(String, Running)> = lock(&self.running).drain().collect();
        let stops = all
            .into_iter()
            .map(|(name, r)| async move { stop_task(&name, r).await });
        futures_util::future::join_all(stops).await;
    }
}

/// The host of `host:port` or `[v6]:port` (the whole string when it has no port).
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => addr,
    }
}

/// Whether `host` is named by an entry of `allow`: a host name (case-insensitive), an address or
/// a CIDR containing the address.
fn allowed(allow: &[String], host: &str) -> bool {
    let ip = host.parse::<std::net::IpAddr>().ok();
    allow.iter().any(|a| {
        let a = a.trim();
        match (ip, a.parse::<ipnet::IpNet>(), a.parse::<std::net::IpAddr>()) {
            (Some(ip), Ok(net), _) => net.contains(&ip),
            (Some(ip), _, Ok(one)) => one == ip,
            (None, Err(_), Err(_)) => a.eq_ignore_ascii_case(host),
            _ => false,
        }
    })
}

async fn stop_task(name: &str, r: Running) {
    let _ = r.stop.send(true);
    let abort = r.handle.abort_handle();
    if tokio::time::timeout(SHUTDOWN_GRACE, r.handle)
        .await
        .is_err()
    {
        tracing::warn!(subscription = %name, "delivery did not finish in time; stopped (it is offered again at next start)");
        abort.abort();
    }
}

fn info(r: &Running) -> SubscriptionInfo {
    SubscriptionInfo {
        spec: r.spec.redacted(),
        origin: r.origin,
        sink: r.sink.clone(),
        state: lock(&r.state).clone(),
    }
}

/// The first periodic tick after `now` (ticks every interval from the first one).
fn roll(tick: Option<Instant>, emission: Emission, now: Instant) -> Option<Instant> {
    let (Some(t), Emission::Periodic { interval }) = (tick, emission) else {
        return tick;
    };
    if t > now {
        return Some(t);
    }
    let i = interval.0.as_nanos().max(1);
    let k = (now - t).as_nanos() / i + 1;
    Some(t + Duration::from_nanos((i * k).min(u64::MAX as u128) as u64))
}

/// A built sink.
enum Sink {
    Webhook(Box<crate::webhook::WebhookSink>),
    Syslog(Box<crate::syslog_out::SyslogOutSink>),
    Nats(Box<crate::nats::NatsSink>),
    #[cfg(test)]
    Test(test_sink::TestSink),
}

impl Sink {
    fn build(spec: &SinkSpec) -> Result<Self, String> {
        Ok(match spec {
            SinkSpec::Webhook(c) => Sink::Webhook(Box::new(c.build().map_err(|e| e.to_string())?)),
            SinkSpec::Syslog(c) => Sink::Syslog(Box::new(c.build().map_err(|e| e.to_string())?)),
            SinkSpec::Nats(c) => Sink::Nats(Box::new(c.build().map_err(|e| e.to_string())?)),
            #[cfg(test)]
            SinkSpec::Test(t) => Sink::Test(t.clone()),
        })
    }

    fn describe(&self) -> String {
        match self {
            Sink::Webhook(s) => s.describe(),
            Sink::Syslog(s) => s.describe(),
            Sink::Nats(s) => s.describe(),
            #[cfg(test)]
            Sink::Test(_) => "test".into(),
        }
    }

    async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        match self {
            Sink::Webhook(s) => s.deliver(items).await,
            Sink::Syslog(s) => s.deliver(items).await,
            Sink::Nats(s) => s.deliver(items).await,
            #[cfg(test)]
            Sink::Test(s) => s.deliver(items).await,
        }
    }
}

/// The state of one subscription's task.
struct Task {
    spec: SubscriptionSpec,
    store: Arc<dyn MessageStore>,
    feed: Arc<Feed>,
    subs: Arc<SubscriptionStore>,
    state: Arc<Mutex<DeliveryState>>,
    sink: Sink,
    pos: Position,
    stop: watch::Receiver<bool>,
}

/// What the task waits for next.
enum Wake {
    Stop,
    Go,
}

impl Task {
    async fn run(mut self) {
        let name = self.spec.name.clone();
        let labels = [("subscription", name.clone())];
        let delivered_c = metrics::counter!("pharos_emit_delivered_total", &labels);
        let failed_c = metrics::counter!("pharos_emit_failed_total", &labels);
        let dropped_c = metrics::counter!("pharos_emit_dropped_total", &labels);
        let expired_c = metrics::counter!("pharos_emit_expired_total", &labels);
        let mut expired_warned: Option<Instant> = None;
        let retries_c = metrics::counter!("pharos_emit_retries_total", &labels);
        let pending_g = metrics::gauge!("pharos_emit_pending", &labels);
        let mut changes = self.store.watch_changes();
        // Matching changes read but not yet delivered, in feed order.
        let mut pending: Vec<Item> = Vec::new();
        // Feed seq read up to (>= the position).
        let mut scanned = self.pos.seq;
        let mut last_persist = Instant::now();
        let mut dirty = false;
        let mut backoff = BACKOFF_MIN;
        let mut retry_at: Option<Instant> = None;
        let mut last_push: Option<Instant> = None;
        let start = Instant::now();
        let mut next_tick = match self.spec.emission {
            Emission::Periodic { interval } => Some(start + interval.0),
            Emission::OnChange => None,
        };
        // Whether a push is under way (periodic or dampened: keep going until nothing is pending).
        let mut pushing = false;
        let mut overflow = false;
        loop {
            if *self.stop.borrow() {
                break;
            }
            changes.borrow_and_update();
            let last = match self.store.last_change() {
                Ok(l) => l,
                Err(e) => {
                    self.set_error(format!("message store: {e}"));
                    if self.sleep(Duration::from_secs(1)).await {
                        break;
                    }
                    continue;
                }
            };
            // Queue bound: skip the oldest beyond max_queue.
            if last.saturating_sub(self.pos.seq) > self.spec.max_queue {
                let to = last - self.spec.max_queue;
                let dropped = match self.count_dropped(&mut pending, &mut scanned, to).await {
                    Ok(n) => n,
                    Err(e) => {
                        self.set_error(e);
                        if self.sleep(Duration::from_secs(1)).await {
                            break;
                        }
                        continue;
                    }
                };
                if !overflow {
                    tracing::warn!(
                        subscription = %name,
                        max_queue = self.spec.max_queue,
                        "more changes pending than max_queue: skipping the oldest (counted as dropped) until the sink catches up"
                    );
                    overflow = true;
                }
                self.pos.dropped += dropped;
                dropped_c.increment(dropped);
                self.pos.seq = to;
                self.persist().await;
                last_persist = Instant::now();
                dirty = false;
            } else if overflow && last.saturating_sub(self.pos.seq) <= self.spec.max_queue / 2 {
                overflow = false;
            }
            // Read more of the feed.
            if pending.len() < BATCH && scanned < last {
                if pending.is_empty() && !pushing {
                    // Periodic: what arrives now goes in the first push after now.
                    next_tick = roll(next_tick, self.spec.emission, Instant::now());
                }
                let feed = self.feed.clone();
                let after = scanned;
                let read = tokio::task::spawn_blocking(move || feed.read(after, BATCH)).await;
                match read {
                    Ok(Ok(entries)) => {
                        // The feed seq has no holes but those retention left. A hole read
                        // again after a restart (behind a pending change) is not counted again.
                        let mut gap = 0;
                        let upto = self.pos.expired_upto;
                        let mut hole = |from: u64, to: u64| {
                            gap += to.saturating_sub(from.max(upto));
                        };
                        if entries.is_empty() {
                            hole(scanned, last);
                            scanned = last;
                        }
                        for e in entries {
                            hole(scanned, e.seq - 1);
                            scanned = e.seq;
                            if self.spec.filter.matches_entry(&e) {
                                pending.push(Item {
                                    seq: e.seq,
                                    change: e.change,
                                    stored: e.stored.clone(),
                                });
                            }
                        }
                        self.pos.expired_upto = self.pos.expired_upto.max(scanned);
                        if gap > 0 {
                            self.pos.expired += gap;
                            expired_c.increment(gap);
                            lock(&self.state).expired = self.pos.expired;
                            dirty = true;
                            if expired_warned.is_none_or(|t| t.elapsed() >= EXPIRED_WARN_EVERY) {
                                tracing::warn!(
                                    subscription = %name,
                                    expired = self.pos.expired,
                                    "changes were deleted by retention before this subscription read them (counted in pharos_emit_expired_total); keep data longer or fix the sink"
                                );
                                expired_warned = Some(Instant::now());
                            }
                        }
                        if pending.is_empty() && scanned > self.pos.seq {
                            self.pos.seq = scanned;
                            dirty = true;
                        }
                    }
                    Ok(Err(e)) => {
                        self.set_error(format!("message store: {e}"));
                        if self.sleep(Duration::from_secs(1)).await {
                            break;
                        }
                        continue;
                    }
                    Err(e) => {
                        self.set_error(format!("feed reader: {e}"));
                        continue;
                    }
                }
            }
            if dirty && last_persist.elapsed() >= SKIP_PERSIST_EVERY {
                self.persist().await;
                last_persist = Instant::now();
                dirty = false;
            }
            {
                let mut st = lock(&self.state);
                st.position = self.pos.seq;
                st.pending = pending.len() as u64 + last.saturating_sub(scanned);
                pending_g.set(st.pending as f64);
            }
            let now = Instant::now();
            // Is a push due?
            let due_at: Option<Instant> = if pending.is_empty() {
                None
            } else if pushing {
                Some(now)
            } else {
                match self.spec.emission {
                    Emission::Periodic { .. } => next_tick,
                    Emission::OnChange => match (self.spec.dampening_period, last_push) {
                        (Some(d), Some(t)) => Some(t + d.0),
                        _ => Some(now),
                    },
                }
            };
            let due_at = match (due_at, retry_at) {
                (Some(d), Some(r)) => Some(d.max(r)),
                (d, _) => d,
            };
            if let Some(at) = due_at
                && at <= now
            {
                // With dampening or periodic emission, a push gathers everything up to the feed's
                // end before delivering, as one batch (in chunks of BATCH).
                let gather = self.spec.dampening_period.is_some()
                    || matches!(self.spec.emission, Emission::Periodic { .. });
                if gather && !pushing && scanned < last && pending.len() < BATCH {
                    continue;
                }
                pushing = true;
                let n = pending.len().min(BATCH);
                // Not interrupted by stop: shutdown gives it SHUTDOWN_GRACE, then aborts.
                match self.sink.deliver(&pending[..n]).await {
                    Ok(()) => {
                        self.pos.delivered += n as u64;
                        delivered_c.increment(n as u64);
                        self.advance(&mut pending, n, scanned);
                        backoff = BACKOFF_MIN;
                        retry_at = None;
                        {
                            let mut st = lock(&self.state);
                            st.last_error = None;
                            st.last_delivery = Some(chrono::Utc::now());
                        }
                    }
                    Err(SinkError::Retry(e)) => {
                        self.set_error(format!("{e} (will retry)"));
                        retries_c.increment(1);
                        lock(&self.state).retries += 1;
                        let jitter = rand::random_range(0.5..=1.0);
                        retry_at = Some(Instant::now() + backoff.mul_f64(jitter));
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                    Err(SinkError::Rejected(e)) => {
                        tracing::warn!(subscription = %name, items = n, "sink rejected changes: {e}");
                        self.set_error(format!("{e} (rejected; {n} changes skipped)"));
                        self.pos.failed += n as u64;
                        failed_c.increment(n as u64);
                        self.advance(&mut pending, n, scanned);
                        backoff = BACKOFF_MIN;
                        retry_at = None;
                    }
                }
                self.persist().await;
                last_persist = Instant::now();
                dirty = false;
                if pending.is_empty() && scanned >= last {
                    pushing = false;
                    last_push = Some(Instant::now());
                    next_tick = roll(next_tick, self.spec.emission, Instant::now());
                }
                continue;
            }
            if scanned < last && pending.len() < BATCH {
                continue;
            }
            // Wait: for a change, the due time, or stop.
            if dirty {
                self.persist().await;
                last_persist = Instant::now();
                dirty = false;
            }
            match self.wait(&mut changes, due_at).await {
                Wake::Stop => break,
                Wake::Go => {}
            }
        }
        if dirty {
            self.persist().await;
        }
        let mut st = lock(&self.state);
        st.position = self.pos.seq;
    }

    /// Removes the first `n` pending items (handled) and moves the position past them.
    fn advance(&mut self, pending: &mut Vec<Item>, n: usize, scanned: u64) {
        let upto = pending[n - 1].seq;
        pending.drain(..n);
        self.pos.seq = match pending.first() {
            Some(next) => next.seq - 1,
            None => scanned,
        }
        .max(upto);
        let mut st = lock(&self.state);
        st.position = self.pos.seq;
        st.pending = st.pending.saturating_sub(n as u64);
        st.delivered = self.pos.delivered;
        st.failed = self.pos.failed;
        st.dropped = self.pos.dropped;
    }

    /// Skips the feed up to `to`: counts the matching changes among the skipped ones (those pending
    /// and those not yet read), drops them from `pending`.
    async fn count_dropped(
        &self,
        pending: &mut Vec<Item>,
        scanned: &mut u64,
        to: u64,
    ) -> Result<u64, String> {
        let before = pending.len();
        pending.retain(|i| i.seq > to);
        let mut n = (before - pending.len()) as u64;
        let mut after = (*scanned).max(self.pos.seq);
        while after < to {
            let feed = self.feed.clone();
            let entries = tokio::task::spawn_blocking(move || feed.read(after, BATCH))
                .await
                .map_err(|e| format!("feed reader: {e}"))?
                .map_err(|e| format!("message store: {e}"))?;
            if entries.is_empty() {
                break;
            }
            for e in entries {
                if e.seq > to {
                    after = to;
                    break;
                }
                after = e.seq;
                if self.spec.filter.matches_entry(&e) {
                    n += 1;
                }
            }
        }
        *scanned = (*scanned).max(to);
        let mut st = lock(&self.state);
        st.dropped = self.pos.dropped + n;
        Ok(n)
    }

    fn set_error(&self, e: String) {
        lock(&self.state).last_error = Some(e);
    }

    /// Writes the position and counters (blocking work off the runtime).
    async fn persist(&self) {
        let subs = self.subs.clone();
        let name = self.spec.name.clone();
        let pos = self.pos;
        let r = tokio::task::spawn_blocking(move || subs.save_position(&name, &pos)).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(subscription = %self.spec.name, "cannot persist position: {e}");
                self.set_error(format!("cannot persist position: {e}"));
            }
            Err(e) => {
                tracing::error!(subscription = %self.spec.name, "cannot persist position: {e}")
            }
        }
    }

    /// Sleeps `d` unless stopped; true when stopped.
    async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => *self.stop.borrow(),
            _ = self.stop.changed() => true,
        }
    }

    /// Waits for a new change, `until`, or stop.
    async fn wait(&mut self, changes: &mut watch::Receiver<u64>, until: Option<Instant>) -> Wake {
        let deadline = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.stop.changed() => Wake::Stop,
            r = changes.changed() => {
                if r.is_err() {
                    // The store is gone: only the deadline or stop can wake us.
                    return Wake::Stop;
                }
                Wake::Go
            }
            _ = deadline => Wake::Go,
        }
    }
}

#[cfg(test)]
pub mod test_sink;
#[cfg(test)]
mod tests;
