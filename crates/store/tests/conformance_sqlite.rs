//! The conformance suite (tests/conformance/mod.rs) on the SQLite store: the contract of
//! [`pharos_store::MessageStore`], which every store behind the trait (crates/store-pg) runs too.

#[macro_use]
mod conformance;

use std::sync::Arc;

use conformance::Fixture;
use pharos_store::SqliteStore;

/// A new SQLite store in a temp dir (a file in WAL mode with its reader pool, as `pharos run`
/// opens it).
fn fresh() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("messages.db")).unwrap();
    Some(Fixture {
        store: Arc::new(store),
        keep: Some(Box::new(dir)),
    })
}

conformance_tests!(fresh);
