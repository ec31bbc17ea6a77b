//! OTLP metrics to Dynatrace lines. Gauges become `gauge,<v>`; monotonic delta sums
//! `count,delta=<v>`; non-monotonic cumulative sums gauges; delta histograms
//! `gauge,min=,max=,sum=,count=` (estimated from the buckets where the point lacks them).
//! Cumulative monotonic sums and histograms arrive already converted to delta (the exporter
//! converts them, in order, before they are queued). Everything else is dropped with a
//! reason, counted.

use std::borrow::Cow;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::metrics::{
    metric, number_data_point, AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics,
};
use ferrotel_pipeline::prometheus::attribute_string;

use super::serialize::{self, Dimensions, Payload};

/// The dimension every line carries, as upstream sets it (it wins over any other).
const SOURCE_KEY: &str = "dt.metrics.source";
const SOURCE_VALUE: &str = "opentelemetry";

/// How a batch becomes lines.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Joined to every metric name with a dot.
    pub prefix: String,
    /// `default_dimensions` and `tags`, normalised; the weakest.
    pub default_dimensions: Dimensions,
    /// Resource attributes become dimensions too (weaker than point attributes).
    pub resource_to_telemetry: bool,
}

/// The lines of a batch, in one buffer: each line followed by a newline, so that a run of
/// lines is a request body as it is.
#[derive(Debug, Default)]
pub struct Lines {
    pub text: String,
    /// Where each line ends in `text` (before its newline).
    pub ends: Vec<usize>,
    /// Points that produce no line, and why (one entry per distinct reason and metric).
    pub dropped_points: u64,
    pub problems: Vec<String>,
}

impl Lines {
    /// How many lines there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The lines in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|e| e + 1));
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.text[a..b])
    }

    fn drop_points(&mut self, n: usize, reason: String) {
        self.dropped_points += n as u64;
        if self.problems.len() < 8 && !self.problems.contains(&reason) {
            self.problems.push(reason);
        }
    }

    /// A one-line summary of what was dropped.
    pub fn drop_message(&self) -> String {
        if self.dropped_points == 0 {
            return String::new();
        }
        format!(
            "{} data points not sent: {}",
            self.dropped_points,
            self.problems.join("; ")
        )
    }
}

fn number_payload(p: &NumberDataPoint, count: bool) -> Option<Payload> {
    Some(match (p.value?, count) {
        (number_data_point::Value::AsInt(v), false) => Payload::GaugeInt(v),
        (number_data_point::Value::AsDouble(v), false) => Payload::Gauge(v),
        (number_data_point::Value::AsInt(v), true) => Payload::CountInt(v),
        (number_data_point::Value::AsDouble(v), true) => Payload::Count(v),
    })
}

/// min, max, sum and count of a delta histogram point: its own fields where it has them,
/// estimates from the buckets otherwise; `None` for an empty point.
pub fn histogram_summary(p: &HistogramDataPoint) -> Result<Option<Payload>, String> {
    if p.count == 0 {
        return Ok(None);
    }
    let count = p.count;
    let bounds = &p.explicit_bounds;
    let buckets = &p.bucket_counts;
    let (mut min, mut max, mut sum) = (p.min, p.max, p.sum);
    if min.is_none() || max.is_none() || sum.is_none() {
        if bounds.is_empty() || buckets.is_empty() {
            // One bucket for everything: only the mean is known.
            let Some(s) = sum else {
                return Err("a histogram point with neither buckets nor a sum".to_string());
            };
            let mean = s / count as f64;
            min = min.or(Some(mean));
            max = max.or(Some(mean));
        } else {
            let last = buckets.len() - 1;
            let lower = |i: usize| {
                if i == 0 {
                    None
                } else {
                    bounds.get(i - 1).copied()
                }
            };
            let upper = |i: usize| bounds.get(i).copied();
            let non_empty: Vec<usize> = (0..buckets.len()).filter(|i| buckets[*i] > 0).collect();
            if let (Some(&first), Some(&final_)) = (non_empty.first(), non_empty.last()) {
                let est_min = if first == 0 { upper(0) } else { lower(first) };
                let est_max = if final_ == last && final_ >= bounds.len() {
                    lower(final_)
                } else {
                    upper(final_)
                };
                let mut est_sum = 0.0;
                for &i in &non_empty {
                    let mid = match (lower(i), upper(i)) {
                        (None, Some(u)) => u,
                        (Some(l), None) => l,
                        (Some(l), Some(u)) => (l + u) / 2.0,
                        (None, None) => 0.0,
                    };
                    est_sum += buckets[i] as f64 * mid;
                }
                min = min.or(est_min);
                max = max.or(est_max);
                sum = sum.or(Some(est_sum));
            }
        }
    }
    let (Some(mut min), Some(mut max), Some(sum)) = (min, max, sum) else {
        return Err(
            "a histogram point whose buckets are all empty though its count is not".to_string(),
        );
    };
    let avg = sum / count as f64;
    if avg.is_finite() {
        min = min.min(avg);
        max = max.max(avg);
    }
    Ok(Some(Payload::Summary {
        min,
        max,
        sum,
        count,
    }))
}

fn add_attributes(dims: &mut Dimensions, attributes: &[KeyValue]) {
    for kv in attributes {
        dims.push(&kv.key, &attribute_string(&kv.value));
    }
}

fn point_count(m: &Metric) -> usize {
    match &m.data {
        None => 0,
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
    }
}

fn type_name(m: &Metric) -> &'static str {
    match &m.data {
        None => "empty",
        Some(metric::Data::Gauge(_)) => "gauge",
        Some(metric::Data::Sum(_)) => "sum",
        Some(metric::Data::Histogram(_)) => "histogram",
        Some(metric::Data::ExponentialHistogram(_)) => "exponential histogram",
        Some(metric::Data::Summary(_)) => "summary",
    }
}

/// Converts a batch. The batch's cumulative monotonic sums and histograms must already be
/// delta; any left cumulative are dropped with a reason.
pub fn convert(batch: &[ResourceMetrics], settings: &Settings) -> Lines {
    let mut out = Lines::default();
    for rm in batch {
        let mut base = settings.default_dimensions.clone();
        if settings.resource_to_telemetry {
            if let Some(r) = &rm.resource {
                add_attributes(&mut base, &r.attributes);
            }
        }
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let name = if settings.prefix.is_empty() {
                    m.name.clone()
                } else {
                    format!("{}.{}", settings.prefix, m.name)
                };
                let points = point_count(m);
                let key = match serialize::metric_key(&name) {
                    Ok(k) => k,
                    Err(e) => {
                        out.drop_points(points, e);
                        continue;
                    }
                };
                let emit = |out: &mut Lines,
                            attributes: &[KeyValue],
                            payload: Result<Option<Payload>, String>,
                            time: u64| {
                    let payload = match payload {
                        Ok(Some(p)) => p,
                        Ok(None) => return,
                        Err(e) => {
                            out.drop_points(1, format!("metric \"{}\": {e}", m.name));
                            return;
                        }
                    };
                    // The point's own dimensions win over the base ones (and a later
                    // attribute over an earlier one); the source wins over all. Values are
                    // escaped straight into the line.
                    let own: Vec<(Cow<str>, &Option<AnyValue>)> = attributes
                        .iter()
                        .filter_map(|kv| {
                            serialize::dimension_key_cow(&kv.key).map(|k| (k, &kv.value))
                        })
                        .filter(|(k, _)| k != SOURCE_KEY)
                        .collect();
                    let text = &mut out.text;
                    let start = text.len();
                    text.push_str(&key);
                    let mut count = 1;
                    for (k, v) in &base.0 {
                        if k == SOURCE_KEY || own.iter().any(|(o, _)| o == k) {
                            continue;
                        }
                        count += 1;
                        text.push(',');
                        text.push_str(k);
                        text.push('=');
                        text.push_str(v);
                    }
                    for (i, (k, v)) in own.iter().enumerate() {
                        if own[i + 1..].iter().any(|(o, _)| o == k) {
                            continue;
                        }
                        count += 1;
                        text.push(',');
                        text.push_str(k);
                        text.push('=');
                        match v.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(any_value::Value::StringValue(s)) => {
                                serialize::dimension_value(s, text)
                            }
                            _ => serialize::dimension_value(&attribute_string(v), text),
                        }
                    }
                    text.push(',');
                    text.push_str(SOURCE_KEY);
                    text.push('=');
                    text.push_str(SOURCE_VALUE);
                    match serialize::finish(
                        start,
                        count,
                        payload,
                        serialize::timestamp_ms(time),
                        text,
                    ) {
                        Ok(()) => {
                            let end = out.text.len();
                            out.ends.push(end);
                            out.text.push('\n');
                        }
                        Err(e) => out.drop_points(1, format!("metric \"{}\": {e}", m.name)),
                    }
                };
                match &m.data {
                    Some(metric::Data::Gauge(g)) => {
                        for p in &g.data_points {
                            let payload = number_payload(p, false)
                                .ok_or_else(|| "a point without a value".to_string())
                                .map(Some);
                            emit(&mut out, &p.attributes, payload, p.time_unix_nano);
                        }
                    }
                    Some(metric::Data::Sum(s)) => {
                        let cumulative =
                            s.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                        match (s.is_monotonic, cumulative) {
                            (true, true) => out.drop_points(
                                s.data_points.len(),
                                format!("metric \"{}\": a cumulative sum that could not be converted to delta", m.name),
                            ),
                            (false, false) => out.drop_points(
                                s.data_points.len(),
                                format!("metric \"{}\": a non-monotonic delta sum has no Dynatrace form", m.name),
                            ),
                            (monotonic, _) => {
                                for p in &s.data_points {
                                    let payload = number_payload(p, monotonic)
                                        .ok_or_else(|| "a point without a value".to_string())
                                        .map(Some);
                                    emit(&mut out, &p.attributes, payload, p.time_unix_nano);
                                }
                            }
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        if h.aggregation_temporality == AggregationTemporality::Cumulative as i32 {
                            out.drop_points(
                                h.data_points.len(),
                                format!("metric \"{}\": a cumulative histogram that could not be converted to delta", m.name),
                            );
                            continue;
                        }
                        for p in &h.data_points {
                            emit(
                                &mut out,
                                &p.attributes,
                                histogram_summary(p),
                                p.time_unix_nano,
                            );
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(_))
                    | Some(metric::Data::Summary(_)) => {
                        out.drop_points(
                            points,
                            format!(
                                "metric \"{}\": the {} type has no line protocol form (send it with metrics_via: otlp)",
                                m.name,
                                type_name(m)
                            ),
                        );
                    }
                    None => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(count: u64, bounds: &[f64], buckets: &[u64], sum: Option<f64>) -> HistogramDataPoint {
        HistogramDataPoint {
            count,
            explicit_bounds: bounds.to_vec(),
            bucket_counts: buckets.to_vec(),
            sum,
            ..Default::default()
        }
    }

    fn summary(p: &HistogramDataPoint) -> (f64, f64, f64, u64) {
        match histogram_summary(p) {
            Ok(Some(Payload::Summary {
                min,
                max,
                sum,
                count,
            })) => (min, max, sum, count),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn histogram_estimates_follow_the_buckets() {
        // Buckets (-inf,1] (1,5] (5,10] (10,+inf): counts 0, 2, 1, 0.
        let p = hist(3, &[1.0, 5.0, 10.0], &[0, 2, 1, 0], None);
        // min = lower bound of (1,5]; max = upper bound of (5,10]; sum = 2*3 + 1*7.5.
        assert_eq!(summary(&p), (1.0, 10.0, 13.5, 3));
        // The first bucket uses its upper bound, the overflow bucket its lower bound.
        let p = hist(2, &[1.0, 5.0], &[1, 0, 1], None);
        assert_eq!(summary(&p), (1.0, 5.0, 6.0, 2));
        // The point's own fields win, and min/max are clamped around the mean.
        let mut p = hist(2, &[1.0, 5.0], &[1, 0, 1], Some(100.0));
        p.min = Some(0.5);
        assert_eq!(summary(&p), (0.5, 50.0, 100.0, 2));
        // No buckets: min and max are the mean.
        let p = hist(4, &[], &[4], Some(10.0));
        assert_eq!(summary(&p), (2.5, 2.5, 10.0, 4));
        // Empty points make no line; impossible ones are refused.
        assert_eq!(histogram_summary(&hist(0, &[1.0], &[0, 0], None)), Ok(None));
        assert!(histogram_summary(&hist(3, &[], &[], None)).is_err());
        assert!(histogram_summary(&hist(3, &[1.0], &[0, 0], None)).is_err());
    }
}
