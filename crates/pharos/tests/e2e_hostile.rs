//! End-to-end: hostile text (terminal escape sequences, NUL, DEL, C1 controls, bidi overrides,
//! invalid UTF-8, overlong fields) sent through every ingest path of the real daemon (syslog UDP
//! and TCP, push, subscription and token names) never reaches an analyst's terminal, the daemon's
//! log or an API response as raw control characters; identifiers holding them are refused with a
//! 400 that says why.

mod support;

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Instance, bin, client};

/// Whether `c` would act on a terminal instead of being shown (the line's own `\n` aside).
fn acts_on_terminal(c: char) -> bool {
    c != '\n' && pharos_model::text::is_unsafe_char(c)
}

/// Fails when `bytes` are not UTF-8 or hold a character that acts on a terminal.
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} is not UTF-8 ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| acts_on_terminal(c)) {
        let from = text[..i].char_indices().rev().nth(60).map_or(0, |(j, _)| j);
        panic!(
            "{what} carries the raw control character {:?} at byte {i}: …{:?}…",
            c,
            &text[from..(i + 40).min(text.len())]
        );
    }
}

fn syslog_addr(inst: &Instance, transport: &str) -> SocketAddr {
    let text = std::fs::read_to_string(inst.dir.path().join("data/syslog.addr")).unwrap();
    text.lines()
        .find_map(|l| {
            let (t, a) = l.split_once(' ')?;
            (t == transport).then(|| a.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {transport} listener in syslog.addr"))
}

/// Runs the CLI against the instance; gives (status ok, stdout, stderr).
fn cli(inst: &Instance, args: &[&str]) -> (bool, Vec<u8>, Vec<u8>) {
    let out = Command::new(bin())
        .args(args)
        .args(["--url", &inst.base])
        .env("PHAROS_TOKEN", ADMIN_TOKEN)
        .current_dir(inst.dir.path())
        .output()
        .unwrap();
    (out.status.success(), out.stdout, out.stderr)
}

async fn stored_with_text(inst: &Instance, text: &str) -> Vec<Value> {
    support::messages(inst, &format!("text={text}&limit=100")).await
}

async fn wait_stored(inst: &Instance, text: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = stored_with_text(inst, text).await;
        if items.len() >= n {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages with {text:?} stored: {}",
            items.len(),
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_reaches_no_terminal_log_or_api_response_raw() {
    let inst = Instance::start(
        "[syslog]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nmax_message_bytes = 4096\n",
    );
    let http = client();

    // syslog over UDP: escape sequences, NUL, DEL, C1, invalid UTF-8, a hostile host name
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = syslog_addr(&inst, "udp");
    let hostile: [&[u8]; 3] = [
        b"<38>Dec  7 07:52:35 bastion sshd[99]: Failed password for \x1b[2J\x1b]0;PWNED\x07evil1 from 203.0.113.5 port 1 ssh2",
        b"<38>Dec  7 07:52:36 host\x1b[31m app[1]: bad \xff\xfe \x00 nul \x7f del \xc2\x9b1m c1 evil2",
        b"<38>Dec  7 07:52:37 fw2 app[2]: evil3 \xe2\x80\xae reversed",
    ];
    for d in hostile {
        udp.send_to(d, to).unwrap();
    }
    // syslog over TCP (LF framing): an overlong line (truncated at max_message_bytes) with escapes
    let mut tcp = TcpStream::connect(syslog_addr(&inst, "tcp")).unwrap();
    let long = format!(
        "<38>Dec  7 07:52:38 fw3 app[3]: evil4 {}\n",
        "\x1b[5m\x07x".repeat(2000)
    );
    tcp.write_all(long.as_bytes()).unwrap();
    tcp.flush().unwrap();
    drop(tcp);

    // push: text with controls is stored (it is data); an nsf-name with NUL is an identifier: 400
    let doc = |nsf: &str, text: &str| {
        json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
            "nsf-name": nsf, "message": text,
            "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "severity": "high", "usage": 91, "threshold": 80}
        }})
    };
    let r = http
        .post(inst.url("/api/v1/push"))
        .json(&doc("fw-push", "evil5 \u{1b}[2J \u{7f} \u{9b}31m \u{202e}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http
        .post(inst.url("/api/v1/push"))
        .json(&doc("fw\u{0}\u{1b}[2J", "evil6"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.bytes().await.unwrap();
    assert_clean("the push refusal", &body);
    let reason = String::from_utf8_lossy(&body);
    assert!(reason.contains("nsf-name"), "{reason}");

    // identifiers: token and subscription names with controls are refused with a 400
    let r = http
        .post(inst.url("/api/v1/tokens"))
        .json(&json!({"name": "ops\u{1b}]0;x\u{7}", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_clean("the token refusal", &r.bytes().await.unwrap());
    let r = http
        .post(inst.url("/api/v1/subscriptions"))
        .json(&json!({"name": "hook\u{0}", "sink": {"type": "webhook", "url": "https://127.0.0.1:9/x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_clean("the subscription refusal", &r.bytes().await.unwrap());

    let stored = wait_stored(&inst, "evil", 5).await;
    assert!(
        stored_with_text(&inst, "evil6").await.is_empty(),
        "the refused push stored nothing"
    );
    // API responses: JSON with every control escaped
    for path in [
        "/api/v1/messages?text=evil&limit=100",
        "/api/v1/nsfs",
        &format!(
            "/api/v1/messages/{}",
            stored[0]["id"].as_str().unwrap_or("1")
        ),
    ] {
        let body = http
            .get(inst.url(path))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_clean(&format!("GET {path}"), &body);
    }

    // the CLI: tables and JSON lines
    for args in [
        &["events", "list", "--kind", "all", "--text", "evil"][..],
        &[
            "events", "list", "--kind", "all", "--text", "evil", "--json",
        ][..],
    ] {
        let (ok, out, err) = cli(&inst, args);
        assert!(ok, "{args:?}: {}", String::from_utf8_lossy(&err));
        assert_clean(&format!("stdout of {args:?}"), &out);
        assert_clean(&format!("stderr of {args:?}"), &err);
        let text = String::from_utf8_lossy(&out);
        for n in 1..=5 {
            assert!(text.contains(&format!("evil{n}")), "evil{n} listed: {text}");
        }
    }
    // the CLI's error path quotes the server's answer
    let (ok, _, err) = cli(&inst, &["events", "ack", "999999999"]);
    assert!(!ok);
    assert_clean("stderr of a failed ack", &err);

    // events tail: follows new events and prints them escaped
    let mut tail = Command::new(bin())
        .args([
            "events",
            "tail",
            "--kind",
            "all",
            "--text",
            "evil7",
            "--interval",
            "0.1",
        ])
        .args(["--url", &inst.base])
        .env("PHAROS_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(tail.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "tail ended early");
        if line.starts_with("following") {
            break;
        }
    }
    udp.send_to(
        b"<38>Dec  7 07:52:39 bastion sshd[99]: evil7 \x1b]0;PWNED\x07 \x1b[2J",
        to,
    )
    .unwrap();
    let mut out = std::io::BufReader::new(tail.stdout.take().unwrap());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("evil7") {
        assert!(
            Instant::now() < deadline,
            "tail printed: {:?}",
            String::from_utf8_lossy(&seen)
        );
        let mut l = Vec::new();
        if out.read_until(b'\n', &mut l).unwrap() == 0 {
            break;
        }
        seen.extend(l);
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert_clean("stdout of events tail", &seen);

    // the daemon's own log (stderr to a file: no colour codes, no raw text from the network)
    let mut inst = inst;
    let status = inst.terminate();
    assert!(status.success(), "{status}");
    assert_clean("the daemon's log", inst.log().as_bytes());
}
