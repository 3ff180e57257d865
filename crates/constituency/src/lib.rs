//! The constituency registry: who holds an address, an AS number or a domain, and whom to tell
//! (contacts with a notification policy each).
//!
//! The one design choice a reader must know: the registry lives in SQLite (WAL, schema versioned
//! by `user_version`) in two layers, `automatic` (imports, replaced wholesale by the next import
//! of the same source, in one transaction) and `manual` (overrides that survive imports and win
//! for the same prefix or organisation id); address lookups run on an in-memory
//! [`PrefixTable`] built from it (one sorted array per prefix length, longest first), so the
//! hot path touches no database.
//!
//! Surface: [`Registry`] (open, import CSV or RIPE split files, manual overrides, lookups,
//! listing), [`PrefixTable`], the model ([`Organisation`], [`Contact`], [`Policy`], [`Match`]),
//! [`Query`], [`Error`], [`ConstituencyConfig`], and [`generate_ripe`] for tests and benchmarks.

#![forbid(unsafe_code)]

mod csv;
mod error;
mod gen_ripe;
mod lines;
mod model;
pub mod notice;
mod ripe;
mod rpsl;
mod store;
mod table;
mod validate;

use std::net::IpAddr;
use std::path::PathBuf;

pub use csv::COLUMNS as CSV_COLUMNS;
pub use error::Error;
pub use gen_ripe::{GenSpec, GenSummary, generate_ripe};
/// Prefixes in the model's values.
pub use ipnet::IpNet;
pub use lines::MAX_LINE;
pub use model::{
    Contact, Interval, Layer, Match, MatchedBy, OrgSummary, Organisation, Policy, Suppression,
};
pub use rpsl::{parse_range, range_to_cidrs};
pub use store::{ImportReport, Registry};
pub use table::{PrefixEntry, PrefixHit, PrefixTable, PrefixTableBuilder};

/// The source name of the manual layer.
pub const MANUAL_SOURCE: &str = "manual";

/// What a lookup asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// An IPv4 or IPv6 address.
    Addr(IpAddr),
    /// An AS number.
    Asn(u32),
    /// A domain name (canonical: lower case, no trailing dot).
    Domain(String),
}

impl Query {
    /// Reads an address (`192.0.2.1`, `2001:db8::1`), an AS number (`AS64500` or `64500`) or a
    /// domain (`www.example.org`).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(Self::Addr(a));
        }
        if let Some(n) = csv::asn(s) {
            return Ok(Self::Asn(n));
        }
        validate::domain(s).map(Self::Domain).map_err(|_| Error::Invalid {
            what: "lookup".into(),
            message: format!(
                "{s:?}: expected an address (192.0.2.1, 2001:db8::1), an AS number (AS64500) or a domain (example.org)"
            ),
        })
    }
}

/// The `[constituency]` section of `pharos.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConstituencyConfig {
    /// The registry's database file (default: `constituency.db` in the data directory).
    pub db: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parses_addresses_asns_and_domains() {
        assert_eq!(
            Query::parse("192.0.2.1").unwrap(),
            Query::Addr("192.0.2.1".parse().unwrap())
        );
        assert_eq!(Query::parse("AS64500").unwrap(), Query::Asn(64500));
        assert_eq!(Query::parse("64500").unwrap(), Query::Asn(64500));
        assert_eq!(
            Query::parse("WWW.Example.ORG.").unwrap(),
            Query::Domain("www.example.org".into())
        );
        assert!(
            Query::parse("not a thing")
                .unwrap_err()
                .to_string()
                .contains("expected an address")
        );
    }

    #[test]
    fn domain_lookup_finds_exact_or_parent_and_manual_first() {
        let mut reg = Registry::open_in_memory().unwrap();
        reg.import_csv_reader(
            "org,domains,asns,contact_mail\nA,example.org,64500,a@example.org\nB,sub.example.org,,b@example.org\n".as_bytes(),
            "d.csv",
            "csv",
        )
        .unwrap();
        let q = |reg: &Registry, s: &str| {
            let t = reg.prefix_table().unwrap();
            reg.lookup(&t, &Query::parse(s).unwrap())
                .unwrap()
                .map(|m| (m.organisation.id, m.matched))
        };
        assert_eq!(q(&reg, "example.org").unwrap().0, "A");
        assert_eq!(
            q(&reg, "www.example.org").unwrap(),
            ("A".into(), MatchedBy::Domain("example.org".into()))
        );
        assert_eq!(q(&reg, "x.sub.example.org").unwrap().0, "B");
        assert!(q(&reg, "example.com").is_none());
        assert!(q(&reg, "org").is_none());
        let mut m = Organisation::manual("M");
        m.domains.push("example.org".into());
        m.asns.push(64500);
        m.contacts.push(Contact::abuse_mail("", "m@example.org"));
        reg.upsert_manual(&m).unwrap();
        assert_eq!(q(&reg, "www.example.org").unwrap().0, "M");
        assert_eq!(q(&reg, "AS64500").unwrap().0, "M");
    }

    #[test]
    fn manual_layer_survives_csv_reimport_and_upsert_merges() {
        let mut reg = Registry::open_in_memory().unwrap();
        let csv = "org,name,prefixes,contact_mail\nA,Alpha,10.0.0.0/8,a@a.example\n";
        reg.import_csv_reader(csv.as_bytes(), "a.csv", "csv")
            .unwrap();
        let mut m = Organisation::manual("SOC");
        m.name = "Our SOC".into();
        m.prefixes.push("10.1.0.0/16".parse().unwrap());
        reg.upsert_manual(&m).unwrap();
        let mut more = Organisation::manual("SOC");
        more.prefixes.push("10.2.0.0/16".parse().unwrap());
        more.contacts.push(Contact::abuse_mail("", "soc@x.example"));
        reg.upsert_manual(&more).unwrap();
        reg.import_csv_reader(csv.as_bytes(), "a.csv", "csv")
            .unwrap();
        let t = reg.prefix_table().unwrap();
        let m = reg
            .lookup_addr(&t, "10.2.3.4".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.organisation.id, "SOC");
        assert_eq!(m.organisation.name, "Our SOC");
        assert_eq!(m.organisation.prefixes.len(), 2);
        assert_eq!(m.contacts[0].mail.as_deref(), Some("soc@x.example"));
        let m = reg
            .lookup_addr(&t, "10.3.0.1".parse().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.organisation.id, "A");
        let list = reg.summaries().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].layer, Layer::Manual);
        assert!(reg.upsert_manual(&Organisation::manual("")).is_err());
    }

    #[test]
    fn database_reopens_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/c.db");
        {
            let mut reg = Registry::open(&p).unwrap();
            reg.import_csv_reader("org,prefixes\nA,192.0.2.0/24\n".as_bytes(), "a.csv", "x")
                .unwrap();
        }
        let reg = Registry::open(&p).unwrap();
        assert_eq!(reg.summaries().unwrap().len(), 1);
        assert_eq!(reg.imports().unwrap()[0].source, "x");
        drop(reg);
        let c = rusqlite::Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = Registry::open(&p).err().unwrap().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
}
