//! Rendering a notice: the rows of its events (third-party addresses pseudonymised), the mail
//! (summary, table, CSV and IODEF v2 attachments, MIME multipart/mixed) and the webhook JSON.
//!
//! Contract: text from the network (NSF names, messages, organisation names) reaches headers only
//! as RFC 2047 encoded words with control characters removed (no header injection), and the body
//! and attachments only escaped (control characters as `\u{..}`, XML escaped in IODEF, CSV
//! quoted with formula prefixes neutralised).

use std::net::IpAddr;

use ipnet::IpNet;
use pharos_anon::CryptoPan;
use pharos_model::{AddrRole, Message};
use pharos_store::StoredMessage;

/// One event as a notice shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// Message store id.
    pub id: u64,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// Kind name.
    pub kind: String,
    /// RSIT `taxonomy/type`.
    pub classification: String,
    /// Pharos severity.
    pub severity: String,
    /// Source-side addresses (third parties pseudonymised if asked).
    pub source: Vec<String>,
    /// Destination-side addresses.
    pub destination: Vec<String>,
    /// Reporting NSF.
    pub nsf: String,
    /// Free text (escaped).
    pub description: String,
}

/// Escapes control characters as `\u{..}`.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `a` is one of the recipient's own addresses (an IPv4-mapped IPv6 address as its IPv4).
fn is_own(own: &[IpNet], a: IpAddr) -> bool {
    let c = a.to_canonical();
    own.iter().any(|n| n.contains(&a) || n.contains(&c))
}

/// `a` as the recipient sees it: pseudonymised with `anon` unless it is one of `own`.
fn shown(own: &[IpNet], anon: Option<&CryptoPan>, a: IpAddr) -> IpAddr {
    match anon {
        Some(cp) if !is_own(own, a) => cp.anonymize(a),
        _ => a,
    }
}

/// `text` with every address written in it (found by [`pharos_anon::find_addresses`], whether
/// or not the event's fields name it) pseudonymised unless it is one of `own`.
pub fn pseudonymise_text(text: &str, own: &[IpNet], anon: Option<&CryptoPan>) -> String {
    if anon.is_none() {
        return text.to_string();
    }
    pharos_anon::replace_addresses(text, |a| {
        let b = shown(own, anon, a);
        (b != a).then(|| b.to_string())
    })
}

/// The rows of `events`: addresses outside `own` pseudonymised with `anon` when given, in the
/// address columns and wherever they are written in the event's text.
pub fn rows(events: &[StoredMessage], own: &[IpNet], anon: Option<&CryptoPan>) -> Vec<Row> {
    events
        .iter()
        .map(|s| {
            let m = &s.message;
            let (mut src, mut dst) = (Vec::new(), Vec::new());
            for (role, a) in m.addresses() {
                let v = shown(own, anon, a).to_string();
                let list = if role == AddrRole::Src {
                    &mut src
                } else {
                    &mut dst
                };
                if !list.contains(&v) {
                    list.push(v);
                }
            }
            let text = m
                .common
                .message
                .clone()
                .or_else(|| m.rule_name().map(str::to_string))
                .unwrap_or_default();
            Row {
                id: m.common.id.unwrap_or(0),
                time: m
                    .common
                    .event_time
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                kind: m.kind.name().to_string(),
                classification: m
                    .common
                    .classification_of(&m.kind)
                    .map(|c| c.as_path())
                    .unwrap_or_default(),
                severity: format!("{:?}", m.common.severity).to_lowercase(),
                source: src,
                destination: dst,
                nsf: escape_text(&pseudonymise_text(&m.common.nsf_name, own, anon)),
                description: escape_text(&pseudonymise_text(&text, own, anon)),
            }
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for ch in data.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if ch.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if ch.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Base64 in lines of 76 characters, CRLF-ended (a MIME body).
fn base64_lines(data: &[u8]) -> String {
    let b = base64(data);
    let mut out = String::with_capacity(b.len() + b.len() / 38);
    for chunk in b.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push_str("\r\n");
    }
    out
}

/// A header value safe in any header: control characters (CR, LF included) dropped; non-ASCII
/// text as an RFC 2047 encoded word.
pub fn header_value(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        clean
    } else {
        format!("=?UTF-8?B?{}?=", base64(clean.as_bytes()))
    }
}

/// CSV of the rows (RFC 4180, CRLF; cells starting with `=`, `+`, `-` or `@` prefixed with `'`).
pub fn csv(rows: &[Row]) -> String {
    fn cell(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out =
        String::from("id,time,kind,classification,severity,source,destination,nsf,description\r\n");
    for r in rows {
        let cells = [
            r.id.to_string(),
            r.time.clone(),
            r.kind.clone(),
            r.classification.clone(),
            r.severity.clone(),
            r.source.join(" "),
            r.destination.join(" "),
            r.nsf.clone(),
            r.description.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The IODEF v2 attachment (RFC 7970): `pharos-export`'s writer, the one `pharos events export
/// --format iodef2` uses, one `Incident` per event (TLP amber), with the same pseudonyms as
/// the rest of the notice (every address outside `own`, in the flow and in every text: the
/// description, the raw record; the AS number of a pseudonymised side is left out).
pub fn iodef(
    events: &[Message],
    own: &[IpNet],
    anon: Option<&CryptoPan>,
    site: &str,
    from: &str,
) -> anyhow::Result<String> {
    let pseudonym = |a: IpAddr| shown(own, anon, a);
    let mut opts = pharos_export::ExportOptions::new(site);
    opts.organisation = site.to_string();
    opts.contact_email = Some(from.to_string());
    opts.restriction = pharos_export::Restriction::Amber;
    if anon.is_some() {
        opts.anon = Some(&pseudonym);
    }
    Ok(pharos_export::export_string(
        pharos_export::Format::Iodef2,
        events,
        &opts,
    )?)
}

/// The fixed texts of a notice in one language. Placeholders: `{org}`, `{interval}`, `{n}`,
/// `{class}`, `{id}`.
#[derive(Debug)]
pub struct Texts {
    /// The BCP 47 tag of the language (`Content-Language`).
    pub code: &'static str,
    /// Subject of an immediate notice (after `[site] `).
    pub subject_immediate: &'static str,
    /// Subject of a digest (after `[site] `).
    pub subject_digest: &'static str,
    /// First line of the body.
    pub greeting: &'static str,
    /// The sentence before the counts by classification.
    pub summary: &'static str,
    /// The note on pseudonymised addresses.
    pub anonymised: &'static str,
    /// Column headers of the table.
    pub table_header: &'static str,
    /// The last line (attachments).
    pub footer: &'static str,
}

/// The languages notices are written in; the first is the fallback.
pub const TEXTS: [Texts; 3] = [
    Texts {
        code: "en",
        subject_immediate: "{class} concerning {org} (event {id})",
        subject_digest: "{interval} digest: {n} event(s) concerning {org}",
        greeting: "Pharos early warning for {org} ({interval} notice).",
        summary: "{n} event(s) touched addresses of your organisation:",
        anonymised: "Addresses of other parties are pseudonymised (Crypto-PAn, prefix-preserving).",
        table_header: "  id  time                  severity  classification                  source -> destination",
        footer: "The events are attached as CSV (events.csv) and IODEF v2 (events.iodef.xml).",
    },
    Texts {
        code: "de",
        subject_immediate: "{class} betreffend {org} (Ereignis {id})",
        subject_digest: "Zusammenfassung ({interval}): {n} Ereignis(se) betreffend {org}",
        greeting: "Pharos-Frühwarnung für {org} (Benachrichtigung: {interval}).",
        summary: "{n} Ereignis(se) betrafen Adressen Ihrer Organisation:",
        anonymised: "Adressen Dritter sind pseudonymisiert (Crypto-PAn, präfixerhaltend).",
        table_header: "  ID  Zeit                  Schwere   Klassifikation                  Quelle -> Ziel",
        footer: "Die Ereignisse sind als CSV (events.csv) und IODEF v2 (events.iodef.xml) angehängt.",
    },
    Texts {
        code: "fr",
        subject_immediate: "{class} concernant {org} (événement {id})",
        subject_digest: "Synthèse ({interval}) : {n} événement(s) concernant {org}",
        greeting: "Alerte précoce Pharos pour {org} (notification : {interval}).",
        summary: "{n} événement(s) ont concerné des adresses de votre organisation :",
        anonymised: "Les adresses des tiers sont pseudonymisées (Crypto-PAn, préservant les préfixes).",
        table_header: "  id  heure                 gravité   classification                  source -> destination",
        footer: "Les événements sont joints en CSV (events.csv) et IODEF v2 (events.iodef.xml).",
    },
];

/// The texts for a BCP 47 tag, matched on its primary subtag (case-insensitive); English for
/// an empty or unknown tag.
pub fn texts(language: &str) -> &'static Texts {
    let primary = language.split(['-', '_']).next().unwrap_or("").trim();
    TEXTS
        .iter()
        .find(|t| t.code.eq_ignore_ascii_case(primary))
        .unwrap_or(&TEXTS[0])
}

/// Fills the placeholders of a template.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// The subject (before header encoding): `[site] ` and the immediate or digest template.
pub fn subject(t: &Texts, site: &str, org: &str, interval: &str, rows: &[Row]) -> String {
    let n = rows.len().to_string();
    let text = match rows.first() {
        Some(r) if interval == "immediate" => {
            let id = r.id.to_string();
            fill(
                t.subject_immediate,
                &[("class", &r.classification), ("org", org), ("id", &id)],
            )
        }
        _ => fill(
            t.subject_digest,
            &[("interval", interval), ("n", &n), ("org", org)],
        ),
    };
    format!("[{site}] {text}")
}

/// The plain-text body in the language of `t`: a summary and a table of the events.
pub fn text_body(t: &Texts, org: &str, interval: &str, rows: &[Row], anonymised: bool) -> String {
    let mut b = String::new();
    let org = escape_text(org);
    let n = rows.len().to_string();
    b.push_str(&fill(t.greeting, &[("org", &org), ("interval", interval)]));
    b.push_str("\n\n");
    let mut by_class: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in rows {
        *by_class.entry(r.classification.as_str()).or_default() += 1;
    }
    b.push_str(&fill(t.summary, &[("n", &n)]));
    b.push('\n');
    for (c, n) in &by_class {
        b.push_str(&format!("  {n:>5}  {c}\n"));
    }
    if anonymised {
        b.push('\n');
        b.push_str(t.anonymised);
        b.push('\n');
    }
    b.push('\n');
    b.push_str(t.table_header);
    b.push('\n');
    for r in rows {
        b.push_str(&format!(
            "{:>4}  {:<20}  {:<8}  {:<30}  {} -> {}\n",
            r.id,
            r.time,
            r.severity,
            r.classification,
            r.source.join(" "),
            r.destination.join(" ")
        ));
        if !r.description.is_empty() {
            b.push_str(&format!("      {}\n", r.description));
        }
    }
    b.push('\n');
    b.push_str(t.footer);
    b.push('\n');
    b
}

/// What a mail is made of.
pub struct Mail<'a> {
    /// Sender address (validated).
    pub from: &'a str,
    /// Recipient address (validated).
    pub to: &'a str,
    /// Subject (any text: encoded here).
    pub subject: &'a str,
    /// Plain-text body.
    pub body: &'a str,
    /// Attachments: file name, content type, bytes.
    pub attachments: Vec<(&'a str, &'a str, Vec<u8>)>,
    /// `Date:` (RFC 2822).
    pub date: String,
    /// `Message-ID:` right-hand side material (unique).
    pub message_id: String,
    /// `Content-Language:` (the BCP 47 tag of the texts used).
    pub language: &'a str,
}

/// A complete RFC 5322 message: multipart/mixed, every part base64.
pub fn mime(m: &Mail<'_>) -> Vec<u8> {
    let boundary = format!("=_pharos_{}", m.message_id.replace(['@', '.'], "_"));
    let mut s = String::new();
    s.push_str(&format!("From: Pharos <{}>\r\n", header_value(m.from)));
    s.push_str(&format!("To: <{}>\r\n", header_value(m.to)));
    s.push_str(&format!("Subject: {}\r\n", header_value(m.subject)));
    s.push_str(&format!("Date: {}\r\n", m.date));
    s.push_str(&format!(
        "Message-ID: <{}>\r\n",
        header_value(&m.message_id)
    ));
    s.push_str(&format!(
        "Content-Language: {}\r\n",
        header_value(m.language)
    ));
    s.push_str("MIME-Version: 1.0\r\n");
    s.push_str("Auto-Submitted: auto-generated\r\n");
    s.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    s.push_str("This is a MIME message.\r\n");
    s.push_str(&format!("--{boundary}\r\n"));
    s.push_str(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    s.push_str(&base64_lines(m.body.as_bytes()));
    for (name, ctype, data) in &m.attachments {
        s.push_str(&format!("--{boundary}\r\n"));
        s.push_str(&format!(
            "Content-Type: {ctype}; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
        ));
        s.push_str(&base64_lines(data));
    }
    s.push_str(&format!("--{boundary}--\r\n"));
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn header_values_cannot_inject_headers() {
        assert_eq!(header_value("a\r\nBcc: x@y"), "aBcc: x@y");
        assert!(header_value("Universität\n").starts_with("=?UTF-8?B?"));
        assert!(!header_value("Universität\n").contains('\n'));
    }

    fn row() -> Row {
        Row {
            id: 7,
            time: "t".into(),
            kind: "ddos".into(),
            classification: "availability/ddos".into(),
            severity: "high".into(),
            source: vec![],
            destination: vec![],
            nsf: "n".into(),
            description: String::new(),
        }
    }

    #[test]
    fn notices_are_written_in_the_contacts_language_english_by_default() {
        assert_eq!(texts("de").code, "de");
        assert_eq!(texts("de-AT").code, "de");
        assert_eq!(texts("FR-ca").code, "fr");
        assert_eq!(texts("").code, "en");
        assert_eq!(texts("sl").code, "en");
        let rows = [row()];
        let de = texts("de-AT");
        assert_eq!(
            subject(de, "s", "Uni", "daily", &rows),
            "[s] Zusammenfassung (daily): 1 Ereignis(se) betreffend Uni"
        );
        assert_eq!(
            subject(de, "s", "Uni", "immediate", &rows),
            "[s] availability/ddos betreffend Uni (Ereignis 7)"
        );
        assert_eq!(
            subject(texts("en"), "s", "Uni", "daily", &rows),
            "[s] daily digest: 1 event(s) concerning Uni"
        );
        let body = text_body(texts("fr"), "Uni", "daily", &rows, true);
        assert!(body.starts_with("Alerte précoce Pharos pour Uni"), "{body}");
        assert!(
            body.contains("pseudonymisées") && body.contains("sont joints"),
            "{body}"
        );
        let mail = String::from_utf8(mime(&Mail {
            from: "a@b.example",
            to: "c@d.example",
            subject: &subject(de, "s", "Universität", "daily", &rows),
            body: &text_body(de, "Universität", "daily", &rows, false),
            attachments: vec![],
            date: "d".into(),
            message_id: "1@s".into(),
            language: de.code,
        }))
        .unwrap();
        assert!(mail.contains("\r\nContent-Language: de\r\n"), "{mail}");
        assert!(mail.contains("\r\nSubject: =?UTF-8?B?"), "{mail}");
    }

    fn cp() -> CryptoPan {
        CryptoPan::new(
            &pharos_anon::Key::from_hex(
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            )
            .unwrap(),
        )
    }

    #[test]
    fn third_party_addresses_only_in_free_text_are_pseudonymised_too() {
        let cp = cp();
        let own: Vec<IpNet> = vec!["198.51.100.0/24".parse().unwrap()];
        let p = |a: &str| cp.anonymize(a.parse().unwrap()).to_string();
        let text = "syn-flood on 198.51.100.10: from 203.0.113.9:4444, [2001:db8::7]:443, \
                    ::ffff:192.0.2.1 and 192.0.2.77. v1.2.3.4 1.2.3.4.5 at 12:30:45 own ::ffff:198.51.100.3";
        let out = pseudonymise_text(text, &own, Some(&cp));
        assert_eq!(
            out,
            format!(
                "syn-flood on 198.51.100.10: from {}:4444, [{}]:443, {} and {}. v1.2.3.4 1.2.3.4.5 at 12:30:45 own ::ffff:198.51.100.3",
                p("203.0.113.9"),
                p("2001:db8::7"),
                p("::ffff:192.0.2.1"),
                p("192.0.2.77")
            )
        );
        // without a key (the contact's policy says no) the text stays as it was
        assert_eq!(pseudonymise_text(text, &own, None), text);
    }

    #[test]
    fn hostile_free_text_never_panics_and_keeps_no_third_party_address() {
        let cp = cp();
        let own: Vec<IpNet> = vec!["198.51.100.0/24".parse().unwrap()];
        for text in [
            "",
            "\u{0}203.0.113.1\u{0}",
            "€203.0.113.2€ é2001:db8::2é",
            "203.0.113.3\r\nBcc: x@y 203.0.113.4%eth0 203.0.113.5/24",
            &"203.0.113.6 ".repeat(2000),
            &"1.".repeat(5000),
            &":".repeat(5000),
            "<a href=\"http://203.0.113.7:8080/x?ip=2001:db8::9&y=1\">",
        ] {
            let out = pseudonymise_text(text, &own, Some(&cp));
            for a in ["203.0.113.", "2001:db8::"] {
                assert!(!out.contains(a), "{a} in {out:?}");
            }
        }
    }

    #[test]
    fn the_iodef_attachment_is_the_exports_with_the_notices_pseudonyms() {
        let cp = cp();
        let own: Vec<IpNet> = vec!["198.51.100.10/32".parse().unwrap()];
        let mut m = Message::new(
            "fw1",
            pharos_model::Kind::Intrusion(pharos_model::IntrusionEvent {
                src_ip: Some("203.0.113.9".parse().unwrap()),
                src_port: None,
                dst_ip: Some("198.51.100.10".parse().unwrap()),
                dst_port: Some(22),
                rule_name: "ssh-bf".into(),
                protocol: None,
                app: None,
                attack_type: None,
            }),
        );
        m.common.id = Some(5);
        m.common.raw =
            Some("Failed password from 203.0.113.9 via 192.0.2.66 to 198.51.100.10".into());
        m.common.fields = Some(Box::new(pharos_model::LogFields {
            src_as: Some(64999),
            dst_as: Some(64600),
            ..Default::default()
        }));
        let x = iodef(
            &[m.clone()],
            &own,
            Some(&cp),
            "cert.example",
            "cert@cert.example",
        )
        .unwrap();
        let p = |a: &str| cp.anonymize(a.parse().unwrap()).to_string();
        assert!(x.contains("<IODEF-Document version=\"2.00\""), "{x}");
        assert!(
            x.contains("<IncidentID name=\"cert.example\">5</IncidentID>"),
            "{x}"
        );
        assert!(
            x.contains(&p("203.0.113.9")) && x.contains(&p("192.0.2.66")),
            "{x}"
        );
        assert!(
            !x.contains("203.0.113.9") && !x.contains("192.0.2.66"),
            "{x}"
        );
        // the recipient's host and its AS in clear; the pseudonymised side's AS left out
        assert!(x.contains("198.51.100.10") && x.contains(">64600<"), "{x}");
        assert!(!x.contains("64999"), "{x}");
        // without pseudonyms (the contact's policy) everything is in clear
        let x = iodef(&[m], &own, None, "cert.example", "cert@cert.example").unwrap();
        assert!(x.contains("203.0.113.9") && x.contains(">64999<"), "{x}");
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let r = Row {
            id: 1,
            time: "t".into(),
            kind: "k".into(),
            classification: "c".into(),
            severity: "high".into(),
            source: vec![],
            destination: vec![],
            nsf: "=cmd".into(),
            description: "a, \"b\"".into(),
        };
        let c = csv(&[r]);
        assert!(c.contains(",'=cmd,\"a, \"\"b\"\"\"\r\n"), "{c}");
    }
}
