//! Label names and values: attribute keys escaped with the `key_` rule, attribute values as
//! the Collector prints them, and the `job`, `instance` and `target_info` labels of a resource.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;

use super::NamingError;
use crate::pdata::common::{any_value::Value, AnyValue, KeyValue};

pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";
pub const SCOPE_NAME_LABEL: &str = "otel_scope_name";
pub const SCOPE_VERSION_LABEL: &str = "otel_scope_version";
pub const SCOPE_SCHEMA_URL_LABEL: &str = "otel_scope_schema_url";
/// Scope attribute `k` becomes the label `otel_scope_<k>` (then escaped).
pub const SCOPE_ATTRIBUTE_PREFIX: &str = "otel_scope_";
pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_NAMESPACE: &str = "service.namespace";
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// The Prometheus label name of an attribute key: every character outside `[a-zA-Z0-9_]`
/// becomes `_` (one for one), a leading digit gets the prefix `key_`, a single leading `_`
/// the prefix `key` (`__` names are left reserved).
pub fn label_name(key: &str) -> Result<String, NamingError> {
    if key.is_empty() {
        return Err(NamingError::EmptyLabelName {
            label: String::new(),
        });
    }
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "key_");
    } else if name.starts_with('_') && !name.starts_with("__") {
        name.insert_str(0, "key");
    }
    if name != key && name.chars().all(|c| c == '_') {
        return Err(NamingError::InvalidLabelName {
            label: key.to_string(),
            normalized: name,
        });
    }
    Ok(name)
}

/// An attribute value as a label value, as the Collector renders one (`pcommon.Value.AsString`):
/// strings as they are, numbers and booleans in Go's notation, bytes in base64, lists and
/// maps as JSON with sorted keys; absent values and maps holding a NaN or infinity give "".
pub fn attribute_string(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        None | Some(Value::StringValueStrindex(_)) => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(f)) => {
            if f.is_finite() {
                es6_number(*f)
            } else {
                // What Go's JSON encoder says, since that is what the Collector falls back to.
                format!("json: unsupported value: {}", go_special(*f))
            }
        }
        Some(Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(v @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            let mut out = String::new();
            match write_json(Some(v), &mut out) {
                Ok(()) => out,
                Err(NonFinite) => String::new(),
            }
        }
    }
}

fn go_special(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

/// A finite number as JavaScript (and Go's JSON encoder) prints it: plain decimal digits
/// between 1e-6 and 1e21, exponent notation outside.
fn es6_number(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{f}")
    }
}

/// A JSON number that JSON cannot hold.
struct NonFinite;

/// JSON as Go's encoder writes it: map keys sorted, `<`, `>` and `&` escaped.
fn write_json(value: Option<&Value>, out: &mut String) -> Result<(), NonFinite> {
    match value {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(s)) => write_json_string(s, out),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(f)) => {
            if !f.is_finite() {
                return Err(NonFinite);
            }
            out.push_str(&es6_number(*f));
        }
        Some(Value::BytesValue(b)) => {
            write_json_string(&base64::engine::general_purpose::STANDARD.encode(b), out)
        }
        Some(Value::ArrayValue(list)) => {
            out.push('[');
            for (i, item) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item.value.as_ref(), out)?;
            }
            out.push(']');
        }
        Some(Value::KvlistValue(map)) => {
            // A later duplicate key wins, as it does in a Go map.
            let sorted: BTreeMap<&str, Option<&Value>> = map
                .values
                .iter()
                .map(|kv| {
                    (
                        kv.key.as_str(),
                        kv.value.as_ref().and_then(|v| v.value.as_ref()),
                    )
                })
                .collect();
            out.push('{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attributes.iter().find(|kv| kv.key == key)
}

/// `job`: `service.namespace/service.name`, or `service.name` alone; none without a
/// `service.name`.
pub fn job(resource: &[KeyValue]) -> Option<String> {
    let name = attribute_string(&find(resource, SERVICE_NAME)?.value);
    Some(match find(resource, SERVICE_NAMESPACE) {
        Some(ns) => format!("{}/{name}", attribute_string(&ns.value)),
        None => name,
    })
}

/// `instance`: `service.instance.id`, when the resource has one.
pub fn instance(resource: &[KeyValue]) -> Option<String> {
    Some(attribute_string(
        &find(resource, SERVICE_INSTANCE_ID)?.value,
    ))
}

/// Attribute `(key, value)` pairs as labels, sorted by name: each key escaped with
/// [`label_name`] (a key that cannot be escaped is left out), and the values of keys that
/// escape to the same name joined with `;` in the order given.
pub fn attribute_labels<'a>(
    pairs: impl IntoIterator<Item = (&'a str, String)>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in pairs {
        let Ok(name) = label_name(key) else {
            continue;
        };
        labels
            .entry(name)
            .and_modify(|existing| {
                existing.push(';');
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    labels
}

/// Whether an attribute key is one of the three that make `job` and `instance`.
pub fn is_identifying(key: &str) -> bool {
    matches!(key, SERVICE_NAME | SERVICE_NAMESPACE | SERVICE_INSTANCE_ID)
}

/// The labels of a resource's `target_info` series, sorted by name: every resource attribute
/// but the three that make `job` and `instance`, escaped (values of keys that escape to the
/// same name are joined with `;`), then `job` and `instance`. `None` unless the resource has
/// both a `job` and an `instance`, as upstream emits `target_info` only then.
pub fn target_info_labels(resource: &[KeyValue]) -> Option<Vec<(String, String)>> {
    let job = job(resource)?;
    let instance = instance(resource)?;
    let mut labels = attribute_labels(
        resource
            .iter()
            .filter(|kv| !is_identifying(&kv.key))
            .map(|kv| (kv.key.as_str(), attribute_string(&kv.value))),
    );
    labels.insert(JOB_LABEL.to_string(), job);
    labels.insert(INSTANCE_LABEL.to_string(), instance);
    Some(labels.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::common::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(text: &str) -> Value {
        Value::StringValue(text.to_string())
    }

    #[test]
    fn label_names_follow_the_key_rule() {
        let cases = [
            ("http.method", "http_method"),
            ("http_method", "http_method"),
            ("label:with:colons", "label_with_colons"),
            ("123invalid", "key_123invalid"),
            ("0", "key_0"),
            ("_private", "key_private"),
            (".dot", "key_dot"),
            ("__reserved__", "__reserved__"),
            ("__name", "__name"),
            ("a..b", "a__b"),
            ("a b-c/d", "a_b_c_d"),
            ("k8s.pod.name", "k8s_pod_name"),
            ("métrica", "m_trica"),
            ("日", "key_"),
            ("UPPER.Case", "UPPER_Case"),
            ("__", "__"),
        ];
        for (key, want) in cases {
            assert_eq!(label_name(key).as_deref(), Ok(want), "{key:?}");
        }
        assert!(matches!(
            label_name(""),
            Err(NamingError::EmptyLabelName { .. })
        ));
        for key in ["..", "日本"] {
            assert!(matches!(
                label_name(key),
                Err(NamingError::InvalidLabelName { .. })
            ));
        }
        assert_eq!(
            label_name("..").unwrap_err().to_string(),
            "normalization for label name \"..\" resulted in invalid name \"__\""
        );
    }

    #[test]
    fn every_label_name_is_valid() {
        for key in ["a", "1", "_", ".", "a.b", "ä", "_1", "-x", "x-", "🙂"] {
            if let Ok(name) = label_name(key) {
                assert!(super::super::is_valid_label_name(&name), "{key} -> {name}");
            }
        }
    }

    #[test]
    fn values_print_as_the_collector_prints_them() {
        let one = |v: Value| attribute_string(&Some(AnyValue { value: Some(v) }));
        assert_eq!(one(s("plain")), "plain");
        assert_eq!(one(Value::BoolValue(true)), "true");
        assert_eq!(one(Value::IntValue(-42)), "-42");
        assert_eq!(one(Value::DoubleValue(1.0)), "1");
        assert_eq!(one(Value::DoubleValue(0.5)), "0.5");
        assert_eq!(one(Value::DoubleValue(1e20)), "100000000000000000000");
        assert_eq!(one(Value::DoubleValue(1e21)), "1e+21");
        assert_eq!(one(Value::DoubleValue(1.5e-7)), "1.5e-7");
        assert_eq!(one(Value::DoubleValue(0.000001)), "0.000001");
        assert_eq!(one(Value::DoubleValue(-0.0)), "-0");
        assert_eq!(
            one(Value::DoubleValue(f64::NAN)),
            "json: unsupported value: NaN"
        );
        assert_eq!(one(Value::BytesValue(vec![1, 2, 3])), "AQID");
        assert_eq!(
            one(Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(s("a<b"))
                    },
                    AnyValue {
                        value: Some(Value::IntValue(1))
                    },
                    AnyValue { value: None },
                    AnyValue {
                        value: Some(Value::DoubleValue(2.5))
                    },
                ],
            })),
            r#"["a\u003cb",1,null,2.5]"#
        );
        assert_eq!(
            one(Value::KvlistValue(KeyValueList {
                values: vec![kv("z", Value::BoolValue(false)), kv("a", s("x\"y\n"))],
            })),
            r#"{"a":"x\"y\n","z":false}"#
        );
        assert_eq!(
            one(Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::DoubleValue(f64::INFINITY))
                }],
            })),
            ""
        );
        assert_eq!(attribute_string(&None), "");
        assert_eq!(attribute_string(&Some(AnyValue { value: None })), "");
    }

    #[test]
    fn job_and_instance_from_service_attributes() {
        let resource = vec![
            kv("service.name", s("checkout")),
            kv("service.namespace", s("shop")),
            kv("service.instance.id", s("pod-1")),
        ];
        assert_eq!(job(&resource).as_deref(), Some("shop/checkout"));
        assert_eq!(instance(&resource).as_deref(), Some("pod-1"));
        let resource = vec![kv("service.name", s("checkout"))];
        assert_eq!(job(&resource).as_deref(), Some("checkout"));
        assert_eq!(instance(&resource), None);
        // A namespace without a name makes no job.
        assert_eq!(job(&[kv("service.namespace", s("shop"))]), None);
        assert_eq!(
            instance(&[kv("service.instance.id", Value::IntValue(7))]).as_deref(),
            Some("7")
        );
    }

    #[test]
    fn attribute_labels_escape_and_join_collisions() {
        let labels = attribute_labels([
            ("k8s.pod.name", "p".to_string()),
            ("1st", "a".to_string()),
            ("k8s_pod_name", "q".to_string()),
            ("..", "dropped".to_string()),
            ("", "dropped".to_string()),
        ]);
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            vec![
                ("k8s_pod_name".to_string(), "p;q".to_string()),
                ("key_1st".to_string(), "a".to_string()),
            ]
        );
        assert!(is_identifying("service.name"));
        assert!(is_identifying("service.instance.id"));
        assert!(!is_identifying("host.name"));
    }

    #[test]
    fn target_info_needs_job_and_instance() {
        let resource = vec![
            kv("service.name", s("checkout")),
            kv("service.instance.id", s("pod-1")),
            kv("k8s.pod.name", s("p")),
            kv("k8s_pod_name", s("q")),
            kv("host.arch", s("amd64")),
        ];
        assert_eq!(
            target_info_labels(&resource),
            Some(vec![
                ("host_arch".to_string(), "amd64".to_string()),
                ("instance".to_string(), "pod-1".to_string()),
                ("job".to_string(), "checkout".to_string()),
                ("k8s_pod_name".to_string(), "p;q".to_string()),
            ])
        );
        assert_eq!(
            target_info_labels(&[kv("service.name", s("checkout"))]),
            None
        );
        // An attribute that escapes to `job` gives way to the real one.
        let resource = vec![
            kv("service.name", s("a")),
            kv("service.instance.id", s("b")),
            kv("job", s("other")),
        ];
        let labels = target_info_labels(&resource).unwrap();
        assert!(labels.contains(&("job".to_string(), "a".to_string())));
    }
}
