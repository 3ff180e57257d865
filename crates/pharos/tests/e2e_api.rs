//! End-to-end: the real `pharos` binary over real sockets.

mod support;

use serde_json::{Value, json};
use support::{Instance, client, push};

async fn all_messages(inst: &Instance) -> Vec<Value> {
    let http = client();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(inst.url("/api/v1/messages"))
            .query(&[("limit", "7")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notification_of_every_kind_is_stored_read_back_and_valid_yang() {
    let inst = Instance::start("");
    let samples = pharos_model::samples::samples();
    let kinds: std::collections::BTreeSet<&str> = samples.iter().map(|m| m.kind.name()).collect();
    assert_eq!(
        kinds.len(),
        pharos_model::KIND_NAMES.len(),
        "samples cover every kind"
    );

    // Push one at a time, plain documents as an NSF would send them.
    let mut ids = Vec::new();
    for m in &samples {
        let doc = pharos_model::json::encode(m);
        let (status, v) = push(&inst, doc.to_string()).await;
        assert_eq!(status, 200, "{} refused: {v}", m.kind.name());
        assert_eq!(v["stored"], 1);
        ids.push(v["ids"][0].as_str().unwrap().to_string());
    }

    let back = all_messages(&inst).await;
    assert_eq!(back.len(), samples.len());
    let got: std::collections::BTreeSet<&str> =
        back.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(got, kinds);

    // Each reads back by id, decodes to the same content as pushed, and events are open.
    for (m, id) in samples.iter().zip(&ids) {
        let v: Value = client()
            .get(inst.url(&format!("/api/v1/messages/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["kind"], m.kind.name());
        let decoded = pharos_model::json::decode(&v["notification"]).unwrap();
        assert_eq!(decoded.kind, m.kind, "{} changed on the way", m.kind.name());
        assert_eq!(decoded.common.nsf_name, m.common.nsf_name);
        assert_eq!(
            v["state"].as_str().is_some(),
            m.kind.is_event(),
            "{}",
            m.kind.name()
        );
    }

    // What comes back validates against the YANG modules.
    let docs: Vec<Value> = back.iter().map(|v| v["notification"].clone()).collect();
    match support::yanglint_validate(&docs) {
        Ok(true) => {}
        Ok(false) => {} // said by yanglint_validate
        Err(e) => panic!("yanglint rejected what the API returned: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_get_a_clear_4xx_and_leave_the_store_unchanged() {
    let inst = Instance::start("");
    let good = json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw-1",
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "severity": "high", "usage": 91, "threshold": 80}
    }});
    let (s, _) = push(&inst, good.to_string()).await;
    assert_eq!(s, 200);

    let mut wrong_identity = good.clone();
    wrong_identity["ietf-i2nsf-monitoring-interface:i2nsf-event"]["i2nsf-system-detection-alarm"]
        ["alarm-category"] = json!("smurf-alarm");
    let mut out_of_range = good.clone();
    out_of_range["ietf-i2nsf-monitoring-interface:i2nsf-event"]["i2nsf-system-detection-alarm"]["usage"] =
        json!(101);
    // One byte over the default max_body_bytes (4 MiB): the server refuses it after reading the
    // last byte, so the client is never cut off while sending (a much larger body races the
    // 413 against the upload and the client can see a broken pipe instead of the answer).
    let limit = 4 * 1024 * 1024;
    let g = good.to_string();
    let huge = format!("[{g}{}]", " ".repeat(limit + 1 - g.len() - 2));
    assert_eq!(huge.len(), limit + 1);

    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"ietf-i2nsf-monitoring-interface:i2nsf-event\": {".into(),
            400,
            "malformed JSON",
        ),
        (
            "wrong identity",
            wrong_identity.to_string(),
            400,
            "alarm-category",
        ),
        (
            "out-of-range percentage",
            out_of_range.to_string(),
            400,
            "usage",
        ),
        (
            "one bad in a batch",
            format!("[{good},{out_of_range}]"),
            400,
            "usage",
        ),
        ("not a notification", "{\"hello\": 1}".into(), 400, "hello"),
        ("empty body", "".into(), 400, "no notification"),
        ("4 MiB + 1 byte body", huge, 413, "max_body_bytes"),
    ];
    for (name, body, want, needle) in cases {
        let (status, v) = push(&inst, body).await;
        assert_eq!(status, want, "{name}: {v}");
        let err = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no error text in {v}"));
        assert!(
            err.contains(needle),
            "{name}: error {err:?} does not mention {needle:?}"
        );
    }
    let back = all_messages(&inst).await;
    assert_eq!(back.len(), 1, "only the one good message is stored");

    let metrics = client()
        .get(inst.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pharos_push_rejected_total{reason=\"invalid\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pharos_push_rejected_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pharos_push_received_total{kind=\"system-alarm\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pharos_store_stored_total{kind=\"system-alarm\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_and_arrays_are_accepted_and_filters_work() {
    let inst = Instance::start("");
    let doc = |nsf: &str, usage: u8, msg: &str| {
        json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
            "nsf-name": nsf, "message": msg,
            "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "severity": "high", "usage": usage, "threshold": 80}
        }})
        .to_string()
    };
    let ddos = json!({"ietf-i2nsf-monitoring-interface:i2nsf-nsf-event": {
        "nsf-name": "scrubber",
        "i2nsf-nsf-detection-ddos": {"attack-type": "syn-flood", "start-time": "2026-11-24T10:00:00Z",
            "attack-src-ip": ["203.0.113.9"], "attack-dst-ip": ["198.51.100.10", "2001:db8::10"],
            "rule-name": "anti-ddos", "attack-rate": "250000", "attack-throughput": "16000000"}
    }});
    let nd = format!(
        "{}\n{}\n{}\n",
        doc("fw-1", 91, "CPU hot on fw-1"),
        doc("fw-2", 95, "cpu HOT again"),
        ddos
    );
    let (s, v) = push(&inst, nd).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stored"], 3);
    let (s, v) = push(
        &inst,
        format!("[{},{}]", doc("fw-3", 85, "x"), doc("fw-3", 86, "y")),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stored"], 2);

    let count = |q: &'static [(&'static str, &'static str)]| {
        let inst = &inst;
        async move {
            let v: Value = client()
                .get(inst.url("/api/v1/messages"))
                .query(q)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["items"].as_array().map(|a| a.len()).unwrap_or(usize::MAX)
        }
    };
    assert_eq!(count(&[("nsf", "fw-3")]).await, 2);
    assert_eq!(count(&[("kind", "ddos")]).await, 1);
    assert_eq!(count(&[("kind", "ddos,system-alarm")]).await, 5);
    assert_eq!(count(&[("text", "cpu hot")]).await, 2);
    assert_eq!(count(&[("addr", "198.51.100.0/24")]).await, 1);
    assert_eq!(count(&[("dst", "2001:db8::/32")]).await, 1);
    assert_eq!(count(&[("src", "198.51.100.0/24")]).await, 0);
    assert_eq!(count(&[("rule", "anti-ddos")]).await, 1);
    assert_eq!(count(&[("severity", "critical")]).await, 0);
    assert_eq!(count(&[("from", "-1h")]).await, 5);
    assert_eq!(count(&[("to", "-1h")]).await, 0);
    let r = client()
        .get(inst.url("/api/v1/messages"))
        .query(&[("addr", "300.1.1.1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .get(inst.url("/api/v1/messages"))
        .query(&[("colour", "red")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .get(inst.url("/api/v1/messages"))
        .query(&[("cursor", "garbage")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_acknowledged_through_api_and_cli_and_logs_have_no_state() {
    let inst = Instance::start("");
    let samples = pharos_model::samples::samples();
    let event = samples.iter().find(|m| m.kind.name() == "ddos").unwrap();
    let log = samples
        .iter()
        .find(|m| m.kind.name() == "system-access-log")
        .unwrap();
    let body = format!(
        "[{},{}]",
        pharos_model::json::encode(event),
        pharos_model::json::encode(log)
    );
    let (s, v) = push(&inst, body).await;
    assert_eq!(s, 200, "{v}");
    let (event_id, log_id) = (
        v["ids"][0].as_str().unwrap().to_string(),
        v["ids"][1].as_str().unwrap().to_string(),
    );

    // The CLI lists the open event as JSON and as a table.
    let out = std::process::Command::new(support::bin())
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .args(["events", "list", "--json", "--url", &inst.base])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "logs are not events");
    assert_eq!(lines[0]["id"], event_id.as_str());
    assert_eq!(lines[0]["state"], "open");
    let table = std::process::Command::new(support::bin())
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .args(["events", "list", "--url", &inst.base])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("ID") && table.contains("ddos") && table.contains("open"),
        "{table}"
    );

    // Acknowledge with the CLI; the API shows the new state.
    let out = std::process::Command::new(support::bin())
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .args(["events", "ack", &event_id, "--url", &inst.base])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = client()
        .get(inst.url(&format!("/api/v1/messages/{event_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "acknowledged");
    assert!(v["state-changed-at"].is_string());

    let r = client()
        .post(inst.url(&format!("/api/v1/events/{log_id}/ack")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = client()
        .post(inst.url("/api/v1/events/999999/ack"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let out = std::process::Command::new(support::bin())
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .args(["events", "ack", "999999", "--url", &inst.base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_acknowledged_messages_survive_restart() {
    let inst = Instance::start("");
    let now = chrono::Utc::now();
    let mut samples = pharos_model::samples::samples();
    for m in &mut samples {
        m.common.event_time = now;
    }
    // One message older than the default retention (30 days): expired at the next start.
    let mut old = samples[0].clone();
    old.common.event_time = now - chrono::TimeDelta::days(31);
    let body: Vec<String> = samples
        .iter()
        .chain([&old])
        .map(|m| pharos_model::json::encode(m).to_string())
        .collect();
    let (s, v) = push(&inst, body.join("\n")).await;
    assert_eq!(s, 200, "{v}");
    let before = all_messages(&inst).await;
    assert_eq!(before.len(), samples.len() + 1);
    let dir = inst.stop_keep_dir();
    let inst = Instance::start_in(dir, "");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let after = loop {
        let after = all_messages(&inst).await;
        if after.len() == samples.len() || std::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let kept: Vec<&Value> = before
        .iter()
        .filter(|m| m["id"] != v["ids"][samples.len()])
        .collect();
    assert_eq!(
        after.iter().collect::<Vec<_>>(),
        kept,
        "log:\n{}",
        inst.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_every_documented_operation_are_served() {
    let inst = Instance::start("");
    let http = client();
    assert_eq!(
        http.get(inst.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok\n"
    );
    let doc: Value = http
        .get(inst.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut n = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let url = inst.url(&path.replace("{id}", "1").replace("{name}", "none"));
            let req = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).body("{}"),
                "delete" => http.delete(&url),
                m => panic!("undocumented method {m}"),
            };
            let resp = req.send().await.unwrap();
            let status = resp.status();
            if resp
                .headers()
                .get("content-type")
                .is_some_and(|c| c == "text/event-stream")
            {
                // The SSE stream does not end; its headers show it is served.
                n += 1;
                continue;
            }
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains("no route for"),
                "{method} {path} is documented but not routed: {status} {body}"
            );
            n += 1;
        }
    }
    assert!(n >= 7);
    let r = http.get(inst.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let m = http
        .get(inst.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("# HELP pharos_push_received_total") || m.contains("pharos_push"),
        "{m}"
    );
}

#[test]
fn a_bad_config_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pharos.toml");
    std::fs::write(&cfg, "[store]\nretention = \"7x\"\n").unwrap();
    let out = std::process::Command::new(support::bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("retention") && err.contains("line 2") && err.contains("7d"),
        "{err}"
    );

    let out = std::process::Command::new(support::bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::write(&cfg, "[store]\nretention = \"7d\"\n").unwrap();
    let out = std::process::Command::new(support::bin())
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("retention = \"7d\"") && text.contains("listen = \"127.0.0.1:8080\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_prints_events_stored_after_it_started() {
    use std::io::BufRead;
    let inst = Instance::start("");
    let samples = pharos_model::samples::samples();
    let ddos = samples.iter().find(|m| m.kind.name() == "ddos").unwrap();
    let log = samples
        .iter()
        .find(|m| m.kind.name() == "system-access-log")
        .unwrap();
    // Stored before tail starts: not printed.
    let (s, _) = push(&inst, pharos_model::json::encode(ddos).to_string()).await;
    assert_eq!(s, 200);
    let mut child = std::process::Command::new(support::bin())
        .env("PHAROS_TOKEN", support::ADMIN_TOKEN)
        .args([
            "events",
            "tail",
            "--json",
            "--interval",
            "0.2",
            "--url",
            &inst.base,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (started_tx, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("following messages stored after id") {
                let _ = started_tx.send(line);
            }
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Once tail has taken its starting point (it says so on stderr), store a log (not an event)
    // and an event whose event time is old: only the event is printed.
    let line = started
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("tail said where it starts");
    assert!(line.contains("after id 1 "), "{line}");
    let mut old = ddos.clone();
    old.common.event_time = chrono::DateTime::from_timestamp(1_000_000_000, 0).unwrap();
    let body = format!(
        "{}\n{}",
        pharos_model::json::encode(log),
        pharos_model::json::encode(&old)
    );
    let (s, v) = push(&inst, body).await;
    assert_eq!(s, 200, "{v}");
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("tail printed the new event");
    let got: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(got["id"], v["ids"][1]);
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(600))
            .is_err(),
        "nothing else is printed"
    );
    let _ = child.kill();
    let _ = child.wait();
}
