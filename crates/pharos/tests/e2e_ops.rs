//! Operations on the real binary: the data-directory lock, stopping at any moment of start-up,
//! checkpoints at shutdown, backup and restore, and the log's format (docs/operations.md).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{Instance, bin, client};

/// Every listener on an ephemeral loopback port: the instance needs no fixed port.
const PORTS: &str =
    "[flow]\nlisten = [\"127.0.0.1:0\"]\n[syslog]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n";

const ADDR_FILES: [&str; 3] = ["api.addr", "flow.addr", "syslog.addr"];

fn pharos(args: &[&str], extra: &[&Path]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits for `child` to exit (deadline `secs`), killing it and panicking past the deadline.
fn wait_exit(child: &mut std::process::Child, secs: u64, what: &str) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A configuration file in `dir` with `extra`, the admin token and `data_dir = dir/data`.
fn write_config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let cfg = dir.join(name);
    std::fs::write(
        &cfg,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n{extra}\n[store]\ndata_dir = {:?}\n{}",
            dir.join("data").display().to_string(),
            support::admin_token_toml()
        ),
    )
    .unwrap();
    cfg
}

/// NDJSON of `n` system alarms, `tag` in their text.
fn alarms(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| {
            serde_json::json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
                "nsf-name": "fw-1", "message": format!("{tag} {i}"),
                "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "severity": "high", "usage": 91, "threshold": 80}
            }})
            .to_string()
                + "\n"
        })
        .collect()
}

async fn push(inst: &Instance, body: String) -> u64 {
    support::push_ok(inst, body).await["stored"]
        .as_u64()
        .unwrap()
}

/// Every message the instance serves (all pages).
async fn message_count(inst: &Instance) -> usize {
    let http = client();
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(inst.url("/api/v1/messages"))
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        n += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return n,
        }
    }
}

/// Flows in the finished segments under `<data>/flows`.
fn archived_flows(data: &Path) -> usize {
    pharos_flows::segment::list_segments(&data.join("flows"))
        .iter()
        .map(|s| {
            pharos_flows::segment::read_segment(&s.path)
                .unwrap_or_else(|e| panic!("{}: {e}", s.path.display()))
                .len()
        })
        .sum()
}

/// A NetFlow v5 datagram of `n` flows.
fn v5_datagram(n: u16) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let header = V5Header {
        sys_uptime: 3_600_000,
        unix_secs: 1_764_000_000,
        ..V5Header::default()
    };
    let records: Vec<V5RecordRepr> = (0..n)
        .map(|k| V5RecordRepr {
            src_addr: [10, 0, 0, k as u8].into(),
            dst_addr: [198, 51, 100, 1].into(),
            next_hop: [192, 0, 2, 254].into(),
            input: 1,
            output: 2,
            packets: 10,
            octets: 640,
            first: 3_500_000,
            last: 3_599_000,
            src_port: 1024 + k,
            dst_port: 443,
            tcp_flags: 0x1b,
            proto: 6,
            src_mask: 24,
            dst_mask: 24,
            ..V5RecordRepr::default()
        })
        .collect();
    emit(&header, &records).expect("at most 30 flows a datagram")
}

/// SIGKILLs the instance and gives back its temp dir.
fn sigkill(mut inst: Instance) -> tempfile::TempDir {
    let mut child = inst.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    std::mem::replace(&mut inst.dir, tempfile::tempdir().unwrap())
}

fn leftovers(data: &Path) -> Vec<&'static str> {
    std::iter::once("pharos.lock")
        .chain(ADDR_FILES)
        .filter(|f| data.join(f).exists())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_data_directory_is_refused_and_the_first_keeps_its_files() {
    let inst = Instance::start(PORTS);
    let data = inst.dir.path().join("data");
    let pid = inst.child.as_ref().unwrap().id();
    let lock = std::fs::read_to_string(data.join("pharos.lock")).unwrap();
    assert_eq!(lock.trim(), pid.to_string());
    let before: Vec<String> = ADDR_FILES
        .iter()
        .map(|f| std::fs::read_to_string(data.join(f)).unwrap())
        .collect();

    // Other (ephemeral) ports, the same data directory.
    let cfg = write_config(inst.dir.path(), "second.toml", PORTS);
    let mut second = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut second, 30, "the second daemon");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains(&format!("in use by pid {pid}")), "{err}");

    let after: Vec<String> = ADDR_FILES
        .iter()
        .map(|f| std::fs::read_to_string(data.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(push(&inst, alarms(1, "still serving")).await, 1);

    // Readers work alongside the daemon.
    let out = pharos(&["token", "list", "--config"], &[&cfg]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("e2e-admin"));
    let out = pharos(&["flows", "query", "--data-dir"], &[&data]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn after_a_sigkill_the_stale_lock_file_does_not_block_a_restart() {
    let inst = Instance::start(PORTS);
    let dir = sigkill(inst);
    let data = dir.path().join("data");
    assert!(
        data.join("pharos.lock").exists(),
        "a SIGKILL leaves the file"
    );
    let mut inst = Instance::start_in(dir, PORTS);
    let status = inst.terminate();
    assert!(status.success(), "{status}: {}", inst.log());
    assert_eq!(leftovers(&data), Vec::<&str>::new(), "{}", inst.log());
}

#[test]
fn token_list_in_an_empty_directory_creates_nothing_and_says_how_to_get_a_database() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("bare.toml");
    std::fs::write(
        &cfg,
        format!("[store]\ndata_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let out = pharos(&["token", "list", "--config"], &[&cfg]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "no token database at {}",
            data.join("auth.db").display()
        )) && err.contains("pharos token create"),
        "{err}"
    );
    let out = pharos(&["token", "revoke", "nobody", "--config"], &[&cfg]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        !data.exists(),
        "token list/revoke created {}",
        data.display()
    );

    // With configured tokens, list shows them, still without creating anything.
    let cfg = write_config(tmp.path(), "tokens.toml", "");
    let out = pharos(&["token", "list", "--config"], &[&cfg]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("e2e-admin"));
    assert!(!data.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_stop_messages_db_alone_holds_every_message() {
    let inst = Instance::start(PORTS);
    assert_eq!(push(&inst, alarms(300, "kept")).await, 300);
    let dir = inst.stop_keep_dir();
    let data = dir.path().join("data");
    let wal = data.join("messages.db-wal");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    let other = tempfile::tempdir().unwrap();
    let copy = other.path().join("messages.db");
    std::fs::copy(data.join("messages.db"), &copy).unwrap();
    let store = pharos_store::SqliteStore::open(&copy).unwrap();
    use pharos_store::MessageStore;
    assert_eq!(store.count().unwrap(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_running_restores_into_a_fresh_directory_and_serves() {
    let inst = Instance::start(PORTS);
    let data = inst.dir.path().join("data");
    let cfg = inst.dir.path().join("pharos.toml");
    assert_eq!(push(&inst, alarms(200, "before")).await, 200);
    let out = pharos(
        &[
            "token",
            "create",
            "--role",
            "viewer",
            "--name",
            "backed-up",
            "--config",
        ],
        &[&cfg],
    );
    assert!(out.status.success(), "{}", text(&out));
    let flow_addr: std::net::SocketAddr = std::fs::read_to_string(data.join("flow.addr"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&v5_datagram(10), flow_addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while archived_flows(&data) < 10 {
        assert!(
            Instant::now() < deadline,
            "flows not archived: {}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Writes go on during the backup.
    let base = inst.base.clone();
    let writing = tokio::spawn(async move {
        let http = client();
        for i in 0..50 {
            let _ = http
                .post(format!("{base}/api/v1/push"))
                .header("content-type", "application/json")
                .body(alarms(20, &format!("during {i}")))
                .send()
                .await;
        }
    });
    let backup = tempfile::tempdir().unwrap();
    let into = backup.path().join("b1");
    let out = pharos(&["backup", "--config"], &[&cfg, &into]);
    assert!(out.status.success(), "{}", text(&out));
    writing.await.unwrap();
    for db in ["messages.db", "nsfs.db", "auth.db", "subscriptions.db"] {
        assert!(into.join(db).exists(), "{db} not backed up");
        assert!(!into.join(format!("{db}-wal")).exists());
    }
    assert!(into.join("pharos-backup.json").exists());
    let mut inst = inst;
    assert!(inst.terminate().success(), "{}", inst.log());

    let fresh = tempfile::tempdir().unwrap();
    let restored = fresh.path().join("data");
    let out = pharos(&["restore", "--data-dir"], &[&restored, &into]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(archived_flows(&restored), 10);
    let again = Instance::start_in(fresh, PORTS);
    let n = message_count(&again).await;
    assert!((200..=1200).contains(&n), "{n} messages restored");
    let out = pharos(
        &["token", "list", "--config"],
        &[&again.dir.path().join("pharos.toml")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed-up"));
}

#[test]
fn restore_refuses_a_running_daemon_a_non_empty_directory_and_a_partial_backup() {
    let mut inst = Instance::start(PORTS);
    let data = inst.dir.path().join("data");
    let pid = inst.child.as_ref().unwrap().id();
    let backup = tempfile::tempdir().unwrap();
    let into = backup.path().join("b");
    let out = pharos(&["backup", "--data-dir"], &[&data, &into]);
    assert!(out.status.success(), "{}", text(&out));

    let out = pharos(&["restore", "--force", "--data-dir"], &[&data, &into]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("in use by pid {pid}")),
        "{}",
        text(&out)
    );
    assert!(inst.terminate().success(), "{}", inst.log());

    let out = pharos(&["restore", "--data-dir"], &[&data, &into]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{}",
        text(&out)
    );
    let out = pharos(&["restore", "--force", "--data-dir"], &[&data, &into]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(data.join("messages.db").exists());

    std::fs::remove_file(into.join("pharos-backup.json")).unwrap();
    let empty = backup.path().join("empty-data");
    let out = pharos(&["restore", "--data-dir"], &[&empty, &into]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a complete Pharos backup"),
        "{}",
        text(&out)
    );
}

/// Whether the process `pid` catches SIGTERM (its handler is installed), from /proc.
fn catches_sigterm(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
    let mask = u64::from_str_radix(mask.trim(), 16).ok()?;
    Some(mask & (1 << (15 - 1)) != 0)
}

#[test]
fn sigterm_at_any_moment_of_start_up_stops_cleanly() {
    let delays_us = [
        0u64, 200, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000,
    ];
    let mut before_start_up_done = 0;
    for delay in delays_us {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = write_config(tmp.path(), "pharos.toml", PORTS);
        let data = tmp.path().join("data");
        let log_path = tmp.path().join("pharos.log");
        let mut child = Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let pid = child.id();
        // The handler must be in place before a stop can be handled; poll for it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if catches_sigterm(pid) == Some(true) {
                break;
            }
            if let Some(s) = child.try_wait().unwrap() {
                panic!(
                    "exited with {s} before catching SIGTERM: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "SIGTERM never caught");
            std::thread::yield_now();
        }
        if !data.join("api.addr").exists() {
            before_start_up_done += 1;
        }
        std::thread::sleep(Duration::from_micros(delay));
        let ok = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = wait_exit(&mut child, 30, "pharos after SIGTERM");
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(
            status.success(),
            "SIGTERM {delay} us after the handler: {status}\n{log}"
        );
        assert_eq!(
            leftovers(&data),
            Vec::<&str>::new(),
            "SIGTERM {delay} us after the handler\n{log}"
        );
    }
    assert!(
        before_start_up_done > 0,
        "the SIGTERM handler was installed only once start-up was over, in every run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_in_a_file_has_no_colour_codes_and_json_lines_parse() {
    let mut inst = Instance::start(PORTS);
    assert!(inst.terminate().success());
    let log = inst.log();
    assert!(log.contains("pharos starting"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );

    let mut inst = Instance::start(&format!("{PORTS}[log]\nformat = \"json\"\n"));
    assert!(inst.terminate().success());
    let log = inst.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "pharos starting"),
        "{log}"
    );
    assert!(lines.iter().all(|v| v["level"].is_string()), "{log}");
}

/// A key of the previous release still starts the daemon, with a warning in its log that names
/// the old key, the new key and the new value.
#[test]
fn an_old_key_starts_the_daemon_with_a_deprecation_warning_in_its_log() {
    let mut inst = Instance::start("[syslog]\nidle_timeout_secs = 300\n");
    let log = inst.log();
    assert!(
        log.contains("[syslog] idle_timeout_secs = 300 is deprecated")
            && log.contains("write idle_timeout = ")
            && log.contains("5m"),
        "{log}"
    );
    inst.terminate();
}
