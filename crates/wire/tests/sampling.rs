//! Sampling from options data (NetFlow v9 and IPFIX, RFC 3954 / RFC 5476, 5477, 7014): each
//! options form on generated captures, the decoded `sampling_rate` and renormalised counters
//! checked against tshark's dissection of the same capture (the oracle for every field value),
//! plus the forms that state no packet rate, the bounds of the sampler tables, and hostile
//! options data.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::process::Command;

use common::build::{Msg, flow_fields, flow_record, udp_pcap};
use common::json::{self, J};
use common::{have_tshark, scratch_dir};
use pharos_wire::pcap::Capture;
use pharos_wire::{DecoderConfig, FlowBatch, FlowDecoder};

const SECS: u32 = 1_700_000_000;
const T0: u64 = SECS as u64 * 1000;
/// A port tshark does not dissect as flow export unless told (`-d udp.port==P,cflow`).
const PORT: u16 = 20555;

fn exporter() -> SocketAddrV4 {
    "192.0.2.20:50000".parse().unwrap()
}

fn collector() -> SocketAddrV4 {
    SocketAddrV4::new("192.0.2.1".parse().unwrap(), PORT)
}

/// IPFIX variable-length string field value (short form).
fn varstr(s: &str) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// The IOS XR export of issue 13: an options template scoped by `selectorId` (302) with
/// `samplingPacketInterval` (305), `selectorAlgorithm` (304), `samplingSize` (309),
/// `samplingPopulation` (310) and `selectorName` (335, variable length); its data says random
/// n-out-of-N (3), interval 1, size 1, population `pop` for each `(selector, pop)`; then data
/// records carrying `selectorId`, one per entry of `data_selectors`.
fn iosxr_ipfix(selectors: &[(u64, u32)], data_selectors: &[u64]) -> Vec<Vec<u8>> {
    let opts = Msg::ipfix(1, 0, SECS)
        .options_template(
            512,
            &[(302, 8, 0)],
            &[
                (305, 4, 0),
                (304, 2, 0),
                (309, 4, 0),
                (310, 4, 0),
                (335, 0xffff, 0),
            ],
        )
        .data(
            512,
            &selectors
                .iter()
                .map(|&(id, pop)| {
                    [
                        id.to_be_bytes().to_vec(),
                        1u32.to_be_bytes().to_vec(),
                        3u16.to_be_bytes().to_vec(),
                        1u32.to_be_bytes().to_vec(),
                        pop.to_be_bytes().to_vec(),
                        varstr(&format!("NF-SAMPLER-{id}")),
                    ]
                    .concat()
                })
                .collect::<Vec<_>>(),
        );
    let mut fields = flow_fields(true);
    fields.push((302, 8, 0));
    let data = Msg::ipfix(1, selectors.len() as u32, SECS)
        .template(256, &fields)
        .data(
            256,
            &data_selectors
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut r = flow_record(i as u32, T0 - 1000, T0, true);
                    r.extend_from_slice(&id.to_be_bytes());
                    r
                })
                .collect::<Vec<_>>(),
        );
    vec![opts.build(), data.build()]
}

/// IPFIX options scoped by `selectorId` with `selectorAlgorithm` and the given parameter
/// fields/values, then `n` data records without a selector id (the domain's latest rate).
fn psamp_ipfix(algorithm: u16, params: &[(u16, u16, u32)], values: &[u8], n: u32) -> Vec<Vec<u8>> {
    let mut opts_fields = vec![(304, 2, 0)];
    opts_fields.extend_from_slice(params);
    let opts = Msg::ipfix(3, 0, SECS)
        .options_template(513, &[(302, 8, 0)], &opts_fields)
        .data(
            513,
            &[[
                7u64.to_be_bytes().to_vec(),
                algorithm.to_be_bytes().to_vec(),
                values.to_vec(),
            ]
            .concat()],
        );
    let data = Msg::ipfix(3, 1, SECS)
        .template(256, &flow_fields(true))
        .data(
            256,
            &(0..n)
                .map(|i| flow_record(i, T0 - 1000, T0, true))
                .collect::<Vec<_>>(),
        );
    vec![opts.build(), data.build()]
}

/// NetFlow v9 options scoped by System (1) with FLOW_SAMPLER_ID (48), FLOW_SAMPLER_MODE (49)
/// and FLOW_SAMPLER_RANDOM_INTERVAL (50) for each `(sampler, interval)`; then data records
/// carrying FLOW_SAMPLER_ID.
fn v9_samplers(samplers: &[(u8, u32)], data_samplers: &[u8]) -> Vec<Vec<u8>> {
    let opts = Msg::v9(5, 0, 100_000, SECS)
        .options_template(300, &[(1, 4, 0)], &[(48, 1, 0), (49, 1, 0), (50, 4, 0)])
        .data(
            300,
            &samplers
                .iter()
                .map(|&(id, interval)| {
                    [vec![0, 0, 0, 0, id, 2], interval.to_be_bytes().to_vec()].concat()
                })
                .collect::<Vec<_>>(),
        );
    let mut fields = flow_fields(false);
    fields.push((48, 1, 0));
    let data = Msg::v9(5, 1, 100_000, SECS).template(260, &fields).data(
        260,
        &data_samplers
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let mut r = flow_record(i as u32, 90_000, 99_000, false);
                r.push(id);
                r
            })
            .collect::<Vec<_>>(),
    );
    vec![opts.build(), data.build()]
}

/// NetFlow v9 options scoped by System with SAMPLING_INTERVAL (34) and SAMPLING_ALGORITHM
/// (35); data records name no sampler.
fn v9_interval(interval: u32, n: u32) -> Vec<Vec<u8>> {
    let opts = Msg::v9(6, 0, 100_000, SECS)
        .options_template(301, &[(1, 4, 0)], &[(34, 4, 0), (35, 1, 0)])
        .data(
            301,
            &[[vec![0, 0, 0, 0], interval.to_be_bytes().to_vec(), vec![2]].concat()],
        );
    let data = Msg::v9(6, 1, 100_000, SECS)
        .template(260, &flow_fields(false))
        .data(
            260,
            &(0..n)
                .map(|i| flow_record(i, 90_000, 99_000, false))
                .collect::<Vec<_>>(),
        );
    vec![opts.build(), data.build()]
}

/// Decodes `datagrams` as `pharos decode` does: written to a capture, read back, one decoder.
fn decode(datagrams: &[Vec<u8>]) -> (FlowDecoder, FlowBatch, Vec<u8>) {
    let pcap = udp_pcap(
        &datagrams
            .iter()
            .enumerate()
            .map(|(i, d)| (T0 + i as u64, exporter(), collector(), d.clone()))
            .collect::<Vec<_>>(),
    );
    let mut dec = FlowDecoder::new(DecoderConfig::default());
    let mut out = FlowBatch::new();
    for d in Capture::new(&pcap).unwrap() {
        let d = d.unwrap();
        dec.decode(d.src, d.timestamp_ms, d.payload, &mut out)
            .unwrap();
    }
    (dec, out, pcap)
}

/// What tshark shows of one record: its `cflow.*` fields (first value of each name).
type Rec = HashMap<String, String>;

/// Collects the records under a cflow layer: every object holding `cflow.*` leaf values that
/// is a record of a data set (options data or flow data).
fn records(o: &J, out: &mut Vec<Rec>) {
    let leaves: Rec = o
        .members()
        .iter()
        .filter(|(k, v)| k.starts_with("cflow.") && v.text().is_some())
        .map(|(k, v)| (k.clone(), v.text().unwrap().to_string()))
        .collect();
    let is_record = [
        "cflow.selector_id",
        "cflow.sampler_id",
        "cflow.sampling_interval",
        "cflow.srcaddr",
    ]
    .iter()
    .any(|k| leaves.contains_key(*k));
    if is_record && !leaves.contains_key("cflow.template_id") {
        out.push(leaves);
        return;
    }
    for (_, v) in o.members() {
        records(v, out);
    }
    for v in o.elements() {
        records(v, out);
    }
}

/// tshark's records of the capture, options and flow data alike, in order.
fn tshark_records(pcap: &[u8], tag: &str) -> Vec<Rec> {
    let dir = scratch_dir(&format!("sampling-{tag}"));
    let f = dir.join(format!("{tag}.pcap"));
    std::fs::write(&f, pcap).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&f)
        .args(["-T", "json", "-d", &format!("udp.port=={PORT},cflow")])
        .output()
        .expect("tshark");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json::parse(&String::from_utf8_lossy(&out.stdout)).expect("tshark json");
    let mut recs = Vec::new();
    for pkt in doc.elements() {
        if let Some(l) = pkt
            .get("_source")
            .and_then(|s| s.get("layers"))
            .and_then(|l| l.get("cflow"))
        {
            records(l, &mut recs);
        }
    }
    recs
}

fn n(r: &Rec, k: &str) -> Option<u64> {
    let s = r.get(k)?;
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The rate an options record states, computed from tshark's field values by the rules of
/// RFC 5476 §6.5.2 / RFC 7014 (independently of the decoder): selectorAlgorithm 1 is
/// interval/space, 3 is size/population, 4 is probability; v9 and legacy IPFIX state the
/// interval (34 / 50) directly.
fn oracle_rate(r: &Rec) -> Option<u64> {
    if let Some(i) = n(r, "cflow.sampling_interval").or(n(r, "cflow.sampler_random_interval")) {
        return Some(i);
    }
    match n(r, "cflow.selector_algorithm")? {
        1 => {
            let i = n(r, "cflow.sampling_packet_interval")?;
            let s = n(r, "cflow.sampling_packet_space")?;
            Some((i + s) / i)
        }
        3 => Some(n(r, "cflow.sampling_population")? / n(r, "cflow.sampling_size")?),
        4 => {
            let p: f64 = r.get("cflow.sampling_probability")?.parse().ok()?;
            Some((1.0 / p).round() as u64)
        }
        _ => None,
    }
}

/// Holds the decoded flows to tshark's dissection: every options record's rate goes into a
/// table per sampler / selector id (and is the domain's latest rate); every flow record gets
/// the rate of the id it names, else the latest rate; our flows must carry that rate and the
/// raw counters times it. Returns the rates seen, in flow order.
fn agree_with_tshark(tag: &str, datagrams: &[Vec<u8>]) -> Vec<u32> {
    let (_, out, pcap) = decode(datagrams);
    if !have_tshark() {
        pharos_model::conformance::skip(&format!("{tag}: tshark not installed"));
        return out.sampling_rate.clone();
    }
    let recs = tshark_records(&pcap, tag);
    let mut table: HashMap<u64, u64> = HashMap::new();
    let mut latest: Option<u64> = None;
    let mut i = 0;
    for r in &recs {
        let id = n(r, "cflow.selector_id").or(n(r, "cflow.sampler_id"));
        if !r.contains_key("cflow.srcaddr") {
            let rate = oracle_rate(r);
            if let (Some(id), Some(rate)) = (id, rate) {
                table.insert(id, rate);
            }
            latest = rate.or(latest);
            continue;
        }
        let rate = id
            .and_then(|id| table.get(&id).copied())
            .or(latest)
            .unwrap_or(1);
        assert!(
            i < out.len(),
            "{tag}: tshark shows more flows than we decoded"
        );
        let f = out.get(i);
        let (pk, by) = (
            n(r, "cflow.packets64").or(n(r, "cflow.packets")).unwrap(),
            n(r, "cflow.octets64").or(n(r, "cflow.octets")).unwrap(),
        );
        assert_eq!(
            (f.sampling_rate as u64, f.packets, f.bytes),
            (rate, pk * rate, by * rate),
            "{tag}: flow {i} (tshark: {r:?})"
        );
        i += 1;
    }
    assert_eq!(i, out.len(), "{tag}: flows decoded vs dissected");
    assert!(i > 0, "{tag}: tshark dissected no flow");
    out.sampling_rate.clone()
}

#[test]
fn ipfix_random_n_out_of_n_selector_from_options_data_gives_rate_256() {
    // Selector 1: 1 out of 256 (the IOS XR case); selector 2: 1 out of 1000. Data names 1, 1,
    // 2, then an unknown selector 9 (the domain's latest rate: selector 2's).
    let rates = agree_with_tshark("nofn", &iosxr_ipfix(&[(1, 256), (2, 1000)], &[1, 1, 2, 9]));
    assert_eq!(rates, [256, 256, 1000, 1000]);
    let (d, out, _) = decode(&iosxr_ipfix(&[(1, 256)], &[1]));
    let f = out.get(0);
    assert_eq!(
        (f.sampling_rate, f.packets, f.bytes),
        (256, 256, 1500 * 256)
    );
    assert_eq!(d.stats().ipfix.options_records, 1);
    assert_eq!(
        d.stats().unmapped_fields,
        0,
        "every sampling element is read"
    );
}

#[test]
fn ipfix_uniform_probabilistic_selector_gives_the_inverse_probability() {
    let rates = agree_with_tshark(
        "prob",
        &psamp_ipfix(4, &[(311, 8, 0)], &0.01f64.to_be_bytes(), 2),
    );
    assert_eq!(rates, [100, 100]);
}

#[test]
fn ipfix_systematic_count_based_selector_gives_interval_plus_space_over_interval() {
    let values = [1u32.to_be_bytes(), 49u32.to_be_bytes()].concat();
    let rates = agree_with_tshark(
        "count",
        &psamp_ipfix(1, &[(305, 4, 0), (306, 4, 0)], &values, 2),
    );
    assert_eq!(rates, [50, 50]);
}

#[test]
fn v9_sampler_table_from_options_data_is_joined_through_the_records_sampler_id() {
    let rates = agree_with_tshark("v9sampler", &v9_samplers(&[(1, 256), (2, 100)], &[2, 1, 1]));
    assert_eq!(rates, [100, 256, 256]);
}

#[test]
fn v9_sampling_interval_options_apply_to_the_domains_flows() {
    let rates = agree_with_tshark("v9interval", &v9_interval(256, 3));
    assert_eq!(rates, [256, 256, 256]);
}

/// Decodes `datagrams` with `dec`; returns the rates of the flows they gave.
fn rates_with(dec: &mut FlowDecoder, datagrams: &[Vec<u8>]) -> Vec<u32> {
    let mut out = FlowBatch::new();
    for d in datagrams {
        dec.decode(SocketAddr::V4(exporter()), T0, d, &mut out)
            .unwrap();
    }
    out.sampling_rate.clone()
}

#[test]
fn forms_without_a_packet_rate_leave_the_latest_rate() {
    let mut dec = FlowDecoder::new(DecoderConfig::default());
    let nofn = |size: u32, pop: u32| [size.to_be_bytes(), pop.to_be_bytes()].concat();
    let size_pop = [(309, 4, 0), (310, 4, 0)];
    assert_eq!(
        rates_with(&mut dec, &psamp_ipfix(3, &size_pop, &nofn(1, 64), 1)),
        [64]
    );
    // Time-based (algorithm 2, samplingTimeInterval/Space 307/308) and an interval without its
    // space state no packet rate: the flows keep the domain's latest rate.
    let time = [1000u32.to_be_bytes(), 99_000u32.to_be_bytes()].concat();
    let time_based = psamp_ipfix(2, &[(307, 4, 0), (308, 4, 0)], &time, 1);
    assert_eq!(rates_with(&mut dec, &time_based), [64]);
    let interval_only = psamp_ipfix(1, &[(305, 4, 0)], &1u32.to_be_bytes(), 1);
    assert_eq!(rates_with(&mut dec, &interval_only), [64]);
    // Filtering (algorithm 5, property match) selects no share of packets either.
    assert_eq!(
        rates_with(&mut dec, &psamp_ipfix(5, &size_pop, &nofn(1, 8), 1)),
        [64]
    );
    // Degenerate values never give a rate: size 0, population below size, probability 0,
    // above 1 or NaN.
    for (alg, params, values) in [
        (3, &size_pop[..], nofn(0, 64)),
        (3, &size_pop[..], nofn(65, 64)),
        (4, &[(311, 8, 0)][..], 0f64.to_be_bytes().to_vec()),
        (4, &[(311, 8, 0)][..], 1.5f64.to_be_bytes().to_vec()),
        (4, &[(311, 8, 0)][..], f64::NAN.to_be_bytes().to_vec()),
    ] {
        let got = rates_with(&mut dec, &psamp_ipfix(alg, params, &values, 1));
        assert_eq!(got, [64], "{params:?} {values:?}");
    }
    assert_eq!(
        dec.stats().unmapped_fields,
        0,
        "every sampling element is read"
    );
    // An algorithm number outside the registry, with n-out-of-N parameters: the parameters
    // are used (exporters differ in how they fill selectorAlgorithm). Size 3 out of 100
    // rounds to 33.
    assert_eq!(
        rates_with(&mut dec, &psamp_ipfix(0, &size_pop, &nofn(3, 100), 1)),
        [33]
    );
}

#[test]
fn the_sampling_override_wins_over_options_data() {
    let mut over = HashMap::new();
    over.insert(SocketAddr::V4(exporter()).ip(), 10);
    let mut dec = FlowDecoder::new(DecoderConfig {
        sampling_override: over,
        ..DecoderConfig::default()
    });
    let mut out = FlowBatch::new();
    for d in iosxr_ipfix(&[(1, 256)], &[1]) {
        dec.decode(SocketAddr::V4(exporter()), T0, &d, &mut out)
            .unwrap();
    }
    assert_eq!((out.get(0).sampling_rate, out.get(0).packets), (10, 10));
}

#[test]
fn selector_tables_are_bounded_per_domain_and_separate_per_exporter_and_domain() {
    let mut dec = FlowDecoder::new(DecoderConfig {
        max_samplers_per_domain: 2,
        ..DecoderConfig::default()
    });
    let mut out = FlowBatch::new();
    let a = SocketAddr::V4(exporter());
    // Three selectors in one domain: the third does not fit its table, so a record naming it
    // gets the domain's latest rate (the third's own, 300, as it came last).
    for d in iosxr_ipfix(&[(1, 100), (2, 200), (3, 300)], &[1, 2, 3]) {
        dec.decode(a, T0, &d, &mut out).unwrap();
    }
    assert_eq!(out.sampling_rate, [100, 200, 300]);
    assert_eq!(
        dec.stats()
            .drops
            .get("sampler table full (sampler ignored)"),
        Some(&1)
    );
    // A fourth selector later: still refused; its records get the latest rate (400).
    out.clear();
    for d in iosxr_ipfix(&[(4, 400)], &[1, 4]) {
        dec.decode(a, T0, &d, &mut out).unwrap();
    }
    assert_eq!(out.sampling_rate, [100, 400]);
    // Another exporter with the same domain and selector ids has its own table.
    out.clear();
    let b: SocketAddr = "192.0.2.21:50000".parse().unwrap();
    for d in iosxr_ipfix(&[(1, 7)], &[1, 2]) {
        dec.decode(b, T0, &d, &mut out).unwrap();
    }
    assert_eq!(out.sampling_rate, [7, 7]);
}

proptest::proptest! {
    /// Options data of any content under sampling options templates (every sampling element,
    /// fixed and variable lengths) never panics, and any rate it yields is at least 1.
    #[test]
    fn hostile_options_data_never_panics(
        lens in proptest::collection::vec(proptest::prop_oneof![
            proptest::prelude::Just(0u16), 1u16..=9, proptest::prelude::Just(0xffffu16)
        ], 8),
        record in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        v9 in proptest::prelude::any::<bool>(),
    ) {
        let ids = [302u16, 304, 305, 306, 309, 310, 311, 34];
        let mut fields: Vec<(u16, u16, u32)> = ids.iter().zip(&lens).map(|(&id, &l)| (id, l, 0)).collect();
        let data_fields = [flow_fields(!v9), vec![(302, 8, 0)]].concat();
        let mut recs = vec![flow_record(0, 1, 2, !v9)];
        recs[0].extend_from_slice(&record.get(..8).map(|r| r.to_vec()).unwrap_or(vec![0; 8]));
        let m = if v9 {
            fields.retain(|f| f.1 != 0xffff);
            Msg::v9(1, 0, 100_000, SECS).options_template(400, &[(1, 4, 0)], &fields)
        } else {
            let (scope, rest) = fields.split_at(1);
            Msg::ipfix(1, 0, SECS).options_template(400, scope, rest)
        };
        let m = m.data(400, std::slice::from_ref(&record)).template(256, &data_fields).data(256, &recs);
        let mut dec = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::new();
        let _ = dec.decode(SocketAddr::V4(exporter()), T0, &m.build(), &mut out);
        for r in &out.sampling_rate {
            proptest::prop_assert!(*r >= 1);
        }
    }
}

#[test]
fn selector_tables_are_forgotten_with_the_exporters_last_template() {
    let mut dec = FlowDecoder::new(DecoderConfig::default());
    let a = SocketAddr::V4(exporter());
    let mut out = FlowBatch::new();
    let dgs = iosxr_ipfix(&[(1, 256)], &[1]);
    for d in &dgs {
        dec.decode(a, T0, d, &mut out).unwrap();
    }
    assert_eq!(out.sampling_rate, [256]);
    // Half an hour later every template has expired; the exporter comes back with its data
    // template only (no options data yet): nothing is known of selector 1 any more.
    let later = T0 + 1801 * 1000;
    dec.expire(later);
    out.clear();
    dec.decode(a, later, &dgs[1], &mut out).unwrap();
    assert_eq!(out.sampling_rate, [1]);
}

/// One datagram per options form (options template, options data, data template and data in
/// one message, as the fuzz targets feed one input) and its fuzz corpus file.
fn fuzz_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let one = |dgs: Vec<Vec<u8>>, ipfix: bool| -> Vec<u8> {
        // Concatenate the sets of both messages under the first header.
        let hl = if ipfix { 16 } else { 20 };
        let mut m = dgs[0].clone();
        m.extend_from_slice(&dgs[1][hl..]);
        if ipfix {
            let len = m.len() as u16;
            m[2..4].copy_from_slice(&len.to_be_bytes());
        }
        m
    };
    let nofn = [1u32.to_be_bytes(), 256u32.to_be_bytes()].concat();
    let count = [1u32.to_be_bytes(), 49u32.to_be_bytes()].concat();
    vec![
        (
            "ipfix/seed-sampling-iosxr-n-out-of-n",
            one(iosxr_ipfix(&[(1, 256), (2, 1000)], &[1, 2, 9]), true),
        ),
        (
            "ipfix/seed-sampling-n-out-of-n",
            one(psamp_ipfix(3, &[(309, 4, 0), (310, 4, 0)], &nofn, 2), true),
        ),
        (
            "ipfix/seed-sampling-probability",
            one(
                psamp_ipfix(4, &[(311, 8, 0)], &0.01f64.to_be_bytes(), 2),
                true,
            ),
        ),
        (
            "ipfix/seed-sampling-count",
            one(psamp_ipfix(1, &[(305, 4, 0), (306, 4, 0)], &count, 2), true),
        ),
        (
            "netflow_v9/seed-sampling-sampler-id",
            one(v9_samplers(&[(1, 256), (2, 100)], &[2, 1]), false),
        ),
        (
            "netflow_v9/seed-sampling-interval",
            one(v9_interval(256, 2), false),
        ),
    ]
}

/// The fuzz corpora (`fuzz/corpus/ipfix`, `fuzz/corpus/netflow_v9`) hold each options form, so
/// fuzzing starts from inputs that reach the sampler tables. `PHAROS_BLESS=1` rewrites them.
#[test]
fn fuzz_corpora_hold_each_options_form() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, bytes) in fuzz_seeds() {
        // Each seed decodes alone to rated flows.
        let mut dec = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::new();
        dec.decode(SocketAddr::V4(exporter()), T0, &bytes, &mut out)
            .unwrap();
        assert!(
            !out.is_empty() && out.sampling_rate.iter().all(|&r| r > 1),
            "{name}: {:?}",
            out.sampling_rate
        );
        let path = corpus.join(name);
        if std::env::var_os("PHAROS_BLESS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).ok().as_deref(),
            Some(&bytes[..]),
            "{} differs from the generated seed (PHAROS_BLESS=1 rewrites it)",
            path.display()
        );
    }
}

/// Every prefix of each options form, and each with any one byte set to 0, 0xff or one more,
/// decodes without a panic (the decoder learns the whole datagram's templates first, so the
/// damaged options and data records reach the plans), and every rate is at least 1.
#[test]
fn damaged_options_forms_never_panic() {
    for (name, seed) in fuzz_seeds() {
        let mut dec = FlowDecoder::new(DecoderConfig::default());
        let mut out = FlowBatch::new();
        let a = SocketAddr::V4(exporter());
        dec.decode(a, T0, &seed, &mut out).unwrap();
        for n in 0..seed.len() {
            let _ = dec.decode(a, T0, &seed[..n], &mut out);
        }
        for i in 0..seed.len() {
            for v in [0u8, 0xff, seed[i].wrapping_add(1)] {
                let mut q = seed.clone();
                q[i] = v;
                let _ = dec.decode(a, T0, &q, &mut out);
            }
        }
        assert!(
            out.sampling_rate.iter().all(|&r| r >= 1),
            "{name}: a rate of 0"
        );
    }
}
