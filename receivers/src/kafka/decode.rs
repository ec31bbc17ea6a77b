//! A Kafka record's value as telemetry, in the signal's encoding, with the chosen record
//! headers copied onto every resource.

use bytes::Bytes;
use prost::Message;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{
    json, Encoded, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, Payload, Signal,
};

use super::config::Encoding;
use super::logs::{self, Charset};

/// How one signal's records are read, resolved once at start.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub signal: Signal,
    encoding: Resolved,
    /// Header names whose first value becomes resource attribute `kafka.header.<name>`.
    headers: Vec<String>,
    /// Every stage downstream passes protobuf through untouched: keep it encoded.
    keep_encoded: bool,
}

#[derive(Debug, Clone)]
enum Resolved {
    OtlpProto,
    OtlpJson,
    Raw,
    Text(Charset),
    Json,
}

impl Decoder {
    pub fn new(
        signal: Signal,
        encoding: &Encoding,
        headers: Vec<String>,
        downstream_accepts_encoded: bool,
    ) -> Result<Decoder, String> {
        let encoding = match encoding {
            Encoding::OtlpProto => Resolved::OtlpProto,
            Encoding::OtlpJson => Resolved::OtlpJson,
            Encoding::Raw => Resolved::Raw,
            Encoding::Text(label) => Resolved::Text(Charset::from_label(label)?),
            Encoding::Json => Resolved::Json,
        };
        Ok(Decoder {
            signal,
            keep_encoded: downstream_accepts_encoded && headers.is_empty(),
            encoding,
            headers,
        })
    }

    /// The telemetry in `value`; `header` looks a record header up by name (its first value).
    pub fn decode<'h>(
        &self,
        value: &[u8],
        header: impl Fn(&str) -> Option<&'h [u8]>,
        now_unix_nano: u64,
    ) -> Result<Payload, String> {
        let signal = self.signal;
        let mut payload = match &self.encoding {
            Resolved::OtlpProto if self.keep_encoded => {
                Encoded::parse(signal, Bytes::copy_from_slice(value))
                    .map(Payload::Encoded)
                    .map_err(|e| e.to_string())?
            }
            Resolved::OtlpProto => match signal {
                Signal::Traces => ExportTraceServiceRequest::decode(value).map(Payload::from),
                Signal::Metrics => ExportMetricsServiceRequest::decode(value).map(Payload::from),
                Signal::Logs => ExportLogsServiceRequest::decode(value).map(Payload::from),
            }
            .map_err(|e| e.to_string())?,
            Resolved::OtlpJson => match signal {
                Signal::Traces => json::decode_traces(value).map(Payload::from),
                Signal::Metrics => json::decode_metrics(value).map(Payload::from),
                Signal::Logs => json::decode_logs(value).map(Payload::from),
            }
            .map_err(|e| e.to_string())?,
            Resolved::Raw => Payload::from(logs::raw(value)),
            Resolved::Text(charset) => Payload::from(logs::text(value, *charset, now_unix_nano)),
            Resolved::Json => Payload::from(logs::json(value, now_unix_nano)?),
        };
        if !self.headers.is_empty() {
            let found: Vec<KeyValue> = self
                .headers
                .iter()
                .filter_map(|name| {
                    let bytes = header(name)?;
                    Some(KeyValue {
                        key: format!("kafka.header.{name}"),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(
                                String::from_utf8_lossy(bytes).into_owned(),
                            )),
                        }),
                        ..Default::default()
                    })
                })
                .collect();
            if !found.is_empty() {
                for resource in resources(&mut payload) {
                    let resource = resource.get_or_insert_with(Default::default);
                    for kv in &found {
                        put(&mut resource.attributes, kv);
                    }
                }
            }
        }
        Ok(payload)
    }
}

/// Every resource of a decoded payload (header extraction decodes, so nothing is encoded).
fn resources(payload: &mut Payload) -> Vec<&mut Option<Resource>> {
    match payload {
        Payload::Traces(t) => {
            t.0.resource_spans
                .iter_mut()
                .map(|r| &mut r.resource)
                .collect()
        }
        Payload::Metrics(m) => {
            m.0.resource_metrics
                .iter_mut()
                .map(|r| &mut r.resource)
                .collect()
        }
        Payload::Logs(l) => {
            l.0.resource_logs
                .iter_mut()
                .map(|r| &mut r.resource)
                .collect()
        }
        Payload::Encoded(_) => Vec::new(),
    }
}

/// Sets an attribute, replacing any value it had.
fn put(attributes: &mut Vec<KeyValue>, kv: &KeyValue) {
    match attributes.iter_mut().find(|a| a.key == kv.key) {
        Some(existing) => existing.value = kv.value.clone(),
        None => attributes.push(kv.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrotel_pipeline::pdata::logs::{LogRecord, ResourceLogs, ScopeLogs};

    fn logs_request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "kafka.header.tenant".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("old".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn attribute<'a>(payload: &'a Payload, key: &str) -> Option<&'a str> {
        let Payload::Logs(l) = payload else {
            panic!("logs expected")
        };
        let attrs = &l.0.resource_logs[0].resource.as_ref()?.attributes;
        attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            }
        })
    }

    #[test]
    fn headers_become_resource_attributes_overwriting() {
        let d = Decoder::new(
            Signal::Logs,
            &Encoding::OtlpProto,
            vec!["tenant".into(), "missing".into()],
            true,
        )
        .unwrap();
        let bytes = logs_request().encode_to_vec();
        let headers = |name: &str| (name == "tenant").then_some(&b"acme"[..]);
        let payload = d.decode(&bytes, headers, 0).unwrap();
        assert_eq!(attribute(&payload, "kafka.header.tenant"), Some("acme"));
        assert_eq!(attribute(&payload, "kafka.header.missing"), None);
    }

    #[test]
    fn protobuf_stays_encoded_only_without_header_extraction() {
        let bytes = logs_request().encode_to_vec();
        let none = |_: &str| None;
        let d = Decoder::new(Signal::Logs, &Encoding::OtlpProto, Vec::new(), true).unwrap();
        assert!(matches!(d.decode(&bytes, none, 0), Ok(Payload::Encoded(_))));
        let d = Decoder::new(Signal::Logs, &Encoding::OtlpProto, Vec::new(), false).unwrap();
        assert!(matches!(d.decode(&bytes, none, 0), Ok(Payload::Logs(_))));
    }

    #[test]
    fn garbage_is_an_error_in_every_encoding() {
        let none = |_: &str| None;
        let garbage = b"\xff\xfe not telemetry \x00\x01";
        for (signal, encoding) in [
            (Signal::Traces, Encoding::OtlpProto),
            (Signal::Metrics, Encoding::OtlpJson),
            (Signal::Logs, Encoding::Json),
        ] {
            for keep in [true, false] {
                let d = Decoder::new(signal, &encoding, Vec::new(), keep).unwrap();
                assert!(d.decode(garbage, none, 0).is_err(), "{signal} {encoding:?}");
            }
        }
        // Raw takes any bytes.
        let d = Decoder::new(Signal::Logs, &Encoding::Raw, Vec::new(), true).unwrap();
        assert_eq!(d.decode(garbage, none, 0).unwrap().item_count(), 1);
    }

    #[test]
    fn json_otlp_decodes() {
        let none = |_: &str| None;
        let d = Decoder::new(Signal::Traces, &Encoding::OtlpJson, Vec::new(), true).unwrap();
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"s"}]}]}]}"#;
        assert_eq!(d.decode(body, none, 0).unwrap().item_count(), 1);
    }
}
