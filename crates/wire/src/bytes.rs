//! Big-endian reads used by the checked views. Callers have checked the lengths; these helpers
//! still never panic (a short slice reads as zero-padded) so that a missed check is a wrong value,
//! not a crash.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reads a big-endian u16 at `off`; 0 when out of range.
#[inline(always)]
pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// Reads a big-endian u32 at `off`; 0 when out of range.
#[inline(always)]
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Reads a big-endian u64 at `off`; 0 when out of range.
#[inline(always)]
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    match b.get(off..off.wrapping_add(8)) {
        Some(s) => u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        None => 0,
    }
}

/// Reads a byte at `off`; 0 when out of range.
#[inline(always)]
pub(crate) fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

/// Reads an unsigned big-endian integer of any width (reduced-size encoding); widths over 8
/// keep the low 8 bytes.
#[inline(always)]
pub(crate) fn uint(b: &[u8]) -> u64 {
    match b.len() {
        1 => b[0] as u64,
        2 => u16::from_be_bytes([b[0], b[1]]) as u64,
        4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
        8 => u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        n => {
            let s = if n > 8 { &b[n - 8..] } else { b };
            s.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64)
        }
    }
}

/// An IPv4 address at `off`.
#[inline(always)]
pub(crate) fn ipv4_at(b: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32_at(b, off))
}

/// An IPv6 address at `off`; unspecified when out of range.
#[inline(always)]
pub(crate) fn ipv6_at(b: &[u8], off: usize) -> Ipv6Addr {
    match b.get(off..off.wrapping_add(16)) {
        Some(s) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            Ipv6Addr::from(a)
        }
        None => Ipv6Addr::UNSPECIFIED,
    }
}

/// An address from a 4- or 16-byte field; `None` for other widths.
#[inline(always)]
pub(crate) fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(ipv4_at(b, 0))),
        16 => Some(IpAddr::V6(ipv6_at(b, 0))),
        _ => None,
    }
}
