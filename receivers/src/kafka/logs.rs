//! The logs encodings that are not OTLP: a record's value as one log record whose body is
//! its bytes (`raw`), its text in a character set (`text`, `text_<charset>`) or a JSON
//! object kept as a map (`json`), as upstream builds them.

use ferrotel_pipeline::pdata::common::{
    any_value::Value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use ferrotel_pipeline::pdata::logs::{LogRecord, ResourceLogs, ScopeLogs};
use ferrotel_pipeline::pdata::ExportLogsServiceRequest;

/// How `text` encodings turn bytes into a string.
#[derive(Debug, Clone, Copy)]
pub enum Charset {
    /// UTF-8 (also `ascii`, `nop`): the bytes as they are; invalid sequences are replaced.
    Utf8,
    /// `utf-16`: little-endian, a byte order mark ignored.
    Utf16Le,
    /// Any other character set known by its WHATWG or IANA label.
    Other(&'static encoding_rs::Encoding),
}

impl Charset {
    /// The character set of a `text_<name>` encoding, matched as upstream matches names
    /// (without regard to case).
    pub fn from_label(label: &str) -> Result<Charset, String> {
        let lower = label.to_ascii_lowercase();
        match lower.as_str() {
            "" | "utf-8" | "utf8" | "ascii" | "us-ascii" | "nop" => Ok(Charset::Utf8),
            "utf-16" | "utf16" => Ok(Charset::Utf16Le),
            _ => encoding_rs::Encoding::for_label(lower.as_bytes())
                .map(Charset::Other)
                .ok_or_else(|| format!("invalid text encoding: unsupported encoding '{label}'")),
        }
    }

    fn decode(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Utf16Le => encoding_rs::UTF_16LE
                .decode_with_bom_removal(bytes)
                .0
                .into_owned(),
            Charset::Other(encoding) => encoding.decode_without_bom_handling(bytes).0.into_owned(),
        }
    }
}

/// One log record in a request of its own (no resource or scope attributes).
fn request(record: LogRecord) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Default::default()),
            scope_logs: vec![ScopeLogs {
                scope: Some(Default::default()),
                log_records: vec![record],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn body(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

/// `raw`: the bytes as the body; no timestamp is set, as upstream sets none.
pub fn raw(bytes: &[u8]) -> ExportLogsServiceRequest {
    request(LogRecord {
        body: body(Value::BytesValue(bytes.to_vec())),
        ..Default::default()
    })
}

/// `text`: the text as the body, observed at `now_unix_nano`.
pub fn text(bytes: &[u8], charset: Charset, now_unix_nano: u64) -> ExportLogsServiceRequest {
    request(LogRecord {
        body: body(Value::StringValue(charset.decode(bytes))),
        observed_time_unix_nano: now_unix_nano,
        ..Default::default()
    })
}

/// `json`: a JSON object as a map body, observed at `now_unix_nano`. Numbers become doubles,
/// as upstream decodes them; anything but an object is refused.
pub fn json(bytes: &[u8], now_unix_nano: u64) -> Result<ExportLogsServiceRequest, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("the JSON value is not an object".to_string());
    };
    Ok(request(LogRecord {
        body: body(Value::KvlistValue(object(map))),
        observed_time_unix_nano: now_unix_nano,
        ..Default::default()
    }))
}

fn object(map: serde_json::Map<String, serde_json::Value>) -> KeyValueList {
    KeyValueList {
        values: map
            .into_iter()
            .map(|(key, v)| KeyValue {
                key,
                value: Some(any(v)),
                ..Default::default()
            })
            .collect(),
    }
}

fn any(v: serde_json::Value) -> AnyValue {
    let value = match v {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(Value::BoolValue(b)),
        serde_json::Value::Number(n) => Some(Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Some(Value::StringValue(s)),
        serde_json::Value::Array(items) => Some(Value::ArrayValue(ArrayValue {
            values: items.into_iter().map(any).collect(),
        })),
        serde_json::Value::Object(map) => Some(Value::KvlistValue(object(map))),
    };
    AnyValue { value }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn only(request: &ExportLogsServiceRequest) -> &LogRecord {
        &request.resource_logs[0].scope_logs[0].log_records[0]
    }

    fn body_of(request: &ExportLogsServiceRequest) -> Option<&Value> {
        only(request).body.as_ref().and_then(|b| b.value.as_ref())
    }

    #[test]
    fn raw_keeps_the_bytes_and_sets_no_time() {
        let r = raw(&[0, 0xff, b'a']);
        assert_eq!(body_of(&r), Some(&Value::BytesValue(vec![0, 0xff, b'a'])));
        assert_eq!(only(&r).observed_time_unix_nano, 0);
        assert_eq!(only(&r).time_unix_nano, 0);
    }

    #[test]
    fn text_in_several_character_sets() {
        let utf8 = Charset::from_label("utf-8").unwrap();
        let r = text("grüße".as_bytes(), utf8, 42);
        assert_eq!(body_of(&r), Some(&Value::StringValue("grüße".into())));
        assert_eq!(only(&r).observed_time_unix_nano, 42);
        let utf16 = Charset::from_label("UTF-16").unwrap();
        let r = text(&[0xff, 0xfe, b'h', 0, b'i', 0], utf16, 0);
        assert_eq!(body_of(&r), Some(&Value::StringValue("hi".into())));
        let sjis = Charset::from_label("shift_jis").unwrap();
        let r = text(&[0x82, 0xa0], sjis, 0);
        assert_eq!(body_of(&r), Some(&Value::StringValue("あ".into())));
        let latin1 = Charset::from_label("ISO-8859-1").unwrap();
        let r = text(&[0xe9], latin1, 0);
        assert_eq!(body_of(&r), Some(&Value::StringValue("é".into())));
        assert_eq!(
            Charset::from_label("klingon").unwrap_err(),
            "invalid text encoding: unsupported encoding 'klingon'"
        );
    }

    #[test]
    fn json_objects_become_maps_with_double_numbers() {
        let r = json(
            br#"{"order": "o-1", "aggregator": {"name": "swiggy"}, "items": [1, "x"], "total": 12, "gift": null, "paid": true}"#,
            7,
        )
        .unwrap();
        let Some(Value::KvlistValue(map)) = body_of(&r) else {
            panic!("not a map")
        };
        let get = |key: &str| {
            map.values
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| v.value.clone())
        };
        assert_eq!(get("order"), Some(Value::StringValue("o-1".into())));
        assert_eq!(get("total"), Some(Value::DoubleValue(12.0)));
        assert_eq!(get("paid"), Some(Value::BoolValue(true)));
        assert_eq!(get("gift"), None);
        assert!(matches!(get("aggregator"), Some(Value::KvlistValue(_))));
        assert!(matches!(get("items"), Some(Value::ArrayValue(a)) if a.values.len() == 2));
        assert_eq!(only(&r).observed_time_unix_nano, 7);
        assert!(json(b"[1, 2]", 0).is_err());
        assert!(json(b"\"text\"", 0).is_err());
        assert!(json(b"{not json", 0).is_err());
    }
}
