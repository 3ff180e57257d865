//! [`Filter`]: which changes of the feed a subscription (or an SSE stream) wants.
//!
//! Contract: every condition is optional and they are ANDed; within one condition the values are
//! ORed. An empty list means "any". Prefixes match a source or destination address of the message
//! by family (an IPv4 prefix never matches an IPv6 address), as [`ipnet::IpNet::contains`] decides.
//! Attack types match the `attack-type` identity of DDoS, intrusion, web-attack and DPI messages,
//! by bare name (`syn-flood`) or module-qualified name
//! (`ietf-i2nsf-monitoring-interface:syn-flood`); a message without an attack type never matches a
//! filter that names attack types.

use ipnet::IpNet;
use pharos_model::ident::Identity;
use pharos_model::{Kind, Message, Severity};
use serde::{Deserialize, Serialize};

use crate::{Change, Item};

/// Which changes a subscription wants; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    /// Kind names (`ddos`, `intrusion`, ... as in `pharos_model::KIND_NAMES`); empty: every kind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Lowest severity (`info`, `low`, `middle`, `high`, `critical`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Exact nsf-names; empty: every NSF.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nsf: Vec<String>,
    /// A source or destination address must be within one of these prefixes; empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty", with = "prefixes_serde")]
    pub prefixes: Vec<IpNet>,
    /// `attack-type` identities (bare or module-qualified); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attack_types: Vec<String>,
    /// Which changes (`created`, `updated`, `state`); empty: all three.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// A filter that cannot be used; the message names the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter.{key}: {message}")]
pub struct FilterError {
    /// The key at fault, e.g. `kinds`.
    pub key: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Filter {
    /// Checks the names in the filter (kinds known, attack types not empty).
    pub fn validate(&self) -> Result<(), FilterError> {
        for k in &self.kinds {
            if !pharos_model::KIND_NAMES.contains(&k.as_str()) {
                return Err(FilterError {
                    key: "kinds",
                    message: format!(
                        "unknown kind {k:?}: expected one of {}",
                        pharos_model::KIND_NAMES.join(", ")
                    ),
                });
            }
        }
        if self.attack_types.iter().any(|a| a.trim().is_empty()) {
            return Err(FilterError {
                key: "attack_types",
                message: "an attack type is empty: write identities like \"syn-flood\"".into(),
            });
        }
        Ok(())
    }

    /// Whether the change `item` passes every condition.
    pub fn matches(&self, item: &Item) -> bool {
        (self.changes.is_empty() || self.changes.contains(&item.change))
            && self.matches_message(&item.stored.message)
    }

    /// Whether the shared feed entry `e` passes every condition.
    pub fn matches_entry(&self, e: &crate::feed::Entry) -> bool {
        (self.changes.is_empty() || self.changes.contains(&e.change))
            && self.matches_message(&e.stored.message)
    }

    /// Whether `msg` passes every condition except `changes`.
    pub fn matches_message(&self, msg: &Message) -> bool {
        let c = &msg.common;
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == msg.kind.name()) {
            return false;
        }
        if self.min_severity.is_some_and(|min| c.severity < min) {
            return false;
        }
        if !self.nsf.is_empty() && !self.nsf.contains(&c.nsf_name) {
            return false;
        }
        if !self.prefixes.is_empty() {
            let addrs = msg.addresses();
            if !addrs
                .iter()
                .any(|(_, a)| self.prefixes.iter().any(|p| p.contains(a)))
            {
                return false;
            }
        }
        if !self.attack_types.is_empty() {
            let Some((name, qualified)) = attack_type(&msg.kind) else {
                return false;
            };
            if !self
                .attack_types
                .iter()
                .any(|a| *a == name || *a == qualified)
            {
                return false;
            }
        }
        true
    }
}

/// Prefixes as strings (`"192.0.2.0/24"`, `"2001:db8::/32"`; a bare address is a host prefix).
mod prefixes_serde {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|n| n.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| super::parse_prefix(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Parses a prefix (`192.0.2.0/24`) or an address (a host prefix).
pub fn parse_prefix(t: &str) -> Result<IpNet, String> {
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{t:?} is not a prefix: write it like \"192.0.2.0/24\" or \"2001:db8::/32\"")
        })
}

/// The bare and qualified name of a message's `attack-type`, if it has one.
fn attack_type(kind: &Kind) -> Option<(&'static str, String)> {
    fn pair<I: Identity>(i: I) -> (&'static str, String) {
        (i.name(), i.qualified())
    }
    match kind {
        Kind::Ddos(d) => d.attack_type.map(pair),
        Kind::Intrusion(i) => i.attack_type.map(pair),
        Kind::WebAttack(w) => w.attack_type.map(pair),
        Kind::DpiLog(d) => d.attack_type.map(pair),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use pharos_model::ident::{DdosType, IntrusionAttackType};
    use pharos_model::{DdosEvent, GenericLog, IntrusionEvent};
    use pharos_store::StoredMessage;

    use super::*;

    fn item(change: Change, mut msg: Message) -> Item {
        msg.common.id = Some(1);
        Item {
            seq: 1,
            change,
            stored: StoredMessage {
                message: msg,
                state: None,
                state_changed_at: None,
                ack: None,
            },
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ddos(nsf: &str, sev: Severity, dst: &str) -> Message {
        let mut m = Message::new(
            nsf,
            Kind::Ddos(DdosEvent {
                attack_type: Some(DdosType::SynFlood),
                start_time: chrono::Utc::now(),
                end_time: None,
                attack_src_ip: vec![ip("198.51.100.7")],
                attack_dst_ip: vec![ip(dst)],
                attack_src_port: vec![],
                attack_dst_port: vec![],
                rule_name: "r".into(),
                attack_rate: None,
                attack_throughput: None,
            }),
        );
        m.common.severity = sev;
        m
    }

    fn log(nsf: &str) -> Message {
        Message::new(
            nsf,
            Kind::GenericLog(GenericLog {
                ..Default::default()
            }),
        )
    }

    fn f(json: &str) -> Filter {
        let f: Filter = serde_json::from_str(json).unwrap();
        f.validate().unwrap();
        f
    }

    #[test]
    fn empty_filter_matches_everything() {
        let any = Filter::default();
        assert!(any.matches(&item(Change::Created, log("fw"))));
        assert!(any.matches(&item(
            Change::State,
            ddos("r1", Severity::Info, "192.0.2.1")
        )));
    }

    #[test]
    fn each_condition_alone_selects_and_rejects() {
        let d = item(Change::Created, ddos("r1", Severity::High, "192.0.2.1"));
        let l = item(Change::Created, log("fw"));
        let kinds = f(r#"{"kinds": ["ddos", "intrusion"]}"#);
        assert!(kinds.matches(&d) && !kinds.matches(&l));
        let sev = f(r#"{"min_severity": "high"}"#);
        assert!(sev.matches(&d));
        assert!(!f(r#"{"min_severity": "critical"}"#).matches(&d));
        let nsf = f(r#"{"nsf": ["fw", "other"]}"#);
        assert!(nsf.matches(&l) && !nsf.matches(&d));
        assert!(f(r#"{"prefixes": ["192.0.2.0/24"]}"#).matches(&d));
        assert!(
            f(r#"{"prefixes": ["198.51.100.7/32"]}"#).matches(&d),
            "source too"
        );
        assert!(!f(r#"{"prefixes": ["203.0.113.0/24"]}"#).matches(&d));
        assert!(
            !f(r#"{"prefixes": ["::/0"]}"#).matches(&d),
            "families never mix"
        );
        assert!(
            !f(r#"{"prefixes": ["0.0.0.0/0"]}"#).matches(&l),
            "no address"
        );
        let changes = f(r#"{"changes": ["updated", "state"]}"#);
        assert!(!changes.matches(&d));
        assert!(changes.matches(&item(Change::Updated, d.stored.message.clone())));
    }

    #[test]
    fn attack_types_match_bare_and_qualified_identities_of_ddos_and_intrusion() {
        let d = item(Change::Created, ddos("r1", Severity::High, "192.0.2.1"));
        assert!(f(r#"{"attack_types": ["syn-flood"]}"#).matches(&d));
        assert!(
            f(r#"{"attack_types": ["ietf-i2nsf-monitoring-interface:syn-flood"]}"#).matches(&d)
        );
        assert!(!f(r#"{"attack_types": ["ack-flood"]}"#).matches(&d));
        let mut i = IntrusionEvent {
            src_ip: None,
            src_port: None,
            dst_ip: None,
            dst_port: None,
            rule_name: "r".into(),
            protocol: None,
            app: None,
            attack_type: Some(IntrusionAttackType::all()[0]),
        };
        let name = IntrusionAttackType::all()[0].name();
        let by_name = Filter {
            attack_types: vec![name.to_string()],
            ..Default::default()
        };
        assert!(by_name.matches(&item(
            Change::Created,
            Message::new("ids", Kind::Intrusion(i.clone()))
        )));
        i.attack_type = None;
        assert!(!by_name.matches(&item(
            Change::Created,
            Message::new("ids", Kind::Intrusion(i))
        )));
        assert!(!by_name.matches(&item(Change::Created, log("fw"))));
    }

    #[test]
    fn conditions_are_anded() {
        let d = item(Change::Created, ddos("r1", Severity::High, "192.0.2.1"));
        let both = f(r#"{"kinds": ["ddos"], "nsf": ["r2"]}"#);
        assert!(!both.matches(&d));
        let all = f(
            r#"{"kinds": ["ddos"], "nsf": ["r1"], "min_severity": "middle", "prefixes": ["192.0.2.0/24"], "attack_types": ["syn-flood"], "changes": ["created"]}"#,
        );
        assert!(all.matches(&d));
    }

    #[test]
    fn unknown_kind_and_unknown_key_are_errors_naming_them() {
        let bad: Filter = serde_json::from_str(r#"{"kinds": ["ddoss"]}"#).unwrap();
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("filter.kinds") && e.contains("ddoss"), "{e}");
        let e = serde_json::from_str::<Filter>(r#"{"kind": ["ddos"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("kind"), "{e}");
        let e = serde_json::from_str::<Filter>(r#"{"changes": ["deleted"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("deleted"), "{e}");
    }
}
