//! Anonymising a classic pcap capture: every IPv4 and IPv6 address in IP headers, in ARP
//! (IPv4 over Ethernet) and in NetFlow v5 records carried over UDP, with the IPv4 header, TCP,
//! UDP and ICMPv6 checksums fixed.
//!
//! Contract: the output has the same records, lengths and times as the input; only address
//! bytes and the checksums covering them change. Checksums are updated incrementally
//! (RFC 1624), so packets cut by the snap length stay consistent with their original length. A
//! packet's key is the one valid at its capture time ([`KeyRing::at`]). Not anonymised, and
//! counted so the caller can warn: MAC addresses, addresses inside ICMP error payloads and
//! tunnels, NetFlow v9 / IPFIX / sFlow payloads (their addresses need templates or sample
//! parsing). Nothing panics on any input and nothing allocates in proportion to a length field.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{CryptoPan, KeyRing};

/// Largest record accepted (16 MiB); a longer one is taken for a damaged file.
const MAX_RECORD: usize = 16 << 20;

/// What an anonymised capture held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcapAnonStats {
    /// Packet records.
    pub packets: u64,
    /// IPv4 packets whose header addresses were replaced.
    pub ipv4: u64,
    /// IPv6 packets whose header addresses were replaced.
    pub ipv6: u64,
    /// ARP packets whose IPv4 addresses were replaced.
    pub arp: u64,
    /// NetFlow v5 records whose source, destination and next hop were replaced.
    pub netflow_v5_records: u64,
    /// UDP datagrams that look like NetFlow v9, IPFIX or sFlow: their payload addresses are
    /// left as they are.
    pub flow_payloads_kept: u64,
    /// Packets neither IP nor ARP (or too short to tell), copied unchanged.
    pub other: u64,
}

/// Why a capture could not be anonymised. The fix is in the message.
#[derive(Debug, thiserror::Error)]
pub enum PcapAnonError {
    /// A pcapng file.
    #[error(
        "this is a pcapng capture; convert it to classic pcap first: editcap -F pcap IN OUT.pcap"
    )]
    Pcapng,
    /// Not a capture.
    #[error(
        "not a pcap capture (magic {magic:#010x}); give a pcap file (tcpdump -w, editcap -F pcap)"
    )]
    Magic {
        /// The first four bytes, little-endian.
        magic: u32,
    },
    /// Shorter than a header or a record says.
    #[error("capture truncated in {what} at byte {offset}; the file is cut or damaged")]
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// A link type this code cannot find IP headers in.
    #[error(
        "link type {0} is not supported (Ethernet, Linux SLL/SLL2, raw IP and BSD loopback are); convert with editcap -T"
    )]
    LinkType(u32),
    /// Reading the capture or writing the output failed.
    #[error("reading the capture or writing the output: {0}")]
    Io(std::io::Error),
    /// No key valid at a packet's time.
    #[error(
        "packet {packet} at {time_ms} ms: no key is valid at this time; add a key_file to [anon] or a [[anon.key]] with an earlier from date"
    )]
    NoKey {
        /// 1-based packet number.
        packet: u64,
        /// Its capture time, Unix ms.
        time_ms: i64,
    },
}

/// Adds the 16-bit words of `b` (even length) to a ones'-complement sum.
fn add_words(mut sum: u32, b: &[u8], complement: bool) -> u32 {
    for w in b.chunks_exact(2) {
        let v = u16::from_be_bytes([w[0], w[1]]);
        sum += u32::from(if complement { !v } else { v });
    }
    sum
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// RFC 1624 eqn. 3: the checksum after the bytes `old` (even length, even offset in the
/// covered data) became `new`.
fn adjust(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let s = add_words(u32::from(!csum), old, true);
    !fold(add_words(s, new, false))
}

/// Updates the 16-bit checksum at `at` in `p` (when captured) for `old` → `new`; a zero UDP
/// checksum (none, IPv4) stays zero and a computed zero becomes 0xffff for UDP.
fn fix_at(p: &mut [u8], at: usize, old: &[u8], new: &[u8], udp: bool) {
    let Some(f) = p.get_mut(at..at + 2) else {
        return;
    };
    let c = u16::from_be_bytes([f[0], f[1]]);
    if udp && c == 0 {
        return;
    }
    let mut n = adjust(c, old, new);
    if udp && n == 0 {
        n = 0xffff;
    }
    f.copy_from_slice(&n.to_be_bytes());
}

/// Anonymises `input` (a classic pcap file, in memory) into `out`, each packet with the key of
/// `keys` valid at its capture time (see [`anonymize_pcap_stream`]).
pub fn anonymize_pcap(
    keys: &KeyRing,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<PcapAnonStats, PcapAnonError> {
    out.clear();
    out.reserve(input.len());
    anonymize_pcap_stream(keys, input, out)
}

/// Reads into `buf` until it is full or the input ends; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, PcapAnonError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PcapAnonError::Io(e)),
        }
    }
    Ok(n)
}

/// Anonymises a classic pcap stream record by record (memory: one record), each packet with
/// the key of `keys` valid at its capture time. On error, what was written is a prefix of the
/// output; the caller discards it.
pub fn anonymize_pcap_stream(
    keys: &KeyRing,
    mut input: impl Read,
    mut out: impl Write,
) -> Result<PcapAnonStats, PcapAnonError> {
    let mut header = [0u8; 24];
    let got = read_full(&mut input, &mut header)?;
    if got < 4 {
        return Err(PcapAnonError::Truncated {
            what: "file header",
            offset: 0,
        });
    }
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let (le, nanos) = match magic {
        0xa1b2c3d4 => (true, false),
        0xa1b23c4d => (true, true),
        0xd4c3b2a1 => (false, false),
        0x4d3cb2a1 => (false, true),
        0x0a0d0d0a => return Err(PcapAnonError::Pcapng),
        m => return Err(PcapAnonError::Magic { magic: m }),
    };
    if got < 24 {
        return Err(PcapAnonError::Truncated {
            what: "file header",
            offset: 0,
        });
    }
    let rd32 = |b: &[u8], o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = rd32(&header, 20) & 0xffff;
    if !matches!(link, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276) {
        return Err(PcapAnonError::LinkType(link));
    }
    out.write_all(&header).map_err(PcapAnonError::Io)?;
    let mut stats = PcapAnonStats::default();
    let mut pos = 24usize;
    let mut data = Vec::new();
    loop {
        let mut rec = [0u8; 16];
        match read_full(&mut input, &mut rec)? {
            0 => break,
            16 => {}
            _ => {
                return Err(PcapAnonError::Truncated {
                    what: "record header",
                    offset: pos,
                });
            }
        }
        let caplen = rd32(&rec, 8) as usize;
        if caplen > MAX_RECORD {
            return Err(PcapAnonError::Truncated {
                what: "packet record",
                offset: pos,
            });
        }
        data.resize(caplen, 0);
        if read_full(&mut input, &mut data)? < caplen {
            return Err(PcapAnonError::Truncated {
                what: "packet record",
                offset: pos,
            });
        }
        stats.packets += 1;
        let secs = i64::from(rd32(&rec, 0));
        let frac = i64::from(rd32(&rec, 4));
        let time_ms = secs * 1000 + if nanos { frac / 1_000_000 } else { frac / 1000 };
        let cp = keys.at(time_ms).ok_or(PcapAnonError::NoKey {
            packet: stats.packets,
            time_ms,
        })?;
        anonymize_frame(cp, link, &mut data, &mut stats);
        out.write_all(&rec).map_err(PcapAnonError::Io)?;
        out.write_all(&data).map_err(PcapAnonError::Io)?;
        pos += 16 + caplen;
    }
    Ok(stats)
}

/// Finds the network layer of one frame and anonymises it.
fn anonymize_frame(cp: &CryptoPan, link: u32, f: &mut [u8], st: &mut PcapAnonStats) {
    let (ethertype, off) = match link {
        1 => {
            let mut off = 12;
            let mut et = be16(f, off);
            while matches!(et, Some(0x8100 | 0x88a8 | 0x9100)) {
                off += 4;
                et = be16(f, off);
            }
            (et, off + 2)
        }
        113 => (be16(f, 14), 16),
        276 => (be16(f, 0), 20),
        0 | 108 => (version_type(f.get(4..)), 4),
        _ => (version_type(Some(f)), 0),
    };
    let Some(p) = f.get_mut(off..) else {
        st.other += 1;
        return;
    };
    match ethertype {
        Some(0x0800) if p.len() >= 20 && p[0] >> 4 == 4 => ipv4(cp, p, st),
        Some(0x86dd) if p.len() >= 40 && p[0] >> 4 == 6 => ipv6(cp, p, st),
        Some(0x0806) => arp(cp, p, st),
        _ => st.other += 1,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// The ethertype of a raw IP packet, from its version nibble.
fn version_type(p: Option<&[u8]>) -> Option<u16> {
    match p?.first()? >> 4 {
        4 => Some(0x0800),
        6 => Some(0x86dd),
        _ => None,
    }
}

fn v4(cp: &CryptoPan, b: &mut [u8]) {
    let a = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    b.copy_from_slice(&cp.anonymize_v4(a).octets());
}

fn ipv4(cp: &CryptoPan, p: &mut [u8], st: &mut PcapAnonStats) {
    st.ipv4 += 1;
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let mut old = [0u8; 8];
    old.copy_from_slice(&p[12..20]);
    v4(cp, &mut p[12..16]);
    v4(cp, &mut p[16..20]);
    let new: [u8; 8] = p[12..20].try_into().unwrap_or_default();
    fix_at(p, 10, &old, &new, false);
    let frag_offset = be16(p, 6).unwrap_or(0) & 0x1fff;
    if ihl < 20 || frag_offset != 0 {
        return;
    }
    let proto = p[9];
    let Some(l4) = p.get_mut(ihl..) else {
        return;
    };
    transport(cp, proto, l4, &old, &new, st);
}

/// ARP for IPv4 over Ethernet: the sender and target protocol addresses.
fn arp(cp: &CryptoPan, p: &mut [u8], st: &mut PcapAnonStats) {
    if p.len() < 28 || be16(p, 0) != Some(1) || be16(p, 2) != Some(0x0800) || p[4] != 6 || p[5] != 4
    {
        st.other += 1;
        return;
    }
    st.arp += 1;
    v4(cp, &mut p[14..18]);
    v4(cp, &mut p[24..28]);
}

fn ipv6(cp: &CryptoPan, p: &mut [u8], st: &mut PcapAnonStats) {
    st.ipv6 += 1;
    let mut old = [0u8; 32];
    old.copy_from_slice(&p[8..40]);
    for at in [8, 24] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&p[at..at + 16]);
        let n = cp.anonymize_v6(Ipv6Addr::from(a)).octets();
        p[at..at + 16].copy_from_slice(&n);
    }
    let new: [u8; 32] = p[8..40].try_into().unwrap_or([0; 32]);
    let (mut next, mut off) = (p[6], 40usize);
    // Extension headers (at most 8, bounded by the packet).
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let (Some(&n), Some(&len)) = (p.get(off), p.get(off + 1)) else {
                    return;
                };
                next = n;
                off += (usize::from(len) + 1) * 8;
            }
            44 => {
                let (Some(&n), Some(fo)) = (p.get(off), be16(p, off + 2)) else {
                    return;
                };
                if fo & 0xfff8 != 0 {
                    return;
                }
                next = n;
                off += 8;
            }
            _ => break,
        }
    }
    let Some(l4) = p.get_mut(off..) else {
        return;
    };
    transport(cp, next, l4, &old, &new, st);
}

/// Fixes the transport checksum for the pseudo-header change, and anonymises NetFlow v5.
fn transport(
    cp: &CryptoPan,
    proto: u8,
    l4: &mut [u8],
    old: &[u8],
    new: &[u8],
    st: &mut PcapAnonStats,
) {
    match proto {
        6 => fix_at(l4, 16, old, new, false),
        58 => fix_at(l4, 2, old, new, false),
        17 => {
            fix_at(l4, 6, old, new, true);
            udp_payload(cp, l4, st);
        }
        _ => {}
    }
}

/// NetFlow v5 records in a UDP datagram (`u` starts at the UDP header): each record's
/// source, destination and (non-zero) next hop, with the UDP checksum fixed.
fn udp_payload(cp: &CryptoPan, u: &mut [u8], st: &mut PcapAnonStats) {
    let Some(payload) = u.get(8..) else {
        return;
    };
    let version = be16(payload, 0);
    let count = usize::from(be16(payload, 2).unwrap_or(0));
    let ports = [be16(u, 0), be16(u, 2)];
    match version {
        Some(5) if (1..=30).contains(&count) && payload.len() >= 24 + 48 * count => {}
        Some(9 | 10) | Some(0) if ports.iter().any(|p| is_flow_port(*p)) => {
            st.flow_payloads_kept += 1;
            return;
        }
        _ => return,
    }
    for i in 0..count {
        let at = 8 + 24 + 48 * i;
        let mut old = [0u8; 12];
        old.copy_from_slice(&u[at..at + 12]);
        v4(cp, &mut u[at..at + 4]);
        v4(cp, &mut u[at + 4..at + 8]);
        if old[8..12] != [0, 0, 0, 0] {
            v4(cp, &mut u[at + 8..at + 12]);
        }
        let new: [u8; 12] = u[at..at + 12].try_into().unwrap_or_default();
        fix_at(u, 6, &old, &new, true);
        st.netflow_v5_records += 1;
    }
}

/// Ports flow exports are sent to (NetFlow, IPFIX, sFlow).
fn is_flow_port(p: Option<u16>) -> bool {
    matches!(p, Some(2055 | 2056 | 4739 | 6343 | 9995 | 9996))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    fn ring() -> KeyRing {
        KeyRing::single(CryptoPan::new(
            &Key::from_hex("1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202")
                .unwrap(),
        ))
    }

    fn sum(b: &[u8]) -> u16 {
        let mut s = add_words(0, &b[..b.len() & !1], false);
        if b.len() % 2 == 1 {
            s += u32::from(b[b.len() - 1]) << 8;
        }
        !fold(s)
    }

    /// A raw-IP (link 101) pcap with one IPv4 UDP packet carrying `payload`, checksums right.
    fn capture(payload: &[u8]) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[128, 11, 68, 132, 129, 118, 74, 4]);
        let total = 20 + 8 + payload.len();
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let c = sum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut udp = vec![0x13, 0x88, 0x08, 0x07];
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        pseudo.extend_from_slice(&udp);
        let c = sum(&pseudo);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&udp);
        let mut f = Vec::new();
        for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 101] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for v in [1_700_000_000u32, 0, ip.len() as u32, ip.len() as u32] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn ipv4_addresses_are_replaced_and_checksums_stay_valid() {
        let mut v5 = vec![0u8; 24 + 48];
        v5[1] = 5;
        v5[3] = 1;
        v5[24..28].copy_from_slice(&[10, 1, 2, 3]);
        v5[28..32].copy_from_slice(&[10, 1, 2, 4]);
        let input = capture(&v5);
        let mut out = Vec::new();
        let st = anonymize_pcap(&ring(), &input, &mut out).unwrap();
        assert_eq!(out.len(), input.len());
        assert_eq!((st.packets, st.ipv4, st.netflow_v5_records), (1, 1, 1));
        let ip = &out[40..];
        assert_eq!(&ip[12..16], &[135, 242, 180, 132], "published vector");
        assert_eq!(&ip[16..20], &[134, 136, 186, 123], "published vector");
        assert_eq!(sum(&ip[..20]), 0, "IPv4 header checksum");
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&ip[24..26]);
        pseudo.extend_from_slice(&ip[20..]);
        assert_eq!(sum(&pseudo), 0, "UDP checksum");
        let rec = &ip[28 + 24..];
        let cp = ring();
        let want = cp.at(0).unwrap().anonymize_v4(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(&rec[..4], &want.octets());
        assert_eq!(&rec[4..7], &want.octets()[..3], "prefix kept in records");
        assert_eq!(&rec[8..12], &[0, 0, 0, 0], "no next hop stays none");
    }

    #[test]
    fn pcapng_and_garbage_are_refused_with_the_fix() {
        let mut out = Vec::new();
        let e = anonymize_pcap(&ring(), &[0x0a, 0x0d, 0x0d, 0x0a, 0, 0], &mut out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("editcap -F pcap"), "{e}");
        let mut cut = capture(b"hello");
        cut.truncate(cut.len() - 3);
        let e = anonymize_pcap(&ring(), &cut, &mut out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated") && e.contains("byte 24"), "{e}");
    }

    #[test]
    fn each_packet_takes_the_key_valid_at_its_capture_time() {
        let hex = |h: &str| Some(crate::HexKey::from(h.to_string()));
        let cfg = |from: &str| crate::AnonConfig {
            key: vec![crate::DatedKey {
                from: from.into(),
                key_hex: hex("8009ab3a605435bea0c385bea18485d8b0a1103d6590bdf48c968be5de53836e"),
                ..crate::DatedKey::default()
            }],
            ..crate::AnonConfig::default()
        };
        // the packet is at 2023-11-14 22:13:20 UTC
        let input = capture(b"x");
        let mut out = Vec::new();
        let e = anonymize_pcap(&cfg("2024-01-01").key_ring().unwrap(), &input, &mut out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("packet 1") && e.contains("[[anon.key]]"), "{e}");
        anonymize_pcap(&cfg("2023-11-14").key_ring().unwrap(), &input, &mut out).unwrap();
        let other = crate::CryptoPan::new(
            &Key::from_hex("8009ab3a605435bea0c385bea18485d8b0a1103d6590bdf48c968be5de53836e")
                .unwrap(),
        );
        let want = other.anonymize_v4(Ipv4Addr::new(128, 11, 68, 132)).octets();
        assert_eq!(&out[40 + 12..40 + 16], &want);
    }

    proptest::proptest! {
        #[test]
        fn no_panic_on_any_bytes(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), link in 0u32..300) {
            let mut f = capture(b"");
            f[20..24].copy_from_slice(&link.to_le_bytes());
            f.truncate(24);
            let n = tail.len() as u32;
            for v in [1_700_000_000u32, 0, n, n] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend_from_slice(&tail);
            let mut out = Vec::new();
            let _ = anonymize_pcap(&ring(), &f, &mut out);
        }
    }
}
