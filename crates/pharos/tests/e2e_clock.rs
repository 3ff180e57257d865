//! End-to-end exporter clocks: the real daemon with `[detect]` and `[state]` receives NetFlow v5
//! floods from three exporters on loopback addresses, one whose clock is a year behind, one 90 s
//! ahead and one synchronised. Both skewed exporters' attacks are detected as fast as the
//! synchronised one's; their offsets show in `/metrics` and `GET /api/v1/nsfs`; the `[state]`
//! clock alarm is raised for both and cleared once they send with a correct clock.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{Instance, client, metrics_text};

const YEAR_MS: i64 = 31_536_000_000;

/// The exporters: (address, clock offset ms, victim of their SYN flood).
const EXPORTERS: [(&str, i64, [u8; 4]); 3] = [
    ("127.0.0.1", -YEAR_MS, [198, 51, 100, 10]),
    ("127.0.0.2", 90_000, [198, 51, 100, 20]),
    ("127.0.0.3", 0, [198, 51, 100, 30]),
];

/// Detection of SYN floods over 5,000 pps on 198.51.100.0/24, clock alarms at the default bound.
const CONFIG: &str = "[flow]\nlisten = [\"127.0.0.1:0\"]\n[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\nwindow = \"2s\"\ndelay = \"2s\"\nhold = \"10m\"\nthresholds.syn = { pps = 5000 }\n[state]\n";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A v5 datagram exported at `export_ms` (the exporter's clock) and `uptime`: 10 flows of 300
/// SYNs to `victim`, each lasting the second before the export (30,000 pps at 10 datagrams/s).
fn v5_flood(seq: u32, uptime: u32, export_ms: u64, victim: [u8; 4]) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let header = V5Header {
        sys_uptime: uptime,
        unix_secs: (export_ms / 1000) as u32,
        unix_nsecs: (export_ms % 1000) as u32 * 1_000_000,
        flow_sequence: seq,
        ..V5Header::default()
    };
    let records: Vec<V5RecordRepr> = (0..10u32)
        .map(|j| {
            let k = seq + j;
            V5RecordRepr {
                src_addr: [100, 64, (k >> 8) as u8, k as u8].into(),
                dst_addr: victim.into(),
                next_hop: [192, 0, 2, 254].into(),
                input: 1,
                output: 2,
                packets: 300,
                octets: 300 * 60,
                first: uptime - 999,
                last: uptime,
                src_port: 1024 + (k % 60_000) as u16,
                dst_port: 80,
                tcp_flags: 0x02,
                proto: 6,
                src_mask: 24,
                dst_mask: 24,
                ..V5RecordRepr::default()
            }
        })
        .collect();
    emit(&header, &records).expect("10 flows")
}

/// Sends each exporter's flood from its own address, 10 datagrams a second, until `stop`; while
/// `skewed` is set, each exporter's header times carry its clock offset, else our clock.
fn flood(to: SocketAddr, skewed: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let socks: Vec<UdpSocket> = EXPORTERS
        .iter()
        .map(|(ip, _, _)| UdpSocket::bind((*ip, 0)).unwrap())
        .collect();
    let started = Instant::now();
    let mut seq = 0u32;
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let uptime = 3_600_000 + started.elapsed().as_millis() as u32;
        for (s, (_, offset, victim)) in socks.iter().zip(EXPORTERS) {
            let offset = if skewed.load(Ordering::Relaxed) {
                offset
            } else {
                0
            };
            let export = (now_ms() as i64 + offset) as u64;
            s.send_to(&v5_flood(seq, uptime, export, victim), to)
                .unwrap();
        }
        seq += 10;
        tick += 1;
        let next = started + Duration::from_millis(100 * u64::from(tick));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// `pharos_flow_exporter_clock_offset_seconds` of `exporter`, if exported.
async fn offset_metric(inst: &Instance, exporter: &str) -> Option<f64> {
    let want = format!("exporter=\"{exporter}\"");
    metrics_text(inst).await.lines().find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (name, labels) = series.split_once('{')?;
        (name == "pharos_flow_exporter_clock_offset_seconds" && labels.contains(&want))
            .then(|| value.parse().ok())?
    })
}

async fn get(inst: &Instance, path: &str) -> Value {
    client()
        .get(inst.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The stored clock alarms (`component-name` `clock:...`) as (text of the item, severity).
async fn clock_alarms(inst: &Instance) -> Vec<(String, String)> {
    let page = get(inst, "/api/v1/messages?kind=system-alarm&limit=100").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m.to_string(),
                m["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|(t, _)| t.contains("clock:"))
        .collect()
}

/// Polls `f` every 100 ms until it gives `Some` (deadline 30 s).
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    inst: &Instance,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_exporter_clocks_are_detected_in_time_shown_alarmed_and_cleared() {
    let inst = Instance::start(CONFIG);
    let to: SocketAddr = std::fs::read_to_string(inst.dir.path().join("data/flow.addr"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let skewed = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (skewed, stop) = (skewed.clone(), stop.clone());
        std::thread::spawn(move || flood(to, skewed, stop))
    };
    let t0 = Instant::now();

    // Every attack detected, each at about the same time as the synchronised exporter's.
    let mut seen: [Option<Duration>; 3] = [None; 3];
    let deadline = t0 + Duration::from_secs(30);
    while seen.iter().any(Option::is_none) && Instant::now() < deadline {
        let page = get(&inst, "/api/v1/messages?kind=ddos&limit=100").await;
        let text = page["items"].to_string();
        for (i, (_, _, v)) in EXPORTERS.iter().enumerate() {
            let victim = std::net::Ipv4Addr::from(*v).to_string();
            if seen[i].is_none() && text.contains(&format!("\"{victim}\"")) {
                seen[i] = Some(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lat: Vec<Duration> = seen
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.unwrap_or_else(|| panic!("{} not detected: {}", EXPORTERS[i].0, inst.log()))
        })
        .collect();
    let synced = lat[2];
    for (i, l) in lat.iter().enumerate().take(2) {
        assert!(
            *l <= synced + Duration::from_millis(1500),
            "{} detected after {l:?}, the synchronised exporter after {synced:?}",
            EXPORTERS[i].0
        );
    }
    eprintln!(
        "detected after: a year behind {:?}, 90 s ahead {:?}, synchronised {:?}",
        lat[0], lat[1], lat[2]
    );

    // The offsets in the metrics.
    let near = |got: f64, want: f64| (got - want).abs() < 2.0;
    for (ip, offset, _) in EXPORTERS {
        let want = offset as f64 / 1000.0;
        let got = until("the offset metric", &inst, || async {
            offset_metric(&inst, ip).await.filter(|v| near(*v, want))
        })
        .await;
        assert!(near(got, want), "{ip}: {got}");
    }

    // And in the inventory.
    let nsfs = get(&inst, "/api/v1/nsfs").await;
    let exporters = nsfs["exporters"].as_array().expect("an exporters list");
    for (ip, offset, _) in EXPORTERS {
        let e = exporters
            .iter()
            .find(|e| e["exporter"] == ip)
            .unwrap_or_else(|| panic!("{ip} not in {nsfs}"));
        let got = e["clock-offset-seconds"].as_f64().unwrap();
        assert!(near(got, offset as f64 / 1000.0), "{e}");
        assert_eq!(e["domain"], 0);
        assert!(e["datagrams"].as_u64().unwrap() > 0);
        let corrected = e["clock-correction-seconds"].as_f64().unwrap() != 0.0;
        assert_eq!(corrected, offset != 0, "{e}");
    }

    // The clock alarm, for both skewed exporters and not for the synchronised one.
    let raised = until("two clock alarms", &inst, || async {
        let a = clock_alarms(&inst).await;
        (a.len() >= 2).then_some(a)
    })
    .await;
    assert_eq!(raised.len(), 2, "{raised:?}");
    for ip in ["127.0.0.1", "127.0.0.2"] {
        assert!(
            raised
                .iter()
                .any(|(t, sev)| t.contains(&format!("clock:{ip}\"")) && sev == "middle"),
            "{ip}: {raised:?}"
        );
    }
    assert!(
        raised
            .iter()
            .any(|(t, _)| t.contains("31536000.0 s behind")),
        "{raised:?}"
    );
    assert!(
        raised.iter().any(|(t, _)| t.contains("90.0 s ahead of")),
        "{raised:?}"
    );

    // NTP fixes both clocks: the alarms are cleared, the offsets go back to about 0.
    skewed.store(false, Ordering::Relaxed);
    let all = until("the clock alarms cleared", &inst, || async {
        let a = clock_alarms(&inst).await;
        (a.len() >= 4).then_some(a)
    })
    .await;
    assert_eq!(all.len(), 4, "{all:?}");
    for ip in ["127.0.0.1", "127.0.0.2"] {
        assert!(
            all.iter()
                .any(|(t, sev)| t.contains(&format!("clock:{ip}\""))
                    && sev == "low"
                    && t.contains("back within 60 s")),
            "{ip}: {all:?}"
        );
        until("the offset back to 0", &inst, || async {
            offset_metric(&inst, ip).await.filter(|v| near(*v, 0.0))
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
}
