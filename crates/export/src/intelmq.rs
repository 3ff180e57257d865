//! IntelMQ events: one flat JSON object per message, dotted harmonisation keys, the rest under
//! `extra.`.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::ExportOptions;
use crate::record::Record;

fn time(t: &pharos_model::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The IntelMQ event of `r`.
pub(crate) fn event(r: &Record, opts: &ExportOptions<'_>) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    let (taxonomy, kind) = match &r.class {
        Some(c) => (c.taxonomy, c.kind),
        None => ("other", "undetermined"),
    };
    put("classification.taxonomy", json!(taxonomy));
    put("classification.type", json!(kind));
    put(
        "classification.identifier",
        json!(r.identifier.to_lowercase()),
    );
    put("feed.name", json!(format!("pharos {}", r.kind)));
    put("feed.code", json!("pharos"));
    put("feed.provider", json!(opts.organisation));
    put("time.source", json!(time(&r.time)));
    put("time.observation", json!(time(&r.received)));
    put("event_description.text", json!(r.summary));
    if let Some(a) = r.src.first() {
        put("source.ip", json!(a.to_string()));
    }
    if let Some(p) = r.src_ports.first() {
        put("source.port", json!(p));
    }
    if let Some(n) = r.src_as {
        put("source.asn", json!(n));
    }
    if let Some(a) = r.dst.first() {
        put("destination.ip", json!(a.to_string()));
    }
    if let Some(p) = r.dst_ports.first() {
        put("destination.port", json!(p));
    }
    if let Some(n) = r.dst_as {
        put("destination.asn", json!(n));
    }
    if let Some(t) = r.transport {
        put("protocol.transport", json!(t));
    }
    if let Some(a) = r
        .application
        .as_deref()
        .filter(|a| !a.is_empty() && a.chars().all(|c| (' '..='~').contains(&c)))
    {
        put("protocol.application", json!(a.to_lowercase()));
    }
    if let Some(u) = &r.user {
        put("source.account", json!(u));
    }
    if let Some(u) = &r.url {
        put("destination.url", json!(u));
    }
    if let Some(d) = r
        .domain
        .as_deref()
        .map(|d| d.trim_end_matches('.').to_lowercase())
        .filter(|d| !d.is_empty() && !d.contains([':', '/', ' ']))
    {
        put("destination.fqdn", json!(d));
    }
    if let Some(m) = &r.malware {
        put("malware.name", json!(m));
    }
    if let Some(raw) = &r.raw {
        put(
            "raw",
            json!(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())),
        );
    }
    // extra.*
    put("extra.pharos_id", json!(r.id.to_string()));
    put("extra.kind", json!(r.kind));
    put("extra.severity", json!(r.severity.as_str()));
    put("extra.nsf_name", json!(r.nsf));
    let list = |v: &[std::net::IpAddr]| json!(v.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    if r.src.len() > 1 {
        put("extra.source_ips", list(&r.src));
    }
    if r.dst.len() > 1 {
        put("extra.destination_ips", list(&r.dst));
    }
    if r.src_ports.len() > 1 {
        put("extra.source_ports", json!(r.src_ports));
    }
    if r.dst_ports.len() > 1 {
        put("extra.destination_ports", json!(r.dst_ports));
    }
    for (k, v) in [
        ("extra.vendor", &r.vendor),
        ("extra.product", &r.product),
        ("extra.rule_name", &r.rule),
        ("extra.action", &r.action),
        ("extra.http_method", &r.http_method),
    ] {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    if let Some(s) = r.http_status {
        put("extra.http_status", json!(s));
    }
    if let Some(t) = &r.start {
        put("extra.start_time", json!(time(t)));
    }
    if let Some(t) = &r.end {
        put("extra.end_time", json!(time(t)));
    }
    if let Some(v) = r.rate_pps {
        put("extra.rate_pps", json!(v));
    }
    if let Some(v) = r.rate_bytes {
        put("extra.rate_bytes_per_second", json!(v));
    }
    if let Some(v) = r.count {
        put("extra.count", json!(v));
    }
    for (k, v) in &r.extra {
        put(&format!("extra.{k}"), json!(v));
    }
    Value::Object(o)
}
