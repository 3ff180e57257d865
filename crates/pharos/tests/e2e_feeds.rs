//! `pharos feeds import`: the sample Shadowserver reports and IntelMQ events of testdata/feeds
//! become valid I2NSF messages (yanglint), pushed into a running Pharos where the API finds them
//! by kind and address; bad rows are reported with file:line and counted, and the rest imported.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::{ADMIN_TOKEN, Instance, bin, messages, repo_dir};

fn feeds(dir: &str) -> PathBuf {
    repo_dir().join("testdata/feeds").join(dir)
}

fn pharos(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("PHAROS_URL")
        .env_remove("PHAROS_TOKEN")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn shadowserver_reports_become_valid_i2nsf_messages() {
    let files: Vec<PathBuf> = [
        "2026-12-01-scan_ntp-example-asn64500.csv",
        "2026-12-01-scan6_dns-example.csv",
        "2026-12-01-event4_sinkhole_http-example.csv",
        "2026-12-01-blocklist-example.csv",
    ]
    .iter()
    .map(|f| feeds(f))
    .collect();
    let mut args = vec!["feeds", "import", "--format", "shadowserver", "--json"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let o = pharos(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("scan_ntp-example-asn64500.csv: 3 rows imported, 0 skipped"),
        "{err}"
    );
    assert!(err.contains("total: 7 rows imported, 0 skipped"), "{err}");
    let docs: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 7);
    let all = text(&o.stdout);
    for want in [
        "i2nsf-nsf-log-vuln-scan",
        "i2nsf-nsf-detection-botnet",
        "ddos-amplifier",
        "192.0.2.10",
        "2001:db8:10::53",
        "infected-system",
        "andromeda",
        "192.0.2.200",
    ] {
        assert!(all.contains(want), "{want} missing in {all}");
    }
    match support::yanglint_validate(&docs) {
        Ok(true) => {}
        Ok(false) => eprintln!("yanglint skipped"),
        Err(e) => panic!("feed messages do not validate: {e}"),
    }
}

#[test]
fn bad_rows_are_reported_with_file_and_line_and_the_rest_imported() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("2026-12-02-scan_memcached-x.csv");
    let long = "x".repeat(70_000);
    std::fs::write(
        &f,
        format!(
            "timestamp,ip,port,protocol\n\
             2026-12-02 01:00:00,192.0.2.1,11211,udp\n\
             yesterday,192.0.2.2,11211,udp\n\
             2026-12-02 01:00:00,192.0.2.3,11211,udp,{long}\n\
             2026-12-02 01:00:00,192.0.2.4,port,udp\n\
             \u{0}\u{1}\u{ff}garbage\n\
             2026-12-02 01:00:00,192.0.2.5,11211,udp\n"
        ),
    )
    .unwrap();
    let o = pharos(&[
        "feeds",
        "import",
        "--format",
        "shadowserver",
        "--json",
        f.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    let name = f.display().to_string();
    assert!(
        err.contains(&format!("{name}:3: skipped: column timestamp")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:4: skipped: longer than")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:5: skipped: column port")),
        "{err}"
    );
    assert!(err.contains(&format!("{name}:6: skipped")), "{err}");
    assert!(err.contains("2 rows imported, 4 skipped"), "{err}");
    assert_eq!(text(&o.stdout).lines().count(), 2);
    // a file name without a report type: the error lists the types and --report
    let g = dir.path().join("report.csv");
    std::fs::write(&g, "timestamp,ip\n").unwrap();
    let o = pharos(&[
        "feeds",
        "import",
        "--format",
        "shadowserver",
        "--json",
        g.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("--report") && err.contains("scan_ntp"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn intelmq_events_are_pushed_into_a_running_pharos() {
    let inst = Instance::start("");
    let url = inst.url("");
    let file = feeds("intelmq-events.jsonl");
    let args: Vec<String> = [
        "feeds",
        "import",
        "--format",
        "intelmq",
        "--url",
        url.as_str(),
        "--token",
        ADMIN_TOKEN,
        file.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .args(args)
            .env_remove("PHAROS_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), inst.log());
    assert!(
        text(&o.stderr).contains("4 rows imported, 0 skipped (pushed)"),
        "{}",
        text(&o.stderr)
    );
    let botnet = messages(&inst, "kind=botnet&addr=192.0.2.55").await;
    assert_eq!(botnet.len(), 1, "{botnet:?}");
    let doc = botnet[0].to_string();
    assert!(
        doc.contains("emotet") && doc.contains("infected-system"),
        "{doc}"
    );
    let all = messages(&inst, "from=2026-11-30T00:00:00Z&limit=100").await;
    assert_eq!(all.len(), 4, "{all:?}");
    let scan = messages(&inst, "addr=198.51.100.40").await;
    assert_eq!(scan.len(), 1, "{scan:?}");
    assert!(
        scan[0].to_string().contains("ddos-amplifier"),
        "{}",
        scan[0]
    );
    // without a token the daemon refuses, and the error says how to pass one
    let file = feeds("intelmq-events.jsonl");
    let url = inst.url("");
    let o = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .args([
                "feeds",
                "import",
                "--format",
                "intelmq",
                "--url",
                url.as_str(),
                file.to_str().unwrap(),
            ])
            .env_remove("PHAROS_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--token"), "{}", text(&o.stderr));
}
