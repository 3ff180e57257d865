//! The answers whose data other crates define (flow scans, reports, the NSF inventory,
//! subscriptions) and the token list, as the API serialises them: each type derives `ToSchema`,
//! so the OpenAPI document describes exactly what the handler writes.
//!
//! Contract: each view is built from the other crate's value by a `From` impl and serialised as it
//! is. The fields of every view are in the alphabetical order of their JSON names, and absent ones
//! are left out exactly where the answers always left them out: the answers were written through
//! `serde_json::Value` (sorted maps) before, and clients see the same bytes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use pharos_detect::report::{AttackLine, HostCount, Report};
use pharos_emit::SubscriptionSpec;
use pharos_emit::dispatch::{DeliveryState, Origin, SubscriptionInfo};
use pharos_emit::subscription::Emission;
use pharos_flows::query::{
    KeySeries, KeyValue, Listing, Metric, Point, ScanStats, Series, TopN, TopRow, Totals,
};
use pharos_model::flow::FlowRecord;
use pharos_store::inventory::{ExporterEntry, NsfEntry};

use crate::auth::{Role, TokenInfo};

/// Timestamps as the answers write them (RFC 3339, milliseconds, `Z`).
pub(crate) fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// ---- flows ----

/// Flows, packets and bytes of a group.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Totals)]
pub struct FlowTotals {
    /// Sum of bytes.
    pub bytes: u64,
    /// Number of flows.
    pub flows: u64,
    /// Sum of packets.
    pub packets: u64,
}

impl From<Totals> for FlowTotals {
    fn from(t: Totals) -> Self {
        Self {
            bytes: t.bytes,
            flows: t.flows,
            packets: t.packets,
        }
    }
}

/// What the scan read: segments and row groups read or skipped by time, rows read and selected,
/// segments that could not be read.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ScanStats)]
pub struct FlowScanStats {
    /// Segments that could not be read, with the reason.
    pub errors: Vec<String>,
    /// Times the scan restarted because a segment was merged or expired under it.
    pub restarts: u64,
    /// Row groups read.
    pub row_groups: u64,
    /// Row groups skipped by their statistics.
    pub row_groups_pruned: u64,
    /// Rows selected.
    pub rows_matched: u64,
    /// Rows read.
    pub rows_scanned: u64,
    /// Segments in the archive.
    pub segments: u64,
    /// Segments skipped because every flow of theirs is outside the window.
    pub segments_pruned: u64,
}

impl From<ScanStats> for FlowScanStats {
    fn from(s: ScanStats) -> Self {
        Self {
            errors: s.errors,
            restarts: s.restarts,
            row_groups: s.row_groups,
            row_groups_pruned: s.row_groups_pruned,
            rows_matched: s.rows_matched,
            rows_scanned: s.rows_scanned,
            segments: s.segments,
            segments_pruned: s.segments_pruned,
        }
    }
}

/// One stored flow.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Flow {
    /// Bytes (renormalised by the sampling rate).
    pub bytes: u64,
    /// Observation domain (IPFIX), source id (v9), engine type << 8 | engine id (v5).
    pub domain: u32,
    /// Destination address.
    pub dst_addr: String,
    /// Destination AS.
    pub dst_as: u32,
    /// Destination port.
    pub dst_port: u16,
    /// Flow end, Unix ms.
    pub end_ms: u64,
    /// The exporter's address.
    pub exporter: String,
    /// Input interface index.
    pub in_if: u32,
    /// Next hop, when the exporter said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    /// Output interface index.
    pub out_if: u32,
    /// Packets (renormalised by the sampling rate).
    pub packets: u64,
    /// IP protocol number.
    pub proto: u8,
    /// Sampling rate (1 in N packets); 1: unsampled.
    pub sampling_rate: u32,
    /// Source address.
    pub src_addr: String,
    /// Source AS.
    pub src_as: u32,
    /// Source port.
    pub src_port: u16,
    /// Flow start, Unix ms.
    pub start_ms: u64,
    /// TCP flags seen (OR of the packets').
    pub tcp_flags: u8,
    /// VLAN id, when the exporter said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

impl From<&FlowRecord> for Flow {
    fn from(r: &FlowRecord) -> Self {
        Self {
            bytes: r.bytes,
            domain: r.domain,
            dst_addr: r.dst_addr.to_string(),
            dst_as: r.dst_as,
            dst_port: r.dst_port,
            end_ms: r.end_ms,
            exporter: r.exporter.to_string(),
            in_if: r.in_if,
            next_hop: r.next_hop.map(|a| a.to_string()),
            out_if: r.out_if,
            packets: r.packets,
            proto: r.proto,
            sampling_rate: r.sampling_rate,
            src_addr: r.src_addr.to_string(),
            src_as: r.src_as,
            src_port: r.src_port,
            start_ms: r.start_ms,
            tcp_flags: r.tcp_flags,
            vlan: r.vlan,
        }
    }
}

/// The answer of `GET /api/v1/flows/query`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowList {
    /// The flows, in the order asked for.
    pub flows: Vec<Flow>,
    /// What the scan did.
    pub stats: FlowScanStats,
}

impl From<Listing> for FlowList {
    fn from(l: Listing) -> Self {
        Self {
            flows: l.flows.iter().map(Flow::from).collect(),
            stats: l.stats.into(),
        }
    }
}

/// What a top list or series orders by.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlowMetric {
    /// Number of flows.
    Flows,
    /// Sum of packets.
    Packets,
    /// Sum of bytes.
    Bytes,
}

impl From<Metric> for FlowMetric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::Flows => Self::Flows,
            Metric::Packets => Self::Packets,
            Metric::Bytes => Self::Bytes,
        }
    }
}

/// One value of a key: an address or prefix (a string), or a port, protocol, AS number,
/// interface index or TOS (a number).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum FlowKeyValue {
    /// A port, protocol, AS number, interface index or TOS.
    Number(u32),
    /// An address or a prefix.
    Text(String),
}

impl From<KeyValue> for FlowKeyValue {
    fn from(k: KeyValue) -> Self {
        match k {
            KeyValue::Num(n) => Self::Number(n),
            other => Self::Text(other.to_string()),
        }
    }
}

/// One row of a top list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowTopRow {
    /// Sum of bytes.
    pub bytes: u64,
    /// Number of flows.
    pub flows: u64,
    /// The key's value.
    pub key: FlowKeyValue,
    /// Sum of packets.
    pub packets: u64,
}

impl From<TopRow> for FlowTopRow {
    fn from(r: TopRow) -> Self {
        Self {
            bytes: r.totals.bytes,
            flows: r.totals.flows,
            key: r.key.into(),
            packets: r.totals.packets,
        }
    }
}

/// The answer of `GET /api/v1/flows/top`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowTop {
    /// What the rows are ordered by.
    pub by: FlowMetric,
    /// Distinct values of the key among the selected flows.
    pub distinct: u64,
    /// The key, as given (e.g. `dstip`, `srcip4/24`).
    pub key: String,
    /// The top values, largest first.
    pub rows: Vec<FlowTopRow>,
    /// What the scan did.
    pub stats: FlowScanStats,
    /// Totals of every selected flow.
    pub total: FlowTotals,
}

impl From<TopN> for FlowTop {
    fn from(t: TopN) -> Self {
        Self {
            by: t.by.into(),
            distinct: t.distinct,
            key: t.key.to_string(),
            rows: t.rows.into_iter().map(FlowTopRow::from).collect(),
            stats: t.stats.into(),
            total: t.total.into(),
        }
    }
}

/// One interval of a series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowPoint {
    /// Sum of bytes.
    pub bytes: u64,
    /// Number of flows.
    pub flows: u64,
    /// Sum of packets.
    pub packets: u64,
    /// Interval start, Unix ms.
    pub t_ms: u64,
}

impl From<Point> for FlowPoint {
    fn from(p: Point) -> Self {
        Self {
            bytes: p.totals.bytes,
            flows: p.totals.flows,
            packets: p.totals.packets,
            t_ms: p.t_ms,
        }
    }
}

/// The series of one top key value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowKeySeries {
    /// The key's value.
    pub key: FlowKeyValue,
    /// Its intervals.
    pub points: Vec<FlowPoint>,
    /// Its totals over the window.
    pub totals: FlowTotals,
}

impl From<KeySeries> for FlowKeySeries {
    fn from(k: KeySeries) -> Self {
        Self {
            key: k.key.into(),
            points: k.points.into_iter().map(FlowPoint::from).collect(),
            totals: k.totals.into(),
        }
    }
}

/// The answer of `GET /api/v1/flows/series`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowSeries {
    /// What the key values are ranked by.
    pub by: FlowMetric,
    /// Interval length, ms.
    pub interval_ms: u64,
    /// The key of `keys` (null: no key asked for).
    pub key: Option<String>,
    /// One series per top key value (empty without a key).
    pub keys: Vec<FlowKeySeries>,
    /// Every selected flow per interval, without holes.
    pub points: Vec<FlowPoint>,
    /// What the scan did.
    pub stats: FlowScanStats,
}

impl From<Series> for FlowSeries {
    fn from(s: Series) -> Self {
        Self {
            by: s.by.into(),
            interval_ms: s.interval_ms,
            key: s.key.map(|k| k.to_string()),
            keys: s.keys.into_iter().map(FlowKeySeries::from).collect(),
            points: s.points.into_iter().map(FlowPoint::from).collect(),
            stats: s.stats.into(),
        }
    }
}

// ---- reports ----

/// A host and how many attack events (or attacks) name it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = HostCount)]
pub struct ReportHostCount {
    /// The address.
    #[schema(value_type = String)]
    pub addr: IpAddr,
    /// Events naming the host (an upper bound past the sketch's distinct hosts).
    pub count: u64,
}

impl From<HostCount> for ReportHostCount {
    fn from(h: HostCount) -> Self {
        Self {
            addr: h.addr,
            count: h.count,
        }
    }
}

/// One DDoS attack that started or ended in the window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportAttack {
    /// `attack-type` identity name.
    pub attack_type: Option<String>,
    /// `end-time`, if it ended.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end: Option<DateTime<Utc>>,
    /// Ended in the window.
    pub ended: bool,
    /// NSF (or detector) that reported it.
    pub nsf: String,
    /// Highest `attack-throughput` reported, bytes/s.
    pub peak_bytes_per_s: Option<u64>,
    /// Highest `attack-rate` reported, packets/s.
    pub peak_pps: Option<u64>,
    /// `rule-name`.
    pub rule: String,
    /// `start-time`.
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<Utc>,
    /// Started in the window.
    pub started: bool,
    /// Victims (`attack-dst-ip`).
    #[schema(value_type = Vec<String>)]
    pub victims: Vec<IpAddr>,
}

impl From<AttackLine> for ReportAttack {
    fn from(a: AttackLine) -> Self {
        Self {
            attack_type: a.attack_type,
            end: a.end,
            ended: a.ended,
            nsf: a.nsf,
            peak_bytes_per_s: a.peak_bytes_per_s,
            peak_pps: a.peak_pps,
            rule: a.rule,
            start: a.start,
            started: a.started,
            victims: a.victims,
        }
    }
}

/// The answer of `GET /api/v1/reports` (with format=text, the same as plain text).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Report)]
pub struct ReportView {
    /// The attacks started or ended in the window, by start time.
    pub attacks: Vec<ReportAttack>,
    /// DDoS attacks ended in the window.
    pub attacks_ended: u64,
    /// Attacks past those tracked: in neither the list nor the totals.
    pub attacks_not_listed: u64,
    /// DDoS attacks started in the window.
    pub attacks_started: u64,
    /// Messages per kind name (kinds with none are left out).
    pub by_kind: BTreeMap<String, u64>,
    /// Messages per severity name (severities with none are left out).
    pub by_severity: BTreeMap<String, u64>,
    /// Whether the cap of messages read was reached.
    pub capped: bool,
    /// When capped: the earliest event time read.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub covered_from: Option<DateTime<Utc>>,
    /// Window start.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Messages counted.
    pub messages: u64,
    /// Messages read.
    pub messages_read: u64,
    /// When capped: what part of the window the report covers.
    pub note: Option<String>,
    /// Window end (exclusive).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// Victims of DDoS events and destinations of other attack events, most first.
    pub top_attacked: Vec<ReportHostCount>,
    /// Most frequent attack sources, most first.
    pub top_sources: Vec<ReportHostCount>,
}

impl ReportView {
    /// The report of a window with what reading it did: messages read, the earliest event time
    /// read when capped, and the note saying so.
    pub fn new(
        r: Report,
        read: u64,
        covered_from: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> Self {
        Self {
            attacks: r.attacks.into_iter().map(ReportAttack::from).collect(),
            attacks_ended: r.attacks_ended,
            attacks_not_listed: r.attacks_not_listed,
            attacks_started: r.attacks_started,
            by_kind: r.by_kind,
            by_severity: r.by_severity,
            capped: covered_from.is_some(),
            covered_from,
            from: r.from,
            messages: r.messages,
            messages_read: read,
            note,
            to: r.to,
            top_attacked: r.top_attacked.into_iter().map(Into::into).collect(),
            top_sources: r.top_sources.into_iter().map(Into::into).collect(),
        }
    }
}

// ---- the NSF inventory ----

/// One NSF of the inventory.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Nsf {
    /// Its configured addresses (prefixes).
    pub addresses: Vec<String>,
    /// False for senders registered automatically.
    pub configured: bool,
    /// The format its messages were recognised as.
    #[serde(rename = "detected-format")]
    pub detected_format: Option<String>,
    /// When it was first seen.
    #[serde(rename = "first-seen")]
    #[schema(format = DateTime)]
    pub first_seen: Option<String>,
    /// Its configured host names.
    pub hostnames: Vec<String>,
    /// The address it last sent from.
    #[serde(rename = "last-address")]
    pub last_address: Option<String>,
    /// When it was last seen.
    #[serde(rename = "last-seen")]
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    /// Its model.
    pub model: Option<String>,
    /// Its name.
    pub name: String,
    /// Messages parsed.
    pub parsed: u64,
    /// The parser of its messages.
    pub parser: String,
    /// Messages received.
    pub received: u64,
    /// Its type.
    #[serde(rename = "type")]
    pub nsf_type: Option<String>,
    /// Messages that could not be parsed.
    pub unparsed: u64,
    /// Its vendor.
    pub vendor: Option<String>,
}

impl From<&NsfEntry> for Nsf {
    fn from(e: &NsfEntry) -> Self {
        Self {
            addresses: e.addresses.iter().map(|a| a.to_string()).collect(),
            configured: e.configured,
            detected_format: e.detected_format.clone(),
            first_seen: e.first_seen.map(millis),
            hostnames: e.hostnames.clone(),
            last_address: e.last_address.map(|a| a.to_string()),
            last_seen: e.last_seen.map(millis),
            model: e.model.clone(),
            name: e.name.clone(),
            parsed: e.parsed,
            parser: e.parser.clone(),
            received: e.received,
            nsf_type: e.nsf_type.clone(),
            unparsed: e.unparsed,
            vendor: e.vendor.clone(),
        }
    }
}

/// One flow exporter (NetFlow v5/v9, IPFIX; sFlow carries no export time) per exporter address
/// and observation domain, while the collector tracks it (forgotten after an hour of silence, not
/// kept across restarts).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Exporter {
    /// What was subtracted from the start and end of its latest flows (0: its clock is within
    /// 2 s of ours and trusted as it is).
    #[serde(rename = "clock-correction-seconds")]
    pub clock_correction_seconds: f64,
    /// Export time in its headers minus our receive time, median of its last datagrams;
    /// negative: its clock is behind ours.
    #[serde(rename = "clock-offset-seconds")]
    pub clock_offset_seconds: f64,
    /// Datagrams the offset is the median of.
    #[serde(rename = "clock-samples")]
    pub clock_samples: u64,
    /// Datagrams with an export time received from it.
    pub datagrams: u64,
    /// Observation domain (IPFIX), source id (v9), engine type << 8 | engine id (v5).
    pub domain: u32,
    /// The exporter's address (UDP source).
    pub exporter: String,
    /// The export time of its latest datagram (its clock).
    #[serde(rename = "last-export-time")]
    #[schema(format = DateTime)]
    pub last_export_time: Option<String>,
    /// When its latest datagram arrived (our clock).
    #[serde(rename = "last-received")]
    #[schema(format = DateTime)]
    pub last_received: Option<String>,
    /// The configured NSF whose addresses contain the exporter.
    pub nsf: Option<String>,
}

impl From<&ExporterEntry> for Exporter {
    fn from(e: &ExporterEntry) -> Self {
        let c = &e.clock;
        let time =
            |ms: u64| DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64).map(millis);
        Self {
            clock_correction_seconds: c.correction_ms as f64 / 1000.0,
            clock_offset_seconds: c.offset_ms as f64 / 1000.0,
            clock_samples: c.samples.into(),
            datagrams: c.datagrams,
            domain: c.domain,
            exporter: c.exporter.to_string(),
            last_export_time: time(c.last_export_ms),
            last_received: time(c.last_received_ms),
            nsf: e.nsf.clone(),
        }
    }
}

/// The answer of `GET /api/v1/nsfs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NsfList {
    /// The flow exporters the collector tracks.
    pub exporters: Vec<Exporter>,
    /// The NSFs: configured and automatically registered senders.
    pub items: Vec<Nsf>,
}

// ---- subscriptions ----

/// Which changes a subscription wants (absent keys: any).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct SubscriptionFilter {
    /// `attack-type` identities (bare or module-qualified).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attack_types: Vec<String>,
    /// Which changes: `created`, `updated`, `state`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Kind names (`ddos`, `intrusion`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Lowest severity: `info`, `low`, `middle`, `high` or `critical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<String>,
    /// Exact nsf-names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nsf: Vec<String>,
    /// A source or destination address must be within one of these prefixes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
}

/// Periodic emission.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Periodic {
    /// Time between pushes, e.g. `"30s"`.
    pub interval: String,
}

/// When a subscription pushes: `"on-change"` (default) or `{"periodic": {"interval": "30s"}}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriptionEmission {
    /// As soon as matching changes are in the feed (subject to the dampening period).
    #[default]
    OnChange,
    /// The matching changes gathered since the last push, every `interval`.
    Periodic(Periodic),
}

impl From<Emission> for SubscriptionEmission {
    fn from(e: Emission) -> Self {
        match e {
            Emission::OnChange => Self::OnChange,
            Emission::Periodic { interval } => Self::Periodic(Periodic {
                interval: interval.to_string(),
            }),
        }
    }
}

fn default_max_queue() -> u64 {
    pharos_emit::subscription::DEFAULT_MAX_QUEUE
}

/// The schema of a subscription's `sink` as far as the type says (an object); the document
/// replaces it with one variant per registered sink ([`crate::openapi::sink_schema`]).
fn sink_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .description(Some(
            "Where the subscription delivers: `type` names a registered sink",
        ))
        .build()
}

/// A subscription: a filter, when to push, and where (the body of `POST /api/v1/subscriptions`;
/// in answers, secrets are shown as `***`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = SubscriptionSpec)]
pub struct SubscriptionSpecView {
    /// At most one push per period, e.g. `"5s"`; changes during the period go in the next push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dampening_period: Option<String>,
    /// When to push (default on-change).
    #[serde(default)]
    pub emission: SubscriptionEmission,
    /// Which changes to push (default: every change).
    #[serde(default)]
    pub filter: SubscriptionFilter,
    /// Pending changes kept (default 100000); beyond, the oldest are dropped.
    #[serde(default = "default_max_queue")]
    pub max_queue: u64,
    /// Unique name: `a-z`, `0-9`, `-`, `_`, at most 64 characters.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    /// Where the subscription delivers.
    #[schema(schema_with = sink_schema)]
    pub sink: serde_json::Value,
}

impl From<SubscriptionSpec> for SubscriptionSpecView {
    fn from(s: SubscriptionSpec) -> Self {
        // The filter's values (severities, change names, prefixes) as the emit crate writes them.
        let filter = serde_json::to_value(&s.filter)
            .and_then(serde_json::from_value)
            .unwrap_or_default();
        Self {
            dampening_period: s.dampening_period.map(|d| d.to_string()),
            emission: s.emission.into(),
            filter,
            max_queue: s.max_queue,
            name: s.name,
            sink: serde_json::to_value(&s.sink).unwrap_or_default(),
        }
    }
}

/// Where a subscription was defined.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriptionOrigin {
    /// `[[subscription]]` in pharos.toml: cannot be deleted through the API.
    Config,
    /// Created with `POST /api/v1/subscriptions`.
    Api,
}

impl From<Origin> for SubscriptionOrigin {
    fn from(o: Origin) -> Self {
        match o {
            Origin::Config => Self::Config,
            Origin::Api => Self::Api,
        }
    }
}

/// Delivery state of one subscription.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionState {
    /// Changes delivered (acknowledged by the sink).
    pub delivered: u64,
    /// Matching changes skipped because more than `max_queue` were pending.
    pub dropped: u64,
    /// Changes deleted by retention before they were read.
    pub expired: u64,
    /// Changes the sink rejected for good.
    pub failed: u64,
    /// When the sink last acknowledged a delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_delivery: Option<DateTime<Utc>>,
    /// The last delivery error, if the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Matching changes read but not delivered plus the unread feed lag (an upper bound).
    pub pending: u64,
    /// Feed position up to which everything was handled.
    pub position: u64,
    /// Retries since start.
    pub retries: u64,
}

impl From<DeliveryState> for SubscriptionState {
    fn from(s: DeliveryState) -> Self {
        Self {
            delivered: s.delivered,
            dropped: s.dropped,
            expired: s.expired,
            failed: s.failed,
            last_delivery: s.last_delivery,
            last_error: s.last_error,
            pending: s.pending,
            position: s.position,
            retries: s.retries,
        }
    }
}

/// A subscription with its origin and delivery state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subscription {
    /// Where it was defined.
    pub origin: SubscriptionOrigin,
    /// The destination (URL without credentials, address).
    pub sink: String,
    /// The spec, secrets shown as `***`.
    pub spec: SubscriptionSpecView,
    /// Delivery state.
    pub state: SubscriptionState,
}

impl From<SubscriptionInfo> for Subscription {
    fn from(i: SubscriptionInfo) -> Self {
        Self {
            origin: i.origin.into(),
            sink: i.sink,
            spec: i.spec.into(),
            state: i.state.into(),
        }
    }
}

/// The answer of `GET /api/v1/subscriptions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionList {
    /// Every subscription.
    pub items: Vec<Subscription>,
}

// ---- tokens ----

/// Where a token is defined.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    /// The token database (`pharos token create`, `POST /api/v1/tokens`).
    Database,
    /// `[api] tokens` in pharos.toml.
    Config,
}

/// One API token; never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TokenInfo)]
pub struct Token {
    /// When it was created (null for configured tokens).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created: Option<DateTime<Utc>>,
    /// When it expires (null: never).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used: Option<DateTime<Utc>>,
    /// Its name.
    pub name: String,
    /// Role nsf: the NSF name its pushes are stored under (absent: the documents' own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsf: Option<String>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// viewer, analyst, admin or nsf.
    #[schema(value_type = String, pattern = "^(viewer|analyst|admin|nsf)$")]
    pub role: Role,
    /// `database` or `config`.
    pub source: TokenSource,
}

impl From<TokenInfo> for Token {
    fn from(t: TokenInfo) -> Self {
        Self {
            created: t.created,
            expires: t.expires,
            last_used: t.last_used,
            name: t.name,
            nsf: t.nsf,
            revoked: t.revoked,
            role: t.role,
            source: if t.source == "config" {
                TokenSource::Config
            } else {
                TokenSource::Database
            },
        }
    }
}

/// The answer of `GET /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenList {
    /// Every token, configured ones first.
    pub items: Vec<Token>,
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::json;

    use super::*;

    /// The bytes the answers had when they were written through `serde_json::Value`.
    fn before<T: Serialize>(v: &T) -> String {
        crate::json::to_string(&serde_json::to_value(v).unwrap()).unwrap()
    }

    fn now(v: &impl Serialize) -> String {
        crate::json::to_string(v).unwrap()
    }

    #[test]
    fn flow_answers_are_written_as_before() {
        let mut r = FlowRecord {
            src_addr: "192.0.2.1".parse().unwrap(),
            bytes: 1500,
            ..FlowRecord::default()
        };
        let a = FlowRecord::default();
        r.next_hop = Some("198.51.100.1".parse().unwrap());
        r.vlan = Some(7);
        let mut stats = ScanStats::default();
        stats.errors.push("segment x: unreadable".into());
        stats.segments += 3;
        let listing = Listing {
            flows: vec![r, a],
            stats: stats.clone(),
        };
        let old = json!({
            "flows": [r.to_json(), a.to_json()],
            "stats": stats,
        });
        assert_eq!(now(&FlowList::from(listing)), before(&old));
        let totals = Totals {
            flows: 2,
            packets: 3,
            bytes: 4,
        };
        let top = TopN {
            key: "dstip4/24".parse().unwrap(),
            by: Metric::Packets,
            rows: vec![
                TopRow {
                    key: KeyValue::Num(53),
                    totals,
                },
                TopRow {
                    key: KeyValue::Addr("192.0.2.1".parse().unwrap()),
                    totals,
                },
            ],
            total: totals,
            distinct: 2,
            stats: stats.clone(),
        };
        assert_eq!(now(&FlowTop::from(top.clone())), before(&top));
        let point = Point {
            t_ms: 60_000,
            totals,
        };
        for key in [None, Some("dstport".parse().unwrap())] {
            let series = Series {
                interval_ms: 60_000,
                by: Metric::Bytes,
                key,
                points: vec![point.clone()],
                keys: vec![KeySeries {
                    key: KeyValue::Num(80),
                    totals,
                    points: vec![point.clone()],
                }],
                stats: stats.clone(),
            };
            assert_eq!(now(&FlowSeries::from(series.clone())), before(&series));
        }
    }

    #[test]
    fn subscriptions_and_tokens_are_written_as_before() {
        for spec in [
            json!({"name": "a", "sink": {"type": "syslog", "address": "127.0.0.1:9"}}),
            json!({
                "name": "b",
                "filter": {"kinds": ["ddos"], "min_severity": "high", "prefixes": ["10.0.0.0/8"], "changes": ["created"]},
                "emission": {"periodic": {"interval": "30s"}},
                "dampening_period": "5s",
                "max_queue": 10,
                "sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "***"}
            }),
        ] {
            let spec: SubscriptionSpec = serde_json::from_value(spec).unwrap();
            for state in [
                DeliveryState::default(),
                DeliveryState {
                    last_error: Some("refused".into()),
                    last_delivery: Some(chrono::Utc::now()),
                    delivered: 3,
                    ..DeliveryState::default()
                },
            ] {
                let info = SubscriptionInfo {
                    spec: spec.clone(),
                    origin: Origin::Api,
                    sink: "http://127.0.0.1:9/hook".into(),
                    state,
                };
                assert_eq!(now(&Subscription::from(info.clone())), before(&json!(info)));
            }
        }
        for (source, nsf) in [("config", None), ("database", Some("fw1".to_string()))] {
            let t = TokenInfo {
                name: "t".into(),
                role: Role::Nsf,
                created: Some(chrono::Utc::now()),
                expires: None,
                revoked: false,
                last_used: None,
                source,
                nsf,
            };
            assert_eq!(now(&Token::from(t.clone())), before(&t));
        }
    }

    #[test]
    fn the_report_is_written_as_before() {
        let t = chrono::Utc::now();
        let report = Report {
            from: Some(t - chrono::Duration::hours(1)),
            to: Some(t),
            messages: 5,
            by_kind: [("ddos".to_string(), 5)].into(),
            by_severity: [("high".to_string(), 5)].into(),
            top_attacked: vec![HostCount {
                addr: "192.0.2.1".parse().unwrap(),
                count: 5,
            }],
            top_sources: vec![],
            attacks_started: 1,
            attacks_ended: 0,
            attacks: vec![AttackLine {
                nsf: "fw1".into(),
                rule: "r".into(),
                attack_type: None,
                victims: vec!["192.0.2.1".parse().unwrap()],
                start: t,
                end: None,
                peak_pps: Some(10),
                peak_bytes_per_s: None,
                started: true,
                ended: false,
            }],
            attacks_not_listed: 0,
        };
        for (covered_from, note) in [(None, None), (Some(t), Some("capped".to_string()))] {
            let mut old = serde_json::to_value(&report).unwrap();
            old["messages_read"] = json!(5usize);
            old["capped"] = json!(covered_from.is_some());
            old["covered_from"] = json!(covered_from);
            old["note"] = json!(note);
            let view = ReportView::new(report.clone(), 5, covered_from, note);
            assert_eq!(now(&view), before(&old));
        }
    }
}
