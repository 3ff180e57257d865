//! The flow path's loss report: every [`EVERY`] the flow consumer compares the loss counters of
//! the collector (kernel, decoder, queue), the archive writer and the detection queue with the
//! last report and logs one warning naming what was lost where, and why. The counters themselves
//! are metrics; this makes a loss visible to someone who reads only the daemon's log, at most one
//! line per period, whatever the rate of loss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pharos_sources::flow::{CollectorStats, StatsSnapshot};

/// How often losses are reported (when there were any).
pub const EVERY: Duration = Duration::from_secs(10);

/// Loss counters at the time of the last report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Losses {
    /// Datagrams the kernel dropped on a full socket buffer.
    pub kernel_datagrams: u64,
    /// Datagrams Pharos dropped (malformed, not a flow, queue full).
    pub datagrams: u64,
    /// Decoded flows dropped because the flow stage's queue was full.
    pub queue_flows: u64,
    /// Flows the archive writer dropped.
    pub archive_flows: u64,
    /// Batches detection skipped because its queue was full (still archived).
    pub detect_batches: u64,
}

impl Losses {
    fn since(&self, before: &Losses) -> Losses {
        Losses {
            kernel_datagrams: self
                .kernel_datagrams
                .saturating_sub(before.kernel_datagrams),
            datagrams: self.datagrams.saturating_sub(before.datagrams),
            queue_flows: self.queue_flows.saturating_sub(before.queue_flows),
            archive_flows: self.archive_flows.saturating_sub(before.archive_flows),
            detect_batches: self.detect_batches.saturating_sub(before.detect_batches),
        }
    }

    /// The readable report of these losses; `None` when nothing was lost.
    pub fn describe(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.kernel_datagrams, "datagrams dropped by the kernel (socket buffer full: raise [flow] receive_buffer_bytes and net.core.rmem_max)"),
            (self.datagrams, "datagrams dropped by the collector (malformed, not a flow, or queue full: pharos_flow_dropped_total by reason)"),
            (self.queue_flows, "flows dropped on the full flow queue (the flow stage fell behind: pharos_flow_records_dropped_total)"),
            (self.archive_flows, "flows not archived (pharos_flow_store_dropped_total by reason)"),
            (self.detect_batches, "flow batches not run through detection (its queue was full; they were archived)"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Compares the counters with the last report every [`EVERY`].
pub struct LossReport {
    collector: Option<Arc<CollectorStats>>,
    last: Losses,
    next: Instant,
}

impl LossReport {
    /// A report over `collector`'s counters (none when only the consumer's own are known).
    pub fn new(collector: Option<Arc<CollectorStats>>) -> Self {
        Self {
            collector,
            last: Losses::default(),
            next: Instant::now() + EVERY,
        }
    }

    /// Logs the losses since the last report when one is due; `archive` and `detect` are the
    /// consumer's own totals (flows the archive dropped, batches detection skipped).
    pub fn poll(&mut self, archive: u64, detect: u64) {
        if Instant::now() < self.next {
            return;
        }
        self.next = Instant::now() + EVERY;
        let c = self
            .collector
            .as_ref()
            .map_or_else(StatsSnapshot::default, |s| s.snapshot());
        let now = Losses {
            kernel_datagrams: c.kernel_drops,
            datagrams: c.dropped_datagrams,
            queue_flows: c.queue_full_records,
            archive_flows: archive,
            detect_batches: detect,
        };
        if let Some(text) = now.since(&self.last).describe() {
            tracing::warn!("flows lost in the last {} s: {text}", EVERY.as_secs());
        }
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_losses_since_the_last_report_are_named() {
        let before = Losses {
            kernel_datagrams: 5,
            archive_flows: 10,
            ..Default::default()
        };
        let now = Losses {
            kernel_datagrams: 5,
            archive_flows: 25,
            detect_batches: 2,
            ..Default::default()
        };
        let text = now.since(&before).describe().unwrap();
        assert!(text.starts_with("15 flows not archived"), "{text}");
        assert!(
            text.contains("2 flow batches not run through detection"),
            "{text}"
        );
        assert!(!text.contains("kernel"), "{text}");
        assert_eq!(before.since(&before).describe(), None);
    }
}
