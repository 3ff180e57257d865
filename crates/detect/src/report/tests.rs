use super::*;
use pharos_model::ident::DdosType;
use pharos_model::{DdosEvent, IntrusionEvent, ResourceUtilizationLog};

const T0: u64 = 1_767_225_600_000;
const H: u64 = 3_600_000;

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_timestamp_millis(ms as i64).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn intrusion(src: &str, dst: &str, sev: Severity) -> Message {
    let mut m = Message::new(
        "ids-1",
        Kind::Intrusion(IntrusionEvent {
            src_ip: Some(ip(src)),
            src_port: None,
            dst_ip: Some(ip(dst)),
            dst_port: Some(22),
            rule_name: "ssh-brute".into(),
            protocol: None,
            app: None,
            attack_type: None,
        }),
    );
    m.common.severity = sev;
    m
}

fn ddos(victim: &str, start: u64, end: Option<u64>, pps: u64) -> Message {
    let mut m = Message::new(
        "pharos",
        Kind::Ddos(DdosEvent {
            attack_type: Some(DdosType::SynFlood),
            start_time: ts(start),
            end_time: end.map(ts),
            attack_src_ip: vec![ip("203.0.113.5"), ip("203.0.113.6")],
            attack_dst_ip: vec![ip(victim)],
            attack_src_port: vec![],
            attack_dst_port: vec![80],
            rule_name: "global-syn".into(),
            attack_rate: Some(pps),
            attack_throughput: Some(pps * 60),
        }),
    );
    m.common.severity = Severity::High;
    m
}

#[test]
fn counts_kinds_and_severities_and_ranks_attacked_hosts_and_sources() {
    let msgs = vec![
        intrusion("192.0.2.1", "198.51.100.10", Severity::Middle),
        intrusion("192.0.2.1", "198.51.100.10", Severity::Middle),
        intrusion("192.0.2.1", "198.51.100.10", Severity::High),
        intrusion("192.0.2.2", "198.51.100.20", Severity::Low),
        // one attack stored as three updates counts once
        ddos("198.51.100.10", T0, None, 1000),
        ddos("198.51.100.10", T0, None, 5000),
        ddos("198.51.100.10", T0, Some(T0 + 60_000), 3000),
        Message::new(
            "fw-1",
            Kind::ResourceUtilizationLog(ResourceUtilizationLog::default()),
        ),
    ];
    let r = Report::from_messages(&ReportConfig::default(), None, None, &msgs);
    assert_eq!(r.messages, 8);
    assert_eq!(r.by_kind["intrusion"], 4);
    assert_eq!(r.by_kind["ddos"], 3);
    assert_eq!(r.by_kind["resource-utilization-log"], 1);
    assert!(!r.by_kind.contains_key("virus"));
    assert_eq!(r.by_severity["high"], 4);
    assert_eq!(r.by_severity["middle"], 2);
    assert_eq!(r.by_severity["info"], 1);
    assert_eq!(
        r.top_attacked,
        [
            HostCount {
                addr: ip("198.51.100.10"),
                count: 4
            },
            HostCount {
                addr: ip("198.51.100.20"),
                count: 1
            }
        ]
    );
    assert_eq!(r.top_sources[0].addr, ip("192.0.2.1"));
    assert_eq!(r.top_sources[0].count, 3);
    assert_eq!(r.top_sources.len(), 4);
    assert_eq!((r.attacks_started, r.attacks_ended), (1, 1));
    let a = &r.attacks[0];
    assert_eq!(a.peak_pps, Some(5000));
    assert_eq!(a.end, Some(ts(T0 + 60_000)));
    assert_eq!(a.attack_type.as_deref(), Some("syn-flood"));
}

#[test]
fn attacks_started_and_ended_are_those_whose_times_fall_in_the_period() {
    let (from, to) = (T0 + H, T0 + 2 * H);
    let msgs = [
        ddos("198.51.100.1", T0, Some(T0 + 10 * 60_000), 100), // before the period
        ddos("198.51.100.2", T0 + H - 60_000, Some(T0 + H + 60_000), 100), // ended in it
        ddos("198.51.100.3", T0 + H + 60_000, None, 100),      // started, goes on
        ddos("198.51.100.4", T0 + H + 60_000, Some(T0 + H + 120_000), 100), // both
        ddos("198.51.100.5", T0, None, 100),                   // goes on through it
    ];
    let r = Report::from_messages(
        &ReportConfig::default(),
        Some(ts(from)),
        Some(ts(to)),
        &msgs,
    );
    assert_eq!((r.attacks_started, r.attacks_ended), (2, 2));
    let victims: Vec<String> = r.attacks.iter().map(|a| a.victims[0].to_string()).collect();
    assert_eq!(victims, ["198.51.100.2", "198.51.100.3", "198.51.100.4"]);
    assert_eq!(
        r.top_attacked.len(),
        5,
        "every attack message counts its victim"
    );
}

#[test]
fn attacks_past_the_bound_are_counted_not_listed() {
    let cfg = ReportConfig {
        max_attacks: 2,
        top: 1,
        ..ReportConfig::default()
    };
    let msgs: Vec<Message> = (1..=5)
        .map(|i| ddos(&format!("198.51.100.{i}"), T0 + i, None, 10))
        .collect();
    let r = Report::from_messages(&cfg, None, None, &msgs);
    assert_eq!(r.attacks.len(), 2);
    assert_eq!(r.attacks_not_listed, 3);
    assert_eq!(r.top_attacked.len(), 1);
}

#[test]
fn text_rendering_names_every_section() {
    let msgs = [
        intrusion("192.0.2.1", "198.51.100.10", Severity::High),
        ddos("198.51.100.10", T0, Some(T0 + 60_000), 2000),
    ];
    let r = Report::from_messages(
        &ReportConfig::default(),
        Some(ts(T0)),
        Some(ts(T0 + H)),
        &msgs,
    );
    let text = r.to_string();
    for want in [
        "Pharos report 2026-01-01T00:00:00Z .. 2026-01-01T01:00:00Z",
        "messages: 2",
        "by severity: high 2",
        "by kind: ddos 1, intrusion 1",
        "top attacked hosts:\n  198.51.100.10",
        "top sources:\n  ",
        "attacks: 1 started, 1 ended",
        "syn-flood  198.51.100.10  global-syn  peak 2000 pps 120000 B/s  (pharos)",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
}

#[test]
fn periodic_gives_aligned_periods_once_and_folds_missed_ones() {
    let mut p = Periodic::new(60_000);
    assert_eq!(p.due(T0 + 1_000), None, "the first call arms");
    assert_eq!(p.due(T0 + 59_999), None);
    assert_eq!(p.due(T0 + 60_000), Some((T0, T0 + 60_000)));
    assert_eq!(p.due(T0 + 61_000), None);
    assert_eq!(p.due(T0 + 300_500), Some((T0 + 60_000, T0 + 300_000)));
    assert_eq!(p.due(T0 + 360_000), Some((T0 + 300_000, T0 + 360_000)));
    let cfg: ReportConfig = toml::from_str("counter_period = \"5m\"\ninterval = \"0s\"").unwrap();
    let mut off = Periodic::reports(&cfg);
    assert_eq!(off.due(0), None);
    assert_eq!(off.due(u64::MAX), None);
    let mut c = Periodic::counters(&cfg);
    assert_eq!(c.due(T0), None);
    assert_eq!(c.due(T0 + 300_000), Some((T0, T0 + 300_000)));
    let mut edge = Periodic::new(7);
    assert_eq!(edge.due(u64::MAX), None);
    assert_eq!(
        edge.due(u64::MAX),
        Some((u64::MAX - 7, u64::MAX - 1)),
        "no overflow"
    );
    assert!(toml::from_str::<ReportConfig>("period = 3").is_err());
}
