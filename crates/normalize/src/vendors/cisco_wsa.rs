//! Cisco Secure Web Appliance (WSA / IronPort) access logs in the Squid-like native layout:
//! `time elapsed client code/status bytes method URL user hierarchy/origin mime ACL-decision-tag
//! <scanning verdicts> [suffix]`, after a syslog header or an `accesslogs: Info: ` prefix or
//! alone; the W3C default field list has the same columns in the same order.
//!
//! What tells it from generic Squid: the ACL decision tag (`DEFAULT_CASE_12-Policy-...`,
//! `BLOCK_WEBCAT_12-...`) and the `<IW_...,score,...>` verdict list.
//!
//! Mapping: the table [`DECISIONS`] (decision tag prefix -> [`Class`], with a sample line per
//! row, all checked by the tests): anti-malware blocks and monitors (`BLOCK_AMW_*`,
//! `BLOCK_AMP_*`, `MONITOR_AMW_*`, `MONITOR_AMP_*`) -> virus (the first threat name of the
//! verdict list); URL filtering blocks (`BLOCK_WEBCAT`, `BLOCK_CUSTOMCAT`, `BLOCK_WBRS`,
//! `BLOCK_AVC_*`, `BLOCK_ADMIN*`) -> DPI log (action drop, the policy group as rule); everything
//! else (`DEFAULT_CASE`, `ALLOW_*`, `PASSTHRU*`, `DECRYPT*`, `MONITOR_*`, other `BLOCK_*`/`DROP_*`)
//! -> firewall traffic log (allow or deny). URL, method, domain, status, user, user agent and the
//! decision tag (message-id) go to `envelope/fields`.

use pharos_model::ident::{DpiType, IngressAction};
use pharos_model::{DpiLog, Kind, Severity};

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};

use super::{Probe, probe};

const RULE: &str = "cisco-wsa-unknown-rule";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Malware,
    UrlBlock,
    Allow,
    Deny,
}

use Class as C;

/// Decision tag prefix -> class (first match wins), with a sample line written from the AsyncOS
/// for Cisco Web Security user guide (access log fields and ACL decision tags).
#[rustfmt::skip]
pub(super) const DECISIONS: &[(&str, Class, &str)] = &[
    ("BLOCK_AMW_", C::Malware, "1500000001.123 42 10.0.0.5 TCP_DENIED/403 2048 GET http://bad.example.net/dl/invoice.exe alice DIRECT/bad.example.net application/x-dosexec BLOCK_AMW_RESP_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_mal,-9.5,1,\"Trojan.Agent\",0,10001,0,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_mal,-,\"Malware\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",12.3,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("BLOCK_AMP_", C::Malware, "1500000002.123 40 10.0.0.6 TCP_DENIED/403 1024 GET http://files.example.net/setup.exe - DIRECT/files.example.net application/x-dosexec BLOCK_AMP_RESP_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_sw,3.2,0,\"-\",0,0,0,-,\"-\",-,-,-,\"W32.Worm.Gen\",-,-,\"-\",\"-\",-,-,IW_sw,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",8.1,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("MONITOR_AMW_", C::Malware, "1500000003.123 38 10.0.0.7 TCP_MISS/200 4096 GET http://adware.example.org/x.js - DIRECT/adware.example.org application/javascript MONITOR_AMW_RESP_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_adv,-6.0,3,\"Adware.Popup\",0,0,0,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_adv,-,\"Adware\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",20.5,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("BLOCK_WEBCAT", C::UrlBlock, "1500000004.123 5 10.0.0.8 TCP_DENIED/403 0 GET http://casino.example.com/ bob NONE/- - BLOCK_WEBCAT_12-Staff-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_gamb,1.2,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_gamb,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",0.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("BLOCK_CUSTOMCAT", C::UrlBlock, "1500000005.123 4 10.0.0.9 TCP_DENIED/403 0 CONNECT tunnel://blocked.example.com:443/ - NONE/- - BLOCK_CUSTOMCAT_12-Staff-ID1-NONE-NONE-NONE-DefaultGroup-NONE <c_blk,-,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,c_blk,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",0.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("BLOCK_WBRS", C::UrlBlock, "1500000006.123 3 10.0.0.10 TCP_DENIED/403 0 GET http://phish.example.net/login - NONE/- - BLOCK_WBRS_12-Staff-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_snet,-8.7,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_snet,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",0.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("BLOCK_AVC", C::UrlBlock, "1500000007.123 6 10.0.0.11 TCP_DENIED/403 0 GET http://games.example.com/play - NONE/- - BLOCK_AVC_APP_12-Staff-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_game,2.1,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_game,-,\"-\",\"-\",\"Games\",\"Online Games\",\"-\",\"-\",0.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("BLOCK_ADMIN", C::UrlBlock, "1500000008.123 2 10.0.0.12 TCP_DENIED/403 0 GET http://files.example.org/big.iso - NONE/- - BLOCK_ADMIN_FILE_TYPE_12-Staff-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_comp,4.0,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_comp,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",0.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("BLOCK_", C::Deny, "1500000009.123 2 10.0.0.13 TCP_DENIED/407 0 GET http://www.example.com/ - NONE/- - BLOCK_CONTINUE_WEBCAT_12-Staff-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_news,5.0,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_news,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",0.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("DROP_", C::Deny, "1500000010.123 1 10.0.0.14 TCP_DENIED/0 0 CONNECT tunnel://198.51.100.9:443/ - NONE/- - DROP_WBRS_12-Staff-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_mal,-10.0,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_mal,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",0.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("DEFAULT_CASE", C::Allow, "1500000011.123 95 10.0.0.15 TCP_MISS/200 1234 GET http://www.example.com/index.html alice DIRECT/www.example.com text/html DEFAULT_CASE_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_comp,6.9,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_comp,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",103.9,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("PASSTHRU", C::Allow, "1500000012.123 300 10.0.0.16 TCP_MISS/200 5120 CONNECT tunnel://bank.example.com:443/ - DIRECT/bank.example.com - PASSTHRU_WBRS_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_fnnc,8.5,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_fnnc,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",136.5,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("DECRYPT", C::Allow, "1500000013.123 120 10.0.0.17 TCP_MISS_SSL/200 2048 GET https://www.example.org/ carol DIRECT/www.example.org text/html DECRYPT_WEBCAT_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_srch,7.0,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_srch,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",136.5,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("ALLOW_", C::Allow, "1500000014.123 80 10.0.0.18 TCP_MISS/200 900 POST http://api.example.com/v1 - DIRECT/api.example.com application/json ALLOW_CUSTOMCAT_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <c_ok,-,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,c_ok,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",90.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
    ("MONITOR_", C::Allow, "1500000015.123 70 10.0.0.19 TCP_MISS/200 700 GET http://news.example.com/ - DIRECT/news.example.com text/html MONITOR_WBRS_12-DefaultGroup-ID1-NONE-NONE-NONE-DefaultGroup-NONE <IW_news,-2.0,-,\"-\",-,-,-,-,\"-\",-,-,-,\"-\",-,-,\"-\",\"-\",-,-,IW_news,-,\"-\",\"-\",\"Unknown\",\"Unknown\",\"-\",\"-\",80.0,0,-,\"-\",\"-\",-,-,\"-\",\"-\"> -"),
];

/// The decision tags' words, any of which marks a WSA line.
fn has_decision(p: &Probe<'_, '_>) -> bool {
    probe!(p, "_CASE_")
        || probe!(p, "<IW_")
        || probe!(p, " BLOCK_")
        || probe!(p, " ALLOW_")
        || probe!(p, " PASSTHRU_")
        || probe!(p, " DECRYPT_")
        || probe!(p, " MONITOR_")
        || probe!(p, " DROP_")
}

/// An epoch timestamp in the first words and an ACL decision tag.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let b = p.input.text.as_bytes();
    let at_start = b.get(10) == Some(&b'.')
        && b.get(..10)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    (at_start || probe!(p, "Info: 1")) && has_decision(p) && start(p.input.text).is_some()
}

/// The line from its epoch timestamp on (after an optional `Info: ` prefix or header words).
fn start(text: &str) -> Option<&str> {
    let mut rest = text.trim_start();
    // a syslog header and `accesslogs: Info:` may come first
    for _ in 0..8 {
        let b = rest.as_bytes();
        if b.len() > 40
            && b.get(10) == Some(&b'.')
            && b.get(..10)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        {
            return Some(rest);
        }
        rest = rest.split_once(' ')?.1.trim_start();
    }
    None
}

/// Epoch seconds with a fraction.
fn epoch(s: &str) -> Option<pharos_model::Timestamp> {
    let (sec, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = sec.parse().ok()?;
    let frac = frac.get(..frac.len().min(9))?;
    let n: u32 = frac.parse().ok()?;
    let nanos = n.checked_mul(10u32.checked_pow(9 - frac.len() as u32)?)?;
    chrono::DateTime::from_timestamp(secs, nanos)
}

/// Normalises one access log line; `None` when the columns do not fit.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let line = start(input.text)?;
    let mut it = line.split_whitespace();
    let time = epoch(it.next()?);
    let _elapsed: u64 = it.next()?.parse().ok()?;
    let client = build::ip(it.next()?)?;
    let (code, status) = it.next()?.split_once('/')?;
    let status: Option<u16> = status.parse().ok().filter(|s| *s > 0);
    let bytes: Option<u64> = it.next()?.parse().ok();
    let method = it.next()?;
    let url = it.next()?;
    let user = it.next()?;
    let (_hier, origin) = it.next()?.split_once('/').unwrap_or(("", ""));
    let _mime = it.next()?;
    let tag = it.next()?;
    let decision = tag.split('-').next().unwrap_or(tag);
    let policy = tag.split('-').nth(1);
    // the verdict list: `<cat,score,...>` (quoted parts may hold spaces)
    let verdicts = line
        .split_once(" <")
        .and_then(|(_, r)| r.rsplit_once('>'))
        .map(|(v, _)| v)
        .unwrap_or("");
    let class = DECISIONS
        .iter()
        .find(|(pre, _, _)| decision.starts_with(pre))
        .map_or(C::Allow, |r| r.1);
    // threat names: the quoted, non-empty verdict values (spyware, McAfee, Sophos names)
    let threat = verdicts
        .split(',')
        .filter(|v| v.len() > 2 && v.starts_with('"') && v.ends_with('"'))
        .map(|v| v.trim_matches('"'))
        .find(|v| *v != "-" && !v.eq_ignore_ascii_case("unknown"));
    let dst_ip = build::ip(origin);
    let (domain, dst_port) = url_host_port(url);
    let p = FwParts {
        flow: Flow {
            src_ip: Some(client),
            src_port: None,
            dst_ip,
            dst_port,
        },
        action: Some(match class {
            C::Malware if decision.starts_with("MONITOR") => "allow",
            C::Allow => "allow",
            _ => "deny",
        }),
        rule: policy,
        user: build::present(Some(user)),
        url: Some(url),
        domain,
        method: Some(method),
        status,
        received: bytes, // the reply size: destination (server) to source (client)
        message_id: Some(decision),
        signature: threat,
        msg: Some(code),
        app: verdicts
            .split(',')
            .next()
            .filter(|c| !c.is_empty() && *c != "-"),
        ..Default::default()
    };
    let sev = match class {
        C::Malware => Severity::High,
        C::UrlBlock | C::Deny => Severity::Low,
        C::Allow => Severity::Info,
    };
    let draft = match class {
        C::Malware => build::fw_draft(FwClass::Virus, &p, RULE, sev),
        C::UrlBlock => {
            let kind = Kind::DpiLog(DpiLog {
                attack_type: decision.contains("ADMIN").then_some(DpiType::FileBlocking),
                src_ip: Some(client),
                src_port: None,
                dst_ip,
                dst_port,
                rule_name: build::rule_or(policy, RULE),
                action: vec![IngressAction::Drop],
            });
            let fields = build::fields_beyond_case(&kind, build::fw_fields(&p));
            Draft::new(kind, sev).fields(fields)
        }
        C::Allow | C::Deny => build::fw_draft(FwClass::Traffic, &p, RULE, sev),
    };
    Some(draft.vendor("Cisco").model(Some("WSA")).time(time))
}

/// Host and explicit port of `scheme://host[:port]/...` (`tunnel://host:443/` for CONNECT).
fn url_host_port(url: &str) -> (Option<&str>, Option<u16>) {
    let Some(host) = super::cisco_asa::url_host(url) else {
        return (None, None);
    };
    let port = url
        .split_once("://")
        .and_then(|(_, r)| r.split(['/', '?']).next())
        .and_then(|hp| hp.rsplit_once(':'))
        .and_then(|(_, p)| build::port(p));
    (Some(host), port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn every_decision_sample_maps_to_its_kind() {
        for (_, class, sample) in DECISIONS {
            let n = auto(sample, "cisco-wsa");
            let got = match &n.message.kind {
                Kind::Virus(_) => C::Malware,
                Kind::DpiLog(_) => C::UrlBlock,
                Kind::FirewallTrafficLog(f) if f.action == Some(IngressAction::Drop) => C::Deny,
                Kind::FirewallTrafficLog(_) => C::Allow,
                k => panic!("{sample}\n{k:?}"),
            };
            assert_eq!(got, *class, "{sample}");
            let json = crate::vendors::cisco_asa::parsed_json(&n);
            let url = sample.split(' ').nth(6).unwrap();
            assert!(json.contains(url), "{sample}\n{json}");
        }
    }

    #[test]
    fn malware_block_names_the_threat() {
        let n = auto(DECISIONS[0].2, "cisco-wsa");
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.virus_name.as_deref(), Some("Trojan.Agent"));
        assert_eq!(v.src_ip, ip("10.0.0.5"));
    }

    #[test]
    fn plain_squid_lines_are_not_claimed() {
        let n = crate::normalize(
            &LogInput::line(
                "1286536308.779    180 192.0.2.224 TCP_MISS/200 411 GET http://www.example.com/ alice DIRECT/203.0.113.34 text/html",
            ),
            crate::Format::Auto,
            "x",
        );
        assert_ne!(n.format, "cisco-wsa");
    }

    #[test]
    fn syslog_prefix_is_skipped() {
        let line = format!("accesslogs: Info: {}", DECISIONS[10].2);
        let n = auto(&line, "cisco-wsa");
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.http_method.as_deref(), Some("GET"));
        assert_eq!(f.user.as_deref(), Some("alice"));
        assert_eq!(f.domain.as_deref(), Some("www.example.com"));
    }
}
