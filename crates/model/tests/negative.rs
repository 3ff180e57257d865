//! Invalid documents are rejected with an error naming the offending field.

use pharos_model::{ModelError, json, xml};
use serde_json::{Value, json};

fn alarm(extra: Value) -> Value {
    let mut a =
        json!({"alarm-category": "cpu-alarm", "severity": "high", "usage": 91, "threshold": 80});
    if let (Some(a), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {"nsf-name": "fw-1", "i2nsf-system-detection-alarm": a}})
}

fn ddos(body: Value) -> Value {
    json!({"ietf-i2nsf-monitoring-interface:i2nsf-nsf-event": {"nsf-name": "fw-1", "i2nsf-nsf-detection-ddos": body}})
}

fn err(v: &Value) -> ModelError {
    match json::decode(v) {
        Ok(m) => panic!("accepted {v}: {m:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_valid_alarm_is_accepted_and_gets_its_severity_from_the_alarm() {
    let m = json::decode(&alarm(json!({}))).unwrap();
    assert_eq!(m.common.severity, pharos_model::Severity::High);
    assert_eq!(m.common.nsf_name, "fw-1");
}

#[test]
fn malformed_json_is_rejected() {
    let e = json::decode_str("{\"ietf-i2nsf-monitoring-interface:i2nsf-event\": {").unwrap_err();
    assert!(e.reason.contains("malformed JSON"), "{e}");
    assert!(json::decode_str("[]").is_err());
    assert!(json::decode_str("").is_err());
}

#[test]
fn unknown_identity_is_rejected_at_its_leaf() {
    let e = err(&ddos(
        json!({"attack-type": "smurf", "start-time": "2026-01-15T10:00:00Z", "rule-name": "r"}),
    ));
    assert_eq!(
        e.path,
        "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/attack-type"
    );
    assert!(e.reason.contains("ddos-type"), "{e}");
}

#[test]
fn extension_identity_needs_its_module_prefix() {
    let bare = ddos(
        json!({"attack-type": "memcached-amp-flood", "start-time": "2026-01-15T10:00:00Z", "rule-name": "r"}),
    );
    assert_eq!(
        err(&bare).path,
        "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/attack-type"
    );
    let qualified = ddos(json!({
        "attack-type": "pharos-i2nsf-extensions:memcached-amp-flood",
        "start-time": "2026-01-15T10:00:00Z", "rule-name": "r"}));
    assert!(json::decode(&qualified).is_ok());
    let wrong = ddos(json!({
        "attack-type": "pharos-i2nsf-extensions:syn-flood", "start-time": "2026-01-15T10:00:00Z", "rule-name": "r"}));
    assert!(json::decode(&wrong).is_err());
}

#[test]
fn usage_above_100_is_rejected() {
    let e = err(&alarm(json!({"usage": 101})));
    assert_eq!(e.path, "i2nsf-event/i2nsf-system-detection-alarm/usage");
    assert!(e.reason.contains("0..100"), "{e}");
}

#[test]
fn uint64_as_a_json_number_is_rejected() {
    let e = err(&ddos(
        json!({"start-time": "2026-01-15T10:00:00Z", "rule-name": "r", "attack-rate": 250000}),
    ));
    assert_eq!(
        e.path,
        "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/attack-rate"
    );
    assert!(e.reason.contains("JSON string"), "{e}");
}

#[test]
fn uint8_as_a_json_string_is_rejected() {
    let e = err(&alarm(json!({"usage": "91"})));
    assert_eq!(e.path, "i2nsf-event/i2nsf-system-detection-alarm/usage");
    // the schema's words, never the Rust type
    assert!(
        e.reason.contains("uint8") && e.reason.contains("0..255"),
        "{e}"
    );
    assert!(
        !e.reason.contains("(u8)") && !e.reason.contains("..="),
        "{e}"
    );
}

#[test]
fn missing_nsf_name_is_rejected() {
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm"}}}));
    assert_eq!(e.path, "i2nsf-event/nsf-name");
    assert!(e.reason.contains("mandatory"), "{e}");
}

#[test]
fn missing_rule_name_is_rejected() {
    let e = err(&ddos(json!({"start-time": "2026-01-15T10:00:00Z"})));
    assert_eq!(e.path, "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/rule-name");
}

#[test]
fn interface_state_on_a_cpu_alarm_is_rejected() {
    let e = err(&alarm(json!({"interface-state": "down"})));
    assert_eq!(
        e.path,
        "i2nsf-event/i2nsf-system-detection-alarm/interface-state"
    );
    assert!(e.reason.contains("interface-alarm"), "{e}");
}

#[test]
fn emission_type_without_subscription_is_rejected() {
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw", "acquisition-method": "query", "emission-type": "periodic",
        "i2nsf-system-detection-alarm": {}}}));
    assert_eq!(e.path, "i2nsf-event/emission-type");
}

#[test]
fn changes_on_an_access_violation_are_rejected() {
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw", "i2nsf-system-detection-event": {
            "event-category": "access-violation", "user": "u", "group": ["g"], "ip-address": "192.0.2.1",
            "l4-port-number": 22, "changes": [{"policy-name": "p"}]}}}));
    assert_eq!(e.path, "i2nsf-event/i2nsf-system-detection-event/changes");
}

#[test]
fn two_cases_at_once_are_rejected() {
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw",
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm"},
        "i2nsf-nsf-detection-session-table": {"current-session": 1}}}));
    assert_eq!(e.path, "i2nsf-event");
    assert!(e.reason.contains("exactly one case"), "{e}");
}

#[test]
fn no_case_is_rejected() {
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-log": {"nsf-name": "fw"}}));
    assert_eq!(e.path, "i2nsf-log");
}

#[test]
fn unknown_members_are_rejected() {
    let e = err(&alarm(json!({"colour": "red"})));
    assert_eq!(e.path, "i2nsf-event/i2nsf-system-detection-alarm/colour");
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-alarm": {"nsf-name": "fw"}}));
    assert_eq!(e.path, "ietf-i2nsf-monitoring-interface:i2nsf-alarm");
    // A case of another notification is unknown here.
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-log": {
        "nsf-name": "fw", "i2nsf-system-res-util-log": {}, "i2nsf-traffic-flows": {}}}));
    assert_eq!(e.path, "i2nsf-log/i2nsf-traffic-flows");
}

#[test]
fn bad_addresses_ports_and_times_are_rejected() {
    let e = err(&ddos(
        json!({"start-time": "2026-01-15T10:00:00Z", "rule-name": "r", "attack-src-ip": ["192.0.2.300"]}),
    ));
    assert_eq!(
        e.path,
        "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/attack-src-ip[0]"
    );
    let e = err(&ddos(
        json!({"start-time": "2026-01-15T10:00:00Z", "rule-name": "r", "attack-dst-ip": ["fe80::1%eth0"]}),
    ));
    assert_eq!(
        e.path,
        "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/attack-dst-ip[0]"
    );
    let e = err(&ddos(
        json!({"start-time": "2026-01-15T10:00:00Z", "rule-name": "r", "attack-dst-port": [65536]}),
    ));
    assert_eq!(
        e.path,
        "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/attack-dst-port[0]"
    );
    let e = err(&ddos(json!({"start-time": "yesterday", "rule-name": "r"})));
    assert_eq!(
        e.path,
        "i2nsf-nsf-event/i2nsf-nsf-detection-ddos/start-time"
    );
    let e = err(&ddos(
        json!({"start-time": "2026-01-15T10:00:00Z", "rule-name": "r", "attack-src-ip": "192.0.2.1"}),
    ));
    assert!(e.reason.contains("array"), "{e}");
}

#[test]
fn bad_language_tag_is_rejected() {
    let e = err(&json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw", "language": "english please", "i2nsf-system-detection-alarm": {}}}));
    assert_eq!(e.path, "i2nsf-event/language");
}

#[test]
fn restconf_wrapper_supplies_the_event_time() {
    let v = json!({"ietf-restconf:notification": {
        "eventTime": "2026-01-15T10:00:05Z",
        "ietf-i2nsf-monitoring-interface:i2nsf-event": {"nsf-name": "fw", "i2nsf-system-detection-alarm": {}}}});
    let m = json::decode(&v).unwrap();
    assert_eq!(
        pharos_model::json::encode(&m)["ietf-i2nsf-monitoring-interface:i2nsf-event"]["pharos-i2nsf-extensions:envelope"]
            ["event-time"],
        "2026-01-15T10:00:05Z"
    );
    assert_eq!(m.common.id, None);
    assert_eq!(m.common.source, None);
}

#[test]
fn shared_examples_decode() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/yang/examples");
    let Ok(alarm) = std::fs::read_to_string(dir.join("event-cpu-alarm.json")) else {
        pharos_model::conformance::skip(&format!("no shared examples at {}", dir.display()));
        return;
    };
    json::decode_str(&alarm).unwrap();
    json::decode_str(&std::fs::read_to_string(dir.join("nsf-event-ddos.json")).unwrap()).unwrap();
    let m = xml::decode_netconf(
        &std::fs::read_to_string(dir.join("nc-notif-memory-alarm.xml")).unwrap(),
    )
    .unwrap();
    assert_eq!(m.common.nsf_name, "fw-1");
    assert_eq!(
        m.common
            .event_time
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "2026-01-15T10:00:05Z"
    );
}

#[test]
fn xml_errors_name_the_field() {
    let doc = |body: &str| {
        format!(
            "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\"><eventTime>2026-01-15T10:00:05Z</eventTime>\
             <i2nsf-event xmlns=\"urn:ietf:params:xml:ns:yang:ietf-i2nsf-monitoring-interface\" \
             xmlns:i2nsfmi=\"urn:ietf:params:xml:ns:yang:ietf-i2nsf-monitoring-interface\"><nsf-name>fw</nsf-name>{body}</i2nsf-event></notification>"
        )
    };
    let e = xml::decode_netconf(&doc(
        "<i2nsf-system-detection-alarm><usage>101</usage></i2nsf-system-detection-alarm>",
    ))
    .unwrap_err();
    assert_eq!(e.path, "i2nsf-event/i2nsf-system-detection-alarm/usage");
    let e = xml::decode_netconf(&doc("<i2nsf-system-detection-alarm><alarm-category>i2nsfmi:smurf</alarm-category></i2nsf-system-detection-alarm>")).unwrap_err();
    assert_eq!(
        e.path,
        "i2nsf-event/i2nsf-system-detection-alarm/alarm-category"
    );
    let m = xml::decode_netconf(&doc("<i2nsf-system-detection-alarm><alarm-category>i2nsfmi:cpu-alarm</alarm-category></i2nsf-system-detection-alarm>")).unwrap();
    assert_eq!(m.common.nsf_name, "fw");
    assert!(xml::decode_netconf("<notification").is_err());
    assert!(xml::decode_netconf("").is_err());
    assert!(xml::decode_netconf(&doc("<i2nsf-system-detection-alarm><usage>1</usage><usage>2</usage></i2nsf-system-detection-alarm>")).is_err());
}
