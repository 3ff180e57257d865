//! Anonymising the addresses of a JSON document (I2NSF messages, exports): every string that is
//! an IP address or an address prefix, wherever it sits, so no field that carries one is missed.

use std::net::IpAddr;

use serde_json::Value;

use crate::CryptoPan;

/// Keys whose values are AS numbers (YANG-JSON names, with and without the module prefix).
const AS_KEYS: [&str; 4] = [
    "src-as",
    "dst-as",
    "pharos-i2nsf-extensions:src-as",
    "pharos-i2nsf-extensions:dst-as",
];

/// Replaces, in place, every string of `doc` that is an IP address (`192.0.2.1`, `2001:db8::1`)
/// by its pseudonym, and every address prefix (`192.0.2.0/24`) by the prefix of the pseudonym of
/// its address (prefix preservation makes that the pseudonym of every address in it); in other
/// strings (a message, a raw log line) every address found by [`crate::find_addresses`] is
/// replaced by its pseudonym. Object keys, host names and the values of keys ending in `version`
/// (`software-version` "7.2.0.1" reads as an IPv4 address) are left alone. The AS numbers of the envelope's fields
/// (`src-as`, `dst-as`) are removed: they would name the networks the pseudonyms hide. Returns
/// how many strings were replaced.
pub fn anonymize_json(cp: &CryptoPan, doc: &mut Value) -> usize {
    match doc {
        Value::String(s) => match cp.anonymize_text(s) {
            Some(new) => {
                *s = new;
                1
            }
            None => {
                // Free text (a message, a raw log line): the addresses inside it.
                let mut found = 0;
                let new = crate::text::replace_addresses(s, |a| {
                    found += 1;
                    Some(cp.anonymize(a).to_string())
                });
                if found > 0 {
                    *s = new;
                    1
                } else {
                    0
                }
            }
        },
        Value::Array(items) => items.iter_mut().map(|v| anonymize_json(cp, v)).sum(),
        Value::Object(map) => {
            map.retain(|k, _| !AS_KEYS.contains(&k.as_str()));
            map.iter_mut()
                .filter(|(k, _)| !k.ends_with("version"))
                .map(|(_, v)| anonymize_json(cp, v))
                .sum()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

impl CryptoPan {
    /// The pseudonym of an address (`192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1`) or of an
    /// address prefix (`192.0.2.0/24`: the pseudonym of its address, masked to its length) written
    /// as text; `None` if the text is neither.
    pub fn anonymize_text(&self, s: &str) -> Option<String> {
        if let Ok(a) = s.parse::<IpAddr>() {
            return Some(self.anonymize(a).to_string());
        }
        let (addr, len) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        mask(self.anonymize(addr), len).map(|m| format!("{m}/{len}"))
    }
}

/// `addr` with all but its first `len` bits cleared; `None` if `len` is longer than the address.
fn mask(anon: IpAddr, len: u8) -> Option<IpAddr> {
    let masked = match anon {
        IpAddr::V4(a) if len <= 32 => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::from((u32::from(a) & m).to_be_bytes())
        }
        IpAddr::V6(a) if len <= 128 => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::from((u128::from(a) & m).to_be_bytes())
        }
        _ => return None,
    };
    Some(masked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    #[test]
    fn every_address_field_is_replaced_and_nothing_else() {
        let cp = CryptoPan::new(
            &Key::from_hex("1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202")
                .unwrap(),
        );
        let mut doc = serde_json::json!({
            "ietf-i2nsf-monitoring-interface:i2nsf-nsf-event": {
                "nsf-name": "fw1.example.net",
                "software-version": "7.2.0.1",
                "i2nsf-nsf-detection-ddos": {
                    "attack-src-ip": ["128.11.68.132", "2001:db8::1"],
                    "attack-dst-ip": "128.11.68.0/24",
                    "dst-port": 80,
                    "message": "128.11.68.132 flooded"
                },
                "pharos-i2nsf-extensions:envelope": {
                    "fields": {"src-as": 64496, "dst-as": 64500, "dst-port": 443}
                }
            }
        });
        assert_eq!(anonymize_json(&cp, &mut doc), 4);
        let d = &doc["ietf-i2nsf-monitoring-interface:i2nsf-nsf-event"];
        assert_eq!(d["nsf-name"], "fw1.example.net");
        assert_eq!(d["software-version"], "7.2.0.1");
        let ddos = &d["i2nsf-nsf-detection-ddos"];
        assert_eq!(ddos["attack-src-ip"][0], "135.242.180.132");
        assert_ne!(ddos["attack-src-ip"][1], "2001:db8::1");
        assert_eq!(ddos["attack-dst-ip"], "135.242.180.0/24");
        assert_eq!(ddos["message"], "135.242.180.132 flooded");
        assert_eq!(
            d["pharos-i2nsf-extensions:envelope"]["fields"],
            serde_json::json!({"dst-port": 443})
        );
    }
}
