//! IODEF v2 (RFC 7970): one `IODEF-Document`, one `Incident` per message, written with a small
//! escaping writer in the schema's element order.

use std::fmt::Write as _;
use std::net::IpAddr;

use pharos_model::Severity;

use crate::ExportOptions;
use crate::record::{Record, ip_protocol};

/// Where the RSIT is maintained: the `URL` of the classification `Reference`.
pub(crate) const RSIT_URL: &str =
    "https://github.com/enisaeu/Reference-Security-Incident-Taxonomy-Task-Force";

/// `s` escaped for XML text and attribute values; characters XML 1.0 cannot carry (C0 controls
/// but tab, LF, CR; U+FFFE, U+FFFF) are written as `\u{..}`.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn time(t: &pharos_model::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info | Severity::Low => "low",
        Severity::Middle => "medium",
        Severity::High | Severity::Critical => "high",
    }
}

/// `SystemImpact/@type` of a RSIT taxonomy.
fn impact_type(r: &Record) -> &'static str {
    match r.class.as_ref().map(|c| (c.taxonomy, c.kind)) {
        Some(("availability", "outage")) => "availability-system",
        Some(("availability", _)) => "availability-service",
        Some(("information-content-security", _)) => "breach-proprietary",
        Some(("intrusions", _)) => "takeover-system",
        Some(("information-gathering", _)) => "monitoring-traffic",
        _ => "unknown",
    }
}

/// `Discovery/@source` of a kind.
fn discovery(r: &Record) -> &'static str {
    match r.kind {
        "ddos" | "traffic-flows" => "network-flow",
        "intrusion" | "web-attack" | "botnet" | "voip-vocn" => "nidps",
        "virus" => "av",
        "vulnerability-scan-log" => "investigation",
        "system-alarm" | "system-event" | "session-table" => "device-log",
        _ => "device-log",
    }
}

fn address(a: &IpAddr) -> String {
    let cat = if a.is_ipv4() {
        "ipv4-addr"
    } else {
        "ipv6-addr"
    };
    format!("<Address category=\"{cat}\">{a}</Address>")
}

fn service(r: &Record, ports: &[u16]) -> Option<String> {
    let proto = r.transport.and_then(ip_protocol);
    if ports.is_empty() && proto.is_none() {
        return None;
    }
    let mut s = match proto {
        Some(p) => format!("<Service ip-protocol=\"{p}\">"),
        None => "<Service>".to_string(),
    };
    match ports {
        [] => {}
        [p] => {
            let _ = write!(s, "<Port>{p}</Port>");
        }
        many => {
            let mut sorted = many.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            let list: Vec<String> = sorted.iter().map(u16::to_string).collect();
            let _ = write!(s, "<Portlist>{}</Portlist>", list.join(","));
        }
    }
    s.push_str("</Service>");
    Some(s)
}

fn systems(
    out: &mut String,
    r: &Record,
    category: &str,
    addrs: &[IpAddr],
    asn: Option<u32>,
    ports: &[u16],
) {
    for a in addrs {
        let _ = write!(out, "<System category=\"{category}\"");
        if category == "source" && r.kind == "ddos" {
            out.push_str(" spoofed=\"unknown\"");
        }
        out.push_str("><Node>");
        out.push_str(&address(a));
        if let Some(n) = asn {
            let _ = write!(out, "<Address category=\"asn\">{n}</Address>");
        }
        out.push_str("</Node>");
        if category == "source" && r.class.as_ref().is_some_and(|c| c.kind == "c2-server") {
            out.push_str("<NodeRole category=\"c2-server\"/>");
        }
        if let Some(s) = service(r, ports) {
            out.push_str(&s);
        }
        out.push_str("</System>");
    }
}

fn counters(out: &mut String, r: &Record) {
    if let Some(v) = r.rate_pps {
        let _ = write!(
            out,
            "<Counter type=\"rate\" unit=\"packet\" duration=\"second\">{v}</Counter>"
        );
    }
    if let Some(v) = r.rate_bytes {
        let _ = write!(
            out,
            "<Counter type=\"rate\" unit=\"byte\" duration=\"second\">{v}</Counter>"
        );
    }
    if let Some(v) = r.count {
        let _ = write!(
            out,
            "<Counter type=\"counter\" unit=\"event\">{v}</Counter>"
        );
    }
}

fn incident(out: &mut String, r: &Record, opts: &ExportOptions<'_>) {
    let _ = write!(
        out,
        "<Incident purpose=\"reporting\" status=\"new\" restriction=\"{}\">",
        opts.restriction.as_str()
    );
    let _ = write!(
        out,
        "<IncidentID name=\"{}\">{}</IncidentID>",
        esc(&opts.instance),
        r.id
    );
    let _ = write!(out, "<DetectTime>{}</DetectTime>", time(&r.time));
    if let Some(t) = &r.start {
        let _ = write!(out, "<StartTime>{}</StartTime>", time(t));
    }
    if let Some(t) = &r.end {
        let _ = write!(out, "<EndTime>{}</EndTime>", time(t));
    }
    let _ = write!(out, "<ReportTime>{}</ReportTime>", time(&r.received));
    let _ = write!(
        out,
        "<GenerationTime>{}</GenerationTime>",
        time(&opts.generated)
    );
    let _ = write!(out, "<Description>{}</Description>", esc(&r.summary));
    let _ = write!(out, "<Discovery source=\"{}\"/>", discovery(r));
    // Assessment: category, impact, rates, confidence.
    out.push_str("<Assessment occurrence=\"actual\">");
    if let Some(c) = &r.class {
        let _ = write!(
            out,
            "<IncidentCategory>{}</IncidentCategory>",
            esc(&c.as_path())
        );
    }
    let _ = write!(
        out,
        "<SystemImpact severity=\"{}\" type=\"{}\"><Description>{}</Description></SystemImpact>",
        severity(r.severity),
        impact_type(r),
        esc(&r.identifier)
    );
    counters(out, r);
    let confidence = if r.is_event { "high" } else { "medium" };
    let _ = write!(out, "<Confidence rating=\"{confidence}\"/>");
    out.push_str("</Assessment>");
    // Method: the RSIT classification as a Reference, and what exactly.
    out.push_str("<Method>");
    if let Some(c) = &r.class {
        let _ = write!(
            out,
            "<Reference><URL>{RSIT_URL}</URL><Description>{}</Description></Reference>",
            esc(&format!("rsit:{}=\"{}\"", c.taxonomy, c.kind))
        );
    }
    let _ = write!(out, "<Description>{}</Description>", esc(&r.identifier));
    out.push_str("</Method>");
    // Contact: us.
    out.push_str("<Contact role=\"creator\" type=\"organization\">");
    let _ = write!(
        out,
        "<ContactName>{}</ContactName>",
        esc(&opts.organisation)
    );
    if let Some(m) = &opts.contact_email {
        let _ = write!(out, "<Email><EmailTo>{}</EmailTo></Email>", esc(m));
    }
    out.push_str("</Contact>");
    // EventData: the flow and the raw record.
    let has_flow = !r.src.is_empty() || !r.dst.is_empty();
    if has_flow || r.raw.is_some() {
        out.push_str("<EventData>");
        if has_flow {
            out.push_str("<Flow>");
            systems(out, r, "source", &r.src, r.src_as, &r.src_ports);
            systems(out, r, "target", &r.dst, r.dst_as, &r.dst_ports);
            out.push_str("</Flow>");
        }
        if let Some(raw) = &r.raw {
            let _ = write!(
                out,
                "<Record><RecordData><DateTime>{}</DateTime><Description>{}</Description><RecordItem dtype=\"string\">{}</RecordItem></RecordData></Record>",
                time(&r.received),
                esc(&format!("record as received from {}", r.nsf)),
                esc(raw)
            );
        }
        out.push_str("</EventData>");
    }
    out.push_str("</Incident>\n");
}

/// The IODEF v2 document of `recs`. A document needs one incident at least: an empty
/// selection gives a document with one `other` incident saying so.
pub(crate) fn document(recs: &[Record], opts: &ExportOptions<'_>) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<IODEF-Document version=\"2.00\" xml:lang=\"en\" xmlns=\"urn:ietf:params:xml:ns:iodef-2.0\">\n",
    );
    for r in recs {
        incident(&mut out, r, opts);
    }
    if recs.is_empty() {
        let _ = writeln!(
            out,
            "<Incident purpose=\"other\" restriction=\"{}\"><IncidentID name=\"{}\">none</IncidentID><GenerationTime>{}</GenerationTime><Description>no event matched the selection</Description><Contact role=\"creator\" type=\"organization\"><ContactName>{}</ContactName></Contact></Incident>",
            opts.restriction.as_str(),
            esc(&opts.instance),
            time(&opts.generated),
            esc(&opts.organisation)
        );
    }
    out.push_str("</IODEF-Document>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_invalid_characters_are_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'\u{1}\u{7}ok\u{fffe}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;\\u{1}\\u{7}ok\\u{fffe}"
        );
    }
}
