//! IBM QRadar LEEF 1.0 and 2.0 (`LEEF:2.0|Vendor|Product|Version|EventID|delim|k=v...`).
//!
//! Mapping: the CEF classifier ([`super::cef::classify`]) on the LEEF attributes (`src`, `dst`,
//! `srcPort`, `dstPort`, `proto`, `usrName`, `cat`, `sev`, `url`, `action`). Rule names: the event
//! id, or `leef-unknown-rule`.

use pharos_model::{LogFields, Severity};

use crate::LogInput;
use crate::build::{self, Draft, ip, port};
use crate::fields::parse_leef;
use crate::vendors::{Probe, probe};

/// `LEEF:` at the start or after a syslog header.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "LEEF:")
}

/// LEEF `sev` (1-10) on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    match s.and_then(|s| s.trim().parse::<u8>().ok()) {
        Some(0) | None => Severity::Info,
        Some(1..=3) => Severity::Low,
        Some(4..=6) => Severity::Middle,
        Some(7..=8) => Severity::High,
        Some(_) => Severity::Critical,
    }
}

/// Normalises one LEEF record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let l = parse_leef(input.text)?;
    let a = &l.attrs;
    let f = super::cef::Fields {
        name: a.any(&["name", "msg", "eventDesc"]).unwrap_or(l.event_id),
        signature_id: l.event_id,
        category: a.any(&["cat", "category"]).unwrap_or(""),
        src: a.any(&["src", "srcPreNAT"]).and_then(ip),
        dst: a.any(&["dst", "dstPreNAT"]).and_then(ip),
        spt: a.any(&["srcPort", "srcPreNATPort"]).and_then(port),
        dpt: a.any(&["dstPort", "dstPreNATPort"]).and_then(port),
        proto: a.get("proto"),
        act: a.any(&["action", "act", "result"]),
        user: a.any(&["usrName", "user", "accountName"]),
        url: a.any(&["url", "resource"]),
        method: a.get("method"),
        host: a.any(&["dstName", "identHostName"]),
        file: a.any(&["fileName", "filename"]),
        rule: a.any(&["policy", "rule", "ruleName", "signature", "virusName"]),
        app: a.any(&["app", "application"]),
        bytes_out: a
            .any(&["srcBytes", "bytesOut"])
            .and_then(|v| v.parse().ok()),
        bytes_in: a.any(&["dstBytes", "bytesIn"]).and_then(|v| v.parse().ok()),
        extra: LogFields {
            nat_src_ip: a.any(&["srcPostNAT"]).and_then(ip),
            nat_src_port: a.any(&["srcPostNATPort"]).and_then(port),
            nat_dst_ip: a.any(&["dstPostNAT"]).and_then(ip),
            nat_dst_port: a.any(&["dstPostNATPort"]).and_then(port),
            user_agent: a.any(&["userAgent", "useragent"]).map(build::clip),
            domain: a.any(&["domain", "identHostName"]).map(build::clip),
            in_interface: a.any(&["srcInterface", "inInterface"]).map(build::clip),
            out_interface: a.any(&["dstInterface", "outInterface"]).map(build::clip),
            session_id: a.any(&["sessionId", "sessionID"]).map(build::clip),
            ..Default::default()
        },
    };
    let kind = super::cef::classify(&f, "leef-unknown-rule");
    let fields = build::fields_beyond_case(&kind, f.all());
    let time = a
        .get("devTime")
        .and_then(|t| crate::time::epoch(t).or_else(|| crate::time::iso(t)));
    Some(
        Draft::new(kind, severity(a.get("sev")))
            .fields(fields)
            .time(time)
            .vendor(l.vendor)
            .model(Some(l.product))
            .version(Some(l.version))
            .summary(f.name),
    )
}

#[cfg(test)]
mod tests {
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    #[test]
    fn leef_firewall_deny() {
        let n = auto(
            "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|8.1|deny|\tcat=TRAFFIC\tsrc=203.0.113.5\tdst=10.0.0.9\tsrcPort=51000\tdstPort=3389\tproto=tcp\taction=deny\tsev=3",
            "leef",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.src_ip, ip("203.0.113.5"));
        assert_eq!(f.dst_port, Some(3389));
    }

    #[test]
    fn leef2_login_failure_with_caret_delimiter() {
        let n = auto(
            "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|cat=Authentication Failed^src=10.0.1.8^usrName=alice^sev=5",
            "leef",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(u.user, "alice");
    }
}
