//! A line reader with a bounded line length: memory stays bounded whatever the input.

use std::io::{self, BufRead};

/// Lines longer than this (bytes, without the line break) are refused.
pub const MAX_LINE: usize = 64 * 1024;

/// One line of input.
pub(crate) enum Line<'a> {
    /// The text (invalid UTF-8 replaced by U+FFFD, trailing `\r` removed).
    Text(&'a str),
    /// A line over [`MAX_LINE`] bytes, skipped.
    TooLong,
}

/// Reads lines of at most `max` bytes, numbering them from 1.
pub(crate) struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    text: String,
    max: usize,
    /// Number of the line last returned (1-based).
    pub number: u64,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R, max: usize) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            text: String::new(),
            max,
            number: 0,
        }
    }

    /// The next line, `None` at the end of the input.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (part, used, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            if !too_long {
                if self.buf.len() + part.len() > self.max {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            self.reader.consume(used);
            if done {
                break;
            }
        }
        self.number += 1;
        if too_long {
            return Ok(Some(Line::TooLong));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        self.text.clear();
        self.text.push_str(&String::from_utf8_lossy(&self.buf));
        Ok(Some(Line::Text(&self.text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<Option<String>> {
        let mut l = Lines::new(input, max);
        let mut out = Vec::new();
        while let Some(line) = l.next_line().unwrap() {
            out.push(match line {
                Line::Text(t) => Some(t.to_string()),
                Line::TooLong => None,
            });
        }
        out
    }

    #[test]
    fn lines_split_on_newline_strip_cr_and_keep_last_unterminated_line() {
        assert_eq!(
            collect(b"a\r\nb\n\nc", 10),
            vec![
                Some("a".into()),
                Some("b".into()),
                Some("".into()),
                Some("c".into())
            ]
        );
    }

    #[test]
    fn over_long_line_is_reported_and_reading_continues() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nok\n");
        assert_eq!(collect(&input, 10), vec![None, Some("ok".into())]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(collect(b"a\xffb\n", 10), vec![Some("a\u{fffd}b".into())]);
    }
}
