//! IPFIX (RFC 7011): a 16-byte message header followed by Sets (2 templates, 3 options
//! templates, >= 256 data).
//!
//! Contract: [`IpfixPacket::new_checked`] checks the header and that the message length fits the
//! buffer (bytes after the message are ignored); [`IpfixPacket::sets`] walks Sets by their length
//! and reports a bad length as an error item. Template bodies (enterprise numbers, variable
//! lengths, withdrawals) are parsed by [`crate::template::ipfix_templates`]; data sets are decoded
//! by the stateful [`crate::FlowDecoder`].

use crate::bytes::{u16_at, u32_at};
use crate::error::{WireError, need};
use crate::template::Sets;

/// Header length in bytes.
pub const HEADER_LEN: usize = 16;

/// An IPFIX message, borrowed. After `new_checked` succeeds, no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct IpfixPacket<T: AsRef<[u8]>> {
    buf: T,
}

/// The header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpfixHeader {
    /// Message length including the header.
    pub length: u16,
    /// Export time, Unix seconds.
    pub export_time: u32,
    /// Data records sent in this session for this domain before this message (mod 2^32).
    pub sequence: u32,
    /// Observation domain id.
    pub domain: u32,
}

impl<T: AsRef<[u8]>> IpfixPacket<T> {
    /// Wraps `buf` after checking the version and that `16 <= length <= buf.len()`.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        need("ipfix header", b, HEADER_LEN)?;
        let version = u16_at(b, 0);
        if version != 10 {
            return Err(WireError::UnknownVersion(version));
        }
        let len = u16_at(b, 2) as usize;
        if len < HEADER_LEN {
            return Err(WireError::malformed(
                "ipfix header",
                format!("message length {len} < 16"),
            ));
        }
        need("ipfix message", b, len)?;
        Ok(Self { buf })
    }

    /// The header as plain values.
    pub fn header(&self) -> IpfixHeader {
        let b = self.buf.as_ref();
        IpfixHeader {
            length: u16_at(b, 2),
            export_time: u32_at(b, 4),
            sequence: u32_at(b, 8),
            domain: u32_at(b, 12),
        }
    }

    /// The Sets of the message (up to its length field).
    pub fn sets(&self) -> Sets<'_> {
        let b = self.buf.as_ref();
        let len = (u16_at(b, 2) as usize).min(b.len());
        Sets::new(b.get(HEADER_LEN..len).unwrap_or(&[]), "ipfix set")
    }
}
