//! A throw-away ClickHouse server for one test: its own temp directory (config, data, logs), a
//! free loopback port, started as a plain process (not a service), ready once `/ping` answers,
//! killed and deleted on drop.
//!
//! The server binary: `$PHAROS_CLICKHOUSE_SERVER`, else `clickhouse-server` (Debian's package,
//! 18.16), else `clickhouse` (the single binary of current releases, run as `clickhouse
//! server`). When none exists the test skips, or fails under `PHAROS_REQUIRE_ALL=1`
//! ([`pharos_model::conformance::skip`]).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pharos_clickhouse::{Archive, Client};

/// A running test server.
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    /// The HTTP port on 127.0.0.1.
    pub http_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The server command: program and leading arguments.
fn server_command() -> Option<(PathBuf, Vec<String>)> {
    if let Some(p) = std::env::var_os("PHAROS_CLICKHOUSE_SERVER") {
        let p = PathBuf::from(p);
        // The single binary of current releases needs its subcommand.
        let args = if p.file_name().is_some_and(|n| n == "clickhouse") {
            vec!["server".to_string()]
        } else {
            Vec::new()
        };
        return p.is_file().then_some((p, args));
    }
    let on_path = |name: &str| -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    if let Some(p) = on_path("clickhouse-server") {
        return Some((p, Vec::new()));
    }
    on_path("clickhouse").map(|p| (p, vec!["server".to_string()]))
}

fn config(dir: &Path, http: u16, tcp: u16, log: bool) -> String {
    let d = dir.display();
    let (query_log, log_queries) = if log {
        (
            "  <query_log><database>system</database><table>query_log</table>\
             <flush_interval_milliseconds>500</flush_interval_milliseconds></query_log>\n",
            "<log_queries>1</log_queries>",
        )
    } else {
        ("", "")
    };
    format!(
        r#"<?xml version="1.0"?>
<clickhouse>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <mark_cache_size>67108864</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <timezone>UTC</timezone>
  <merge_tree><old_parts_lifetime>1</old_parts_lifetime></merge_tree>
{query_log}  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <profiles><default>{log_queries}</default></profiles>
  <quotas><default></default></quotas>
</clickhouse>
"#
    )
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.") && out.contains(" 200 ") && out.ends_with("Ok.\n")
}

impl Server {
    /// Starts a server, or says why it cannot (skipping the test, or failing it under
    /// `PHAROS_REQUIRE_ALL=1`) and returns `None`.
    pub fn start() -> Option<Server> {
        Self::start_with(false)
    }

    /// [`Server::start`], with every query logged in `system.query_log`.
    pub fn start_logging_queries() -> Option<Server> {
        Self::start_with(true)
    }

    fn start_with(log_queries: bool) -> Option<Server> {
        let Some((program, args)) = server_command() else {
            pharos_model::conformance::skip(
                "clickhouse-server not found (Debian: apt-get install clickhouse-server; or set \
                 PHAROS_CLICKHOUSE_SERVER to the server binary)",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let (http_port, tcp_port) = (free_port(), free_port());
        let cfg = dir.path().join("config.xml");
        std::fs::write(&cfg, config(dir.path(), http_port, tcp_port, log_queries))
            .expect("write config");
        let log = std::fs::File::create(dir.path().join("stdout.log")).expect("log file");
        let child = Command::new(&program)
            .args(&args)
            .arg(format!("--config-file={}", cfg.display()))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut server = Server {
            child,
            dir,
            http_port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ping(http_port) {
                return Some(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{} exited ({status}) before answering /ping:\n{}",
                    program.display(),
                    server.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer /ping on port {http_port} within 60 s:\n{}",
                program.display(),
                server.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's logs, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for f in ["stdout.log", "server.err.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(30);
            out.push_str(&format!("--- {f}\n{}\n", lines[from..].join("\n")));
        }
        out
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The HTTP URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// A client of database `db`.
    pub fn client(&self, db: &str) -> Client {
        Client::new(&self.url(), db, "default", None, Duration::from_secs(60))
            .expect("a client of the test server")
    }

    /// A migrated archive in database `db`.
    pub async fn archive(&self, db: &str) -> Archive {
        let a = Archive::new(self.client(db));
        a.migrate().await.expect("migrate");
        a
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
