//! The fields of a message that threshold and correlation rules match and count on.

use std::net::IpAddr;

use pharos_model::ident::{Identity, YangEnum};
use pharos_model::{AddrRole, Kind, Message};

/// The tracking and matching fields of a message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    /// Kind name.
    pub kind: &'static str,
    /// Rule name.
    pub rule: Option<&'a str>,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// User name.
    pub user: Option<&'a str>,
    /// User-activity type.
    pub activity: Option<&'static str>,
    /// Firewall action.
    pub action: Option<&'static str>,
    /// Message text.
    pub text: Option<&'a str>,
    /// Raw record.
    pub raw: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub(super) fn holds(&self, s: &str) -> bool {
        self.text.is_some_and(|t| t.contains(s)) || self.raw.is_some_and(|t| t.contains(s))
    }

    /// The fields of `m`.
    pub fn of(m: &'a Message) -> Self {
        let mut f = Fields {
            kind: m.kind.name(),
            rule: m.rule_name(),
            text: m.common.message.as_deref(),
            raw: m.common.raw.as_deref(),
            ..Fields::default()
        };
        for (role, a) in m.addresses() {
            match role {
                AddrRole::Src if f.src.is_none() => f.src = Some(a),
                AddrRole::Dst if f.dst.is_none() => f.dst = Some(a),
                _ => {}
            }
        }
        match &m.kind {
            Kind::UserActivityLog(e) => {
                f.user = Some(&e.user);
                f.src_port = Some(e.l4_port_number).filter(|p| *p != 0);
                f.activity = e.additional_info.activity_type.map(|t| t.as_str());
            }
            Kind::SystemAccessLog(e) => f.user = Some(&e.user),
            Kind::SystemEvent(e) => f.user = Some(&e.user),
            Kind::FirewallTrafficLog(e) => {
                (f.src_port, f.dst_port) = (e.src_port, e.dst_port);
                f.user = e.user.as_deref();
                f.action = e.action.map(|a| a.name());
            }
            Kind::Intrusion(e) => (f.src_port, f.dst_port) = (e.src_port, e.dst_port),
            Kind::WebAttack(e) => (f.src_port, f.dst_port) = (e.src_port, e.dst_port),
            Kind::TrafficFlows(e) => (f.src_port, f.dst_port) = (e.src_port, e.dst_port),
            _ => {}
        }
        f
    }
}
