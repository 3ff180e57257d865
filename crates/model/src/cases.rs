//! Field mapping of every case, the common information and the envelope: one table per struct,
//! shared by the JSON and XML codecs.

use crate::codec::{Node, Out, OutValue, Reader, Record, Writer, at_least_one, is_language_tag};
use crate::ident::{
    AcquisitionMethod, MONITORING, PHAROS, SystemAlarmCategory, SystemEventCategory,
};
use crate::*;

/// Key of a YANG list entry, for duplicate detection.
pub(crate) trait Keyed: Record {
    fn key(&self) -> &str;
}

/// Declares the children of a struct, in schema order: `mode field: "yang-name"`, where mode is
/// `req` (mandatory leaf), `opt` (optional leaf), `percent` (optional uint8 0..100), `many`
/// (leaf-list), `some` (leaf-list with min-elements 1), `list` (YANG list of a [`Keyed`] record),
/// `cont` (non-presence container) or `grouping` (a grouping's children inline).
macro_rules! record {
    ($t:ident { $($mode:ident $f:ident : $name:literal),* $(,)? }) => {
        impl Record for $t {
            fn write(&self, w: &mut Writer) {
                $( record!(@write w, $mode, $name, &self.$f); )*
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, ModelError> {
                Ok(Self { $( $f: record!(@read r, $mode, $name), )* })
            }
        }
    };
    (@write $w:ident, req, $n:literal, $v:expr) => { $w.req($n, $v) };
    (@write $w:ident, opt, $n:literal, $v:expr) => { $w.opt($n, $v) };
    (@write $w:ident, percent, $n:literal, $v:expr) => { $w.opt($n, $v) };
    (@write $w:ident, many, $n:literal, $v:expr) => { $w.many($n, $v) };
    (@write $w:ident, some, $n:literal, $v:expr) => { $w.many($n, $v) };
    (@write $w:ident, list, $n:literal, $v:expr) => { $w.list($n, $v) };
    (@write $w:ident, cont, $n:literal, $v:expr) => { $w.cont($n, $v) };
    (@write $w:ident, grouping, $n:literal, $v:expr) => { $w.flat($v) };
    (@read $r:ident, req, $n:literal) => { $r.req($n)? };
    (@read $r:ident, opt, $n:literal) => { $r.opt($n)? };
    (@read $r:ident, percent, $n:literal) => { $r.percent($n)? };
    (@read $r:ident, many, $n:literal) => { $r.many($n)? };
    (@read $r:ident, some, $n:literal) => { { let v = $r.many($n)?; at_least_one($r, $n, v)? } };
    (@read $r:ident, list, $n:literal) => { $r.list($n, Keyed::key)? };
    (@read $r:ident, cont, $n:literal) => { $r.cont($n)? };
    (@read $r:ident, grouping, $n:literal) => { $r.flat()? };
}

// ---- i2nsf-event ----------------------------------------------------------------------------

impl Record for SystemAlarm {
    fn write(&self, w: &mut Writer) {
        let interface = self.alarm_category == Some(SystemAlarmCategory::InterfaceAlarm);
        w.opt("alarm-category", &self.alarm_category);
        w.opt("component-name", &self.component_name);
        if interface {
            // `when` alarm-category is interface-alarm: dropped otherwise.
            w.opt("interface-name", &self.interface_name);
            w.opt("interface-state", &self.interface_state);
        }
        w.opt("severity", &self.severity);
        w.opt("usage", &self.usage);
        w.opt("threshold", &self.threshold);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, ModelError> {
        let alarm_category: Option<SystemAlarmCategory> = r.opt("alarm-category")?;
        let interface = alarm_category == Some(SystemAlarmCategory::InterfaceAlarm);
        let v = Self {
            alarm_category,
            component_name: r.opt("component-name")?,
            interface_name: r.opt("interface-name")?,
            interface_state: r.opt("interface-state")?,
            severity: r.opt("severity")?,
            usage: r.percent("usage")?,
            threshold: r.percent("threshold")?,
        };
        for (name, present) in [
            ("interface-name", v.interface_name.is_some()),
            ("interface-state", v.interface_state.is_some()),
        ] {
            if present && !interface {
                return Err(r.err(
                    name,
                    "only allowed when alarm-category is interface-alarm (YANG `when`)",
                ));
            }
        }
        Ok(v)
    }
}

/// One `changes` entry: just its key.
struct Change {
    policy_name: String,
}

record!(Change { req policy_name: "policy-name" });

impl Keyed for Change {
    fn key(&self) -> &str {
        &self.policy_name
    }
}

impl Record for SystemEvent {
    fn write(&self, w: &mut Writer) {
        w.opt("event-category", &self.event_category);
        w.req("user", &self.user);
        w.many("group", &self.group);
        w.req("ip-address", &self.ip_address);
        w.req("l4-port-number", &self.l4_port_number);
        w.opt("authentication", &self.authentication);
        if self.event_category == Some(SystemEventCategory::ConfigurationChange) {
            // `when` event-category is configuration-change: dropped otherwise.
            let changes: Vec<Change> = self
                .changes
                .iter()
                .map(|p| Change {
                    policy_name: p.clone(),
                })
                .collect();
            w.list("changes", &changes);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, ModelError> {
        let event_category: Option<SystemEventCategory> = r.opt("event-category")?;
        let user = r.req("user")?;
        let group = r.many("group")?;
        let v = Self {
            event_category,
            user,
            group: at_least_one(r, "group", group)?,
            ip_address: r.req("ip-address")?,
            l4_port_number: r.req("l4-port-number")?,
            authentication: r.opt("authentication")?,
            changes: r
                .list::<Change>("changes", Keyed::key)?
                .into_iter()
                .map(|c| c.policy_name)
                .collect(),
        };
        if !v.changes.is_empty() && event_category != Some(SystemEventCategory::ConfigurationChange)
        {
            return Err(r.err(
                "changes",
                "only allowed when event-category is configuration-change (YANG `when`)",
            ));
        }
        Ok(v)
    }
}

record!(TrafficFlows {
    opt interface_name: "interface-name",
    opt interface_type: "interface-type",
    opt src_mac: "src-mac",
    opt dst_mac: "dst-mac",
    opt src_ip: "src-ip",
    opt dst_ip: "dst-ip",
    opt protocol: "protocol",
    opt src_port: "src-port",
    opt dst_port: "dst-port",
    opt measurement_time: "measurement-time",
    opt arrival_rate: "arrival-rate",
    opt arrival_throughput: "arrival-throughput",
});

record!(SessionTable {
    opt current_session: "current-session",
    opt maximum_session: "maximum-session",
    opt threshold: "threshold",
});

// ---- i2nsf-log ------------------------------------------------------------------------------

record!(SystemAccessLog {
    req user: "user",
    some group: "group",
    req ip_address: "ip-address",
    req l4_port_number: "l4-port-number",
    opt authentication: "authentication",
    opt operation_type: "operation-type",
    opt input: "input",
    opt output: "output",
});

record!(DiskUsage {
    req disk_id: "disk-id",
    opt disk_usage: "disk-usage",
    opt disk_space_left: "disk-space-left",
});

impl Keyed for DiskUsage {
    fn key(&self) -> &str {
        &self.disk_id
    }
}

record!(InterfaceUsage {
    req interface_id: "interface-id",
    opt in_traffic_rate: "in-traffic-rate",
    opt out_traffic_rate: "out-traffic-rate",
    opt in_traffic_throughput: "in-traffic-throughput",
    opt out_traffic_throughput: "out-traffic-throughput",
});

impl Keyed for InterfaceUsage {
    fn key(&self) -> &str {
        &self.interface_id
    }
}

record!(ResourceUtilizationLog {
    opt system_status: "system-status",
    opt cpu_usage: "cpu-usage",
    opt memory_usage: "memory-usage",
    list disks: "disks",
    opt session_num: "session-num",
    opt process_num: "process-num",
    list interfaces: "interface",
});

record!(AdditionalInfo {
    opt activity_type: "type",
    opt cause: "cause",
});

record!(UserActivityLog {
    req user: "user",
    some group: "group",
    req ip_address: "ip-address",
    req l4_port_number: "l4-port-number",
    opt authentication: "authentication",
    opt online_duration: "online-duration",
    opt logout_duration: "logout-duration",
    cont additional_info: "additional-info",
});

record!(DpiLog {
    opt attack_type: "attack-type",
    opt src_ip: "src-ip",
    opt src_port: "src-port",
    opt dst_ip: "dst-ip",
    opt dst_port: "dst-port",
    req rule_name: "rule-name",
    many action: "action",
});

// ---- i2nsf-nsf-event ------------------------------------------------------------------------

record!(DdosEvent {
    opt attack_type: "attack-type",
    req start_time: "start-time",
    opt end_time: "end-time",
    many attack_src_ip: "attack-src-ip",
    many attack_dst_ip: "attack-dst-ip",
    many attack_src_port: "attack-src-port",
    many attack_dst_port: "attack-dst-port",
    req rule_name: "rule-name",
    opt attack_rate: "attack-rate",
    opt attack_throughput: "attack-throughput",
});

record!(VirusEvent {
    opt src_ip: "src-ip",
    opt src_port: "src-port",
    opt dst_ip: "dst-ip",
    opt dst_port: "dst-port",
    req rule_name: "rule-name",
    opt virus_name: "virus-name",
    opt virus_type: "virus-type",
    opt host: "host",
    opt file_type: "file-type",
    opt file_name: "file-name",
    opt os: "os",
});

record!(IntrusionEvent {
    opt src_ip: "src-ip",
    opt src_port: "src-port",
    opt dst_ip: "dst-ip",
    opt dst_port: "dst-port",
    req rule_name: "rule-name",
    opt protocol: "protocol",
    opt app: "app",
    opt attack_type: "attack-type",
});

record!(WebAttackEvent {
    opt src_ip: "src-ip",
    opt src_port: "src-port",
    opt dst_ip: "dst-ip",
    opt dst_port: "dst-port",
    req rule_name: "rule-name",
    opt attack_type: "attack-type",
    opt req_method: "req-method",
    opt req_target: "req-target",
    many filtering_type: "filtering-type",
    opt cookies: "cookies",
    opt req_host: "req-host",
    opt response_code: "response-code",
});

record!(VoipVocnEvent {
    opt src_ip: "src-ip",
    opt src_port: "src-port",
    opt dst_ip: "dst-ip",
    opt dst_port: "dst-port",
    req rule_name: "rule-name",
    many source_voice_id: "source-voice-id",
    many destination_voice_id: "destination-voice-id",
    many user_agent: "user-agent",
});

// ---- i2nsf-counters -------------------------------------------------------------------------

record!(TrafficRates {
    req discontinuity_time: "discontinuity-time",
    opt measurement_time: "measurement-time",
    opt total_traffic: "total-traffic",
    opt in_traffic_average_rate: "in-traffic-average-rate",
    opt in_traffic_peak_rate: "in-traffic-peak-rate",
    opt in_traffic_average_throughput: "in-traffic-average-throughput",
    opt in_traffic_peak_throughput: "in-traffic-peak-throughput",
    opt out_traffic_average_rate: "out-traffic-average-rate",
    opt out_traffic_peak_rate: "out-traffic-peak-rate",
    opt out_traffic_average_throughput: "out-traffic-average-throughput",
    opt out_traffic_peak_throughput: "out-traffic-peak-throughput",
});

record!(InterfaceCounters {
    req interface_name: "interface-name",
    opt protocol: "protocol",
    opt in_total_traffic_pkts: "in-total-traffic-pkts",
    opt out_total_traffic_pkts: "out-total-traffic-pkts",
    opt in_total_traffic_bytes: "in-total-traffic-bytes",
    opt out_total_traffic_bytes: "out-total-traffic-bytes",
    opt in_drop_traffic_pkts: "in-drop-traffic-pkts",
    opt out_drop_traffic_pkts: "out-drop-traffic-pkts",
    opt in_drop_traffic_bytes: "in-drop-traffic-bytes",
    opt out_drop_traffic_bytes: "out-drop-traffic-bytes",
    grouping rates: "traffic-rates",
});

impl Keyed for InterfaceCounters {
    fn key(&self) -> &str {
        &self.interface_name
    }
}

record!(FirewallCounters {
    req policy_name: "policy-name",
    opt in_interface: "in-interface",
    opt out_interface: "out-interface",
    grouping rates: "traffic-rates",
});

impl Keyed for FirewallCounters {
    fn key(&self) -> &str {
        &self.policy_name
    }
}

record!(PolicyHits {
    req policy_name: "policy-name",
    req discontinuity_time: "discontinuity-time",
    opt hit_times: "hit-times",
});

impl Keyed for PolicyHits {
    fn key(&self) -> &str {
        &self.policy_name
    }
}

record!(Counters {
    opt timestamp: "timestamp",
    list system_interface: "system-interface",
    list nsf_firewall: "nsf-firewall",
    list nsf_policy_hits: "nsf-policy-hits",
});

// ---- pharos-i2nsf-extensions ----------------------------------------------------------------

record!(BotnetEvent {
    opt src_ip: "src-ip",
    opt src_port: "src-port",
    opt dst_ip: "dst-ip",
    opt dst_port: "dst-port",
    req rule_name: "rule-name",
    opt botnet_name: "botnet-name",
    opt role: "role",
    opt botnet_pkt_num: "botnet-pkt-num",
    opt protocol: "protocol",
});

record!(VulnerabilityScanLog {
    req vulnerability_id: "vulnerability-id",
    opt vulnerability_name: "vulnerability-name",
    opt victim_ip: "victim-ip",
    opt protocol: "protocol",
    opt port: "port",
    opt level: "level",
    opt os: "os",
    opt fix_suggestion: "fix-suggestion",
    opt rule_name: "rule-name",
});

record!(FirewallTrafficLog {
    opt src_ip: "src-ip",
    opt dst_ip: "dst-ip",
    opt src_port: "src-port",
    opt dst_port: "dst-port",
    opt protocol: "protocol",
    opt action: "action",
    opt sent_bytes: "sent-bytes",
    opt received_bytes: "received-bytes",
    opt sent_packets: "sent-packets",
    opt received_packets: "received-packets",
    opt policy_name: "policy-name",
    opt rule_name: "rule-name",
    opt in_interface: "in-interface",
    opt out_interface: "out-interface",
    opt application: "application",
    opt user: "user",
    opt session_id: "session-id",
    opt duration: "duration",
});

record!(GenericLog {
    opt format: "format",
    opt reason: "reason",
    opt app_name: "app-name",
});

/// Our envelope container, `pharos:envelope`.
#[derive(Default)]
struct Envelope {
    id: Option<u64>,
    event_time: Option<Timestamp>,
    receive_time: Option<Timestamp>,
    severity: Option<Severity>,
    source: Option<String>,
    raw: Option<String>,
    count: Option<u64>,
    first_seen: Option<Timestamp>,
    last_seen: Option<Timestamp>,
    fields: LogFields,
    classification: ClassificationLeaves,
}

/// `envelope/classification`.
#[derive(Default)]
struct ClassificationLeaves {
    taxonomy: Option<String>,
    kind: Option<String>,
}

record!(ClassificationLeaves {
    opt taxonomy: "taxonomy",
    opt kind: "type",
});

record!(Envelope {
    opt id: "id",
    opt event_time: "event-time",
    opt receive_time: "receive-time",
    opt severity: "severity",
    opt source: "source",
    opt raw: "raw",
    opt count: "count",
    opt first_seen: "first-seen",
    opt last_seen: "last-seen",
    cont fields: "fields",
    cont classification: "classification",
});

record!(LogFields {
    opt src_ip: "src-ip",
    opt src_port: "src-port",
    opt dst_ip: "dst-ip",
    opt dst_port: "dst-port",
    opt nat_src_ip: "nat-src-ip",
    opt nat_src_port: "nat-src-port",
    opt nat_dst_ip: "nat-dst-ip",
    opt nat_dst_port: "nat-dst-port",
    opt protocol: "protocol",
    opt action: "action",
    opt rule_name: "rule-name",
    opt user: "user",
    opt domain: "domain",
    opt url: "url",
    opt http_method: "http-method",
    opt http_status: "http-status",
    opt user_agent: "user-agent",
    opt sent_bytes: "sent-bytes",
    opt received_bytes: "received-bytes",
    opt session_id: "session-id",
    opt message_id: "message-id",
    opt in_interface: "in-interface",
    opt out_interface: "out-interface",
    opt application: "application",
    opt mail_from: "mail-from",
    opt mail_to: "mail-to",
    opt file_name: "file-name",
    opt src_as: "src-as",
    opt dst_as: "dst-as",
});

// ---- notifications and their choices --------------------------------------------------------

/// Name of the top-level node of a notification.
pub(crate) fn top_name(n: Notification) -> &'static str {
    match n {
        Notification::Event => "i2nsf-event",
        Notification::Log => "i2nsf-log",
        Notification::NsfEvent => "i2nsf-nsf-event",
        Notification::Counters => "i2nsf-counters",
    }
}

/// The top-level nodes, by name.
pub(crate) const TOP_NAMES: [&str; 4] = [
    "i2nsf-event",
    "i2nsf-log",
    "i2nsf-nsf-event",
    "i2nsf-counters",
];

type CaseReader = fn(&mut Reader<'_>) -> Result<Kind, ModelError>;

/// One case of a choice: module and name of its container, and how to read it.
struct Case(&'static str, &'static str, CaseReader);

static EVENT_CASES: &[Case] = &[
    Case(MONITORING, "i2nsf-system-detection-alarm", |r| {
        Ok(Kind::SystemAlarm(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-system-detection-event", |r| {
        Ok(Kind::SystemEvent(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-traffic-flows", |r| {
        Ok(Kind::TrafficFlows(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-nsf-detection-session-table", |r| {
        Ok(Kind::SessionTable(Record::read(r)?))
    }),
];

static LOG_CASES: &[Case] = &[
    Case(MONITORING, "i2nsf-nsf-system-access-log", |r| {
        Ok(Kind::SystemAccessLog(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-system-res-util-log", |r| {
        Ok(Kind::ResourceUtilizationLog(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-system-user-activity-log", |r| {
        Ok(Kind::UserActivityLog(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-nsf-log-dpi", |r| {
        Ok(Kind::DpiLog(Record::read(r)?))
    }),
    Case(PHAROS, "i2nsf-nsf-log-vuln-scan", |r| {
        Ok(Kind::VulnerabilityScanLog(Record::read(r)?))
    }),
    Case(PHAROS, "firewall-traffic-log", |r| {
        Ok(Kind::FirewallTrafficLog(Record::read(r)?))
    }),
    Case(PHAROS, "generic-log", |r| {
        Ok(Kind::GenericLog(Record::read(r)?))
    }),
];

static NSF_EVENT_CASES: &[Case] = &[
    Case(MONITORING, "i2nsf-nsf-detection-ddos", |r| {
        Ok(Kind::Ddos(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-nsf-detection-virus", |r| {
        Ok(Kind::Virus(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-nsf-detection-intrusion", |r| {
        Ok(Kind::Intrusion(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-nsf-detection-web-attack", |r| {
        Ok(Kind::WebAttack(Record::read(r)?))
    }),
    Case(MONITORING, "i2nsf-nsf-detection-voip-vocn", |r| {
        Ok(Kind::VoipVocn(Record::read(r)?))
    }),
    Case(PHAROS, "i2nsf-nsf-detection-botnet", |r| {
        Ok(Kind::Botnet(Record::read(r)?))
    }),
];

/// Writes the case container of `kind` (always, even when empty: it selects the case).
fn write_case(kind: &Kind, w: &mut Writer) {
    fn case<R: Record>(w: &mut Writer, module: &'static str, name: &'static str, v: &R) {
        let mut inner = Writer::new(module);
        v.write(&mut inner);
        w.out.push(Out {
            module,
            name,
            value: OutValue::Container(inner.out),
        });
    }
    match kind {
        Kind::SystemAlarm(c) => case(w, MONITORING, "i2nsf-system-detection-alarm", c),
        Kind::SystemEvent(c) => case(w, MONITORING, "i2nsf-system-detection-event", c),
        Kind::TrafficFlows(c) => case(w, MONITORING, "i2nsf-traffic-flows", c),
        Kind::SessionTable(c) => case(w, MONITORING, "i2nsf-nsf-detection-session-table", c),
        Kind::SystemAccessLog(c) => case(w, MONITORING, "i2nsf-nsf-system-access-log", c),
        Kind::ResourceUtilizationLog(c) => case(w, MONITORING, "i2nsf-system-res-util-log", c),
        Kind::UserActivityLog(c) => case(w, MONITORING, "i2nsf-system-user-activity-log", c),
        Kind::DpiLog(c) => case(w, MONITORING, "i2nsf-nsf-log-dpi", c),
        Kind::Ddos(c) => case(w, MONITORING, "i2nsf-nsf-detection-ddos", c),
        Kind::Virus(c) => case(w, MONITORING, "i2nsf-nsf-detection-virus", c),
        Kind::Intrusion(c) => case(w, MONITORING, "i2nsf-nsf-detection-intrusion", c),
        Kind::WebAttack(c) => case(w, MONITORING, "i2nsf-nsf-detection-web-attack", c),
        Kind::VoipVocn(c) => case(w, MONITORING, "i2nsf-nsf-detection-voip-vocn", c),
        Kind::Botnet(c) => case(w, PHAROS, "i2nsf-nsf-detection-botnet", c),
        Kind::VulnerabilityScanLog(c) => case(w, PHAROS, "i2nsf-nsf-log-vuln-scan", c),
        Kind::FirewallTrafficLog(c) => case(w, PHAROS, "firewall-traffic-log", c),
        Kind::GenericLog(c) => case(w, PHAROS, "generic-log", c),
        Kind::Counters(c) => w.flat(c),
    }
}

/// The children of the top-level node of `m` (common information, case, envelope).
pub(crate) fn to_out(m: &Message) -> (&'static str, Vec<Out>) {
    let c = &m.common;
    let counters = matches!(m.kind, Kind::Counters(_));
    let mut w = Writer::new(MONITORING);
    w.opt("vendor-name", &c.vendor_name);
    w.opt("device-model", &c.device_model);
    w.opt("software-version", &c.software_version);
    w.req("nsf-name", &c.nsf_name);
    if !counters {
        w.opt("message", &c.message);
        w.opt("language", &c.language);
    }
    w.opt("acquisition-method", &c.acquisition_method);
    if c.acquisition_method == Some(AcquisitionMethod::Subscription) {
        // `when` acquisition-method is subscription: dropped otherwise.
        w.opt("emission-type", &c.emission_type);
    }
    if !counters {
        w.opt("dampening-type", &c.dampening_type);
    }
    write_case(&m.kind, &mut w);
    let envelope = Envelope {
        id: c.id,
        event_time: Some(c.event_time),
        receive_time: Some(c.receive_time),
        severity: Some(c.severity),
        source: c.source.clone(),
        raw: c.raw.clone(),
        count: c.count,
        first_seen: c.first_seen,
        last_seen: c.last_seen,
        fields: c.fields.as_deref().cloned().unwrap_or_default(),
        classification: c
            .classification_of(&m.kind)
            .map(|k| ClassificationLeaves {
                taxonomy: Some(k.taxonomy.to_string()),
                kind: Some(k.kind.to_string()),
            })
            .unwrap_or_default(),
    };
    w.cont_in(PHAROS, "envelope", &envelope);
    (top_name(m.kind.notification()), w.out)
}

/// Reads a message from the children of top-level node `top`; `event_time` comes from the
/// transport envelope (RESTCONF `eventTime`, NETCONF `<eventTime>`) when there is one.
pub(crate) fn from_nodes(
    top: &str,
    nodes: &[Node],
    event_time: Option<Timestamp>,
) -> Result<Message, ModelError> {
    let (notification, cases) = match top {
        "i2nsf-event" => (Notification::Event, EVENT_CASES),
        "i2nsf-log" => (Notification::Log, LOG_CASES),
        "i2nsf-nsf-event" => (Notification::NsfEvent, NSF_EVENT_CASES),
        "i2nsf-counters" => (Notification::Counters, &[][..]),
        other => {
            return Err(ModelError::new(
                other,
                format!(
                    "unknown top-level node, expected one of {}",
                    TOP_NAMES.join(", ")
                ),
            ));
        }
    };
    let counters = notification == Notification::Counters;
    let mut r = Reader::new(top.to_string(), MONITORING, nodes);
    let mut common = Common::new(String::new());
    common.vendor_name = r.opt("vendor-name")?;
    common.device_model = r.opt("device-model")?;
    common.software_version = r.opt("software-version")?;
    common.nsf_name = r.req("nsf-name")?;
    if !counters {
        common.message = r.opt("message")?;
        common.language = r.opt("language")?;
        if let Some(l) = &common.language
            && !is_language_tag(l)
        {
            return Err(r.err(
                "language",
                format!("expected an RFC 5646 language tag like en-US, got {l:?}"),
            ));
        }
    }
    common.acquisition_method = r.opt("acquisition-method")?;
    common.emission_type = r.opt("emission-type")?;
    if common.emission_type.is_some()
        && common.acquisition_method != Some(AcquisitionMethod::Subscription)
    {
        return Err(r.err(
            "emission-type",
            "only allowed when acquisition-method is subscription (YANG `when`)",
        ));
    }
    if !counters {
        common.dampening_type = r.opt("dampening-type")?;
    }
    let kind = if counters {
        Kind::Counters(r.flat()?)
    } else {
        let present: Vec<&Case> = cases.iter().filter(|c| r.has_in(c.0, c.1)).collect();
        let choice = if notification == Notification::Log {
            "sub-logs-type"
        } else {
            "sub-event-type"
        };
        match present.as_slice() {
            [c] => r
                .cont_in_with(c.0, c.1, c.2)?
                .ok_or_else(|| r.err(c.1, "missing case container"))?,
            [] => {
                let names: Vec<&str> = cases.iter().map(|c| c.1).collect();
                return Err(ModelError::new(
                    top,
                    format!(
                        "expected exactly one case of choice {choice} ({}), got none",
                        names.join(", ")
                    ),
                ));
            }
            [a, b, ..] => {
                return Err(ModelError::new(
                    top,
                    format!(
                        "expected exactly one case of choice {choice}, got both {} and {}",
                        a.1, b.1
                    ),
                ));
            }
        }
    };
    let envelope: Envelope = r.cont_in(PHAROS, "envelope")?.unwrap_or_default();
    r.finish()?;
    let now = chrono::Utc::now();
    common.id = envelope.id;
    common.event_time = envelope.event_time.or(event_time).unwrap_or(now);
    common.receive_time = envelope.receive_time.unwrap_or(now);
    common.severity = envelope.severity.unwrap_or_else(|| default_severity(&kind));
    common.source = envelope.source;
    common.raw = envelope.raw;
    common.count = envelope.count;
    common.first_seen = envelope.first_seen;
    common.last_seen = envelope.last_seen;
    common.fields = (!envelope.fields.is_empty()).then(|| Box::new(envelope.fields));
    common.classification = match envelope.classification {
        ClassificationLeaves {
            taxonomy: Some(t),
            kind: Some(k),
        } => Some(crate::rsit::Classification::new(&t, &k).ok_or_else(|| {
            ModelError::new(
                "envelope/classification".to_string(),
                format!(
                    "{t}/{k} is not an RSIT taxonomy/type pair (see pharos_model::rsit::TAXONOMY)"
                ),
            )
        })?),
        ClassificationLeaves {
            taxonomy: None,
            kind: None,
        } => None,
        _ => {
            return Err(ModelError::new(
                "envelope/classification".to_string(),
                "taxonomy and type go together".to_string(),
            ));
        }
    };
    // the case's own mapping is implied: keep only a classification that says more
    if common.classification == crate::rsit::classify(&kind) {
        common.classification = None;
    }
    Ok(Message { common, kind })
}

/// Pharos severity of a case when no envelope says otherwise.
pub fn default_severity(kind: &Kind) -> Severity {
    match kind {
        Kind::SystemAlarm(a) => a.severity.map(Severity::from).unwrap_or(Severity::Middle),
        Kind::SystemEvent(e) => match e.event_category {
            Some(SystemEventCategory::AccessViolation) => Severity::Middle,
            _ => Severity::Low,
        },
        Kind::SessionTable(_) => Severity::Middle,
        Kind::Ddos(_)
        | Kind::Virus(_)
        | Kind::Intrusion(_)
        | Kind::WebAttack(_)
        | Kind::Botnet(_) => Severity::High,
        Kind::VoipVocn(_) => Severity::Middle,
        Kind::DpiLog(_) => Severity::Low,
        Kind::VulnerabilityScanLog(v) => v.level.unwrap_or(Severity::Middle),
        Kind::TrafficFlows(_)
        | Kind::SystemAccessLog(_)
        | Kind::ResourceUtilizationLog(_)
        | Kind::UserActivityLog(_)
        | Kind::FirewallTrafficLog(_)
        | Kind::GenericLog(_)
        | Kind::Counters(_) => Severity::Info,
    }
}
