//! The Crypto-PAn permutation of one key: a per-key table for the first 16 output bits, AES for
//! the rest.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use crate::key::Key;

type Block = aes::Block;

/// Output bits served by the per-key table; bit `i` depends on the first `i` input bits only, so
/// the table is indexed by the first `CACHED - 1` bits.
const CACHED: u32 = 16;
/// Index bits of the table.
const INDEX: u32 = CACHED - 1;

/// The Crypto-PAn anonymiser of one key: a bijection on IPv4 addresses and one on IPv6 addresses
/// that preserves shared prefixes. Building it costs 65 535 AES blocks (well under a
/// millisecond with AES-NI); each IPv4 address then costs 16 AES blocks, each IPv6 address 112.
/// `Debug` is redacted; the pad and the table are wiped on drop (the cipher wipes its round keys).
pub struct CryptoPan {
    cipher: Aes128,
    /// AES_K(seed), as a big-endian 128-bit number.
    pad: u128,
    /// `top[a >> (128 - INDEX)]` = the first `CACHED` one-time-pad bits of every address `a`
    /// (in the top bits of a 128-bit number) with that prefix.
    top: Box<[u16]>,
}

impl fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CryptoPan { key: <redacted> }")
    }
}

impl Drop for CryptoPan {
    fn drop(&mut self) {
        self.pad.zeroize();
        self.top.zeroize();
    }
}

/// The mask of the first `i` bits of a 128-bit number (`i` < 128).
fn top_mask(i: u32) -> u128 {
    if i == 0 { 0 } else { u128::MAX << (128 - i) }
}

impl CryptoPan {
    /// The anonymiser of `key`.
    pub fn new(key: &Key) -> Self {
        let k = key.bytes();
        let mut aes_key = [0u8; 16];
        aes_key.copy_from_slice(&k[..16]);
        let cipher = Aes128::new(&Array::from(aes_key));
        aes_key.zeroize();
        let mut seed = [0u8; 16];
        seed.copy_from_slice(&k[16..]);
        let mut block = Block::from(seed);
        seed.zeroize();
        cipher.encrypt_block(&mut block);
        let pad = u128::from_be_bytes(block.into());
        block.as_mut_slice().zeroize();
        let mut this = Self {
            cipher,
            pad,
            top: Box::new([]),
        };
        this.top = this.build_top();
        this
    }

    /// The AES input for bit `i` of address `a`: its first `i` bits, then the pad's.
    fn input(&self, a: u128, i: u32) -> Block {
        let m = top_mask(i);
        Block::from(((a & m) | (self.pad & !m)).to_be_bytes())
    }

    /// The table: every node of the prefix tree of depth < `CACHED` is one AES block (laid out
    /// depth by depth, encrypted in one call), then each index gathers its path's bits.
    fn build_top(&self) -> Box<[u16]> {
        let nodes = (1usize << CACHED) - 1;
        let mut blocks = Vec::with_capacity(nodes);
        for depth in 0..CACHED {
            for prefix in 0..(1u128 << depth) {
                let a = if depth == 0 {
                    0
                } else {
                    prefix << (128 - depth)
                };
                blocks.push(self.input(a, depth));
            }
        }
        self.cipher.encrypt_blocks(&mut blocks);
        let bits: Vec<u8> = blocks.iter().map(|b| b[0] >> 7).collect();
        blocks.iter_mut().for_each(|b| b.as_mut_slice().zeroize());
        (0..1usize << INDEX)
            .map(|q| {
                (0..CACHED).fold(0u16, |acc, depth| {
                    let node = (1usize << depth) - 1 + (q >> (INDEX - depth));
                    acc | u16::from(bits[node]) << (CACHED - 1 - depth)
                })
            })
            .collect()
    }

    /// The one-time pad of `a` (address in the top bits) for its first `CACHED + REST` bits.
    #[inline]
    fn otp<const REST: usize>(&self, a: u128) -> u128 {
        let mut otp = u128::from(self.top[(a >> (128 - INDEX)) as usize]) << (128 - CACHED);
        let mut blocks = [Block::default(); REST];
        for (j, b) in blocks.iter_mut().enumerate() {
            *b = self.input(a, CACHED + j as u32);
        }
        self.cipher.encrypt_blocks(&mut blocks);
        for (j, b) in blocks.iter().enumerate() {
            otp |= u128::from(b[0] >> 7) << (127 - CACHED - j as u32);
        }
        otp
    }

    /// The pseudonym of an IPv4 address (32-bit path, as nfanon and the reference implementation).
    pub fn anonymize_v4(&self, addr: Ipv4Addr) -> Ipv4Addr {
        let a = u128::from(u32::from(addr)) << 96;
        let otp = self.otp::<{ 32 - CACHED as usize }>(a);
        Ipv4Addr::from(((a ^ otp) >> 96) as u32)
    }

    /// The pseudonyms of many IPv4 addresses, `out[i]` for `addrs[i]` (`out` is cleared first):
    /// the same as [`CryptoPan::anonymize_v4`] on each, faster for large batches (the AES blocks of
    /// several addresses go through the cipher in one call).
    pub fn anonymize_v4_many(&self, addrs: &[Ipv4Addr], out: &mut Vec<Ipv4Addr>) {
        const REST: usize = 32 - CACHED as usize;
        const AT_ONCE: usize = 16;
        out.clear();
        out.reserve(addrs.len());
        let mut blocks = [Block::default(); REST * AT_ONCE];
        for chunk in addrs.chunks(AT_ONCE) {
            let n = chunk.len() * REST;
            for (k, addr) in chunk.iter().enumerate() {
                let a = u128::from(u32::from(*addr)) << 96;
                for j in 0..REST {
                    blocks[k * REST + j] = self.input(a, CACHED + j as u32);
                }
            }
            self.cipher.encrypt_blocks(&mut blocks[..n]);
            for (k, addr) in chunk.iter().enumerate() {
                let a = u32::from(*addr);
                let mut otp = u32::from(self.top[(a >> (32 - INDEX)) as usize]) << (32 - CACHED);
                for (j, b) in blocks[k * REST..(k + 1) * REST].iter().enumerate() {
                    otp |= u32::from(b[0] >> 7) << (31 - CACHED - j as u32);
                }
                out.push(Ipv4Addr::from(a ^ otp));
            }
        }
    }

    /// The pseudonym of an IPv6 address (128-bit path; `::ffff:a.b.c.d` included).
    pub fn anonymize_v6(&self, addr: Ipv6Addr) -> Ipv6Addr {
        let a = u128::from(addr);
        Ipv6Addr::from(a ^ self.otp::<{ 128 - CACHED as usize }>(a))
    }

    /// The pseudonym of an address, by the family it carries: IPv4 through the 32-bit path,
    /// IPv6 (IPv4-mapped included) through the 128-bit path.
    pub fn anonymize(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => IpAddr::V4(self.anonymize_v4(a)),
            IpAddr::V6(a) => IpAddr::V6(self.anonymize_v6(a)),
        }
    }

    /// The original of a pseudonym, bit by bit (each bit of the pad depends on the original bits
    /// before it). For the key holder, e.g. to act on a report about an anonymised address.
    fn recover(&self, anon: u128, bits: u32) -> u128 {
        let mut orig = 0u128;
        for i in 0..bits {
            let pad_bit = if i < CACHED {
                (self.top[(orig >> (128 - INDEX)) as usize] >> (CACHED - 1 - i)) & 1
            } else {
                let mut b = self.input(orig, i);
                self.cipher.encrypt_block(&mut b);
                u16::from(b[0] >> 7)
            };
            orig |= (((anon >> (127 - i)) & 1) ^ u128::from(pad_bit)) << (127 - i);
        }
        orig
    }

    /// The original of an IPv4 pseudonym made by [`CryptoPan::anonymize_v4`].
    pub fn deanonymize_v4(&self, anon: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from((self.recover(u128::from(u32::from(anon)) << 96, 32) >> 96) as u32)
    }

    /// The original of an IPv6 pseudonym made by [`CryptoPan::anonymize_v6`].
    pub fn deanonymize_v6(&self, anon: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.recover(u128::from(anon), 128))
    }

    /// The original of a pseudonym made by [`CryptoPan::anonymize`] (same family).
    pub fn deanonymize(&self, anon: IpAddr) -> IpAddr {
        match anon {
            IpAddr::V4(a) => IpAddr::V4(self.deanonymize_v4(a)),
            IpAddr::V6(a) => IpAddr::V6(self.deanonymize_v6(a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The algorithm as written in the paper: one AES block per bit, nothing cached.
    fn reference(cp: &CryptoPan, a: u128, bits: u32) -> u128 {
        let mut otp = 0u128;
        for i in 0..bits {
            let mut b = cp.input(a, i);
            cp.cipher.encrypt_block(&mut b);
            otp |= u128::from(b[0] >> 7) << (127 - i);
        }
        a ^ otp
    }

    fn canonical() -> &'static CryptoPan {
        static CP: std::sync::LazyLock<CryptoPan> = std::sync::LazyLock::new(|| {
            CryptoPan::new(
                &Key::from_hex("1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202")
                    .unwrap(),
            )
        });
        &CP
    }

    #[test]
    fn canonical_sample_maps_as_published() {
        let cp = canonical();
        let out = cp.anonymize_v4("128.11.68.132".parse().unwrap());
        assert_eq!(out, "135.242.180.132".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", canonical()),
            "CryptoPan { key: <redacted> }"
        );
    }

    proptest! {
        #[test]
        fn cached_table_agrees_with_per_bit_reference(v4: u32, v6: u128) {
            let cp = canonical();
            let a = u128::from(v4) << 96;
            prop_assert_eq!(
                u128::from(u32::from(cp.anonymize_v4(Ipv4Addr::from(v4)))) << 96,
                reference(cp, a, 32)
            );
            prop_assert_eq!(u128::from(cp.anonymize_v6(Ipv6Addr::from(v6))), reference(cp, v6, 128));
        }

        #[test]
        fn many_at_once_is_each_alone(addrs in proptest::collection::vec(any::<u32>(), 0..40)) {
            let cp = canonical();
            let addrs: Vec<Ipv4Addr> = addrs.into_iter().map(Ipv4Addr::from).collect();
            let mut out = vec![Ipv4Addr::LOCALHOST];
            cp.anonymize_v4_many(&addrs, &mut out);
            let each: Vec<Ipv4Addr> = addrs.iter().map(|a| cp.anonymize_v4(*a)).collect();
            prop_assert_eq!(out, each);
        }

        #[test]
        fn deanonymize_inverts_anonymize(v4: u32, v6: u128) {
            let cp = canonical();
            let a4 = Ipv4Addr::from(v4);
            let a6 = Ipv6Addr::from(v6);
            prop_assert_eq!(cp.deanonymize_v4(cp.anonymize_v4(a4)), a4);
            prop_assert_eq!(cp.deanonymize_v6(cp.anonymize_v6(a6)), a6);
        }
    }
}
