//! In-process tests of the router over an in-memory store.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use pharos_store::writer::{StoreWriter, WriterConfig};
use pharos_store::{MessageStore, SqliteStore};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{ApiConfig, AppState, router};

fn app() -> (axum::Router, Arc<dyn MessageStore>) {
    let store: Arc<dyn MessageStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let (writer, _thread) = StoreWriter::spawn(store.clone(), WriterConfig::default());
    let state = AppState {
        store: store.clone(),
        writer,
        metrics: None,
        config: Arc::new(ApiConfig {
            max_body_bytes: 64 * 1024,
            ..ApiConfig::default()
        }),
        nsfs: Arc::new(pharos_store::inventory::Inventory::in_memory(&[])),
    };
    let app = router(state).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 9], 4321))));
    (app, store)
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

fn alarm(usage: u64) -> Value {
    json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw-1",
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "usage": usage, "threshold": 80}
    }})
}

#[tokio::test]
async fn push_stores_and_records_the_sender_as_source() {
    let (app, store) = app();
    let (s, v) = call(&app, post("/api/v1/push", alarm(90).to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id: u64 = v["ids"][0].as_str().unwrap().parse().unwrap();
    let stored = store.get(id).unwrap().unwrap();
    assert_eq!(
        stored.message.common.source.as_deref(),
        Some("push:192.0.2.9")
    );
    let (s, v) = call(
        &app,
        Request::get(format!("/api/v1/messages/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["kind"], "system-alarm");
    assert_eq!(v["state"], "open");
}

#[tokio::test]
async fn a_batch_with_one_invalid_document_stores_nothing_and_names_it() {
    let (app, store) = app();
    let body = format!("[{},{},{}]", alarm(50), alarm(101), alarm(60));
    let (s, v) = call(&app, post("/api/v1/push", body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["details"][0]["index"], 1, "{v}");
    assert!(
        v["details"][0]["path"].as_str().unwrap().ends_with("usage"),
        "{v}"
    );
    assert_eq!(store.count().unwrap(), 0);
}

#[tokio::test]
async fn oversize_bodies_get_413_and_store_nothing() {
    let (app, store) = app();
    let body = format!("[{}]", vec![alarm(50).to_string(); 2000].join(","));
    let (s, v) = call(&app, post("/api/v1/push", body)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("max_body_bytes"));
    assert_eq!(store.count().unwrap(), 0);
}

#[tokio::test]
async fn unknown_query_parameters_and_routes_are_refused() {
    let (app, _) = app();
    let (s, v) = call(
        &app,
        Request::get("/api/v1/messages?kinds=ddos")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("kinds"), "{v}");
    let (s, _) = call(
        &app,
        Request::get("/api/v1/nothing").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        Request::get("/api/v1/messages/abc")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn paging_walks_every_message_once() {
    let (app, _) = app();
    let docs: Vec<String> = (0..25).map(|i| alarm(i).to_string()).collect();
    let (s, _) = call(&app, post("/api/v1/push", docs.join("\n"))).await;
    assert_eq!(s, StatusCode::OK);
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/messages?limit=10&cursor={c}"),
            None => "/api/v1/messages?limit=10".into(),
        };
        let (s, v) = call(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for it in v["items"].as_array().unwrap() {
            assert!(
                seen.insert(it["id"].as_str().unwrap().to_string()),
                "duplicate {it}"
            );
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
}
