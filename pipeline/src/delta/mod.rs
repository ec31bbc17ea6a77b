//! Cumulative-to-delta conversion, as the Collector's `cumulativetodelta` processor does it,
//! shared by that processor and by exporters whose backend takes only deltas.
//!
//! The converter remembers, per series, the last cumulative value and its timestamps, and
//! rewrites each later point as the change since then: the emitted point starts where the
//! previous one ended. What it converts: monotonic cumulative sums (int and double),
//! cumulative histograms and cumulative exponential histograms; everything else is left as
//! it is.
//!
//! Rules (upstream's unless said otherwise):
//! - A series is the resource attributes, the scope (name, version, attributes), the metric
//!   name, unit, type and monotonicity, the point's value type and the point attributes
//!   (attribute order does not matter). Series are keyed by a 128-bit keyed hash (see
//!   `identity`).
//! - The first point of a series follows [`InitialValue`]; it is always kept as the baseline.
//! - A new start time is a restart: the point is a series' first point again (upstream makes
//!   the start time part of the identity, with the same effect on the output).
//! - A point not later than the last one (out of order, or a duplicate) is dropped and
//!   changes nothing; upstream converts it anyway, giving a zero or negative delta.
//! - Sums: a value below the previous one is a reset: the point is dropped and becomes the
//!   baseline. A double NaN (a staleness marker) passes untouched and changes nothing.
//! - Histograms: a change in bucket count or bounds drops the point, which becomes the
//!   baseline; a count (or, here, any bucket) below the previous one is a reset and the
//!   point goes out as it is. A NaN sum stays NaN and keeps the previous sum as baseline.
//!   Min and max are removed from converted points: they cannot be derived for an interval.
//! - Exponential histograms: buckets are matched by index, so moving offsets are normal; a
//!   lower scale merges the previous buckets to match, a raised zero threshold moves the
//!   previous buckets below it into the zero count. A lower count or zero count, a higher
//!   scale, a lower zero threshold or a bucket that shrank is a reset: the point is dropped
//!   and becomes the baseline (upstream keeps the old baseline). Min and max are removed.
//! - Points flagged "no recorded value" are dropped and change nothing, as upstream does.
//! - With `max_staleness`, a series not seen for that long (by the clock passed to
//!   [`DeltaConverter::convert`], not the points' timestamps) is forgotten: its next point is
//!   a first point again.

mod buckets;
mod identity;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::pdata::metrics::metric::Data;
use crate::pdata::metrics::number_data_point::Value as NumberValue;
use crate::pdata::metrics::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics,
};

use buckets::{threshold_index, ExpBuckets};
use identity::{Hasher128, IdentityKeys, KeyBuildHasher, PointKind};

/// What happens to the first point of a series (upstream's `initial_value`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialValue {
    /// Keep it only when the series started while the converter runs: its start time is
    /// set, not before the converter started, and differs from its timestamp.
    #[default]
    Auto,
    /// Always emit it as its own delta.
    Keep,
    /// Never emit it; it only becomes the baseline.
    Drop,
}

impl InitialValue {
    pub fn as_str(self) -> &'static str {
        match self {
            InitialValue::Auto => "auto",
            InitialValue::Keep => "keep",
            InitialValue::Drop => "drop",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaSettings {
    /// How long a series unseen is remembered; zero means forever.
    pub max_staleness: Duration,
    pub initial_value: InitialValue,
}

/// What one [`DeltaConverter::convert`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Points rewritten as deltas (first points emitted as they are included).
    pub converted_points: u64,
    /// Points removed: first points not emitted, resets, out-of-order or duplicate points,
    /// points without a value.
    pub dropped_points: u64,
}

/// The per-series state of the cumulative-to-delta conversion. Not shared: an owner used
/// from several tasks wraps it in a `Mutex`.
pub struct DeltaConverter {
    settings: DeltaSettings,
    /// When this converter started, in Unix nanoseconds (the `auto` rule's reference).
    started: u64,
    keys: IdentityKeys,
    series: HashMap<u128, Series, KeyBuildHasher>,
    last_sweep: Option<SystemTime>,
}

impl std::fmt::Debug for DeltaConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaConverter")
            .field("settings", &self.settings)
            .field("started", &self.started)
            .field("tracked", &self.series.len())
            .finish()
    }
}

/// One series: the last point's times and cumulative value, and when it was last seen.
struct Series {
    start: u64,
    time: u64,
    seen: SystemTime,
    value: Cumulative,
}

enum Cumulative {
    Int(i64),
    Double(f64),
    Histogram(HistogramState),
    Exponential(Box<ExponentialState>),
}

struct HistogramState {
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
    bounds: Vec<f64>,
}

struct ExponentialState {
    count: u64,
    sum: f64,
    scale: i32,
    zero_count: u64,
    zero_threshold: f64,
    positive: ExpBuckets,
    negative: ExpBuckets,
}

/// What becomes of one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Emit,
    Drop,
}

const NO_RECORDED_VALUE: u32 = DataPointFlags::NoRecordedValueMask as u32;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl DeltaConverter {
    pub fn new(settings: DeltaSettings) -> Self {
        Self::with_start_time(settings, SystemTime::now())
    }

    /// A converter that counts as started at `started` (what the `auto` rule compares
    /// start times with).
    pub fn with_start_time(settings: DeltaSettings, started: SystemTime) -> Self {
        DeltaConverter {
            settings,
            started: unix_nanos(started),
            keys: IdentityKeys::new(),
            series: HashMap::default(),
            last_sweep: None,
        }
    }

    pub fn settings(&self) -> DeltaSettings {
        self.settings
    }

    /// Number of series tracked (for tests and a gauge).
    pub fn tracked(&self) -> usize {
        self.series.len()
    }

    /// Forgets the series not seen within `max_staleness` of `now`; returns how many.
    /// [`Self::convert`] does this itself, at most once per `max_staleness`.
    pub fn remove_stale(&mut self, now: SystemTime) -> usize {
        let max = self.settings.max_staleness;
        if max.is_zero() {
            return 0;
        }
        let before = self.series.len();
        self.series.retain(|_, s| !expired(s.seen, now, max));
        self.last_sweep = Some(now);
        before - self.series.len()
    }

    fn sweep_if_due(&mut self, now: SystemTime) {
        let max = self.settings.max_staleness;
        if max.is_zero() {
            return;
        }
        match self.last_sweep {
            None => self.last_sweep = Some(now),
            Some(last) => match now.duration_since(last) {
                Ok(elapsed) if elapsed >= max => {
                    self.remove_stale(now);
                }
                Ok(_) => {}
                // The clock went back: measure the next interval from here.
                Err(_) => self.last_sweep = Some(now),
            },
        }
    }

    /// Converts, in place, every monotonic cumulative Sum, cumulative Histogram and cumulative
    /// ExponentialHistogram whose metric `select` accepts into delta; points that cannot be
    /// converted (a series' first point under Drop/Auto rules, out-of-order or duplicate
    /// points) are removed and counted; metrics left without points are removed.
    /// Non-monotonic sums and delta/gauge/summary metrics are left untouched.
    pub fn convert(
        &mut self,
        metrics: &mut Vec<ResourceMetrics>,
        now: SystemTime,
        select: &dyn Fn(&Metric) -> bool,
    ) -> DeltaStats {
        self.sweep_if_due(now);
        let mut stats = DeltaStats::default();
        // Only what this call empties is removed; empty input is left as it came.
        metrics.retain_mut(|rm| {
            let mut emptied = false;
            for sm in &mut rm.scope_metrics {
                let mut scope_id = None;
                let before = sm.metrics.len();
                sm.metrics.retain_mut(|metric| {
                    if !convertible(metric) || !select(metric) {
                        return true;
                    }
                    let scope = *scope_id.get_or_insert_with(|| {
                        self.keys.scope(rm.resource.as_ref(), sm.scope.as_ref())
                    });
                    self.convert_metric(scope, metric, now, &mut stats)
                });
                if sm.metrics.len() < before && sm.metrics.is_empty() {
                    emptied = true;
                }
            }
            if emptied {
                rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
                return !rm.scope_metrics.is_empty();
            }
            true
        });
        stats
    }

    /// Converts one selected metric; false when it is left without points.
    fn convert_metric(
        &mut self,
        scope: u128,
        metric: &mut Metric,
        now: SystemTime,
        stats: &mut DeltaStats,
    ) -> bool {
        let Metric {
            name, unit, data, ..
        } = metric;
        let Some(data) = data else { return true };
        match data {
            Data::Sum(sum) => {
                let prefix = self.keys.metric(scope, name, unit, sum.is_monotonic);
                sum.data_points.retain_mut(|dp| {
                    if dp.flags & NO_RECORDED_VALUE != 0 {
                        stats.dropped_points += 1;
                        return false;
                    }
                    let kind = match dp.value {
                        Some(NumberValue::AsInt(_)) => PointKind::IntSum,
                        // A NaN is a staleness marker, not a value: upstream passes it on.
                        Some(NumberValue::AsDouble(v)) if v.is_nan() => return true,
                        Some(NumberValue::AsDouble(_)) => PointKind::DoubleSum,
                        None => {
                            stats.dropped_points += 1;
                            return false;
                        }
                    };
                    self.point(&prefix, kind, dp, now, stats)
                });
                sum.aggregation_temporality = DELTA;
                !sum.data_points.is_empty()
            }
            Data::Histogram(histogram) => {
                let prefix = self.keys.metric(scope, name, unit, true);
                histogram.data_points.retain_mut(|dp| {
                    if dp.flags & NO_RECORDED_VALUE != 0 {
                        stats.dropped_points += 1;
                        return false;
                    }
                    self.point(&prefix, PointKind::Histogram, dp, now, stats)
                });
                histogram.aggregation_temporality = DELTA;
                !histogram.data_points.is_empty()
            }
            Data::ExponentialHistogram(histogram) => {
                let prefix = self.keys.metric(scope, name, unit, true);
                histogram.data_points.retain_mut(|dp| {
                    if dp.flags & NO_RECORDED_VALUE != 0 {
                        stats.dropped_points += 1;
                        return false;
                    }
                    self.point(&prefix, PointKind::Exponential, dp, now, stats)
                });
                histogram.aggregation_temporality = DELTA;
                !histogram.data_points.is_empty()
            }
            Data::Gauge(_) | Data::Summary(_) => true,
        }
    }

    /// Converts one point of a series; false when it is to be removed.
    fn point<P: DeltaPoint>(
        &mut self,
        prefix: &Hasher128,
        kind: PointKind,
        dp: &mut P,
        now: SystemTime,
        stats: &mut DeltaStats,
    ) -> bool {
        let key = self.keys.series(prefix, kind, dp.attributes());
        let verdict = self.step(key, dp, now);
        match verdict {
            Verdict::Emit => stats.converted_points += 1,
            Verdict::Drop => stats.dropped_points += 1,
        }
        verdict == Verdict::Emit
    }

    fn step<P: DeltaPoint>(&mut self, key: u128, dp: &mut P, now: SystemTime) -> Verdict {
        let (start, time) = (dp.start(), dp.time());
        let max = self.settings.max_staleness;
        if let Some(series) = self.series.get_mut(&key) {
            if !expired(series.seen, now, max) {
                if time <= series.time {
                    // Out of order or a duplicate: nothing to learn from it.
                    return Verdict::Drop;
                }
                if start == series.start && dp.same_kind(&series.value) {
                    let previous_time = series.time;
                    let verdict = dp.delta(&mut series.value);
                    series.time = time;
                    series.seen = now;
                    if verdict == Verdict::Emit {
                        dp.set_start(previous_time);
                        dp.clear_min_max();
                    }
                    return verdict;
                }
            }
        }
        // A first point: a new series, a restart (new start time), or one forgotten.
        self.series.insert(
            key,
            Series {
                start,
                time,
                seen: now,
                value: dp.snapshot(),
            },
        );
        if self.first_point_emits(start, time) {
            dp.clear_min_max();
            Verdict::Emit
        } else {
            Verdict::Drop
        }
    }

    fn first_point_emits(&self, start: u64, time: u64) -> bool {
        match self.settings.initial_value {
            InitialValue::Keep => true,
            InitialValue::Drop => false,
            // An unset start time (0) is before any start, so it is dropped too.
            InitialValue::Auto => start >= self.started && start != time,
        }
    }
}

fn expired(seen: SystemTime, now: SystemTime, max: Duration) -> bool {
    !max.is_zero() && now.duration_since(seen).is_ok_and(|age| age > max)
}

/// Whether a metric is of a kind the converter rewrites (before `select` is asked).
fn convertible(metric: &Metric) -> bool {
    match &metric.data {
        Some(Data::Sum(s)) => {
            s.aggregation_temporality == CUMULATIVE && s.is_monotonic && !s.data_points.is_empty()
        }
        Some(Data::Histogram(h)) => {
            h.aggregation_temporality == CUMULATIVE && !h.data_points.is_empty()
        }
        Some(Data::ExponentialHistogram(h)) => {
            h.aggregation_temporality == CUMULATIVE && !h.data_points.is_empty()
        }
        _ => false,
    }
}

/// A point kind the converter rewrites.
trait DeltaPoint {
    fn attributes(&self) -> &[crate::pdata::common::KeyValue];
    fn start(&self) -> u64;
    fn time(&self) -> u64;
    fn set_start(&mut self, start: u64);
    /// The point's cumulative value, to keep as a series' baseline.
    fn snapshot(&self) -> Cumulative;
    fn same_kind(&self, state: &Cumulative) -> bool;
    /// Rewrites the point as the change since `state` and makes it the new baseline. On a
    /// reset the point becomes the baseline and the verdict says whether it still goes out.
    fn delta(&mut self, state: &mut Cumulative) -> Verdict;
    fn clear_min_max(&mut self) {}
}

impl DeltaPoint for NumberDataPoint {
    fn attributes(&self) -> &[crate::pdata::common::KeyValue] {
        &self.attributes
    }

    fn start(&self) -> u64 {
        self.start_time_unix_nano
    }

    fn time(&self) -> u64 {
        self.time_unix_nano
    }

    fn set_start(&mut self, start: u64) {
        self.start_time_unix_nano = start;
    }

    fn snapshot(&self) -> Cumulative {
        match self.value {
            Some(NumberValue::AsDouble(v)) => Cumulative::Double(v),
            Some(NumberValue::AsInt(v)) => Cumulative::Int(v),
            None => Cumulative::Int(0),
        }
    }

    fn same_kind(&self, state: &Cumulative) -> bool {
        matches!(
            (&self.value, state),
            (Some(NumberValue::AsInt(_)), Cumulative::Int(_))
                | (Some(NumberValue::AsDouble(_)), Cumulative::Double(_))
        )
    }

    fn delta(&mut self, state: &mut Cumulative) -> Verdict {
        match (&mut self.value, state) {
            (Some(NumberValue::AsInt(value)), Cumulative::Int(previous)) => {
                let current = *value;
                let verdict = if current < *previous {
                    Verdict::Drop
                } else {
                    *value = current.saturating_sub(*previous);
                    Verdict::Emit
                };
                *previous = current;
                verdict
            }
            (Some(NumberValue::AsDouble(value)), Cumulative::Double(previous)) => {
                let current = *value;
                let verdict = if current < *previous {
                    Verdict::Drop
                } else {
                    *value = current - *previous;
                    Verdict::Emit
                };
                *previous = current;
                verdict
            }
            (_, state) => {
                *state = self.snapshot();
                Verdict::Drop
            }
        }
    }
}

impl DeltaPoint for HistogramDataPoint {
    fn attributes(&self) -> &[crate::pdata::common::KeyValue] {
        &self.attributes
    }

    fn start(&self) -> u64 {
        self.start_time_unix_nano
    }

    fn time(&self) -> u64 {
        self.time_unix_nano
    }

    fn set_start(&mut self, start: u64) {
        self.start_time_unix_nano = start;
    }

    fn snapshot(&self) -> Cumulative {
        Cumulative::Histogram(HistogramState {
            count: self.count,
            sum: baseline_sum(self.sum, 0.0),
            buckets: self.bucket_counts.clone(),
            bounds: self.explicit_bounds.clone(),
        })
    }

    fn same_kind(&self, state: &Cumulative) -> bool {
        matches!(state, Cumulative::Histogram(_))
    }

    fn delta(&mut self, state: &mut Cumulative) -> Verdict {
        let Cumulative::Histogram(previous) = state else {
            *state = self.snapshot();
            return Verdict::Drop;
        };
        let same_layout = previous.buckets.len() == self.bucket_counts.len()
            && previous.bounds.len() == self.explicit_bounds.len()
            && previous
                .bounds
                .iter()
                .zip(&self.explicit_bounds)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same_layout {
            *state = self.snapshot();
            return Verdict::Drop;
        }
        let reset = self.count < previous.count
            || self
                .bucket_counts
                .iter()
                .zip(&previous.buckets)
                .any(|(current, before)| current < before);
        let (count, sum) = (self.count, baseline_sum(self.sum, previous.sum));
        if reset {
            // The counter restarted: what it holds now is all new.
            previous.buckets.copy_from_slice(&self.bucket_counts);
        } else {
            self.count -= previous.count;
            if let Some(s) = self.sum.as_mut().filter(|s| !s.is_nan()) {
                *s -= previous.sum;
            }
            for (current, before) in self.bucket_counts.iter_mut().zip(&mut previous.buckets) {
                let cumulative = *current;
                *current = cumulative - *before;
                *before = cumulative;
            }
        }
        previous.count = count;
        previous.sum = sum;
        Verdict::Emit
    }

    fn clear_min_max(&mut self) {
        self.min = None;
        self.max = None;
    }
}

impl DeltaPoint for ExponentialHistogramDataPoint {
    fn attributes(&self) -> &[crate::pdata::common::KeyValue] {
        &self.attributes
    }

    fn start(&self) -> u64 {
        self.start_time_unix_nano
    }

    fn time(&self) -> u64 {
        self.time_unix_nano
    }

    fn set_start(&mut self, start: u64) {
        self.start_time_unix_nano = start;
    }

    fn snapshot(&self) -> Cumulative {
        Cumulative::Exponential(Box::new(exponential_state(self, 0.0)))
    }

    fn same_kind(&self, state: &Cumulative) -> bool {
        matches!(state, Cumulative::Exponential(_))
    }

    fn delta(&mut self, state: &mut Cumulative) -> Verdict {
        let Cumulative::Exponential(previous) = state else {
            *state = self.snapshot();
            return Verdict::Drop;
        };
        // This point becomes the baseline whatever happens; the old one is worked on.
        let next = exponential_state(self, previous.sum);
        let mut base = std::mem::replace(previous.as_mut(), next);
        if self.count < base.count
            || self.zero_threshold < base.zero_threshold
            || self.scale > base.scale
        {
            return Verdict::Drop;
        }
        if self.zero_threshold > base.zero_threshold {
            // Previous buckets now under the threshold count as zeros.
            let index = threshold_index(self.zero_threshold, base.scale);
            let moved = base
                .positive
                .take_up_to(index)
                .saturating_add(base.negative.take_up_to(index));
            base.zero_count = base.zero_count.saturating_add(moved);
        }
        if self.scale < base.scale {
            let shift =
                u32::try_from(i64::from(base.scale) - i64::from(self.scale)).unwrap_or(u32::MAX);
            base.positive.coarsen(shift);
            base.negative.coarsen(shift);
        }
        if self.zero_count < base.zero_count
            || !base.positive.fits_under(self.positive.as_ref())
            || !base.negative.fits_under(self.negative.as_ref())
        {
            return Verdict::Drop;
        }
        self.count -= base.count;
        self.zero_count -= base.zero_count;
        if let Some(s) = self.sum.as_mut().filter(|s| !s.is_nan()) {
            *s -= base.sum;
        }
        base.positive.subtract_from(self.positive.as_mut());
        base.negative.subtract_from(self.negative.as_mut());
        Verdict::Emit
    }

    fn clear_min_max(&mut self) {
        self.min = None;
        self.max = None;
    }
}

fn exponential_state(dp: &ExponentialHistogramDataPoint, previous_sum: f64) -> ExponentialState {
    ExponentialState {
        count: dp.count,
        sum: baseline_sum(dp.sum, previous_sum),
        scale: dp.scale,
        zero_count: dp.zero_count,
        zero_threshold: dp.zero_threshold,
        positive: ExpBuckets::from_proto(dp.positive.as_ref()),
        negative: ExpBuckets::from_proto(dp.negative.as_ref()),
    }
}

/// The sum a histogram point leaves as baseline: its own, or the previous one when it is
/// NaN; a point without a sum counts as 0, as upstream reads it.
fn baseline_sum(sum: Option<f64>, previous: f64) -> f64 {
    match sum {
        Some(s) if s.is_nan() => previous,
        Some(s) => s,
        None => 0.0,
    }
}
