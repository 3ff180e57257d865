//! The Arrow schema of stored flows and the conversion between [`FlowBatch`] and Arrow
//! [`RecordBatch`] (column by column, no per-row heap object).
//!
//! Contract: [`from_record_batch`]`(&`[`to_record_batch`]`(b)) == b` for every batch `b` whose
//! absent optional fields hold 0 (what [`FlowBatch::push`] stores), including the IPv4/IPv6
//! distinction of every address and the presence of every optional field.
//!
//! Columns, in this order (docs/flows.md has the same table):
//!
//! | column | Arrow type | null | from [`FlowBatch`] |
//! |---|---|---|---|
//! | `family` | UInt8 | no | address-family bits of `flags`: 1 exporter IPv4, 2 src IPv4, 4 dst IPv4, 16 next hop IPv4 |
//! | `exporter` | FixedSizeBinary(16) | no | `exporter` |
//! | `domain` | UInt32 | no | `domain` |
//! | `in_if`, `out_if` | UInt32 | no | `in_if`, `out_if` |
//! | `src_addr`, `dst_addr` | FixedSizeBinary(16) | no | `src_addr`, `dst_addr` |
//! | `src_port`, `dst_port` | UInt16 | no | `src_port`, `dst_port` |
//! | `proto`, `tcp_flags`, `tos` | UInt8 | no | `proto`, `tcp_flags`, `tos` |
//! | `packets`, `bytes` | UInt64 | no | `packets`, `bytes` |
//! | `start_time`, `end_time` | Timestamp(ms, "UTC") | no | `start_ms`, `end_ms` |
//! | `src_as`, `dst_as` | UInt32 | no | `src_as`, `dst_as` |
//! | `src_mask`, `dst_mask` | UInt8 | no | `src_mask`, `dst_mask` |
//! | `next_hop` | FixedSizeBinary(16) | yes | `next_hop` (null when the exporter did not say) |
//! | `vlan` | UInt16 | yes | `vlan` |
//! | `direction` | UInt8 | yes | `direction` |
//! | `sampling_rate` | UInt32 | no | `sampling_rate` |
//! | `icmp_type`, `icmp_code` | UInt8 | no | `icmp_type`, `icmp_code` |
//! | `end_reason` | UInt8 | yes | `end_reason` |
//!
//! Addresses are 16 bytes in network order, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`): one
//! fixed-width column per address compares with `memcmp` and keeps min/max statistics that prune
//! both families, and any Parquet reader sees an IPv6 address (DuckDB: `inet` from the blob,
//! pandas: `ipaddress.ip_address(b)`). The `family` bit says which addresses were IPv4, so a
//! genuine IPv6 address inside `::ffff:0:0/96` stays IPv6; readers that do not care may treat every
//! `::ffff:0:0/96` address as IPv4.

use std::sync::Arc;

use arrow_array::types::{TimestampMillisecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeBinaryArray, PrimitiveArray, RecordBatch, TimestampMillisecondArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use pharos_model::flow::{FlowBatch, flags};

/// Column names, for queries and readers.
pub mod col {
    /// Address-family bits ([`super::FAMILY_BITS`]).
    pub const FAMILY: &str = "family";
    /// Exporter address.
    pub const EXPORTER: &str = "exporter";
    /// Observation domain / source id.
    pub const DOMAIN: &str = "domain";
    /// Input ifIndex.
    pub const IN_IF: &str = "in_if";
    /// Output ifIndex.
    pub const OUT_IF: &str = "out_if";
    /// Source address.
    pub const SRC_ADDR: &str = "src_addr";
    /// Destination address.
    pub const DST_ADDR: &str = "dst_addr";
    /// Source port.
    pub const SRC_PORT: &str = "src_port";
    /// Destination port.
    pub const DST_PORT: &str = "dst_port";
    /// IP protocol.
    pub const PROTO: &str = "proto";
    /// Cumulative TCP flags.
    pub const TCP_FLAGS: &str = "tcp_flags";
    /// Type of service.
    pub const TOS: &str = "tos";
    /// Packets.
    pub const PACKETS: &str = "packets";
    /// Bytes.
    pub const BYTES: &str = "bytes";
    /// Flow start.
    pub const START_TIME: &str = "start_time";
    /// Flow end.
    pub const END_TIME: &str = "end_time";
    /// Source AS.
    pub const SRC_AS: &str = "src_as";
    /// Destination AS.
    pub const DST_AS: &str = "dst_as";
    /// Source prefix length.
    pub const SRC_MASK: &str = "src_mask";
    /// Destination prefix length.
    pub const DST_MASK: &str = "dst_mask";
    /// Next hop (nullable).
    pub const NEXT_HOP: &str = "next_hop";
    /// VLAN id (nullable).
    pub const VLAN: &str = "vlan";
    /// Direction (nullable).
    pub const DIRECTION: &str = "direction";
    /// Sampling rate.
    pub const SAMPLING_RATE: &str = "sampling_rate";
    /// ICMP type.
    pub const ICMP_TYPE: &str = "icmp_type";
    /// ICMP code.
    pub const ICMP_CODE: &str = "icmp_code";
    /// Flow end reason (nullable).
    pub const END_REASON: &str = "end_reason";
}

/// The bits of [`FlowBatch::flags`] kept in the `family` column (the presence bits become nulls).
pub const FAMILY_BITS: u8 = flags::EXPORTER_V4 | flags::SRC_V4 | flags::DST_V4 | flags::NEXT_HOP_V4;

/// The Arrow schema of a flow segment (see the module doc).
pub fn flow_schema() -> SchemaRef {
    let addr = DataType::FixedSizeBinary(16);
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let f = |name: &str, t: &DataType, null: bool| Field::new(name, t.clone(), null);
    use DataType::{UInt8 as U8, UInt16 as U16, UInt32 as U32, UInt64 as U64};
    Arc::new(Schema::new(vec![
        f(col::FAMILY, &U8, false),
        f(col::EXPORTER, &addr, false),
        f(col::DOMAIN, &U32, false),
        f(col::IN_IF, &U32, false),
        f(col::OUT_IF, &U32, false),
        f(col::SRC_ADDR, &addr, false),
        f(col::DST_ADDR, &addr, false),
        f(col::SRC_PORT, &U16, false),
        f(col::DST_PORT, &U16, false),
        f(col::PROTO, &U8, false),
        f(col::TCP_FLAGS, &U8, false),
        f(col::TOS, &U8, false),
        f(col::PACKETS, &U64, false),
        f(col::BYTES, &U64, false),
        f(col::START_TIME, &ts, false),
        f(col::END_TIME, &ts, false),
        f(col::SRC_AS, &U32, false),
        f(col::DST_AS, &U32, false),
        f(col::SRC_MASK, &U8, false),
        f(col::DST_MASK, &U8, false),
        f(col::NEXT_HOP, &addr, true),
        f(col::VLAN, &U16, true),
        f(col::DIRECTION, &U8, true),
        f(col::SAMPLING_RATE, &U32, false),
        f(col::ICMP_TYPE, &U8, false),
        f(col::ICMP_CODE, &U8, false),
        f(col::END_REASON, &U8, true),
    ]))
}

fn prim<T: arrow_array::ArrowPrimitiveType>(
    v: &[T::Native],
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(
        ScalarBuffer::from(v.to_vec()),
        nulls,
    ))
}

fn addrs(v: &[[u8; 16]], nulls: Option<NullBuffer>) -> ArrayRef {
    let values = Buffer::from(v.as_flattened());
    Arc::new(FixedSizeBinaryArray::new(16, values, nulls))
}

/// Validity of an optional column: `None` when every row has the value.
fn presence(fl: &[u8], bit: u8) -> Option<NullBuffer> {
    let valid = BooleanBuffer::collect_bool(fl.len(), |i| fl[i] & bit != 0);
    let n = NullBuffer::new(valid);
    (n.null_count() > 0).then_some(n)
}

/// Converts a batch to an Arrow record batch of [`flow_schema`] (copies each column once).
pub fn to_record_batch(b: &FlowBatch) -> RecordBatch {
    let fl = &b.flags;
    let family: Vec<u8> = fl.iter().map(|f| f & FAMILY_BITS).collect();
    let ms = |v: &[u64]| -> ArrayRef {
        let v: Vec<i64> = v.iter().map(|&x| x.min(i64::MAX as u64) as i64).collect();
        Arc::new(TimestampMillisecondArray::new(ScalarBuffer::from(v), None).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        prim::<UInt8Type>(&family, None),
        addrs(&b.exporter, None),
        prim::<UInt32Type>(&b.domain, None),
        prim::<UInt32Type>(&b.in_if, None),
        prim::<UInt32Type>(&b.out_if, None),
        addrs(&b.src_addr, None),
        addrs(&b.dst_addr, None),
        prim::<UInt16Type>(&b.src_port, None),
        prim::<UInt16Type>(&b.dst_port, None),
        prim::<UInt8Type>(&b.proto, None),
        prim::<UInt8Type>(&b.tcp_flags, None),
        prim::<UInt8Type>(&b.tos, None),
        prim::<UInt64Type>(&b.packets, None),
        prim::<UInt64Type>(&b.bytes, None),
        ms(&b.start_ms),
        ms(&b.end_ms),
        prim::<UInt32Type>(&b.src_as, None),
        prim::<UInt32Type>(&b.dst_as, None),
        prim::<UInt8Type>(&b.src_mask, None),
        prim::<UInt8Type>(&b.dst_mask, None),
        addrs(&b.next_hop, presence(fl, flags::NEXT_HOP)),
        prim::<UInt16Type>(&b.vlan, presence(fl, flags::VLAN)),
        prim::<UInt8Type>(&b.direction, presence(fl, flags::DIRECTION)),
        prim::<UInt32Type>(&b.sampling_rate, None),
        prim::<UInt8Type>(&b.icmp_type, None),
        prim::<UInt8Type>(&b.icmp_code, None),
        prim::<UInt8Type>(&b.end_reason, presence(fl, flags::END_REASON)),
    ];
    RecordBatch::try_new(flow_schema(), columns)
        .expect("columns of one FlowBatch have equal lengths and the schema's types")
}

fn column<'a>(rb: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    rb.column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("flow segment without column {name:?}")))
}

/// Values of a primitive column, with 0 where null; the validity (all valid when `None`).
fn get_prim<T: arrow_array::ArrowPrimitiveType>(
    rb: &RecordBatch,
    name: &str,
) -> Result<(Vec<T::Native>, Option<NullBuffer>), ArrowError> {
    let a = column(rb, name)?;
    let p = a
        .as_any()
        .downcast_ref::<PrimitiveArray<T>>()
        .ok_or_else(|| {
            ArrowError::SchemaError(format!("column {name:?} has type {}", a.data_type()))
        })?;
    let nulls = p.nulls().filter(|n| n.null_count() > 0).cloned();
    let mut v = p.values().to_vec();
    if let Some(n) = &nulls {
        for (i, x) in v.iter_mut().enumerate() {
            if n.is_null(i) {
                *x = T::Native::default();
            }
        }
    }
    Ok((v, nulls))
}

fn get_addrs(
    rb: &RecordBatch,
    name: &str,
) -> Result<(Vec<[u8; 16]>, Option<NullBuffer>), ArrowError> {
    let a = column(rb, name)?;
    let p = a
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .filter(|p| p.value_length() == 16)
        .ok_or_else(|| {
            ArrowError::SchemaError(format!("column {name:?} has type {}", a.data_type()))
        })?;
    let nulls = p.nulls().filter(|n| n.null_count() > 0).cloned();
    let v = (0..p.len())
        .map(|i| {
            if p.is_null(i) {
                [0; 16]
            } else {
                p.value(i).try_into().expect("16-byte values")
            }
        })
        .collect();
    Ok((v, nulls))
}

/// Converts a record batch of [`flow_schema`] (e.g. read from a segment) back into a batch.
pub fn from_record_batch(rb: &RecordBatch) -> Result<FlowBatch, ArrowError> {
    let (family, _) = get_prim::<UInt8Type>(rb, col::FAMILY)?;
    let (next_hop, nh_nulls) = get_addrs(rb, col::NEXT_HOP)?;
    let (vlan, vlan_nulls) = get_prim::<UInt16Type>(rb, col::VLAN)?;
    let (direction, dir_nulls) = get_prim::<UInt8Type>(rb, col::DIRECTION)?;
    let (end_reason, er_nulls) = get_prim::<UInt8Type>(rb, col::END_REASON)?;
    let ms = |name: &str| -> Result<Vec<u64>, ArrowError> {
        let (v, _) = get_prim::<TimestampMillisecondType>(rb, name)?;
        Ok(v.into_iter().map(|x| x.max(0) as u64).collect())
    };
    let bit = |n: &Option<NullBuffer>, i: usize, b: u8| match n {
        Some(n) if n.is_null(i) => 0,
        _ => b,
    };
    let flags_col = family
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (f & FAMILY_BITS)
                | bit(&nh_nulls, i, flags::NEXT_HOP)
                | bit(&vlan_nulls, i, flags::VLAN)
                | bit(&dir_nulls, i, flags::DIRECTION)
                | bit(&er_nulls, i, flags::END_REASON)
        })
        .collect();
    Ok(FlowBatch {
        flags: flags_col,
        exporter: get_addrs(rb, col::EXPORTER)?.0,
        domain: get_prim::<UInt32Type>(rb, col::DOMAIN)?.0,
        in_if: get_prim::<UInt32Type>(rb, col::IN_IF)?.0,
        out_if: get_prim::<UInt32Type>(rb, col::OUT_IF)?.0,
        src_addr: get_addrs(rb, col::SRC_ADDR)?.0,
        dst_addr: get_addrs(rb, col::DST_ADDR)?.0,
        src_port: get_prim::<UInt16Type>(rb, col::SRC_PORT)?.0,
        dst_port: get_prim::<UInt16Type>(rb, col::DST_PORT)?.0,
        proto: get_prim::<UInt8Type>(rb, col::PROTO)?.0,
        tcp_flags: get_prim::<UInt8Type>(rb, col::TCP_FLAGS)?.0,
        tos: get_prim::<UInt8Type>(rb, col::TOS)?.0,
        packets: get_prim::<UInt64Type>(rb, col::PACKETS)?.0,
        bytes: get_prim::<UInt64Type>(rb, col::BYTES)?.0,
        start_ms: ms(col::START_TIME)?,
        end_ms: ms(col::END_TIME)?,
        src_as: get_prim::<UInt32Type>(rb, col::SRC_AS)?.0,
        dst_as: get_prim::<UInt32Type>(rb, col::DST_AS)?.0,
        src_mask: get_prim::<UInt8Type>(rb, col::SRC_MASK)?.0,
        dst_mask: get_prim::<UInt8Type>(rb, col::DST_MASK)?.0,
        next_hop,
        vlan,
        direction,
        sampling_rate: get_prim::<UInt32Type>(rb, col::SAMPLING_RATE)?.0,
        icmp_type: get_prim::<UInt8Type>(rb, col::ICMP_TYPE)?.0,
        icmp_code: get_prim::<UInt8Type>(rb, col::ICMP_CODE)?.0,
        end_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::flow::FlowRecord;

    #[test]
    fn record_batch_round_trip_keeps_families_and_absent_fields() {
        let mut b = FlowBatch::new();
        b.push(&FlowRecord {
            exporter: "192.0.2.1".parse().unwrap(),
            src_addr: "::ffff:10.0.0.1".parse().unwrap(),
            dst_addr: "10.0.0.2".parse().unwrap(),
            next_hop: Some("2001:db8::1".parse().unwrap()),
            vlan: Some(0),
            start_ms: 1_764_000_000_000,
            end_ms: 1_764_000_001_000,
            ..FlowRecord::default()
        });
        b.push(&FlowRecord::default());
        let rb = to_record_batch(&b);
        assert_eq!(rb.schema(), flow_schema());
        assert_eq!(rb.num_rows(), 2);
        assert_eq!(rb.column_by_name(col::VLAN).unwrap().null_count(), 1);
        assert_eq!(from_record_batch(&rb).unwrap(), b);
    }
}
