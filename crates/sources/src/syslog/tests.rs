//! Listener tests over real sockets on 127.0.0.1: what comes out of the channel, what is refused
//! and counted, and that shutdown closes the channel. The normalise stage has its own tests in
//! the binary (`crates/pharos/src/syslog_stage/tests.rs`).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::*;
use crate::test_metrics::{counter, snapshotter};

fn settings(extra: impl FnOnce(&mut SyslogConfig)) -> Settings {
    let mut c = SyslogConfig {
        udp: "127.0.0.1:0".into(),
        tcp: "127.0.0.1:0".into(),
        ..SyslogConfig::default()
    };
    extra(&mut c);
    c.settings().unwrap()
}

fn addr(h: &SyslogHandle, t: Transport) -> SocketAddr {
    h.addrs().iter().find(|(x, _)| *x == t).unwrap().1
}

/// The next record, failing the test after 10 s.
async fn next(rx: &mut mpsc::Receiver<RawRecord>) -> RawRecord {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no record within 10 s")
        .expect("channel closed early")
}

/// Stops the listeners and returns what was still queued; fails unless the channel then closes.
async fn shutdown_and_drain(h: SyslogHandle, mut rx: mpsc::Receiver<RawRecord>) -> Vec<RawRecord> {
    h.shutdown().await;
    let mut rest = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(r)) => rest.push(r),
            Ok(None) => return rest,
            Err(_) => panic!("the channel must close after shutdown"),
        }
    }
}

fn text(r: &RawRecord) -> &str {
    std::str::from_utf8(&r.bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_tcp_in_both_framings_deliver_one_record_per_message() {
    let (h, mut rx) = start(settings(|c| c.max_message_bytes = 512))
        .await
        .unwrap();
    assert_eq!(rx.max_capacity(), SyslogConfig::default().queue);
    let (udp, tcp) = (addr(&h, Transport::Udp), addr(&h, Transport::Tcp));
    assert_eq!(h.addr_lines(), format!("udp {udp}\ntcp {tcp}\n"));

    // UDP: one message per datagram, trailing LF/CR/NUL removed.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let line = "<38>Nov 24 14:00:03 bastion sshd[1]: Accepted publickey for deploy from 192.0.2.33 port 40112 ssh2";
    let before = chrono::Utc::now();
    s.send_to(format!("{line}\r\n\0").as_bytes(), udp).unwrap();
    let r = next(&mut rx).await;
    assert_eq!(r.transport, Transport::Udp);
    assert_eq!(r.peer, s.local_addr().unwrap());
    assert_eq!(text(&r), line);
    assert!(r.received >= before && r.received <= chrono::Utc::now());

    // TCP, octet counting: a message, then one over max_message_bytes, truncated.
    let mut c = std::net::TcpStream::connect(tcp).unwrap();
    let line = "<13>1 2026-11-24T14:00:00Z other app - - - nothing to see here";
    write!(c, "{} {line}", line.len()).unwrap();
    write!(c, "{} {}", 600, "x".repeat(600)).unwrap();
    c.flush().unwrap();
    let r = next(&mut rx).await;
    assert_eq!(
        (r.transport, r.peer),
        (Transport::Tcp, c.local_addr().unwrap())
    );
    assert_eq!(text(&r), line);
    let r = next(&mut rx).await;
    assert_eq!(r.bytes.len(), 512);
    assert!(r.bytes.iter().all(|b| *b == b'x'));
    drop(c);

    // TCP, trailers: LF, CRLF and NUL end messages; another connection, its own framing.
    let mut c = std::net::TcpStream::connect(tcp).unwrap();
    c.write_all(b"<13>one\n<13>two\r\n<13>three\0").unwrap();
    c.flush().unwrap();
    for want in ["<13>one", "<13>two", "<13>three"] {
        let r = next(&mut rx).await;
        assert_eq!(
            (r.transport, r.peer),
            (Transport::Tcp, c.local_addr().unwrap())
        );
        assert_eq!(text(&r), want);
    }
    drop(c);

    assert!(shutdown_and_drain(h, rx).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_skip_drops_the_message_and_the_connection_goes_on() {
    snapshotter();
    let skipped = counter("pharos_syslog_dropped_total", &[("reason", "oversize")]);
    let (h, mut rx) = start(settings(|c| {
        c.max_message_bytes = 480;
        c.oversize = "skip".into();
    }))
    .await
    .unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to("y".repeat(481).as_bytes(), addr(&h, Transport::Udp))
        .unwrap();
    s.send_to(b"<13>udp after", addr(&h, Transport::Udp))
        .unwrap();
    assert_eq!(text(&next(&mut rx).await), "<13>udp after");
    let mut c = std::net::TcpStream::connect(addr(&h, Transport::Tcp)).unwrap();
    write!(c, "500 {}", "z".repeat(500)).unwrap();
    write!(c, "13 <13>tcp after").unwrap();
    c.flush().unwrap();
    assert_eq!(text(&next(&mut rx).await), "<13>tcp after");
    drop(c);
    let rest = shutdown_and_drain(h, rx).await;
    assert!(rest.is_empty(), "{} more records", rest.len());
    assert_eq!(
        counter("pharos_syslog_dropped_total", &[("reason", "oversize")]) - skipped,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_udp_counted_and_makes_tcp_wait() {
    snapshotter();
    let full = counter("pharos_syslog_dropped_total", &[("reason", "queue_full")]);
    let (h, mut rx) = start(settings(|c| c.queue = 1)).await.unwrap();
    // Nobody reads: the first datagram fills the queue, the other 19 are dropped and counted.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20 {
        s.send_to(format!("<13>udp {i}").as_bytes(), addr(&h, Transport::Udp))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter("pharos_syslog_dropped_total", &[("reason", "queue_full")]) - full < 19 {
        assert!(Instant::now() < deadline, "UDP drops not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(text(&next(&mut rx).await), "<13>udp 0");
    assert!(rx.try_recv().is_err(), "only one record fits the queue");

    // TCP waits instead: every line arrives, in order, however slowly we read.
    let mut c = std::net::TcpStream::connect(addr(&h, Transport::Tcp)).unwrap();
    let lines: String = (0..50).map(|i| format!("<13>tcp {i}\n")).collect();
    c.write_all(lines.as_bytes()).unwrap();
    c.flush().unwrap();
    for i in 0..50 {
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(text(&next(&mut rx).await), format!("<13>tcp {i}"));
    }
    drop(c);
    assert!(shutdown_and_drain(h, rx).await.is_empty());
    assert_eq!(
        counter("pharos_syslog_dropped_total", &[("reason", "queue_full")]) - full,
        19,
        "TCP lines are never dropped for a full queue"
    );
}

/// Polls `f` until true; fails with `what` after 10 s.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_udp_sender_cannot_take_the_room_of_the_others() {
    snapshotter();
    let dropped = |r| counter("pharos_syslog_dropped_total", &[("reason", r)]);
    let received = || counter("pharos_syslog_received_total", &[("transport", "udp")]);
    let (rate0, full0, recv0) = (dropped("sender_rate"), dropped("queue_full"), received());
    let (h, mut rx) = start(settings(|c| {
        c.tcp = String::new();
        c.queue = 20;
        c.sender_messages_per_second = 2;
    }))
    .await
    .unwrap();
    let udp = addr(&h, Transport::Udp);
    // Nobody reads. 127.0.0.1 floods: it gets in while half the queue is free, then loses its
    // place; 127.0.0.2 sends 2 afterwards (its burst at 2/s) and they both get in.
    let flood = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..200 {
        flood
            .send_to(format!("<13>flood {i}").as_bytes(), udp)
            .unwrap();
    }
    until("the flood received", || received() - recv0 == 200).await;
    let other = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    for i in 0..2 {
        other
            .send_to(format!("<13>other {i}").as_bytes(), udp)
            .unwrap();
    }
    until("the others received", || received() - recv0 == 202).await;
    let mut got = Vec::new();
    while let Ok(r) = rx.try_recv() {
        got.push(text(&r).to_string());
    }
    let others: Vec<&String> = got.iter().filter(|t| t.contains("other")).collect();
    assert_eq!(others, ["<13>other 0", "<13>other 1"], "{got:?}");
    // The flood kept the first 11 (until less than half the queue was free), plus one per token
    // the clock gave it meanwhile (2/s: a loaded machine may take a while over 200 datagrams);
    // the rest was counted.
    let kept = got.len() as u64 - 2;
    assert!((11..=17).contains(&kept), "{got:?}");
    assert_eq!(dropped("sender_rate") - rate0, 200 - kept);
    assert_eq!(dropped("queue_full") - full0, 0);
    assert!(shutdown_and_drain(h, rx).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_tcp_sender_waits_for_its_share_and_loses_nothing() {
    snapshotter();
    let throttled = || counter("pharos_syslog_throttled_total", &[("transport", "tcp")]);
    let t0 = throttled();
    let (h, mut rx) = start(settings(|c| {
        c.queue = 20;
        c.sender_messages_per_second = 2;
    }))
    .await
    .unwrap();
    let mut c = std::net::TcpStream::connect(addr(&h, Transport::Tcp)).unwrap();
    let lines: String = (0..100).map(|i| format!("<13>tcp {i}\n")).collect();
    c.write_all(lines.as_bytes()).unwrap();
    c.flush().unwrap();
    // Nobody reads: the connection is held back once the queue is half full...
    until("the connection throttled", || throttled() > t0).await;
    // ...so a UDP sender within its rate still gets in.
    let other = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    for i in 0..2 {
        other
            .send_to(
                format!("<13>other {i}").as_bytes(),
                addr(&h, Transport::Udp),
            )
            .unwrap();
    }
    // Reading drains the queue: the connection goes on and every line arrives, in order.
    let mut tcp = Vec::new();
    let mut others = 0;
    while tcp.len() < 100 || others < 2 {
        let r = next(&mut rx).await;
        match r.transport {
            Transport::Tcp => tcp.push(text(&r).to_string()),
            _ => others += 1,
        }
    }
    let want: Vec<String> = (0..100).map(|i| format!("<13>tcp {i}")).collect();
    assert_eq!(tcp, want);
    drop(c);
    assert!(shutdown_and_drain(h, rx).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_peer_limit_are_refused_and_idle_ones_closed() {
    let (h, rx) = start(settings(|c| {
        c.udp = String::new();
        c.max_connections_per_peer = 1;
        c.idle_timeout = pharos_model::config::ConfigDuration::from_secs(1);
    }))
    .await
    .unwrap();
    assert_eq!(h.addrs().len(), 1, "udp = \"\" turns UDP off");
    let tcp = addr(&h, Transport::Tcp);
    let mut first = std::net::TcpStream::connect(tcp).unwrap();
    // a line through the first connection proves the server counts it
    first.write_all(b"<13>hello\n").unwrap();
    let mut rx = rx;
    assert_eq!(text(&next(&mut rx).await), "<13>hello");
    let mut second = std::net::TcpStream::connect(tcp).unwrap();
    assert!(
        closed_by_server(&mut second),
        "second connection must be closed by the server"
    );
    let _ = second.write_all(b"<13>refused\n");
    assert!(
        closed_by_server(&mut first),
        "idle connection must be closed after idle_timeout"
    );
    let _ = first.write_all(b"<13>late\n");
    let rest = shutdown_and_drain(h, rx).await;
    assert!(
        rest.is_empty(),
        "closed connections deliver nothing: {:?}",
        rest.iter().map(text).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_connections_and_closes_the_channel() {
    let (h, mut rx) = start(settings(|c| c.udp = String::new())).await.unwrap();
    let mut c = std::net::TcpStream::connect(addr(&h, Transport::Tcp)).unwrap();
    c.write_all(b"<13>before\n").unwrap();
    assert_eq!(text(&next(&mut rx).await), "<13>before");
    // The connection stays open; shutdown must not wait for the sender to hang up.
    tokio::time::timeout(Duration::from_secs(10), async {
        assert!(shutdown_and_drain(h, rx).await.is_empty());
    })
    .await
    .expect("shutdown with an open connection");
    assert!(closed_by_server(&mut c), "closed by the server");
}

/// Whether the server closed `s` (end of stream or reset) within 5 s; a read that times out, or
/// data, means it did not.
fn closed_by_server(s: &mut std::net::TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

#[test]
fn settings_errors_name_the_key() {
    let err = |f: fn(&mut SyslogConfig)| {
        let mut c = SyslogConfig::default();
        f(&mut c);
        c.settings().unwrap_err().to_string()
    };
    let e = err(|c| c.udp = "nope".into());
    assert!(
        e.contains("[syslog] udp")
            && e.contains("127.0.0.1:8080")
            && e.contains("\"\" to turn it off"),
        "{e}"
    );
    let e = err(|c| c.tcp = "localhost".into());
    assert!(e.contains("[syslog] tcp") && e.contains("no port"), "{e}");
    // a host name with a port is resolved
    let c = SyslogConfig {
        tcp: "localhost:514".into(),
        ..SyslogConfig::default()
    };
    let s = c.settings().unwrap();
    assert!(
        s.tcp
            .is_some_and(|a| a.ip().is_loopback() && a.port() == 514)
    );
    let e = err(|c| {
        c.tls = Some(TlsConfig {
            listen: " ".into(),
            cert: "c.pem".into(),
            key: "k.pem".into(),
            client_ca: None,
            require_client_cert: true,
            handshake_timeout: pharos_model::config::ConfigDuration::from_secs(10),
        })
    });
    assert!(
        e.contains("[syslog.tls] listen = \" \"") && e.contains("remove [syslog.tls]"),
        "{e}"
    );
    let e = err(|c| c.max_message_bytes = 479);
    assert!(e.contains("max_message_bytes") && e.contains("480"), "{e}");
    let e = err(|c| c.oversize = "cut".into());
    assert!(e.contains("oversize") && e.contains("\"skip\""), "{e}");
    for (k, f) in [
        (
            "max_connections",
            (|c| c.max_connections = 0) as fn(&mut SyslogConfig),
        ),
        ("max_connections_per_peer", |c| {
            c.max_connections_per_peer = 0
        }),
        ("queue", |c| c.queue = 0),
        ("idle_timeout", |c| c.idle_timeout = Default::default()),
    ] {
        let e = err(f);
        assert!(
            e.contains(&format!("[syslog] {k} = 0"))
                || e.contains(&format!("[syslog] {k} = \"0s\"")),
            "{e}"
        );
    }
    // The stage's keys are the binary's to check.
    let ok = SyslogConfig {
        timezone: "Europe/Paris".into(),
        default_parser: "nope".into(),
        batch: 0,
        ..SyslogConfig::default()
    };
    let s = ok.settings().unwrap();
    assert!(s.default_addresses && s.udp.is_some() && s.tls.is_none());
    assert_eq!(s.idle_timeout, Duration::from_secs(600));
    let s = settings(|_| {});
    assert!(!s.default_addresses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_files_that_cannot_be_used_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TlsConfig {
        listen: "127.0.0.1:0".into(),
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing.key"),
        client_ca: None,
        require_client_cert: true,
        handshake_timeout: pharos_model::config::ConfigDuration::from_secs(10),
    };
    let Err(e) = tls::acceptor(&cfg) else {
        panic!("missing files must be refused")
    };
    assert!(e.contains("cert = ") && e.contains("missing.pem"), "{e}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not pem\n").unwrap();
    cfg.cert = empty;
    let Err(e) = tls::acceptor(&cfg) else {
        panic!("a file without certificates must be refused")
    };
    assert!(e.contains("no CERTIFICATE block"), "{e}");
    // start() reports it as a [syslog.tls] error and listens on nothing.
    let Err(e) = start(settings(|c| c.tls = Some(cfg.clone()))).await else {
        panic!("start must refuse unusable TLS files")
    };
    assert!(
        matches!(e, StartError::Tls(_)) && e.to_string().starts_with("[syslog.tls]: cert = "),
        "{e}"
    );
}
