use super::*;
use crate::dispatch::test_sink::TestSink;
use crate::nats::NatsConfig;
use crate::subscription::SubscriptionSpec;
use crate::syslog_out::SyslogOutConfig;
use crate::webhook::WebhookConfig;

#[test]
fn the_registry_lists_the_sinks_config_and_the_api_may_name() {
    assert_eq!(
        crate::sinks::kinds().collect::<Vec<_>>(),
        vec!["webhook", "syslog", "nats"]
    );
    assert_eq!(crate::sinks::find("syslog").unwrap().keys[0], "address");
    assert!(crate::sinks::find("test").is_none());
}

/// Specs as the closed enum wrote them (derived `Serialize`, internally tagged): stored rows and
/// API answers read back and are written again byte for byte.
#[test]
fn specs_stored_by_earlier_versions_read_back_and_are_written_the_same() {
    for old in [
        r#"{"type":"webhook","url":"https://h.example/x","secret":"k","batch":false,"timeout":"10000ms","ca_file":null,"allow":["h.example"]}"#,
        r#"{"type":"syslog","address":"127.0.0.1:514","transport":"tcp","ca_file":null,"app_name":"pharos","hostname":null,"facility":"local4","max_udp_bytes":2048,"timeout":"10000ms"}"#,
        r#"{"type":"nats","url":"nats://127.0.0.1:4222","subject_prefix":"pharos","creds":null,"token":"t","ca_file":null,"stream":"PHAROS","ack_timeout":"5000ms"}"#,
    ] {
        let spec: SinkSpec = serde_json::from_str(old).unwrap();
        spec.validate().unwrap();
        // durations are written in the largest exact unit now, and read back the same
        let now = old.replace("10000ms", "10s").replace("5000ms", "5s");
        assert_eq!(serde_json::to_string(&spec).unwrap(), now);
        let again: SinkSpec = serde_json::from_str(&now).unwrap();
        assert_eq!(again, spec);
    }
    let spec: SinkSpec = serde_json::from_str(
        r#"{"type":"webhook","url":"https://h.example/x","secret":"k","allow":["h.example"]}"#,
    )
    .unwrap();
    let mut want = WebhookConfig::new("https://h.example/x", "k");
    want.allow = vec!["h.example".into()];
    assert_eq!(spec.config::<WebhookConfig>(), Some(&want));
    assert_eq!(spec.type_name(), "webhook");
}

#[test]
fn an_unknown_missing_or_misplaced_type_is_an_error_naming_it() {
    let err = |v: serde_json::Value| {
        serde_json::from_value::<SinkSpec>(v)
            .unwrap_err()
            .to_string()
    };
    let e = err(serde_json::json!({"type": "carrier-pigeon"}));
    assert!(
        e.contains("carrier-pigeon") && e.contains("`webhook`, `syslog`, `nats`"),
        "{e}"
    );
    // The tests' sink is not in the registry: no file or request can name it.
    assert!(err(serde_json::json!({"type": "test"})).contains("unknown sink type `test`"));
    assert!(err(serde_json::json!({"url": "nats://h:1"})).contains("missing field `type`"));
    assert!(err(serde_json::json!({"type": 7})).contains("`type` must be a string"));
    assert!(err(serde_json::json!("webhook")).contains("`type`"));
    // The sink's own errors come through: an unknown key of a known type.
    let e = err(serde_json::json!({"type": "nats", "url": "nats://h:1", "colour": "red"}));
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn specs_compare_clone_and_downcast_by_type() {
    let a = SinkSpec::new(SyslogOutConfig::new(
        "127.0.0.1:514",
        crate::syslog_out::Transport::Udp,
    ));
    let b = SinkSpec::new(NatsConfig::new("nats://127.0.0.1:4222"));
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    assert!(a.config::<NatsConfig>().is_none());
    let mut c = a.clone();
    c.config_mut::<SyslogOutConfig>().unwrap().app_name = "other".into();
    assert_ne!(a, c);
    let t = TestSink::default();
    assert_eq!(t.spec(), t.spec());
    assert_ne!(t.spec(), TestSink::default().spec());
}

#[test]
fn confine_keeps_api_subscriptions_to_allow_hosts() {
    let allow = vec!["192.0.2.0/24".to_string(), "siem.example.net".to_string()];
    let mut w = SinkSpec::new(WebhookConfig::new("https://hooks.example.net/x", "k"));
    let e = w.confine(&[]).unwrap_err();
    assert!(e.contains("[emit] allow_hosts is empty"), "{e}");
    w.confine(&allow).unwrap();
    assert_eq!(w.config::<WebhookConfig>().unwrap().allow, allow);
    let mut s = SinkSpec::new(SyslogOutConfig::new(
        "[2001:db8::1]:514",
        crate::syslog_out::Transport::Tcp,
    ));
    let e = s.confine(&allow).unwrap_err();
    assert!(
        e.starts_with("sink.syslog.address: host \"2001:db8::1\"")
            && e.contains("192.0.2.0/24, siem.example.net"),
        "{e}"
    );
    let mut n = SinkSpec::new(NatsConfig::new("tls://192.0.2.9:4222"));
    n.confine(&allow).unwrap();
    let mut n = SinkSpec::new(NatsConfig::new("nats://203.0.113.9:4222"));
    assert!(n.confine(&allow).unwrap_err().starts_with("sink.nats.url"));
}

#[test]
fn a_subscription_spec_with_a_registered_sink_round_trips_through_json() {
    let spec: SubscriptionSpec = serde_json::from_value(serde_json::json!({
        "name": "n", "sink": {"type": "nats", "url": "nats://127.0.0.1:4222", "token": "t0ken"}
    }))
    .unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["sink"]["type"], "nats");
    assert_eq!(
        serde_json::from_value::<SubscriptionSpec>(json).unwrap(),
        spec
    );
    let shown = serde_json::to_value(spec.redacted()).unwrap();
    assert_eq!(shown["sink"]["token"], "***");
}
