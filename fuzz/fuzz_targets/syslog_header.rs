//! Syslog header parsing (RFC 5424/3164 and relatives) and the RFC 6587 framing codec on arbitrary
//! bytes: must never panic; non-empty borrowed fields lie inside the input; frames respect the size limit.
#![no_main]

use bytes::BytesMut;
use chrono::TimeZone as _;
use libfuzzer_sys::fuzz_target;
use pharos_wire::syslog::{Frame, OversizePolicy, ParseOptions, SyslogCodec, TimeZone, parse};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    // Header: received near New Year or mid-year, in one of the zones.
    let received = if ctl & 1 == 0 {
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .unwrap()
    } else {
        chrono::Utc.with_ymd_and_hms(2028, 2, 29, 12, 0, 0).unwrap()
    };
    let tz = match (ctl >> 1) & 3 {
        0 => TimeZone::Utc,
        1 => TimeZone::parse("+05:30").unwrap(),
        2 => TimeZone::parse("-12:00").unwrap(),
        _ => TimeZone::Local,
    };
    let text = String::from_utf8_lossy(rest);
    let m = parse(&text, &ParseOptions { tz, received });
    let range = text.as_ptr() as usize..=text.as_ptr() as usize + text.len();
    for f in [
        Some(m.msg),
        Some(m.content),
        Some(m.text),
        m.hostname,
        m.app_name,
        m.tag,
        m.structured_data,
    ] {
        if let Some(f) = f.filter(|f| !f.is_empty()) {
            assert!(range.contains(&(f.as_ptr() as usize)) && f.len() <= text.len());
        }
    }
    assert!(m.facility() <= 23 && m.severity() <= 7);
    for el in m.sd_elements() {
        for p in el.params() {
            let _ = p.value();
        }
    }
    assert_eq!(parse(&text, &ParseOptions { tz, received }), m);

    // Framing: the same bytes, in pieces, through a small limit.
    let max = 1 + usize::from(ctl >> 3) * 4;
    let policy = if ctl & 0x80 == 0 {
        OversizePolicy::Truncate
    } else {
        OversizePolicy::Skip
    };
    let mut codec = SyslogCodec::new(max, policy);
    let mut buf = BytesMut::new();
    let mut out = 0usize;
    let step = 1 + usize::from(ctl % 13);
    let mut check = |f: Frame| match f {
        Frame::Message(b) | Frame::Truncated { data: b, .. } => {
            assert!(!b.is_empty() && b.len() <= max);
            out += b.len();
        }
        Frame::Skipped { .. } | Frame::Incomplete { .. } => {}
    };
    for chunk in rest.chunks(step) {
        buf.extend_from_slice(chunk);
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            check(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
        check(f);
    }
    assert!(out <= rest.len());
});
