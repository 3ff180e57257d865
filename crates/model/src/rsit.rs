//! The Reference Security Incident Taxonomy (RSIT, the taxonomy CSIRTs exchange incidents in:
//! e-CSIRT.net's, maintained by the TF-CSIRT Taxonomy Governance working group): every event
//! carries a `taxonomy` and a `type` (e.g. `availability` / `ddos`). [`classify`] maps an I2NSF
//! case to its classification; a message may also carry one set by its source
//! ([`crate::Common::classification`], e.g. from an incoming feed), which wins.

use crate::ident::{IntrusionAttackType, SystemEventCategory};
use crate::message::Kind;

/// Every RSIT taxonomy with its types (the machine-readable values, as IntelMQ and MISP's
/// `rsit` galaxy spell them).
pub const TAXONOMY: &[(&str, &[&str])] = &[
    ("abusive-content", &["spam", "harmful-speech", "violence"]),
    (
        "malicious-code",
        &[
            "infected-system",
            "c2-server",
            "malware-distribution",
            "malware-configuration",
        ],
    ),
    (
        "information-gathering",
        &["scanner", "sniffing", "social-engineering"],
    ),
    (
        "intrusion-attempts",
        &["ids-alert", "brute-force", "exploit"],
    ),
    (
        "intrusions",
        &[
            "privileged-account-compromise",
            "unprivileged-account-compromise",
            "application-compromise",
            "system-compromise",
            "burglary",
        ],
    ),
    (
        "availability",
        &["dos", "ddos", "misconfiguration", "sabotage", "outage"],
    ),
    (
        "information-content-security",
        &[
            "unauthorised-information-access",
            "unauthorised-information-modification",
            "data-loss",
            "data-leak",
        ],
    ),
    (
        "fraud",
        &[
            "unauthorised-use-of-resources",
            "copyright",
            "masquerade",
            "phishing",
        ],
    ),
    (
        "vulnerable",
        &[
            "weak-crypto",
            "ddos-amplifier",
            "potentially-unwanted-accessible",
            "information-disclosure",
            "vulnerable-system",
        ],
    ),
    ("other", &["other", "undetermined"]),
    ("test", &["test"]),
];

/// An RSIT classification: one of [`TAXONOMY`]'s taxonomies and one of its types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Classification {
    /// `taxonomy`, e.g. `availability`.
    pub taxonomy: &'static str,
    /// `type`, e.g. `ddos`.
    pub kind: &'static str,
}

impl Classification {
    /// The classification for `taxonomy` / `kind` when RSIT has that pair (case-insensitive;
    /// IntelMQ's older spellings `intrusion_attempts`-style underscores are accepted).
    pub fn new(taxonomy: &str, kind: &str) -> Option<Self> {
        let norm = |s: &str| s.trim().to_ascii_lowercase().replace('_', "-");
        let (t, k) = (norm(taxonomy), norm(kind));
        TAXONOMY
            .iter()
            .find(|(name, _)| *name == t)
            .and_then(|(name, types)| {
                types.iter().find(|ty| **ty == k).map(|ty| Self {
                    taxonomy: name,
                    kind: ty,
                })
            })
    }

    /// `taxonomy/type`, the form used in reports and filters.
    pub fn as_path(&self) -> String {
        format!("{}/{}", self.taxonomy, self.kind)
    }

    const fn of(taxonomy: &'static str, kind: &'static str) -> Self {
        Self { taxonomy, kind }
    }
}

/// The RSIT classification of an I2NSF case: every alarm and event has one; of the logs, only a
/// vulnerability scan (the host is vulnerable) does.
pub fn classify(kind: &Kind) -> Option<Classification> {
    use Classification as C;
    Some(match kind {
        Kind::Ddos(_) => C::of("availability", "ddos"),
        Kind::Intrusion(e) => match e.attack_type {
            Some(IntrusionAttackType::PortScan | IntrusionAttackType::HostSweep) => {
                C::of("information-gathering", "scanner")
            }
            Some(IntrusionAttackType::BruteForce) => C::of("intrusion-attempts", "brute-force"),
            Some(IntrusionAttackType::BufferOverflow) => C::of("intrusion-attempts", "exploit"),
            _ => C::of("intrusion-attempts", "ids-alert"),
        },
        Kind::WebAttack(_) => C::of("intrusion-attempts", "exploit"),
        Kind::Virus(_) => C::of("malicious-code", "infected-system"),
        Kind::Botnet(b) => match b.role.as_deref() {
            Some(r) if r.eq_ignore_ascii_case("c2") || r.eq_ignore_ascii_case("c2-server") => {
                C::of("malicious-code", "c2-server")
            }
            _ => C::of("malicious-code", "infected-system"),
        },
        Kind::VoipVocn(_) => C::of("fraud", "unauthorised-use-of-resources"),
        Kind::SystemAlarm(_) => C::of("availability", "outage"),
        Kind::SystemEvent(e) => match e.event_category {
            Some(SystemEventCategory::AccessViolation) => C::of(
                "information-content-security",
                "unauthorised-information-access",
            ),
            _ => C::of("other", "other"),
        },
        Kind::TrafficFlows(_) | Kind::SessionTable(_) => C::of("other", "undetermined"),
        Kind::VulnerabilityScanLog(_) => C::of("vulnerable", "vulnerable-system"),
        Kind::SystemAccessLog(_)
        | Kind::ResourceUtilizationLog(_)
        | Kind::UserActivityLog(_)
        | Kind::DpiLog(_)
        | Kind::FirewallTrafficLog(_)
        | Kind::GenericLog(_)
        | Kind::Counters(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_checked_and_spellings_normalised() {
        let c = Classification::new("Availability", "DDoS").unwrap();
        assert_eq!(c.as_path(), "availability/ddos");
        assert_eq!(
            Classification::new("intrusion_attempts", "brute_force")
                .unwrap()
                .as_path(),
            "intrusion-attempts/brute-force"
        );
        assert!(Classification::new("availability", "scanner").is_none());
        assert!(Classification::new("nope", "ddos").is_none());
    }

    #[test]
    fn every_event_kind_is_classified() {
        for m in crate::samples::samples() {
            if m.kind.is_event() {
                let c = classify(&m.kind).unwrap_or_else(|| panic!("{}", m.kind.name()));
                assert!(Classification::new(c.taxonomy, c.kind).is_some());
            }
        }
    }

    #[test]
    fn type_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (_, types) in TAXONOMY {
            for t in *types {
                assert!(seen.insert(*t), "{t}");
            }
        }
    }
}
