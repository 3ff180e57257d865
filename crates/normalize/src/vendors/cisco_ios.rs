//! Cisco IOS, IOS-XE and NX-OS `%FACILITY-[SUBFACILITY-]SEVERITY-MNEMONIC: text` messages.
//!
//! Header forms: the tag after a syslog header, a sequence number (`000123: `), a device
//! timestamp with or without `*`/`.` (`*Mar  1 00:01:02.123 UTC: `), a hostname, or alone.
//!
//! Mapping: the table [`MNEMONICS`] ((facility, mnemonic) -> [`Class`], with a sample line per
//! row, all checked by the tests): ACL logs (`SEC-6-IPACCESSLOG*`, `IPV6_ACL`, NX-OS `ACLLOG`,
//! zone firewall drops) -> firewall traffic log; IPS/IDS signatures -> intrusion; logins
//! (`SEC_LOGIN`, `SSH`, NX-OS `AUTHPRIV`, `DOT1X`, `SNMP` auth failures) -> system access log
//! (success) or user activity log (failure, logout); `SYS-5-CONFIG_I` -> system event
//! (configuration change); `PARSER-5-CFGLOG_LOGGEDCMD` -> system access log (configuration);
//! `LINK`/`LINEPROTO` up/down -> system alarm (interface). Other rows (TCP MD5 failures, routing
//! adjacencies, port security, MAC flaps ...) are generic logs carrying their fields. A mnemonic
//! outside the table is a generic log carrying the addresses and user its text names (unparsed
//! when it names none). The `FACILITY-SEVERITY-MNEMONIC` tag is `envelope/fields/message-id`.

use std::net::IpAddr;

use pharos_model::ident::{InterfaceState, OperationType, SystemAlarmCategory};
use pharos_model::{Kind, Severity, SystemAlarm};

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};

use super::Probe;

const RULE: &str = "cisco-ios-unknown-rule";

/// A `%FAC-n-MNEMONIC:` tag in the first part of the text (not an ASA/FTD tag).
pub fn detect(p: &Probe<'_, '_>) -> bool {
    find_tag(p.input.text).is_some()
}

/// What a mnemonic means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// ACL / firewall packet log (action from the text).
    Fw,
    /// IPS / IDS signature.
    Ips,
    /// Administrator login accepted.
    LoginOk,
    /// Login refused.
    LoginFail,
    /// Login result in the text (`Succeeded` / `Failed`, `failure`).
    LoginResult,
    Logout,
    Config,
    Command,
    /// Interface or line protocol state change.
    Iface,
    /// An event without an I2NSF case: a generic log carrying its fields.
    Event,
}

use Class as C;

/// (facility, mnemonic) -> class, with a sample line written from Cisco's system message guides.
#[rustfmt::skip]
pub(super) const MNEMONICS: &[(&str, &str, Class, &str)] = &[
    ("SEC", "IPACCESSLOGP", C::Fw, "000123: *Mar  1 00:01:02.123 UTC: %SEC-6-IPACCESSLOGP: list 101 denied tcp 10.1.1.1(1234) -> 10.2.2.2(80), 1 packet"),
    ("SEC", "IPACCESSLOGDP", C::Fw, "000124: *Mar  1 00:01:03.123 UTC: %SEC-6-IPACCESSLOGDP: list 102 denied icmp 10.1.1.1 -> 10.2.2.2 (8/0), 1 packet"),
    ("SEC", "IPACCESSLOGNP", C::Fw, "000125: *Mar  1 00:01:04.123 UTC: %SEC-6-IPACCESSLOGNP: list 103 permitted 47 10.1.1.1 -> 10.2.2.2, 3 packets"),
    ("SEC", "IPACCESSLOGS", C::Fw, "000126: *Mar  1 00:01:05.123 UTC: %SEC-6-IPACCESSLOGS: list 10 denied 10.1.1.1 1 packet"),
    ("SEC", "IPACCESSLOGRP", C::Fw, "000127: Mar  1 00:01:06: %SEC-6-IPACCESSLOGRP: list 104 denied igmp 10.1.1.1 -> 224.0.0.22, 2 packets"),
    ("IPV6_ACL", "ACCESSLOGP", C::Fw, "%IPV6_ACL-6-ACCESSLOGP: list ACL-IPv6-IN/10 permitted tcp 2001:db8::3(1027) -> 2001:db8:1000::1(22), 9 packets"),
    ("ACLLOG", "ACLLOG_FLOW_INTERVAL", C::Fw, "2023 Jan 10 10:00:00 nx1 %ACLLOG-5-ACLLOG_FLOW_INTERVAL: Src IP: 10.0.0.9, Dst IP: 192.0.2.9, Src MAC: 0011.2233.4455, Dst MAC: 0011.2233.4466, Src Port: 40000, Dst Port: 80, Src Intf: Ethernet1/1, Protocol: \"TCP\"(6), Hit-count = 5"),
    ("ACLLOG", "ACLLOG_NEW_FLOW", C::Fw, "2023 Jan 10 10:00:00 nx1 %ACLLOG-5-ACLLOG_NEW_FLOW: Src IP: 10.0.0.9, Dst IP: 192.0.2.9, Src MAC: 0011.2233.4455, Dst MAC: 0011.2233.4466, Src Port: 40001, Dst Port: 443, Src Intf: Ethernet1/1, Protocol: \"TCP\"(6), Hit-count = 1"),
    ("FW", "DROP_PKT", C::Fw, "%FW-6-DROP_PKT: Dropping tcp session 10.0.0.9:40000 192.0.2.9:23 on zone-pair in-out class class-default with ip ident 0"),
    ("FW", "SESS_AUDIT_TRAIL_START", C::Fw, "%FW-6-SESS_AUDIT_TRAIL_START: (target:class)-(in-out:web):Start http session: initiator (10.0.0.9:40000) -- responder (192.0.2.9:80)"),
    ("FW", "SESS_AUDIT_TRAIL", C::Fw, "%FW-6-SESS_AUDIT_TRAIL: (target:class)-(in-out:web):Stop http session: initiator (10.0.0.9:40000) sent 420 bytes -- responder (192.0.2.9:80) sent 8800 bytes"),
    ("IPS", "SIGNATURE", C::Ips, "%IPS-4-SIGNATURE: Sig:1107 Subsig:0 Sev:25 RFC1918 address [192.168.121.1:137 -> 192.168.121.255:137]"),
    ("IDS", "ICMP_ECHO_SIG", C::Ips, "%IDS-4-ICMP_ECHO_SIG: Sig:2004:ICMP Echo Request - from 10.0.0.9 to 192.0.2.9"),
    ("SEC_LOGIN", "LOGIN_SUCCESS", C::LoginOk, "%SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: admin] [Source: 10.0.0.9] [localport: 22] at 00:01:02 UTC Mon Mar 1 2021"),
    ("SEC_LOGIN", "LOGIN_FAILED", C::LoginFail, "%SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: admin] [Source: 10.0.0.9] [localport: 22] [Reason: Login Authentication Failed] at 00:01:02 UTC Mon Mar 1 2021"),
    ("SEC_LOGIN", "QUIET_MODE_ON", C::Event, "%SEC_LOGIN-1-QUIET_MODE_ON: Still timeleft for watching failures is 100 secs, [user: admin] [Source: 10.0.0.9] [localport: 22] [Reason: Login Authentication Failed] [ACL: sl_def_acl] at 00:01:02 UTC Mon Mar 1 2021"),
    ("SSH", "SSH2_USERAUTH", C::LoginResult, "%SSH-5-SSH2_USERAUTH: User 'admin' authentication for SSH2 Session from 10.0.0.9 (tty = 0) using crypto cipher 'aes256-ctr', hmac 'hmac-sha2-256' Succeeded"),
    ("SSH", "SSH2_SESSION", C::Event, "%SSH-5-SSH2_SESSION: SSH2 Session request from 10.0.0.9 (tty = 0) using crypto cipher 'aes256-ctr', hmac 'hmac-sha2-256' Succeeded"),
    ("SSH", "SSH2_CLOSE", C::Logout, "%SSH-5-SSH2_CLOSE: SSH2 Session from 10.0.0.9 (tty = 0) for user 'admin' using crypto cipher 'aes256-ctr', hmac 'hmac-sha2-256' closed"),
    ("SYS", "LOGOUT", C::Logout, "%SYS-6-LOGOUT: User admin has exited tty session 2(10.0.0.9)"),
    ("SYS", "CONFIG_I", C::Config, "Mar  1 00:01:02.123: %SYS-5-CONFIG_I: Configured from console by admin on vty0 (10.0.0.9)"),
    ("SYS", "RELOAD", C::Event, "%SYS-5-RELOAD: Reload requested by admin on vty0 (10.0.0.9). Reload Reason: Reload Command."),
    ("PARSER", "CFGLOG_LOGGEDCMD", C::Command, "%PARSER-5-CFGLOG_LOGGEDCMD: User:admin  logged command:interface GigabitEthernet0/1"),
    ("AUTHPRIV", "SYSTEM_MSG", C::LoginResult, "2023 Jan 10 10:00:00 nx1 %AUTHPRIV-3-SYSTEM_MSG: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.9  user=admin - sshd[1234]"),
    ("DOT1X", "FAIL", C::LoginFail, "%DOT1X-5-FAIL: Authentication failed for client (0011.2233.4455) on Interface Gi1/0/1 AuditSessionID 0A0A0A0A0000001"),
    ("DOT1X", "SUCCESS", C::Event, "%DOT1X-5-SUCCESS: Authentication successful for client (0011.2233.4455) on Interface Gi1/0/1 AuditSessionID 0A0A0A0A0000001"),
    ("SNMP", "AUTHFAIL", C::LoginFail, "%SNMP-3-AUTHFAIL: Authentication failure for SNMP req from host 10.0.0.9"),
    ("LINK", "UPDOWN", C::Iface, "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"),
    ("LINK", "CHANGED", C::Iface, "%LINK-5-CHANGED: Interface GigabitEthernet0/2, changed state to administratively down"),
    ("LINEPROTO", "UPDOWN", C::Iface, "%LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1, changed state to up"),
    ("ETHPORT", "IF_DOWN_LINK_FAILURE", C::Iface, "2023 Jan 10 10:00:00 nx1 %ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface Ethernet1/5 is down (Link failure)"),
    ("TCP", "BADAUTH", C::Event, "%TCP-6-BADAUTH: Invalid MD5 digest from 10.0.0.1(179) to 10.0.0.2(40000) tableid - 0"),
    ("BGP", "ADJCHANGE", C::Event, "%BGP-5-ADJCHANGE: neighbor 192.0.2.1 Down BGP Notification sent"),
    ("OSPF", "ADJCHG", C::Event, "%OSPF-5-ADJCHG: Process 1, Nbr 192.0.2.1 on GigabitEthernet0/1 from FULL to DOWN, Neighbor Down: Dead timer expired"),
    ("PORT_SECURITY", "PSECURE_VIOLATION", C::Event, "%PORT_SECURITY-2-PSECURE_VIOLATION: Security violation occurred, caused by MAC address 0011.2233.4455 on port GigabitEthernet1/0/1."),
    ("SW_MATM", "MACFLAP_NOTIF", C::Event, "%SW_MATM-4-MACFLAP_NOTIF: Host 0011.2233.4455 in vlan 10 is flapping between port Gi1/0/1 and port Gi1/0/2"),
    ("IP", "DUPADDR", C::Event, "%IP-4-DUPADDR: Duplicate address 10.0.0.9 on Vlan10, sourced by 0011.2233.4455"),
    ("MAB", "FAIL", C::LoginFail, "%MAB-5-FAIL: Authentication failed for client (0011.2233.4455) on Interface Gi1/0/2 AuditSessionID 0A0A0A0A0000002"),
    ("SYS", "CLOCKUPDATE", C::Event, "%SYS-6-CLOCKUPDATE: System clock has been updated from 10:00:00 UTC Mon Mar 1 2021 to 10:05:00 UTC Mon Mar 1 2021, configured from console by admin."),
    ("STORM_CONTROL", "FILTERED", C::Event, "%STORM_CONTROL-3-FILTERED: A packet storm was detected on Gi1/0/1. A packet filter action has been applied on the interface."),
    ("DHCP_SNOOPING", "DHCP_SNOOPING_UNTRUSTED_PORT", C::Event, "%DHCP_SNOOPING-5-DHCP_SNOOPING_UNTRUSTED_PORT: DHCP_SNOOPING drop message on untrusted port, message type: DHCPOFFER, MAC sa: 0011.2233.4455"),
    ("VSHD", "VSHD_SYSLOG_CONFIG_I", C::Config, "2023 Jan 10 10:00:00 nx1 %VSHD-5-VSHD_SYSLOG_CONFIG_I: Configured from vty by admin on 10.0.0.9@pts/0"),
    ("SECURITY-SSHD", "INFO_SUCCESS", C::LoginOk, "RP/0/RSP0/CPU0:Mar  1 10:00:00.000 UTC: sshd[65781]: %SECURITY-SSHD-6-INFO_SUCCESS : Successfully authenticated user 'admin' from '10.0.0.9' on 'vty0'(cipher 'aes128-ctr', mac 'hmac-sha1')"),
    ("SECURITY-LOGIN", "AUTHEN_FAILED", C::LoginFail, "RP/0/RSP0/CPU0:Mar  1 10:00:01.000 UTC: exec[65782]: %SECURITY-LOGIN-4-AUTHEN_FAILED : Failed authentication attempt by user 'root' from '198.51.100.9' on 'vty1'"),
    ("MGBL-CONFIG", "DB_COMMIT", C::Config, "RP/0/RSP0/CPU0:Mar  1 10:00:02.000 UTC: config[65783]: %MGBL-CONFIG-6-DB_COMMIT : Configuration committed by user 'admin'. Use 'show configuration commit changes 1000000001' to view the changes."),
];

/// The tag of a message.
struct Tag<'a> {
    facility: &'a str,
    level: u8,
    mnemonic: &'a str,
    /// `FACILITY-n-MNEMONIC`.
    whole: &'a str,
    msg: &'a str,
}

/// `FAC[-SUB]-n-MNEMONIC: text` after the `%`.
fn parse_tag(s: &str) -> Option<Tag<'_>> {
    let colon = s.get(..s.len().min(80))?.find(':')?;
    // IOS XR puts a space before the colon
    let whole = s.get(..colon)?.trim_end();
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    let (head, mnemonic) = whole.rsplit_once('-')?;
    let (facility, level) = head.rsplit_once('-')?;
    if level.len() != 1 || !ok(mnemonic) || !facility.split('-').all(ok) {
        return None;
    }
    let level = level.parse().ok().filter(|l| *l <= 7)?;
    if matches!(facility, "ASA" | "FTD" | "PIX" | "FWSM" | "NGIPS")
        || !facility.bytes().next()?.is_ascii_uppercase()
    {
        return None;
    }
    Some(Tag {
        facility,
        level,
        mnemonic,
        whole,
        msg: s.get(colon + 1..)?.trim(),
    })
}

fn find_tag(t: &str) -> Option<Tag<'_>> {
    let head = t.as_bytes().get(..t.len().min(256))?;
    memchr::memchr_iter(b'%', head)
        .take(8)
        .find_map(|at| parse_tag(t.get(at + 1..)?))
}

fn severity(level: u8) -> Severity {
    build::syslog_severity(Some(level))
}

/// Normalises one IOS/NX-OS message.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let tag = find_tag(input.text)?;
    let class = MNEMONICS
        .iter()
        .find(|(f, m, _, _)| *f == tag.facility && *m == tag.mnemonic)
        .map(|r| r.2);
    let sev = severity(tag.level);
    let draft = match class {
        Some(c) => map(c, &tag, sev),
        None => {
            let p = parts(&tag);
            if p.flow == Flow::default() && p.user.is_none() {
                Draft::new(build::unmapped("cisco-ios message without a mapping"), sev)
            } else {
                build::fw_draft(FwClass::Event, &p, RULE, sev)
            }
        }
    };
    Some(draft.vendor("Cisco").model(Some("IOS")).summary(tag.msg))
}

/// `a.b.c.d(port)`, `a.b.c.d:port`, `[a.b.c.d:port`, `(a.b.c.d:port)`, `a.b.c.d`.
fn endpoint(tok: &str) -> (Option<IpAddr>, Option<u16>) {
    let t = tok
        .trim_start_matches(['(', '[', '\''])
        .trim_end_matches([',', ';', ']', '.', '\'']);
    // NX-OS `10.0.0.9@pts/0`
    let t = t.split('@').next().unwrap_or(t);
    if let Some((a, p)) = t.split_once('(') {
        return match build::ip(a) {
            Some(a) => (Some(a), build::port(p.trim_end_matches(')'))),
            None => (None, None),
        };
    }
    let t = t.trim_end_matches(')');
    match build::ip(t) {
        Some(a) => (Some(a), None),
        None => build::addr_colon_port(t),
    }
}

/// The endpoint in the word after the first `key` (a whole word) followed by one.
fn after(w: &[&str], keys: &[&str]) -> (Option<IpAddr>, Option<u16>) {
    for i in 1..w.len() {
        if w.get(i - 1)
            .is_some_and(|p| keys.iter().any(|k| p.eq_ignore_ascii_case(k)))
            && let Some(t) = w.get(i)
        {
            let e = endpoint(t);
            if e.0.is_some() {
                return e;
            }
        }
    }
    (None, None)
}

/// `[key: value]`, `key: value,`, `key=value` in the text.
fn bracket_value<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let at = msg.find(key)? + key.len();
    let rest = msg.get(at..)?.trim_start();
    let end = rest.find([']', ',', ' ']).unwrap_or(rest.len());
    let v = rest.get(..end)?.trim_matches(['"', '\'']);
    (!v.is_empty()).then_some(v)
}

/// The fields a message's text names.
fn parts<'a>(tag: &Tag<'a>) -> FwParts<'a> {
    let msg = tag.msg;
    let w: Vec<&str> = msg
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .take(64)
        .collect();
    let mut p = FwParts {
        message_id: Some(tag.whole),
        ..Default::default()
    };
    // `A(p) -> B(p)` / `[A:p -> B:p]`
    if let Some(arrow) = w.iter().position(|t| *t == "->") {
        let (sa, sp) = arrow
            .checked_sub(1)
            .and_then(|i| w.get(i))
            .map_or((None, None), |t| endpoint(t));
        let (da, dp) = w.get(arrow + 1).map_or((None, None), |t| endpoint(t));
        p.flow = Flow {
            src_ip: sa,
            src_port: sp,
            dst_ip: da,
            dst_port: dp,
        };
    }
    if p.flow.src_ip.is_none() {
        if let Some(a) = bracket_value(msg, "Src IP:").and_then(build::ip) {
            // NX-OS ACLLOG
            p.flow = Flow {
                src_ip: Some(a),
                src_port: bracket_value(msg, "Src Port:").and_then(build::port),
                dst_ip: bracket_value(msg, "Dst IP:").and_then(build::ip),
                dst_port: bracket_value(msg, "Dst Port:").and_then(build::port),
            };
            p.in_if = bracket_value(msg, "Src Intf:");
            p.proto = bracket_value(msg, "Protocol:").map(|v| v.split('"').next().unwrap_or(v));
            p.action = bracket_value(msg, "Action:");
        } else if let Some(i) = w.iter().position(|t| *t == "session")
            && let (Some(a), ap) = w.get(i + 1).map_or((None, None), |t| endpoint(t))
        {
            // zone firewall `Dropping tcp session A:p B:p`
            let (b, bp) = w.get(i + 2).map_or((None, None), |t| endpoint(t));
            p.flow = Flow {
                src_ip: Some(a),
                src_port: ap,
                dst_ip: b,
                dst_port: bp,
            };
        } else {
            let (sa, sp) = after(
                &w,
                &[
                    "from",
                    "initiator",
                    "host",
                    "rhost",
                    "Nbr",
                    "neighbor",
                    "address",
                    "on",
                ],
            );
            let (sa, sp) = match sa {
                Some(a) => (Some(a), sp),
                None => match bracket_value(msg, "[Source:")
                    .or_else(|| bracket_value(msg, "rhost="))
                    .and_then(build::ip)
                {
                    Some(a) => (Some(a), None),
                    // `on vty0 (10.0.0.9)`, `tty session 2(10.0.0.9)`
                    None => (
                        msg.rsplit_once('(')
                            .and_then(|(_, r)| r.split_once(')'))
                            .and_then(|(a, _)| build::ip(a)),
                        None,
                    ),
                },
            };
            let (da, dp) = after(&w, &["to", "responder"]);
            p.flow = Flow {
                src_ip: sa,
                src_port: sp,
                dst_ip: da,
                dst_port: dp,
            };
        }
    }
    if p.flow.src_ip.is_none() {
        // `list 10 denied 10.1.1.1 1 packet` (standard ACLs log the source only)
        p.flow.src_ip = w
            .iter()
            .position(|t| *t == "denied" || *t == "permitted")
            .and_then(|i| w.get(i + 1))
            .and_then(|t| build::ip(t));
    }
    if let Some(lp) = bracket_value(msg, "[localport:").and_then(build::port) {
        p.flow.dst_port = Some(lp);
    }
    p.user = bracket_value(msg, "[user:")
        .or_else(|| bracket_value(msg, "User:"))
        .or_else(|| bracket_value(msg, " user="))
        .or_else(|| quoted(msg, "User '"))
        .or_else(|| quoted(msg, "user '"))
        .or_else(|| word_after(&w, "by"))
        .or_else(|| word_after(&w, "User"))
        .or_else(|| word_after(&w, "user"));
    if p.proto.is_none() {
        p.proto = w.iter().take(8).copied().find(|t| {
            ["tcp", "udp", "icmp", "igmp", "gre", "esp", "sctp", "icmpv6"]
                .iter()
                .any(|x| t.eq_ignore_ascii_case(x))
        });
    }
    if p.action.is_none() {
        p.action = w.iter().take(6).find_map(|t| {
            [
                ("denied", "deny"),
                ("permitted", "permit"),
                ("Dropping", "drop"),
                ("Stop", "close"),
            ]
            .iter()
            .find(|(x, _)| t.eq_ignore_ascii_case(x))
            .map(|(_, a)| *a)
        });
        if p.action.is_none() && msg.contains("):Start ") {
            p.action = Some("start");
        } else if p.action.is_none() && msg.contains("):Stop ") {
            p.action = Some("close");
        }
    }
    if tag.facility.ends_with("ACL") || tag.facility == "SEC" {
        // `list NAME permitted`
        p.rule = w
            .iter()
            .position(|t| *t == "list")
            .and_then(|i| w.get(i + 1))
            .copied();
    }
    p.sent = msg
        .split("sent ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok());
    p.received = msg
        .split("sent ")
        .nth(2)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok());
    p.msg = bracket_value(msg, "[Reason:").map(|_| {
        msg.split("[Reason: ")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap_or(msg)
    });
    p
}

fn quoted<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let at = msg.find(key)? + key.len();
    let rest = msg.get(at..)?;
    rest.split_once('\'').map(|(v, _)| v)
}

/// The word after `key`, when it looks like a user name.
fn word_after<'a>(w: &[&'a str], key: &str) -> Option<&'a str> {
    let i = w.iter().position(|t| *t == key)?;
    let v = w.get(i + 1)?.trim_end_matches(['.', ',']);
    (!v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@\\".contains(&b))
        && build::ip(v).is_none()
        && !["console", "SNMP", "the", "MAC"].contains(&v)
        && !is_mac(v))
    .then_some(v)
}

/// `0011.2233.4455`: a MAC address in Cisco's dotted form.
fn is_mac(v: &str) -> bool {
    v.len() == 14
        && v.split('.').count() == 3
        && v.split('.')
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn map(class: Class, tag: &Tag<'_>, sev: Severity) -> Draft {
    let mut p = parts(tag);
    let msg = tag.msg;
    match class {
        C::Fw => build::fw_draft(FwClass::Traffic, &p, RULE, sev),
        C::Ips => {
            p.signature = msg
                .split_whitespace()
                .next()
                .filter(|s| s.starts_with("Sig:"));
            p.msg = Some(msg);
            build::fw_draft(FwClass::Ips, &p, RULE, sev)
        }
        C::LoginOk => build::fw_draft(FwClass::AdminLogin, &p, RULE, sev),
        C::LoginFail => build::fw_draft(FwClass::LoginFailed, &p, RULE, sev),
        C::LoginResult => {
            let lower = msg.to_ascii_lowercase();
            let failed = lower.contains("fail");
            let class = if failed {
                FwClass::LoginFailed
            } else if lower.contains("session opened") || lower.contains("succeeded") {
                FwClass::AdminLogin
            } else if lower.contains("session closed") {
                FwClass::Logout
            } else {
                FwClass::Event
            };
            build::fw_draft(class, &p, RULE, sev)
        }
        C::Logout => build::fw_draft(FwClass::Logout, &p, RULE, sev),
        C::Config => {
            p.msg = Some(msg);
            build::fw_draft(FwClass::Config, &p, RULE, sev)
        }
        C::Command => {
            let cmd = msg.split("logged command:").nth(1).map(str::trim);
            let kind = build::access_log(
                p.user,
                p.flow.src_ip,
                p.flow.src_port,
                OperationType::Configuration,
                cmd,
                None,
            );
            let fields = build::fields_beyond_case(&kind, build::fw_fields(&p));
            Draft::new(kind, sev).fields(fields)
        }
        C::Iface => {
            let name = msg
                .split("Interface ")
                .nth(1)
                .and_then(|r| r.split([',', ' ']).next());
            let lower = msg.to_ascii_lowercase();
            let state = if lower.contains("administratively down") || lower.contains("down") {
                InterfaceState::Down
            } else if lower.contains(" up") {
                InterfaceState::Up
            } else {
                InterfaceState::Unknown
            };
            let kind = Kind::SystemAlarm(SystemAlarm {
                alarm_category: Some(SystemAlarmCategory::InterfaceAlarm),
                component_name: None,
                interface_name: name.map(build::clip),
                interface_state: Some(state),
                severity: None,
                usage: None,
                threshold: None,
            });
            Draft::new(kind, sev).fields(build::fw_fields(&FwParts {
                message_id: Some(tag.whole),
                ..Default::default()
            }))
        }
        C::Event => build::fw_draft(FwClass::Event, &p, RULE, sev),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    fn kind_name(k: &Kind) -> &'static str {
        match k {
            Kind::FirewallTrafficLog(_) => "fw",
            Kind::Intrusion(_) => "ids",
            Kind::UserActivityLog(_) => "user",
            Kind::SystemAccessLog(_) => "access",
            Kind::SystemEvent(_) => "event",
            Kind::SystemAlarm(_) => "alarm",
            Kind::GenericLog(_) => "generic",
            _ => "other",
        }
    }

    #[test]
    fn every_table_row_sample_maps_to_its_kind_and_keeps_its_address() {
        for (fac, mn, class, sample) in MNEMONICS {
            let n = auto(sample, "cisco-ios");
            let want = match class {
                C::Fw => "fw",
                C::Ips => "ids",
                C::LoginOk => "access",
                C::LoginFail => "user",
                C::LoginResult => {
                    if sample.contains("fail") {
                        "user"
                    } else {
                        "access"
                    }
                }
                C::Logout => "user",
                C::Config => "event",
                C::Command => "access",
                C::Iface => "alarm",
                C::Event => "generic",
            };
            assert_eq!(
                kind_name(&n.message.kind),
                want,
                "{sample}\n{:?}",
                n.message.kind
            );
            let json = crate::vendors::cisco_asa::parsed_json(&n);
            assert!(json.contains(mn) && json.contains(fac), "{sample}\n{json}");
            let first_ip = sample
                .split([' ', ',', '(', ')', '[', ']', '='])
                .map(|w| w.trim_end_matches(['.', ';']))
                .find(|w| w.parse::<std::net::Ipv4Addr>().is_ok());
            if let Some(a) = first_ip {
                assert!(json.contains(a), "{a} lost: {sample}\n{json}");
            }
        }
    }

    #[test]
    fn acl_log_keeps_list_action_and_ports() {
        let n = auto(MNEMONICS[0].3, "cisco-ios");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.1.1.1"));
        assert_eq!(f.src_port, Some(1234));
        assert_eq!(f.dst_port, Some(80));
        assert_eq!(f.rule_name.as_deref(), Some("101"));
        assert_eq!(f.action, Some(pharos_model::ident::IngressAction::Drop));
    }

    #[test]
    fn login_failure_keeps_user_and_source() {
        let n = auto(
            "<189>52: router1: *Mar  1 00:01:02.123 UTC: %SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: bob] [Source: 10.0.0.7] [localport: 23] [Reason: Login Authentication Failed] at 00:01:02 UTC Mon Mar 1 2021",
            "cisco-ios",
        );
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "bob");
        assert_eq!(u.ip_address, ip("10.0.0.7").unwrap());
    }

    #[test]
    fn badauth_both_port_forms() {
        for line in [
            "%TCP-6-BADAUTH: No MD5 digest from 192.0.2.1(64999) to 224.0.0.18(15448) (RST) tableid - 0",
            "%TCP-6-BADAUTH: No MD5 digest from 192.0.2.1:64999 to 224.0.0.18:15448",
        ] {
            let n = auto(line, "cisco-ios");
            let f = n.message.common.fields.as_deref().unwrap();
            assert_eq!(f.src_port, Some(64999));
            assert_eq!(f.dst_ip, ip("224.0.0.18"));
            assert_eq!(f.dst_port, Some(15448));
        }
    }

    #[test]
    fn asa_tags_and_unknown_mnemonics() {
        let n = crate::normalize(
            &LogInput::line(
                "%ASA-6-302021: Teardown ICMP connection for faddr 192.0.2.15/0 gaddr 192.0.2.134/57808 laddr 192.0.2.134/57808",
            ),
            crate::Format::Auto,
            "x",
        );
        assert_eq!(n.format, "cisco-asa");
        let n = crate::normalize(
            &LogInput::line(
                "%PLATFORM-4-ELEMENT_WARNING: R0/0: smand: 1/1: Used Memory value 91% exceeds warning level 90%",
            ),
            crate::Format::Auto,
            "x",
        );
        assert_eq!(n.format, "cisco-ios");
        assert!(!n.parsed);
    }
}
