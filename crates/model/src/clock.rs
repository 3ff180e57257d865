//! The process clock: what every stage calls "now" (the receive time of messages, the archive's
//! segment times, detection's wall clock, the API's relative times), in one place.
//!
//! Code that must be testable on another clock takes `now_ms` as a parameter (the detectors, the
//! segment writer's `push`/`tick`, the stores' retention) and only the stage that drives it reads
//! this clock; tests pass their own times.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds (0 if the system clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_this_code_was_written() {
        assert!(super::now_ms() > 1_764_000_000_000);
    }
}
