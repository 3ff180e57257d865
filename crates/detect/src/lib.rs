//! Pharos analysis stage: turns flows and notifications into the events an operator acts on.
//!
//! Contract: detectors are plain synchronous state machines fed with [`FlowBatch`]es and an
//! explicit clock (`now_ms`, Unix milliseconds: capture time when replaying a file); they never
//! read the wall clock, never panic on any input, and bound their memory by configuration.
//! [`Detector`] runs every flow detector over the same batches; [`DdosDetector`] and
//! [`ScanDetector`] can be used alone.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod class;
pub mod config;
pub mod ddos;
pub mod hook;
pub mod notify;
pub mod prefix;
pub mod report;
pub mod scan;
pub mod sketch;
pub mod state;
#[doc(hidden)]
pub mod synth;

pub use class::TrafficClass;
pub use config::{ConfigError, DdosConfig, ScanConfig};
pub use ddos::{AttackId, AttackReport, AttackSummary, AttackUpdate, DdosDetector, DdosStats};
pub use scan::{ScanAlarm, ScanDetector, ScanKind, ScanStats};

use pharos_model::Message;
use pharos_model::flow::FlowBatch;
use serde::{Deserialize, Serialize};

/// Configuration of every flow detector (`[detect]` in `pharos.toml`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// DDoS detector.
    pub ddos: DdosConfig,
    /// Scan detector.
    pub scan: ScanConfig,
}

impl DetectConfig {
    /// Checks `[detect.ddos]` and `[detect.scan]` without building the detectors; the error names
    /// the section, the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ddos.compile()?;
        self.scan.validate()?;
        Ok(())
    }
}

/// Every key of the detection sections (`[detect]`, `[notify]`, `[state]`, `[report]`,
/// `[detect_hook]`) spelled
/// otherwise by earlier releases, still read with a warning.
pub fn renamed_keys() -> impl Iterator<Item = &'static pharos_model::config::RenamedKey> {
    config::RENAMED_KEYS
        .iter()
        .chain(notify::RENAMED_KEYS)
        .chain(state::RENAMED_KEYS)
        .chain(report::RENAMED_KEYS)
        .chain(hook::RENAMED_KEYS)
}

/// One output of [`Detector`] (rare next to flows: not worth boxing).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    /// A DDoS attack started, was updated or ended.
    Attack(AttackUpdate),
    /// A port scan or host sweep.
    Scan(ScanAlarm),
}

impl Detection {
    /// The I2NSF message to store and emit.
    pub fn message(&self) -> &Message {
        match self {
            Self::Attack(u) => u.message(),
            Self::Scan(s) => &s.message,
        }
    }
}

/// The DDoS and scan detectors over one flow stream.
#[derive(Debug)]
pub struct Detector {
    /// The DDoS detector.
    pub ddos: DdosDetector,
    /// The scan detector.
    pub scan: ScanDetector,
    attacks: Vec<AttackUpdate>,
    scans: Vec<ScanAlarm>,
}

impl Detector {
    /// Both detectors for `cfg`, or what is wrong with it.
    pub fn new(cfg: DetectConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            ddos: DdosDetector::new(cfg.ddos)?,
            scan: ScanDetector::new(cfg.scan)?,
            attacks: Vec::new(),
            scans: Vec::new(),
        })
    }

    /// Feeds one batch at `now_ms`; appends what it detected to `out`.
    pub fn process(&mut self, batch: &FlowBatch, now_ms: u64, out: &mut Vec<Detection>) {
        self.ddos.process(batch, now_ms, &mut self.attacks);
        self.scan.process(batch, now_ms, &mut self.scans);
        self.drain(out);
    }

    /// Evaluates what is due at `now_ms` without a batch (call it at [`Detector::due_ms`]);
    /// appends what started, changed or ended.
    pub fn poll(&mut self, now_ms: u64, out: &mut Vec<Detection>) {
        self.ddos.poll(now_ms, &mut self.attacks);
        self.drain(out);
    }

    /// When flows counted since the last evaluation are due for an early one, Unix ms.
    pub fn due_ms(&self) -> Option<u64> {
        self.ddos.due_ms()
    }

    /// Advances the clock without flows (call about once a second); appends what ended.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Detection>) {
        self.ddos.tick(now_ms, &mut self.attacks);
        self.drain(out);
    }

    /// Ends every attack going on (end of a replay, shutdown).
    pub fn finish(&mut self, now_ms: u64, out: &mut Vec<Detection>) {
        self.ddos.finish(now_ms, &mut self.attacks);
        self.drain(out);
    }

    fn drain(&mut self, out: &mut Vec<Detection>) {
        out.extend(self.attacks.drain(..).map(Detection::Attack));
        out.extend(self.scans.drain(..).map(Detection::Scan));
    }
}

/// The AS numbers one side of an attack's flows carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum AsSeen {
    /// No flow carried one.
    #[default]
    None,
    /// Every flow counted carried this one.
    One(u32),
    /// Flows carried different ones.
    Mixed,
}

impl AsSeen {
    /// Counts `asn`; 0 (the exporter did not know it, as NetFlow writes it for local prefixes)
    /// is left out.
    #[inline]
    pub(crate) fn add_known(&mut self, asn: u32) {
        if asn == 0 {
            return;
        }
        *self = match *self {
            Self::None => Self::One(asn),
            Self::One(a) if a == asn => Self::One(a),
            _ => Self::Mixed,
        };
    }

    /// Counts `asn`, an unknown one (0) counting as a different AS: [`AsSeen::one`] then says
    /// whether every flow carried the same known AS.
    #[inline]
    pub(crate) fn add_all(&mut self, asn: u32) {
        if asn == 0 {
            *self = Self::Mixed;
        } else {
            self.add_known(asn);
        }
    }

    /// The one AS every counted flow carried.
    pub(crate) fn one(self) -> Option<u32> {
        match self {
            Self::One(a) => Some(a),
            _ => None,
        }
    }

    /// The envelope fields of an event whose source side carried `src` and destination side
    /// `dst`; `None` when neither is one known AS.
    pub(crate) fn fields(src: Self, dst: Self) -> Option<Box<pharos_model::LogFields>> {
        let (src_as, dst_as) = (src.one(), dst.one());
        (src_as.is_some() || dst_as.is_some()).then(|| {
            Box::new(pharos_model::LogFields {
                src_as,
                dst_as,
                ..Default::default()
            })
        })
    }
}

/// The AS column value of row `i`, 0 (unknown) when the batch has no such column.
#[inline]
pub(crate) fn as_at(col: &[u32], i: usize) -> u32 {
    col.get(i).copied().unwrap_or(0)
}

/// Rows of `b` the detectors can read: a malformed batch with short columns is read up to its
/// shortest column (of those the detectors use), so indexing never panics.
pub(crate) fn readable_rows(b: &FlowBatch) -> usize {
    [
        b.flags.len(),
        b.src_addr.len(),
        b.dst_addr.len(),
        b.src_port.len(),
        b.dst_port.len(),
        b.proto.len(),
        b.tcp_flags.len(),
        b.packets.len(),
        b.bytes.len(),
        b.start_ms.len(),
        b.end_ms.len(),
        b.sampling_rate.len(),
    ]
    .into_iter()
    .min()
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{AttackGen, AttackSpec, flow};

    const T0: u64 = 1_767_225_600_000;

    #[test]
    fn detector_reports_attacks_and_scans_from_one_stream_and_parses_its_toml() {
        let cfg: DetectConfig = toml::from_str(
            r#"
            [ddos]
            networks = ["198.51.100.0/24"]
            hold = "5s"
            [scan]
            networks = ["198.51.100.0/24"]
            "#,
        )
        .unwrap();
        let mut d = Detector::new(cfg).unwrap();
        let spec = AttackSpec {
            victim: "198.51.100.9".parse().unwrap(),
            proto: 17,
            tcp_flags: 0,
            src_port: Some(11211),
            dst_port: None,
            pps: 50_000,
            pkt_size: 1400,
            sources: 50,
            flow_ms: (500, 1_500),
            sampling: 1,
        };
        let mut g = AttackGen::new(spec, T0, 1);
        let mut out = Vec::new();
        let mut b = FlowBatch::new();
        for s in 0..40u64 {
            let t = T0 + s * 1000;
            b.clear();
            if s < 20 {
                g.emit(T0, t + 1000, &mut b);
            }
            if s == 5 {
                for p in 1..200u16 {
                    let mut f = flow("203.0.113.200", "198.51.100.30", 6, 50000, p, t, t);
                    f.tcp_flags = 0x02;
                    b.push(&f);
                }
            }
            d.process(&b, t + 1000, &mut out);
        }
        d.finish(T0 + 41_000, &mut out);
        let kinds: Vec<&str> = out.iter().map(|x| x.message().kind.name()).collect();
        assert!(
            kinds.contains(&"ddos") && kinds.contains(&"intrusion"),
            "{kinds:?}"
        );
        let phases: Vec<&str> = out
            .iter()
            .filter_map(|x| match x {
                Detection::Attack(u) => Some(u.phase()),
                Detection::Scan(_) => None,
            })
            .filter(|p| *p != "updated")
            .collect();
        assert_eq!(phases, ["started", "ended"]);
        assert!(toml::from_str::<DetectConfig>("[ddos]\nwindow = 3").is_err());
    }

    /// Runs a 20 s flood on 198.51.100.9 and a port scan of 198.51.100.30, with the AS columns
    /// `asn(row)` gives the flood's rows; returns the first DDoS and intrusion events' fields.
    fn run_with_as(
        asn: impl Fn(usize) -> (u32, u32),
    ) -> (
        Option<pharos_model::LogFields>,
        Option<pharos_model::LogFields>,
    ) {
        let cfg: DetectConfig = toml::from_str(
            "[ddos]\nnetworks = [\"198.51.100.0/24\"]\nhold = \"5s\"\n[scan]\nnetworks = [\"198.51.100.0/24\"]\n",
        )
        .unwrap();
        let mut d = Detector::new(cfg).unwrap();
        let spec = AttackSpec {
            victim: "198.51.100.9".parse().unwrap(),
            proto: 17,
            tcp_flags: 0,
            src_port: Some(11211),
            dst_port: None,
            pps: 50_000,
            pkt_size: 1400,
            sources: 50,
            flow_ms: (500, 1_500),
            sampling: 1,
        };
        let mut g = AttackGen::new(spec, T0, 1);
        let mut out = Vec::new();
        let mut b = FlowBatch::new();
        let mut row = 0;
        for s in 0..12u64 {
            let t = T0 + s * 1000;
            b.clear();
            g.emit(T0, t + 1000, &mut b);
            for i in 0..b.src_as.len() {
                (b.src_as[i], b.dst_as[i]) = asn(row);
                row += 1;
            }
            if s == 5 {
                for p in 1..200u16 {
                    let mut f = flow("203.0.113.200", "198.51.100.30", 6, 50000, p, t, t);
                    f.tcp_flags = 0x02;
                    (f.src_as, f.dst_as) = (64999, if p % 2 == 0 { 64700 } else { 0 });
                    b.push(&f);
                }
            }
            d.process(&b, t + 1000, &mut out);
        }
        let field = |kind: &str| {
            out.iter()
                .find(|x| x.message().kind.name() == kind)
                .map(|x| {
                    x.message()
                        .common
                        .fields
                        .as_deref()
                        .cloned()
                        .unwrap_or_default()
                })
        };
        (field("ddos"), field("intrusion"))
    }

    #[test]
    fn flow_events_carry_the_victims_as_and_the_sources_one_as() {
        // every flood flow from AS 64500 to AS 64700 (some victim flows with 0: unknown)
        let (ddos, scan) = run_with_as(|i| (64500, if i % 3 == 0 { 0 } else { 64700 }));
        let ddos = ddos.expect("a DDoS event");
        assert_eq!((ddos.src_as, ddos.dst_as), (Some(64500), Some(64700)));
        let scan = scan.expect("a scan event");
        assert_eq!((scan.src_as, scan.dst_as), (Some(64999), Some(64700)));
        // sources in two ASes, or one flow with an unknown source AS: no source AS
        let (ddos, _) = run_with_as(|i| (64500 + (i % 2) as u32, 64700));
        let ddos = ddos.expect("a DDoS event");
        assert_eq!((ddos.src_as, ddos.dst_as), (None, Some(64700)));
        let (ddos, _) = run_with_as(|i| (if i == 7 { 0 } else { 64500 }, 64700));
        assert_eq!(ddos.expect("a DDoS event").src_as, None);
        // no AS at all: no fields
        let (ddos, _) = run_with_as(|_| (0, 0));
        assert_eq!(
            ddos.expect("a DDoS event"),
            pharos_model::LogFields::default()
        );
    }
}
