//! Collector tests over real UDP sockets on 127.0.0.1.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::*;
use crate::test_metrics::{counter, snapshotter};

/// A NetFlow v5 datagram with `n` flows numbered from `seq` (10.0.0.x -> 192.0.2.y, 1 packet each).
pub(crate) fn v5_datagram(seq: u32, n: u16) -> Vec<u8> {
    v5_datagram_at(seq, n, 1_764_000_000_000)
}

/// [`v5_datagram`] exported at `export_ms` (Unix ms by the exporter's clock); every flow ends 5 s
/// before its export.
pub(crate) fn v5_datagram_at(seq: u32, n: u16, export_ms: u64) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let header = V5Header {
        sys_uptime: 100_000,
        unix_secs: (export_ms / 1000) as u32,
        unix_nsecs: (export_ms % 1000) as u32 * 1_000_000,
        flow_sequence: seq,
        ..V5Header::default()
    };
    let records: Vec<V5RecordRepr> = (0..n)
        .map(|i| {
            let k = seq.wrapping_add(u32::from(i));
            V5RecordRepr {
                src_addr: [10, 0, (k >> 8) as u8, k as u8].into(),
                dst_addr: [192, 0, 2, (i % 250) as u8 + 1].into(),
                input: 1,
                output: 2,
                packets: 1,
                octets: 100,
                first: 90_000,
                last: 95_000,
                src_port: 1024 + i,
                dst_port: 443,
                tcp_flags: 0x12,
                proto: 6,
                src_mask: 24,
                dst_mask: 24,
                ..V5RecordRepr::default()
            }
        })
        .collect();
    emit(&header, &records).expect("at most 30 records")
}

fn local_config() -> FlowUdpConfig {
    FlowUdpConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        receive_buffer_bytes: 4 << 20,
        ..FlowUdpConfig::default()
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn datagrams_sent_to_a_listener_arrive_as_batches_and_are_counted() {
    snapshotter();
    let mut c = build(&local_config()).unwrap();
    let to = c.local_addrs()[0];
    let rx = c.take_receiver().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for k in 0..3 {
        tx.send_to(&v5_datagram(k * 30, 30), to).unwrap();
    }
    tx.send_to(b"definitely not a flow export", to).unwrap();

    let mut flows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while flows.len() < 90 && Instant::now() < deadline {
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(50)) {
            flows.extend(b.iter());
        }
    }
    assert_eq!(flows.len(), 90);
    assert!(
        flows
            .iter()
            .all(|f| f.exporter == tx.local_addr().unwrap().ip()
                && f.proto == 6
                && f.dst_port == 443)
    );
    assert_eq!(flows[31].src_addr.to_string(), "10.0.0.31");
    wait_for("the garbage datagram to be counted", || {
        c.stats().dropped_datagrams == 1
    });
    let s = c.stats();
    assert_eq!(
        (s.datagrams, s.records, s.queue_full_records, s.lost),
        (3, 90, 0, 0)
    );

    let l = to.to_string();
    assert_eq!(
        counter(
            "pharos_flow_datagrams_total",
            &[("listener", &l), ("protocol", "netflow_v5")]
        ),
        3
    );
    assert!(counter("pharos_flow_records_total", &[("protocol", "netflow_v5")]) >= 90);
    assert!(counter("pharos_flow_dropped_total", &[("reason", "not_flow")]) >= 1);
    assert_eq!(
        counter("pharos_flow_batches_total", &[("listener", &l)]),
        s.batches
    );
    c.stop();
}

/// A lone datagram (an attack's first, at a low background rate) leaves the listener within
/// about twice FLUSH_AGE, not after the idle read timeout or the next datagram.
#[test]
fn a_lone_datagram_is_handed_on_without_waiting_for_the_idle_timeout() {
    let mut c = build(&FlowUdpConfig {
        read_timeout: Duration::from_secs(5),
        ..local_config()
    })
    .unwrap();
    let to = c.local_addrs()[0];
    let rx = c.take_receiver().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // the first read may still be waiting with the idle timeout: one datagram ends it
    tx.send_to(&v5_datagram(0, 1), to).unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let sent = Instant::now();
    tx.send_to(&v5_datagram(1, 1), to).unwrap();
    let b = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let waited = sent.elapsed();
    assert_eq!(b.len(), 1);
    assert!(
        waited < Duration::from_secs(2),
        "the batch waited {waited:?} (the idle read timeout is 5 s)"
    );
    c.stop();
}

#[test]
fn a_sequence_gap_is_counted_as_lost_for_the_exporter() {
    snapshotter();
    let mut c = build(&local_config()).unwrap();
    let to = c.local_addrs()[0];
    let _rx = c.take_receiver().unwrap();
    let tx =
        UdpSocket::bind("127.0.0.2:0").unwrap_or_else(|_| UdpSocket::bind("127.0.0.1:0").unwrap());
    tx.send_to(&v5_datagram(0, 10), to).unwrap();
    wait_for("the first datagram", || c.stats().datagrams == 1);
    // Flows 10..39 never arrive.
    tx.send_to(&v5_datagram(40, 10), to).unwrap();
    wait_for("the second datagram", || c.stats().datagrams == 2);
    assert_eq!(c.stats().lost, 30);
    let exporter = tx.local_addr().unwrap().ip().to_string();
    assert!(counter("pharos_flow_lost_total", &[("exporter", &exporter)]) >= 30);
}

#[test]
fn a_full_queue_drops_batches_without_blocking_and_counts_them() {
    snapshotter();
    let cfg = FlowUdpConfig {
        queue: 1,
        batch_flows: 30,
        ..local_config()
    };
    let mut c = build(&cfg).unwrap();
    let to = c.local_addrs()[0];
    let rx = c.take_receiver().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for k in 0..20 {
        tx.send_to(&v5_datagram(k * 30, 30), to).unwrap();
        // One datagram per read, so that each makes its own batch.
        wait_for("the datagram to be read", || {
            c.stats().datagrams == u64::from(k) + 1
        });
    }
    // Nobody consumed: one batch sits in the channel, every other one was dropped and counted.
    let s = c.stats();
    assert_eq!(s.records, 600);
    assert_eq!(s.batches, 1, "{s:?}");
    assert_eq!(s.queue_full_records, 570);
    assert_eq!(s.dropped_datagrams, 19);
    assert!(
        counter(
            "pharos_flow_records_dropped_total",
            &[("reason", "queue_full")]
        ) >= 570
    );
    assert_eq!(rx.try_iter().map(|b| b.len()).sum::<usize>(), 30);
    c.stop();
}

#[test]
fn stop_ends_the_socket_threads_quickly_and_closes_the_channel() {
    let cfg = FlowUdpConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()],
        ..local_config()
    };
    // IPv6 may be absent in a container: fall back to IPv4 twice.
    let mut c = build(&cfg)
        .or_else(|_| {
            build(&FlowUdpConfig {
                listen: vec!["127.0.0.1:0".parse().unwrap(); 2],
                ..cfg.clone()
            })
        })
        .unwrap();
    assert_eq!(c.listeners().len(), 2);
    let rx = c.take_receiver().unwrap();
    let t = Instant::now();
    c.stop();
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn binding_a_used_port_fails_naming_the_address_and_the_key() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    let cfg = FlowUdpConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap(), addr],
        ..local_config()
    };
    let e = build(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(&addr.to_string()) && e.contains("[flow] listen") && e.contains("in use"),
        "{e}"
    );
}

#[test]
fn an_empty_listen_list_is_refused() {
    let e = build(&FlowUdpConfig {
        listen: vec![],
        ..local_config()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("[flow] listen is empty"), "{e}");
}

#[test]
fn exporter_clocks_are_estimated_per_exporter_and_their_flows_placed_in_our_time() {
    let year_ms = 31_536_000_000u64;
    let c0 = local_config();
    let clocks = c0.clocks.clone();
    let mut c = build(&c0).unwrap();
    assert_eq!(
        c.clocks(),
        clocks,
        "the collector publishes in the table it was given"
    );
    let to = c.local_addrs()[0];
    let rx = c.take_receiver().unwrap();
    let behind = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ahead = UdpSocket::bind("127.0.0.2:0").unwrap();
    let synced = UdpSocket::bind("127.0.0.3:0").unwrap();
    let mut flows = Vec::new();
    let mut sent_from = 0;
    let mut sent_to = 0;
    for k in 0..5u32 {
        sent_from = if k == 0 { now_ms() } else { sent_from };
        behind
            .send_to(&v5_datagram_at(k * 10, 10, now_ms() - year_ms), to)
            .unwrap();
        ahead
            .send_to(&v5_datagram_at(k * 10, 10, now_ms() + 90_000), to)
            .unwrap();
        synced
            .send_to(&v5_datagram_at(k * 10, 10, now_ms()), to)
            .unwrap();
        sent_to = now_ms();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while flows.len() < 150 && Instant::now() < deadline {
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(50)) {
            flows.extend(b.iter());
        }
    }
    let received_to = now_ms();
    assert_eq!(flows.len(), 150);
    // every flow ended 5 s before its export, by our clock, whatever the exporter's clock says
    for f in &flows {
        assert!(
            f.end_ms + 5_000 >= sent_from.saturating_sub(50) && f.end_ms + 5_000 <= received_to,
            "{f:?} sent {sent_from}..{sent_to}"
        );
        assert_eq!(f.end_ms - f.start_ms, 5_000);
    }
    wait_for("three exporter clocks", || clocks.snapshot().len() == 3);
    wait_for("five datagrams each", || {
        clocks.snapshot().iter().all(|c| c.datagrams == 5)
    });
    let got: Vec<(String, i64, bool)> = clocks
        .snapshot()
        .iter()
        .map(|c| (c.exporter.to_string(), c.offset_ms, c.correction_ms != 0))
        .collect();
    let near = |v: i64, want: i64| (v - want).abs() < 2_000;
    assert_eq!(got[0].0, "127.0.0.1");
    assert!(near(got[0].1, -(year_ms as i64)) && got[0].2, "{got:?}");
    assert_eq!(got[1].0, "127.0.0.2");
    assert!(near(got[1].1, 90_000) && got[1].2, "{got:?}");
    assert_eq!(got[2].0, "127.0.0.3");
    assert!(near(got[2].1, 0) && !got[2].2, "{got:?}");
}

#[test]
fn the_decode_backlog_is_bounded_and_what_it_refuses_is_counted() {
    // The budget holds one read at a time: whatever arrives while the decoder still holds a read
    // is refused whole. Every datagram sent is either decoded or counted as a backlog drop (the
    // receive queue is large enough that the kernel drops none).
    snapshotter();
    let cfg = FlowUdpConfig {
        backlog_bytes: 1,
        ..local_config()
    };
    let mut c = build(&cfg).unwrap();
    let to = c.local_addrs()[0];
    let rx = c.take_receiver().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let before = counter("pharos_flow_dropped_total", &[("reason", "backlog")]);
    for k in 0..400u32 {
        tx.send_to(&v5_datagram(k * 30, 30), to).unwrap();
    }
    wait_for("every datagram to be decoded or refused", || {
        let s = c.stats();
        s.datagrams + s.backlog_drops == 400
    });
    let s = c.stats();
    assert_eq!(s.kernel_drops, 0, "{s:?}");
    assert_eq!(s.records, s.datagrams * 30, "{s:?}");
    assert_eq!(s.dropped_datagrams, s.backlog_drops, "{s:?}");
    assert_eq!(
        counter("pharos_flow_dropped_total", &[("reason", "backlog")]) - before,
        s.backlog_drops
    );
    c.stop();
    assert_eq!(
        rx.try_iter().map(|b| b.len() as u64).sum::<u64>(),
        s.records
    );
}

#[test]
fn the_default_backlog_follows_the_machines_memory_within_bounds() {
    let b = default_backlog_bytes();
    assert!((64 << 20..=1 << 30).contains(&b), "{b}");
    assert_eq!(FlowUdpConfig::default().backlog_bytes, b);
}

/// A NetFlow v9 datagram from source id 7: template 300 (IPv4 src, dst, protocol, bytes,
/// packets) if `template`, then `n` data records of it.
fn v9_datagram(seq: u32, template: bool, n: u8) -> Vec<u8> {
    let mut sets = Vec::new();
    if template {
        let mut b = Vec::new();
        for v in [0u16, 4 + 4 + 5 * 4, 300, 5, 8, 4, 12, 4, 4, 1, 1, 4, 2, 4] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        sets.extend(b);
    }
    if n > 0 {
        let mut b = Vec::new();
        b.extend_from_slice(&300u16.to_be_bytes());
        b.extend_from_slice(&(4 + 17 * n as u16).to_be_bytes());
        for i in 0..n {
            b.extend_from_slice(&[10, 9, 0, i, 198, 51, 100, 1, 17]);
            b.extend_from_slice(&1000u32.to_be_bytes());
            b.extend_from_slice(&2u32.to_be_bytes());
        }
        sets.extend(b);
    }
    let mut d = Vec::new();
    d.extend_from_slice(&9u16.to_be_bytes());
    d.extend_from_slice(&(template as u16 + n as u16).to_be_bytes());
    d.extend_from_slice(&100_000u32.to_be_bytes());
    d.extend_from_slice(&((now_ms() / 1000) as u32).to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&7u32.to_be_bytes());
    d.extend(sets);
    d
}

/// Two collectors with template shares (what `pharos_cluster::templates` connects through
/// the key-value bucket, relayed by hand here): an exporter that sent its template only to the
/// first is decoded by the second from its data-only datagrams.
#[test]
fn a_collector_decodes_an_exporter_whose_template_reached_another_collector() {
    let share_a = TemplateShare::new();
    let share_b = TemplateShare::new();
    let mut a = build(&FlowUdpConfig {
        templates: Some(share_a.clone()),
        ..local_config()
    })
    .unwrap();
    let mut b = build(&FlowUdpConfig {
        templates: Some(share_b.clone()),
        ..local_config()
    })
    .unwrap();
    let (rx_a, rx_b) = (a.take_receiver().unwrap(), b.take_receiver().unwrap());
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(&v9_datagram(1, true, 3), a.local_addrs()[0])
        .unwrap();
    let got = rx_a.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.len(), 3);
    let learned = share_a.take_learned();
    assert_eq!(learned.len(), 1, "{learned:?}");
    for e in learned {
        share_b.receive(&e.key, &e.value).unwrap();
    }
    tx.send_to(&v9_datagram(2, false, 4), b.local_addrs()[0])
        .unwrap();
    let got = rx_b.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.len(), 4);
    let f = got.get(3);
    assert_eq!(
        (f.src_addr.to_string(), f.proto, f.bytes, f.packets),
        ("10.9.0.3".to_string(), 17, 1000, 2)
    );
    assert_eq!(b.stats().lost, 0, "sequence state is not shared");
    a.stop();
    b.stop();
}
