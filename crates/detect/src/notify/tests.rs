//! Tests of the notification stage: unit tests of each layer, then the suricata-verify threshold
//! cases and the CrowdSec hub scenario tests from `../shared` (skipped when it is absent).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use pharos_model::ident::{IntrusionAttackType, UserActivityType};
use pharos_model::{AdditionalInfo, IntrusionEvent, Kind, Message, UserActivityLog};

use super::*;

const T0: u64 = 1_767_225_600_000;

fn intrusion(rule: &str, src: [u8; 4], dst: [u8; 4]) -> Message {
    Message::new(
        "ids1",
        Kind::Intrusion(IntrusionEvent {
            src_ip: Some(IpAddr::from(src)),
            src_port: None,
            dst_ip: Some(IpAddr::from(dst)),
            dst_port: None,
            rule_name: rule.into(),
            protocol: None,
            app: None,
            attack_type: None,
        }),
    )
}

fn failed_login(user: &str, src: [u8; 4]) -> Message {
    Message::new(
        "sshd1",
        Kind::UserActivityLog(UserActivityLog {
            user: user.into(),
            group: vec!["unknown".into()],
            ip_address: IpAddr::from(src),
            l4_port_number: 40000,
            authentication: None,
            online_duration: None,
            logout_duration: None,
            additional_info: AdditionalInfo {
                activity_type: Some(UserActivityType::FailedLogin),
                cause: None,
            },
        }),
    )
}

fn cfg(dedup_window_s: u64) -> NotifyConfig {
    NotifyConfig {
        dedup_window_s,
        ..NotifyConfig::default()
    }
}

#[test]
fn identical_notifications_fold_into_one_with_count_and_first_last_seen() {
    let mut n = Notifier::new(cfg(10)).unwrap();
    let mut out = Vec::new();
    let a = intrusion("sid:1", [10, 0, 0, 1], [10, 0, 0, 2]);
    for i in 0..5 {
        n.process(&a, T0 + i * 1000, &mut out);
    }
    // A different address is another object.
    n.process(
        &intrusion("sid:1", [10, 0, 0, 3], [10, 0, 0, 2]),
        T0,
        &mut out,
    );
    assert_eq!(out.len(), 2, "first of each object at once: {out:?}");
    assert!(out.iter().all(|x| x.phase == Phase::First && x.count == 1));
    out.clear();
    n.tick(T0 + 9_999, &mut out);
    assert!(out.is_empty());
    n.tick(T0 + 10_000, &mut out);
    assert_eq!(out.len(), 1, "only the fold with repeats gets an update");
    let u = &out[0];
    assert_eq!((u.phase, u.count), (Phase::Update, 5));
    assert_eq!((u.first_seen_ms, u.last_seen_ms), (T0, T0 + 4000));
    assert_eq!(
        u.message.common.dampening_type,
        Some(DampeningType::OnRepetition)
    );
    // After the window, the same notification starts a new fold and is output at once.
    out.clear();
    n.process(&a, T0 + 11_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(n.stats().folded, 4);
}

#[test]
fn dampening_holds_changes_until_the_period_ends_and_emits_only_the_latest() {
    let mut c = cfg(0);
    c.dampening_s.insert("intrusion".into(), 30);
    let mut n = Notifier::new(c).unwrap();
    let mut out = Vec::new();
    let mut a = intrusion("sid:7", [10, 0, 0, 1], [10, 0, 0, 2]);
    n.process(&a, T0, &mut out);
    assert_eq!(out.len(), 1);
    for i in 1..=3u64 {
        a.common.message = Some(format!("change {i}"));
        n.process(&a, T0 + i * 1000, &mut out);
    }
    assert_eq!(out.len(), 1, "changes within the period are held");
    n.tick(T0 + 29_999, &mut out);
    assert_eq!(out.len(), 1);
    n.tick(T0 + 30_000, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].message.common.message.as_deref(), Some("change 3"));
    // Nothing changed in the next period: nothing is output, and the state is freed after it.
    n.tick(T0 + 60_000, &mut out);
    n.tick(T0 + 61_000, &mut out);
    assert_eq!(out.len(), 2);
    assert!(n.dampers.is_empty());
    assert_eq!(n.stats().dampened, 3);
}

#[test]
fn threshold_rules_silence_notifications_and_full_tables_pass_them_through() {
    let mut c = cfg(60);
    c.max_keys = 1;
    c.thresholds.push(ThresholdRule::new(
        Some("sid:9"),
        ThresholdType::Limit,
        Track::BySrc,
        1,
        60,
    ));
    let mut n = Notifier::new(c).unwrap();
    let mut out = Vec::new();
    for i in 0..3 {
        n.process(
            &intrusion("sid:9", [10, 0, 0, 1], [10, 0, 0, 2]),
            T0 + i,
            &mut out,
        );
    }
    assert_eq!((out.len(), n.stats().thresholded), (1, 2));
    // The fold table holds one key: another object passes through unfolded, every time.
    for i in 0..2 {
        n.process(
            &intrusion("sid:8", [10, 0, 0, 1], [10, 0, 0, 2]),
            T0 + i,
            &mut out,
        );
    }
    assert_eq!(out.len(), 3);
    assert_eq!(n.stats().dropped_full, 2);
}

proptest::proptest! {
    #[test]
    fn notifier_never_panics_and_stays_within_max_keys(
        events in proptest::collection::vec((0u8..4, 0u8..8, 0u64..200_000), 1..200),
    ) {
        let mut c = cfg(5);
        c.max_keys = 8;
        c.dampening_s.insert("intrusion".into(), 3);
        c.dampening_s.insert("user-activity-log".into(), 2);
        for (i, mode) in [
            ThresholdType::Limit,
            ThresholdType::Threshold,
            ThresholdType::Both,
            ThresholdType::DetectionFilter,
            ThresholdType::Backoff,
            ThresholdType::RateFilter,
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = ThresholdRule::new(None, mode, Track::ByFlow, i as u64 + 1, 2);
            (r.multiplier, r.timeout, r.new_action) = (2, 1, Some(RateAction::Drop));
            c.thresholds.push(r);
        }
        c.correlate.push(ssh_bf());
        let mut n = Notifier::new(c).unwrap();
        let mut out = Vec::new();
        let mut now = T0;
        for (what, who, dt) in events {
            now += dt;
            let m = match what {
                0 => failed_login("root", [10, 0, 0, who]),
                _ => intrusion(&format!("sid:{what}"), [10, 0, 0, who], [10, 0, 1, 1]),
            };
            n.process(&m, now, &mut out);
            n.tick(now, &mut out);
            proptest::prop_assert!(n.folds.len() <= 8 && n.dampers.len() <= 8);
            proptest::prop_assert!(n.thresholds.len() <= 8);
        }
        n.finish(now, &mut out);
        proptest::prop_assert_eq!(n.stats().output, out.len() as u64);
    }
}

fn run(rule: ThresholdRule, times_s: &[u64]) -> Vec<u64> {
    let mut t = Thresholds::new(vec![rule], 100).unwrap();
    let m = intrusion("sid:1", [10, 0, 0, 1], [10, 0, 0, 2]);
    let f = Fields::of(&m);
    times_s
        .iter()
        .enumerate()
        .filter(|(_, s)| t.check(&f, T0 + **s * 1000) != Verdict::Silence)
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

#[test]
fn suricata_threshold_types_alert_on_the_documented_matches() {
    let every_s: Vec<u64> = (0..12).collect();
    let r = |mode, count| ThresholdRule::new(Some("sid:1"), mode, Track::BySrc, count, 60);
    assert_eq!(run(r(ThresholdType::Limit, 3), &every_s), [1, 2, 3]);
    assert_eq!(run(r(ThresholdType::Threshold, 5), &every_s), [5, 10]);
    assert_eq!(run(r(ThresholdType::Both, 5), &every_s), [5]);
    assert_eq!(
        run(r(ThresholdType::DetectionFilter, 9), &every_s),
        [10, 11, 12]
    );
    // The window restarts after `seconds`: limit alerts again.
    assert_eq!(run(r(ThresholdType::Limit, 1), &[0, 30, 61, 62]), [1, 3]);
    let mut b = r(ThresholdType::Backoff, 1);
    b.multiplier = 10;
    let many: Vec<u64> = (0..1000).collect();
    assert_eq!(run(b, &many), [1, 10, 100, 1000]);
    // suricata-verify threshold-rule-flow-backoff-single-flow: 6676 matches of one flow give
    // 13, 12 and 5 alerts (its pcap is not in the corpus; the counts are).
    let flow: Vec<u64> = vec![0; 6676];
    for (count, mult, want) in [(1, 2, 13), (3, 2, 12), (5, 5, 5)] {
        let mut b = ThresholdRule::new(
            Some("sid:1"),
            ThresholdType::Backoff,
            Track::ByFlow,
            count,
            0,
        );
        b.multiplier = mult;
        assert_eq!(run(b, &flow).len(), want, "count {count} multiplier {mult}");
    }
    let mut rf = r(ThresholdType::RateFilter, 2);
    (rf.new_action, rf.timeout) = (Some(RateAction::Pass), 5);
    assert_eq!(run(rf, &[0, 1, 2, 3, 4, 8, 9]), [1, 2, 6, 7]);
}

#[test]
fn suppress_silences_matches_from_the_listed_networks_only() {
    let mut r = ThresholdRule::new(Some("sid:1"), ThresholdType::Suppress, Track::BySrc, 0, 0);
    r.ip = vec!["10.0.0.0/24".into()];
    let mut t = Thresholds::new(vec![r.clone()], 10).unwrap();
    let hit = intrusion("sid:1", [10, 0, 0, 1], [192, 0, 2, 1]);
    let miss = intrusion("sid:1", [10, 0, 1, 1], [192, 0, 2, 1]);
    let other_rule = intrusion("sid:2", [10, 0, 0, 1], [192, 0, 2, 1]);
    assert_eq!(t.check(&Fields::of(&hit), T0), Verdict::Silence);
    assert_eq!(t.check(&Fields::of(&miss), T0), Verdict::Alert(None));
    assert_eq!(t.check(&Fields::of(&other_rule), T0), Verdict::Alert(None));
    r.ip = vec!["10.0.0.300".into()];
    assert!(matches!(
        Thresholds::new(vec![r], 10),
        Err(ConfigError { .. })
    ));
}

#[test]
fn trackers_are_bounded_and_fail_open_when_full() {
    let r = ThresholdRule::new(None, ThresholdType::Limit, Track::BySrc, 1, 60);
    let mut t = Thresholds::new(vec![r], 2).unwrap();
    for i in 0..10u8 {
        let m = intrusion("x", [10, 0, 0, i], [10, 0, 0, 2]);
        assert_eq!(t.check(&Fields::of(&m), T0), Verdict::Alert(None));
    }
    assert_eq!((t.len(), t.dropped_full), (2, 8));
    t.expire(T0 + 61_000);
    assert!(t.is_empty());
}

fn ssh_bf() -> CorrelationRule {
    CorrelationRule {
        name: "ssh-bf".into(),
        kinds: vec!["user-activity-log".into()],
        activity: Some("failed-login".into()),
        actions: Vec::new(),
        text: Vec::new(),
        not_text: Vec::new(),
        rule: None,
        group_by: GroupBy::Src,
        distinct: None,
        capacity: 5,
        leakspeed_ms: 10_000,
        count: 0,
        seconds: 0,
        blackhole_s: 60,
        emit: Emit::BruteForce,
    }
}

#[test]
fn n_distinct_events_within_t_seconds_raise_one_sliding_window_event() {
    let rule = CorrelationRule {
        name: "ssh-user-enum".into(),
        distinct: Some(Distinct::User),
        capacity: 0,
        count: 5,
        seconds: 60,
        ..ssh_bf()
    };
    let mut c = Correlator::new(vec![rule], "pharos", 100);
    let mut out = Vec::new();
    let src = [198, 51, 100, 7];
    // Four users within a minute, the same user again and again: no event.
    for (i, u) in ["a", "b", "c", "d", "d", "d"].into_iter().enumerate() {
        c.process(&failed_login(u, src), T0 + i as u64 * 10_000, &mut out);
    }
    assert!(out.is_empty());
    // A fifth user more than a minute after the first: the window slid, still no event.
    c.process(&failed_login("e", src), T0 + 61_000, &mut out);
    assert!(out.is_empty());
    // ... but the next one makes five distinct users within the last minute.
    c.process(&failed_login("f", src), T0 + 62_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].phase, Phase::Correlated);
    c.expire(T0 + 200_000);
    assert!(c.buckets.is_empty() && c.blackholes.is_empty());
}

#[test]
fn failed_logins_overflow_a_leaky_bucket_into_one_brute_force_event() {
    let mut c = cfg(0);
    c.correlate.push(ssh_bf());
    let mut n = Notifier::new(c).unwrap();
    let mut out = Vec::new();
    for i in 0..20u64 {
        n.process(
            &failed_login("root", [203, 0, 113, 5]),
            T0 + i * 500,
            &mut out,
        );
        // Slow failures from another source never overflow.
        n.process(
            &failed_login("root", [203, 0, 113, 6]),
            T0 + i * 30_000,
            &mut out,
        );
    }
    let ev: Vec<&Notice> = out
        .iter()
        .filter(|x| x.phase == Phase::Correlated)
        .collect();
    assert_eq!(ev.len(), 1, "one event, then the blackhole: {ev:?}");
    let Kind::Intrusion(e) = &ev[0].message.kind else {
        panic!("not an intrusion")
    };
    assert_eq!(e.attack_type, Some(IntrusionAttackType::BruteForce));
    assert_eq!(e.src_ip, Some(IpAddr::from([203, 0, 113, 5])));
    assert_eq!(e.rule_name, "ssh-bf");
    assert_eq!(ev[0].count, 6);
    assert_eq!(n.stats().correlated, 1);
}

#[test]
fn config_parses_from_toml_and_rejects_unknown_keys_and_kinds() {
    let c: NotifyConfig = toml::from_str(
        r#"
        dedup_window = "30s"
        dampening = { intrusion = "10s" }
        [[thresholds]]
        rule = "2100498"
        type = "limit"
        track = "by_src"
        count = 1
        seconds = 60
        [[correlate]]
        name = "ssh-bf"
        kinds = ["user-activity-log"]
        activity = "failed-login"
        capacity = 5
        leakspeed = "10s"
        blackhole = "1m"
        emit = "brute-force"
        [[correlate]]
        name = "port-scan"
        kinds = ["firewall-traffic-log"]
        distinct = "dst_port"
        count = 20
        seconds = 10
        emit = "port-scan"
        "#,
    )
    .unwrap();
    assert_eq!(c.thresholds[0].mode, ThresholdType::Limit);
    assert!(Notifier::new(c.clone()).is_ok());
    assert_eq!((c.dedup_window_s, c.dampening_s["intrusion"]), (30, 10));
    assert_eq!(
        (c.correlate[0].leakspeed_ms, c.correlate[0].blackhole_s),
        (10_000, 60)
    );
    let e = toml::from_str::<NotifyConfig>("dedup_window = 3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("write \"3s\" instead of 3"), "{e}");
    assert!(toml::from_str::<NotifyConfig>("dedup_window_s = 3").is_err());
    let mut bad = c;
    bad.dampening_s = BTreeMap::from([("intrusions".to_string(), 1)]);
    let e = Notifier::new(bad).unwrap_err().to_string();
    assert!(e.contains("[notify] dampening = \"intrusions\""), "{e}");
}

// ---- corpora -----------------------------------------------------------------------------

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("PHAROS_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    p.is_dir().then_some(p)
}

fn corpus(sub: &str) -> Option<PathBuf> {
    let p = shared()?.join("corpora").join(sub);
    p.is_dir().then_some(p)
}

/// One packet of a capture, as far as the tiny rule matcher needs.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    ts_ms: u64,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    flags: u8,
    itype: Option<u8>,
    dsize: usize,
}

fn read_pcap(b: &[u8]) -> Option<Vec<Pkt>> {
    let magic = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    let le = match magic {
        0xa1b2c3d4 | 0xa1b23c4d => true,
        0xd4c3b2a1 | 0x4d3cb2a1 => false,
        _ => return None,
    };
    let nanos = matches!(magic, 0xa1b23c4d | 0x4d3cb2a1);
    let u32at = |o: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    };
    if u32at(20)? & 0xffff != 1 {
        return None;
    }
    let mut pos = 24;
    let mut out = Vec::new();
    while pos + 16 <= b.len() {
        let (sec, frac, cap) = (u32at(pos)?, u32at(pos + 4)?, u32at(pos + 8)? as usize);
        let d = b.get(pos + 16..pos + 16 + cap)?;
        pos += 16 + cap;
        let sub_ms = if nanos { frac / 1_000_000 } else { frac / 1000 };
        let ts_ms = u64::from(sec) * 1000 + u64::from(sub_ms);
        if d.len() < 34 || d[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &d[14..];
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let l4 = ip.get(ihl..total)?;
        let (src, dst) = (
            IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).ok()?),
            IpAddr::from(<[u8; 4]>::try_from(&ip[16..20]).ok()?),
        );
        let mut p = Pkt {
            ts_ms,
            src,
            dst,
            proto: ip[9],
            sport: 0,
            dport: 0,
            flags: 0,
            itype: None,
            dsize: 0,
        };
        match p.proto {
            6 if l4.len() >= 20 => {
                p.sport = u16::from_be_bytes([l4[0], l4[1]]);
                p.dport = u16::from_be_bytes([l4[2], l4[3]]);
                p.flags = l4[13];
                p.dsize = l4.len().saturating_sub(usize::from(l4[12] >> 4) * 4);
            }
            17 if l4.len() >= 8 => {
                p.sport = u16::from_be_bytes([l4[0], l4[1]]);
                p.dport = u16::from_be_bytes([l4[2], l4[3]]);
                p.dsize = l4.len() - 8;
            }
            1 if !l4.is_empty() => {
                p.itype = Some(l4[0]);
                p.dsize = l4.len().saturating_sub(8);
            }
            _ => {}
        }
        out.push(p);
    }
    Some(out)
}

/// A signature of the simple forms the cases use; anything else is not evaluable.
#[derive(Debug)]
struct Sig {
    sid: String,
    proto: Option<u8>,
    dst: Option<IpAddr>,
    dport: Option<u16>,
    itype: Option<u8>,
    flags: Option<u8>,
    dsize: Option<(char, usize)>,
    threshold: Option<ThresholdRule>,
}

fn split_opts(s: &str) -> Vec<String> {
    let (mut v, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                v.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    v.retain(|x| !x.is_empty());
    v
}

/// `key value, key value, ...` (threshold options and threshold.config lines).
fn kv_list(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|p| {
            let (k, v) = p.trim().split_once(' ')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn threshold_from(
    kind: &str,
    sid: &str,
    kv: &BTreeMap<String, String>,
) -> Result<ThresholdRule, String> {
    let mode = match (kind, kv.get("type").map(String::as_str)) {
        ("detection_filter", _) => ThresholdType::DetectionFilter,
        ("rate_filter", _) => ThresholdType::RateFilter,
        ("suppress", _) => ThresholdType::Suppress,
        (_, Some("limit")) => ThresholdType::Limit,
        (_, Some("threshold")) => ThresholdType::Threshold,
        (_, Some("both")) => ThresholdType::Both,
        (_, Some("backoff")) => ThresholdType::Backoff,
        (_, t) => return Err(format!("threshold type {t:?}")),
    };
    let track = match kv.get("track").map(String::as_str) {
        Some("by_src") | None => Track::BySrc,
        Some("by_dst") => Track::ByDst,
        Some("by_rule") => Track::ByRule,
        Some("by_both") => Track::ByBoth,
        Some("by_flow") => Track::ByFlow,
        Some("by_either") => Track::ByEither,
        Some(t) => return Err(format!("track {t}")),
    };
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let mut r = ThresholdRule::new(Some(sid), mode, track, num("count"), num("seconds"));
    r.multiplier = num("multiplier");
    r.timeout = num("timeout");
    r.unique_on = match kv.get("unique_on").map(String::as_str) {
        None => None,
        Some("src_port") => Some(UniqueOn::SrcPort),
        Some("dst_port") => Some(UniqueOn::DstPort),
        Some(u) => return Err(format!("unique_on {u}")),
    };
    r.new_action = match kv.get("new_action").map(String::as_str) {
        None => None,
        Some("alert") => Some(RateAction::Alert),
        Some("drop") => Some(RateAction::Drop),
        Some("reject") => Some(RateAction::Reject),
        Some("pass") => Some(RateAction::Pass),
        Some(a) => return Err(format!("new_action {a}")),
    };
    if let Some(ip) = kv.get("ip") {
        r.ip = vec![ip.clone()];
    }
    Ok(r)
}

fn parse_sig(line: &str) -> Result<Sig, String> {
    let (head, rest) = line.split_once('(').ok_or("no options")?;
    let h: Vec<&str> = head.split_whitespace().collect();
    let [action, proto, src, sport, dir, dst, dport] = h[..] else {
        return Err(format!("header {head}"));
    };
    if !matches!(action, "alert" | "drop") || dir != "->" || src != "any" || sport != "any" {
        return Err(format!("header {head}"));
    }
    let proto = match proto {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "ip" => None,
        p => return Err(format!("protocol {p}")),
    };
    let dst = match dst {
        "any" => None,
        a => Some(a.parse().map_err(|_| format!("address {a}"))?),
    };
    let dport = match dport {
        "any" => None,
        p => Some(p.parse().map_err(|_| format!("port {p}"))?),
    };
    let mut s = Sig {
        sid: String::new(),
        proto,
        dst,
        dport,
        itype: None,
        flags: None,
        dsize: None,
        threshold: None,
    };
    let mut thr = None;
    for o in split_opts(rest.trim_end().trim_end_matches(')')) {
        let (k, v) = o
            .split_once(':')
            .map_or((o.as_str(), ""), |(k, v)| (k.trim(), v.trim()));
        match k {
            "msg" | "rev" | "classtype" | "priority" => {}
            "sid" => s.sid = v.to_string(),
            "itype" => s.itype = Some(v.parse().map_err(|_| format!("itype {v}"))?),
            "flow" if v == "stateless" => {}
            "flags" => {
                let mut f = 0u8;
                for c in v.chars() {
                    f |= match c {
                        'F' => 1,
                        'S' => 2,
                        'R' => 4,
                        'P' => 8,
                        'A' => 16,
                        'U' => 32,
                        _ => return Err(format!("flags {v}")),
                    };
                }
                s.flags = Some(f);
            }
            "dsize" => {
                let (op, n) = match v.chars().next() {
                    Some(c @ ('<' | '>')) => (c, &v[1..]),
                    _ => ('=', v),
                };
                s.dsize = Some((op, n.parse().map_err(|_| format!("dsize {v}"))?));
            }
            "threshold" | "detection_filter" => thr = Some((k.to_string(), kv_list(v))),
            _ => return Err(format!("keyword {k}")),
        }
    }
    if let Some((kind, kv)) = thr {
        s.threshold = Some(threshold_from(&kind, &s.sid, &kv)?);
    }
    Ok(s)
}

impl Sig {
    fn matches(&self, p: &Pkt) -> bool {
        self.proto.is_none_or(|x| x == p.proto)
            && self.dst.is_none_or(|a| a == p.dst)
            && self.dport.is_none_or(|x| x == p.dport)
            && self.itype.is_none_or(|t| p.itype == Some(t))
            && self
                .flags
                .is_none_or(|f| p.proto == 6 && p.flags & 0x3f == f)
            && self.dsize.is_none_or(|(op, n)| match op {
                '<' => p.dsize < n,
                '>' => p.dsize > n,
                _ => p.dsize == n,
            })
    }
}

/// `(pcap, [(sid, expected alerts)])` from a test.yaml: only checks on `event_type: alert` and
/// `alert.signature_id` alone are read.
fn parse_test_yaml(s: &str) -> (Option<String>, Vec<(String, u64)>) {
    let mut pcap = None;
    type Block = (Option<u64>, Vec<(String, String)>);
    let mut blocks: Vec<Block> = Vec::new();
    for line in s.lines() {
        let l = line.split(" #").next().unwrap_or("").trim();
        if let Some(p) = line.strip_prefix("pcap:") {
            pcap = Some(p.trim().to_string());
        } else if l.starts_with("- filter:") {
            blocks.push((None, Vec::new()));
        } else if let Some(b) = blocks.last_mut()
            && let Some((k, v)) = l.split_once(':')
        {
            match k.trim() {
                "count" => b.0 = v.trim().parse().ok(),
                "match" | "" => {}
                k => b.1.push((k.to_string(), v.trim().to_string())),
            }
        }
    }
    let checks = blocks
        .into_iter()
        .filter_map(|(count, m)| {
            let sid = m.iter().find(|(k, _)| k == "alert.signature_id")?.1.clone();
            let only = m.len() == 2 && m.iter().any(|(k, v)| k == "event_type" && v == "alert");
            only.then_some((sid, count?))
        })
        .collect();
    (pcap, checks)
}

fn case_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    for p in v {
        if p.join("test.yaml").is_file() {
            out.push(p.clone());
        }
        if p.is_dir() {
            case_dirs(&p, out);
        }
    }
}

/// Runs one case: `Ok(mismatches)` or `Err(why it is skipped)`.
fn run_suricata_case(dir: &Path) -> Result<Vec<String>, String> {
    let yaml = std::fs::read_to_string(dir.join("test.yaml")).map_err(|e| e.to_string())?;
    let (pcap, checks) = parse_test_yaml(&yaml);
    if checks.is_empty() {
        return Err("no alert count checks".into());
    }
    let pcap = pcap.or_else(|| {
        let rd = std::fs::read_dir(dir).ok()?;
        rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find(|n| n.ends_with(".pcap"))
    });
    let pcap = pcap.ok_or("no pcap")?;
    let bytes = std::fs::read(dir.join(&pcap)).map_err(|_| format!("pcap {pcap} absent"))?;
    let pkts = read_pcap(&bytes).ok_or("pcap not classic Ethernet")?;
    let rules_file = ["test.rules", "input.rules"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or("no rules file")?;
    let mut sigs = Vec::new();
    for l in std::fs::read_to_string(rules_file)
        .map_err(|e| e.to_string())?
        .lines()
    {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        sigs.push(parse_sig(l).map_err(|e| format!("rule not evaluable ({e})"))?);
    }
    let mut rules: Vec<ThresholdRule> = sigs.iter().filter_map(|s| s.threshold.clone()).collect();
    if let Ok(tc) = std::fs::read_to_string(dir.join("threshold.config")) {
        for l in tc
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (kind, rest) = l.split_once(' ').ok_or("threshold.config line")?;
            let kv = kv_list(rest);
            let sid = kv
                .get("sig_id")
                .ok_or("threshold.config without sig_id")?
                .clone();
            rules.retain(|r| r.rule.as_deref() != Some(sid.as_str()));
            rules.push(threshold_from(kind, &sid, &kv)?);
        }
    }
    let mut t = Thresholds::new(rules, 100_000).map_err(|e| e.to_string())?;
    let mut alerts: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &pkts {
        for s in sigs.iter().filter(|s| s.matches(p)) {
            let f = Fields {
                kind: "intrusion",
                rule: Some(&s.sid),
                src: Some(p.src),
                dst: Some(p.dst),
                src_port: Some(p.sport).filter(|_| p.proto != 1),
                dst_port: Some(p.dport).filter(|_| p.proto != 1),
                ..Fields::default()
            };
            if t.check(&f, p.ts_ms) != Verdict::Silence {
                *alerts.entry(&s.sid).or_default() += 1;
            }
        }
    }
    Ok(checks
        .iter()
        .filter_map(|(sid, want)| {
            let got = alerts.get(sid.as_str()).copied().unwrap_or(0);
            (got != *want).then(|| format!("sid {sid}: {got} alerts, expected {want}"))
        })
        .collect())
}

/// Prints each case's outcome (`Ok(mismatches)` or `Err(why skipped)`) and the totals, then
/// fails on any mismatch or when no case ran.
fn tally(corpus: &str, results: Vec<(String, Result<Vec<String>, String>)>) {
    let (mut pass, mut skip, mut fail) = (0, 0, Vec::new());
    let total = results.len();
    for (name, r) in results {
        match r {
            Ok(m) if m.is_empty() => {
                pass += 1;
                eprintln!("pass: {name}");
            }
            Ok(m) => fail.push(format!("{name}: {}", m.join("; "))),
            Err(why) => {
                skip += 1;
                eprintln!("skip: {name}: {why}");
            }
        }
    }
    eprintln!(
        "{corpus}: {pass} pass, {skip} skip, {} fail of {total}",
        fail.len()
    );
    assert!(fail.is_empty(), "{fail:#?}");
    assert!(pass >= 1, "no case ran");
}

#[test]
fn suricata_verify_threshold_cases_give_the_expected_alert_counts() {
    let Some(root) = corpus("semantics/suricata-verify") else {
        pharos_model::conformance::skip("../shared/corpora/semantics/suricata-verify absent");
        return;
    };
    let mut dirs = Vec::new();
    case_dirs(&root, &mut dirs);
    let results = dirs
        .iter()
        .map(|d| {
            let name = d.strip_prefix(&root).unwrap_or(d).display().to_string();
            (name, run_suricata_case(d))
        })
        .collect();
    tally("suricata-verify", results);
}

/// The CrowdSec hub scenarios Pharos models (as the hub defines them), by hub name.
fn crowdsec_scenario(name: &str) -> Option<Vec<CorrelationRule>> {
    let ssh = |n: &str, cap, leak, distinct| CorrelationRule {
        name: n.into(),
        capacity: cap,
        leakspeed_ms: leak,
        distinct,
        ..ssh_bf()
    };
    Some(match name {
        "crowdsecurity/ssh-bf" => vec![
            ssh("crowdsecurity/ssh-bf", 5, 10_000, None),
            ssh(
                "crowdsecurity/ssh-bf_user-enum",
                5,
                10_000,
                Some(Distinct::User),
            ),
        ],
        "crowdsecurity/ssh-slow-bf" => vec![
            ssh("crowdsecurity/ssh-slow-bf", 10, 60_000, None),
            ssh(
                "crowdsecurity/ssh-slow-bf_user-enum",
                10,
                60_000,
                Some(Distinct::User),
            ),
        ],
        "crowdsecurity/iptables-scan-multi_ports" => vec![CorrelationRule {
            name: name.into(),
            kinds: vec!["firewall-traffic-log".into()],
            activity: None,
            // The hub's iptables parser gives no iptables_drop for UFW's audit and allow lines.
            not_text: vec!["UFW AUDIT".into(), "UFW ALLOW".into()],
            distinct: Some(Distinct::DstPort),
            capacity: 15,
            leakspeed_ms: 5_000,
            emit: Emit::PortScan,
            ..ssh_bf()
        }],
        _ => return None,
    })
}

fn yaml_list(s: &str, key: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut on = false;
    for l in s.lines() {
        if !l.starts_with(' ') && !l.starts_with('-') {
            on = l.trim_end() == format!("{key}:");
            continue;
        }
        if on && let Some(x) = l.trim().strip_prefix('-') {
            let x = x.split(" #").next().unwrap_or("").trim().trim_matches('"');
            if !x.is_empty() {
                v.push(x.to_string());
            }
        }
    }
    v
}

/// Runs one hub test: `Ok((alerts, expected))` or `Err(why it is skipped)`.
fn run_crowdsec_case(dir: &Path) -> Result<Vec<String>, String> {
    use pharos_wire::syslog::{ParseOptions, parse};
    let assert = std::fs::read_to_string(dir.join("scenario.assert")).map_err(|e| e.to_string())?;
    let want: u64 = assert
        .lines()
        .find_map(|l| l.trim().strip_prefix("len(results) == "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or("no len(results) in scenario.assert")?;
    let cfg = std::fs::read_to_string(dir.join("config.yaml")).map_err(|e| e.to_string())?;
    let mut rules = Vec::new();
    for s in yaml_list(&cfg, "scenarios") {
        rules.extend(crowdsec_scenario(&s).ok_or(format!("scenario {s} not modelled"))?);
    }
    let log = yaml_list(&cfg, "log_file").pop().or_else(|| {
        cfg.lines()
            .find_map(|l| l.strip_prefix("log_file:"))
            .map(|x| x.trim().to_string())
    });
    let log = log.ok_or("no log_file")?;
    let text = std::fs::read_to_string(dir.join(&log)).map_err(|e| e.to_string())?;
    let received = chrono::DateTime::from_timestamp_millis(T0 as i64).ok_or("time")?;
    let opts = ParseOptions::new(received);
    let mut c = Correlator::new(rules, "pharos", 10_000);
    let (mut out, mut parsed) = (Vec::new(), 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let m = parse(line, &opts);
        let input = pharos_normalize::LogInput {
            text: m.text,
            raw: line,
            host: m.header_hostname(),
            app_name: m.app_name,
            time: m.timestamp_utc(),
            facility: m.pri.map(|_| m.facility()),
            severity: m.pri.map(|_| m.severity()),
        };
        let n = pharos_normalize::normalize(&input, pharos_normalize::Format::Auto, "nsf");
        parsed += u64::from(n.parsed);
        let now = u64::try_from(n.message.common.event_time.timestamp_millis()).unwrap_or(0);
        c.process(&n.message, now, &mut out);
    }
    if parsed == 0 {
        return Err("no line normalised (vendor not supported)".into());
    }
    let got = out.len() as u64;
    Ok(if got == want {
        Vec::new()
    } else {
        vec![format!("{got} alerts, expected {want}")]
    })
}

#[test]
fn crowdsec_hub_brute_force_and_port_scan_tests_give_the_expected_alert_counts() {
    let Some(root) = corpus("vendor-logs/crowdsec-hub-tests") else {
        pharos_model::conformance::skip("../shared/corpora/vendor-logs/crowdsec-hub-tests absent");
        return;
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.retain(|d| d.join("scenario.assert").is_file());
    let results = dirs
        .iter()
        .map(|d| {
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_default(), run_crowdsec_case(d))
        })
        .collect();
    tally("crowdsec hub tests", results);
}
