//! The cluster's flow batch encoding (`pharos_cluster::wire`): the checked view and the decoder
//! never panic and never allocate more than `MAX_FLOWS` rows on any input; an error appends
//! nothing to a reused batch; what decodes re-encodes to bytes that decode to the same flows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_cluster::wire::{self, MAX_FLOWS, WireBatch};
use pharos_model::flow::{FlowBatch, FlowRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(view) = WireBatch::new_checked(data) else {
        assert!(wire::decode(data).is_err());
        return;
    };
    assert!(view.len() <= MAX_FLOWS);
    // A reused batch with one row already in it.
    let mut out = FlowBatch::new();
    out.push(&FlowRecord::default());
    match view.decode_into(&mut out) {
        Ok(n) => {
            assert_eq!(n, view.len());
            assert_eq!(out.len(), n + 1);
            let rows: Vec<FlowRecord> = out.iter().skip(1).collect();
            let mut got = FlowBatch::new();
            got.extend_records(&rows);
            let mut again = Vec::new();
            wire::encode(&got, &mut again);
            let back = wire::decode(&again).expect("re-encoded batch decodes");
            assert_eq!(
                back.iter().collect::<Vec<_>>(),
                got.iter().collect::<Vec<_>>()
            );
        }
        Err(_) => assert_eq!(out.len(), 1, "an error appended rows"),
    }
});
