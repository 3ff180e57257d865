//! The export time and observation domain a decoded datagram reports (`DecodeOutcome::export_ms`,
//! `domain`): what collectors compare with the receive time to estimate an exporter's clock offset.

mod common;

use std::net::SocketAddr;

use common::build::{self, Msg, flow_fields, flow_record};
use pharos_wire::{DecoderConfig, FlowBatch, FlowDecoder};

const SECS: u32 = 1_700_000_000;
/// A receive time a year after the exporter's clock: what the exporter says is reported as it is.
const RECEIVED_MS: u64 = (SECS as u64 + 31_536_000) * 1000;

fn exporter() -> SocketAddr {
    "192.0.2.10:40000".parse().unwrap()
}

#[test]
fn every_protocol_with_an_export_time_reports_it_with_its_domain() {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = FlowBatch::new();

    // v5: unix_secs and unix_nsecs; domain engine_type << 8 | engine_id (1, 2 in the builder)
    let mut v5 = build::v5(3, 0, 3_600_000, SECS, 0);
    v5[12..16].copy_from_slice(&250_000_000u32.to_be_bytes());
    let o = d.decode(exporter(), RECEIVED_MS, &v5, &mut out).unwrap();
    assert_eq!(o.export_ms, Some(SECS as u64 * 1000 + 250));
    assert_eq!(o.domain, (1 << 8) | 2);
    // the flow times are in the exporter's clock: correction is the collector's business
    assert_eq!(out.end_ms[0], SECS as u64 * 1000 + 250 - 10);

    // v9: unix_secs; domain the source id (a template-only datagram reports it too)
    let v9 = Msg::v9(77, 0, 3_600_000, SECS + 5)
        .template(256, &flow_fields(false))
        .build();
    let o = d.decode(exporter(), RECEIVED_MS, &v9, &mut out).unwrap();
    assert_eq!(
        (o.export_ms, o.domain),
        (Some((SECS as u64 + 5) * 1000), 77)
    );

    // IPFIX: exportTime; domain the observation domain
    let t = SECS as u64 * 1000;
    let ipfix = Msg::ipfix(9, 0, SECS + 7)
        .template(300, &flow_fields(true))
        .data(300, &[flow_record(0, t, t + 500, true)])
        .build();
    let o = d.decode(exporter(), RECEIVED_MS, &ipfix, &mut out).unwrap();
    assert_eq!(
        (o.export_ms, o.domain, o.flows),
        (Some((SECS as u64 + 7) * 1000), 9, 1)
    );

    // sFlow carries no export time (its flows are stamped with the receive time)
    let sflow = build::sflow_datagram([192, 0, 2, 10], 4, 0, 1000, &[]);
    let o = d.decode(exporter(), RECEIVED_MS, &sflow, &mut out).unwrap();
    assert_eq!((o.export_ms, o.domain), (None, 4));
}
