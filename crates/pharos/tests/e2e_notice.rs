//! End-to-end: early warning (docs/early-warning.md). A registry of three organisations with
//! prefixes and a fourth known by its AS number only, a real SMTP server (`aiosmtpd`, STARTTLS
//! required, certificate made here), a SYN flood replayed as NetFlow v5 into the flow collector
//! and raised by detection, and an SSH brute force over syslog: the immediate contact gets one
//! mail per event within seconds, the daily contact (German) one digest with all its events at
//! the (shortened) interval, the third nothing, the fourth its notice routed by the victim's AS;
//! third parties are pseudonymised; a restart in the middle sends nothing twice and loses
//! nothing; the IODEF attachment is XSD-valid.

mod support;

use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pharos_model::{DdosEvent, Kind, Message, Severity};
use serde_json::Value;
use support::Instance;

const CSV: &str = "\
org,name,country,prefixes,asns,domains,contact_name,contact_mail,interval,kinds,min_severity,anonymise,language
UNI,University,AT,198.51.100.0/24,AS64600,uni.example,CERT,cert@uni.example,immediate,,low,yes,
HOSP,Hospital,AT,203.0.113.0/25,AS64601,hosp.example,IT,it@hosp.example,daily,,low,yes,de-AT
ISP3,Small ISP,AT,192.0.2.0/24,AS64602,isp3.example,NOC,noc@isp3.example,hourly,ddos,critical,yes,
TRANSIT,Transit Net,AT,,AS64700,transit.example,NOC,noc@transit.example,immediate,ddos,low,yes,
";

/// The SMTP server: STARTTLS required, each message written to `<out>/<n>.eml` with
/// `<n>.json` (envelope recipients, whether TLS was on), atomically (rename).
const SERVER: &str = r#"
import asyncio, json, os, ssl, sys
from aiosmtpd.smtp import SMTP
out, cert, key, portfile = sys.argv[1:5]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
class Handler:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Handler.n += 1
        base = os.path.join(out, "%04d" % Handler.n)
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".meta", "w") as f:
            json.dump({"rcpt": envelope.rcpt_tos, "from": envelope.mail_from,
                       "tls": session.ssl is not None}, f)
        os.rename(base + ".meta", base + ".json")
        os.rename(base + ".tmp", base + ".eml")
        return "250 OK"
async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: SMTP(Handler(), tls_context=ctx, require_starttls=True, hostname="localhost"),
        "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(portfile + ".tmp", portfile)
    await srv.serve_forever()
asyncio.run(main())
"#;

/// Parses a mail with Python's `email` package: headers, the text body, the attachments.
const PARSE: &str = r#"
import email, json, sys
from email import policy
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=policy.default)
body = m.get_body(preferencelist=("plain",)).get_content()
att = {}
for p in m.iter_attachments():
    att[p.get_filename()] = p.get_content() if p.get_content_maintype() == "text" else p.get_payload(decode=True).decode()
print(json.dumps({"from": str(m["From"]), "to": str(m["To"]), "subject": str(m["Subject"]),
                  "lang": str(m["Content-Language"]),
                  "type": m.get_content_type(), "body": body, "attachments": att}))
"#;

struct Smtp {
    child: Child,
    port: u16,
    mailbox: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python_has_aiosmtpd() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success())
}

fn start_smtp(dir: &Path) -> Smtp {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join("smtp-cert.pem");
    let key = dir.join("smtp-key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mailbox = dir.join("mailbox");
    std::fs::create_dir_all(&mailbox).unwrap();
    let script = dir.join("smtp_server.py");
    std::fs::write(&script, SERVER).unwrap();
    let portfile = dir.join("smtp.port");
    let child = Command::new("python3")
        .arg(&script)
        .args([&mailbox, &cert, &key, &portfile])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("smtp.log")).unwrap())
        .spawn()
        .unwrap();
    let mut smtp = Smtp {
        child,
        port: 0,
        mailbox,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(&portfile) {
            smtp.port = s.trim().parse().unwrap();
            return smtp;
        }
        if let Some(st) = smtp.child.try_wait().unwrap() {
            panic!(
                "the SMTP server exited with {st}: {}",
                std::fs::read_to_string(dir.join("smtp.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the SMTP server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The mails received so far, parsed, in arrival order, with their envelope.
fn mails(smtp: &Smtp) -> Vec<(Value, Value)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(&smtp.mailbox)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let out = Command::new("python3")
                .args(["-c", PARSE])
                .arg(p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mail: Value = serde_json::from_slice(&out.stdout).unwrap();
            let meta: Value =
                serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap())
                    .unwrap();
            (mail, meta)
        })
        .collect()
}

fn to_of(meta: &Value) -> String {
    meta["rcpt"][0].as_str().unwrap_or("").to_string()
}

async fn wait_mails(
    smtp: &Smtp,
    inst: &Instance,
    what: &str,
    f: impl Fn(&[(Value, Value)]) -> bool,
) -> Vec<(Value, Value)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = mails(smtp);
        if f(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 60 s; mails: {m:#?}\n{}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ddos(src: &[&str], dst: &str) -> Message {
    let mut m = Message::new(
        "anti-ddos-1",
        Kind::Ddos(DdosEvent {
            attack_type: None,
            start_time: chrono::Utc::now(),
            end_time: None,
            attack_src_ip: src.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
            attack_dst_ip: vec![dst.parse().unwrap()],
            attack_src_port: vec![],
            attack_dst_port: vec![80],
            rule_name: "syn-flood".into(),
            attack_rate: Some(90_000),
            attack_throughput: None,
        }),
    );
    m.common.severity = Severity::High;
    m.common.message = Some("SYN flood\r\nBcc: evil@x.example".into());
    m
}

/// One NetFlow v5 datagram (copied from e2e_detect): a second of a SYN flood on `victim` port 80
/// from `sources` in turn, 30 flows of 1,000 SYNs (30,000 pps), exported at `uptime`/`unix_secs`.
fn syn_flood_datagram(
    seq: u32,
    uptime: u32,
    unix_secs: u32,
    sources: &[[u8; 4]],
    victim: [u8; 4],
) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let header = V5Header {
        sys_uptime: uptime,
        unix_secs,
        flow_sequence: seq,
        ..V5Header::default()
    };
    let records: Vec<V5RecordRepr> = (0..30u32)
        .map(|j| V5RecordRepr {
            src_addr: sources[j as usize % sources.len()].into(),
            dst_addr: victim.into(),
            next_hop: [192, 0, 2, 254].into(),
            input: 1,
            output: 2,
            packets: 1000,
            octets: 1000 * 60,
            first: uptime - 999,
            last: uptime,
            src_port: 1024 + ((seq + j) % 60_000) as u16,
            dst_port: 80,
            tcp_flags: 0x02,
            proto: 6,
            src_mask: 24,
            dst_mask: 24,
            // the victim's network is announced by TRANSIT's AS (known to the registry by its AS
            // only); the sources' ASes are unknown to the exporter
            dst_as: 64700,
            ..V5RecordRepr::default()
        })
        .collect();
    emit(&header, &records).expect("at most 30 flows a datagram")
}

/// Replays six seconds of a SYN flood from `sources` on `victim`, stamped now (the daemon's clock
/// is the wall clock), to the instance's flow collector at one datagram a second.
fn replay_flood(inst: &Instance, sources: &[[u8; 4]], victim: [u8; 4]) {
    let flow_addr: std::net::SocketAddr =
        std::fs::read_to_string(inst.dir.path().join("data/flow.addr"))
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
    let pcap = inst.dir.path().join("flood.pcap");
    support::write_udp_pcap(
        &pcap,
        (0..6u32).map(|s| support::PcapUdp {
            src: "192.0.2.10:40000".parse().unwrap(),
            dst: "192.0.2.1:2055".parse().unwrap(),
            secs: now + s,
            usec: 0,
            payload: syn_flood_datagram(s * 30, 3_600_000 + s * 1000, now + s, sources, victim),
        }),
    );
    let out = Command::new(support::bin())
        .arg("replay")
        .arg(&pcap)
        .args(["--to", &flow_addr.to_string(), "--rate", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The id of the stored DDoS event on `victim` (deadline 30 s).
async fn detected_ddos(inst: &Instance, victim: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = support::messages(inst, "kind=ddos").await;
        if let Some(id) = v.iter().find_map(|m| {
            m.to_string()
                .contains(victim)
                .then(|| m["id"].as_str().and_then(|x| x.parse::<u64>().ok()))
                .flatten()
        }) {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "no DDoS event detected on {victim}: {v:#?}\n{}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn push(inst: &Instance, m: &Message) -> u64 {
    let body = serde_json::Value::Array(vec![pharos_model::json::encode(m)]);
    let v = support::push_ok(inst, body.to_string()).await;
    v["ids"][0].as_str().unwrap().parse().unwrap()
}

fn syslog_port(inst: &Instance) -> std::net::SocketAddr {
    let text = std::fs::read_to_string(inst.dir.path().join("data/syslog.addr")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("udp "))
        .unwrap()
        .parse()
        .unwrap()
}

fn anonymise(dir: &Path, addrs: &[&str]) -> Vec<String> {
    let out = Command::new(support::bin())
        .args(["anon", "addr", "--key-file"])
        .arg(dir.join("data/notice-anon.key"))
        .args(addrs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn xmllint_iodef(dir: &Path, xml: &str) {
    let Some(shared) = support::shared_dir() else {
        pharos_model::conformance::skip("the IODEF XSD check needs ../shared (set PHAROS_SHARED)");
        return;
    };
    let file = dir.join("iodef.xml");
    std::fs::write(&file, xml).unwrap();
    let schemas = shared.join("schemas");
    let out = Command::new("xmllint")
        .env("XML_CATALOG_FILES", schemas.join("catalog.xml"))
        .args(["--noout", "--nonet", "--schema"])
        .arg(schemas.join("iodef-2.0.xsd"))
        .arg(&file)
        .output()
        .expect("xmllint is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "IODEF attachment invalid: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constituents_get_immediate_notices_and_one_digest_once_across_a_restart() {
    support::install_crypto();
    if !python_has_aiosmtpd() {
        pharos_model::conformance::skip(
            "aiosmtpd is missing (scripts/test.sh installs it: pip install aiosmtpd)",
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let smtp = start_smtp(work.path());

    // The registry, imported before the first start.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let csv = dir.path().join("constituents.csv");
    std::fs::write(&csv, CSV).unwrap();
    let st = Command::new(support::bin())
        .args(["constituency", "import", "--csv"])
        .arg(&csv)
        .arg("--db")
        .arg(dir.path().join("data/constituency.db"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let config = format!(
        r#"
[flow]
listen = ["127.0.0.1:0"]

[detect.ddos]
networks = ["198.51.100.0/24"]
window = "2s"
delay = "2s"
thresholds.syn = {{ pps = 5000 }}

[syslog]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"

[notify]
dedup_window = "1s"

[[notify.correlate]]
name = "ssh-bf"
activity = "failed-login"
group_by = "src"
count = 5
seconds = 60
emit = "brute-force"

[notice]
smtp_server = "localhost"
smtp_port = {port}
starttls = "required"
smtp_ca = {ca:?}
from = "cert@pharos.example"
site = "pharos-e2e"
digest_interval_override = "12s"
retry = "1s"
"#,
        port = smtp.port,
        ca = work.path().join("smtp-cert.pem").display().to_string(),
    );
    let inst = Instance::start_in(dir, &config);

    // The attack, replayed as NetFlow v5 into the flow collector and found by detection: HOSP's
    // host 203.0.113.20 and ISP3's 192.0.2.77 SYN-flood UNI's 198.51.100.10 (30,000 pps, six
    // times the threshold: severity high, below ISP3's critical).
    let t0 = Instant::now();
    replay_flood(
        &inst,
        &[[203, 0, 113, 20], [192, 0, 2, 77]],
        [198, 51, 100, 10],
    );
    // The brute force: HOSP's 203.0.113.9 tries SSH passwords (over syslog).
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..6 {
        let line = format!(
            "<38>Dec  7 14:00:0{i} bastion sshd[3173{i}]: Failed password for root from 203.0.113.9 port 4011{i} ssh2"
        );
        sock.send_to(line.as_bytes(), syslog_port(&inst)).unwrap();
    }

    // UNI (immediate) hears of the attack within seconds.
    let got = wait_mails(&smtp, &inst, "UNI's notice", |m| {
        m.iter().any(|(_, meta)| to_of(meta) == "cert@uni.example")
    })
    .await;
    // Replay (~5 s), the detector's window and delay (2 s each) and the stage's poll, with room
    // for a loaded CI machine running other tests beside this one.
    assert!(
        t0.elapsed() < Duration::from_secs(40),
        "took {:?}",
        t0.elapsed()
    );
    let ddos1 = detected_ddos(&inst, "198.51.100.10").await;
    let (uni, meta) = got
        .iter()
        .find(|(_, meta)| to_of(meta) == "cert@uni.example")
        .unwrap();
    assert_eq!(meta["tls"], true, "sent without STARTTLS");
    assert_eq!(uni["type"], "multipart/mixed");
    // No language in the registry: English.
    assert_eq!(uni["lang"], "en");
    let subject = uni["subject"].as_str().unwrap();
    assert!(
        subject.contains("availability/ddos") && subject.contains("University"),
        "{subject}"
    );
    assert!(!subject.contains('\n'));
    let body = uni["body"].as_str().unwrap();
    let [hosp_anon, isp_anon]: [String; 2] =
        anonymise(inst.dir.path(), &["203.0.113.20", "192.0.2.77"])
            .try_into()
            .unwrap();
    assert!(body.contains("198.51.100.10"), "{body}");
    assert!(
        body.contains(&hosp_anon) && body.contains(&isp_anon),
        "{body}"
    );
    assert!(
        !body.contains("203.0.113.20") && !body.contains("192.0.2.77"),
        "{body}"
    );
    let csv = uni["attachments"]["events.csv"].as_str().unwrap();
    assert!(csv.starts_with("id,time,kind,classification"), "{csv}");
    assert!(csv.contains(&format!("{ddos1},")), "{csv}");
    let iodef = uni["attachments"]["events.iodef.xml"].as_str().unwrap();
    assert!(iodef.contains(&hosp_anon) && !iodef.contains("203.0.113.20"));
    xmllint_iodef(work.path(), iodef);

    // TRANSIT holds no prefix, only AS64700, the AS the flows name for the victim: detection
    // put it in the event (`dst-as`) and the notice is routed by it. The victim is UNI's (by
    // prefix), so TRANSIT sees it pseudonymised, like the sources.
    let got = wait_mails(&smtp, &inst, "TRANSIT's notice (routed by AS)", |m| {
        m.iter()
            .any(|(_, meta)| to_of(meta) == "noc@transit.example")
    })
    .await;
    let (transit, _) = got
        .iter()
        .find(|(_, meta)| to_of(meta) == "noc@transit.example")
        .unwrap();
    let subject = transit["subject"].as_str().unwrap();
    assert!(
        subject.contains("availability/ddos") && subject.contains("Transit Net"),
        "{subject}"
    );
    let uni_anon = anonymise(inst.dir.path(), &["198.51.100.10"]).remove(0);
    let body = transit["body"].as_str().unwrap();
    assert!(
        body.contains(&uni_anon) && body.contains(&hosp_anon) && body.contains(&isp_anon),
        "{body}"
    );
    assert!(
        !body.contains("198.51.100.10") && !body.contains("203.0.113.20"),
        "{body}"
    );
    let iodef = transit["attachments"]["events.iodef.xml"].as_str().unwrap();
    assert!(
        !iodef.contains("198.51.100.10") && !iodef.contains("64700"),
        "{iodef}"
    );
    xmllint_iodef(work.path(), iodef);

    // The brute-force event is stored (and so queued for HOSP's digest) before the restart.
    let bf = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = support::messages(&inst, "kind=intrusion").await;
            if let Some(id) = v.iter().find_map(|m| {
                let s = m.to_string();
                (s.contains("203.0.113.9"))
                    .then(|| m["id"].as_str().map(|x| x.parse::<u64>().unwrap()))
            }) {
                break id.unwrap_or(0);
            }
            assert!(
                Instant::now() < deadline,
                "no brute-force event: {}",
                inst.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let queued = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = support::metric(&inst, "pharos_notice_queued_total", &[]).await;
            // ddos1 -> UNI, HOSP and TRANSIT (by AS); the brute force -> HOSP.
            if n >= 4 {
                break n;
            }
            assert!(Instant::now() < deadline, "pairs not queued: {n}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(queued, 4);

    // Restart in the middle: the digest is not due yet.
    let dir = inst.stop_keep_dir();
    let before = mails(&smtp).len();
    let inst = Instance::start_in(dir, &config);
    // A second attack, on UNI only, after the restart.
    let ddos2 = push(&inst, &ddos(&["100.64.1.1"], "198.51.100.11")).await;

    // HOSP gets one digest with both its events; UNI a second notice for ddos2 only.
    let all = wait_mails(&smtp, &inst, "HOSP's digest and UNI's second notice", |m| {
        m.iter().any(|(_, meta)| to_of(meta) == "it@hosp.example")
            && m.iter()
                .filter(|(_, meta)| to_of(meta) == "cert@uni.example")
                .count()
                == 2
    })
    .await;
    assert!(before <= 3, "{before} mails before the restart");
    let (hosp, meta) = all
        .iter()
        .find(|(_, meta)| to_of(meta) == "it@hosp.example")
        .unwrap();
    assert_eq!(meta["tls"], true);
    // HOSP's contact reads German (`de-AT`): the subject (an RFC 2047 encoded word on the wire,
    // decoded by Python's email package) and Content-Language say so.
    let subject = hosp["subject"].as_str().unwrap();
    assert_eq!(
        subject,
        "[pharos-e2e] Zusammenfassung (daily): 2 Ereignis(se) betreffend Hospital"
    );
    assert_eq!(hosp["lang"], "de");
    assert!(
        hosp["body"]
            .as_str()
            .unwrap()
            .starts_with("Pharos-Frühwarnung für Hospital"),
        "{hosp}"
    );
    let csv = hosp["attachments"]["events.csv"].as_str().unwrap();
    assert!(
        csv.contains(&format!("\r\n{ddos1},")) || csv.contains(&format!("\n{ddos1},")),
        "{csv}"
    );
    assert!(csv.contains(&format!("\n{bf},")), "{csv}");
    assert!(!csv.contains(&format!("\n{ddos2},")), "{csv}");
    // HOSP's own hosts in clear; UNI's victim and ISP3's host pseudonymised.
    let body = hosp["body"].as_str().unwrap();
    assert!(
        body.contains("203.0.113.20") && body.contains("203.0.113.9"),
        "{body}"
    );
    assert!(
        body.contains(&uni_anon) && body.contains(&isp_anon),
        "{body}"
    );
    assert!(
        !body.contains("198.51.100.10") && !body.contains("192.0.2.77"),
        "{body}"
    );
    xmllint_iodef(
        work.path(),
        hosp["attachments"]["events.iodef.xml"].as_str().unwrap(),
    );
    let second = all
        .iter()
        .filter(|(_, meta)| to_of(meta) == "cert@uni.example")
        .nth(1)
        .unwrap();
    // Text from the network (the pushed event's message) is escaped, not a header.
    let body2 = second.0["body"].as_str().unwrap();
    assert!(body2.contains("SYN flood\\u{d}\\u{a}Bcc"), "{body2}");
    let csv2 = second.0["attachments"]["events.csv"].as_str().unwrap();
    assert!(
        csv2.contains(&format!("\n{ddos2},")) && !csv2.contains(&format!("\n{ddos1},")),
        "{csv2}"
    );

    // The API keeps every notice with its delivery status, and answers lookups.
    let n = support::get_json(&inst, "/api/v1/notices?status=sent").await;
    let items = n["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{n}");
    assert!(
        items
            .iter()
            .all(|i| i["attempts"] == 1 && i["channel"] == "mail")
    );
    let l = support::get_json(&inst, "/api/v1/constituency/lookup?q=198.51.100.10").await;
    assert_eq!(l["organisation"]["id"], "UNI", "{l}");
    assert_eq!(l["matched"], "198.51.100.0/24");

    // After a clean stop nothing more can arrive: exactly four mails, ISP3 none.
    let mut inst = inst;
    assert!(inst.terminate().success());
    let all = mails(&smtp);
    let to: Vec<String> = all.iter().map(|(_, m)| to_of(m)).collect();
    assert_eq!(all.len(), 4, "{to:?}");
    assert!(!to.iter().any(|t| t.contains("isp3")), "{to:?}");
}

/// A webhook receiver over plain HTTP/1.1 on 127.0.0.1: answers 503 to the first request and 200
/// to the others; sends each request's headers (lower-cased) and body on the channel.
async fn webhook_receiver() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>, u16)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            n += 1;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let k = s.read(&mut chunk).await.unwrap_or(0);
                if k == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..k]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buf.len() < i + 4 + len {
                        let k = s.read(&mut chunk).await.unwrap_or(0);
                        if k == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..k]);
                    }
                    break (head, buf[i + 4..].to_vec());
                }
            };
            let status = if n == 1 { 503 } else { 200 };
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            let _ = tx.send((head, body, status));
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_organisation_set_through_the_api_gets_signed_webhook_notices_retried_until_accepted()
 {
    support::install_crypto();
    let (hook, mut received) = webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, "s3cret-for-the-test\n").unwrap();
    let inst = Instance::start_in(
        dir,
        &format!(
            "[flow]\nlisten = [\"127.0.0.1:0\"]\n[syslog]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n[notice]\nsmtp_port = 9\nretry = \"1s\"\nwebhook_secret_file = {:?}\n",
            secret.display().to_string()
        ),
    );
    let http = support::client();
    // Writes need the admin role: an analyst is refused.
    let r = http
        .post(inst.url("/api/v1/tokens"))
        .json(&serde_json::json!({"name": "ana", "role": "analyst"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let analyst_token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let analyst = reqwest::Client::builder()
        .default_headers(support::auth_headers(&analyst_token))
        .build()
        .unwrap();
    let org = serde_json::json!({
        "id": "LAB",
        "name": "Lab",
        "prefixes": ["198.51.100.0/25"],
        "contacts": [{"webhook": format!("http://{hook}/hook"),
                      "policy": {"interval": "immediate", "anonymise": false, "kinds": ["ddos"]}}]
    });
    let r = analyst
        .post(inst.url("/api/v1/constituency/organisations"))
        .json(&org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(inst.url("/api/v1/constituency/organisations"))
        .json(&org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let list = support::get_json(&inst, "/api/v1/constituency/organisations").await;
    assert_eq!(list["items"][0]["id"], "LAB", "{list}");
    let l = support::get_json(&inst, "/api/v1/constituency/lookup?q=198.51.100.9").await;
    assert_eq!(l["contacts"][0]["policy"]["interval"], "immediate", "{l}");

    // The registry is reread at its change: the next event is routed to LAB.
    let id = push(&inst, &ddos(&["100.64.0.1"], "198.51.100.9")).await;
    // First attempt refused (503), the retry accepted.
    let (_, _, s1) = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s1, 503);
    let (head, body, s2) = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s2, 200);
    let sig = head
        .lines()
        .find_map(|l| l.strip_prefix("x-pharos-signature:"))
        .expect("signed")
        .trim()
        .to_string();
    assert!(pharos_emit::webhook::verify(
        b"s3cret-for-the-test",
        &body,
        &sig
    ));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["organisation"], "LAB");
    assert_eq!(v["events"][0]["id"], id);
    assert_eq!(
        v["events"][0]["source"][0], "100.64.0.1",
        "not anonymised: {v}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = support::get_json(&inst, &format!("/api/v1/notices?event={id}")).await;
        let item = &n["items"][0];
        if item["status"] == "sent" {
            assert_eq!(item["attempts"], 2, "{n}");
            assert!(item["last_error"].as_str().unwrap().contains("503"), "{n}");
            assert_eq!(item["channel"], "webhook");
            break;
        }
        assert!(Instant::now() < deadline, "not sent: {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Removing the manual organisation (admin).
    let r = http
        .delete(inst.url("/api/v1/constituency/organisations/LAB"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .delete(inst.url("/api/v1/constituency/organisations/LAB"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
