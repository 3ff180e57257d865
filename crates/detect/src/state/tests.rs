use super::*;
use pharos_model::{DiskUsage, ResourceUtilizationLog};

const T0: u64 = 1_767_225_600_000;

fn engine(toml_text: &str) -> StateAlarms {
    StateAlarms::new(toml::from_str(toml_text).unwrap()).unwrap()
}

fn res(nsf: &str, cpu: Option<u8>, mem: Option<u8>) -> Message {
    Message::new(
        nsf,
        Kind::ResourceUtilizationLog(ResourceUtilizationLog {
            cpu_usage: cpu,
            memory_usage: mem,
            ..Default::default()
        }),
    )
}

fn feed(e: &mut StateAlarms, msgs: &[Message]) -> Vec<StateAlarm> {
    let mut out = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        e.observe(m, T0 + i as u64 * 1000, &mut out);
    }
    out
}

fn alarm(a: &StateAlarm) -> &SystemAlarm {
    match &a.message.kind {
        Kind::SystemAlarm(s) => s,
        other => panic!("not a system alarm: {other:?}"),
    }
}

#[test]
fn cpu_hovering_at_the_threshold_alarms_once_and_again_only_after_rearming() {
    let mut e = engine("");
    let seq = [70, 80, 85, 81, 79, 86, 76, 90, 75, 91, 97];
    let msgs: Vec<Message> = seq.iter().map(|u| res("fw-1", Some(*u), None)).collect();
    let out = feed(&mut e, &msgs);
    let usages: Vec<u8> = out.iter().map(|a| alarm(a).usage.unwrap()).collect();
    // 80 does not exceed 80; 85 raises; 81..76 stay above the re-arm point 75; 75 re-arms; 91 raises.
    assert_eq!(usages, [85, 91]);
    let a = alarm(&out[0]);
    assert_eq!(a.alarm_category, Some(SystemAlarmCategory::CpuAlarm));
    assert_eq!(a.threshold, Some(80));
    assert_eq!(out[0].cause, AlarmCause::Cpu);
    assert_eq!(out[0].message.common.nsf_name, "fw-1");
    assert_eq!(out[0].message.common.source.as_deref(), Some(SOURCE));
    assert_eq!(
        out[0].message.common.event_time.timestamp_millis() as u64,
        T0 + 2000
    );
    assert_eq!(out[0].message.common.severity, Severity::High);
    assert_eq!(e.stats().alarms, 2);
}

#[test]
fn memory_and_each_disk_have_their_own_thresholds_and_state() {
    let mut e = engine("memory_threshold = 60\ndisk_threshold = 90\nhysteresis = 0");
    let disks = |a: u8, left_b: u8| {
        let mut m = res("fw-2", None, Some(61));
        if let Kind::ResourceUtilizationLog(r) = &mut m.kind {
            r.disks = vec![
                DiskUsage {
                    disk_id: "sda".into(),
                    disk_usage: Some(a),
                    disk_space_left: None,
                },
                DiskUsage {
                    disk_id: "sdb".into(),
                    disk_usage: None,
                    disk_space_left: Some(left_b),
                },
            ];
        }
        m
    };
    let out = feed(
        &mut e,
        &[disks(95, 50), disks(96, 5), disks(90, 5), disks(91, 5)],
    );
    let got: Vec<(AlarmCause, u8)> = out
        .iter()
        .map(|a| (a.cause, alarm(a).usage.unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (AlarmCause::Memory, 61),
            (AlarmCause::Disk, 95),
            (AlarmCause::Disk, 95),
            (AlarmCause::Disk, 91)
        ]
    );
    assert_eq!(out[1].message.common.severity, Severity::Critical);
    assert!(
        out[2]
            .message
            .common
            .message
            .as_deref()
            .unwrap()
            .contains("disk sdb")
    );
}

#[test]
fn session_table_event_from_the_nsfs_table_size_or_the_configured_one() {
    let mut e = engine("session_table_size = 1000");
    let table = |cur: u32| {
        Message::new(
            "fw-3",
            Kind::SessionTable(SessionTable {
                current_session: Some(cur),
                maximum_session: Some(10_000),
                threshold: None,
            }),
        )
    };
    let mut via_log = res("fw-4", None, None);
    if let Kind::ResourceUtilizationLog(r) = &mut via_log.kind {
        r.session_num = Some(801);
    }
    let out = feed(&mut e, &[table(7000), table(8001), table(9000), via_log]);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.iter().all(|a| a.cause == AlarmCause::SessionTable));
    match &out[0].message.kind {
        Kind::SessionTable(s) => {
            assert_eq!(
                (s.current_session, s.maximum_session, s.threshold),
                (Some(8001), Some(10_000), Some(8000))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out[1].message.common.nsf_name, "fw-4");
}

#[test]
fn interface_alarms_on_changes_only_with_an_up_baseline() {
    let mut e = engine("");
    let mut out = Vec::new();
    e.interface("r1", "ge-0/0/1", InterfaceState::Up, T0, &mut out);
    e.interface("r1", "ge-0/0/1", InterfaceState::Up, T0 + 1, &mut out);
    assert!(out.is_empty());
    e.interface("r1", "ge-0/0/1", InterfaceState::Down, T0 + 2, &mut out);
    e.interface("r1", "ge-0/0/1", InterfaceState::Down, T0 + 3, &mut out);
    e.interface("r1", "ge-0/0/1", InterfaceState::Up, T0 + 4, &mut out);
    e.interface("r1", "ge-0/0/2", InterfaceState::Down, T0 + 5, &mut out);
    let got: Vec<(Option<InterfaceState>, Severity)> = out
        .iter()
        .map(|a| (alarm(a).interface_state, a.message.common.severity))
        .collect();
    assert_eq!(
        got,
        [
            (Some(InterfaceState::Down), Severity::High),
            (Some(InterfaceState::Up), Severity::Low),
            (Some(InterfaceState::Down), Severity::High),
        ]
    );
    assert!(out.iter().all(|a| a.cause == AlarmCause::Interface));
    // The NSF's own interface alarm updates the state and raises nothing.
    let own = Message::new(
        "r1",
        Kind::SystemAlarm(SystemAlarm {
            alarm_category: Some(SystemAlarmCategory::InterfaceAlarm),
            interface_name: Some("ge-0/0/2".into()),
            interface_state: Some(InterfaceState::Up),
            ..Default::default()
        }),
    );
    out.clear();
    e.observe(&own, T0 + 6, &mut out);
    e.interface("r1", "ge-0/0/2", InterfaceState::Up, T0 + 7, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn silent_source_alarms_once_and_again_when_it_comes_back() {
    let mut e = engine("[silence]\n\"fw-1\" = \"1m\"\n\"192.0.2.1\" = \"0s\"");
    let mut out = Vec::new();
    e.tick(T0, &mut out);
    e.seen("fw-1", T0 + 10_000, &mut out);
    e.seen("192.0.2.1", T0 + 10_000, &mut out);
    e.tick(T0 + 70_000, &mut out);
    assert!(out.is_empty(), "exactly the interval is not longer than it");
    e.tick(T0 + 70_001, &mut out);
    e.tick(T0 + 80_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].cause, AlarmCause::Silent);
    assert_eq!(e.silent_sources(), ["fw-1"]);
    let a = alarm(&out[0]);
    assert_eq!(a.alarm_category, Some(SystemAlarmCategory::HardwareAlarm));
    assert_eq!(a.component_name.as_deref(), Some("feed:fw-1"));
    assert_eq!(out[0].message.common.severity, Severity::High);
    e.observe(&res("fw-1", None, None), T0 + 100_000, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].cause, AlarmCause::Resumed);
    assert_eq!(out[1].message.common.severity, Severity::Low);
    assert!(
        out[1]
            .message
            .common
            .message
            .as_deref()
            .unwrap()
            .contains("90 s")
    );
    e.tick(T0 + 150_000, &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn configured_source_never_seen_alarms_and_default_interval_watches_others_up_to_a_bound() {
    let mut e = engine("silence_default = \"5s\"\nmax_sources = 2\n[silence]\nexp-a = \"30s\"");
    let mut out = Vec::new();
    e.tick(T0, &mut out);
    e.seen("nsf-b", T0, &mut out);
    e.seen("nsf-c", T0, &mut out);
    assert_eq!(e.stats().dropped_sources, 1);
    e.tick(T0 + 6_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].message.common.nsf_name, "nsf-b");
    e.tick(T0 + 31_000, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].message.common.nsf_name, "exp-a");
}

#[test]
fn bounded_items_count_what_they_could_not_track() {
    let mut e = engine("max_items = 1");
    let out = feed(
        &mut e,
        &[res("a", Some(99), None), res("b", Some(99), None)],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(e.stats().dropped_items, 1);
}

#[test]
fn config_rejects_unknown_keys_and_thresholds_out_of_range() {
    assert!(toml::from_str::<StateConfig>("cpu = 3").is_err());
    let cfg: StateConfig = toml::from_str("cpu_threshold = 0").unwrap();
    let err = StateAlarms::new(cfg).unwrap_err().to_string();
    assert!(err.contains("[state] cpu_threshold = 0"), "{err}");
    let cfg: StateConfig = toml::from_str("hysteresis = 101").unwrap();
    assert!(StateAlarms::new(cfg).is_err());
}

#[test]
fn every_alarm_raised_is_valid_yang_json() {
    let mut e = engine("session_table_size = 10\n[silence]\nexp = \"1s\"");
    let mut log = res("fw-1", Some(99), Some(99));
    if let Kind::ResourceUtilizationLog(r) = &mut log.kind {
        r.session_num = Some(10);
        r.disks = vec![DiskUsage {
            disk_id: "sda".into(),
            disk_usage: Some(99),
            disk_space_left: None,
        }];
    }
    let mut out = Vec::new();
    e.tick(T0, &mut out);
    e.observe(&log, T0, &mut out);
    e.interface("fw-1", "eth0", InterfaceState::Down, T0, &mut out);
    e.tick(T0 + 2_000, &mut out);
    e.seen("exp", T0 + 3_000, &mut out);
    e.clock("192.0.2.9", 3, -31_536_000_000, T0 + 3_000, &mut out);
    e.clock("192.0.2.9", 3, 10, T0 + 4_000, &mut out);
    let causes: Vec<AlarmCause> = out.iter().map(|a| a.cause).collect();
    assert_eq!(
        causes,
        [
            AlarmCause::Cpu,
            AlarmCause::Memory,
            AlarmCause::Disk,
            AlarmCause::SessionTable,
            AlarmCause::Interface,
            AlarmCause::Silent,
            AlarmCause::Resumed,
            AlarmCause::ClockOffset,
            AlarmCause::ClockBack
        ]
    );
    for a in &out {
        let v = pharos_model::json::encode(&a.message);
        let back = pharos_model::json::decode(&v);
        assert!(back.is_ok(), "{v}: {back:?}");
    }
    let v = pharos_model::json::encode(&out[0].message).to_string();
    assert!(v.contains("cpu-alarm") && v.contains("\"usage\":99"), "{v}");
    let msgs: Vec<Message> = out.into_iter().map(|a| a.message).collect();
    pharos_model::conformance::validate_messages(&msgs).unwrap();
}

#[test]
fn an_exporter_clock_off_by_more_than_the_bound_alarms_once_and_again_when_back() {
    let mut e = engine("");
    let mut out = Vec::new();
    let year_ms = -31_536_000_000i64;
    // a synchronised exporter raises nothing
    e.clock("192.0.2.1", 0, -400, T0, &mut out);
    // a year behind, and 90 s ahead in another domain: one alarm each, not repeated
    for i in 0..3 {
        e.clock("192.0.2.2", 0, year_ms + i, T0 + 1000, &mut out);
        e.clock("192.0.2.3", 5, 90_000, T0 + 1000, &mut out);
    }
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].cause, AlarmCause::ClockOffset);
    assert_eq!(out[0].message.common.nsf_name, "192.0.2.2");
    assert_eq!(out[0].message.common.severity, Severity::Middle);
    let a = alarm(&out[0]);
    assert_eq!(a.alarm_category, Some(SystemAlarmCategory::HardwareAlarm));
    assert_eq!(a.component_name.as_deref(), Some("clock:192.0.2.2"));
    let text = out[0].message.common.message.as_deref().unwrap();
    assert!(text.contains("31536000.0 s behind"), "{text}");
    assert_eq!(
        alarm(&out[1]).component_name.as_deref(),
        Some("clock:192.0.2.3/5")
    );
    assert!(
        out[1]
            .message
            .common
            .message
            .as_deref()
            .unwrap()
            .contains("90.0 s ahead of")
    );
    assert_eq!(e.clocks_off(), [("192.0.2.2", 0), ("192.0.2.3", 5)]);
    out.clear();
    // hovering between 90 % of the bound and the bound keeps it raised; within 90 % clears it
    e.clock("192.0.2.3", 5, 55_000, T0 + 2000, &mut out);
    e.clock("192.0.2.3", 5, 61_000, T0 + 3000, &mut out);
    assert!(out.is_empty(), "{out:?}");
    e.clock("192.0.2.3", 5, 53_000, T0 + 4000, &mut out);
    e.clock("192.0.2.2", 0, -20, T0 + 4000, &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.iter().all(|a| a.cause == AlarmCause::ClockBack));
    assert_eq!(out[1].message.common.severity, Severity::Low);
    assert!(
        out[1]
            .message
            .common
            .message
            .as_deref()
            .unwrap()
            .contains("back within 60 s"),
        "{:?}",
        out[1].message.common.message
    );
    assert!(e.clocks_off().is_empty());
    // raised again when it goes off again
    out.clear();
    e.clock("192.0.2.2", 0, 61_000, T0 + 5000, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn the_clock_bound_is_configurable_and_zero_turns_it_off() {
    let mut e = engine("clock_offset_max = \"0s\"");
    let mut out = Vec::new();
    e.clock("192.0.2.2", 0, -31_536_000_000, T0, &mut out);
    assert!(out.is_empty());
    let mut e = engine("clock_offset_max = \"5s\"\nmax_sources = 1");
    e.clock("192.0.2.2", 0, 6_000, T0, &mut out);
    e.clock("192.0.2.4", 0, 6_000, T0, &mut out);
    assert_eq!(out.len(), 1, "beyond max_sources: not tracked");
    assert_eq!(e.stats().dropped_sources, 1);
}
