//! End-to-end PSAMP sampling (issue 13): an IOS XR-style IPFIX export whose options data says
//! random n-out-of-N, 1 out of 256 (options template scoped by `selectorId`, with
//! `samplingPacketInterval` 1, `selectorAlgorithm` 3, `samplingSize` 1, `samplingPopulation`
//! 256 and `selectorName`), and data records naming that selector. `pharos decode --json` gives
//! `sampling_rate` 256 and counters x256; `pharos run` fed by `pharos replay` archives them so
//! (the archive keeps renormalised counters next to the raw rate) and raises a SYN flood that
//! only the 256x factor puts above its threshold.

mod support;

use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Instance, bin};

const VICTIM: &str = "198.51.100.20";
/// Raw (sampled) SYN packets per flow record; 30 records a second: 300 sampled packets/s,
/// 76,800 packets/s once renormalised.
const RAW_PACKETS: u64 = 10;
const RAW_BYTES: u64 = RAW_PACKETS * 60;
const RATE: u64 = 256;
/// Between the raw and the renormalised rate of the flood.
const SYN_PPS_THRESHOLD: u64 = 5000;
const EXPORTER: &str = "192.0.2.30:50000";

fn field(b: &mut Vec<u8>, id: u16, len: u16) {
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
}

fn set(id: u16, body: Vec<u8>) -> Vec<u8> {
    let mut s = id.to_be_bytes().to_vec();
    s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    s.extend_from_slice(&body);
    s
}

/// One IPFIX message exported at `t` (Unix seconds), sequence `seq`: when `options`, the
/// selector's options template and data first; then the data template and 30 SYN flow records
/// to [`VICTIM`] of the second before `t`, each naming selector 1.
fn message(t: u32, seq: u32, options: bool, second: u32) -> Vec<u8> {
    let mut sets = Vec::new();
    if options {
        let mut ot = Vec::new();
        ot.extend_from_slice(&512u16.to_be_bytes());
        ot.extend_from_slice(&6u16.to_be_bytes());
        ot.extend_from_slice(&1u16.to_be_bytes());
        for (id, len) in [
            (302, 8),
            (305, 4),
            (304, 2),
            (309, 4),
            (310, 4),
            (335, 0xffff),
        ] {
            field(&mut ot, id, len);
        }
        sets.push(set(3, ot));
        let mut od = Vec::new();
        od.extend_from_slice(&1u64.to_be_bytes());
        od.extend_from_slice(&1u32.to_be_bytes());
        od.extend_from_slice(&3u16.to_be_bytes());
        od.extend_from_slice(&1u32.to_be_bytes());
        od.extend_from_slice(&(RATE as u32).to_be_bytes());
        let name = b"NF-SAMPLER-256";
        od.push(name.len() as u8);
        od.extend_from_slice(name);
        while od.len() % 4 != 0 {
            od.push(0);
        }
        sets.push(set(512, od));
    }
    let mut tpl = Vec::new();
    tpl.extend_from_slice(&256u16.to_be_bytes());
    tpl.extend_from_slice(&11u16.to_be_bytes());
    for (id, len) in [
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (6, 1),
        (2, 8),
        (1, 8),
        (152, 8),
        (153, 8),
        (302, 8),
    ] {
        field(&mut tpl, id, len);
    }
    sets.push(set(2, tpl));
    let end_ms = t as u64 * 1000;
    let mut data = Vec::new();
    for j in 0..30u32 {
        let k = second * 30 + j;
        data.extend_from_slice(&[100, 64, (k >> 8) as u8, k as u8]);
        data.extend_from_slice(&VICTIM.parse::<std::net::Ipv4Addr>().unwrap().octets());
        data.extend_from_slice(&(1024 + k as u16).to_be_bytes());
        data.extend_from_slice(&80u16.to_be_bytes());
        data.extend_from_slice(&[6, 0x02]);
        data.extend_from_slice(&RAW_PACKETS.to_be_bytes());
        data.extend_from_slice(&RAW_BYTES.to_be_bytes());
        data.extend_from_slice(&(end_ms - 999).to_be_bytes());
        data.extend_from_slice(&end_ms.to_be_bytes());
        data.extend_from_slice(&1u64.to_be_bytes());
    }
    sets.push(set(256, data));
    let body: Vec<u8> = sets.concat();
    let mut m = Vec::new();
    m.extend_from_slice(&10u16.to_be_bytes());
    m.extend_from_slice(&((16 + body.len()) as u16).to_be_bytes());
    m.extend_from_slice(&t.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&1u32.to_be_bytes());
    m.extend_from_slice(&body);
    m
}

/// Writes `secs` seconds of the export starting at `t0`, one message a second; `options`
/// says whether they carry the selector's options data. Returns the flows written.
fn write_capture(path: &Path, t0: u32, secs: u32, options: bool) -> u64 {
    let src: SocketAddrV4 = EXPORTER.parse().unwrap();
    support::write_udp_pcap(
        path,
        (0..secs).map(|s| support::PcapUdp {
            src,
            dst: "192.0.2.1:4739".parse().unwrap(),
            secs: t0 + s,
            usec: 0,
            payload: message(t0 + s, s * 30, options, s),
        }),
    );
    secs as u64 * 30
}

/// The JSON lines of a command's stdout (the command must succeed).
fn json_lines(cmd: &mut Command) -> Vec<Value> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every flow carries the selector's rate and renormalised counters.
fn assert_renormalised(flows: &[Value], what: &str) {
    for f in flows {
        assert_eq!(
            (&f["sampling_rate"], &f["packets"], &f["bytes"]),
            (
                &Value::from(RATE),
                &Value::from(RAW_PACKETS * RATE),
                &Value::from(RAW_BYTES * RATE)
            ),
            "{what}: {f}"
        );
        assert_eq!(f["dst_addr"], VICTIM, "{what}: {f}");
    }
}

#[test]
fn decode_json_gives_rate_256_and_counters_x256_from_options_data() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("iosxr.pcap");
    let n = write_capture(&pcap, 1_764_000_000, 3, true);
    let flows = json_lines(Command::new(bin()).arg("decode").arg(&pcap).arg("--json"));
    assert_eq!(flows.len() as u64, n);
    assert_renormalised(&flows, "pharos decode");
    // Without the options data the same records are unsampled: rate 1, raw counters.
    let bare = tmp.path().join("bare.pcap");
    write_capture(&bare, 1_764_000_000, 1, false);
    let flows = json_lines(Command::new(bin()).arg("decode").arg(&bare).arg("--json"));
    assert_eq!(
        (&flows[0]["sampling_rate"], &flows[0]["packets"]),
        (&Value::from(1), &Value::from(RAW_PACKETS))
    );
}

/// `pharos detect` offline: (started) SYN floods on [`VICTIM`] with the threshold between the
/// raw and the renormalised rate.
fn offline_syn_floods(pcap: &Path) -> usize {
    let cfg = pcap.with_extension("toml");
    std::fs::write(
        &cfg,
        format!(
            "[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\n[detect.ddos.thresholds.syn]\npps = {SYN_PPS_THRESHOLD}\n"
        ),
    )
    .unwrap();
    json_lines(
        Command::new(bin())
            .arg("detect")
            .arg(pcap)
            .args(["--json", "--config"])
            .arg(&cfg),
    )
    .iter()
    .filter(|l| l["phase"] == "started" && l.to_string().contains(VICTIM))
    .count()
}

#[test]
fn offline_detection_sees_the_flood_only_through_the_sampling_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let sampled = tmp.path().join("sampled.pcap");
    write_capture(&sampled, 1_764_000_000, 10, true);
    assert_eq!(
        offline_syn_floods(&sampled),
        1,
        "the 1:256 flood is detected"
    );
    // The control: the same records without the options data stay under the threshold.
    let bare = tmp.path().join("bare.pcap");
    write_capture(&bare, 1_764_000_000, 10, false);
    assert_eq!(
        offline_syn_floods(&bare),
        0,
        "raw rate is under the threshold"
    );
}

async fn syn_floods(inst: &Instance) -> Vec<Value> {
    support::messages(inst, "kind=ddos&limit=100")
        .await
        .into_iter()
        .filter(|m| m.to_string().contains(VICTIM))
        .collect()
}

/// Now, Unix seconds, plus one (the daemon's clock is the wall clock).
fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        + 1
}

fn replay(pcap: &Path, to: SocketAddr, rate: &str) {
    let out = Command::new(bin())
        .arg("replay")
        .arg(pcap)
        .args(["--to", &to.to_string(), "--rate", rate])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pharos flows query --json` on the instance's archive, polled until it holds `n` flows
/// (deadline 20 s).
async fn archived(inst: &Instance, n: u64) -> Vec<Value> {
    let data = inst.dir.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let flows = json_lines(
            Command::new(bin())
                .args(["flows", "query", "--json", "-l", "1000", "--data-dir"])
                .arg(&data),
        );
        if flows.len() as u64 >= n || Instant::now() > deadline {
            return flows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampling_override_of_the_config_still_wins_over_options_data() {
    // `pharos replay` sends from 127.0.0.1: that is the exporter the daemon sees.
    let inst =
        Instance::start("[flow]\nlisten = [\"127.0.0.1:0\"]\n[flow.sampling]\n\"127.0.0.1\" = 4\n");
    let pcap = inst.dir.path().join("live.pcap");
    let n = write_capture(&pcap, now_secs(), 2, true);
    replay(&pcap, inst.flow_addr(), "10");
    let flows = archived(&inst, n).await;
    assert_eq!(flows.len() as u64, n, "flows archived\n{}", inst.log());
    for f in &flows {
        assert_eq!(
            (&f["sampling_rate"], &f["packets"]),
            (&Value::from(4), &Value::from(RAW_PACKETS * 4)),
            "{f}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_archives_renormalised_flows_and_detects_the_sampled_flood() {
    let cfg = format!(
        "[flow]\nlisten = [\"127.0.0.1:0\"]\n[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\nwindow = \"2s\"\ndelay = \"2s\"\nhold = \"3s\"\nthresholds.syn = {{ pps = {SYN_PPS_THRESHOLD} }}\n"
    );
    let inst = Instance::start(&cfg);
    let pcap = inst.dir.path().join("live.pcap");
    let n = write_capture(&pcap, now_secs(), 6, true);
    replay(&pcap, inst.flow_addr(), "1");

    // Detection: the flood is 300 sampled SYN/s, 76,800/s renormalised; the threshold lies
    // between.
    let deadline = Instant::now() + Duration::from_secs(30);
    let floods = loop {
        let f = syn_floods(&inst).await;
        if !f.is_empty() || Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        floods.iter().any(|m| m.to_string().contains("syn-flood")),
        "no SYN flood on {VICTIM}: {floods:?}\n{}",
        inst.log()
    );

    // The archive: every flow with rate 256 and counters x256, by the CLI and the API.
    let flows = archived(&inst, n).await;
    assert_eq!(flows.len() as u64, n, "flows archived");
    assert_renormalised(&flows, "pharos flows query");
    let api = support::get_json(&inst, "/api/v1/flows/query?limit=1000").await;
    let api_flows = api["flows"].as_array().cloned().unwrap_or_default();
    assert_eq!(api_flows.len() as u64, n, "{api}");
    assert_renormalised(&api_flows, "GET /api/v1/flows/query");
}
