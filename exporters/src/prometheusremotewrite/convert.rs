//! OTLP metrics to remote write series, as the Collector's translator converts them: one
//! series per label set, labels sorted by name, samples in timestamp order. Sums, histograms
//! and exponential histograms must be cumulative; what cannot be converted is counted.

use std::collections::{BTreeMap, HashMap};

use ferrotel_pipeline::pdata::common::{AnyValue, KeyValue};
use ferrotel_pipeline::pdata::metric_point_count;
use ferrotel_pipeline::pdata::metrics::{
    exemplar, metric::Data, number_data_point, Exemplar as OtlpExemplar, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, SummaryDataPoint,
};
use ferrotel_pipeline::pdata::metrics::{AggregationTemporality, DataPointFlags};
use ferrotel_pipeline::prometheus::{
    attribute_labels, attribute_string, instance, is_identifying, job, label_name, MetricNamer,
    MetricType, EXEMPLAR_SPAN_ID, EXEMPLAR_TRACE_ID, INSTANCE_LABEL, JOB_LABEL, TARGET_INFO,
};

use super::proto::{Exemplar, Label, Sample, TimeSeries};

pub use ferrotel_pipeline::prometheus::{decimal, STALE_NAN_BITS};
/// The series ended.
const NO_RECORDED_VALUE: u32 = DataPointFlags::NoRecordedValueMask as u32;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const METRIC_NAME_LABEL: &str = "__name__";
const BUCKET_LABEL: &str = "le";
const QUANTILE_LABEL: &str = "quantile";
/// OpenMetrics' limit on an exemplar's label names and values together, in characters.
const MAX_EXEMPLAR_RUNES: usize = 128;
/// Distinct reasons kept per batch for the message; the count covers them all.
const MAX_PROBLEMS: usize = 5;

/// What the configuration decides about names and labels.
pub struct Settings {
    pub namer: MetricNamer,
    /// Escaped, sorted; added to a series that has no label of that name.
    pub external_labels: Vec<(String, String)>,
    pub target_info: bool,
    /// `resource_to_telemetry_conversion`: `Some(exclude_service_attributes)` when enabled.
    pub resource_to_labels: Option<bool>,
}

/// A series and how many OTLP data points it stands for, to count what a refused request
/// loses (a histogram or summary point counts once, on its `_count` series).
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub series: TimeSeries,
    pub points: u64,
}

/// A batch converted.
#[derive(Debug, Default)]
pub struct Conversion {
    pub series: Vec<Converted>,
    /// Data points that could not be converted.
    pub dropped_points: u64,
    /// Why, one entry per distinct reason (at most a few).
    pub problems: Vec<String>,
}

/// Labels being built, sorted by name.
type LabelSet = BTreeMap<String, String>;

/// The resource a point belongs to.
struct ResourceScope<'a> {
    attributes: &'a [KeyValue],
    job: Option<String>,
    instance: Option<String>,
}

#[derive(Default)]
struct Pending {
    samples: Vec<Sample>,
    exemplars: Vec<Exemplar>,
    points: u64,
}

struct Converter<'a> {
    settings: &'a Settings,
    /// Series by their labels (`__name__` included, empty values left out).
    index: HashMap<Vec<(String, String)>, usize>,
    series: Vec<Pending>,
    dropped_points: u64,
    problems: Vec<String>,
}

/// Converts every resource of a batch.
pub fn convert(resources: &[ResourceMetrics], settings: &Settings) -> Conversion {
    let mut converter = Converter {
        settings,
        index: HashMap::new(),
        series: Vec::new(),
        dropped_points: 0,
        problems: Vec::new(),
    };
    for rm in resources {
        converter.resource(rm);
    }
    converter.finish()
}

impl Conversion {
    /// `3 data points dropped: <reason>; <reason>`, or "" when nothing was dropped.
    pub fn drop_message(&self) -> String {
        if self.dropped_points == 0 {
            return String::new();
        }
        format!(
            "{} data points dropped: {}",
            self.dropped_points,
            self.problems.join("; ")
        )
    }
}

fn millis(unix_nano: u64) -> i64 {
    i64::try_from(unix_nano / 1_000_000).unwrap_or(i64::MAX)
}

fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

fn exemplar_of(e: &OtlpExemplar) -> Exemplar {
    let mut labels = Vec::new();
    let mut runes = 0;
    for (name, id) in [
        (EXEMPLAR_TRACE_ID, &e.trace_id),
        (EXEMPLAR_SPAN_ID, &e.span_id),
    ] {
        if id.iter().any(|b| *b != 0) {
            let value = hex::encode(id);
            runes += name.len() + value.len();
            labels.push(Label::new(name, value));
        }
    }
    let attributes: Vec<Label> = e
        .filtered_attributes
        .iter()
        .filter_map(|kv| {
            let name = label_name(&kv.key).ok()?;
            Some(Label::new(name, attribute_string(&kv.value)))
        })
        .collect();
    let attribute_runes: usize = attributes
        .iter()
        .map(|l| l.name.chars().count() + l.value.chars().count())
        .sum();
    // Attributes only while the whole set stays within the limit, as upstream decides.
    if runes + attribute_runes <= MAX_EXEMPLAR_RUNES {
        labels.extend(attributes);
    }
    labels.sort();
    let value = match e.value {
        Some(exemplar::Value::AsDouble(f)) => f,
        Some(exemplar::Value::AsInt(i)) => i as f64,
        None => 0.0,
    };
    Exemplar {
        labels,
        value,
        timestamp: millis(e.time_unix_nano),
    }
}

/// The newest point time of a metric (0 when it has none).
fn latest_time(metric: &Metric) -> u64 {
    let times: Box<dyn Iterator<Item = u64> + '_> = match &metric.data {
        Some(Data::Gauge(g)) => Box::new(g.data_points.iter().map(|p| p.time_unix_nano)),
        Some(Data::Sum(s)) => Box::new(s.data_points.iter().map(|p| p.time_unix_nano)),
        Some(Data::Histogram(h)) => Box::new(h.data_points.iter().map(|p| p.time_unix_nano)),
        Some(Data::ExponentialHistogram(h)) => {
            Box::new(h.data_points.iter().map(|p| p.time_unix_nano))
        }
        Some(Data::Summary(s)) => Box::new(s.data_points.iter().map(|p| p.time_unix_nano)),
        None => Box::new(std::iter::empty()),
    };
    times.max().unwrap_or(0)
}

/// Samples sorted by time; of two with one timestamp the later one in the batch stays
/// (a receiver refuses a second, different value for a timestamp).
fn in_time_order(mut samples: Vec<Sample>) -> Vec<Sample> {
    samples.sort_by_key(|s| s.timestamp);
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for sample in samples {
        match out.last_mut() {
            Some(last) if last.timestamp == sample.timestamp => *last = sample,
            _ => out.push(sample),
        }
    }
    out
}

impl Converter<'_> {
    fn drop_points(&mut self, points: usize, reason: String) {
        self.dropped_points += points as u64;
        if self.problems.len() < MAX_PROBLEMS && !self.problems.contains(&reason) {
            self.problems.push(reason);
        }
    }

    fn resource(&mut self, rm: &ResourceMetrics) {
        let attributes: &[KeyValue] = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let resource = ResourceScope {
            attributes,
            job: job(attributes),
            instance: instance(attributes),
        };
        let mut latest = 0;
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                // Every metric counts for target_info's time, converted or not, as upstream.
                latest = latest.max(latest_time(metric));
                self.metric(&resource, metric);
            }
        }
        self.target_info(&resource, latest);
    }

    /// `job`, `instance`, then the external labels the series does not have.
    fn identify(&self, labels: &mut LabelSet, resource: &ResourceScope<'_>) {
        if let Some(job) = &resource.job {
            labels.insert(JOB_LABEL.to_string(), job.clone());
        }
        if let Some(instance) = &resource.instance {
            labels.insert(INSTANCE_LABEL.to_string(), instance.clone());
        }
        for (name, value) in &self.settings.external_labels {
            // An empty value is no label, so the external one takes its place.
            if labels.get(name).is_none_or(String::is_empty) {
                labels.insert(name.clone(), value.clone());
            }
        }
    }

    /// The labels every series of a point shares: its attributes (with the resource's when
    /// converted, which win), escaped, values of colliding names joined with `;` in key
    /// order; then `job`, `instance` and the external labels.
    fn base_labels(&self, resource: &ResourceScope<'_>, attributes: &[KeyValue]) -> LabelSet {
        let mut pairs: Vec<(&str, &Option<AnyValue>)> = attributes
            .iter()
            .map(|kv| (kv.key.as_str(), &kv.value))
            .collect();
        if let Some(exclude_service) = self.settings.resource_to_labels {
            for kv in resource.attributes {
                if exclude_service && is_identifying(&kv.key) {
                    continue;
                }
                match pairs.iter_mut().find(|(key, _)| *key == kv.key) {
                    Some(slot) => slot.1 = &kv.value,
                    None => pairs.push((kv.key.as_str(), &kv.value)),
                }
            }
        }
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let mut labels = attribute_labels(pairs.into_iter().map(|(k, v)| (k, attribute_string(v))));
        self.identify(&mut labels, resource);
        labels
    }

    /// Adds a sample to the series `name` with the `base` labels (plus `extra`); returns the
    /// series' index.
    fn add(
        &mut self,
        base: &LabelSet,
        name: &str,
        extra: Option<(&str, String)>,
        sample: Sample,
        points: u64,
    ) -> usize {
        let mut labels = base.clone();
        if let Some((k, v)) = extra {
            labels.insert(k.to_string(), v);
        }
        labels.insert(METRIC_NAME_LABEL.to_string(), name.to_string());
        // The protocol has no empty label values: an empty label is an absent one.
        let key: Vec<(String, String)> =
            labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let index = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.series.len();
                self.series.push(Pending::default());
                self.index.insert(key, i);
                i
            }
        };
        if let Some(series) = self.series.get_mut(index) {
            series.samples.push(sample);
            series.points += points;
        }
        index
    }

    fn metric(&mut self, resource: &ResourceScope<'_>, metric: &Metric) {
        let Some(data) = &metric.data else {
            return;
        };
        let points = metric_point_count(metric);
        let temporality = || {
            format!(
                "invalid temporality and type combination for metric \"{}\"",
                metric.name
            )
        };
        let kind = match data {
            Data::Gauge(_) => MetricType::Gauge,
            Data::Sum(s) if s.aggregation_temporality != CUMULATIVE => {
                return self.drop_points(points, temporality());
            }
            Data::Sum(s) if s.is_monotonic => MetricType::MonotonicCounter,
            Data::Sum(_) => MetricType::NonMonotonicCounter,
            Data::Histogram(h) if h.aggregation_temporality != CUMULATIVE => {
                return self.drop_points(points, temporality());
            }
            Data::Histogram(_) => MetricType::Histogram,
            Data::ExponentialHistogram(h) if h.aggregation_temporality != CUMULATIVE => {
                return self.drop_points(points, temporality());
            }
            Data::ExponentialHistogram(_) => {
                return self.drop_points(
                    points,
                    format!(
                        "exponential histogram \"{}\" not sent: native histograms are not supported yet",
                        metric.name
                    ),
                );
            }
            Data::Summary(_) => MetricType::Summary,
        };
        if points == 0 {
            return;
        }
        let name = match self.settings.namer.build(&metric.name, &metric.unit, kind) {
            Ok(name) => name,
            Err(e) => return self.drop_points(points, e.to_string()),
        };
        match data {
            Data::Gauge(g) => {
                for p in &g.data_points {
                    self.number_point(resource, &name, p, false);
                }
            }
            Data::Sum(s) => {
                for p in &s.data_points {
                    self.number_point(resource, &name, p, true);
                }
            }
            Data::Histogram(h) => {
                for p in &h.data_points {
                    self.histogram_point(resource, &name, p);
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    self.summary_point(resource, &name, p);
                }
            }
            Data::ExponentialHistogram(_) => {}
        }
    }

    fn number_point(
        &mut self,
        resource: &ResourceScope<'_>,
        name: &str,
        p: &NumberDataPoint,
        with_exemplars: bool,
    ) {
        let base = self.base_labels(resource, &p.attributes);
        let value = if p.flags & NO_RECORDED_VALUE != 0 {
            stale_nan()
        } else {
            match p.value {
                Some(number_data_point::Value::AsDouble(f)) => f,
                Some(number_data_point::Value::AsInt(i)) => i as f64,
                None => 0.0,
            }
        };
        let sample = Sample {
            value,
            timestamp: millis(p.time_unix_nano),
        };
        let index = self.add(&base, name, None, sample, 1);
        if with_exemplars {
            if let Some(series) = self.series.get_mut(index) {
                series.exemplars.extend(p.exemplars.iter().map(exemplar_of));
            }
        }
    }

    fn histogram_point(
        &mut self,
        resource: &ResourceScope<'_>,
        name: &str,
        p: &HistogramDataPoint,
    ) {
        let base = self.base_labels(resource, &p.attributes);
        let timestamp = millis(p.time_unix_nano);
        let stale = p.flags & NO_RECORDED_VALUE != 0;
        let sample = |value: f64| Sample {
            value: if stale { stale_nan() } else { value },
            timestamp,
        };
        if let Some(sum) = p.sum {
            self.add(&base, &format!("{name}_sum"), None, sample(sum), 0);
        }
        self.add(
            &base,
            &format!("{name}_count"),
            None,
            sample(p.count as f64),
            1,
        );
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        let mut buckets: Vec<(f64, usize)> = Vec::with_capacity(p.explicit_bounds.len() + 1);
        // Counts beyond the bounds are left out; `+Inf` is the total count.
        for (bound, count) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
            cumulative = cumulative.saturating_add(*count);
            let index = self.add(
                &base,
                &bucket,
                Some((BUCKET_LABEL, decimal(*bound))),
                sample(cumulative as f64),
                0,
            );
            buckets.push((*bound, index));
        }
        let index = self.add(
            &base,
            &bucket,
            Some((BUCKET_LABEL, decimal(f64::INFINITY))),
            sample(p.count as f64),
            0,
        );
        buckets.push((f64::INFINITY, index));
        if p.exemplars.is_empty() {
            return;
        }
        // Each exemplar goes to the first bucket that holds its value.
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        for e in &p.exemplars {
            let exemplar = exemplar_of(e);
            let Some((_, index)) = buckets.iter().find(|(bound, _)| exemplar.value <= *bound)
            else {
                continue;
            };
            if let Some(series) = self.series.get_mut(*index) {
                series.exemplars.push(exemplar);
            }
        }
    }

    fn summary_point(&mut self, resource: &ResourceScope<'_>, name: &str, p: &SummaryDataPoint) {
        let base = self.base_labels(resource, &p.attributes);
        let timestamp = millis(p.time_unix_nano);
        let stale = p.flags & NO_RECORDED_VALUE != 0;
        let sample = |value: f64| Sample {
            value: if stale { stale_nan() } else { value },
            timestamp,
        };
        self.add(&base, &format!("{name}_sum"), None, sample(p.sum), 0);
        self.add(
            &base,
            &format!("{name}_count"),
            None,
            sample(p.count as f64),
            1,
        );
        for q in &p.quantile_values {
            self.add(
                &base,
                name,
                Some((QUANTILE_LABEL, decimal(q.quantile))),
                sample(q.value),
                0,
            );
        }
    }

    /// One `target_info` sample per resource, at its newest point's time, labelled with its
    /// attributes other than the identifying ones; none when it has no other attribute or
    /// neither a `job` nor an `instance`.
    fn target_info(&mut self, resource: &ResourceScope<'_>, latest: u64) {
        if !self.settings.target_info || latest == 0 {
            return;
        }
        let mut others: Vec<&KeyValue> = resource
            .attributes
            .iter()
            .filter(|kv| !is_identifying(&kv.key))
            .collect();
        if others.is_empty() {
            return;
        }
        others.sort_by(|a, b| a.key.cmp(&b.key));
        let mut labels = attribute_labels(
            others
                .into_iter()
                .map(|kv| (kv.key.as_str(), attribute_string(&kv.value))),
        );
        self.identify(&mut labels, resource);
        let identified = [JOB_LABEL, INSTANCE_LABEL]
            .iter()
            .any(|l| labels.get(*l).is_some_and(|v| !v.is_empty()));
        if !identified {
            return;
        }
        // Named like any metric, so the namespace is escaped and prefixed the same way.
        let Ok(name) = self
            .settings
            .namer
            .build(TARGET_INFO, "", MetricType::Gauge)
        else {
            return;
        };
        let sample = Sample {
            value: 1.0,
            timestamp: millis(latest),
        };
        self.add(&labels, &name, None, sample, 0);
    }

    fn finish(self) -> Conversion {
        let mut labels: Vec<Vec<(String, String)>> = vec![Vec::new(); self.series.len()];
        for (set, index) in self.index {
            if let Some(slot) = labels.get_mut(index) {
                *slot = set;
            }
        }
        let series = self
            .series
            .into_iter()
            .zip(labels)
            .map(|(pending, labels)| {
                let mut exemplars = pending.exemplars;
                exemplars.sort_by_key(|e| e.timestamp);
                Converted {
                    series: TimeSeries {
                        labels: labels
                            .into_iter()
                            .map(|(name, value)| Label { name, value })
                            .collect(),
                        samples: in_time_order(pending.samples),
                        exemplars,
                    },
                    points: pending.points,
                }
            })
            .collect();
        Conversion {
            series,
            dropped_points: self.dropped_points,
            problems: self.problems,
        }
    }
}
