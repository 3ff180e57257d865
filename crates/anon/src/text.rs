//! Finding IP addresses written in free text (a log line, a detector's description, a message),
//! so that they can be pseudonymised where they occur.
//!
//! Contract: [`find_addresses`] returns every IPv4 address (dotted quad, octets 0..=255, leading
//! zeros read as decimal) and every IPv6 address (any form `std` parses: `::` compression,
//! embedded IPv4, upper or lower case) that stands whole in the text, left to right, without
//! overlaps. Whole means:
//!
//! - not glued to a word: no letter, digit or `_` right before or after it (`v1.2.3.4`,
//!   `1.2.3.4a`, `fe80::1g` are not addresses);
//! - not a piece of a longer dotted number: `1.2.3.4.5` (a version) has no address in it, but
//!   `1.2.3.4.` (the end of a sentence) has;
//! - an IPv6 address is the longest one that parses at its start and is not the middle of a
//!   colon-separated run (`12:30:45` is a time, and none of its pieces is taken for an address;
//!   `00:11:22:33:44:55` is a MAC address); `::` alone, with no digit, is not an address.
//!
//! A port after an address (`192.0.2.1:443`, `[2001:db8::1]:443`) or a zone (`fe80::1%eth0`)
//! stays outside the match. Any input is accepted: bytes outside ASCII are never part of an
//! address, and the work per byte is bounded (at most 45 candidate ends per start).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// The longest text of an IPv6 address (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
const MAX_V6: usize = 45;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_v6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Every address standing whole in `text`, with its byte range, left to right.
pub fn find_addresses(text: &str) -> Vec<(Range<usize>, IpAddr)> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !(b.is_ascii_hexdigit() || b == b':') {
            i += 1;
            continue;
        }
        if let Some((end, a)) = v6_at(s, i).or_else(|| v4_at(s, i)) {
            out.push((i..end, a));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// `text` with every address [`find_addresses`] finds replaced by what `f` returns for it (kept
/// as written when `f` returns `None`, e.g. for the recipient's own addresses).
pub fn replace_addresses(text: &str, mut f: impl FnMut(IpAddr) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (r, a) in find_addresses(text) {
        // ranges start and end at ASCII bytes: always character boundaries
        out.push_str(&text[last..r.start]);
        match f(a) {
            Some(new) => out.push_str(&new),
            None => out.push_str(&text[r.clone()]),
        }
        last = r.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Whether the byte before `i` lets an address start at `i`. `colon_ok`: a `:` right before
/// may end a label (`SRC:192.0.2.1`); for IPv6 only when that label is a word (`src:2001:db8::1`),
/// not a group of a colon-separated run (`12:30:45`, whose `30` must not start an address).
fn left_ok(s: &[u8], i: usize, v6: bool) -> bool {
    let Some(&p) = i.checked_sub(1).and_then(|k| s.get(k)) else {
        return true;
    };
    if is_word(p) {
        return false;
    }
    match p {
        // `1.2.3.4.5`: `2.3.4.5` is not an address; `...1.2.3.4` and `x.1.2.3.4` may start one
        b'.' => !(i >= 2 && s[i - 2].is_ascii_digit()),
        b':' if v6 => {
            // walk back over the hex run before the colon: a group (the run starts the text or
            // follows a separator or a colon) or the end of a word such as `src`
            let mut k = i - 1;
            while k > 0 && s[k - 1].is_ascii_hexdigit() {
                k -= 1;
            }
            if k == i - 1 {
                // `::x` or ` :x`: the colon before is not ended by a hex group
                return k == 0 || s[k - 1] != b':';
            }
            k > 0 && is_word(s[k - 1])
        }
        _ => true,
    }
}

/// Whether the bytes from `end` let an address end there.
fn right_ok(s: &[u8], end: usize, v6: bool) -> bool {
    let Some(&q) = s.get(end) else {
        return true;
    };
    let next = s.get(end + 1).copied();
    if is_word(q) {
        return false;
    }
    match q {
        b'.' => !next.is_some_and(|n| n.is_ascii_digit()),
        b':' if v6 => !next.is_some_and(|n| n.is_ascii_hexdigit() || n == b':'),
        _ => true,
    }
}

/// The IPv6 address starting at `i`: the longest candidate that parses, if it ends whole.
fn v6_at(s: &[u8], i: usize) -> Option<(usize, IpAddr)> {
    let run = s[i..]
        .iter()
        .take(MAX_V6)
        .take_while(|b| is_v6_char(**b))
        .count();
    let cand = &s[i..i + run];
    if cand.iter().filter(|b| **b == b':').count() < 2 || !left_ok(s, i, true) {
        return None;
    }
    for len in (2..=run).rev() {
        let t = &cand[..len];
        // the run holds only ASCII: valid UTF-8
        let Ok(text) = std::str::from_utf8(t) else {
            continue;
        };
        if let Ok(a) = text.parse::<Ipv6Addr>() {
            if !t.iter().any(u8::is_ascii_hexdigit) {
                return None;
            }
            return right_ok(s, i + len, true).then_some((i + len, IpAddr::V6(a)));
        }
    }
    None
}

/// The dotted-quad IPv4 address starting at `i`, if it stands whole.
fn v4_at(s: &[u8], i: usize) -> Option<(usize, IpAddr)> {
    if !s[i].is_ascii_digit() || !left_ok(s, i, false) {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut k = i;
    for (n, o) in octets.iter_mut().enumerate() {
        if n > 0 {
            if s.get(k) != Some(&b'.') {
                return None;
            }
            k += 1;
        }
        let digits = s[k..]
            .iter()
            .take(4)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 3 {
            return None;
        }
        let v = s[k..k + digits]
            .iter()
            .fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
        *o = u8::try_from(v).ok()?;
        k += digits;
    }
    right_ok(s, k, false).then_some((k, IpAddr::V4(Ipv4Addr::from(octets))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<String> {
        find_addresses(t)
            .into_iter()
            .map(|(r, a)| {
                assert_eq!(t[r.clone()].parse::<IpAddr>().ok().unwrap_or(a), a);
                format!("{}={a}", &t[r])
            })
            .collect()
    }

    #[test]
    fn addresses_in_log_text_are_found_with_ports_and_punctuation_left_out() {
        assert_eq!(
            found("deny 192.0.2.1:4444 -> [2001:db8::7]:443 src=198.51.100.9. ok"),
            [
                "192.0.2.1=192.0.2.1",
                "2001:db8::7=2001:db8::7",
                "198.51.100.9=198.51.100.9"
            ]
        );
        assert_eq!(
            found("SRC:203.0.113.5 src:2001:DB8::1 (fe80::1%eth0), ::ffff:192.0.2.33; ::1"),
            [
                "203.0.113.5=203.0.113.5",
                "2001:DB8::1=2001:db8::1",
                "fe80::1=fe80::1",
                "::ffff:192.0.2.33=::ffff:192.0.2.33",
                "::1=::1"
            ]
        );
        assert_eq!(
            found("1:2:3:4:5:6:7:8 and 2001:0db8:0000:0000:0000:0000:0000:0001/64"),
            [
                "1:2:3:4:5:6:7:8=1:2:3:4:5:6:7:8",
                "2001:0db8:0000:0000:0000:0000:0000:0001=2001:db8::1"
            ]
        );
        // leading zeros are decimal, as people write them in logs
        assert_eq!(found("from 010.000.002.001"), ["010.000.002.001=10.0.2.1"]);
        // a sentence that ends in an address, and one after an ellipsis
        assert_eq!(
            found("was 192.0.2.1.\n...192.0.2.2"),
            ["192.0.2.1=192.0.2.1", "192.0.2.2=192.0.2.2"]
        );
        assert_eq!(
            found("2001:db8::1: connection refused"),
            ["2001:db8::1=2001:db8::1"]
        );
    }

    #[test]
    fn versions_times_macs_and_words_are_not_addresses() {
        for t in [
            "version 1.2.3.4.5",
            "1.2.3.4.5.6.7.8",
            "v1.2.3.4 and 1.2.3.4a and x1.2.3.4",
            "at 12:30:45 and 14:00:06.500Z, 2026-11-24T14:00:06Z",
            "mac 00:11:22:33:44:55",
            "std::io::Error, Foo::bar, Foo::1",
            "::",
            ":::: ....",
            "256.1.1.1 1.2.3 1.2.3.4444 1..2.3.4",
            "fe80::1g",
            "1:2:3:4:5:6:7:8:9",
            "deadbeef 1.5 10.0.19041.1",
        ] {
            assert_eq!(found(t), Vec::<String>::new(), "{t}");
        }
    }

    #[test]
    fn hostile_inputs_never_panic() {
        for t in [
            "",
            ":",
            "1",
            "1.",
            "1.2.3.",
            "€1.2.3.4€",
            "é::1é",
            "\u{0}192.0.2.1\u{0}",
            &"1.".repeat(10_000),
            &"a:".repeat(10_000),
            &":".repeat(10_000),
            &"ffff:".repeat(100),
        ] {
            let _ = find_addresses(t);
            let _ = replace_addresses(t, |a| Some(format!("<{a}>")));
        }
        assert_eq!(found("€1.2.3.4€"), ["1.2.3.4=1.2.3.4"]);
    }

    #[test]
    fn replacement_keeps_what_the_callback_declines() {
        let own: IpAddr = "198.51.100.7".parse().unwrap();
        let out = replace_addresses("198.51.100.7 hit by 203.0.113.9:80", |a| {
            (a != own).then(|| "X".to_string())
        });
        assert_eq!(out, "198.51.100.7 hit by X:80");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn third_party() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<u8>().prop_map(|o| format!("203.0.113.{o}")),
                (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("2001:db8:{a:x}::{b:x}")),
                (any::<u16>(), any::<u16>())
                    .prop_map(|(a, b)| format!("2001:DB8:7:{a:X}:0:0:0:{b:X}")),
                any::<u8>().prop_map(|o| format!("::ffff:203.0.113.{o}")),
            ]
        }

        fn filler() -> impl Strategy<Value = String> {
            proptest::string::string_regex("[0-9a-fA-Fgxz.:/\\[\\]% _\u{e9}\n-]{0,12}")
                .expect("valid regex")
        }

        proptest! {
            #[test]
            fn never_panics_on_any_text(t in any::<String>()) {
                for (r, _) in find_addresses(&t) {
                    prop_assert!(t.is_char_boundary(r.start) && t.is_char_boundary(r.end));
                }
                let _ = replace_addresses(&t, |_| Some(String::new()));
            }

            #[test]
            fn no_third_party_address_survives(
                parts in proptest::collection::vec(
                    (filler(), 0..6usize, third_party(), 0..5usize, any::<u8>(), any::<bool>()),
                    1..6,
                ),
            ) {
                const BEFORE: [&str; 6] = [" ", ",", "(", "=", "SRC:", "\t"];
                const AFTER: [&str; 5] = [" ", ", ", ") ", ". ", "\n"];
                let mut text = String::new();
                let mut third = Vec::new();
                for (fill, b, addr, a, own_octet, own) in &parts {
                    text.push_str(fill);
                    text.push_str(BEFORE[*b]);
                    let v4 = addr.starts_with("203.");
                    if *own {
                        text.push_str(&format!("198.51.100.{own_octet}"));
                    } else {
                        // a port after a v4 address, brackets around a v6 one, sometimes
                        if *a == 4 && v4 {
                            text.push_str(&format!("{addr}:8080"));
                        } else if *a == 4 {
                            text.push_str(&format!("[{addr}]:443"));
                        } else {
                            text.push_str(addr);
                        }
                        third.push(addr.clone());
                    }
                    text.push_str(AFTER[*a]);
                }
                let own_net = |a: IpAddr| matches!(a, IpAddr::V4(v) if v.octets()[..3] == [198, 51, 100]);
                let out = replace_addresses(&text, |a| (!own_net(a)).then(|| "[pseudonym]".to_string()));
                for addr in &third {
                    prop_assert!(!out.contains(addr.as_str()), "{addr} left in {out:?} (from {text:?})");
                }
                for (_, b, _, _, own_octet, own) in &parts {
                    let _ = b;
                    if *own {
                        let own_text = format!("198.51.100.{own_octet}");
                        prop_assert!(out.contains(&own_text), "{own_text} lost in {out:?}");
                    }
                }
            }
        }
    }
}
