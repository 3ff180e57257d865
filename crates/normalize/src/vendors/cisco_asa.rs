//! Cisco ASA, FTD, PIX, FWSM and FirePOWER (NGIPS) `%ASA-<level>-<id>: text` messages.
//!
//! Header forms: the tag anywhere in the first part of the line (`%ASA-6-302013:`,
//! `%FTD-6-...`, `%FTD-auth-6-113039:` with a facility word, `%NGIPS-0-430003:`), after a syslog
//! header or a bare device timestamp and hostname, a doubled tag (`%FTD-6-113005: %ASA-6-113005:`)
//! and `message repeated N times: [ ... ]` wrappers.
//!
//! Mapping: the table [`IDS`] (message id -> [`Class`], with a sample line per row, all checked
//! by the tests): connection built/teardown, ACL permits/denies, protocol anomaly drops and
//! access to the box -> firewall traffic log; threat detection 733100/733101 -> DDoS (the
//! scanning class -> intrusion); IPS 4000xx and 420002 -> intrusion; dynamic filter 338xxx ->
//! botnet; URL filtering 304xxx -> DPI log; AAA/VPN logins and sessions -> user activity log;
//! management logins -> system access log; executed commands -> system access log
//! (configuration); configuration and local-user changes -> system event; memory/CPU reports ->
//! resource utilisation; interface status 411xxx -> system alarm (interface); SIP, Skinny and
//! CTIQBE pinholes -> firewall traffic log (pass, from the peer); FTD/NGIPS 430001 (intrusion), 430002/430003 (connection), 430004 (file)
//! and 430005 (malware) key-value events -> intrusion, firewall traffic log, DPI log, virus.
//! Other table rows (NAT translations, VPN session details, SSL handshakes ...) are generic logs
//! carrying their fields. Every mapped message keeps its id in `envelope/fields/message-id`. Ids
//! outside the table are recognised (`format` cisco-asa, severity from the tag) and stored as
//! generic logs carrying the addresses and user their text names, or as unparsed generic logs
//! when it names none. Rule names: the ACL (access-group) name or the IPS signature id;
//! placeholder `cisco-asa-unknown-rule`.

use std::net::IpAddr;

use pharos_model::ident::{
    DpiType, IngressAction, InterfaceState, OperationType, SystemAlarmCategory, UserActivityType,
};
use pharos_model::{
    BotnetEvent, DdosEvent, DpiLog, FirewallTrafficLog, IntrusionEvent, Kind,
    ResourceUtilizationLog, Severity, SystemAlarm,
};

use crate::LogInput;
use crate::build::{self, Draft, Flow, FwClass, FwParts};
use crate::vendors::{Lit, Probe, has, probe, second_piece};

const RULE: &str = "cisco-asa-unknown-rule";

/// `%ASA-`, `%FTD-`, `%PIX-`, `%FWSM-` or `%NGIPS-` tags.
pub fn detect(p: &Probe<'_, '_>) -> bool {
    probe!(p, "%ASA-")
        || probe!(p, "%FTD-")
        || probe!(p, "%PIX-")
        || probe!(p, "%FWSM-")
        || probe!(p, "%NGIPS-")
}

/// What a message id means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Firewall traffic with this action.
    Fw(IngressAction),
    /// 302013/302015/302020...: the direction word decides who initiated.
    Built,
    /// 106100/106102/106103: `permitted` / `denied` in the text, `iface/addr(port) -> ...`.
    Acl,
    /// 304001/304002: URL accessed or denied.
    Url(IngressAction),
    /// 607001: a SIP pinhole; the peer after `to` will send to the endpoint after `for`.
    Pinhole,
    ThreatRate,
    ThreatHost,
    Ips,
    DynFilter,
    /// AAA / VPN user authenticated or session started.
    AuthOk,
    /// AAA / VPN user refused.
    AuthFail,
    /// Administrator logged in to the box.
    AdminOk,
    /// User session ended.
    Logout,
    Lock,
    Command,
    Config,
    Memory,
    Cpu,
    /// Interface line protocol / configuration status change.
    Iface,
    /// An event without an I2NSF case: a generic log carrying its fields.
    Event,
    /// FTD/NGIPS 430002/430003 connection events.
    FtdConn,
    /// FTD/NGIPS 430001 intrusion events.
    FtdIps,
    /// FTD/NGIPS 430004 file events.
    FtdFile,
    /// FTD/NGIPS 430005 malware events.
    FtdMalware,
}

use Class as C;
use IngressAction::{Drop as DROP, Pass as PASS};

/// Message id -> class, with a sample line (from the Cisco ASA/FTD syslog message guides) that
/// the tests normalise.
#[rustfmt::skip]
const IDS: &[(u32, Class, &str)] = &[
    // 106xxx: ACL and packet denies
    (106001, C::Fw(DROP), "%ASA-2-106001: Inbound TCP connection denied from 198.51.100.7/4455 to 10.0.0.5/23 flags SYN on interface outside"),
    (106002, C::Fw(DROP), "%ASA-2-106002: udp connection denied by outbound list acl_out src 10.0.0.5 dest 198.51.100.7"),
    (106006, C::Fw(DROP), "%ASA-2-106006: Deny inbound UDP from 192.0.2.66/137 to 10.1.2.42/137 on interface inside"),
    (106007, C::Fw(DROP), "%ASA-2-106007: Deny inbound UDP from 192.0.2.66/53 to 10.1.2.42/5353 due to DNS Response"),
    (106010, C::Fw(DROP), "%ASA-3-106010: Deny inbound protocol 47 src outside:192.0.2.9 dst inside:10.0.0.9"),
    (106011, C::Fw(DROP), "%ASA-3-106011: Deny inbound (No xlate) udp src outside:192.0.2.9/500 dst inside:10.0.0.9/500"),
    (106012, C::Fw(DROP), "%ASA-6-106012: Deny IP from 192.0.2.9 to 10.0.0.9, IP options: \"Router Alert\""),
    (106014, C::Fw(DROP), "%ASA-3-106014: Deny inbound icmp src outside:192.0.2.9 dst inside:10.0.0.9 (type 8, code 0)"),
    (106015, C::Fw(DROP), "%ASA-6-106015: Deny TCP (no connection) from 10.0.0.9/443 to 192.0.2.9/52001 flags RST  on interface inside"),
    (106016, C::Fw(DROP), "%ASA-2-106016: Deny IP spoof from (10.1.1.1) to 192.0.2.9 on interface outside"),
    (106017, C::Fw(DROP), "%ASA-2-106017: Deny IP due to Land Attack from 10.0.0.9 to 10.0.0.9"),
    (106018, C::Fw(DROP), "%ASA-2-106018: ICMP packet type 8 denied by outbound list acl_out src 10.0.0.9 dest 192.0.2.9"),
    (106020, C::Fw(DROP), "%ASA-2-106020: Deny IP teardrop fragment (size = 1500, offset = 0) from 192.0.2.9 to 10.0.0.9"),
    (106021, C::Fw(DROP), "%ASA-1-106021: Deny TCP reverse path check from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (106022, C::Fw(DROP), "%ASA-1-106022: Deny TCP connection spoof from 192.0.2.9 to 10.0.0.9 on interface inside"),
    (106023, C::Fw(DROP), "%ASA-4-106023: Deny tcp src inside:10.11.11.1/2143 dst dmz:172.16.1.11/139 by access-group \"inside_access_in\" [0x0, 0x0]"),
    (106027, C::Fw(DROP), "%ASA-4-106027: Deny src 10.0.0.9 dst 192.0.2.9 by access-group \"ethertype_acl\""),
    (106029, C::Fw(DROP), "%ASA-4-106029: Deny tcp src outside:192.0.2.9/4000 dst inside:10.0.0.9/25 by access-group \"out_in\""),
    (106100, C::Acl, "%ASA-6-106100: access-list inside_in permitted tcp inside/10.0.0.9(4431) -> outside/192.0.2.9(443) hit-cnt 1 first hit [0x1a2b3c4d, 0x0]"),
    (106102, C::Acl, "%ASA-6-106102: access-list vpn_filter denied udp for user 'alice' outside/10.8.0.5(5353) -> inside/10.0.0.9(53) hit-cnt 1 first hit [0x0, 0x0]"),
    (106103, C::Acl, "%ASA-4-106103: access-list vpn_filter denied tcp for user 'bob' outside/10.8.0.6(40000) -> inside/10.0.0.9(22) first hit [0x0, 0x0]"),
    // 109xxx: cut-through proxy AAA
    (109001, C::Event, "%ASA-6-109001: Auth start for user 'alice' from 10.0.0.9/3300 to 192.0.2.9/80"),
    (109005, C::AuthOk, "%ASA-6-109005: Authentication succeeded for user 'alice' from 10.0.0.9/3300 to 192.0.2.9/80 on interface inside"),
    (109006, C::AuthFail, "%ASA-6-109006: Authentication failed for user 'alice' from 10.0.0.9/3300 to 192.0.2.9/80 on interface inside"),
    (109007, C::AuthOk, "%ASA-6-109007: Authorization permitted for user 'alice' from 10.0.0.9/3300 to 192.0.2.9/80 on interface inside"),
    (109008, C::AuthFail, "%ASA-6-109008: Authorization denied for user 'alice' from 10.0.0.9/3300 to 192.0.2.9/80 on interface inside"),
    // 111xxx: configuration and commands
    (111001, C::Config, "%ASA-5-111001: Begin configuration: 10.0.0.9 writing to memory"),
    (111002, C::Config, "%ASA-5-111002: Begin configuration: 10.0.0.9 reading from device"),
    (111003, C::Config, "%ASA-5-111003: 10.0.0.9 Erase configuration"),
    (111004, C::Config, "%ASA-5-111004: 10.0.0.9 end configuration: OK"),
    (111005, C::Config, "%ASA-5-111005: 10.0.0.9 end configuration: OK"),
    (111007, C::Config, "%ASA-5-111007: Begin configuration: 10.0.0.9 reading from terminal."),
    (111008, C::Command, "%ASA-5-111008: User 'admin' executed the 'write memory' command."),
    (111009, C::Command, "%ASA-7-111009: User 'admin' executed cmd: show running-config"),
    (111010, C::Command, "%ASA-5-111010: User 'admin', running 'CLI' from IP 10.0.0.9, executed 'no access-list acl_in'"),
    // 113xxx: AAA and VPN sessions
    (113003, C::Event, "%ASA-6-113003: AAA group policy for user alice is being set to Sales"),
    (113004, C::AuthOk, "%ASA-6-113004: AAA user authentication Successful : server = 10.0.1.20 : user = alice"),
    (113005, C::AuthFail, "%ASA-6-113005: AAA user authentication Rejected : reason = Invalid password : server = 10.0.1.20 : user = alice : user IP = 10.0.100.30"),
    (113006, C::Lock, "%ASA-6-113006: User 'alice' locked out on exceeding '3' successive failed authentication attempts"),
    (113008, C::AuthOk, "%ASA-6-113008: AAA transaction status ACCEPT : user = alice"),
    (113009, C::Event, "%ASA-6-113009: AAA retrieved default group policy (DfltGrpPolicy) for user = alice"),
    (113011, C::Event, "%ASA-6-113011: AAA retrieved user specific group policy (Sales) for user = alice"),
    (113012, C::AuthOk, "%ASA-6-113012: AAA user authentication Successful : local database : user = alice"),
    (113013, C::AuthFail, "%ASA-6-113013: AAA unable to complete the request Error : reason = Simultaneous logins exceeded for user : user = alice"),
    (113014, C::AuthFail, "%ASA-6-113014: AAA authentication server not accessible : server = 10.0.1.20 : user = alice"),
    (113015, C::AuthFail, "%ASA-6-113015: AAA user authentication Rejected : reason = Invalid password : local database : user = admin : user IP = 10.2.2.2"),
    (113016, C::AuthFail, "%ASA-6-113016: AAA credentials rejected : reason = Invalid password : server = 10.0.1.20 : user = alice : user IP = 10.0.100.30"),
    (113019, C::Logout, "%ASA-4-113019: Group = VPN, Username = abcd, IP = 198.51.100.30, Session disconnected. Session Type: SSL, Duration: 1h:24m:30s, Bytes xmt: 2529, Bytes rcv: 1254, Reason: User Requested"),
    (113021, C::AuthFail, "%ASA-3-113021: Attempted console login failed user 'alice' did NOT have appropriate Admin Rights."),
    (113029, C::AuthFail, "%ASA-4-113029: Group VPN_USERS User alice IP 198.51.100.14 Session could not be established: session limit of 5 reached"),
    (113030, C::AuthFail, "%ASA-4-113030: Group VPN_USERS User alice IP 198.51.100.14 User ACL acl from AAA doesn't exist on the device, terminating connection."),
    (113031, C::Event, "%ASA-4-113031: Group VPN_USERS User alice IP 198.51.100.14 AnyConnect vpn-filter filter is an IPv6 ACL; ACL not applied."),
    (113032, C::Event, "%ASA-4-113032: Group VPN_USERS User alice IP 198.51.100.14 AnyConnect ipv6-vpn-filter filter is an IPv4 ACL; ACL not applied."),
    (113033, C::AuthFail, "%ASA-6-113033: Group VPN_USERS User alice IP 198.51.100.14 AnyConnect session not allowed. ACL parse error."),
    (113034, C::Event, "%ASA-4-113034: Group VPN_USERS User alice IP 198.51.100.14 User ACL ACL123 from AAA ignored, AV-PAIR ACL used instead."),
    (113035, C::AuthFail, "%ASA-4-113035: Group VPN_USERS User alice IP 198.51.100.14 Session terminated: AnyConnect not enabled or invalid AnyConnect image on the ASA."),
    (113036, C::Event, "%ASA-4-113036: Group VPN_USERS User alice IP 198.51.100.14 AAA parameter PARAM value invalid."),
    (113037, C::AuthFail, "%ASA-6-113037: Reboot pending, new sessions disabled. Denied user login."),
    (113038, C::AuthFail, "%ASA-4-113038: Group VPN_USERS User alice IP 198.51.100.14 Unable to create AnyConnect parent session."),
    (113039, C::AuthOk, "%ASA-6-113039: Group <GroupPolicy_Remote-VPN> User <alice> IP <198.51.100.14> AnyConnect parent session started."),
    (113040, C::AuthFail, "%ASA-4-113040: Terminating the VPN connection attempt from VPN_USERS. Reason: This connection is group locked to OTHER_VPN_USERS."),
    // 302xxx: connections
    (302013, C::Built, "%ASA-6-302013: Built outbound TCP connection 1234 for outside:198.51.100.7/443 (198.51.100.7/443) to inside:10.0.0.5/51000 (203.0.113.9/51000)"),
    (302014, C::Fw(PASS), "%ASA-6-302014: Teardown TCP connection 1234 for outside:198.51.100.7/443 to inside:10.0.0.5/51000 duration 0:01:05 bytes 6543 TCP FINs"),
    (302015, C::Built, "%ASA-6-302015: Built inbound UDP connection 5678 for outside:198.51.100.7/53 (198.51.100.7/53) to inside:10.0.0.5/5353 (10.0.0.5/5353)"),
    (302013, C::Built, "%ASA-6-302013: Built inbound TCP connection 4712 for outside:198.51.100.8/40100 (198.51.100.8/40100)(LOCAL\\bob) to inside:10.0.0.6/443 (203.0.113.10/443)"),
    (302016, C::Fw(PASS), "%ASA-6-302016: Teardown UDP connection 5678 for outside:198.51.100.7/53(LOCAL\\alice) to inside:10.0.0.5/5353 duration 0:00:01 bytes 148"),
    (302020, C::Built, "%ASA-6-302020: Built inbound ICMP connection for faddr 203.0.113.20/28416 gaddr 198.51.100.10/0 laddr 192.0.2.30/0 type 8 code 0"),
    (302021, C::Fw(PASS), "%ASA-6-302021: Teardown ICMP connection for faddr 192.0.2.15/0 gaddr 192.0.2.134/57808 laddr 192.0.2.134/57808 type 8 code 0"),
    (302023, C::Built, "%ASA-6-302023: Built inbound GRE connection 77 for outside:198.51.100.7 (198.51.100.7) to inside:10.0.0.5 (10.0.0.5)"),
    (302024, C::Fw(PASS), "%ASA-6-302024: Teardown GRE connection 77 for outside:198.51.100.7 to inside:10.0.0.5 duration 0:00:30 bytes 512"),
    // 303xxx / 304xxx: FTP and URL filtering
    (303002, C::Event, "%ASA-6-303002: FTP connection from inside:10.0.0.9/1089 to outside:192.0.2.9/21, user alice Stored file report.txt"),
    (304001, C::Url(PASS), "%ASA-5-304001: 10.0.0.9 Accessed URL 192.0.2.9:http://www.example.com/index.html"),
    (304002, C::Url(DROP), "%ASA-5-304002: Access denied URL http://www.example.com/bad SRC 10.0.0.9 DEST 192.0.2.9 on interface inside"),
    // 305xxx: NAT
    (305005, C::Fw(DROP), "%ASA-3-305005: No translation group found for tcp src inside:10.0.0.9/1234 dst outside:192.0.2.9/80"),
    (305006, C::Fw(DROP), "%ASA-3-305006: portmap translation creation failed for tcp src inside:10.0.0.9/1234 dst outside:192.0.2.9/80"),
    (305009, C::Event, "%ASA-6-305009: Built dynamic translation from inside:10.0.0.9 to outside:203.0.113.5"),
    (305010, C::Event, "%ASA-6-305010: Teardown dynamic translation from inside:10.0.0.9 to outside:203.0.113.5 duration 0:10:00"),
    (305011, C::Event, "%ASA-6-305011: Built dynamic TCP translation from inside:10.0.0.9/1234 to outside:203.0.113.5/40001"),
    (305012, C::Event, "%ASA-6-305012: Teardown dynamic UDP translation from inside:10.0.0.9/1234 to outside:203.0.113.5/40001 duration 0:00:30"),
    (305013, C::Fw(DROP), "%ASA-5-305013: Asymmetric NAT rules matched for forward and reverse flows; Connection for tcp src outside:192.0.2.9/80 dst inside:10.0.0.9/1234 denied due to NAT reverse path failure."),
    // 313xxx: ICMP
    (313001, C::Fw(DROP), "%ASA-3-313001: Denied ICMP type=8, code=0 from 192.0.2.9 on interface outside"),
    (313004, C::Fw(DROP), "%ASA-4-313004: Denied ICMP type=0, from laddr 192.0.2.9 on interface outside to 10.0.0.9: no matching session"),
    (313005, C::Fw(DROP), "%ASA-4-313005: No matching connection for ICMP error message: icmp src outside:192.0.2.9 dst inside:10.0.0.9 (type 3, code 3) on outside interface. Original IP payload: udp src 10.0.0.9/53 dst 192.0.2.9/40000."),
    (313008, C::Fw(DROP), "%ASA-3-313008: Denied ICMPv6 type=128, code=0 from 2001:db8::9 on interface outside"),
    (313009, C::Fw(DROP), "%ASA-4-313009: Denied invalid ICMP code 9, for outside:192.0.2.9/0 (192.0.2.9/0) to inside:10.0.0.9/0 (10.0.0.9/0), ICMP id 1, ICMP type 8"),
    // 321xxx: resources
    (321005, C::Cpu, "%ASA-2-321005: System CPU utilization reached 95%"),
    (321006, C::Memory, "%ASA-2-321006: System Memory usage reached 91%"),
    // 338xxx: botnet traffic filter
    (338001, C::DynFilter, "%ASA-4-338001: Dynamic Filter monitored blacklisted TCP traffic from inside:10.0.0.9/1234 (203.0.113.5/1234) to outside:192.0.2.66/80 (192.0.2.66/80), source 10.0.0.9 resolved from dynamic list: bad.example.com, threat-level: very-high, category: Malware"),
    (338002, C::DynFilter, "%ASA-4-338002: Dynamic Filter monitored blacklisted TCP traffic from inside:10.0.0.9/1234 (203.0.113.5/1234) to outside:192.0.2.66/80 (192.0.2.66/80), destination 192.0.2.66 resolved from dynamic list: bad.example.com, threat-level: high, category: Botnet"),
    (338003, C::DynFilter, "%ASA-4-338003: Dynamic Filter monitored blacklisted UDP traffic from outside:192.0.2.66/53 to inside:10.0.0.9/5353, source 192.0.2.66 resolved from dynamic list: 192.0.2.66/255.255.255.255, threat-level: high, category: Botnet"),
    (338004, C::DynFilter, "%ASA-4-338004: Dynamic Filter monitored blacklisted TCP traffic from inside:10.0.0.9/1234 to outside:192.0.2.66/443, destination 192.0.2.66 resolved from dynamic list: 192.0.2.0/255.255.255.0, threat-level: high, category: Botnet"),
    (338005, C::DynFilter, "%ASA-4-338005: Dynamic Filter dropped blacklisted TCP traffic from outside:192.0.2.66/80 to inside:10.0.0.9/1234, source 192.0.2.66 resolved from dynamic list: bad.example.com, threat-level: very-high, category: Malware"),
    (338006, C::DynFilter, "%ASA-4-338006: Dynamic Filter dropped blacklisted TCP traffic from inside:10.0.0.9/1234 to outside:192.0.2.66/80, destination 192.0.2.66 resolved from dynamic list: bad.example.com, threat-level: very-high, category: Malware"),
    (338007, C::DynFilter, "%ASA-4-338007: Dynamic Filter dropped blacklisted UDP traffic from outside:192.0.2.66/53 to inside:10.0.0.9/5353, source 192.0.2.66 resolved from dynamic list: 192.0.2.66/255.255.255.255, threat-level: high, category: Botnet"),
    (338008, C::DynFilter, "%ASA-4-338008: Dynamic Filter dropped blacklisted TCP traffic from inside:10.0.0.9/1234 to outside:192.0.2.66/443, destination 192.0.2.66 resolved from dynamic list: 192.0.2.0/255.255.255.0, threat-level: high, category: Botnet"),
    // 400xxx / 420xxx: IPS
    (400010, C::Ips, "%ASA-4-400010: IPS:2000 ICMP Echo Reply from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (400013, C::Ips, "%ASA-4-400013: IPS:2003 ICMP redirect from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (400014, C::Ips, "%ASA-4-400014: IPS:2004 ICMP echo request from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (400025, C::Ips, "%ASA-4-400025: IPS:2154 ICMP ping of death from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (400032, C::Ips, "%ASA-4-400032: IPS:3040 TCP NULL flags from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (400041, C::Ips, "%ASA-4-400041: IPS:3153 FTP Improper Address Specified from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (400050, C::Ips, "%ASA-4-400050: IPS:4051 UDP Snork attack from 192.0.2.9 to 10.0.0.9 on interface outside"),
    (420002, C::Ips, "%ASA-4-420002: IPS requested to drop ICMP packet from outside:192.0.2.9/0 to inside:10.0.0.9/0"),
    // 419xxx / 500xxx / 507xxx: protocol anomalies
    (419001, C::Fw(DROP), "%ASA-4-419001: Dropping TCP packet from outside:192.0.2.9/1234 to inside:10.0.0.9/80, reason: MSS exceeded, MSS 1380, data 1460"),
    (419002, C::Fw(DROP), "%ASA-4-419002: Received duplicate TCP SYN from outside:192.0.2.9/1234 to inside:10.0.0.9/80 with different initial sequence number."),
    (419003, C::Event, "%ASA-4-419003: Cleared TCP urgent flag from outside:192.0.2.9/1234 to inside:10.0.0.9/80."),
    (500001, C::Event, "%ASA-5-500001: ActiveX content modified src 10.0.0.9 dest 192.0.2.9 on interface inside"),
    (500002, C::Event, "%ASA-5-500002: Java content modified src 10.0.0.9 dest 192.0.2.9 on interface inside"),
    (500003, C::Fw(DROP), "%ASA-5-500003: Bad TCP hdr length (hdrlen=4, pktlen=40) from 192.0.2.9/1234 to 10.0.0.9/80, flags: SYN, on interface outside"),
    (500004, C::Fw(DROP), "%ASA-4-500004: Invalid transport field for protocol=6, from 192.0.2.9/0 to 10.0.0.9/0"),
    (500005, C::Fw(DROP), "%ASA-3-500005: connection terminated for tcp from inside:10.0.0.9/1234 to outside:192.0.2.9/80 due to invalid combination of inspections on same flow"),
    (507003, C::Fw(DROP), "%ASA-3-507003: tcp flow from outside:192.0.2.9/1234 to inside:10.0.0.9/80 terminated by inspection engine, reason - invalid TCP option"),
    // 502xxx: local user database
    (502101, C::Config, "%ASA-5-502101: New user added to local dbase: Uname: bob Priv: 15 Encpass: *****"),
    (502102, C::Config, "%ASA-5-502102: User deleted from local dbase: Uname: bob Priv: 15 Encpass: *****"),
    (502103, C::Config, "%ASA-5-502103: User priv level changed: Uname: bob From: 1 To: 15"),
    // 602xxx: IPsec SAs
    (602303, C::Event, "%ASA-6-602303: IPSEC: An outbound LAN-to-LAN SA (SPI= 0x1A2B3C4D) between 203.0.113.1 and 198.51.100.7 (user= 198.51.100.7) has been created."),
    (602304, C::Event, "%ASA-6-602304: IPSEC: An inbound LAN-to-LAN SA (SPI= 0x1A2B3C4D) between 203.0.113.1 and 198.51.100.7 (user= 198.51.100.7) has been deleted."),
    // 605xxx / 611xxx: management access
    (605004, C::AuthFail, "%ASA-6-605004: Login denied from 10.0.0.9/40000 to outside:192.0.2.1/ssh for user \"alice\""),
    (605005, C::AdminOk, "%ASA-6-605005: Login permitted from 10.0.0.9/40000 to inside:192.0.2.1/ssh for user \"admin\""),
    (607001, C::Pinhole, "%ASA-6-607001: Pre-allocate SIP Via UDP secondary channel for inside:10.0.0.9/5060 to outside:192.0.2.9 from INVITE message"),
    (611101, C::AdminOk, "%ASA-6-611101: User authentication succeeded: IP address: 10.0.0.9, Uname: admin"),
    (611102, C::AuthFail, "%ASA-6-611102: User authentication failed: IP address: 10.0.0.9, Uname: admin"),
    (611103, C::Logout, "%ASA-5-611103: User logged out: Uname: admin"),
    // 710xxx: access to the box
    (710001, C::Fw(PASS), "%ASA-7-710001: TCP access requested from 10.0.0.9/40000 to inside:10.0.0.1/443"),
    (710002, C::Fw(PASS), "%ASA-7-710002: TCP access permitted from 10.0.0.9/40000 to inside:10.0.0.1/22"),
    (710003, C::Fw(DROP), "%ASA-3-710003: TCP access denied by ACL from 192.0.2.9/40000 to outside:203.0.113.1/22"),
    (710005, C::Fw(DROP), "%ASA-7-710005: UDP request discarded from 192.0.2.9/137 to outside:203.0.113.1/137"),
    (710006, C::Fw(DROP), "%ASA-7-710006: IGMP request discarded from 192.0.2.9 to outside:224.0.0.1"),
    // 716xxx / 722xxx: WebVPN and AnyConnect sessions
    (716001, C::AuthOk, "%ASA-6-716001: Group <Sales> User <alice> IP <198.51.100.7> WebVPN session started."),
    (716002, C::Logout, "%ASA-6-716002: Group <Sales> User <alice> IP <198.51.100.7> WebVPN session terminated: User Requested."),
    (716038, C::AuthOk, "%ASA-6-716038: Group <Sales> User <alice> IP <198.51.100.7> Authentication: successful, Session Type: WebVPN."),
    (716039, C::AuthFail, "%ASA-6-716039: Group <Sales> User <alice> IP <198.51.100.7> Authentication: rejected, Session Type: WebVPN."),
    (716058, C::Event, "%ASA-6-716058: Group <Sales> User <alice> IP <198.51.100.7> AnyConnect session lost connection. Waiting to resume."),
    (716059, C::Event, "%ASA-6-716059: Group <Sales> User <alice> IP <198.51.100.7> AnyConnect session resumed. Connection from 198.51.100.7 (+443) to 203.0.113.1 (+443)"),
    (722022, C::Event, "%ASA-6-722022: Group <Sales> User <alice> IP <198.51.100.7> TCP SVC connection established without compression"),
    (722023, C::Event, "%ASA-6-722023: Group <Sales> User <alice> IP <198.51.100.7> UDP SVC connection terminated without compression"),
    (722037, C::Event, "%ASA-5-722037: Group <Sales> User <alice> IP <198.51.100.7> SVC closing connection: Transport closing."),
    (722051, C::Event, "%ASA-4-722051: Group <Sales> User <alice> IP <198.51.100.7> IPv4 Address <10.8.0.5> IPv6 address <::> assigned to session"),
    (722055, C::Event, "%ASA-6-722055: Group <Sales> User <alice> IP <198.51.100.7> Client Type: Cisco AnyConnect VPN Agent for Windows 4.10.01075"),
    (734001, C::Event, "%ASA-6-734001: DAP: User alice@example.com, Addr 198.51.100.7, Connection AnyConnect: The following DAP records were selected for this connection: dap_1"),
    // 733xxx: threat detection
    (733100, C::ThreatRate, "%ASA-4-733100: [ Scanning] drop rate-1 exceeded. Current burst rate is 10 per second, max configured rate is 10; Current average rate is 5 per second, max configured rate is 5; Cumulative total count is 3000"),
    (733101, C::ThreatHost, "%ASA-4-733101: Host 192.0.2.66 is attacking. Current burst rate is 200 per second, max configured rate is 100; Current average rate is 150 per second, max configured rate is 80; Cumulative total count is 90000"),
    (733102, C::Event, "%ASA-4-733102: Threat-detection adds host 192.0.2.66 to shun list"),
    (733103, C::Event, "%ASA-4-733103: Threat-detection removes host 192.0.2.66 from shun list"),
    // more from the ASA message guide: AAA, connection limits, inspections, sessions
    (109002, C::AuthFail, "%ASA-6-109002: Auth from 10.0.0.9/3300 to 192.0.2.9/80 failed (server 10.0.1.20 failed) on interface inside"),
    (109003, C::AuthFail, "%ASA-6-109003: Auth from 10.0.0.9/3300 to 192.0.2.9/80 failed (all servers failed) on interface inside"),
    (113007, C::Event, "%ASA-6-113007: User 'alice' unlocked by admin."),
    (113022, C::Event, "%ASA-2-113022: AAA Marking RADIUS server 10.0.1.20 in aaa-server group RAD as FAILED"),
    (113023, C::Event, "%ASA-2-113023: AAA Marking RADIUS server 10.0.1.20 in aaa-server group RAD as ACTIVE"),
    (199001, C::Event, "%ASA-5-199001: Reload command executed from Telnet (remote 10.0.0.9)."),
    (201003, C::Fw(DROP), "%ASA-2-201003: Embryonic limit exceeded 100/100 for 198.51.100.7/4000 (203.0.113.5) 10.0.0.9/80 on interface outside"),
    (201011, C::Fw(DROP), "%ASA-3-201011: Connection limit exceeded 1000/1000 for inbound packet from 198.51.100.7/4000 to 10.0.0.9/80 on interface outside"),
    (201013, C::Fw(DROP), "%ASA-3-201013: Per-client connection limit exceeded 50/50 for input packet from 198.51.100.7/4000 to 10.0.0.9/80 on interface outside"),
    (302035, C::Built, "%ASA-6-302035: Built inbound SCTP connection 91 for outside:198.51.100.7/2905 (198.51.100.7/2905) to inside:10.0.0.9/2905 (10.0.0.9/2905)"),
    (302036, C::Fw(PASS), "%ASA-6-302036: Teardown SCTP connection 91 for outside:198.51.100.7/2905 to inside:10.0.0.9/2905 duration 0:01:00 bytes 2048 SCTP ABORT"),
    (302303, C::Fw(PASS), "%ASA-6-302303: Built TCP state-bypass connection 92 from inside:10.0.0.9/1234 (203.0.113.5/1234) to outside:192.0.2.9/80 (192.0.2.9/80)"),
    (302304, C::Fw(PASS), "%ASA-6-302304: Teardown TCP state-bypass connection 92 from inside:10.0.0.9/1234 to outside:192.0.2.9/80 duration 0:00:10 bytes 4096 TCP FINs"),
    (303003, C::Fw(DROP), "%ASA-5-303003: FTP SITE command denied - failed strict inspection, terminating connection from inside:10.0.0.9/1089 to outside:192.0.2.9/21"),
    (303004, C::Fw(DROP), "%ASA-5-303004: FTP XCWD command unsupported - failed strict inspection, terminating connection from inside:10.0.0.9/1089 to outside:192.0.2.9/21"),
    (303005, C::Event, "%ASA-5-303005: Strict FTP inspection matched filename in policy-map ftp_pm, Reset connection from inside:10.0.0.9/1089 to outside:192.0.2.9/21"),
    (304003, C::Event, "%ASA-3-304003: URL Server 10.0.1.30 timed out URL http://www.example.com/"),
    (304004, C::Event, "%ASA-6-304004: URL Server 10.0.1.30 request failed URL http://www.example.com/"),
    (305016, C::Fw(DROP), "%ASA-3-305016: Unable to create protocol connection from inside:10.0.0.9/1234 to outside:192.0.2.9/80 due to port block exhaustion."),
    (308001, C::AuthFail, "%ASA-6-308001: console enable password incorrect for 3 tries (from 10.0.0.9)"),
    (315011, C::Logout, "%ASA-6-315011: SSH session from 10.0.0.9 on interface inside for user \"admin\" disconnected by SSH server, reason: \"User logged out\" (0x0b)"),
    (322001, C::Fw(DROP), "%ASA-3-322001: Deny MAC address 0011.2233.4455, possible spoof attempt on interface inside"),
    (322002, C::Event, "%ASA-3-322002: ARP inspection check failed for arp request received from host 0011.2233.4455 on interface inside. This host is advertising MAC Address 0011.2233.4466 for IP Address 10.0.0.9, which is statically bound to MAC Address 0011.2233.4477"),
    (401002, C::Event, "%ASA-4-401002: Shun added: 198.51.100.66 10.0.0.9 0 0"),
    (401004, C::Fw(DROP), "%ASA-4-401004: Shunned packet: 198.51.100.66 ==> 10.0.0.9 on interface outside"),
    (402114, C::Event, "%ASA-4-402114: IPSEC: Received an ESP packet (SPI= 0x1A2B3C4D, sequence number= 0x5) from 198.51.100.7 to 203.0.113.1 with an invalid SPI."),
    (402119, C::Event, "%ASA-4-402119: IPSEC: Received an ESP packet (SPI= 0x1A2B3C4D, sequence number= 0x5) from 198.51.100.7 (user= 198.51.100.7) to 203.0.113.1 that failed anti-replay checking."),
    (405001, C::Event, "%ASA-4-405001: Received ARP request collision from 10.0.0.9/0011.2233.4455 on interface inside with existing ARP entry 10.0.0.9/0011.2233.4466"),
    (406001, C::Fw(DROP), "%ASA-4-406001: FTP port command low port: 10.0.0.9/21 to 192.0.2.9 on interface inside"),
    (407001, C::Fw(DROP), "%ASA-4-407001: Deny traffic for local-host inside:10.0.0.9, license limit of 50 exceeded"),
    (410001, C::Fw(DROP), "%ASA-4-410001: Dropped UDP DNS request from inside:10.0.0.9/53000 to outside:192.0.2.53/53; label length 70 bytes exceeds protocol limit of 63 bytes"),
    (410002, C::Fw(DROP), "%ASA-2-410002: Dropped 5 DNS responses with mis-matched id in the past 10 second(s): from outside:192.0.2.53/53 to inside:10.0.0.9/53000"),
    (410003, C::Fw(DROP), "%ASA-4-410003: DNS Classification: Dropped DNS request (id 1234) from inside:10.0.0.9/53000 to outside:192.0.2.53/53; matched Class 1: match header-flags eq RD"),
    (410004, C::Event, "%ASA-6-410004: DNS Classification: Received DNS request (id 1234) from inside:10.0.0.9/53000 to outside:192.0.2.53/53; matched Class 1: match domain-name regex bad"),
    (411001, C::Iface, "%ASA-4-411001: Line protocol on Interface GigabitEthernet0/1, changed state to up"),
    (411002, C::Iface, "%ASA-4-411002: Line protocol on Interface GigabitEthernet0/1, changed state to down"),
    (411003, C::Iface, "%ASA-4-411003: Configuration status on Interface GigabitEthernet0/1, changed state to administratively down"),
    (411004, C::Iface, "%ASA-4-411004: Configuration status on Interface GigabitEthernet0/1, changed state to up"),
    (415011, C::Event, "%ASA-5-415011: HTTP - matched Class 23: match request uri length gt 100 in policy-map http_pm, URI length exceeded - Resetting connection from inside:10.0.0.9/1234 to outside:192.0.2.9/80"),
    (416001, C::Fw(DROP), "%ASA-4-416001: Dropped UDP SNMP packet from outside:198.51.100.7/161 to inside:10.0.0.9/161; version (1) is not allowed through the firewall"),
    (421001, C::Fw(DROP), "%ASA-3-421001: TCP flow from inside:10.0.0.9/1234 to outside:192.0.2.9/80 is dropped because application has failed."),
    (421002, C::Event, "%ASA-6-421002: UDP flow from inside:10.0.0.9/1234 to outside:192.0.2.9/53 bypassed application checking because the protocol is not supported."),
    (431001, C::Fw(DROP), "%ASA-4-431001: RTP conformance: Dropping RTP packet from outside:198.51.100.7/16384 to inside:10.0.0.9/16384, Drop reason: Bad version"),
    (434004, C::Event, "%ASA-5-434004: SFR requested ASA to bypass further packet redirection and process TCP flow from inside:10.0.0.9/1234 to outside:192.0.2.9/80 locally"),
    (450001, C::Fw(DROP), "%ASA-4-450001: Deny traffic for protocol 6 src inside:10.0.0.9/1234 dst outside:192.0.2.9/80, licensed host limit of 50 exceeded"),
    (502111, C::Config, "%ASA-5-502111: New group policy added: name: Sales Type: internal"),
    (502112, C::Config, "%ASA-5-502112: Group policy deleted: name: Sales Type: internal"),
    (507001, C::Fw(DROP), "%ASA-5-507001: Terminating TCP-Proxy connection from inside:10.0.0.9/1234 to outside:192.0.2.9/80 - reassembly limit of 8192 bytes exceeded"),
    (508001, C::Fw(DROP), "%ASA-5-508001: DCERPC ept_map non-standard version_type version 2 from inside:10.0.0.9/1234 to outside:192.0.2.9/135, terminating connection."),
    (509001, C::Fw(DROP), "%ASA-5-509001: Connection attempt from inside:10.0.0.9/1234 to outside:192.0.2.9/80 was prevented by \"no forward\" command."),
    (606001, C::AdminOk, "%ASA-6-606001: ASDM session number 1 from 10.0.0.9 started"),
    (606002, C::Logout, "%ASA-6-606002: ASDM session number 1 from 10.0.0.9 ended"),
    (608001, C::Pinhole, "%ASA-6-608001: Pre-allocate Skinny RTP secondary channel for inside:10.0.0.9 to outside:192.0.2.9 from StartMediaTransmission message"),
    (609001, C::Event, "%ASA-7-609001: Built local-host inside:10.0.0.9"),
    (609002, C::Event, "%ASA-7-609002: Teardown local-host inside:10.0.0.9 duration 0:02:00"),
    (610001, C::Fw(DROP), "%ASA-3-610001: NTP daemon interface outside: Packet denied from 198.51.100.7"),
    (620001, C::Pinhole, "%ASA-6-620001: Pre-allocate CTIQBE RTP secondary channel for outside:192.0.2.9/16384 to inside:10.0.0.9 from CTIQBE_OPEN message"),
    (710004, C::Fw(DROP), "%ASA-7-710004: TCP connection limit exceeded from 198.51.100.7/40000 to outside:203.0.113.1/22 (current connections/connection limit = 5/5)"),
    (710007, C::Event, "%ASA-7-710007: NAT-T keepalive received from 198.51.100.7/4500 to outside:203.0.113.1/4500"),
    (713049, C::Event, "%ASA-5-713049: Group = 198.51.100.7, IP = 198.51.100.7, Security negotiation complete for LAN-to-LAN Group (198.51.100.7)  Responder, Inbound SPI = 0x1a2b3c4d, Outbound SPI = 0x4d3c2b1a"),
    (713050, C::Logout, "%ASA-5-713050: Group = Sales, Username = alice, IP = 198.51.100.7, Connection terminated for peer 198.51.100.7.  Reason: Peer Terminate  Remote Proxy 10.8.0.5, Local Proxy 0.0.0.0"),
    (713120, C::Event, "%ASA-5-713120: Group = Sales, Username = alice, IP = 198.51.100.7, PHASE 2 COMPLETED (msgid=0a1b2c3d)"),
    (713198, C::AuthFail, "%ASA-3-713198: Group = Sales, Username = alice, IP = 198.51.100.7, User Authorization failed: group policy not found"),
    (713228, C::Event, "%ASA-6-713228: Group = Sales, Username = alice, IP = 198.51.100.7, Assigned private IP address 10.8.0.5 to remote user"),
    (716003, C::Event, "%ASA-6-716003: Group Sales User alice IP 198.51.100.7 WebVPN access GRANTED: http://intranet.example.com/"),
    (716007, C::AuthFail, "%ASA-4-716007: Group Sales User alice WebVPN Unable to create session."),
    (717009, C::Event, "%ASA-3-717009: Certificate validation failed. Reason: certificate expired."),
    (722028, C::Event, "%ASA-5-722028: Group <Sales> User <alice> IP <198.51.100.7> Stale SVC connection closed."),
    (722033, C::Event, "%ASA-5-722033: Group <Sales> User <alice> IP <198.51.100.7> First TCP SVC connection established for SVC session."),
    (722041, C::Event, "%ASA-4-722041: TunnelGroup <SalesTG> GroupPolicy <Sales> User <alice> IP <198.51.100.7> No IPv6 address available for SVC connection"),
    (725001, C::Event, "%ASA-6-725001: Starting SSL handshake with client outside:198.51.100.7/40000 to 203.0.113.1/443 for TLSv1.2 session"),
    (725002, C::Event, "%ASA-6-725002: Device completed SSL handshake with client outside:198.51.100.7/40000 to 203.0.113.1/443 for TLSv1.2 session"),
    (725006, C::Event, "%ASA-6-725006: Device failed SSL handshake with client outside:198.51.100.7/40000 to 203.0.113.1/443"),
    (725007, C::Event, "%ASA-6-725007: SSL session with client outside:198.51.100.7/40000 to 203.0.113.1/443 terminated"),
    (734002, C::AuthFail, "%ASA-5-734002: DAP: User alice, Addr 198.51.100.7: Connection terminated by the DAP policy"),
    (734003, C::Event, "%ASA-7-734003: DAP: User alice, Addr 198.51.100.7: Session Attribute aaa.ldap.memberOf = Sales"),
    (746012, C::Event, "%ASA-5-746012: user-identity: Add IP-User mapping 10.0.0.9 - LOCAL\\alice Succeeded - VPN user"),
    (746013, C::Event, "%ASA-5-746013: user-identity: Delete IP-User mapping 10.0.0.9 - LOCAL\\alice Succeeded - VPN user"),
    (750001, C::Event, "%ASA-5-750001: Local:203.0.113.1:500 Remote:198.51.100.7:500 Username:alice Received request to establish an IPsec tunnel; local traffic selector = Address Range: 10.0.0.0-10.0.0.255 Protocol: 0 Port Range: 0-65535 ; remote traffic selector = Address Range: 10.8.0.0-10.8.0.255 Protocol: 0 Port Range: 0-65535"),
    (750003, C::AuthFail, "%ASA-4-750003: Local:203.0.113.1:500 Remote:198.51.100.7:500 Username:alice Negotiation aborted due to ERROR: Auth exchange failed"),
    (750006, C::AuthOk, "%ASA-5-750006: Local:203.0.113.1:500 Remote:198.51.100.7:500 Username:alice IKEv2 SA UP. Reason: New Connection Established"),
    (750007, C::Logout, "%ASA-5-750007: Local:203.0.113.1:500 Remote:198.51.100.7:500 Username:alice IKEv2 SA DOWN. Reason: peer requested"),
    // FTD / NGIPS FirePOWER events
    (430001, C::FtdIps, "%FTD-1-430001: EventPriority: High, DeviceUUID: 1c8ff662-08f3-11e4-85c0-bc960372972f, InstanceID: 3, FirstPacketSecond: 2023-01-01T10:00:00Z, ConnectionID: 12, AccessControlRuleID: 268435460, SrcIP: 198.51.100.7, DstIP: 10.0.0.9, SrcPort: 40000, DstPort: 80, Protocol: tcp, IngressInterface: outside, EgressInterface: inside, IngressZone: OUT, EgressZone: IN, GID: 1, SID: 30429, Revision: 2, Message: SERVER-WEBAPP Joomla SQL injection attempt, Classification: Web Application Attack, Priority: 1, ApplicationProtocol: HTTP, IntrusionPolicy: Balanced, ACPolicy: Main, InlineResult: Blocked"),
    (430002, C::FtdConn, "%FTD-1-430002: DeviceUUID: 1c8ff662-08f3-11e4-85c0-bc960372972f, AccessControlRuleAction: Allow, SrcIP: 10.0.0.9, DstIP: 192.0.2.9, SrcPort: 51000, DstPort: 443, Protocol: tcp, IngressInterface: inside, EgressInterface: outside, IngressZone: IN, EgressZone: OUT, ACPolicy: Main, AccessControlRuleName: Allow-Web, User: alice, ApplicationProtocol: HTTPS, InitiatorPackets: 1, ResponderPackets: 0, InitiatorBytes: 74, ResponderBytes: 0"),
    (430003, C::FtdConn, "%FTD-1-430003: DeviceUUID: 1c8ff662-08f3-11e4-85c0-bc960372972f, AccessControlRuleAction: Block, SrcIP: 10.0.0.9, DstIP: 192.0.2.9, SrcPort: 51001, DstPort: 80, Protocol: tcp, IngressInterface: inside, EgressInterface: outside, ACPolicy: Main, AccessControlRuleName: Block-Bad, User: No Authentication Required, UserAgent: curl/8.0, ApplicationProtocol: HTTP, InitiatorPackets: 4, ResponderPackets: 4, InitiatorBytes: 729, ResponderBytes: 246, URL: http://bad.example.net/favicon.ico"),
    (430004, C::FtdFile, "%FTD-1-430004: DeviceUUID: 1c8ff662-08f3-11e4-85c0-bc960372972f, SrcIP: 192.0.2.9, DstIP: 10.0.0.9, SrcPort: 80, DstPort: 51002, Protocol: tcp, FileDirection: Download, FileAction: Block, FileType: MSEXE, FileName: setup.exe, FileSize: 1024, ApplicationProtocol: HTTP, User: alice, URI: http://files.example.net/setup.exe, FilePolicy: Files"),
    (430005, C::FtdMalware, "%FTD-1-430005: DeviceUUID: 1c8ff662-08f3-11e4-85c0-bc960372972f, SrcIP: 192.0.2.9, DstIP: 10.0.0.9, SrcPort: 80, DstPort: 51003, Protocol: tcp, FileDirection: Download, FileAction: Malware Cloud Lookup, FileSHA256: 0a1b2c, SHA_Disposition: Malware, ThreatName: Win.Trojan.Agent, FileType: MSEXE, FileName: invoice.exe, URI: http://files.example.net/invoice.exe, User: alice"),
];

fn class_of(id: u32) -> Option<Class> {
    if let Some((_, c, _)) = IDS.iter().find(|(i, _, _)| *i == id) {
        return Some(*c);
    }
    (400000..=400099).contains(&id).then_some(Class::Ips)
}

/// The syslog level digit of the tag on Pharos' scale.
fn severity(level: u8) -> Severity {
    match level {
        0 | 1 => Severity::Critical,
        2 | 3 => Severity::High,
        4 => Severity::Middle,
        5 => Severity::Low,
        _ => Severity::Info,
    }
}

/// The tag of a message: product, level, id and the text after it.
struct Tag<'a> {
    product: &'a str,
    level: u8,
    id: u32,
    msg: &'a str,
}

/// `ASA-6-302013: text` or `FTD-auth-6-113039: text` (after the `%`).
fn parse_tag(s: &str) -> Option<Tag<'_>> {
    let (product, rest) = s.split_once('-')?;
    if !matches!(product, "ASA" | "FTD" | "PIX" | "FWSM" | "NGIPS") {
        return None;
    }
    let (mut level, mut rest) = rest.split_once('-')?;
    if !level.bytes().all(|b| b.is_ascii_digit()) {
        // a facility word between product and level (`%FTD-auth-6-113039`)
        (level, rest) = rest.split_once('-')?;
    }
    if level.len() != 1 {
        return None;
    }
    let level: u8 = level.parse().ok()?;
    let id_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id: u32 = rest.get(..id_end)?.parse().ok()?;
    let msg = rest.get(id_end..)?.trim_start_matches(':').trim();
    Some(Tag {
        product,
        level,
        id,
        msg,
    })
}

fn find_tag(t: &str) -> Option<Tag<'_>> {
    memchr::memchr_iter(b'%', t.as_bytes())
        .take(16)
        .find_map(|at| parse_tag(t.get(at + 1..)?))
}

/// The message without a repeated tag or a `message repeated N times: [ ... ]` wrapper.
fn unwrap_msg(msg: &str) -> &str {
    let mut msg = msg;
    if let Some(inner) = msg.strip_prefix('%').and_then(parse_tag) {
        msg = inner.msg;
    }
    if let Some(rest) = msg.strip_prefix("message repeated ")
        && let Some((_, inner)) = rest.split_once('[')
    {
        msg = inner.trim().trim_end_matches(']').trim();
    }
    msg
}

/// Normalises one ASA/FTD/PIX message.
pub fn normalize(input: &LogInput<'_>) -> Option<Draft> {
    let tag = find_tag(input.text)?;
    let msg = unwrap_msg(tag.msg);
    let model = match tag.product {
        "FTD" | "NGIPS" => "FTD",
        "PIX" => "PIX",
        "FWSM" => "FWSM",
        _ => "ASA",
    };
    let draft = match class_of(tag.id) {
        Some(c) => map(c, tag.id, msg, severity(tag.level)),
        None => unknown_id(tag.id, msg, severity(tag.level)),
    };
    Some(draft.vendor("Cisco").model(Some(model)).summary(msg))
}

/// An id outside the table: a generic log that carries the addresses and user the text names
/// (parsed), or an unparsed one when it names none.
fn unknown_id(id: u32, msg: &str, sev: Severity) -> Draft {
    let kind = build::unmapped("cisco-asa message id without a mapping");
    let (_, mut p) = other(C::Event, id, msg);
    if p.flow == Flow::default() && p.user.is_none() {
        return Draft::new(kind, sev);
    }
    let id = id.to_string();
    p.message_id = Some(&id);
    let fields = build::fw_fields(&p);
    Draft::new(kind, sev).fields(fields)
}

/// Words of the message (split on spaces and commas).
fn words(msg: &str) -> Words<'_> {
    Words { rest: Some(msg) }
}

/// The non-empty pieces of a string split on `' '` and `','` (like
/// `split([' ', ',']).filter(|w| !w.is_empty())`, a byte at a time instead of a char at a time).
struct Words<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        loop {
            let rest = self.rest?;
            let word = match rest.bytes().position(|c| c == b' ' || c == b',') {
                Some(end) => {
                    self.rest = rest.get(end + 1..);
                    rest.get(..end)
                }
                None => {
                    self.rest = None;
                    Some(rest)
                }
            };
            if let Some(w) = word.filter(|w| !w.is_empty()) {
                return Some(w);
            }
        }
    }
}

/// An endpoint token: `iface:addr/port(DOMAIN\user)`, `addr/port`, `iface:addr`, `(addr)`.
#[derive(Default, Clone, Copy)]
struct End<'a> {
    ip: Option<IpAddr>,
    port: Option<u16>,
    iface: Option<&'a str>,
    /// Identity-firewall user in parentheses after the address.
    user: Option<&'a str>,
}

fn endpoint(tok: &str) -> End<'_> {
    let tok = tok
        .trim_end_matches([',', ';', '.', ':'])
        .trim_start_matches(['(', '<'])
        .trim_end_matches('>');
    let (tok, user) = match tok.split_once('(') {
        Some((a, u)) if !a.is_empty() => (a.trim_end_matches(')'), Some(u.trim_end_matches(')'))),
        _ => (tok.trim_end_matches(')'), None),
    };
    let user = user.filter(|u| !u.is_empty());
    let (a, p) = build::addr_slash_port(tok);
    if a.is_some() {
        return End {
            ip: a,
            port: p,
            iface: None,
            user,
        };
    }
    match tok.split_once(':') {
        Some((iface, rest)) => {
            let (ip, port) = build::addr_slash_port(rest);
            End {
                ip,
                port,
                iface: (ip.is_some() && !iface.is_empty()).then_some(iface),
                user,
            }
        }
        None => End::default(),
    }
}

/// Index of the first word after one of `keys` that is an endpoint.
fn after_idx(w: &[&str], keys: &[&str], from: usize) -> Option<usize> {
    (from.max(1)..w.len()).find(|&i| {
        w.get(i - 1)
            .map(|prev| prev.trim_start_matches('('))
            .is_some_and(|prev| keys.iter().any(|k| prev.eq_ignore_ascii_case(k)))
            && w.get(i).is_some_and(|t| endpoint(t).ip.is_some())
    })
}

/// The endpoint after the first keyword of `keys` that is followed by one.
fn after(msg: &str, keys: &[&str]) -> (Option<IpAddr>, Option<u16>) {
    let w: Vec<&str> = words(msg).take(64).collect();
    match after_idx(&w, keys, 0).and_then(|i| w.get(i)) {
        Some(t) => {
            let e = endpoint(t);
            (e.ip, e.port)
        }
        None => (None, None),
    }
}

fn proto_word(msg: &str) -> Option<&str> {
    words(msg).take(12).find(|w| {
        [
            "tcp", "udp", "icmp", "icmp6", "icmpv6", "sctp", "gre", "esp",
        ]
        .iter()
        .any(|p| w.eq_ignore_ascii_case(p))
    })
}

fn transport_of(msg: &str) -> Option<pharos_model::ident::TransportProtocol> {
    proto_word(msg).and_then(build::transport)
}

/// Text between the first pair of `"` or `'` after `key`.
fn quoted_after<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let at = Lit::new(key).find(msg.as_bytes())? + key.len();
    let rest = msg.get(at..)?;
    let open = rest.bytes().position(|c| c == b'"' || c == b'\'')?;
    let q = rest.get(open..open + 1)?;
    let inner = rest.get(open + 1..)?;
    let close = inner.find(q)?;
    inner.get(..close)
}

/// The value after `key` (which includes its separator, e.g. `"user = "`): `<...>`, `'...'`,
/// `"..."` or a word ending at a space, `,`, `;` or ` :`. `key` must start at a word boundary.
fn value_after<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let lit = Lit::new(key);
    let mut from = 0;
    for _ in 0..8 {
        let hay = msg.get(from..)?;
        let at = from + lit.find(hay.as_bytes())?;
        from = at + key.len();
        let boundary = at == 0
            || msg
                .as_bytes()
                .get(at - 1)
                .is_some_and(|b| !b.is_ascii_alphanumeric() && *b != b'_');
        if !boundary {
            continue;
        }
        let rest = msg.get(from..)?;
        let v = match rest.as_bytes().first() {
            Some(b'<') => rest
                .get(1..)
                .and_then(|r| r.split_once('>'))
                .map(|(v, _)| v),
            Some(q @ (b'\'' | b'"')) => {
                let q = char::from(*q);
                rest.get(1..).and_then(|r| r.split_once(q)).map(|(v, _)| v)
            }
            _ => {
                let end = rest.find([' ', ',', ';']).unwrap_or(rest.len());
                // `Addr 198.51.100.7: ...`, `... login.`
                rest.get(..end).map(|v| v.trim_end_matches([':', '.']))
            }
        };
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            return Some(v);
        }
    }
    None
}

/// The user an AAA/VPN message names.
fn user_of(msg: &str) -> Option<&str> {
    const KEYS: &[&str] = &[
        "user = ",
        "Username = ",
        "User = ",
        "Uname: ",
        "Username:",
        "for user ",
        "User <",
        "User '",
        "user '",
        "User ",
        "user ",
    ];
    KEYS.iter().find_map(|k| {
        // the opening bracket or quote belongs to the value
        let key = k.trim_end_matches(['<', '\'']);
        value_after(msg, key).filter(|v| {
            // `Denied user login.`, `user authentication Rejected`: words, not names
            !v.ends_with('.')
                && ![
                    "authentication",
                    "login",
                    "logged",
                    "priv",
                    "ACL",
                    "at",
                    "IP",
                ]
                .iter()
                .any(|w| v.eq_ignore_ascii_case(w))
        })
    })
}

/// The client address an AAA/VPN message names.
fn ip_of(msg: &str) -> Option<IpAddr> {
    const KEYS: &[&str] = &[
        "user IP = ",
        "IP = ",
        "IP ",
        "Addr ",
        "IP address: ",
        "IP Address ",
        "from IP ",
    ];
    KEYS.iter()
        .find_map(|k| value_after(msg, k).and_then(build::ip))
        // IKEv2 `Remote:198.51.100.7:500`
        .or_else(|| value_after(msg, "Remote:").and_then(|v| build::addr_colon_port(v).0))
}

fn group_of(msg: &str) -> Option<&str> {
    value_after(msg, "Group = ").or_else(|| value_after(msg, "Group "))
}

fn percent(msg: &str) -> Option<u8> {
    let at = msg.find('%')?;
    let head = msg.get(..at)?;
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    head.get(start..)?.parse().ok()
}

fn hms(s: &str) -> Option<u32> {
    let mut total: u32 = 0;
    for part in s.split(':').take(4) {
        total = total.checked_mul(60)?.checked_add(part.parse().ok()?)?;
    }
    Some(total)
}

/// The draft for a mapped message.
fn map(class: Class, id: u32, msg: &str, sev: Severity) -> Draft {
    let id_string = id.to_string();
    let message_id = id_string.as_str();
    match class {
        C::Fw(action) => traffic(msg, action, message_id, sev),
        C::Built => {
            let outbound = words(msg)
                .nth(1)
                .is_some_and(|w| w.eq_ignore_ascii_case("outbound"));
            let action = if outbound { Dir::Out } else { Dir::In };
            traffic_dir(msg, PASS, action, message_id, sev)
        }
        C::Pinhole => traffic_dir(msg, PASS, Dir::Out, message_id, sev),
        C::Acl => acl(msg, message_id, sev),
        C::Url(action) => url(msg, action, message_id, sev),
        C::FtdConn | C::FtdIps | C::FtdFile | C::FtdMalware => ftd(class, msg, message_id, sev),
        _ => {
            let (kind, mut parts) = other(class, id, msg);
            parts.message_id = Some(message_id);
            let fields = build::fields_beyond_case(&kind, build::fw_fields(&parts));
            Draft::new(kind, sev).fields(fields)
        }
    }
}

/// Who initiated a connection message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// The text names the initiator first (or says `inbound`).
    In,
    /// `outbound`: the second endpoint initiated.
    Out,
    /// No direction word (`Teardown`, denies).
    None,
}

fn traffic(msg: &str, action: IngressAction, message_id: &str, sev: Severity) -> Draft {
    traffic_dir(msg, action, Dir::None, message_id, sev)
}

/// A connection or packet message -> firewall traffic log.
fn traffic_dir(
    msg: &str,
    action: IngressAction,
    dir: Dir,
    message_id: &str,
    sev: Severity,
) -> Draft {
    const DURATION: Lit<'static> = Lit::new("duration ");
    const BYTES: Lit<'static> = Lit::new(" bytes ");
    let w: Vec<&str> = words(msg).take(64).collect();
    let at = |i: Option<usize>| i.and_then(|i| w.get(i)).map(|t| endpoint(t));
    let mapped = |i: Option<usize>| {
        i.and_then(|i| w.get(i + 1))
            .filter(|t| t.starts_with('('))
            .map(|t| endpoint(t))
    };
    let (mut src, mut dst, mut nat_src, mut nat_dst);
    if w.contains(&"faddr") {
        // `for faddr F gaddr G laddr L`: F is the foreign end; G is L's mapped address
        let f = at(after_idx(&w, &["faddr"], 0));
        let l = at(after_idx(&w, &["laddr"], 0));
        let g = at(after_idx(&w, &["gaddr"], 0));
        if dir == Dir::In {
            (src, dst, nat_src, nat_dst) = (f, l, None, g);
        } else {
            (src, dst, nat_src, nat_dst) = (l, f, g, None);
        }
    } else {
        // `from A to B`, `src A dst B`, or `A ==> B` (shunned packets)
        let arrow = w.iter().position(|t| *t == "==>");
        let si = after_idx(&w, &["from", "src", "for", "laddr", "local-host"], 0)
            .or_else(|| arrow.and_then(|a| a.checked_sub(1)));
        let di =
            after_idx(&w, &["to", "dst", "dest"], si.unwrap_or(0)).or_else(|| arrow.map(|a| a + 1));
        // `A to B` without a keyword before A
        let si = si.or_else(|| {
            di.and_then(|d| d.checked_sub(2))
                .filter(|&i| w.get(i).is_some_and(|t| endpoint(t).ip.is_some()))
        });
        (src, dst, nat_src, nat_dst) = (at(si), at(di), mapped(si), mapped(di));
        if dir == Dir::Out {
            std::mem::swap(&mut src, &mut dst);
            std::mem::swap(&mut nat_src, &mut nat_dst);
        }
    }
    let (src, dst) = (src.unwrap_or_default(), dst.unwrap_or_default());
    let acl = quoted_after(msg, "access-group");
    let duration = second_piece(msg, DURATION)
        .and_then(|d| d.split_whitespace().next())
        .and_then(hms);
    let bytes = second_piece(msg, BYTES)
        .and_then(|d| d.split_whitespace().next())
        .and_then(|b| b.parse().ok());
    let on_iface = w
        .iter()
        .position(|t| *t == "interface")
        .and_then(|i| w.get(i + 1))
        .copied();
    // identity-firewall users are `DOMAIN\user`
    let idfw = src
        .user
        .or(dst.user)
        .or(nat_src.and_then(|n| n.user))
        .or(nat_dst.and_then(|n| n.user));
    let (domain, user) = match idfw.and_then(|u| u.split_once('\\')) {
        Some((d, u)) => (Some(d), Some(u)),
        None => (None, idfw.or_else(|| quoted_after(msg, "for user"))),
    };
    let nat_src = nat_src.filter(|n| n.ip != src.ip || n.port != src.port);
    let nat_dst = nat_dst.filter(|n| n.ip != dst.ip || n.port != dst.port);
    let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: src.ip,
        src_port: src.port,
        dst_ip: dst.ip,
        dst_port: dst.port,
        protocol: proto_word(msg).and_then(build::protocol),
        action: Some(action),
        sent_bytes: bytes,
        rule_name: acl.map(build::clip),
        policy_name: acl.map(build::clip),
        in_interface: src.iface.or(on_iface).map(build::clip),
        out_interface: dst.iface.map(build::clip),
        session_id: w
            .iter()
            .position(|t| t.eq_ignore_ascii_case("connection"))
            .and_then(|i| w.get(i + 1))
            .and_then(|t| t.parse().ok()),
        user: build::present(user).map(build::clip),
        duration,
        ..Default::default()
    });
    let parts = FwParts {
        nat_src_ip: nat_src.and_then(|n| n.ip),
        nat_src_port: nat_src.and_then(|n| n.port),
        nat_dst_ip: nat_dst.and_then(|n| n.ip),
        nat_dst_port: nat_dst.and_then(|n| n.port),
        domain,
        message_id: Some(message_id),
        ..Default::default()
    };
    Draft::new(kind, sev).fields(build::fw_fields(&parts))
}

/// `access-list NAME permitted tcp [for user 'u'] inside/10.0.0.1(1234) [(DOM\u)] -> outside/1.2.3.4(80) hit-cnt 1`.
fn acl(msg: &str, message_id: &str, sev: Severity) -> Draft {
    let w: Vec<&str> = words(msg).take(40).collect();
    let name = w.get(1).copied();
    let action = match w.get(2) {
        Some(a) if a.eq_ignore_ascii_case("denied") => DROP,
        _ => PASS,
    };
    fn ep(tok: &str) -> (Option<&str>, Option<IpAddr>, Option<u16>) {
        let (iface, rest) = tok.split_once('/').unwrap_or(("", tok));
        let (addr, port) = match rest.split_once('(') {
            Some((a, p)) => (build::ip(a), build::port(p.trim_end_matches(')'))),
            None => (build::ip(rest), None),
        };
        (Some(iface).filter(|i| !i.is_empty()), addr, port)
    }
    let arrow = w.iter().position(|x| *x == "->").unwrap_or(w.len());
    let src = w
        .get(..arrow)
        .unwrap_or(&[])
        .iter()
        .rev()
        .map(|t| ep(t))
        .find(|e| e.1.is_some())
        .unwrap_or_default();
    let dst = w
        .get(arrow..)
        .unwrap_or(&[])
        .iter()
        .map(|t| ep(t))
        .find(|e| e.1.is_some())
        .unwrap_or_default();
    let idfw = w
        .iter()
        .find(|t| t.starts_with('(') && t.contains('\\'))
        .map(|t| t.trim_matches(['(', ')']));
    let (domain, user) = match idfw.and_then(|u| u.split_once('\\')) {
        Some((d, u)) => (Some(d), Some(u)),
        None => (None, quoted_after(msg, "for user")),
    };
    let kind = Kind::FirewallTrafficLog(FirewallTrafficLog {
        src_ip: src.1,
        src_port: src.2,
        dst_ip: dst.1,
        dst_port: dst.2,
        protocol: proto_word(msg).and_then(build::protocol),
        action: Some(action),
        rule_name: name.map(build::clip),
        policy_name: name.map(build::clip),
        in_interface: src.0.map(build::clip),
        out_interface: dst.0.map(build::clip),
        user: user.map(build::clip),
        ..Default::default()
    });
    let parts = FwParts {
        domain,
        message_id: Some(message_id),
        ..Default::default()
    };
    Draft::new(kind, sev).fields(build::fw_fields(&parts))
}

/// 304001 `10.0.0.9 Accessed URL 192.0.2.9:http://...`, 304002 `Access denied URL http://...
/// SRC 10.0.0.9 DEST 192.0.2.9 on interface inside`.
fn url(msg: &str, action: IngressAction, message_id: &str, sev: Severity) -> Draft {
    let w: Vec<&str> = words(msg).take(32).collect();
    let url_at = w
        .iter()
        .position(|t| *t == "URL")
        .and_then(|i| w.get(i + 1));
    let src;
    let (mut dst, mut url) = (None, None);
    if let Some(tok) = url_at {
        match tok.split_once(':') {
            Some((a, u)) if build::ip(a).is_some() => {
                dst = build::ip(a);
                url = Some(u);
            }
            _ => url = Some(*tok),
        }
    }
    if action == DROP {
        src = after(msg, &["SRC"]).0;
        dst = dst.or(after(msg, &["DEST"]).0);
    } else {
        // `user@10.0.0.9` or `10.0.0.9`
        src = w
            .first()
            .and_then(|t| build::ip(t.rsplit('@').next().unwrap_or(t)));
    }
    let user = w.first().and_then(|t| t.rsplit_once('@')).map(|(u, _)| u);
    let domain = url.and_then(url_host);
    let kind = Kind::DpiLog(DpiLog {
        attack_type: None,
        src_ip: src,
        src_port: None,
        dst_ip: dst,
        dst_port: None,
        rule_name: "url-filter".to_string(),
        action: vec![action],
    });
    let parts = FwParts {
        url,
        domain,
        user,
        message_id: Some(message_id),
        ..Default::default()
    };
    Draft::new(kind, sev).fields(build::fw_fields(&parts))
}

/// The host of an absolute URL.
pub(super) fn url_host(u: &str) -> Option<&str> {
    let rest = u.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest.get(..end)?;
    let host = host.rsplit('@').next().unwrap_or(host);
    // strip a port (not from a bracketed IPv6 literal)
    let host = match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    (!host.is_empty()).then_some(host)
}

/// `Key: value, Key2: value` pairs (FTD/NGIPS bodies) and `Key=value, ...` (ISE), borrowed.
pub(super) struct Pairs<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Pairs<'a> {
    /// Pieces split on `pair_sep`, key and value at the first `kv_sep`, both trimmed.
    pub(super) fn parse(s: &'a str, pair_sep: &str, kv_sep: &str) -> Self {
        let mut v = Vec::with_capacity(48);
        for piece in s.split(pair_sep).take(crate::fields::MAX_FIELDS) {
            if let Some((k, val)) = piece.split_once(kv_sep) {
                let k = k.trim();
                if !k.is_empty() {
                    v.push((k, val.trim()));
                }
            }
        }
        Pairs(v)
    }

    /// The first present value of `key` (not empty, `-`, `N/A`).
    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| build::present(Some(v)))
    }

    pub(super) fn any(&self, keys: &[&str]) -> Option<&'a str> {
        keys.iter().find_map(|k| self.get(k))
    }
}

/// FTD/NGIPS 430001-430005 key-value events.
fn ftd(class: Class, msg: &str, message_id: &str, sev: Severity) -> Draft {
    let kv = Pairs::parse(msg, ", ", ": ");
    let flow = Flow {
        src_ip: kv.get("SrcIP").and_then(build::ip),
        src_port: kv.get("SrcPort").and_then(build::port),
        dst_ip: kv.get("DstIP").and_then(build::ip),
        dst_port: kv.get("DstPort").and_then(build::port),
    };
    let url = kv.any(&["URL", "URI"]);
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    let sig = kv.get("Message");
    let rule = kv.any(&["AccessControlRuleName", "ACPolicy"]);
    let p = FwParts {
        flow,
        proto: kv.get("Protocol"),
        app: kv.any(&["ApplicationProtocol", "WebApplication", "Client"]),
        action: kv.any(&["AccessControlRuleAction", "InlineResult", "FileAction"]),
        rule,
        user: kv.get("User"),
        url,
        domain: url
            .and_then(url_host)
            .or_else(|| kv.any(&["ReferencedHost", "DNSQuery"])),
        user_agent: kv.get("UserAgent"),
        sent: num("InitiatorBytes"),
        received: num("ResponderBytes"),
        session: kv.get("ConnectionID"),
        message_id: Some(message_id),
        in_if: kv.any(&["IngressInterface", "IngressZone"]),
        out_if: kv.any(&["EgressInterface", "EgressZone"]),
        signature: match class {
            C::FtdMalware => kv.any(&["ThreatName", "SHA_Disposition"]),
            _ => sig,
        },
        file: kv.get("FileName"),
        msg: kv.get("Classification"),
        ..Default::default()
    };
    match class {
        C::FtdIps => {
            let rule_name = match (kv.get("GID"), kv.get("SID")) {
                (Some(g), Some(s)) => build::clip(&format!("{g}:{s}")),
                _ => build::rule_or(sig, RULE),
            };
            let text = sig.unwrap_or("");
            let class_text = kv.get("Classification").unwrap_or("");
            // a web attack only over HTTP (an SMB "remote code execution" is an intrusion)
            let http = class_text.contains("Web Application")
                || matches!(
                    build::app_or_port(p.app, flow.dst_port),
                    Some(
                        pharos_model::ident::ApplicationProtocol::Http
                            | pharos_model::ident::ApplicationProtocol::Https
                    )
                );
            let web = build::web_attack_type(text)
                .or_else(|| build::web_attack_type(class_text))
                .filter(|_| http);
            let req = build::Request {
                target: url,
                host: p.domain,
                ..Default::default()
            };
            let ids = build::Ids {
                protocol: p.proto.and_then(build::transport),
                app: build::app_or_port(p.app, flow.dst_port),
                attack_type: build::intrusion_attack_type(text),
            };
            let kind = build::intrusion_or_web_attack(flow, rule_name, web, req, ids);
            let fields = build::fields_beyond_case(&kind, build::fw_fields(&p));
            Draft::new(kind, sev).fields(fields)
        }
        C::FtdFile => {
            let action = p
                .action
                .and_then(|a| build::action(a.split(' ').next().unwrap_or(a)));
            let kind = Kind::DpiLog(DpiLog {
                attack_type: Some(DpiType::FileBlocking),
                src_ip: flow.src_ip,
                src_port: flow.src_port,
                dst_ip: flow.dst_ip,
                dst_port: flow.dst_port,
                rule_name: build::rule_or(kv.get("FilePolicy").or(rule), RULE),
                action: action.into_iter().collect(),
            });
            let fields = build::fields_beyond_case(&kind, build::fw_fields(&p));
            Draft::new(kind, sev).fields(fields)
        }
        C::FtdMalware => build::fw_draft(FwClass::Virus, &p, RULE, sev),
        _ => {
            let mut p = p;
            // FirePOWER actions: Allow, Trust, Monitor, Block, Block with reset, Interactive Block
            let act = p.action.map(|a| {
                let a = a.to_ascii_lowercase();
                if a.contains("reset") {
                    "reset"
                } else if a.contains("block") {
                    "block"
                } else {
                    "allow"
                }
            });
            p.action = act;
            let mut d = build::fw_draft(FwClass::Traffic, &p, RULE, sev);
            if let Kind::FirewallTrafficLog(f) = &mut d.kind {
                f.sent_packets = num("InitiatorPackets");
                f.received_packets = num("ResponderPackets");
                f.duration = kv.get("ConnectionDuration").and_then(|v| v.parse().ok());
                f.policy_name = kv.get("ACPolicy").map(build::clip);
                if f.action.is_none() {
                    f.action = Some(PASS);
                }
            }
            d
        }
    }
}

/// Every other class: its case and the parts for `envelope/fields`.
fn other(class: Class, id: u32, msg: &str) -> (Kind, FwParts<'_>) {
    let mut p = FwParts::default();
    let (src_ip, src_port) = after(
        msg,
        &[
            "from",
            "src",
            "for",
            "host",
            "Host",
            "client",
            "local-host",
            "mapping",
            "remote",
            "between",
            "added:",
        ],
    );
    let (dst_ip, dst_port) = match after(msg, &["to", "dst", "dest", "and"]) {
        (None, _) => after(msg, &["server"]),
        d => d,
    };
    // identity firewall `IP-User mapping 10.0.0.9 - DOMAIN\\user`
    let user = match msg.split_once("IP-User mapping ") {
        Some((_, r)) => r
            .split(" - ")
            .nth(1)
            .and_then(|u| u.split(' ').next())
            .map(|u| u.rsplit('\\').next().unwrap_or(u)),
        None => user_of(msg),
    };
    let client = ip_of(msg);
    p.flow = Flow {
        src_ip: client.or(src_ip),
        src_port: if client.is_some() { None } else { src_port },
        dst_ip,
        dst_port,
    };
    p.user = user;
    p.proto = proto_word(msg);
    // IKEv2 `Local:203.0.113.1:500 Remote:198.51.100.7:500`
    if let Some((a, port)) = value_after(msg, "Local:").map(build::addr_colon_port)
        && a.is_some()
    {
        p.flow.dst_ip = a;
        p.flow.dst_port = port;
        p.flow.src_port = value_after(msg, "Remote:").and_then(|r| build::addr_colon_port(r).1);
    }
    if let Some(server) = value_after(msg, "server = ").and_then(build::ip) {
        p.flow.dst_ip = Some(server);
    }
    let reason = value_after(msg, "reason = ")
        .and(msg.split("reason = ").nth(1))
        .map(|r| r.split(" : ").next().unwrap_or(r).trim())
        .or_else(|| msg.split("Reason: ").nth(1).map(str::trim));
    let kind = match class {
        C::ThreatRate | C::ThreatHost => threat(class, msg),
        C::Ips => {
            let sig = if id == 420002 {
                None
            } else {
                msg.split_whitespace()
                    .next()
                    .filter(|w| w.starts_with("IPS:") || w.starts_with("IDS:"))
            };
            let ids = build::Ids {
                protocol: transport_of(msg),
                app: build::app_by_port(p.flow.dst_port),
                attack_type: build::intrusion_attack_type(msg),
            };
            Kind::Intrusion(build::intrusion(p.flow, build::rule_or(sig, RULE), ids))
        }
        C::DynFilter => {
            let (src_ip, src_port) = after(msg, &["from"]);
            let (dst_ip, dst_port) = after(msg, &["to"]);
            p.action = Some(if has!(msg, "dropped") {
                "drop"
            } else {
                "monitor"
            });
            p.domain = msg
                .split("dynamic list: ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .filter(|d| build::ip(d.split('/').next().unwrap_or(d)).is_none());
            Kind::Botnet(BotnetEvent {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
                rule_name: "dynamic-filter".to_string(),
                botnet_name: msg
                    .split("category: ")
                    .nth(1)
                    .map(|c| build::clip(c.trim())),
                role: None,
                botnet_pkt_num: None,
                protocol: transport_of(msg),
            })
        }
        C::AuthOk => build::user_activity(
            user,
            group_of(msg),
            p.flow.src_ip,
            p.flow.src_port,
            UserActivityType::SuccessfulLogin,
            None,
        ),
        C::AuthFail => build::user_activity(
            user,
            group_of(msg),
            p.flow.src_ip,
            p.flow.src_port,
            UserActivityType::FailedLogin,
            reason,
        ),
        C::Logout => build::user_activity(
            user,
            group_of(msg),
            p.flow.src_ip,
            p.flow.src_port,
            UserActivityType::Logout,
            reason,
        ),
        C::Lock => build::user_activity(
            quoted_after(msg, "User"),
            None,
            None,
            None,
            UserActivityType::Lock,
            Some(msg),
        ),
        C::AdminOk => build::access_log(
            user,
            p.flow.src_ip,
            p.flow.src_port,
            OperationType::Login,
            None,
            Some("permitted"),
        ),
        C::Command => {
            let user = quoted_after(msg, "User");
            let cmd = match id {
                111010 => quoted_after(msg, "executed"),
                111009 => msg.split("executed cmd:").nth(1).map(str::trim),
                _ => quoted_after(msg, "executed the"),
            };
            p.user = user;
            build::access_log(user, client, None, OperationType::Configuration, cmd, None)
        }
        C::Config => {
            let user = value_after(msg, "Uname: ").or_else(|| quoted_after(msg, "User"));
            let from = msg.split_whitespace().take(4).find_map(build::ip);
            p.user = user;
            p.flow.src_ip = from;
            build::config_change(user, from, None, Some(msg))
        }
        C::Iface => {
            let name = msg
                .split("Interface ")
                .nth(1)
                .and_then(|r| r.split([',', ' ']).next());
            let state = if has!(msg, "state to up") {
                InterfaceState::Up
            } else if has!(msg, " down") {
                InterfaceState::Down
            } else {
                InterfaceState::Unknown
            };
            Kind::SystemAlarm(SystemAlarm {
                alarm_category: Some(SystemAlarmCategory::InterfaceAlarm),
                component_name: None,
                interface_name: name.map(build::clip),
                interface_state: Some(state),
                severity: None,
                usage: None,
                threshold: None,
            })
        }
        C::Memory => Kind::ResourceUtilizationLog(ResourceUtilizationLog {
            memory_usage: percent(msg),
            ..Default::default()
        }),
        C::Cpu => Kind::ResourceUtilizationLog(ResourceUtilizationLog {
            cpu_usage: percent(msg),
            ..Default::default()
        }),
        _ => {
            // 305xxx translations: `from inside:real to outside:mapped`
            if (305009..=305012).contains(&id) {
                p.nat_src_ip = p.flow.dst_ip.take();
                p.nat_src_port = p.flow.dst_port.take();
            }
            build::unmapped("cisco-asa event without an I2NSF case")
        }
    };
    (kind, p)
}

fn threat(class: Class, msg: &str) -> Kind {
    use pharos_model::ident::DdosType as D;
    let object = msg.split(['[', ']']).nth(1).map(str::trim).unwrap_or("");
    let lower = msg.to_ascii_lowercase();
    let rate = lower
        .split("current average rate is ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse::<u64>().ok());
    let host = match class {
        Class::ThreatHost => msg.split_whitespace().nth(1).and_then(build::ip),
        _ => None,
    };
    let targeted = lower.contains("targeted");
    if object.eq_ignore_ascii_case("scanning") || lower.contains("scanning") {
        return Kind::Intrusion(IntrusionEvent {
            src_ip: if targeted { None } else { host },
            src_port: None,
            dst_ip: if targeted { host } else { None },
            dst_port: None,
            rule_name: "threat-detection-scanning".to_string(),
            protocol: None,
            app: None,
            attack_type: Some(pharos_model::ident::IntrusionAttackType::PortScan),
        });
    }
    let attack_type = if lower.contains("syn attack") {
        Some(D::SynFlood)
    } else if lower.contains("icmp") {
        Some(D::Icmpv4Flood)
    } else {
        None
    };
    Kind::Ddos(DdosEvent {
        attack_type,
        start_time: build::UNSET_START,
        end_time: None,
        attack_src_ip: if targeted {
            Vec::new()
        } else {
            host.into_iter().collect()
        },
        attack_dst_ip: if targeted {
            host.into_iter().collect()
        } else {
            Vec::new()
        },
        attack_src_port: Vec::new(),
        attack_dst_port: Vec::new(),
        rule_name: if object.is_empty() {
            "threat-detection".to_string()
        } else {
            build::clip(&format!("threat-detection {object}"))
        },
        attack_rate: rate,
        attack_throughput: None,
    })
}

/// A message's YANG-JSON without its raw text and summary: what the parse kept (for the Cisco
/// modules' table tests).
#[cfg(test)]
pub(crate) fn parsed_json(n: &crate::Normalized) -> String {
    let mut m = n.message.clone();
    m.common.raw = None;
    m.common.message = None;
    pharos_model::json::encode_string(&m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::testutil::{auto, ip};

    fn kind_name(k: &Kind) -> &'static str {
        match k {
            Kind::FirewallTrafficLog(_) => "fw",
            Kind::Intrusion(_) => "ids",
            Kind::WebAttack(_) => "web",
            Kind::Ddos(_) => "ddos",
            Kind::Botnet(_) => "botnet",
            Kind::DpiLog(_) => "dpi",
            Kind::Virus(_) => "virus",
            Kind::UserActivityLog(_) => "user",
            Kind::SystemAccessLog(_) => "access",
            Kind::SystemEvent(_) => "event",
            Kind::ResourceUtilizationLog(_) => "res",
            Kind::SystemAlarm(_) => "alarm",
            Kind::GenericLog(_) => "generic",
            _ => "other",
        }
    }

    fn expected_kind(c: Class, sample: &str) -> &'static str {
        match c {
            C::Fw(_) | C::Built | C::Acl | C::Pinhole | C::FtdConn => "fw",
            C::Url(_) | C::FtdFile => "dpi",
            C::Ips | C::FtdIps => {
                if sample.contains("SQL injection") {
                    "web"
                } else {
                    "ids"
                }
            }
            C::ThreatRate => "ids",
            C::ThreatHost => "ddos",
            C::DynFilter => "botnet",
            C::AuthOk | C::AuthFail | C::Logout | C::Lock => "user",
            C::AdminOk | C::Command => "access",
            C::Config => "event",
            C::Memory | C::Cpu => "res",
            C::Iface => "alarm",
            C::Event => "generic",
            C::FtdMalware => "virus",
        }
    }

    #[test]
    fn every_table_row_sample_maps_to_its_kind_with_its_message_id() {
        for (id, class, sample) in IDS {
            let n = auto(sample, "cisco-asa");
            assert_eq!(
                kind_name(&n.message.kind),
                expected_kind(*class, sample),
                "{sample}\n{:?}",
                n.message.kind
            );
            let f = n.message.common.fields.as_deref();
            assert_eq!(
                f.and_then(|f| f.message_id.as_deref()),
                Some(id.to_string().as_str()),
                "{sample}"
            );
            // a row whose sample names an address keeps it
            let json = crate::vendors::cisco_asa::parsed_json(&n);
            let first_ip = sample
                .split([' ', ',', '<', '>', '(', ')', '/', ':'])
                .find(|w| {
                    w.trim_end_matches(['.', ';'])
                        .parse::<std::net::Ipv4Addr>()
                        .is_ok()
                })
                .map(|w| w.trim_end_matches(['.', ';']));
            if let Some(a) = first_ip
                && !matches!(*class, C::ThreatRate | C::Memory | C::Cpu)
            {
                assert!(json.contains(a), "{a} lost: {sample}\n{json}");
            }
        }
    }

    /// Every Cisco sample (the tables of all six Cisco modules and the testdata files)
    /// validates against the YANG modules.
    #[test]
    fn cisco_samples_validate_with_yanglint() {
        let lint = match pharos_model::conformance::Linter::new() {
            Ok(l) => l,
            Err(why) => {
                pharos_model::conformance::skip(&why);
                return;
            }
        };
        let mut lines: Vec<String> = IDS.iter().map(|r| r.2.to_string()).collect();
        lines.extend(
            super::super::cisco_ios::MNEMONICS
                .iter()
                .map(|r| r.3.to_string()),
        );
        lines.extend(
            super::super::cisco_meraki::TYPES
                .iter()
                .map(|r| r.2.to_string()),
        );
        lines.extend(
            super::super::cisco_meraki::AUTH_EVENTS
                .iter()
                .map(|r| r.2.to_string()),
        );
        lines.extend(
            super::super::cisco_ise::CATEGORIES
                .iter()
                .map(|r| r.2.to_string()),
        );
        lines.extend(
            super::super::cisco_esa::EVENTS
                .iter()
                .map(|r| r.2.to_string()),
        );
        lines.extend(
            super::super::cisco_wsa::DECISIONS
                .iter()
                .map(|r| r.2.to_string()),
        );
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vendor-logs");
        for f in [
            "cisco-asa",
            "cisco-ios",
            "cisco-meraki",
            "cisco-ise",
            "cisco-esa",
            "cisco-wsa",
        ] {
            let text = std::fs::read_to_string(dir.join(format!("{f}.jsonl"))).unwrap();
            for l in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                lines.push(v["line"].as_str().unwrap().to_string());
            }
        }
        let docs: Vec<_> = lines
            .iter()
            .map(|l| {
                let n = crate::normalize(&LogInput::line(l), crate::Format::Auto, "nsf");
                assert!(n.format.starts_with("cisco-"), "{l}");
                pharos_model::json::encode(&n.message)
            })
            .collect();
        let n = lint.validate_json(&docs).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, docs.len());
    }

    #[test]
    fn deny_106023_keeps_acl_and_endpoints() {
        let n = auto(
            r#"%ASA-4-106023: Deny tcp src inside:10.11.11.1/2143 dst dmz:172.16.1.11/139 by access-group "inside_access_in" [0x0, 0x0]"#,
            "cisco-asa",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.11.11.1"));
        assert_eq!(f.src_port, Some(2143));
        assert_eq!(f.dst_ip, ip("172.16.1.11"));
        assert_eq!(f.dst_port, Some(139));
        assert_eq!(f.rule_name.as_deref(), Some("inside_access_in"));
        assert_eq!(f.in_interface.as_deref(), Some("inside"));
        assert_eq!(n.message.common.severity, Severity::Middle);
    }

    #[test]
    fn built_outbound_swaps_initiator_and_keeps_nat() {
        let n = auto(IDS.iter().find(|r| r.0 == 302013).unwrap().2, "cisco-asa");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("10.0.0.5"));
        assert_eq!(f.dst_port, Some(443));
        assert_eq!(f.session_id, Some(1234));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.nat_src_ip, ip("203.0.113.9"));
    }

    #[test]
    fn identity_firewall_user_after_the_mapped_address() {
        let row = IDS.iter().find(|r| r.2.contains("LOCAL\\bob")).unwrap();
        let n = auto(row.2, "cisco-asa");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.user.as_deref(), Some("bob"));
        assert_eq!(f.src_port, Some(40100));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.nat_dst_ip, ip("203.0.113.10"));
    }

    #[test]
    fn faddr_forms_follow_the_direction_word() {
        let n = auto(
            "%ASA-6-302020: Built outbound ICMP connection for faddr 203.0.113.20/0 gaddr 198.51.100.10/0 laddr 192.0.2.30/0 type 8 code 0",
            "cisco-asa",
        );
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("192.0.2.30"));
        assert_eq!(f.dst_ip, ip("203.0.113.20"));
        let n = auto(IDS.iter().find(|r| r.0 == 302020).unwrap().2, "cisco-asa");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_ip, ip("203.0.113.20"));
        assert_eq!(f.dst_ip, ip("192.0.2.30"));
    }

    #[test]
    fn teardown_has_duration_bytes_and_identity_user() {
        let n = auto(IDS.iter().find(|r| r.0 == 302016).unwrap().2, "cisco-asa");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.duration, Some(1));
        assert_eq!(f.sent_bytes, Some(148));
        assert_eq!(f.src_port, Some(53));
        assert_eq!(f.user.as_deref(), Some("alice"));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.domain.as_deref(), Some("LOCAL"));
    }

    #[test]
    fn header_variants_are_recognised() {
        for line in [
            "<166>Jun 22 2022 13:29:11 single : %ASA-6-113039: Group <GroupPolicy_Remote-VPN> User <user-1> IP <198.51.100.4> AnyConnect parent session started.",
            "<166>: 2024 Aug 07 10:29:42 UTC fw1 : %FTD-auth-6-113039: Group <G> User <Mac Book of bob> IP <198.51.100.4> AnyConnect parent session started.",
            "<166>May 01 2026 09:24:32Z  %FTD-6-113005: %ASA-6-113005: AAA user authentication Rejected : reason = Invalid password : server = 10.0.1.20 : user = u1 : user IP = 198.51.100.4",
            "Jan 23 15:10:55 10.10.10.1 %ASA-2-106006: message repeated 2 times: [ Deny inbound UDP from 198.51.100.4/137 to 10.1.2.42/137 on interface inside]",
        ] {
            let n = auto(line, "cisco-asa");
            let json = crate::vendors::cisco_asa::parsed_json(&n);
            assert!(json.contains("198.51.100.4"), "{line}\n{json}");
        }
    }

    #[test]
    fn vpn_user_forms_keep_user_group_and_address() {
        let n = auto(IDS.iter().find(|r| r.0 == 113039).unwrap().2, "cisco-asa");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "alice");
        assert_eq!(u.group, vec!["GroupPolicy_Remote-VPN".to_string()]);
        assert_eq!(u.ip_address, ip("198.51.100.14").unwrap());
        let n = auto(IDS.iter().find(|r| r.0 == 113005).unwrap().2, "cisco-asa");
        let Kind::UserActivityLog(u) = &n.message.kind else {
            panic!()
        };
        assert_eq!(u.user, "alice");
        assert_eq!(u.ip_address, ip("10.0.100.30").unwrap());
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.dst_ip, ip("10.0.1.20"));
    }

    #[test]
    fn ftd_connection_event_reads_key_value_body() {
        let n = auto(IDS.iter().find(|r| r.0 == 430003).unwrap().2, "cisco-asa");
        let Kind::FirewallTrafficLog(f) = &n.message.kind else {
            panic!()
        };
        assert_eq!(f.src_port, Some(51001));
        assert_eq!(f.action, Some(DROP));
        assert_eq!(f.user.as_deref(), Some("No Authentication Required"));
        let x = n.message.common.fields.as_deref().unwrap();
        assert_eq!(x.url.as_deref(), Some("http://bad.example.net/favicon.ico"));
        assert_eq!(x.domain.as_deref(), Some("bad.example.net"));
    }

    #[test]
    fn threat_detection_and_memory() {
        let n = auto(IDS.iter().find(|r| r.0 == 733101).unwrap().2, "cisco-asa");
        let Kind::Ddos(d) = &n.message.kind else {
            panic!()
        };
        assert_eq!(d.attack_src_ip, vec![ip("192.0.2.66").unwrap()]);
        assert_eq!(d.attack_rate, Some(150));
    }

    #[test]
    fn unknown_ids_are_recognised_but_generic() {
        let n = crate::normalize(
            &LogInput::line("%ASA-1-505015: Module Sensor, application up \"IPS\""),
            crate::Format::Auto,
            "fw",
        );
        assert_eq!(n.format, "cisco-asa");
        assert!(!n.parsed);
        assert_eq!(n.message.common.severity, Severity::Critical);
    }
}
