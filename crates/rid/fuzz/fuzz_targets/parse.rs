//! The RID parser on arbitrary bytes: never panics, stays within its limits; whatever parses
//! emits a document that parses back to the same message (and the same for a bare IODEF
//! document). Seeds in `corpus/parse` are the emitted examples of every message type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_rid::{IodefDocument, Limits, Rid};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    if let Ok(rid) = Rid::parse(data, &limits) {
        let xml = rid.emit();
        match Rid::parse(xml.as_bytes(), &Limits::default()) {
            Ok(again) => assert_eq!(again, rid, "{xml}"),
            Err(e) => panic!("emitted a document that does not parse: {e}\n{xml}"),
        }
        let _ = rid.check();
    }
    if let Ok(doc) = IodefDocument::parse(data, &limits) {
        let xml = doc.emit();
        assert_eq!(
            IodefDocument::parse(xml.as_bytes(), &Limits::default()).as_ref(),
            Ok(&doc),
            "{xml}"
        );
        let _ = pharos_rid::iodef_to_ddos(&doc);
    }
});
