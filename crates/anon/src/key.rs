//! The 32-byte Crypto-PAn key: parsed from hex or a key file, wiped on drop, never printed.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Length of a Crypto-PAn key in bytes: 16 for the AES-128 key, 16 for the pad seed.
pub const KEY_LEN: usize = 32;

/// Why a key could not be read. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The hex text has the wrong number of digits.
    #[error(
        "a Crypto-PAn key is {want} hex digits (32 bytes), optionally prefixed 0x; got {got} digits"
    )]
    HexLength {
        /// Digits expected (64).
        want: usize,
        /// Digits found.
        got: usize,
    },
    /// A character that is not a hex digit (its position is given, not the character: it is key
    /// material).
    #[error("a Crypto-PAn key is hex digits only: character {position} is not one")]
    NotHex {
        /// 1-based position in the digits (after any 0x).
        position: usize,
    },
    /// The key file is neither 32 raw bytes nor 64 hex digits.
    #[error(
        "key file {path}: expected 32 raw bytes or 64 hex digits (optionally 0x-prefixed, a trailing newline is fine), found {len} bytes"
    )]
    FileShape {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// The key file holds 64 characters that are not all hex digits.
    #[error("key file {path}: {source}")]
    FileHex {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the digits.
        source: Box<KeyError>,
    },
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A Crypto-PAn key: bytes 0..16 key AES-128, bytes 16..32 are the pad seed. Its `Debug` is
/// redacted and its bytes are wiped when dropped, so it can sit in configuration structs.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// The key of these 32 bytes (nfanon's 32-character key string is its bytes).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key written as 64 hex digits, optionally prefixed `0x` (nfanon's `-K 0x...` form);
    /// surrounding whitespace is ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        let t = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        let digits = t.as_bytes();
        if digits.len() != 2 * KEY_LEN {
            return Err(KeyError::HexLength {
                want: 2 * KEY_LEN,
                got: digits.len(),
            });
        }
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(KeyError::NotHex {
                position: 2 * i + 1,
            })?;
            let lo = hex_value(pair[1]).ok_or(KeyError::NotHex {
                position: 2 * i + 2,
            })?;
            out[i] = hi << 4 | lo;
        }
        Ok(Self(out))
    }

    /// The key in a key file's contents: exactly 32 raw bytes, or 64 hex digits (optionally
    /// `0x`-prefixed, surrounding whitespace such as a trailing newline ignored). `path` only
    /// names the file in errors.
    pub fn from_file_contents(path: &Path, contents: &[u8]) -> Result<Self, KeyError> {
        if let Ok(bytes) = <[u8; KEY_LEN]>::try_from(contents) {
            return Ok(Self::from_bytes(bytes));
        }
        let shape = || KeyError::FileShape {
            path: path.to_path_buf(),
            len: contents.len(),
        };
        let text = std::str::from_utf8(contents).map_err(|_| shape())?;
        match Self::from_hex(text) {
            Ok(k) => Ok(k),
            Err(KeyError::HexLength { .. }) => Err(shape()),
            Err(e) => Err(KeyError::FileHex {
                path: path.to_path_buf(),
                source: Box::new(e),
            }),
        }
    }

    /// Reads a key file (see [`Key::from_file_contents`]).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let contents = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?);
        Self::from_file_contents(path, &contents)
    }

    /// The raw bytes, for the cipher.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

    #[test]
    fn hex_key_parses_with_or_without_0x_and_whitespace() {
        let a = Key::from_hex(HEX).unwrap();
        let b = Key::from_hex(&format!("  0x{}\n", HEX.to_uppercase())).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_eq!(a.bytes()[0], 0x15);
        assert_eq!(a.bytes()[31], 0x02);
    }

    #[test]
    fn bad_hex_names_the_position_not_the_key() {
        let mut bad = HEX.to_string();
        bad.replace_range(16..17, "g");
        let e = Key::from_hex(&bad).unwrap_err().to_string();
        assert!(e.contains("character 17"), "{e}");
        assert!(!e.contains(&HEX[..8]), "{e}");
        let e = Key::from_hex(&HEX[..62]).unwrap_err().to_string();
        assert!(e.contains("got 62 digits"), "{e}");
    }

    #[test]
    fn key_file_is_raw_bytes_or_hex() {
        let p = Path::new("k");
        let raw = Key::from_file_contents(p, &[7u8; 32]).unwrap();
        assert_eq!(raw.bytes(), &[7u8; 32]);
        let hex = Key::from_file_contents(p, format!("{HEX}\n").as_bytes()).unwrap();
        assert_eq!(hex.bytes()[1], 0x22);
        let e = Key::from_file_contents(p, b"short")
            .unwrap_err()
            .to_string();
        assert!(e.contains("found 5 bytes"), "{e}");
        let mut bad = HEX.to_string();
        bad.replace_range(0..1, "z");
        let e = Key::from_file_contents(p, bad.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key file k: ") && e.contains("character 1"),
            "{e}"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let k = Key::from_hex(HEX).unwrap();
        assert_eq!(format!("{k:?}"), "Key(<redacted>)");
    }
}
