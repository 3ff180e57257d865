//! Text from the network is data: these helpers make it safe for a terminal, a log line or a
//! table, and refuse it where it would become an identifier.
//!
//! Contract: [`printable`] returns a string with no control character (C0, DEL, C1), no
//! bidirectional override and no other invisible format character that could hide or reorder
//! text; each is written as a visible escape (`\x1b`, `\u{202e}`), and a backslash as `\\`, so
//! the output reads back unambiguously. Ordinary text, including non-ASCII letters, is unchanged
//! and borrowed. [`check_identifier`] refuses names (NSF names, token names, subscription names)
//! that hold any such character, or that are empty or longer than [`MAX_IDENTIFIER`] bytes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The longest identifier (NSF name, token name, subscription name) accepted, in bytes.
pub const MAX_IDENTIFIER: usize = 255;

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls, DEL, and the Unicode
/// format characters that reorder or hide text (bidi overrides and isolates, zero-width marks,
/// the byte order mark, line and paragraph separators).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}')
}

/// `s` with every unsafe character (see [`is_unsafe_char`]) and every backslash escaped:
/// `\t`, `\n`, `\r` as themselves, other ASCII controls as `\xNN`, the rest as `\u{NNNN}`.
/// Borrowed when nothing needed escaping.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_unsafe_char(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`printable`] for bytes that may not be UTF-8: invalid bytes are written as `\xNN`.
pub fn printable_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => printable(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                for c in chunk.valid().chars() {
                    push_escaped(&mut out, c);
                }
                for byte in chunk.invalid() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 && is_unsafe_char(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_unsafe_char(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Serialised JSON made safe for a terminal: every unsafe character that JSON allows raw inside
/// strings (DEL, C1 controls, bidi and invisible format characters; serde_json already escapes
/// U+0000..U+001F) is written as a `\uXXXX` escape. The result is the same JSON value.
/// Outside strings JSON text is ASCII without controls, so only string contents change.
pub fn json_safe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unsafe_char(c) {
            // every unsafe character is in the Basic Multilingual Plane: one escape, no pair
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The name is empty (or only white space).
    #[error("is empty; give a name")]
    Empty,
    /// The name is longer than [`MAX_IDENTIFIER`] bytes.
    #[error("is {0} bytes long; at most {MAX_IDENTIFIER} are allowed")]
    TooLong(usize),
    /// The name holds a control or invisible format character.
    #[error(
        "holds the control or invisible character {0} at byte {1}; names must be printable text"
    )]
    Control(String, usize),
}

/// Checks a name that people will read in tables and logs and type back on a command line.
pub fn check_identifier(s: &str) -> Result<(), IdentifierError> {
    if s.trim().is_empty() {
        return Err(IdentifierError::Empty);
    }
    if s.len() > MAX_IDENTIFIER {
        return Err(IdentifierError::TooLong(s.len()));
    }
    if let Some((i, c)) = s.char_indices().find(|&(_, c)| is_unsafe_char(c)) {
        let mut shown = String::new();
        push_escaped(&mut shown, c);
        return Err(IdentifierError::Control(shown, i));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in ["", "Failed password for root", "Zürich – 東京", "a/b:c"] {
            assert!(matches!(printable(s), Cow::Borrowed(t) if t == s));
        }
    }

    #[test]
    fn escape_sequences_and_controls_become_visible() {
        let s = "x\u{1b}[2J\u{1b}]0;PWNED\u{7}evil\0\u{7f}\u{9b}1m\r\n\t";
        let p = printable(s);
        assert_eq!(
            p,
            "x\\x1b[2J\\x1b]0;PWNED\\x07evil\\x00\\x7f\\u{009b}1m\\r\\n\\t"
        );
        assert!(!p.chars().any(is_unsafe_char));
    }

    #[test]
    fn bidi_overrides_and_backslashes_are_escaped() {
        assert_eq!(printable("a\u{202e}b\\c"), "a\\u{202e}b\\\\c");
    }

    #[test]
    fn invalid_utf8_bytes_are_hex() {
        assert_eq!(printable_bytes(b"ok\xff\xfe\x1b"), "ok\\xff\\xfe\\x1b");
        assert_eq!(printable_bytes(b"plain"), "plain");
    }

    #[test]
    fn identifiers_refuse_controls_and_say_where() {
        assert_eq!(check_identifier("edge-fw 1"), Ok(()));
        assert_eq!(check_identifier(" "), Err(IdentifierError::Empty));
        assert_eq!(
            check_identifier("fw\0x"),
            Err(IdentifierError::Control("\\x00".into(), 2))
        );
        assert!(matches!(
            check_identifier(&"a".repeat(256)),
            Err(IdentifierError::TooLong(256))
        ));
        let e = check_identifier("a\u{1b}[31m").unwrap_err().to_string();
        assert!(e.contains("\\x1b") && e.contains("byte 1"), "{e}");
    }

    #[test]
    fn json_safe_escapes_what_serde_json_leaves_raw_and_keeps_the_value() {
        let v = serde_json::json!({"m": "a\u{7f}b\u{9b}c\u{202e}d\u{1b}e"});
        let text = v.to_string();
        let safe = json_safe(&text);
        assert!(!safe.chars().any(is_unsafe_char), "{safe}");
        assert!(
            safe.contains("\\u007f") && safe.contains("\\u009b"),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }

    proptest::proptest! {
        #[test]
        fn printable_never_leaves_an_unsafe_char(s in ".*") {
            let p = printable(&s);
            proptest::prop_assert!(!p.chars().any(is_unsafe_char));
        }

        #[test]
        fn printable_bytes_never_leaves_an_unsafe_char(b in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let p = printable_bytes(&b);
            proptest::prop_assert!(!p.chars().any(is_unsafe_char));
        }
    }
}
