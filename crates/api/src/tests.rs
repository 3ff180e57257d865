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
    app_with_flows(None)
}

fn app_with_flows(flows: Option<std::path::PathBuf>) -> (axum::Router, Arc<dyn MessageStore>) {
    app_with(
        ApiConfig {
            max_body_bytes: 64 * 1024,
            ..ApiConfig::default()
        },
        flows,
    )
}

fn app_with(
    config: ApiConfig,
    flows: Option<std::path::PathBuf>,
) -> (axum::Router, Arc<dyn MessageStore>) {
    let store: Arc<dyn MessageStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let (writer, _thread) = StoreWriter::spawn(store.clone(), WriterConfig::default());
    let state = AppState {
        store: store.clone(),
        writer,
        metrics: None,
        auth: test_auth(&config),
        config: Arc::new(config),
        nsfs: Arc::new(pharos_store::inventory::Inventory::in_memory(&[])),
        flows: flows.map(crate::flows::FlowArchive::new),
        emit: None,
        console: Default::default(),
    };
    let app = router(state).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 9], 4321))));
    (app, store)
}

/// The secret of the admin token every test app knows.
pub(crate) const ADMIN: &str = "phr_test-admin-secret";

/// Tokens: the configured admin token [`ADMIN`] and those of `config`; limits of `config`.
pub(crate) fn test_auth(config: &ApiConfig) -> Arc<crate::auth::Auth> {
    let admin = crate::auth::TokenConfig {
        name: "test-admin".into(),
        role: crate::auth::Role::Admin,
        sha256: hex::encode(crate::auth::tokens::hash(ADMIN)),
        nsf: None,
    };
    let mut all = vec![admin];
    all.extend(config.token.iter().cloned());
    let tokens = crate::auth::TokenStore::in_memory(&all).unwrap();
    Arc::new(crate::auth::Auth::new(tokens, config))
}

/// `req` with the admin token unless it has an Authorization header.
pub(crate) fn authed(mut req: Request<Body>) -> Request<Body> {
    if !req.headers().contains_key("authorization") {
        req.headers_mut()
            .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    }
    req
}

/// Whether `v` holds the string `s` anywhere.
pub(crate) fn holds_string(v: &Value, s: &str) -> bool {
    match v {
        Value::String(t) => t == s,
        Value::Array(a) => a.iter().any(|x| holds_string(x, s)),
        Value::Object(o) => o.values().any(|x| holds_string(x, s)),
        _ => false,
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(authed(req)).await.unwrap();
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

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// A flow archive of three flows under a temp dir.
fn flow_archive() -> (tempfile::TempDir, std::path::PathBuf) {
    use pharos_model::flow::{FlowBatch, FlowRecord};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flows");
    let mut w = pharos_flows::segment::SegmentWriter::open(
        pharos_flows::segment::SegmentConfig::new(&root),
    )
    .unwrap();
    let mut b = FlowBatch::new();
    for (dst, proto, bytes, start) in [
        ("198.51.100.10", 17, 5000, 1_700_000_000_000u64),
        ("198.51.100.10", 17, 7000, 1_700_000_060_000),
        ("198.51.100.20", 6, 9000, 1_700_000_120_000),
    ] {
        b.push(&FlowRecord {
            src_addr: "10.0.0.1".parse().unwrap(),
            dst_addr: dst.parse().unwrap(),
            proto,
            packets: 10,
            bytes,
            start_ms: start,
            end_ms: start + 1000,
            ..FlowRecord::default()
        });
    }
    w.push(&b, 1_700_000_200_000);
    w.flush(1_700_000_201_000).unwrap();
    (dir, root)
}

#[tokio::test]
async fn flow_routes_answer_top_series_and_listing() {
    let (_dir, root) = flow_archive();
    let (app, _) = app_with_flows(Some(root));
    let (s, v) = call(
        &app,
        get("/api/v1/flows/top?key=dstip&filter=proto%20udp&n=5"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rows"][0]["key"], "198.51.100.10");
    assert_eq!(v["rows"][0]["bytes"], 12000);
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["total"]["flows"], 2);
    assert_eq!(v["stats"]["rows_scanned"], 3);

    let (s, v) = call(
        &app,
        get("/api/v1/flows/series?interval=1m&from=2023-11-14T22:13:20Z&to=2023-11-14T22:14:21Z"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{v}");
    assert_eq!(points[0]["bytes"], 5000);

    let (s, v) = call(&app, get("/api/v1/flows/query?order=bytes&limit=2")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let flows = v["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0]["bytes"], 9000);
    assert_eq!(flows[1]["dst_addr"], "198.51.100.10");
}

#[tokio::test]
async fn flow_routes_name_bad_input() {
    let (_dir, root) = flow_archive();
    let (app, _) = app_with_flows(Some(root));
    for (path, needle) in [
        ("/api/v1/flows/top?key=dstip&filter=port%20http", "column 6"),
        ("/api/v1/flows/top?filter=any", "key is required"),
        ("/api/v1/flows/top?key=dstip9", "unknown key"),
        ("/api/v1/flows/top?key=dstip&by=volume", "unknown order"),
        (
            "/api/v1/flows/query?from=tomorrow",
            "from: cannot read the time",
        ),
        ("/api/v1/flows/query?limit=0", "limit=0"),
        ("/api/v1/flows/series?interval=0s", "interval"),
        ("/api/v1/flows/query?from=now&to=-1h", "swap from and to"),
        ("/api/v1/flows/query?colour=red", ""),
    ] {
        let (s, v) = call(&app, get(path)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        let text = v.to_string();
        assert!(text.contains(needle), "{path}: {text}");
    }
    let (app, _) = app_with_flows(None);
    let (s, v) = call(&app, get("/api/v1/flows/top?key=dstip")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

/// Three intrusions on one host, one DDoS attack stored as two updates, one log; event times from
/// 2026-01-01T00:00:00Z a minute apart.
fn report_messages() -> Vec<pharos_model::Message> {
    use pharos_model::{DdosEvent, IntrusionEvent, Kind, Message, ResourceUtilizationLog};
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let intrusion = |src: &str| {
        Kind::Intrusion(IntrusionEvent {
            src_ip: Some(ip(src)),
            src_port: None,
            dst_ip: Some(ip("198.51.100.10")),
            dst_port: Some(22),
            rule_name: "ssh-brute".into(),
            protocol: None,
            app: None,
            attack_type: None,
        })
    };
    let ddos = |end: Option<i64>| {
        Kind::Ddos(DdosEvent {
            attack_type: Some(pharos_model::ident::DdosType::UdpFlood),
            start_time: t0 + chrono::Duration::minutes(3),
            end_time: end.map(|m| t0 + chrono::Duration::minutes(m)),
            attack_src_ip: vec![ip("203.0.113.9")],
            attack_dst_ip: vec![ip("198.51.100.20")],
            attack_src_port: vec![123],
            attack_dst_port: vec![],
            rule_name: "global-udp".into(),
            attack_rate: Some(90_000),
            attack_throughput: Some(9_000_000),
        })
    };
    let kinds = [
        intrusion("192.0.2.1"),
        intrusion("192.0.2.1"),
        intrusion("192.0.2.2"),
        ddos(None),
        ddos(Some(5)),
        Kind::ResourceUtilizationLog(ResourceUtilizationLog::default()),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let mut m = Message::new("nsf-r", kind);
            m.common.event_time = t0 + chrono::Duration::minutes(i as i64);
            m.common.severity = pharos_model::Severity::High;
            m
        })
        .collect()
}

#[tokio::test]
async fn reports_count_the_window_as_json_and_text_and_say_when_capped() {
    let (app, store) = app();
    let mut msgs = report_messages();
    store.insert_batch(&mut msgs).unwrap();
    let window = "from=2026-01-01T00:00:00Z&to=2026-01-01T00:05:30Z";
    let (s, v) = call(&app, get(&format!("/api/v1/reports?{window}"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["messages"], 6);
    assert_eq!(v["by_kind"]["intrusion"], 3);
    assert_eq!(v["by_severity"]["high"], 6);
    assert_eq!(v["top_attacked"][0]["addr"], "198.51.100.10");
    assert_eq!(v["top_attacked"][0]["count"], 3);
    assert_eq!(v["top_sources"][0]["addr"], "192.0.2.1");
    assert_eq!(v["attacks_started"], 1);
    assert_eq!(v["attacks_ended"], 1);
    assert_eq!(v["attacks"][0]["attack_type"], "udp-flood");
    assert_eq!(v["capped"], false);
    assert_eq!(v["messages_read"], 6);

    let (s, v) = call(
        &app,
        get("/api/v1/reports?from=2026-01-01T00:02:00Z&to=2026-01-01T00:04:00Z"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["messages"], 2);
    assert_eq!(
        (v["attacks_started"].as_u64(), v["attacks_ended"].as_u64()),
        (Some(1), Some(0))
    );

    let resp = app
        .clone()
        .oneshot(authed(get(&format!(
            "/api/v1/reports?{window}&format=text&top=1"
        ))))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("attacks: 1 started, 1 ended"), "{text}");
    assert!(
        text.contains("top attacked hosts:\n  198.51.100.10"),
        "{text}"
    );

    let cfg = pharos_detect::report::ReportConfig::default();
    let from = "2026-01-01T00:00:00Z".parse().unwrap();
    let to = "2026-01-01T01:00:00Z".parse().unwrap();
    let messages = pharos_store::messages_in(store.as_ref(), from, to);
    let w = pharos_detect::report::report_window(&cfg, from, to, 4, messages).unwrap();
    assert_eq!((w.read, w.report.messages), (4, 4));
    assert_eq!(
        w.covered_from.unwrap().to_rfc3339(),
        "2026-01-01T00:02:00+00:00"
    );

    for (path, needle) in [
        ("/api/v1/reports?from=now&to=-1h", "is not before"),
        ("/api/v1/reports?top=0", "top=0"),
        ("/api/v1/reports?format=xml", "format="),
        ("/api/v1/reports?colour=red", ""),
    ] {
        let (s, v) = call(&app, get(path)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(v.to_string().contains(needle), "{path}: {v}");
    }
}

mod auth {
    //! The middleware and token routes over the router.

    use super::*;
    use crate::auth::ClientCert;

    fn with_token(mut req: Request<Body>, token: &str) -> Request<Body> {
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        req
    }

    async fn raw(app: &axum::Router, req: Request<Body>) -> axum::response::Response {
        app.clone().oneshot(req).await.unwrap()
    }

    async fn create(app: &axum::Router, name: &str, role: &str) -> String {
        let (s, v) = call(
            app,
            post(
                "/api/v1/tokens",
                json!({"name": name, "role": role}).to_string(),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Logs in with `token`; the cookie header value and the CSRF token.
    async fn login(app: &axum::Router, token: &str) -> (String, String) {
        let resp = raw(
            app,
            post("/api/v1/session", json!({"token": token}).to_string()),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
            "{set}"
        );
        assert!(!set.contains("Secure"), "no TLS here: {set}");
        let cookie = set.split(';').next().unwrap().to_string();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        (cookie, v["csrf"].as_str().unwrap().to_string())
    }

    fn with_cookie(mut req: Request<Body>, cookie: &str, csrf: Option<&str>) -> Request<Body> {
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        if let Some(c) = csrf {
            req.headers_mut().insert("x-csrf-token", c.parse().unwrap());
        }
        req
    }

    #[tokio::test]
    async fn a_session_reads_and_changes_state_only_with_its_csrf_token() {
        let (app, _) = app();
        let analyst = create(&app, "ana", "analyst").await;
        let (cookie, csrf) = login(&app, &analyst).await;
        let st = |r| async { raw(&app, r).await.status() };
        assert_eq!(
            st(with_cookie(get("/api/v1/messages"), &cookie, None)).await,
            StatusCode::OK
        );
        let sub = || {
            post(
                "/api/v1/subscriptions",
                json!({"name": "s", "sink": {"kind": "nope"}}).to_string(),
            )
        };
        assert_eq!(
            st(with_cookie(sub(), &cookie, None)).await,
            StatusCode::FORBIDDEN,
            "no CSRF token"
        );
        assert_eq!(
            st(with_cookie(sub(), &cookie, Some("0000"))).await,
            StatusCode::FORBIDDEN,
            "wrong CSRF token"
        );
        let with = st(with_cookie(sub(), &cookie, Some(&csrf))).await;
        assert!(
            with != StatusCode::FORBIDDEN && with != StatusCode::UNAUTHORIZED,
            "{with}"
        );
        // Analysts cannot manage tokens, through a session either.
        assert_eq!(
            st(with_cookie(get("/api/v1/tokens"), &cookie, None)).await,
            StatusCode::FORBIDDEN
        );
        // The session describes itself; logout ends it.
        let resp = raw(&app, with_cookie(get("/api/v1/session"), &cookie, None)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let del = Request::delete("/api/v1/session")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            st(with_cookie(del, &cookie, Some(&csrf))).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            st(with_cookie(get("/api/v1/messages"), &cookie, None)).await,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn revoking_the_token_ends_its_sessions_and_nsf_tokens_cannot_log_in() {
        let (app, _) = app();
        let viewer = create(&app, "vw", "viewer").await;
        let (cookie, _) = login(&app, &viewer).await;
        let ok = raw(&app, with_cookie(get("/api/v1/messages"), &cookie, None)).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let del = Request::delete("/api/v1/tokens/vw")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app, del).await.0, StatusCode::OK);
        let gone = raw(&app, with_cookie(get("/api/v1/messages"), &cookie, None)).await;
        assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);

        let nsf = create(&app, "fw", "nsf").await;
        let resp = raw(
            &app,
            post("/api/v1/session", json!({"token": nsf}).to_string()),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = raw(
            &app,
            post("/api/v1/session", json!({"token": "phr_nope"}).to_string()),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().get("set-cookie").is_none());
    }

    #[tokio::test]
    async fn console_pages_redirect_to_login_and_the_config_is_for_admins() {
        let (app, _) = app();
        let resp = raw(&app, get("/ui/events?kind=ddos")).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            resp.headers()["location"],
            "/ui/login?next=/ui/events%3Fkind%3Dddos"
        );
        let resp = raw(&app, with_cookie(get("/ui/"), "pharos_session=stale", None)).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let viewer = create(&app, "v2", "viewer").await;
        let (cookie, _) = login(&app, &viewer).await;
        let r = raw(&app, with_cookie(get("/api/v1/config"), &cookie, None)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let (s, v) = call(&app, get("/api/v1/config")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = call(&app, get("/api/v1/overview")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["drops"].is_array() && v["networks"].is_array(), "{v}");
    }

    #[tokio::test]
    async fn requests_without_a_valid_token_get_401_with_a_bearer_challenge() {
        let (app, store) = app();
        for req in [
            get("/api/v1/messages"),
            with_token(get("/api/v1/messages"), "phr_wrong"),
            post("/api/v1/push", alarm(90).to_string()),
            get("/metrics"),
            get("/api/v1/not-yet-a-route"),
        ] {
            let resp = raw(&app, req).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            assert!(
                resp.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"].as_str().unwrap().contains("token"), "{v}");
        }
        assert_eq!(store.count_by_kind().unwrap().len(), 0);
        let resp = raw(&app, get("/healthz")).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn roles_are_checked_by_rule() {
        let (app, store) = app();
        let viewer = create(&app, "v", "viewer").await;
        let analyst = create(&app, "a", "analyst").await;
        let nsf = create(&app, "fw", "nsf").await;
        let status = |req| async { raw(&app, req).await.status() };
        assert_eq!(
            status(with_token(get("/api/v1/messages"), &viewer)).await,
            StatusCode::OK
        );
        assert_eq!(
            status(with_token(get("/api/v1/tokens"), &viewer)).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(with_token(get("/api/v1/tokens"), &analyst)).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(with_token(post("/api/v1/events/1/ack", ""), &viewer)).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(with_token(
                post("/api/v1/push", alarm(1).to_string()),
                &viewer
            ))
            .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(with_token(get("/api/v1/messages"), &nsf)).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(store.count_by_kind().unwrap().len(), 0);
        assert_eq!(
            status(with_token(post("/api/v1/push", alarm(1).to_string()), &nsf)).await,
            StatusCode::OK
        );
        // The analyst passes the role check; the event does not exist.
        assert_eq!(
            status(with_token(post("/api/v1/events/999/ack", ""), &analyst)).await,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn tokens_are_listed_without_secrets_and_revocation_is_immediate() {
        let (app, _) = app();
        let secret = create(&app, "grafana", "viewer").await;
        let (s, v) = call(&app, get("/api/v1/tokens")).await;
        assert_eq!(s, StatusCode::OK);
        let text = v.to_string();
        assert!(
            text.contains("grafana") && text.contains("test-admin"),
            "{v}"
        );
        assert!(!text.contains(&secret) && !text.contains(ADMIN));
        let (s, _) = call(&app, with_token(get("/api/v1/nsfs"), &secret)).await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = call(
            &app,
            Request::delete("/api/v1/tokens/grafana")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = call(&app, with_token(get("/api/v1/nsfs"), &secret)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
        let (s, _) = call(
            &app,
            Request::delete("/api/v1/tokens/test-admin")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, v) = call(
            &app,
            post(
                "/api/v1/tokens",
                json!({"name": "x", "role": "root"}).to_string(),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(v["error"].as_str().unwrap().contains("viewer"), "{v}");
    }

    #[tokio::test]
    async fn a_client_over_its_rate_gets_429_with_retry_after() {
        const SECOND: &str = "phr_test-second-viewer-secret";
        let (app, _) = app_with(
            ApiConfig {
                rate_per_second: 1.0,
                burst: 5.0,
                token: vec![crate::auth::TokenConfig {
                    name: "second".into(),
                    role: crate::auth::Role::Viewer,
                    sha256: hex::encode(crate::auth::tokens::hash(SECOND)),
                    nsf: None,
                }],
                ..ApiConfig::default()
            },
            None,
        );
        let mut codes = Vec::new();
        let mut retry = None;
        for _ in 0..8 {
            let resp = raw(&app, authed(get("/api/v1/nsfs"))).await;
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                retry = resp.headers().get("retry-after").cloned();
            }
            codes.push(resp.status().as_u16());
        }
        assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429, 429]);
        assert_eq!(retry.unwrap(), "1");
        // Another client has its own bucket.
        assert_eq!(
            raw(&app, with_token(get("/api/v1/nsfs"), SECOND))
                .await
                .status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn an_nsf_over_its_message_rate_gets_429_and_nothing_is_stored() {
        let (app, store) = app_with(
            ApiConfig {
                nsf_messages_per_second: 3.0,
                max_push_messages: 3,
                ..ApiConfig::default()
            },
            None,
        );
        let batch = |n: u64| Value::Array((0..n).map(alarm).collect::<Vec<_>>()).to_string();
        let (s, v) = call(&app, post("/api/v1/push", batch(3))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let resp = raw(&app, authed(post("/api/v1/push", batch(2)))).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(resp.headers().contains_key("retry-after"));
        let n: u64 = store.count_by_kind().unwrap().iter().map(|(_, n)| n).sum();
        assert_eq!(n, 3, "the refused push stored nothing");
    }

    #[tokio::test]
    async fn a_client_certificate_pushes_as_its_nsf_but_reads_nothing() {
        let (app, store) = app();
        let cert = ClientCert {
            subject: "CN=fw-cert,O=Example".into(),
            common_name: Some("fw-cert".into()),
            nsf: None,
        };
        let mut req = post("/api/v1/push", alarm(95).to_string());
        req.extensions_mut().insert(cert.clone());
        let resp = raw(&app, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let id: u64 = v["ids"][0].as_str().unwrap().parse().unwrap();
        let stored = store.get(id).unwrap().unwrap();
        assert_eq!(stored.message.common.nsf_name, "fw-cert");
        let mut req = get("/api/v1/messages");
        req.extensions_mut().insert(cert);
        assert_eq!(raw(&app, req).await.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_token_bound_to_an_nsf_pushes_under_that_name_only() {
        let (app, store) = app();
        let (s, v) = call(
            &app,
            post(
                "/api/v1/tokens",
                json!({"name": "edge", "role": "nsf", "nsf": "edge-fw"}).to_string(),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["nsf"], "edge-fw");
        let bound = v["token"].as_str().unwrap().to_string();
        // The document claims another NSF: it is stored under the token's.
        let (s, v) = call(
            &app,
            with_token(post("/api/v1/push", alarm(95).to_string()), &bound),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let id: u64 = v["ids"][0].as_str().unwrap().parse().unwrap();
        assert_eq!(
            store.get(id).unwrap().unwrap().message.common.nsf_name,
            "edge-fw"
        );
        // An unbound nsf token keeps the document's name.
        let free = create(&app, "relay", "nsf").await;
        let (_, v) = call(
            &app,
            with_token(post("/api/v1/push", alarm(96).to_string()), &free),
        )
        .await;
        let id: u64 = v["ids"][0].as_str().unwrap().parse().unwrap();
        assert_ne!(
            store.get(id).unwrap().unwrap().message.common.nsf_name,
            "edge-fw"
        );
        // Only nsf tokens can be bound.
        let (s, v) = call(
            &app,
            post(
                "/api/v1/tokens",
                json!({"name": "v", "role": "viewer", "nsf": "edge-fw"}).to_string(),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(v["error"].as_str().unwrap().contains("role nsf"), "{v}");
    }

    #[tokio::test]
    async fn requests_without_an_identity_are_limited_per_address() {
        let (app, _) = app_with(
            ApiConfig {
                rate_per_second: 1.0,
                burst: 2.0,
                ..ApiConfig::default()
            },
            None,
        );
        let codes = [
            raw(&app, get("/healthz")).await.status(),
            raw(&app, get("/api/v1/nsfs")).await.status(),
            raw(&app, with_token(get("/api/v1/nsfs"), "phr_guess"))
                .await
                .status(),
            raw(&app, get("/healthz")).await.status(),
        ];
        assert_eq!(
            codes,
            [
                StatusCode::OK,
                StatusCode::UNAUTHORIZED,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::TOO_MANY_REQUESTS
            ]
        );
        // A valid token is its own client.
        assert_eq!(
            raw(&app, authed(get("/api/v1/nsfs"))).await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn metrics_can_be_public() {
        let (app, _) = app_with(
            ApiConfig {
                public_metrics: true,
                ..ApiConfig::default()
            },
            None,
        );
        assert_eq!(raw(&app, get("/metrics")).await.status(), StatusCode::OK);
        assert_eq!(
            raw(&app, get("/api/v1/nsfs")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

/// Every documented operation is served (its method on its path reaches the handler, not the
/// fallback or a 405) and every other method on a documented path is refused with 405: the
/// router's routes and methods are the document's.
#[tokio::test]
async fn the_router_serves_exactly_the_documented_operations() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app_with_flows(Some(dir.path().to_path_buf()));
    let ops = crate::openapi::operations();
    assert!(ops.len() >= 20, "{ops:?}");
    let paths: std::collections::BTreeSet<&str> = ops.iter().map(|(_, p)| p.as_str()).collect();
    for path in paths {
        let uri = path
            .replace("{id}", "1")
            .replace("{name}", "nope")
            .replace("{module}", "nope");
        for method in ["get", "post", "put", "patch", "delete"] {
            let req = authed(
                Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap(),
            );
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let body = if resp
                .headers()
                .get("content-type")
                .is_some_and(|c| c == "text/event-stream")
            {
                String::new()
            } else {
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let documented = ops.iter().any(|(m, p)| m == method && p == path);
            if documented {
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("no route for"),
                    "{method} {path} is documented but not served: {status} {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented: {body}"
                );
            }
        }
    }
    // A path the document lacks is not served.
    let (s, v) = call(&app, get("/api/v1/undocumented")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("no route for")),
        "{v}"
    );
}

mod issue14 {
    //! Lock-out, acknowledgement records, identifiers and control characters in answers.

    use super::*;

    /// An app whose only admin token is `root` in the database (no configured token); its secret.
    fn app_with_db_admin() -> (axum::Router, Arc<dyn MessageStore>, String) {
        let config = ApiConfig::default();
        let tokens = crate::auth::TokenStore::in_memory(&[]).unwrap();
        let root = tokens
            .create("root", crate::auth::Role::Admin, None)
            .unwrap();
        let store: Arc<dyn MessageStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (writer, _thread) = StoreWriter::spawn(store.clone(), WriterConfig::default());
        let state = AppState {
            store: store.clone(),
            writer,
            metrics: None,
            auth: Arc::new(crate::auth::Auth::new(tokens, &config)),
            config: Arc::new(config),
            nsfs: Arc::new(pharos_store::inventory::Inventory::in_memory(&[])),
            flows: None,
            emit: None,
            console: Default::default(),
        };
        let app = router(state).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 9], 4321))));
        (app, store, root)
    }

    fn bearer(mut req: Request<Body>, token: &str) -> Request<Body> {
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        req
    }

    fn delete(path: &str) -> Request<Body> {
        Request::delete(path).body(Body::empty()).unwrap()
    }

    /// The raw body of `req` (made with the test admin token unless it has one).
    async fn body_bytes(app: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let resp = app.clone().oneshot(authed(req)).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    #[tokio::test]
    async fn the_last_admin_token_cannot_revoke_itself() {
        let (app, _, root) = app_with_db_admin();
        let (s, v) = call(&app, bearer(delete("/api/v1/tokens/root"), &root)).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        let e = v["error"].as_str().unwrap();
        assert!(
            e.contains("last active admin") && e.contains("create another admin token"),
            "{e}"
        );
        // Still valid.
        let (s, _) = call(&app, bearer(get("/api/v1/tokens"), &root)).await;
        assert_eq!(s, StatusCode::OK);
        // With a second admin, the first may go; then the second is the last.
        let (s, v) = call(
            &app,
            bearer(
                post(
                    "/api/v1/tokens",
                    json!({"name": "root2", "role": "admin"}).to_string(),
                ),
                &root,
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let root2 = v["token"].as_str().unwrap().to_string();
        let (s, v) = call(&app, bearer(delete("/api/v1/tokens/root"), &root)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, _) = call(&app, bearer(delete("/api/v1/tokens/root2"), &root2)).await;
        assert_eq!(s, StatusCode::CONFLICT);
    }

    /// A token of `role` named `name`, created through the API with the test admin; its secret.
    async fn token(app: &axum::Router, name: &str, role: &str) -> String {
        let (s, v) = call(
            app,
            post(
                "/api/v1/tokens",
                json!({"name": name, "role": role}).to_string(),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    fn ack(id: u64, body: &str) -> Request<Body> {
        post(&format!("/api/v1/events/{id}/ack"), body.to_string())
    }

    #[tokio::test]
    async fn acknowledging_records_actor_and_comment_and_a_second_ack_keeps_the_first() {
        let (app, store) = app();
        let alice = token(&app, "alice", "analyst").await;
        let bob = token(&app, "bob", "analyst").await;
        let mut m = vec![pharos_model::json::decode(&alarm(90)).unwrap()];
        let id = store.insert_batch(&mut m).unwrap()[0];

        let (s, first) = call(&app, bearer(ack(id, r#"{"comment": "on it"}"#), &alice)).await;
        assert_eq!(s, StatusCode::OK, "{first}");
        assert_eq!(first["state"], "acknowledged");
        assert_eq!(first["acked-by"], "alice");
        assert_eq!(first["ack-comment"], "on it");
        assert!(first["acked-at"].is_string(), "{first}");

        let (s, again) = call(&app, bearer(ack(id, r#"{"comment": "me too"}"#), &bob)).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!(again, first, "the original acknowledgement is kept");
        let (s, got) = call(&app, get(&format!("/api/v1/messages/{id}"))).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got, first, "GET shows the acknowledgement");
        let (_, page) = call(&app, get("/api/v1/messages?state=acknowledged")).await;
        assert_eq!(page["items"][0]["acked-by"], "alice", "{page}");

        // No body, or an empty one, is an acknowledgement without a comment.
        let mut m = vec![pharos_model::json::decode(&alarm(91)).unwrap()];
        let id2 = store.insert_batch(&mut m).unwrap()[0];
        let (s, v) = call(&app, bearer(ack(id2, ""), &bob)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["acked-by"], "bob");
        assert!(v.get("ack-comment").is_none(), "{v}");
    }

    #[tokio::test]
    async fn ack_comments_with_control_characters_or_too_long_are_refused() {
        let (app, store) = app();
        let mut m = vec![pharos_model::json::decode(&alarm(90)).unwrap()];
        let id = store.insert_batch(&mut m).unwrap()[0];
        let long = "x".repeat(crate::messages::MAX_ACK_COMMENT + 1);
        for (body, needle) in [
            (json!({"comment": "ok\u{1b}[2J"}).to_string(), "\\x1b"),
            (json!({"comment": "a\u{7f}"}).to_string(), "\\x7f"),
            (json!({"comment": long}).to_string(), "at most 1024"),
            (json!({"note": "x"}).to_string(), "unknown field"),
            ("{not json".to_string(), "comment"),
        ] {
            let (s, v) = call(&app, ack(id, &body)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
            assert!(v["error"].as_str().unwrap().contains(needle), "{v}");
        }
        assert_eq!(
            store.get(id).unwrap().unwrap().ack,
            None,
            "nothing was acknowledged"
        );
    }

    #[tokio::test]
    async fn a_pushed_nsf_name_with_nul_is_refused_naming_the_field() {
        let (app, store) = app();
        let mut doc = alarm(90);
        doc["ietf-i2nsf-monitoring-interface:i2nsf-event"]["nsf-name"] = json!("fw\u{0}1");
        let (s, v) = call(&app, post("/api/v1/push", doc.to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["details"][0]["path"], "i2nsf-event/nsf-name", "{v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains("nsf-name") && e.contains("\\x00"), "{e}");
        assert_eq!(store.count().unwrap(), 0);
    }

    #[tokio::test]
    async fn token_names_with_control_characters_get_400_naming_the_character() {
        let (app, _) = app();
        let (s, v) = call(
            &app,
            post(
                "/api/v1/tokens",
                json!({"name": "ci\u{1b}[31m", "role": "viewer"}).to_string(),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains("\\x1b") && e.contains("byte 2"), "{e}");
    }

    #[tokio::test]
    async fn answers_escape_del_and_c1_controls_in_message_text() {
        let (app, store) = app();
        let text = "x\u{1b}[2J y\u{7f} z\u{9b}31m";
        let mut m = pharos_model::json::decode(&alarm(90)).unwrap();
        m.common.message = Some(text.into());
        m.common.raw = Some(format!("raw {text}"));
        let id = store.insert_batch(&mut [m]).unwrap()[0];
        for path in [
            format!("/api/v1/messages/{id}"),
            "/api/v1/messages".to_string(),
        ] {
            let (s, body) = body_bytes(&app, get(&path)).await;
            assert_eq!(s, StatusCode::OK);
            let raw = String::from_utf8(body).unwrap();
            assert!(
                !raw.contains('\u{1b}') && !raw.contains('\u{7f}') && !raw.contains('\u{9b}'),
                "{path}: a raw control character in {raw:?}"
            );
            assert!(raw.contains("\\u007f") && raw.contains("\\u009b"), "{raw}");
            // Still JSON with the same text.
            let v: Value = serde_json::from_str(&raw).unwrap();
            assert!(holds_string(&v, text), "the text reads back unchanged: {v}");
        }
    }
}
