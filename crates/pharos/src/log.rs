//! The daemon's log: one line per event on stderr, text or JSON, colour only for a person at a
//! terminal, and never a raw control character from the network in a line ([`SafeLog`]).

use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the daemon's log subscriber for `cfg`'s `[log]` section.
pub fn init_log(cfg: &Config) {
    use std::io::IsTerminal;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    // Colour only for a person at a terminal; never in a file, a pipe or journald.
    let colour = cfg.log.format == LogFormat::Text
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let out = SafeLog::new(cfg.log.format, colour, |line: &[u8]| {
        use std::io::Write;
        let _ = std::io::stderr().lock().write_all(line);
    });
    use tracing_subscriber::util::SubscriberInitExt;
    log_subscriber(filter, cfg.log.format, colour, out).init();
}

/// The daemon's log subscriber: `format` lines through `out`, ANSI colour iff `colour`.
fn log_subscriber(
    filter: EnvFilter,
    format: LogFormat,
    colour: bool,
    out: SafeLog,
) -> Box<dyn tracing::Subscriber + Send + Sync> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(out);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// Where [`SafeLog`] writes each finished line (stderr in the daemon, a buffer in tests).
type LogSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The log's writer. tracing-subscriber escapes only some control characters (ESC, BEL, BS, FF,
/// DEL, C1 in messages) and none in `%display` fields, so a NUL, CR or LF from the network would
/// reach the log raw (a forged second line). Each event's line is buffered here and written in
/// one piece with every unsafe character ([`pharos_model::text::is_unsafe_char`]) made visible
/// except the line's own final newline: in text, as [`pharos_model::text::printable`] writes it
/// (only the colour sequences of the formatter itself pass when `colour` is on); in JSON, as a
/// `\uXXXX` escape inside the string, the same JSON value.
#[derive(Clone)]
struct SafeLog {
    sink: LogSink,
    format: LogFormat,
    colour: bool,
}

impl SafeLog {
    fn new(format: LogFormat, colour: bool, sink: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        Self {
            sink: Arc::new(sink),
            format,
            colour,
        }
    }

    /// `line` (one formatted event) with every unsafe character escaped.
    fn escape<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        use pharos_model::text::{is_unsafe_char, json_safe, printable};
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if !body.chars().any(is_unsafe_char) {
            return std::borrow::Cow::Borrowed(line);
        }
        let mut out = match self.format {
            LogFormat::Json => json_safe(body).into_owned(),
            LogFormat::Text => {
                let mut out = String::with_capacity(body.len() + 16);
                let mut rest = body;
                while let Some(c) = rest.chars().next() {
                    let n = match sgr_len(rest) {
                        Some(n) if self.colour => {
                            out.push_str(&rest[..n]);
                            n
                        }
                        _ => {
                            let mut b = [0; 4];
                            out.push_str(&printable(c.encode_utf8(&mut b)));
                            c.len_utf8()
                        }
                    };
                    rest = &rest[n..];
                }
                out
            }
        };
        out.push_str(end);
        std::borrow::Cow::Owned(out)
    }
}

/// The length of the colour sequence (`ESC [ digits and ; m`) `s` starts with, if it does.
fn sgr_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\u{1b}[")?;
    let params = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    (rest[params..].starts_with('m')).then_some(2 + params + 1)
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SafeLog {
    type Writer = SafeLine<'a>;

    fn make_writer(&'a self) -> SafeLine<'a> {
        SafeLine {
            log: self,
            buf: Vec::new(),
        }
    }
}

/// One event's bytes, escaped and written when dropped.
struct SafeLine<'a> {
    log: &'a SafeLog,
    buf: Vec<u8>,
}

impl std::io::Write for SafeLine<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SafeLine<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        (self.log.sink)(self.log.escape(&text).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs one event with network text in its message and fields through the daemon's log
    /// subscriber and returns what reached the sink.
    fn logged(format: LogFormat, colour: bool) -> String {
        let buf = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let out = SafeLog::new(format, colour, move |line: &[u8]| {
            sink.lock().unwrap().extend_from_slice(line)
        });
        let sub = log_subscriber(EnvFilter::new("info"), format, colour, out);
        let evil = "x\u{1b}[2J\u{7}\0y\r\nforged line \u{9b}1m\u{202e}";
        tracing::subscriber::with_default(sub, || {
            tracing::info!(text = %evil, debug = ?evil, "got {evil}");
        });
        String::from_utf8(buf.lock().unwrap().clone()).unwrap()
    }

    fn no_raw_control_but_the_final_newline(s: &str) {
        let body = s.strip_suffix('\n').expect("one line, ending in a newline");
        assert!(
            !body.chars().any(pharos_model::text::is_unsafe_char),
            "{body:?}"
        );
    }

    #[test]
    fn a_text_log_line_escapes_every_control_character_of_network_text() {
        let line = logged(LogFormat::Text, false);
        no_raw_control_but_the_final_newline(&line);
        assert!(line.contains("\\x1b[2J"), "{line}");
        assert!(line.contains("\\x00y\\r\\nforged"), "{line}");
    }

    #[test]
    fn a_coloured_text_log_keeps_its_colours_but_escapes_network_text() {
        let line = logged(LogFormat::Text, true);
        let body = line.strip_suffix('\n').unwrap();
        assert!(body.contains("\u{1b}["), "colour expected: {body:?}");
        assert!(!body.contains("\u{1b}[2J") && !body.contains('\0') && !body.contains('\r'));
        assert!(!body.contains('\n') && !body.contains('\u{9b}'));
    }

    #[test]
    fn a_json_log_line_is_one_object_with_the_text_intact_and_no_raw_control() {
        let line = logged(LogFormat::Json, false);
        no_raw_control_but_the_final_newline(&line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["fields"]["text"],
            "x\u{1b}[2J\u{7}\0y\r\nforged line \u{9b}1m\u{202e}"
        );
    }
}
