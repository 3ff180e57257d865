//! Every message type Pharos emits validates against the RID XSD (which pulls in IODEF v1 for
//! the embedded document), checked with xmllint through the shared catalog.

mod common;

use pharos_rid::*;

fn assert_valid(name: &str, rid: &Rid) {
    let xml = rid.emit();
    match common::xmllint(&xml, "iodef-rid-2.0.xsd") {
        None => {}
        Some(Ok(())) => {}
        Some(Err(e)) => panic!("{name} does not validate:\n{e}\n{xml}"),
    }
}

#[test]
fn trace_request_validates_against_the_rid_schema() {
    assert_valid("TraceRequest", &common::trace_request());
}

#[test]
fn investigation_request_validates_against_the_rid_schema() {
    assert_valid("InvestigationRequest", &common::investigation_request());
}

#[test]
fn acknowledgements_validate_against_the_rid_schema() {
    assert_valid(
        "Acknowledgement Pending",
        &common::acknowledgement(AuthorizationStatus::Pending, None),
    );
    assert_valid(
        "Acknowledgement Denied",
        &common::acknowledgement(
            AuthorizationStatus::Denied,
            Some(Justification::Authentication),
        ),
    );
    assert_valid(
        "Acknowledgement ext",
        &common::acknowledgement(
            AuthorizationStatus::Approved,
            Some(Justification::Ext("rate-limited".into())),
        ),
    );
}

#[test]
fn result_validates_against_the_rid_schema() {
    assert_valid("Result", &common::result());
}

#[test]
fn report_validates_against_the_rid_schema() {
    assert_valid("Report", &common::report());
}

#[test]
fn query_validates_against_the_rid_schema() {
    assert_valid("Query", &common::query());
}

#[test]
fn standalone_iodef_document_validates_against_the_iodef_schema() {
    let doc = common::result().iodef().unwrap().clone();
    let xml = doc.emit();
    if let Some(Err(e)) = common::xmllint(&xml, "iodef-1.0.xsd") {
        panic!("IODEF-Document does not validate:\n{e}\n{xml}");
    }
}

#[test]
fn the_validator_does_check_the_embedded_iodef_document() {
    // A bad purpose deep inside the XMLDocument must make xmllint fail, else the tests above
    // prove nothing about the IODEF part.
    let xml = common::trace_request()
        .emit()
        .replace("purpose=\"traceback\"", "purpose=\"bogus\"");
    if let Some(r) = common::xmllint(&xml, "iodef-rid-2.0.xsd") {
        assert!(r.is_err(), "xmllint accepted an invalid purpose");
    }
}

#[test]
fn the_shared_example_report_parses() {
    let path = common::schemas().join("examples/rid-report-iodef1.xml");
    let Ok(bytes) = std::fs::read(&path) else {
        pharos_model::conformance::skip(&format!("{} is absent", path.display()));
        return;
    };
    let rid = Rid::parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(rid.msg_type(), Some(&MsgType::Report));
    let doc = rid.iodef().unwrap();
    let ev = iodef_to_ddos(doc).unwrap_err();
    // the example has no StartTime/DetectTime: not a DDoS event we can represent
    assert!(matches!(ev, ConvertError::NoStartTime(_)), "{ev}");
    let inc = &doc.incidents[0];
    assert_eq!(inc.incident_id.id, "DDOS-2026-000123");
    assert_eq!(inc.systems(&SystemCategory::Target).len(), 1);
    assert_eq!(
        inc.systems(&SystemCategory::Target)[0].services[0].ports,
        Some(Ports::Port(80))
    );
    rid.check().unwrap();
    // and what we emit from it validates too
    assert_valid("example Report re-emitted", &rid);
}

#[test]
#[ignore = "prints the examples: cargo nextest run -p pharos-rid --run-ignored only print"]
fn print_examples() {
    for (name, r) in common::all() {
        println!("==== {name}\n{}", r.emit());
    }
}
