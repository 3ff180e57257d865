//! Tokenisers shared by the vendor modules: `key=value` lines with quoted values, `key:"value";`
//! lists, CSV with quotes, and CEF/LEEF headers with their extensions.
//!
//! Contract: every tokeniser borrows from the input (no copies), never panics on any input, and
//! stops after [`MAX_FIELDS`] fields, so one line costs a bounded amount of memory. Escapes inside
//! values are left as they are (a value is a slice of the line).

use std::cell::Cell;

/// Most fields any tokeniser returns for one line.
pub const MAX_FIELDS: usize = 256;

/// A `key=value` line: the pairs in order, values without their quotes.
///
/// Lookups go through a small hash index over the keys (built once per line when there are more
/// than [`LINEAR_MAX`] pairs), so a vendor module reading dozens of keys does not rescan the pairs.
#[derive(Debug, Default)]
pub struct Kv<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    /// Open addressing, power-of-two size: 1 + index of the first pair with that key; 0 = free.
    /// Empty when the pairs are few enough to scan.
    slots: Vec<u16>,
}

thread_local! {
    /// The pair and index buffers of the last [`Kv`] dropped on this thread, reused by the next
    /// one: in the steady state a line allocates nothing for its pairs (and the allocator is
    /// not asked for a large block per line).
    static SPARE_PAIRS: Cell<Vec<(&'static str, &'static str)>> = const { Cell::new(Vec::new()) };
    static SPARE_SLOTS: Cell<Vec<u16>> = const { Cell::new(Vec::new()) };
    /// The same for [`Fields`].
    static SPARE_FIELDS: Cell<Vec<&'static str>> = const { Cell::new(Vec::new()) };
}

/// An empty vector that reuses `v`'s allocation (the standard library collects a vector's
/// `into_iter` in place when the element layouts match, as they do for the borrowed pairs
/// here, which differ only in lifetime).
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Largest buffer kept for reuse (pairs or fields), so one huge line does not pin memory.
const SPARE_MAX: usize = 2 * MAX_FIELDS;

impl Drop for Kv<'_> {
    fn drop(&mut self) {
        let pairs = std::mem::take(&mut self.pairs);
        if pairs.capacity() <= SPARE_MAX {
            SPARE_PAIRS.set(recycle(pairs));
        }
        let mut slots = std::mem::take(&mut self.slots);
        if slots.capacity() > 0 && slots.capacity() <= 2 * SPARE_MAX {
            slots.clear();
            SPARE_SLOTS.set(slots);
        }
    }
}

/// An empty pair vector with room for a typical line, reusing the last one dropped.
fn pair_buffer<'a>() -> Vec<(&'a str, &'a str)> {
    let mut v = recycle(SPARE_PAIRS.take());
    v.reserve(48);
    v
}

/// CSV fields of one line ([`split_csv`] fills it); derefs to the fields.
pub struct Fields<'a>(Vec<&'a str>);

impl<'a> Fields<'a> {
    /// Empty, with room for `n` fields, reusing the buffer of the last one dropped.
    pub fn with_capacity(n: usize) -> Self {
        let mut v = recycle(SPARE_FIELDS.take());
        v.reserve(n);
        Self(v)
    }
}

impl<'a> std::ops::Deref for Fields<'a> {
    type Target = Vec<&'a str>;
    fn deref(&self) -> &Vec<&'a str> {
        &self.0
    }
}

impl<'a> std::ops::DerefMut for Fields<'a> {
    fn deref_mut(&mut self) -> &mut Vec<&'a str> {
        &mut self.0
    }
}

impl Drop for Fields<'_> {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() <= SPARE_MAX {
            SPARE_FIELDS.set(recycle(v));
        }
    }
}

/// Up to this many pairs, lookups scan the pairs instead of building the index.
const LINEAR_MAX: usize = 8;

/// Byte classes for the `key=value` tokeniser.
const KEY: u8 = 1;
/// Separators skipped before a key: space, tab, `,`, `|`, `;`.
const SEP: u8 = 2;
/// Bytes that end an unquoted value or a skipped word: space, tab, `|`.
const END: u8 = 4;
/// `"`, which opens a quoted part inside a skipped word.
const QUOTE: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric()
            || matches!(c, b'_' | b'-' | b'.' | b'[' | b']' | b'/' | b':' | b'@')
        {
            t[b] |= KEY;
        }
        if matches!(c, b' ' | b'\t' | b',' | b'|' | b';') {
            t[b] |= SEP;
        }
        if matches!(c, b' ' | b'\t' | b'|') {
            t[b] |= END;
        }
        if c == b'"' {
            t[b] |= QUOTE;
        }
        b += 1;
    }
    t
};

fn is_key_byte(b: u8) -> bool {
    CLASS[b as usize] & KEY != 0
}

/// Index of the closing `quote` at or after `from`, skipping backslash escapes.
fn closing_quote(b: &[u8], from: usize, quote: u8) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        i = find_any(b, i, &[quote, b'\\']);
        match b.get(i) {
            Some(&c) if c == quote => return Some(i),
            Some(_) => i += 2,
            None => return None,
        }
    }
    None
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// How far [`Kv::parse`] looks for the `=` after a key before reading the key byte by byte
/// (keys are short; the bound keeps a line without `=` linear).
const KEY_WINDOW: usize = 64;

/// The high bit of each byte of `w` that equals `c` (exact for every byte).
fn eq_mask(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    !(((x & (ONES * 0x7f)) + ONES * 0x7f) | x) & (ONES * 0x80)
}

/// Index of the first byte of `set` at or after `i` (`b.len()` if none), 8 bytes at a time:
/// fields are short, so this beats a byte loop (one branch per word) and `memchr`'s setup.
fn find_any(b: &[u8], mut i: usize, set: &[u8]) -> usize {
    while let Some(Ok(w)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let w = u64::from_le_bytes(w);
        let m = set.iter().fold(0, |m, &c| m | eq_mask(w, c));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(c) = b.get(i) {
        if set.contains(c) {
            break;
        }
        i += 1;
    }
    i.min(b.len())
}

/// Index of the first byte at or after `i` whose class has a bit of `class`, or `b.len()`.
fn skip_until(b: &[u8], mut i: usize, class: u8) -> usize {
    while let Some(&c) = b.get(i) {
        if CLASS[c as usize] & class != 0 {
            break;
        }
        i += 1;
    }
    i
}

/// Index of the first byte at or after `i` whose class has no bit of `class`, or `b.len()`.
fn skip_while(b: &[u8], mut i: usize, class: u8) -> usize {
    while let Some(&c) = b.get(i) {
        if CLASS[c as usize] & class == 0 {
            break;
        }
        i += 1;
    }
    i
}

/// `N` bytes of `k` from `at` as a little-endian number (0 when out of range).
fn read<const N: usize>(k: &[u8], at: usize) -> u64 {
    let Some(Ok(w)) = k.get(at..at + N).map(<[u8; N]>::try_from) else {
        return 0;
    };
    w.iter().rev().fold(0, |h, &c| h << 8 | u64::from(c))
}

/// `a == b` for byte strings, without a `memcmp` call for short ones (keys, needles).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        // two overlapping reads cover every byte
        8..=16 => read::<8>(a, 0) == read::<8>(b, 0) && read::<8>(a, n - 8) == read::<8>(b, n - 8),
        4..=7 => read::<4>(a, 0) == read::<4>(b, 0) && read::<4>(a, n - 4) == read::<4>(b, n - 4),
        1..=3 => a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last(),
        0 => true,
        _ => a == b,
    }
}

/// Hash of a key for the index: its length and its first and last bytes (keys are short).
fn key_hash(k: &[u8]) -> usize {
    let n = k.len();
    let (a, b) = match n {
        8.. => (read::<8>(k, 0), read::<8>(k, n - 8)),
        4..=7 => (read::<4>(k, 0), read::<4>(k, n - 4)),
        1..=3 => (
            read::<1>(k, 0) | read::<1>(k, n / 2) << 8,
            read::<1>(k, n - 1),
        ),
        0 => (0, 0),
    };
    let h = (a ^ b.rotate_left(29) ^ (n as u64) << 56).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as usize
}

impl<'a> Kv<'a> {
    /// The pairs, indexed when there are many.
    fn from_pairs(pairs: Vec<(&'a str, &'a str)>) -> Self {
        if pairs.len() <= LINEAR_MAX {
            return Self {
                pairs,
                slots: Vec::new(),
            };
        }
        // at most MAX_FIELDS pairs: the index fits in u16 and is at most half full
        let size = (pairs.len() * 2).next_power_of_two();
        let mask = size - 1;
        let mut slots = SPARE_SLOTS.take();
        slots.clear();
        slots.resize(size, 0);
        for (n, (k, _)) in pairs.iter().enumerate() {
            let mut at = key_hash(k.as_bytes()) & mask;
            loop {
                match slots[at] {
                    0 => {
                        slots[at] = u16::try_from(n + 1).unwrap_or(u16::MAX);
                        break;
                    }
                    // keep the first pair of a repeated key
                    s if pairs
                        .get(usize::from(s) - 1)
                        .is_some_and(|(k2, _)| same(k2.as_bytes(), k.as_bytes())) =>
                    {
                        break;
                    }
                    _ => at = (at + 1) & mask,
                }
            }
        }
        Self { pairs, slots }
    }

    /// Tokenises `key=value key2="quoted value"` separated by spaces (and commas or `|`, as
    /// some vendors use). Words without `=` are skipped.
    pub fn parse(s: &'a str) -> Self {
        let b = s.as_bytes();
        let mut pairs = pair_buffer();
        let mut i = 0;
        while i < b.len() && pairs.len() < MAX_FIELDS {
            // skip separators
            i = skip_while(b, i, SEP);
            let start = i;
            // the key: usually all key bytes up to a near `=` (checked without a branch per
            // byte), else the run of key bytes, which then does not end at `=`
            let near = b.get(..b.len().min(start + KEY_WINDOW)).unwrap_or(b);
            let eq = find_any(near, start, b"=");
            i = match near.get(start..eq) {
                Some(k)
                    if eq < near.len()
                        && k.iter().fold(KEY, |all, &c| all & CLASS[c as usize]) & KEY != 0 =>
                {
                    eq
                }
                _ => skip_while(b, i, KEY),
            };
            if i >= b.len() || b[i] != b'=' || i == start {
                // not a key: skip the rest of this word (quoted parts included)
                while i < b.len() {
                    i = skip_until(b, i, END | QUOTE);
                    if i < b.len() && b[i] == b'"' {
                        i = closing_quote(b, i + 1, b'"').map_or(b.len(), |q| q + 1);
                    } else {
                        break;
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
                i = find_any(b, i, b" \t|");
                value = s.get(vstart..i).unwrap_or("");
            }
            pairs.push((key, value));
        }
        Self::from_pairs(pairs)
    }

    /// Tokenises `k=v<sep>k=v` where values may hold spaces (OPSEC LEA exports).
    pub fn parse_with_separator(s: &'a str, sep: char) -> Self {
        let pairs = s
            .split(sep)
            .take(MAX_FIELDS)
            .filter_map(|part| part.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        Self::from_pairs(pairs)
    }

    /// The first value of `key` (case-sensitive), even when empty.
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        if self.slots.is_empty() {
            return self
                .pairs
                .iter()
                .find(|(k, _)| same(k.as_bytes(), key.as_bytes()))
                .map(|(_, v)| *v);
        }
        let mask = self.slots.len() - 1;
        let mut at = key_hash(key.as_bytes()) & mask;
        // the index is at most half full, so a free slot ends every probe sequence
        for _ in 0..self.slots.len() {
            let (k, v) = self
                .pairs
                .get(usize::from(*self.slots.get(at)?).checked_sub(1)?)?;
            if same(k.as_bytes(), key.as_bytes()) {
                return Some(v);
            }
            at = (at + 1) & mask;
        }
        None
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
    let mut pairs = pair_buffer();
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
    Kv::from_pairs(pairs)
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
            i = find_any(b, i, b",");
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
    Kv::from_pairs(pairs)
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
    Kv::from_pairs(pairs)
}

/// Tokenises `key=value,key2="quoted, value",key3=v w` (the comma-separated form FortiAnalyzer
/// and FortiMail forward): a pair ends at the next comma outside quotes, so unquoted values
/// may hold spaces; words without `=` are skipped.
pub(crate) fn kv_commas(s: &str) -> Kv<'_> {
    let b = s.as_bytes();
    let mut pairs = pair_buffer();
    let mut i = 0;
    while i < b.len() && pairs.len() < MAX_FIELDS {
        while i < b.len() && matches!(b[i], b',' | b' ' | b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && is_key_byte(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' || i == start {
            // not a key: skip to the next comma
            i = find_any(b, i, b",");
            continue;
        }
        let key = s.get(start..i).unwrap_or("");
        i += 1; // '='
        let value;
        if i < b.len() && b[i] == b'"' {
            let end = closing_quote(b, i + 1, b'"').unwrap_or(b.len());
            value = s.get(i + 1..end).unwrap_or("");
            i = find_any(b, end.saturating_add(1).min(b.len()), b",");
        } else {
            let vstart = i;
            i = find_any(b, i, b",");
            value = s.get(vstart..i).unwrap_or("").trim_end();
        }
        pairs.push((key, value));
    }
    Kv::from_pairs(pairs)
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

    /// The plain loop `closing_quote` must agree with.
    fn closing_quote_reference(b: &[u8], from: usize, quote: u8) -> Option<usize> {
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

    #[test]
    fn closing_quote_handles_escapes_at_the_end() {
        for s in [
            r#"ab\"#,
            r#"\"#,
            r#"a\""#,
            r#"\\""#,
            "",
            r#"""#,
            "0123456789abcdef\\",
        ] {
            for from in 0..=s.len() + 2 {
                assert_eq!(
                    closing_quote(s.as_bytes(), from, b'"'),
                    closing_quote_reference(s.as_bytes(), from, b'"'),
                    "{s:?} from {from}"
                );
            }
        }
        let kv = Kv::parse(r#"a="x\ b=1"#);
        assert_eq!(kv.raw("a"), Some(r#"x\ b=1"#));
    }

    /// The byte-at-a-time `key=value` tokeniser `Kv::parse` must agree with.
    fn kv_reference(s: &str) -> Vec<(&str, &str)> {
        let b = s.as_bytes();
        let mut pairs = Vec::new();
        let mut i = 0;
        while i < b.len() && pairs.len() < MAX_FIELDS {
            while i < b.len() && matches!(b[i], b' ' | b'\t' | b',' | b'|' | b';') {
                i += 1;
            }
            let start = i;
            while i < b.len() && is_key_byte(b[i]) {
                i += 1;
            }
            if i >= b.len() || b[i] != b'=' || i == start {
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'|') {
                    if b[i] == b'"' {
                        i = closing_quote_reference(b, i + 1, b'"').map_or(b.len(), |q| q + 1);
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            let key = s.get(start..i).unwrap_or("");
            i += 1;
            let value;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let end = closing_quote_reference(b, i + 1, q).unwrap_or(b.len());
                value = s.get(i + 1..end).unwrap_or("");
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
        pairs
    }

    proptest::proptest! {
        #[test]
        fn kv_parse_agrees_with_the_byte_loop(s in "([a-z_]{0,12}|[=\"' \t|,;\\\\:@é]){0,80}") {
            let kv = Kv::parse(&s);
            proptest::prop_assert_eq!(&kv.pairs, &kv_reference(&s));
        }

        #[test]
        fn closing_quote_agrees_with_the_plain_loop(s in "[a\\\\\"' ]{0,64}", from in 0usize..70) {
            for q in [b'"', b'\''] {
                proptest::prop_assert_eq!(
                    closing_quote(s.as_bytes(), from, q),
                    closing_quote_reference(s.as_bytes(), from, q)
                );
            }
        }

        #[test]
        fn kv_lookups_find_the_first_pair_of_each_key(keys in proptest::collection::vec("[a-e]{1,3}", 0..80)) {
            let line: String = keys.iter().enumerate().map(|(n, k)| format!("{k}={n} ")).collect();
            let kv = Kv::parse(&line);
            for (n, k) in keys.iter().enumerate() {
                let first = keys.iter().position(|x| x == k).unwrap_or(n);
                let expected = first.to_string();
                proptest::prop_assert_eq!(kv.raw(k), Some(expected.as_str()));
            }
            proptest::prop_assert_eq!(kv.raw("zz"), None);
        }
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
