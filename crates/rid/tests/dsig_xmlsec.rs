//! Interoperability with Debian's xmlsec1 (libxmlsec1, OpenSSL backend): messages Pharos signs
//! verify with `xmlsec1 --verify`, templates `xmlsec1 --sign` fills verify with Pharos, and
//! tampered messages are refused by both. ECDSA P-256 keys and certificates come from rcgen;
//! RSA 2048 keys from `openssl genpkey` (rcgen with ring cannot generate RSA keys).
//!
//! Without xmlsec1 (Debian: xmlsec1) the tests skip, or fail under `PHAROS_REQUIRE_ALL=1`; the
//! RSA cases do the same without openssl.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pharos_model::conformance::skip;
use pharos_rid::dsig::{self, DsigError, SigningKey};
use pharos_rid::*;

const RECORD_ID: &str = "rec-1";
/// How xmlsec1 learns that `Id` on the Pharos flow record element is an ID attribute.
const ID_ATTR: [&str; 2] = ["--id-attr:Id", "urn:pharos:flow-record:1:flow"];

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn xmlsec1() -> bool {
    if have("xmlsec1", "--version") {
        true
    } else {
        skip("xmlsec1 not found on PATH (Debian: xmlsec1)");
        false
    }
}

/// A key and certificate, in memory and as PEM files in a scratch directory.
struct Identity {
    key: SigningKey,
    cert: Vec<u8>,
    key_pem: PathBuf,
    cert_pem: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn identity_from(dir: &Path, tag: &str, key_pem: &str, cert_pem: &str) -> Identity {
    Identity {
        key: SigningKey::from_pkcs8_pem(key_pem).unwrap(),
        cert: dsig::certificates_from_pem(cert_pem).unwrap().remove(0),
        key_pem: write(dir, &format!("{tag}-key.pem"), key_pem),
        cert_pem: write(dir, &format!("{tag}-cert.pem"), cert_pem),
    }
}

fn params(name: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(vec![name.into()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    p
}

/// A self-signed ECDSA P-256 identity.
fn ec_self_signed(dir: &Path, name: &str) -> Identity {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params(name).self_signed(&kp).unwrap();
    identity_from(dir, name, &kp.serialize_pem(), &cert.pem())
}

/// An ECDSA P-256 identity issued by a fresh CA; also gives the CA certificate file.
fn ec_ca_issued(dir: &Path, name: &str) -> (Identity, PathBuf) {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = params("Pharos test RID CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let ca_pem = write(dir, "ca-cert.pem", &ca.pem());
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = params(name);
    leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = leaf.signed_by(&kp, &ca).unwrap();
    (
        identity_from(dir, name, &kp.serialize_pem(), &cert.pem()),
        ca_pem,
    )
}

/// A self-signed RSA 2048 identity made with openssl, or `None` (skipped) without it.
fn rsa_self_signed(dir: &Path, name: &str) -> Option<Identity> {
    if !have("openssl", "version") {
        skip(
            "openssl not found on PATH: the RSA cases need it to generate a key (Debian: openssl)",
        );
        return None;
    }
    let key = dir.join(format!("{name}-key.pem"));
    let cert = dir.join(format!("{name}-cert.pem"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ok = Command::new("openssl")
        .args(["req", "-new", "-x509", "-days", "2", "-subj"])
        .arg(format!("/CN={name}"))
        .arg("-key")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    Some(identity_from(dir, name, &key_pem, &cert_pem))
}

/// The TraceRequest of the common examples, its XML flow record carrying `Id="rec-1"`.
fn trace_request() -> Rid {
    let mut rid = common::trace_request();
    let inc = &mut rid.iodef_mut().unwrap().incidents[0];
    let records = inc
        .event_data
        .iter_mut()
        .find_map(|e| e.record.as_mut())
        .unwrap();
    let item = records.data[0]
        .items
        .iter_mut()
        .find(|i| i.dtype == DType::Xml)
        .unwrap();
    let XmlContent::Element(flow) = &mut item.content[0] else {
        panic!("flow element expected");
    };
    flow.attributes.push(XmlAttribute {
        namespace: None,
        name: "Id".into(),
        value: RECORD_ID.into(),
    });
    rid
}

/// Runs xmlsec1; Ok(stderr) on success, Err(stderr) on failure.
fn xmlsec(args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let out = Command::new("xmlsec1").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        if args.first().is_some_and(|a| *a == "--verify") {
            assert!(
                text.contains("OK"),
                "xmlsec1 --verify succeeded without saying OK:\n{text}"
            );
        }
        Ok(text)
    } else {
        Err(text)
    }
}

/// `xmlsec1 --verify` of `xml` with the public key of `id`'s certificate (and the certificate
/// trusted, for the X509Data Pharos includes).
fn xmlsec_verify(
    dir: &Path,
    xml: &str,
    cert_pem: &Path,
    trusted: &Path,
    detached: bool,
) -> Result<String, String> {
    let file = write(dir, "to-verify.xml", xml);
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--verify".as_ref(),
        "--pubkey-cert-pem".as_ref(),
        cert_pem.as_os_str(),
        "--trusted-pem".as_ref(),
        trusted.as_os_str(),
    ];
    if detached {
        args.extend(ID_ATTR.iter().map(std::ffi::OsStr::new));
    }
    args.push(file.as_os_str());
    xmlsec(&args)
}

/// An xmlsec1 signature template in `RIDPolicy/ReportSchema/Signature`, with the `ds:` prefix,
/// line breaks and an empty X509Data for xmlsec1 to fill.
fn with_template(xml: &str, method: &str, uri: &str) -> String {
    let transforms = if uri.is_empty() {
        format!(
            "<ds:Transform Algorithm=\"{}\"/>\n        <ds:Transform Algorithm=\"{}\"/>",
            dsig::ENVELOPED_SIGNATURE,
            dsig::EXC_C14N
        )
    } else {
        format!("<ds:Transform Algorithm=\"{}\"/>", dsig::EXC_C14N)
    };
    let template = format!(
        "<iodef-rid:Signature dtype=\"xml\">\n  <ds:Signature xmlns:ds=\"{ds}\">\n    <ds:SignedInfo>\n      <ds:CanonicalizationMethod Algorithm=\"{exc}\"/>\n      <ds:SignatureMethod Algorithm=\"{method}\"/>\n      <ds:Reference URI=\"{uri}\">\n        <ds:Transforms>\n        {transforms}\n        </ds:Transforms>\n        <ds:DigestMethod Algorithm=\"{sha}\"/>\n        <ds:DigestValue></ds:DigestValue>\n      </ds:Reference>\n    </ds:SignedInfo>\n    <ds:SignatureValue/>\n    <ds:KeyInfo><ds:X509Data/></ds:KeyInfo>\n  </ds:Signature>\n</iodef-rid:Signature>",
        ds = dsig::DSIG_NS,
        exc = dsig::EXC_C14N,
        sha = dsig::SHA256,
    );
    let at = xml.find("</iodef-rid:ReportSchema>").unwrap();
    format!("{}{}{}", &xml[..at], template, &xml[at..])
}

/// `xmlsec1 --sign` of `template` with `id`'s key and certificate.
fn xmlsec_sign(dir: &Path, template: &str, id: &Identity, detached: bool) -> String {
    let file = write(dir, "template.xml", template);
    let out = dir.join("signed-by-xmlsec.xml");
    let keys = format!("{},{}", id.key_pem.display(), id.cert_pem.display());
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--sign".as_ref(),
        "--privkey-pem".as_ref(),
        keys.as_ref(),
        "--output".as_ref(),
        out.as_os_str(),
    ];
    if detached {
        args.extend(ID_ATTR.iter().map(std::ffi::OsStr::new));
    }
    args.push(file.as_os_str());
    if let Err(e) = xmlsec(&args) {
        panic!("xmlsec1 --sign failed:\n{e}\n{template}");
    }
    std::fs::read_to_string(out).unwrap()
}

/// Flips one character inside the first SignatureValue (base64 stays base64).
fn alter_signature_value(xml: &str) -> String {
    let at = xml.find("SignatureValue>").unwrap() + "SignatureValue>".len();
    let at = at + xml[at..].find(|c: char| c.is_ascii_alphanumeric()).unwrap() + 2;
    let mut bytes = xml.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn limits() -> Limits {
    Limits::default()
}

/// Pharos signs (enveloped, then detached + enveloped); xmlsec1 verifies; tampering is refused
/// by both.
fn pharos_signs_xmlsec_verifies(dir: &Path, id: &Identity, trusted: &Path) {
    let xml = trace_request().emit();
    // enveloped only
    let signed = dsig::sign_enveloped(&xml, &id.key, &id.cert).unwrap();
    if let Err(e) = xmlsec_verify(dir, &signed, &id.cert_pem, trusted, false) {
        panic!("xmlsec1 refuses Pharos' enveloped signature:\n{e}\n{signed}");
    }
    // detached only
    let detached = dsig::sign_detached(&xml, &[RECORD_ID], &id.key, &id.cert).unwrap();
    if let Err(e) = xmlsec_verify(dir, &detached, &id.cert_pem, trusted, true) {
        panic!("xmlsec1 refuses Pharos' detached signature:\n{e}\n{detached}");
    }
    // both in one message (as a TraceRequest goes out), each selected by XPath
    let both = dsig::sign_enveloped(&detached, &id.key, &id.cert).unwrap();
    let file = write(dir, "both.xml", &both);
    for nth in [1, 2] {
        let xpath = format!(
            "(//*[local-name()='Signature' and namespace-uri()='{}'])[{nth}]",
            dsig::DSIG_NS
        );
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--verify".as_ref(),
            "--pubkey-cert-pem".as_ref(),
            id.cert_pem.as_os_str(),
            "--trusted-pem".as_ref(),
            trusted.as_os_str(),
            "--node-xpath".as_ref(),
            xpath.as_ref(),
        ];
        args.extend(ID_ATTR.iter().map(std::ffi::OsStr::new));
        args.push(file.as_os_str());
        if let Err(e) = xmlsec(&args) {
            panic!("xmlsec1 refuses signature {nth} of a doubly signed message:\n{e}\n{both}");
        }
    }
    // a changed address / record, and a changed SignatureValue byte: refused by both
    let cases = [
        (signed.replacen("198.51.100.10", "198.51.100.11", 1), false),
        (
            detached.replacen("192.0.2.17:123", "192.0.2.18:123", 1),
            true,
        ),
        (alter_signature_value(&signed), false),
        (alter_signature_value(&detached), true),
    ];
    for (bad, is_detached) in cases {
        assert!(
            xmlsec_verify(dir, &bad, &id.cert_pem, trusted, is_detached).is_err(),
            "xmlsec1 accepts a tampered message:\n{bad}"
        );
        let pharos = if is_detached {
            dsig::verify_detached(bad.as_bytes(), &id.cert, &limits()).map(|_| ())
        } else {
            dsig::verify_enveloped(bad.as_bytes(), &id.cert, &limits())
        };
        assert!(
            matches!(
                pharos,
                Err(DsigError::DigestMismatch { .. } | DsigError::BadSignature { .. })
            ),
            "{pharos:?}"
        );
    }
}

/// xmlsec1 signs templates (enveloped and detached); Pharos verifies; tampering is refused.
fn xmlsec_signs_pharos_verifies(dir: &Path, id: &Identity) {
    let xml = trace_request().emit();
    let method = id.key.algorithm().uri();
    let signed = xmlsec_sign(dir, &with_template(&xml, method, ""), id, false);
    if let Err(e) = dsig::verify_enveloped(signed.as_bytes(), &id.cert, &limits()) {
        panic!("Pharos refuses xmlsec1's enveloped signature: {e}\n{signed}");
    }
    // and it still reads as a RID message
    Rid::parse(signed.as_bytes(), &limits()).unwrap();
    let detached = xmlsec_sign(
        dir,
        &with_template(&xml, method, &format!("#{RECORD_ID}")),
        id,
        true,
    );
    match dsig::verify_detached(detached.as_bytes(), &id.cert, &limits()) {
        Ok(ids) => assert_eq!(ids, vec![RECORD_ID.to_string()]),
        Err(e) => panic!("Pharos refuses xmlsec1's detached signature: {e}\n{detached}"),
    }
    let bad = signed.replacen("198.51.100.10", "198.51.100.11", 1);
    assert!(matches!(
        dsig::verify_enveloped(bad.as_bytes(), &id.cert, &limits()),
        Err(DsigError::DigestMismatch { .. })
    ));
    let bad = alter_signature_value(&signed);
    assert!(matches!(
        dsig::verify_enveloped(bad.as_bytes(), &id.cert, &limits()),
        Err(DsigError::BadSignature { .. })
    ));
}

#[test]
fn ecdsa_p256_pharos_signs_xmlsec1_verifies() {
    if !xmlsec1() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let id = ec_self_signed(dir.path(), "rid.as64500.example");
    pharos_signs_xmlsec_verifies(dir.path(), &id, &id.cert_pem.clone());
}

#[test]
fn ecdsa_p256_xmlsec1_signs_pharos_verifies() {
    if !xmlsec1() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let id = ec_self_signed(dir.path(), "rid.as64500.example");
    xmlsec_signs_pharos_verifies(dir.path(), &id);
}

#[test]
fn ecdsa_p256_ca_issued_certificate_verifies_with_the_ca_trusted() {
    if !xmlsec1() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (id, ca) = ec_ca_issued(dir.path(), "rid.as64500.example");
    let signed = dsig::sign_enveloped(&trace_request().emit(), &id.key, &id.cert).unwrap();
    // xmlsec1 takes the signer's certificate from KeyInfo/X509Data and checks it against the CA
    let file = write(dir.path(), "ca-signed.xml", &signed);
    let args: Vec<&std::ffi::OsStr> = vec![
        "--verify".as_ref(),
        "--trusted-pem".as_ref(),
        ca.as_os_str(),
        file.as_os_str(),
    ];
    if let Err(e) = xmlsec(&args) {
        panic!("xmlsec1 refuses a CA-issued signer:\n{e}");
    }
    dsig::verify_enveloped(signed.as_bytes(), &id.cert, &limits()).unwrap();
    xmlsec_signs_pharos_verifies(dir.path(), &id);
}

#[test]
fn rsa_2048_pharos_signs_xmlsec1_verifies() {
    if !xmlsec1() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(id) = rsa_self_signed(dir.path(), "rid.as64500.example") else {
        return;
    };
    assert_eq!(id.key.algorithm(), dsig::SignatureAlgorithm::RsaSha256);
    pharos_signs_xmlsec_verifies(dir.path(), &id, &id.cert_pem.clone());
}

#[test]
fn rsa_2048_xmlsec1_signs_pharos_verifies() {
    if !xmlsec1() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(id) = rsa_self_signed(dir.path(), "rid.as64500.example") else {
        return;
    };
    xmlsec_signs_pharos_verifies(dir.path(), &id);
    // an RSA signature checked with an ECDSA certificate names the mismatch
    let ec = ec_self_signed(dir.path(), "rid.as64501.example");
    let signed = dsig::sign_enveloped(&trace_request().emit(), &id.key, &id.cert).unwrap();
    assert!(matches!(
        dsig::verify_enveloped(signed.as_bytes(), &ec.cert, &limits()),
        Err(DsigError::KeyTypeMismatch { .. })
    ));
}
