//! The conformance suite (crates/store/tests/conformance/mod.rs) on the PostgreSQL store: each case on a new
//! server (tests/server/mod.rs) with an empty database.

// The suite lives beside the SQLite store, which runs it too (crates/store/tests).
#[macro_use]
#[path = "../../store/tests/conformance/mod.rs"]
mod conformance;
mod server;

use std::sync::Arc;

use conformance::Fixture;
use pharos_store_pg::PgStore;
use server::PgServer;

/// A new PostgreSQL store on its own server; `None` (skipped) when PostgreSQL is not installed
/// and `PHAROS_REQUIRE_ALL` is not set.
fn fresh() -> Option<Fixture> {
    let server = PgServer::start()?;
    let store = PgStore::connect(&server.url()).unwrap();
    Some(Fixture {
        store: Arc::new(store),
        keep: Some(Box::new(server)),
    })
}

conformance_tests!(fresh);
