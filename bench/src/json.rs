//! OTLP/JSON encoding of the requests the generator builds (the fields it sets): lowerCamelCase
//! names, hex trace and span ids, 64-bit integers as strings, enums as numbers.

use std::fmt::Write;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, HistogramDataPoint, NumberDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

struct W(String);

impl W {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn str(&mut self, s: &str) {
        // serde_json escapes exactly as JSON wants; writing a String cannot fail.
        let quoted = serde_json::to_string(s).unwrap_or_default();
        self.0.push_str(&quoted);
    }

    fn key(&mut self, k: &str) {
        if !self.0.ends_with('{') && !self.0.ends_with('[') {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(k);
        self.0.push_str("\":");
    }

    fn field_str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.str(v);
    }

    fn field_u64(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.0, "\"{v}\"");
    }

    fn field_num(&mut self, k: &str, v: impl std::fmt::Display) {
        self.key(k);
        let _ = write!(self.0, "{v}");
    }

    fn field_hex(&mut self, k: &str, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.key(k);
        self.0.push('"');
        for b in bytes {
            let _ = write!(self.0, "{b:02x}");
        }
        self.0.push('"');
    }

    fn list<T>(&mut self, k: &str, items: &[T], mut f: impl FnMut(&mut W, &T)) {
        self.key(k);
        self.0.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            f(self, item);
        }
        self.0.push(']');
    }

    fn any(&mut self, v: &AnyValue) {
        self.raw("{");
        match &v.value {
            Some(any_value::Value::StringValue(s)) => self.field_str("stringValue", s),
            Some(any_value::Value::IntValue(i)) => {
                self.key("intValue");
                let _ = write!(self.0, "\"{i}\"");
            }
            Some(any_value::Value::DoubleValue(d)) => self.field_num("doubleValue", d),
            Some(any_value::Value::BoolValue(b)) => self.field_num("boolValue", b),
            _ => {}
        }
        self.raw("}");
    }

    fn attributes(&mut self, attrs: &[KeyValue]) {
        self.list("attributes", attrs, |w, kv| {
            w.raw("{");
            w.field_str("key", &kv.key);
            if let Some(v) = &kv.value {
                w.key("value");
                w.any(v);
            }
            w.raw("}");
        });
    }

    fn resource(&mut self, r: &Option<Resource>) {
        if let Some(r) = r {
            self.key("resource");
            self.raw("{");
            self.attributes(&r.attributes);
            self.raw("}");
        }
    }

    fn scope(&mut self, s: &Option<InstrumentationScope>) {
        if let Some(s) = s {
            self.key("scope");
            self.raw("{");
            self.field_str("name", &s.name);
            if !s.version.is_empty() {
                self.field_str("version", &s.version);
            }
            self.raw("}");
        }
    }

    fn schema_url(&mut self, url: &str) {
        if !url.is_empty() {
            self.field_str("schemaUrl", url);
        }
    }
}

pub fn traces(req: &ExportTraceServiceRequest) -> Vec<u8> {
    let mut w = W(String::with_capacity(1 << 16));
    w.raw("{");
    w.list("resourceSpans", &req.resource_spans, |w, rs| {
        w.raw("{");
        w.resource(&rs.resource);
        w.list("scopeSpans", &rs.scope_spans, |w, ss| {
            w.raw("{");
            w.scope(&ss.scope);
            w.list("spans", &ss.spans, |w, sp| {
                w.raw("{");
                w.field_hex("traceId", &sp.trace_id);
                w.field_hex("spanId", &sp.span_id);
                w.field_hex("parentSpanId", &sp.parent_span_id);
                if sp.flags != 0 {
                    w.field_num("flags", sp.flags);
                }
                w.field_str("name", &sp.name);
                w.field_num("kind", sp.kind);
                w.field_u64("startTimeUnixNano", sp.start_time_unix_nano);
                w.field_u64("endTimeUnixNano", sp.end_time_unix_nano);
                w.attributes(&sp.attributes);
                w.list("events", &sp.events, |w, e| {
                    w.raw("{");
                    w.field_u64("timeUnixNano", e.time_unix_nano);
                    w.field_str("name", &e.name);
                    w.attributes(&e.attributes);
                    w.raw("}");
                });
                if let Some(st) = &sp.status {
                    w.key("status");
                    w.raw("{");
                    if !st.message.is_empty() {
                        w.field_str("message", &st.message);
                    }
                    if st.code != 0 {
                        w.field_num("code", st.code);
                    }
                    w.raw("}");
                }
                w.raw("}");
            });
            w.schema_url(&ss.schema_url);
            w.raw("}");
        });
        w.schema_url(&rs.schema_url);
        w.raw("}");
    });
    w.raw("}");
    w.0.into_bytes()
}

pub fn logs(req: &ExportLogsServiceRequest) -> Vec<u8> {
    let mut w = W(String::with_capacity(1 << 16));
    w.raw("{");
    w.list("resourceLogs", &req.resource_logs, |w, rl| {
        w.raw("{");
        w.resource(&rl.resource);
        w.list("scopeLogs", &rl.scope_logs, |w, sl| {
            w.raw("{");
            w.scope(&sl.scope);
            w.list("logRecords", &sl.log_records, |w, lr| {
                w.raw("{");
                w.field_u64("timeUnixNano", lr.time_unix_nano);
                w.field_u64("observedTimeUnixNano", lr.observed_time_unix_nano);
                w.field_num("severityNumber", lr.severity_number);
                w.field_str("severityText", &lr.severity_text);
                if let Some(body) = &lr.body {
                    w.key("body");
                    w.any(body);
                }
                w.attributes(&lr.attributes);
                if lr.flags != 0 {
                    w.field_num("flags", lr.flags);
                }
                w.field_hex("traceId", &lr.trace_id);
                w.field_hex("spanId", &lr.span_id);
                w.raw("}");
            });
            w.schema_url(&sl.schema_url);
            w.raw("}");
        });
        w.schema_url(&rl.schema_url);
        w.raw("}");
    });
    w.raw("}");
    w.0.into_bytes()
}

fn number_point(w: &mut W, p: &NumberDataPoint) {
    w.raw("{");
    w.attributes(&p.attributes);
    w.field_u64("startTimeUnixNano", p.start_time_unix_nano);
    w.field_u64("timeUnixNano", p.time_unix_nano);
    match p.value {
        Some(number_data_point::Value::AsInt(i)) => {
            w.key("asInt");
            let _ = write!(w.0, "\"{i}\"");
        }
        Some(number_data_point::Value::AsDouble(d)) => w.field_num("asDouble", d),
        None => {}
    }
    w.raw("}");
}

fn histogram_point(w: &mut W, p: &HistogramDataPoint) {
    w.raw("{");
    w.attributes(&p.attributes);
    w.field_u64("startTimeUnixNano", p.start_time_unix_nano);
    w.field_u64("timeUnixNano", p.time_unix_nano);
    w.field_u64("count", p.count);
    if let Some(sum) = p.sum {
        w.field_num("sum", sum);
    }
    w.list("bucketCounts", &p.bucket_counts, |w, c| {
        let _ = write!(w.0, "\"{c}\"");
    });
    w.list("explicitBounds", &p.explicit_bounds, |w, b| {
        let _ = write!(w.0, "{b}");
    });
    if let Some(min) = p.min {
        w.field_num("min", min);
    }
    if let Some(max) = p.max {
        w.field_num("max", max);
    }
    w.raw("}");
}

pub fn metrics(req: &ExportMetricsServiceRequest) -> Vec<u8> {
    let mut w = W(String::with_capacity(1 << 16));
    w.raw("{");
    w.list("resourceMetrics", &req.resource_metrics, |w, rm| {
        w.raw("{");
        w.resource(&rm.resource);
        w.list("scopeMetrics", &rm.scope_metrics, |w, sm| {
            w.raw("{");
            w.scope(&sm.scope);
            w.list("metrics", &sm.metrics, |w, m| {
                w.raw("{");
                w.field_str("name", &m.name);
                if !m.description.is_empty() {
                    w.field_str("description", &m.description);
                }
                if !m.unit.is_empty() {
                    w.field_str("unit", &m.unit);
                }
                match &m.data {
                    Some(metric::Data::Gauge(g)) => {
                        w.key("gauge");
                        w.raw("{");
                        w.list("dataPoints", &g.data_points, number_point);
                        w.raw("}");
                    }
                    Some(metric::Data::Sum(s)) => {
                        w.key("sum");
                        w.raw("{");
                        w.list("dataPoints", &s.data_points, number_point);
                        w.field_num("aggregationTemporality", s.aggregation_temporality);
                        if s.is_monotonic {
                            w.field_num("isMonotonic", true);
                        }
                        w.raw("}");
                    }
                    Some(metric::Data::Histogram(h)) => {
                        w.key("histogram");
                        w.raw("{");
                        w.list("dataPoints", &h.data_points, histogram_point);
                        w.field_num("aggregationTemporality", h.aggregation_temporality);
                        w.raw("}");
                    }
                    _ => {}
                }
                w.raw("}");
            });
            w.schema_url(&sm.schema_url);
            w.raw("}");
        });
        w.schema_url(&rm.schema_url);
        w.raw("}");
    });
    w.raw("}");
    w.0.into_bytes()
}
