//! End-to-end: the message analysis stage of the real `pharos run` (`[notify]`, `[state]`):
//! dedup with count and first/last seen, correlation of logs into a brute-force event, alarms from
//! resource-utilisation logs, and a silent source.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use pharos_model::ident::UserActivityType;
use pharos_model::{
    AdditionalInfo, FirewallTrafficLog, IntrusionEvent, Kind, Message, ResourceUtilizationLog,
    UserActivityLog,
};
use serde_json::Value;
use support::Instance;

const CONFIG: &str = r#"
[notify]
dedup_window = "2s"

[[notify.correlate]]
name = "ssh-bf"
activity = "failed-login"
group_by = "src"
count = 5
seconds = 30
emit = "brute-force"

[state]
cpu_threshold = 80
hysteresis = 5
silence = { "fw-silent" = "2s" }
"#;

fn intrusion(src: [u8; 4]) -> Message {
    Message::new(
        "ids-1",
        Kind::Intrusion(IntrusionEvent {
            src_ip: Some(IpAddr::from(src)),
            src_port: None,
            dst_ip: Some(IpAddr::from([192, 0, 2, 10])),
            dst_port: Some(443),
            rule_name: "et-exploit-1".into(),
            protocol: None,
            app: None,
            attack_type: None,
        }),
    )
}

fn failed_login(src: [u8; 4]) -> Message {
    Message::new(
        "sshd-1",
        Kind::UserActivityLog(UserActivityLog {
            user: "root".into(),
            group: vec!["unknown".into()],
            ip_address: IpAddr::from(src),
            l4_port_number: 40000,
            authentication: None,
            online_duration: None,
            logout_duration: None,
            additional_info: AdditionalInfo {
                activity_type: Some(UserActivityType::FailedLogin),
                cause: None,
            },
        }),
    )
}

fn cpu(nsf: &str, usage: u8) -> Message {
    Message::new(
        nsf,
        Kind::ResourceUtilizationLog(ResourceUtilizationLog {
            system_status: None,
            cpu_usage: Some(usage),
            memory_usage: None,
            disks: Vec::new(),
            session_num: None,
            process_num: None,
            interfaces: Vec::new(),
        }),
    )
}

async fn push(inst: &Instance, msgs: &[Message]) -> Value {
    let body: Vec<Value> = msgs.iter().map(pharos_model::json::encode).collect();
    support::push_ok(inst, Value::Array(body).to_string()).await
}

async fn messages(inst: &Instance, query: &str) -> Vec<Value> {
    let v = support::get_json(inst, &format!("/api/v1/messages?limit=1000&{query}")).await;
    v["items"].as_array().cloned().unwrap_or_default()
}

fn envelope(m: &Value) -> Value {
    let n = &m["notification"];
    let top = n
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or(Value::Null);
    top["pharos-i2nsf-extensions:envelope"].clone()
}

/// Polls `f` until it gives `Some`, for up to 20 s.
async fn eventually<T>(what: &str, inst: &Instance, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 20 s\n{}",
            inst.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_events_fold_into_one_stored_event_with_count_and_first_last_seen() {
    let inst = Instance::start(CONFIG);
    let v = push(&inst, &[intrusion([198, 51, 100, 1])]).await;
    assert_eq!(v["stored"], 1, "{v}");
    let first_id = v["ids"][0].as_str().unwrap().to_string();
    // four more identical ones within the window: acknowledged, folded (nothing new stored)
    for _ in 0..4 {
        let v = push(&inst, &[intrusion([198, 51, 100, 1])]).await;
        assert_eq!(v["stored"], 0, "{v}");
    }
    // another source is another notification
    let v = push(&inst, &[intrusion([198, 51, 100, 2])]).await;
    assert_eq!(v["stored"], 1, "{v}");

    let folded = eventually("the fold's count", &inst, async || {
        let m = support::get_json(&inst, &format!("/api/v1/messages/{first_id}")).await;
        (envelope(&m)["count"] == "5").then_some(m)
    })
    .await;
    let env = envelope(&folded);
    assert!(
        env["first-seen"].is_string() && env["last-seen"].is_string(),
        "{env}"
    );
    assert!(
        env["first-seen"].as_str() <= env["last-seen"].as_str(),
        "{env}"
    );
    let stored = messages(&inst, "kind=intrusion").await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    let metrics = support::metrics_text(&inst).await;
    assert!(
        metrics.contains("pharos_notify_folded_total 4"),
        "{metrics}"
    );
    if support::yanglint_validate(&[folded["notification"].clone()]).unwrap() {
        eprintln!("the folded event validates with yanglint");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_stored_and_raise_one_brute_force_event() {
    let inst = Instance::start(CONFIG);
    let logins: Vec<Message> = (0..6).map(|_| failed_login([203, 0, 113, 7])).collect();
    let v = push(&inst, &logins).await;
    // every log is stored; the fifth raises the correlated event, stored with them
    assert_eq!(v["stored"], 7, "{v}");
    let logs = messages(&inst, "kind=user-activity-log").await;
    assert_eq!(logs.len(), 6);
    let raised = messages(&inst, "kind=intrusion").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let ev = raised[0]["notification"].to_string();
    assert!(
        ev.contains("brute-force") && ev.contains("ssh-bf") && ev.contains("203.0.113.7"),
        "{ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_over_threshold_raises_one_alarm_until_it_rearms_and_a_silent_nsf_is_alarmed() {
    let inst = Instance::start(CONFIG);
    push(&inst, &[cpu("fw-1", 50), cpu("fw-1", 91), cpu("fw-1", 95)]).await;
    push(&inst, &[cpu("fw-1", 70), cpu("fw-1", 85)]).await;
    let alarms = messages(&inst, "kind=system-alarm&nsf=fw-1").await;
    assert_eq!(
        alarms.len(),
        2,
        "one at 91, one at 85 after re-arming at 70: {alarms:?}"
    );
    assert!(
        alarms
            .iter()
            .all(|a| a["notification"].to_string().contains("cpu-alarm")),
        "{alarms:?}"
    );

    // fw-silent is watched with a 2 s interval: seen once, then silent
    push(&inst, &[cpu("fw-silent", 10)]).await;
    let silent = eventually("the silence alarm", &inst, async || {
        let a = messages(&inst, "kind=system-alarm&nsf=fw-silent").await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert!(
        silent[0]["notification"]
            .to_string()
            .contains("feed:fw-silent"),
        "{silent:?}"
    );
    // it comes back: a second alarm says so
    push(&inst, &[cpu("fw-silent", 10)]).await;
    eventually("the resumed alarm", &inst, async || {
        let a = messages(&inst, "kind=system-alarm&nsf=fw-silent").await;
        (a.len() == 2).then_some(())
    })
    .await;
}

fn denied(port: u16) -> Message {
    Message::new(
        "fw-edge",
        Kind::FirewallTrafficLog(FirewallTrafficLog {
            src_ip: Some(IpAddr::from([203, 0, 113, 66])),
            dst_ip: Some(IpAddr::from([192, 0, 2, 20])),
            src_port: Some(50000),
            dst_port: Some(port),
            protocol: Some(pharos_model::ident::Protocol::Tcp),
            action: Some(pharos_model::ident::IngressAction::Drop),
            ..FirewallTrafficLog::default()
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_deny_logs_probing_many_ports_give_one_port_scan_event() {
    let inst = Instance::start("[detect.scan]\nport_scan_ports = 10\nwindow = \"1m\"\n");
    // 9 refused ports: below the threshold, only the logs are stored
    let logs: Vec<Message> = (1..=9).map(|p| denied(1000 + p)).collect();
    assert_eq!(push(&inst, &logs).await["stored"], 9);
    assert!(messages(&inst, "kind=intrusion").await.is_empty());
    // a pass is not a probe; the tenth refused port is
    let mut passed = denied(2000);
    if let Kind::FirewallTrafficLog(f) = &mut passed.kind {
        f.action = Some(pharos_model::ident::IngressAction::Pass);
    }
    push(&inst, &[passed, denied(1010), denied(1011)]).await;
    let scans = messages(&inst, "kind=intrusion").await;
    assert_eq!(scans.len(), 1, "{scans:?}");
    let ev = scans[0]["notification"].to_string();
    assert!(
        ev.contains("port-scan") && ev.contains("203.0.113.66") && ev.contains("192.0.2.20"),
        "{ev}"
    );
}
