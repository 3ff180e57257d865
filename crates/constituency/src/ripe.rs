//! RIPE database split files into the registry, in bounded memory.
//!
//! Pass 1 streams each file object by object into temporary SQLite tables (roles, organisations,
//! resources expanded to CIDR prefixes, AS numbers); pass 2 resolves the `org:` and `abuse-c:`
//! links with SQL joins into the registry's tables. Nothing is held in memory but the object being
//! read and SQLite's bounded page cache; everything happens in one transaction.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use rusqlite::{Connection, params};

use crate::error::Error;
use crate::lines::MAX_LINE;
use crate::model::Policy;
use crate::rpsl::{Object, RpslReader, parse_range};
use crate::store::{ImportReport, Registry, db_err, delete_source, finish_import};

const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS stg_role (handle TEXT PRIMARY KEY, name TEXT NOT NULL, mail TEXT NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_org (handle TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL, abuse_c TEXT);
CREATE TEMP TABLE IF NOT EXISTS stg_res (prefix TEXT NOT NULL, org TEXT, abuse_c TEXT, country TEXT NOT NULL, name TEXT NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stg_asn (asn INTEGER NOT NULL, org TEXT, abuse_c TEXT, name TEXT NOT NULL);
DELETE FROM stg_role; DELETE FROM stg_org; DELETE FROM stg_res; DELETE FROM stg_asn;
";

const DROP_STAGING: &str = "
DROP TABLE IF EXISTS temp.stg_role; DROP TABLE IF EXISTS temp.stg_org;
DROP TABLE IF EXISTS temp.stg_res; DROP TABLE IF EXISTS temp.stg_asn;
";

/// The split files, in the order they are read.
pub const FILES: &[&str] = &[
    "ripe.db.role",
    "ripe.db.organisation",
    "ripe.db.inetnum",
    "ripe.db.inet6num",
    "ripe.db.aut-num",
];

const WANTED: &[&str] = &[
    "role",
    "nic-hdl",
    "abuse-mailbox",
    "organisation",
    "org-name",
    "country",
    "abuse-c",
    "inetnum",
    "inet6num",
    "netname",
    "org",
    "aut-num",
    "as-name",
];

fn open(path: &Path) -> Result<Option<Box<dyn Read>>, Error> {
    match File::open(path) {
        Ok(f) => Ok(Some(Box::new(f))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut gz = path.as_os_str().to_owned();
            gz.push(".gz");
            if Path::new(&gz).exists() {
                return Err(Error::Invalid {
                    what: Path::new(&gz).display().to_string(),
                    message: "gzip input is not supported by this build: gunzip it first (gunzip -k FILE)"
                        .into(),
                });
            }
            Ok(None)
        }
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn value<'a>(o: &'a Object, name: &str) -> Option<&'a str> {
    o.get(name).filter(|v| !v.is_empty())
}

/// Runs the import of `dir` into `reg` under `source`.
pub(crate) fn import(reg: &mut Registry, dir: &Path, source: &str) -> Result<ImportReport, Error> {
    let mut report = ImportReport {
        source: source.into(),
        kind: "ripe".into(),
        ..Default::default()
    };
    let mut readers = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        if let Some(r) = open(&path)? {
            readers.push((*name, path, r));
        }
    }
    if !readers.iter().any(|(n, _, _)| {
        matches!(
            *n,
            "ripe.db.inetnum" | "ripe.db.inet6num" | "ripe.db.aut-num"
        )
    }) {
        return Err(Error::Invalid {
            what: dir.display().to_string(),
            message: "no ripe.db.inetnum, ripe.db.inet6num or ripe.db.aut-num here: give the directory of the RIPE split files (ftp.ripe.net/ripe/dbase/split/, gunzipped)".into(),
        });
    }
    let (tx, db_path) = reg.transaction()?;
    let e = db_err(db_path);
    tx.execute_batch(STAGING).map_err(&e)?;
    for (name, path, r) in readers {
        stage_file(&tx, name, &path, r, &mut report, db_path)?;
    }
    resolve(&tx, source, &mut report).map_err(&e)?;
    finish_import(&tx, &mut report).map_err(&e)?;
    tx.execute_batch(DROP_STAGING).map_err(&e)?;
    tx.commit().map_err(&e)?;
    Ok(report)
}

fn stage_file(
    tx: &Connection,
    name: &str,
    path: &Path,
    r: Box<dyn Read>,
    report: &mut ImportReport,
    db_path: &Path,
) -> Result<(), Error> {
    let e = db_err(db_path);
    let shown = path.display().to_string();
    let mut reader = RpslReader::new(BufReader::with_capacity(256 * 1024, r), WANTED, MAX_LINE);
    let mut role = tx
        .prepare("INSERT OR REPLACE INTO stg_role (handle, name, mail) VALUES (?1, ?2, ?3)")
        .map_err(&e)?;
    let mut org = tx
        .prepare("INSERT OR REPLACE INTO stg_org (handle, name, country, abuse_c) VALUES (?1, ?2, ?3, ?4)")
        .map_err(&e)?;
    let mut res = tx
        .prepare(
            "INSERT INTO stg_res (prefix, org, abuse_c, country, name) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(&e)?;
    let mut asn = tx
        .prepare("INSERT INTO stg_asn (asn, org, abuse_c, name) VALUES (?1, ?2, ?3, ?4)")
        .map_err(&e)?;
    loop {
        let obj = match reader.next_object() {
            Ok(Some(o)) => o,
            Ok(None) => break,
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        report.records += 1;
        let at = format!("{shown}:{}", obj.line);
        if obj.had_long_line {
            report.warn(format!(
                "{at}: {} object with a line over {MAX_LINE} bytes, skipped",
                obj.class
            ));
            continue;
        }
        let org_ref = value(&obj, "org");
        let abuse_c = value(&obj, "abuse-c");
        let country = value(&obj, "country").unwrap_or("");
        match obj.class.as_str() {
            "role" if name == "ripe.db.role" => {
                let (Some(h), Some(m)) = (value(&obj, "nic-hdl"), value(&obj, "abuse-mailbox"))
                else {
                    // roles without an abuse mailbox are no abuse contact: nothing to keep
                    continue;
                };
                role.execute(params![h, value(&obj, "role").unwrap_or(h), m])
                    .map_err(&e)?;
            }
            "organisation" if name == "ripe.db.organisation" => {
                let Some(h) = value(&obj, "organisation") else {
                    report.warn(format!("{at}: organisation without a handle, skipped"));
                    continue;
                };
                org.execute(params![
                    h,
                    value(&obj, "org-name").unwrap_or(h),
                    country,
                    abuse_c
                ])
                .map_err(&e)?;
            }
            class @ ("inetnum" | "inet6num") if name == format!("ripe.db.{class}") => {
                let range = value(&obj, class).unwrap_or("");
                let nets = match parse_range(range) {
                    Ok(n) => n,
                    Err(why) => {
                        report.warn(format!("{at}: {class} {range:?}: {}, skipped", why.0));
                        continue;
                    }
                };
                if org_ref.is_none() && abuse_c.is_none() {
                    // an assignment without its own holder: the covering allocation answers
                    report.skipped += 1;
                    continue;
                }
                let netname = value(&obj, "netname").unwrap_or("");
                for n in nets {
                    res.execute(params![n.to_string(), org_ref, abuse_c, country, netname])
                        .map_err(&e)?;
                }
            }
            "aut-num" if name == "ripe.db.aut-num" => {
                let v = value(&obj, "aut-num").unwrap_or("");
                let Some(n) = crate::csv::asn(v) else {
                    report.warn(format!("{at}: aut-num {v:?} is not an AS number, skipped"));
                    continue;
                };
                if org_ref.is_none() && abuse_c.is_none() {
                    report.skipped += 1;
                    continue;
                }
                asn.execute(params![
                    n,
                    org_ref,
                    abuse_c,
                    value(&obj, "as-name").unwrap_or("")
                ])
                .map_err(&e)?;
            }
            other => {
                report.warn(format!(
                    "{at}: a {other:?} object in {name}, skipped (is this the right file?)"
                ));
            }
        }
    }
    report.long_lines += reader.stats.long_lines;
    Ok(())
}

/// Pass 2: the staged objects become organisations, contacts, prefixes and AS numbers.
fn resolve(tx: &Connection, source: &str, report: &mut ImportReport) -> rusqlite::Result<()> {
    let policy = serde_json::to_string(&Policy::default()).unwrap_or_else(|_| "{}".into());
    delete_source(tx, source)?;
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS temp.stg_res_org ON stg_res (org);
         CREATE INDEX IF NOT EXISTS temp.stg_asn_org ON stg_asn (org);",
    )?;
    // organisations holding something (an org: reference, even to an unknown handle) ...
    tx.execute(
        "INSERT OR IGNORE INTO org (layer, source, handle, name, country)
         SELECT 'automatic', ?1, h.org, coalesce(o.name, h.org), coalesce(o.country, h.country)
         FROM (SELECT org, max(country) AS country FROM
                 (SELECT org, country FROM stg_res WHERE org IS NOT NULL
                  UNION ALL SELECT org, '' FROM stg_asn WHERE org IS NOT NULL)
               GROUP BY org) h
         LEFT JOIN stg_org o ON o.handle = h.org",
        [source],
    )?;
    // ... and, for resources without org: but with abuse-c:, their abuse role as the holder
    tx.execute(
        "INSERT OR IGNORE INTO org (layer, source, handle, name, country)
         SELECT 'automatic', ?1, h.abuse_c, coalesce(r.name, h.abuse_c), h.country
         FROM (SELECT abuse_c, max(country) AS country FROM
                 (SELECT abuse_c, country FROM stg_res WHERE org IS NULL
                  UNION ALL SELECT abuse_c, '' FROM stg_asn WHERE org IS NULL)
               GROUP BY abuse_c) h
         LEFT JOIN stg_role r ON r.handle = h.abuse_c",
        [source],
    )?;
    // abuse contacts: the organisation's abuse-c, or the role itself for role holders
    tx.execute(
        "INSERT INTO contact (org, pos, name, role, mail, webhook, policy)
         SELECT o.id, 0, r.name, 'abuse', r.mail, NULL, ?2
         FROM org o JOIN stg_org so ON so.handle = o.handle JOIN stg_role r ON r.handle = so.abuse_c
         WHERE o.layer = 'automatic' AND o.source = ?1",
        params![source, policy],
    )?;
    tx.execute(
        "INSERT INTO contact (org, pos, name, role, mail, webhook, policy)
         SELECT o.id, 0, r.name, 'abuse', r.mail, NULL, ?2
         FROM org o JOIN stg_role r ON r.handle = o.handle
         WHERE o.layer = 'automatic' AND o.source = ?1
           AND NOT EXISTS (SELECT 1 FROM stg_org so WHERE so.handle = o.handle)",
        params![source, policy],
    )?;
    // prefixes, with the resource's own abuse mailbox when it names one
    tx.execute(
        "INSERT INTO prefix (org, prefix, abuse_mail)
         SELECT o.id, s.prefix, r.mail
         FROM stg_res s
         JOIN org o ON o.layer = 'automatic' AND o.source = ?1 AND o.handle = coalesce(s.org, s.abuse_c)
         LEFT JOIN stg_role r ON r.handle = s.abuse_c",
        [source],
    )?;
    tx.execute(
        "INSERT INTO asn (org, asn)
         SELECT o.id, s.asn FROM stg_asn s
         JOIN org o ON o.layer = 'automatic' AND o.source = ?1 AND o.handle = coalesce(s.org, s.abuse_c)",
        [source],
    )?;
    let unresolved: i64 = tx.query_row(
        "SELECT count(*) FROM org o WHERE o.layer = 'automatic' AND o.source = ?1
           AND NOT EXISTS (SELECT 1 FROM contact c WHERE c.org = o.id)",
        [source],
        |r| r.get(0),
    )?;
    if unresolved > 0 && report.warnings.len() < crate::store::MAX_WARNINGS {
        report.warnings.push(format!(
            "{unresolved} organisations have no abuse contact (no abuse-c:, or its role has no abuse-mailbox:)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Query;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn sample(dir: &Path) {
        write(
            dir,
            "ripe.db.role",
            "% comment\nrole: Acme Abuse\nnic-hdl: AA1-RIPE\nabuse-mailbox: abuse@acme.example\n\nrole: Sub Abuse\nnic-hdl: SA1-RIPE\nabuse-mailbox: noc@sub.example\n\nrole: Mute\nnic-hdl: MU1-RIPE\n",
        );
        write(
            dir,
            "ripe.db.organisation",
            "organisation: ORG-ACME1-RIPE\norg-name: Acme\n  Networks\ncountry: DE\nabuse-c: AA1-RIPE\n\norganisation: ORG-EMPTY-RIPE\norg-name: Empty\n",
        );
        write(
            dir,
            "ripe.db.inetnum",
            "inetnum: 192.0.2.0 - 192.0.2.255\nnetname: ACME\norg: ORG-ACME1-RIPE\n\ninetnum: 192.0.2.16 - 192.0.2.31\nnetname: SUB\norg: ORG-ACME1-RIPE\nabuse-c: SA1-RIPE\n\ninetnum: 198.51.100.0 - 198.51.100.9\nnetname: ROLEONLY\nabuse-c: SA1-RIPE\n\ninetnum: 203.0.113.0 - 203.0.113.255\nnetname: NOBODY\n\ninetnum: 10.0.0.9 - 10.0.0.1\norg: ORG-ACME1-RIPE\n",
        );
        write(
            dir,
            "ripe.db.inet6num",
            "inet6num: 2001:db8::/32\norg: ORG-ACME1-RIPE\n",
        );
        write(
            dir,
            "ripe.db.aut-num",
            "aut-num: AS64500\nas-name: ACME\norg: ORG-ACME1-RIPE\n",
        );
    }

    #[test]
    fn ripe_set_links_org_and_abuse_c_and_resource_abuse_c_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let mut reg = Registry::open_in_memory().unwrap();
        let rep = reg.import_ripe(dir.path(), "ripe").unwrap();
        assert_eq!(rep.organisations, 2, "{rep:?}"); // ORG-ACME1 and the role SA1 as holder
        assert_eq!(rep.prefixes, 1 + 1 + 2 + 1, "{rep:?}"); // .0-.9 is a /29 and a /31
        assert_eq!(rep.asns, 1);
        assert!(
            rep.warnings
                .iter()
                .any(|w| w.contains("ends before it starts")),
            "{rep:?}"
        );
        let t = reg.prefix_table().unwrap();
        let m = reg
            .lookup(&t, &Query::parse("192.0.2.200").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.organisation.id, "ORG-ACME1-RIPE");
        assert_eq!(m.organisation.name, "Acme Networks");
        assert_eq!(m.contacts[0].mail.as_deref(), Some("abuse@acme.example"));
        let m = reg
            .lookup(&t, &Query::parse("192.0.2.17").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.contacts[0].mail.as_deref(), Some("noc@sub.example"));
        assert_eq!(m.contacts[1].mail.as_deref(), Some("abuse@acme.example"));
        let m = reg
            .lookup(&t, &Query::parse("198.51.100.9").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.organisation.id, "SA1-RIPE");
        assert!(
            reg.lookup(&t, &Query::parse("198.51.100.10").unwrap())
                .unwrap()
                .is_none()
        );
        assert!(
            reg.lookup(&t, &Query::parse("203.0.113.1").unwrap())
                .unwrap()
                .is_none()
        );
        let m = reg
            .lookup(&t, &Query::parse("2001:db8::1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.organisation.id, "ORG-ACME1-RIPE");
        let m = reg
            .lookup(&t, &Query::parse("AS64500").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(m.organisation.id, "ORG-ACME1-RIPE");
    }

    #[test]
    fn reimport_replaces_the_source_and_manual_layer_survives_and_wins() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let mut reg = Registry::open_in_memory().unwrap();
        reg.import_ripe(dir.path(), "ripe").unwrap();
        let mut m = crate::Organisation::manual("ORG-ACME1-RIPE");
        m.contacts.push(crate::Contact::abuse_mail(
            "CSIRT desk",
            "csirt@acme.example",
        ));
        reg.upsert_manual(&m).unwrap();
        let mut own = crate::Organisation::manual("OURS");
        own.prefixes.push("192.0.2.0/24".parse().unwrap());
        reg.upsert_manual(&own).unwrap();
        // re-import with less data: the old automatic data goes, the manual data stays
        write(
            dir.path(),
            "ripe.db.inetnum",
            "inetnum: 192.0.2.0 - 192.0.2.255\norg: ORG-ACME1-RIPE\n",
        );
        write(dir.path(), "ripe.db.inet6num", "");
        let rep = reg.import_ripe(dir.path(), "ripe").unwrap();
        assert_eq!(rep.prefixes, 1);
        let t = reg.prefix_table().unwrap();
        // same prefix: the manual organisation wins
        let hit = reg
            .lookup(&t, &Query::parse("192.0.2.1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(hit.organisation.id, "OURS");
        assert!(
            reg.lookup(&t, &Query::parse("2001:db8::1").unwrap())
                .unwrap()
                .is_none()
        );
        // same organisation: the manual contacts win
        let hit = reg
            .lookup(&t, &Query::parse("AS64500").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(hit.contacts[0].mail.as_deref(), Some("csirt@acme.example"));
        assert_eq!(hit.organisation.name, "Acme Networks");
        // a prefix added by hand to an imported organisation answers with its imported name
        let mut extra = crate::Organisation::manual("ORG-ACME1-RIPE");
        extra.prefixes.push("203.0.113.0/24".parse().unwrap());
        reg.upsert_manual(&extra).unwrap();
        let t = reg.prefix_table().unwrap();
        let hit = reg
            .lookup(&t, &Query::parse("203.0.113.9").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(hit.organisation.name, "Acme Networks");
        assert_eq!(hit.organisation.layer, crate::Layer::Manual);
        assert_eq!(hit.contacts[0].mail.as_deref(), Some("csirt@acme.example"));
        assert!(hit.organisation.asns.contains(&64500));
        // removing the override brings the automatic answer back
        assert!(reg.remove_manual("OURS").unwrap());
        let t = reg.prefix_table().unwrap();
        let hit = reg
            .lookup(&t, &Query::parse("192.0.2.1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(hit.organisation.id, "ORG-ACME1-RIPE");
    }

    #[test]
    fn failed_import_leaves_previous_data_intact() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::open_in_memory().unwrap();
        reg.import_csv_reader(
            "org,prefixes,contact_mail\nA,192.0.2.0/24,a@a.example\n".as_bytes(),
            "a.csv",
            "csv",
        )
        .unwrap();
        let e = reg
            .import_csv_reader("org,prefixes\nB,192.0.2.0/99\n".as_bytes(), "b.csv", "csv")
            .unwrap_err();
        assert!(e.to_string().contains("b.csv:2:3"), "{e}");
        // a directory without resource files is refused before anything changes
        assert!(reg.import_ripe(dir.path(), "csv").is_err());
        let t = reg.prefix_table().unwrap();
        let hit = reg
            .lookup(&t, &Query::parse("192.0.2.1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(hit.organisation.id, "A");
    }

    #[test]
    fn over_long_line_skips_its_object_is_counted_and_the_import_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let long = "x".repeat(MAX_LINE + 1);
        write(
            dir.path(),
            "ripe.db.inetnum",
            &format!(
                "inetnum: 192.0.2.0 - 192.0.2.255\nremarks: {long}\norg: ORG-ACME1-RIPE\n\ninetnum: 198.51.100.0 - 198.51.100.255\norg: ORG-ACME1-RIPE\n"
            ),
        );
        let mut reg = Registry::open_in_memory().unwrap();
        let rep = reg.import_ripe(dir.path(), "ripe").unwrap();
        assert_eq!(rep.long_lines, 1);
        assert!(
            rep.warnings.iter().any(|w| w.contains(
                "ripe.db.inetnum:1: inetnum object with a line over 65536 bytes, skipped"
            )),
            "{rep:?}"
        );
        let t = reg.prefix_table().unwrap();
        assert!(
            reg.lookup_addr(&t, "192.0.2.1".parse().unwrap())
                .unwrap()
                .is_none()
        );
        assert!(
            reg.lookup_addr(&t, "198.51.100.1".parse().unwrap())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn gzip_only_input_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ripe.db.inetnum.gz", "x");
        let mut reg = Registry::open_in_memory().unwrap();
        let e = reg.import_ripe(dir.path(), "ripe").unwrap_err().to_string();
        assert!(e.contains("gunzip"), "{e}");
    }
}
