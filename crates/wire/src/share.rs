//! Templates and sampling tables shared between collectors (issue 20): what one
//! [`crate::FlowDecoder`] learns from an exporter's datagrams is handed out, and what others
//! learned is applied, so that any collector decodes any exporter after a failover without
//! waiting for the exporter's next template refresh.
//!
//! Contract:
//! - A [`TemplateShare`] is a cheap handle (`Clone` shares it). Decoders attached with
//!   [`crate::FlowDecoder::share_templates`] put every template / options template they learn
//!   (new or changed definition, and an unchanged one again every [`REEXPORT_MS`]) and every
//!   sampling table that changes into its *outbox*; a transport (the cluster's key-value sync,
//!   `pharos_cluster::templates`) drains it with [`TemplateShare::take_learned`] and stores each
//!   entry under its key. What the transport receives goes in with [`TemplateShare::receive`]
//!   (validated, bounded) and every attached decoder applies it before its next datagram: the
//!   check per datagram is one atomic load; sequence numbers are never touched.
//! - Entries are self-describing binary values (layout in [`field`]); their key is derived from
//!   the value and uses only `[-_.a-zA-Z0-9]`: `<exporter>.<v9|ipfix>.<domain>.<template id>`
//!   and `<exporter>.<v9|ipfix>.<domain>.sampling`, the exporter address with `.` and `:`
//!   written `_` (`10_0_0_1`, `2001_db8__1`). A received value is untrusted: its header is
//!   checked here, its template record is parsed by the same code as a datagram's template set
//!   and the decoder's bounds (fields per template, templates per exporter, exporters,
//!   samplers per domain) apply; a refusal is counted, never a panic.
//! - Last writer wins by time: an entry carries the Unix ms at which its origin last saw the
//!   template / table from the exporter; a decoder ignores an entry older than what it has
//!   (so a late echo of an old definition never replaces a newer one) or older than its
//!   template timeout. IPFIX withdrawals are not shared (RFC 7011 forbids them over UDP;
//!   templates age out instead).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::bytes::{u8_at, u16_at, u32_at, u64_at};
use crate::error::{WireError, need};
use crate::template::FieldSpec;

/// Format version written in every entry ([`field::VERSION`]).
pub const ENTRY_VERSION: u8 = 1;
/// Largest entry accepted (a 65,535-byte IPFIX template set plus the header).
pub const MAX_ENTRY_LEN: usize = 65_600;
/// Default bound on the entries a share holds from elsewhere.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default bound on entries learned locally and not yet taken by the transport.
pub const DEFAULT_MAX_OUTBOX: usize = 65_536;
/// An unchanged template or sampling table is handed out again this often while its exporter
/// keeps refreshing it, so that other collectors do not time it out (10 minutes; the default
/// template timeout is 30).
pub const REEXPORT_MS: u64 = 600_000;
/// Most received entries a decoder applies before one datagram (the rest before the next ones),
/// so that a bucket loaded at start-up does not stall a datagram for long.
pub(crate) const IMPORT_BATCH: usize = 4096;

/// Layout of an entry (all integers big-endian).
pub mod field {
    use std::ops::Range;
    /// `b"PT"`.
    pub const MAGIC: Range<usize> = 0..2;
    /// Format version, [`super::ENTRY_VERSION`].
    pub const VERSION: usize = 2;
    /// 1 = template (or options template), 2 = sampling table.
    pub const KIND: usize = 3;
    /// 9 = NetFlow v9, 10 = IPFIX.
    pub const PROTOCOL: usize = 4;
    /// 4 or 6.
    pub const FAMILY: usize = 5;
    /// The exporter address: IPv4 in the first 4 bytes, the rest zero.
    pub const EXPORTER: Range<usize> = 6..22;
    /// Observation domain (IPFIX) / source id (v9).
    pub const DOMAIN: Range<usize> = 22..26;
    /// Unix ms at which the origin last saw this from the exporter.
    pub const UPDATED_MS: Range<usize> = 26..34;
    /// Header length; the body follows.
    pub const HEADER_LEN: usize = 34;
    /// Template body: 1 if an options template, then one template record exactly as in the
    /// protocol's (options) template set.
    pub const OPTIONS: usize = 34;
    /// Template body: the record.
    pub const RECORD: usize = 35;
    /// Sampling body: bit 0 a domain rate follows, bit 1 a system init time follows.
    pub const FLAGS: usize = 34;
    /// Sampling body: the domain's latest rate (1 in N packets).
    pub const RATE: Range<usize> = 35..39;
    /// Sampling body: the exporter's system init time, Unix ms.
    pub const SYS_INIT_MS: Range<usize> = 39..47;
    /// Sampling body: number of sampler entries.
    pub const SAMPLERS: Range<usize> = 47..49;
    /// Sampling body: first sampler entry (sampler / selector id u64, rate u32).
    pub const SAMPLER_LIST: usize = 49;
    /// Length of one sampler entry.
    pub const SAMPLER_LEN: usize = 12;
}

const KIND_TEMPLATE: u8 = 1;
const KIND_SAMPLING: u8 = 2;

/// One entry learned locally, to be stored under `key` by the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedEntry {
    /// Key (`[-_.a-zA-Z0-9]` only).
    pub key: String,
    /// Binary value ([`field`]).
    pub value: Vec<u8>,
}

/// Why a received entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// The value is not a valid entry.
    #[error(
        "shared template entry {key:?}: {source}; it was not written by this Pharos version: delete the key or upgrade every collector"
    )]
    Invalid {
        /// The key it came under (truncated to 100 characters).
        key: String,
        /// What is wrong with it.
        source: WireError,
    },
    /// The key does not name the entry's content.
    #[error(
        "shared template entry {key:?}: its content belongs under {expected:?}; delete the key"
    )]
    KeyMismatch {
        /// The key it came under (truncated).
        key: String,
        /// The key its content derives.
        expected: String,
    },
    /// The share holds its maximum of entries.
    #[error(
        "shared template entry {key:?} ignored: the share already holds {limit} entries; delete stale keys of the template bucket"
    )]
    Full {
        /// The key it came under (truncated).
        key: String,
        /// The bound.
        limit: usize,
    },
}

impl ShareError {
    /// A short static reason, suitable as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ShareError::Invalid { .. } => "invalid",
            ShareError::KeyMismatch { .. } => "key_mismatch",
            ShareError::Full { .. } => "full",
        }
    }
}

fn short(key: &str) -> String {
    key.chars().take(100).collect()
}

/// Counters of a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShareStats {
    /// Entries the decoders handed out.
    pub learned: u64,
    /// Entries handed out while the outbox was full (not shared).
    pub outbox_dropped: u64,
    /// Entries received and kept (new or changed).
    pub received: u64,
    /// Entries received and refused (invalid, wrong key, share full).
    pub refused: u64,
    /// Entries currently held from elsewhere.
    pub entries: usize,
    /// Entries waiting in the outbox.
    pub pending: usize,
}

#[derive(Default)]
struct Received {
    /// Last generation assigned.
    generation: u64,
    entries: HashMap<String, (u64, Arc<[u8]>)>,
    by_generation: BTreeMap<u64, String>,
}

struct Inner {
    /// Equal to `Received::generation`; read without the lock by the decoders.
    generation: AtomicU64,
    max_entries: usize,
    max_outbox: usize,
    received: Mutex<Received>,
    outbox: Mutex<HashMap<String, Vec<u8>>>,
    learned: AtomicU64,
    outbox_dropped: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// Templates and sampling tables shared between decoders and, through a transport, between
/// collectors. See the [module documentation](self).
#[derive(Clone)]
pub struct TemplateShare {
    inner: Arc<Inner>,
}

impl Default for TemplateShare {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TemplateShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateShare")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Two handles are equal when they share the same state.
impl PartialEq for TemplateShare {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TemplateShare {
    /// An empty share with the default bounds ([`DEFAULT_MAX_ENTRIES`],
    /// [`DEFAULT_MAX_OUTBOX`]).
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_OUTBOX)
    }

    /// An empty share holding at most `max_entries` received entries and `max_outbox` learned
    /// entries not yet taken.
    pub fn with_limits(max_entries: usize, max_outbox: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                generation: AtomicU64::new(0),
                max_entries,
                max_outbox,
                received: Mutex::new(Received::default()),
                outbox: Mutex::new(HashMap::new()),
                learned: AtomicU64::new(0),
                outbox_dropped: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// Takes every entry learned locally since the last call (the latest value per key).
    pub fn take_learned(&self) -> Vec<SharedEntry> {
        let mut o = lock(&self.inner.outbox);
        let mut v: Vec<SharedEntry> = o
            .drain()
            .map(|(key, value)| SharedEntry { key, value })
            .collect();
        // Templates before sampling tables, stable order for tests and logs.
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Puts back entries the transport could not store, unless a newer value for the key was
    /// learned meanwhile (bounded like the outbox).
    pub fn return_learned(&self, entries: Vec<SharedEntry>) {
        let mut o = lock(&self.inner.outbox);
        for e in entries {
            if o.contains_key(&e.key) {
                continue;
            }
            if o.len() >= self.inner.max_outbox {
                self.inner.outbox_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            o.insert(e.key, e.value);
        }
    }

    /// Whether learned entries wait in the outbox.
    pub fn has_learned(&self) -> bool {
        !lock(&self.inner.outbox).is_empty()
    }

    /// Accepts an entry received from elsewhere (the transport's copy under `key`); every
    /// attached decoder applies it before its next datagram. The header is validated and the
    /// key must be the one the value derives; an unchanged value is a no-op.
    pub fn receive(&self, key: &str, value: &[u8]) -> Result<(), ShareError> {
        let r = self.receive_inner(key, value);
        if r.is_err() {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn receive_inner(&self, key: &str, value: &[u8]) -> Result<(), ShareError> {
        let entry = Entry::parse(value).map_err(|source| ShareError::Invalid {
            key: short(key),
            source,
        })?;
        let expected = entry.key();
        if expected != key {
            return Err(ShareError::KeyMismatch {
                key: short(key),
                expected,
            });
        }
        let mut r = lock(&self.inner.received);
        let old = match r.entries.get(key) {
            Some((_, v)) if **v == *value => return Ok(()),
            Some((g, _)) => Some(*g),
            None if r.entries.len() >= self.inner.max_entries => {
                return Err(ShareError::Full {
                    key: short(key),
                    limit: self.inner.max_entries,
                });
            }
            None => None,
        };
        if let Some(g) = old {
            r.by_generation.remove(&g);
        }
        r.generation += 1;
        let g = r.generation;
        r.by_generation.insert(g, key.to_string());
        r.entries.insert(key.to_string(), (g, Arc::from(value)));
        self.inner.generation.store(g, Ordering::Release);
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets a received entry (its key was deleted elsewhere). Decoders keep what they
    /// applied until it times out.
    pub fn forget(&self, key: &str) {
        let mut r = lock(&self.inner.received);
        if let Some((g, _)) = r.entries.remove(key) {
            r.by_generation.remove(&g);
        }
    }

    /// The counters.
    pub fn stats(&self) -> ShareStats {
        ShareStats {
            learned: self.inner.learned.load(Ordering::Relaxed),
            outbox_dropped: self.inner.outbox_dropped.load(Ordering::Relaxed),
            received: self.inner.accepted.load(Ordering::Relaxed),
            refused: self.inner.refused.load(Ordering::Relaxed),
            entries: lock(&self.inner.received).entries.len(),
            pending: lock(&self.inner.outbox).len(),
        }
    }

    /// The generation of the received entries (changes whenever one is added or changed).
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Received entries changed after generation `seen`, at most `max`, and the generation to
    /// ask from next time.
    pub(crate) fn changed_since(&self, seen: u64, max: usize) -> (Vec<Arc<[u8]>>, u64) {
        let r = lock(&self.inner.received);
        let mut out = Vec::new();
        let mut last = seen;
        for (g, k) in r.by_generation.range(seen.saturating_add(1)..) {
            if out.len() >= max {
                return (out, last);
            }
            if let Some((_, v)) = r.entries.get(k) {
                out.push(v.clone());
            }
            last = *g;
        }
        (out, r.generation)
    }

    /// Hands out an entry learned locally (bounded; over the bound it is counted and lost).
    pub(crate) fn publish(&self, key: String, value: Vec<u8>) {
        self.inner.learned.fetch_add(1, Ordering::Relaxed);
        let mut o = lock(&self.inner.outbox);
        if o.len() >= self.inner.max_outbox && !o.contains_key(&key) {
            self.inner.outbox_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        o.insert(key, value);
    }
}

/// Writes an exporter address for a key: `.` and `:` become `_`.
fn push_exporter(out: &mut String, a: IpAddr) {
    for c in a.to_string().chars() {
        out.push(if c == '.' || c == ':' { '_' } else { c });
    }
}

fn proto_name(ipfix: bool) -> &'static str {
    if ipfix { "ipfix" } else { "v9" }
}

/// The key of a template: `<exporter>.<v9|ipfix>.<domain>.<id>`.
pub fn template_key(exporter: IpAddr, ipfix: bool, domain: u32, id: u16) -> String {
    let mut k = String::with_capacity(64);
    push_exporter(&mut k, exporter);
    k.push('.');
    k.push_str(proto_name(ipfix));
    k.push('.');
    k.push_str(&domain.to_string());
    k.push('.');
    k.push_str(&id.to_string());
    k
}

/// The key of a domain's sampling table: `<exporter>.<v9|ipfix>.<domain>.sampling`.
pub fn sampling_key(exporter: IpAddr, ipfix: bool, domain: u32) -> String {
    let mut k = String::with_capacity(64);
    push_exporter(&mut k, exporter);
    k.push('.');
    k.push_str(proto_name(ipfix));
    k.push('.');
    k.push_str(&domain.to_string());
    k.push_str(".sampling");
    k
}

/// The key a value belongs under, after checking its header (what [`TemplateShare::receive`]
/// requires of the key it is given).
pub fn key_of(value: &[u8]) -> Result<String, WireError> {
    Entry::parse(value).map(|e| e.key())
}

/// Whether `key` is a valid key-value key of the share: 1 to 255 characters of
/// `[-/_=.a-zA-Z0-9]`, not starting or ending with `.`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 255
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
}

/// An entry's header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub ipfix: bool,
    pub exporter: IpAddr,
    pub domain: u32,
    pub updated_ms: u64,
}

/// A parsed entry, borrowing the value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body<'a> {
    Template {
        options: bool,
        /// Template id, the record's first two bytes.
        id: u16,
        /// One template record as in the protocol's template set.
        record: &'a [u8],
    },
    Sampling {
        rate: Option<u32>,
        sys_init_ms: Option<u64>,
        /// `SAMPLER_LEN`-byte items.
        samplers: &'a [u8],
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub head: Head,
    pub body: Body<'a>,
}

const WHAT: &str = "shared template entry";

impl<'a> Entry<'a> {
    /// Checks the header and the body's framing; the template record itself is checked by the
    /// decoder's template parser.
    pub(crate) fn parse(b: &'a [u8]) -> Result<Self, WireError> {
        need(WHAT, b, field::HEADER_LEN)?;
        if b.len() > MAX_ENTRY_LEN {
            return Err(WireError::Limit {
                what: WHAT,
                limit: MAX_ENTRY_LEN,
            });
        }
        if b.get(field::MAGIC) != Some(&b"PT"[..]) {
            return Err(WireError::malformed(WHAT, "no PT magic"));
        }
        let version = u8_at(b, field::VERSION);
        if version != ENTRY_VERSION {
            return Err(WireError::malformed(
                WHAT,
                format!("format version {version}, expected {ENTRY_VERSION}"),
            ));
        }
        let ipfix = match u8_at(b, field::PROTOCOL) {
            9 => false,
            10 => true,
            p => return Err(WireError::malformed(WHAT, format!("protocol {p}"))),
        };
        let raw = &b[field::EXPORTER];
        let exporter = match u8_at(b, field::FAMILY) {
            4 if raw[4..].iter().all(|&x| x == 0) => {
                IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
            }
            6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(raw);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            f => {
                return Err(WireError::malformed(
                    WHAT,
                    format!("address family {f} (or IPv4 with trailing bytes)"),
                ));
            }
        };
        let head = Head {
            ipfix,
            exporter,
            domain: u32_at(b, field::DOMAIN.start),
            updated_ms: u64_at(b, field::UPDATED_MS.start),
        };
        let body = match u8_at(b, field::KIND) {
            KIND_TEMPLATE => {
                need(WHAT, b, field::RECORD + 4)?;
                let options = match u8_at(b, field::OPTIONS) {
                    0 => false,
                    1 => true,
                    o => return Err(WireError::malformed(WHAT, format!("options flag {o}"))),
                };
                let id = u16_at(b, field::RECORD);
                if id < 256 {
                    return Err(WireError::malformed(
                        WHAT,
                        format!("template id {id} < 256"),
                    ));
                }
                Body::Template {
                    options,
                    id,
                    record: &b[field::RECORD..],
                }
            }
            KIND_SAMPLING => {
                need(WHAT, b, field::SAMPLER_LIST)?;
                let flags = u8_at(b, field::FLAGS);
                if flags & !3 != 0 {
                    return Err(WireError::malformed(
                        WHAT,
                        format!("sampling flags {flags}"),
                    ));
                }
                let n = u16_at(b, field::SAMPLERS.start) as usize;
                let want = field::SAMPLER_LIST + n * field::SAMPLER_LEN;
                if b.len() != want {
                    return Err(WireError::malformed(
                        WHAT,
                        format!("{n} samplers need {want} bytes, have {}", b.len()),
                    ));
                }
                let rate = u32_at(b, field::RATE.start);
                Body::Sampling {
                    rate: (flags & 1 != 0 && rate > 0).then_some(rate),
                    sys_init_ms: (flags & 2 != 0).then(|| u64_at(b, field::SYS_INIT_MS.start)),
                    samplers: &b[field::SAMPLER_LIST..],
                }
            }
            k => return Err(WireError::malformed(WHAT, format!("kind {k}"))),
        };
        Ok(Entry { head, body })
    }

    /// The key this entry belongs under.
    pub(crate) fn key(&self) -> String {
        let h = &self.head;
        match self.body {
            Body::Template { id, .. } => template_key(h.exporter, h.ipfix, h.domain, id),
            Body::Sampling { .. } => sampling_key(h.exporter, h.ipfix, h.domain),
        }
    }
}

/// The sampler entries of a sampling body.
pub(crate) fn samplers(b: &[u8]) -> impl Iterator<Item = (u64, u32)> + '_ {
    b.chunks_exact(field::SAMPLER_LEN)
        .map(|c| (u64_at(c, 0), u32_at(c, 8)))
}

fn push_head(out: &mut Vec<u8>, kind: u8, h: &Head) {
    out.extend_from_slice(b"PT");
    out.push(ENTRY_VERSION);
    out.push(kind);
    out.push(if h.ipfix { 10 } else { 9 });
    match h.exporter {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(&[0; 12]);
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
    out.extend_from_slice(&h.domain.to_be_bytes());
    out.extend_from_slice(&h.updated_ms.to_be_bytes());
}

/// Encodes a template entry: one record as in the protocol's (options) template set.
pub(crate) fn encode_template(
    h: &Head,
    id: u16,
    scope: u16,
    options: bool,
    fields: &[FieldSpec],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(field::RECORD + 6 + fields.len() * 8);
    push_head(&mut out, KIND_TEMPLATE, h);
    out.push(options as u8);
    out.extend_from_slice(&id.to_be_bytes());
    let n = fields.len() as u16;
    if h.ipfix {
        out.extend_from_slice(&n.to_be_bytes());
        if options {
            out.extend_from_slice(&scope.to_be_bytes());
        }
    } else if options {
        let scope_len = scope.saturating_mul(4);
        let opt_len = n.saturating_sub(scope).saturating_mul(4);
        out.extend_from_slice(&scope_len.to_be_bytes());
        out.extend_from_slice(&opt_len.to_be_bytes());
    } else {
        out.extend_from_slice(&n.to_be_bytes());
    }
    for f in fields {
        if h.ipfix && f.enterprise != 0 {
            out.extend_from_slice(&(f.id | 0x8000).to_be_bytes());
            out.extend_from_slice(&f.len.to_be_bytes());
            out.extend_from_slice(&f.enterprise.to_be_bytes());
        } else {
            out.extend_from_slice(&f.id.to_be_bytes());
            out.extend_from_slice(&f.len.to_be_bytes());
        }
    }
    out
}

/// Encodes a sampling table entry (at most 65,535 samplers, in id order).
pub(crate) fn encode_sampling(
    h: &Head,
    rate: Option<u32>,
    sys_init_ms: Option<u64>,
    table: &HashMap<u64, u32>,
) -> Vec<u8> {
    let mut ids: Vec<(u64, u32)> = table.iter().map(|(k, v)| (*k, *v)).collect();
    ids.sort_unstable();
    ids.truncate(u16::MAX as usize);
    let mut out = Vec::with_capacity(field::SAMPLER_LIST + ids.len() * field::SAMPLER_LEN);
    push_head(&mut out, KIND_SAMPLING, h);
    out.push(rate.is_some() as u8 | (sys_init_ms.is_some() as u8) << 1);
    out.extend_from_slice(&rate.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&sys_init_ms.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&(ids.len() as u16).to_be_bytes());
    for (id, r) in ids {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&r.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(exporter: &str, ipfix: bool) -> Head {
        Head {
            ipfix,
            exporter: exporter.parse().unwrap(),
            domain: 7,
            updated_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn keys_use_only_key_value_characters_and_do_not_collide() {
        let v4 = template_key("10.0.0.1".parse().unwrap(), false, 0, 256);
        assert_eq!(v4, "10_0_0_1.v9.0.256");
        let v6 = template_key("2001:db8::1".parse().unwrap(), true, 3, 300);
        assert_eq!(v6, "2001_db8__1.ipfix.3.300");
        let mapped = sampling_key("::ffff:192.0.2.1".parse().unwrap(), true, 1);
        assert_eq!(mapped, "__ffff_192_0_2_1.ipfix.1.sampling");
        for k in [v4, v6, mapped] {
            assert!(valid_key(&k), "{k}");
        }
        assert!(!valid_key("a b"));
        assert!(!valid_key(".a"));
        assert!(!valid_key("a>"));
    }

    #[test]
    fn entries_round_trip_and_derive_their_key() {
        let fields = [
            FieldSpec {
                id: 8,
                len: 4,
                enterprise: 0,
            },
            FieldSpec {
                id: 100,
                len: 0xffff,
                enterprise: 9,
            },
        ];
        let v = encode_template(&head("2001:db8::2", true), 300, 1, true, &fields);
        let e = Entry::parse(&v).unwrap();
        assert_eq!(e.head, head("2001:db8::2", true));
        assert_eq!(e.key(), "2001_db8__2.ipfix.7.300");
        let Body::Template {
            options,
            id,
            record,
        } = e.body
        else {
            panic!("not a template")
        };
        assert!(options);
        assert_eq!(id, 300);
        assert_eq!(record.len(), 6 + 4 + 8);

        let table = HashMap::from([(5u64, 100u32), (1, 10)]);
        let v = encode_sampling(&head("10.0.0.1", false), Some(64), None, &table);
        let e = Entry::parse(&v).unwrap();
        assert_eq!(e.key(), "10_0_0_1.v9.7.sampling");
        let Body::Sampling {
            rate,
            sys_init_ms,
            samplers: s,
        } = e.body
        else {
            panic!("not a sampling table")
        };
        assert_eq!((rate, sys_init_ms), (Some(64), None));
        assert_eq!(samplers(s).collect::<Vec<_>>(), vec![(1, 10), (5, 100)]);
    }

    #[test]
    fn hostile_values_are_refused_without_panicking() {
        let good = encode_template(
            &head("10.0.0.1", false),
            256,
            0,
            false,
            &[FieldSpec {
                id: 8,
                len: 4,
                enterprise: 0,
            }],
        );
        // Every truncation of the header and every single-byte corruption: an error or a
        // valid entry (the record itself is checked by the decoder's template parser).
        for n in 0..field::RECORD + 4 {
            assert!(Entry::parse(&good[..n]).is_err(), "truncated to {n}");
        }
        for i in 0..good.len() {
            for x in [0u8, 1, 0x7f, 0xff] {
                let mut v = good.clone();
                v[i] = x;
                let _ = Entry::parse(&v);
            }
        }
        let mut bad = good.clone();
        bad[field::FAMILY] = 4;
        bad[field::EXPORTER.start + 5] = 1;
        assert!(Entry::parse(&bad).is_err(), "IPv4 with trailing bytes");
        let share = TemplateShare::new();
        assert!(matches!(
            share.receive("10_0_0_1.v9.0.257", &good),
            Err(ShareError::KeyMismatch { .. })
        ));
        assert!(matches!(
            share.receive("x", b"PT\x01"),
            Err(ShareError::Invalid { .. })
        ));
        let huge = vec![0u8; MAX_ENTRY_LEN + 1];
        assert!(share.receive("x", &huge).is_err());
        let mut s = encode_sampling(&head("10.0.0.1", false), None, None, &HashMap::new());
        s[field::SAMPLERS.start + 1] = 3; // claims 3 samplers, has none
        assert!(Entry::parse(&s).is_err());
        assert_eq!(share.stats().refused, 3);
        assert_eq!(share.stats().entries, 0);
    }

    #[test]
    fn received_entries_are_bounded_and_seen_once_per_change() {
        let share = TemplateShare::with_limits(2, 1);
        let t = |id: u16, ms: u64| {
            let mut h = head("10.0.0.1", false);
            h.updated_ms = ms;
            let f = [FieldSpec {
                id: 8,
                len: 4,
                enterprise: 0,
            }];
            (
                template_key(h.exporter, false, 7, id),
                encode_template(&h, id, 0, false, &f),
            )
        };
        let (k1, v1) = t(256, 1);
        let (k2, v2) = t(257, 1);
        let (k3, v3) = t(258, 1);
        share.receive(&k1, &v1).unwrap();
        share.receive(&k2, &v2).unwrap();
        assert!(matches!(
            share.receive(&k3, &v3),
            Err(ShareError::Full { limit: 2, .. })
        ));
        let (got, seen) = share.changed_since(0, 10);
        assert_eq!((got.len(), seen), (2, 2));
        share.receive(&k1, &v1).unwrap();
        assert_eq!(share.generation(), 2, "an unchanged value is a no-op");
        let (_, v1b) = t(256, 2);
        share.receive(&k1, &v1b).unwrap();
        let (got, seen) = share.changed_since(seen, 10);
        assert_eq!((got.len(), seen), (1, 3));
        assert_eq!(&*got[0], &v1b[..]);
        let (got, seen2) = share.changed_since(0, 1);
        assert_eq!(
            (got.len(), seen2),
            (1, 2),
            "a partial read resumes after it"
        );

        share.publish("a".into(), vec![1]);
        share.publish("b".into(), vec![2]);
        share.publish("a".into(), vec![3]);
        let s = share.stats();
        assert_eq!((s.learned, s.outbox_dropped, s.pending), (3, 1, 1));
        let taken = share.take_learned();
        assert_eq!(
            taken,
            vec![SharedEntry {
                key: "a".into(),
                value: vec![3]
            }]
        );
        share.return_learned(taken);
        assert!(share.has_learned());
    }
}
