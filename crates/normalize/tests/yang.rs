//! Every normalised message validates with yanglint: samples across all formats (our own sample
//! lines plus, when present, lines from the shared corpora) are encoded with
//! `pharos_model::json::encode` and validated as notifications against the monitoring,
//! NSF-facing and extension modules, with the referenced rules and policies as operational data.
//! Skips with a message when yanglint or the YANG files are absent.

mod common;

use std::collections::BTreeMap;

use pharos_model::json;
use pharos_normalize::{Format, LogInput, normalize};

/// One or more own sample lines per format (written from the vendors' public log references).
const SAMPLES: &[&str] = &[
    "CEF:0|Ubiquiti|UniFi Network|10.1.0|201|Threat Detected and Blocked|7|proto=TCP src=198.51.100.10 spt=46000 dpt=80 act=blocked UNIFIcategory=Security UNIFIsubCategory=Intrusion Prevention UNIFIipsSignature=ET DROP Dshield Block Listed Source group 1",
    "CEF:0|Ubiquiti|UniFi Network|9.5.0|544|Admin Accessed UniFi Network|1|UNIFIcategory=System UNIFIsubCategory=Admin UNIFIadmin=Site Admin src=10.70.1.22",
    "CEF:0|Imperva Inc.|SecureSphere|12.0|SQL Injection|SQL Injection|High|act=Block src=192.0.2.9 spt=5555 dst=10.0.0.80 dpt=443 requestMethod=POST request=/login.php dhost=shop.example",
    "CEF:0|Trend Micro|Deep Security Agent|10.0|4000000|Eicar_test_file|6|cn1=1 act=Quarantine fname=eicar.com dst=10.0.0.3",
    "CEF:0|Vendor|Box|1.0|77|SYN flood detected|9|src=198.51.100.1 dst=192.0.2.80 dpt=80",
    "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|8.1|deny|\tcat=TRAFFIC\tsrc=203.0.113.5\tdst=10.0.0.9\tsrcPort=51000\tdstPort=3389\tproto=tcp\taction=deny\tsev=3",
    "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|cat=Authentication Failed^src=10.0.1.8^usrName=alice^sev=5",
    r#"%ASA-4-106023: Deny tcp src inside:10.11.11.1/2143 dst dmz:172.16.1.11/139 by access-group "inside_access_in" [0x0, 0x0]"#,
    "%ASA-6-302013: Built outbound TCP connection 1234 for outside:198.51.100.7/443 (198.51.100.7/443) to inside:10.0.0.5/51000 (203.0.113.9/51000)",
    "%ASA-4-733101: Host 192.0.2.66 is attacking. Current burst rate is 200 per second, max configured rate is 100; Current average rate is 150 per second, max configured rate is 80; Cumulative total count is 90000",
    "%ASA-4-733100: [ Scanning] drop rate-1 exceeded. Current burst rate is 1 per second, max configured rate is 10; Current average rate is 5 per second, max configured rate is 5; Cumulative total count is 3012",
    "%ASA-4-400013: IPS:2003 ICMP redirect from 10.4.1.2 to 10.2.1.1 on interface dmz",
    "%ASA-6-113015: AAA user authentication Rejected : reason = Invalid password : local database : user = admin : user IP = 10.2.2.2",
    "%ASA-6-611101: User authentication succeeded: IP address: 10.1.1.1, Uname: admin",
    "%ASA-5-111010: User 'admin', running 'CLI' from IP 10.1.1.1, executed 'write memory'",
    "%ASA-2-321006: System Memory usage reached 91%",
    "%ASA-4-338008: Dynamic Filter dropped blacklisted TCP traffic from inside:10.1.1.5/51638 (193.17.108.1/51638) to outside:198.71.232.3/80 (198.71.232.3/80), destination 198.71.232.3 resolved from dynamic list: 198.71.232.3/255.255.255.255, threat-level: very-high, category: Bot and Threat Networks",
    r#"devid=FI200B0000000001 date=2021-05-28 time=00:01:00 tz=+0000 type=attack subtype=flood spp=1 evecode=1 description="SYN flood" sip=198.51.100.1 dip=192.0.2.80 dport=80 dropcount=120000 spp_name="web" severity=critical"#,
    r#"date=2019-05-10 time=11:50:48 logid="0000000013" type="traffic" subtype="forward" level="notice" vd="vdom1" srcip=10.1.100.11 srcport=58012 srcintf="port12" dstip=23.59.154.35 dstport=80 dstintf="port11" sessionid=42 proto=6 action="deny" policyid=3 service="HTTP" sentbyte=100 rcvdbyte=0"#,
    r#"date=2019-05-13 time=11:45:03 logid="0419016384" type="utm" subtype="ips" level="alert" severity="critical" srcip=10.1.100.22 srcport=44362 dstip=172.16.200.55 dstport=80 proto=6 service="HTTP" attack="WordPress.Plugin.SQL.Injection" attackid=44015 action="dropped""#,
    r#"date=2019-05-13 time=11:45:03 logid="0419016384" type="utm" subtype="ips" level="alert" severity="high" srcip=10.1.100.22 srcport=44362 dstip=172.16.200.55 dstport=445 proto=6 service="SMB" attack="MS.SMB.Server.Trans.Peeking.Data.Information.Disclosure" attackid=43799 action="dropped""#,
    r#"date=2019-05-13 time=11:32:51 logid="0211008192" type="utm" subtype="virus" level="warning" srcip=10.1.100.11 dstip=172.16.200.55 srcport=44356 dstport=80 action="blocked" filename="eicar.com" virus="EICAR_TEST_FILE""#,
    r#"date=2019-05-13 time=11:32:51 logid="0316013056" type="utm" subtype="webfilter" level="warning" srcip=10.1.100.11 dstip=172.16.200.55 srcport=44356 dstport=80 action="blocked" catdesc="Malicious Websites" url="/bad""#,
    r#"date=2019-05-13 time=11:32:51 logid="0720018432" type="anomaly" subtype="anomaly" level="alert" severity="critical" srcip=198.51.100.9 dstip=10.0.0.1 dstport=80 attack="tcp_syn_flood" action="clear_session""#,
    r#"date=2016-06-17 time=02:37:41 devname=fw devid=FGT60 logid=0100032002 type=event subtype=system level=alert logdesc="Admin login failed" user="root" ui=ssh(198.51.100.77) action=login status=failed reason="name_invalid""#,
    r#"date=2016-06-17 time=02:37:41 devname=fw devid=FGT60 logid=0100032001 type=event subtype=system level=information logdesc="Admin login successful" user="admin" ui=https(10.0.0.2) action=login status=success"#,
    r#"date=2016-06-16 time=09:03:03 devname=fw devid=FGT60 logid=0100044547 type=event subtype=system level=information logdesc="Object attribute configured" user="admin" ui="GUI(192.0.2.8)" action=Edit cfgpath="firewall.policy" cfgobj="5""#,
    r#"date=2016-06-16 time=09:03:03 devname=fw devid=FGT60 logid=0100040704 type=event subtype=system level=notice logdesc="System performance statistics" action="perf-stats" cpu=12 mem=45 totalsession=300"#,
    "0,2023/03/02 10:00:01,013101000001,TRAFFIC,drop,0,2023/03/02 10:00:02,10.20.0.84,198.51.100.232,,,DENY-ALL,,,not-applicable,vsys1,INSPECTION,INSPECTION,ethernet1/1,,Log-Fwd,2023/03/02 10:00:02,0,1,500,500,0,0,0x0,udp,deny,0,0,0,1,2023/03/02 10:00:02,0,any,0,12345,0x8000000000000000,10.0.0.0-10.255.255.255,United States,0,1,0,policy-deny,150,42,25,260,,PA-VM-1",
    r#"1,2023/01/10 10:00:00,0123456789,THREAT,virus,2049,2023/01/10 10:00:00,198.51.100.5,10.0.0.8,0.0.0.0,0.0.0.0,allow-web,,,web-browsing,vsys1,untrust,trust,ethernet1/1,ethernet1/2,fwd,2023/01/10 10:00:00,777,1,80,50123,0,0,0x400000,tcp,reset-both,"eicar.com",Eicar Test File(100000),any,medium,server-to-client"#,
    r#"1,2023/01/10 10:00:00,0123456789,THREAT,url,2049,2023/01/10 10:00:00,10.0.0.8,198.51.100.5,0.0.0.0,0.0.0.0,allow-web,,,web-browsing,vsys1,trust,untrust,ethernet1/2,ethernet1/1,fwd,2023/01/10 10:00:00,778,1,50124,80,0,0,0x400000,tcp,block-url,"bad.example/x",(9999),malware,informational,client-to-server"#,
    "1,2023/01/10 10:05:00,0123456789,CONFIG,0,2049,2023/01/10 10:05:00,10.0.0.2,vsys1,edit,admin,Web,Succeeded, vsys  vsys1 rulebase security rules allow-web,1,0x0",
    r#"1,2023/01/10 10:05:00,0123456789,SYSTEM,auth,0,2023/01/10 10:05:00,,auth-fail,,0,0,general,medium,"failed authentication for user 'bob'. Reason: Invalid username/password. From: 10.0.0.7.",1,0x0"#,
    r#"{"timestamp":"2022-07-10T23:50:05.533101+0000","flow_id":4242424242,"in_iface":"eth1","event_type":"alert","src_ip":"198.51.100.4","src_port":52812,"dest_ip":"192.0.2.80","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2024468,"rev":3,"signature":"ET WEB_SPECIFIC_APPS OGNL Expression Injection (CVE-2017-9791)","category":"Attempted User Privilege Gain","severity":1},"http":{"hostname":"example.com","url":"/struts2","http_method":"POST","status":200}}"#,
    r#"{"timestamp":"2017-02-14T12:35:20.918367+0100","event_type":"flow","src_ip":"10.0.0.1","src_port":5000,"dest_ip":"10.0.0.2","dest_port":53,"proto":"UDP","app_proto":"dns","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":70,"bytes_toclient":120,"age":0}}"#,
    r#"{"timestamp":"2017-02-14T12:35:20+0000","event_type":"anomaly","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","proto":"TCP","anomaly":{"type":"decode","event":"decoder.ipv4.trunc_pkt"}}"#,
    r#"{"timestamp":"2017-02-14T12:35:20+0000","event_type":"fileinfo","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","src_port":80,"dest_port":5000,"proto":"TCP","fileinfo":{"filename":"/a.exe"}}"#,
    r#"{"timestamp":"2017-02-14T12:35:20+0000","event_type":"stats","stats":{"uptime":30,"flow":{"active":12}}}"#,
    r#"[action:"Drop"; ifdir:"inbound"; ifname:"eth2"; loguid:"{0x0}"; origin:"192.0.2.1"; time:"1557937550"; dst:"203.0.113.55"; proto:"6"; rule_name:"Cleanup"; s_port:"51000"; service:"445"; src:"10.1.2.3"; product:"VPN-1 & FireWall-1"]"#,
    r#"[action:"Detect"; origin:"10.0.0.1"; product:"IPS"; protection_name:"Microsoft SMB Remote Code Execution"; severity:"Critical"; src:"198.51.100.3"; dst:"10.0.0.20"; service:"445"; proto:"6"]"#,
    r#"[action:"Block"; origin:"10.0.0.1"; product:"Anti-Virus"; malware_name:"Trojan.Win32.Agent"; file_name:"a.exe"; src:"10.0.0.5"; dst:"203.0.113.9"]"#,
    r#"[origin:"10.0.0.1"; product:"SmartConsole"; operation:"Modify Rule"; administrator:"admin"; client_ip:"10.0.0.9"; objectname:"Standard"]"#,
    r#"2017-09-23T13:54:54.803Z srx RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39 source-address="192.168.10.5" source-port="51080" destination-address="192.168.20.2" destination-port="8080" protocol-id="17" policy-name="deny-all" source-zone-name="trust" destination-zone-name="untrust"]"#,
    r#"RT_IDP: RT_IDP_ATTACK_LOG_EVENT [junos@2636.1.1.1.2.135 source-address="198.51.100.27" source-port="45610" destination-address="10.0.0.1" destination-port="80" protocol-name="TCP" application-name="HTTP" threat-severity="HIGH" attack-name="HTTP:SQL:INJ:GENERIC"]"#,
    r#"RT_IDS - RT_SCREEN_TCP [junos@2636.1.1.1.2.39 attack-name="TCP SYN flood!" source-address="1.1.1.1" source-port="1234" destination-address="2.2.2.2" destination-port="80" protocol-id="6"]"#,
    r#"RT_IDS - RT_SCREEN_TCP [junos@2636.1.1.1.2.39 attack-name="TCP port scan!" source-address="1.1.1.1" destination-address="2.2.2.2" protocol-id="6"]"#,
    "filterlog: 7,,,1000103001,igb1,match,block,in,4,0x0,,64,31337,0,none,17,udp,120,10.8.0.23,10.8.0.255,17500,17500,100",
    "filterlog: 4,,,1000000103,igb0,match,pass,out,6,0x00,0x00000,64,tcp,6,40,2001:db8::5,2001:db8::1,51234,22,0,S,12345,,64240,,mss",
    "[UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:aa:bb:cc:00:16:3e:dd:ee:ff:08:00 SRC=203.0.113.7 DST=192.0.2.10 LEN=60 PROTO=TCP SPT=44123 DPT=23",
    r#"[Thu Mar 02 10:00:00.000001 2023] [security2:error] [pid 4242] [client 192.0.2.91:51234] ModSecurity: Access denied with code 403 (phase 2). [id "942100"] [msg "SQL Injection Attack Detected via libinjection"] [severity "CRITICAL"] [hostname "shop.example"] [uri "/item.php"]"#,
    "03/02/2023-10:29:32.251216  [**] [1:2008578:4] ET SCAN Sipvicious Scan [**] [Classification: Attempted Information Leak] [Priority: 2] {UDP} 203.0.113.216:5116 -> 192.0.2.55:5060",
    "02/14-12:35:20.918367  [**] [1:2003:8] MS-SQL Worm propagation attempt [**] [Classification: Misc Attack] [Priority: 2] {UDP} 10.0.0.1:1234 -> 10.0.0.2:1434",
    "snort[1]: [1:1002:7] WEB-IIS cmd.exe access [Classification: Web Application Attack] [Priority: 1]: {TCP} 198.51.100.4:4444 -> 10.0.0.80:80",
    "/var/www/uploads/invoice.doc: Doc.Trojan.Emotet-6720437-0 FOUND",
    "sshd[1]: Accepted publickey for deploy from 10.0.5.2 port 53000 ssh2: RSA SHA256:abc",
    "sshd[1]: Failed password for invalid user root from 203.0.113.9 port 40112 ssh2",
    "sshd[1]: Disconnected from user alice 10.0.0.4 port 50000",
    "sudo:     alice : TTY=pts/4 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/tail /var/log/messages",
    "sudo:     carol : user NOT in sudoers ; TTY=pts/3 ; PWD=/home/carol ; USER=root ; COMMAND=/bin/ls",
    "arbor-networks-aps: Blocked Host: Blocked host 203.0.113.66 at 23:23 by TCP SYN Flood Detection using TCP/3306 (MYSQL) destination 192.0.2.5 source port 4444,URL: http://web",
    "pfsp: Alert #10234: Host Detection alert started: host 192.0.2.10, signatures (UDP, NTP Amplification), direction Incoming, impact 4.5 Mbps/10.1 Kpps, importance High",
    "this line means nothing to any normaliser",
];

/// Corpus lines: up to `per_file` lines of every Wazuh file we claim and CrowdSec log we read.
fn corpus_lines(per_file: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(dir) = common::corpus("wazuh-ruleset-tests") {
        for f in [
            "fortigate.ini",
            "fortiddos.ini",
            "paloalto.ini",
            "cisco_asa.ini",
            "cisco_ftd.ini",
            "pix.ini",
            "checkpoint_smart1.ini",
            "junos.ini",
            "iptables.ini",
            "pfsense.ini",
            "modsecurity.ini",
            "sshd.ini",
            "sudo.ini",
            "su.ini",
            "arbor.ini",
        ] {
            out.extend(common::wazuh_lines(&dir.join(f)).into_iter().take(per_file));
        }
    }
    if let Some(dir) = common::corpus("crowdsec-hub-tests") {
        for d in [
            "suricata-logs-evelog",
            "suricata-logs-fastlog",
            "unifi-cef",
            "modsecurity-nginx",
            "proxmox-iptables-logs",
            "fortinet-vpn-bf",
            "pfsense-rfc5424-filterlog",
        ] {
            let Ok(rd) = std::fs::read_dir(dir.join(d)) else {
                continue;
            };
            for p in rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
            {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                out.extend(
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .take(per_file)
                        .map(String::from),
                );
            }
        }
    }
    out
}

#[test]
fn normalised_messages_validate_with_yanglint() {
    let lint = match pharos_model::conformance::Linter::new() {
        Ok(l) => l,
        Err(why) => {
            pharos_model::conformance::skip(&why);
            return;
        }
    };
    let mut lines: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
    lines.extend(corpus_lines(6));
    let mut docs = Vec::new();
    let mut per_format: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &lines {
        let input: LogInput<'_> = common::split(l);
        let n = normalize(&input, Format::Auto, "nsf-under-test");
        *per_format.entry(n.format).or_default() += 1;
        docs.push(json::encode(&n.message));
    }
    let n = lint.validate_json(&docs).unwrap_or_else(|e| panic!("{e}"));
    println!("validated {n} messages: {per_format:?}");
    assert_eq!(n, lines.len());
}
