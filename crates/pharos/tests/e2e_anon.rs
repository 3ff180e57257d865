//! `pharos anon`: the built binary maps the published Crypto-PAn vectors (arguments and stdin),
//! reports bad lines by number and fails at the end, reads keys from files, never prints the key,
//! inverts with --reverse, and anonymises every address of message JSON.

mod support;

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};

use support::bin;

const CANONICAL: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";
const SET3: &str = "8009ab3a605435bea0c385bea18485d8b0a1103d6590bdf48c968be5de53836e";

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("PHAROS_ANON_KEY_HEX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pharos starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn lines(o: &Output) -> Vec<IpAddr> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("output line {l:?}")))
        .collect()
}

fn ips(v: &[&str]) -> Vec<IpAddr> {
    v.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn anon_addr_maps_published_vectors_from_arguments_and_stdin() {
    let o = run(
        &[
            "anon",
            "addr",
            "--key-hex",
            CANONICAL,
            "128.11.68.132",
            "129.118.74.4",
            "::1",
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        lines(&o),
        ips(&[
            "135.242.180.132",
            "134.136.186.123",
            "78ff:f001:9fc0:20df:8380:b1f1:704:ed"
        ])
    );
    // IPv6 form, IPv4-mapped included, takes the 128-bit path
    let o = run(
        &["anon", "addr", "--key-hex", &format!("0x{SET3}")],
        "2a02:db8:85a3::8a2e:370:7344\n::ffff:192.0.2.128\n\nfc00::\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        lines(&o),
        ips(&[
            "1482:f447:75b3:f1f9:fbdf:622e:34f:ff7b",
            "3883:b073:ff0f:fff8:203f:7c8:617:fd01",
            "f33c:8ca3:ef0f:e019:e7ff:f1e3:f91f:f800"
        ])
    );
}

#[test]
fn anon_addr_names_bad_lines_and_fails_at_the_end() {
    let o = run(
        &["anon", "addr", "--key-hex", CANONICAL],
        "128.11.68.132\nnot-an-address\n129.118.74.4\n",
    );
    assert!(!o.status.success());
    assert_eq!(lines(&o), ips(&["135.242.180.132", "134.136.186.123"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2: \"not-an-address\""), "{err}");
    assert!(err.contains("1 of 3 lines"), "{err}");
}

#[test]
fn anon_key_comes_from_a_file_and_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let hex = dir.path().join("key.hex");
    std::fs::write(&hex, format!("{CANONICAL}\n")).unwrap();
    let raw = dir.path().join("key.bin");
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&CANONICAL[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    std::fs::write(&raw, bytes).unwrap();
    for f in [&hex, &raw] {
        let o = run(
            &[
                "anon",
                "addr",
                "--key-file",
                f.to_str().unwrap(),
                "141.223.7.43",
            ],
            "",
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(lines(&o), ips(&["141.167.8.160"]));
    }
    // or from the environment, out of the process list
    let o = Command::new(bin())
        .args(["anon", "addr", "141.223.7.43"])
        .env("PHAROS_ANON_KEY_HEX", CANONICAL)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(lines(&o), ips(&["141.167.8.160"]));
    // a wrong key is refused without echoing it
    let bad = format!("{}zz", &CANONICAL[..62]);
    let o = run(&["anon", "addr", "--key-hex", &bad, "192.0.2.1"], "");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("character 63"), "{err}");
    assert!(!err.contains(&CANONICAL[..16]), "the key leaked: {err}");
    // no key at all: clap says which flags give one
    let o = run(&["anon", "addr", "192.0.2.1"], "");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--key-hex"));
}

#[test]
fn anon_addr_reverse_gives_the_originals_back() {
    let o = run(
        &[
            "anon",
            "addr",
            "--reverse",
            "--key-hex",
            CANONICAL,
            "135.242.180.132",
            "78ff:f001:9fc0:20df:8380:b1f1:704:ed",
        ],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(lines(&o), ips(&["128.11.68.132", "::1"]));
}

#[test]
fn anon_json_replaces_every_address_of_each_message() {
    let msg = serde_json::json!({
        "ietf-i2nsf-monitoring-interface:i2nsf-nsf-event": {
            "nsf-name": "fw1",
            "i2nsf-nsf-detection-ddos": {
                "attack-src-ip": ["128.11.68.132", "129.118.74.4"],
                "attack-dst-ip": ["128.11.68.0/24"],
                "dst-port": [80]
            }
        }
    });
    let o = run(
        &["anon", "json", "--key-hex", CANONICAL],
        &format!("{msg}\n{{broken\n"),
    );
    assert!(!o.status.success(), "the broken line fails the run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2: not JSON"), "{err}");
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ddos = &out["ietf-i2nsf-monitoring-interface:i2nsf-nsf-event"]["i2nsf-nsf-detection-ddos"];
    assert_eq!(
        ddos["attack-src-ip"],
        serde_json::json!(["135.242.180.132", "134.136.186.123"])
    );
    assert_eq!(
        ddos["attack-dst-ip"],
        serde_json::json!(["135.242.180.0/24"])
    );
    assert_eq!(ddos["dst-port"], serde_json::json!([80]));
}

#[test]
fn anon_addr_maps_every_published_vector() {
    let path = pharos_model::conformance::shared_dir().join("testvectors/cryptopan-vectors.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        pharos_model::conformance::skip(&format!("{} is absent", path.display()));
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for set in doc["sets"].as_array().unwrap() {
        let vectors = set["vectors"].as_array().unwrap();
        let input: String = vectors
            .iter()
            .map(|v| format!("{}\n", v["in"].as_str().unwrap()))
            .collect();
        let want: Vec<IpAddr> = vectors
            .iter()
            .map(|v| v["out"].as_str().unwrap().parse().unwrap())
            .collect();
        let o = run(
            &[
                "anon",
                "addr",
                "--key-hex",
                set["key_hex"].as_str().unwrap(),
            ],
            &input,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(lines(&o), want);
        n += want.len();
    }
    assert_eq!(n, 144);
}

fn require_all() -> bool {
    std::env::var("PHAROS_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn canonical() -> pharos_anon::CryptoPan {
    pharos_anon::CryptoPan::new(&pharos_anon::Key::from_hex(CANONICAL).unwrap())
}

/// NetFlow v5 flows from 10.1.x.y to 198.51.100.z, 30 a datagram, `n` datagrams.
fn v5_capture(path: &std::path::Path, n: u32) {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let datagrams = (0..n).map(|d| {
        let records: Vec<V5RecordRepr> = (0..30u32)
            .map(|i| {
                let k = d * 30 + i;
                V5RecordRepr {
                    src_addr: [10, 1, (k % 4) as u8, (k % 7) as u8 + 1].into(),
                    dst_addr: [198, 51, 100, (k % 5) as u8 + 1].into(),
                    next_hop: [192, 0, 2, 254].into(),
                    packets: 1 + k % 10,
                    octets: 100 * (1 + k % 10),
                    first: 3_590_000,
                    last: 3_599_000,
                    src_port: 40_000 + k as u16,
                    dst_port: 53,
                    proto: 17,
                    ..V5RecordRepr::default()
                }
            })
            .collect();
        let header = V5Header {
            sys_uptime: 3_600_000,
            unix_secs: 1_764_000_000,
            flow_sequence: d * 30,
            ..V5Header::default()
        };
        support::PcapUdp {
            src: "128.11.68.132:40000".parse().unwrap(),
            dst: "129.118.74.4:2055".parse().unwrap(),
            secs: 1_764_000_000,
            usec: d * 100,
            payload: emit(&header, &records).unwrap(),
        }
    });
    support::write_udp_pcap(path, datagrams);
}

#[test]
fn anon_pcap_is_read_by_tshark_with_pseudonyms_and_valid_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    v5_capture(&input, 2);
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let out = run(&["anon", "pcap", "--key-hex", CANONICAL, i, o], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("60 NetFlow v5 records"),
        "{}",
        text(&out.stdout)
    );
    let again = run(&["anon", "pcap", "--key-hex", CANONICAL, i, o], "");
    assert!(!again.status.success() && text(&again.stderr).contains("--force"));
    if Command::new("tshark").arg("--version").output().is_err() {
        assert!(!require_all(), "tshark missing under PHAROS_REQUIRE_ALL=1");
        eprintln!("skipping the tshark check: tshark not found");
        return;
    }
    let fields = |file: &str| {
        let o = Command::new("tshark")
            .args([
                "-r",
                file,
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "udp.check_checksum:TRUE",
            ])
            .args([
                "-d",
                "udp.port==2055,cflow",
                "-T",
                "fields",
                "-E",
                "separator=;",
            ])
            .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ip.checksum.status"])
            .args([
                "-e",
                "udp.checksum.status",
                "-e",
                "cflow.srcaddr",
                "-e",
                "cflow.dstaddr",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
            .lines()
            .map(|l| l.split(';').map(str::to_string).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let (before, after) = (fields(i), fields(o));
    assert_eq!(before.len(), 2);
    assert_eq!(after.len(), 2);
    let cp = canonical();
    let map = |list: &str| -> Vec<IpAddr> {
        list.split(',')
            .map(|a| cp.anonymize(a.parse().unwrap()))
            .collect()
    };
    let parse =
        |list: &str| -> Vec<IpAddr> { list.split(',').map(|a| a.parse().unwrap()).collect() };
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a[0], "135.242.180.132", "published vector: {a:?}");
        assert_eq!(a[1], "134.136.186.123", "published vector: {a:?}");
        assert_eq!(a[2], "1", "IPv4 header checksum good: {a:?}");
        // the generated input has no UDP checksum (IPv4 allows 0): it stays absent (3)
        assert_eq!(a[3], b[3], "UDP checksum status kept: {a:?}");
        assert!(
            a[3] == "1" || a[3] == "3",
            "UDP checksum good or absent: {a:?}"
        );
        assert_eq!(parse(&a[4]), map(&b[4]), "NetFlow v5 sources");
        assert_eq!(parse(&a[5]), map(&b[5]), "NetFlow v5 destinations");
        // prefix preservation across the output: 10.1.x.y all share 16 bits, and only 16
        let srcs = parse(&a[4]);
        let bits = |x: &IpAddr| match x {
            IpAddr::V4(v) => u32::from(*v),
            IpAddr::V6(_) => panic!("IPv4 expected"),
        };
        let first = bits(&srcs[0]);
        assert!(
            srcs.iter().all(|s| (bits(s) ^ first) >> 16 == 0),
            "{srcs:?}"
        );
    }
    // real captures: TCP over IPv4 and UDP (with checksums) over IPv6 keep good checksums
    match support::shared_dir() {
        None => {
            assert!(
                !require_all(),
                "../shared missing under PHAROS_REQUIRE_ALL=1"
            );
            eprintln!("skipping the real-capture checks: ../shared not found");
        }
        Some(shared) => {
            for (file, field) in [
                (
                    "corpora/semantics/suricata-verify/detection_filter-distinct-srcport/input.pcap",
                    "tcp.checksum.status",
                ),
                (
                    "corpora/flows/tcpdump/sflow-print-v6.pcap",
                    "udp.checksum.status",
                ),
            ] {
                let real = shared.join(file);
                let anon = dir.path().join("real.pcap");
                let o = run(
                    &[
                        "anon",
                        "pcap",
                        "--force",
                        "--key-hex",
                        CANONICAL,
                        real.to_str().unwrap(),
                        anon.to_str().unwrap(),
                    ],
                    "",
                );
                assert!(o.status.success(), "{file}: {}", text(&o.stderr));
                let t = Command::new("tshark")
                    .args([
                        "-r",
                        anon.to_str().unwrap(),
                        "-o",
                        "tcp.check_checksum:TRUE",
                        "-o",
                        "udp.check_checksum:TRUE",
                    ])
                    .args([
                        "-T", "fields", "-e", field, "-e", "ip.src", "-e", "ipv6.src",
                    ])
                    .output()
                    .unwrap();
                let rows = text(&t.stdout);
                assert!(!rows.trim().is_empty(), "{file}");
                for row in rows.lines() {
                    assert!(
                        row.starts_with("1\t"),
                        "{file}: checksum not good in {row:?}"
                    );
                }
                let orig = Command::new("tshark")
                    .args([
                        "-r",
                        real.to_str().unwrap(),
                        "-T",
                        "fields",
                        "-e",
                        "ip.src",
                        "-e",
                        "ipv6.src",
                    ])
                    .output()
                    .unwrap();
                let first_orig = text(&orig.stdout)
                    .lines()
                    .next()
                    .unwrap()
                    .trim()
                    .to_string();
                let first_anon = rows
                    .lines()
                    .next()
                    .unwrap()
                    .split('\t')
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join("")
                    .trim()
                    .to_string();
                let want =
                    canonical().anonymize(first_orig.split(',').next().unwrap().parse().unwrap());
                assert_eq!(
                    first_anon.split(',').next().unwrap(),
                    want.to_string(),
                    "{file}"
                );
            }
        }
    }
    // --reverse brings the originals back
    let rev = run(
        &[
            "anon",
            "addr",
            "--key-hex",
            CANONICAL,
            "--reverse",
            "135.242.180.132",
        ],
        "",
    );
    assert_eq!(lines(&rev), ips(&["128.11.68.132"]));
}

#[test]
fn anon_flows_copy_gives_the_anonymised_top_talkers_with_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("v5.pcap");
    v5_capture(&cap, 4);
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let (s, d) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let o = run(
        &["flows", "import", cap.to_str().unwrap(), "--data-dir", s],
        "",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(
        &[
            "anon",
            "flows",
            "--key-hex",
            CANONICAL,
            "--data-dir",
            s,
            "--out",
            d,
        ],
        "",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("anonymised 120 flows"),
        "{}",
        text(&o.stdout)
    );
    // the copy has the same segments under the same receive-time names
    fn segments(root: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }
    let names = segments(&src.join("flows"));
    assert!(!names.is_empty());
    assert_eq!(segments(&dst.join("flows")), names);
    let again = run(
        &[
            "anon",
            "flows",
            "--key-hex",
            CANONICAL,
            "--data-dir",
            s,
            "--out",
            d,
        ],
        "",
    );
    assert!(!again.status.success() && text(&again.stderr).contains("already holds"));
    let top = |dir: &str, key: &str| -> Vec<(String, u64, u64)> {
        let o = run(
            &[
                "flows",
                "top",
                key,
                "--by",
                "flows",
                "-n",
                "100",
                "--json",
                "--data-dir",
                dir,
            ],
            "",
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut rows: Vec<_> = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_string(),
                    r["flows"].as_u64().unwrap(),
                    r["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let cp = canonical();
    for key in ["srcip", "dstip", "exporter"] {
        let original = top(s, key);
        assert!(!original.is_empty(), "{key}: {original:?}");
        let mut want: Vec<_> = original
            .iter()
            .map(|(a, f, b)| (cp.anonymize(a.parse().unwrap()).to_string(), *f, *b))
            .collect();
        want.sort();
        assert_eq!(top(d, key), want, "{key}");
    }
    // a prefix query on the copy: the pseudonym of 10.1.0.0/16 holds every source
    let prefix = cp.anonymize_text("10.1.0.0/16").unwrap();
    let o = run(
        &[
            "flows",
            "top",
            "srcip",
            "--json",
            "--data-dir",
            d,
            "src",
            "net",
            &prefix,
        ],
        "",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total"]["flows"], 120, "{v}");
}

#[test]
fn config_keys_are_chosen_by_date_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("2026.key");
    std::fs::write(&kb, format!("{SET3}\n")).unwrap();
    let cfg = dir.path().join("pharos.toml");
    std::fs::write(
        &cfg,
        format!(
            "[anon]\nkey_hex = \"{CANONICAL}\"\n[[anon.key]]\nfrom = \"2026-01-01\"\nkey_file = \"{}\"\n",
            kb.display()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let on = |date: &str| {
        let o = run(
            &[
                "anon",
                "addr",
                "--config",
                c,
                "--date",
                date,
                "128.11.68.132",
            ],
            "",
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        lines(&o)
    };
    let set3 = pharos_anon::CryptoPan::new(&pharos_anon::Key::from_hex(SET3).unwrap());
    let x: IpAddr = "128.11.68.132".parse().unwrap();
    assert_eq!(on("2025-12-31"), ips(&["135.242.180.132"]));
    assert_eq!(on("2026-01-01"), vec![set3.anonymize(x)]);
    // message JSON: each document with the key of its event-time
    let docs = "{\"i2nsf-event\":{\"event-time\":\"2025-06-01T00:00:00Z\",\"src-ip\":\"128.11.68.132\"}}\n\
                {\"i2nsf-event\":{\"event-time\":\"2026-06-01T00:00:00Z\",\"src-ip\":\"128.11.68.132\"}}\n";
    let o = run(&["anon", "json", "--config", c], docs);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let got: Vec<&str> = out.lines().collect();
    assert!(got[0].contains("135.242.180.132"), "{out}");
    assert!(got[1].contains(&set3.anonymize(x).to_string()), "{out}");
    // the printed configuration redacts hex keys
    let o = run(&["check-config", c], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let printed = text(&o.stdout);
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(
        !printed.contains(&CANONICAL[..16]) && !printed.contains(&SET3[..16]),
        "{printed}"
    );
    // bad sections are refused with the key and the fix
    std::fs::write(
        &cfg,
        "[[anon.key]]\nfrom = \"2026-13-01\"\nkey_file = \"k\"\n",
    )
    .unwrap();
    let o = run(&["anon", "addr", "--config", c, "192.0.2.1"], "");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("expected a date like"),
        "{}",
        text(&o.stderr)
    );
    // no key anywhere: the error says where to give one
    std::fs::write(&cfg, "").unwrap();
    let o = run(&["anon", "addr", "--config", c, "192.0.2.1"], "");
    assert!(
        text(&o.stderr).contains("--key-file"),
        "{}",
        text(&o.stderr)
    );
}
