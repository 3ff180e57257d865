//! What a sink is, for the code that treats all sinks alike: [`SinkConfig`] (a sink's
//! configuration, which builds it), [`Sink`] (a built sink, which delivers), and [`SinkSpec`] (the
//! configuration of any sink, as a subscription holds it).
//!
//! Contract:
//! - A sink is one folder (`webhook/`, `syslog_out/`, `nats/`) whose configuration type implements
//!   [`SinkConfig`], plus one line in [`crate::sinks::REGISTRY`]. Subscription validation, the
//!   dispatcher, the API's `[emit] allow_hosts` check and the OpenAPI document call trait methods or
//!   read the registry; none of them names a sink.
//! - [`SinkSpec`] reads and writes as the configuration's keys plus `type` = [`SinkConfig::KIND`]
//!   (TOML `sink.type = "webhook"`, JSON `{"type": "webhook", ...}`), `type` first and the other
//!   keys in [`SinkConfig::KEYS`] order. An unknown `type` is an error naming it and the known ones.
//! - A sink type outside the registry (the tests' sink) can be put in a [`SinkSpec`] with
//!   [`SinkSpec::new`] but is never read from a file or a request.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;

use futures_util::future::BoxFuture;
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{Item, SinkConfigError, SinkError};

/// A sink's configuration: what `[[subscription]] sink` holds for this sink, and what builds it.
pub trait SinkConfig: Serialize + Clone + PartialEq + Debug + Send + Sync + 'static {
    /// The sink's `type` in configuration and JSON (`"webhook"`), its metrics label and its name
    /// in the OpenAPI document.
    const KIND: &'static str;
    /// The configuration's keys (without `type`), in the order they are written out; the OpenAPI
    /// document lists them.
    const KEYS: &'static [&'static str];
    /// The sink this configuration builds.
    type Sink: Sink;

    /// Checks the configuration and builds the sink, without network access: an error names the
    /// key (`webhook.url`), what is wrong and the fix.
    fn build(&self) -> Result<Self::Sink, SinkConfigError>;

    /// The same configuration with secrets replaced by `***`, to show it (default: unchanged).
    fn redacted(&self) -> Self {
        self.clone()
    }

    /// Confines the configuration of a subscription created through the API to the hosts of
    /// `[emit] allow_hosts` (an allow-list of its own is replaced by them; a destination outside
    /// them is refused). `Err` is the whole message, naming the key (`sink.syslog.address: ...`).
    fn confine(&mut self, allow_hosts: &[String]) -> Result<(), String>;
}

/// A built sink: delivers batches of changes, in order.
pub trait Sink: Send + 'static {
    /// The destination for logs and the API (URL without credentials, address).
    fn describe(&self) -> String;

    /// Delivers `items` in order: `Ok` once the receiver took all of them;
    /// [`SinkError::Retry`] to be offered the same items again later; [`SinkError::Rejected`]
    /// when the receiver refuses them for good.
    fn deliver(&mut self, items: &[Item]) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// A built sink of any type (what the dispatcher holds).
pub(crate) type BoxSink = Box<dyn DynSink>;

/// [`Sink`] made object-safe: the delivery future is boxed.
pub(crate) trait DynSink: Send {
    fn describe(&self) -> String;
    fn deliver<'a>(&'a mut self, items: &'a [Item]) -> BoxFuture<'a, Result<(), SinkError>>;
}

impl<S: Sink> DynSink for S {
    fn describe(&self) -> String {
        Sink::describe(self)
    }

    fn deliver<'a>(&'a mut self, items: &'a [Item]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(Sink::deliver(self, items))
    }
}

/// [`SinkConfig`] made object-safe, for [`SinkSpec`].
trait AnyConfig: Debug + Send + Sync {
    fn kind(&self) -> &'static str;
    fn keys(&self) -> &'static [&'static str];
    fn build(&self) -> Result<BoxSink, SinkConfigError>;
    fn redacted(&self) -> Box<dyn AnyConfig>;
    fn confine(&mut self, allow_hosts: &[String]) -> Result<(), String>;
    fn to_value(&self) -> Result<Value, serde_json::Error>;
    fn clone_box(&self) -> Box<dyn AnyConfig>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn eq_any(&self, other: &dyn AnyConfig) -> bool;
}

impl<T: SinkConfig> AnyConfig for T {
    fn kind(&self) -> &'static str {
        T::KIND
    }
    fn keys(&self) -> &'static [&'static str] {
        T::KEYS
    }
    fn build(&self) -> Result<BoxSink, SinkConfigError> {
        Ok(Box::new(SinkConfig::build(self)?))
    }
    fn redacted(&self) -> Box<dyn AnyConfig> {
        Box::new(SinkConfig::redacted(self))
    }
    fn confine(&mut self, allow_hosts: &[String]) -> Result<(), String> {
        SinkConfig::confine(self, allow_hosts)
    }
    fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
    fn clone_box(&self) -> Box<dyn AnyConfig> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn eq_any(&self, other: &dyn AnyConfig) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}

/// Where a subscription delivers: the configuration of one sink, tagged by `type`.
pub struct SinkSpec(Box<dyn AnyConfig>);

impl SinkSpec {
    /// A spec holding `config`.
    pub fn new<T: SinkConfig>(config: T) -> Self {
        Self(Box::new(config))
    }

    /// The sink's type name (`webhook`, `syslog`, `nats`).
    pub fn type_name(&self) -> &'static str {
        self.0.kind()
    }

    /// The configuration, if it is of type `T`.
    pub fn config<T: SinkConfig>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }

    /// The configuration, if it is of type `T`, to change it.
    pub fn config_mut<T: SinkConfig>(&mut self) -> Option<&mut T> {
        self.0.as_any_mut().downcast_mut()
    }

    /// The same spec with secrets replaced by `***`, to show it.
    pub fn redacted(&self) -> Self {
        Self(self.0.redacted())
    }

    /// Checks the configuration by building the sink (no network access).
    pub fn validate(&self) -> Result<(), SinkConfigError> {
        self.0.build().map(drop)
    }

    /// Builds the sink.
    pub(crate) fn build(&self) -> Result<BoxSink, SinkConfigError> {
        self.0.build()
    }

    /// See [`SinkConfig::confine`].
    pub(crate) fn confine(&mut self, allow_hosts: &[String]) -> Result<(), String> {
        self.0.confine(allow_hosts)
    }
}

impl Clone for SinkSpec {
    fn clone(&self) -> Self {
        Self(self.0.clone_box())
    }
}

impl PartialEq for SinkSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_any(other.0.as_ref())
    }
}

impl Debug for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for SinkSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(mut fields) = self.0.to_value().map_err(S::Error::custom)? else {
            return Err(S::Error::custom(format!(
                "the configuration of sink {:?} is not a map of keys",
                self.0.kind()
            )));
        };
        let mut map = s.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("type", self.0.kind())?;
        // KEYS order (a struct's field order), then any key KEYS misses.
        for key in self.0.keys() {
            if let Some(v) = fields.remove(*key) {
                map.serialize_entry(key, &NullAsNone(&v))?;
            }
        }
        for (key, v) in &fields {
            map.serialize_entry(key, &NullAsNone(v))?;
        }
        map.end()
    }
}

/// A value whose `null` is written as an absent `Option` (as derived `Serialize` does: TOML then
/// leaves the key out, JSON writes `null`).
struct NullAsNone<'a>(&'a Value);

impl Serialize for NullAsNone<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            v => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SinkSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        let Some(map) = v.as_object_mut() else {
            return Err(D::Error::custom(
                "expected a table of keys with a `type`, like {\"type\": \"webhook\", ...}",
            ));
        };
        let kind = match map.remove("type") {
            Some(Value::String(k)) => k,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`type` must be a string naming the sink (one of {}), not {other}",
                    kinds_list()
                )));
            }
            None => return Err(D::Error::missing_field("type")),
        };
        let Some(t) = crate::sinks::find(&kind) else {
            return Err(D::Error::custom(format!(
                "unknown sink type `{kind}`, expected one of {}",
                kinds_list()
            )));
        };
        (t.decode)(v).map_err(D::Error::custom)
    }
}

/// The registered types, as `` `webhook`, `syslog`, `nats` ``.
fn kinds_list() -> String {
    crate::sinks::REGISTRY
        .iter()
        .map(|t| format!("`{}`", t.kind))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One entry of the sink registry ([`crate::sinks::REGISTRY`]).
pub struct SinkType {
    /// [`SinkConfig::KIND`].
    pub kind: &'static str,
    /// [`SinkConfig::KEYS`].
    pub keys: &'static [&'static str],
    /// Reads the configuration (the keys without `type`).
    decode: fn(Value) -> Result<SinkSpec, serde_json::Error>,
}

impl SinkType {
    /// The entry of the sink configured by `T`.
    pub const fn of<T: SinkConfig + DeserializeOwned>() -> Self {
        Self {
            kind: T::KIND,
            keys: T::KEYS,
            decode: decode::<T>,
        }
    }
}

fn decode<T: SinkConfig + DeserializeOwned>(v: Value) -> Result<SinkSpec, serde_json::Error> {
    serde_json::from_value::<T>(v).map(SinkSpec::new)
}

// ---- Shared by the sinks' `confine`: is a destination host in `[emit] allow_hosts`? ----

/// Refuses `host` (the destination named by the sink key `key`, e.g. `syslog.address`) unless an
/// entry of `allow_hosts` names it; the message names the key and the allowed hosts.
pub fn require_allowed(key: &str, host: &str, allow_hosts: &[String]) -> Result<(), String> {
    if allowed(allow_hosts, host) {
        return Ok(());
    }
    Err(format!(
        "sink.{key}: host {host:?} is not in [emit] allow_hosts ({}); subscriptions created through the API may only send to those hosts (or define it in pharos.toml)",
        if allow_hosts.is_empty() {
            "empty".to_string()
        } else {
            allow_hosts.join(", ")
        }
    ))
}

/// The host of `host:port` or `[v6]:port` (the whole string when it has no port).
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => addr,
    }
}

/// Whether `host` is named by an entry of `allow`: a host name (case-insensitive), an address or
/// a CIDR containing the address.
pub fn allowed(allow: &[String], host: &str) -> bool {
    let ip = host.parse::<std::net::IpAddr>().ok();
    allow.iter().any(|a| {
        let a = a.trim();
        match (ip, a.parse::<ipnet::IpNet>(), a.parse::<std::net::IpAddr>()) {
            (Some(ip), Ok(net), _) => net.contains(&ip),
            (Some(ip), _, Ok(one)) => one == ip,
            (None, Err(_), Err(_)) => a.eq_ignore_ascii_case(host),
            _ => false,
        }
    })
}

/// Checks that `sample` writes exactly the keys of `T::KEYS` (besides `type`), in that order, and
/// reads back equal: for each sink's tests.
#[cfg(test)]
pub(crate) fn assert_keys_round_trip<T: SinkConfig + DeserializeOwned>(sample: T) {
    let spec = SinkSpec::new(sample);
    let json = serde_json::to_value(&spec).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut want = vec!["type"];
    want.extend(T::KEYS);
    let (mut a, mut b) = (keys.clone(), want.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "KEYS of {} miss or add keys", T::KIND);
    let back: SinkSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, spec);
    // Written in KEYS order (`type` first), as derived `Serialize` wrote the fields.
    let text = serde_json::to_string(&spec).unwrap();
    let mut at = 0;
    for k in &want {
        let p = text.find(&format!("\"{k}\":")).unwrap();
        assert!(p >= at, "{} keys out of KEYS order: {text}", T::KIND);
        at = p;
    }
}

#[cfg(test)]
mod tests;
