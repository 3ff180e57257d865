//! Fortinet FortiMail `key=value` logs (space- or comma-separated): `date= time= device_id=
//! log_id= type=statistics|event|virus|spam|encrypt subtype= pri= from= to= client_ip= dst_ip=
//! ...` (FortiMail Log Reference).
//!
//! Mapping ([`TYPES`]): virus -> virus event; spam -> DPI log (data filtering, the classifier as
//! rule); event admin/system logins and configuration -> as FortiGate's system events; statistics
//! (mail history), encrypt and the rest -> generic logs carrying the mail fields (sender,
//! recipients, client and server addresses, session id, subject as message). Placeholder rule
//! `fortimail-unknown-rule`.

use pharos_model::ident::DpiType;
use pharos_model::{DpiLog, Kind, VirusEvent};

use crate::LogInput;
use crate::build::{self, Draft, ip, port};
use crate::fields::Kv;
use crate::vendors::{Probe, fortigate, probe};

const RULE: &str = "fortimail-unknown-rule";

/// `device_id=` and `log_id=` without FortiWeb's `msg_id=`.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "log_id=") && probe!(p, "device_id=") && !probe!(p, "msg_id=")
}

/// A `type` value, its mapper and a sample line.
type Row = (&'static str, fn(&Kv<'_>) -> Kind, &'static str);

/// FortiMail `type` values to cases, each with a sample line.
const TYPES: &[Row] = &[
    (
        "virus",
        virus,
        r#"date=2023-02-01 time=10:00:00 device_id=FEVM010000000001 log_id=0100000924 type=virus subtype=infected pri=warning session_id="31AA0000001-31AA0000001" client_name="mx.example.org" client_ip=198.51.100.20 dst_ip=10.50.2.25 from="attacker@example.org" to="alice@example.com" subject="invoice" virus="EICAR_TEST_FILE" msg="The file eicar.com is infected with EICAR_TEST_FILE""#,
    ),
    (
        "spam",
        spam,
        r#"date=2023-02-01,time=10:05:00.120,device_id=FEVM010000000001,log_id=0300003065,type=spam,subtype=default,pri=information,session_id="31AA0000002-31AA0000002",client_name="bulk.example.net",client_ip=203.0.113.40,dst_ip=10.50.2.25,endpoint="",from="promo@example.net",to="bob@example.com",subject="Big sale",msg="Detected by BannedWord""#,
    ),
    (
        "statistics",
        fields_only,
        r#"<190>date=2023-02-01 time=10:10:00 device_id=FEVM010000000001 log_id=0200025843 type=statistics pri=information session_id="31AA0000003-31AA0000003" client_name="[192.0.2.30]" client_ip=192.0.2.30 dst_ip=10.50.2.25 from="carol@example.org" to="dave@example.com" polid="0:1:0" domain="example.com" subject="hello" mailer="mta" resolved="OK" direction="in" virus="" disposition="Accept" classifier="Not Spam" message_length="2048""#,
    ),
    (
        "encrypt",
        fields_only,
        r#"date=2023-02-01 time=10:15:00 device_id=FEVM010000000001 log_id=0500000001 type=encrypt subtype=ibe pri=information session_id="31AA0000004-31AA0000004" from="erin@example.com" to="frank@example.org" msg="IBE message was encrypted""#,
    ),
    (
        "event",
        fortigate::system,
        r#"date=2023-02-01 time=10:20:00 device_id=FEVM010000000001 log_id=0001001400 type=event subtype=admin pri=warning user=admin ui=GUI(192.0.2.8) action=login status=failed reason="bad password" msg="User admin login failed from GUI(192.0.2.8)""#,
    ),
];

/// A generic log that carries the record's fields.
fn fields_only(_kv: &Kv<'_>) -> Kind {
    build::unmapped("fortimail log kept as fields")
}

/// The flow of a mail: client (sender MTA) to the protected server.
fn flow(kv: &Kv<'_>) -> build::Flow {
    build::Flow {
        src_ip: kv.any(&["client_ip", "src", "srcip"]).and_then(ip),
        src_port: kv.any(&["src_port", "srcport"]).and_then(port),
        dst_ip: kv.any(&["dst_ip", "dst", "dstip"]).and_then(ip),
        dst_port: kv.any(&["dst_port", "dstport"]).and_then(port),
    }
}

fn virus(kv: &Kv<'_>) -> Kind {
    let f = flow(kv);
    let name = kv.get("virus");
    Kind::Virus(VirusEvent {
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        rule_name: build::rule_or(name, RULE),
        virus_name: name.map(build::clip),
        virus_type: name.and_then(build::virus_type),
        host: kv.any(&["client_name", "client_ip"]).map(build::clip),
        file_type: None,
        file_name: kv.any(&["filename", "file_name"]).map(build::clip),
        os: None,
    })
}

fn spam(kv: &Kv<'_>) -> Kind {
    let f = flow(kv);
    Kind::DpiLog(DpiLog {
        attack_type: Some(DpiType::DataFiltering),
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        rule_name: build::rule_or(kv.any(&["classifier", "subtype"]), RULE),
        action: kv
            .any(&["action", "disposition"])
            .and_then(build::action)
            .into_iter()
            .collect(),
    })
}

/// The record as a draft, or `None` when it is not a FortiMail record after all (FortiOS 4
/// FortiGate lines also have `device_id=` and `log_id=`).
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let kv = fortigate::pairs(input.text);
    let ty = kv.get("type")?;
    let fe = kv.get("device_id").is_some_and(|d| d.starts_with("FE"));
    if !fe && !matches!(ty, "statistics" | "spam" | "encrypt") {
        return None;
    }
    let kind = TYPES
        .iter()
        .find(|(t, _, _)| *t == ty)
        .map_or_else(|| fields_only(&kv), |(_, m, _)| m(&kv));
    let mut fields = fortigate::all_fields(&kv);
    fields.src_ip = fields.src_ip.or(flow(&kv).src_ip);
    fields.dst_ip = fields.dst_ip.or(flow(&kv).dst_ip);
    fields.domain = fields
        .domain
        .or_else(|| kv.get("client_name").map(build::clip));
    let fields = build::fields_beyond_case(&kind, fields);
    let time = kv
        .get("date")
        .zip(kv.get("time"))
        .and_then(|(d, t)| crate::time::date_time(d, t, kv.get("tz")));
    let summary = kv.any(&["msg", "subject", "disposition"]).unwrap_or(ty);
    Some(
        Draft::new(kind, fortigate::severity(kv.get("pri")))
            .time(time)
            .vendor("Fortinet")
            .model(kv.get("device_id"))
            .summary(summary)
            .fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    #[test]
    fn every_type_sample_is_fortimail_with_its_case() {
        for (ty, _, line) in TYPES {
            let n = auto(line, "fortimail");
            let k = &n.message.kind;
            let ok = match *ty {
                "virus" => matches!(k, Kind::Virus(_)),
                "spam" => matches!(k, Kind::DpiLog(_)),
                "event" => matches!(k, Kind::UserActivityLog(_)),
                _ => matches!(k, Kind::GenericLog(_)),
            };
            assert!(ok, "{ty}: {k:?}");
            assert!(n.message.common.fields.is_some(), "{ty}");
        }
    }

    #[test]
    fn comma_form_spam_keeps_addresses_and_mail_fields() {
        let n = auto(TYPES[1].2, "fortimail");
        let Kind::DpiLog(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.src_ip, ip("203.0.113.40"));
        assert_eq!(d.dst_ip, ip("10.50.2.25"));
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.mail_from.as_deref(), Some("promo@example.net"));
        assert_eq!(f.mail_to.as_deref(), Some("bob@example.com"));
        assert_eq!(f.message_id.as_deref(), Some("0300003065"));
        let n = auto(TYPES[2].2, "fortimail");
        let f = n.message.common.fields.as_deref().unwrap();
        assert_eq!(f.src_ip, ip("192.0.2.30"));
    }
}
