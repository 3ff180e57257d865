//! The OpenAPI 3.1 document of the API, generated from one table of operations so that every
//! route is described (a test checks each documented operation against the router).

use serde_json::{Value, json};

use crate::json::Json;

/// One documented operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: &'static [(&'static str, &'static str, &'static str)],
    body: Option<&'static str>,
    ok: (&'static str, &'static str),
    errors: &'static [&'static str],
}

/// Request bodies that may be left out.
const OPTIONAL_BODIES: &[&str] = &["AckBody"];

const LIST_PARAMS: &[(&str, &str, &str)] = &[
    (
        "from",
        "query",
        "Event time at or after: RFC 3339, `now`, relative (`-1h`, `-30m`, `-7d`) or Unix seconds",
    ),
    ("to", "query", "Event time before (same forms as `from`)"),
    (
        "kind",
        "query",
        "Comma-separated kinds: system-alarm, system-event, traffic-flows, session-table, system-access-log, resource-utilization-log, user-activity-log, dpi-log, ddos, virus, intrusion, web-attack, voip-vocn, counters, botnet, vulnerability-scan-log, firewall-traffic-log, generic-log",
    ),
    (
        "severity",
        "query",
        "Minimum severity: info, low, middle, high, critical",
    ),
    ("nsf", "query", "Exact NSF name"),
    (
        "addr",
        "query",
        "Source or destination address or prefix (IPv4 or IPv6)",
    ),
    ("src", "query", "Source address or prefix"),
    ("dst", "query", "Destination address or prefix"),
    ("rule", "query", "Exact policy rule name"),
    (
        "text",
        "query",
        "Case-insensitive substring of the message text",
    ),
    ("state", "query", "Event state: open, acknowledged, closed"),
    ("limit", "query", "Page size, 1 to 10000 (default 100)"),
    (
        "cursor",
        "query",
        "Opaque cursor from the previous page's next_cursor",
    ),
];

const FLOW_QUERY_PARAMS: &[(&str, &str, &str)] = &[
    (
        "filter",
        "query",
        "nfdump-style filter, e.g. `proto udp and dst port 53`, `src net 10.0.0.0/8`, `flags S and not flags A`; empty selects every flow",
    ),
    ("from", "query", "Flows that started at or after"),
    ("to", "query", "Flows that ended at or before"),
    (
        "limit",
        "query",
        "Most flows returned, 1 to 1000000 (default 100)",
    ),
    (
        "order",
        "query",
        "time (default, earliest first), bytes or packets (largest first)",
    ),
];

const FLOW_TOP_PARAMS: &[(&str, &str, &str)] = &[
    ("filter", "query", "nfdump-style filter"),
    ("from", "query", "Flows that started at or after"),
    ("to", "query", "Flows that ended at or before"),
    (
        "key",
        "query",
        "Required: srcip, dstip, ip, srcport, dstport, port, proto, srcas, dstas, as, exporter, inif, outif, tos, or a prefix such as srcip4/24, dstip6/48",
    ),
    ("by", "query", "bytes (default), packets or flows"),
    ("n", "query", "Rows, default 10"),
];

const FLOW_SERIES_PARAMS: &[(&str, &str, &str)] = &[
    ("filter", "query", "nfdump-style filter"),
    ("from", "query", "Flows that started at or after"),
    ("to", "query", "Flows that ended at or before"),
    (
        "interval",
        "query",
        "Interval of flow start time, default 1m",
    ),
    (
        "key",
        "query",
        "Optional: also one series per top value of this key",
    ),
    (
        "by",
        "query",
        "Order of the key values: bytes (default), packets or flows",
    ),
    ("n", "query", "Key values, default 5"),
];

const OPS: &[Op] = &[
    Op {
        method: "post",
        path: "/api/v1/push",
        summary: "Push I2NSF YANG-JSON notifications (one document, a JSON array, or NDJSON). Answered only once every message is durable; one invalid document refuses the whole request (400 naming the field, e.g. an nsf-name with a control character).",
        params: &[],
        body: Some("PushBody"),
        ok: ("Stored", "PushResult"),
        errors: &["400", "413", "503"],
    },
    Op {
        method: "get",
        path: "/api/v1/tokens",
        summary: "API tokens (admin): name, role, created, expiry, revoked, last used; never the secrets",
        params: &[],
        body: None,
        ok: ("The tokens", "TokenList"),
        errors: &[],
    },
    Op {
        method: "post",
        path: "/api/v1/tokens",
        summary: "Create an API token (admin); the answer holds the secret, shown only this once",
        params: &[],
        body: Some("TokenCreate"),
        ok: ("Created (status 201)", "TokenCreated"),
        errors: &["400", "409"],
    },
    Op {
        method: "delete",
        path: "/api/v1/tokens/{name}",
        summary: "Revoke an API token (admin); it is refused from its next request on. 409 when the token is defined in pharos.toml, or is the last active admin token (create another admin token first)",
        params: &[("name", "path", "Token name")],
        body: None,
        ok: ("Revoked", "Object"),
        errors: &["404", "409"],
    },
    Op {
        method: "get",
        path: "/api/v1/messages",
        summary: "Stored messages, newest event time first, filtered and paged",
        params: LIST_PARAMS,
        body: None,
        ok: ("A page of messages", "MessagePage"),
        errors: &["400"],
    },
    Op {
        method: "get",
        path: "/api/v1/messages/{id}",
        summary: "One stored message",
        params: &[("id", "path", "Message id")],
        body: None,
        ok: ("The message", "StoredMessage"),
        errors: &["400", "404"],
    },
    Op {
        method: "post",
        path: "/api/v1/events/{id}/ack",
        summary: "Acknowledge an event (alarms and events only; logs have no state: 409), recording the caller's token name as acked-by and an optional comment. Idempotent: acknowledging again answers 200 with the original acknowledgement unchanged and is counted once in pharos_api_events_acknowledged_total",
        params: &[("id", "path", "Message id")],
        body: Some("AckBody"),
        ok: ("The acknowledged event", "StoredMessage"),
        errors: &["400", "404", "409"],
    },
    Op {
        method: "get",
        path: "/api/v1/nsfs",
        summary: "The NSF inventory: configured and automatically registered syslog senders, with received/parsed/unparsed counts and last-seen time; and the flow exporters the collector tracks (per exporter and observation domain), with their clock offsets",
        params: &[],
        body: None,
        ok: ("The NSFs", "NsfList"),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/flows/query",
        summary: "Stored flows matching a filter and window, earliest first or largest first",
        params: FLOW_QUERY_PARAMS,
        body: None,
        ok: ("The flows and what the scan did", "FlowList"),
        errors: &["400", "404", "503"],
    },
    Op {
        method: "get",
        path: "/api/v1/flows/top",
        summary: "Top values of a key (addresses, prefixes, ports, protocols, AS, interfaces) by bytes, packets or flows",
        params: FLOW_TOP_PARAMS,
        body: None,
        ok: ("The top rows and totals", "FlowTop"),
        errors: &["400", "404", "503"],
    },
    Op {
        method: "get",
        path: "/api/v1/flows/series",
        summary: "Flows, packets and bytes per interval of flow start time, optionally per top key value",
        params: FLOW_SERIES_PARAMS,
        body: None,
        ok: ("The series", "FlowSeries"),
        errors: &["400", "404", "503"],
    },
    Op {
        method: "get",
        path: "/api/v1/reports",
        summary: "Report of a window over the stored messages: counts by kind and severity, top attacked hosts and sources, DDoS attacks started and ended (at most 100000 messages read, newest first; `capped` says when the cap was reached)",
        params: &[
            (
                "from",
                "query",
                "Window start: RFC 3339, `now`, relative (`-1h`) or Unix seconds; default one hour before `to`",
            ),
            ("to", "query", "Window end, exclusive; default now"),
            (
                "top",
                "query",
                "Rows of each top list, 1 to 1000 (default 10)",
            ),
            ("format", "query", "json (default) or text"),
        ],
        body: None,
        ok: ("The report", "Report"),
        errors: &["400"],
    },
    Op {
        method: "get",
        path: "/api/v1/subscriptions",
        summary: "Every subscription (from pharos.toml and created through the API) with its delivery state",
        params: &[],
        body: None,
        ok: ("The subscriptions", "SubscriptionList"),
        errors: &["503"],
    },
    Op {
        method: "post",
        path: "/api/v1/subscriptions",
        summary: "Create a subscription: a filter, on-change or periodic emission, a dampening period and a sink (webhook, syslog or NATS JetStream, to a host of [emit] allow_hosts). It gets the changes made from now on.",
        params: &[],
        body: Some("SubscriptionSpec"),
        ok: ("Created", "Subscription"),
        errors: &["400", "409", "503"],
    },
    Op {
        method: "get",
        path: "/api/v1/subscriptions/{name}",
        summary: "One subscription with its delivery state (delivered, pending, failed, dropped, last error, last delivery)",
        params: &[("name", "path", "Subscription name")],
        body: None,
        ok: ("The subscription", "Subscription"),
        errors: &["404", "503"],
    },
    Op {
        method: "delete",
        path: "/api/v1/subscriptions/{name}",
        summary: "Stop and delete a subscription created through the API (those of pharos.toml: 409)",
        params: &[("name", "path", "Subscription name")],
        body: None,
        ok: ("Deleted", "Empty"),
        errors: &["404", "409", "503"],
    },
    Op {
        method: "get",
        path: "/api/v1/stream",
        summary: "The change feed as Server-Sent Events: id = feed seq, event = created|updated|state, data = the message as GET /api/v1/messages/{id} renders it. Resumes after Last-Event-ID (header or parameter) with no gap and no duplicate; keep-alive comments every 15 s.",
        params: &[
            ("kind", "query", "Comma-separated kinds"),
            (
                "min_severity",
                "query",
                "Minimum severity: info, low, middle, high, critical",
            ),
            ("nsf", "query", "Comma-separated exact NSF names"),
            (
                "addr",
                "query",
                "Comma-separated addresses or prefixes: source or destination within",
            ),
            (
                "change",
                "query",
                "Comma-separated changes: created, updated, state (default all)",
            ),
            (
                "last_event_id",
                "query",
                "Resume after this event id (as the Last-Event-ID header)",
            ),
            ("Last-Event-ID", "header", "Resume after this event id"),
        ],
        body: None,
        ok: ("The event stream", "EventStream"),
        errors: &["400", "503"],
    },
    Op {
        method: "get",
        path: "/api/v1/yang",
        summary: "The YANG modules whose data Pharos speaks (name, revision, path)",
        params: &[],
        body: None,
        ok: ("The served modules", "Object"),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/yang/{module}",
        summary: "A YANG module's text (application/yang), by name or name@revision",
        params: &[("module", "path", "Module name, optionally @revision")],
        body: None,
        ok: ("The module", "Text"),
        errors: &["404"],
    },
    Op {
        method: "get",
        path: "/healthz",
        summary: "Liveness: `ok` while the server runs",
        params: &[],
        body: None,
        ok: ("Alive", "Text"),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics in text exposition format",
        params: &[],
        body: None,
        ok: ("Metrics", "Text"),
        errors: &[],
    },
    Op {
        method: "get",
        path: "/api/v1/openapi.json",
        summary: "This document",
        params: &[],
        body: None,
        ok: ("OpenAPI document", "Object"),
        errors: &[],
    },
];

fn schemas() -> Value {
    let mut v = json!({
        "Text": { "type": "string" },
        "Object": { "type": "object" },
        "TokenInfo": {
            "type": "object",
            "required": ["name", "role", "revoked", "source"],
            "properties": {
                "name": { "type": "string" },
                "role": { "type": "string", "enum": ["viewer", "analyst", "admin", "nsf"] },
                "created": { "type": ["string", "null"], "format": "date-time" },
                "expires": { "type": ["string", "null"], "format": "date-time" },
                "revoked": { "type": "boolean" },
                "last_used": { "type": ["string", "null"], "format": "date-time", "description": "to the minute" },
                "source": { "type": "string", "enum": ["database", "config"] },
                "nsf": { "type": "string", "description": "role nsf: the NSF name its pushes are stored under (absent: the documents' own)" }
            }
        },
        "TokenList": {
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/TokenInfo" } } }
        },
        "TokenCreate": {
            "type": "object",
            "required": ["name", "role"],
            "properties": {
                "name": { "type": "string", "description": "1 to 64 letters, digits, '.', '_' or '-' (a control character is refused with 400 naming it)" },
                "role": { "type": "string", "enum": ["viewer", "analyst", "admin", "nsf"] },
                "expires_in": { "type": "string", "description": "Lifetime like 30d, 12h, 15m or 90s; absent: no expiry" },
                "nsf": { "type": "string", "description": "Role nsf only: store what it pushes under this NSF name, whatever the documents say" }
            }
        },
        "TokenCreated": {
            "type": "object",
            "required": ["name", "role", "token"],
            "properties": {
                "name": { "type": "string" },
                "role": { "type": "string" },
                "expires": { "type": ["string", "null"], "format": "date-time" },
                "nsf": { "type": ["string", "null"] },
                "token": { "type": "string", "description": "The secret (`phr_...`), shown only this once" }
            }
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": { "type": "string", "description": "What is wrong and how to fix it" },
                "details": { "type": "array", "items": { "type": "object" }, "description": "Per-item failures, e.g. {index, path, error} per rejected notification" }
            }
        },
        "Notification": {
            "type": "object",
            "description": "An I2NSF notification in YANG-JSON (RFC 7951) as defined by ietf-i2nsf-monitoring-interface@2022-06-01 and pharos-i2nsf-extensions: one member `ietf-i2nsf-monitoring-interface:i2nsf-event`, `:i2nsf-log`, `:i2nsf-nsf-event` or `:i2nsf-counters`; optionally wrapped as {\"ietf-restconf:notification\": {\"eventTime\": ..., <notification>}}"
        },
        "PushBody": {
            "oneOf": [
                { "$ref": "#/components/schemas/Notification" },
                { "type": "array", "items": { "$ref": "#/components/schemas/Notification" } }
            ],
            "description": "Also accepted: NDJSON, one notification per line"
        },
        "PushResult": {
            "type": "object",
            "required": ["stored", "ids"],
            "properties": {
                "stored": { "type": "integer" },
                "ids": { "type": "array", "items": { "type": "string" } }
            }
        },
        "StoredMessage": {
            "type": "object",
            "required": ["id", "kind", "severity", "event-time", "receive-time", "nsf-name", "notification"],
            "properties": {
                "id": { "type": "string" },
                "kind": { "type": "string" },
                "severity": { "type": "string", "enum": ["info", "low", "middle", "high", "critical"] },
                "event-time": { "type": "string", "format": "date-time" },
                "receive-time": { "type": "string", "format": "date-time" },
                "nsf-name": { "type": "string" },
                "state": { "type": "string", "enum": ["open", "acknowledged", "closed"] },
                "state-changed-at": { "type": "string", "format": "date-time" },
                "acked-by": { "type": "string", "description": "Name of the token that acknowledged the event (absent for acknowledgements older than this field)" },
                "acked-at": { "type": "string", "format": "date-time", "description": "When the event was first acknowledged" },
                "ack-comment": { "type": "string", "description": "The comment given with the acknowledgement" },
                "notification": { "$ref": "#/components/schemas/Notification" }
            }
        },

        "NsfList": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": { "type": "array", "items": {
                    "type": "object",
                    "required": ["name", "configured", "parser", "received", "parsed", "unparsed"],
                    "properties": {
                        "name": { "type": "string" },
                        "configured": { "type": "boolean", "description": "false for senders registered automatically" },
                        "addresses": { "type": "array", "items": { "type": "string" } },
                        "hostnames": { "type": "array", "items": { "type": "string" } },
                        "vendor": { "type": ["string", "null"] },
                        "model": { "type": ["string", "null"] },
                        "type": { "type": ["string", "null"] },
                        "parser": { "type": "string" },
                        "detected-format": { "type": ["string", "null"] },
                        "last-address": { "type": ["string", "null"] },
                        "first-seen": { "type": ["string", "null"], "format": "date-time" },
                        "last-seen": { "type": ["string", "null"], "format": "date-time" },
                        "received": { "type": "integer" },
                        "parsed": { "type": "integer" },
                        "unparsed": { "type": "integer" }
                    }
                } },
                "exporters": { "type": "array", "description": "Flow exporters (NetFlow v5/v9, IPFIX; sFlow carries no export time) per exporter address and observation domain, while the collector tracks them (forgotten after an hour of silence, not kept across restarts)", "items": {
                    "type": "object",
                    "required": ["exporter", "domain", "clock-offset-seconds", "clock-correction-seconds", "clock-samples", "datagrams"],
                    "properties": {
                        "exporter": { "type": "string", "description": "The exporter's address (UDP source)" },
                        "domain": { "type": "integer", "description": "Observation domain (IPFIX), source id (v9), engine type << 8 | engine id (v5)" },
                        "nsf": { "type": ["string", "null"], "description": "The configured NSF whose addresses contain the exporter" },
                        "clock-offset-seconds": { "type": "number", "description": "Export time in its headers minus our receive time, median of its last 15 datagrams; negative: its clock is behind ours" },
                        "clock-correction-seconds": { "type": "number", "description": "What was subtracted from the start and end of its latest flows (0: its clock is within 2 s of ours and trusted as it is)" },
                        "clock-samples": { "type": "integer", "description": "Datagrams the offset is the median of" },
                        "datagrams": { "type": "integer", "description": "Datagrams with an export time received from it" },
                        "last-received": { "type": ["string", "null"], "format": "date-time", "description": "When its latest datagram arrived (our clock)" },
                        "last-export-time": { "type": ["string", "null"], "format": "date-time", "description": "The export time of that datagram (its clock)" }
                    }
                } }
            }
        },
        "Totals": {
            "type": "object",
            "required": ["flows", "packets", "bytes"],
            "properties": {
                "flows": { "type": "integer" },
                "packets": { "type": "integer" },
                "bytes": { "type": "integer" }
            }
        },
        "ScanStats": {
            "type": "object",
            "description": "What the scan read: segments and row groups read or skipped by time, rows read and selected, segments that could not be read",
            "properties": {
                "segments": { "type": "integer" },
                "segments_pruned": { "type": "integer" },
                "row_groups": { "type": "integer" },
                "row_groups_pruned": { "type": "integer" },
                "rows_scanned": { "type": "integer" },
                "rows_matched": { "type": "integer" },
                "errors": { "type": "array", "items": { "type": "string" } },
                "restarts": { "type": "integer", "description": "times the scan restarted because a segment was merged or expired under it" }
            }
        },
        "FlowList": {
            "type": "object",
            "required": ["flows", "stats"],
            "properties": {
                "flows": { "type": "array", "items": { "type": "object", "description": "One flow: exporter, domain, src_addr, dst_addr, src_port, dst_port, proto, tcp_flags, packets, bytes, start_ms, end_ms, in_if, out_if, src_as, dst_as, next_hop, sampling_rate, vlan" } },
                "stats": { "$ref": "#/components/schemas/ScanStats" }
            }
        },
        "FlowTop": {
            "type": "object",
            "required": ["key", "by", "rows", "total", "distinct", "stats"],
            "properties": {
                "key": { "type": "string" },
                "by": { "type": "string", "enum": ["flows", "packets", "bytes"] },
                "rows": { "type": "array", "items": {
                    "type": "object",
                    "required": ["key", "flows", "packets", "bytes"],
                    "properties": {
                        "key": { "type": ["string", "integer"], "description": "address, prefix or number" },
                        "flows": { "type": "integer" },
                        "packets": { "type": "integer" },
                        "bytes": { "type": "integer" }
                    }
                } },
                "total": { "$ref": "#/components/schemas/Totals" },
                "distinct": { "type": "integer" },
                "stats": { "$ref": "#/components/schemas/ScanStats" }
            }
        },
        "FlowSeries": {
            "type": "object",
            "required": ["interval_ms", "by", "points", "keys", "stats"],
            "properties": {
                "interval_ms": { "type": "integer" },
                "by": { "type": "string" },
                "key": { "type": ["string", "null"] },
                "points": { "type": "array", "items": { "type": "object", "description": "t_ms (interval start, Unix ms), flows, packets, bytes" } },
                "keys": { "type": "array", "items": { "type": "object", "description": "key, totals, points" } },
                "stats": { "$ref": "#/components/schemas/ScanStats" }
            }
        },
        "HostCount": {
            "type": "object",
            "required": ["addr", "count"],
            "properties": {
                "addr": { "type": "string" },
                "count": { "type": "integer", "description": "events naming the host (an upper bound past 256 distinct hosts)" }
            }
        },
        "Report": {
            "type": "object",
            "required": ["from", "to", "messages", "by_kind", "by_severity", "top_attacked", "top_sources", "attacks_started", "attacks_ended", "attacks", "attacks_not_listed", "messages_read", "capped"],
            "description": "With format=text, the same as plain text",
            "properties": {
                "from": { "type": ["string", "null"], "format": "date-time" },
                "to": { "type": ["string", "null"], "format": "date-time" },
                "messages": { "type": "integer" },
                "by_kind": { "type": "object", "additionalProperties": { "type": "integer" } },
                "by_severity": { "type": "object", "additionalProperties": { "type": "integer" } },
                "top_attacked": { "type": "array", "items": { "$ref": "#/components/schemas/HostCount" }, "description": "victims of DDoS events and destinations of other attack events" },
                "top_sources": { "type": "array", "items": { "$ref": "#/components/schemas/HostCount" } },
                "attacks_started": { "type": "integer" },
                "attacks_ended": { "type": "integer" },
                "attacks": { "type": "array", "items": { "type": "object", "description": "nsf, rule, attack_type, victims, start, end, peak_pps, peak_bytes_per_s, started, ended" } },
                "attacks_not_listed": { "type": "integer" },
                "messages_read": { "type": "integer" },
                "capped": { "type": "boolean" },
                "covered_from": { "type": ["string", "null"], "format": "date-time", "description": "when capped: the earliest event time read" },
                "note": { "type": ["string", "null"] }
            }
        },
        "MessagePage": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/StoredMessage" } },
                "next_cursor": { "type": ["string", "null"] }
            }
        }
    });
    if let (Some(all), Value::Object(emit)) = (v.as_object_mut(), emit_schemas()) {
        all.extend(emit);
    }
    v["AckBody"] = json!({
        "type": "object",
        "description": "Optional: the body may be empty",
        "properties": {
            "comment": { "type": "string", "maxLength": crate::messages::MAX_ACK_COMMENT, "description": "Why, or what was done: printable text without control characters, at most 1024 bytes" }
        }
    });
    v
}

/// Schemas of the subscription and stream routes.
fn emit_schemas() -> Value {
    json!({
        "SubscriptionSpec": {
            "type": "object",
            "required": ["name", "sink"],
            "properties": {
                "name": { "type": "string", "pattern": "^[a-z0-9_-]{1,64}$" },
                "filter": { "type": "object", "properties": {
                    "kinds": { "type": "array", "items": { "type": "string" } },
                    "min_severity": { "enum": ["info", "low", "middle", "high", "critical"] },
                    "nsf": { "type": "array", "items": { "type": "string" } },
                    "prefixes": { "type": "array", "items": { "type": "string" } },
                    "attack_types": { "type": "array", "items": { "type": "string" } },
                    "changes": { "type": "array", "items": { "enum": ["created", "updated", "state"] } }
                } },
                "emission": { "oneOf": [
                    { "const": "on-change" },
                    { "type": "object", "properties": { "periodic": { "type": "object", "properties": { "interval": { "type": "string" } } } } }
                ] },
                "dampening_period": { "type": "string", "description": "e.g. \"5s\": at most one push per period" },
                "max_queue": { "type": "integer", "description": "pending changes kept (default 100000); beyond, the oldest are dropped" },
                "sink": { "type": "object", "required": ["type"], "properties": {
                    // The registered sinks and their keys (pharos_emit::sinks::REGISTRY).
                    "type": { "enum": pharos_emit::sinks::kinds().collect::<Vec<_>>() }
                }, "description": pharos_emit::sinks::REGISTRY
                    .iter()
                    .map(|t| format!("{}: {}", t.kind, t.keys.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ") }
            }
        },
        "Subscription": {
            "type": "object",
            "properties": {
                "spec": { "$ref": "#/components/schemas/SubscriptionSpec" },
                "origin": { "enum": ["config", "api"] },
                "sink": { "type": "string" },
                "state": { "type": "object", "properties": {
                    "position": { "type": "integer" },
                    "delivered": { "type": "integer" },
                    "pending": { "type": "integer", "description": "matching changes read but not delivered plus the unread feed lag (an upper bound)" },
                    "failed": { "type": "integer" },
                    "dropped": { "type": "integer" },
                    "expired": { "type": "integer", "description": "changes deleted by retention before they were read" },
                    "retries": { "type": "integer" },
                    "last_error": { "type": "string" },
                    "last_delivery": { "type": "string", "format": "date-time" }
                } }
            }
        },
        "SubscriptionList": {
            "type": "object",
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Subscription" } } }
        },
        "Empty": { "type": "null" },
        "EventStream": { "type": "string", "description": "text/event-stream" }
    })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for op in OPS {
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|(name, at, desc)| {
                json!({ "name": name, "in": at, "required": *at == "path", "description": desc, "schema": { "type": "string" } })
            })
            .collect();
        let content = |schema: &str| {
            if schema == "Text" {
                json!({ "text/plain": { "schema": { "$ref": "#/components/schemas/Text" } } })
            } else if schema == "EventStream" {
                json!({ "text/event-stream": { "schema": { "$ref": "#/components/schemas/EventStream" } } })
            } else if schema == "Empty" {
                json!({})
            } else {
                json!({ "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } })
            }
        };
        let mut responses = serde_json::Map::new();
        let ok_code = match (op.method, op.ok.1) {
            ("delete", "Empty") => "204",
            ("post", "Subscription") => "201",
            ("post", _) if op.path == "/api/v1/tokens" => "201",
            _ => "200",
        };
        responses.insert(
            ok_code.into(),
            json!({ "description": op.ok.0, "content": content(op.ok.1) }),
        );
        let need = crate::auth::required(
            &op.method.to_uppercase().parse().unwrap_or_default(),
            op.path,
            false,
        );
        let auth_errors: &[&str] = match need {
            crate::auth::Need::Public => &[],
            crate::auth::Need::Role(_) => &["401", "403", "429"],
        };
        for code in op.errors.iter().chain(auth_errors) {
            responses.insert(
                (*code).into(),
                json!({ "description": "Error", "content": content("Error") }),
            );
        }
        let mut operation =
            json!({ "summary": op.summary, "parameters": params, "responses": responses });
        match need {
            crate::auth::Need::Public => operation["security"] = json!([]),
            crate::auth::Need::Role(role) => {
                operation["x-pharos-role"] = json!(role.name());
                if role == crate::auth::Role::Nsf {
                    operation["security"] = json!([{ "bearer": [] }, { "nsfCertificate": [] }]);
                }
            }
        }
        if let Some(body) = op.body {
            let mut c = content(body);
            if op.path == crate::auth::PUSH_PATH {
                c["application/x-ndjson"] = json!({ "schema": { "type": "string" } });
            }
            let required = !OPTIONAL_BODIES.contains(&body);
            operation["requestBody"] = json!({ "required": required, "content": c });
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Pharos API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Network security monitoring: I2NSF NSF-monitoring messages in, alarms, events and logs out."
        },
        "paths": paths,
        "security": [{ "bearer": [] }],
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "phr_<64 hex digits>",
                    "description": "API token (`pharos token create`). Roles: viewer (GET/HEAD), analyst (also other methods), admin (also /api/v1/tokens and push), nsf (push only); x-pharos-role names the role an operation needs."
                },
                "nsfCertificate": {
                    "type": "mutualTLS",
                    "description": "With [api.tls] client_ca: a client certificate of that CA may push in place of an nsf token; the NSF is named by the certificate."
                }
            }
        }
    })
}

/// Every documented (method, path), for tests that check the router serves them.
pub fn operations() -> Vec<(&'static str, &'static str)> {
    OPS.iter().map(|o| (o.method, o.path)).collect()
}

pub(crate) async fn handler() -> Json<Value> {
    Json(document())
}
