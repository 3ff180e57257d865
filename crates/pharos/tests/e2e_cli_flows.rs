//! End-to-end flow CLI: the real `pharos` binary on captures generated here, for what an nfdump
//! user expects of `decode`, `replay` and `flows`: names for protocols, tables that fit 120
//! columns, zero-filled series, RFC 3339 CSV times, errors that say what was meant, and input
//! text (file names) shown escaped.

mod support;

use std::net::{SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::bin;

const SECS: u32 = 1_764_000_000;
const UPTIME: u32 = 3_600_000;
const EXPORTER: &str = "192.0.2.10:40000";
const COLLECTOR: &str = "192.0.2.1:2055";

fn pharos(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A pcap of `(seconds after SECS, payload)` datagrams from [`EXPORTER`] to [`COLLECTOR`].
fn write_capture(path: &Path, datagrams: &[(u32, Vec<u8>)]) {
    let src: SocketAddrV4 = EXPORTER.parse().unwrap();
    let dst: SocketAddrV4 = COLLECTOR.parse().unwrap();
    support::write_udp_pcap(
        path,
        datagrams.iter().map(|(at, payload)| support::PcapUdp {
            src,
            dst,
            secs: SECS + at,
            usec: 0,
            payload: payload.clone(),
        }),
    );
}

/// A NetFlow v9 datagram of `sets` (flowset id, body), source id 0, exported at `SECS + at`.
fn v9(seq: u32, at: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&9u16.to_be_bytes());
    d.extend_from_slice(&(sets.len() as u16).to_be_bytes());
    d.extend_from_slice(&(UPTIME + at * 1000).to_be_bytes());
    d.extend_from_slice(&(SECS + at).to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    for (id, body) in sets {
        d.extend_from_slice(&id.to_be_bytes());
        d.extend_from_slice(&(4 + body.len() as u16).to_be_bytes());
        d.extend_from_slice(body);
    }
    d
}

/// Template `id` with addresses of `addr_len` bytes (4: fields 8/12, 16: fields 27/28), ports,
/// protocol, TCP flags, bytes, packets, first and last switched.
fn template(id: u16, addr_len: u16) -> (u16, Vec<u8>) {
    let (s, d) = if addr_len == 4 { (8, 12) } else { (27, 28) };
    let fields: [(u16, u16); 10] = [
        (s, addr_len),
        (d, addr_len),
        (7, 2),
        (11, 2),
        (4, 1),
        (6, 1),
        (1, 4),
        (2, 4),
        (22, 4),
        (21, 4),
    ];
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (t, l) in fields {
        b.extend_from_slice(&t.to_be_bytes());
        b.extend_from_slice(&l.to_be_bytes());
    }
    (0, b)
}

/// One flow of a data set: addresses, ports, protocol, bytes, and when it started (ms before the
/// datagram's export time; it lasts 500 ms).
struct Flow<'a> {
    src: &'a [u8],
    dst: &'a [u8],
    ports: (u16, u16),
    proto: u8,
    bytes: u32,
}

/// A data set of template `id` holding `flows`, for a datagram exported at `SECS + at`.
fn data(id: u16, at: u32, flows: &[Flow]) -> (u16, Vec<u8>) {
    let mut b = Vec::new();
    for f in flows {
        b.extend_from_slice(f.src);
        b.extend_from_slice(f.dst);
        b.extend_from_slice(&f.ports.0.to_be_bytes());
        b.extend_from_slice(&f.ports.1.to_be_bytes());
        b.push(f.proto);
        b.push(if f.proto == 6 { 0x12 } else { 0 });
        b.extend_from_slice(&f.bytes.to_be_bytes());
        b.extend_from_slice(&(f.bytes / 100 + 1).to_be_bytes());
        let uptime = UPTIME + at * 1000;
        b.extend_from_slice(&(uptime - 1500).to_be_bytes());
        b.extend_from_slice(&(uptime - 1000).to_be_bytes());
    }
    (id, b)
}

fn v4_flows() -> Vec<Flow<'static>> {
    vec![
        Flow {
            src: &[10, 0, 0, 1],
            dst: &[198, 51, 100, 10],
            ports: (40000, 443),
            proto: 6,
            bytes: 9000,
        },
        Flow {
            src: &[10, 0, 0, 2],
            dst: &[198, 51, 100, 53],
            ports: (40001, 53),
            proto: 17,
            bytes: 3000,
        },
    ]
}

const V6_SRC: [u8; 16] = [0xff; 16];
const V6_DST: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
];

/// A v9 capture with templates first: two IPv4 flows at second 0, one IPv4 flow at second 180
/// (three quiet minutes between), one IPv6 flow with the longest addresses at second 180.
fn good_capture(path: &Path) {
    let v6 = [Flow {
        src: &V6_SRC,
        dst: &V6_DST,
        ports: (65535, 65535),
        proto: 6,
        bytes: 4_000_000_000,
    }];
    write_capture(
        path,
        &[
            (
                0,
                v9(
                    0,
                    0,
                    &[
                        template(256, 4),
                        template(257, 16),
                        data(256, 0, &v4_flows()),
                    ],
                ),
            ),
            (
                180,
                v9(
                    1,
                    180,
                    &[data(256, 180, &v4_flows()[..1]), data(257, 180, &v6)],
                ),
            ),
        ],
    );
}

fn import(pcaps: &[&Path], data: &Path) -> Output {
    let mut args = vec!["flows", "import"];
    args.extend(pcaps.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--data-dir", data.to_str().unwrap()]);
    let out = pharos(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    text(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn assert_fits(what: &str, out: &str) {
    for line in out.lines() {
        assert!(
            line.chars().count() <= 120,
            "{what}: a line of {} columns:\n{line}\n{out}",
            line.chars().count()
        );
    }
}

#[test]
fn replay_to_a_host_name_reaches_the_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("v9.pcap");
    good_capture(&pcap);
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = collector.local_addr().unwrap().port();
    let to = format!("localhost:{port}");
    let out = pharos(&["replay", pcap.to_str().unwrap(), "--to", &to]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("sent 2 datagrams"),
        "{}",
        text(&out.stdout)
    );
    let mut buf = [0u8; 2048];
    for _ in 0..2 {
        let (n, _) = collector.recv_from(&mut buf).expect("a datagram arrives");
        assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), 9, "{n} bytes of v9");
    }

    let out = pharos(&["replay", pcap.to_str().unwrap(), "--to", "localhost"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("HOST:PORT") && err.contains("port is required"),
        "{err}"
    );
    assert!(!err.contains("invalid socket address syntax"), "{err}");
}

#[test]
fn flows_commands_without_an_archive_say_where_they_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("empty");
    let d = d.to_str().unwrap();
    for args in [
        &["flows", "top", "dstip", "--data-dir", d][..],
        &["flows", "query", "--data-dir", d],
        &["flows", "series", "--data-dir", d],
        &["flows", "export", "--data-dir", d],
    ] {
        let out = pharos(args);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("no flow archive at"), "{args:?}: {err}");
        assert!(err.contains("flows import"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
}

#[test]
fn decode_of_a_file_that_is_not_a_capture_prints_only_its_error_with_the_name_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("not\u{1b}[2Ja capture");
    std::fs::write(&junk, b"hello, this is text").unwrap();
    let out = pharos(&["decode", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "no table header: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(err.contains("not\\x1b[2Ja capture"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn counts_and_ports_are_refused_in_words_not_rust_types() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let out = pharos(&["flows", "top", "proto", "-n", "ten", "--data-dir", d]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("a number of rows such as 10"), "{err}");
    assert!(
        !err.contains("invalid digit") && !err.contains("usize"),
        "{err}"
    );

    let out = pharos(&[
        "replay",
        "x.pcap",
        "--to",
        "127.0.0.1:2055",
        "--only-port",
        "70000",
    ]);
    let err = text(&out.stderr);
    assert!(err.contains("UDP port number 0..65535"), "{err}");
    assert!(!err.contains("u16") && !err.contains("0..=65535"), "{err}");
}

#[test]
fn import_of_data_before_its_template_says_how_much_was_lost_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("late-template.pcap");
    // Data for 10 s, the template only after that: every data set expires unread.
    let mut dgs: Vec<(u32, Vec<u8>)> = (0..10)
        .map(|i| (i, v9(i, i, &[data(256, i, &v4_flows())])))
        .collect();
    dgs.push((20, v9(10, 20, &[template(256, 4)])));
    write_capture(&pcap, &dgs);
    let data_dir = tmp.path().join("data");
    let out = import(&[&pcap], &data_dir);
    let err = text(&out.stderr);
    assert!(err.contains(": 0 flows"), "{err}");
    assert!(
        err.contains(
            "20 data records (10 data sets) arrived before their template (v9 template 256 from \
             192.0.2.10 domain 0) and could not be decoded"
        ),
        "{err}"
    );
    assert!(err.contains("templates must precede its data"), "{err}");

    // No template at all: the sets are counted, and the reason the records are not.
    let pcap = tmp.path().join("no-template.pcap");
    write_capture(&pcap, &dgs[..3]);
    let out = pharos(&["decode", pcap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("3 data sets (180 bytes; the template never came"),
        "{err}"
    );
    assert!(
        err.contains("(v9 template 256 from 192.0.2.10 domain 0)"),
        "{err}"
    );
}

#[test]
fn tables_name_protocols_and_fit_120_columns_while_json_keeps_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("v9.pcap");
    good_capture(&pcap);
    let data_dir = tmp.path().join("data");
    import(&[&pcap], &data_dir);
    let d = data_dir.to_str().unwrap();

    let out = pharos(&["decode", pcap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains(" TCP ") && table.contains(" UDP "),
        "{table}"
    );
    assert!(
        table.contains("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        "long addresses are shown whole: {table}"
    );
    assert!(table.contains("4.0 G"), "large counts are scaled: {table}");
    assert_fits("decode", &table);
    let json = json_lines(&pharos(&["decode", "--json", pcap.to_str().unwrap()]).stdout);
    assert_eq!(json[0]["proto"], 6);
    assert_eq!(json[3]["bytes"], 4_000_000_000u64);

    let out = pharos(&["flows", "query", "--data-dir", d]);
    let table = text(&out.stdout);
    assert!(
        table.contains(" TCP ") && table.contains(" UDP "),
        "{table}"
    );
    assert_fits("query", &table);

    for key in ["proto", "srcip", "dstip6/128", "ip"] {
        let out = pharos(&["flows", "top", key, "--data-dir", d]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_fits(key, &text(&out.stdout));
    }
    let out = pharos(&["flows", "top", "proto", "--data-dir", d]);
    let table = text(&out.stdout);
    assert!(table.contains("TCP") && table.contains("UDP"), "{table}");
    let v: Value = serde_json::from_slice(
        &pharos(&["flows", "top", "proto", "--json", "--data-dir", d]).stdout,
    )
    .unwrap();
    assert_eq!(v["rows"][0]["key"], 6, "{v}");

    let out = pharos(&["flows", "series", "--key", "proto", "--data-dir", d]);
    let table = text(&out.stdout);
    assert!(table.contains("proto TCP:"), "{table}");
    assert_fits("series", &table);
}

#[test]
fn series_fill_quiet_intervals_with_zeros() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("v9.pcap");
    good_capture(&pcap);
    let data_dir = tmp.path().join("data");
    import(&[&pcap], &data_dir);
    let d = data_dir.to_str().unwrap();
    let out = pharos(&[
        "flows",
        "series",
        "--interval",
        "1m",
        "--json",
        "--data-dir",
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let flows: Vec<u64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["flows"].as_u64().unwrap())
        .collect();
    assert_eq!(flows, [2, 0, 0, 2], "{v}");
    let out = pharos(&["flows", "series", "--interval", "1m", "--data-dir", d]);
    let table = text(&out.stdout);
    assert_eq!(
        table.lines().count(),
        5,
        "a header and four intervals: {table}"
    );
}

#[test]
fn csv_exports_write_rfc3339_times() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("v9.pcap");
    good_capture(&pcap);
    let data_dir = tmp.path().join("data");
    import(&[&pcap], &data_dir);
    let out = pharos(&["flows", "export", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert!(
        lines.next().unwrap().starts_with("start,end,exporter,"),
        "{csv}"
    );
    let first = lines.next().unwrap();
    // Exported at SECS (2025-11-24T16:00:00Z), started 1.5 s and ended 1 s before.
    assert!(
        first.starts_with("2025-11-24T15:59:58.500Z,2025-11-24T15:59:59.000Z,192.0.2.10,"),
        "{first}"
    );
}

#[test]
fn decode_and_import_take_several_files_and_go_on_past_a_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.pcap");
    let b = tmp.path().join("b.pcap");
    good_capture(&a);
    good_capture(&b);
    let bad = tmp.path().join("bad.pcap");
    std::fs::write(&bad, b"not a capture").unwrap();

    let out = pharos(&["decode", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out.stdout).len(), 8);

    let out = pharos(&[
        "decode",
        a.to_str().unwrap(),
        bad.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let table = text(&out.stdout);
    assert_eq!(
        table.matches("start (UTC)").count(),
        1,
        "one header for all files: {table}"
    );
    assert!(
        table.lines().count() >= 9,
        "the flows of both good files: {table}"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("1 of 3 captures") && err.contains("bad.pcap"),
        "{err}"
    );

    let data_dir = tmp.path().join("data");
    let out = import(&[&a, &b], &data_dir);
    assert!(
        text(&out.stdout).contains("imported 8 flows"),
        "{}",
        text(&out.stdout)
    );
}
