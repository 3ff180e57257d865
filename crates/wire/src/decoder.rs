//! The stateful flow decoder: version sniffing, template cache, held data, sampling tables,
//! sequence accounting and statistics. One [`FlowDecoder`] per collector thread.
//!
//! Contract:
//! - [`FlowDecoder::decode`] appends the flows of one datagram to the caller's batch. An `Err`
//!   means the datagram header itself was unusable and nothing was appended; problems inside a
//!   datagram (a bad set, a refused template, a truncated sample) are counted in
//!   [`DecoderStats::drops`] by reason and the rest of the datagram is still decoded.
//! - Templates are keyed by (exporter address, observation domain / source id, template id,
//!   NetFlow v9 vs IPFIX), expire after [`DecoderConfig::template_timeout`] without refresh, and
//!   are replaced by a redefinition or removed by an IPFIX withdrawal.
//! - Data sets whose template is unknown are held (bounded per exporter in bytes and in time) and
//!   decoded, in arrival order, as soon as the template arrives; held data that expires is
//!   counted as dropped with the reason `"held data expired (no template)"`. Every data set
//!   that never met its template (expired, over the hold budget, or still held at
//!   [`FlowDecoder::finish`]) is also counted per template in [`DecoderStats::no_template`],
//!   so a tool can say which exporter sends data before its templates; when the template
//!   arrives later, the dropped sets are converted to a record count.
//! - Packets and bytes are multiplied by the sampling rate, resolved in this order: the
//!   per-exporter override, a rate stated in the data record itself, the rate of the record's
//!   sampler / selector id (from options data), the latest rate the domain's options data gave,
//!   the v5 header or sFlow sample rate, else 1. Options data (v9 and IPFIX) fills one table
//!   per (exporter, domain, protocol): sampler / selector id (IE 48 or 302) to rate, at most
//!   [`DecoderConfig::max_samplers_per_domain`] ids (further ids are counted as `"sampler
//!   table full (sampler ignored)"` and their records get the domain's latest rate), forgotten
//!   by [`FlowDecoder::expire`] with the exporter's last template. The rate an options record
//!   states comes from IEs 34/50 (interval), or PSAMP's `selectorAlgorithm` (304) with its
//!   parameters: interval and space (305/306), size and population (309/310), probability
//!   (311); see `Acc::stated_rate` in `template.rs`.
//! - Sequence numbers are tracked per (exporter, domain, protocol) modulo 2^32: v5 counts flows,
//!   v9 counts export packets, IPFIX counts data records, sFlow counts datagrams. A forward gap up
//!   to [`DecoderConfig::max_sequence_gap`] is loss; a small step back is reordering (its count is
//!   taken back from the loss); anything else is an exporter restart.
//! - Memory is bounded by the limits in [`DecoderConfig`]; exceeding one is a counted refusal.
//! - With a [`TemplateShare`] attached ([`FlowDecoder::share_templates`]), templates, options
//!   templates and sampling tables learned from datagrams are handed out when new or changed
//!   (and again every [`REEXPORT_MS`] while refreshed), and those learned by other decoders are
//!   applied before the next datagram: validated by the same template parser, under the same
//!   bounds (drop reasons name them "shared"), never replacing a newer local definition, never
//!   touching sequence state; data held for a template that arrives this way is released after
//!   the next datagram. See [`crate::share`].

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pharos_model::flow::{FlowBatch, FlowRecord};

/// Records decoded per column-wise append.
const CHUNK: usize = 32;

use crate::bytes::u16_at;
use crate::error::WireError;
use crate::ipfix::IpfixPacket;
use crate::netflow_v5::{V5Packet, V5Scratch};
use crate::netflow_v9::V9Packet;
use crate::sflow::{CounterSample, SflowDatagram};
use crate::share::{
    self, Body, Entry as SharedValue, Head, IMPORT_BATCH, REEXPORT_MS, TemplateShare,
};
use crate::template::{
    Acc, FieldSpec, Plan, TemplateEvent, VARIABLE_LENGTH, ipfix_templates, v9_templates,
};

/// Hands a template to the share.
fn export_template(share: &TemplateShare, ctx: &SetCtx, id: u16, t: &Template, at_ms: u64) {
    let h = Head {
        ipfix: ctx.ipfix,
        exporter: ctx.exporter,
        domain: ctx.domain,
        updated_ms: at_ms,
    };
    share.publish(
        share::template_key(ctx.exporter, ctx.ipfix, ctx.domain, id),
        share::encode_template(&h, id, t.scope, t.options, &t.fields),
    );
}

/// Most templates [`DecoderStats::no_template`] names; data of further templates is counted in
/// [`DecoderStats::no_template_sets`] only (bounds memory on hostile input).
pub const MAX_NO_TEMPLATE_KEYS: usize = 256;
/// Most distinct data set lengths remembered per template while it is unknown, to count the
/// records once it arrives; past this the record count stays unknown.
const MAX_SET_LENGTHS: usize = 64;

/// Decoder settings and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// A template not refreshed for this long is forgotten (RFC 6728 collector default 1800 s).
    pub template_timeout: Duration,
    /// Sampling rate per exporter address (UDP source; for sFlow also the agent address) that
    /// replaces whatever the exporter says.
    pub sampling_override: HashMap<IpAddr, u32>,
    /// How long data waits for its template before it is dropped (default 2 s).
    pub hold_timeout: Duration,
    /// Bytes of data waiting for templates, per exporter (default 1 MiB).
    pub max_held_bytes_per_exporter: usize,
    /// Fields per template (default 256); bigger templates are refused.
    pub max_fields_per_template: usize,
    /// Templates per exporter address, all domains together (default 1024).
    pub max_templates_per_exporter: usize,
    /// Exporters with templates, held data or sequence state (default 10,000).
    pub max_exporters: usize,
    /// Samplers / selectors remembered per domain (default 256).
    pub max_samplers_per_domain: usize,
    /// Largest forward sequence gap counted as loss; bigger jumps are restarts (default 2^20).
    pub max_sequence_gap: u32,
    /// Largest backward sequence step counted as reordering; bigger ones are restarts (default
    /// 1024).
    pub reorder_window: u32,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            template_timeout: Duration::from_secs(1800),
            sampling_override: HashMap::new(),
            hold_timeout: Duration::from_secs(2),
            max_held_bytes_per_exporter: 1 << 20,
            max_fields_per_template: 256,
            max_templates_per_exporter: 1024,
            max_exporters: 10_000,
            max_samplers_per_domain: 256,
            max_sequence_gap: 1 << 20,
            reorder_window: 1024,
        }
    }
}

/// The flow export protocol of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// NetFlow v5.
    NetflowV5,
    /// NetFlow v9 (RFC 3954).
    NetflowV9,
    /// IPFIX (RFC 7011).
    Ipfix,
    /// sFlow version 5.
    Sflow5,
}

impl Protocol {
    /// Short lowercase name (`netflow_v5`, `netflow_v9`, `ipfix`, `sflow5`), as used in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::NetflowV5 => "netflow_v5",
            Protocol::NetflowV9 => "netflow_v9",
            Protocol::Ipfix => "ipfix",
            Protocol::Sflow5 => "sflow5",
        }
    }

    /// What one unit of sequence loss means for this protocol.
    pub fn loss_unit(self) -> &'static str {
        match self {
            Protocol::NetflowV5 => "flows",
            Protocol::NetflowV9 => "datagrams",
            Protocol::Ipfix => "records",
            Protocol::Sflow5 => "datagrams",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one datagram gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOutcome {
    /// Protocol of the datagram.
    pub protocol: Protocol,
    /// Flows appended to the batch (including flows of earlier held data released by a template
    /// in this datagram).
    pub flows: usize,
    /// Data sets of this datagram held waiting for their template.
    pub held: usize,
    /// sFlow counter samples of this datagram.
    pub counters: Vec<CounterSample>,
    /// Sequence loss detected at this datagram (unit: [`Protocol::loss_unit`]).
    pub lost: u64,
    /// Observation domain of the datagram's header (IPFIX domain, v9 source id, v5
    /// `engine_type << 8 | engine_id`, sFlow sub-agent id).
    pub domain: u32,
    /// Export time of the datagram's header by the exporter's clock (Unix ms: v5 `unix_secs` and
    /// `unix_nsecs`, v9 `unix_secs`, IPFIX `exportTime`); `None` for sFlow, whose flows are
    /// stamped with the receive time. Collectors compare it with the receive time to estimate
    /// the exporter's clock offset (the flow times derive from the same clock).
    pub export_ms: Option<u64>,
}

/// Per-protocol counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtocolStats {
    /// Datagrams seen (decoded or not).
    pub datagrams: u64,
    /// Datagrams refused (an `Err` from `decode`).
    pub errors: u64,
    /// Flows produced.
    pub flows: u64,
    /// sFlow counter samples produced.
    pub counter_samples: u64,
    /// Options data records processed (sampling, system init time).
    pub options_records: u64,
}

/// Key of a sequence-number stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqKey {
    /// Exporter address (sFlow: agent address).
    pub exporter: IpAddr,
    /// Observation domain / source id / v5 engine / sFlow sub-agent.
    pub domain: u32,
    /// Protocol.
    pub protocol: Protocol,
}

/// Sequence accounting of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SequenceStats {
    /// Datagrams of this stream.
    pub datagrams: u64,
    /// Units lost (see [`Protocol::loss_unit`]).
    pub lost: u64,
    /// Datagrams that arrived late or twice.
    pub reordered: u64,
    /// Exporter restarts (big jumps) detected.
    pub restarts: u64,
    expected: Option<u32>,
}

/// A template as the decoder keys it: exporter, observation domain (v9 source id), template id
/// and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateRef {
    /// Exporter address (the UDP source).
    pub exporter: IpAddr,
    /// Observation domain (IPFIX) or source id (NetFlow v9).
    pub domain: u32,
    /// Template id.
    pub id: u16,
    /// IPFIX (true) or NetFlow v9 (false).
    pub ipfix: bool,
}

impl fmt::Display for TemplateRef {
    /// `v9 template 256 from 10.0.0.1 domain 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} template {} from {} domain {}",
            if self.ipfix { "IPFIX" } else { "v9" },
            self.id,
            self.exporter,
            self.domain
        )
    }
}

/// Data sets of one template that were dropped because the template was unknown when they
/// arrived and did not come within the hold time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Undecoded {
    /// Data sets dropped.
    pub sets: u64,
    /// Bytes of those sets.
    pub bytes: u64,
    /// Data records in those sets, known once the template arrived later (its record length
    /// divides each set); `None` while it has not, or when its records have variable length.
    pub records: Option<u64>,
    /// Sets not yet converted to records: count per set length.
    lengths: BTreeMap<usize, u64>,
    /// Set when more than [`MAX_SET_LENGTHS`] distinct lengths came: records stay unknown.
    lengths_lost: bool,
}

impl Undecoded {
    fn add(&mut self, len: usize) {
        self.sets += 1;
        self.bytes += len as u64;
        if self.lengths_lost {
            return;
        }
        if self.lengths.len() >= MAX_SET_LENGTHS && !self.lengths.contains_key(&len) {
            self.lengths_lost = true;
            self.lengths.clear();
            return;
        }
        *self.lengths.entry(len).or_insert(0) += 1;
    }

    /// The template arrived: its fixed record length (`None`: variable) counts the records.
    fn template_known(&mut self, record_len: Option<usize>) {
        let lengths = std::mem::take(&mut self.lengths);
        let Some(l) = record_len.filter(|l| *l > 0) else {
            return;
        };
        if self.lengths_lost {
            return;
        }
        if lengths.is_empty() && self.records.is_some() {
            return;
        }
        let n: u64 = lengths
            .iter()
            .map(|(len, count)| (len / l) as u64 * count)
            .sum();
        self.records = Some(self.records.unwrap_or(0) + n);
    }
}

/// Everything a decoder counted since it was created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecoderStats {
    /// NetFlow v5 counters.
    pub netflow_v5: ProtocolStats,
    /// NetFlow v9 counters.
    pub netflow_v9: ProtocolStats,
    /// IPFIX counters.
    pub ipfix: ProtocolStats,
    /// sFlow v5 counters.
    pub sflow5: ProtocolStats,
    /// Datagrams whose version is none of the above.
    pub unknown_version: u64,
    /// Things dropped or refused, by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Sequence accounting per (exporter, domain, protocol).
    pub sequences: BTreeMap<SeqKey, SequenceStats>,
    /// Templates currently cached.
    pub templates_active: usize,
    /// Template definitions accepted (new or changed).
    pub templates_learned: u64,
    /// Templates removed by withdrawal.
    pub templates_withdrawn: u64,
    /// Templates removed because they were not refreshed in time.
    pub templates_expired: u64,
    /// Data sets held waiting for a template.
    pub held_sets: u64,
    /// Held data sets decoded when their template arrived.
    pub held_released: u64,
    /// Data sets dropped because their template was unknown (any reason: expired while held,
    /// over the hold budget, still held at [`FlowDecoder::finish`]).
    pub no_template_sets: u64,
    /// The same, per template (at most [`MAX_NO_TEMPLATE_KEYS`] templates).
    pub no_template: BTreeMap<TemplateRef, Undecoded>,
    /// Enterprise-specific fields walked over in data records (kept out of `FlowRecord`).
    pub enterprise_fields: u64,
    /// IETF fields walked over in data records that `FlowRecord` has no column for.
    pub unmapped_fields: u64,
    /// Templates and sampling tables handed to the [`TemplateShare`] (learned or changed here).
    pub shared_out: u64,
    /// Templates and sampling tables applied from the [`TemplateShare`] (learned elsewhere).
    pub shared_in: u64,
    /// Shared entries ignored because this decoder had something newer, or because they were
    /// older than the template timeout (refused ones are in `drops`).
    pub shared_ignored: u64,
}

impl DecoderStats {
    /// Counters of one protocol.
    pub fn protocol(&self, p: Protocol) -> &ProtocolStats {
        match p {
            Protocol::NetflowV5 => &self.netflow_v5,
            Protocol::NetflowV9 => &self.netflow_v9,
            Protocol::Ipfix => &self.ipfix,
            Protocol::Sflow5 => &self.sflow5,
        }
    }

    fn protocol_mut(&mut self, p: Protocol) -> &mut ProtocolStats {
        match p {
            Protocol::NetflowV5 => &mut self.netflow_v5,
            Protocol::NetflowV9 => &mut self.netflow_v9,
            Protocol::Ipfix => &mut self.ipfix,
            Protocol::Sflow5 => &mut self.sflow5,
        }
    }

    /// Total drops over all reasons.
    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }

    /// Total sequence loss over all streams (mixed units; see [`Protocol::loss_unit`]).
    pub fn lost(&self) -> u64 {
        self.sequences.values().map(|s| s.lost).sum()
    }

    fn drop(&mut self, reason: &'static str, n: u64) {
        *self.drops.entry(reason).or_insert(0) += n;
    }

    /// Counts one data set of `len` bytes dropped because template `key` was unknown.
    fn no_template(&mut self, key: &TKey, len: usize) {
        self.no_template_sets += 1;
        let r = key.as_ref();
        if self.no_template.len() < MAX_NO_TEMPLATE_KEYS || self.no_template.contains_key(&r) {
            self.no_template.entry(r).or_default().add(len);
        }
    }
}

impl fmt::Display for DecoderStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "protocol     datagrams   errors      flows  counters  options"
        )?;
        for p in [
            Protocol::NetflowV5,
            Protocol::NetflowV9,
            Protocol::Ipfix,
            Protocol::Sflow5,
        ] {
            let s = self.protocol(p);
            writeln!(
                f,
                "{:<10} {:>11} {:>8} {:>10} {:>9} {:>8}",
                p.name(),
                s.datagrams,
                s.errors,
                s.flows,
                s.counter_samples,
                s.options_records
            )?;
        }
        writeln!(f, "unknown version datagrams: {}", self.unknown_version)?;
        writeln!(
            f,
            "templates: {} active, {} learned, {} withdrawn, {} expired",
            self.templates_active,
            self.templates_learned,
            self.templates_withdrawn,
            self.templates_expired
        )?;
        writeln!(
            f,
            "held data sets: {} held, {} decoded after their template, {} dropped without it",
            self.held_sets, self.held_released, self.no_template_sets
        )?;
        writeln!(
            f,
            "fields not mapped to flow columns: {} enterprise-specific, {} IETF",
            self.enterprise_fields, self.unmapped_fields
        )?;
        if self.shared_out + self.shared_in + self.shared_ignored > 0 {
            writeln!(
                f,
                "shared templates and sampling tables: {} handed out, {} applied, {} ignored (older)",
                self.shared_out, self.shared_in, self.shared_ignored
            )?;
        }
        if self.drops.is_empty() {
            writeln!(f, "drops: none")?;
        } else {
            writeln!(f, "drops:")?;
            for (reason, n) in &self.drops {
                writeln!(f, "  {n:>10}  {reason}")?;
            }
        }
        if self.sequences.is_empty() {
            writeln!(f, "sequence: no stream")?;
        } else {
            writeln!(
                f,
                "sequence (exporter domain protocol: datagrams lost reordered restarts):"
            )?;
            for (k, s) in &self.sequences {
                writeln!(
                    f,
                    "  {} {} {}: {} datagrams, {} {} lost, {} reordered, {} restarts",
                    k.exporter,
                    k.domain,
                    k.protocol,
                    s.datagrams,
                    s.lost,
                    k.protocol.loss_unit(),
                    s.reordered,
                    s.restarts
                )?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TKey {
    exporter: IpAddr,
    domain: u32,
    id: u16,
    ipfix: bool,
}

impl TKey {
    fn as_ref(&self) -> TemplateRef {
        TemplateRef {
            exporter: self.exporter,
            domain: self.domain,
            id: self.id,
            ipfix: self.ipfix,
        }
    }
}

#[derive(Debug, Clone)]
struct Template {
    fields: Vec<FieldSpec>,
    scope: u16,
    options: bool,
    plan: Plan,
    refreshed_ms: u64,
    /// When it was learned or last handed to the share (imported: its origin's time).
    exported_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DKey {
    exporter: IpAddr,
    domain: u32,
    ipfix: bool,
}

#[derive(Debug, Clone, Default)]
struct DomainState {
    rate: Option<u32>,
    samplers: HashMap<u64, u32>,
    sys_init_ms: Option<u64>,
    /// When options data (or a shared table) last changed it, Unix ms.
    updated_ms: u64,
    /// When it was last handed to the share (0: never).
    exported_ms: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct ExporterState {
    templates: usize,
    held_bytes: usize,
}

#[derive(Debug, Clone, Copy)]
struct SetCtx {
    exporter: IpAddr,
    domain: u32,
    export_ms: u64,
    uptime: Option<u32>,
    ipfix: bool,
}

#[derive(Debug, Clone)]
struct Held {
    key: TKey,
    ctx: SetCtx,
    received_ms: u64,
    data: Vec<u8>,
}

/// Decodes NetFlow v5/v9, IPFIX and sFlow v5 datagrams, keeping template, sampling and sequence
/// state across datagrams. One per collector thread.
#[derive(Debug)]
pub struct FlowDecoder {
    config: DecoderConfig,
    templates: HashMap<TKey, Template>,
    exporters: HashMap<IpAddr, ExporterState>,
    domains: HashMap<DKey, DomainState>,
    held: Vec<Held>,
    scratch: Vec<FieldSpec>,
    v5: V5Scratch,
    stats: DecoderStats,
    /// Where learned templates go and shared ones come from, with the generation applied.
    share: Option<(TemplateShare, u64)>,
    /// A shared template arrived while data was held: release it after the next datagram.
    release_pending: bool,
}

impl FlowDecoder {
    /// A decoder with no state.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            templates: HashMap::new(),
            exporters: HashMap::new(),
            domains: HashMap::new(),
            held: Vec::new(),
            scratch: Vec::new(),
            v5: V5Scratch::default(),
            stats: DecoderStats::default(),
            share: None,
            release_pending: false,
        }
    }

    /// Attaches a [`TemplateShare`]: from now on the templates, options templates and sampling
    /// tables this decoder learns from datagrams are handed to it, and what it received from
    /// elsewhere is applied before each datagram (see [`crate::share`]). Sequence-number state
    /// is never shared.
    pub fn share_templates(&mut self, share: TemplateShare) {
        self.share = Some((share, 0));
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Everything counted so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Sniffs the version (NetFlow 5, 9, IPFIX 10, sFlow 5) and decodes one datagram into `out`
    /// (appends). `exporter` is the UDP source; `received_ms` the receive time (Unix ms), which
    /// also drives template and held-data expiry.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        received_ms: u64,
        datagram: &[u8],
        out: &mut FlowBatch,
    ) -> Result<DecodeOutcome, WireError> {
        if let Some(h) = self.held.first()
            && received_ms.saturating_sub(h.received_ms)
                > self.config.hold_timeout.as_millis() as u64
        {
            self.expire_held(received_ms);
        }
        if datagram.len() < 4 {
            self.stats.drop("datagram shorter than a version field", 1);
            return Err(WireError::Truncated {
                what: "datagram",
                need: 4,
                have: datagram.len(),
            });
        }
        if let Some((share, seen)) = &self.share
            && share.generation() != *seen
        {
            self.import_shared(received_ms);
        }
        let v = u16_at(datagram, 0);
        let (protocol, mut r) = match v {
            5 => (Protocol::NetflowV5, self.decode_v5(exporter, datagram, out)),
            9 => (
                Protocol::NetflowV9,
                self.decode_v9(exporter, received_ms, datagram, out),
            ),
            10 => (
                Protocol::Ipfix,
                self.decode_ipfix(exporter, received_ms, datagram, out),
            ),
            0 if u16_at(datagram, 2) == 5 => (
                Protocol::Sflow5,
                self.decode_sflow(exporter, received_ms, datagram, out),
            ),
            _ => {
                self.stats.unknown_version += 1;
                self.stats.drop("unknown version", 1);
                let v = if v == 0 { u16_at(datagram, 2) } else { v };
                return Err(WireError::UnknownVersion(v));
            }
        };
        if self.release_pending
            && let Ok(o) = &mut r
        {
            self.release_pending = false;
            self.release_held(out, o);
        }
        let ps = self.stats.protocol_mut(protocol);
        ps.datagrams += 1;
        match &r {
            Ok(o) => {
                ps.flows += o.flows as u64;
                ps.counter_samples += o.counters.len() as u64;
            }
            Err(e) => {
                ps.errors += 1;
                self.stats.drop(e.reason(), 1);
            }
        }
        r
    }

    /// Forgets templates not refreshed within the template timeout and drops held data older
    /// than the hold timeout, counting both.
    pub fn expire(&mut self, now_ms: u64) {
        self.expire_held(now_ms);
        let timeout = self.config.template_timeout.as_millis() as u64;
        let mut expired = 0u64;
        let exporters = &mut self.exporters;
        self.templates.retain(|k, t| {
            let keep = now_ms.saturating_sub(t.refreshed_ms) <= timeout;
            if !keep {
                expired += 1;
                if let Some(e) = exporters.get_mut(&k.exporter) {
                    e.templates = e.templates.saturating_sub(1);
                }
            }
            keep
        });
        self.stats.templates_expired += expired;
        self.stats.templates_active = self.templates.len();
        self.exporters
            .retain(|_, e| e.templates > 0 || e.held_bytes > 0);
        // Sampler / selector tables go with the exporter's last template: its options data
        // comes again after its templates, and a full domain table must not refuse new
        // exporters forever.
        let exporters = &self.exporters;
        self.domains
            .retain(|k, _| exporters.contains_key(&k.exporter));
    }

    fn expire_held(&mut self, now_ms: u64) {
        let timeout = self.config.hold_timeout.as_millis() as u64;
        let mut dropped = 0u64;
        let exporters = &mut self.exporters;
        let stats = &mut self.stats;
        self.held.retain(|h| {
            let keep = now_ms.saturating_sub(h.received_ms) <= timeout;
            if !keep {
                dropped += 1;
                stats.no_template(&h.key, h.data.len());
                if let Some(e) = exporters.get_mut(&h.key.exporter) {
                    e.held_bytes = e.held_bytes.saturating_sub(h.data.len());
                }
            }
            keep
        });
        if dropped > 0 {
            self.stats.drop("held data expired (no template)", dropped);
        }
    }

    /// The end of the input (a capture read to its end): data still held can no longer meet
    /// its template, so it is dropped and counted like expired data (reason `"held data
    /// expired (no template)"`, and in [`DecoderStats::no_template`]).
    pub fn finish(&mut self) {
        self.expire_held(u64::MAX);
    }

    fn rate_override(&self, ip: IpAddr) -> Option<u32> {
        if self.config.sampling_override.is_empty() {
            None
        } else {
            self.config.sampling_override.get(&ip).copied()
        }
    }

    /// Sequence accounting; `advance` is how far this datagram moves the sequence (`None`:
    /// unknown, resynchronise on the next datagram). Returns the loss detected.
    fn track(&mut self, key: SeqKey, seq: u32, advance: Option<u32>) -> u64 {
        let limit = self.config.max_exporters.saturating_mul(4);
        let max_gap = self.config.max_sequence_gap;
        let window = self.config.reorder_window;
        // one map search per datagram (the table is full only for a key not in it yet)
        let full = self.stats.sequences.len() >= limit;
        let st = match self.stats.sequences.entry(key) {
            Entry::Occupied(e) => Some(e.into_mut()),
            Entry::Vacant(e) if !full => Some(e.insert(SequenceStats::default())),
            Entry::Vacant(_) => None,
        };
        let Some(st) = st else {
            self.stats.drop("sequence table full (not tracked)", 1);
            return 0;
        };
        st.datagrams += 1;
        let mut lost = 0u64;
        if let Some(exp) = st.expected {
            let d = seq.wrapping_sub(exp);
            if d == 0 {
            } else if d < 0x8000_0000 {
                if d <= max_gap {
                    lost = d as u64;
                    st.lost += lost;
                } else {
                    st.restarts += 1;
                }
            } else if exp.wrapping_sub(seq) <= window {
                // Late or duplicate: it was counted as lost when the gap appeared.
                st.reordered += 1;
                st.lost = st.lost.saturating_sub(advance.unwrap_or(0) as u64);
                return 0;
            } else {
                st.restarts += 1;
            }
        }
        st.expected = advance.map(|a| seq.wrapping_add(a));
        lost
    }

    fn decode_v5(
        &mut self,
        exporter: SocketAddr,
        b: &[u8],
        out: &mut FlowBatch,
    ) -> Result<DecodeOutcome, WireError> {
        let p = V5Packet::new_checked(b)?;
        let h = p.header();
        let ip = exporter.ip();
        let rate = self
            .rate_override(ip)
            .unwrap_or(h.sampling_interval.max(1) as u32);
        let domain = (h.engine_type as u32) << 8 | h.engine_id as u32;
        let lost = self.track(
            SeqKey {
                exporter: ip,
                domain,
                protocol: Protocol::NetflowV5,
            },
            h.flow_sequence,
            Some(h.count as u32),
        );
        let flows = p.decode_into_with(ip, rate, out, &mut self.v5);
        Ok(DecodeOutcome {
            protocol: Protocol::NetflowV5,
            flows,
            held: 0,
            counters: Vec::new(),
            lost,
            domain,
            export_ms: Some(h.export_ms()),
        })
    }

    fn decode_v9(
        &mut self,
        exporter: SocketAddr,
        received_ms: u64,
        b: &[u8],
        out: &mut FlowBatch,
    ) -> Result<DecodeOutcome, WireError> {
        let p = V9Packet::new_checked(b)?;
        let h = p.header();
        let ip = exporter.ip();
        let lost = self.track(
            SeqKey {
                exporter: ip,
                domain: h.source_id,
                protocol: Protocol::NetflowV9,
            },
            h.sequence,
            Some(1),
        );
        let ctx = SetCtx {
            exporter: ip,
            domain: h.source_id,
            export_ms: h.unix_secs as u64 * 1000,
            uptime: Some(h.sys_uptime),
            ipfix: false,
        };
        let mut o = DecodeOutcome {
            protocol: Protocol::NetflowV9,
            flows: 0,
            held: 0,
            counters: Vec::new(),
            lost,
            domain: h.source_id,
            export_ms: Some(ctx.export_ms),
        };
        for set in p.flowsets() {
            let set = match set {
                Ok(s) => s,
                Err(e) => {
                    self.stats.drop(e.reason(), 1);
                    break;
                }
            };
            match set.id {
                0 | 1 => self.template_set(&ctx, set.id == 1, set.body, received_ms, out, &mut o),
                2..=255 => self.stats.drop("v9 flowset with reserved id", 1),
                id => {
                    self.data_set(&ctx, id, set.body, received_ms, out, &mut o);
                }
            }
        }
        Ok(o)
    }

    fn decode_ipfix(
        &mut self,
        exporter: SocketAddr,
        received_ms: u64,
        b: &[u8],
        out: &mut FlowBatch,
    ) -> Result<DecodeOutcome, WireError> {
        let p = IpfixPacket::new_checked(b)?;
        let h = p.header();
        let ip = exporter.ip();
        let ctx = SetCtx {
            exporter: ip,
            domain: h.domain,
            export_ms: h.export_time as u64 * 1000,
            uptime: None,
            ipfix: true,
        };
        let mut o = DecodeOutcome {
            protocol: Protocol::Ipfix,
            flows: 0,
            held: 0,
            counters: Vec::new(),
            lost: 0,
            domain: h.domain,
            export_ms: Some(ctx.export_ms),
        };
        let mut records = 0u32;
        let mut exact = true;
        for set in p.sets() {
            let set = match set {
                Ok(s) => s,
                Err(e) => {
                    self.stats.drop(e.reason(), 1);
                    exact = false;
                    break;
                }
            };
            match set.id {
                2 | 3 => self.template_set(&ctx, set.id == 3, set.body, received_ms, out, &mut o),
                0 | 1 | 4..=255 => self.stats.drop("ipfix set with reserved id", 1),
                id => match self.data_set(&ctx, id, set.body, received_ms, out, &mut o) {
                    Some(n) => records = records.wrapping_add(n as u32),
                    None => exact = false,
                },
            }
        }
        o.lost = self.track(
            SeqKey {
                exporter: ip,
                domain: h.domain,
                protocol: Protocol::Ipfix,
            },
            h.sequence,
            exact.then_some(records),
        );
        Ok(o)
    }

    fn decode_sflow(
        &mut self,
        exporter: SocketAddr,
        received_ms: u64,
        b: &[u8],
        out: &mut FlowBatch,
    ) -> Result<DecodeOutcome, WireError> {
        let d = SflowDatagram::new_checked(b)?;
        let h = d.header();
        let lost = self.track(
            SeqKey {
                exporter: h.agent,
                domain: h.sub_agent,
                protocol: Protocol::Sflow5,
            },
            h.sequence,
            Some(1),
        );
        let rate = self
            .rate_override(exporter.ip())
            .or_else(|| self.rate_override(h.agent));
        let mut counters = Vec::new();
        let stats = &mut self.stats;
        let flows = d.decode_into(received_ms, rate, out, &mut counters, &mut |r| {
            stats.drop(r, 1)
        });
        Ok(DecodeOutcome {
            protocol: Protocol::Sflow5,
            flows,
            held: 0,
            counters,
            lost,
            domain: h.sub_agent,
            export_ms: None,
        })
    }

    fn template_set(
        &mut self,
        ctx: &SetCtx,
        options: bool,
        body: &[u8],
        received_ms: u64,
        out: &mut FlowBatch,
        o: &mut DecodeOutcome,
    ) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let max = self.config.max_fields_per_template;
        let mut defined = false;
        let r = if ctx.ipfix {
            ipfix_templates(body, options, max, &mut scratch, |ev| {
                defined |= self.template_event(ctx, ev, received_ms)
            })
        } else {
            v9_templates(body, options, max, &mut scratch, |ev| {
                defined |= self.template_event(ctx, ev, received_ms)
            })
        };
        self.scratch = scratch;
        if let Err(e) = r {
            self.stats.drop(e.reason(), 1);
        }
        self.stats.templates_active = self.templates.len();
        if defined && !self.held.is_empty() {
            self.release_held(out, o);
        }
    }

    /// Caches a template definition that came in a datagram (`shared == false`: `at_ms` is the
    /// receive time; the definition is handed to the share when new, changed, or not handed out
    /// for [`REEXPORT_MS`]) or from the share (`shared == true`: `at_ms` is when its origin last
    /// saw it; ignored when this decoder has a newer different definition; never handed out
    /// again). The same bounds apply to both. Returns whether the template is defined.
    #[allow(clippy::too_many_arguments)]
    fn define(
        &mut self,
        ctx: &SetCtx,
        id: u16,
        scope: u16,
        options: bool,
        fields: &[FieldSpec],
        at_ms: u64,
        shared: bool,
    ) -> bool {
        let key = TKey {
            exporter: ctx.exporter,
            domain: ctx.domain,
            id,
            ipfix: ctx.ipfix,
        };
        if let Some(t) = self.templates.get_mut(&key) {
            let same = t.options == options && t.scope == scope && t.fields == fields;
            if shared {
                if same {
                    t.refreshed_ms = t.refreshed_ms.max(at_ms);
                    t.exported_ms = t.exported_ms.max(at_ms);
                    return true;
                }
                if t.refreshed_ms > at_ms {
                    self.stats.shared_ignored += 1;
                    return true;
                }
            } else if same {
                t.refreshed_ms = at_ms;
                if let Some((share, _)) = &self.share
                    && at_ms.saturating_sub(t.exported_ms) >= REEXPORT_MS
                {
                    t.exported_ms = at_ms;
                    export_template(share, ctx, id, t, at_ms);
                    self.stats.shared_out += 1;
                }
                return true;
            }
        }
        let pick = |datagram: &'static str, from_share: &'static str| {
            if shared { from_share } else { datagram }
        };
        let skip_scope = if ctx.ipfix { 0 } else { scope as usize };
        let Some(plan) = Plan::compile(fields, skip_scope) else {
            self.stats.drop(
                pick(
                    "template with empty or oversized record",
                    "shared template with empty or oversized record (refused)",
                ),
                1,
            );
            return false;
        };
        let is_new = !self.templates.contains_key(&key);
        if is_new {
            if !self.exporters.contains_key(&ctx.exporter)
                && self.exporters.len() >= self.config.max_exporters
            {
                self.stats.drop(
                    pick(
                        "exporter limit (template refused)",
                        "exporter limit (shared template refused)",
                    ),
                    1,
                );
                return false;
            }
            let e = self.exporters.entry(ctx.exporter).or_default();
            if e.templates >= self.config.max_templates_per_exporter {
                self.stats.drop(
                    pick(
                        "template limit per exporter (template refused)",
                        "template limit per exporter (shared template refused)",
                    ),
                    1,
                );
                return false;
            }
            e.templates += 1;
        }
        if let Some(u) = self.stats.no_template.get_mut(&key.as_ref()) {
            let fixed = fields.iter().all(|f| f.len != VARIABLE_LENGTH);
            u.template_known(fixed.then_some(plan.min_len));
        }
        let t = Template {
            fields: fields.to_vec(),
            scope,
            options,
            plan,
            refreshed_ms: at_ms,
            exported_ms: at_ms,
        };
        if shared {
            self.stats.shared_in += 1;
        } else {
            self.stats.templates_learned += 1;
            if let Some((share, _)) = &self.share {
                export_template(share, ctx, id, &t, at_ms);
                self.stats.shared_out += 1;
            }
        }
        self.templates.insert(key, t);
        true
    }

    /// Applies what the share received since the last call (at most [`IMPORT_BATCH`] entries;
    /// the rest before the next datagram): templates first, then sampling tables. Entries are
    /// validated like datagrams; refusals are counted in `drops`.
    fn import_shared(&mut self, now_ms: u64) {
        let Some((share, seen)) = &mut self.share else {
            return;
        };
        let (values, next) = share.changed_since(*seen, IMPORT_BATCH);
        *seen = next;
        let timeout = self.config.template_timeout.as_millis() as u64;
        let mut defined = false;
        let mut tables = Vec::new();
        for v in &values {
            let e = match SharedValue::parse(v) {
                Ok(e) => e,
                Err(_) => {
                    self.stats.drop("shared entry invalid (refused)", 1);
                    continue;
                }
            };
            // A clock ahead of ours (or a hostile value) must not make an entry immortal.
            let at_ms = e.head.updated_ms.min(now_ms);
            if now_ms.saturating_sub(at_ms) > timeout {
                self.stats.shared_ignored += 1;
                continue;
            }
            match e.body {
                Body::Template {
                    options, record, ..
                } => defined |= self.import_template(&e.head, options, record, at_ms),
                Body::Sampling { .. } => tables.push((e, at_ms)),
            }
        }
        for (e, at_ms) in tables {
            self.import_sampling(&e, at_ms);
        }
        self.stats.templates_active = self.templates.len();
        if defined && !self.held.is_empty() {
            self.release_pending = true;
        }
    }

    /// Parses a shared template record with the datagram parser and the decoder's bounds; it
    /// must hold exactly one definition.
    fn import_template(&mut self, h: &Head, options: bool, record: &[u8], at_ms: u64) -> bool {
        let ctx = SetCtx {
            exporter: h.exporter,
            domain: h.domain,
            export_ms: 0,
            uptime: None,
            ipfix: h.ipfix,
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let max = self.config.max_fields_per_template;
        let mut events = 0usize;
        let mut def = None;
        let mut too_many = false;
        let on_event = |ev: TemplateEvent<'_>| {
            events += 1;
            match ev {
                TemplateEvent::Define {
                    id, scope, options, ..
                } => def = Some((id, scope, options)),
                TemplateEvent::TooManyFields { .. } => too_many = true,
                _ => {}
            }
        };
        let r = if h.ipfix {
            ipfix_templates(record, options, max, &mut scratch, on_event)
        } else {
            v9_templates(record, options, max, &mut scratch, on_event)
        };
        let defined = match (r, events, def) {
            (Ok(()), 1, Some((id, scope, options))) => {
                self.define(&ctx, id, scope, options, &scratch, at_ms, true)
            }
            (Ok(()), 1, None) if too_many => {
                self.stats
                    .drop("shared template field limit (template refused)", 1);
                false
            }
            _ => {
                self.stats.drop("shared entry invalid (refused)", 1);
                false
            }
        };
        self.scratch = scratch;
        defined
    }

    /// Merges a shared sampling table into the domain's (bounded like options data).
    fn import_sampling(&mut self, e: &SharedValue<'_>, at_ms: u64) {
        let Body::Sampling {
            rate,
            sys_init_ms,
            samplers,
        } = e.body
        else {
            return;
        };
        let dkey = DKey {
            exporter: e.head.exporter,
            domain: e.head.domain,
            ipfix: e.head.ipfix,
        };
        let limit = self.config.max_exporters.saturating_mul(4);
        if !self.domains.contains_key(&dkey) && self.domains.len() >= limit {
            self.stats
                .drop("domain table full (shared sampling table ignored)", 1);
            return;
        }
        let max_samplers = self.config.max_samplers_per_domain;
        let d = self.domains.entry(dkey).or_default();
        if d.updated_ms > at_ms {
            self.stats.shared_ignored += 1;
            return;
        }
        let mut changed = false;
        if rate.is_some() && d.rate != rate {
            d.rate = rate;
            changed = true;
        }
        if sys_init_ms.is_some() && d.sys_init_ms != sys_init_ms {
            d.sys_init_ms = sys_init_ms;
            changed = true;
        }
        let mut full = 0u64;
        for (id, r) in share::samplers(samplers) {
            if r == 0 {
                continue;
            }
            if d.samplers.len() < max_samplers || d.samplers.contains_key(&id) {
                changed |= d.samplers.insert(id, r) != Some(r);
            } else {
                full += 1;
            }
        }
        d.updated_ms = at_ms;
        d.exported_ms = d.exported_ms.max(at_ms);
        if full > 0 {
            self.stats
                .drop("sampler table full (shared sampler ignored)", full);
        }
        if changed {
            self.stats.shared_in += 1;
        }
    }

    /// Applies one template event; returns whether a template was defined.
    fn template_event(&mut self, ctx: &SetCtx, ev: TemplateEvent<'_>, received_ms: u64) -> bool {
        match ev {
            TemplateEvent::Define {
                id,
                scope,
                options,
                fields,
            } => self.define(ctx, id, scope, options, fields, received_ms, false),
            TemplateEvent::Withdraw { id } => {
                let key = TKey {
                    exporter: ctx.exporter,
                    domain: ctx.domain,
                    id,
                    ipfix: ctx.ipfix,
                };
                if self.templates.remove(&key).is_some() {
                    self.stats.templates_withdrawn += 1;
                    if let Some(e) = self.exporters.get_mut(&ctx.exporter) {
                        e.templates = e.templates.saturating_sub(1);
                    }
                }
                false
            }
            TemplateEvent::WithdrawAll { options } => {
                let mut n = 0;
                self.templates.retain(|k, t| {
                    let hit = k.exporter == ctx.exporter
                        && k.domain == ctx.domain
                        && k.ipfix == ctx.ipfix
                        && t.options == options;
                    n += hit as usize;
                    !hit
                });
                self.stats.templates_withdrawn += n as u64;
                if let Some(e) = self.exporters.get_mut(&ctx.exporter) {
                    e.templates = e.templates.saturating_sub(n);
                }
                false
            }
            TemplateEvent::TooManyFields { .. } => {
                self.stats
                    .drop("template field limit (template refused)", 1);
                false
            }
        }
    }

    /// Decodes (or holds) one data set; returns the number of records decoded, or `None` when the
    /// set was held or dropped.
    fn data_set(
        &mut self,
        ctx: &SetCtx,
        id: u16,
        body: &[u8],
        received_ms: u64,
        out: &mut FlowBatch,
        o: &mut DecodeOutcome,
    ) -> Option<usize> {
        let key = TKey {
            exporter: ctx.exporter,
            domain: ctx.domain,
            id,
            ipfix: ctx.ipfix,
        };
        let timeout = self.config.template_timeout.as_millis() as u64;
        if let Some(t) = self.templates.get(&key)
            && received_ms.saturating_sub(t.refreshed_ms) > timeout
        {
            self.templates.remove(&key);
            self.stats.templates_expired += 1;
            self.stats.templates_active = self.templates.len();
            if let Some(e) = self.exporters.get_mut(&ctx.exporter) {
                e.templates = e.templates.saturating_sub(1);
            }
        }
        if self.templates.contains_key(&key) {
            return Some(self.decode_records(ctx, &key, body, received_ms, out, o));
        }
        // Hold until the template arrives.
        if !self.exporters.contains_key(&ctx.exporter)
            && self.exporters.len() >= self.config.max_exporters
        {
            self.stats
                .drop("exporter limit (data without template dropped)", 1);
            self.stats.no_template(&key, body.len());
            return None;
        }
        let max = self.config.max_held_bytes_per_exporter;
        let e = self.exporters.entry(ctx.exporter).or_default();
        if e.held_bytes + body.len() > max {
            self.stats.drop("held data over budget (no template)", 1);
            self.stats.no_template(&key, body.len());
            return None;
        }
        e.held_bytes += body.len();
        self.held.push(Held {
            key,
            ctx: *ctx,
            received_ms,
            data: body.to_vec(),
        });
        self.stats.held_sets += 1;
        o.held += 1;
        None
    }

    fn release_held(&mut self, out: &mut FlowBatch, o: &mut DecodeOutcome) {
        let mut i = 0;
        while i < self.held.len() {
            if self.templates.contains_key(&self.held[i].key) {
                let h = self.held.remove(i);
                if let Some(e) = self.exporters.get_mut(&h.key.exporter) {
                    e.held_bytes = e.held_bytes.saturating_sub(h.data.len());
                }
                self.decode_records(&h.ctx, &h.key, &h.data, h.received_ms, out, o);
                self.stats.held_released += 1;
            } else {
                i += 1;
            }
        }
    }

    /// Decodes every record of a data set whose template is cached.
    fn decode_records(
        &mut self,
        ctx: &SetCtx,
        key: &TKey,
        body: &[u8],
        now_ms: u64,
        out: &mut FlowBatch,
        o: &mut DecodeOutcome,
    ) -> usize {
        let Some(t) = self.templates.get(key) else {
            return 0;
        };
        let dkey = DKey {
            exporter: ctx.exporter,
            domain: ctx.domain,
            ipfix: ctx.ipfix,
        };
        let plan = &t.plan;
        let mut n = 0usize;
        let mut pos = 0usize;
        if t.options {
            let limit = self.config.max_exporters.saturating_mul(4);
            let max_samplers = self.config.max_samplers_per_domain;
            let mut changed = false;
            while let Some(rest) = body.get(pos..) {
                let mut acc = Acc::default();
                let Some(used) = plan.read(rest, &mut acc) else {
                    break;
                };
                pos += used;
                n += 1;
                if !plan.carries_options_info {
                    continue;
                }
                if !self.domains.contains_key(&dkey) && self.domains.len() >= limit {
                    *self
                        .stats
                        .drops
                        .entry("domain table full (options ignored)")
                        .or_insert(0) += 1;
                    continue;
                }
                let d = self.domains.entry(dkey).or_default();
                d.updated_ms = d.updated_ms.max(now_ms);
                if let Some(init) = acc.sys_init_ms {
                    changed |= d.sys_init_ms != Some(init);
                    d.sys_init_ms = Some(init);
                }
                if let Some(rate) = acc.stated_rate() {
                    changed |= d.rate != Some(rate);
                    d.rate = Some(rate);
                    if let Some(id) = acc.sampler_id {
                        if d.samplers.len() < max_samplers || d.samplers.contains_key(&id) {
                            changed |= d.samplers.insert(id, rate) != Some(rate);
                        } else {
                            // Its records get the domain's latest rate instead.
                            *self
                                .stats
                                .drops
                                .entry("sampler table full (sampler ignored)")
                                .or_insert(0) += 1;
                        }
                    }
                }
            }
            self.stats
                .protocol_mut(if ctx.ipfix {
                    Protocol::Ipfix
                } else {
                    Protocol::NetflowV9
                })
                .options_records += n as u64;
            if let Some((share, _)) = &self.share
                && let Some(d) = self.domains.get_mut(&dkey)
                && (changed || now_ms.saturating_sub(d.exported_ms) >= REEXPORT_MS)
                && (d.rate.is_some() || d.sys_init_ms.is_some() || !d.samplers.is_empty())
            {
                d.exported_ms = now_ms;
                let h = Head {
                    ipfix: ctx.ipfix,
                    exporter: ctx.exporter,
                    domain: ctx.domain,
                    updated_ms: d.updated_ms,
                };
                share.publish(
                    share::sampling_key(ctx.exporter, ctx.ipfix, ctx.domain),
                    share::encode_sampling(&h, d.rate, d.sys_init_ms, &d.samplers),
                );
                self.stats.shared_out += 1;
            }
        } else {
            let over = if self.config.sampling_override.is_empty() {
                None
            } else {
                self.config.sampling_override.get(&ctx.exporter).copied()
            };
            let dom = self.domains.get(&dkey);
            let sys_init = dom.and_then(|d| d.sys_init_ms);
            // Records are built in a small stack buffer and appended column by column.
            let mut buf = [FlowRecord::default(); CHUNK];
            let mut k = 0;
            while let Some(rest) = body.get(pos..) {
                let mut acc = Acc::default();
                let Some(used) = plan.read(rest, &mut acc) else {
                    break;
                };
                pos += used;
                n += 1;
                let rate = over
                    .or_else(|| acc.stated_rate())
                    .or_else(|| {
                        dom.and_then(|d| acc.sampler_id.and_then(|id| d.samplers.get(&id).copied()))
                    })
                    .or_else(|| dom.and_then(|d| d.rate))
                    .unwrap_or(1);
                buf[k] = acc.finish(
                    ctx.exporter,
                    ctx.domain,
                    ctx.export_ms,
                    ctx.uptime,
                    sys_init,
                    rate,
                );
                k += 1;
                if k == CHUNK {
                    out.extend_records(&buf);
                    k = 0;
                }
            }
            out.extend_records(&buf[..k]);
            o.flows += n;
        }
        if plan.enterprise_fields > 0 {
            self.stats.enterprise_fields += plan.enterprise_fields as u64 * n as u64;
        }
        if plan.unmapped_fields > 0 {
            self.stats.unmapped_fields += plan.unmapped_fields as u64 * n as u64;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS: u32 = 1_700_000_000;
    const T0: u64 = SECS as u64 * 1000;

    /// A NetFlow v9 datagram of `sets` (flowset id, body), source id 0.
    fn v9(seq: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&9u16.to_be_bytes());
        d.extend_from_slice(&(sets.len() as u16).to_be_bytes());
        d.extend_from_slice(&100_000u32.to_be_bytes());
        d.extend_from_slice(&SECS.to_be_bytes());
        d.extend_from_slice(&seq.to_be_bytes());
        d.extend_from_slice(&0u32.to_be_bytes());
        for (id, body) in sets {
            d.extend_from_slice(&id.to_be_bytes());
            d.extend_from_slice(&(4 + body.len() as u16).to_be_bytes());
            d.extend_from_slice(body);
        }
        d
    }

    /// Template 256: IPv4 source (8), destination (12), protocol (4): 9-byte records.
    fn template() -> (u16, Vec<u8>) {
        let mut b = Vec::new();
        for v in [256u16, 3, 8, 4, 12, 4, 4, 1] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        (0, b)
    }

    /// A data set of template 256 with `n` records.
    fn data(n: u8) -> (u16, Vec<u8>) {
        let mut b = Vec::new();
        for i in 0..n {
            b.extend_from_slice(&[10, 0, 0, i, 198, 51, 100, 1, 17]);
        }
        (256, b)
    }

    fn exporter() -> SocketAddr {
        "10.0.0.1:2055".parse().unwrap()
    }

    fn key() -> TemplateRef {
        TemplateRef {
            exporter: exporter().ip(),
            domain: 0,
            id: 256,
            ipfix: false,
        }
    }

    #[test]
    fn data_dropped_before_its_late_template_is_counted_in_records_per_template() {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::new();
        d.decode(exporter(), T0, &v9(0, &[data(3)]), &mut out)
            .unwrap();
        d.decode(exporter(), T0 + 100, &v9(1, &[data(2)]), &mut out)
            .unwrap();
        // The template comes after the hold time: the held sets expire first.
        let o = d
            .decode(
                exporter(),
                T0 + 5_000,
                &v9(2, &[template(), data(4)]),
                &mut out,
            )
            .unwrap();
        assert_eq!(o.flows, 4, "data after the template is decoded");
        let u = &d.stats().no_template[&key()];
        assert_eq!((u.sets, u.bytes, u.records), (2, 45, Some(5)));
        assert_eq!(d.stats().no_template_sets, 2);
        assert_eq!(key().to_string(), "v9 template 256 from 10.0.0.1 domain 0");
    }

    #[test]
    fn data_still_held_at_the_end_of_input_is_counted_by_finish() {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::new();
        d.decode(exporter(), T0, &v9(0, &[data(3)]), &mut out)
            .unwrap();
        assert!(d.stats().no_template.is_empty(), "still waiting");
        d.finish();
        let u = &d.stats().no_template[&key()];
        assert_eq!((u.sets, u.bytes, u.records), (1, 27, None));
        assert_eq!(
            d.stats().drops.get("held data expired (no template)"),
            Some(&1)
        );
    }

    #[test]
    fn data_released_by_its_template_in_time_is_not_counted_as_undecoded() {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::new();
        d.decode(exporter(), T0, &v9(0, &[data(3)]), &mut out)
            .unwrap();
        d.decode(exporter(), T0 + 500, &v9(1, &[template()]), &mut out)
            .unwrap();
        d.finish();
        assert_eq!(out.len(), 3);
        assert!(d.stats().no_template.is_empty());
        assert_eq!(d.stats().no_template_sets, 0);
    }
}
