//! NetFlow v9: a decoder fed the input twice (so templates defined by the first pass decode the
//! data of the second) never panics and stays within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_model::flow::FlowBatch;
use pharos_wire::{DecoderConfig, FlowDecoder};

fuzz_target!(|data: &[u8]| {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = FlowBatch::new();
    let from = "192.0.2.9:2055".parse().unwrap();
    // Force the v9 path whatever the first bytes say, and also try them as they are.
    let mut v = data.to_vec();
    if v.len() >= 2 {
        v[0] = 0;
        v[1] = 9;
    }
    for (i, buf) in [&v[..], &v[..], data].into_iter().enumerate() {
        let _ = d.decode(from, 1_700_000_000_000 + i as u64 * 1000, buf, &mut out);
    }
    d.expire(1_700_000_100_000);
    let _ = d.stats().to_string();
});
