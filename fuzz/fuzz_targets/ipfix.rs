//! IPFIX: a decoder fed the input twice (so templates defined by the first pass decode the
//! data of the second) never panics and stays within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_model::flow::FlowBatch;
use pharos_wire::{DecoderConfig, FlowDecoder};

fuzz_target!(|data: &[u8]| {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = FlowBatch::new();
    let from = "192.0.2.9:4739".parse().unwrap();
    // Force the IPFIX path whatever the first bytes say, and also try them as they are.
    let mut v = data.to_vec();
    if v.len() >= 2 {
        v[0] = 0;
        v[1] = 10;
    }
    if v.len() >= 4 {
        let len = v.len().min(u16::MAX as usize) as u16;
        v[2..4].copy_from_slice(&len.to_be_bytes());
    }
    for (i, buf) in [&v[..], &v[..], data].into_iter().enumerate() {
        let _ = d.decode(from, 1_700_000_000_000 + i as u64 * 1000, buf, &mut out);
    }
    d.expire(1_700_000_100_000);
    let _ = d.stats().to_string();
});
