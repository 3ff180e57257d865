//! The registry's plain values: organisations, their resources, contacts and policies.

use ipnet::IpNet;
use pharos_model::Severity;
use serde::{Deserialize, Serialize};

/// Prefixes as strings (`192.0.2.0/24`) in JSON.
mod net {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(n)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lists of prefixes as lists of strings in JSON.
mod nets {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|n| n.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Where an organisation's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// From an import (CSV or RIPE); replaced wholesale by the next import of the same source.
    Automatic,
    /// Set by hand (`pharos constituency set`); survives re-imports and wins over automatic data
    /// for the same prefix or organisation id.
    Manual,
}

impl Layer {
    /// The name stored in the database and shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Manual => "manual",
        }
    }

    /// Parses [`Layer::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "automatic" => Some(Self::Automatic),
            "manual" => Some(Self::Manual),
            _ => None,
        }
    }
}

/// How often a contact wants to hear from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// One notice per event, as soon as it is seen.
    Immediate,
    /// One digest per hour.
    Hourly,
    /// One digest per day (the default).
    #[default]
    Daily,
}

impl Interval {
    /// The name used in CSV files, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Hourly => "hourly",
            Self::Daily => "daily",
        }
    }

    /// Parses [`Interval::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "immediate" => Some(Self::Immediate),
            "hourly" => Some(Self::Hourly),
            "daily" => Some(Self::Daily),
            _ => None,
        }
    }
}

/// One suppression rule: events it matches are not sent to the contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "by", content = "value")]
pub enum Suppression {
    /// Events of this kind (e.g. `ddos`, `scan`).
    Kind(String),
    /// Events whose source address is inside this prefix (e.g. a known scanner).
    #[serde(with = "net")]
    Source(IpNet),
    /// Events that touch an address inside this prefix (e.g. a honeypot of the constituent).
    #[serde(with = "net")]
    Address(IpNet),
}

/// What a contact wants to receive and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// How often notices are sent.
    pub interval: Interval,
    /// Event kinds wanted (empty: all).
    pub kinds: Vec<String>,
    /// Taxonomy types wanted, e.g. `availability/ddos` (empty: all).
    pub taxonomies: Vec<String>,
    /// Events below this severity are not sent.
    pub min_severity: Severity,
    /// Events matching any of these rules are not sent.
    pub suppress: Vec<Suppression>,
    /// Language of the notice, a BCP 47 tag such as `en` or `de-AT`.
    pub language: String,
    /// Whether the addresses of other parties are pseudonymised in the notice.
    pub anonymise: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            interval: Interval::Daily,
            kinds: Vec::new(),
            taxonomies: Vec::new(),
            min_severity: Severity::Low,
            suppress: Vec::new(),
            language: "en".into(),
            anonymise: true,
        }
    }
}

/// Someone to tell: by mail, by webhook, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Person or team name (may be empty).
    pub name: String,
    /// What the contact is for, e.g. `abuse`, `security`, `noc`.
    pub role: String,
    /// Mail address, if notices go by mail.
    pub mail: Option<String>,
    /// Webhook URL, if notices go by webhook.
    pub webhook: Option<String>,
    /// What it wants to receive.
    pub policy: Policy,
}

impl Contact {
    /// An abuse contact reached by mail with the default policy.
    pub fn abuse_mail(name: &str, mail: &str) -> Self {
        Self {
            name: name.into(),
            role: "abuse".into(),
            mail: Some(mail.into()),
            webhook: None,
            policy: Policy::default(),
        }
    }
}

/// An organisation of the constituency with everything it holds and everyone to tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    /// Its identifier: a RIPE `organisation:` handle, a role handle, or the CSV's `org`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// ISO 3166 country code (may be empty).
    pub country: String,
    /// Which layer it belongs to.
    pub layer: Layer,
    /// The import source (`manual` for the manual layer).
    pub source: String,
    /// Its IPv4 and IPv6 prefixes.
    #[serde(with = "nets")]
    pub prefixes: Vec<IpNet>,
    /// Its AS numbers.
    pub asns: Vec<u32>,
    /// Its domains (lower case, no trailing dot).
    pub domains: Vec<String>,
    /// Its contacts.
    pub contacts: Vec<Contact>,
}

impl Organisation {
    /// An empty organisation of the manual layer.
    pub fn manual(id: &str) -> Self {
        Self {
            id: id.into(),
            name: String::new(),
            country: String::new(),
            layer: Layer::Manual,
            source: crate::MANUAL_SOURCE.into(),
            prefixes: Vec::new(),
            asns: Vec::new(),
            domains: Vec::new(),
            contacts: Vec::new(),
        }
    }
}

/// One line of `pharos constituency list`: an organisation and the size of its holdings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    /// Its identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Country code.
    pub country: String,
    /// Layer.
    pub layer: Layer,
    /// Import source.
    pub source: String,
    /// Number of prefixes.
    pub prefixes: u64,
    /// Number of AS numbers.
    pub asns: u64,
    /// Number of domains.
    pub domains: u64,
    /// Number of contacts.
    pub contacts: u64,
}

/// What matched a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "by", content = "value")]
pub enum MatchedBy {
    /// The longest prefix holding the address.
    #[serde(with = "net")]
    Prefix(IpNet),
    /// The AS number.
    Asn(u32),
    /// The domain (the one asked, or the parent domain registered).
    Domain(String),
}

/// The answer to a lookup: the organisation (manual data merged over automatic data of the same
/// id) and the contacts to tell, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// What matched.
    pub matched: MatchedBy,
    /// The organisation.
    pub organisation: Organisation,
    /// The contacts to tell: the resource's own abuse contact (RIPE `abuse-c:` on an
    /// inetnum) first when it has one, then the organisation's.
    pub contacts: Vec<Contact>,
}
