use std::sync::Mutex;

use pharos_model::flow::FlowRecord;

use super::*;

/// A batch of `n` flows whose `in_if` is `id` (to recognise it downstream).
fn batch(id: u32, n: usize) -> FlowBatch {
    let mut b = FlowBatch::new();
    for _ in 0..n {
        b.push(&FlowRecord {
            src_addr: "10.0.0.1".parse().unwrap(),
            dst_addr: "198.51.100.10".parse().unwrap(),
            in_if: id,
            packets: 1,
            bytes: 100,
            ..FlowRecord::default()
        });
    }
    b
}

/// What a recording consumer saw.
#[derive(Default)]
struct Seen {
    /// Set when a gated consumer is blocked in its first `take`.
    blocked: bool,
    ids: Vec<u32>,
    ticks: u64,
    finished: bool,
}

/// A consumer that records the batches; with a gate, blocks in its first `take` until the gate
/// is released (an archive whose disk stalls).
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    gate: Option<Receiver<()>>,
}

impl Consumer for Recorder {
    fn take(&mut self, b: &FlowBatch) {
        if let Some(g) = self.gate.take() {
            self.seen.lock().unwrap().blocked = true;
            let _ = g.recv();
        }
        self.seen.lock().unwrap().ids.push(b.in_if[0]);
    }
    fn tick(&mut self) {
        self.seen.lock().unwrap().ticks += 1;
    }
    fn finish(&mut self) {
        self.seen.lock().unwrap().finished = true;
    }
}

fn recorder(
    name: &'static str,
    queue: usize,
    gate: Option<Receiver<()>>,
) -> (ConsumerSpec, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let spec = ConsumerSpec {
        name,
        queue,
        archive: name == "archive",
        consumer: Box::new(Recorder {
            seen: seen.clone(),
            gate,
        }),
    };
    (spec, seen)
}

/// Polls `f` until it holds, for at most 10 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_blocked_archive_delays_neither_detection_nor_the_taps_and_its_losses_are_its_own() {
    let (tx, rx) = mpsc::sync_channel(10_000);
    let (gate_tx, gate_rx) = mpsc::channel();
    let (archive, archive_seen) = recorder("archive", 4, Some(gate_rx));
    let (taps, taps_seen) = recorder("taps", 1000, None);
    let (detect_tx, detect_rx) = mpsc::sync_channel(1000);
    let stage = FlowStage::start(
        rx,
        vec![archive, taps],
        Some(detect_tx),
        LossReport::new(None),
    )
    .unwrap();

    // The archive blocks in its first batch (waited for, so that its queue then holds exactly
    // the next 4). Every batch still reaches detection at once.
    let n = 200u32;
    let mut latency = Duration::ZERO;
    for id in 0..n {
        if id == 1 {
            eventually("the archive to block in its first batch", || {
                archive_seen.lock().unwrap().blocked
            });
        }
        let sent = Instant::now();
        tx.send(batch(id, 3)).unwrap();
        let got = detect_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("detection gets every batch while the archive is blocked");
        latency = latency.max(sent.elapsed());
        assert_eq!(got.in_if[0], id, "in order");
    }
    // (the archive stays blocked for the whole loop: waiting on it would never end)
    assert!(
        latency < Duration::from_secs(5),
        "detection waited {latency:?} on a blocked archive"
    );
    eventually("the taps to see every batch", || {
        taps_seen.lock().unwrap().ids.len() == n as usize
    });
    // The archive took its first batch (blocked in it) and its queue of 4; the rest is its loss
    // only, counted.
    eventually("the archive's queue to be full", || {
        stage.dropped_batches("archive") == Some(u64::from(n) - 5)
    });
    assert_eq!(stage.dropped_batches("taps"), Some(0));
    assert_eq!(stage.dropped_batches("detect"), Some(0));
    assert!(archive_seen.lock().unwrap().ids.is_empty(), "still blocked");

    // Released, it takes what it queued; the stage ends once the collectors' channel closes.
    gate_tx.send(()).unwrap();
    drop(tx);
    stage.join();
    let a = archive_seen.lock().unwrap();
    assert_eq!(a.ids, vec![0, 1, 2, 3, 4]);
    assert!(a.finished);
    let t = taps_seen.lock().unwrap();
    assert!(t.finished);
    assert_eq!(t.ids, (0..n).collect::<Vec<_>>());
    assert!(
        detect_rx.recv().is_err(),
        "the detection queue closes with the stage (detection then finishes its attacks)"
    );
}

#[test]
fn a_full_detection_queue_costs_detection_only_and_every_consumer_ticks_while_idle() {
    let (tx, rx) = mpsc::sync_channel(100);
    let (archive, archive_seen) = recorder("archive", 100, None);
    // Detection never reads: its queue of 2 fills.
    let (detect_tx, _detect_rx) = mpsc::sync_channel(2);
    let stage =
        FlowStage::start(rx, vec![archive], Some(detect_tx), LossReport::new(None)).unwrap();
    for id in 0..10 {
        tx.send(batch(id, 1)).unwrap();
    }
    eventually("the archive to see every batch", || {
        archive_seen.lock().unwrap().ids.len() == 10
    });
    eventually("detection's losses to be counted", || {
        stage.dropped_batches("detect") == Some(8)
    });
    assert_eq!(stage.dropped_batches("archive"), Some(0));
    // Ticks come without batches (the archive cuts its segments there).
    let before = archive_seen.lock().unwrap().ticks;
    eventually("ticks while idle", || {
        archive_seen.lock().unwrap().ticks >= before + 3
    });
    drop(tx);
    stage.join();
    assert!(archive_seen.lock().unwrap().finished);
}
