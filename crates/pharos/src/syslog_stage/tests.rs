//! Stage tests: raw records in (as the listeners deliver them), stored messages and the NSF
//! inventory out, over a real (temporary) message store and inventory file. What the listeners
//! deliver is tested in `pharos-sources`; the whole path through the binary in `tests/e2e_syslog.rs`.

use std::path::Path;

use pharos_sources::syslog::{RelayConfig, Transport};
use pharos_store::inventory::OVERFLOW_NSF;
use pharos_store::writer::WriterConfig;
use pharos_store::{MessageQuery, MessageStore, SqliteStore};

use super::*;

fn rec(transport: Transport, peer: &str, text: &str) -> RawRecord {
    RawRecord {
        transport,
        peer: peer.parse().unwrap(),
        received: chrono::Utc::now(),
        bytes: text.as_bytes().to_vec().into(),
    }
}

fn stage_settings(extra: impl FnOnce(&mut SyslogConfig)) -> StageSettings {
    let mut c = SyslogConfig::default();
    extra(&mut c);
    StageSettings::new(&c, &[]).unwrap()
}

fn bastion() -> NsfConfig {
    NsfConfig {
        name: "bastion".into(),
        addresses: vec![],
        hostnames: vec!["bastion".into()],
        vendor: Some("OpenBSD".into()),
        model: None,
        nsf_type: Some("server".into()),
        parser: "auto".into(),
    }
}

/// Runs the stage over `recs` until [`SyslogStage::finish`] returns; returns the store and how
/// many messages it held right then (before the writer thread is joined).
async fn run_stage(
    dir: &Path,
    recs: Vec<RawRecord>,
    settings: StageSettings,
    inventory: Arc<Inventory>,
) -> (Arc<dyn MessageStore>, u64) {
    let store: Arc<dyn MessageStore> = Arc::new(SqliteStore::open(&dir.join("m.db")).unwrap());
    let (writer, thread) = StoreWriter::spawn(store.clone(), WriterConfig::default());
    let (tx, rx) = mpsc::channel(16);
    let stage = SyslogStage::start(rx, settings, inventory, writer).unwrap();
    for r in recs {
        tx.send(r).await.unwrap();
    }
    // What the listeners' shutdown does: the channel closes.
    drop(tx);
    stage.finish().await;
    let stored = store.count().unwrap();
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap();
    (store, stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stored_with_their_nsf_and_unknown_senders_registered() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Arc::new(Inventory::open(&dir.path().join("nsfs.db"), &[bastion()]).unwrap());
    let udp = rec(
        Transport::Udp,
        "127.0.0.1:40000",
        "<38>Nov 24 14:00:03 bastion sshd[1]: Accepted publickey for deploy from 192.0.2.33 port 40112 ssh2",
    );
    let received = udp.received;
    let recs = vec![
        udp,
        rec(
            Transport::Tcp,
            "127.0.0.1:40001",
            "<13>1 2026-11-24T14:00:00Z other app - - - nothing to see here",
        ),
        // As a listener delivers a frame truncated to max_message_bytes = 512.
        rec(Transport::Tls, "127.0.0.1:40001", &"x".repeat(512)),
    ];
    // batch = 2: the three records take two store submissions.
    let (store, stored) = run_stage(
        dir.path(),
        recs,
        stage_settings(|c| c.batch = 2),
        inv.clone(),
    )
    .await;

    // finish() returned: everything is stored, no waiting.
    assert_eq!(stored, 3);
    let page = store.query(&MessageQuery::default()).unwrap();
    let names: Vec<&str> = page
        .items
        .iter()
        .map(|m| m.message.common.nsf_name.as_str())
        .collect();
    assert!(
        names.contains(&"bastion") && names.contains(&"127.0.0.1"),
        "{names:?}"
    );
    let long = page
        .items
        .iter()
        .find(|m| {
            m.message
                .common
                .raw
                .as_deref()
                .is_some_and(|r| r.starts_with("xxx"))
        })
        .unwrap();
    assert_eq!(long.message.common.raw.as_ref().unwrap().len(), 512);
    assert_eq!(
        long.message.common.source.as_deref(),
        Some("syslog-tls:127.0.0.1")
    );
    let src = page
        .items
        .iter()
        .find(|m| m.message.common.nsf_name == "bastion")
        .unwrap();
    assert_eq!(
        src.message.common.source.as_deref(),
        Some("syslog-udp:127.0.0.1")
    );
    assert_eq!(src.message.common.vendor_name.as_deref(), Some("OpenBSD"));
    assert_eq!(src.message.common.receive_time, received);
    let list = inv.list();
    let b = list.iter().find(|e| e.name == "bastion").unwrap();
    assert_eq!(b.received, 1);
    let auto = list.iter().find(|e| e.name == "127.0.0.1").unwrap();
    assert!(!auto.configured);
    assert_eq!(auto.received, 2);
    assert_eq!(auto.unparsed, 2);
    // Written when the stage finished: a new inventory on the same file sees the counts.
    drop(inv);
    let again = Inventory::open(&dir.path().join("nsfs.db"), &[bastion()]).unwrap();
    let list = again.list();
    assert_eq!(
        list.iter()
            .find(|e| e.name == "127.0.0.1")
            .unwrap()
            .received,
        2
    );
    assert_eq!(
        list.iter().find(|e| e.name == "bastion").unwrap().received,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_batches_are_all_stored_and_senders_past_max_auto_nsfs_share_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Arc::new(Inventory::in_memory(&[]));
    let recs: Vec<_> = (0..1200)
        .map(|i| {
            let peer = if i % 2 == 0 {
                "127.0.0.2:514"
            } else {
                "127.0.0.3:514"
            };
            rec(Transport::Udp, peer, &format!("<13>line {i}"))
        })
        .collect();
    // batch = 100: twelve batches, more than may be in flight at once.
    let (_, stored) = run_stage(
        dir.path(),
        recs,
        stage_settings(|c| {
            c.batch = 100;
            c.max_auto_nsfs = 1;
        }),
        inv.clone(),
    )
    .await;
    assert_eq!(stored, 1200);
    let list = inv.list();
    let first = list.iter().find(|e| e.name == "127.0.0.2").unwrap();
    assert_eq!(first.received, 600);
    let shared = list.iter().find(|e| e.name == OVERFLOW_NSF).unwrap();
    assert_eq!(shared.received, 600);
    assert!(
        list.iter().all(|e| e.name != "127.0.0.3"),
        "only max_auto_nsfs senders are registered"
    );
}

#[test]
fn settings_errors_name_the_key_and_the_fix() {
    let err = |f: fn(&mut SyslogConfig), nsfs: &[NsfConfig]| {
        let mut c = SyslogConfig::default();
        f(&mut c);
        StageSettings::new(&c, nsfs).unwrap_err()
    };
    let e = err(|c| c.timezone = "Europe/Paris".into(), &[]);
    assert!(e.contains("timezone") && e.contains("+01:00"), "{e}");
    let e = err(|c| c.batch = 0, &[]);
    assert!(e.contains("[syslog] batch = 0"), "{e}");
    let e = crate::config::Config::parse("[syslog]\nyear_margin = \"1y\"\n", "p.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("year_margin") && e.contains("\"1y\"") && e.contains("line 2"),
        "{e}"
    );
    let e = err(
        |c| c.year_margin = pharos_model::config::ConfigDuration::from_secs(40 * 86_400),
        &[],
    );
    assert!(e.contains("year_margin") && e.contains("31d"), "{e}");
    let e = err(
        |c| {
            c.relay = vec![RelayConfig {
                addresses: vec!["10.0.0.0/33".into()],
                max_hostnames: 1,
            }]
        },
        &[],
    );
    assert!(
        e.contains("[[syslog.relay]] #1") && e.contains("10.0.0.0/33"),
        "{e}"
    );
    let e = err(
        |c| {
            c.relay = vec![RelayConfig {
                addresses: vec![],
                max_hostnames: 1,
            }]
        },
        &[],
    );
    assert!(e.contains("[[syslog.relay]] #1: addresses is empty"), "{e}");
    let e = err(|c| c.default_parser = "nope".into(), &[]);
    assert!(
        e.contains("default_parser") && e.contains("fortigate"),
        "{e}"
    );
    let bogus = NsfConfig {
        name: "a".into(),
        addresses: vec!["10.0.0.1".into()],
        parser: "bogus".into(),
        ..bastion()
    };
    let e = err(|_| {}, &[bogus]);
    assert!(e.contains("[[nsf]] #1") && e.contains("bogus"), "{e}");
    let e = err(|_| {}, &[bastion(), bastion()]);
    assert!(e.contains("[[nsf]] #2") && e.contains("used twice"), "{e}");
    let nowhere = NsfConfig {
        hostnames: vec![],
        ..bastion()
    };
    let e = err(|_| {}, &[nowhere]);
    assert!(e.contains("[[nsf]] #1") && e.contains("hostnames"), "{e}");
    let s = StageSettings::new(
        &SyslogConfig {
            timezone: "+01:00".into(),
            default_parser: "fortigate".into(),
            ..SyslogConfig::default()
        },
        &[bastion()],
    )
    .unwrap();
    assert_eq!(s.default_parser, "fortigate".parse::<Format>().unwrap());
    assert_eq!(s.batch, SyslogConfig::default().batch);
}

#[test]
fn log_input_drops_the_asa_colon_and_falls_back_to_the_sender() {
    let opts = ParseOptions::new(chrono::Utc::now());
    let line = "<166>Nov 24 14:00:00 fw1 : %ASA-6-302013: Built outbound TCP connection";
    let m = parse(line, &opts);
    let i = log_input(&m, line, Some("192.0.2.1"));
    assert!(i.text.starts_with("%ASA-6-302013"), "{:?}", i.text);
    assert_eq!(i.host, Some("fw1"));
    assert_eq!(i.raw, line);
    assert_eq!((i.facility, i.severity), (Some(20), Some(6)));
    let bare = "no header at all";
    let m = parse(bare, &opts);
    let i = log_input(&m, bare, Some("192.0.2.1"));
    assert_eq!(i.host, Some("192.0.2.1"));
    assert_eq!(i.facility, None);
}

const ASA: &str = "%ASA-4-106023: Deny tcp src outside:192.0.2.9/4431 dst inside:10.0.0.5/22 by access-group \"outside_in\" [0x0, 0x0]";

fn relay_at(addr: &str) -> impl FnOnce(&mut SyslogConfig) {
    let addresses = vec![addr.to_string()];
    move |c: &mut SyslogConfig| {
        c.relay = vec![RelayConfig {
            addresses,
            max_hostnames: 8,
        }]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_lines_belong_to_their_header_hostname_and_keep_the_relay_as_source() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Arc::new(Inventory::in_memory(&[bastion()]));
    let recs = vec![
        rec(
            Transport::Udp,
            "127.0.0.1:40000",
            &format!("<164>Dec  7 08:28:41 asa-1 : {ASA}"),
        ),
        rec(
            Transport::Tcp,
            "127.0.0.1:40001",
            &format!("<164>Dec  7 08:28:42 ASA-1 : {ASA}"),
        ),
        // A configured NSF behind the relay.
        rec(
            Transport::Udp,
            "127.0.0.1:40000",
            "<38>Dec  7 08:28:43 bastion sshd[1]: Accepted publickey for deploy from 192.0.2.33 port 40112 ssh2",
        ),
        // The relay's own line, without a header hostname.
        rec(Transport::Udp, "127.0.0.1:40000", "<13>rsyslogd was HUPed"),
        // Not a relay: its lines stay its own whatever hostname they carry.
        rec(
            Transport::Udp,
            "127.0.0.2:40000",
            &format!("<164>Dec  7 08:28:44 asa-2 : {ASA}"),
        ),
    ];
    let (store, stored) = run_stage(
        dir.path(),
        recs,
        stage_settings(relay_at("127.0.0.1")),
        inv.clone(),
    )
    .await;
    assert_eq!(stored, 5);
    let page = store.query(&MessageQuery::default()).unwrap();
    let by_nsf = |name: &str| -> Vec<(Option<String>, bool)> {
        page.items
            .iter()
            .filter(|m| m.message.common.nsf_name == name)
            .map(|m| {
                let generic = matches!(m.message.kind, pharos_model::Kind::GenericLog(_));
                (m.message.common.source.clone(), generic)
            })
            .collect()
    };
    let asa = by_nsf("asa-1");
    assert_eq!(asa.len(), 2, "{:?}", page.items);
    assert!(asa.iter().all(|(_, generic)| !generic), "{asa:?}");
    let sources: Vec<_> = asa.iter().map(|(s, _)| s.as_deref().unwrap()).collect();
    assert!(sources.contains(&"syslog-udp:127.0.0.1") && sources.contains(&"syslog-tcp:127.0.0.1"));
    assert_eq!(by_nsf("bastion").len(), 1);
    assert_eq!(by_nsf("127.0.0.1").len(), 1);
    assert_eq!(by_nsf("127.0.0.2").len(), 1);
    assert!(by_nsf("asa-2").is_empty());
    let list = inv.list();
    let e = list.iter().find(|e| e.name == "asa-1").unwrap();
    assert!(!e.configured);
    assert_eq!((e.received, e.parsed), (2, 2));
    assert_eq!(e.last_address, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(e.relay, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(e.detected_format.as_deref(), Some("cisco-asa"));
}

/// A tracing writer into a shared buffer, to read what the stage logged.
#[derive(Clone, Default)]
struct LogBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn registration_logs_and_records_the_format_the_first_line_was_recognised_as() {
    // sshd detects this line first, but the configured default parser (sudo) is what reads it.
    let line = "<86>Dec  7 08:28:41 vm sshd[5]: pam_unix(sudo:auth): authentication failure; logname= uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice";
    let inv = Arc::new(Inventory::in_memory(&[]));
    let mut stage = Normalizer::new(
        stage_settings(|c| c.default_parser = "sudo".into()),
        inv.clone(),
    );
    let buf = LogBuf::default();
    let w = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .finish();
    let msgs = tracing::subscriber::with_default(subscriber, || {
        stage.process(&[rec(Transport::Udp, "192.0.2.44:514", line)])
    });
    let logged = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("format=\"sudo\"") || logged.contains("format=sudo"),
        "{logged}"
    );
    let e = &inv.list()[0];
    assert_eq!(e.name, "192.0.2.44");
    assert_eq!(e.detected_format.as_deref(), Some("sudo"));
    assert_eq!(msgs[0].common.nsf_name, "192.0.2.44");
}

#[test]
fn a_logger_tag_without_pid_stays_in_the_text_and_sshd_still_recognises_the_line() {
    // util-linux `logger --rfc3164 -t sshd` sends no pid.
    let line = "<36>Dec  7 08:28:41 vm sshd: Failed password for root from 192.0.2.9 port 22 ssh2";
    let inv = Arc::new(Inventory::in_memory(&[]));
    let mut stage = Normalizer::new(stage_settings(|_| {}), inv.clone());
    let msgs = stage.process(&[rec(Transport::Udp, "192.0.2.45:514", line)]);
    let m = &msgs[0];
    assert!(
        matches!(m.kind, pharos_model::Kind::UserActivityLog(_)),
        "{:?}",
        m.kind
    );
    assert!(
        m.common
            .message
            .as_deref()
            .is_some_and(|t| t.starts_with("sshd: Failed password")),
        "{:?}",
        m.common.message
    );
    // An unknown program: a generic log with the tag in its text and no app name.
    let line = "<36>Dec  7 08:28:41 vm myapp: something happened";
    let msgs = stage.process(&[rec(Transport::Udp, "192.0.2.45:514", line)]);
    let pharos_model::Kind::GenericLog(g) = &msgs[0].kind else {
        panic!("{:?}", msgs[0].kind)
    };
    assert_eq!(g.app_name, None);
    assert_eq!(
        msgs[0].common.message.as_deref(),
        Some("myapp: something happened")
    );
}

#[test]
fn rfc3164_year_follows_year_margin() {
    let inv = Arc::new(Inventory::in_memory(&[]));
    let received = chrono::DateTime::parse_from_rfc3339("2026-12-07T09:00:00Z")
        .unwrap()
        .to_utc();
    let at = |line: &str| RawRecord {
        received,
        ..rec(Transport::Udp, "192.0.2.46:514", line)
    };
    let year = |settings: StageSettings, line: &str| {
        let mut stage = Normalizer::new(settings, inv.clone());
        let t = stage.process(&[at(line)])[0].common.event_time;
        chrono::Datelike::year(&t)
    };
    // Two days ahead: beyond the default margin of a day, so written a year ago ...
    let line = "<13>Dec  9 09:00:00 h t: x";
    assert_eq!(year(stage_settings(|_| {}), line), 2025);
    // ... within a configured margin of a week.
    assert_eq!(
        year(
            stage_settings(
                |c| c.year_margin = pharos_model::config::ConfigDuration::from_secs(7 * 86_400)
            ),
            line
        ),
        2026
    );
    assert_eq!(
        year(stage_settings(|_| {}), "<13>Jun  8 10:00:00 h t: x"),
        2026
    );
}
