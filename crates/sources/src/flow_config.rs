//! `[flow]` of `pharos.toml`: the UDP flow collectors (NetFlow v5/v9, IPFIX, sFlow v5), read with
//! their documented defaults and checked by [`FlowConfig::validate`]; [`FlowConfig::to_udp_config`]
//! gives the collector's own settings.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use pharos_model::config::{ConfigDuration, ConfigError};
use serde::{Deserialize, Serialize};

use crate::flow::FlowUdpConfig;

/// `[flow]` settings (docs/config.md).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Whether `pharos run` starts the flow collectors.
    pub enabled: bool,
    /// UDP addresses to listen on; every protocol is accepted on every address (version sniffing).
    /// Host names with a port (`localhost:2055`) are resolved.
    #[serde(deserialize_with = "pharos_model::listen::deserialize_list")]
    pub listen: Vec<SocketAddr>,
    /// Receive buffer asked for each socket, bytes (capped by net.core.rmem_max unless root).
    pub receive_buffer_bytes: usize,
    /// NetFlow v9 / IPFIX templates not refreshed for this long are forgotten.
    pub template_timeout: ConfigDuration,
    /// Decoded batches that may wait for the next stage before batches are dropped and counted.
    pub queue: usize,
    /// Bytes of received datagrams that may wait for each listener's decoder (absorbs bursts
    /// faster than decoding); beyond it reads are dropped and counted. Default: 1/16 of memory,
    /// between 64 MiB and 1 GiB.
    pub backlog_bytes: usize,
    /// Per-exporter sampling rate ("192.0.2.1" = 1000) replacing what the exporter says.
    pub sampling: BTreeMap<IpAddr, u32>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        let d = FlowUdpConfig::default();
        Self {
            enabled: true,
            listen: d.listen,
            receive_buffer_bytes: d.receive_buffer_bytes,
            template_timeout: d.template_timeout.into(),
            queue: d.queue,
            backlog_bytes: d.backlog_bytes,
            sampling: BTreeMap::new(),
        }
    }
}

impl FlowConfig {
    /// The collector settings these keys stand for.
    pub fn to_udp_config(&self) -> FlowUdpConfig {
        FlowUdpConfig {
            listen: self.listen.clone(),
            receive_buffer_bytes: self.receive_buffer_bytes,
            template_timeout: self.template_timeout.get(),
            queue: self.queue,
            backlog_bytes: self.backlog_bytes,
            sampling: self.sampling.iter().map(|(a, r)| (*a, *r)).collect(),
            // The built-in listeners are best effort (another collector may hold 2055); the
            // addresses a user chose must bind or start-up fails.
            skip_unbindable: self.listen == FlowUdpConfig::default().listen,
            ..Default::default()
        }
    }

    /// Checks the keys; the error names the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, expected: &str| {
            Err(ConfigError::new("flow", key, value, expected))
        };
        if self.enabled && self.listen.is_empty() {
            return bad(
                "listen",
                "[]".into(),
                "give at least one address like \"0.0.0.0:2055\", or set enabled = false",
            );
        }
        if self.queue == 0 {
            return bad("queue", "0".into(), "must be at least 1");
        }
        if self.backlog_bytes < 1 << 20 {
            return bad(
                "backlog_bytes",
                self.backlog_bytes.to_string(),
                "must be at least 1048576 (1 MiB)",
            );
        }
        if self.receive_buffer_bytes < 65_536 {
            return bad(
                "receive_buffer_bytes",
                self.receive_buffer_bytes.to_string(),
                "must be at least 65536",
            );
        }
        if self.template_timeout.is_zero() {
            return bad(
                "template_timeout",
                "\"0s\"".into(),
                "must be positive, e.g. \"30m\"",
            );
        }
        if let Some((a, _)) = self.sampling.iter().find(|(_, r)| **r == 0) {
            return Err(ConfigError::new(
                "flow.sampling",
                format!("\"{a}\""),
                0,
                "a sampling rate is 1 in N packets, N at least 1",
            ));
        }
        Ok(())
    }
}
