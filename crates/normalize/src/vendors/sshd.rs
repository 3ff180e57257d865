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
use pharos_model::{Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Lit, Probe, app_is, find, has, has_str, probe};

/// `sshd` app name, or an `sshd[pid]:` tag left in the text.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    app_is(input, &["sshd", "sshd-session"]) || probe!(p, "sshd[") || probe!(p, "sshd-session[")
}

/// Needle -> activity type, first match wins.
const EVENTS: &[(&str, UserActivityType)] = &[
    ("Accepted ", UserActivityType::SuccessfulLogin),
    ("Failed ", UserActivityType::FailedLogin),
    ("Invalid user", UserActivityType::FailedLogin),
    ("authentication failure", UserActivityType::FailedLogin),
    (
        "maximum authentication attempts",
        UserActivityType::FailedLogin,
    ),
    ("not allowed because", UserActivityType::FailedLogin),
    (
        "Disconnected from invalid user",
        UserActivityType::FailedLogin,
    ),
    (
        "Disconnected from authenticating user",
        UserActivityType::FailedLogin,
    ),
    (
        "Connection closed by invalid user",
        UserActivityType::FailedLogin,
    ),
    (
        "Connection closed by authenticating user",
        UserActivityType::FailedLogin,
    ),
    (
        "Connection reset by invalid user",
        UserActivityType::FailedLogin,
    ),
    (
        "Connection reset by authenticating user",
        UserActivityType::FailedLogin,
    ),
    ("Disconnected from user", UserActivityType::Logout),
    ("session closed for user", UserActivityType::Logout),
    ("Close session: user", UserActivityType::Logout),
    ("Unable to negotiate", UserActivityType::FailedLogin),
    ("banner exchange", UserActivityType::FailedLogin),
    (
        "Did not receive identification",
        UserActivityType::FailedLogin,
    ),
    ("Bad protocol version", UserActivityType::FailedLogin),
    (
        "Timeout before authentication",
        UserActivityType::FailedLogin,
    ),
    ("refused connect from", UserActivityType::FailedLogin),
    ("ssh_dispatch_run_fatal", UserActivityType::FailedLogin),
    ("Magic value check failed", UserActivityType::FailedLogin),
    ("[preauth]", UserActivityType::FailedLogin),
];

/// Words after which the user name follows, most specific first.
const USER_AFTER: &[&str] = &[
    "invalid user ",
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
    t.get(at..)?
        .split_whitespace()
        .next()
        .map(|w| w.trim_matches(['"', '\'', ',', ';']))
}

/// Normalises one sshd line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    let t = find!(t, "sshd[")
        .or_else(|| find!(t, "sshd-session["))
        .and_then(|i| t.get(i..))
        .and_then(|r| r.split_once("]: ").map(|(_, m)| m))
        .unwrap_or(t);
    let Some(&(needle, ty)) = EVENTS.iter().find(|(n, _)| has_str(t, n)) else {
        return Some(
            Draft::new(
                build::unmapped("sshd line without a mapping"),
                Severity::Info,
            )
            .vendor("OpenBSD (OpenSSH)")
            .model(Some("sshd"))
            .summary(t),
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
    let port = next_word(t, "port ").and_then(|p| build::port(p.trim_end_matches(':')));
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
