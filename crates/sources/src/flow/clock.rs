//! Exporter clock offsets: how far each exporter's clock is from ours, and the correction applied
//! to its flow times so that a router with a wrong clock (no NTP, a year behind) is still placed
//! in our time.
//!
//! Contract:
//! - The offset of one datagram is its header's export time minus our receive time (the flow
//!   times of NetFlow v5/v9 and IPFIX derive from the same clock as the export time; the flows'
//!   own durations play no part). The estimate of an exporter and observation domain is the
//!   median over its last [`SAMPLES`] datagrams: a few delayed or garbled datagrams do not move it.
//! - Correction (ms subtracted from the start and end of a datagram's flows):
//!   - a clock within [`CORRECT_ABOVE_MS`] of ours is trusted as it is (no correction: NetFlow v9
//!     and IPFIX export times have whole seconds, so a synchronised exporter is up to a second
//!     "behind"); correction starts once the median is beyond it and stops once the median is
//!     back within [`CORRECT_UNTIL_MS`] (hysteresis: a clock hovering at the bound does not
//!     flip);
//!   - while correcting, the median is subtracted;
//!   - a datagram whose own offset differs from the median by more than [`CORRECT_ABOVE_MS`] (the
//!     clock was just stepped, e.g. NTP fixed it, or it is an outlier) is corrected by its own
//!     offset when that is beyond [`CORRECT_ABOVE_MS`], else not at all: its flow times are in
//!     its own header's time base, so after a step its flows are placed right at once instead of
//!     a year off until the median follows.
//! - Memory: at most `limit` exporters and domains (about 200 bytes each); the datagrams of a
//!   further one are corrected by their own offset, untracked and counted; an exporter silent for
//!   [`IDLE_MS`] is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;

use pharos_model::flow::ExporterClock;

/// Datagrams the median is taken over.
pub const SAMPLES: usize = 15;
/// A clock further than this from ours (ms) has its flow times corrected.
pub const CORRECT_ABOVE_MS: i64 = 2_000;
/// Correction stops once the median is back within this (ms).
pub const CORRECT_UNTIL_MS: i64 = 1_000;
/// An exporter not heard from for this long (ms) is forgotten.
pub const IDLE_MS: u64 = 3_600_000;

/// One exporter and domain.
#[derive(Debug, Clone)]
struct Track {
    /// Recent offsets, ms (a ring of the last `len` values).
    ring: [i64; SAMPLES],
    len: u8,
    next: u8,
    median: i64,
    correcting: bool,
    correction: i64,
    datagrams: u64,
    last_received_ms: u64,
    last_export_ms: u64,
    /// Worth publishing at once (new, or the correction started or stopped).
    urgent: bool,
}

/// What [`ClockEstimator::observe`] decided for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Ms to subtract from the start and end times of the datagram's flows.
    pub correction_ms: i64,
    /// The exporter's entry should be published now (it is new, or its correction started or
    /// stopped); otherwise the periodic refresh is soon enough.
    pub urgent: bool,
}

/// Per-exporter clock offset estimates of one collector thread.
#[derive(Debug)]
pub struct ClockEstimator {
    limit: usize,
    tracks: HashMap<(IpAddr, u32), Track>,
    untracked: u64,
}

impl ClockEstimator {
    /// An estimator tracking at most `limit` exporters and domains.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            tracks: HashMap::new(),
            untracked: 0,
        }
    }

    /// Datagrams of exporters beyond the limit (corrected by their own offset, not tracked).
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Exporters and domains tracked.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// True when no exporter is tracked.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Records one datagram of `exporter`/`domain` exported at `export_ms` (its clock) and
    /// received at `received_ms` (ours); returns the correction for its flows.
    pub fn observe(
        &mut self,
        exporter: IpAddr,
        domain: u32,
        export_ms: u64,
        received_ms: u64,
    ) -> Observed {
        let own = export_ms as i64 - received_ms as i64;
        let full = self.tracks.len() >= self.limit;
        let t = match self.tracks.entry((exporter, domain)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) if !full => e.insert(Track {
                ring: [0; SAMPLES],
                len: 0,
                next: 0,
                median: own,
                correcting: false,
                correction: 0,
                datagrams: 0,
                last_received_ms: 0,
                last_export_ms: 0,
                urgent: true,
            }),
            std::collections::hash_map::Entry::Vacant(_) => {
                self.untracked += 1;
                let c = if own.abs() > CORRECT_ABOVE_MS { own } else { 0 };
                return Observed {
                    correction_ms: c,
                    urgent: false,
                };
            }
        };
        t.ring[t.next as usize] = own;
        t.next = ((t.next as usize + 1) % SAMPLES) as u8;
        t.len = (t.len as usize + 1).min(SAMPLES) as u8;
        let mut sorted = t.ring;
        let n = t.len as usize;
        let (_, m, _) = sorted[..n].select_nth_unstable((n - 1) / 2);
        let median = *m;
        t.median = median;
        let was = t.correcting;
        if !t.correcting && median.abs() > CORRECT_ABOVE_MS {
            t.correcting = true;
        } else if t.correcting && median.abs() <= CORRECT_UNTIL_MS {
            t.correcting = false;
        }
        let correction = if (own - median).abs() > CORRECT_ABOVE_MS {
            if own.abs() > CORRECT_ABOVE_MS { own } else { 0 }
        } else if t.correcting {
            median
        } else {
            0
        };
        t.urgent |= was != t.correcting || (correction == 0) != (t.correction == 0);
        t.correction = correction;
        t.datagrams += 1;
        t.last_received_ms = received_ms;
        t.last_export_ms = export_ms;
        Observed {
            correction_ms: correction,
            urgent: t.urgent,
        }
    }

    /// The published view of one exporter and domain, clearing its urgency.
    pub fn entry(&mut self, exporter: IpAddr, domain: u32) -> Option<ExporterClock> {
        let t = self.tracks.get_mut(&(exporter, domain))?;
        t.urgent = false;
        Some(view(exporter, domain, t))
    }

    /// Every tracked exporter and domain (clearing their urgency).
    pub fn entries(&mut self) -> Vec<ExporterClock> {
        self.tracks
            .iter_mut()
            .map(|(&(e, d), t)| {
                t.urgent = false;
                view(e, d, t)
            })
            .collect()
    }

    /// Forgets exporters not heard from for [`IDLE_MS`] before `now_ms`; returns them.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(IpAddr, u32)> {
        let mut gone = Vec::new();
        self.tracks.retain(|k, t| {
            let keep = now_ms.saturating_sub(t.last_received_ms) <= IDLE_MS;
            if !keep {
                gone.push(*k);
            }
            keep
        });
        gone
    }
}

fn view(exporter: IpAddr, domain: u32, t: &Track) -> ExporterClock {
    ExporterClock {
        exporter,
        domain,
        offset_ms: t.median,
        correction_ms: t.correction,
        samples: t.len as u32,
        datagrams: t.datagrams,
        last_received_ms: t.last_received_ms,
        last_export_ms: t.last_export_ms,
    }
}

/// Subtracts `correction_ms` from the start and end times of `batch`'s rows from `from` on
/// (saturating at 0 and `u64::MAX`).
pub fn correct(batch: &mut pharos_model::flow::FlowBatch, from: usize, correction_ms: i64) {
    if correction_ms == 0 {
        return;
    }
    let shift = |v: &mut u64| {
        *v = if correction_ms > 0 {
            v.saturating_sub(correction_ms as u64)
        } else {
            v.saturating_add(correction_ms.unsigned_abs())
        }
    };
    let to = batch.len();
    for v in &mut batch.start_ms[from.min(to)..to] {
        shift(v);
    }
    for v in &mut batch.end_ms[from.min(to)..to] {
        shift(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000_000;
    const YEAR_MS: i64 = 31_536_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(offset_ms: i64, received: u64) -> (u64, u64) {
        ((received as i64 + offset_ms) as u64, received)
    }

    #[test]
    fn a_year_behind_is_corrected_from_the_first_datagram_and_reported() {
        let mut e = ClockEstimator::new(10);
        for i in 0..20u64 {
            let (x, r) = at(-YEAR_MS + (i as i64 % 3) * 7, NOW + i * 1000);
            let o = e.observe(ip("192.0.2.1"), 0, x, r);
            assert!(
                (o.correction_ms + YEAR_MS).abs() < 20,
                "datagram {i}: {o:?}"
            );
            assert_eq!(o.urgent, i == 0, "datagram {i}");
            if i == 0 {
                e.entry(ip("192.0.2.1"), 0);
            }
        }
        let c = e.entry(ip("192.0.2.1"), 0).unwrap();
        assert!((c.offset_ms + YEAR_MS).abs() < 20, "{c:?}");
        assert_eq!(c.samples as usize, SAMPLES);
        assert_eq!(c.datagrams, 20);
    }

    #[test]
    fn a_synchronised_exporter_is_left_as_it_is() {
        let mut e = ClockEstimator::new(10);
        // v9/IPFIX: whole export seconds, so up to a second "behind", plus transit
        for i in 0..40u64 {
            let r = NOW + i * 333;
            let x = (r / 1000) * 1000;
            let o = e.observe(ip("192.0.2.1"), 7, x, r);
            assert_eq!(o.correction_ms, 0);
        }
        let c = e.entry(ip("192.0.2.1"), 7).unwrap();
        assert!((-1000..=0).contains(&c.offset_ms), "{c:?}");
        assert_eq!(c.correction_ms, 0);
    }

    #[test]
    fn outliers_do_not_move_the_estimate_nor_the_others_correction() {
        let mut e = ClockEstimator::new(10);
        let mut corrections = Vec::new();
        for i in 0..30u64 {
            // 90 s ahead, but every fifth datagram sat 5 s in a queue and one has a garbled time
            let off = match i {
                17 => 400 * 86_400_000,
                i if i % 5 == 4 => 85_000,
                _ => 90_000,
            };
            let (x, r) = at(off, NOW + i * 100);
            corrections.push(e.observe(ip("192.0.2.9"), 0, x, r).correction_ms);
        }
        let c = e.entry(ip("192.0.2.9"), 0).unwrap();
        assert_eq!(c.offset_ms, 90_000, "{c:?}");
        // every datagram agreeing with the median (within 2 s) gets the median
        for (i, &k) in corrections.iter().enumerate().skip(1) {
            if i != 17 && i % 5 != 4 {
                assert_eq!(k, 90_000, "datagram {i}");
            }
        }
        // a datagram far from the median is taken at its own offset (its flows share its clock)
        assert_eq!(corrections[17], 400 * 86_400_000);
    }

    #[test]
    fn a_clock_step_is_followed_at_once_and_the_median_follows_after_half_the_window() {
        let mut e = ClockEstimator::new(10);
        let a = ip("198.51.100.1");
        for i in 0..SAMPLES as u64 {
            let (x, r) = at(-YEAR_MS, NOW + i * 1000);
            e.observe(a, 0, x, r);
        }
        e.entries();
        // NTP fixes the clock: the first synchronised datagram is not shifted a year ahead
        let mut urgent = false;
        for i in 0..SAMPLES as u64 {
            let (x, r) = at(-30, NOW + 100_000 + i * 1000);
            let o = e.observe(a, 0, x, r);
            assert_eq!(o.correction_ms, 0, "datagram {i} after the step");
            urgent |= o.urgent;
        }
        assert!(urgent, "the end of the correction is published at once");
        let c = e.entry(a, 0).unwrap();
        assert_eq!((c.offset_ms, c.correction_ms), (-30, 0));
    }

    #[test]
    fn exporters_and_domains_are_separate_and_bounded() {
        let mut e = ClockEstimator::new(2);
        let a = ip("192.0.2.1");
        let b = ip("2001:db8::1");
        let (x, r) = at(90_000, NOW);
        assert_eq!(e.observe(a, 0, x, r).correction_ms, 90_000);
        let (x, r) = at(-5_000, NOW);
        assert_eq!(e.observe(a, 1, x, r).correction_ms, -5_000);
        assert_eq!(e.len(), 2);
        // the limit is reached: a third is corrected by its own offset, untracked
        let (x, r) = at(-YEAR_MS, NOW);
        assert_eq!(e.observe(b, 0, x, r).correction_ms, -YEAR_MS);
        let (x, r) = at(100, NOW);
        assert_eq!(e.observe(b, 0, x, r).correction_ms, 0);
        assert_eq!(e.untracked(), 2);
        assert_eq!(e.len(), 2);
        assert!(e.entry(b, 0).is_none());
        assert_eq!(e.entry(a, 0).unwrap().offset_ms, 90_000);
        assert_eq!(e.entry(a, 1).unwrap().offset_ms, -5_000);
        // an hour of silence forgets them, making room
        assert!(e.expire(NOW + IDLE_MS).is_empty());
        let mut gone = e.expire(NOW + IDLE_MS + 1);
        gone.sort();
        assert_eq!(gone, [(a, 0), (a, 1)]);
        assert!(e.is_empty());
        let (x, r) = at(-YEAR_MS, NOW + IDLE_MS + 2);
        e.observe(b, 0, x, r);
        assert_eq!(e.entry(b, 0).unwrap().offset_ms, -YEAR_MS);
    }

    #[test]
    fn hovering_at_the_bound_does_not_flip_the_correction() {
        let mut e = ClockEstimator::new(10);
        let a = ip("192.0.2.1");
        let mut flips = 0;
        let mut last = 0;
        for i in 0..60u64 {
            let off = [2_100, 1_900, 1_500, 2_050][i as usize % 4];
            let (x, r) = at(off, NOW + i * 1000);
            let c = e.observe(a, 0, x, r).correction_ms;
            if (c == 0) != (last == 0) {
                flips += 1;
            }
            last = c;
        }
        assert!(flips <= 1, "{flips} flips");
    }

    #[test]
    fn correction_shifts_only_the_datagrams_rows() {
        use pharos_model::flow::{FlowBatch, FlowRecord};
        let mut b = FlowBatch::new();
        for t in [1_000u64, 2_000, 3_000] {
            b.push(&FlowRecord {
                start_ms: t,
                end_ms: t + 500,
                ..FlowRecord::default()
            });
        }
        correct(&mut b, 1, -YEAR_MS);
        correct(&mut b, 2, 2_500);
        assert_eq!(
            b.start_ms,
            [1_000, 2_000 + YEAR_MS as u64, 500 + YEAR_MS as u64]
        );
        assert_eq!(
            b.end_ms,
            [1_500, 2_500 + YEAR_MS as u64, 1_000 + YEAR_MS as u64]
        );
        correct(&mut b, 0, i64::MAX);
        assert_eq!(b.start_ms, [0, 0, 0]);
    }
}
