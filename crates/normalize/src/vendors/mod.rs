//! One module per format, and the detection table that orders them.
//!
//! Contract: `detect` is a cheap, allocation-free probe (prefix, substring or app-name test) that
//! may have false positives; `normalize` returns `None` when the record is not of its format after
//! all, so auto-detection moves on to the next matching entry.

use std::cell::Cell;

use crate::build::Draft;
use crate::fields::same;
use crate::{FormatName, LogInput};

mod arbor;
mod barracuda;
mod cef;
mod checkpoint;
mod cisco_asa;
mod cisco_esa;
mod cisco_ios;
mod cisco_ise;
mod cisco_meraki;
mod cisco_wsa;
mod clamav;
mod f5_bigip;
mod filterlog;
mod fortiddos;
mod fortigate;
mod fortimail;
mod fortiweb;
mod haproxy;
mod imperva;
mod juniper_srx;
mod leef;
mod linux_auth;
mod modsecurity;
mod netfilter;
mod panos;
mod pf;
mod snort;
mod sonicwall;
mod sophos;
mod squid;
mod sshd;
mod stormshield;
mod sudo;
mod suricata_eve;
mod watchguard;
mod web_access;
mod web_error;
mod zscaler;

/// One format: its name, its cheap probe and its normaliser.
pub struct Entry {
    pub name: FormatName,
    pub detect: fn(&Probe<'_, '_>) -> bool,
    pub normalize: fn(&LogInput<'_>) -> Option<Draft>,
}

/// Formats from the most specific probe to the least specific.
pub static TABLE: &[Entry] = &[
    Entry {
        name: "cef",
        detect: cef::detect,
        normalize: cef::normalize,
    },
    Entry {
        name: "leef",
        detect: leef::detect,
        normalize: leef::normalize,
    },
    Entry {
        name: "sonicwall",
        detect: sonicwall::detect,
        normalize: sonicwall::normalize,
    },
    Entry {
        name: "watchguard",
        detect: watchguard::detect,
        normalize: watchguard::normalize,
    },
    Entry {
        name: "stormshield",
        detect: stormshield::detect,
        normalize: stormshield::normalize,
    },
    Entry {
        name: "cisco-asa",
        detect: cisco_asa::detect,
        normalize: cisco_asa::normalize,
    },
    Entry {
        name: "cisco-ios",
        detect: cisco_ios::detect,
        normalize: cisco_ios::normalize,
    },
    Entry {
        name: "cisco-meraki",
        detect: cisco_meraki::detect,
        normalize: cisco_meraki::normalize,
    },
    Entry {
        name: "cisco-ise",
        detect: cisco_ise::detect,
        normalize: cisco_ise::normalize,
    },
    Entry {
        name: "cisco-esa",
        detect: cisco_esa::detect,
        normalize: cisco_esa::normalize,
    },
    Entry {
        name: "cisco-wsa",
        detect: cisco_wsa::detect,
        normalize: cisco_wsa::normalize,
    },
    Entry {
        name: "fortiddos",
        detect: fortiddos::detect,
        normalize: fortiddos::normalize,
    },
    Entry {
        name: "sophos",
        detect: sophos::detect,
        normalize: sophos::normalize,
    },
    Entry {
        name: "fortimail",
        detect: fortimail::detect,
        normalize: fortimail::normalize,
    },
    Entry {
        name: "fortiweb",
        detect: fortiweb::detect,
        normalize: fortiweb::normalize,
    },
    Entry {
        name: "fortigate",
        detect: fortigate::detect,
        normalize: fortigate::normalize,
    },
    Entry {
        name: "panos",
        detect: panos::detect,
        normalize: panos::normalize,
    },
    Entry {
        name: "suricata-eve",
        detect: suricata_eve::detect,
        normalize: suricata_eve::normalize,
    },
    Entry {
        name: "checkpoint",
        detect: checkpoint::detect,
        normalize: checkpoint::normalize,
    },
    Entry {
        name: "juniper-srx",
        detect: juniper_srx::detect,
        normalize: juniper_srx::normalize,
    },
    Entry {
        name: "filterlog",
        detect: filterlog::detect,
        normalize: filterlog::normalize,
    },
    Entry {
        name: "pf",
        detect: pf::detect,
        normalize: pf::normalize,
    },
    Entry {
        name: "netfilter",
        detect: netfilter::detect,
        normalize: netfilter::normalize,
    },
    Entry {
        name: "barracuda",
        detect: barracuda::detect,
        normalize: barracuda::normalize,
    },
    Entry {
        name: "f5-bigip",
        detect: f5_bigip::detect,
        normalize: f5_bigip::normalize,
    },
    Entry {
        name: "imperva",
        detect: imperva::detect,
        normalize: imperva::normalize,
    },
    Entry {
        name: "zscaler",
        detect: zscaler::detect,
        normalize: zscaler::normalize,
    },
    Entry {
        name: "modsecurity",
        detect: modsecurity::detect,
        normalize: modsecurity::normalize,
    },
    Entry {
        name: "suricata-fast",
        detect: snort::detect_suricata_fast,
        normalize: snort::normalize_suricata_fast,
    },
    Entry {
        name: "snort",
        detect: snort::detect_snort,
        normalize: snort::normalize_snort,
    },
    Entry {
        name: "clamav",
        detect: clamav::detect,
        normalize: clamav::normalize,
    },
    Entry {
        name: "sshd",
        detect: sshd::detect,
        normalize: sshd::normalize,
    },
    Entry {
        name: "sudo",
        detect: sudo::detect,
        normalize: sudo::normalize,
    },
    Entry {
        name: "linux-auth",
        detect: linux_auth::detect,
        normalize: linux_auth::normalize,
    },
    Entry {
        name: "squid",
        detect: squid::detect,
        normalize: squid::normalize,
    },
    Entry {
        name: "haproxy",
        detect: haproxy::detect,
        normalize: haproxy::normalize,
    },
    Entry {
        name: "web-access",
        detect: web_access::detect,
        normalize: web_access::normalize,
    },
    Entry {
        name: "web-error",
        detect: web_error::detect,
        normalize: web_error::normalize,
    },
    Entry {
        name: "arbor",
        detect: arbor::detect,
        normalize: arbor::normalize,
    },
];

/// True when `app` (a syslog tag, maybe with `[pid]`) is one of `names`. Without an app name, the
/// text's leading tag counts: a 3164 tag without pid (`sshd: Failed ...`, as `logger --rfc3164`
/// sends) is left in the text by the header parser.
pub fn app_is(input: &LogInput<'_>, names: &[&str]) -> bool {
    let leading_tag = || {
        let word = input.text.split(' ').next()?;
        word.strip_suffix(':').filter(|w| !w.is_empty())
    };
    input.app_name.or_else(leading_tag).is_some_and(|a| {
        let a = a.split('[').next().unwrap_or(a);
        names.iter().any(|n| a.eq_ignore_ascii_case(n))
    })
}

/// Substring probe for a non-literal needle.
pub fn has_str(s: &str, needle: &str) -> bool {
    Lit::new(needle).find(s.as_bytes()).is_some()
}

/// How common a byte is in log text, higher = more common (a heuristic: it only decides how
/// [`Lit`] searches, never whether a needle matches).
const fn byte_rank(b: u8) -> u8 {
    RANKS[b as usize]
}

/// [`byte_rank`] of every byte.
const RANKS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = rank_of(b as u8);
        b += 1;
    }
    t
};

const fn rank_of(b: u8) -> u8 {
    match b {
        b' ' => 255,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 200,
        b'0'..=b'9' => 180,
        b'=' | b'"' => 170,
        b'l' | b'd' | b'c' | b'u' | b'm' | b'p' | b'h' | b'.' => 160,
        b',' => 150,
        b':' => 140,
        b'-' => 130,
        b'f' | b'g' | b'w' | b'y' | b'b' | b'v' => 120,
        b'E' | b'T' | b'A' | b'O' | b'I' | b'N' | b'S' | b'R' | b'/' => 110,
        b'A'..=b'Z' | b'_' => 90,
        b'a'..=b'z' => 80,
        b'(' | b')' | b'[' | b']' | b'\'' | b';' => 60,
        b'{' | b'}' | b'|' => 40,
        b'%' | b'<' | b'>' | b'@' => 30,
        0x21..=0x7e => 25,
        0x80..=0xff => 10,
        _ => 5,
    }
}

/// A needle whose rarest byte ranks this high has no rare byte: on long text [`Lit`]'s users
/// search it with a SIMD two-byte searcher instead of `memchr` on that byte.
const COMMON_RANK: u8 = 150;
/// Texts up to this long are scanned once for the bytes they hold when a [`Probe`] starts.
const SHORT_TEXT: usize = 160;
/// False candidates of a needle's rare byte after which [`Lit::find_with`] hands long text to the
/// two-byte searcher.
const MAX_MISSES: usize = 4;
/// Text at least this long counts as long for [`COMMON_RANK`] and [`MAX_MISSES`].
const LONG_TEXT: usize = 128;

/// A substring needle with its rarest byte (by [`byte_rank`]) picked once, at compile time for
/// literals: a search is a `memchr` for that byte and a compare at each hit, which on log lines
/// costs a fraction of a general searcher's setup and scan. Finds the leftmost match, like
/// `str::find`.
#[derive(Clone, Copy)]
pub struct Lit<'n> {
    needle: &'n [u8],
    rare: usize,
}

impl<'n> Lit<'n> {
    /// The needle and its rarest byte.
    pub const fn new(needle: &'n str) -> Self {
        let b = needle.as_bytes();
        let (mut i, mut rare) = (1, 0);
        while i < b.len() {
            if byte_rank(b[i]) < byte_rank(b[rare]) {
                rare = i;
            }
            i += 1;
        }
        Self { needle: b, rare }
    }

    /// Length of the needle in bytes.
    pub const fn needle_len(&self) -> usize {
        self.needle.len()
    }

    /// True when the needle has no byte that is rare in log text (see [`COMMON_RANK`]).
    pub const fn is_common(&self) -> bool {
        self.rare < self.needle.len() && byte_rank(self.needle[self.rare]) >= COMMON_RANK
    }

    /// Start of the leftmost occurrence in `hay`, and whether `hay` holds the needle's rare byte
    /// at all (when it does not, no needle with that rare byte occurs in `hay`). On long text,
    /// `long` (a SIMD two-byte searcher) takes over for a needle without a rare byte, and after
    /// [`MAX_MISSES`] false candidates of the rare byte.
    pub fn find_with(
        &self,
        hay: &[u8],
        long: impl Fn(&[u8]) -> Option<usize>,
    ) -> (Option<usize>, bool) {
        let n = self.needle;
        let Some(&rare_byte) = n.get(self.rare) else {
            return (Some(0), true);
        };
        if self.is_common() && hay.len() >= LONG_TEXT {
            return (long(hay), true);
        }
        let (mut seen, mut misses) = (false, 0);
        for p in memchr::memchr_iter(rare_byte, hay) {
            seen = true;
            let Some(s) = p.checked_sub(self.rare) else {
                continue;
            };
            match hay.get(s..s + n.len()) {
                Some(w) if same(w, n) => return (Some(s), true),
                Some(_) => {}
                None => break, // later starts run past the end too
            }
            misses += 1;
            // every start up to `s` is ruled out: search the rest in one pass
            if misses == MAX_MISSES && hay.len() - s > LONG_TEXT {
                let rest = hay.get(s + 1..).unwrap_or(&[]);
                return (long(rest).map(|at| s + 1 + at), true);
            }
        }
        (None, seen)
    }

    /// Start of the leftmost occurrence in `hay`.
    pub fn find(&self, hay: &[u8]) -> Option<usize> {
        let n = self.needle;
        let Some(&rare_byte) = n.get(self.rare) else {
            return Some(0); // the empty needle
        };
        let last_start = hay.len().checked_sub(n.len())?;
        // the rare byte of a match starting at `s` is at `s + rare`
        let window = hay.get(self.rare..=last_start + self.rare)?;
        memchr::memchr_iter(rare_byte, window)
            .find(|&s| hay.get(s..s + n.len()).is_some_and(|w| same(w, n)))
    }
}

/// `s.split(pat).nth(1)`: the text between the first and the second `pat`, or to the end.
pub fn second_piece<'a>(s: &'a str, pat: Lit<'_>) -> Option<&'a str> {
    let rest = s.get(pat.find(s.as_bytes())? + pat.needle_len()..)?;
    rest.get(..pat.find(rest.as_bytes()).unwrap_or(rest.len()))
}

/// One record under auto-detection: the input, and the bytes its text is known to lack, so that
/// the probes of the detection table scan the text once per rare byte instead of once per needle
/// (most probes look for a byte the record does not have at all).
pub struct Probe<'a, 'i> {
    /// The record.
    pub input: &'i LogInput<'a>,
    absent: Cell<[u64; 4]>,
}

impl<'a, 'i> Probe<'a, 'i> {
    /// A probe of `input`; a short text is scanned once up front for the bytes it holds (a
    /// record can go through dozens of probes before one matches).
    pub fn new(input: &'i LogInput<'a>) -> Self {
        let text = input.text.as_bytes();
        let mut absent = [0; 4];
        if text.len() <= SHORT_TEXT {
            let mut present = [0u64; 4];
            for &b in text {
                present[usize::from(b >> 6)] |= 1 << (b & 63);
            }
            absent = present.map(|w| !w);
        }
        Self {
            input,
            absent: Cell::new(absent),
        }
    }

    /// True when the text contains `lit` (same answer as a substring search); `long` searches
    /// long texts for a needle without a rare byte (see [`COMMON_RANK`]).
    pub fn text_has(&self, lit: Lit<'_>, long: impl Fn(&[u8]) -> Option<usize>) -> bool {
        let Some(&b) = lit.needle.get(lit.rare) else {
            return true;
        };
        let (word, bit) = (usize::from(b >> 6), 1u64 << (b & 63));
        let mut absent = self.absent.get();
        if absent[word] & bit != 0 {
            return false;
        }
        let (found, seen) = lit.find_with(self.input.text.as_bytes(), long);
        if !seen {
            absent[word] |= bit;
            self.absent.set(absent);
        }
        found.is_some()
    }
}

/// Probe of the record's text for a literal needle, in a `detect` function (see [`Probe`]).
macro_rules! probe {
    ($p:expr, $needle:literal) => {{
        const LIT: $crate::vendors::Lit<'static> = $crate::vendors::Lit::new($needle);
        $p.text_has(LIT, |hay: &[u8]| {
            static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
                std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
            FINDER.find(hay)
        })
    }};
}
pub(crate) use probe;

/// Byte offset of the leftmost occurrence of a literal needle, like `str::find` (see [`Lit`]).
macro_rules! find {
    ($hay:expr, $needle:literal) => {{
        const LIT: $crate::vendors::Lit<'static> = $crate::vendors::Lit::new($needle);
        LIT.find_with(AsRef::<[u8]>::as_ref($hay), |hay: &[u8]| {
            static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
                std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
            FINDER.find(hay)
        })
        .0
    }};
}
pub(crate) use find;

/// Substring probe for a literal needle (see [`Lit`]).
macro_rules! has {
    ($hay:expr, $needle:literal) => {
        $crate::vendors::find!($hay, $needle).is_some()
    };
}
pub(crate) use has;

#[cfg(test)]
mod lit_tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn lit_searches_agree_with_str_find(
            hay in "([a-z_=\"%\\[ ]|ab|a_b){0,300}",
            needles in proptest::collection::vec("([a-z_=\"%\\[ ]|ab|a_b){0,6}", 1..8),
        ) {
            let input = LogInput::line(&hay);
            let probe = Probe::new(&input);
            for needle in &needles {
                let lit = Lit::new(needle);
                let want = hay.find(needle.as_str());
                let long = |h: &[u8]| memchr::memmem::find(h, needle.as_bytes());
                proptest::prop_assert_eq!(lit.find(hay.as_bytes()), want);
                proptest::prop_assert_eq!(lit.find_with(hay.as_bytes(), long).0, want);
                // twice: the second answer may come from what the probe learnt
                proptest::prop_assert_eq!(probe.text_has(lit, long), want.is_some());
                proptest::prop_assert_eq!(probe.text_has(lit, long), want.is_some());
            }
        }
    }

    #[test]
    fn second_piece_is_split_nth_1() {
        for (s, pat) in [
            ("a duration 5 b duration 6", "duration "),
            ("duration duration 0:01:05", "duration "),
            ("x bytes  bytes 5", " bytes "),
            ("no match", "duration "),
            ("duration ", "duration "),
        ] {
            assert_eq!(second_piece(s, Lit::new(pat)), s.split(pat).nth(1), "{s:?}");
        }
    }
}

#[cfg(test)]
pub mod testutil {
    //! Helpers for the per-vendor sample tests.
    use crate::{Format, LogInput, Normalized, normalize};

    /// Normalises `line` with auto-detection and checks the detected format and that it parsed.
    pub fn auto(line: &str, format: &str) -> Normalized {
        let n = normalize(&LogInput::line(line), Format::Auto, "nsf");
        assert_eq!(n.format, format, "line: {line}\n{:?}", n.message.kind);
        assert!(n.parsed, "not parsed: {line}\n{:?}", n.message.kind);
        n
    }

    /// Normalises a line that came after a syslog header with this app name.
    pub fn with_app(text: &str, app: &str, format: &str) -> Normalized {
        let mut input = LogInput::line(text);
        input.app_name = Some(app);
        let n = normalize(&input, Format::Auto, "nsf");
        assert_eq!(n.format, format, "line: {text}\n{:?}", n.message.kind);
        assert!(n.parsed, "not parsed: {text}\n{:?}", n.message.kind);
        n
    }

    /// Parses an address in tests.
    pub fn ip(s: &str) -> Option<std::net::IpAddr> {
        Some(s.parse().unwrap())
    }

    /// The firewall traffic log a line became (panics on any other case).
    pub fn fw(n: &Normalized) -> &pharos_model::FirewallTrafficLog {
        match &n.message.kind {
            pharos_model::Kind::FirewallTrafficLog(f) => f,
            k => panic!("{k:?}"),
        }
    }
}
