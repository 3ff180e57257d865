//! Identities and enumerations of `ietf-i2nsf-monitoring-interface`, the identities we use from
//! `ietf-i2nsf-nsf-facing-interface`, and the ones `pharos-i2nsf-extensions` adds.
//!
//! Contract: an identity enum knows the module that defines each value ([`Identity::module`]),
//! renders the module-qualified name ([`Identity::qualified`]) and parses both qualified names and
//! bare names; a bare name means "the module of the leaf" (RFC 7951 §6.8), so a bare extension
//! identity in a module leaf is rejected, as is a wrong module prefix. Plain YANG enumerations
//! implement [`YangEnum`] instead.

/// Module name of the I2NSF monitoring module.
pub const MONITORING: &str = "ietf-i2nsf-monitoring-interface";
/// Module name of the I2NSF NSF-facing interface module.
pub const NSF_FACING: &str = "ietf-i2nsf-nsf-facing-interface";
/// Module name of our extension module.
pub const PHAROS: &str = "pharos-i2nsf-extensions";

/// XML namespace of a known module name.
pub fn namespace_of(module: &str) -> Option<&'static str> {
    match module {
        MONITORING => Some("urn:ietf:params:xml:ns:yang:ietf-i2nsf-monitoring-interface"),
        NSF_FACING => Some("urn:ietf:params:xml:ns:yang:ietf-i2nsf-nsf-facing-interface"),
        PHAROS => Some("urn:pharos:params:xml:ns:yang:pharos-i2nsf-extensions"),
        _ => None,
    }
}

/// Module name of a known XML namespace.
pub fn module_of_namespace(ns: &str) -> Option<&'static str> {
    [MONITORING, NSF_FACING, PHAROS]
        .into_iter()
        .find(|m| namespace_of(m) == Some(ns))
}

/// Conventional XML prefix of a known module name (`i2nsfmi`, `i2nsfnfi`, `pharos`).
pub fn prefix_of(module: &str) -> Option<&'static str> {
    match module {
        MONITORING => Some("i2nsfmi"),
        NSF_FACING => Some("i2nsfnfi"),
        PHAROS => Some("pharos"),
        _ => None,
    }
}

/// A set of YANG identities derived from one base (an `identityref` leaf's value space).
pub trait Identity: Sized + Copy + PartialEq + 'static {
    /// The base identity, for error messages (e.g. `ddos-type`).
    const BASE: &'static str;
    /// Every value, in declaration order.
    fn all() -> &'static [Self];
    /// The identity name without module (e.g. `syn-flood`).
    fn name(self) -> &'static str;
    /// The module that defines the identity.
    fn module(self) -> &'static str;
    /// `module:name`, as RFC 7951 emits it.
    fn qualified(self) -> String {
        format!("{}:{}", self.module(), self.name())
    }
    /// Parses `module:name` or a bare name, which means `leaf_module:name`.
    fn parse(s: &str, leaf_module: &str) -> Result<Self, String> {
        let (module, name) = s.split_once(':').unwrap_or((leaf_module, s));
        Self::all()
            .iter()
            .copied()
            .find(|v| v.name() == name && v.module() == module)
            .ok_or_else(|| {
                let known: Vec<String> = Self::all().iter().map(|v| v.qualified()).collect();
                format!(
                    "expected an identity derived from {} ({}), got {s:?}",
                    Self::BASE,
                    known.join(", ")
                )
            })
    }
}

/// A YANG enumeration (plain names, no module).
pub trait YangEnum: Sized + Copy + PartialEq + 'static {
    /// Every value, in declaration order.
    fn all() -> &'static [Self];
    /// The enum name.
    fn as_str(self) -> &'static str;
    /// Parses an enum name.
    fn parse(s: &str) -> Result<Self, String> {
        Self::all()
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::all().iter().map(|v| v.as_str()).collect();
                format!("expected one of {}, got {s:?}", known.join(", "))
            })
    }
}

/// Declares an identity enum: `Name : "base" { Variant = (MODULE, "name"), ... }`.
macro_rules! identities {
    ($(#[$meta:meta])* $name:ident : $base:literal { $($var:ident = ($module:ident, $id:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $id, "`.")] $var,)+
        }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
        }
        impl Identity for $name {
            const BASE: &'static str = $base;
            fn all() -> &'static [Self] { Self::ALL }
            fn name(self) -> &'static str { match self { $($name::$var => $id,)+ } }
            fn module(self) -> &'static str { match self { $($name::$var => $module,)+ } }
        }
    };
}

/// Declares a plain enumeration: `Name { Variant = "name", ... }`.
macro_rules! enumeration {
    ($(#[$meta:meta])* $name:ident { $($var:ident = $id:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $id, "`.")] $var,)+
        }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
        }
        impl YangEnum for $name {
            fn all() -> &'static [Self] { Self::ALL }
            fn as_str(self) -> &'static str { match self { $($name::$var => $id,)+ } }
        }
    };
}

identities! {
    /// Base `acquisition-method`: how the monitoring data was obtained.
    AcquisitionMethod: "acquisition-method" {
        Subscription = (MONITORING, "subscription"),
        Query = (MONITORING, "query"),
    }
}

identities! {
    /// Base `emission-type`: periodic or on-change (with subscription only).
    EmissionType: "emission-type" {
        Periodic = (MONITORING, "periodic"),
        OnChange = (MONITORING, "on-change"),
    }
}

identities! {
    /// Base `dampening-type`.
    DampeningType: "dampening-type" {
        NoDampening = (MONITORING, "no-dampening"),
        OnRepetition = (MONITORING, "on-repetition"),
    }
}

identities! {
    /// Base `authentication-mode`.
    AuthenticationMode: "authentication-mode" {
        PreConfiguredKey = (MONITORING, "pre-configured-key"),
        CertificateAuthority = (MONITORING, "certificate-authority"),
    }
}

identities! {
    /// Base `system-alarm`: the alarm category of a system alarm.
    SystemAlarmCategory: "system-alarm" {
        MemoryAlarm = (MONITORING, "memory-alarm"),
        CpuAlarm = (MONITORING, "cpu-alarm"),
        DiskAlarm = (MONITORING, "disk-alarm"),
        HardwareAlarm = (MONITORING, "hardware-alarm"),
        InterfaceAlarm = (MONITORING, "interface-alarm"),
    }
}

identities! {
    /// Base `system-event`: the category of a system event.
    SystemEventCategory: "system-event" {
        AccessViolation = (MONITORING, "access-violation"),
        ConfigurationChange = (MONITORING, "configuration-change"),
    }
}

identities! {
    /// Base `protocol`: the whole protocol identity tree.
    Protocol: "protocol" {
        Ip = (MONITORING, "ip"),
        Ipv4 = (MONITORING, "ipv4"),
        Ipv6 = (MONITORING, "ipv6"),
        Icmp = (MONITORING, "icmp"),
        Icmpv4 = (MONITORING, "icmpv4"),
        Icmpv6 = (MONITORING, "icmpv6"),
        TransportProtocol = (MONITORING, "transport-protocol"),
        Tcp = (MONITORING, "tcp"),
        Udp = (MONITORING, "udp"),
        Sctp = (MONITORING, "sctp"),
        Dccp = (MONITORING, "dccp"),
        ApplicationProtocol = (MONITORING, "application-protocol"),
        Http = (MONITORING, "http"),
        Https = (MONITORING, "https"),
        Http2 = (MONITORING, "http2"),
        Https2 = (MONITORING, "https2"),
        Ftp = (MONITORING, "ftp"),
        Ssh = (MONITORING, "ssh"),
        Telnet = (MONITORING, "telnet"),
        Smtp = (MONITORING, "smtp"),
        Pop3 = (MONITORING, "pop3"),
        Pop3s = (MONITORING, "pop3s"),
        Imap = (MONITORING, "imap"),
        Imaps = (MONITORING, "imaps"),
    }
}

identities! {
    /// Base `transport-protocol`.
    TransportProtocol: "transport-protocol" {
        Tcp = (MONITORING, "tcp"),
        Udp = (MONITORING, "udp"),
        Sctp = (MONITORING, "sctp"),
        Dccp = (MONITORING, "dccp"),
    }
}

identities! {
    /// Base `application-protocol`.
    ApplicationProtocol: "application-protocol" {
        Http = (MONITORING, "http"),
        Https = (MONITORING, "https"),
        Http2 = (MONITORING, "http2"),
        Https2 = (MONITORING, "https2"),
        Ftp = (MONITORING, "ftp"),
        Ssh = (MONITORING, "ssh"),
        Telnet = (MONITORING, "telnet"),
        Smtp = (MONITORING, "smtp"),
        Pop3 = (MONITORING, "pop3"),
        Pop3s = (MONITORING, "pop3s"),
        Imap = (MONITORING, "imap"),
        Imaps = (MONITORING, "imaps"),
    }
}

identities! {
    /// Base `ddos-type`: module floods plus our amplification and fragment floods.
    DdosType: "ddos-type" {
        SynFlood = (MONITORING, "syn-flood"),
        AckFlood = (MONITORING, "ack-flood"),
        SynAckFlood = (MONITORING, "syn-ack-flood"),
        FinRstFlood = (MONITORING, "fin-rst-flood"),
        TcpConFlood = (MONITORING, "tcp-con-flood"),
        UdpFlood = (MONITORING, "udp-flood"),
        Icmpv4Flood = (MONITORING, "icmpv4-flood"),
        Icmpv6Flood = (MONITORING, "icmpv6-flood"),
        HttpFlood = (MONITORING, "http-flood"),
        HttpsFlood = (MONITORING, "https-flood"),
        DnsQueryFlood = (MONITORING, "dns-query-flood"),
        DnsReplyFlood = (MONITORING, "dns-reply-flood"),
        SipFlood = (MONITORING, "sip-flood"),
        TlsFlood = (MONITORING, "tls-flood"),
        NtpAmpFlood = (MONITORING, "ntp-amp-flood"),
        MemcachedAmpFlood = (PHAROS, "memcached-amp-flood"),
        SsdpAmpFlood = (PHAROS, "ssdp-amp-flood"),
        CldapAmpFlood = (PHAROS, "cldap-amp-flood"),
        ChargenAmpFlood = (PHAROS, "chargen-amp-flood"),
        SnmpAmpFlood = (PHAROS, "snmp-amp-flood"),
        DnsAmpFlood = (PHAROS, "dns-amp-flood"),
        FragmentFlood = (PHAROS, "fragment-flood"),
    }
}

identities! {
    /// Base `virus-type`.
    VirusType: "virus-type" {
        Trojan = (MONITORING, "trojan"),
        Worm = (MONITORING, "worm"),
        Macro = (MONITORING, "macro"),
        BootSector = (MONITORING, "boot-sector"),
        Polymorphic = (MONITORING, "polymorphic"),
        Overwrite = (MONITORING, "overwrite"),
        Resident = (MONITORING, "resident"),
        NonResident = (MONITORING, "non-resident"),
        Multipartite = (MONITORING, "multipartite"),
        Spacefiller = (MONITORING, "spacefiller"),
    }
}

identities! {
    /// Base `intrusion-attack-type`: module types plus our scan types.
    IntrusionAttackType: "intrusion-attack-type" {
        BruteForce = (MONITORING, "brute-force"),
        BufferOverflow = (MONITORING, "buffer-overflow"),
        PortScan = (PHAROS, "port-scan"),
        HostSweep = (PHAROS, "host-sweep"),
    }
}

identities! {
    /// Base `web-attack-type`: module types plus ours.
    WebAttackType: "web-attack-type" {
        CommandInjection = (MONITORING, "command-injection"),
        Xss = (MONITORING, "xss"),
        Csrf = (MONITORING, "csrf"),
        SqlInjection = (PHAROS, "sql-injection"),
        PathTraversal = (PHAROS, "path-traversal"),
        OtherWebAttack = (PHAROS, "other-web-attack"),
    }
}

identities! {
    /// Base `req-method`: HTTP request methods.
    ReqMethod: "req-method" {
        Put = (MONITORING, "put"),
        Post = (MONITORING, "post"),
        Get = (MONITORING, "get"),
        Head = (MONITORING, "head"),
        Delete = (MONITORING, "delete"),
        Connect = (MONITORING, "connect"),
        Options = (MONITORING, "options"),
        Trace = (MONITORING, "trace"),
    }
}

identities! {
    /// Base `filter-type`: web filtering list type.
    FilterType: "filter-type" {
        AllowList = (MONITORING, "allow-list"),
        DenyList = (MONITORING, "deny-list"),
        UnknownFilter = (MONITORING, "unknown-filter"),
    }
}

identities! {
    /// Base `dpi-type`: what a DPI log is about.
    DpiType: "dpi-type" {
        FileBlocking = (MONITORING, "file-blocking"),
        DataFiltering = (MONITORING, "data-filtering"),
        ApplicationBehaviorControl = (MONITORING, "application-behavior-control"),
    }
}

identities! {
    /// Base `i2nsfnfi:ingress-action` of the NSF-facing module.
    IngressAction: "ingress-action" {
        Pass = (NSF_FACING, "pass"),
        Drop = (NSF_FACING, "drop"),
        Reject = (NSF_FACING, "reject"),
        Mirror = (NSF_FACING, "mirror"),
        RateLimit = (NSF_FACING, "rate-limit"),
    }
}

enumeration! {
    /// Typedef `severity` of the module (system alarms).
    AlarmSeverity {
        Critical = "critical",
        High = "high",
        Middle = "middle",
        Low = "low",
    }
}

enumeration! {
    /// `interface-state` of an interface alarm.
    InterfaceState {
        Up = "up",
        Down = "down",
        Congested = "congested",
        Testing = "testing",
        Unknown = "unknown",
        Dormant = "dormant",
        NotPresent = "not-present",
        LowerLayerDown = "lower-layer-down",
    }
}

enumeration! {
    /// `interface-type` of traffic flows: ingress or egress.
    InterfaceType {
        Ingress = "ingress",
        Egress = "egress",
    }
}

enumeration! {
    /// Typedef `operation-type` of access logs.
    OperationType {
        Login = "login",
        Logout = "logout",
        Configuration = "configuration",
        Other = "other",
    }
}

enumeration! {
    /// Typedef `login-role` (defined by the module, unused by its notifications).
    LoginRole {
        Administrator = "administrator",
        User = "user",
        Guest = "guest",
    }
}

enumeration! {
    /// `system-status` of resource utilisation logs.
    SystemStatus {
        Running = "running",
        Waiting = "waiting",
        Inactive = "inactive",
    }
}

enumeration! {
    /// `additional-info/type` of user activity logs.
    UserActivityType {
        SuccessfulLogin = "successful-login",
        FailedLogin = "failed-login",
        Logout = "logout",
        SuccessfulPasswordChanged = "successful-password-changed",
        FailedPasswordChanged = "failed-password-changed",
        Lock = "lock",
        Unlock = "unlock",
    }
}

enumeration! {
    /// Typedef `pharos:severity`: Pharos' severity scale as a YANG enumeration.
    SeverityEnum {
        Info = "info",
        Low = "low",
        Middle = "middle",
        High = "high",
        Critical = "critical",
    }
}

impl From<AlarmSeverity> for crate::Severity {
    fn from(s: AlarmSeverity) -> Self {
        match s {
            AlarmSeverity::Critical => Self::Critical,
            AlarmSeverity::High => Self::High,
            AlarmSeverity::Middle => Self::Middle,
            AlarmSeverity::Low => Self::Low,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_name_the_defining_module() {
        assert_eq!(
            DdosType::SynFlood.qualified(),
            "ietf-i2nsf-monitoring-interface:syn-flood"
        );
        assert_eq!(
            DdosType::MemcachedAmpFlood.qualified(),
            "pharos-i2nsf-extensions:memcached-amp-flood"
        );
        assert_eq!(
            IngressAction::Drop.qualified(),
            "ietf-i2nsf-nsf-facing-interface:drop"
        );
    }

    #[test]
    fn bare_names_mean_the_leaf_module_and_wrong_prefixes_are_rejected() {
        assert_eq!(
            DdosType::parse("syn-flood", MONITORING),
            Ok(DdosType::SynFlood)
        );
        assert!(DdosType::parse("pharos-i2nsf-extensions:port-scan", MONITORING).is_err());
        assert!(DdosType::parse("memcached-amp-flood", MONITORING).is_err());
        assert_eq!(
            DdosType::parse("pharos-i2nsf-extensions:memcached-amp-flood", MONITORING),
            Ok(DdosType::MemcachedAmpFlood)
        );
        assert!(DdosType::parse("pharos-i2nsf-extensions:syn-flood", MONITORING).is_err());
        assert!(DdosType::parse("smurf", MONITORING).is_err());
        assert_eq!(
            IngressAction::parse("drop", NSF_FACING),
            Ok(IngressAction::Drop)
        );
        assert!(IngressAction::parse("drop", MONITORING).is_err());
    }

    #[test]
    fn enums_parse_their_names() {
        assert_eq!(
            InterfaceState::parse("lower-layer-down"),
            Ok(InterfaceState::LowerLayerDown)
        );
        assert!(InterfaceState::parse("sideways").is_err());
        for s in AlarmSeverity::ALL {
            assert_eq!(AlarmSeverity::parse(s.as_str()), Ok(*s));
        }
    }
}
