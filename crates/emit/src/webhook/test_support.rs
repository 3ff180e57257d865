//! Test helpers shared by the sinks' tests: a test CA and a server certificate for 127.0.0.1 and
//! localhost, sample items, and deadline polling.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pharos_model::{EventState, Message};
use pharos_store::StoredMessage;

use crate::{Change, Item};

/// A test CA (its PEM written to a temp file, for `ca_file`) and a server TLS configuration with
/// a certificate it issued for `localhost` and `127.0.0.1`.
pub(crate) struct TestTls {
    pub _dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

pub(crate) fn test_tls() -> TestTls {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pharos test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
    .unwrap();
    TestTls {
        _dir: dir,
        ca_file,
        server: Arc::new(server),
    }
}

/// The sample message of kind `name` (one of `pharos_model::KIND_NAMES`), stored with `id`.
pub(crate) fn sample(name: &str, id: u64) -> Message {
    let mut m = pharos_model::samples::samples()
        .into_iter()
        .find(|m| m.kind.name() == name)
        .unwrap_or_else(|| panic!("no sample of kind {name}"));
    m.common.id = Some(id);
    m
}

/// An item for `message` at `seq`.
pub(crate) fn item(seq: u64, change: Change, message: Message) -> Item {
    let state = message.kind.is_event().then_some(EventState::Open);
    Item {
        seq,
        change,
        stored: StoredMessage {
            message,
            state,
            state_changed_at: None,
            ack: None,
        },
    }
}

/// Polls `f` every 10 ms until it returns `Some`, failing the test after `deadline`.
pub(crate) async fn poll<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
