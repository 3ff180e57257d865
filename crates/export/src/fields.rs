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
    ("destination.asn", "ASN"),
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
    ("source.asn", "ASN"),
    ("source.ip", "IPAddress"),
    ("source.port", "Integer"),
    ("time.observation", "DateTime"),
    ("time.source", "DateTime"),
];

/// The ECS version the ECS export follows (written as `ecs.version`).
pub const ECS_VERSION: &str = "8.11.0";

/// Elastic Common Schema fields Pharos writes, with their ECS types (the `type:` the field
/// reference gives; multi-fields such as `url.original.text` are not listed).
///
/// Checked (Dec. 2026) against the ECS Field Reference pages of the 8.x line, base URL
/// <https://www.elastic.co/guide/en/ecs/>: `8.11/ecs-ecs.html` (`ecs.version`), `current/` and
/// `8.6/` `ecs-event.html`, `8.6/ecs-source.html` and `8.8/ecs-source.html` (source, and
/// destination which reuses the same definitions), `8.17/ecs-network.html` and
/// `current/ecs-network.html`, `8.8/ecs-url.html` (`url.original` = `wildcard`), and the
/// elastic/ecs repository's definitions `schemas/base.yml` (`@timestamp`, `tags`, `labels` =
/// `object` of keywords, `message` = `match_only_text`), `schemas/related.yml` and
/// `schemas/observer.yml`. Every name and type read there matched. `http.request.method` /
/// `http.response.status_code` (keyword / long), `rule.name`, `user.name` (keyword) and
/// `source.as.number` / `destination.as.number` (long): the 8.x pages `8.1/ecs-http.html`,
/// `8.0/` and `8.4/ecs-rule.html`, `8.1/`, `8.4/`, `8.8/ecs-user.html`, and the repository's
/// `generated/elasticsearch/composable/component/{user,http,rule,source}.json` (user.json of
/// 8.6.0-dev; the others 9.x, same names and types as the 1.x pages) and `schemas/as.yml`. The
/// tag-exact `generated/ecs/ecs_flat.yml` of v8.11.0 was not read.
pub const ECS_FIELDS: &[(&str, &str)] = &[
    ("@timestamp", "date"),
    ("destination.as.number", "long"),
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
    ("source.as.number", "long"),
    ("source.ip", "ip"),
    ("source.port", "long"),
    ("tags", "keyword"),
    ("url.original", "wildcard"),
    ("user.name", "keyword"),
];
