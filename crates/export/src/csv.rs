//! CSV: one row per message, Shadowserver-like columns, RFC 4180 quoting, formula-injection safe.

use crate::record::Record;

/// The header row's columns.
pub(crate) const COLUMNS: [&str; 15] = [
    "timestamp",
    "id",
    "kind",
    "severity",
    "taxonomy",
    "type",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "protocol",
    "asn",
    "nsf",
    "rule",
    "message",
];

/// One cell: a text starting with `=`, `+`, `-`, `@` (or a tab or carriage return) gets a `'`
/// so spreadsheets do not run it as a formula; quoted when it holds `,`, `"`, CR or LF, with
/// quotes doubled (RFC 4180).
pub(crate) fn cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The CSV table of `recs` with its header; lines end with CRLF (RFC 4180).
pub(crate) fn table(recs: &[Record]) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for r in recs {
        let ports = |p: &[u16]| p.first().map(u16::to_string).unwrap_or_default();
        let (tax, ty) = r.class.as_ref().map_or(("", ""), |c| (c.taxonomy, c.kind));
        let row = [
            r.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            r.id.to_string(),
            r.kind.to_string(),
            r.severity.as_str().to_string(),
            tax.to_string(),
            ty.to_string(),
            r.src.first().map(|a| a.to_string()).unwrap_or_default(),
            ports(&r.src_ports),
            r.dst.first().map(|a| a.to_string()).unwrap_or_default(),
            ports(&r.dst_ports),
            r.transport.unwrap_or_default().to_string(),
            r.src_as.map(|n| n.to_string()).unwrap_or_default(),
            r.nsf.clone(),
            r.rule.clone().unwrap_or_default(),
            r.summary.clone(),
        ];
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
    }
}
