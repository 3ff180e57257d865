//! parse(emit(x)) == x for every message type, whatever prefixes the sender used; the RFC 6545
//! §6 checks; the DDoS event conversion; the SP path a relay extends.

mod common;

use pharos_rid::*;
use proptest::prelude::*;

fn parse(xml: &str) -> Result<Rid, ParseError> {
    Rid::parse(xml.as_bytes(), &Limits::default())
}

#[test]
fn every_message_type_reads_back_as_emitted() {
    for (name, rid) in common::all() {
        let xml = rid.emit();
        let back = parse(&xml).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        assert_eq!(back, rid, "{name}");
        assert_eq!(back.emit(), xml, "{name}: emission is not stable");
    }
}

#[test]
fn every_example_passes_the_rfc6545_checks() {
    for (name, rid) in common::all() {
        rid.check().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn other_prefixes_and_a_default_namespace_mean_the_same_message() {
    let rid = common::trace_request();
    let xml = rid.emit();
    let renamed = xml
        .replace("iodef-rid:", "r:")
        .replace("xmlns:iodef-rid=", "xmlns:r=")
        .replace("iodef:", "i:")
        .replace("xmlns:iodef=", "xmlns:i=");
    assert_ne!(renamed, xml);
    assert_eq!(parse(&renamed).unwrap(), rid);

    let default_ns = r#"<?xml version="1.0"?>
<RID xmlns="urn:ietf:params:xml:ns:iodef-rid-2.0" lang="en">
  <!-- a comment -->
  <RIDPolicy MsgType=" Query " MsgDestination="RIDSystem">
    <PolicyRegion region="PeerToPeer"/>
    <Node xmlns="urn:ietf:params:xml:ns:iodef-1.0"><NodeName>rid.example.net</NodeName></Node>
    <TrafficType type="ext-value" ext-type="flows"/>
    <n:IncidentID xmlns:n="urn:ietf:params:xml:ns:iodef-1.0" name="csirt.example">42</n:IncidentID>
  </RIDPolicy>
</RID>"#;
    let q = parse(default_ns).unwrap();
    let p = q.policy.as_ref().unwrap();
    assert_eq!(p.msg_type, MsgType::Query);
    assert_eq!(p.traffic_types, vec![TrafficType::Ext("flows".into())]);
    assert_eq!(p.node, Node::named("rid.example.net"));
    assert_eq!(q.incident_id().unwrap().id, "42");
    assert_eq!(parse(&q.emit()).unwrap(), q);
}

#[test]
fn unmodelled_iodef_classes_are_skipped_and_unknown_elements_refused() {
    let doc = r#"<IODEF-Document xmlns="urn:ietf:params:xml:ns:iodef-1.0" version="1.00" lang="en">
 <Incident purpose="reporting">
  <IncidentID name="csirt.example">1</IncidentID>
  <AlternativeID><IncidentID name="other">9</IncidentID></AlternativeID>
  <ReportTime>2026-01-15T11:05:00+01:00</ReportTime>
  <Assessment><Impact type="dos"/><TimeImpact metric="downtime">3</TimeImpact></Assessment>
  <Contact role="creator" type="organization"><ContactName>X</ContactName></Contact>
 </Incident>
</IODEF-Document>"#;
    let d = IodefDocument::parse(doc.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        d.incidents[0].report_time,
        common::t(10, 5, 0),
        "offset applied"
    );
    let bad = doc.replace(
        "<TimeImpact metric=\"downtime\">3</TimeImpact>",
        "<Frobnicate/>",
    );
    let e = IodefDocument::parse(bad.as_bytes(), &Limits::default()).unwrap_err();
    assert!(
        matches!(&e, ParseError::Unexpected { path, .. } if path == "/IODEF-Document/Incident/Assessment/Frobnicate"),
        "{e}"
    );
}

#[test]
fn errors_name_the_element_path_and_the_value() {
    let xml = common::trace_request().emit();
    let e = parse(&xml.replace("ip_protocol=\"17\"", "ip_protocol=\"udp\"")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("/RID/RIDPolicy/ReportSchema/XMLDocument/IODEF-Document/Incident/EventData[2]/Flow/System[1]/Service: attribute ip_protocol = \"udp\""),
        "{msg}"
    );
    let e = parse(&xml.replace("MsgType=\"TraceRequest\"", "MsgType=\"Trace\"")).unwrap_err();
    assert!(
        e.to_string().contains("TraceRequest, InvestigationRequest"),
        "{e}"
    );
    let e = parse(&xml.replace(
        "<iodef:ReportTime>2026-01-15T10:05:00Z",
        "<iodef:ReportTime>2026-01-15T10:05:00",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("ReportTime: text"), "{e}");
    let e = parse(&xml.replace(" lang=\"en\"><iodef-rid:RIDPolicy", "><iodef-rid:RIDPolicy"))
        .unwrap_err();
    assert_eq!(e.to_string(), "/RID: missing attribute lang");
    let e = parse(&xml.replace("region=\"PeerToPeer\"", "region=\"ext-value\"")).unwrap_err();
    assert!(
        e.to_string().contains("ext-value with its ext- attribute"),
        "{e}"
    );
}

#[test]
fn a_request_without_the_required_classes_fails_the_check_naming_them() {
    let mut r = common::trace_request();
    let inc = &mut r.iodef_mut().unwrap().incidents[0];
    inc.event_data.remove(0); // the SP path
    inc.assessments[0].confidence = None;
    let e = r.check().unwrap_err();
    assert_eq!(e.msg_type, "TraceRequest");
    assert_eq!(e.problems.len(), 2, "{e}");
    assert!(e.to_string().contains("Impact and Confidence"), "{e}");
    assert!(e.to_string().contains("SP path"), "{e}");

    let mut ack = common::acknowledgement(AuthorizationStatus::Denied, None);
    assert!(
        ack.check()
            .unwrap_err()
            .to_string()
            .contains("Justification")
    );
    ack.incident_source = Some(IncidentSource {
        source_found: false,
        nodes: vec![],
        restriction: None,
    });
    assert_eq!(ack.check().unwrap_err().problems.len(), 2);

    let mut res = common::result();
    res.iodef_mut().unwrap().incidents[0].history = None;
    assert!(res.check().unwrap_err().to_string().contains("History"));
}

#[test]
fn the_response_matrix_allows_only_matching_replies() {
    use MsgType::*;
    assert!(TraceRequest.may_reply_with(&Result));
    assert!(InvestigationRequest.may_reply_with(&Acknowledgement));
    assert!(Query.may_reply_with(&Report));
    assert!(!Query.may_reply_with(&Result));
    assert!(Report.may_reply_with(&Acknowledgement));
    assert!(!Result.may_reply_with(&Acknowledgement));
}

#[test]
fn a_relay_appends_itself_to_the_sp_path_and_the_path_survives_the_wire() {
    let mut r = common::trace_request();
    let me = System::new(
        SystemCategory::Intermediate,
        Node::named("rid.as64501.example"),
    );
    r.iodef_mut().unwrap().incidents[0].append_sp_hop(me);
    let back = parse(&r.emit()).unwrap();
    let hops: Vec<&str> = back.iodef().unwrap().incidents[0]
        .sp_hops()
        .iter()
        .map(|s| s.node.names[0].text.as_str())
        .collect();
    assert_eq!(hops, ["rid.as64500.example", "rid.as64501.example"]);
    assert!(
        back.iodef().unwrap().incidents[0]
            .sp_hops()
            .iter()
            .all(|s| s.category == Some(SystemCategory::Infrastructure))
    );
}

#[test]
fn a_ddos_event_becomes_an_incident_and_back() {
    let ev = common::ntp_event();
    let doc = ddos_to_iodef(&ev, &common::context(Purpose::Traceback));
    assert_eq!(iodef_to_ddos(&doc).unwrap(), ev);
    // through XML too
    let back = IodefDocument::parse(doc.emit().as_bytes(), &Limits::default()).unwrap();
    assert_eq!(back, doc);
    assert_eq!(iodef_to_ddos(&back).unwrap(), ev);
    // a finished attack keeps its end; an unknown type loses the ports (no protocol) but not the rest
    let mut done = ev.clone();
    done.end_time = Some(common::t(10, 30, 0));
    done.attack_type = None;
    done.attack_rate = None;
    let got = iodef_to_ddos(&ddos_to_iodef(&done, &common::context(Purpose::Reporting))).unwrap();
    assert_eq!(got.end_time, done.end_time);
    assert_eq!(got.attack_src_ip, done.attack_src_ip);
    assert!(got.attack_dst_port.is_empty());
    assert_eq!(got.attack_rate, None);
    // with the protocol given by the context, the ports travel again
    let mut ctx = common::context(Purpose::Reporting);
    ctx.ip_protocol = Some(17);
    assert_eq!(iodef_to_ddos(&ddos_to_iodef(&done, &ctx)).unwrap(), done);
}

#[test]
fn a_peers_incident_without_our_rule_name_gets_one_from_its_id() {
    let mut doc = ddos_to_iodef(&common::ntp_event(), &common::context(Purpose::Traceback));
    doc.incidents[0].additional_data.clear();
    let ev = iodef_to_ddos(&doc).unwrap();
    assert_eq!(ev.rule_name, "rid:rid.as64500.example:DDOS-2026-000123");
}

#[test]
fn the_ddos_example_validates_as_a_result_of_the_conversion() {
    // the conversion alone (no relay path, no records) is a valid Report document
    let doc = ddos_to_iodef(&common::ntp_event(), &common::context(Purpose::Reporting));
    if let Some(Err(e)) = common::xmllint(&doc.emit(), "iodef-1.0.xsd") {
        panic!("{e}");
    }
}

fn xml_string() -> impl Strategy<Value = String> {
    // any characters XML 1.0 can carry, including the ones that need escaping
    proptest::collection::vec(
        prop_oneof![
            Just('&'),
            Just('<'),
            Just('>'),
            Just('"'),
            Just('\''),
            Just('\r'),
            Just('\n'),
            Just('\t'),
            Just(' '),
            Just(']'),
            Just('é'),
            Just('\u{1F600}'),
            proptest::char::range('a', 'z'),
        ],
        0..24,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn strings_with_any_xml_characters_read_back_unchanged(
        name in xml_string(), desc in xml_string(), item in xml_string(), attr in xml_string(),
    ) {
        let mut r = common::trace_request();
        let inc = &mut r.iodef_mut().unwrap().incidents[0];
        inc.contacts[0].name = Some(MlString::new(name));
        inc.descriptions = vec![MlString { text: desc, lang: Some("en".into()) }];
        let data = &mut inc.event_data[2].record.as_mut().unwrap().data[0];
        data.items[0] = Extension::text(DType::String, Some(&attr), item);
        r.policy.as_mut().unwrap().incident_id.as_mut().unwrap().instance = Some(attr.clone());
        let back = parse(&r.emit()).unwrap();
        prop_assert_eq!(back, r);
    }
}
