//! OTTL's values and upstream's comparison rules (LANGUAGE.md, "Comparison Rules").

use std::borrow::Cow;
use std::cmp::Ordering;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};

use crate::ast::CompareOp;

/// A value read from telemetry or computed: borrowed from the data where it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    /// An attribute map (`pcommon.Map`).
    Map(Cow<'a, [KeyValue]>),
    /// A list (`pcommon.Slice`).
    List(Cow<'a, [AnyValue]>),
    /// Nanoseconds since the Unix epoch.
    Time(i64),
    /// Nanoseconds.
    Duration(i64),
}

impl<'a> Value<'a> {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Map(_) => "map",
            Value::List(_) => "slice",
            Value::Time(_) => "time",
            Value::Duration(_) => "duration",
        }
    }

    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Map(m) => Value::Map(Cow::Owned(m.into_owned())),
            Value::List(l) => Value::List(Cow::Owned(l.into_owned())),
            Value::Time(t) => Value::Time(t),
            Value::Duration(d) => Value::Duration(d),
        }
    }

    /// Reads an attribute value, borrowing it.
    pub fn from_any(value: &'a AnyValue) -> Value<'a> {
        match &value.value {
            None | Some(any_value::Value::StringValueStrindex(_)) => Value::Nil,
            Some(any_value::Value::StringValue(s)) => Value::Str(Cow::Borrowed(s)),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Value::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Value::Float(*d),
            Some(any_value::Value::BytesValue(b)) => Value::Bytes(Cow::Borrowed(b)),
            Some(any_value::Value::ArrayValue(a)) => Value::List(Cow::Borrowed(&a.values)),
            Some(any_value::Value::KvlistValue(kv)) => Value::Map(Cow::Borrowed(&kv.values)),
        }
    }

    pub fn from_any_opt(value: Option<&'a AnyValue>) -> Value<'a> {
        value.map_or(Value::Nil, Value::from_any)
    }

    /// The attribute value this becomes when set; `None` for nil. Times and durations are
    /// stored as their nanoseconds.
    pub fn to_any(&self) -> Option<AnyValue> {
        let v = match self {
            Value::Nil => return None,
            Value::Bool(b) => any_value::Value::BoolValue(*b),
            Value::Int(i) => any_value::Value::IntValue(*i),
            Value::Float(f) => any_value::Value::DoubleValue(*f),
            Value::Str(s) => any_value::Value::StringValue(s.to_string()),
            Value::Bytes(b) => any_value::Value::BytesValue(b.to_vec()),
            Value::Map(m) => any_value::Value::KvlistValue(KeyValueList { values: m.to_vec() }),
            Value::List(l) => any_value::Value::ArrayValue(ArrayValue { values: l.to_vec() }),
            Value::Time(t) => any_value::Value::IntValue(*t),
            Value::Duration(d) => any_value::Value::IntValue(*d),
        };
        Some(AnyValue { value: Some(v) })
    }

    pub fn into_any(self) -> Option<AnyValue> {
        let v = match self {
            Value::Nil => return None,
            Value::Str(s) => any_value::Value::StringValue(s.into_owned()),
            Value::Bytes(b) => any_value::Value::BytesValue(b.into_owned()),
            Value::Map(m) => any_value::Value::KvlistValue(KeyValueList {
                values: m.into_owned(),
            }),
            Value::List(l) => any_value::Value::ArrayValue(ArrayValue {
                values: l.into_owned(),
            }),
            other => return other.to_any(),
        };
        Some(AnyValue { value: Some(v) })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The text form upstream's `String()` converter and string-like getters give.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Nil => return None,
            Value::Str(s) => s.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => ferrotel_pipeline::prometheus::decimal(*f),
            Value::Bytes(b) => hex::encode(b),
            Value::Map(m) => serde_json::to_string(&map_to_json(m)).unwrap_or_default(),
            Value::List(l) => serde_json::to_string(&serde_json::Value::Array(
                l.iter().map(any_to_json).collect(),
            ))
            .unwrap_or_default(),
            Value::Time(t) => crate::time::format_rfc3339(*t),
            Value::Duration(d) => crate::time::format_duration(*d),
        })
    }
}

pub fn any_to_json(v: &AnyValue) -> serde_json::Value {
    match &v.value {
        None | Some(any_value::Value::StringValueStrindex(_)) => serde_json::Value::Null,
        Some(any_value::Value::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => serde_json::Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Some(any_value::Value::BytesValue(b)) => {
            use base64::Engine;
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(any_value::Value::ArrayValue(a)) => {
            serde_json::Value::Array(a.values.iter().map(any_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => map_to_json(&kv.values),
    }
}

pub fn map_to_json(m: &[KeyValue]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for kv in m {
        out.insert(
            kv.key.clone(),
            kv.value
                .as_ref()
                .map_or(serde_json::Value::Null, any_to_json),
        );
    }
    serde_json::Value::Object(out)
}

/// JSON to attribute values, as upstream's `ParseJSON` maps them: numbers become doubles.
pub fn json_to_any(v: serde_json::Value) -> AnyValue {
    let value = match v {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(any_value::Value::BoolValue(b)),
        serde_json::Value::Number(n) => Some(any_value::Value::DoubleValue(
            n.as_f64().unwrap_or(f64::NAN),
        )),
        serde_json::Value::String(s) => Some(any_value::Value::StringValue(s)),
        serde_json::Value::Array(a) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: a.into_iter().map(json_to_any).collect(),
        })),
        serde_json::Value::Object(o) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: o
                .into_iter()
                .map(|(key, v)| KeyValue {
                    key,
                    value: Some(json_to_any(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// Two attribute maps hold the same keys with equal values (order does not matter).
fn maps_equal(a: &[KeyValue], b: &[KeyValue]) -> bool {
    a.len() == b.len()
        && a.iter().all(|kv| {
            b.iter()
                .find(|o| o.key == kv.key)
                .is_some_and(|o| any_equal(kv.value.as_ref(), o.value.as_ref()))
        })
}

fn any_equal(a: Option<&AnyValue>, b: Option<&AnyValue>) -> bool {
    let a = Value::from_any_opt(a);
    let b = Value::from_any_opt(b);
    values_equal(&a, &b)
}

fn values_equal(a: &Value, b: &Value) -> bool {
    compare(a, CompareOp::Eq, b)
}

/// Upstream's comparison rules: numbers of different types compare as floats; values of
/// different types are "not equal" (only `!=` is true); nil equals only nil.
pub fn compare(a: &Value, op: CompareOp, b: &Value) -> bool {
    let ordering: Option<Ordering> = match (a, b) {
        (Value::Nil, Value::Nil) => {
            return match op {
                CompareOp::Eq => true,
                CompareOp::Ne => false,
                _ => false,
            }
        }
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Float(y)) => (*x as f64).partial_cmp(y),
        (Value::Float(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Value::Time(x), Value::Time(y)) => Some(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        (Value::Map(x), Value::Map(y)) => {
            let eq = maps_equal(x, y);
            return match op {
                CompareOp::Eq => eq,
                CompareOp::Ne => !eq,
                _ => false,
            };
        }
        (Value::List(x), Value::List(y)) => {
            let eq = x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| any_equal(Some(p), Some(q)));
            return match op {
                CompareOp::Eq => eq,
                CompareOp::Ne => !eq,
                _ => false,
            };
        }
        _ => None,
    };
    match ordering {
        // Different types, or a NaN: not equal.
        None => op == CompareOp::Ne,
        Some(o) => match op {
            CompareOp::Eq => o == Ordering::Equal,
            CompareOp::Ne => o != Ordering::Equal,
            CompareOp::Lt => o == Ordering::Less,
            CompareOp::Le => o != Ordering::Greater,
            CompareOp::Gt => o == Ordering::Greater,
            CompareOp::Ge => o != Ordering::Less,
        },
    }
}
