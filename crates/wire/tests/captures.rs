//! Every capture of the shared corpora decodes; our flows agree with tshark's dissection and with
//! tcpdump's expected sFlow output.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::json::{self, J};
use common::{Decoded, decode_files, flows_dir, groups, have_tshark, is_flow_capture, scratch_dir};
use pharos_wire::{DecoderConfig, FlowBatch, Protocol};

fn name(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join("+")
}

#[test]
fn every_flow_capture_decodes_without_error_and_others_without_panic() {
    let Some(dir) = flows_dir("every_flow_capture_decodes_without_error") else {
        return;
    };
    let mut flow_groups = 0;
    for g in groups(&dir) {
        let (dec, batch, decoded, pstats) = decode_files(&g, DecoderConfig::default());
        let errors: Vec<_> = decoded
            .iter()
            .filter_map(|d| d.result.as_ref().err().map(|e| (d.dst.port(), e)))
            .collect();
        println!(
            "{}: {} udp datagrams ({} packets, {} non-udp, {} fragments, {} unsupported link), {} flows, {} errors, drops {:?}",
            name(&g),
            pstats.udp,
            pstats.packets,
            pstats.non_udp,
            pstats.fragments,
            pstats.unsupported_link,
            batch.len(),
            errors.len(),
            dec.stats().drops
        );
        if !g.iter().all(|f| is_flow_capture(f)) {
            continue; // syslog, raw packets...: only "no panic" is asked
        }
        flow_groups += 1;
        let malformed = g.iter().any(|f| f.to_string_lossy().contains("segv"));
        if malformed {
            // tcpdump's "sFlowv5 [length 8 < 28] (invalid)": refused with an explained, counted drop.
            assert_eq!(
                errors.len(),
                decoded.len(),
                "{}: every datagram is refused",
                name(&g)
            );
            assert!(
                dec.stats().dropped() >= 1,
                "{}: the refusal is counted",
                name(&g)
            );
            for (_, e) in &errors {
                println!("  refused as expected: {e}");
            }
            println!("{}", dec.stats());
            continue;
        }
        assert!(errors.is_empty(), "{}: {errors:?}", name(&g));
        assert!(
            !batch.is_empty() || decoded.iter().any(|d| d.result.is_ok()),
            "{}: nothing decoded",
            name(&g)
        );
    }
    assert!(
        flow_groups >= 20,
        "expected the akvorado, tcpdump and ndpi flow captures, found {flow_groups}"
    );
}

/// One flow as tshark shows it (raw, before sampling renormalisation).
#[derive(Debug, Clone, PartialEq)]
struct Shark {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    packets: Option<u64>,
    bytes: Option<u64>,
    start_ms: Option<u64>,
    end_ms: Option<u64>,
    /// sFlow: packets and bytes are already multiplied by this rate.
    sflow: bool,
    /// A data-link section tshark could not dissect down to IP: compared on counts only.
    datalink: bool,
}

fn num(s: Option<&str>) -> Option<u64> {
    let s = s?;
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// "944948.659000000" (tshark shows uptime ms as seconds) -> 944948659.
fn dec_ms(s: Option<&str>) -> Option<u64> {
    let s = s?;
    let (i, f) = s.split_once('.').unwrap_or((s, "0"));
    let f3: String = f.chars().chain("000".chars()).take(3).collect();
    Some(i.parse::<u64>().ok()? * 1000 + f3.parse::<u64>().ok()?)
}

/// "Oct  5, 2009 06:06:07.492059999 UTC" -> Unix ms.
fn abs_ms(s: Option<&str>) -> Option<u64> {
    let s = s?;
    let mut it = s.split_whitespace();
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == it.next().unwrap_or(""))? as i64
        + 1;
    let day: i64 = it.next()?.trim_end_matches(',').parse().ok()?;
    let year: i64 = it.next()?.parse().ok()?;
    let hms = it.next()?;
    let (hms, frac) = hms.split_once('.').unwrap_or((hms, "0"));
    let mut p = hms.split(':').map(|x| x.parse::<i64>().unwrap_or(0));
    let (h, m, sec) = (p.next()?, p.next()?, p.next()?);
    // days from civil (Howard Hinnant)
    let y = if mon <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mon + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let f3: String = frac.chars().chain("000".chars()).take(3).collect();
    Some(((days * 86400 + h * 3600 + m * 60 + sec) * 1000 + f3.parse::<i64>().ok()?) as u64)
}

fn ip(s: Option<&str>) -> Option<IpAddr> {
    s?.parse().ok()
}

/// Applies dissected layers (eth, ip, ipv6, tcp, udp...) in order: the innermost IP header wins.
fn walk_layers<'a>(layers: impl Iterator<Item = (&'a String, &'a J)>, f: &mut Shark) {
    for (lk, l) in layers {
        match lk.as_str() {
            "ip" => {
                f.src = ip(l.str_of("ip.src")).unwrap_or(f.src);
                f.dst = ip(l.str_of("ip.dst")).unwrap_or(f.dst);
                f.proto = num(l.str_of("ip.proto")).unwrap_or(0) as u8;
                (f.sport, f.dport) = (0, 0);
            }
            "ipv6" => {
                f.src = ip(l.str_of("ipv6.src")).unwrap_or(f.src);
                f.dst = ip(l.str_of("ipv6.dst")).unwrap_or(f.dst);
                f.proto = num(l.str_of("ipv6.nxt")).unwrap_or(0) as u8;
                (f.sport, f.dport) = (0, 0);
            }
            "tcp" | "udp" => {
                f.sport = num(l.str_of(&format!("{lk}.srcport"))).unwrap_or(0) as u16;
                f.dport = num(l.str_of(&format!("{lk}.dstport"))).unwrap_or(0) as u16;
            }
            _ => {}
        }
    }
}

/// Flow objects (with a source address or a dissected data-link section) under a cflow layer,
/// in order.
fn cflow_flows(o: &J, export_ms: u64, uptime: Option<u64>, out: &mut Vec<Shark>) {
    if let Some(tree) = o.get("cflow.data_link_frame_section_tree") {
        let mut f = Shark {
            src: IpAddr::from([0, 0, 0, 0]),
            dst: IpAddr::from([0, 0, 0, 0]),
            sport: 0,
            dport: 0,
            proto: 0,
            packets: Some(1),
            bytes: num(o.str_of("cflow.data_link_frame_size")),
            start_ms: None,
            end_ms: None,
            sflow: false,
            datalink: true,
        };
        walk_layers(tree.members().iter().map(|(k, v)| (k, v)), &mut f);
        out.push(f);
        return;
    }
    if let (Some(src), Some(dst)) = (
        ip(o.str_of("cflow.srcaddr")).or(ip(o.str_of("cflow.srcaddrv6"))),
        ip(o.str_of("cflow.dstaddr")).or(ip(o.str_of("cflow.dstaddrv6"))),
    ) {
        let td = o.get("cflow.timedelta_tree");
        let (mut start, mut end) = (None, None);
        if let Some(td) = td {
            if let (Some(up), Some(s), Some(e)) = (
                uptime,
                dec_ms(td.str_of("cflow.timestart")),
                dec_ms(td.str_of("cflow.timeend")),
            ) {
                start = Some(export_ms as i64 - (up as i64 - s as i64));
                end = Some(export_ms as i64 - (up as i64 - e as i64));
            }
            if let (Some(s), Some(e)) = (
                abs_ms(td.str_of("cflow.abstimestart")),
                abs_ms(td.str_of("cflow.abstimeend")),
            ) {
                start = Some(s as i64);
                end = Some(e as i64);
            }
        }
        out.push(Shark {
            src,
            dst,
            sport: num(o.str_of("cflow.srcport")).unwrap_or(0) as u16,
            dport: num(o.str_of("cflow.dstport")).unwrap_or(0) as u16,
            proto: num(o.str_of("cflow.protocol")).unwrap_or(0) as u8,
            packets: num(o.str_of("cflow.packets")).or(num(o.str_of("cflow.packets64"))),
            bytes: num(o.str_of("cflow.octets")).or(num(o.str_of("cflow.octets64"))),
            start_ms: start.map(|x| x as u64),
            end_ms: end.map(|x| x as u64),
            sflow: false,
            datalink: false,
        });
        return;
    }
    for (_, v) in o.members() {
        cflow_flows(v, export_ms, uptime, out);
    }
    for v in o.elements() {
        cflow_flows(v, export_ms, uptime, out);
    }
}

/// One flow per sFlow flow sample, from its raw packet header (innermost IP header wins).
fn sflow_flows(layer: &J, frame_ms: u64, out: &mut Vec<Shark>) {
    for (k, s) in layer.members() {
        if !(k.starts_with("Flow sample") || k.starts_with("Expanded flow sample")) {
            continue;
        }
        let rate = num(s.str_of("sflow.flow_sample.sampling_rate")).unwrap_or(1);
        let mut f = Shark {
            src: IpAddr::from([0, 0, 0, 0]),
            dst: IpAddr::from([0, 0, 0, 0]),
            sport: 0,
            dport: 0,
            proto: 0,
            packets: Some(rate),
            bytes: None,
            start_ms: Some(frame_ms),
            end_ms: Some(frame_ms),
            sflow: true,
            datalink: false,
        };
        for (rk, r) in s.members() {
            if rk != "Raw packet header" {
                continue;
            }
            f.bytes = num(r.str_of("sflow_245.header.frame_length")).map(|b| b * rate);
            let Some(tree) = r.get("sflow_245.header_tree") else {
                continue;
            };
            walk_layers(tree.members().iter().map(|(k, v)| (k, v)), &mut f);
        }
        out.push(f);
    }
}

fn tshark_flows(
    files: &[PathBuf],
    cflow_ports: &BTreeSet<u16>,
    sflow_ports: &BTreeSet<u16>,
) -> (Vec<Shark>, Vec<Shark>) {
    let dir = scratch_dir("tshark");
    let merged = dir.join(format!("{}.pcap", name(files).replace('+', "_")));
    let st = Command::new("mergecap")
        .arg("-a")
        .arg("-F")
        .arg("pcap")
        .arg("-w")
        .arg(&merged)
        .args(files)
        .status()
        .expect("mergecap");
    assert!(st.success(), "mergecap failed for {}", name(files));
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(&merged).arg("-T").arg("json");
    for p in cflow_ports {
        cmd.arg("-d").arg(format!("udp.port=={p},cflow"));
    }
    for p in sflow_ports {
        cmd.arg("-d").arg(format!("udp.port=={p},sflow"));
    }
    let out = cmd.output().expect("tshark");
    let _ = std::fs::remove_file(&merged);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json::parse(&String::from_utf8_lossy(&out.stdout)).expect("tshark json");
    let (mut cf, mut sf) = (Vec::new(), Vec::new());
    for pkt in doc.elements() {
        let Some(layers) = pkt.get("_source").and_then(|s| s.get("layers")) else {
            continue;
        };
        let frame_ms = layers
            .get("frame")
            .and_then(|f| dec_ms(f.str_of("frame.time_epoch")))
            .unwrap_or(0);
        let dport = layers
            .get("udp")
            .and_then(|u| num(u.str_of("udp.dstport")))
            .unwrap_or(0) as u16;
        for (k, l) in layers.members() {
            if k == "cflow" && cflow_ports.contains(&dport) {
                let secs = num(l
                    .get("cflow.timestamp_tree")
                    .and_then(|t| t.str_of("cflow.unix_secs")))
                .or(num(l
                    .get("cflow.timestamp_tree")
                    .and_then(|t| t.str_of("cflow.exporttime"))))
                .unwrap_or(0);
                let nsecs = num(l
                    .get("cflow.timestamp_tree")
                    .and_then(|t| t.str_of("cflow.unix_nsecs")))
                .unwrap_or(0);
                let uptime = dec_ms(l.str_of("cflow.sysuptime"));
                cflow_flows(l, secs * 1000 + nsecs / 1_000_000, uptime, &mut cf);
            } else if k == "sflow" {
                sflow_flows(l, frame_ms, &mut sf);
            }
        }
        // tshark puts what it finds inside a VXLAN tunnel of a sampled header at the top level,
        // after the sFlow layer: it belongs to the last flow sample.
        let m = layers.members();
        if let Some(v) = m.iter().position(|(k, _)| k == "vxlan")
            && m.iter()
                .position(|(k, _)| k == "sflow")
                .is_some_and(|s| s < v)
            && let Some(last) = sf.last_mut()
        {
            walk_layers(m[v..].iter().map(|(k, v)| (k, v)), last);
        }
    }
    (cf, sf)
}

fn ours(
    batch: &FlowBatch,
    decoded: &[Decoded],
    want: &[Protocol],
    ports: &BTreeSet<u16>,
) -> Vec<(Shark, u32)> {
    let mut v = Vec::new();
    for d in decoded {
        let Ok(o) = &d.result else { continue };
        if !want.contains(&o.protocol) || !ports.contains(&d.dst.port()) {
            continue;
        }
        for i in d.flows.clone() {
            let r = batch.get(i);
            v.push((
                Shark {
                    src: r.src_addr,
                    dst: r.dst_addr,
                    sport: r.src_port,
                    dport: r.dst_port,
                    proto: r.proto,
                    packets: Some(r.packets),
                    bytes: Some(r.bytes),
                    start_ms: Some(r.start_ms),
                    end_ms: Some(r.end_ms),
                    sflow: o.protocol == Protocol::Sflow5,
                    datalink: false,
                },
                r.sampling_rate,
            ));
        }
    }
    v
}

/// Compares our flows with tshark's; returns a list of disagreements.
fn compare(what: &str, ours: &[(Shark, u32)], theirs: &[Shark], report: &mut Vec<String>) -> usize {
    let ours: Vec<&(Shark, u32)> = ours
        .iter()
        .filter(|(s, _)| !s.src.is_unspecified() || s.sflow)
        .collect();
    let theirs: Vec<&Shark> = theirs
        .iter()
        .filter(|s| !s.src.is_unspecified() || s.sflow || s.datalink)
        .collect();
    if ours.len() != theirs.len() {
        report.push(format!(
            "{what}: {} flows here, {} in tshark",
            ours.len(),
            theirs.len()
        ));
        return 0;
    }
    let mut checked = 0;
    for (i, ((o, rate), t)) in ours.iter().zip(theirs.iter()).enumerate() {
        let rate = if t.sflow { 1 } else { *rate as u64 };
        let mut diffs = Vec::new();
        if t.datalink && t.src.is_unspecified() {
            println!(
                "NOTE: {what} flow {i}: tshark did not dissect the data-link section down to IP; we read {} {}:{} -> {}:{}",
                o.proto, o.src, o.sport, o.dst, o.dport
            );
        } else if (o.src, o.dst, o.sport, o.dport, o.proto)
            != (t.src, t.dst, t.sport, t.dport, t.proto)
        {
            diffs.push(format!(
                "5-tuple {} {}:{} -> {}:{} vs {} {}:{} -> {}:{}",
                o.proto, o.src, o.sport, o.dst, o.dport, t.proto, t.src, t.sport, t.dst, t.dport
            ));
        }
        if let Some(p) = t.packets
            && o.packets != Some(p * rate)
        {
            diffs.push(format!("packets {:?} vs {p}×{rate}", o.packets));
        }
        if let Some(b) = t.bytes
            && o.bytes != Some(b * rate)
        {
            diffs.push(format!("bytes {:?} vs {b}×{rate}", o.bytes));
        }
        for (n, a, b) in [
            ("start", o.start_ms, t.start_ms),
            ("end", o.end_ms, t.end_ms),
        ] {
            if let (Some(a), Some(b)) = (a, b)
                && a.abs_diff(b) > 1
            {
                diffs.push(format!("{n} {a} vs {b}"));
            }
        }
        if !diffs.is_empty() {
            report.push(format!("{what} flow {i}: {}", diffs.join("; ")));
        }
        checked += 1;
    }
    checked
}

#[test]
fn flows_agree_with_tshark_dissection() {
    let Some(dir) = flows_dir("flows_agree_with_tshark_dissection") else {
        return;
    };
    if !have_tshark() {
        pharos_model::conformance::skip(
            "flows_agree_with_tshark_dissection: tshark/mergecap not installed (apt-get install tshark)",
        );
        return;
    }
    let mut report = Vec::new();
    let mut total = 0;
    for g in groups(&dir) {
        if !g.iter().all(|f| is_flow_capture(f)) {
            continue;
        }
        // tshark cannot decode data that comes before its template; to compare like with like,
        // hold nothing here (the held-data behaviour has its own tests).
        let no_hold = DecoderConfig {
            max_held_bytes_per_exporter: 0,
            ..DecoderConfig::default()
        };
        let (dec, batch, decoded, _) = decode_files(&g, no_hold);
        if dec
            .stats()
            .drops
            .contains_key("held data over budget (no template)")
        {
            let (_, with_hold, _, _) = decode_files(&g, DecoderConfig::default());
            println!(
                "{}: data before its template: tshark and a no-hold decoder see {} flows, Pharos (holding) decodes {}",
                name(&g),
                batch.len(),
                with_hold.len()
            );
        }
        let mut sflow_ports = BTreeSet::new();
        let mut cflow_ports = BTreeSet::new();
        for d in &decoded {
            match &d.result {
                Ok(o) if o.protocol == Protocol::Sflow5 => {
                    sflow_ports.insert(d.dst.port());
                }
                Ok(_) => {
                    cflow_ports.insert(d.dst.port());
                }
                Err(_) => {}
            }
        }
        let cflow_ports: BTreeSet<u16> = cflow_ports.difference(&sflow_ports).copied().collect();
        let (cf, sf) = tshark_flows(&g, &cflow_ports, &sflow_ports);
        let n = name(&g);
        let a = compare(
            &n,
            &ours(
                &batch,
                &decoded,
                &[Protocol::NetflowV5, Protocol::NetflowV9, Protocol::Ipfix],
                &cflow_ports,
            ),
            &cf,
            &mut report,
        );
        let b = compare(
            &n,
            &ours(&batch, &decoded, &[Protocol::Sflow5], &sflow_ports),
            &sf,
            &mut report,
        );
        println!("{n}: {a} netflow/ipfix flows and {b} sflow flows compared with tshark");
        total += a + b;
    }
    for r in &report {
        println!("DISAGREE: {r}");
    }
    assert!(
        report.is_empty(),
        "{} disagreements with tshark (see DISAGREE lines)",
        report.len()
    );
    assert!(total > 100, "only {total} flows compared");
}

/// tcpdump's expected output lists every sFlow sample with its sequence number, rate and
/// interfaces (flow samples) or ifIndex and counters (counter samples).
#[test]
fn sflow_samples_agree_with_tcpdump_expected_output() {
    let Some(dir) = flows_dir("sflow_samples_agree_with_tcpdump_expected_output") else {
        return;
    };
    let cases = [
        "sflow_expanded",
        "sflow-print-v6",
        "sflow_multiple_counter_30_pdus",
    ];
    let mut checked = 0;
    for c in cases {
        let pcap = dir.join(format!("tcpdump/{c}.pcap"));
        let out = dir.join(format!("tcpdump/{c}.out"));
        let (Ok(text), true) = (std::fs::read_to_string(&out), pcap.exists()) else {
            pharos_model::conformance::skip(&format!("{c}: capture or expected output missing"));
            continue;
        };
        // Expected: flow samples (rate, input, output) and counter samples (ifindex, octets).
        let mut want_flows = Vec::new();
        let mut want_counters = Vec::new();
        let mut lines = text.lines().peekable();
        while let Some(l) = lines.next() {
            let l = l.trim();
            let field = |key: &str| -> Option<u64> {
                let i = l.find(key)? + key.len();
                l[i..].trim_start().split([',', ' ']).next()?.parse().ok()
            };
            if l.contains("flow sample (") {
                want_flows.push((
                    field("rate").unwrap_or(0),
                    field("input").unwrap_or(0),
                    field("output").unwrap_or(0),
                ));
            } else if l.starts_with("ifindex") {
                let ifindex = field("ifindex").unwrap_or(0);
                let speed = field("ifspeed").unwrap_or(0);
                // the "In octets" line follows two lines later
                let _ = lines.next();
                let in_line = lines.next().unwrap_or("").trim().to_string();
                let in_octets: u64 = in_line
                    .strip_prefix("In octets ")
                    .and_then(|r| r.split(',').next())
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
                want_counters.push((ifindex, speed, in_octets));
            }
        }
        let (_, batch, decoded, _) =
            decode_files(std::slice::from_ref(&pcap), DecoderConfig::default());
        let mut got_flows = Vec::new();
        let mut got_counters = Vec::new();
        for d in &decoded {
            let Ok(o) = &d.result else { continue };
            if o.protocol != Protocol::Sflow5 {
                continue;
            }
            for i in d.flows.clone() {
                let r = batch.get(i);
                got_flows.push((r.sampling_rate as u64, r.in_if as u64, r.out_if as u64));
            }
            for c in &o.counters {
                if let Some(ifc) = &c.interface {
                    got_counters.push((ifc.if_index as u64, ifc.speed, ifc.in_octets));
                }
            }
        }
        // tcpdump prints the raw interface values; compare only where the format is ifIndex (0).
        assert_eq!(got_flows.len(), want_flows.len(), "{c}: flow samples");
        for (g, w) in got_flows.iter().zip(&want_flows) {
            assert_eq!(g.0, w.0, "{c}: sampling rate");
            if g.1 != 0 {
                assert_eq!(g.1, w.1, "{c}: input interface");
            }
            if g.2 != 0 {
                assert_eq!(g.2, w.2, "{c}: output interface");
            }
        }
        assert_eq!(
            got_counters, want_counters,
            "{c}: generic interface counters"
        );
        println!(
            "{c}: {} flow samples and {} counter samples match tcpdump",
            got_flows.len(),
            got_counters.len()
        );
        checked += got_flows.len() + got_counters.len();
    }
    assert!(checked > 0 || shared_missing(&dir));
}

fn shared_missing(dir: &Path) -> bool {
    !dir.exists()
}

/// The sampling rates akvorado's own tests expect for its captures (outlet/flow/decoder/netflow
/// tests): 2048 from v9 options data (`samplingrate-*`), 4000 and 2000 per sampler id joined
/// through the data records' sampler id (`multiplesamplingrates-*`), 1 for unsampled IPFIX.
#[test]
fn sampling_rates_of_akvorado_captures_come_from_options_data() {
    let Some(dir) = flows_dir("sampling_rates_of_akvorado_captures_come_from_options_data") else {
        return;
    };
    for g in groups(&dir) {
        let n = name(&g);
        if !n.contains("samplingrate") && !n.contains("options-template+options-data") {
            continue;
        }
        let (_, batch, _, _) = decode_files(&g, DecoderConfig::default());
        let rates: BTreeSet<u32> = batch.sampling_rate.iter().copied().collect();
        println!("{n}: sampling rates {rates:?} over {} flows", batch.len());
        if n.starts_with("samplingrate") {
            assert_eq!(rates, BTreeSet::from([2048]), "{n}");
        }
        if n.starts_with("multiplesamplingrates") {
            assert_eq!(rates, BTreeSet::from([2000, 4000]), "{n}");
        }
    }
    // The options data of `options-*.pcap` (sampler 1: 30000) applies to the flows of the same
    // exporter's `data.pcap` (sampler id 1 in each record).
    let nf = dir.join("akvorado/netflow");
    let files: Vec<PathBuf> = ["options-template", "options-data", "template", "data"]
        .iter()
        .map(|f| nf.join(format!("{f}.pcap")))
        .collect();
    let (_, batch, _, _) = decode_files(&files, DecoderConfig::default());
    let rates: BTreeSet<u32> = batch.sampling_rate.iter().copied().collect();
    println!(
        "options + template + data: sampling rates {rates:?} over {} flows",
        batch.len()
    );
    assert_eq!(rates, BTreeSet::from([30000]));
    assert_eq!(batch.get(0).packets, 30000, "1 packet × 30000");
}
