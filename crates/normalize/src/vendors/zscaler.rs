//! Zscaler Internet Access (ZIA) Nanolog Streaming Service (NSS) feeds: web, firewall, DNS,
//! tunnel and admin audit, in the JSON output templates (`{"sourcetype":"zscalernss-fw",
//! "event":{...}}`, or the event object alone) and the `key=value` templates (space or tab
//! separated). LEEF and CEF feeds go through the LEEF and CEF normalisers.
//!
//! Fields are read by name (table [`KEYS`]: the NSS field names and the names the documented
//! SIEM templates give them); the feed comes from `sourcetype` or, without one, from the keys
//! present (table [`FEEDS`]). Mapping: firewall -> firewall traffic log (intrusion when an IPS
//! rule or threat is named); web -> firewall traffic log with URL, method, host, status and user
//! agent in the fields (virus when a malware threat is named, web attack when the threat is a
//! web attack); DNS -> firewall traffic log with the query as domain; admin audit ->
//! configuration change; tunnel and others -> generic log with fields. The user leaf holds the
//! login; a device owner other than the login is kept in `envelope/fields/user`.

use std::borrow::Cow;

use pharos_model::Severity;
use serde_json::Value;

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};
use crate::fields::Kv;
use crate::vendors::{Probe, probe};

const RULE: &str = "zscaler-unknown-rule";

/// `zscalernss` (JSON templates), or the key pairs only NSS feeds carry.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "zscalernss")
        || (probe!(p, "csip") && probe!(p, "cdip"))
        || probe!(p, "clt_sip")
        || (probe!(p, "reqmethod") && probe!(p, "urlcat"))
        || (probe!(p, "requestmethod") && probe!(p, "urlcategory"))
        || (probe!(p, "vendor=Zscaler") && probe!(p, "product=NSS"))
}

/// One NSS feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Firewall,
    Web,
    Dns,
    Tunnel,
    Audit,
    Other,
}

/// `sourcetype` -> feed; and for records without one, a key only that feed has.
const FEEDS: &[(&str, &str, Feed)] = &[
    ("zscalernss-fw", "csip", Feed::Firewall),
    ("zscalernss-web", "reqmethod", Feed::Web),
    ("zscalernss-web", "requestmethod", Feed::Web),
    ("zscalernss-web", "urlcategory", Feed::Web),
    ("zscalernss-dns", "clt_sip", Feed::Dns),
    ("zscalernss-dns", "dns_req", Feed::Dns),
    ("zscalernss-tunnel", "tunneltype", Feed::Tunnel),
    ("zscalernss-audit", "adminid", Feed::Audit),
];

/// A field Pharos reads, and the names the feeds give it (first present wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    SrcIp,
    SrcPort,
    DstIp,
    DstPort,
    NatSrcIp,
    NatSrcPort,
    NatDstIp,
    NatDstPort,
    Proto,
    App,
    Action,
    Rule,
    Login,
    Owner,
    Url,
    Host,
    Method,
    Status,
    Agent,
    Sent,
    Received,
    Threat,
    ThreatCat,
    IpsRule,
    Time,
    File,
    Msg,
}

const KEYS: &[(F, &[&str])] = &[
    (
        F::SrcIp,
        &[
            "csip", "cip", "ClientIP", "clientip", "clt_sip", "sourceip", "srcip",
        ],
    ),
    (F::SrcPort, &["csport", "sourceport", "srcport", "cport"]),
    (
        F::DstIp,
        &[
            "cdip",
            "sip",
            "serverip",
            "srv_dip",
            "destinationip",
            "dstip",
        ],
    ),
    (
        F::DstPort,
        &["cdport", "srv_dport", "sport", "destinationport", "dstport"],
    ),
    (F::NatSrcIp, &["ssip"]),
    (F::NatSrcPort, &["ssport"]),
    (F::NatDstIp, &["sdip"]),
    (F::NatDstPort, &["sdport"]),
    (F::Proto, &["proto", "protocol"]),
    (F::App, &["nwapp", "appname", "nwsvc"]),
    (F::Action, &["action", "reqaction", "resaction"]),
    (
        F::Rule,
        &[
            "rulelabel",
            "reqrulelabel",
            "resrulelabel",
            "urlfilterrulelabel",
        ],
    ),
    (F::Login, &["login", "user", "elogin", "adminid"]),
    (F::Owner, &["deviceowner", "odeviceowner"]),
    (F::Url, &["url", "eurl"]),
    (F::Host, &["host", "hostname", "ehost", "dns_req", "req"]),
    (F::Method, &["reqmethod", "requestmethod"]),
    (F::Status, &["respcode", "status"]),
    (F::Agent, &["ua", "useragent", "eua"]),
    (F::Sent, &["outbytes", "reqsize", "requestsize"]),
    (F::Received, &["inbytes", "respsize", "responsesize"]),
    (F::Threat, &["threatname"]),
    (
        F::ThreatCat,
        &["threatcat", "threatcategory", "malwarecat", "threatclass"],
    ),
    (F::IpsRule, &["ipsrulelabel"]),
    (F::Time, &["datetime", "time"]),
    (F::File, &["filename", "filetype"]),
    (F::Msg, &["event", "eventreason", "category", "result"]),
];

/// The record's pairs: `key=value` text or a JSON object.
enum Rec<'a> {
    Kv(Kv<'a>),
    Json(serde_json::Map<String, Value>),
}

impl<'a> Rec<'a> {
    fn raw(&self, key: &str) -> Option<Cow<'_, str>> {
        match self {
            Rec::Kv(kv) => kv.get(key).map(Cow::Borrowed),
            Rec::Json(m) => match m.get(key)? {
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                Value::Bool(b) => Some(Cow::Owned(b.to_string())),
                _ => None,
            },
        }
    }

    /// The first present value of field `f` (NSS writes `None`/`NA` for absent values).
    fn get(&self, f: F) -> Option<Cow<'_, str>> {
        let keys = KEYS
            .iter()
            .find(|(k, _)| *k == f)
            .map_or(&[][..], |(_, v)| *v);
        keys.iter().find_map(|k| {
            self.raw(k)
                .filter(|v| build::present(Some(v)).is_some() && !v.eq_ignore_ascii_case("na"))
        })
    }

    fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }
}

/// `%XX` escapes decoded (NSS URL-encodes some labels: `Access%20Blocked`).
fn unescape(s: Cow<'_, str>) -> Cow<'_, str> {
    if !s.contains('%') {
        return s;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The record's pairs and its `sourcetype`, whatever the template.
fn record(t: &str) -> Option<(Rec<'_>, Option<String>)> {
    let t = t.trim();
    if let Some(at) = t.find('{') {
        let json = t.get(at..)?;
        if let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(json) {
            let st = m
                .get("sourcetype")
                .and_then(Value::as_str)
                .map(str::to_string);
            let inner = match m.remove("event") {
                Some(Value::Object(e)) => e,
                Some(other) => {
                    m.insert("event".to_string(), other);
                    m
                }
                None => m,
            };
            return Some((Rec::Json(inner), st));
        }
    }
    let kv = if t.contains('\t') {
        Kv::parse_with_separator(t, '\t')
    } else {
        Kv::parse(t)
    };
    let st = kv.get("sourcetype").map(str::to_string);
    Some((Rec::Kv(kv), st))
}

/// The feed of a record.
fn feed(rec: &Rec<'_>, sourcetype: Option<&str>) -> Feed {
    if let Some(st) = sourcetype
        && let Some((_, _, f)) = FEEDS.iter().find(|(s, _, _)| *s == st)
    {
        return *f;
    }
    FEEDS
        .iter()
        .find(|(_, key, _)| rec.has(key))
        .map_or(Feed::Other, |(_, _, f)| *f)
}

/// Normalises one NSS record; `None` when the line is not one.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let (rec, st) = record(input.text)?;
    let feed = feed(&rec, st.as_deref());
    if feed == Feed::Other && st.is_none() {
        return None;
    }
    let g = |f| rec.get(f);
    let (src_ip, src_port, dst_ip, dst_port) =
        (g(F::SrcIp), g(F::SrcPort), g(F::DstIp), g(F::DstPort));
    let (nsi, nsp, ndi, ndp) = (
        g(F::NatSrcIp),
        g(F::NatSrcPort),
        g(F::NatDstIp),
        g(F::NatDstPort),
    );
    let (proto, app, action) = (g(F::Proto), g(F::App), g(F::Action));
    let rule = g(F::Rule).map(unescape);
    let (login, owner) = (g(F::Login), g(F::Owner));
    let (url, host, method, status, agent) = (
        g(F::Url),
        g(F::Host),
        g(F::Method),
        g(F::Status),
        g(F::Agent),
    );
    let (sent, received) = (g(F::Sent), g(F::Received));
    let (threat, threat_cat, ips_rule) = (g(F::Threat), g(F::ThreatCat), g(F::IpsRule));
    let (file, msg) = (g(F::File), g(F::Msg));
    let num = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(|s| s.trim().parse::<u64>().ok());
    let ip = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(build::ip);
    let port = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(build::port);
    let proto_s = proto.as_deref().filter(|p| build::protocol(p).is_some());
    let url_host = url.as_deref().and_then(super::web_access::url_host);
    let p = FwParts {
        flow: Flow {
            src_ip: ip(&src_ip),
            src_port: port(&src_port),
            dst_ip: ip(&dst_ip),
            dst_port: port(&dst_port),
        },
        nat_src_ip: ip(&nsi),
        nat_src_port: port(&nsp),
        nat_dst_ip: ip(&ndi),
        nat_dst_port: port(&ndp),
        proto: proto_s.or(match feed {
            Feed::Dns => Some("udp"),
            _ => None,
        }),
        app: app
            .as_deref()
            .or(proto.as_deref().filter(|_| proto_s.is_none())),
        action: action.as_deref(),
        rule: rule.as_deref().or(ips_rule.as_deref()),
        user: login.as_deref(),
        url: url.as_deref(),
        domain: host.as_deref().or(url_host),
        method: method.as_deref(),
        status: status.as_deref().and_then(|s| s.trim().parse().ok()),
        user_agent: agent.as_deref(),
        sent: num(&sent),
        received: num(&received),
        signature: threat.as_deref().or(ips_rule.as_deref()),
        file: file.as_deref(),
        msg: msg.as_deref(),
        message_id: st.as_deref(),
        ..Default::default()
    };
    let cat = threat_cat.as_deref().unwrap_or("").to_ascii_lowercase();
    let class = match feed {
        Feed::Firewall if threat.is_some() || ips_rule.is_some() => FwClass::Ips,
        Feed::Web if threat.is_some() && build::web_attack_type(&cat).is_some() => {
            FwClass::WebAttack
        }
        Feed::Web if threat.is_some() => FwClass::Virus,
        Feed::Firewall | Feed::Web | Feed::Dns => FwClass::Traffic,
        Feed::Audit => FwClass::Config,
        Feed::Tunnel | Feed::Other => FwClass::Event,
    };
    let sev = match class {
        FwClass::Ips | FwClass::Virus | FwClass::WebAttack => Severity::High,
        _ => Severity::Info,
    };
    let mut d = build::fw_draft(class, &p, RULE, sev);
    // the device owner is a second identity of the record (the login is the case's user)
    if let Some(o) = owner.as_deref().filter(|o| Some(*o) != login.as_deref()) {
        let mut f = d.fields.take().map(|b| *b).unwrap_or_default();
        f.user = Some(build::clip(o));
        d = d.fields(f);
    }
    let time =
        g(F::Time).and_then(|t| super::web_error::apache_time(&t).or_else(|| crate::time::iso(&t)));
    Some(d.time(time).vendor("Zscaler").model(Some("ZIA NSS")))
}

#[cfg(test)]
mod tests {
    use crate::vendors::testutil::{auto, ip};
    use pharos_model::Kind;

    /// One sample per feed and template: (line, kind).
    const SAMPLES: &[(&str, &str)] = &[
        (
            r#"{"sourcetype":"zscalernss-fw","event":{"datetime":"Mon Oct 16 22:55:48 2023","user":"alice@example.com","department":"Sales","locationname":"HQ","cdport":443,"csport":50123,"sdport":443,"ssport":40100,"csip":"10.2.3.4","cdip":"203.0.113.50","ssip":"198.51.100.2","sdip":"203.0.113.50","tsip":"198.51.100.1","tunsport":0,"tuntype":"GRE","action":"Allow","dnat":"No","stateful":"Yes","aggregate":"No","nwsvc":"HTTPS","nwapp":"ssl","proto":"TCP","ipcat":"Web","destcountry":"United States","avgduration":120,"rulelabel":"Default%20Firewall","inbytes":5120,"outbytes":830,"duration":1,"durationms":1200,"numsessions":1,"ipsrulelabel":"None","threatcat":"None","threatname":"None","deviceowner":"alice","devicehostname":"LAPTOP-1"}}"#,
            "firewall-traffic-log",
        ),
        (
            "datetime=Mon Oct 16 22:55:48 2023\tuser=bob@example.com\tcsip=10.2.3.5\tcsport=50124\tcdip=192.0.2.9\tcdport=22\tproto=TCP\tnwapp=ssh\taction=Drop\trulelabel=Block SSH\tinbytes=0\toutbytes=60\tipsrulelabel=None\tthreatname=None",
            "firewall-traffic-log",
        ),
        (
            r#"{"sourcetype":"zscalernss-web","event":{"datetime":"Mon Oct 16 22:55:48 2023","reason":"Allowed","event_id":"7290000000000000001","protocol":"HTTPS","action":"Allowed","transactionsize":"2000","responsesize":"1500","requestsize":"500","urlcategory":"News and Media","serverip":"203.0.113.80","requestmethod":"GET","refererURL":"None","useragent":"Mozilla/5.0","product":"NSS","location":"HQ","ClientIP":"10.2.3.6","status":"200","user":"carol@example.com","url":"www.example.com/news","vendor":"Zscaler","hostname":"www.example.com","threatcategory":"None","threatname":"None","deviceowner":"carol","devicehostname":"PC-7"}}"#,
            "firewall-traffic-log",
        ),
        (
            r#"{"sourcetype":"zscalernss-web","event":{"datetime":"Mon Oct 16 22:55:48 2023","protocol":"HTTP","action":"Blocked","serverip":"203.0.113.81","requestmethod":"GET","ClientIP":"10.2.3.7","status":"403","user":"dave@example.com","url":"malware.example.net/eicar.com","hostname":"malware.example.net","threatcategory":"Virus","threatname":"EICAR_Test_File"}}"#,
            "virus",
        ),
        (
            "sourcetype=zscalernss-dns datetime=\"Mon Oct 16 22:55:48 2023\" user=erin@example.com reqaction=\"REQ_ALLOW\" resaction=\"RES_ALLOW\" dns_reqtype=A dns_req=www.example.org dns_resp=93.184.216.34 srv_dport=53 durationms=10 clt_sip=10.2.3.8 srv_dip=198.51.100.53",
            "firewall-traffic-log",
        ),
    ];

    #[test]
    fn every_feed_sample_is_read() {
        for (line, kind) in SAMPLES {
            let n = auto(line, "zscaler");
            assert_eq!(n.message.kind.name(), *kind, "{line}");
        }
    }

    #[test]
    fn firewall_json_keeps_ends_nat_login_and_owner() {
        let n = auto(SAMPLES[0].0, "zscaler");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.2.3.4"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.user.as_deref(), Some("alice@example.com"));
        assert_eq!(f.rule_name.as_deref(), Some("Default Firewall"));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.user.as_deref(), Some("alice"));
        assert_eq!(x.nat_src_ip, ip("198.51.100.2"));
        let n = auto(SAMPLES[4].0, "zscaler");
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.domain.as_deref(), Some("www.example.org"));
        let n = auto(SAMPLES[2].0, "zscaler");
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.http_method.as_deref(), Some("GET"));
        assert_eq!(x.url.as_deref(), Some("www.example.com/news"));
    }
}
