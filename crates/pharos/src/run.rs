//! `pharos run`: wires the stages (push source -> store writer; syslog listeners -> syslog
//! normalise stage -> store writer; flow collectors -> flow stage, fanning out to the archive
//! writer (Parquet segments), the detection thread (`[detect]`, -> store writer and
//! `[detect_hook]`) and the taps;
//! store -> API; store change feed -> subscriptions and SSE streams) and runs until SIGTERM or SIGINT, then stops accepting, lets in-flight requests
//! finish, flushes (also the open flow segment) and exits 0.
//!
//! Contract for operators (docs/operations.md):
//! - SIGTERM and SIGINT are caught from the first moment of `run`: a stop that arrives during
//!   start-up lets start-up finish (every stage is bounded) and then stops through the same
//!   ordered path, exit status 0; one that arrives before the data directory is opened stops at
//!   once. No stage is killed by a signal.
//! - The data directory is locked ([`DataDirLock`]) before anything in it is read or written, and
//!   stays locked until every file is written and the `*.addr` files are removed.
//! - The message store's write-ahead log is checkpointed into `messages.db` every
//!   [`CHECKPOINT_EVERY`] and, like every database of the data directory, at the clean stop: after
//!   a stop each `.db` file alone holds all its data.
//! - Log lines carry colour only when stderr is a terminal, and never a raw control character
//!   from their fields ([`SafeLog`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pharos_api::AppState;
use pharos_flows::segment::SegmentWriter;
use pharos_store::writer::{StoreWriter, WriterConfig};
use pharos_store::{MessageStore, SqliteStore};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};
use crate::datadir::DataDirLock;
use crate::syslog_stage::{StageSettings, SyslogStage};

/// Runs the daemon with the configuration at `path` (or the defaults).
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    // The stop signals are caught before anything else, so that a SIGTERM at any later moment
    // (configuration, stores, binding) ends in the clean stop instead of killing the process.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pharos")
        .build()
        .context("starting the async runtime")?;
    let stop = {
        let _entered = runtime.enter();
        StopSignal::install()?
    };
    let (cfg, origin) = Config::load(path)?;
    init_log(&cfg);
    tracing::info!(config = %origin, version = env!("CARGO_PKG_VERSION"), "pharos starting");
    runtime.block_on(serve(cfg, stop))
}

/// SIGTERM and SIGINT, caught from the start of [`run`]: the first one asks the daemon to stop;
/// later ones are logged and otherwise ignored (the stop is under way).
#[derive(Clone)]
struct StopSignal(tokio::sync::watch::Receiver<Option<&'static str>>);

impl StopSignal {
    /// Installs both handlers (in place when this returns) and the task that notes the signals.
    /// Must run inside the runtime.
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                if tx.send_replace(Some(name)).is_some() {
                    tracing::warn!("{name} received again: the stop is under way");
                }
            }
        });
        Ok(Self(rx))
    }

    /// The signal received so far, if any.
    fn requested(&self) -> Option<&'static str> {
        *self.0.borrow()
    }

    /// Waits for the first signal and names it.
    async fn wait(mut self) -> &'static str {
        match self.0.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or("signal"),
            // The noting task never ends while the runtime runs.
            Err(_) => std::future::pending().await,
        }
    }
}

fn init_log(cfg: &Config) {
    use std::io::IsTerminal;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    // Colour only for a person at a terminal; never in a file, a pipe or journald.
    let colour = cfg.log.format == LogFormat::Text
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let out = SafeLog::new(cfg.log.format, colour, |line: &[u8]| {
        use std::io::Write;
        let _ = std::io::stderr().lock().write_all(line);
    });
    use tracing_subscriber::util::SubscriberInitExt;
    log_subscriber(filter, cfg.log.format, colour, out).init();
}

/// The daemon's log subscriber: `format` lines through `out`, ANSI colour iff `colour`.
fn log_subscriber(
    filter: EnvFilter,
    format: LogFormat,
    colour: bool,
    out: SafeLog,
) -> Box<dyn tracing::Subscriber + Send + Sync> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(out);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// Where [`SafeLog`] writes each finished line (stderr in the daemon, a buffer in tests).
type LogSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The log's writer. tracing-subscriber escapes only some control characters (ESC, BEL, BS, FF,
/// DEL, C1 in messages) and none in `%display` fields, so a NUL, CR or LF from the network would
/// reach the log raw (a forged second line). Each event's line is buffered here and written in
/// one piece with every unsafe character ([`pharos_model::text::is_unsafe_char`]) made visible
/// except the line's own final newline: in text, as [`pharos_model::text::printable`] writes it
/// (only the colour sequences of the formatter itself pass when `colour` is on); in JSON, as a
/// `\uXXXX` escape inside the string, the same JSON value.
#[derive(Clone)]
struct SafeLog {
    sink: LogSink,
    format: LogFormat,
    colour: bool,
}

impl SafeLog {
    fn new(format: LogFormat, colour: bool, sink: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        Self {
            sink: Arc::new(sink),
            format,
            colour,
        }
    }

    /// `line` (one formatted event) with every unsafe character escaped.
    fn escape<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        use pharos_model::text::{is_unsafe_char, json_safe, printable};
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if !body.chars().any(is_unsafe_char) {
            return std::borrow::Cow::Borrowed(line);
        }
        let mut out = match self.format {
            LogFormat::Json => json_safe(body).into_owned(),
            LogFormat::Text => {
                let mut out = String::with_capacity(body.len() + 16);
                let mut rest = body;
                while let Some(c) = rest.chars().next() {
                    let n = match sgr_len(rest) {
                        Some(n) if self.colour => {
                            out.push_str(&rest[..n]);
                            n
                        }
                        _ => {
                            let mut b = [0; 4];
                            out.push_str(&printable(c.encode_utf8(&mut b)));
                            c.len_utf8()
                        }
                    };
                    rest = &rest[n..];
                }
                out
            }
        };
        out.push_str(end);
        std::borrow::Cow::Owned(out)
    }
}

/// The length of the colour sequence (`ESC [ digits and ; m`) `s` starts with, if it does.
fn sgr_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\u{1b}[")?;
    let params = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    (rest[params..].starts_with('m')).then_some(2 + params + 1)
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SafeLog {
    type Writer = SafeLine<'a>;

    fn make_writer(&'a self) -> SafeLine<'a> {
        SafeLine {
            log: self,
            buf: Vec::new(),
        }
    }
}

/// One event's bytes, escaped and written when dropped.
struct SafeLine<'a> {
    log: &'a SafeLog,
    buf: Vec<u8>,
}

impl std::io::Write for SafeLine<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SafeLine<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        (self.log.sink)(self.log.escape(&text).as_bytes());
    }
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

async fn serve(cfg: Config, stop: StopSignal) -> anyhow::Result<()> {
    let data_dir = &cfg.store.data_dir;
    let data_dir_owned = data_dir.clone();
    // Before anything in the data directory is read or written: one daemon per directory.
    let lock = DataDirLock::acquire(data_dir)?;
    if let Some(sig) = stop.requested() {
        tracing::info!("{sig} received during start-up: stopped before opening anything");
        return Ok(());
    }
    let db = data_dir.join("messages.db");
    let sqlite = Arc::new(
        SqliteStore::open(&db)
            .with_context(|| format!("cannot open the message store {}", db.display()))?,
    );
    let store: Arc<dyn MessageStore> = sqlite.clone();
    let checkpoint_task = tokio::spawn(checkpoint_loop(sqlite.clone()));
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe_metrics();
    pharos_sources::flow::describe_metrics();
    // Before the API: scripts that wait for api.addr then find flow.addr in place.
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
    let tick_task = (cfg.notify.is_some() || cfg.state.is_some()).then(|| {
        let w = writer.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                w.tick(pharos_model::clock::now_ms());
            }
        })
    });
    let report_task = (cfg.report.interval_s > 0).then(|| {
        tokio::spawn(crate::report_stage::run(
            store.clone(),
            cfg.report.clone(),
            data_dir.join("reports"),
        ))
    });
    let detect = match &cfg.detect {
        Some(d) if cfg.flow.enabled => {
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
    let flows = start_flows(
        &cfg.flow,
        &cfg.flow_store,
        data_dir,
        detect,
        Taps {
            seen: watch_exporters.then_some(seen),
            counters: crate::report_stage::InterfaceTotals::new(&cfg.report),
            writer: writer.clone(),
            rt: tokio::runtime::Handle::current(),
        },
    )?;
    if let Ok(counts) = store.count_by_kind() {
        for (kind, n) in counts {
            metrics::gauge!("pharos_store_messages", "kind" => kind).set(n as f64);
        }
    }

    // Syslog: listeners -> normalise stage -> store writer; the NSF inventory in nsfs.db.
    let nsfs = Arc::new(
        pharos_store::inventory::Inventory::open(&data_dir.join("nsfs.db"), &cfg.nsf)
            .context("cannot open the NSF inventory nsfs.db in the data directory")?,
    );
    // Flow exporters and their clock offsets are listed with the NSFs (GET /api/v1/nsfs).
    if let Some(f) = &flows {
        nsfs.set_exporter_clocks(f.collector.clocks());
    }
    let syslog = start_syslog(&cfg, data_dir, nsfs.clone(), writer.clone()).await?;
    let retention = cfg.store.retention.0;
    let retention_task =
        (!retention.is_zero()).then(|| tokio::spawn(retention_loop(store.clone(), retention)));

    let tokens = pharos_api::auth::TokenStore::open(&data_dir.join("auth.db"), &cfg.api.token)
        .map_err(|e| match e {
            pharos_api::auth::TokenError::Config(_) => anyhow::anyhow!("config error: {e}"),
            e => anyhow::anyhow!(
                "cannot open the token database auth.db in the data directory: {e}; check permissions"
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
    let emit = start_emit(&cfg, data_dir, store.clone())?;
    // Counts of pushing NSFs reach the inventory file even when no syslog stage writes it.
    let inventory = nsfs.clone();
    let inventory_task = {
        let inv = nsfs.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(INVENTORY_FLUSH_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let inv = inv.clone();
                let _ =
                    tokio::task::spawn_blocking(move || crate::syslog_stage::flush_inventory(&inv))
                        .await;
            }
        })
    };

    let state = AppState {
        store: store.clone(),
        writer: writer.clone(),
        metrics: Some(metrics),
        auth: Arc::new(pharos_api::auth::Auth::new(tokens, &cfg.api)),
        config: Arc::new(cfg.api.clone()),
        nsfs,
        flows: cfg
            .flow_store
            .enabled
            .then(|| pharos_api::flows::FlowArchive::new(pharos_flows::archive_root(data_dir))),
        emit: emit.clone(),
    };
    let streams = emit.clone();
    let shutdown = async move {
        let sig = stop.wait().await;
        tracing::info!("{sig} received: stopping");
        // Open SSE streams end, so the graceful shutdown does not wait for them.
        if let Some(e) = streams {
            e.close();
        }
    };
    pharos_api::server::serve(listener, tls, pharos_api::router(state), shutdown).await;

    if let Some(e) = emit {
        tracing::info!("stopping: subscriptions (positions persisted)");
        e.dispatcher.shutdown().await;
    }

    if let Some(f) = flows {
        tracing::info!("stopping: flow collectors");
        tokio::task::spawn_blocking(move || f.stop(data_dir_owned))
            .await
            .ok();
    }
    if let Some(s) = syslog {
        tracing::info!("stopping: syslog sources (draining into the store)");
        s.stop().await;
        let _ = std::fs::remove_file(data_dir.join("syslog.addr"));
    }
    inventory_task.abort();
    let _ =
        tokio::task::spawn_blocking(move || crate::syslog_stage::flush_inventory(&inventory)).await;
    tracing::info!("stopping: flushing the store");
    for t in [retention_task, tick_task, report_task]
        .into_iter()
        .flatten()
    {
        t.abort();
    }
    drop(writer);
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .ok();
    checkpoint_task.abort();
    drop(store);
    tracing::info!("stopping: checkpointing the databases");
    let dir = data_dir.clone();
    let _ = tokio::task::spawn_blocking(move || checkpoint_all(&sqlite, &dir)).await;
    let _ = std::fs::remove_file(data_dir.join("api.addr"));
    drop(lock);
    tracing::info!("stopped");
    Ok(())
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
    let secret = tokens
        .create("admin", pharos_api::auth::Role::Admin, None)
        .context("creating the first admin token in auth.db")?;
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
fn start_emit(
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
    let path = data_dir.join("subscriptions.db");
    let subs = Arc::new(
        pharos_emit::SubscriptionStore::open(&path)
            .with_context(|| format!("cannot open the subscription store {}", path.display()))?,
    );
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

/// The running syslog listeners and the normalise stage that takes their records.
struct Syslog {
    listeners: pharos_sources::syslog::SyslogHandle,
    stage: SyslogStage,
}

impl Syslog {
    /// Stops accepting (the listeners end and the channel closes), lets the stage drain what was
    /// received, waits until it is stored and the NSF inventory is written.
    async fn stop(self) {
        self.listeners.shutdown().await;
        self.stage.finish().await;
    }
}

/// Starts the syslog listeners and their normalise stage (unless `[syslog] enabled = false`)
/// and writes `syslog.addr` (one `transport address` line per listener) for tests and scripts.
async fn start_syslog(
    cfg: &Config,
    data_dir: &Path,
    nsfs: Arc<pharos_store::inventory::Inventory>,
    writer: StoreWriter,
) -> anyhow::Result<Option<Syslog>> {
    if !cfg.syslog.enabled {
        return Ok(None);
    }
    let settings = cfg
        .syslog
        .settings()
        .map_err(|e| anyhow::anyhow!("config error: {e}"))?;
    let stage_settings = StageSettings::new(&cfg.syslog, &cfg.nsf)
        .map_err(|e| anyhow::anyhow!("config error: {e}"))?;
    let (listeners, rx) = pharos_sources::syslog::start(settings).await?;
    // On an error below, dropping the handle stops the listeners.
    let stage = SyslogStage::start(rx, stage_settings, nsfs, writer)
        .context("starting the syslog normalise thread")?;
    std::fs::write(data_dir.join("syslog.addr"), listeners.addr_lines())
        .context("writing syslog.addr in the data directory")?;
    Ok(Some(Syslog { listeners, stage }))
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
    crate::detect_stage::describe_metrics();
    crate::analyse_stage::describe_metrics();
}

/// The running flow collectors and the stage that takes their batches.
struct FlowStage {
    collector: pharos_sources::flow::FlowCollector,
    stage: crate::flow_stage::FlowStage,
    detect: Option<std::thread::JoinHandle<()>>,
}

/// Batches the archive writer's queue holds (about 0.5 s at 1 M flows/s in datagram-sized
/// batches): the writer only copies and hands over, so this absorbs scheduling hiccups; a
/// slower disk is absorbed by the writer's memory budget and spill, not by this queue.
const ARCHIVE_QUEUE: usize = 16_384;
/// Batches the taps' queue holds.
const TAPS_QUEUE: usize = 4_096;

/// Starts the `[flow]` UDP collectors and writes their bound addresses to `<data_dir>/flow.addr`
/// (one per line, in `[flow] listen` order); their batches go to the flow stage
/// ([`crate::flow_stage`]), which fans them out to the archive writer (`[flow_store]`), the
/// detection thread and the taps, each on its own thread and queue.
fn start_flows(
    cfg: &crate::config::FlowConfig,
    store_cfg: &crate::config::FlowStoreConfig,
    data_dir: &Path,
    detect: Option<crate::detect_stage::DetectStage>,
    taps: Taps,
) -> anyhow::Result<Option<FlowStage>> {
    let addr_file = data_dir.join("flow.addr");
    let _ = std::fs::remove_file(&addr_file);
    if !cfg.enabled {
        return Ok(None);
    }
    let writer = if store_cfg.enabled {
        let seg = store_cfg.to_segment_config(data_dir);
        let root = seg.root.clone();
        Some(SegmentWriter::open(seg).with_context(|| {
            format!(
                "cannot open the flow store {} ([flow_store]); check permissions or set enabled = false",
                root.display()
            )
        })?)
    } else {
        None
    };
    let mut udp = cfg.to_udp_config();
    // The `[state]` clock alarm reads the exporter clocks the collector publishes.
    if let Some(s) = &taps.seen {
        udp.clocks = s.clocks();
    }
    let mut collector = pharos_sources::flow::build(&udp)?;
    let addrs: String = collector
        .local_addrs()
        .iter()
        .map(|a| format!("{a}\n"))
        .collect();
    std::fs::write(&addr_file, addrs).context("writing flow.addr in the data directory")?;
    let rx = collector
        .take_receiver()
        .context("flow collector without a channel")?;
    let losses = crate::loss_report::LossReport::new(Some(collector.stats_handle()));
    let (detect_tx, detect) = match detect {
        Some(d) => (Some(d.tx), Some(d.thread)),
        None => (None, None),
    };
    let mut consumers = Vec::new();
    if let Some(w) = writer {
        consumers.push(crate::flow_stage::ConsumerSpec {
            name: "archive",
            queue: ARCHIVE_QUEUE,
            archive: true,
            consumer: Box::new(Archive(w)),
        });
    }
    if taps.seen.is_some() || taps.counters.is_some() {
        consumers.push(crate::flow_stage::ConsumerSpec {
            name: "taps",
            queue: TAPS_QUEUE,
            archive: false,
            consumer: Box::new(taps),
        });
    }
    let stage = crate::flow_stage::FlowStage::start(rx, consumers, detect_tx, losses)
        .context("starting the flow stage threads")?;
    Ok(Some(FlowStage {
        collector,
        stage,
        detect,
    }))
}

/// How long a clean stop keeps retrying archive writes that fail before it gives up on the
/// flows held in memory (spilled ones stay on disk for the next start).
const ARCHIVE_STOP_PATIENCE: Duration = Duration::from_secs(5);

/// The archive consumer: copies each batch into the segment writer (which encodes on its own
/// threads, spilling beyond its memory budget) and ticks it (one-second segments, merges of
/// finished minutes, retention). At the end it writes everything it holds.
struct Archive(SegmentWriter);

impl crate::flow_stage::Consumer for Archive {
    fn take(&mut self, b: &pharos_model::flow::FlowBatch) {
        self.0.push(b, pharos_model::clock::now_ms());
    }

    fn tick(&mut self) {
        self.0.tick(pharos_model::clock::now_ms());
    }

    fn finish(&mut self) {
        self.0.close(ARCHIVE_STOP_PATIENCE);
        if self.0.pending() == 0 && self.0.spilled() == 0 {
            tracing::info!(
                segments = self.0.segments().count(),
                "flow store: every received flow written"
            );
        }
    }

    fn own_losses(&self) -> u64 {
        self.0.dropped()
    }
}

impl crate::flow_stage::Consumer for Taps {
    fn take(&mut self, b: &pharos_model::flow::FlowBatch) {
        if let Some(s) = &self.seen {
            mark_exporters(s, b);
        }
        if let Some(c) = self.counters.as_mut() {
            c.add(b);
        }
    }

    fn tick(&mut self) {
        self.counters_due();
    }
}

/// What the flow stage feeds besides the archive and detection (the `taps` consumer).
struct Taps {
    /// The silence watch of `[state]`.
    seen: Option<crate::analyse_stage::SeenSources>,
    /// The interface counters of the `i2nsf-counter` period (`[report] counter_period_min`).
    counters: Option<crate::report_stage::InterfaceTotals>,
    /// Where the counters are stored.
    writer: StoreWriter,
    rt: tokio::runtime::Handle,
}

impl Taps {
    /// Stores the counters of a period that ended (without waiting for the store).
    fn counters_due(&mut self) {
        let Some(c) = self.counters.as_mut() else {
            return;
        };
        let msgs = c.due(pharos_model::clock::now_ms());
        if msgs.is_empty() {
            return;
        }
        let w = self.writer.clone();
        self.rt.spawn(async move {
            let n = msgs.len();
            if let Err(e) = w.submit_raised(msgs).await {
                tracing::warn!(error = %e, snapshots = n, "interface counters not stored");
            }
        });
    }
}

/// Marks the exporters of a batch seen, for the silence watch of `[state]` (a batch holds the
/// records of one datagram or a few, so exporters change rarely within it).
fn mark_exporters(seen: &crate::analyse_stage::SeenSources, b: &pharos_model::flow::FlowBatch) {
    use pharos_model::flow::{addr_from_bytes, flags};
    let now = pharos_model::clock::now_ms();
    let mut last = None;
    for (e, f) in b.exporter.iter().zip(&b.flags) {
        let v4 = f & flags::EXPORTER_V4 != 0;
        if last == Some((e, v4)) {
            continue;
        }
        last = Some((e, v4));
        seen.seen(addr_from_bytes(*e, v4).to_string(), now);
    }
}

impl FlowStage {
    /// Stops the socket threads (each within ~100 ms), then the flow stage once the channel is
    /// empty and every consumer finished (the archive wrote every flow it held).
    fn stop(self, data_dir: std::path::PathBuf) {
        self.collector.stop();
        self.stage.join();
        if let Some(d) = self.detect {
            let _ = d.join();
        }
        let _ = std::fs::remove_file(data_dir.join("flow.addr"));
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    /// Logs one event with network text in its message and fields through the daemon's log
    /// subscriber and returns what reached the sink.
    fn logged(format: LogFormat, colour: bool) -> String {
        let buf = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let out = SafeLog::new(format, colour, move |line: &[u8]| {
            sink.lock().unwrap().extend_from_slice(line)
        });
        let sub = log_subscriber(EnvFilter::new("info"), format, colour, out);
        let evil = "x\u{1b}[2J\u{7}\0y\r\nforged line \u{9b}1m\u{202e}";
        tracing::subscriber::with_default(sub, || {
            tracing::info!(text = %evil, debug = ?evil, "got {evil}");
        });
        String::from_utf8(buf.lock().unwrap().clone()).unwrap()
    }

    fn no_raw_control_but_the_final_newline(s: &str) {
        let body = s.strip_suffix('\n').expect("one line, ending in a newline");
        assert!(
            !body.chars().any(pharos_model::text::is_unsafe_char),
            "{body:?}"
        );
    }

    #[test]
    fn a_text_log_line_escapes_every_control_character_of_network_text() {
        let line = logged(LogFormat::Text, false);
        no_raw_control_but_the_final_newline(&line);
        assert!(line.contains("\\x1b[2J"), "{line}");
        assert!(line.contains("\\x00y\\r\\nforged"), "{line}");
    }

    #[test]
    fn a_coloured_text_log_keeps_its_colours_but_escapes_network_text() {
        let line = logged(LogFormat::Text, true);
        let body = line.strip_suffix('\n').unwrap();
        assert!(body.contains("\u{1b}["), "colour expected: {body:?}");
        assert!(!body.contains("\u{1b}[2J") && !body.contains('\0') && !body.contains('\r'));
        assert!(!body.contains('\n') && !body.contains('\u{9b}'));
    }

    #[test]
    fn a_json_log_line_is_one_object_with_the_text_intact_and_no_raw_control() {
        let line = logged(LogFormat::Json, false);
        no_raw_control_but_the_final_newline(&line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["fields"]["text"],
            "x\u{1b}[2J\u{7}\0y\r\nforged line \u{9b}1m\u{202e}"
        );
    }
}
