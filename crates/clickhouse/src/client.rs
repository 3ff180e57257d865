//! The HTTP interface of ClickHouse: statements in the request body, inserts with the statement
//! in the `query` parameter and the rows in the body, answers as raw bytes (RowBinary).
//!
//! Only the HTTP interface is used (not the native protocol), because it is the same on every
//! server from 18.16 to today and needs nothing beyond an HTTP client.

use std::time::Duration;

use crate::Error;

/// A connection to one ClickHouse server and database.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    database: String,
    user: String,
    password: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The first characters of a statement, for error messages (a statement can be long).
pub(crate) fn head(sql: &str) -> String {
    const MAX: usize = 160;
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MAX {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

impl Client {
    /// A client of the server at `url` (`http://127.0.0.1:8123`), working in `database`, as
    /// `user` with an optional password, each request bounded by `timeout`.
    pub fn new(
        url: &str,
        database: &str,
        user: &str,
        password: Option<String>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        if !is_identifier(database) {
            return Err(Error::Config(format!(
                "[clickhouse] database = {database:?}: expected a name of letters, digits and \
                 underscores that does not start with a digit"
            )));
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            Error::Config(format!(
                "[clickhouse] url = {url:?}: {e}; expected a URL like \"http://127.0.0.1:8123\""
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "[clickhouse] url = {url:?}: expected an http:// or https:// URL of the \
                 server's HTTP interface"
            )));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(pharos_tls::https_client_config())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .no_proxy()
            .user_agent(concat!("pharos/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::Config(format!("[clickhouse] cannot build the HTTP client: {e}"))
            })?;
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_string() + "/",
            database: database.to_string(),
            user: user.to_string(),
            password,
        })
    }

    /// The database this client works in.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request(&self, with_db: bool, params: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let mut q: Vec<(&str, &str)> = params.to_vec();
        if with_db {
            q.push(("database", &self.database));
        }
        self.http
            .post(&self.url)
            .query(&q)
            .basic_auth(&self.user, self.password.as_deref())
    }

    async fn send(&self, rb: reqwest::RequestBuilder, sql: &str) -> Result<Vec<u8>, Error> {
        let resp = rb.send().await.map_err(|e| Error::Http {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| Error::Http {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(Error::Server {
                status: status.as_u16(),
                message: text.trim().chars().take(2000).collect(),
                sql: head(sql),
            });
        }
        Ok(body.to_vec())
    }

    /// Runs a statement that answers nothing of interest (DDL, `ALTER`, `INSERT ... SELECT`).
    pub async fn execute(&self, sql: &str) -> Result<(), Error> {
        self.send(self.request(true, &[]).body(sql.to_string()), sql)
            .await
            .map(|_| ())
    }

    /// Runs a statement outside the database (`CREATE DATABASE`).
    pub(crate) async fn execute_server(&self, sql: &str) -> Result<(), Error> {
        self.send(self.request(false, &[]).body(sql.to_string()), sql)
            .await
            .map(|_| ())
    }

    /// Runs a query and returns the raw answer (the query chooses its `FORMAT`).
    pub async fn query(&self, sql: &str) -> Result<Vec<u8>, Error> {
        self.query_with(sql, &[]).await
    }

    /// Runs a query with server settings as URL parameters (`max_rows_to_group_by`...).
    pub(crate) async fn query_with(
        &self,
        sql: &str,
        settings: &[(&str, &str)],
    ) -> Result<Vec<u8>, Error> {
        self.send(self.request(true, settings).body(sql.to_string()), sql)
            .await
    }

    /// Sends `body` as the data of `sql` (`INSERT INTO t (...) FORMAT RowBinary`).
    pub(crate) async fn insert(
        &self,
        sql: &str,
        body: Vec<u8>,
        settings: &[(&str, &str)],
    ) -> Result<(), Error> {
        let mut params = vec![("query", sql)];
        params.extend_from_slice(settings);
        self.send(self.request(true, &params).body(body), sql)
            .await
            .map(|_| ())
    }

    /// Whether the server answers `/ping`.
    pub async fn ping(&self) -> bool {
        let url = format!("{}ping", self.url);
        matches!(self.http.get(url).send().await, Ok(r) if r.status().is_success())
    }
}

/// A ClickHouse identifier we accept unquoted: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && s.len() <= 64
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A text of RowBinary or TSV answers, read front to back; every read checks the length, so a
/// short or hostile answer is an error, never a panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let end = self.pos.checked_add(N).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(Error::Decode(format!(
                "{}: the answer ends at byte {} inside a value of {N} bytes",
                self.what,
                self.buf.len()
            )));
        };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..end]);
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.bytes::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.bytes()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
}
