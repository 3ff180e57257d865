//! Writes fuzz seed corpora from capture files: every UDP payload, sorted by the protocol its
//! version field names, into `OUT/<target>/`, plus small synthetic pcap and pcapng files that
//! wrap those payloads for the `pcap` target.
//!
//! Usage: `cargo run -p pharos-wire --example fuzz_seeds -- CAPTURES_DIR OUT_DIR`

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pharos_wire::pcap::Capture;

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pcap" | "pcapng")
        ) {
            out.push(p);
        }
    }
}

/// Ethernet + IPv4 + UDP around `payload`.
fn frame(payload: &[u8], dport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = (20 + 8 + payload.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for v in [
            1_700_000_000u32 + i as u32,
            0,
            f.len() as u32,
            f.len() as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(f);
    }
    b
}

fn pcapng(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    // SHB
    for v in [0x0a0d0d0au32, 28, 0x1a2b3c4d] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&u64::MAX.to_be_bytes());
    b.extend_from_slice(&28u32.to_be_bytes());
    // IDB, Ethernet, with if_tsresol = 9 (ns)
    for v in [1u32, 28] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&[0, 9, 0, 1, 9, 0, 0, 0]);
    b.extend_from_slice(&28u32.to_be_bytes());
    for (i, f) in frames.iter().enumerate() {
        let padded = f.len().div_ceil(4) * 4;
        let len = (32 + padded) as u32;
        let ts = (1_700_000_000u64 + i as u64) * 1_000_000_000;
        for v in [
            6u32,
            len,
            0,
            (ts >> 32) as u32,
            ts as u32,
            f.len() as u32,
            f.len() as u32,
        ] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(f);
        b.resize(b.len() + padded - f.len(), 0);
        b.extend_from_slice(&len.to_be_bytes());
    }
    b
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(src), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: fuzz_seeds CAPTURES_DIR OUT_DIR");
        std::process::exit(2);
    };
    let out = Path::new(out);
    let mut files = Vec::new();
    captures(Path::new(src), &mut files);
    files.sort();
    let mut seen = BTreeSet::new();
    let mut written = 0;
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        let Ok(cap) = Capture::new(&bytes) else {
            continue;
        };
        let mut frames = Vec::new();
        for d in cap.flatten() {
            let p = d.payload;
            let target = match (p.first(), p.get(1), p.get(3)) {
                (Some(0), Some(5), _) => "netflow_v5",
                (Some(0), Some(9), _) => "netflow_v9",
                (Some(0), Some(10), _) => "ipfix",
                (Some(0), Some(0), Some(5)) => "sflow",
                _ => continue,
            };
            frames.push(frame(p, d.dst.port()));
            if !seen.insert(p.to_vec()) || p.len() > 64 * 1024 {
                continue;
            }
            let dir = out.join(target);
            std::fs::create_dir_all(&dir).expect("create corpus dir");
            std::fs::write(dir.join(format!("seed-{:04}", seen.len())), p).expect("write seed");
            written += 1;
        }
        if !frames.is_empty() {
            let dir = out.join("pcap");
            std::fs::create_dir_all(&dir).expect("create corpus dir");
            let stem = f
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            frames.truncate(8);
            std::fs::write(dir.join(format!("{stem}.pcap")), pcap(&frames)).expect("write seed");
            std::fs::write(dir.join(format!("{stem}.pcapng")), pcapng(&frames))
                .expect("write seed");
            written += 2;
        }
    }
    println!("wrote {written} seeds under {}", out.display());
}
