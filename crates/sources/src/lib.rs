//! Pharos sources: UDP flow collectors and syslog listeners.

// Only the socket module (recvmmsg, SO_RXQ_OVFL) may use unsafe code; it allows it there.
#![deny(unsafe_code)]

pub mod flow;
mod flow_config;
pub use flow_config::FlowConfig;
pub mod syslog;

#[cfg(test)]
mod test_metrics;
