//! The enumerated attribute values of the RID and IODEF v1 schemas, one Rust enum each.
//!
//! Contract: every enum renders exactly the schema's spelling ([`as_str`](MsgType::as_str)) and
//! parses it back with surrounding whitespace collapsed (the schemas declare `xs:NMTOKEN` with
//! whitespace collapse). Where a schema allows `ext-value`, the enum has an `Ext(String)` variant
//! holding the value of the companion `ext-<attribute>` attribute: it is emitted as
//! `attr="ext-value" ext-attr="..."`, and an `ext-value` without its companion is refused.

/// An enumerated attribute value (crate-internal: the codec is generic over it).
pub(crate) trait XmlEnum: Sized {
    /// The schema spelling (`ext-value` for an extension).
    fn xml_value(&self) -> &str;
    /// The extension value carried in `ext-<attribute>`, if this is one.
    fn xml_ext(&self) -> Option<&str>;
    /// Parses a schema value; `ext` is the companion `ext-<attribute>` attribute, if any.
    fn from_xml(v: &str, ext: Option<&str>) -> Result<Self, String>;
}

/// Declares an enumeration; `ext` adds an `Ext(String)` variant for `ext-value`.
macro_rules! xml_enum {
    ($(#[$m:meta])* $name:ident ext { $($var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $s, "`.")] $var,)+
            /// `ext-value`, with the value of the companion `ext-` attribute.
            Ext(String),
        }
        impl $name {
            /// The schema values, in schema order (without `ext-value`).
            pub const NAMES: &'static [&'static str] = &[$($s),+];
            /// The schema spelling (`ext-value` for [`Self::Ext`]).
            pub fn as_str(&self) -> &str {
                match self { $(Self::$var => $s,)+ Self::Ext(_) => "ext-value" }
            }
        }
        impl XmlEnum for $name {
            fn xml_value(&self) -> &str { self.as_str() }
            fn xml_ext(&self) -> Option<&str> {
                match self { Self::Ext(s) => Some(s), _ => None }
            }
            fn from_xml(v: &str, ext: Option<&str>) -> Result<Self, String> {
                match v.trim() {
                    $($s => Ok(Self::$var),)+
                    "ext-value" => match ext {
                        Some(e) => Ok(Self::Ext(e.to_string())),
                        None => Err("ext-value with its ext- attribute".to_string()),
                    },
                    _ => Err(format!("one of {}, ext-value", Self::NAMES.join(", "))),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    Self::Ext(s) => write!(f, "ext-value ({s})"),
                    _ => f.write_str(self.as_str()),
                }
            }
        }
    };
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $s, "`.")] $var,)+
        }
        impl $name {
            /// The schema values, in schema order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];
            /// The schema spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$var => $s,)+ }
            }
        }
        impl XmlEnum for $name {
            fn xml_value(&self) -> &str { self.as_str() }
            fn xml_ext(&self) -> Option<&str> { None }
            fn from_xml(v: &str, _ext: Option<&str>) -> Result<Self, String> {
                match v.trim() {
                    $($s => Ok(Self::$var),)+
                    _ => Err(format!("one of {}", Self::NAMES.join(", "))),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// ---- RID (RFC 6545 §4) ----------------------------------------------------------------------

xml_enum! {
    /// `RIDPolicy/@MsgType`: which RID message this is.
    MsgType ext {
        TraceRequest = "TraceRequest",
        InvestigationRequest = "InvestigationRequest",
        Acknowledgement = "Acknowledgement",
        Result = "Result",
        Report = "Report",
        Query = "Query",
    }
}

impl MsgType {
    /// True for the two Request variants (TraceRequest, InvestigationRequest).
    pub fn is_request(&self) -> bool {
        matches!(self, Self::TraceRequest | Self::InvestigationRequest)
    }

    /// Whether a message of type `reply` may come back inline (HTTP 200 body) in answer to a
    /// message of this type, per RFC 6546's response matrix: a Request is answered by an
    /// Acknowledgement, a Result or a Report; a Query by an Acknowledgement or a Report; a Report
    /// by an Acknowledgement (or nothing); Acknowledgement and Result (callbacks) by nothing.
    pub fn may_reply_with(&self, reply: &MsgType) -> bool {
        match self {
            Self::TraceRequest | Self::InvestigationRequest => {
                matches!(reply, Self::Acknowledgement | Self::Result | Self::Report)
            }
            Self::Query => matches!(reply, Self::Acknowledgement | Self::Report),
            Self::Report => matches!(reply, Self::Acknowledgement),
            Self::Acknowledgement | Self::Result | Self::Ext(_) => false,
        }
    }
}

xml_enum! {
    /// `RIDPolicy/@MsgDestination`: how to read the RIDPolicy's `Node`.
    MsgDestination ext {
        RidSystem = "RIDSystem",
        SourceOfIncident = "SourceOfIncident",
    }
}

xml_enum! {
    /// `PolicyRegion/@region`: the trust relationship the message travels over.
    PolicyRegion ext {
        ClientToSp = "ClientToSP",
        SpToClient = "SPToClient",
        IntraConsortium = "IntraConsortium",
        PeerToPeer = "PeerToPeer",
        BetweenConsortiums = "BetweenConsortiums",
    }
}

xml_enum! {
    /// `TrafficType/@type`: what kind of traffic or data the message is about.
    TrafficType ext {
        Attack = "Attack",
        Network = "Network",
        Content = "Content",
        DataWithHandlingRequirements = "DataWithHandlingRequirements",
        AudienceRestriction = "AudienceRestriction",
        Other = "Other",
    }
}

xml_enum! {
    /// `RequestStatus/@AuthorizationStatus`: the answer to a Request.
    AuthorizationStatus ext {
        Approved = "Approved",
        Denied = "Denied",
        Pending = "Pending",
    }
}

xml_enum! {
    /// `RequestStatus/@Justification`: why a Request was denied or could not be processed.
    Justification ext {
        SystemResource = "SystemResource",
        Authentication = "Authentication",
        AuthenticationOrigin = "AuthenticationOrigin",
        Encryption = "Encryption",
        UnrecognizedFormat = "UnrecognizedFormat",
        CannotProcess = "CannotProcess",
        Other = "Other",
    }
}

xml_enum! {
    /// `ReportSchema/@Version`: the version of the embedded schema.
    SchemaVersion ext {
        V1_0 = "1.0",
    }
}

xml_enum! {
    /// `ReportSchema/@XMLSchemaID`: the namespace of the embedded document.
    XmlSchemaId ext {
        Iodef1 = "urn:ietf:params:xml:ns:iodef-1.0",
    }
}

// ---- IODEF v1 (RFC 5070) ---------------------------------------------------------------------

xml_enum! {
    /// `restriction-type`: how the data may be shared.
    Restriction {
        Default = "default",
        Public = "public",
        NeedToKnow = "need-to-know",
        Private = "private",
    }
}

xml_enum! {
    /// `Incident/@purpose`: why the incident is sent.
    Purpose ext {
        Traceback = "traceback",
        Mitigation = "mitigation",
        Reporting = "reporting",
        Other = "other",
    }
}

xml_enum! {
    /// `Contact/@role`.
    ContactRole ext {
        Creator = "creator",
        Admin = "admin",
        Tech = "tech",
        Irt = "irt",
        Cc = "cc",
    }
}

xml_enum! {
    /// `Contact/@type`.
    ContactType ext {
        Person = "person",
        Organization = "organization",
    }
}

xml_enum! {
    /// `severity-type`.
    IodefSeverity {
        Low = "low",
        Medium = "medium",
        High = "high",
    }
}

xml_enum! {
    /// `Impact/@completion`: whether the attack succeeded.
    Completion {
        Failed = "failed",
        Succeeded = "succeeded",
    }
}

xml_enum! {
    /// `Impact/@type`.
    ImpactType ext {
        Admin = "admin",
        Dos = "dos",
        Extortion = "extortion",
        File = "file",
        InfoLeak = "info-leak",
        Misconfiguration = "misconfiguration",
        Recon = "recon",
        Policy = "policy",
        SocialEngineering = "social-engineering",
        User = "user",
        Unknown = "unknown",
    }
}

xml_enum! {
    /// `Assessment/@occurrence`.
    Occurrence {
        Actual = "actual",
        Potential = "potential",
    }
}

xml_enum! {
    /// `Confidence/@rating`; `numeric` carries its value as the element text.
    ConfidenceRating {
        Low = "low",
        Medium = "medium",
        High = "high",
        Numeric = "numeric",
        Unknown = "unknown",
    }
}

xml_enum! {
    /// `System/@category`: the role a system plays in the incident.
    SystemCategory ext {
        Source = "source",
        Target = "target",
        Intermediate = "intermediate",
        Sensor = "sensor",
        Infrastructure = "infrastructure",
    }
}

xml_enum! {
    /// `System/@spoofed`: whether the address is believed spoofed.
    Spoofed {
        Unknown = "unknown",
        Yes = "yes",
        No = "no",
    }
}

xml_enum! {
    /// `Address/@category`.
    AddressCategory ext {
        Asn = "asn",
        Atm = "atm",
        Email = "e-mail",
        Mac = "mac",
        Ipv4Addr = "ipv4-addr",
        Ipv4Net = "ipv4-net",
        Ipv4NetMask = "ipv4-net-mask",
        Ipv6Addr = "ipv6-addr",
        Ipv6Net = "ipv6-net",
        Ipv6NetMask = "ipv6-net-mask",
    }
}

xml_enum! {
    /// `Counter/@type`: what is counted.
    CounterType ext {
        Byte = "byte",
        Packet = "packet",
        Flow = "flow",
        Session = "session",
        Event = "event",
        Alert = "alert",
        Message = "message",
        Host = "host",
        Site = "site",
        Organization = "organization",
    }
}

xml_enum! {
    /// `duration-type`: the time unit of a rate.
    Duration ext {
        Second = "second",
        Minute = "minute",
        Hour = "hour",
        Day = "day",
        Month = "month",
        Quarter = "quarter",
        Year = "year",
    }
}

xml_enum! {
    /// `action-type`: an action wanted (Expectation) or taken (HistoryItem).
    Action ext {
        Nothing = "nothing",
        ContactSourceSite = "contact-source-site",
        ContactTargetSite = "contact-target-site",
        ContactSender = "contact-sender",
        Investigate = "investigate",
        BlockHost = "block-host",
        BlockNetwork = "block-network",
        BlockPort = "block-port",
        RateLimitHost = "rate-limit-host",
        RateLimitNetwork = "rate-limit-network",
        RateLimitPort = "rate-limit-port",
        RemediateOther = "remediate-other",
        StatusTriage = "status-triage",
        StatusNewInfo = "status-new-info",
        Other = "other",
    }
}

xml_enum! {
    /// `dtype-type`: the data type of an extension's content.
    DType ext {
        Boolean = "boolean",
        Byte = "byte",
        Character = "character",
        DateTime = "date-time",
        Integer = "integer",
        NtpStamp = "ntpstamp",
        Portlist = "portlist",
        Real = "real",
        String = "string",
        File = "file",
        Path = "path",
        Frame = "frame",
        Packet = "packet",
        Ipv4Packet = "ipv4-packet",
        Ipv6Packet = "ipv6-packet",
        Url = "url",
        Csv = "csv",
        Winreg = "winreg",
        Xml = "xml",
    }
}
