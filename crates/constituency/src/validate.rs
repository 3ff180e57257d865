//! Checks of values that come from people (CSV cells, CLI flags): each error says what is expected.

use crate::error::Error;
use crate::model::{Contact, Organisation};

fn invalid(what: &str, message: String) -> Error {
    Error::Invalid {
        what: what.into(),
        message,
    }
}

/// A domain in canonical form: lower case, no trailing dot, LDH labels of 1..63 characters.
pub(crate) fn domain(d: &str) -> Result<String, Error> {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(d)
    } else {
        Err(invalid(
            "domain",
            format!(
                "{d:?}: expected a domain name such as example.org (letters, digits, '-', dots)"
            ),
        ))
    }
}

/// A mail address: one `@`, something on both sides, no spaces or control characters.
pub(crate) fn mail(m: &str) -> Result<(), Error> {
    let ok = match m.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && !d.is_empty()
                && !d.contains('@')
                && !m.chars().any(|c| c.is_whitespace() || c.is_control())
                && m.len() <= 254
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "contact mail",
            format!("{m:?}: expected a mail address such as abuse@example.org"),
        ))
    }
}

/// A webhook URL: `https://` or `http://`, no spaces or control characters.
pub(crate) fn webhook(u: &str) -> Result<(), Error> {
    let ok = (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() > 8
        && u.len() <= 2048
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "contact webhook",
            format!("{u:?}: expected an http(s) URL such as https://soc.example.org/hook"),
        ))
    }
}

/// A BCP 47 language tag, loosely: alphanumeric subtags of 1..8 separated by '-', the first
/// alphabetic of 2..3 (or `i`/`x`).
pub(crate) fn language(t: &str) -> Result<(), Error> {
    let mut parts = t.split('-');
    let first = parts.next().unwrap_or("");
    let ok = ((2..=3).contains(&first.len()) || first == "i" || first == "x")
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "language",
            format!("{t:?}: expected a BCP 47 language tag such as en, de or pt-BR"),
        ))
    }
}

fn text(what: &str, s: &str, max: usize) -> Result<(), Error> {
    if s.len() > max || s.chars().any(|c| c.is_control()) {
        return Err(invalid(
            what,
            format!("{s:?}: expected at most {max} bytes without control characters"),
        ));
    }
    Ok(())
}

fn contact(c: &Contact) -> Result<(), Error> {
    if c.mail.is_none() && c.webhook.is_none() {
        return Err(invalid(
            "contact",
            "a contact needs a mail address or a webhook URL (or both)".into(),
        ));
    }
    if let Some(m) = &c.mail {
        mail(m)?;
    }
    if let Some(u) = &c.webhook {
        webhook(u)?;
    }
    text("contact name", &c.name, 256)?;
    text("contact role", &c.role, 64)?;
    language(&c.policy.language)
}

/// Checks an organisation given by a person.
pub(crate) fn organisation(o: &Organisation) -> Result<(), Error> {
    if o.id.is_empty() {
        return Err(invalid(
            "org",
            "the organisation id is empty: give one such as ORG-EXAMPLE".into(),
        ));
    }
    text("org", &o.id, 128)?;
    text("name", &o.name, 256)?;
    let country_ok = o.country.len() == 2 && o.country.bytes().all(|b| b.is_ascii_alphabetic());
    if !o.country.is_empty() && !country_ok {
        return Err(invalid(
            "country",
            format!(
                "{:?}: expected an ISO 3166 two-letter code such as DE",
                o.country
            ),
        ));
    }
    for d in &o.domains {
        domain(d)?;
    }
    for c in &o.contacts {
        contact(c)?;
    }
    Ok(())
}
