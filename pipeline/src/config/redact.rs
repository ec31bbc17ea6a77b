//! Hiding secrets when the effective configuration is printed.
//!
//! Upstream marks secret fields by type; here secrets are recognised by key: values of keys
//! that name a credential, and every value under a `headers` or `response_headers` map (auth headers live there).

use super::value::{Map, Value};

/// Shown in place of a secret, as upstream prints opaque values.
pub const REDACTED: &str = "[REDACTED]";

const SECRET_KEY_PARTS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "ingestion_key",
    "access_key",
    "private_key",
    "credential",
];

/// Whether a config key holds a secret value.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "key_pem" || k == "authorization" || SECRET_KEY_PARTS.iter().any(|part| k.contains(part))
}

/// A copy of the tree with secrets replaced by [`REDACTED`].
pub fn redact(value: &Value) -> Value {
    redact_inner(value, false)
}

fn redact_inner(value: &Value, secret: bool) -> Value {
    match value {
        Value::Map(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let is_headers = k.to_ascii_lowercase().ends_with("headers");
                let hide = secret || is_secret_key(k);
                let child = if is_headers {
                    redact_headers(v)
                } else {
                    redact_inner(v, hide)
                };
                out.insert(k.clone(), child);
            }
            Value::Map(out)
        }
        Value::Seq(items) => Value::Seq(items.iter().map(|v| redact_inner(v, secret)).collect()),
        Value::Null => Value::Null,
        Value::Expanded { typed, raw } if !secret => Value::Expanded {
            typed: typed.clone(),
            raw: raw.clone(),
        },
        other if secret => {
            if matches!(other.as_str(), Some("")) {
                other.clone()
            } else {
                Value::String(REDACTED.to_string())
            }
        }
        other => other.clone(),
    }
}

fn redact_headers(value: &Value) -> Value {
    match value.typed() {
        Value::Map(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_inner(v, true)))
                .collect(),
        ),
        other => redact_inner(other, true),
    }
}

/// Renders a tree as YAML (expanded fields print as their text).
pub fn to_yaml(value: &Value) -> String {
    serde_yaml::to_string(&to_yaml_value(value)).unwrap_or_default()
}

fn to_yaml_value(value: &Value) -> serde_yaml::Value {
    match value {
        Value::Null => serde_yaml::Value::Null,
        Value::Bool(b) => serde_yaml::Value::Bool(*b),
        Value::Int(i) => serde_yaml::Value::Number((*i).into()),
        Value::Float(f) => serde_yaml::Value::Number((*f).into()),
        Value::String(s) => serde_yaml::Value::String(s.clone()),
        Value::Seq(items) => serde_yaml::Value::Sequence(items.iter().map(to_yaml_value).collect()),
        Value::Map(map) => serde_yaml::Value::Mapping(
            map.iter()
                .map(|(k, v)| (serde_yaml::Value::String(k.clone()), to_yaml_value(v)))
                .collect(),
        ),
        Value::Expanded { typed, .. } => to_yaml_value(typed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hides_credentials_and_headers() {
        let v = Value::from_yaml_str(
            "exporters:\n  otlp:\n    endpoint: x:4317\n    headers:\n      signoz-ingestion-key: abc\n  dynatrace:\n    api_token: dt0c01.x\n    tls:\n      key_pem: PEM\n      key_file: /k.pem\n",
        )
        .unwrap();
        let text = to_yaml(&redact(&v));
        assert!(text.contains("endpoint: x:4317"));
        assert!(!text.contains("abc"));
        assert!(!text.contains("dt0c01"));
        assert!(!text.contains("PEM\n"));
        assert!(
            text.contains("key_file: /k.pem"),
            "file paths are not secrets: {text}"
        );
        assert_eq!(text.matches(REDACTED).count(), 3, "{text}");
    }
}
