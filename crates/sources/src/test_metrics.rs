//! The test binary's metrics recorder, shared by the flow and syslog tests (only one recorder can
//! be installed per process).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The process-wide test recorder (installed once; tests tell their metrics apart by labels).
pub(crate) fn snapshotter() -> &'static Snapshotter {
    static S: OnceLock<Snapshotter> = OnceLock::new();
    S.get_or_init(|| {
        let r = DebuggingRecorder::new();
        let s = r.snapshotter();
        r.install().expect("no other recorder in this test binary");
        s
    })
}

/// Sum of a counter over the series whose labels include every `(key, value)` of `labels`.
/// A snapshot resets the debugging recorder's counters, so every test's snapshot is folded into
/// one process-wide running total.
pub(crate) fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    static TOTALS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    let mut totals = TOTALS.get_or_init(Default::default).lock().unwrap();
    for (k, _, _, v) in snapshotter().snapshot().into_vec() {
        if let DebugValue::Counter(c) = v {
            let key = k.key();
            let mut id = key.name().to_string();
            for l in key.labels() {
                id.push_str(&format!("\u{1f}{}={}", l.key(), l.value()));
            }
            *totals.entry(id).or_default() += c;
        }
    }
    totals
        .iter()
        .filter(|(id, _)| {
            let mut parts = id.split('\u{1f}');
            parts.next() == Some(name) && {
                let ls: Vec<&str> = parts.collect();
                labels
                    .iter()
                    .all(|(k, v)| ls.contains(&format!("{k}={v}").as_str()))
            }
        })
        .map(|(_, v)| *v)
        .sum()
}
