//! Linux `auth.log` / `secure` programs other than sshd and sudo: account management (`useradd`,
//! `userdel`, `usermod`, `groupadd`, `groupdel`, `passwd`, `chpasswd`, `chage`, `gpasswd`), PAM
//! (`pam_unix(service:facility): ...` from any program), `systemd-logind` sessions, `login` and
//! `cron`.
//!
//! Mapping (table [`ROWS`], first needle found wins): account and group changes -> system event
//! configuration-change (user = the account named, group = the group named); logins, session
//! opens -> user activity successful-login; authentication failures -> failed-login; session
//! closes -> logout; password changes -> successful-password-changed; lockouts -> lock; cron
//! commands -> system access log (operation other, input = the command). Other lines of these
//! programs are recognised but stored as generic logs.

use pharos_model::ident::{OperationType, SystemEventCategory, UserActivityType};
use pharos_model::{Kind, LogFields, Severity, SystemEvent};

use crate::build::{self, Draft};
use crate::vendors::{Lit, Probe, app_is, probe};
use crate::{LogInput, UNKNOWN_GROUP, UNKNOWN_USER};

/// Programs whose every line this module reads.
const APPS: &[&str] = &[
    "useradd",
    "userdel",
    "usermod",
    "groupadd",
    "groupdel",
    "groupmod",
    "passwd",
    "chpasswd",
    "chage",
    "gpasswd",
    "newusers",
    "systemd-logind",
    "login",
    "cron",
    "crond",
    "CROND",
    "CRON",
    "polkitd",
    "pkexec",
    "unix_chkpwd",
];

/// An auth program's tag, or a PAM module line from any program.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    app_is(p.input, APPS) || probe!(p, "pam_unix(") || probe!(p, "pam_faillock(")
}

/// What a row becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// User activity of this type.
    Activity(UserActivityType),
    /// System event: configuration change (accounts and groups).
    Config,
    /// System access log: a command run for the user.
    Command,
}

/// One message family: the needle that identifies it, what it becomes, the words after which
/// its user and its group follow, and a sample line (the module test normalises every sample).
struct Row {
    needle: &'static str,
    act: Act,
    user: &'static [&'static str],
    group: &'static [&'static str],
    #[cfg_attr(not(test), allow(dead_code))]
    sample: &'static str,
}

use Act::{Activity, Command, Config};
use UserActivityType as U;

/// Words after which a PAM line names its user.
const PAM_USER: &[&str] = &[" user=", "ruser=", "logname="];

/// Message families, most specific first.
const ROWS: &[Row] = &[
    Row {
        needle: "new user: ",
        act: Config,
        user: &["name="],
        group: &[],
        sample: "useradd[41207]: new user: name=deploy, UID=1001, GID=1001, home=/home/deploy, shell=/bin/bash, from=/dev/pts/0",
    },
    Row {
        needle: "new group: ",
        act: Config,
        user: &[],
        group: &["name="],
        sample: "groupadd[41203]: new group: name=deploy, GID=1001",
    },
    Row {
        needle: "group added to ",
        act: Config,
        user: &[],
        group: &["name="],
        sample: "groupadd[41203]: group added to /etc/group: name=deploy, GID=1001",
    },
    Row {
        needle: "failed adding user ",
        act: Config,
        user: &["user '"],
        group: &[],
        sample: "useradd[41311]: failed adding user 'svc', exit code: 9",
    },
    Row {
        needle: "delete user ",
        act: Config,
        user: &["delete user '"],
        group: &[],
        sample: "userdel[52018]: delete user 'olduser'",
    },
    Row {
        needle: "removed group ",
        act: Config,
        user: &["owned by '"],
        group: &["removed group '"],
        sample: "userdel[52018]: removed group 'olduser' owned by 'olduser'",
    },
    Row {
        needle: "removed shadow group ",
        act: Config,
        user: &["owned by '"],
        group: &["removed shadow group '"],
        sample: "userdel[52018]: removed shadow group 'olduser' owned by 'olduser'",
    },
    Row {
        needle: "change user ",
        act: Config,
        user: &["change user '"],
        group: &[],
        sample: "usermod[60442]: change user 'carol' expiration from 'never' to '2030-06-30'",
    },
    Row {
        needle: "add '",
        act: Config,
        user: &["add '"],
        group: &["group '"],
        sample: "usermod[7731]: add 'carol' to group 'docker'",
    },
    Row {
        needle: "delete '",
        act: Config,
        user: &["delete '"],
        group: &["group '"],
        sample: "gpasswd[7732]: delete 'carol' from group 'docker'",
    },
    Row {
        needle: " added by ",
        act: Config,
        user: &["user "],
        group: &["to group "],
        sample: "gpasswd[7733]: user carol added by root to group docker",
    },
    Row {
        needle: " removed by ",
        act: Config,
        user: &["user "],
        group: &["from group "],
        sample: "gpasswd[7734]: user carol removed by root from group docker",
    },
    Row {
        needle: "' removed",
        act: Config,
        user: &[],
        group: &["group '"],
        sample: "groupdel[812]: group 'devs' removed from /etc/group",
    },
    Row {
        needle: "unlock user ",
        act: Activity(U::Unlock),
        user: &["unlock user '"],
        group: &[],
        sample: "usermod[7735]: unlock user 'carol' password",
    },
    Row {
        needle: "lock user ",
        act: Activity(U::Lock),
        user: &["lock user '"],
        group: &[],
        sample: "usermod[7736]: lock user 'carol' password",
    },
    Row {
        needle: "password check failed for user",
        act: Activity(U::FailedLogin),
        user: &["for user "],
        group: &[],
        sample: "unix_chkpwd[5120]: password check failed for user (alice)",
    },
    Row {
        needle: "' changed by '",
        act: Activity(U::SuccessfulPasswordChanged),
        user: &["password for '"],
        group: &[],
        sample: "passwd[2214]: password for 'alice' changed by 'root'",
    },
    Row {
        needle: "password changed for ",
        act: Activity(U::SuccessfulPasswordChanged),
        user: &["password changed for "],
        group: &[],
        sample: "passwd[2212]: pam_unix(passwd:chauthtok): password changed for alice",
    },
    Row {
        needle: "changed password expiry for ",
        act: Config,
        user: &["expiry for "],
        group: &[],
        sample: "chage[2213]: changed password expiry for alice",
    },
    Row {
        needle: "authentication failure",
        act: Activity(U::FailedLogin),
        user: PAM_USER,
        group: &[],
        sample: "login[901]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=tty1 ruser= rhost=192.0.2.40  user=root",
    },
    Row {
        needle: "check pass; user unknown",
        act: Activity(U::FailedLogin),
        user: &[],
        group: &[],
        sample: "login[902]: pam_unix(login:auth): check pass; user unknown",
    },
    Row {
        needle: "account temporarily locked",
        act: Activity(U::Lock),
        user: &["for user "],
        group: &[],
        sample: "login[903]: pam_faillock(login:auth): Consecutive login failures for user bob account temporarily locked",
    },
    Row {
        needle: "session opened for user ",
        act: Activity(U::SuccessfulLogin),
        user: &["session opened for user "],
        group: &[],
        sample: "CRON[3120]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    },
    Row {
        needle: "session closed for user ",
        act: Activity(U::Logout),
        user: &["session closed for user "],
        group: &[],
        sample: "systemd[1]: pam_unix(systemd-user:session): session closed for user bob",
    },
    Row {
        needle: "New session ",
        act: Activity(U::SuccessfulLogin),
        user: &["of user "],
        group: &[],
        sample: "systemd-logind[612]: New session 42 of user bob.",
    },
    Row {
        needle: "Removed session ",
        act: Activity(U::Logout),
        user: &[],
        group: &[],
        sample: "systemd-logind[612]: Removed session 42.",
    },
    Row {
        needle: " logged out.",
        act: Activity(U::Logout),
        user: &[],
        group: &[],
        sample: "systemd-logind[612]: Session 42 logged out. Waiting for processes to exit.",
    },
    Row {
        needle: "FAILED LOGIN",
        act: Activity(U::FailedLogin),
        user: &["FOR '", "FOR "],
        group: &[],
        sample: "login[904]: FAILED LOGIN (1) on '/dev/tty1' FOR 'admin', Authentication failure",
    },
    Row {
        needle: "Authentication failure",
        act: Activity(U::FailedLogin),
        user: &[],
        group: &[],
        sample: "login[907]: pam_authenticate: Authentication failure",
    },
    Row {
        needle: "ROOT LOGIN",
        act: Activity(U::SuccessfulLogin),
        user: &[],
        group: &[],
        sample: "login[905]: ROOT LOGIN  on '/dev/tty1'",
    },
    Row {
        needle: "LOGIN ON ",
        act: Activity(U::SuccessfulLogin),
        user: &[" BY "],
        group: &[],
        sample: "login[906]: LOGIN ON tty2 BY bob",
    },
    Row {
        needle: ") CMD (",
        act: Command,
        user: &["("],
        group: &[],
        sample: "CRON[3121]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
    },
    Row {
        needle: "Executing command ",
        act: Command,
        user: &[],
        group: &[],
        sample: "pkexec[4410]: bob: Executing command [USER=root] [TTY=unknown] [CWD=/home/bob] [COMMAND=/usr/bin/gparted]",
    },
];

/// The text after a leading syslog tag (`prog[pid]: ` or `prog: `) whose program is the record's
/// app name or one of `names` (the RFC 3164 header parser leaves the tag in the text).
pub(crate) fn after_tag<'a>(input: &LogInput<'a>, names: &[&str]) -> &'a str {
    let t = input.text.trim_start();
    let head = t.get(..t.len().min(64)).unwrap_or("");
    let Some(colon) = head.find(": ") else {
        return t;
    };
    let tag = head.get(..colon).unwrap_or("");
    if tag.is_empty() || tag.contains(' ') {
        return t;
    }
    let prog = tag.split('[').next().unwrap_or(tag);
    let known = input.app_name.is_some_and(|a| a.eq_ignore_ascii_case(prog))
        || names.iter().any(|n| n.eq_ignore_ascii_case(prog));
    if known {
        t.get(colon + 2..).map_or(t, str::trim_start)
    } else {
        t
    }
}

/// The word after `key`, without quotes, brackets and trailing punctuation.
pub(crate) fn word_after<'a>(t: &'a str, key: &str) -> Option<&'a str> {
    let at = Lit::new(key).find(t.as_bytes())? + key.len();
    let w = t
        .get(at..)?
        .split([' ', '\'', '`', ',', '(', ')'])
        .find(|w| !w.is_empty())?;
    let w = w.trim_end_matches(['.', ';', ':', '"', ']']);
    (!w.is_empty() && !w.contains('=')).then_some(w)
}

/// Maps a line body (tag already stripped) through [`ROWS`]; `None` when no row's needle is in it.
pub(crate) fn map_body(body: &str) -> Option<(Kind, Severity)> {
    let row = ROWS
        .iter()
        .find(|r| Lit::new(r.needle).find(body.as_bytes()).is_some())?;
    let user = row
        .user
        .iter()
        .find_map(|k| word_after(body, k))
        .or_else(|| (row.needle == "ROOT LOGIN").then_some("root"));
    let group = row.group.iter().find_map(|k| word_after(body, k));
    let rhost = word_after(body, "rhost=").and_then(build::ip);
    let (kind, sev) = match row.act {
        Activity(ty) => {
            let sev = match ty {
                U::FailedLogin => Severity::Low,
                U::Lock => Severity::Middle,
                _ => Severity::Info,
            };
            (
                build::user_activity(user, group, rhost, None, ty, Some(body)),
                sev,
            )
        }
        Config => {
            let k = Kind::SystemEvent(SystemEvent {
                event_category: Some(SystemEventCategory::ConfigurationChange),
                user: build::clip(build::present(user).unwrap_or(UNKNOWN_USER)),
                group: vec![build::clip(build::present(group).unwrap_or(UNKNOWN_GROUP))],
                ip_address: build::ip_or_unspecified(None),
                l4_port_number: 0,
                authentication: None,
                changes: vec![build::clip(body)],
            });
            let sev = if body.starts_with("failed") {
                Severity::Low
            } else {
                Severity::Info
            };
            (k, sev)
        }
        Command => {
            let cmd = second_paren(body).or_else(|| {
                body.split("[COMMAND=")
                    .nth(1)
                    .and_then(|c| c.split(']').next())
            });
            let user = user.or_else(|| body.split(':').next().filter(|u| !u.contains(' ')));
            let k = build::access_log(user, None, None, OperationType::Other, cmd, None);
            (k, Severity::Info)
        }
    };
    Some((kind, sev))
}

/// `(root) CMD (command)` -> `command`.
fn second_paren(body: &str) -> Option<&str> {
    let rest = body.split(") CMD (").nth(1)?;
    let cmd = rest.strip_suffix(')').unwrap_or(rest).trim();
    (!cmd.is_empty()).then_some(cmd)
}

/// Normalises one line of an auth program.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let body = after_tag(input, APPS);
    // a PAM line from another program (`systemd[1]: pam_unix(...)`): drop its tag too
    let body = match body.find("pam_") {
        Some(at) if at > 0 && body.get(..at).is_some_and(|h| h.ends_with(": ")) => {
            body.get(at..).unwrap_or(body)
        }
        _ => body,
    };
    let program = input
        .app_name
        .or_else(|| input.text.split(['[', ':']).next())
        .unwrap_or("");
    let Some((kind, sev)) = map_body(body) else {
        return Some(
            Draft::new(
                build::unmapped("auth line without a mapping"),
                Severity::Info,
            )
            .vendor("Linux")
            .model(Some(program))
            .summary(body),
        );
    };
    Some(
        Draft::new(kind, sev)
            .vendor("Linux")
            .model(Some(program))
            .summary(body)
            .fields(LogFields {
                application: build::present(Some(program)).map(build::clip),
                ..Default::default()
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::auto;

    fn user_of(k: &Kind) -> (&str, &str) {
        match k {
            Kind::UserActivityLog(u) => (u.user.as_str(), u.group[0].as_str()),
            Kind::SystemEvent(e) => (e.user.as_str(), e.group[0].as_str()),
            Kind::SystemAccessLog(a) => (a.user.as_str(), a.group[0].as_str()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_row_sample_maps_to_its_row() {
        for row in ROWS {
            let line = row.sample;
            let n = auto(line, "linux-auth");
            let want = match row.act {
                Activity(_) => "user-activity-log",
                Config => "system-event",
                Command => "system-access-log",
            };
            assert_eq!(n.message.kind.name(), want, "{line}");
            let first = ROWS
                .iter()
                .find(|r| line.contains(r.needle))
                .map(|r| r.needle);
            assert_eq!(
                first,
                Some(row.needle),
                "{line} is claimed by an earlier row"
            );
            let (user, group) = user_of(&n.message.kind);
            if !row.user.is_empty() {
                assert_ne!(user, UNKNOWN_USER, "{line}");
            }
            if !row.group.is_empty() {
                assert_ne!(group, UNKNOWN_GROUP, "{line}");
            }
        }
    }

    #[test]
    fn users_and_groups_are_read_from_the_line() {
        let n = auto(
            "useradd[41208]: new user: name=nginx, UID=990, GID=985, home=/var/lib/nginx, shell=/sbin/nologin",
            "linux-auth",
        );
        assert_eq!(user_of(&n.message.kind).0, "nginx");
        let n = auto("usermod[7731]: add 'carol' to group 'docker'", "linux-auth");
        assert_eq!(user_of(&n.message.kind), ("carol", "docker"));
        let n = auto(
            "CRON[3120]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
            "linux-auth",
        );
        assert_eq!(user_of(&n.message.kind).0, "root");
        let n = auto(
            "login[901]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=tty1 ruser= rhost=192.0.2.40  user=root",
            "linux-auth",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "root");
        assert_eq!(u.ip_address.to_string(), "192.0.2.40");
        let n = auto(
            "CRON[3121]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
            "linux-auth",
        );
        let Kind::SystemAccessLog(a) = &n.message.kind else {
            panic!()
        };
        assert_eq!(
            a.input.as_deref(),
            Some("cd / && run-parts --report /etc/cron.hourly")
        );
    }
}
