//! OTLP/JSON export requests flattened to one item per span, metric data point or log record,
//! each carrying its resource and scope, in a canonical form that two encoders of the same
//! data agree on: fields with default values dropped (as proto3 JSON allows), numbers as f64.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    fn keys(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Signal::Traces => ("resourceSpans", "scopeSpans", "spans"),
            Signal::Metrics => ("resourceMetrics", "scopeMetrics", "metrics"),
            Signal::Logs => ("resourceLogs", "scopeLogs", "logRecords"),
        }
    }

    /// The signal of one export request, by its top-level key.
    pub fn of(request: &Value) -> Option<Signal> {
        [Signal::Traces, Signal::Metrics, Signal::Logs]
            .into_iter()
            .find(|s| request.get(s.keys().0).is_some())
    }
}

/// oneof members: present even when they hold a default value.
const ONEOF_KEYS: &[&str] = &[
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "bytesValue",
    "arrayValue",
    "kvlistValue",
    "asInt",
    "asDouble",
];

const METRIC_DATA_KEYS: &[&str] = &[
    "gauge",
    "sum",
    "histogram",
    "exponentialHistogram",
    "summary",
];

fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Canonical form of any OTLP/JSON value.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(o) => {
            let mut out = Map::new();
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for k in keys {
                let nv = normalize(&o[k]);
                if ONEOF_KEYS.contains(&k.as_str()) || !is_default(&nv) {
                    out.insert(k.clone(), nv);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// One canonical item per span / data point / log record of the requests of `signal`.
pub fn flatten(signal: Signal, requests: &[Value]) -> Vec<Value> {
    let (rkey, skey, ikey) = signal.keys();
    let mut items = Vec::new();
    for request in requests.iter().filter(|r| Signal::of(r) == Some(signal)) {
        for rs in array(request, rkey) {
            for ss in array(rs, skey) {
                for item in array(ss, ikey) {
                    let mut parts = vec![item.clone()];
                    if signal == Signal::Metrics {
                        parts = split_data_points(item);
                    }
                    for part in parts {
                        let mut entry = Map::new();
                        entry.insert("resource".into(), rs.get("resource").cloned().into());
                        entry.insert(
                            "resourceSchemaUrl".into(),
                            rs.get("schemaUrl").cloned().into(),
                        );
                        entry.insert("scope".into(), ss.get("scope").cloned().into());
                        entry.insert("scopeSchemaUrl".into(), ss.get("schemaUrl").cloned().into());
                        entry.insert("item".into(), part);
                        items.push(normalize(&Value::Object(entry)));
                    }
                }
            }
        }
    }
    items
}

/// A metric with N data points becomes N copies of the metric with one data point each.
fn split_data_points(metric: &Value) -> Vec<Value> {
    let Some(kind) = METRIC_DATA_KEYS.iter().find(|k| metric.get(**k).is_some()) else {
        return vec![metric.clone()];
    };
    array(&metric[*kind], "dataPoints")
        .iter()
        .map(|dp| {
            let mut m = metric.clone();
            m[*kind]["dataPoints"] = Value::Array(vec![dp.clone()]);
            m
        })
        .collect()
}

/// Fails unless both sides hold the same items the same number of times, listing the
/// differences.
pub fn assert_same_items(what: &str, expected: &[Value], actual: &[Value]) {
    let count = |items: &[Value]| {
        let mut m: BTreeMap<String, i64> = BTreeMap::new();
        for i in items {
            *m.entry(i.to_string()).or_default() += 1;
        }
        m
    };
    let (exp, act) = (count(expected), count(actual));
    if exp == act {
        return;
    }
    let mut report = format!(
        "{what}: {} expected, {} written by the agent\n",
        expected.len(),
        actual.len()
    );
    for (item, n) in &exp {
        let got = act.get(item).copied().unwrap_or(0);
        if got < *n {
            report.push_str(&format!("MISSING x{}: {item}\n", n - got));
        }
    }
    for (item, n) in &act {
        let want = exp.get(item).copied().unwrap_or(0);
        if want < *n {
            report.push_str(&format!("EXTRA x{}: {item}\n", n - want));
        }
    }
    panic!("{report}");
}

/// The value of attribute `key` in an OTLP/JSON attribute list (canonical form).
pub fn attr<'a>(holder: &'a Value, key: &str) -> Option<&'a Value> {
    array(holder, "attributes")
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

/// The attributes as a sorted map of key to canonical value.
pub fn attrs(holder: &Value) -> BTreeMap<String, Value> {
    array(holder, "attributes")
        .iter()
        .map(|kv| {
            (
                kv["key"].as_str().unwrap_or_default().to_string(),
                kv["value"].clone(),
            )
        })
        .collect()
}

pub fn string_value(s: &str) -> Value {
    serde_json::json!({ "stringValue": s })
}
