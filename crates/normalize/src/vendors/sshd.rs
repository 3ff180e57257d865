//! OpenSSH `sshd` / `sshd-session` authentication lines.
//!
//! Mapping (table [`EVENTS`], first match): `Accepted ...` -> user activity successful-login;
//! `Failed ...`, `Invalid user`, PAM authentication failures, `maximum authentication attempts`,
//! pre-authentication disconnects of invalid/authenticating users, and pre-authentication protocol
//! failures (`Unable to negotiate`, banner exchange, identification, timeouts, refused
//! connections) -> user activity failed-login (the cause says which); `Disconnected from user`,
//! session closes -> logout. Other sshd lines are recognised but stored as generic logs. The user
//! is the placeholder `unknown` when the line names none.

use pharos_model::ident::{AuthenticationMode, UserActivityType};
use pharos_model::{Kind, LogFields, Severity};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Lit, Probe, app_is, find, has, has_str, probe};

/// `sshd` app name, or an `sshd[pid]:` tag left in the text.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    app_is(input, &["sshd", "sshd-session"]) || probe!(p, "sshd[") || probe!(p, "sshd-session[")
}

/// One message family: the needle that identifies it (first match wins), its activity type, and
/// a sample line (the module test normalises every sample).
struct Event {
    needle: &'static str,
    ty: UserActivityType,
    #[cfg_attr(not(test), allow(dead_code))]
    sample: &'static str,
}

/// Message families, most specific first.
const EVENTS: &[Event] = &[
    Event {
        needle: "Accepted ",
        ty: UserActivityType::SuccessfulLogin,
        sample: "Accepted gssapi-with-mic for alice from 192.0.2.1 port 50001 ssh2",
    },
    Event {
        needle: "Failed ",
        ty: UserActivityType::FailedLogin,
        sample: "Failed publickey for bob from 192.0.2.2 port 50002 ssh2: RSA SHA256:AbCdEf0123456789",
    },
    Event {
        needle: "Invalid user",
        ty: UserActivityType::FailedLogin,
        sample: "Invalid user guest from 192.0.2.3 port 50003",
    },
    Event {
        needle: "illegal user",
        ty: UserActivityType::FailedLogin,
        sample: "error: PAM: User not known to the underlying authentication module for illegal user guest from 192.0.2.4",
    },
    Event {
        needle: "authentication failure",
        ty: UserActivityType::FailedLogin,
        sample: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.5  user=carol",
    },
    Event {
        needle: "maximum authentication attempts",
        ty: UserActivityType::FailedLogin,
        sample: "error: maximum authentication attempts exceeded for invalid user admin from 192.0.2.6 port 50006 ssh2 [preauth]",
    },
    Event {
        needle: "not allowed because",
        ty: UserActivityType::FailedLogin,
        sample: "User dave from 192.0.2.7 not allowed because not listed in AllowUsers",
    },
    Event {
        needle: "Disconnected from invalid user",
        ty: UserActivityType::FailedLogin,
        sample: "Disconnected from invalid user oracle 192.0.2.8 port 50008 [preauth]",
    },
    Event {
        needle: "Disconnected from authenticating user",
        ty: UserActivityType::FailedLogin,
        sample: "Disconnected from authenticating user root 192.0.2.9 port 50009 [preauth]",
    },
    Event {
        needle: "Connection closed by invalid user",
        ty: UserActivityType::FailedLogin,
        sample: "Connection closed by invalid user test 192.0.2.10 port 50010 [preauth]",
    },
    Event {
        needle: "Connection closed by authenticating user",
        ty: UserActivityType::FailedLogin,
        sample: "Connection closed by authenticating user root 192.0.2.11 port 50011 [preauth]",
    },
    Event {
        needle: "Connection reset by invalid user",
        ty: UserActivityType::FailedLogin,
        sample: "Connection reset by invalid user pi 192.0.2.12 port 50012 [preauth]",
    },
    Event {
        needle: "Connection reset by authenticating user",
        ty: UserActivityType::FailedLogin,
        sample: "Connection reset by authenticating user ubuntu 192.0.2.13 port 50013 [preauth]",
    },
    Event {
        needle: "Disconnected from user",
        ty: UserActivityType::Logout,
        sample: "Disconnected from user erin 192.0.2.14 port 50014",
    },
    Event {
        needle: "session opened for user",
        ty: UserActivityType::SuccessfulLogin,
        sample: "pam_unix(sshd:session): session opened for user erin(uid=1005) by (uid=0)",
    },
    Event {
        needle: "session closed for user",
        ty: UserActivityType::Logout,
        sample: "pam_unix(sshd:session): session closed for user erin",
    },
    Event {
        needle: "Close session: user",
        ty: UserActivityType::Logout,
        sample: "Close session: user frank from 192.0.2.15 port 50015 id 0",
    },
    Event {
        needle: "Unable to negotiate",
        ty: UserActivityType::FailedLogin,
        sample: "Unable to negotiate with 192.0.2.16 port 50016: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
    },
    Event {
        needle: "banner exchange",
        ty: UserActivityType::FailedLogin,
        sample: "error: kex_exchange_identification: banner exchange: Connection from 192.0.2.17 port 50017: invalid format",
    },
    Event {
        needle: "Did not receive identification",
        ty: UserActivityType::FailedLogin,
        sample: "Did not receive identification string from 192.0.2.18 port 50018",
    },
    Event {
        needle: "Bad protocol version",
        ty: UserActivityType::FailedLogin,
        sample: "Bad protocol version identification 'GET / HTTP/1.1' from 192.0.2.19 port 50019",
    },
    Event {
        needle: "Timeout before authentication",
        ty: UserActivityType::FailedLogin,
        sample: "fatal: Timeout before authentication for 192.0.2.20 port 50020",
    },
    Event {
        needle: "refused connect from",
        ty: UserActivityType::FailedLogin,
        sample: "refused connect from 192.0.2.21 (192.0.2.21)",
    },
    Event {
        needle: "ssh_dispatch_run_fatal",
        ty: UserActivityType::FailedLogin,
        sample: "ssh_dispatch_run_fatal: Connection from 192.0.2.22 port 50022: message authentication code incorrect [preauth]",
    },
    Event {
        needle: "Magic value check failed",
        ty: UserActivityType::FailedLogin,
        sample: "error: Protocol major versions differ for 192.0.2.23 port 50023: Magic value check failed (1234) [preauth]",
    },
    Event {
        needle: "[preauth]",
        ty: UserActivityType::FailedLogin,
        sample: "Connection closed by 192.0.2.24 port 50024 [preauth]",
    },
    Event {
        needle: "Received disconnect from",
        ty: UserActivityType::Logout,
        sample: "Received disconnect from 192.0.2.25 port 50025:11: disconnected by user",
    },
    Event {
        needle: "Connection closed by",
        ty: UserActivityType::Logout,
        sample: "Connection closed by 192.0.2.26 port 50026",
    },
    Event {
        needle: "Connection reset by",
        ty: UserActivityType::Logout,
        sample: "Connection reset by 192.0.2.27 port 50027",
    },
];

/// Words after which the user name follows, most specific first.
const USER_AFTER: &[&str] = &[
    "invalid user ",
    "illegal user ",
    "authenticating user ",
    "Invalid user ",
    "from user ",
    "for user ",
    "Close session: user ",
    " user=",
    "User ",
    "for ",
];

fn next_word<'a>(t: &'a str, key: &str) -> Option<&'a str> {
    let at = Lit::new(key).find(t.as_bytes())? + key.len();
    t.get(at..)?.split_whitespace().next().map(|w| {
        // `erin(uid=1005)`: the name before a parenthesis
        let w = match w.find('(') {
            Some(at) if at > 0 => w.get(..at).unwrap_or(w),
            _ => w,
        };
        w.trim_matches(['"', '\'', ',', ';'])
    })
}

/// Normalises one sshd line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let t = find!(t, "sshd[")
        .or_else(|| find!(t, "sshd-session["))
        .and_then(|i| t.get(i..))
        .and_then(|r| r.split_once("]: ").map(|(_, m)| m))
        .unwrap_or(t);
    let Some(&Event { needle, ty, .. }) = EVENTS.iter().find(|e| has_str(t, e.needle)) else {
        // an unmapped line still keeps the peer it names (`Connection from A port P on B port
        // Q`, `Postponed publickey for u from A port P`, `getaddrinfo for h [A] failed`)
        let (peer, local) = match t.split_once(" on ") {
            Some((a, b)) if has!(a, " port ") => (a, Some(b)),
            _ => (t, None),
        };
        let src_ip = next_word(peer, "from ")
            .and_then(|w| build::ip(w.trim_end_matches(':')))
            .or_else(|| {
                peer.split_whitespace()
                    .find_map(|w| build::ip(w.trim_matches(['[', ']', '(', ')', ',', ':'])))
            });
        let port_of = |s: &str| {
            next_word(s, " port ").and_then(|p| build::port(p.split(':').next().unwrap_or(p)))
        };
        let fields = LogFields {
            src_ip,
            src_port: port_of(peer),
            dst_ip: local
                .and_then(|l| l.split_whitespace().next())
                .and_then(build::ip),
            dst_port: local.and_then(port_of),
            ..Default::default()
        };
        // `Server listening on A port P` names the daemon's own address, no peer
        let fields = if fields.src_ip.is_some() && !has!(t, "listening on ") {
            fields
        } else {
            LogFields::default()
        };
        return Some(
            Draft::new(
                build::unmapped("sshd line without a mapping"),
                Severity::Info,
            )
            .vendor("OpenBSD (OpenSSH)")
            .model(Some("sshd"))
            .summary(t)
            .fields(fields),
        );
    };
    let user = USER_AFTER.iter().find_map(|k| next_word(t, k)).filter(|u| {
        build::ip(u).is_none()
            && !u.is_empty()
            && !u.contains('=')
            && *u != "from"
            && *u != "invalid"
    });
    let addr = next_word(t, "from ")
        .and_then(|w| build::ip(w).or_else(|| build::ip(w.trim_end_matches(':'))))
        .or_else(|| next_word(t, "rhost=").and_then(build::ip))
        .or_else(|| {
            t.split_whitespace()
                .find_map(|w| build::ip(w.trim_matches(['(', ')', ',', ':'])))
        });
    let port = next_word(t, "port ").and_then(|p| build::port(p.split(':').next().unwrap_or(p)));
    let mut kind = build::user_activity(user, None, addr, port, ty, Some(t));
    if let Kind::UserActivityLog(u) = &mut kind
        && has!(t, "publickey")
        && ty == UserActivityType::SuccessfulLogin
    {
        u.authentication = Some(AuthenticationMode::PreConfiguredKey);
    }
    let sev = match ty {
        UserActivityType::FailedLogin if needle.starts_with("maximum") => Severity::Middle,
        UserActivityType::FailedLogin => Severity::Low,
        _ => Severity::Info,
    };
    Some(
        Draft::new(kind, sev)
            .vendor("OpenBSD (OpenSSH)")
            .model(Some("sshd"))
            .summary(t),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{ip, with_app};

    fn ua(n: &crate::Normalized) -> &pharos_model::UserActivityLog {
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        u
    }

    #[test]
    fn every_event_sample_maps_to_its_row() {
        for e in EVENTS {
            let n = with_app(e.sample, "sshd", "sshd");
            let u = ua(&n);
            let first = EVENTS.iter().find(|r| e.sample.contains(r.needle)).unwrap();
            assert_eq!(
                first.needle, e.needle,
                "{} is claimed by an earlier row",
                e.sample
            );
            assert_eq!(u.additional_info.activity_type, Some(e.ty), "{}", e.sample);
            assert!(
                u.user != "unknown" || !u.ip_address.is_unspecified(),
                "nothing read from {}",
                e.sample
            );
        }
    }

    #[test]
    fn accepted_and_failed() {
        let n = with_app(
            "Accepted publickey for deploy from 10.0.5.2 port 53000 ssh2: RSA SHA256:abc",
            "sshd",
            "sshd",
        );
        let u = ua(&n);
        assert_eq!(u.user, "deploy");
        assert_eq!(u.ip_address, ip("10.0.5.2").unwrap());
        assert_eq!(u.l4_port_number, 53000);
        assert_eq!(
            u.additional_info.activity_type,
            Some(UserActivityType::SuccessfulLogin)
        );
        let n = with_app(
            "Failed password for invalid user root from 203.0.113.9 port 40112 ssh2",
            "sshd",
            "sshd",
        );
        assert_eq!(ua(&n).user, "root");
        assert_eq!(
            ua(&n).additional_info.activity_type,
            Some(UserActivityType::FailedLogin)
        );
    }

    #[test]
    fn invalid_user_max_attempts_and_pam() {
        let n = with_app(
            "Invalid user hadoop from 192.0.2.33 port 51512",
            "sshd",
            "sshd",
        );
        assert_eq!(ua(&n).user, "hadoop");
        let n = with_app(
            "error: maximum authentication attempts exceeded for root from 198.51.100.7 port 2222 ssh2 [preauth]",
            "sshd",
            "sshd",
        );
        assert_eq!(ua(&n).user, "root");
        assert_eq!(n.message.common.severity, Severity::Middle);
        let n = with_app(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.8  user=admin",
            "sshd",
            "sshd",
        );
        assert_eq!(ua(&n).user, "admin");
        assert_eq!(ua(&n).ip_address, ip("192.0.2.8").unwrap());
    }

    #[test]
    fn unmapped_lines_keep_their_peer() {
        let n = with_app(
            "Connection from 198.51.100.3 port 50122 on 192.0.2.22 port 22 rdomain \"\"",
            "sshd",
            "sshd",
        );
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.src_ip, ip("198.51.100.3"));
        assert_eq!(f.src_port, Some(50122));
        assert_eq!(f.dst_ip, ip("192.0.2.22"));
        assert_eq!(f.dst_port, Some(22));
        let n = with_app(
            "reverse mapping checking getaddrinfo for host.example.com [198.51.100.4] failed.",
            "sshd",
            "sshd",
        );
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.src_ip, ip("198.51.100.4"));
        let n = with_app(
            "Postponed publickey for alice from 198.51.100.5 port 50123 ssh2 [preauth]",
            "sshd",
            "sshd",
        );
        assert_eq!(ua(&n).user, "alice");
    }

    #[test]
    fn disconnect_and_negotiation_failure() {
        let n = with_app(
            "Disconnected from user alice 10.0.0.4 port 50000",
            "sshd",
            "sshd",
        );
        assert_eq!(
            ua(&n).additional_info.activity_type,
            Some(UserActivityType::Logout)
        );
        assert_eq!(ua(&n).ip_address, ip("10.0.0.4").unwrap());
        let n = with_app(
            "Unable to negotiate with 192.0.2.50 port 61000: no matching key exchange method found.",
            "sshd",
            "sshd",
        );
        assert_eq!(ua(&n).user, "unknown");
        assert_eq!(ua(&n).ip_address, ip("192.0.2.50").unwrap());
    }
}
