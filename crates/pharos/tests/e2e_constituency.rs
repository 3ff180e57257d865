//! `pharos constituency`: the built binary imports a generated RIPE split set and a CSV file,
//! looks addresses, AS numbers and domains up, keeps manual overrides across re-imports, refuses
//! a bad CSV by file:line:column without touching the registry, and finds its database through
//! `[constituency] db`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use pharos_constituency::{GenSpec, generate_ripe};
use support::bin;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .args(["constituency", "--db", "reg.db"])
        .args(args)
        .output()
        .expect("pharos starts")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// `lookup --json` answers: (query, organisation id or None, first contact mail).
fn lookups(dir: &Path, queries: &[String]) -> Vec<(String, Option<String>, Option<String>)> {
    let mut args = vec!["lookup", "--json"];
    args.extend(queries.iter().map(String::as_str));
    let out = ok(&run(dir, &args));
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let m = &v["match"];
            (
                v["query"].as_str().unwrap().to_string(),
                m["organisation"]["id"].as_str().map(str::to_string),
                m["contacts"][0]["mail"].as_str().map(str::to_string),
            )
        })
        .collect()
}

const CSV: &str = "\
# our constituents, maintained by hand
org,name,country,prefixes,asns,domains,contact_name,contact_mail,contact_webhook,interval,min_severity,language,anonymise
UNI,\"University, Main Campus\",AT,198.51.100.0/24;2001:db8:100::/48,AS64600,uni.example,CERT,cert@uni.example,,immediate,middle,de,yes
UNI,,,,,,,,https://soc.uni.example/hook,daily,,,
HOSP,Hospital,AT,203.0.113.0/25,,hosp.example,,it@hosp.example,,hourly,high,en,no
";

#[test]
fn constituency_imports_ripe_and_csv_and_looks_up_addresses_asns_and_domains() {
    let dir = tempfile::tempdir().unwrap();
    let ripe = dir.path().join("ripe");
    std::fs::create_dir(&ripe).unwrap();
    let sum = generate_ripe(&ripe, &GenSpec::small()).unwrap();
    let out = ok(&run(dir.path(), &["import", "--ripe", "ripe"]));
    assert!(out.starts_with("source ripe: "), "{out}");
    std::fs::write(dir.path().join("c.csv"), CSV).unwrap();
    let out = ok(&run(dir.path(), &["import", "--csv", "c.csv", "--json"]));
    let rep: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(rep["organisations"], 2);
    assert_eq!(rep["contacts"], 3);

    // RIPE: every sample address (IPv4, IPv6, nested) and AS number answers its organisation
    let mut queries: Vec<String> = sum.addrs.iter().map(|(a, _)| a.to_string()).collect();
    queries.extend(sum.asns.iter().map(|(n, _)| format!("AS{n}")));
    let want: Vec<&String> = sum
        .addrs
        .iter()
        .map(|(_, o)| o)
        .chain(sum.asns.iter().map(|(_, o)| o))
        .collect();
    let got = lookups(dir.path(), &queries);
    assert_eq!(got.len(), want.len());
    for ((q, org, _), w) in got.iter().zip(want) {
        assert_eq!(org.as_ref(), Some(w), "{q}");
    }

    // CSV: prefixes (IPv4-mapped too), ASN, domain and parent domain, contacts in order
    let got = lookups(
        dir.path(),
        &[
            "198.51.100.7".into(),
            "::ffff:198.51.100.7".into(),
            "2001:db8:100::1".into(),
            "AS64600".into(),
            "www.cs.uni.example".into(),
            "203.0.113.200".into(),
            "192.0.2.1".into(),
        ],
    );
    let cert = Some("cert@uni.example".to_string());
    assert_eq!(
        got[0],
        ("198.51.100.7".into(), Some("UNI".into()), cert.clone())
    );
    assert_eq!(got[1].1.as_deref(), Some("UNI"));
    assert_eq!(got[2].1.as_deref(), Some("UNI"));
    assert_eq!(got[3].1.as_deref(), Some("UNI"));
    assert_eq!(got[4].1.as_deref(), Some("UNI"));
    assert_eq!(got[5].1, None, "203.0.113.200 is outside HOSP's /25");
    assert_eq!(got[6].1, None);

    // the table output names the organisation, the prefix and the contacts' policies
    let out = ok(&run(dir.path(), &["lookup", "198.51.100.7"]));
    assert!(
        out.contains(
            "UNI (University, Main Campus, AT) [automatic, source csv] by prefix 198.51.100.0/24"
        ),
        "{out}"
    );
    assert!(
        out.contains("cert@uni.example CERT (immediate, min middle, de, anonymised)"),
        "{out}"
    );
    assert!(out.contains("https://soc.uni.example/hook"), "{out}");
    let list = ok(&run(dir.path(), &["list", "--json"]));
    assert!(list.lines().count() > 40, "{list}");
}

#[test]
fn constituency_manual_override_survives_reimport_and_bad_csv_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.csv"), CSV).unwrap();
    ok(&run(dir.path(), &["import", "--csv", "c.csv"]));
    ok(&run(
        dir.path(),
        &[
            "set",
            "--org",
            "SOC-LAB",
            "--name",
            "Lab",
            "--prefix",
            "198.51.100.128/25",
            "--contact-mail",
            "lab@uni.example",
            "--interval",
            "immediate",
            "--min-severity",
            "high",
        ],
    ));
    ok(&run(
        dir.path(),
        &[
            "set",
            "--org",
            "HOSP",
            "--contact-mail",
            "csirt@hosp.example",
        ],
    ));
    // a bad CSV: refused with file:line:column and the fix, nothing changes
    std::fs::write(
        dir.path().join("bad.csv"),
        "org,prefixes\nX,10.0.0.0/8\nY,10.0.0.0/40\n",
    )
    .unwrap();
    let o = run(dir.path(), &["import", "--csv", "bad.csv"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.csv:3:3: column prefixes: \"10.0.0.0/40\" is not a prefix"),
        "{err}"
    );
    // re-import: the manual layer stays and wins
    ok(&run(dir.path(), &["import", "--csv", "c.csv"]));
    let got = lookups(
        dir.path(),
        &[
            "198.51.100.200".into(),
            "198.51.100.1".into(),
            "203.0.113.1".into(),
            "10.0.0.1".into(),
        ],
    );
    assert_eq!(got[0].1.as_deref(), Some("SOC-LAB"));
    assert_eq!(got[0].2.as_deref(), Some("lab@uni.example"));
    assert_eq!(got[1].1.as_deref(), Some("UNI"));
    assert_eq!(got[2].1.as_deref(), Some("HOSP"));
    assert_eq!(
        got[2].2.as_deref(),
        Some("csirt@hosp.example"),
        "the manual contact wins for HOSP"
    );
    assert_eq!(got[3].1, None, "the failed import added nothing");
    ok(&run(dir.path(), &["remove", "SOC-LAB"]));
    let got = lookups(dir.path(), &["198.51.100.200".into()]);
    assert_eq!(got[0].1.as_deref(), Some("UNI"));
    let o = run(dir.path(), &["remove", "SOC-LAB"]);
    assert!(!o.status.success());
    // bad flags and queries are named
    let o = run(
        dir.path(),
        &["set", "--org", "Z", "--contact-mail", "nobody"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected a mail address"));
    let o = run(dir.path(), &["lookup", "what?"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected an address"));
}

#[test]
fn constituency_database_path_comes_from_the_config_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.csv"), CSV).unwrap();
    std::fs::write(
        dir.path().join("pharos.toml"),
        "[constituency]\ndb = \"cfg/registry.db\"\n",
    )
    .unwrap();
    let o = Command::new(bin())
        .current_dir(dir.path())
        .args(["constituency", "import", "--csv", "c.csv"])
        .output()
        .unwrap();
    ok(&o);
    assert!(dir.path().join("cfg/registry.db").exists());
    let o = Command::new(bin())
        .current_dir(dir.path())
        .args(["constituency", "lookup", "hosp.example"])
        .output()
        .unwrap();
    assert!(ok(&o).contains("HOSP (Hospital, AT)"));
    // a lookup before any import says what to do instead of creating an empty registry
    let o = Command::new(bin())
        .current_dir(dir.path())
        .args(["constituency", "--db", "none.db", "lookup", "192.0.2.1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("import one first"));
    assert!(!dir.path().join("none.db").exists());
    std::fs::write(
        dir.path().join("pharos.toml"),
        "[constituency]\ndbb = \"x\"\n",
    )
    .unwrap();
    let o = Command::new(bin())
        .current_dir(dir.path())
        .args(["constituency", "list"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("[constituency]"));
}
