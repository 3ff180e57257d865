//! Listener tests over real sockets into a real (temporary) message store.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pharos_store::inventory::{Inventory, NsfConfig};
use pharos_store::writer::{StoreWriter, WriterConfig};
use pharos_store::{MessageQuery, MessageStore, SqliteStore};

use super::*;

fn settings(extra: impl FnOnce(&mut SyslogConfig)) -> Settings {
    let mut c = SyslogConfig {
        udp: "127.0.0.1:0".into(),
        tcp: "127.0.0.1:0".into(),
        ..SyslogConfig::default()
    };
    extra(&mut c);
    c.settings(&[]).unwrap()
}

async fn wait_for(store: &Arc<dyn MessageStore>, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.count().unwrap() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages stored",
            store.count().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_tcp_lines_are_stored_and_senders_registered() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MessageStore> =
        Arc::new(SqliteStore::open(&dir.path().join("m.db")).unwrap());
    let (writer, thread) = StoreWriter::spawn(store.clone(), WriterConfig::default());
    let nsf = NsfConfig {
        name: "bastion".into(),
        addresses: vec![],
        hostnames: vec!["bastion".into()],
        vendor: Some("OpenBSD".into()),
        model: None,
        nsf_type: Some("server".into()),
        parser: "auto".into(),
    };
    let inv = Arc::new(Inventory::open(&dir.path().join("nsfs.db"), &[nsf]).unwrap());
    let h = start(settings(|c| c.max_message_bytes = 512), inv.clone(), writer)
        .await
        .unwrap();
    let udp = h
        .addrs()
        .iter()
        .find(|(t, _)| *t == Transport::Udp)
        .unwrap()
        .1;
    let tcp = h
        .addrs()
        .iter()
        .find(|(t, _)| *t == Transport::Tcp)
        .unwrap()
        .1;

    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"<38>Nov 24 14:00:03 bastion sshd[1]: Accepted publickey for deploy from 192.0.2.33 port 40112 ssh2\n", udp).unwrap();
    let mut c = std::net::TcpStream::connect(tcp).unwrap();
    let line = "<13>1 2026-11-24T14:00:00Z other app - - - nothing to see here";
    write!(c, "{} {line}", line.len()).unwrap();
    write!(c, "{} {}", 600, "x".repeat(600)).unwrap();
    c.flush().unwrap();
    drop(c);
    wait_for(&store, 3).await;
    h.shutdown().await;
    thread.join();

    let page = store.query(&MessageQuery::default()).unwrap();
    let names: Vec<&str> = page
        .items
        .iter()
        .map(|m| m.message.common.nsf_name.as_str())
        .collect();
    assert!(
        names.contains(&"bastion") && names.contains(&"127.0.0.1"),
        "{names:?}"
    );
    let truncated = page
        .items
        .iter()
        .find(|m| {
            m.message
                .common
                .raw
                .as_deref()
                .is_some_and(|r| r.starts_with("xxx"))
        })
        .unwrap();
    assert_eq!(truncated.message.common.raw.as_ref().unwrap().len(), 512);
    let src = page
        .items
        .iter()
        .find(|m| m.message.common.nsf_name == "bastion")
        .unwrap();
    assert_eq!(
        src.message.common.source.as_deref(),
        Some("syslog-udp:127.0.0.1")
    );
    assert_eq!(src.message.common.vendor_name.as_deref(), Some("OpenBSD"));
    let list = inv.list();
    let b = list.iter().find(|e| e.name == "bastion").unwrap();
    assert_eq!(b.received, 1);
    let auto = list.iter().find(|e| e.name == "127.0.0.1").unwrap();
    assert!(!auto.configured);
    assert_eq!(auto.received, 2);
    assert_eq!(auto.unparsed, 2);
    // Written at shutdown: a new inventory on the same file sees the counts.
    let again = Inventory::open(&dir.path().join("nsfs.db"), &[]).unwrap();
    assert_eq!(
        again
            .list()
            .iter()
            .find(|e| e.name == "127.0.0.1")
            .unwrap()
            .received,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_peer_limit_are_refused_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MessageStore> =
        Arc::new(SqliteStore::open(&dir.path().join("m.db")).unwrap());
    let (writer, thread) = StoreWriter::spawn(store.clone(), WriterConfig::default());
    let inv = Arc::new(Inventory::in_memory(&[]));
    let h = start(
        settings(|c| {
            c.udp = String::new();
            c.max_connections_per_peer = 1;
            c.idle_timeout_secs = 1;
        }),
        inv,
        writer,
    )
    .await
    .unwrap();
    let tcp = h.addrs()[0].1;
    let mut first = std::net::TcpStream::connect(tcp).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut second = std::net::TcpStream::connect(tcp).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    use std::io::Read;
    assert_eq!(
        second.read(&mut buf).unwrap_or(0),
        0,
        "second connection must be closed by the server"
    );
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        first.read(&mut buf).unwrap_or(0),
        0,
        "idle connection must be closed after idle_timeout_secs"
    );
    let _ = first.write_all(b"<13>late\n");
    h.shutdown().await;
    thread.join();
}

#[test]
fn settings_errors_name_the_key() {
    let e = SyslogConfig {
        timezone: "Europe/Paris".into(),
        ..SyslogConfig::default()
    }
    .settings(&[])
    .unwrap_err();
    assert!(
        e.to_string().contains("timezone") && e.to_string().contains("+01:00"),
        "{e}"
    );
    let e = SyslogConfig {
        udp: "nope".into(),
        ..SyslogConfig::default()
    }
    .settings(&[])
    .unwrap_err();
    assert!(e.to_string().contains("[syslog] udp"), "{e}");
    let e = SyslogConfig {
        default_parser: "nope".into(),
        ..SyslogConfig::default()
    }
    .settings(&[])
    .unwrap_err();
    assert!(
        e.to_string().contains("default_parser") && e.to_string().contains("fortigate"),
        "{e}"
    );
    let n = NsfConfig {
        name: "a".into(),
        addresses: vec!["10.0.0.1".into()],
        hostnames: vec![],
        vendor: None,
        model: None,
        nsf_type: None,
        parser: "bogus".into(),
    };
    let e = SyslogConfig::default().settings(&[n]).unwrap_err();
    assert!(
        e.to_string().contains("[[nsf]] #1") && e.to_string().contains("bogus"),
        "{e}"
    );
}

#[test]
fn tls_files_that_cannot_be_used_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TlsConfig {
        listen: "127.0.0.1:0".into(),
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing.key"),
        client_ca: None,
        require_client_cert: true,
        handshake_timeout_secs: 10,
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
}
