//! The vocabularies the JSON exports write, with the types their owners give them. Tests check
//! every key written is in these tables (IntelMQ's `extra.*` aside).

/// IntelMQ harmonisation fields Pharos writes, with their IntelMQ types. Source: IntelMQ's data
/// format ("Data Harmonization", `intelmq/etc/harmonization.conf` in certtools/intelmq,
/// documented at <https://docs.intelmq.org/latest/user/event/>). Anything else goes under
/// `extra.` (type JSON), as IntelMQ prescribes.
pub const INTELMQ_FIELDS: &[(&str, &str)] = &[
    ("classification.identifier", "String"),
    ("classification.taxonomy", "LowercaseString"),
    ("classification.type", "ClassificationType"),
    ("destination.account", "String"),
    ("destination.fqdn", "FQDN"),
    ("destination.ip", "IPAddress"),
    ("destination.port", "Integer"),
    ("destination.url", "URL"),
    ("event_description.text", "String"),
    ("feed.code", "String"),
    ("feed.name", "String"),
    ("feed.provider", "String"),
    ("malware.name", "LowercaseString"),
    ("protocol.application", "LowercaseString"),
    ("protocol.transport", "LowercaseString"),
    ("raw", "Base64"),
    ("source.account", "String"),
    ("source.ip", "IPAddress"),
    ("source.port", "Integer"),
    ("time.observation", "DateTime"),
    ("time.source", "DateTime"),
];

/// The ECS version the ECS export follows (written as `ecs.version`).
pub const ECS_VERSION: &str = "8.11.0";

/// Elastic Common Schema fields Pharos writes, with their ECS types. Source: the ECS Field
/// Reference, version [`ECS_VERSION`] (<https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html>:
/// Base, ECS, Event, Source, Destination, Network, User, URL, HTTP, Rule, Observer and Related
/// fields).
pub const ECS_FIELDS: &[(&str, &str)] = &[
    ("@timestamp", "date"),
    ("destination.domain", "keyword"),
    ("destination.ip", "ip"),
    ("destination.port", "long"),
    ("ecs.version", "keyword"),
    ("event.action", "keyword"),
    ("event.category", "keyword"),
    ("event.created", "date"),
    ("event.dataset", "keyword"),
    ("event.end", "date"),
    ("event.id", "keyword"),
    ("event.kind", "keyword"),
    ("event.module", "keyword"),
    ("event.original", "keyword"),
    ("event.severity", "long"),
    ("event.start", "date"),
    ("event.type", "keyword"),
    ("http.request.method", "keyword"),
    ("http.response.status_code", "long"),
    ("labels", "object"),
    ("message", "match_only_text"),
    ("network.iana_number", "keyword"),
    ("network.protocol", "keyword"),
    ("network.transport", "keyword"),
    ("observer.name", "keyword"),
    ("observer.product", "keyword"),
    ("observer.vendor", "keyword"),
    ("related.ip", "ip"),
    ("related.user", "keyword"),
    ("rule.name", "keyword"),
    ("source.ip", "ip"),
    ("source.port", "long"),
    ("tags", "keyword"),
    ("url.original", "wildcard"),
    ("user.name", "keyword"),
];
