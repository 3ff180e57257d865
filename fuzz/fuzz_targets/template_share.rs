//! Template sharing (issue 20): whatever a decoder learns from a datagram and hands out is
//! accepted by another collector's share under its key (a valid key-value key) and applied
//! without panic; the input itself as a received entry (under the key it derives) never panics
//! a decoder, and what the decoder keeps stays within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_model::flow::FlowBatch;
use pharos_wire::share::{key_of, valid_key};
use pharos_wire::{DecoderConfig, FlowDecoder, TemplateShare};

fuzz_target!(|data: &[u8]| {
    let from = "192.0.2.9:2055".parse().unwrap();
    let t0 = 1_700_000_000_000u64;
    let share_a = TemplateShare::new();
    let mut a = FlowDecoder::new(DecoderConfig::default());
    a.share_templates(share_a.clone());
    let mut out = FlowBatch::new();
    // The input as NetFlow v9 and as IPFIX (version forced), so that it defines templates.
    for version in [9u8, 10] {
        let mut v = data.to_vec();
        if v.len() >= 4 {
            v[0] = 0;
            v[1] = version;
            if version == 10 {
                let len = v.len().min(u16::MAX as usize) as u16;
                v[2..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        let _ = a.decode(from, t0, &v, &mut out);
    }
    let share_b = TemplateShare::with_limits(64, 64);
    let mut b = FlowDecoder::new(DecoderConfig {
        max_templates_per_exporter: 8,
        max_fields_per_template: 32,
        max_samplers_per_domain: 4,
        ..DecoderConfig::default()
    });
    b.share_templates(share_b.clone());
    for e in share_a.take_learned() {
        assert!(valid_key(&e.key), "{:?}", e.key);
        share_b
            .receive(&e.key, &e.value)
            .expect("an entry a decoder hands out is accepted");
    }
    if let Ok(k) = key_of(data) {
        let _ = share_b.receive(&k, data);
    }
    for (i, buf) in [data, &[0, 9, 0, 0][..]].into_iter().enumerate() {
        let _ = b.decode(from, t0 + i as u64, buf, &mut out);
    }
    assert!(b.stats().templates_active <= 8);
    b.expire(t0 + 10_000_000);
    let _ = b.stats().to_string();
});
