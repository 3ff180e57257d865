//! pcap / pcapng: reading a capture never panics, and every datagram it yields decodes (or is
//! refused) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_model::flow::FlowBatch;
use pharos_wire::pcap::Capture;
use pharos_wire::{DecoderConfig, FlowDecoder};

fuzz_target!(|data: &[u8]| {
    let Ok(cap) = Capture::new(data) else { return };
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = FlowBatch::new();
    for dg in cap.take(10_000) {
        let Ok(dg) = dg else { break };
        let _ = d.decode(dg.src, dg.timestamp_ms, dg.payload, &mut out);
    }
});
