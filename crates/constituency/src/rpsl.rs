//! RPSL (RFC 2622) objects as the RIPE database dumps them, read one object at a time.
//!
//! `attribute: value` lines; a line starting with a space, a tab or `+` continues the previous
//! attribute; a blank line ends an object; lines starting with `%` or `#` are comments; `#` in a
//! value starts an end-of-line comment. Only the attributes the caller asks for are kept, so an
//! object's memory is bounded by what is wanted, not by what a file holds.

use std::io::{self, BufRead};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::lines::{Line, Lines};

/// At most this many kept attribute values per object; more are dropped (counted). With values
/// bounded by the line limit, an object never holds more than 64 values of 64 KiB.
const MAX_ATTRS: usize = 64;

/// One RPSL object: its kept attributes in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Object {
    /// `(attribute name in lower case, value)`, continuation lines joined by a space.
    pub attrs: Vec<(String, String)>,
    /// Line of the object's first attribute.
    pub line: u64,
    /// The object's class: its first attribute's name, kept even if not asked for.
    pub class: String,
    /// Whether a line of the object was refused as over long (the object may be incomplete).
    pub had_long_line: bool,
}

impl Object {
    /// The first value of an attribute.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Counts of what the reader skipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines over the length limit.
    pub long_lines: u64,
    /// Lines that are neither attributes, continuations, comments nor blank.
    pub bad_lines: u64,
    /// Attribute values dropped because an object had too many.
    pub dropped_attrs: u64,
}

/// Streams RPSL objects from a reader.
pub struct RpslReader<R> {
    lines: Lines<R>,
    wanted: &'static [&'static str],
    max_value: usize,
    /// What was skipped so far.
    pub stats: ReadStats,
}

impl<R: BufRead> RpslReader<R> {
    /// A reader keeping only the `wanted` attributes (lower case), lines of at most `max_line`
    /// bytes.
    pub fn new(reader: R, wanted: &'static [&'static str], max_line: usize) -> Self {
        Self {
            lines: Lines::new(reader, max_line),
            wanted,
            max_value: max_line,
            stats: ReadStats::default(),
        }
    }

    /// The next object, `None` at the end of the input.
    pub fn next_object(&mut self) -> io::Result<Option<Object>> {
        let mut obj = Object::default();
        let mut started = false;
        // whether the attribute being continued is kept
        let mut current_kept = false;
        loop {
            let number = self.lines.number + 1;
            let line = match self.lines.next_line()? {
                None => break,
                Some(Line::TooLong) => {
                    self.stats.long_lines += 1;
                    if started {
                        obj.had_long_line = true;
                    }
                    current_kept = false;
                    continue;
                }
                Some(Line::Text(t)) => t,
            };
            if line.trim().is_empty() {
                if started {
                    break;
                }
                continue;
            }
            let first = line.as_bytes()[0];
            if first == b'%' || first == b'#' {
                continue;
            }
            if first == b' ' || first == b'\t' || first == b'+' {
                if !started {
                    self.stats.bad_lines += 1;
                    continue;
                }
                if current_kept {
                    let more = strip_comment(&line[1..]).trim();
                    if let Some((_, v)) = obj.attrs.last_mut()
                        && !more.is_empty()
                    {
                        if v.len() + 1 + more.len() > self.max_value {
                            // a value continued past the line limit counts as an over-long line
                            self.stats.long_lines += 1;
                            obj.had_long_line = true;
                            current_kept = false;
                            continue;
                        }
                        if !v.is_empty() {
                            v.push(' ');
                        }
                        v.push_str(more);
                    }
                }
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                self.stats.bad_lines += 1;
                current_kept = false;
                continue;
            };
            if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
                self.stats.bad_lines += 1;
                current_kept = false;
                continue;
            }
            let name = name.to_ascii_lowercase();
            if !started {
                started = true;
                obj.line = number;
                obj.class.clone_from(&name);
            }
            current_kept = self.wanted.contains(&name.as_str());
            if current_kept {
                if obj.attrs.len() >= MAX_ATTRS {
                    self.stats.dropped_attrs += 1;
                    current_kept = false;
                    continue;
                }
                obj.attrs
                    .push((name, strip_comment(value).trim().to_string()));
            }
        }
        Ok(started.then_some(obj))
    }
}

fn strip_comment(v: &str) -> &str {
    match v.find('#') {
        Some(i) => &v[..i],
        None => v,
    }
}

/// Why an `inetnum:` or `inet6num:` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError(pub String);

/// Parses an `inetnum:` value (`a - b`, or a prefix) or an `inet6num:` value (a prefix, or
/// `a - b`) into the minimal list of CIDR prefixes covering exactly that range.
pub fn parse_range(value: &str) -> Result<Vec<IpNet>, RangeError> {
    let value = value.trim();
    if let Some((a, b)) = value.split_once('-') {
        let (a, b) = (a.trim(), b.trim());
        let a: IpAddr = a
            .parse()
            .map_err(|_| RangeError(format!("{a:?} is not an address; expected \"a - b\"")))?;
        let b: IpAddr = b
            .parse()
            .map_err(|_| RangeError(format!("{b:?} is not an address; expected \"a - b\"")))?;
        range_to_cidrs(a, b)
    } else {
        let net: IpNet = value.parse().map_err(|_| {
            RangeError(format!(
                "{value:?} is neither a range \"a - b\" nor a prefix \"a/len\""
            ))
        })?;
        Ok(vec![net.trunc()])
    }
}

/// The minimal list of CIDR prefixes covering `first..=last` exactly, in address order.
pub fn range_to_cidrs(first: IpAddr, last: IpAddr) -> Result<Vec<IpNet>, RangeError> {
    let (a, b, width) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => {
            return Err(RangeError(format!("{first} - {last} mixes IPv4 and IPv6")));
        }
    };
    if a > b {
        return Err(RangeError(format!(
            "{first} - {last} ends before it starts; write the lower address first"
        )));
    }
    let mut out = Vec::new();
    let mut start = a;
    loop {
        // the largest block aligned at `start` ...
        let align = if start == 0 {
            width
        } else {
            start.trailing_zeros().min(width)
        };
        // ... that does not go past `b`
        let span = b - start; // number of addresses - 1
        let fit = if span == u128::MAX {
            128
        } else {
            127 - (span + 1).leading_zeros()
        };
        let size = align.min(fit);
        let len = (width - size) as u8;
        out.push(match width {
            32 => IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(start as u32), len)
                    .map_err(|e| RangeError(e.to_string()))?,
            ),
            _ => IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(start), len).map_err(|e| RangeError(e.to_string()))?,
            ),
        });
        if size >= 128 {
            break;
        }
        match start.checked_add(1u128 << size) {
            Some(next) if next <= b && next != 0 => start = next,
            _ => break,
        }
        if width == 32 && start > u128::from(u32::MAX) {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANT: &[&str] = &["inetnum", "org", "abuse-c", "remarks", "netname"];

    fn objects(text: &str) -> (Vec<Object>, ReadStats) {
        let mut r = RpslReader::new(text.as_bytes(), WANT, 1024);
        let mut out = Vec::new();
        while let Some(o) = r.next_object().unwrap() {
            out.push(o);
        }
        (out, r.stats)
    }

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn continuation_lines_with_space_tab_and_plus_join_the_previous_value() {
        let (o, _) = objects(
            "inetnum: 192.0.2.0 - 192.0.2.255\nremarks: first\n second\n\tthird\n+\n+fourth\nnetname: X\n",
        );
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].get("remarks"), Some("first second third fourth"));
        assert_eq!(o[0].get("netname"), Some("X"));
        assert_eq!(o[0].class, "inetnum");
    }

    #[test]
    fn comments_are_skipped_and_blank_lines_separate_objects() {
        let (o, _) = objects(
            "% RIPE dump header\n# another\n\ninetnum: 10.0.0.0 - 10.0.0.255\norg: ORG-A # eol comment\n% inside\n\n\n   \ninetnum: 10.0.1.0 - 10.0.1.255\nmnt-by: M\nabuse-c: AB1-RIPE\n",
        );
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].get("org"), Some("ORG-A"));
        assert_eq!(o[0].line, 4);
        assert_eq!(o[1].get("abuse-c"), Some("AB1-RIPE"));
        // not asked for: not kept
        assert_eq!(o[1].get("mnt-by"), None);
    }

    #[test]
    fn attribute_names_are_case_insensitive_and_garbage_lines_are_counted() {
        let (o, s) = objects(
            " orphan continuation\nINETNUM: 1.2.3.0 - 1.2.3.255\nno colon here\nOrg:ORG-B\n",
        );
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].get("org"), Some("ORG-B"));
        assert_eq!(s.bad_lines, 2);
    }

    #[test]
    fn over_long_line_marks_the_object_and_is_counted() {
        let long = "x".repeat(2000);
        let (o, s) = objects(&format!(
            "inetnum: 1.0.0.0 - 1.0.0.255\nremarks: {long}\norg: O\n\ninetnum: 2.0.0.0/8\n"
        ));
        assert_eq!(o.len(), 2);
        assert!(o[0].had_long_line);
        assert_eq!(o[0].get("org"), Some("O"));
        assert!(!o[1].had_long_line);
        assert_eq!(s.long_lines, 1);
    }

    #[test]
    fn value_continued_past_the_limit_marks_the_object() {
        let line = format!(" {}\n", "y".repeat(600));
        let text = format!("inetnum: 1.0.0.0/8\nremarks: x\n{}org: O\n", line.repeat(3));
        let (o, s) = objects(&text);
        assert!(o[0].had_long_line);
        assert_eq!(s.long_lines, 1);
        assert!(o[0].get("remarks").unwrap().len() <= 1024);
    }

    #[test]
    fn aligned_range_is_one_prefix() {
        assert_eq!(
            parse_range("192.0.2.0 - 192.0.2.255").unwrap(),
            nets(&["192.0.2.0/24"])
        );
        assert_eq!(
            parse_range("0.0.0.0 - 255.255.255.255").unwrap(),
            nets(&["0.0.0.0/0"])
        );
        assert_eq!(
            parse_range("10.0.0.5 - 10.0.0.5").unwrap(),
            nets(&["10.0.0.5/32"])
        );
    }

    #[test]
    fn odd_range_is_the_minimal_prefix_set() {
        assert_eq!(
            parse_range("192.0.2.1 - 192.0.2.10").unwrap(),
            nets(&[
                "192.0.2.1/32",
                "192.0.2.2/31",
                "192.0.2.4/30",
                "192.0.2.8/31",
                "192.0.2.10/32"
            ])
        );
        assert_eq!(
            parse_range("10.0.0.0 - 10.0.2.255").unwrap(),
            nets(&["10.0.0.0/23", "10.0.2.0/24"])
        );
        assert_eq!(
            parse_range("255.255.255.254 - 255.255.255.255").unwrap(),
            nets(&["255.255.255.254/31"])
        );
        assert_eq!(
            parse_range("0.0.0.0 - 0.0.0.2").unwrap(),
            nets(&["0.0.0.0/31", "0.0.0.2/32"])
        );
    }

    #[test]
    fn ipv6_ranges_and_prefixes() {
        assert_eq!(
            parse_range("2001:db8::/32").unwrap(),
            nets(&["2001:db8::/32"])
        );
        assert_eq!(
            parse_range("2001:db8::1/32").unwrap(),
            nets(&["2001:db8::/32"])
        );
        assert_eq!(
            parse_range("2001:db8:: - 2001:db8::2").unwrap(),
            nets(&["2001:db8::/127", "2001:db8::2/128"])
        );
        assert_eq!(
            parse_range(":: - ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").unwrap(),
            nets(&["::/0"])
        );
        assert_eq!(
            parse_range(
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe - ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            )
            .unwrap(),
            nets(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"])
        );
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        assert!(
            parse_range("10.0.0.9 - 10.0.0.1")
                .unwrap_err()
                .0
                .contains("lower address first")
        );
        assert!(
            parse_range("10.0.0.0 - ::1")
                .unwrap_err()
                .0
                .contains("mixes")
        );
        assert!(parse_range("banana").is_err());
        assert!(parse_range("10.0.0.0 - ").is_err());
    }

    proptest::proptest! {
        #[test]
        fn range_cover_is_exact_and_minimal(a: u32, b: u32) {
            let (a, b) = (a.min(b), a.max(b));
            let cidrs = range_to_cidrs(IpAddr::V4(a.into()), IpAddr::V4(b.into())).unwrap();
            let mut next = u64::from(a);
            for c in &cidrs {
                let IpNet::V4(c) = c else { panic!() };
                proptest::prop_assert_eq!(u64::from(u32::from(c.network())), next);
                next = u64::from(u32::from(c.broadcast())) + 1;
            }
            proptest::prop_assert_eq!(next, u64::from(b) + 1);
            // minimal: no two neighbours of equal length that could merge into one aligned block
            proptest::prop_assert!(cidrs.len() <= 62);
        }

        #[test]
        fn reader_never_panics_on_any_bytes(data: Vec<u8>) {
            let mut r = RpslReader::new(&data[..], WANT, 64);
            while let Ok(Some(_)) = r.next_object() {}
        }

        #[test]
        fn reader_never_panics_on_rpsl_like_text(s in "([a-z%#+ \t:-]{0,12}(\r?\n)?){0,40}") {
            let mut r = RpslReader::new(s.as_bytes(), WANT, 16);
            while let Ok(Some(o)) = r.next_object() {
                for (_, v) in &o.attrs { let _ = parse_range(v); }
            }
        }
    }
}
