use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::*;
use crate::Change;
use crate::webhook::test_support::{item, sample};

const DEADLINE: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn items() -> Vec<Item> {
    let mut alarm = sample("system-alarm", 42);
    if let Kind::SystemAlarm(a) = &mut alarm.kind {
        a.alarm_category = Some(pharos_model::ident::SystemAlarmCategory::CpuAlarm);
    }
    vec![
        item(7, Change::Created, sample("ddos", 41)),
        item(8, Change::Updated, sample("ddos", 41)),
        item(9, Change::Created, alarm),
        item(10, Change::Created, sample("firewall-traffic-log", 43)),
    ]
}

/// Every message of `stream`, in stream order, through a pull consumer.
async fn read_back(
    client: &async_nats::Client,
    stream: &str,
    n: usize,
) -> Vec<async_nats::jetstream::Message> {
    use async_nats::jetstream::consumer::pull;
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(stream).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut got = Vec::new();
    let end = Instant::now() + DEADLINE;
    while got.len() < n {
        assert!(
            Instant::now() < end,
            "only {} of {n} messages came back",
            got.len()
        );
        let mut batch = consumer
            .fetch()
            .max_messages(n - got.len())
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        while let Some(m) = batch.next().await {
            got.push(m.unwrap());
        }
    }
    got
}

#[tokio::test]
async fn nats_publishes_each_item_to_its_kind_subject_in_order_and_dedups_a_retried_publish() {
    let Some(server) = pharos_model::conformance::NatsServer::start() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.port);
    let mut sink = NatsConfig::new(&url).build().unwrap();
    let its = items();
    sink.deliver(&its).await.unwrap();
    // The same item again (a retry after a lost ack): JetStream keeps one copy.
    sink.deliver(&its[1..2]).await.unwrap();

    let client = async_nats::connect(&url).await.unwrap();
    let mut stream = jetstream::new(client.clone())
        .get_stream("PHAROS")
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 4);
    let got = read_back(&client, "PHAROS", 4).await;
    let subjects: Vec<&str> = got.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "pharos.events.nsf.ddos",
            "pharos.events.nsf.ddos",
            "pharos.alarms.system.cpu",
            "pharos.logs.nsf.firewall-traffic"
        ]
    );
    for (m, it) in got.iter().zip(&its) {
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v, crate::webhook::document(it));
        let h = m.headers.as_ref().unwrap();
        assert_eq!(h.get("Nats-Msg-Id").unwrap().as_str(), msg_id(it));
    }
    assert_eq!(msg_id(&its[0]), "41-7");
    assert!(sink.describe().contains(&url));
}

#[tokio::test]
async fn nats_unreachable_server_is_retry_and_a_later_server_is_used() {
    let port = free_port();
    let mut sink = NatsConfig::new(format!("nats://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let e = sink.deliver(&items()).await.unwrap_err();
    assert!(matches!(e, SinkError::Retry(_)), "{e}");
    let Some(server) = pharos_model::conformance::NatsServer::start() else {
        return;
    };
    let mut c = NatsConfig::new(format!("nats://127.0.0.1:{}", server.port));
    c.ack_timeout = ConfigDuration(Duration::from_secs(1));
    let mut sink = c.build().unwrap();
    sink.deliver(&items()).await.unwrap();
    // The server goes away: the next delivery is Retry, not Ok.
    drop(server);
    let e = sink.deliver(&items()[..1]).await.unwrap_err();
    assert!(matches!(e, SinkError::Retry(_)), "{e}");
}

#[test]
fn nats_subjects_are_stable_and_use_only_lowercase_tokens() {
    let mut seen = std::collections::HashSet::new();
    for m in pharos_model::samples::samples() {
        let s = subject("pharos", &m.kind);
        assert!(s.split('.').all(is_token), "{s}");
        assert_eq!(s.split('.').count(), 4, "{s}");
        seen.insert(s);
    }
    assert!(seen.contains("pharos.events.nsf.ddos"));
    assert!(seen.contains("pharos.counters.nsf.snapshot"));
    assert!(seen.contains("pharos.events.nsf.web-attack"));
}

#[test]
fn nats_config_errors_name_the_key() {
    assert_eq!(
        NatsConfig::new("http://x:4222").build().unwrap_err().key,
        "nats.url"
    );
    assert_eq!(
        NatsConfig::new("nats://u:p@x:4222")
            .build()
            .unwrap_err()
            .key,
        "nats.url"
    );
    let mut c = NatsConfig::new("nats://x:4222");
    c.subject_prefix = "Pharos.>".into();
    assert_eq!(c.build().unwrap_err().key, "nats.subject_prefix");
    c.subject_prefix = "site-a.pharos".into();
    c.build().unwrap();
    c.token = Some(Secret("tok".into()));
    c.creds = Some("/x.creds".into());
    assert_eq!(c.build().unwrap_err().key, "nats.token");
    c.creds = None;
    let sink = c.build().unwrap();
    assert!(!format!("{sink:?} {}", sink.describe()).contains("tok\""));
    assert!(!sink.describe().contains("tok"));
    let c: NatsConfig =
        serde_json::from_value(serde_json::json!({"url": "nats://x:4222"})).unwrap();
    assert_eq!(
        (c.subject_prefix.as_str(), c.stream.as_str()),
        ("pharos", "PHAROS")
    );
    assert_eq!(c.ack_timeout.0, Duration::from_secs(5));
}

#[test]
fn nats_config_is_registered_and_writes_its_keys_in_order() {
    assert!(crate::sinks::find("nats").is_some());
    let mut c = NatsConfig::new("nats://127.0.0.1:4222");
    c.token = Some(Secret("t".into()));
    crate::sink::assert_keys_round_trip(c);
}
