//! RID over HTTPS on real loopback sockets: a test CA, a server `rid-a.test`, two listed client
//! peers (one pinned by certificate and DNS-ID, one by public key), one certificate of the same
//! CA that is not listed, and one of another CA.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pharos_rid::transport::{
    Answer, CallbackToken, ClientSettings, Fingerprint, Incoming, Peer, RateLimit, Reply,
    ReplyError, RidClient, RidHandler, RidServer, SendError, ServerSettings,
};
use pharos_rid::{AuthorizationStatus, MsgType};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A certificate and key written to PEM files, with the certificate's DER.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    a: Leaf,
    b: Leaf,
    c: Leaf,
    unlisted: Leaf,
    stranger: Leaf,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(p, key))
}

fn leaf(dir: &std::path::Path, issuer: &Issuer<'_, KeyPair>, file: &str, dns: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![dns.to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, dns);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = p.signed_by(&key, issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    Leaf {
        cert: c,
        key: k,
        der: cert.der().to_vec(),
    }
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = ca("RID test CA");
    let (_, other) = ca("Another CA");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    Pki {
        a: leaf(dir.path(), &issuer, "a", "rid-a.test"),
        b: leaf(dir.path(), &issuer, "b", "rid-b.test"),
        c: leaf(dir.path(), &issuer, "c", "rid-c.test"),
        unlisted: leaf(dir.path(), &issuer, "x", "rid-x.test"),
        stranger: leaf(dir.path(), &other, "s", "rid-b.test"),
        ca,
        _dir: dir,
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Inline,
    Defer,
    /// 503 without Retry-After for the first n messages, then inline.
    FailFirst(u32),
    /// 400 for every message.
    Refuse,
    /// An inline Result, whatever the request (not allowed for a Query).
    Result,
}

struct Recorder {
    mode: Mode,
    calls: AtomicU32,
    seen: Mutex<Vec<Incoming>>,
}

impl Recorder {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            mode,
            calls: AtomicU32::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl RidHandler for Recorder {
    fn handle(&self, req: Incoming) -> impl Future<Output = Reply> + Send {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let is_request = req
            .msg
            .msg_type()
            .is_some_and(|t| t.is_request() || *t == MsgType::Query);
        let reply = if !is_request {
            Reply::Empty
        } else {
            match self.mode {
                Mode::Inline => Reply::Inline(Box::new(common::acknowledgement(
                    AuthorizationStatus::Approved,
                    None,
                ))),
                Mode::Defer => Reply::Deferred,
                Mode::FailFirst(k) if n <= k => Reply::Error(ReplyError::Busy {
                    retry_after: Duration::ZERO,
                    reason: "not yet".into(),
                }),
                Mode::FailFirst(_) => Reply::Inline(Box::new(common::acknowledgement(
                    AuthorizationStatus::Pending,
                    None,
                ))),
                Mode::Refuse => Reply::Error(ReplyError::BadRequest("no such incident".into())),
                Mode::Result => Reply::Inline(Box::new(common::result())),
            }
        };
        self.seen.lock().unwrap().push(req);
        std::future::ready(reply)
    }
}

struct Running {
    addr: SocketAddr,
    handler: Arc<Recorder>,
    pki: Arc<Pki>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(mode: Mode, tune: impl FnOnce(&mut ServerSettings)) -> Running {
    let pki = pki();
    let mut s = ServerSettings::new(
        pki.a.cert.clone(),
        pki.a.key.clone(),
        pki.ca.clone(),
        vec![
            Peer::new("peer-b", Fingerprint::of_certificate(&pki.b.der)).with_dns_id("rid-b.test"),
            Peer::new("peer-c", Fingerprint::of_spki(&pki.c.der).unwrap()),
        ],
    );
    s.listen = "127.0.0.1:0".parse().unwrap();
    tune(&mut s);
    let handler = Recorder::new(mode);
    let server = RidServer::bind(s, handler.clone()).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        handler,
        pki: Arc::new(pki),
        stop: Some(stop),
    }
}

impl Running {
    fn url(&self) -> String {
        format!("https://rid-a.test:{}/", self.addr.port())
    }

    fn client_as(&self, who: &Leaf) -> RidClient {
        let mut s = ClientSettings::new(
            who.cert.clone(),
            who.key.clone(),
            self.pki.ca.clone(),
            vec![
                Peer::new("rid-a", Fingerprint::of_certificate(&self.pki.a.der))
                    .with_dns_id("rid-a.test"),
            ],
        );
        s.resolve = vec![("rid-a.test".into(), self.addr)];
        s.initial_backoff = Duration::from_millis(10);
        s.max_backoff = Duration::from_secs(2);
        s.connect_timeout = Duration::from_secs(5);
        s.request_timeout = Duration::from_secs(10);
        RidClient::new(s).unwrap()
    }

    /// A TLS connection to the server with `who`'s client certificate.
    async fn connect(
        &self,
        who: &Leaf,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&self.pki.ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let chain: Vec<_> = CertificateDer::pem_file_iter(&who.cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&who.key).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        connector
            .connect(ServerName::try_from("rid-a.test").unwrap(), tcp)
            .await
    }

    /// A raw HTTP/1.1 exchange over TLS as `who`: writes `request` and reads until the server
    /// closes.
    async fn raw(&self, who: &Leaf, request: &[u8]) -> std::io::Result<String> {
        let mut tls = self.connect(who).await?;
        // The server may answer and close before the whole request is written (413).
        let _ = tls.write_all(request).await;
        let _ = tls.flush().await;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn status_of(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {resp:?}"))
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn post(ctype: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: rid-a.test\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const LIMIT: Duration = Duration::from_secs(60);

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test finished within its deadline")
}

#[tokio::test]
async fn trace_request_is_answered_inline_with_an_acknowledgement() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let client = srv.client_as(&srv.pki.b);
        let answer = client
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap();
        let Answer::Inline { msg, body, .. } = answer else {
            panic!("expected an inline answer, got {answer:?}");
        };
        assert_eq!(msg.msg_type(), Some(&MsgType::Acknowledgement));
        assert!(!body.is_empty());
        let seen = srv.handler.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].peer.name, "peer-b");
        assert_eq!(seen[0].msg, common::trace_request());
        assert_eq!(seen[0].body, common::trace_request().emit().as_bytes());
        assert!(seen[0].callback_token.is_none());
    })
    .await;
}

#[tokio::test]
async fn peer_pinned_by_public_key_is_accepted_too() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let client = srv.client_as(&srv.pki.c);
        let report = common::report();
        let answer = client
            .send("rid-a", &srv.url(), &report, None)
            .await
            .unwrap();
        assert!(matches!(answer, Answer::Empty), "{answer:?}");
        assert_eq!(srv.handler.seen.lock().unwrap()[0].peer.name, "peer-c");
    })
    .await;
}

#[tokio::test]
async fn deferred_reply_gives_a_token_that_the_callback_carries_back_to_the_handler() {
    within(async {
        let srv = start(Mode::Defer, |_| {}).await;
        let client = srv.client_as(&srv.pki.b);
        let answer = client
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap();
        let Answer::Deferred(token) = answer else {
            panic!("expected a deferral, got {answer:?}");
        };
        assert_eq!(
            token,
            srv.handler.seen.lock().unwrap()[0].deferral_token,
            "the 202 carries the token the handler was given"
        );
        assert_eq!(token.as_str().len(), 64);
        let ack = common::acknowledgement(AuthorizationStatus::Approved, None);
        let answer = client
            .send("rid-a", &srv.url(), &ack, Some(&token))
            .await
            .unwrap();
        assert!(matches!(answer, Answer::Empty), "{answer:?}");
        let seen = srv.handler.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].callback_token.as_ref(), Some(&token));
        assert_eq!(seen[1].msg.msg_type(), Some(&MsgType::Acknowledgement));
        assert_ne!(seen[0].deferral_token, seen[1].deferral_token);
    })
    .await;
}

#[tokio::test]
async fn get_and_head_answer_204_other_paths_404_other_methods_405() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let b = &srv.pki.b;
        for m in ["GET", "HEAD"] {
            let r = srv
                .raw(
                    b,
                    format!("{m} / HTTP/1.1\r\nHost: rid-a.test\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            assert_eq!(status_of(&r), 204, "{m}: {r}");
        }
        let r = srv
            .raw(
                b,
                b"POST /rid HTTP/1.1\r\nHost: rid-a.test\r\nContent-Type: text/xml\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        assert_eq!(status_of(&r), 404, "{r}");
        let r = srv
            .raw(b, b"GET /index.html HTTP/1.1\r\nHost: rid-a.test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(status_of(&r), 404, "{r}");
        let r = srv
            .raw(b, b"PUT / HTTP/1.1\r\nHost: rid-a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(status_of(&r), 405, "{r}");
        assert_eq!(header(&r, "allow"), Some("POST, GET, HEAD"));
        assert_eq!(srv.handler.calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn wrong_content_type_is_415_and_malformed_xml_is_400_without_echo() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let b = &srv.pki.b;
        let xml = common::trace_request().emit();
        let r = srv.raw(b, &post("application/json", &xml)).await.unwrap();
        assert_eq!(status_of(&r), 415, "{r}");
        let r = srv
            .raw(
                b,
                &post(
                    "text/xml; charset=utf-8",
                    "<RID lang=\"en\"><oops>\u{7}<script>",
                ),
            )
            .await
            .unwrap();
        assert_eq!(status_of(&r), 400, "{r}");
        assert!(
            header(&r, "content-type")
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(!r.contains("<script>") && !r.contains('\u{7}'), "{r}");
        // Well-formed but incomplete: an Acknowledgement without RequestStatus.
        let mut ack = common::acknowledgement(AuthorizationStatus::Approved, None);
        ack.request_status = None;
        let r = srv
            .raw(b, &post("application/xml", &ack.emit()))
            .await
            .unwrap();
        assert_eq!(status_of(&r), 400, "{r}");
        assert!(r.contains("RequestStatus"), "{r}");
        // A valid message through the raw path reaches the handler.
        let r = srv.raw(b, &post("text/xml", &xml)).await.unwrap();
        assert_eq!(status_of(&r), 200, "{r}");
        assert!(header(&r, "content-type").unwrap().starts_with("text/xml"));
        assert_eq!(srv.handler.calls(), 1);
    })
    .await;
}

#[tokio::test]
async fn oversize_bodies_are_413_declared_or_chunked() {
    within(async {
        let srv = start(Mode::Inline, |s| s.max_body = 2048).await;
        let b = &srv.pki.b;
        let r = srv
            .raw(
                b,
                b"POST / HTTP/1.1\r\nHost: rid-a.test\r\nContent-Type: text/xml\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        assert_eq!(status_of(&r), 413, "{r}");
        let mut chunked = b"POST / HTTP/1.1\r\nHost: rid-a.test\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        for _ in 0..4 {
            chunked.extend_from_slice(format!("400\r\n{}\r\n", "x".repeat(1024)).as_bytes());
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let r = srv.raw(b, &chunked).await.unwrap();
        assert_eq!(status_of(&r), 413, "{r}");
        assert_eq!(srv.handler.calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn client_certificate_of_another_ca_fails_the_handshake() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let client = srv.client_as(&srv.pki.stranger);
        let e = client
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Connection { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("rid-a") && msg.contains(&srv.url()), "{msg}");
        let raw = srv
            .raw(
                &srv.pki.stranger,
                b"GET / HTTP/1.1\r\nHost: rid-a.test\r\n\r\n",
            )
            .await;
        assert!(
            raw.as_ref().is_err() || raw.as_ref().is_ok_and(|s| s.is_empty()),
            "no HTTP answer without a valid certificate: {raw:?}"
        );
        assert_eq!(srv.handler.calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn certificate_of_the_right_ca_but_not_in_the_allow_list_is_refused() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let client = srv.client_as(&srv.pki.unlisted);
        let e = client
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Connection { .. }), "{e}");
        let raw = srv
            .raw(
                &srv.pki.unlisted,
                b"GET / HTTP/1.1\r\nHost: rid-a.test\r\n\r\n",
            )
            .await;
        assert!(
            raw.as_ref().is_err() || raw.as_ref().is_ok_and(|s| s.is_empty()),
            "no HTTP answer for an unlisted certificate: {raw:?}"
        );
        assert_eq!(srv.handler.calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn client_refuses_a_server_whose_certificate_is_not_pinned() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let mut s = ClientSettings::new(
            srv.pki.b.cert.clone(),
            srv.pki.b.key.clone(),
            srv.pki.ca.clone(),
            vec![
                Peer::new("rid-a", Fingerprint::of_certificate(&srv.pki.c.der))
                    .with_dns_id("rid-a.test"),
            ],
        );
        s.resolve = vec![("rid-a.test".into(), srv.addr)];
        s.max_attempts = 1;
        let client = RidClient::new(s).unwrap();
        let e = client
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, SendError::Connection { attempts: 1, .. }),
            "{e}"
        );
        assert_eq!(srv.handler.calls(), 0);
        // Nothing is sent to an unlisted peer, a plain http URL, or a host that is not the DNS-ID.
        for (peer, url) in [
            ("nobody", srv.url()),
            ("rid-a", format!("http://rid-a.test:{}/", srv.addr.port())),
            ("rid-a", format!("https://127.0.0.1:{}/", srv.addr.port())),
        ] {
            let e = client
                .send(peer, &url, &common::trace_request(), None)
                .await
                .unwrap_err();
            assert!(matches!(e, SendError::Refused { .. }), "{e}");
            assert!(e.to_string().contains(&url), "{e}");
        }
    })
    .await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    within(async {
        let srv = start(Mode::Inline, |s| {
            s.rate = RateLimit {
                per_minute: 1,
                burst: 2,
            }
        })
        .await;
        let get = b"GET / HTTP/1.1\r\nHost: rid-a.test\r\nConnection: close\r\n\r\n";
        for _ in 0..2 {
            let r = srv.raw(&srv.pki.b, get).await.unwrap();
            assert_eq!(status_of(&r), 204, "{r}");
        }
        let r = srv.raw(&srv.pki.b, get).await.unwrap();
        assert_eq!(status_of(&r), 429, "{r}");
        let wait: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        // Peer c has its own bucket.
        let r = srv.raw(&srv.pki.c, get).await.unwrap();
        assert_eq!(status_of(&r), 204, "{r}");
        // The client does not wait a Retry-After longer than its max_backoff: it reports it.
        let e = srv
            .client_as(&srv.pki.b)
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap_err();
        match e {
            SendError::Status {
                status: 429,
                retry_after: Some(_),
                attempts: 1,
                ..
            } => {}
            e => panic!("expected a 429 after one attempt, got {e}"),
        }
        assert_eq!(srv.handler.calls(), 0);
    })
    .await;
}

#[tokio::test]
async fn client_retries_503_with_the_same_bytes_until_it_succeeds() {
    within(async {
        let srv = start(Mode::FailFirst(2), |_| {}).await;
        let answer = srv
            .client_as(&srv.pki.b)
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap();
        assert!(matches!(answer, Answer::Inline { .. }), "{answer:?}");
        let seen = srv.handler.seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|s| s.body == seen[0].body));
    })
    .await;
}

#[tokio::test]
async fn client_gives_up_after_max_attempts_and_names_peer_url_and_status() {
    within(async {
        let srv = start(Mode::FailFirst(100), |_| {}).await;
        let e = srv
            .client_as(&srv.pki.b)
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                SendError::Status {
                    status: 503,
                    attempts: 5,
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("rid-a") && msg.contains(&srv.url()) && msg.contains("503"),
            "{msg}"
        );
        assert_eq!(srv.handler.calls(), 5);
    })
    .await;
}

#[tokio::test]
async fn client_does_not_retry_a_400() {
    within(async {
        let srv = start(Mode::Refuse, |_| {}).await;
        let e = srv
            .client_as(&srv.pki.b)
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap_err();
        match &e {
            SendError::Status {
                status: 400,
                attempts: 1,
                reason,
                ..
            } => assert!(reason.contains("no such incident"), "{reason}"),
            e => panic!("expected one 400, got {e}"),
        }
        assert_eq!(srv.handler.calls(), 1);
    })
    .await;
}

#[tokio::test]
async fn callback_token_header_is_checked() {
    within(async {
        let srv = start(Mode::Inline, |_| {}).await;
        let xml = common::acknowledgement(AuthorizationStatus::Approved, None).emit();
        let req = format!(
            "POST / HTTP/1.1\r\nHost: rid-a.test\r\nContent-Type: text/xml\r\nRID-Callback-Token: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            "t".repeat(300),
            xml.len()
        );
        let r = srv.raw(&srv.pki.b, req.as_bytes()).await.unwrap();
        assert_eq!(status_of(&r), 400, "{r}");
        assert_eq!(srv.handler.calls(), 0);
        let token = CallbackToken::parse("abc-123").unwrap();
        let answer = srv
            .client_as(&srv.pki.b)
            .send(
                "rid-a",
                &srv.url(),
                &common::acknowledgement(AuthorizationStatus::Approved, None),
                Some(&token),
            )
            .await
            .unwrap();
        assert!(matches!(answer, Answer::Empty));
        assert_eq!(
            srv.handler.seen.lock().unwrap()[0].callback_token,
            Some(token)
        );
    })
    .await;
}

/// Reads until the server closes; returns what was read.
async fn read_to_close(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_by_their_timeouts() {
    within(async {
        let srv = start(Mode::Inline, |s| {
            s.header_timeout = Duration::from_millis(300);
            s.body_timeout = Duration::from_millis(300);
        })
        .await;
        // Connected, nothing sent: closed without an answer.
        let mut idle = srv.connect(&srv.pki.b).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut idle))
            .await
            .expect("an idle connection is closed by header_timeout");
        assert!(!got.contains("HTTP/1.1 2"), "{got}");
        // One request answered, then idle on the kept-alive connection: closed as well.
        let mut kept = srv.connect(&srv.pki.b).await.unwrap();
        kept.write_all(b"GET / HTTP/1.1\r\nHost: rid-a.test\r\n\r\n")
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut kept))
            .await
            .expect("a kept-alive idle connection is closed by header_timeout");
        assert_eq!(status_of(&got), 204, "{got}");
        // A body that stops coming: 408.
        let mut slow = srv.connect(&srv.pki.b).await.unwrap();
        slow.write_all(
            b"POST / HTTP/1.1\r\nHost: rid-a.test\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<RID",
        )
        .await
        .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut slow))
            .await
            .expect("a stalled body is cut by body_timeout");
        assert_eq!(status_of(&got), 408, "{got}");
        assert_eq!(srv.handler.calls(), 0);
    })
    .await;
}

/// A handler as Pharos will write one: every message goes into the state table, and a peer
/// with `max_open_incidents` open incidents gets 503 for a new one.
struct Stateful {
    table: pharos_rid::state::StateTable,
}

impl RidHandler for Stateful {
    fn handle(&self, req: Incoming) -> impl Future<Output = Reply> + Send {
        use pharos_rid::state::NewMessage;
        let known = req
            .msg
            .incident_id()
            .map(|i| self.table.incident_by_incident_id(i).unwrap().is_some())
            .unwrap_or(false);
        let reply = if !known
            && self.table.open_incidents_of(&req.peer.name).unwrap() >= req.max_open_incidents
        {
            Reply::Error(ReplyError::Busy {
                retry_after: Duration::from_secs(600),
                reason: format!("{} open incidents already", req.max_open_incidents),
            })
        } else {
            self.table
                .record_incoming(NewMessage {
                    peer: &req.peer.name,
                    rid: &req.msg,
                    body: &req.body,
                    callback_token: None,
                    http_status: Some(200),
                })
                .unwrap();
            Reply::Inline(Box::new(common::acknowledgement(
                AuthorizationStatus::Pending,
                None,
            )))
        };
        std::future::ready(reply)
    }
}

#[tokio::test]
async fn handler_refuses_a_new_incident_past_the_open_incident_limit() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let table = pharos_rid::state::StateTable::open(dir.path().join("rid.db")).unwrap();
        // Reuse the fixture's PKI and client, with a stateful server next to it.
        let fixture = start(Mode::Inline, |_| {}).await;
        let mut s = ServerSettings::new(
            fixture.pki.a.cert.clone(),
            fixture.pki.a.key.clone(),
            fixture.pki.ca.clone(),
            vec![
                Peer::new("peer-b", Fingerprint::of_certificate(&fixture.pki.b.der))
                    .with_dns_id("rid-b.test"),
            ],
        );
        s.listen = "127.0.0.1:0".parse().unwrap();
        s.max_open_incidents = 1;
        let server = RidServer::bind(s, Arc::new(Stateful { table }))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.run(std::future::pending()));
        let srv = Running {
            addr,
            handler: Recorder::new(Mode::Inline),
            pki: fixture.pki.clone(),
            stop: None,
        };
        let client = srv.client_as(&srv.pki.b);
        let first = common::trace_request();
        let answer = client
            .send("rid-a", &srv.url(), &first, None)
            .await
            .unwrap();
        assert!(matches!(answer, Answer::Inline { .. }));
        // The same incident again is not a new one: accepted.
        client
            .send("rid-a", &srv.url(), &first, None)
            .await
            .unwrap();
        let mut second = common::trace_request();
        second.policy.as_mut().unwrap().incident_id = Some(pharos_rid::IncidentId::new(
            "rid.as64500.example",
            "OTHER-1",
        ));
        let e = client
            .send("rid-a", &srv.url(), &second, None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                SendError::Status {
                    status: 503,
                    attempts: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("open incidents"), "{e}");
        let table = pharos_rid::state::StateTable::open(dir.path().join("rid.db")).unwrap();
        let inc = table
            .incident_by_incident_id(&common::incident_id())
            .unwrap()
            .unwrap();
        assert_eq!(table.messages(inc.id).unwrap().len(), 2);
        assert_eq!(inc.origin_peer, "peer-b");
    })
    .await;
}

#[tokio::test]
async fn inline_reply_outside_the_response_matrix_is_a_500() {
    within(async {
        let srv = start(Mode::Result, |_| {}).await;
        let client = srv.client_as(&srv.pki.b);
        // A Result answers a TraceRequest...
        let answer = client
            .send("rid-a", &srv.url(), &common::trace_request(), None)
            .await
            .unwrap();
        let Answer::Inline { msg, .. } = answer else {
            panic!("expected an inline Result, got {answer:?}");
        };
        assert_eq!(msg.msg_type(), Some(&MsgType::Result));
        // ... but not a Query: the server refuses to send it.
        let e = client
            .send("rid-a", &srv.url(), &common::query(), None)
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(500), "{e}");
    })
    .await;
}
