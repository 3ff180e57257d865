//! sudo and su: privilege use, authentication failures and policy violations.
//!
//! Mapping: `sudo: alice : TTY=... ; USER=root ; COMMAND=...` -> system access log (operation
//! other, input = the command, output = `as root`); `N incorrect password attempt(s)` and PAM
//! `authentication failure` -> user activity failed-login; `user NOT in sudoers` -> system event
//! access-violation; su successes (`alice to root on pts/1`, `(to root) alice on`, `Successful su`)
//! -> system access log (login); su failures (`FAILED SU`, `BAD SU`, `failed:`) -> user activity
//! failed-login. Other sudo/su lines are recognised but stored as generic logs. Address: local
//! (`0.0.0.0`, port 0) unless PAM names an `rhost`.

use pharos_model::ident::{OperationType, SystemEventCategory, UserActivityType};
use pharos_model::{Kind, Severity, SystemEvent};

use crate::build::{self, Draft};
use crate::vendors::{Probe, app_is, has, probe};
use crate::{LogInput, UNKNOWN_GROUP};

/// `sudo` / `su` app names, or their tags left in the text.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    app_is(input, &["sudo", "su", "su(pam_unix)"])
        || probe!(p, "sudo:")
        || probe!(p, " su:")
        || probe!(p, " su[")
        || input.text.starts_with("su:")
}

/// `; KEY=value ;` fields of a sudo line.
fn field<'a>(t: &'a str, key: &str) -> Option<&'a str> {
    t.split(" ; ")
        .find_map(|part| part.trim().strip_prefix(key))
        .map(str::trim)
}

fn word_after<'a>(t: &'a str, key: &str) -> Option<&'a str> {
    let at = t.find(key)? + key.len();
    t.get(at..)?
        .split_whitespace()
        .next()
        .map(|w| w.trim_matches(['(', ')', ',', ';']))
}

/// Normalises one sudo or su line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text;
    // strip a tag left in the text ("... sudo:     alice : TTY=...")
    let (is_sudo, body) = if let Some(i) = t.find("sudo:") {
        (true, t.get(i + 5..)?.trim())
    } else if let Some(i) = t.find(" su:").or_else(|| t.starts_with("su:").then_some(0)) {
        (false, t.get(i + if i == 0 { 3 } else { 4 }..)?.trim())
    } else if let Some(i) = t
        .find("]: ")
        .filter(|_| has!(t, " su[") || has!(t, "su(pam_unix)"))
    {
        (false, t.get(i + 3..)?.trim())
    } else {
        (
            app_is(input, &["sudo"]),
            super::linux_auth::after_tag(input, &["sudo", "su"]).trim(),
        )
    };
    let (kind, sev) = if has!(body, "authentication failure") {
        let user = [" user=", "ruser=", "logname="]
            .iter()
            .find_map(|k| word_after(body, k).filter(|w| !w.contains('=') && !w.is_empty()));
        let rhost = word_after(body, "rhost=").and_then(build::ip);
        (
            build::user_activity(
                user,
                None,
                rhost,
                None,
                UserActivityType::FailedLogin,
                Some(body),
            ),
            Severity::Low,
        )
    } else if is_sudo && body.contains(" : ") {
        let (user, rest) = body.split_once(" : ")?;
        let user = user.trim();
        let command = field(rest, "COMMAND=");
        let target = field(rest, "USER=");
        if has!(rest, "incorrect password attempt") {
            (
                build::user_activity(
                    Some(user),
                    None,
                    None,
                    None,
                    UserActivityType::FailedLogin,
                    rest.split(" ; ").next(),
                ),
                Severity::Middle,
            )
        } else if has!(rest, "NOT in sudoers")
            || has!(rest, "command not allowed")
            || has!(rest, "NOT allowed")
        {
            let k = Kind::SystemEvent(SystemEvent {
                event_category: Some(SystemEventCategory::AccessViolation),
                user: build::clip(user),
                group: vec![UNKNOWN_GROUP.to_string()],
                ip_address: build::ip_or_unspecified(None),
                l4_port_number: 0,
                authentication: None,
                changes: Vec::new(),
            });
            (k, Severity::High)
        } else if command.is_some() {
            let output = target.map(|t| format!("as {t}"));
            (
                build::access_log(
                    Some(user),
                    None,
                    None,
                    OperationType::Other,
                    command,
                    output.as_deref(),
                ),
                Severity::Info,
            )
        } else {
            (
                build::unmapped("sudo line without a mapping"),
                Severity::Info,
            )
        }
    } else if let Some((kind, sev)) = super::linux_auth::map_body(body) {
        // PAM session and password lines (`pam_unix(sudo:session): session opened for user ...`)
        (kind, sev)
    } else if !is_sudo {
        su(body)?
    } else {
        (
            build::unmapped("sudo line without a mapping"),
            Severity::Info,
        )
    };
    let tool = if is_sudo { "sudo" } else { "su" };
    Some(
        Draft::new(kind, sev)
            .vendor("Linux")
            .model(Some(tool))
            .summary(format!("{tool}: {body}")),
    )
}

fn su(body: &str) -> Option<(Kind, Severity)> {
    let failed = body.starts_with("FAILED")
        || body.starts_with("BAD SU")
        || body.starts_with("failed:")
        || has!(body, "FAILED SU");
    if failed {
        // "BAD SU erin to root on /dev/pts/2", "FAILED SU (to root) alice on pts/0",
        // "failed: ttyq4 changing from ldap to root"
        let user = word_after(body, "BAD SU ")
            .or_else(|| {
                body.split(") ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
            })
            .or_else(|| word_after(body, "changing from "))
            .or_else(|| word_after(body, " by "));
        return Some((
            build::user_activity(
                user,
                None,
                None,
                None,
                UserActivityType::FailedLogin,
                Some(body),
            ),
            Severity::Middle,
        ));
    }
    // "alice to root on /dev/pts/1", "(to root) alice on pts/1", "Successful su for root by alice",
    // "+ pts/1 alice:root"
    let (user, target) = if let Some(rest) = body.strip_prefix("(to ") {
        let (target, after) = rest.split_once(')')?;
        (after.split_whitespace().next(), Some(target))
    } else if let Some(rest) = body.strip_prefix("Successful su for ") {
        let (target, by) = rest.split_once(" by ")?;
        (by.split_whitespace().next(), Some(target))
    } else if let Some((user, rest)) = body.split_once(" to ") {
        if user.contains(' ') {
            return Some((build::unmapped("su line without a mapping"), Severity::Info));
        }
        (Some(user), rest.split_whitespace().next())
    } else {
        return Some((build::unmapped("su line without a mapping"), Severity::Info));
    };
    let input = target.map(|t| format!("su {t}"));
    Some((
        build::access_log(
            user,
            None,
            None,
            OperationType::Login,
            input.as_deref(),
            Some("success"),
        ),
        Severity::Info,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, with_app};

    #[test]
    fn sudo_command_and_failures() {
        let n = with_app(
            "alice : TTY=pts/4 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/tail /var/log/snort/alert.fast",
            "sudo",
            "sudo",
        );
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!()
        };
        assert_eq!(a.user, "alice");
        assert_eq!(
            a.input.as_deref(),
            Some("/usr/bin/tail /var/log/snort/alert.fast")
        );
        let n = auto(
            "Jun 25 16:15:45 web01 sudo:     dave : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/ls",
            "sudo",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "dave");
        let n = with_app(
            "carol : user NOT in sudoers ; TTY=pts/3 ; PWD=/home/carol ; USER=root ; COMMAND=/bin/ls",
            "sudo",
            "sudo",
        );
        assert!(matches!(n.message.kind, Kind::SystemEvent(_)));
    }

    #[test]
    fn su_success_and_failure() {
        let n = with_app("alice to root on /dev/pts/1", "su", "sudo");
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(a.user, "alice");
        let n = with_app("BAD SU erin to root on /dev/pts/2", "su", "sudo");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "erin");
        let n = with_app(
            "authentication failure; logname= uid=1001 euid=0 tty= ruser=alice rhost=  user=root",
            "su(pam_unix)",
            "sudo",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "root");
    }
}
