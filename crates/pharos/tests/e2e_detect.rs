//! End-to-end detection: `pharos detect` over a generated NetFlow v5 capture (background traffic
//! plus an NTP reflection, a SYN flood and an ICMP flood), and the daemon with `[detect]` fed by `pharos replay`:
//! the DDoS events through the API and the `[detect_hook]` runs.

mod attack;
mod support;

use attack::{Flow, ICMP_VICTIM, UPTIME, background, ntp_flood, syn_flood, v5_datagram};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pharos_model::Kind;
use pharos_model::ident::Identity;
use serde_json::Value;
use support::{Instance, bin, client, metric};

/// Attacks in a capture with [`Extra::Floods`].
const ATTACKS: usize = 3;

/// ICMP flood: 30 sources sending echo requests, 500 a second each (15,000 pps).
fn icmp_flood(s: u32) -> Vec<Flow> {
    (0..30)
        .map(|j| Flow {
            src: [100, 65, (s % 256) as u8, j as u8 + 1],
            dst: ICMP_VICTIM,
            sport: 0,
            // NetFlow v5 carries ICMP type and code in the destination port: echo request 8/0.
            dport: 0x0800,
            proto: 1,
            flags: 0,
            packets: 500,
            bytes: 500 * 84,
        })
        .collect()
}

/// Port scan: 192.0.2.99 sends one SYN to each of 30 new ports of 198.51.100.77 every second
/// from second 3 to 7 (150 ports).
fn port_scan(s: u32) -> Vec<Flow> {
    if !(3..8).contains(&s) {
        return Vec::new();
    }
    (0..30)
        .map(|j| Flow {
            src: [192, 0, 2, 99],
            dst: [198, 51, 100, 77],
            sport: 50_000,
            dport: ((s - 3) * 30 + j + 1) as u16,
            proto: 6,
            flags: 0x02,
            packets: 1,
            bytes: 44,
        })
        .collect()
}

/// What a generated capture holds besides background traffic.
#[derive(Clone, Copy, PartialEq)]
enum Extra {
    None,
    /// An NTP reflection, a SYN flood and an ICMP flood.
    Floods,
    PortScan,
}

/// Writes a pcap of `secs` seconds of exports from 192.0.2.10 starting at `t0` (Unix seconds):
/// per second one background datagram and the datagrams of `extra`; returns how many.
fn write_capture(path: &Path, t0: u32, secs: u32, extra: Extra) -> u32 {
    let mut dgs: Vec<(u32, u32, Vec<u8>)> = Vec::new();
    let mut seq = 0;
    for s in 0..secs {
        let (uptime, unix) = (UPTIME + s * 1000, t0 + s);
        let mut per_second = vec![background(s)];
        match extra {
            Extra::None => {}
            Extra::Floods => per_second.extend([ntp_flood(s), syn_flood(s), icmp_flood(s)]),
            Extra::PortScan => per_second.push(port_scan(s)),
        }
        per_second.retain(|f| !f.is_empty());
        for (i, flows) in per_second.iter().enumerate() {
            dgs.push((unix, i as u32 * 1000, v5_datagram(seq, uptime, unix, flows)));
            seq += flows.len() as u32;
        }
    }
    let n = dgs.len() as u32;
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
    n
}

fn detect_json(file: &Path, extra: &[&str]) -> (Vec<Value>, String) {
    let out = Command::new(bin())
        .arg("detect")
        .arg(file)
        .args(["--json", "--networks", "198.51.100.0/24"])
        .args(extra)
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "pharos detect failed: {stderr}");
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, stderr)
}

/// (attack type, victim) of a DDoS notification.
fn ddos_of(notification: &Value) -> Option<(String, String, bool)> {
    let m = pharos_model::json::decode(notification).ok()?;
    let Kind::Ddos(d) = m.kind else { return None };
    Some((
        d.attack_type
            .map(|t| t.name().to_string())
            .unwrap_or_default(),
        d.attack_dst_ip.first()?.to_string(),
        d.end_time.is_some(),
    ))
}

fn expected() -> BTreeSet<(String, String)> {
    [
        ("ntp-amp-flood".to_string(), "198.51.100.10".to_string()),
        ("syn-flood".to_string(), "198.51.100.20".to_string()),
        ("icmpv4-flood".to_string(), "198.51.100.30".to_string()),
    ]
    .into()
}

#[test]
fn offline_detect_finds_the_ntp_reflection_the_syn_flood_and_the_icmp_flood_and_nothing_in_background()
 {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("attacks.pcap");
    write_capture(&pcap, 1_764_000_000, 20, Extra::Floods);
    let (lines, stderr) = detect_json(&pcap, &[]);
    let phases = |p: &str| -> BTreeSet<(String, String)> {
        lines
            .iter()
            .filter(|l| l["phase"] == p)
            .filter_map(|l| ddos_of(&l["notification"]))
            .map(|(t, v, _)| (t, v))
            .collect()
    };
    assert_eq!(phases("started"), expected(), "{lines:?}\n{stderr}");
    assert_eq!(phases("ended"), expected(), "{lines:?}\n{stderr}");
    assert_eq!(
        lines.iter().filter(|l| l["phase"] == "started").count(),
        ATTACKS,
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l["phase"] != "scan"), "{lines:?}");
    for l in &lines {
        assert!(
            l["event-time"].as_str().unwrap().starts_with("2025-11-24T"),
            "{l}"
        );
        assert!(
            l["attack-id"]
                .as_str()
                .unwrap()
                .starts_with("ddos/198.51.100."),
            "{l}"
        );
    }
    assert!(
        stderr.contains("2400 flows from 80 datagrams") && stderr.contains("attacks started 3"),
        "{stderr}"
    );

    // The readable form names the same attacks.
    let out = Command::new(bin())
        .arg("detect")
        .arg(&pcap)
        .args(["--networks", "198.51.100.0/24"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.contains("started")
            && l.contains("ntp-amp-flood")
            && l.contains("victim=198.51.100.10")
            && l.contains("pps")
            && l.contains("bit/s")),
        "{text}"
    );

    let quiet = tmp.path().join("background.pcap");
    write_capture(&quiet, 1_764_000_000, 20, Extra::None);
    let (lines, stderr) = detect_json(&quiet, &[]);
    assert!(lines.is_empty(), "alarms on background alone: {lines:?}");
    assert!(stderr.contains("600 flows"), "{stderr}");
}

#[test]
fn offline_detect_takes_thresholds_from_the_config_and_names_a_bad_network() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("attacks.pcap");
    write_capture(&pcap, 1_764_000_000, 20, Extra::Floods);
    // SYN and ICMP thresholds above their floods: only the NTP reflection is left.
    let cfg = tmp.path().join("pharos.toml");
    std::fs::write(
        &cfg,
        "[detect.ddos.thresholds.syn]\npps = 50000\n[detect.ddos.thresholds.icmpv4]\npps = 50000\n",
    )
    .unwrap();
    let (lines, _) = detect_json(&pcap, &["--config", cfg.to_str().unwrap()]);
    let started: Vec<_> = lines
        .iter()
        .filter(|l| l["phase"] == "started")
        .filter_map(|l| ddos_of(&l["notification"]))
        .collect();
    assert_eq!(started.len(), 1, "{lines:?}");
    assert_eq!(started[0].0, "ntp-amp-flood");

    let out = Command::new(bin())
        .arg("detect")
        .arg(&pcap)
        .args(["--networks", "198.51.100.0/33"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("198.51.100.0/33") && e.contains("networks"),
        "{e}"
    );
}

/// Six seconds of the attack capture, stamped now (the daemon's clock is the wall clock), replayed
/// to the daemon's flow port at the capture's pace (three datagrams a second).
fn replay_live(inst: &Instance) {
    let flow_addr: SocketAddr = std::fs::read_to_string(inst.dir.path().join("data/flow.addr"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        + 1;
    let pcap = inst.dir.path().join("live.pcap");
    assert_eq!(write_capture(&pcap, now, 6, Extra::Floods), 24);
    let out = Command::new(bin())
        .arg("replay")
        .arg(&pcap)
        .args(["--to", &flow_addr.to_string(), "--rate", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `name` until it reaches `want` (deadline 30 s); returns the last value.
async fn wait_metric(inst: &Instance, name: &str, labels: &[&str], want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = metric(inst, name, labels).await;
        if v >= want || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hook_script(dir: &Path, out: &Path) -> String {
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s ' \"$PHAROS_PHASE\" >> {out:?}\ncat >> {out:?}\n",
            out = out.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// Detection on the flow port, with thresholds at a sixth of the floods (the machine may be
/// loaded: flows can arrive late or bunched) and a short window.
const LIVE: &str = "[flow]\nlisten = [\"127.0.0.1:0\"]\n[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\nwindow = \"2s\"\ndelay = \"2s\"\nthresholds.syn = { pps = 5000 }\nthresholds.ntp = { pps = 2000 }\nthresholds.icmpv4 = { pps = 2500 }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_attacks_going_on_stores_the_ends_and_runs_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let hook_out = tmp.path().join("hook.out");
    let script = hook_script(tmp.path(), &hook_out);
    // A long hold: both attacks are still going on at SIGTERM.
    let cfg = format!("{LIVE}hold = \"10m\"\n[detect_hook]\ncommand = {script:?}\n");
    let inst = Instance::start_in(tmp, &cfg);
    replay_live(&inst);
    assert_eq!(
        wait_metric(&inst, "pharos_detect_attacks_started_total", &[], 3).await,
        3,
        "{}",
        inst.log()
    );
    assert_eq!(
        metric(
            &inst,
            "pharos_detect_attacks_started_total",
            &["type=\"syn-flood\""]
        )
        .await,
        1
    );
    assert_eq!(
        metric(&inst, "pharos_detect_attacks_ended_total", &[]).await,
        0
    );
    assert_eq!(
        wait_metric(&inst, "pharos_detect_flows_total", &[], 720).await,
        720
    );
    let got = ddos_messages(&inst).await;
    assert!(got.len() == ATTACKS && got.iter().all(|g| !g.2), "{got:?}");

    let dir = inst.stop_keep_dir();
    let text = std::fs::read_to_string(&hook_out).unwrap_or_default();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ended ")).count(),
        ATTACKS,
        "the hook ran for every end before exit: {text}"
    );
    // Restarted without detection: the stored events carry their end.
    let inst = Instance::start_in(dir, "[flow]\nenabled = false\n");
    let got = ddos_messages(&inst).await;
    assert_eq!(got.len(), ATTACKS, "{got:?}");
    assert!(got.iter().all(|g| g.2), "ends stored at shutdown: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_overruns_its_timeout_is_killed_and_counted_without_delaying_detection() {
    let cfg = format!(
        "{LIVE}hold = \"2s\"\n[detect_hook]\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"sleep 30\"]\ntimeout = \"1s\"\n"
    );
    let inst = Instance::start(&cfg);
    replay_live(&inst);
    // Both attacks end 2 s after the replay, while the hook is still being killed run by run.
    assert_eq!(
        wait_metric(&inst, "pharos_detect_attacks_ended_total", &[], 3).await,
        3,
        "{}",
        inst.log()
    );
    assert!(
        wait_metric(
            &inst,
            "pharos_detect_hook_failures_total",
            &["reason=\"timeout\""],
            2
        )
        .await
            >= 2
    );
    let got = ddos_messages(&inst).await;
    assert!(got.len() == ATTACKS && got.iter().all(|g| g.2), "{got:?}");
}

#[test]
fn offline_detect_reports_a_port_scan_as_an_intrusion_event() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("scan.pcap");
    write_capture(&pcap, 1_764_000_000, 12, Extra::PortScan);
    let (lines, stderr) = detect_json(&pcap, &[]);
    assert_eq!(lines.len(), 1, "{lines:?}\n{stderr}");
    assert_eq!(lines[0]["phase"], "scan");
    assert!(lines[0].get("attack-id").is_none());
    let m = pharos_model::json::decode(&lines[0]["notification"]).unwrap();
    assert_eq!(m.kind.name(), "intrusion");
    let addrs: Vec<String> = m.addresses().iter().map(|(_, a)| a.to_string()).collect();
    assert!(
        addrs.contains(&"192.0.2.99".to_string()) && addrs.contains(&"198.51.100.77".to_string()),
        "{addrs:?}"
    );
    assert_eq!(m.rule_name(), Some("scan/port-scan"));
    assert!(stderr.contains("scans 1"), "{stderr}");
}

async fn ddos_messages(inst: &Instance) -> Vec<(String, String, bool)> {
    let page: Value = client()
        .get(inst.url("/api/v1/messages"))
        .query(&[("kind", "ddos"), ("limit", "100")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| ddos_of(&v["notification"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_stores_replayed_attacks_updates_them_at_their_end_and_runs_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let hook_out = tmp.path().join("hook.out");
    let script = hook_script(tmp.path(), &hook_out);
    let cfg = format!("{LIVE}hold = \"3s\"\n[detect_hook]\ncommand = {script:?}\n");
    let inst = Instance::start_in(tmp, &cfg);
    replay_live(&inst);

    // Started while the replay ran, ended (in place: one event per attack) after it stopped.
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = ddos_messages(&inst).await;
        if got.len() == ATTACKS && got.iter().all(|g| g.2) || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let victims: BTreeSet<(String, String)> =
        got.iter().map(|(t, v, _)| (t.clone(), v.clone())).collect();
    assert_eq!(victims, expected(), "{got:?}\n{}", inst.log());
    assert!(got.iter().all(|g| g.2), "not ended: {got:?}");
    assert_eq!(got.len(), ATTACKS, "one stored event per attack: {got:?}");
    // An attack that ended is over: its event is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page =
            support::get_json(&inst, "/api/v1/messages?kind=ddos&state=closed&limit=100").await;
        let closed = page["items"].as_array().map_or(0, Vec::len);
        if closed == ATTACKS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{closed} of {ATTACKS} ended attacks closed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The hook ran at start and at end of both.
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = std::fs::read_to_string(&hook_out).unwrap_or_default();
        let ends = text.lines().filter(|l| l.starts_with("ended ")).count();
        if ends >= ATTACKS || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for phase in ["started", "ended"] {
        for victim in ["198.51.100.10", "198.51.100.20", "198.51.100.30"] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{phase} "))
                    && l.contains(victim)
                    && l.contains("\"notification\"")),
                "no {phase} for {victim} in the hook's input: {text}\n{}",
                inst.log()
            );
        }
    }

    // The `started` run already carries the sources known when the attack was raised.
    for victim in ["198.51.100.10", "198.51.100.20", "198.51.100.30"] {
        assert!(
            text.lines().any(|l| l.starts_with("started ")
                && l.contains(victim)
                && l.contains("\"attack-src-ip\"")),
            "the started run for {victim} names no source: {text}"
        );
    }

    // The daemon's log says what detection watches, and each attack's start and end.
    let log = inst.log();
    assert!(
        log.lines()
            .any(|l| l.contains("detection started") && l.contains("198.51.100.0/24")),
        "{log}"
    );
    for victim in ["198.51.100.10", "198.51.100.20", "198.51.100.30"] {
        for what in ["attack started", "attack ended"] {
            assert!(
                log.lines()
                    .any(|l| l.contains(what) && l.contains(&format!("victim={victim}"))),
                "no {what:?} line for {victim}: {log}"
            );
        }
    }

    // `pharos events` finds the daemon from the configuration in its working directory (no
    // --url): DDoS events by attack start, with their duration, times in UTC.
    let out = Command::new(bin())
        .args(["events", "list", "--kind", "ddos"])
        .env_remove("PHAROS_URL")
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .current_dir(inst.dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("connecting to {} (from ", inst.base))
            && stderr.contains("api.addr"),
        "{stderr}"
    );
    let mut rows = stdout.lines();
    let header = rows.next().unwrap_or_default();
    assert!(
        header.contains("TIME (UTC)") && header.contains("DURATION"),
        "{header}"
    );
    let rows: Vec<&str> = rows.filter(|l| l.contains("ddos")).collect();
    assert_eq!(rows.len(), ATTACKS, "{stdout}");
    for r in &rows {
        assert!(
            !r.contains("ongoing") && r.split_whitespace().any(|w| w.ends_with('s')),
            "an ended attack shows its duration: {r}"
        );
        assert!(r.chars().count() <= 120, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learned_rates_are_saved_at_shutdown_and_restored_at_the_next_start() {
    let cfg = format!("{LIVE}[detect.ddos.baseline]\nenabled = true\nlearning = \"1m\"\n");
    let inst = Instance::start(&cfg);
    replay_live(&inst);
    assert_eq!(
        wait_metric(&inst, "pharos_detect_flows_total", &[], 720).await,
        720,
        "{}",
        inst.log()
    );
    let dir = inst.stop_keep_dir();
    let path = dir.path().join("data/baselines.json");
    let saved: Vec<Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(!saved.is_empty(), "nothing learned");
    for h in &saved {
        let addr = h["addr"].as_str().unwrap();
        assert!(addr.starts_with("198.51.100."), "{h}");
        assert!(
            h["first_seen_ms"].as_u64().unwrap() > 1_700_000_000_000,
            "{h}"
        );
        assert!(h["rates"]["all"].is_array(), "{h}");
    }
    // The next start takes them back.
    let inst = Instance::start_in(dir, &cfg);
    let want = format!("hosts={} of={}", saved.len(), saved.len());
    // The log may be coloured: compare it without its escape sequences.
    let plain = |s: String| {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                it.by_ref().find(|c| c.is_ascii_alphabetic());
            } else {
                out.push(c);
            }
        }
        out
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !plain(inst.log()).contains(&want) {
        assert!(
            Instant::now() < deadline,
            "no \"learned rates restored {want}\" in the log:\n{}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
