//! XML signatures without external tools: sign → verify, the relay path (detached signature
//! forwarded unchanged, enveloped signature replaced per hop), tampering, signature wrapping,
//! hostile Signature elements, and property tests.

mod common;

use pharos_rid::dsig::{self, DsigError, SigningKey};
use pharos_rid::*;
use proptest::prelude::*;

/// A signing identity: key, DER certificate.
struct Identity {
    key: SigningKey,
    cert: Vec<u8>,
}

fn ec_identity(name: &str) -> Identity {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let key = SigningKey::from_pkcs8_pem(&kp.serialize_pem()).unwrap();
    let certs = dsig::certificates_from_pem(&cert.pem()).unwrap();
    assert_eq!(certs[0], cert.der().to_vec());
    Identity {
        key,
        cert: cert.der().to_vec(),
    }
}

const RECORD_ID: &str = "rec-1";

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

fn limits() -> Limits {
    Limits::default()
}

fn originate(origin: &Identity) -> String {
    let xml = trace_request().emit();
    let xml = dsig::sign_detached(&xml, &[RECORD_ID], &origin.key, &origin.cert).unwrap();
    dsig::sign_enveloped(&xml, &origin.key, &origin.cert).unwrap()
}

#[test]
fn enveloped_signature_verifies_and_the_message_still_validates() {
    let me = ec_identity("rid.as64500.example");
    let signed = dsig::sign_enveloped_rid(&trace_request(), &me.key, &me.cert).unwrap();
    dsig::verify_enveloped(signed.as_bytes(), &me.cert, &limits()).unwrap();
    assert!(matches!(
        dsig::verify_detached(signed.as_bytes(), &me.cert, &limits()),
        Err(DsigError::NoSignature { kind: "detached" })
    ));
    // the message reads back with its signature kept in ReportSchema/Signature
    let back = Rid::parse(signed.as_bytes(), &limits()).unwrap();
    let rs = back
        .policy
        .as_ref()
        .unwrap()
        .report_schema
        .as_ref()
        .unwrap();
    assert_eq!(rs.signatures.len(), 1);
    match common::xmllint(&signed, "iodef-rid-2.0.xsd") {
        None | Some(Ok(())) => {}
        Some(Err(e)) => panic!("signed message does not validate:\n{e}\n{signed}"),
    }
}

#[test]
fn detached_and_enveloped_signatures_verify_and_validate() {
    let origin = ec_identity("rid.as64500.example");
    let signed = originate(&origin);
    dsig::verify_enveloped(signed.as_bytes(), &origin.cert, &limits()).unwrap();
    assert_eq!(
        dsig::verify_detached(signed.as_bytes(), &origin.cert, &limits()).unwrap(),
        vec![RECORD_ID.to_string()]
    );
    match common::xmllint(&signed, "iodef-rid-2.0.xsd") {
        None | Some(Ok(())) => {}
        Some(Err(e)) => panic!("signed message does not validate:\n{e}\n{signed}"),
    }
    // what the detached Reference digests: the record alone, its namespace declared on it
    let record = dsig::exc_c14n_id(signed.as_bytes(), RECORD_ID, &limits()).unwrap();
    let record = String::from_utf8(record).unwrap();
    assert_eq!(
        record,
        "<x1:flow xmlns:x1=\"urn:pharos:flow-record:1\" Id=\"rec-1\" dst=\"198.51.100.10:80\" src=\"192.0.2.17:123\">468 bytes, 1 packet</x1:flow>"
    );
    let whole = String::from_utf8(dsig::exc_c14n(signed.as_bytes(), &limits()).unwrap()).unwrap();
    assert!(
        whole.starts_with("<iodef-rid:RID xmlns:iodef-rid="),
        "{whole}"
    );
    assert!(!whole.contains("<?xml"));
}

#[test]
fn a_relay_forwards_the_detached_signature_unchanged_and_replaces_the_enveloped_one() {
    let origin = ec_identity("rid.as64500.example");
    let relay = ec_identity("rid.as64501.example");
    let received = originate(&origin);
    // the relay checks its peer, then reads, extends and re-signs the message
    dsig::verify_enveloped(received.as_bytes(), &origin.cert, &limits()).unwrap();
    let mut rid = Rid::parse(received.as_bytes(), &limits()).unwrap();
    assert_eq!(dsig::remove_enveloped(&mut rid), 1);
    let mut node = Node::named("rid.as64501.example");
    node.addresses
        .push(Address::ip(common::ip("203.0.113.129")));
    rid.iodef_mut().unwrap().incidents[0]
        .append_sp_hop(System::new(SystemCategory::Infrastructure, node));
    let forwarded = dsig::sign_enveloped_rid(&rid, &relay.key, &relay.cert).unwrap();
    // the next hop: the enveloped signature is the relay's, the detached one the originator's
    dsig::verify_enveloped(forwarded.as_bytes(), &relay.cert, &limits()).unwrap();
    assert!(matches!(
        dsig::verify_enveloped(forwarded.as_bytes(), &origin.cert, &limits()),
        Err(DsigError::BadSignature { .. })
    ));
    assert_eq!(
        dsig::verify_detached(forwarded.as_bytes(), &origin.cert, &limits()).unwrap(),
        vec![RECORD_ID.to_string()]
    );
    // and a plain parse → emit leaves the signed message byte for byte as it was
    let again = Rid::parse(forwarded.as_bytes(), &limits()).unwrap().emit();
    assert_eq!(again, forwarded);
    // two enveloped signatures cannot be attributed
    let twice = dsig::sign_enveloped(&forwarded, &relay.key, &relay.cert).unwrap();
    assert!(matches!(
        dsig::verify_enveloped(twice.as_bytes(), &relay.cert, &limits()),
        Err(DsigError::TooManySignatures { count: 2, .. })
    ));
}

#[test]
fn tampering_is_refused() {
    let origin = ec_identity("rid.as64500.example");
    let signed = originate(&origin);
    // a changed address in the IODEF document
    let changed = signed.replacen("198.51.100.10", "198.51.100.11", 1);
    assert_ne!(changed, signed);
    let err = dsig::verify_enveloped(changed.as_bytes(), &origin.cert, &limits()).unwrap_err();
    assert!(matches!(err, DsigError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("Reference"), "{err}");
    // a changed example record
    let changed = signed.replacen("192.0.2.17:123", "192.0.2.18:123", 1);
    assert_ne!(changed, signed);
    assert!(matches!(
        dsig::verify_detached(changed.as_bytes(), &origin.cert, &limits()),
        Err(DsigError::DigestMismatch { .. })
    ));
    // a changed SignatureValue byte, in each signature
    for nth in 0..2 {
        let start = signed
            .match_indices("SignatureValue>")
            .nth(nth * 2)
            .map(|(i, s)| i + s.len())
            .unwrap();
        let mut bytes = signed.clone().into_bytes();
        bytes[start + 3] = if bytes[start + 3] == b'A' { b'B' } else { b'A' };
        let e = dsig::verify_enveloped(&bytes, &origin.cert, &limits());
        let d = dsig::verify_detached(&bytes, &origin.cert, &limits());
        assert!(
            e.is_err() || d.is_err(),
            "signature {nth} altered yet accepted"
        );
        if nth == 0 {
            // the detached signature's value, also covered by the enveloped signature
            assert!(matches!(d, Err(DsigError::BadSignature { .. })), "{d:?}");
            assert!(matches!(e, Err(DsigError::DigestMismatch { .. })), "{e:?}");
        } else {
            assert!(matches!(e, Err(DsigError::BadSignature { .. })), "{e:?}");
            assert!(d.is_ok(), "{d:?}");
        }
    }
    // another peer's certificate
    let other = ec_identity("rid.as64999.example");
    assert!(matches!(
        dsig::verify_enveloped(signed.as_bytes(), &other.cert, &limits()),
        Err(DsigError::BadSignature { .. })
    ));
}

#[test]
fn signature_wrapping_and_missing_references_are_refused() {
    let origin = ec_identity("rid.as64500.example");
    let xml = trace_request().emit();
    let signed = dsig::sign_detached(&xml, &[RECORD_ID], &origin.key, &origin.cert).unwrap();
    // a second element carrying the same Id (the classic wrapping attack)
    let wrapped = signed.replacen(
        "<iodef:Description>",
        "<iodef:Description><x9:flow xmlns:x9=\"urn:evil\" Id=\"rec-1\"/>",
        1,
    );
    assert_ne!(wrapped, signed);
    assert!(matches!(
        dsig::verify_detached(wrapped.as_bytes(), &origin.cert, &limits()),
        Err(DsigError::DuplicateId { count: 2, .. })
    ));
    // the referenced element renamed away
    let gone = signed.replacen("Id=\"rec-1\"", "Id=\"rec-2\"", 1);
    let err = dsig::verify_detached(gone.as_bytes(), &origin.cert, &limits()).unwrap_err();
    assert!(matches!(err, DsigError::MissingReference { .. }), "{err}");
    assert!(err.to_string().contains("rec-1"), "{err}");
    // signing an Id that is not there
    assert!(matches!(
        dsig::sign_detached(&xml, &["nope"], &origin.key, &origin.cert),
        Err(DsigError::MissingReference { .. })
    ));
}

#[test]
fn signing_needs_a_report_schema_and_a_matching_certificate() {
    let me = ec_identity("rid.as64500.example");
    let other = ec_identity("rid.as64501.example");
    let ack = common::acknowledgement(AuthorizationStatus::Pending, None).emit();
    let err = dsig::sign_enveloped(&ack, &me.key, &me.cert).unwrap_err();
    assert_eq!(err, DsigError::NoReportSchema);
    assert!(err.to_string().contains("ReportSchema"));
    let xml = trace_request().emit();
    assert!(matches!(
        dsig::sign_enveloped(&xml, &me.key, &other.cert),
        Err(DsigError::KeyCertificateMismatch { .. })
    ));
    assert!(matches!(
        dsig::sign_enveloped(&xml, &me.key, b"not a certificate"),
        Err(DsigError::Certificate { .. })
    ));
}

#[test]
fn keys_in_other_forms_are_refused_with_the_fix() {
    for (pem, want) in [
        ("", "no -----BEGIN PRIVATE KEY-----"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "pkcs8",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n",
            "base64",
        ),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "without"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "PKCS#8",
        ),
    ] {
        let err = SigningKey::from_pkcs8_pem(pem).unwrap_err().to_string();
        assert!(err.contains(want), "{err:?} should mention {want:?}");
    }
    assert!(dsig::certificates_from_pem("nothing").is_err());
}

/// Replaces the text between the `n`-th `<...name>` start tag and its end tag.
fn replace_content(xml: &str, name: &str, n: usize, with: &str) -> String {
    let open = xml
        .match_indices(&format!(":{name}>"))
        .nth(n)
        .map(|(i, s)| i + s.len())
        .unwrap();
    let close = open + xml[open..].find("</").unwrap();
    format!("{}{}{}", &xml[..open], with, &xml[close..])
}

#[test]
fn hostile_signature_elements_are_refused_without_panicking() {
    let me = ec_identity("rid.as64500.example");
    let signed = dsig::sign_enveloped_rid(&trace_request(), &me.key, &me.cert).unwrap();
    let sig_start = signed.find("<x2:Signature").unwrap_or_else(|| {
        panic!("the emitter's prefix for ds changed: {signed}");
    });
    let sig_end = signed.find("</x2:Signature>").unwrap() + "</x2:Signature>".len();
    let ds = "xmlns:x2=\"http://www.w3.org/2000/09/xmldsig#\"";
    let splice = |sig: &str| format!("{}{}{}", &signed[..sig_start], sig, &signed[sig_end..]);
    let cases = vec![
        ("empty Signature", splice(&format!("<x2:Signature {ds}/>"))),
        (
            "no SignatureValue",
            signed
                .replacen("<x2:SignatureValue>", "<x2:Nothing>", 1)
                .replacen("</x2:SignatureValue>", "</x2:Nothing>", 1),
        ),
        (
            "bad base64 value",
            replace_content(&signed, "SignatureValue", 0, "%%%"),
        ),
        (
            "huge value",
            replace_content(&signed, "SignatureValue", 0, &"QUFB".repeat(100_000)),
        ),
        (
            "empty value",
            replace_content(&signed, "SignatureValue", 0, ""),
        ),
        (
            "bad digest",
            replace_content(&signed, "DigestValue", 0, "@@"),
        ),
        (
            "short digest",
            replace_content(&signed, "DigestValue", 0, "AAAA"),
        ),
        (
            "element in value",
            replace_content(&signed, "SignatureValue", 0, "<x2:X/>"),
        ),
        (
            "unknown method",
            signed.replacen("xmldsig-more#ecdsa-sha256", "xmldsig-more#ecdsa-sha512", 1),
        ),
        (
            "unknown transform",
            signed.replacen("xmldsig#enveloped-signature", "xmldsig#base64", 1),
        ),
        (
            "deep nesting",
            splice(&format!(
                "<x2:Signature {ds}>{}{}</x2:Signature>",
                "<x2:SignedInfo>".repeat(200),
                "</x2:SignedInfo>".repeat(200)
            )),
        ),
        (
            "many signatures",
            splice(&signed[sig_start..sig_end].repeat(20)),
        ),
        ("not XML", "<RID".to_string()),
        (
            "a DOCTYPE",
            format!(
                "<!DOCTYPE r [<!ENTITY a \"b\">]>{}",
                &signed[signed.find("<iodef-rid:RID").unwrap()..]
            ),
        ),
    ];
    for (what, xml) in cases {
        let e = dsig::verify_enveloped(xml.as_bytes(), &me.cert, &limits());
        let d = dsig::verify_detached(xml.as_bytes(), &me.cert, &limits());
        assert!(e.is_err(), "{what}: accepted");
        assert!(d.is_err(), "{what}: accepted");
        // every refusal says something
        assert!(!e.unwrap_err().to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any description text survives sign → verify, and the message reads back equal.
    #[test]
    fn sign_then_verify_round_trips(text in "[ -~\u{e9}\u{4e2d}\r\n\t&<>\"']{0,40}") {
        let me = ec_identity("rid.as64500.example");
        let mut rid = trace_request();
        rid.iodef_mut().unwrap().incidents[0].descriptions.push(MlString::new(text));
        let xml = dsig::sign_detached_rid(&rid, &[RECORD_ID], &me.key, &me.cert).unwrap();
        let xml = dsig::sign_enveloped(&xml, &me.key, &me.cert).unwrap();
        dsig::verify_enveloped(xml.as_bytes(), &me.cert, &limits()).unwrap();
        dsig::verify_detached(xml.as_bytes(), &me.cert, &limits()).unwrap();
        let mut back = Rid::parse(xml.as_bytes(), &limits()).unwrap();
        back.policy.as_mut().unwrap().report_schema.as_mut().unwrap().signatures.clear();
        prop_assert_eq!(back, rid);
    }

    /// A change of one letter or digit anywhere in the signed IODEF document is refused (by
    /// the reader or by verification); a change of any byte anywhere never panics.
    #[test]
    fn single_byte_changes_fail_verification(pos in any::<prop::sample::Index>(), any_pos in any::<prop::sample::Index>(), byte in any::<u8>(), alnum in "[a-zA-Z0-9]") {
        let me = ec_identity("rid.as64500.example");
        let signed = originate(&me);
        let start = signed.find("<iodef:IODEF-Document").unwrap();
        let end = signed.find("</iodef:IODEF-Document>").unwrap();
        let candidates: Vec<usize> = (start..end)
            .filter(|&i| signed.as_bytes()[i].is_ascii_alphanumeric())
            .collect();
        let i = candidates[pos.index(candidates.len())];
        let mut bytes = signed.clone().into_bytes();
        let new = alnum.as_bytes()[0];
        prop_assume!(bytes[i] != new);
        bytes[i] = new;
        let e = dsig::verify_enveloped(&bytes, &me.cert, &limits());
        prop_assert!(e.is_err(), "byte {} changed to {:?} yet verified", i, new as char);
        // any byte, anywhere: no panic, whatever the outcome
        let mut bytes = signed.into_bytes();
        let j = any_pos.index(bytes.len());
        bytes[j] = byte;
        let _ = dsig::verify_enveloped(&bytes, &me.cert, &limits());
        let _ = dsig::verify_detached(&bytes, &me.cert, &limits());
    }

    /// A change of one letter or digit inside the signed example record breaks the detached
    /// signature.
    #[test]
    fn record_changes_fail_the_detached_signature(pos in any::<prop::sample::Index>(), alnum in "[a-zA-Z0-9]") {
        let me = ec_identity("rid.as64500.example");
        let signed = originate(&me);
        let start = signed.find("<x1:flow").unwrap();
        let end = signed.find("</x1:flow>").unwrap();
        let candidates: Vec<usize> = (start..end)
            .filter(|&i| signed.as_bytes()[i].is_ascii_alphanumeric())
            .collect();
        let i = candidates[pos.index(candidates.len())];
        let mut bytes = signed.into_bytes();
        let new = alnum.as_bytes()[0];
        prop_assume!(bytes[i] != new);
        bytes[i] = new;
        prop_assert!(dsig::verify_detached(&bytes, &me.cert, &limits()).is_err());
    }
}

/// The fuzz seeds of the `verify` target (`fuzz/corpus/verify`): messages signed with the fuzz
/// key (`fuzz/keys/`), each of which verifies; `PHAROS_RID_WRITE_CORPUS=1` rewrites them.
#[test]
fn verify_seed_corpus_is_signed_with_the_fuzz_key() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let key = std::fs::read_to_string(fuzz.join("keys/key.pem")).unwrap();
    let cert = std::fs::read_to_string(fuzz.join("keys/cert.pem")).unwrap();
    let id = Identity {
        key: SigningKey::from_pkcs8_pem(&key).unwrap(),
        cert: dsig::certificates_from_pem(&cert).unwrap().remove(0),
    };
    let dir = fuzz.join("corpus/verify");
    if std::env::var_os("PHAROS_RID_WRITE_CORPUS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        let xml = trace_request().emit();
        let detached = dsig::sign_detached(&xml, &[RECORD_ID], &id.key, &id.cert).unwrap();
        std::fs::write(dir.join("detached.xml"), &detached).unwrap();
        std::fs::write(dir.join("both.xml"), originate(&id)).unwrap();
        let enveloped = dsig::sign_enveloped(&xml, &id.key, &id.cert).unwrap();
        std::fs::write(dir.join("enveloped.xml"), enveloped).unwrap();
    }
    for name in ["detached.xml", "both.xml", "enveloped.xml"] {
        let bytes = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (PHAROS_RID_WRITE_CORPUS=1 writes it)"));
        let enveloped = dsig::verify_enveloped(&bytes, &id.cert, &limits());
        let detached = dsig::verify_detached(&bytes, &id.cert, &limits());
        assert!(enveloped.is_ok() || detached.is_ok(), "{name}");
    }
}
