//! The Pharos web console: an analyst's pages (overview, events, flows, admin) served by
//! `pharos run` on the API's address, from files embedded in the binary.
//!
//! Contract:
//! - `GET /` redirects to `/ui/`. `GET /ui/login` is the login page and `GET
//!   /ui/assets/<version>/<file>` the static files: both public (they carry no data). Every other
//!   `GET /ui/...` answers the application shell, only with a live session or token; without one
//!   the API's middleware redirects to `/ui/login?next=...`. The pages read everything through
//!   the API (`/api/v1/...`) with the session cookie.
//! - Assets are served under a version (a hash of all of them), so they are cached as immutable;
//!   the HTML pages are never cached. Each file is gzip-compressed once, on first use, and sent
//!   compressed to clients that accept gzip.
//! - Every response carries a strict Content-Security-Policy ([`CSP`]: scripts, styles and
//!   connections from this origin only, no inline script or style, no framing), `nosniff`, and
//!   `Referrer-Policy: no-referrer`.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pharos_api::AppState;
use sha2::{Digest, Sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// One embedded file, ready to send.
struct Asset {
    body: Vec<u8>,
    gzip: Option<Vec<u8>>,
    content_type: &'static str,
}

/// Every embedded file by its path under `assets/`, and their common version.
struct Catalogue {
    version: String,
    files: HashMap<&'static str, Asset>,
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, e)| e) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).ok()?;
    let out = enc.finish().ok()?;
    (out.len() < bytes.len()).then_some(out)
}

fn catalogue() -> &'static Catalogue {
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| {
        let mut h = Sha256::new();
        for (path, bytes) in embedded::ASSETS {
            h.update(path.as_bytes());
            h.update([0]);
            h.update(bytes);
        }
        let version = hex::encode(&h.finalize()[..6]);
        let files = embedded::ASSETS
            .iter()
            .map(|(path, bytes)| {
                let body = if path.ends_with(".html") {
                    // Point the pages at this version's assets.
                    String::from_utf8_lossy(bytes)
                        .replace("\"/ui/assets/", &format!("\"/ui/assets/{version}/"))
                        .into_bytes()
                } else {
                    bytes.to_vec()
                };
                let gzip = gzip(&body);
                (
                    *path,
                    Asset {
                        body,
                        gzip,
                        content_type: content_type(path),
                    },
                )
            })
            .collect();
        Catalogue { version, files }
    })
}

/// The version the assets are served under (a hash of all of them).
pub fn version() -> &'static str {
    &catalogue().version
}

/// Paths and sizes of the embedded files (uncompressed, compressed), for checks of the page
/// weight budget.
pub fn sizes() -> Vec<(&'static str, usize, usize)> {
    let mut v: Vec<_> = catalogue()
        .files
        .iter()
        .map(|(p, a)| {
            (
                *p,
                a.body.len(),
                a.gzip.as_ref().map_or(a.body.len(), Vec::len),
            )
        })
        .collect();
    v.sort();
    v
}

/// The headers every console response carries.
fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Sends the embedded file at `path`, `immutable` or never cached.
fn send(path: &str, req: &HeaderMap, immutable: bool) -> Response {
    let Some(asset) = catalogue().files.get(path) else {
        let mut r = (StatusCode::NOT_FOUND, "no such console file\n").into_response();
        secure_headers(r.headers_mut());
        return r;
    };
    let (body, gz) = match &asset.gzip {
        Some(g) if accepts_gzip(req) => (g.clone(), true),
        _ => (asset.body.clone(), false),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if gz {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-store"
        }),
    );
    secure_headers(h);
    r
}

fn redirect(to: &'static str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    secure_headers(r.headers_mut());
    r
}

async fn root() -> Response {
    redirect("/ui/")
}

async fn login(req: HeaderMap) -> Response {
    send("login.html", &req, false)
}

async fn shell(req: HeaderMap) -> Response {
    send("index.html", &req, false)
}

async fn shell_any(Path(_page): Path<String>, req: HeaderMap) -> Response {
    send("index.html", &req, false)
}

async fn asset(Path((version, file)): Path<(String, String)>, req: HeaderMap) -> Response {
    if file.ends_with(".html") {
        let mut r = (StatusCode::NOT_FOUND, "no such console file\n").into_response();
        secure_headers(r.headers_mut());
        return r;
    }
    // An older page asking for an older version gets today's file, not cached for long.
    send(&file, &req, version == catalogue().version)
}

/// The console's routes, to merge into the API router
/// ([`pharos_api::router_with`]), which puts them behind its authentication.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/", get(shell))
        .route("/ui/login", get(login))
        .route("/ui/assets/{version}/{*file}", get(asset))
        .route("/ui/{*page}", get(shell_any))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_point_at_the_versioned_assets_and_compress() {
        let cat = catalogue();
        let index = &cat.files["index.html"];
        let text = String::from_utf8_lossy(&index.body);
        if text.contains("/ui/assets/") {
            assert!(
                text.contains(&format!("/ui/assets/{}/", cat.version)),
                "{text}"
            );
        }
        assert!(cat.files.contains_key("login.html"));
        for (p, raw, _) in sizes() {
            assert!(raw > 0, "{p} is empty");
        }
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "br, gzip".parse().unwrap());
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "gzip;q=0".parse().unwrap());
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn the_first_page_fits_the_weight_budget() {
        // Budget of the issue: 300 KB compressed for the first page, which loads at most every
        // asset there is.
        let total: usize = sizes().iter().map(|(_, _, gz)| gz).sum();
        assert!(total <= 300 * 1024, "{total} bytes compressed");
    }
}
