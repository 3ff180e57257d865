//! The built `pharos parse --json` scored by the labelled vendor-log dev set's own scorer
//! (`../shared/corpora/vendor-logs/elastic-pipeline-tests/score.py`, what `scripts/vendor-score.sh`
//! runs): issue 18's bar holds, so a normaliser change that loses lines or fields fails here.
//! Overall at least 95 % of lines recognised and 90 % of the labelled fields found, and 85 % of the
//! fields in every package that has 20 or more. `pharos parse --stats` prints its table over the
//! same lines, with recognised lines counted per format.

mod support;

use std::process::Command;

use pharos_model::conformance::skip;
use support::{bin, shared_dir};

/// The dev set, or `None` after [`skip`].
fn corpus() -> Option<std::path::PathBuf> {
    let Some(shared) = shared_dir() else {
        skip("../shared is absent (set PHAROS_SHARED)");
        return None;
    };
    let dir = shared.join("corpora/vendor-logs/elastic-pipeline-tests");
    if !dir.join("score.py").is_file() {
        skip(&format!("{} has no score.py", dir.display()));
        return None;
    }
    Some(dir)
}

/// The package directories of the dev set.
fn packages(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn dev_set_score_meets_the_bar() {
    let Some(dir) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("score.json");
    let run = Command::new("python3")
        .arg(dir.join("score.py"))
        .arg("--json")
        .arg(&out)
        .arg("--cmd")
        .arg(format!("{} parse --json", bin()))
        .args(packages(&dir))
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "score.py failed: {}\n{text}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let num = |o: &serde_json::Value, k: &str| o[k].as_f64().unwrap_or(0.0);
    let total = &v["_total"];
    let recognised = num(total, "r") / num(total, "m");
    let fields = num(total, "h") / num(total, "n");
    let mut failures = Vec::new();
    if recognised < 0.95 {
        failures.push(format!("recognised {:.1} % < 95 %", recognised * 100.0));
    }
    if fields < 0.90 {
        failures.push(format!("field accuracy {:.1} % < 90 %", fields * 100.0));
    }
    for (name, p) in v.as_object().unwrap() {
        let n = num(p, "n");
        if name != "_total" && n >= 20.0 && num(p, "h") / n < 0.85 {
            failures.push(format!(
                "{name}: field accuracy {:.1} % of {n} < 85 %",
                num(p, "h") * 100.0 / n
            ));
        }
    }
    assert!(failures.is_empty(), "{}\n{text}", failures.join("\n"));
}

#[test]
fn parse_stats_counts_every_line_per_format() {
    let Some(dir) = corpus() else { return };
    let mut lines = String::new();
    for p in packages(&dir) {
        for e in walk(&p) {
            if e.extension().is_some_and(|x| x == "log")
                && e.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test-"))
            {
                lines.push_str(&std::fs::read_to_string(&e).unwrap());
                lines.push('\n');
            }
        }
    }
    let total = lines.lines().filter(|l| !l.trim().is_empty()).count();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.log");
    std::fs::write(&input, &lines).unwrap();
    let run = Command::new(bin())
        .args(["parse", "--stats"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(run.status.success());
    let table = String::from_utf8_lossy(&run.stdout);
    let mut summed = 0usize;
    let mut saw_total = false;
    for row in table.lines().skip(1) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        match cols.as_slice() {
            ["total", n, ..] => {
                assert_eq!(n.parse::<usize>().unwrap(), total, "{table}");
                saw_total = true;
            }
            [_, lines, typed, fields, unparsed, _share] if lines.parse::<usize>().is_ok() => {
                let n: Vec<usize> = [lines, typed, fields, unparsed]
                    .iter()
                    .map(|c| c.parse().unwrap())
                    .collect();
                assert_eq!(n[0], n[1] + n[2] + n[3], "{row}");
                summed += n[0];
            }
            _ => {}
        }
        if saw_total {
            break;
        }
    }
    assert!(saw_total, "{table}");
    assert_eq!(summed, total, "{table}");
    // the per-line output is replaced by the table
    assert!(!table.contains("nsf="), "{table}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for p in std::fs::read_dir(&d).unwrap().flatten().map(|e| e.path()) {
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
