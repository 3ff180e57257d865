//! End-to-end emission: the real `pharos` binary pushing to a real webhook receiver, streaming SSE
//! to a real client and sending syslog to a real UDP socket.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use support::{Instance, client};

const DEADLINE: Duration = Duration::from_secs(30);

fn alarm(usage: u64) -> Value {
    json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "fw-1",
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "usage": usage, "threshold": 80}
    }})
}

/// Pushes `n` alarms in one request; returns their ids in order.
async fn push(inst: &Instance, from: u64, n: u64) -> Vec<String> {
    let body: Vec<String> = (from..from + n).map(|i| alarm(i).to_string()).collect();
    let v = support::push_ok(inst, body.join("\n")).await;
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

async fn subscription(inst: &Instance, name: &str) -> Value {
    support::get_json(inst, &format!("/api/v1/subscriptions/{name}")).await
}

/// Polls the async condition `f` every 20 ms until true; panics naming `what` after DEADLINE.
macro_rules! until {
    ($what:expr, $inst:expr, $f:expr) => {{
        let deadline = Instant::now() + DEADLINE;
        loop {
            if $f {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {}: {}",
                $what,
                $inst.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

/// What the webhook receiver got: (seq, message id) per POST, in arrival order.
type Received = Arc<Mutex<Vec<(u64, String)>>>;

const SECRET: &str = "e2e-secret";

/// A test CA (PEM in `ca_file`, for the webhook's `ca_file`) and a server configuration with a
/// certificate it issued for 127.0.0.1.
struct ReceiverTls {
    _dir: tempfile::TempDir,
    ca_file: std::path::PathBuf,
    server: Arc<rustls::ServerConfig>,
}

fn receiver_tls() -> ReceiverTls {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    support::install_crypto();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "e2e webhook CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    ReceiverTls {
        _dir: dir,
        ca_file,
        server: Arc::new(server),
    }
}

/// Serves POST /hook over HTTPS on `addr`, checking each signature and recording the document.
async fn receiver_https(
    addr: SocketAddr,
    got: Received,
    tls: Arc<rustls::ServerConfig>,
) -> tokio::task::JoinHandle<()> {
    let app = hook_app(got);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            conns.spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
            });
        }
    })
}

/// Serves POST /hook on `addr`, checking each signature and recording the document.
async fn receiver(addr: SocketAddr, got: Received) -> tokio::task::JoinHandle<()> {
    let app = hook_app(got);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

/// POST /hook: checks the signature, records (seq, id).
fn hook_app(got: Received) -> axum::Router {
    axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let got = got.clone();
            async move {
                let sig = headers
                    .get(pharos_emit::webhook::SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !pharos_emit::webhook::verify(SECRET.as_bytes(), &body, sig) {
                    return StatusCode::UNAUTHORIZED;
                }
                let v: Value = serde_json::from_slice(&body).unwrap();
                got.lock().unwrap().push((
                    v["seq"].as_u64().unwrap(),
                    v["id"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v["id"].to_string()),
                ));
                StatusCode::OK
            }
        }),
    )
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn hook_config(addr: SocketAddr, ca_file: &std::path::Path) -> String {
    format!(
        r#"
[[subscription]]
name = "hook"
[subscription.sink]
type = "webhook"
url = "https://{addr}/hook"
secret = "{SECRET}"
timeout = "2s"
ca_file = {ca:?}
allow = ["127.0.0.1"]
"#,
        ca = ca_file.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_webhook_down_then_up_gets_every_message_once_in_order_and_nothing_twice_after_restart()
 {
    let addr = free_port();
    let tls = receiver_tls();
    let cfg = hook_config(addr, &tls.ca_file);
    let inst = Instance::start(&cfg);
    let mut ids = push(&inst, 0, 10).await;
    ids.extend(push(&inst, 10, 10).await);
    // The receiver is down: the subscription retries.
    until!("a retry while the receiver is down", inst, {
        let s = subscription(&inst, "hook").await;
        s["state"]["retries"].as_u64().unwrap_or(0) >= 1 && s["state"]["delivered"] == 0
    });
    let s = subscription(&inst, "hook").await;
    assert!(s["state"]["last_error"].as_str().is_some(), "{s}");
    assert_eq!(s["state"]["pending"], 20, "{s}");

    let got: Received = Arc::default();
    let server = receiver_https(addr, got.clone(), tls.server.clone()).await;
    until!("20 deliveries", inst, got.lock().unwrap().len() >= 20);
    until!("delivered = 20", inst, {
        subscription(&inst, "hook").await["state"]["delivered"] == 20
    });
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 20, "{got:?}");
        let got_ids: Vec<&str> = got.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(got_ids, ids, "every message once, in push order");
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "seqs increase");
    }
    let metrics = support::metrics_text(&inst).await;
    assert!(
        metrics.contains("pharos_emit_delivered_total{subscription=\"hook\"} 20"),
        "{metrics}"
    );
    // The log says once that the receiver fails, however many retries, and once that it is back.
    let log = inst.log();
    let lines = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains("hook"))
            .count()
    };
    assert_eq!(lines("sink failing"), 1, "{log}");
    assert_eq!(lines("sink delivers again"), 1, "{log}");

    // Restart on the same data: nothing is delivered again; new messages are.
    let dir = inst.stop_keep_dir();
    let inst = Instance::start_in(dir, &cfg);
    let s = subscription(&inst, "hook").await;
    assert_eq!(s["state"]["delivered"], 20, "counters persist: {s}");
    let more = push(&inst, 20, 3).await;
    until!("23 deliveries", inst, got.lock().unwrap().len() >= 23);
    until!("delivered = 23 and nothing pending", inst, {
        let s = subscription(&inst, "hook").await;
        s["state"]["delivered"] == 23 && s["state"]["pending"] == 0
    });
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 23, "nothing twice: {got:?}");
    let tail: Vec<&str> = got[20..].iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(tail, more);
    server.abort();
}

/// Reads SSE events (id, event, data) from `resp` until `n` arrived.
async fn read_events(
    resp: &mut reqwest::Response,
    buf: &mut String,
    n: usize,
) -> Vec<(u64, String, Value)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut ev, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse::<u64>().unwrap());
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
            return out;
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out: {} of {n} events", out.len()))
            .unwrap()
            .expect("stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_client_reconnecting_with_last_event_id_gets_exactly_the_missing_events_in_order() {
    let inst = Instance::start("");
    let first = push(&inst, 0, 5).await;
    let http = client();
    let mut resp = http
        .get(inst.url("/api/v1/stream?last_event_id=0&kind=system-alarm"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    let got = read_events(&mut resp, &mut buf, 3).await;
    let ids: Vec<&str> = got.iter().map(|e| e.2["id"].as_str().unwrap()).collect();
    assert_eq!(ids, first[..3]);
    assert!(got.iter().all(|e| e.1 == "created"));
    let last_seen = got[2].0;
    drop(resp);

    let second = push(&inst, 5, 4).await;
    let mut resp = http
        .get(inst.url("/api/v1/stream?kind=system-alarm"))
        .header("Last-Event-ID", last_seen.to_string())
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    let got = read_events(&mut resp, &mut buf, 6).await;
    let ids: Vec<&str> = got.iter().map(|e| e.2["id"].as_str().unwrap()).collect();
    let missing: Vec<&str> = first[3..]
        .iter()
        .chain(second.iter())
        .map(String::as_str)
        .collect();
    assert_eq!(ids, missing, "exactly the missing ones, in order");
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    // Then live, with no duplicate: the next event is the next push.
    let live = push(&inst, 9, 1).await;
    let got = read_events(&mut resp, &mut buf, 1).await;
    assert_eq!(got[0].2["id"].as_str().unwrap(), live[0]);
    // An acknowledgement is a `state` change of the same message.
    let r = http
        .post(inst.url(&format!("/api/v1/events/{}/ack", live[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = read_events(&mut resp, &mut buf, 1).await;
    assert_eq!(got[0].1, "state");
    assert_eq!(got[0].2["state"], "acknowledged");
    // SIGTERM with the stream open: the stream ends and Pharos exits cleanly.
    let mut inst = inst;
    let status = inst.terminate();
    assert!(status.success(), "{status}: {}", inst.log());
    let end = tokio::time::timeout(DEADLINE, async {
        loop {
            match resp.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream did not end at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_subscription_sends_valid_rfc5424_lines_to_a_udp_receiver() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let inst = Instance::start(&format!(
        r#"
[[subscription]]
name = "siem"
[subscription.filter]
nsf = ["fw-1"]
[subscription.sink]
type = "syslog"
address = "{addr}"
hostname = "pharos-e2e"
"#
    ));
    let mut other = alarm(1);
    other["ietf-i2nsf-monitoring-interface:i2nsf-event"]["nsf-name"] = json!("fw-2");
    let (low, high) = (other, alarm(99));
    let resp = client()
        .post(inst.url("/api/v1/push"))
        .body(format!("{low}\n{high}\n{high}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    while lines.len() < 2 {
        let (n, _) = tokio::time::timeout(DEADLINE, sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no syslog datagram: {}", inst.log()))
            .unwrap();
        lines.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    for line in &lines {
        let p = pharos_wire::syslog::parse(
            line,
            &pharos_wire::syslog::ParseOptions::new(chrono::Utc::now()),
        );
        assert_eq!(p.protocol, pharos_wire::syslog::Protocol::Rfc5424, "{line}");
        assert!(p.anomalies.is_empty(), "{line}");
        assert_eq!(p.hostname, Some("pharos-e2e"), "{line}");
        assert_eq!(p.msg_id, Some("system-alarm"), "{line}");
    }
    // The other NSF's alarm is filtered out: nothing else arrives once the subscription caught up.
    until!("caught up", inst, {
        subscription(&inst, "siem").await["state"]["pending"] == 0
    });
    let extra = tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await;
    assert!(extra.is_err(), "unexpected datagram");
    assert_eq!(subscription(&inst, "siem").await["state"]["delivered"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_created_webhook_needs_allow_hosts_and_survives_restart() {
    let addr = free_port();
    let body = json!({
        "name": "api-hook",
        "sink": {"type": "webhook", "url": format!("http://{addr}/hook"), "secret": SECRET}
    });
    let inst = Instance::start("");
    let r = client()
        .post(inst.url("/api/v1/subscriptions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("[emit] allow_hosts"),
        "{e}"
    );
    drop(inst);

    let cfg = "[emit]\nallow_hosts = [\"127.0.0.1\"]\n";
    let inst = Instance::start(cfg);
    let r = client()
        .post(inst.url("/api/v1/subscriptions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let got: Received = Arc::default();
    let server = receiver(addr, got.clone()).await;
    let ids = push(&inst, 0, 2).await;
    until!("2 deliveries", inst, got.lock().unwrap().len() >= 2);
    let dir = inst.stop_keep_dir();
    let inst = Instance::start_in(dir, cfg);
    let s = subscription(&inst, "api-hook").await;
    assert_eq!(s["origin"], "api", "{s}");
    let more = push(&inst, 2, 1).await;
    until!("3 deliveries", inst, got.lock().unwrap().len() >= 3);
    let r = client()
        .delete(inst.url("/api/v1/subscriptions/api-hook"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let got: Vec<String> = got.lock().unwrap().iter().map(|g| g.1.clone()).collect();
    assert_eq!(got, [ids, more].concat());
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_subscription_publishes_each_change_on_its_kind_subject() {
    use futures_util::StreamExt;
    let Some(server) = pharos_model::conformance::NatsServer::start() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.port);
    let nats = async_nats::connect(&url).await.unwrap();
    let mut sub = nats.subscribe("pharos.>").await.unwrap();
    nats.flush().await.unwrap();
    let inst = Instance::start(&format!(
        r#"
[[subscription]]
name = "bus"
[subscription.sink]
type = "nats"
url = "{url}"
"#
    ));
    let ids = push(&inst, 0, 3).await;
    let r = client()
        .post(inst.url(&format!("/api/v1/events/{}/ack", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    while got.len() < 4 {
        let m = tokio::time::timeout(DEADLINE, sub.next())
            .await
            .unwrap_or_else(|_| panic!("{} of 4 NATS messages: {}", got.len(), inst.log()))
            .unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        got.push((m.subject.to_string(), v));
    }
    assert!(
        got.iter().all(|(s, _)| s == "pharos.alarms.system.cpu"),
        "{got:?}"
    );
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|(_, v)| (v["id"].as_str().unwrap(), v["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (ids[0].as_str(), "created"),
            (ids[1].as_str(), "created"),
            (ids[2].as_str(), "created"),
            (ids[0].as_str(), "state"),
        ]
    );
    until!("delivered = 4", inst, {
        subscription(&inst, "bus").await["state"]["delivered"] == 4
    });
}
