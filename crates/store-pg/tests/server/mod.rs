//! A throwaway PostgreSQL server for tests: Debian's binaries, a data directory in a temp dir,
//! a unix socket there and a free loopback port; stopped (and its files removed) on drop.
//!
//! - Binaries: `$PHAROS_PG_BINDIR`, else the newest `/usr/lib/postgresql/<N>/bin`, else `initdb`
//!   and `postgres` on `PATH`. Missing binaries skip the test (saying so), or fail it under
//!   `PHAROS_REQUIRE_ALL=1` (the project's rule, `pharos_model::conformance::skip`).
//! - As root (initdb refuses to run as root), the server runs as `nobody`.
//! - initdb runs once per machine and PostgreSQL version into a template directory in the temp
//!   dir; each server copies it (a few tenths of a second instead of seconds).
//! - The server runs under a `sh` that stops it (fast shutdown) when its stdin closes: on drop,
//!   and also when the test process dies without dropping (a panic that aborts, a SIGKILL from a
//!   test runner's timeout), so no server outlives its test.
//! - `fsync=off` by default (tests do not pull the plug); [`PgServer::start_durable`] keeps the
//!   server's durable defaults, for measurements.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; see the module docs.
pub struct PgServer {
    dir: tempfile::TempDir,
    sock: PathBuf,
    port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    next_db: std::sync::atomic::AtomicU32,
}

/// The user the server runs as: `None` for this process's user, `Some((uid, gid))` for `nobody`
/// when this process is root.
fn server_user() -> Option<(u32, u32)> {
    let out = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        return None;
    }
    let num = |flag: &str| -> Option<u32> {
        let o = Command::new("id").args([flag, "nobody"]).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    Some((num("-u")?, num("-g")?))
}

/// The directory holding `initdb` and `postgres`, or why there is none.
fn bindir() -> Result<PathBuf, String> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = std::env::var_os("PHAROS_PG_BINDIR") {
        let d = PathBuf::from(d);
        return if has(&d) {
            Ok(d)
        } else {
            Err(format!(
                "PHAROS_PG_BINDIR={} has no initdb and postgres",
                d.display()
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let d = e.path().join("bin");
            has(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Ok(d);
    }
    for d in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if has(&d) {
            return Ok(d);
        }
    }
    Err(
        "PostgreSQL server binaries (initdb, postgres) not found: install Debian's \
         postgresql (e.g. postgresql-15) or set PHAROS_PG_BINDIR"
            .into(),
    )
}

/// A command that runs as the server's user.
fn as_server_user(program: &Path, user: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

fn chown_to(path: &Path, user: Option<(u32, u32)>) -> std::io::Result<()> {
    match user {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
        None => Ok(()),
    }
}

/// The template data directory for this version and user, made by initdb if missing.
fn template(bin: &Path, user: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let version = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", bin.join("postgres").display()))?;
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the first number.
    let version: String = String::from_utf8_lossy(&version.stdout)
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let uid = user.map_or_else(|| "self".to_string(), |(u, _)| u.to_string());
    let tmp = std::env::temp_dir();
    let dir = tmp.join(format!("pharos-pg-template-{version}-{uid}"));
    if dir.join("PG_VERSION").is_file() {
        return Ok(dir);
    }
    let staging = tmp.join(format!(
        "pharos-pg-template-{version}-{uid}.tmp-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let out = as_server_user(&bin.join("initdb"), user)
        .current_dir(&tmp)
        .arg("-D")
        .arg(&staging)
        .args([
            "-U",
            "pharos",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Another test may have made it meanwhile: then ours is surplus.
    if std::fs::rename(&staging, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if dir.join("PG_VERSION").is_file() {
        Ok(dir)
    } else {
        Err(format!("template {} is incomplete", dir.display()))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl PgServer {
    /// Starts a server, or says why it cannot: skipped (`None`) when PostgreSQL is not installed,
    /// a failure under `PHAROS_REQUIRE_ALL=1`. A server that is installed but does not start
    /// fails the test.
    pub fn start() -> Option<Self> {
        Self::start_with(&[("fsync", "off")])
    }

    /// As [`PgServer::start`], with the server's durable defaults (fsync on).
    pub fn start_durable() -> Option<Self> {
        Self::start_with(&[])
    }

    fn start_with(settings: &[(&str, &str)]) -> Option<Self> {
        let bin = match bindir() {
            Ok(b) => b,
            Err(why) => {
                pharos_model::conformance::skip(&why);
                return None;
            }
        };
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin, settings) {
                Ok(s) => return Some(s),
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn try_start(bin: &Path, settings: &[(&str, &str)]) -> Result<Self, String> {
        let user = server_user();
        let template = template(bin, user)?;
        let dir = tempfile::Builder::new()
            .prefix("pharos-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod: {e}"))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&data)
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !status.success() {
            return Err(format!("cp -a {} failed", template.display()));
        }
        std::fs::create_dir(&sock).map_err(|e| format!("mkdir: {e}"))?;
        chown_to(&sock, user).map_err(|e| format!("chown: {e}"))?;
        let log = dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log: {e}"))?;
        chown_to(&log, user).map_err(|e| format!("chown: {e}"))?;
        let port = free_port();
        let mut c = as_server_user(Path::new("/bin/sh"), user);
        c.arg("-c")
            .arg(r#"pg="$1"; shift; "$pg" "$@" & pid=$!; read _ignored; kill -INT "$pid" 2>/dev/null; wait "$pid""#)
            .arg("sh")
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&sock)
            .arg("-p")
            .arg(port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"]);
        for (k, v) in settings {
            c.arg("-c").arg(format!("{k}={v}"));
        }
        let mut child = c
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("sh: {e}"))?;
        let stdin = child.stdin.take();
        let server = Self {
            dir,
            sock,
            port,
            child,
            stdin,
            next_db: std::sync::atomic::AtomicU32::new(0),
        };
        server.wait_ready(&log)?;
        Ok(server)
    }

    /// Polls until the server accepts a connection (30 s at most).
    fn wait_ready(&self, log: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if postgres::Client::connect(&self.url(), postgres::NoTls).is_ok() {
                return Ok(());
            }
            let exited = self.child_exited();
            if exited || Instant::now() > deadline {
                let mut text = String::new();
                let _ = std::fs::File::open(log).and_then(|mut f| f.read_to_string(&mut text));
                return Err(format!(
                    "{} (log {}):\n{text}",
                    if exited {
                        "it exited"
                    } else {
                        "not ready in 30 s"
                    },
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn child_exited(&self) -> bool {
        // `try_wait` needs `&mut`; the pid's /proc entry tells the same without reaping.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()));
        stat.map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
    }

    /// Connection string of the `postgres` database over the unix socket.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// Connection string of database `db` over the unix socket.
    pub fn url_for(&self, db: &str) -> String {
        format!(
            "host={} port={} user=pharos dbname={db}",
            self.sock.display(),
            self.port
        )
    }

    /// Connection string of database `db` over loopback TCP.
    pub fn tcp_url_for(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=pharos dbname={db}", self.port)
    }

    /// A new empty database; returns its name.
    pub fn create_database(&self) -> String {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("pharos_test_{n}");
        let mut c = postgres::Client::connect(&self.url(), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        name
    }

    /// A plain client of database `db`, for tests that look under the store.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url_for(db), postgres::NoTls).unwrap()
    }

    /// The temp dir holding data, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Closing stdin makes the supervising shell stop the server (fast shutdown) and wait.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
