//! The NSF inventory: the security functions that report to Pharos, configured (`[[nsf]]`) or
//! registered automatically the first time an unknown sender speaks, with per-NSF counts and the
//! last time each was heard from.
//!
//! Contract:
//! - [`Inventory::resolve`] finds the NSF of a sender: configured entries by address (the most
//!   specific prefix wins) then by header hostname (case-insensitive), then automatically
//!   registered senders by exact address. [`Inventory::register`] adds an unknown sender under its
//!   address as name, with the format detected on its first line.
//! - Counts and last-seen times live in memory and are written to their own SQLite file by
//!   [`Inventory::flush`] (callers flush periodically and at shutdown); a restart keeps them, and
//!   keeps automatically registered senders. Configuration always wins over what was stored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, RwLock};

use ipnet::IpNet;
use pharos_model::Timestamp;
use rusqlite::{Connection, params};

use crate::StoreError;

/// Kinds of security function an `[[nsf]]` entry may declare.
pub const NSF_TYPES: &[&str] = &[
    "firewall",
    "ids",
    "ips",
    "waf",
    "antivirus",
    "ddos",
    "proxy",
    "vpn",
    "router",
    "switch",
    "server",
    "other",
];

/// One `[[nsf]]` entry of the configuration.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NsfConfig {
    /// Name stored as `nsf-name` in every message from this NSF.
    pub name: String,
    /// Sender addresses: IPs (`192.0.2.7`) or prefixes (`10.1.0.0/16`).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Header hostnames that identify it (case-insensitive), e.g. when it sends through a relay.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Vendor name (`vendor-name`), e.g. "Fortinet".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Device model (`device-model`), e.g. "FortiGate 100F".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What it is: one of [`NSF_TYPES`].
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub nsf_type: Option<String>,
    /// Log format name for its lines, or "auto" to detect per line.
    #[serde(default = "auto")]
    pub parser: String,
}

fn auto() -> String {
    "auto".into()
}

impl NsfConfig {
    /// Checks the entry; `index` is its position among the `[[nsf]]` entries, for messages.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        let at = format!("[[nsf]] #{} ({:?})", index + 1, self.name);
        if self.name.trim().is_empty() {
            return Err(format!(
                "[[nsf]] #{}: name is empty: give the NSF a name, e.g. name = \"fw1\"",
                index + 1
            ));
        }
        if self.addresses.is_empty() && self.hostnames.is_empty() {
            return Err(format!(
                "{at}: give at least one of addresses = [\"192.0.2.7\"] or hostnames = [\"fw1\"]"
            ));
        }
        for a in &self.addresses {
            parse_net(a).map_err(|e| format!("{at}: addresses: {e}"))?;
        }
        if let Some(t) = &self.nsf_type
            && !NSF_TYPES.contains(&t.as_str())
        {
            return Err(format!(
                "{at}: type = {t:?}: expected one of {}",
                NSF_TYPES.join(", ")
            ));
        }
        Ok(())
    }
}

/// Parses `192.0.2.7` (a host) or `10.0.0.0/8`.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(n) = IpNet::from_str(s) {
        return Ok(n.trunc());
    }
    IpAddr::from_str(s).map(IpNet::from).map_err(|_| {
        format!(
            "{s:?} is not an IP address or prefix (expected e.g. \"192.0.2.7\" or \"10.0.0.0/8\")"
        )
    })
}

/// One NSF with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct NsfEntry {
    /// Its name (`nsf-name`).
    pub name: String,
    /// True for `[[nsf]]` entries, false for senders registered automatically.
    pub configured: bool,
    /// Addresses or prefixes it sends from.
    pub addresses: Vec<IpNet>,
    /// Header hostnames that identify it.
    pub hostnames: Vec<String>,
    /// Vendor name.
    pub vendor: Option<String>,
    /// Device model.
    pub model: Option<String>,
    /// What it is (firewall, ids, ...).
    pub nsf_type: Option<String>,
    /// Configured parser ("auto" or a format name).
    pub parser: String,
    /// The format its lines were last recognised as.
    pub detected_format: Option<String>,
    /// Address it last sent from.
    pub last_address: Option<IpAddr>,
    /// First time a line was received.
    pub first_seen: Option<Timestamp>,
    /// Last time a line was received.
    pub last_seen: Option<Timestamp>,
    /// Lines received.
    pub received: u64,
    /// Lines a normaliser understood.
    pub parsed: u64,
    /// Lines stored as generic logs.
    pub unparsed: u64,
}

impl NsfEntry {
    fn from_config(c: &NsfConfig) -> Self {
        Self {
            name: c.name.clone(),
            configured: true,
            addresses: c
                .addresses
                .iter()
                .filter_map(|a| parse_net(a).ok())
                .collect(),
            hostnames: c.hostnames.iter().map(|h| h.to_ascii_lowercase()).collect(),
            vendor: c.vendor.clone(),
            model: c.model.clone(),
            nsf_type: c.nsf_type.clone(),
            parser: c.parser.clone(),
            detected_format: None,
            last_address: None,
            first_seen: None,
            last_seen: None,
            received: 0,
            parsed: 0,
            unparsed: 0,
        }
    }

    fn auto(addr: IpAddr, format: Option<&str>) -> Self {
        Self {
            name: addr.to_string(),
            configured: false,
            addresses: vec![IpNet::from(addr)],
            hostnames: Vec::new(),
            vendor: None,
            model: None,
            nsf_type: None,
            parser: "auto".into(),
            detected_format: format.map(str::to_string),
            last_address: Some(addr),
            first_seen: None,
            last_seen: None,
            received: 0,
            parsed: 0,
            unparsed: 0,
        }
    }
}

/// What the normalise stage needs to know about a sender's NSF.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Index of the entry (stable while the inventory lives).
    pub index: usize,
    /// The NSF name.
    pub name: String,
    /// Its parser ("auto" or a format name).
    pub parser: String,
    /// Vendor name, if configured.
    pub vendor: Option<String>,
    /// Device model, if configured.
    pub model: Option<String>,
}

/// Counts to add to one NSF after a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NsfCounts {
    /// Lines received.
    pub received: u64,
    /// Lines understood.
    pub parsed: u64,
    /// Lines stored as generic logs.
    pub unparsed: u64,
}

#[derive(Default)]
struct State {
    entries: Vec<NsfEntry>,
    /// Automatically registered senders by address.
    auto: HashMap<IpAddr, usize>,
    /// The shared entry of senders beyond the automatic registration limit.
    overflow: Option<usize>,
    dirty: bool,
}

/// Name of the one entry that counts the senders that arrive after the automatic registration
/// limit was reached (spoofed UDP sources must not grow the inventory without bound).
pub const OVERFLOW_NSF: &str = "unregistered-senders";

fn overflow_entry() -> NsfEntry {
    NsfEntry {
        name: OVERFLOW_NSF.into(),
        configured: false,
        addresses: Vec::new(),
        hostnames: Vec::new(),
        vendor: None,
        model: None,
        nsf_type: None,
        parser: "auto".into(),
        detected_format: None,
        last_address: None,
        first_seen: None,
        last_seen: None,
        received: 0,
        parsed: 0,
        unparsed: 0,
    }
}

/// The inventory, shared by the normalise stage (writes) and the API (reads).
pub struct Inventory {
    state: RwLock<State>,
    db: Option<Mutex<Connection>>,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("persistent", &self.db.is_some())
            .finish()
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS nsf (
    name TEXT PRIMARY KEY,
    configured INTEGER NOT NULL,
    address TEXT,
    detected_format TEXT,
    first_seen TEXT,
    last_seen TEXT,
    received INTEGER NOT NULL DEFAULT 0,
    parsed INTEGER NOT NULL DEFAULT 0,
    unparsed INTEGER NOT NULL DEFAULT 0
)";

fn parse_time(s: Option<String>) -> Option<Timestamp> {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

impl Inventory {
    /// An inventory of `configured` entries kept in memory only.
    pub fn in_memory(configured: &[NsfConfig]) -> Self {
        let entries = configured.iter().map(NsfEntry::from_config).collect();
        Self {
            state: RwLock::new(State {
                entries,
                ..State::default()
            }),
            db: None,
        }
    }

    /// Opens (or creates) the inventory file at `path` and merges it with `configured`.
    pub fn open(path: &Path, configured: &[NsfConfig]) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
        conn.execute_batch(SCHEMA)?;
        let inv = Self::in_memory(configured);
        {
            let mut st = inv.state.write().unwrap_or_else(|e| e.into_inner());
            let mut stmt = conn.prepare(
                "SELECT name, configured, address, detected_format, first_seen, last_seen, received, parsed, unparsed FROM nsf",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })?;
            for row in rows {
                let (
                    name,
                    was_configured,
                    address,
                    detected,
                    first,
                    last,
                    received,
                    parsed,
                    unparsed,
                ) = row?;
                let address = address.and_then(|a| a.parse::<IpAddr>().ok());
                let idx = match st.entries.iter().position(|e| e.name == name) {
                    Some(i) => i,
                    // An [[nsf]] entry since removed from the configuration is forgotten.
                    None if was_configured => continue,
                    None if name == OVERFLOW_NSF => {
                        st.entries.push(overflow_entry());
                        let i = st.entries.len() - 1;
                        st.overflow = Some(i);
                        i
                    }
                    None => {
                        // A sender registered automatically in an earlier run.
                        let Some(addr) = address.or_else(|| name.parse().ok()) else {
                            continue;
                        };
                        if st.auto.contains_key(&addr) {
                            continue;
                        }
                        let mut e = NsfEntry::auto(addr, None);
                        e.name = name.clone();
                        st.entries.push(e);
                        let i = st.entries.len() - 1;
                        st.auto.insert(addr, i);
                        i
                    }
                };
                let e = &mut st.entries[idx];
                e.detected_format = detected;
                e.first_seen = parse_time(first);
                e.last_seen = parse_time(last);
                e.last_address = address;
                e.received = received.max(0) as u64;
                e.parsed = parsed.max(0) as u64;
                e.unparsed = unparsed.max(0) as u64;
            }
        }
        Ok(Self {
            state: inv.state,
            db: Some(Mutex::new(conn)),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn resolved(i: usize, e: &NsfEntry) -> Resolved {
        Resolved {
            index: i,
            name: e.name.clone(),
            parser: e.parser.clone(),
            vendor: e.vendor.clone(),
            model: e.model.clone(),
        }
    }

    /// The NSF of a sender at `peer` whose header named `hostname`, if known.
    pub fn resolve(&self, peer: IpAddr, hostname: Option<&str>) -> Option<Resolved> {
        let st = self.read();
        let mut best: Option<(u8, usize)> = None;
        for (i, e) in st.entries.iter().enumerate().filter(|(_, e)| e.configured) {
            for net in &e.addresses {
                if net.contains(&peer) && best.is_none_or(|(len, _)| net.prefix_len() > len) {
                    best = Some((net.prefix_len(), i));
                }
            }
        }
        if let Some((_, i)) = best {
            return Some(Self::resolved(i, &st.entries[i]));
        }
        if let Some(h) = hostname.filter(|h| !h.is_empty())
            && let Some((i, e)) = st.entries.iter().enumerate().find(|(_, e)| {
                e.configured && e.hostnames.iter().any(|x| x.eq_ignore_ascii_case(h))
            })
        {
            return Some(Self::resolved(i, e));
        }
        st.auto
            .get(&peer)
            .map(|&i| Self::resolved(i, &st.entries[i]))
    }

    /// The index of the configured entry named exactly `name` (pushing NSFs name themselves).
    pub fn find_configured(&self, name: &str) -> Option<usize> {
        self.read()
            .entries
            .iter()
            .position(|e| e.configured && e.name == name)
    }

    /// Registers an unknown sender under its address, with the format detected on its first line;
    /// once `limit` senders were registered automatically, further ones share [`OVERFLOW_NSF`].
    pub fn register(&self, peer: IpAddr, format: Option<&str>, limit: usize) -> Resolved {
        let mut st = self.write();
        if let Some(&i) = st.auto.get(&peer) {
            return Self::resolved(i, &st.entries[i]);
        }
        if st.auto.len() >= limit {
            let i = match st.overflow {
                Some(i) => i,
                None => {
                    st.entries.push(overflow_entry());
                    let i = st.entries.len() - 1;
                    st.overflow = Some(i);
                    st.dirty = true;
                    i
                }
            };
            return Self::resolved(i, &st.entries[i]);
        }
        st.entries.push(NsfEntry::auto(peer, format));
        let i = st.entries.len() - 1;
        st.auto.insert(peer, i);
        st.dirty = true;
        Self::resolved(i, &st.entries[i])
    }

    /// Adds counts to the entry at `index`, marks it seen at `when` from `peer`, and remembers the
    /// format its lines were recognised as.
    pub fn record(
        &self,
        index: usize,
        counts: NsfCounts,
        when: Timestamp,
        peer: IpAddr,
        format: Option<&str>,
    ) {
        let mut st = self.write();
        let Some(e) = st.entries.get_mut(index) else {
            return;
        };
        e.received += counts.received;
        e.parsed += counts.parsed;
        e.unparsed += counts.unparsed;
        e.first_seen.get_or_insert(when);
        if e.last_seen.is_none_or(|t| t < when) {
            e.last_seen = Some(when);
        }
        e.last_address = Some(peer);
        if let Some(f) = format
            && e.detected_format.as_deref() != Some(f)
        {
            e.detected_format = Some(f.to_string());
        }
        st.dirty = true;
    }

    /// Every NSF, configured ones first, then automatic ones in order of registration.
    pub fn list(&self) -> Vec<NsfEntry> {
        self.read().entries.clone()
    }

    /// Writes counts and automatically registered senders to the inventory file (no-op in memory
    /// or when nothing changed).
    pub fn flush(&self) -> Result<(), StoreError> {
        let Some(db) = &self.db else { return Ok(()) };
        let entries = {
            let mut st = self.write();
            if !st.dirty {
                return Ok(());
            }
            st.dirty = false;
            st.entries.clone()
        };
        let mut conn = db.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO nsf (name, configured, address, detected_format, first_seen, last_seen, received, parsed, unparsed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(name) DO UPDATE SET configured = ?2, address = ?3, detected_format = ?4, first_seen = ?5,
                   last_seen = ?6, received = ?7, parsed = ?8, unparsed = ?9",
            )?;
            for e in &entries {
                stmt.execute(params![
                    e.name,
                    e.configured,
                    e.last_address.map(|a| a.to_string()),
                    e.detected_format,
                    e.first_seen.map(|t| t.to_rfc3339()),
                    e.last_seen.map(|t| t.to_rfc3339()),
                    e.received as i64,
                    e.parsed as i64,
                    e.unparsed as i64,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, addrs: &[&str], hosts: &[&str]) -> NsfConfig {
        NsfConfig {
            name: name.into(),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            hostnames: hosts.iter().map(|s| s.to_string()).collect(),
            vendor: Some("Fortinet".into()),
            model: None,
            nsf_type: Some("firewall".into()),
            parser: "fortigate".into(),
        }
    }

    #[test]
    fn most_specific_prefix_then_hostname_then_automatic() {
        let inv = Inventory::in_memory(&[
            cfg("net", &["10.0.0.0/8"], &[]),
            cfg("host", &["10.1.2.3"], &["FW9"]),
        ]);
        assert_eq!(
            inv.resolve("10.1.2.3".parse().unwrap(), None).unwrap().name,
            "host"
        );
        assert_eq!(
            inv.resolve("10.9.9.9".parse().unwrap(), None).unwrap().name,
            "net"
        );
        assert_eq!(
            inv.resolve("192.0.2.1".parse().unwrap(), Some("fw9"))
                .unwrap()
                .name,
            "host"
        );
        assert!(inv.resolve("192.0.2.1".parse().unwrap(), None).is_none());
        let r = inv.register("192.0.2.1".parse().unwrap(), Some("sshd"), 10);
        assert_eq!(r.name, "192.0.2.1");
        assert_eq!(
            inv.resolve("192.0.2.1".parse().unwrap(), None)
                .unwrap()
                .index,
            r.index
        );
        assert_eq!(inv.list()[r.index].detected_format.as_deref(), Some("sshd"));
    }

    #[test]
    fn counts_and_automatic_senders_survive_a_restart_and_config_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nsfs.db");
        let now = chrono::Utc::now();
        {
            let inv = Inventory::open(&path, &[cfg("fw", &["192.0.2.7"], &[])]).unwrap();
            let fw = inv.resolve("192.0.2.7".parse().unwrap(), None).unwrap();
            inv.record(
                fw.index,
                NsfCounts {
                    received: 3,
                    parsed: 2,
                    unparsed: 1,
                },
                now,
                "192.0.2.7".parse().unwrap(),
                Some("fortigate"),
            );
            let a = inv.register("198.51.100.1".parse().unwrap(), None, 10);
            inv.record(
                a.index,
                NsfCounts {
                    received: 1,
                    parsed: 0,
                    unparsed: 1,
                },
                now,
                "198.51.100.1".parse().unwrap(),
                None,
            );
            inv.flush().unwrap();
        }
        let mut c = cfg("fw", &["192.0.2.7"], &[]);
        c.parser = "auto".into();
        let inv = Inventory::open(&path, &[c]).unwrap();
        let list = inv.list();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (
                list[0].name.as_str(),
                list[0].received,
                list[0].parsed,
                list[0].unparsed
            ),
            ("fw", 3, 2, 1)
        );
        assert_eq!(list[0].parser, "auto");
        assert_eq!(list[0].detected_format.as_deref(), Some("fortigate"));
        assert_eq!(
            (list[1].name.as_str(), list[1].configured, list[1].unparsed),
            ("198.51.100.1", false, 1)
        );
        assert!(inv.resolve("198.51.100.1".parse().unwrap(), None).is_some());
    }

    #[test]
    fn senders_beyond_the_limit_share_one_entry() {
        let inv = Inventory::in_memory(&[]);
        let a = inv.register("192.0.2.1".parse().unwrap(), None, 2);
        let b = inv.register("192.0.2.2".parse().unwrap(), None, 2);
        let c = inv.register("192.0.2.3".parse().unwrap(), None, 2);
        let d = inv.register("192.0.2.4".parse().unwrap(), None, 2);
        assert_ne!(a.index, b.index);
        assert_eq!((c.name.as_str(), c.index), (OVERFLOW_NSF, d.index));
        assert_eq!(inv.list().len(), 3);
        assert_eq!(
            inv.register("192.0.2.1".parse().unwrap(), None, 2).index,
            a.index
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let e = cfg("x", &["10.0.0.0/33"], &[]).validate(0).unwrap_err();
        assert!(e.contains("[[nsf]] #1") && e.contains("10.0.0.0/33"), "{e}");
        let mut c = cfg("x", &["10.0.0.1"], &[]);
        c.nsf_type = Some("toaster".into());
        assert!(
            c.validate(2)
                .unwrap_err()
                .contains("expected one of firewall")
        );
        assert!(
            cfg("x", &[], &[])
                .validate(0)
                .unwrap_err()
                .contains("at least one")
        );
    }
}
