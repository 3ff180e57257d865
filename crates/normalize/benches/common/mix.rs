// The vendor mix shared by the criterion bench and the CPU-time example (included, not a module).
// `mix()` is the message text after the syslog header; `syslog_mix()` is the same records as full
// syslog lines, each with the header its vendor sends (RFC 3164 with time and host, or RFC 5424).

const FGT_TRAFFIC: &str = r#"date=2019-05-10 time=11:50:48 logid="0000000013" type="traffic" subtype="forward" level="notice" vd="vdom1" eventtime=1557514248379911176 srcip=10.1.100.11 srcport=58012 srcintf="port12" srcintfrole="undefined" dstip=23.59.154.35 dstport=80 dstintf="port11" dstintfrole="undefined" poluuid="c2d460aa-fe6f-51e8-9505-41b5117dfdd4" sessionid=4414 proto=6 action="close" policyid=1 policytype="policy" service="HTTP" dstcountry="United States" srccountry="Reserved" trandisp="snat" transip=172.16.200.2 transport=58012 appid=34050 app="HTTP.BROWSER_Firefox" appcat="Web.Client" apprisk="elevated" applist="g-default" duration=116 sentbyte=1188 rcvdbyte=1224 sentpkt=17 rcvdpkt=16 utmaction="allow" countapp=1 devid="FG100D3G16800000""#;
const FGT_IPS: &str = r#"date=2019-05-13 time=11:45:03 logid="0419016384" type="utm" subtype="ips" eventtype="signature" level="alert" vd="vdom1" eventtime=1557773104 severity="critical" srcip=10.1.100.22 srccountry="Reserved" dstip=172.16.200.55 srcintf="port12" dstintf="port11" sessionid=901 action="dropped" proto=6 service="HTTP" policyid=1 attack="Adobe.Flash.newfunction.Handling.Code.Execution" srcport=46810 dstport=80 hostname="172.16.200.55" url="/flash.swf" direction="incoming" attackid=23305 profile="block-critical-ips" ref="http://www.fortinet.com/ids/VID23305" incidentserialno=582633933 msg="applications3: Adobe.Flash.newfunction.Handling.Code.Execution,""#;
const FGT_VIRUS: &str = r#"date=2019-05-13 time=11:32:51 logid="0211008192" type="utm" subtype="virus" eventtype="infected" level="warning" vd="vdom1" eventtime=1557772371 msg="File is infected." action="blocked" service="HTTP" sessionid=359260 srcip=10.1.100.11 dstip=172.16.200.55 srcport=44356 dstport=80 srcintf="port12" dstintf="port11" policyid=4 proto=6 direction="incoming" filename="eicar.com" quarskip="File-was-not-quarantined." virus="EICAR_TEST_FILE" dtype="Virus" ref="http://www.fortinet.com/ve?vn=EICAR_TEST_FILE" virusid=2172 url="http://172.16.200.55/virus/eicar.com" profile="default" agent="curl/7.47.0" analyticscksum="275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f" analyticssubmit="false" crscore=50 crlevel="critical""#;
const PAN_TRAFFIC: &str = "1,2023/03/02 10:00:01,013201001234,TRAFFIC,end,2049,2023/03/02 10:00:02,10.0.0.84,51.11.168.232,203.0.113.10,51.11.168.232,allow-web,,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,fwd,2023/03/02 10:00:02,5129,1,51515,443,41234,443,0x40001c,tcp,allow,5321,1234,4087,22,2021/07/15 11:58:30,30,computer-and-internet-info,0,7391,0x0,10.0.0.0-10.255.255.255,United States,0,11,11,tcp-fin,0,0,0,0,,PA-3220,from-policy,,,0,,0,,N/A,0,0,0,0";
const PAN_THREAT: &str = r#"1,2023/03/02 11:00:01,013201001234,THREAT,vulnerability,2049,2023/03/02 11:00:00,203.0.113.165,10.30.250.61,203.0.113.165,10.30.0.19,web-in,,,web-browsing,vsys1,untrust,trust,ethernet1/1,tunnel.2,Fwd,2023/03/02 11:00:00,51557,1,55094,443,55094,443,0x502000,tcp,reset-both,"getuser",D-Link Router Information Disclosure Vulnerability(90470),any,high,client-to-server,7293,0x2000000000000000,United States,10.0.0.0-10.255.255.255,0,,0,,,0,,,,,,,,0,0,0,0,0,,PA-3220,,,,,0,,0,,N/A,info-leak,AppThreat-8411-6742,0x0,0,4294967295"#;
const ASA_BUILT: &str = "%ASA-6-302013: Built outbound TCP connection 1234567 for outside:198.51.100.7/443 (198.51.100.7/443) to inside:10.0.0.5/51000 (203.0.113.9/51000)";
const ASA_TEARDOWN: &str = "%ASA-6-302014: Teardown TCP connection 1234567 for outside:198.51.100.7/443 to inside:10.0.0.5/51000 duration 0:01:05 bytes 6543 TCP FINs";
const ASA_DENY: &str = r#"%ASA-4-106023: Deny tcp src outside:203.0.113.99/51234 dst inside:10.0.0.25/3389 by access-group "outside_access_in" [0x0, 0x0]"#;
const CHECKPOINT: &str = r#"[action:"Drop"; ifdir:"inbound"; ifname:"eth2"; logid:"0"; loguid:"{0x0,0x0,0x0,0x0}"; origin:"192.0.2.1"; originsicname:"CN=fw,O=mgmt"; sequencenum:"11"; time:"1557937550"; version:"5"; dst:"203.0.113.55"; inzone:"Internal"; layer_name:"Network"; outzone:"External"; product:"VPN-1 & FireWall-1"; proto:"6"; rule_name:"Cleanup rule"; s_port:"51000"; service:"445"; src:"10.1.2.3"]"#;
const NETFILTER: &str = "[UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:aa:bb:cc:00:16:3e:dd:ee:ff:08:00 SRC=203.0.113.7 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=51 ID=0 DF PROTO=TCP SPT=44123 DPT=23 WINDOW=29200 RES=0x00 SYN URGP=0";
const FILTERLOG: &str = "7,,,1000103001,igb1,match,block,in,4,0x0,,64,31337,0,none,17,udp,120,10.8.0.23,10.8.0.255,17500,17500,100";
const EVE: &str = r#"{"timestamp":"2022-07-10T23:50:05.533101+0000","flow_id":4242424242,"in_iface":"eth1","event_type":"alert","src_ip":"203.0.113.216","src_port":5116,"dest_ip":"192.0.2.55","dest_port":5060,"proto":"UDP","community_id":"1:abc","alert":{"action":"allowed","gid":1,"signature_id":2008578,"rev":4,"signature":"ET SCAN Sipvicious Scan","category":"Attempted Information Leak","severity":2,"metadata":{"created_at":["2010_07_30"]}},"app_proto":"sip","flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":462,"bytes_toclient":0,"start":"2022-07-10T23:50:05.533101+0000"}}"#;
const SSHD: &str = "Failed password for invalid user admin from 203.0.113.9 port 40112 ssh2";
const MODSEC: &str = r#"[Thu Mar 02 10:00:00.000001 2023] [security2:error] [pid 4242] [client 192.0.2.91:51234] ModSecurity: Access denied with code 403 (phase 2). Pattern match "(?i)union.*select" at ARGS:id. [file "/etc/modsecurity/REQUEST-942-APPLICATION-ATTACK-SQLI.conf"] [line "45"] [id "942100"] [msg "SQL Injection Attack Detected via libinjection"] [severity "CRITICAL"] [tag "attack-sqli"] [hostname "shop.example"] [uri "/item.php"] [unique_id "ZAAAAAAAAAAAAAAAAAAAAAAA"]"#;

/// `(text, app name)` per line of the mix.
fn mix() -> Vec<(&'static str, Option<&'static str>)> {
    let mut v = Vec::new();
    for _ in 0..6 {
        v.push((FGT_TRAFFIC, None));
    }
    v.push((FGT_IPS, None));
    v.push((FGT_VIRUS, None));
    v.push((PAN_TRAFFIC, None));
    v.push((PAN_TRAFFIC, None));
    v.push((PAN_THREAT, None));
    v.push((ASA_BUILT, None));
    v.push((ASA_TEARDOWN, None));
    v.push((ASA_DENY, None));
    v.push((CHECKPOINT, Some("CheckPoint")));
    v.push((NETFILTER, Some("kernel")));
    v.push((FILTERLOG, Some("filterlog")));
    v.push((EVE, Some("suricata")));
    v.push((SSHD, Some("sshd")));
    v.push((MODSEC, None));
    v
}


/// The syslog header in front of each line of [`mix`], in the same order: the header each vendor
/// sends (RFC 3164 with timestamp and hostname, ASA with a year and ` : `, Suricata in RFC 5424).
fn syslog_headers() -> Vec<&'static str> {
    let mut v = Vec::new();
    v.extend(std::iter::repeat_n("<189>May 10 11:50:48 FG100D3G16800000 ", 8));
    v.extend(std::iter::repeat_n("<14>Mar  2 10:00:01 PA-3220 ", 3));
    v.extend(std::iter::repeat_n("<166>Mar 02 2023 10:00:00 asa-edge : ", 3));
    v.push("<134>Mar  2 10:00:00 cp-mgmt CheckPoint[13752]: ");
    v.push("<4>Mar  2 10:00:00 gw kernel: ");
    v.push("<134>Mar  2 10:00:00 pfsense filterlog[44163]: ");
    v.push("<14>1 2022-07-10T23:50:05.533101+00:00 ids01 suricata 1234 - - ");
    v.push("<38>Mar  2 10:00:00 bastion sshd[31738]: ");
    v.push("<131>Mar  2 10:00:00 web1 apache2: ");
    v
}

/// The records of [`mix`] as full syslog lines (header + text), in the same order.
fn syslog_mix() -> Vec<String> {
    syslog_headers()
        .into_iter()
        .zip(mix())
        .map(|(h, (text, _))| format!("{h}{text}"))
        .collect()
}

