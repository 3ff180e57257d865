//! The NetFlow v5 attack capture the end-to-end tests replay (e2e_detect, e2e_console): a v5
//! datagram writer and 30-flow seconds of background traffic and floods towards three victims of
//! 198.51.100.0/24.

#![allow(dead_code)]

pub const UPTIME: u32 = 3_600_000;
pub const NTP_VICTIM: [u8; 4] = [198, 51, 100, 10];
pub const SYN_VICTIM: [u8; 4] = [198, 51, 100, 20];
pub const ICMP_VICTIM: [u8; 4] = [198, 51, 100, 30];

/// One NetFlow v5 flow record.
pub struct Flow {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub flags: u8,
    pub packets: u32,
    pub bytes: u32,
}

/// A v5 datagram exported at `uptime` ms / `unix_secs`, every flow lasting the second before.
pub fn v5_datagram(seq: u32, uptime: u32, unix_secs: u32, flows: &[Flow]) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let header = V5Header {
        sys_uptime: uptime,
        unix_secs,
        flow_sequence: seq,
        ..V5Header::default()
    };
    let records: Vec<V5RecordRepr> = flows
        .iter()
        .map(|f| V5RecordRepr {
            src_addr: f.src.into(),
            dst_addr: f.dst.into(),
            next_hop: [192, 0, 2, 254].into(),
            input: 1,
            output: 2,
            packets: f.packets,
            octets: f.bytes,
            first: uptime - 999,
            last: uptime,
            src_port: f.sport,
            dst_port: f.dport,
            tcp_flags: f.flags,
            proto: f.proto,
            src_mask: 24,
            dst_mask: 24,
            ..V5RecordRepr::default()
        })
        .collect();
    emit(&header, &records).expect("at most 30 flows a datagram")
}

/// Background: 30 flows a second from distinct clients to 100 servers, a few packets each.
pub fn background(s: u32) -> Vec<Flow> {
    (0..30)
        .map(|j| {
            let k = s * 30 + j;
            let udp = k.is_multiple_of(3);
            Flow {
                src: [10, 1, (k >> 8) as u8, k as u8],
                dst: [198, 51, 100, 100 + (k % 100) as u8],
                sport: 1024 + (k % 50_000) as u16,
                dport: [53, 80, 443][(k % 3) as usize],
                proto: if udp { 17 } else { 6 },
                flags: if udp { 0 } else { 0x1b },
                packets: 5 + k % 40,
                bytes: (5 + k % 40) * 300,
            }
        })
        .collect()
}

/// NTP reflection: 30 reflectors from port 123, 400 packets a second each (12,000 pps).
pub fn ntp_flood(s: u32) -> Vec<Flow> {
    (0..30)
        .map(|j| Flow {
            src: [203, 0, 113, j as u8 + 1],
            dst: NTP_VICTIM,
            sport: 123,
            dport: 40_000 + ((s * 30 + j) % 20_000) as u16,
            proto: 17,
            flags: 0,
            packets: 400,
            bytes: 400 * 468,
        })
        .collect()
}

/// SYN flood: 30 spoofed sources to port 80, 1,000 SYNs a second each (30,000 pps).
pub fn syn_flood(s: u32) -> Vec<Flow> {
    (0..30)
        .map(|j| {
            let k = s * 30 + j;
            Flow {
                src: [100, 64, (k >> 8) as u8, k as u8],
                dst: SYN_VICTIM,
                sport: 1024 + (k % 60_000) as u16,
                dport: 80,
                proto: 6,
                flags: 0x02,
                packets: 1000,
                bytes: 1000 * 60,
            }
        })
        .collect()
}
