//! A small SMTP client (RFC 5321) over tokio and tokio-rustls: EHLO, STARTTLS (RFC 3207),
//! optional AUTH PLAIN (only over TLS), MAIL FROM, RCPT TO, DATA with dot-stuffing, QUIT.
//!
//! Contract: [`SmtpClient::send`] delivers one message to one recipient or says why not; the
//! password never appears in an error or a log line.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Whether the session is upgraded to TLS with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Refuse to send unless the server offers STARTTLS and the handshake succeeds (default).
    #[default]
    Required,
    /// Use STARTTLS when offered, else send in clear (never with AUTH).
    Opportunistic,
    /// Never use STARTTLS.
    Off,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(String),
    /// The server answered with an unexpected code.
    #[error("{step}: server answered {code} {text}")]
    Reply {
        /// The command answered.
        step: &'static str,
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// STARTTLS was required but not possible, or a policy forbade a step.
    #[error("{0}")]
    Policy(String),
}

impl SmtpError {
    /// A permanent failure (5xx): retrying will not help.
    pub fn permanent(&self) -> bool {
        matches!(self, SmtpError::Reply { code, .. } if *code >= 500)
    }
}

/// Where and how to send.
#[derive(Clone)]
pub struct SmtpClient {
    /// Server host name (also the TLS server name).
    pub server: String,
    /// Server port.
    pub port: u16,
    /// STARTTLS mode.
    pub starttls: StartTls,
    /// TLS client configuration (Mozilla roots plus `smtp_ca`).
    pub tls: Arc<rustls::ClientConfig>,
    /// `AUTH PLAIN` user and password, if any.
    pub auth: Option<(String, String)>,
    /// Name given in EHLO.
    pub helo: String,
    /// Timeout of each step.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("starttls", &self.starttls)
            .field("auth", &self.auth.as_ref().map(|(u, _)| (u, "<redacted>")))
            .finish()
    }
}

struct Conn<S> {
    r: BufReader<S>,
    timeout: Duration,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> SmtpError + '_ {
    move |e| SmtpError::Io(format!("{what}: {e}"))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(s: S, timeout: Duration) -> Self {
        Self {
            r: BufReader::new(s),
            timeout,
        }
    }

    /// Reads one (possibly multi-line) reply: its code and its lines.
    async fn reply(&mut self, step: &'static str) -> Result<(u16, Vec<String>), SmtpError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.timeout, self.r.read_line(&mut line))
                .await
                .map_err(|_| SmtpError::Io(format!("{step}: no reply in time")))?
                .map_err(io(step))?;
            if n == 0 {
                return Err(SmtpError::Io(format!("{step}: connection closed")));
            }
            if lines.len() > 100 || line.len() > 4096 {
                return Err(SmtpError::Io(format!("{step}: reply too long")));
            }
            let line = line.trim_end().to_string();
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| SmtpError::Io(format!("{step}: malformed reply {line:?}")))?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                return Ok((code, lines));
            }
        }
    }

    async fn expect(&mut self, step: &'static str, ok: &[u16]) -> Result<Vec<String>, SmtpError> {
        let (code, lines) = self.reply(step).await?;
        if ok.contains(&code) {
            Ok(lines)
        } else {
            Err(SmtpError::Reply {
                step,
                code,
                text: lines
                    .join(" ")
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect(),
            })
        }
    }

    async fn write(&mut self, step: &'static str, data: &[u8]) -> Result<(), SmtpError> {
        let w = self.r.get_mut();
        tokio::time::timeout(self.timeout, async {
            w.write_all(data).await?;
            w.flush().await
        })
        .await
        .map_err(|_| SmtpError::Io(format!("{step}: write timed out")))?
        .map_err(io(step))
    }

    async fn cmd(
        &mut self,
        step: &'static str,
        line: &str,
        ok: &[u16],
    ) -> Result<Vec<String>, SmtpError> {
        self.write(step, format!("{line}\r\n").as_bytes()).await?;
        self.expect(step, ok).await
    }

    async fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, SmtpError> {
        self.cmd("EHLO", &format!("EHLO {helo}"), &[250]).await
    }
}

fn offers(ext: &[String], what: &str) -> bool {
    ext.iter().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(what))
    })
}

/// `data` with CRLF line ends, every line starting with `.` doubled, ended by `CRLF.CRLF`.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A mail address fit for an SMTP path: printable ASCII, one `@`, no spaces, brackets or
/// control characters.
pub fn valid_address(a: &str) -> bool {
    let ok_chars = a.bytes().all(|b| {
        b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'(' | b')' | b',' | b';' | b'"' | b'\\')
    });
    ok_chars
        && a.len() <= 254
        && a.matches('@').count() == 1
        && !a.starts_with('@')
        && !a.ends_with('@')
}

impl SmtpClient {
    /// Sends `data` (a complete RFC 5322 message) from `from` to `to`.
    pub async fn send(&self, from: &str, to: &str, data: &[u8]) -> Result<(), SmtpError> {
        if !valid_address(from) || !valid_address(to) {
            return Err(SmtpError::Policy(format!(
                "refusing an invalid mail address {:?}",
                if valid_address(from) { to } else { from }
            )));
        }
        let addr = format!("{}:{}", self.server, self.port);
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| SmtpError::Io(format!("connecting to {addr}: timed out")))?
            .map_err(|e| SmtpError::Io(format!("connecting to {addr}: {e}")))?;
        let mut c = Conn::new(tcp, self.timeout);
        c.expect("greeting", &[220]).await?;
        let ext = c.ehlo(&self.helo).await?;
        let tls = match self.starttls {
            StartTls::Off => false,
            StartTls::Opportunistic => offers(&ext, "STARTTLS"),
            StartTls::Required if offers(&ext, "STARTTLS") => true,
            StartTls::Required => {
                return Err(SmtpError::Policy(format!(
                    "{addr} does not offer STARTTLS and [notice] starttls = \"required\""
                )));
            }
        };
        if !tls {
            return self.transact(c, false, from, to, data).await;
        }
        c.cmd("STARTTLS", "STARTTLS", &[220]).await?;
        let tcp = c.r.into_inner();
        let name = rustls::pki_types::ServerName::try_from(self.server.clone())
            .map_err(|e| SmtpError::Policy(format!("TLS server name {:?}: {e}", self.server)))?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let stream = tokio::time::timeout(self.timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| SmtpError::Io("TLS handshake timed out".into()))?
            .map_err(|e| SmtpError::Io(format!("TLS handshake with {addr}: {e}")))?;
        let mut c = Conn::new(stream, self.timeout);
        c.ehlo(&self.helo).await?;
        self.transact(c, true, from, to, data).await
    }

    async fn transact<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut c: Conn<S>,
        tls: bool,
        from: &str,
        to: &str,
        data: &[u8],
    ) -> Result<(), SmtpError> {
        if let Some((user, password)) = &self.auth {
            if !tls {
                return Err(SmtpError::Policy(
                    "refusing AUTH over a connection without TLS".into(),
                ));
            }
            let token = super::render::base64(format!("\0{user}\0{password}").as_bytes());
            c.write("AUTH", format!("AUTH PLAIN {token}\r\n").as_bytes())
                .await?;
            c.expect("AUTH", &[235]).await?;
        }
        c.cmd("MAIL FROM", &format!("MAIL FROM:<{from}>"), &[250])
            .await?;
        c.cmd("RCPT TO", &format!("RCPT TO:<{to}>"), &[250, 251])
            .await?;
        c.cmd("DATA", "DATA", &[354]).await?;
        c.write("DATA", &dot_stuff(data)).await?;
        c.expect("end of DATA", &[250]).await?;
        let _ = c.cmd("QUIT", "QUIT", &[221]).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_the_data() {
        assert_eq!(dot_stuff(b"a\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
    }

    /// A scripted server: answers each command line with the next reply; returns what it read.
    async fn fake_server(offer_starttls: bool) -> (u16, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut r = BufReader::new(s);
            let mut seen = String::new();
            r.get_mut().write_all(b"220 fake ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    return seen;
                }
                seen.push_str(&line);
                let reply: &[u8] = if in_data {
                    if line != ".\r\n" {
                        continue;
                    }
                    in_data = false;
                    b"250 queued\r\n"
                } else if line.starts_with("EHLO") {
                    if offer_starttls {
                        b"250-fake\r\n250 STARTTLS\r\n"
                    } else {
                        b"250-fake\r\n250 8BITMIME\r\n"
                    }
                } else if line.starts_with("DATA") {
                    in_data = true;
                    b"354 go\r\n"
                } else if line.starts_with("QUIT") {
                    r.get_mut().write_all(b"221 bye\r\n").await.unwrap();
                    return seen;
                } else if line.starts_with("RCPT TO:<nobody@") {
                    b"550 no such user\r\n"
                } else {
                    b"250 ok\r\n"
                };
                r.get_mut().write_all(reply).await.unwrap();
            }
        });
        (port, task)
    }

    fn client(port: u16, starttls: StartTls) -> SmtpClient {
        SmtpClient {
            server: "127.0.0.1".into(),
            port,
            starttls,
            tls: Arc::new(pharos_tls::https_client_config()),
            auth: None,
            helo: "pharos.test".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_plain_session_sends_envelope_and_dot_stuffed_data() {
        let (port, server) = fake_server(false).await;
        client(port, StartTls::Off)
            .send(
                "a@x.example",
                "b@y.example",
                b"Subject: t\r\n\r\n.hidden\r\n",
            )
            .await
            .unwrap();
        let seen = server.await.unwrap();
        assert!(
            seen.starts_with(
                "EHLO pharos.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
            ),
            "{seen}"
        );
        assert!(seen.contains("\r\n..hidden\r\n.\r\nQUIT\r\n"), "{seen}");
    }

    #[tokio::test]
    async fn required_starttls_refuses_a_server_without_it_and_5xx_is_permanent() {
        let (port, server) = fake_server(false).await;
        let e = client(port, StartTls::Required)
            .send("a@x.example", "b@y.example", b"x")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");
        assert!(!e.permanent());
        drop(server);
        let (port, _server) = fake_server(false).await;
        let e = client(port, StartTls::Opportunistic)
            .send("a@x.example", "nobody@y.example", b"x")
            .await
            .unwrap_err();
        assert!(e.permanent(), "{e}");
        assert!(e.to_string().contains("550"), "{e}");
    }

    #[test]
    fn addresses_with_line_breaks_or_brackets_are_refused() {
        assert!(valid_address("cert@uni.example"));
        assert!(!valid_address("a@b.example\r\nRCPT TO:<x@y>"));
        assert!(!valid_address("a@b>"));
        assert!(!valid_address("nobody"));
    }
}
