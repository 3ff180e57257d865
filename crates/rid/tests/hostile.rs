//! Hostile input: every refusal is an error naming what and where, never a panic, never
//! unbounded work.

mod common;

use pharos_rid::*;
use proptest::prelude::*;

fn parse(xml: &[u8]) -> Result<Rid, ParseError> {
    Rid::parse(xml, &Limits::default())
}

#[test]
fn a_doctype_is_refused_so_billion_laughs_never_expands() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="&lol9;"/>"#;
    assert!(matches!(
        parse(laughs.as_bytes()),
        Err(ParseError::Doctype { .. })
    ));
    let external = r#"<!DOCTYPE RID SYSTEM "file:///etc/passwd"><RID lang="en"/>"#;
    assert!(matches!(
        parse(external.as_bytes()),
        Err(ParseError::Doctype { .. })
    ));
}

#[test]
fn undeclared_entities_are_refused_in_text_and_attributes() {
    let text = r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"><RequestStatus AuthorizationStatus="Approved">&xxe;</RequestStatus></RID>"#;
    let e = parse(text.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, ParseError::Entity { name, path } if name == "xxe" && path == "/RID/RequestStatus"),
        "{e}"
    );
    let attr = r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="&xxe;"/>"#;
    assert!(matches!(
        parse(attr.as_bytes()),
        Err(ParseError::Entity { .. })
    ));
    // the five predefined ones and character references are fine
    let ok = r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="e&#110;"><RequestStatus AuthorizationStatus="Appr&#x6f;ved"/></RID>"#;
    assert_eq!(parse(ok.as_bytes()).unwrap().lang, "en");
}

#[test]
fn a_depth_bomb_stops_at_the_depth_limit() {
    let depth = 100_000;
    let mut s = String::from(r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en">"#);
    s.push_str(&"<a>".repeat(depth));
    s.push_str(&"</a>".repeat(depth));
    s.push_str("</RID>");
    let e = parse(s.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::Limit {
                what: "nesting depth",
                limit: 64,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn too_many_elements_stop_at_the_element_limit() {
    let limits = Limits {
        max_elements: 1000,
        ..Limits::default()
    };
    let mut s = String::from(r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en">"#);
    s.push_str(&"<x/>".repeat(5000));
    s.push_str("</RID>");
    let e = Rid::parse(s.as_bytes(), &limits).unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::Limit {
                what: "element count",
                limit: 1000,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_huge_attribute_is_refused_and_so_is_a_huge_document() {
    let big = "A".repeat(1 << 20);
    let s = format!(r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="{big}"/>"#);
    let e = parse(s.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::Limit {
                what: "attribute length",
                ..
            }
        ),
        "{e}"
    );
    let many: String = (0..100).map(|i| format!(" a{i}=\"x\"")).collect();
    let s = format!(r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"{many}/>"#);
    let e = parse(s.as_bytes()).unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::Limit {
                what: "attribute count",
                ..
            }
        ),
        "{e}"
    );
    let limits = Limits {
        max_bytes: 1024,
        ..Limits::default()
    };
    let e = Rid::parse(common::trace_request().emit().as_bytes(), &limits).unwrap_err();
    assert!(matches!(e, ParseError::TooLarge { limit: 1024, .. }), "{e}");
}

#[test]
fn an_unknown_namespace_is_refused_with_the_expected_name() {
    let s = r#"<RID xmlns="urn:evil" lang="en"/>"#;
    let e = parse(s.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/RID: unexpected element {urn:evil}RID; expected {urn:ietf:params:xml:ns:iodef-rid-2.0}RID"
    );
    // the right name in no namespace is not the RID element either
    assert!(matches!(
        parse(br#"<RID lang="en"/>"#),
        Err(ParseError::Unexpected { .. })
    ));
    // an IODEF class smuggled in under another namespace
    let xml = common::trace_request().emit().replace(
        "<iodef:Node><iodef:NodeName>rid.as64501.example</iodef:NodeName></iodef:Node>",
        r#"<e:Node xmlns:e="urn:evil"><e:NodeName>x</e:NodeName></e:Node>"#,
    );
    let e = parse(xml.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, ParseError::Unexpected { path, .. } if path == "/RID/RIDPolicy/Node"),
        "{e}"
    );
    // an undeclared prefix
    assert!(matches!(
        parse(br#"<x:RID lang="en"/>"#),
        Err(ParseError::Syntax { .. })
    ));
}

#[test]
fn truncated_documents_are_refused_at_every_cut() {
    let xml = common::result().emit();
    let bytes = xml.as_bytes();
    for cut in (0..bytes.len()).step_by(7) {
        assert!(parse(&bytes[..cut]).is_err(), "accepted a cut at {cut}");
    }
    assert!(parse(bytes).is_ok());
}

#[test]
fn invalid_utf8_and_other_encodings_are_refused() {
    let mut bytes = common::query().emit().into_bytes();
    let at = bytes.len() - 10;
    bytes[at] = 0xff;
    let e = parse(&bytes).unwrap_err();
    assert!(
        matches!(e, ParseError::Encoding { offset, .. } if offset == at),
        "{e}"
    );
    let latin = br#"<?xml version="1.0" encoding="ISO-8859-1"?><RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"/>"#;
    assert!(matches!(parse(latin), Err(ParseError::Encoding { .. })));
    // a UTF-8 byte order mark is fine
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(common::query().emit().as_bytes());
    assert_eq!(parse(&bom).unwrap(), common::query());
}

#[test]
fn malformed_structure_is_refused() {
    for bad in [
        &b""[..],
        b"   ",
        b"not xml",
        br#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"></RIDX>"#,
        br#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"/><RID/>"#,
        br#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"/>trailing"#,
        br#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en" lang="fr"/>"#,
        br#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"/>"#, // no child
        br#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en">text<RequestStatus AuthorizationStatus="Approved"/></RID>"#,
        br#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en"><RequestStatus AuthorizationStatus="Approved"/><RequestStatus AuthorizationStatus="Denied"/></RID>"#,
    ] {
        assert!(parse(bad).is_err(), "accepted {:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn many_siblings_parse_in_linear_time_and_a_peers_huge_sample_is_capped() {
    // 60 000 source Nodes in IncidentSource and 60 000 source Systems in one Flow: quadratic
    // bookkeeping would take minutes here
    let mut r = common::result();
    let nodes: Vec<Node> = (0..60_000u32)
        .map(|i| Node::ip(std::net::Ipv4Addr::from(0x0a00_0000 + i).into()))
        .collect();
    r.incident_source.as_mut().unwrap().nodes = nodes.clone();
    let systems = nodes
        .into_iter()
        .map(|n| System::new(SystemCategory::Source, n))
        .collect();
    r.iodef_mut().unwrap().incidents[0].event_data[1].flows[0].systems = systems;
    let xml = r.emit();
    let started = std::time::Instant::now();
    let roomy = Limits {
        max_bytes: 64 << 20,
        max_elements: 1 << 20,
        ..Limits::default()
    };
    let back = Rid::parse(xml.as_bytes(), &roomy).unwrap();
    assert_eq!(back, r);
    let ev = iodef_to_ddos(back.iodef().unwrap()).unwrap();
    assert_eq!(ev.attack_src_ip.len(), 1024);
    eprintln!(
        "{} bytes parsed and converted in {:?}",
        xml.len(),
        started.elapsed()
    );
}

#[test]
fn mutated_examples_never_panic() {
    for (_, rid) in common::all() {
        let bytes = rid.emit().into_bytes();
        for i in (0..bytes.len()).step_by(3) {
            for b in [b'<', b'>', b'&', b'"', 0xff, b'/', b'x'] {
                let mut m = bytes.clone();
                m[i] = b;
                if let Ok(r) = parse(&m) {
                    // whatever parses also emits something that parses to the same
                    assert_eq!(
                        parse(r.emit().as_bytes()).as_ref(),
                        Ok(&r),
                        "byte {i} set to {b}: {}",
                        String::from_utf8_lossy(&m[i.saturating_sub(60)..(i + 60).min(m.len())])
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Rid::parse(&bytes, &Limits::default());
        let _ = IodefDocument::parse(&bytes, &Limits::default());
    }

    #[test]
    fn random_markup_never_panics(text in "[<>/=\"' a-zA-Z:&;#!?\\[\\]-]{0,300}") {
        let doc = format!(r#"<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en">{text}</RID>"#);
        if let Ok(r) = Rid::parse(doc.as_bytes(), &Limits::default()) {
            prop_assert_eq!(Rid::parse(r.emit().as_bytes(), &Limits::default()), Ok(r));
        }
        let _ = Rid::parse(text.as_bytes(), &Limits::default());
    }

    #[test]
    fn random_splices_into_a_message_never_panic(
        at in 0usize..4000, junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = common::trace_request().emit().into_bytes();
        let at = at.min(bytes.len());
        bytes.splice(at..at, junk);
        if let Ok(r) = Rid::parse(&bytes, &Limits::default()) {
            prop_assert_eq!(Rid::parse(r.emit().as_bytes(), &Limits::default()), Ok(r));
        }
    }
}
