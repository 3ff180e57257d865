//! Shared building blocks: the draft a vendor module returns, value parsers (addresses, ports,
//! protocols, actions) and the keyword tables used by several vendors.
//!
//! Contract: every function here is total (returns `None` or a placeholder, never panics) and
//! bounds what it copies ([`clip`]).

use std::net::{IpAddr, Ipv4Addr};

use pharos_model::ident::{
    ApplicationProtocol, DdosType, IngressAction, IntrusionAttackType, Protocol, ReqMethod,
    TransportProtocol, UserActivityType, VirusType, WebAttackType,
};
use pharos_model::{
    DdosEvent, IntrusionEvent, Kind, LogFields, Message, Severity, SystemAccessLog, Timestamp,
    UserActivityLog, WebAttackEvent,
};

use crate::{FormatName, LogInput, UNKNOWN_GROUP, UNKNOWN_USER};

/// Longest string copied from a record into one leaf (bytes, cut at a char boundary).
pub const MAX_LEAF: usize = 1024;
/// Longest summary written into `common.message`.
pub const MAX_SUMMARY: usize = 256;

/// Copies at most [`MAX_LEAF`] bytes of `s`.
pub fn clip(s: &str) -> String {
    clip_to(s, MAX_LEAF)
}

/// Copies at most `max` bytes of `s`, cut at a char boundary.
pub fn clip_to(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").to_string()
}

/// Start time a vendor leaves for the envelope to fill: a DDoS event without its own start time
/// starts at the record's event time.
pub const UNSET_START: Timestamp = chrono::DateTime::UNIX_EPOCH;

/// What a vendor module hands back: the case plus the envelope facts it found.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: Kind,
    pub severity: Severity,
    pub time: Option<Timestamp>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub summary: Option<String>,
    /// Vendor fields beyond the case's leaves (`envelope/fields`), set by [`Draft::fields`].
    pub fields: Option<Box<LogFields>>,
}

impl Draft {
    pub fn new(kind: Kind, severity: Severity) -> Self {
        Self {
            kind,
            severity,
            time: None,
            vendor: None,
            model: None,
            version: None,
            summary: None,
            fields: None,
        }
    }
    /// Keeps the vendor fields the case has no leaf for (nothing when `f` is empty).
    pub fn fields(mut self, f: LogFields) -> Self {
        self.fields = (!f.is_empty()).then(|| Box::new(f));
        self
    }
    pub fn time(mut self, t: Option<Timestamp>) -> Self {
        if t.is_some() {
            self.time = t;
        }
        self
    }
    pub fn vendor(mut self, v: &str) -> Self {
        if !v.is_empty() {
            self.vendor = Some(clip(v));
        }
        self
    }
    pub fn model(mut self, m: Option<&str>) -> Self {
        self.model = m.filter(|m| !m.is_empty()).map(clip);
        self
    }
    pub fn version(mut self, v: Option<&str>) -> Self {
        self.version = v.filter(|v| !v.is_empty()).map(clip);
        self
    }
    pub fn summary<S: AsRef<str> + Into<String>>(mut self, s: S) -> Self {
        let whole = s.as_ref();
        let t = whole.trim();
        if t.len() == whole.len() && t.len() <= MAX_SUMMARY {
            // nothing to trim or cut: keep the caller's string (no copy when it is owned)
            if !t.is_empty() {
                self.summary = Some(s.into());
            }
        } else if !t.is_empty() {
            self.summary = Some(clip_to(t, MAX_SUMMARY));
        }
        self
    }

    /// The message with the envelope filled from the input.
    pub fn into_message(self, input: &LogInput<'_>, nsf_name: &str, format: FormatName) -> Message {
        let mut kind = self.kind;
        if let Kind::GenericLog(g) = &mut kind {
            if g.format.is_none() && format != crate::GENERIC {
                g.format = Some(format.to_string());
            }
            if g.app_name.is_none() {
                g.app_name = input.app_name.map(clip);
            }
        }
        let mut m = Message::new(nsf_name, kind);
        if let Some(t) = self.time.or(input.time) {
            m.common.event_time = t;
        }
        if let Kind::Ddos(d) = &mut m.kind
            && d.start_time == UNSET_START
        {
            d.start_time = m.common.event_time;
        }
        let c = &mut m.common;
        c.severity = self.severity;
        c.vendor_name = self.vendor;
        c.device_model = self.model;
        c.software_version = self.version;
        c.message = self.summary.or_else(|| {
            let t = input.text.trim();
            (!t.is_empty()).then(|| clip_to(t, MAX_SUMMARY))
        });
        c.raw = Some(input.raw.to_string());
        c.fields = self.fields;
        m
    }
}

/// A recognised record whose event the vendor module does not map: a generic log that keeps the
/// vendor facts.
pub fn unmapped(reason: &str) -> Kind {
    Kind::GenericLog(pharos_model::GenericLog {
        format: None,
        reason: Some(reason.to_string()),
        app_name: None,
    })
}

/// Syslog severity (0 emergency .. 7 debug) on Pharos' scale.
pub fn syslog_severity(s: Option<u8>) -> Severity {
    match s {
        Some(0 | 1) => Severity::Critical,
        Some(2 | 3) => Severity::High,
        Some(4) => Severity::Middle,
        Some(5) => Severity::Low,
        _ => Severity::Info,
    }
}

/// An IP address, tolerating brackets, a zone suffix and surrounding spaces; `None` when absent.
pub fn ip(s: &str) -> Option<IpAddr> {
    let s = trim(s).trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next().unwrap_or(s);
    // IPv4-mapped IPv6 (`::ffff:192.0.2.1`) is the IPv4 address
    s.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

/// A port number; `None` when absent or out of range.
pub fn port(s: &str) -> Option<u16> {
    trim(s).parse().ok()
}

/// `ip` or the unspecified address.
pub fn ip_or_unspecified(a: Option<IpAddr>) -> IpAddr {
    a.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// `s` with ASCII letters lowered, in `buf`; `None` when longer than `buf` (then it matches no
/// keyword of the tables here, which are all shorter). Same result as `to_ascii_lowercase`
/// without allocating.
fn lower<'b, const N: usize>(s: &str, buf: &'b mut [u8; N]) -> Option<&'b str> {
    let out = buf.get_mut(..s.len())?;
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b.to_ascii_lowercase();
    }
    // lowering ASCII letters keeps the bytes valid UTF-8
    std::str::from_utf8(out).ok()
}

/// `s` with ASCII letters raised, like [`lower`].
fn upper<'b, const N: usize>(s: &str, buf: &'b mut [u8; N]) -> Option<&'b str> {
    let out = buf.get_mut(..s.len())?;
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b.to_ascii_uppercase();
    }
    std::str::from_utf8(out).ok()
}

/// Protocol by name or IANA number (`tcp`, `TCP`, `6`, `icmp`, `ipv6-icmp`, `58`, ...).
pub fn protocol(s: &str) -> Option<Protocol> {
    let s = trim(s);
    let mut buf = [0u8; 16];
    Some(match lower(s, &mut buf)? {
        "tcp" | "6" => Protocol::Tcp,
        "udp" | "17" => Protocol::Udp,
        "sctp" | "132" => Protocol::Sctp,
        "dccp" | "33" => Protocol::Dccp,
        "icmp" | "1" => Protocol::Icmpv4,
        "icmpv6" | "ipv6-icmp" | "icmp6" | "58" => Protocol::Icmpv6,
        "ip" | "0" => Protocol::Ip,
        _ => return None,
    })
}

/// Transport protocol by name or number.
pub fn transport(s: &str) -> Option<TransportProtocol> {
    match protocol(s)? {
        Protocol::Tcp => Some(TransportProtocol::Tcp),
        Protocol::Udp => Some(TransportProtocol::Udp),
        Protocol::Sctp => Some(TransportProtocol::Sctp),
        Protocol::Dccp => Some(TransportProtocol::Dccp),
        _ => None,
    }
}

/// Application protocol by name (`http`, `HTTPS`, `ssh`, `web-browsing`, ...).
pub fn app_protocol(s: &str) -> Option<ApplicationProtocol> {
    let mut buf = [0u8; 16];
    Some(match lower(trim(s), &mut buf)? {
        "http" | "web-browsing" | "http-proxy" => ApplicationProtocol::Http,
        "https" | "ssl" | "tls" => ApplicationProtocol::Https,
        "http2" => ApplicationProtocol::Http2,
        "ftp" | "ftp-data" => ApplicationProtocol::Ftp,
        "ssh" => ApplicationProtocol::Ssh,
        "telnet" => ApplicationProtocol::Telnet,
        "smtp" => ApplicationProtocol::Smtp,
        "pop3" => ApplicationProtocol::Pop3,
        "pop3s" => ApplicationProtocol::Pop3s,
        "imap" => ApplicationProtocol::Imap,
        "imaps" => ApplicationProtocol::Imaps,
        _ => return None,
    })
}

/// Application protocol by well-known destination port (used when the vendor names none).
pub fn app_by_port(p: Option<u16>) -> Option<ApplicationProtocol> {
    Some(match p? {
        80 | 8080 => ApplicationProtocol::Http,
        443 | 8443 => ApplicationProtocol::Https,
        21 => ApplicationProtocol::Ftp,
        22 => ApplicationProtocol::Ssh,
        23 => ApplicationProtocol::Telnet,
        25 | 587 => ApplicationProtocol::Smtp,
        110 => ApplicationProtocol::Pop3,
        995 => ApplicationProtocol::Pop3s,
        143 => ApplicationProtocol::Imap,
        993 => ApplicationProtocol::Imaps,
        _ => return None,
    })
}

/// A vendor action word on the NSF-facing action scale.
pub fn action(s: &str) -> Option<IngressAction> {
    let mut buf = [0u8; 32];
    Some(match lower(trim(s), &mut buf)? {
        "accept" | "accepted" | "allow" | "allowed" | "pass" | "permit" | "permitted" | "built"
        | "close" | "teardown" | "start" | "end" | "encrypt" | "decrypt" | "ip-conn"
        | "client-rst" | "server-rst" | "timeout" | "alert" | "monitored" | "detect"
        | "detected" | "log" => IngressAction::Pass,
        "deny" | "denied" | "drop" | "dropped" | "block" | "blocked" | "discard" | "drop-icmp"
        | "drop-all" | "dropped-by-policy" => IngressAction::Drop,
        "reject" | "rejected" | "reset" | "reset-both" | "reset-client" | "reset-server"
        | "reset-dest" => IngressAction::Reject,
        "mirror" => IngressAction::Mirror,
        "rate-limit" | "rate_limit" => IngressAction::RateLimit,
        _ => return None,
    })
}

/// HTTP request method.
pub fn req_method(s: &str) -> Option<ReqMethod> {
    let mut buf = [0u8; 16];
    Some(match upper(trim(s), &mut buf)? {
        "GET" => ReqMethod::Get,
        "POST" => ReqMethod::Post,
        "PUT" => ReqMethod::Put,
        "HEAD" => ReqMethod::Head,
        "DELETE" => ReqMethod::Delete,
        "CONNECT" => ReqMethod::Connect,
        "OPTIONS" => ReqMethod::Options,
        "TRACE" => ReqMethod::Trace,
        _ => return None,
    })
}

/// Case-insensitive substring test without allocating.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some(&first) = n.first() else { return true };
    if n.len() > h.len() {
        return false;
    }
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lo, up, h.get(..=h.len() - n.len()).unwrap_or(&[])).any(|i| {
        h.get(i..i + n.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(n))
    })
}

/// True when `needle` occurs in `hay` as whole words, ignoring case; a space in `needle` also
/// matches `.`, `_`, `-` or `/` (signature names like `WordPress.Plugin.SQL.Injection`).
pub fn has_words(hay: &str, needle: &str) -> bool {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || n.len() > h.len() {
        return n.is_empty();
    }
    let eq = |a: u8, b: u8| {
        a.eq_ignore_ascii_case(&b) || (b == b' ' && matches!(a, b' ' | b'.' | b'_' | b'-' | b'/'))
    };
    let starts = h.get(..=h.len() - n.len()).unwrap_or(&[]);
    let matches_at = |i: usize| {
        let end = i + n.len();
        let before_ok =
            i == 0 || !h[i - 1].is_ascii_alphanumeric() || !n[0].is_ascii_alphanumeric();
        let after_ok = end == h.len()
            || !h[end].is_ascii_alphanumeric()
            || !n[n.len() - 1].is_ascii_alphanumeric();
        before_ok && after_ok && h[i..end].iter().zip(n).all(|(a, b)| eq(*a, *b))
    };
    // candidate starts: the needle's first byte in either case
    let (lo, up) = (n[0].to_ascii_lowercase(), n[0].to_ascii_uppercase());
    if starts.len() < 64 {
        // short names: a plain loop beats restarting memchr at every candidate
        (0..starts.len()).any(|i| (starts[i] == lo || starts[i] == up) && matches_at(i))
    } else {
        memchr::memchr2_iter(lo, up, starts).any(matches_at)
    }
}

/// Keywords that make a signature or message a web attack, with its type (first match wins).
const WEB_ATTACK_WORDS: &[(&str, WebAttackType)] = &[
    ("sql injection", WebAttackType::SqlInjection),
    ("sqli", WebAttackType::SqlInjection),
    ("cross site scripting", WebAttackType::Xss),
    ("xss", WebAttackType::Xss),
    ("command injection", WebAttackType::CommandInjection),
    ("command execution", WebAttackType::CommandInjection),
    ("code injection", WebAttackType::CommandInjection),
    ("code execution", WebAttackType::CommandInjection),
    ("remote code execution", WebAttackType::CommandInjection),
    ("rce", WebAttackType::CommandInjection),
    ("shell injection", WebAttackType::CommandInjection),
    ("expression injection", WebAttackType::CommandInjection),
    ("path traversal", WebAttackType::PathTraversal),
    ("directory traversal", WebAttackType::PathTraversal),
    ("dir traversal", WebAttackType::PathTraversal),
    ("traversal", WebAttackType::PathTraversal),
    ("/../", WebAttackType::PathTraversal),
    ("lfi", WebAttackType::PathTraversal),
    ("local file inclusion", WebAttackType::PathTraversal),
    ("csrf", WebAttackType::Csrf),
    ("cross site request forgery", WebAttackType::Csrf),
    ("remote file inclusion", WebAttackType::OtherWebAttack),
    ("rfi", WebAttackType::OtherWebAttack),
    ("web attack", WebAttackType::OtherWebAttack),
    ("web application attack", WebAttackType::OtherWebAttack),
    ("web specific apps", WebAttackType::OtherWebAttack),
    ("web server", WebAttackType::OtherWebAttack),
];

/// The web-attack type a signature name or category names, if it is an HTTP attack.
pub fn web_attack_type(text: &str) -> Option<WebAttackType> {
    let pairs = Bigrams::of(text);
    WEB_ATTACK_WORDS
        .iter()
        .find(|(w, _)| pairs.may_contain(w) && has_words(text, w))
        .map(|(_, t)| *t)
}

/// The pairs of adjacent bytes of a text, hashed into 256 bits: a quick "cannot match" for
/// [`has_words`] and [`contains_ci`] before they scan (a text lacking one of the needle's pairs,
/// compared as those functions compare bytes, does not contain the needle).
struct Bigrams([u64; 4]);

/// The bytes a space in a [`has_words`] needle also matches.
fn word_sep(b: u8) -> bool {
    matches!(b, b'.' | b'_' | b'-' | b'/')
}

impl Bigrams {
    fn slot(a: u8, b: u8) -> (usize, u64) {
        let h = a.wrapping_mul(31) ^ b.rotate_left(3);
        (usize::from(h >> 6), 1 << (h & 63))
    }

    fn insert(&mut self, a: u8, b: u8) {
        let (w, bit) = Self::slot(a, b);
        self.0[w] |= bit;
    }

    /// Every pair of `text`, ASCII letters lowered; a pair holding a separator that a space in
    /// a [`has_words`] needle matches is also entered with a space in its place.
    fn of(text: &str) -> Self {
        let mut set = Bigrams([0; 4]);
        for w in text.as_bytes().windows(2) {
            let (a, b) = (w[0].to_ascii_lowercase(), w[1].to_ascii_lowercase());
            set.insert(a, b);
            if word_sep(a) || word_sep(b) {
                let space = |c: u8| if word_sep(c) { b' ' } else { c };
                set.insert(space(a), b);
                set.insert(a, space(b));
                set.insert(space(a), space(b));
            }
        }
        set
    }

    /// False when `needle` cannot occur in the text.
    fn may_contain(&self, needle: &str) -> bool {
        needle.as_bytes().windows(2).all(|w| {
            let (i, bit) = Self::slot(w[0].to_ascii_lowercase(), w[1].to_ascii_lowercase());
            self.0[i] & bit != 0
        })
    }
}

/// Virus type words in a virus name (first match wins).
const VIRUS_WORDS: &[(&str, VirusType)] = &[
    ("trojan", VirusType::Trojan),
    ("worm", VirusType::Worm),
    ("macro", VirusType::Macro),
    ("boot", VirusType::BootSector),
    ("polymorph", VirusType::Polymorphic),
    ("overwrit", VirusType::Overwrite),
    ("multipartite", VirusType::Multipartite),
    ("resident", VirusType::Resident),
];

/// The virus type a virus name suggests (`Win.Trojan.Agent` -> trojan).
pub fn virus_type(name: &str) -> Option<VirusType> {
    let pairs = Bigrams::of(name);
    VIRUS_WORDS
        .iter()
        .find(|(w, _)| pairs.may_contain(w) && contains_ci(name, w))
        .map(|(_, t)| *t)
}

/// Brute-force words in an IDS signature.
pub fn intrusion_attack_type(sig: &str) -> Option<pharos_model::ident::IntrusionAttackType> {
    use pharos_model::ident::IntrusionAttackType as T;
    let pairs = Bigrams::of(sig);
    let has = |w: &str| pairs.may_contain(w) && contains_ci(sig, w);
    if has("brute") || has("password guess") {
        Some(T::BruteForce)
    } else if has("overflow") {
        Some(T::BufferOverflow)
    } else if has("port scan") || has("portscan") || has("scan") {
        Some(T::PortScan)
    } else if has("sweep") {
        Some(T::HostSweep)
    } else {
        None
    }
}

/// `s.trim()`, without the Unicode scan when both ends are visible ASCII (the usual case).
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&z)) if (b'!'..=b'~').contains(&a) && (b'!'..=b'~').contains(&z) => s,
        _ => s.trim(),
    }
}

/// Name a string leaf, treating empty, `N/A`, `-` and `none` as absent.
pub fn present(s: Option<&str>) -> Option<&str> {
    let s = trim(s?);
    if s.is_empty() || s == "-" || s.eq_ignore_ascii_case("n/a") || s.eq_ignore_ascii_case("none") {
        None
    } else {
        Some(s)
    }
}

/// A user activity log with placeholders for missing mandatory leaves.
pub fn user_activity(
    user: Option<&str>,
    group: Option<&str>,
    ip_addr: Option<IpAddr>,
    port_no: Option<u16>,
    ty: UserActivityType,
    cause: Option<&str>,
) -> Kind {
    Kind::UserActivityLog(UserActivityLog {
        user: clip(present(user).unwrap_or(UNKNOWN_USER)),
        group: vec![clip(present(group).unwrap_or(UNKNOWN_GROUP))],
        ip_address: ip_or_unspecified(ip_addr),
        l4_port_number: port_no.unwrap_or(0),
        authentication: None,
        online_duration: None,
        logout_duration: None,
        additional_info: pharos_model::AdditionalInfo {
            activity_type: Some(ty),
            cause: present(cause).map(clip),
        },
    })
}

/// A system access log (admin login, command) with placeholders for missing mandatory leaves.
pub fn access_log(
    user: Option<&str>,
    ip_addr: Option<IpAddr>,
    port_no: Option<u16>,
    op: pharos_model::ident::OperationType,
    input: Option<&str>,
    output: Option<&str>,
) -> Kind {
    Kind::SystemAccessLog(SystemAccessLog {
        user: clip(present(user).unwrap_or(UNKNOWN_USER)),
        group: vec![UNKNOWN_GROUP.to_string()],
        ip_address: ip_or_unspecified(ip_addr),
        l4_port_number: port_no.unwrap_or(0),
        authentication: None,
        operation_type: Some(op),
        input: present(input).map(clip),
        output: present(output).map(clip),
    })
}

/// A configuration-change system event.
pub fn config_change(
    user: Option<&str>,
    ip_addr: Option<IpAddr>,
    port_no: Option<u16>,
    policy: Option<&str>,
) -> Kind {
    Kind::SystemEvent(pharos_model::SystemEvent {
        event_category: Some(pharos_model::ident::SystemEventCategory::ConfigurationChange),
        user: clip(present(user).unwrap_or(UNKNOWN_USER)),
        group: vec![UNKNOWN_GROUP.to_string()],
        ip_address: ip_or_unspecified(ip_addr),
        l4_port_number: port_no.unwrap_or(0),
        authentication: None,
        changes: present(policy).map(clip).into_iter().collect(),
    })
}

/// The two ends of a flow as a vendor reports them; any part may be missing. Every event kind
/// with addresses starts from one, so a vendor reads its address fields once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub src_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<IpAddr>,
    pub dst_port: Option<u16>,
}

/// The HTTP request of a web attack, as the vendor's strings: [`web_attack`] parses the method
/// and clips the rest.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub method: Option<&'a str>,
    pub target: Option<&'a str>,
    pub host: Option<&'a str>,
    pub response_code: Option<String>,
}

/// What an intrusion event says beyond its flow and rule: protocol, application and attack type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ids {
    pub protocol: Option<TransportProtocol>,
    pub app: Option<ApplicationProtocol>,
    pub attack_type: Option<IntrusionAttackType>,
}

/// A web attack event (no filtering type, no cookies: vendors that know them set them with
/// struct-update syntax).
pub fn web_attack(
    flow: Flow,
    rule_name: String,
    attack_type: Option<WebAttackType>,
    req: Request<'_>,
) -> WebAttackEvent {
    WebAttackEvent {
        src_ip: flow.src_ip,
        src_port: flow.src_port,
        dst_ip: flow.dst_ip,
        dst_port: flow.dst_port,
        rule_name,
        attack_type,
        req_method: req.method.and_then(req_method),
        req_target: req.target.map(clip),
        filtering_type: Vec::new(),
        cookies: None,
        req_host: req.host.map(clip),
        response_code: req.response_code,
    }
}

/// An intrusion event.
pub fn intrusion(flow: Flow, rule_name: String, ids: Ids) -> IntrusionEvent {
    IntrusionEvent {
        src_ip: flow.src_ip,
        src_port: flow.src_port,
        dst_ip: flow.dst_ip,
        dst_port: flow.dst_port,
        rule_name,
        protocol: ids.protocol,
        app: ids.app,
        attack_type: ids.attack_type,
    }
}

/// An IDS/IPS signature match: a web attack when the signature was classified as one (`web`),
/// else an intrusion. Every signature-based vendor maps its alerts through here.
pub fn intrusion_or_web_attack(
    flow: Flow,
    rule_name: String,
    web: Option<WebAttackType>,
    req: Request<'_>,
    ids: Ids,
) -> Kind {
    match web {
        Some(t) => Kind::WebAttack(web_attack(flow, rule_name, Some(t), req)),
        None => Kind::Intrusion(intrusion(flow, rule_name, ids)),
    }
}

/// A DDoS event for one flow's ends, starting at the record's time ([`UNSET_START`]); rate and
/// throughput are left for vendors that report them.
pub fn ddos(flow: Flow, rule_name: String, attack_type: Option<DdosType>) -> DdosEvent {
    DdosEvent {
        attack_type,
        start_time: UNSET_START,
        end_time: None,
        attack_src_ip: flow.src_ip.into_iter().collect(),
        attack_dst_ip: flow.dst_ip.into_iter().collect(),
        attack_src_port: flow.src_port.into_iter().collect(),
        attack_dst_port: flow.dst_port.into_iter().collect(),
        rule_name,
        attack_rate: None,
        attack_throughput: None,
    }
}

/// The application a vendor names, else the one its destination port is known for.
pub fn app_or_port(name: Option<&str>, dst_port: Option<u16>) -> Option<ApplicationProtocol> {
    name.and_then(app_protocol)
        .or_else(|| app_by_port(dst_port))
}

/// The value of the first keyword of `table` that `lower_text` (already lower-cased) contains;
/// `None` when none does. Keyword cascades (`if text.contains(..) else if ..`) become tables
/// read by this.
pub fn first_keyword<T: Copy>(lower_text: &str, table: &[(&str, T)]) -> Option<T> {
    table
        .iter()
        .find(|(word, _)| lower_text.contains(word))
        .map(|(_, v)| *v)
}

/// The rule name, or the documented placeholder `"<format>-unknown-rule"`.
pub fn rule_or(rule: Option<&str>, placeholder: &'static str) -> String {
    present(rule)
        .map(clip)
        .unwrap_or_else(|| placeholder.to_string())
}

/// `user(1.2.3.4)` / `https(1.2.3.4)` / `GUI(1.2.3.4)` -> the address inside the parentheses.
pub fn ip_in_parens(s: &str) -> Option<IpAddr> {
    let open = s.find('(')?;
    let rest = s.get(open + 1..)?;
    let close = rest.find(')')?;
    ip(rest.get(..close)?)
}

/// Splits `addr/port` (Cisco) or `addr:port` (IPv4 only) into its parts.
pub fn addr_slash_port(s: &str) -> (Option<IpAddr>, Option<u16>) {
    match s.rsplit_once('/') {
        Some((a, p)) => (ip(a), port(p)),
        None => (ip(s), None),
    }
}

/// Splits `a.b.c.d:port` or `[v6]:port` or `v6:port` (last colon) into address and port.
pub fn addr_colon_port(s: &str) -> (Option<IpAddr>, Option<u16>) {
    if let Some(a) = ip(s) {
        return (Some(a), None);
    }
    match s.rsplit_once(':') {
        Some((a, p)) => (ip(a), port(p)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_char_boundaries() {
        assert_eq!(clip_to("héllo", 2), "h");
        assert_eq!(clip_to("abc", 10), "abc");
    }

    #[test]
    fn web_attack_keywords_classify() {
        assert_eq!(
            web_attack_type("ET WEB_SERVER Possible SQL Injection Attempt"),
            Some(WebAttackType::SqlInjection)
        );
        assert_eq!(
            web_attack_type("Path Traversal Attack (/../)"),
            Some(WebAttackType::PathTraversal)
        );
        assert_eq!(web_attack_type("ET SCAN Sipvicious Scan"), None);
        assert_eq!(
            web_attack_type("WordPress.Plugin.SQL.Injection"),
            Some(WebAttackType::SqlInjection)
        );
        assert_eq!(web_attack_type("brute force source"), None);
    }

    proptest::proptest! {
        #[test]
        fn bigrams_never_rule_out_a_match(
            pre in "[a-zA-Z ._/-]{0,12}",
            post in "[a-zA-Z ._/-]{0,12}",
            pick in 0usize..64,
            case in proptest::bits::u64::ANY,
            sep in 0usize..5,
        ) {
            let words: Vec<&str> = WEB_ATTACK_WORDS
                .iter()
                .map(|(w, _)| *w)
                .chain(VIRUS_WORDS.iter().map(|(w, _)| *w))
                .chain(["scan", "port scan", "password guess"])
                .collect();
            let w = words[pick % words.len()];
            // the needle with random case and its spaces as one of the separators it matches
            let seps = [' ', '.', '_', '-', '/'];
            let inner: String = w
                .chars()
                .enumerate()
                .map(|(i, c)| match c {
                    ' ' => seps[sep],
                    c if case >> (i % 64) & 1 == 1 => c.to_ascii_uppercase(),
                    c => c,
                })
                .collect();
            for text in [format!("{pre}{inner}{post}"), format!("{pre}{post}")] {
                let pairs = Bigrams::of(&text);
                for w in &words {
                    if has_words(&text, w) || contains_ci(&text, w) {
                        proptest::prop_assert!(pairs.may_contain(w), "{:?} in {:?}", w, text);
                    }
                }
            }
        }
    }

    #[test]
    fn addresses_and_ports_split() {
        assert_eq!(addr_colon_port("1.2.3.4:80"), (ip("1.2.3.4"), Some(80)));
        assert_eq!(
            addr_colon_port("2001:db8::1:443"),
            (ip("2001:db8::1:443"), None)
        );
        assert_eq!(
            addr_colon_port("[2001:db8::1]:443"),
            (ip("2001:db8::1"), Some(443))
        );
        assert_eq!(
            addr_slash_port("10.0.0.1/1433"),
            (ip("10.0.0.1"), Some(1433))
        );
        assert_eq!(ip_in_parens("ssh(222.186.130.227)"), ip("222.186.130.227"));
    }
}

/// `f` without what `kind`'s own leaves already hold (its flow ends, rule, user ...), for
/// [`Draft::fields`] on a typed case; a generic log keeps every field.
pub(crate) fn fields_beyond_case(kind: &Kind, mut f: LogFields) -> LogFields {
    fn flow(f: &mut LogFields) {
        f.src_ip = None;
        f.src_port = None;
        f.dst_ip = None;
        f.dst_port = None;
        f.rule_name = None;
    }
    match kind {
        Kind::FirewallTrafficLog(_) => {
            flow(&mut f);
            f.protocol = None;
            f.action = None;
            f.sent_bytes = None;
            f.received_bytes = None;
            f.session_id = None;
            f.in_interface = None;
            f.out_interface = None;
            f.application = None;
        }
        Kind::DpiLog(_) => {
            flow(&mut f);
            f.action = None;
        }
        Kind::Virus(_) => {
            flow(&mut f);
            f.file_name = None;
        }
        Kind::Intrusion(_) => {
            flow(&mut f);
            f.protocol = None;
        }
        Kind::WebAttack(_) => {
            flow(&mut f);
            f.http_method = None;
            f.url = None;
            f.domain = None;
            f.http_status = None;
        }
        Kind::Ddos(_) => flow(&mut f),
        Kind::UserActivityLog(_) | Kind::SystemAccessLog(_) | Kind::SystemEvent(_) => {
            f.user = None;
            f.src_ip = None;
            f.src_port = None;
        }
        _ => {}
    }
    f
}

/// What a firewall vendor's message-id or log-type table says a record is (sophos, sonicwall,
/// watchguard, stormshield, barracuda): [`fw_draft`] turns it into the I2NSF case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FwClass {
    /// Connection or packet-filter log -> firewall traffic log.
    Traffic,
    /// IPS/IDS alarm -> intrusion (web attack when the signature names an HTTP attack).
    Ips,
    /// WAF violation -> web attack.
    WebAttack,
    /// Anti-virus / anti-malware detection -> virus.
    Virus,
    /// Flood / DoS protection -> DDoS.
    Ddos,
    /// Administrator login -> system access log (login).
    AdminLogin,
    /// Successful user (VPN, captive portal, firewall) login -> user activity log.
    UserLogin,
    /// Failed login of anyone -> user activity log (failed login).
    LoginFailed,
    /// Logout -> user activity log (logout).
    Logout,
    /// Configuration change -> system event (configuration change).
    Config,
    /// Anything else -> generic log carrying its fields.
    Event,
}

/// The parts of a firewall record, as the vendor gives them (strings are borrowed from the
/// record; [`fw_draft`] clips what it copies).
#[derive(Debug, Clone, Default)]
pub(crate) struct FwParts<'a> {
    pub flow: Flow,
    pub nat_src_ip: Option<IpAddr>,
    pub nat_src_port: Option<u16>,
    pub nat_dst_ip: Option<IpAddr>,
    pub nat_dst_port: Option<u16>,
    pub proto: Option<&'a str>,
    pub app: Option<&'a str>,
    pub action: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub user: Option<&'a str>,
    pub url: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub method: Option<&'a str>,
    pub status: Option<u16>,
    pub user_agent: Option<&'a str>,
    pub sent: Option<u64>,
    pub received: Option<u64>,
    pub session: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub in_if: Option<&'a str>,
    pub out_if: Option<&'a str>,
    /// Signature, threat, attack or virus name.
    pub signature: Option<&'a str>,
    pub file: Option<&'a str>,
    /// The vendor's message text (a cause or a change description).
    pub msg: Option<&'a str>,
}

impl FwParts<'_> {
    /// Every part as `envelope/fields`.
    fn all_fields(&self) -> LogFields {
        let s = |v: Option<&str>| present(v).map(clip);
        LogFields {
            src_ip: self.flow.src_ip,
            src_port: self.flow.src_port,
            dst_ip: self.flow.dst_ip,
            dst_port: self.flow.dst_port,
            nat_src_ip: self.nat_src_ip,
            nat_src_port: self.nat_src_port,
            nat_dst_ip: self.nat_dst_ip,
            nat_dst_port: self.nat_dst_port,
            protocol: present(self.proto).map(|p| clip(&p.to_ascii_lowercase())),
            action: s(self.action),
            rule_name: s(self.rule.or(self.signature)),
            user: s(self.user),
            domain: s(self.domain),
            url: s(self.url),
            http_method: s(self.method),
            http_status: self.status,
            user_agent: s(self.user_agent),
            sent_bytes: self.sent,
            received_bytes: self.received,
            session_id: s(self.session),
            message_id: s(self.message_id),
            in_interface: s(self.in_if),
            out_interface: s(self.out_if),
            application: s(self.app),
            file_name: s(self.file),
            ..Default::default()
        }
    }
}

/// The case `class` names for `p`, with the parts the case has no leaf for in `envelope/fields`;
/// `placeholder` is the `"<format>-unknown-rule"` rule name.
pub(crate) fn fw_draft(
    class: FwClass,
    p: &FwParts<'_>,
    placeholder: &'static str,
    severity: Severity,
) -> Draft {
    use pharos_model::ident::OperationType;
    let f = p.flow;
    let rule = || rule_or(p.signature.or(p.rule), placeholder);
    let kind = match class {
        FwClass::Traffic => Kind::FirewallTrafficLog(pharos_model::FirewallTrafficLog {
            src_ip: f.src_ip,
            dst_ip: f.dst_ip,
            src_port: f.src_port,
            dst_port: f.dst_port,
            protocol: p.proto.and_then(protocol),
            action: p.action.and_then(action),
            sent_bytes: p.sent,
            received_bytes: p.received,
            rule_name: present(p.rule).map(clip),
            in_interface: present(p.in_if).map(clip),
            out_interface: present(p.out_if).map(clip),
            application: present(p.app).map(clip),
            user: present(p.user).map(clip),
            session_id: p.session.and_then(|s| trim(s).parse().ok()),
            ..Default::default()
        }),
        FwClass::Ips => {
            let sig = p.signature.or(p.msg).unwrap_or("");
            let req = Request {
                method: p.method,
                target: p.url,
                host: p.domain,
                response_code: None,
            };
            let ids = Ids {
                protocol: p.proto.and_then(transport),
                app: app_or_port(p.app, f.dst_port),
                attack_type: intrusion_attack_type(sig),
            };
            intrusion_or_web_attack(f, rule(), web_attack_type(sig), req, ids)
        }
        FwClass::WebAttack => {
            let sig = p.signature.or(p.msg).unwrap_or("");
            let req = Request {
                method: p.method,
                target: p.url,
                host: p.domain,
                response_code: p.status.map(|s| s.to_string()),
            };
            let ty = web_attack_type(sig).or(Some(WebAttackType::OtherWebAttack));
            Kind::WebAttack(web_attack(f, rule(), ty, req))
        }
        FwClass::Virus => Kind::Virus(pharos_model::VirusEvent {
            src_ip: f.src_ip,
            src_port: f.src_port,
            dst_ip: f.dst_ip,
            dst_port: f.dst_port,
            rule_name: rule(),
            virus_name: present(p.signature).map(clip),
            virus_type: p.signature.and_then(virus_type),
            host: present(p.domain)
                .map(clip)
                .or_else(|| f.dst_ip.map(|a| a.to_string())),
            file_type: None,
            file_name: present(p.file).map(clip),
            os: None,
        }),
        FwClass::Ddos => {
            let text = p.signature.or(p.msg).unwrap_or("").to_ascii_lowercase();
            const FLOODS: &[(&str, DdosType)] = &[
                ("syn", DdosType::SynFlood),
                ("udp", DdosType::UdpFlood),
                ("icmp", DdosType::Icmpv4Flood),
                ("http", DdosType::HttpFlood),
                ("dns", DdosType::DnsQueryFlood),
            ];
            Kind::Ddos(ddos(f, rule(), first_keyword(&text, FLOODS)))
        }
        FwClass::AdminLogin => access_log(
            p.user,
            f.src_ip,
            f.src_port,
            OperationType::Login,
            None,
            p.msg,
        ),
        FwClass::UserLogin | FwClass::LoginFailed | FwClass::Logout => {
            let ty = match class {
                FwClass::UserLogin => UserActivityType::SuccessfulLogin,
                FwClass::LoginFailed => UserActivityType::FailedLogin,
                _ => UserActivityType::Logout,
            };
            user_activity(p.user, None, f.src_ip, f.src_port, ty, p.msg)
        }
        FwClass::Config => config_change(p.user, f.src_ip, f.src_port, p.msg),
        FwClass::Event => unmapped("vendor event without an I2NSF case"),
    };
    let fields = fields_beyond_case(&kind, p.all_fields());
    Draft::new(kind, severity).fields(fields)
}

/// Every part of `p` as `envelope/fields` (for vendors that build their own case and then keep
/// what it has no leaf for with [`fields_beyond_case`]).
pub(crate) fn fw_fields(p: &FwParts<'_>) -> LogFields {
    p.all_fields()
}
