//! Addresses people write in configuration and on command lines: `127.0.0.1:8080`,
//! `[::1]:4739` or a host name with a port (`localhost:8080`), resolved once when read.
//!
//! Contract: [`socket_addr`] accepts an IP address and port as they are, and a host name with a
//! port through the system resolver (the first address it gives, IPv4 first); its error names
//! the text and the form expected. The serde helpers let a config key of type `SocketAddr` (or
//! a list of them) take the same forms.

use std::net::{SocketAddr, ToSocketAddrs};

/// `text` as a socket address, resolving a host name (see the module doc).
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    let expected =
        "expected HOST:PORT like \"127.0.0.1:8080\", \"[::1]:8080\" or \"localhost:8080\"";
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(format!(
            "{text:?}: no port (the port is required); {expected}"
        ));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "{text:?}: {port:?} is not a port number 0..65535; {expected}"
        ));
    }
    if host.is_empty() {
        return Err(format!("{text:?}: the host is missing; {expected}"));
    }
    let addrs: Vec<SocketAddr> = t
        .to_socket_addrs()
        .map_err(|e| format!("{text:?}: cannot resolve the host name {host:?} ({e}); {expected}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: the host name {host:?} has no address; {expected}"))
}

/// Serde `deserialize_with` for one `SocketAddr` written as in [`socket_addr`].
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    socket_addr(&s).map_err(serde::de::Error::custom)
}

/// Serde `deserialize_with` for a list of `SocketAddr` written as in [`socket_addr`].
pub fn deserialize_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<SocketAddr>, D::Error> {
    let v = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    v.iter()
        .map(|s| socket_addr(s).map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_host_names_with_ports() {
        assert_eq!(
            socket_addr("127.0.0.1:27083").unwrap(),
            "127.0.0.1:27083".parse().unwrap()
        );
        assert_eq!(socket_addr("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        let a = socket_addr("localhost:27083").unwrap();
        assert!(a.ip().is_loopback() && a.port() == 27083, "{a}");
    }

    #[test]
    fn errors_name_the_text_and_the_form() {
        for bad in ["localhost", "127.0.0.1", "host:notaport", ":80", "a:b:c"] {
            let e = socket_addr(bad).unwrap_err();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("localhost:8080"),
                "{e}"
            );
        }
    }

    #[test]
    fn serde_keys_take_host_names() {
        #[derive(serde::Deserialize)]
        struct C {
            #[serde(deserialize_with = "deserialize")]
            one: SocketAddr,
            #[serde(deserialize_with = "deserialize_list")]
            many: Vec<SocketAddr>,
        }
        let c: C =
            serde_json::from_str(r#"{"one":"localhost:1","many":["127.0.0.1:2","localhost:3"]}"#)
                .unwrap();
        assert_eq!(c.one.port(), 1);
        assert_eq!(c.many.len(), 2);
        let e = serde_json::from_str::<C>(r#"{"one":"nowhere","many":[]}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no port"), "{e}");
    }
}
