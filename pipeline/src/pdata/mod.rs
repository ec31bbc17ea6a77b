//! Telemetry data as it travels through the agent: the OTLP export requests in their decoded
//! protobuf form, wrapped per signal, or still encoded ([`Encoded`]) where no stage needs
//! to look inside them.

mod encoded;
pub mod json;
mod split;
pub mod wire;

pub use encoded::Encoded;
pub use wire::WireError;

use std::fmt;

pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
pub use opentelemetry_proto::tonic::common::v1 as common;
pub use opentelemetry_proto::tonic::logs::v1 as logs;
pub use opentelemetry_proto::tonic::metrics::v1 as metrics;
pub use opentelemetry_proto::tonic::resource::v1 as resource;
pub use opentelemetry_proto::tonic::trace::v1 as trace;

use opentelemetry_proto::tonic::metrics::v1::metric::Data as MetricData;

/// The three telemetry signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The item word upstream uses in metric names: spans, metric_points, log_records.
    pub fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metric_points",
            Signal::Logs => "log_records",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Spans, grouped by resource and scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traces(pub ExportTraceServiceRequest);

/// Metrics, grouped by resource and scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics(pub ExportMetricsServiceRequest);

/// Log records, grouped by resource and scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logs(pub ExportLogsServiceRequest);

/// Spans under one resource.
pub(crate) fn resource_span_count(rs: &trace::ResourceSpans) -> usize {
    rs.scope_spans.iter().map(|ss| ss.spans.len()).sum()
}

/// Data points under one resource.
pub(crate) fn resource_point_count(rm: &metrics::ResourceMetrics) -> usize {
    rm.scope_metrics
        .iter()
        .flat_map(|sm| &sm.metrics)
        .map(metric_point_count)
        .sum()
}

/// Log records under one resource.
pub(crate) fn resource_record_count(rl: &logs::ResourceLogs) -> usize {
    rl.scope_logs.iter().map(|sl| sl.log_records.len()).sum()
}

impl Traces {
    pub fn span_count(&self) -> usize {
        self.0.resource_spans.iter().map(resource_span_count).sum()
    }

    pub fn merge(&mut self, other: Traces) {
        self.0.resource_spans.extend(other.0.resource_spans);
    }
}

/// Number of data points in one metric, as upstream counts them.
pub fn metric_point_count(metric: &metrics::Metric) -> usize {
    match &metric.data {
        Some(MetricData::Gauge(g)) => g.data_points.len(),
        Some(MetricData::Sum(s)) => s.data_points.len(),
        Some(MetricData::Histogram(h)) => h.data_points.len(),
        Some(MetricData::ExponentialHistogram(h)) => h.data_points.len(),
        Some(MetricData::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

impl Metrics {
    pub fn data_point_count(&self) -> usize {
        self.0
            .resource_metrics
            .iter()
            .map(resource_point_count)
            .sum()
    }

    pub fn metric_count(&self) -> usize {
        self.0
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .map(|sm| sm.metrics.len())
            .sum()
    }

    pub fn merge(&mut self, other: Metrics) {
        self.0.resource_metrics.extend(other.0.resource_metrics);
    }
}

impl Logs {
    pub fn log_record_count(&self) -> usize {
        self.0.resource_logs.iter().map(resource_record_count).sum()
    }

    pub fn merge(&mut self, other: Logs) {
        self.0.resource_logs.extend(other.0.resource_logs);
    }
}

/// One batch of telemetry of any signal: decoded, or as the protobuf bytes it arrived in when
/// nothing downstream needs to look inside it (see [`Encoded`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Traces(Traces),
    Metrics(Metrics),
    Logs(Logs),
    Encoded(Encoded),
}

impl Payload {
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) => Signal::Traces,
            Payload::Metrics(_) => Signal::Metrics,
            Payload::Logs(_) => Signal::Logs,
            Payload::Encoded(e) => e.signal(),
        }
    }

    /// Spans, metric data points or log records: the unit upstream's counters use.
    pub fn item_count(&self) -> usize {
        match self {
            Payload::Traces(t) => t.span_count(),
            Payload::Metrics(m) => m.data_point_count(),
            Payload::Logs(l) => l.log_record_count(),
            Payload::Encoded(e) => e.item_count(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Traces(t) => t.0.resource_spans.is_empty(),
            Payload::Metrics(m) => m.0.resource_metrics.is_empty(),
            Payload::Logs(l) => l.0.resource_logs.is_empty(),
            Payload::Encoded(e) => e.is_empty(),
        }
    }

    /// Encoded protobuf size in bytes.
    pub fn encoded_len(&self) -> usize {
        use prost::Message;
        match self {
            Payload::Traces(t) => t.0.encoded_len(),
            Payload::Metrics(m) => m.0.encoded_len(),
            Payload::Logs(l) => l.0.encoded_len(),
            Payload::Encoded(e) => e.encoded_len(),
        }
    }

    /// Appends `other` (of the same signal); returns it back if the signals differ. When
    /// either side is still encoded the result is too: only pipelines whose every stage
    /// takes encoded data receive it, so the decoded side is the one encoded.
    pub fn merge(&mut self, other: Payload) -> Result<(), Payload> {
        if self.signal() != other.signal() {
            return Err(other);
        }
        match (&mut *self, other) {
            (Payload::Traces(a), Payload::Traces(b)) => a.merge(b),
            (Payload::Metrics(a), Payload::Metrics(b)) => a.merge(b),
            (Payload::Logs(a), Payload::Logs(b)) => a.merge(b),
            (Payload::Encoded(a), Payload::Encoded(b)) => a.merge(b).map_err(Payload::Encoded)?,
            (Payload::Encoded(a), decoded) => a
                .merge(Encoded::from_decoded(&decoded))
                .map_err(Payload::Encoded)?,
            (decoded, Payload::Encoded(b)) => {
                let mut merged = Encoded::from_decoded(decoded);
                merged.merge(b).map_err(Payload::Encoded)?;
                *decoded = Payload::Encoded(merged);
            }
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// The decoded form: borrowed when it is decoded already.
    pub fn decoded(&self) -> Result<std::borrow::Cow<'_, Payload>, WireError> {
        match self {
            Payload::Encoded(e) => e.decode().map(std::borrow::Cow::Owned),
            decoded => Ok(std::borrow::Cow::Borrowed(decoded)),
        }
    }

    /// Turns an encoded batch into its decoded form, for a stage that edits it.
    pub fn decode_in_place(&mut self) -> Result<(), WireError> {
        if let Payload::Encoded(e) = self {
            *self = e.decode()?;
        }
        Ok(())
    }

    /// The OTLP/JSON encoding of the request, one line.
    pub fn to_json(&self) -> Result<Vec<u8>, json::JsonError> {
        match self {
            Payload::Traces(t) => json::try_encode(&t.0, json::TRACES_REQUEST),
            Payload::Metrics(m) => json::try_encode(&m.0, json::METRICS_REQUEST),
            Payload::Logs(l) => json::try_encode(&l.0, json::LOGS_REQUEST),
            Payload::Encoded(e) => match e.decode() {
                Ok(decoded) => decoded.to_json(),
                Err(err) => Err(json::JsonError::Convert(err.to_string())),
            },
        }
    }

    /// The protobuf encoding of the request.
    pub fn to_protobuf(&self) -> Vec<u8> {
        use prost::Message;
        match self {
            Payload::Traces(t) => t.0.encode_to_vec(),
            Payload::Metrics(m) => m.0.encode_to_vec(),
            Payload::Logs(l) => l.0.encode_to_vec(),
            Payload::Encoded(e) => e.to_vec(),
        }
    }

    /// The protobuf encoding of the request as pieces to write one after the other: an
    /// encoded batch's entries as they are (no copy), a decoded batch encoded in one piece.
    pub fn to_protobuf_chunks(&self) -> Vec<bytes::Bytes> {
        match self {
            Payload::Encoded(e) => e.chunks(),
            decoded => vec![decoded.to_protobuf().into()],
        }
    }
}

impl From<ExportTraceServiceRequest> for Payload {
    fn from(r: ExportTraceServiceRequest) -> Self {
        Payload::Traces(Traces(r))
    }
}

impl From<ExportMetricsServiceRequest> for Payload {
    fn from(r: ExportMetricsServiceRequest) -> Self {
        Payload::Metrics(Metrics(r))
    }
}

impl From<ExportLogsServiceRequest> for Payload {
    fn from(r: ExportLogsServiceRequest) -> Self {
        Payload::Logs(Logs(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traces(spans_per_scope: &[usize]) -> Traces {
        let scope_spans = spans_per_scope
            .iter()
            .map(|n| trace::ScopeSpans {
                spans: vec![trace::Span::default(); *n],
                ..Default::default()
            })
            .collect();
        Traces(ExportTraceServiceRequest {
            resource_spans: vec![trace::ResourceSpans {
                scope_spans,
                ..Default::default()
            }],
        })
    }

    #[test]
    fn counts_and_merges() {
        let mut p = Payload::Traces(traces(&[2, 3]));
        assert_eq!(p.item_count(), 5);
        assert!(p.merge(Payload::Traces(traces(&[4]))).is_ok());
        assert_eq!(p.item_count(), 9);
        assert!(p.merge(Payload::Logs(Logs::default())).is_err());
    }

    #[test]
    fn metric_points_count_every_kind() {
        let m = metrics::Metric {
            data: Some(MetricData::Sum(metrics::Sum {
                data_points: vec![metrics::NumberDataPoint::default(); 3],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(metric_point_count(&m), 3);
        assert_eq!(metric_point_count(&metrics::Metric::default()), 0);
    }
}
