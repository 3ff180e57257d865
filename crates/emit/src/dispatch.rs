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
//!   as failed and skipped. A message store or feed reader error is shown as the last error and
//!   the task tries again after a pause of 1 s.
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

use crate::feed::Feed;
use crate::subscription::{
    Position, SpecError, SubscriptionSpec, SubscriptionStore, SubscriptionStoreError,
};
use delivery::{Delivery, Shared};

#[cfg(doc)]
use crate::SinkError;

/// Most changes read from the feed, and offered to a sink, at once.
pub const BATCH: usize = 500;
/// Feed entries kept decoded for the subscriptions and streams that follow the feed closely.
pub const FEED_WINDOW: usize = 20_000;
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
        let sink = spec.sink.build().map_err(|e| SpecError {
            name: spec.name.clone(),
            message: e.to_string(),
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
        let shared = Shared {
            store: self.store.clone(),
            feed: self.feed.clone(),
            subs: self.subs.clone(),
        };
        let task = Delivery::new(spec.clone(), sink, pos, shared, state.clone(), stop_rx);
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
    /// `[emit] allow_hosts`: the sink confines itself to them ([`crate::SinkConfig::confine`]: a
    /// webhook's own allow-list is replaced by them; a syslog address or NATS URL host must match).
    pub fn add(&self, mut spec: SubscriptionSpec) -> Result<SubscriptionInfo, EmitError> {
        spec.sink
            .confine(&self.config.allow_hosts)
            .map_err(|message| SpecError {
                name: spec.name.clone(),
                message,
            })?;
        spec.validate().map_err(|mut e| {
            // An error about a sink's allow-list: confine replaced it by [emit] allow_hosts.
            if e.message.contains("allow") {
                e.message.push_str(
                    " (subscriptions created through the API may target the hosts of [emit] allow_hosts)",
                );
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

mod delivery;
#[cfg(test)]
pub mod test_sink;
#[cfg(test)]
mod tests;
