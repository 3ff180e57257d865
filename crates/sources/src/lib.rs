//! Pharos sources: UDP flow collectors and syslog listeners.

pub mod flow;
pub mod syslog;

#[cfg(test)]
mod test_metrics;
