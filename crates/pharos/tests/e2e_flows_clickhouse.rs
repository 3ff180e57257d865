//! The same flows in the Parquet archive and in ClickHouse give the same answers (issue 20, "The
//! same `flows top` answer from the Parquet engine and from ClickHouse on the same flows"): one
//! NetFlow v5 capture generated here is loaded by `pharos flows import` into a data directory
//! and by `pharos flows import --engine clickhouse` into a throw-away `clickhouse-server`; then
//! `pharos flows top|series|query` run against each (the engine chosen by the configuration's
//! `[clickhouse]` section, by `--engine`, or by `--data-dir`) and must print the same answers,
//! and `pharos run` with `[clickhouse]` serves the same top list on `GET /api/v1/flows/top`.
//!
//! Without `clickhouse-server` the tests say so and pass, unless `PHAROS_REQUIRE_ALL=1`.

mod support;

#[path = "../../clickhouse/tests/server/mod.rs"]
mod server;

use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use server::Server;
use support::{Instance, bin};

/// Export time of the first datagram: 2025-11-24 16:00:00 UTC.
const SECS: u32 = 1_764_000_000;
/// The exporter's uptime at [`SECS`], in ms.
const UPTIME: u32 = 86_400_000;
/// Datagrams of 30 flows each (12,000 flows), one every 1.5 s (10 minutes).
const DATAGRAMS: u32 = 400;

fn pharos(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// xorshift64*: the capture is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A NetFlow v5 datagram of 30 varied flows exported at `SECS + at_ms / 1000`: addresses from
/// a few /24s (so top lists have ties and leaders), TCP with several flag mixes, UDP to
/// well-known ports, ICMP; flows of up to 20 s ending before the export.
fn v5(seq: u32, at_ms: u32, rng: &mut Rng) -> Vec<u8> {
    let mut d = Vec::with_capacity(24 + 30 * 48);
    let uptime = UPTIME + at_ms;
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&30u16.to_be_bytes());
    d.extend_from_slice(&uptime.to_be_bytes());
    d.extend_from_slice(&(SECS + at_ms / 1000).to_be_bytes());
    d.extend_from_slice(&((at_ms % 1000) * 1_000_000).to_be_bytes());
    d.extend_from_slice(&(seq * 30).to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0]);
    for _ in 0..30 {
        let src = [10, 0, rng.below(4) as u8, 1 + rng.below(60) as u8];
        let dst = [198, 51, 100 + rng.below(3) as u8, 1 + rng.below(25) as u8];
        let (proto, sport, dport, flags) = match rng.below(10) {
            0..=5 => (
                6u8,
                1024 + rng.below(3000) as u16,
                [80u16, 443, 22, 25][rng.below(4) as usize],
                [0x02u8, 0x12, 0x1b, 0x18, 0x11][rng.below(5) as usize],
            ),
            6..=8 => (
                17,
                [53u16, 123, 1900, 11211, 40000][rng.below(5) as usize],
                1024 + rng.below(3000) as u16,
                0,
            ),
            _ => (1, 0, 0x0800, 0),
        };
        let packets = 1 + rng.below(200) as u32;
        let bytes = packets * (40 + rng.below(1460) as u32);
        let last = uptime - rng.below(1000) as u32;
        let first = last - rng.below(20_000) as u32;
        d.extend_from_slice(&src);
        d.extend_from_slice(&dst);
        d.extend_from_slice(&[0, 0, 0, 0]);
        d.extend_from_slice(&(1 + rng.below(3) as u16).to_be_bytes());
        d.extend_from_slice(&(1 + rng.below(3) as u16).to_be_bytes());
        d.extend_from_slice(&packets.to_be_bytes());
        d.extend_from_slice(&bytes.to_be_bytes());
        d.extend_from_slice(&first.to_be_bytes());
        d.extend_from_slice(&last.to_be_bytes());
        d.extend_from_slice(&sport.to_be_bytes());
        d.extend_from_slice(&dport.to_be_bytes());
        d.extend_from_slice(&[0, flags, proto, 0]);
        d.extend_from_slice(&(64_500 + rng.below(3) as u16).to_be_bytes());
        d.extend_from_slice(&(64_510 + rng.below(3) as u16).to_be_bytes());
        d.extend_from_slice(&[24, 24, 0, 0]);
    }
    d
}

fn write_capture(path: &Path) {
    let mut rng = Rng(0x5eed_f10e_c0ff_ee01);
    let src: SocketAddrV4 = "192.0.2.10:50000".parse().unwrap();
    let dst: SocketAddrV4 = "192.0.2.1:2055".parse().unwrap();
    support::write_udp_pcap(
        path,
        (0..DATAGRAMS).map(|i| {
            let at_ms = i * 1_500;
            support::PcapUdp {
                src,
                dst,
                secs: SECS + at_ms / 1000,
                usec: (at_ms % 1000) * 1000,
                payload: v5(i, at_ms, &mut rng),
            }
        }),
    );
}

/// The answer without `stats` (what each engine did to find it).
fn answer(text: &str) -> Value {
    let mut v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    if let Some(o) = v.as_object_mut() {
        o.remove("stats");
    }
    v
}

/// The flows, the two archives: a data directory holding the Parquet archive, and a
/// configuration whose `[clickhouse]` section names the server's database.
struct Archives {
    _srv: Server,
    dir: tempfile::TempDir,
    url: String,
}

impl Archives {
    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn config(&self) -> String {
        self.dir.path().join("ch.toml").display().to_string()
    }

    /// Loads the same capture into both; `None` (after saying why) without a server.
    fn load() -> Option<Archives> {
        let srv = Server::start()?;
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("flows.pcap");
        write_capture(&pcap);
        let url = srv.url();
        let a = Archives {
            _srv: srv,
            dir,
            url,
        };
        std::fs::write(
            a.config(),
            format!(
                "[clickhouse]\nurl = {:?}\ndatabase = \"pharos_e2e\"\n[store]\ndata_dir = {:?}\n",
                a.url,
                a.dir.path().join("unused").display().to_string()
            ),
        )
        .unwrap();
        let pcap = pcap.display().to_string();
        let out = ok(
            "import into Parquet",
            pharos(&["flows", "import", &pcap, "--data-dir", &a.data()]),
        );
        assert!(out.contains("imported 12,000 flows"), "{out}");
        // Inserts of 5,000 flows: three batches, two of them in flight at once.
        let args = [
            "flows",
            "import",
            &pcap,
            "--engine",
            "clickhouse",
            "-c",
            &a.config(),
            "--segment-flows",
            "5000",
        ];
        let out = ok("import into ClickHouse", pharos(&args));
        assert!(
            out.contains("imported 12,000 flows into ClickHouse")
                && out.contains("(12,000 written, 0 batches already stored)"),
            "{out}"
        );
        // The same capture again: its batches are in the ledger, nothing is written twice.
        let out = ok("import into ClickHouse again", pharos(&args));
        assert!(
            out.contains("(0 written, 3 batches already stored)"),
            "{out}"
        );
        Some(a)
    }
}

/// `flows top|series|query ARGS --json` from both engines: the same answer, and not an empty one.
fn same_json(a: &Archives, args: &[&str]) -> Value {
    let data = a.data();
    let mut parquet = vec!["flows"];
    parquet.extend_from_slice(args);
    parquet.extend_from_slice(&["--json", "--data-dir", &data]);
    let p = ok(&format!("parquet {args:?}"), pharos(&parquet));
    // The configuration has [clickhouse]: ClickHouse answers without --engine.
    let cfg = a.config();
    let mut ch = vec!["flows"];
    ch.extend_from_slice(args);
    ch.extend_from_slice(&["--json", "-c", &cfg]);
    let c = ok(&format!("clickhouse {args:?}"), pharos(&ch));
    if args[0] == "query" {
        let (p, c): (Vec<Value>, Vec<Value>) = (
            p.lines().map(answer).collect(),
            c.lines().map(answer).collect(),
        );
        assert_eq!(p, c, "{args:?}");
        assert!(!p.is_empty(), "{args:?} selects flows");
        return Value::Array(p);
    }
    let (p, c) = (answer(&p), answer(&c));
    assert_eq!(p, c, "{args:?}");
    let rows = p.get("rows").or_else(|| p.get("points")).cloned();
    assert!(
        rows.as_ref()
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty()),
        "{args:?} selects flows: {p}"
    );
    p
}

#[test]
fn flows_top_series_and_query_answer_the_same_from_parquet_and_from_clickhouse() {
    let Some(a) = Archives::load() else {
        return;
    };
    let all = same_json(&a, &["top", "proto", "--by", "flows"]);
    assert_eq!(all["total"]["flows"], 12_000, "{all}");
    // The four standard queries of docs/PERFORMANCE.md, then other keys and filters.
    same_json(&a, &["top", "dstip", "--by", "bytes", "-n", "10"]);
    same_json(
        &a,
        &[
            "top", "srcport", "--by", "bytes", "-n", "10", "proto", "udp",
        ],
    );
    same_json(
        &a,
        &[
            "top", "dstip", "--by", "flows", "-n", "10", "flags", "S", "and", "not", "flags", "A",
        ],
    );
    let window = same_json(
        &a,
        &[
            "top",
            "dstip",
            "--by",
            "bytes",
            "-n",
            "10",
            "--from",
            "2025-11-24T16:02:00Z",
            "--to",
            "2025-11-24T16:07:00Z",
        ],
    );
    let selected = window["total"]["flows"].as_u64().unwrap();
    assert!(
        selected > 0 && selected < 12_000,
        "the window selects some flows: {window}"
    );
    same_json(&a, &["top", "srcip4/24", "--by", "packets", "-n", "5"]);
    same_json(
        &a,
        &["top", "dstport", "-n", "20", "src", "net", "10.0.1.0/24"],
    );
    same_json(
        &a,
        &["top", "srcas", "--by", "flows", "not", "proto", "icmp"],
    );
    same_json(&a, &["top", "inif", "-n", "3", "bytes", ">", "100000"]);
    same_json(&a, &["series", "--interval", "1m"]);
    same_json(
        &a,
        &[
            "series",
            "--interval",
            "5m",
            "--key",
            "proto",
            "-n",
            "3",
            "dst",
            "net",
            "198.51.100.0/24",
        ],
    );
    same_json(
        &a,
        &["query", "--order", "bytes", "-l", "25", "proto", "tcp"],
    );
    same_json(
        &a,
        &[
            "query",
            "-l",
            "40",
            "dst",
            "host",
            "198.51.101.7",
            "or",
            "port",
            "53",
        ],
    );

    // The tables are the same too; only the last line (what each engine did) differs.
    let table = |args: &[&str]| -> Vec<String> {
        let out = ok(&format!("{args:?}"), pharos(args));
        let mut lines: Vec<String> = out.lines().map(String::from).collect();
        lines.pop();
        lines
    };
    let cfg = a.config();
    let data = a.data();
    let p = table(&["flows", "top", "dstip", "-n", "5", "--data-dir", &data]);
    let c = table(&["flows", "top", "dstip", "-n", "5", "-c", &cfg]);
    assert_eq!(p, c);
    assert!(
        p.len() >= 8 && p[0].starts_with("Top 5 dstip by bytes"),
        "{p:?}"
    );
    // --engine forces either side whatever the configuration says.
    let forced = ok(
        "--engine parquet",
        pharos(&[
            "flows",
            "top",
            "dstip",
            "-n",
            "5",
            "-c",
            &cfg,
            "--engine",
            "parquet",
            "--data-dir",
            &data,
        ]),
    );
    assert!(
        forced.contains("row groups"),
        "the Parquet scan line: {forced}"
    );
    let on_ch = ok(
        "--engine clickhouse",
        pharos(&[
            "flows",
            "top",
            "dstip",
            "-n",
            "5",
            "-c",
            &cfg,
            "--engine",
            "clickhouse",
        ]),
    );
    assert!(
        on_ch.contains(&format!("ClickHouse {} database pharos_e2e", a.url)),
        "the ClickHouse line: {on_ch}"
    );
    assert_eq!(forced.lines().count(), on_ch.lines().count());

    // Mistakes are named alike, and --engine clickhouse without [clickhouse] says what is missing.
    for bad in [
        &["top", "nonsense"][..],
        &["top", "dstip", "proto", "("][..],
    ] {
        let mut p = vec!["flows"];
        p.extend_from_slice(bad);
        let mut c = p.clone();
        p.extend_from_slice(&["--data-dir", &data]);
        c.extend_from_slice(&["-c", &cfg]);
        let (po, co) = (pharos(&p), pharos(&c));
        assert!(!po.status.success() && !co.status.success(), "{bad:?}");
        assert_eq!(po.stderr, co.stderr, "{bad:?}");
    }
    let empty = a.dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let out = pharos(&[
        "flows",
        "top",
        "dstip",
        "--engine",
        "clickhouse",
        "-c",
        &empty.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("[clickhouse]"),
        "{err}"
    );
}

/// `pharos run` with `[clickhouse]` answers `GET /api/v1/flows/top` from ClickHouse: the same
/// rows and totals as `pharos flows top` on the Parquet archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_of_pharos_run_with_clickhouse_serves_the_parquet_answer() {
    let Some(a) = Archives::load() else {
        return;
    };
    let inst = Instance::start(&format!(
        "[flow]\nenabled = false\n[clickhouse]\nurl = {:?}\ndatabase = \"pharos_e2e\"\n",
        a.url
    ));
    let http = support::client();
    for (query, args) in [
        ("key=dstip&n=10", &["top", "dstip", "-n", "10"][..]),
        (
            "key=srcport&n=10&filter=proto%20udp",
            &["top", "srcport", "-n", "10", "proto", "udp"][..],
        ),
        (
            "key=dstip&by=flows&filter=flags%20S%20and%20not%20flags%20A",
            &[
                "top", "dstip", "--by", "flows", "flags", "S", "and", "not", "flags", "A",
            ][..],
        ),
    ] {
        let resp = http
            .get(inst.url(&format!("/api/v1/flows/top?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{query}: {}", inst.log());
        let api: Value = resp.json().await.unwrap();
        let data = a.data();
        let mut cli = vec!["flows"];
        cli.extend_from_slice(args);
        cli.extend_from_slice(&["--json", "--data-dir", &data]);
        let parquet = answer(&ok("parquet", pharos(&cli)));
        let rows = |v: &Value| -> Vec<(String, u64, u64, u64)> {
            v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let k = &r["key"];
                    (
                        k.as_str().map_or_else(|| k.to_string(), String::from),
                        r["flows"].as_u64().unwrap(),
                        r["packets"].as_u64().unwrap(),
                        r["bytes"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        assert!(!rows(&parquet).is_empty(), "{query}");
        assert_eq!(rows(&api), rows(&parquet), "{query}");
        assert_eq!(api["total"], parquet["total"], "{query}");
        assert_eq!(api["distinct"], parquet["distinct"], "{query}");
        assert_eq!(
            api["stats"]["rows_matched"], parquet["total"]["flows"],
            "{query}"
        );
    }
}
