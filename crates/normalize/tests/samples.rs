//! Our own sample lines, one file per format in `testdata/vendor-logs/<format>.jsonl`, written from
//! the vendors' public log references (never copied from others' corpora). Each line of a file is
//! `{"line": RAW, "format": NAME, "kind": KIND, "fields": {LEAF: VALUE, ...}}`: the raw line goes
//! through the syslog header parser and auto-detection exactly as the daemon and `pharos parse`
//! do, and must come out as that format and kind, with each listed YANG leaf somewhere in the
//! message's YANG-JSON holding that value (numbers compared as text). Every message also
//! validates with yanglint against the YANG modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pharos_model::json;
use pharos_normalize::{FORMATS, Format, LogInput, Normalized, normalize};
use pharos_wire::syslog::{ParseOptions, TimeZone, parse};
use serde_json::Value;

/// The sample files' directory.
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vendor-logs")
}

/// One sample.
struct Sample {
    file: String,
    lineno: usize,
    line: String,
    format: String,
    kind: String,
    fields: BTreeMap<String, String>,
}

/// Every sample of every file, sorted by file name.
fn samples() -> Vec<Sample> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("{}: {e}", dir().display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{file}:{}: not JSON: {e}", i + 1));
            let s = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{file}:{}: no string {k:?}", i + 1))
                    .to_string()
            };
            let fields = v
                .get("fields")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), scalar(v)))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default();
            out.push(Sample {
                file: file.clone(),
                lineno: i + 1,
                line: s("line"),
                format: s("format"),
                kind: s("kind"),
                fields,
            });
        }
    }
    out
}

/// A JSON scalar as text (`"a"` -> `a`, `5` -> `5`).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The line as the daemon normalises it: syslog header parsed, `: ` before the text dropped.
fn normalise(line: &str) -> Normalized {
    let opts = ParseOptions {
        tz: TimeZone::Utc,
        received: chrono::Utc::now(),
        year_margin: chrono::TimeDelta::days(1),
    };
    let m = parse(line, &opts);
    let text = m.text.strip_prefix(": ").unwrap_or(m.text);
    let input = LogInput {
        text,
        raw: line,
        host: m.header_hostname(),
        app_name: m.app_name,
        time: m.timestamp_utc(),
        facility: m.pri.map(|_| m.facility()),
        severity: m.pri.map(|_| m.severity()),
    };
    normalize(&input, Format::Auto, "nsf-under-test")
}

/// Every (leaf name, scalar value) pair in a YANG-JSON tree; a leaf-list gives one pair per item.
fn leaves(v: &Value, name: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                // drop the module prefix: `pharos-i2nsf-extensions:envelope` -> `envelope`
                let k = k.rsplit(':').next().unwrap_or(k);
                leaves(v, k, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| leaves(v, name, out)),
        other => {
            let s = scalar(other);
            // identities read without their module: `ietf-...:tcp` -> `tcp`
            let s = s
                .rsplit(':')
                .next()
                .filter(|_| s.contains("ietf-"))
                .unwrap_or(&s);
            out.push((name.to_string(), s.to_string()));
        }
    }
}

#[test]
fn every_sample_line_gives_its_format_kind_and_fields() {
    let all = samples();
    assert!(!all.is_empty(), "no samples under {}", dir().display());
    let mut failures = Vec::new();
    for s in &all {
        let n = normalise(&s.line);
        let at = format!("{}:{}", s.file, s.lineno);
        if n.format != s.format {
            failures.push(format!("{at}: format {} (want {})", n.format, s.format));
            continue;
        }
        if n.message.kind.name() != s.kind {
            failures.push(format!(
                "{at}: kind {} (want {})",
                n.message.kind.name(),
                s.kind
            ));
            continue;
        }
        if !n.parsed {
            failures.push(format!("{at}: not parsed (a generic log without fields)"));
            continue;
        }
        let mut got = Vec::new();
        leaves(&json::encode(&n.message), "", &mut got);
        for (leaf, want) in &s.fields {
            let hit = got.iter().any(|(k, v)| {
                k == leaf && (v == want || v.eq_ignore_ascii_case(want) && leaf == "http-method")
            });
            if !hit {
                let seen: Vec<&String> = got
                    .iter()
                    .filter(|(k, _)| k == leaf)
                    .map(|(_, v)| v)
                    .collect();
                failures.push(format!("{at}: {leaf} = {want:?} missing (has {seen:?})"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} samples fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn sample_files_are_named_after_the_format_they_hold() {
    for s in samples() {
        assert_eq!(
            s.file,
            format!("{}.jsonl", s.format),
            "{}:{}: a {} sample belongs in {}.jsonl",
            s.file,
            s.lineno,
            s.format,
            s.format
        );
        assert!(
            FORMATS.contains(&s.format.as_str()),
            "{}: unknown format {}",
            s.file,
            s.format
        );
    }
}

#[test]
fn every_format_has_sample_lines() {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples() {
        *per.entry(s.format).or_default() += 1;
    }
    let thin: Vec<String> = FORMATS
        .iter()
        .filter(|f| **f != "generic")
        .filter(|f| per.get(**f).copied().unwrap_or(0) < 3)
        .map(|f| format!("{f} ({})", per.get(*f).copied().unwrap_or(0)))
        .collect();
    assert!(
        thin.is_empty(),
        "formats with fewer than 3 sample lines in testdata/vendor-logs: {}",
        thin.join(", ")
    );
}

#[test]
fn every_sample_validates_with_yanglint() {
    let lint = match pharos_model::conformance::Linter::new() {
        Ok(l) => l,
        Err(why) => {
            pharos_model::conformance::skip(&why);
            return;
        }
    };
    let all = samples();
    let docs: Vec<Value> = all
        .iter()
        .map(|s| json::encode(&normalise(&s.line).message))
        .collect();
    let n = lint.validate_json(&docs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, all.len());
}
