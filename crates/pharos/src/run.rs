//! `pharos run`: a topology of stages started in data-flow order from the sinks back to the
//! sources (message store and its writer; ticks and reports; the flow path: collectors -> flow
//! stage -> archive, detection, taps; the NSF inventory; the syslog path: listeners -> normalise
//! stage; retention; subscriptions; the API), then runs until SIGTERM or SIGINT. The signal is
//! the one [`Shutdown`]; the [`Topology`] stops the stages in the reverse order of their start,
//! so that each stops after everything that feeds it: the API stops accepting and lets in-flight
//! requests finish, the sources drain into the store, the open flow segment is written, the
//! store writer commits, the databases are checkpointed, and the process exits 0.
//!
//! Contract for operators (docs/operations.md):
//! - SIGTERM and SIGINT are caught from the first moment of `run`: a stop that arrives during
//!   start-up lets start-up finish (every stage is bounded) and then stops through the same
//!   ordered path, exit status 0; one that arrives before the data directory is opened stops at
//!   once. No stage is killed by a signal. A start-up error stops the stages already started
//!   through the same path, then exits non-zero.
//! - The data directory is locked ([`DataDirLock`]) before anything in it is read or written, and
//!   stays locked until every file is written and the `*.addr` files are removed.
//! - The message store's write-ahead log is checkpointed into `messages.db` every
//!   [`CHECKPOINT_EVERY`] and, like every database of the data directory, at the clean stop: after
//!   a stop each `.db` file alone holds all its data.
//! - Log lines carry colour only when stderr is a terminal, and never a raw control character
//!   from their fields ([`crate::log`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pharos_api::AppState;
use pharos_store::writer::{StoreWriter, WriterConfig};
use pharos_store::{MessageStore, SqliteStore};

use crate::config::Config;
use crate::datadir::DataDirLock;
use crate::shutdown::{Shutdown, Topology};

/// Runs the daemon with the configuration at `path` (or the defaults).
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    // The stop signals are caught before anything else, so that a SIGTERM at any later moment
    // (configuration, stores, binding) ends in the clean stop instead of killing the process.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pharos")
        .build()
        .context("starting the async runtime")?;
    let shutdown = Shutdown::new();
    {
        let _entered = runtime.enter();
        catch_signals(&shutdown)?;
    }
    let (cfg, origin) = Config::load(path)?;
    crate::log::init_log(&cfg);
    cfg.warn_deprecations();
    tracing::info!(config = %origin, version = env!("CARGO_PKG_VERSION"), "pharos starting");
    runtime.block_on(serve(cfg, shutdown))
}

/// Installs the SIGTERM and SIGINT handlers (in place when this returns) and the task that turns
/// the first signal into the stop ([`Shutdown::trigger`]); later ones are logged and otherwise
/// ignored (the stop is under way). Must run inside the runtime.
fn catch_signals(shutdown: &Shutdown) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if !shutdown.trigger(name) {
                tracing::warn!("{name} received again: the stop is under way");
            }
        }
    });
    Ok(())
}

/// How often the message store's write-ahead log is checkpointed into messages.db while the
/// daemon runs (also once at start-up): bounds the log's size and what a plain file copy misses.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

async fn checkpoint_loop(store: Arc<SqliteStore>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.checkpoint()).await {
            Ok(Ok(true)) => tracing::debug!("messages.db: write-ahead log checkpointed"),
            Ok(Ok(false)) => tracing::debug!(
                "messages.db: checkpoint incomplete (a reader holds an old snapshot); the next one catches up"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "messages.db: checkpoint failed; will retry"),
            Err(e) => tracing::warn!(error = %e, "messages.db: checkpoint task failed; will retry"),
        }
    }
}

/// At the clean stop: checkpoints every database of the data directory, so that each `.db` file
/// alone holds all its data (a copy without `-wal` is complete).
fn checkpoint_all(store: &SqliteStore, data_dir: &Path) {
    match store.checkpoint() {
        Ok(true) => {}
        Ok(false) => tracing::warn!("messages.db: the final checkpoint was incomplete"),
        Err(e) => tracing::warn!(error = %e, "messages.db: the final checkpoint failed"),
    }
    for name in &crate::datadir::DATABASES[1..] {
        match crate::datadir::checkpoint_file(&data_dir.join(name)) {
            Ok(true) => {}
            Ok(false) => tracing::warn!("{name}: the final checkpoint was incomplete"),
            Err(e) => tracing::warn!(error = %e, "{name}: the final checkpoint failed"),
        }
    }
}

/// Locks the data directory, starts the topology, waits for the stop signal, stops the topology
/// (also after a start-up error, then returned) and unlocks.
async fn serve(cfg: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let data_dir = cfg.store.data_dir.clone();
    // Before anything in the data directory is read or written: one daemon per directory.
    let lock = DataDirLock::acquire(&data_dir)?;
    if shutdown.is_stopped() {
        let sig = shutdown.reason().unwrap_or("stop");
        tracing::info!("{sig} received during start-up: stopped before opening anything");
        return Ok(());
    }
    let mut topology = Topology::new(shutdown.clone());
    let started = start(&cfg, &data_dir, &mut topology).await;
    match &started {
        Ok(()) => {
            let sig = shutdown.stopped().await;
            tracing::info!("{sig} received: stopping");
        }
        // The error itself is printed by `main`.
        Err(_) => tracing::info!("start-up failed: stopping what was started"),
    }
    topology.stop().await;
    let _ = std::fs::remove_file(data_dir.join("api.addr"));
    drop(lock);
    tracing::info!("stopped");
    started
}

/// Starts every stage into `topology`, each after the stages it feeds (so that the reverse order
/// stops each after the stages that feed it).
async fn start(cfg: &Config, data_dir: &Path, topology: &mut Topology) -> anyhow::Result<()> {
    crate::cluster_stage::check(cfg)?;
    // The message store: PostgreSQL when `[postgres]` is set (shared by a cluster's nodes);
    // otherwise SQLite, checkpointed while running and, last of all, at the stop.
    let store: Arc<dyn MessageStore> = match &cfg.postgres {
        Some(pg) => {
            let pg = pg.clone();
            let store = tokio::task::spawn_blocking(move || pg.connect())
                .await
                .context("opening the PostgreSQL store")?
                .context("[postgres]: cannot open the message store")?;
            Arc::new(store)
        }
        None => {
            let db = data_dir.join("messages.db");
            let sqlite = Arc::new(
                SqliteStore::open(&db)
                    .with_context(|| format!("cannot open the message store {}", db.display()))?,
            );
            let (s, dir) = (sqlite.clone(), data_dir.to_path_buf());
            topology.add("databases (final checkpoint)", async move {
                let _ = tokio::task::spawn_blocking(move || checkpoint_all(&s, &dir)).await;
            });
            topology.spawn("message store checkpoints", checkpoint_loop(sqlite.clone()));
            sqlite
        }
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe_metrics();
    pharos_sources::flow::describe_metrics();
    // In a cluster: connected, streams checked, heartbeat going (stopped last).
    let node = match &cfg.cluster {
        Some(c) => Some(crate::cluster_stage::Node::start(c, topology).await?),
        None => None,
    };
    // What this node runs: everything on a single node; in a cluster what its roles say.
    let has = |r: pharos_cluster::Role| cfg.cluster.as_ref().is_none_or(|c| c.has(r));
    let coordinates = has(pharos_cluster::Role::Api);
    if let (Some(node), Some(c), Some(ch)) = (&node, &cfg.cluster, &cfg.clickhouse)
        && c.has(pharos_cluster::Role::Archiver)
    {
        crate::cluster_stage::start_archiver(node, c, ch, topology).await?;
    }

    // The store writer, with the analyse stage inside; it stops once every stage that submits to
    // it has stopped and dropped its handle.
    let seen = crate::analyse_stage::SeenSources::default();
    let analyse = crate::analyse_stage::AnalyseStage::new(
        cfg.notify.as_ref(),
        cfg.state.as_ref(),
        cfg.detect.as_ref().map(|d| &d.scan),
        seen.clone(),
    )?;
    let watch_exporters = cfg.state.is_some();
    let (writer, writer_thread) = StoreWriter::spawn_with(
        store.clone(),
        WriterConfig {
            queue: cfg.store.queue,
            max_batch: cfg.store.max_batch,
        },
        analyse.map(|a| Box::new(a) as Box<dyn pharos_store::writer::Analyse>),
    );
    topology.add("store writer", async move {
        let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    });
    if cfg.notify.is_some() || cfg.state.is_some() {
        let w = writer.clone();
        topology.spawn("analyse ticks", async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                w.tick(pharos_model::clock::now_ms());
            }
        });
    }
    if cfg.report.interval_s > 0 && coordinates {
        topology.spawn(
            "report stage",
            crate::report_stage::run(store.clone(), cfg.report.clone(), data_dir.join("reports")),
        );
    }

    // Flows: collectors -> flow stage -> archive, detection, taps.
    let detect = match &cfg.detect {
        _ if !has(pharos_cluster::Role::Analyser) => None,
        Some(d) if cfg.flow.enabled || cfg.cluster.is_some() => {
            if d.ddos.networks.is_empty() && d.ddos.groups.is_empty() {
                tracing::warn!(
                    "[detect.ddos] has no networks or groups: the DDoS detector watches no host"
                );
            }
            Some(
                crate::detect_stage::start(
                    d,
                    &cfg.detect_hook,
                    store.clone(),
                    writer.clone(),
                    data_dir,
                    cfg.cluster
                        .as_ref()
                        .map(|_| crate::cluster_stage::adopt_window(&d.ddos)),
                )
                .context("starting the detection stage")?,
            )
        }
        Some(_) => {
            tracing::warn!(
                "[detect] is set but [flow] enabled = false: no flow detection (scans from firewall deny logs are still detected)"
            );
            None
        }
        None => None,
    };
    // In a cluster, detection is fed by the partitions this analyser owns, and a collector
    // publishes its batches to the flow stream instead of a local archive.
    let (detect, publishing) = match (&node, &cfg.cluster) {
        (Some(node), Some(c)) => {
            if let Some(d) = detect {
                crate::cluster_stage::start_analyser(node, c, d, topology)?;
            }
            let publishing = has(pharos_cluster::Role::Collector)
                .then(|| crate::cluster_stage::publishing(node));
            (None, publishing)
        }
        _ => (detect, None),
    };
    let templates = publishing.as_ref().and_then(|p| p.templates.clone());
    let flow_enabled = cfg.flow.enabled && has(pharos_cluster::Role::Collector);
    let flows = crate::flow_stage::start_path(
        &crate::config::FlowConfig {
            enabled: flow_enabled,
            ..cfg.flow.clone()
        },
        &crate::config::FlowStoreConfig {
            enabled: cfg.flow_store.enabled && cfg.cluster.is_none(),
            ..cfg.flow_store.clone()
        },
        data_dir,
        detect,
        publishing,
        crate::flow_stage::Taps {
            seen: watch_exporters.then_some(seen),
            counters: crate::report_stage::InterfaceTotals::new(&cfg.report),
            writer: writer.clone(),
            rt: tokio::runtime::Handle::current(),
        },
    )?;
    if let (Some(node), Some(share), true) = (&node, templates, flows.is_some()) {
        let sync = pharos_cluster::templates::start_sync(&node.cluster, share);
        topology.add("exporter templates (sync stopped)", async move {
            let stats = sync.stop().await;
            tracing::debug!(?stats, "exporter templates: sync stopped");
        });
    }
    let clocks = flows.as_ref().map(|f| f.collector().clocks());
    // The console's live traffic view, fed by the flow stage (GET /api/v1/traffic).
    let traffic = flows.as_ref().map(|f| f.traffic());
    if let Some(f) = flows {
        let dir = data_dir.to_path_buf();
        topology.add(
            "flow stage (collectors, archive, detection, taps)",
            async move {
                let _ = tokio::task::spawn_blocking(move || f.stop(dir)).await;
            },
        );
    }
    let s = store.clone();
    if let Ok(Ok(counts)) = tokio::task::spawn_blocking(move || s.count_by_kind()).await {
        for (kind, n) in counts {
            metrics::gauge!("pharos_store_messages", "kind" => kind).set(n as f64);
        }
    }

    // The NSF inventory in nsfs.db: flushed every few seconds (counts of pushing NSFs reach it
    // even when no syslog stage writes it) and once more after the sources stopped.
    let nsfs = Arc::new(
        pharos_store::inventory::Inventory::open(&data_dir.join("nsfs.db"), &cfg.nsf)
            .context("cannot open the NSF inventory nsfs.db in the data directory")?,
    );
    // Flow exporters and their clock offsets are listed with the NSFs (GET /api/v1/nsfs).
    if let Some(c) = clocks {
        nsfs.set_exporter_clocks(c);
    }
    inventory_stage(topology, nsfs.clone());

    // Syslog: listeners -> normalise stage -> store writer (in a cluster, on collectors only).
    let syslog = match has(pharos_cluster::Role::Collector) {
        true => {
            crate::syslog_stage::start_path(cfg, data_dir, nsfs.clone(), writer.clone()).await?
        }
        false => None,
    };
    if let Some(s) = syslog {
        let dir = data_dir.to_path_buf();
        topology.add("syslog stage (listeners, normalise)", async move {
            s.stop(&dir).await
        });
    }
    let retention = cfg.store.retention.0;
    if !retention.is_zero() && coordinates {
        topology.spawn("retention", retention_loop(store.clone(), retention));
    }

    let tokens = match &cfg.postgres {
        Some(pg) => {
            let (pg, configured) = (pg.clone(), cfg.api.token.clone());
            tokio::task::spawn_blocking(move || {
                pharos_api::auth::TokenStore::open_postgres(&pg, &configured)
            })
            .await
            .context("opening the token store")?
        }
        None => pharos_api::auth::TokenStore::open(&data_dir.join("auth.db"), &cfg.api.token),
    }
    .map_err(|e| match e {
        pharos_api::auth::TokenError::Config(_) => anyhow::anyhow!("config error: {e}"),
        e => anyhow::anyhow!(
            "cannot open the token database ({}): {e}; check permissions",
            if cfg.postgres.is_some() {
                "pharos_tokens in [postgres]"
            } else {
                "auth.db in the data directory"
            }
        ),
    })?;
    first_start_token(&tokens)?;
    let tls = match &cfg.api.tls {
        Some(t) => {
            let acceptor = pharos_api::server::tls_acceptor(t)?;
            let inv = nsfs.clone();
            let identify: pharos_api::server::Identify =
                Arc::new(move |der: &[u8]| pharos_api::auth::cert::identify(der, Some(&inv)));
            Some((acceptor, identify))
        }
        None => None,
    };

    let listener = tokio::net::TcpListener::bind(cfg.api.listen).await.with_context(|| {
        format!("cannot listen on {} ([api] listen); is another Pharos running? choose another port", cfg.api.listen)
    })?;
    let addr = listener.local_addr()?;
    // Tests and scripts find the bound port here when the configuration asks for port 0.
    std::fs::write(data_dir.join("api.addr"), format!("{addr}\n"))
        .context("writing api.addr in the data directory")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, data_dir = %data_dir.display(), "API listening on {scheme}://{addr}");
    if let Some(node) = &node {
        node.set_api(addr);
    }
    let emit = if coordinates {
        start_emit(cfg, data_dir, store.clone()).await?
    } else {
        None
    };
    if let Some(e) = &emit {
        let e = e.clone();
        topology.add("subscriptions (positions persisted)", async move {
            e.dispatcher.shutdown().await
        });
    }

    // Notices to the constituency (docs/early-warning.md); only with a [notice] section.
    crate::notice_stage::start(
        cfg.notice.as_ref().filter(|_| coordinates),
        &cfg.constituency,
        &cfg.anon,
        data_dir,
        store.clone(),
        topology,
    )?;

    // RID: the server, the client and the trace feed (docs/rid.md); off unless enabled.
    let rid = crate::rid_stage::start(
        &cfg.rid,
        &cfg.detect_hook,
        cfg.flow_store.enabled,
        data_dir,
        store.clone(),
        writer.clone(),
        topology,
    )
    .await?;

    let state = AppState {
        store,
        writer,
        metrics: Some(metrics),
        auth: Arc::new(pharos_api::auth::Auth::new(tokens, &cfg.api)),
        config: Arc::new(cfg.api.clone()),
        nsfs,
        flows: match &cfg.clickhouse {
            Some(ch) => Some(pharos_api::flows::FlowArchive::clickhouse(
                pharos_clickhouse::Archive::new(
                    ch.client()
                        .context("[clickhouse]: cannot build the client")?,
                ),
            )),
            None => cfg
                .flow_store
                .enabled
                .then(|| pharos_api::flows::FlowArchive::new(pharos_flows::archive_root(data_dir))),
        },
        emit: emit.clone(),
        console: Arc::new(console_info(cfg, traffic)),
    };
    let stop = topology.shutdown().clone();
    let graceful = async move {
        stop.stopped().await;
        // Open SSE streams end, so the graceful shutdown does not wait for them.
        if let Some(e) = emit {
            e.close();
        }
    };
    // The web console (`/`, `/ui/...`) behind the API's authentication (docs/console.md).
    let mut router = pharos_api::router_with(state, pharos_console::routes());
    if let Some(rid) = rid {
        // `/api/v1/rid/...` answer from the RID stage (503 without it).
        router = router.layer(axum::Extension(rid));
    }
    // `/api/v1/constituency/...` and `/api/v1/notices` read the registry and the delivery table.
    router = router.layer(axum::Extension(
        pharos_api::constituency::ConstituencyHandle {
            registry: cfg
                .constituency
                .db
                .clone()
                .unwrap_or_else(|| data_dir.join("constituency.db")),
            notices: cfg.notice.is_some().then(|| data_dir.join("notices.db")),
        },
    ));
    let api = tokio::spawn(pharos_api::server::serve(
        listener,
        tls,
        router,
        cfg.api.http2_max_streams,
        graceful,
    ));
    topology.add("API (in-flight requests finished)", async move {
        let _ = api.await;
    });
    Ok(())
}

/// What the console shows of the daemon: the monitored prefixes (the DDoS detector's networks and
/// host groups), the effective configuration, secrets redacted as `pharos config` prints them, and
/// the flow stage's live traffic view, which is given the same prefixes to split in and out by.
fn console_info(
    cfg: &Config,
    traffic: Option<pharos_api::traffic::LiveTraffic>,
) -> pharos_api::overview::ConsoleInfo {
    let mut networks: Vec<String> = Vec::new();
    if let Some(d) = &cfg.detect {
        networks.extend(d.ddos.networks.iter().cloned());
        for g in &d.ddos.groups {
            networks.extend(g.prefixes.iter().cloned());
        }
    }
    networks.sort();
    networks.dedup();
    let mut config = serde_json::to_value(cfg).unwrap_or_default();
    redact(&mut config);
    if let Some(t) = &traffic {
        t.set_networks(networks.clone());
    }
    pharos_api::overview::ConsoleInfo {
        networks,
        config,
        traffic,
    }
}

/// Replaces, as a second line of defence behind the config's own redaction, every string under a
/// key that names a secret (`secret`, `password`, `key_hex`, `token`) with `"***"`.
fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let k = k.to_ascii_lowercase();
                let secret = ["secret", "password", "key_hex", "token"]
                    .iter()
                    .any(|w| k.contains(w))
                    && !k.ends_with("_file");
                match v {
                    serde_json::Value::String(s) if secret && !s.is_empty() => *s = "***".into(),
                    _ => redact(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The NSF inventory's stage: writes it to nsfs.db every [`INVENTORY_FLUSH_EVERY`] and once more
/// at the stop (after the syslog stage, which feeds it, has stopped).
fn inventory_stage(topology: &mut Topology, nsfs: Arc<pharos_store::inventory::Inventory>) {
    let inv = nsfs.clone();
    let task = topology.task(async move {
        let mut every = tokio::time::interval(INVENTORY_FLUSH_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let inv = inv.clone();
            let _ = tokio::task::spawn_blocking(move || crate::syslog_stage::flush_inventory(&inv))
                .await;
        }
    });
    topology.add("NSF inventory (written)", async move {
        let _ = task.await;
        let _ =
            tokio::task::spawn_blocking(move || crate::syslog_stage::flush_inventory(&nsfs)).await;
    });
}

/// How often the NSF inventory is written to nsfs.db from the API side.
const INVENTORY_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// On the very first start (no token in auth.db, none configured) creates an admin token and
/// prints it once on stdout; only its hash is stored, and it never goes to the log.
fn first_start_token(tokens: &pharos_api::auth::TokenStore) -> anyhow::Result<()> {
    use std::io::Write;
    if !tokens
        .is_empty()
        .context("reading the token database auth.db")?
    {
        return Ok(());
    }
    let secret = match tokens.create("admin", pharos_api::auth::Role::Admin, None) {
        Ok(s) => s,
        // Another node of a cluster sharing the token store created it at the same moment.
        Err(pharos_api::auth::TokenError::Exists(_)) => return Ok(()),
        Err(e) => return Err(anyhow::Error::new(e).context("creating the first admin token")),
    };
    let text = format!(
        "No API token existed: created the admin token \"admin\". It is shown only this once; store it now:\n\
         PHAROS_TOKEN={secret}\n\
         Create more with `pharos token create --role viewer --name NAME`; revoke with `pharos token revoke NAME`.\n"
    );
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        // A closed stdout must not stop the daemon; the token stays valid, only unseen.
        tracing::warn!(
            "first start: the admin token could not be printed (stdout closed); create another with `pharos token create --role admin --name NAME`"
        );
    }
    tracing::info!(
        "first start: created the admin token \"admin\" (printed on stdout, not logged)"
    );
    Ok(())
}

/// Starts the subscriptions (`[[subscription]]` and those created through the API, kept in
/// `<data_dir>/subscriptions.db`) unless `[emit] enabled = false`.
async fn start_emit(
    cfg: &Config,
    data_dir: &Path,
    store: Arc<dyn MessageStore>,
) -> anyhow::Result<Option<pharos_api::EmitHandle>> {
    if !cfg.emit.enabled {
        if !cfg.subscription.is_empty() {
            tracing::warn!("[emit] enabled = false: the [[subscription]] entries do not run");
        }
        return Ok(None);
    }
    let subs = Arc::new(match &cfg.postgres {
        Some(pg) => {
            let pg = pg.clone();
            tokio::task::spawn_blocking(move || pharos_emit::SubscriptionStore::open_postgres(&pg))
                .await
                .context("opening the subscription store")?
                .context("[postgres]: cannot open the subscription store")?
        }
        None => {
            let path = data_dir.join("subscriptions.db");
            pharos_emit::SubscriptionStore::open(&path)
                .with_context(|| format!("cannot open the subscription store {}", path.display()))?
        }
    });
    // In a cluster one node dispatches (a PostgreSQL advisory lock); the others serve the API
    // without subscriptions or the SSE stream.
    if !subs.try_lead().context("taking the subscription lead")? {
        tracing::warn!(
            "another node dispatches the subscriptions (it holds their lock in PostgreSQL): this node runs none, and serves no SSE stream"
        );
        return Ok(None);
    }
    let dispatcher = pharos_emit::Dispatcher::start(
        store,
        subs,
        pharos_emit::DispatcherConfig {
            allow_hosts: cfg.emit.allow_hosts.clone(),
        },
        cfg.subscription.clone(),
    )
    .map_err(|e| anyhow::anyhow!("config error: {e}"))?;
    tracing::info!(
        subscriptions = dispatcher.list().len(),
        "subscriptions running"
    );
    Ok(Some(pharos_api::EmitHandle::new(
        dispatcher,
        cfg.emit.max_streams,
        cfg.emit.keep_alive.0,
    )))
}

async fn retention_loop(store: Arc<dyn MessageStore>, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600).min(retention));
    loop {
        tick.tick().await;
        let Ok(age) = chrono::TimeDelta::from_std(retention) else {
            return;
        };
        let cutoff = chrono::Utc::now() - age;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.delete_before(cutoff)).await {
            Ok(Ok(n)) if n > 0 => {
                metrics::counter!("pharos_store_expired_total").increment(n);
                tracing::info!(deleted = n, %cutoff, "retention: deleted old messages");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "retention pass failed; will retry"),
            Err(e) => tracing::warn!(error = %e, "retention task failed; will retry"),
        }
    }
}

fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "pharos_store_expired_total",
        "Messages deleted by retention"
    );
    describe_gauge!(
        "pharos_store_messages",
        "Messages in the store at start-up, by kind"
    );
    describe_counter!(
        "pharos_flow_batches_consumed_total",
        "Flow batches taken by the flow store stage"
    );
    describe_counter!(
        "pharos_flow_records_consumed_total",
        "Flow records taken by the flow store stage"
    );
    pharos_api::describe_metrics();
    pharos_store::describe_metrics();
    pharos_emit::describe_metrics();
    pharos_flows::segment::describe_metrics();
    crate::flow_stage::describe_metrics();
    pharos_cluster::describe_metrics();
    crate::detect_stage::describe_metrics();
    crate::analyse_stage::describe_metrics();
    crate::rid_stage::describe_metrics();
}
