//! What the console's overview needs beside the other routes: `GET /api/v1/overview` (monitored
//! networks, what was dropped and why, ingest counters) and `GET /api/v1/config` (the effective
//! configuration with its secrets redacted, admin only).
//!
//! The figures are read from the process's own metrics (the `/metrics` page), so the console
//! shows the same numbers as Prometheus would.

use axum::extract::State;

use crate::error::ErrorBody;
use crate::json::Json;
use crate::{ApiError, AppState};

/// What the daemon tells the console about itself (set by `pharos run`).
#[derive(Debug, Clone, Default)]
pub struct ConsoleInfo {
    /// Monitored prefixes (`[detect] networks` and groups).
    pub networks: Vec<String>,
    /// The effective configuration, secrets already redacted.
    pub config: serde_json::Value,
    /// The live traffic view fed by the flow stage (`GET /api/v1/traffic`); `None` without flow
    /// collectors.
    pub traffic: Option<crate::traffic::LiveTraffic>,
}

/// One counter sample of the metrics page.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Sample {
    /// Metric name, e.g. `pharos_flow_dropped_total`.
    pub name: String,
    /// Its labels, e.g. `{"reason": "queue_full"}`.
    #[schema(value_type = Object)]
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// Its value.
    pub value: f64,
}

/// The answer of `GET /api/v1/overview`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Overview {
    /// Server time (RFC 3339).
    pub now: String,
    /// Monitored prefixes: traffic to them is "in", from them "out".
    pub networks: Vec<String>,
    /// Every non-zero counter of something dropped, lost, refused, rejected or failed, with its
    /// reason labels.
    pub drops: Vec<Sample>,
    /// Ingest counters (received, stored, written), summed over their labels.
    #[schema(value_type = Object)]
    pub counters: serde_json::Map<String, serde_json::Value>,
}

/// Counters whose name says something was lost.
fn is_drop(name: &str) -> bool {
    name.ends_with("_total")
        && [
            "dropped", "drops", "lost", "refused", "rejected", "errors", "expired", "failures",
        ]
        .iter()
        .any(|w| name.contains(w))
}

/// Ingest counters, by the short name the console shows.
const COUNTERS: &[(&str, &str)] = &[
    ("flows_received", "pharos_flow_records_total"),
    ("flows_stored", "pharos_flow_store_flows_written_total"),
    ("syslog_received", "pharos_syslog_received_total"),
    ("syslog_stored", "pharos_syslog_stored_total"),
    ("pushed", "pharos_push_received_total"),
    ("messages_stored", "pharos_store_stored_total"),
];

/// Parses the Prometheus text exposition: `name{k="v",...} value` lines, comments skipped.
/// Label values keep their escapes undone (`\"`, `\\`, `\n`).
pub fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            None => (head, serde_json::Map::new()),
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap_or(rest))),
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

fn parse_labels(s: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        map.insert(
            k.trim_start_matches(',').trim().to_string(),
            serde_json::Value::String(value),
        );
        rest = &after[end.min(after.len())..];
    }
    map
}

/// The console's overview: monitored networks, non-zero drop counters with their reasons, and
/// ingest counters.
#[utoipa::path(get, path = "/api/v1/overview", tag = "console",
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 401, description = "No token or session", body = ErrorBody)))]
pub(crate) async fn overview(State(state): State<AppState>) -> Json<Overview> {
    let text = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    let samples = parse_samples(&text);
    let mut drops: Vec<Sample> = samples
        .iter()
        .filter(|s| is_drop(&s.name) && s.value > 0.0)
        .cloned()
        .collect();
    drops.sort_by(|a, b| b.value.total_cmp(&a.value));
    let mut counters = serde_json::Map::new();
    for (short, metric) in COUNTERS {
        let sum: f64 = samples
            .iter()
            .filter(|s| s.name == *metric)
            .map(|s| s.value)
            .sum();
        counters.insert((*short).to_string(), serde_json::json!(sum as u64));
    }
    Json(Overview {
        now: crate::views::millis(chrono::Utc::now()),
        networks: state.console.networks.clone(),
        drops,
        counters,
    })
}

/// The effective configuration (defaults filled in), with secrets redacted. Admin only.
#[utoipa::path(get, path = "/api/v1/config", tag = "admin",
    responses(
        (status = 200, description = "The configuration", body = EffectiveConfig),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(crate) async fn config(
    State(state): State<AppState>,
) -> Result<Json<EffectiveConfig>, ApiError> {
    Ok(Json(EffectiveConfig(state.console.config.clone())))
}

/// The effective configuration as `pharos.toml` would give it, every section with its defaults,
/// secrets redacted (docs/config.md describes every key).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct EffectiveConfig(pub serde_json::Value);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_labels_are_read_back() {
        let text = "# HELP x y\n# TYPE pharos_flow_dropped_total counter\n\
            pharos_flow_dropped_total{reason=\"queue_full\",stage=\"a\\\"b\"} 12\n\
            pharos_store_stored_total 7\nbroken line\n";
        let s = parse_samples(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "pharos_flow_dropped_total");
        assert_eq!(s[0].labels["reason"], "queue_full");
        assert_eq!(s[0].labels["stage"], "a\"b");
        assert_eq!(s[0].value, 12.0);
        assert!(is_drop(&s[0].name));
        assert!(!is_drop(&s[1].name));
    }

    #[test]
    fn every_counter_the_overview_sums_is_one_the_daemon_exports() {
        // A renamed metric would silently read 0 (as flows_received once did): each name must
        // appear in another source file of the workspace (where it is registered).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut text = String::new();
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    if p.file_name().is_some_and(|n| n != "target" && n != "tests") {
                        stack.push(p);
                    }
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("overview.rs") {
                    text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
        for (short, metric) in COUNTERS {
            assert!(
                text.contains(&format!("\"{metric}\"")),
                "{short}: {metric} is not a counter any crate registers"
            );
        }
    }
}
