//! Longest-prefix match over IPv4 and IPv6 prefixes, on the 16-byte address form of
//! [`pharos_model::flow::FlowBatch`].
//!
//! Contract: [`PrefixMap::lookup`] returns the value of the longest inserted prefix that contains
//! the address, IPv4 prefixes matching only IPv4 rows and IPv6 prefixes only IPv6 rows. Cost: one
//! hash probe per distinct prefix length of that family, longest first.

use foldhash::fast::RandomState;
use ipnet::IpNet;
use std::collections::HashMap;

/// A longest-prefix-match table from prefixes to `V`.
#[derive(Debug, Clone)]
pub struct PrefixMap<V> {
    map: HashMap<(u128, u8, bool), V, RandomState>,
    /// Distinct IPv4 lengths (0..=32), longest first.
    lens_v4: Vec<u8>,
    /// Distinct IPv6 lengths (0..=128), longest first.
    lens_v6: Vec<u8>,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        Self {
            map: HashMap::default(),
            lens_v4: Vec::new(),
            lens_v6: Vec::new(),
        }
    }
}

#[inline]
pub(crate) fn mask(addr: u128, bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(bits.min(128))))
    }
}

impl<V: Copy> PrefixMap<V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no prefix was inserted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Inserts (or replaces) `net -> v`.
    pub fn insert(&mut self, net: IpNet, v: V) {
        let (addr, bits, v4, lens) = match net {
            IpNet::V4(n) => {
                let a = u128::from(n.network().to_ipv6_mapped());
                (a, n.prefix_len() + 96, true, &mut self.lens_v4)
            }
            IpNet::V6(n) => (
                u128::from(n.network()),
                n.prefix_len(),
                false,
                &mut self.lens_v6,
            ),
        };
        if !lens.contains(&bits) {
            lens.push(bits);
            lens.sort_unstable_by(|a, b| b.cmp(a));
        }
        self.map.insert((mask(addr, bits), bits, v4), v);
    }

    /// The value of the longest prefix holding `addr` (16 bytes, IPv4-mapped when `v4`).
    #[inline]
    pub fn lookup(&self, addr: &[u8; 16], v4: bool) -> Option<V> {
        if self.map.is_empty() {
            return None;
        }
        let a = u128::from_be_bytes(*addr);
        let lens = if v4 { &self.lens_v4 } else { &self.lens_v6 };
        for &bits in lens {
            if let Some(v) = self.map.get(&(mask(a, bits), bits, v4)) {
                return Some(*v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::flow::addr_to_bytes;
    use std::net::IpAddr;

    fn look(m: &PrefixMap<u32>, a: &str) -> Option<u32> {
        let (b, v4) = addr_to_bytes(&a.parse::<IpAddr>().unwrap());
        m.lookup(&b, v4)
    }

    #[test]
    fn longest_prefix_wins_and_families_stay_apart() {
        let mut m = PrefixMap::new();
        m.insert("10.0.0.0/8".parse().unwrap(), 1);
        m.insert("10.1.0.0/16".parse().unwrap(), 2);
        m.insert("10.1.2.3/32".parse().unwrap(), 3);
        m.insert("2001:db8::/32".parse().unwrap(), 4);
        m.insert("::/0".parse().unwrap(), 5);
        assert_eq!(look(&m, "10.9.9.9"), Some(1));
        assert_eq!(look(&m, "10.1.9.9"), Some(2));
        assert_eq!(look(&m, "10.1.2.3"), Some(3));
        assert_eq!(look(&m, "11.0.0.1"), None, "::/0 does not hold IPv4 rows");
        assert_eq!(look(&m, "2001:db8::1"), Some(4));
        assert_eq!(look(&m, "2001:db9::1"), Some(5));
        assert_eq!(
            look(&m, "::ffff:10.1.2.3"),
            Some(5),
            "mapped IPv6 stays IPv6"
        );
    }

    #[test]
    fn host_routes_and_default_route() {
        let mut m = PrefixMap::new();
        m.insert("0.0.0.0/0".parse().unwrap(), 7);
        m.insert("192.0.2.1/32".parse().unwrap(), 8);
        assert_eq!(look(&m, "1.2.3.4"), Some(7));
        assert_eq!(look(&m, "192.0.2.1"), Some(8));
    }
}
