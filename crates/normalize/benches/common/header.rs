// The syslog header split off a full line as the syslog source does (included, not a module).

/// Header parse + the normaliser's view of the record, as the syslog source builds it
/// (`pharos_sources::syslog::log_input`, with the sender's address as the fallback host).
fn parse_header<'a>(
    line: &'a str,
    opts: &pharos_wire::syslog::ParseOptions,
) -> pharos_normalize::LogInput<'a> {
    let m = pharos_wire::syslog::parse(line, opts);
    let text = m.text.strip_prefix(": ").unwrap_or(m.text);
    pharos_normalize::LogInput {
        text,
        raw: line,
        host: m.header_hostname().or(Some("192.0.2.1")),
        app_name: m.app_name,
        time: m.timestamp_utc(),
        facility: m.pri.map(|_| m.facility()),
        severity: m.pri.map(|_| m.severity()),
    }
}
