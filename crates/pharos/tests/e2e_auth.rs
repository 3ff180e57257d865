//! End-to-end: authentication, roles, token management (API and CLI), mutual TLS for NSFs and rate
//! limits, against the real binary. Every refused write is checked to have stored or changed
//! nothing.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Instance, auth_headers, client};

/// A client without any token.
fn anonymous() -> reqwest::Client {
    support::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A client that sends `token`.
fn with_token(token: &str) -> reqwest::Client {
    support::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(auth_headers(token))
        .build()
        .unwrap()
}

fn alarm(nsf: &str, usage: u64) -> Value {
    json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
        "nsf-name": nsf,
        "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "usage": usage, "threshold": 80}
    }})
}

/// Every stored message, read with the admin token.
async fn messages(inst: &Instance, http: &reqwest::Client) -> Vec<Value> {
    let v: Value = http
        .get(inst.url("/api/v1/messages?limit=10000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// `POST /api/v1/push` of `body` with `http`'s credentials.
async fn push(inst: &Instance, http: &reqwest::Client, body: &Value) -> reqwest::Response {
    support::push_as(inst, http, body.to_string()).await
}

async fn count(inst: &Instance) -> usize {
    messages(inst, &client()).await.len()
}

async fn create_token(inst: &Instance, name: &str, role: &str) -> String {
    let r = client()
        .post(inst.url("/api/v1/tokens"))
        .json(&json!({"name": name, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

fn cli(inst: &Instance, args: &[&str]) -> std::process::Output {
    std::process::Command::new(support::bin())
        .args(args)
        .arg("--config")
        .arg(inst.dir.path().join("pharos.toml"))
        .output()
        .unwrap()
}

/// Runs `pharos ARGS --config ...`, fails the test unless it succeeds; its stdout, trimmed.
fn cli_ok(inst: &Instance, args: &[&str]) -> String {
    let out = cli(inst, args);
    assert!(
        out.status.success(),
        "pharos {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_tokens_get_401_and_low_roles_get_403_changing_nothing() {
    let inst = Instance::start("");
    let admin = client();
    let r = push(&inst, &admin, &alarm("fw-1", 91)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let id = v["ids"][0].as_str().unwrap().to_string();

    for http in [anonymous(), with_token("phr_not-a-token")] {
        for path in ["/api/v1/messages", "/metrics", "/api/v1/tokens"] {
            let r = http.get(inst.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
            assert!(
                r.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
            let v: Value = r.json().await.unwrap();
            assert!(v["error"].as_str().unwrap().contains("token"), "{v}");
        }
        let r = push(&inst, &http, &alarm("fw-1", 92)).await;
        assert_eq!(r.status(), 401);
        let r = http
            .post(inst.url(&format!("/api/v1/events/{id}/ack")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = anonymous().get(inst.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "/healthz stays public");

    let viewer = with_token(&create_token(&inst, "viewer-1", "viewer").await);
    let r = viewer
        .get(inst.url("/api/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = viewer.get(inst.url("/api/v1/tokens")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = viewer
        .post(inst.url("/api/v1/tokens"))
        .json(&json!({"name": "sneaky", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = viewer
        .post(inst.url(&format!("/api/v1/events/{id}/ack")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("analyst"), "{v}");
    let r = push(&inst, &viewer, &alarm("fw-1", 93)).await;
    assert_eq!(r.status(), 403);

    // Nothing was stored or changed by the refused requests.
    let all = messages(&inst, &admin).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["state"], "open", "{}", all[0]);
    let v: Value = admin
        .get(inst.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["e2e-admin", "viewer-1"]);
    assert!(
        support::metric(
            &inst,
            "pharos_api_auth_failures_total",
            &["reason=\"missing\""]
        )
        .await
            > 0
    );
    assert!(
        support::metric(
            &inst,
            "pharos_api_auth_failures_total",
            &["reason=\"forbidden\""]
        )
        .await
            > 0
    );
    assert!(!inst.log().contains("phr_"), "a token reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_get_401_whether_revoked_by_api_or_cli() {
    let inst = Instance::start("");
    let admin = client();

    // Revoked through the API.
    let t = with_token(&create_token(&inst, "via-api", "analyst").await);
    assert_eq!(
        t.get(inst.url("/api/v1/nsfs"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = admin
        .delete(inst.url("/api/v1/tokens/via-api"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = t.get(inst.url("/api/v1/nsfs")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");

    // Created and revoked with the CLI while the daemon runs.
    let secret = cli_ok(
        &inst,
        &["token", "create", "--role", "viewer", "--name", "via-cli"],
    );
    assert!(secret.starts_with("phr_"), "{secret}");
    let t = with_token(&secret);
    assert_eq!(
        t.get(inst.url("/api/v1/nsfs"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // An nsf token bound to one NSF with the CLI: its pushes carry that name.
    let out = cli_ok(
        &inst,
        &[
            "token", "create", "--role", "nsf", "--name", "fw-cli", "--nsf", "edge-fw",
        ],
    );
    let fw = with_token(&out);
    let r = push(&inst, &fw, &alarm("pretends-to-be-core", 93)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let stored = support::get_json(
        &inst,
        &format!("/api/v1/messages/{}", v["ids"][0].as_str().unwrap()),
    )
    .await;
    assert_eq!(stored["nsf-name"], "edge-fw", "{stored}");
    let out = cli(
        &inst,
        &[
            "token", "create", "--role", "viewer", "--name", "x", "--nsf", "edge-fw",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("role nsf"));

    let out = cli(&inst, &["token", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("via-cli") && text.contains("via-api") && text.contains("edge-fw"),
        "{text}"
    );
    assert!(!text.contains(&secret));
    cli_ok(&inst, &["token", "revoke", "via-cli"]);
    assert_eq!(
        t.get(inst.url("/api/v1/nsfs"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Expired.
    let out = cli_ok(
        &inst,
        &[
            "token",
            "create",
            "--role",
            "viewer",
            "--name",
            "short",
            "--expires",
            "2s",
        ],
    );
    let t = with_token(&out);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = t.get(inst.url("/api/v1/nsfs")).send().await.unwrap();
        if s.status() == 401 {
            let v: Value = s.json().await.unwrap();
            assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
            break;
        }
        assert_eq!(s.status(), 200);
        assert!(Instant::now() < deadline, "the token did not expire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count(&inst).await, 1, "only the bound nsf token's push");
}

#[test]
fn first_start_prints_an_admin_token_once_and_it_works() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("pharos.toml");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[store]\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(support::bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("pharos.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads stdout to its end, so the daemon never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let token = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the admin token is printed on stdout");
        if let Some(t) = line.strip_prefix("PHAROS_TOKEN=") {
            break t.to_string();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        if let Ok(s) = std::fs::read_to_string(data.join("api.addr"))
            && s.ends_with('\n')
        {
            break s.trim().to_string();
        }
        assert!(Instant::now() < deadline, "pharos did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = with_token(&token)
            .get(format!("http://{addr}/api/v1/tokens"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["items"][0]["name"], "admin");
        assert_eq!(v["items"][0]["role"], "admin");
        let r = anonymous()
            .get(format!("http://{addr}/api/v1/tokens"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(dir.path().join("pharos.log")).unwrap();
    assert!(!log.contains(&token), "the token reached the log: {log}");
    let db = std::fs::read(data.join("auth.db")).unwrap();
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes()),
        "the secret is stored"
    );
}

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
    rogue_client: (String, String),
}

fn pki() -> Pki {
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(p, key))
    };
    let leaf = |issuer: &Issuer<'_, KeyPair>, name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (ca_pem, issuer) = ca("Pharos test CA");
    let (_, rogue) = ca("Rogue CA");
    Pki {
        ca: ca_pem,
        server: leaf(&issuer, "localhost", ExtendedKeyUsagePurpose::ServerAuth),
        client: leaf(
            &issuer,
            "fw-tls.example.net",
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
        rogue_client: leaf(
            &rogue,
            "fw-tls.example.net",
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    }
}

/// An HTTPS client trusting the test CA, with a client certificate if given, connecting
/// `localhost` to `addr`.
fn https(
    pki: &Pki,
    cert: Option<&(String, String)>,
    addr: std::net::SocketAddr,
    token: Option<&str>,
) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let tls = match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .resolve("localhost", addr)
        .tls_backend_preconfigured(tls);
    if let Some(t) = token {
        builder = builder.default_headers(auth_headers(t));
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsfs_push_with_client_certificates_of_the_configured_ca_only() {
    let pki = pki();
    let tmp = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let extra = format!(
        "[api.tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n\n[[nsf]]\nname = \"edge-fw\"\nhostnames = [\"fw-tls.example.net\"]\n",
        w("server.pem", &pki.server.0),
        w("server.key", &pki.server.1),
        w("ca.pem", &pki.ca),
    );
    let inst = Instance::start_in(tmp, &extra);
    let addr: std::net::SocketAddr = inst.base.trim_start_matches("https://").parse().unwrap();
    let url = |p: &str| format!("https://localhost:{}{p}", addr.port());
    let admin = https(&pki, None, addr, Some(ADMIN_TOKEN));
    let all = |http: reqwest::Client| async move {
        let v: Value = http
            .get(format!(
                "https://localhost:{}/api/v1/messages?limit=10000",
                addr.port()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"].as_array().cloned().unwrap()
    };

    // A certificate from an unknown CA: the handshake fails.
    let rogue = https(&pki, Some(&pki.rogue_client), addr, None);
    let e = rogue
        .post(url("/api/v1/push"))
        .body(alarm("liar", 99).to_string())
        .send()
        .await;
    assert!(
        e.is_err(),
        "a certificate of another CA was accepted: {e:?}"
    );
    assert_eq!(all(admin.clone()).await.len(), 0);

    // A certificate of the configured CA pushes without a token; its NSF identity is stored.
    let nsf = https(&pki, Some(&pki.client), addr, None);
    let r = nsf
        .post(url("/api/v1/push"))
        .body(alarm("claims-to-be-someone-else", 97).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let items = all(admin.clone()).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["nsf-name"], "edge-fw", "{}", items[0]);
    // The inventory shows the pushing NSF as heard from.
    let nsfs: Value = admin
        .get(url("/api/v1/nsfs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fw = nsfs["items"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "edge-fw"))
        .unwrap_or_else(|| panic!("edge-fw in {nsfs}"));
    assert_eq!(fw["received"], 1, "{fw}");
    assert_eq!(fw["detected-format"], "i2nsf-json", "{fw}");
    assert!(fw["last-seen"].is_string(), "{fw}");
    // The certificate is for pushing only.
    let r = nsf.get(url("/api/v1/messages")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Without a certificate or a token, push is refused.
    let r = https(&pki, None, addr, None)
        .post(url("/api/v1/push"))
        .body(alarm("x", 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(all(admin).await.len(), 1);
}

#[test]
fn a_bad_tls_path_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pharos.toml");
    std::fs::write(
        &cfg,
        "[api.tls]\ncert = \"/nonexistent/server.pem\"\nkey = \"/nonexistent/server.key\"\n",
    )
    .unwrap();
    for cmd in ["check-config", "run"] {
        let mut c = std::process::Command::new(support::bin());
        c.arg(cmd);
        if cmd == "run" {
            c.arg("--config");
        }
        let out = c.arg(&cfg).current_dir(dir.path()).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("[api.tls] cert")
                && err.contains("/nonexistent/server.pem")
                && err.contains("PEM"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_body_gets_413_and_stores_nothing() {
    let inst = Instance::start("max_body_bytes = 2048\n");
    let big: Vec<Value> = (0..100).map(|i| alarm("fw-big", i)).collect();
    let r = push(&inst, &client(), &Value::Array(big)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(count(&inst).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_in_a_second_get_some_429_with_retry_after_and_the_rest_2xx() {
    let inst = Instance::start("");
    let viewer = with_token(&create_token(&inst, "busy", "viewer").await);
    let started = Instant::now();
    let results: Vec<(u16, Option<String>)> = futures_util::stream::iter(0..1000)
        .map(|_| {
            let viewer = viewer.clone();
            let url = inst.url("/api/v1/nsfs");
            async move {
                let r = viewer.get(url).send().await.unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), retry)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = started.elapsed();
    let ok = results
        .iter()
        .filter(|(s, _)| (200..300).contains(s))
        .count();
    let limited: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(ok + limited.len(), 1000, "only 2xx and 429");
    assert!(ok >= 200, "the burst passes: {ok} 2xx in {took:?}");
    assert!(!limited.is_empty(), "no 429 in {took:?}");
    assert!(
        limited
            .iter()
            .all(|(_, r)| r.as_deref().is_some_and(|s| s.parse::<u64>().unwrap() >= 1))
    );
    // Another client is not affected.
    assert_eq!(
        client()
            .get(inst.url("/api/v1/nsfs"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(support::metric(&inst, "pharos_api_rate_limited_total", &["limit=\"api\""]).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_per_nsf_limits_refuse_whole_requests_and_store_nothing() {
    let inst = Instance::start(
        "push_rate_per_second = 2\npush_burst = 3\nnsf_messages_per_second = 4\nmax_push_messages = 4\n",
    );
    let nsf = with_token(&create_token(&inst, "fw-token", "nsf").await);
    let push = |body: String| {
        let nsf = nsf.clone();
        let url = inst.url("/api/v1/push");
        async move {
            let r = nsf.post(url).body(body).send().await.unwrap();
            let retry = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry)
        }
    };
    let batch =
        |name: &str, n: u64| Value::Array((0..n).map(|i| alarm(name, i)).collect()).to_string();
    assert_eq!(push(batch("fw-flood", 4)).await, (200, false));
    // fw-flood has used its messages for this second: refused whole, nothing stored.
    assert_eq!(push(batch("fw-flood", 2)).await, (429, true));
    assert_eq!(count(&inst).await, 4);
    assert!(
        support::metric(
            &inst,
            "pharos_push_rejected_total",
            &["reason=\"nsf_rate\""]
        )
        .await
            >= 2
    );
    // Another NSF is not starved by the flooding one.
    let (s, _) = push(batch("fw-quiet", 1)).await;
    assert_eq!(s, 200);
    // Requests beyond the push rate: 429 with Retry-After, and only the accepted ones stored.
    let mut accepted = 0;
    let mut limited = 0;
    for i in 0..10 {
        match push(batch(&format!("fw-{i}"), 1)).await {
            (200, _) => accepted += 1,
            (429, true) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(limited > 0, "no push was rate-limited");
    assert_eq!(count(&inst).await, 5 + accepted);
    assert!(support::metric(&inst, "pharos_api_rate_limited_total", &["limit=\"push\""]).await > 0);
}

/// Starts `pharos run` on a configuration without `[[api.token]]` whose only admin token, `root`,
/// was made with `pharos token create` before the start; the instance and root's secret.
fn start_with_db_admin_only() -> (Instance, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("pharos.toml");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[store]\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(support::bin())
        .args([
            "token", "create", "--role", "admin", "--name", "root", "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let inst = Instance::launch(dir, false);
    (inst, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_token_is_not_revoked_by_api_or_cli_unless_forced() {
    let (inst, root) = start_with_db_admin_only();
    let as_root = with_token(&root);

    // HTTP: the last admin revoking itself gets 409 and stays valid.
    let r = as_root
        .delete(inst.url("/api/v1/tokens/root"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("last active admin"),
        "{v}"
    );
    let r = as_root
        .get(inst.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // CLI: refused with a message that says what to do, unless --force.
    let out = cli(&inst, &["token", "revoke", "root"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("last active admin") && err.contains("--force"),
        "{err}"
    );
    let r = as_root
        .get(inst.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the CLI revoked nothing");

    // With a second admin, root may go; the log names who revoked which token.
    let r = as_root
        .post(inst.url("/api/v1/tokens"))
        .json(&json!({"name": "root2", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let root2 = v["token"].as_str().unwrap().to_string();
    let r = with_token(&root2)
        .delete(inst.url("/api/v1/tokens/root"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = as_root
        .get(inst.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let log = inst.log();
    assert!(
        log.lines()
            .any(|l| l.contains("revoked") && l.contains("token=root ") && l.contains("by=root2")),
        "{log}"
    );
    assert!(
        !log.contains(&root) && !log.contains(&root2),
        "a secret reached the log"
    );

    // root2 is now the last admin: the CLI refuses, --force revokes it.
    assert!(!cli(&inst, &["token", "revoke", "root2"]).status.success());
    cli_ok(&inst, &["token", "revoke", "root2", "--force"]);
    let r = with_token(&root2)
        .get(inst.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_nsf_name_with_nul_gets_400_naming_the_field_and_stores_nothing() {
    let inst = Instance::start("");
    let r = push(&inst, &client(), &alarm("fw\u{0}1", 91)).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("i2nsf-event/nsf-name") && e.contains("\\x00"),
        "{e}"
    );
    assert_eq!(v["details"][0]["path"], "i2nsf-event/nsf-name");
    assert_eq!(count(&inst).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_twice_with_a_comment_records_the_actor_and_counts_once() {
    let inst = Instance::start("");
    let alice = create_token(&inst, "alice", "analyst").await;
    let bob = create_token(&inst, "bob", "analyst").await;
    let r = push(&inst, &client(), &alarm("fw-1", 91)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let id = v["ids"][0].as_str().unwrap().to_string();

    // First with the CLI and --comment, as alice.
    let out = std::process::Command::new(support::bin())
        .env("PHAROS_TOKEN", &alice)
        .args([
            "events",
            "ack",
            &id,
            "--comment",
            "looking into it",
            "--url",
            &inst.base,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = support::get_json(&inst, &format!("/api/v1/messages/{id}")).await;
    assert_eq!(first["state"], "acknowledged");
    assert_eq!(first["acked-by"], "alice");
    assert_eq!(first["ack-comment"], "looking into it");
    assert!(first["acked-at"].is_string(), "{first}");

    // Again over HTTP, as bob with another comment: 200, the first record unchanged.
    let r = with_token(&bob)
        .post(inst.url(&format!("/api/v1/events/{id}/ack")))
        .json(&json!({"comment": "me too"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        support::get_json(&inst, &format!("/api/v1/messages/{id}")).await,
        first
    );
    assert_eq!(
        support::metric(&inst, "pharos_api_events_acknowledged_total", &[]).await,
        1
    );
}
