//! Auto-detection plus every normaliser on arbitrary bytes (as UTF-8, lossily): must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_normalize::{FORMATS, Format, LogInput, detect, normalize};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Use the first line as an optional app name, the rest as the text, to reach app-name probes.
    let (app, body) = match text.split_once('\n') {
        Some((a, b)) if a.len() < 32 => (Some(a), b),
        _ => (None, text.as_ref()),
    };
    let input = LogInput {
        text: body,
        raw: &text,
        host: Some("fuzz"),
        app_name: app,
        time: None,
        facility: None,
        severity: Some(4),
    };
    let _ = detect(&input);
    let n = normalize(&input, Format::Auto, "fuzz");
    assert!(n.message.common.raw.is_some());
    for name in FORMATS {
        let _ = normalize(&input, Format::Named(name), "fuzz");
    }
});
