//! One module per format, and the detection table that orders them.
//!
//! Contract: `detect` is a cheap, allocation-free probe (prefix, substring or app-name test) that
//! may have false positives; `normalize` returns `None` when the record is not of its format after
//! all, so auto-detection moves on to the next matching entry.

use crate::build::Draft;
use crate::{FormatName, LogInput};

mod arbor;
mod cef;
mod checkpoint;
mod cisco_asa;
mod clamav;
mod filterlog;
mod fortiddos;
mod fortigate;
mod juniper_srx;
mod leef;
mod modsecurity;
mod netfilter;
mod panos;
mod snort;
mod sshd;
mod sudo;
mod suricata_eve;

/// One format: its name, its cheap probe and its normaliser.
pub struct Entry {
    pub name: FormatName,
    pub detect: fn(&LogInput<'_>) -> bool,
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
        name: "cisco-asa",
        detect: cisco_asa::detect,
        normalize: cisco_asa::normalize,
    },
    Entry {
        name: "fortiddos",
        detect: fortiddos::detect,
        normalize: fortiddos::normalize,
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
        name: "netfilter",
        detect: netfilter::detect,
        normalize: netfilter::normalize,
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
        name: "arbor",
        detect: arbor::detect,
        normalize: arbor::normalize,
    },
];

/// True when `app` (a syslog tag, maybe with `[pid]`) is one of `names`.
pub fn app_is(input: &LogInput<'_>, names: &[&str]) -> bool {
    input.app_name.is_some_and(|a| {
        let a = a.split('[').next().unwrap_or(a);
        names.iter().any(|n| a.eq_ignore_ascii_case(n))
    })
}

/// Substring probe for a non-literal needle.
pub fn has_str(s: &str, needle: &str) -> bool {
    memchr::memmem::find(s.as_bytes(), needle.as_bytes()).is_some()
}

/// Substring probe for a literal needle: the searcher is built once per call site.
macro_rules! has {
    ($hay:expr, $needle:literal) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        FINDER.find(AsRef::<[u8]>::as_ref($hay)).is_some()
    }};
}
pub(crate) use has;

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
}
