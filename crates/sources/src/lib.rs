//! Pharos sources: UDP flow collectors and syslog listeners.

pub mod flow;
pub mod syslog;
pub mod tls;

#[cfg(test)]
mod test_metrics;
