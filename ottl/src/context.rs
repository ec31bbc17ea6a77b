//! The contexts statements run in (resource, scope, span, spanevent, metric, datapoint, log)
//! and the paths each one reads and writes, following upstream's `pkg/ottl/contexts`.

use std::borrow::Cow;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::logs::LogRecord;
use ferrotel_pipeline::pdata::metrics::{metric, number_data_point, Metric};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::trace::{status, Span};

use crate::value::Value;
use crate::EvalError;

/// A level of the data a statement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContextKind {
    Resource,
    Scope,
    Span,
    SpanEvent,
    Metric,
    DataPoint,
    Log,
}

impl ContextKind {
    pub fn name(self) -> &'static str {
        match self {
            ContextKind::Resource => "resource",
            ContextKind::Scope => "scope",
            ContextKind::Span => "span",
            ContextKind::SpanEvent => "spanevent",
            ContextKind::Metric => "metric",
            ContextKind::DataPoint => "datapoint",
            ContextKind::Log => "log",
        }
    }

    /// The context a path prefix names (`instrumentation_scope` is scope's older name).
    pub fn from_name(name: &str) -> Option<ContextKind> {
        Some(match name {
            "resource" => ContextKind::Resource,
            "scope" | "instrumentation_scope" => ContextKind::Scope,
            "span" => ContextKind::Span,
            "spanevent" => ContextKind::SpanEvent,
            "metric" => ContextKind::Metric,
            "datapoint" => ContextKind::DataPoint,
            "log" => ContextKind::Log,
            _ => return None,
        })
    }

    /// Whether a statement running in `self` may read and write `other`'s fields: its own
    /// level and the levels above it.
    pub fn sees(self, other: ContextKind) -> bool {
        use ContextKind::*;
        match other {
            Resource => true,
            Scope => self != Resource,
            Span => matches!(self, Span | SpanEvent),
            SpanEvent => self == SpanEvent,
            Metric => matches!(self, Metric | DataPoint),
            DataPoint => self == DataPoint,
            Log => self == Log,
        }
    }

    /// How deep the level is: a statement's context is the deepest its paths name.
    pub fn depth(self) -> u8 {
        match self {
            ContextKind::Resource => 0,
            ContextKind::Scope => 1,
            ContextKind::Span | ContextKind::Metric | ContextKind::Log => 2,
            ContextKind::SpanEvent | ContextKind::DataPoint => 3,
        }
    }
}

/// A field a path names, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Cache,
    ResourceAttributes,
    ResourceDroppedAttributesCount,
    ResourceSchemaUrl,
    ScopeName,
    ScopeVersion,
    ScopeAttributes,
    ScopeDroppedAttributesCount,
    ScopeSchemaUrl,
    SpanTraceId,
    SpanTraceIdString,
    SpanId,
    SpanIdString,
    SpanParentSpanId,
    SpanParentSpanIdString,
    SpanTraceState,
    SpanName,
    SpanKind,
    SpanKindString,
    SpanStartTimeUnixNano,
    SpanEndTimeUnixNano,
    SpanStartTime,
    SpanEndTime,
    SpanAttributes,
    SpanDroppedAttributesCount,
    SpanDroppedEventsCount,
    SpanDroppedLinksCount,
    SpanStatusCode,
    SpanStatusMessage,
    SpanFlags,
    EventName,
    EventTimeUnixNano,
    EventTime,
    EventAttributes,
    EventDroppedAttributesCount,
    MetricName,
    MetricDescription,
    MetricUnit,
    MetricType,
    MetricAggregationTemporality,
    MetricIsMonotonic,
    MetricMetadata,
    PointAttributes,
    PointStartTimeUnixNano,
    PointTimeUnixNano,
    PointStartTime,
    PointTime,
    PointValueDouble,
    PointValueInt,
    PointFlags,
    PointCount,
    PointSum,
    PointMin,
    PointMax,
    PointBucketCounts,
    PointExplicitBounds,
    PointScale,
    PointZeroCount,
    LogTimeUnixNano,
    LogObservedTimeUnixNano,
    LogTime,
    LogObservedTime,
    LogSeverityNumber,
    LogSeverityText,
    LogBody,
    LogBodyString,
    LogAttributes,
    LogDroppedAttributesCount,
    LogFlags,
    LogTraceId,
    LogTraceIdString,
    LogSpanId,
    LogSpanIdString,
    LogEventName,
}

/// Resolves the segments after the context prefix (or all of them, in the statement's own
/// context) to a field of `level`.
pub fn resolve_field(level: ContextKind, segments: &[&str]) -> Option<Field> {
    use Field::*;
    let f = match (level, segments) {
        (_, ["cache"]) => Cache,
        (ContextKind::Resource, ["attributes"]) => ResourceAttributes,
        (ContextKind::Resource, ["dropped_attributes_count"]) => ResourceDroppedAttributesCount,
        (ContextKind::Resource, ["schema_url"]) => ResourceSchemaUrl,
        (ContextKind::Scope, ["name"]) => ScopeName,
        (ContextKind::Scope, ["version"]) => ScopeVersion,
        (ContextKind::Scope, ["attributes"]) => ScopeAttributes,
        (ContextKind::Scope, ["dropped_attributes_count"]) => ScopeDroppedAttributesCount,
        (ContextKind::Scope, ["schema_url"]) => ScopeSchemaUrl,
        (ContextKind::Span, ["trace_id"]) => SpanTraceId,
        (ContextKind::Span, ["trace_id", "string"]) => SpanTraceIdString,
        (ContextKind::Span, ["span_id"]) => SpanId,
        (ContextKind::Span, ["span_id", "string"]) => SpanIdString,
        (ContextKind::Span, ["parent_span_id"]) => SpanParentSpanId,
        (ContextKind::Span, ["parent_span_id", "string"]) => SpanParentSpanIdString,
        (ContextKind::Span, ["trace_state"]) => SpanTraceState,
        (ContextKind::Span, ["name"]) => SpanName,
        (ContextKind::Span, ["kind"]) => SpanKind,
        (ContextKind::Span, ["kind", "string"]) => SpanKindString,
        (ContextKind::Span, ["start_time_unix_nano"]) => SpanStartTimeUnixNano,
        (ContextKind::Span, ["end_time_unix_nano"]) => SpanEndTimeUnixNano,
        (ContextKind::Span, ["start_time"]) => SpanStartTime,
        (ContextKind::Span, ["end_time"]) => SpanEndTime,
        (ContextKind::Span, ["attributes"]) => SpanAttributes,
        (ContextKind::Span, ["dropped_attributes_count"]) => SpanDroppedAttributesCount,
        (ContextKind::Span, ["dropped_events_count"]) => SpanDroppedEventsCount,
        (ContextKind::Span, ["dropped_links_count"]) => SpanDroppedLinksCount,
        (ContextKind::Span, ["status", "code"]) => SpanStatusCode,
        (ContextKind::Span, ["status", "message"]) => SpanStatusMessage,
        (ContextKind::Span, ["flags"]) => SpanFlags,
        (ContextKind::SpanEvent, ["name"]) => EventName,
        (ContextKind::SpanEvent, ["time_unix_nano"]) => EventTimeUnixNano,
        (ContextKind::SpanEvent, ["time"]) => EventTime,
        (ContextKind::SpanEvent, ["attributes"]) => EventAttributes,
        (ContextKind::SpanEvent, ["dropped_attributes_count"]) => EventDroppedAttributesCount,
        (ContextKind::Metric, ["name"]) => MetricName,
        (ContextKind::Metric, ["description"]) => MetricDescription,
        (ContextKind::Metric, ["unit"]) => MetricUnit,
        (ContextKind::Metric, ["type"]) => MetricType,
        (ContextKind::Metric, ["aggregation_temporality"]) => MetricAggregationTemporality,
        (ContextKind::Metric, ["is_monotonic"]) => MetricIsMonotonic,
        (ContextKind::Metric, ["metadata"]) => MetricMetadata,
        (ContextKind::DataPoint, ["attributes"]) => PointAttributes,
        (ContextKind::DataPoint, ["start_time_unix_nano"]) => PointStartTimeUnixNano,
        (ContextKind::DataPoint, ["time_unix_nano"]) => PointTimeUnixNano,
        (ContextKind::DataPoint, ["start_time"]) => PointStartTime,
        (ContextKind::DataPoint, ["time"]) => PointTime,
        (ContextKind::DataPoint, ["value_double"]) => PointValueDouble,
        (ContextKind::DataPoint, ["value_int"]) => PointValueInt,
        (ContextKind::DataPoint, ["flags"]) => PointFlags,
        (ContextKind::DataPoint, ["count"]) => PointCount,
        (ContextKind::DataPoint, ["sum"]) => PointSum,
        (ContextKind::DataPoint, ["min"]) => PointMin,
        (ContextKind::DataPoint, ["max"]) => PointMax,
        (ContextKind::DataPoint, ["bucket_counts"]) => PointBucketCounts,
        (ContextKind::DataPoint, ["explicit_bounds"]) => PointExplicitBounds,
        (ContextKind::DataPoint, ["scale"]) => PointScale,
        (ContextKind::DataPoint, ["zero_count"]) => PointZeroCount,
        (ContextKind::Log, ["time_unix_nano"]) => LogTimeUnixNano,
        (ContextKind::Log, ["observed_time_unix_nano"]) => LogObservedTimeUnixNano,
        (ContextKind::Log, ["time"]) => LogTime,
        (ContextKind::Log, ["observed_time"]) => LogObservedTime,
        (ContextKind::Log, ["severity_number"]) => LogSeverityNumber,
        (ContextKind::Log, ["severity_text"]) => LogSeverityText,
        (ContextKind::Log, ["body"]) => LogBody,
        (ContextKind::Log, ["body", "string"]) => LogBodyString,
        (ContextKind::Log, ["attributes"]) => LogAttributes,
        (ContextKind::Log, ["dropped_attributes_count"]) => LogDroppedAttributesCount,
        (ContextKind::Log, ["flags"]) => LogFlags,
        (ContextKind::Log, ["trace_id"]) => LogTraceId,
        (ContextKind::Log, ["trace_id", "string"]) => LogTraceIdString,
        (ContextKind::Log, ["span_id"]) => LogSpanId,
        (ContextKind::Log, ["span_id", "string"]) => LogSpanIdString,
        (ContextKind::Log, ["event_name"]) => LogEventName,
        _ => return None,
    };
    Some(f)
}

/// The fields of a level, for error messages.
pub fn field_names(level: ContextKind) -> &'static str {
    match level {
        ContextKind::Resource => "attributes, dropped_attributes_count, schema_url, cache",
        ContextKind::Scope => "name, version, attributes, dropped_attributes_count, schema_url, cache",
        ContextKind::Span => "trace_id, trace_id.string, span_id, span_id.string, parent_span_id, parent_span_id.string, trace_state, name, kind, kind.string, start_time_unix_nano, end_time_unix_nano, start_time, end_time, attributes, dropped_attributes_count, dropped_events_count, dropped_links_count, status.code, status.message, flags, cache",
        ContextKind::SpanEvent => "name, time_unix_nano, time, attributes, dropped_attributes_count, cache",
        ContextKind::Metric => "name, description, unit, type, aggregation_temporality, is_monotonic, metadata, cache",
        ContextKind::DataPoint => "attributes, start_time_unix_nano, time_unix_nano, start_time, time, value_double, value_int, flags, count, sum, min, max, bucket_counts, explicit_bounds, scale, zero_count, cache",
        ContextKind::Log => "time_unix_nano, observed_time_unix_nano, time, observed_time, severity_number, severity_text, body, body.string, attributes, dropped_attributes_count, flags, trace_id, trace_id.string, span_id, span_id.string, event_name, cache",
    }
}

impl Field {
    /// Fields whose value is a map or may hold one, and so may be indexed by keys.
    pub fn indexable(self) -> bool {
        use Field::*;
        matches!(
            self,
            Cache
                | ResourceAttributes
                | ScopeAttributes
                | SpanAttributes
                | SpanTraceState
                | EventAttributes
                | MetricMetadata
                | PointAttributes
                | PointBucketCounts
                | PointExplicitBounds
                | LogBody
                | LogAttributes
        )
    }
}

/// What a statement runs on: one item with the resource and scope above it.
pub enum Item<'a> {
    None,
    Span(&'a mut Span),
    SpanEvent {
        span: &'a mut Span,
        event: usize,
    },
    Metric(&'a mut Metric),
    DataPoint {
        metric: &'a mut Metric,
        point: usize,
    },
    Log(&'a mut LogRecord),
}

pub struct TransformContext<'a> {
    pub resource: &'a mut Option<Resource>,
    pub resource_schema_url: &'a mut String,
    pub scope: Option<(&'a mut Option<InstrumentationScope>, &'a mut String)>,
    pub item: Item<'a>,
    /// A map each statement group may use for values between statements.
    pub cache: Vec<KeyValue>,
}

/// A key resolved for one evaluation.
#[derive(Debug, Clone)]
pub enum KeyValueRef<'k> {
    Str(Cow<'k, str>),
    Int(i64),
}

fn missing(what: &str) -> EvalError {
    EvalError(format!("{what} is not available in this context"))
}

fn nanos_u64(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn id_hex(id: &[u8]) -> Value<'static> {
    Value::Str(Cow::Owned(hex::encode(id)))
}

fn span_kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "Internal",
        2 => "Server",
        3 => "Client",
        4 => "Producer",
        5 => "Consumer",
        _ => "Unspecified",
    }
}

/// The metric data type numbers of `METRIC_DATA_TYPE_*`.
pub fn metric_type(m: &Metric) -> i64 {
    match &m.data {
        None => 0,
        Some(metric::Data::Gauge(_)) => 1,
        Some(metric::Data::Sum(_)) => 2,
        Some(metric::Data::Histogram(_)) => 3,
        Some(metric::Data::ExponentialHistogram(_)) => 4,
        Some(metric::Data::Summary(_)) => 5,
    }
}

/// One data point of any type, borrowed.
pub enum PointRef<'a> {
    Number(&'a ferrotel_pipeline::pdata::metrics::NumberDataPoint),
    Histogram(&'a ferrotel_pipeline::pdata::metrics::HistogramDataPoint),
    Exponential(&'a ferrotel_pipeline::pdata::metrics::ExponentialHistogramDataPoint),
    Summary(&'a ferrotel_pipeline::pdata::metrics::SummaryDataPoint),
}

pub enum PointMut<'a> {
    Number(&'a mut ferrotel_pipeline::pdata::metrics::NumberDataPoint),
    Histogram(&'a mut ferrotel_pipeline::pdata::metrics::HistogramDataPoint),
    Exponential(&'a mut ferrotel_pipeline::pdata::metrics::ExponentialHistogramDataPoint),
    Summary(&'a mut ferrotel_pipeline::pdata::metrics::SummaryDataPoint),
}

pub fn point_ref(m: &Metric, i: usize) -> Option<PointRef<'_>> {
    Some(match m.data.as_ref()? {
        metric::Data::Gauge(g) => PointRef::Number(g.data_points.get(i)?),
        metric::Data::Sum(s) => PointRef::Number(s.data_points.get(i)?),
        metric::Data::Histogram(h) => PointRef::Histogram(h.data_points.get(i)?),
        metric::Data::ExponentialHistogram(h) => PointRef::Exponential(h.data_points.get(i)?),
        metric::Data::Summary(s) => PointRef::Summary(s.data_points.get(i)?),
    })
}

pub fn point_mut(m: &mut Metric, i: usize) -> Option<PointMut<'_>> {
    Some(match m.data.as_mut()? {
        metric::Data::Gauge(g) => PointMut::Number(g.data_points.get_mut(i)?),
        metric::Data::Sum(s) => PointMut::Number(s.data_points.get_mut(i)?),
        metric::Data::Histogram(h) => PointMut::Histogram(h.data_points.get_mut(i)?),
        metric::Data::ExponentialHistogram(h) => PointMut::Exponential(h.data_points.get_mut(i)?),
        metric::Data::Summary(s) => PointMut::Summary(s.data_points.get_mut(i)?),
    })
}

/// How many points a metric has.
pub fn point_count(m: &Metric) -> usize {
    match &m.data {
        None => 0,
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
    }
}

pub fn point_attributes<'p>(p: &PointRef<'p>) -> &'p [KeyValue] {
    match p {
        PointRef::Number(p) => &p.attributes,
        PointRef::Histogram(p) => &p.attributes,
        PointRef::Exponential(p) => &p.attributes,
        PointRef::Summary(p) => &p.attributes,
    }
}

fn list_of_ints(v: &[u64]) -> Value<'static> {
    Value::List(Cow::Owned(
        v.iter()
            .map(|n| AnyValue {
                value: Some(any_value::Value::IntValue(nanos_u64(*n))),
            })
            .collect(),
    ))
}

fn list_of_floats(v: &[f64]) -> Value<'static> {
    Value::List(Cow::Owned(
        v.iter()
            .map(|n| AnyValue {
                value: Some(any_value::Value::DoubleValue(*n)),
            })
            .collect(),
    ))
}

/// A slot a keyed path writes into: an attribute map or one value.
pub enum Slot<'a> {
    Map(&'a mut Vec<KeyValue>),
    Value(&'a mut AnyValue),
}

impl<'a> TransformContext<'a> {
    fn scope_ref(&self) -> Option<&InstrumentationScope> {
        self.scope.as_ref().and_then(|(s, _)| s.as_ref())
    }

    fn span(&self) -> Result<&Span, EvalError> {
        match &self.item {
            Item::Span(s) => Ok(s),
            Item::SpanEvent { span, .. } => Ok(span),
            _ => Err(missing("span")),
        }
    }

    fn span_mut(&mut self) -> Result<&mut Span, EvalError> {
        match &mut self.item {
            Item::Span(s) => Ok(s),
            Item::SpanEvent { span, .. } => Ok(span),
            _ => Err(missing("span")),
        }
    }

    fn event(&self) -> Result<&ferrotel_pipeline::pdata::trace::span::Event, EvalError> {
        match &self.item {
            Item::SpanEvent { span, event } => {
                span.events.get(*event).ok_or_else(|| missing("spanevent"))
            }
            _ => Err(missing("spanevent")),
        }
    }

    fn event_mut(
        &mut self,
    ) -> Result<&mut ferrotel_pipeline::pdata::trace::span::Event, EvalError> {
        match &mut self.item {
            Item::SpanEvent { span, event } => span
                .events
                .get_mut(*event)
                .ok_or_else(|| missing("spanevent")),
            _ => Err(missing("spanevent")),
        }
    }

    pub fn metric(&self) -> Result<&Metric, EvalError> {
        match &self.item {
            Item::Metric(m) => Ok(m),
            Item::DataPoint { metric, .. } => Ok(metric),
            _ => Err(missing("metric")),
        }
    }

    pub fn metric_mut(&mut self) -> Result<&mut Metric, EvalError> {
        match &mut self.item {
            Item::Metric(m) => Ok(m),
            Item::DataPoint { metric, .. } => Ok(metric),
            _ => Err(missing("metric")),
        }
    }

    fn point(&self) -> Result<PointRef<'_>, EvalError> {
        match &self.item {
            Item::DataPoint { metric, point } => {
                point_ref(metric, *point).ok_or_else(|| missing("datapoint"))
            }
            _ => Err(missing("datapoint")),
        }
    }

    fn point_mut(&mut self) -> Result<PointMut<'_>, EvalError> {
        match &mut self.item {
            Item::DataPoint { metric, point } => {
                point_mut(metric, *point).ok_or_else(|| missing("datapoint"))
            }
            _ => Err(missing("datapoint")),
        }
    }

    fn log(&self) -> Result<&LogRecord, EvalError> {
        match &self.item {
            Item::Log(l) => Ok(l),
            _ => Err(missing("log")),
        }
    }

    fn log_mut(&mut self) -> Result<&mut LogRecord, EvalError> {
        match &mut self.item {
            Item::Log(l) => Ok(l),
            _ => Err(missing("log")),
        }
    }

    /// Reads a field (before keys).
    pub fn get(&self, field: Field) -> Result<Value<'_>, EvalError> {
        use Field::*;
        let empty: &[KeyValue] = &[];
        Ok(match field {
            Cache => Value::Map(Cow::Borrowed(&self.cache)),
            ResourceAttributes => Value::Map(Cow::Borrowed(
                self.resource.as_ref().map_or(empty, |r| &r.attributes),
            )),
            ResourceDroppedAttributesCount => Value::Int(
                self.resource
                    .as_ref()
                    .map_or(0, |r| i64::from(r.dropped_attributes_count)),
            ),
            ResourceSchemaUrl => Value::Str(Cow::Borrowed(self.resource_schema_url)),
            ScopeName => Value::Str(Cow::Borrowed(self.scope_ref().map_or("", |s| &s.name))),
            ScopeVersion => Value::Str(Cow::Borrowed(self.scope_ref().map_or("", |s| &s.version))),
            ScopeAttributes => Value::Map(Cow::Borrowed(
                self.scope_ref().map_or(empty, |s| &s.attributes),
            )),
            ScopeDroppedAttributesCount => Value::Int(
                self.scope_ref()
                    .map_or(0, |s| i64::from(s.dropped_attributes_count)),
            ),
            ScopeSchemaUrl => Value::Str(Cow::Borrowed(
                self.scope.as_ref().map_or("", |(_, u)| u.as_str()),
            )),
            SpanTraceId => Value::Bytes(Cow::Borrowed(&self.span()?.trace_id)),
            SpanTraceIdString => id_hex(&self.span()?.trace_id),
            SpanId => Value::Bytes(Cow::Borrowed(&self.span()?.span_id)),
            SpanIdString => id_hex(&self.span()?.span_id),
            SpanParentSpanId => Value::Bytes(Cow::Borrowed(&self.span()?.parent_span_id)),
            SpanParentSpanIdString => id_hex(&self.span()?.parent_span_id),
            SpanTraceState => Value::Str(Cow::Borrowed(&self.span()?.trace_state)),
            SpanName => Value::Str(Cow::Borrowed(&self.span()?.name)),
            SpanKind => Value::Int(i64::from(self.span()?.kind)),
            SpanKindString => Value::Str(Cow::Borrowed(span_kind_name(self.span()?.kind))),
            SpanStartTimeUnixNano => Value::Int(nanos_u64(self.span()?.start_time_unix_nano)),
            SpanEndTimeUnixNano => Value::Int(nanos_u64(self.span()?.end_time_unix_nano)),
            SpanStartTime => Value::Time(nanos_u64(self.span()?.start_time_unix_nano)),
            SpanEndTime => Value::Time(nanos_u64(self.span()?.end_time_unix_nano)),
            SpanAttributes => Value::Map(Cow::Borrowed(&self.span()?.attributes)),
            SpanDroppedAttributesCount => {
                Value::Int(i64::from(self.span()?.dropped_attributes_count))
            }
            SpanDroppedEventsCount => Value::Int(i64::from(self.span()?.dropped_events_count)),
            SpanDroppedLinksCount => Value::Int(i64::from(self.span()?.dropped_links_count)),
            SpanStatusCode => Value::Int(i64::from(
                self.span()?.status.as_ref().map_or(0, |s| s.code),
            )),
            SpanStatusMessage => Value::Str(Cow::Borrowed(
                self.span()?.status.as_ref().map_or("", |s| &s.message),
            )),
            SpanFlags => Value::Int(i64::from(self.span()?.flags)),
            EventName => Value::Str(Cow::Borrowed(&self.event()?.name)),
            EventTimeUnixNano => Value::Int(nanos_u64(self.event()?.time_unix_nano)),
            EventTime => Value::Time(nanos_u64(self.event()?.time_unix_nano)),
            EventAttributes => Value::Map(Cow::Borrowed(&self.event()?.attributes)),
            EventDroppedAttributesCount => {
                Value::Int(i64::from(self.event()?.dropped_attributes_count))
            }
            MetricName => Value::Str(Cow::Borrowed(&self.metric()?.name)),
            MetricDescription => Value::Str(Cow::Borrowed(&self.metric()?.description)),
            MetricUnit => Value::Str(Cow::Borrowed(&self.metric()?.unit)),
            MetricType => Value::Int(metric_type(self.metric()?)),
            MetricAggregationTemporality => Value::Int(match &self.metric()?.data {
                Some(metric::Data::Sum(s)) => i64::from(s.aggregation_temporality),
                Some(metric::Data::Histogram(h)) => i64::from(h.aggregation_temporality),
                Some(metric::Data::ExponentialHistogram(h)) => i64::from(h.aggregation_temporality),
                _ => 0,
            }),
            MetricIsMonotonic => Value::Bool(matches!(
                &self.metric()?.data,
                Some(metric::Data::Sum(s)) if s.is_monotonic
            )),
            MetricMetadata => Value::Map(Cow::Borrowed(&self.metric()?.metadata)),
            PointAttributes => Value::Map(Cow::Borrowed(point_attributes(&self.point()?))),
            PointStartTimeUnixNano | PointStartTime | PointTimeUnixNano | PointTime => {
                let p = self.point()?;
                let (start, time) = match p {
                    PointRef::Number(p) => (p.start_time_unix_nano, p.time_unix_nano),
                    PointRef::Histogram(p) => (p.start_time_unix_nano, p.time_unix_nano),
                    PointRef::Exponential(p) => (p.start_time_unix_nano, p.time_unix_nano),
                    PointRef::Summary(p) => (p.start_time_unix_nano, p.time_unix_nano),
                };
                match field {
                    PointStartTimeUnixNano => Value::Int(nanos_u64(start)),
                    PointStartTime => Value::Time(nanos_u64(start)),
                    PointTimeUnixNano => Value::Int(nanos_u64(time)),
                    _ => Value::Time(nanos_u64(time)),
                }
            }
            PointValueDouble => match self.point()? {
                PointRef::Number(p) => match p.value {
                    Some(number_data_point::Value::AsDouble(d)) => Value::Float(d),
                    _ => Value::Float(0.0),
                },
                _ => Value::Nil,
            },
            PointValueInt => match self.point()? {
                PointRef::Number(p) => match p.value {
                    Some(number_data_point::Value::AsInt(i)) => Value::Int(i),
                    _ => Value::Int(0),
                },
                _ => Value::Nil,
            },
            PointFlags => Value::Int(i64::from(match self.point()? {
                PointRef::Number(p) => p.flags,
                PointRef::Histogram(p) => p.flags,
                PointRef::Exponential(p) => p.flags,
                PointRef::Summary(p) => p.flags,
            })),
            PointCount => match self.point()? {
                PointRef::Histogram(p) => Value::Int(nanos_u64(p.count)),
                PointRef::Exponential(p) => Value::Int(nanos_u64(p.count)),
                PointRef::Summary(p) => Value::Int(nanos_u64(p.count)),
                PointRef::Number(_) => Value::Nil,
            },
            PointSum => match self.point()? {
                PointRef::Histogram(p) => p.sum.map_or(Value::Nil, Value::Float),
                PointRef::Exponential(p) => p.sum.map_or(Value::Nil, Value::Float),
                PointRef::Summary(p) => Value::Float(p.sum),
                PointRef::Number(_) => Value::Nil,
            },
            PointMin => match self.point()? {
                PointRef::Histogram(p) => p.min.map_or(Value::Nil, Value::Float),
                PointRef::Exponential(p) => p.min.map_or(Value::Nil, Value::Float),
                _ => Value::Nil,
            },
            PointMax => match self.point()? {
                PointRef::Histogram(p) => p.max.map_or(Value::Nil, Value::Float),
                PointRef::Exponential(p) => p.max.map_or(Value::Nil, Value::Float),
                _ => Value::Nil,
            },
            PointBucketCounts => match self.point()? {
                PointRef::Histogram(p) => list_of_ints(&p.bucket_counts),
                _ => Value::Nil,
            },
            PointExplicitBounds => match self.point()? {
                PointRef::Histogram(p) => list_of_floats(&p.explicit_bounds),
                _ => Value::Nil,
            },
            PointScale => match self.point()? {
                PointRef::Exponential(p) => Value::Int(i64::from(p.scale)),
                _ => Value::Nil,
            },
            PointZeroCount => match self.point()? {
                PointRef::Exponential(p) => Value::Int(nanos_u64(p.zero_count)),
                _ => Value::Nil,
            },
            LogTimeUnixNano => Value::Int(nanos_u64(self.log()?.time_unix_nano)),
            LogObservedTimeUnixNano => Value::Int(nanos_u64(self.log()?.observed_time_unix_nano)),
            LogTime => Value::Time(nanos_u64(self.log()?.time_unix_nano)),
            LogObservedTime => Value::Time(nanos_u64(self.log()?.observed_time_unix_nano)),
            LogSeverityNumber => Value::Int(i64::from(self.log()?.severity_number)),
            LogSeverityText => Value::Str(Cow::Borrowed(&self.log()?.severity_text)),
            LogBody => Value::from_any_opt(self.log()?.body.as_ref()),
            LogBodyString => match Value::from_any_opt(self.log()?.body.as_ref()) {
                Value::Str(s) => Value::Str(s),
                Value::Nil => Value::Str(Cow::Borrowed("")),
                other => Value::Str(Cow::Owned(other.to_text().unwrap_or_default())),
            },
            LogAttributes => Value::Map(Cow::Borrowed(&self.log()?.attributes)),
            LogDroppedAttributesCount => {
                Value::Int(i64::from(self.log()?.dropped_attributes_count))
            }
            LogFlags => Value::Int(i64::from(self.log()?.flags)),
            LogTraceId => Value::Bytes(Cow::Borrowed(&self.log()?.trace_id)),
            LogTraceIdString => id_hex(&self.log()?.trace_id),
            LogSpanId => Value::Bytes(Cow::Borrowed(&self.log()?.span_id)),
            LogSpanIdString => id_hex(&self.log()?.span_id),
            LogEventName => Value::Str(Cow::Borrowed(&self.log()?.event_name)),
        })
    }

    /// The map or value a keyed path starts from, for writing.
    pub fn slot_mut(&mut self, field: Field) -> Result<Slot<'_>, EvalError> {
        use Field::*;
        Ok(match field {
            Cache => Slot::Map(&mut self.cache),
            ResourceAttributes => Slot::Map(
                &mut self
                    .resource
                    .get_or_insert_with(Resource::default)
                    .attributes,
            ),
            ScopeAttributes => match &mut self.scope {
                Some((scope, _)) => {
                    Slot::Map(&mut scope.get_or_insert_with(Default::default).attributes)
                }
                None => return Err(missing("scope")),
            },
            SpanAttributes => Slot::Map(&mut self.span_mut()?.attributes),
            EventAttributes => Slot::Map(&mut self.event_mut()?.attributes),
            MetricMetadata => Slot::Map(&mut self.metric_mut()?.metadata),
            PointAttributes => Slot::Map(match self.point_mut()? {
                PointMut::Number(p) => &mut p.attributes,
                PointMut::Histogram(p) => &mut p.attributes,
                PointMut::Exponential(p) => &mut p.attributes,
                PointMut::Summary(p) => &mut p.attributes,
            }),
            LogAttributes => Slot::Map(&mut self.log_mut()?.attributes),
            LogBody => Slot::Value(self.log_mut()?.body.get_or_insert_with(AnyValue::default)),
            other => {
                return Err(EvalError(format!(
                    "{other:?} cannot be indexed or edited as a map"
                )))
            }
        })
    }

    /// Writes a field (without keys).
    pub fn set(&mut self, field: Field, value: Value) -> Result<(), EvalError> {
        use Field::*;
        // Takes the value: the string it holds is moved in, not copied again.
        fn want_str(v: Value, what: &str) -> Result<String, EvalError> {
            match v {
                Value::Str(s) => Ok(s.into_owned()),
                other => Err(EvalError(format!(
                    "{what} must be a string, got {}",
                    other.type_name()
                ))),
            }
        }
        fn want_int(v: &Value, what: &str) -> Result<i64, EvalError> {
            match v {
                Value::Int(i) => Ok(*i),
                other => Err(EvalError(format!(
                    "{what} must be an int, got {}",
                    other.type_name()
                ))),
            }
        }
        fn want_u32(v: &Value, what: &str) -> Result<u32, EvalError> {
            let i = want_int(v, what)?;
            u32::try_from(i).map_err(|_| EvalError(format!("{what} out of range: {i}")))
        }
        fn want_nanos(v: &Value, what: &str) -> Result<u64, EvalError> {
            let i = match v {
                Value::Int(i) | Value::Time(i) => *i,
                other => {
                    return Err(EvalError(format!(
                        "{what} must be an int or a time, got {}",
                        other.type_name()
                    )))
                }
            };
            u64::try_from(i).map_err(|_| EvalError(format!("{what} out of range: {i}")))
        }
        fn want_float(v: &Value, what: &str) -> Result<f64, EvalError> {
            match v {
                Value::Float(f) => Ok(*f),
                Value::Int(i) => Ok(*i as f64),
                other => Err(EvalError(format!(
                    "{what} must be a float, got {}",
                    other.type_name()
                ))),
            }
        }
        fn want_id(v: &Value, len: usize, what: &str) -> Result<Vec<u8>, EvalError> {
            let bytes = match v {
                Value::Bytes(b) => b.to_vec(),
                Value::Str(s) => hex::decode(s.as_ref())
                    .map_err(|e| EvalError(format!("{what}: invalid hex: {e}")))?,
                other => {
                    return Err(EvalError(format!(
                        "{what} must be bytes, got {}",
                        other.type_name()
                    )))
                }
            };
            if bytes.len() != len {
                return Err(EvalError(format!(
                    "{what} must be {len} bytes, got {}",
                    bytes.len()
                )));
            }
            Ok(bytes)
        }
        fn want_map(v: Value) -> Result<Vec<KeyValue>, EvalError> {
            match v {
                Value::Map(m) => Ok(m.into_owned()),
                other => Err(EvalError(format!(
                    "attributes must be set to a map, got {}",
                    other.type_name()
                ))),
            }
        }
        match field {
            Cache => self.cache = want_map(value)?,
            ResourceAttributes => {
                self.resource
                    .get_or_insert_with(Resource::default)
                    .attributes = want_map(value)?
            }
            ResourceDroppedAttributesCount => {
                self.resource
                    .get_or_insert_with(Resource::default)
                    .dropped_attributes_count = want_u32(&value, "dropped_attributes_count")?
            }
            ResourceSchemaUrl => *self.resource_schema_url = want_str(value, "schema_url")?,
            ScopeName
            | ScopeVersion
            | ScopeAttributes
            | ScopeDroppedAttributesCount
            | ScopeSchemaUrl => {
                let Some((scope, url)) = &mut self.scope else {
                    return Err(missing("scope"));
                };
                if field == ScopeSchemaUrl {
                    **url = want_str(value, "schema_url")?;
                    return Ok(());
                }
                let scope = scope.get_or_insert_with(Default::default);
                match field {
                    ScopeName => scope.name = want_str(value, "name")?,
                    ScopeVersion => scope.version = want_str(value, "version")?,
                    ScopeAttributes => scope.attributes = want_map(value)?,
                    _ => {
                        scope.dropped_attributes_count =
                            want_u32(&value, "dropped_attributes_count")?
                    }
                }
            }
            SpanTraceId => self.span_mut()?.trace_id = want_id(&value, 16, "trace_id")?,
            SpanTraceIdString => {
                self.span_mut()?.trace_id = want_id(&value, 16, "trace_id.string")?
            }
            SpanId => self.span_mut()?.span_id = want_id(&value, 8, "span_id")?,
            SpanIdString => self.span_mut()?.span_id = want_id(&value, 8, "span_id.string")?,
            SpanParentSpanId => {
                self.span_mut()?.parent_span_id = want_id(&value, 8, "parent_span_id")?
            }
            SpanParentSpanIdString => {
                self.span_mut()?.parent_span_id = want_id(&value, 8, "parent_span_id.string")?
            }
            SpanTraceState => self.span_mut()?.trace_state = want_str(value, "trace_state")?,
            SpanName => self.span_mut()?.name = want_str(value, "name")?,
            SpanKind => {
                let k = want_int(&value, "kind")?;
                self.span_mut()?.kind = i32::try_from(k)
                    .ok()
                    .filter(|k| (0..=5).contains(k))
                    .ok_or_else(|| EvalError(format!("kind out of range: {k}")))?;
            }
            SpanKindString => {
                let s = want_str(value, "kind.string")?;
                let k = match s.as_str() {
                    "Unspecified" => 0,
                    "Internal" => 1,
                    "Server" => 2,
                    "Client" => 3,
                    "Producer" => 4,
                    "Consumer" => 5,
                    other => return Err(EvalError(format!("unknown span kind \"{other}\""))),
                };
                self.span_mut()?.kind = k;
            }
            SpanStartTimeUnixNano | SpanStartTime => {
                self.span_mut()?.start_time_unix_nano = want_nanos(&value, "start_time")?
            }
            SpanEndTimeUnixNano | SpanEndTime => {
                self.span_mut()?.end_time_unix_nano = want_nanos(&value, "end_time")?
            }
            SpanAttributes => self.span_mut()?.attributes = want_map(value)?,
            SpanDroppedAttributesCount => {
                self.span_mut()?.dropped_attributes_count =
                    want_u32(&value, "dropped_attributes_count")?
            }
            SpanDroppedEventsCount => {
                self.span_mut()?.dropped_events_count = want_u32(&value, "dropped_events_count")?
            }
            SpanDroppedLinksCount => {
                self.span_mut()?.dropped_links_count = want_u32(&value, "dropped_links_count")?
            }
            SpanStatusCode => {
                let c = want_int(&value, "status.code")?;
                let code = i32::try_from(c)
                    .ok()
                    .filter(|c| (0..=2).contains(c))
                    .ok_or_else(|| EvalError(format!("status.code out of range: {c}")))?;
                self.span_mut()?
                    .status
                    .get_or_insert_with(status_default)
                    .code = code;
            }
            SpanStatusMessage => {
                let m = want_str(value, "status.message")?;
                self.span_mut()?
                    .status
                    .get_or_insert_with(status_default)
                    .message = m;
            }
            SpanFlags => self.span_mut()?.flags = want_u32(&value, "flags")?,
            EventName => self.event_mut()?.name = want_str(value, "name")?,
            EventTimeUnixNano | EventTime => {
                self.event_mut()?.time_unix_nano = want_nanos(&value, "time")?
            }
            EventAttributes => self.event_mut()?.attributes = want_map(value)?,
            EventDroppedAttributesCount => {
                self.event_mut()?.dropped_attributes_count =
                    want_u32(&value, "dropped_attributes_count")?
            }
            MetricName => self.metric_mut()?.name = want_str(value, "name")?,
            MetricDescription => self.metric_mut()?.description = want_str(value, "description")?,
            MetricUnit => self.metric_mut()?.unit = want_str(value, "unit")?,
            MetricType => {
                return Err(EvalError(
                    "metric.type cannot be set; use convert_sum_to_gauge or convert_gauge_to_sum"
                        .to_string(),
                ))
            }
            MetricAggregationTemporality => {
                let t = want_int(&value, "aggregation_temporality")?;
                let t = i32::try_from(t)
                    .ok()
                    .filter(|t| (0..=2).contains(t))
                    .ok_or_else(|| {
                        EvalError(format!("aggregation_temporality out of range: {t}"))
                    })?;
                match &mut self.metric_mut()?.data {
                    Some(metric::Data::Sum(s)) => s.aggregation_temporality = t,
                    Some(metric::Data::Histogram(h)) => h.aggregation_temporality = t,
                    Some(metric::Data::ExponentialHistogram(h)) => h.aggregation_temporality = t,
                    _ => {}
                }
            }
            MetricIsMonotonic => {
                let b = match value {
                    Value::Bool(b) => b,
                    other => {
                        return Err(EvalError(format!(
                            "is_monotonic must be a bool, got {}",
                            other.type_name()
                        )))
                    }
                };
                if let Some(metric::Data::Sum(s)) = &mut self.metric_mut()?.data {
                    s.is_monotonic = b;
                }
            }
            MetricMetadata => self.metric_mut()?.metadata = want_map(value)?,
            PointAttributes => {
                let m = want_map(value)?;
                match self.point_mut()? {
                    PointMut::Number(p) => p.attributes = m,
                    PointMut::Histogram(p) => p.attributes = m,
                    PointMut::Exponential(p) => p.attributes = m,
                    PointMut::Summary(p) => p.attributes = m,
                }
            }
            PointStartTimeUnixNano | PointStartTime => {
                let t = want_nanos(&value, "start_time")?;
                match self.point_mut()? {
                    PointMut::Number(p) => p.start_time_unix_nano = t,
                    PointMut::Histogram(p) => p.start_time_unix_nano = t,
                    PointMut::Exponential(p) => p.start_time_unix_nano = t,
                    PointMut::Summary(p) => p.start_time_unix_nano = t,
                }
            }
            PointTimeUnixNano | PointTime => {
                let t = want_nanos(&value, "time")?;
                match self.point_mut()? {
                    PointMut::Number(p) => p.time_unix_nano = t,
                    PointMut::Histogram(p) => p.time_unix_nano = t,
                    PointMut::Exponential(p) => p.time_unix_nano = t,
                    PointMut::Summary(p) => p.time_unix_nano = t,
                }
            }
            PointValueDouble => {
                let f = want_float(&value, "value_double")?;
                if let PointMut::Number(p) = self.point_mut()? {
                    p.value = Some(number_data_point::Value::AsDouble(f));
                }
            }
            PointValueInt => {
                let i = want_int(&value, "value_int")?;
                if let PointMut::Number(p) = self.point_mut()? {
                    p.value = Some(number_data_point::Value::AsInt(i));
                }
            }
            PointFlags => {
                let f = want_u32(&value, "flags")?;
                match self.point_mut()? {
                    PointMut::Number(p) => p.flags = f,
                    PointMut::Histogram(p) => p.flags = f,
                    PointMut::Exponential(p) => p.flags = f,
                    PointMut::Summary(p) => p.flags = f,
                }
            }
            PointCount => {
                let c = want_nanos(&value, "count")?;
                match self.point_mut()? {
                    PointMut::Histogram(p) => p.count = c,
                    PointMut::Exponential(p) => p.count = c,
                    PointMut::Summary(p) => p.count = c,
                    PointMut::Number(_) => {}
                }
            }
            PointSum | PointMin | PointMax => {
                let f = want_float(&value, "sum")?;
                match (self.point_mut()?, field) {
                    (PointMut::Histogram(p), PointSum) => p.sum = Some(f),
                    (PointMut::Histogram(p), PointMin) => p.min = Some(f),
                    (PointMut::Histogram(p), _) => p.max = Some(f),
                    (PointMut::Exponential(p), PointSum) => p.sum = Some(f),
                    (PointMut::Exponential(p), PointMin) => p.min = Some(f),
                    (PointMut::Exponential(p), _) => p.max = Some(f),
                    (PointMut::Summary(p), PointSum) => p.sum = f,
                    _ => {}
                }
            }
            PointBucketCounts | PointExplicitBounds => {
                let Value::List(items) = value else {
                    return Err(EvalError("a list is needed".to_string()));
                };
                if let PointMut::Histogram(p) = self.point_mut()? {
                    if field == PointBucketCounts {
                        let mut out = Vec::with_capacity(items.len());
                        for v in items.iter() {
                            out.push(want_nanos(&Value::from_any(v), "bucket_counts")?);
                        }
                        p.bucket_counts = out;
                    } else {
                        let mut out = Vec::with_capacity(items.len());
                        for v in items.iter() {
                            out.push(want_float(&Value::from_any(v), "explicit_bounds")?);
                        }
                        p.explicit_bounds = out;
                    }
                }
            }
            PointScale => {
                let s = want_int(&value, "scale")?;
                if let PointMut::Exponential(p) = self.point_mut()? {
                    p.scale = i32::try_from(s)
                        .map_err(|_| EvalError(format!("scale out of range: {s}")))?;
                }
            }
            PointZeroCount => {
                let z = want_nanos(&value, "zero_count")?;
                if let PointMut::Exponential(p) = self.point_mut()? {
                    p.zero_count = z;
                }
            }
            LogTimeUnixNano | LogTime => {
                self.log_mut()?.time_unix_nano = want_nanos(&value, "time")?
            }
            LogObservedTimeUnixNano | LogObservedTime => {
                self.log_mut()?.observed_time_unix_nano = want_nanos(&value, "observed_time")?
            }
            LogSeverityNumber => {
                let n = want_int(&value, "severity_number")?;
                self.log_mut()?.severity_number = i32::try_from(n)
                    .ok()
                    .filter(|n| (0..=24).contains(n))
                    .ok_or_else(|| EvalError(format!("severity_number out of range: {n}")))?;
            }
            LogSeverityText => self.log_mut()?.severity_text = want_str(value, "severity_text")?,
            LogBody => self.log_mut()?.body = value.into_any(),
            LogBodyString => {
                let s = want_str(value, "body.string")?;
                self.log_mut()?.body = Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                });
            }
            LogAttributes => self.log_mut()?.attributes = want_map(value)?,
            LogDroppedAttributesCount => {
                self.log_mut()?.dropped_attributes_count =
                    want_u32(&value, "dropped_attributes_count")?
            }
            LogFlags => self.log_mut()?.flags = want_u32(&value, "flags")?,
            LogTraceId => self.log_mut()?.trace_id = want_id(&value, 16, "trace_id")?,
            LogTraceIdString => self.log_mut()?.trace_id = want_id(&value, 16, "trace_id.string")?,
            LogSpanId => self.log_mut()?.span_id = want_id(&value, 8, "span_id")?,
            LogSpanIdString => self.log_mut()?.span_id = want_id(&value, 8, "span_id.string")?,
            LogEventName => self.log_mut()?.event_name = want_str(value, "event_name")?,
        }
        Ok(())
    }
}

fn status_default() -> ferrotel_pipeline::pdata::trace::Status {
    ferrotel_pipeline::pdata::trace::Status {
        message: String::new(),
        code: status::StatusCode::Unset as i32,
    }
}

/// Indexes a value read from a path or a converter.
pub fn index<'v>(value: Value<'v>, key: &KeyValueRef) -> Result<Value<'v>, EvalError> {
    match (value, key) {
        (Value::Nil, _) => Ok(Value::Nil),
        (Value::Map(Cow::Borrowed(m)), KeyValueRef::Str(k)) => Ok(Value::from_any_opt(
            m.iter()
                .find(|kv| &kv.key == k)
                .and_then(|kv| kv.value.as_ref()),
        )),
        (Value::Map(Cow::Owned(m)), KeyValueRef::Str(k)) => Ok(m
            .into_iter()
            .find(|kv| &kv.key == k)
            .and_then(|kv| kv.value)
            .map_or(Value::Nil, |v| Value::from_any(&v).into_owned())),
        (Value::List(l), KeyValueRef::Int(i)) => {
            let idx = usize::try_from(*i)
                .ok()
                .filter(|i| *i < l.len())
                .ok_or_else(|| {
                    EvalError(format!("index {i} out of bounds (length {})", l.len()))
                })?;
            Ok(match l {
                Cow::Borrowed(l) => Value::from_any(&l[idx]),
                Cow::Owned(l) => Value::from_any(&l[idx]).into_owned(),
            })
        }
        (v, KeyValueRef::Str(k)) => Err(EvalError(format!(
            "cannot index a {} with the key \"{k}\"",
            v.type_name()
        ))),
        (v, KeyValueRef::Int(i)) => Err(EvalError(format!(
            "cannot index a {} with the index {i}",
            v.type_name()
        ))),
    }
}

/// Finds (creating maps on the way when `create`) the value a list of keys names below a
/// slot. `None` when a key is missing and `create` is off.
pub fn navigate<'s>(
    slot: Slot<'s>,
    keys: &[KeyValueRef],
    create: bool,
) -> Result<Option<&'s mut AnyValue>, EvalError> {
    let mut current: &'s mut AnyValue = match slot {
        Slot::Value(v) => v,
        Slot::Map(m) => {
            let Some(first) = keys.first() else {
                return Err(EvalError("a key is needed".to_string()));
            };
            let KeyValueRef::Str(k) = first else {
                return Err(EvalError("a map is indexed by a string key".to_string()));
            };
            match map_entry(m, k, create) {
                Some(v) => return navigate(Slot::Value(v), &keys[1..], create),
                None => return Ok(None),
            }
        }
    };
    for key in keys {
        let found_type = Value::from_any(current).type_name();
        current = match key {
            KeyValueRef::Str(k) => {
                if current.value.is_none() && create {
                    current.value = Some(any_value::Value::KvlistValue(Default::default()));
                }
                match &mut current.value {
                    Some(any_value::Value::KvlistValue(kv)) => {
                        match map_entry(&mut kv.values, k, create) {
                            Some(v) => v,
                            None => return Ok(None),
                        }
                    }
                    None => return Ok(None),
                    _ => {
                        return Err(EvalError(format!(
                            "cannot index a {found_type} with the key \"{k}\""
                        )))
                    }
                }
            }
            KeyValueRef::Int(i) => match &mut current.value {
                Some(any_value::Value::ArrayValue(a)) => {
                    let len = a.values.len();
                    match usize::try_from(*i).ok().and_then(|i| a.values.get_mut(i)) {
                        Some(v) => v,
                        None => {
                            return Err(EvalError(format!(
                                "index {i} out of bounds (length {len})"
                            )))
                        }
                    }
                }
                _ => {
                    return Err(EvalError(format!(
                        "cannot index a {found_type} with the index {i}"
                    )))
                }
            },
        };
    }
    Ok(Some(current))
}

fn map_entry<'m>(m: &'m mut Vec<KeyValue>, key: &str, create: bool) -> Option<&'m mut AnyValue> {
    let idx = match m.iter().position(|kv| kv.key == key) {
        Some(i) => i,
        None if create => {
            m.push(KeyValue {
                key: key.to_string(),
                value: Some(AnyValue::default()),
                ..Default::default()
            });
            m.len() - 1
        }
        None => return None,
    };
    Some(m[idx].value.get_or_insert_with(AnyValue::default))
}

/// Looks a key up in an attribute map.
pub fn map_get<'m>(m: &'m [KeyValue], key: &str) -> Option<&'m AnyValue> {
    m.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}
