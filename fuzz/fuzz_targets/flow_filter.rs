//! The flow filter parser on arbitrary bytes (as UTF-8, lossily): never panics; a filter that
//! parses prints a canonical form that parses back to the same AST and prints the same again; an
//! error points inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_model::flow::FlowRecord;
use pharos_store::flows::filter::{MAX_FILTER_LEN, matches, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(&text) {
        Ok(expr) => {
            let printed = expr.to_string();
            assert!(
                printed.len() <= MAX_FILTER_LEN,
                "{text:?} printed as {} bytes",
                printed.len()
            );
            let again = match parse(&printed) {
                Ok(e) => e,
                Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
            };
            assert_eq!(again, expr, "{text:?} printed as {printed:?}");
            assert_eq!(
                again.to_string(),
                printed,
                "printing is not idempotent for {text:?}"
            );
            // the evaluator accepts whatever the parser produced
            let _ = matches(&expr, &FlowRecord::default());
        }
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1, "{e:?}");
            let lines = text.split('\n').count();
            assert!(
                e.line <= lines,
                "{text:?}: error on line {} of {lines}",
                e.line
            );
            let line_chars = text
                .split('\n')
                .nth(e.line - 1)
                .map_or(0, |l| l.chars().count());
            assert!(e.column <= line_chars + 1, "{text:?}: {e}");
            assert!(!e.message.is_empty());
            let _ = e.render(&text);
        }
    }
});
