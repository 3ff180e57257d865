use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::SubsecRound;
use pharos_wire::syslog::{self, ParseOptions, Protocol};
use tokio::io::AsyncReadExt;

use super::*;
use crate::Change;
use crate::webhook::test_support::{item, poll, sample, test_tls};

const DEADLINE: Duration = Duration::from_secs(10);

fn items() -> Vec<Item> {
    let mut alarm = sample("system-alarm", 42);
    alarm.common.message = Some("CPU at 97% on fw-1 \"core\" [0]\\".into());
    vec![
        item(7, Change::Created, sample("ddos", 41)),
        item(8, Change::Updated, sample("ddos", 41)),
        item(9, Change::Created, alarm),
    ]
}

/// Checks that `line` is the RFC 5424 line of `it` as Pharos's own parser reads it.
fn check_line(line: &str, it: &Item) {
    let p = syslog::parse(line, &ParseOptions::new(chrono::Utc::now()));
    assert_eq!(p.protocol, Protocol::Rfc5424, "{line}");
    assert!(
        p.anomalies.is_empty(),
        "{:?} in {line}",
        p.anomalies.names().collect::<Vec<_>>()
    );
    let m = &it.stored.message;
    assert_eq!(p.facility(), 20, "{line}");
    assert_eq!(p.severity(), syslog_severity(m.common.severity));
    assert_eq!(p.app_name, Some("pharos"));
    assert_eq!(p.hostname, Some("sensor-1"));
    assert_eq!(p.msg_id, Some(m.kind.name()));
    assert_eq!(
        p.timestamp_utc(),
        Some(m.common.event_time.trunc_subsecs(6))
    );
    let sd: Vec<_> = p.sd_elements().collect();
    assert_eq!(sd.len(), 1, "{line}");
    assert_eq!(sd[0].id, SD_ID);
    let get = |n: &str| sd[0].get(n).map(|v| v.into_owned());
    assert_eq!(get("seq"), Some(it.seq.to_string()));
    assert_eq!(get("change").as_deref(), Some(it.change.as_str()));
    assert_eq!(get("id"), m.common.id.map(|i| i.to_string()));
    assert_eq!(get("kind").as_deref(), Some(m.kind.name()));
    assert_eq!(get("severity").as_deref(), Some(m.common.severity.as_str()));
    assert_eq!(get("nsf-name").as_deref(), Some(m.common.nsf_name.as_str()));
    assert_eq!(get("rule").as_deref(), m.rule_name());
    let srcs: Vec<String> = sd[0]
        .params()
        .filter(|p| p.name == "src-ip")
        .map(|p| p.value().into_owned())
        .collect();
    let want: Vec<String> = m
        .addresses()
        .into_iter()
        .filter(|(r, _)| *r == pharos_model::AddrRole::Src)
        .map(|(_, a)| a.to_string())
        .take(MAX_ADDRS_PER_ROLE)
        .collect();
    assert_eq!(srcs, want);
    match &m.common.message {
        Some(t) => assert_eq!(p.msg, t),
        None => {
            let v: serde_json::Value = serde_json::from_str(p.msg).unwrap();
            assert_eq!(v, pharos_model::json::encode(m));
        }
    }
}

fn config(addr: std::net::SocketAddr, t: Transport) -> SyslogOutConfig {
    let mut c = SyslogOutConfig::new(addr.to_string(), t);
    c.hostname = Some("sensor-1".into());
    c.timeout = ConfigDuration(Duration::from_secs(5));
    c
}

#[tokio::test]
async fn syslog_udp_sends_one_rfc5424_datagram_per_item_that_parses_back() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut sink = config(rx.local_addr().unwrap(), Transport::Udp)
        .build()
        .unwrap();
    let its = items();
    sink.deliver(&its).await.unwrap();
    let mut buf = vec![0u8; 65536];
    for it in &its {
        let n = tokio::time::timeout(DEADLINE, rx.recv(&mut buf))
            .await
            .expect("datagram within the deadline")
            .unwrap();
        let line = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(n <= 2048);
        check_line(line, it);
    }
    assert!(sink.describe().starts_with("syslog+udp://127.0.0.1:"));
}

#[tokio::test]
async fn syslog_udp_cuts_long_lines_at_max_udp_bytes_on_a_char_boundary() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut c = config(rx.local_addr().unwrap(), Transport::Udp);
    c.max_udp_bytes = 500;
    let mut sink = c.build().unwrap();
    let mut m = sample("system-alarm", 1);
    m.common.message = Some("é".repeat(600));
    sink.deliver(&[item(1, Change::Created, m)]).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(DEADLINE, rx.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!((498..=500).contains(&n), "{n}");
    let line = std::str::from_utf8(&buf[..n]).expect("cut on a character boundary");
    let p = syslog::parse(line, &ParseOptions::new(chrono::Utc::now()));
    assert!(p.bom, "non-ASCII MSG starts with the BOM");
    assert!(p.msg.starts_with("éé"));
}

/// Reads octet-counted frames (`LEN SP MSG`) from `r` until `n` frames were read.
async fn read_frames<R: tokio::io::AsyncRead + Unpin>(r: &mut R, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 4096];
    while frames.len() < n {
        // Parse what is complete.
        while let Some(sp) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp])
                .unwrap()
                .parse()
                .expect("LEN");
            if buf.len() < sp + 1 + len {
                break;
            }
            frames.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
        if frames.len() >= n {
            break;
        }
        let k = tokio::time::timeout(DEADLINE, r.read(&mut chunk))
            .await
            .expect("frames within the deadline")
            .unwrap();
        assert!(k > 0, "connection closed after {} frames", frames.len());
        buf.extend_from_slice(&chunk[..k]);
    }
    assert!(buf.is_empty(), "trailing bytes {buf:?}");
    frames
}

#[tokio::test]
async fn syslog_tcp_frames_by_octet_counting_keeps_the_connection_and_reconnects_after_a_close() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut sink = config(listener.local_addr().unwrap(), Transport::Tcp)
        .build()
        .unwrap();
    let its = items();
    sink.deliver(&its[..2]).await.unwrap();
    let (mut conn, _) = listener.accept().await.unwrap();
    let frames = read_frames(&mut conn, 2).await;
    sink.deliver(&its[2..]).await.unwrap();
    let more = read_frames(&mut conn, 1).await;
    for (f, it) in frames.iter().chain(&more).zip(&its) {
        check_line(f, it);
    }
    // The receiver closes; the next batch goes over a new connection, none of it lost.
    drop(conn);
    if let Err(e) = sink.deliver(&its).await {
        // Detecting the close may take one failed write; then the retry must reconnect.
        assert!(matches!(e, SinkError::Retry(_)), "{e}");
        sink.deliver(&its).await.unwrap();
    }
    let (mut conn2, _) = tokio::time::timeout(DEADLINE, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let frames = read_frames(&mut conn2, 3).await;
    for (f, it) in frames.iter().zip(&its) {
        check_line(f, it);
    }
}

#[tokio::test]
async fn syslog_tls_delivers_octet_counted_lines_to_a_receiver_trusted_by_ca_file() {
    let tls = test_tls();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let r2 = received.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut s = acceptor.accept(tcp).await.unwrap();
        let frames = read_frames(&mut s, 3).await;
        r2.lock().unwrap().extend(frames);
        // The next batch must come over the same connection.
        let frames = read_frames(&mut s, 1).await;
        r2.lock().unwrap().extend(frames);
    });
    let mut c = SyslogOutConfig::new(format!("localhost:{port}"), Transport::Tls);
    c.hostname = Some("sensor-1".into());
    c.ca_file = Some(tls.ca_file.clone());
    let mut sink = c.build().unwrap();
    let its = items();
    sink.deliver(&its).await.unwrap();
    let frames = poll("3 frames over TLS", DEADLINE, || {
        let g = received.lock().unwrap();
        (g.len() == 3).then(|| g.clone())
    })
    .await;
    for (f, it) in frames.iter().zip(&its) {
        check_line(f, it);
    }
    sink.deliver(&its[2..]).await.unwrap();
    let frames = poll("a 4th frame on the same TLS connection", DEADLINE, || {
        let g = received.lock().unwrap();
        (g.len() == 4).then(|| g.clone())
    })
    .await;
    check_line(&frames[3], &its[2]);
    assert_eq!(sink.describe(), format!("syslog+tls://localhost:{port}"));
}

#[tokio::test]
async fn syslog_tls_to_an_untrusted_receiver_is_retry() {
    let tls = test_tls();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(tcp).await;
    });
    let mut sink = config(addr, Transport::Tls).build().unwrap();
    let e = sink.deliver(&items()).await.unwrap_err();
    assert!(matches!(e, SinkError::Retry(_)), "{e}");
}

#[tokio::test]
async fn syslog_tcp_connection_refused_is_retry() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut sink = config(addr, Transport::Tcp).build().unwrap();
    let e = sink.deliver(&items()).await.unwrap_err();
    assert!(matches!(e, SinkError::Retry(_)), "{e}");
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
}

#[test]
fn syslog_sd_values_escape_quote_backslash_and_bracket() {
    let mut m = sample("ddos", 3);
    m.common.nsf_name = r#"fw "a" \b [c]"#.into();
    let it = item(1, Change::State, m);
    let h = Header {
        facility: 20,
        hostname: "sensor-1".into(),
        app_name: "pharos".into(),
        proc_id: "1".into(),
    };
    let line = String::from_utf8(format_line(&h, &it)).unwrap();
    assert!(line.contains(r#"nsf-name="fw \"a\" \\b [c\]""#), "{line}");
    check_line(&line, &it);
}

#[test]
fn syslog_severity_maps_onto_the_syslog_scale() {
    let got: Vec<u8> = Severity::ALL.iter().map(|s| syslog_severity(*s)).collect();
    assert_eq!(got, [6, 5, 4, 3, 2]);
}

#[test]
fn syslog_config_errors_name_the_key() {
    let e = SyslogOutConfig::new("logs.example.net", Transport::Udp)
        .build()
        .unwrap_err();
    assert_eq!(e.key, "syslog.address");
    assert!(e.message.contains("host:port"), "{e}");
    let mut c = SyslogOutConfig::new("[2001:db8::1]:514", Transport::Udp);
    assert_eq!(
        c.build().unwrap().describe(),
        "syslog+udp://[2001:db8::1]:514"
    );
    c.facility = "local9".into();
    assert_eq!(c.build().unwrap_err().key, "syslog.facility");
    c.facility = "3".into();
    c.build().unwrap();
    c.app_name = "has space".into();
    assert_eq!(c.build().unwrap_err().key, "syslog.app_name");
    let c: SyslogOutConfig = serde_json::from_value(serde_json::json!({
        "address": "127.0.0.1:514", "transport": "tls"
    }))
    .unwrap();
    assert_eq!(c.app_name, "pharos");
    assert_eq!(c.facility, "local4");
    assert_eq!(c.max_udp_bytes, 2048);
    assert!(
        serde_json::from_value::<SyslogOutConfig>(serde_json::json!({
            "address": "127.0.0.1:514", "transport": "tcp", "port": 1
        }))
        .is_err()
    );
}

#[test]
fn syslog_config_is_registered_and_writes_its_keys_in_order() {
    assert!(crate::sinks::find("syslog").is_some());
    let mut c = SyslogOutConfig::new("127.0.0.1:514", Transport::Tls);
    c.hostname = Some("h".into());
    crate::sink::assert_keys_round_trip(c);
}
