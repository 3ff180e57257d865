//! The API's accept loop: plain HTTP or HTTPS (rustls, ring) with optional client certificates,
//! served by hyper-util's HTTP/1 and HTTP/2 connection builder over the axum router.
//!
//! Contract:
//! - Each request carries `ConnectInfo<SocketAddr>` and, on a TLS connection whose client sent a
//!   certificate the configured CA verified, a [`ClientCert`] extension.
//! - With `client_ca` set, a certificate that does not chain to it fails the handshake.
//! - On shutdown the loop stops accepting, asks open connections to finish their in-flight
//!   request and close, and waits up to [`DRAIN`] for them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::{ClientCert, TlsConfig};

/// How long open connections may take to finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(10);

/// How long a client has to complete the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Marks a request that came over TLS (a request extension), so cookies get `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct Tls;

/// A TLS setting that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("[api.tls] {0}")]
pub struct TlsError(String);

/// Builds the TLS acceptor of `[api.tls]` (certificate, key, optional client CA).
pub fn tls_acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    if cfg.require_client_cert && cfg.client_ca.is_none() {
        return Err(TlsError(
            "require_client_cert = true needs client_ca: give the CA that signs the client certificates".into(),
        ));
    }
    let mut config = pharos_tls::server_config(
        &cfg.cert,
        &cfg.key,
        cfg.client_ca.as_deref(),
        cfg.require_client_cert,
    )
    .map_err(TlsError)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Maps a verified client certificate (DER) to its identity.
pub type Identify = Arc<dyn Fn(&[u8]) -> ClientCert + Send + Sync>;

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes, then drains.
///
/// Connections speak HTTP/1.1 or HTTP/2 (ALPN `h2` on TLS, prior knowledge on plain TCP), so a
/// browser keeps its console pages and SSE streams on one connection instead of running into its
/// six-connections-per-origin limit. A client may open at most `http2_max_streams` streams at
/// once on one connection; more are refused with `REFUSED_STREAM` (a browser retries them).
pub async fn serve(
    listener: TcpListener,
    tls: Option<(TlsAcceptor, Identify)>,
    app: Router,
    http2_max_streams: u32,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "API: accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let app = app.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _ = tcp.set_nodelay(true);
            match tls {
                None => connection(tcp, peer, None, false, app, http2_max_streams, stop).await,
                Some((acceptor, identify)) => {
                    let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            metrics::counter!("pharos_api_tls_handshake_failures_total")
                                .increment(1);
                            tracing::debug!(%peer, error = %e, "API: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            metrics::counter!("pharos_api_tls_handshake_failures_total")
                                .increment(1);
                            return;
                        }
                    };
                    let cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| identify(c.as_ref()));
                    connection(stream, peer, cert, true, app, http2_max_streams, stop).await
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "API: connections still open {} s after shutdown began; closing them",
            DRAIN.as_secs()
        );
        conns.shutdown().await;
    }
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    cert: Option<ClientCert>,
    tls: bool,
    app: Router,
    http2_max_streams: u32,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(c) = &cert {
            req.extensions_mut().insert(c.clone());
        }
        if tls {
            req.extensions_mut().insert(Tls);
        }
        app.clone().oneshot(req)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(http2_max_streams.max(1))
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .timer(hyper_util::rt::TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    if *stop.borrow() {
        conn.as_mut().graceful_shutdown();
    }
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "API: connection ended with an error");
            }
            return;
        }
        _ = stop.changed() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    /// HTTP/2 with prior knowledge: the server announces its stream limit, queues nothing past
    /// it on the client's side, and serves every request in turn on the one connection.
    #[tokio::test]
    async fn http2_announces_its_stream_limit_and_serves_past_it_in_turn() {
        let app = Router::new().route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, None, app, 2, async {
            let _ = stopped.await;
        }));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.unwrap();
        // One request first, so the server's SETTINGS have arrived.
        let req = axum::http::Request::get(format!("http://{addr}/slow"))
            .body(())
            .unwrap();
        let (first, _) = client.send_request(req, true).unwrap();
        assert_eq!(first.await.unwrap().status(), 200);
        assert_eq!(
            client.current_max_send_streams(),
            2,
            "the server's SETTINGS_MAX_CONCURRENT_STREAMS"
        );
        let started = std::time::Instant::now();
        let mut answers = Vec::new();
        for _ in 0..4 {
            client = client.ready().await.unwrap();
            let req = axum::http::Request::get(format!("http://{addr}/slow"))
                .body(())
                .unwrap();
            let (resp, _) = client.send_request(req, true).unwrap();
            answers.push(resp);
        }
        for a in answers {
            let resp = a.await.unwrap();
            assert_eq!(resp.status(), 200);
            let mut body = resp.into_body();
            let mut got = Vec::new();
            while let Some(chunk) = body.data().await {
                got.extend_from_slice(&chunk.unwrap());
            }
            assert_eq!(got, b"done");
        }
        // Four requests of 300 ms, two at a time: at least two rounds.
        assert!(
            started.elapsed() >= Duration::from_millis(590),
            "{:?}: more than 2 streams ran at once",
            started.elapsed()
        );
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), server)
            .await
            .expect("the server stops")
            .unwrap();
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_lets_in_flight_requests_finish() {
        let app = Router::new()
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    "done"
                }),
            )
            .route(
                "/peer",
                axum::routing::get(|ConnectInfo(p): ConnectInfo<SocketAddr>| async move {
                    p.ip().to_string()
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, None, app, 100, async {
            let _ = stopped.await;
        }));
        assert!(get(addr, "/peer").await.unwrap().ends_with("127.0.0.1"));
        let in_flight = tokio::spawn(get(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let answer = in_flight.await.unwrap().unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"),
            "{answer}"
        );
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops once the request is answered")
            .unwrap();
        assert!(
            get(addr, "/peer").await.is_err(),
            "still accepting after shutdown"
        );
    }
}
