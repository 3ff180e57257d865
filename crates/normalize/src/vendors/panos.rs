//! Palo Alto Networks PAN-OS CSV syslog (TRAFFIC, THREAT, SYSTEM, CONFIG).
//!
//! Columns are read by the documented field order, which is stable across PAN-OS 6.1 to 11.x for
//! the columns used here (later versions only append columns): `FUTURE_USE, Receive Time, Serial,
//! Type, Subtype, FUTURE_USE, Generated Time, Source, Destination, NAT Source, NAT Destination,
//! Rule, Source User, Destination User, Application, Virtual System, Source Zone, Destination Zone,
//! Inbound Interface, Outbound Interface, Log Action, FUTURE_USE, Session ID, Repeat Count, Source
//! Port, Destination Port, NAT Source Port, NAT Destination Port, Flags, Protocol, Action`, then
//! per type: TRAFFIC `Bytes, Bytes Sent, Bytes Received, Packets, Start, Elapsed, Category, ...,
//! Packets Sent (44), Packets Received (45)`; THREAT `Threat/Content Name (32), Category,
//! Severity, Direction, ...`; SYSTEM `... Event ID (8), Object, ..., Module (12), Severity (13),
//! Description (14)`; CONFIG `Host (7), Virtual System, Command, Admin, Client, Result,
//! Configuration Path (13)`.
//!
//! Mapping: TRAFFIC -> firewall traffic log; THREAT virus/wildfire-virus -> virus, url ->
//! DPI log (data filtering), vulnerability/spyware/others -> intrusion (web attack when the threat
//! name is an HTTP attack); SYSTEM auth events -> user activity, other SYSTEM -> generic; CONFIG ->
//! configuration-change event. Rule names: the security rule name or threat name; placeholder
//! `panos-unknown-rule`.

use pharos_model::ident::{DpiType, UserActivityType};
use pharos_model::{DpiLog, FirewallTrafficLog, Kind, Severity, VirusEvent};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, ip, port};
use crate::fields::{Fields, split_csv};
use crate::vendors::{Probe, find, has, probe};

const RULE: &str = "panos-unknown-rule";

/// The CSV shape: a known log type in the fourth column after a `yyyy/mm/dd` receive time.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    (probe!(p, ",TRAFFIC,")
        || probe!(p, ",THREAT,")
        || probe!(p, ",SYSTEM,")
        || probe!(p, ",CONFIG,"))
        && probe!(p, "/")
}

/// PAN-OS threat/system severity words on Pharos' scale.
fn severity(s: &str) -> Severity {
    match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Middle,
        "low" => Severity::Low,
        _ => Severity::Info,
    }
}

/// Normalises one PAN-OS CSV line (the CSV may follow a syslog header).
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    // The record starts at the field before the receive time: find `,yyyy/` and back up.
    let ty_at = [
        find!(t, ",TRAFFIC,"),
        find!(t, ",THREAT,"),
        find!(t, ",SYSTEM,"),
        find!(t, ",CONFIG,"),
    ]
    .into_iter()
    .flatten()
    .min()?;
    let head = t.get(..ty_at)?;
    // head = "<future>,<receive time>,<serial>"; the first field starts after the last space
    // before the receive time's date.
    let serial_comma = head.rfind(',')?;
    let time_comma = head.get(..serial_comma)?.rfind(',')?;
    let before = head.get(..time_comma)?;
    let start = before.rfind([' ', '>', ':']).map_or(0, |i| i + 1);
    let csv = t.get(start..)?;
    // PAN-OS 10 and 11 lines have more than 100 columns
    let mut f = Fields::with_capacity(128);
    split_csv(csv, &mut f);
    let col = |i: usize| f.get(i).copied().and_then(|v| build::present(Some(v)));
    let ty = col(3)?;
    let sub = col(4).unwrap_or("");
    let time = col(6).or(col(1)).and_then(|s| {
        let (d, tm) = s.split_once(' ')?;
        crate::time::date_time(d, tm, None)
    });
    let (kind, sev, summary): (Kind, Severity, String) = match ty {
        "TRAFFIC" => {
            let num = |i: usize| col(i).and_then(|v| v.parse::<u64>().ok());
            let action = col(30);
            let k = Kind::FirewallTrafficLog(FirewallTrafficLog {
                src_ip: col(7).and_then(ip),
                dst_ip: col(8).and_then(ip),
                src_port: col(24).and_then(port),
                dst_port: col(25).and_then(port),
                protocol: col(29).and_then(build::protocol),
                action: action
                    .and_then(build::action)
                    .or_else(|| build::action(sub)),
                sent_bytes: num(32),
                received_bytes: num(33),
                sent_packets: num(44),
                received_packets: num(45),
                policy_name: col(11).map(build::clip),
                rule_name: col(11).map(build::clip),
                in_interface: col(18).map(build::clip),
                out_interface: col(19).map(build::clip),
                application: col(14).map(build::clip),
                user: col(12).map(build::clip),
                session_id: num(22),
                duration: col(36).and_then(|v| v.parse().ok()),
            });
            let sev = if matches!(
                action,
                Some("deny" | "drop" | "reset-both" | "reset-client" | "reset-server")
            ) {
                Severity::Low
            } else {
                Severity::Info
            };
            (k, sev, format!("TRAFFIC {sub} {}", action.unwrap_or("")))
        }
        "THREAT" => threat(&f, sub),
        "SYSTEM" => {
            let desc = col(14).unwrap_or("");
            let k = system(col(8).unwrap_or(""), col(12).unwrap_or(""), desc);
            (
                k,
                severity(col(13).unwrap_or("")),
                format!("SYSTEM {sub} {desc}"),
            )
        }
        "CONFIG" => {
            let admin = col(10);
            let client_ip = col(7).and_then(ip);
            let path = col(13);
            let k = build::config_change(admin, client_ip, None, path);
            (
                k,
                Severity::Low,
                format!("CONFIG {} {}", col(9).unwrap_or(""), path.unwrap_or("")),
            )
        }
        _ => return None,
    };
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("Palo Alto Networks")
            .model(col(2).filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric())))
            .summary(summary),
    )
}

fn threat(f: &[&str], sub: &str) -> (Kind, Severity, String) {
    let col = |i: usize| f.get(i).copied().and_then(|v| build::present(Some(v)));
    let src_ip = col(7).and_then(ip);
    let dst_ip = col(8).and_then(ip);
    let src_port = col(24).and_then(port);
    let dst_port = col(25).and_then(port);
    let name = col(32).unwrap_or("");
    let sev = severity(col(34).unwrap_or(""));
    // "Threat Name (12345)" -> rule "Threat Name (12345)" (the id is part of the vendor's name)
    let rule_name = build::rule_or(Some(name), RULE);
    let action = col(30);
    let kind = match sub {
        "virus" | "wildfire-virus" | "wildfire" => Kind::Virus(VirusEvent {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            rule_name,
            virus_name: build::present(Some(name)).map(build::clip),
            virus_type: build::virus_type(name),
            host: dst_ip.map(|a| a.to_string()),
            file_type: None,
            file_name: col(31).map(build::clip),
            os: None,
        }),
        "url" => Kind::DpiLog(DpiLog {
            attack_type: Some(DpiType::DataFiltering),
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            rule_name: build::rule_or(col(33).or(col(11)), RULE),
            action: action.and_then(build::action).into_iter().collect(),
        }),
        "file" | "data" => Kind::DpiLog(DpiLog {
            attack_type: Some(if sub == "file" {
                DpiType::FileBlocking
            } else {
                DpiType::DataFiltering
            }),
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            rule_name,
            action: action.and_then(build::action).into_iter().collect(),
        }),
        _ => build::intrusion_or_web_attack(
            Flow {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
            },
            rule_name,
            build::web_attack_type(name).or_else(|| {
                (col(14) == Some("web-browsing") && has!(name, "HTTP"))
                    .then_some(pharos_model::ident::WebAttackType::OtherWebAttack)
            }),
            Request {
                target: col(31),
                ..Request::default()
            },
            Ids {
                protocol: col(29).and_then(build::transport),
                app: build::app_or_port(col(14), dst_port),
                attack_type: build::intrusion_attack_type(name).or_else(|| {
                    (sub == "scan" || sub == "flood")
                        .then_some(pharos_model::ident::IntrusionAttackType::PortScan)
                }),
            },
        ),
    };
    (kind, sev, format!("THREAT {sub} {name}"))
}

/// SYSTEM events: authentication results become user activity.
fn system(event_id: &str, module: &str, desc: &str) -> Kind {
    let lower = desc.to_ascii_lowercase();
    let ty = match event_id {
        "auth-fail"
        | "auth-failure"
        | "globalprotectportal-auth-fail"
        | "globalprotectgateway-auth-fail" => Some(UserActivityType::FailedLogin),
        "auth-success" | "globalprotectportal-auth-succ" | "globalprotectgateway-auth-succ" => {
            Some(UserActivityType::SuccessfulLogin)
        }
        "logout" | "globalprotectgateway-logout-succ" => Some(UserActivityType::Logout),
        _ if lower.contains("failed authentication") || lower.contains("login failed") => {
            Some(UserActivityType::FailedLogin)
        }
        _ => None,
    };
    let Some(ty) = ty else {
        let _ = module;
        return build::unmapped("panos system event without a mapping");
    };
    // "... for user 'alice'. From: 10.0.0.1." / "User name: alice, ... Client IP: 10.0.0.1"
    let user = desc.split(['\'', '"']).nth(1).or_else(|| {
        desc.split("User name: ")
            .nth(1)
            .and_then(|r| r.split([',', ' ', '.']).next())
    });
    let from = desc
        .split("From: ")
        .nth(1)
        .or_else(|| desc.split("Client IP: ").nth(1))
        .and_then(|r| r.split([',', ' ']).next())
        .map(|r| r.trim_end_matches('.'))
        .and_then(ip);
    build::user_activity(user, None, from, None, ty, Some(desc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn traffic_deny_maps_columns() {
        let n = auto(
            "0,2023/03/02 10:00:01,013101000001,TRAFFIC,drop,0,2023/03/02 10:00:02,10.20.0.84,198.51.100.232,,,DENY-ALL,,,not-applicable,vsys1,INSPECTION,INSPECTION,ethernet1/1,,Log-Fwd,2023/03/02 10:00:02,0,1,500,500,0,0,0x0,udp,deny,0,0,0,1,2023/03/02 10:00:02,0,any,0,12345,0x8000000000000000,10.0.0.0-10.255.255.255,United States,0,1,0,policy-deny,150,42,25,260,,PA-VM-1",
            "panos",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.20.0.84"));
        assert_eq!(f.dst_port, Some(500));
        assert_eq!(f.rule_name.as_deref(), Some("DENY-ALL"));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
        assert_eq!(f.protocol, Some(pharos_model::ident::Protocol::Udp));
    }

    #[test]
    fn threat_vulnerability_is_an_intrusion() {
        let n = auto(
            r#"Apr 30 06:00:00 fw1 1,2023/03/02 11:00:01,013101000001,THREAT,vulnerability,0,2023/03/02 11:00:00,203.0.113.165,10.30.250.61,203.0.113.165,10.30.0.19,web-in,,,web-browsing,vsys1,untrust,trust,ethernet1/1,tunnel.2,Fwd,2023/03/02 11:00:00,51557,1,55094,443,55094,443,0x502000,tcp,reset-both,"getuser",D-Link Router Information Disclosure Vulnerability(90470),any,high,client-to-server"#,
            "panos",
        );
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(
            i.rule_name,
            "D-Link Router Information Disclosure Vulnerability(90470)"
        );
        assert_eq!(i.dst_port, Some(443));
        assert_eq!(n.message.common.severity, Severity::High);
    }

    #[test]
    fn threat_virus_and_config() {
        let n = auto(
            r#"1,2023/01/10 10:00:00,0123456789,THREAT,virus,2049,2023/01/10 10:00:00,198.51.100.5,10.0.0.8,0.0.0.0,0.0.0.0,allow-web,,,web-browsing,vsys1,untrust,trust,ethernet1/1,ethernet1/2,fwd,2023/01/10 10:00:00,777,1,80,50123,0,0,0x400000,tcp,reset-both,"eicar.com",Eicar Test File(100000),any,medium,server-to-client"#,
            "panos",
        );
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.file_name.as_deref(), Some("eicar.com"));
        let n = auto(
            "1,2023/01/10 10:05:00,0123456789,CONFIG,0,2049,2023/01/10 10:05:00,10.0.0.2,vsys1,edit,admin,Web,Succeeded, vsys  vsys1 rulebase security rules allow-web,1,0x0",
            "panos",
        );
        let Kind::SystemEvent(e) = &n.message.kind else {
            panic!()
        };
        assert_eq!(e.user, "admin");
    }
}
