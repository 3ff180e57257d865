//! End-to-end: the same syslog lines over UDP, TCP (octet counting and LF framing) and TLS (RFC
//! 5425, client certificate required) to the real binary, read back through the API.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use support::{Instance, client};

/// Lines every transport carries; `{T}` becomes the transport's marker so each copy is findable.
const LINES: &[&str] = &[
    "<38>Nov 24 14:00:03 bastion sshd[31738]: Failed password for {T} from 192.0.2.33 port 40112 ssh2",
    "<166>Nov 24 2026 14:00:05 asa-edge : %ASA-6-302013: Built inbound TCP connection 4711 for outside:203.0.113.9/51000 (203.0.113.9/51000) to inside:10.1.1.5/443 (10.1.1.5/443) {T}",
    "<165>1 2026-11-24T14:00:06.5Z fw1.example.net app 42 ID7 [origin ip=\"192.0.2.1\"] \u{feff}not a known vendor line {T}",
];

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Pharos test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca_cert.pem(),
        server: leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth),
        client: leaf("fw-tls.example.net", ExtendedKeyUsagePurpose::ClientAuth),
    }
}

fn addrs(inst: &Instance) -> Vec<(String, SocketAddr)> {
    let text = std::fs::read_to_string(inst.dir.path().join("data/syslog.addr"))
        .expect("syslog.addr is written at start-up");
    text.lines()
        .map(|l| {
            let (t, a) = l.split_once(' ').expect("`transport address` lines");
            (t.to_string(), a.parse().unwrap())
        })
        .collect()
}

fn addr(all: &[(String, SocketAddr)], t: &str) -> SocketAddr {
    all.iter()
        .find(|(x, _)| x == t)
        .unwrap_or_else(|| panic!("no {t} line in syslog.addr"))
        .1
}

fn lines(marker: &str) -> Vec<String> {
    LINES.iter().map(|l| l.replace("{T}", marker)).collect()
}

fn tls_client(pki: &Pki, with_cert: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    if with_cert {
        let chain = vec![CertificateDer::from_pem_slice(pki.client.0.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(pki.client.1.as_bytes()).unwrap();
        b.with_client_auth_cert(chain, key).unwrap()
    } else {
        b.with_no_client_auth()
    }
}

/// Sends `payload` over TLS; returns whether the server accepted the session.
fn send_tls(addr: SocketAddr, cfg: rustls::ClientConfig, payload: &[u8]) -> bool {
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    if tls.write_all(payload).and_then(|_| tls.flush()).is_err() {
        return false;
    }
    // Close and wait for the server's answer: end of stream when it took the data, an alert if not.
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let mut buf = [0u8; 64];
    match tls.read(&mut buf) {
        Ok(n) => n <= buf.len(),
        Err(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
    }
}

async fn messages(inst: &Instance) -> Vec<Value> {
    let page: Value = client()
        .get(inst.url("/api/v1/messages"))
        .query(&[("limit", "10000")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().cloned().unwrap_or_default()
}

/// The stored message whose raw text is exactly `raw`.
fn find<'a>(items: &'a [Value], raw: &str) -> Option<&'a Value> {
    items.iter().find(|m| {
        m["notification"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|n| n["pharos-i2nsf-extensions:envelope"]["raw"].as_str())
            == Some(raw)
    })
}

fn envelope(m: &Value) -> &Value {
    &m["notification"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["pharos-i2nsf-extensions:envelope"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_lines_over_udp_tcp_both_framings_and_tls_are_stored_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let (ca, cert, key) = (
        write("ca.pem", &pki.ca),
        write("server.pem", &pki.server.0),
        write("server.key", &pki.server.1),
    );
    let inst = Instance::start(&format!(
        r#"
[syslog]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
max_message_bytes = 4096
[syslog.tls]
listen = "127.0.0.1:0"
cert = {cert:?}
key = {key:?}
client_ca = {ca:?}

[[nsf]]
name = "edge"
addresses = ["127.0.0.1"]
vendor = "Example Networks"
type = "firewall"
parser = "auto"
"#
    ));
    let all = addrs(&inst);

    // UDP from 127.0.0.2: an unknown sender, registered automatically.
    let udp = UdpSocket::bind("127.0.0.2:0").unwrap();
    for l in lines("via-udp") {
        udp.send_to(l.as_bytes(), addr(&all, "udp")).unwrap();
    }
    // TCP, octet counting (RFC 6587 §3.4.1), written in awkward pieces.
    let mut octets = Vec::new();
    for l in lines("via-tcp-octets") {
        octets.extend_from_slice(format!("{} {l}", l.len()).as_bytes());
    }
    let mut c = TcpStream::connect(addr(&all, "tcp")).unwrap();
    for chunk in octets.chunks(37) {
        c.write_all(chunk).unwrap();
    }
    drop(c);
    // TCP, LF framing (with one CRLF).
    let mut c = TcpStream::connect(addr(&all, "tcp")).unwrap();
    let lf = lines("via-tcp-lf");
    write!(c, "{}\n{}\r\n{}\n", lf[0], lf[1], lf[2]).unwrap();
    drop(c);
    // TLS with a client certificate (octet counting, RFC 5425).
    let mut framed = Vec::new();
    for l in lines("via-tls") {
        framed.extend_from_slice(format!("{} {l}", l.len()).as_bytes());
    }
    assert!(
        send_tls(addr(&all, "tls"), tls_client(&pki, true), &framed),
        "TLS with a client certificate must be accepted: {}",
        inst.log()
    );
    // TLS without a client certificate is refused and stores nothing.
    let refused = lines("via-tls-nocert");
    let _ = send_tls(
        addr(&all, "tls"),
        tls_client(&pki, false),
        format!("{} {}", refused[0].len(), refused[0]).as_bytes(),
    );

    let expected: Vec<(String, &str)> = ["via-udp", "via-tcp-octets", "via-tcp-lf", "via-tls"]
        .iter()
        .flat_map(|m| lines(m).into_iter().map(move |l| (l, *m)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let items = loop {
        let items = messages(&inst).await;
        if expected.iter().all(|(l, _)| find(&items, l).is_some()) {
            break items;
        }
        assert!(
            Instant::now() < deadline,
            "not all {} lines stored in 30 s; have {}: {}",
            expected.len(),
            items.len(),
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (l, marker) in &expected {
        let m = find(&items, l).unwrap();
        let (nsf, transport) = match *marker {
            "via-udp" => ("127.0.0.2", "udp"),
            "via-tls" => ("edge", "tls"),
            _ => ("edge", "tcp"),
        };
        assert_eq!(m["nsf-name"], nsf, "{m}");
        let source = envelope(m)["source"].as_str().unwrap_or_default();
        assert!(
            source.starts_with(&format!("syslog-{transport}:")),
            "{source} for {l}"
        );
    }
    // The normalisers ran: the sshd line is a user-activity log, the ASA line a firewall log,
    // the unknown line a generic log; all with the header time.
    let ssh = find(&items, &lines("via-tcp-lf")[0]).unwrap();
    assert_eq!(ssh["kind"], "user-activity-log", "{ssh}");
    let asa = find(&items, &lines("via-tls")[1]).unwrap();
    assert_eq!(asa["kind"], "firewall-traffic-log", "{asa}");
    let generic = find(&items, &lines("via-udp")[2]).unwrap();
    assert_eq!(generic["kind"], "generic-log", "{generic}");
    assert_eq!(generic["event-time"], "2026-11-24T14:00:06.500Z");
    assert!(
        find(&items, &refused[0]).is_none(),
        "a client without certificate must not get a line in"
    );
    // What syslog produced is valid YANG (when yanglint and ../shared are present).
    let docs: Vec<Value> = expected
        .iter()
        .map(|(l, _)| find(&items, l).unwrap()["notification"].clone())
        .collect();
    match support::yanglint_validate(&docs) {
        Ok(true) => {}
        Ok(false) => {} // said by yanglint_validate
        Err(e) => panic!("a stored syslog message does not validate: {e}"),
    }

    // The inventory lists the configured NSF and the automatically registered sender.
    let nsfs: Value = client()
        .get(inst.url("/api/v1/nsfs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = nsfs["items"].as_array().unwrap();
    let edge = list
        .iter()
        .find(|n| n["name"] == "edge")
        .expect("edge listed");
    assert_eq!(edge["configured"], true);
    assert_eq!(edge["vendor"], "Example Networks");
    assert_eq!(edge["type"], "firewall");
    assert_eq!(edge["received"], 9);
    assert_eq!(edge["parsed"], 6);
    assert_eq!(edge["unparsed"], 3);
    assert!(edge["last-seen"].is_string());
    let auto = list
        .iter()
        .find(|n| n["name"] == "127.0.0.2")
        .expect("unknown sender registered");
    assert_eq!(auto["configured"], false);
    assert_eq!(auto["received"], 3);
    assert_eq!(auto["unparsed"], 1);
    assert!(auto["detected-format"].is_string(), "{auto}");

    for needle in [
        "pharos_syslog_received_total{transport=\"udp\"} 3",
        "pharos_syslog_received_total{transport=\"tcp\"} 6",
        "pharos_syslog_unparsed_total{nsf=\"edge\"} 3",
        // what each format made of the lines, all senders together: 4 markers x 3 lines
        "pharos_syslog_format_lines_total{format=\"sshd\",outcome=\"typed\"} 4",
        "pharos_syslog_format_lines_total{format=\"cisco-asa\",outcome=\"typed\"} 4",
        "pharos_syslog_format_lines_total{format=\"generic\",outcome=\"unparsed\"} 4",
        "pharos_syslog_connections_refused_total{reason=\"tls_handshake\"}",
    ] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = support::metrics_text(&inst).await;
            if metrics.contains(needle) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "metrics lack {needle}:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut inst = inst;
    let status = inst.terminate();
    assert!(status.success(), "{}", inst.log());
    assert!(
        !inst.dir.path().join("data/syslog.addr").exists(),
        "syslog.addr is removed at exit"
    );
}

#[test]
fn pharos_parse_prints_one_line_per_input_line_and_counts_unparsed_on_stderr() {
    use std::process::{Command, Stdio};
    let input = format!(
        "{}\n\nnot a log line at all\n{}\n",
        lines("cli")[0],
        lines("cli")[1]
    );
    let run = |args: &[&str]| {
        let mut child = Command::new(support::bin())
            .arg("parse")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A run that refuses its arguments exits before reading: a broken pipe is its answer.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().unwrap()
    };
    let out = run(&["--json", "-"]);
    assert!(out.status.success(), "exit code 0 even with unparsed lines");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3, "blank lines are skipped: {stdout}");
    assert_eq!(docs[0]["format"], "sshd");
    assert_eq!(docs[0]["raw"], lines("cli")[0]);
    assert_eq!(
        docs[0]["event-time"].as_str().map(|t| &t[4..]),
        Some("-11-24T14:00:03Z")
    );
    assert!(
        docs[0]["notification"]["ietf-i2nsf-monitoring-interface:i2nsf-log"].is_object(),
        "{}",
        docs[0]
    );
    assert_eq!(docs[1]["format"], "generic");
    assert_eq!(docs[2]["format"], "cisco-asa");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("3 lines, 2 parsed, 1 unparsed"), "{stderr}");

    let out = run(&["--nsf", "bastion-1"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().all(|l| l.contains("nsf=bastion-1")), "{text}");

    let out = run(&["--format", "no-such-format"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected auto or one of"));
}

/// Polls `GET /api/v1/messages` until a message with each raw text in `raws` is stored.
async fn wait_for(inst: &Instance, raws: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = messages(inst).await;
        if raws.iter().all(|r| find(&items, r).is_some()) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "not all of {raws:?} stored in 30 s: {}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_s_lines_belong_to_their_header_hostname_and_keep_the_relay_as_source() {
    let inst = Instance::start(
        r#"
[syslog]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"

[[syslog.relay]]
addresses = ["127.0.0.1"]
"#,
    );
    let all = addrs(&inst);
    // Through the relay at 127.0.0.1: an ASA, and a Linux host using util-linux
    // `logger --rfc3164 -t sshd` (a tag without pid).
    let asa = "<164>Dec  7 08:28:41 asa-1 : %ASA-4-106023: Deny tcp src outside:192.0.2.9/4431 dst inside:10.0.0.5/22 by access-group \"outside_in\" [0x0, 0x0]";
    let logger =
        "<36>Dec  7 08:28:41 vm sshd: Failed password for root from 192.0.2.9 port 22 ssh2";
    let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
    relay.send_to(asa.as_bytes(), addr(&all, "udp")).unwrap();
    let mut c = TcpStream::connect(addr(&all, "tcp")).unwrap();
    writeln!(c, "{logger}").unwrap();
    drop(c);
    // Not a relay: a header hostname does not move its lines off its address.
    let direct = "<164>Dec  7 08:28:42 asa-9 : %ASA-4-106023: Deny tcp src outside:192.0.2.9/4432 dst inside:10.0.0.5/22 by access-group \"outside_in\" [0x0, 0x0]";
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other.send_to(direct.as_bytes(), addr(&all, "udp")).unwrap();

    let items = wait_for(&inst, &[asa, logger, direct]).await;
    let m = find(&items, asa).unwrap();
    assert_eq!(m["nsf-name"], "asa-1", "{m}");
    assert_eq!(envelope(m)["source"], "syslog-udp:127.0.0.1", "{m}");
    assert_eq!(m["kind"], "firewall-traffic-log", "{m}");
    let m = find(&items, logger).unwrap();
    assert_eq!(m["nsf-name"], "vm", "{m}");
    assert_eq!(envelope(m)["source"], "syslog-tcp:127.0.0.1", "{m}");
    // The tag stays in the text, and sshd still recognises the line.
    assert_eq!(m["kind"], "user-activity-log", "{m}");
    assert!(
        m.to_string()
            .contains("\"sshd: Failed password for root from 192.0.2.9 port 22 ssh2\""),
        "{m}"
    );
    assert_eq!(find(&items, direct).unwrap()["nsf-name"], "127.0.0.2");
    // Only messages of asa-1 when filtered by its name.
    let page = support::get_json(&inst, "/api/v1/messages?nsf=asa-1").await;
    let names: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["nsf-name"])
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| *n == "asa-1"),
        "{page}"
    );

    // The inventory: one entry per device behind the relay, the relay as their last address, and
    // the format their first line was recognised as.
    let nsfs = support::get_json(&inst, "/api/v1/nsfs").await;
    let list = nsfs["items"].as_array().unwrap();
    let entry = |name: &str| {
        list.iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {nsfs}"))
    };
    let e = entry("asa-1");
    assert_eq!(e["configured"], false, "{e}");
    assert_eq!(e["last-address"], "127.0.0.1", "{e}");
    assert_eq!(e["detected-format"], "cisco-asa", "{e}");
    assert_eq!(e["received"], 1, "{e}");
    let e = entry("vm");
    assert_eq!(e["last-address"], "127.0.0.1", "{e}");
    assert_eq!(e["detected-format"], "sshd", "{e}");
    assert_eq!(entry("127.0.0.2")["received"], 1);
    assert!(
        list.iter()
            .all(|n| n["name"] != "127.0.0.1" && n["name"] != "asa-9"),
        "{nsfs}"
    );
    // The registration log names the same format as the inventory.
    let log = inst.log();
    let registered = log
        .lines()
        .find(|l| l.contains("from a relayed syslog header as asa-1"))
        .unwrap_or_else(|| panic!("the registration is logged: {log}"));
    assert!(registered.contains("cisco-asa"), "{registered}");
}
