//! YANG-JSON codec (RFC 7951) for [`Message`].
//!
//! Contract: [`encode`] emits one top-level member `ietf-i2nsf-monitoring-interface:<node>` whose
//! value validates with yanglint against the monitoring, NSF-facing and extension modules (given
//! the referenced policies and interfaces as operational data): uint64/counter64 as strings,
//! identityrefs module-qualified, members of `pharos-i2nsf-extensions` prefixed where they enter
//! the monitoring module, leaves whose YANG `when` is false left out, and our envelope in
//! `pharos-i2nsf-extensions:envelope`. [`decode`] accepts that document, bare or inside a RESTCONF
//! `ietf-restconf:notification` wrapper, and rejects anything the modules do not allow with a
//! [`ModelError`] naming the field. It never panics. [`decode_ingest`] is the decoder for new input:
//! it also refuses names that would be unsafe to show (an `nsf-name` with control characters).

use serde_json::{Map, Value};

use crate::codec::{Node, NodeValue, Out, OutScalar, OutValue, Scalar, ScalarKind, parse_time};
use crate::ident::MONITORING;
use crate::text::check_identifier;
use crate::{Kind, Message, ModelError, Severity, cases};

/// Member name of the RESTCONF notification wrapper (RFC 8040 §6.4).
const RESTCONF_NOTIFICATION: &str = "ietf-restconf:notification";
/// Deepest nesting accepted on input.
const MAX_DEPTH: usize = 32;

/// Encodes `m` as a YANG-JSON document (envelope container included).
pub fn encode(m: &Message) -> Value {
    let (top, out) = cases::to_out(m);
    let mut doc = Map::new();
    doc.insert(
        format!("{MONITORING}:{top}"),
        Value::Object(out_to_json(&out, MONITORING)),
    );
    Value::Object(doc)
}

/// Encodes `m` as a compact YANG-JSON string.
pub fn encode_string(m: &Message) -> String {
    encode(m).to_string()
}

/// Decodes a YANG-JSON document, bare or wrapped in `ietf-restconf:notification`.
pub fn decode(v: &Value) -> Result<Message, ModelError> {
    decode_top(v).map(|(_, m)| m)
}

/// Decodes a document that arrives from outside (a push): [`decode`], then the checks that apply
/// to new input only. `nsf-name` must pass [`check_identifier`] (1 to 255 bytes, no control or
/// invisible character), since it becomes a name in tables, logs and filters. Stored documents
/// are read back with [`decode`], so messages stored before a check existed stay readable.
pub fn decode_ingest(v: &Value) -> Result<Message, ModelError> {
    let (top, m) = decode_top(v)?;
    check_identifier(&m.common.nsf_name)
        .map_err(|e| ModelError::new(format!("{top}/nsf-name"), e.to_string()))?;
    Ok(m)
}

/// [`decode`], also returning the top-level node's name (e.g. `i2nsf-event`).
fn decode_top(v: &Value) -> Result<(&str, Message), ModelError> {
    let Some(obj) = v.as_object() else {
        return Err(ModelError::new("", "expected a JSON object"));
    };
    let (obj, event_time) = match obj.get(RESTCONF_NOTIFICATION) {
        Some(wrapper) => {
            if obj.len() != 1 {
                return Err(ModelError::new(
                    "",
                    format!("expected only {RESTCONF_NOTIFICATION} at the top level"),
                ));
            }
            let Some(inner) = wrapper.as_object() else {
                return Err(ModelError::new(
                    RESTCONF_NOTIFICATION,
                    "expected a JSON object",
                ));
            };
            let event_time = match inner.get("eventTime") {
                None => None,
                Some(Value::String(s)) => Some(parse_time(s).map_err(|e| {
                    ModelError::new(format!("{RESTCONF_NOTIFICATION}/eventTime"), e)
                })?),
                Some(_) => {
                    return Err(ModelError::new(
                        format!("{RESTCONF_NOTIFICATION}/eventTime"),
                        "expected a date-and-time string",
                    ));
                }
            };
            (inner, event_time)
        }
        None => (obj, None),
    };
    let mut members = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "eventTime" || event_time.is_none());
    let expected = || {
        cases::TOP_NAMES
            .map(|t| format!("{MONITORING}:{t}"))
            .join(", ")
    };
    let (name, value) = match (members.next(), members.next()) {
        (Some(first), None) => first,
        (None, _) => {
            return Err(ModelError::new(
                "",
                format!("expected one top-level member ({})", expected()),
            ));
        }
        (Some((a, _)), Some((b, _))) => {
            return Err(ModelError::new(
                "",
                format!("expected one top-level member, got {a} and {b}"),
            ));
        }
    };
    let top = match name.split_once(':') {
        Some((MONITORING, top)) if cases::TOP_NAMES.contains(&top) => top,
        _ => {
            return Err(ModelError::new(
                name.as_str(),
                format!("unknown top-level member, expected one of {}", expected()),
            ));
        }
    };
    let Some(body) = value.as_object() else {
        return Err(ModelError::new(top, "expected a JSON object"));
    };
    let nodes = json_to_nodes(body, MONITORING, top, 0)?;
    Ok((top, cases::from_nodes(top, &nodes, event_time)?))
}

/// Decodes a YANG-JSON string.
pub fn decode_str(s: &str) -> Result<Message, ModelError> {
    let v: Value =
        serde_json::from_str(s).map_err(|e| ModelError::new("", format!("malformed JSON: {e}")))?;
    decode(&v)
}

/// Pharos severity of a case when the message has no envelope.
pub fn default_severity(kind: &Kind) -> Severity {
    cases::default_severity(kind)
}

fn scalar_to_json(s: &OutScalar) -> Value {
    match s {
        OutScalar::Str(s) => Value::String(s.clone()),
        OutScalar::Num(n) => Value::from(*n),
        OutScalar::Ident { module, name } => Value::String(format!("{module}:{name}")),
    }
}

fn out_to_json(out: &[Out], parent: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for o in out {
        let key = if o.module == parent {
            o.name.to_string()
        } else {
            format!("{}:{}", o.module, o.name)
        };
        let v = match &o.value {
            OutValue::Leaf(s) => scalar_to_json(s),
            OutValue::LeafList(l) => Value::Array(l.iter().map(scalar_to_json).collect()),
            OutValue::Container(c) => Value::Object(out_to_json(c, o.module)),
            OutValue::List(entries) => Value::Array(
                entries
                    .iter()
                    .map(|e| Value::Object(out_to_json(e, o.module)))
                    .collect(),
            ),
        };
        m.insert(key, v);
    }
    m
}

fn json_scalar(v: &Value) -> Option<Scalar> {
    let (text, kind) = match v {
        Value::String(s) => (s.clone(), ScalarKind::Str),
        Value::Number(n) => (n.to_string(), ScalarKind::Num),
        Value::Bool(b) => (b.to_string(), ScalarKind::Other),
        Value::Null => ("null".to_string(), ScalarKind::Other),
        Value::Array(_) | Value::Object(_) => return None,
    };
    Some(Scalar {
        text,
        kind,
        qualified: None,
    })
}

fn json_to_nodes(
    obj: &Map<String, Value>,
    parent: &str,
    path: &str,
    depth: usize,
) -> Result<Vec<Node>, ModelError> {
    if depth > MAX_DEPTH {
        return Err(ModelError::new(path, "nested too deeply"));
    }
    let mut nodes = Vec::with_capacity(obj.len());
    for (key, v) in obj {
        let (module, name) = key.split_once(':').unwrap_or((parent, key));
        let p = format!("{path}/{name}");
        let node = |value, array| Node {
            module: module.to_string(),
            name: name.to_string(),
            array,
            value,
        };
        let inner =
            |o: &Map<String, Value>| json_to_nodes(o, module, &p, depth + 1).map(NodeValue::Inner);
        match v {
            Value::Object(o) => nodes.push(node(inner(o)?, Some(false))),
            Value::Array(items) => {
                for item in items {
                    let value = match item {
                        Value::Object(o) => inner(o)?,
                        Value::Array(_) => {
                            return Err(ModelError::new(
                                p,
                                "expected a value or an object, got an array",
                            ));
                        }
                        scalar => NodeValue::Leaf(
                            json_scalar(scalar).ok_or_else(|| ModelError::new(&p, "bad value"))?,
                        ),
                    };
                    nodes.push(node(value, Some(true)));
                }
            }
            scalar => {
                let s = json_scalar(scalar).ok_or_else(|| ModelError::new(&p, "bad value"))?;
                nodes.push(node(NodeValue::Leaf(s), Some(false)));
            }
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(nsf: &str) -> Value {
        serde_json::json!({"ietf-i2nsf-monitoring-interface:i2nsf-event": {
            "nsf-name": nsf,
            "i2nsf-system-detection-alarm": {"alarm-category": "cpu-alarm", "usage": 91, "threshold": 80}
        }})
    }

    #[test]
    fn ingest_refuses_an_nsf_name_with_a_control_character_naming_the_field() {
        let e = decode_ingest(&event("fw\u{0}1")).unwrap_err();
        assert_eq!(e.path, "i2nsf-event/nsf-name");
        assert!(
            e.reason.contains("\\x00") && e.reason.contains("byte 2"),
            "{e}"
        );
        for bad in ["", "fw\u{1b}[31m", "fw\u{7f}", "fw\u{9b}", "fw\u{202e}"] {
            assert!(decode_ingest(&event(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            decode_ingest(&event("edge fw-1")).unwrap().common.nsf_name,
            "edge fw-1"
        );
    }

    #[test]
    fn stored_documents_with_such_a_name_stay_readable() {
        assert_eq!(
            decode(&event("fw\u{0}1")).unwrap().common.nsf_name,
            "fw\u{0}1"
        );
    }
}
