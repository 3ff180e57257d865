//! `pharos flows query|top|series|export|import`: questions to the flow archive, answered from the
//! Parquet segments directly (no daemon needed), and captures loaded into it.
//!
//! `query`, `top`, `series` and `import` also work on the flow archive in ClickHouse
//! (docs/clickhouse.md): with `--engine clickhouse`, or by default when the configuration has a
//! `[clickhouse]` section (`--engine parquet` then forces the local archive). The answers and
//! their formats are the same; only the last line (what the scan did) differs.
//!
//! Output is a table for people and JSON with `--json`; a progress bar runs on stderr while a scan
//! takes long and stderr is a terminal. Segments that cannot be read are named on stderr and the
//! answer is computed from the rest. A data directory without a flow archive is an error, not an
//! empty answer.
//!
//! Tables name protocols (`TCP`, `UDP`) where JSON keeps their numbers, and fit
//! [`crate::cmd_decode::TABLE_WIDTH`] columns. CSV exports write times in RFC 3339 (UTC).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pharos_flows::filter;
use pharos_flows::query::{
    Key, KeyField, KeyValue, Metric, Order, Progress, Scan, ScanStats, Selection, Totals,
};
use pharos_flows::segment::{SegmentConfig, SegmentWriter, now_ms};
use pharos_model::flow::{FlowBatch, FlowRecord};
use pharos_model::text::printable;

use crate::cmd_decode::shown;
use crate::config::Config;

/// `pharos flows` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum FlowsCommand {
    /// Lists stored flows matching a filter (earliest first, or largest first with --order).
    Query(QueryArgs),
    /// Top values of a key (addresses, prefixes such as srcip4/24, ports, protocols, AS...).
    Top(TopArgs),
    /// Flows, packets and bytes per interval, optionally per top value of a key.
    Series(SeriesArgs),
    /// Writes the selected flows as CSV, JSON lines or Parquet.
    Export(ExportArgs),
    /// Loads the flows of NetFlow/IPFIX/sFlow export captures (pcap, pcapng) into the archive.
    Import(ImportArgs),
}

/// Which flow archive answers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The Parquet archive under the data directory.
    Parquet,
    /// The archive in ClickHouse of the configuration's `[clickhouse]` section.
    Clickhouse,
}

/// What every scan takes: where the archive is, the window, the filter.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// parquet (the archive under the data directory) or clickhouse (the configuration's
    /// [clickhouse] section); default: clickhouse when the configuration has [clickhouse], else
    /// parquet (--data-dir without --config means parquet).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Data directory holding flows/ (default: data_dir of the configuration, else ./pharos-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file to take data_dir from (default: ./pharos.toml if present).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Flows that started at or after: RFC 3339, 2026-12-02 14:00, now, -1h, Unix seconds.
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Flows that ended at or before (same forms as --from).
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = positive("a number of threads such as 4"))]
    pub threads: Option<usize>,
    /// Filter in nfdump syntax, e.g. `proto udp and dst port 53`; several words are joined
    /// (options may come before or after them).
    pub filter: Vec<String>,
}

/// Arguments of `pharos flows query`.
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// Most flows shown.
    #[arg(long, short = 'l', default_value_t = 100, value_parser = positive("a number of flows such as 100"))]
    pub limit: usize,
    /// time (earliest first), bytes or packets (largest first).
    #[arg(long, default_value = "time")]
    pub order: String,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// Arguments of `pharos flows top`.
#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// srcip, dstip, ip, srcport, dstport, port, proto, srcas, dstas, as, exporter, inif, outif,
    /// tos, or a prefix such as srcip4/24, dstip6/48.
    pub key: String,
    /// Order by bytes, packets or flows.
    #[arg(long, default_value = "bytes")]
    pub by: String,
    /// Rows shown.
    #[arg(short = 'n', long = "top", default_value_t = 10, value_parser = positive("a number of rows such as 10"))]
    pub n: usize,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// Arguments of `pharos flows series`.
#[derive(clap::Args, Debug)]
pub struct SeriesArgs {
    /// Interval of flow start time: 10s, 1m, 5m, 1h...
    #[arg(long, default_value = "1m")]
    pub interval: String,
    /// Also one series per top value of this key.
    #[arg(long)]
    pub key: Option<String>,
    /// With --key: key values shown.
    #[arg(short = 'n', long = "top", default_value_t = 5, value_parser = positive("a number of key values such as 5"))]
    pub n: usize,
    /// With --key: order of the key values (bytes, packets, flows).
    #[arg(long, default_value = "bytes")]
    pub by: String,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// Arguments of `pharos flows export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// csv, json (one object per line) or parquet (the archive's schema; needs --output).
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// Arguments of `pharos flows import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Capture files (pcap or pcapng) of NetFlow v5/v9, IPFIX or sFlow datagrams.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Data directory holding flows/ (default: data_dir of the configuration, else ./pharos-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file to take data_dir from (default: ./pharos.toml if present).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Flows per segment file (with --engine clickhouse: flows per insert).
    #[arg(long, default_value_t = 1_000_000, value_parser = positive("a number of flows such as 1000000"))]
    pub segment_flows: usize,
    /// parquet (the archive under the data directory, the default) or clickhouse (the
    /// configuration's [clickhouse] section, migrated first when needed).
    #[arg(long, value_enum, default_value = "parquet")]
    pub engine: Engine,
}

/// A clap parser for a count of at least 1, whose error says what was meant (`expected a number
/// of rows such as 10, found "ten"`) instead of naming a Rust type.
pub(crate) fn positive(
    what: &'static str,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "expected {what} (a whole number, at least 1), found {:?}",
            printable(s)
        )),
    }
}

/// Runs `pharos flows ...`.
pub fn flows(cmd: FlowsCommand) -> anyhow::Result<()> {
    match cmd {
        FlowsCommand::Query(a) => query(a),
        FlowsCommand::Top(a) => top(a),
        FlowsCommand::Series(a) => series(a),
        FlowsCommand::Export(a) => export(a),
        FlowsCommand::Import(a) => import(a),
    }
}

fn data_dir(explicit: Option<&Path>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = explicit {
        return Ok(d.to_path_buf());
    }
    let (cfg, _) = Config::load(config)?;
    Ok(cfg.store.data_dir)
}

/// The flow archive under `dir`, or an error naming where it was looked for and how to get one.
fn existing_archive(dir: &Path) -> anyhow::Result<PathBuf> {
    let root = pharos_flows::archive_root(dir);
    if !root.is_dir() {
        bail!(
            "no flow archive at {}: give the data directory of a Pharos that collects flows \
             (--data-dir, or data_dir in the configuration), or load captures into it with \
             `pharos flows import CAPTURE --data-dir {}`",
            root.display(),
            dir.display()
        );
    }
    Ok(root)
}

impl ScanArgs {
    fn scan(&self) -> anyhow::Result<(Scan, String)> {
        let (selection, text) = self.selection_only()?;
        Ok((self.parquet(selection)?, text))
    }

    /// A scan of the local archive.
    fn parquet(&self, selection: Selection) -> anyhow::Result<Scan> {
        let dir = data_dir(self.data_dir.as_deref(), self.config.as_deref())?;
        let root = existing_archive(&dir)?;
        let mut scan = Scan::new(root, selection);
        if let Some(t) = self.threads {
            scan.threads = t.max(1);
        }
        Ok(scan)
    }

    /// The archive that answers `query`, `top` and `series` (see [`Engine`]), with the filter
    /// text.
    fn source(&self) -> anyhow::Result<(Source, String)> {
        // The arguments are checked first: a mistake in them is named even without an archive.
        let (selection, text) = self.selection_only()?;
        let parquet_only = self.data_dir.is_some() && self.config.is_none();
        let source = match self.engine {
            Some(Engine::Parquet) => Source::Parquet(self.parquet(selection)?),
            None if parquet_only => Source::Parquet(self.parquet(selection)?),
            engine => {
                let (cfg, _) = Config::load(self.config.as_deref())?;
                match (cfg.clickhouse, engine) {
                    (Some(ch), _) => Source::ClickHouse(ClickHouse::open(&ch)?, selection),
                    (None, None) => Source::Parquet(self.parquet(selection)?),
                    (None, Some(_)) => bail!(NO_SECTION),
                }
            }
        };
        Ok((source, text))
    }

    /// The selection of the arguments, without looking for a local archive.
    fn selection_only(&self) -> anyhow::Result<(Selection, String)> {
        let text = self.filter.join(" ");
        let expr = filter::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "the filter has a mistake at {e}\n{}\nfilter syntax: docs/flows.md",
                e.render(&text)
            )
        })?;
        let now = now_ms();
        let time = |name: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
            v.as_deref()
                .map(|s| {
                    pharos_store::time::parse_time(s, now).with_context(|| format!("--{name}"))
                })
                .transpose()
        };
        Ok((
            Selection {
                filter: expr,
                from_ms: time("from", &self.from)?,
                to_ms: time("to", &self.to)?,
            },
            text,
        ))
    }
}

/// Where `query`, `top` and `series` are answered.
enum Source {
    /// The local Parquet archive.
    Parquet(Scan),
    /// ClickHouse, with the selection.
    ClickHouse(ClickHouse, Selection),
}

/// What `--engine clickhouse` says without a `[clickhouse]` section.
const NO_SECTION: &str = "--engine clickhouse needs a [clickhouse] section (url, database...) in \
                          the configuration: give it with --config FILE (docs/clickhouse.md)";

/// The flow archive in ClickHouse and a runtime to ask it from this synchronous command.
struct ClickHouse {
    archive: pharos_clickhouse::Archive,
    rt: tokio::runtime::Runtime,
}

impl ClickHouse {
    /// The archive of a `[clickhouse]` section.
    fn open(ch: &pharos_clickhouse::ClickHouseConfig) -> anyhow::Result<Self> {
        let client = ch
            .client()
            .map_err(|e| anyhow::anyhow!("config error in [clickhouse]: {e}"))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Self {
            archive: pharos_clickhouse::Archive::new(client),
            rt,
        })
    }

    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, pharos_clickhouse::Error>>,
    ) -> anyhow::Result<T> {
        self.rt.block_on(f).map_err(anyhow::Error::from)
    }

    /// The last line of an answer: what was selected, where, how long it took.
    fn line(&self, matched: u64, secs: f64) -> String {
        format!(
            "{} flows selected; ClickHouse {} database {}; {:.3} s",
            group(matched),
            self.archive.client().url().trim_end_matches('/'),
            self.archive.client().database(),
            secs
        )
    }
}

/// Runs `f` with a progress bar on stderr (when it is a terminal and the scan takes a while).
fn with_progress<T>(scan: &mut Scan, f: impl FnOnce(&Scan) -> T) -> T {
    let progress = Arc::new(Progress::default());
    scan.progress = Some(progress.clone());
    if !std::io::stderr().is_terminal() {
        return f(scan);
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p, d) = (progress.clone(), done.clone());
    let bar_thread = std::thread::spawn(move || {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} row groups, {msg} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let start = Instant::now();
        let mut shown = false;
        while !d.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if !shown && start.elapsed() < Duration::from_millis(500) {
                continue;
            }
            shown = true;
            bar.set_length(p.total.load(Ordering::Relaxed));
            bar.set_position(p.done.load(Ordering::Relaxed));
            bar.set_message(format!("{} rows", group(p.rows.load(Ordering::Relaxed))));
        }
        bar.finish_and_clear();
    });
    let out = f(scan);
    done.store(true, Ordering::Relaxed);
    let _ = bar_thread.join();
    out
}

fn warn_errors(stats: &ScanStats) {
    for e in &stats.errors {
        eprintln!(
            "pharos flows: skipped an unreadable segment: {}",
            printable(e)
        );
    }
    if stats.segments == 0 {
        eprintln!("pharos flows: the flow archive holds no flows yet");
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn scan_line(stats: &ScanStats, secs: f64) -> String {
    format!(
        "{} flows selected of {} read; {} segments ({} skipped by time), {} row groups ({} skipped); {:.3} s",
        group(stats.rows_matched),
        group(stats.rows_scanned),
        stats.segments,
        stats.segments_pruned,
        stats.row_groups,
        stats.row_groups_pruned,
        secs
    )
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn query(a: QueryArgs) -> anyhow::Result<()> {
    let order: Order = a.order.parse()?;
    let (source, _) = a.scan.source()?;
    let started = Instant::now();
    let (listing, ch) = match source {
        Source::Parquet(mut scan) => {
            let l = with_progress(&mut scan, |s| s.list(a.limit, order))?;
            warn_errors(&l.stats);
            (l, None)
        }
        Source::ClickHouse(ch, sel) => (ch.run(ch.archive.list(&sel, a.limit, order))?, Some(ch)),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = (|| -> std::io::Result<()> {
        if a.scan.json {
            for f in &listing.flows {
                serde_json::to_writer(&mut out, &f.to_json())?;
                out.write_all(b"\n")?;
            }
        } else {
            crate::cmd_decode::write_header(&mut out)?;
            for f in &listing.flows {
                crate::cmd_decode::write_row(&mut out, f)?;
            }
        }
        out.flush()
    })();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        r => r.context("writing flows to stdout")?,
    }
    if !a.scan.json {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{} flows shown; {}",
            listing.flows.len(),
            match &ch {
                Some(ch) => ch.line(listing.stats.rows_matched, secs),
                None => scan_line(&listing.stats, secs),
            }
        );
    }
    Ok(())
}

fn top(a: TopArgs) -> anyhow::Result<()> {
    let key: Key = a.key.parse()?;
    let by: Metric = a.by.parse()?;
    let (source, text) = a.scan.source()?;
    let started = Instant::now();
    let (t, ch) = match source {
        Source::Parquet(mut scan) => {
            let t = with_progress(&mut scan, |s| s.top(key, by, a.n))?;
            warn_errors(&t.stats);
            (t, None)
        }
        Source::ClickHouse(ch, sel) => (ch.run(ch.archive.top(&sel, key, by, a.n))?, Some(ch)),
    };
    let secs = started.elapsed().as_secs_f64();
    if a.scan.json {
        return print_json(&t);
    }
    println!(
        "Top {} {} by {}{}",
        a.n,
        key,
        by,
        if text.trim().is_empty() {
            String::new()
        } else {
            format!(", filter: {}", text.trim())
        }
    );
    let table = TopTable::new(key, &t);
    println!("{}", table.header(key));
    for (i, r) in t.rows.iter().enumerate() {
        println!("{}", table.row(i + 1, &r.key, &r.totals));
    }
    println!(
        "total: {} flows, {} packets, {} bytes; {} distinct {}",
        group(t.total.flows),
        group(t.total.packets),
        group(t.total.bytes),
        group(t.distinct),
        key
    );
    match &ch {
        Some(ch) => println!("{}", ch.line(t.stats.rows_matched, secs)),
        None => println!("{}", scan_line(&t.stats, secs)),
    }
    Ok(())
}

/// A key value as tables show it: protocols by name (`TCP`), everything else as is. JSON keeps
/// the number.
fn key_text(key: Key, v: &KeyValue) -> String {
    match (key.field, v) {
        (KeyField::Proto, KeyValue::Num(n)) => match u8::try_from(*n) {
            Ok(p) => crate::cmd_decode::proto_name(p).into_owned(),
            Err(_) => n.to_string(),
        },
        _ => v.to_string(),
    }
}

/// The columns of a top-N table, sized to its values so that it fits
/// [`crate::cmd_decode::TABLE_WIDTH`]: counts are exact with thousands separators, or scaled
/// (`1.2 G`) when exact counts would not fit.
struct TopTable {
    key: usize,
    flows: usize,
    packets: usize,
    bytes: usize,
    scaled: bool,
    total: Totals,
    field: Key,
}

impl TopTable {
    fn new(key: Key, t: &pharos_flows::query::TopN) -> Self {
        let kw = t
            .rows
            .iter()
            .map(|r| key_text(key, &r.key).chars().count())
            .max()
            .unwrap_or(0)
            .max(key.to_string().len());
        let widths = |f: &dyn Fn(u64) -> String| {
            let w = |get: &dyn Fn(&Totals) -> u64, title: &str| {
                t.rows
                    .iter()
                    .map(|r| f(get(&r.totals)).len())
                    .max()
                    .unwrap_or(0)
                    .max(title.len())
            };
            (
                w(&|x| x.flows, "flows"),
                w(&|x| x.packets, "packets"),
                w(&|x| x.bytes, "bytes"),
            )
        };
        let mut table = TopTable {
            key: kw,
            flows: 0,
            packets: 0,
            bytes: 0,
            scaled: false,
            total: t.total,
            field: key,
        };
        (table.flows, table.packets, table.bytes) = widths(&group);
        if table.width() > crate::cmd_decode::TABLE_WIDTH {
            table.scaled = true;
            (table.flows, table.packets, table.bytes) = widths(&crate::cmd_decode::scaled);
        }
        table
    }

    /// Characters of a row: rank, key, then three counts with their percentages.
    fn width(&self) -> usize {
        4 + 2
            + self.key
            + 2
            + self.flows
            + 1
            + 6
            + 2
            + self.packets
            + 1
            + 6
            + 2
            + self.bytes
            + 1
            + 6
    }

    fn count(&self, n: u64) -> String {
        if self.scaled {
            crate::cmd_decode::scaled(n)
        } else {
            group(n)
        }
    }

    fn header(&self, key: Key) -> String {
        format!(
            "{:>4}  {:<kw$}  {:>fw$} {:>6}  {:>pw$} {:>6}  {:>bw$} {:>6}",
            "rank",
            key.to_string(),
            "flows",
            "",
            "packets",
            "",
            "bytes",
            "",
            kw = self.key,
            fw = self.flows,
            pw = self.packets,
            bw = self.bytes,
        )
        .trim_end()
        .to_string()
    }

    fn row(&self, rank: usize, key: &KeyValue, t: &Totals) -> String {
        format!(
            "{:>4}  {:<kw$}  {:>fw$} {:>6}  {:>pw$} {:>6}  {:>bw$} {:>6}",
            rank,
            key_text(self.field, key),
            self.count(t.flows),
            pct(t.flows, self.total.flows),
            self.count(t.packets),
            pct(t.packets, self.total.packets),
            self.count(t.bytes),
            pct(t.bytes, self.total.bytes),
            kw = self.key,
            fw = self.flows,
            pw = self.packets,
            bw = self.bytes,
        )
    }
}

fn utc(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn print_points(points: &[pharos_flows::query::Point]) {
    for p in points {
        println!(
            "{:<19}  {:>14}  {:>16}  {:>20}",
            utc(p.t_ms),
            group(p.totals.flows),
            group(p.totals.packets),
            group(p.totals.bytes)
        );
    }
}

fn series(a: SeriesArgs) -> anyhow::Result<()> {
    let interval = pharos_store::time::parse_duration_ms(&a.interval)
        .ok()
        .filter(|ms| *ms > 0)
        .with_context(|| {
            format!(
                "--interval {:?}: give a duration such as 10s, 1m, 1h",
                a.interval
            )
        })?;
    let key = a.key.as_deref().map(str::parse::<Key>).transpose()?;
    let by: Metric = a.by.parse()?;
    let (source, _) = a.scan.source()?;
    let started = Instant::now();
    let (s, ch) = match source {
        Source::Parquet(mut scan) => {
            let s = with_progress(&mut scan, |sc| {
                sc.series(interval, key.map(|k| (k, a.n)), by)
            })?;
            warn_errors(&s.stats);
            (s, None)
        }
        Source::ClickHouse(ch, sel) => (
            ch.run(ch.archive.series(&sel, interval, key.map(|k| (k, a.n)), by))?,
            Some(ch),
        ),
    };
    let secs = started.elapsed().as_secs_f64();
    if a.scan.json {
        return print_json(&s);
    }
    println!(
        "{:<19}  {:>14}  {:>16}  {:>20}",
        "interval (UTC)", "flows", "packets", "bytes"
    );
    print_points(&s.points);
    if let Some(k) = key {
        for ks in &s.keys {
            println!(
                "\n{k} {}: {} {by} in total",
                key_text(k, &ks.key),
                group(ks.totals.get(by))
            );
            print_points(&ks.points);
        }
    }
    match &ch {
        Some(ch) => eprintln!("{}", ch.line(s.stats.rows_matched, secs)),
        None => eprintln!("{}", scan_line(&s.stats, secs)),
    }
    Ok(())
}

/// CSV columns of an export: the names of the JSON objects, except the times: `start` and `end`
/// are RFC 3339 in UTC with milliseconds (`2026-12-02T14:00:00.123Z`), which spreadsheets and
/// people read, where JSON has `start_ms` and `end_ms` in Unix milliseconds.
const CSV_COLUMNS: &[&str] = &[
    "start",
    "end",
    "exporter",
    "domain",
    "in_if",
    "out_if",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "proto",
    "tcp_flags",
    "tos",
    "packets",
    "bytes",
    "src_as",
    "dst_as",
    "src_mask",
    "dst_mask",
    "next_hop",
    "vlan",
    "direction",
    "sampling_rate",
    "icmp_type",
    "icmp_code",
    "end_reason",
];

/// `2026-12-02T14:00:00.123Z`; the Unix ms as a number if out of chrono's range.
fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

fn csv_row(out: &mut impl Write, r: &FlowRecord) -> std::io::Result<()> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        rfc3339(r.start_ms),
        rfc3339(r.end_ms),
        r.exporter,
        r.domain,
        r.in_if,
        r.out_if,
        r.src_addr,
        r.dst_addr,
        r.src_port,
        r.dst_port,
        r.proto,
        r.tcp_flags,
        r.tos,
        r.packets,
        r.bytes,
        r.src_as,
        r.dst_as,
        r.src_mask,
        r.dst_mask,
        opt(r.next_hop.map(|a| a.to_string())),
        opt(r.vlan.map(|v| v.to_string())),
        opt(r.direction.map(|v| v.to_string())),
        r.sampling_rate,
        r.icmp_type,
        r.icmp_code,
        opt(r.end_reason.map(|v| v.to_string())),
    )
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    if a.scan.engine == Some(Engine::Clickhouse) {
        bail!(
            "pharos flows export reads the local Parquet archive; from ClickHouse, use `pharos \
             flows query --engine clickhouse --json` or clickhouse-client (docs/clickhouse.md)"
        );
    }
    let (mut scan, _) = a.scan.scan()?;
    let started = Instant::now();
    let stats = match a.format.as_str() {
        "parquet" => {
            let path = a.output.as_deref().context(
                "--format parquet needs --output FILE (Parquet is not streamed to a terminal)",
            )?;
            let mut w = pharos_flows::export::ParquetExport::create(path)?;
            let stats = with_progress(&mut scan, |s| s.for_each(|b| w.write(b)))?;
            let rows = w.finish()?;
            eprintln!("{} flows written to {}", group(rows), shown(path));
            stats
        }
        "csv" | "json" => {
            let sink: Box<dyn Write> = match &a.output {
                Some(p) => Box::new(std::fs::File::create(p).with_context(|| {
                    format!(
                        "cannot create {}; check the directory and permissions",
                        p.display()
                    )
                })?),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
            let csv = a.format == "csv";
            if csv {
                writeln!(out, "{}", CSV_COLUMNS.join(","))?;
            }
            let r = with_progress(&mut scan, |s| {
                s.for_each(|b: &FlowBatch| {
                    for f in b.iter() {
                        if csv {
                            csv_row(&mut out, &f)?;
                        } else {
                            serde_json::to_writer(&mut out, &f.to_json())?;
                            out.write_all(b"\n")?;
                        }
                    }
                    Ok(())
                })
            });
            let stats = match r {
                Err(pharos_flows::query::ExportError::Output(e))
                    if e.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    return Ok(());
                }
                r => r?,
            };
            match out.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                r => r.context("writing the export")?,
            }
            stats
        }
        other => bail!("--format {other:?}: use csv, json or parquet"),
    };
    warn_errors(&stats);
    eprintln!("{}", scan_line(&stats, started.elapsed().as_secs_f64()));
    Ok(())
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    if a.engine == Engine::Clickhouse {
        return import_clickhouse(a);
    }
    let dir = data_dir(a.data_dir.as_deref(), a.config.as_deref())?;
    let root = pharos_flows::archive_root(&dir);
    let mut cfg = SegmentConfig::new(&root);
    let per_segment = a.segment_flows.clamp(1, 10_000_000);
    // Imports write whole segments on their own schedule: no time-based flush, no retention
    // pass here (the daemon's retention applies to imported segments like to any other).
    cfg.segment = Duration::from_secs(365 * 86_400);
    cfg.retention = Duration::ZERO;
    cfg.max_held_flows = per_segment.saturating_mul(2);
    let mut writer = SegmentWriter::open(cfg)
        .with_context(|| format!("cannot open the flow archive {}", root.display()))?;
    let started = Instant::now();
    let mut total_flows = 0u64;
    let mut segments = 0u64;
    let mut bytes = 0u64;
    let (mut min_t, mut max_t) = (u64::MAX, 0u64);
    let mut unreadable = Vec::new();
    for file in &a.files {
        let decoded = crate::cmd_decode::decode_capture(file, |_, batch| {
            if batch.is_empty() {
                return Ok(());
            }
            for &t in &batch.end_ms {
                min_t = min_t.min(t);
                max_t = max_t.max(t);
            }
            writer.push(batch, now_ms());
            if writer.pending() >= per_segment
                && let Some(s) = writer.flush(now_ms())?
            {
                segments += 1;
                bytes += s.bytes;
            }
            Ok::<(), pharos_flows::segment::FlowStoreError>(())
        });
        let (capture, write_err) = match decoded {
            Ok(d) => d,
            Err(e) if a.files.len() > 1 => {
                eprintln!("pharos flows import: {}", printable(&format!("{e:#}")));
                unreadable.push(file.display().to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(e) = write_err {
            return Err(anyhow::Error::from(e).context(format!(
                "writing the flows of {} into {}; flows already written stay",
                file.display(),
                root.display()
            )));
        }
        match writer.flush(now_ms()) {
            Ok(Some(s)) => {
                segments += 1;
                bytes += s.bytes;
            }
            Ok(None) => {}
            Err(e) => return Err(e).context("writing the last segment"),
        }
        eprintln!(
            "{}: {} flows from {} datagrams ({} not flow exports or damaged){}",
            shown(file),
            group(capture.flows),
            group(capture.datagrams),
            group(capture.not_flows),
            capture.damage_note()
        );
        for note in capture.no_template_notes() {
            eprintln!("{}: {note}", shown(file));
        }
        total_flows += capture.flows;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} flows into {} segments under {} ({} bytes, {:.1} bytes/flow) in {:.1} s{}",
        group(total_flows),
        segments,
        shown(&root),
        group(bytes),
        if total_flows > 0 {
            bytes as f64 / total_flows as f64
        } else {
            0.0
        },
        secs,
        if total_flows > 0 {
            format!("; flows end between {} and {} UTC", utc(min_t), utc(max_t))
        } else {
            String::new()
        }
    );
    if !unreadable.is_empty() {
        bail!(
            "{} of {} captures could not be read: {}; the flows of the others were imported",
            unreadable.len(),
            a.files.len(),
            unreadable.join(", ")
        );
    }
    Ok(())
}

/// The batch ids of a capture imported into ClickHouse: a hash of its name, size and
/// modification time in the high 32 bits, the batch's index in the low 32. Importing the same
/// file again finds its batches in the ledger and writes nothing twice.
fn import_batch_base(file: &Path) -> u64 {
    let meta = std::fs::metadata(file).ok();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    let name = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    eat(name.as_os_str().as_encoded_bytes());
    eat(&meta.as_ref().map_or(0, |m| m.len()).to_le_bytes());
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    eat(&mtime.to_le_bytes());
    h & !0xffff_ffff
}

/// Inserts into ClickHouse in flight, and what the finished ones did.
struct Inserts {
    tasks: tokio::task::JoinSet<Result<pharos_clickhouse::Inserted, pharos_clickhouse::Error>>,
    written: u64,
    already: u64,
}

impl Inserts {
    /// Waits until at most `limit` inserts are in flight; the first failure is the error.
    fn settle(&mut self, rt: &tokio::runtime::Runtime, limit: usize) -> anyhow::Result<()> {
        while self.tasks.len() > limit {
            let Some(r) = rt.block_on(self.tasks.join_next()) else {
                break;
            };
            match r.context("an insert task failed")?? {
                pharos_clickhouse::Inserted::Written(n) => self.written += n,
                pharos_clickhouse::Inserted::Duplicate | pharos_clickhouse::Inserted::Recovered => {
                    self.already += 1
                }
            }
        }
        Ok(())
    }
}

/// `pharos flows import --engine clickhouse`: the flows of the captures into ClickHouse, in
/// inserts of `--segment-flows` flows (two in flight), exactly once per batch id.
fn import_clickhouse(a: ImportArgs) -> anyhow::Result<()> {
    let (cfg, _) = Config::load(a.config.as_deref())?;
    let ch = ClickHouse::open(cfg.clickhouse.as_ref().context(NO_SECTION)?)?;
    ch.run(ch.archive.migrate())
        .context("applying the ClickHouse schema migrations")?;
    let per_insert = a.segment_flows.clamp(1, 10_000_000);
    let started = Instant::now();
    let mut total_flows = 0u64;
    let mut unreadable = Vec::new();
    let mut inserts = Inserts {
        tasks: tokio::task::JoinSet::new(),
        written: 0,
        already: 0,
    };
    for file in &a.files {
        let base = import_batch_base(file);
        let mut index = 0u64;
        let mut acc = FlowBatch::with_capacity(per_insert);
        let mut send = |acc: &mut FlowBatch, inserts: &mut Inserts| -> anyhow::Result<()> {
            if acc.is_empty() {
                return Ok(());
            }
            inserts.settle(&ch.rt, 1)?;
            let batch = std::mem::replace(acc, FlowBatch::with_capacity(per_insert));
            let archive = ch.archive.clone();
            let id = base | index;
            index += 1;
            inserts.tasks.spawn_on(
                async move { archive.insert(id, &batch).await },
                ch.rt.handle(),
            );
            Ok(())
        };
        let decoded = crate::cmd_decode::decode_capture(file, |_, batch| {
            if batch.is_empty() {
                return Ok(());
            }
            acc.extend_from(batch);
            if acc.len() >= per_insert {
                send(&mut acc, &mut inserts)?;
            }
            Ok::<(), anyhow::Error>(())
        });
        let (capture, write_err) = match decoded {
            Ok(d) => d,
            Err(e) if a.files.len() > 1 => {
                eprintln!("pharos flows import: {}", printable(&format!("{e:#}")));
                unreadable.push(file.display().to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(e) = write_err {
            return Err(e.context(format!(
                "writing the flows of {} into ClickHouse; batches already written stay",
                file.display()
            )));
        }
        send(&mut acc, &mut inserts)?;
        eprintln!(
            "{}: {} flows from {} datagrams ({} not flow exports or damaged){}",
            shown(file),
            group(capture.flows),
            group(capture.datagrams),
            group(capture.not_flows),
            capture.damage_note()
        );
        for note in capture.no_template_notes() {
            eprintln!("{}: {note}", shown(file));
        }
        total_flows += capture.flows;
    }
    inserts.settle(&ch.rt, 0)?;
    println!(
        "imported {} flows into ClickHouse {} database {} ({} written, {} batches already \
         stored) in {:.1} s",
        group(total_flows),
        ch.archive.client().url().trim_end_matches('/'),
        ch.archive.client().database(),
        group(inserts.written),
        inserts.already,
        started.elapsed().as_secs_f64()
    );
    if !unreadable.is_empty() {
        bail!(
            "{} of {} captures could not be read: {}; the flows of the others were imported",
            unreadable.len(),
            a.files.len(),
            unreadable.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_flows::query::{TopN, TopRow};

    #[test]
    fn counts_are_refused_in_words_not_rust_types() {
        let p = positive("a number of rows such as 10");
        assert_eq!(p("12"), Ok(12));
        for bad in ["0", "-1", "ten", "99999999999999999999999"] {
            let e = p(bad).unwrap_err();
            assert!(e.contains("a number of rows such as 10"), "{e}");
            assert!(!e.contains("usize") && !e.contains("invalid digit"), "{e}");
        }
        assert!(p("\u{1b}[2J").unwrap_err().contains("\\x1b"));
    }

    #[test]
    fn csv_times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        let mut out = Vec::new();
        csv_row(&mut out, &FlowRecord::default()).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line.split(',').count(),
            CSV_COLUMNS.len(),
            "one value per column: {line}"
        );
        assert!(line.starts_with("1970-01-01T00:00:00.000Z,1970-01-01T00:00:00.000Z,"));
    }

    #[test]
    fn protocol_keys_print_by_name_other_keys_as_they_are() {
        let proto: Key = "proto".parse().unwrap();
        assert_eq!(key_text(proto, &KeyValue::Num(17)), "UDP");
        assert_eq!(key_text(proto, &KeyValue::Num(253)), "253");
        let port: Key = "dstport".parse().unwrap();
        assert_eq!(key_text(port, &KeyValue::Num(17)), "17");
    }

    #[test]
    fn the_widest_top_table_fits_the_table_width() {
        let key: Key = "srcip6/128".parse().unwrap();
        let big = Totals {
            flows: u64::MAX / 3,
            packets: u64::MAX / 2,
            bytes: u64::MAX,
        };
        let t = TopN {
            key,
            by: Metric::Bytes,
            rows: vec![TopRow {
                key: KeyValue::Net(
                    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
                        .parse()
                        .unwrap(),
                ),
                totals: big,
            }],
            total: big,
            distinct: 1,
            stats: ScanStats::default(),
        };
        let table = TopTable::new(key, &t);
        let lines = [table.header(key), table.row(1, &t.rows[0].key, &big)];
        for l in &lines {
            assert!(
                l.chars().count() <= crate::cmd_decode::TABLE_WIDTH,
                "{}: {l}",
                l.len()
            );
        }
        assert!(
            lines[1].contains(" E "),
            "scaled when exact counts do not fit: {}",
            lines[1]
        );
        // Ordinary values stay exact.
        let small = Totals {
            flows: 1_234,
            packets: 56_789,
            bytes: 12_345_678,
        };
        let t = TopN {
            rows: vec![TopRow {
                key: KeyValue::Num(6),
                totals: small,
            }],
            total: small,
            ..t
        };
        let proto: Key = "proto".parse().unwrap();
        let row = TopTable::new(proto, &t).row(1, &t.rows[0].key, &small);
        assert!(row.contains("TCP") && row.contains("12,345,678"), "{row}");
    }
}
