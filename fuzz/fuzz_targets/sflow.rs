//! sFlow v5: the datagram view and the decoder never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_model::flow::FlowBatch;
use pharos_wire::sflow::SflowDatagram;
use pharos_wire::{DecoderConfig, FlowDecoder};

fuzz_target!(|data: &[u8]| {
    let mut out = FlowBatch::new();
    let mut v = data.to_vec();
    if v.len() >= 4 {
        v[..4].copy_from_slice(&5u32.to_be_bytes());
    }
    if let Ok(d) = SflowDatagram::new_checked(&v[..]) {
        let mut counters = Vec::new();
        d.decode_into(0, None, &mut out, &mut counters, &mut |_| {});
    }
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let _ = d.decode(
        "192.0.2.7:6343".parse().unwrap(),
        1_700_000_000_000,
        &v,
        &mut out,
    );
});
