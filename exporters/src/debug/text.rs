//! Human-readable renderings of telemetry, in the layout of upstream's debug exporter.

use std::fmt::Write;

use ferrotel_pipeline::pdata::common::{any_value::Value as AnyV, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::metrics::{metric::Data, number_data_point, Metric};
use ferrotel_pipeline::pdata::{Logs, Metrics, Traces};

pub fn any_value(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        None => "Empty()".to_string(),
        Some(AnyV::StringValue(s)) => format!("Str({s})"),
        Some(AnyV::BoolValue(b)) => format!("Bool({b})"),
        Some(AnyV::IntValue(i)) => format!("Int({i})"),
        Some(AnyV::DoubleValue(d)) => format!("Double({d})"),
        Some(AnyV::BytesValue(b)) => format!("Bytes({})", hex_lower(b)),
        Some(AnyV::ArrayValue(a)) => format!(
            "Slice([{}])",
            a.values
                .iter()
                .map(|v| plain(&Some(v.clone())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(AnyV::KvlistValue(kv)) => format!(
            "Map({{{}}})",
            kv.values
                .iter()
                .map(|kv| format!("\"{}\":{}", kv.key, plain(&kv.value)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(AnyV::StringValueStrindex(i)) => format!("StrIndex({i})"),
    }
}

/// The value alone, as inside a Slice or Map rendering.
fn plain(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        None => "null".to_string(),
        Some(AnyV::StringValue(s)) => format!("\"{s}\""),
        Some(AnyV::BoolValue(b)) => b.to_string(),
        Some(AnyV::IntValue(i)) => i.to_string(),
        Some(AnyV::DoubleValue(d)) => d.to_string(),
        Some(AnyV::BytesValue(b)) => format!("\"{}\"", hex_lower(b)),
        other => any_value(&other.map(|v| AnyValue {
            value: Some(v.clone()),
        })),
    }
}

pub fn hex_lower(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn attributes(out: &mut String, title: &str, attrs: &[KeyValue]) {
    if attrs.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for kv in attrs {
        let _ = writeln!(out, "     -> {}: {}", kv.key, any_value(&kv.value));
    }
}

fn timestamp(nanos: u64) -> String {
    ferrotel_pipeline::timefmt::UtcTime::from_unix_nanos(nanos).go_string()
}

const SPAN_KINDS: [&str; 6] = [
    "Unspecified",
    "Internal",
    "Server",
    "Client",
    "Producer",
    "Consumer",
];
const STATUS_CODES: [&str; 3] = ["Unset", "Ok", "Error"];

pub fn traces_detailed(t: &Traces) -> String {
    let mut out = String::new();
    for (i, rs) in t.0.resource_spans.iter().enumerate() {
        let _ = writeln!(out, "ResourceSpans #{i}");
        let _ = writeln!(out, "Resource SchemaURL: {}", rs.schema_url);
        if let Some(r) = &rs.resource {
            attributes(&mut out, "Resource attributes", &r.attributes);
        }
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            let _ = writeln!(out, "ScopeSpans #{j}");
            let _ = writeln!(out, "ScopeSpans SchemaURL: {}", ss.schema_url);
            if let Some(s) = &ss.scope {
                let _ = writeln!(out, "InstrumentationScope {} {}", s.name, s.version);
                attributes(&mut out, "InstrumentationScope attributes", &s.attributes);
            }
            for (k, span) in ss.spans.iter().enumerate() {
                let _ = writeln!(out, "Span #{k}");
                let _ = writeln!(out, "    Trace ID       : {}", hex_lower(&span.trace_id));
                let _ = writeln!(
                    out,
                    "    Parent ID      : {}",
                    hex_lower(&span.parent_span_id)
                );
                let _ = writeln!(out, "    ID             : {}", hex_lower(&span.span_id));
                let _ = writeln!(out, "    Name           : {}", span.name);
                let kind = SPAN_KINDS
                    .get(span.kind as usize)
                    .copied()
                    .unwrap_or("Unspecified");
                let _ = writeln!(out, "    Kind           : {kind}");
                let _ = writeln!(
                    out,
                    "    Start time     : {}",
                    timestamp(span.start_time_unix_nano)
                );
                let _ = writeln!(
                    out,
                    "    End time       : {}",
                    timestamp(span.end_time_unix_nano)
                );
                let (code, msg) = span
                    .status
                    .as_ref()
                    .map(|s| {
                        (
                            STATUS_CODES
                                .get(s.code as usize)
                                .copied()
                                .unwrap_or("Unset"),
                            s.message.as_str(),
                        )
                    })
                    .unwrap_or(("Unset", ""));
                let _ = writeln!(out, "    Status code    : {code}");
                let _ = writeln!(out, "    Status message : {msg}");
                attributes(&mut out, "Attributes", &span.attributes);
                if !span.events.is_empty() {
                    let _ = writeln!(out, "Events:");
                    for (e, ev) in span.events.iter().enumerate() {
                        let _ = writeln!(out, "SpanEvent #{e}");
                        let _ = writeln!(out, "     -> Name: {}", ev.name);
                        let _ =
                            writeln!(out, "     -> Timestamp: {}", timestamp(ev.time_unix_nano));
                        let _ = writeln!(
                            out,
                            "     -> DroppedAttributesCount: {}",
                            ev.dropped_attributes_count
                        );
                        for kv in &ev.attributes {
                            let _ = writeln!(out, "     -> {}: {}", kv.key, any_value(&kv.value));
                        }
                    }
                }
                if !span.links.is_empty() {
                    let _ = writeln!(out, "Links:");
                    for (l, link) in span.links.iter().enumerate() {
                        let _ = writeln!(out, "SpanLink #{l}");
                        let _ = writeln!(out, "     -> Trace ID: {}", hex_lower(&link.trace_id));
                        let _ = writeln!(out, "     -> ID: {}", hex_lower(&link.span_id));
                    }
                }
            }
        }
    }
    out
}

pub fn traces_normal(t: &Traces) -> String {
    let mut out = String::new();
    for rs in &t.0.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let _ = write!(
                    out,
                    "{} {} {}",
                    span.name,
                    hex_lower(&span.trace_id),
                    hex_lower(&span.span_id)
                );
                for kv in &span.attributes {
                    let _ = write!(out, " {}={}", kv.key, plain(&kv.value));
                }
                out.push('\n');
            }
        }
    }
    out
}

const SEVERITY: [&str; 25] = [
    "Unspecified",
    "Trace",
    "Trace2",
    "Trace3",
    "Trace4",
    "Debug",
    "Debug2",
    "Debug3",
    "Debug4",
    "Info",
    "Info2",
    "Info3",
    "Info4",
    "Warn",
    "Warn2",
    "Warn3",
    "Warn4",
    "Error",
    "Error2",
    "Error3",
    "Error4",
    "Fatal",
    "Fatal2",
    "Fatal3",
    "Fatal4",
];

pub fn logs_detailed(l: &Logs) -> String {
    let mut out = String::new();
    for (i, rl) in l.0.resource_logs.iter().enumerate() {
        let _ = writeln!(out, "ResourceLog #{i}");
        let _ = writeln!(out, "Resource SchemaURL: {}", rl.schema_url);
        if let Some(r) = &rl.resource {
            attributes(&mut out, "Resource attributes", &r.attributes);
        }
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            let _ = writeln!(out, "ScopeLogs #{j}");
            let _ = writeln!(out, "ScopeLogs SchemaURL: {}", sl.schema_url);
            if let Some(s) = &sl.scope {
                let _ = writeln!(out, "InstrumentationScope {} {}", s.name, s.version);
            }
            for (k, rec) in sl.log_records.iter().enumerate() {
                let _ = writeln!(out, "LogRecord #{k}");
                let _ = writeln!(
                    out,
                    "ObservedTimestamp: {}",
                    timestamp(rec.observed_time_unix_nano)
                );
                let _ = writeln!(out, "Timestamp: {}", timestamp(rec.time_unix_nano));
                let _ = writeln!(out, "SeverityText: {}", rec.severity_text);
                let sev = SEVERITY
                    .get(rec.severity_number as usize)
                    .copied()
                    .unwrap_or("Unspecified");
                let _ = writeln!(out, "SeverityNumber: {sev}({})", rec.severity_number);
                let _ = writeln!(out, "Body: {}", any_value(&rec.body));
                attributes(&mut out, "Attributes", &rec.attributes);
                let _ = writeln!(out, "Trace ID: {}", hex_lower(&rec.trace_id));
                let _ = writeln!(out, "Span ID: {}", hex_lower(&rec.span_id));
                let _ = writeln!(out, "Flags: {}", rec.flags);
            }
        }
    }
    out
}

pub fn logs_normal(l: &Logs) -> String {
    let mut out = String::new();
    for rl in &l.0.resource_logs {
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                out.push_str(plain(&rec.body).trim_matches('"'));
                for kv in &rec.attributes {
                    let _ = write!(out, " {}={}", kv.key, plain(&kv.value));
                }
                out.push('\n');
            }
        }
    }
    out
}

fn metric_type(m: &Metric) -> &'static str {
    match &m.data {
        Some(Data::Gauge(_)) => "Gauge",
        Some(Data::Sum(_)) => "Sum",
        Some(Data::Histogram(_)) => "Histogram",
        Some(Data::ExponentialHistogram(_)) => "ExponentialHistogram",
        Some(Data::Summary(_)) => "Summary",
        None => "Empty",
    }
}

fn number(v: &Option<number_data_point::Value>) -> String {
    match v {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => d.to_string(),
        None => "0".to_string(),
    }
}

pub fn metrics_detailed(m: &Metrics) -> String {
    let mut out = String::new();
    for (i, rm) in m.0.resource_metrics.iter().enumerate() {
        let _ = writeln!(out, "ResourceMetrics #{i}");
        let _ = writeln!(out, "Resource SchemaURL: {}", rm.schema_url);
        if let Some(r) = &rm.resource {
            attributes(&mut out, "Resource attributes", &r.attributes);
        }
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            let _ = writeln!(out, "ScopeMetrics #{j}");
            let _ = writeln!(out, "ScopeMetrics SchemaURL: {}", sm.schema_url);
            if let Some(s) = &sm.scope {
                let _ = writeln!(out, "InstrumentationScope {} {}", s.name, s.version);
            }
            for (k, metric) in sm.metrics.iter().enumerate() {
                let _ = writeln!(out, "Metric #{k}");
                let _ = writeln!(out, "Descriptor:");
                let _ = writeln!(out, "     -> Name: {}", metric.name);
                let _ = writeln!(out, "     -> Description: {}", metric.description);
                let _ = writeln!(out, "     -> Unit: {}", metric.unit);
                let _ = writeln!(out, "     -> DataType: {}", metric_type(metric));
                match &metric.data {
                    Some(Data::Gauge(g)) => number_points(&mut out, &g.data_points),
                    Some(Data::Sum(s)) => {
                        let _ = writeln!(out, "     -> IsMonotonic: {}", s.is_monotonic);
                        let _ = writeln!(
                            out,
                            "     -> AggregationTemporality: {}",
                            temporality(s.aggregation_temporality)
                        );
                        number_points(&mut out, &s.data_points);
                    }
                    Some(Data::Histogram(h)) => {
                        let _ = writeln!(
                            out,
                            "     -> AggregationTemporality: {}",
                            temporality(h.aggregation_temporality)
                        );
                        for (p, dp) in h.data_points.iter().enumerate() {
                            let _ = writeln!(out, "HistogramDataPoints #{p}");
                            attributes(&mut out, "Data point attributes", &dp.attributes);
                            let _ = writeln!(
                                out,
                                "StartTimestamp: {}",
                                timestamp(dp.start_time_unix_nano)
                            );
                            let _ = writeln!(out, "Timestamp: {}", timestamp(dp.time_unix_nano));
                            let _ = writeln!(out, "Count: {}", dp.count);
                            if let Some(sum) = dp.sum {
                                let _ = writeln!(out, "Sum: {sum}");
                            }
                            for (b, bound) in dp.explicit_bounds.iter().enumerate() {
                                let _ = writeln!(out, "ExplicitBounds #{b}: {bound}");
                            }
                            for (b, c) in dp.bucket_counts.iter().enumerate() {
                                let _ = writeln!(out, "Buckets #{b}, Count: {c}");
                            }
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for (p, dp) in h.data_points.iter().enumerate() {
                            let _ = writeln!(out, "ExponentialHistogramDataPoints #{p}");
                            attributes(&mut out, "Data point attributes", &dp.attributes);
                            let _ = writeln!(out, "Count: {}", dp.count);
                            let _ = writeln!(out, "Scale: {}", dp.scale);
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for (p, dp) in s.data_points.iter().enumerate() {
                            let _ = writeln!(out, "SummaryDataPoints #{p}");
                            attributes(&mut out, "Data point attributes", &dp.attributes);
                            let _ = writeln!(out, "Count: {}", dp.count);
                            let _ = writeln!(out, "Sum: {}", dp.sum);
                            for q in &dp.quantile_values {
                                let _ = writeln!(out, "QuantileValue: {}: {}", q.quantile, q.value);
                            }
                        }
                    }
                    None => {}
                }
            }
        }
    }
    out
}

fn temporality(t: i32) -> &'static str {
    match t {
        1 => "Delta",
        2 => "Cumulative",
        _ => "Unspecified",
    }
}

fn number_points(out: &mut String, points: &[ferrotel_pipeline::pdata::metrics::NumberDataPoint]) {
    for (p, dp) in points.iter().enumerate() {
        let _ = writeln!(out, "NumberDataPoints #{p}");
        attributes(out, "Data point attributes", &dp.attributes);
        let _ = writeln!(
            out,
            "StartTimestamp: {}",
            timestamp(dp.start_time_unix_nano)
        );
        let _ = writeln!(out, "Timestamp: {}", timestamp(dp.time_unix_nano));
        let _ = writeln!(out, "Value: {}", number(&dp.value));
    }
}

pub fn metrics_normal(m: &Metrics) -> String {
    let mut out = String::new();
    for rm in &m.0.resource_metrics {
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let _ = writeln!(
                    out,
                    "{}{} {} points={}",
                    metric.name,
                    if metric.unit.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", metric.unit)
                    },
                    metric_type(metric),
                    ferrotel_pipeline::pdata::metric_point_count(metric)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_utc() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00.000000000 +0000 UTC");
        assert_eq!(
            timestamp(1_700_000_000_123_000_000),
            "2023-11-14 22:13:20.123000000 +0000 UTC"
        );
    }
}
