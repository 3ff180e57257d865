//! yanglint harness shared by the conformance and round-trip tests: the crate's own
//! `conformance` module, which other crates' tests use too.
#![allow(dead_code)]

use pharos_model::Message;
use pharos_model::conformance::{self, Outcome};

pub use pharos_model::conformance::Linter;

/// A linter, or None after saying the test skipped.
pub fn linter() -> Option<Linter> {
    match Linter::new() {
        Ok(l) => Some(l),
        Err(why) => {
            conformance::skip(&why);
            None
        }
    }
}

pub fn validate_all(msgs: &[Message]) {
    match conformance::validate_messages(msgs) {
        Ok(Outcome::Validated(n)) => assert!(n >= msgs.len()),
        Ok(Outcome::Skipped(why)) => conformance::skip(&why),
        Err(e) => panic!("{e}"),
    }
}
