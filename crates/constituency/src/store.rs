//! The registry in SQLite: schema, layers, imports as one transaction, lookups.

use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{Contact, Layer, Match, MatchedBy, OrgSummary, Organisation, Policy};
use crate::table::{PrefixEntry, PrefixTable, PrefixTableBuilder};
use crate::{MANUAL_SOURCE, Query};

/// The newest schema version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS org (
    id INTEGER PRIMARY KEY,
    layer TEXT NOT NULL CHECK (layer IN ('automatic', 'manual')),
    source TEXT NOT NULL,
    handle TEXT NOT NULL,
    name TEXT NOT NULL,
    country TEXT NOT NULL,
    UNIQUE (layer, source, handle)
);
CREATE INDEX IF NOT EXISTS org_handle ON org (handle);
CREATE TABLE IF NOT EXISTS prefix (org INTEGER NOT NULL, prefix TEXT NOT NULL, abuse_mail TEXT);
CREATE INDEX IF NOT EXISTS prefix_org ON prefix (org);
CREATE TABLE IF NOT EXISTS asn (org INTEGER NOT NULL, asn INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS asn_org ON asn (org);
CREATE INDEX IF NOT EXISTS asn_asn ON asn (asn);
CREATE TABLE IF NOT EXISTS domain (org INTEGER NOT NULL, name TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS domain_org ON domain (org);
CREATE INDEX IF NOT EXISTS domain_name ON domain (name);
CREATE TABLE IF NOT EXISTS contact (
    org INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    mail TEXT,
    webhook TEXT,
    policy TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_org ON contact (org);
CREATE TABLE IF NOT EXISTS import (
    source TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    report TEXT NOT NULL
);
";

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The source name whose automatic data was replaced.
    pub source: String,
    /// `csv` or `ripe`.
    pub kind: String,
    /// Organisations now in that source.
    pub organisations: u64,
    /// Prefixes now in that source.
    pub prefixes: u64,
    /// AS numbers now in that source.
    pub asns: u64,
    /// Domains now in that source.
    pub domains: u64,
    /// Contacts now in that source.
    pub contacts: u64,
    /// Objects (RIPE) or data rows (CSV) read.
    pub records: u64,
    /// Objects skipped (invalid, or a resource with neither `org:` nor `abuse-c:`).
    pub skipped: u64,
    /// Lines refused for being over the length limit.
    pub long_lines: u64,
    /// The first few reasons for skipping, `file:line: why`.
    pub warnings: Vec<String>,
}

/// At most this many warnings are kept in an [`ImportReport`].
pub(crate) const MAX_WARNINGS: usize = 20;

impl ImportReport {
    pub(crate) fn warn(&mut self, w: String) {
        self.skipped += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        }
    }
}

/// The constituency registry: a SQLite database (WAL) of organisations in two layers.
pub struct Registry {
    conn: Connection,
    path: PathBuf,
}

pub(crate) fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Db {
        path: path.to_path_buf(),
        source,
    }
}

fn check_source(source: &str) -> Result<(), Error> {
    if source.is_empty()
        || source.len() > 64
        || source == MANUAL_SOURCE
        || source.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::Invalid {
            what: "--source".into(),
            message: format!(
                "{source:?}: expected a name of 1 to 64 characters without spaces, other than \"manual\" (e.g. ripe, csv, partners)"
            ),
        });
    }
    Ok(())
}

/// Inserts an organisation and its holdings; returns its row id.
pub(crate) fn insert_org(tx: &Connection, org: &Organisation) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO org (layer, source, handle, name, country) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            org.layer.as_str(),
            org.source,
            org.id,
            org.name,
            org.country
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut p = tx.prepare_cached("INSERT INTO prefix (org, prefix) VALUES (?1, ?2)")?;
    for n in &org.prefixes {
        p.execute(params![id, n.trunc().to_string()])?;
    }
    let mut a = tx.prepare_cached("INSERT INTO asn (org, asn) VALUES (?1, ?2)")?;
    for n in &org.asns {
        a.execute(params![id, n])?;
    }
    let mut d = tx.prepare_cached("INSERT INTO domain (org, name) VALUES (?1, ?2)")?;
    for n in &org.domains {
        d.execute(params![id, n])?;
    }
    let mut c = tx.prepare_cached(
        "INSERT INTO contact (org, pos, name, role, mail, webhook, policy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (i, k) in org.contacts.iter().enumerate() {
        let policy = serde_json::to_string(&k.policy).unwrap_or_else(|_| "{}".into());
        c.execute(params![
            id, i as i64, k.name, k.role, k.mail, k.webhook, policy
        ])?;
    }
    Ok(id)
}

fn delete_org_rows(
    tx: &Connection,
    where_org: &str,
    p: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<()> {
    for t in ["prefix", "asn", "domain", "contact"] {
        tx.execute(
            &format!("DELETE FROM {t} WHERE org IN (SELECT id FROM org WHERE {where_org})"),
            p,
        )?;
    }
    tx.execute(&format!("DELETE FROM org WHERE {where_org}"), p)?;
    Ok(())
}

/// Removes the automatic data of `source` (the first step of every import).
pub(crate) fn delete_source(tx: &Connection, source: &str) -> rusqlite::Result<()> {
    delete_org_rows(tx, "layer = 'automatic' AND source = ?1", &[&source])
}

/// Fills the counts of `report` from what `source` now holds, and records the import.
pub(crate) fn finish_import(tx: &Connection, report: &mut ImportReport) -> rusqlite::Result<()> {
    let count = |sql: &str| -> rusqlite::Result<u64> {
        tx.query_row(sql, [&report.source], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    };
    let sel = "(SELECT id FROM org WHERE layer = 'automatic' AND source = ?1)";
    report.organisations =
        count("SELECT count(*) FROM org WHERE layer = 'automatic' AND source = ?1")?;
    report.prefixes = count(&format!("SELECT count(*) FROM prefix WHERE org IN {sel}"))?;
    report.asns = count(&format!("SELECT count(*) FROM asn WHERE org IN {sel}"))?;
    report.domains = count(&format!("SELECT count(*) FROM domain WHERE org IN {sel}"))?;
    report.contacts = count(&format!("SELECT count(*) FROM contact WHERE org IN {sel}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    tx.execute(
        "INSERT OR REPLACE INTO import (source, kind, at, report) VALUES (?1, ?2, ?3, ?4)",
        params![
            report.source,
            report.kind,
            now,
            serde_json::to_string(&report).unwrap_or_default()
        ],
    )?;
    Ok(())
}

impl Registry {
    /// Opens (creating if needed) the registry at `path`, in WAL mode, migrating its schema.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(db_err(path))?;
        let mut r = Self {
            conn,
            path: path.to_path_buf(),
        };
        r.conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(db_err(path))?;
        r.init()?;
        Ok(r)
    }

    /// A registry in memory (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self, Error> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(db_err(&path))?;
        let mut r = Self { conn, path };
        r.init()?;
        Ok(r)
    }

    fn init(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let e = db_err(&self.path);
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&e)?;
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;")
            .map_err(&e)?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&e)?;
        if version > SCHEMA_VERSION {
            return Err(Error::Schema {
                path: path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            let tx = self.conn.transaction().map_err(&e)?;
            tx.execute_batch(SCHEMA).map_err(&e)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(&e)?;
            tx.commit().map_err(&e)?;
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        db_err(&self.path)
    }

    pub(crate) fn transaction(&mut self) -> Result<(Transaction<'_>, &Path), Error> {
        let tx = self.conn.transaction().map_err(db_err(&self.path))?;
        Ok((tx, &self.path))
    }

    /// Replaces the automatic data of `source` by the organisations of a CSV file
    /// (docs/constituency.md). Any error leaves the previous data intact.
    pub fn import_csv(&mut self, path: &Path, source: &str) -> Result<ImportReport, Error> {
        let f = std::fs::File::open(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        self.import_csv_reader(
            std::io::BufReader::new(f),
            &path.display().to_string(),
            source,
        )
    }

    /// [`Registry::import_csv`] from a reader; `name` is the file name errors show.
    pub fn import_csv_reader<R: BufRead>(
        &mut self,
        reader: R,
        name: &str,
        source: &str,
    ) -> Result<ImportReport, Error> {
        check_source(source)?;
        let (orgs, records) = crate::csv::read(reader, name, source)?;
        let mut report = ImportReport {
            source: source.into(),
            kind: "csv".into(),
            records,
            ..Default::default()
        };
        let (tx, path) = self.transaction()?;
        let e = db_err(path);
        delete_source(&tx, source).map_err(&e)?;
        for org in orgs.values() {
            insert_org(&tx, org).map_err(&e)?;
        }
        finish_import(&tx, &mut report).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(report)
    }

    /// Replaces the automatic data of `source` by a RIPE database split set in `dir`
    /// (`ripe.db.inetnum`, `ripe.db.inet6num`, `ripe.db.aut-num`, `ripe.db.organisation`,
    /// `ripe.db.role`), streamed in bounded memory. Any error leaves the previous data intact.
    pub fn import_ripe(&mut self, dir: &Path, source: &str) -> Result<ImportReport, Error> {
        check_source(source)?;
        crate::ripe::import(self, dir, source)
    }

    /// Adds to (or creates) the manual organisation `org.id`: a non-empty name or country
    /// replaces the old one, prefixes, AS numbers and domains are added, a contact replaces the
    /// one with the same mail and webhook or is added.
    pub fn upsert_manual(&mut self, org: &Organisation) -> Result<(), Error> {
        crate::validate::organisation(org)?;
        let mut merged = match self.manual_org(&org.id)? {
            Some(old) => old,
            None => Organisation::manual(&org.id),
        };
        if !org.name.is_empty() {
            merged.name.clone_from(&org.name);
        }
        if !org.country.is_empty() {
            merged.country.clone_from(&org.country);
        }
        for p in &org.prefixes {
            if !merged.prefixes.contains(&p.trunc()) {
                merged.prefixes.push(p.trunc());
            }
        }
        for a in &org.asns {
            if !merged.asns.contains(a) {
                merged.asns.push(*a);
            }
        }
        for d in &org.domains {
            if !merged.domains.contains(d) {
                merged.domains.push(d.clone());
            }
        }
        for c in &org.contacts {
            match merged
                .contacts
                .iter_mut()
                .find(|o| o.mail == c.mail && o.webhook == c.webhook)
            {
                Some(o) => *o = c.clone(),
                None => merged.contacts.push(c.clone()),
            }
        }
        merged.layer = Layer::Manual;
        merged.source = MANUAL_SOURCE.into();
        let (tx, path) = self.transaction()?;
        let e = db_err(path);
        delete_org_rows(&tx, "layer = 'manual' AND handle = ?1", &[&org.id]).map_err(&e)?;
        insert_org(&tx, &merged).map_err(&e)?;
        tx.commit().map_err(&e)
    }

    /// Removes the manual organisation `id`; whether there was one.
    pub fn remove_manual(&mut self, id: &str) -> Result<bool, Error> {
        let existed = self.manual_org(id)?.is_some();
        let (tx, path) = self.transaction()?;
        let e = db_err(path);
        delete_org_rows(&tx, "layer = 'manual' AND handle = ?1", &[&id]).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(existed)
    }

    fn manual_org(&self, id: &str) -> Result<Option<Organisation>, Error> {
        let row: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM org WHERE layer = 'manual' AND handle = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        row.map(|r| self.load(r)).transpose()
    }

    /// One organisation exactly as stored (no merging of layers).
    fn load(&self, row: i64) -> Result<Organisation, Error> {
        let e = self.err();
        let (layer, source, id, name, country): (String, String, String, String, String) = self
            .conn
            .query_row(
                "SELECT layer, source, handle, name, country FROM org WHERE id = ?1",
                [row],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(&e)?;
        let strings = |sql: &str| -> Result<Vec<String>, Error> {
            let mut st = self.conn.prepare_cached(sql).map_err(&e)?;
            let v = st
                .query_map([row], |r| r.get::<_, String>(0))
                .map_err(&e)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&e)?;
            Ok(v)
        };
        let prefixes = strings("SELECT prefix FROM prefix WHERE org = ?1 ORDER BY rowid")?
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        let domains = strings("SELECT name FROM domain WHERE org = ?1 ORDER BY rowid")?;
        let mut st = self
            .conn
            .prepare_cached("SELECT asn FROM asn WHERE org = ?1 ORDER BY rowid")
            .map_err(&e)?;
        let asns = st
            .query_map([row], |r| r.get::<_, u32>(0))
            .map_err(&e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&e)?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT name, role, mail, webhook, policy FROM contact WHERE org = ?1 ORDER BY pos",
            )
            .map_err(&e)?;
        let contacts = st
            .query_map([row], |r| {
                let policy: String = r.get(4)?;
                Ok(Contact {
                    name: r.get(0)?,
                    role: r.get(1)?,
                    mail: r.get(2)?,
                    webhook: r.get(3)?,
                    policy: serde_json::from_str::<Policy>(&policy).unwrap_or_default(),
                })
            })
            .map_err(&e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&e)?;
        Ok(Organisation {
            id,
            name,
            country,
            layer: Layer::parse(&layer).unwrap_or(Layer::Automatic),
            source,
            prefixes,
            asns,
            domains,
            contacts,
        })
    }

    /// The organisation with database id `row`, with the manual organisation of the same id
    /// merged over it: its name, country and contacts win when set, holdings are united.
    pub fn resolve(&self, row: i64) -> Result<Organisation, Error> {
        let org = self.load(row)?;
        let (mut manual, autos) = if org.layer == Layer::Manual {
            // a manual organisation takes what it leaves empty from the imported one(s)
            let e = self.err();
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT id FROM org WHERE layer = 'automatic' AND handle = ?1 ORDER BY id",
                )
                .map_err(&e)?;
            let rows = st
                .query_map([&org.id], |r| r.get::<_, i64>(0))
                .map_err(&e)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&e)?;
            let autos = rows
                .into_iter()
                .map(|r| self.load(r))
                .collect::<Result<Vec<_>, _>>()?;
            (org, autos)
        } else {
            match self.manual_org(&org.id)? {
                Some(m) => (m, vec![org]),
                None => return Ok(org),
            }
        };
        for auto in autos {
            if manual.name.is_empty() {
                manual.name = auto.name;
            }
            if manual.country.is_empty() {
                manual.country = auto.country;
            }
            if manual.contacts.is_empty() {
                manual.contacts = auto.contacts;
            }
            for p in auto.prefixes {
                if !manual.prefixes.contains(&p) {
                    manual.prefixes.push(p);
                }
            }
            for a in auto.asns {
                if !manual.asns.contains(&a) {
                    manual.asns.push(a);
                }
            }
            for d in auto.domains {
                if !manual.domains.contains(&d) {
                    manual.domains.push(d);
                }
            }
        }
        Ok(manual)
    }

    /// Loads every prefix into an in-memory longest-prefix-match table (manual entries win for
    /// the same prefix). Rebuild it after imports and changes.
    pub fn prefix_table(&self) -> Result<PrefixTable, Error> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare(
                "SELECT p.prefix, p.org, o.layer, p.abuse_mail FROM prefix p JOIN org o ON o.id = p.org",
            )
            .map_err(&e)?;
        let mut rows = st.query([]).map_err(&e)?;
        let mut b = PrefixTableBuilder::new();
        while let Some(r) = rows.next().map_err(&e)? {
            let prefix: String = r.get(0).map_err(&e)?;
            let Ok(net) = prefix.parse::<IpNet>() else {
                continue;
            };
            let layer: String = r.get(2).map_err(&e)?;
            b.push(
                net,
                PrefixEntry {
                    org: r.get(1).map_err(&e)?,
                    layer: Layer::parse(&layer).unwrap_or(Layer::Automatic),
                    abuse_mail: r.get(3).map_err(&e)?,
                },
            );
        }
        Ok(b.build())
    }

    fn matched(
        &self,
        row: i64,
        matched: MatchedBy,
        abuse_mail: Option<&str>,
    ) -> Result<Match, Error> {
        let organisation = self.resolve(row)?;
        let mut contacts = Vec::new();
        if let Some(m) = abuse_mail
            && !organisation
                .contacts
                .iter()
                .any(|c| c.mail.as_deref() == Some(m))
        {
            contacts.push(Contact::abuse_mail("", m));
        }
        contacts.extend(organisation.contacts.iter().cloned());
        Ok(Match {
            matched,
            organisation,
            contacts,
        })
    }

    /// The organisation holding `addr` (longest prefix; IPv4-mapped IPv6 as IPv4), by `table`.
    pub fn lookup_addr(&self, table: &PrefixTable, addr: IpAddr) -> Result<Option<Match>, Error> {
        let Some(hit) = table.lookup(addr) else {
            return Ok(None);
        };
        self.matched(hit.org, MatchedBy::Prefix(hit.prefix), hit.abuse_mail)
            .map(Some)
    }

    /// The organisation holding AS number `asn` (the manual layer first).
    pub fn lookup_asn(&self, asn: u32) -> Result<Option<Match>, Error> {
        let row: Option<i64> = self
            .conn
            .query_row(
                "SELECT a.org FROM asn a JOIN org o ON o.id = a.org WHERE a.asn = ?1
                 ORDER BY o.layer = 'manual' DESC, a.rowid DESC LIMIT 1",
                [asn],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        row.map(|r| self.matched(r, MatchedBy::Asn(asn), None))
            .transpose()
    }

    /// The organisation holding `domain` or its nearest registered parent domain (the manual
    /// layer first among equals).
    pub fn lookup_domain(&self, domain: &str) -> Result<Option<Match>, Error> {
        let d = crate::validate::domain(domain)?;
        let mut name = d.as_str();
        loop {
            let row: Option<i64> = self
                .conn
                .query_row(
                    "SELECT d.org FROM domain d JOIN org o ON o.id = d.org WHERE d.name = ?1
                     ORDER BY o.layer = 'manual' DESC, d.rowid DESC LIMIT 1",
                    [name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.err())?;
            if let Some(r) = row {
                return self
                    .matched(r, MatchedBy::Domain(name.to_string()), None)
                    .map(Some);
            }
            match name.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => name = parent,
                _ => return Ok(None),
            }
        }
    }

    /// Answers a [`Query`]; an address query uses `table`.
    pub fn lookup(&self, table: &PrefixTable, query: &Query) -> Result<Option<Match>, Error> {
        match query {
            Query::Addr(a) => self.lookup_addr(table, *a),
            Query::Asn(n) => self.lookup_asn(*n),
            Query::Domain(d) => self.lookup_domain(d),
        }
    }

    /// Every organisation with the size of its holdings, manual layer first, then by source
    /// and id.
    pub fn summaries(&self) -> Result<Vec<OrgSummary>, Error> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare(
                "SELECT o.handle, o.name, o.country, o.layer, o.source,
                   (SELECT count(*) FROM prefix WHERE org = o.id),
                   (SELECT count(*) FROM asn WHERE org = o.id),
                   (SELECT count(*) FROM domain WHERE org = o.id),
                   (SELECT count(*) FROM contact WHERE org = o.id)
                 FROM org o ORDER BY o.layer = 'manual' DESC, o.source, o.handle",
            )
            .map_err(&e)?;
        let v = st
            .query_map([], |r| {
                let layer: String = r.get(3)?;
                Ok(OrgSummary {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    country: r.get(2)?,
                    layer: Layer::parse(&layer).unwrap_or(Layer::Automatic),
                    source: r.get(4)?,
                    prefixes: r.get::<_, i64>(5)? as u64,
                    asns: r.get::<_, i64>(6)? as u64,
                    domains: r.get::<_, i64>(7)? as u64,
                    contacts: r.get::<_, i64>(8)? as u64,
                })
            })
            .map_err(&e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&e)?;
        Ok(v)
    }

    /// The reports of the last import of every source.
    pub fn imports(&self) -> Result<Vec<ImportReport>, Error> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare("SELECT report FROM import ORDER BY source")
            .map_err(&e)?;
        let v = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(&e)?
            .filter_map(|r| r.ok())
            .filter_map(|s| serde_json::from_str(&s).ok())
            .collect();
        Ok(v)
    }
}
