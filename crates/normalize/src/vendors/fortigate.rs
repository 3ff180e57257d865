//! FortiGate (FortiOS 3 to 7) and FortiProxy `key=value` logs, space-separated or in the
//! comma-separated form FortiAnalyzer forwards (`date=...,time=...,devid=...`), with `date=`/
//! `time=`/`tz=` or `eventtime=` (epoch s/ms/us/ns) times and an optional bare `<PRI>` in front.
//!
//! Mapping ([`TYPES`], one row per type and subtype with a sample line): traffic -> firewall
//! traffic log; utm/ips -> intrusion (web attack when the signature is an HTTP attack); utm/virus
//! -> virus; utm/webfilter, app-ctrl, dlp, dns, file-filter -> DPI log; utm/waf -> web attack;
//! anomaly (DoS policy) -> DDoS; event/system admin login -> system access log (failures -> user
//! activity); configuration edits -> configuration-change event; performance statistics ->
//! resource utilisation; VPN and user authentication logins -> user activity; everything else
//! (utm/ssl, emailfilter, event/ha, IPsec negotiation, ...) -> a generic log carrying its fields.
//! Every record keeps what its case has no leaf for (`user`, `hostname`/`qname` as domain, `url`,
//! HTTP method, NAT addresses, `logid` as message id, ...) in `envelope/fields` ([`all_fields`],
//! shared with FortiMail, FortiWeb and FortiDDoS). Rule names: the IPS signature, virus name, URL
//! category or policy id; placeholder `fortigate-unknown-rule`.

use pharos_model::ident::{DpiType, OperationType, UserActivityType};
use pharos_model::{
    DpiLog, FirewallTrafficLog, Kind, LogFields, ResourceUtilizationLog, Severity, VirusEvent,
};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request, ip, port};
use crate::fields::{Kv, kv_commas};
use crate::vendors::{Probe, has, probe};

const RULE: &str = "fortigate-unknown-rule";

/// `devid=`/`device_id=` with `logid=`/`log_id=`, or `date=` with `devname=`/`eventtime=`.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    (probe!(p, "logid=") || probe!(p, "log_id=")) && (probe!(p, "type=") || probe!(p, "devid="))
        || probe!(p, "date=") && (probe!(p, "devname=") || probe!(p, "eventtime="))
}

/// FortiGate `level=` (and IPS `severity=`) on Pharos' scale.
pub(crate) fn severity(level: Option<&str>) -> Severity {
    match level.unwrap_or("") {
        "emergency" | "alert" | "critical" => Severity::Critical,
        "error" | "high" => Severity::High,
        "warning" | "medium" => Severity::Middle,
        "notice" | "low" => Severity::Low,
        _ => Severity::Info,
    }
}

/// True when the line is the comma-separated form (`date=2023-01-30,time=...,type=...`) that
/// FortiAnalyzer and FortiMail forward.
pub(crate) fn comma_form(t: &str) -> bool {
    // the separator after the first value decides: `date=2023-01-30,time=...`
    let Some(eq) = t.find('=') else {
        return false;
    };
    let rest = t.get(eq + 1..).unwrap_or("");
    let after = match rest.strip_prefix('"') {
        Some(q) => q.find('"').and_then(|i| q.get(i + 1..)).unwrap_or(""),
        None => rest
            .find([' ', ','])
            .and_then(|i| rest.get(i..))
            .unwrap_or(""),
    };
    after.starts_with(',')
        && (has!(after, "type=") || has!(after, "logid=") || has!(after, "log_id="))
}

/// The line's pairs, in the space- or comma-separated form.
pub(crate) fn pairs(t: &str) -> Kv<'_> {
    // a bare `<PRI>` left in front of the first key (no syslog header after it)
    let t = match t.strip_prefix('<').and_then(|r| r.split_once('>')) {
        Some((pri, rest)) if pri.len() <= 3 && pri.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => t,
    };
    if comma_form(t) {
        kv_commas(t)
    } else {
        Kv::parse(t)
    }
}

/// What a `(type, subtype)` becomes.
type Mapper = fn(&Kv<'_>) -> Kind;

/// One row of [`TYPES`]: type, subtype (`""`: any), mapper, and a sample line with the kind it
/// gives (checked by the tests).
struct Row {
    ty: &'static str,
    sub: &'static str,
    map: Mapper,
    #[cfg_attr(not(test), allow(dead_code))]
    kind: &'static str,
    #[cfg_attr(not(test), allow(dead_code))]
    sample: &'static str,
}

/// FortiOS log types and subtypes to cases (FortiOS Log Message Reference: `type=traffic`
/// forward/local/sniffer/multicast, `type=utm` virus/webfilter/ips/app-ctrl/dns/emailfilter/dlp/
/// waf/ssl/file-filter/anomaly, `type=event` system/user/vpn/ha/...; FortiOS 4 and 5.0 used the
/// UTM subtype as the type). The first row whose type and subtype match wins; a record no row
/// matches becomes a generic log carrying its fields.
static TYPES: &[Row] = &[
    Row {
        ty: "traffic",
        sub: "",
        map: traffic,
        kind: "firewall-traffic-log",
        sample: r#"date=2023-06-01 time=09:00:00 devname="fw1" devid="FG200F0000000001" eventtime=1685610000123456789 tz="+0000" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.0.0.5 srcport=51000 srcintf="lan" dstip=198.51.100.20 dstport=443 dstintf="wan1" sessionid=777 proto=6 action="accept" policyid=1 policyname="lan-out" service="HTTPS" transip=203.0.113.1 transport=61000 user="alice" sentbyte=2000 rcvdbyte=9000"#,
    },
    Row {
        ty: "utm",
        sub: "ips",
        map: intrusion,
        kind: "intrusion",
        sample: r#"date=2023-06-01 time=09:02:00 devname="fw1" devid="FG200F0000000001" logid="0419016384" type="utm" subtype="ips" eventtype="signature" level="alert" vd="root" severity="high" srcip=198.51.100.30 srcport=40100 dstip=10.0.0.30 dstport=445 proto=6 service="SMB" attack="MS.SMB.Server.Trans.Peeking.Data.Information.Disclosure" attackid=43799 action="detected""#,
    },
    Row {
        ty: "ips",
        sub: "",
        map: intrusion,
        kind: "intrusion",
        sample: r#"date=2013-01-10 time=10:00:00 devname=fw4 device_id=FGT60C3G10000001 log_id=0419016384 type=ips subtype=signature pri=alert vd="root" severity="high" src=198.51.100.2 dst=10.0.0.2 src_port=4000 dst_port=445 attack_name="MS.SMB.Server.Buffer.Overflow" attack_id=12345 status=dropped"#,
    },
    Row {
        ty: "attack",
        sub: "",
        map: intrusion,
        kind: "intrusion",
        sample: r#"date=2009-03-01 time=10:00:00 devname=fw3 device_id=FGT50B3G00000001 log_id=0420073000 type=attack subtype=signature pri=alert src=198.51.100.3 dst=10.0.0.3 src_port=4001 dst_port=139 attack_name="NetBIOS.Scan" attack_id=100 status=detected"#,
    },
    Row {
        ty: "utm",
        sub: "virus",
        map: virus,
        kind: "virus",
        sample: r#"date=2019-05-13 time=11:32:51 logid="0211008192" type="utm" subtype="virus" eventtype="infected" level="warning" srcip=10.1.100.11 dstip=172.16.200.55 srcport=44356 dstport=80 action="blocked" filename="eicar.com" virus="EICAR_TEST_FILE" dtype="Virus""#,
    },
    Row {
        ty: "virus",
        sub: "",
        map: virus,
        kind: "virus",
        sample: r#"date=2013-01-10 time=10:05:00 devname=fw4 device_id=FGT60C3G10000001 log_id=0211008192 type=virus subtype=infected pri=warning src=198.51.100.4 dst=10.0.0.4 src_port=80 dst_port=50000 service=http status=blocked file=eicar.com virus="EICAR_TEST_FILE""#,
    },
    Row {
        ty: "utm",
        sub: "webfilter",
        map: webfilter,
        kind: "dpi-log",
        sample: r#"date=2023-06-01 time=09:03:00 devname="fw1" devid="FG200F0000000001" logid="0316013056" type="utm" subtype="webfilter" eventtype="ftgd_blk" level="warning" vd="root" policyid=1 srcip=10.0.0.6 srcport=51001 dstip=198.51.100.22 dstport=443 hostname="casino.example.net" action="blocked" url="https://casino.example.net/" catdesc="Gambling" user="bob""#,
    },
    Row {
        ty: "webfilter",
        sub: "",
        map: webfilter,
        kind: "dpi-log",
        sample: r#"date=2013-01-10 time=10:06:00 devname=fw4 device_id=FGT60C3G10000001 log_id=0316013056 type=webfilter subtype=ftgd_blk pri=warning src=10.0.0.7 dst=198.51.100.5 src_port=50001 dst_port=80 hostname="casino.example.net" url="/" status=blocked catdesc="Gambling""#,
    },
    Row {
        ty: "utm",
        sub: "app-ctrl",
        map: app_ctrl,
        kind: "dpi-log",
        sample: r#"date=2023-06-01 time=09:04:00 devname="fw1" devid="FG200F0000000001" logid="1059028704" type="utm" subtype="app-ctrl" eventtype="signature" level="information" vd="root" appid=15832 srcip=10.0.0.7 dstip=198.51.100.23 srcport=51002 dstport=443 proto=6 action="block" app="Facebook" hostname="www.facebook.com""#,
    },
    Row {
        ty: "app-ctrl",
        sub: "",
        map: app_ctrl,
        kind: "dpi-log",
        sample: r#"date=2013-01-10 time=10:07:00 devname=fw4 device_id=FGT60C3G10000001 log_id=1059028704 type=app-ctrl subtype=app-ctrl-all pri=information src=10.0.0.8 dst=198.51.100.6 src_port=50002 dst_port=443 app="Skype" status=pass"#,
    },
    Row {
        ty: "utm",
        sub: "dlp",
        map: dlp,
        kind: "dpi-log",
        sample: r#"date=2023-06-01 time=09:04:30 devname="fw1" devid="FG200F0000000001" logid="0954024576" type="utm" subtype="dlp" eventtype="dlp" level="warning" vd="root" filteridx=1 filtername="credit-cards" srcip=10.0.0.12 srcport=51012 dstip=198.51.100.25 dstport=443 proto=6 action="block" filename="cards.xlsx""#,
    },
    Row {
        ty: "dlp",
        sub: "",
        map: dlp,
        kind: "dpi-log",
        sample: r#"date=2013-01-10 time=10:08:00 devname=fw4 device_id=FGT60C3G10000001 log_id=0954024576 type=dlp subtype=dlp pri=warning src=10.0.0.9 dst=198.51.100.7 src_port=50003 dst_port=25 filtername="ssn" status=blocked"#,
    },
    Row {
        ty: "utm",
        sub: "file-filter",
        map: file_filter,
        kind: "dpi-log",
        sample: r#"date=2023-06-01 time=09:04:40 devname="fw1" devid="FG200F0000000001" logid="1900064000" type="utm" subtype="file-filter" eventtype="file-filter" level="warning" vd="root" srcip=10.0.0.13 srcport=51013 dstip=198.51.100.26 dstport=80 proto=6 action="block" filtername="no-exe" filename="setup.exe" filetype="exe""#,
    },
    Row {
        ty: "utm",
        sub: "dns",
        map: dns,
        kind: "dpi-log",
        sample: r#"date=2023-06-01 time=09:05:00 devname="fw1" devid="FG200F0000000001" logid="1501054802" type="utm" subtype="dns" eventtype="dns-response" level="notice" vd="root" srcip=10.0.0.8 srcport=53001 dstip=10.0.0.1 dstport=53 proto=17 qname="malware.example.org" qtype="A" action="block" catdesc="Malicious Websites""#,
    },
    Row {
        ty: "dns",
        sub: "",
        map: dns,
        kind: "dpi-log",
        sample: r#"date=2016-01-10 time=10:09:00 devname=fw5 devid=FGT60D0000000001 logid=1501054802 type=dns subtype=dns-response level=notice srcip=10.0.0.10 dstip=10.0.0.1 srcport=53002 dstport=53 qname="tracker.example.com" action=redirect catdesc="Advertising""#,
    },
    Row {
        ty: "utm",
        sub: "waf",
        map: waf,
        kind: "web-attack",
        sample: r#"date=2023-06-01 time=09:05:30 devname="fw1" devid="FG200F0000000001" logid="1200030248" type="utm" subtype="waf" eventtype="waf-signature" level="warning" vd="root" policyid=2 srcip=198.51.100.41 srcport=40200 dstip=10.0.0.41 dstport=80 proto=6 action="blocked" name="web-waf" url="/index.php?q=<script>" httpmethod="GET" hostname="www.example.com" msg="Cross Site Scripting detected""#,
    },
    Row {
        ty: "utm",
        sub: "anomaly",
        map: anomaly,
        kind: "ddos",
        sample: r#"date=2023-06-01 time=09:06:00 devname="fw1" devid="FG200F0000000001" logid="0720018433" type="utm" subtype="anomaly" eventtype="anomaly" level="alert" vd="root" severity="critical" srcip=198.51.100.40 dstip=10.0.0.40 dstport=80 proto=6 service="HTTP" attack="tcp_syn_flood" action="clear_session" attackid=100663396"#,
    },
    Row {
        ty: "anomaly",
        sub: "",
        map: anomaly,
        kind: "ddos",
        sample: r#"date=2016-01-10 time=10:10:00 devname=fw5 devid=FGT60D0000000001 logid=0720018432 type=anomaly subtype=anomaly level=alert srcip=198.51.100.42 dstip=10.0.0.42 dstport=53 proto=17 attack="udp_flood" action=detected"#,
    },
    Row {
        ty: "event",
        sub: "system",
        map: system,
        kind: "system-event",
        sample: r#"date=2016-06-16 time=09:03:03 devname=fw-branch2 devid=FGT60E0000000001 logid=0100044547 type=event subtype=system level=information vd="root" logdesc="Object attribute configured" user="admin" ui="GUI(192.0.2.8)" action=Edit cfgtid=1001 cfgpath="firewall.service.custom" cfgobj="Custom-TCP_8443""#,
    },
    Row {
        ty: "event",
        sub: "vpn",
        map: vpn,
        kind: "user-activity-log",
        sample: r#"date=2023-11-14 time=22:13:20 eventtime=1700000000000000000 tz="-0700" logid="0101039426" type="event" subtype="vpn" level="alert" vd="root" logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web" remip=192.168.0.1 user="bob" group="N/A" reason="sslvpn_login_no_matching_policy""#,
    },
    Row {
        ty: "event",
        sub: "user",
        map: user_auth,
        kind: "user-activity-log",
        sample: r#"date=2023-06-01 time=09:12:00 devname="fw1" devid="FG200F0000000001" logid="0102043008" type="event" subtype="user" level="notice" vd="root" logdesc="Authentication success" srcip=10.0.0.14 dstip=198.51.100.27 policyid=3 user="carol" group="staff" authproto="HTTP(10.0.0.14)" action="authentication" status="success" reason="N/A" msg="User carol succeeded in authentication""#,
    },
];

/// Normalises one FortiGate line.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = pairs(input.text);
    let ty = kv.get("type")?;
    let sub = kv.get("subtype").unwrap_or("");
    let level = kv.any(&["level", "pri"]);
    let by_id = if ty == "event" {
        by_event_id(&kv)
    } else {
        None
    };
    let kind = match by_id {
        Some(m) => m(&kv),
        None => TYPES
            .iter()
            .find(|r| r.ty == ty && (r.sub.is_empty() || r.sub == sub))
            .map_or_else(|| fields_only(&kv), |r| (r.map)(&kv)),
    };
    let sev = match &kind {
        Kind::Intrusion(_) | Kind::WebAttack(_) | Kind::Ddos(_) => {
            severity(kv.any(&["severity", "crlevel"])).max(severity(level))
        }
        _ => severity(level),
    };
    let time = kv
        .get("eventtime")
        .and_then(crate::time::epoch)
        .or_else(|| crate::time::date_time(kv.get("date")?, kv.get("time")?, kv.get("tz")));
    let summary = kv
        .any(&["msg", "logdesc", "attack", "virus", "catdesc"])
        .unwrap_or(ty);
    let all = all_fields(&kv);
    let method = all.http_method.clone();
    let mut fields = build::fields_beyond_case(&kind, all);
    if matches!(kind, Kind::WebAttack(_)) {
        // `req-method` is an identity of eight methods: the vendor's word is kept as well
        fields.http_method = method;
    }
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("Fortinet")
            .model(kv.any(&["devid", "device_id"]))
            .summary(summary)
            .fields(fields),
    )
}

/// A record of a type the table does not map: a generic log carrying its fields.
fn fields_only(_kv: &Kv<'_>) -> Kind {
    build::unmapped("fortigate log type kept as fields")
}

/// Protocol number or name as a lower-case name.
fn proto_name(p: &str) -> String {
    use pharos_model::ident::Protocol as P;
    match build::protocol(p) {
        Some(P::Tcp) => "tcp".into(),
        Some(P::Udp) => "udp".into(),
        Some(P::Icmpv4) => "icmp".into(),
        Some(P::Icmpv6) => "icmpv6".into(),
        Some(P::Sctp) => "sctp".into(),
        _ => build::clip(p).to_ascii_lowercase(),
    }
}

/// Every field of the record (the case then drops what its leaves hold): FortiGate, FortiProxy,
/// FortiMail and FortiWeb key names.
pub(crate) fn all_fields(kv: &Kv<'_>) -> LogFields {
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    let clip = |k: &[&str]| kv.any(k).map(build::clip);
    LogFields {
        src_ip: kv
            .any(&["srcip", "src", "remip", "client_ip", "src_ip"])
            .and_then(ip),
        src_port: kv.any(&["srcport", "src_port", "remport"]).and_then(port),
        dst_ip: kv.any(&["dstip", "dst", "locip", "dst_ip"]).and_then(ip),
        dst_port: kv.any(&["dstport", "dst_port", "locport"]).and_then(port),
        nat_src_ip: kv.get("transip").and_then(ip),
        nat_src_port: kv.get("transport").and_then(port),
        nat_dst_ip: kv.get("tranip").and_then(ip),
        nat_dst_port: kv.get("tranport").and_then(port),
        protocol: kv.get("proto").map(proto_name),
        action: clip(&["action"]),
        rule_name: clip(&["policyname", "policyid", "policy"]),
        user: clip(&[
            "user",
            "srcuser",
            "unauthuser",
            "dstuser",
            "eapuser",
            "xauthuser",
        ]),
        domain: clip(&["hostname", "qname", "http_host", "domain"]),
        url: clip(&["url", "http_url"]),
        http_method: kv
            .any(&["httpmethod", "http_method", "reqtype"])
            .filter(|m| build::req_method(m).is_some())
            .map(|m| build::clip(m).to_ascii_uppercase()),
        http_status: kv
            .any(&["httpcode", "http_retcode", "status_code"])
            .and_then(|v| v.parse().ok()),
        user_agent: clip(&["agent", "useragent", "http_agent"]),
        sent_bytes: num("sentbyte").or_else(|| num("sent")),
        received_bytes: num("rcvdbyte").or_else(|| num("rcvd")),
        session_id: clip(&["sessionid", "session_id"]),
        message_id: clip(&["logid", "log_id", "msg_id"]),
        in_interface: clip(&["srcintf", "src_int"]),
        out_interface: clip(&["dstintf", "dst_int"]),
        application: clip(&["app", "service"]),
        mail_from: clip(&["from", "sender"]),
        mail_to: clip(&["to", "recipient"]),
        file_name: clip(&["filename", "file_name", "file"]),
        // FortiGate logs carry no AS numbers
        src_as: None,
        dst_as: None,
    }
}

/// URL filtering: DPI log (data filtering).
fn webfilter(kv: &Kv<'_>) -> Kind {
    dpi(kv, DpiType::DataFiltering)
}

/// Application control: DPI log (application behaviour control).
fn app_ctrl(kv: &Kv<'_>) -> Kind {
    dpi(kv, DpiType::ApplicationBehaviorControl)
}

/// Data leak prevention: DPI log (data filtering).
fn dlp(kv: &Kv<'_>) -> Kind {
    dpi(kv, DpiType::DataFiltering)
}

/// File filter: DPI log (file blocking).
fn file_filter(kv: &Kv<'_>) -> Kind {
    dpi(kv, DpiType::FileBlocking)
}

/// DNS filter: DPI log (data filtering), the query name kept as the domain.
fn dns(kv: &Kv<'_>) -> Kind {
    dpi(kv, DpiType::DataFiltering)
}

/// Web application firewall: a web attack.
fn waf(kv: &Kv<'_>) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let sig = kv.any(&["eventtype", "msg", "name"]).unwrap_or("");
    Kind::WebAttack(build::web_attack(
        Flow {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
        },
        build::rule_or(kv.any(&["name", "policyid"]), RULE),
        build::web_attack_type(sig).or(Some(pharos_model::ident::WebAttackType::OtherWebAttack)),
        Request {
            method: kv.any(&["httpmethod", "method"]),
            target: kv.get("url"),
            host: kv.get("hostname"),
            response_code: None,
        },
    ))
}

fn src_dst(
    kv: &Kv<'_>,
) -> (
    Option<std::net::IpAddr>,
    Option<u16>,
    Option<std::net::IpAddr>,
    Option<u16>,
) {
    (
        kv.any(&["srcip", "src"]).and_then(ip),
        kv.any(&["srcport", "src_port"]).and_then(port),
        kv.any(&["dstip", "dst"]).and_then(ip),
        kv.any(&["dstport", "dst_port"]).and_then(port),
    )
}

fn traffic(kv: &Kv<'_>) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        protocol: kv.get("proto").and_then(build::protocol).or_else(|| {
            kv.get("service")
                .and_then(|s| s.rsplit('/').next())
                .and_then(build::protocol)
        }),
        action: kv.any(&["action", "status"]).and_then(build::action),
        sent_bytes: num("sentbyte").or_else(|| num("sent")),
        received_bytes: num("rcvdbyte").or_else(|| num("rcvd")),
        sent_packets: num("sentpkt"),
        received_packets: num("rcvdpkt"),
        policy_name: kv.any(&["policyname", "policyid"]).map(build::clip),
        rule_name: kv.any(&["policyid", "rule"]).map(build::clip),
        in_interface: kv.any(&["srcintf", "src_int"]).map(build::clip),
        out_interface: kv.any(&["dstintf", "dst_int"]).map(build::clip),
        application: kv.any(&["app", "service"]).map(build::clip),
        user: kv.any(&["user", "unauthuser"]).map(build::clip),
        session_id: kv.get("sessionid").and_then(|v| v.parse().ok()),
        duration: kv.get("duration").and_then(|v| v.parse().ok()),
    })
}

fn intrusion(kv: &Kv<'_>) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let sig = kv
        .any(&["attack", "attackname", "attack_name", "msg"])
        .unwrap_or("");
    let rule_name = build::rule_or(kv.any(&["attack", "attack_name", "attackid"]), RULE);
    let service = kv.get("service").unwrap_or("");
    build::intrusion_or_web_attack(
        Flow {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
        },
        rule_name,
        build::web_attack_type(sig),
        Request {
            method: kv.any(&["httpmethod", "method"]),
            target: kv.get("url"),
            host: kv.get("hostname"),
            response_code: None,
        },
        Ids {
            protocol: kv
                .get("proto")
                .and_then(build::transport)
                .or_else(|| service.rsplit('/').next().and_then(build::transport)),
            app: build::app_or_port(Some(service), dst_port),
            attack_type: build::intrusion_attack_type(sig),
        },
    )
}

fn virus(kv: &Kv<'_>) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let name = kv.get("virus");
    Kind::Virus(VirusEvent {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        rule_name: build::rule_or(name.or(kv.get("virusid")), RULE),
        virus_name: name.map(build::clip),
        virus_type: name.and_then(build::virus_type),
        host: kv.any(&["hostname", "srcip"]).map(build::clip),
        file_type: kv.get("filetype").map(build::clip),
        file_name: kv.any(&["filename", "file"]).map(build::clip),
        os: kv.get("osname").map(build::clip),
    })
}

fn dpi(kv: &Kv<'_>, ty: DpiType) -> Kind {
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let action = match kv.get("action") {
        Some("passthrough" | "pass") => build::action("pass"),
        Some("blocked" | "block") => build::action("block"),
        Some(a) => build::action(a),
        None => None,
    };
    Kind::DpiLog(DpiLog {
        attack_type: Some(ty),
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        rule_name: build::rule_or(kv.any(&["catdesc", "app", "filtername", "policyid"]), RULE),
        action: action.into_iter().collect(),
    })
}

fn anomaly(kv: &Kv<'_>) -> Kind {
    use pharos_model::ident::DdosType as D;
    /// DoS-policy anomaly names (lower case) to DDoS types; first match wins, scans have none.
    const ANOMALIES: &[(&str, Option<D>)] = &[
        ("syn_flood", Some(D::SynFlood)),
        ("syn-flood", Some(D::SynFlood)),
        ("udp_flood", Some(D::UdpFlood)),
        ("udp-flood", Some(D::UdpFlood)),
        ("icmp_flood", Some(D::Icmpv4Flood)),
        ("icmp-flood", Some(D::Icmpv4Flood)),
        ("tcp_port_scan", None),
        ("portscan", None),
        ("session", Some(D::TcpConFlood)),
    ];
    let (src_ip, src_port, dst_ip, dst_port) = src_dst(kv);
    let l = kv.get("attack").unwrap_or("").to_ascii_lowercase();
    let flow = Flow {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    };
    let rule_name = build::rule_or(kv.any(&["attack", "attackid"]), RULE);
    Kind::Ddos(build::ddos(
        flow,
        rule_name,
        build::first_keyword(&l, ANOMALIES).flatten(),
    ))
}

/// FortiOS event message ids (the last five digits of `logid`, FortiOS Log Message Reference)
/// whose meaning the id fixes; other event ids go by their type and subtype ([`TYPES`]).
const EVENT_IDS: &[(&str, Mapper)] = &[
    ("32001", admin_login),        // LOG_ID_ADMIN_LOGIN_SUCC
    ("32002", admin_login_failed), // LOG_ID_ADMIN_LOGIN_FAIL
    ("32003", admin_logout),       // LOG_ID_ADMIN_LOGOUT
    ("32021", admin_lockout),      // LOG_ID_ADMIN_LOGIN_DISABLE
    ("44544", config_edit),        // path configured
    ("44545", config_edit),        // object configured
    ("44546", config_edit),        // attribute configured
    ("44547", config_edit),        // object attribute configured
    ("40704", perf_stats),         // system performance statistics
    ("39426", vpn),                // SSL VPN login fail
    ("43008", user_auth),          // authentication success
    ("43009", user_auth),          // authentication failed
];

/// The mapper the event's `logid` fixes, if any.
fn by_event_id(kv: &Kv<'_>) -> Option<Mapper> {
    let id = kv.any(&["logid", "log_id"])?;
    let tail = id.get(id.len().checked_sub(5)?..)?;
    EVENT_IDS.iter().find(|(t, _)| *t == tail).map(|(_, m)| *m)
}

/// Who acted, from where: `user`, and the address in `ui=ssh(1.2.3.4)` or `srcip`.
fn admin<'a>(kv: &Kv<'a>) -> (Option<&'a str>, Option<std::net::IpAddr>, &'a str) {
    let ui = kv.get("ui").unwrap_or("");
    let from = build::ip_in_parens(ui).or_else(|| kv.any(&["srcip", "remip"]).and_then(ip));
    (kv.get("user"), from, ui)
}

fn admin_login(kv: &Kv<'_>) -> Kind {
    let (user, from, ui) = admin(kv);
    build::access_log(
        user,
        from,
        None,
        OperationType::Login,
        Some(ui),
        kv.get("status"),
    )
}

fn admin_login_failed(kv: &Kv<'_>) -> Kind {
    let (user, from, _) = admin(kv);
    build::user_activity(
        user,
        kv.get("group"),
        from,
        None,
        UserActivityType::FailedLogin,
        kv.get("reason"),
    )
}

fn admin_lockout(kv: &Kv<'_>) -> Kind {
    let (user, from, _) = admin(kv);
    build::user_activity(
        user,
        kv.get("group"),
        from,
        None,
        UserActivityType::Lock,
        kv.any(&["reason", "msg"]),
    )
}

fn admin_logout(kv: &Kv<'_>) -> Kind {
    let (user, from, ui) = admin(kv);
    build::access_log(
        user,
        from,
        None,
        OperationType::Logout,
        Some(ui),
        kv.get("reason"),
    )
}

fn config_edit(kv: &Kv<'_>) -> Kind {
    let (user, from, _) = admin(kv);
    let policy = match (kv.get("cfgpath"), kv.get("cfgobj")) {
        (Some(p), Some(o)) => Some(format!("{p} {o}")),
        (Some(p), None) => Some(p.to_string()),
        _ => None,
    };
    build::config_change(user, from, None, policy.as_deref())
}

fn perf_stats(kv: &Kv<'_>) -> Kind {
    let pct = |k: &str| {
        kv.get(k)
            .and_then(|v| v.trim_end_matches('%').parse::<u8>().ok())
    };
    Kind::ResourceUtilizationLog(ResourceUtilizationLog {
        cpu_usage: pct("cpu"),
        memory_usage: pct("mem"),
        session_num: kv
            .any(&["totalsession", "setuprate"])
            .and_then(|v| v.parse().ok()),
        ..Default::default()
    })
}

/// System events without an id in [`EVENT_IDS`]: by action and description (FortiOS 4/5,
/// FortiMail, FortiWeb and FortiDDoS word their admin events alike).
pub(crate) fn system(kv: &Kv<'_>) -> Kind {
    if let Some(m) = by_event_id(kv) {
        return m(kv);
    }
    let desc = kv.get("logdesc").unwrap_or("");
    let action = kv.get("action").unwrap_or("");
    let status = kv.get("status").unwrap_or("");
    let lower_desc = desc.to_ascii_lowercase();
    if action == "login" || lower_desc.contains("login") {
        if status == "failed" || lower_desc.contains("fail") {
            return admin_login_failed(kv);
        }
        return admin_login(kv);
    }
    if action == "logout" || lower_desc.contains("logout") {
        return admin_logout(kv);
    }
    if kv.get("cfgpath").is_some()
        || lower_desc.contains("configur")
        || matches!(action, "Edit" | "Add" | "Delete")
    {
        return config_edit(kv);
    }
    if action == "perf-stats" || kv.get("cpu").is_some() && kv.get("mem").is_some() {
        return perf_stats(kv);
    }
    build::unmapped("fortigate system event without a mapping")
}

fn vpn(kv: &Kv<'_>) -> Kind {
    let action = kv.get("action").unwrap_or("");
    let from = kv.any(&["remip", "srcip"]).and_then(ip);
    let ty = match action {
        "ssl-login-fail" | "tunnel-down-fail" => UserActivityType::FailedLogin,
        "tunnel-up" | "ssl-login" | "ssl-new-con" if kv.get("user").is_some() => {
            UserActivityType::SuccessfulLogin
        }
        "tunnel-down" | "ssl-exit" => UserActivityType::Logout,
        _ => return build::unmapped("fortigate vpn event without a mapping"),
    };
    let reason = kv.any(&["reason", "msg"]);
    build::user_activity(
        kv.get("user"),
        kv.get("group"),
        from,
        kv.get("remport").and_then(port),
        ty,
        reason,
    )
}

fn user_auth(kv: &Kv<'_>) -> Kind {
    let action = kv.get("action").unwrap_or("");
    let status = kv.get("status").unwrap_or("");
    let from = kv.any(&["srcip", "remip"]).and_then(ip);
    let ty = match (action, status) {
        (_, "failure" | "failed") => UserActivityType::FailedLogin,
        ("auth-logon" | "login", _) | ("authentication", "success") => {
            UserActivityType::SuccessfulLogin
        }
        ("auth-logout", _) | ("logout", _) => UserActivityType::Logout,
        ("lockout", _) | (_, "locked") => UserActivityType::Lock,
        _ => return build::unmapped("fortigate user event without a mapping"),
    };
    build::user_activity(
        kv.get("user"),
        kv.get("group"),
        from,
        None,
        ty,
        kv.get("reason"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn every_table_row_sample_gives_its_kind() {
        for r in TYPES {
            let n = auto(r.sample, "fortigate");
            assert_eq!(n.message.kind.name(), r.kind, "{} {}", r.ty, r.sub);
            let f = n
                .message
                .common
                .fields
                .as_deref()
                .cloned()
                .unwrap_or_default();
            assert!(f.message_id.is_some(), "{} {}", r.ty, r.sub);
        }
    }

    #[test]
    fn event_ids_fix_the_case() {
        let line = |id: &str| {
            format!(
                r#"date=2023-06-01 time=09:20:00 devname="fw1" devid="FG200F0000000001" logid="01000{id}" type="event" subtype="system" level="alert" vd="root" user="admin" ui="https(192.0.2.44)" srcip=192.0.2.44 dstip=192.0.2.1 msg="event {id}""#
            )
        };
        let kind = |id: &str| auto(&line(id), "fortigate").message.kind;
        assert!(matches!(kind("32001"), Kind::SystemAccessLog(a) if a.user == "admin"));
        assert!(matches!(
            kind("32002"),
            Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(UserActivityType::FailedLogin)
        ));
        assert!(matches!(
            kind("32021"),
            Kind::UserActivityLog(u) if u.additional_info.activity_type == Some(UserActivityType::Lock)
        ));
        assert!(matches!(
            kind("32003"),
            Kind::SystemAccessLog(a) if a.operation_type == Some(OperationType::Logout)
        ));
        assert!(matches!(kind("44547"), Kind::SystemEvent(_)));
    }

    #[test]
    fn comma_form_is_decided_by_the_first_separator() {
        assert!(comma_form("date=2023-01-30,time=16:09:16,type=traffic"));
        assert!(comma_form(r#"date="2023-01-30",time=16:09:16,logid="1""#));
        assert!(!comma_form(
            r#"date=2023-01-30 time=16:09:16 type=event msg="a,type=b""#
        ));
        assert!(!comma_form("no pairs here"));
    }

    #[test]
    fn comma_form_and_unmapped_subtypes_keep_their_fields() {
        let n = auto(
            r#"date=2023-01-30,time=16:09:16,devname="FAZ-fw1",devid="FG200F0000000002",logid="0000000013",type="traffic",subtype="forward",level="notice",vd="root",srcip=10.0.0.10,srcport=51010,dstip=198.51.100.60,dstport=80,proto=6,action="accept",policyid=5,service="HTTP""#,
            "fortigate",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(f.dst_ip, ip("198.51.100.60"));
        assert_eq!(f.rule_name.as_deref(), Some("5"));
        let n = auto(
            r#"date=2023-06-01 time=09:08:00 devname="fw1" devid="FG200F0000000001" logid="0101037127" type="event" subtype="vpn" level="notice" vd="root" action="negotiate" remip=198.51.100.50 locip=203.0.113.1 remport=500 locport=500 status="success""#,
            "fortigate",
        );
        assert!(matches!(n.message.kind, Kind::GenericLog(_)));
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.src_ip, ip("198.51.100.50"));
        assert_eq!(f.dst_port, Some(500));
    }

    #[test]
    fn traffic_deny_is_a_firewall_log() {
        let n = auto(
            r#"date=2019-05-10 time=11:50:48 logid="0000000013" type="traffic" subtype="forward" level="notice" vd="vdom1" eventtime=1557514248379911176 srcip=10.1.100.11 srcport=58012 srcintf="port12" dstip=23.59.154.35 dstport=80 dstintf="port11" sessionid=42 proto=6 action="deny" policyid=3 policyname="block-http" service="HTTP" sentbyte=100 rcvdbyte=0 devid="FG100D3G16800000""#,
            "fortigate",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.1.100.11"));
        assert_eq!(f.dst_port, Some(80));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
        assert_eq!(f.rule_name.as_deref(), Some("3"));
        assert_eq!(
            n.message.common.device_model.as_deref(),
            Some("FG100D3G16800000")
        );
        assert_eq!(n.message.common.event_time.timestamp(), 1557514248);
    }

    #[test]
    fn ips_http_attack_is_a_web_attack() {
        let n = auto(
            r#"date=2019-05-13 time=11:45:03 logid="0419016384" type="utm" subtype="ips" eventtype="signature" level="alert" vd="vdom1" severity="critical" srcip=10.1.100.22 srcport=44362 dstip=172.16.200.55 dstport=80 proto=6 service="HTTP" attack="WordPress.Plugin.SQL.Injection" attackid=44015 action="dropped""#,
            "fortigate",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(w.rule_name, "WordPress.Plugin.SQL.Injection");
        assert_eq!(n.message.common.severity, Severity::Critical);
    }

    #[test]
    fn virus_and_admin_login_failure() {
        let n = auto(
            r#"date=2019-05-13 time=11:32:51 logid="0211008192" type="utm" subtype="virus" eventtype="infected" level="warning" srcip=10.1.100.11 dstip=172.16.200.55 srcport=44356 dstport=80 action="blocked" filename="eicar.com" virus="EICAR_TEST_FILE" dtype="Virus""#,
            "fortigate",
        );
        let Kind::Virus(v) = &n.message.kind else {
            panic!()
        };
        assert_eq!(v.virus_name.as_deref(), Some("EICAR_TEST_FILE"));
        assert_eq!(v.file_name.as_deref(), Some("eicar.com"));
        let n = auto(
            r#"date=2016-06-17 time=02:37:41 devname=fw-branch1 devid=FGT60E0000000001 logid=0100032002 type=event subtype=system level=alert vd="root" logdesc="Admin login failed" sn=0 user="root" ui=ssh(198.51.100.77) action=login status=failed reason="name_invalid""#,
            "fortigate",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "root");
        assert_eq!(u.ip_address, ip("198.51.100.77").unwrap());
    }

    #[test]
    fn ssl_vpn_login_failure_is_user_activity() {
        let n = auto(
            r#"date=2023-11-14 time=22:13:20 eventtime=1700000000000000000 tz="-0700" logid="1234567890" type="event" subtype="vpn" level="alert" vd="root" logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web" remip=192.168.0.1 user="bob" group="N/A" reason="sslvpn_login_no_matching_policy""#,
            "fortigate",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "bob");
        assert_eq!(
            u.additional_info.activity_type,
            Some(UserActivityType::FailedLogin)
        );
    }

    #[test]
    fn configuration_edit_is_a_configuration_change() {
        let n = auto(
            r#"date=2016-06-16 time=09:03:03 devname=fw-branch2 devid=FGT60E0000000001 logid=9999999999 type=event subtype=system level=information vd="root" logdesc="Object attribute configured" user="admin" ui="GUI(192.0.2.8)" action=Edit cfgtid=1001 cfgpath="firewall.service.custom" cfgobj="Custom-TCP_8443""#,
            "fortigate",
        );
        let Kind::SystemEvent(e) = &n.message.kind else {
            panic!()
        };
        assert_eq!(
            e.changes,
            vec!["firewall.service.custom Custom-TCP_8443".to_string()]
        );
    }
}
