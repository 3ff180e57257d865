//! ClamAV: clamd / clamscan detections (`/path/file: Win.Trojan.Agent-123 FOUND`), clamav-milter
//! (`... infected by Eicar-Test-Signature`), and clamd/freshclam housekeeping lines.
//!
//! Mapping: a detection -> virus event (virus name, type from the name, file name, infected host
//! = the syslog host); housekeeping (freshclam updates, clamd self-checks) is recognised but stored
//! as a generic log. Rule names: the signature name; placeholder `clamav-unknown-rule`.

use pharos_model::{Kind, Severity, VirusEvent};

use crate::LogInput;
use crate::build::{self, Draft};
use crate::vendors::{Probe, app_is, has, probe};

const RULE: &str = "clamav-unknown-rule";

/// A `FOUND` line, `infected by`, or a ClamAV app name.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    let input = p.input;
    input.text.trim_end().ends_with(" FOUND")
        || probe!(p, "infected by")
        || app_is(
            input,
            &["clamd", "freshclam", "clamav-milter", "clamscan", "clamav"],
        )
}

/// Normalises one ClamAV line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let t = input.text.trim_end();
    let (file, sig) = if let Some(body) = t.strip_suffix(" FOUND") {
        let (file, sig) = body.rsplit_once(": ")?;
        // a syslog tag left in the text: "clamd[12]: /path: Sig"
        let file = file.rsplit_once("]: ").map_or(file, |(_, f)| f);
        (Some(file.trim()), sig.trim())
    } else if let Some(sig) = t.split("infected by ").nth(1) {
        (None, sig.trim())
    } else if app_is(
        input,
        &["clamd", "freshclam", "clamav-milter", "clamscan", "clamav"],
    ) {
        return Some(
            Draft::new(
                build::unmapped("clamav housekeeping line"),
                if has!(t, "ERROR") {
                    Severity::High
                } else {
                    Severity::Info
                },
            )
            .vendor("Cisco Talos (ClamAV)")
            .model(Some("ClamAV"))
            .summary(t),
        );
    } else {
        return None;
    };
    // "Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68)" -> name without the hash
    let name = sig.split('(').next().unwrap_or(sig).trim();
    if name.is_empty() || name.contains(' ') && !name.starts_with("Heuristics") {
        return None;
    }
    let kind = Kind::Virus(VirusEvent {
        src_ip: None,
        src_port: None,
        dst_ip: None,
        dst_port: None,
        rule_name: build::rule_or(Some(name), RULE),
        virus_name: Some(build::clip(name)),
        virus_type: build::virus_type(name),
        host: input.host.map(build::clip),
        file_type: None,
        file_name: file.map(build::clip),
        os: None,
    });
    Some(
        Draft::new(kind, Severity::High)
            .vendor("Cisco Talos (ClamAV)")
            .model(Some("ClamAV"))
            .summary(format!("{name} found in {}", file.unwrap_or("a message"))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, with_app};

    #[test]
    fn clamd_found_line() {
        let n = auto(
            "/var/www/uploads/invoice.doc: Doc.Trojan.Emotet-6720437-0 FOUND",
            "clamav",
        );
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.virus_name.as_deref(), Some("Doc.Trojan.Emotet-6720437-0"));
        assert_eq!(v.virus_type, Some(pharos_model::ident::VirusType::Trojan));
        assert_eq!(v.file_name.as_deref(), Some("/var/www/uploads/invoice.doc"));
        let n = with_app(
            "/tmp/eicar.com: Eicar-Test-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND",
            "clamd",
            "clamav",
        );
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.rule_name, "Eicar-Test-Signature");
    }

    #[test]
    fn freshclam_is_recognised_not_parsed() {
        let mut input = LogInput::line(
            "daily.cld updated (version: 26900, sigs: 2030000, f-level: 90, builder: raynman)",
        );
        input.app_name = Some("freshclam");
        let n = crate::normalize(&input, crate::Format::Auto, "av");
        assert_eq!(n.format, "clamav");
        assert!(!n.parsed);
    }
}
