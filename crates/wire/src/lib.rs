//! Zero-copy decoders for flow export protocols (NetFlow v5, NetFlow v9, IPFIX, sFlow v5) and
//! capture files (pcap, pcapng), in the style of smoltcp's `wire`: a checked view over borrowed
//! bytes (`new_checked` does the only length reasoning; accessors never panic), then plain values
//! written into a caller's reusable [`FlowBatch`].
//!
//! # API used by the collectors and the CLI (stable names)
//!
//! - [`FlowDecoder::new`]`(`[`DecoderConfig`]`)`, one per collector thread;
//!   [`FlowDecoder::decode`]`(exporter: SocketAddr, received_ms: u64, datagram: &[u8], out: &mut
//!   FlowBatch) -> Result<`[`DecodeOutcome`]`, `[`WireError`]`>` sniffs the version and appends
//!   the flows; [`FlowDecoder::stats`] returns [`DecoderStats`] (per-protocol counters, `drops`
//!   by reason, sequence loss per exporter; `Display` gives the `--stats` summary);
//!   [`FlowDecoder::expire`]`(now_ms)` forgets stale templates and held data.
//! - [`DecodeOutcome`] `{ protocol: `[`Protocol`]`, flows, held, counters: Vec<`[`CounterSample`]`>,
//!   lost, domain, export_ms }` (`export_ms`: the header's export time, from which the collector
//!   estimates each exporter's clock offset).
//! - [`pcap::Capture::new`]`(&[u8])` iterates `Result<`[`pcap::Datagram`]`, WireError>` with
//!   `timestamp_ms`, `src`, `dst`, `payload`; [`pcap::Capture::stats`] counts what was skipped.
//!
//! Beyond the names agreed with the collectors: [`DecoderConfig`] also carries the bounds
//! (`hold_timeout`, `max_held_bytes_per_exporter`, `max_fields_per_template`,
//! `max_templates_per_exporter`, `max_exporters`, `max_samplers_per_domain`, `max_sequence_gap`,
//! `reorder_window`; build it with `..DecoderConfig::default()`); [`DecoderStats`] has per-protocol
//! [`ProtocolStats`] and per-stream [`SequenceStats`]; [`FlowRecord`] is `Copy` and
//! [`FlowBatch::extend_records`] appends many rows column by column.
//!
//! Scale-out ([`share`]): [`TemplateShare`] carries learned templates, options templates and
//! sampling tables between decoders (and, through the cluster's key-value bucket, between
//! collectors); attach one with [`FlowDecoder::share_templates`].
//!
//! Notes for callers: an `Err` from `decode` means nothing was appended; problems inside a
//! datagram are counted in `stats().drops` and the rest is decoded. For sFlow, the flow's
//! `exporter` is the agent address from the datagram (not the UDP source), `domain` the
//! sub-agent id, and start/end are `received_ms`. For v5, `domain` is `engine_type << 8 |
//! engine_id`.

#![forbid(unsafe_code)]

mod bytes;
pub mod decoder;
pub mod error;
pub mod ipfix;
pub mod netflow_v5;
pub mod netflow_v9;
pub mod packet;
pub mod pcap;
pub mod sflow;
pub mod share;
pub mod syslog;
pub mod template;

pub use decoder::{
    DecodeOutcome, DecoderConfig, DecoderStats, FlowDecoder, Protocol, ProtocolStats, SeqKey,
    SequenceStats,
};
pub use error::WireError;
pub use pharos_model::flow::{FlowBatch, FlowRecord};
pub use sflow::{CounterSample, EthernetCounters, InterfaceCounters};
pub use share::{ShareError, ShareStats, SharedEntry, TemplateShare};
