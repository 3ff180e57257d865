//! Errors of the wire decoders: each says what was being read and why it failed.

/// Why a datagram, record or capture could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ends before a structure it announces: `what` names the structure.
    #[error("{what}: truncated: need {need} bytes, have {have}")]
    Truncated {
        /// The structure being read, e.g. `"v5 records"`.
        what: &'static str,
        /// Bytes the structure needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The first bytes are not NetFlow v5/v9, IPFIX or sFlow v5.
    #[error("unknown flow protocol version {0} (expected NetFlow 5 or 9, IPFIX 10, sFlow 5)")]
    UnknownVersion(u16),
    /// A field holds a value the format does not allow.
    #[error("{what}: malformed: {reason}")]
    Malformed {
        /// The structure being read.
        what: &'static str,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A configured bound (templates, fields, exporters, block size...) would be exceeded.
    #[error("{what}: limit of {limit} exceeded")]
    Limit {
        /// What is bounded.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
}

impl WireError {
    /// A [`WireError::Malformed`] from anything displayable.
    pub fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        WireError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    /// A short static reason, suitable as a drop-counter key.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::Truncated { what, .. } => what,
            WireError::UnknownVersion(_) => "unknown version",
            WireError::Malformed { what, .. } => what,
            WireError::Limit { what, .. } => what,
        }
    }
}

/// Checks that `buf` holds at least `need` bytes.
#[inline]
pub(crate) fn need(what: &'static str, buf: &[u8], need: usize) -> Result<(), WireError> {
    if buf.len() < need {
        Err(WireError::Truncated {
            what,
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}
