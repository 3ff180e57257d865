//! `[rid]` and `[[rid.peer]]` of `pharos.toml`: whether Pharos is a RID peer, its listening
//! address, name and certificates, the limits of its server and client, and its peers with their
//! policy and how traffic that came through them is recognised in our flow archive.
//!
//! Contract: RID is off unless `enabled = true`; [`RidConfig::validate`] checks every value that
//! needs no file (the files are read when the stage starts, and a failure names the key), and
//! every error names `[rid]` or `[[rid.peer]] #n`, the key, the value and the fix.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use pharos_model::config::{ConfigDuration, ConfigError};
use serde::{Deserialize, Serialize};

use crate::enums::{ConfidenceRating, MsgType, PolicyRegion, TrafficType};
use crate::iodef::Confidence;
use crate::transport::{ClientSettings, Fingerprint, Peer, RateLimit, ServerSettings};

/// `[rid]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RidConfig {
    /// Whether the RID server, client and trace workflow run (default false).
    pub enabled: bool,
    /// Where the RID server listens (default `0.0.0.0:4590`, the IANA port).
    pub listen: SocketAddr,
    /// Our RID system's DNS name: the name on our certificate, in the SP path and in
    /// `IncidentID/@name`.
    pub name: String,
    /// Our certificate chain (PEM), for TLS (server and client) and for signing.
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8 for signing).
    pub key: PathBuf,
    /// The CA that signs the peers' certificates (PEM).
    pub ca: PathBuf,
    /// The state table (SQLite); empty: `rid.db` in the data directory.
    pub state: PathBuf,
    /// Our organisation as IODEF `Contact` (default: the name).
    pub contact: String,
    /// Largest message body accepted or read (bytes, default 4 MiB).
    pub max_body: usize,
    /// Messages per minute a peer may send (default 60).
    pub rate_per_minute: u32,
    /// Messages a peer may send in a burst above the rate (default 20).
    pub rate_burst: u32,
    /// Open incidents a peer may have with us; past it its requests are denied (default 100).
    pub max_open_incidents: u64,
    /// Time the server's handler may take to answer inline (default 30 s).
    pub handler_timeout: ConfigDuration,
    /// Attempts per message sent, the first included (default 5).
    pub max_attempts: u32,
    /// Wait before the first retry (default 1 s), doubled at each retry.
    pub initial_backoff: ConfigDuration,
    /// Longest wait between retries (default 60 s).
    pub max_backoff: ConfigDuration,
    /// Time for one whole exchange with a peer (default 60 s).
    pub request_timeout: ConfigDuration,
    /// How far before an attack's start our archive is searched for its flows (default 10 min).
    pub lookback: ConfigDuration,
    /// Example flow records put in a TraceRequest we originate (default 5, at most 50).
    pub example_records: usize,
    /// An open incident with no change for this long is closed (status `closed`, reason
    /// `expired`) and stops counting against `max_open_incidents` (default 24 h).
    pub incident_ttl: ConfigDuration,
    /// Fixed addresses for peer host names, bypassing DNS: `{ "rid-b.example" = "192.0.2.7" }`
    /// (the port comes from the peer's URL).
    pub resolve: std::collections::BTreeMap<String, IpAddr>,
    /// The peers.
    pub peer: Vec<PeerConfig>,
}

impl Default for RidConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], crate::transport::DEFAULT_PORT)),
            name: String::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            ca: PathBuf::new(),
            state: PathBuf::new(),
            contact: String::new(),
            max_body: crate::transport::DEFAULT_MAX_BODY,
            rate_per_minute: 60,
            rate_burst: 20,
            max_open_incidents: 100,
            handler_timeout: ConfigDuration::from_secs(30),
            max_attempts: 5,
            initial_backoff: ConfigDuration::from_secs(1),
            max_backoff: ConfigDuration::from_secs(60),
            request_timeout: ConfigDuration::from_secs(60),
            lookback: ConfigDuration::from_secs(600),
            example_records: 5,
            incident_ttl: ConfigDuration::from_secs(86_400),
            resolve: Default::default(),
            peer: Vec::new(),
        }
    }
}

/// `[[rid.peer]]`: one peer, its policy, and how its traffic is recognised.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// Its name in Pharos (logs, state table, metrics); unique.
    pub name: String,
    /// Its RID server: `https://<dns_id>:4590/`.
    pub url: String,
    /// The pin of its certificate: `cert-sha256:<hex>` or `spki-sha256:<hex>`.
    pub fingerprint: String,
    /// The DNS-ID its certificate carries (and its URL's host); empty: the URL's host.
    pub dns_id: String,
    /// Message types we accept from it (default TraceRequest, InvestigationRequest, Result,
    /// Acknowledgement, Report, Query).
    pub accept: Vec<String>,
    /// Message types we send to it (same default).
    pub send: Vec<String>,
    /// `TrafficType`s of our requests to it, and the ones we accept (default `Attack`).
    pub traffic_types: Vec<String>,
    /// `PolicyRegion` of our messages to it (default `PeerToPeer`).
    pub region: String,
    /// Whether its requests are acted on at once (default true) or wait for an analyst
    /// (Acknowledgement Pending).
    pub auto_approve: bool,
    /// Whether an attack that entered through it starts a TraceRequest to it at once (default
    /// true); otherwise an analyst starts it (`pharos rid trace`).
    pub auto_trace: bool,
    /// Lowest `Confidence` of its requests we act on: `low`, `medium` or `high` (default low).
    pub min_confidence: String,
    /// Whether its Queries are answered about any of our incidents (default false: only
    /// about incidents it took part in; others get Acknowledgement Denied).
    pub share_all: bool,
    /// Its signing certificate (PEM) when it signs with another key than its TLS one.
    pub signing_cert: PathBuf,
    /// Where its traffic enters our network: `"exporter:ifIndex"` (`"192.0.2.1:3"`).
    pub exporters: Vec<String>,
    /// Its AS numbers, as our flows' source AS show them.
    pub neighbor_as: Vec<u32>,
    /// Next-hop addresses that lead to it.
    pub next_hops: Vec<IpAddr>,
}

impl Default for PeerConfig {
    fn default() -> Self {
        let all: Vec<String> = [
            "TraceRequest",
            "InvestigationRequest",
            "Acknowledgement",
            "Result",
            "Report",
            "Query",
        ]
        .map(String::from)
        .to_vec();
        Self {
            name: String::new(),
            url: String::new(),
            fingerprint: String::new(),
            dns_id: String::new(),
            accept: all.clone(),
            send: all,
            traffic_types: vec!["Attack".into()],
            region: "PeerToPeer".into(),
            auto_approve: true,
            auto_trace: true,
            min_confidence: "low".into(),
            share_all: false,
            signing_cert: PathBuf::new(),
            exporters: Vec::new(),
            neighbor_as: Vec::new(),
            next_hops: Vec::new(),
        }
    }
}

/// A peer's configuration, checked and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPolicy {
    /// The allow-list entry.
    pub peer: Peer,
    /// Its URL.
    pub url: String,
    /// Types accepted from it.
    pub accept: Vec<MsgType>,
    /// Types sent to it.
    pub send: Vec<MsgType>,
    /// Traffic types.
    pub traffic_types: Vec<TrafficType>,
    /// Policy region.
    pub region: PolicyRegion,
    /// Act on its requests without an analyst.
    pub auto_approve: bool,
    /// Trace through it without an analyst.
    pub auto_trace: bool,
    /// Lowest confidence rank acted on (1 low, 2 medium, 3 high).
    pub min_confidence: u8,
    /// Answer its Queries about any of our incidents, not only those it took part in.
    pub share_all: bool,
    /// Its signing certificate file, if other than its TLS certificate.
    pub signing_cert: Option<PathBuf>,
    /// `(exporter, ifIndex)` pairs where its traffic enters.
    pub exporters: Vec<(IpAddr, u32)>,
    /// Its AS numbers.
    pub neighbor_as: Vec<u32>,
    /// Next hops toward it.
    pub next_hops: Vec<IpAddr>,
}

impl PeerPolicy {
    /// Whether a flow that entered at `exporter`/`in_if`, from source AS `src_as`, with next
    /// hop `next_hop`, came through this peer.
    pub fn carried(
        &self,
        exporter: IpAddr,
        in_if: u32,
        src_as: u32,
        next_hop: Option<IpAddr>,
    ) -> bool {
        self.exporters.contains(&(exporter, in_if))
            || (src_as != 0 && self.neighbor_as.contains(&src_as))
            || next_hop.is_some_and(|h| self.next_hops.contains(&h))
    }
}

/// The rank of a confidence: 1 low, 2 medium, 3 high (a numeric value in 0..=1 is ranked by
/// thirds; unknown is 0).
pub fn confidence_rank(c: &Confidence) -> u8 {
    match c.rating {
        ConfidenceRating::Low => 1,
        ConfidenceRating::Medium => 2,
        ConfidenceRating::High => 3,
        ConfidenceRating::Numeric => match c.value {
            Some(v) if v >= 2.0 / 3.0 => 3,
            Some(v) if v >= 1.0 / 3.0 => 2,
            Some(_) => 1,
            None => 0,
        },
        ConfidenceRating::Unknown => 0,
    }
}

fn msg_type(s: &str) -> Option<MsgType> {
    Some(match s {
        "TraceRequest" => MsgType::TraceRequest,
        "InvestigationRequest" => MsgType::InvestigationRequest,
        "Acknowledgement" => MsgType::Acknowledgement,
        "Result" => MsgType::Result,
        "Report" => MsgType::Report,
        "Query" => MsgType::Query,
        _ => return None,
    })
}

fn traffic_type(s: &str) -> Option<TrafficType> {
    Some(match s {
        "Attack" => TrafficType::Attack,
        "Network" => TrafficType::Network,
        "Content" => TrafficType::Content,
        "DataWithHandlingRequirements" => TrafficType::DataWithHandlingRequirements,
        "AudienceRestriction" => TrafficType::AudienceRestriction,
        "Other" => TrafficType::Other,
        _ => return None,
    })
}

fn region(s: &str) -> Option<PolicyRegion> {
    Some(match s {
        "ClientToSP" => PolicyRegion::ClientToSp,
        "SPToClient" => PolicyRegion::SpToClient,
        "IntraConsortium" => PolicyRegion::IntraConsortium,
        "PeerToPeer" => PolicyRegion::PeerToPeer,
        "BetweenConsortiums" => PolicyRegion::BetweenConsortiums,
        _ => return None,
    })
}

const MSG_TYPES: &str =
    "TraceRequest, InvestigationRequest, Acknowledgement, Result, Report, Query";

impl RidConfig {
    /// Checks every value that needs no file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let err = |key: &str, value: String, expected: &str| {
            Err(ConfigError::new("rid", key, value, expected))
        };
        if self.name.is_empty()
            || self.name.contains('*')
            || self.name.contains(char::is_whitespace)
        {
            return err(
                "name",
                format!("{:?}", self.name),
                "give our RID system's DNS name (the DNS-ID of our certificate), e.g. \"rid.example.net\"",
            );
        }
        for (key, p) in [("cert", &self.cert), ("key", &self.key), ("ca", &self.ca)] {
            if p.as_os_str().is_empty() {
                return err(
                    key,
                    "\"\"".into(),
                    "is required when enabled = true: give the path of a PEM file",
                );
            }
        }
        if self.max_body == 0 {
            return err(
                "max_body",
                "0".into(),
                "give a size in bytes (default 4194304)",
            );
        }
        if self.rate_per_minute == 0 || self.rate_burst == 0 {
            return err(
                "rate_per_minute",
                format!("{} (burst {})", self.rate_per_minute, self.rate_burst),
                "rate_per_minute and rate_burst must be at least 1",
            );
        }
        if self.max_attempts == 0 {
            return err("max_attempts", "0".into(), "give at least 1 (default 5)");
        }
        for (key, d) in [
            ("handler_timeout", self.handler_timeout),
            ("initial_backoff", self.initial_backoff),
            ("max_backoff", self.max_backoff),
            ("request_timeout", self.request_timeout),
            ("incident_ttl", self.incident_ttl),
        ] {
            if d.get().is_zero() {
                return err(key, format!("\"{d}\""), "give a duration like \"10s\"");
            }
        }
        if self.example_records > 50 {
            return err(
                "example_records",
                self.example_records.to_string(),
                "give 0 to 50 (default 5)",
            );
        }
        if self.peer.is_empty() {
            return Err(ConfigError::new(
                "rid",
                "peer",
                "[]",
                "enabled = true needs at least one [[rid.peer]] with name, url and fingerprint",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, _) in self.peer.iter().enumerate() {
            let p = self.peer_policy(i)?;
            if !names.insert(p.peer.name.clone()) {
                return Err(ConfigError::new(
                    "rid",
                    format!("peer[{}].name", i + 1),
                    format!("{:?}", p.peer.name),
                    "is used twice; give each peer its own name",
                ));
            }
        }
        Ok(())
    }

    /// The `i`-th peer (from 0), checked and typed.
    pub fn peer_policy(&self, i: usize) -> Result<PeerPolicy, ConfigError> {
        let Some(p) = self.peer.get(i) else {
            return Err(ConfigError::new("rid.peer", "index", i, "no such peer"));
        };
        let n = i + 1;
        let bad = |key: &str, value: String, expected: String| {
            ConfigError::new("rid", format!("peer[{n}].{key}"), value, expected)
        };
        if p.name.is_empty() || p.name.chars().any(|c| c.is_control()) {
            return Err(bad(
                "name",
                format!("{:?}", p.name),
                "give the peer a name (letters, digits, dashes)".into(),
            ));
        }
        let url = reqwest::Url::parse(&p.url).map_err(|e| {
            bad(
                "url",
                format!("{:?}", p.url),
                format!("{e}: give https://<its DNS name>:4590/"),
            )
        })?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(bad(
                "url",
                format!("{:?}", p.url),
                "give https://<its DNS name>:4590/ (RID travels over https only)".into(),
            ));
        }
        let fingerprint = Fingerprint::parse(&p.fingerprint).map_err(|e| {
            bad(
                "fingerprint",
                format!("{:?}", p.fingerprint),
                format!("{e}; give cert-sha256:<64 hex> or spki-sha256:<64 hex>"),
            )
        })?;
        let dns_id = if p.dns_id.is_empty() {
            url.host_str().unwrap_or_default().to_string()
        } else {
            p.dns_id.clone()
        };
        if dns_id.contains('*') {
            return Err(bad(
                "dns_id",
                format!("{dns_id:?}"),
                "wildcard names are refused; give the peer's exact DNS name".into(),
            ));
        }
        let types = |key: &str, v: &[String]| -> Result<Vec<MsgType>, ConfigError> {
            v.iter()
                .map(|s| {
                    msg_type(s).ok_or_else(|| {
                        bad(
                            key,
                            format!("{s:?}"),
                            format!("expected one of {MSG_TYPES}"),
                        )
                    })
                })
                .collect()
        };
        let accept = types("accept", &p.accept)?;
        let send = types("send", &p.send)?;
        let traffic_types = p
            .traffic_types
            .iter()
            .map(|s| {
                traffic_type(s).ok_or_else(|| {
                    bad(
                        "traffic_types",
                        format!("{s:?}"),
                        "expected Attack, Network, Content, DataWithHandlingRequirements, AudienceRestriction or Other".into(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if traffic_types.is_empty() {
            return Err(bad(
                "traffic_types",
                "[]".into(),
                "give at least one, e.g. [\"Attack\"]".into(),
            ));
        }
        let region = region(&p.region).ok_or_else(|| {
            bad(
                "region",
                format!("{:?}", p.region),
                "expected ClientToSP, SPToClient, IntraConsortium, PeerToPeer or BetweenConsortiums".into(),
            )
        })?;
        let min_confidence = match p.min_confidence.as_str() {
            "low" => 1,
            "medium" => 2,
            "high" => 3,
            other => {
                return Err(bad(
                    "min_confidence",
                    format!("{other:?}"),
                    "expected low, medium or high".into(),
                ));
            }
        };
        let exporters = p
            .exporters
            .iter()
            .map(|s| {
                parse_exporter(s).ok_or_else(|| {
                    bad(
                        "exporters",
                        format!("{s:?}"),
                        "expected \"<exporter address>:<ifIndex>\", e.g. \"192.0.2.1:3\" or \"[2001:db8::1]:3\"".into(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let signing_cert = (!p.signing_cert.as_os_str().is_empty()).then(|| p.signing_cert.clone());
        Ok(PeerPolicy {
            peer: Peer::new(p.name.clone(), fingerprint).with_dns_id(dns_id),
            url: p.url.clone(),
            accept,
            send,
            traffic_types,
            region,
            auto_approve: p.auto_approve,
            auto_trace: p.auto_trace,
            min_confidence,
            share_all: p.share_all,
            signing_cert,
            exporters,
            neighbor_as: p.neighbor_as.clone(),
            next_hops: p.next_hops.clone(),
        })
    }

    /// Every peer, checked and typed.
    pub fn peers(&self) -> Result<Vec<PeerPolicy>, ConfigError> {
        (0..self.peer.len()).map(|i| self.peer_policy(i)).collect()
    }

    /// The server's settings (the files are read at bind time).
    pub fn server_settings(&self) -> Result<ServerSettings, ConfigError> {
        let peers = self.peers()?.into_iter().map(|p| p.peer).collect();
        let mut s =
            ServerSettings::new(self.cert.clone(), self.key.clone(), self.ca.clone(), peers);
        s.listen = self.listen;
        s.max_body = self.max_body;
        s.handler_timeout = self.handler_timeout.get();
        s.rate = RateLimit {
            per_minute: self.rate_per_minute,
            burst: self.rate_burst,
        };
        s.max_open_incidents = self.max_open_incidents;
        Ok(s)
    }

    /// The client's settings.
    pub fn client_settings(&self) -> Result<ClientSettings, ConfigError> {
        let policies = self.peers()?;
        let mut resolve = Vec::new();
        for p in &policies {
            let Ok(url) = reqwest::Url::parse(&p.url) else {
                continue;
            };
            if let Some(host) = url.host_str()
                && let Some(ip) = self.resolve.get(host)
            {
                resolve.push((
                    host.to_string(),
                    SocketAddr::new(*ip, url.port().unwrap_or(crate::transport::DEFAULT_PORT)),
                ));
            }
        }
        let peers = policies.into_iter().map(|p| p.peer).collect();
        let mut c =
            ClientSettings::new(self.cert.clone(), self.key.clone(), self.ca.clone(), peers);
        c.max_body = self.max_body;
        c.max_attempts = self.max_attempts;
        c.initial_backoff = self.initial_backoff.get();
        c.max_backoff = self.max_backoff.get();
        c.request_timeout = self.request_timeout.get();
        c.connect_timeout = Duration::from_secs(10).min(self.request_timeout.get());
        c.resolve = resolve;
        Ok(c)
    }
}

/// `"192.0.2.1:3"` or `"[2001:db8::1]:3"`.
fn parse_exporter(s: &str) -> Option<(IpAddr, u32)> {
    let (addr, ifindex) = s.rsplit_once(':')?;
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    Some((addr.parse().ok()?, ifindex.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerConfig {
        PeerConfig {
            name: "b".into(),
            url: "https://rid-b.test:4590/".into(),
            fingerprint: format!("cert-sha256:{}", "ab".repeat(32)),
            exporters: vec!["192.0.2.1:3".into(), "[2001:db8::1]:7".into()],
            ..PeerConfig::default()
        }
    }

    fn config() -> RidConfig {
        RidConfig {
            enabled: true,
            name: "rid-a.test".into(),
            cert: "a.pem".into(),
            key: "a.key".into(),
            ca: "ca.pem".into(),
            peer: vec![peer()],
            ..RidConfig::default()
        }
    }

    #[test]
    fn disabled_by_default_and_a_full_peer_is_typed() {
        let d = RidConfig::default();
        assert!(!d.enabled);
        assert!(d.validate().is_ok());
        assert_eq!(d.listen.port(), 4590);
        let c = config();
        c.validate().unwrap();
        let p = c.peer_policy(0).unwrap();
        assert_eq!(p.peer.dns_id.as_deref(), Some("rid-b.test"));
        assert_eq!(p.exporters.len(), 2);
        assert!(p.carried("192.0.2.1".parse().unwrap(), 3, 0, None));
        assert!(!p.carried("192.0.2.1".parse().unwrap(), 4, 0, None));
        assert_eq!(p.min_confidence, 1);
        assert!(p.accept.contains(&MsgType::TraceRequest));
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let mut c = config();
        c.name.clear();
        assert!(c.validate().unwrap_err().to_string().contains("[rid] name"));
        let mut c = config();
        c.peer[0].accept = vec!["Trace".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("peer[1].accept") && e.contains("TraceRequest"),
            "{e}"
        );
        let mut c = config();
        c.peer[0].exporters = vec!["192.0.2.1".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("exporters") && e.contains("ifIndex"), "{e}");
        let mut c = config();
        c.peer[0].fingerprint = "sha1:00".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("fingerprint")
        );
        let mut c = config();
        c.peer.push(peer());
        assert!(c.validate().unwrap_err().to_string().contains("used twice"));
        let mut c = config();
        c.peer[0].url = "http://rid-b.test/".into();
        assert!(c.validate().unwrap_err().to_string().contains("https"));
    }
}
