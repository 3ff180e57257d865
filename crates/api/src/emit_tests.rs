//! In-process tests of the subscription and stream routes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use pharos_emit::{Dispatcher, DispatcherConfig, SubscriptionSpec, SubscriptionStore};
use pharos_model::{GenericLog, Kind, Message, Severity};
use pharos_store::writer::{StoreWriter, WriterConfig};
use pharos_store::{MessageStore, SqliteStore};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{ApiConfig, AppState, EmitHandle, router};

struct App {
    app: axum::Router,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn app(max_streams: usize) -> App {
    app_with(max_streams, Duration::from_secs(15))
}

fn app_with(max_streams: usize, keep_alive: Duration) -> App {
    app_prepared(max_streams, keep_alive, |_| {})
}

/// An app whose store `prepare` fills before emission starts.
fn app_prepared(
    max_streams: usize,
    keep_alive: Duration,
    prepare: impl FnOnce(&SqliteStore),
) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.db")).unwrap());
    prepare(&store);
    let dyn_store: Arc<dyn MessageStore> = store.clone();
    let (writer, _thread) = StoreWriter::spawn(dyn_store.clone(), WriterConfig::default());
    let cfg_sub: SubscriptionSpec = serde_json::from_value(json!({
        "name": "from-config",
        "sink": {"type": "syslog", "address": "127.0.0.1:9"}
    }))
    .unwrap();
    let dispatcher = Dispatcher::start(
        dyn_store.clone(),
        Arc::new(SubscriptionStore::open_in_memory().unwrap()),
        DispatcherConfig {
            allow_hosts: vec!["127.0.0.1".into()],
        },
        vec![cfg_sub],
    )
    .unwrap();
    let config = ApiConfig::default();
    let state = AppState {
        store: dyn_store,
        writer,
        metrics: None,
        auth: crate::tests::test_auth(&config),
        config: Arc::new(config),
        nsfs: Arc::new(pharos_store::inventory::Inventory::in_memory(&[])),
        flows: None,
        emit: Some(EmitHandle::new(dispatcher, max_streams, keep_alive)),
        console: Default::default(),
    };
    App {
        app: router(state).layer(axum::extract::connect_info::MockConnectInfo(
            std::net::SocketAddr::from(([192, 0, 2, 9], 4321)),
        )),
        store,
        _dir: dir,
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app
        .clone()
        .oneshot(crate::tests::authed(req))
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post_json(path: &str, v: &Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn log(nsf: &str, sev: Severity) -> Message {
    let mut m = Message::new(nsf, Kind::GenericLog(GenericLog::default()));
    m.common.severity = sev;
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_created_listed_shown_and_deleted_with_clear_errors() {
    let a = app(4);
    let hook = json!({
        "name": "soc",
        "filter": {"kinds": ["ddos"], "min_severity": "high"},
        "sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret"}
    });
    let (s, v) = call(&a.app, post_json("/api/v1/subscriptions", &hook)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["origin"], "api");
    assert_eq!(v["spec"]["sink"]["secret"], "***");
    let (s, v) = call(&a.app, post_json("/api/v1/subscriptions", &hook)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    let (s, v) = call(&a.app, get("/api/v1/subscriptions")).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["spec"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["from-config", "soc"]);
    let (s, v) = call(&a.app, get("/api/v1/subscriptions/soc")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["state"]["delivered"], 0, "{v}");
    assert!(v["state"]["pending"].is_u64(), "{v}");
    assert!(!v.to_string().contains("s3cret"));

    for (body, key) in [
        (json!({"name": "Bad Name", "sink": hook["sink"]}), "name"),
        (
            json!({"name": "x", "filter": {"kinds": ["nope"]}, "sink": hook["sink"]}),
            "filter.kinds",
        ),
        (
            json!({"name": "x", "sink": {"type": "webhook", "url": "https://elsewhere.example/x", "secret": "k"}}),
            "allow_hosts",
        ),
        (json!({"name": "x"}), "sink"),
        (json!({"name": "x", "sink": {"type": "pigeon"}}), "pigeon"),
    ] {
        let (s, v) = call(&a.app, post_json("/api/v1/subscriptions", &body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(key), "{body}: {e}");
    }

    let del = |p: &str| Request::delete(p).body(Body::empty()).unwrap();
    let (s, v) = call(&a.app, del("/api/v1/subscriptions/from-config")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("pharos.toml"));
    let (s, _) = call(&a.app, del("/api/v1/subscriptions/soc")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&a.app, get("/api/v1/subscriptions/soc")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&a.app, del("/api/v1/subscriptions/soc")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Opens `path` as a stream resumed after `last_event_id`; its body.
async fn resume(
    app: &axum::Router,
    path: &str,
    last_event_id: &str,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin + use<> {
    let req = Request::get(path)
        .header("last-event-id", last_event_id)
        .body(Body::empty())
        .unwrap();
    let resp = app
        .clone()
        .oneshot(crate::tests::authed(req))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().into_data_stream()
}

/// Reads SSE events (id, event, data) from `body` until `n` arrived; panics after 10 s.
async fn read_events(
    body: &mut (impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
    buf: &mut String,
    n: usize,
) -> Vec<(u64, String, Value)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut ev, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse().unwrap());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    ev = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if let Some(id) = id {
                out.push((id, ev, serde_json::from_str(&data).unwrap()));
            }
        }
        if out.len() >= n {
            break;
        }
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("timed out: got {} of {n} events", out.len()))
            .expect("stream ended")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_replays_after_last_event_id_then_follows_live_without_gap_or_duplicate() {
    let a = app(4);
    let mut first: Vec<Message> = (0..5)
        .map(|i| log(if i == 2 { "other" } else { "fw" }, Severity::High))
        .collect();
    a.store.insert_batch(&mut first).unwrap();
    let req = Request::get("/api/v1/stream?nsf=fw")
        .header("last-event-id", "1")
        .body(Body::empty())
        .unwrap();
    let resp = a
        .app
        .clone()
        .oneshot(crate::tests::authed(req))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body().into_data_stream();
    let mut buf = String::new();
    let got = read_events(&mut body, &mut buf, 3).await;
    let ids: Vec<u64> = got.iter().map(|e| e.0).collect();
    assert_eq!(ids, vec![2, 4, 5], "seq 3 is another NSF's");
    assert_eq!(got[0].1, "created");
    assert_eq!(got[0].2["id"], "2");
    assert_eq!(got[0].2["nsf-name"], "fw");
    // Live: new changes follow, in order.
    let mut more: Vec<Message> = (0..3).map(|_| log("fw", Severity::Low)).collect();
    a.store.insert_batch(&mut more).unwrap();
    let got = read_events(&mut body, &mut buf, 3).await;
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), vec![6, 7, 8]);
    drop(body);

    // ?last_event_id= works like the header; without either, the stream starts at the end.
    let resp = a
        .app
        .clone()
        .oneshot(crate::tests::authed(get("/api/v1/stream?last_event_id=7")))
        .await
        .unwrap();
    let mut body = resp.into_body().into_data_stream();
    let mut buf = String::new();
    assert_eq!(read_events(&mut body, &mut buf, 1).await[0].0, 8);
    let resp = a
        .app
        .clone()
        .oneshot(crate::tests::authed(get("/api/v1/stream")))
        .await
        .unwrap();
    let mut live = resp.into_body().into_data_stream();
    let mut lbuf = String::new();
    a.store
        .insert_batch(&mut [log("fw", Severity::Info)])
        .unwrap();
    let got = read_events(&mut live, &mut lbuf, 1).await;
    assert_eq!(got[0].0, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_over_changes_deleted_by_retention_gets_an_expired_event_for_the_hole() {
    // Deleted before the server started: no feed reader saw them (what one already read stays
    // in its window and is still sent).
    let a = app_prepared(4, Duration::from_secs(15), |store| {
        let old = || {
            let mut m = log("fw", Severity::High);
            m.common.event_time = chrono::DateTime::from_timestamp(1_000_000_000, 0).unwrap();
            m
        };
        let mut msgs = vec![
            log("fw", Severity::High),
            old(),
            old(),
            log("fw", Severity::High),
        ];
        store.insert_batch(&mut msgs).unwrap();
        let cut = chrono::Utc::now() - chrono::Duration::days(1);
        assert_eq!(store.delete_before(cut).unwrap(), 2);
    });
    let mut body = resume(&a.app, "/api/v1/stream", "0").await;
    let mut buf = String::new();
    let got = read_events(&mut body, &mut buf, 3).await;
    let seen: Vec<(u64, &str)> = got.iter().map(|e| (e.0, e.1.as_str())).collect();
    assert_eq!(seen, vec![(1, "created"), (3, "expired"), (4, "created")]);
    assert_eq!(got[1].2, json!({"after": 1, "upto": 3, "count": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_names_bad_parameters_and_refuses_beyond_max_streams() {
    let a = app(1);
    for (q, key) in [
        ("kind=ddoss", "kind"),
        ("min_severity=urgent", "min_severity"),
        ("severity=urgent", "severity"),
        ("addr=10.0.0.300", "addr"),
        ("change=deleted", "change"),
        ("last_event_id=abc", "last_event_id"),
        ("bogus=1", "bogus"),
    ] {
        let (s, v) = call(&a.app, get(&format!("/api/v1/stream?{q}"))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(key), "{q}: {v}");
    }
    let open = a
        .app
        .clone()
        .oneshot(crate::tests::authed(get("/api/v1/stream")))
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let resp = a
        .app
        .clone()
        .oneshot(crate::tests::authed(get("/api/v1/stream")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    drop(open);
    // The slot is freed when the client goes away (the follower notices the closed channel).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp = a
            .app
            .clone()
            .oneshot(crate::tests::authed(get("/api/v1/stream")))
            .await
            .unwrap();
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn openapi_documents_the_emission_routes() {
    let ops = crate::openapi::operations();
    for op in [
        ("get", "/api/v1/subscriptions"),
        ("post", "/api/v1/subscriptions"),
        ("get", "/api/v1/subscriptions/{name}"),
        ("delete", "/api/v1/subscriptions/{name}"),
        ("get", "/api/v1/stream"),
    ] {
        assert!(
            ops.iter().any(|(m, p)| (m.as_str(), p.as_str()) == op),
            "{op:?} undocumented"
        );
    }
    let doc = crate::openapi::document();
    assert!(doc["paths"]["/api/v1/subscriptions"]["post"]["responses"]["201"].is_object());
    assert!(
        doc["paths"]["/api/v1/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            .is_object()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_with_an_id_beyond_the_feed_follows_from_the_end() {
    let a = app(4);
    a.store
        .insert_batch(&mut [log("fw", Severity::Info)])
        .unwrap();
    let mut body = resume(&a.app, "/api/v1/stream", "1000").await;
    let mut buf = String::new();
    a.store
        .insert_batch(&mut [log("fw", Severity::Info)])
        .unwrap();
    assert_eq!(read_events(&mut body, &mut buf, 1).await[0].0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_gets_keep_alive_comments() {
    let a = app_with(4, Duration::from_millis(100));
    let resp = a
        .app
        .clone()
        .oneshot(crate::tests::authed(get("/api/v1/stream")))
        .await
        .unwrap();
    let mut body = resp.into_body().into_data_stream();
    let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("a keep-alive within 10 s")
        .unwrap()
        .unwrap();
    assert!(chunk.starts_with(b":"), "{chunk:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_names_with_control_characters_get_400_naming_the_character() {
    let a = app(4);
    let spec = json!({
        "name": "soc\u{7f}",
        "sink": {"type": "syslog", "address": "127.0.0.1:9"}
    });
    let (s, v) = call(&a.app, post_json("/api/v1/subscriptions", &spec)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("\\x7f") && e.contains("byte 3"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_data_escapes_del_and_c1_controls() {
    let a = app(4);
    let text = "x\u{1b}[2J y\u{7f} z\u{9b}31m";
    let mut m = log("fw", Severity::High);
    m.common.message = Some(text.into());
    m.common.raw = Some(text.into());
    a.store.insert_batch(&mut [m]).unwrap();
    let mut body = resume(&a.app, "/api/v1/stream", "0").await;
    let mut raw = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !raw.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("timed out waiting for the event")
            .expect("stream ended")
            .unwrap();
        raw.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(
        !raw.contains('\u{1b}') && !raw.contains('\u{7f}') && !raw.contains('\u{9b}'),
        "a raw control character in {raw:?}"
    );
    assert!(raw.contains("\\u007f") && raw.contains("\\u009b"), "{raw}");
    let data = raw
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let v: Value = serde_json::from_str(data).unwrap();
    assert!(
        crate::tests::holds_string(&v, text),
        "the text reads back unchanged: {v}"
    );
}
