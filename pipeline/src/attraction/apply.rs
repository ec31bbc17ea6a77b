//! Running the compiled actions on one attribute list.

use sha2::{Digest, Sha256};
use tracing::debug;

use super::{Actions, Op, Source, Target};
use crate::component::ClientInfo;
use crate::pdata::common::{any_value::Value, AnyValue, KeyValue};
use crate::prometheus::attribute_string;

/// What the actions may read besides the attributes: the request the data came with.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActionContext<'a> {
    /// The sender, when the receiver knows it; `None` reads as no metadata and no address.
    pub client: Option<&'a ClientInfo>,
}

impl<'a> ActionContext<'a> {
    pub fn new(client: Option<&'a ClientInfo>) -> Self {
        ActionContext { client }
    }
}

/// The value `from_context: <key>` reads: `client.address` is the peer's IP address (empty
/// when unknown, as upstream has it); `auth.<name>` needs an authenticator, and none sets
/// any yet; `metadata.<name>`, and any other key, are the client metadata values of that
/// name joined with `;`. `None` when there is nothing to read.
pub fn context_value(client: Option<&ClientInfo>, key: &str) -> Option<String> {
    if key == "client.address" {
        return Some(
            client
                .and_then(|c| c.addr)
                .map(|addr| addr.ip().to_canonical().to_string())
                .unwrap_or_default(),
        );
    }
    if key.starts_with("auth.") {
        return None;
    }
    let name = key.strip_prefix("metadata.").unwrap_or(key);
    let values: Vec<&str> = client?.get(name).collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(";"))
    }
}

fn text(value: String) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(value)),
    }
}

/// The `hash` action's result for a value: the lowercase hex SHA-256 of its bytes, as
/// upstream takes them (strings as UTF-8, bools as one byte 1 or 0, ints as 8 little-endian
/// bytes, doubles as the 8 little-endian bytes of their IEEE 754 bits). Other types, and
/// the empty string, give the empty string, as upstream's does.
pub fn hash_value(value: Option<&AnyValue>) -> String {
    let digest = match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) if !s.is_empty() => Sha256::digest(s.as_bytes()),
        Some(Value::BoolValue(b)) => Sha256::digest([u8::from(*b)]),
        Some(Value::IntValue(i)) => Sha256::digest(i.to_le_bytes()),
        Some(Value::DoubleValue(f)) => Sha256::digest(f.to_bits().to_le_bytes()),
        _ => return String::new(),
    };
    hex::encode(digest)
}

fn position(attributes: &[KeyValue], key: &str) -> Option<usize> {
    attributes.iter().position(|kv| kv.key == key)
}

/// Sets `key` in place when present, else appends it.
fn put(attributes: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match position(attributes, key) {
        Some(i) => attributes[i].value = Some(value),
        None => attributes.push(KeyValue {
            key: key.to_string(),
            value: Some(value),
            ..Default::default()
        }),
    }
}

/// A string as Go's `strconv.ParseFloat` reads it; an out-of-range number is a failure.
fn parse_go_float(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    if value.is_infinite() {
        let word = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if word != "inf" && word != "infinity" {
            return None;
        }
    }
    Some(value)
}

fn convert(key: &str, target: Target, slot: &mut Option<AnyValue>) {
    let current = slot.as_ref().and_then(|v| v.value.as_ref());
    let converted = match (target, current) {
        (Target::String, Some(Value::StringValue(_))) => None,
        (Target::String, _) => Some(Value::StringValue(attribute_string(slot))),
        (Target::Int, Some(Value::IntValue(_))) => None,
        // Truncated toward zero, as Go's conversion does.
        (Target::Int, Some(Value::DoubleValue(f))) => Some(Value::IntValue(*f as i64)),
        (Target::Int, Some(Value::BoolValue(b))) => Some(Value::IntValue(i64::from(*b))),
        (Target::Int, Some(Value::StringValue(s))) => match s.parse::<i64>() {
            Ok(n) => Some(Value::IntValue(n)),
            Err(_) => {
                debug!(key, value = %s, "String could not be converted to int");
                None
            }
        },
        (Target::Double, Some(Value::DoubleValue(_))) => None,
        (Target::Double, Some(Value::IntValue(i))) => Some(Value::DoubleValue(*i as f64)),
        (Target::Double, Some(Value::BoolValue(b))) => {
            Some(Value::DoubleValue(if *b { 1.0 } else { 0.0 }))
        }
        (Target::Double, Some(Value::StringValue(s))) => match parse_go_float(s) {
            Some(f) => Some(Value::DoubleValue(f)),
            None => {
                debug!(key, value = %s, "String could not be converted to double");
                None
            }
        },
        (Target::Int | Target::Double, _) => {
            debug!(
                key,
                from = crate::filterset::value_type_name(slot.as_ref()),
                "Unable to convert type"
            );
            None
        }
    };
    if let Some(value) = converted {
        *slot = Some(AnyValue { value: Some(value) });
    }
}

fn source_value(
    source: &Source,
    attributes: &[KeyValue],
    context: &ActionContext<'_>,
) -> Option<AnyValue> {
    if let Some(value) = &source.value {
        return Some(value.clone());
    }
    if !source.from_context.is_empty() {
        if let Some(found) = context_value(context.client, &source.from_context) {
            return Some(text(found));
        }
    }
    if !source.from_attribute.is_empty() {
        if let Some(i) = position(attributes, &source.from_attribute) {
            return Some(attributes[i].value.clone().unwrap_or_default());
        }
    }
    source.default.clone()
}

fn hash_in_place(kv: &mut KeyValue) {
    kv.value = Some(text(hash_value(kv.value.as_ref())));
}

impl Actions {
    /// Applies every action, in order, to one attribute list.
    pub fn apply(&self, attributes: &mut Vec<KeyValue>, context: &ActionContext<'_>) {
        for op in &self.steps {
            match op {
                Op::Insert { key, source } => {
                    if position(attributes, key).is_some() {
                        continue;
                    }
                    if let Some(value) = source_value(source, attributes, context) {
                        put(attributes, key, value);
                    }
                }
                Op::Update { key, source } => {
                    let Some(i) = position(attributes, key) else {
                        continue;
                    };
                    if let Some(value) = source_value(source, attributes, context) {
                        attributes[i].value = Some(value);
                    }
                }
                Op::Upsert { key, source } => {
                    if let Some(value) = source_value(source, attributes, context) {
                        put(attributes, key, value);
                    }
                }
                Op::Delete { key, pattern } => {
                    attributes.retain(|kv| {
                        kv.key != *key && !pattern.as_ref().is_some_and(|p| p.is_match(&kv.key))
                    });
                }
                Op::Hash { key, pattern } => {
                    if let Some(i) = position(attributes, key) {
                        hash_in_place(&mut attributes[i]);
                    }
                    // Upstream hashes the pattern's keys after `key`: a key that is also
                    // matched by the pattern is hashed twice, and kept so for equal output.
                    if let Some(pattern) = pattern {
                        attributes
                            .iter_mut()
                            .filter(|kv| pattern.is_match(&kv.key))
                            .for_each(hash_in_place);
                    }
                }
                Op::Extract { key, regex, names } => {
                    let Some(i) = position(attributes, key) else {
                        continue;
                    };
                    let Some(Value::StringValue(source)) =
                        attributes[i].value.as_ref().and_then(|v| v.value.as_ref())
                    else {
                        continue;
                    };
                    let Some(captures) = regex.captures(source) else {
                        continue;
                    };
                    let found: Vec<(String, String)> = names
                        .iter()
                        .enumerate()
                        .map(|(n, name)| {
                            let value = captures.get(n + 1).map_or("", |m| m.as_str());
                            (name.clone(), value.to_string())
                        })
                        .collect();
                    for (name, value) in found {
                        put(attributes, &name, text(value));
                    }
                }
                Op::Convert { key, target } => {
                    if let Some(i) = position(attributes, key) {
                        convert(key, *target, &mut attributes[i].value);
                    }
                }
            }
        }
    }
}
