//! Property: `decode(encode(m)) == m` for arbitrary valid messages of every kind, in JSON and XML.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::TimeZone;
use pharos_model::ident::*;
use pharos_model::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Printable text incl. XML/JSON specials and non-ASCII; no control characters (XML cannot
    // carry most of them).
    "[a-zA-Z0-9 <>&'\"/:;._=é漢\\-]{0,16}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}"
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn time() -> impl Strategy<Value = Timestamp> {
    // Years 1970..=9999 and any nanosecond: the encoder keeps full precision.
    (0i64..253_402_300_799, 0u32..1_000_000_000)
        .prop_map(|(s, n)| chrono::Utc.timestamp_opt(s, n).single().unwrap_or_default())
}

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

fn pct() -> impl Strategy<Value = Option<u8>> {
    of(0u8..=100)
}

fn unique(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn system_alarm() -> impl Strategy<Value = Kind> {
    (
        of(pick(SystemAlarmCategory::ALL)),
        of(text()),
        of(name()),
        of(pick(InterfaceState::ALL)),
        of(pick(AlarmSeverity::ALL)),
        pct(),
        pct(),
    )
        .prop_map(
            |(
                alarm_category,
                component_name,
                interface_name,
                interface_state,
                severity,
                usage,
                threshold,
            )| {
                let iface = alarm_category == Some(SystemAlarmCategory::InterfaceAlarm);
                Kind::SystemAlarm(SystemAlarm {
                    alarm_category,
                    component_name,
                    interface_name: interface_name.filter(|_| iface),
                    interface_state: interface_state.filter(|_| iface),
                    severity,
                    usage,
                    threshold,
                })
            },
        )
}

fn system_event() -> impl Strategy<Value = Kind> {
    (
        of(pick(SystemEventCategory::ALL)),
        text(),
        vec(text(), 1..3),
        ip(),
        any::<u16>(),
        of(pick(AuthenticationMode::ALL)),
        vec(name(), 0..3),
    )
        .prop_map(
            |(event_category, user, group, ip_address, l4_port_number, authentication, changes)| {
                let cc = event_category == Some(SystemEventCategory::ConfigurationChange);
                Kind::SystemEvent(SystemEvent {
                    event_category,
                    user,
                    group,
                    ip_address,
                    l4_port_number,
                    authentication,
                    changes: if cc { unique(changes) } else { Vec::new() },
                })
            },
        )
}

fn traffic_flows() -> impl Strategy<Value = Kind> {
    (
        (
            of(name()),
            of(pick(InterfaceType::ALL)),
            of(any::<[u8; 6]>().prop_map(MacAddr)),
            of(any::<[u8; 6]>().prop_map(MacAddr)),
        ),
        (
            of(ip()),
            of(ip()),
            of(pick(Protocol::ALL)),
            of(any::<u16>()),
            of(any::<u16>()),
        ),
        (of(any::<u32>()), of(any::<u64>()), of(any::<u64>())),
    )
        .prop_map(
            |(
                (interface_name, interface_type, src_mac, dst_mac),
                (src_ip, dst_ip, protocol, src_port, dst_port),
                (measurement_time, arrival_rate, arrival_throughput),
            )| {
                Kind::TrafficFlows(TrafficFlows {
                    interface_name,
                    interface_type,
                    src_mac,
                    dst_mac,
                    src_ip,
                    dst_ip,
                    protocol,
                    src_port,
                    dst_port,
                    measurement_time,
                    arrival_rate,
                    arrival_throughput,
                })
            },
        )
}

fn session_table() -> impl Strategy<Value = Kind> {
    (of(any::<u32>()), of(any::<u32>()), of(any::<u32>())).prop_map(
        |(current_session, maximum_session, threshold)| {
            Kind::SessionTable(SessionTable {
                current_session,
                maximum_session,
                threshold,
            })
        },
    )
}

fn access_log() -> impl Strategy<Value = Kind> {
    (
        text(),
        vec(text(), 1..3),
        ip(),
        any::<u16>(),
        of(pick(AuthenticationMode::ALL)),
        of(pick(OperationType::ALL)),
        of(text()),
        of(text()),
    )
        .prop_map(
            |(
                user,
                group,
                ip_address,
                l4_port_number,
                authentication,
                operation_type,
                input,
                output,
            )| {
                Kind::SystemAccessLog(SystemAccessLog {
                    user,
                    group,
                    ip_address,
                    l4_port_number,
                    authentication,
                    operation_type,
                    input,
                    output,
                })
            },
        )
}

fn res_util_log() -> impl Strategy<Value = Kind> {
    let disk = (name(), of(any::<u8>()), of(any::<u8>())).prop_map(
        |(disk_id, disk_usage, disk_space_left)| DiskUsage {
            disk_id,
            disk_usage,
            disk_space_left,
        },
    );
    let iface = (
        name(),
        of(any::<u64>()),
        of(any::<u64>()),
        of(any::<u64>()),
        of(any::<u64>()),
    )
        .prop_map(|(interface_id, a, b, c, d)| InterfaceUsage {
            interface_id,
            in_traffic_rate: a,
            out_traffic_rate: b,
            in_traffic_throughput: c,
            out_traffic_throughput: d,
        });
    (
        of(pick(SystemStatus::ALL)),
        of(any::<u8>()),
        of(any::<u8>()),
        vec(disk, 0..3),
        of(any::<u32>()),
        of(any::<u32>()),
        vec(iface, 0..3),
    )
        .prop_map(
            |(
                system_status,
                cpu_usage,
                memory_usage,
                mut disks,
                session_num,
                process_num,
                mut interfaces,
            )| {
                disks.dedup_by(|a, b| a.disk_id == b.disk_id);
                let mut seen = Vec::new();
                disks.retain(|d| {
                    if seen.contains(&d.disk_id) {
                        false
                    } else {
                        seen.push(d.disk_id.clone());
                        true
                    }
                });
                let mut seen = Vec::new();
                interfaces.retain(|d| {
                    if seen.contains(&d.interface_id) {
                        false
                    } else {
                        seen.push(d.interface_id.clone());
                        true
                    }
                });
                Kind::ResourceUtilizationLog(ResourceUtilizationLog {
                    system_status,
                    cpu_usage,
                    memory_usage,
                    disks,
                    session_num,
                    process_num,
                    interfaces,
                })
            },
        )
}

fn user_activity_log() -> impl Strategy<Value = Kind> {
    (
        text(),
        vec(text(), 1..3),
        ip(),
        any::<u16>(),
        of(pick(AuthenticationMode::ALL)),
        of(any::<u32>()),
        of(any::<u32>()),
        of(pick(UserActivityType::ALL)),
        of(text()),
    )
        .prop_map(
            |(
                user,
                group,
                ip_address,
                l4_port_number,
                authentication,
                online_duration,
                logout_duration,
                activity_type,
                cause,
            )| {
                Kind::UserActivityLog(UserActivityLog {
                    user,
                    group,
                    ip_address,
                    l4_port_number,
                    authentication,
                    online_duration,
                    logout_duration,
                    additional_info: AdditionalInfo {
                        activity_type,
                        cause,
                    },
                })
            },
        )
}

type Ends = (
    Option<IpAddr>,
    Option<u16>,
    Option<IpAddr>,
    Option<u16>,
    String,
);

fn ends() -> impl Strategy<Value = Ends> {
    (
        of(ip()),
        of(any::<u16>()),
        of(ip()),
        of(any::<u16>()),
        name(),
    )
}

fn dpi_log() -> impl Strategy<Value = Kind> {
    (
        ends(),
        of(pick(DpiType::ALL)),
        vec(pick(IngressAction::ALL), 0..3),
    )
        .prop_map(
            |((src_ip, src_port, dst_ip, dst_port, rule_name), attack_type, action)| {
                Kind::DpiLog(DpiLog {
                    attack_type,
                    src_ip,
                    src_port,
                    dst_ip,
                    dst_port,
                    rule_name,
                    action,
                })
            },
        )
}

fn ddos() -> impl Strategy<Value = Kind> {
    (
        of(pick(DdosType::ALL)),
        time(),
        of(time()),
        vec(ip(), 0..4),
        vec(ip(), 0..3),
        vec(any::<u16>(), 0..3),
        vec(any::<u16>(), 0..3),
        name(),
        of(any::<u64>()),
        of(any::<u64>()),
    )
        .prop_map(
            |(
                attack_type,
                start_time,
                end_time,
                attack_src_ip,
                attack_dst_ip,
                attack_src_port,
                attack_dst_port,
                rule_name,
                attack_rate,
                attack_throughput,
            )| {
                Kind::Ddos(DdosEvent {
                    attack_type,
                    start_time,
                    end_time,
                    attack_src_ip,
                    attack_dst_ip,
                    attack_src_port,
                    attack_dst_port,
                    rule_name,
                    attack_rate,
                    attack_throughput,
                })
            },
        )
}

fn virus() -> impl Strategy<Value = Kind> {
    (
        ends(),
        of(text()),
        of(pick(VirusType::ALL)),
        of(text()),
        of(text()),
        of(text()),
        of(text()),
    )
        .prop_map(
            |(
                (src_ip, src_port, dst_ip, dst_port, rule_name),
                virus_name,
                virus_type,
                host,
                file_type,
                file_name,
                os,
            )| {
                Kind::Virus(VirusEvent {
                    src_ip,
                    src_port,
                    dst_ip,
                    dst_port,
                    rule_name,
                    virus_name,
                    virus_type,
                    host,
                    file_type,
                    file_name,
                    os,
                })
            },
        )
}

fn intrusion() -> impl Strategy<Value = Kind> {
    (
        ends(),
        of(pick(TransportProtocol::ALL)),
        of(pick(ApplicationProtocol::ALL)),
        of(pick(IntrusionAttackType::ALL)),
    )
        .prop_map(
            |((src_ip, src_port, dst_ip, dst_port, rule_name), protocol, app, attack_type)| {
                Kind::Intrusion(IntrusionEvent {
                    src_ip,
                    src_port,
                    dst_ip,
                    dst_port,
                    rule_name,
                    protocol,
                    app,
                    attack_type,
                })
            },
        )
}

fn web_attack() -> impl Strategy<Value = Kind> {
    (
        ends(),
        of(pick(WebAttackType::ALL)),
        of(pick(ReqMethod::ALL)),
        of(text()),
        vec(pick(FilterType::ALL), 0..3),
        of(text()),
        of(text()),
        of(text()),
    )
        .prop_map(
            |(
                (src_ip, src_port, dst_ip, dst_port, rule_name),
                attack_type,
                req_method,
                req_target,
                filtering_type,
                cookies,
                req_host,
                response_code,
            )| {
                Kind::WebAttack(WebAttackEvent {
                    src_ip,
                    src_port,
                    dst_ip,
                    dst_port,
                    rule_name,
                    attack_type,
                    req_method,
                    req_target,
                    filtering_type,
                    cookies,
                    req_host,
                    response_code,
                })
            },
        )
}

fn voip() -> impl Strategy<Value = Kind> {
    (
        ends(),
        vec(text(), 0..3),
        vec(text(), 0..3),
        vec(text(), 0..3),
    )
        .prop_map(
            |(
                (src_ip, src_port, dst_ip, dst_port, rule_name),
                source_voice_id,
                destination_voice_id,
                user_agent,
            )| {
                Kind::VoipVocn(VoipVocnEvent {
                    src_ip,
                    src_port,
                    dst_ip,
                    dst_port,
                    rule_name,
                    source_voice_id,
                    destination_voice_id,
                    user_agent,
                })
            },
        )
}

fn rates() -> impl Strategy<Value = TrafficRates> {
    (
        time(),
        of(any::<u32>()),
        of(any::<u64>()),
        vec(of(any::<u64>()), 8),
    )
        .prop_map(|(t, measurement_time, total_traffic, r)| TrafficRates {
            discontinuity_time: t,
            measurement_time,
            total_traffic,
            in_traffic_average_rate: r[0],
            in_traffic_peak_rate: r[1],
            in_traffic_average_throughput: r[2],
            in_traffic_peak_throughput: r[3],
            out_traffic_average_rate: r[4],
            out_traffic_peak_rate: r[5],
            out_traffic_average_throughput: r[6],
            out_traffic_peak_throughput: r[7],
        })
}

fn counters() -> impl Strategy<Value = Kind> {
    let iface = (
        name(),
        of(pick(Protocol::ALL)),
        vec(of(any::<u64>()), 8),
        rates(),
    )
        .prop_map(|(interface_name, protocol, c, rates)| InterfaceCounters {
            interface_name,
            protocol,
            in_total_traffic_pkts: c[0],
            out_total_traffic_pkts: c[1],
            in_total_traffic_bytes: c[2],
            out_total_traffic_bytes: c[3],
            in_drop_traffic_pkts: c[4],
            out_drop_traffic_pkts: c[5],
            in_drop_traffic_bytes: c[6],
            out_drop_traffic_bytes: c[7],
            rates,
        });
    let fw = (name(), of(name()), of(name()), rates()).prop_map(
        |(policy_name, in_interface, out_interface, rates)| FirewallCounters {
            policy_name,
            in_interface,
            out_interface,
            rates,
        },
    );
    let hits = (name(), time(), of(any::<u64>())).prop_map(
        |(policy_name, discontinuity_time, hit_times)| PolicyHits {
            policy_name,
            discontinuity_time,
            hit_times,
        },
    );
    (of(time()), vec(iface, 0..3), vec(fw, 0..3), vec(hits, 0..3)).prop_map(
        |(timestamp, mut system_interface, mut nsf_firewall, mut nsf_policy_hits)| {
            let mut seen = Vec::new();
            system_interface.retain(|x| {
                if seen.contains(&x.interface_name) {
                    false
                } else {
                    seen.push(x.interface_name.clone());
                    true
                }
            });
            let mut seen = Vec::new();
            nsf_firewall.retain(|x| {
                if seen.contains(&x.policy_name) {
                    false
                } else {
                    seen.push(x.policy_name.clone());
                    true
                }
            });
            let mut seen = Vec::new();
            nsf_policy_hits.retain(|x| {
                if seen.contains(&x.policy_name) {
                    false
                } else {
                    seen.push(x.policy_name.clone());
                    true
                }
            });
            Kind::Counters(Counters {
                timestamp,
                system_interface,
                nsf_firewall,
                nsf_policy_hits,
            })
        },
    )
}

fn botnet() -> impl Strategy<Value = Kind> {
    (
        ends(),
        of(text()),
        of(text()),
        of(any::<u64>()),
        of(pick(TransportProtocol::ALL)),
    )
        .prop_map(
            |(
                (src_ip, src_port, dst_ip, dst_port, rule_name),
                botnet_name,
                role,
                botnet_pkt_num,
                protocol,
            )| {
                Kind::Botnet(BotnetEvent {
                    src_ip,
                    src_port,
                    dst_ip,
                    dst_port,
                    rule_name,
                    botnet_name,
                    role,
                    botnet_pkt_num,
                    protocol,
                })
            },
        )
}

fn vuln_scan() -> impl Strategy<Value = Kind> {
    (
        text(),
        of(text()),
        of(ip()),
        of(pick(TransportProtocol::ALL)),
        of(any::<u16>()),
        of(pick(&Severity::ALL)),
        of(text()),
        of(text()),
        of(text()),
    )
        .prop_map(
            |(
                vulnerability_id,
                vulnerability_name,
                victim_ip,
                protocol,
                port,
                level,
                os,
                fix_suggestion,
                rule_name,
            )| {
                Kind::VulnerabilityScanLog(VulnerabilityScanLog {
                    vulnerability_id,
                    vulnerability_name,
                    victim_ip,
                    protocol,
                    port,
                    level,
                    os,
                    fix_suggestion,
                    rule_name,
                })
            },
        )
}

fn firewall_log() -> impl Strategy<Value = Kind> {
    (
        (
            of(ip()),
            of(ip()),
            of(any::<u16>()),
            of(any::<u16>()),
            of(pick(Protocol::ALL)),
            of(pick(IngressAction::ALL)),
        ),
        vec(of(any::<u64>()), 4),
        (
            of(text()),
            of(text()),
            of(text()),
            of(text()),
            of(text()),
            of(text()),
            of(any::<u64>()),
            of(any::<u32>()),
        ),
    )
        .prop_map(
            |(
                (src_ip, dst_ip, src_port, dst_port, protocol, action),
                c,
                (
                    policy_name,
                    rule_name,
                    in_interface,
                    out_interface,
                    application,
                    user,
                    session_id,
                    duration,
                ),
            )| {
                Kind::FirewallTrafficLog(FirewallTrafficLog {
                    src_ip,
                    dst_ip,
                    src_port,
                    dst_port,
                    protocol,
                    action,
                    sent_bytes: c[0],
                    received_bytes: c[1],
                    sent_packets: c[2],
                    received_packets: c[3],
                    policy_name,
                    rule_name,
                    in_interface,
                    out_interface,
                    application,
                    user,
                    session_id,
                    duration,
                })
            },
        )
}

fn generic_log() -> impl Strategy<Value = Kind> {
    (of(text()), of(text()), of(text())).prop_map(|(format, reason, app_name)| {
        Kind::GenericLog(GenericLog {
            format,
            reason,
            app_name,
        })
    })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        system_alarm(),
        system_event(),
        traffic_flows(),
        session_table(),
        access_log(),
        res_util_log(),
        user_activity_log(),
        dpi_log(),
        ddos(),
        virus(),
        intrusion(),
        web_attack(),
        voip(),
        counters(),
        botnet(),
        vuln_scan(),
        firewall_log(),
        generic_log(),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        kind(),
        (
            text(),
            of(text()),
            of(text()),
            of(text()),
            of(text()),
            of(pick(&["en-US", "de", "zh-Hant-TW", "fr-CA"][..])),
        ),
        (
            of(pick(AcquisitionMethod::ALL)),
            of(pick(EmissionType::ALL)),
            of(pick(DampeningType::ALL)),
        ),
        (
            of(any::<u64>()),
            time(),
            time(),
            pick(&Severity::ALL),
            of(text()),
            of(text()),
        ),
    )
        .prop_map(
            |(
                kind,
                (nsf_name, vendor_name, device_model, software_version, message, language),
                (acquisition_method, emission_type, dampening_type),
                (id, event_time, receive_time, severity, source, raw),
            )| {
                let counters = matches!(kind, Kind::Counters(_));
                let mut m = Message::new(nsf_name, kind);
                let c = &mut m.common;
                c.vendor_name = vendor_name;
                c.device_model = device_model;
                c.software_version = software_version;
                if !counters {
                    c.message = message;
                    c.language = language.map(str::to_string);
                    c.dampening_type = dampening_type;
                }
                c.acquisition_method = acquisition_method;
                c.emission_type = emission_type
                    .filter(|_| acquisition_method == Some(AcquisitionMethod::Subscription));
                c.id = id;
                c.event_time = event_time;
                c.receive_time = receive_time;
                c.severity = severity;
                c.source = source;
                c.raw = raw;
                m
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn json_round_trip_is_lossless(m in message()) {
        let v = json::encode(&m);
        prop_assert_eq!(json::decode(&v), Ok(m.clone()));
        prop_assert_eq!(json::decode_str(&json::encode_string(&m)), Ok(m));
    }

    #[test]
    fn xml_round_trip_is_lossless(m in message()) {
        let s = xml::encode_netconf(&m);
        prop_assert_eq!(xml::decode_netconf(&s), Ok(m));
    }

    #[test]
    fn decoders_never_panic_on_junk(s in "\\PC{0,200}") {
        let _ = json::decode_str(&s);
        let _ = xml::decode_netconf(&s);
    }

    #[test]
    fn decoders_never_panic_on_mutated_documents(m in message(), cut in 0usize..4000, byte in any::<u8>()) {
        let mut s = json::encode_string(&m).into_bytes();
        if !s.is_empty() { let i = cut % s.len(); s[i] = byte; }
        let _ = json::decode_str(&String::from_utf8_lossy(&s));
        let mut x = xml::encode_netconf(&m).into_bytes();
        if !x.is_empty() { let i = cut % x.len(); x[i] = byte; }
        let _ = xml::decode_netconf(&String::from_utf8_lossy(&x));
    }
}

mod common;

#[test]
fn arbitrary_messages_validate_with_yanglint() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = message();
    let msgs: Vec<Message> = (0..60)
        .filter_map(|_| strategy.new_tree(&mut runner).ok().map(|t| t.current()))
        .collect();
    common::validate_all(&msgs);
}
