//! OTLP/JSON codec for the OTLP export requests and responses.
//!
//! Follows the OTLP "JSON Protobuf Encoding" rules, which differ from the
//! canonical proto3 JSON mapping in a few places:
//!
//! * trace and span ids are hex strings, not base64;
//! * enums are written as integers;
//! * decoding is lenient in the same ways as the upstream Collector: both
//!   lowerCamelCase and original proto field names are accepted, enums may be
//!   integers or names, 64-bit integers may be strings or numbers, doubles may
//!   be numbers or "NaN"/"Infinity"/"-Infinity", and unknown fields are
//!   ignored.
//!
//! The schema comes from the descriptors shipped with `opentelemetry-proto`
//! (its `file-descriptors` feature); messages go through a
//! [`prost_reflect::DynamicMessage`] on the way to or from the generated prost
//! types. The JSON walk is done here rather than with prost-reflect's serde
//! support so that ids can be hex, unknown enum names are rejected, errors
//! carry the path of the offending field, and output keeps field-number order.

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _,
};
use serde_json::Value as Json;

/// Protobuf full name of the trace export request.
pub const TRACES_REQUEST: &str = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest";
/// Protobuf full name of the trace export response.
pub const TRACES_RESPONSE: &str =
    "opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse";
/// Protobuf full name of the metrics export request.
pub const METRICS_REQUEST: &str =
    "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest";
/// Protobuf full name of the metrics export response.
pub const METRICS_RESPONSE: &str =
    "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse";
/// Protobuf full name of the logs export request.
pub const LOGS_REQUEST: &str = "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest";
/// Protobuf full name of the logs export response.
pub const LOGS_RESPONSE: &str = "opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse";

/// Deepest message nesting accepted when decoding: the same as prost's
/// decode recursion limit, so whatever passes here also converts to the prost
/// type. serde_json's own limit (128 nested JSON values) normally triggers
/// first; this guards the walk independently of how the JSON was parsed.
const MAX_DEPTH: usize = 100;

/// Longest piece of an offending input value quoted in an error message.
const QUOTE_LIMIT: usize = 40;

/// Errors from decoding OTLP/JSON, or from naming a message type wrongly.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The input is not well-formed JSON (or nests deeper than serde_json's
    /// recursion limit).
    #[error("invalid OTLP/JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// Well-formed JSON that does not fit the message schema.
    #[error("invalid OTLP/JSON: {}", describe(.reason, .field, .at))]
    Schema {
        /// What is wrong, e.g. "expected string, found number".
        reason: String,
        /// The offending key (with any list index), e.g. `traceId` or `values[3]`.
        field: String,
        /// Path of the object holding `field`, e.g. `resourceSpans[0].scopeSpans[0].spans[1]`.
        at: String,
    },
    /// The message could not be converted between the prost type and its
    /// descriptor: the type does not match `full_name`, or (when encoding) it
    /// nests more than 100 messages deep.
    #[error("invalid OTLP/JSON: {0}")]
    Convert(String),
    /// `full_name` is not a message in the OTLP descriptors.
    #[error("unknown OTLP message type {0}")]
    UnknownType(String),
    /// The descriptors embedded in opentelemetry-proto could not be loaded.
    #[error("OTLP descriptors unavailable: {0}")]
    Descriptors(String),
}

fn describe(reason: &str, field: &str, at: &str) -> String {
    match (field.is_empty(), at.is_empty()) {
        (true, _) => reason.to_owned(),
        (false, true) => format!("{reason} for {field}"),
        (false, false) => format!("{reason} for {field} at {at}"),
    }
}

/// Decodes OTLP/JSON into the prost type `M`, whose protobuf full name is
/// `full_name`.
pub fn decode<M: prost::Message + Default>(bytes: &[u8], full_name: &str) -> Result<M, JsonError> {
    let desc = message_descriptor(full_name)?;
    let json: Json = serde_json::from_slice(bytes)?;
    let dynamic = message_from_json(&desc, &json, 0).map_err(Fault::into_error)?;
    dynamic
        .transcode_to::<M>()
        .map_err(|e| JsonError::Convert(e.to_string()))
}

/// Encodes `msg` (of protobuf full name `full_name`) as compact OTLP/JSON.
///
/// Never fails: if `full_name` is unknown or does not match `msg`, or `msg`
/// nests more than 100 messages deep, the output is `{}`. Use [`try_encode`]
/// to see such mistakes.
pub fn encode<M: prost::Message>(msg: &M, full_name: &str) -> Vec<u8> {
    try_encode(msg, full_name).unwrap_or_else(|_| b"{}".to_vec())
}

/// Like [`encode`], but reports an unknown `full_name` or a message that
/// does not match it (or nests more than 100 messages deep).
pub fn try_encode<M: prost::Message>(msg: &M, full_name: &str) -> Result<Vec<u8>, JsonError> {
    let desc = message_descriptor(full_name)?;
    let mut dynamic = DynamicMessage::new(desc);
    dynamic
        .transcode_from(msg)
        .map_err(|e| JsonError::Convert(e.to_string()))?;
    let mut out = String::with_capacity(msg.encoded_len().saturating_mul(2));
    write_message(&mut out, &dynamic);
    Ok(out.into_bytes())
}

/// Encodes a `google.rpc.Status` as OTLP/JSON. Default values are omitted as
/// in any proto3 JSON, and `details` is never written.
pub fn encode_status(code: i32, message: &str) -> Vec<u8> {
    let mut out = String::with_capacity(message.len() + 24);
    out.push('{');
    if code != 0 {
        let _ = write!(out, "\"code\":{code}");
    }
    if !message.is_empty() {
        if code != 0 {
            out.push(',');
        }
        out.push_str("\"message\":");
        write_str(&mut out, message);
    }
    out.push('}');
    out.into_bytes()
}

/// Decodes an OTLP/JSON trace export request.
pub fn decode_traces(bytes: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    decode(bytes, TRACES_REQUEST)
}

/// Decodes an OTLP/JSON metrics export request.
pub fn decode_metrics(bytes: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    decode(bytes, METRICS_REQUEST)
}

/// Decodes an OTLP/JSON logs export request.
pub fn decode_logs(bytes: &[u8]) -> Result<ExportLogsServiceRequest, JsonError> {
    decode(bytes, LOGS_REQUEST)
}

/// Encodes a trace export request as OTLP/JSON.
pub fn encode_traces(req: &ExportTraceServiceRequest) -> Vec<u8> {
    encode(req, TRACES_REQUEST)
}

/// Encodes a metrics export request as OTLP/JSON.
pub fn encode_metrics(req: &ExportMetricsServiceRequest) -> Vec<u8> {
    encode(req, METRICS_REQUEST)
}

/// Encodes a logs export request as OTLP/JSON.
pub fn encode_logs(req: &ExportLogsServiceRequest) -> Vec<u8> {
    encode(req, LOGS_REQUEST)
}

/// Encodes a trace export response as OTLP/JSON.
pub fn encode_traces_response(r: &ExportTraceServiceResponse) -> Vec<u8> {
    encode(r, TRACES_RESPONSE)
}

/// Encodes a metrics export response as OTLP/JSON.
pub fn encode_metrics_response(r: &ExportMetricsServiceResponse) -> Vec<u8> {
    encode(r, METRICS_RESPONSE)
}

/// Encodes a logs export response as OTLP/JSON.
pub fn encode_logs_response(r: &ExportLogsServiceResponse) -> Vec<u8> {
    encode(r, LOGS_RESPONSE)
}

fn pool() -> Result<&'static DescriptorPool, JsonError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(opentelemetry_proto::DESCRIPTORS).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| JsonError::Descriptors(e.clone()))
}

fn message_descriptor(full_name: &str) -> Result<MessageDescriptor, JsonError> {
    pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| JsonError::UnknownType(full_name.to_owned()))
}

/// Byte length of the id held by `field` if it is a trace/span id, which
/// OTLP/JSON writes as hex instead of base64.
fn id_len(field: &FieldDescriptor) -> Option<usize> {
    if !matches!(field.kind(), Kind::Bytes) {
        return None;
    }
    match field.name() {
        "trace_id" | "profile_id" => Some(16),
        "span_id" | "parent_span_id" => Some(8),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Decoding

enum Seg {
    Key(String),
    Index(usize),
}

/// A schema error on its way up the recursion; the path is collected
/// innermost first so the happy path never builds it.
struct Fault {
    reason: String,
    rev_path: Vec<Seg>,
}

impl Fault {
    fn new(reason: impl Into<String>) -> Self {
        Fault {
            reason: reason.into(),
            rev_path: Vec::new(),
        }
    }

    fn in_key(mut self, key: &str) -> Self {
        self.rev_path.push(Seg::Key(key.to_owned()));
        self
    }

    fn in_index(mut self, index: usize) -> Self {
        self.rev_path.push(Seg::Index(index));
        self
    }

    fn into_error(self) -> JsonError {
        let mut path = self.rev_path;
        path.reverse();
        let split = path
            .iter()
            .rposition(|s| matches!(s, Seg::Key(_)))
            .unwrap_or(0);
        JsonError::Schema {
            reason: self.reason,
            field: render_path(&path[split..]),
            at: render_path(&path[..split]),
        }
    }
}

fn render_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn expected(what: &str, found: &Json) -> Fault {
    Fault::new(format!("expected {what}, found {}", json_type(found)))
}

/// Quotes (a prefix of) an offending input string for an error message.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

fn message_from_json(
    desc: &MessageDescriptor,
    json: &Json,
    depth: usize,
) -> Result<DynamicMessage, Fault> {
    if depth > MAX_DEPTH {
        return Err(Fault::new(format!(
            "messages nested more than {MAX_DEPTH} deep"
        )));
    }
    let Json::Object(object) = json else {
        return Err(expected("object", json));
    };
    let mut msg = DynamicMessage::new(desc.clone());
    for (key, value) in object {
        let Some(field) = desc
            .get_field_by_json_name(key)
            .or_else(|| desc.get_field_by_name(key))
        else {
            // Unknown fields are skipped, as the upstream Collector does, so
            // newer senders can talk to older receivers.
            continue;
        };
        // proto3 JSON: null means "not set".
        if value.is_null() {
            continue;
        }
        let decoded = field_from_json(&field, value, depth).map_err(|f| f.in_key(key))?;
        if let Some(oneof) = field.containing_oneof() {
            if let Some(other) = oneof
                .fields()
                .find(|o| o.number() != field.number() && msg.has_field(o))
            {
                return Err(Fault::new(format!(
                    "conflicts with {} (only one of {} may be set)",
                    other.json_name(),
                    oneof.name()
                ))
                .in_key(key));
            }
        }
        msg.try_set_field(&field, decoded)
            .map_err(|e| Fault::new(e.to_string()).in_key(key))?;
    }
    Ok(msg)
}

fn field_from_json(
    field: &FieldDescriptor,
    json: &Json,
    depth: usize,
) -> Result<prost_reflect::Value, Fault> {
    if field.is_map() {
        // No OTLP message has map fields.
        return Err(Fault::new("map fields are not supported"));
    }
    if field.is_list() {
        let Json::Array(items) = json else {
            return Err(expected("array", json));
        };
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            values.push(single_from_json(field, item, depth).map_err(|f| f.in_index(i))?);
        }
        return Ok(prost_reflect::Value::List(values));
    }
    single_from_json(field, json, depth)
}

fn single_from_json(
    field: &FieldDescriptor,
    json: &Json,
    depth: usize,
) -> Result<prost_reflect::Value, Fault> {
    use prost_reflect::Value as V;
    Ok(match field.kind() {
        Kind::Message(desc) => V::Message(message_from_json(&desc, json, depth + 1)?),
        Kind::Enum(desc) => match json {
            Json::String(name) => match desc.get_value_by_name(name) {
                Some(value) => V::EnumNumber(value.number()),
                None => {
                    return Err(Fault::new(format!(
                        "unknown {} value {}",
                        desc.name(),
                        quote(name)
                    )))
                }
            },
            // Numbers outside the declared values are kept: proto3 enums are open.
            Json::Number(_) => V::EnumNumber(integer(json)?),
            _ => return Err(expected("enum name or integer", json)),
        },
        Kind::Bytes => {
            let Json::String(text) = json else {
                return Err(expected("string", json));
            };
            match id_len(field) {
                Some(len) => V::Bytes(hex_id(text, len)?),
                None => V::Bytes(base64_bytes(text)?),
            }
        }
        Kind::String => match json {
            Json::String(s) => V::String(s.clone()),
            _ => return Err(expected("string", json)),
        },
        Kind::Bool => match json {
            Json::Bool(b) => V::Bool(*b),
            _ => return Err(expected("boolean", json)),
        },
        Kind::Double => V::F64(double(json)?),
        Kind::Float => {
            let v = double(json)?;
            if v.is_finite() && v.abs() > f64::from(f32::MAX) {
                return Err(Fault::new(format!("{v} is out of range for float")));
            }
            // Narrowing is the point here; the range was checked above.
            V::F32(v as f32)
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => V::I32(integer(json)?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => V::I64(integer(json)?),
        Kind::Uint32 | Kind::Fixed32 => V::U32(integer(json)?),
        Kind::Uint64 | Kind::Fixed64 => V::U64(integer(json)?),
    })
}

/// An integer given as a JSON number (possibly written like `1e3` or `5.0`)
/// or as a decimal string.
fn integer<T>(json: &Json) -> Result<T, Fault>
where
    T: TryFrom<i128> + std::str::FromStr,
{
    let wide: i128 = match json {
        Json::String(s) => {
            return s
                .parse::<T>()
                .map_err(|_| Fault::new(format!("invalid integer {}", quote(s))));
        }
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                i128::from(u)
            } else if let Some(i) = n.as_i64() {
                i128::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if !f.is_finite() || f.fract() != 0.0 {
                    return Err(Fault::new(format!("expected integer, found {n}")));
                }
                // Saturating cast; anything that large fails the range check below.
                f as i128
            }
        }
        _ => return Err(expected("integer", json)),
    };
    T::try_from(wide).map_err(|_| Fault::new(format!("integer {json} is out of range")))
}

fn double(json: &Json) -> Result<f64, Fault> {
    match json {
        Json::Number(n) => n
            .as_f64()
            .ok_or_else(|| Fault::new(format!("invalid number {n}"))),
        Json::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => s
                .parse::<f64>()
                .map_err(|_| Fault::new(format!("invalid number {}", quote(s)))),
        },
        _ => Err(expected("number", json)),
    }
}

fn hex_id(text: &str, len: usize) -> Result<Bytes, Fault> {
    if text.is_empty() {
        return Ok(Bytes::new());
    }
    let bytes =
        hex::decode(text).map_err(|_| Fault::new(format!("invalid hex {}", quote(text))))?;
    if bytes.len() != len {
        return Err(Fault::new(format!(
            "expected {} hex digits, found {}",
            len * 2,
            text.len()
        )));
    }
    Ok(Bytes::from(bytes))
}

fn base64_bytes(text: &str) -> Result<Bytes, Fault> {
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    // proto3 JSON readers accept both alphabets, padded or not.
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);

    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map(Bytes::from)
        .map_err(|_| Fault::new(format!("invalid base64 {}", quote(text))))
}

// ---------------------------------------------------------------------------
// Encoding

fn write_message(out: &mut String, msg: &DynamicMessage) {
    out.push('{');
    let mut first = true;
    for field in msg.descriptor().fields() {
        // has_field is false for unset and default-valued fields (except
        // oneof members and optional fields, which are written when set).
        if field.is_map() || !msg.has_field(&field) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_str(out, field.json_name());
        out.push(':');
        write_value(out, &field, &msg.get_field(&field));
    }
    out.push('}');
}

fn write_value(out: &mut String, field: &FieldDescriptor, value: &prost_reflect::Value) {
    use prost_reflect::Value as V;
    match value {
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::I32(n) => {
            let _ = write!(out, "{n}");
        }
        V::U32(n) => {
            let _ = write!(out, "{n}");
        }
        // 64-bit integers are strings so JavaScript readers keep precision.
        V::I64(n) => {
            let _ = write!(out, "\"{n}\"");
        }
        V::U64(n) => {
            let _ = write!(out, "\"{n}\"");
        }
        V::F32(f) => write_float(out, *f),
        V::F64(f) => write_float(out, *f),
        V::String(s) => write_str(out, s),
        V::Bytes(b) => {
            out.push('"');
            if id_len(field).is_some() {
                out.push_str(&hex::encode(b));
            } else {
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            }
            out.push('"');
        }
        V::EnumNumber(n) => {
            let _ = write!(out, "{n}");
        }
        V::Message(m) => write_message(out, m),
        V::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, field, item);
            }
            out.push(']');
        }
        // Unreachable for OTLP (no map fields); keep the output valid JSON.
        V::Map(_) => out.push_str("{}"),
    }
}

/// Writes a float the way the upstream Collector does: non-finite values as
/// strings, plain decimal notation for magnitudes in [1e-6, 1e21), and
/// exponent notation with a signed, two-digit exponent otherwise.
fn write_float<F>(out: &mut String, f: F)
where
    F: Copy + Into<f64> + std::fmt::Display + std::fmt::LowerExp,
{
    let wide: f64 = f.into();
    if wide.is_nan() {
        out.push_str("\"NaN\"");
    } else if wide.is_infinite() {
        out.push_str(if wide > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else if wide == 0.0 || (1e-6..1e21).contains(&wide.abs()) {
        // Rust's Display gives the shortest digits that round-trip, with no
        // exponent and no trailing ".0" for integral values.
        let _ = write!(out, "{f}");
    } else {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
            }
            None => out.push_str(&text),
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if u32::from(c) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AV;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        exemplar, metric::Data, number_data_point, Exemplar, Gauge, Metric, NumberDataPoint,
        ResourceMetrics, ScopeMetrics,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

    const TRACE_ID_HEX: &str = "5b8efff798038103d269b633813fc60c";
    const SPAN_ID_HEX: &str = "eee19b7ec3c1b174";
    const PARENT_ID_HEX: &str = "eee19b7ec3c1b173";

    fn trace_id() -> Vec<u8> {
        hex::decode(TRACE_ID_HEX).unwrap()
    }
    fn span_id() -> Vec<u8> {
        hex::decode(SPAN_ID_HEX).unwrap()
    }

    const TRACES: &str = r#"{
      "resourceSpans": [{
        "resource": {
          "attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "enabled", "value": {"boolValue": true}},
            {"key": "retries", "value": {"intValue": "-42"}},
            {"key": "workers", "value": {"intValue": 7}},
            {"key": "ratio", "value": {"doubleValue": 2.5}},
            {"key": "blob", "value": {"bytesValue": "aGVsbG8="}},
            {"key": "list", "value": {"arrayValue": {"values": [
              {"stringValue": "a"}, {"intValue": "1"}, {"arrayValue": {}}
            ]}}},
            {"key": "map", "value": {"kvlistValue": {"values": [
              {"key": "inner", "value": {"boolValue": false}},
              {"key": "deeper", "value": {"kvlistValue": {"values": [
                {"key": "x", "value": {"doubleValue": "-Infinity"}}
              ]}}}
            ]}}},
            {"key": "nothing", "value": {}},
            {"key": "traceId", "value": {"stringValue": "an attribute, not an id"}}
          ],
          "droppedAttributesCount": 1
        },
        "scopeSpans": [{
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [{"key": "scope.attr", "value": {"stringValue": "s"}}],
            "droppedAttributesCount": 2
          },
          "spans": [
            {
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "eee19b7ec3c1b174",
              "parentSpanId": "eee19b7ec3c1b173",
              "traceState": "vendor=value",
              "flags": 257,
              "name": "GET /cart",
              "kind": 2,
              "startTimeUnixNano": "1544712660000000000",
              "endTimeUnixNano": 1544712661000000000,
              "attributes": [{"key": "http.status", "value": {"intValue": "500"}}],
              "droppedAttributesCount": 3,
              "events": [{
                "timeUnixNano": "1544712660500000000",
                "name": "exception",
                "attributes": [{"key": "exception.message", "value": {"stringValue": "oops"}}],
                "droppedAttributesCount": 4
              }],
              "droppedEventsCount": 5,
              "links": [{
                "traceId": "0102030405060708090a0b0c0d0e0f10",
                "spanId": "0102030405060708",
                "traceState": "a=b",
                "attributes": [{"key": "link.kind", "value": {"stringValue": "follows"}}],
                "droppedAttributesCount": 6,
                "flags": 1
              }],
              "droppedLinksCount": 7,
              "status": {"message": "boom", "code": 2}
            },
            {
              "traceId": "5b8efff798038103d269b633813fc60c",
              "spanId": "0000000000000001",
              "parentSpanId": "",
              "name": "client call",
              "kind": "SPAN_KIND_CLIENT",
              "startTimeUnixNano": 1,
              "endTimeUnixNano": "2",
              "status": {"code": "STATUS_CODE_OK"}
            }
          ],
          "schemaUrl": "https://opentelemetry.io/schemas/1.21.0"
        }],
        "schemaUrl": "https://opentelemetry.io/schemas/1.20.0"
      }]
    }"#;

    const METRICS: &str = r#"{
      "resourceMetrics": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "node-1"}}]},
        "scopeMetrics": [{
          "scope": {"name": "meter"},
          "metrics": [
            {
              "name": "temperature",
              "description": "current temperature",
              "unit": "Cel",
              "gauge": {"dataPoints": [
                {"timeUnixNano": "1544712660300000000", "asDouble": 21.5,
                 "attributes": [{"key": "room", "value": {"stringValue": "kitchen"}}]},
                {"timeUnixNano": 1544712660300000000, "asInt": "-3", "flags": 1}
              ]}
            },
            {
              "name": "requests",
              "unit": "1",
              "sum": {
                "aggregationTemporality": 2,
                "isMonotonic": true,
                "dataPoints": [{
                  "startTimeUnixNano": "1544712600000000000",
                  "timeUnixNano": "1544712660000000000",
                  "asInt": 1234,
                  "exemplars": [{
                    "timeUnixNano": "1544712659000000000",
                    "asDouble": 0.25,
                    "traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": "eee19b7ec3c1b174",
                    "filteredAttributes": [{"key": "user", "value": {"stringValue": "u1"}}]
                  }]
                }]
              }
            },
            {
              "name": "delta.sum",
              "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                      "dataPoints": [{"asDouble": "NaN"}]}
            },
            {
              "name": "latency",
              "unit": "ms",
              "histogram": {
                "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                "dataPoints": [{
                  "startTimeUnixNano": "1544712600000000000",
                  "timeUnixNano": "1544712660000000000",
                  "count": "6",
                  "sum": 12.5,
                  "bucketCounts": ["1", 2, "3", 0],
                  "explicitBounds": [1, "2.5", 5.0],
                  "min": 0.5,
                  "max": "8",
                  "exemplars": [{"asInt": "3", "spanId": "EEE19B7EC3C1B174", "traceId": ""}]
                }]
              }
            },
            {
              "name": "latency.exp",
              "exponentialHistogram": {
                "aggregationTemporality": 1,
                "dataPoints": [{
                  "timeUnixNano": "1544712660000000000",
                  "count": 7,
                  "sum": 3.25,
                  "scale": -2,
                  "zeroCount": "1",
                  "zeroThreshold": 0.001,
                  "positive": {"offset": -1, "bucketCounts": ["2", 3]},
                  "negative": {"offset": 2, "bucketCounts": [1]},
                  "min": -1.5,
                  "max": 4
                }]
              }
            },
            {
              "name": "rpc.duration",
              "summary": {"dataPoints": [{
                "timeUnixNano": "1544712660000000000",
                "count": "10",
                "sum": 55.5,
                "quantileValues": [
                  {"quantile": 0.5, "value": 4.5},
                  {"quantile": "0.99", "value": "Infinity"},
                  {"value": 0.1}
                ]
              }]}
            }
          ]
        }]
      }]
    }"#;

    const LOGS: &str = r#"{
      "resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeLogs": [{
          "scope": {"name": "logger", "version": "2"},
          "logRecords": [
            {
              "timeUnixNano": "1544712660300000000",
              "observedTimeUnixNano": 1544712660300000001,
              "severityNumber": 10,
              "severityText": "Information",
              "traceId": "5b8efff798038103d269b633813fc60c",
              "spanId": "eee19b7ec3c1b174",
              "flags": 1,
              "eventName": "user.login",
              "body": {"kvlistValue": {"values": [
                {"key": "msg", "value": {"stringValue": "hello \"world\"\n"}},
                {"key": "raw", "value": {"bytesValue": "3q2-7w"}}
              ]}},
              "attributes": [{"key": "count", "value": {"intValue": 9223372036854775807}}],
              "droppedAttributesCount": 2
            },
            {
              "severityNumber": "SEVERITY_NUMBER_ERROR",
              "body": {"stringValue": "plain"},
              "traceId": "",
              "spanId": ""
            }
          ]
        }]
      }]
    }"#;

    fn kv(key: &str, value: AV) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> &'a AV {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
            .unwrap_or_else(|| panic!("attribute {key} missing"))
    }

    fn schema_error(err: &JsonError) -> (&str, &str, &str) {
        match err {
            JsonError::Schema { reason, field, at } => (reason, field, at),
            other => panic!("expected a schema error, got {other:?}"),
        }
    }

    /// Rewrites every object key from lowerCamelCase to snake_case.
    fn snake_keys(value: serde_json::Value) -> serde_json::Value {
        match value {
            Json::Object(map) => Json::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let mut snake = String::new();
                        for c in k.chars() {
                            if c.is_ascii_uppercase() {
                                snake.push('_');
                                snake.push(c.to_ascii_lowercase());
                            } else {
                                snake.push(c);
                            }
                        }
                        (snake, snake_keys(v))
                    })
                    .collect(),
            ),
            Json::Array(items) => Json::Array(items.into_iter().map(snake_keys).collect()),
            other => other,
        }
    }

    fn to_snake(payload: &str) -> Vec<u8> {
        let snake = snake_keys(serde_json::from_str(payload).unwrap());
        serde_json::to_vec(&snake).unwrap()
    }

    /// A logs request whose body nests `levels` arrayValues.
    fn nested_body(levels: usize) -> String {
        let mut s = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
        s.push_str(&r#"{"arrayValue":{"values":["#.repeat(levels));
        s.push_str(r#"{"stringValue":"leaf"}"#);
        s.push_str(&"]}}".repeat(levels));
        s.push_str("}]}]}]}");
        s
    }

    // --- descriptors --------------------------------------------------------

    #[test]
    fn descriptor_pool_has_all_collector_messages() {
        for name in [
            TRACES_REQUEST,
            TRACES_RESPONSE,
            METRICS_REQUEST,
            METRICS_RESPONSE,
            LOGS_REQUEST,
            LOGS_RESPONSE,
        ] {
            assert!(message_descriptor(name).is_ok(), "{name} missing");
        }
    }

    // --- traces -------------------------------------------------------------

    #[test]
    fn decodes_spec_shaped_traces() {
        let req = decode_traces(TRACES.as_bytes()).unwrap();
        assert_eq!(req.resource_spans.len(), 1);
        let rs = &req.resource_spans[0];
        assert_eq!(rs.schema_url, "https://opentelemetry.io/schemas/1.20.0");

        let resource = rs.resource.as_ref().unwrap();
        assert_eq!(resource.dropped_attributes_count, 1);
        let attrs = &resource.attributes;
        assert_eq!(attrs.len(), 10);
        assert_eq!(
            attr(attrs, "service.name"),
            &AV::StringValue("checkout".into())
        );
        assert_eq!(attr(attrs, "enabled"), &AV::BoolValue(true));
        assert_eq!(attr(attrs, "retries"), &AV::IntValue(-42));
        assert_eq!(attr(attrs, "workers"), &AV::IntValue(7));
        assert_eq!(attr(attrs, "ratio"), &AV::DoubleValue(2.5));
        assert_eq!(attr(attrs, "blob"), &AV::BytesValue(b"hello".to_vec()));
        assert_eq!(
            attr(attrs, "list"),
            &AV::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(AV::StringValue("a".into()))
                    },
                    AnyValue {
                        value: Some(AV::IntValue(1))
                    },
                    AnyValue {
                        value: Some(AV::ArrayValue(ArrayValue::default()))
                    },
                ]
            })
        );
        assert_eq!(
            attr(attrs, "map"),
            &AV::KvlistValue(KeyValueList {
                values: vec![
                    kv("inner", AV::BoolValue(false)),
                    kv(
                        "deeper",
                        AV::KvlistValue(KeyValueList {
                            values: vec![kv("x", AV::DoubleValue(f64::NEG_INFINITY))]
                        })
                    ),
                ]
            })
        );
        let nothing = attrs.iter().find(|kv| kv.key == "nothing").unwrap();
        assert_eq!(nothing.value, Some(AnyValue { value: None }));
        // An attribute that happens to be called traceId is a plain string.
        assert_eq!(
            attr(attrs, "traceId"),
            &AV::StringValue("an attribute, not an id".into())
        );

        let ss = &rs.scope_spans[0];
        assert_eq!(ss.schema_url, "https://opentelemetry.io/schemas/1.21.0");
        let scope = ss.scope.as_ref().unwrap();
        assert_eq!(scope.name, "my.library");
        assert_eq!(scope.version, "1.0.0");
        assert_eq!(scope.dropped_attributes_count, 2);
        assert_eq!(
            attr(&scope.attributes, "scope.attr"),
            &AV::StringValue("s".into())
        );

        let server = &ss.spans[0];
        assert_eq!(server.trace_id, trace_id());
        assert_eq!(server.span_id, span_id());
        assert_eq!(server.parent_span_id, hex::decode(PARENT_ID_HEX).unwrap());
        assert_eq!(server.trace_state, "vendor=value");
        assert_eq!(server.flags, 257);
        assert_eq!(server.name, "GET /cart");
        assert_eq!(server.kind, span::SpanKind::Server as i32);
        assert_eq!(server.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(server.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(attr(&server.attributes, "http.status"), &AV::IntValue(500));
        assert_eq!(server.dropped_attributes_count, 3);
        assert_eq!(server.dropped_events_count, 5);
        assert_eq!(server.dropped_links_count, 7);

        let event = &server.events[0];
        assert_eq!(event.time_unix_nano, 1_544_712_660_500_000_000);
        assert_eq!(event.name, "exception");
        assert_eq!(event.dropped_attributes_count, 4);
        assert_eq!(
            attr(&event.attributes, "exception.message"),
            &AV::StringValue("oops".into())
        );

        let link = &server.links[0];
        assert_eq!(link.trace_id, (1..=16).collect::<Vec<u8>>());
        assert_eq!(link.span_id, (1..=8).collect::<Vec<u8>>());
        assert_eq!(link.trace_state, "a=b");
        assert_eq!(link.dropped_attributes_count, 6);
        assert_eq!(link.flags, 1);

        let status = server.status.as_ref().unwrap();
        assert_eq!(status.code, 2);
        assert_eq!(status.message, "boom");

        let client = &ss.spans[1];
        assert_eq!(client.kind, span::SpanKind::Client as i32);
        assert!(client.parent_span_id.is_empty());
        assert_eq!(client.span_id, vec![0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(client.start_time_unix_nano, 1);
        assert_eq!(client.end_time_unix_nano, 2);
        assert_eq!(client.status.as_ref().unwrap().code, 1);
    }

    #[test]
    fn traces_round_trip() {
        let req = decode_traces(TRACES.as_bytes()).unwrap();
        let encoded = encode_traces(&req);
        let again = decode_traces(&encoded).unwrap();
        assert_eq!(req, again);
        // Encoding is stable.
        assert_eq!(encode_traces(&again), encoded);
    }

    #[test]
    fn snake_case_traces_match_camel_case() {
        let camel = decode_traces(TRACES.as_bytes()).unwrap();
        let snake = decode_traces(&to_snake(TRACES)).unwrap();
        assert_eq!(camel, snake);
    }

    #[test]
    fn hand_written_snake_case() {
        let payload = r#"{"resource_spans":[{"scope_spans":[{"spans":[{
            "trace_id":"5b8efff798038103d269b633813fc60c",
            "span_id":"eee19b7ec3c1b174",
            "parent_span_id":"eee19b7ec3c1b173",
            "start_time_unix_nano":"10",
            "dropped_attributes_count":2,
            "attributes":[{"key":"k","value":{"int_value":"5"}},
                          {"key":"l","value":{"kvlist_value":{"values":[]}}}],
            "links":[{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708"}]
        }],"schema_url":"s"}]}]}"#;
        let req = decode_traces(payload.as_bytes()).unwrap();
        let ss = &req.resource_spans[0].scope_spans[0];
        assert_eq!(ss.schema_url, "s");
        let span = &ss.spans[0];
        assert_eq!(span.trace_id, trace_id());
        assert_eq!(span.span_id, span_id());
        assert_eq!(span.parent_span_id, hex::decode(PARENT_ID_HEX).unwrap());
        assert_eq!(span.start_time_unix_nano, 10);
        assert_eq!(span.dropped_attributes_count, 2);
        assert_eq!(attr(&span.attributes, "k"), &AV::IntValue(5));
        assert_eq!(
            attr(&span.attributes, "l"),
            &AV::KvlistValue(KeyValueList::default())
        );
        assert_eq!(span.links[0].span_id, (1..=8).collect::<Vec<u8>>());
    }

    // --- metrics ------------------------------------------------------------

    #[test]
    fn decodes_spec_shaped_metrics() {
        let req = decode_metrics(METRICS.as_bytes()).unwrap();
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 6);

        let Some(Data::Gauge(gauge)) = &metrics[0].data else {
            panic!("gauge expected")
        };
        assert_eq!(metrics[0].description, "current temperature");
        assert_eq!(metrics[0].unit, "Cel");
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(21.5))
        );
        assert_eq!(
            gauge.data_points[0].time_unix_nano,
            1_544_712_660_300_000_000
        );
        assert_eq!(
            gauge.data_points[1].value,
            Some(number_data_point::Value::AsInt(-3))
        );
        assert_eq!(
            gauge.data_points[1].time_unix_nano,
            1_544_712_660_300_000_000
        );
        assert_eq!(gauge.data_points[1].flags, 1);

        let Some(Data::Sum(sum)) = &metrics[1].data else {
            panic!("sum expected")
        };
        assert_eq!(sum.aggregation_temporality, 2);
        assert!(sum.is_monotonic);
        let point = &sum.data_points[0];
        assert_eq!(point.value, Some(number_data_point::Value::AsInt(1234)));
        assert_eq!(point.start_time_unix_nano, 1_544_712_600_000_000_000);
        let ex = &point.exemplars[0];
        assert_eq!(ex.trace_id, trace_id());
        assert_eq!(ex.span_id, span_id());
        assert_eq!(ex.value, Some(exemplar::Value::AsDouble(0.25)));
        assert_eq!(ex.time_unix_nano, 1_544_712_659_000_000_000);
        assert_eq!(
            attr(&ex.filtered_attributes, "user"),
            &AV::StringValue("u1".into())
        );

        let Some(Data::Sum(delta)) = &metrics[2].data else {
            panic!("sum expected")
        };
        assert_eq!(delta.aggregation_temporality, 1);
        assert!(!delta.is_monotonic);
        match delta.data_points[0].value {
            Some(number_data_point::Value::AsDouble(v)) => assert!(v.is_nan()),
            ref other => panic!("unexpected {other:?}"),
        }

        let Some(Data::Histogram(hist)) = &metrics[3].data else {
            panic!("histogram expected")
        };
        assert_eq!(hist.aggregation_temporality, 2);
        let hp = &hist.data_points[0];
        assert_eq!(hp.count, 6);
        assert_eq!(hp.sum, Some(12.5));
        assert_eq!(hp.bucket_counts, vec![1, 2, 3, 0]);
        assert_eq!(hp.explicit_bounds, vec![1.0, 2.5, 5.0]);
        assert_eq!(hp.min, Some(0.5));
        assert_eq!(hp.max, Some(8.0));
        assert_eq!(hp.exemplars[0].span_id, span_id());
        assert!(hp.exemplars[0].trace_id.is_empty());
        assert_eq!(hp.exemplars[0].value, Some(exemplar::Value::AsInt(3)));

        let Some(Data::ExponentialHistogram(exp)) = &metrics[4].data else {
            panic!("exponential histogram expected")
        };
        assert_eq!(exp.aggregation_temporality, 1);
        let ep = &exp.data_points[0];
        assert_eq!(ep.count, 7);
        assert_eq!(ep.sum, Some(3.25));
        assert_eq!(ep.scale, -2);
        assert_eq!(ep.zero_count, 1);
        assert_eq!(ep.zero_threshold, 0.001);
        let positive = ep.positive.as_ref().unwrap();
        assert_eq!(
            (positive.offset, positive.bucket_counts.clone()),
            (-1, vec![2, 3])
        );
        let negative = ep.negative.as_ref().unwrap();
        assert_eq!(
            (negative.offset, negative.bucket_counts.clone()),
            (2, vec![1])
        );
        assert_eq!(ep.min, Some(-1.5));
        assert_eq!(ep.max, Some(4.0));

        let Some(Data::Summary(summary)) = &metrics[5].data else {
            panic!("summary expected")
        };
        let sp = &summary.data_points[0];
        assert_eq!(sp.count, 10);
        assert_eq!(sp.sum, 55.5);
        let q: Vec<(f64, f64)> = sp
            .quantile_values
            .iter()
            .map(|q| (q.quantile, q.value))
            .collect();
        assert_eq!(q, vec![(0.5, 4.5), (0.99, f64::INFINITY), (0.0, 0.1)]);
    }

    /// NaN != NaN, so compare metrics payloads by their encoding.
    #[test]
    fn metrics_round_trip() {
        let req = decode_metrics(METRICS.as_bytes()).unwrap();
        let encoded = encode_metrics(&req);
        let again = decode_metrics(&encoded).unwrap();
        assert_eq!(encode_metrics(&again), encoded);

        let mut without_nan = req.clone();
        without_nan.resource_metrics[0].scope_metrics[0]
            .metrics
            .remove(2);
        let again = decode_metrics(&encode_metrics(&without_nan)).unwrap();
        assert_eq!(without_nan, again);
    }

    #[test]
    fn snake_case_metrics_match_camel_case() {
        let camel = encode_metrics(&decode_metrics(METRICS.as_bytes()).unwrap());
        let snake = encode_metrics(&decode_metrics(&to_snake(METRICS)).unwrap());
        assert_eq!(camel, snake);
    }

    // --- logs ---------------------------------------------------------------

    #[test]
    fn decodes_spec_shaped_logs() {
        let req = decode_logs(LOGS.as_bytes()).unwrap();
        let sl = &req.resource_logs[0].scope_logs[0];
        assert_eq!(sl.scope.as_ref().unwrap().version, "2");
        let rec = &sl.log_records[0];
        assert_eq!(rec.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(rec.observed_time_unix_nano, 1_544_712_660_300_000_001);
        assert_eq!(rec.severity_number, 10);
        assert_eq!(rec.severity_text, "Information");
        assert_eq!(rec.trace_id, trace_id());
        assert_eq!(rec.span_id, span_id());
        assert_eq!(rec.flags, 1);
        assert_eq!(rec.event_name, "user.login");
        assert_eq!(rec.dropped_attributes_count, 2);
        assert_eq!(attr(&rec.attributes, "count"), &AV::IntValue(i64::MAX));
        assert_eq!(
            rec.body.as_ref().unwrap().value,
            Some(AV::KvlistValue(KeyValueList {
                values: vec![
                    kv("msg", AV::StringValue("hello \"world\"\n".into())),
                    // URL-safe, unpadded base64 is accepted too.
                    kv("raw", AV::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])),
                ]
            }))
        );
        let second = &sl.log_records[1];
        assert_eq!(second.severity_number, 17);
        assert!(second.trace_id.is_empty() && second.span_id.is_empty());
        assert_eq!(
            second.body.as_ref().unwrap().value,
            Some(AV::StringValue("plain".into()))
        );
    }

    #[test]
    fn logs_round_trip() {
        let req = decode_logs(LOGS.as_bytes()).unwrap();
        let encoded = encode_logs(&req);
        let again = decode_logs(&encoded).unwrap();
        assert_eq!(req, again);
        assert_eq!(encode_logs(&again), encoded);
    }

    #[test]
    fn snake_case_logs_match_camel_case() {
        let camel = decode_logs(LOGS.as_bytes()).unwrap();
        let snake = decode_logs(&to_snake(LOGS)).unwrap();
        assert_eq!(camel, snake);
    }

    // --- exact encodings ----------------------------------------------------

    #[test]
    fn encodes_traces_exactly() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", AV::StringValue("svc".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        ..Default::default()
                    }),
                    spans: vec![Span {
                        trace_id: trace_id(),
                        span_id: span_id(),
                        name: "op".into(),
                        kind: span::SpanKind::Server as i32,
                        start_time_unix_nano: 1_544_712_660_000_000_000,
                        end_time_unix_nano: 1_544_712_661_000_000_000,
                        attributes: vec![
                            kv("n", AV::IntValue(42)),
                            kv("zero", AV::IntValue(0)),
                            kv("f", AV::DoubleValue(1.0)),
                            kv("b", AV::BytesValue(b"hi".to_vec())),
                        ],
                        status: Some(Status {
                            code: 2,
                            message: String::new(),
                        }),
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let expected = concat!(
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"#,
            r#""scopeSpans":[{"scope":{"name":"lib"},"spans":[{"#,
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","#,
            r#""name":"op","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","#,
            r#""attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"zero","value":{"intValue":"0"}},"#,
            r#"{"key":"f","value":{"doubleValue":1}},{"key":"b","value":{"bytesValue":"aGk="}}],"#,
            r#""status":{"code":2}}]}]}]}"#
        );
        assert_eq!(String::from_utf8(encode_traces(&req)).unwrap(), expected);
    }

    #[test]
    fn encodes_metrics_and_logs_exactly() {
        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "g".into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                time_unix_nano: 5,
                                value: Some(number_data_point::Value::AsDouble(f64::NAN)),
                                exemplars: vec![Exemplar {
                                    span_id: span_id(),
                                    value: Some(exemplar::Value::AsInt(-1)),
                                    ..Default::default()
                                }],
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(
            String::from_utf8(encode_metrics(&metrics)).unwrap(),
            concat!(
                r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"#,
                r#""timeUnixNano":"5","asDouble":"NaN","exemplars":[{"spanId":"eee19b7ec3c1b174","asInt":"-1"}]"#,
                r#"}]}}]}]}]}"#
            )
        );

        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(AV::StringValue("tab\there \u{1} \"q\" ü".into())),
                        }),
                        trace_id: trace_id(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(
            String::from_utf8(encode_logs(&logs)).unwrap(),
            concat!(
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":9,"#,
                r#""body":{"stringValue":"tab\there \u0001 \"q\" ü"},"#,
                r#""traceId":"5b8efff798038103d269b633813fc60c"}]}]}]}"#
            )
        );
    }

    #[test]
    fn encodes_empty_requests_and_responses() {
        assert_eq!(encode_traces(&ExportTraceServiceRequest::default()), b"{}");
        assert_eq!(
            encode_metrics(&ExportMetricsServiceRequest::default()),
            b"{}"
        );
        assert_eq!(encode_logs(&ExportLogsServiceRequest::default()), b"{}");
        assert_eq!(
            encode_traces_response(&ExportTraceServiceResponse::default()),
            b"{}"
        );
        assert_eq!(
            encode_metrics_response(&ExportMetricsServiceResponse::default()),
            b"{}"
        );
        assert_eq!(
            encode_logs_response(&ExportLogsServiceResponse::default()),
            b"{}"
        );
    }

    #[test]
    fn encodes_partial_success_responses() {
        let traces = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 5,
                error_message: "bad span".into(),
            }),
        };
        assert_eq!(
            encode_traces_response(&traces),
            br#"{"partialSuccess":{"rejectedSpans":"5","errorMessage":"bad span"}}"#
        );
        let metrics = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 2,
                error_message: String::new(),
            }),
        };
        assert_eq!(
            encode_metrics_response(&metrics),
            br#"{"partialSuccess":{"rejectedDataPoints":"2"}}"#
        );
        let logs = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess::default()),
        };
        assert_eq!(encode_logs_response(&logs), br#"{"partialSuccess":{}}"#);
    }

    #[test]
    fn encodes_status() {
        assert_eq!(
            encode_status(3, "bad \"json\""),
            br#"{"code":3,"message":"bad \"json\""}"#
        );
        assert_eq!(encode_status(14, ""), br#"{"code":14}"#);
        assert_eq!(encode_status(0, "ok"), br#"{"message":"ok"}"#);
        assert_eq!(encode_status(0, ""), b"{}");
    }

    #[test]
    fn formats_doubles_like_the_collector() {
        let cases: [(f64, &str); 12] = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (123_456.789, "123456.789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (1e-6, "0.000001"),
            (1e-7, "1e-07"),
            (-2.5e-10, "-2.5e-10"),
        ];
        for (value, text) in cases {
            let mut out = String::new();
            write_float(&mut out, value);
            assert_eq!(out, text, "formatting {value:e}");
            assert_eq!(out.parse::<f64>().unwrap().to_bits(), value.to_bits());
        }
        let mut out = String::new();
        write_float(&mut out, f64::INFINITY);
        write_float(&mut out, f64::NEG_INFINITY);
        write_float(&mut out, 0.1_f32);
        assert_eq!(out, r#""Infinity""-Infinity"0.1"#);
    }

    #[test]
    fn encodes_extreme_integers() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        time_unix_nano: u64::MAX,
                        attributes: vec![kv("min", AV::IntValue(i64::MIN))],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let text = String::from_utf8(encode_logs(&req)).unwrap();
        assert!(
            text.contains(r#""timeUnixNano":"18446744073709551615""#),
            "{text}"
        );
        assert!(
            text.contains(r#""intValue":"-9223372036854775808""#),
            "{text}"
        );
        assert_eq!(decode_logs(text.as_bytes()).unwrap(), req);
    }

    // --- leniency -----------------------------------------------------------

    #[test]
    fn empty_object_is_an_empty_request() {
        assert_eq!(
            decode_traces(b"{}").unwrap(),
            ExportTraceServiceRequest::default()
        );
        assert_eq!(
            decode_metrics(b" { } ").unwrap(),
            ExportMetricsServiceRequest::default()
        );
        assert_eq!(
            decode_logs(b"{}").unwrap(),
            ExportLogsServiceRequest::default()
        );
        assert_eq!(
            decode_traces(br#"{"resourceSpans":[]}"#).unwrap(),
            ExportTraceServiceRequest::default()
        );
        assert_eq!(
            decode_traces(br#"{"resourceSpans":null}"#).unwrap(),
            ExportTraceServiceRequest::default()
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let payload = r#"{
            "futureTopLevel": {"deep": [1, 2, {"x": null}]},
            "resourceSpans": [{
                "unknownArray": [],
                "scopeSpans": [{"spans": [{
                    "spanId": "eee19b7ec3c1b174",
                    "somethingNew": "value",
                    "status": {"code": 1, "extra": true},
                    "attributes": [{"key": "k", "value": {"stringValue": "v", "futureValue": 3}}]
                }]}]
            }]
        }"#;
        let req = decode_traces(payload.as_bytes()).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.span_id, span_id());
        assert_eq!(span.status.as_ref().unwrap().code, 1);
        assert_eq!(attr(&span.attributes, "k"), &AV::StringValue("v".into()));
    }

    #[test]
    fn enums_as_names_or_numbers() {
        let by_name = decode_traces(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_CONSUMER"}]}]}]}"#,
        )
        .unwrap();
        let by_number =
            decode_traces(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":5}]}]}]}"#)
                .unwrap();
        assert_eq!(by_name, by_number);
        assert_eq!(
            by_name.resource_spans[0].scope_spans[0].spans[0].kind,
            span::SpanKind::Consumer as i32
        );
        // proto3 enums are open: unknown numbers are kept.
        let open =
            decode_traces(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":42}]}]}]}"#)
                .unwrap();
        assert_eq!(open.resource_spans[0].scope_spans[0].spans[0].kind, 42);
        assert!(String::from_utf8(encode_traces(&open))
            .unwrap()
            .contains(r#""kind":42"#));
    }

    #[test]
    fn numbers_in_every_accepted_form() {
        let payload = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[
            {"timeUnixNano": "18446744073709551615", "asInt": "-9223372036854775808"},
            {"timeUnixNano": 1e3, "asInt": 5.0, "flags": "3"},
            {"asDouble": "Infinity"},
            {"asDouble": "-Infinity"},
            {"asDouble": "1.25e2"},
            {"asDouble": 7}
        ]}}]}]}]}"#;
        let req = decode_metrics(payload.as_bytes()).unwrap();
        let Some(Data::Gauge(g)) = &req.resource_metrics[0].scope_metrics[0].metrics[0].data else {
            panic!("gauge expected")
        };
        let p = &g.data_points;
        assert_eq!(p[0].time_unix_nano, u64::MAX);
        assert_eq!(p[0].value, Some(number_data_point::Value::AsInt(i64::MIN)));
        assert_eq!(p[1].time_unix_nano, 1000);
        assert_eq!(p[1].value, Some(number_data_point::Value::AsInt(5)));
        assert_eq!(p[1].flags, 3);
        assert_eq!(
            p[2].value,
            Some(number_data_point::Value::AsDouble(f64::INFINITY))
        );
        assert_eq!(
            p[3].value,
            Some(number_data_point::Value::AsDouble(f64::NEG_INFINITY))
        );
        assert_eq!(p[4].value, Some(number_data_point::Value::AsDouble(125.0)));
        assert_eq!(p[5].value, Some(number_data_point::Value::AsDouble(7.0)));
        let text = String::from_utf8(encode_metrics(&req)).unwrap();
        assert!(text.contains(r#""asDouble":"Infinity""#), "{text}");
        assert!(text.contains(r#""asDouble":"-Infinity""#), "{text}");
        assert!(text.contains(r#""asDouble":125"#), "{text}");
    }

    #[test]
    fn duplicate_spellings_of_one_field_are_not_a_conflict() {
        let req = decode_traces(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[
                {"key":"k","value":{"stringValue":"a","string_value":"b"}}]}]}]}]}"#,
        )
        .unwrap();
        let attrs = &req.resource_spans[0].scope_spans[0].spans[0].attributes;
        assert!(matches!(attr(attrs, "k"), AV::StringValue(_)));
    }

    #[test]
    fn moderately_deep_nesting_round_trips() {
        let payload = nested_body(30);
        let req = decode_logs(payload.as_bytes()).unwrap();
        let encoded = encode_logs(&req);
        assert_eq!(decode_logs(&encoded).unwrap(), req);
        let mut value = req.resource_logs[0].scope_logs[0].log_records[0]
            .body
            .as_ref()
            .unwrap();
        let mut levels = 0;
        while let Some(AV::ArrayValue(arr)) = &value.value {
            levels += 1;
            value = &arr.values[0];
        }
        assert_eq!(levels, 30);
        assert_eq!(value.value, Some(AV::StringValue("leaf".into())));
    }

    // --- errors -------------------------------------------------------------

    fn span_payload(fields: &str) -> String {
        format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{fields}}}]}}]}}]}}"#)
    }

    const SPAN_PATH: &str = "resourceSpans[0].scopeSpans[0].spans[0]";

    #[test]
    fn rejects_bad_hex_ids() {
        let err = decode_traces(
            span_payload(r#""traceId":"zz8efff798038103d269b633813fc60c""#).as_bytes(),
        )
        .unwrap_err();
        let (reason, field, at) = schema_error(&err);
        assert!(reason.starts_with("invalid hex"), "{reason}");
        assert_eq!((field, at), ("traceId", SPAN_PATH));
        assert_eq!(
            err.to_string(),
            format!("invalid OTLP/JSON: invalid hex \"zz8efff798038103d269b633813fc60c\" for traceId at {SPAN_PATH}")
        );

        // Base64 is not accepted for ids.
        let err = decode_traces(span_payload(r#""spanId":"7uGbfsPBsXQ=""#).as_bytes()).unwrap_err();
        assert_eq!(schema_error(&err).1, "spanId");

        // Odd number of digits.
        let err = decode_traces(span_payload(r#""parent_span_id":"abc""#).as_bytes()).unwrap_err();
        assert_eq!(schema_error(&err).1, "parent_span_id");
    }

    #[test]
    fn rejects_ids_of_the_wrong_length() {
        let err =
            decode_traces(span_payload(r#""traceId":"5b8efff798038103d269b633813fc6""#).as_bytes())
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid OTLP/JSON: expected 32 hex digits, found 30 for traceId at {SPAN_PATH}"
            )
        );

        // A trace id where a span id belongs.
        let err = decode_traces(span_payload(&format!(r#""spanId":"{TRACE_ID_HEX}""#)).as_bytes())
            .unwrap_err();
        assert_eq!(
            schema_error(&err),
            ("expected 16 hex digits, found 32", "spanId", SPAN_PATH)
        );

        let err = decode_traces(span_payload(r#""links":[{},{"spanId":"0102"}]"#).as_bytes())
            .unwrap_err();
        assert_eq!(
            schema_error(&err),
            (
                "expected 16 hex digits, found 4",
                "spanId",
                "resourceSpans[0].scopeSpans[0].spans[0].links[1]"
            )
        );

        let err = decode_logs(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"0102"}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            schema_error(&err).2,
            "resourceLogs[0].scopeLogs[0].logRecords[0]"
        );

        let err = decode_metrics(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[
                {"exemplars":[{"span_id":"00"}]}]}}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            schema_error(&err),
            (
                "expected 16 hex digits, found 2",
                "span_id",
                "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].exemplars[0]"
            )
        );
    }

    #[test]
    fn rejects_wrong_json_types() {
        let err = decode_traces(span_payload(r#""traceId":123"#).as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid OTLP/JSON: expected string, found number for traceId at {SPAN_PATH}")
        );

        let err = decode_traces(br#"{"resourceSpans":{}}"#).unwrap_err();
        assert_eq!(
            schema_error(&err),
            ("expected array, found object", "resourceSpans", "")
        );
        assert_eq!(
            err.to_string(),
            "invalid OTLP/JSON: expected array, found object for resourceSpans"
        );

        let err = decode_traces(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{}, 1]}]}]}"#)
            .unwrap_err();
        assert_eq!(
            schema_error(&err),
            (
                "expected object, found number",
                "spans[1]",
                "resourceSpans[0].scopeSpans[0]"
            )
        );

        let cases = [
            (r#""name":5"#, "name", "expected string, found number"),
            (
                r#""kind":true"#,
                "kind",
                "expected enum name or integer, found boolean",
            ),
            (
                r#""kind":"SPAN_KIND_BOGUS""#,
                "kind",
                "unknown SpanKind value \"SPAN_KIND_BOGUS\"",
            ),
            (
                r#""startTimeUnixNano":"soon""#,
                "startTimeUnixNano",
                "invalid integer \"soon\"",
            ),
            (
                r#""startTimeUnixNano":-1"#,
                "startTimeUnixNano",
                "integer -1 is out of range",
            ),
            (
                r#""startTimeUnixNano":1.5"#,
                "startTimeUnixNano",
                "expected integer, found 1.5",
            ),
            (
                r#""startTimeUnixNano":[]"#,
                "startTimeUnixNano",
                "expected integer, found array",
            ),
            (
                r#""droppedAttributesCount":4294967296"#,
                "droppedAttributesCount",
                "integer 4294967296 is out of range",
            ),
            (
                r#""status":"ok""#,
                "status",
                "expected object, found string",
            ),
            (
                r#""events":[null]"#,
                "events[0]",
                "expected object, found null",
            ),
        ];
        for (fields, field, reason) in cases {
            let err = decode_traces(span_payload(fields).as_bytes()).unwrap_err();
            assert_eq!(schema_error(&err), (reason, field, SPAN_PATH), "{fields}");
        }

        let attr_cases = [
            (
                r#"{"intValue":"1.5"}"#,
                "intValue",
                "invalid integer \"1.5\"",
            ),
            (
                r#"{"intValue":true}"#,
                "intValue",
                "expected integer, found boolean",
            ),
            (
                r#"{"boolValue":"true"}"#,
                "boolValue",
                "expected boolean, found string",
            ),
            (
                r#"{"doubleValue":"fast"}"#,
                "doubleValue",
                "invalid number \"fast\"",
            ),
            (
                r#"{"bytesValue":"!!!"}"#,
                "bytesValue",
                "invalid base64 \"!!!\"",
            ),
        ];
        for (value, field, reason) in attr_cases {
            let payload = span_payload(&format!(r#""attributes":[{{"key":"k","value":{value}}}]"#));
            let err = decode_traces(payload.as_bytes()).unwrap_err();
            assert_eq!(
                schema_error(&err),
                (
                    reason,
                    field,
                    "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value"
                ),
                "{value}"
            );
        }

        // Which member is reported depends on the JSON object's key order.
        let payload = span_payload(
            r#""attributes":[{"key":"k","value":{"stringValue":"a","intValue":"1"}}]"#,
        );
        let err = decode_traces(payload.as_bytes()).unwrap_err();
        let (reason, field, _) = schema_error(&err);
        assert!(
            (field == "stringValue"
                && reason == "conflicts with intValue (only one of value may be set)")
                || (field == "intValue"
                    && reason == "conflicts with stringValue (only one of value may be set)"),
            "{err}"
        );

        let err = decode_metrics(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"histogram":{"dataPoints":[
                {"explicitBounds":[1, "x"]}]}}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            schema_error(&err),
            (
                "invalid number \"x\"",
                "explicitBounds[1]",
                "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0]"
            )
        );
    }

    #[test]
    fn quotes_only_a_prefix_of_long_values() {
        let long = "z".repeat(10_000);
        let err =
            decode_traces(span_payload(&format!(r#""traceId":"{long}""#)).as_bytes()).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn rejects_malformed_json() {
        for input in [
            &b""[..],
            b"{",
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"#,
            br#"{"resourceSpans":[]} trailing"#,
            b"\xff\xfe",
        ] {
            let err = decode_traces(input).unwrap_err();
            assert!(matches!(err, JsonError::Syntax(_)), "{err:?}");
            assert!(err.to_string().starts_with("invalid OTLP/JSON: "), "{err}");
        }
        for input in [&b"[]"[..], b"null", b"\"x\"", b"3"] {
            let err = decode_traces(input).unwrap_err();
            assert_eq!(
                schema_error(&err).0,
                format!(
                    "expected object, found {}",
                    json_type(&serde_json::from_slice(input).unwrap())
                )
            );
        }
    }

    #[test]
    fn extremely_deep_nesting_is_an_error_not_a_crash() {
        let err = decode_logs(nested_body(100_000).as_bytes()).unwrap_err();
        assert!(matches!(err, JsonError::Syntax(_)), "{err:?}");
        assert!(err.to_string().contains("recursion limit"), "{err}");

        let mut kvlist = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
        kvlist.push_str(&r#"{"kvlistValue":{"values":[{"key":"k","value":"#.repeat(100_000));
        kvlist.push_str("{}");
        kvlist.push_str(&"}]}}".repeat(100_000));
        kvlist.push_str("}]}]}]}");
        assert!(decode_logs(kvlist.as_bytes()).is_err());

        assert!(decode_logs("[".repeat(100_000).as_bytes()).is_err());
    }

    #[test]
    fn nesting_is_accepted_up_to_the_parser_limit() {
        let kvlist_body = |levels: usize| {
            let mut s = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
            s.push_str(&r#"{"kvlistValue":{"values":[{"key":"k","value":"#.repeat(levels));
            s.push_str("{}");
            s.push_str(&"}]}}".repeat(levels));
            s.push_str("}]}]}]}");
            s
        };
        let builders: [&dyn Fn(usize) -> String; 2] = [&nested_body, &kvlist_body];
        for build in builders {
            let mut levels = 1;
            let err = loop {
                match decode_logs(build(levels).as_bytes()) {
                    Ok(req) => {
                        // Whatever decodes also encodes and decodes back.
                        assert_eq!(decode_logs(&encode_logs(&req)).unwrap(), req);
                        levels += 1;
                    }
                    Err(err) => break err,
                }
            };
            assert!(levels > 25, "only {levels} levels accepted");
            assert!(
                matches!(err, JsonError::Syntax(_)),
                "{levels} levels: {err}"
            );
        }
    }

    #[test]
    fn message_depth_is_bounded_even_without_the_parser_limit() {
        // A value tree built in memory is not subject to serde_json's limit.
        let mut value = serde_json::json!({"stringValue": "leaf"});
        for _ in 0..200 {
            value = serde_json::json!({"arrayValue": {"values": [value]}});
        }
        let desc = message_descriptor("opentelemetry.proto.common.v1.AnyValue").unwrap();
        let err = message_from_json(&desc, &value, 0)
            .map(|_| ())
            .map_err(Fault::into_error)
            .unwrap_err();
        assert!(err.to_string().contains("nested more than"), "{err}");
    }

    #[test]
    fn over_deep_messages_fail_to_encode_cleanly() {
        let mut value = AnyValue {
            value: Some(AV::StringValue("leaf".into())),
        };
        for _ in 0..150 {
            value = AnyValue {
                value: Some(AV::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            };
        }
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        body: Some(value),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert!(matches!(
            try_encode(&req, LOGS_REQUEST),
            Err(JsonError::Convert(_))
        ));
        assert_eq!(encode_logs(&req), b"{}");
    }

    #[test]
    fn unknown_message_types_are_reported() {
        let err = decode::<ExportTraceServiceRequest>(b"{}", "no.such.Message").unwrap_err();
        assert!(matches!(err, JsonError::UnknownType(_)));
        assert_eq!(err.to_string(), "unknown OTLP message type no.such.Message");
        let req = ExportTraceServiceRequest::default();
        assert!(matches!(
            try_encode(&req, "no.such.Message"),
            Err(JsonError::UnknownType(_))
        ));
        assert_eq!(encode(&req, "no.such.Message"), b"{}");
    }

    #[test]
    fn generic_entry_points_match_the_wrappers() {
        let via_generic: ExportLogsServiceRequest = decode(LOGS.as_bytes(), LOGS_REQUEST).unwrap();
        assert_eq!(via_generic, decode_logs(LOGS.as_bytes()).unwrap());
        assert_eq!(
            encode(&via_generic, LOGS_REQUEST),
            try_encode(&via_generic, LOGS_REQUEST).unwrap()
        );
        assert_eq!(
            encode(&via_generic, LOGS_REQUEST),
            encode_logs(&via_generic)
        );
    }
}
