//! End-to-end RID (RFC 6545/6546): three `pharos run` instances A, B, C on loopback, each with
//! its own certificate from a test CA, its own flow archive and peers. A spoofed NTP reflection
//! hits a victim in A; B's archive shows it entering from C's interface; C's archive shows it
//! coming from a customer prefix. A detects it and sends a TraceRequest to B; B relays it to C
//! (answering A with 202 + callback); C finds the source, runs its mitigation hook and answers
//! B inline with a Result, which B relays back to A. Then the refusals: an unknown certificate,
//! a peer not allowed a message type, the rate limit, a request with no matching traffic, a
//! tampered signature. Between A and C: an InvestigationRequest, a Report and Queries; on B
//! alone: incident expiry and the state table in `pharos backup`.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pharos_rid::transport::{Answer, ClientSettings, Fingerprint, Peer, RidClient, SendError};
use pharos_rid::{AuthorizationStatus, Justification, Limits, MsgType, Rid};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use support::{Instance, bin};

const UPTIME: u32 = 3_600_000;
const VICTIM: [u8; 4] = [198, 51, 100, 10];

/// One flow of a replay: source, destination, source port, destination port, packets.
type FlowSpec = ([u8; 4], [u8; 4], u16, u16, u32);
/// One stored message: direction, peer, type, HTTP status, body.
type Stored = (String, String, String, Option<u16>, Vec<u8>);

/// A certificate and key as PEM files, with the certificate's fingerprint.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    fingerprint: String,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(p, key))
}

fn leaf(dir: &Path, issuer: &Issuer<'_, KeyPair>, file: &str, dns: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![dns.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, dns);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = p.signed_by(&key, issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    Leaf {
        cert: c,
        key: k,
        fingerprint: Fingerprint::of_certificate(cert.der()).to_string(),
    }
}

struct Pki {
    dir: tempfile::TempDir,
    ca: PathBuf,
    a: Leaf,
    b: Leaf,
    c: Leaf,
    /// Right CA, not in anyone's peer list.
    x: Leaf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = ca("RID e2e CA");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    Pki {
        a: leaf(dir.path(), &issuer, "a", "rid-a.test"),
        b: leaf(dir.path(), &issuer, "b", "rid-b.test"),
        c: leaf(dir.path(), &issuer, "c", "rid-c.test"),
        x: leaf(dir.path(), &issuer, "x", "rid-x.test"),
        ca,
        dir,
    }
}

/// Waits until the instance's RID server listens (it starts after the API).
async fn wait_rid(inst: &Instance) {
    let f = inst.dir.path().join("data/rid.addr");
    poll(
        30,
        "rid.addr",
        || inst.log(),
        async || {
            std::fs::read_to_string(&f)
                .ok()
                .filter(|s| s.ends_with('\n'))
                .map(|_| ())
        },
    )
    .await;
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `[[rid.peer]]` entry.
fn peer_toml(name: &str, port: u16, leaf: &Leaf, extra: &str) -> String {
    format!(
        "\n[[rid.peer]]\nname = \"{name}\"\nurl = \"https://rid-{name}.test:{port}/\"\nfingerprint = \"{}\"\nsigning_cert = {:?}\n{extra}\n",
        leaf.fingerprint,
        leaf.cert.display().to_string()
    )
}

/// `[rid]` of instance `me`.
fn rid_toml(me: &str, port: u16, leaf: &Leaf, ca: &Path, more: &str) -> String {
    format!(
        "[log]\nlevel = \"info,pharos::rid_stage=debug\"\n[rid]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\nname = \"rid-{me}.test\"\ncert = {:?}\nkey = {:?}\nca = {:?}\nmax_attempts = 2\ninitial_backoff = \"200ms\"\nrequest_timeout = \"30s\"\n{more}[rid.resolve]\n\"rid-a.test\" = \"127.0.0.1\"\n\"rid-b.test\" = \"127.0.0.1\"\n\"rid-c.test\" = \"127.0.0.1\"\n",
        leaf.cert.display().to_string(),
        leaf.key.display().to_string(),
        ca.display().to_string()
    )
}

/// One NetFlow v5 datagram of `flows` (src, dst, sport, dport, packets) entering on `input`,
/// exported at `uptime` ms / `unix_secs`.
fn v5(seq: u32, uptime: u32, unix_secs: u32, input: u16, flows: &[FlowSpec]) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let header = V5Header {
        sys_uptime: uptime,
        unix_secs,
        flow_sequence: seq,
        ..V5Header::default()
    };
    let records: Vec<V5RecordRepr> = flows
        .iter()
        .map(|&(src, dst, sport, dport, packets)| V5RecordRepr {
            src_addr: src.into(),
            dst_addr: dst.into(),
            next_hop: [192, 0, 2, 254].into(),
            input,
            output: 2,
            packets,
            octets: packets * 468,
            first: uptime - 999,
            last: uptime,
            src_port: sport,
            dst_port: dport,
            proto: 17,
            src_mask: 24,
            dst_mask: 24,
            ..V5RecordRepr::default()
        })
        .collect();
    emit(&header, &records).unwrap()
}

/// `secs` seconds of an NTP reflection toward `victim` (30 reflectors in 203.0.113.0/24, 400
/// packets a second each) plus a little background, entering on interface `input`; replayed
/// to `inst`'s flow collector at `rate` datagrams a second.
fn replay(inst: &Instance, victim: [u8; 4], input: u16, secs: u32, rate: u32) {
    let flow_addr: SocketAddr = std::fs::read_to_string(inst.dir.path().join("data/flow.addr"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        + 1;
    let mut dgs = Vec::new();
    let mut seq = 0;
    for s in 0..secs {
        let (uptime, unix) = (UPTIME + s * 1000, t0 + s);
        let flood: Vec<_> = (0..30u32)
            .map(|j| {
                (
                    [203, 0, 113, j as u8 + 1],
                    victim,
                    123,
                    40_000 + ((s * 30 + j) % 20_000) as u16,
                    400,
                )
            })
            .collect();
        let background: Vec<_> = (0..10u32)
            .map(|j| {
                (
                    [10, 1, s as u8, j as u8],
                    [198, 51, 100, 100 + j as u8],
                    1024 + j as u16,
                    53,
                    2,
                )
            })
            .collect();
        dgs.push((unix, 0, v5(seq, uptime, unix, input, &flood)));
        seq += 30;
        dgs.push((unix, 1000, v5(seq, uptime, unix, 1, &background)));
        seq += 10;
    }
    let pcap = inst.dir.path().join(format!("replay-{input}.pcap"));
    support::write_udp_pcap(
        &pcap,
        dgs.into_iter()
            .map(|(secs, usec, payload)| support::PcapUdp {
                src: "192.0.2.10:40000".parse().unwrap(),
                dst: "192.0.2.1:2055".parse().unwrap(),
                secs,
                usec,
                payload,
            }),
    );
    let out = Command::new(bin())
        .arg("replay")
        .arg(&pcap)
        .args(["--to", &flow_addr.to_string(), "--rate", &rate.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `f` every 100 ms until it gives `Some` (deadline `secs`).
async fn poll<T>(
    secs: u64,
    what: &str,
    diag: impl Fn() -> String,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            diag()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Flows the instance's archive holds toward the victim.
async fn archived_to_victim(inst: &Instance) -> usize {
    let v = support::get_json(
        inst,
        "/api/v1/flows/query?filter=dst%20host%20198.51.100.10&limit=10",
    )
    .await;
    v["flows"].as_array().map_or(0, Vec::len)
}

/// The state table of an instance, opened read-only.
fn state(inst: &Instance) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        inst.dir.path().join("data/rid.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// (status, sp_path, direction) of every incident.
fn incidents(inst: &Instance) -> Vec<(String, String, String, String)> {
    let c = state(inst);
    let mut st = c
        .prepare("SELECT id_number, status, sp_path, direction FROM incidents ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// (direction, peer, msg_type, http_status, body) of every message.
fn messages(inst: &Instance) -> Vec<Stored> {
    let c = state(inst);
    let mut st = c
        .prepare("SELECT direction, peer, msg_type, http_status, body FROM messages ORDER BY id")
        .unwrap();
    st.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn schemas() -> Option<PathBuf> {
    let dir = support::shared_dir()?.join("schemas");
    dir.join("catalog.xml").exists().then_some(dir)
}

fn require_all() -> bool {
    std::env::var("PHAROS_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Validates `xml` against the RID XSD with xmllint; false when the tool or schemas are
/// missing (a failure under PHAROS_REQUIRE_ALL=1).
fn xmllint(dir: &Path, xml: &[u8]) -> bool {
    let Some(schemas) = schemas() else {
        assert!(
            !require_all(),
            "../shared/schemas missing under PHAROS_REQUIRE_ALL=1"
        );
        eprintln!("skipping XSD validation: ../shared/schemas not found");
        return false;
    };
    if Command::new("xmllint").arg("--version").output().is_err() {
        assert!(!require_all(), "xmllint missing under PHAROS_REQUIRE_ALL=1");
        eprintln!("skipping XSD validation: xmllint not found");
        return false;
    }
    let f = dir.join("msg.xml");
    std::fs::write(&f, xml).unwrap();
    let out = Command::new("xmllint")
        .env("XML_CATALOG_FILES", schemas.join("catalog.xml"))
        .args(["--nonet", "--noout", "--schema"])
        .arg(schemas.join("iodef-rid-2.0.xsd"))
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmllint refuses a stored message: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(xml)
    );
    true
}

/// Whether xmlsec1 verifies the `index`-th (from 1) signature of `xml` with `cert`.
fn xmlsec_verify(dir: &Path, xml: &[u8], cert: &Path, index: usize) -> Option<bool> {
    if Command::new("xmlsec1").arg("--version").output().is_err() {
        assert!(!require_all(), "xmlsec1 missing under PHAROS_REQUIRE_ALL=1");
        eprintln!("skipping xmlsec1 verification: xmlsec1 not found");
        return None;
    }
    let f = dir.join("sig.xml");
    std::fs::write(&f, xml).unwrap();
    let xpath = format!(
        "(//*[local-name()='Signature' and namespace-uri()='http://www.w3.org/2000/09/xmldsig#'])[{index}]"
    );
    let out = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(cert)
        .arg("--trusted-pem")
        .arg(cert)
        .args(["--id-attr:Id", "urn:pharos:flow-record:1:flow"])
        .args(["--node-xpath", &xpath])
        .arg(&f)
        .output()
        .unwrap();
    Some(out.status.success())
}

const DETECT: &str = "[flow]\nlisten = [\"127.0.0.1:0\"]\n[detect.ddos]\nnetworks = [\"198.51.100.0/24\"]\nwindow = \"2s\"\ndelay = \"2s\"\nhold = \"10m\"\nthresholds.ntp = { pps = 2000 }\n";
const COLLECT: &str = "[flow]\nlisten = [\"127.0.0.1:0\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_goes_from_a_through_b_to_c_and_the_result_comes_back() {
    let started = Instant::now();
    let pki = pki();
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let hook_out = tmp.path().join("mitigated");
    let script = tmp.path().join("mitigate.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$PHAROS_PHASE\" \"$PHAROS_RID_INCIDENT\" >> {out:?}\ncat > {out:?}.xml\n",
            out = hook_out.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // C: the source is one of its customers (interface 1, no peer there).
    let c_cfg = format!(
        "{COLLECT}[detect_hook]\ncommand = {:?}\n{}{}",
        script.display().to_string(),
        rid_toml("c", pc, &pki.c, &pki.ca, ""),
        peer_toml("b", pb, &pki.b, "")
    );
    // B: the attack enters from C on interface 7; A is the victim side.
    let b_cfg = format!(
        "{COLLECT}{}{}{}",
        rid_toml("b", pb, &pki.b, &pki.ca, ""),
        peer_toml("a", pa, &pki.a, "exporters = [\"127.0.0.1:9\"]"),
        peer_toml("c", pc, &pki.c, "exporters = [\"127.0.0.1:7\"]")
    );
    // A: the victim; the attack enters from B on interface 3.
    let a_cfg = format!(
        "{DETECT}{}{}",
        rid_toml("a", pa, &pki.a, &pki.ca, ""),
        peer_toml("b", pb, &pki.b, "exporters = [\"127.0.0.1:3\"]")
    );
    let c = Instance::start(&c_cfg);
    let b = Instance::start(&b_cfg);
    // C and B hold the attack in their archives before A asks.
    replay(&c, VICTIM, 1, 4, 100);
    replay(&b, VICTIM, 7, 4, 100);
    poll(
        30,
        "C's and B's archives",
        || format!("B:\n{}\nC:\n{}", b.log(), c.log()),
        async || {
            (archived_to_victim(&c).await > 0 && archived_to_victim(&b).await > 0).then_some(())
        },
    )
    .await;
    let a = Instance::start(&a_cfg);
    for i in [&a, &b, &c] {
        wait_rid(i).await;
    }
    replay(&a, VICTIM, 3, 6, 2);

    // The Result reaches A: its incident is closed, the path names A, B and C.
    let diag = || {
        format!(
            "A:\n{}\nB:\n{}\nC:\n{}\nA incidents {:?}\nB incidents {:?}\nC incidents {:?}",
            a.log(),
            b.log(),
            c.log(),
            incidents(&a),
            incidents(&b),
            incidents(&c)
        )
    };
    let got = poll(60, "the Result at A", diag, async || {
        incidents(&a)
            .into_iter()
            .find(|i| i.1 == "closed")
            .filter(|_| messages(&a).iter().any(|m| m.0 == "in" && m.2 == "Result"))
    })
    .await;
    let log = || format!("A:\n{}\nB:\n{}\nC:\n{}", a.log(), b.log(), c.log());
    assert!(got.0.starts_with("pharos-ddos-"), "{got:?}");
    assert_eq!(got.3, "out");
    assert!(
        got.2.contains("rid-a.test")
            && got.2.contains("rid-b.test")
            && got.2.contains("rid-c.test"),
        "{got:?}\n{}",
        log()
    );
    // A: TraceRequest out (202), Result in (the callback).
    let am = messages(&a);
    assert!(
        am.iter()
            .any(|m| m.0 == "out" && m.1 == "b" && m.2 == "TraceRequest" && m.3 == Some(202)),
        "{:?}",
        am.iter()
            .map(|m| (&m.0, &m.1, &m.2, m.3))
            .collect::<Vec<_>>()
    );
    // B: TraceRequest in from A (deferred), relayed to C (answered inline), Result from C,
    // Result relayed back to A.
    let bm = messages(&b);
    let kinds: Vec<_> = bm
        .iter()
        .map(|m| (m.0.as_str(), m.1.as_str(), m.2.as_str(), m.3))
        .collect();
    for want in [
        ("in", "a", "TraceRequest", Some(202)),
        ("out", "c", "TraceRequest", Some(200)),
        ("in", "c", "Result", Some(200)),
        ("out", "a", "Result", Some(200)),
    ] {
        assert!(
            kinds.contains(&want),
            "B lacks {want:?}: {kinds:?}\n{}",
            log()
        );
    }
    let bi = incidents(&b);
    assert_eq!(bi.len(), 1, "{bi:?}");
    assert_eq!(
        (bi[0].1.as_str(), bi[0].3.as_str()),
        ("answered", "in"),
        "{bi:?}"
    );
    // C: TraceRequest in from B, Result out inline; the hook ran with the request.
    let cm = messages(&c);
    let kinds: Vec<_> = cm
        .iter()
        .map(|m| (m.0.as_str(), m.1.as_str(), m.2.as_str(), m.3))
        .collect();
    assert!(
        kinds.contains(&("in", "b", "TraceRequest", Some(200))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("out", "b", "Result", Some(200))),
        "{kinds:?}"
    );
    let ci = incidents(&c);
    assert_eq!(ci.len(), 1);
    assert_eq!(ci[0].1, "answered");
    assert!(
        ci[0].2.contains("rid-a.test") && ci[0].2.contains("rid-b.test"),
        "{ci:?}"
    );
    let ran = std::fs::read_to_string(&hook_out).unwrap();
    assert!(
        ran.starts_with("rid-trace rid-a.test:pharos-ddos-"),
        "{ran}"
    );
    let req = std::fs::read_to_string(format!("{}.xml", hook_out.display())).unwrap();
    assert!(
        req.contains("TraceRequest") && req.contains("198.51.100.10"),
        "{req}"
    );
    // The Result A got says the source was found, in C's customer network.
    let result = am.iter().find(|m| m.0 == "in" && m.2 == "Result").unwrap();
    let r = Rid::parse(&result.4, &Limits::default()).unwrap();
    let src = r.incident_source.as_ref().unwrap();
    assert!(src.source_found);
    assert_eq!(src.nodes[0].addresses[0].value, "203.0.113.0/24");
    let history = &r.iodef().unwrap().incidents[0]
        .history
        .as_ref()
        .unwrap()
        .items;
    assert!(
        history
            .iter()
            .any(|h| h.descriptions[0].text.contains("detect_hook")),
        "{history:?}"
    );

    // Every stored message validates against the XSD; every signature verifies with xmlsec1.
    let certs = [("a", &pki.a), ("b", &pki.b), ("c", &pki.c)];
    for (inst, me) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let me = certs.iter().find(|s| s.0 == me).unwrap();
        let sender_certs = certs;
        for m in messages(inst) {
            xmllint(tmp.path(), &m.4);
            // Who signed the enveloped signature: the sender.
            let signer = if m.0 == "out" {
                me.1
            } else {
                sender_certs
                    .iter()
                    .find(|s| s.0 == m.1)
                    .map_or(me.1, |s| s.1)
            };
            let text = String::from_utf8_lossy(&m.4).to_string();
            let n = text.matches("SignatureValue").count() / 2;
            if n == 0 {
                continue;
            }
            // The enveloped signature is the last one.
            if let Some(ok) = xmlsec_verify(tmp.path(), &m.4, &signer.cert, n) {
                assert!(
                    ok,
                    "xmlsec1 refuses the enveloped signature of {} {} {}:\n{text}",
                    m.0, m.1, m.2
                );
            }
            if m.2 == "TraceRequest" && n == 2 {
                // The detached signature over the records is A's, on every hop.
                if let Some(ok) = xmlsec_verify(tmp.path(), &m.4, &pki.a.cert, 1) {
                    assert!(
                        ok,
                        "xmlsec1 refuses the detached signature at {} {}:\n{text}",
                        m.0, m.1
                    );
                }
            }
        }
    }

    // RID activity is in the message store, as I2NSF logs.
    let logs = support::messages(&a, "kind=generic-log&text=RID").await;
    assert!(
        logs.iter()
            .any(|m| m.to_string().contains("source found: true")),
        "{logs:?}"
    );
    // Counted per peer, type, direction and outcome.
    assert!(
        support::metric(
            &b,
            "pharos_rid_messages_total",
            &[
                "peer=\"c\"",
                "msg_type=\"TraceRequest\"",
                "direction=\"out\"",
                "outcome=\"sent\""
            ]
        )
        .await
            >= 1
    );
    assert!(
        support::metric(
            &b,
            "pharos_rid_messages_total",
            &[
                "peer=\"a\"",
                "msg_type=\"TraceRequest\"",
                "direction=\"in\"",
                "outcome=\"accepted\""
            ]
        )
        .await
            >= 1
    );
    eprintln!("three-network trace took {:?}", started.elapsed());
    drop(pki.dir);
}

/// A client of the test CA presenting `leaf`, pinning the instance's certificate.
fn client(pki: &Pki, leaf: &Leaf, server: &Leaf, port: u16) -> RidClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut s = ClientSettings::new(
        leaf.cert.clone(),
        leaf.key.clone(),
        pki.ca.clone(),
        vec![
            Peer::new("b", Fingerprint::parse(&server.fingerprint).unwrap())
                .with_dns_id("rid-b.test"),
        ],
    );
    s.resolve = vec![(
        "rid-b.test".into(),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )];
    s.max_attempts = 1;
    RidClient::new(s).unwrap()
}

/// A TraceRequest from A (signed with A's key) toward the victim `victim`.
fn trace_request(pki: &Pki, victim: &str, number: &str) -> String {
    use pharos_rid::dsig::SigningKey;
    let ev = pharos_model::DdosEvent {
        attack_type: Some(pharos_model::ident::DdosType::NtpAmpFlood),
        start_time: chrono::Utc::now() - chrono::TimeDelta::minutes(1),
        end_time: None,
        attack_src_ip: vec!["203.0.113.1".parse().unwrap()],
        attack_dst_ip: vec![victim.parse().unwrap()],
        attack_src_port: vec![123],
        attack_dst_port: vec![],
        rule_name: "test".into(),
        attack_rate: Some(1000),
        attack_throughput: None,
    };
    let iid = pharos_rid::IncidentId {
        instance: Some("1".into()),
        ..pharos_rid::IncidentId::new("rid-a.test", number)
    };
    let mut ctx = pharos_rid::DdosContext::new(
        iid.clone(),
        pharos_rid::Contact::organization(pharos_rid::ContactRole::Creator, "A"),
        chrono::Utc::now(),
    );
    ctx.expectations.push(pharos_rid::Expectation::new(
        pharos_rid::Action::RateLimitHost,
    ));
    let mut doc = pharos_rid::ddos_to_iodef(&ev, &ctx);
    doc.incidents[0].append_sp_hop(pharos_rid::System::new(
        pharos_rid::SystemCategory::Infrastructure,
        pharos_rid::Node::named("rid-a.test"),
    ));
    let mut p =
        pharos_rid::RidPolicy::new(MsgType::TraceRequest, pharos_rid::Node::named("rid-b.test"));
    p.incident_id = Some(iid);
    p.report_schema = Some(pharos_rid::ReportSchema::iodef(doc));
    let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&pki.a.key).unwrap()).unwrap();
    let cert =
        pharos_rid::dsig::certificates_from_pem(&std::fs::read_to_string(&pki.a.cert).unwrap())
            .unwrap()
            .remove(0);
    pharos_rid::dsig::sign_enveloped_rid(&Rid::new(p), &key, &cert).unwrap()
}

fn ack(answer: &Answer) -> (AuthorizationStatus, Option<Justification>) {
    let Answer::Inline { msg, .. } = answer else {
        panic!("expected an inline answer: {answer:?}");
    };
    let s = msg.request_status.as_ref().expect("an Acknowledgement");
    (s.authorization.clone(), s.justification.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_unknown_certificate_type_not_allowed_tampered_signature_no_traffic_and_rate() {
    let pki = pki();
    let pb = free_port();
    // B accepts only Reports from peer "a" named "a" ... and TraceRequests from "c".
    let b_cfg = format!(
        "{COLLECT}{}{}{}",
        rid_toml(
            "b",
            pb,
            &pki.b,
            &pki.ca,
            "rate_per_minute = 1\nrate_burst = 6\n"
        ),
        peer_toml("a", free_port(), &pki.a, "accept = [\"Report\"]"),
        peer_toml("c", free_port(), &pki.c, "")
    );
    let b = Instance::start(&b_cfg);
    wait_rid(&b).await;
    let url = format!("https://rid-b.test:{pb}/");

    // An unknown certificate (right CA, not listed): the handshake fails.
    let x = client(&pki, &pki.x, &pki.b, pb);
    let e = x
        .send_bytes(
            "b",
            &url,
            trace_request(&pki, "198.51.100.10", "1").into(),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Connection { .. }), "{e}");

    // A peer not allowed TraceRequests: Acknowledgement Denied, Justification Authentication.
    let a = client(&pki, &pki.a, &pki.b, pb);
    let answer = a
        .send_bytes(
            "b",
            &url,
            trace_request(&pki, "198.51.100.10", "2").into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        ack(&answer),
        (
            AuthorizationStatus::Denied,
            Some(Justification::Authentication)
        )
    );

    // A request with no matching traffic in B's archive: Result with SourceFound false. (C
    // signs as A would not: B knows C's certificate.)
    let c = client(&pki, &pki.c, &pki.b, pb);
    let req = trace_request_as(&pki, &pki.c, "198.51.100.99", "3");
    let answer = c
        .send_bytes("b", &url, req.clone().into(), None)
        .await
        .unwrap();
    let Answer::Inline { msg, .. } = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(msg.msg_type(), Some(&MsgType::Result));
    assert!(!msg.incident_source.as_ref().unwrap().source_found);

    // A tampered signature: Acknowledgement Denied, Authentication; recorded.
    let tampered = trace_request_as(&pki, &pki.c, "198.51.100.10", "4")
        .replace("198.51.100.10", "198.51.100.11");
    let answer = c
        .send_bytes("b", &url, tampered.into(), None)
        .await
        .unwrap();
    assert_eq!(
        ack(&answer),
        (
            AuthorizationStatus::Denied,
            Some(Justification::Authentication)
        )
    );
    let logs = support::messages(&b, "kind=generic-log&text=signature").await;
    assert!(!logs.is_empty(), "{}", b.log());

    // Over the rate (burst 6, 1 a minute): 429.
    let mut limited = None;
    for i in 0..8 {
        match c
            .send_bytes(
                "b",
                &url,
                trace_request_as(&pki, &pki.c, "198.51.100.99", &format!("r{i}")).into(),
                None,
            )
            .await
        {
            Err(e) if e.status() == Some(429) => {
                limited = Some(e);
                break;
            }
            _ => {}
        }
    }
    assert!(limited.is_some(), "no 429 within 8 messages");

    // Everything B stored validates; the state table has the incidents.
    let tmp = tempfile::tempdir().unwrap();
    for m in messages(&b) {
        xmllint(tmp.path(), &m.4);
    }
    let inc = incidents(&b);
    assert!(
        inc.iter().any(|i| i.0 == "3" && i.1 == "answered"),
        "{inc:?}"
    );
}

/// [`trace_request`] signed by `leaf` instead of A.
fn trace_request_as(pki: &Pki, leaf: &Leaf, victim: &str, number: &str) -> String {
    use pharos_rid::dsig::SigningKey;
    let signed = trace_request(pki, victim, number);
    let mut rid = Rid::parse(signed.as_bytes(), &Limits::default()).unwrap();
    pharos_rid::dsig::remove_enveloped(&mut rid);
    let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&leaf.key).unwrap()).unwrap();
    let cert =
        pharos_rid::dsig::certificates_from_pem(&std::fs::read_to_string(&leaf.cert).unwrap())
            .unwrap()
            .remove(0);
    pharos_rid::dsig::sign_enveloped_rid(&rid, &key, &cert).unwrap()
}

/// A RID server in the test, standing for a peer: records what it receives.
struct Recorder {
    seen: std::sync::Mutex<Vec<Rid>>,
}

impl pharos_rid::transport::RidHandler for Recorder {
    async fn handle(&self, req: pharos_rid::transport::Incoming) -> pharos_rid::transport::Reply {
        self.seen.lock().unwrap().push(req.msg);
        pharos_rid::transport::Reply::Empty
    }
}

/// Runs `pharos rid ARGS --url <inst> --json` with the admin token; its stdout.
fn rid_cli(inst: &Instance, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("rid")
        .args(args)
        .args(["--url", &inst.base])
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pharos rid {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_approves_or_denies_a_pending_request_through_the_cli() {
    let pki = pki();
    let (pb, pc) = (free_port(), free_port());
    // B waits for an analyst on C's requests.
    let b_cfg = format!(
        "{COLLECT}{}{}",
        rid_toml("b", pb, &pki.b, &pki.ca, ""),
        peer_toml("c", pc, &pki.c, "auto_approve = false")
    );
    let b = Instance::start(&b_cfg);
    // The test is C: its server records what B sends.
    let mut s = pharos_rid::transport::ServerSettings::new(
        pki.c.cert.clone(),
        pki.c.key.clone(),
        pki.ca.clone(),
        vec![
            Peer::new("b", Fingerprint::parse(&pki.b.fingerprint).unwrap())
                .with_dns_id("rid-b.test"),
        ],
    );
    s.listen = SocketAddr::from(([127, 0, 0, 1], pc));
    let recorder = std::sync::Arc::new(Recorder {
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let server = pharos_rid::transport::RidServer::bind(s, recorder.clone())
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server.run(async move {
        let _ = stop_rx.await;
    }));
    wait_rid(&b).await;
    let url = format!("https://rid-b.test:{pb}/");
    let c = client(&pki, &pki.c, &pki.b, pb);
    for n in ["p1", "p2"] {
        let answer = c
            .send_bytes(
                "b",
                &url,
                trace_request_as(&pki, &pki.c, "198.51.100.99", n).into(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(ack(&answer), (AuthorizationStatus::Pending, None));
    }
    let peers: serde_json::Value =
        serde_json::from_str(&rid_cli(&b, &["peers", "--json"])).unwrap();
    assert_eq!(peers["peers"][0]["name"], "c");
    assert_eq!(peers["peers"][0]["open-incidents"], 2);
    let pending: Vec<serde_json::Value> =
        rid_cli(&b, &["incidents", "--json", "--status", "pending-approval"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(pending.len(), 2, "{pending:?}");
    let id_of = |n: &str| {
        pending
            .iter()
            .find(|i| {
                i["incident-id"]
                    .as_str()
                    .unwrap()
                    .contains(&format!(":{n}#"))
            })
            .unwrap()["id"]
            .to_string()
    };
    // Approved: B searches its archive (no such traffic) and sends C a Result.
    rid_cli(&b, &["approve", &id_of("p1")]);
    // Denied: C gets Acknowledgement Denied.
    rid_cli(&b, &["deny", &id_of("p2")]);
    let seen = poll(
        30,
        "B's answers at C",
        || b.log(),
        async || {
            let seen = recorder.seen.lock().unwrap().clone();
            (seen.len() >= 2).then_some(seen)
        },
    )
    .await;
    let result = seen
        .iter()
        .find(|m| m.msg_type() == Some(&MsgType::Result))
        .expect("a Result");
    assert!(!result.incident_source.as_ref().unwrap().source_found);
    assert_eq!(result.incident_id().unwrap().id, "p1");
    let denied = seen
        .iter()
        .find(|m| m.msg_type() == Some(&MsgType::Acknowledgement))
        .expect("an Acknowledgement");
    assert_eq!(denied.incident_id().unwrap().id, "p2");
    assert_eq!(
        denied.request_status.as_ref().unwrap().authorization,
        AuthorizationStatus::Denied
    );
    let shown: serde_json::Value =
        serde_json::from_str(&rid_cli(&b, &["show", &id_of("p1"), "--json"])).unwrap();
    assert_eq!(shown["status"], "answered", "{shown}");
    assert!(
        shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["direction"] == "out" && m["msg-type"] == "Result"),
        "{shown}"
    );
    // Deciding twice is refused.
    let out = Command::new(bin())
        .args(["rid", "approve", &id_of("p1"), "--url", &b.base])
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not pending-approval"));
    let _ = stop_tx.send(());
    let _ = served.await;
    // The RID stage stops with the daemon.
    let mut b = b;
    let status = b.terminate();
    assert!(status.success(), "{status}: {}", b.log());
}

#[test]
fn a_bad_rid_section_is_refused_naming_the_key_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("[rid]\nenabled = true\n", "[rid] name"),
        (
            "[rid]\nenabled = true\nname = \"rid-a.test\"\ncert = \"a.pem\"\nkey = \"a.key\"\nca = \"ca.pem\"\n[[rid.peer]]\nname = \"b\"\nurl = \"https://rid-b.test/\"\nfingerprint = \"cert-sha256:00\"\n",
            "peer[1].fingerprint",
        ),
        (
            "[rid]\nenabled = true\nname = \"rid-a.test\"\ncert = \"a.pem\"\nkey = \"a.key\"\nca = \"ca.pem\"\n[[rid.peer]]\nname = \"b\"\nurl = \"https://rid-b.test/\"\nfingerprint = \"spki-sha256:0000000000000000000000000000000000000000000000000000000000000000\"\nexporters = [\"192.0.2.1\"]\n",
            "peer[1].exporters",
        ),
        ("[rid]\nenabeld = true\n", "enabeld"),
    ] {
        let f = tmp.path().join("pharos.toml");
        std::fs::write(&f, text).unwrap();
        let out = Command::new(bin())
            .arg("check-config")
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(err.contains(want), "{text}: {err}");
    }
    // Off by default: a file without [rid] starts no RID server.
    let f = tmp.path().join("pharos.toml");
    std::fs::write(&f, "").unwrap();
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("[rid]\nenabled = false"));
}

/// Validates every stored message of each `(instance, its peer name)` with xmllint, and checks
/// with xmlsec1 each enveloped signature against its sender and the detached signature of a
/// request against `originator`.
fn validate_all(dir: &Path, pki: &Pki, who: &[(&Instance, &str)], originator: &Leaf) {
    let certs = [("a", &pki.a), ("b", &pki.b), ("c", &pki.c)];
    for (inst, me) in who {
        let mine = certs.iter().find(|s| s.0 == *me).unwrap().1;
        for m in messages(inst) {
            xmllint(dir, &m.4);
            let signer = if m.0 == "out" {
                mine
            } else {
                certs.iter().find(|s| s.0 == m.1).map_or(mine, |s| s.1)
            };
            let text = String::from_utf8_lossy(&m.4).to_string();
            let n = text.matches("SignatureValue").count() / 2;
            if n == 0 {
                continue;
            }
            if let Some(ok) = xmlsec_verify(dir, &m.4, &signer.cert, n) {
                assert!(
                    ok,
                    "xmlsec1 refuses the enveloped signature of {} {} {}:\n{text}",
                    m.0, m.1, m.2
                );
            }
            if n == 2
                && (m.2 == "TraceRequest" || m.2 == "InvestigationRequest")
                && let Some(ok) = xmlsec_verify(dir, &m.4, &originator.cert, 1)
            {
                assert!(
                    ok,
                    "xmlsec1 refuses the detached signature of {} {} {}:\n{text}",
                    m.0, m.1, m.2
                );
            }
        }
    }
}

/// The id of the first DDoS event `inst` stored (polled).
async fn ddos_event_id(inst: &Instance) -> String {
    poll(
        60,
        "a DDoS event",
        || inst.log(),
        async || {
            support::messages(inst, "kind=ddos")
                .await
                .first()
                .and_then(|m| m["id"].as_str().map(str::to_string))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigation_is_answered_with_a_result_a_report_is_recorded_and_queries_answered_or_denied()
 {
    let pki = pki();
    let (pa, pc) = (free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let hook_out = tmp.path().join("mitigated");
    let script = tmp.path().join("mitigate.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$PHAROS_PHASE\" \"$PHAROS_RID_INCIDENT\" >> {:?}\n",
            hook_out.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // C hosts the source (a customer on interface 1); A is the victim and knows it.
    let c_cfg = format!(
        "{COLLECT}[detect_hook]\ncommand = {:?}\n{}{}{}",
        script.display().to_string(),
        rid_toml("c", pc, &pki.c, &pki.ca, ""),
        peer_toml("a", pa, &pki.a, ""),
        peer_toml("b", free_port(), &pki.b, "")
    );
    let a_cfg = format!(
        "{DETECT}{}{}",
        rid_toml("a", pa, &pki.a, &pki.ca, ""),
        peer_toml("c", pc, &pki.c, "auto_trace = false")
    );
    let c = Instance::start(&c_cfg);
    replay(&c, VICTIM, 1, 4, 100);
    poll(
        30,
        "C's archive",
        || c.log(),
        async || (archived_to_victim(&c).await > 0).then_some(()),
    )
    .await;
    let a = Instance::start(&a_cfg);
    wait_rid(&a).await;
    wait_rid(&c).await;
    replay(&a, VICTIM, 3, 6, 2);
    let event = ddos_event_id(&a).await;
    let log = || format!("A:\n{}\nC:\n{}", a.log(), c.log());

    // InvestigationRequest: C compares A's example records with its archive, finds the source
    // among its customers, runs its hook and answers a Result inline.
    let v: serde_json::Value = serde_json::from_str(&rid_cli(
        &a,
        &["investigate", &event, "--peer", "c", "--json"],
    ))
    .unwrap();
    assert_eq!(v["answer"], "Result", "{v}\n{}", log());
    assert_eq!(v["source-found"], true, "{v}");
    let iid = v["incident-id"].as_str().unwrap().to_string();
    assert!(iid.ends_with("#inv-c"), "{iid}");
    let result = Rid::parse(v["body"].as_str().unwrap().as_bytes(), &Limits::default()).unwrap();
    let history = &result.iodef().unwrap().incidents[0]
        .history
        .as_ref()
        .unwrap()
        .items;
    assert!(
        history.iter().any(|h| {
            let t = &h.descriptions[0].text;
            t.contains("example records found") && !t.contains("(0 of")
        }),
        "{history:?}"
    );
    let ran = std::fs::read_to_string(&hook_out).unwrap();
    assert!(
        ran.starts_with(&format!("rid-investigation {iid}")),
        "{ran}"
    );
    // C checked A's detached signature over the records with A's certificate (no path).
    let approved = support::messages(&c, "kind=generic-log&text=approved").await;
    assert!(
        approved.iter().any(|m| {
            let t = m.to_string();
            t.contains("InvestigationRequest") && !t.contains("unverified")
        }),
        "{approved:?}"
    );
    let ai = incidents(&a);
    assert!(
        ai.iter()
            .any(|i| i.0 == format!("pharos-ddos-{event}") && i.1 == "closed"),
        "{ai:?}"
    );
    let ci = incidents(&c);
    assert!(
        ci.iter().any(|i| i.1 == "answered" && i.3 == "in"),
        "{ci:?}"
    );
    // Sending it twice is refused.
    let out = Command::new(bin())
        .args([
            "rid",
            "investigate",
            &event,
            "--peer",
            "c",
            "--url",
            &a.base,
        ])
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"));

    // Report: C verifies and records it, answers Acknowledgement Approved.
    let v: serde_json::Value =
        serde_json::from_str(&rid_cli(&a, &["report", &event, "--peer", "c", "--json"])).unwrap();
    assert_eq!(
        (v["answer"].as_str(), v["status"].as_str()),
        (Some("Acknowledgement"), Some("Approved")),
        "{v}\n{}",
        log()
    );
    let cm = messages(&c);
    assert!(
        cm.iter()
            .any(|m| m.0 == "in" && m.1 == "a" && m.2 == "Report" && m.3 == Some(200)),
        "{:?}",
        cm.iter()
            .map(|m| (&m.0, &m.1, &m.2, m.3))
            .collect::<Vec<_>>()
    );
    let ci = incidents(&c);
    assert!(
        ci.iter()
            .any(|i| i.0 == format!("pharos-ddos-{event}") && i.1 == "closed"),
        "a received Report is recorded, not left open: {ci:?}"
    );
    let logs = support::messages(&c, "kind=generic-log&text=Report%20from%20a").await;
    assert!(!logs.is_empty(), "{}", c.log());

    // Query about the investigated incident (A took part): a Report carrying it.
    let v: serde_json::Value = serde_json::from_str(&rid_cli(
        &a,
        &["query", "--peer", "c", "--incident", &iid, "--json"],
    ))
    .unwrap();
    assert_eq!(v["answer"], "Report", "{v}\n{}", log());
    let report = Rid::parse(v["body"].as_str().unwrap().as_bytes(), &Limits::default()).unwrap();
    assert_eq!(iid_of(&report), iid);
    let inc = &report.iodef().unwrap().incidents[0];
    assert!(inc.sp_path().is_none(), "a Report carries no path");
    assert!(
        inc.systems(&pharos_rid::SystemCategory::Target)
            .iter()
            .any(|s| s.node.addresses.iter().any(|a| a.value == "198.51.100.10")),
        "{inc:?}"
    );
    // The same Query from B, which took no part: Acknowledgement Denied, Authentication.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut settings = ClientSettings::new(
        pki.b.cert.clone(),
        pki.b.key.clone(),
        pki.ca.clone(),
        vec![
            Peer::new("c", Fingerprint::parse(&pki.c.fingerprint).unwrap())
                .with_dns_id("rid-c.test"),
        ],
    );
    settings.resolve = vec![("rid-c.test".into(), SocketAddr::from(([127, 0, 0, 1], pc)))];
    settings.max_attempts = 1;
    let b = RidClient::new(settings).unwrap();
    let mut q = pharos_rid::RidPolicy::new(MsgType::Query, pharos_rid::Node::named("rid-c.test"));
    q.incident_id = report.incident_id().cloned();
    // Asking does not make B a party: asked twice, denied twice.
    for _ in 0..2 {
        let answer = b
            .send(
                "c",
                &format!("https://rid-c.test:{pc}/"),
                &Rid::new(q.clone()),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            ack(&answer),
            (
                AuthorizationStatus::Denied,
                Some(Justification::Authentication)
            )
        );
    }
    // A Query without IncidentID: a Report of the incidents A took part in (at most 5).
    let v: serde_json::Value =
        serde_json::from_str(&rid_cli(&a, &["query", "--peer", "c", "--json"])).unwrap();
    assert_eq!(v["answer"], "Report", "{v}");
    let all = Rid::parse(v["body"].as_str().unwrap().as_bytes(), &Limits::default()).unwrap();
    let n = all.iodef().unwrap().incidents.len();
    assert!((2..=5).contains(&n), "{n} incidents reported");
    // Query about an incident C does not know: Acknowledgement Denied.
    let v: serde_json::Value = serde_json::from_str(&rid_cli(
        &a,
        &[
            "query",
            "--peer",
            "c",
            "--incident",
            "rid-a.test:nothing#1",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(
        (
            v["answer"].as_str(),
            v["status"].as_str(),
            v["justification"].as_str()
        ),
        (Some("Acknowledgement"), Some("Denied"), Some("Other")),
        "{v}"
    );
    // No incident of that id stays open on either side.
    for inst in [&a, &c] {
        assert!(
            incidents(inst)
                .iter()
                .filter(|i| i.0 == "nothing")
                .all(|i| i.1 == "closed" || i.1 == "denied"),
            "{:?}",
            incidents(inst)
        );
    }

    validate_all(tmp.path(), &pki, &[(&a, "a"), (&c, "c")], &pki.a);
    drop(pki.dir);
}

/// `name:number#instance` of a message's IncidentID.
fn iid_of(rid: &Rid) -> String {
    let i = rid.incident_id().unwrap();
    format!(
        "{}:{}{}",
        i.name,
        i.id,
        i.instance
            .as_deref()
            .map(|x| format!("#{x}"))
            .unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_incidents_expire_stop_counting_and_the_state_table_is_backed_up() {
    let pki = pki();
    let (pb, pc) = (free_port(), free_port());
    // One open incident per peer at most; idle ones close after 5 s.
    let b_cfg = format!(
        "{COLLECT}{}{}",
        rid_toml(
            "b",
            pb,
            &pki.b,
            &pki.ca,
            "incident_ttl = \"5s\"\nmax_open_incidents = 1\n"
        ),
        peer_toml("c", pc, &pki.c, "auto_approve = false")
    );
    let b = Instance::start(&b_cfg);
    wait_rid(&b).await;
    let url = format!("https://rid-b.test:{pb}/");
    let c = client(&pki, &pki.c, &pki.b, pb);
    let send = async |n: &str| {
        c.send_bytes(
            "b",
            &url,
            trace_request_as(&pki, &pki.c, "198.51.100.99", n).into(),
            None,
        )
        .await
        .unwrap()
    };
    // e1 waits for an analyst; e2 is over the limit.
    assert_eq!(ack(&send("e1").await), (AuthorizationStatus::Pending, None));
    assert_eq!(
        ack(&send("e2").await),
        (
            AuthorizationStatus::Denied,
            Some(Justification::SystemResource)
        )
    );
    // e1 expires: closed, reason expired.
    poll(
        30,
        "e1 expired",
        || b.log(),
        async || {
            incidents(&b)
                .into_iter()
                .find(|i| i.0 == "e1" && i.1 == "closed")
        },
    )
    .await;
    let list: Vec<serde_json::Value> = rid_cli(&b, &["incidents", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let e1 = list
        .iter()
        .find(|i| i["incident-id"].as_str().unwrap().contains(":e1#"))
        .unwrap();
    assert_eq!(
        (e1["status"].as_str(), e1["reason"].as_str()),
        (Some("closed"), Some("expired")),
        "{e1}"
    );
    // It no longer counts: a new request is taken (pending again).
    assert_eq!(ack(&send("e3").await), (AuthorizationStatus::Pending, None));
    let logs = support::messages(&b, "kind=generic-log&text=expired").await;
    assert!(!logs.is_empty(), "{}", b.log());

    // `pharos backup` includes the RID state table.
    let backup = tempfile::tempdir().unwrap();
    let into = backup.path().join("b1");
    let out = Command::new(bin())
        .arg("backup")
        .arg("--data-dir")
        .arg(b.dir.path().join("data"))
        .arg(&into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = rusqlite::Connection::open_with_flags(
        into.join("rid.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let n: i64 = copy
        .query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    let manifest = std::fs::read_to_string(into.join("pharos-backup.json")).unwrap();
    assert!(manifest.contains("rid.db"), "{manifest}");
}
