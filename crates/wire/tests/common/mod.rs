//! Test support: locating the shared corpora, decoding captures, a small order-preserving JSON
//! reader for tshark output, and builders for synthetic export packets.
#![allow(dead_code)]

pub mod build;
pub mod json;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pharos_wire::pcap::{Capture, PcapStats};
use pharos_wire::{DecodeOutcome, DecoderConfig, FlowBatch, FlowDecoder, WireError};

/// The shared directory (`PHAROS_SHARED`, else `CARGO_MANIFEST_DIR/../../../shared`), if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = match std::env::var_os("PHAROS_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    p.join("corpora/flows").is_dir().then_some(p)
}

/// The flow corpora directory, or prints a SKIPPED line and returns `None`.
pub fn flows_dir(test: &str) -> Option<PathBuf> {
    match shared_dir() {
        Some(p) => Some(p.join("corpora/flows")),
        None => {
            pharos_model::conformance::skip(&format!(
                "{test}: shared corpora not found (set PHAROS_SHARED to the shared directory)"
            ));
            None
        }
    }
}

/// Every `.pcap` / `.pcapng` file under `dir`, sorted.
pub fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Groups of captures that must be decoded in order with one decoder (templates in one file,
/// data in the next), as akvorado ships them. Everything else is a group of one.
pub fn groups(dir: &Path) -> Vec<Vec<PathBuf>> {
    let nf = dir.join("akvorado/netflow");
    let named: &[&[&str]] = &[
        &["template", "data"],
        &["options-template", "options-data"],
        &["datalink-template", "datalink-data"],
        &[
            "ethernet-over-mpls-with-control-word-template",
            "ethernet-over-mpls-with-control-word-data",
        ],
        &["icmp-template", "icmp-data"],
        &["ipfix-srv6-template", "ipfix-srv6-data"],
        &["ipfixprobe-templates", "ipfixprobe-data"],
        &["juniper-cpid-template", "juniper-cpid-data"],
        &[
            "multiplesamplingrates-options-template",
            "multiplesamplingrates-options-data",
            "multiplesamplingrates-template",
            "multiplesamplingrates-data",
        ],
        &["samplingrate-template", "samplingrate-data"],
    ];
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    for g in named {
        let files: Vec<PathBuf> = g.iter().map(|n| nf.join(format!("{n}.pcap"))).collect();
        if files.iter().all(|f| f.exists()) {
            used.extend(files.iter().cloned());
            out.push(files);
        }
    }
    for c in captures(dir) {
        if !used.contains(&c) {
            out.push(vec![c]);
        }
    }
    out
}

/// Whether a capture is expected to hold flow export datagrams.
pub fn is_flow_capture(p: &Path) -> bool {
    let s = p.to_string_lossy();
    (s.contains("akvorado/netflow") || s.contains("akvorado/sflow"))
        || (s.contains("tcpdump/") && s.contains("sflow"))
        || (s.contains("ndpi/") && (s.contains("netflow") || s.contains("sflow")))
}

/// One decoded datagram.
#[derive(Debug)]
pub struct Decoded {
    pub file: PathBuf,
    pub timestamp_ms: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub result: Result<DecodeOutcome, WireError>,
    /// Range of this datagram's flows in the batch.
    pub flows: std::ops::Range<usize>,
}

/// Decodes every UDP datagram of `files`, in order, with one decoder.
pub fn decode_files(
    files: &[PathBuf],
    config: DecoderConfig,
) -> (FlowDecoder, FlowBatch, Vec<Decoded>, PcapStats) {
    let mut dec = FlowDecoder::new(config);
    let mut batch = FlowBatch::new();
    let mut all = Vec::new();
    let mut pstats = PcapStats::default();
    for f in files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut cap = Capture::new(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for d in cap.by_ref() {
            let d = d.unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let before = batch.len();
            let result = dec.decode(d.src, d.timestamp_ms, d.payload, &mut batch);
            all.push(Decoded {
                file: f.clone(),
                timestamp_ms: d.timestamp_ms,
                src: d.src,
                dst: d.dst,
                result,
                flows: before..batch.len(),
            });
        }
        let s = cap.stats();
        pstats.packets += s.packets;
        pstats.udp += s.udp;
        pstats.non_udp += s.non_udp;
        pstats.fragments += s.fragments;
        pstats.unsupported_link += s.unsupported_link;
        pstats.truncated += s.truncated;
    }
    (dec, batch, all, pstats)
}

/// Whether `tshark` (and `mergecap`) can be run.
pub fn have_tshark() -> bool {
    std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
        && std::process::Command::new("mergecap")
            .arg("-v")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pharos-wire-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}
