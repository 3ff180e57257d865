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

/// `pharos check-config FILE`: (stdout, stderr), asserting it succeeded.
fn check_config(text: &str) -> (String, String) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pharos"))
        .arg("check-config")
        .arg(file.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

/// The text of docs/config.md's section whose heading names `[name]`, up to the next heading
/// of the same or a higher level.
fn doc_section(doc: &str, name: &str) -> String {
    let head = format!("`[{name}]`");
    let mut lines = doc
        .lines()
        .skip_while(|l| !(l.starts_with('#') && l.contains(&head)));
    let first = lines.next().unwrap_or_default().to_string();
    let level = first.chars().take_while(|c| *c == '#').count();
    let rest: Vec<&str> = lines
        .take_while(|l| {
            let h = l.chars().take_while(|c| *c == '#').count();
            h == 0 || h > level
        })
        .collect();
    format!("{first}\n{}", rest.join("\n"))
}

/// Every key of the effective configuration (`pharos check-config` on a file that turns on every
/// optional stage, so that every section is printed) has a row in its section of docs/config.md,
/// keys of sub-tables (`[detect.ddos]`, `[detect.ddos.baseline]`) included, and every duration
/// key has the one style (`window`, `idle_timeout`: a string with a unit, no unit in the name).
#[test]
fn every_config_key_is_documented_in_its_section() {
    let (text, _) = check_config("[detect]\n[notify]\n[state]\n");
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let cfg: toml::Table = body.parse().unwrap();
    let doc = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    for section in [
        "api",
        "store",
        "log",
        "flow",
        "flow_store",
        "syslog",
        "detect",
        "detect_hook",
        "notify",
        "state",
        "report",
        "emit",
    ] {
        assert!(
            cfg.get(section).is_some_and(toml::Value::is_table),
            "check-config does not print [{section}]:\n{text}"
        );
    }
    let (mut missing, mut unit_in_name, mut checked) = (Vec::new(), Vec::new(), 0);
    // `path` is the table's dotted name, `sec` the text of its top-level section
    fn walk(
        path: &str,
        table: &toml::Table,
        sec: &str,
        out: (&mut Vec<String>, &mut Vec<String>, &mut usize),
    ) {
        let (missing, unit_in_name, checked) = out;
        for (key, v) in table {
            let full = format!("{path}.{key}");
            let documented = sec.contains(&format!("`{key}`"))
                || sec.contains(&format!("`[{full}]`"))
                || sec.contains(&format!("`{key}.<"));
            *checked += 1;
            if !documented {
                missing.push(format!("[{path}] {key}"));
            }
            if ["_s", "_secs", "_seconds", "_ms", "_min"]
                .iter()
                .any(|u| key.ends_with(u))
            {
                unit_in_name.push(format!("[{path}] {key}"));
            }
            if let Some(t) = v.as_table() {
                walk(
                    &full,
                    t,
                    sec,
                    (&mut *missing, &mut *unit_in_name, &mut *checked),
                );
            }
        }
    }
    for (name, value) in &cfg {
        let Some(keys) = value.as_table() else {
            continue;
        };
        let sec = doc_section(&doc, name);
        assert!(sec.len() > 10, "docs/config.md has no section for [{name}]");
        walk(
            name,
            keys,
            &sec,
            (&mut missing, &mut unit_in_name, &mut checked),
        );
    }
    assert!(checked > 100, "only {checked} keys checked:\n{text}");
    assert!(
        missing.is_empty(),
        "keys without a row in docs/config.md: {missing:?}"
    );
    assert!(
        unit_in_name.is_empty(),
        "duration keys must be strings without a unit in the name: {unit_in_name:?}"
    );
}

/// A file of the previous release still loads: `check-config` prints the effective values under
/// the new keys and one warning per old key, naming the old key, the new key and its new value;
/// docs/config.md lists each old key as a deprecated alias.
#[test]
fn old_keys_load_with_a_warning_and_are_documented_as_deprecated() {
    let old = "[syslog]\nidle_timeout_secs = 300\n[flow_store]\nsegment_seconds = 2\n\
               [detect.ddos]\nhold_s = 45\n[notify]\ndedup_window_s = 30\n\
               [report]\ncounter_period_min = 5\n[detect_hook]\ntimeout_seconds = 20\n";
    let (stdout, stderr) = check_config(old);
    let cfg: toml::Table = stdout
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n")
        .parse()
        .unwrap();
    assert_eq!(cfg["syslog"]["idle_timeout"].as_str(), Some("5m"));
    assert_eq!(cfg["flow_store"]["segment"].as_str(), Some("2s"));
    assert_eq!(cfg["detect"]["ddos"]["hold"].as_str(), Some("45s"));
    assert_eq!(cfg["notify"]["dedup_window"].as_str(), Some("30s"));
    assert_eq!(cfg["report"]["counter_period"].as_str(), Some("5m"));
    assert_eq!(cfg["detect_hook"]["timeout"].as_str(), Some("20s"));
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 6, "{stderr}");
    assert!(
        stderr.contains("[detect.ddos] hold_s = 45 is deprecated")
            && stderr.contains("write hold = \"45s\""),
        "{stderr}"
    );
    let doc = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    for old in [
        "idle_timeout_secs",
        "handshake_timeout_secs",
        "segment_seconds",
        "compact_after_seconds",
        "window_s",
        "delay_s",
        "hold_s",
        "update_interval_s",
        "idle_evict_s",
        "learning_s",
        "half_life_s",
        "timeout_seconds",
        "dedup_window_s",
        "dampening_s",
        "leakspeed_ms",
        "blackhole_s",
        "silence_default_s",
        "clock_offset_max_s",
        "interval_s",
        "counter_period_min",
    ] {
        assert!(
            doc.lines()
                .any(|l| l.contains(&format!("`{old}`")) && l.contains("deprecated")),
            "docs/config.md does not list `{old}` as a deprecated alias"
        );
    }
}
