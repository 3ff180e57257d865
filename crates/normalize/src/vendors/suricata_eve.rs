//! Suricata EVE JSON (one object per line).
//!
//! Mapping by `event_type`: alert -> intrusion (web attack when the signature or category is an
//! HTTP attack, with the `http` object's method, URL, host and status); anomaly -> intrusion;
//! drop -> firewall traffic log (drop); flow/netflow -> firewall traffic log (pass, byte and packet
//! counts); fileinfo -> DPI log (file-blocking class, action pass); stats -> resource utilisation
//! (active flows as sessions). Other event types are recognised but stored as generic logs. Rule
//! names: the signature text (alerts), the anomaly event name; placeholder
//! `suricata-unknown-rule`.

use std::borrow::Cow;

use pharos_model::ident::{DpiType, IngressAction, SystemStatus};
use pharos_model::{
    DpiLog, FirewallTrafficLog, GenericLog, Kind, LogFields, ResourceUtilizationLog, Severity,
};
use serde::Deserialize;

use crate::LogInput;
use crate::build::{self, Draft, Flow, Ids, Request};
use crate::vendors::{Probe, probe};

const RULE: &str = "suricata-unknown-rule";

/// A JSON object with an `"event_type"` member.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "\"event_type\"") && probe!(p, "{")
}

#[derive(Deserialize)]
struct Eve<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    src_ip: Option<Cow<'a, str>>,
    src_port: Option<u16>,
    #[serde(borrow)]
    dest_ip: Option<Cow<'a, str>>,
    dest_port: Option<u16>,
    #[serde(borrow)]
    proto: Option<Cow<'a, str>>,
    #[serde(borrow)]
    app_proto: Option<Cow<'a, str>>,
    #[serde(borrow)]
    in_iface: Option<Cow<'a, str>>,
    flow_id: Option<u64>,
    #[serde(borrow)]
    alert: Option<Alert<'a>>,
    #[serde(borrow)]
    http: Option<Http<'a>>,
    #[serde(borrow)]
    anomaly: Option<Anomaly<'a>>,
    flow: Option<FlowStats>,
    #[serde(borrow)]
    fileinfo: Option<FileInfo<'a>>,
    stats: Option<serde_json::Value>,
    #[serde(borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dns: Option<Dns<'a>>,
    #[serde(borrow)]
    tls: Option<Tls<'a>>,
    #[serde(borrow)]
    smtp: Option<Smtp<'a>>,
    #[serde(borrow)]
    email: Option<Email<'a>>,
    #[serde(borrow)]
    krb5: Option<Krb5<'a>>,
    #[serde(borrow)]
    dhcp: Option<Dhcp<'a>>,
    #[serde(borrow)]
    smb: Option<Smb<'a>>,
    #[serde(borrow)]
    ftp: Option<Ftp<'a>>,
    #[serde(borrow)]
    quic: Option<Quic<'a>>,
}

/// `dns`: v1/v2 (`rrname`) and v3 (`queries[].rrname`).
#[derive(Deserialize)]
struct Dns<'a> {
    #[serde(borrow)]
    rrname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    queries: Option<Vec<DnsQuery<'a>>>,
    #[serde(borrow)]
    query: Option<Vec<DnsQuery<'a>>>,
}

#[derive(Deserialize)]
struct DnsQuery<'a> {
    #[serde(borrow)]
    rrname: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Tls<'a> {
    #[serde(borrow)]
    sni: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Smtp<'a> {
    #[serde(borrow)]
    helo: Option<Cow<'a, str>>,
    #[serde(borrow)]
    mail_from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rcpt_to: Option<Vec<Cow<'a, str>>>,
}

#[derive(Deserialize)]
struct Email<'a> {
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Vec<Cow<'a, str>>>,
}

#[derive(Deserialize)]
struct Krb5<'a> {
    #[serde(borrow)]
    cname: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Dhcp<'a> {
    #[serde(borrow)]
    hostname: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Smb<'a> {
    #[serde(borrow)]
    filename: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ntlmssp: Option<Ntlmssp<'a>>,
}

#[derive(Deserialize)]
struct Ntlmssp<'a> {
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    domain: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Ftp<'a> {
    #[serde(borrow)]
    command: Option<Cow<'a, str>>,
    #[serde(borrow)]
    command_data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Quic<'a> {
    #[serde(borrow)]
    sni: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Alert<'a> {
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    gid: Option<u64>,
    signature_id: Option<u64>,
    rev: Option<u64>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    severity: Option<u8>,
}

#[derive(Deserialize)]
struct Http<'a> {
    #[serde(borrow)]
    hostname: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    http_method: Option<Cow<'a, str>>,
    status: Option<u16>,
    #[serde(borrow)]
    http_user_agent: Option<Cow<'a, str>>,
    length: Option<u64>,
}

#[derive(Deserialize)]
struct Anomaly<'a> {
    #[serde(borrow, rename = "type")]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FlowStats {
    pkts_toserver: Option<u64>,
    pkts_toclient: Option<u64>,
    bytes_toserver: Option<u64>,
    bytes_toclient: Option<u64>,
    age: Option<u64>,
}

#[derive(Deserialize)]
struct FileInfo<'a> {
    #[serde(borrow)]
    filename: Option<Cow<'a, str>>,
}

/// Suricata alert severity (1 highest .. 4) on Pharos' scale.
fn severity(s: Option<u8>) -> Severity {
    match s {
        Some(1) => Severity::High,
        Some(2) => Severity::Middle,
        Some(3) => Severity::Low,
        _ => Severity::Info,
    }
}

/// What one event type maps to: the kind, its severity and the summary.
type Mapped = (Kind, Severity, String);

/// Normalises one EVE record.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let start = memchr::memchr(b'{', input.text.as_bytes())?;
    let json = input.text.get(start..)?.trim_end();
    let eve: Eve<'_> = serde_json::from_str(json).ok()?;
    let flow = Flow {
        src_ip: eve.src_ip.as_deref().and_then(build::ip),
        src_port: eve.src_port,
        dst_ip: eve.dest_ip.as_deref().and_then(build::ip),
        dst_port: eve.dest_port,
    };
    let (kind, sev, summary) = match eve.event_type.as_ref() {
        "alert" => alert(&eve, flow)?,
        "anomaly" => anomaly(&eve, flow),
        "flow" | "netflow" => traffic(&eve, flow, IngressAction::Pass),
        "drop" => traffic(&eve, flow, IngressAction::Drop),
        "fileinfo" => fileinfo(&eve, flow),
        "stats" => stats(&eve),
        other => (
            Kind::GenericLog(GenericLog {
                format: None,
                reason: Some(format!("suricata {} event", build::clip_to(other, 32))),
                app_name: None,
            }),
            Severity::Info,
            other.to_string(),
        ),
    };
    let fields = fields(&eve, flow, &kind);
    let time = eve.timestamp.as_deref().and_then(crate::time::iso);
    // `host` is read only so that a record whose `host` is not a string stays unparsed
    let _ = eve.host;
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("OISF")
            .model(Some("Suricata"))
            .summary(summary)
            .fields(fields),
    )
}

/// The record's fields that its case has no leaf for (every field for a generic log): the
/// application-layer object of its event type (http, dns, tls, smtp, krb5, smb, ...).
fn fields(eve: &Eve<'_>, flow: Flow, kind: &Kind) -> LogFields {
    let s = |c: Option<&Cow<'_, str>>| build::present(c.map(|v| v.as_ref())).map(build::clip);
    let http = eve.http.as_ref();
    let dns = eve.dns.as_ref().and_then(|d| {
        d.rrname.as_ref().or_else(|| {
            d.queries
                .iter()
                .chain(d.query.iter())
                .flatten()
                .find_map(|q| q.rrname.as_ref())
        })
    });
    let domain = http
        .and_then(|h| h.hostname.as_ref())
        .or(dns)
        .or_else(|| eve.tls.as_ref().and_then(|t| t.sni.as_ref()))
        .or_else(|| eve.quic.as_ref().and_then(|q| q.sni.as_ref()))
        .or_else(|| eve.dhcp.as_ref().and_then(|d| d.hostname.as_ref()))
        .or_else(|| eve.smtp.as_ref().and_then(|m| m.helo.as_ref()))
        .or_else(|| {
            eve.smb
                .as_ref()
                .and_then(|m| m.ntlmssp.as_ref()?.domain.as_ref())
        });
    let mail_from = eve
        .smtp
        .as_ref()
        .and_then(|m| m.mail_from.as_ref())
        .or_else(|| eve.email.as_ref().and_then(|e| e.from.as_ref()));
    let mail_to = eve
        .smtp
        .as_ref()
        .and_then(|m| m.rcpt_to.as_ref()?.first())
        .or_else(|| eve.email.as_ref().and_then(|e| e.to.as_ref()?.first()));
    let user = eve
        .krb5
        .as_ref()
        .and_then(|k| k.cname.as_ref())
        .or_else(|| {
            eve.smb
                .as_ref()
                .and_then(|m| m.ntlmssp.as_ref()?.user.as_ref())
        })
        .or_else(|| {
            let f = eve.ftp.as_ref()?;
            (f.command.as_deref() == Some("USER")).then_some(f.command_data.as_ref()?)
        });
    let file = eve
        .fileinfo
        .as_ref()
        .and_then(|f| f.filename.as_ref())
        .or_else(|| eve.smb.as_ref().and_then(|m| m.filename.as_ref()));
    let mut f = LogFields {
        user: s(user),
        domain: s(domain),
        url: s(http.and_then(|h| h.url.as_ref())),
        http_method: s(http.and_then(|h| h.http_method.as_ref())),
        http_status: http.and_then(|h| h.status),
        sent_bytes: http.and_then(|h| h.length),
        user_agent: s(http.and_then(|h| h.http_user_agent.as_ref())),
        mail_from: s(mail_from),
        mail_to: s(mail_to),
        file_name: s(file),
        message_id: eve
            .alert
            .as_ref()
            .and_then(|a| a.signature_id)
            .map(|id| id.to_string()),
        ..Default::default()
    };
    match kind {
        Kind::Intrusion(_) => f.action = s(eve.alert.as_ref().and_then(|a| a.action.as_ref())),
        Kind::WebAttack(_) => {
            f.action = s(eve.alert.as_ref().and_then(|a| a.action.as_ref()));
            // the case holds the request: keep what it has no leaf for
            f.url = None;
            f.http_method = None;
            f.domain = None;
            f.http_status = None;
        }
        Kind::GenericLog(_) | Kind::DpiLog(_) => {
            f.src_ip = flow.src_ip;
            f.src_port = flow.src_port;
            f.dst_ip = flow.dst_ip;
            f.dst_port = flow.dst_port;
            f.protocol = eve.proto.as_deref().map(|p| p.to_ascii_lowercase());
            f.application = s(eve.app_proto.as_ref());
            f.session_id = eve.flow_id.map(|id| id.to_string());
            f.in_interface = s(eve.in_iface.as_ref());
            if matches!(kind, Kind::GenericLog(_)) {
                f.message_id = Some(build::clip_to(&eve.event_type, 32));
            }
        }
        _ => {}
    }
    f
}

/// A signature alert: an intrusion, or a web attack (with the `http` object) when the signature
/// or its category is an HTTP attack; `None` without an `alert` object.
fn alert(eve: &Eve<'_>, flow: Flow) -> Option<Mapped> {
    let a = eve.alert.as_ref()?;
    let sig = a.signature.as_deref().unwrap_or("");
    let cat = a.category.as_deref().unwrap_or("");
    let summary = format!(
        "[{}:{}:{}] {sig} [{cat}]",
        a.gid.unwrap_or(1),
        a.signature_id.unwrap_or(0),
        a.rev.unwrap_or(0)
    );
    let http = eve.http.as_ref();
    let kind = build::intrusion_or_web_attack(
        flow,
        build::rule_or(Some(sig), RULE),
        build::web_attack_type(sig).or_else(|| build::web_attack_type(cat)),
        Request {
            method: http.and_then(|h| h.http_method.as_deref()),
            target: http.and_then(|h| h.url.as_deref()),
            host: http.and_then(|h| h.hostname.as_deref()),
            response_code: http.and_then(|h| h.status).map(|s| s.to_string()),
        },
        Ids {
            protocol: eve.proto.as_deref().and_then(build::transport),
            app: build::app_or_port(eve.app_proto.as_deref(), flow.dst_port),
            attack_type: build::intrusion_attack_type(sig),
        },
    );
    Some((kind, severity(a.severity), summary))
}

/// A protocol anomaly: an intrusion named after the anomaly event.
fn anomaly(eve: &Eve<'_>, flow: Flow) -> Mapped {
    let a = eve.anomaly.as_ref();
    let ev = a.and_then(|a| a.event.as_deref().or(a.ty.as_deref()));
    let ids = Ids {
        protocol: eve.proto.as_deref().and_then(build::transport),
        app: eve.app_proto.as_deref().and_then(build::app_protocol),
        attack_type: None,
    };
    (
        Kind::Intrusion(build::intrusion(flow, build::rule_or(ev, RULE), ids)),
        Severity::Low,
        format!("anomaly {}", ev.unwrap_or("")),
    )
}

/// A flow record or a dropped packet: a firewall traffic log with `action`.
fn traffic(eve: &Eve<'_>, flow: Flow, action: IngressAction) -> Mapped {
    let f = eve.flow.as_ref();
    let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: flow.src_ip,
        dst_ip: flow.dst_ip,
        src_port: flow.src_port,
        dst_port: flow.dst_port,
        protocol: eve.proto.as_deref().and_then(build::protocol),
        action: Some(action),
        sent_bytes: f.and_then(|f| f.bytes_toserver),
        received_bytes: f.and_then(|f| f.bytes_toclient),
        sent_packets: f.and_then(|f| f.pkts_toserver),
        received_packets: f.and_then(|f| f.pkts_toclient),
        in_interface: eve.in_iface.as_deref().map(build::clip),
        application: eve.app_proto.as_deref().map(build::clip),
        session_id: eve.flow_id,
        duration: f.and_then(|f| f.age).and_then(|a| u32::try_from(a).ok()),
        ..Default::default()
    });
    (kind, Severity::Info, eve.event_type.to_string())
}

/// A file seen in a flow: a DPI log of the file-blocking class that let it pass.
fn fileinfo(eve: &Eve<'_>, flow: Flow) -> Mapped {
    let name = eve.fileinfo.as_ref().and_then(|f| f.filename.as_deref());
    let kind = Kind::DpiLog(DpiLog {
        attack_type: Some(DpiType::FileBlocking),
        src_ip: flow.src_ip,
        src_port: flow.src_port,
        dst_ip: flow.dst_ip,
        dst_port: flow.dst_port,
        rule_name: RULE.to_string(),
        action: vec![IngressAction::Pass],
    });
    (
        kind,
        Severity::Info,
        format!("fileinfo {}", name.unwrap_or("")),
    )
}

/// Engine statistics: resource utilisation, active flows as sessions.
fn stats(eve: &Eve<'_>) -> Mapped {
    let active = eve
        .stats
        .as_ref()
        .and_then(|s| {
            s.pointer("/flow/active")
                .or_else(|| s.pointer("/flow/memuse"))
        })
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok());
    let kind = Kind::ResourceUtilizationLog(ResourceUtilizationLog {
        system_status: Some(SystemStatus::Running),
        session_num: active,
        ..Default::default()
    });
    (kind, Severity::Info, eve.event_type.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn alert_web_attack_with_http() {
        let n = auto(
            r#"{"timestamp":"2022-07-10T23:50:05.533101+0000","flow_id":4242424242,"in_iface":"eth1","event_type":"alert","src_ip":"198.51.100.4","src_port":52812,"dest_ip":"192.0.2.80","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2024468,"rev":3,"signature":"ET WEB_SPECIFIC_APPS OGNL Expression Injection (CVE-2017-9791)","category":"Attempted User Privilege Gain","severity":1},"http":{"hostname":"example.com","url":"/struts2","http_method":"POST","status":200}}"#,
            "suricata-eve",
        );
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!("{:?}", n.message.kind)
        };
        assert_eq!(w.src_ip, ip("198.51.100.4"));
        assert_eq!(w.req_host.as_deref(), Some("example.com"));
        assert_eq!(w.response_code.as_deref(), Some("200"));
        assert_eq!(n.message.common.severity, Severity::High);
    }

    #[test]
    fn alert_scan_is_intrusion_and_flow_is_traffic() {
        let n = auto(
            r#"{"timestamp":"2017-02-14T12:35:20.918367+0100","event_type":"alert","src_ip":"203.0.113.216","src_port":5116,"dest_ip":"192.0.2.55","dest_port":5060,"proto":"UDP","alert":{"action":"allowed","gid":1,"signature_id":2008578,"rev":4,"signature":"ET SCAN Sipvicious Scan","category":"Attempted Information Leak","severity":2}}"#,
            "suricata-eve",
        );
        let Kind::Intrusion(i) = &n.message.kind else {
            panic!()
        };
        assert_eq!(i.dst_port, Some(5060));
        let n = auto(
            r#"{"timestamp":"2017-02-14T12:35:20.918367+0100","event_type":"flow","src_ip":"10.0.0.1","src_port":5000,"dest_ip":"10.0.0.2","dest_port":53,"proto":"UDP","app_proto":"dns","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":70,"bytes_toclient":120,"age":0,"state":"established"}}"#,
            "suricata-eve",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.received_bytes, Some(120));
    }

    /// One sample per event type: (line, kind, a field that must be read).
    const EVENTS: &[(&str, &str, &str)] = &[
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","flow_id":11,"event_type":"dns","src_ip":"10.1.1.5","src_port":53211,"dest_ip":"10.1.1.1","dest_port":53,"proto":"UDP","dns":{"type":"query","id":4660,"rrname":"www.example.org","rrtype":"A","tx_id":0}}"#,
            "generic-log",
            "www.example.org",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","flow_id":12,"event_type":"dns","src_ip":"10.1.1.5","src_port":53211,"dest_ip":"10.1.1.1","dest_port":53,"proto":"UDP","dns":{"version":3,"type":"request","id":1,"queries":[{"rrname":"mail.example.net","rrtype":"MX"}]}}"#,
            "generic-log",
            "mail.example.net",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","flow_id":13,"event_type":"http","src_ip":"10.1.1.5","src_port":40000,"dest_ip":"192.0.2.80","dest_port":80,"proto":"TCP","http":{"hostname":"www.example.com","url":"/index.html","http_user_agent":"curl/8.0","http_method":"GET","protocol":"HTTP/1.1","status":200,"length":512}}"#,
            "generic-log",
            "/index.html",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","flow_id":14,"event_type":"tls","src_ip":"10.1.1.5","src_port":40001,"dest_ip":"192.0.2.81","dest_port":443,"proto":"TCP","tls":{"subject":"CN=www.example.com","issuerdn":"CN=Example CA","sni":"www.example.com","version":"TLS 1.2"}}"#,
            "generic-log",
            "www.example.com",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","flow_id":15,"event_type":"smtp","src_ip":"10.1.1.6","src_port":40002,"dest_ip":"192.0.2.25","dest_port":25,"proto":"TCP","smtp":{"helo":"mx.example.com","mail_from":"<alice@example.com>","rcpt_to":["<bob@example.net>"]}}"#,
            "generic-log",
            "<alice@example.com>",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","flow_id":16,"event_type":"krb5","src_ip":"10.1.1.7","src_port":40003,"dest_ip":"10.1.1.2","dest_port":88,"proto":"TCP","krb5":{"msg_type":"KRB_AS_REQ","cname":"carol","realm":"EXAMPLE.COM","sname":"krbtgt/EXAMPLE.COM"}}"#,
            "generic-log",
            "carol",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","flow_id":17,"event_type":"fileinfo","src_ip":"192.0.2.80","src_port":80,"dest_ip":"10.1.1.5","dest_port":40000,"proto":"TCP","fileinfo":{"filename":"/setup.exe","state":"CLOSED","stored":false,"size":1024}}"#,
            "dpi-log",
            "/setup.exe",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","event_type":"ssh","src_ip":"10.1.1.8","src_port":40004,"dest_ip":"10.1.1.3","dest_port":22,"proto":"TCP","ssh":{"client":{"proto_version":"2.0","software_version":"OpenSSH_9.0"}}}"#,
            "generic-log",
            "10.1.1.8",
        ),
        (
            r#"{"timestamp":"2023-04-01T10:00:00.000001+0000","event_type":"drop","src_ip":"10.1.1.9","src_port":40005,"dest_ip":"10.1.1.4","dest_port":445,"proto":"TCP","drop":{"len":60}}"#,
            "firewall-traffic-log",
            "445",
        ),
    ];

    #[test]
    fn every_event_type_keeps_addresses_and_its_fields() {
        for (line, kind, want) in EVENTS {
            let n = auto(line, "suricata-eve");
            assert_eq!(n.message.kind.name(), *kind, "{line}");
            let doc = pharos_model::json::encode(&n.message).to_string();
            assert!(
                doc.contains(&format!("\"{want}\"")) || doc.contains(&format!(":{want}")),
                "{want} in {doc}"
            );
        }
    }

    #[test]
    fn stats_are_resource_utilisation_and_broken_json_is_generic() {
        auto(
            r#"{"timestamp":"2017-02-14T12:35:20+0000","event_type":"stats","stats":{"uptime":30,"flow":{"active":12}}}"#,
            "suricata-eve",
        );
        let n = crate::normalize(
            &LogInput::line(r#"{"event_type":"alert", "#),
            crate::Format::Auto,
            "x",
        );
        assert!(!n.parsed);
    }
}
