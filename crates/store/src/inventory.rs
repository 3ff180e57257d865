//! The NSF inventory: the security functions that report to Pharos, configured (`[[nsf]]`) or
//! registered automatically the first time an unknown sender speaks, with per-NSF counts and the
//! last time each was heard from.
//!
//! Contract:
//! - [`Inventory::resolve`] finds the NSF of a line from `peer` whose header named `hostname`:
//!   - from a relay ([`Inventory::set_relays`]) with a hostname: the configured entry whose
//!     `hostnames` or `name` is that hostname (case-insensitive), else the hostname entry that a
//!     relay of the same `[[syslog.relay]]` registered. A hostname registered through another
//!     relay (or taken by a sender's address entry) is not claimed: a relay may only register
//!     hostnames for itself, and such lines fall through to the relay's own address, below;
//!   - from any other sender (or a relay line without a hostname): configured entries by address
//!     (the most specific prefix wins), then by header hostname or name (case-insensitive), then
//!     automatically registered senders by exact address. Relay-registered hostnames are not
//!     matched: a sender that is not a relay cannot feed a relay's devices.
//! - [`Inventory::register`] adds what `resolve` did not find: a relay's hostname (at most
//!   `max_hostnames` per relay), else the sender under its address as name; in both cases with the
//!   format its first line was recognised as, and at most `limit` automatic entries in all.
//! - Counts and last-seen times live in memory and are written to their own SQLite file by
//!   [`Inventory::flush`] (callers flush periodically and at shutdown); a restart keeps them, and
//!   keeps automatically registered senders. Configuration always wins over what was stored.
//! - Flow exporters are listed apart ([`Inventory::exporters`]): the live clock table of the flow
//!   collector ([`Inventory::set_exporter_clocks`]), each with the configured NSF whose addresses
//!   contain it, if any. They are not written to the inventory file (a restart estimates anew).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, RwLock};

use ipnet::IpNet;
use pharos_model::Timestamp;
use pharos_model::flow::{ExporterClock, ExporterClocks};
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
    /// For an entry registered from a relay's header hostname: the relay address that registered
    /// it (the relay entry it belongs to is the one containing this address).
    pub relay: Option<IpAddr>,
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
            relay: None,
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
            relay: None,
        }
    }

    /// An entry for `hostname`, registered from the header of a line relayed by `relay`.
    fn relayed(hostname: &str, relay: IpAddr, format: Option<&str>) -> Self {
        Self {
            name: hostname.to_string(),
            addresses: Vec::new(),
            hostnames: vec![hostname.to_ascii_lowercase()],
            relay: Some(relay),
            ..Self::auto(relay, format)
        }
    }
}

/// A `[[syslog.relay]]` entry as the inventory uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Relay {
    /// Its addresses or prefixes.
    pub addresses: Vec<IpNet>,
    /// Most hostnames it may register automatically.
    pub max_hostnames: usize,
}

/// What [`Inventory::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Nothing: the entry existed (e.g. the relay's own address entry, when its line named a
    /// hostname it may not claim).
    Existing,
    /// A new entry named by the sender's address.
    Address,
    /// A new entry named by the header hostname of a relayed line.
    Hostname,
    /// A limit was reached: the line counts under [`OVERFLOW_NSF`].
    Overflow,
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
    /// Entries registered from relayed header hostnames, by lower-case hostname.
    hosts: HashMap<String, usize>,
    /// Entries registered automatically (by address or hostname), for the overall limit.
    auto_entries: usize,
    /// The `[[syslog.relay]]` entries.
    relays: Vec<Relay>,
    /// Hostnames registered per relay (index in `relays`).
    relay_hostnames: HashMap<usize, usize>,
    /// The shared entry of senders beyond the automatic registration limit.
    overflow: Option<usize>,
    dirty: bool,
}

impl State {
    /// The configured entry whose `addresses` contain `peer` (the most specific prefix wins).
    fn configured_address(&self, peer: IpAddr) -> Option<usize> {
        let mut best: Option<(u8, usize)> = None;
        for (i, e) in self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.configured)
        {
            for net in &e.addresses {
                if net.contains(&peer) && best.is_none_or(|(len, _)| net.prefix_len() > len) {
                    best = Some((net.prefix_len(), i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// The relay `peer` belongs to (the most specific prefix wins).
    fn relay_of(&self, peer: IpAddr) -> Option<usize> {
        let mut best: Option<(u8, usize)> = None;
        for (i, r) in self.relays.iter().enumerate() {
            for net in &r.addresses {
                if net.contains(&peer) && best.is_none_or(|(len, _)| net.prefix_len() > len) {
                    best = Some((net.prefix_len(), i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// The configured entry whose `hostnames` or `name` is `host` (case-insensitive).
    fn configured_host(&self, host: &str) -> Option<usize> {
        self.entries.iter().position(|e| {
            e.configured
                && (e.name.eq_ignore_ascii_case(host)
                    || e.hostnames.iter().any(|x| x.eq_ignore_ascii_case(host)))
        })
    }

    /// The hostname entry for `host` when a relay of the same relay entry as `relay` registered it.
    fn relayed_host(&self, host: &str, relay: usize) -> Option<usize> {
        let &i = self.hosts.get(&host.to_ascii_lowercase())?;
        let owner = self.entries[i].relay.and_then(|a| self.relay_of(a));
        (owner == Some(relay)).then_some(i)
    }

    /// True when some entry is already named `name` (case-insensitive).
    fn name_taken(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.name.eq_ignore_ascii_case(name))
    }

    /// Hostnames registered per relay, recounted (after loading or a change of relays).
    fn count_relay_hostnames(&mut self) {
        let mut counts = HashMap::new();
        for &i in self.hosts.values() {
            if let Some(r) = self.entries[i].relay.and_then(|a| self.relay_of(a)) {
                *counts.entry(r).or_insert(0) += 1;
            }
        }
        self.relay_hostnames = counts;
    }

    /// The shared entry of senders beyond a limit, created on first use.
    fn overflow(&mut self) -> usize {
        match self.overflow {
            Some(i) => i,
            None => {
                self.entries.push(overflow_entry());
                let i = self.entries.len() - 1;
                self.overflow = Some(i);
                self.dirty = true;
                i
            }
        }
    }
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
        relay: None,
    }
}

/// One flow exporter of the inventory: its clock as the collector estimates it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExporterEntry {
    /// The exporter, its observation domain and its clock offset.
    pub clock: ExporterClock,
    /// The configured NSF (`[[nsf]] addresses`) the exporter's address belongs to, if any.
    pub nsf: Option<String>,
}

/// The inventory, shared by the normalise stage (writes) and the API (reads).
pub struct Inventory {
    state: RwLock<State>,
    db: Option<Mutex<Connection>>,
    /// The flow collector's exporter clocks (an empty table of its own until set).
    clocks: RwLock<ExporterClocks>,
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
    unparsed INTEGER NOT NULL DEFAULT 0,
    relay TEXT
)";

/// Adds the `relay` column (entries registered from a relay's header hostname) to an inventory
/// file written before it existed.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_relay = conn
        .prepare("SELECT 1 FROM pragma_table_info('nsf') WHERE name = 'relay'")?
        .exists([])?;
    if !has_relay {
        conn.execute_batch("ALTER TABLE nsf ADD COLUMN relay TEXT")?;
    }
    Ok(())
}

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
            clocks: RwLock::default(),
        }
    }

    /// Opens (or creates) the inventory file at `path` and merges it with `configured`.
    pub fn open(path: &Path, configured: &[NsfConfig]) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        let inv = Self::in_memory(configured);
        {
            let mut st = inv.state.write().unwrap_or_else(|e| e.into_inner());
            let mut stmt = conn.prepare(
                "SELECT name, configured, address, detected_format, first_seen, last_seen, received, parsed, unparsed, relay FROM nsf",
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
                    r.get::<_, Option<String>>(9)?,
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
                    relay,
                ) = row?;
                let address = address.and_then(|a| a.parse::<IpAddr>().ok());
                let relay = relay.and_then(|a| a.parse::<IpAddr>().ok());
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
                    None if relay.is_some() => {
                        // A hostname a relay registered in an earlier run.
                        let key = name.to_ascii_lowercase();
                        if st.hosts.contains_key(&key) {
                            continue;
                        }
                        let Some(r) = relay else { continue };
                        st.entries.push(NsfEntry::relayed(&name, r, None));
                        let i = st.entries.len() - 1;
                        st.hosts.insert(key, i);
                        st.auto_entries += 1;
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
                        st.auto_entries += 1;
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
            clocks: inv.clocks,
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

    /// Declares the `[[syslog.relay]]` entries (replacing earlier ones): lines from their
    /// addresses are attributed to the hostname their header names.
    pub fn set_relays(&self, relays: Vec<Relay>) {
        let mut st = self.write();
        st.relays = relays;
        st.count_relay_hostnames();
    }

    /// The NSF of a line from `peer` whose header named `hostname`, if known (module doc for the
    /// order); `None` when [`Inventory::register`] should decide.
    pub fn resolve(&self, peer: IpAddr, hostname: Option<&str>) -> Option<Resolved> {
        let st = self.read();
        let host = hostname.filter(|h| !h.is_empty());
        let found = match (st.relay_of(peer), host) {
            (Some(relay), Some(h)) => {
                match st.configured_host(h).or_else(|| st.relayed_host(h, relay)) {
                    Some(i) => Some(i),
                    // A hostname nobody has yet: the relay may register it.
                    None if !st.name_taken(h) => return None,
                    // Another relay's hostname or a sender's address: the relay's own entry.
                    None => st
                        .configured_address(peer)
                        .or_else(|| st.auto.get(&peer).copied()),
                }
            }
            _ => st
                .configured_address(peer)
                .or_else(|| host.and_then(|h| st.configured_host(h)))
                .or_else(|| st.auto.get(&peer).copied()),
        };
        found.map(|i| Self::resolved(i, &st.entries[i]))
    }

    /// The index of the configured entry named exactly `name` (pushing NSFs name themselves).
    pub fn find_configured(&self, name: &str) -> Option<usize> {
        self.read()
            .entries
            .iter()
            .position(|e| e.configured && e.name == name)
    }

    /// Registers what [`Inventory::resolve`] did not find, with `format`, the format its first
    /// line was recognised as: from a relay, the header `hostname` when no entry has that name yet
    /// (at most the relay's `max_hostnames`); else the sender under its address as name (an entry
    /// already named by that address, e.g. a hostname a relay registered for a device that names
    /// itself by its address, is the sender's). Once `limit` entries were registered automatically,
    /// or the relay registered its `max_hostnames`, further ones share [`OVERFLOW_NSF`].
    pub fn register(
        &self,
        peer: IpAddr,
        hostname: Option<&str>,
        format: Option<&str>,
        limit: usize,
    ) -> (Resolved, Registration) {
        let mut st = self.write();
        let (i, how) = Self::register_in(&mut st, peer, hostname, format, limit);
        (Self::resolved(i, &st.entries[i]), how)
    }

    fn register_in(
        st: &mut State,
        peer: IpAddr,
        hostname: Option<&str>,
        format: Option<&str>,
        limit: usize,
    ) -> (usize, Registration) {
        if let (Some(relay), Some(h)) = (st.relay_of(peer), hostname.filter(|h| !h.is_empty())) {
            if let Some(i) = st.configured_host(h).or_else(|| st.relayed_host(h, relay)) {
                return (i, Registration::Existing);
            }
            if !st.name_taken(h) {
                let used = st.relay_hostnames.get(&relay).copied().unwrap_or(0);
                if st.auto_entries >= limit || used >= st.relays[relay].max_hostnames {
                    return (st.overflow(), Registration::Overflow);
                }
                st.entries.push(NsfEntry::relayed(h, peer, format));
                let i = st.entries.len() - 1;
                st.hosts.insert(h.to_ascii_lowercase(), i);
                st.auto_entries += 1;
                *st.relay_hostnames.entry(relay).or_insert(0) += 1;
                st.dirty = true;
                return (i, Registration::Hostname);
            }
            // Taken: the relay's own entry, by address, below.
        }
        if let Some(&i) = st.auto.get(&peer) {
            return (i, Registration::Existing);
        }
        let name = peer.to_string();
        if let Some(i) = st.entries.iter().position(|e| e.name == name) {
            st.auto.insert(peer, i);
            return (i, Registration::Existing);
        }
        if st.auto_entries >= limit {
            return (st.overflow(), Registration::Overflow);
        }
        st.entries.push(NsfEntry::auto(peer, format));
        let i = st.entries.len() - 1;
        st.auto.insert(peer, i);
        st.auto_entries += 1;
        st.dirty = true;
        (i, Registration::Address)
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

    /// Lists the exporters of `clocks` (the flow collector's table, a shared handle) from now on.
    pub fn set_exporter_clocks(&self, clocks: ExporterClocks) {
        *self.clocks.write().unwrap_or_else(|e| e.into_inner()) = clocks;
    }

    /// Every flow exporter and observation domain the flow collector tracks, ordered by address
    /// and domain, with its clock offset.
    pub fn exporters(&self) -> Vec<ExporterEntry> {
        let clocks = self
            .clocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot();
        let st = self.read();
        clocks
            .into_iter()
            .map(|clock| ExporterEntry {
                nsf: st
                    .configured_address(clock.exporter)
                    .map(|i| st.entries[i].name.clone()),
                clock,
            })
            .collect()
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
                "INSERT INTO nsf (name, configured, address, detected_format, first_seen, last_seen, received, parsed, unparsed, relay)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(name) DO UPDATE SET configured = ?2, address = ?3, detected_format = ?4, first_seen = ?5,
                   last_seen = ?6, received = ?7, parsed = ?8, unparsed = ?9, relay = ?10",
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
                    e.relay.map(|a| a.to_string()),
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
        let r = inv
            .register("192.0.2.1".parse().unwrap(), None, Some("sshd"), 10)
            .0;
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
    fn exporters_are_the_collectors_clocks_with_their_configured_nsf() {
        let inv = Inventory::in_memory(&[cfg("edge", &["192.0.2.0/28"], &[])]);
        assert!(inv.exporters().is_empty());
        let clocks = ExporterClocks::default();
        inv.set_exporter_clocks(clocks.clone());
        let clock = |ip: &str, offset_ms| ExporterClock {
            exporter: ip.parse().unwrap(),
            domain: 0,
            offset_ms,
            correction_ms: offset_ms,
            samples: 15,
            datagrams: 20,
            last_received_ms: 1,
            last_export_ms: 1,
        };
        clocks.update(clock("198.51.100.1", 90_000));
        clocks.update(clock("192.0.2.5", -31_536_000_000));
        let got = inv.exporters();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].clock.exporter.to_string(), "192.0.2.5");
        assert_eq!(got[0].nsf.as_deref(), Some("edge"));
        assert_eq!(got[0].clock.offset_ms, -31_536_000_000);
        assert_eq!(got[1].nsf, None);
        // the table is live: what the collector publishes later shows
        clocks.update(clock("198.51.100.1", 10));
        assert_eq!(inv.exporters()[1].clock.offset_ms, 10);
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
            let (a, _) = inv.register("198.51.100.1".parse().unwrap(), None, None, 10);
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
        let (a, _) = inv.register("192.0.2.1".parse().unwrap(), None, None, 2);
        let (b, _) = inv.register("192.0.2.2".parse().unwrap(), None, None, 2);
        let (c, _) = inv.register("192.0.2.3".parse().unwrap(), None, None, 2);
        let (d, _) = inv.register("192.0.2.4".parse().unwrap(), None, None, 2);
        assert_ne!(a.index, b.index);
        assert_eq!((c.name.as_str(), c.index), (OVERFLOW_NSF, d.index));
        assert_eq!(inv.list().len(), 3);
        assert_eq!(
            inv.register("192.0.2.1".parse().unwrap(), None, None, 2)
                .0
                .index,
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
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn relays(inv: &Inventory, max_hostnames: usize) {
        inv.set_relays(vec![
            // A redundant pair: one relay entry, one set of hostnames.
            Relay {
                addresses: vec![
                    parse_net("10.9.0.1").unwrap(),
                    parse_net("10.9.0.2").unwrap(),
                ],
                max_hostnames,
            },
            Relay {
                addresses: vec![parse_net("10.8.0.0/24").unwrap()],
                max_hostnames,
            },
        ]);
    }

    #[test]
    fn relay_lines_belong_to_their_header_hostname_and_only_that_relay_may_claim_it() {
        let inv = Inventory::in_memory(&[cfg("edge", &["192.0.2.7"], &["edge-fw"])]);
        relays(&inv, 10);
        let relay = ip("10.9.0.1");
        // Unknown to the inventory: resolve leaves it to register, which names it by the hostname.
        assert!(inv.resolve(relay, Some("asa-1")).is_none());
        let (r, how) = inv.register(relay, Some("asa-1"), Some("cisco-asa"), 100);
        assert_eq!((r.name.as_str(), how), ("asa-1", Registration::Hostname));
        let e = &inv.list()[r.index];
        assert_eq!(e.relay, Some(relay));
        assert_eq!(e.detected_format.as_deref(), Some("cisco-asa"));
        // Case-insensitive, and the other relay of the same pair shares it.
        assert_eq!(
            inv.resolve(ip("10.9.0.2"), Some("ASA-1")).unwrap().index,
            r.index
        );
        // Configured NSFs by hostname or by name, even those that send from an address.
        assert_eq!(inv.resolve(relay, Some("edge-fw")).unwrap().name, "edge");
        assert_eq!(inv.resolve(relay, Some("EDGE")).unwrap().name, "edge");
        // A relay's own lines (no hostname) are its own.
        assert!(inv.resolve(relay, None).is_none());
        let (own, how) = inv.register(relay, None, None, 100);
        assert_eq!(
            (own.name.as_str(), how),
            ("10.9.0.1", Registration::Address)
        );
        // Another relay may not claim asa-1: its lines stay under its own address.
        let other = ip("10.8.0.5");
        assert!(inv.resolve(other, Some("asa-1")).is_none());
        let (o, how) = inv.register(other, Some("asa-1"), None, 100);
        assert_eq!((o.name.as_str(), how), ("10.8.0.5", Registration::Address));
        assert_eq!(inv.resolve(other, Some("asa-1")).unwrap().index, o.index);
        // Nor may a relay claim a sender's address entry by naming it.
        assert_eq!(inv.resolve(other, Some("10.9.0.1")).unwrap().index, o.index);
        // A sender that is not a relay: its header hostname is used for configured NSFs only.
        let direct = ip("198.51.100.4");
        assert_eq!(inv.resolve(direct, Some("edge-fw")).unwrap().name, "edge");
        assert_eq!(inv.resolve(direct, Some("edge")).unwrap().name, "edge");
        assert!(inv.resolve(direct, Some("asa-1")).is_none());
        let (d, _) = inv.register(direct, Some("asa-1"), None, 100);
        assert_eq!(d.name, "198.51.100.4");
        // An address bound in [[nsf]] wins over a hostname for senders that are not relays.
        assert_eq!(
            inv.resolve(ip("192.0.2.7"), Some("asa-1")).unwrap().name,
            "edge"
        );
    }

    #[test]
    fn a_device_named_by_its_address_through_a_relay_keeps_its_entry_when_it_sends_directly() {
        let inv = Inventory::in_memory(&[]);
        relays(&inv, 10);
        let (r, _) = inv.register(ip("10.9.0.1"), Some("192.0.2.50"), None, 100);
        assert_eq!(r.name, "192.0.2.50");
        let (d, how) = inv.register(ip("192.0.2.50"), None, None, 100);
        assert_eq!((d.index, how), (r.index, Registration::Existing));
        assert_eq!(inv.resolve(ip("192.0.2.50"), None).unwrap().index, r.index);
        assert_eq!(inv.list().len(), 1, "one name, one entry");
    }

    #[test]
    fn hostnames_beyond_a_relays_limit_share_one_entry() {
        let inv = Inventory::in_memory(&[]);
        relays(&inv, 2);
        let relay = ip("10.9.0.1");
        let names: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|h| inv.register(relay, Some(h), None, 100))
            .collect();
        assert_eq!(names[1].1, Registration::Hostname);
        assert_eq!(
            (names[2].0.name.as_str(), names[2].1),
            (OVERFLOW_NSF, Registration::Overflow)
        );
        assert_eq!(names[3].0.index, names[2].0.index);
        // The other relay has its own allowance; the overall limit still applies.
        let (e, how) = inv.register(ip("10.8.0.1"), Some("e"), None, 100);
        assert_eq!((e.name.as_str(), how), ("e", Registration::Hostname));
        let (_, how) = inv.register(ip("10.8.0.1"), Some("f"), None, 3);
        assert_eq!(how, Registration::Overflow);
        // Known hostnames keep resolving once the limit is reached.
        assert_eq!(
            inv.resolve(relay, Some("a")).unwrap().index,
            names[0].0.index
        );
    }

    #[test]
    fn relayed_hostnames_survive_a_restart_in_an_inventory_file_older_than_relays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nsfs.db");
        {
            // A file written before the relay column existed.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE nsf (name TEXT PRIMARY KEY, configured INTEGER NOT NULL, address TEXT,
                 detected_format TEXT, first_seen TEXT, last_seen TEXT, received INTEGER NOT NULL DEFAULT 0,
                 parsed INTEGER NOT NULL DEFAULT 0, unparsed INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO nsf (name, configured, address, received) VALUES ('192.0.2.1', 0, '192.0.2.1', 4);",
            )
            .unwrap();
        }
        let index = {
            let inv = Inventory::open(&path, &[]).unwrap();
            relays(&inv, 1);
            let (r, _) = inv.register(ip("10.9.0.1"), Some("asa-1"), Some("cisco-asa"), 100);
            inv.record(
                r.index,
                NsfCounts {
                    received: 2,
                    parsed: 2,
                    unparsed: 0,
                },
                chrono::Utc::now(),
                ip("10.9.0.2"),
                Some("cisco-asa"),
            );
            inv.flush().unwrap();
            r.index
        };
        let inv = Inventory::open(&path, &[]).unwrap();
        relays(&inv, 1);
        let e = &inv.list()[index];
        assert_eq!(
            (e.name.as_str(), e.received, e.relay),
            ("asa-1", 2, Some(ip("10.9.0.1")))
        );
        assert_eq!(e.last_address, Some(ip("10.9.0.2")));
        assert_eq!(
            inv.resolve(ip("10.9.0.2"), Some("asa-1")).unwrap().index,
            index
        );
        assert!(
            inv.resolve(ip("10.8.0.1"), Some("asa-1"))
                .is_none_or(|r| r.index != index)
        );
        // The relay's allowance (1) was used before the restart.
        assert_eq!(
            inv.register(ip("10.9.0.1"), Some("asa-2"), None, 100).1,
            Registration::Overflow
        );
        assert_eq!(
            inv.resolve(ip("192.0.2.1"), None).unwrap().name,
            "192.0.2.1"
        );
    }
}
