//! Queries over the flow archive: a filter ([`super::filter`]) and a time window select flows;
//! top-N by a key, time series and raw listings aggregate them.
//!
//! Contract:
//! - The answer is the one [`super::filter::matches`] gives row by row over every stored flow
//!   inside the window (a property test holds the engine to it).
//! - Window: like `nfdump -t`, a flow is inside `[from, to]` when it started at or after `from`
//!   and ended at or before `to` (both in Unix ms, both optional).
//! - Segments and row groups whose footer or statistics prove that no flow can be inside the
//!   window are not read; only the columns the filter, the key and the window use are read.
//!   Segments that finished more than [`MAX_CLOCK_SKEW_MS`] before the window's start are not
//!   even opened (flows are received after they end, unless the exporter's clock runs ahead).
//! - Work is spread over threads one row group at a time; results do not depend on the count.
//! - A segment that cannot be read (damaged, deleted by retention during the scan) is skipped,
//!   named in [`ScanStats::errors`] and does not fail the query.

use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arrow_array::{
    Array, FixedSizeBinaryArray, RecordBatch, TimestampMillisecondArray, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow_buffer::BooleanBuffer;
use ipnet::IpNet;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::statistics::Statistics;
use pharos_model::flow::{FlowBatch, FlowRecord, flags};

use super::filter::{CmpOp, Expr, Family, IfSide, Pred, Side};
use super::schema::{col, from_record_batch};
use super::segment::list_segments;

/// Rows decoded at a time.
const BATCH_ROWS: usize = 64 * 1024;
/// Most distinct groups one aggregation keeps (bounds memory on untrusted queries).
pub const MAX_GROUPS: usize = 20_000_000;
/// Most rows a listing returns.
pub const MAX_LIMIT: usize = 1_000_000;
/// Most times a scan restarts because segments vanished under it.
pub const MAX_RESTARTS: u64 = 3;
/// Most time-series buckets.
pub const MAX_BUCKETS: u64 = 100_000;
/// Most points of a series answer, counting every key value's series (they are zero-filled, so
/// their number is intervals times series).
pub const MAX_POINTS: u64 = 5_000_000;

/// Errors of a query (bad arguments; unreadable segments are not errors, see [`ScanStats`]).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The aggregation key is not one of the known keys.
    #[error(
        "unknown key {0:?}: use srcip, dstip, ip, srcport, dstport, port, proto, srcas, dstas, as, exporter, inif, outif, tos, or a prefix such as srcip4/24 or dstip6/48"
    )]
    Key(String),
    /// The order is not flows, packets or bytes.
    #[error("unknown order {0:?}: use flows, packets or bytes")]
    Metric(String),
    /// An interval could not be read.
    #[error("cannot read the interval {0:?}: use a duration such as 10s, 1m, 5m, 1h, 1d")]
    Interval(String),
    /// The window ends before it starts.
    #[error("the time window ends ({to}) before it starts ({from}): swap from and to")]
    Window {
        /// Start, Unix ms.
        from: u64,
        /// End, Unix ms.
        to: u64,
    },
    /// The aggregation grew beyond [`MAX_GROUPS`] distinct keys or [`MAX_BUCKETS`] buckets.
    #[error("{0}: narrow the filter or the time window, or use a shorter prefix")]
    TooBig(String),
}

// ---------------------------------------------------------------------------------------------
// Keys and metrics

/// What a top-N or series orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Number of flows.
    Flows,
    /// Sum of packets.
    Packets,
    /// Sum of bytes.
    Bytes,
}

impl FromStr for Metric {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "flows" | "flow" | "records" => Ok(Metric::Flows),
            "packets" | "pkts" | "packet" => Ok(Metric::Packets),
            "bytes" | "byte" | "octets" => Ok(Metric::Bytes),
            _ => Err(QueryError::Metric(s.to_string())),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::Flows => "flows",
            Metric::Packets => "packets",
            Metric::Bytes => "bytes",
        })
    }
}

/// The field a key groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyField {
    /// Source address (or prefix).
    SrcAddr,
    /// Destination address (or prefix).
    DstAddr,
    /// Either address: a flow counts for its source and for its destination.
    Addr,
    /// Source port.
    SrcPort,
    /// Destination port.
    DstPort,
    /// Either port.
    Port,
    /// IP protocol.
    Proto,
    /// Source AS.
    SrcAs,
    /// Destination AS.
    DstAs,
    /// Either AS.
    As,
    /// Exporter address.
    Exporter,
    /// Input interface.
    InIf,
    /// Output interface.
    OutIf,
    /// Type of service.
    Tos,
}

/// An aggregation key: a field, for addresses optionally cut to a prefix of one family
/// (`srcip4/24` groups IPv4 sources by /24 and leaves IPv6 flows out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The field.
    pub field: KeyField,
    /// For address keys: only this family, cut to this prefix length.
    pub prefix: Option<(Family, u8)>,
}

impl FromStr for Key {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        let err = || QueryError::Key(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        let (name, len) = match lower.split_once('/') {
            Some((n, l)) => (n, Some(l.parse::<u8>().map_err(|_| err())?)),
            None => (lower.as_str(), None),
        };
        let addr = |field: KeyField, fam: Option<Family>| -> Result<Key, QueryError> {
            let prefix = match (fam, len) {
                (None, None) => None,
                (Some(f), None) => Some((f, if f == Family::V4 { 32 } else { 128 })),
                (Some(f), Some(l)) if l <= if f == Family::V4 { 32 } else { 128 } => Some((f, l)),
                _ => return Err(err()),
            };
            Ok(Key { field, prefix })
        };
        let plain = |field: KeyField| match len {
            None => Ok(Key {
                field,
                prefix: None,
            }),
            Some(_) => Err(err()),
        };
        use KeyField::*;
        let fam_of = |n: &str, base: &str| -> Option<Option<Family>> {
            match n.strip_prefix(base)? {
                "" => Some(None),
                "4" => Some(Some(Family::V4)),
                "6" => Some(Some(Family::V6)),
                _ => None,
            }
        };
        for (base, field) in [("srcip", SrcAddr), ("dstip", DstAddr), ("ip", Addr)] {
            if let Some(fam) = fam_of(name, base) {
                return addr(field, fam);
            }
        }
        match name {
            "srcaddr" | "src" => addr(SrcAddr, None),
            "dstaddr" | "dst" => addr(DstAddr, None),
            "srcport" => plain(SrcPort),
            "dstport" => plain(DstPort),
            "port" => plain(Port),
            "proto" | "protocol" => plain(Proto),
            "srcas" => plain(SrcAs),
            "dstas" => plain(DstAs),
            "as" => plain(As),
            "exporter" | "router" => plain(Exporter),
            "inif" | "in" => plain(InIf),
            "outif" | "out" => plain(OutIf),
            "tos" => plain(Tos),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyField::*;
        let base = match self.field {
            SrcAddr => "srcip",
            DstAddr => "dstip",
            Addr => "ip",
            SrcPort => "srcport",
            DstPort => "dstport",
            Port => "port",
            Proto => "proto",
            SrcAs => "srcas",
            DstAs => "dstas",
            As => "as",
            Exporter => "exporter",
            InIf => "inif",
            OutIf => "outif",
            Tos => "tos",
        };
        match self.prefix {
            None => f.write_str(base),
            Some((fam, len)) => {
                let v = if fam == Family::V4 { 4 } else { 6 };
                write!(f, "{base}{v}/{len}")
            }
        }
    }
}

/// One value of a key, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyValue {
    /// An address.
    Addr(IpAddr),
    /// A prefix (keys such as `srcip4/24`).
    Net(IpNet),
    /// A port, protocol, AS number, interface index or TOS.
    Num(u32),
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Addr(a) => a.fmt(f),
            KeyValue::Net(n) => n.fmt(f),
            KeyValue::Num(n) => n.fmt(f),
        }
    }
}

impl serde::Serialize for KeyValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            KeyValue::Num(n) => s.serialize_u32(*n),
            other => s.collect_str(other),
        }
    }
}

/// Flows, packets and bytes of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Totals {
    #[inline]
    fn add(&mut self, packets: u64, bytes: u64) {
        self.flows += 1;
        self.packets = self.packets.saturating_add(packets);
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn merge(&mut self, o: &Totals) {
        self.flows += o.flows;
        self.packets = self.packets.saturating_add(o.packets);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }

    /// The value of `m`.
    pub fn get(&self, m: Metric) -> u64 {
        match m {
            Metric::Flows => self.flows,
            Metric::Packets => self.packets,
            Metric::Bytes => self.bytes,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scan

/// What a query selects: a filter and an optional window.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The filter.
    pub filter: Expr,
    /// Flows that started at or after this Unix ms.
    pub from_ms: Option<u64>,
    /// Flows that ended at or before this Unix ms.
    pub to_ms: Option<u64>,
}

impl Selection {
    /// Every flow.
    pub fn all() -> Self {
        Self {
            filter: Expr::Any,
            from_ms: None,
            to_ms: None,
        }
    }

    /// Whether one flow is selected: the reference semantics.
    pub fn matches(&self, f: &FlowRecord) -> bool {
        self.from_ms.is_none_or(|t| f.start_ms >= t)
            && self.to_ms.is_none_or(|t| f.end_ms <= t)
            && super::filter::matches(&self.filter, f)
    }

    fn check(&self) -> Result<(), QueryError> {
        match (self.from_ms, self.to_ms) {
            (Some(from), Some(to)) if to < from => Err(QueryError::Window { from, to }),
            _ => Ok(()),
        }
    }
}

/// Progress of a running scan, readable from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Row groups to read (known once planning is done).
    pub total: AtomicU64,
    /// Row groups read.
    pub done: AtomicU64,
    /// Rows read.
    pub rows: AtomicU64,
}

/// What a scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanStats {
    /// Segments in the archive.
    pub segments: u64,
    /// Segments skipped because their footer puts every flow outside the window.
    pub segments_pruned: u64,
    /// Row groups read.
    pub row_groups: u64,
    /// Row groups skipped by their statistics.
    pub row_groups_pruned: u64,
    /// Rows read.
    pub rows_scanned: u64,
    /// Rows selected.
    pub rows_matched: u64,
    /// Segments that could not be read, with the reason.
    pub errors: Vec<String>,
    /// Scans restarted because a segment vanished under them (merged or expired meanwhile).
    pub restarts: u64,
    #[serde(skip)]
    vanished: u64,
}

impl ScanStats {
    fn merge(&mut self, o: ScanStats) {
        self.row_groups += o.row_groups;
        self.rows_scanned += o.rows_scanned;
        self.rows_matched += o.rows_matched;
        self.errors.extend(o.errors);
        self.vanished += o.vanished;
    }
}

/// A query over the archive under `root` (`<data_dir>/flows`).
#[derive(Debug, Clone)]
pub struct Scan {
    /// Archive root.
    pub root: PathBuf,
    /// What to select.
    pub selection: Selection,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Updated while the scan runs, when set.
    pub progress: Option<Arc<Progress>>,
}

/// One row group to read.
struct Unit {
    path: Arc<PathBuf>,
    meta: ArrowReaderMetadata,
    row_group: usize,
}

/// One decoded batch handed to an aggregation.
struct Batch<'a> {
    rb: &'a RecordBatch,
    cols: &'a Cols<'a>,
    /// Archive position of the first row (unit index << 32 | row offset): orders ties.
    pos: u64,
}

/// Column slices of one decoded batch (only the projected ones are `Some`).
#[derive(Default)]
struct Cols<'a> {
    n: usize,
    family: Option<&'a [u8]>,
    exporter: Option<&'a [u8]>,
    src_addr: Option<&'a [u8]>,
    dst_addr: Option<&'a [u8]>,
    in_if: Option<&'a [u32]>,
    out_if: Option<&'a [u32]>,
    src_port: Option<&'a [u16]>,
    dst_port: Option<&'a [u16]>,
    proto: Option<&'a [u8]>,
    tcp_flags: Option<&'a [u8]>,
    tos: Option<&'a [u8]>,
    packets: Option<&'a [u64]>,
    bytes: Option<&'a [u64]>,
    start: Option<&'a [i64]>,
    end: Option<&'a [i64]>,
    src_as: Option<&'a [u32]>,
    dst_as: Option<&'a [u32]>,
    vlan: Option<&'a UInt16Array>,
    icmp_type: Option<&'a [u8]>,
    icmp_code: Option<&'a [u8]>,
}

fn prim<'a, A: Array + 'static>(rb: &'a RecordBatch, name: &str) -> Option<&'a A> {
    rb.column_by_name(name)?.as_any().downcast_ref::<A>()
}

fn addr_col<'a>(rb: &'a RecordBatch, name: &str) -> Option<&'a [u8]> {
    let a = prim::<FixedSizeBinaryArray>(rb, name)?;
    if a.value_size() != 16 {
        return None;
    }
    // The values buffer starts at the array's first element (slicing slices the buffer).
    a.value_data().get(..16 * a.len())
}

impl<'a> Cols<'a> {
    fn new(rb: &'a RecordBatch) -> Self {
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
fn need<'a, T: ?Sized>(c: Option<&'a T>, name: &str) -> Result<&'a T, String> {
    c.ok_or_else(|| format!("column {name} is missing or not of the flow schema"))
}

#[inline]
fn u128_at(flat: &[u8], i: usize) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&flat[i * 16..i * 16 + 16]);
    u128::from_be_bytes(b)
}

const MAPPED_V4: u128 = 0xffff_0000_0000;

/// `(value, mask, v4)` of a prefix over the stored 16-byte form.
fn prefix_bits(net: &IpNet) -> (u128, u128, bool) {
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

fn stored(a: &IpAddr) -> (u128, bool) {
    match a {
        IpAddr::V4(v) => (MAPPED_V4 | u128::from(u32::from(*v)), true),
        IpAddr::V6(v) => (u128::from(*v), false),
    }
}

fn cmp_col<T: Copy + Ord>(v: &[T], op: CmpOp, value: T) -> BooleanBuffer {
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
fn sided(
    side: Side,
    f: impl Fn(bool) -> Result<BooleanBuffer, String>,
) -> Result<BooleanBuffer, String> {
    Ok(match side {
        Side::Src => f(true)?,
        Side::Dst => f(false)?,
        Side::Either => &f(true)? | &f(false)?,
    })
}

fn proto_in(c: &Cols, protos: &[u8]) -> Result<BooleanBuffer, String> {
    let p = need(c.proto, col::PROTO)?;
    Ok(BooleanBuffer::collect_bool(c.n, |i| protos.contains(&p[i])))
}

fn eval_pred(p: &Pred, c: &Cols) -> Result<BooleanBuffer, String> {
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

fn eval(e: &Expr, c: &Cols) -> Result<BooleanBuffer, String> {
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

/// Columns a filter reads.
fn filter_columns(e: &Expr, out: &mut Vec<&'static str>) {
    match e {
        Expr::Any => {}
        Expr::Not(x) => filter_columns(x, out),
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|x| filter_columns(x, out)),
        Expr::Pred(p) => {
            let sides = |s: Side, a: &'static str, b: &'static str| match s {
                Side::Src => vec![a],
                Side::Dst => vec![b],
                Side::Either => vec![a, b],
            };
            let cols: Vec<&'static str> = match *p {
                Pred::Proto(_) => vec![col::PROTO],
                Pred::Host { side, .. } | Pred::Net { side, .. } => {
                    let mut v = sides(side, col::SRC_ADDR, col::DST_ADDR);
                    v.push(col::FAMILY);
                    v
                }
                Pred::Port { side, .. } => sides(side, col::SRC_PORT, col::DST_PORT),
                Pred::As { side, .. } => sides(side, col::SRC_AS, col::DST_AS),
                Pred::Interface { side, .. } => match side {
                    IfSide::In => vec![col::IN_IF],
                    IfSide::Out => vec![col::OUT_IF],
                    IfSide::Either => vec![col::IN_IF, col::OUT_IF],
                },
                Pred::Vlan(_) => vec![col::VLAN],
                Pred::Bytes { .. } => vec![col::BYTES],
                Pred::Packets { .. } => vec![col::PACKETS],
                Pred::Flags(_) => vec![col::PROTO, col::TCP_FLAGS],
                Pred::Tos { .. } => vec![col::TOS],
                Pred::IcmpType { .. } => vec![col::PROTO, col::ICMP_TYPE],
                Pred::IcmpCode { .. } => vec![col::PROTO, col::ICMP_CODE],
                Pred::Family(_) => vec![col::FAMILY],
            };
            out.extend(cols);
        }
    }
}

fn key_columns(k: &Key) -> Vec<&'static str> {
    use KeyField::*;
    match k.field {
        SrcAddr => vec![col::SRC_ADDR, col::FAMILY],
        DstAddr => vec![col::DST_ADDR, col::FAMILY],
        Addr => vec![col::SRC_ADDR, col::DST_ADDR, col::FAMILY],
        SrcPort => vec![col::SRC_PORT],
        DstPort => vec![col::DST_PORT],
        Port => vec![col::SRC_PORT, col::DST_PORT],
        Proto => vec![col::PROTO],
        SrcAs => vec![col::SRC_AS],
        DstAs => vec![col::DST_AS],
        As => vec![col::SRC_AS, col::DST_AS],
        Exporter => vec![col::EXPORTER, col::FAMILY],
        InIf => vec![col::IN_IF],
        OutIf => vec![col::OUT_IF],
        Tos => vec![col::TOS],
    }
}

fn i64_stat(s: Option<&Statistics>) -> (Option<i64>, Option<i64>) {
    match s {
        Some(Statistics::Int64(v)) => (v.min_opt().copied(), v.max_opt().copied()),
        _ => (None, None),
    }
}

fn kv_u64(meta: &ArrowReaderMetadata, key: &str) -> Option<u64> {
    meta.metadata()
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_deref()?
        .parse()
        .ok()
}

/// Allowed lead of an exporter's clock over ours: segments that finished more than this before a
/// window's start are skipped by name (docs/flows.md).
pub const MAX_CLOCK_SKEW_MS: u64 = 3_600_000;

/// The row groups of one segment that may hold selected flows.
struct SegmentPlan {
    units: Vec<Unit>,
    /// The footer put every flow outside the window.
    pruned: bool,
    row_groups_pruned: u64,
}

/// `Ok(None)` when the segment vanished since it was listed.
fn plan_segment(
    path: &Path,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Option<SegmentPlan>, String> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let meta =
        ArrowReaderMetadata::load(&f, ArrowReaderOptions::new()).map_err(|e| e.to_string())?;
    // Footer: every flow ended in [min_end, max_end]; a flow inside the window ends in
    // [from, to] (it starts at or after from, and ends after it starts).
    let (min_end, max_end) = (
        kv_u64(&meta, "pharos.min_end_ms"),
        kv_u64(&meta, "pharos.max_end_ms"),
    );
    if from.zip(max_end).is_some_and(|(f, m)| (m as i64) < f)
        || to.zip(min_end).is_some_and(|(t, m)| (m as i64) > t)
    {
        return Ok(Some(SegmentPlan {
            units: Vec::new(),
            pruned: true,
            row_groups_pruned: 0,
        }));
    }
    let schema = meta.schema().clone();
    let (si, ei) = (
        schema.index_of(col::START_TIME).ok(),
        schema.index_of(col::END_TIME).ok(),
    );
    let path = Arc::new(path.to_path_buf());
    let mut plan = SegmentPlan {
        units: Vec::new(),
        pruned: false,
        row_groups_pruned: 0,
    };
    for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
        let (_, max_start) = i64_stat(si.and_then(|c| rg.column(c).statistics()));
        let (min_end, max_end) = i64_stat(ei.and_then(|c| rg.column(c).statistics()));
        let out = from
            .is_some_and(|f| max_start.is_some_and(|m| m < f) || max_end.is_some_and(|m| m < f))
            || to.zip(min_end).is_some_and(|(t, m)| m > t);
        if out || rg.num_rows() == 0 {
            plan.row_groups_pruned += 1;
            continue;
        }
        plan.units.push(Unit {
            path: path.clone(),
            meta: meta.clone(),
            row_group: i,
        });
    }
    Ok(Some(plan))
}

impl Scan {
    /// A scan of `root` selecting `selection`, on every core.
    pub fn new(root: impl Into<PathBuf>, selection: Selection) -> Self {
        Self {
            root: root.into(),
            selection,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: None,
        }
    }

    /// Row groups that may hold selected flows, and the planning counts.
    fn plan(&self, stats: &mut ScanStats) -> Vec<Unit> {
        let (from, to) = (
            self.selection
                .from_ms
                .map(|t| t.min(i64::MAX as u64) as i64),
            self.selection.to_ms.map(|t| t.min(i64::MAX as u64) as i64),
        );
        let all = list_segments(&self.root);
        stats.segments = all.len() as u64;
        // By name, without opening: flows arrive after they end, so a segment whose last arrival
        // is more than MAX_CLOCK_SKEW_MS before `from` holds no flow ending at or after `from`.
        let segs: Vec<_> = all
            .into_iter()
            .filter(|s| from.is_none_or(|f| s.end_ms.saturating_add(MAX_CLOCK_SKEW_MS) >= f as u64))
            .collect();
        stats.segments_pruned = stats.segments - segs.len() as u64;
        // Footers, read in parallel (one open and one footer read per segment).
        let slots: Vec<std::sync::OnceLock<Result<Option<SegmentPlan>, String>>> =
            segs.iter().map(|_| std::sync::OnceLock::new()).collect();
        let next = AtomicUsize::new(0);
        let threads = self.threads.clamp(1, segs.len().max(1));
        std::thread::scope(|sc| {
            for _ in 0..threads {
                sc.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(seg) = segs.get(i) else { break };
                        let _ = slots[i].set(plan_segment(&seg.path, from, to));
                    }
                });
            }
        });
        let mut units = Vec::new();
        for (seg, slot) in segs.iter().zip(slots) {
            match slot.into_inner() {
                Some(Ok(None)) => stats.vanished += 1,
                Some(Ok(Some(p))) => {
                    stats.segments_pruned += u64::from(p.pruned);
                    stats.row_groups_pruned += p.row_groups_pruned;
                    units.extend(p.units);
                }
                Some(Err(e)) => stats.errors.push(format!("{}: {e}", seg.path.display())),
                None => stats
                    .errors
                    .push(format!("{}: not planned", seg.path.display())),
            }
        }
        units
    }

    /// Runs `consume` on every batch of selected rows, one accumulator per worker thread.
    /// `consume` gets the columns and the selection mask of a batch.
    /// A segment that vanishes during a scan (merged into a minute file, or expired) restarts
    /// it, up to [`MAX_RESTARTS`] times, so that no flow is missed or counted twice.
    fn run<S: Send>(
        &self,
        extra_columns: &[&'static str],
        init: impl Fn() -> S + Sync,
        consume: impl Fn(&mut S, &Batch, &BooleanBuffer) -> Result<(), String> + Sync,
    ) -> (Vec<S>, ScanStats) {
        let mut restarts = 0;
        loop {
            let (accs, mut stats) = self.run_once(extra_columns, &init, &consume);
            if stats.vanished == 0 || restarts == MAX_RESTARTS {
                if stats.vanished > 0 {
                    stats.errors.push(format!(
                        "{} segments vanished during the scan {} times in a row (merges or retention); the answer may miss their flows: run the query again",
                        stats.vanished,
                        restarts + 1
                    ));
                }
                stats.restarts = restarts;
                return (accs, stats);
            }
            restarts += 1;
            if let Some(p) = &self.progress {
                p.done.store(0, Ordering::Relaxed);
            }
        }
    }

    fn run_once<S: Send>(
        &self,
        extra_columns: &[&'static str],
        init: &(impl Fn() -> S + Sync),
        consume: &(impl Fn(&mut S, &Batch, &BooleanBuffer) -> Result<(), String> + Sync),
    ) -> (Vec<S>, ScanStats) {
        let mut stats = ScanStats::default();
        let units = self.plan(&mut stats);
        if let Some(p) = &self.progress {
            p.total.store(units.len() as u64, Ordering::Relaxed);
        }
        let mut names = Vec::new();
        filter_columns(&self.selection.filter, &mut names);
        names.extend_from_slice(extra_columns);
        if self.selection.from_ms.is_some() {
            names.push(col::START_TIME);
        }
        if self.selection.to_ms.is_some() {
            names.push(col::END_TIME);
        }
        names.sort_unstable();
        names.dedup();
        let next = AtomicUsize::new(0);
        let threads = self.threads.clamp(1, units.len().max(1));
        let results: Vec<(S, ScanStats)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut acc = init();
                        let mut st = ScanStats::default();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(u) = units.get(i) else { break };
                            let r = self.read_unit(i, u, &names, &mut acc, consume, &mut st);
                            if let Err(e) = r {
                                st.errors.push(format!("{}: {e}", u.path.display()));
                            }
                            st.row_groups += 1;
                            if let Some(p) = &self.progress {
                                p.done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        (acc, st)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut accs = Vec::with_capacity(results.len());
        for (a, st) in results {
            stats.merge(st);
            accs.push(a);
        }
        stats.errors.sort();
        stats.errors.dedup();
        (accs, stats)
    }

    fn read_unit<S>(
        &self,
        index: usize,
        u: &Unit,
        names: &[&'static str],
        acc: &mut S,
        consume: &impl Fn(&mut S, &Batch, &BooleanBuffer) -> Result<(), String>,
        st: &mut ScanStats,
    ) -> Result<(), String> {
        let file = match File::open(u.path.as_ref()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                st.vanished += 1;
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        let schema = u.meta.schema().clone();
        let mut idx = Vec::with_capacity(names.len().max(1));
        for n in names {
            idx.push(schema.index_of(n).map_err(|e| e.to_string())?);
        }
        if idx.is_empty() {
            // Counting flows needs no column; read the smallest one to get row counts.
            idx.push(schema.index_of(col::PROTO).map_err(|e| e.to_string())?);
        }
        let mask = ProjectionMask::roots(u.meta.parquet_schema(), idx);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, u.meta.clone())
            .with_projection(mask)
            .with_row_groups(vec![u.row_group])
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| e.to_string())?;
        let (from, to) = (self.selection.from_ms, self.selection.to_ms);
        let mut pos = (index as u64) << 32;
        for rb in reader {
            let rb = rb.map_err(|e| e.to_string())?;
            let c = Cols::new(&rb);
            let mut sel = eval(&self.selection.filter, &c)?;
            if let Some(f) = from {
                let f = f.min(i64::MAX as u64) as i64;
                let s = need(c.start, col::START_TIME)?;
                sel = &sel & &BooleanBuffer::collect_bool(c.n, |i| s[i] >= f);
            }
            if let Some(t) = to {
                let t = t.min(i64::MAX as u64) as i64;
                let e = need(c.end, col::END_TIME)?;
                sel = &sel & &BooleanBuffer::collect_bool(c.n, |i| e[i] <= t);
            }
            st.rows_scanned += c.n as u64;
            st.rows_matched += sel.count_set_bits() as u64;
            if let Some(p) = &self.progress {
                p.rows.fetch_add(c.n as u64, Ordering::Relaxed);
            }
            consume(
                acc,
                &Batch {
                    rb: &rb,
                    cols: &c,
                    pos,
                },
                &sel,
            )?;
            pos += c.n as u64;
        }
        Ok(())
    }

    /// Top `n` values of `key` by `by` (ties broken by key, ascending), with the totals of every
    /// selected flow.
    pub fn top(&self, key: Key, by: Metric, n: usize) -> Result<TopN, QueryError> {
        self.selection.check()?;
        let mut cols = key_columns(&key);
        cols.extend([col::PACKETS, col::BYTES]);
        let (accs, stats) = self.run(&cols, Groups::default, |g, b, sel| g.add(&key, b.cols, sel));
        let mut total = Totals::default();
        for g in &accs {
            total.merge(&g.total);
        }
        let (rows, distinct) = top_of(accs, by, n, self.threads).map_err(|()| {
            QueryError::TooBig(format!("more than {MAX_GROUPS} distinct values of {key}"))
        })?;
        Ok(TopN {
            key,
            by,
            rows: rows
                .into_iter()
                .map(|(k, t)| TopRow {
                    key: key_value(&key, k),
                    totals: t,
                })
                .collect(),
            total,
            distinct,
            stats,
        })
    }

    /// Flows, packets and bytes per `interval_ms` of flow start time; with `key`, also per value
    /// of the `top` values of the key over the whole selection.
    pub fn series(
        &self,
        interval_ms: u64,
        key: Option<(Key, usize)>,
        by: Metric,
    ) -> Result<Series, QueryError> {
        self.selection.check()?;
        if interval_ms == 0 {
            return Err(QueryError::Interval("0".into()));
        }
        let mut cols = vec![col::START_TIME, col::PACKETS, col::BYTES];
        if let Some((k, _)) = &key {
            cols.extend(key_columns(k));
        }
        let kref = key.map(|(k, _)| k);
        let (accs, stats) = self.run(&cols, SeriesAcc::default, |s, b, sel| {
            s.add(interval_ms, kref.as_ref(), b.cols, sel)
        });
        let mut all = SeriesAcc::default();
        for a in accs {
            all.merge(a);
        }
        if all.buckets.len() as u64 > MAX_BUCKETS || all.overflow {
            return Err(QueryError::TooBig(format!(
                "more than {MAX_BUCKETS} intervals or {MAX_GROUPS} groups"
            )));
        }
        let first = all.buckets.keys().min().copied();
        let last = all.buckets.keys().max().copied();
        let span = self.series_span(interval_ms, first, last)?;
        let mut per: Vec<(GroupKey, Totals)> = Vec::new();
        if let Some((_, n)) = key {
            per = all.key_totals.into_iter().collect();
            per.sort_unstable_by(|a, b| b.1.get(by).cmp(&a.1.get(by)).then(a.0.cmp(&b.0)));
            per.truncate(n);
        }
        let intervals = span.map_or(0, |(lo, hi)| ((hi - lo) / interval_ms).saturating_add(1));
        let points_total = intervals.saturating_mul(per.len() as u64 + 1);
        if points_total > MAX_POINTS {
            return Err(QueryError::TooBig(format!(
                "the series would have {intervals} intervals for each of {} series \
                 ({points_total} points, at most {MAX_POINTS}); ask fewer key values or a \
                 longer interval",
                per.len() + 1
            )));
        }
        let mut out = Series {
            interval_ms,
            by,
            key: kref,
            points: fill(span, interval_ms, |t| all.buckets.get(&t).copied()),
            keys: Vec::new(),
            stats,
        };
        if let Some((k, _)) = key {
            for (gk, totals) in per {
                out.keys.push(KeySeries {
                    key: key_value(&k, gk),
                    totals,
                    points: fill(span, interval_ms, |t| all.per_key.get(&(t, gk)).copied()),
                });
            }
        }
        Ok(out)
    }

    /// The first and last interval start of a series: those of the flows found, widened to the
    /// window when one was given and the widened series stays within [`MAX_BUCKETS`]; `None`
    /// when there is neither a flow nor a complete window.
    fn series_span(
        &self,
        interval_ms: u64,
        first: Option<u64>,
        last: Option<u64>,
    ) -> Result<Option<(u64, u64)>, QueryError> {
        let align = |t: u64| t - t % interval_ms;
        let count = |lo: u64, hi: u64| ((hi - lo) / interval_ms).saturating_add(1);
        let from = self.selection.from_ms.map(align);
        let to = self.selection.to_ms.map(align);
        let data = first.zip(last);
        let wide = match data {
            Some((f, l)) => Some((from.map_or(f, |w| w.min(f)), to.map_or(l, |w| w.max(l)))),
            None => from.zip(to),
        };
        if let Some((lo, hi)) = wide
            && count(lo, hi) <= MAX_BUCKETS
        {
            return Ok(Some((lo, hi)));
        }
        match data {
            Some((lo, hi)) if count(lo, hi) > MAX_BUCKETS => Err(QueryError::TooBig(format!(
                "the flows found span {} intervals of {interval_ms} ms, more than {MAX_BUCKETS}; \
                 use a longer interval",
                count(lo, hi)
            ))),
            d => Ok(d),
        }
    }

    /// Up to `limit` selected flows in `order`: earliest start first, or most packets or bytes
    /// first (ties by start time, then archive order).
    pub fn list(&self, limit: usize, order: Order) -> Result<Listing, QueryError> {
        self.selection.check()?;
        let limit = limit.min(MAX_LIMIT);
        let all: Vec<&'static str> = super::schema::flow_schema()
            .fields()
            .iter()
            .filter_map(|f| ALL_COLUMNS.iter().copied().find(|c| *c == f.name()))
            .collect();
        let (accs, stats) = self.run(&all, BinaryHeap::<Ranked>::new, |heap, batch, sel| {
            let (rb, c) = (batch.rb, batch.cols);
            let s = need(c.start, col::START_TIME)?;
            let p = need(c.packets, col::PACKETS)?;
            let b = need(c.bytes, col::BYTES)?;
            for i in sel.set_indices() {
                let seq = batch.pos + i as u64;
                let rank = match order {
                    Order::Time => (0, s[i]),
                    Order::Packets => (p[i].min(i64::MAX as u64) as i64, s[i]),
                    Order::Bytes => (b[i].min(i64::MAX as u64) as i64, s[i]),
                };
                // Max-heap of "worst kept first": for time, the latest; for counts, the smallest.
                let r = Ranked {
                    sort: match order {
                        Order::Time => (rank.1, 0),
                        _ => (-rank.0, rank.1),
                    },
                    seq,
                    row: None,
                };
                if heap.len() < limit {
                    heap.push(Ranked {
                        row: Some(record_at(rb, i)?),
                        ..r
                    });
                } else if let Some(top) = heap.peek()
                    && (r.sort, r.seq) < (top.sort, top.seq)
                {
                    heap.pop();
                    heap.push(Ranked {
                        row: Some(record_at(rb, i)?),
                        ..r
                    });
                }
            }
            Ok(())
        });
        let mut rows: Vec<Ranked> = accs.into_iter().flat_map(|h| h.into_vec()).collect();
        rows.sort_unstable_by_key(|r| (r.sort, r.seq));
        rows.truncate(limit);
        Ok(Listing {
            flows: rows.into_iter().filter_map(|r| r.row).collect(),
            stats,
        })
    }

    /// Calls `f` with every selected flow, segment by segment in archive order, on this thread
    /// (export: nothing is held beyond one decoded batch).
    pub fn for_each(
        &self,
        mut f: impl FnMut(&FlowBatch) -> std::io::Result<()>,
    ) -> Result<ScanStats, ExportError> {
        self.selection.check()?;
        let mut stats = ScanStats::default();
        let units = self.plan(&mut stats);
        if stats.vanished > 0 {
            stats.errors.push(format!(
                "{} segments vanished between listing and reading (merged or expired); the export may miss their flows: run it again",
                stats.vanished
            ));
        }
        if let Some(p) = &self.progress {
            p.total.store(units.len() as u64, Ordering::Relaxed);
        }
        for u in &units {
            let file = match File::open(u.path.as_ref()) {
                Ok(f) => f,
                Err(e) => {
                    stats.errors.push(format!("{}: {e}", u.path.display()));
                    continue;
                }
            };
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, u.meta.clone())
                .with_row_groups(vec![u.row_group])
                .with_batch_size(BATCH_ROWS)
                .build();
            let reader = match reader {
                Ok(r) => r,
                Err(e) => {
                    stats.errors.push(format!("{}: {e}", u.path.display()));
                    continue;
                }
            };
            stats.row_groups += 1;
            for rb in reader {
                let batch = match rb
                    .map_err(|e| e.to_string())
                    .and_then(|rb| from_record_batch(&rb).map_err(|e| e.to_string()))
                {
                    Ok(b) => b,
                    Err(e) => {
                        stats.errors.push(format!("{}: {e}", u.path.display()));
                        break;
                    }
                };
                stats.rows_scanned += batch.len() as u64;
                let mut out = FlowBatch::new();
                for i in 0..batch.len() {
                    let r = batch.get(i);
                    if self.selection.matches(&r) {
                        out.push(&r);
                    }
                }
                stats.rows_matched += out.len() as u64;
                if !out.is_empty() {
                    f(&out)?;
                }
            }
            if let Some(p) = &self.progress {
                p.done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(stats)
    }
}

/// Errors of [`Scan::for_each`].
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Bad query arguments.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The callback failed (the output could not be written).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

const ALL_COLUMNS: &[&str] = &[
    col::FAMILY,
    col::EXPORTER,
    col::DOMAIN,
    col::IN_IF,
    col::OUT_IF,
    col::SRC_ADDR,
    col::DST_ADDR,
    col::SRC_PORT,
    col::DST_PORT,
    col::PROTO,
    col::TCP_FLAGS,
    col::TOS,
    col::PACKETS,
    col::BYTES,
    col::START_TIME,
    col::END_TIME,
    col::SRC_AS,
    col::DST_AS,
    col::SRC_MASK,
    col::DST_MASK,
    col::NEXT_HOP,
    col::VLAN,
    col::DIRECTION,
    col::SAMPLING_RATE,
    col::ICMP_TYPE,
    col::ICMP_CODE,
    col::END_REASON,
];

/// Row `i` of a fully projected batch as a record (through the schema's own conversion).
fn record_at(rb: &RecordBatch, i: usize) -> Result<FlowRecord, String> {
    let one = from_record_batch(&rb.slice(i, 1)).map_err(|e| e.to_string())?;
    if one.len() == 1 {
        Ok(one.get(0))
    } else {
        Err("internal: a one-row slice did not give one flow".into())
    }
}

/// Sort order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Earliest start first.
    Time,
    /// Most packets first.
    Packets,
    /// Most bytes first.
    Bytes,
}

impl FromStr for Order {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "time" | "start" | "tstart" => Ok(Order::Time),
            other => match other.parse::<Metric>() {
                Ok(Metric::Packets) => Ok(Order::Packets),
                Ok(Metric::Bytes) => Ok(Order::Bytes),
                _ => Err(QueryError::Metric(s.to_string())),
            },
        }
    }
}

struct Ranked {
    sort: (i64, i64),
    seq: u64,
    row: Option<FlowRecord>,
}

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        (self.sort, self.seq) == (o.sort, o.seq)
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.sort, self.seq).cmp(&(o.sort, o.seq))
    }
}

// ---------------------------------------------------------------------------------------------
// Aggregation

/// A group key: the value (addresses in their stored 16-byte form) and whether it is IPv4.
type GroupKey = (u128, bool);

/// A multiply-rotate hasher for group keys (fixed-size integers; not DoS-resistant, which is
/// fine for keys taken from our own archive and bounded by [`MAX_GROUPS`]).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // murmur3's finaliser: every output bit depends on every input bit.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(26) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Distinct keys a worker aggregates in one hash table before it switches to partitions (tiny
/// in tests, so that the property tests go through spills and compactions).
const DIRECT_KEYS: usize = if cfg!(test) { 4 } else { 1 << 16 };
/// Partitions of the partitioned aggregation (by bits 32..40 of the key's hash, so that the bits
/// the hash tables use stay spread).
const PARTS: usize = 256;
/// Buffered tuples of a worker that trigger a compaction of its partitions.
const COMPACT_AT: usize = if cfg!(test) { 16 } else { 1 << 22 };

/// One pre-aggregated group in a partition buffer: the key and its totals (bit 63 of `flows_v4`
/// is the key's IPv4 flag).
#[derive(Clone, Copy)]
struct Tuple {
    hi: u64,
    lo: u64,
    packets: u64,
    bytes: u64,
    flows_v4: u64,
}

const V4_BIT: u64 = 1 << 63;

impl Tuple {
    fn new((k, v4): GroupKey, t: &Totals) -> Self {
        Tuple {
            hi: (k >> 64) as u64,
            lo: k as u64,
            packets: t.packets,
            bytes: t.bytes,
            flows_v4: t.flows | if v4 { V4_BIT } else { 0 },
        }
    }

    fn key(&self) -> GroupKey {
        (
            u128::from(self.hi) << 64 | u128::from(self.lo),
            self.flows_v4 & V4_BIT != 0,
        )
    }

    fn totals(&self) -> Totals {
        Totals {
            flows: self.flows_v4 & !V4_BIT,
            packets: self.packets,
            bytes: self.bytes,
        }
    }
}

/// A row in a partition buffer whose key fits in 64 bits (IPv4 addresses, with [`V4_BIT`] set;
/// numbers; IPv6 keys below 2^63): one flow, 24 bytes instead of a [`Tuple`]'s 40.
#[derive(Clone, Copy)]
struct Narrow {
    key: u64,
    packets: u64,
    bytes: u64,
}

/// The 64-bit form of `k`, when it has one (IPv4 keys are `::ffff:a.b.c.d` masked, so their
/// address bits say all).
fn narrow_key((k, v4): GroupKey) -> Option<u64> {
    if v4 {
        Some(u64::from(k as u32) | V4_BIT)
    } else if k < 1u128 << 63 {
        Some(k as u64)
    } else {
        None
    }
}

fn from_narrow(key: u64) -> GroupKey {
    if key & V4_BIT != 0 {
        (MAPPED_V4 | u128::from(key as u32), true)
    } else {
        (u128::from(key), false)
    }
}

fn part_of(k: &GroupKey) -> usize {
    use std::hash::BuildHasher;
    let h = BuildHasherDefault::<KeyHasher>::default().hash_one(k);
    ((h >> 32) as usize) & (PARTS - 1)
}

/// A worker's top-N aggregation: one hash table while the keys are few; past [`DIRECT_KEYS`],
/// rows go into [`PARTS`] partition buffers by key hash, aggregated partition by partition at
/// the end (each partition's table fits in cache, and no table is merged into another).
#[derive(Default)]
struct Groups {
    map: FastMap<GroupKey, Totals>,
    /// Aggregated groups and rows of wide keys, by partition.
    parts: Vec<Vec<Tuple>>,
    /// Rows of narrow keys, by partition.
    narrow: Vec<Vec<Narrow>>,
    buffered: usize,
    compact_at: usize,
    total: Totals,
    overflow: bool,
}

impl Groups {
    #[inline]
    fn bump(&mut self, k: GroupKey, p: u64, b: u64) {
        if self.parts.is_empty() {
            if let Some(t) = self.map.get_mut(&k) {
                t.add(p, b);
                return;
            }
            let mut t = Totals::default();
            t.add(p, b);
            self.map.insert(k, t);
            if self.map.len() > DIRECT_KEYS {
                self.spill();
            }
        } else {
            let part = part_of(&k);
            match narrow_key(k) {
                Some(key) => self.narrow[part].push(Narrow {
                    key,
                    packets: p,
                    bytes: b,
                }),
                None => {
                    let mut t = Totals::default();
                    t.add(p, b);
                    self.parts[part].push(Tuple::new(k, &t));
                }
            }
            self.buffered += 1;
            if self.buffered >= self.compact_at {
                self.compact();
            }
        }
    }

    /// Moves the hash table into the partition buffers.
    fn spill(&mut self) {
        if self.parts.is_empty() {
            self.parts = (0..PARTS).map(|_| Vec::new()).collect();
            self.narrow = (0..PARTS).map(|_| Vec::new()).collect();
            self.compact_at = COMPACT_AT;
        }
        for (k, t) in self.map.drain() {
            self.parts[part_of(&k)].push(Tuple::new(k, &t));
            self.buffered += 1;
        }
        self.map = FastMap::default();
    }

    /// Aggregates each partition buffer in place; when most tuples are distinct keys, waits for
    /// twice as many before the next compaction. Past [`MAX_GROUPS`] keys, flags the overflow.
    fn compact(&mut self) {
        let mut table = FastMap::<GroupKey, Totals>::default();
        let mut kept = 0;
        for (part, narrow) in self.parts.iter_mut().zip(&mut self.narrow) {
            table.clear();
            for t in part.iter() {
                table.entry(t.key()).or_default().merge(&t.totals());
            }
            for n in narrow.drain(..) {
                table
                    .entry(from_narrow(n.key))
                    .or_default()
                    .add(n.packets, n.bytes);
            }
            narrow.shrink_to(narrow.capacity() / 2);
            part.clear();
            part.extend(table.iter().map(|(k, t)| Tuple::new(*k, t)));
            part.shrink_to(part.len() * 2);
            kept += part.len();
        }
        self.buffered = kept;
        if kept > MAX_GROUPS {
            self.overflow = true;
            for part in &mut self.parts {
                part.clear();
            }
            self.buffered = 0;
        }
        if kept * 2 > self.compact_at {
            self.compact_at = self.compact_at.saturating_mul(2);
        }
    }

    fn add(&mut self, key: &Key, c: &Cols, sel: &BooleanBuffer) -> Result<(), String> {
        let p = need(c.packets, col::PACKETS)?;
        let b = need(c.bytes, col::BYTES)?;
        for i in sel.set_indices() {
            self.total.add(p[i], b[i]);
        }
        if self.overflow {
            return Ok(());
        }
        for_each_key(key, c, sel, |i, k| self.bump(k, p[i], b[i]))
    }
}

/// The top `n` of `groups` (one per worker) by `by`, ties to the smaller key; and the number of
/// distinct keys. Partitions are aggregated in parallel on `threads` threads.
fn top_of(
    mut groups: Vec<Groups>,
    by: Metric,
    n: usize,
    threads: usize,
) -> Result<(Vec<(GroupKey, Totals)>, u64), ()> {
    let order = |a: &(GroupKey, Totals), b: &(GroupKey, Totals)| {
        b.1.get(by).cmp(&a.1.get(by)).then(a.0.cmp(&b.0))
    };
    let top_n = |mut rows: Vec<(GroupKey, Totals)>| {
        if rows.len() > n && n > 0 {
            rows.select_nth_unstable_by(n - 1, order);
        }
        rows.truncate(n);
        rows
    };
    if groups.iter().any(|g| g.overflow) {
        return Err(());
    }
    if groups.iter().all(|g| g.parts.is_empty()) {
        // Few keys: merge the tables into the largest.
        groups.sort_by_key(|g| std::cmp::Reverse(g.map.len()));
        let mut it = groups.into_iter();
        let mut all = it.next().map(|g| g.map).unwrap_or_default();
        for g in it {
            for (k, t) in g.map {
                all.entry(k).or_default().merge(&t);
            }
        }
        let distinct = all.len() as u64;
        let mut rows = top_n(all.into_iter().collect());
        rows.sort_unstable_by(order);
        return Ok((rows, distinct));
    }
    for g in &mut groups {
        g.spill();
    }
    let groups = &groups;
    let next = AtomicUsize::new(0);
    let results: Vec<(Vec<(GroupKey, Totals)>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.clamp(1, PARTS))
            .map(|_| {
                s.spawn(|| {
                    let mut best = Vec::new();
                    let mut distinct = 0u64;
                    let mut table = FastMap::<GroupKey, Totals>::default();
                    loop {
                        let p = next.fetch_add(1, Ordering::Relaxed);
                        if p >= PARTS {
                            break;
                        }
                        table.clear();
                        for g in groups {
                            for t in &g.parts[p] {
                                table.entry(t.key()).or_default().merge(&t.totals());
                            }
                            for n in &g.narrow[p] {
                                table
                                    .entry(from_narrow(n.key))
                                    .or_default()
                                    .add(n.packets, n.bytes);
                            }
                        }
                        distinct += table.len() as u64;
                        best.extend(top_n(table.drain().collect()));
                        best = top_n(best);
                    }
                    (best, distinct)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let distinct = results.iter().map(|r| r.1).sum();
    let mut rows = top_n(results.into_iter().flat_map(|r| r.0).collect());
    rows.sort_unstable_by(order);
    Ok((rows, distinct))
}

/// Calls `f(row, key)` for every selected row and every key value it has (two for `ip`, `port`
/// and `as`; none for an address of the other family than a prefix key's).
fn for_each_key(
    key: &Key,
    c: &Cols,
    sel: &BooleanBuffer,
    mut f: impl FnMut(usize, GroupKey),
) -> Result<(), String> {
    use KeyField::*;
    let num = |v: &[u32], f: &mut dyn FnMut(usize, GroupKey)| {
        for i in sel.set_indices() {
            f(i, (u128::from(v[i]), false));
        }
    };
    match key.field {
        SrcAddr | DstAddr | Addr | Exporter => {
            let fam = need(c.family, col::FAMILY)?;
            let sides: Vec<(&[u8], u8)> = match key.field {
                SrcAddr => vec![(need(c.src_addr, col::SRC_ADDR)?, flags::SRC_V4)],
                DstAddr => vec![(need(c.dst_addr, col::DST_ADDR)?, flags::DST_V4)],
                Exporter => vec![(need(c.exporter, col::EXPORTER)?, flags::EXPORTER_V4)],
                _ => vec![
                    (need(c.src_addr, col::SRC_ADDR)?, flags::SRC_V4),
                    (need(c.dst_addr, col::DST_ADDR)?, flags::DST_V4),
                ],
            };
            let (mask, want_v4) = match key.prefix {
                None => (!0u128, None),
                Some((Family::V4, len)) => {
                    let l = 96 + u32::from(len);
                    (!0u128 << (128 - l), Some(true))
                }
                Some((Family::V6, len)) => (
                    if len == 0 {
                        0
                    } else {
                        !0u128 << (128 - u32::from(len))
                    },
                    Some(false),
                ),
            };
            for i in sel.set_indices() {
                for (a, bit) in &sides {
                    let v4 = fam[i] & bit != 0;
                    if want_v4.is_some_and(|w| w != v4) {
                        continue;
                    }
                    f(i, (u128_at(a, i) & mask, v4));
                }
            }
        }
        SrcPort | DstPort | Port => {
            let s = match key.field {
                SrcPort | Port => Some(need(c.src_port, col::SRC_PORT)?),
                _ => None,
            };
            let d = match key.field {
                DstPort | Port => Some(need(c.dst_port, col::DST_PORT)?),
                _ => None,
            };
            for i in sel.set_indices() {
                if let Some(s) = s {
                    f(i, (u128::from(s[i]), false));
                }
                if let Some(d) = d {
                    f(i, (u128::from(d[i]), false));
                }
            }
        }
        Proto | Tos => {
            let v = if key.field == Proto {
                need(c.proto, col::PROTO)?
            } else {
                need(c.tos, col::TOS)?
            };
            for i in sel.set_indices() {
                f(i, (u128::from(v[i]), false));
            }
        }
        SrcAs => num(need(c.src_as, col::SRC_AS)?, &mut f),
        DstAs => num(need(c.dst_as, col::DST_AS)?, &mut f),
        InIf => num(need(c.in_if, col::IN_IF)?, &mut f),
        OutIf => num(need(c.out_if, col::OUT_IF)?, &mut f),
        As => {
            let s = need(c.src_as, col::SRC_AS)?;
            let d = need(c.dst_as, col::DST_AS)?;
            for i in sel.set_indices() {
                f(i, (u128::from(s[i]), false));
                f(i, (u128::from(d[i]), false));
            }
        }
    }
    Ok(())
}

fn key_value(key: &Key, (v, v4): GroupKey) -> KeyValue {
    use KeyField::*;
    match key.field {
        SrcAddr | DstAddr | Addr | Exporter => {
            let addr = if v4 {
                IpAddr::V4(Ipv4Addr::from(v as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(v))
            };
            match key.prefix {
                Some((_, len)) => IpNet::new(addr, len).map_or(KeyValue::Addr(addr), KeyValue::Net),
                None => KeyValue::Addr(addr),
            }
        }
        _ => KeyValue::Num(v as u32),
    }
}

#[derive(Default)]
struct SeriesAcc {
    buckets: FastMap<u64, Totals>,
    per_key: FastMap<(u64, GroupKey), Totals>,
    key_totals: FastMap<GroupKey, Totals>,
    overflow: bool,
}

impl SeriesAcc {
    fn add(
        &mut self,
        interval: u64,
        key: Option<&Key>,
        c: &Cols,
        sel: &BooleanBuffer,
    ) -> Result<(), String> {
        let s = need(c.start, col::START_TIME)?;
        let p = need(c.packets, col::PACKETS)?;
        let b = need(c.bytes, col::BYTES)?;
        let bucket = |i: usize| {
            let t = u64::try_from(s[i]).unwrap_or(0);
            t - t % interval
        };
        for i in sel.set_indices() {
            self.buckets.entry(bucket(i)).or_default().add(p[i], b[i]);
        }
        if self.buckets.len() as u64 > MAX_BUCKETS {
            self.overflow = true;
            return Ok(());
        }
        if let Some(k) = key {
            let (per_key, key_totals) = (&mut self.per_key, &mut self.key_totals);
            let mut over = false;
            for_each_key(k, c, sel, |i, gk| {
                if per_key.len() >= MAX_GROUPS {
                    over = true;
                    return;
                }
                per_key.entry((bucket(i), gk)).or_default().add(p[i], b[i]);
                key_totals.entry(gk).or_default().add(p[i], b[i]);
            })?;
            self.overflow |= over;
        }
        Ok(())
    }

    fn merge(&mut self, o: SeriesAcc) {
        self.overflow |= o.overflow;
        for (k, t) in o.buckets {
            self.buckets.entry(k).or_default().merge(&t);
        }
        for (k, t) in o.per_key {
            self.per_key.entry(k).or_default().merge(&t);
        }
        for (k, t) in o.key_totals {
            self.key_totals.entry(k).or_default().merge(&t);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// One row of a top-N.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopRow {
    /// The key's value.
    pub key: KeyValue,
    /// Its flows, packets and bytes.
    #[serde(flatten)]
    pub totals: Totals,
}

/// The answer of [`Scan::top`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopN {
    /// The key.
    #[serde(serialize_with = "display")]
    pub key: Key,
    /// The order.
    pub by: Metric,
    /// The top rows, largest first.
    pub rows: Vec<TopRow>,
    /// Every selected flow.
    pub total: Totals,
    /// Distinct values of the key among them.
    pub distinct: u64,
    /// What the scan did.
    pub stats: ScanStats,
}

fn display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn display_opt<T: fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Every interval start from `lo` to `hi` (inclusive) with the totals `at` gives, zero where it
/// gives none: a series has no holes, so a plot or a script sees quiet intervals as 0.
fn fill(
    span: Option<(u64, u64)>,
    interval_ms: u64,
    at: impl Fn(u64) -> Option<Totals>,
) -> Vec<Point> {
    let Some((lo, hi)) = span else {
        return Vec::new();
    };
    let mut points = Vec::with_capacity(((hi - lo) / interval_ms + 1) as usize);
    let mut t = lo;
    loop {
        points.push(Point {
            t_ms: t,
            totals: at(t).unwrap_or_default(),
        });
        match t.checked_add(interval_ms) {
            Some(n) if n <= hi => t = n,
            _ => break,
        }
    }
    points
}

/// One interval of a series.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Point {
    /// Interval start, Unix ms.
    pub t_ms: u64,
    /// Flows, packets and bytes of the flows that started in it.
    #[serde(flatten)]
    pub totals: Totals,
}

/// The series of one key value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeySeries {
    /// The value.
    pub key: KeyValue,
    /// Its totals over the whole selection.
    pub totals: Totals,
    /// Its intervals, in time order, the same as [`Series::points`] (zero where this value
    /// had no flow).
    pub points: Vec<Point>,
}

/// The answer of [`Scan::series`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Series {
    /// Interval length, ms.
    pub interval_ms: u64,
    /// The order of [`Series::keys`].
    pub by: Metric,
    /// The key, when split by one.
    #[serde(serialize_with = "display_opt")]
    pub key: Option<Key>,
    /// Every interval from the first to the last flow found (widened to the window when one
    /// was given and the result stays within [`MAX_BUCKETS`]), in time order; intervals without
    /// flows are zeros.
    pub points: Vec<Point>,
    /// Per key value (the top ones), when split by a key.
    pub keys: Vec<KeySeries>,
    /// What the scan did.
    pub stats: ScanStats,
}

/// The answer of [`Scan::list`].
#[derive(Debug, Clone)]
pub struct Listing {
    /// The flows, in the order asked.
    pub flows: Vec<FlowRecord>,
    /// What the scan did.
    pub stats: ScanStats,
}

#[cfg(test)]
mod tests;
