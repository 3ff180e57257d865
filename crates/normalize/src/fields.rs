//! Tokenisers shared by the vendor modules: `key=value` lines with quoted values, `key:"value";`
//! lists, CSV with quotes, and CEF/LEEF headers with their extensions.
//!
//! Contract: every tokeniser borrows from the input (no copies), never panics on any input, and
//! stops after [`MAX_FIELDS`] fields, so one line costs a bounded amount of memory. Escapes inside
//! values are left as they are (a value is a slice of the line).

/// Most fields any tokeniser returns for one line.
pub const MAX_FIELDS: usize = 256;

/// A `key=value` line: the pairs in order, values without their quotes.
#[derive(Debug, Default)]
pub struct Kv<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']' | b'/' | b':' | b'@')
}

/// Index of the closing `quote` at or after `from`, skipping backslash escapes.
fn closing_quote(b: &[u8], from: usize, quote: u8) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

impl<'a> Kv<'a> {
    /// Tokenises `key=value key2="quoted value"` separated by spaces (and commas or `|`, as
    /// some vendors use). Words without `=` are skipped.
    pub fn parse(s: &'a str) -> Self {
        let b = s.as_bytes();
        let mut pairs = Vec::with_capacity(48);
        let mut i = 0;
        while i < b.len() && pairs.len() < MAX_FIELDS {
            // skip separators
            while i < b.len() && matches!(b[i], b' ' | b'\t' | b',' | b'|' | b';') {
                i += 1;
            }
            let start = i;
            while i < b.len() && is_key_byte(b[i]) {
                i += 1;
            }
            if i >= b.len() || b[i] != b'=' || i == start {
                // not a key: skip the rest of this word (quoted parts included)
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'|') {
                    if b[i] == b'"' {
                        i = closing_quote(b, i + 1, b'"').map_or(b.len(), |q| q + 1);
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            let key = s.get(start..i).unwrap_or("");
            i += 1; // '='
            let value;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vstart = i + 1;
                let end = closing_quote(b, vstart, q).unwrap_or(b.len());
                value = s.get(vstart..end).unwrap_or("");
                i = end + 1;
            } else {
                let vstart = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'|') {
                    i += 1;
                }
                value = s.get(vstart..i).unwrap_or("");
            }
            pairs.push((key, value));
        }
        Self { pairs }
    }

    /// Tokenises `k=v<sep>k=v` where values may hold spaces (OPSEC LEA exports).
    pub fn parse_with_separator(s: &'a str, sep: char) -> Self {
        let pairs = s
            .split(sep)
            .take(MAX_FIELDS)
            .filter_map(|part| part.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        Self { pairs }
    }

    /// The first value of `key` (case-sensitive), even when empty.
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The first non-empty value of `key` that is not `N/A`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        crate::build::present(self.raw(key))
    }

    /// The first key of `keys` that has a value.
    pub fn any(&self, keys: &[&str]) -> Option<&'a str> {
        keys.iter().find_map(|k| self.get(k))
    }
}

/// `key:"value";` pairs (Check Point syslog and LEA exports), values without quotes.
pub fn colon_pairs(s: &str) -> Kv<'_> {
    let b = s.as_bytes();
    let mut pairs = Vec::with_capacity(48);
    let mut i = 0;
    while i < b.len() && pairs.len() < MAX_FIELDS {
        while i < b.len() && matches!(b[i], b' ' | b';' | b'[' | b']' | b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && (is_key_byte(b[i]) && b[i] != b':') {
            i += 1;
        }
        let key_end = i;
        // `ike::"..."` has a doubled colon; tolerate one or two.
        let mut colons = 0;
        while i < b.len() && b[i] == b':' && colons < 2 {
            i += 1;
            colons += 1;
        }
        if colons == 0 || key_end == start {
            while i < b.len() && b[i] != b';' {
                if b[i] == b'"' {
                    i = closing_quote(b, i + 1, b'"').map_or(b.len(), |q| q + 1);
                } else {
                    i += 1;
                }
            }
            continue;
        }
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let key = s.get(start..key_end).unwrap_or("");
        let value;
        if i < b.len() && b[i] == b'"' {
            let end = closing_quote(b, i + 1, b'"').unwrap_or(b.len());
            value = s.get(i + 1..end).unwrap_or("");
            i = end + 1;
        } else {
            let vstart = i;
            while i < b.len() && b[i] != b';' && b[i] != b']' {
                i += 1;
            }
            value = s.get(vstart..i).unwrap_or("").trim();
        }
        pairs.push((key, value));
    }
    Kv { pairs }
}

/// Splits a CSV line into `out` (cleared first); a field in double quotes may hold commas, its
/// quotes are removed (doubled quotes inside stay doubled).
pub fn split_csv<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    out.clear();
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        if out.len() >= MAX_FIELDS {
            return;
        }
        if i < b.len() && b[i] == b'"' {
            // quoted field: find the quote that is not doubled
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == b'"' {
                    if b.get(j + 1) == Some(&b'"') {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            out.push(s.get(i + 1..j.min(b.len())).unwrap_or(""));
            i = j + 1;
            // skip to the next comma
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            out.push(s.get(start..i).unwrap_or(""));
        }
        if i >= b.len() {
            return;
        }
        i += 1; // ','
    }
}

/// A CEF record: the seven header fields and the extension pairs.
#[derive(Debug)]
pub struct Cef<'a> {
    pub vendor: &'a str,
    pub product: &'a str,
    pub version: &'a str,
    pub signature_id: &'a str,
    pub name: &'a str,
    pub severity: &'a str,
    pub ext: Kv<'a>,
}

/// Splits `n` `|`-separated header fields (honouring `\|`) off `s`; returns them and the rest.
fn pipe_fields(s: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    let mut i = 0;
    while i < b.len() && out.len() < n {
        match b[i] {
            b'\\' => i += 2,
            b'|' => {
                out.push(s.get(start..i)?);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if out.len() < n {
        return None;
    }
    Some((out, s.get(start.min(s.len())..)?))
}

/// Finds `prefix` (`CEF:` or `LEEF:`) at the start of `s` or after a space (a syslog header).
pub fn find_prefix<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if let Some(rest) = s.strip_prefix(prefix) {
        return Some(rest);
    }
    let at = memchr::memmem::find(s.as_bytes(), prefix.as_bytes())?;
    if at > 0 && !matches!(s.as_bytes().get(at - 1), Some(b' ' | b':' | b'\t')) {
        return None;
    }
    s.get(at + prefix.len()..)
}

/// Parses a CEF extension: `k=v with spaces k2=v2`; a value runs up to the space before the next
/// key. `\=` inside values is not a separator.
pub fn cef_extension(s: &str) -> Kv<'_> {
    let b = s.as_bytes();
    // (key_start, eq) of every key
    let mut keys: Vec<(usize, usize)> = Vec::with_capacity(32);
    let mut i = 0;
    while i < b.len() && keys.len() < MAX_FIELDS {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'=' {
            let mut k = i;
            while k > 0
                && (b[k - 1].is_ascii_alphanumeric()
                    || matches!(b[k - 1], b'_' | b'.' | b'-' | b'[' | b']'))
            {
                k -= 1;
            }
            if k < i && (k == 0 || b[k - 1] == b' ' || b[k - 1] == b'\t') {
                keys.push((k, i));
            }
        }
        i += 1;
    }
    let mut pairs = Vec::with_capacity(keys.len());
    for (n, &(k, eq)) in keys.iter().enumerate() {
        let end = keys.get(n + 1).map_or(b.len(), |&(next, _)| next);
        let key = s.get(k..eq).unwrap_or("");
        let value = s.get(eq + 1..end.max(eq + 1)).unwrap_or("").trim_end();
        pairs.push((key, value));
    }
    Kv { pairs }
}

/// Parses a CEF record (optionally after a syslog header).
pub fn parse_cef(s: &str) -> Option<Cef<'_>> {
    let rest = find_prefix(s, "CEF:")?;
    let (h, ext) = pipe_fields(rest, 7)?;
    Some(Cef {
        vendor: h.get(1)?,
        product: h.get(2)?,
        version: h.get(3)?,
        signature_id: h.get(4)?,
        name: h.get(5)?,
        severity: h.get(6)?,
        ext: cef_extension(ext),
    })
}

/// A LEEF record: header fields and attributes.
#[derive(Debug)]
pub struct Leef<'a> {
    pub vendor: &'a str,
    pub product: &'a str,
    pub version: &'a str,
    pub event_id: &'a str,
    pub attrs: Kv<'a>,
}

/// Parses a LEEF 1.0 or 2.0 record (optionally after a syslog header).
pub fn parse_leef(s: &str) -> Option<Leef<'_>> {
    let rest = find_prefix(s, "LEEF:")?;
    let (h, mut attrs) = pipe_fields(rest, 5)?;
    let mut delim: Option<u8> = Some(b'\t');
    if h.first().is_some_and(|v| v.starts_with('2')) {
        // LEEF 2.0: an optional delimiter field: one char, or x09 / 0x09 / ^ etc.
        if let Some((d, after)) = attrs.split_once('|')
            && d.len() <= 4
            && !d.contains('=')
        {
            delim = match d {
                "" => Some(b'\t'),
                _ if d.len() == 1 => d.bytes().next(),
                _ => {
                    u8::from_str_radix(d.trim_start_matches("0x").trim_start_matches('x'), 16).ok()
                }
            };
            attrs = after;
        }
    }
    let attrs_kv = match delim {
        Some(d) if attrs.as_bytes().contains(&d) && d != b' ' => delimited_pairs(attrs, d),
        _ => cef_extension(attrs),
    };
    Some(Leef {
        vendor: h.get(1)?,
        product: h.get(2)?,
        version: h.get(3)?,
        event_id: h.get(4)?,
        attrs: attrs_kv,
    })
}

fn delimited_pairs(s: &str, d: u8) -> Kv<'_> {
    let mut pairs = Vec::with_capacity(32);
    for part in s.split(d as char) {
        if pairs.len() >= MAX_FIELDS {
            break;
        }
        if let Some((k, v)) = part.split_once('=') {
            pairs.push((k.trim(), v));
        }
    }
    Kv { pairs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_handles_quotes_empty_values_and_garbage() {
        let kv =
            Kv::parse(r#"junk date=2016-06-15 vd="root" msg="a \"b\" c" OUT= SRC=1.2.3.4 flag"#);
        assert_eq!(kv.get("date"), Some("2016-06-15"));
        assert_eq!(kv.get("vd"), Some("root"));
        assert_eq!(kv.get("msg"), Some(r#"a \"b\" c"#));
        assert_eq!(kv.raw("OUT"), Some(""));
        assert_eq!(kv.get("SRC"), Some("1.2.3.4"));
    }

    #[test]
    fn csv_handles_quoted_commas() {
        let mut v = Vec::new();
        split_csv(r#"a,"b,c",,d"#, &mut v);
        assert_eq!(v, vec!["a", "b,c", "", "d"]);
        split_csv("", &mut v);
        assert_eq!(v, vec![""]);
        split_csv(r#"x,"unterminated"#, &mut v);
        assert_eq!(v, vec!["x", "unterminated"]);
    }

    #[test]
    fn cef_header_and_extension_with_spaces() {
        let c = parse_cef("Oct 26 host CEF:0|Ubiquiti|UniFi Network|9.4|201|Threat \\| Blocked|7|proto=TCP src=10.0.0.1 msg=two words here dpt=443").unwrap();
        assert_eq!(c.vendor, "Ubiquiti");
        assert_eq!(c.name, "Threat \\| Blocked");
        assert_eq!(c.ext.get("msg"), Some("two words here"));
        assert_eq!(c.ext.get("dpt"), Some("443"));
    }

    #[test]
    fn leef_tab_and_caret_delimiters() {
        let l = parse_leef("LEEF:1.0|IBM|QRadar|1|login|\tsrc=1.2.3.4\tusrName=bob").unwrap();
        assert_eq!(l.attrs.get("usrName"), Some("bob"));
        let l = parse_leef("LEEF:2.0|V|P|1|id|^|src=1.2.3.4^dst=5.6.7.8").unwrap();
        assert_eq!(l.attrs.get("dst"), Some("5.6.7.8"));
    }

    #[test]
    fn colon_pairs_read_check_point_lists() {
        let kv =
            colon_pairs(r#"[action:"Drop"; ifdir:"inbound"; ike::"Main Mode; x"; src:"1.2.3.4"]"#);
        assert_eq!(kv.get("action"), Some("Drop"));
        assert_eq!(kv.get("ike"), Some("Main Mode; x"));
        assert_eq!(kv.get("src"), Some("1.2.3.4"));
    }
}
