//! Test support: starts the real `pharos` binary on a free port in a temp dir and talks to it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `pharos run` in its own temp directory.
pub struct Instance {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub base: String,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pharos")
}

/// Where ../shared is (CI has it beside the repo), if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = std::env::var_os("PHAROS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    p.join("yang").is_dir().then_some(p)
}

pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Instance {
    /// Starts pharos with `extra` appended to a config that listens on port 0.
    pub fn start(extra: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> Instance {
        let data = dir.path().join("data");
        let cfg = dir.path().join("pharos.toml");
        std::fs::write(
            &cfg,
            format!(
                "[api]\nlisten = \"127.0.0.1:0\"\n{extra}\n[store]\ndata_dir = {:?}\n",
                data.display().to_string()
            ),
        )
        .unwrap();
        let _ = std::fs::remove_file(data.join("api.addr"));
        let log = std::fs::File::create(dir.path().join("pharos.log")).unwrap();
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut inst = Instance {
            child: Some(child),
            dir,
            base: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr_file = data.join("api.addr");
        loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file)
                && s.ends_with('\n')
            {
                inst.base = format!("http://{}", s.trim());
                break;
            }
            if let Some(status) = inst.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "pharos exited during start-up with {status}: {}",
                    inst.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "pharos did not start within 60 s: {}",
                inst.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        inst
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pharos.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit status (deadline 30 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("pharos did not stop within 30 s of SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops and gives back the temp dir, to restart on the same data.
    pub fn stop_keep_dir(mut self) -> tempfile::TempDir {
        let status = self.terminate();
        assert!(status.success(), "exit status {status}: {}", self.log());
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A blocking HTTP client for tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Validates YANG-JSON documents with yanglint (the model crate's conformance harness).
/// Ok(false) when yanglint or the modules are absent (the caller says it skipped).
pub fn yanglint_validate(docs: &[serde_json::Value]) -> Result<bool, String> {
    use pharos_model::conformance::{Outcome, validate_json};
    match validate_json(docs)? {
        Outcome::Validated(_) => Ok(true),
        Outcome::Skipped(why) => {
            eprintln!("SKIPPED yanglint: {why}");
            Ok(false)
        }
    }
}
