//! Cisco Identity Services Engine (ISE) remote syslog:
//! `CISE_<category> <id> <segments> <segment> <date> <time> <tz> <seq> <code> <level> <class>:
//! <text>, Key=value, Key Two=value, ...`.
//!
//! Mapping: the table [`CATEGORIES`] (syslog category -> [`Class`], with a sample line per row,
//! all checked by the tests): passed authentications -> user activity log (successful login);
//! failed attempts -> user activity log (failed login, the `FailureReason` as cause); RADIUS
//! accounting stop -> user activity log (logout), other accounting -> generic log with fields;
//! TACACS+ command accounting -> system access log (configuration, the command as input);
//! administrative audit -> system access log (administrator login), user activity log (failed
//! administrator login) or system event (configuration change) by its text; everything else ->
//! a generic log carrying its fields. The user is `UserName`/`User-Name`; the client address
//! `Framed-IP-Address`/`Remote-Address`, the network device `NAS-IP-Address` (destination in
//! `envelope/fields`). The message code (`5200`, `5400`, `3001` ...) is
//! `envelope/fields/message-id`.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};

use super::cisco_asa::Pairs;
use super::{Probe, probe};

const RULE: &str = "cisco-ise-unknown-rule";

/// A `CISE_` category tag.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "CISE_") || p.input.app_name.is_some_and(|a| a.starts_with("CISE_"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Passed,
    Failed,
    Accounting,
    Tacacs,
    Admin,
    Event,
}

use Class as C;

/// Category -> class, with a sample line written from the ISE syslog message catalogue.
#[rustfmt::skip]
pub(super) const CATEGORIES: &[(&str, Class, &str)] = &[
    ("CISE_Passed_Authentications", C::Passed, "<181>Oct 10 14:23:15 ise1 CISE_Passed_Authentications 0000012345 1 0 2024-10-10 14:23:15.609 +00:00 0000098765 5200 NOTICE Passed-Authentication: Authentication succeeded, ConfigVersionId=312, Device IP Address=10.0.0.2, DestinationIPAddress=10.0.0.20, UserName=alice, NetworkDeviceName=switch1, User-Name=alice, NAS-IP-Address=10.0.0.2, NAS-Port=50101, Framed-IP-Address=10.0.5.7, Calling-Station-ID=00-11-22-33-44-55, AuthenticationMethod=MSCHAPV2, SelectedAccessService=Default Network Access, AuthorizationPolicyMatchedRule=Employees"),
    ("CISE_Failed_Attempts", C::Failed, "<181>Oct 10 14:23:16 ise1 CISE_Failed_Attempts 0000012346 1 0 2024-10-10 14:23:16.100 +00:00 0000098766 5400 NOTICE Failed-Attempt: Authentication failed, ConfigVersionId=312, Device IP Address=10.0.0.2, UserName=bob, NetworkDeviceName=switch1, User-Name=bob, NAS-IP-Address=10.0.0.2, Calling-Station-ID=00-11-22-33-44-66, Remote-Address=10.0.5.8, FailureReason=24408 User authentication against Active Directory failed since user has entered the wrong password"),
    ("CISE_RADIUS_Accounting", C::Accounting, "<181>Oct 10 14:23:17 ise1 CISE_RADIUS_Accounting 0000012347 1 0 2024-10-10 14:23:17.200 +00:00 0000098767 3001 NOTICE Radius-Accounting: RADIUS Accounting stop request, ConfigVersionId=312, Device IP Address=10.0.0.2, UserName=carol, NetworkDeviceName=switch1, User-Name=carol, NAS-IP-Address=10.0.0.2, Framed-IP-Address=10.0.5.9, Calling-Station-ID=00-11-22-33-44-77, Acct-Status-Type=Stop, Acct-Session-Id=0000001A, Acct-Input-Octets=12345, Acct-Output-Octets=67890"),
    ("CISE_TACACS_Accounting", C::Tacacs, "<181>Oct 10 14:23:18 ise1 CISE_TACACS_Accounting 0000012348 1 0 2024-10-10 14:23:18.300 +00:00 0000098768 3300 NOTICE TACACS-Accounting: TACACS+ Accounting with Command, ConfigVersionId=312, Device IP Address=10.0.0.2, RequestLatency=1, Type=Accounting, Privilege-Level=15, Authen-Type=ASCII, Service=Login, User=admin, Port=tty2, Remote-Address=10.0.5.10, NetworkDeviceName=switch1, CmdSet=[ CmdAV=show running-config ]"),
    ("CISE_Administrative_and_Operational_Audit", C::Admin, "<181>Oct 10 14:23:19 ise1 CISE_Administrative_and_Operational_Audit 0000012349 1 0 2024-10-10 14:23:19.400 +00:00 0000098769 51001 NOTICE Administrator-Login: Administrator authentication succeeded, ConfigVersionId=312, AdminInterface=GUI, AdminIPAddress=10.0.5.11, AdminName=admin, OperationMessageText=Administrator authentication successful"),
    ("CISE_Threat_Centric_NAC", C::Event, "<181>Oct 10 14:23:20 ise1 CISE_Threat_Centric_NAC 0000012350 1 0 2024-10-10 14:23:20.500 +00:00 0000098770 87008 NOTICE TC-NAC: Threat event received, ConfigVersionId=312, EndPointMACAddress=00-11-22-33-44-88, UserName=dave, Framed-IP-Address=10.0.5.12, ThreatName=Malware detected"),
    ("CISE_Guest", C::Event, "<181>Oct 10 14:23:21 ise1 CISE_Guest 0000012351 1 0 2024-10-10 14:23:21.600 +00:00 0000098771 86001 NOTICE Guest: Guest user has changed the password, ConfigVersionId=312, UserName=guest1, Remote-Address=10.0.5.13"),
];

/// Category, message code, level and body (text and pairs) of an ISE line.
fn split(text: &str) -> Option<(&str, &str, &str, &str)> {
    let at = memchr::memmem::find(text.as_bytes(), b"CISE_")?;
    let rest = text.get(at..)?;
    let mut it = rest.splitn(11, ' ');
    let category = it.next()?;
    // id, segments, segment, date, time, tz, sequence
    for _ in 0..7 {
        it.next()?;
    }
    let code = it.next()?;
    let level = it.next()?;
    let body = it.next().unwrap_or("");
    Some((category, code, level, body))
}

fn severity(level: &str) -> Severity {
    match level {
        "FATAL" | "ERROR" => Severity::High,
        "WARN" | "WARNING" => Severity::Middle,
        "NOTICE" => Severity::Low,
        _ => Severity::Info,
    }
}

/// Normalises one ISE record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let (category, code, level, body) = split(input.raw).or_else(|| split(input.text))?;
    let class = CATEGORIES
        .iter()
        .find(|(c, _, _)| *c == category)
        .map_or(C::Event, |r| r.1);
    let kv = Pairs::parse(body, ", ", "=");
    // `Class: text` before the first pair
    let text = body
        .split(", ")
        .next()
        .map(|t| t.split_once(": ").map_or(t, |(_, x)| x));
    let client = kv
        .any(&["Framed-IP-Address", "Remote-Address", "AdminIPAddress"])
        .and_then(build::ip);
    let nas = kv
        .any(&["NAS-IP-Address", "Device IP Address"])
        .and_then(build::ip);
    let command = kv
        .get("CmdSet")
        .map(|c| c.trim_matches(['[', ']', ' ']))
        .map(|c| c.strip_prefix("CmdAV=").unwrap_or(c));
    let octets = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    let mut p = FwParts {
        flow: Flow {
            src_ip: client,
            src_port: None,
            dst_ip: nas,
            dst_port: None,
        },
        user: kv.any(&["UserName", "User-Name", "User", "AdminName"]),
        session: kv.any(&["Acct-Session-Id", "AcsSessionID"]),
        message_id: Some(code),
        rule: kv.any(&["AuthorizationPolicyMatchedRule", "SelectedAccessService"]),
        in_if: kv.get("NAS-Port-Id"),
        sent: octets("Acct-Input-Octets"),
        received: octets("Acct-Output-Octets"),
        msg: kv.get("FailureReason").or(text),
        signature: kv.get("ThreatName"),
        ..Default::default()
    };
    let fw = match class {
        C::Passed => FwClass::UserLogin,
        C::Failed => FwClass::LoginFailed,
        C::Accounting => {
            if kv.get("Acct-Status-Type") == Some("Stop") {
                FwClass::Logout
            } else {
                FwClass::Event
            }
        }
        C::Tacacs if command.is_some() => {
            let kind = build::access_log(
                p.user,
                client,
                None,
                pharos_model::ident::OperationType::Configuration,
                command,
                None,
            );
            let fields = build::fields_beyond_case(&kind, build::fw_fields(&p));
            return Some(
                Draft::new(kind, severity(level))
                    .fields(fields)
                    .vendor("Cisco")
                    .model(Some("ISE"))
                    .summary(body),
            );
        }
        C::Admin => {
            let t = text.unwrap_or("").to_ascii_lowercase();
            if t.contains("authentication failed") || t.contains("login failed") {
                FwClass::LoginFailed
            } else if t.contains("authentication succeeded") || t.contains("logged in") {
                FwClass::AdminLogin
            } else if t.contains("configuration") {
                FwClass::Config
            } else {
                FwClass::Event
            }
        }
        _ => FwClass::Event,
    };
    if fw == FwClass::AdminLogin {
        p.msg = Some("succeeded");
    }
    Some(
        build::fw_draft(fw, &p, RULE, severity(level))
            .vendor("Cisco")
            .model(Some("ISE"))
            .summary(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    #[test]
    fn every_category_sample_keeps_user_and_code() {
        for (_, class, sample) in CATEGORIES {
            let n = auto(sample, "cisco-ise");
            let want = match class {
                C::Passed | C::Failed | C::Accounting => "user",
                C::Tacacs | C::Admin => "access",
                C::Event => "generic",
            };
            let got = match &n.message.kind {
                Kind::UserActivityLog(_) => "user",
                Kind::SystemAccessLog(_) => "access",
                Kind::GenericLog(_) => "generic",
                _ => "other",
            };
            assert_eq!(got, want, "{sample}\n{:?}", n.message.kind);
            let json = crate::vendors::cisco_asa::parsed_json(&n);
            let user = sample
                .split([',', ' '])
                .find_map(|w| {
                    w.strip_prefix("UserName=")
                        .or_else(|| w.strip_prefix("User="))
                        .or_else(|| w.strip_prefix("AdminName="))
                })
                .unwrap();
            assert!(json.contains(&format!("\"{user}\"")), "{sample}\n{json}");
        }
    }

    #[test]
    fn failed_attempt_has_reason_client_and_device() {
        let n = auto(CATEGORIES[1].2, "cisco-ise");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "bob");
        assert_eq!(u.ip_address, ip("10.0.5.8").unwrap());
        assert!(
            u.additional_info
                .cause
                .as_deref()
                .unwrap()
                .starts_with("24408")
        );
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.dst_ip, ip("10.0.0.2"));
        assert_eq!(f.message_id.as_deref(), Some("5400"));
    }

    #[test]
    fn tacacs_command_is_the_input() {
        let n = auto(CATEGORIES[3].2, "cisco-ise");
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!()
        };
        assert_eq!(a.input.as_deref(), Some("show running-config"));
        assert_eq!(a.user, "admin");
    }
}
