use std::sync::{Arc, Mutex};

use pharos_model::flow::FlowRecord;

use super::*;

const T0: u64 = 1_764_000_000_000;

fn rec(i: u32, v6: bool) -> FlowRecord {
    let (src, dst) = if v6 {
        (
            format!("2001:db8::{:x}", i + 1).parse().unwrap(),
            "::ffff:198.51.100.7".parse().unwrap(),
        )
    } else {
        (
            format!("10.0.{}.{}", i / 256, i % 256).parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        )
    };
    FlowRecord {
        exporter: "192.0.2.1".parse().unwrap(),
        domain: 7,
        in_if: i % 5,
        out_if: 2,
        src_addr: src,
        dst_addr: dst,
        src_port: 1024 + i as u16,
        dst_port: 443,
        proto: 6,
        tcp_flags: 0x12,
        tos: 4,
        packets: u64::from(i) + 1,
        bytes: u64::MAX - u64::from(i),
        start_ms: T0 - 5000 + u64::from(i),
        end_ms: T0 + u64::from(i),
        src_as: 64_496,
        dst_as: 0,
        src_mask: 24,
        dst_mask: 0,
        next_hop: i.is_multiple_of(2).then(|| "2001:db8::fe".parse().unwrap()),
        vlan: i.is_multiple_of(3).then_some(i as u16 % 4096),
        direction: i.is_multiple_of(4).then_some(1),
        sampling_rate: 1,
        icmp_type: 0,
        icmp_code: 0,
        end_reason: i.is_multiple_of(5).then_some(2),
    }
}

fn batch(n: u32, v6: bool) -> FlowBatch {
    let mut b = FlowBatch::new();
    for i in 0..n {
        b.push(&rec(i, v6));
    }
    b
}

fn config(root: &Path) -> SegmentConfig {
    SegmentConfig {
        retention: Duration::ZERO,
        ..SegmentConfig::new(root)
    }
}

#[test]
fn segment_round_trip_equals_input_for_ipv4_ipv6_and_absent_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    let mut input = batch(300, false);
    input.extend_from(&batch(200, true));
    input.push(&FlowRecord::default());
    w.push(&input, T0);
    let info = w.flush(T0 + 1000).unwrap().expect("a segment");
    assert_eq!(
        info.path,
        tmp.path()
            .join(format!("2025/11/24/16/{T0}-{}.parquet", T0 + 1000))
    );
    assert_eq!(w.pending(), 0);
    let back = read_segment(&info.path).unwrap();
    assert_eq!(back, input);
    assert!(back.get(300).src_addr.is_ipv6());
    assert!(back.get(300).dst_addr.is_ipv6(), "::ffff: IPv6 stays IPv6");
    assert!(back.get(0).src_addr.is_ipv4());
    assert_eq!(back.get(500), FlowRecord::default());
    // Nothing written when nothing is pending.
    assert!(w.flush(T0 + 5000).unwrap().is_none());
}

#[test]
fn segment_metadata_has_statistics_zstd_and_flow_time_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(SegmentConfig {
        row_group_rows: 100,
        ..config(tmp.path())
    })
    .unwrap();
    w.push(&batch(250, false), T0);
    let info = w.flush(T0 + 10).unwrap().unwrap();
    let f = File::open(&info.path).unwrap();
    let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let md = b.metadata();
    assert_eq!(md.num_row_groups(), 3);
    let rg = md.row_group(0);
    let schema = flow_schema();
    let end_idx = schema.index_of(col::END_TIME).unwrap();
    let c = rg.column(end_idx);
    assert!(
        matches!(c.compression(), Compression::ZSTD(_)),
        "{:?}",
        c.compression()
    );
    assert!(c.statistics().is_some_and(|s| s.min_bytes_opt().is_some()));
    let kv = md.file_metadata().key_value_metadata().unwrap();
    let get = |k: &str| kv.iter().find(|x| x.key == k).and_then(|x| x.value.clone());
    assert_eq!(get("pharos.min_end_ms"), Some(T0.to_string()));
    assert_eq!(get("pharos.max_end_ms"), Some((T0 + 249).to_string()));
}

#[test]
fn tick_rotates_after_the_segment_length_and_names_stay_ordered() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    w.push(&batch(10, false), T0);
    w.tick(T0 + 499);
    assert_eq!(w.pending(), 10, "not yet half a second old");
    w.tick(T0 + 500);
    w.wait_encoders(T0 + 500);
    assert_eq!(w.pending(), 0);
    // The encoders write one-second segments uncompressed (the minute's merge compresses).
    let first = w.segments().next().unwrap().path.clone();
    let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&first).unwrap())
        .unwrap()
        .metadata()
        .clone();
    assert_eq!(
        meta.row_group(0).column(0).compression(),
        parquet::basic::Compression::UNCOMPRESSED
    );
    // A second segment in the same millisecond still gets a later, unique name.
    w.push(&batch(5, true), T0 + 1000);
    w.flush(T0 + 1000).unwrap();
    let segs = list_segments(tmp.path());
    assert_eq!(segs.len(), 2);
    assert!(segs[0].end_ms < segs[1].start_ms);
    // Reopening continues after the last segment and knows the existing ones.
    drop(w);
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    assert_eq!(w.segments().count(), 2);
    w.push(&batch(1, false), T0);
    let third = w.flush(T0).unwrap().unwrap();
    assert!(third.start_ms > segs[1].end_ms);
}

#[test]
fn a_segment_appears_only_complete_under_its_final_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    w.set_before_rename(move |tmp_path| {
        // The temp file is complete and readable; no final name exists yet.
        let dir = tmp_path.parent().unwrap();
        let finals: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_str().unwrap().ends_with(".parquet"))
            .collect();
        let name = tmp_path.file_name().unwrap().to_str().unwrap().to_string();
        let rows = read_segment(tmp_path).map(|b| b.len()).unwrap_or(0);
        s.lock().unwrap().push((name, finals.len(), rows));
    });
    w.push(&batch(42, false), T0);
    let info = w.flush(T0 + 1000).unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (name, finals, rows) = &seen[0];
    assert!(
        name.starts_with('.') && name.ends_with(".parquet.tmp"),
        "{name}"
    );
    assert_eq!((*finals, *rows), (0, 42));
    assert!(info.path.is_file());
    assert!(
        !info.path.with_file_name(name).exists(),
        "temp file renamed away"
    );

    // A temp file left by a crash is deleted at start-up; finished segments are kept.
    let stale = info.path.with_file_name(".1-2.parquet.tmp");
    fs::write(&stale, b"partial").unwrap();
    drop(w);
    let w = SegmentWriter::open(config(tmp.path())).unwrap();
    assert!(!stale.exists());
    assert_eq!(w.segments().count(), 1);
}

fn writer_keeping_two_hours(root: &Path) -> SegmentWriter {
    SegmentWriter::open(SegmentConfig {
        retention: Duration::from_secs(2 * 3600),
        ..config(root)
    })
    .unwrap()
}

#[test]
fn retention_by_age_then_by_budget_deletes_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let mut w = writer_keeping_two_hours(tmp.path());
    for k in 0..5 {
        w.push(&batch(100, k % 2 == 1), T0 + k * hour);
        w.flush(T0 + k * hour + 1000).unwrap().unwrap();
    }
    let all = list_segments(tmp.path());
    assert_eq!(all.len(), 5);
    // Now = 4 h after T0: segments ending before 2 h ago (k = 0, 1) go.
    w.apply_retention(T0 + 4 * hour + 1000);
    let left = list_segments(tmp.path());
    assert_eq!(left, all[2..].to_vec());
    assert!(
        !all[0].path.parent().unwrap().exists(),
        "empty hour directories are removed"
    );
    // A budget for a bit more than two segments keeps the two newest.
    let budget = left[1].bytes + left[2].bytes + 10;
    let mut w = SegmentWriter::open(SegmentConfig {
        disk_budget: budget,
        ..config(tmp.path())
    })
    .unwrap();
    w.apply_retention(T0 + 4 * hour + 2000);
    assert_eq!(list_segments(tmp.path()), left[1..].to_vec());
    assert!(w.disk_bytes() <= budget);
}

#[test]
fn a_failed_write_is_counted_holds_the_flows_spills_beyond_the_budget_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the year directory should be: create_dir_all fails, also for root.
    let blocker = tmp.path().join("2025");
    fs::write(&blocker, b"not a directory").unwrap();
    let mut w = SegmentWriter::open(SegmentConfig {
        memory_budget: 150 * FLOW_BYTES,
        ..config(tmp.path())
    })
    .unwrap();
    w.push(&batch(100, false), T0);
    let e = w.flush(T0 + 1000).unwrap_err();
    assert!(e.to_string().contains("2025"), "{e}");
    assert!(w.failing);
    assert_eq!(w.write_errors(), 1);
    assert_eq!(w.pending(), 100, "held for the retry");
    assert_eq!(w.memory_bytes(), 100 * FLOW_BYTES);
    // Beyond the budget the flows go to a spill file, the held ones first (arrival order kept);
    // none is dropped.
    w.push(&batch(100, true), T0 + 1500);
    assert_eq!((w.pending(), w.spilled(), w.dropped()), (0, 200, 0));
    w.tick(T0 + 2600);
    w.wait_encoders(T0 + 2600);
    assert_eq!(w.write_errors(), 2, "still failing");
    assert_eq!((w.pending(), w.spilled(), w.dropped()), (0, 200, 0));
    assert!(list_segments(tmp.path()).is_empty());

    fs::remove_file(&blocker).unwrap();
    w.tick(T0 + 4000);
    w.wait_encoders(T0 + 4000);
    w.tick(T0 + 4000);
    w.wait_encoders(T0 + 4000);
    assert_eq!((w.pending(), w.spilled(), w.dropped()), (0, 0, 0));
    assert!(!w.failing);
    let mut want = batch(100, false);
    want.extend_from(&batch(100, true));
    assert_eq!(archive_rows(tmp.path()), want);
    assert_eq!(
        fs::read_dir(tmp.path().join(".spill")).unwrap().count(),
        0,
        "written spill files are deleted"
    );
}

/// Pushes `n` batches of `per` flows, 10 ms apart from `at`.
fn push_many(w: &mut SegmentWriter, at: u64, n: u32, per: u32) -> FlowBatch {
    let mut all = FlowBatch::new();
    for k in 0..n {
        let b = batch(per, k % 2 == 1);
        w.push(&b, at + u64::from(k) * 10);
        all.extend_from(&b);
    }
    all
}

/// Every flow of the archive under `root`, in segment order.
fn archive_rows(root: &Path) -> FlowBatch {
    let mut out = FlowBatch::new();
    for s in list_segments(root) {
        out.extend_from(&read_segment(&s.path).unwrap());
    }
    out
}

#[test]
fn the_memory_budget_is_counted_in_bytes_and_beyond_it_flows_spill_then_catch_up_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(SegmentConfig {
        memory_budget: 100 * FLOW_BYTES,
        ..config(tmp.path())
    })
    .unwrap();
    // Up to the budget the flows stay in memory.
    let mut want = push_many(&mut w, T0, 2, 50);
    assert_eq!(
        (w.pending(), w.memory_bytes(), w.spilled()),
        (100, 100 * FLOW_BYTES, 0)
    );
    // One more flow would exceed it: the pending flows and every later one go to the spill
    // file until it is cut, so that arrival order is kept.
    want.extend_from(&push_many(&mut w, T0 + 100, 10, 50));
    assert_eq!((w.pending(), w.memory_bytes(), w.spilled()), (0, 0, 600));
    assert!(tmp.path().join(".spill").is_dir());
    // The spill is cut like a segment after a second and written by the idle encoders.
    w.tick(T0 + 1100);
    w.wait_encoders(T0 + 1100);
    assert_eq!((w.spilled(), w.dropped()), (0, 0));
    // Memory again once the spill file is closed.
    want.extend_from(&push_many(&mut w, T0 + 1200, 1, 10));
    assert_eq!(w.pending(), 10);
    w.tick(T0 + 2200);
    w.wait_encoders(T0 + 2200);
    assert_eq!(archive_rows(tmp.path()), want);
    let segs = list_segments(tmp.path());
    assert_eq!(segs.len(), 2);
    assert!(segs[0].end_ms < segs[1].start_ms);
}

#[test]
fn spill_files_left_by_a_stop_are_written_after_the_next_open_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("2025");
    fs::write(&blocker, b"not a directory").unwrap();
    let cfg = SegmentConfig {
        memory_budget: 10 * FLOW_BYTES,
        ..config(tmp.path())
    };
    let mut w = SegmentWriter::open(cfg.clone()).unwrap();
    let want = push_many(&mut w, T0, 4, 30);
    assert_eq!(w.spilled(), 120);
    // Cut and closed, but its segment cannot be written: the spill file stays.
    w.tick(T0 + 1100);
    w.wait_encoders(T0 + 1100);
    assert_eq!(w.spilled(), 120);
    drop(w);
    fs::remove_file(&blocker).unwrap();
    // A crash after a spill file's segment was written and before its deletion: a copy of
    // the spill file whose start names the segment must not be written twice.
    let mut w = SegmentWriter::open(cfg.clone()).unwrap();
    assert_eq!(w.spilled(), 120, "adopted");
    let spill = fs::read_dir(tmp.path().join(".spill"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let copy = tmp.path().join("spill-copy");
    fs::copy(&spill, &copy).unwrap();
    w.tick(T0 + 5000);
    w.wait_encoders(T0 + 5000);
    assert_eq!(w.spilled(), 0);
    assert_eq!(archive_rows(tmp.path()), want);
    drop(w);
    fs::rename(&copy, &spill).unwrap();
    let w = SegmentWriter::open(cfg).unwrap();
    assert_eq!(
        w.spilled(),
        0,
        "the written spill file is deleted, not adopted"
    );
    assert!(!spill.exists());
    assert_eq!(archive_rows(tmp.path()), want);
}

#[test]
fn a_failing_spill_drops_only_the_flows_beyond_the_budget_counted_by_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(SegmentConfig {
        memory_budget: 100 * FLOW_BYTES,
        ..config(tmp.path())
    })
    .unwrap();
    w.inject_spill_error(Some(io::ErrorKind::StorageFull));
    // 100 fit in memory; the next 50 would spill, the "full disk" refuses: those 50 are
    // dropped as disk_full, the 100 stay in memory.
    let kept = push_many(&mut w, T0, 2, 50);
    push_many(&mut w, T0 + 100, 1, 50);
    assert_eq!((w.pending(), w.dropped()), (100, 50));
    assert_eq!(w.dropped_for(DropReason::DiskFull), 50);
    // For a segment length no spill is tried: flows beyond the budget are dropped at once.
    w.push(&batch(101, false), T0 + 200);
    assert_eq!(w.dropped_for(DropReason::DiskFull), 151);
    assert!(!tmp.path().join(".spill").read_dir().unwrap().any(|_| true));
    // The flows in memory are written as usual.
    w.tick(T0 + 1300);
    w.wait_encoders(T0 + 1300);
    assert_eq!(archive_rows(tmp.path()), kept);
    // Another kind of failure is counted as write_error.
    w.inject_spill_error(Some(io::ErrorKind::PermissionDenied));
    w.push(&batch(100, false), T0 + 1400);
    w.push(&batch(1, false), T0 + 1400);
    assert_eq!(w.pending(), 100);
    assert_eq!(w.dropped_for(DropReason::WriteError), 1);
    assert_eq!(w.dropped(), 152);
    // Once spilling works again, nothing more is lost.
    w.inject_spill_error(None);
    w.push(&batch(1, false), T0 + 2500);
    assert_eq!((w.spilled(), w.dropped()), (101, 152));
}

#[test]
fn pyarrow_reads_a_segment_with_the_documented_columns() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        pharos_model::conformance::skip(
            "pyarrow is not installed (pip install --break-system-packages pyarrow; scripts/test.sh does it)",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    let mut input = batch(70, false);
    input.extend_from(&batch(30, true));
    w.push(&input, T0);
    let info = w.flush(T0 + 1000).unwrap().unwrap();
    let script = r#"
import sys, ipaddress, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(",".join(t.column_names))
print(t.num_rows)
print(str(t.schema.field("end_time").type), str(t.schema.field("bytes").type), str(t.schema.field("src_addr").type))
print(ipaddress.ip_address(t.column("src_addr")[0].as_py()).ipv4_mapped)
print(t.column("vlan").null_count)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&info.path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<String> = flow_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(lines[0], names.join(","));
    assert_eq!(lines[1], "100");
    assert_eq!(
        lines[2],
        "timestamp[ms, tz=UTC] uint64 fixed_size_binary[16]"
    );
    assert_eq!(lines[3], "10.0.0.0");
    let vlan_nulls = (0..100).filter(|i| (i % 70) % 3 != 0).count();
    assert_eq!(lines[4], vlan_nulls.to_string());
}

const MINUTE: u64 = 60_000;

/// Writes one segment per second for `secs` seconds from `at`, of `per` flows each (alternating
/// IPv4 and IPv6, distinct contents); returns the segments written.
fn write_seconds(w: &mut SegmentWriter, at: u64, secs: u64, per: u32) -> Vec<SegmentInfo> {
    (0..secs)
        .map(|k| {
            let mut b = batch(per + k as u32, k % 2 == 1);
            b.truncate(per as usize);
            w.push(&b, at + k * 1000);
            w.flush(at + k * 1000 + 999).unwrap().unwrap()
        })
        .collect()
}

fn rows_in(segs: &[SegmentInfo]) -> usize {
    segs.iter()
        .map(|s| read_segment(&s.path).unwrap().len())
        .sum()
}

fn footer(path: &Path, key: &str) -> Option<String> {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let kv = b.metadata().file_metadata().key_value_metadata()?.clone();
    kv.into_iter().find(|x| x.key == key).and_then(|x| x.value)
}

#[test]
fn merging_a_finished_minute_equals_the_concatenation_of_its_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(SegmentConfig {
        row_group_rows: 100,
        ..config(tmp.path())
    })
    .unwrap();
    let inputs = write_seconds(&mut w, T0 + 500, 12, 30);
    let next = write_seconds(&mut w, T0 + MINUTE + 2000, 2, 7);
    let mut want = FlowBatch::new();
    for s in &inputs {
        want.extend_from(&read_segment(&s.path).unwrap());
    }
    // Not before the grace after the minute, nor while flows of the minute are pending.
    assert!(w.compact(T0 + MINUTE + 9_999).is_empty());
    w.push(&batch(3, false), T0 + 59_000);
    assert!(w.compact(T0 + 2 * MINUTE).is_empty());
    w.pending = FlowBatch::new();
    w.pending_since = None;

    let merged = w.compact(T0 + MINUTE + 10_000);
    assert_eq!(
        merged.len(),
        1,
        "only the first minute has two segments left"
    );
    let m = &merged[0];
    let (first, last) = (&inputs[0], &inputs[inputs.len() - 1]);
    assert_eq!(
        m.path,
        first
            .path
            .with_file_name(format!("{}-{}.parquet", first.start_ms, last.end_ms))
    );
    assert_eq!(read_segment(&m.path).unwrap(), want);
    assert!(inputs.iter().all(|s| !s.path.exists()), "inputs deleted");
    let mut live = vec![m.clone()];
    live.extend(next.iter().cloned());
    assert_eq!(list_segments(tmp.path()), live);
    assert_eq!(w.segments().cloned().collect::<Vec<_>>(), live);
    assert_eq!(
        w.disk_bytes(),
        live.iter().map(|s| s.bytes).sum::<u64>(),
        "disk accounting follows the merge"
    );
    // The writer's properties and footer keys, covering every input.
    let f = File::open(&m.path).unwrap();
    let md = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .metadata()
        .clone();
    let groups: Vec<i64> = md.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, vec![100, 100, 100, 60], "row groups of 100 rows");
    assert!(matches!(
        md.row_group(0).column(0).compression(),
        Compression::ZSTD(_)
    ));
    let min_end = want.end_ms.iter().min().unwrap().to_string();
    let max_end = want.end_ms.iter().max().unwrap().to_string();
    assert_eq!(
        footer(&m.path, "pharos.received_from_ms"),
        Some(first.start_ms.to_string())
    );
    assert_eq!(
        footer(&m.path, "pharos.received_to_ms"),
        Some(last.end_ms.to_string())
    );
    assert_eq!(footer(&m.path, "pharos.min_end_ms"), Some(min_end));
    assert_eq!(footer(&m.path, "pharos.max_end_ms"), Some(max_end));
}

#[test]
fn tick_merges_a_finished_minute_on_a_background_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    let inputs = write_seconds(&mut w, T0, 5, 20);
    let now = T0 + MINUTE + 10_000;
    w.tick(now);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while w.segments().count() != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        w.tick(now);
    }
    let segs = list_segments(tmp.path());
    assert_eq!(segs.len(), 1);
    assert_eq!(w.segments().cloned().collect::<Vec<_>>(), segs);
    assert_eq!(rows_in(&segs), 100);
    assert!(inputs.iter().all(|s| !s.path.exists()));
}

#[test]
fn a_crash_between_rename_and_delete_counts_no_flow_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    let inputs = write_seconds(&mut w, T0, 6, 25);
    let later = write_seconds(&mut w, T0 + MINUTE, 1, 10);
    let saved: Vec<Vec<u8>> = inputs.iter().map(|s| fs::read(&s.path).unwrap()).collect();
    let merged = w.compact(T0 + 2 * MINUTE).pop().expect("merged");
    drop(w);
    // The state a SIGKILL after the rename and before (some of) the deletions leaves.
    for (s, bytes) in inputs.iter().zip(&saved).skip(1) {
        fs::write(&s.path, bytes).unwrap();
    }
    let listed = list_segments(tmp.path());
    assert_eq!(listed, vec![merged.clone(), later[0].clone()]);
    assert_eq!(rows_in(&listed), 6 * 25 + 10, "each flow counted once");

    let w = SegmentWriter::open(config(tmp.path())).unwrap();
    assert!(
        inputs.iter().all(|s| !s.path.exists()),
        "deleted at start-up"
    );
    assert!(merged.path.exists() && later[0].path.exists());
    assert_eq!(w.segments().cloned().collect::<Vec<_>>(), listed);
    assert_eq!(w.disk_bytes(), merged.bytes + later[0].bytes);

    // Only a segment of the same directory supersedes: a stray wide name elsewhere deletes
    // nothing.
    let stray_dir = tmp.path().join("2025/11/24/15");
    fs::create_dir_all(&stray_dir).unwrap();
    fs::write(stray_dir.join(format!("1-{}.parquet", u64::MAX)), b"x").unwrap();
    drop(w);
    let w = SegmentWriter::open(config(tmp.path())).unwrap();
    assert_eq!(w.segments().count(), 3);
    assert!(merged.path.exists() && later[0].path.exists());
}

#[test]
fn a_reader_listing_during_merges_counts_every_flow_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    for m in 0..4 {
        write_seconds(&mut w, T0 + m * MINUTE, 20, 50);
    }
    let root = tmp.path().to_path_buf();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    // A reader as the query engine is one: list, read; a segment gone since the listing means
    // list again (the contract of `list_segments`).
    let reader = std::thread::spawn(move || {
        let mut passes = 0;
        while !d.load(std::sync::atomic::Ordering::SeqCst) || passes == 0 {
            let total: Option<usize> = list_segments(&root)
                .iter()
                .map(|s| read_segment(&s.path).ok().map(|b| b.len()))
                .sum();
            if let Some(n) = total {
                assert_eq!(n, 4 * 20 * 50, "pass {passes}");
                passes += 1;
            }
        }
        passes
    });
    assert_eq!(w.compact(T0 + 5 * MINUTE).len(), 4);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(list_segments(tmp.path()).len(), 4);
}

#[test]
fn a_failed_merge_keeps_its_inputs_and_is_counted_and_retried_later() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    let inputs = write_seconds(&mut w, T0, 3, 10);
    let good = fs::read(&inputs[1].path).unwrap();
    fs::write(&inputs[1].path, b"not parquet").unwrap();
    let now = T0 + 2 * MINUTE;
    assert!(w.compact(now).is_empty());
    assert_eq!(w.compaction_errors(), 1);
    assert!(inputs.iter().all(|s| s.path.exists()), "inputs kept");
    let dir = inputs[0].path.parent().unwrap();
    assert_eq!(fs::read_dir(dir).unwrap().count(), 3, "no temp file left");
    // The background path waits a minute before the retry.
    fs::write(&inputs[1].path, good).unwrap();
    w.tick(now + 1000);
    w.wait_compaction(now + 1000);
    assert_eq!(w.segments().count(), 3);
    w.tick(now + MINUTE);
    w.wait_compaction(now + MINUTE);
    assert_eq!(w.segments().count(), 1);
    assert_eq!(rows_in(&list_segments(tmp.path())), 30);
}

#[test]
fn retention_by_age_and_budget_works_on_merged_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let mut w = writer_keeping_two_hours(tmp.path());
    for k in 0..4 {
        write_seconds(&mut w, T0 + k * hour, 4, 50);
    }
    assert_eq!(w.compact(T0 + 3 * hour + 2 * MINUTE).len(), 4);
    let all = list_segments(tmp.path());
    assert_eq!(all.len(), 4);
    assert_eq!(w.disk_bytes(), all.iter().map(|s| s.bytes).sum::<u64>());
    // 3 h 2 min after T0, a 2 h retention: the merged segments of hours 0 and 1 ended before.
    w.apply_retention(T0 + 3 * hour + 2 * MINUTE);
    assert_eq!(list_segments(tmp.path()), all[2..].to_vec());
    assert_eq!(w.disk_bytes(), all[2].bytes + all[3].bytes);
    w.cfg.disk_budget = all[3].bytes;
    w.apply_retention(T0 + 3 * hour + 2 * MINUTE);
    assert_eq!(list_segments(tmp.path()), all[3..].to_vec());
    assert_eq!(w.disk_bytes(), all[3].bytes);
}

/// The cost of merging one minute at 20,000 flows/s (60 segments of 20,000 flows), and what a
/// merge on the background thread does to the 1-s writes meanwhile: run with
/// `cargo nextest run -p pharos-flows merge_cost --run-ignored only --no-capture`.
#[test]
#[ignore]
fn merge_cost_of_a_minute_at_20k_flows_per_second() {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let tmp = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(config(tmp.path())).unwrap();
    let per = 20_000u32;
    let one = batch(per, false);
    // Per 1-s segment: how long its push, flush and tick took, and whether a merge was running.
    let write_minute = |w: &mut SegmentWriter, minute: u64, merge_at: Option<u64>| {
        (0..60u64)
            .map(|k| {
                let at = T0 + minute * MINUTE + k * 1000;
                let t = std::time::Instant::now();
                let merging = w.compaction.is_some();
                w.push(&one, at);
                w.flush(at + 999).unwrap();
                if let Some(now) = merge_at {
                    w.tick(now);
                }
                (t.elapsed(), merging || w.compaction.is_some())
            })
            .collect::<Vec<_>>()
    };
    let summary = |v: &[(Duration, bool)], merging: bool| {
        let d: Vec<Duration> = v.iter().filter(|x| x.1 == merging).map(|x| x.0).collect();
        let mean = d.iter().sum::<Duration>() / d.len().max(1) as u32;
        let worst = d.iter().max().copied().unwrap_or_default();
        (d.len(), ms(mean), ms(worst))
    };
    let (_, mean, worst) = summary(&write_minute(&mut w, 0, None), false);
    let bytes_in = w.disk_bytes();
    let t = std::time::Instant::now();
    let m = w.compact(T0 + 2 * MINUTE).pop().unwrap();
    let merge = t.elapsed();
    eprintln!(
        "1-s segment of {per} flows: {mean:.1} ms mean, {worst:.1} ms worst; merging 60 of them \
         on this thread: {:.0} ms ({bytes_in} -> {} bytes)",
        ms(merge),
        m.bytes
    );
    assert_eq!(read_segment(&m.path).unwrap().len(), 60 * per as usize);
    // Minute 2 while minute 1 merges in the background (ticks as flow_store_loop does).
    write_minute(&mut w, 1, None);
    let during = write_minute(&mut w, 2, Some(T0 + 2 * MINUTE + 10_000));
    w.wait_compaction(T0 + 3 * MINUTE);
    let (n, mean, worst) = summary(&during, true);
    eprintln!(
        "{n} 1-s segments written while a background merge ran: {mean:.1} ms mean, {worst:.1} ms \
         worst"
    );
    assert_eq!(w.segments().count(), 1 + 1 + 60);
}
