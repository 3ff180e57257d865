//! Emission throughput and latency, end to end against the real `pharos` binary (release):
//! `SUBS` webhook subscriptions to one local receiver, then `SUBS` SSE clients, each fed `N` pushed
//! messages; and, as the reference measured in the same run, the same pushes with no subscriber.
//!
//! Run: `bench/emit.sh` (or `cargo bench -p pharos --bench emit`). Env: `N` (messages, default
//! 5000), `SUBS` (subscribers, default 100), `PUSH_BATCH` (messages per push request, default
//! 500), `WEBHOOK_BATCH` (`true`: one POST per delivered batch, default; `false`: one per change).
//! Then `PACED` messages (default 1000) one per request at `RATE` per second (default 100), a load
//! the subscribers keep up with, for the latency without a backlog.
//! Latency: from the start of the push request that carried a message to its arrival at a
//! subscriber (webhook receiver or SSE client), over every (message, subscriber) pair.

#[path = "../tests/support.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use support::{Instance, client};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// When each message id's push request started.
type Sent = Arc<Mutex<HashMap<String, Instant>>>;
/// (message id, arrival) for every delivery.
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

fn alarm(i: usize) -> String {
    json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": "bench",
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "usage": i % 100, "threshold": 80}
    }})
    .to_string()
}

/// Pushes `n` alarms in requests of `batch`, one after the other; returns the elapsed time.
async fn push_all(inst: &Instance, n: usize, batch: usize, sent: &Sent) -> Duration {
    let http = client();
    let t0 = Instant::now();
    let mut i = 0;
    while i < n {
        let k = batch.min(n - i);
        let body: Vec<String> = (i..i + k).map(alarm).collect();
        let start = Instant::now();
        let resp = http
            .post(inst.url("/api/v1/push"))
            .body(body.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        let mut s = sent.lock().unwrap();
        for id in v["ids"].as_array().unwrap() {
            s.insert(id.as_str().unwrap().to_string(), start);
        }
        i += k;
    }
    t0.elapsed()
}

/// Pushes `n` alarms one per request at `rate` per second (a load the subscribers keep up with).
async fn push_paced(inst: &Instance, n: usize, rate: usize, sent: &Sent) {
    let http = client();
    let t0 = Instant::now();
    for i in 0..n {
        let at = t0 + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(at.into()).await;
        let start = Instant::now();
        let resp = http
            .post(inst.url("/api/v1/push"))
            .body(alarm(i))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        sent.lock()
            .unwrap()
            .insert(v["ids"][0].as_str().unwrap().to_string(), start);
    }
}

struct Figures {
    deliveries: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn figures(sent: &Sent, got: &Arrivals, t0: Instant) -> Figures {
    let sent = sent.lock().unwrap();
    let got = got.lock().unwrap();
    let mut lat: Vec<Duration> = got
        .iter()
        .map(|(id, at)| at.saturating_duration_since(sent[id]))
        .collect();
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    let last = got.iter().map(|g| g.1).max().unwrap();
    Figures {
        deliveries: got.len(),
        elapsed: last - t0,
        p50: q(0.5),
        p99: q(0.99),
        max: *lat.last().unwrap(),
    }
}

async fn wait_for(got: &Arrivals, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while got.lock().unwrap().len() < want {
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {want} deliveries after 600 s",
            got.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn webhook_receiver(got: Arrivals) -> SocketAddr {
    let app = axum::Router::new().route(
        "/hook/{i}",
        axum::routing::post(move |body: Bytes| {
            let got = got.clone();
            async move {
                let at = Instant::now();
                let v: Value = serde_json::from_slice(&body).unwrap();
                let docs = match v {
                    Value::Array(a) => a,
                    one => vec![one],
                };
                let mut g = got.lock().unwrap();
                for d in docs {
                    g.push((d["id"].as_str().unwrap().to_string(), at));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn sse_client(inst: &Instance, got: Arrivals) -> tokio::task::JoinHandle<()> {
    let mut resp = client()
        .get(inst.url("/api/v1/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let at = Instant::now();
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            let mut ids = Vec::new();
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let v: Value = serde_json::from_str(data).unwrap();
                    ids.push(v["id"].as_str().unwrap().to_string());
                }
            }
            let mut g = got.lock().unwrap();
            g.extend(ids.into_iter().map(|id| (id, at)));
        }
    })
}

fn row(what: &str, n: usize, f: &Figures) -> String {
    let secs = f.elapsed.as_secs_f64();
    format!(
        "| {what} | {n} | {} | {:.2} s | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms |",
        f.deliveries,
        secs,
        n as f64 / secs,
        f.deliveries as f64 / secs,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.max.as_secs_f64() * 1e3
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env("N", 5000);
    let subs = env("SUBS", 100);
    let push_batch = env("PUSH_BATCH", 500);
    let rate = env("RATE", 100);
    let paced = env("PACED", 1000);
    let webhook_batch = std::env::var("WEBHOOK_BATCH").unwrap_or_else(|_| "true".into()) != "false";
    let mut rows = Vec::new();

    // Reference: the same pushes, no subscriber.
    {
        let inst = Instance::start("[emit]\nenabled = false\n");
        let sent: Sent = Arc::default();
        let t = push_all(&inst, n, push_batch, &sent).await;
        rows.push(format!(
            "| push only (no subscriber) | {n} | - | {:.2} s | {:.0} | - | - | - | - |",
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64()
        ));
    }

    // Webhooks: `subs` subscriptions to one receiver.
    {
        let got: Arrivals = Arc::default();
        let addr = webhook_receiver(got.clone()).await;
        let mut cfg = String::new();
        for i in 0..subs {
            cfg.push_str(&format!(
                "[[subscription]]\nname = \"hook-{i}\"\n[subscription.sink]\ntype = \"webhook\"\nurl = \"http://{addr}/hook/{i}\"\nsecret = \"k\"\nbatch = {webhook_batch}\nallow = [\"127.0.0.1\"]\n"
            ));
        }
        let inst = Instance::start(&cfg);
        let sent: Sent = Arc::default();
        let t0 = Instant::now();
        push_all(&inst, n, push_batch, &sent).await;
        wait_for(&got, n * subs, "webhook").await;
        let f = figures(&sent, &got, t0);
        assert_eq!(f.deliveries, n * subs, "no duplicate");
        let mode = if webhook_batch {
            "batch = true"
        } else {
            "one POST per change"
        };
        rows.push(row(&format!("{subs} webhooks ({mode}), burst"), n, &f));
        got.lock().unwrap().clear();
        let sent: Sent = Arc::default();
        let t0 = Instant::now();
        push_paced(&inst, paced, rate, &sent).await;
        wait_for(&got, paced * subs, "webhook paced").await;
        let f = figures(&sent, &got, t0);
        assert_eq!(f.deliveries, paced * subs, "no duplicate");
        rows.push(row(
            &format!("{subs} webhooks ({mode}), paced {rate}/s"),
            paced,
            &f,
        ));
    }

    // SSE: `subs` clients.
    {
        let inst = Instance::start("");
        let got: Arrivals = Arc::default();
        let mut clients = Vec::new();
        for _ in 0..subs {
            clients.push(sse_client(&inst, got.clone()).await);
        }
        let sent: Sent = Arc::default();
        let t0 = Instant::now();
        push_all(&inst, n, push_batch, &sent).await;
        wait_for(&got, n * subs, "sse").await;
        let f = figures(&sent, &got, t0);
        assert_eq!(f.deliveries, n * subs, "no duplicate");
        rows.push(row(&format!("{subs} SSE clients, burst"), n, &f));
        got.lock().unwrap().clear();
        let sent: Sent = Arc::default();
        let t0 = Instant::now();
        push_paced(&inst, paced, rate, &sent).await;
        wait_for(&got, paced * subs, "sse paced").await;
        let f = figures(&sent, &got, t0);
        assert_eq!(f.deliveries, paced * subs, "no duplicate");
        rows.push(row(
            &format!("{subs} SSE clients, paced {rate}/s"),
            paced,
            &f,
        ));
        for c in clients {
            c.abort();
        }
    }

    println!(
        "| run | messages | deliveries | push start to last delivery | messages/s | deliveries/s | latency p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
