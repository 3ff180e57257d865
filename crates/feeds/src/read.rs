//! Bounded record reading: physical lines and CSV records (a quoted field may hold line
//! breaks), never longer than [`MAX_RECORD`] in memory, whatever the input.

use std::io::{self, BufRead};

use crate::MAX_RECORD;

/// A record read from the input.
pub(crate) enum Record {
    /// The text (invalid UTF-8 replaced, line break removed), starting on `line`.
    Text {
        /// 1-based line the record starts on.
        line: usize,
        /// The record.
        text: String,
    },
    /// The record starting on `line` was longer than [`MAX_RECORD`] (or, for CSV, its quote was
    /// never closed); it was read past and dropped.
    Bad {
        /// 1-based line the record starts on.
        line: usize,
        /// Why.
        why: String,
    },
}

/// Reads one physical line (its `\n` included) into `out`, keeping at most `max` bytes;
/// `None` at the end of the input, else whether the line was cut.
fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    let (mut any, mut cut) = (false, false);
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = max.saturating_sub(out.len());
        if take > room {
            cut = true;
            out.extend_from_slice(&buf[..room]);
        } else {
            out.extend_from_slice(&buf[..take]);
        }
        r.consume(take);
        if done {
            return Ok(Some(cut));
        }
    }
}

fn text_of(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.strip_prefix('\u{feff}').unwrap_or(&s);
    s.trim_end_matches(['\n', '\r']).to_string()
}

/// Records of an input, one physical line each, or (CSV) continued while a quote is open.
pub(crate) struct Records<R> {
    r: R,
    line: usize,
    csv: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> Records<R> {
    /// Line records.
    pub(crate) fn lines(r: R) -> Self {
        Self {
            r,
            line: 0,
            csv: false,
            buf: Vec::new(),
        }
    }

    /// CSV records.
    pub(crate) fn csv(r: R) -> Self {
        Self {
            csv: true,
            ..Self::lines(r)
        }
    }

    /// The next record, `None` at the end.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<Record>> {
        self.buf.clear();
        let start = self.line + 1;
        let Some(mut cut) = read_line(&mut self.r, &mut self.buf, MAX_RECORD + 1)? else {
            return Ok(None);
        };
        self.line += 1;
        if self.csv {
            let mut quotes = self.buf.iter().filter(|&&b| b == b'"').count();
            while quotes % 2 == 1 && !cut {
                let before = self.buf.len();
                match read_line(&mut self.r, &mut self.buf, MAX_RECORD + 1)? {
                    None => {
                        return Ok(Some(Record::Bad {
                            line: start,
                            why: "a quoted field is never closed (a \" is missing)".into(),
                        }));
                    }
                    Some(c) => {
                        self.line += 1;
                        cut = c;
                        quotes += self.buf[before..].iter().filter(|&&b| b == b'"').count();
                    }
                }
            }
            // a cut record: read past the rest of it
            while cut && quotes % 2 == 1 {
                let mut rest = Vec::new();
                match read_line(&mut self.r, &mut rest, MAX_RECORD)? {
                    None => break,
                    Some(_) => {
                        self.line += 1;
                        quotes += rest.iter().filter(|&&b| b == b'"').count();
                    }
                }
            }
        }
        if cut || self.buf.len() > MAX_RECORD {
            return Ok(Some(Record::Bad {
                line: start,
                why: format!("longer than {MAX_RECORD} bytes; skipped"),
            }));
        }
        Ok(Some(Record::Text {
            line: start,
            text: text_of(&self.buf),
        }))
    }
}

/// Splits one CSV record (RFC 4180: `,` separated, `"` quoted, `""` inside quotes).
pub(crate) fn split_csv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut field)),
            (false, c) => field.push(c),
        }
    }
    out.push(field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], csv: bool) -> Vec<(usize, Result<String, String>)> {
        let mut r = if csv {
            Records::csv(input)
        } else {
            Records::lines(input)
        };
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(match rec {
                Record::Text { line, text } => (line, Ok(text)),
                Record::Bad { line, why } => (line, Err(why)),
            });
        }
        out
    }

    #[test]
    fn csv_records_continue_inside_quotes_and_keep_line_numbers() {
        let r = all(b"a,b\r\n\"x\ny\",2\nlast,3", true);
        assert_eq!(r[0], (1, Ok("a,b".into())));
        assert_eq!(r[1], (2, Ok("\"x\ny\",2".into())));
        assert_eq!(r[2], (4, Ok("last,3".into())));
        assert_eq!(split_csv("\"x, \"\"y\"\"\",,z"), vec!["x, \"y\"", "", "z"]);
    }

    #[test]
    fn long_and_unterminated_records_are_bad_not_fatal() {
        let mut input = vec![b'x'; MAX_RECORD + 10];
        input.extend_from_slice(b"\nok\n\"open\n");
        let r = all(&input, true);
        assert!(r[0].1.as_ref().unwrap_err().contains("longer than"));
        assert_eq!(r[1], (2, Ok("ok".into())));
        assert!(r[2].1.as_ref().unwrap_err().contains("never closed"));
    }
}
