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

criterion_group!(benches, bench);
criterion_main!(benches);
