//! nfanon compatibility: flows captured by Debian's `nfcapd` and anonymised by `nfanon` carry the
//! addresses Pharos gives the same flows under the same key (source, destination, next hop and
//! exporter, all IPv4: the 32-bit path).

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pharos_anon::{CryptoPan, Key};
use pharos_model::conformance::skip;
use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};

const KEY_HEX: &str = "0x8c3a9f2e41d7b6055e19a2c4f0d83b7a6e21c5940b7fd2a3185e6c09d4f7a213";

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether something listens on UDP `port` on 127.0.0.1 (/proc/net/udp, Linux).
fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(&want))
        })
        .unwrap_or(false)
}

/// nfcapd listening on a free port of 127.0.0.1, writing into `dir`.
fn start_nfcapd(dir: &Path) -> (Child, u16) {
    for _ in 0..5 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("nfcapd")
            .args([
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "3600",
                "-w",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nfcapd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if udp_bound(port) {
                return (child, port);
            }
            if child.try_wait().unwrap().is_some() {
                break; // the port was taken meanwhile: another one
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("nfcapd did not listen on 127.0.0.1 within 10 s, five times");
}

/// SIGTERM (nfcapd then closes and renames its file), then the exit.
fn stop(mut child: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "nfcapd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each record's source, destination, next hop and exporter, as nfdump prints them.
fn addresses(file: &Path) -> Vec<[IpAddr; 4]> {
    let out = Command::new("nfdump")
        .args(["-q", "-r"])
        .arg(file)
        .args(["-o", "fmt:%sa %da %nh %ra"])
        .output()
        .expect("nfdump runs");
    assert!(
        out.status.success(),
        "nfdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<IpAddr> = l
                .split_whitespace()
                .map(|a| a.parse().unwrap_or_else(|_| panic!("nfdump row {l:?}")))
                .collect();
            f.try_into().unwrap_or_else(|_| panic!("nfdump row {l:?}"))
        })
        .collect()
}

/// Addresses spread over the space, with long shared prefixes among them (a xorshift walk).
fn records() -> Vec<V5RecordRepr> {
    let mut x = 0x2545_f491u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    (0..60u32)
        .map(|i| {
            let src = next();
            // every third destination shares 24 bits with the source, every fifth 31
            let dst = match i % 15 {
                0 | 3 | 6 | 9 | 12 => src & 0xffff_ff00 | next() & 0xff,
                5 | 10 => src ^ 1,
                _ => next(),
            };
            V5RecordRepr {
                src_addr: Ipv4Addr::from(src),
                dst_addr: Ipv4Addr::from(dst),
                next_hop: Ipv4Addr::from(next()),
                packets: 3,
                octets: 180,
                first: 1000,
                last: 2000,
                src_port: 40000 + i as u16,
                dst_port: 443,
                proto: 6,
                tcp_flags: 0x12,
                ..V5RecordRepr::default()
            }
        })
        .collect()
}

#[test]
fn nfanon_and_pharos_give_the_same_addresses_under_the_same_key() {
    if let Some(missing) = ["nfcapd", "nfanon", "nfdump"]
        .into_iter()
        .find(|t| !have(t))
    {
        skip(&format!("{missing} not found on PATH (Debian: nfdump)"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture");
    std::fs::create_dir(&capture).unwrap();
    let (nfcapd, port) = start_nfcapd(&capture);
    let recs = records();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (n, chunk) in recs.chunks(30).enumerate() {
        let header = V5Header {
            sys_uptime: 5000,
            unix_secs: now,
            flow_sequence: 30 * n as u32,
            ..V5Header::default()
        };
        let datagram = emit(&header, chunk).unwrap();
        sock.send_to(&datagram, ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop(nfcapd);
    // one file, or two if nfcapd rotated at an interval boundary meanwhile: each is anonymised
    let mut files: Vec<PathBuf> = std::fs::read_dir(&capture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("nfcapd.2")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "nfcapd closed no file");
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for (n, original) in files.iter().enumerate() {
        let anonymised = dir.path().join(format!("anon{n}.nf"));
        let out = Command::new("nfanon")
            .args(["-q", "-K", KEY_HEX, "-r"])
            .arg(original)
            .arg("-w")
            .arg(&anonymised)
            .output()
            .expect("nfanon runs");
        assert!(
            out.status.success(),
            "nfanon: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        before.extend(addresses(original));
        after.extend(addresses(&anonymised));
    }
    assert_eq!(before.len(), recs.len(), "nfcapd stored every record sent");
    assert_eq!(after.len(), before.len(), "nfanon kept every record");
    for (r, b) in recs.iter().zip(&before) {
        assert_eq!(
            b[0],
            IpAddr::V4(r.src_addr),
            "the flows nfdump reads are those sent"
        );
        assert_eq!(b[1], IpAddr::V4(r.dst_addr));
    }
    let cp = CryptoPan::new(&Key::from_hex(KEY_HEX).unwrap());
    let mut compared = 0;
    for (b, a) in before.iter().zip(&after) {
        for (orig, theirs) in b.iter().zip(a) {
            assert!(orig.is_ipv4(), "v5 flows are IPv4: {orig}");
            assert_eq!(
                cp.anonymize(*orig),
                *theirs,
                "{orig}: Pharos and nfanon disagree"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 4 * recs.len());
}
