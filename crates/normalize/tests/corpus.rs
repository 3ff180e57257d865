//! Real vendor lines: the Wazuh ruleset test lines of the products we claim, and the CrowdSec hub
//! parser expectations. Both read `../shared/corpora/vendor-logs` (or `$PHAROS_SHARED`) and print
//! `SKIPPED` when it is absent.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use pharos_model::ident::{Identity, IngressAction, UserActivityType};
use pharos_model::{Kind, Message};
use pharos_normalize::{Format, normalize};

/// Wazuh's placeholder lines (a header with no event), which no normaliser can claim.
const WAZUH_STUBS: &[(&str, &str)] = &[("paloalto.ini", ",OTHERS,")];

/// Wazuh test file -> the format we claim for it, and the least share of its lines we must parse
/// (not generic). Lines of a claimed product are always detected as that format; the share is
/// below 1 where the product logs events that have no I2NSF case (e.g. Cisco ASA module status
/// ids, Check Point VPN key exchanges, PAN-OS header-only test stubs).
const WAZUH: &[(&str, &str, f64)] = &[
    ("fortigate.ini", "fortigate", 0.6),
    ("fortiddos.ini", "fortiddos", 1.0),
    ("paloalto.ini", "panos", 0.5),
    ("cisco_asa.ini", "cisco-asa", 0.4),
    ("cisco_ftd.ini", "cisco-asa", 0.35),
    ("pix.ini", "cisco-asa", 0.3),
    ("checkpoint_smart1.ini", "checkpoint", 0.3),
    ("junos.ini", "juniper-srx", 0.6),
    ("iptables.ini", "netfilter", 1.0),
    ("pfsense.ini", "filterlog", 1.0),
    ("modsecurity.ini", "modsecurity", 0.6),
    ("sshd.ini", "sshd", 0.6),
    ("sudo.ini", "sudo", 0.9),
    ("su.ini", "sudo", 0.9),
    ("arbor.ini", "arbor", 1.0),
];

#[test]
fn wazuh_ruleset_lines_are_detected_and_parsed() {
    let Some(dir) = common::corpus("wazuh-ruleset-tests") else {
        return;
    };
    let mut failures = Vec::new();
    println!(
        "{:<24} {:>5} {:>8} {:>7}",
        "file", "lines", "detected", "parsed"
    );
    let (mut all, mut all_parsed) = (0, 0);
    for (file, format, min_share) in WAZUH {
        let lines = common::wazuh_lines(&dir.join(file));
        let (mut detected, mut parsed) = (0usize, 0usize);
        for line in &lines {
            if WAZUH_STUBS
                .iter()
                .any(|(f, stub)| f == file && line.contains(stub))
            {
                continue;
            }
            let input = common::split(line);
            let n = normalize(&input, Format::Auto, "nsf");
            if n.format == *format {
                detected += 1;
            } else {
                failures.push(format!(
                    "{file}: detected {} instead of {format}: {line}",
                    n.format
                ));
            }
            if n.parsed {
                parsed += 1;
            }
        }
        let share = if lines.is_empty() {
            1.0
        } else {
            parsed as f64 / lines.len() as f64
        };
        println!("{file:<24} {:>5} {detected:>8} {parsed:>7}", lines.len());
        if share < *min_share {
            failures.push(format!(
                "{file}: parsed {parsed} of {} lines, below {min_share}",
                lines.len()
            ));
        }
        all += lines.len();
        all_parsed += parsed;
    }
    println!("total: {all} lines, {all_parsed} parsed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// CrowdSec parsers whose log types we normalise.
const CROWDSEC_PARSERS: &[&str] = &[
    "crowdsecurity/iptables-logs",
    "aderumier/proxmox-iptables-logs",
    "crowdsecurity/fortinet-logs",
    "crowdsecurity/modsecurity",
    "crowdsecurity/sshd-logs",
    "crowdsecurity/sshd-success-logs",
    "crowdsecurity/suricata-evelogs",
    "crowdsecurity/suricata-fastlogs",
    "crowdsecurity/unifi-cef",
    "crowdsecurity/pfsense-logs",
    "crowdsecurity/opnsense-logs",
];

/// How CrowdSec field names map onto ours: `(our field, their keys)`. Their `Meta` keys are the
/// normalised ones (`source_ip`, `target_user`, ...); `Parsed` keys are parser-specific
/// (`dst_ip` for iptables, `dest_ip` for Suricata, `sshd_client_port`, ...). `action` compares
/// meanings, not words: DROP/blocked -> drop, REJECT -> reject, ACCEPT/allowed -> pass,
/// `ssl-login-fail` -> failed-login (see [`canonical_action`]).
const FIELD_MAP: &[(&str, &[&str])] = &[
    ("src_ip", &["Meta[\"source_ip\"]"]),
    (
        "src_port",
        &[
            "Meta[\"source_port\"]",
            "Parsed[\"src_port\"]",
            "Parsed[\"source_port\"]",
            "Parsed[\"sshd_client_port\"]",
        ],
    ),
    (
        "dst_ip",
        &[
            "Meta[\"destination_ip\"]",
            "Parsed[\"dst_ip\"]",
            "Parsed[\"dest_ip\"]",
        ],
    ),
    (
        "dst_port",
        &[
            "Meta[\"destination_port\"]",
            "Parsed[\"dst_port\"]",
            "Parsed[\"dest_port\"]",
        ],
    ),
    (
        "user",
        &[
            "Meta[\"target_user\"]",
            "Meta[\"user\"]",
            "Meta[\"admin_user\"]",
        ],
    ),
    ("action", &["Meta[\"action\"]", "Parsed[\"action\"]"]),
];

/// Our values of the compared fields.
#[derive(Default, Debug)]
struct Ours {
    src_ip: Option<IpAddr>,
    src_port: Option<u16>,
    dst_ip: Option<IpAddr>,
    dst_port: Option<u16>,
    user: Option<String>,
    action: Option<String>,
}

fn ours(m: &Message) -> Ours {
    let act = |a: Option<IngressAction>| a.map(|a| a.name().to_string());
    match &m.kind {
        Kind::FirewallTrafficLog(f) => Ours {
            src_ip: f.src_ip,
            src_port: f.src_port,
            dst_ip: f.dst_ip,
            dst_port: f.dst_port,
            user: f.user.clone(),
            action: act(f.action),
        },
        Kind::Intrusion(e) => Ours {
            src_ip: e.src_ip,
            src_port: e.src_port,
            dst_ip: e.dst_ip,
            dst_port: e.dst_port,
            ..Default::default()
        },
        Kind::WebAttack(e) => Ours {
            src_ip: e.src_ip,
            src_port: e.src_port,
            dst_ip: e.dst_ip,
            dst_port: e.dst_port,
            action: e.response_code.as_ref().map(|_| "drop".to_string()),
            ..Default::default()
        },
        Kind::Virus(e) => Ours {
            src_ip: e.src_ip,
            src_port: e.src_port,
            dst_ip: e.dst_ip,
            dst_port: e.dst_port,
            ..Default::default()
        },
        Kind::UserActivityLog(u) => Ours {
            src_ip: Some(u.ip_address).filter(|a| !a.is_unspecified()),
            src_port: Some(u.l4_port_number).filter(|p| *p != 0),
            user: Some(u.user.clone()),
            action: u.additional_info.activity_type.map(|t| match t {
                UserActivityType::FailedLogin => "failed-login".to_string(),
                UserActivityType::SuccessfulLogin => "successful-login".to_string(),
                other => format!("{other:?}"),
            }),
            ..Default::default()
        },
        Kind::SystemAccessLog(a) => Ours {
            src_ip: Some(a.ip_address).filter(|a| !a.is_unspecified()),
            src_port: Some(a.l4_port_number).filter(|p| *p != 0),
            user: Some(a.user.clone()),
            action: Some("successful-login".to_string()),
            ..Default::default()
        },
        Kind::Ddos(d) => Ours {
            src_ip: d.attack_src_ip.first().copied(),
            dst_ip: d.attack_dst_ip.first().copied(),
            dst_port: d.attack_dst_port.first().copied(),
            ..Default::default()
        },
        _ => Ours::default(),
    }
}

/// Their action word as a meaning comparable with ours.
fn canonical_action(s: &str) -> String {
    let l = s.to_ascii_lowercase();
    if l.contains("reject") {
        "reject".into()
    } else if l.contains("drop") || l.contains("block") || l.contains("deny") {
        "drop".into()
    } else if l.contains("accept") || l.contains("allow") || l.contains("pass") {
        "pass".into()
    } else if l.contains("fail") {
        "failed-login".into()
    } else {
        l
    }
}

fn matches(field: &str, expected: &str, o: &Ours) -> bool {
    let ip_eq = |a: Option<IpAddr>| expected.parse::<IpAddr>().ok() == a && a.is_some();
    let port_eq = |p: Option<u16>| expected.parse::<u16>().ok() == p && p.is_some();
    match field {
        "src_ip" => ip_eq(o.src_ip),
        "dst_ip" => ip_eq(o.dst_ip),
        "src_port" => port_eq(o.src_port),
        "dst_port" => port_eq(o.dst_port),
        // CrowdSec keeps "N/A" and empty users; we store the documented placeholder.
        "user" => match o.user.as_deref() {
            Some("unknown") => expected.is_empty() || expected == "N/A" || expected == "unknown",
            Some(u) => u == expected,
            None => false,
        },
        "action" => o.action.as_deref() == Some(canonical_action(expected).as_str()),
        _ => false,
    }
}

/// `results["s01-parse"]["<parser>"][<i>].Evt.<key> == "<value>"` -> (parser, i, key, value).
fn parse_assert(line: &str) -> Option<(String, usize, String, String)> {
    let rest = line.strip_prefix("results[\"s01-parse\"][\"")?;
    let (parser, rest) = rest.split_once("\"][")?;
    let (idx, rest) = rest.split_once("].Evt.")?;
    let (key, value) = rest.split_once(" == ")?;
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some((
        parser.to_string(),
        idx.parse().ok()?,
        key.to_string(),
        value.replace("\\\"", "\""),
    ))
}

#[test]
fn crowdsec_parser_expectations_match_our_fields() {
    let Some(dir) = common::corpus("crowdsec-hub-tests") else {
        return;
    };
    let mut per_field: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut skipped = Vec::new();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    cases.sort();
    for case in cases {
        let Ok(asserts) = std::fs::read_to_string(case.join("parser.assert")) else {
            continue;
        };
        let Some(log) = std::fs::read_dir(&case).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "log"))
        }) else {
            continue;
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for parser in CROWDSEC_PARSERS {
            let len_line = format!(
                "len(results[\"s01-parse\"][\"{parser}\"]) == {}",
                lines.len()
            );
            if !asserts.contains(&format!("len(results[\"s01-parse\"][\"{parser}\"])")) {
                continue;
            }
            if !asserts.contains(&len_line) {
                skipped.push(format!(
                    "{}: {parser} results do not line up with the log lines",
                    case.display()
                ));
                continue;
            }
            let mut expect: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
            let mut success: BTreeMap<usize, bool> = BTreeMap::new();
            for l in asserts.lines() {
                if let Some(rest) =
                    l.strip_prefix(&format!("results[\"s01-parse\"][\"{parser}\"]["))
                    && let Some((idx, tail)) = rest.split_once("].Success == ")
                    && let Ok(i) = idx.parse()
                {
                    success.insert(i, tail.trim() == "true");
                }
                if let Some((p, i, key, value)) = parse_assert(l)
                    && p == *parser
                {
                    expect.entry(i).or_default().push((key, value));
                }
            }
            for (i, kvs) in expect {
                if success.get(&i) != Some(&true) {
                    continue;
                }
                let Some(line) = lines.get(i) else { continue };
                let n = normalize(&common::split(line), Format::Auto, "nsf");
                let o = ours(&n.message);
                for (field, keys) in FIELD_MAP {
                    // the first of their keys that the case asserts
                    let Some((_, want)) = keys
                        .iter()
                        .find_map(|k| kvs.iter().find(|(key, _)| key == k))
                    else {
                        continue;
                    };
                    let e = per_field.entry(field).or_default();
                    e.0 += 1;
                    if matches(field, want, &o) {
                        e.1 += 1;
                    } else {
                        mismatches.push(format!(
                            "{parser} {field}: want {want:?}, ours {o:?} ({}): {line}",
                            n.format
                        ));
                    }
                }
            }
        }
    }
    let (total, matched) = per_field
        .values()
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    for (f, (t, m)) in &per_field {
        println!("{f:<9} {m:>4} / {t:<4}");
    }
    let rate = if total == 0 {
        1.0
    } else {
        matched as f64 / total as f64
    };
    println!(
        "CrowdSec expectations matched: {matched} / {total} = {:.1}%",
        rate * 100.0
    );
    for s in &skipped {
        println!("skipped: {s}");
    }
    for m in mismatches.iter().take(40) {
        println!("mismatch: {m}");
    }
    // Threshold: 95% of the expectations that name an address, port, user or action.
    assert!(total > 0, "no CrowdSec expectation was checked");
    assert!(
        rate >= 0.95,
        "CrowdSec match rate {:.1}% is below 95%",
        rate * 100.0
    );
}
