//! Value types that configs share: Go-style durations and byte sizes, and values of any type.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::pdata::common::{any_value, AnyValue, ArrayValue, KeyValue, KeyValueList};

/// A duration written as Go writes them (`200ms`, `5s`, `1m30s`, `1.5h`); a bare integer is
/// nanoseconds, as a Go `time.Duration` field reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub const fn from_secs(secs: u64) -> Self {
        GoDuration(Duration::from_secs(secs))
    }

    pub const fn from_millis(ms: u64) -> Self {
        GoDuration(Duration::from_millis(ms))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Parses a Go duration string. Negative durations are rejected: no setting here takes one.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("invalid duration \"\"".to_string());
    }
    if s.starts_with('-') {
        return Err(format!("invalid duration \"{text}\": must not be negative"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let bad = || {
        format!("invalid duration \"{text}\" (use a number with a unit: ns, us, ms, s, m, h; e.g. 200ms, 5s, 1m30s)")
    };
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * nanos_per;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("invalid duration \"{text}\": too large"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 200ms, 5s or 1m30s")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                parse_go_duration(v).map(GoDuration).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoDuration, E> {
                u64::try_from(v)
                    .map(|n| GoDuration(Duration::from_nanos(n)))
                    .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoDuration, E> {
                Ok(GoDuration(Duration::from_nanos(v)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Formats a duration the way Go prints one (`1h2m3.5s`, `200ms`), for messages like uptime.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_float(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_float(nanos as f64 / 1e6));
    }
    let total_secs = d.as_secs();
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    let secs = (total_secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_float(secs)));
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A config value of no fixed type (upstream's `any`, such as an attribute `value`), as the
/// OTLP value it stands for: strings, ints, floats and bools as themselves, lists as arrays,
/// maps as key-value lists in the order written, and a null inside a list or map as an empty
/// value. A field that is one whole `${...}` reference takes the typed reading of the text, as
/// the Collector's decoder does for `any` fields (see [`super::decode::TYPED_ANY`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnyValueConfig(pub AnyValue);

impl<'de> Deserialize<'de> for AnyValueConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_newtype_struct(super::decode::TYPED_ANY, AnyValueVisitor)
            .map(AnyValueConfig)
    }
}

struct AnyValueVisitor;

fn any(value: any_value::Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

impl<'de> Visitor<'de> for AnyValueVisitor {
    type Value = AnyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, bool, list or map")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<AnyValue, D::Error> {
        d.deserialize_any(AnyValueVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::BoolValue(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::IntValue(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AnyValue, E> {
        // Go converts an unsigned config number to int64 the same way: wrapping.
        Ok(any(any_value::Value::IntValue(v as i64)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::DoubleValue(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::StringValue(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::StringValue(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<AnyValue, E> {
        Ok(AnyValue::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<AnyValue, E> {
        Ok(AnyValue::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<AnyValue, D::Error> {
        AnyValueConfig::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<AnyValue, A::Error> {
        let mut values = Vec::new();
        while let Some(AnyValueConfig(item)) = seq.next_element::<AnyValueConfig>()? {
            values.push(item);
        }
        Ok(any(any_value::Value::ArrayValue(ArrayValue { values })))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        let mut values = Vec::new();
        while let Some((key, AnyValueConfig(value))) = map.next_entry::<String, AnyValueConfig>()? {
            values.push(KeyValue {
                key,
                value: Some(value),
                ..Default::default()
            });
        }
        Ok(any(any_value::Value::KvlistValue(KeyValueList { values })))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(
            parse_go_duration("200ms").unwrap(),
            Duration::from_millis(200)
        );
        assert_eq!(parse_go_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("10us").unwrap(),
            Duration::from_micros(10)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("five seconds").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("1e400h").is_err());
    }

    #[test]
    fn any_values_take_the_typed_reading_of_whole_references() {
        use crate::config::decode::decode;
        use crate::config::value::{Map, Value as Tree};
        let expanded = |typed: Tree, raw: &str| Tree::Expanded {
            typed: Box::new(typed),
            raw: raw.to_string(),
        };
        let mut map = Map::new();
        map.insert("port".into(), expanded(Tree::Int(8080), "8080"));
        map.insert("name".into(), expanded(Tree::String("api".into()), "api"));
        let tree = Tree::Seq(vec![
            Tree::Map(map),
            expanded(Tree::Bool(true), "true"),
            Tree::Null,
        ]);
        let value: AnyValueConfig = decode(&tree).unwrap();
        let item = |v: any_value::Value| AnyValue { value: Some(v) };
        assert_eq!(
            value.0,
            item(any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    item(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![
                            KeyValue {
                                key: "port".into(),
                                value: Some(item(any_value::Value::IntValue(8080))),
                                ..Default::default()
                            },
                            KeyValue {
                                key: "name".into(),
                                value: Some(item(any_value::Value::StringValue("api".into()))),
                                ..Default::default()
                            },
                        ],
                    })),
                    item(any_value::Value::BoolValue(true)),
                    AnyValue::default(),
                ],
            }))
        );
        // An empty expansion reads as null: an optional field is then unset.
        let unset: Option<AnyValueConfig> = decode(&expanded(Tree::Null, "")).unwrap();
        assert_eq!(unset, None);
        // A string field still gets the text.
        let text: String = decode(&expanded(Tree::Int(8080), "08080")).unwrap();
        assert_eq!(text, "08080");
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }
}
