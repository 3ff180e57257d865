//! What our own flow archive says about an attack: did flows to the victim, of its protocol and
//! source ports, cross our network in the window, where did they enter (exporter and input
//! interface, source AS, next hop), and from which source networks.
//!
//! When the request carries example flow records ([`Example`], the `RecordItem`s of its IODEF
//! document), they are compared one by one instead: a flow of our archive matches a record when
//! its source and destination addresses, source and destination ports and IP protocol are the
//! record's and it started within the window (`lookback`) around the record's start; only
//! matching flows count, and [`Crossing::records_matched`] says how many records were found.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use pharos_flows::filter;
use pharos_flows::query::{Scan, Selection};
use pharos_model::flow::FlowRecord;

/// The attack to look for.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The victim (destination) addresses.
    pub victims: Vec<IpAddr>,
    /// The IP protocol, if known.
    pub proto: Option<u8>,
    /// The attack's source ports (reflection), if known.
    pub src_ports: Vec<u16>,
    /// Window start, Unix ms.
    pub from_ms: u64,
    /// Window end, Unix ms.
    pub to_ms: u64,
    /// Example records to compare one by one (when not empty, they replace the victim,
    /// protocol and port criteria).
    pub records: Vec<Example>,
    /// How far from a record's start a matching flow may start, ms.
    pub tolerance_ms: u64,
}

/// One example flow record of a request (`<flow src="a:p" dst="a:p" proto=".." start_ms=".."/>`
/// in namespace [`super::build::FLOW_NS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Start, Unix ms.
    pub start_ms: u64,
}

fn addr_port(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.rsplit_once(':')?;
    let a = a
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(a);
    Some((a.parse().ok()?, p.parse().ok()?))
}

/// The example flow records of `incident` we can read (at most 50; others are ignored).
pub fn examples_of(incident: &pharos_rid::Incident) -> Vec<Example> {
    let mut out = Vec::new();
    for e in &incident.event_data {
        let Some(r) = &e.record else { continue };
        for d in &r.data {
            for item in &d.items {
                for c in &item.content {
                    let pharos_rid::XmlContent::Element(el) = c else {
                        continue;
                    };
                    if el.name != "flow" || el.namespace.as_deref() != Some(super::build::FLOW_NS) {
                        continue;
                    }
                    let get = |n: &str| {
                        el.attributes
                            .iter()
                            .find(|a| a.name == n && a.namespace.is_none())
                            .map(|a| a.value.as_str())
                    };
                    let (Some((src, src_port)), Some((dst, dst_port)), Some(proto), Some(start)) = (
                        get("src").and_then(addr_port),
                        get("dst").and_then(addr_port),
                        get("proto").and_then(|p| p.parse().ok()),
                        get("start_ms").and_then(|p| p.parse().ok()),
                    ) else {
                        continue;
                    };
                    if out.len() < 50 {
                        out.push(Example {
                            src,
                            src_port,
                            dst,
                            dst_port,
                            proto,
                            start_ms: start,
                        });
                    }
                }
            }
        }
    }
    out
}

impl Example {
    fn filter(&self) -> String {
        format!(
            "(src host {} and src port {} and dst host {} and dst port {} and proto {})",
            self.src, self.src_port, self.dst, self.dst_port, self.proto
        )
    }

    fn matches(&self, f: &FlowRecord, tolerance_ms: u64) -> bool {
        f.src_addr == self.src
            && f.dst_addr == self.dst
            && f.src_port == self.src_port
            && f.dst_port == self.dst_port
            && f.proto == self.proto
            && f.start_ms.abs_diff(self.start_ms) <= tolerance_ms
    }
}

/// Where matching flows entered our network, with their bytes.
#[derive(Debug, Clone, Default)]
pub struct Crossing {
    /// Matching flows.
    pub flows: u64,
    /// Bytes per entry point `(exporter, in_if, src_as, next_hop)`.
    pub entries: BTreeMap<(IpAddr, u32, u32, Option<IpAddr>), u64>,
    /// Source networks (/24 for IPv4, /48 for IPv6), at most 16.
    pub sources: BTreeSet<String>,
    /// A few example flows (the first found).
    pub examples: Vec<FlowRecord>,
    /// How many of the request's example records matched a flow (when it had some).
    pub records_matched: usize,
}

/// The nfdump-style filter of `w` (without the window).
pub fn filter_text(w: &Wanted) -> Option<String> {
    if !w.records.is_empty() {
        let any: Vec<String> = w.records.iter().map(Example::filter).collect();
        return Some(any.join(" or "));
    }
    if w.victims.is_empty() {
        return None;
    }
    let victims: Vec<String> = w
        .victims
        .iter()
        .take(16)
        .map(|v| format!("dst host {v}"))
        .collect();
    let mut f = format!("({})", victims.join(" or "));
    match w.proto {
        Some(6) => f.push_str(" and proto tcp"),
        Some(17) => f.push_str(" and proto udp"),
        Some(1) => f.push_str(" and proto icmp"),
        _ => {}
    }
    if !w.src_ports.is_empty() && w.proto != Some(1) {
        let ports: Vec<String> = w
            .src_ports
            .iter()
            .take(16)
            .map(|p| format!("src port {p}"))
            .collect();
        f.push_str(&format!(" and ({})", ports.join(" or ")));
    }
    Some(f)
}

/// Scans the archive under `root` for `w` (blocking: run it off the async threads).
pub fn look(root: &Path, w: &Wanted, examples: usize) -> Result<Crossing, String> {
    let Some(text) = filter_text(w) else {
        return Ok(Crossing::default());
    };
    let expr = filter::parse(&text).map_err(|e| format!("filter {text:?}: {e}"))?;
    let mut scan = Scan::new(
        root,
        Selection {
            filter: expr,
            from_ms: Some(w.from_ms),
            to_ms: Some(w.to_ms),
        },
    );
    scan.threads = 1;
    let mut out = Crossing::default();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut matched = vec![false; w.records.len()];
    scan.for_each(|batch| {
        for i in 0..batch.len() {
            let f = batch.get(i);
            if !w.records.is_empty() {
                let mut any = false;
                for (r, m) in w.records.iter().zip(matched.iter_mut()) {
                    if r.matches(&f, w.tolerance_ms) {
                        *m = true;
                        any = true;
                    }
                }
                if !any {
                    continue;
                }
            }
            out.flows += 1;
            *out.entries
                .entry((f.exporter, f.in_if, f.src_as, f.next_hop))
                .or_default() += f.bytes;
            if out.sources.len() < 16 {
                out.sources.insert(network_of(f.src_addr));
            }
            if out.examples.len() < examples {
                out.examples.push(f);
            }
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    out.records_matched = matched.iter().filter(|m| **m).count();
    Ok(out)
}

/// The /24 (IPv4) or /48 (IPv6) around `a`.
fn network_of(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_victims_protocol_and_ports() {
        let w = Wanted {
            victims: vec!["198.51.100.10".parse().unwrap()],
            proto: Some(17),
            src_ports: vec![123],
            from_ms: 0,
            to_ms: 1,
            records: Vec::new(),
            tolerance_ms: 0,
        };
        let f = filter_text(&w).unwrap();
        assert_eq!(
            f,
            "(dst host 198.51.100.10) and proto udp and (src port 123)"
        );
        assert!(filter::parse(&f).is_ok());
        assert_eq!(network_of("192.0.2.17".parse().unwrap()), "192.0.2.0/24");
    }

    #[test]
    fn example_records_are_compared_by_addresses_ports_protocol_and_time() {
        let r = Example {
            src: "203.0.113.1".parse().unwrap(),
            src_port: 123,
            dst: "198.51.100.10".parse().unwrap(),
            dst_port: 40000,
            proto: 17,
            start_ms: 1_000_000,
        };
        let w = Wanted {
            victims: Vec::new(),
            proto: None,
            src_ports: Vec::new(),
            from_ms: 0,
            to_ms: 1,
            records: vec![r.clone()],
            tolerance_ms: 60_000,
        };
        let f = filter_text(&w).unwrap();
        assert!(filter::parse(&f).is_ok(), "{f}");
        let mut flow = FlowRecord {
            src_addr: r.src,
            dst_addr: r.dst,
            src_port: 123,
            dst_port: 40000,
            proto: 17,
            start_ms: 1_030_000,
            ..FlowRecord::default()
        };
        assert!(r.matches(&flow, 60_000));
        flow.start_ms = 1_070_000;
        assert!(!r.matches(&flow, 60_000), "outside the window");
        flow.start_ms = 1_000_000;
        flow.dst_port = 40001;
        assert!(!r.matches(&flow, 60_000), "another port");
        assert_eq!(
            addr_port("[2001:db8::1]:53"),
            Some(("2001:db8::1".parse().unwrap(), 53))
        );
        assert_eq!(
            addr_port("2001:db8::1:53"),
            Some(("2001:db8::1".parse().unwrap(), 53))
        );
    }
}
