//! How a detection reads: its phase, attack type, JSON envelope (stdout of `pharos detect --json`,
//! stdin of the hook) and one readable line.

use pharos_detect::{Detection, ScanKind};
use pharos_model::ident::Identity;

/// `started`, `updated`, `ended` (attacks) or `scan`.
pub fn phase(d: &Detection) -> &'static str {
    match d {
        Detection::Attack(u) => u.phase(),
        Detection::Scan(_) => "scan",
    }
}

/// The attack type as the event names it (`syn-flood`, ...), else the traffic class.
pub fn attack_type(d: &Detection) -> String {
    match d {
        Detection::Attack(u) => match u.report().summary.attack_type {
            Some(t) => t.name().to_string(),
            None => format!("{}-flood", u.report().summary.class.name()),
        },
        Detection::Scan(s) => match s.kind {
            ScanKind::PortScan => "port-scan".into(),
            ScanKind::HostSweep => "host-sweep".into(),
        },
    }
}

/// The JSON envelope of one detection (stdout of `--json`, stdin of the hook).
pub fn envelope(d: &Detection) -> serde_json::Value {
    let m = d.message();
    let mut doc = serde_json::json!({
        "event-time": m.common.event_time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "phase": phase(d),
        "notification": pharos_model::json::encode(m),
    });
    if let Detection::Attack(u) = d {
        doc["attack-id"] = u.id().to_string().into();
    }
    doc
}

/// One readable line: time, phase, kind, attack type, victim, rates, rule.
pub fn readable(d: &Detection) -> String {
    let m = d.message();
    let time = m
        .common
        .event_time
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match d {
        Detection::Attack(u) => {
            let s = &u.report().summary;
            format!(
                "{time} {:<7} {} {:<18} victim={} avg={:.0} pps {} peak={:.0} pps {} rule={:?}",
                u.phase(),
                m.kind.name(),
                attack_type(d),
                u.id().victim,
                s.avg_pps,
                bits(s.avg_bytes_ps),
                s.peak_pps,
                bits(s.peak_bytes_ps),
                s.rule
            )
        }
        Detection::Scan(s) => {
            let target = match (s.dst, s.port) {
                (Some(h), _) => format!("host={h}"),
                (None, Some(p)) => format!("port={p}"),
                (None, None) => String::new(),
            };
            format!(
                "{time} scan    {} {:<18} src={} {target} distinct={}{}",
                m.kind.name(),
                attack_type(d),
                s.src,
                s.distinct,
                m.rule_name()
                    .map(|r| format!(" rule={r:?}"))
                    .unwrap_or_default()
            )
        }
    }
}

/// Bytes/s as bit/s with a unit.
fn bits(bytes_ps: f64) -> String {
    let b = bytes_ps * 8.0;
    match b {
        b if b >= 1e9 => format!("{:.2} Gbit/s", b / 1e9),
        b if b >= 1e6 => format!("{:.2} Mbit/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kbit/s", b / 1e3),
        b => format!("{b:.0} bit/s"),
    }
}
