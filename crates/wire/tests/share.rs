//! Templates and sampling tables shared between decoders (issue 20): a decoder that never saw
//! an exporter's templates decodes its data-only datagrams once another decoder's learned
//! entries reached it; imports are validated and bounded like datagrams, never replace newer
//! state, never touch sequence numbers and are not handed out again.

mod common;

use std::net::SocketAddr;

use common::build::{Msg, flow_fields, flow_record};
use pharos_wire::share::REEXPORT_MS;
use pharos_wire::{DecoderConfig, FlowBatch, FlowDecoder, Protocol, SeqKey, TemplateShare};

const SECS: u32 = 1_700_000_000;
const T0: u64 = SECS as u64 * 1000;

fn exporter() -> SocketAddr {
    "192.0.2.20:50000".parse().unwrap()
}

/// A decoder attached to a share of its own (one per "collector").
fn collector(config: DecoderConfig) -> (FlowDecoder, TemplateShare) {
    let share = TemplateShare::new();
    let mut d = FlowDecoder::new(config);
    d.share_templates(share.clone());
    (d, share)
}

/// What the key-value transport does: every entry learned at `from` is received at `to`.
fn relay(from: &TemplateShare, to: &TemplateShare) -> usize {
    let learned = from.take_learned();
    for e in &learned {
        assert!(pharos_wire::share::valid_key(&e.key), "{}", e.key);
        to.receive(&e.key, &e.value).unwrap();
    }
    learned.len()
}

fn v9_records(n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| flow_record(i, 90_000, 99_000, false))
        .collect()
}

#[test]
fn a_v9_exporter_that_sent_its_template_to_one_collector_is_decoded_by_the_other() {
    let (mut a, share_a) = collector(DecoderConfig::default());
    let (mut b, share_b) = collector(DecoderConfig::default());
    let mut out_a = FlowBatch::new();
    let first = Msg::v9(3, 10, 100_000, SECS)
        .template(260, &flow_fields(false))
        .data(260, &v9_records(4))
        .build();
    a.decode(exporter(), T0, &first, &mut out_a).unwrap();
    assert_eq!(out_a.len(), 4);
    assert_eq!(relay(&share_a, &share_b), 1, "one template learned");

    // After a failover the exporter's data goes to b, which never saw the template.
    let data_only = Msg::v9(3, 11, 100_000, SECS)
        .data(260, &v9_records(4))
        .build();
    let mut out_b = FlowBatch::new();
    let o = b
        .decode(exporter(), T0 + 50, &data_only, &mut out_b)
        .unwrap();
    assert_eq!((o.flows, o.held), (4, 0));
    for i in 0..4 {
        assert_eq!(out_b.get(i), out_a.get(i), "flow {i} decodes the same");
    }
    assert_eq!(b.stats().shared_in, 1);
    assert_eq!(b.stats().templates_learned, 0);
    assert_eq!(b.stats().templates_active, 1);
    // The import did not touch b's sequence state: the stream starts at b's own datagram.
    let key = SeqKey {
        exporter: exporter().ip(),
        domain: 3,
        protocol: Protocol::NetflowV9,
    };
    let s = b.stats().sequences[&key];
    assert_eq!((s.datagrams, s.lost, s.restarts), (1, 0, 0));
    // b does not hand out what it only imported.
    assert_eq!(b.stats().shared_out, 0);
    assert!(share_b.take_learned().is_empty());
}

/// The IOS XR export of issue 13 (selector table in options data) split over two collectors:
/// the options template, its data and the flow template reach only the first.
#[test]
fn an_ipfix_exporter_with_a_selector_table_is_decoded_by_the_other_collector_with_its_rates() {
    let (mut a, share_a) = collector(DecoderConfig::default());
    let (mut b, share_b) = collector(DecoderConfig::default());
    let opts = Msg::ipfix(1, 0, SECS)
        .options_template(
            512,
            &[(302, 8, 0)],
            &[(305, 4, 0), (304, 2, 0), (309, 4, 0), (310, 4, 0)],
        )
        .data(
            512,
            &[[
                1u64.to_be_bytes().to_vec(),
                1u32.to_be_bytes().to_vec(),
                3u16.to_be_bytes().to_vec(),
                1u32.to_be_bytes().to_vec(),
                256u32.to_be_bytes().to_vec(),
            ]
            .concat()],
        )
        .build();
    let mut fields = flow_fields(true);
    fields.push((302, 8, 0));
    fields.push((100, 0xffff, 9)); // an enterprise-specific variable-length field
    let record = |i: u32| {
        let mut r = flow_record(i, T0 - 1000, T0, true);
        r.extend_from_slice(&1u64.to_be_bytes());
        r.extend_from_slice(&[3, b'a', b'b', b'c']);
        r
    };
    let with_template = Msg::ipfix(1, 1, SECS)
        .template(256, &fields)
        .data(256, &[record(0)])
        .build();
    let mut out_a = FlowBatch::new();
    a.decode(exporter(), T0, &opts, &mut out_a).unwrap();
    a.decode(exporter(), T0 + 1, &with_template, &mut out_a)
        .unwrap();
    assert_eq!(out_a.sampling_rate, [256]);
    assert_eq!(
        relay(&share_a, &share_b),
        3,
        "options template, sampling table, flow template"
    );

    let data_only = Msg::ipfix(1, 2, SECS)
        .data(256, &[record(1), record(2)])
        .build();
    let mut out_b = FlowBatch::new();
    b.decode(exporter(), T0 + 10, &data_only, &mut out_b)
        .unwrap();
    assert_eq!(out_b.sampling_rate, [256, 256]);
    assert_eq!(out_b.get(0).packets, 2 * 256);
    assert_eq!(b.stats().shared_in, 3);
    assert_eq!(b.stats().enterprise_fields, 2);
}

#[test]
fn data_held_for_its_template_is_released_when_the_template_arrives_from_the_share() {
    let (mut a, share_a) = collector(DecoderConfig::default());
    let (mut b, share_b) = collector(DecoderConfig::default());
    let data = |seq| {
        Msg::v9(3, seq, 100_000, SECS)
            .data(260, &v9_records(2))
            .build()
    };
    let mut out_b = FlowBatch::new();
    let o = b.decode(exporter(), T0, &data(20), &mut out_b).unwrap();
    assert_eq!((o.flows, o.held), (0, 1));
    let first = Msg::v9(3, 10, 100_000, SECS)
        .template(260, &flow_fields(false))
        .build();
    a.decode(exporter(), T0, &first, &mut FlowBatch::new())
        .unwrap();
    relay(&share_a, &share_b);
    let o = b
        .decode(exporter(), T0 + 100, &data(21), &mut out_b)
        .unwrap();
    assert_eq!(
        o.flows, 4,
        "this datagram's two flows and the two held ones"
    );
    assert_eq!(out_b.len(), 4);
    assert_eq!(b.stats().held_released, 1);
    assert_eq!(b.stats().no_template_sets, 0);
}

#[test]
fn the_decoders_bounds_apply_to_shared_templates() {
    let (mut a, share_a) = collector(DecoderConfig::default());
    let (mut b, share_b) = collector(DecoderConfig {
        max_templates_per_exporter: 1,
        max_fields_per_template: 17,
        ..DecoderConfig::default()
    });
    let mut wide = flow_fields(false);
    wide.push((48, 1, 0)); // 18 fields: over b's limit
    let m = Msg::v9(3, 1, 100_000, SECS)
        .template(260, &flow_fields(false))
        .template(261, &flow_fields(false))
        .template(262, &wide)
        .build();
    a.decode(exporter(), T0, &m, &mut FlowBatch::new()).unwrap();
    assert_eq!(relay(&share_a, &share_b), 3);
    b.decode(
        exporter(),
        T0,
        &Msg::v9(3, 2, 100_000, SECS).build(),
        &mut FlowBatch::new(),
    )
    .unwrap();
    let drops = &b.stats().drops;
    assert_eq!(b.stats().templates_active, 1);
    assert_eq!(
        drops.get("template limit per exporter (shared template refused)"),
        Some(&1)
    );
    assert_eq!(
        drops.get("shared template field limit (template refused)"),
        Some(&1)
    );

    let (mut c, share_c) = collector(DecoderConfig {
        max_exporters: 1,
        ..DecoderConfig::default()
    });
    let other: SocketAddr = "192.0.2.21:50000".parse().unwrap();
    // c knows its one exporter from a datagram; a learns three templates of another one.
    c.decode(exporter(), T0, &m, &mut FlowBatch::new()).unwrap();
    a.decode(other, T0, &m, &mut FlowBatch::new()).unwrap();
    relay(&share_a, &share_c);
    c.decode(
        exporter(),
        T0,
        &Msg::v9(3, 2, 100_000, SECS).build(),
        &mut FlowBatch::new(),
    )
    .unwrap();
    assert_eq!(
        c.stats()
            .drops
            .get("exporter limit (shared template refused)"),
        Some(&3),
        "the second exporter's templates do not fit"
    );
}

#[test]
fn an_older_shared_definition_never_replaces_a_newer_one_and_stale_entries_are_ignored() {
    let (mut a, share_a) = collector(DecoderConfig::default());
    let (mut b, share_b) = collector(DecoderConfig::default());
    // a learns definition X at T0; b learns a different definition Y of the same id later.
    let x = Msg::v9(3, 1, 100_000, SECS)
        .template(260, &flow_fields(false))
        .build();
    let mut short = flow_fields(false);
    short.truncate(8);
    let y = Msg::v9(3, 1, 100_000, SECS).template(260, &short).build();
    a.decode(exporter(), T0, &x, &mut FlowBatch::new()).unwrap();
    b.decode(exporter(), T0 + 5_000, &y, &mut FlowBatch::new())
        .unwrap();
    relay(&share_a, &share_b);
    let data = Msg::v9(3, 2, 100_000, SECS)
        .data(260, &[flow_record(0, 1, 2, false)])
        .build();
    let mut out = FlowBatch::new();
    b.decode(exporter(), T0 + 6_000, &data, &mut out).unwrap();
    assert_eq!(b.stats().shared_ignored, 1);
    assert_eq!(b.stats().shared_in, 0);
    // Y's 8 fields are 26 bytes: the 57-byte record of X reads as two records of Y.
    assert_eq!(out.len(), 2);

    // An entry older than the template timeout is ignored.
    let (mut c, share_c) = collector(DecoderConfig::default());
    a.decode(exporter(), T0, &x, &mut FlowBatch::new()).unwrap();
    let learned = share_a.take_learned();
    assert!(
        learned.is_empty(),
        "an unchanged template is not handed out again at once"
    );
    let (mut a2, share_a2) = collector(DecoderConfig::default());
    a2.decode(exporter(), T0, &x, &mut FlowBatch::new())
        .unwrap();
    relay(&share_a2, &share_c);
    c.decode(
        exporter(),
        T0 + 3_600_000,
        &Msg::v9(3, 2, 100_000, SECS).build(),
        &mut FlowBatch::new(),
    )
    .unwrap();
    assert_eq!(
        (c.stats().shared_ignored, c.stats().templates_active),
        (1, 0)
    );
}

#[test]
fn an_unchanged_template_is_handed_out_again_only_after_the_reexport_interval() {
    let (mut a, share_a) = collector(DecoderConfig::default());
    let t = Msg::v9(3, 1, 100_000, SECS)
        .template(260, &flow_fields(false))
        .build();
    a.decode(exporter(), T0, &t, &mut FlowBatch::new()).unwrap();
    assert_eq!(share_a.take_learned().len(), 1);
    a.decode(exporter(), T0 + 1_000, &t, &mut FlowBatch::new())
        .unwrap();
    assert!(share_a.take_learned().is_empty());
    a.decode(exporter(), T0 + REEXPORT_MS, &t, &mut FlowBatch::new())
        .unwrap();
    assert_eq!(share_a.take_learned().len(), 1);
    // Its own entries coming back (the key-value watch echoes them) change nothing.
    let (mut a_echo, share) = (a, share_a);
    let mut b_dec = FlowDecoder::new(DecoderConfig::default());
    b_dec.share_templates(share.clone());
    b_dec
        .decode(exporter(), T0, &t, &mut FlowBatch::new())
        .unwrap();
    let back = share.take_learned();
    for e in &back {
        share.receive(&e.key, &e.value).unwrap();
    }
    a_echo
        .decode(
            exporter(),
            T0 + REEXPORT_MS + 1,
            &Msg::v9(3, 2, 100_000, SECS).build(),
            &mut FlowBatch::new(),
        )
        .unwrap();
    assert_eq!(a_echo.stats().shared_in, 0);
    assert_eq!(a_echo.stats().templates_learned, 1);
    assert!(
        share.take_learned().is_empty(),
        "imports are not handed out"
    );
}

proptest::proptest! {
    /// Shared entries whose template record is anything (a valid header and key) never panic a
    /// decoder, and what it keeps stays within its bounds.
    #[test]
    fn hostile_shared_template_records_never_panic(
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        options in proptest::prelude::any::<bool>(),
        ipfix in proptest::prelude::any::<bool>(),
    ) {
        let (mut a, share_a) = collector(DecoderConfig::default());
        let m = if ipfix {
            Msg::ipfix(1, 0, SECS).options_template(300, &[(1, 4, 0)], &[(34, 4, 0)])
        } else {
            Msg::v9(1, 0, 100_000, SECS).options_template(300, &[(1, 4, 0)], &[(34, 4, 0)])
        };
        a.decode(exporter(), T0, &m.build(), &mut FlowBatch::new()).unwrap();
        let e = share_a.take_learned().pop().unwrap();
        let mut v = e.value.clone();
        // Byte 34 is the options flag, 35..37 the template id (kept: it derives the key).
        v[34] = options as u8;
        v.truncate(37);
        v.extend_from_slice(&tail);
        let share_b = TemplateShare::with_limits(16, 16);
        let mut b = FlowDecoder::new(DecoderConfig {
            max_templates_per_exporter: 4,
            max_fields_per_template: 16,
            ..DecoderConfig::default()
        });
        b.share_templates(share_b.clone());
        let _ = share_b.receive(&e.key, &v);
        let mut out = FlowBatch::new();
        let data = if ipfix {
            Msg::ipfix(1, 1, SECS).data(300, std::slice::from_ref(&tail)).build()
        } else {
            Msg::v9(1, 1, 100_000, SECS).data(300, std::slice::from_ref(&tail)).build()
        };
        let _ = b.decode(exporter(), T0, &data, &mut out);
        proptest::prop_assert!(b.stats().templates_active <= 1);
    }
}
