//! ipcrypt-pfx: the prefix-preserving mode of ipcrypt (draft-denis-ipcrypt, "ipcrypt-pfx"), a
//! second algorithm next to Crypto-PAn.
//!
//! Construction (as the draft and its reference implementation): the 32-byte key is two AES-128
//! keys K1, K2 that must differ; an address is taken as 16 bytes (IPv4 as IPv4-mapped IPv6,
//! whose first 96 bits are kept, so IPv4 stays IPv4); output bit `p` (from the most significant
//! bit, starting at 96 for IPv4 and 0 for IPv6) is input bit `p` XOR the least significant bit of
//! AES_K1(P) XOR AES_K2(P), where P holds the input bits before `p` behind a separator bit
//! (`padded prefix`). Two addresses sharing a k-bit prefix share a k-bit prefix afterwards, and
//! the mapping can be reversed with the key. As with Crypto-PAn here, the family decides the
//! path: an IPv6 address, IPv4-mapped `::ffff:a.b.c.d` included, takes the 128-bit path (the
//! reference does the same: its IPv4 path is for IPv4 addresses only).
//!
//! Cost: two AES blocks per address bit (64 for IPv4, 256 for IPv6); no per-key table.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use crate::key::Key;

/// Why a key cannot be used for ipcrypt-pfx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpcryptError {
    /// Both 16-byte halves of the key are the same: the two AES encryptions would cancel out.
    #[error(
        "the key's two 16-byte halves are equal, which ipcrypt-pfx forbids (the two AES encryptions would cancel out): generate a new random 32-byte key, e.g. `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`"
    )]
    EqualHalves,
}

/// The ipcrypt-pfx permutation of one key. `Debug` is redacted; the ciphers wipe their round
/// keys on drop.
pub struct IpcryptPfx {
    k1: Aes128,
    k2: Aes128,
}

impl fmt::Debug for IpcryptPfx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IpcryptPfx { key: <redacted> }")
    }
}

/// The 16-byte form of an address (IPv4 as IPv4-mapped IPv6) and the first bit to permute.
fn to_bits(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => ((0xffff_u128 << 32) | u128::from(u32::from(a)), 96),
        IpAddr::V6(a) => (u128::from(a), 0),
    }
}

/// The address of a 16-byte form: IPv4 when it is IPv4-mapped (as the reference does).
fn from_bits(x: u128) -> IpAddr {
    if x >> 32 == 0xffff {
        IpAddr::V4(Ipv4Addr::from(x as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(x))
    }
}

impl IpcryptPfx {
    /// The permutation of `key` (K1 its first 16 bytes, K2 the last 16).
    pub fn new(key: &Key) -> Result<Self, IpcryptError> {
        let k = key.bytes();
        if k[..16] == k[16..] {
            return Err(IpcryptError::EqualHalves);
        }
        let mut half = [0u8; 16];
        half.copy_from_slice(&k[..16]);
        let k1 = Aes128::new(&Array::from(half));
        half.copy_from_slice(&k[16..]);
        let k2 = Aes128::new(&Array::from(half));
        half.zeroize();
        Ok(Self { k1, k2 })
    }

    /// The keystream bit for the padded prefix `padded`: the last bit of AES_K1 ^ AES_K2.
    fn bit(&self, padded: u128) -> u128 {
        let mut b1 = aes::Block::from(padded.to_be_bytes());
        let mut b2 = b1;
        self.k1.encrypt_block(&mut b1);
        self.k2.encrypt_block(&mut b2);
        u128::from((b1[15] ^ b2[15]) & 1)
    }

    /// Runs the permutation over `x` from bit `start`; `forward` encrypts, else decrypts (the
    /// padded prefix then takes the decrypted bits).
    fn run(&self, x: u128, start: u32, forward: bool) -> u128 {
        // The separator bit sits right before the prefix: for IPv4 the prefix is the 96-bit
        // IPv4-mapped prefix `::ffff`, for IPv6 it is empty.
        let mut padded: u128 = if start == 96 { (1 << 96) | 0xffff } else { 1 };
        let mut out = if start == 96 { x & !0xffff_ffff } else { 0 };
        for p in start..128 {
            let pos = 127 - p;
            let input = (x >> pos) & 1;
            let output = input ^ self.bit(padded);
            out |= output << pos;
            let plain = if forward { input } else { output };
            padded = (padded << 1) | plain;
        }
        out
    }

    /// The pseudonym of `addr` (IPv4 stays IPv4).
    pub fn encrypt(&self, addr: IpAddr) -> IpAddr {
        let (x, start) = to_bits(addr);
        from_bits(self.run(x, start, true))
    }

    /// The address whose pseudonym is `anon`.
    pub fn decrypt(&self, anon: IpAddr) -> IpAddr {
        let (x, start) = to_bits(anon);
        from_bits(self.run(x, start, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ipcrypt-pfx vectors of draft-denis-ipcrypt (its reference implementation's
    /// `test_vectors.json`): key, address, pseudonym.
    const VECTORS: &[(&str, &str, &str)] = &[
        (
            "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301",
            "0.0.0.0",
            "151.82.155.134",
        ),
        (
            "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301",
            "255.255.255.255",
            "94.185.169.89",
        ),
        (
            "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301",
            "192.0.2.1",
            "100.115.72.131",
        ),
        (
            "0123456789abcdeffedcba98765432101032547698badcfeefcdab8967452301",
            "2001:db8::1",
            "c180:5dd4:2587:3524:30ab:fa65:6ab6:f88",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "10.0.0.47",
            "19.214.210.244",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "10.0.0.129",
            "19.214.210.80",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "10.0.0.234",
            "19.214.210.30",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "172.16.5.193",
            "210.78.229.136",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "172.16.97.42",
            "210.78.179.241",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "172.16.248.177",
            "210.78.121.215",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "2001:db8::a5c9:4e2f:bb91:5a7d",
            "7cec:702c:1243:f70:1956:125:b9bd:1aba",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "2001:db8::7234:d8f1:3c6e:9a52",
            "7cec:702c:1243:f70:a3ef:c8e:95c1:cd0d",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "2001:db8::f1e0:937b:26d4:8c1a",
            "7cec:702c:1243:f70:443c:c8e:6a62:b64d",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "2001:db8:3a5c:0:e7d1:4b9f:2c8a:f673",
            "7cec:702c:3503:bef:e616:96bd:be33:a9b9",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "2001:db8:9f27:0:b4e2:7a3d:5f91:c8e6",
            "7cec:702c:a504:b74e:194a:3d90:b047:2d1a",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3ca9f5ba40db214c3798f2e1c23456789a",
            "2001:db8:d8b4:0:193c:a5e7:8b2f:46d1",
            "7cec:702c:f840:aa67:1b8:e84f:ac9d:77fb",
        ),
    ];

    #[test]
    fn the_drafts_ipcrypt_pfx_vectors_pass_both_ways() {
        for (key, ip, want) in VECTORS {
            let p = IpcryptPfx::new(&Key::from_hex(key).unwrap()).unwrap();
            let ip: IpAddr = ip.parse().unwrap();
            let want: IpAddr = want.parse().unwrap();
            assert_eq!(p.encrypt(ip), want, "{ip} under {key}");
            assert_eq!(p.decrypt(want), ip, "{want} under {key}");
        }
        // an IPv4-mapped IPv6 address takes the 128-bit path; it comes back written as IPv4 (as
        // in the reference, the 16-byte form of a result decides how it is written)
        let p = IpcryptPfx::new(&Key::from_hex(VECTORS[0].0).unwrap()).unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let e = p.encrypt(mapped);
        assert_ne!(e, "100.115.72.131".parse::<IpAddr>().unwrap());
        assert!(e.is_ipv6());
        assert_eq!(p.decrypt(e), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_key_with_equal_halves_is_refused_with_the_fix() {
        let e = IpcryptPfx::new(&Key::from_bytes([7; 32])).unwrap_err();
        assert_eq!(e, IpcryptError::EqualHalves);
        assert!(e.to_string().contains("generate a new random 32-byte key"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn common_prefix(a: u128, b: u128) -> u32 {
            (a ^ b).leading_zeros()
        }

        proptest! {
            #[test]
            fn prefixes_are_preserved_and_decryption_inverts(
                key in any::<[u8; 32]>(), a in any::<u128>(), b in any::<u128>(), v4 in any::<bool>(),
            ) {
                prop_assume!(key[..16] != key[16..]);
                let p = IpcryptPfx::new(&Key::from_bytes(key)).unwrap();
                let (x, y) = if v4 {
                    (IpAddr::V4(Ipv4Addr::from(a as u32)), IpAddr::V4(Ipv4Addr::from(b as u32)))
                } else {
                    // never IPv4-mapped (that is the IPv4 path)
                    let m = |v: u128| if v >> 32 == 0xffff { v ^ (1 << 127) } else { v };
                    (IpAddr::V6(Ipv6Addr::from(m(a))), IpAddr::V6(Ipv6Addr::from(m(b))))
                };
                let (ex, ey) = (p.encrypt(x), p.encrypt(y));
                prop_assert_eq!(ex.is_ipv4(), v4);
                prop_assert_eq!(p.decrypt(ex), x);
                let (bx, by) = (to_bits(x).0, to_bits(y).0);
                let (cx, cy) = (to_bits(ex).0, to_bits(ey).0);
                prop_assert_eq!(common_prefix(bx, by), common_prefix(cx, cy));
            }
        }
    }
}
