//! Cisco Secure Email Gateway (ESA / IronPort) text mail logs: `Info: MID 123 ICID 456 From:
//! <a@b>`, `Info: New SMTP ICID ...`, `Info: MID 123 antivirus positive 'EICAR'` ..., after a
//! syslog header (`mail_logs:` tag) or a bare `Mon Jan  1 00:00:00 2024 Info: ` timestamp, or
//! alone. (The consolidated event log in CEF goes to the `cef` format.)
//!
//! Mapping: the table [`EVENTS`] (a phrase of the message -> [`Class`], first match wins, with a
//! sample line per row, all checked by the tests): anti-virus positives, AMP file-reputation
//! malicious verdicts and virus quarantines -> virus; everything else that names a message
//! (MID), an incoming connection (ICID) or a delivery connection (DCID) -> a generic log carrying
//! its fields: sender (`mail-from`), recipient (`mail-to`), remote address, subject (in the
//! summary), URL, attachment name; the MID is `message-id`, the ICID/DCID `session-id`.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};

use super::{Probe, app_is, probe};

const RULE: &str = "cisco-esa-unknown-rule";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Virus,
    /// Connection rejected or message dropped by a policy.
    Reject,
    Event,
}

use Class as C;

/// Phrase -> class (first match wins), with a sample line written from the AsyncOS for Cisco
/// Email Security user guide (log types, text mail logs).
#[rustfmt::skip]
pub(super) const EVENTS: &[(&str, Class, &str)] = &[
    ("antivirus positive", C::Virus, "Info: MID 5678 antivirus positive 'EICAR-AV-Test'"),
    ("Disposition = MALICIOUS", C::Virus, "Info: Response received for file reputation query from Cloud. File Name = 'invoice.exe', MID = 5679, Disposition = MALICIOUS, Malware = W32.Trojan.Agent, Analysis Score = 0, sha256 = 0a1b2c, upload_action = 0, verdict_source = AMP"),
    ("file reputation verdict", C::Virus, "Info: MID 5680 AMP file reputation verdict : MALICIOUS"),
    ("a/v verdict:VIRAL", C::Virus, "Info: MID 5681 quarantined to \"Virus\" (a/v verdict:VIRAL)"),
    (" REJECT SG ", C::Reject, "Info: ICID 1235 REJECT SG BLACKLIST match sbrs[-10.0:-3.0] SBRS -5.0 country Unknown"),
    (" TCPREFUSE SG ", C::Reject, "Info: ICID 1236 TCPREFUSE SG BLACKLIST match sbrs[-10.0:-3.0] SBRS -8.0"),
    ("Rejected by", C::Reject, "Info: MID 5682 ICID 1237 RID 0 To: <nobody@example.org> Rejected by Receiving Control"),
    ("New SMTP ICID", C::Event, "Info: New SMTP ICID 1234 interface Management (10.0.0.1) address 192.0.2.9 reverse dns host mail.example.com verified yes"),
    (" ACCEPT SG ", C::Event, "Info: ICID 1234 ACCEPT SG UNKNOWNLIST match sbrs[none] SBRS 2.5 country United States"),
    ("From: ", C::Event, "Info: MID 5678 ICID 1234 From: <alice@example.com>"),
    ("To: ", C::Event, "Info: MID 5678 ICID 1234 RID 0 To: <bob@example.org>"),
    ("Subject ", C::Event, "Info: MID 5678 Subject 'Invoice for March'"),
    (" URL ", C::Event, "Info: MID 5678 URL https://bad.example.net/x has reputation -9.0 matched Condition: URL Reputation Rule"),
    ("using engine: CASE spam positive", C::Event, "Info: MID 5678 using engine: CASE spam positive"),
    ("Delivery start", C::Event, "Info: Delivery start DCID 91 MID 5678 to RID [0]"),
    ("Message finished", C::Event, "Info: Message finished MID 5678 done"),
];

/// `MID `/`ICID `/`DCID ` with the mail-log level word, or the `mail_logs` tag.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    (probe!(p, "MID ") || probe!(p, "CID "))
        && (probe!(p, "Info: ")
            || probe!(p, "Warning: ")
            || probe!(p, "Critical: ")
            || app_is(p.input, &["mail_logs", "ironport", "esa"]))
}

/// The message after the level word (`Info: `), or the whole text.
fn body(text: &str) -> &str {
    for level in ["Info: ", "Warning: ", "Critical: ", "Debug: ", "Trace: "] {
        if let Some((_, rest)) = text.split_once(level) {
            return rest.trim();
        }
    }
    text.trim()
}

/// The token after `key` (a whole word in `w`).
fn after<'a>(w: &[&'a str], key: &str) -> Option<&'a str> {
    let i = w.iter().position(|t| *t == key)?;
    w.get(i + 1).copied()
}

/// Text between the first `open` after `key` and the next `close`.
fn between<'a>(s: &'a str, key: &str, open: char, close: char) -> Option<&'a str> {
    let rest = s.split_once(key)?.1;
    let rest = rest.split_once(open)?.1;
    rest.split_once(close).map(|(v, _)| v)
}

/// Normalises one mail log line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let msg = body(input.text);
    let w: Vec<&str> = msg
        .split([' ', ','])
        .filter(|t| !t.is_empty())
        .take(48)
        .collect();
    let mid = after(&w, "MID").map(|m| m.trim_start_matches("= "));
    let mid = mid
        .filter(|m| *m != "=")
        .or_else(|| msg.split("MID = ").nth(1).and_then(|r| r.split(',').next()));
    let session = after(&w, "ICID").or_else(|| after(&w, "DCID"));
    if mid.is_none() && session.is_none() {
        return None;
    }
    let class = EVENTS
        .iter()
        .find(|(phrase, _, _)| msg.contains(phrase))
        .map_or(C::Event, |r| r.1);
    let virus = between(msg, "antivirus positive", '\'', '\'')
        .or_else(|| {
            msg.split("Malware = ")
                .nth(1)
                .and_then(|r| r.split(',').next())
        })
        .or_else(|| between(msg, "verdict", ':', ')').map(str::trim));
    let url = after(&w, "URL").filter(|u| u.contains("://"));
    let p = FwParts {
        flow: Flow {
            src_ip: after(&w, "address").and_then(build::ip),
            src_port: None,
            dst_ip: between(msg, "interface", '(', ')').and_then(build::ip),
            dst_port: None,
        },
        action: match class {
            C::Reject => Some("reject"),
            _ => None,
        },
        domain: after(&w, "host").filter(|h| h.contains('.')),
        url,
        message_id: mid,
        session,
        signature: virus,
        file: between(msg, "File Name = ", '\'', '\''),
        msg: Some(msg),
        rule: after(&w, "SG"),
        ..Default::default()
    };
    let mut fields_extra = (
        after(&w, "From:")
            .map(|v| v.trim_matches(['<', '>']))
            .map(build::clip),
        after(&w, "To:")
            .map(|v| v.trim_matches(['<', '>']))
            .map(build::clip),
    );
    let sev = match class {
        C::Virus => Severity::High,
        C::Reject => Severity::Low,
        C::Event => Severity::Info,
    };
    let fw = match class {
        C::Virus => FwClass::Virus,
        _ => FwClass::Event,
    };
    let mut draft = build::fw_draft(fw, &p, RULE, sev);
    if fields_extra.0.is_some() || fields_extra.1.is_some() {
        let mut f = draft.fields.take().map(|b| *b).unwrap_or_default();
        f.mail_from = fields_extra.0.take();
        f.mail_to = fields_extra.1.take();
        draft = draft.fields(f);
    }
    Some(draft.vendor("Cisco").model(Some("ESA")).summary(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::auto;
    use pharos_model::Kind;

    #[test]
    fn every_phrase_sample_maps_to_its_kind() {
        for (_, class, sample) in EVENTS {
            let n = auto(sample, "cisco-esa");
            let got = match &n.message.kind {
                Kind::Virus(_) => C::Virus,
                Kind::GenericLog(_) => {
                    let f = n.message.common.fields.as_deref().unwrap();
                    if f.action.as_deref() == Some("reject") {
                        C::Reject
                    } else {
                        C::Event
                    }
                }
                k => panic!("{sample}\n{k:?}"),
            };
            assert_eq!(got, *class, "{sample}");
        }
    }

    #[test]
    fn sender_recipient_and_virus_are_kept() {
        let n = auto(
            "<22>Mar  1 10:00:00 esa1 mail_logs: Info: MID 77 ICID 12 From: <alice@example.com>",
            "cisco-esa",
        );
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.mail_from.as_deref(), Some("alice@example.com"));
        assert_eq!(f.message_id.as_deref(), Some("77"));
        assert_eq!(f.session_id.as_deref(), Some("12"));
        let n = auto(EVENTS[0].2, "cisco-esa");
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.virus_name.as_deref(), Some("EICAR-AV-Test"));
        let n = auto(EVENTS[1].2, "cisco-esa");
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.virus_name.as_deref(), Some("W32.Trojan.Agent"));
        assert_eq!(v.file_name.as_deref(), Some("invoice.exe"));
    }
}
