//! NetFlow v5: the checked view and the stateful decoder never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_model::flow::FlowBatch;
use pharos_wire::netflow_v5::V5Packet;
use pharos_wire::{DecoderConfig, FlowDecoder};

fuzz_target!(|data: &[u8]| {
    let mut out = FlowBatch::new();
    if let Ok(p) = V5Packet::new_checked(data) {
        let h = p.header();
        let n = p.decode_into("192.0.2.1".parse().unwrap(), 1, &mut out);
        assert_eq!(n, h.count as usize);
    }
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let _ = d.decode(
        "192.0.2.1:2055".parse().unwrap(),
        1_700_000_000_000,
        data,
        &mut out,
    );
});
