//! The documentation says what the program does: every metric the code exports is documented in
//! docs/metrics.md and described (`# HELP`), every documented metric exists, and the README's
//! examples of error messages are the messages the program really gives.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Metric names in `text` that follow `macro!(` (possibly on the next line).
fn names_after(text: &str, macros: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for m in macros {
        let open = format!("{m}!(");
        let mut rest = text;
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let t = rest.trim_start();
            if let Some(name) = t.strip_prefix("\"pharos_")
                && let Some(end) = name.find('"')
            {
                out.insert(format!("pharos_{}", &name[..end]));
            }
        }
    }
    out
}

#[test]
fn every_metric_is_documented_and_described_and_every_documented_one_exists() {
    let mut files = Vec::new();
    rust_sources(&root().join("crates"), &mut files);
    let (mut used, mut described) = (BTreeSet::new(), BTreeSet::new());
    for f in &files {
        let s = f.to_string_lossy();
        if s.contains("/tests/") || s.ends_with("tests.rs") || s.contains("/benches/") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        used.extend(names_after(&text, &["counter", "gauge", "histogram"]));
        described.extend(names_after(
            &text,
            &["describe_counter", "describe_gauge", "describe_histogram"],
        ));
    }
    assert!(
        used.len() > 50,
        "found only {} metrics: {used:?}",
        used.len()
    );
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `pharos_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("pharos_{n}"))
        .collect();
    let undocumented: Vec<_> = used.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "metrics missing from docs/metrics.md: {undocumented:?}"
    );
    let stale: Vec<_> = documented.difference(&used).collect();
    assert!(
        stale.is_empty(),
        "docs/metrics.md lists metrics no code exports: {stale:?}"
    );
    let undescribed: Vec<_> = used.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "metrics without a describe_*! (no # HELP line): {undescribed:?}"
    );
}

#[test]
fn the_readme_push_error_is_the_real_message() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    // the example notification (between -d ' and the closing ')
    let start = readme.find("-d '{").expect("the README's push example") + 4;
    let end = start + readme[start..].find("}'").expect("end of the push example") + 1;
    let doc: serde_json::Value = serde_json::from_str(&readme[start..end]).unwrap();
    pharos_model::json::decode(&doc).expect("the README's example is valid");
    // the documented refusal: the same notification with usage 101
    let quoted = readme
        .split('`')
        .find(|s| s.starts_with("i2nsf-event/") && s.contains("/usage: "))
        .expect("the README quotes the refusal of an out-of-range usage");
    let mut bad = doc.clone();
    bad["ietf-i2nsf-monitoring-interface:i2nsf-event"]["i2nsf-system-detection-alarm"]["usage"] =
        101.into();
    let e = pharos_model::json::decode(&bad).unwrap_err();
    assert_eq!(e.to_string(), quoted);
}

#[test]
fn the_readme_installs_the_binary_its_examples_call() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("cargo install --locked --path\ncrates/pharos")
            || readme.contains("cargo install --locked --path crates/pharos"),
        "the README says how to install `pharos`"
    );
    let manifest = std::fs::read_to_string(root().join("crates/pharos/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"pharos\""));
    assert!(
        !readme.contains("cargo run --release -- events"),
        "examples call the installed `pharos`, not cargo run"
    );
}

/// Every key of the effective configuration (`pharos check-config` on an empty file) has a row
/// in its section of docs/config.md.
#[test]
fn every_config_key_is_documented_in_its_section() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pharos"))
        .arg("check-config")
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let cfg: toml::Table = body.parse().unwrap();
    let doc = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    // the text of the section whose heading names `[name]`, up to the next heading
    let section = |name: &str| -> String {
        let head = format!("`[{name}]`");
        let mut lines = doc
            .lines()
            .skip_while(|l| !(l.starts_with('#') && l.contains(&head)));
        let first = lines.next().unwrap_or_default().to_string();
        let rest: Vec<&str> = lines.take_while(|l| !l.starts_with('#')).collect();
        format!("{first}\n{}", rest.join("\n"))
    };
    let mut missing = Vec::new();
    for (name, value) in &cfg {
        let Some(keys) = value.as_table() else {
            continue;
        };
        let sec = section(name);
        assert!(sec.len() > 10, "docs/config.md has no section for [{name}]");
        for (key, v) in keys {
            if v.is_table() {
                continue;
            }
            if !sec.contains(&format!("`{key}`")) {
                missing.push(format!("[{name}] {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys without a row in docs/config.md: {missing:?}"
    );
}
