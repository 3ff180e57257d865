//! Realistic sample messages, one per kind (for tests and end-to-end tests of other crates).
//!
//! Every sample validates against the YANG modules given the policies and interfaces it refers to
//! ([`referenced_policies`], [`referenced_interfaces`]).

use std::net::IpAddr;

use crate::ident::*;
use crate::*;

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn t(s: &str) -> Timestamp {
    crate::codec::parse_time(s).unwrap_or_default()
}

fn msg(nsf: &str, kind: Kind) -> Message {
    let mut m = Message::new(nsf, kind);
    m.common.vendor_name = Some("example-vendor".into());
    m.common.device_model = Some("EX-1000".into());
    m.common.software_version = Some("7.2.1".into());
    m.common.acquisition_method = Some(AcquisitionMethod::Subscription);
    m.common.emission_type = Some(EmissionType::OnChange);
    m.common.dampening_type = Some(DampeningType::OnRepetition);
    m.common.event_time = t("2026-01-15T10:00:00Z");
    m.common.receive_time = t("2026-01-15T10:00:00.250Z");
    m.common.severity = crate::json::default_severity(&m.kind);
    m.common.source = Some("push:192.0.2.254".into());
    m
}

/// One realistic message of every kind, in [`KIND_NAMES`] order.
pub fn samples() -> Vec<Message> {
    let mut out = vec![
        msg(
            "fw-1",
            Kind::SystemAlarm(SystemAlarm {
                alarm_category: Some(SystemAlarmCategory::InterfaceAlarm),
                component_name: None,
                interface_name: Some("eth0".into()),
                interface_state: Some(InterfaceState::Down),
                severity: Some(AlarmSeverity::High),
                usage: None,
                threshold: None,
            }),
        ),
        msg(
            "fw-1",
            Kind::SystemEvent(SystemEvent {
                event_category: Some(SystemEventCategory::ConfigurationChange),
                user: "admin".into(),
                group: vec!["administrators".into()],
                ip_address: ip("192.0.2.10"),
                l4_port_number: 22,
                authentication: Some(AuthenticationMode::PreConfiguredKey),
                changes: vec!["ddos-policy".into()],
            }),
        ),
        msg(
            "router-1",
            Kind::TrafficFlows(TrafficFlows {
                interface_name: Some("eth1".into()),
                interface_type: Some(InterfaceType::Ingress),
                src_mac: Some(MacAddr([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e])),
                dst_mac: Some(MacAddr([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5f])),
                src_ip: Some(ip("2001:db8::1")),
                dst_ip: Some(ip("2001:db8::2")),
                protocol: Some(Protocol::Udp),
                src_port: Some(53),
                dst_port: Some(40000),
                measurement_time: Some(60),
                arrival_rate: Some(12_000),
                arrival_throughput: Some(9_600_000),
            }),
        ),
        msg(
            "fw-1",
            Kind::SessionTable(SessionTable {
                current_session: Some(950_000),
                maximum_session: Some(1_000_000),
                threshold: Some(900_000),
            }),
        ),
        msg(
            "fw-1",
            Kind::SystemAccessLog(SystemAccessLog {
                user: "operator".into(),
                group: vec!["ops".into(), "readers".into()],
                ip_address: ip("192.0.2.11"),
                l4_port_number: 443,
                authentication: Some(AuthenticationMode::CertificateAuthority),
                operation_type: Some(OperationType::Configuration),
                input: Some("set policy 7 action deny".into()),
                output: Some("ok <committed> & saved".into()),
            }),
        ),
        msg(
            "fw-1",
            Kind::ResourceUtilizationLog(ResourceUtilizationLog {
                system_status: Some(SystemStatus::Running),
                cpu_usage: Some(42),
                memory_usage: Some(63),
                disks: vec![DiskUsage {
                    disk_id: "sda".into(),
                    disk_usage: Some(71),
                    disk_space_left: Some(29),
                }],
                session_num: Some(1200),
                process_num: Some(180),
                interfaces: vec![InterfaceUsage {
                    interface_id: "eth0".into(),
                    in_traffic_rate: Some(1000),
                    out_traffic_rate: Some(900),
                    in_traffic_throughput: Some(1_250_000),
                    out_traffic_throughput: Some(1_100_000),
                }],
            }),
        ),
        msg(
            "vpn-1",
            Kind::UserActivityLog(UserActivityLog {
                user: "alice".into(),
                group: vec!["staff".into()],
                ip_address: ip("198.51.100.23"),
                l4_port_number: 51234,
                authentication: Some(AuthenticationMode::PreConfiguredKey),
                online_duration: Some(3600),
                logout_duration: None,
                additional_info: AdditionalInfo {
                    activity_type: Some(UserActivityType::FailedLogin),
                    cause: Some("wrong password".into()),
                },
            }),
        ),
        msg(
            "dpi-1",
            Kind::DpiLog(DpiLog {
                attack_type: Some(DpiType::FileBlocking),
                src_ip: Some(ip("192.0.2.50")),
                src_port: Some(49152),
                dst_ip: Some(ip("203.0.113.5")),
                dst_port: Some(80),
                rule_name: "block-exe".into(),
                action: vec![IngressAction::Drop],
            }),
        ),
        msg(
            "ddos-mitigator-1",
            Kind::Ddos(DdosEvent {
                attack_type: Some(DdosType::SynFlood),
                start_time: t("2026-01-15T09:59:30Z"),
                end_time: Some(t("2026-01-15T10:05:00.5Z")),
                attack_src_ip: vec![ip("192.0.2.1"), ip("192.0.2.77")],
                attack_dst_ip: vec![ip("198.51.100.10")],
                attack_src_port: vec![],
                attack_dst_port: vec![80, 443],
                rule_name: "anti-ddos-rule".into(),
                attack_rate: Some(250_000),
                attack_throughput: Some(16_000_000),
            }),
        ),
        msg(
            "av-1",
            Kind::Virus(VirusEvent {
                src_ip: Some(ip("203.0.113.9")),
                src_port: Some(25),
                dst_ip: Some(ip("192.0.2.33")),
                dst_port: Some(50000),
                rule_name: "mail-av".into(),
                virus_name: Some("EICAR-Test-File".into()),
                virus_type: Some(VirusType::Trojan),
                host: Some("192.0.2.33".into()),
                file_type: Some("application/zip".into()),
                file_name: Some("invoice.zip".into()),
                os: Some("Windows 11".into()),
            }),
        ),
        msg(
            "ips-1",
            Kind::Intrusion(IntrusionEvent {
                src_ip: Some(ip("203.0.113.66")),
                src_port: Some(40222),
                dst_ip: Some(ip("192.0.2.22")),
                dst_port: Some(22),
                rule_name: "ssh-bruteforce".into(),
                protocol: Some(TransportProtocol::Tcp),
                app: Some(ApplicationProtocol::Ssh),
                attack_type: Some(IntrusionAttackType::BruteForce),
            }),
        ),
        msg(
            "waf-1",
            Kind::WebAttack(WebAttackEvent {
                src_ip: Some(ip("203.0.113.70")),
                src_port: Some(53000),
                dst_ip: Some(ip("192.0.2.80")),
                dst_port: Some(443),
                rule_name: "waf-sqli".into(),
                attack_type: Some(WebAttackType::SqlInjection),
                req_method: Some(ReqMethod::Get),
                req_target: Some("/search?q=1' OR '1'='1".into()),
                filtering_type: vec![FilterType::DenyList],
                cookies: None,
                req_host: Some("shop.example.com".into()),
                response_code: Some("403".into()),
            }),
        ),
        msg(
            "sbc-1",
            Kind::VoipVocn(VoipVocnEvent {
                src_ip: Some(ip("203.0.113.90")),
                src_port: Some(5060),
                dst_ip: Some(ip("192.0.2.60")),
                dst_port: Some(5060),
                rule_name: "sip-blocklist".into(),
                source_voice_id: vec!["sip:spam@203.0.113.90".into()],
                destination_voice_id: vec![
                    "sip:100@example.com".into(),
                    "sip:101@example.com".into(),
                ],
                user_agent: vec!["friendly-scanner".into()],
            }),
        ),
        msg("fw-1", Kind::Counters(sample_counters())),
        msg(
            "ips-1",
            Kind::Botnet(BotnetEvent {
                src_ip: Some(ip("192.0.2.99")),
                src_port: Some(49999),
                dst_ip: Some(ip("203.0.113.200")),
                dst_port: Some(6667),
                rule_name: "botnet-c2".into(),
                botnet_name: Some("mirai".into()),
                role: Some("bot".into()),
                botnet_pkt_num: Some(1234),
                protocol: Some(TransportProtocol::Tcp),
            }),
        ),
        msg(
            "scanner-1",
            Kind::VulnerabilityScanLog(VulnerabilityScanLog {
                vulnerability_id: "CVE-2024-3094".into(),
                vulnerability_name: Some("xz backdoor".into()),
                victim_ip: Some(ip("192.0.2.44")),
                protocol: Some(TransportProtocol::Tcp),
                port: Some(22),
                level: Some(Severity::Critical),
                os: Some("Debian sid".into()),
                fix_suggestion: Some("upgrade xz-utils to 5.6.1+really5.4.5".into()),
                rule_name: Some("ssh-checks".into()),
            }),
        ),
        msg(
            "fortigate-1",
            Kind::FirewallTrafficLog(FirewallTrafficLog {
                src_ip: Some(ip("192.0.2.15")),
                dst_ip: Some(ip("198.51.100.80")),
                src_port: Some(51000),
                dst_port: Some(443),
                protocol: Some(Protocol::Tcp),
                action: Some(IngressAction::Pass),
                sent_bytes: Some(5120),
                received_bytes: Some(204_800),
                sent_packets: Some(12),
                received_packets: Some(160),
                policy_name: Some("outbound".into()),
                rule_name: Some("allow-web".into()),
                in_interface: Some("port1".into()),
                out_interface: Some("wan1".into()),
                application: Some("HTTPS.BROWSER".into()),
                user: Some("alice".into()),
                session_id: Some(987_654),
                duration: Some(35),
            }),
        ),
        msg(
            "host-9",
            Kind::GenericLog(GenericLog {
                format: Some("rfc5424".into()),
                reason: Some("no normaliser for app-name".into()),
                app_name: Some("custom-daemon".into()),
            }),
        ),
    ];
    for m in &mut out {
        m.common.message = Some(format!("sample {}", m.kind.name()));
        m.common.language = Some("en-US".into());
    }
    if let Some(m) = out.iter_mut().find(|m| m.kind.name() == "generic-log") {
        m.common.raw =
            Some("<13>1 2026-01-15T10:00:00Z host-9 custom-daemon 42 - - something odd".into());
        // every leaf of envelope/fields, so the conformance tests validate them all
        m.common.fields = Some(Box::new(LogFields {
            src_ip: Some("192.0.2.10".parse().expect("literal")),
            src_port: Some(51000),
            dst_ip: Some("2001:db8::80".parse().expect("literal")),
            dst_port: Some(443),
            nat_src_ip: Some("198.51.100.4".parse().expect("literal")),
            nat_src_port: Some(40001),
            nat_dst_ip: Some("203.0.113.80".parse().expect("literal")),
            nat_dst_port: Some(8443),
            protocol: Some("tcp".into()),
            action: Some("allow".into()),
            rule_name: Some("web-out".into()),
            user: Some("alice".into()),
            domain: Some("www.example.com".into()),
            url: Some("https://www.example.com/login?x=1".into()),
            http_method: Some("POST".into()),
            http_status: Some(302),
            user_agent: Some("curl/8.5.0".into()),
            sent_bytes: Some(1200),
            received_bytes: Some(53000),
            session_id: Some("0x1a2b".into()),
            message_id: Some("302013".into()),
            in_interface: Some("inside".into()),
            out_interface: Some("outside".into()),
            application: Some("ssl".into()),
            mail_from: Some("a@example.com".into()),
            mail_to: Some("b@example.org".into()),
            file_name: Some("invoice.pdf".into()),
            src_as: Some(64496),
            dst_as: Some(4_200_000_000),
        }));
    }
    // a classification set by the source (an open resolver from a feed), not the case's mapping
    if let Some(m) = out
        .iter_mut()
        .find(|m| m.kind.name() == "vulnerability-scan-log")
    {
        m.common.classification = crate::rsit::Classification::new("vulnerable", "ddos-amplifier");
    }
    if let Some(m) = out.iter_mut().find(|m| m.kind.name() == "counters") {
        m.common.message = None;
        m.common.language = None;
        m.common.dampening_type = None;
        m.common.emission_type = Some(EmissionType::Periodic);
    }
    out
}

fn sample_counters() -> Counters {
    let since = t("2026-01-01T00:00:00Z");
    let mut rates = TrafficRates::new(since);
    rates.measurement_time = Some(300);
    rates.total_traffic = Some(123_456_789);
    rates.in_traffic_average_rate = Some(1000);
    rates.in_traffic_peak_rate = Some(5000);
    rates.in_traffic_average_throughput = Some(1_000_000);
    rates.in_traffic_peak_throughput = Some(6_000_000);
    rates.out_traffic_average_rate = Some(900);
    rates.out_traffic_peak_rate = Some(4500);
    rates.out_traffic_average_throughput = Some(800_000);
    rates.out_traffic_peak_throughput = Some(5_000_000);
    Counters {
        timestamp: Some(t("2026-01-15T10:00:00Z")),
        system_interface: vec![InterfaceCounters {
            interface_name: "eth0".into(),
            protocol: Some(Protocol::Ip),
            in_total_traffic_pkts: Some(1_000_000),
            out_total_traffic_pkts: Some(900_000),
            in_total_traffic_bytes: Some(1_000_000_000),
            out_total_traffic_bytes: Some(800_000_000),
            in_drop_traffic_pkts: Some(12),
            out_drop_traffic_pkts: Some(3),
            in_drop_traffic_bytes: Some(12_000),
            out_drop_traffic_bytes: Some(3000),
            rates: rates.clone(),
        }],
        nsf_firewall: vec![FirewallCounters {
            policy_name: "ddos-policy".into(),
            in_interface: Some("eth0".into()),
            out_interface: Some("eth1".into()),
            rates,
        }],
        nsf_policy_hits: vec![PolicyHits {
            policy_name: "ddos-policy".into(),
            discontinuity_time: since,
            hit_times: Some(42),
        }],
    }
}

/// Policy names (`i2nsf-security-policy/name`) a message refers to via leafrefs.
pub fn referenced_policies(m: &Message) -> Vec<String> {
    match &m.kind {
        Kind::SystemEvent(e) => e.changes.clone(),
        Kind::Counters(c) => c
            .nsf_firewall
            .iter()
            .map(|f| f.policy_name.clone())
            .chain(c.nsf_policy_hits.iter().map(|p| p.policy_name.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Rule names (`i2nsf-security-policy/rules/name`) a message refers to via leafrefs (module cases
/// only: the extension cases use plain strings).
pub fn referenced_rules(m: &Message) -> Vec<String> {
    match &m.kind {
        Kind::Ddos(e) => vec![e.rule_name.clone()],
        Kind::DpiLog(e) => vec![e.rule_name.clone()],
        Kind::Virus(e) => vec![e.rule_name.clone()],
        Kind::Intrusion(e) => vec![e.rule_name.clone()],
        Kind::WebAttack(e) => vec![e.rule_name.clone()],
        Kind::VoipVocn(e) => vec![e.rule_name.clone()],
        _ => Vec::new(),
    }
}

/// Interface names (`if:interface-ref`) a message refers to.
pub fn referenced_interfaces(m: &Message) -> Vec<String> {
    match &m.kind {
        Kind::SystemAlarm(a) if a.alarm_category == Some(SystemAlarmCategory::InterfaceAlarm) => {
            a.interface_name.iter().cloned().collect()
        }
        Kind::TrafficFlows(f) => f.interface_name.iter().cloned().collect(),
        Kind::Counters(c) => c
            .system_interface
            .iter()
            .map(|i| i.interface_name.clone())
            .chain(
                c.nsf_firewall
                    .iter()
                    .flat_map(|f| f.in_interface.iter().chain(f.out_interface.iter()).cloned()),
            )
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cover_every_kind_in_order() {
        let names: Vec<&str> = samples().iter().map(|m| m.kind.name()).collect();
        assert_eq!(names, KIND_NAMES);
    }

    #[test]
    fn samples_round_trip_through_json_and_xml() {
        for m in samples() {
            let back = crate::json::decode(&crate::json::encode(&m))
                .unwrap_or_else(|e| panic!("{}: {e}", m.kind.name()));
            assert_eq!(back, m, "json {}", m.kind.name());
            let xml = crate::xml::encode_netconf(&m);
            let back = crate::xml::decode_netconf(&xml)
                .unwrap_or_else(|e| panic!("{}: {e}\n{xml}", m.kind.name()));
            assert_eq!(back, m, "xml {}", m.kind.name());
        }
    }
}
