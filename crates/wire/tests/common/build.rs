//! Builders for synthetic NetFlow v5/v9, IPFIX and sFlow datagrams (tests and benches).
#![allow(dead_code)]

/// A NetFlow v5 datagram with `count` records; record `i` has src 10.0.(i/256).(i%256), dst
/// 192.0.2.1, ports 1000+i -> 80, proto 6, packets i+1, octets 100*(i+1), first = uptime-1000,
/// last = uptime-10.
pub fn v5(count: u16, seq: u32, uptime: u32, secs: u32, sampling: u16) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let header = V5Header {
        sys_uptime: uptime,
        unix_secs: secs,
        flow_sequence: seq,
        engine_type: 1,
        engine_id: 2,
        sampling_mode: (sampling >> 14) as u8,
        sampling_interval: sampling & 0x3fff,
        ..V5Header::default()
    };
    let records: Vec<V5RecordRepr> = (0..u32::from(count))
        .map(|i| V5RecordRepr {
            src_addr: [10, 0, (i / 256) as u8, i as u8].into(),
            dst_addr: [192, 0, 2, 1].into(),
            next_hop: [192, 0, 2, 254].into(),
            input: 3,
            output: 4,
            packets: i + 1,
            octets: 100 * (i + 1),
            first: uptime.wrapping_sub(1000),
            last: uptime.wrapping_sub(10),
            src_port: 1000 + i as u16,
            dst_port: 80,
            tcp_flags: 0x1b,
            proto: 6,
            src_as: 64512,
            dst_as: 64513,
            src_mask: 24,
            dst_mask: 16,
            ..V5RecordRepr::default()
        })
        .collect();
    emit(&header, &records).expect("at most 30 records")
}

/// NetFlow v9 / IPFIX message builder.
pub struct Msg {
    ipfix: bool,
    head: Vec<u8>,
    sets: Vec<u8>,
    pub records: u32,
}

fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let mut s = Vec::with_capacity(body.len() + 4);
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    s.extend_from_slice(&body);
    s
}

impl Msg {
    /// A NetFlow v9 packet.
    pub fn v9(source_id: u32, seq: u32, uptime: u32, secs: u32) -> Self {
        let mut h = Vec::new();
        h.extend_from_slice(&9u16.to_be_bytes());
        h.extend_from_slice(&0u16.to_be_bytes());
        h.extend_from_slice(&uptime.to_be_bytes());
        h.extend_from_slice(&secs.to_be_bytes());
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&source_id.to_be_bytes());
        Self {
            ipfix: false,
            head: h,
            sets: Vec::new(),
            records: 0,
        }
    }

    /// An IPFIX message.
    pub fn ipfix(domain: u32, seq: u32, export_time: u32) -> Self {
        let mut h = Vec::new();
        h.extend_from_slice(&10u16.to_be_bytes());
        h.extend_from_slice(&0u16.to_be_bytes());
        h.extend_from_slice(&export_time.to_be_bytes());
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&domain.to_be_bytes());
        Self {
            ipfix: true,
            head: h,
            sets: Vec::new(),
            records: 0,
        }
    }

    fn fields(&self, b: &mut Vec<u8>, fields: &[(u16, u16, u32)]) {
        for &(id, len, pen) in fields {
            let raw = if pen != 0 { id | 0x8000 } else { id };
            b.extend_from_slice(&raw.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            if pen != 0 {
                b.extend_from_slice(&pen.to_be_bytes());
            }
        }
    }

    /// A template set with one template (`(ie, length, enterprise)` triples).
    pub fn template(mut self, id: u16, fields: &[(u16, u16, u32)]) -> Self {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        self.fields(&mut b, fields);
        self.records += 1;
        self.sets.extend(set(if self.ipfix { 2 } else { 0 }, &b));
        self
    }

    /// An options template set with one template: `scope` fields first, then `options`.
    pub fn options_template(
        mut self,
        id: u16,
        scope: &[(u16, u16, u32)],
        options: &[(u16, u16, u32)],
    ) -> Self {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        if self.ipfix {
            b.extend_from_slice(&((scope.len() + options.len()) as u16).to_be_bytes());
            b.extend_from_slice(&(scope.len() as u16).to_be_bytes());
        } else {
            b.extend_from_slice(&((scope.len() * 4) as u16).to_be_bytes());
            b.extend_from_slice(&((options.len() * 4) as u16).to_be_bytes());
        }
        self.fields(&mut b, scope);
        self.fields(&mut b, options);
        self.records += 1;
        self.sets.extend(set(if self.ipfix { 3 } else { 1 }, &b));
        self
    }

    /// An IPFIX template withdrawal (field count 0) in a template set.
    pub fn withdraw(mut self, id: u16) -> Self {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        self.sets.extend(set(2, &b));
        self
    }

    /// A data set of already-encoded records.
    pub fn data(mut self, id: u16, records: &[Vec<u8>]) -> Self {
        let body: Vec<u8> = records.concat();
        self.records += records.len() as u32;
        self.sets.extend(set(id, &body));
        self
    }

    /// The datagram.
    pub fn build(&self) -> Vec<u8> {
        let mut b = self.head.clone();
        b.extend_from_slice(&self.sets);
        if self.ipfix {
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
        } else {
            let c = self.records as u16;
            b[2..4].copy_from_slice(&c.to_be_bytes());
        }
        b
    }
}

/// The 14-field template used by benches and tests: bytes, packets, proto, tos, flags, sport,
/// src v4, src mask, in if, dport, dst v4, dst mask, out if, first, last (v9 uptime / IPFIX ms).
pub fn flow_fields(ipfix: bool) -> Vec<(u16, u16, u32)> {
    let (first, last, tl) = if ipfix { (152, 153, 8) } else { (22, 21, 4) };
    vec![
        (1, 8, 0),
        (2, 8, 0),
        (4, 1, 0),
        (5, 1, 0),
        (6, 1, 0),
        (7, 2, 0),
        (8, 4, 0),
        (9, 1, 0),
        (10, 4, 0),
        (11, 2, 0),
        (12, 4, 0),
        (13, 1, 0),
        (14, 4, 0),
        (16, 4, 0),
        (17, 4, 0),
        (first, tl, 0),
        (last, tl, 0),
    ]
}

/// A record for [`flow_fields`]: flow `i`, times `start`/`end` (uptime ms or Unix ms).
pub fn flow_record(i: u32, start: u64, end: u64, ipfix: bool) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(1500u64 * (i as u64 + 1)).to_be_bytes());
    b.extend_from_slice(&(i as u64 + 1).to_be_bytes());
    b.extend_from_slice(&[6, 0, 0x12]);
    b.extend_from_slice(&1024u16.wrapping_add(i as u16).to_be_bytes());
    b.extend_from_slice(&[10, 1, (i >> 8) as u8, i as u8]);
    b.push(24);
    b.extend_from_slice(&7u32.to_be_bytes());
    b.extend_from_slice(&443u16.to_be_bytes());
    b.extend_from_slice(&[198, 51, 100, 7]);
    b.push(16);
    b.extend_from_slice(&9u32.to_be_bytes());
    b.extend_from_slice(&65001u32.to_be_bytes());
    b.extend_from_slice(&65002u32.to_be_bytes());
    if ipfix {
        b.extend_from_slice(&start.to_be_bytes());
        b.extend_from_slice(&end.to_be_bytes());
    } else {
        b.extend_from_slice(&(start as u32).to_be_bytes());
        b.extend_from_slice(&(end as u32).to_be_bytes());
    }
    b
}

/// An Ethernet + 802.1Q + IPv4 + TCP header (54+4 bytes).
pub fn eth_vlan_ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, vlan: u16) -> Vec<u8> {
    let mut b = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x81, 0x00];
    b.extend_from_slice(&vlan.to_be_bytes());
    b.extend_from_slice(&[0x08, 0x00]);
    b.extend_from_slice(&[0x45, 0, 0x05, 0xdc, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    b
}

fn pad4(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

/// An sFlow raw packet header flow record (0:1) around an Ethernet header.
pub fn sflow_raw_header(frame_len: u32, header: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&frame_len.to_be_bytes());
    body.extend_from_slice(&4u32.to_be_bytes());
    body.extend_from_slice(&(header.len() as u32).to_be_bytes());
    body.extend_from_slice(header);
    pad4(&mut body);
    let mut r = Vec::new();
    r.extend_from_slice(&1u32.to_be_bytes());
    r.extend_from_slice(&(body.len() as u32).to_be_bytes());
    r.extend_from_slice(&body);
    r
}

/// An sFlow (compact) flow sample (0:1) with the given records.
pub fn sflow_flow_sample(
    seq: u32,
    rate: u32,
    input: u32,
    output: u32,
    records: &[Vec<u8>],
) -> Vec<u8> {
    let mut body = Vec::new();
    for v in [seq, input, rate, 0, 0, input, output, records.len() as u32] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    for r in records {
        body.extend_from_slice(r);
    }
    let mut s = Vec::new();
    s.extend_from_slice(&1u32.to_be_bytes());
    s.extend_from_slice(&(body.len() as u32).to_be_bytes());
    s.extend_from_slice(&body);
    s
}

/// An sFlow counter sample (0:2) with one generic interface counter record.
pub fn sflow_counter_sample(seq: u32, if_index: u32, in_octets: u64, out_octets: u64) -> Vec<u8> {
    let mut rec = Vec::new();
    rec.extend_from_slice(&if_index.to_be_bytes());
    rec.extend_from_slice(&6u32.to_be_bytes());
    rec.extend_from_slice(&10_000_000_000u64.to_be_bytes());
    rec.extend_from_slice(&1u32.to_be_bytes());
    rec.extend_from_slice(&3u32.to_be_bytes());
    rec.extend_from_slice(&in_octets.to_be_bytes());
    for _ in 0..6 {
        rec.extend_from_slice(&7u32.to_be_bytes());
    }
    rec.extend_from_slice(&out_octets.to_be_bytes());
    for _ in 0..6 {
        rec.extend_from_slice(&9u32.to_be_bytes());
    }
    let mut body = Vec::new();
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&if_index.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&(rec.len() as u32).to_be_bytes());
    body.extend_from_slice(&rec);
    let mut s = Vec::new();
    s.extend_from_slice(&2u32.to_be_bytes());
    s.extend_from_slice(&(body.len() as u32).to_be_bytes());
    s.extend_from_slice(&body);
    s
}

/// An sFlow v5 datagram from an IPv4 agent.
pub fn sflow_datagram(
    agent: [u8; 4],
    sub_agent: u32,
    seq: u32,
    uptime: u32,
    samples: &[Vec<u8>],
) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [5u32, 1] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&agent);
    for v in [sub_agent, seq, uptime, samples.len() as u32] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for s in samples {
        b.extend_from_slice(s);
    }
    b
}

/// A classic pcap file (Ethernet link type, microsecond times) of UDP/IPv4 datagrams
/// `(unix_ms, src, dst, payload)`, for decoding with [`pharos_wire::pcap::Capture`] and
/// dissecting with tshark alike.
pub fn udp_pcap(
    datagrams: &[(u64, std::net::SocketAddrV4, std::net::SocketAddrV4, Vec<u8>)],
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (ms, src, dst, payload) in datagrams {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let ip_len = (20 + 8 + payload.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&ip_len.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&src.ip().octets());
        ip.extend_from_slice(&dst.ip().octets());
        let sum = ip
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&src.port().to_be_bytes());
        f.extend_from_slice(&dst.port().to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
        f.extend_from_slice(payload);
        b.extend_from_slice(&((ms / 1000) as u32).to_le_bytes());
        b.extend_from_slice(&((ms % 1000 * 1000) as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&f);
    }
    b
}
