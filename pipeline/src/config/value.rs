//! The generic configuration tree every YAML source is parsed into before it is merged,
//! expanded and decoded into a component's typed configuration.

use indexmap::IndexMap;

/// An ordered map of configuration keys, as written.
pub type Map = IndexMap<String, Value>;

/// One node of a configuration tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Value>),
    Map(Map),
    /// A field whose whole value was one `${...}` reference. `typed` is the YAML reading of the
    /// referenced text (so `port: ${env:P}` decodes as an int), `raw` is the text itself, which
    /// a string-typed field receives unchanged (so `0123` stays `"0123"`).
    Expanded {
        typed: Box<Value>,
        raw: String,
    },
}

impl Value {
    /// The value as seen by a non-string target: `Expanded` resolves to its typed reading.
    pub fn typed(&self) -> &Value {
        match self {
            Value::Expanded { typed, .. } => typed.typed(),
            other => other,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self.typed() {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            Value::Expanded { typed, .. } => typed.as_map_mut(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Expanded { raw, .. } => Some(raw),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.typed(), Value::Null)
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.typed() {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "map",
            Value::Expanded { .. } => "string",
        }
    }

    /// Reads one YAML document into a tree. Map keys that are not strings (numbers, booleans)
    /// are turned into their text, as the Collector's loader does.
    pub fn from_yaml_str(text: &str) -> Result<Value, serde_yaml::Error> {
        let parsed: serde_yaml::Value = serde_yaml::from_str(text)?;
        Ok(Value::from(parsed))
    }

    /// Converts to a plain serde_json value (expanded fields become their typed reading).
    pub fn to_json(&self) -> serde_json::Value {
        match self.typed() {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(f.to_string())),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Expanded { raw, .. } => serde_json::Value::String(raw.clone()),
        }
    }
}

fn yaml_key_text(key: serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(&other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

impl From<serde_yaml::Value> for Value {
    fn from(v: serde_yaml::Value) -> Self {
        match v {
            serde_yaml::Value::Null => Value::Null,
            serde_yaml::Value::Bool(b) => Value::Bool(b),
            serde_yaml::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    // Larger than i64: keep the digits rather than lose precision.
                    Value::String(u.to_string())
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_yaml::Value::String(s) => Value::String(s),
            serde_yaml::Value::Sequence(items) => {
                Value::Seq(items.into_iter().map(Value::from).collect())
            }
            serde_yaml::Value::Mapping(m) => Value::Map(
                m.into_iter()
                    .map(|(k, v)| (yaml_key_text(k), Value::from(v)))
                    .collect(),
            ),
            serde_yaml::Value::Tagged(t) => Value::from(t.value),
        }
    }
}
