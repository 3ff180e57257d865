//! Crypto-PAn throughput: addresses per second on one core, IPv4 and IPv6, and the per-key setup;
//! beside it the per-bit loop of the reference implementation and nfanon (one AES call per bit,
//! nothing cached) on the same machine and load.
//! `cargo bench -p pharos-anon --bench cryptopan`

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pharos_anon::{CryptoPan, Key};

const N: u64 = 4096;

const KEY: [u8; 32] = [
    0x15, 0x22, 0x17, 0x8d, 0x33, 0xa4, 0xcf, 0x80, 0x13, 0x0a, 0x5b, 0x16, 0x49, 0x90, 0x7d, 0x10,
    0xd8, 0x98, 0x8f, 0x83, 0x79, 0x79, 0x65, 0x27, 0x62, 0x57, 0x4c, 0x2d, 0x2a, 0x84, 0x22, 0x02,
];

/// The reference implementation's IPv4 loop (nfanon's `anonymize`): 32 AES calls in sequence.
struct PerBit {
    cipher: Aes128,
    pad: [u8; 16],
}

impl PerBit {
    fn new() -> Self {
        let mut k = [0u8; 16];
        k.copy_from_slice(&KEY[..16]);
        let cipher = Aes128::new(&Array::from(k));
        let mut seed = [0u8; 16];
        seed.copy_from_slice(&KEY[16..]);
        let mut pad = Array::from(seed);
        cipher.encrypt_block(&mut pad);
        Self {
            cipher,
            pad: pad.into(),
        }
    }

    fn anonymize(&self, orig: u32) -> u32 {
        let pad4 = u32::from_be_bytes([self.pad[0], self.pad[1], self.pad[2], self.pad[3]]);
        let mut result = 0u32;
        for pos in 0..32 {
            let input = if pos == 0 {
                pad4
            } else {
                (orig >> (32 - pos) << (32 - pos)) | ((pad4 << pos) >> pos)
            };
            let mut block = Array::from(self.pad);
            block[..4].copy_from_slice(&input.to_be_bytes());
            self.cipher.encrypt_block(&mut block);
            result |= u32::from(block[0] >> 7) << (31 - pos);
        }
        result ^ orig
    }
}

fn bench(c: &mut Criterion) {
    eprintln!("AES hardware acceleration: {}", aes::hardware_accelerated());
    let key = Key::from_bytes(KEY);
    let cp = CryptoPan::new(&key);
    let per_bit = PerBit::new();
    assert_eq!(
        per_bit.anonymize(u32::from(Ipv4Addr::new(128, 11, 68, 132))),
        u32::from(cp.anonymize_v4(Ipv4Addr::new(128, 11, 68, 132)))
    );
    // spread over the whole space (a multiplicative walk), as the addresses of real traffic are
    let v4: Vec<Ipv4Addr> = (0..N as u32)
        .map(|i| Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))
        .collect();
    let v6: Vec<Ipv6Addr> = (0..N as u128)
        .map(|i| Ipv6Addr::from(0x2001_0db8u128 << 96 | i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let mut g = c.benchmark_group("cryptopan");
    g.throughput(Throughput::Elements(N));
    g.bench_function("ipv4", |b| {
        b.iter(|| {
            for a in &v4 {
                black_box(cp.anonymize_v4(black_box(*a)));
            }
        })
    });
    let mut out = Vec::with_capacity(v4.len());
    g.bench_function("ipv4 many", |b| {
        b.iter(|| {
            cp.anonymize_v4_many(black_box(&v4), &mut out);
            black_box(&out);
        })
    });
    g.bench_function("ipv4 per-bit (reference loop)", |b| {
        b.iter(|| {
            for a in &v4 {
                black_box(per_bit.anonymize(black_box(u32::from(*a))));
            }
        })
    });
    g.bench_function("ipv6", |b| {
        b.iter(|| {
            for a in &v6 {
                black_box(cp.anonymize_v6(black_box(*a)));
            }
        })
    });
    g.finish();
    c.bench_function("cryptopan/new (per-key table)", |b| {
        b.iter(|| black_box(CryptoPan::new(black_box(&key))))
    });
}

/// A raw-IP pcap of `n` IPv4/UDP packets, each a NetFlow v5 export of 30 records.
fn v5_capture(n: u32) -> Vec<u8> {
    use pharos_wire::netflow_v5::{V5Header, V5RecordRepr, emit};
    let mut f = Vec::new();
    for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 101] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for p in 0..n {
        let records: Vec<V5RecordRepr> = (0..30u32)
            .map(|i| V5RecordRepr {
                src_addr: Ipv4Addr::from(0x0a00_0000 + p * 30 + i),
                dst_addr: Ipv4Addr::from(0xc633_6400 + i),
                next_hop: Ipv4Addr::new(192, 0, 2, 254),
                ..V5RecordRepr::default()
            })
            .collect();
        let payload = emit(&V5Header::default(), &records).unwrap();
        let len = 28 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (len >> 8) as u8,
            len as u8,
            0,
            0,
            0,
            0,
            64,
            17,
            0x12,
            0x34,
        ];
        ip.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2, 0x9c, 0x40, 0x08, 0x07]);
        ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0x56, 0x78]);
        ip.extend_from_slice(&payload);
        for v in [1_700_000_000u32, p, ip.len() as u32, ip.len() as u32] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&ip);
    }
    f
}

/// `anonymize_pcap` over NetFlow v5 exports: packets per second (92 pseudonyms a packet: 2 in
/// the IP header, 3 in each of the 30 records).
fn bench_pcap(c: &mut Criterion) {
    let ring = pharos_anon::KeyRing::single(CryptoPan::new(&Key::from_bytes(KEY)));
    let input = v5_capture(1000);
    let mut out = Vec::with_capacity(input.len());
    let mut g = c.benchmark_group("pcap");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("netflow v5 packets (30 records each)", |b| {
        b.iter(|| pharos_anon::anonymize_pcap(&ring, black_box(&input), &mut out).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench, bench_pcap);
criterion_main!(benches);
