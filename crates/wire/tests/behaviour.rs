//! Decoder behaviour on generated packets: templates, held data, withdrawal, expiry, sampling,
//! sequence accounting, time conversion, limits, and truncation at every length.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::build::{self, Msg, flow_fields, flow_record};
use pharos_wire::{DecoderConfig, FlowBatch, FlowDecoder, Protocol, SeqKey, WireError};

const T0: u64 = 1_700_000_000_000;
const SECS: u32 = 1_700_000_000;

fn exporter() -> SocketAddr {
    "192.0.2.10:40000".parse().unwrap()
}

fn dec() -> FlowDecoder {
    FlowDecoder::new(DecoderConfig::default())
}

fn seq(d: &FlowDecoder, domain: u32, protocol: Protocol) -> pharos_wire::SequenceStats {
    d.stats().sequences[&SeqKey {
        exporter: exporter().ip(),
        domain,
        protocol,
    }]
}

// ---------------------------------------------------------------- templates and held data

#[test]
fn ipfix_data_before_template_is_decoded_when_template_arrives() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let data = Msg::ipfix(7, 0, SECS).data(
        300,
        &[
            flow_record(1, T0, T0 + 5, true),
            flow_record(2, T0, T0 + 5, true),
        ],
    );
    let o = d.decode(exporter(), T0, &data.build(), &mut out).unwrap();
    assert_eq!((o.flows, o.held), (0, 1));
    assert!(out.is_empty());
    let tmpl = Msg::ipfix(7, 2, SECS).template(300, &flow_fields(true));
    let o = d
        .decode(exporter(), T0 + 500, &tmpl.build(), &mut out)
        .unwrap();
    assert_eq!(
        o.flows, 2,
        "the held records are decoded when the template arrives"
    );
    assert_eq!(out.get(0).src_port, 1025);
    assert_eq!(out.get(1).src_port, 1026);
    assert_eq!(out.get(1).start_ms, T0);
    assert_eq!(d.stats().held_released, 1);
    assert!(d.stats().drops.is_empty(), "{:?}", d.stats().drops);
}

#[test]
fn v9_data_before_template_in_the_same_packet_is_decoded() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let m = Msg::v9(1, 0, 100_000, SECS)
        .data(260, &[flow_record(0, 90_000, 99_000, false)])
        .template(260, &flow_fields(false));
    let o = d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    assert_eq!((o.flows, o.held), (1, 1));
    let r = out.get(0);
    assert_eq!(r.start_ms, SECS as u64 * 1000 - 10_000);
    assert_eq!(r.end_ms, SECS as u64 * 1000 - 1_000);
}

#[test]
fn held_data_that_never_gets_a_template_expires_and_is_counted() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let data = Msg::ipfix(7, 0, SECS).data(300, &[flow_record(1, T0, T0, true)]);
    d.decode(exporter(), T0, &data.build(), &mut out).unwrap();
    d.expire(T0 + 1_000);
    assert!(d.stats().drops.is_empty(), "still within the hold time");
    d.expire(T0 + 2_001);
    assert_eq!(
        d.stats().drops.get("held data expired (no template)"),
        Some(&1)
    );
    let tmpl = Msg::ipfix(7, 1, SECS).template(300, &flow_fields(true));
    let o = d
        .decode(exporter(), T0 + 3_000, &tmpl.build(), &mut out)
        .unwrap();
    assert_eq!(o.flows, 0, "expired data is gone");
}

#[test]
fn held_data_is_bounded_per_exporter() {
    let cfg = DecoderConfig {
        max_held_bytes_per_exporter: 200,
        ..DecoderConfig::default()
    };
    let mut d = FlowDecoder::new(cfg);
    let mut out = FlowBatch::new();
    let recs: Vec<Vec<u8>> = (0..3).map(|i| flow_record(i, T0, T0, true)).collect();
    let data = Msg::ipfix(7, 0, SECS).data(300, &recs).data(300, &recs);
    let o = d.decode(exporter(), T0, &data.build(), &mut out).unwrap();
    assert_eq!(o.held, 1);
    assert_eq!(
        d.stats().drops.get("held data over budget (no template)"),
        Some(&1)
    );
}

#[test]
fn ipfix_template_withdrawal_stops_decoding_its_data() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let m = Msg::ipfix(7, 0, SECS)
        .template(300, &flow_fields(true))
        .data(300, &[flow_record(1, T0, T0, true)]);
    assert_eq!(
        d.decode(exporter(), T0, &m.build(), &mut out)
            .unwrap()
            .flows,
        1
    );
    let w = Msg::ipfix(7, 1, SECS).withdraw(300);
    d.decode(exporter(), T0 + 1, &w.build(), &mut out).unwrap();
    assert_eq!(d.stats().templates_withdrawn, 1);
    assert_eq!(d.stats().templates_active, 0);
    let data = Msg::ipfix(7, 1, SECS).data(300, &[flow_record(2, T0, T0, true)]);
    let o = d
        .decode(exporter(), T0 + 2, &data.build(), &mut out)
        .unwrap();
    assert_eq!(
        (o.flows, o.held),
        (0, 1),
        "data after withdrawal waits for a new template"
    );
}

#[test]
fn ipfix_withdraw_all_removes_every_template_of_the_domain_only() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let m = Msg::ipfix(7, 0, SECS)
        .template(300, &flow_fields(true))
        .template(301, &flow_fields(true));
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    let other = Msg::ipfix(8, 0, SECS).template(300, &flow_fields(true));
    d.decode(exporter(), T0, &other.build(), &mut out).unwrap();
    assert_eq!(d.stats().templates_active, 3);
    let w = Msg::ipfix(7, 0, SECS).withdraw(2);
    d.decode(exporter(), T0, &w.build(), &mut out).unwrap();
    assert_eq!(d.stats().templates_withdrawn, 2);
    let data = Msg::ipfix(8, 1, SECS).data(300, &[flow_record(2, T0, T0, true)]);
    assert_eq!(
        d.decode(exporter(), T0, &data.build(), &mut out)
            .unwrap()
            .flows,
        1,
        "domain 8 keeps its template"
    );
}

#[test]
fn templates_expire_when_not_refreshed_and_same_id_elsewhere_is_separate() {
    let cfg = DecoderConfig {
        template_timeout: Duration::from_secs(60),
        ..DecoderConfig::default()
    };
    let mut d = FlowDecoder::new(cfg);
    let mut out = FlowBatch::new();
    let m = Msg::ipfix(7, 0, SECS).template(300, &flow_fields(true));
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    let data = Msg::ipfix(7, 0, SECS).data(300, &[flow_record(2, T0, T0, true)]);
    let other: SocketAddr = "192.0.2.11:40000".parse().unwrap();
    assert_eq!(
        d.decode(other, T0, &data.build(), &mut out).unwrap().held,
        1,
        "another exporter's template 300 is unknown"
    );
    assert_eq!(
        d.decode(exporter(), T0 + 59_000, &data.build(), &mut out)
            .unwrap()
            .flows,
        1
    );
    d.expire(T0 + 61_000);
    assert_eq!(d.stats().templates_expired, 1);
    assert_eq!(
        d.decode(exporter(), T0 + 61_000, &data.build(), &mut out)
            .unwrap()
            .held,
        1
    );
}

#[test]
fn redefining_a_template_replaces_it() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let m = Msg::ipfix(7, 0, SECS)
        .template(300, &[(7, 2, 0), (11, 2, 0)])
        .data(300, &[vec![0, 1, 0, 2]]);
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    let m = Msg::ipfix(7, 1, SECS)
        .template(300, &[(11, 2, 0), (7, 2, 0)])
        .data(300, &[vec![0, 1, 0, 2]]);
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    assert_eq!((out.get(0).src_port, out.get(0).dst_port), (1, 2));
    assert_eq!((out.get(1).src_port, out.get(1).dst_port), (2, 1));
}

// ---------------------------------------------------------------- IPFIX field encodings

#[test]
fn ipfix_variable_length_fields_with_255_escape_and_enterprise_fields_are_walked_and_counted() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    // src v4, a variable-length IETF string (interfaceName 82), an enterprise field (PEN 29305,
    // reverse octets, 8 bytes), a variable-length enterprise field, dst port.
    let fields = [
        (8, 4, 0),
        (82, 0xffff, 0),
        (1, 8, 29305),
        (99, 0xffff, 9),
        (11, 2, 0),
    ];
    let mut r1 = vec![10, 0, 0, 1, 3, b'e', b't', b'h'];
    r1.extend_from_slice(&7u64.to_be_bytes());
    r1.extend_from_slice(&[255, 0x01, 0x2c]);
    r1.extend(std::iter::repeat_n(0xaa, 300));
    r1.extend_from_slice(&443u16.to_be_bytes());
    let mut r2 = vec![10, 0, 0, 2, 0];
    r2.extend_from_slice(&9u64.to_be_bytes());
    r2.push(0);
    r2.extend_from_slice(&53u16.to_be_bytes());
    let m = Msg::ipfix(1, 0, SECS)
        .template(256, &fields)
        .data(256, &[r1, r2]);
    let o = d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    assert_eq!(o.flows, 2);
    assert_eq!(out.get(0).src_addr, "10.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(
        out.get(0).dst_port,
        443,
        "the 300-byte escaped field was skipped exactly"
    );
    assert_eq!(out.get(1).src_addr, "10.0.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(out.get(1).dst_port, 53);
    assert_eq!(
        d.stats().enterprise_fields,
        4,
        "2 enterprise fields × 2 records, counted"
    );
    assert_eq!(
        d.stats().unmapped_fields,
        2,
        "interfaceName × 2 records, counted"
    );
}

#[test]
fn ipfix_absolute_and_delta_times_convert_to_unix_ms() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let ntp =
        |ms: u64| -> u64 { ((ms / 1000 + 2_208_988_800) << 32) | (((ms % 1000) << 32) / 1000 + 1) };
    let m = Msg::ipfix(1, 0, SECS)
        .template(256, &[(150, 4, 0), (151, 4, 0)])
        .template(257, &[(156, 8, 0), (157, 8, 0)])
        .template(258, &[(158, 4, 0), (159, 4, 0)])
        .template(259, &[(152, 8, 0), (161, 4, 0)])
        .data(
            256,
            &[[(SECS - 10).to_be_bytes(), (SECS - 1).to_be_bytes()].concat()],
        )
        .data(
            257,
            &[[ntp(T0 - 1500).to_be_bytes(), ntp(T0 - 250).to_be_bytes()].concat()],
        )
        .data(
            258,
            &[[3_000_000u32.to_be_bytes(), 1_000_000u32.to_be_bytes()].concat()],
        )
        .data(
            259,
            &[[
                (T0 - 700).to_be_bytes().to_vec(),
                200u32.to_be_bytes().to_vec(),
            ]
            .concat()],
        );
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    let times: Vec<(u64, u64)> = out
        .iter()
        .map(|r| (T0 - r.start_ms, T0 - r.end_ms))
        .collect();
    assert_eq!(
        times,
        vec![(10_000, 1_000), (1_500, 250), (3_000, 1_000), (700, 500)]
    );
}

#[test]
fn ipfix_sysuptime_times_use_system_init_time_from_options_data() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let m = Msg::ipfix(1, 0, SECS)
        .options_template(400, &[(149, 4, 0)], &[(160, 8, 0)])
        .data(
            400,
            &[[
                1u32.to_be_bytes().to_vec(),
                (T0 - 100_000).to_be_bytes().to_vec(),
            ]
            .concat()],
        )
        .template(256, &[(22, 4, 0), (21, 4, 0)])
        .data(
            256,
            &[[90_000u32.to_be_bytes(), 99_000u32.to_be_bytes()].concat()],
        );
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    assert_eq!(
        (out.get(0).start_ms, out.get(0).end_ms),
        (T0 - 10_000, T0 - 1_000)
    );
}

// ---------------------------------------------------------------- sampling

#[test]
fn v5_header_sampling_interval_renormalises_packets_and_bytes() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    d.decode(
        exporter(),
        T0,
        &build::v5(2, 0, 100_000, SECS, 0x4000 | 100),
        &mut out,
    )
    .unwrap();
    let r = out.get(1);
    assert_eq!((r.sampling_rate, r.packets, r.bytes), (100, 200, 20_000));
}

#[test]
fn v9_sampling_rate_from_options_data_renormalises_later_flows() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    // Options template: scope System (1, 4 bytes); options SAMPLING_INTERVAL (34), ALGORITHM (35).
    let m = Msg::v9(1, 0, 100_000, SECS)
        .options_template(500, &[(1, 4, 0)], &[(34, 4, 0), (35, 1, 0)])
        .data(500, &[vec![0, 0, 0, 0, 0, 0, 0x03, 0xe8, 2]])
        .template(260, &flow_fields(false))
        .data(260, &[flow_record(0, 90_000, 99_000, false)]);
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    let r = out.get(0);
    assert_eq!(
        (r.sampling_rate, r.packets, r.bytes),
        (1000, 1000, 1_500_000)
    );
    assert_eq!(d.stats().netflow_v9.options_records, 1);
}

#[test]
fn v9_per_sampler_rates_are_joined_through_the_sampler_id() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    // Options: FLOW_SAMPLER_ID (48, 1 byte), FLOW_SAMPLER_MODE (49), FLOW_SAMPLER_RANDOM_INTERVAL (50).
    let m = Msg::v9(1, 0, 100_000, SECS)
        .options_template(500, &[(1, 4, 0)], &[(48, 1, 0), (49, 1, 0), (50, 4, 0)])
        .data(
            500,
            &[
                vec![0, 0, 0, 0, 1, 2, 0, 0, 0, 10],
                vec![0, 0, 0, 0, 2, 2, 0, 0, 0, 50],
            ],
        )
        .template(261, &[(8, 4, 0), (2, 4, 0), (48, 1, 0)])
        .data(
            261,
            &[
                vec![10, 0, 0, 1, 0, 0, 0, 1, 2],
                vec![10, 0, 0, 2, 0, 0, 0, 1, 1],
            ],
        );
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    assert_eq!(out.get(0).sampling_rate, 50);
    assert_eq!(out.get(1).sampling_rate, 10);
    assert_eq!(out.get(1).packets, 10);
}

#[test]
fn ipfix_psamp_interval_and_space_give_the_rate() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    // selectorId (302) scope; samplingPacketInterval (305) = 1, samplingPacketSpace (306) = 99.
    let m = Msg::ipfix(1, 0, SECS)
        .options_template(
            400,
            &[(302, 8, 0)],
            &[(304, 2, 0), (305, 4, 0), (306, 4, 0)],
        )
        .data(
            400,
            &[[
                5u64.to_be_bytes().to_vec(),
                vec![0, 1],
                1u32.to_be_bytes().to_vec(),
                99u32.to_be_bytes().to_vec(),
            ]
            .concat()],
        )
        .template(256, &flow_fields(true))
        .data(256, &[flow_record(0, T0, T0, true)]);
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    assert_eq!((out.get(0).sampling_rate, out.get(0).packets), (100, 100));
}

#[test]
fn per_exporter_sampling_override_wins() {
    let mut over = HashMap::new();
    over.insert(exporter().ip(), 7);
    let mut d = FlowDecoder::new(DecoderConfig {
        sampling_override: over,
        ..DecoderConfig::default()
    });
    let mut out = FlowBatch::new();
    d.decode(
        exporter(),
        T0,
        &build::v5(1, 0, 100_000, SECS, 100),
        &mut out,
    )
    .unwrap();
    let sf = build::sflow_datagram(
        [192, 0, 2, 10],
        0,
        1,
        5,
        &[build::sflow_flow_sample(
            1,
            512,
            3,
            4,
            &[build::sflow_raw_header(
                1500,
                &build::eth_vlan_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 5),
            )],
        )],
    );
    d.decode(exporter(), T0, &sf, &mut out).unwrap();
    assert_eq!((out.get(0).sampling_rate, out.get(0).packets), (7, 7));
    assert_eq!((out.get(1).sampling_rate, out.get(1).bytes), (7, 7 * 1500));
}

// ---------------------------------------------------------------- sFlow

#[test]
fn sflow_flow_sample_parses_raw_header_and_scales_by_its_rate_and_counters_are_returned() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let hdr = build::eth_vlan_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 12345, 443, 42);
    let dg = build::sflow_datagram(
        [192, 0, 2, 10],
        3,
        1,
        5,
        &[
            build::sflow_flow_sample(1, 256, 3, 4, &[build::sflow_raw_header(1000, &hdr)]),
            build::sflow_counter_sample(9, 3, 1_000_000, 2_000_000),
        ],
    );
    let o = d.decode(exporter(), T0, &dg, &mut out).unwrap();
    assert_eq!(
        (o.protocol, o.flows, o.counters.len()),
        (Protocol::Sflow5, 1, 1)
    );
    let r = out.get(0);
    assert_eq!(
        (r.src_port, r.dst_port, r.proto, r.vlan, r.tcp_flags),
        (12345, 443, 6, Some(42), 0x18)
    );
    assert_eq!((r.in_if, r.out_if, r.domain), (3, 4, 3));
    assert_eq!(
        (r.packets, r.bytes, r.sampling_rate, r.start_ms),
        (256, 256_000, 256, T0)
    );
    let c = o.counters[0].interface.unwrap();
    assert_eq!(
        (c.if_index, c.in_octets, c.out_octets, c.speed),
        (3, 1_000_000, 2_000_000, 10_000_000_000)
    );
}

// ---------------------------------------------------------------- sequence accounting

#[test]
fn v5_sequence_counts_lost_flows_across_u32_wrap_around() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    d.decode(
        exporter(),
        T0,
        &build::v5(30, u32::MAX - 9, 100_000, SECS, 0),
        &mut out,
    )
    .unwrap();
    // expected next = MAX - 9 + 30 = 20 (wrapped); 20 is no loss
    let o = d
        .decode(
            exporter(),
            T0,
            &build::v5(30, 20, 100_000, SECS, 0),
            &mut out,
        )
        .unwrap();
    assert_eq!(o.lost, 0);
    // expected 50; 80 means 30 flows lost
    let o = d
        .decode(
            exporter(),
            T0,
            &build::v5(30, 80, 100_000, SECS, 0),
            &mut out,
        )
        .unwrap();
    assert_eq!(o.lost, 30);
    let s = seq(&d, 0x0102, Protocol::NetflowV5);
    assert_eq!((s.lost, s.restarts, s.datagrams), (30, 0, 3));
}

#[test]
fn a_big_backward_sequence_jump_is_an_exporter_restart_not_loss() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let tm = |s| {
        Msg::v9(5, s, 100_000, SECS)
            .template(260, &flow_fields(false))
            .build()
    };
    d.decode(exporter(), T0, &tm(1_000_000), &mut out).unwrap();
    let o = d.decode(exporter(), T0, &tm(0), &mut out).unwrap();
    assert_eq!(o.lost, 0);
    assert_eq!(
        d.decode(exporter(), T0, &tm(3), &mut out).unwrap().lost,
        2,
        "v9 counts packets"
    );
    let s = seq(&d, 5, Protocol::NetflowV9);
    assert_eq!((s.lost, s.restarts), (2, 1));
}

#[test]
fn a_late_datagram_is_reordering_and_takes_back_its_loss() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let tm = |s| Msg::v9(5, s, 100_000, SECS).build();
    d.decode(exporter(), T0, &tm(10), &mut out).unwrap();
    assert_eq!(d.decode(exporter(), T0, &tm(12), &mut out).unwrap().lost, 1);
    assert_eq!(d.decode(exporter(), T0, &tm(11), &mut out).unwrap().lost, 0);
    let s = seq(&d, 5, Protocol::NetflowV9);
    assert_eq!((s.lost, s.reordered, s.restarts), (0, 1, 0));
}

#[test]
fn ipfix_sequence_counts_data_records_and_sflow_counts_datagrams() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let recs: Vec<Vec<u8>> = (0..5).map(|i| flow_record(i, T0, T0, true)).collect();
    let m = |s| {
        Msg::ipfix(3, s, SECS)
            .template(256, &flow_fields(true))
            .data(256, &recs)
            .build()
    };
    d.decode(exporter(), T0, &m(100), &mut out).unwrap();
    assert_eq!(d.decode(exporter(), T0, &m(105), &mut out).unwrap().lost, 0);
    assert_eq!(d.decode(exporter(), T0, &m(117), &mut out).unwrap().lost, 7);
    let sf = |s| build::sflow_datagram([192, 0, 2, 10], 0, s, 5, &[]);
    d.decode(exporter(), T0, &sf(u32::MAX), &mut out).unwrap();
    assert_eq!(d.decode(exporter(), T0, &sf(0), &mut out).unwrap().lost, 0);
    assert_eq!(d.decode(exporter(), T0, &sf(3), &mut out).unwrap().lost, 2);
    assert_eq!(d.stats().lost(), 9);
}

// ---------------------------------------------------------------- time

#[test]
fn v5_uptime_wrap_places_flows_before_the_export_time() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    // Uptime wrapped to 500 ms; the record's first/last were taken before the wrap.
    let mut p = build::v5(1, 0, 500, SECS, 0);
    p[24 + 24..24 + 28].copy_from_slice(&(u32::MAX - 1499).to_be_bytes()); // first = -1500
    p[24 + 28..24 + 32].copy_from_slice(&(u32::MAX - 99).to_be_bytes()); // last = -100
    d.decode(exporter(), T0, &p, &mut out).unwrap();
    let r = out.get(0);
    let export = SECS as u64 * 1000;
    assert_eq!((export - r.start_ms, export - r.end_ms), (2_000, 600));
}

// ---------------------------------------------------------------- limits and errors

#[test]
fn templates_over_the_field_limit_or_the_per_exporter_limit_are_refused_and_counted() {
    let cfg = DecoderConfig {
        max_fields_per_template: 4,
        max_templates_per_exporter: 2,
        ..DecoderConfig::default()
    };
    let mut d = FlowDecoder::new(cfg);
    let mut out = FlowBatch::new();
    let m = Msg::ipfix(1, 0, SECS)
        .template(256, &flow_fields(true))
        .template(257, &[(8, 4, 0)])
        .template(258, &[(8, 4, 0)])
        .template(259, &[(8, 4, 0)]);
    d.decode(exporter(), T0, &m.build(), &mut out).unwrap();
    let drops = &d.stats().drops;
    assert_eq!(
        drops.get("template field limit (template refused)"),
        Some(&1)
    );
    assert_eq!(
        drops.get("template limit per exporter (template refused)"),
        Some(&1)
    );
    assert_eq!(d.stats().templates_active, 2);
}

#[test]
fn errors_say_what_and_where() {
    let mut d = dec();
    let mut out = FlowBatch::new();
    let mut p = build::v5(8, 0, 1, SECS, 0);
    p.truncate(24 + 48 * 7 + 20);
    let e = d.decode(exporter(), T0, &p, &mut out).unwrap_err();
    assert_eq!(
        e,
        WireError::Truncated {
            what: "v5 records",
            need: 24 + 48 * 8,
            have: 24 + 48 * 7 + 20
        }
    );
    assert!(out.is_empty(), "an Err appends nothing");
    assert_eq!(
        d.decode(exporter(), T0, b"<13>hello", &mut out)
            .unwrap_err(),
        WireError::UnknownVersion(0x3c31)
    );
    assert_eq!(d.stats().netflow_v5.errors, 1);
    assert_eq!(d.stats().unknown_version, 1);
    assert!(d.stats().to_string().contains("v5 records"));
}

fn all_kinds() -> Vec<Vec<u8>> {
    let hdr = build::eth_vlan_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 5);
    vec![
        build::v5(3, 0, 100_000, SECS, 10),
        Msg::v9(1, 0, 100_000, SECS)
            .options_template(500, &[(1, 4, 0)], &[(34, 4, 0)])
            .data(500, &[vec![0, 0, 0, 0, 0, 0, 0, 10]])
            .template(260, &flow_fields(false))
            .data(
                260,
                &[flow_record(0, 1, 2, false), flow_record(1, 1, 2, false)],
            )
            .build(),
        Msg::ipfix(1, 0, SECS)
            .template(256, &[(8, 4, 0), (82, 0xffff, 0), (1, 8, 29305)])
            .data(
                256,
                &[[
                    vec![1, 2, 3, 4, 255, 0, 3, 1, 2, 3],
                    5u64.to_be_bytes().to_vec(),
                ]
                .concat()],
            )
            .template(257, &flow_fields(true))
            .data(257, &[flow_record(0, T0, T0, true)])
            .build(),
        build::sflow_datagram(
            [192, 0, 2, 10],
            0,
            1,
            5,
            &[
                build::sflow_flow_sample(1, 256, 3, 4, &[build::sflow_raw_header(1000, &hdr)]),
                build::sflow_counter_sample(9, 3, 1, 2),
            ],
        ),
    ]
}

#[test]
fn truncated_input_at_every_length_of_a_valid_packet_never_panics() {
    let mut corpus = all_kinds();
    if let Some(dir) = common::shared_dir() {
        for f in common::captures(&dir.join("corpora/flows")) {
            let bytes = std::fs::read(&f).unwrap();
            let Ok(cap) = pharos_wire::pcap::Capture::new(&bytes) else {
                continue;
            };
            corpus.extend(cap.flatten().map(|d| d.payload.to_vec()).take(4));
            // and the capture file itself, for the pcap reader
            corpus.push(bytes);
        }
    }
    let mut total = 0;
    for p in &corpus {
        let mut d = dec();
        let mut out = FlowBatch::new();
        // Learn templates from the whole packet first, so that truncated data sets hit the plans.
        let _ = d.decode(exporter(), T0, p, &mut out);
        for n in 0..p.len() {
            let _ = d.decode(exporter(), T0, &p[..n], &mut out);
            if let Ok(c) = pharos_wire::pcap::Capture::new(&p[..n]) {
                for _ in c.take(1000) {}
            }
            total += 1;
        }
    }
    assert!(total >= 500, "only {total} prefixes tried");
}

#[test]
fn flipping_any_byte_of_a_valid_packet_never_panics() {
    for p in all_kinds() {
        let mut d = dec();
        let mut out = FlowBatch::new();
        for i in 0..p.len() {
            for v in [0u8, 0xff, p[i].wrapping_add(1)] {
                let mut q = p.clone();
                q[i] = v;
                let _ = d.decode(exporter(), T0, &q, &mut out);
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn random_datagrams_never_panic(kind in 0usize..4, bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let mut b = bytes;
        let head: &[u8] = match kind { 0 => &[0, 5], 1 => &[0, 9], 2 => &[0, 10], _ => &[0, 0, 0, 5] };
        let n = head.len().min(b.len());
        b[..n].copy_from_slice(&head[..n]);
        let mut d = dec();
        let mut out = FlowBatch::new();
        let _ = d.decode(exporter(), T0, &b, &mut out);
        let _ = d.decode(exporter(), T0, &b, &mut out);
    }
}
