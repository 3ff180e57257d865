//! Fortinet FortiWeb `key=value` logs: `date= time= log_id= msg_id= device_id= vd=
//! type=attack|traffic|event subtype= src= src_port= dst= dst_port= http_method= http_url=
//! http_host= user= action= main_type= sub_type= ...` (FortiWeb Log Reference).
//!
//! Mapping ([`TYPES`]): attack -> web attack (type from `sub_type`/`main_type`, rule the
//! signature id or policy); traffic -> firewall traffic log with the HTTP request in
//! `envelope/fields`; event -> as FortiGate's system events (admin logins, configuration). Placeholder
//! rule `fortiweb-unknown-rule`.

use pharos_model::ident::WebAttackType;
use pharos_model::{FirewallTrafficLog, Kind};

use crate::LogInput;
use crate::build::{self, Draft, Flow, Request, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, fortigate, probe};

const RULE: &str = "fortiweb-unknown-rule";

/// `msg_id=` with `log_id=` (FortiWeb names every record both ways).
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "msg_id=") && probe!(p, "log_id=")
}

/// A `type` value, its mapper and a sample line.
type Row = (&'static str, fn(&Kv<'_>) -> Kind, &'static str);

/// FortiWeb `type` values to cases, each with a sample line.
const TYPES: &[Row] = &[
    (
        "attack",
        attack,
        r#"date=2023-03-01 time=09:00:00 log_id=20000008 msg_id=000000001117 device_id=FV-1KD3A14800059 vd="root" timezone="(GMT+1:00)Brussels" type=attack subtype="waf_signature_detection" pri=alert main_type="Signature Detection" sub_type="SQL Injection" severity_level=High proto=tcp service=https/tls1.2 action=Alert_Deny policy="web-policy" src=198.51.100.61 src_port=51234 dst=10.0.5.10 dst_port=443 http_method=get http_url="/products.php?id=1%27%20or%201=1" http_host="shop.example.com" http_agent="sqlmap/1.7" signature_id="030000136" user_name="Unknown" msg="[Signatures name: default] [main class name: SQL Injection]: 030000136""#,
    ),
    (
        "traffic",
        traffic,
        r#"date=2023-03-01 time=09:05:00 log_id=30001000 msg_id=000000002001 device_id=FV-1KD3A14800059 vd="root" type=traffic subtype="https" pri=notice proto=tcp service=https/tls1.2 status=success reason=none policy="web-policy" original_src=198.51.100.62 src=198.51.100.62 src_port=51300 dst=10.0.5.10 dst_port=443 http_request_time=0 http_response_time=2 http_request_bytes=420 http_response_bytes=9000 http_method=post http_url="/login" http_host="shop.example.com" http_agent="Mozilla/5.0" http_retcode=302 user=grace msg="HTTPS post request from 198.51.100.62:51300 to 10.0.5.10:443""#,
    ),
    (
        "event",
        fortigate::system,
        r#"date=2023-03-01 time=09:10:00 log_id=00001001 msg_id=000000003001 device_id=FV-1KD3A14800059 vd="root" type=event subtype="admin" pri=information user=admin ui=GUI(192.0.2.9) action=login status=success msg="User admin login successfully from GUI(192.0.2.9)""#,
    ),
];

fn flow(kv: &Kv<'_>) -> Flow {
    Flow {
        src_ip: kv.any(&["src", "original_src"]).and_then(ip),
        src_port: kv.get("src_port").and_then(port),
        dst_ip: kv.get("dst").and_then(ip),
        dst_port: kv.get("dst_port").and_then(port),
    }
}

fn attack(kv: &Kv<'_>) -> Kind {
    let class = kv.any(&["sub_type", "main_type", "msg"]).unwrap_or("");
    let ty = build::web_attack_type(class)
        .or_else(|| kv.get("msg").and_then(build::web_attack_type))
        .unwrap_or(WebAttackType::OtherWebAttack);
    Kind::WebAttack(build::web_attack(
        flow(kv),
        build::rule_or(
            kv.any(&["signature_id", "sub_type", "main_type", "policy"]),
            RULE,
        ),
        Some(ty),
        Request {
            method: kv.get("http_method"),
            target: kv.get("http_url"),
            host: kv.get("http_host"),
            response_code: kv.get("http_retcode").map(build::clip),
        },
    ))
}

fn traffic(kv: &Kv<'_>) -> Kind {
    let f = flow(kv);
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: f.src_ip,
        dst_ip: f.dst_ip,
        src_port: f.src_port,
        dst_port: f.dst_port,
        protocol: kv.get("proto").and_then(build::protocol),
        action: kv
            .any(&["action", "status"])
            .and_then(|a| build::action(if a == "success" { "pass" } else { a })),
        sent_bytes: num("http_request_bytes"),
        received_bytes: num("http_response_bytes"),
        sent_packets: None,
        received_packets: None,
        policy_name: kv.get("policy").map(build::clip),
        rule_name: kv.get("policy").map(build::clip),
        in_interface: None,
        out_interface: None,
        application: kv.get("service").map(build::clip),
        user: kv
            .any(&["user", "user_name"])
            .filter(|u| *u != "Unknown")
            .map(build::clip),
        session_id: None,
        duration: None,
    })
}

/// The record as a draft, or `None` when it is not a FortiWeb record after all.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = fortigate::pairs(input.text);
    let ty = kv.get("type")?;
    kv.get("msg_id")?;
    let kind = TYPES.iter().find(|(t, _, _)| *t == ty).map_or_else(
        || build::unmapped("fortiweb log kept as fields"),
        |(_, m, _)| m(&kv),
    );
    let mut fields = fortigate::all_fields(&kv);
    let f = flow(&kv);
    fields.src_ip = fields.src_ip.or(f.src_ip);
    fields.dst_ip = fields.dst_ip.or(f.dst_ip);
    fields.user = fields.user.or_else(|| {
        kv.get("user_name")
            .filter(|u| *u != "Unknown")
            .map(build::clip)
    });
    fields.message_id = kv.any(&["msg_id", "log_id"]).map(build::clip);
    fields.rule_name = kv.get("policy").map(build::clip);
    let method = fields.http_method.clone();
    let mut fields = build::fields_beyond_case(&kind, fields);
    if matches!(kind, Kind::WebAttack(_)) {
        // `req-method` is an identity of eight methods: the vendor's word is kept as well
        fields.http_method = method;
    }
    let sev = match &kind {
        Kind::WebAttack(_) => fortigate::severity(
            kv.get("severity_level")
                .map(|s| if s == "High" { "high" } else { "medium" }),
        )
        .max(fortigate::severity(kv.get("pri"))),
        _ => fortigate::severity(kv.get("pri")),
    };
    let time = kv
        .get("date")
        .zip(kv.get("time"))
        .and_then(|(d, t)| crate::time::date_time(d, t, None));
    Some(
        Draft::new(kind, sev)
            .time(time)
            .vendor("Fortinet")
            .model(kv.get("device_id"))
            .summary(kv.any(&["msg", "sub_type"]).unwrap_or(ty))
            .fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn every_type_sample_is_fortiweb_with_its_case() {
        for (ty, _, line) in TYPES {
            let n = auto(line, "fortiweb");
            let k = &n.message.kind;
            let ok = match *ty {
                "attack" => matches!(k, Kind::WebAttack(_)),
                "traffic" => matches!(k, Kind::FirewallTrafficLog(_)),
                _ => matches!(k, Kind::SystemAccessLog(_)),
            };
            assert!(ok, "{ty}: {k:?}");
        }
    }

    #[test]
    fn attack_keeps_the_request() {
        let n = auto(TYPES[0].2, "fortiweb");
        let Kind::WebAttack(w) = &n.message.kind else {
            panic!()
        };
        assert_eq!(w.attack_type, Some(WebAttackType::SqlInjection));
        assert_eq!(w.src_ip, ip("198.51.100.61"));
        assert_eq!(w.req_host.as_deref(), Some("shop.example.com"));
        assert_eq!(w.rule_name, "030000136");
        let n = auto(TYPES[1].2, "fortiweb");
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.url.as_deref(), Some("/login"));
        assert_eq!(f.http_method.as_deref(), Some("POST"));
        assert_eq!(f.http_status, Some(302));
    }
}
