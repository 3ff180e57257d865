//! FortiDDoS `key=value` attack logs (`type=attack ... description="SYN flood" sip= dip=
//! dport= dropcount= spp_name=`).
//!
//! Mapping: `type=attack` -> DDoS event (attack type from the description, source and destination
//! addresses, destination port, rule name = description, falling back to the protection profile);
//! `type=event` admin logins and configuration -> as FortiGate's system events; other types ->
//! generic logs carrying their fields. Every record keeps the protection profile (`spp_name`),
//! `evecode/evesubcode` as message id and what its case has no leaf for in `envelope/fields`.
//! Placeholder `fortiddos-unknown-rule`.

use pharos_model::{DdosEvent, Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

const RULE: &str = "fortiddos-unknown-rule";

/// FortiDDoS protection-profile (`spp`) fields.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "spp_name=") || probe!(p, "spp=") && probe!(p, "evecode=")
}

/// FortiDDoS `severity` / `level` words on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    match s.unwrap_or("").to_ascii_lowercase().as_str() {
        "critical" | "emergency" | "alert" => Severity::Critical,
        "high" | "error" => Severity::High,
        "medium" | "warning" => Severity::Middle,
        "low" | "notice" => Severity::Low,
        _ => Severity::Info,
    }
}

/// DDoS type words in a description, first match wins.
pub fn ddos_type(desc: &str) -> Option<pharos_model::ident::DdosType> {
    use pharos_model::ident::DdosType as D;
    const WORDS: &[(&str, D)] = &[
        ("syn ack", D::SynAckFlood),
        ("syn-ack", D::SynAckFlood),
        ("syn", D::SynFlood),
        ("ack flood", D::AckFlood),
        ("fin", D::FinRstFlood),
        ("rst", D::FinRstFlood),
        ("connection", D::TcpConFlood),
        ("udp", D::UdpFlood),
        ("icmpv6", D::Icmpv6Flood),
        ("icmp", D::Icmpv4Flood),
        ("https", D::HttpsFlood),
        ("http", D::HttpFlood),
        ("dns response", D::DnsReplyFlood),
        ("dns reply", D::DnsReplyFlood),
        ("dns", D::DnsQueryFlood),
        ("sip", D::SipFlood),
        ("tls", D::TlsFlood),
        ("ssl", D::TlsFlood),
        ("ntp", D::NtpAmpFlood),
        ("memcached", D::MemcachedAmpFlood),
        ("ssdp", D::SsdpAmpFlood),
        ("ldap", D::CldapAmpFlood),
        ("chargen", D::ChargenAmpFlood),
        ("snmp", D::SnmpAmpFlood),
        ("fragment", D::FragmentFlood),
    ];
    WORDS
        .iter()
        .find(|(w, _)| build::has_words(desc, w))
        .map(|(_, t)| *t)
}

/// Normalises one FortiDDoS line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = Kv::parse(input.text);
    let ty = kv.get("type")?;
    let desc = kv.get("description").map(str::trim).unwrap_or("");
    let kind = if ty == "attack" {
        let nonzero = |a: std::net::IpAddr| !a.is_unspecified();
        Kind::Ddos(DdosEvent {
            attack_type: ddos_type(desc),
            start_time: build::UNSET_START,
            end_time: None,
            attack_src_ip: kv
                .get("sip")
                .and_then(ip)
                .filter(|a| nonzero(*a))
                .into_iter()
                .collect(),
            attack_dst_ip: kv
                .get("dip")
                .and_then(ip)
                .filter(|a| nonzero(*a))
                .into_iter()
                .collect(),
            attack_src_port: kv.get("sport").and_then(port).into_iter().collect(),
            attack_dst_port: kv.get("dport").and_then(port).into_iter().collect(),
            rule_name: build::rule_or(build::present(Some(desc)).or(kv.get("spp_name")), RULE),
            attack_rate: None,
            attack_throughput: None,
        })
    } else if ty == "event" {
        // admin logins and configuration, as FortiOS writes them
        super::fortigate::system(&kv)
    } else {
        build::unmapped("fortiddos log type kept as fields")
    };
    let mut all = super::fortigate::all_fields(&kv);
    all.src_ip = all.src_ip.or_else(|| kv.get("sip").and_then(ip));
    all.dst_ip = all.dst_ip.or_else(|| kv.get("dip").and_then(ip));
    all.dst_port = all.dst_port.or_else(|| kv.get("dport").and_then(port));
    all.rule_name = kv.get("spp_name").map(build::clip);
    all.message_id = kv
        .get("evecode")
        .map(|c| match kv.get("evesubcode") {
            Some(sub) => build::clip(&format!("{c}/{sub}")),
            None => build::clip(c),
        })
        .or(all.message_id);
    let fields = build::fields_beyond_case(&kind, all);
    let time = crate::time::date_time(
        kv.get("date").unwrap_or(""),
        kv.get("time").unwrap_or(""),
        kv.get("tz"),
    );
    Some(
        Draft::new(kind, severity(kv.any(&["severity", "level"])))
            .time(time)
            .vendor("Fortinet")
            .model(kv.get("devid").or(Some("FortiDDoS")))
            .summary(format!(
                "{desc} (dropped {})",
                kv.get("dropcount").unwrap_or("0")
            ))
            .fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn attack_is_ddos() {
        let n = auto(
            r#"devid=FI200B0000000001 date=2023-03-02 time=08:00:00 tz=UTC type=attack subtype="ips" spp=4 evecode=2 evesubcode=27 description="TCP invalid flag combination " dir=1 protocol=6 sip=0.0.0.0 dip=192.0.2.79 dropcount=30 subnetid=95 facility=Local0 level=Notice direction=inbound spp_name="web-spp" subnet_name="web-net" sppoperatingmode=detection severity="high""#,
            "fortiddos",
        );
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_dst_ip, vec![ip("192.0.2.79").unwrap()]);
        assert!(d.attack_src_ip.is_empty());
        assert_eq!(d.rule_name, "TCP invalid flag combination");
        assert_eq!(n.message.common.severity, Severity::High);
        let n = auto(
            r#"devid=FI200B0000000001 date=2021-05-28 time=00:01:00 tz=+0000 type=attack subtype=flood spp=1 evecode=1 description="SYN flood" sip=198.51.100.1 dip=192.0.2.80 dport=80 dropcount=120000 spp_name="web" severity=critical"#,
            "fortiddos",
        );
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_type, Some(pharos_model::ident::DdosType::SynFlood));
        assert_eq!(d.attack_dst_port, vec![80]);
        assert_eq!(d.start_time.to_rfc3339(), "2021-05-28T00:01:00+00:00");
    }
}
