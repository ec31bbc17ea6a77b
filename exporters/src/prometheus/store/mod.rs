//! The latest value of every series, kept in memory between scrapes: delta sums and delta
//! histograms are added up into cumulative ones, series not updated for `metric_expiration`
//! are dropped, and a scrape turns what is left into metric families.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use ferrotel_pipeline::pdata::common::KeyValue;
use ferrotel_pipeline::pdata::metrics::{
    exemplar, metric::Data as MetricData, number_data_point, Exemplar as OtlpExemplar,
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    SummaryDataPoint,
};
use ferrotel_pipeline::pdata::metrics::{AggregationTemporality, DataPointFlags};
use ferrotel_pipeline::prometheus::{
    attribute_string, instance, is_identifying, job, label_name, target_info_labels, MetricNamer,
    MetricType, NamingError, EXEMPLAR_SPAN_ID, EXEMPLAR_TRACE_ID, INSTANCE_LABEL, JOB_LABEL,
    METADATA_TYPE_KEY, SCOPE_ATTRIBUTE_PREFIX, SCOPE_NAME_LABEL, SCOPE_SCHEMA_URL_LABEL,
    SCOPE_VERSION_LABEL, TARGET_INFO, TARGET_INFO_HELP,
};
use ferrotel_pipeline::ratelimit::LogLimiter;

use super::exposition::{Bucket, Exemplar, Family, FamilyType, Series, SeriesValue};

/// Label pairs, sorted by name.
type Labels = Vec<(String, String)>;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the series ended (a Prometheus staleness marker).
const NO_RECORDED_VALUE: u32 = DataPointFlags::NoRecordedValueMask as u32;
const DELTA: i32 = AggregationTemporality::Delta as i32;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
/// Exponential histograms with a coarser scale have no Prometheus native equivalent, so
/// upstream refuses them; they are refused here too for the same output.
const MIN_EXPONENTIAL_SCALE: i32 = -4;

/// What the exporter's configuration decides about naming and labels.
pub struct Settings {
    pub namer: MetricNamer,
    pub without_scope_info: bool,
    /// Escaped, added to every series but `target_info`.
    pub const_labels: Vec<(String, String)>,
    pub send_timestamps: bool,
    pub expiration: Duration,
    /// `resource_to_telemetry_conversion`: `Some(exclude_service_attributes)` when enabled.
    pub resource_to_labels: Option<bool>,
    /// See [`target_info_name`].
    pub target_info_name: String,
}

/// `target_info`, prefixed with the namespace escaped as a label name (`my-app` gives
/// `my_app_target_info`, `1app` gives `key_1app_target_info`), as upstream names it.
pub fn target_info_name(namespace: &str) -> String {
    match label_name(namespace) {
        Ok(ns) => format!("{ns}_{TARGET_INFO}"),
        // No namespace, or one that escapes to nothing (upstream ignores it then).
        Err(_) => TARGET_INFO.to_string(),
    }
}

/// The OTLP shape of a series, part of its identity as upstream keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Shape {
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ScopeKey {
    name: String,
    version: String,
    schema_url: String,
    /// Sorted.
    attributes: Vec<(String, String)>,
}

/// What makes two points the same series: the metric's name and shape, its scope, its
/// attributes, and the `job` and `instance` of its resource.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    name: String,
    shape: Shape,
    scope: Arc<ScopeKey>,
    /// Sorted.
    attributes: Vec<(String, String)>,
    job: Option<String>,
    instance: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Double(f64),
}

impl Number {
    fn of(point: &NumberDataPoint) -> Number {
        match point.value {
            Some(number_data_point::Value::AsInt(i)) => Number::Int(i),
            Some(number_data_point::Value::AsDouble(f)) => Number::Double(f),
            None => Number::Int(0),
        }
    }

    fn add(self, other: Number) -> Number {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => match a.checked_add(b) {
                Some(sum) => Number::Int(sum),
                None => Number::Double(a as f64 + b as f64),
            },
            (a, b) => Number::Double(a.as_f64() + b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Double(f) => f,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Data {
    Number {
        value: Number,
        exemplar: Option<Exemplar>,
    },
    Histogram {
        count: u64,
        sum: f64,
        bounds: Vec<f64>,
        counts: Vec<u64>,
        exemplars: Vec<Exemplar>,
    },
    /// Only the count and sum are exposed (as the Go client writes a native histogram in
    /// the text formats), so only they are kept.
    Exponential { count: u64, sum: f64 },
    Summary {
        count: u64,
        sum: f64,
        quantiles: Vec<(f64, f64)>,
    },
}

struct Entry {
    family: String,
    kind: FamilyType,
    /// Sorted by name, `const_labels` included.
    labels: Labels,
    /// The resource's `target_info` labels, when it has a job and an instance.
    target: Option<Arc<Labels>>,
    start: u64,
    time: u64,
    data: Data,
    updated: Instant,
}

struct FamilyMeta {
    kind: FamilyType,
    help: String,
    last_seen: Instant,
}

/// The family a metric goes to.
struct Target {
    name: String,
    kind: FamilyType,
}

/// Attributes of one scope, shared by its metrics.
struct ScopeContext {
    key: Arc<ScopeKey>,
    /// `otel_scope_*` labels, empty with `without_scope_info`.
    labels: Labels,
}

/// Attributes of one resource, shared by its metrics.
struct ResourceContext {
    job: Option<String>,
    instance: Option<String>,
    target: Option<Arc<Labels>>,
    /// Resource attributes added to every point (`resource_to_telemetry_conversion`).
    point_attributes: Vec<(String, String)>,
}

pub struct Store {
    id: String,
    settings: Settings,
    series: HashMap<SeriesKey, Entry>,
    families: HashMap<String, FamilyMeta>,
    dropped_log: LogLimiter,
}

fn kv_strings(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), attribute_string(&kv.value)))
        .collect()
}

fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

fn exemplar_of(e: &OtlpExemplar) -> Exemplar {
    // Only well-formed, non-zero ids: OpenMetrics caps exemplar labels at 128 characters,
    // and one too long would fail the whole scrape.
    let id = |bytes: &[u8], len: usize| {
        (bytes.len() == len && bytes.iter().any(|b| *b != 0)).then(|| hex::encode(bytes))
    };
    let mut labels = Vec::new();
    if let Some(span_id) = id(&e.span_id, 8) {
        labels.push((EXEMPLAR_SPAN_ID.to_string(), span_id));
    }
    if let Some(trace_id) = id(&e.trace_id, 16) {
        labels.push((EXEMPLAR_TRACE_ID.to_string(), trace_id));
    }
    let value = match e.value {
        Some(exemplar::Value::AsDouble(f)) => f,
        Some(exemplar::Value::AsInt(i)) => i as f64,
        None => 0.0,
    };
    Exemplar {
        labels,
        value,
        time_unix_nano: e.time_unix_nano,
    }
}

/// Why a point or metric was not kept.
enum Refusal {
    Naming(NamingError),
    DuplicateLabel(String),
    ReservedLabel(&'static str),
    TypeConflict {
        family: String,
        existing: FamilyType,
        dropped: FamilyType,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Naming(e) => write!(f, "{e}"),
            Refusal::DuplicateLabel(name) => write!(f, "two labels are named \"{name}\""),
            Refusal::ReservedLabel(name) => {
                write!(f, "the label \"{name}\" is reserved for this metric type")
            }
            Refusal::TypeConflict {
                family,
                existing,
                dropped,
            } => write!(
                f,
                "instrument type conflict, using existing type definition. instrument: {family}, existing: {}, dropped: {}",
                existing.dto_name(),
                dropped.dto_name()
            ),
        }
    }
}

impl Store {
    pub fn new(id: &str, settings: Settings) -> Store {
        Store {
            id: id.to_string(),
            settings,
            series: HashMap::new(),
            families: HashMap::new(),
            dropped_log: LogLimiter::default(),
        }
    }

    /// How many series are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.series.len()
    }

    fn refuse(&self, metric: &str, reason: &dyn std::fmt::Display) {
        if let Some(suppressed) = self.dropped_log.check() {
            warn!(exporter = %self.id, metric, reason = %reason, suppressed, "Failed to convert metric; it is not exposed");
        }
    }

    /// Takes in every point of one resource.
    pub fn accumulate(&mut self, rm: &ResourceMetrics, now: Instant) {
        let resource: &[KeyValue] = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let point_attributes = match self.settings.resource_to_labels {
            None => Vec::new(),
            Some(exclude_service) => kv_strings(resource)
                .into_iter()
                .filter(|(k, _)| !(exclude_service && is_identifying(k)))
                .collect(),
        };
        let context = ResourceContext {
            job: job(resource),
            instance: instance(resource),
            target: target_info_labels(resource).map(Arc::new),
            point_attributes,
        };
        for sm in &rm.scope_metrics {
            let (name, version, attributes) = match &sm.scope {
                Some(s) => (s.name.as_str(), s.version.as_str(), s.attributes.as_slice()),
                None => ("", "", &[][..]),
            };
            let scope = match self.scope_context(name, version, &sm.schema_url, attributes) {
                Ok(scope) => scope,
                Err(e) => {
                    self.refuse(name, &e);
                    continue;
                }
            };
            for metric in &sm.metrics {
                self.accumulate_metric(metric, &scope, &context, now);
            }
        }
    }

    fn scope_context(
        &self,
        name: &str,
        version: &str,
        schema_url: &str,
        attributes: &[KeyValue],
    ) -> Result<ScopeContext, Refusal> {
        let pairs = kv_strings(attributes);
        let mut labels = Vec::new();
        if !self.settings.without_scope_info {
            for (k, v) in &pairs {
                let name =
                    label_name(&format!("{SCOPE_ATTRIBUTE_PREFIX}{k}")).map_err(Refusal::Naming)?;
                labels.push((name, v.clone()));
            }
            labels.push((SCOPE_NAME_LABEL.to_string(), name.to_string()));
            labels.push((SCOPE_VERSION_LABEL.to_string(), version.to_string()));
            labels.push((SCOPE_SCHEMA_URL_LABEL.to_string(), schema_url.to_string()));
        }
        Ok(ScopeContext {
            key: Arc::new(ScopeKey {
                name: name.to_string(),
                version: version.to_string(),
                schema_url: schema_url.to_string(),
                attributes: sorted(pairs),
            }),
            labels,
        })
    }

    /// Names the metric's family and registers it; the first type and help seen for a name
    /// stay while the family lives.
    fn family_for(
        &mut self,
        metric: &Metric,
        naming: MetricType,
        kind: FamilyType,
        now: Instant,
    ) -> Result<Target, Refusal> {
        let name = self
            .settings
            .namer
            .build(&metric.name, &metric.unit, naming)
            .map_err(Refusal::Naming)?;
        match self.families.get_mut(&name) {
            Some(meta) if meta.kind != kind => {
                return Err(Refusal::TypeConflict {
                    family: name,
                    existing: meta.kind,
                    dropped: kind,
                })
            }
            Some(meta) => {
                meta.last_seen = now;
                if meta.help != metric.description {
                    debug!(exporter = %self.id, instrument = %name, existing = %meta.help, dropped = %metric.description, "Instrument description conflict, using existing");
                }
            }
            None => {
                self.families.insert(
                    name.clone(),
                    FamilyMeta {
                        kind,
                        help: metric.description.clone(),
                        last_seen: now,
                    },
                );
            }
        }
        Ok(Target { name, kind })
    }

    fn accumulate_metric(
        &mut self,
        metric: &Metric,
        scope: &ScopeContext,
        resource: &ResourceContext,
        now: Instant,
    ) {
        let Some(data) = &metric.data else {
            return;
        };
        let (shape, naming, kind) = match data {
            MetricData::Gauge(_) => {
                let untyped = metric.metadata.iter().any(|kv| {
                    kv.key == METADATA_TYPE_KEY && attribute_string(&kv.value) == "unknown"
                });
                let kind = if untyped {
                    FamilyType::Untyped
                } else {
                    FamilyType::Gauge
                };
                (Shape::Gauge, MetricType::Gauge, kind)
            }
            MetricData::Sum(sum) => {
                if sum.aggregation_temporality != DELTA && sum.aggregation_temporality != CUMULATIVE
                {
                    debug!(exporter = %self.id, metric = %metric.name, "Sum without a temporality dropped");
                    return;
                }
                if sum.aggregation_temporality == DELTA && !sum.is_monotonic {
                    debug!(exporter = %self.id, metric = %metric.name, "Delta non-monotonic sum dropped");
                    return;
                }
                if sum.is_monotonic {
                    (
                        Shape::Sum,
                        MetricType::MonotonicCounter,
                        FamilyType::Counter,
                    )
                } else {
                    (
                        Shape::Sum,
                        MetricType::NonMonotonicCounter,
                        FamilyType::Gauge,
                    )
                }
            }
            MetricData::Histogram(_) => (
                Shape::Histogram,
                MetricType::Histogram,
                FamilyType::Histogram,
            ),
            MetricData::ExponentialHistogram(_) => (
                Shape::ExponentialHistogram,
                MetricType::ExponentialHistogram,
                FamilyType::Histogram,
            ),
            MetricData::Summary(_) => (Shape::Summary, MetricType::Summary, FamilyType::Summary),
        };
        let target = match self.family_for(metric, naming, kind, now) {
            Ok(t) => t,
            Err(e) => {
                self.refuse(&metric.name, &e);
                return;
            }
        };
        let cx = PointContext {
            metric,
            shape,
            target: &target,
            scope,
            resource,
            now,
        };
        match data {
            MetricData::Gauge(g) => {
                for p in &g.data_points {
                    self.number_point(&cx, p, false, false);
                }
            }
            MetricData::Sum(s) => {
                let delta = s.aggregation_temporality == DELTA;
                for p in &s.data_points {
                    self.number_point(&cx, p, delta, s.is_monotonic);
                }
            }
            MetricData::Histogram(h) => {
                for p in &h.data_points {
                    self.histogram_point(&cx, p, h.aggregation_temporality);
                }
            }
            MetricData::ExponentialHistogram(h) => {
                for p in &h.data_points {
                    self.exponential_point(&cx, p, h.aggregation_temporality);
                }
            }
            MetricData::Summary(s) => {
                for p in &s.data_points {
                    self.summary_point(&cx, p);
                }
            }
        }
    }

    /// The point's attributes with the resource's (when converted) taking precedence.
    fn point_attributes(
        resource: &ResourceContext,
        attributes: &[KeyValue],
    ) -> Vec<(String, String)> {
        let mut pairs = kv_strings(attributes);
        for (k, v) in &resource.point_attributes {
            match pairs.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v.clone(),
                None => pairs.push((k.clone(), v.clone())),
            }
        }
        pairs
    }

    fn key(cx: &PointContext<'_>, attributes: Vec<(String, String)>) -> SeriesKey {
        SeriesKey {
            name: cx.metric.name.clone(),
            shape: cx.shape,
            scope: cx.scope.key.clone(),
            attributes: sorted(attributes),
            job: cx.resource.job.clone(),
            instance: cx.resource.instance.clone(),
        }
    }

    /// The labels of a new series, sorted; refused when two share a name.
    fn labels(
        &self,
        cx: &PointContext<'_>,
        attributes: &[(String, String)],
    ) -> Result<Vec<(String, String)>, Refusal> {
        let mut labels = Vec::with_capacity(attributes.len() + cx.scope.labels.len() + 2);
        for (k, v) in attributes {
            labels.push((label_name(k).map_err(Refusal::Naming)?, v.clone()));
        }
        labels.extend(cx.scope.labels.iter().cloned());
        if let Some(job) = &cx.resource.job {
            labels.push((JOB_LABEL.to_string(), job.clone()));
        }
        if let Some(instance) = &cx.resource.instance {
            labels.push((INSTANCE_LABEL.to_string(), instance.clone()));
        }
        labels.extend(self.settings.const_labels.iter().cloned());
        labels.sort();
        if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Refusal::DuplicateLabel(w[0].0.clone()));
        }
        let reserved = match cx.target.kind {
            FamilyType::Histogram => Some("le"),
            FamilyType::Summary => Some("quantile"),
            _ => None,
        };
        if let Some(reserved) = reserved {
            if labels.iter().any(|(n, _)| n == reserved) {
                return Err(Refusal::ReservedLabel(reserved));
            }
        }
        Ok(labels)
    }

    /// Stores a point: `update` gets the series held (if any) and returns the new start,
    /// time and data, or `None` to leave the series as it is.
    fn upsert(
        &mut self,
        cx: &PointContext<'_>,
        attributes: &[KeyValue],
        flags: u32,
        update: impl FnOnce(Option<(u64, u64, &Data)>) -> Option<(u64, u64, Data)>,
    ) {
        let key = Self::key(cx, Self::point_attributes(cx.resource, attributes));
        if flags & NO_RECORDED_VALUE != 0 {
            // The series ended: forget it rather than expose a stale value.
            self.series.remove(&key);
            return;
        }
        if let Some(entry) = self.series.get_mut(&key) {
            if let Some((start, time, data)) = update(Some((entry.start, entry.time, &entry.data)))
            {
                entry.start = start;
                entry.time = time;
                entry.data = data;
                entry.updated = cx.now;
                entry.family.clone_from(&cx.target.name);
                entry.kind = cx.target.kind;
                entry.target.clone_from(&cx.resource.target);
            }
            return;
        }
        let Some((start, time, data)) = update(None) else {
            return;
        };
        let labels = match self.labels(cx, &key.attributes) {
            Ok(labels) => labels,
            Err(e) => {
                self.refuse(&cx.metric.name, &e);
                return;
            }
        };
        self.series.insert(
            key,
            Entry {
                family: cx.target.name.clone(),
                kind: cx.target.kind,
                labels,
                target: cx.resource.target.clone(),
                start,
                time,
                data,
                updated: cx.now,
            },
        );
    }

    fn number_point(
        &mut self,
        cx: &PointContext<'_>,
        p: &NumberDataPoint,
        delta: bool,
        monotonic: bool,
    ) {
        let value = Number::of(p);
        // Exemplars belong to counters; the newest one is shown.
        let exemplar = if monotonic {
            p.exemplars.last().map(exemplar_of)
        } else {
            None
        };
        self.upsert(cx, &p.attributes, p.flags, |held| match held {
            Some((_, held_time, _)) if p.time_unix_nano < held_time => None,
            Some((held_start, held_time, Data::Number { value: held, .. }))
                if delta && p.start_time_unix_nano == held_time =>
            {
                Some((
                    held_start,
                    p.time_unix_nano,
                    Data::Number {
                        value: held.add(value),
                        exemplar,
                    },
                ))
            }
            // New, cumulative, or a delta that does not follow on: a (re)start.
            _ => Some((
                p.start_time_unix_nano,
                p.time_unix_nano,
                Data::Number { value, exemplar },
            )),
        });
    }

    fn histogram_point(&mut self, cx: &PointContext<'_>, p: &HistogramDataPoint, temporality: i32) {
        let fresh = Data::Histogram {
            count: p.count,
            sum: p.sum.unwrap_or(0.0),
            bounds: p.explicit_bounds.clone(),
            counts: p.bucket_counts.clone(),
            exemplars: p.exemplars.iter().map(exemplar_of).collect(),
        };
        let misaligned = Cell::new(false);
        self.upsert(cx, &p.attributes, p.flags, |held| {
            let Some((held_start, held_time, held_data)) = held else {
                return Some((p.start_time_unix_nano, p.time_unix_nano, fresh));
            };
            match histogram_step(
                temporality,
                p.start_time_unix_nano,
                p.time_unix_nano,
                held_time,
            ) {
                Step::Replace => Some((p.start_time_unix_nano, p.time_unix_nano, fresh)),
                Step::Merge => {
                    let merged = merge_histograms(held_data, held_time, fresh, p.time_unix_nano);
                    Some((held_start, p.time_unix_nano.max(held_time), merged))
                }
                Step::Misaligned => {
                    misaligned.set(true);
                    None
                }
                Step::Ignore => None,
            }
        });
        if misaligned.get() {
            self.refuse(&cx.metric.name, &MISALIGNED);
        }
    }

    fn exponential_point(
        &mut self,
        cx: &PointContext<'_>,
        p: &ExponentialHistogramDataPoint,
        temporality: i32,
    ) {
        if p.scale < MIN_EXPONENTIAL_SCALE {
            let reason = format!(
                "cannot convert exponential to native histogram: scale must be >= -4, was {}",
                p.scale
            );
            self.refuse(&cx.metric.name, &reason);
            return;
        }
        let (count, sum) = (p.count, p.sum.unwrap_or(0.0));
        let misaligned = Cell::new(false);
        self.upsert(cx, &p.attributes, p.flags, |held| {
            let fresh = Data::Exponential { count, sum };
            let Some((held_start, held_time, held_data)) = held else {
                return Some((p.start_time_unix_nano, p.time_unix_nano, fresh));
            };
            match histogram_step(
                temporality,
                p.start_time_unix_nano,
                p.time_unix_nano,
                held_time,
            ) {
                Step::Replace => Some((p.start_time_unix_nano, p.time_unix_nano, fresh)),
                Step::Merge => {
                    let merged = match held_data {
                        Data::Exponential {
                            count: held_count,
                            sum: held_sum,
                        } => Data::Exponential {
                            count: held_count.saturating_add(count),
                            sum: held_sum + sum,
                        },
                        _ => fresh,
                    };
                    Some((held_start, p.time_unix_nano.max(held_time), merged))
                }
                Step::Misaligned => {
                    misaligned.set(true);
                    None
                }
                Step::Ignore => None,
            }
        });
        if misaligned.get() {
            self.refuse(&cx.metric.name, &MISALIGNED);
        }
    }

    fn summary_point(&mut self, cx: &PointContext<'_>, p: &SummaryDataPoint) {
        self.upsert(cx, &p.attributes, p.flags, |held| match held {
            Some((_, held_time, _)) if p.time_unix_nano < held_time => None,
            _ => Some((
                p.start_time_unix_nano,
                p.time_unix_nano,
                Data::Summary {
                    count: p.count,
                    sum: p.sum,
                    quantiles: p
                        .quantile_values
                        .iter()
                        .map(|q| (q.quantile, q.value))
                        .collect(),
                },
            )),
        });
    }

    /// Drops the series and families not updated for `metric_expiration`.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.settings.expiration;
        let stale =
            |updated: Instant| now.saturating_duration_since(updated) > ttl || ttl.is_zero();
        let before = self.series.len();
        self.series.retain(|_, e| !stale(e.updated));
        self.families.retain(|_, f| !stale(f.last_seen));
        let expired = before - self.series.len();
        if expired > 0 {
            debug!(exporter = %self.id, expired, "Series expired");
        }
    }

    /// Every family to expose, sorted by name, series sorted by labels; expired series are
    /// dropped first.
    pub fn families(&mut self, now: Instant) -> Vec<Family> {
        self.expire(now);
        let mut grouped: BTreeMap<&str, Vec<(&Entry, Series)>> = BTreeMap::new();
        let mut targets: BTreeMap<(&str, &str), (Instant, &Arc<Labels>)> = BTreeMap::new();
        for (key, entry) in &self.series {
            let series = Series {
                labels: entry.labels.clone(),
                value: series_value(&entry.data),
                timestamp_ms: self
                    .settings
                    .send_timestamps
                    .then(|| i64::try_from(entry.time / 1_000_000).unwrap_or(i64::MAX)),
            };
            grouped
                .entry(entry.family.as_str())
                .or_default()
                .push((entry, series));
            if let (Some(target), Some(job), Some(instance)) =
                (&entry.target, &key.job, &key.instance)
            {
                // One target_info per job and instance, from the resource seen last.
                let slot = targets
                    .entry((job.as_str(), instance.as_str()))
                    .or_insert((entry.updated, target));
                if entry.updated > slot.0 {
                    *slot = (entry.updated, target);
                }
            }
        }
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        for (name, mut members) in grouped {
            let Some(first) = members.first() else {
                continue;
            };
            let meta = self.families.get(name);
            let kind = meta.map_or(first.0.kind, |m| m.kind);
            let help = meta.map(|m| m.help.clone()).unwrap_or_default();
            members.retain(|(e, _)| e.kind == kind);
            // Labels decide the order; of two series with the same labels (attributes that
            // escape alike) the one updated last is shown.
            members.sort_by(|a, b| {
                series_order(&a.1.labels, &b.1.labels).then(b.0.updated.cmp(&a.0.updated))
            });
            members.dedup_by(|later, first| {
                let same = later.1.labels == first.1.labels;
                if same {
                    debug!(exporter = %self.id, family = name, "Two series with the same labels; showing the newer");
                }
                same
            });
            families.insert(
                name.to_string(),
                Family {
                    name: name.to_string(),
                    help,
                    kind,
                    series: members.into_iter().map(|(_, s)| s).collect(),
                },
            );
        }
        self.add_target_info(&mut families, targets.into_values().map(|(_, t)| t));
        drop_suffix_collisions(&self.id, &mut families);
        families.into_values().collect()
    }

    fn add_target_info<'a>(
        &self,
        families: &mut BTreeMap<String, Family>,
        targets: impl Iterator<Item = &'a Arc<Vec<(String, String)>>>,
    ) {
        let series: Vec<Series> = targets
            .map(|labels| Series {
                labels: labels.as_ref().clone(),
                value: SeriesValue::Number {
                    value: 1.0,
                    exemplar: None,
                },
                timestamp_ms: None,
            })
            .collect();
        if series.is_empty() {
            return;
        }
        let name = self.settings.target_info_name.clone();
        match families.get_mut(&name) {
            Some(existing) if existing.kind == FamilyType::Gauge => {
                existing.series.extend(series);
                existing
                    .series
                    .sort_by(|a, b| series_order(&a.labels, &b.labels));
                existing.series.dedup_by(|a, b| a.labels == b.labels);
            }
            Some(_) => {
                debug!(exporter = %self.id, "A metric named {name} of another type hides target_info");
            }
            None => {
                let mut series = series;
                series.sort_by(|a, b| series_order(&a.labels, &b.labels));
                families.insert(
                    name.clone(),
                    Family {
                        name,
                        help: TARGET_INFO_HELP.to_string(),
                        kind: FamilyType::Gauge,
                        series,
                    },
                );
            }
        }
    }
}

struct PointContext<'a> {
    metric: &'a Metric,
    shape: Shape,
    target: &'a Target,
    scope: &'a ScopeContext,
    resource: &'a ResourceContext,
    now: Instant,
}

/// What a histogram point does to the one held.
enum Step {
    Replace,
    /// Add it: a delta point for the interval right after the one held.
    Merge,
    /// A delta point starting before the held one ended: a second writer or a replay,
    /// which cannot be added up.
    Misaligned,
    Ignore,
}

/// A delta point that starts later than the held one ended is a restart; a cumulative point
/// replaces an older one; an unknown temporality changes nothing once a point is held.
fn histogram_step(temporality: i32, start: u64, time: u64, held_time: u64) -> Step {
    match temporality {
        DELTA if start == held_time => Step::Merge,
        DELTA if start > held_time => Step::Replace,
        DELTA => Step::Misaligned,
        CUMULATIVE if time >= held_time => Step::Replace,
        _ => Step::Ignore,
    }
}

const MISALIGNED: &str =
    "Dropped misaligned histogram datapoint: it starts before the interval held ended";

/// The order of series in a family, as the Go client sorts them: fewer labels first, then
/// by label values in name order (names break the remaining ties).
fn series_order(a: &[(String, String)], b: &[(String, String)]) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().map(|(_, v)| v).cmp(b.iter().map(|(_, v)| v)))
        .then_with(|| a.cmp(b))
}

/// Adds a delta histogram to the one held when their bounds match; otherwise the newer of
/// the two wins.
fn merge_histograms(held: &Data, held_time: u64, fresh: Data, fresh_time: u64) -> Data {
    let (
        Data::Histogram {
            count: held_count,
            sum: held_sum,
            bounds: held_bounds,
            counts: held_counts,
            exemplars: held_exemplars,
        },
        Data::Histogram {
            count,
            sum,
            bounds,
            counts,
            exemplars,
        },
    ) = (held, &fresh)
    else {
        return fresh;
    };
    let fresh_is_newer = fresh_time >= held_time;
    let same_bounds = bounds.len() == held_bounds.len()
        && bounds
            .iter()
            .zip(held_bounds)
            .all(|(a, b)| a.to_bits() == b.to_bits());
    if !same_bounds {
        return if fresh_is_newer { fresh } else { held.clone() };
    }
    let (newer_counts, older_counts, newer_exemplars) = if fresh_is_newer {
        (counts, held_counts, exemplars)
    } else {
        (held_counts, counts, held_exemplars)
    };
    // A point may carry fewer counts than bounds + 1; missing ones count as 0.
    let merged_counts = newer_counts
        .iter()
        .enumerate()
        .map(|(i, c)| c.saturating_add(older_counts.get(i).copied().unwrap_or(0)))
        .collect();
    Data::Histogram {
        count: count.saturating_add(*held_count),
        sum: sum + held_sum,
        bounds: bounds.clone(),
        counts: merged_counts,
        exemplars: newer_exemplars.clone(),
    }
}

/// What a held series shows: histogram buckets made cumulative, quantiles in order.
fn series_value(data: &Data) -> SeriesValue {
    match data {
        Data::Number { value, exemplar } => SeriesValue::Number {
            value: value.as_f64(),
            exemplar: exemplar.clone(),
        },
        Data::Histogram {
            count,
            sum,
            bounds,
            counts,
            exemplars,
        } => SeriesValue::Histogram {
            buckets: cumulative_buckets(bounds, counts, *count, exemplars),
            count: *count,
            sum: *sum,
        },
        Data::Exponential { count, sum } => SeriesValue::Histogram {
            buckets: vec![Bucket {
                le: f64::INFINITY,
                count: *count,
                exemplar: None,
            }],
            count: *count,
            sum: *sum,
        },
        Data::Summary {
            count,
            sum,
            quantiles,
        } => {
            // One value per quantile (the last given), in order.
            let mut by_quantile: Vec<(f64, f64)> = Vec::with_capacity(quantiles.len());
            for (q, v) in quantiles {
                match by_quantile
                    .iter_mut()
                    .find(|(k, _)| k.to_bits() == q.to_bits())
                {
                    Some(slot) => slot.1 = *v,
                    None => by_quantile.push((*q, *v)),
                }
            }
            by_quantile.sort_by(|a, b| a.0.total_cmp(&b.0));
            SeriesValue::Summary {
                quantiles: by_quantile,
                count: *count,
                sum: *sum,
            }
        }
    }
}

/// OTLP per-bucket counts as Prometheus cumulative buckets: bounds de-duplicated (the first
/// count of a repeated bound is used) and sorted, then `+Inf` holding the total count.
/// Exemplars go to the first bucket whose bound is at least their value.
fn cumulative_buckets(
    bounds: &[f64],
    counts: &[u64],
    count: u64,
    exemplars: &[Exemplar],
) -> Vec<Bucket> {
    let mut firsts: Vec<(f64, u64)> = Vec::with_capacity(bounds.len());
    for (i, bound) in bounds.iter().enumerate() {
        if bound.is_nan() || firsts.iter().any(|(b, _)| b == bound) {
            continue;
        }
        firsts.push((*bound, counts.get(i).copied().unwrap_or(0)));
    }
    firsts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut running: u64 = 0;
    let mut buckets: Vec<Bucket> = firsts
        .into_iter()
        .map(|(le, c)| {
            running = running.saturating_add(c);
            Bucket {
                le,
                count: running,
                exemplar: None,
            }
        })
        .collect();
    if buckets.last().is_none_or(|b| b.le != f64::INFINITY) {
        buckets.push(Bucket {
            le: f64::INFINITY,
            count,
            exemplar: None,
        });
    }
    for e in exemplars {
        // The `+Inf` bucket is last, so every value finds a bucket (NaN goes there too).
        let index = buckets
            .iter()
            .position(|b| e.value <= b.le)
            .unwrap_or(buckets.len().saturating_sub(1));
        if let Some(bucket) = buckets.get_mut(index) {
            bucket.exemplar = Some(e.clone());
        }
    }
    buckets
}

/// Drops a gauge, counter or untyped family whose name is a sample name of a histogram or
/// summary (`x_count` next to histogram `x`): the exposition would be ambiguous.
fn drop_suffix_collisions(id: &str, families: &mut BTreeMap<String, Family>) {
    let mut taken: Vec<String> = Vec::new();
    for family in families.values() {
        let suffixes: &[&str] = match family.kind {
            FamilyType::Histogram => &["_bucket", "_sum", "_count"],
            FamilyType::Summary => &["_sum", "_count"],
            _ => &[],
        };
        taken.extend(suffixes.iter().map(|s| format!("{}{s}", family.name)));
    }
    for name in taken {
        if families.remove(&name).is_some() {
            debug!(exporter = %id, family = %name, "Family collides with the samples of a histogram or summary; not exposed");
        }
    }
}

#[cfg(test)]
mod tests;
