//! Syslog over a byte stream: octet counting (RFC 6587 §3.4.1, RFC 5425 `MSG-LEN SP MSG`) and
//! non-transparent framing (a message followed by LF, NUL or CRLF), detected per connection from
//! its first byte (a digit: octet counting; anything else: trailers).
//!
//! Contract: the codec never fails on content. Frames over the configured maximum are truncated
//! or skipped (see [`OversizePolicy`]) and reported as such, and the stream goes on with the next
//! frame. In octet-counting mode a frame that does not start with `digits SP` is read as a
//! trailer-delimited frame, so a confused sender does not stall the connection. At end of stream
//! an unterminated trailer frame is a message; a short octet-counted frame is reported incomplete.

use ::bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// The framing a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingMode {
    /// `MSG-LEN SP MSG` (RFC 6587 octet counting, RFC 5425).
    OctetCounting,
    /// A message ended by LF, NUL or CRLF (RFC 6587 non-transparent framing).
    NonTransparent,
}

/// What to do with a frame longer than the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OversizePolicy {
    /// Deliver the first `max_frame` bytes as [`Frame::Truncated`], drop the rest.
    #[default]
    Truncate,
    /// Drop the whole frame, reported as [`Frame::Skipped`].
    Skip,
}

/// One decoded frame or a report about one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message (trailer and CR removed).
    Message(Bytes),
    /// The first `max_frame` bytes of a longer message; `length` is its declared length when the
    /// framing said (octet counting).
    Truncated {
        /// The kept bytes.
        data: Bytes,
        /// Declared length, if known.
        length: Option<usize>,
    },
    /// A message over the maximum that was dropped; `length` bytes long.
    Skipped {
        /// Its length.
        length: usize,
    },
    /// The stream ended inside an octet-counted frame.
    Incomplete {
        /// Declared length.
        length: usize,
        /// Bytes received.
        have: usize,
    },
}

/// I/O failure of the underlying stream (the codec itself never fails on content).
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// Reading the connection failed.
    #[error("reading the syslog stream failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy)]
enum Discard {
    None,
    /// Drop this many more bytes (rest of an oversize octet-counted frame).
    Bytes(usize),
    /// Drop until the next trailer; `report` a Skipped frame of `length` when it comes.
    UntilTrailer {
        length: usize,
        report: bool,
    },
}

/// The RFC 6587 / RFC 5425 decoder; one per connection.
#[derive(Debug)]
pub struct SyslogCodec {
    max_frame: usize,
    policy: OversizePolicy,
    mode: Option<FramingMode>,
    discard: Discard,
    scanned: usize,
}

/// Longest MSG-LEN accepted (10 digits, more than any sane maximum).
const MAX_LEN_DIGITS: usize = 10;

impl SyslogCodec {
    /// A codec for frames up to `max_frame` bytes (at least 1).
    pub fn new(max_frame: usize, policy: OversizePolicy) -> Self {
        Self {
            max_frame: max_frame.max(1),
            policy,
            mode: None,
            discard: Discard::None,
            scanned: 0,
        }
    }

    /// The framing detected on this connection (after the first byte).
    pub fn mode(&self) -> Option<FramingMode> {
        self.mode
    }

    /// `Some((header_len, msg_len))` for `digits SP`; `Err(())` when the bytes are not a length
    /// header; `Ok(None)` when more bytes are needed to tell.
    fn length_header(buf: &[u8]) -> Result<Option<(usize, usize)>, ()> {
        let n = buf
            .iter()
            .take(MAX_LEN_DIGITS + 1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 || n > MAX_LEN_DIGITS {
            return Err(());
        }
        match buf.get(n) {
            None => Ok(None),
            Some(b' ') => {
                let len = buf[..n].iter().fold(0usize, |a, c| {
                    a.saturating_mul(10).saturating_add(usize::from(c - b'0'))
                });
                Ok(Some((n + 1, len)))
            }
            Some(_) => Err(()),
        }
    }

    fn trailer_frame(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        let from = self.scanned.min(buf.len());
        match buf[from..].iter().position(|c| *c == b'\n' || *c == 0) {
            Some(p) => {
                let end = from + p;
                self.scanned = 0;
                let mut frame = buf.split_to(end);
                buf.advance(1);
                if frame.last() == Some(&b'\r') {
                    frame.truncate(frame.len() - 1);
                }
                Some(self.sized(frame.freeze(), None))
            }
            None if buf.len() > self.max_frame => {
                self.scanned = 0;
                match self.policy {
                    OversizePolicy::Truncate => {
                        let data = buf.split_to(self.max_frame).freeze();
                        let length = buf.len() + data.len();
                        buf.clear();
                        self.discard = Discard::UntilTrailer {
                            length,
                            report: false,
                        };
                        Some(Frame::Truncated { data, length: None })
                    }
                    OversizePolicy::Skip => {
                        self.discard = Discard::UntilTrailer {
                            length: buf.len(),
                            report: true,
                        };
                        buf.clear();
                        None
                    }
                }
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }

    /// A complete frame checked against the maximum.
    fn sized(&self, frame: Bytes, declared: Option<usize>) -> Frame {
        if frame.len() <= self.max_frame {
            return Frame::Message(frame);
        }
        match self.policy {
            OversizePolicy::Truncate => Frame::Truncated {
                data: frame.slice(..self.max_frame),
                length: declared.or(Some(frame.len())),
            },
            OversizePolicy::Skip => Frame::Skipped {
                length: frame.len(),
            },
        }
    }
}

impl Decoder for SyslogCodec {
    type Item = Frame;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        loop {
            match self.discard {
                Discard::None => {}
                Discard::Bytes(n) => {
                    let k = n.min(buf.len());
                    buf.advance(k);
                    if n > k {
                        self.discard = Discard::Bytes(n - k);
                        return Ok(None);
                    }
                    self.discard = Discard::None;
                }
                Discard::UntilTrailer { length, report } => {
                    match buf.iter().position(|c| *c == b'\n' || *c == 0) {
                        Some(p) => {
                            buf.advance(p + 1);
                            self.discard = Discard::None;
                            if report {
                                return Ok(Some(Frame::Skipped { length: length + p }));
                            }
                        }
                        None => {
                            self.discard = Discard::UntilTrailer {
                                length: length + buf.len(),
                                report,
                            };
                            buf.clear();
                            return Ok(None);
                        }
                    }
                }
            }
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            let mode = *self.mode.get_or_insert(if first.is_ascii_digit() {
                FramingMode::OctetCounting
            } else {
                FramingMode::NonTransparent
            });
            if mode == FramingMode::OctetCounting && self.scanned == 0 {
                match Self::length_header(buf) {
                    Ok(None) => return Ok(None),
                    Ok(Some((hdr, len))) => {
                        if len <= self.max_frame {
                            if buf.len() < hdr + len {
                                buf.reserve(hdr + len - buf.len());
                                return Ok(None);
                            }
                            buf.advance(hdr);
                            let frame = buf.split_to(len).freeze();
                            if frame.is_empty() {
                                continue;
                            }
                            return Ok(Some(Frame::Message(frame)));
                        }
                        match self.policy {
                            OversizePolicy::Truncate => {
                                if buf.len() < hdr + self.max_frame {
                                    return Ok(None);
                                }
                                buf.advance(hdr);
                                let data = buf.split_to(self.max_frame).freeze();
                                self.discard = Discard::Bytes(len - self.max_frame);
                                return Ok(Some(Frame::Truncated {
                                    data,
                                    length: Some(len),
                                }));
                            }
                            OversizePolicy::Skip => {
                                buf.advance(hdr);
                                self.discard = Discard::Bytes(len);
                                return Ok(Some(Frame::Skipped { length: len }));
                            }
                        }
                    }
                    // Not a length: read this frame up to its trailer.
                    Err(()) => {}
                }
            }
            match self.trailer_frame(buf) {
                Some(Frame::Message(m)) if m.is_empty() => continue,
                Some(f) => return Ok(Some(f)),
                None if self.discard_pending() => continue,
                None => return Ok(None),
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if let Some(f) = self.decode(buf)? {
            return Ok(Some(f));
        }
        if let Discard::UntilTrailer { length, report } = self.discard {
            self.discard = Discard::None;
            buf.clear();
            return Ok(report.then_some(Frame::Skipped { length }));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.scanned = 0;
        if self.mode == Some(FramingMode::OctetCounting)
            && let Ok(Some((hdr, len))) = Self::length_header(buf)
        {
            let have = buf.len() - hdr;
            buf.clear();
            return Ok(Some(Frame::Incomplete { length: len, have }));
        }
        let mut frame = buf.split().freeze();
        if frame.last() == Some(&b'\r') {
            frame.truncate(frame.len() - 1);
        }
        if frame.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.sized(frame, None)))
    }
}

impl SyslogCodec {
    fn discard_pending(&self) -> bool {
        !matches!(self.discard, Discard::None)
    }
}
