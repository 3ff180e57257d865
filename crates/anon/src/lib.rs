//! Crypto-PAn: prefix-preserving pseudonymisation of IP addresses, so that CSIRTs can share
//! flows, events and notices without exposing third parties' addresses while keeping the network
//! structure (two addresses sharing a k-bit prefix still share a k-bit prefix afterwards).
//!
//! The construction is the one of the reference implementation, nfanon and yacryptopan (Fan, Xu,
//! Ammar, Moon): AES-128 keyed with the key's first 16 bytes, pad = AES(last 16 bytes), one AES
//! block per address bit, the bit taken from the block's most significant bit; IPv6 by the same
//! 128-bit extension. The one design choice a reader must know: the family decides the path.
//! [`IpAddr::V4`](std::net::IpAddr::V4) takes the 32-bit path (as nfanon does for IPv4 flows),
//! every [`IpAddr::V6`](std::net::IpAddr::V6), IPv4-mapped `::ffff:a.b.c.d` included, the 128-bit
//! path (as the published vectors require). Callers that hold an IPv4 address in IPv6 form and
//! want nfanon's answer convert it first.
//!
//! Speed: the first 16 output bits of an address depend only on its first 15 bits, so they are
//! precomputed once per key (65 535 AES blocks, 64 KiB); the remaining bits are independent AES
//! blocks, encrypted together so that AES-NI pipelines them.
//!
//! Surface: [`Key`] (hex or key file, redacted, wiped), [`CryptoPan`] (addresses, text, reverse
//! mapping), [`anonymize_flows`] (a flow batch, by family) and [`anonymize_json`] (every address
//! string of a document), [`anonymize_pcap`] (a classic pcap capture: IP headers, ARP, NetFlow
//! v5 records, checksums fixed), and `[anon]` in the configuration ([`AnonConfig`]): key files
//! and rotation by date ([`KeyRing`]); [`find_addresses`] / [`replace_addresses`] find the
//! addresses written in free text (log lines, messages) without taking versions (`1.2.3.4.5`),
//! times or MAC addresses for them. [`IpcryptPfx`] is a second prefix-preserving algorithm,
//! ipcrypt-pfx (draft-denis-ipcrypt), on the same 32-byte keys, checked against the draft's
//! vectors; the CLI and `[anon]` use Crypto-PAn.

#![forbid(unsafe_code)]

mod config;
mod cryptopan;
mod flows;
mod ipcrypt;
mod json;
mod key;
mod pcap;
mod text;

pub use config::{AnonConfig, AnonConfigError, DatedKey, HexKey, KeyRing};
pub use cryptopan::CryptoPan;
pub use flows::{anonymize_flows, anonymize_flows_dated};
pub use ipcrypt::{IpcryptError, IpcryptPfx};
pub use json::anonymize_json;
pub use key::{KEY_LEN, Key, KeyError};
pub use pcap::{PcapAnonError, PcapAnonStats, anonymize_pcap, anonymize_pcap_stream};
pub use text::{find_addresses, replace_addresses};
