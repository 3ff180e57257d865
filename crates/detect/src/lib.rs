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
}
