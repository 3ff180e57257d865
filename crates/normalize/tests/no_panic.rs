//! Property: auto-detection and every named normaliser accept any text without panicking, and
//! always keep the raw record.

use pharos_normalize::{FORMATS, Format, LogInput, normalize};
use proptest::prelude::*;

/// Markers that steer random text into each normaliser's code paths.
const MARKERS: &[&str] = &[
    "CEF:0|",
    "LEEF:2.0|",
    "%ASA-4-106023: ",
    "%ASA-6-302013: Built outbound ",
    "date=2024-01-01 time=00:00:00 logid=1 type=traffic ",
    "spp_name=x type=attack ",
    "1,2024/01/01 00:00:00,1,THREAT,",
    "{\"event_type\":\"alert\",",
    "[action:\"Drop\"; src:\"",
    "RT_FLOW_SESSION_CREATE [junos@1 ",
    "filterlog: 5,,,1,em0,match,block,in,4,",
    "IN=eth0 OUT= SRC=1.2.3.4 DST=",
    "ModSecurity: Access denied with code 403 [id \"",
    "01/01/2024-00:00:00 [**] [1:2:3] ",
    "[**] [1:2:3] x {TCP} ",
    ": X FOUND",
    "sshd[1]: Failed password for ",
    "sudo: a : TTY=x ; COMMAND=",
    "Blocked host 1.2.3.4 by ",
];

proptest! {
    #[test]
    fn any_text_is_normalised_without_panic(marker in 0..MARKERS.len(), tail in ".{0,300}", app in proptest::option::of("[a-z]{1,8}")) {
        let text = format!("{}{tail}", MARKERS[marker]);
        let mut input = LogInput::line(&text);
        input.app_name = app.as_deref();
        let n = normalize(&input, Format::Auto, "nsf");
        prop_assert_eq!(n.message.common.raw.as_deref(), Some(text.as_str()));
        for f in FORMATS {
            let n = normalize(&input, Format::Named(f), "nsf");
            prop_assert!(n.message.common.raw.is_some());
        }
    }
}
