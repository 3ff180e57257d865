//! A small W3C WebDriver client for the browser tests: spawns `chromedriver` on a free port in its
//! own process group (killed with the browser it started when the [`Browser`] is dropped), opens a
//! headless Chromium session with a fresh profile, and drives it over the W3C protocol with
//! reqwest: navigate, find by CSS, click, type, read text and attributes, run scripts, wait with a
//! bounded timeout, screenshots.
//!
//! Every wait has a deadline and fails naming what it waited for and what it saw last.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key of an element reference in the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian's packages put the driver and the browser.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's chromium (a wrapper script around /usr/lib/chromium/chromium).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Why a browser test cannot run here (`None`: chromedriver and chromium are installed).
pub fn missing() -> Option<String> {
    let driver = std::env::var("PHAROS_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
    let browser = std::env::var("PHAROS_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    for (what, p, pkg) in [
        ("chromedriver", &driver, "chromium-driver"),
        ("chromium", &browser, "chromium"),
    ] {
        if !Path::new(p).exists() {
            return Some(format!(
                "{what} not found at {p} (Debian package {pkg}; or set PHAROS_{})",
                what.to_uppercase()
            ));
        }
    }
    None
}

/// A WebDriver error answer (or a transport failure).
#[derive(Debug, Clone)]
pub struct WdError {
    /// The W3C error code (`no such element`, `stale element reference`, ...), or `transport`.
    pub error: String,
    /// The driver's message.
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The driver's messages carry a long stack trace after the first lines.
        let msg: String = self.message.lines().take(3).collect::<Vec<_>>().join(" | ");
        write!(f, "{}: {msg}", self.error)
    }
}

/// A reference to an element of the current page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(pub String);

impl Element {
    fn json(&self) -> Value {
        json!({ ELEMENT: self.0 })
    }
}

/// Options of a new browser.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Accept self-signed or unknown-CA certificates (the W3C `acceptInsecureCerts`).
    pub accept_insecure_certs: bool,
    /// Extra chromium arguments.
    pub extra_args: Vec<String>,
}

/// chromedriver, the headless chromium it started and a session in it.
pub struct Browser {
    driver: Option<Child>,
    base: String,
    session: Option<String>,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
    /// What the driver logged (its stderr/stdout file), for failure messages.
    log_path: std::path::PathBuf,
    /// Where a wait that times out saves a screenshot of the page (see
    /// [`Browser::screenshot_failures_to`]).
    failure_shot: Option<std::path::PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless chromium session (deadline 60 s).
    pub async fn start(opts: Options) -> Browser {
        use std::os::unix::process::CommandExt;
        let driver = std::env::var("PHAROS_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        let binary = std::env::var("PHAROS_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        let profile = tempfile::tempdir().unwrap();
        let log_path = profile.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group: the drop kills the driver and every browser process it
            // started, and nothing else.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver}: {e}"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let mut b = Browser {
            driver: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            http,
            _profile: profile,
            log_path,
            failure_shot: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = b
                .http
                .get(format!("{}/status", b.base))
                .send()
                .await
                .ok()
                .map(|r| r.json::<Value>());
            if let Some(fut) = ready
                && let Ok(v) = fut.await
                && v["value"]["ready"] == true
            {
                break;
            }
            if let Some(st) = b.driver.as_mut().unwrap().try_wait().unwrap() {
                panic!("chromedriver exited at start with {st}: {}", b.driver_log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready on port {port} within 30 s: {}",
                b.driver_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let user_data = b._profile.path().join("profile");
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,900",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", user_data.display()));
        args.extend(opts.extra_args.iter().cloned());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": opts.accept_insecure_certs,
            "pageLoadStrategy": "normal",
            "timeouts": {"script": 30_000, "pageLoad": 60_000, "implicit": 0},
            "goog:chromeOptions": {"binary": binary, "args": args},
        }}});
        let v = b
            .raw("POST", "/session", Some(caps))
            .await
            .unwrap_or_else(|e| panic!("new session: {e}; driver log: {}", b.driver_log()));
        b.session = Some(
            v["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no sessionId in {v}"))
                .to_string(),
        );
        b
    }

    /// A wait that times out first saves a screenshot of the page to `path`.
    pub fn screenshot_failures_to(&mut self, path: &Path) {
        self.failure_shot = Some(path.to_path_buf());
    }

    /// The driver's log (for failure messages; the tail).
    pub fn driver_log(&self) -> String {
        let s = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let n = s.len();
        s[n.saturating_sub(4000)..].to_string()
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req.send().await.map_err(|e| WdError {
            error: "transport".into(),
            message: format!("{method} {path}: {e}"),
        })?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| WdError {
            error: "transport".into(),
            message: format!("{method} {path}: answer is not JSON: {e}"),
        })?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() || value.get("error").is_some_and(Value::is_string) {
            return Err(WdError {
                error: value["error"].as_str().unwrap_or("unknown").to_string(),
                message: value["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        Ok(value)
    }

    /// A command of the session (`path` relative to `/session/{id}`).
    pub async fn cmd(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let id = self.session.as_deref().expect("a session");
        self.raw(method, &format!("/session/{id}{path}"), body)
            .await
    }

    /// Navigates to `url` and waits for the load.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `location.pathname` of the current page.
    pub async fn pathname(&self) -> String {
        self.exec("return location.pathname", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, if any.
    pub async fn find(&self, css: &str) -> Option<Element> {
        match self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
        {
            Ok(v) => v[ELEMENT].as_str().map(|s| Element(s.to_string())),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {css}: {e}"),
        }
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .unwrap_or_else(|e| panic!("find all {css}: {e}"));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The element matching `css`; fails the test when there is none.
    pub async fn get(&self, css: &str) -> Element {
        match self.find(css).await {
            Some(e) => e,
            None => panic!(
                "expected an element {css} on {}; page text: {}",
                self.url().await,
                self.page_text().await
            ),
        }
    }

    /// Waits up to `timeout` for an element matching `css` (that is displayed, when `visible`).
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let what = format!("an element {css}");
        self.wait_until(timeout, &what, || async { self.find(css).await })
            .await
    }

    /// Polls `probe` every 50 ms until it gives `Some` (its value is returned) or `timeout` has
    /// passed: then the test fails naming `what` was expected, the URL and the page's text.
    pub async fn wait_until<T, F, Fut>(&self, timeout: Duration, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if Instant::now() > deadline {
                if let Some(p) = &self.failure_shot {
                    let _ = self.try_screenshot(p).await;
                }
                panic!(
                    "waited {timeout:?} for {what}; at {}, page text: {}",
                    self.url().await,
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the JavaScript `expr` (an expression) is truthy; returns its value.
    pub async fn wait_js(&self, expr: &str, timeout: Duration, what: &str) -> Value {
        let script = format!("try {{ return ({expr}); }} catch (e) {{ return null; }}");
        self.wait_until(timeout, what, || async {
            let v = self.exec(&script, json!([])).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            truthy.then_some(v)
        })
        .await
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.try_exec(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// [`Browser::exec`] that gives the error back.
    pub async fn try_exec(&self, script: &str, args: Value) -> Result<Value, WdError> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs an asynchronous `script`: it ends by calling `arguments[arguments.length - 1](value)`.
    pub async fn exec_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
        .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// `fetch(path, init)` from the page (same origin, its cookies): `{status, body}`.
    pub async fn fetch(&self, path: &str, init: Value) -> Value {
        self.exec_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], arguments[1])
               .then(async r => done({status: r.status, body: await r.text()}))
               .catch(e => done({status: -1, body: String(e)}));",
            json!([path, init]),
        )
        .await
    }

    /// Clicks `el` (scrolled into view first).
    pub async fn click(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/click", el.0), Some(json!({})))
            .await
            .unwrap_or_else(|e| panic!("click: {e}"));
    }

    /// Clicks the element matching `css`.
    pub async fn click_css(&self, css: &str) {
        let el = self.get(css).await;
        self.click(&el).await;
    }

    /// Clears an input or textarea.
    pub async fn clear(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/clear", el.0), Some(json!({})))
            .await
            .unwrap_or_else(|e| panic!("clear: {e}"));
    }

    /// Types `text` into `el` (`\u{E007}` is Enter, `\u{E004}` Tab, `\u{E015}` arrow down).
    pub async fn send_keys(&self, el: &Element, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", el.0),
            Some(json!({ "text": text })),
        )
        .await
        .unwrap_or_else(|e| panic!("send keys: {e}"));
    }

    /// Clears the input matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.get(css).await;
        self.clear(&el).await;
        self.send_keys(&el, text).await;
    }

    /// Sets the `<select>` matching `css` to `value` (and fires `input` and `change`); fails when
    /// it has no such option.
    pub async fn select(&self, css: &str, value: &str) {
        let v = self
            .exec(
                "const s = document.querySelector(arguments[0]);
                 if (!s) return 'no element';
                 const opts = Array.from(s.options || []).map(o => o.value);
                 if (!opts.includes(arguments[1])) return 'no option ' + arguments[1] + ' in ' + JSON.stringify(opts);
                 s.value = arguments[1];
                 s.dispatchEvent(new Event('input', {bubbles: true}));
                 s.dispatchEvent(new Event('change', {bubbles: true}));
                 return 'ok';",
                json!([css, value]),
            )
            .await;
        assert_eq!(v, "ok", "select {value:?} in {css}");
    }

    /// Sets the value of the input or select matching `css` from script (and fires `input` and
    /// `change`), for fields whose kind (number, select, text) the contract leaves open.
    pub async fn set_value(&self, css: &str, value: &str) {
        let v = self
            .exec(
                "const s = document.querySelector(arguments[0]);
                 if (!s) return 'no element';
                 s.value = arguments[1];
                 if (s.value !== arguments[1]) return 'value not taken: ' + s.value;
                 s.dispatchEvent(new Event('input', {bubbles: true}));
                 s.dispatchEvent(new Event('change', {bubbles: true}));
                 return 'ok';",
                json!([css, value]),
            )
            .await;
        assert_eq!(v, "ok", "set {css} to {value:?}");
    }

    /// The rendered text of `el`.
    pub async fn text(&self, el: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", el.0), None)
            .await
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    /// `textContent` of the first element matching `css` (None when absent).
    pub async fn text_content(&self, css: &str) -> Option<String> {
        self.exec(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    /// An attribute of `el` (None when absent).
    pub async fn attr(&self, el: &Element, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", el.0), None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    /// Whether `el` is enabled.
    pub async fn enabled(&self, el: &Element) -> bool {
        self.cmd("GET", &format!("/element/{}/enabled", el.0), None)
            .await
            .map(|v| v == true)
            .unwrap_or(false)
    }

    /// Whether `el` is displayed.
    pub async fn displayed(&self, el: &Element) -> bool {
        self.cmd("GET", &format!("/element/{}/displayed", el.0), None)
            .await
            .map(|v| v == true)
            .unwrap_or(false)
    }

    /// The whole page's visible text (the first 3,000 characters, for failure messages).
    pub async fn page_text(&self) -> String {
        let v = self
            .try_exec(
                "return document.body ? document.body.innerText : document.documentElement.outerHTML;",
                json!([]),
            )
            .await;
        match v {
            Ok(Value::String(s)) => s.chars().take(3000).collect(),
            Ok(other) => other.to_string(),
            Err(e) => format!("(no page text: {e})"),
        }
    }

    /// Sets the browser window's size (CSS pixels).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await
        .unwrap_or_else(|e| panic!("set window size {width}x{height}: {e}"));
    }

    /// Writes a PNG screenshot of the whole page (up to `max_height` CSS pixels tall) to `path`:
    /// the window is made as tall as the page for the shot, then set back to `width`×`height`.
    pub async fn full_page_screenshot(
        &self,
        path: &Path,
        width: u32,
        height: u32,
        max_height: u32,
    ) {
        let v = self
            .exec(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
                json!([]),
            )
            .await;
        let page = v[0].as_u64().unwrap_or(u64::from(height)) as u32;
        let chrome = v[1].as_u64().unwrap_or(0) as u32;
        let tall = (page + chrome).clamp(height, max_height);
        if tall > height {
            self.set_window_size(width, tall).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let shot = self.try_screenshot(path).await;
        if tall > height {
            self.set_window_size(width, height).await;
        }
        if let Err(e) = shot {
            panic!("screenshot to {}: {e}", path.display());
        }
    }

    /// Writes a PNG screenshot of the viewport to `path` (creating its directory).
    pub async fn screenshot(&self, path: &Path) {
        if let Err(e) = self.try_screenshot(path).await {
            panic!("screenshot to {}: {e}", path.display());
        }
    }

    /// [`Browser::screenshot`] that gives the error back.
    pub async fn try_screenshot(&self, path: &Path) -> Result<(), String> {
        let v = self
            .cmd("GET", "/screenshot", None)
            .await
            .map_err(|e| e.to_string())?;
        let png = v
            .as_str()
            .and_then(base64_decode)
            .ok_or("the screenshot is not base64 text")?;
        if !png.starts_with(b"\x89PNG") {
            return Err("the screenshot is not a PNG".into());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, png).map_err(|e| e.to_string())
    }

    /// Ends the session (closes the browser) and stops the driver.
    pub async fn close(mut self) {
        if self.session.is_some() {
            let _ = self.cmd("DELETE", "", None).await;
            self.session = None;
        }
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.driver.take() {
            // The process group the driver leads: the driver and the browser it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Decodes standard base64 (with or without padding; whitespace ignored).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8]),
            2 => out.push((acc >> 16) as u8),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes_padded_and_unpadded() {
        assert_eq!(super::base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(super::base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(super::base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(super::base64_decode("YWJj").unwrap(), b"abc");
        assert!(super::base64_decode("a$==").is_none());
    }
}
