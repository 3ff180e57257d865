//! NETSCOUT Arbor: APS/AED blocked-host syslog (`arbor-networks-aps: Blocked Host: Blocked host
//! 1.2.3.4 at 23:23 by TCP SYN Flood Detection using TCP/3306 (MYSQL) destination 5.6.7.8 source
//! port 1234,URL: ...`) and Sightline/Peakflow SP alert syslog (`Host Detection alert #1234 ...
//! host 192.0.2.1, signatures (TCP SYN), impact 4.5 Mbps/10.1 Kpps, importance High`).
//!
//! Mapping: both -> DDoS event (attack type from the protection or signature words, the attacker
//! or victim address, the destination port, attack rate from the Kpps/pps impact and throughput
//! from the bps impact). Rule names: the protection ("by ...") or the alert's signature list;
//! placeholder `arbor-unknown-rule`.

use pharos_model::{DdosEvent, Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Probe, app_is, has, probe};

const RULE: &str = "arbor-unknown-rule";

/// Arbor app names or alert phrases.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    app_is(input, &["arbor-networks-aps", "pfsp", "arbor"])
        || probe!(p, "arbor-networks")
        || probe!(p, "Blocked Host:")
        || probe!(p, "Host Detection alert")
        || probe!(p, "Peakflow")
}

fn word_after<'a>(t: &'a str, key: &str) -> Option<&'a str> {
    let at = t.find(key)? + key.len();
    t.get(at..)?.split([' ', ',']).find(|w| !w.is_empty())
}

/// `4.5 Mbps` / `10.1 Kpps` style figures -> bytes/s or packets/s.
fn rate(value: &str, unit: &str) -> Option<(u64, bool)> {
    let v: f64 = value.parse().ok()?;
    let (mult, is_pps) = match unit.to_ascii_lowercase().as_str() {
        "bps" => (1.0 / 8.0, false),
        "kbps" => (1e3 / 8.0, false),
        "mbps" => (1e6 / 8.0, false),
        "gbps" => (1e9 / 8.0, false),
        "pps" => (1.0, true),
        "kpps" => (1e3, true),
        "mpps" => (1e6, true),
        _ => return None,
    };
    let r = v * mult;
    (r.is_finite() && (0.0..1e19).contains(&r)).then_some((r as u64, is_pps))
}

/// Normalises one Arbor line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let (kind, summary) = if let Some(at) = t.find("Blocked host ") {
        let body = t.get(at..)?;
        let host = word_after(body, "Blocked host ").and_then(build::ip);
        let protection = body
            .split(" by ")
            .nth(1)
            .and_then(|r| r.split(" using ").next())
            .map(str::trim);
        let dst = word_after(body, "destination ").and_then(build::ip);
        let dport = word_after(body, " using ")
            .and_then(|svc| svc.split('/').nth(1))
            .and_then(build::port);
        let k = Kind::Ddos(DdosEvent {
            attack_type: protection.and_then(super::fortiddos::ddos_type),
            start_time: build::UNSET_START,
            end_time: None,
            attack_src_ip: host.into_iter().collect(),
            attack_dst_ip: dst.into_iter().collect(),
            attack_src_port: word_after(body, "source port ")
                .and_then(build::port)
                .into_iter()
                .collect(),
            attack_dst_port: dport.into_iter().collect(),
            rule_name: build::rule_or(protection, RULE),
            attack_rate: None,
            attack_throughput: None,
        });
        (
            k,
            format!(
                "Arbor blocked host by {}",
                protection.unwrap_or("a protection")
            ),
        )
    } else if has!(t, "alert") && (has!(t, "host ") || has!(t, "Host ")) {
        let victim = word_after(t, "host ").and_then(build::ip);
        let sigs = t
            .split("signatures (")
            .nth(1)
            .and_then(|r| r.split(')').next());
        let mut attack_rate = None;
        let mut attack_throughput = None;
        if let Some(imp) = t.split("impact ").nth(1) {
            for part in imp.split(['/', ',']).take(3) {
                let mut w = part.split_whitespace();
                if let (Some(v), Some(u)) = (w.next(), w.next()) {
                    match rate(v, u) {
                        Some((r, true)) => attack_rate = Some(r),
                        Some((r, false)) => attack_throughput = Some(r),
                        None => {}
                    }
                }
            }
        }
        let k = Kind::Ddos(DdosEvent {
            attack_type: sigs.and_then(super::fortiddos::ddos_type),
            start_time: build::UNSET_START,
            end_time: None,
            attack_src_ip: Vec::new(),
            attack_dst_ip: victim.into_iter().collect(),
            attack_src_port: Vec::new(),
            attack_dst_port: Vec::new(),
            rule_name: build::rule_or(sigs, RULE),
            attack_rate,
            attack_throughput,
        });
        (k, t.to_string())
    } else {
        (
            build::unmapped("arbor line without a mapping"),
            t.to_string(),
        )
    };
    let sev = if has!(t, "importance High") || has!(t, "importance 2") {
        Severity::High
    } else {
        Severity::Middle
    };
    Some(
        Draft::new(kind, sev)
            .vendor("NETSCOUT Arbor")
            .summary(summary),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{ip, with_app};

    #[test]
    fn aps_blocked_host() {
        let n = with_app(
            "Blocked Host: Blocked host 203.0.113.66 at 23:23 by TCP SYN Flood Detection using TCP/3306 (MYSQL) destination 192.0.2.5 source port 4444,URL: http://web",
            "arbor-networks-aps",
            "arbor",
        );
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_src_ip, vec![ip("203.0.113.66").unwrap()]);
        assert_eq!(d.attack_dst_port, vec![3306]);
        assert_eq!(d.attack_type, Some(pharos_model::ident::DdosType::SynFlood));
        assert_eq!(d.rule_name, "TCP SYN Flood Detection");
    }

    #[test]
    fn sightline_host_detection() {
        let n = with_app(
            "Alert #10234: Host Detection alert started: host 192.0.2.10, signatures (UDP, NTP Amplification), direction Incoming, impact 4.5 Mbps/10.1 Kpps, importance High",
            "pfsp",
            "arbor",
        );
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_dst_ip, vec![ip("192.0.2.10").unwrap()]);
        assert_eq!(d.attack_rate, Some(10100));
        assert_eq!(d.attack_throughput, Some(562500));
    }
}
