//! NetFlow v9 (RFC 3954): a 20-byte header followed by FlowSets (0 templates, 1 options
//! templates, >= 256 data).
//!
//! Contract: [`V9Packet::new_checked`] checks the header; [`V9Packet::flowsets`] walks FlowSets by
//! their length field and reports a bad length as an error item instead of panicking. Template
//! bodies are parsed by [`crate::template::v9_templates`]; data FlowSets are decoded by the
//! stateful [`crate::FlowDecoder`] with a compiled template plan.

use crate::bytes::{u16_at, u32_at};
use crate::error::{WireError, need};
use crate::template::Sets;

/// Header length in bytes.
pub const HEADER_LEN: usize = 20;

/// A NetFlow v9 export packet, borrowed. After `new_checked` succeeds, no accessor panics.
#[derive(Debug, Clone, Copy)]
pub struct V9Packet<T: AsRef<[u8]>> {
    buf: T,
}

/// The header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V9Header {
    /// Records (templates + data) the exporter says the packet holds; informational only.
    pub count: u16,
    /// Milliseconds since the exporter booted.
    pub sys_uptime: u32,
    /// Export time, Unix seconds.
    pub unix_secs: u32,
    /// Export packets sent by this source id before this one (counts packets).
    pub sequence: u32,
    /// Source id (observation domain analogue).
    pub source_id: u32,
}

impl<T: AsRef<[u8]>> V9Packet<T> {
    /// Wraps `buf` after checking the header length and version.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        need("v9 header", b, HEADER_LEN)?;
        let version = u16_at(b, 0);
        if version != 9 {
            return Err(WireError::UnknownVersion(version));
        }
        Ok(Self { buf })
    }

    /// The header as plain values.
    pub fn header(&self) -> V9Header {
        let b = self.buf.as_ref();
        V9Header {
            count: u16_at(b, 2),
            sys_uptime: u32_at(b, 4),
            unix_secs: u32_at(b, 8),
            sequence: u32_at(b, 12),
            source_id: u32_at(b, 16),
        }
    }

    /// The FlowSets after the header.
    pub fn flowsets(&self) -> Sets<'_> {
        Sets::new(
            self.buf.as_ref().get(HEADER_LEN..).unwrap_or(&[]),
            "v9 flowset",
        )
    }
}
