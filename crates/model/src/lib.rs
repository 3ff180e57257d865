//! The I2NSF NSF-monitoring information model (`ietf-i2nsf-monitoring-interface`, 2022-06-01)
//! plus our extension module `pharos-i2nsf-extensions`, with YANG-JSON (RFC 7951) and NETCONF XML
//! codecs.
//!
//! Contract: a [`Message`] is one notification (or one counters snapshot) with its common basic
//! information and our envelope; [`json::encode`] produces YANG-JSON that validates with yanglint
//! against the module, and [`json::decode`] accepts exactly what the module allows, naming the field
//! of the first violation.

#![forbid(unsafe_code)]

mod cases;
pub mod clock;
mod codec;
pub mod config;
#[doc(hidden)]
pub mod conformance;
pub mod error;
pub mod flow;
pub mod ident;
pub mod json;
pub mod listen;
pub mod message;
pub mod rsit;
#[doc(hidden)]
pub mod samples;
pub mod text;
pub mod xml;

pub use error::ModelError;
pub use message::*;
