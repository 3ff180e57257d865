use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::test_support::{TestTls, item, sample, test_tls};
use super::*;
use crate::Change;

const SECRET: &str = "s3cret-key";

/// What the receiver got: headers of interest and the body.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    delivery: String,
    change: String,
    content_type: String,
    body: Vec<u8>,
}

/// A real HTTPS receiver on 127.0.0.1 that records requests and answers with `status`.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    tls: TestTls,
}

async fn receiver() -> Receiver {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let tls = test_tls();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let status = Arc::new(AtomicU16::new(200));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let (g, s) = (got.clone(), status.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let (g, s) = (g.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (g, s) = (g.clone(), s.clone());
                    async move {
                        let h = |n: &str| {
                            req.headers()
                                .get(n)
                                .map(|v| v.to_str().unwrap().to_string())
                                .unwrap_or_default()
                        };
                        let mut r = Received {
                            signature: h(SIGNATURE_HEADER),
                            delivery: h(DELIVERY_HEADER),
                            change: h(CHANGE_HEADER),
                            content_type: h("content-type"),
                            body: Vec::new(),
                        };
                        let body = axum::body::Body::new(req.into_body());
                        r.body = axum::body::to_bytes(body, usize::MAX)
                            .await
                            .unwrap()
                            .to_vec();
                        let code = s.load(Ordering::SeqCst);
                        if code == 200 {
                            g.lock().unwrap().push(r);
                        }
                        let mut resp = hyper::Response::new(String::new());
                        *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Receiver {
        port,
        got,
        status,
        tls,
    }
}

fn config(r: &Receiver) -> WebhookConfig {
    let mut c = WebhookConfig::new(
        format!("https://localhost:{}/hook?token=abc", r.port),
        SECRET,
    );
    c.ca_file = Some(r.tls.ca_file.clone());
    c.timeout = ConfigDuration(Duration::from_secs(5));
    c
}

fn items() -> Vec<Item> {
    vec![
        item(7, Change::Created, sample("ddos", 41)),
        item(8, Change::Updated, sample("ddos", 41)),
        item(9, Change::Created, sample("system-alarm", 42)),
    ]
}

#[tokio::test]
async fn webhook_posts_each_item_signed_in_order_over_https() {
    let r = receiver().await;
    let mut sink = config(&r).build().unwrap();
    let its = items();
    sink.deliver(&its).await.unwrap();
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    for (g, it) in got.iter().zip(&its) {
        assert!(
            verify(SECRET.as_bytes(), &g.body, &g.signature),
            "bad signature {g:?}"
        );
        assert!(!verify(b"other", &g.body, &g.signature));
        assert_eq!(g.content_type, "application/json");
        assert_eq!(g.delivery, it.seq.to_string());
        assert_eq!(g.change, it.change.as_str());
        let v: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(v, document(it));
        assert_eq!(v["seq"], it.seq);
        assert_eq!(v["id"], it.stored.message.common.id.unwrap().to_string());
        assert_eq!(v["state"], "open");
        let back = pharos_model::json::decode(&v["notification"]).unwrap();
        assert_eq!(back.kind, it.stored.message.kind);
    }
    assert!(
        sink.describe()
            .contains(&format!("localhost:{}/hook", r.port))
    );
    assert!(!sink.describe().contains("token"), "{}", sink.describe());
}

#[tokio::test]
async fn webhook_batch_mode_posts_one_array_signed_over_its_exact_bytes() {
    let r = receiver().await;
    let mut c = config(&r);
    c.batch = true;
    let mut sink = c.build().unwrap();
    let its = items();
    sink.deliver(&its).await.unwrap();
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signature, sign(SECRET.as_bytes(), &got[0].body));
    assert_eq!(got[0].delivery, "7");
    let v: Value = serde_json::from_slice(&got[0].body).unwrap();
    let seqs: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [7, 8, 9]);
    assert_eq!(v[1]["change"], "updated");
}

#[tokio::test]
async fn webhook_5xx_and_429_are_retry_and_400_is_rejected() {
    let r = receiver().await;
    let mut sink = config(&r).build().unwrap();
    let its = items();
    for code in [500, 503, 429, 408] {
        r.status.store(code, Ordering::SeqCst);
        let e = sink.deliver(&its).await.unwrap_err();
        assert!(matches!(e, SinkError::Retry(_)), "{code}: {e}");
    }
    r.status.store(400, Ordering::SeqCst);
    let e = sink.deliver(&its).await.unwrap_err();
    assert!(matches!(e, SinkError::Rejected(_)), "{e}");
    assert!(e.to_string().contains("400"), "{e}");
    assert!(!e.to_string().contains(SECRET));
    assert!(r.got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn webhook_retry_after_a_partial_batch_resumes_after_the_last_acknowledged_item() {
    let r = receiver().await;
    let mut sink = config(&r).build().unwrap();
    let its = items();
    sink.deliver(&its[..2]).await.unwrap();
    r.status.store(500, Ordering::SeqCst);
    assert!(matches!(sink.deliver(&its).await, Err(SinkError::Retry(_))));
    r.status.store(200, Ordering::SeqCst);
    sink.deliver(&its).await.unwrap();
    let seqs: Vec<String> = r
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|g| g.delivery.clone())
        .collect();
    assert_eq!(seqs, ["7", "8", "9"]);
}

#[tokio::test]
async fn webhook_connection_refused_is_retry() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut sink = WebhookConfig::new(format!("http://127.0.0.1:{port}/"), SECRET)
        .build()
        .unwrap();
    let e = sink.deliver(&items()).await.unwrap_err();
    assert!(matches!(e, SinkError::Retry(_)), "{e}");
}

#[tokio::test]
async fn webhook_untrusted_certificate_is_retry_not_ok() {
    let r = receiver().await;
    let mut c = config(&r);
    c.ca_file = None;
    let e = c.build().unwrap().deliver(&items()).await.unwrap_err();
    assert!(matches!(e, SinkError::Retry(_)), "{e}");
    assert!(r.got.lock().unwrap().is_empty());
}

#[test]
fn webhook_url_not_in_allow_list_is_a_build_error_naming_url_and_key() {
    let mut c = WebhookConfig::new("https://hooks.example.net/x?token=t", SECRET);
    c.allow = vec!["other.example.net".into(), "192.0.2.0/24".into()];
    let e = c.build().unwrap_err();
    assert_eq!(e.key, "webhook.allow");
    assert!(e.message.contains("https://hooks.example.net/x"), "{e}");
    assert!(!e.message.contains("token"), "{e}");
    c.allow.push("HOOKS.example.net".into());
    c.build().unwrap();

    let mut c = WebhookConfig::new("https://192.0.2.77/x", SECRET);
    c.allow = vec!["192.0.2.0/24".into()];
    c.build().unwrap();
    c.allow = vec!["198.51.100.0/24".into()];
    assert_eq!(c.build().unwrap_err().key, "webhook.allow");
    c.allow = vec!["not a host!".into()];
    assert!(c.build().unwrap_err().message.contains("CIDR"));
}

#[test]
fn webhook_plain_http_to_a_non_loopback_host_is_a_build_error() {
    let e = WebhookConfig::new("http://hooks.example.net/x", SECRET)
        .build()
        .unwrap_err();
    assert_eq!(e.key, "webhook.url");
    assert!(e.message.contains("https://"), "{e}");
    WebhookConfig::new("http://127.0.0.1:9/x", SECRET)
        .build()
        .unwrap();
    WebhookConfig::new("http://[::1]:9/x", SECRET)
        .build()
        .unwrap();
    WebhookConfig::new("http://localhost:9/x", SECRET)
        .build()
        .unwrap();
    let e = WebhookConfig::new("https://h.example.net/", "")
        .build()
        .unwrap_err();
    assert_eq!(e.key, "webhook.secret");
}

#[test]
fn webhook_config_parses_with_defaults_and_refuses_unknown_keys() {
    let c: WebhookConfig = serde_json::from_value(serde_json::json!({
        "url": "https://h.example.net/", "secret": "k", "allow": ["h.example.net"]
    }))
    .unwrap();
    assert!(!c.batch);
    assert_eq!(c.timeout.0, Duration::from_secs(10));
    let c: WebhookConfig = serde_json::from_value(serde_json::json!({
        "url": "https://h.example.net/", "secret": "k", "timeout": "500ms"
    }))
    .unwrap();
    assert_eq!(c.timeout.0, Duration::from_millis(500));
    assert!(!format!("{c:?}").contains("\"k\""));
    let e = serde_json::from_value::<WebhookConfig>(serde_json::json!({
        "url": "https://h.example.net/", "secret": "k", "timout": "5s"
    }))
    .unwrap_err();
    assert!(e.to_string().contains("timout"), "{e}");
    let e = serde_json::from_value::<WebhookConfig>(serde_json::json!({
        "url": "https://h.example.net/", "secret": "k", "timeout": "5x"
    }))
    .unwrap_err();
    assert!(e.to_string().contains("expected a duration"), "{e}");
}

#[test]
fn sign_and_verify_agree_and_verify_rejects_tampering() {
    let s = sign(b"k", b"body");
    assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
    assert!(verify(b"k", b"body", &s));
    assert!(!verify(b"k", b"body!", &s));
    assert!(!verify(b"k", b"body", "sha256=00"));
    assert!(!verify(b"k", b"body", &s[7..]));
}

#[test]
fn webhook_config_is_registered_and_writes_its_keys_in_order() {
    assert!(crate::sinks::find("webhook").is_some());
    let mut c = WebhookConfig::new("https://h.example/x", "k");
    c.ca_file = Some("/etc/ca.pem".into());
    c.batch = true;
    crate::sink::assert_keys_round_trip(c);
}
