//! JSON as the API writes it: no control or invisible character reaches a client raw.
//!
//! Contract: [`Json`] (a response) and [`to_string`] produce ordinary JSON, read back by any
//! parser as the same values, in which every character [`is_unsafe_char`] flags is written as a
//! `\uXXXX` escape. serde_json escapes U+0000..U+001F itself but writes DEL (U+007F), the C1
//! controls (U+0080..U+009F, among them CSI U+009B that starts a terminal escape sequence) and
//! the bidi and zero-width format characters raw; message text and raw log lines carry whatever a
//! device sent, and people read API answers with `curl` in a terminal.

use std::io;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pharos_model::text::is_unsafe_char;
use serde::Serialize;

/// serde_json's compact formatter, escaping what [`is_unsafe_char`] flags in strings and keys.
struct SafeFormatter;

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Fast path: printable ASCII (serde_json already escaped C0, quotes and backslashes).
        if !fragment.bytes().any(|b| b == 0x7f || b >= 0x80) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe_char(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{u:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `value` as compact JSON with unsafe characters escaped (see the module docs).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        SafeFormatter,
    ))?;
    Ok(out)
}

/// `value` as a compact JSON string with unsafe characters escaped (see the module docs).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let v = to_vec(value)?;
    // The formatter writes only whole UTF-8 fragments and ASCII escapes.
    Ok(String::from_utf8(v).expect("serde_json writes UTF-8"))
}

/// A JSON response (`application/json`) written with [`to_vec`]; use it instead of `axum::Json`
/// for every answer of the API.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match to_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                format!("the answer could not be written as JSON: {e}"),
            )
                .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn del_c1_and_format_characters_are_escaped_and_read_back_equal() {
        let v = serde_json::json!({
            "text": "a\u{1b}[2Jb\u{7f}c\u{9b}31md\u{202e}e Zürich \"q\" \\",
            "k\u{85}ey": ["\u{0}", "ok"],
        });
        let s = to_string(&v).unwrap();
        assert!(
            !s.chars().any(is_unsafe_char),
            "no raw unsafe character in {s:?}"
        );
        for esc in [
            "\\u001b", "\\u007f", "\\u009b", "\\u202e", "\\u0085", "\\u0000",
        ] {
            assert!(s.contains(esc), "{esc} in {s}");
        }
        assert!(s.contains("Zürich"), "ordinary text unchanged: {s}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn plain_values_are_written_as_serde_json_writes_them() {
        let v = serde_json::json!({"a": [1, 2.5, null, true], "b": "x\ny"});
        assert_eq!(to_string(&v).unwrap(), v.to_string());
    }
}
