//! Every sample message, encoded as YANG-JSON and as NETCONF XML, validates with yanglint against
//! the I2NSF modules and our extension module. Skips (saying so) when yanglint or the shared YANG
//! directory is absent.

mod common;

use common::{linter, validate_all};
use pharos_model::{Message, json, samples};

#[test]
fn every_sample_validates_with_yanglint_as_json_and_xml() {
    let msgs = samples::samples();
    assert_eq!(msgs.len(), 18);
    validate_all(&msgs);
}

#[test]
fn minimal_messages_validate_with_yanglint() {
    // Every case with only its mandatory leaves and no envelope extras.
    let msgs: Vec<Message> = samples::samples()
        .into_iter()
        .map(|mut m| {
            let c = &mut m.common;
            c.vendor_name = None;
            c.device_model = None;
            c.software_version = None;
            c.message = None;
            c.language = None;
            c.acquisition_method = None;
            c.emission_type = None;
            c.dampening_type = None;
            c.source = None;
            c.raw = None;
            m
        })
        .collect();
    validate_all(&msgs);
}

#[test]
fn yanglint_rejects_what_decode_rejects() {
    // Sanity check of the harness itself: a usage of 101 must fail validation.
    let Some(lint) = linter() else { return };
    let p = lint.dir().join("bad.json");
    std::fs::write(
        &p,
        r#"{"ietf-i2nsf-monitoring-interface:i2nsf-event":{"nsf-name":"fw","i2nsf-system-detection-alarm":{"alarm-category":"cpu-alarm","usage":101}}}"#,
    )
    .expect("write");
    assert!(lint.run(&["-t", "notif"], &p).is_err());
    assert!(json::decode_str(&std::fs::read_to_string(&p).expect("read")).is_err());
}
