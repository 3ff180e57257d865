//! Traffic classes: which rate counters a flow feeds, and which `ddos-type` identity an attack in
//! each class is reported as.
//!
//! Contract: [`classify`] is a pure function of one flow's protocol, TCP flags, ports and packet
//! count; it returns a [`ClassSet`] that always contains [`TrafficClass::All`]. Classes overlap
//! (a SYN to port 80 is in `all`, `tcp`, `syn` and `http`); [`TrafficClass::parent`] gives the
//! tree the detector uses to report the most specific class only.
//!
//! IP fragments: the flow model carries no fragment flag. Non-initial fragments have no transport
//! header, so exporters report them as TCP/UDP flows with both ports 0; those are the
//! [`TrafficClass::Fragment`] class (a heuristic, documented as such).

use pharos_model::ident::DdosType;
use serde::{Deserialize, Serialize};

/// One traffic class measured per destination host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrafficClass {
    /// Every flow.
    All,
    /// Every TCP flow (its flows/s are the TCP connection rate).
    Tcp,
    /// TCP flows with SYN only (no ACK, FIN or RST).
    Syn,
    /// TCP flows with ACK but no SYN, FIN or RST.
    Ack,
    /// TCP flows with exactly SYN and ACK (reflected handshakes, no data).
    SynAck,
    /// TCP flows with FIN or RST and neither SYN nor PSH.
    FinRst,
    /// Every UDP flow.
    Udp,
    /// ICMP (protocol 1).
    Icmpv4,
    /// ICMPv6 (protocol 58).
    Icmpv6,
    /// TCP/UDP flows with both ports 0 (non-initial IP fragments, see the module doc).
    Fragment,
    /// DNS queries: UDP or TCP to port 53.
    DnsQuery,
    /// DNS replies: UDP from port 53.
    DnsReply,
    /// NTP: UDP from port 123.
    Ntp,
    /// SSDP: UDP from port 1900.
    Ssdp,
    /// memcached: UDP from port 11211.
    Memcached,
    /// CLDAP: UDP from port 389.
    Cldap,
    /// chargen: UDP from port 19.
    Chargen,
    /// SNMP: UDP from port 161.
    Snmp,
    /// SIP: UDP or TCP to port 5060.
    Sip,
    /// HTTP: TCP to port 80.
    Http,
    /// HTTPS: TCP to port 443.
    Https,
    /// TLS on other well-known TLS ports (465, 636, 853, 993, 995, 5061, 8443).
    Tls,
}

/// Number of traffic classes.
pub const NCLASS: usize = 22;

impl TrafficClass {
    /// Every class, in index order.
    pub const ALL: [TrafficClass; NCLASS] = [
        Self::All,
        Self::Tcp,
        Self::Syn,
        Self::Ack,
        Self::SynAck,
        Self::FinRst,
        Self::Udp,
        Self::Icmpv4,
        Self::Icmpv6,
        Self::Fragment,
        Self::DnsQuery,
        Self::DnsReply,
        Self::Ntp,
        Self::Ssdp,
        Self::Memcached,
        Self::Cldap,
        Self::Chargen,
        Self::Snmp,
        Self::Sip,
        Self::Http,
        Self::Https,
        Self::Tls,
    ];

    /// Dense index, `0..NCLASS`.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The config and rule name (`syn`, `dns-reply`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Tcp => "tcp",
            Self::Syn => "syn",
            Self::Ack => "ack",
            Self::SynAck => "syn-ack",
            Self::FinRst => "fin-rst",
            Self::Udp => "udp",
            Self::Icmpv4 => "icmpv4",
            Self::Icmpv6 => "icmpv6",
            Self::Fragment => "fragment",
            Self::DnsQuery => "dns-query",
            Self::DnsReply => "dns-reply",
            Self::Ntp => "ntp",
            Self::Ssdp => "ssdp",
            Self::Memcached => "memcached",
            Self::Cldap => "cldap",
            Self::Chargen => "chargen",
            Self::Snmp => "snmp",
            Self::Sip => "sip",
            Self::Http => "http",
            Self::Https => "https",
            Self::Tls => "tls",
        }
    }

    /// The enclosing, less specific class (`None` for `all`).
    pub fn parent(self) -> Option<TrafficClass> {
        use TrafficClass::*;
        match self {
            All => None,
            Tcp | Udp | Icmpv4 | Icmpv6 | Fragment | DnsQuery | Sip => Some(All),
            Syn | Ack | SynAck | FinRst | Http | Https | Tls => Some(Tcp),
            DnsReply | Ntp | Ssdp | Memcached | Cldap | Chargen | Snmp => Some(Udp),
        }
    }

    /// The `ddos-type` identity of an attack in this class; `None` for the generic classes
    /// (`all`), whose type is decided from the protocol mix ([`type_from_mix`]).
    pub fn ddos_type(self) -> Option<DdosType> {
        use TrafficClass::*;
        Some(match self {
            All => return None,
            Tcp => DdosType::TcpConFlood,
            Syn => DdosType::SynFlood,
            Ack => DdosType::AckFlood,
            SynAck => DdosType::SynAckFlood,
            FinRst => DdosType::FinRstFlood,
            Udp => DdosType::UdpFlood,
            Icmpv4 => DdosType::Icmpv4Flood,
            Icmpv6 => DdosType::Icmpv6Flood,
            Fragment => DdosType::FragmentFlood,
            DnsQuery => DdosType::DnsQueryFlood,
            DnsReply => DdosType::DnsReplyFlood,
            Ntp => DdosType::NtpAmpFlood,
            Ssdp => DdosType::SsdpAmpFlood,
            Memcached => DdosType::MemcachedAmpFlood,
            Cldap => DdosType::CldapAmpFlood,
            Chargen => DdosType::ChargenAmpFlood,
            Snmp => DdosType::SnmpAmpFlood,
            Sip => DdosType::SipFlood,
            Http => DdosType::HttpFlood,
            Https => DdosType::HttpsFlood,
            Tls => DdosType::TlsFlood,
        })
    }

    /// Parses a name from [`TrafficClass::name`].
    pub fn parse(s: &str) -> Option<TrafficClass> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl std::fmt::Display for TrafficClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of classes as a bit mask (bit `i` = class with index `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ClassSet(pub u32);

impl ClassSet {
    /// Whether `c` is in the set.
    #[inline]
    pub fn contains(self, c: TrafficClass) -> bool {
        self.0 & (1 << c.index()) != 0
    }
    /// Adds `c`.
    #[inline]
    pub fn insert(&mut self, c: TrafficClass) {
        self.0 |= 1 << c.index();
    }
    /// The classes in the set, in index order.
    pub fn iter(self) -> impl Iterator<Item = TrafficClass> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(TrafficClass::ALL[i])
        })
    }
}

/// For each class, the mask of its strict descendants in the [`TrafficClass::parent`] tree.
pub(crate) const fn descendants() -> [u32; NCLASS] {
    let mut out = [0u32; NCLASS];
    // children of `tcp`, `udp`, and of `all` (everything but itself)
    let tcp = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 19) | (1 << 20) | (1 << 21);
    let udp = (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 17);
    out[0] = ((1u64 << NCLASS) - 2) as u32;
    out[1] = tcp;
    out[6] = udp;
    out
}

/// The most specific class that contains both `a` and `b` (one of them when it contains the
/// other; `all` at worst).
pub(crate) fn common_ancestor(a: TrafficClass, b: TrafficClass) -> TrafficClass {
    let mut x = Some(a);
    while let Some(c) = x {
        let mut y = Some(b);
        while let Some(d) = y {
            if c == d {
                return c;
            }
            y = d.parent();
        }
        x = c.parent();
    }
    TrafficClass::All
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// The classes one flow feeds.
#[inline]
pub fn classify(proto: u8, tcp_flags: u8, src_port: u16, dst_port: u16) -> ClassSet {
    use TrafficClass as C;
    let mut m = 1u32 << C::All as u32;
    let bit = |c: TrafficClass| 1u32 << c as u32;
    match proto {
        6 => {
            m |= bit(C::Tcp);
            let f = tcp_flags;
            if f & (SYN | ACK | FIN | RST) == SYN {
                m |= bit(C::Syn);
            } else if f & (SYN | ACK | FIN | RST) == ACK {
                m |= bit(C::Ack);
            } else if f & (SYN | ACK | FIN | RST | PSH) == SYN | ACK {
                m |= bit(C::SynAck);
            }
            if f & (FIN | RST) != 0 && f & (SYN | PSH) == 0 {
                m |= bit(C::FinRst);
            }
            match dst_port {
                80 => m |= bit(C::Http),
                443 => m |= bit(C::Https),
                465 | 636 | 853 | 993 | 995 | 5061 | 8443 => m |= bit(C::Tls),
                53 => m |= bit(C::DnsQuery),
                5060 => m |= bit(C::Sip),
                0 if src_port == 0 => m |= bit(C::Fragment),
                _ => {}
            }
        }
        17 => {
            m |= bit(C::Udp);
            match src_port {
                53 => m |= bit(C::DnsReply),
                123 => m |= bit(C::Ntp),
                1900 => m |= bit(C::Ssdp),
                11211 => m |= bit(C::Memcached),
                389 => m |= bit(C::Cldap),
                19 => m |= bit(C::Chargen),
                161 => m |= bit(C::Snmp),
                0 if dst_port == 0 => m |= bit(C::Fragment),
                _ => {}
            }
            match dst_port {
                53 => m |= bit(C::DnsQuery),
                5060 => m |= bit(C::Sip),
                _ => {}
            }
        }
        1 => m |= bit(C::Icmpv4),
        58 => m |= bit(C::Icmpv6),
        _ => {}
    }
    ClassSet(m)
}

/// The `ddos-type` of a generic (`all`) attack from its packets per IP protocol: the protocol
/// that carries more than half of `total` (TCP as connection flood, UDP, ICMP, ICMPv6); `None`
/// when none does (e.g. a GRE flood: the model has no identity for other protocols).
pub fn type_from_mix(total: f64, proto_pps: &[(u8, f64)]) -> Option<DdosType> {
    let (proto, pps) = proto_pps
        .iter()
        .copied()
        .fold((0u8, 0.0f64), |a, b| if b.1 > a.1 { b } else { a });
    if pps * 2.0 <= total {
        return None;
    }
    match proto {
        6 => Some(DdosType::TcpConFlood),
        17 => Some(DdosType::UdpFlood),
        1 => Some(DdosType::Icmpv4Flood),
        58 => Some(DdosType::Icmpv6Flood),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_all_table_and_names_parse_back() {
        for (i, c) in TrafficClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(TrafficClass::parse(c.name()), Some(*c));
        }
    }

    #[test]
    fn descendants_agree_with_parent() {
        let d = descendants();
        for c in TrafficClass::ALL {
            for x in TrafficClass::ALL {
                let mut p = x.parent();
                let mut is_desc = false;
                while let Some(pp) = p {
                    if pp == c {
                        is_desc = true;
                    }
                    p = pp.parent();
                }
                assert_eq!(d[c.index()] & (1 << x.index()) != 0, is_desc, "{c} ⊃ {x}");
            }
        }
    }

    #[test]
    fn common_ancestor_follows_the_parent_tree() {
        use TrafficClass::*;
        assert_eq!(common_ancestor(Syn, Http), Tcp);
        assert_eq!(common_ancestor(Ntp, Syn), All);
        assert_eq!(common_ancestor(Udp, Ntp), Udp);
        assert_eq!(common_ancestor(Syn, Syn), Syn);
        assert_eq!(common_ancestor(DnsQuery, DnsReply), All);
    }

    #[test]
    fn tcp_flags_pick_exactly_one_handshake_class() {
        let s = classify(6, SYN, 40000, 80);
        assert!(s.contains(TrafficClass::Syn) && s.contains(TrafficClass::Http));
        assert!(!s.contains(TrafficClass::Ack));
        let s = classify(6, SYN | ACK, 443, 40000);
        assert!(s.contains(TrafficClass::SynAck));
        let s = classify(6, SYN | ACK | PSH | FIN, 40000, 443);
        assert!(!s.contains(TrafficClass::SynAck) && !s.contains(TrafficClass::FinRst));
        assert!(classify(6, RST, 1, 2).contains(TrafficClass::FinRst));
        assert!(classify(6, ACK | PSH, 1, 2).contains(TrafficClass::Ack));
    }

    #[test]
    fn reflection_ports_and_fragments() {
        assert!(classify(17, 0, 123, 40000).contains(TrafficClass::Ntp));
        assert!(classify(17, 0, 11211, 1).contains(TrafficClass::Memcached));
        assert!(classify(17, 0, 0, 0).contains(TrafficClass::Fragment));
        assert!(classify(17, 0, 5000, 53).contains(TrafficClass::DnsQuery));
        assert!(classify(58, 0, 0, 0).contains(TrafficClass::Icmpv6));
        assert_eq!(
            type_from_mix(100.0, &[(1, 90.0), (6, 10.0)]),
            Some(DdosType::Icmpv4Flood)
        );
        assert_eq!(type_from_mix(100.0, &[(17, 40.0), (6, 10.0)]), None);
        assert_eq!(type_from_mix(0.0, &[]), None);
    }
}
