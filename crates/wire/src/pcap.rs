//! Capture files: pcap (both byte orders, microsecond and nanosecond magic) and pcapng (SHB, IDB,
//! EPB, SPB; other blocks skipped), yielding every UDP datagram over IPv4 or IPv6.
//!
//! Link types: Ethernet (with 802.1Q/802.1ad tags), Linux SLL and SLL2, raw IP (101, 12, 14,
//! 228, 229), BSD loopback/null (0, 108). Packets on other link types, non-UDP packets and IP
//! fragments are skipped and counted in [`PcapStats`]; nothing is reassembled.
//!
//! Contract: [`Capture::new`] reads the file header; iterating yields `Ok(Datagram)` per UDP
//! datagram, in file order, borrowing the payload from the input. A structural problem (a record
//! or block running past the end, an absurd snap length or block length, more than
//! [`MAX_INTERFACES`] interfaces) yields one `Err` and ends the iteration; nothing panics and
//! nothing allocates in proportion to a length field.

use std::net::{IpAddr, SocketAddr};

use crate::bytes::{ipv4_at, ipv6_at, u8_at, u16_at};
use crate::error::WireError;

/// Largest record or block accepted (16 MiB).
pub const MAX_BLOCK: usize = 16 << 20;
/// Most pcapng interfaces per section.
pub const MAX_INTERFACES: usize = 4096;

/// One UDP datagram found in a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Capture time, Unix ms (0 for pcapng simple packet blocks, which carry no time).
    pub timestamp_ms: u64,
    /// UDP source.
    pub src: SocketAddr,
    /// UDP destination.
    pub dst: SocketAddr,
    /// UDP payload as captured (shorter than sent when the snap length cut it; see
    /// [`PcapStats::truncated`]).
    pub payload: &'a [u8],
}

/// What a capture held besides UDP datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcapStats {
    /// Packet records read.
    pub packets: u64,
    /// UDP datagrams yielded.
    pub udp: u64,
    /// Packets skipped because they are not UDP over IPv4/IPv6 (or too short to tell).
    pub non_udp: u64,
    /// IP fragments skipped (not reassembled).
    pub fragments: u64,
    /// Packets skipped because their link type is not supported.
    pub unsupported_link: u64,
    /// UDP datagrams whose payload was cut by the snap length.
    pub truncated: u64,
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    link: u32,
    /// Timestamp units per second.
    units: u64,
    snaplen: u32,
}

#[derive(Debug, Clone)]
enum Format {
    Pcap { le: bool, nanos: bool, link: u32 },
    Pcapng { le: bool, ifaces: Vec<Iface> },
}

/// A capture file, borrowed; an iterator of UDP datagrams.
#[derive(Debug, Clone)]
pub struct Capture<'a> {
    buf: &'a [u8],
    pos: usize,
    format: Format,
    stats: PcapStats,
    done: bool,
}

fn rd32(b: &[u8], off: usize, le: bool) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(s) => {
            let a = [s[0], s[1], s[2], s[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        }
        None => 0,
    }
}

fn rd16(b: &[u8], off: usize, le: bool) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(s) => {
            if le {
                u16::from_le_bytes([s[0], s[1]])
            } else {
                u16::from_be_bytes([s[0], s[1]])
            }
        }
        None => 0,
    }
}

impl<'a> Capture<'a> {
    /// Reads the file header (pcap or pcapng, by magic).
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        if buf.len() < 4 {
            return Err(WireError::Truncated {
                what: "capture header",
                need: 4,
                have: buf.len(),
            });
        }
        let magic_le = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let format = match magic_le {
            0xa1b2c3d4 | 0xa1b23c4d | 0xd4c3b2a1 | 0x4d3cb2a1 => {
                if buf.len() < 24 {
                    return Err(WireError::Truncated {
                        what: "pcap header",
                        need: 24,
                        have: buf.len(),
                    });
                }
                let le = matches!(magic_le, 0xa1b2c3d4 | 0xa1b23c4d);
                let nanos = matches!(magic_le, 0xa1b23c4d | 0x4d3cb2a1);
                let snaplen = rd32(buf, 16, le) as usize;
                if snaplen > MAX_BLOCK {
                    return Err(WireError::Limit {
                        what: "pcap snap length",
                        limit: MAX_BLOCK,
                    });
                }
                // The low 16 bits are the link type; the high bits may carry FCS information.
                let link = rd32(buf, 20, le) & 0xffff;
                return Ok(Self {
                    buf,
                    pos: 24,
                    format: Format::Pcap { le, nanos, link },
                    stats: PcapStats::default(),
                    done: false,
                });
            }
            0x0a0d0d0a => Format::Pcapng {
                le: true,
                ifaces: Vec::new(),
            },
            _ => {
                return Err(WireError::malformed(
                    "capture header",
                    format!("magic {magic_le:#010x} is neither pcap nor pcapng"),
                ));
            }
        };
        let mut c = Self {
            buf,
            pos: 0,
            format,
            stats: PcapStats::default(),
            done: false,
        };
        // Validate the first section header now so that a bad file fails at open.
        c.section_byte_order(0)?;
        Ok(c)
    }

    /// Counters of what was skipped so far.
    pub fn stats(&self) -> &PcapStats {
        &self.stats
    }

    /// Reads the byte order of the section header block at `at`.
    fn section_byte_order(&mut self, at: usize) -> Result<bool, WireError> {
        let b = self.buf;
        if b.len() < at + 12 {
            return Err(WireError::Truncated {
                what: "pcapng section header",
                need: at + 12,
                have: b.len(),
            });
        }
        let le = match u32::from_le_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]) {
            0x1a2b3c4d => true,
            0x4d3c2b1a => false,
            m => {
                return Err(WireError::malformed(
                    "pcapng section header",
                    format!("byte-order magic {m:#010x}"),
                ));
            }
        };
        if let Format::Pcapng { le: l, ifaces } = &mut self.format {
            *l = le;
            ifaces.clear();
        }
        Ok(le)
    }

    fn next_pcap(
        &mut self,
        le: bool,
        nanos: bool,
        link: u32,
    ) -> Option<Result<Datagram<'a>, WireError>> {
        loop {
            let b = self.buf;
            let p = self.pos;
            if p == b.len() {
                return None;
            }
            if b.len() - p < 16 {
                return Some(Err(WireError::Truncated {
                    what: "pcap record header",
                    need: 16,
                    have: b.len() - p,
                }));
            }
            let secs = rd32(b, p, le) as u64;
            let frac = rd32(b, p + 4, le) as u64;
            let incl = rd32(b, p + 8, le) as usize;
            if incl > MAX_BLOCK {
                return Some(Err(WireError::Limit {
                    what: "pcap record length",
                    limit: MAX_BLOCK,
                }));
            }
            if b.len() - p - 16 < incl {
                return Some(Err(WireError::Truncated {
                    what: "pcap record",
                    need: incl,
                    have: b.len() - p - 16,
                }));
            }
            let frame = &b[p + 16..p + 16 + incl];
            self.pos = p + 16 + incl;
            self.stats.packets += 1;
            let ms = secs * 1000 + if nanos { frac / 1_000_000 } else { frac / 1000 };
            if let Some(d) = self.frame(link, frame, ms) {
                return Some(Ok(d));
            }
        }
    }

    fn next_pcapng(&mut self) -> Option<Result<Datagram<'a>, WireError>> {
        loop {
            let b = self.buf;
            let p = self.pos;
            if p == b.len() {
                return None;
            }
            if b.len() - p < 12 {
                return Some(Err(WireError::Truncated {
                    what: "pcapng block",
                    need: 12,
                    have: b.len() - p,
                }));
            }
            let btype_le = u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]);
            let le = if btype_le == 0x0a0d0d0a {
                match self.section_byte_order(p) {
                    Ok(le) => le,
                    Err(e) => return Some(Err(e)),
                }
            } else {
                match &self.format {
                    Format::Pcapng { le, .. } => *le,
                    Format::Pcap { .. } => return None,
                }
            };
            let btype = rd32(b, p, le);
            let blen = rd32(b, p + 4, le) as usize;
            if blen > MAX_BLOCK {
                return Some(Err(WireError::Limit {
                    what: "pcapng block length",
                    limit: MAX_BLOCK,
                }));
            }
            if blen < 12 || !blen.is_multiple_of(4) {
                return Some(Err(WireError::malformed(
                    "pcapng block",
                    format!("block length {blen} at offset {p}"),
                )));
            }
            if blen > b.len() - p {
                return Some(Err(WireError::Truncated {
                    what: "pcapng block",
                    need: blen,
                    have: b.len() - p,
                }));
            }
            let body = &b[p + 8..p + blen - 4];
            self.pos = p + blen;
            match btype {
                0x0000_0001 => {
                    if let Err(e) = self.interface(body, le) {
                        return Some(Err(e));
                    }
                }
                0x0000_0006 => {
                    if body.len() < 20 {
                        return Some(Err(WireError::Truncated {
                            what: "pcapng enhanced packet block",
                            need: 20,
                            have: body.len(),
                        }));
                    }
                    let iface = rd32(body, 0, le) as usize;
                    let ts = (rd32(body, 4, le) as u64) << 32 | rd32(body, 8, le) as u64;
                    let cap = rd32(body, 12, le) as usize;
                    if cap > body.len() - 20 {
                        return Some(Err(WireError::Truncated {
                            what: "pcapng enhanced packet block",
                            need: cap + 20,
                            have: body.len(),
                        }));
                    }
                    self.stats.packets += 1;
                    let Some(ifc) = self.iface(iface) else {
                        return Some(Err(WireError::malformed(
                            "pcapng enhanced packet block",
                            format!("interface {iface} not described"),
                        )));
                    };
                    let ms =
                        (ts as u128 * 1000 / ifc.units.max(1) as u128).min(u64::MAX as u128) as u64;
                    if let Some(d) = self.frame(ifc.link, &body[20..20 + cap], ms) {
                        return Some(Ok(d));
                    }
                }
                0x0000_0003 => {
                    if body.len() < 4 {
                        return Some(Err(WireError::Truncated {
                            what: "pcapng simple packet block",
                            need: 4,
                            have: body.len(),
                        }));
                    }
                    let Some(ifc) = self.iface(0) else {
                        return Some(Err(WireError::malformed(
                            "pcapng simple packet block",
                            "no interface described",
                        )));
                    };
                    let orig = rd32(body, 0, le) as usize;
                    let mut cap = orig.min(body.len() - 4);
                    if ifc.snaplen > 0 {
                        cap = cap.min(ifc.snaplen as usize);
                    }
                    self.stats.packets += 1;
                    if let Some(d) = self.frame(ifc.link, &body[4..4 + cap], 0) {
                        return Some(Ok(d));
                    }
                }
                _ => {} // section header (handled above), statistics, name resolution, custom...
            }
        }
    }

    fn iface(&self, i: usize) -> Option<Iface> {
        match &self.format {
            Format::Pcapng { ifaces, .. } => ifaces.get(i).copied(),
            Format::Pcap { .. } => None,
        }
    }

    fn interface(&mut self, body: &[u8], le: bool) -> Result<(), WireError> {
        if body.len() < 8 {
            return Err(WireError::Truncated {
                what: "pcapng interface description block",
                need: 8,
                have: body.len(),
            });
        }
        let link = rd16(body, 0, le) as u32;
        let snaplen = rd32(body, 4, le);
        let mut units = 1_000_000u64;
        let mut pos = 8;
        while body.len() >= pos + 4 {
            let code = rd16(body, pos, le);
            let len = rd16(body, pos + 2, le) as usize;
            pos += 4;
            if code == 0 || body.len() < pos + len {
                break;
            }
            if code == 9 && len >= 1 {
                let r = body[pos];
                let exp = (r & 0x7f) as u32;
                units = if r & 0x80 == 0 {
                    10u64.checked_pow(exp)
                } else {
                    2u64.checked_pow(exp)
                }
                .unwrap_or(1_000_000);
            }
            pos += len.div_ceil(4) * 4;
        }
        if let Format::Pcapng { ifaces, .. } = &mut self.format {
            if ifaces.len() >= MAX_INTERFACES {
                return Err(WireError::Limit {
                    what: "pcapng interfaces",
                    limit: MAX_INTERFACES,
                });
            }
            ifaces.push(Iface {
                link,
                units,
                snaplen,
            });
        }
        Ok(())
    }

    /// Finds the UDP datagram in one captured frame, counting what is skipped.
    fn frame(&mut self, link: u32, f: &'a [u8], ms: u64) -> Option<Datagram<'a>> {
        let ip: &'a [u8] = match link {
            1 => {
                if f.len() < 14 {
                    self.stats.non_udp += 1;
                    return None;
                }
                let mut et = u16_at(f, 12);
                let mut pos = 14;
                let mut tags = 0;
                while matches!(et, 0x8100 | 0x88a8 | 0x9100) && f.len() >= pos + 4 && tags < 8 {
                    et = u16_at(f, pos + 2);
                    pos += 4;
                    tags += 1;
                }
                match et {
                    0x0800 | 0x86dd => &f[pos.min(f.len())..],
                    _ => {
                        self.stats.non_udp += 1;
                        return None;
                    }
                }
            }
            113 => {
                if f.len() < 16 || !matches!(u16_at(f, 14), 0x0800 | 0x86dd) {
                    self.stats.non_udp += 1;
                    return None;
                }
                &f[16..]
            }
            276 => {
                if f.len() < 20 || !matches!(u16_at(f, 0), 0x0800 | 0x86dd) {
                    self.stats.non_udp += 1;
                    return None;
                }
                &f[20..]
            }
            101 | 12 | 14 | 228 | 229 => f,
            0 | 108 => {
                if f.len() < 4 {
                    self.stats.non_udp += 1;
                    return None;
                }
                &f[4..]
            }
            _ => {
                self.stats.unsupported_link += 1;
                return None;
            }
        };
        self.ip(ip, ms)
    }

    fn ip(&mut self, b: &'a [u8], ms: u64) -> Option<Datagram<'a>> {
        let (src, dst, udp): (IpAddr, IpAddr, &'a [u8]) = match u8_at(b, 0) >> 4 {
            4 if b.len() >= 20 => {
                let ihl = (u8_at(b, 0) & 0x0f) as usize * 4;
                let total = (u16_at(b, 2) as usize).min(b.len());
                let frag = u16_at(b, 6);
                if frag & 0x3fff != 0 {
                    self.stats.fragments += 1;
                    return None;
                }
                if u8_at(b, 9) != 17 || ihl < 20 || total < ihl {
                    self.stats.non_udp += 1;
                    return None;
                }
                (
                    IpAddr::V4(ipv4_at(b, 12)),
                    IpAddr::V4(ipv4_at(b, 16)),
                    &b[ihl..total],
                )
            }
            6 if b.len() >= 40 => {
                let total = (40 + u16_at(b, 4) as usize).min(b.len());
                let mut next = u8_at(b, 6);
                let mut pos = 40;
                let mut hops = 0;
                while matches!(next, 0 | 43 | 60) && hops < 8 && total >= pos + 2 {
                    next = u8_at(b, pos);
                    pos += (u8_at(b, pos + 1) as usize + 1) * 8;
                    hops += 1;
                }
                if next == 44 {
                    self.stats.fragments += 1;
                    return None;
                }
                if next != 17 || pos > total {
                    self.stats.non_udp += 1;
                    return None;
                }
                (
                    IpAddr::V6(ipv6_at(b, 8)),
                    IpAddr::V6(ipv6_at(b, 24)),
                    &b[pos..total],
                )
            }
            _ => {
                self.stats.non_udp += 1;
                return None;
            }
        };
        if udp.len() < 8 {
            self.stats.non_udp += 1;
            return None;
        }
        let sport = u16_at(udp, 0);
        let dport = u16_at(udp, 2);
        let ulen = u16_at(udp, 4) as usize;
        let avail = udp.len() - 8;
        let want = if ulen >= 8 { ulen - 8 } else { avail };
        if want > avail {
            self.stats.truncated += 1;
        }
        self.stats.udp += 1;
        Some(Datagram {
            timestamp_ms: ms,
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
            payload: &udp[8..8 + want.min(avail)],
        })
    }
}

impl<'a> Iterator for Capture<'a> {
    type Item = Result<Datagram<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match self.format {
            Format::Pcap { le, nanos, link } => self.next_pcap(le, nanos, link),
            Format::Pcapng { .. } => self.next_pcapng(),
        };
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}
