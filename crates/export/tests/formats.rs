//! Every format on every sample kind: IODEF v2 validated by xmllint against RFC 7970's schema,
//! IntelMQ keys against the harmonisation table, ECS names against the ECS table, the MISP
//! feed's JSON shape, CSV quoting, and anonymisation leaving no original address anywhere.
//!
//! The XSD check needs xmllint (Debian: libxml2-utils) and `../shared/schemas`; without them it
//! skips, or fails under `PHAROS_REQUIRE_ALL=1`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use pharos_export::{
    ECS_FIELDS, ExportOptions, Format, INTELMQ_FIELDS, MispFeed, export_string, md5_hex,
};
use pharos_model::Message;
use pharos_model::conformance::{shared_dir, skip};
use serde_json::Value;

/// The model's samples, stored (ids set), with raw lines naming their addresses, plus one
/// message whose texts are hostile (markup, quotes, control characters, a formula).
fn messages() -> Vec<Message> {
    let mut out = pharos_model::samples::samples();
    for (i, m) in out.iter_mut().enumerate() {
        m.common.id = Some(100 + i as u64);
        let addrs: Vec<String> = m.addresses().iter().map(|(_, a)| a.to_string()).collect();
        if !addrs.is_empty() {
            m.common.raw = Some(format!(
                "<raw> kind={} addrs={}",
                m.kind.name(),
                addrs.join(",")
            ));
        }
    }
    let mut hostile = out
        .iter()
        .find(|m| m.kind.name() == "intrusion")
        .expect("an intrusion sample")
        .clone();
    hostile.common.id = Some(999);
    hostile.common.message =
        Some("=cmd|' /C calc'!A0 <script>alert(\"x\")</script> & \u{1}\u{7f}".into());
    hostile.common.raw = Some("\"quoted\", comma\nnewline \u{0} nul".into());
    out.push(hostile);
    out
}

fn opts() -> ExportOptions<'static> {
    let mut o = ExportOptions::new("csirt.example.net");
    o.organisation = "Example CSIRT".into();
    o.contact_email = Some("csirt@example.net".into());
    o
}

/// Validates `xml` against the IODEF v2 schema; `None` when xmllint or the schemas are missing.
fn xmllint_iodef(xml: &str) -> Option<Result<(), String>> {
    let dir = shared_dir().join("schemas");
    if !dir.join("iodef-2.0.xsd").exists() || !dir.join("catalog.xml").exists() {
        skip(&format!(
            "{} has no iodef-2.0.xsd or catalog.xml",
            dir.display()
        ));
        return None;
    }
    if Command::new("xmllint").arg("--version").output().is_err() {
        skip("xmllint not found on PATH (Debian: libxml2-utils)");
        return None;
    }
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), xml).unwrap();
    let out = Command::new("xmllint")
        .env("XML_CATALOG_FILES", dir.join("catalog.xml"))
        .args(["--nonet", "--noout", "--schema"])
        .arg(dir.join("iodef-2.0.xsd"))
        .arg(tmp.path())
        .output()
        .unwrap();
    if out.status.success() {
        Some(Ok(()))
    } else {
        Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}

#[test]
fn iodef2_export_of_every_kind_validates_against_the_rfc_7970_schema() {
    let msgs = messages();
    for m in &msgs {
        let xml = export_string(Format::Iodef2, std::slice::from_ref(m), &opts()).unwrap();
        assert!(
            xml.contains("<IncidentID name=\"csirt.example.net\">"),
            "{xml}"
        );
        if let Some(c) = m.common.classification_of(&m.kind) {
            assert!(
                xml.contains(&format!("rsit:{}=&quot;{}&quot;", c.taxonomy, c.kind)),
                "{xml}"
            );
            assert!(xml.contains(&format!(
                "<IncidentCategory>{}</IncidentCategory>",
                c.as_path()
            )));
        }
        match xmllint_iodef(&xml) {
            None => return,
            Some(r) => r.unwrap_or_else(|e| panic!("{}: {e}\n{xml}", m.kind.name())),
        }
    }
    let all = export_string(Format::Iodef2, &msgs, &opts()).unwrap();
    assert_eq!(all.matches("<Incident ").count(), msgs.len());
    assert!(all.contains("&lt;script&gt;"));
    assert!(!all.contains("<script>"));
    if let Some(r) = xmllint_iodef(&all) {
        r.unwrap();
    }
    let empty = export_string(Format::Iodef2, &[], &opts()).unwrap();
    if let Some(r) = xmllint_iodef(&empty) {
        r.unwrap();
    }
}

#[test]
fn ddos_incident_carries_flow_systems_service_and_rate_counters() {
    let m = messages()
        .into_iter()
        .find(|m| m.kind.name() == "ddos")
        .unwrap();
    let xml = export_string(Format::Iodef2, &[m], &opts()).unwrap();
    for want in [
        "<System category=\"source\" spoofed=\"unknown\"><Node><Address category=\"ipv4-addr\">192.0.2.1</Address></Node>",
        "<System category=\"target\"><Node><Address category=\"ipv4-addr\">198.51.100.10</Address></Node>",
        "<Counter type=\"rate\" unit=\"packet\" duration=\"second\">",
        "<SystemImpact severity=\"high\" type=\"availability-service\">",
        "<Contact role=\"creator\" type=\"organization\"><ContactName>Example CSIRT</ContactName><Email><EmailTo>csirt@example.net</EmailTo></Email></Contact>",
        "<RecordItem dtype=\"string\">&lt;raw&gt;",
    ] {
        assert!(xml.contains(want), "missing {want}\n{xml}");
    }
}

fn ndjson(text: &str) -> Vec<serde_json::Map<String, Value>> {
    text.lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(o) => o,
            v => panic!("not an object: {v}"),
        })
        .collect()
}

#[test]
fn intelmq_keys_are_all_in_the_harmonisation_table_or_extra() {
    let msgs = messages();
    let text = export_string(Format::IntelMq, &msgs, &opts()).unwrap();
    let events = ndjson(&text);
    assert_eq!(events.len(), msgs.len());
    let known: BTreeSet<&str> = INTELMQ_FIELDS.iter().map(|(k, _)| *k).collect();
    for (e, m) in events.iter().zip(&msgs) {
        for k in e.keys() {
            assert!(
                known.contains(k.as_str()) || k.starts_with("extra."),
                "{}: key {k} is not an IntelMQ field",
                m.kind.name()
            );
        }
        for k in [
            "classification.taxonomy",
            "classification.type",
            "feed.name",
            "time.source",
            "time.observation",
        ] {
            assert!(e.contains_key(k), "{}: no {k}", m.kind.name());
        }
        let tax = e["classification.taxonomy"].as_str().unwrap();
        let ty = e["classification.type"].as_str().unwrap();
        assert!(pharos_model::rsit::Classification::new(tax, ty).is_some());
        if let Some(raw) = e.get("raw") {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw.as_str().unwrap())
                .unwrap();
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                *m.common.raw.as_ref().unwrap()
            );
        }
        // Types: ports are integers, addresses parse.
        for k in ["source.port", "destination.port"] {
            if let Some(v) = e.get(k) {
                assert!(v.is_u64(), "{k} = {v}");
            }
        }
        for k in ["source.ip", "destination.ip"] {
            if let Some(v) = e.get(k) {
                v.as_str().unwrap().parse::<IpAddr>().unwrap();
            }
        }
    }
    let ddos = &events[msgs.iter().position(|m| m.kind.name() == "ddos").unwrap()];
    assert_eq!(ddos["classification.taxonomy"], "availability");
    assert_eq!(ddos["classification.type"], "ddos");
    assert_eq!(ddos["source.ip"], "192.0.2.1");
    assert_eq!(ddos["destination.ip"], "198.51.100.10");
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) if prefix != "labels" => {
            for (k, v) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn ecs_field_names_are_all_in_the_ecs_reference_table() {
    let msgs = messages();
    let text = export_string(Format::Ecs, &msgs, &opts()).unwrap();
    let docs = ndjson(&text);
    assert_eq!(docs.len(), msgs.len());
    // ECS_FIELDS lists the sources it was checked against (ECS 8.x field reference).
    let known: BTreeSet<&str> = ECS_FIELDS.iter().map(|(k, _)| *k).collect();
    let kinds = ["alert", "event", "metric"];
    for (d, m) in docs.iter().zip(&msgs) {
        let mut keys = Vec::new();
        flatten("", &Value::Object(d.clone()), &mut keys);
        for k in &keys {
            assert!(
                known.contains(k.as_str()),
                "{}: {k} is not in ECS_FIELDS",
                m.kind.name()
            );
        }
        assert!(kinds.contains(&d["event"]["kind"].as_str().unwrap()));
        assert!(d["@timestamp"].is_string());
        if let Some(c) = m.common.classification_of(&m.kind) {
            assert_eq!(d["labels"]["rsit_taxonomy"], c.taxonomy);
            let tag = format!("rsit:{}=\"{}\"", c.taxonomy, c.kind);
            assert!(d["tags"].as_array().unwrap().iter().any(|t| *t == tag));
        }
        for v in d["labels"].as_object().unwrap().values() {
            assert!(v.is_string(), "labels are keywords: {v}");
        }
    }
}

/// Splits RFC 4180 CSV into rows of cells.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

#[test]
fn csv_has_one_quoted_row_per_message_and_defuses_formulas() {
    let msgs = messages();
    let text = export_string(Format::Csv, &msgs, &opts()).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0].join(","),
        "timestamp,id,kind,severity,taxonomy,type,src_ip,src_port,dst_ip,dst_port,protocol,asn,nsf,rule,message"
    );
    assert_eq!(rows.len(), msgs.len() + 1);
    for r in &rows {
        assert_eq!(r.len(), 15, "{r:?}");
    }
    let hostile = rows.iter().find(|r| r[1] == "999").unwrap();
    assert!(hostile[14].starts_with("'=cmd"), "{:?}", hostile[14]);
    let ddos = rows.iter().find(|r| r[2] == "ddos").unwrap();
    assert_eq!(
        (ddos[4].as_str(), ddos[5].as_str()),
        ("availability", "ddos")
    );
}

#[test]
fn misp_feed_has_the_shape_misp_pulls() {
    let msgs = messages();
    let dir = tempfile::tempdir().unwrap();
    let feed = pharos_export::write_misp_feed(dir.path(), &msgs, &opts()).unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    let manifest = manifest.as_object().unwrap();
    assert_eq!(manifest.len(), msgs.len());
    let uuid_re = |s: &str| {
        s.len() == 36
            && s.chars().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
                }
            })
    };
    let mut hash_lines = BTreeSet::new();
    for (uuid, entry) in manifest {
        assert!(uuid_re(uuid), "{uuid}");
        for k in ["info", "date", "timestamp", "analysis", "threat_level_id"] {
            assert!(entry[k].is_string(), "manifest {uuid}: {k} = {}", entry[k]);
        }
        assert!(
            entry["Orgc"]["name"].is_string() && uuid_re(entry["Orgc"]["uuid"].as_str().unwrap())
        );
        assert!(
            entry["Tag"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["name"].is_string())
        );
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("{uuid}.json"))).unwrap(),
        )
        .unwrap();
        let e = &event["Event"];
        assert_eq!(e["uuid"], *uuid);
        assert_eq!(e["info"], entry["info"]);
        assert!(e["date"].as_str().unwrap().len() == 10);
        assert!(e["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
        assert!(["1", "2", "3", "4"].contains(&e["threat_level_id"].as_str().unwrap()));
        assert!(["0", "1", "2"].contains(&e["analysis"].as_str().unwrap()));
        assert!(
            e["publish_timestamp"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
        assert!(e["published"].is_boolean());
        assert_eq!(e["Orgc"], entry["Orgc"]);
        assert_eq!(e["Tag"], entry["Tag"]);
        let attrs = e["Attribute"].as_array().unwrap();
        assert!(!attrs.is_empty());
        for a in attrs {
            assert!(uuid_re(a["uuid"].as_str().unwrap()));
            assert!(a["to_ids"].is_boolean());
            assert!(a["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
            let ty = a["type"].as_str().unwrap();
            // The types we write and their categories, as the MISP core format (draft-17,
            // MISP/misp-rfc `misp-core-format/raw.md`) and PyMISP `describeTypes.json` pair them.
            let category = match ty {
                "vulnerability" => "External analysis",
                "text" => "Other",
                _ => "Network activity",
            };
            assert_eq!(a["category"], category, "{ty}");
            assert!(a["comment"].is_string() && a["value"].is_string());
            assert!(
                [
                    "ip-src",
                    "ip-dst",
                    "port",
                    "url",
                    "domain",
                    "text",
                    "vulnerability"
                ]
                .contains(&ty),
                "{ty}"
            );
            let v = a["value"].as_str().unwrap();
            if ty.starts_with("ip-") {
                v.parse::<IpAddr>().unwrap();
            }
            hash_lines.insert(format!("{},{uuid}", md5_hex(v.as_bytes())));
        }
    }
    let ddos = msgs.iter().find(|m| m.kind.name() == "ddos").unwrap();
    let ddos_uuid = pharos_export::uuid_for("csirt.example.net", ddos.common.id.unwrap(), None);
    let tags = &manifest[&ddos_uuid]["Tag"];
    assert!(
        tags.as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "rsit:availability=\"ddos\"")
    );
    let hashes = std::fs::read_to_string(dir.path().join("hashes.csv")).unwrap();
    let written: BTreeSet<String> = hashes.lines().map(str::to_string).collect();
    assert_eq!(written, hash_lines);
    // Idempotent: the same files again.
    let again = MispFeed::build(&msgs, &opts());
    assert_eq!(again.files(), feed.files());
}

#[test]
fn anonymised_exports_hold_no_original_address() {
    let key = pharos_anon::Key::from_hex(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    )
    .unwrap();
    let pan = pharos_anon::CryptoPan::new(&key);
    let anon = |a: IpAddr| pan.anonymize(a);
    let mut o = opts();
    o.anon = Some(&anon);
    let msgs = messages();
    let originals: BTreeSet<String> = msgs
        .iter()
        .flat_map(|m| m.addresses())
        .map(|(_, a)| a.to_string())
        .chain([
            "192.0.2.254".to_string(),
            "192.0.2.33".to_string(),
            "203.0.113.90".to_string(),
        ])
        .collect();
    let mut outputs: Vec<(String, String)> =
        [Format::Iodef2, Format::IntelMq, Format::Ecs, Format::Csv]
            .into_iter()
            .map(|f| (f.as_str().to_string(), export_string(f, &msgs, &o).unwrap()))
            .collect();
    // IntelMQ's raw is base64: decode it to look inside.
    for line in outputs[1].1.clone().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(raw) = v["raw"].as_str() {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap();
            outputs.push(("intelmq raw".into(), String::from_utf8(raw).unwrap()));
        }
    }
    outputs.extend(MispFeed::build(&msgs, &o).files());
    let boundary =
        |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_hexdigit() || c == '.' || c == ':'));
    for (name, text) in &outputs {
        for a in &originals {
            for (i, _) in text.match_indices(a.as_str()) {
                let before = text[..i].chars().next_back();
                let after = text[i + a.len()..].chars().next();
                assert!(
                    !(boundary(before) && boundary(after)),
                    "{name}: original address {a} remains: ...{}...",
                    &text[i.saturating_sub(60)..(i + a.len() + 20).min(text.len())]
                );
            }
        }
    }
    // And the anonymised addresses are there instead.
    let ddos_src = pan.anonymize("192.0.2.1".parse().unwrap()).to_string();
    assert!(outputs[0].1.contains(&ddos_src));
}

#[test]
fn as_numbers_go_to_every_format_and_anonymisation_drops_them() {
    // the generic-log sample carries src-as 64496 and dst-as 4200000000 in its fields
    let msgs: Vec<Message> = messages()
        .into_iter()
        .filter(|m| m.kind.name() == "generic-log")
        .collect();
    assert_eq!(msgs.len(), 1);
    let o = opts();
    let intelmq: Value =
        serde_json::from_str(export_string(Format::IntelMq, &msgs, &o).unwrap().trim()).unwrap();
    assert_eq!(intelmq["source.asn"], 64496);
    assert_eq!(intelmq["destination.asn"], 4_200_000_000u64);
    let ecs: Value =
        serde_json::from_str(export_string(Format::Ecs, &msgs, &o).unwrap().trim()).unwrap();
    assert_eq!(ecs["source"]["as"]["number"], 64496);
    assert_eq!(ecs["destination"]["as"]["number"], 4_200_000_000u64);
    let csv = export_string(Format::Csv, &msgs, &o).unwrap();
    assert!(csv.contains(",tcp,64496,"), "{csv}");
    let xml = export_string(Format::Iodef2, &msgs, &o).unwrap();
    assert!(
        xml.contains("<Address category=\"asn\">64496</Address>")
            && xml.contains("<Address category=\"asn\">4200000000</Address>"),
        "{xml}"
    );
    if let Some(r) = xmllint_iodef(&xml) {
        r.unwrap();
    }
    // Under anonymisation a changed side loses its AS; a side kept in clear keeps it.
    let only_src = |a: IpAddr| {
        if a.to_string() == "192.0.2.10" {
            "10.9.9.9".parse().unwrap()
        } else {
            a
        }
    };
    let mut o = opts();
    o.anon = Some(&only_src);
    for f in [Format::IntelMq, Format::Ecs, Format::Csv, Format::Iodef2] {
        let out = export_string(f, &msgs, &o).unwrap();
        assert!(!out.contains("64496"), "{}: {out}", f.as_str());
        assert!(
            out.contains("4200000000") || f == Format::Csv,
            "{}: {out}",
            f.as_str()
        );
    }
}
