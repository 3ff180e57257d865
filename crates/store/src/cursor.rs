//! Paging cursors: the key (event time in ns since the epoch, id) of the last row of a page,
//! as 32 lowercase hex digits. Opaque to callers; shared by every store behind the trait
//! (crates/store-pg), so a cursor means the same on every engine.

use crate::StoreError;

/// Position after which the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Event time of the last row, ns since the epoch (as stored).
    pub event_time: i64,
    /// Id of the last row.
    pub id: i64,
}

impl Cursor {
    /// The opaque text form.
    pub fn encode(self) -> String {
        format!("{:016x}{:016x}", self.event_time as u64, self.id as u64)
    }

    /// Parses [`Cursor::encode`]'s output; anything else is [`StoreError::BadCursor`].
    pub fn decode(s: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::BadCursor(s.to_string());
        if s.len() != 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        let t = u64::from_str_radix(&s[..16], 16).map_err(|_| bad())? as i64;
        let id = u64::from_str_radix(&s[16..], 16).map_err(|_| bad())?;
        let id = i64::try_from(id).map_err(|_| bad())?;
        Ok(Self { event_time: t, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_including_negative_times() {
        for c in [
            Cursor {
                event_time: 0,
                id: 1,
            },
            Cursor {
                event_time: -5,
                id: i64::MAX,
            },
            Cursor {
                event_time: i64::MAX,
                id: 0,
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
    }

    #[test]
    fn malformed_cursor_is_bad_cursor_naming_it() {
        for s in [
            "",
            "xyz",
            "00000000000000000000000000000000ff",
            "0000000000000000G000000000000000",
        ] {
            match Cursor::decode(s) {
                Err(StoreError::BadCursor(c)) => assert_eq!(c, s),
                other => panic!("{s:?}: {other:?}"),
            }
        }
        // An id above i64::MAX cannot come from this store.
        assert!(Cursor::decode("0000000000000000ffffffffffffffff").is_err());
    }
}
