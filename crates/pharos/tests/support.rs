//! Test support: starts the real `pharos` binary on a free port in a temp dir and talks to it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The secret of the admin token every [`Instance`] is configured with (`[[api.token]]`).
pub const ADMIN_TOKEN: &str = "phr_e2e-admin-0123456789abcdef0123456789abcdef";

/// The `[[api.token]]` entry of [`ADMIN_TOKEN`] (appended to every instance's configuration).
pub fn admin_token_toml() -> String {
    format!(
        "\n[[api.token]]\nname = \"e2e-admin\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
        sha256_hex(ADMIN_TOKEN)
    )
}

/// Hex SHA-256 of a token secret, as `[[api.token]] sha256` takes it.
pub fn sha256_hex(secret: &str) -> String {
    pharos_api::auth::tokens::hash(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A running `pharos run` in its own temp directory.
pub struct Instance {
    /// The daemon's process, until it is stopped.
    pub child: Option<Child>,
    /// Its directory: `pharos.toml`, `pharos.log` and the data directory `data/`.
    pub dir: tempfile::TempDir,
    /// The API's base URL (`http://127.0.0.1:PORT`).
    pub base: String,
}

/// The `pharos` binary: `PHAROS_BIN` when set (a copy taken right after the build, for a target
/// directory shared with other checkouts), else the one cargo built for these tests.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("PHAROS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pharos").to_string())
    })
}

/// Where ../shared is (CI has it beside the repo), if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = std::env::var_os("PHAROS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    p.join("yang").is_dir().then_some(p)
}

/// The repository's root.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Instance {
    /// Starts pharos with `extra` appended to a config that listens on port 0.
    pub fn start(extra: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra)
    }

    /// Starts pharos in `dir` (a directory kept from a stopped instance, say) with `extra`
    /// appended to a config that listens on port 0.
    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> Instance {
        let data = dir.path().join("data");
        let cfg = dir.path().join("pharos.toml");
        std::fs::write(
            &cfg,
            format!(
                "[api]\nlisten = \"127.0.0.1:0\"\n{extra}\n[store]\ndata_dir = {:?}\n{}",
                data.display().to_string(),
                admin_token_toml()
            ),
        )
        .unwrap();
        Self::launch(dir, extra.contains("[api.tls]"))
    }

    /// Runs `pharos run --config <dir>/pharos.toml` (whose data directory is `<dir>/data`), its
    /// log in `<dir>/pharos.log`, and waits until it wrote `api.addr`.
    pub fn launch(dir: tempfile::TempDir, https: bool) -> Instance {
        let data = dir.path().join("data");
        let cfg = dir.path().join("pharos.toml");
        let _ = std::fs::remove_file(data.join("api.addr"));
        let log = std::fs::File::create(dir.path().join("pharos.log")).unwrap();
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut inst = Instance {
            child: Some(child),
            dir,
            base: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr_file = data.join("api.addr");
        loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file)
                && s.ends_with('\n')
            {
                let scheme = if https { "https" } else { "http" };
                inst.base = format!("{scheme}://{}", s.trim());
                break;
            }
            if let Some(status) = inst.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "pharos exited during start-up with {status}: {}",
                    inst.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "pharos did not start within 60 s: {}",
                inst.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        inst
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pharos.log")).unwrap_or_default()
    }

    /// The first flow collector's bound address (from `data/flow.addr`).
    pub fn flow_addr(&self) -> std::net::SocketAddr {
        std::fs::read_to_string(self.dir.path().join("data/flow.addr"))
            .expect("data/flow.addr: the instance has no [flow] listener")
            .lines()
            .next()
            .expect("an address in data/flow.addr")
            .parse()
            .expect("a socket address in data/flow.addr")
    }

    /// The URL of `path` on the instance's API.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit status (deadline 30 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("pharos did not stop within 30 s of SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops and gives back the temp dir, to restart on the same data.
    pub fn stop_keep_dir(mut self) -> tempfile::TempDir {
        let status = self.terminate();
        assert!(status.success(), "exit status {status}: {}", self.log());
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Installs ring as the process's rustls provider (reqwest is built with `rustls-no-provider`).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for tests that sends the admin token ([`ADMIN_TOKEN`]) with every request.
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(auth_headers(ADMIN_TOKEN))
        .build()
        .unwrap()
}

/// `POST /api/v1/push` of `body` (YANG-JSON notifications) with `http`'s credentials.
pub async fn push_as(
    inst: &Instance,
    http: &reqwest::Client,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    http.post(inst.url("/api/v1/push"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// `POST /api/v1/push` of `body` with the admin token: the status and the JSON answer (null
/// when the answer is not JSON).
pub async fn push(inst: &Instance, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
    let resp = push_as(inst, &client(), body).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// [`push`] that must be accepted (200): the JSON answer (`stored`, `ids`).
pub async fn push_ok(inst: &Instance, body: impl Into<reqwest::Body>) -> serde_json::Value {
    let (status, v) = push(inst, body).await;
    assert_eq!(status, 200, "push refused: {v}");
    v
}

/// Headers that send `token` as `Authorization: Bearer`.
pub fn auth_headers(token: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    h
}

/// Validates YANG-JSON documents with yanglint (the model crate's conformance harness).
/// Ok(false) when yanglint or the modules are absent (the caller says it skipped).
pub fn yanglint_validate(docs: &[serde_json::Value]) -> Result<bool, String> {
    use pharos_model::conformance::{Outcome, validate_json};
    match validate_json(docs)? {
        Outcome::Validated(_) => Ok(true),
        Outcome::Skipped(why) => {
            pharos_model::conformance::skip(&format!("yanglint: {why}"));
            Ok(false)
        }
    }
}

/// The text of the instance's `/metrics` page.
pub async fn metrics_text(inst: &Instance) -> String {
    client()
        .get(inst.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sum of every series of `name` whose label text contains all of `labels` (e.g.
/// `protocol="ipfix"`).
pub async fn metric(inst: &Instance, name: &str, labels: &[&str]) -> u64 {
    metrics_text(inst)
        .await
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|x| rest.contains(x)))
                .then(|| value.parse::<f64>().ok())?
        })
        .map(|v| v as u64)
        .sum()
}

/// One UDP datagram of a generated capture.
pub struct PcapUdp {
    /// Source address and port.
    pub src: std::net::SocketAddrV4,
    /// Destination address and port.
    pub dst: std::net::SocketAddrV4,
    /// Capture time: seconds.
    pub secs: u32,
    /// Capture time: microseconds.
    pub usec: u32,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Writes a classic pcap (Ethernet, IPv4 with a valid header checksum, UDP) of `datagrams`.
pub fn write_udp_pcap(path: &Path, datagrams: impl IntoIterator<Item = PcapUdp>) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, d) in datagrams.into_iter().enumerate() {
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + 8 + d.payload.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&(i as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&d.src.ip().octets());
        ip.extend_from_slice(&d.dst.ip().octets());
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&d.src.port().to_be_bytes());
        frame.extend_from_slice(&d.dst.port().to_be_bytes());
        frame.extend_from_slice(&((8 + d.payload.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&d.payload);
        out.extend_from_slice(&d.secs.to_le_bytes());
        out.extend_from_slice(&d.usec.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

/// `GET path` on the instance, as JSON (panics on a transport error or a body that is not JSON).
pub async fn get_json(inst: &Instance, path: &str) -> serde_json::Value {
    client()
        .get(inst.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `items` of `GET /api/v1/messages?QUERY` (e.g. `kind=ddos&limit=100`).
pub async fn messages(inst: &Instance, query: &str) -> Vec<serde_json::Value> {
    let page = get_json(inst, &format!("/api/v1/messages?{query}")).await;
    page["items"].as_array().cloned().unwrap_or_default()
}
