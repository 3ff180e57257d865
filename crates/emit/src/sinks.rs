//! The registry of sinks: one line per sink. A `[[subscription]] sink.type` or a POSTed
//! `"sink": {"type": ...}` names one of these; the OpenAPI document lists them.
//!
//! To add a sink: a folder with its configuration (implementing [`SinkConfig`]), its sink
//! (implementing [`crate::sink::Sink`]) and its tests, then one line here.

#[cfg(doc)]
use crate::sink::SinkConfig;
use crate::sink::SinkType;

/// Every sink that configuration and the API may name.
pub static REGISTRY: &[SinkType] = &[
    SinkType::of::<crate::webhook::WebhookConfig>(),
    SinkType::of::<crate::syslog_out::SyslogOutConfig>(),
    SinkType::of::<crate::nats::NatsConfig>(),
];

/// The registered sink whose `type` is `kind`.
pub fn find(kind: &str) -> Option<&'static SinkType> {
    REGISTRY.iter().find(|t| t.kind == kind)
}

/// The `type` names of the registered sinks, in registry order.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|t| t.kind)
}
