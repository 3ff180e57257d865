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
    w.tick(T0 + 500);
    assert_eq!(w.pending(), 10, "not yet a second old");
    w.tick(T0 + 1000);
    assert_eq!(w.pending(), 0);
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

#[test]
fn retention_by_age_then_by_budget_deletes_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let mut w = SegmentWriter::open(SegmentConfig {
        retention: Duration::from_secs(2 * 3600),
        ..config(tmp.path())
    })
    .unwrap();
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
fn a_failed_write_is_counted_holds_the_flows_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the year directory should be: create_dir_all fails, also for root.
    let blocker = tmp.path().join("2025");
    fs::write(&blocker, b"not a directory").unwrap();
    let mut w = SegmentWriter::open(SegmentConfig {
        max_held_flows: 150,
        ..config(tmp.path())
    })
    .unwrap();
    w.push(&batch(100, false), T0);
    let e = w.flush(T0 + 1000).unwrap_err();
    assert!(e.to_string().contains("2025"), "{e}");
    assert!(w.failing);
    assert_eq!(w.write_errors(), 1);
    assert_eq!(w.pending(), 100, "held for the retry");
    // Held flows are bounded: 50 more fit, the other 50 are dropped.
    w.push(&batch(100, true), T0 + 1500);
    assert_eq!(w.pending(), 150);
    w.tick(T0 + 2000);
    assert_eq!(w.pending(), 150, "still failing");
    assert_eq!((w.write_errors(), w.dropped()), (2, 50));
    assert!(list_segments(tmp.path()).is_empty());

    fs::remove_file(&blocker).unwrap();
    w.tick(T0 + 3000);
    assert_eq!(w.pending(), 0);
    assert!(!w.failing);
    let segs = list_segments(tmp.path());
    assert_eq!(segs.len(), 1);
    let back = read_segment(&segs[0].path).unwrap();
    let mut want = batch(100, false);
    let mut more = batch(100, true);
    more.truncate(50);
    want.extend_from(&more);
    assert_eq!(back, want);
}

#[test]
fn pyarrow_reads_a_segment_with_the_documented_columns() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "SKIPPED: pyarrow is not installed (pip install --break-system-packages pyarrow; scripts/test.sh does it)"
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
