//! The measuring client of `bench/console.sh` (issue 19: performance of the web console).
//!
//! Drives Debian's headless `chromium` through `chromedriver`'s W3C WebDriver HTTP API (with
//! reqwest; a small client of its own below) against a running `pharos run`, and measures:
//!
//! - `--mode static`: per run a fresh browser (fresh `--user-data-dir`, empty cache), logged in by
//!   a session cookie from `POST /api/v1/session` set with WebDriver's Add Cookie (so that the
//!   first console page is loaded with a cold cache), then
//!   1. the first load of `/ui/` (the overview): navigation timing (`responseEnd`,
//!      `domInteractive`, `loadEventEnd`), the moment `#attacks` and `#top-talkers` are filled
//!      (time to interactive), when the other panels are, and the bytes transferred (resource
//!      timing `transferSize`, compressed, headers included), split into the page itself (the
//!      HTML and its assets) and the API calls;
//!   2. the events page reached by clicking its link in the navigation (client-side route):
//!      click until `#ev-table tr[data-event-id]` exists;
//!   3. the flows page loaded by URL (`/ui/flows`: top-10 destination addresses by bytes over
//!      the last hour, its series and the flows list, as the page runs by default): navigation
//!      until `#fl-top-table tr[data-value]` and until `#fl-list` has rows;
//!   4. the events page loaded by URL (`/ui/events`, default `last 24 hours`): navigation until
//!      `#ev-table tr[data-event-id]`;
//!   5. the overview again by URL, assets now cached (warm).
//! - `--mode ingest` (run while a flow ingest is going on): a monitor browser keeps the overview
//!   open for the whole time and records every change of `#live-status`; per run a fresh browser
//!   loads the overview cold as above; after each run an alarm is pushed (`POST /api/v1/push`)
//!   and the time until it shows in the monitor's `#alarms` (SSE, no reload) is measured; all
//!   the time a second task times the overview's API calls (`/api/v1/overview`, the live traffic
//!   view `/api/v1/traffic` with the top talkers and targets, ongoing attacks) a round every 5 s,
//!   and notes what the live view says of itself (flows/s counted, batches it missed).
//!
//! Moments in the page are taken in the page: a script installed before any of the page's own
//! (CDP `Page.addScriptToEvaluateOnNewDocument` through chromedriver) watches the DOM with a
//! MutationObserver and notes `performance.now()` (milliseconds since the navigation started)
//! when each condition first holds; WebDriver's polling only collects them.
//!
//! Usage: `console_load --base http://127.0.0.1:PORT --token phr_... --mode static|ingest
//!         [--runs 5] [--seconds 60] [--work DIR] [--json OUT.json] [--networks 10.0.0.0/8,...]
//!         [--insecure 1]` (`--insecure 1`: accept a self-signed server certificate, for HTTPS runs)
//! Env: `PHAROS_CHROMEDRIVER` (default /usr/bin/chromedriver), `PHAROS_CHROMIUM` (default
//! /usr/bin/chromium).
//! Prints a Markdown table (median, min, max over the runs) on stdout; the raw values go to
//! `--json`. Every wait is bounded; the browsers are killed (their process group) on exit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The page-side probe.

/// Installed before the page's scripts: notes when each condition first holds and every change
/// of `#live-status`.
const PROBE_JS: &str = r#"
(() => {
  if (window.__pharosMarks) return;
  const marks = {};
  const live = [];
  window.__pharosMarks = marks;
  window.__pharosLive = live;
  const body = (sel) => {
    const t = document.querySelector(sel);
    if (!t) return null;
    return (t.tBodies && t.tBodies[0]) || t;
  };
  // Filled: has children, is no longer "Loading…" and shows no error row.
  const filled = (sel) => {
    const b = body(sel);
    return !!b && b.children.length > 0 && !/Loading/.test(b.textContent) && !b.querySelector('tr.error');
  };
  const has = (sel) => !!document.querySelector(sel);
  const checks = {
    attacks: () => filled('#attacks'),
    attack_rows: () => has('#attacks tr[data-event-id]'),
    talkers: () => filled('#top-talkers'),
    targets: () => filled('#top-targets'),
    alarms: () => has('#alarms li'),
    traffic: () => has('#traffic-chart path, #traffic-chart polyline'),
    nsf: () => filled('#nsf-health'),
    ev_rows: () => has('#ev-table tr[data-event-id]'),
    fl_top: () => has('#fl-top-table tr[data-value]'),
    fl_list: () => has('#fl-list tbody tr td'),
    error: () => has('#page tr.error, #page .error:not([hidden])'),
  };
  let lastLive = null;
  const check = () => {
    const now = performance.now();
    for (const k in checks) {
      if (!(k in marks)) {
        try { if (checks[k]()) marks[k] = now; } catch (e) { /* not yet */ }
      }
    }
    const ls = document.getElementById('live-status');
    if (ls && ls.textContent !== lastLive) {
      lastLive = ls.textContent;
      live.push([now, Date.now(), lastLive]);
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
})();
"#;

/// What the page says about its load: navigation timing, resource timing and the probe's marks.
const TIMING_JS: &str = r#"
const n = performance.getEntriesByType('navigation')[0];
const res = performance.getEntriesByType('resource').map((e) => ({
  name: e.name, type: e.initiatorType, transfer: e.transferSize, encoded: e.encodedBodySize,
  decoded: e.decodedBodySize, start: e.startTime, end: e.responseEnd, proto: e.nextHopProtocol, status: e.responseStatus }));
return { nav: n ? n.toJSON() : null, res, marks: window.__pharosMarks || null, url: location.href };
"#;

// ---------------------------------------------------------------------------------------------
// A small W3C WebDriver client.

struct Browser {
    driver: Child,
    /// `driver.pid` in the browser's directory: the process group, for the script's cleanup.
    pid_file: PathBuf,
    base: String,
    session: String,
    http: reqwest::Client,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Browser {
    /// Starts chromedriver (its own process group) and a headless chromium with a fresh profile
    /// under `dir`.
    async fn start(dir: &Path, insecure: bool) -> Result<Browser> {
        use std::os::unix::process::CommandExt;
        let driver =
            std::env::var("PHAROS_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium =
            std::env::var("PHAROS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(dir.join("chromedriver.log"))?;
        let port = free_port()?;
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {driver}"))?;
        let pid_file = dir.join("driver.pid");
        std::fs::write(&pid_file, child.id().to_string())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(180))
            .build()?;
        let mut b = Browser {
            driver: child,
            pid_file,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = b.http.get(format!("{}/status", b.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver not ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = dir.join("profile");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "acceptInsecureCerts": insecure,
            "timeouts": {"script": 120_000, "pageLoad": 120_000, "implicit": 0},
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let v = b
            .raw("POST", "/session", Some(caps))
            .await
            .context("new WebDriver session")?;
        b.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no sessionId in {v}"))?
            .to_string();
        // The probe, in every document from now on, before the page's own scripts.
        b.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": PROBE_JS}})),
        )
        .await
        .context("installing the probe (CDP Page.addScriptToEvaluateOnNewDocument)")?;
        Ok(b)
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("{method} {path}: not JSON"))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() || value.get("error").is_some_and(Value::is_string) {
            let msg: String = value["message"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .take(2)
                .collect::<Vec<_>>()
                .join(" | ");
            bail!(
                "{method} {path}: {}: {msg}",
                value["error"].as_str().unwrap_or("error")
            );
        }
        Ok(value)
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let p = format!("/session/{}{path}", self.session);
        self.raw(method, &p, body).await
    }

    /// Navigates and waits for the load event (pageLoadStrategy normal).
    async fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    async fn exec(&self, script: &str) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn add_cookie(&self, name: &str, value: &str) -> Result<()> {
        self.cmd(
            "POST",
            "/cookie",
            Some(json!({"cookie": {
            "name": name, "value": value, "path": "/", "httpOnly": true, "sameSite": "Strict"}})),
        )
        .await?;
        Ok(())
    }

    /// Polls the probe's marks until every one of `keys` is there (or `timeout`); returns them.
    async fn marks(&self, keys: &[&str], timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.exec("return window.__pharosMarks || null").await?;
            if m.is_null() {
                bail!("the probe is not in the page (CDP script injection failed?)");
            }
            if keys.iter().all(|k| m.get(*k).is_some()) || Instant::now() > deadline {
                return Ok(m);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.cmd("DELETE", "", None)).await;
        self.kill();
    }

    fn kill(&mut self) {
        // The driver's process group: chromedriver and every chromium process it started.
        let pid = self.driver.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            self.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments and the API.

struct Args {
    base: String,
    token: String,
    mode: String,
    runs: usize,
    seconds: u64,
    work: PathBuf,
    json: Option<PathBuf>,
    networks: Vec<String>,
    /// Accept the server's certificate whatever it is (a self-signed one in TLS runs).
    insecure: bool,
}

fn args() -> Result<Args> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let k = k
            .strip_prefix("--")
            .ok_or_else(|| anyhow!("unexpected argument {k}"))?
            .to_string();
        let v = it.next().ok_or_else(|| anyhow!("--{k} needs a value"))?;
        m.insert(k, v);
    }
    let get = |k: &str| m.get(k).cloned();
    Ok(Args {
        base: get("base")
            .ok_or_else(|| anyhow!("--base URL is required"))?
            .trim_end_matches('/')
            .to_string(),
        token: get("token").ok_or_else(|| anyhow!("--token is required"))?,
        mode: get("mode").unwrap_or_else(|| "static".into()),
        runs: get("runs").map(|s| s.parse()).transpose()?.unwrap_or(5),
        seconds: get("seconds").map(|s| s.parse()).transpose()?.unwrap_or(60),
        work: get("work")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("pharos-console-load")),
        json: get("json").map(PathBuf::from),
        networks: get("networks")
            .map(|s| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        insecure: get("insecure").is_some_and(|v| v == "1"),
    })
}

fn http() -> Result<reqwest::Client> {
    // The bench's server certificate (TLS=1) is self-signed and made for the run.
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .danger_accept_invalid_certs(true)
        .build()?)
}

/// A console session for the token: the value of the `pharos_session` cookie.
async fn session_cookie(a: &Args) -> Result<String> {
    let r = http()?
        .post(format!("{}/api/v1/session", a.base))
        .json(&json!({"token": a.token}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("POST /api/v1/session: {}", r.status());
    }
    for v in r.headers().get_all("set-cookie") {
        let s = v.to_str().unwrap_or_default();
        if let Some(rest) = s.strip_prefix("pharos_session=") {
            return Ok(rest.split(';').next().unwrap_or_default().to_string());
        }
    }
    bail!("no pharos_session cookie in the answer")
}

async fn get_json(a: &Args, path_q: &str) -> Result<Value> {
    let r = http()?
        .get(format!("{}{path_q}", a.base))
        .bearer_auth(&a.token)
        .send()
        .await?;
    let s = r.status();
    let v: Value = r.json().await?;
    if !s.is_success() {
        bail!("GET {path_q}: {s}: {v}");
    }
    Ok(v)
}

/// A fresh browser, logged in (cookie set on the origin from a page without assets).
async fn logged_in_browser(a: &Args, dir: &Path) -> Result<Browser> {
    let cookie = session_cookie(a).await?;
    let b = Browser::start(dir, a.insecure).await?;
    // Any page of the origin that loads nothing else: the session route answers 401 JSON.
    b.goto(&format!("{}/api/v1/session", a.base)).await?;
    b.add_cookie("pharos_session", &cookie).await?;
    Ok(b)
}

// ---------------------------------------------------------------------------------------------
// Figures.

type Sample = BTreeMap<String, f64>;

/// The protocol the console's HTML came over (`nextHopProtocol`: `http/1.1`, `h2`).
static PROTOCOL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Bytes and requests of a load from its resource timing: the page (document + assets) and the
/// API calls.
fn transfer(t: &Value, out: &mut Sample, prefix: &str, until: Option<f64>) {
    let nav = &t["nav"];
    let mut page = num(&nav["transferSize"]).unwrap_or(0.0);
    let mut page_body = num(&nav["encodedBodySize"]).unwrap_or(0.0);
    let mut page_n = 1.0;
    let (mut api, mut api_n, mut refused) = (0.0, 0.0, 0.0);
    for r in t["res"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap_or_default();
        let path = name
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        let tr = num(&r["transfer"]).unwrap_or(0.0);
        if path.starts_with("/api/") {
            // The API calls made until the page was complete (not its later refreshes).
            if until.is_some_and(|u| num(&r["start"]).unwrap_or(0.0) > u) {
                continue;
            }
            api += tr;
            api_n += 1.0;
            if r["status"].as_u64() == Some(503) {
                refused += 1.0;
            }
        } else {
            page += tr;
            page_body += num(&r["encoded"]).unwrap_or(0.0);
            page_n += 1.0;
        }
    }
    out.insert(format!("{prefix}page_kb"), page / 1024.0);
    out.insert(format!("{prefix}page_body_kb"), page_body / 1024.0);
    out.insert(format!("{prefix}page_requests"), page_n);
    out.insert(format!("{prefix}api_kb"), api / 1024.0);
    out.insert(format!("{prefix}api_requests"), api_n);
    out.insert(format!("{prefix}api_refused_503"), refused);
}

/// Duration (ms) of the API requests of a load whose path starts with `path`: the longest.
fn api_ms(t: &Value, path: &str) -> Option<f64> {
    let mut best: Option<f64> = None;
    for r in t["res"].as_array().into_iter().flatten() {
        let name = r["name"].as_str().unwrap_or_default();
        if name.contains(path) {
            let d = num(&r["end"]).unwrap_or(0.0) - num(&r["start"]).unwrap_or(0.0);
            best = Some(best.map_or(d, |b: f64| b.max(d)));
        }
    }
    best
}

fn mark(m: &Value, k: &str) -> Option<f64> {
    m.get(k).and_then(num)
}

/// The overview: load `url`, wait for its panels, note the figures under `prefix`.
async fn overview(b: &Browser, url: &str, s: &mut Sample, prefix: &str) -> Result<()> {
    b.goto(url).await?;
    // Time to interactive first (60 s at most), then the other panels (10 s more at most).
    b.marks(&["attacks", "talkers"], Duration::from_secs(60))
        .await?;
    let m = b
        .marks(
            &["attacks", "talkers", "targets", "traffic", "nsf", "alarms"],
            Duration::from_secs(10),
        )
        .await?;
    let t = b.exec(TIMING_JS).await?;
    // What the page shows as an error, if anything (e.g. a flow query refused too often).
    let errors = b
        .exec("return [...document.querySelectorAll('#page .error:not([hidden]), #page tr.error')].map((e) => e.textContent.trim()).filter((x) => x)")
        .await?;
    if errors.as_array().is_some_and(|a| !a.is_empty()) {
        eprintln!("   {prefix}errors shown: {errors}");
    }
    let nav = &t["nav"];
    if let Some(p) = nav["nextHopProtocol"].as_str() {
        let _ = PROTOCOL.set(p.to_string());
    }
    for (k, f) in [
        ("response_end", "responseEnd"),
        ("dom_interactive", "domInteractive"),
        ("load_end", "loadEventEnd"),
    ] {
        if let Some(v) = num(&nav[f]) {
            s.insert(format!("{prefix}{k}"), v);
        }
    }
    let (at, tt) = (mark(&m, "attacks"), mark(&m, "talkers"));
    if let (Some(x), Some(y)) = (at, tt) {
        s.insert(format!("{prefix}tti"), x.max(y));
    }
    let mut all: Option<f64> = Some(0.0);
    for k in ["attacks", "talkers", "targets", "traffic", "nsf", "alarms"] {
        match mark(&m, k) {
            Some(v) => {
                s.insert(format!("{prefix}mark_{k}"), v);
                all = all.map(|a| a.max(v));
            }
            None => all = None,
        }
    }
    if let Some(v) = all {
        s.insert(format!("{prefix}all_panels"), v);
    }
    if let Some(v) = mark(&m, "attack_rows") {
        s.insert(format!("{prefix}mark_attack_rows"), v);
    }
    transfer(&t, s, prefix, all.or(at.zip(tt).map(|(x, y)| x.max(y))));
    for (k, p) in [
        ("api_overview_ms", "/api/v1/overview"),
        ("api_traffic_ms", "/api/v1/traffic"),
        ("api_top_ms", "/api/v1/flows/top"),
        ("api_series_ms", "/api/v1/flows/series"),
        ("api_messages_ms", "/api/v1/messages"),
        ("api_nsfs_ms", "/api/v1/nsfs"),
    ] {
        if let Some(v) = api_ms(&t, p) {
            s.insert(format!("{prefix}{k}"), v);
        }
    }
    Ok(())
}

async fn static_run(a: &Args, run: usize) -> Result<Sample> {
    let mut s = Sample::new();
    let b = logged_in_browser(a, &a.work.join(format!("static-{run}"))).await?;
    // 1. Overview, cold cache.
    overview(&b, &format!("{}/ui/", a.base), &mut s, "ov_").await?;
    // 2. Events by the navigation link (client-side route).
    let t0 = b
        .exec("const t = performance.now(); document.querySelector('nav a[data-page=\"events\"]').click(); return t;")
        .await?;
    let m = b.marks(&["ev_rows"], Duration::from_secs(60)).await?;
    if let (Some(t0), Some(t1)) = (num(&t0), mark(&m, "ev_rows")) {
        s.insert("ev_click_rows".into(), t1 - t0);
    }
    // 3. Flows by URL.
    b.goto(&format!("{}/ui/flows", a.base)).await?;
    let m = b
        .marks(&["fl_top", "fl_list"], Duration::from_secs(120))
        .await?;
    let t = b.exec(TIMING_JS).await?;
    if let Some(v) = mark(&m, "fl_top") {
        s.insert("fl_top".into(), v);
    }
    if let Some(v) = mark(&m, "fl_list") {
        s.insert("fl_list".into(), v);
    }
    for (k, p) in [
        ("fl_api_top_ms", "/api/v1/flows/top"),
        ("fl_api_series_ms", "/api/v1/flows/series"),
        ("fl_api_query_ms", "/api/v1/flows/query"),
    ] {
        if let Some(v) = api_ms(&t, p) {
            s.insert(k.into(), v);
        }
    }
    let status = b
        .exec("const e = document.getElementById('fl-status'); return e ? e.textContent : ''")
        .await?;
    eprintln!(
        "   flows page status: {}",
        status.as_str().unwrap_or_default()
    );
    // 4. Events by URL.
    b.goto(&format!("{}/ui/events", a.base)).await?;
    let m = b.marks(&["ev_rows"], Duration::from_secs(60)).await?;
    let t = b.exec(TIMING_JS).await?;
    if let Some(v) = mark(&m, "ev_rows") {
        s.insert("ev_load_rows".into(), v);
    }
    if let Some(v) = api_ms(&t, "/api/v1/messages") {
        s.insert("ev_api_messages_ms".into(), v);
    }
    let rows = b
        .exec("return document.querySelectorAll('#ev-table tr[data-event-id]').length")
        .await?;
    s.insert("ev_rows_shown".into(), num(&rows).unwrap_or(0.0));
    // 5. Overview again, assets cached.
    overview(&b, &format!("{}/ui/", a.base), &mut s, "warm_").await?;
    b.quit().await;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Under ingest.

/// A call of the overview: its name, path and query.
type ApiCall = (&'static str, String, Vec<(&'static str, String)>);

/// The overview's API calls, timed from this client one after the other, a round every 5 s,
/// until `stop`; a flow query refused with 503 (the server runs 2 at once) is retried after
/// Retry-After as the console does, and the time includes the wait.
async fn api_poller(a: Arc<Args>, stop: Arc<AtomicBool>) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let Ok(client) = http() else { return out };
    let calls: Vec<ApiCall> = vec![
        ("overview", "/api/v1/overview".into(), vec![]),
        (
            "traffic",
            "/api/v1/traffic".into(),
            vec![("step", "10".into()), ("top", "10".into())],
        ),
        (
            "attacks_1h",
            "/api/v1/messages".into(),
            vec![
                ("kind", "ddos".into()),
                ("from", "-1h".into()),
                ("limit", "500".into()),
            ],
        ),
    ];
    let mut refused: BTreeMap<String, f64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(3600);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let round = Instant::now();
        for (name, path, q) in &calls {
            let t0 = Instant::now();
            let mut body = None;
            for attempt in 0..5 {
                let r = client
                    .get(format!("{}{path}", a.base))
                    .bearer_auth(&a.token)
                    .query(q)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        body = r.bytes().await.ok();
                        break;
                    }
                    Ok(r)
                        if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                            && attempt < 4 =>
                    {
                        // The server runs 2 flow scans at once; the console waits Retry-After.
                        *refused.entry((*name).to_string()).or_default() += 1.0;
                        let wait = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(1)
                            .clamp(1, 5);
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                    }
                    Ok(r) => {
                        eprintln!("   {name}: {}", r.status());
                        break;
                    }
                    Err(e) => {
                        eprintln!("   {name}: {e}");
                        break;
                    }
                }
            }
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            out.entry((*name).to_string())
                .or_default()
                .push(if body.is_some() { ms } else { f64::NAN });
            // What the live view says of itself: flows/s of its newest full point (the newest
            // is still filling), the flows its top lists went through, the batches it missed.
            if *name == "traffic"
                && let Some(b) = &body
                && let Ok(v) = serde_json::from_slice::<Value>(b)
            {
                if !out.contains_key("live_flows_per_s")
                    && !a.networks.is_empty()
                    && v["networks"] != json!(a.networks)
                {
                    eprintln!(
                        "   the live view splits in/out by {}, not by --networks {:?}",
                        v["networks"], a.networks
                    );
                }
                let fps = v["points"]["total"]["flows_per_s"]
                    .as_array()
                    .and_then(|a| a.len().checked_sub(2).and_then(|i| a[i].as_f64()));
                if let Some(f) = fps {
                    out.entry("live_flows_per_s".into()).or_default().push(f);
                }
                if let Some(f) = v["top"]["total"]["flows"].as_f64() {
                    out.entry("flows_in_top_window".into()).or_default().push(f);
                }
                if let Some(d) = v["dropped_batches"].as_f64() {
                    out.entry("live_dropped_batches".into())
                        .or_default()
                        .push(d);
                }
            }
        }
        let wait = Duration::from_secs(5).saturating_sub(round.elapsed());
        tokio::time::sleep(wait).await;
    }
    for (k, n) in refused {
        out.insert(format!("{k}_refused_503"), vec![n]);
    }
    out
}

/// Pushes a critical alarm; returns its id and the push's round trip (ms).
async fn push_alarm(a: &Args, n: usize) -> Result<(String, f64)> {
    let doc = json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "bench-probe",
        "message": format!("console bench probe {n}"),
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "severity": "critical", "usage": 99, "threshold": 80}
    }});
    let t0 = Instant::now();
    let r = http()?
        .post(format!("{}/api/v1/push", a.base))
        .bearer_auth(&a.token)
        .json(&doc)
        .send()
        .await?;
    let v: Value = r.json().await?;
    let id = v["ids"][0]
        .as_str()
        .ok_or_else(|| anyhow!("push answered {v}"))?
        .to_string();
    Ok((id, t0.elapsed().as_secs_f64() * 1000.0))
}

async fn ingest(a: Arc<Args>) -> Result<(Vec<Sample>, Sample, BTreeMap<String, Vec<f64>>)> {
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(api_poller(a.clone(), stop.clone()));
    let monitor = logged_in_browser(&a, &a.work.join("monitor")).await?;
    let mut mon = Sample::new();
    overview(&monitor, &format!("{}/ui/", a.base), &mut mon, "monitor_").await?;
    let mut runs = Vec::new();
    let mut alarm_ms = Vec::new();
    let mut push_ms = Vec::new();
    let mut n = 0usize;
    let min = Duration::from_secs(a.seconds);
    let hard = Instant::now() + min + Duration::from_secs(900);
    while (n < a.runs || started.elapsed() < min) && Instant::now() < hard {
        if n < a.runs {
            let mut s = Sample::new();
            let b = logged_in_browser(&a, &a.work.join(format!("ingest-{n}"))).await?;
            let r = overview(&b, &format!("{}/ui/", a.base), &mut s, "ov_").await;
            b.quit().await;
            r?;
            eprintln!(
                "   ingest run {}: tti {:.0} ms, all panels {:.0} ms",
                n + 1,
                s.get("ov_tti").copied().unwrap_or(f64::NAN),
                s.get("ov_all_panels").copied().unwrap_or(f64::NAN)
            );
            runs.push(s);
        } else {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        // An alarm, and how long until the open overview shows it.
        let t0 = Instant::now();
        let (id, rtt) = push_alarm(&a, n).await?;
        push_ms.push(rtt);
        let sel = format!("return !!document.querySelector('#alarms li[data-event-id=\"{id}\"]')");
        let deadline = t0 + Duration::from_secs(30);
        let mut seen = f64::NAN;
        while Instant::now() < deadline {
            if monitor.exec(&sel).await? == Value::Bool(true) {
                seen = t0.elapsed().as_secs_f64() * 1000.0;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("   alarm {id}: pushed in {rtt:.0} ms, shown after {seen:.0} ms");
        alarm_ms.push(seen);
        n += 1;
    }
    // SSE: the changes of #live-status on the monitor page.
    let live = monitor.exec("return window.__pharosLive || []").await?;
    let now = monitor
        .exec("return performance.now()")
        .await?
        .as_f64()
        .unwrap_or(0.0);
    let mut offline_ms = 0.0;
    let mut drops = 0.0;
    let mut first_live: Option<f64> = None;
    let ev: Vec<(f64, String)> = live
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e[0].as_f64().unwrap_or(0.0),
                e[2].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (i, (t, text)) in ev.iter().enumerate() {
        if text == "live" && first_live.is_none() {
            first_live = Some(*t);
        }
        if first_live.is_some() && text != "live" {
            drops += 1.0;
            let end = ev.get(i + 1).map(|x| x.0).unwrap_or(now);
            offline_ms += end - t;
        }
    }
    mon.insert(
        "sse_watched_s".into(),
        (now - first_live.unwrap_or(now)) / 1000.0,
    );
    mon.insert("sse_disconnects".into(), drops);
    mon.insert("sse_offline_ms".into(), offline_ms);
    let last = ev.last().map(|x| x.1.clone()).unwrap_or_default();
    mon.insert(
        "sse_live_at_end".into(),
        if last == "live" { 1.0 } else { 0.0 },
    );
    monitor.quit().await;
    stop.store(true, Ordering::Relaxed);
    let mut api = poller.await.unwrap_or_default();
    api.insert("alarm_shown_after_push_ms".into(), alarm_ms);
    api.insert("push_round_trip_ms".into(), push_ms);
    mon.insert("duration_s".into(), started.elapsed().as_secs_f64());
    Ok((runs, mon, api))
}

/// The pages' heaviest API calls one at a time, without a browser (3 times each, once when the
/// first takes over 10 s): what the server alone takes. Prints a table.
async fn api_alone(a: &Args) -> Result<BTreeMap<String, Vec<f64>>> {
    let client = http()?;
    let calls: Vec<ApiCall> = vec![
        (
            "overview: live traffic view and top lists",
            "/api/v1/traffic".into(),
            vec![("step", "10".into()), ("top", "10".into())],
        ),
        (
            "events: first page, last 24 hours",
            "/api/v1/messages".into(),
            vec![("from", "last 24 hours".into()), ("limit", "100".into())],
        ),
        (
            "flows: top-10 dstip by bytes, 1 h",
            "/api/v1/flows/top".into(),
            vec![
                ("key", "dstip".into()),
                ("from", "-1h".into()),
                ("n", "10".into()),
                ("by", "bytes".into()),
            ],
        ),
        (
            "flows: series of the top-8 dstip, 1 h by 1 min",
            "/api/v1/flows/series".into(),
            vec![
                ("key", "dstip".into()),
                ("from", "-1h".into()),
                ("n", "8".into()),
                ("by", "bytes".into()),
                ("interval", "1m".into()),
            ],
        ),
        (
            "flows: 100 largest flows, 1 h",
            "/api/v1/flows/query".into(),
            vec![
                ("from", "-1h".into()),
                ("limit", "100".into()),
                ("order", "bytes".into()),
            ],
        ),
    ];
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    println!("\nThe same API calls alone, one at a time, no browser (ms)\n");
    println!("| call | n | median | min | max |\n|---|---|---|---|---|");
    for (label, path, q) in calls {
        let mut v = Vec::new();
        for _ in 0..3 {
            // A 503 (2 scans running, e.g. those of a page just left) is retried every second
            // for 60 s at most; the time is that of the attempt that ran.
            let start = Instant::now();
            let mut ok = false;
            let mut t0 = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                t0 = Instant::now();
                let r = client
                    .get(format!("{}{path}", a.base))
                    .bearer_auth(&a.token)
                    .query(&q)
                    .send()
                    .await?;
                if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                ok = r.status().is_success();
                let _ = r.bytes().await;
                break;
            }
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            v.push(if ok { ms } else { f64::NAN });
            if ms > 10_000.0 {
                break;
            }
        }
        if let Some((med, lo, hi, n, _)) = stats(&v) {
            println!(
                "| {label} | {n} | {} | {} | {} |",
                fmt(med),
                fmt(lo),
                fmt(hi)
            );
        }
        out.insert(label.to_string(), v);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Output.

fn stats(v: &[f64]) -> Option<(f64, f64, f64, usize, usize)> {
    let mut ok: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if ok.is_empty() {
        return None;
    }
    ok.sort_by(|a, b| a.total_cmp(b));
    let n = ok.len();
    let med = if n % 2 == 1 {
        ok[n / 2]
    } else {
        (ok[n / 2 - 1] + ok[n / 2]) / 2.0
    };
    Some((med, ok[0], ok[n - 1], n, v.len() - n))
}

fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Labels of the figures, in print order.
const LABELS: &[(&str, &str)] = &[
    (
        "ov_response_end",
        "overview, cold cache: responseEnd of the HTML (ms)",
    ),
    ("ov_dom_interactive", "overview, cold: domInteractive (ms)"),
    ("ov_load_end", "overview, cold: loadEventEnd (ms)"),
    (
        "ov_tti",
        "overview, cold: **time to interactive** (#attacks and #top-talkers filled, ms)",
    ),
    ("ov_mark_attacks", "overview, cold: #attacks filled (ms)"),
    (
        "ov_mark_talkers",
        "overview, cold: #top-talkers filled (ms)",
    ),
    (
        "ov_mark_targets",
        "overview, cold: #top-targets filled (ms)",
    ),
    (
        "ov_mark_traffic",
        "overview, cold: #traffic-chart drawn (ms)",
    ),
    ("ov_mark_nsf", "overview, cold: #nsf-health filled (ms)"),
    ("ov_mark_alarms", "overview, cold: #alarms filled (ms)"),
    ("ov_all_panels", "overview, cold: every panel filled (ms)"),
    (
        "ov_page_kb",
        "overview, cold: **page transfer** (HTML + assets, compressed, with headers, KiB)",
    ),
    (
        "ov_page_body_kb",
        "overview, cold: page bodies as sent (encodedBodySize, KiB)",
    ),
    ("ov_page_requests", "overview, cold: page requests"),
    ("ov_api_kb", "overview, cold: API transfer (KiB)"),
    (
        "ov_api_requests",
        "overview, cold: API requests (started until every panel is filled)",
    ),
    (
        "ov_api_refused_503",
        "overview, cold: of those, refused with 503 (2 flow scans running) and retried",
    ),
    (
        "ov_api_overview_ms",
        "overview, cold: GET /api/v1/overview (ms, browser)",
    ),
    (
        "ov_api_traffic_ms",
        "overview, cold: GET /api/v1/traffic (ms, browser)",
    ),
    (
        "ov_api_top_ms",
        "overview, cold: slowest GET /api/v1/flows/top (ms, browser)",
    ),
    (
        "ov_api_series_ms",
        "overview, cold: slowest GET /api/v1/flows/series (ms, browser)",
    ),
    (
        "ov_api_messages_ms",
        "overview, cold: slowest GET /api/v1/messages (ms, browser)",
    ),
    (
        "ov_api_nsfs_ms",
        "overview, cold: GET /api/v1/nsfs (ms, browser)",
    ),
    ("warm_tti", "overview, warm cache: time to interactive (ms)"),
    ("warm_all_panels", "overview, warm: every panel filled (ms)"),
    ("warm_page_kb", "overview, warm: page transfer (KiB)"),
    (
        "ev_click_rows",
        "events, by the nav link: click until the first page of rows (ms)",
    ),
    (
        "ev_load_rows",
        "events, by URL: **navigation until the first page of rows** (ms)",
    ),
    (
        "ev_api_messages_ms",
        "events, by URL: GET /api/v1/messages (ms, browser)",
    ),
    ("ev_rows_shown", "events: rows on the first page"),
    (
        "fl_top",
        "flows, by URL: navigation until the top-10 table (ms)",
    ),
    (
        "fl_list",
        "flows, by URL: navigation until the flows list (ms)",
    ),
    (
        "fl_api_top_ms",
        "flows: GET /api/v1/flows/top, dstip by bytes, last hour (ms, browser)",
    ),
    (
        "fl_api_series_ms",
        "flows: GET /api/v1/flows/series, 8 keys (ms, browser)",
    ),
    (
        "fl_api_query_ms",
        "flows: GET /api/v1/flows/query, 100 largest (ms, browser)",
    ),
];

fn table(title: &str, samples: &[Sample]) -> String {
    let proto = PROTOCOL.get().map(String::as_str).unwrap_or("?");
    let mut out = format!(
        "\n{title} ({} runs, {proto})\n\n| figure | median | min | max |\n|---|---|---|---|\n",
        samples.len()
    );
    // The labelled figures only; the JSON report has every one.
    for (k, _) in LABELS {
        let k = k.to_string();
        let v: Vec<f64> = samples.iter().filter_map(|s| s.get(&k).copied()).collect();
        let Some((med, lo, hi, n, _)) = stats(&v) else {
            continue;
        };
        let label = LABELS
            .iter()
            .find(|(x, _)| *x == k)
            .map(|(_, l)| l.to_string())
            .unwrap_or(k.clone());
        let note = if n < samples.len() {
            format!(" ({n} of {} runs)", samples.len())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {label}{note} | {} | {} | {} |\n",
            fmt(med),
            fmt(lo),
            fmt(hi)
        ));
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = Arc::new(args()?);
    std::fs::create_dir_all(&a.work)?;
    let ov = get_json(&a, "/api/v1/overview").await?;
    eprintln!("== counters: {}", ov["counters"]);
    let window = get_json(&a, "/api/v1/flows/top?key=proto&from=-1h&n=300&by=flows").await?;
    eprintln!("== flows in the last hour: {}", window["total"]["flows"]);
    println!(
        "\nAt the start: {} flows in the last hour (GET /api/v1/flows/top from=-1h); counters {}",
        window["total"]["flows"], ov["counters"]
    );
    let mut report = json!({"mode": a.mode, "counters": ov["counters"], "flows_last_hour": window["total"]["flows"]});
    match a.mode.as_str() {
        "static" => {
            let mut samples = Vec::new();
            for run in 0..a.runs {
                let s = static_run(&a, run)
                    .await
                    .with_context(|| format!("run {}", run + 1))?;
                eprintln!(
                    "   run {}: overview tti {:.0} ms, page {:.1} KiB; events {:.0} ms (click {:.0} ms); flows top {:.0} ms",
                    run + 1,
                    s.get("ov_tti").copied().unwrap_or(f64::NAN),
                    s.get("ov_page_kb").copied().unwrap_or(f64::NAN),
                    s.get("ev_load_rows").copied().unwrap_or(f64::NAN),
                    s.get("ev_click_rows").copied().unwrap_or(f64::NAN),
                    s.get("fl_top").copied().unwrap_or(f64::NAN),
                );
                samples.push(s);
            }
            print!("{}", table("Console, no ingest", &samples));
            report["runs"] = json!(samples);
            let alone = api_alone(&a).await?;
            report["api_alone"] = json!(alone);
        }
        "ingest" => {
            let (runs, mon, api) = ingest(a.clone()).await?;
            print!(
                "{}",
                table("Overview during the ingest, a fresh browser per run", &runs)
            );
            println!(
                "\nThe overview's API calls during the ingest (this client, one after the other, a round every 5 s; ms, 503 retries included)\n"
            );
            println!(
                "| call | n | median | min | max | failed | 503 retries |\n|---|---|---|---|---|---|---|"
            );
            let calls = [
                ("overview", "GET /api/v1/overview"),
                (
                    "traffic",
                    "GET /api/v1/traffic step=10 top=10 (traffic chart, top talkers and targets)",
                ),
                (
                    "attacks_1h",
                    "GET /api/v1/messages kind=ddos from=-1h limit=500 (attacks)",
                ),
                ("push_round_trip_ms", "POST /api/v1/push of one alarm"),
                (
                    "alarm_shown_after_push_ms",
                    "**alarm pushed until shown** in the open overview (SSE, no reload)",
                ),
            ];
            for (k, label) in calls {
                let v = api.get(k).cloned().unwrap_or_default();
                let retries = api
                    .get(&format!("{k}_refused_503"))
                    .and_then(|v| v.first().copied())
                    .unwrap_or(0.0);
                if let Some((med, lo, hi, n, bad)) = stats(&v) {
                    println!(
                        "| {label} | {n} | {} | {} | {} | {bad} | {retries} |",
                        fmt(med),
                        fmt(lo),
                        fmt(hi)
                    );
                } else {
                    println!("| {label} | 0 | - | - | - | {} | {retries} |", v.len());
                }
            }
            let series = |k: &str| api.get(k).map(Vec::as_slice).unwrap_or(&[]).to_vec();
            if let Some((med, lo, hi, n, _)) = stats(&series("live_flows_per_s")) {
                println!(
                    "\nThe live view's flows/s (its newest full 10 s point, {n} calls): median {med:.0}, min {lo:.0}, max {hi:.0}."
                );
            }
            if let Some((_, lo, hi, n, _)) = stats(&series("flows_in_top_window")) {
                println!(
                    "Flows in the live top lists' window: {lo:.0} at the first of {n} calls, {hi:.0} at most."
                );
            }
            let missed = series("live_dropped_batches");
            if let (Some(first), Some(last)) = (missed.first(), missed.last()) {
                println!(
                    "Flow batches the live view missed (its queue full), since the start: {first:.0} at the first call, {last:.0} at the last."
                );
            }
            let g = |k: &str| mon.get(k).copied().unwrap_or(f64::NAN);
            println!(
                "\nSSE (#live-status of the overview kept open for {:.0} s of the {:.0} s): {} disconnects, offline {:.0} ms in all, {} at the end.",
                g("sse_watched_s"),
                g("duration_s"),
                g("sse_disconnects"),
                g("sse_offline_ms"),
                if g("sse_live_at_end") == 1.0 {
                    "live"
                } else {
                    "NOT live"
                }
            );
            report["runs"] = json!(runs);
            report["monitor"] = json!(mon);
            report["api"] = json!(api);
        }
        m => bail!("unknown --mode {m}"),
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}
