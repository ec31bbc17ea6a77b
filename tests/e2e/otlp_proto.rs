//! OTLP protobuf messages (prost) written out as OTLP/JSON (hex ids, 64-bit integers as
//! strings, enums as integers), so what a backend received can be compared with
//! `otlp_json`'s canonical items. Written here from the proto definitions, independently of
//! the agent's own codec.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, EntityRef, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, number_data_point, Exemplar,
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{json, Map, Value};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding, as protobuf JSON writes `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {c:?}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

fn obj(fields: Vec<(&str, Value)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<String, Value>>(),
    )
}

fn string(n: impl ToString) -> Value {
    Value::String(n.to_string())
}

fn list<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::Array(items.iter().map(f).collect())
}

/// A singular 64-bit integer field: a decimal string, absent when 0 (as protobuf JSON omits
/// default values outside a oneof).
fn int64(n: impl Into<i128>) -> Value {
    let n = n.into();
    if n == 0 {
        Value::Null
    } else {
        Value::String(n.to_string())
    }
}

fn opt_f64(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

pub fn any_value(v: &AnyValue) -> Value {
    use any_value::Value as V;
    match &v.value {
        None => json!({}),
        Some(V::StringValue(s)) => json!({ "stringValue": s }),
        Some(V::BoolValue(b)) => json!({ "boolValue": b }),
        Some(V::IntValue(i)) => json!({ "intValue": i.to_string() }),
        Some(V::DoubleValue(d)) => json!({ "doubleValue": d }),
        Some(V::ArrayValue(a)) => json!({ "arrayValue": { "values": list(&a.values, any_value) } }),
        Some(V::KvlistValue(l)) => json!({ "kvlistValue": { "values": attributes(&l.values) } }),
        Some(V::BytesValue(b)) => json!({ "bytesValue": base64(b) }),
        Some(V::StringValueStrindex(i)) => json!({ "stringValueStrindex": i }),
    }
}

fn attributes(kvs: &[KeyValue]) -> Value {
    list(kvs, |kv| {
        obj(vec![
            ("key", string(&kv.key)),
            ("value", kv.value.as_ref().map_or(Value::Null, any_value)),
        ])
    })
}

fn entity_ref(e: &EntityRef) -> Value {
    obj(vec![
        ("schemaUrl", string(&e.schema_url)),
        ("type", string(&e.r#type)),
        ("idKeys", json!(e.id_keys)),
        ("descriptionKeys", json!(e.description_keys)),
    ])
}

fn resource(r: &Option<Resource>) -> Value {
    r.as_ref().map_or(Value::Null, |r| {
        obj(vec![
            ("attributes", attributes(&r.attributes)),
            ("droppedAttributesCount", json!(r.dropped_attributes_count)),
            ("entityRefs", list(&r.entity_refs, entity_ref)),
        ])
    })
}

fn scope(s: &Option<InstrumentationScope>) -> Value {
    s.as_ref().map_or(Value::Null, |s| {
        obj(vec![
            ("name", string(&s.name)),
            ("version", string(&s.version)),
            ("attributes", attributes(&s.attributes)),
            ("droppedAttributesCount", json!(s.dropped_attributes_count)),
        ])
    })
}

fn span(s: &Span) -> Value {
    obj(vec![
        ("traceId", string(hex(&s.trace_id))),
        ("spanId", string(hex(&s.span_id))),
        ("traceState", string(&s.trace_state)),
        ("parentSpanId", string(hex(&s.parent_span_id))),
        ("flags", json!(s.flags)),
        ("name", string(&s.name)),
        ("kind", json!(s.kind)),
        ("startTimeUnixNano", int64(s.start_time_unix_nano)),
        ("endTimeUnixNano", int64(s.end_time_unix_nano)),
        ("attributes", attributes(&s.attributes)),
        ("droppedAttributesCount", json!(s.dropped_attributes_count)),
        (
            "events",
            list(&s.events, |e| {
                obj(vec![
                    ("timeUnixNano", int64(e.time_unix_nano)),
                    ("name", string(&e.name)),
                    ("attributes", attributes(&e.attributes)),
                    ("droppedAttributesCount", json!(e.dropped_attributes_count)),
                ])
            }),
        ),
        ("droppedEventsCount", json!(s.dropped_events_count)),
        (
            "links",
            list(&s.links, |l| {
                obj(vec![
                    ("traceId", string(hex(&l.trace_id))),
                    ("spanId", string(hex(&l.span_id))),
                    ("traceState", string(&l.trace_state)),
                    ("attributes", attributes(&l.attributes)),
                    ("droppedAttributesCount", json!(l.dropped_attributes_count)),
                    ("flags", json!(l.flags)),
                ])
            }),
        ),
        ("droppedLinksCount", json!(s.dropped_links_count)),
        (
            "status",
            s.status.as_ref().map_or(Value::Null, |st| {
                obj(vec![
                    ("message", string(&st.message)),
                    ("code", json!(st.code)),
                ])
            }),
        ),
    ])
}

pub fn traces(req: &ExportTraceServiceRequest) -> Value {
    json!({ "resourceSpans": list(&req.resource_spans, |rs| obj(vec![
        ("resource", resource(&rs.resource)),
        ("schemaUrl", string(&rs.schema_url)),
        ("scopeSpans", list(&rs.scope_spans, |ss| obj(vec![
            ("scope", scope(&ss.scope)),
            ("schemaUrl", string(&ss.schema_url)),
            ("spans", list(&ss.spans, span)),
        ]))),
    ]))})
}

fn exemplar(e: &Exemplar) -> Value {
    let mut fields = vec![
        ("filteredAttributes", attributes(&e.filtered_attributes)),
        ("timeUnixNano", int64(e.time_unix_nano)),
        ("spanId", string(hex(&e.span_id))),
        ("traceId", string(hex(&e.trace_id))),
    ];
    match e.value {
        Some(exemplar::Value::AsDouble(d)) => fields.push(("asDouble", json!(d))),
        Some(exemplar::Value::AsInt(i)) => fields.push(("asInt", string(i))),
        None => {}
    }
    obj(fields)
}

fn number_point(p: &NumberDataPoint) -> Value {
    let mut fields = vec![
        ("attributes", attributes(&p.attributes)),
        ("startTimeUnixNano", int64(p.start_time_unix_nano)),
        ("timeUnixNano", int64(p.time_unix_nano)),
        ("exemplars", list(&p.exemplars, exemplar)),
        ("flags", json!(p.flags)),
    ];
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => fields.push(("asDouble", json!(d))),
        Some(number_data_point::Value::AsInt(i)) => fields.push(("asInt", string(i))),
        None => {}
    }
    obj(fields)
}

fn histogram_point(p: &HistogramDataPoint) -> Value {
    obj(vec![
        ("attributes", attributes(&p.attributes)),
        ("startTimeUnixNano", int64(p.start_time_unix_nano)),
        ("timeUnixNano", int64(p.time_unix_nano)),
        ("count", int64(p.count)),
        ("sum", opt_f64(p.sum)),
        ("bucketCounts", list(&p.bucket_counts, |c| string(c))),
        ("explicitBounds", json!(p.explicit_bounds)),
        ("exemplars", list(&p.exemplars, exemplar)),
        ("flags", json!(p.flags)),
        ("min", opt_f64(p.min)),
        ("max", opt_f64(p.max)),
    ])
}

fn buckets(b: &Option<Buckets>) -> Value {
    b.as_ref().map_or(Value::Null, |b| {
        obj(vec![
            ("offset", json!(b.offset)),
            ("bucketCounts", list(&b.bucket_counts, |c| string(c))),
        ])
    })
}

fn exp_histogram_point(p: &ExponentialHistogramDataPoint) -> Value {
    obj(vec![
        ("attributes", attributes(&p.attributes)),
        ("startTimeUnixNano", int64(p.start_time_unix_nano)),
        ("timeUnixNano", int64(p.time_unix_nano)),
        ("count", int64(p.count)),
        ("sum", opt_f64(p.sum)),
        ("scale", json!(p.scale)),
        ("zeroCount", int64(p.zero_count)),
        ("positive", buckets(&p.positive)),
        ("negative", buckets(&p.negative)),
        ("flags", json!(p.flags)),
        ("exemplars", list(&p.exemplars, exemplar)),
        ("min", opt_f64(p.min)),
        ("max", opt_f64(p.max)),
        ("zeroThreshold", json!(p.zero_threshold)),
    ])
}

fn summary_point(p: &SummaryDataPoint) -> Value {
    obj(vec![
        ("attributes", attributes(&p.attributes)),
        ("startTimeUnixNano", int64(p.start_time_unix_nano)),
        ("timeUnixNano", int64(p.time_unix_nano)),
        ("count", int64(p.count)),
        ("sum", json!(p.sum)),
        (
            "quantileValues",
            list(&p.quantile_values, |q| {
                obj(vec![
                    ("quantile", json!(q.quantile)),
                    ("value", json!(q.value)),
                ])
            }),
        ),
        ("flags", json!(p.flags)),
    ])
}

fn metric(m: &Metric) -> Value {
    let mut fields = vec![
        ("name", string(&m.name)),
        ("description", string(&m.description)),
        ("unit", string(&m.unit)),
        ("metadata", attributes(&m.metadata)),
    ];
    match &m.data {
        Some(metric::Data::Gauge(g)) => fields.push((
            "gauge",
            obj(vec![("dataPoints", list(&g.data_points, number_point))]),
        )),
        Some(metric::Data::Sum(s)) => fields.push((
            "sum",
            obj(vec![
                ("dataPoints", list(&s.data_points, number_point)),
                ("aggregationTemporality", json!(s.aggregation_temporality)),
                ("isMonotonic", json!(s.is_monotonic)),
            ]),
        )),
        Some(metric::Data::Histogram(h)) => fields.push((
            "histogram",
            obj(vec![
                ("dataPoints", list(&h.data_points, histogram_point)),
                ("aggregationTemporality", json!(h.aggregation_temporality)),
            ]),
        )),
        Some(metric::Data::ExponentialHistogram(h)) => fields.push((
            "exponentialHistogram",
            obj(vec![
                ("dataPoints", list(&h.data_points, exp_histogram_point)),
                ("aggregationTemporality", json!(h.aggregation_temporality)),
            ]),
        )),
        Some(metric::Data::Summary(s)) => fields.push((
            "summary",
            obj(vec![("dataPoints", list(&s.data_points, summary_point))]),
        )),
        None => {}
    }
    obj(fields)
}

pub fn metrics(req: &ExportMetricsServiceRequest) -> Value {
    json!({ "resourceMetrics": list(&req.resource_metrics, |rm| obj(vec![
        ("resource", resource(&rm.resource)),
        ("schemaUrl", string(&rm.schema_url)),
        ("scopeMetrics", list(&rm.scope_metrics, |sm| obj(vec![
            ("scope", scope(&sm.scope)),
            ("schemaUrl", string(&sm.schema_url)),
            ("metrics", list(&sm.metrics, metric)),
        ]))),
    ]))})
}

fn log_record(l: &LogRecord) -> Value {
    obj(vec![
        ("timeUnixNano", int64(l.time_unix_nano)),
        ("observedTimeUnixNano", int64(l.observed_time_unix_nano)),
        ("severityNumber", json!(l.severity_number)),
        ("severityText", string(&l.severity_text)),
        ("body", l.body.as_ref().map_or(Value::Null, any_value)),
        ("attributes", attributes(&l.attributes)),
        ("droppedAttributesCount", json!(l.dropped_attributes_count)),
        ("flags", json!(l.flags)),
        ("traceId", string(hex(&l.trace_id))),
        ("spanId", string(hex(&l.span_id))),
        ("eventName", string(&l.event_name)),
    ])
}

pub fn logs(req: &ExportLogsServiceRequest) -> Value {
    json!({ "resourceLogs": list(&req.resource_logs, |rl| obj(vec![
        ("resource", resource(&rl.resource)),
        ("schemaUrl", string(&rl.schema_url)),
        ("scopeLogs", list(&rl.scope_logs, |sl| obj(vec![
            ("scope", scope(&sl.scope)),
            ("schemaUrl", string(&sl.schema_url)),
            ("logRecords", list(&sl.log_records, log_record)),
        ]))),
    ]))})
}

#[test]
fn base64_round_trips() {
    for n in 0..10u8 {
        let bytes: Vec<u8> = (0..n)
            .map(|i| i.wrapping_mul(37).wrapping_add(200))
            .collect();
        assert_eq!(base64_decode(&base64(&bytes)).unwrap(), bytes);
    }
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
}
