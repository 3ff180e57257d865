//! A MISP feed: `manifest.json`, one `<uuid>.json` per event and `hashes.csv`, the layout MISP
//! pulls from a feed URL (as PyMISP's feed generator writes it). UUIDs derive from our instance
//! name and the store id ([`crate::uuid_for`]), so a re-export writes the same files.
//!
//! Checked (Dec. 2026) against:
//! - the MISP core format, draft-dulaunoy-misp-core-format draft-17 (MISP/misp-rfc
//!   `misp-core-format/raw.md`; the same text as MISP/misp-standard.org
//!   `rfc/misp-standard-core.html`):
//!   event `uuid`, `info`, `date` (`YYYY-MM-DD`), `timestamp` / `publish_timestamp` (epoch
//!   seconds as JSON strings), `published` (boolean), `threat_level_id` (string, 1 high … 4
//!   undefined), `analysis` (string, 0 initial, 1 ongoing, 2 complete), `Orgc`; attribute `uuid`,
//!   `type`, `category`, `value`, `to_ids` (boolean), `comment`, `timestamp` (string), and the
//!   category → type list (every pair written below is in it);
//! - PyMISP `pymisp/mispevent.py` (`MISPEvent.manifest`, `to_feed`, `attributes_hashes`,
//!   `MISPAttribute.hash_values`, the `_fields_for_feed` sets) and `pymisp/data/describeTypes.json`
//!   (`category_type_mappings`), with the feed generator's `feed_meta_generator`: a manifest entry
//!   is `{Orgc: {name, uuid}, Tag: [{name, …}], info, date, analysis, threat_level_id,
//!   timestamp}`; the feed event carries no `distribution` (MISP applies the feed's own);
//!   `hashes.csv` is one `md5(value),event uuid` line per attribute (values of composite `a|b`
//!   types hashed per part; we write none).

use std::path::Path;

use pharos_model::{Message, Severity};
use serde_json::{Map, Value, json};

use crate::record::Record;
use crate::{ExportError, ExportOptions, md5_hex, uuid_for};

/// A MISP feed in memory: the files of the directory, by name.
#[derive(Debug, Clone)]
pub struct MispFeed {
    /// `manifest.json`: event UUID → summary.
    pub manifest: Value,
    /// `(uuid, event document)` per message, in selection order.
    pub events: Vec<(String, Value)>,
    /// `hashes.csv`: `md5(attribute value),event uuid` per attribute.
    pub hashes: String,
}

fn threat_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "1",
        Severity::Middle => "2",
        Severity::Low => "3",
        Severity::Info => "4",
    }
}

fn tags(r: &Record, opts: &ExportOptions<'_>) -> Value {
    let mut t = vec![json!({"name": format!("tlp:{}", opts.restriction.as_str())})];
    if let Some(c) = &r.class {
        t.push(json!({"name": format!("rsit:{}=\"{}\"", c.taxonomy, c.kind)}));
    }
    Value::Array(t)
}

fn attributes(r: &Record, instance: &str) -> Vec<Value> {
    let ts = r.received.timestamp().to_string();
    // (type, category, value, to_ids, comment). Type/category pairs per the MISP core format's
    // category → type list (draft-17) and PyMISP `describeTypes.json`: ip-src, ip-dst, port, url,
    // domain in "Network activity"; vulnerability in "External analysis"; text in "Other".
    let mut out: Vec<(&str, &str, String, bool, String)> = Vec::new();
    let src_ids = r.kind != "ddos" && r.class.is_some();
    for a in &r.src {
        out.push((
            "ip-src",
            "Network activity",
            a.to_string(),
            src_ids,
            "source".into(),
        ));
    }
    for a in &r.dst {
        out.push((
            "ip-dst",
            "Network activity",
            a.to_string(),
            false,
            "target".into(),
        ));
    }
    for p in &r.dst_ports {
        out.push((
            "port",
            "Network activity",
            p.to_string(),
            false,
            "destination port".into(),
        ));
    }
    if let Some(u) = &r.url {
        out.push(("url", "Network activity", u.clone(), false, String::new()));
    }
    if let Some(d) = &r.domain {
        out.push((
            "domain",
            "Network activity",
            d.clone(),
            false,
            String::new(),
        ));
    }
    if r.identifier.starts_with("cve-") {
        out.push((
            "vulnerability",
            "External analysis",
            r.identifier.to_uppercase(),
            false,
            String::new(),
        ));
    }
    out.push((
        "text",
        "Other",
        r.summary.clone(),
        false,
        r.kind.to_string(),
    ));
    out.into_iter()
        .enumerate()
        .map(|(i, (ty, cat, value, to_ids, comment))| {
            json!({
                "uuid": uuid_for(instance, r.id, Some(&format!("attribute-{i}"))),
                "type": ty,
                "category": cat,
                "value": value,
                "to_ids": to_ids,
                "comment": comment,
                "timestamp": ts,
            })
        })
        .collect()
}

impl MispFeed {
    /// The feed of `messages` (one MISP event per message).
    pub fn build(messages: &[Message], opts: &ExportOptions<'_>) -> Self {
        let orgc = json!({
            "name": opts.organisation,
            "uuid": uuid_for(&opts.instance, 0, Some("organisation")),
        });
        let mut manifest = Map::new();
        let mut events = Vec::new();
        let mut hashes = String::new();
        for (i, m) in messages.iter().enumerate() {
            let r = Record::of(m, i, opts);
            let uuid = uuid_for(&opts.instance, r.id, None);
            let ts = r.received.timestamp().to_string();
            let date = r.time.format("%Y-%m-%d").to_string();
            let analysis = if r.end.is_some() { "2" } else { "0" };
            let info = format!("Pharos {} #{}: {}", r.kind, r.id, r.summary);
            let attrs = attributes(&r, &opts.instance);
            for a in &attrs {
                let v = a["value"].as_str().unwrap_or_default();
                hashes.push_str(&format!("{},{uuid}\n", md5_hex(v.as_bytes())));
            }
            let tags = tags(&r, opts);
            manifest.insert(
                uuid.clone(),
                json!({
                    "Orgc": orgc,
                    "Tag": tags,
                    "info": info,
                    "date": date,
                    "analysis": analysis,
                    "threat_level_id": threat_level(r.severity),
                    "timestamp": ts,
                }),
            );
            let event = json!({"Event": {
                "uuid": uuid,
                "info": info,
                "date": date,
                "timestamp": ts,
                "publish_timestamp": ts,
                "published": true,
                "analysis": analysis,
                "threat_level_id": threat_level(r.severity),
                "Orgc": orgc,
                "Tag": tags,
                "Attribute": attrs,
            }});
            events.push((uuid, event));
        }
        MispFeed {
            manifest: Value::Object(manifest),
            events,
            hashes,
        }
    }

    /// Every file of the feed as `(name, contents)`.
    pub fn files(&self) -> Vec<(String, String)> {
        let json = |v: &Value| {
            let s = serde_json::to_string(v).unwrap_or_default();
            format!("{}\n", pharos_model::text::json_safe(&s))
        };
        let mut out = vec![("manifest.json".to_string(), json(&self.manifest))];
        for (uuid, e) in &self.events {
            out.push((format!("{uuid}.json"), json(e)));
        }
        out.push(("hashes.csv".to_string(), self.hashes.clone()));
        out
    }

    /// Writes the files into `dir` (created if missing).
    pub fn write_to(&self, dir: &Path) -> Result<(), ExportError> {
        let io = |what: &Path| {
            let what = what.display().to_string();
            move |source| ExportError::Io { what, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for (name, contents) in self.files() {
            let path = dir.join(&name);
            std::fs::write(&path, contents).map_err(io(&path))?;
        }
        Ok(())
    }
}
