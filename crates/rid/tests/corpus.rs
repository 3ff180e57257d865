//! The fuzz seed corpus (`fuzz/corpus/parse`) is the emitted examples: every seed parses to its
//! example. `PHAROS_RID_WRITE_CORPUS=1` rewrites the seeds from the examples.

mod common;

use std::path::Path;

use pharos_rid::*;

#[test]
fn seed_corpus_holds_every_example_and_each_parses_to_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse");
    if std::env::var_os("PHAROS_RID_WRITE_CORPUS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, rid) in common::all() {
            std::fs::write(dir.join(format!("{name}.xml")), rid.emit()).unwrap();
        }
    }
    for (name, rid) in common::all() {
        let path = dir.join(format!("{name}.xml"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (PHAROS_RID_WRITE_CORPUS=1 writes it)",
                path.display()
            )
        });
        assert_eq!(
            Rid::parse(&bytes, &Limits::default()).unwrap(),
            rid,
            "{name}"
        );
    }
}
