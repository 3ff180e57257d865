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
