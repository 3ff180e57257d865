//! All published Crypto-PAn vectors (`../shared/testvectors/cryptopan-vectors.json`: the reference
//! distribution's sample and the Go/C#/Perl/node implementations' sets, IPv4 and IPv6), and
//! prefix preservation on random addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pharos_anon::{CryptoPan, Key};
use pharos_model::conformance::{shared_dir, skip};
use proptest::prelude::*;

#[test]
fn all_144_published_vectors_map_as_published() {
    let path = shared_dir().join("testvectors/cryptopan-vectors.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        skip(&format!("{} is absent", path.display()));
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).expect("vectors are JSON");
    let mut checked = 0;
    let mut failures = Vec::new();
    for set in doc["sets"].as_array().expect("sets") {
        let key_hex = set["key_hex"].as_str().expect("key_hex");
        let cp = CryptoPan::new(&Key::from_hex(key_hex).expect("key"));
        for v in set["vectors"].as_array().expect("vectors") {
            let (i, o) = (v["in"].as_str().unwrap(), v["out"].as_str().unwrap());
            let input: IpAddr = i.parse().expect("vector input");
            let want: IpAddr = o.parse().expect("vector output");
            let got = cp.anonymize(input);
            if got != want {
                failures.push(format!("key {}..: {i} -> {got}, want {o}", &key_hex[..8]));
            }
            assert_eq!(cp.deanonymize(got), input, "{i} does not round-trip");
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 144, "the vector file holds 144 pairs");
}

/// Length of the common prefix of two addresses of `bits` bits (in the top bits of a u128).
fn common_prefix(a: u128, b: u128, bits: u32) -> u32 {
    (a ^ b).leading_zeros().min(bits)
}

fn any_key() -> impl Strategy<Value = [u8; 32]> {
    prop::array::uniform32(any::<u8>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shared_prefix_length_is_preserved(key in any_key(), a: u32, b: u32, c: u128, d: u128, keep in 0u32..128) {
        let cp = CryptoPan::new(&Key::from_bytes(key));
        // b shares a random-length prefix with a half of the time, so long prefixes are tried too
        let b = if keep < 64 { a & !(u32::MAX >> (keep % 32)) | b & (u32::MAX >> (keep % 32)) } else { b };
        let d = if keep < 64 { c & !(u128::MAX >> keep) | d & (u128::MAX >> keep) } else { d };
        let (ea, eb) = (cp.anonymize_v4(Ipv4Addr::from(a)), cp.anonymize_v4(Ipv4Addr::from(b)));
        prop_assert_eq!(
            common_prefix(u128::from(u32::from(ea)) << 96, u128::from(u32::from(eb)) << 96, 32),
            common_prefix(u128::from(a) << 96, u128::from(b) << 96, 32)
        );
        let (ec, ed) = (cp.anonymize_v6(Ipv6Addr::from(c)), cp.anonymize_v6(Ipv6Addr::from(d)));
        prop_assert_eq!(
            common_prefix(u128::from(ec), u128::from(ed), 128),
            common_prefix(c, d, 128)
        );
    }
}
