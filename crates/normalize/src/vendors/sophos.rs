//! Sophos Firewall (XG / SFOS) syslog in key=value form: SFOS 17/18 (`device="SFW" date=...
//! time=... timezone="..." device_name="..." log_id=... log_type="Firewall" log_component=
//! "Firewall Rule" log_subtype="Allowed" status="Allow" ... src_ip= dst_ip= src_port= dst_port=
//! user_name= ...`) and SFOS 19+ (`device_name="SFW" timestamp="2023-...+0000" ... log_type=
//! "Firewall" severity="Information" fw_rule_name= ...`), as the Sophos Firewall log file
//! reference documents them.
//!
//! Mapping: the log type (and, for `Event`, the component / sub-type) through [`TYPES`]:
//! Firewall -> firewall traffic log; IDP, ATP -> intrusion (web attack when the signature names
//! an HTTP attack); Content Filtering -> firewall traffic log with its URL, domain and method in
//! `envelope/fields`; Anti-Virus, Sandbox -> virus; WAF -> web attack; Event authentication ->
//! user activity (failed when `status` says so); Event admin -> system access log (logins) or
//! configuration change; anything else -> firewall traffic log when it has addresses, else a
//! generic log carrying its fields. Rule names: `fw_rule_name`, `fw_rule_id`, the signature or
//! threat name; placeholder `sophos-unknown-rule`.

use pharos_model::Severity;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

/// `log_type=` with `log_component=` (or the `device="SFW"` tag).
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "log_type=") && (probe!(p, "log_component=") || probe!(p, "device=\"SFW\""))
}

/// (log type, component or sub-type word or "", class, sample): the first row whose type equals
/// `log_type` and whose word is in `log_component` or `log_subtype` wins.
const TYPES: &[(&str, &str, FwClass, &str)] = &[
    (
        "Firewall",
        "",
        FwClass::Traffic,
        r#"device="SFW" date=2024-02-10 time=09:15:02 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=010101600001 log_type="Firewall" log_component="Firewall Rule" log_subtype="Allowed" status="Allow" priority=Information duration=30 fw_rule_id=5 policy_type=1 user_name="jsmith" application="" in_interface="Port1" out_interface="Port2" src_mac=00:11:22:33:44:55 src_ip=10.10.1.20 dst_ip=93.184.216.34 protocol="TCP" src_port=51544 dst_port=443 sent_pkts=12 recv_pkts=10 sent_bytes=1840 recv_bytes=9920 tran_src_ip=198.51.100.2 tran_src_port=40112 tran_dst_ip= tran_dst_port=0 srczone="LAN" dstzone="WAN" con_id=3921001"#,
    ),
    (
        "Firewall",
        "",
        FwClass::Traffic,
        r#"device_name="SFW" timestamp="2024-02-10T09:16:00+0000" device_model="XGS2100" device_serial_id=X21000000001 log_id=010101600002 log_type="Firewall" log_component="Firewall Rule" log_subtype="Denied" log_version=1 severity="Information" fw_rule_id=7 fw_rule_name="Block SMB" fw_rule_section="Local rule" src_ip=203.0.113.44 dst_ip=198.51.100.10 protocol="TCP" src_port=44321 dst_port=445 src_zone="WAN" dst_zone="LAN" con_id=3921002"#,
    ),
    (
        "IDP",
        "",
        FwClass::Ips,
        r#"device="SFW" date=2024-02-10 time=09:17:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=020603401001 log_type="IDP" log_component="Signatures" log_subtype="Drop" priority=Warning idp_policy_id=2 fw_rule_id=5 user_name="" signature_id=31200 signature_msg="SERVER-WEBAPP SQL injection attempt" classification="Web Application Attack" rule_priority=1 src_ip=203.0.113.50 src_country_code=R1 dst_ip=10.10.1.80 dst_country_code=R1 protocol="TCP" src_port=41000 dst_port=80 platform="Windows" category="Server" target="Server""#,
    ),
    (
        "IDP",
        "",
        FwClass::Ips,
        r#"device="SFW" date=2024-02-10 time=09:17:30 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=020603401002 log_type="IDP" log_component="Anomaly" log_subtype="Detect" priority=Warning signature_id=9001 signature_msg="SCAN nmap TCP port scan" classification="Attempted Recon" src_ip=203.0.113.51 dst_ip=10.10.1.81 protocol="TCP" src_port=50000 dst_port=22"#,
    ),
    (
        "ATP",
        "",
        FwClass::Ips,
        r#"device="SFW" date=2024-02-10 time=09:18:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=086320518009 log_type="ATP" log_component="Firewall" log_subtype="Drop" priority=Warning user_name="jsmith" protocol="TCP" src_port=52000 dst_port=80 sourceip=10.10.1.30 destinationip=203.0.113.66 url=203.0.113.66 threatname="Mal/Beacon-Z" eventid=0A1B2C3D-1111-2222-3333-444455556666 eventtype="Standard" login_user="" process_user="""#,
    ),
    (
        "Content Filtering",
        "",
        FwClass::Traffic,
        r#"device="SFW" date=2024-02-10 time=09:19:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=050901616001 log_type="Content Filtering" log_component="HTTP" log_subtype="Allowed" status="" priority=Information fw_rule_id=5 user_name="jsmith" user_gp="Staff" iap=1 category="Search Engines" category_type="Acceptable" url="https://www.example.com/search?q=x" contenttype="text/html" override_token="" httpresponsecode="200" src_ip=10.10.1.20 dst_ip=93.184.216.34 protocol="TCP" src_port=51600 dst_port=443 sent_bytes=820 recv_bytes=22000 domain=www.example.com http_method="GET" user_agent="Mozilla/5.0""#,
    ),
    (
        "Content Filtering",
        "",
        FwClass::Traffic,
        r#"device="SFW" date=2024-02-10 time=09:19:30 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=050902616002 log_type="Content Filtering" log_component="HTTP" log_subtype="Denied" status="" priority=Information fw_rule_id=5 user_name="jsmith" category="Gambling" url="http://casino.example.net/" src_ip=10.10.1.21 dst_ip=203.0.113.77 protocol="TCP" src_port=51601 dst_port=80 domain=casino.example.net"#,
    ),
    (
        "Anti-Virus",
        "",
        FwClass::Virus,
        r#"device="SFW" date=2024-02-10 time=09:20:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=030906208001 log_type="Anti-Virus" log_component="HTTP" log_subtype="Virus" status="" priority=Critical user_name="jsmith" virus="EICAR-AV-Test" url="http://malware.example.org/eicar.com" domain=malware.example.org src_ip=10.10.1.22 dst_ip=203.0.113.88 protocol="TCP" src_port=51700 dst_port=80 filename="eicar.com""#,
    ),
    (
        "Sandbox",
        "",
        FwClass::Virus,
        r#"device="SFW" date=2024-02-10 time=09:20:30 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=138601618001 log_type="Sandbox" log_component="Web" log_subtype="Denied" priority=Information user_name="jsmith" src_ip=10.10.1.23 dst_ip=203.0.113.89 filename="invoice.exe" reason="Malicious" sha1sum=0123456789abcdef0123456789abcdef01234567"#,
    ),
    (
        "WAF",
        "",
        FwClass::WebAttack,
        r#"device="SFW" date=2024-02-10 time=09:21:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=075000617001 log_type="WAF" log_component="Web Application Firewall" priority=Notice user_name="-" server=shop.example.com sourceip=203.0.113.99 localip=10.10.2.10 ws_protocol="HTTP/1.1" url=/cart.php querystring=id=1' httpmethod=GET reason="SQL injection attack" extra="" contenttype="text/html" useragent="sqlmap/1.7" host=203.0.113.99 responsetime=120 bytessent=512 bytesrcvd=230 fw_rule_id=9"#,
    ),
    (
        "Anti-Spam",
        "",
        FwClass::Event,
        r#"device="SFW" date=2024-02-10 time=09:21:30 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=041101618035 log_type="Anti-Spam" log_component="SMTP" log_subtype="Spam" status="" priority=Information user_name="" av_policy_name="default-smtp-av" from_email_address="promo@spam.example.net" to_email_address="jsmith@example.com" email_subject="You won" mailsize=2048 spamaction="Reject" reason="Inbound SMTP Spam" src_ip=203.0.113.101 dst_ip=10.10.1.25 protocol="TCP" src_port=40500 dst_port=25"#,
    ),
    (
        "Event",
        "Authentication",
        FwClass::UserLogin,
        r#"device="SFW" date=2024-02-10 time=09:22:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=062910617701 log_type="Event" log_component="Firewall Authentication" log_subtype="Authentication" status="Successful" priority=Information user_name="jsmith" usergroupname="Staff" auth_client="Web Client" auth_mechanism="Local" reason="" src_ip=10.10.1.20 message="User jsmith of group Staff logged in successfully to Firewall through Local authentication mechanism from 10.10.1.20""#,
    ),
    (
        "Event",
        "Authentication",
        FwClass::LoginFailed,
        r#"device="SFW" date=2024-02-10 time=09:22:30 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=063110617711 log_type="Event" log_component="SSL VPN Authentication" log_subtype="Authentication" status="Failed" priority=Notice user_name="mallory" usergroupname="" auth_client="N/A" auth_mechanism="Local" reason="Wrong credentials" src_ip=203.0.113.120 message="User mallory failed to login to SSLVPN through Local authentication mechanism because of wrong credentials""#,
    ),
    (
        "Event",
        "Admin",
        FwClass::AdminLogin,
        r#"device="SFW" date=2024-02-10 time=09:23:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=062909617502 log_type="Event" log_component="GUI" log_subtype="Admin" status="Successful" priority=Information user_name="admin" src_ip=10.10.1.5 message="User admin logged in from 10.10.1.5 using https""#,
    ),
    (
        "Event",
        "Admin",
        FwClass::Config,
        r#"device="SFW" date=2024-02-10 time=09:23:30 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=062009617504 log_type="Event" log_component="GUI" log_subtype="Admin" status="Successful" priority=Information user_name="admin" src_ip=10.10.1.5 message="Firewall Rule 'Allow Web' was modified by 'admin' from '10.10.1.5' using 'GUI'""#,
    ),
    (
        "Event",
        "",
        FwClass::Event,
        r#"device="SFW" date=2024-02-10 time=09:24:00 timezone="UTC" device_name="XG230" device_id=S2200000000001 log_id=063411660001 log_type="Event" log_component="System" log_subtype="System" priority=Notice status="" message="Gateway PortB_GW is Up""#,
    ),
];

/// Words of `message` that refine an admin or authentication event (lower case).
const ADMIN_WORDS: &[(&str, FwClass)] = &[
    ("logged out", FwClass::Logout),
    ("logout", FwClass::Logout),
    ("failed", FwClass::LoginFailed),
    ("logged in", FwClass::AdminLogin),
    ("login", FwClass::AdminLogin),
];

/// `priority` / `severity` words on Pharos' scale.
fn severity(s: Option<&str>) -> Severity {
    let mut buf = [0u8; 16];
    let s = s.unwrap_or("");
    let n = s.len().min(buf.len());
    for (o, b) in buf.iter_mut().zip(s.bytes().take(n)) {
        *o = b.to_ascii_lowercase();
    }
    match buf.get(..n) {
        Some(b"emergency" | b"alert" | b"critical") => Severity::Critical,
        Some(b"error" | b"major") => Severity::High,
        Some(b"warning" | b"moderate") => Severity::Middle,
        Some(b"notice" | b"minor") => Severity::Low,
        _ => Severity::Info,
    }
}

/// The class of a record from its type, component, sub-type, status and message.
fn class_of(kv: &Kv<'_>) -> FwClass {
    let ty = kv.get("log_type").unwrap_or("");
    let comp = kv.get("log_component").unwrap_or("");
    let sub = kv.get("log_subtype").unwrap_or("");
    let row = TYPES.iter().find(|(t, w, _, _)| {
        t.eq_ignore_ascii_case(ty)
            && (w.is_empty() || build::contains_ci(comp, w) || build::contains_ci(sub, w))
    });
    let status = kv.get("status").unwrap_or("");
    let failed = ["fail", "denied", "invalid"]
        .iter()
        .any(|w| build::contains_ci(status, w));
    match row.map(|r| r.2) {
        Some(FwClass::UserLogin) if failed => FwClass::LoginFailed,
        Some(FwClass::UserLogin) => FwClass::UserLogin,
        Some(FwClass::AdminLogin | FwClass::Config) => {
            let msg = kv.get("message").unwrap_or("").to_ascii_lowercase();
            match build::first_keyword(&msg, ADMIN_WORDS) {
                Some(c) => c,
                None if failed => FwClass::LoginFailed,
                None => FwClass::Config,
            }
        }
        Some(c) => c,
        None if kv.any(&["src_ip", "dst_ip"]).is_some() => FwClass::Traffic,
        None => FwClass::Event,
    }
}

/// Normalises one Sophos Firewall line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = Kv::parse(input.text);
    kv.get("log_type")?;
    let class = class_of(&kv);
    let flow = Flow {
        src_ip: kv.any(&["src_ip", "sourceip", "source_ip"]).and_then(ip),
        src_port: kv.get("src_port").and_then(port),
        dst_ip: kv
            .any(&["dst_ip", "destinationip", "localip", "dest_ip"])
            .and_then(ip),
        dst_port: kv.get("dst_port").and_then(port),
    };
    let signature = match class {
        FwClass::Ips => kv.any(&["signature_msg", "threatname"]),
        FwClass::Virus => kv.any(&["virus", "malware", "reason"]),
        FwClass::WebAttack => kv.any(&["reason", "extra"]),
        _ => None,
    };
    let status = kv.any(&["log_subtype", "status"]);
    let parts = FwParts {
        flow,
        nat_src_ip: kv.get("tran_src_ip").and_then(ip),
        nat_src_port: kv.get("tran_src_port").and_then(port).filter(|p| *p != 0),
        nat_dst_ip: kv.get("tran_dst_ip").and_then(ip),
        nat_dst_port: kv.get("tran_dst_port").and_then(port).filter(|p| *p != 0),
        proto: kv.get("protocol"),
        app: kv.any(&["application", "app_name"]),
        action: match class {
            FwClass::Traffic => kv.get("status").or(kv.get("log_subtype")),
            _ => status,
        },
        rule: kv.any(&["fw_rule_name", "fw_rule_id"]),
        user: kv.any(&["user_name", "user", "login_user"]),
        url: kv.get("url"),
        domain: kv.any(&["domain", "server", "dst_host"]),
        method: kv.any(&["http_method", "httpmethod", "method"]),
        status: kv
            .any(&["httpresponsecode", "httpstatus", "http_status"])
            .and_then(|s| s.parse().ok()),
        user_agent: kv.any(&["user_agent", "useragent"]),
        sent: kv
            .any(&["sent_bytes", "bytessent"])
            .and_then(|v| v.parse().ok()),
        received: kv
            .any(&["recv_bytes", "bytesrcvd"])
            .and_then(|v| v.parse().ok()),
        session: kv.any(&["con_id", "connid"]),
        message_id: kv.get("log_id"),
        in_if: kv.any(&["in_interface", "srczone", "src_zone"]),
        out_if: kv.any(&["out_interface", "dstzone", "dst_zone"]),
        signature,
        file: kv.any(&["filename", "file_name"]),
        msg: kv.any(&["message", "reason"]),
    };
    let d = build::fw_draft(
        class,
        &parts,
        "sophos-unknown-rule",
        severity(kv.any(&["priority", "severity"])),
    );
    let mut d = d;
    let (from, to) = (kv.get("from_email_address"), kv.get("to_email_address"));
    if from.is_some() || to.is_some() {
        let mut f = d.fields.take().map(|b| *b).unwrap_or_default();
        f.mail_from = from.map(build::clip);
        f.mail_to = to.map(build::clip);
        d = d.fields(f);
    }
    let time = match (kv.get("date"), kv.get("time")) {
        (Some(d), Some(t)) => crate::time::date_time(d, t, None),
        _ => kv.get("timestamp").and_then(crate::time::iso),
    };
    Some(
        d.time(time)
            .vendor("Sophos")
            .model(kv.any(&["device_model", "device_name"]))
            .summary(
                kv.get("message")
                    .or(signature)
                    .or(kv.get("log_component"))
                    .unwrap_or(input.text),
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;
    use pharos_model::ident::UserActivityType;

    fn class_of_kind(k: &Kind) -> FwClass {
        match k {
            Kind::FirewallTrafficLog(_) => FwClass::Traffic,
            Kind::Intrusion(_) => FwClass::Ips,
            Kind::WebAttack(_) => FwClass::WebAttack,
            Kind::Virus(_) => FwClass::Virus,
            Kind::SystemAccessLog(_) => FwClass::AdminLogin,
            Kind::UserActivityLog(u) => match u.additional_info.activity_type {
                Some(UserActivityType::FailedLogin) => FwClass::LoginFailed,
                Some(UserActivityType::Logout) => FwClass::Logout,
                _ => FwClass::UserLogin,
            },
            Kind::SystemEvent(_) => FwClass::Config,
            _ => FwClass::Event,
        }
    }

    #[test]
    fn every_type_row_sample_normalises_to_its_class() {
        for (ty, _, class, sample) in TYPES {
            let n = auto(sample, "sophos");
            let want = match (*ty, *class) {
                // the SQL injection signature makes the IDP alert a web attack
                ("IDP", _) if sample.contains("SQL injection") => FwClass::WebAttack,
                (_, c) => c,
            };
            assert_eq!(class_of_kind(&n.message.kind), want, "{sample}");
            let f = n.message.common.fields.as_deref();
            assert!(
                f.and_then(|f| f.message_id.as_deref()).is_some(),
                "{sample}"
            );
        }
    }

    #[test]
    fn firewall_allow_keeps_flow_nat_and_user() {
        let n = auto(TYPES[0].3, "sophos");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.10.1.20"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.user.as_deref(), Some("jsmith"));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Pass));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.nat_src_ip, ip("198.51.100.2"));
    }

    #[test]
    fn anti_spam_keeps_the_mail_addresses() {
        let row = TYPES.iter().find(|r| r.0 == "Anti-Spam").unwrap();
        let n = auto(row.3, "sophos");
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.mail_from.as_deref(), Some("promo@spam.example.net"));
        assert_eq!(x.mail_to.as_deref(), Some("jsmith@example.com"));
        assert_eq!(x.src_ip, ip("203.0.113.101"));
    }

    #[test]
    fn web_filter_keeps_url_domain_and_method() {
        let n = auto(TYPES[5].3, "sophos");
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.url.as_deref(), Some("https://www.example.com/search?q=x"));
        assert_eq!(x.domain.as_deref(), Some("www.example.com"));
        assert_eq!(x.http_method.as_deref(), Some("GET"));
    }
}
