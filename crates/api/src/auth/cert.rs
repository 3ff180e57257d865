//! The identity in a verified client certificate: its subject and DNS names, read from the DER
//! (only what is needed; the chain was verified by rustls before this runs), and the NSF of the
//! inventory it maps to.
//!
//! Contract: [`identify`] never panics on any input; a certificate it cannot read yields a subject
//! of `"(unreadable subject)"` and no NSF, one with an empty subject `"(empty subject)"`: the
//! subject is never empty.

use pharos_store::inventory::Inventory;

use super::ClientCert;

/// One DER element: tag, contents, and what follows it.
fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value.
fn children(mut buf: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, val, rest)) = tlv(buf) {
        out.push((tag, val));
        buf = rest;
    }
    out
}

/// Subject attributes in certificate order, e.g. `("CN", "fw-1")`.
pub type Attributes = Vec<(String, String)>;

/// Subject attributes and the DNS names of the subjectAltName.
pub fn subject_and_dns(der: &[u8]) -> Option<(Attributes, Vec<String>)> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let fields = children(tbs);
    // [0] version is optional; then serial, signature, issuer, validity, subject, spki, ...
    let skip = usize::from(fields.first()?.0 == 0xa0);
    let (tag, subject) = *fields.get(skip + 4)?;
    if tag != 0x30 {
        return None;
    }
    let mut attrs = Vec::new();
    for (_, rdn) in children(subject) {
        for (_, atv) in children(rdn) {
            let parts = children(atv);
            let (Some((0x06, oid)), Some((_, value))) = (parts.first(), parts.get(1)) else {
                continue;
            };
            let name = match *oid {
                [0x55, 0x04, 0x03] => "CN".to_string(),
                [0x55, 0x04, 0x0a] => "O".to_string(),
                [0x55, 0x04, 0x0b] => "OU".to_string(),
                [0x55, 0x04, 0x06] => "C".to_string(),
                [0x55, 0x04, 0x07] => "L".to_string(),
                [0x55, 0x04, 0x08] => "ST".to_string(),
                _ => format!("OID.{}", hex::encode(oid)),
            };
            attrs.push((name, String::from_utf8_lossy(value).into_owned()));
        }
    }
    let mut dns = Vec::new();
    for (tag, ext) in fields.iter().skip(skip + 6) {
        if *tag != 0xa3 {
            continue;
        }
        let Some((0x30, list, _)) = tlv(ext) else {
            continue;
        };
        for (_, e) in children(list) {
            let parts = children(e);
            if parts.first() != Some(&(0x06, &[0x55, 0x1d, 0x11][..])) {
                continue;
            }
            let Some((0x04, octets)) = parts.last().copied() else {
                continue;
            };
            if let Some((0x30, names, _)) = tlv(octets) {
                for (t, v) in children(names) {
                    if t == 0x82 {
                        dns.push(String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
        }
    }
    Some((attrs, dns))
}

/// The identity of a verified certificate: its subject, common name, and the configured NSF whose
/// name or hostnames equal (case-insensitively) the common name or a DNS name of the certificate.
pub fn identify(der: &[u8], inventory: Option<&Inventory>) -> ClientCert {
    let Some((attrs, dns)) = subject_and_dns(der) else {
        return ClientCert {
            subject: "(unreadable subject)".into(),
            common_name: None,
            nsf: None,
        };
    };
    // A certificate may have an empty subject (its names in subjectAltName only) or an empty
    // CN: neither may become an empty name for the client or its NSF.
    let subject = if attrs.is_empty() {
        "(empty subject)".to_string()
    } else {
        attrs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let common_name = attrs
        .iter()
        .find(|(k, v)| k == "CN" && !v.is_empty())
        .map(|(_, v)| v.clone());
    let names: Vec<&str> = common_name
        .iter()
        .map(String::as_str)
        .chain(dns.iter().map(String::as_str))
        .collect();
    let nsf = inventory.and_then(|inv| {
        inv.list()
            .into_iter()
            .filter(|e| e.configured)
            .find(|e| {
                names.iter().any(|n| {
                    e.name.eq_ignore_ascii_case(n)
                        || e.hostnames.iter().any(|h| h.eq_ignore_ascii_case(n))
                })
            })
            .map(|e| e.name)
    });
    ClientCert {
        subject,
        common_name,
        nsf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, dns: &[&str]) -> Vec<u8> {
        let mut p =
            rcgen::CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, cn.to_string());
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_common_name_and_dns_names_are_read() {
        let der = cert("fw-edge", &["fw-edge.example.net"]);
        let c = identify(&der, None);
        assert_eq!(c.subject, "CN=fw-edge,O=Example");
        assert_eq!(c.common_name.as_deref(), Some("fw-edge"));
        assert_eq!(c.nsf_name(), "fw-edge");
        let (_, dns) = subject_and_dns(&der).unwrap();
        assert_eq!(dns, vec!["fw-edge.example.net".to_string()]);
    }

    #[test]
    fn certificates_map_to_configured_nsfs_by_name_or_hostname() {
        let inv = Inventory::in_memory(&[pharos_store::inventory::NsfConfig {
            name: "fw1".into(),
            addresses: vec![],
            hostnames: vec!["fw1.example.net".into()],
            vendor: None,
            model: None,
            nsf_type: None,
            parser: "auto".into(),
        }]);
        let c = identify(&cert("other", &["FW1.example.net"]), Some(&inv));
        assert_eq!(c.nsf.as_deref(), Some("fw1"));
        assert_eq!(c.nsf_name(), "fw1");
        let c = identify(&cert("unknown", &[]), Some(&inv));
        assert_eq!(c.nsf, None);
        assert_eq!(c.nsf_name(), "unknown");
    }

    #[test]
    fn an_empty_subject_or_common_name_is_never_an_empty_name() {
        let mut p = rcgen::CertificateParams::new(vec!["fw-9.example.net".to_string()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        let key = rcgen::KeyPair::generate().unwrap();
        let c = identify(p.self_signed(&key).unwrap().der(), None);
        assert_eq!(c.subject, "(empty subject)");
        assert_eq!(c.common_name, None);
        assert_eq!(c.nsf_name(), "(empty subject)");
        let c = identify(&cert("", &[]), None);
        assert_eq!(c.common_name, None);
        assert_eq!(c.subject, "CN=,O=Example");
        assert_eq!(c.nsf_name(), "CN=,O=Example");
    }

    #[test]
    fn garbage_is_not_a_subject() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x03, 0x30, 0x01, 0x02],
        ] {
            assert_eq!(identify(bad, None).subject, "(unreadable subject)");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Any corruption of a real certificate (bytes changed, cut short) is read without panic.
        #[test]
        fn corrupted_certificates_never_panic(
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..8),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let mut der = cert("fw-edge", &["fw-edge.example.net"]);
            for (at, b) in flips {
                let i = at % der.len();
                der[i] = b;
            }
            der.truncate(cut % (der.len() + 1));
            let c = identify(&der, None);
            proptest::prop_assert!(!c.subject.is_empty());
        }

        /// Random bytes are read without panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = identify(&bytes, None);
        }
    }
}
