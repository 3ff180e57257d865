//! `pharos events export` and `GET /api/v1/messages/export` against a running instance: the
//! stored samples come back as an XSD-valid IODEF v2 document, a MISP feed pseudonymised under a
//! Crypto-PAn key file holds none of the original addresses, and the route answers each format
//! with its media type and refuses what it cannot do.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use support::{ADMIN_TOKEN, Instance, bin, client, push_ok};

fn export_cli(inst: &Instance, args: &[&str]) -> String {
    let out = Command::new(bin())
        .env("PHAROS_TOKEN", ADMIN_TOKEN)
        .args(["events", "export", "--url", &inst.base, "-n", "1000"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Validates an IODEF v2 document with xmllint; false (after saying so) when it cannot run.
fn xmllint_iodef(xml: &str) -> bool {
    let dir = pharos_model::conformance::shared_dir().join("schemas");
    if !dir.join("iodef-2.0.xsd").exists()
        || Command::new("xmllint").arg("--version").output().is_err()
    {
        pharos_model::conformance::skip("xmllint or ../shared/schemas/iodef-2.0.xsd missing");
        return false;
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_export_writes_every_format_from_a_running_instance() {
    let inst = Instance::start("");
    let samples: Vec<_> = pharos_model::samples::samples()
        .into_iter()
        .filter(|m| m.kind.is_event())
        .collect();
    let body = serde_json::Value::Array(samples.iter().map(pharos_model::json::encode).collect());
    push_ok(&inst, body.to_string()).await;

    // IODEF v2 through the CLI: one incident per event, valid against RFC 7970's schema.
    let xml = export_cli(
        &inst,
        &["--format", "iodef2", "--instance", "csirt.example.net"],
    );
    assert_eq!(xml.matches("<Incident ").count(), samples.len(), "{xml}");
    assert!(xml.contains("rsit:availability=&quot;ddos&quot;"));
    xmllint_iodef(&xml);

    // A pseudonymised MISP feed: every event, none of the original addresses.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("anon.key");
    std::fs::write(&key, format!("{}\n", "5a".repeat(32))).unwrap();
    let feed = dir.path().join("feed");
    export_cli(
        &inst,
        &[
            "--format",
            "misp",
            "--anon-key-file",
            key.to_str().unwrap(),
            "--out",
            feed.to_str().unwrap(),
        ],
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(feed.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest.as_object().unwrap().len(), samples.len());
    let originals: BTreeSet<String> = samples
        .iter()
        .flat_map(|m| m.addresses())
        .map(|(_, a)| a.to_string())
        .collect();
    let mut all = String::new();
    for e in std::fs::read_dir(&feed).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    for a in &originals {
        assert!(
            !all.contains(&format!("\"{a}\"")),
            "{a} remains in the feed"
        );
    }

    // The route: CSV and IntelMQ with their media types, misp and a missing format refused.
    let http = client();
    let resp = http
        .get(inst.url("/api/v1/messages/export?format=csv&kind=ddos"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",ddos,high,availability,ddos,"), "{csv}");
    let resp = http
        .get(inst.url("/api/v1/messages/export?format=intelmq"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= samples.len(), "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l["classification.taxonomy"].is_string())
    );
    for bad in ["format=misp", "kind=ddos", "format=iodef2&limit=0"] {
        let resp = http
            .get(inst.url(&format!("/api/v1/messages/export?{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let resp = http
        .get(inst.url("/api/v1/messages/export?format=iodef2&kind=ddos"))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    xmllint_iodef(&resp.text().await.unwrap());
}
