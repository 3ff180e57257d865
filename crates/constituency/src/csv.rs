//! The constituency CSV format (docs/constituency.md): a header naming the columns, one row per
//! organisation and contact, fields quoted with `"` when they hold a comma (a quote inside a
//! quoted field is doubled; a field does not span lines), lists separated by spaces or `;`.
//! The whole file is checked before anything is written: the first error fails the import and
//! names file, line, column and the fix.

use std::collections::BTreeMap;
use std::io::BufRead;

use ipnet::IpNet;
use pharos_model::Severity;

use crate::error::Error;
use crate::lines::{Line, Lines, MAX_LINE};
use crate::model::{Contact, Interval, Layer, Organisation, Policy, Suppression};

/// The columns, in the documented order. Only `org` is required.
pub const COLUMNS: &[&str] = &[
    "org",
    "name",
    "country",
    "prefixes",
    "asns",
    "domains",
    "contact_name",
    "contact_role",
    "contact_mail",
    "contact_webhook",
    "interval",
    "kinds",
    "taxonomies",
    "min_severity",
    "suppress_kinds",
    "suppress_sources",
    "suppress_addresses",
    "language",
    "anonymise",
];

/// The policy columns: they need a contact in the same row.
const POLICY: &[&str] = &[
    "interval",
    "kinds",
    "taxonomies",
    "min_severity",
    "suppress_kinds",
    "suppress_sources",
    "suppress_addresses",
    "language",
    "anonymise",
    "contact_name",
    "contact_role",
];

/// Splits one CSV line into `(field, 1-based column of its first character)`.
fn split(line: &str) -> Result<Vec<(String, u64)>, (u64, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    loop {
        let start = i;
        // leading spaces before a quote are allowed
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '"' {
            let mut field = String::new();
            let mut k = j + 1;
            loop {
                match chars.get(k) {
                    None => {
                        return Err((
                            j as u64 + 1,
                            "quoted field is not closed: add the closing '\"' (a field cannot span lines; write a quote inside a field as \"\")".into(),
                        ));
                    }
                    Some('"') if chars.get(k + 1) == Some(&'"') => {
                        field.push('"');
                        k += 2;
                    }
                    Some('"') => {
                        k += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        k += 1;
                    }
                }
            }
            while k < chars.len() && chars[k] == ' ' {
                k += 1;
            }
            out.push((field, start as u64 + 1));
            match chars.get(k) {
                None => return Ok(out),
                Some(',') => i = k + 1,
                Some(_) => {
                    return Err((
                        k as u64 + 1,
                        "text after a closing quote: put the whole field inside the quotes".into(),
                    ));
                }
            }
        } else {
            let mut k = i;
            while k < chars.len() && chars[k] != ',' {
                if chars[k] == '"' {
                    return Err((
                        k as u64 + 1,
                        "quote inside an unquoted field: quote the whole field and double the quote (\"a \"\"b\"\"\")".into(),
                    ));
                }
                k += 1;
            }
            let field: String = chars[i..k].iter().collect();
            out.push((field.trim().to_string(), start as u64 + 1));
            if k >= chars.len() {
                return Ok(out);
            }
            i = k + 1;
        }
    }
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ';' || c.is_whitespace())
        .filter(|x| !x.is_empty())
}

/// Parses an AS number: `64500` or `AS64500`.
pub(crate) fn asn(s: &str) -> Option<u32> {
    let d = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .or_else(|| s.strip_prefix("As"))
        .unwrap_or(s);
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

struct Row<'a> {
    file: &'a str,
    line: u64,
    fields: &'a [(String, u64)],
    index: &'a BTreeMap<&'static str, usize>,
}

impl Row<'_> {
    fn get(&self, col: &str) -> &str {
        self.index
            .get(col)
            .and_then(|&i| self.fields.get(i))
            .map(|(f, _)| f.as_str())
            .unwrap_or("")
    }

    fn err(&self, col: &str, message: String) -> Error {
        let column = self
            .index
            .get(col)
            .and_then(|&i| self.fields.get(i))
            .map(|(_, c)| *c)
            .unwrap_or(1);
        Error::Input {
            file: self.file.into(),
            line: self.line,
            column,
            message: format!("column {col}: {message}"),
        }
    }
}

/// Reads a whole CSV file: the organisations by id, and the number of data rows.
pub(crate) fn read<R: BufRead>(
    reader: R,
    file: &str,
    source: &str,
) -> Result<(BTreeMap<String, Organisation>, u64), Error> {
    let mut lines = Lines::new(reader, MAX_LINE);
    let mut index: Option<BTreeMap<&'static str, usize>> = None;
    let mut orgs: BTreeMap<String, Organisation> = BTreeMap::new();
    let mut rows = 0u64;
    let io = |e: std::io::Error| Error::Io {
        path: file.into(),
        source: e,
    };
    loop {
        let line = match lines.next_line().map_err(io)? {
            None => break,
            Some(Line::TooLong) => {
                return Err(Error::Input {
                    file: file.into(),
                    line: lines.number,
                    column: 1,
                    message: format!(
                        "line longer than {MAX_LINE} bytes: split the organisation over several rows"
                    ),
                });
            }
            Some(Line::Text(t)) => t.to_string(),
        };
        let n = lines.number;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = split(&line).map_err(|(column, message)| Error::Input {
            file: file.into(),
            line: n,
            column,
            message,
        })?;
        let Some(idx) = &index else {
            let mut m = BTreeMap::new();
            for (name, col) in &fields {
                let lower = name
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_ascii_lowercase();
                let Some(known) = COLUMNS.iter().find(|c| **c == lower) else {
                    return Err(Error::Input {
                        file: file.into(),
                        line: n,
                        column: *col,
                        message: format!(
                            "unknown column {name:?} in the header: the columns are {}",
                            COLUMNS.join(",")
                        ),
                    });
                };
                if m.insert(*known, m.len()).is_some() {
                    return Err(Error::Input {
                        file: file.into(),
                        line: n,
                        column: *col,
                        message: format!("column {known} appears twice in the header: keep one"),
                    });
                }
            }
            if !m.contains_key("org") {
                return Err(Error::Input {
                    file: file.into(),
                    line: n,
                    column: 1,
                    message: format!(
                        "the header has no org column: the first line must name the columns, e.g. {}",
                        COLUMNS[..6].join(",")
                    ),
                });
            }
            index = Some(m);
            continue;
        };
        if fields.len() != idx.len() {
            let column = fields
                .get(idx.len())
                .map(|f| f.1)
                .unwrap_or_else(|| line.chars().count() as u64 + 1);
            return Err(Error::Input {
                file: file.into(),
                line: n,
                column,
                message: format!(
                    "{} fields, the header has {}: quote fields that hold a comma (\"a, b\")",
                    fields.len(),
                    idx.len()
                ),
            });
        }
        rows += 1;
        let row = Row {
            file,
            line: n,
            fields: &fields,
            index: idx,
        };
        read_row(&row, source, &mut orgs)?;
    }
    if index.is_none() {
        return Err(Error::Input {
            file: file.into(),
            line: lines.number.max(1),
            column: 1,
            message: format!(
                "no header line: the first line must name the columns, e.g. {}",
                COLUMNS[..6].join(",")
            ),
        });
    }
    Ok((orgs, rows))
}

fn read_row(
    row: &Row<'_>,
    source: &str,
    orgs: &mut BTreeMap<String, Organisation>,
) -> Result<(), Error> {
    let id = row.get("org");
    if id.is_empty() {
        return Err(row.err(
            "org",
            "empty: every row names its organisation's id (e.g. ORG-EXAMPLE)".into(),
        ));
    }
    if id.chars().any(char::is_control) || id.len() > 128 {
        return Err(row.err(
            "org",
            "expected at most 128 characters without control characters".into(),
        ));
    }
    let org = orgs.entry(id.to_string()).or_insert_with(|| Organisation {
        id: id.to_string(),
        name: String::new(),
        country: String::new(),
        layer: Layer::Automatic,
        source: source.to_string(),
        prefixes: Vec::new(),
        asns: Vec::new(),
        domains: Vec::new(),
        contacts: Vec::new(),
    });
    for (col, have) in [("name", &mut org.name), ("country", &mut org.country)] {
        let v = row.get(col);
        if v.is_empty() {
            continue;
        }
        if !have.is_empty() && !have.eq_ignore_ascii_case(v) {
            return Err(row.err(
                col,
                format!("{v:?}, but an earlier row of {id} says {have:?}: give the same value or leave it empty"),
            ));
        }
        *have = v.to_string();
    }
    if !org.country.is_empty() {
        if !(org.country.len() == 2 && org.country.bytes().all(|b| b.is_ascii_alphabetic())) {
            return Err(row.err(
                "country",
                format!(
                    "{:?}: expected an ISO 3166 two-letter code such as DE",
                    org.country
                ),
            ));
        }
        org.country.make_ascii_uppercase();
    }
    for p in list(row.get("prefixes")) {
        let net: IpNet = p.parse().map_err(|_| {
            row.err("prefixes", format!("{p:?} is not a prefix: write 192.0.2.0/24 or 2001:db8::/32, separated by spaces or ';'"))
        })?;
        if !org.prefixes.contains(&net.trunc()) {
            org.prefixes.push(net.trunc());
        }
    }
    for a in list(row.get("asns")) {
        let n = asn(a).ok_or_else(|| {
            row.err(
                "asns",
                format!("{a:?} is not an AS number: write 64500 or AS64500"),
            )
        })?;
        if !org.asns.contains(&n) {
            org.asns.push(n);
        }
    }
    for d in list(row.get("domains")) {
        let d = crate::validate::domain(d).map_err(|e| row.err("domains", e.to_string()))?;
        if !org.domains.contains(&d) {
            org.domains.push(d);
        }
    }
    let mail = row.get("contact_mail");
    let hook = row.get("contact_webhook");
    if mail.is_empty() && hook.is_empty() {
        if let Some(col) = POLICY.iter().find(|c| !row.get(c).is_empty()) {
            return Err(row.err(col, "set, but the row has no contact_mail or contact_webhook: add the contact or leave the column empty".into()));
        }
        return Ok(());
    }
    if !mail.is_empty() {
        crate::validate::mail(mail).map_err(|e| row.err("contact_mail", e.to_string()))?;
    }
    if !hook.is_empty() {
        crate::validate::webhook(hook).map_err(|e| row.err("contact_webhook", e.to_string()))?;
    }
    let mut policy = Policy::default();
    let v = row.get("interval");
    if !v.is_empty() {
        policy.interval = Interval::parse(&v.to_ascii_lowercase()).ok_or_else(|| {
            row.err(
                "interval",
                format!("{v:?}: expected immediate, hourly or daily"),
            )
        })?;
    }
    policy.kinds = list(row.get("kinds")).map(str::to_string).collect();
    policy.taxonomies = list(row.get("taxonomies")).map(str::to_string).collect();
    let v = row.get("min_severity");
    if !v.is_empty() {
        policy.min_severity = Severity::parse(&v.to_ascii_lowercase()).ok_or_else(|| {
            row.err(
                "min_severity",
                format!("{v:?}: expected info, low, middle, high or critical"),
            )
        })?;
    }
    for k in list(row.get("suppress_kinds")) {
        policy.suppress.push(Suppression::Kind(k.to_string()));
    }
    for (col, src) in [("suppress_sources", true), ("suppress_addresses", false)] {
        for p in list(row.get(col)) {
            let net: IpNet = p
                .parse()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    row.err(
                        col,
                        format!(
                            "{p:?} is not an address or prefix: write 192.0.2.0/24 or 2001:db8::1"
                        ),
                    )
                })?;
            policy.suppress.push(if src {
                Suppression::Source(net.trunc())
            } else {
                Suppression::Address(net.trunc())
            });
        }
    }
    let v = row.get("language");
    if !v.is_empty() {
        crate::validate::language(v).map_err(|e| row.err("language", e.to_string()))?;
        policy.language = v.to_string();
    }
    let v = row.get("anonymise");
    if !v.is_empty() {
        policy.anonymise = match v.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            _ => return Err(row.err("anonymise", format!("{v:?}: expected yes or no"))),
        };
    }
    let name = row.get("contact_name");
    let role = row.get("contact_role");
    if name.chars().any(char::is_control) || role.chars().any(char::is_control) {
        return Err(row.err("contact_name", "control characters: remove them".into()));
    }
    org.contacts.push(Contact {
        name: name.to_string(),
        role: if role.is_empty() {
            "abuse".into()
        } else {
            role.to_string()
        },
        mail: (!mail.is_empty()).then(|| mail.to_string()),
        webhook: (!hook.is_empty()).then(|| hook.to_string()),
        policy,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BTreeMap<String, Organisation>, Error> {
        read(text.as_bytes(), "c.csv", "csv").map(|r| r.0)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn rows_of_one_org_merge_and_policies_are_read() {
        let o = parse(
            "# comment\norg,name,country,prefixes,asns,domains,contact_mail,contact_webhook,interval,min_severity,kinds,language,anonymise,suppress_sources\n\
             ORG-A,\"Acme, Inc.\",de,192.0.2.0/24;2001:db8::/32,AS64500 64501,acme.example,abuse@acme.example,,immediate,high,ddos scan,de,no,198.51.100.0/24\n\
             ORG-A,,,10.0.0.0/8,,,,https://soc.acme.example/hook,daily,,,,,\n",
        )
        .unwrap();
        let a = &o["ORG-A"];
        assert_eq!(a.name, "Acme, Inc.");
        assert_eq!(a.country, "DE");
        assert_eq!(a.prefixes.len(), 3);
        assert_eq!(a.asns, vec![64500, 64501]);
        assert_eq!(a.domains, vec!["acme.example".to_string()]);
        assert_eq!(a.contacts.len(), 2);
        let p = &a.contacts[0].policy;
        assert_eq!(p.interval, Interval::Immediate);
        assert_eq!(p.min_severity, Severity::High);
        assert_eq!(p.kinds, vec!["ddos".to_string(), "scan".to_string()]);
        assert_eq!(p.language, "de");
        assert!(!p.anonymise);
        assert_eq!(
            p.suppress,
            vec![Suppression::Source("198.51.100.0/24".parse().unwrap())]
        );
        assert_eq!(
            a.contacts[1].webhook.as_deref(),
            Some("https://soc.acme.example/hook")
        );
        assert_eq!(a.contacts[1].policy.interval, Interval::Daily);
    }

    #[test]
    fn quoted_fields_with_doubled_quotes() {
        let o = parse("org,name\nX,\"The \"\"Best\"\" Co\"\n").unwrap();
        assert_eq!(o["X"].name, "The \"Best\" Co");
    }

    #[test]
    fn bad_prefix_names_file_line_column_and_fix() {
        let e = err("org,prefixes\nA,192.0.2.0/24\nB,192.0.2.0/33\n");
        assert!(e.starts_with("c.csv:3:3: column prefixes:"), "{e}");
        assert!(e.contains("write 192.0.2.0/24"), "{e}");
    }

    #[test]
    fn unknown_column_and_missing_org_column_are_refused() {
        let e = err("org,nmae\n");
        assert!(
            e.starts_with("c.csv:1:5:")
                && e.contains("unknown column")
                && e.contains("contact_mail"),
            "{e}"
        );
        let e = err("name,country\nX,DE\n");
        assert!(e.contains("no org column"), "{e}");
        assert!(err("").contains("no header line"));
    }

    #[test]
    fn field_count_quotes_and_values_are_checked() {
        assert!(err("org,name\nA,b,c\n").contains("c.csv:2:5: 3 fields, the header has 2"));
        assert!(err("org,name\nA,\"open\n").contains("c.csv:2:3: quoted field is not closed"));
        assert!(err("org,name\nA,a\"b\n").contains("c.csv:2:4: quote inside an unquoted field"));
        assert!(
            err("org,contact_mail,interval\nA,a@b.example,weekly\n")
                .contains("expected immediate, hourly or daily")
        );
        assert!(
            err("org,contact_mail,min_severity\nA,a@b.example,urgent\n")
                .contains("expected info, low")
        );
        assert!(err("org,contact_mail\nA,nobody\n").contains("expected a mail address"));
        assert!(err("org,interval\nA,daily\n").contains("has no contact_mail or contact_webhook"));
        assert!(err("org,asns\nA,AS-FOO\n").contains("write 64500 or AS64500"));
        assert!(err("org,name\nA,x\nA,y\n").contains("an earlier row of A says \"x\""));
        assert!(err("org,contact_webhook\nA,ftp://x\n").contains("http(s) URL"));
        assert!(err("org,contact_mail,language\nA,a@b.example,english!\n").contains("BCP 47"));
    }

    #[test]
    fn over_long_line_fails_the_import_with_its_line_number() {
        let long = "x".repeat(MAX_LINE + 10);
        let e = err(&format!("org,name\nA,{long}\n"));
        assert!(
            e.starts_with("c.csv:2:1: line longer than 65536 bytes"),
            "{e}"
        );
    }

    proptest::proptest! {
        #[test]
        fn csv_reader_never_panics_on_any_bytes(data: Vec<u8>) {
            let mut input = b"org,name,country,prefixes,asns,domains,contact_mail,interval,min_severity\n".to_vec();
            input.extend_from_slice(&data);
            let _ = read(&input[..], "p.csv", "csv");
            let _ = read(&data[..], "p.csv", "csv");
        }

        #[test]
        fn csv_reader_never_panics_on_csv_like_text(s in "([A-Za-z0-9.,;:/@\" #-]{0,30}\n){0,20}") {
            let input = format!("org,name,country,prefixes,asns,domains,contact_mail,contact_webhook,interval,min_severity,suppress_sources,language,anonymise\n{s}");
            let _ = read(input.as_bytes(), "p.csv", "csv");
        }
    }
}
