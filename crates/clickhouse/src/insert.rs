//! Inserts: a [`FlowBatch`] becomes one `INSERT INTO flows FORMAT RowBinary` request, counted
//! exactly once per batch id.
//!
//! Exactly-once without replication: `insert_deduplicate` needs a ReplicatedMergeTree, and 18.16
//! has no `non_replicated_deduplication_window`. So each batch carries an id (for example the
//! JetStream stream sequence of the message that carried it), and the `pharos_batches` ledger
//! says what happened to it:
//!
//! 1. ledger says *stored*: the batch is a retry of one already counted; nothing is written.
//! 2. ledger says *started* (an earlier attempt died between writing the rows and recording
//!    them): the flows with this batch id inside its time span are counted; all there means
//!    stored (recorded now), none means write again, some is [`Error::PartialBatch`].
//! 3. otherwise: record *started*, write the rows (one request, one block), record *stored*.
//!
//! The ledger lookup reads a few granules (the ledger is ordered by batch id); the flows count
//! of case 2 reads the batch's time span only, and only after a failure. The rollups are fed by
//! the same insert, so they count each batch once too. What this does not cover: two writers
//! handling the same batch id at the same moment (a redelivery while the first attempt is still
//! writing); give each partition of the stream one archiver, or let the redelivery wait longer
//! than an insert takes (the consumer's ack wait).

use pharos_model::flow::FlowBatch;

use crate::client::Reader;
use crate::{Archive, Error};

/// The columns written by an insert, in RowBinary order.
pub(crate) const INSERT_COLUMNS: &str = "time, batch_id, row, flags, exporter, domain, in_if, \
    out_if, src_addr, dst_addr, src_port, dst_port, proto, tcp_flags, tos, packets, bytes, \
    start_ms, end_ms, src_as, dst_as, src_mask, dst_mask, next_hop, vlan, direction, \
    sampling_rate, icmp_type, icmp_code, end_reason";

/// Bytes of one encoded row: time 4, batch id 8, row 4, flags 1, exporter 16, domain and
/// interfaces 12, addresses 32, ports 4, proto/flags/tos 3, packets/bytes/start/end 32, AS 8,
/// masks 2, next hop 16, vlan 2, direction 1, sampling 4, icmp and end reason 3.
const ROW_BYTES: usize = 152;

/// Most rows of one batch: a ledger row records the count as UInt32, and the row index is one.
pub const MAX_BATCH_ROWS: usize = u32::MAX as usize;

/// The start second of a flow as the `time` column stores it (DateTime is 32-bit unsigned).
pub(crate) fn time_of(start_ms: u64) -> u32 {
    (start_ms / 1000).min(u64::from(u32::MAX)) as u32
}

/// Encodes `batch` as RowBinary rows of [`INSERT_COLUMNS`].
pub fn encode_rows(batch_id: u64, b: &FlowBatch) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() * ROW_BYTES);
    for i in 0..b.len() {
        out.extend_from_slice(&time_of(b.start_ms[i]).to_le_bytes());
        out.extend_from_slice(&batch_id.to_le_bytes());
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.push(b.flags[i]);
        out.extend_from_slice(&b.exporter[i]);
        out.extend_from_slice(&b.domain[i].to_le_bytes());
        out.extend_from_slice(&b.in_if[i].to_le_bytes());
        out.extend_from_slice(&b.out_if[i].to_le_bytes());
        out.extend_from_slice(&b.src_addr[i]);
        out.extend_from_slice(&b.dst_addr[i]);
        out.extend_from_slice(&b.src_port[i].to_le_bytes());
        out.extend_from_slice(&b.dst_port[i].to_le_bytes());
        out.push(b.proto[i]);
        out.push(b.tcp_flags[i]);
        out.push(b.tos[i]);
        out.extend_from_slice(&b.packets[i].to_le_bytes());
        out.extend_from_slice(&b.bytes[i].to_le_bytes());
        out.extend_from_slice(&b.start_ms[i].to_le_bytes());
        out.extend_from_slice(&b.end_ms[i].to_le_bytes());
        out.extend_from_slice(&b.src_as[i].to_le_bytes());
        out.extend_from_slice(&b.dst_as[i].to_le_bytes());
        out.push(b.src_mask[i]);
        out.push(b.dst_mask[i]);
        out.extend_from_slice(&b.next_hop[i]);
        out.extend_from_slice(&b.vlan[i].to_le_bytes());
        out.push(b.direction[i]);
        out.extend_from_slice(&b.sampling_rate[i].to_le_bytes());
        out.push(b.icmp_type[i]);
        out.push(b.icmp_code[i]);
        out.push(b.end_reason[i]);
    }
    out
}

/// Decodes one row of [`INSERT_COLUMNS`] (as a listing selects them) into `b`.
pub(crate) fn decode_row(r: &mut Reader, b: &mut FlowBatch) -> Result<(u64, u32), Error> {
    let _time = r.u32()?;
    let batch_id = r.u64()?;
    let row = r.u32()?;
    b.flags.push(r.u8()?);
    b.exporter.push(r.bytes()?);
    b.domain.push(r.u32()?);
    b.in_if.push(r.u32()?);
    b.out_if.push(r.u32()?);
    b.src_addr.push(r.bytes()?);
    b.dst_addr.push(r.bytes()?);
    b.src_port.push(r.u16()?);
    b.dst_port.push(r.u16()?);
    b.proto.push(r.u8()?);
    b.tcp_flags.push(r.u8()?);
    b.tos.push(r.u8()?);
    b.packets.push(r.u64()?);
    b.bytes.push(r.u64()?);
    b.start_ms.push(r.u64()?);
    b.end_ms.push(r.u64()?);
    b.src_as.push(r.u32()?);
    b.dst_as.push(r.u32()?);
    b.src_mask.push(r.u8()?);
    b.dst_mask.push(r.u8()?);
    b.next_hop.push(r.bytes()?);
    b.vlan.push(r.u16()?);
    b.direction.push(r.u8()?);
    b.sampling_rate.push(r.u32()?);
    b.icmp_type.push(r.u8()?);
    b.icmp_code.push(r.u8()?);
    b.end_reason.push(r.u8()?);
    Ok((batch_id, row))
}

/// What [`Archive::insert`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The rows were written (this many).
    Written(u64),
    /// The ledger already recorded the batch as stored: a retry, nothing written.
    Duplicate,
    /// An earlier attempt wrote every row but died before recording it; now recorded.
    Recovered,
}

/// The ledger state of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ledger {
    Unknown,
    Started { rows: u32, min: u32, max: u32 },
    Stored,
}

impl Archive {
    /// Writes `batch` under `batch_id` unless that id was already stored (see the module doc):
    /// a retried batch is counted once. An empty batch writes nothing.
    pub async fn insert(&self, batch_id: u64, batch: &FlowBatch) -> Result<Inserted, Error> {
        if batch.is_empty() {
            return Ok(Inserted::Written(0));
        }
        if batch.len() > MAX_BATCH_ROWS {
            return Err(Error::Config(format!(
                "batch {batch_id} has {} flows, more than {MAX_BATCH_ROWS}: split it",
                batch.len()
            )));
        }
        match self.ledger(batch_id).await? {
            Ledger::Stored => return Ok(Inserted::Duplicate),
            Ledger::Started { rows, min, max } => {
                let found = self.count_batch(batch_id, min, max).await?;
                if found == u64::from(rows) {
                    self.record(batch_id, 1, batch).await?;
                    return Ok(Inserted::Recovered);
                }
                if found != 0 {
                    return Err(Error::PartialBatch {
                        batch_id,
                        found,
                        rows: u64::from(rows),
                    });
                }
            }
            Ledger::Unknown => {}
        }
        self.record(batch_id, 0, batch).await?;
        self.write_rows(batch_id, batch).await?;
        self.record(batch_id, 1, batch).await?;
        Ok(Inserted::Written(batch.len() as u64))
    }

    /// The rows of `batch`, written without the ledger (tests simulate an attempt that died
    /// between writing and recording with [`Archive::record_started`] and this).
    #[doc(hidden)]
    pub async fn write_rows(&self, batch_id: u64, batch: &FlowBatch) -> Result<(), Error> {
        let body = encode_rows(batch_id, batch);
        let sql = format!("INSERT INTO flows ({INSERT_COLUMNS}) FORMAT RowBinary");
        // One block for the whole batch, so that the rows of one day land in one part.
        let block = batch.len().max(1).to_string();
        self.client
            .insert(&sql, body, &[("max_insert_block_size", &block)])
            .await
    }

    /// Records that an attempt to store `batch` started (see [`Archive::write_rows`]).
    #[doc(hidden)]
    pub async fn record_started(&self, batch_id: u64, batch: &FlowBatch) -> Result<(), Error> {
        self.record(batch_id, 0, batch).await
    }

    async fn record(&self, batch_id: u64, state: u8, batch: &FlowBatch) -> Result<(), Error> {
        let min = batch.start_ms.iter().min().copied().map_or(0, time_of);
        let max = batch.start_ms.iter().max().copied().map_or(0, time_of);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.client
            .execute(&format!(
                "INSERT INTO pharos_batches (time, batch_id, state, rows, min_time, max_time) \
                 VALUES ({now}, {batch_id}, {state}, {}, {min}, {max})",
                batch.len()
            ))
            .await
    }

    async fn ledger(&self, batch_id: u64) -> Result<Ledger, Error> {
        let body = self
            .client
            .query(&format!(
                "SELECT state, rows, toUInt32(min_time), toUInt32(max_time) FROM pharos_batches \
                 WHERE batch_id = {batch_id} ORDER BY state DESC LIMIT 1 FORMAT RowBinary"
            ))
            .await?;
        if body.is_empty() {
            return Ok(Ledger::Unknown);
        }
        let mut r = Reader::new(&body, "batch ledger");
        let (state, rows, min, max) = (r.u8()?, r.u32()?, r.u32()?, r.u32()?);
        Ok(if state >= 1 {
            Ledger::Stored
        } else {
            Ledger::Started { rows, min, max }
        })
    }

    async fn count_batch(&self, batch_id: u64, min: u32, max: u32) -> Result<u64, Error> {
        let body = self
            .client
            .query(&format!(
                "SELECT count() FROM flows WHERE time >= toDateTime({min}) AND \
                 time <= toDateTime({max}) AND batch_id = {batch_id} FORMAT RowBinary"
            ))
            .await?;
        Reader::new(&body, "batch count").u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::flow::FlowRecord;

    #[test]
    fn encoded_rows_decode_to_the_same_batch() {
        let mut b = FlowBatch::new();
        b.push(&FlowRecord {
            src_addr: "10.0.0.1".parse().unwrap(),
            dst_addr: "2001:db8::1".parse().unwrap(),
            vlan: Some(7),
            next_hop: Some("192.0.2.1".parse().unwrap()),
            packets: 3,
            bytes: 4500,
            start_ms: 1_765_000_000_123,
            end_ms: 1_765_000_001_000,
            ..FlowRecord::default()
        });
        b.push(&FlowRecord::default());
        let bytes = encode_rows(9, &b);
        assert_eq!(bytes.len(), 2 * ROW_BYTES);
        let mut r = Reader::new(&bytes, "test");
        let mut out = FlowBatch::new();
        assert_eq!(decode_row(&mut r, &mut out).unwrap(), (9, 0));
        assert_eq!(decode_row(&mut r, &mut out).unwrap(), (9, 1));
        assert!(r.is_empty());
        assert_eq!(out, b);
        // A truncated answer is an error, not a panic.
        let mut r = Reader::new(&bytes[..ROW_BYTES - 1], "test");
        assert!(decode_row(&mut r, &mut FlowBatch::new()).is_err());
    }
}
