//! Message, its common information and envelope, and one struct per notification case.

use std::net::IpAddr;

/// A point in time (UTC), encoded as yang:date-and-time.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// One I2NSF notification (or counters snapshot) with our envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Basic information every message carries, plus the envelope.
    pub common: Common,
    /// Which case of which notification, with its leaves.
    pub kind: Kind,
}

/// The common basic information of the module plus our envelope fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    /// `nsf-name`: name, FQDN or address of the NSF (mandatory in the module).
    pub nsf_name: String,
    /// `vendor-name`.
    pub vendor_name: Option<String>,
    /// `device-model`.
    pub device_model: Option<String>,
    /// `software-version`.
    pub software_version: Option<String>,
    /// `message`: free-text annotation.
    pub message: Option<String>,
    /// `language` (RFC 5646 tag); `None` means the module default `en-US`.
    pub language: Option<String>,
    /// `acquisition-method`.
    pub acquisition_method: Option<crate::ident::AcquisitionMethod>,
    /// `emission-type` (only valid with acquisition-method subscription).
    pub emission_type: Option<crate::ident::EmissionType>,
    /// `dampening-type` (notifications only, not counters).
    pub dampening_type: Option<crate::ident::DampeningType>,
    /// Envelope: store id, assigned when the message is stored.
    pub id: Option<u64>,
    /// Envelope: when the NSF says it happened.
    pub event_time: Timestamp,
    /// Envelope: when Pharos received it.
    pub receive_time: Timestamp,
    /// Envelope: Pharos' one severity scale across all kinds.
    pub severity: Severity,
    /// Envelope: where it came from, e.g. `push:192.0.2.1` or `syslog-udp:192.0.2.7`.
    pub source: Option<String>,
    /// Envelope: the raw record as received (a log line), when there was one.
    pub raw: Option<String>,
    /// Envelope: identical notifications this one stands for, when several were folded into it
    /// (dedup); `None` for a message that was not folded.
    pub count: Option<u64>,
    /// Envelope: when Pharos received the first notification folded into this one.
    pub first_seen: Option<Timestamp>,
    /// Envelope: when Pharos received the last notification folded into this one.
    pub last_seen: Option<Timestamp>,
    /// Envelope: fields parsed from a vendor record that the case has no leaf for (all of them
    /// for a generic log), so the addresses, ports, user and URL an analyst searches on are kept.
    pub fields: Option<Box<LogFields>>,
    /// Envelope: the RSIT classification its source gave (e.g. an incoming feed); when `None`,
    /// the encoders write [`crate::rsit::classify`]'s mapping of the case, so every event
    /// carries one.
    pub classification: Option<crate::rsit::Classification>,
}

/// Extension `envelope/fields`: what a vendor record said beyond its I2NSF case. Strings are
/// the vendor's own words (clipped by the normalisers); every leaf is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFields {
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `nat-src-ip`: source after translation.
    pub nat_src_ip: Option<IpAddr>,
    /// `nat-src-port`.
    pub nat_src_port: Option<u16>,
    /// `nat-dst-ip`: destination after translation.
    pub nat_dst_ip: Option<IpAddr>,
    /// `nat-dst-port`.
    pub nat_dst_port: Option<u16>,
    /// `protocol`, lowercased vendor name (`tcp`, `udp`, `icmp`, `http`...).
    pub protocol: Option<String>,
    /// `action` as the vendor names it.
    pub action: Option<String>,
    /// `rule-name`.
    pub rule_name: Option<String>,
    /// `user`.
    pub user: Option<String>,
    /// `domain`: HTTP host, SNI, DNS query or mail domain.
    pub domain: Option<String>,
    /// `url`: URL or request target.
    pub url: Option<String>,
    /// `http-method`.
    pub http_method: Option<String>,
    /// `http-status`.
    pub http_status: Option<u16>,
    /// `user-agent`.
    pub user_agent: Option<String>,
    /// `sent-bytes`: source to destination.
    pub sent_bytes: Option<u64>,
    /// `received-bytes`: destination to source.
    pub received_bytes: Option<u64>,
    /// `session-id`.
    pub session_id: Option<String>,
    /// `message-id`: vendor message id, log type or tag.
    pub message_id: Option<String>,
    /// `in-interface` (or zone).
    pub in_interface: Option<String>,
    /// `out-interface` (or zone).
    pub out_interface: Option<String>,
    /// `application`.
    pub application: Option<String>,
    /// `mail-from`.
    pub mail_from: Option<String>,
    /// `mail-to`.
    pub mail_to: Option<String>,
    /// `file-name`.
    pub file_name: Option<String>,
    /// `src-as`: AS number of the source side (from flow records: the attack sources' one AS,
    /// when they all share it).
    pub src_as: Option<u32>,
    /// `dst-as`: AS number of the destination side (the victim's AS, from flow records).
    pub dst_as: Option<u32>,
}

impl LogFields {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Common {
    /// Common information for `nsf_name`, stamped now, severity info, everything else absent.
    pub fn new(nsf_name: impl Into<String>) -> Self {
        let now = chrono::Utc::now();
        Self {
            nsf_name: nsf_name.into(),
            vendor_name: None,
            device_model: None,
            software_version: None,
            message: None,
            language: None,
            acquisition_method: None,
            emission_type: None,
            dampening_type: None,
            id: None,
            event_time: now,
            receive_time: now,
            severity: Severity::Info,
            source: None,
            raw: None,
            count: None,
            first_seen: None,
            last_seen: None,
            fields: None,
            classification: None,
        }
    }

    /// The RSIT classification the message carries: its own, else the mapping of its case.
    pub fn classification_of(&self, kind: &Kind) -> Option<crate::rsit::Classification> {
        self.classification
            .clone()
            .or_else(|| crate::rsit::classify(kind))
    }
}

/// Pharos' severity scale; the module's `severity` typedef is the upper four.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: no action expected.
    Info,
    /// `low`.
    Low,
    /// `middle`.
    Middle,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl Severity {
    /// All values, lowest first.
    pub const ALL: [Severity; 5] = [
        Self::Info,
        Self::Low,
        Self::Middle,
        Self::High,
        Self::Critical,
    ];
    /// The YANG enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Middle => "middle",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
    /// Parses a YANG enum name (`medium` is accepted for `middle`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Self::Info,
            "low" => Self::Low,
            "middle" | "medium" => Self::Middle,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }
}

/// Life-cycle state of an event (alarms and events; logs and counters have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    /// Raised, nobody has acted on it.
    Open,
    /// An analyst has seen it.
    Acknowledged,
    /// Over (attack ended, alarm cleared, or closed by hand).
    Closed,
}

impl EventState {
    /// The name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Closed => "closed",
        }
    }
    /// Parses a name from [`EventState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "closed" => Self::Closed,
            _ => return None,
        })
    }
}

/// The YANG top-level node a message is encoded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notification {
    /// `i2nsf-event`.
    Event,
    /// `i2nsf-log`.
    Log,
    /// `i2nsf-nsf-event`.
    NsfEvent,
    /// `i2nsf-counters` (state data, not a notification).
    Counters,
}

/// One case of one notification, with its leaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// i2nsf-event / i2nsf-system-detection-alarm.
    SystemAlarm(SystemAlarm),
    /// i2nsf-event / i2nsf-system-detection-event.
    SystemEvent(SystemEvent),
    /// i2nsf-event / i2nsf-traffic-flows.
    TrafficFlows(TrafficFlows),
    /// i2nsf-event / i2nsf-nsf-detection-session-table.
    SessionTable(SessionTable),
    /// i2nsf-log / i2nsf-nsf-system-access-log.
    SystemAccessLog(SystemAccessLog),
    /// i2nsf-log / i2nsf-system-res-util-log.
    ResourceUtilizationLog(ResourceUtilizationLog),
    /// i2nsf-log / i2nsf-system-user-activity-log.
    UserActivityLog(UserActivityLog),
    /// i2nsf-log / i2nsf-nsf-log-dpi.
    DpiLog(DpiLog),
    /// i2nsf-nsf-event / i2nsf-nsf-detection-ddos.
    Ddos(DdosEvent),
    /// i2nsf-nsf-event / i2nsf-nsf-detection-virus.
    Virus(VirusEvent),
    /// i2nsf-nsf-event / i2nsf-nsf-detection-intrusion.
    Intrusion(IntrusionEvent),
    /// i2nsf-nsf-event / i2nsf-nsf-detection-web-attack.
    WebAttack(WebAttackEvent),
    /// i2nsf-nsf-event / i2nsf-nsf-detection-voip-vocn.
    VoipVocn(VoipVocnEvent),
    /// i2nsf-counters (state data).
    Counters(Counters),
    /// Extension: i2nsf-nsf-event / pharos botnet event.
    Botnet(BotnetEvent),
    /// Extension: i2nsf-log / pharos vulnerability-scan log.
    VulnerabilityScanLog(VulnerabilityScanLog),
    /// Extension: i2nsf-log / pharos firewall traffic log.
    FirewallTrafficLog(FirewallTrafficLog),
    /// Extension: i2nsf-log / pharos generic log (a record no normaliser understood; raw text kept).
    GenericLog(GenericLog),
}

/// Stable short names of the kinds, as used in API filters and the store.
pub const KIND_NAMES: [&str; 18] = [
    "system-alarm",
    "system-event",
    "traffic-flows",
    "session-table",
    "system-access-log",
    "resource-utilization-log",
    "user-activity-log",
    "dpi-log",
    "ddos",
    "virus",
    "intrusion",
    "web-attack",
    "voip-vocn",
    "counters",
    "botnet",
    "vulnerability-scan-log",
    "firewall-traffic-log",
    "generic-log",
];

impl Kind {
    /// Stable short name (one of [`KIND_NAMES`]).
    pub fn name(&self) -> &'static str {
        KIND_NAMES[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            Kind::SystemAlarm(_) => 0,
            Kind::SystemEvent(_) => 1,
            Kind::TrafficFlows(_) => 2,
            Kind::SessionTable(_) => 3,
            Kind::SystemAccessLog(_) => 4,
            Kind::ResourceUtilizationLog(_) => 5,
            Kind::UserActivityLog(_) => 6,
            Kind::DpiLog(_) => 7,
            Kind::Ddos(_) => 8,
            Kind::Virus(_) => 9,
            Kind::Intrusion(_) => 10,
            Kind::WebAttack(_) => 11,
            Kind::VoipVocn(_) => 12,
            Kind::Counters(_) => 13,
            Kind::Botnet(_) => 14,
            Kind::VulnerabilityScanLog(_) => 15,
            Kind::FirewallTrafficLog(_) => 16,
            Kind::GenericLog(_) => 17,
        }
    }

    /// The top-level YANG node this kind is encoded under.
    pub fn notification(&self) -> Notification {
        match self {
            Kind::SystemAlarm(_)
            | Kind::SystemEvent(_)
            | Kind::TrafficFlows(_)
            | Kind::SessionTable(_) => Notification::Event,
            Kind::SystemAccessLog(_)
            | Kind::ResourceUtilizationLog(_)
            | Kind::UserActivityLog(_)
            | Kind::DpiLog(_)
            | Kind::VulnerabilityScanLog(_)
            | Kind::FirewallTrafficLog(_)
            | Kind::GenericLog(_) => Notification::Log,
            Kind::Ddos(_)
            | Kind::Virus(_)
            | Kind::Intrusion(_)
            | Kind::WebAttack(_)
            | Kind::VoipVocn(_)
            | Kind::Botnet(_) => Notification::NsfEvent,
            Kind::Counters(_) => Notification::Counters,
        }
    }

    /// True for alarms and events, which have a life cycle (open, acknowledged, closed).
    pub fn is_event(&self) -> bool {
        matches!(
            self.notification(),
            Notification::Event | Notification::NsfEvent
        )
    }
}

/// Role of an address found in a message, for indexing and filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrRole {
    /// Source side (attacker, client, user).
    Src,
    /// Destination side (victim, server).
    Dst,
}

impl Message {
    /// A message of `kind` from `nsf_name`, stamped now.
    pub fn new(nsf_name: impl Into<String>, kind: Kind) -> Self {
        Self {
            common: Common::new(nsf_name),
            kind,
        }
    }

    /// Every address the message names, with its role (for indexing and prefix filters).
    pub fn addresses(&self) -> Vec<(AddrRole, IpAddr)> {
        let mut out = crate::message::addresses_of(&self.kind);
        if let Some(f) = &self.common.fields {
            let more = [
                (AddrRole::Src, f.src_ip),
                (AddrRole::Src, f.nat_src_ip),
                (AddrRole::Dst, f.dst_ip),
                (AddrRole::Dst, f.nat_dst_ip),
            ];
            for (role, a) in more {
                if let Some(a) = a.filter(|a| !out.contains(&(role, *a))) {
                    out.push((role, a));
                }
            }
        }
        out
    }

    /// The policy rule name the message refers to, if its kind has one.
    pub fn rule_name(&self) -> Option<&str> {
        crate::message::rule_name_of(&self.kind)
    }

    /// End time of an event whose case carries one (a finished DDoS attack).
    pub fn end_time(&self) -> Option<Timestamp> {
        match &self.kind {
            Kind::Ddos(d) => d.end_time,
            _ => None,
        }
    }
}

// ---- cases ----------------------------------------------------------------------------------

/// `i2nsf-system-detection-alarm`: cpu, memory, disk, hardware or interface alarm.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemAlarm {
    /// `alarm-category`.
    pub alarm_category: Option<crate::ident::SystemAlarmCategory>,
    /// `component-name` (hardware alarm).
    pub component_name: Option<String>,
    /// `interface-name` (only for interface-alarm).
    pub interface_name: Option<String>,
    /// `interface-state` (only for interface-alarm).
    pub interface_state: Option<crate::ident::InterfaceState>,
    /// `severity` (module scale: critical, high, middle, low).
    pub severity: Option<crate::ident::AlarmSeverity>,
    /// `usage` in percent, 0..=100.
    pub usage: Option<u8>,
    /// `threshold` in percent, 0..=100.
    pub threshold: Option<u8>,
}

/// `i2nsf-nsf-detection-ddos`: one DDoS attack.
#[derive(Debug, Clone, PartialEq)]
pub struct DdosEvent {
    /// `attack-type` (module `ddos-type` identities and our extension ones).
    pub attack_type: Option<crate::ident::DdosType>,
    /// `start-time` (mandatory).
    pub start_time: Timestamp,
    /// `end-time`; absent while the attack goes on.
    pub end_time: Option<Timestamp>,
    /// `attack-src-ip`: a bounded sample of sources.
    pub attack_src_ip: Vec<IpAddr>,
    /// `attack-dst-ip`.
    pub attack_dst_ip: Vec<IpAddr>,
    /// `attack-src-port`.
    pub attack_src_port: Vec<u16>,
    /// `attack-dst-port`.
    pub attack_dst_port: Vec<u16>,
    /// `rule-name` (mandatory leafref to a policy rule).
    pub rule_name: String,
    /// `attack-rate` in packets/s.
    pub attack_rate: Option<u64>,
    /// `attack-throughput` in bytes/s.
    pub attack_throughput: Option<u64>,
}

/// Extension `generic-log`: a record no normaliser understood, kept with its raw text in the envelope.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenericLog {
    /// Format the record was received in (e.g. `rfc5424`, `rfc3164`, `json`).
    pub format: Option<String>,
    /// Why it was not normalised further.
    pub reason: Option<String>,
    /// Syslog application name / tag, when known.
    pub app_name: Option<String>,
}

/// A MAC address (`yang:mac-address`), rendered lowercase `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("expected a MAC address like 00:1a:2b:3c:4d:5e, got {s:?}");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// `i2nsf-system-detection-event`: access violation or configuration change.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemEvent {
    /// `event-category`.
    pub event_category: Option<crate::ident::SystemEventCategory>,
    /// `user` (mandatory).
    pub user: String,
    /// `group` (at least one).
    pub group: Vec<String>,
    /// `ip-address` of the user (mandatory).
    pub ip_address: IpAddr,
    /// `l4-port-number` (mandatory).
    pub l4_port_number: u16,
    /// `authentication`.
    pub authentication: Option<crate::ident::AuthenticationMode>,
    /// `changes` keys: names of added, modified or removed policies (only for configuration-change).
    pub changes: Vec<String>,
}

/// `i2nsf-traffic-flows`: rates of a traffic flow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficFlows {
    /// `interface-name`.
    pub interface_name: Option<String>,
    /// `interface-type`.
    pub interface_type: Option<crate::ident::InterfaceType>,
    /// `src-mac`.
    pub src_mac: Option<MacAddr>,
    /// `dst-mac`.
    pub dst_mac: Option<MacAddr>,
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `protocol`.
    pub protocol: Option<crate::ident::Protocol>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `measurement-time` in seconds.
    pub measurement_time: Option<u32>,
    /// `arrival-rate` in packets/s.
    pub arrival_rate: Option<u64>,
    /// `arrival-throughput` in bytes/s.
    pub arrival_throughput: Option<u64>,
}

/// `i2nsf-nsf-detection-session-table`: session table usage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionTable {
    /// `current-session`.
    pub current_session: Option<u32>,
    /// `maximum-session`.
    pub maximum_session: Option<u32>,
    /// `threshold`.
    pub threshold: Option<u32>,
}

/// `i2nsf-nsf-system-access-log`: an access to the NSF.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemAccessLog {
    /// `user` (mandatory).
    pub user: String,
    /// `group` (at least one).
    pub group: Vec<String>,
    /// `ip-address` (mandatory).
    pub ip_address: IpAddr,
    /// `l4-port-number` (mandatory).
    pub l4_port_number: u16,
    /// `authentication`.
    pub authentication: Option<crate::ident::AuthenticationMode>,
    /// `operation-type`.
    pub operation_type: Option<crate::ident::OperationType>,
    /// `input`: the command entered.
    pub input: Option<String>,
    /// `output`: the command's result.
    pub output: Option<String>,
}

/// One entry of `disks` in a resource utilisation log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiskUsage {
    /// `disk-id` (key).
    pub disk_id: String,
    /// `disk-usage` in percent.
    pub disk_usage: Option<u8>,
    /// `disk-space-left` in percent.
    pub disk_space_left: Option<u8>,
}

/// One entry of `interface` in a resource utilisation log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InterfaceUsage {
    /// `interface-id` (key).
    pub interface_id: String,
    /// `in-traffic-rate` in packets/s.
    pub in_traffic_rate: Option<u64>,
    /// `out-traffic-rate` in packets/s.
    pub out_traffic_rate: Option<u64>,
    /// `in-traffic-throughput` in bytes/s.
    pub in_traffic_throughput: Option<u64>,
    /// `out-traffic-throughput` in bytes/s.
    pub out_traffic_throughput: Option<u64>,
}

/// `i2nsf-system-res-util-log`: resource utilisation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceUtilizationLog {
    /// `system-status`.
    pub system_status: Option<crate::ident::SystemStatus>,
    /// `cpu-usage` in percent.
    pub cpu_usage: Option<u8>,
    /// `memory-usage` in percent.
    pub memory_usage: Option<u8>,
    /// `disks` list.
    pub disks: Vec<DiskUsage>,
    /// `session-num`.
    pub session_num: Option<u32>,
    /// `process-num`.
    pub process_num: Option<u32>,
    /// `interface` list.
    pub interfaces: Vec<InterfaceUsage>,
}

/// Container `additional-info` of a user activity log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdditionalInfo {
    /// `type` of activity.
    pub activity_type: Option<crate::ident::UserActivityType>,
    /// `cause`: free text.
    pub cause: Option<String>,
}

/// `i2nsf-system-user-activity-log`: a user's activity.
#[derive(Debug, Clone, PartialEq)]
pub struct UserActivityLog {
    /// `user` (mandatory).
    pub user: String,
    /// `group` (at least one).
    pub group: Vec<String>,
    /// `ip-address` (mandatory).
    pub ip_address: IpAddr,
    /// `l4-port-number` (mandatory).
    pub l4_port_number: u16,
    /// `authentication`.
    pub authentication: Option<crate::ident::AuthenticationMode>,
    /// `online-duration` in seconds.
    pub online_duration: Option<u32>,
    /// `logout-duration` in seconds.
    pub logout_duration: Option<u32>,
    /// `additional-info` (non-presence container: all-absent means not emitted).
    pub additional_info: AdditionalInfo,
}

/// `i2nsf-nsf-log-dpi`: a deep packet inspection log.
#[derive(Debug, Clone, PartialEq)]
pub struct DpiLog {
    /// `attack-type`.
    pub attack_type: Option<crate::ident::DpiType>,
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `rule-name` (mandatory leafref to a policy rule).
    pub rule_name: String,
    /// `action` taken.
    pub action: Vec<crate::ident::IngressAction>,
}

/// `i2nsf-nsf-detection-virus`: a virus detection.
#[derive(Debug, Clone, PartialEq)]
pub struct VirusEvent {
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `rule-name` (mandatory leafref).
    pub rule_name: String,
    /// `virus-name`.
    pub virus_name: Option<String>,
    /// `virus-type`.
    pub virus_type: Option<crate::ident::VirusType>,
    /// `host`: infected host, name or address.
    pub host: Option<String>,
    /// `file-type`.
    pub file_type: Option<String>,
    /// `file-name`.
    pub file_name: Option<String>,
    /// `os`.
    pub os: Option<String>,
}

/// `i2nsf-nsf-detection-intrusion`: an intrusion detection.
#[derive(Debug, Clone, PartialEq)]
pub struct IntrusionEvent {
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `rule-name` (mandatory leafref).
    pub rule_name: String,
    /// `protocol` (transport).
    pub protocol: Option<crate::ident::TransportProtocol>,
    /// `app` (application protocol).
    pub app: Option<crate::ident::ApplicationProtocol>,
    /// `attack-type`.
    pub attack_type: Option<crate::ident::IntrusionAttackType>,
}

/// `i2nsf-nsf-detection-web-attack`: a web attack.
#[derive(Debug, Clone, PartialEq)]
pub struct WebAttackEvent {
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `rule-name` (mandatory leafref).
    pub rule_name: String,
    /// `attack-type`.
    pub attack_type: Option<crate::ident::WebAttackType>,
    /// `req-method`.
    pub req_method: Option<crate::ident::ReqMethod>,
    /// `req-target`.
    pub req_target: Option<String>,
    /// `filtering-type`.
    pub filtering_type: Vec<crate::ident::FilterType>,
    /// `cookies`.
    pub cookies: Option<String>,
    /// `req-host`.
    pub req_host: Option<String>,
    /// `response-code`.
    pub response_code: Option<String>,
}

/// `i2nsf-nsf-detection-voip-vocn`: a VoIP/VoCN violation.
#[derive(Debug, Clone, PartialEq)]
pub struct VoipVocnEvent {
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `rule-name` (mandatory leafref).
    pub rule_name: String,
    /// `source-voice-id`.
    pub source_voice_id: Vec<String>,
    /// `destination-voice-id`.
    pub destination_voice_id: Vec<String>,
    /// `user-agent`.
    pub user_agent: Vec<String>,
}

/// Grouping `traffic-rates` of the counters.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRates {
    /// `discontinuity-time` (mandatory).
    pub discontinuity_time: Timestamp,
    /// `measurement-time` in seconds.
    pub measurement_time: Option<u32>,
    /// `total-traffic` in packets (counter64).
    pub total_traffic: Option<u64>,
    /// `in-traffic-average-rate` in packets/s.
    pub in_traffic_average_rate: Option<u64>,
    /// `in-traffic-peak-rate` in packets/s.
    pub in_traffic_peak_rate: Option<u64>,
    /// `in-traffic-average-throughput` in bytes/s.
    pub in_traffic_average_throughput: Option<u64>,
    /// `in-traffic-peak-throughput` in bytes/s.
    pub in_traffic_peak_throughput: Option<u64>,
    /// `out-traffic-average-rate` in packets/s.
    pub out_traffic_average_rate: Option<u64>,
    /// `out-traffic-peak-rate` in packets/s.
    pub out_traffic_peak_rate: Option<u64>,
    /// `out-traffic-average-throughput` in bytes/s.
    pub out_traffic_average_throughput: Option<u64>,
    /// `out-traffic-peak-throughput` in bytes/s.
    pub out_traffic_peak_throughput: Option<u64>,
}

impl TrafficRates {
    /// Rates with only the mandatory `discontinuity-time`.
    pub fn new(discontinuity_time: Timestamp) -> Self {
        Self {
            discontinuity_time,
            measurement_time: None,
            total_traffic: None,
            in_traffic_average_rate: None,
            in_traffic_peak_rate: None,
            in_traffic_average_throughput: None,
            in_traffic_peak_throughput: None,
            out_traffic_average_rate: None,
            out_traffic_peak_rate: None,
            out_traffic_average_throughput: None,
            out_traffic_peak_throughput: None,
        }
    }
}

/// One entry of `system-interface` in the counters.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceCounters {
    /// `interface-name` (key, interface-ref).
    pub interface_name: String,
    /// `protocol`.
    pub protocol: Option<crate::ident::Protocol>,
    /// `in-total-traffic-pkts` (counter64).
    pub in_total_traffic_pkts: Option<u64>,
    /// `out-total-traffic-pkts` (counter64).
    pub out_total_traffic_pkts: Option<u64>,
    /// `in-total-traffic-bytes`.
    pub in_total_traffic_bytes: Option<u64>,
    /// `out-total-traffic-bytes`.
    pub out_total_traffic_bytes: Option<u64>,
    /// `in-drop-traffic-pkts` (counter64).
    pub in_drop_traffic_pkts: Option<u64>,
    /// `out-drop-traffic-pkts` (counter64).
    pub out_drop_traffic_pkts: Option<u64>,
    /// `in-drop-traffic-bytes`.
    pub in_drop_traffic_bytes: Option<u64>,
    /// `out-drop-traffic-bytes`.
    pub out_drop_traffic_bytes: Option<u64>,
    /// Grouping `traffic-rates`.
    pub rates: TrafficRates,
}

/// One entry of `nsf-firewall` in the counters.
#[derive(Debug, Clone, PartialEq)]
pub struct FirewallCounters {
    /// `policy-name` (key, leafref to a policy).
    pub policy_name: String,
    /// `in-interface`.
    pub in_interface: Option<String>,
    /// `out-interface`.
    pub out_interface: Option<String>,
    /// Grouping `traffic-rates`.
    pub rates: TrafficRates,
}

/// One entry of `nsf-policy-hits` in the counters.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyHits {
    /// `policy-name` (key, leafref to a policy).
    pub policy_name: String,
    /// `discontinuity-time` (mandatory).
    pub discontinuity_time: Timestamp,
    /// `hit-times` (counter64).
    pub hit_times: Option<u64>,
}

/// `i2nsf-counters`: a counters snapshot (state data). Common `message`, `language` and
/// `dampening-type` do not exist for counters and are not encoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counters {
    /// `timestamp` of the snapshot.
    pub timestamp: Option<Timestamp>,
    /// `system-interface` list.
    pub system_interface: Vec<InterfaceCounters>,
    /// `nsf-firewall` list.
    pub nsf_firewall: Vec<FirewallCounters>,
    /// `nsf-policy-hits` list.
    pub nsf_policy_hits: Vec<PolicyHits>,
}

/// Extension `i2nsf-nsf-detection-botnet`: botnet traffic (the case the final model dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct BotnetEvent {
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `rule-name` (mandatory; a plain string in the extension module).
    pub rule_name: String,
    /// `botnet-name`.
    pub botnet_name: Option<String>,
    /// `role` of the communicating party (e.g. `bot`, `c2-server`).
    pub role: Option<String>,
    /// `botnet-pkt-num`: packets seen.
    pub botnet_pkt_num: Option<u64>,
    /// `protocol` (transport).
    pub protocol: Option<crate::ident::TransportProtocol>,
}

/// Extension `i2nsf-nsf-log-vuln-scan`: one finding of a vulnerability scan.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnerabilityScanLog {
    /// `vulnerability-id` (mandatory), e.g. a CVE id.
    pub vulnerability_id: String,
    /// `vulnerability-name`.
    pub vulnerability_name: Option<String>,
    /// `victim-ip`.
    pub victim_ip: Option<IpAddr>,
    /// `protocol` (transport).
    pub protocol: Option<crate::ident::TransportProtocol>,
    /// `port`.
    pub port: Option<u16>,
    /// `level` on the Pharos severity scale.
    pub level: Option<Severity>,
    /// `os` of the victim.
    pub os: Option<String>,
    /// `fix-suggestion`.
    pub fix_suggestion: Option<String>,
    /// `rule-name` (plain string).
    pub rule_name: Option<String>,
}

/// Extension `firewall-traffic-log`: a session allowed or denied by a firewall.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FirewallTrafficLog {
    /// `src-ip`.
    pub src_ip: Option<IpAddr>,
    /// `dst-ip`.
    pub dst_ip: Option<IpAddr>,
    /// `src-port`.
    pub src_port: Option<u16>,
    /// `dst-port`.
    pub dst_port: Option<u16>,
    /// `protocol`.
    pub protocol: Option<crate::ident::Protocol>,
    /// `action` taken.
    pub action: Option<crate::ident::IngressAction>,
    /// `sent-bytes`: bytes from source to destination.
    pub sent_bytes: Option<u64>,
    /// `received-bytes`: bytes from destination to source.
    pub received_bytes: Option<u64>,
    /// `sent-packets`.
    pub sent_packets: Option<u64>,
    /// `received-packets`.
    pub received_packets: Option<u64>,
    /// `policy-name` (plain string).
    pub policy_name: Option<String>,
    /// `rule-name` (plain string).
    pub rule_name: Option<String>,
    /// `in-interface`.
    pub in_interface: Option<String>,
    /// `out-interface`.
    pub out_interface: Option<String>,
    /// `application`.
    pub application: Option<String>,
    /// `user`.
    pub user: Option<String>,
    /// `session-id`.
    pub session_id: Option<u64>,
    /// `duration` in seconds.
    pub duration: Option<u32>,
}

/// Every address a case names, with its role.
pub fn addresses_of(kind: &Kind) -> Vec<(AddrRole, IpAddr)> {
    fn pair(src: Option<IpAddr>, dst: Option<IpAddr>) -> Vec<(AddrRole, IpAddr)> {
        src.map(|a| (AddrRole::Src, a))
            .into_iter()
            .chain(dst.map(|a| (AddrRole::Dst, a)))
            .collect()
    }
    match kind {
        Kind::SystemEvent(e) => vec![(AddrRole::Src, e.ip_address)],
        Kind::SystemAccessLog(e) => vec![(AddrRole::Src, e.ip_address)],
        Kind::UserActivityLog(e) => vec![(AddrRole::Src, e.ip_address)],
        Kind::TrafficFlows(e) => pair(e.src_ip, e.dst_ip),
        Kind::DpiLog(e) => pair(e.src_ip, e.dst_ip),
        Kind::Virus(e) => pair(e.src_ip, e.dst_ip),
        Kind::Intrusion(e) => pair(e.src_ip, e.dst_ip),
        Kind::WebAttack(e) => pair(e.src_ip, e.dst_ip),
        Kind::VoipVocn(e) => pair(e.src_ip, e.dst_ip),
        Kind::Botnet(e) => pair(e.src_ip, e.dst_ip),
        Kind::FirewallTrafficLog(e) => pair(e.src_ip, e.dst_ip),
        Kind::VulnerabilityScanLog(e) => pair(None, e.victim_ip),
        Kind::Ddos(d) => d
            .attack_src_ip
            .iter()
            .map(|a| (AddrRole::Src, *a))
            .chain(d.attack_dst_ip.iter().map(|a| (AddrRole::Dst, *a)))
            .collect(),
        Kind::SystemAlarm(_)
        | Kind::SessionTable(_)
        | Kind::ResourceUtilizationLog(_)
        | Kind::Counters(_)
        | Kind::GenericLog(_) => Vec::new(),
    }
}

/// The policy rule name a case refers to, if it has one.
pub fn rule_name_of(kind: &Kind) -> Option<&str> {
    match kind {
        Kind::Ddos(e) => Some(&e.rule_name),
        Kind::DpiLog(e) => Some(&e.rule_name),
        Kind::Virus(e) => Some(&e.rule_name),
        Kind::Intrusion(e) => Some(&e.rule_name),
        Kind::WebAttack(e) => Some(&e.rule_name),
        Kind::VoipVocn(e) => Some(&e.rule_name),
        Kind::Botnet(e) => Some(&e.rule_name),
        Kind::VulnerabilityScanLog(e) => e.rule_name.as_deref(),
        Kind::FirewallTrafficLog(e) => e.rule_name.as_deref(),
        _ => None,
    }
}
