use super::*;
use crate::config::{BaselineConfig, HostGroupConfig, Limit};
use crate::synth::{AttackGen, AttackSpec, Rng, background, flow};
use pharos_model::Kind;
use pharos_model::flow::FlowRecord;
use pharos_model::ident::{DdosType, Identity};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600_000;
const VICTIM: &str = "198.51.100.77";
const VICTIM6: &str = "2001:db8::77";

fn limit(pps: u64, bps: u64, fps: u64) -> Limit {
    let o = |v| if v == u64::MAX { None } else { Some(v) };
    Limit {
        pps: o(pps),
        bps: o(bps),
        fps: o(fps),
    }
}

/// Built-in thresholds, except lower flows/s ones so the flood tests stay small.
fn cfg() -> DdosConfig {
    let mut c = DdosConfig {
        networks: vec!["198.51.100.0/24".into(), "2001:db8::/64".into()],
        window_s: 5,
        delay_s: 3,
        hold_s: 10,
        ..Default::default()
    };
    c.thresholds
        .insert(TrafficClass::Tcp, limit(u64::MAX, u64::MAX, 3_000));
    for cl in [TrafficClass::Http, TrafficClass::Https, TrafficClass::Tls] {
        c.thresholds.insert(cl, limit(u64::MAX, u64::MAX, 1_000));
    }
    c
}

/// The updates of a run, with the clock at which each was emitted.
struct Run {
    updates: Vec<(u64, AttackUpdate)>,
    d: DdosDetector,
}

impl Run {
    fn started(&self) -> Vec<&AttackReport> {
        self.updates
            .iter()
            .filter_map(|(_, u)| match u {
                AttackUpdate::Started(r) => Some(r),
                _ => None,
            })
            .collect()
    }
    fn ended(&self) -> Vec<(u64, &AttackReport)> {
        self.updates
            .iter()
            .filter_map(|(t, u)| match u {
                AttackUpdate::Ended(r) => Some((*t, r)),
                _ => None,
            })
            .collect()
    }
}

/// `secs` seconds of background traffic (200 hosts, 2000 flows/s) from `T0`, one batch a second,
/// plus `spec` from second `a0` to `a1`.
fn run(cfg: DdosConfig, spec: Option<AttackSpec>, a0: u64, a1: u64, secs: u64, seed: u64) -> Run {
    let t0 = T0 + a0 * 1000;
    let mut attack = spec.map(|s| AttackGen::new(s, t0, seed + 1));
    run_with(cfg, secs, seed, |s, t, b| {
        if let Some(g) = &mut attack {
            if s + 1 == a1 {
                g.finish(t0, t + 1000, b);
            } else if (a0..a1).contains(&s) {
                g.emit(t0, t + 1000, b);
            }
        }
    })
}

/// `secs` seconds of background traffic, plus what `extra(second, t_ms, batch)` adds.
fn run_with(
    cfg: DdosConfig,
    secs: u64,
    seed: u64,
    mut extra: impl FnMut(u64, u64, &mut FlowBatch),
) -> Run {
    let mut d = DdosDetector::new(cfg).unwrap();
    let mut rng = Rng::new(seed);
    let mut b = FlowBatch::new();
    let mut out = Vec::new();
    let mut updates = Vec::new();
    for s in 0..secs {
        let t = T0 + s * 1000;
        b.clear();
        background(
            &mut rng,
            &mut b,
            Ipv4Addr::new(198, 51, 100, 0),
            200,
            2_000,
            t,
        );
        extra(s, t, &mut b);
        d.process(&b, t + 1000, &mut out);
        updates.extend(out.drain(..).map(|u| (t + 1000, u)));
    }
    Run { updates, d }
}

fn spec(
    proto: u8,
    tcp_flags: u8,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    pps: u64,
    pkt_size: u64,
) -> AttackSpec {
    AttackSpec {
        victim: VICTIM.parse().unwrap(),
        proto,
        tcp_flags,
        src_port,
        dst_port,
        pps,
        pkt_size,
        sources: 200,
        flow_ms: (200, 2_000),
        sampling: 1,
    }
}

fn within(measured: f64, truth: f64, what: &str) {
    let err = (measured - truth).abs() / truth;
    assert!(
        err <= 0.10,
        "{what}: measured {measured:.0}, truth {truth:.0} ({:.1}% off)",
        err * 100.0
    );
}

/// One attack on the victim from second 10 to 40: detected once, as `want` in `class`, on the
/// right victim, with its rates within 10%, and ended after it stopped.
fn detects(spec: AttackSpec, class: TrafficClass, want: DdosType) {
    let (pps, bps, victim) = (
        spec.pps as f64,
        (spec.pps * spec.pkt_size) as f64,
        spec.victim,
    );
    let r = run(cfg(), Some(spec), 10, 40, 60, 42);
    let started = r.started();
    assert_eq!(
        started.len(),
        1,
        "{want:?}: {:#?}",
        started.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    let s = started[0];
    assert_eq!(s.id.victim, victim);
    assert_eq!(s.id.class, class);
    let Kind::Ddos(e) = &s.message.kind else {
        panic!("not a DDoS event")
    };
    assert_eq!(e.attack_type, Some(want));
    assert_eq!(e.attack_dst_ip, vec![victim]);
    assert!(e.end_time.is_none());
    // The first event already names sources: those of the batch that started it.
    let at_start = e
        .attack_src_ip
        .iter()
        .filter(|a| a.to_string().starts_with("203.0.11"))
        .count();
    assert!(
        at_start > 0 && at_start * 10 >= e.attack_src_ip.len() * 8,
        "{want:?}: sources at start {:?}",
        e.attack_src_ip
    );
    assert!(
        s.id.start_ms >= T0 + 10_000 && s.id.start_ms <= T0 + 13_000,
        "start {}",
        s.id.start_ms - T0
    );
    let ended = r.ended();
    assert_eq!(ended.len(), 1, "{want:?} did not end once");
    let (t_end, end) = ended[0];
    assert_eq!(end.id, s.id, "the end updates the same attack");
    assert!(
        t_end >= T0 + 50_000,
        "ended {} ms after T0, before the hold time",
        t_end - T0
    );
    let Kind::Ddos(e) = &end.message.kind else {
        panic!()
    };
    let end_ms = end.summary.end_ms.unwrap();
    assert!(
        (T0 + 39_000..=T0 + 41_000).contains(&end_ms),
        "end {}",
        end_ms - T0
    );
    assert!(e.end_time.is_some());
    within(end.summary.avg_pps, pps, "pps");
    within(end.summary.avg_bytes_ps, bps, "bytes/s");
    within(e.attack_rate.unwrap() as f64, pps, "attack-rate");
    within(
        e.attack_throughput.unwrap() as f64,
        bps,
        "attack-throughput",
    );
    assert!(!e.attack_src_ip.is_empty() && e.attack_src_ip.len() <= 10);
    let attackers = e
        .attack_src_ip
        .iter()
        .filter(|a| a.to_string().starts_with("203.0.11"))
        .count();
    assert!(
        attackers * 10 >= e.attack_src_ip.len() * 8,
        "{:?}",
        e.attack_src_ip
    );
    assert!(
        e.rule_name.starts_with(&format!("default/{class}/")),
        "{}",
        e.rule_name
    );
}

/// An attack raised by a tick (no batch in hand: the flows that made it were counted earlier)
/// still names its sources in the first event: they come from the latest monitored flows.
#[test]
fn an_attack_raised_on_a_tick_names_the_sources_it_already_sent_from() {
    let mut d = DdosDetector::new(cfg()).unwrap();
    let mut g = AttackGen::new(spec(6, 0x02, None, Some(80), 50_000, 60), T0, 9);
    let mut b = FlowBatch::new();
    let mut out = Vec::new();
    let mut started = None;
    for sec in 0..15 {
        let t = T0 + sec * 1000;
        b.clear();
        g.emit(T0, t + 1000, &mut b);
        d.ingest(&b, t + 1000);
        d.tick(t + 1000, &mut out);
        started = out.drain(..).find_map(|u| match u {
            AttackUpdate::Started(r) => Some(r),
            _ => None,
        });
        if started.is_some() {
            break;
        }
    }
    let r = started.expect("the flood starts an attack");
    let Kind::Ddos(e) = &r.message.kind else {
        panic!("not a DDoS event")
    };
    assert!(
        !e.attack_src_ip.is_empty()
            && e.attack_src_ip
                .iter()
                .all(|a| a.to_string().starts_with("203.0.11")),
        "{:?}",
        e.attack_src_ip
    );
    assert!(!e.attack_dst_port.is_empty(), "{:?}", e.attack_dst_port);
}

/// Flows counted just after an evaluation (too soon for another) are evaluated when
/// `due_ms` says, by `poll`, without waiting for a later batch or the next second.
#[test]
fn flows_counted_just_after_an_evaluation_are_evaluated_when_due_without_another_batch() {
    let mut d = DdosDetector::new(cfg()).unwrap();
    let mut out = Vec::new();
    let mut b = FlowBatch::new();
    let mut rng = Rng::new(3);
    background(
        &mut rng,
        &mut b,
        Ipv4Addr::new(198, 51, 100, 0),
        200,
        2_000,
        T0,
    );
    d.process(&b, T0 + 1000, &mut out);
    assert_eq!(d.due_ms(), None, "nothing waits after a full evaluation");
    b.clear();
    // the flood's flows of the second that just ended, exported at its end, arrive 20 ms later
    let mut g = AttackGen::new(spec(6, 0x02, None, Some(80), 500_000, 60), T0, 5);
    g.emit(T0, T0 + 1000, &mut b);
    d.process(&b, T0 + 1020, &mut out);
    assert!(
        !out.iter().any(|u| matches!(u, AttackUpdate::Started(_))),
        "20 ms after an evaluation is too soon for another"
    );
    let due = d
        .due_ms()
        .expect("the flood's host waits for an evaluation");
    assert_eq!(due, T0 + 1000 + EARLY_EVAL_MS);
    d.poll(due - 1, &mut out);
    assert!(out.iter().all(|u| !matches!(u, AttackUpdate::Started(_))));
    d.poll(due, &mut out);
    assert!(
        out.iter()
            .any(|u| matches!(u, AttackUpdate::Started(r) if r.id.victim.to_string() == VICTIM)),
        "{out:?}"
    );
    assert_eq!(d.due_ms(), None);
}

#[test]
fn syn_flood() {
    detects(
        spec(6, 0x02, None, Some(80), 50_000, 60),
        TrafficClass::Syn,
        DdosType::SynFlood,
    );
}

#[test]
fn ack_flood() {
    detects(
        spec(6, 0x10, None, None, 150_000, 60),
        TrafficClass::Ack,
        DdosType::AckFlood,
    );
}

#[test]
fn syn_ack_flood() {
    detects(
        spec(6, 0x12, Some(443), None, 50_000, 60),
        TrafficClass::SynAck,
        DdosType::SynAckFlood,
    );
}

#[test]
fn fin_rst_flood() {
    detects(
        spec(6, 0x04, None, Some(80), 50_000, 60),
        TrafficClass::FinRst,
        DdosType::FinRstFlood,
    );
}

#[test]
fn tcp_connection_flood() {
    let s = AttackSpec {
        sources: 1_000,
        flow_ms: (100, 300),
        ..spec(6, 0x1b, None, Some(8080), 30_000, 300)
    };
    detects(s, TrafficClass::Tcp, DdosType::TcpConFlood);
}

#[test]
fn udp_flood_sampled_1_in_64() {
    let s = AttackSpec {
        sampling: 64,
        ..spec(17, 0, None, None, 150_000, 512)
    };
    detects(s, TrafficClass::Udp, DdosType::UdpFlood);
}

#[test]
fn icmpv4_flood_from_instant_flow_records() {
    let s = AttackSpec {
        flow_ms: (0, 0),
        ..spec(1, 0, Some(0), Some(0), 30_000, 84)
    };
    detects(s, TrafficClass::Icmpv4, DdosType::Icmpv4Flood);
}

#[test]
fn icmpv6_flood() {
    let s = AttackSpec {
        victim: VICTIM6.parse().unwrap(),
        ..spec(58, 0, Some(0), Some(0), 30_000, 104)
    };
    detects(s, TrafficClass::Icmpv6, DdosType::Icmpv6Flood);
}

#[test]
fn fragment_flood() {
    detects(
        spec(17, 0, Some(0), Some(0), 30_000, 1480),
        TrafficClass::Fragment,
        DdosType::FragmentFlood,
    );
}

#[test]
fn dns_query_flood() {
    detects(
        spec(17, 0, None, Some(53), 50_000, 80),
        TrafficClass::DnsQuery,
        DdosType::DnsQueryFlood,
    );
}

#[test]
fn dns_reply_flood() {
    detects(
        spec(17, 0, Some(53), None, 30_000, 300),
        TrafficClass::DnsReply,
        DdosType::DnsReplyFlood,
    );
}

#[test]
fn dns_amplification_is_a_reply_flood_of_large_packets() {
    detects(
        spec(17, 0, Some(53), None, 30_000, 1400),
        TrafficClass::DnsReply,
        DdosType::DnsAmpFlood,
    );
}

#[test]
fn ntp_amplification() {
    detects(
        spec(17, 0, Some(123), None, 20_000, 468),
        TrafficClass::Ntp,
        DdosType::NtpAmpFlood,
    );
}

#[test]
fn ssdp_amplification() {
    detects(
        spec(17, 0, Some(1900), None, 20_000, 300),
        TrafficClass::Ssdp,
        DdosType::SsdpAmpFlood,
    );
}

#[test]
fn memcached_amplification() {
    detects(
        spec(17, 0, Some(11211), None, 20_000, 1400),
        TrafficClass::Memcached,
        DdosType::MemcachedAmpFlood,
    );
}

#[test]
fn cldap_amplification() {
    detects(
        spec(17, 0, Some(389), None, 20_000, 1400),
        TrafficClass::Cldap,
        DdosType::CldapAmpFlood,
    );
}

#[test]
fn chargen_amplification() {
    detects(
        spec(17, 0, Some(19), None, 20_000, 1000),
        TrafficClass::Chargen,
        DdosType::ChargenAmpFlood,
    );
}

#[test]
fn snmp_amplification() {
    detects(
        spec(17, 0, Some(161), None, 20_000, 1000),
        TrafficClass::Snmp,
        DdosType::SnmpAmpFlood,
    );
}

#[test]
fn sip_flood() {
    detects(
        spec(17, 0, None, Some(5060), 30_000, 500),
        TrafficClass::Sip,
        DdosType::SipFlood,
    );
}

fn web(port: u16) -> AttackSpec {
    AttackSpec {
        sources: 1_000,
        flow_ms: (100, 300),
        ..spec(6, 0x1b, None, Some(port), 20_000, 500)
    }
}

#[test]
fn http_flood() {
    detects(web(80), TrafficClass::Http, DdosType::HttpFlood);
}

#[test]
fn https_flood() {
    detects(web(443), TrafficClass::Https, DdosType::HttpsFlood);
}

#[test]
fn tls_flood() {
    detects(web(993), TrafficClass::Tls, DdosType::TlsFlood);
}

#[test]
fn generic_flood_over_the_all_threshold_is_typed_by_protocol_mix() {
    // a GRE flood: no class but `all`
    let mut c = cfg();
    c.thresholds.insert(TrafficClass::All, limit(20_000, 0, 0));
    let r = run(
        c,
        Some(spec(47, 0, Some(0), Some(0), 40_000, 500)),
        10,
        30,
        35,
        5,
    );
    let s = r.started();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].id.class, TrafficClass::All);
    assert_eq!(
        s[0].summary.attack_type, None,
        "no identity for a GRE flood"
    );
    let last = r.updates.last().unwrap().1.report();
    assert_eq!(last.summary.protocols.first().map(|p| p.0), Some(47));
}

#[test]
fn background_alone_never_alarms() {
    for seed in [1, 2, 3] {
        let r = run(cfg(), None, 0, 0, 90, seed);
        assert!(r.updates.is_empty(), "seed {seed}: {:#?}", r.updates);
        let st = r.d.stats();
        assert!(
            (300..=400).contains(&st.hosts),
            "200 IPv4 and up to 200 IPv6 hosts"
        );
        assert_eq!(st.late, 0);
    }
}

#[test]
fn attack_ends_after_the_hold_time_and_updates_meanwhile() {
    let mut c = cfg();
    c.hold_s = 20;
    c.update_interval_s = 5;
    let r = run(
        c,
        Some(spec(17, 0, Some(123), None, 20_000, 468)),
        10,
        40,
        80,
        9,
    );
    let (t_end, end) = r.ended()[0];
    let end_ms = end.summary.end_ms.unwrap();
    assert!(
        (T0 + 39_000..=T0 + 41_000).contains(&end_ms),
        "end-time {} ms after T0: the attack stopped at 40 s",
        end_ms - T0
    );
    // below the threshold once the settled window (3 s late, 5 s long) has passed the end
    assert!(
        t_end - end_ms >= 20_000,
        "ended {} ms after the attack",
        t_end - end_ms
    );
    assert!(t_end - end_ms <= 20_000 + 3_000 + 5_000 + 1_000);
    let updated = r
        .updates
        .iter()
        .filter(|(_, u)| matches!(u, AttackUpdate::Updated(_)))
        .count();
    assert!((5..=12).contains(&updated), "{updated} updates");
    assert!(r.updates.iter().all(|(_, u)| u.id() == &end.id));
    assert_eq!(r.d.stats().active_attacks, 0);
}

#[test]
fn an_attack_resuming_within_the_hold_time_stays_one_attack() {
    let mut c = cfg();
    c.hold_s = 30;
    let mut d = DdosDetector::new(c).unwrap();
    let mut out = Vec::new();
    let mut b = FlowBatch::new();
    for s in 0..100u64 {
        b.clear();
        let t = T0 + s * 1000;
        // on for 10 s, off for 10 s, on again
        if !(20..30).contains(&s) && s < 40 {
            let mut f = flow("203.0.113.5", VICTIM, 17, 123, 5555, t, t + 999);
            f.packets = 30_000;
            f.bytes = 30_000 * 468;
            b.push(&f);
        }
        d.process(&b, t + 1000, &mut out);
    }
    let starts = out
        .iter()
        .filter(|u| matches!(u, AttackUpdate::Started(_)))
        .count();
    assert_eq!(starts, 1, "{out:#?}");
    assert_eq!(
        out.iter()
            .filter(|u| matches!(u, AttackUpdate::Ended(_)))
            .count(),
        1
    );
}

#[test]
fn allow_listed_victims_and_sources_never_alarm() {
    let ntp = || Some(spec(17, 0, Some(123), None, 20_000, 468));
    let mut c = cfg();
    c.allow = vec![VICTIM.into()];
    let r = run(c, ntp(), 10, 30, 40, 3);
    assert!(r.updates.is_empty());
    assert!(r.d.stats().allowed > 0);
    let mut c = cfg();
    c.allow_src = vec!["203.0.113.0/24".into()];
    let r = run(c, ntp(), 10, 30, 40, 3);
    assert!(r.updates.is_empty());
}

#[test]
fn host_group_thresholds_apply_to_the_longest_prefix() {
    let mut c = cfg();
    let mut quiet = HostGroupConfig {
        name: "quiet".into(),
        prefixes: vec!["198.51.100.64/26".into()],
        ..Default::default()
    };
    quiet
        .thresholds
        .insert(TrafficClass::Ntp, limit(100_000, 0, u64::MAX));
    let mut dns = HostGroupConfig {
        name: "dns".into(),
        prefixes: vec![format!("{VICTIM}/32")],
        ..Default::default()
    };
    dns.thresholds
        .insert(TrafficClass::Ntp, limit(1_000, u64::MAX, u64::MAX));
    c.groups = vec![quiet.clone(), dns];
    let r = run(
        c.clone(),
        Some(spec(17, 0, Some(123), None, 20_000, 468)),
        10,
        30,
        40,
        4,
    );
    let s = r.started();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].summary.rule, "dns/ntp/pps");
    assert_eq!(s[0].summary.group, "dns");
    // the /26 group alone raises the NTP threshold above the attack
    c.groups = vec![quiet];
    assert!(
        run(
            c,
            Some(spec(17, 0, Some(123), None, 20_000, 468)),
            10,
            30,
            40,
            4
        )
        .updates
        .is_empty()
    );
}

/// A web server whose https connection rate follows a daily cycle (one "day" = 600 s here),
/// mean 200 flows/s, peak 360; then an https flood of 2000 flows/s at second 1500.
fn daily(cfg: DdosConfig, attack: bool) -> Vec<AttackUpdate> {
    let mut d = DdosDetector::new(cfg).unwrap();
    daily_on(&mut d, 0..1_560, attack, &mut Rng::new(77))
}

/// The seconds `secs` of [`daily`] fed to `d`.
fn daily_on(
    d: &mut DdosDetector,
    secs: std::ops::Range<u64>,
    attack: bool,
    rng: &mut Rng,
) -> Vec<AttackUpdate> {
    let mut b = FlowBatch::new();
    let mut out = Vec::new();
    for s in secs {
        b.clear();
        let t = T0 + s * 1000;
        let phase = 2.0 * std::f64::consts::PI * s as f64 / 600.0;
        let mut n = (200.0 * (1.0 + 0.8 * phase.sin())).round() as u64;
        if attack && (1_500..1_530).contains(&s) {
            n += 2_000;
        }
        for _ in 0..n {
            let st = t + rng.below(500);
            let src = Ipv4Addr::from(0x0a00_0000 | rng.below(1 << 20) as u32).to_string();
            let mut f = flow(
                &src,
                "198.51.100.10",
                6,
                rng.range(1024, 65535) as u16,
                443,
                st,
                st + rng.below(500),
            );
            f.tcp_flags = 0x1b;
            f.packets = rng.range(5, 15);
            f.bytes = f.packets * 700;
            b.push(&f);
        }
        d.process(&b, t + 1000, &mut out);
    }
    out
}

fn web_group(baseline: Option<BaselineConfig>, https_fps: u64) -> DdosConfig {
    let mut c = cfg();
    let mut g = HostGroupConfig {
        name: "web".into(),
        prefixes: vec!["198.51.100.10/32".into()],
        baseline,
        ..Default::default()
    };
    g.thresholds
        .insert(TrafficClass::Https, limit(u64::MAX, u64::MAX, https_fps));
    c.groups = vec![g];
    c
}

#[test]
fn baseline_tolerates_the_daily_peak_and_catches_an_attack_absolute_thresholds_cannot() {
    // absolute thresholds tuned for ordinary hosts alarm at the web server's daily peak
    let out = daily(web_group(None, 300), false);
    assert!(out.iter().any(|u| matches!(u, AttackUpdate::Started(_))));
    // baseline: learned during the first day, then 3x the learned rate; the absolute threshold
    // stays as a cap, high enough to miss the flood
    let base = BaselineConfig {
        enabled: true,
        learning_s: 600,
        half_life_s: 300,
        multiplier: 3.0,
        floor: limit(1_000, 10_000_000, 50),
    };
    let out = daily(web_group(Some(base.clone()), 5_000), false);
    assert!(out.is_empty(), "{out:#?}");
    let out = daily(web_group(Some(base), 5_000), true);
    let started: Vec<_> = out
        .iter()
        .filter(|u| matches!(u, AttackUpdate::Started(_)))
        .collect();
    assert_eq!(started.len(), 1, "{started:#?}");
    let r = started[0].report();
    assert_eq!(r.summary.attack_type, Some(DdosType::HttpsFlood));
    assert_eq!(r.summary.rule, "web/https/baseline-fps");
    assert_eq!(r.id.victim, "198.51.100.10".parse::<IpAddr>().unwrap());
    assert!(r.id.start_ms >= T0 + 1_500_000);
}

fn learning_web() -> DdosConfig {
    web_group(
        Some(BaselineConfig {
            enabled: true,
            learning_s: 600,
            half_life_s: 300,
            multiplier: 3.0,
            floor: limit(1_000, 10_000_000, 50),
        }),
        5_000,
    )
}

fn started(out: &[AttackUpdate]) -> Vec<&AttackUpdate> {
    out.iter()
        .filter(|u| matches!(u, AttackUpdate::Started(_)))
        .collect()
}

#[test]
fn learned_rates_survive_a_restart_through_learned_and_restore_learned() {
    let mut d = DdosDetector::new(learning_web()).unwrap();
    assert!(daily_on(&mut d, 0..1_200, false, &mut Rng::new(77)).is_empty());
    let saved = d.learned();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].addr, "198.51.100.10".parse::<IpAddr>().unwrap());
    assert_eq!(saved[0].first_seen_ms, T0 + 1000);
    let https = saved[0].rates["https"];
    assert!(
        (100.0..400.0).contains(&https[2]),
        "learned https flows/s {https:?}"
    );

    // Restarted without them: still learning, the absolute cap misses the flood.
    let mut fresh = DdosDetector::new(learning_web()).unwrap();
    let out = daily_on(&mut fresh, 1_200..1_560, true, &mut Rng::new(78));
    assert!(started(&out).is_empty(), "{out:#?}");
    // Restarted with them: the flood is caught on the learned rate at once.
    let mut restored = DdosDetector::new(learning_web()).unwrap();
    assert_eq!(restored.restore_learned(&saved), 1);
    assert_eq!(restored.stats().dormant, 1);
    let out = daily_on(&mut restored, 1_200..1_560, true, &mut Rng::new(78));
    let s = started(&out);
    assert_eq!(s.len(), 1, "{out:#?}");
    assert_eq!(s[0].report().summary.rule, "web/https/baseline-fps");
    assert_eq!(restored.stats().dormant, 0, "woken by its first flow");
}

#[test]
fn restore_learned_skips_hosts_outside_baseline_groups_and_bad_rates() {
    let mut d = DdosDetector::new(learning_web()).unwrap();
    let host = |addr: &str, class: &str, r: [f64; 3]| LearnedHost {
        addr: addr.parse().unwrap(),
        first_seen_ms: T0,
        rates: [(class.to_string(), r)].into_iter().collect(),
    };
    let list = [
        host("198.51.100.10", "https", [10.0, 1000.0, 5.0]),
        host("203.0.113.1", "https", [10.0, 1000.0, 5.0]),
        host("198.51.100.10", "warp-drive", [1.0, 1.0, 1.0]),
        host("198.51.100.10", "udp", [f64::NAN, 1.0, 1.0]),
    ];
    assert_eq!(
        d.restore_learned(&list[..2]),
        1,
        "203.0.113.1 is in no group"
    );
    let mut d = DdosDetector::new(learning_web()).unwrap();
    assert_eq!(d.restore_learned(&list[2..]), 0);
    // Absolute-only groups learn nothing and take nothing.
    let mut abs = DdosDetector::new(web_group(None, 300)).unwrap();
    assert_eq!(abs.restore_learned(&list[..1]), 0);
    assert!(abs.learned().is_empty());
}

#[test]
fn an_idle_baseline_host_keeps_what_it_learned_past_eviction() {
    let mut c = learning_web();
    c.idle_evict_s = 60;
    let mut d = DdosDetector::new(c).unwrap();
    assert!(daily_on(&mut d, 0..1_200, false, &mut Rng::new(77)).is_empty());
    let before = d.learned();
    // Two quiet minutes: the host is evicted, its learned rates parked.
    let mut out = Vec::new();
    for s in 1_201..1_330u64 {
        d.tick(T0 + s * 1000, &mut out);
    }
    assert_eq!((d.stats().hosts, d.stats().dormant), (0, 1));
    let parked = d.learned();
    assert_eq!(parked[0].first_seen_ms, before[0].first_seen_ms);
    assert!(parked[0].rates["https"][2] > 0.0);
    // It comes back with its ordinary traffic, then the flood: caught on the learned rate.
    let out = daily_on(&mut d, 1_330..1_560, true, &mut Rng::new(79));
    let s = started(&out);
    assert_eq!(s.len(), 1, "{out:#?}");
    assert_eq!(s[0].report().summary.rule, "web/https/baseline-fps");
}

#[test]
fn hosts_are_bounded_and_drops_counted() {
    let mut c = cfg();
    c.max_hosts = 50;
    let r = run(c, None, 0, 0, 5, 1);
    let st = r.d.stats();
    assert_eq!(st.hosts, 50);
    assert!(st.dropped_hosts > 0);
}

#[test]
fn a_table_full_of_quiet_hosts_still_takes_the_victim_of_a_flood() {
    // Every second 100 hosts get one small flow each, for 50 places: without eviction under
    // pressure the table stays full of quiet hosts (idle_evict is 10 minutes) and the flood on
    // VICTIM from second 5 on is never counted. With it, the table empties of quiet hosts at
    // each evaluation and the victim's flows, which come throughout the second, find a place.
    let mut c = cfg();
    c.max_hosts = 50;
    let mut d = DdosDetector::new(c).unwrap();
    let mut out = Vec::new();
    for sec in 0..15u64 {
        let t = T0 + sec * 1000;
        let mut b = FlowBatch::new();
        for i in 0..100u64 {
            let dst = format!("2001:db8::{:x}", 0x1000 + (sec * 100 + i) % 4000);
            b.push(&flow("192.0.2.1", &dst, 17, 1000, 53, t, t));
            // the flood's flows come throughout the second, among the others
            if sec >= 5 && i % 2 == 1 {
                let mut f = flow("192.0.2.9", VICTIM, 17, 1000 + i as u16, 53, t, t + 999);
                f.packets = 2_000;
                f.bytes = 2_000 * 500;
                b.push(&f);
            }
        }
        d.process(&b, t + 999, &mut out);
        d.tick(t + 1000, &mut out);
    }
    let started: Vec<_> = out
        .iter()
        .filter_map(|u| match u {
            AttackUpdate::Started(r) => Some(r.id.victim.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(started, [VICTIM], "{:?}", d.stats());
    assert!(d.stats().dropped_hosts > 0);
    assert!(d.stats().hosts <= 50);
}

#[test]
fn idle_hosts_are_forgotten() {
    let mut c = cfg();
    c.idle_evict_s = 5;
    let mut d = DdosDetector::new(c).unwrap();
    let mut b = FlowBatch::new();
    b.push(&flow("192.0.2.1", VICTIM, 17, 1, 2, T0, T0));
    let mut out = Vec::new();
    d.process(&b, T0 + 1000, &mut out);
    assert_eq!(d.stats().hosts, 1);
    d.tick(T0 + 10_000, &mut out);
    assert_eq!(d.stats().hosts, 0);
}

#[test]
fn sketches_stay_bounded_under_a_spoofed_flood() {
    let mut c = cfg();
    c.sketch_capacity = 32;
    c.top_n = 5;
    let s = AttackSpec {
        sources: 20_000,
        flow_ms: (900, 1_000),
        ..spec(17, 0, None, None, 200_000, 100)
    };
    let r = run(c, Some(s), 2, 12, 14, 8);
    let st = r.started();
    assert_eq!(st.len(), 1);
    let h = r.d.hosts.values().find(|h| !h.attacks.is_empty()).unwrap();
    let a = &h.attacks[0];
    assert!(a.sketch_sizes().iter().all(|n| *n <= 32));
    let last = r.updates.last().unwrap().1.report();
    assert!(last.summary.top_sources.len() <= 5);
    assert!(
        last.summary.top_src_ports.is_empty(),
        "random ports are not listed"
    );
}

#[test]
fn long_flows_are_spread_over_their_duration() {
    // NetFlow with a 10 s active timeout: flows last 5 to 10 s and are exported at their end
    let mut c = cfg();
    c.delay_s = 10;
    let s = AttackSpec {
        flow_ms: (5_000, 10_000),
        ..spec(17, 0, Some(123), None, 20_000, 468)
    };
    let r = run(c, Some(s), 10, 60, 90, 11);
    let (_, end) = r.ended()[0];
    within(end.summary.avg_pps, 20_000.0, "pps");
    within(end.summary.peak_pps, 20_000.0, "peak pps");
}

#[test]
fn finish_ends_every_attack_at_the_end_of_a_replay() {
    let r = run(
        cfg(),
        Some(spec(17, 0, Some(123), None, 20_000, 468)),
        10,
        30,
        30,
        12,
    );
    let mut d = r.d;
    let ongoing = d.ongoing();
    assert_eq!(ongoing.len(), 1);
    assert_eq!(ongoing[0].summary.attack_type, Some(DdosType::NtpAmpFlood));
    let mut out = Vec::new();
    d.finish(T0 + 30_000, &mut out);
    assert!(d.ongoing().is_empty());
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0], AttackUpdate::Ended(_)));
    assert_eq!(d.stats().active_attacks, 0);
}

fn arb_flow() -> impl Strategy<Value = FlowRecord> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        0u8..4,
    )
        .prop_map(
            |(start, end, packets, bytes, proto, tcp_flags, port, host)| FlowRecord {
                src_addr: "203.0.113.1".parse().unwrap(),
                dst_addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)),
                src_port: port,
                dst_port: port.rotate_left(3),
                proto,
                tcp_flags,
                packets,
                bytes,
                start_ms: start,
                end_ms: end,
                sampling_rate: 0,
                ..FlowRecord::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_input_panics(flows in proptest::collection::vec(arb_flow(), 0..40), clocks in proptest::collection::vec(any::<u64>(), 1..6)) {
        let mut c = cfg();
        c.thresholds.insert(TrafficClass::All, limit(1, 1, 1));
        let mut d = DdosDetector::new(c).unwrap();
        let mut b = FlowBatch::new();
        for f in &flows {
            b.push(f);
        }
        let mut out = Vec::new();
        for now in clocks {
            d.process(&b, now, &mut out);
            d.tick(now.saturating_add(1000), &mut out);
        }
        d.finish(u64::MAX, &mut out);
        prop_assert_eq!(d.stats().active_attacks, 0);
    }

    #[test]
    fn spreading_keeps_every_packet_of_a_flow_inside_the_ring(start in 0u64..10_000, len in 0u64..10_000, packets in 1u64..1_000_000) {
        let mut c = cfg();
        c.delay_s = 20;
        let mut d = DdosDetector::new(c).unwrap();
        let mut b = FlowBatch::new();
        let s = T0 + start;
        b.push(&FlowRecord { packets, bytes: packets * 100, ..flow("192.0.2.1", VICTIM, 17, 9, 9, s, s + len) });
        d.ingest(&b, T0 + 20_000);
        let h = d.hosts.values().next().unwrap();
        // slot 0 (`all`) of every second of the ring
        let total: f64 = h.buckets.iter().step_by(h.classes.len()).map(|b| f64::from(b.pkts)).sum();
        prop_assert!((total - packets as f64).abs() <= 1e-5 * packets as f64, "{} != {}", total, packets);
    }
}

#[test]
fn a_strong_attack_is_seen_within_two_seconds_despite_the_delay() {
    let s = AttackSpec {
        flow_ms: (200, 1_000),
        ..spec(6, 0x02, None, Some(80), 200_000, 60)
    };
    let r = run(cfg(), Some(s), 10, 30, 50, 21);
    let first = r.updates.first().expect("detected");
    assert!(matches!(first.1, AttackUpdate::Started(_)));
    assert!(first.0 <= T0 + 12_000, "seen at {} ms", first.0 - T0);
    // the settled measurement still gives the true rate
    within(
        r.ended().first().map_or(0.0, |e| e.1.summary.avg_pps),
        200_000.0,
        "pps",
    );
}

#[test]
fn few_reflectors_are_the_heavy_hitters_with_their_port() {
    let s = AttackSpec {
        sources: 5,
        ..spec(17, 0, Some(123), None, 20_000, 468)
    };
    let r = run(cfg(), Some(s), 10, 30, 50, 22);
    let (_, end) = r.ended()[0];
    let mut top: Vec<String> = end
        .summary
        .top_sources
        .iter()
        .map(|(a, _)| a.to_string())
        .collect();
    top.sort();
    let want: Vec<String> = (0..5).map(|i| format!("203.0.113.{i}")).collect();
    assert_eq!(top, want);
    let Kind::Ddos(e) = &end.message.kind else {
        panic!()
    };
    assert_eq!(e.attack_src_port, vec![123]);
    assert_eq!(e.attack_src_ip.len(), 5);
    assert_eq!(end.summary.protocols[0].0, 17);
    assert_eq!(end.summary.sampling, (1, 1));
}

#[test]
fn events_encode_as_yang_json() {
    let r = run(
        cfg(),
        Some(spec(6, 0x02, None, Some(80), 50_000, 60)),
        10,
        30,
        50,
        23,
    );
    for (_, u) in &r.updates {
        let text = pharos_model::json::encode_string(u.message());
        assert!(
            text.contains("syn-flood") && text.contains(VICTIM),
            "{text}"
        );
        let back = pharos_model::json::decode_str(&text).expect("decodes");
        assert_eq!(back.kind, u.message().kind);
    }
}

#[test]
fn carpet_bombing_of_a_prefix_is_one_aggregate_attack() {
    let mut c = cfg();
    let mut g = HostGroupConfig {
        name: "dc".into(),
        prefixes: vec!["198.51.100.0/24".into()],
        ..Default::default()
    };
    g.aggregate
        .insert(TrafficClass::Udp, limit(50_000, u64::MAX, u64::MAX));
    c.groups = vec![g];
    let r = run_with(c, 60, 5, |s, t, b| {
        if (10..30).contains(&s) {
            // 100,000 pps over 200 hosts: 500 pps each, far below any per-host threshold
            for h in 0..200u32 {
                let mut f = flow(
                    "203.0.113.9",
                    &format!("198.51.100.{h}"),
                    17,
                    40_000,
                    9_999,
                    t,
                    t + 999,
                );
                f.packets = 500;
                f.bytes = 500 * 1_000;
                b.push(&f);
            }
        }
    });
    let out: Vec<AttackUpdate> = r.updates.into_iter().map(|(_, u)| u).collect();
    let started: Vec<_> = out
        .iter()
        .filter(|u| matches!(u, AttackUpdate::Started(_)))
        .collect();
    assert_eq!(started.len(), 1, "{started:#?}");
    let r = started[0].report();
    assert_eq!(r.id.victim, "198.51.100.0".parse::<IpAddr>().unwrap());
    assert_eq!(r.id.prefix_len, Some(24));
    assert_eq!(
        r.id.to_string(),
        format!("ddos/198.51.100.0/24/udp/{}", r.id.start_ms)
    );
    assert_eq!(r.summary.rule, "dc-aggregate/udp/pps");
    assert_eq!(r.summary.attack_type, Some(DdosType::UdpFlood));
    let end = out
        .iter()
        .rev()
        .find(|u| matches!(u, AttackUpdate::Ended(_)))
        .expect("ended");
    // the prefix's own UDP background (about 12,000 pps) is part of the aggregate
    let pps = end.report().summary.avg_pps;
    assert!(
        (100_000.0..125_000.0).contains(&pps),
        "aggregate pps {pps:.0}"
    );
}

/// Thresholds as in the FastNetMon comparison (bench/fastnetmon/pharos-detect.toml): the same
/// per-host limits on `all` and on every class that names a type, so `all`, which also counts
/// the victim's ordinary traffic, crosses before the attack's own class does.
fn fnm_cfg() -> DdosConfig {
    let mut c = cfg();
    for cl in TrafficClass::ALL {
        let l = match cl {
            TrafficClass::All => limit(5_000, 50_000_000, 3_000),
            TrafficClass::Tcp | TrafficClass::Http | TrafficClass::Https | TrafficClass::Tls => {
                limit(0, 0, 3_000)
            }
            _ => limit(5_000, 50_000_000, 0),
        };
        c.thresholds.insert(cl, l);
    }
    c
}

/// The victim's ordinary traffic: about 1,000 pps (UDP and HTTPS), one-second flows.
fn victim_background(t: u64, b: &mut FlowBatch) {
    for i in 0..10u16 {
        let mut f = flow("192.0.2.50", VICTIM, 17, 30_000 + i, 40_000 + i, t, t + 999);
        f.packets = 50;
        f.bytes = 50 * 600;
        b.push(&f);
        let mut f = flow("192.0.2.51", VICTIM, 6, 50_000 + i, 443, t, t + 999);
        f.tcp_flags = 0x18;
        f.packets = 50;
        f.bytes = 50 * 400;
        b.push(&f);
    }
}

/// An attack of instantaneous flow records every 100 ms from `T0 + a0 s` (a clean start: every
/// packet sent before the clock is exported by then).
fn clean(s: AttackSpec) -> AttackSpec {
    AttackSpec {
        flow_ms: (0, 0),
        ..s
    }
}

/// `spec` from second 10 to 40 over the victim's ordinary traffic, with [`fnm_cfg`].
fn over_fnm(spec: AttackSpec) -> Run {
    let t0 = T0 + 10_000;
    let mut g = AttackGen::new(spec, t0, 7);
    run_with(fnm_cfg(), 70, 31, |s, t, b| {
        victim_background(t, b);
        if s == 39 {
            g.finish(t0, t + 1000, b);
        } else if (10..39).contains(&s) {
            g.emit(t0, t + 1000, b);
        }
    })
}

/// One attack that crosses `all` before its own class: exactly one event, of type `want` from
/// the first notification on, with its true rate at the first alarm and in the first update.
fn one_event_typed_from_the_start(r: &Run, pps: f64, want: DdosType) {
    let started = r.started();
    assert_eq!(
        started.len(),
        1,
        "{:#?}",
        started.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    let s = started[0];
    assert_eq!(s.summary.attack_type, Some(want), "{}", s.id);
    let Kind::Ddos(e) = &s.message.kind else {
        panic!("not a DDoS event")
    };
    assert_eq!(e.attack_type, Some(want));
    within(s.summary.avg_pps, pps, "pps at the first alarm");
    within(
        e.attack_rate.unwrap() as f64,
        pps,
        "attack-rate at the first alarm",
    );
    let first_update = r
        .updates
        .iter()
        .find_map(|(_, u)| match u {
            AttackUpdate::Updated(r) => Some(r),
            _ => None,
        })
        .expect("an update");
    within(first_update.summary.avg_pps, pps, "pps at the first update");
    assert!(r.updates.iter().all(|(_, u)| u.id() == &s.id), "one id");
    assert!(
        r.updates
            .iter()
            .all(|(_, u)| u.report().summary.attack_type == Some(want)),
        "the type never changes"
    );
    let ended = r.ended();
    assert_eq!(ended.len(), 1);
    within(ended[0].1.summary.avg_pps, pps, "pps at the end");
}

#[test]
fn a_syn_flood_crossing_all_before_syn_is_one_syn_flood_from_the_first_event() {
    let r = over_fnm(clean(spec(6, 0x02, None, Some(80), 7_000, 60)));
    one_event_typed_from_the_start(&r, 7_000.0, DdosType::SynFlood);
}

#[test]
fn an_icmp_flood_crossing_all_before_icmpv4_is_one_icmpv4_flood_from_the_first_event() {
    let r = over_fnm(clean(spec(1, 0, Some(0), Some(0), 7_000, 84)));
    one_event_typed_from_the_start(&r, 7_000.0, DdosType::Icmpv4Flood);
}

#[test]
fn an_ntp_reflection_crossing_all_first_is_one_ntp_amp_flood() {
    let r = over_fnm(spec(17, 0, Some(123), None, 7_000, 468));
    let s = r.started();
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!(s[0].summary.attack_type, Some(DdosType::NtpAmpFlood));
    assert!(r.updates.iter().all(|(_, u)| u.id() == &s[0].id));
}

#[test]
fn a_strong_attack_reports_its_true_rate_at_the_first_alarm() {
    // Seen within a second through the window ending now, whose mean still holds four quiet
    // seconds: the rate reported is measured over the seconds since the attack began.
    let r = run(
        cfg(),
        Some(clean(spec(6, 0x02, None, Some(80), 150_000, 60))),
        10,
        30,
        50,
        24,
    );
    let (t, first) = r.updates.first().expect("detected");
    assert!(matches!(first, AttackUpdate::Started(_)));
    assert!(*t <= T0 + 11_000, "seen at {} ms", t - T0);
    let s = first.report();
    within(s.summary.avg_pps, 150_000.0, "pps at the first alarm");
    within(s.summary.peak_pps, 150_000.0, "peak at the first alarm");
    within(
        s.summary.avg_bytes_ps,
        150_000.0 * 60.0,
        "bytes/s at the first alarm",
    );
}

#[test]
fn a_mixed_flood_raised_on_all_is_refined_in_place_when_one_class_crosses_its_threshold() {
    // NTP, SYN and ICMP, none over its own threshold nor most of the traffic: an `all` attack
    // of no single type; then the SYN part grows over its threshold: the same attack, updated
    // at once with the type syn-flood (no second start, one id for the hook).
    let t0 = T0 + 10_000;
    let mut gens = [
        AttackGen::new(clean(spec(17, 0, Some(123), None, 2_000, 468)), t0, 1),
        AttackGen::new(clean(spec(6, 0x02, None, Some(80), 2_000, 60)), t0, 2),
        AttackGen::new(clean(spec(1, 0, Some(0), Some(0), 1_500, 84)), t0, 3),
    ];
    let t1 = T0 + 20_000;
    let mut more_syn = AttackGen::new(clean(spec(6, 0x02, None, Some(80), 6_000, 60)), t1, 4);
    let r = run_with(fnm_cfg(), 70, 32, |s, t, b| {
        victim_background(t, b);
        if (10..40).contains(&s) {
            for g in gens.iter_mut() {
                g.emit(t0, t + 1000, b);
            }
        }
        if (20..40).contains(&s) {
            more_syn.emit(t1, t + 1000, b);
        }
    });
    let started = r.started();
    assert_eq!(started.len(), 1, "{started:#?}");
    let id = started[0].id;
    assert_eq!(id.class, TrafficClass::All);
    assert_eq!(started[0].summary.class, TrafficClass::All);
    assert_eq!(
        started[0].summary.attack_type, None,
        "no protocol dominates"
    );
    let (t_refined, refined) = r
        .updates
        .iter()
        .find(|(_, u)| u.report().summary.attack_type == Some(DdosType::SynFlood))
        .expect("refined to syn-flood");
    assert!(matches!(refined, AttackUpdate::Updated(_)), "{refined:#?}");
    assert!(
        (T0 + 20_000..=T0 + 24_000).contains(t_refined),
        "refined at {} ms",
        t_refined - T0
    );
    assert_eq!(refined.id(), &id, "same attack, same id");
    assert_eq!(refined.report().summary.class, TrafficClass::Syn);
    assert_eq!(refined.report().summary.rule, "default/syn/pps");
    assert_eq!(
        id.to_string(),
        format!("ddos/{VICTIM}/all/{}", id.start_ms),
        "the id keeps the class the attack was raised as"
    );
    assert!(r.updates.iter().all(|(_, u)| u.id() == &id));
    let ended = r.ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1.summary.attack_type, Some(DdosType::SynFlood));
    within(ended[0].1.summary.avg_pps, 8_000.0, "pps of the syn-flood");
}

#[test]
fn an_ntp_reflection_and_a_syn_flood_on_one_victim_at_once_are_two_attacks() {
    // Disjoint traffic, each over its own threshold: two attacks, each with its own type and id.
    let t0 = T0 + 10_000;
    let mut ntp = AttackGen::new(spec(17, 0, Some(123), None, 20_000, 468), t0, 1);
    let mut syn = AttackGen::new(spec(6, 0x02, None, Some(80), 50_000, 60), t0, 2);
    let r = run_with(cfg(), 60, 33, |s, t, b| {
        if (10..30).contains(&s) {
            ntp.emit(t0, t + 1000, b);
            syn.emit(t0, t + 1000, b);
        }
    });
    let mut types: Vec<_> = r.started().iter().map(|s| s.summary.attack_type).collect();
    types.sort_by_key(|t| t.map(|t| t.name()));
    assert_eq!(
        types,
        vec![Some(DdosType::NtpAmpFlood), Some(DdosType::SynFlood)]
    );
    assert_eq!(r.ended().len(), 2);
}

#[test]
fn a_syn_flood_to_port_80_is_not_also_an_http_flood() {
    // Every SYN to port 80 is in `syn` and in `http`: both cross (pps and flows/s) at once, on
    // the same traffic. One attack, the first class in the tree order (`syn`).
    let s = AttackSpec {
        sources: 1_000,
        ..clean(spec(6, 0x02, None, Some(80), 150_000, 60))
    };
    let r = run(cfg(), Some(s), 10, 30, 50, 25);
    let started = r.started();
    assert_eq!(
        started.len(),
        1,
        "{:#?}",
        started.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    assert_eq!(started[0].summary.attack_type, Some(DdosType::SynFlood));
    assert_eq!(r.ended().len(), 1);
}
