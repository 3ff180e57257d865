// Real vendor lines for the corpus bench and the corpus_throughput example (included, not a
// module): the labelled dev set under ../shared, read at run time and never copied into the
// repository, and our own samples in testdata/vendor-logs.

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every input line of the dev set: `test-*.log` lines and the `message` of `test-*.json` events.
fn corpus_lines() -> Vec<String> {
    let shared = std::env::var_os("PHAROS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    let root = shared.join("corpora/vendor-logs/elastic-pipeline-tests");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for p in rd.flatten().map(|e| e.path()) {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                dirs.push(p);
            } else if name.starts_with("test-")
                && !name.contains("-expected")
                && !name.contains("-config")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        if p.extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            for e in v["events"].as_array().into_iter().flatten() {
                if let Some(m) = e["message"].as_str() {
                    out.push(m.to_string());
                }
            }
        } else if p.extension().is_some_and(|x| x == "log") {
            out.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(String::from),
            );
        }
    }
    assert!(
        !out.is_empty(),
        "no lines under {}: put ../shared beside the repository or set PHAROS_SHARED",
        root.display()
    );
    out
}

/// The `line` of every sample in `testdata/vendor-logs/*.jsonl`.
fn sample_lines() -> Vec<String> {
    let dir = repo().join("testdata/vendor-logs");
    let mut out = Vec::new();
    for p in std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
    {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for l in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l)
                && let Some(s) = v["line"].as_str()
            {
                out.push(s.to_string());
            }
        }
    }
    out
}
