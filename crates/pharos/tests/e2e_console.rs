//! End-to-end: the web console (issue 19) in a real headless Chromium driven over WebDriver,
//! against a real `pharos run` fed by a replayed attack capture (NetFlow v5 through detection)
//! and syslog lines; plus the console's security rules checked with plain HTTP: no page or API
//! route without a session or token, CSRF on state-changing requests with a session cookie, the
//! Content-Security-Policy, and stored markup shown as text.
//!
//! The browser tests need `/usr/bin/chromedriver` and `/usr/bin/chromium` (Debian's
//! `chromium-driver` and `chromium`): without them they skip, or fail under
//! `PHAROS_REQUIRE_ALL=1`. Screenshots of every page go to `target/ui-screenshots/` (described in
//! docs/console.md).

mod attack;
mod support;

use attack::{Flow, ICMP_VICTIM, UPTIME, background, ntp_flood, syn_flood, v5_datagram};
mod webdriver;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, LOCATION};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Instance, auth_headers, client};
use webdriver::{Browser, Options};

// ---------------------------------------------------------------------------------------------
// The attack capture (as e2e_detect builds it): background traffic plus an NTP reflection, a SYN
// flood and an ICMP flood against three hosts of 198.51.100.0/24.

const VICTIMS: [&str; 3] = ["198.51.100.10", "198.51.100.20", "198.51.100.30"];

fn icmp_flood(s: u32) -> Vec<Flow> {
    (0..30)
        .map(|j| Flow {
            src: [100, 65, (s % 256) as u8, j as u8 + 1],
            dst: ICMP_VICTIM,
            sport: 0,
            dport: 0x0800,
            proto: 1,
            flags: 0,
            packets: 500,
            bytes: 500 * 84,
        })
        .collect()
}

/// Writes `secs` seconds of exports from 192.0.2.10 starting at `t0` (Unix seconds).
fn write_capture(path: &Path, t0: u32, secs: u32) {
    let mut dgs = Vec::new();
    let mut seq = 0;
    for s in 0..secs {
        let (uptime, unix) = (UPTIME + s * 1000, t0 + s);
        for (i, flows) in [background(s), ntp_flood(s), syn_flood(s), icmp_flood(s)]
            .iter()
            .enumerate()
        {
            dgs.push((unix, i as u32 * 1000, v5_datagram(seq, uptime, unix, flows)));
            seq += flows.len() as u32;
        }
    }
    support::write_udp_pcap(
        path,
        dgs.into_iter()
            .map(|(secs, usec, payload)| support::PcapUdp {
                src: "192.0.2.10:40000".parse().unwrap(),
                dst: "192.0.2.1:2055".parse().unwrap(),
                secs,
                usec,
                payload,
            }),
    );
}

/// Replays eight seconds of the attack capture, stamped now, to the daemon's flow port at the
/// capture's pace (blocking: run it on a thread). The stderr of `pharos replay` on failure.
fn replay_attack(flow_addr: SocketAddr, dir: &Path) -> Result<(), String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        + 1;
    let pcap = dir.join("attack.pcap");
    write_capture(&pcap, now, 8);
    let out = Command::new(support::bin())
        .arg("replay")
        .arg(&pcap)
        .args(["--to", &flow_addr.to_string(), "--rate", "3"])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon: detection on a flow port, syslog over UDP, no request rate limit (the browser and
// the test's polling share 127.0.0.1).

const CONFIG: &str = "rate_per_second = 0\n\
[flow]\nlisten = [\"127.0.0.1:0\"]\n\
[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\nwindow = \"2s\"\ndelay = \"2s\"\nhold = \"10m\"\n\
thresholds.syn = { pps = 5000 }\nthresholds.ntp = { pps = 2000 }\nthresholds.icmpv4 = { pps = 2500 }\n\
[syslog]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n";

/// The analyst's and the viewer's token names.
const ANALYST: &str = "ana";
const VIEWER: &str = "vic";

/// The markup every stored string is tried with: it sets `window.__xss` if it ever runs.
const XSS: &str = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>";
/// The NSF name of a pushed alarm: markup too.
const XSS_NSF: &str = "<img src=x onerror=window.__xss=3>fw-x";

struct Console {
    inst: Instance,
    analyst: String,
    viewer: String,
}

fn anonymous() -> reqwest::Client {
    support::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn with_token(token: &str) -> reqwest::Client {
    support::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(auth_headers(token))
        .build()
        .unwrap()
}

async fn create_token(inst: &Instance, name: &str, role: &str) -> String {
    let r = client()
        .post(inst.url("/api/v1/tokens"))
        .json(&json!({"name": name, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "create token {name}");
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn start_console(extra: &str) -> Console {
    let inst = Instance::start(&format!("{CONFIG}{extra}"));
    let analyst = create_token(&inst, ANALYST, "analyst").await;
    let viewer = create_token(&inst, VIEWER, "viewer").await;
    Console {
        inst,
        analyst,
        viewer,
    }
}

fn syslog_udp(inst: &Instance) -> SocketAddr {
    let text =
        std::fs::read_to_string(inst.dir.path().join("data/syslog.addr")).expect("syslog.addr");
    text.lines()
        .find_map(|l| l.strip_prefix("udp "))
        .expect("a udp line in syslog.addr")
        .parse()
        .unwrap()
}

/// The raw text of a stored message (its envelope's `raw`).
fn raw_of(m: &Value) -> Option<&str> {
    m["notification"]
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|n| n["pharos-i2nsf-extensions:envelope"]["raw"].as_str())
}

/// Every message of the last two hours (admin token).
async fn recent(inst: &Instance) -> Vec<Value> {
    support::messages(inst, "limit=1000&from=-2h").await
}

/// Waits up to `timeout` for `probe` to give `Some`; fails naming `what`.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends two syslog lines over UDP: a plain sshd failure and one whose text is markup (`XSS`);
/// pushes a system alarm whose NSF name is markup. Waits until all three are stored and returns
/// (the markup line's raw text, its id, the alarm's id).
async fn feed_markup(inst: &Instance) -> (String, String, String) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let plain = format!(
        "<38>1 {now} bastion sshd 4711 - - Failed password for root from 192.0.2.33 port 40112 ssh2"
    );
    let markup = format!("<165>1 {now} web01 app 42 - - login form said {XSS} xss-probe");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for l in [&plain, &markup] {
        udp.send_to(l.as_bytes(), syslog_udp(inst)).unwrap();
    }
    let v = support::push_ok(
        inst,
        json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
            "nsf-name": XSS_NSF,
            "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "usage": 97, "threshold": 80}
        }})
        .to_string(),
    )
    .await;
    let alarm = v["ids"][0].as_str().expect("an id").to_string();
    let id = eventually(
        Duration::from_secs(20),
        "the syslog lines stored",
        || async {
            let items = recent(inst).await;
            let find = |raw: &str| {
                items
                    .iter()
                    .find(|m| raw_of(m) == Some(raw))
                    .and_then(|m| m["id"].as_str().map(str::to_string))
            };
            find(&plain)?;
            find(&markup)
        },
    )
    .await;
    (markup, id, alarm)
}

// ---------------------------------------------------------------------------------------------
// Browser helpers.

/// The browser tests' precondition: chromedriver and chromium installed (else skip, or fail
/// under PHAROS_REQUIRE_ALL=1).
fn browser_available() -> bool {
    match webdriver::missing() {
        None => true,
        Some(why) => {
            pharos_model::conformance::skip(&format!("console browser test: {why}"));
            false
        }
    }
}

/// `target/ui-screenshots/`: under CARGO_TARGET_DIR when set, else the target directory this
/// test binary was built in (`target/debug/deps/e2e_console-...`).
fn screenshot_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        let t = if t.is_absolute() {
            t
        } else {
            support::repo_dir().join(t)
        };
        return t.join("ui-screenshots");
    }
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| support::repo_dir().join("target"));
    target.join("ui-screenshots")
}

async fn shot(b: &Browser, page: &str) {
    // Charts and fonts settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The whole page (the window as tall as the page, up to 3,000 px), then back to 1400x900.
    b.full_page_screenshot(
        &screenshot_dir().join(format!("{page}.png")),
        1400,
        900,
        3000,
    )
    .await;
}

const WAIT: Duration = Duration::from_secs(15);

/// Logs in through the login page with `token`; waits for the shell with `#whoami` naming `name`
/// and `role`.
async fn login(b: &Browser, inst: &Instance, token: &str, name: &str, role: &str) {
    b.goto(&inst.url("/ui/login")).await;
    b.wait_for("#token", WAIT).await;
    b.fill("#token", token).await;
    b.click_css("#login-submit").await;
    let who = b
        .wait_js(
            "location.pathname.startsWith('/ui/') && location.pathname !== '/ui/login' \
             && document.querySelector('#whoami') && document.querySelector('#whoami').textContent",
            WAIT,
            &format!("the console shell with #whoami after logging in as {name}"),
        )
        .await;
    let who = who.as_str().unwrap_or_default();
    assert!(
        who.contains(name) && who.contains(role),
        "#whoami should name {name} and {role}: {who:?}"
    );
}

async fn logout(b: &Browser) {
    b.click_css("#logout").await;
    b.wait_js(
        "location.pathname === '/ui/login'",
        WAIT,
        "the login page after #logout",
    )
    .await;
}

/// Clicks `nav a[data-page=page]` and waits for the path and the element `css` of the page.
async fn nav(b: &Browser, page: &str, path: &str, css: &str) {
    b.click_css(&format!("nav a[data-page=\"{page}\"]")).await;
    b.wait_js(
        &format!("location.pathname === '{path}' && document.querySelector('{css}')"),
        WAIT,
        &format!("{path} with {css} after clicking the {page} link"),
    )
    .await;
}

/// JavaScript: the data-event-id of every row under `css`.
fn row_ids_js(css: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll('{css} tr[data-event-id]')).map(e => e.getAttribute('data-event-id'))"
    )
}

/// JavaScript: whether an svg under `css` has a drawn series: a path or polyline with at least
/// `points` points (pairs of numbers).
fn drawn_series_js(css: &str, points: usize) -> String {
    format!(
        "(() => {{ const svg = document.querySelector('{css}'); if (!svg) return null; \
         let best = 0; \
         for (const s of svg.querySelectorAll('path, polyline')) {{ \
           const d = s.getAttribute('d') || s.getAttribute('points') || ''; \
           const n = (d.match(/-?[0-9]+(\\.[0-9]+)?(e-?[0-9]+)?/g) || []).length / 2; \
           if (n > best) best = n; }} \
         return best >= {points} ? best : null; }})()"
    )
}

/// What markup from the data could have done to the page: `window.__xss`, elements with an
/// `onerror` attribute, `img[src=x]`, inline scripts, scripts from elsewhere than the assets.
async fn injected(b: &Browser) -> Value {
    b.exec(
        "return {
           xss: window.__xss === undefined ? null : window.__xss,
           onerror: document.querySelectorAll('[onerror]').length,
           img_x: document.querySelectorAll('img[src=\"x\"]').length,
           inline_scripts: Array.from(document.scripts).filter(s => !s.src).length,
           foreign_scripts: Array.from(document.scripts)
             .filter(s => s.src && !new URL(s.src).pathname.startsWith('/ui/assets/')).length,
         };",
        json!([]),
    )
    .await
}

fn assert_clean(v: &Value, where_: &str) {
    assert_eq!(
        v,
        &json!({"xss": null, "onerror": 0, "img_x": 0, "inline_scripts": 0, "foreign_scripts": 0}),
        "markup from the data was turned into elements on the {where_}"
    );
}

fn millis(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .timestamp_millis()
}

// ---------------------------------------------------------------------------------------------
// The browser test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser_live_attack_events_ack_ddos_chart_flows_admin_viewer_and_markup() {
    if !browser_available() {
        return;
    }
    let c = start_console("").await;
    let inst = &c.inst;
    let (markup_raw, markup_id, alarm_id) = feed_markup(inst).await;
    let mut b = Browser::start(Options::default()).await;
    let _ = std::fs::remove_file(screenshot_dir().join("failure.png"));
    b.screenshot_failures_to(&screenshot_dir().join("failure.png"));

    // ---- Login: a page without a session goes to the login page, a wrong token is refused.
    b.goto(&inst.url("/ui/events")).await;
    b.wait_js(
        "location.pathname === '/ui/login' && new URLSearchParams(location.search).get('next') === '/ui/events'",
        WAIT,
        "/ui/events without a session redirected to /ui/login?next=/ui/events",
    )
    .await;
    let token = b.wait_for("#token", WAIT).await;
    assert_eq!(b.attr(&token, "type").await.as_deref(), Some("password"));
    assert!(
        b.exec(
            "const t = document.querySelector('#token'); return !!(t.labels && t.labels.length) || !!t.getAttribute('aria-label');",
            json!([])
        )
        .await
            == true,
        "#token has a label"
    );
    b.fill("#token", "phr_not-a-valid-token-at-all").await;
    b.click_css("#login-submit").await;
    let err = b
        .wait_js(
            "(() => { const e = document.querySelector('#login-error'); return e && !e.hidden && e.textContent.trim(); })()",
            WAIT,
            "#login-error shown after a wrong token",
        )
        .await;
    assert_eq!(
        b.pathname().await,
        "/ui/login",
        "a wrong token stays on the login page: {err}"
    );
    shot(&b, "login").await;

    // ---- Log in as the analyst: the shell, the overview.
    // The right token on the same page: back to the page asked for (`next`).
    b.fill("#token", &c.analyst).await;
    b.click_css("#login-submit").await;
    let who = b
        .wait_js(
            "location.pathname === '/ui/events' && document.querySelector('#ev-form') \
             && document.querySelector('#whoami').textContent",
            WAIT,
            "/ui/events (the `next` of the login page) with #whoami after logging in",
        )
        .await;
    let who = who.as_str().unwrap_or_default();
    assert!(
        who.contains(ANALYST) && who.contains("analyst"),
        "#whoami names the analyst and the role: {who:?}"
    );
    b.goto(&inst.url("/ui/")).await;
    b.wait_for("#attacks", WAIT).await;
    b.wait_js(
        "document.querySelector('#live-status') && document.querySelector('#live-status').textContent.trim() === 'live'",
        WAIT,
        "#live-status `live` (the SSE stream open)",
    )
    .await;
    for id in [
        "#alarms",
        "#traffic-chart",
        "#top-talkers",
        "#top-targets",
        "#nsf-health",
    ] {
        b.get(id).await;
    }
    assert!(
        b.find_all("#attacks tr[data-event-id]").await.is_empty(),
        "no attack before the replay"
    );
    // Stamp each attack row when it appears (the browser's clock is the machine's clock), and
    // mark the document so that a reload would show.
    b.exec(
        "window.__noReload = 'still-here'; window.__seen = {};
         const stamp = () => {
           for (const tr of document.querySelectorAll('#attacks tr[data-event-id]')) {
             const id = tr.getAttribute('data-event-id');
             if (!(id in window.__seen)) window.__seen[id] = Date.now();
           }
         };
         stamp();
         new MutationObserver(stamp).observe(document.documentElement,
           {subtree: true, childList: true, attributes: true, attributeFilter: ['data-event-id']});",
        json!([]),
    )
    .await;

    // ---- Replay the attack while the overview is open.
    let (faddr, dir) = (inst.flow_addr(), inst.dir.path().to_path_buf());
    let replay = std::thread::spawn(move || replay_attack(faddr, &dir));
    // The alarms as the API stores them: id -> (victim, receive time in ms).
    let mut alarms: BTreeMap<String, (String, i64)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while alarms.len() < 3 {
        for m in support::messages(inst, "kind=ddos&limit=100").await {
            let id = m["id"].as_str().unwrap().to_string();
            let text = m["notification"].to_string();
            let victim = VICTIMS
                .iter()
                .find(|v| text.contains(&format!("\"{v}\"")) || text.contains(&format!("\"{v}/")))
                .map_or_else(String::new, |v| v.to_string());
            alarms
                .entry(id)
                .or_insert_with(|| (victim, millis(m["receive-time"].as_str().unwrap())));
        }
        assert!(
            Instant::now() < deadline,
            "three DDoS alarms stored within 60 s of the replay: {alarms:?}\n{}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let victims: BTreeSet<&str> = alarms.values().map(|(v, _)| v.as_str()).collect();
    assert_eq!(victims, VICTIMS.into_iter().collect(), "{alarms:?}");
    // Every attack row appears within 2 s of its alarm's storage, without a reload.
    let ids: Vec<String> = alarms.keys().cloned().collect();
    let seen = b
        .wait_js(
            &format!(
                "(() => {{ const want = {}; return want.every(id => id in window.__seen) ? window.__seen : null; }})()",
                json!(ids)
            ),
            Duration::from_secs(10),
            &format!("rows #attacks tr[data-event-id] for the alarms {ids:?}"),
        )
        .await;
    let mut delays = Vec::new();
    for (id, (victim, stored)) in &alarms {
        let at = seen[id].as_f64().unwrap() as i64;
        delays.push((victim.clone(), at - stored));
    }
    for (victim, d) in &delays {
        assert!(
            *d <= 2000,
            "the attack on {victim} appeared in #attacks {d} ms after its alarm was stored (at most 2000 ms): {delays:?}"
        );
    }
    eprintln!("attack rows appeared after their alarms by (ms): {delays:?}");
    assert_eq!(
        b.exec("return window.__noReload || null", json!([])).await,
        "still-here",
        "the overview was reloaded"
    );
    for (id, (victim, _)) in &alarms {
        let row = b
            .text_content(&format!("#attacks tr[data-event-id=\"{id}\"]"))
            .await
            .unwrap_or_default();
        assert!(
            row.contains(victim.as_str()),
            "the attack row {id} names its victim {victim}: {row:?}"
        );
        assert!(
            b.find(&format!("#attacks tr[data-event-id=\"{id}\"] svg"))
                .await
                .is_some(),
            "the attack row {id} has a sparkline svg"
        );
    }
    let row_syn = b
        .text_content(&format!(
            "#attacks tr[data-event-id=\"{}\"]",
            alarms
                .iter()
                .find(|(_, (v, _))| v == "198.51.100.20")
                .unwrap()
                .0
        ))
        .await
        .unwrap_or_default();
    assert!(
        row_syn.to_lowercase().contains("syn"),
        "the SYN flood row names its type: {row_syn:?}"
    );
    replay
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("pharos replay failed: {e}"));
    // NSF health lists the syslog sender and the pushed NSF (its markup name as text).
    b.wait_js(
        "document.querySelector('#nsf-health').textContent.includes('127.0.0.1')",
        WAIT,
        "the syslog sender 127.0.0.1 in #nsf-health",
    )
    .await;
    let nsfs = support::get_json(inst, "/api/v1/nsfs").await;
    if nsfs.to_string().contains("fw-x") {
        b.wait_js(
            &format!(
                "document.querySelector('#nsf-health').textContent.includes({})",
                json!(XSS_NSF)
            ),
            WAIT,
            "the pushed NSF's name, markup shown as text, in #nsf-health",
        )
        .await;
    }
    assert_clean(&injected(&b).await, "overview");

    // ---- Events: search DDoS events of the last 2 hours; the list is the API's, newest first.
    nav(&b, "events", "/ui/events", "#ev-form").await;
    let from = b.get("#ev-from").await;
    let default_from = b
        .exec("return document.querySelector('#ev-from').value", json!([]))
        .await;
    assert_eq!(default_from, "last 24 hours", "#ev-from's default");
    b.clear(&from).await;
    b.send_keys(&from, "last 2 hours").await;
    b.select("#ev-kind", "ddos").await;
    b.click_css("#ev-search").await;
    let api_order: Vec<String> =
        support::messages(inst, "kind=ddos&from=last%202%20hours&limit=100")
            .await
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(api_order.len(), 3);
    b.wait_js(
        &format!(
            "JSON.stringify({}) === {}",
            row_ids_js("#ev-table"),
            json!(serde_json::to_string(&api_order).unwrap())
        ),
        WAIT,
        &format!("#ev-table rows = the API's DDoS events, newest first: {api_order:?}"),
    )
    .await;
    let q = b
        .exec(
            "const p = new URLSearchParams(location.search); return [p.get('from'), p.get('kind')];",
            json!([]),
        )
        .await;
    assert_eq!(
        q,
        json!(["last 2 hours", "ddos"]),
        "the search is kept in the URL"
    );
    assert!(
        b.exec(
            "return !!document.querySelector('#ev-table [data-event-id] [title]')",
            json!([])
        )
        .await
            == true,
        "event times carry a title (UTC on hover)"
    );
    shot(&b, "events").await;
    // The URL is linkable: loading it again gives the same form and list.
    let url = b.url().await;
    b.goto(&url).await;
    b.wait_js(
        &format!(
            "JSON.stringify({}) === {} && document.querySelector('#ev-from').value === 'last 2 hours' \
             && document.querySelector('#ev-kind').value === 'ddos'",
            row_ids_js("#ev-table"),
            json!(serde_json::to_string(&api_order).unwrap())
        ),
        WAIT,
        "the same search and list from the linked URL",
    )
    .await;

    // ---- Detail of the SYN flood: full message, chart, top sources and ports, acknowledge.
    let syn_id = alarms
        .iter()
        .find(|(_, (v, _))| v == "198.51.100.20")
        .unwrap()
        .0
        .clone();
    let link = format!("#ev-table [data-event-id=\"{syn_id}\"] a[href]");
    match b.find(&link).await {
        Some(a) => b.click(&a).await,
        None => {
            b.click_css(&format!("#ev-table [data-event-id=\"{syn_id}\"]"))
                .await
        }
    }
    b.wait_js(
        &format!(
            "location.pathname === '/ui/events/{syn_id}' && document.querySelector('#event-detail')"
        ),
        WAIT,
        &format!("the detail page /ui/events/{syn_id} after clicking its row"),
    )
    .await;
    let api_msg = support::get_json(inst, &format!("/api/v1/messages/{syn_id}")).await;
    let shown = b
        .wait_js(
            "document.querySelector('#event-json') && document.querySelector('#event-json').textContent",
            WAIT,
            "#event-json",
        )
        .await;
    let shown: Value = serde_json::from_str(shown.as_str().unwrap())
        .unwrap_or_else(|e| panic!("#event-json is not JSON ({e}): {shown}"));
    assert_eq!(
        shown, api_msg["notification"],
        "#event-json shows the whole notification"
    );
    let points = b
        .wait_js(
            &drawn_series_js("#ddos-chart", 2),
            WAIT,
            "#ddos-chart with a drawn series (a path or polyline of 2 or more points)",
        )
        .await;
    eprintln!("#ddos-chart: a series of {points} points");
    b.wait_js(
        "document.querySelector('#ddos-top-sources') && document.querySelector('#ddos-top-sources').textContent.includes('100.64.')",
        WAIT,
        "#ddos-top-sources naming the flood's sources (100.64.x.x)",
    )
    .await;
    b.wait_js(
        "Array.from(document.querySelectorAll('#ddos-top-ports td')).some(td => td.textContent.trim() === '80')",
        WAIT,
        "#ddos-top-ports naming port 80",
    )
    .await;
    let flows_link = b.get("#flows-link").await;
    let href = b.attr(&flows_link, "href").await.unwrap_or_default();
    assert!(
        href.contains("/ui/flows?") && href.contains("filter=") && href.contains("198.51.100.20"),
        "#flows-link points at the flows of the victim: {href}"
    );
    let ack = b.get("#ack-submit").await;
    assert!(
        b.enabled(&ack).await,
        "#ack-submit is enabled for an analyst"
    );
    b.fill("#ack-comment", "syn flood seen from the console")
        .await;
    b.click(&ack).await;
    let state = b
        .wait_js(
            "(() => { const s = document.querySelector('#ack-state'); return s && s.textContent.includes('acknowledged') && s.textContent; })()",
            WAIT,
            "#ack-state `acknowledged` after #ack-submit",
        )
        .await;
    let state = state.as_str().unwrap();
    assert!(
        state.contains(ANALYST) && state.contains("syn flood seen from the console"),
        "#ack-state names who and the comment: {state:?}"
    );
    let acked = support::get_json(inst, &format!("/api/v1/messages/{syn_id}")).await;
    assert_eq!(acked["state"], "acknowledged", "{acked}");
    assert_eq!(acked["acked-by"], ANALYST, "{acked}");
    assert_eq!(
        acked["ack-comment"], "syn flood seen from the console",
        "{acked}"
    );
    shot(&b, "event-detail").await;

    // ---- Flows: from the detail's link, then a top query, its series, a drill-down, a filter
    // error at its column, completion.
    b.click(&flows_link).await;
    b.wait_js(
        "location.pathname === '/ui/flows' && document.querySelector('#fl-filter') \
         && document.querySelector('#fl-filter').value.includes('198.51.100.20')",
        WAIT,
        "the flows page with the victim's filter after #flows-link",
    )
    .await;
    b.fill("#fl-filter", "dst net 198.51.100.0/24").await;
    b.select("#fl-key", "dstip").await;
    b.select("#fl-by", "packets").await;
    b.set_value("#fl-n", "5").await;
    b.click_css("#fl-run").await;
    let bars = b
        .wait_js(
            &format!(
                "(() => {{ const v = Array.from(document.querySelectorAll('#fl-top-chart rect[data-value]')).map(r => r.getAttribute('data-value')); \
                 return {}.every(x => v.includes(x)) ? v : null; }})()",
                json!(VICTIMS)
            ),
            WAIT,
            "#fl-top-chart bars rect[data-value] for the three victims",
        )
        .await;
    eprintln!("#fl-top-chart bars: {bars}");
    let table = b.text_content("#fl-top-table").await.unwrap_or_default();
    for v in VICTIMS {
        assert!(table.contains(v), "#fl-top-table lists {v}: {table:?}");
    }
    b.wait_js(
        &drawn_series_js("#fl-series-chart", 2),
        WAIT,
        "#fl-series-chart with a drawn line (a path or polyline of 2 or more points)",
    )
    .await;
    b.get("#fl-csv").await;
    shot(&b, "flows").await;
    // Drill down: the SYN victim's bar adds it to the filter and lists its flows.
    b.click_css("#fl-top-chart rect[data-value=\"198.51.100.20\"]")
        .await;
    b.wait_js(
        "document.querySelector('#fl-filter').value.includes('198.51.100.20') \
         && document.querySelectorAll('#fl-list tr td').length > 0",
        WAIT,
        "the drill-down: the victim in #fl-filter and its flows in #fl-list",
    )
    .await;
    // A bad filter: the error at the parser's column.
    let bad = "proto udp and dst port";
    let r = client()
        .get(inst.url("/api/v1/flows/top"))
        .query(&[("filter", bad), ("key", "dstip")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    let column = e["details"][0]["column"]
        .as_u64()
        .unwrap_or_else(|| panic!("a column in {e}"));
    let message = e["details"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    b.fill("#fl-filter", bad).await;
    b.click_css("#fl-run").await;
    let shown = b
        .wait_js(
            "(() => { const e = document.querySelector('#fl-error'); \
              return e && !e.hidden && e.offsetParent !== null && e.getAttribute('data-column') && \
                [e.getAttribute('data-column'), e.textContent]; })()",
            WAIT,
            "#fl-error shown with data-column after a bad filter",
        )
        .await;
    assert_eq!(
        shown[0].as_str(),
        Some(column.to_string().as_str()),
        "#fl-error data-column for {bad:?} (the API says column {column}): {shown}"
    );
    assert!(
        shown[1].as_str().unwrap_or_default().contains(&message),
        "#fl-error shows the parser's message {message:?}: {shown}"
    );
    shot(&b, "flows-error").await;
    // Completion of keywords: type a prefix, pick with the keyboard.
    let f = b.get("#fl-filter").await;
    b.clear(&f).await;
    // WebDriver's clear blurs the field, and the page closes its list 100 ms after a blur: type
    // after that.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.send_keys(&f, "pro").await;
    b.wait_js(
        "(() => { const l = document.querySelector('#fl-completions'); return l && !l.hidden && l.textContent.includes('proto'); })()",
        WAIT,
        "#fl-completions offering `proto` after typing `pro`",
    )
    .await;
    b.send_keys(&f, "\u{E015}\u{E004}").await;
    let v = b
        .exec(
            "return document.querySelector('#fl-filter').value",
            json!([]),
        )
        .await;
    let v = v.as_str().unwrap_or_default();
    assert!(
        v.starts_with("pro") && v.trim().len() > 3,
        "ArrowDown + Tab accepts a completion of `pro`: {v:?}"
    );

    // ---- Back to the overview (a link, no reload): the attacks, and the traffic chart drawn
    // from the flows stored since.
    nav(&b, "overview", "/ui/", "#attacks").await;
    b.wait_js(
        &format!("{}.length === 3", row_ids_js("#attacks")),
        WAIT,
        "the three attacks in #attacks on returning to the overview",
    )
    .await;
    b.wait_js(
        &drawn_series_js("#traffic-chart", 2),
        WAIT,
        "#traffic-chart with a drawn series",
    )
    .await;
    // The traffic chart and the top lists are the flow stage's live view (no archive scan): the
    // replayed attack's victims are among the top targets, its traffic is "in".
    b.wait_js(
        "[...document.querySelectorAll('#top-targets tr[data-addr]')].some(r => r.dataset.addr.startsWith('198.51.100.'))",
        WAIT,
        "a victim in 198.51.100.0/24 among the live #top-targets",
    )
    .await;
    let t = b.fetch("/api/v1/traffic?step=60&top=5", json!({})).await;
    assert_eq!(t["status"], 200, "GET /api/v1/traffic: {t}");
    let t: Value = serde_json::from_str(t["body"].as_str().unwrap_or_default()).unwrap();
    assert_eq!(t["networks"], json!(["198.51.100.0/24"]), "{t}");
    let inbound: f64 = t["points"]["in"]["packets_per_s"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).sum())
        .unwrap_or_default();
    assert!(inbound > 0.0, "the attack's packets are counted in: {t}");
    assert!(
        t["dropped_batches"].is_u64() && t["partial"].is_boolean(),
        "the view says what it missed: {t}"
    );
    shot(&b, "overview").await;

    // ---- Logout: back to the login page, the app and the API no longer reachable.
    logout(&b).await;
    let s = b.fetch("/api/v1/session", json!({})).await;
    assert_eq!(s["status"], 401, "the session ended at logout: {s}");
    b.goto(&inst.url("/ui/flows")).await;
    b.wait_js(
        "location.pathname === '/ui/login'",
        WAIT,
        "/ui/flows after logout redirected to /ui/login",
    )
    .await;

    // ---- Admin: tokens (and creating one), NSFs, the configuration without secrets.
    login(&b, inst, ADMIN_TOKEN, "e2e-admin", "admin").await;
    nav(&b, "admin", "/ui/admin", "#tokens").await;
    b.wait_js(
        &format!(
            "document.querySelector('#tokens').textContent.includes('{ANALYST}') && document.querySelector('#tokens').textContent.includes('{VIEWER}')"
        ),
        WAIT,
        "#tokens listing the analyst's and the viewer's tokens",
    )
    .await;
    b.wait_js(
        "document.querySelector('#nsfs') && document.querySelector('#nsfs').textContent.includes('127.0.0.1')",
        WAIT,
        "#nsfs listing the syslog sender",
    )
    .await;
    let config = b
        .wait_js(
            "(() => { const c = document.querySelector('#config'); return c && c.textContent.trim().startsWith('{') && c.textContent; })()",
            WAIT,
            "#config showing the configuration as JSON",
        )
        .await;
    let config = config.as_str().unwrap();
    serde_json::from_str::<Value>(config).unwrap_or_else(|e| panic!("#config is not JSON ({e})"));
    for secret in [ADMIN_TOKEN, c.analyst.as_str(), c.viewer.as_str()] {
        assert!(!config.contains(secret), "#config shows a token secret");
    }
    b.fill("#token-name", "made-in-console").await;
    b.select("#token-role", "viewer").await;
    b.click_css("#token-create").await;
    let secret = b
        .wait_js(
            "(() => { const s = document.querySelector('#token-secret'); return s && s.textContent.includes('phr_') && s.textContent; })()",
            WAIT,
            "#token-secret showing the new token",
        )
        .await;
    let secret = secret.as_str().unwrap();
    let secret = &secret[secret.find("phr_").unwrap()..];
    let secret: String = secret.chars().take_while(|c| !c.is_whitespace()).collect();
    let r = with_token(&secret)
        .get(inst.url("/api/v1/messages?limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the token made in the console works: {secret}"
    );
    shot(&b, "admin").await;
    logout(&b).await;

    // ---- A viewer cannot acknowledge: no working button, and a forced POST gets 403.
    login(&b, inst, &c.viewer, VIEWER, "viewer").await;
    let ntp_id = alarms
        .iter()
        .find(|(_, (v, _))| v == "198.51.100.10")
        .unwrap()
        .0
        .clone();
    b.goto(&inst.url(&format!("/ui/events/{ntp_id}"))).await;
    b.wait_js(
        "document.querySelector('#event-detail') && document.querySelector('#event-json') && document.querySelector('#event-json').textContent.length > 10",
        WAIT,
        "the detail page of the NTP attack for the viewer",
    )
    .await;
    if let Some(btn) = b.find("#ack-submit").await {
        assert!(
            !b.enabled(&btn).await || !b.displayed(&btn).await,
            "#ack-submit is usable by a viewer"
        );
    }
    let session = b.fetch("/api/v1/session", json!({})).await;
    assert_eq!(session["status"], 200, "{session}");
    let csrf = serde_json::from_str::<Value>(session["body"].as_str().unwrap()).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let forced = b
        .fetch(
            &format!("/api/v1/events/{ntp_id}/ack"),
            json!({"method": "POST", "headers": {"content-type": "application/json", "x-csrf-token": csrf},
                   "body": "{\"comment\": \"viewer tries\"}"}),
        )
        .await;
    assert_eq!(
        forced["status"], 403,
        "a viewer's forced acknowledgement: {forced}"
    );
    let still = support::get_json(inst, &format!("/api/v1/messages/{ntp_id}")).await;
    assert_eq!(
        still["state"], "open",
        "the viewer changed nothing: {still}"
    );
    shot(&b, "event-viewer").await;

    // ---- Markup from the data stays text: the events list and the detail page.
    nav(&b, "events", "/ui/events", "#ev-form").await;
    b.fill("#ev-from", "last 2 hours").await;
    b.select("#ev-kind", "").await;
    b.click_css("#ev-search").await;
    b.wait_js(
        &format!(
            "(() => {{ const ids = {}; return ids.includes('{markup_id}') && ids.includes('{alarm_id}'); }})()",
            row_ids_js("#ev-table")
        ),
        WAIT,
        "the markup syslog line and the markup-named NSF's alarm in #ev-table",
    )
    .await;
    let alarm_row = b
        .text_content(&format!("#ev-table [data-event-id=\"{alarm_id}\"]"))
        .await
        .unwrap_or_default();
    if alarm_row.contains("fw-x") {
        assert!(
            alarm_row.contains(XSS_NSF),
            "the NSF name shows as literal text in its row: {alarm_row:?}"
        );
    } else {
        eprintln!("note: #ev-table rows do not show the NSF name: {alarm_row:?}");
    }
    assert_clean(&injected(&b).await, "events list");
    b.goto(&inst.url(&format!("/ui/events/{markup_id}"))).await;
    let raw = b
        .wait_js(
            "document.querySelector('#event-raw') && document.querySelector('#event-raw').textContent",
            WAIT,
            "#event-raw of the markup syslog line",
        )
        .await;
    assert_eq!(
        raw.as_str().unwrap().trim(),
        markup_raw,
        "#event-raw shows the line as text"
    );
    let json_text = b.text_content("#event-json").await.unwrap_or_default();
    assert!(
        json_text.contains("<script>window.__xss=1</script>"),
        "#event-json shows the markup as text"
    );
    // Give any handler a moment to run before the check.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_clean(&injected(&b).await, "event detail");
    shot(&b, "event-markup").await;

    b.close().await;
}

// ---------------------------------------------------------------------------------------------
// HTTPS: the console over HTTP/2, many SSE streams at once.

struct Pki {
    ca: String,
    server: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Pharos console test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &issuer).unwrap();
    Pki {
        ca: ca_cert.pem(),
        server: (cert.pem(), key.serialize_pem()),
    }
}

/// An HTTPS client trusting the test CA, connecting `localhost` to `addr`.
fn https(pki: &Pki, addr: SocketAddr) -> reqwest::Client {
    support::install_crypto();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", addr)
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_console_is_http2_with_a_secure_cookie_and_many_streams_do_not_starve_requests()
 {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki();
    let w = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let extra = format!(
        "rate_per_second = 0\nhttp2_max_streams = 16\n[api.tls]\ncert = {:?}\nkey = {:?}\n",
        w("server.pem", &pki.server.0),
        w("server.key", &pki.server.1),
    );
    let inst = Instance::start_in(tmp, &extra);
    let addr: SocketAddr = inst.base.trim_start_matches("https://").parse().unwrap();
    let base = format!("https://localhost:{}", addr.port());

    // The cookie is Secure on TLS (plain HTTP client of the test CA).
    let http = https(&pki, addr);
    let r = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"token": ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in [
        "pharos_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Secure",
    ] {
        assert!(set.contains(attr), "Set-Cookie has {attr} on TLS: {set}");
    }

    if !browser_available() {
        return;
    }
    // The browser does not know the test CA: it accepts the certificate (W3C acceptInsecureCerts).
    let b = Browser::start(Options {
        accept_insecure_certs: true,
        ..Options::default()
    })
    .await;
    b.goto(&format!("https://127.0.0.1:{}/ui/login", addr.port()))
        .await;
    b.wait_for("#token", WAIT).await;
    let proto = b
        .exec(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol",
            json!([]),
        )
        .await;
    assert_eq!(proto, "h2", "the login page over TLS is served with HTTP/2");
    b.fill("#token", ADMIN_TOKEN).await;
    b.click_css("#login-submit").await;
    b.wait_js(
        "location.pathname !== '/ui/login' && document.querySelector('#live-status') \
         && document.querySelector('#live-status').textContent.trim() === 'live'",
        WAIT,
        "the overview over HTTPS with #live-status `live`",
    )
    .await;
    let protos = b
        .exec(
            "return [performance.getEntriesByType('navigation')[0].nextHopProtocol]
               .concat(performance.getEntriesByType('resource').map(e => e.nextHopProtocol))
               .filter(p => p);",
            json!([]),
        )
        .await;
    assert!(
        protos.as_array().unwrap().len() > 2
            && protos.as_array().unwrap().iter().all(|p| p == "h2"),
        "the shell and its assets over HTTP/2: {protos}"
    );
    // Ten more SSE streams at once (HTTP/1.1 would allow six connections per origin and the
    // next request would wait): a request still answers at once.
    let r = b
        .exec_async(
            "const done = arguments[arguments.length - 1];
             const streams = [];
             for (let i = 0; i < 10; i++) streams.push(new EventSource('/api/v1/stream'));
             const t0 = performance.now();
             const check = () => {
               if (streams.every(s => s.readyState === 1)) {
                 const t1 = performance.now();
                 fetch('/api/v1/session').then(r => {
                   const t2 = performance.now();
                   window.__streams = streams;
                   done({open_ms: t1 - t0, fetch_ms: t2 - t1, status: r.status});
                 });
               } else if (performance.now() - t0 > 10000) {
                 done({open: streams.map(s => s.readyState)});
               } else setTimeout(check, 20);
             };
             check();",
            json!([]),
        )
        .await;
    assert_eq!(
        r["status"], 200,
        "ten SSE streams open, then a request: {r}"
    );
    assert!(
        r["fetch_ms"].as_f64().unwrap() < 2000.0,
        "a request beside ten SSE streams answered within 2 s: {r}"
    );
    eprintln!("ten SSE streams over h2: {r}");
    // h2's own limit (`http2_max_streams = 16`, the page's own stream and the ten above open):
    // eight more streams do not all open; they wait, and open once the ten are closed.
    let r = b
        .exec_async(
            "const done = arguments[arguments.length - 1];
             const extra = [];
             for (let i = 0; i < 8; i++) extra.push(new EventSource('/api/v1/stream'));
             setTimeout(() => {
               const before = extra.map(s => s.readyState);
               window.__streams.forEach(s => s.close());
               const t0 = performance.now();
               const check = () => {
                 const after = extra.map(s => s.readyState);
                 if (after.every(x => x === 1) || performance.now() - t0 > 10000) {
                   extra.forEach(s => s.close());
                   done({before, after, ms: performance.now() - t0});
                 } else setTimeout(check, 20);
               };
               check();
             }, 2000);",
            json!([]),
        )
        .await;
    eprintln!("eight streams past http2_max_streams: {r}");
    let before: Vec<u64> = serde_json::from_value(r["before"].clone()).unwrap();
    assert!(
        before.contains(&0) && !before.contains(&2),
        "past http2_max_streams some streams wait (CONNECTING), none fails: {r}"
    );
    assert!(
        r["after"].as_array().unwrap().iter().all(|s| s == 1),
        "the waiting streams open once others close: {r}"
    );
    b.close().await;
}

// ---------------------------------------------------------------------------------------------
// Security, over plain HTTP.

/// The `pharos_session=...` pair of a login's Set-Cookie, and the session JSON.
async fn session_of(inst: &Instance, token: &str) -> (String, Value, String) {
    let r = anonymous()
        .post(inst.url("/api/v1/session"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login");
    let set = r
        .headers()
        .get("set-cookie")
        .expect("Set-Cookie at login")
        .to_str()
        .unwrap()
        .to_string();
    let pair = set.split(';').next().unwrap().trim().to_string();
    assert!(pair.starts_with("pharos_session="), "{set}");
    (pair, r.json().await.unwrap(), set)
}

fn cookie_client(pair: &str) -> reqwest::Client {
    support::install_crypto();
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(h)
        .build()
        .unwrap()
}

/// Pushes a CPU alarm (an event, open): its id.
async fn an_event(inst: &Instance, nsf: &str) -> String {
    let v = support::push_ok(
        inst,
        json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
            "nsf-name": nsf,
            "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "usage": 95, "threshold": 80}
        }})
        .to_string(),
    )
    .await;
    v["ids"][0].as_str().unwrap().to_string()
}

async fn state_of(inst: &Instance, id: &str) -> Value {
    support::get_json(inst, &format!("/api/v1/messages/{id}")).await["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_console_page_without_a_session_redirects_to_login_and_login_and_assets_are_public() {
    let c = start_console("").await;
    let inst = &c.inst;
    let anon = anonymous();
    let r = anon.get(inst.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "GET /");
    assert_eq!(r.headers()[LOCATION], "/ui/");
    for path in [
        "/ui/",
        "/ui/overview",
        "/ui/events",
        "/ui/events/1",
        "/ui/flows",
        "/ui/flows?filter=proto%20udp",
        "/ui/admin",
        "/ui/no/such/page",
    ] {
        for cookie in [None, Some("pharos_session=forged-session-value")] {
            let mut req = anon.get(inst.url(path));
            if let Some(c) = cookie {
                req = req.header(COOKIE, c);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::SEE_OTHER,
                "GET {path} with cookie {cookie:?} should redirect to the login page"
            );
            let loc = r.headers()[LOCATION].to_str().unwrap().to_string();
            assert!(
                loc.starts_with("/ui/login?next="),
                "GET {path}: Location {loc}"
            );
            let next = url_decode(loc.trim_start_matches("/ui/login?next="));
            assert_eq!(next, path, "the login page comes back to {path}");
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("data-page"),
                "GET {path} without a session sent the shell"
            );
        }
    }
    // A token or a session opens the pages.
    let r = with_token(&c.viewer)
        .get(inst.url("/ui/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a viewer's token opens /ui/events");
    let (pair, _, _) = session_of(inst, &c.viewer).await;
    let r = cookie_client(&pair)
        .get(inst.url("/ui/flows"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a session opens /ui/flows");
    // The login page and the assets are public.
    let r = anon.get(inst.url("/ui/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let assets = asset_urls(&html);
    assert!(
        !assets.is_empty(),
        "the login page links its assets: {html}"
    );
    for a in &assets {
        let r = anon.get(inst.url(a)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {a}");
    }
}

/// The `/ui/assets/...` URLs in `html` (src and href attributes).
fn asset_urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let url = &rest[..rest.find('"').unwrap_or(0)];
            if url.starts_with("/ui/assets/") {
                out.push(url.to_string());
            }
        }
    }
    out
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_401_without_a_token_or_a_live_session() {
    let c = start_console("").await;
    let inst = &c.inst;
    let doc = support::get_json(inst, "/api/v1/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths in openapi.json");
    let mut routes: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, ops) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if ops.get(method).is_some() && path.starts_with("/api/") {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    // The console's own routes, documented or not.
    for (m, p) in [
        ("GET", "/api/v1/session"),
        ("DELETE", "/api/v1/session"),
        ("GET", "/api/v1/overview"),
        ("GET", "/api/v1/config"),
    ] {
        routes.insert((m.into(), p.into()));
    }
    assert!(
        routes.len() >= 30,
        "openapi.json documents the API's routes: {routes:?}"
    );
    // Logging in is the one public API route; it refuses a bad token.
    routes.remove(&("POST".into(), "/api/v1/session".into()));
    let r = anonymous()
        .post(inst.url("/api/v1/session"))
        .json(&json!({"token": "phr_not-a-token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "login with a bad token");
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].is_string(), "{v}");

    // A session that ended (logout) is as good as none.
    let (ended, s, _) = session_of(inst, &c.analyst).await;
    let r = cookie_client(&ended)
        .delete(inst.url("/api/v1/session"))
        .header("x-csrf-token", s["csrf"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "logout");

    let mut wrong = Vec::new();
    for (method, path) in &routes {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (label, cookie) in [
            ("nothing", None),
            ("a forged cookie", Some("pharos_session=forged".to_string())),
            ("a logged-out session", Some(ended.clone())),
        ] {
            let anon = anonymous();
            let url = inst.url(&concrete);
            let mut req = match method.as_str() {
                "GET" => anon.get(&url),
                "POST" => anon.post(&url),
                "PUT" => anon.put(&url),
                "PATCH" => anon.patch(&url),
                _ => anon.delete(&url),
            };
            if method != "GET" && method != "DELETE" {
                req = req.header("content-type", "application/json").body("{}");
            }
            if let Some(c) = &cookie {
                req = req.header(COOKIE, c);
            }
            let r = req.send().await.unwrap();
            if r.status() != StatusCode::UNAUTHORIZED {
                wrong.push(format!("{method} {concrete} with {label}: {}", r.status()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "routes that did not answer 401 without credentials:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_session_cookie_state_changes_need_the_csrf_token_and_roles_still_apply() {
    let c = start_console("").await;
    let inst = &c.inst;
    let (pair, s, set) = session_of(inst, &c.analyst).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "Set-Cookie has {attr}: {set}");
    }
    assert!(!set.contains("Secure"), "no Secure over plain HTTP: {set}");
    assert_eq!(s["name"], ANALYST, "{s}");
    assert_eq!(s["role"], "analyst", "{s}");
    let csrf = s["csrf"].as_str().expect("csrf").to_string();
    assert!(csrf.len() >= 16, "a CSRF token of some length: {csrf}");
    assert!(s["expires_at"].is_string(), "{s}");
    let http = cookie_client(&pair);
    let again: Value = http
        .get(inst.url("/api/v1/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, s, "GET /api/v1/session gives the session back");

    let id = an_event(inst, "fw-csrf").await;
    let ack = |csrf: Option<&str>| {
        let mut req = http
            .post(inst.url(&format!("/api/v1/events/{id}/ack")))
            .json(&json!({"comment": "via cookie"}));
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let r = ack(None).await.unwrap();
    assert_eq!(r.status(), 403, "POST without X-CSRF-Token");
    assert_eq!(
        state_of(inst, &id).await,
        "open",
        "a refused POST changed nothing"
    );
    let r = ack(Some("not-the-token")).await.unwrap();
    assert_eq!(r.status(), 403, "POST with a wrong X-CSRF-Token");
    let r = ack(Some("")).await.unwrap();
    assert_eq!(r.status(), 403, "POST with an empty X-CSRF-Token");
    assert_eq!(
        state_of(inst, &id).await,
        "open",
        "a refused POST changed nothing"
    );
    // Another session's token does not fit this one.
    let (_, other, _) = session_of(inst, &c.analyst).await;
    assert_ne!(
        other["csrf"], s["csrf"],
        "every session has its own CSRF token"
    );
    let r = ack(other["csrf"].as_str()).await.unwrap();
    assert_eq!(r.status(), 403, "POST with another session's CSRF token");
    assert_eq!(state_of(inst, &id).await, "open");
    let r = ack(Some(&csrf)).await.unwrap();
    assert_eq!(r.status(), 200, "POST with the session's CSRF token");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "acknowledged", "{v}");
    assert_eq!(v["acked-by"], ANALYST, "{v}");

    // A viewer's session with its right CSRF token still may not acknowledge.
    let id2 = an_event(inst, "fw-csrf").await;
    let (vpair, vs, _) = session_of(inst, &c.viewer).await;
    let r = cookie_client(&vpair)
        .post(inst.url(&format!("/api/v1/events/{id2}/ack")))
        .header("x-csrf-token", vs["csrf"].as_str().unwrap())
        .json(&json!({"comment": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a viewer's session acknowledging");
    assert_eq!(state_of(inst, &id2).await, "open");
    // Token clients (no cookie) need no CSRF token.
    let r = with_token(&c.analyst)
        .post(inst.url(&format!("/api/v1/events/{id2}/ack")))
        .json(&json!({"comment": "by token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "an analyst's bearer token acknowledges without CSRF"
    );

    // Logout needs the CSRF token too; then the cookie opens nothing.
    let r = http
        .delete(inst.url("/api/v1/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "DELETE /api/v1/session without X-CSRF-Token"
    );
    let r = http.get(inst.url("/api/v1/session")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the refused logout left the session");
    let r = http
        .delete(inst.url("/api/v1/session"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "logout");
    let r = http.get(inst.url("/api/v1/session")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the session after logout");
    let r = http.get(inst.url("/ui/")).send().await.unwrap();
    assert_eq!(r.status(), 303, "the console after logout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_responses_carry_a_strict_csp_and_assets_are_immutable_gzip_and_within_budget() {
    let c = start_console("").await;
    let inst = &c.inst;
    let (pair, _, _) = session_of(inst, &c.viewer).await;
    let http = cookie_client(&pair);
    let login = http.get(inst.url("/ui/login")).send().await.unwrap();
    let shell = http.get(inst.url("/ui/")).send().await.unwrap();
    assert_eq!(shell.status(), 200, "the shell with a session");
    let mut pages = Vec::new();
    for (what, r) in [("/ui/login", login), ("/ui/", shell)] {
        let csp = r
            .headers()
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"))
            .to_str()
            .unwrap()
            .to_string();
        for d in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(d), "{what}: CSP without {d}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{what}: {csp}"
        );
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let cache = r
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_string());
        let body = r.text().await.unwrap();
        assert!(ct.unwrap_or_default().starts_with("text/html"), "{what}");
        assert!(
            !cache.unwrap_or_default().contains("immutable"),
            "{what}: the pages are not cached as immutable"
        );
        pages.push((what, body));
    }
    // The pages obey their CSP: no inline script or style, assets only from /ui/assets/<hash>/.
    let mut assets = BTreeSet::new();
    for (what, html) in &pages {
        let lower = html.to_lowercase();
        let mut rest = lower.as_str();
        while let Some(i) = rest.find("<script") {
            let tag = &rest[i..rest[i..].find('>').map_or(rest.len(), |j| i + j)];
            assert!(tag.contains("src="), "{what}: an inline <script>: {tag}");
            rest = &rest[i + 7..];
        }
        assert!(!lower.contains("<style"), "{what}: a <style> element");
        assert!(!lower.contains(" style=\""), "{what}: a style attribute");
        assert!(!has_handler_attr(&lower), "{what}: an inline event handler");
        for a in asset_urls(html) {
            let hashed = a.trim_start_matches("/ui/assets/");
            assert!(
                hashed.contains('/'),
                "{what}: {a} is not under /ui/assets/<hash>/"
            );
            assets.insert(a);
        }
    }
    // Assets: immutable, gzip when accepted, with the CSP; the whole console within 300 KB
    // compressed (the first page loads at most all of it).
    let anon = anonymous();
    let hash = assets
        .iter()
        .next()
        .map(|a| {
            a.trim_start_matches("/ui/assets/")
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .expect("assets");
    let dir = support::repo_dir().join("crates/console/assets");
    let mut files = Vec::new();
    walk(&dir, &dir, &mut files);
    files.sort();
    // The two pages count with their whole size.
    let mut total: usize = pages.iter().map(|(_, html)| html.len()).sum();
    for f in files.iter().filter(|f| !f.ends_with(".html")) {
        let url = format!("/ui/assets/{hash}/{f}");
        let r = anon
            .get(inst.url(&url))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {url}");
        let h = r.headers();
        let cache = h
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            cache.contains("immutable"),
            "{url}: Cache-Control {cache:?}"
        );
        assert!(h.get("content-security-policy").is_some(), "{url}: no CSP");
        let big = std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()) > 1024;
        if big && (f.ends_with(".js") || f.ends_with(".css")) {
            assert_eq!(
                h.get("content-encoding").map(|v| v.to_str().unwrap()),
                Some("gzip"),
                "{url} gzip-compressed when accepted"
            );
        }
        total += r.bytes().await.unwrap().len();
    }
    eprintln!(
        "console assets: {} files, {total} bytes compressed",
        files.len()
    );
    assert!(
        total <= 300 * 1024,
        "the console weighs {total} bytes compressed (budget 300 KB)"
    );
    // The scripts put data into the page as text: no innerHTML/outerHTML/insertAdjacentHTML
    // with anything but an empty string, no document.write, no eval or Function.
    let mut bad = Vec::new();
    for f in files.iter().filter(|f| f.ends_with(".js")) {
        let src = std::fs::read_to_string(dir.join(f)).unwrap();
        for (n, line) in src.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for sink in [
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "outerHTML",
            ] {
                if code.contains(sink) {
                    bad.push(format!("{f}:{}: {}", n + 1, line.trim()));
                }
            }
            if let Some(i) = code.find("innerHTML") {
                let after = code[i + "innerHTML".len()..].trim_start();
                if after.starts_with('=') && !after.starts_with("==") {
                    let rhs = after[1..].trim_start();
                    if !(rhs.starts_with("''") || rhs.starts_with("\"\"") || rhs.starts_with("``"))
                    {
                        bad.push(format!("{f}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "HTML sinks in the console's scripts:\n{}",
        bad.join("\n")
    );
}

/// The files under `dir`, as paths relative to `root` with `/`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap();
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Whether `html` (lower case) has an attribute `on...=` (an inline event handler) in a tag.
fn has_handler_attr(html: &str) -> bool {
    let mut in_tag = false;
    let b = html.as_bytes();
    for i in 0..b.len() {
        match b[i] {
            b'<' => in_tag = true,
            b'>' => in_tag = false,
            b' ' | b'\n' | b'\t' if in_tag => {
                let rest = &html[i + 1..];
                if rest.starts_with("on") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .collect();
                    if name.len() > 2 && rest[name.len()..].trim_start().starts_with('=') {
                        return true;
                    }
                }
            }
            _ => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_stored_data_reaches_the_api_unchanged() {
    // The browser test checks that the pages show it as text; here: the API gives it back
    // byte for byte (so that an escaping bug cannot hide in storage).
    let c = start_console("").await;
    let inst = &c.inst;
    let (raw, id, alarm) = feed_markup(inst).await;
    let m = support::get_json(inst, &format!("/api/v1/messages/{id}")).await;
    assert_eq!(raw_of(&m), Some(raw.as_str()));
    let a = support::get_json(inst, &format!("/api/v1/messages/{alarm}")).await;
    assert_eq!(a["nsf-name"], XSS_NSF, "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_console_sessions_at_once() {
    let c = start_console("").await;
    let inst = &c.inst;
    let (pair, _, _) = session_of(inst, &c.viewer).await;
    let http = cookie_client(&pair);
    let r = http.get(inst.url("/api/v1/messages")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the viewer's session reads");
    let r = client()
        .delete(inst.url(&format!("/api/v1/tokens/{VIEWER}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "revoke {VIEWER}: {}", r.status());
    let r = http.get(inst.url("/api/v1/messages")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the session of a revoked token");
    let r = http.get(inst.url("/ui/events")).send().await.unwrap();
    assert_eq!(
        r.status(),
        303,
        "the console with the session of a revoked token"
    );
    // And the revoked token cannot log in again.
    let r = anonymous()
        .post(inst.url("/api/v1/session"))
        .json(&json!({ "token": c.viewer }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "login with a revoked token");
}
