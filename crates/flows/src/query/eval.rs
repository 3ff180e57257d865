//! Filter evaluation over decoded column slices: a filter expression becomes one selection bitmap
//! per batch (vectorised, no per-row record).
use std::net::IpAddr;

use arrow_array::{
    Array, FixedSizeBinaryArray, RecordBatch, TimestampMillisecondArray, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow_buffer::BooleanBuffer;
use ipnet::IpNet;
use pharos_model::flow::flags;

use crate::filter::{CmpOp, Expr, Family, IfSide, Pred, Side};
use crate::schema::col;

/// Column slices of one decoded batch (only the projected ones are `Some`).
#[derive(Default)]
pub(super) struct Cols<'a> {
    pub(super) n: usize,
    pub(super) family: Option<&'a [u8]>,
    pub(super) exporter: Option<&'a [u8]>,
    pub(super) src_addr: Option<&'a [u8]>,
    pub(super) dst_addr: Option<&'a [u8]>,
    pub(super) in_if: Option<&'a [u32]>,
    pub(super) out_if: Option<&'a [u32]>,
    pub(super) src_port: Option<&'a [u16]>,
    pub(super) dst_port: Option<&'a [u16]>,
    pub(super) proto: Option<&'a [u8]>,
    pub(super) tcp_flags: Option<&'a [u8]>,
    pub(super) tos: Option<&'a [u8]>,
    pub(super) packets: Option<&'a [u64]>,
    pub(super) bytes: Option<&'a [u64]>,
    pub(super) start: Option<&'a [i64]>,
    pub(super) end: Option<&'a [i64]>,
    pub(super) src_as: Option<&'a [u32]>,
    pub(super) dst_as: Option<&'a [u32]>,
    pub(super) vlan: Option<&'a UInt16Array>,
    pub(super) icmp_type: Option<&'a [u8]>,
    pub(super) icmp_code: Option<&'a [u8]>,
}

pub(super) fn prim<'a, A: Array + 'static>(rb: &'a RecordBatch, name: &str) -> Option<&'a A> {
    rb.column_by_name(name)?.as_any().downcast_ref::<A>()
}

pub(super) fn addr_col<'a>(rb: &'a RecordBatch, name: &str) -> Option<&'a [u8]> {
    let a = prim::<FixedSizeBinaryArray>(rb, name)?;
    if a.value_size() != 16 {
        return None;
    }
    // The values buffer starts at the array's first element (slicing slices the buffer).
    a.value_data().get(..16 * a.len())
}

impl<'a> Cols<'a> {
    pub(super) fn new(rb: &'a RecordBatch) -> Self {
        let u8c = |n| prim::<UInt8Array>(rb, n).map(|a| &a.values()[..]);
        let u16c = |n| prim::<UInt16Array>(rb, n).map(|a| &a.values()[..]);
        let u32c = |n| prim::<UInt32Array>(rb, n).map(|a| &a.values()[..]);
        let u64c = |n| prim::<UInt64Array>(rb, n).map(|a| &a.values()[..]);
        let tsc = |n| prim::<TimestampMillisecondArray>(rb, n).map(|a| &a.values()[..]);
        Cols {
            n: rb.num_rows(),
            family: u8c(col::FAMILY),
            exporter: addr_col(rb, col::EXPORTER),
            src_addr: addr_col(rb, col::SRC_ADDR),
            dst_addr: addr_col(rb, col::DST_ADDR),
            in_if: u32c(col::IN_IF),
            out_if: u32c(col::OUT_IF),
            src_port: u16c(col::SRC_PORT),
            dst_port: u16c(col::DST_PORT),
            proto: u8c(col::PROTO),
            tcp_flags: u8c(col::TCP_FLAGS),
            tos: u8c(col::TOS),
            packets: u64c(col::PACKETS),
            bytes: u64c(col::BYTES),
            start: tsc(col::START_TIME),
            end: tsc(col::END_TIME),
            src_as: u32c(col::SRC_AS),
            dst_as: u32c(col::DST_AS),
            vlan: prim::<UInt16Array>(rb, col::VLAN),
            icmp_type: u8c(col::ICMP_TYPE),
            icmp_code: u8c(col::ICMP_CODE),
        }
    }
}

/// A column that the projection promised; a missing one means a segment of another schema.
pub(super) fn need<'a, T: ?Sized>(c: Option<&'a T>, name: &str) -> Result<&'a T, String> {
    c.ok_or_else(|| format!("column {name} is missing or not of the flow schema"))
}

#[inline]
pub(super) fn u128_at(flat: &[u8], i: usize) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&flat[i * 16..i * 16 + 16]);
    u128::from_be_bytes(b)
}

pub(super) const MAPPED_V4: u128 = 0xffff_0000_0000;

/// `(value, mask, v4)` of a prefix over the stored 16-byte form.
pub(super) fn prefix_bits(net: &IpNet) -> (u128, u128, bool) {
    let (addr, len, v4) = match net {
        IpNet::V4(n) => (
            MAPPED_V4 | u128::from(u32::from(n.network())),
            96 + u32::from(n.prefix_len()),
            true,
        ),
        IpNet::V6(n) => (u128::from(n.network()), u32::from(n.prefix_len()), false),
    };
    let mask = if len == 0 { 0 } else { !0u128 << (128 - len) };
    (addr & mask, mask, v4)
}

pub(super) fn stored(a: &IpAddr) -> (u128, bool) {
    match a {
        IpAddr::V4(v) => (MAPPED_V4 | u128::from(u32::from(*v)), true),
        IpAddr::V6(v) => (u128::from(*v), false),
    }
}

pub(super) fn cmp_col<T: Copy + Ord>(v: &[T], op: CmpOp, value: T) -> BooleanBuffer {
    match op {
        CmpOp::Eq => BooleanBuffer::collect_bool(v.len(), |i| v[i] == value),
        CmpOp::Ne => BooleanBuffer::collect_bool(v.len(), |i| v[i] != value),
        CmpOp::Lt => BooleanBuffer::collect_bool(v.len(), |i| v[i] < value),
        CmpOp::Le => BooleanBuffer::collect_bool(v.len(), |i| v[i] <= value),
        CmpOp::Gt => BooleanBuffer::collect_bool(v.len(), |i| v[i] > value),
        CmpOp::Ge => BooleanBuffer::collect_bool(v.len(), |i| v[i] >= value),
    }
}

/// Rows of a side: `src`, `dst` or either.
pub(super) fn sided(
    side: Side,
    f: impl Fn(bool) -> Result<BooleanBuffer, String>,
) -> Result<BooleanBuffer, String> {
    Ok(match side {
        Side::Src => f(true)?,
        Side::Dst => f(false)?,
        Side::Either => &f(true)? | &f(false)?,
    })
}

pub(super) fn proto_in(c: &Cols, protos: &[u8]) -> Result<BooleanBuffer, String> {
    let p = need(c.proto, col::PROTO)?;
    Ok(BooleanBuffer::collect_bool(c.n, |i| protos.contains(&p[i])))
}

pub(super) fn eval_pred(p: &Pred, c: &Cols) -> Result<BooleanBuffer, String> {
    let n = c.n;
    let fam = || need(c.family, col::FAMILY);
    let addrs = |src: bool| {
        if src {
            Ok((need(c.src_addr, col::SRC_ADDR)?, flags::SRC_V4))
        } else {
            Ok::<_, String>((need(c.dst_addr, col::DST_ADDR)?, flags::DST_V4))
        }
    };
    Ok(match *p {
        Pred::Proto(v) => cmp_col(need(c.proto, col::PROTO)?, CmpOp::Eq, v),
        Pred::Host { side, addr } => {
            let (want, v4) = stored(&addr);
            let fam = fam()?;
            sided(side, |src| {
                let (a, bit) = addrs(src)?;
                Ok(BooleanBuffer::collect_bool(n, |i| {
                    u128_at(a, i) == want && ((fam[i] & bit) != 0) == v4
                }))
            })?
        }
        Pred::Net { side, net } => {
            let (want, mask, v4) = prefix_bits(&net);
            let fam = fam()?;
            sided(side, |src| {
                let (a, bit) = addrs(src)?;
                Ok(BooleanBuffer::collect_bool(n, |i| {
                    u128_at(a, i) & mask == want && ((fam[i] & bit) != 0) == v4
                }))
            })?
        }
        Pred::Port { side, op, value } => sided(side, |src| {
            let v = if src {
                need(c.src_port, col::SRC_PORT)?
            } else {
                need(c.dst_port, col::DST_PORT)?
            };
            Ok(cmp_col(v, op, value))
        })?,
        Pred::As { side, op, value } => sided(side, |src| {
            let v = if src {
                need(c.src_as, col::SRC_AS)?
            } else {
                need(c.dst_as, col::DST_AS)?
            };
            Ok(&cmp_col(v, op, value) & &cmp_col(v, CmpOp::Ne, 0))
        })?,
        Pred::Interface { side, index } => {
            let is = |v: &[u32]| BooleanBuffer::collect_bool(n, |i| v[i] != 0 && v[i] == index);
            match side {
                IfSide::In => is(need(c.in_if, col::IN_IF)?),
                IfSide::Out => is(need(c.out_if, col::OUT_IF)?),
                IfSide::Either => {
                    &is(need(c.in_if, col::IN_IF)?) | &is(need(c.out_if, col::OUT_IF)?)
                }
            }
        }
        Pred::Vlan(v) => {
            let a = need(c.vlan, col::VLAN)?;
            let vals = a.values();
            let eq = BooleanBuffer::collect_bool(n, |i| vals[i] == v);
            match a.nulls() {
                Some(nulls) => &eq & nulls.inner(),
                None => eq,
            }
        }
        Pred::Bytes { op, value } => cmp_col(need(c.bytes, col::BYTES)?, op, value),
        Pred::Packets { op, value } => cmp_col(need(c.packets, col::PACKETS)?, op, value),
        Pred::Flags(mask) => {
            let p = need(c.proto, col::PROTO)?;
            let f = need(c.tcp_flags, col::TCP_FLAGS)?;
            BooleanBuffer::collect_bool(n, |i| p[i] == 6 && f[i] & mask == mask)
        }
        Pred::Tos { op, value } => cmp_col(need(c.tos, col::TOS)?, op, value),
        Pred::IcmpType { op, value } => {
            &proto_in(c, &[1, 58])? & &cmp_col(need(c.icmp_type, col::ICMP_TYPE)?, op, value)
        }
        Pred::IcmpCode { op, value } => {
            &proto_in(c, &[1, 58])? & &cmp_col(need(c.icmp_code, col::ICMP_CODE)?, op, value)
        }
        Pred::Family(f) => {
            let fam = fam()?;
            let both = flags::SRC_V4 | flags::DST_V4;
            match f {
                Family::V4 => BooleanBuffer::collect_bool(n, |i| fam[i] & both == both),
                Family::V6 => BooleanBuffer::collect_bool(n, |i| fam[i] & both == 0),
            }
        }
    })
}

pub(super) fn eval(e: &Expr, c: &Cols) -> Result<BooleanBuffer, String> {
    Ok(match e {
        Expr::Any => BooleanBuffer::new_set(c.n),
        Expr::Pred(p) => eval_pred(p, c)?,
        Expr::Not(x) => !&eval(x, c)?,
        Expr::And(v) => {
            let mut acc = BooleanBuffer::new_set(c.n);
            for x in v {
                acc = &acc & &eval(x, c)?;
            }
            acc
        }
        Expr::Or(v) => {
            let mut acc = BooleanBuffer::new_unset(c.n);
            for x in v {
                acc = &acc | &eval(x, c)?;
            }
            acc
        }
    })
}
