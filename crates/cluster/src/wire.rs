//! The encoding of a [`FlowBatch`] on the `pharos.flows.<p>` subjects: compact, versioned,
//! columnar.
//!
//! Contract: for every batch whose columns have equal lengths (every batch built with
//! [`FlowBatch::push`] / [`FlowBatch::extend_records`]), `decode(&encoded) == batch` column by
//! column, and the records (`iter()`) are equal for any batch. The only bytes not carried are
//! those no reader looks at: the first 12 bytes of an address whose family bit says IPv4 (they
//! come back as the IPv4-mapped prefix) and the next hop of a row without
//! [`flags::NEXT_HOP`] (it comes back as zeros).
//!
//! [`WireBatch::new_checked`] is the only place that reasons about untrusted sizes: the header,
//! the flow count (at most [`MAX_FLOWS`], so a decode allocates at most a bounded amount whatever
//! it is given) and the byte length of every column against its encoding. After it succeeds
//! [`WireBatch::decode_into`] indexes freely; it still returns an error (and appends nothing) for
//! a malformed varint or a value out of its column's range, never a panic.
//!
//! Layout of version 1 (integers little-endian; varints are LEB128, at most 10 bytes):
//!
//! ```text
//! offset size   field
//! 0      4      magic "PHFB"
//! 4      1      version (1)
//! 5      1      reserved, 0
//! 6      1..3   varint: flows in the batch (<= MAX_FLOWS)
//! ...           27 columns, in the field order of FlowBatch, each:
//!               1 byte encoding | varint byte length of the body | body
//! ```
//!
//! Encodings (the encoder picks the smallest for each column of each batch):
//!
//! | code | name | body |
//! |---|---|---|
//! | 0 | raw | one fixed-width value per row (addresses: 4 bytes for a row whose family bit says IPv4, 16 otherwise) |
//! | 1 | const | one value (addresses: 16 bytes) for every row |
//! | 2 | varint | one varint per row |
//! | 3 | delta | one zigzag varint per row: the wrapping difference from the previous row (the first from 0) |
//! | 4 | from start | `end_ms` only: one zigzag varint per row, `end_ms - start_ms` |
//! | 5 | dictionary | addresses only: 1 byte k (1..=255), k entries of 16 bytes, one index byte per row |
//!
//! The flags column is raw or const (it says which addresses are IPv4 and which rows have a next
//! hop, so the address columns can be sized before they are read). The next-hop column has one
//! entry per row with [`flags::NEXT_HOP`] only.

use pharos_model::flow::{FlowBatch, flags};

/// Most flows in one encoded batch (what a publisher puts in one message; a decoder refuses
/// more, which bounds what one message can make it allocate).
pub const MAX_FLOWS: usize = 65_536;

/// The magic bytes every encoded batch starts with.
pub const MAGIC: [u8; 4] = *b"PHFB";

/// The version this code writes (and the only one it reads).
pub const VERSION: u8 = 1;

/// Why bytes are not a flow batch. Each message names the part that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ends inside a part.
    #[error(
        "flow batch truncated: {what} needs {need} bytes, {have} present (a message cut by a \
         size limit, or not written by a Pharos collector)"
    )]
    Truncated {
        /// The part being read.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The message does not start with [`MAGIC`].
    #[error(
        "not a Pharos flow batch: it starts with {found:02x?}, expected \"PHFB\"; is another \
         program publishing on pharos.flows.*?"
    )]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// The message has a version this code does not read.
    #[error(
        "flow batch version {0} is unknown to this Pharos (it reads version 1): run the same \
         Pharos release on collectors and consumers"
    )]
    UnsupportedVersion(u8),
    /// The flow count is above [`MAX_FLOWS`].
    #[error("flow batch announces {count} flows, more than the maximum of {MAX_FLOWS}")]
    TooManyFlows {
        /// The announced count.
        count: u64,
    },
    /// A part has an impossible value.
    #[error("malformed flow batch: {what}: {detail}")]
    Malformed {
        /// The part (a column name, "header").
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl WireError {
    fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        WireError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}

/// Offsets of the fixed header (smoltcp style: one table used by the reader and the writer).
mod field {
    use std::ops::Range;
    /// The magic bytes.
    pub const MAGIC: Range<usize> = 0..4;
    /// The version byte.
    pub const VERSION: usize = 4;
    /// The reserved byte (0).
    pub const RESERVED: usize = 5;
    /// Where the varint flow count starts.
    pub const COUNT: usize = 6;
}

/// Column encodings (see the module doc).
mod enc {
    pub const RAW: u8 = 0;
    pub const CONST: u8 = 1;
    pub const VARINT: u8 = 2;
    pub const DELTA: u8 = 3;
    pub const FROM_START: u8 = 4;
    pub const DICT: u8 = 5;
}

/// Most entries of an address dictionary.
const MAX_DICT: usize = 255;
/// Entries the encoder tries before it gives up on a dictionary for a column.
const DICT_TRY: usize = 32;

/// What a column holds, which fixes the encodings it may use.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// The flags bytes: raw or const.
    Flags,
    /// Unsigned integers of this many bytes: raw, const, varint or delta.
    Int(usize),
    /// `end_ms`: as `Int(8)`, or from start.
    End,
    /// An address per row; the flag bit says which rows are IPv4.
    Addr(u8),
    /// The next hop of the rows with [`flags::NEXT_HOP`].
    NextHop,
}

/// Number of columns.
const COLUMNS: usize = 27;

/// The columns, in wire order (the field order of [`FlowBatch`]).
const LAYOUT: [(&str, Kind); COLUMNS] = [
    ("flags", Kind::Flags),
    ("exporter", Kind::Addr(flags::EXPORTER_V4)),
    ("domain", Kind::Int(4)),
    ("in_if", Kind::Int(4)),
    ("out_if", Kind::Int(4)),
    ("src_addr", Kind::Addr(flags::SRC_V4)),
    ("dst_addr", Kind::Addr(flags::DST_V4)),
    ("src_port", Kind::Int(2)),
    ("dst_port", Kind::Int(2)),
    ("proto", Kind::Int(1)),
    ("tcp_flags", Kind::Int(1)),
    ("tos", Kind::Int(1)),
    ("packets", Kind::Int(8)),
    ("bytes", Kind::Int(8)),
    ("start_ms", Kind::Int(8)),
    ("end_ms", Kind::End),
    ("src_as", Kind::Int(4)),
    ("dst_as", Kind::Int(4)),
    ("src_mask", Kind::Int(1)),
    ("dst_mask", Kind::Int(1)),
    ("next_hop", Kind::NextHop),
    ("vlan", Kind::Int(2)),
    ("direction", Kind::Int(1)),
    ("sampling_rate", Kind::Int(4)),
    ("icmp_type", Kind::Int(1)),
    ("icmp_code", Kind::Int(1)),
    ("end_reason", Kind::Int(1)),
];

// ---------------------------------------------------------------------------------------------
// Varints

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

#[inline]
fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Reads a varint at `*pos` of `b`, advancing `pos`; `None` when it runs past the end or is
/// longer than 10 bytes / above 2^64.
#[inline]
fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = *b.get(*pos + i)?;
        if i == 9 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Integer columns

/// An unsigned integer column type.
trait Int: Copy + PartialEq {
    const WIDTH: usize;
    fn to_u64(self) -> u64;
    fn from_u64(v: u64) -> Option<Self>;
    fn put_le(self, out: &mut Vec<u8>);
    /// From exactly `WIDTH` little-endian bytes (checked by the caller's `chunks_exact`).
    fn from_le(b: &[u8]) -> Self;
}

macro_rules! int_impl {
    ($t:ty) => {
        impl Int for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            #[inline]
            fn to_u64(self) -> u64 {
                self as u64
            }
            #[inline]
            fn from_u64(v: u64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            #[inline]
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    };
}
int_impl!(u8);
int_impl!(u16);
int_impl!(u32);
int_impl!(u64);

/// Writes one column: its encoding byte, its body length, its body.
fn put_col_header(out: &mut Vec<u8>, encoding: u8, len: usize) {
    out.push(encoding);
    put_varint(out, len as u64);
}

/// Encodes an integer column with the smallest of raw, const, varint and delta (and from start
/// when `start` is given).
fn put_int<T: Int>(out: &mut Vec<u8>, v: &[T], start: Option<&[u64]>) {
    let n = v.len();
    let raw = n * T::WIDTH;
    if n > 0 && v.iter().all(|x| *x == v[0]) {
        put_col_header(out, enc::CONST, T::WIDTH);
        v[0].put_le(out);
        return;
    }
    let mut best = (raw, enc::RAW);
    if T::WIDTH > 1 {
        let varint: usize = v.iter().map(|x| varint_len(x.to_u64())).sum();
        if varint < best.0 {
            best = (varint, enc::VARINT);
        }
        let mut prev = 0u64;
        let delta: usize = v
            .iter()
            .map(|x| {
                let x = x.to_u64();
                let d = x.wrapping_sub(prev) as i64;
                prev = x;
                varint_len(zigzag(d))
            })
            .sum();
        if delta < best.0 {
            best = (delta, enc::DELTA);
        }
        if let Some(s) = start {
            let rel: usize = v
                .iter()
                .zip(s)
                .map(|(x, s)| varint_len(zigzag(x.to_u64().wrapping_sub(*s) as i64)))
                .sum();
            if rel < best.0 {
                best = (rel, enc::FROM_START);
            }
        }
    }
    let (len, encoding) = best;
    put_col_header(out, encoding, len);
    out.reserve(len);
    match encoding {
        enc::VARINT => v.iter().for_each(|x| put_varint(out, x.to_u64())),
        enc::DELTA => {
            let mut prev = 0u64;
            for x in v {
                let x = x.to_u64();
                put_varint(out, zigzag(x.wrapping_sub(prev) as i64));
                prev = x;
            }
        }
        enc::FROM_START => {
            for (x, s) in v.iter().zip(start.unwrap_or(&[])) {
                put_varint(out, zigzag(x.to_u64().wrapping_sub(*s) as i64));
            }
        }
        _ => {
            if T::WIDTH == 1 {
                out.extend(v.iter().map(|x| x.to_u64() as u8));
            } else {
                v.iter().for_each(|x| x.put_le(out));
            }
        }
    }
}

/// Decodes an integer column body (sizes already checked by [`WireBatch::new_checked`]) onto
/// `col`.
fn get_int<T: Int>(
    what: &'static str,
    encoding: u8,
    body: &[u8],
    n: usize,
    col: &mut Vec<T>,
    start: Option<&[u64]>,
) -> Result<(), WireError> {
    match encoding {
        enc::RAW => {
            col.extend(body.chunks_exact(T::WIDTH).map(T::from_le));
            Ok(())
        }
        enc::CONST => {
            let v = body
                .get(..T::WIDTH)
                .map(T::from_le)
                .ok_or_else(|| WireError::malformed(what, "const body shorter than one value"))?;
            col.resize(col.len() + n, v);
            Ok(())
        }
        enc::VARINT | enc::DELTA | enc::FROM_START => {
            col.reserve(n);
            let mut pos = 0;
            let mut prev = 0u64;
            for i in 0..n {
                let z = get_varint(body, &mut pos)
                    .ok_or_else(|| WireError::malformed(what, format!("bad varint in row {i}")))?;
                let x = match encoding {
                    enc::VARINT => z,
                    enc::DELTA => {
                        prev = prev.wrapping_add(unzigzag(z) as u64);
                        prev
                    }
                    _ => {
                        let s = start.and_then(|s| s.get(i)).copied().unwrap_or(0);
                        s.wrapping_add(unzigzag(z) as u64)
                    }
                };
                col.push(T::from_u64(x).ok_or_else(|| {
                    WireError::malformed(
                        what,
                        format!("row {i}: {x} does not fit in {} bytes", T::WIDTH),
                    )
                })?);
            }
            if pos != body.len() {
                return Err(WireError::malformed(
                    what,
                    format!(
                        "{} bytes left after {n} values",
                        body.len().saturating_sub(pos)
                    ),
                ));
            }
            Ok(())
        }
        other => Err(WireError::malformed(
            what,
            format!("encoding {other} is not one of an integer column"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Address columns

/// Whether bit `b` is set in the flags byte `f`.
#[inline]
fn bit(f: u8, b: u8) -> bool {
    f & b != 0
}

/// Encodes the addresses of the rows `rows` selects: const, dictionary or raw (4 bytes for IPv4).
fn put_addrs(out: &mut Vec<u8>, addrs: &[[u8; 16]], fl: &[u8], present: u8, v4_bit: u8) {
    let rows = || {
        addrs
            .iter()
            .zip(fl)
            .filter(move |(_, f)| present == 0 || bit(**f, present))
    };
    let n = rows().count();
    let raw: usize = rows()
        .map(|(_, f)| if bit(*f, v4_bit) { 4 } else { 16 })
        .sum();
    let first = rows().next().map(|(a, _)| *a);
    if let Some(first) = first
        && rows().all(|(a, _)| *a == first)
    {
        put_col_header(out, enc::CONST, 16);
        out.extend_from_slice(&first);
        return;
    }
    // A dictionary pays when few distinct addresses repeat (exporters, a victim).
    if n > 0 {
        let mut dict: Vec<[u8; 16]> = Vec::new();
        let mut fits = true;
        for (a, _) in rows() {
            if !dict.contains(a) {
                if dict.len() == DICT_TRY {
                    fits = false;
                    break;
                }
                dict.push(*a);
            }
        }
        let len = 1 + 16 * dict.len() + n;
        if fits && len < raw {
            put_col_header(out, enc::DICT, len);
            out.push(dict.len() as u8);
            for a in &dict {
                out.extend_from_slice(a);
            }
            for (a, _) in rows() {
                let k = dict.iter().position(|d| d == a).unwrap_or(0);
                out.push(k as u8);
            }
            return;
        }
    }
    put_col_header(out, enc::RAW, raw);
    out.reserve(raw);
    for (a, f) in rows() {
        if bit(*f, v4_bit) {
            out.extend_from_slice(&a[12..]);
        } else {
            out.extend_from_slice(a);
        }
    }
}

/// The IPv4-mapped form of 4 bytes.
#[inline]
fn mapped(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&b[..4]);
    a
}

/// Decodes an address column (sizes checked by [`WireBatch::new_checked`]) onto `col`: one
/// address per row of `fl` (per row with `present` set, zeros for the others, when `present`
/// is not 0).
fn get_addrs(
    what: &'static str,
    encoding: u8,
    body: &[u8],
    fl: &Flags<'_>,
    present: u8,
    v4_bit: u8,
    col: &mut Vec<[u8; 16]>,
) -> Result<(), WireError> {
    let n = fl.len();
    col.reserve(n);
    match encoding {
        enc::CONST => {
            let mut a = [0u8; 16];
            a.copy_from_slice(body.get(..16).unwrap_or(&[0; 16]));
            for i in 0..n {
                col.push(if present == 0 || bit(fl.get(i), present) {
                    a
                } else {
                    [0; 16]
                });
            }
        }
        enc::DICT => {
            let k = usize::from(body.first().copied().unwrap_or(0));
            let entries = body.get(1..1 + 16 * k).unwrap_or(&[]);
            let idx = body.get(1 + 16 * k..).unwrap_or(&[]);
            let mut j = 0;
            for i in 0..n {
                if present != 0 && !bit(fl.get(i), present) {
                    col.push([0; 16]);
                    continue;
                }
                let e = usize::from(idx.get(j).copied().unwrap_or(u8::MAX));
                j += 1;
                let Some(entry) = entries.get(16 * e..16 * e + 16) else {
                    return Err(WireError::malformed(
                        what,
                        format!("row {i}: index {e} into a dictionary of {k}"),
                    ));
                };
                let mut a = [0u8; 16];
                a.copy_from_slice(entry);
                col.push(a);
            }
        }
        _ => {
            let mut pos = 0;
            for i in 0..n {
                let f = fl.get(i);
                if present != 0 && !bit(f, present) {
                    col.push([0; 16]);
                    continue;
                }
                let w = if bit(f, v4_bit) { 4 } else { 16 };
                let Some(b) = body.get(pos..pos + w) else {
                    return Err(WireError::malformed(what, format!("row {i} past the end")));
                };
                pos += w;
                col.push(if w == 4 {
                    mapped(b)
                } else {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    a
                });
            }
        }
    }
    Ok(())
}

/// The flags column of a checked batch, raw or const.
struct Flags<'a> {
    raw: Option<&'a [u8]>,
    value: u8,
    n: usize,
}

impl Flags<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.n
    }
    #[inline]
    fn get(&self, i: usize) -> u8 {
        match self.raw {
            Some(r) => r.get(i).copied().unwrap_or(0),
            None => self.value,
        }
    }
    /// Rows with every bit of `mask` set.
    fn count(&self, mask: u8) -> usize {
        match self.raw {
            Some(r) => r.iter().filter(|f| **f & mask == mask).count(),
            None if self.value & mask == mask => self.n,
            None => 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder

/// Appends the encoding of `b` to `out` (which is not cleared).
///
/// # Panics
/// When `b` holds more than [`MAX_FLOWS`] flows (split it: the publisher's `batch_flows` is at
/// most that), or when its columns have different lengths (a broken [`FlowBatch`]).
pub fn encode(b: &FlowBatch, out: &mut Vec<u8>) {
    let n = b.len();
    assert!(
        n <= MAX_FLOWS,
        "a flow batch of {n} flows: at most {MAX_FLOWS} fit one message"
    );
    out.reserve(16 + n * 24);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    put_varint(out, n as u64);
    let fl = &b.flags[..n];
    put_int(out, fl, None);
    put_addrs(out, &b.exporter[..n], fl, 0, flags::EXPORTER_V4);
    put_int(out, &b.domain[..n], None);
    put_int(out, &b.in_if[..n], None);
    put_int(out, &b.out_if[..n], None);
    put_addrs(out, &b.src_addr[..n], fl, 0, flags::SRC_V4);
    put_addrs(out, &b.dst_addr[..n], fl, 0, flags::DST_V4);
    put_int(out, &b.src_port[..n], None);
    put_int(out, &b.dst_port[..n], None);
    put_int(out, &b.proto[..n], None);
    put_int(out, &b.tcp_flags[..n], None);
    put_int(out, &b.tos[..n], None);
    put_int(out, &b.packets[..n], None);
    put_int(out, &b.bytes[..n], None);
    put_int(out, &b.start_ms[..n], None);
    put_int(out, &b.end_ms[..n], Some(&b.start_ms[..n]));
    put_int(out, &b.src_as[..n], None);
    put_int(out, &b.dst_as[..n], None);
    put_int(out, &b.src_mask[..n], None);
    put_int(out, &b.dst_mask[..n], None);
    put_addrs(
        out,
        &b.next_hop[..n],
        fl,
        flags::NEXT_HOP,
        flags::NEXT_HOP_V4,
    );
    put_int(out, &b.vlan[..n], None);
    put_int(out, &b.direction[..n], None);
    put_int(out, &b.sampling_rate[..n], None);
    put_int(out, &b.icmp_type[..n], None);
    put_int(out, &b.icmp_code[..n], None);
    put_int(out, &b.end_reason[..n], None);
}

/// Decodes one encoded batch into a new [`FlowBatch`].
pub fn decode(buf: &[u8]) -> Result<FlowBatch, WireError> {
    let mut out = FlowBatch::new();
    WireBatch::new_checked(buf)?.decode_into(&mut out)?;
    Ok(out)
}

/// Decodes one encoded batch onto the end of `out` (a reusable batch); returns the number of
/// flows appended. On an error nothing is appended.
pub fn decode_into(buf: &[u8], out: &mut FlowBatch) -> Result<usize, WireError> {
    WireBatch::new_checked(buf)?.decode_into(out)
}

// ---------------------------------------------------------------------------------------------
// Checked view

/// Where one column's body is, and how it is encoded.
#[derive(Debug, Clone, Copy, Default)]
struct Col {
    encoding: u8,
    start: usize,
    end: usize,
}

/// An encoded flow batch, borrowed. After [`WireBatch::new_checked`] succeeds every column lies
/// inside the buffer and has the size its encoding implies; no accessor panics.
#[derive(Debug, Clone)]
pub struct WireBatch<T: AsRef<[u8]>> {
    buf: T,
    count: usize,
    cols: [Col; COLUMNS],
}

/// Checks that `b` has `need` bytes from `at`.
fn need(what: &'static str, b: &[u8], at: usize, need: usize) -> Result<(), WireError> {
    let have = b.len().saturating_sub(at);
    if have < need {
        return Err(WireError::Truncated { what, need, have });
    }
    Ok(())
}

impl<T: AsRef<[u8]>> WireBatch<T> {
    /// Wraps `buf` after checking the magic, the version, the flow count (at most
    /// [`MAX_FLOWS`]), that every column is present with an encoding its kind allows and a body of
    /// the length that encoding implies, and that nothing follows the last column.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        need("header", b, 0, field::COUNT + 1)?;
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&b[field::MAGIC]);
        if magic != MAGIC {
            return Err(WireError::BadMagic { found: magic });
        }
        if b[field::VERSION] != VERSION {
            return Err(WireError::UnsupportedVersion(b[field::VERSION]));
        }
        if b[field::RESERVED] != 0 {
            return Err(WireError::malformed(
                "header",
                format!("reserved byte is {}, expected 0", b[field::RESERVED]),
            ));
        }
        let mut pos = field::COUNT;
        let count = get_varint(b, &mut pos).ok_or_else(|| {
            WireError::malformed("header", "the flow count is not a valid varint")
        })?;
        if count > MAX_FLOWS as u64 {
            return Err(WireError::TooManyFlows { count });
        }
        let n = count as usize;
        let mut cols = [Col::default(); COLUMNS];
        let mut fl: Option<Flags<'_>> = None;
        for (i, (what, kind)) in LAYOUT.iter().enumerate() {
            need(what, b, pos, 2)?;
            let encoding = b[pos];
            pos += 1;
            let len = get_varint(b, &mut pos)
                .ok_or_else(|| WireError::malformed(what, "the length is not a valid varint"))?;
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            need(what, b, pos, len)?;
            let body = &b[pos..pos + len];
            let size_err = |expected: String| {
                WireError::malformed(
                    what,
                    format!(
                        "encoding {encoding} with {len} bytes for {n} rows, expected {expected}"
                    ),
                )
            };
            match (kind, encoding) {
                (Kind::Flags, enc::RAW) if len == n => {
                    fl = Some(Flags {
                        raw: Some(body),
                        value: 0,
                        n,
                    })
                }
                (Kind::Flags, enc::CONST) if len == 1 => {
                    fl = Some(Flags {
                        raw: None,
                        value: body[0],
                        n,
                    })
                }
                (Kind::Flags, _) => return Err(size_err("raw n or const 1 byte".into())),
                (Kind::Int(w), enc::RAW) if len == n * w => {}
                (Kind::End, enc::RAW) if len == n * 8 => {}
                (Kind::Int(w), enc::CONST) if len == *w => {}
                (Kind::End, enc::CONST) if len == 8 => {}
                (Kind::Int(_) | Kind::End, enc::VARINT | enc::DELTA)
                | (Kind::End, enc::FROM_START)
                    if (n..=n * 10).contains(&len) => {}
                (Kind::Int(_) | Kind::End, _) => {
                    return Err(size_err(
                        "raw, const, varint or delta (from start: end_ms only) of a matching size"
                            .into(),
                    ));
                }
                (Kind::Addr(_) | Kind::NextHop, _) => {
                    let f = fl.as_ref().ok_or_else(|| {
                        WireError::malformed(what, "address column before the flags column")
                    })?;
                    let (rows, rows4) = match kind {
                        Kind::Addr(v4) => (n, f.count(*v4)),
                        _ => (
                            f.count(flags::NEXT_HOP),
                            f.count(flags::NEXT_HOP | flags::NEXT_HOP_V4),
                        ),
                    };
                    let ok = match encoding {
                        enc::RAW => len == rows4 * 4 + (rows - rows4) * 16,
                        enc::CONST => len == 16,
                        enc::DICT => {
                            let k = usize::from(body.first().copied().unwrap_or(0));
                            (1..=MAX_DICT).contains(&k) && len == 1 + 16 * k + rows
                        }
                        _ => false,
                    };
                    if !ok {
                        return Err(size_err(format!(
                            "raw ({rows4} IPv4 of {rows} addresses), const 16 bytes or a \
                             dictionary of 1..255 entries and {rows} indexes"
                        )));
                    }
                }
            }
            cols[i] = Col {
                encoding,
                start: pos,
                end: pos + len,
            };
            pos += len;
        }
        if pos != b.len() {
            return Err(WireError::malformed(
                "batch",
                format!("{} bytes after the last column", b.len() - pos),
            ));
        }
        Ok(Self {
            buf,
            count: n,
            cols,
        })
    }

    /// The version of the encoding.
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[field::VERSION]
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no flow.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    fn body(&self, i: usize) -> (u8, &[u8]) {
        let c = self.cols[i];
        (
            c.encoding,
            self.buf.as_ref().get(c.start..c.end).unwrap_or(&[]),
        )
    }

    fn flags(&self) -> Flags<'_> {
        let (encoding, body) = self.body(0);
        if encoding == enc::RAW {
            Flags {
                raw: Some(body),
                value: 0,
                n: self.count,
            }
        } else {
            Flags {
                raw: None,
                value: body.first().copied().unwrap_or(0),
                n: self.count,
            }
        }
    }

    /// Appends every flow to `out`; returns how many. On an error (a malformed varint, a value
    /// too large for its column, a dictionary index out of range) `out` is left as it was.
    pub fn decode_into(&self, out: &mut FlowBatch) -> Result<usize, WireError> {
        let len = out.len();
        let r = self.decode_columns(out);
        if r.is_err() {
            out.truncate(len);
        }
        r.map(|()| self.count)
    }

    fn decode_columns(&self, out: &mut FlowBatch) -> Result<(), WireError> {
        let n = self.count;
        let fl = self.flags();
        macro_rules! int {
            ($i:expr, $col:ident) => {{
                let (e, body) = self.body($i);
                get_int(LAYOUT[$i].0, e, body, n, &mut out.$col, None)?;
            }};
        }
        macro_rules! addr {
            ($i:expr, $col:ident, $present:expr, $v4:expr) => {{
                let (e, body) = self.body($i);
                get_addrs(LAYOUT[$i].0, e, body, &fl, $present, $v4, &mut out.$col)?;
            }};
        }
        int!(0, flags);
        addr!(1, exporter, 0, flags::EXPORTER_V4);
        int!(2, domain);
        int!(3, in_if);
        int!(4, out_if);
        addr!(5, src_addr, 0, flags::SRC_V4);
        addr!(6, dst_addr, 0, flags::DST_V4);
        int!(7, src_port);
        int!(8, dst_port);
        int!(9, proto);
        int!(10, tcp_flags);
        int!(11, tos);
        int!(12, packets);
        int!(13, bytes);
        int!(14, start_ms);
        {
            let (e, body) = self.body(15);
            let s0 = out.start_ms.len().saturating_sub(n);
            let (start, end) = (&out.start_ms[s0..], &mut out.end_ms);
            get_int(LAYOUT[15].0, e, body, n, end, Some(start))?;
        }
        int!(16, src_as);
        int!(17, dst_as);
        int!(18, src_mask);
        int!(19, dst_mask);
        addr!(20, next_hop, flags::NEXT_HOP, flags::NEXT_HOP_V4);
        int!(21, vlan);
        int!(22, direction);
        int!(23, sampling_rate);
        int!(24, icmp_type);
        int!(25, icmp_code);
        int!(26, end_reason);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::flow::FlowRecord;

    fn rec(i: u64) -> FlowRecord {
        FlowRecord {
            exporter: "192.0.2.1".parse().unwrap(),
            domain: 7,
            src_addr: std::net::Ipv4Addr::from(0x0a00_0000 | i as u32).into(),
            dst_addr: if i.is_multiple_of(3) {
                "2001:db8::1".parse().unwrap()
            } else {
                "198.51.100.7".parse().unwrap()
            },
            src_port: (40_000 + i) as u16,
            dst_port: 443,
            proto: 6,
            tcp_flags: 0x1b,
            packets: 1 + i % 7,
            bytes: 60 + i * 13,
            start_ms: 1_796_644_800_000 + i * 3,
            end_ms: 1_796_644_800_000 + i * 3 + 250,
            next_hop: i.is_multiple_of(2).then(|| "10.0.0.254".parse().unwrap()),
            vlan: i.is_multiple_of(4).then_some(12),
            sampling_rate: 1,
            ..FlowRecord::default()
        }
    }

    #[test]
    fn varints_round_trip_at_every_length_and_refuse_overlong() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(get_varint(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
        }
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut pos), None);
        assert_eq!(
            get_varint(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                &mut pos
            ),
            None
        );
        assert_eq!(get_varint(&[0x80], &mut pos), None);
        for d in [0i64, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
    }

    #[test]
    fn a_batch_round_trips_and_is_much_smaller_than_its_columns() {
        let mut b = FlowBatch::new();
        for i in 0..1000 {
            b.push(&rec(i));
        }
        let mut buf = Vec::new();
        encode(&b, &mut buf);
        assert_eq!(decode(&buf).unwrap(), b);
        // 16-byte addresses and 8-byte counters would be ~150 bytes a flow.
        assert!(buf.len() < 1000 * 30, "{} bytes", buf.len());
    }

    #[test]
    fn the_empty_batch_round_trips() {
        let mut buf = Vec::new();
        encode(&FlowBatch::new(), &mut buf);
        assert_eq!(decode(&buf).unwrap(), FlowBatch::new());
    }

    #[test]
    fn a_decode_error_appends_nothing() {
        let mut b = FlowBatch::new();
        b.push(&rec(1));
        b.push(&rec(2));
        let mut buf = Vec::new();
        encode(&b, &mut buf);
        // A hand-built batch whose src_port column (varint) holds 2^21 - 1: passes the size
        // checks, fails in the decode after several columns were appended.
        let mut out = FlowBatch::new();
        out.push(&rec(9));
        let before = out.clone();
        let mut bad = Vec::new();
        bad.extend_from_slice(&MAGIC);
        bad.extend_from_slice(&[VERSION, 0, 1]);
        for (what, kind) in LAYOUT {
            let _ = what;
            match kind {
                Kind::Flags => bad.extend_from_slice(&[enc::CONST, 1, 0]),
                Kind::Addr(_) => {
                    bad.extend_from_slice(&[enc::CONST, 16]);
                    bad.extend_from_slice(&[0; 16]);
                }
                Kind::NextHop => bad.extend_from_slice(&[enc::RAW, 0]),
                Kind::Int(2) => bad.extend_from_slice(&[enc::VARINT, 3, 0xff, 0xff, 0x7f]),
                Kind::Int(w) => {
                    bad.push(enc::RAW);
                    bad.push(w as u8);
                    bad.extend(std::iter::repeat_n(0, w));
                }
                Kind::End => bad.extend_from_slice(&[enc::VARINT, 1, 5]),
            }
        }
        let err = decode_into(&bad, &mut out).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::Malformed {
                    what: "src_port",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(out, before);
    }
}
