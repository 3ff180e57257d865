//! Hostile input: any bytes, in either format, give rows or skips, never a panic, and every
//! record read is counted as imported or skipped.

use pharos_feeds::{Format, Options, import};
use proptest::prelude::*;

fn run(format: Format, bytes: &[u8]) {
    let opts = Options {
        report: Some("scan_ntp".into()),
        file_name: "fuzz.csv".into(),
    };
    let mut seen = 0u64;
    if let Ok(s) = import(format, bytes, &opts, |_, _| seen += 1) {
        assert_eq!(s.imported + s.skipped, seen);
    }
}

proptest! {
    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        run(Format::Shadowserver, &bytes);
        run(Format::Intelmq, &bytes);
    }

    #[test]
    fn csv_like_rows_never_panic(rows in proptest::collection::vec("[0-9a-z:.,\" \\-\n]{0,80}", 0..20)) {
        let text = format!("timestamp,ip,port,protocol,tag\n{}", rows.join("\n"));
        run(Format::Shadowserver, text.as_bytes());
    }

    #[test]
    fn json_like_lines_never_panic(lines in proptest::collection::vec("[{}\\[\\]\":,.a-z0-9 ]{0,80}", 0..20)) {
        run(Format::Intelmq, lines.join("\n").as_bytes());
    }
}
