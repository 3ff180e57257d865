//! The in-memory prefix table: longest-prefix match in one binary search.
//!
//! Every prefix is a 128-bit key (IPv4 as IPv4-mapped IPv6, `::ffff:a.b.c.d`, length + 96).
//! Prefixes are either nested or disjoint, so the address space cuts into disjoint ranges, each
//! owned by the most specific prefix covering it (or by nobody): the table is the sorted array of
//! the ranges' first addresses and, beside it, their owners. A lookup is one binary search over
//! that array. Memory: 16 bytes per prefix (owner: organisation, interned abuse mailbox, length,
//! layer) plus 20 bytes per range (at most two ranges per prefix, plus one).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::model::Layer;

/// What a prefix points to, as given to [`PrefixTableBuilder::push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixEntry {
    /// The organisation's database id (for [`crate::Registry::resolve`]).
    pub org: i64,
    /// The organisation's layer.
    pub layer: Layer,
    /// The resource's own abuse mailbox, when it has one (RIPE `abuse-c:` on the inetnum).
    pub abuse_mail: Option<String>,
}

/// The result of a longest-prefix match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixHit<'a> {
    /// The most specific prefix holding the address.
    pub prefix: IpNet,
    /// The organisation's database id (for [`crate::Registry::resolve`]).
    pub org: i64,
    /// The organisation's layer.
    pub layer: Layer,
    /// The resource's own abuse mailbox, when it has one.
    pub abuse_mail: Option<&'a str>,
}

/// A prefix's owner: 16 bytes; mailboxes are interned.
#[derive(Clone, Copy)]
struct Slot {
    org: i64,
    mail: u32,
    /// Prefix length in the 128-bit space.
    len: u8,
    manual: bool,
}

const NO_MAIL: u32 = u32::MAX;
/// The owner of a range no prefix covers.
const GAP: u32 = u32::MAX;

/// An immutable longest-prefix-match table over IPv4 and IPv6 prefixes.
pub struct PrefixTable {
    /// First address of each range, ascending; `starts[0] == 0`.
    starts: Vec<u128>,
    /// Owner of each range: an index into `slots`, or [`GAP`].
    owners: Vec<u32>,
    slots: Vec<Slot>,
    mails: Vec<Box<str>>,
    prefixes: usize,
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

const MAPPED: u128 = 0xffff_0000_0000;

/// The 128-bit key of an address: IPv4 (and IPv4-mapped IPv6) as `::ffff:a.b.c.d`.
fn key_of(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => MAPPED | u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn net_key(net: IpNet) -> (u128, u8) {
    match net {
        IpNet::V4(n) => (key_of(IpAddr::V4(n.network())), n.prefix_len() + 96),
        IpNet::V6(n) => (u128::from(n.network()), n.prefix_len()),
    }
}

fn key_net(key: u128, len: u8) -> IpNet {
    if len >= 96 && key >> 32 == 0xffff {
        let v4 = std::net::Ipv4Addr::from((key & 0xffff_ffff) as u32);
        if let Ok(n) = Ipv4Net::new(v4, len - 96) {
            return IpNet::V4(n);
        }
    }
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(key), len.min(128)).unwrap_or_default())
}

/// Collects prefixes; [`PrefixTableBuilder::build`] sorts them into a [`PrefixTable`].
#[derive(Default)]
pub struct PrefixTableBuilder {
    /// (key, len, manual, slot): 32 bytes each; the slot number is the order of insertion
    items: Vec<(u128, u8, bool, u32)>,
    slots: Vec<Slot>,
    mails: Vec<Box<str>>,
    mail_ids: HashMap<String, u32>,
}

impl PrefixTableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a prefix. For the same prefix, a manual entry wins over an automatic one; among the
    /// same layer, the one added last wins.
    pub fn push(&mut self, net: IpNet, entry: PrefixEntry) {
        let (key, len) = net_key(net.trunc());
        let manual = entry.layer == Layer::Manual;
        let mail = match entry.abuse_mail {
            None => NO_MAIL,
            Some(m) => match self.mail_ids.get(&m) {
                Some(&id) => id,
                None => {
                    let id = self.mails.len() as u32;
                    self.mails.push(m.clone().into_boxed_str());
                    self.mail_ids.insert(m, id);
                    id
                }
            },
        };
        let idx = self.slots.len() as u32;
        self.slots.push(Slot {
            org: entry.org,
            mail,
            len,
            manual,
        });
        self.items.push((key, len, manual, idx));
    }

    /// The table.
    pub fn build(mut self) -> PrefixTable {
        self.mail_ids = HashMap::new();
        // by first address, outer prefixes before inner ones; for the same prefix the highest
        // priority (manual, then added last) first, so dedup keeps it
        self.items.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then((b.2, b.3).cmp(&(a.2, a.3)))
        });
        self.items.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
        let prefixes = self.items.len();
        self.items.shrink_to_fit();
        // sweep: a stack of the open (enclosing) prefixes, as (last address, slot)
        let mut starts: Vec<u128> = Vec::with_capacity(prefixes + 1);
        let mut owners: Vec<u32> = Vec::with_capacity(prefixes + 1);
        let mut emit = |start: u128, owner: u32| {
            if starts.last() == Some(&start) {
                if let Some(o) = owners.last_mut() {
                    *o = owner;
                }
            } else if owners.last() != Some(&owner) {
                starts.push(start);
                owners.push(owner);
            }
        };
        emit(0, GAP);
        let mut stack: Vec<(u128, u32)> = Vec::new();
        let close =
            |stack: &mut Vec<(u128, u32)>, until: Option<u128>, emit: &mut dyn FnMut(u128, u32)| {
                while let Some(&(last, _)) = stack.last() {
                    if until.is_some_and(|start| last >= start) {
                        break;
                    }
                    stack.pop();
                    if last != u128::MAX {
                        emit(last + 1, stack.last().map_or(GAP, |t| t.1));
                    }
                }
            };
        for &(key, len, _, idx) in &self.items {
            close(&mut stack, Some(key), &mut emit);
            emit(key, idx);
            stack.push((key | !mask(len), idx));
        }
        close(&mut stack, None, &mut emit);
        // keep only the slots still referenced, renumbered
        let mut slots = Vec::with_capacity(prefixes);
        let mut renumber: Vec<u32> = vec![GAP; self.slots.len()];
        for o in owners.iter_mut().filter(|o| **o != GAP) {
            let new = &mut renumber[*o as usize];
            if *new == GAP {
                slots.push(self.slots[*o as usize]);
                *new = (slots.len() - 1) as u32;
            }
            *o = *new;
        }
        starts.shrink_to_fit();
        owners.shrink_to_fit();
        slots.shrink_to_fit();
        PrefixTable {
            starts,
            owners,
            slots,
            mails: self.mails,
            prefixes,
        }
    }
}

impl PrefixTable {
    /// The most specific prefix holding `addr` (an IPv4-mapped IPv6 address is looked up as
    /// the IPv4 address it carries).
    pub fn lookup(&self, addr: IpAddr) -> Option<PrefixHit<'_>> {
        let key = key_of(addr);
        let i = self.starts.partition_point(|&s| s <= key);
        let owner = *self.owners.get(i.checked_sub(1)?)?;
        let s = self.slots.get(owner as usize)?;
        Some(PrefixHit {
            prefix: key_net(key & mask(s.len), s.len),
            org: s.org,
            layer: if s.manual {
                Layer::Manual
            } else {
                Layer::Automatic
            },
            abuse_mail: self.mails.get(s.mail as usize).map(|m| &**m),
        })
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.prefixes
    }

    /// Whether the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.prefixes == 0
    }

    /// Number of disjoint ranges the prefixes cut the address space into.
    pub fn ranges(&self) -> usize {
        self.starts.len()
    }

    /// Approximate heap memory of the table, in bytes.
    pub fn heap_bytes(&self) -> usize {
        let mails: usize = self.mails.iter().map(|m| m.len() + 16).sum();
        self.starts.capacity() * 16
            + self.owners.capacity() * 4
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + mails
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(org: i64, layer: Layer) -> PrefixEntry {
        PrefixEntry {
            org,
            layer,
            abuse_mail: None,
        }
    }

    fn table(items: &[(&str, i64, Layer)]) -> PrefixTable {
        let mut b = PrefixTableBuilder::new();
        for (n, org, layer) in items {
            b.push(n.parse().unwrap(), entry(*org, *layer));
        }
        b.build()
    }

    fn org(t: &PrefixTable, a: &str) -> Option<(i64, String)> {
        t.lookup(a.parse().unwrap())
            .map(|h| (h.org, h.prefix.to_string()))
    }

    #[test]
    fn nested_prefixes_match_the_most_specific() {
        let t = table(&[
            ("10.0.0.0/8", 1, Layer::Automatic),
            ("10.1.0.0/16", 2, Layer::Automatic),
            ("10.1.2.0/24", 3, Layer::Automatic),
            ("2001:db8::/32", 4, Layer::Automatic),
            ("2001:db8:1::/48", 5, Layer::Automatic),
        ]);
        assert_eq!(org(&t, "10.1.2.3"), Some((3, "10.1.2.0/24".into())));
        assert_eq!(org(&t, "10.1.3.3"), Some((2, "10.1.0.0/16".into())));
        assert_eq!(org(&t, "10.200.0.1"), Some((1, "10.0.0.0/8".into())));
        assert_eq!(org(&t, "11.0.0.1"), None);
        assert_eq!(
            org(&t, "2001:db8:1::9"),
            Some((5, "2001:db8:1::/48".into()))
        );
        assert_eq!(org(&t, "2001:db8:2::9"), Some((4, "2001:db8::/32".into())));
        assert_eq!(org(&t, "2001:db9::1"), None);
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn ipv4_mapped_ipv6_address_is_looked_up_as_ipv4() {
        let t = table(&[("192.0.2.0/24", 7, Layer::Automatic)]);
        assert_eq!(
            org(&t, "::ffff:192.0.2.77"),
            Some((7, "192.0.2.0/24".into()))
        );
        // IPv4-compatible (deprecated) form is not IPv4
        assert_eq!(org(&t, "::192.0.2.77"), None);
    }

    #[test]
    fn manual_entry_wins_for_the_same_prefix_whatever_the_order() {
        let t = table(&[
            ("192.0.2.0/24", 9, Layer::Manual),
            ("192.0.2.0/24", 1, Layer::Automatic),
        ]);
        assert_eq!(org(&t, "192.0.2.1").unwrap().0, 9);
        let t = table(&[
            ("192.0.2.0/24", 1, Layer::Automatic),
            ("192.0.2.0/24", 9, Layer::Manual),
        ]);
        assert_eq!(org(&t, "192.0.2.1").unwrap().0, 9);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn adjacent_and_sibling_prefixes_hand_back_to_the_enclosing_one() {
        let t = table(&[
            ("10.0.0.0/8", 1, Layer::Automatic),
            ("10.0.0.0/24", 2, Layer::Automatic),
            ("10.0.1.0/24", 3, Layer::Automatic),
            ("10.0.1.128/25", 4, Layer::Automatic),
            ("10.0.3.0/24", 5, Layer::Automatic),
            ("255.255.255.255/32", 6, Layer::Automatic),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
                7,
                Layer::Automatic,
            ),
        ]);
        let o = |a: &str| org(&t, a).map(|x| x.0);
        assert_eq!(o("9.255.255.255"), None);
        assert_eq!(o("10.0.0.255"), Some(2));
        assert_eq!(o("10.0.1.0"), Some(3));
        assert_eq!(o("10.0.1.200"), Some(4));
        assert_eq!(o("10.0.2.0"), Some(1));
        assert_eq!(o("10.0.3.255"), Some(5));
        assert_eq!(o("10.0.4.0"), Some(1));
        assert_eq!(o("10.255.255.255"), Some(1));
        assert_eq!(o("11.0.0.0"), None);
        assert_eq!(o("255.255.255.255"), Some(6));
        assert_eq!(o("255.255.255.254"), None);
        assert_eq!(o("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(7));
        assert_eq!(o("::"), None);
        assert!(
            PrefixTableBuilder::new()
                .build()
                .lookup("1.2.3.4".parse().unwrap())
                .is_none()
        );
    }

    proptest::proptest! {
        #[test]
        fn lookup_equals_a_linear_longest_prefix_scan(
            nets in proptest::collection::vec((0u32..64, 20u8..=32), 0..40),
            probes in proptest::collection::vec(0u32..64, 1..40),
        ) {
            // prefixes and addresses crowded into 10.0.0.0/26 so that they nest and touch
            let nets: Vec<Ipv4Net> = nets
                .iter()
                .map(|&(a, l)| Ipv4Net::new(std::net::Ipv4Addr::from(0x0a00_0000 + a), l).unwrap().trunc())
                .collect();
            let mut b = PrefixTableBuilder::new();
            for (i, n) in nets.iter().enumerate() {
                b.push(IpNet::V4(*n), entry(i as i64, Layer::Automatic));
            }
            let t = b.build();
            for p in probes {
                let a = std::net::Ipv4Addr::from(0x0a00_0000 + p);
                // the longest, and among equals the last added
                let want = nets
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.contains(&a))
                    .max_by_key(|(i, n)| (n.prefix_len(), *i))
                    .map(|(i, n)| (i as i64, IpNet::V4(*n)));
                let got = t.lookup(IpAddr::V4(a)).map(|h| (h.org, h.prefix));
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn default_routes_and_host_routes() {
        let t = table(&[
            ("0.0.0.0/0", 1, Layer::Automatic),
            ("::/0", 2, Layer::Automatic),
            ("198.51.100.7/32", 3, Layer::Automatic),
        ]);
        assert_eq!(org(&t, "198.51.100.7").unwrap().0, 3);
        assert_eq!(org(&t, "198.51.100.8").unwrap().0, 1);
        assert_eq!(org(&t, "2001::1").unwrap().0, 2);
    }
}
