//! The flat view of one message that every format is written from: addresses, ports, protocol,
//! classification, times, texts. Anonymisation is applied here, once, to every address and to
//! every address written inside a text, so no format can leak an original address.

use std::net::IpAddr;

use pharos_model::ident::{Identity, YangEnum};
use pharos_model::rsit::Classification;
use pharos_model::{Kind, Message, Severity, Timestamp};

use crate::ExportOptions;

/// One message, flattened for export.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub id: u64,
    pub kind: &'static str,
    pub is_event: bool,
    pub time: Timestamp,
    pub received: Timestamp,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub severity: Severity,
    pub class: Option<Classification>,
    pub nsf: String,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub src: Vec<IpAddr>,
    pub dst: Vec<IpAddr>,
    pub src_ports: Vec<u16>,
    pub dst_ports: Vec<u16>,
    /// AS number of the source and destination side (envelope `fields`); dropped by
    /// anonymisation (an AS names the network a pseudonym hides).
    pub src_as: Option<u32>,
    pub dst_as: Option<u32>,
    /// Transport protocol, IntelMQ / IANA keyword spelling (`tcp`, `udp`, `icmp`, `ipv6-icmp`).
    pub transport: Option<&'static str>,
    pub application: Option<String>,
    pub rule: Option<String>,
    pub user: Option<String>,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub http_method: Option<String>,
    pub http_status: Option<u16>,
    pub action: Option<String>,
    /// What exactly: the attack type, virus name, alarm category... (lowercase, never empty).
    pub identifier: String,
    pub malware: Option<String>,
    pub summary: String,
    pub rate_pps: Option<u64>,
    pub rate_bytes: Option<u64>,
    pub count: Option<u64>,
    pub raw: Option<String>,
    /// Kind-specific leaves with no common field, `snake_case` names.
    pub extra: Vec<(&'static str, String)>,
}

/// IANA protocol number of a transport keyword.
pub(crate) fn ip_protocol(transport: &str) -> Option<u8> {
    Some(match transport {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "dccp" => 33,
        "ipv6-icmp" => 58,
        "sctp" => 132,
        _ => return None,
    })
}

fn transport_of_protocol(
    p: pharos_model::ident::Protocol,
) -> (Option<&'static str>, Option<String>) {
    use pharos_model::ident::Protocol as P;
    match p {
        P::Tcp => (Some("tcp"), None),
        P::Udp => (Some("udp"), None),
        P::Sctp => (Some("sctp"), None),
        P::Dccp => (Some("dccp"), None),
        P::Icmp | P::Icmpv4 => (Some("icmp"), None),
        P::Icmpv6 => (Some("ipv6-icmp"), None),
        P::Ip | P::Ipv4 | P::Ipv6 | P::TransportProtocol | P::ApplicationProtocol => (None, None),
        app => (Some("tcp"), Some(app.name().to_string())),
    }
}

fn transport_of(t: pharos_model::ident::TransportProtocol) -> &'static str {
    use pharos_model::ident::TransportProtocol as T;
    match t {
        T::Tcp => "tcp",
        T::Udp => "udp",
        T::Sctp => "sctp",
        T::Dccp => "dccp",
    }
}

fn ddos_transport(a: pharos_model::ident::DdosType) -> Option<&'static str> {
    use pharos_model::ident::DdosType as D;
    Some(match a {
        D::SynFlood
        | D::AckFlood
        | D::SynAckFlood
        | D::FinRstFlood
        | D::TcpConFlood
        | D::HttpFlood
        | D::HttpsFlood
        | D::TlsFlood => "tcp",
        D::Icmpv4Flood => "icmp",
        D::Icmpv6Flood => "ipv6-icmp",
        D::FragmentFlood => return None,
        _ => "udp",
    })
}

fn opt<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

impl Record {
    /// The record of `m`, with `opts.anon` applied to every address.
    pub fn of(m: &Message, index: usize, opts: &ExportOptions<'_>) -> Self {
        let c = &m.common;
        let class = c.classification_of(&m.kind);
        let mut r = Record {
            id: c.id.unwrap_or(index as u64),
            kind: m.kind.name(),
            is_event: m.kind.is_event(),
            time: c.event_time,
            received: c.receive_time,
            start: None,
            end: m.end_time(),
            severity: c.severity,
            class,
            nsf: c.nsf_name.clone(),
            vendor: c.vendor_name.clone(),
            product: c.device_model.clone(),
            src: Vec::new(),
            dst: Vec::new(),
            src_ports: Vec::new(),
            dst_ports: Vec::new(),
            src_as: None,
            dst_as: None,
            transport: None,
            application: None,
            rule: m.rule_name().map(str::to_string),
            user: None,
            url: None,
            domain: None,
            http_method: None,
            http_status: None,
            action: None,
            identifier: m.kind.name().to_string(),
            malware: None,
            summary: String::new(),
            rate_pps: None,
            rate_bytes: None,
            count: c.count,
            raw: c.raw.clone(),
            extra: Vec::new(),
        };
        for (role, a) in m.addresses() {
            match role {
                pharos_model::AddrRole::Src if !r.src.contains(&a) => r.src.push(a),
                pharos_model::AddrRole::Dst if !r.dst.contains(&a) => r.dst.push(a),
                _ => {}
            }
        }
        r.fill_kind(&m.kind);
        r.fill_fields(c.fields.as_deref());
        r.summary = c.message.clone().unwrap_or_else(|| r.generated_summary());
        if let Some(src) = &c.source {
            r.extra.push(("received_from", src.clone()));
        }
        if let Some(anon) = opts.anon {
            r.anonymize(anon);
        }
        r
    }

    fn ports(&mut self, src: Option<u16>, dst: Option<u16>) {
        self.src_ports.extend(src);
        self.dst_ports.extend(dst);
    }

    fn fill_kind(&mut self, kind: &Kind) {
        match kind {
            Kind::SystemAlarm(a) => {
                if let Some(cat) = a.alarm_category {
                    self.identifier = cat.name().to_string();
                }
                self.push_extra("component_name", a.component_name.clone());
                self.push_extra("interface_name", a.interface_name.clone());
                self.push_extra("usage_percent", opt(a.usage));
                self.push_extra("threshold_percent", opt(a.threshold));
            }
            Kind::SystemEvent(e) => {
                if let Some(cat) = e.event_category {
                    self.identifier = cat.name().to_string();
                }
                self.user = Some(e.user.clone());
                self.ports(Some(e.l4_port_number), None);
                if !e.changes.is_empty() {
                    self.extra.push(("changes", e.changes.join(",")));
                }
            }
            Kind::TrafficFlows(f) => {
                self.ports(f.src_port, f.dst_port);
                if let Some(p) = f.protocol {
                    (self.transport, self.application) = transport_of_protocol(p);
                }
                self.push_extra("interface_name", f.interface_name.clone());
                self.rate_pps = f.arrival_rate;
                self.rate_bytes = f.arrival_throughput;
            }
            Kind::SessionTable(s) => {
                self.push_extra("current_session", opt(s.current_session));
                self.push_extra("maximum_session", opt(s.maximum_session));
                self.push_extra("threshold", opt(s.threshold));
            }
            Kind::SystemAccessLog(e) => {
                self.user = Some(e.user.clone());
                self.ports(Some(e.l4_port_number), None);
                if let Some(o) = e.operation_type {
                    self.identifier = o.as_str().to_string();
                }
                self.push_extra("input", e.input.clone());
            }
            Kind::ResourceUtilizationLog(u) => {
                self.push_extra("cpu_usage_percent", opt(u.cpu_usage));
                self.push_extra("memory_usage_percent", opt(u.memory_usage));
            }
            Kind::UserActivityLog(e) => {
                self.user = Some(e.user.clone());
                self.ports(Some(e.l4_port_number), None);
                if let Some(t) = e.additional_info.activity_type {
                    self.identifier = t.as_str().to_string();
                }
            }
            Kind::DpiLog(d) => {
                self.ports(d.src_port, d.dst_port);
                if let Some(t) = d.attack_type {
                    self.identifier = t.name().to_string();
                }
                self.action = d.action.first().map(|a| a.name().to_string());
            }
            Kind::Ddos(d) => {
                self.start = Some(d.start_time);
                self.src_ports.extend(&d.attack_src_port);
                self.dst_ports.extend(&d.attack_dst_port);
                if let Some(t) = d.attack_type {
                    self.identifier = t.name().to_string();
                    self.transport = ddos_transport(t);
                }
                self.rate_pps = d.attack_rate;
                self.rate_bytes = d.attack_throughput;
            }
            Kind::Virus(v) => {
                self.ports(v.src_port, v.dst_port);
                self.malware = v.virus_name.as_ref().map(|n| n.to_lowercase());
                if let Some(n) = &self.malware {
                    self.identifier = n.clone();
                } else if let Some(t) = v.virus_type {
                    self.identifier = t.name().to_string();
                }
                self.push_extra("virus_type", v.virus_type.map(|t| t.name().to_string()));
                self.push_extra("host", v.host.clone());
                self.push_extra("file_name", v.file_name.clone());
                self.push_extra("os", v.os.clone());
            }
            Kind::Intrusion(i) => {
                self.ports(i.src_port, i.dst_port);
                self.transport = i.protocol.map(transport_of);
                self.application = i.app.map(|a| a.name().to_string());
                if let Some(t) = i.attack_type {
                    self.identifier = t.name().to_string();
                }
            }
            Kind::WebAttack(w) => {
                self.ports(w.src_port, w.dst_port);
                self.transport = Some("tcp");
                self.application = Some("http".into());
                if let Some(t) = w.attack_type {
                    self.identifier = t.name().to_string();
                }
                self.http_method = w.req_method.map(|m| m.name().to_uppercase());
                self.domain = w.req_host.clone();
                self.url = w.req_target.as_ref().map(|t| match &w.req_host {
                    Some(h) if t.starts_with('/') => format!("http://{h}{t}"),
                    _ => t.clone(),
                });
                self.http_status = w.response_code.as_deref().and_then(|c| c.parse().ok());
            }
            Kind::VoipVocn(v) => {
                self.ports(v.src_port, v.dst_port);
                self.application = Some("sip".into());
                if !v.source_voice_id.is_empty() {
                    self.extra
                        .push(("source_voice_id", v.source_voice_id.join(",")));
                }
                if !v.destination_voice_id.is_empty() {
                    self.extra
                        .push(("destination_voice_id", v.destination_voice_id.join(",")));
                }
            }
            Kind::Counters(_) => {}
            Kind::Botnet(b) => {
                self.ports(b.src_port, b.dst_port);
                self.transport = b.protocol.map(transport_of);
                self.malware = b.botnet_name.as_ref().map(|n| n.to_lowercase());
                if let Some(n) = &self.malware {
                    self.identifier = n.clone();
                }
                self.push_extra("role", b.role.clone());
                self.push_extra("packets", opt(b.botnet_pkt_num));
            }
            Kind::VulnerabilityScanLog(v) => {
                self.dst_ports.extend(v.port);
                self.transport = v.protocol.map(transport_of);
                self.identifier = v.vulnerability_id.to_lowercase();
                self.push_extra("vulnerability_id", Some(v.vulnerability_id.clone()));
                self.push_extra("vulnerability_name", v.vulnerability_name.clone());
                self.push_extra("os", v.os.clone());
                self.push_extra("fix_suggestion", v.fix_suggestion.clone());
            }
            Kind::FirewallTrafficLog(f) => {
                self.ports(f.src_port, f.dst_port);
                if let Some(p) = f.protocol {
                    (self.transport, self.application) = transport_of_protocol(p);
                }
                self.action = f.action.map(|a| a.name().to_string());
                self.user = f.user.clone();
                if f.application.is_some() {
                    self.application = f.application.clone();
                }
                self.push_extra("sent_bytes", opt(f.sent_bytes));
                self.push_extra("received_bytes", opt(f.received_bytes));
            }
            Kind::GenericLog(g) => {
                self.push_extra("format", g.format.clone());
                self.push_extra("app_name", g.app_name.clone());
            }
        }
    }

    /// Fills what the case left empty from the envelope's vendor fields.
    fn fill_fields(&mut self, f: Option<&pharos_model::LogFields>) {
        let Some(f) = f else { return };
        if self.src_ports.is_empty() {
            self.src_ports.extend(f.src_port);
        }
        if self.dst_ports.is_empty() {
            self.dst_ports.extend(f.dst_port);
        }
        if self.transport.is_none() {
            self.transport = match f.protocol.as_deref() {
                Some("tcp") => Some("tcp"),
                Some("udp") => Some("udp"),
                Some("icmp") => Some("icmp"),
                Some("sctp") => Some("sctp"),
                Some("icmpv6" | "ipv6-icmp") => Some("ipv6-icmp"),
                _ => None,
            };
        }
        let fill = |slot: &mut Option<String>, v: &Option<String>| {
            if slot.is_none() {
                slot.clone_from(v);
            }
        };
        fill(&mut self.application, &f.application);
        fill(&mut self.rule, &f.rule_name);
        fill(&mut self.user, &f.user);
        fill(&mut self.url, &f.url);
        fill(&mut self.domain, &f.domain);
        fill(&mut self.http_method, &f.http_method);
        fill(&mut self.action, &f.action);
        if self.http_status.is_none() {
            self.http_status = f.http_status;
        }
        self.src_as = f.src_as;
        self.dst_as = f.dst_as;
        self.push_extra("user_agent", f.user_agent.clone());
        self.push_extra("file_name", f.file_name.clone());
        self.push_extra("mail_from", f.mail_from.clone());
        self.push_extra("mail_to", f.mail_to.clone());
        self.push_extra("session_id", f.session_id.clone());
        self.push_extra("message_id", f.message_id.clone());
    }

    fn push_extra(&mut self, key: &'static str, v: Option<String>) {
        if let Some(v) = v.filter(|v| !v.is_empty())
            && !self.extra.iter().any(|(k, _)| *k == key)
        {
            self.extra.push((key, v));
        }
    }

    fn generated_summary(&self) -> String {
        let mut s = format!("{} {}", self.kind, self.identifier);
        if let Some(a) = self.src.first() {
            s.push_str(&format!(" from {a}"));
            if self.src.len() > 1 {
                s.push_str(&format!(" (+{} more)", self.src.len() - 1));
            }
        }
        if let Some(a) = self.dst.first() {
            s.push_str(&format!(" to {a}"));
            if let Some(p) = self.dst_ports.first() {
                s.push_str(&format!(" port {p}"));
            }
        }
        s
    }

    fn anonymize(&mut self, anon: &dyn Fn(IpAddr) -> IpAddr) {
        // The AS of a side goes when one of its addresses was changed (a pseudonym would be
        // undone by the AS beside it); a side left in clear (a notice recipient's own) keeps it.
        let changed = |list: &mut Vec<IpAddr>| {
            let mut any = false;
            for a in list.iter_mut() {
                let b = anon(*a);
                any |= b != *a;
                *a = b;
            }
            any
        };
        if changed(&mut self.src) || self.src.is_empty() {
            self.src_as = None;
        }
        if changed(&mut self.dst) || self.dst.is_empty() {
            self.dst_as = None;
        }
        let text = |s: &mut String| *s = anonymize_text(s, anon);
        let opt_text = |s: &mut Option<String>| {
            if let Some(s) = s {
                *s = anonymize_text(s, anon);
            }
        };
        text(&mut self.nsf);
        text(&mut self.summary);
        opt_text(&mut self.raw);
        opt_text(&mut self.url);
        opt_text(&mut self.domain);
        opt_text(&mut self.user);
        opt_text(&mut self.rule);
        opt_text(&mut self.vendor);
        opt_text(&mut self.product);
        for (_, v) in &mut self.extra {
            text(v);
        }
    }
}

/// `s` with every IPv4 or IPv6 address written in it replaced by `anon`'s image (found by
/// [`pharos_anon::find_addresses`]: a port or a full stop after it is kept, versions such as
/// `1.2.3.4.5`, times and MAC addresses are not taken for addresses).
pub(crate) fn anonymize_text(s: &str, anon: &dyn Fn(IpAddr) -> IpAddr) -> String {
    pharos_anon::replace_addresses(s, |a| {
        let b = anon(a);
        (b != a).then(|| b.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zero(a: IpAddr) -> IpAddr {
        match a {
            IpAddr::V4(_) => "10.0.0.1".parse().unwrap(),
            IpAddr::V6(_) => "fd00::1".parse().unwrap(),
        }
    }

    #[test]
    fn addresses_in_text_are_replaced_with_ports_and_words_kept() {
        let s = "deny 192.0.2.1:4444 -> [2001:db8::7]:443 src=198.51.100.9. ok deadbeef 1.5 v1.2.3.4 1.2.3.4.5";
        let out = anonymize_text(s, &zero);
        assert_eq!(
            out,
            "deny 10.0.0.1:4444 -> [fd00::1]:443 src=10.0.0.1. ok deadbeef 1.5 v1.2.3.4 1.2.3.4.5"
        );
    }
}
