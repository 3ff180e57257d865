//! Sampled packet headers (sFlow raw packet header records): Ethernet through VLAN / QinQ
//! (802.1Q, 802.1ad, 0x9100), MPLS label stacks (with the pseudowire control word for
//! Ethernet-over-MPLS), VXLAN (UDP 4789), GRE and IP-in-IP / IPv6-in-IP (SRv6) tunnels (decapsulated: the inner packet
//! wins), down to
//! IPv4 / IPv6 (extension headers skipped) and TCP / UDP / ICMP / ICMPv6.
//!
//! Contract: [`parse_ethernet`] and [`parse_ip`] never panic and never allocate; a header cut
//! short (sFlow keeps the first 128 bytes) fills what it can and leaves the rest at zero.
//! Nesting is bounded (8 VLAN tags, 16 MPLS labels, 8 IPv6 extension headers, 3 tunnel levels).

use std::net::IpAddr;

use crate::bytes::{ipv4_at, ipv6_at, u8_at, u16_at};

/// What a sampled header says about its packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketSummary {
    /// Source IP address, when an IP header was reached.
    pub src: Option<IpAddr>,
    /// Destination IP address, when an IP header was reached.
    pub dst: Option<IpAddr>,
    /// IP protocol (IPv6: the upper-layer protocol after extension headers).
    pub proto: u8,
    /// Type of service / traffic class.
    pub tos: u8,
    /// Transport source port.
    pub src_port: u16,
    /// Transport destination port.
    pub dst_port: u16,
    /// TCP flags.
    pub tcp_flags: u8,
    /// ICMP / ICMPv6 type.
    pub icmp_type: u8,
    /// ICMP / ICMPv6 code.
    pub icmp_code: u8,
    /// Outermost VLAN id of the (innermost) Ethernet frame.
    pub vlan: Option<u16>,
    /// IP total length (IPv4) or payload length + 40 (IPv6) from the header.
    pub ip_len: u16,
}

impl PacketSummary {
    /// Writes what the header says of the flow (addresses, unspecified IPv4 when no IP header was
    /// reached; protocol, ToS, ports, TCP flags, ICMP type and code) into `r`. The VLAN is left
    /// to the caller, whose precedence rules differ.
    pub fn apply_to(&self, r: &mut pharos_model::flow::FlowRecord) {
        let zero = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        r.src_addr = self.src.unwrap_or(zero);
        r.dst_addr = self.dst.unwrap_or(zero);
        r.proto = self.proto;
        r.tos = self.tos;
        r.src_port = self.src_port;
        r.dst_port = self.dst_port;
        r.tcp_flags = self.tcp_flags;
        r.icmp_type = self.icmp_type;
        r.icmp_code = self.icmp_code;
    }
}

/// Most tunnels (VXLAN, GRE, IP-in-IP) followed into.
const MAX_DEPTH: u8 = 3;

/// Parses an Ethernet frame (no FCS needed) into `out`.
pub fn parse_ethernet(b: &[u8], out: &mut PacketSummary) {
    ethernet(b, out, 0)
}

fn ethernet(b: &[u8], out: &mut PacketSummary, depth: u8) {
    if b.len() < 14 {
        return;
    }
    let mut ethertype = u16_at(b, 12);
    let mut pos = 14;
    let mut vlan = None;
    for _ in 0..8 {
        if !matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) || b.len() < pos + 4 {
            break;
        }
        if vlan.is_none() {
            vlan = Some(u16_at(b, pos) & 0x0fff);
        }
        ethertype = u16_at(b, pos + 2);
        pos += 4;
    }
    out.vlan = vlan;
    let rest = b.get(pos..).unwrap_or(&[]);
    match ethertype {
        0x0800 | 0x86dd => ip(rest, out, depth),
        0x8847 | 0x8848 => mpls(rest, out, depth),
        _ => {}
    }
}

fn mpls(b: &[u8], out: &mut PacketSummary, depth: u8) {
    let mut pos = 0;
    for _ in 0..16 {
        if b.len() < pos + 4 {
            return;
        }
        let bos = u8_at(b, pos + 2) & 0x01 != 0;
        pos += 4;
        if bos {
            let rest = b.get(pos..).unwrap_or(&[]);
            match u8_at(rest, 0) >> 4 {
                4 | 6 => ip(rest, out, depth),
                // Pseudowire control word (first nibble 0), then an Ethernet frame.
                0 if rest.len() >= 4 => ethernet(rest.get(4..).unwrap_or(&[]), out, depth),
                _ => {}
            }
            return;
        }
    }
}

/// Parses an IPv4 or IPv6 packet (by its version nibble) into `out`.
pub fn parse_ip(b: &[u8], out: &mut PacketSummary) {
    ip(b, out, 0)
}

fn ip(b: &[u8], out: &mut PacketSummary, depth: u8) {
    match u8_at(b, 0) >> 4 {
        4 => {
            if b.len() < 20 {
                return;
            }
            let ihl = (u8_at(b, 0) & 0x0f) as usize * 4;
            out.tos = u8_at(b, 1);
            out.ip_len = u16_at(b, 2);
            let frag = u16_at(b, 6);
            out.proto = u8_at(b, 9);
            out.src = Some(IpAddr::V4(ipv4_at(b, 12)));
            out.dst = Some(IpAddr::V4(ipv4_at(b, 16)));
            out.src_port = 0;
            out.dst_port = 0;
            out.tcp_flags = 0;
            if ihl < 20 || frag & 0x1fff != 0 {
                return; // bad header length, or a non-first fragment: no transport header
            }
            transport(b.get(ihl..).unwrap_or(&[]), out, depth);
        }
        6 => {
            if b.len() < 40 {
                return;
            }
            let vtf = u16_at(b, 0);
            out.tos = ((vtf >> 4) & 0xff) as u8;
            out.ip_len = u16_at(b, 4).saturating_add(40);
            out.src = Some(IpAddr::V6(ipv6_at(b, 8)));
            out.dst = Some(IpAddr::V6(ipv6_at(b, 24)));
            out.src_port = 0;
            out.dst_port = 0;
            out.tcp_flags = 0;
            let mut next = u8_at(b, 6);
            let mut pos = 40usize;
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        if b.len() < pos + 2 {
                            out.proto = next;
                            return;
                        }
                        next = u8_at(b, pos);
                        pos += (u8_at(b, pos + 1) as usize + 1) * 8;
                    }
                    44 => {
                        if b.len() < pos + 8 {
                            out.proto = next;
                            return;
                        }
                        let off = u16_at(b, pos + 2) >> 3;
                        next = u8_at(b, pos);
                        pos += 8;
                        if off != 0 {
                            out.proto = next;
                            return;
                        }
                    }
                    _ => break,
                }
            }
            out.proto = next;
            transport(b.get(pos..).unwrap_or(&[]), out, depth);
        }
        _ => {}
    }
}

fn transport(t: &[u8], out: &mut PacketSummary, depth: u8) {
    match out.proto {
        6 => {
            if t.len() >= 4 {
                out.src_port = u16_at(t, 0);
                out.dst_port = u16_at(t, 2);
            }
            if t.len() >= 14 {
                out.tcp_flags = u8_at(t, 13);
            }
        }
        17 | 132 | 136 => {
            if t.len() >= 4 {
                out.src_port = u16_at(t, 0);
                out.dst_port = u16_at(t, 2);
            }
            if out.proto == 17
                && out.dst_port == 4789
                && depth < MAX_DEPTH
                && t.len() >= 8 + 8 + 14
                && u8_at(t, 8) & 0x08 != 0
            {
                let mut inner = PacketSummary::default();
                ethernet(t.get(16..).unwrap_or(&[]), &mut inner, depth + 1);
                if inner.src.is_some() {
                    *out = inner;
                }
            }
        }
        // IP-in-IP (4), IPv6-in-IP (41, also SRv6 End.DT4/DT6 decapsulation): the inner packet wins.
        4 | 41 if depth < MAX_DEPTH => {
            let mut inner = PacketSummary::default();
            ip(t, &mut inner, depth + 1);
            if inner.src.is_some() {
                inner.vlan = out.vlan;
                *out = inner;
            }
        }
        // GRE: optional checksum, key and sequence words, then the payload's ethertype.
        47 if depth < MAX_DEPTH && t.len() >= 4 => {
            let flags = u16_at(t, 0);
            let ptype = u16_at(t, 2);
            let mut pos = 4;
            for bit in [0x8000u16, 0x2000, 0x1000] {
                if flags & bit != 0 {
                    pos += 4;
                }
            }
            let payload = t.get(pos..).unwrap_or(&[]);
            let mut inner = PacketSummary::default();
            match ptype {
                0x0800 | 0x86dd => ip(payload, &mut inner, depth + 1),
                0x6558 => ethernet(payload, &mut inner, depth + 1),
                _ => {}
            }
            if inner.src.is_some() {
                *out = inner;
            }
        }
        1 | 58 if t.len() >= 2 => {
            out.icmp_type = u8_at(t, 0);
            out.icmp_code = u8_at(t, 1);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut b = vec![
            0x45,
            0xb8,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            proto,
            0,
            0,
        ];
        b.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        b.extend_from_slice(l4);
        b
    }

    fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&[0; 9]);
        t.push(flags);
        t.extend_from_slice(&[0; 6]);
        t
    }

    fn eth(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0; 12];
        for (i, t) in tags.iter().enumerate() {
            b.extend_from_slice(&(if i == 0 { 0x88a8u16 } else { 0x8100 }).to_be_bytes());
            b.extend_from_slice(&t.to_be_bytes());
        }
        b.extend_from_slice(&ethertype.to_be_bytes());
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn qinq_keeps_the_outer_vlan_and_reaches_tcp() {
        let mut p = PacketSummary::default();
        parse_ethernet(
            &eth(&[100, 200], 0x0800, &ipv4(6, &tcp(1234, 22, 0x12))),
            &mut p,
        );
        assert_eq!(p.vlan, Some(100));
        assert_eq!(
            (p.proto, p.src_port, p.dst_port, p.tcp_flags, p.tos),
            (6, 1234, 22, 0x12, 0xb8)
        );
        assert_eq!(p.src, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn mpls_stack_then_ip_and_pseudowire_control_word_then_ethernet() {
        let inner = ipv4(17, &[0, 53, 0x30, 0x39, 0, 8, 0, 0]);
        let mut labels = vec![0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40]; // two labels, bottom set on the second
        labels.extend_from_slice(&inner);
        let mut p = PacketSummary::default();
        parse_ethernet(&eth(&[], 0x8847, &labels), &mut p);
        assert_eq!((p.proto, p.src_port, p.dst_port), (17, 53, 12345));
        let mut pw = vec![0, 0x01, 0x01, 0x40, 0, 0, 0, 0];
        pw.extend_from_slice(&eth(&[7], 0x0800, &ipv4(1, &[8, 0, 0, 0])));
        let mut p = PacketSummary::default();
        parse_ethernet(&eth(&[], 0x8847, &pw), &mut p);
        assert_eq!((p.proto, p.icmp_type, p.vlan), (1, 8, Some(7)));
    }

    #[test]
    fn vxlan_is_decapsulated_and_ipv6_extension_headers_are_skipped() {
        let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 0, 64]; // next header: hop-by-hop
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        v6.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 0]); // hop-by-hop -> ICMPv6
        v6.extend_from_slice(&[128, 0, 0, 0]);
        let inner = eth(&[], 0x86dd, &v6);
        let mut udp = vec![0x12, 0x34, 0x12, 0xb5, 0, 0, 0, 0]; // dst 4789
        udp.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0x10, 0]);
        udp.extend_from_slice(&inner);
        let mut p = PacketSummary::default();
        parse_ethernet(&eth(&[], 0x0800, &ipv4(17, &udp)), &mut p);
        assert_eq!(p.src, Some("2001:db8::1".parse().unwrap()));
        assert_eq!((p.proto, p.icmp_type, p.src_port), (58, 128, 0));
    }

    #[test]
    fn non_first_fragments_have_no_ports_and_short_headers_fill_what_they_can() {
        let mut f = ipv4(6, &tcp(1, 2, 3));
        f[6] = 0x00;
        f[7] = 0x10; // offset 16
        let mut p = PacketSummary::default();
        parse_ip(&f, &mut p);
        assert_eq!((p.proto, p.src_port), (6, 0));
        let full = eth(&[5], 0x0800, &ipv4(6, &tcp(1, 2, 3)));
        for n in 0..full.len() {
            let mut p = PacketSummary::default();
            parse_ethernet(&full[..n], &mut p);
        }
    }
}
