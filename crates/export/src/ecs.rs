//! Elastic Common Schema documents (nested objects, one per line).

use serde_json::{Map, Value, json};

use crate::ExportOptions;
use crate::fields::ECS_VERSION;
use crate::record::{Record, ip_protocol};

fn time(t: &pharos_model::Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Sets `path` (dotted) in `o`, creating the intermediate objects.
fn set(o: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        Some((head, rest)) if head != "@timestamp" => {
            let child = o
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = child {
                set(m, rest, v);
            }
        }
        _ => {
            o.insert(path.to_string(), v);
        }
    }
}

/// ECS `event.kind`, `event.category` and `event.type` of a Pharos kind.
fn categorisation(r: &Record) -> (&'static str, &'static [&'static str], &'static str) {
    let verdict = match r.action.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("drop" | "deny" | "reject" | "block" | "blocked" | "denied" | "dropped") => "denied",
        Some("pass" | "allow" | "accept" | "permit" | "allowed") => "allowed",
        _ => "info",
    };
    match r.kind {
        "ddos" | "intrusion" => ("alert", &["intrusion_detection", "network"], verdict),
        "web-attack" => ("alert", &["intrusion_detection", "web"], verdict),
        "virus" => ("alert", &["malware", "intrusion_detection"], verdict),
        "botnet" => ("alert", &["malware", "network"], verdict),
        "voip-vocn" | "traffic-flows" | "session-table" => ("alert", &["network"], "info"),
        "system-alarm" => ("alert", &["host"], "info"),
        "system-event" => ("alert", &["configuration"], "change"),
        "system-access-log" => ("event", &["authentication"], "info"),
        "user-activity-log" => ("event", &["session"], "info"),
        "dpi-log" => ("event", &["network"], verdict),
        "vulnerability-scan-log" => ("alert", &["vulnerability"], "info"),
        "firewall-traffic-log" => (
            "event",
            &["network"],
            if verdict == "info" {
                "connection"
            } else {
                verdict
            },
        ),
        "resource-utilization-log" | "counters" => ("metric", &["host"], "info"),
        _ => ("event", &["host"], "info"),
    }
}

/// Pharos severity as ECS `event.severity`: info 1, low 2, middle 3, high 4, critical 5.
fn severity_number(s: pharos_model::Severity) -> u8 {
    pharos_model::Severity::ALL
        .iter()
        .position(|x| *x == s)
        .map_or(0, |i| i as u8 + 1)
}

/// The ECS document of `r`.
pub(crate) fn document(r: &Record, opts: &ExportOptions<'_>) -> Value {
    let mut o = Map::new();
    let (kind, category, etype) = categorisation(r);
    set(&mut o, "@timestamp", json!(time(&r.time)));
    set(&mut o, "ecs.version", json!(ECS_VERSION));
    set(&mut o, "message", json!(r.summary));
    set(&mut o, "event.id", json!(r.id.to_string()));
    set(&mut o, "event.kind", json!(kind));
    set(&mut o, "event.category", json!(category));
    set(&mut o, "event.type", json!([etype]));
    set(&mut o, "event.action", json!(r.identifier));
    set(&mut o, "event.severity", json!(severity_number(r.severity)));
    set(&mut o, "event.created", json!(time(&r.received)));
    set(&mut o, "event.module", json!("pharos"));
    set(&mut o, "event.dataset", json!(format!("pharos.{}", r.kind)));
    if let Some(t) = &r.start {
        set(&mut o, "event.start", json!(time(t)));
    }
    if let Some(t) = &r.end {
        set(&mut o, "event.end", json!(time(t)));
    }
    if let Some(raw) = &r.raw {
        set(&mut o, "event.original", json!(raw));
    }
    if let Some(a) = r.src.first() {
        set(&mut o, "source.ip", json!(a.to_string()));
    }
    if let Some(p) = r.src_ports.first() {
        set(&mut o, "source.port", json!(p));
    }
    if let Some(n) = r.src_as {
        set(&mut o, "source.as.number", json!(n));
    }
    if let Some(a) = r.dst.first() {
        set(&mut o, "destination.ip", json!(a.to_string()));
    }
    if let Some(p) = r.dst_ports.first() {
        set(&mut o, "destination.port", json!(p));
    }
    if let Some(n) = r.dst_as {
        set(&mut o, "destination.as.number", json!(n));
    }
    if let Some(d) = &r.domain {
        set(&mut o, "destination.domain", json!(d));
    }
    if let Some(t) = r.transport {
        set(&mut o, "network.transport", json!(t));
        if let Some(n) = ip_protocol(t) {
            set(&mut o, "network.iana_number", json!(n.to_string()));
        }
    }
    if let Some(a) = &r.application {
        set(&mut o, "network.protocol", json!(a.to_lowercase()));
    }
    if let Some(u) = &r.user {
        set(&mut o, "user.name", json!(u));
        set(&mut o, "related.user", json!([u]));
    }
    if let Some(u) = &r.url {
        set(&mut o, "url.original", json!(u));
    }
    if let Some(m) = &r.http_method {
        set(&mut o, "http.request.method", json!(m));
    }
    if let Some(s) = r.http_status {
        set(&mut o, "http.response.status_code", json!(s));
    }
    if let Some(rule) = &r.rule {
        set(&mut o, "rule.name", json!(rule));
    }
    set(&mut o, "observer.name", json!(r.nsf));
    if let Some(v) = &r.vendor {
        set(&mut o, "observer.vendor", json!(v));
    }
    if let Some(p) = &r.product {
        set(&mut o, "observer.product", json!(p));
    }
    let related: Vec<String> = r.src.iter().chain(&r.dst).map(|a| a.to_string()).collect();
    if !related.is_empty() {
        set(&mut o, "related.ip", json!(related));
    }
    let mut labels = Map::new();
    labels.insert("pharos_kind".into(), json!(r.kind));
    labels.insert("pharos_severity".into(), json!(r.severity.as_str()));
    labels.insert("pharos_instance".into(), json!(opts.instance));
    let mut tags = vec![format!("tlp:{}", opts.restriction.as_str())];
    if let Some(c) = &r.class {
        labels.insert("rsit_taxonomy".into(), json!(c.taxonomy));
        labels.insert("rsit_type".into(), json!(c.kind));
        tags.push(format!("rsit:{}=\"{}\"", c.taxonomy, c.kind));
    }
    if let Some(v) = r.rate_pps {
        labels.insert("rate_pps".into(), json!(v.to_string()));
    }
    if let Some(v) = r.rate_bytes {
        labels.insert("rate_bytes_per_second".into(), json!(v.to_string()));
    }
    if let Some(v) = r.count {
        labels.insert("count".into(), json!(v.to_string()));
    }
    for (k, v) in &r.extra {
        labels.insert((*k).to_string(), json!(v));
    }
    set(&mut o, "labels", Value::Object(labels));
    set(&mut o, "tags", json!(tags));
    Value::Object(o)
}
