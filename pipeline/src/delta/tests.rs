#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use crate::pdata::metrics::exponential_histogram_data_point::Buckets;
use crate::pdata::metrics::{
    ExponentialHistogram, Gauge, Histogram, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use crate::pdata::resource::Resource;

/// The converter's start, in Unix seconds; point times are given relative to it.
const STARTED_SECS: u64 = 1_700_000_000;
const SEC: u64 = 1_000_000_000;

fn started() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(STARTED_SECS)
}

/// Nanoseconds since the epoch for `secs` seconds after the converter started (negative:
/// before).
fn at(secs: i64) -> u64 {
    (STARTED_SECS as i64 + secs) as u64 * SEC
}

fn wall(secs: u64) -> SystemTime {
    started() + Duration::from_secs(secs)
}

fn converter(initial_value: InitialValue) -> DeltaConverter {
    DeltaConverter::with_start_time(
        DeltaSettings {
            max_staleness: Duration::ZERO,
            initial_value,
        },
        started(),
    )
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v)).collect()
}

fn int_point(start: u64, time: u64, value: i64, a: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(a),
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(NumberValue::AsInt(value)),
        ..Default::default()
    }
}

fn double_point(start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(NumberValue::AsDouble(value)),
        ..Default::default()
    }
}

fn sum_metric(
    name: &str,
    temporality: i32,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.to_string(),
        description: format!("{name} description"),
        unit: "1".to_string(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn counter(points: Vec<NumberDataPoint>) -> Metric {
    sum_metric("requests", CUMULATIVE, true, points)
}

fn histogram_point(
    time: u64,
    count: u64,
    sum: f64,
    buckets: &[u64],
    bounds: &[f64],
) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: at(-100),
        time_unix_nano: time,
        count,
        sum: Some(sum),
        bucket_counts: buckets.to_vec(),
        explicit_bounds: bounds.to_vec(),
        min: Some(0.5),
        max: Some(99.0),
        ..Default::default()
    }
}

fn histogram_metric(temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: "latency".to_string(),
        unit: "ms".to_string(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality,
        })),
        ..Default::default()
    }
}

fn exp_point(
    time: u64,
    scale: i32,
    zero: (u64, f64),
    positive: (i32, &[u64]),
    negative: (i32, &[u64]),
) -> ExponentialHistogramDataPoint {
    let count = zero.0 + positive.1.iter().sum::<u64>() + negative.1.iter().sum::<u64>();
    ExponentialHistogramDataPoint {
        start_time_unix_nano: at(-100),
        time_unix_nano: time,
        count,
        sum: Some(count as f64 * 2.0),
        scale,
        zero_count: zero.0,
        zero_threshold: zero.1,
        positive: Some(Buckets {
            offset: positive.0,
            bucket_counts: positive.1.to_vec(),
        }),
        negative: Some(Buckets {
            offset: negative.0,
            bucket_counts: negative.1.to_vec(),
        }),
        min: Some(-3.0),
        max: Some(40.0),
        ..Default::default()
    }
}

fn exp_metric(points: Vec<ExponentialHistogramDataPoint>) -> Metric {
    Metric {
        name: "exp".to_string(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: points,
            aggregation_temporality: CUMULATIVE,
        })),
        ..Default::default()
    }
}

fn batch_with(resource: &[(&str, &str)], metrics: Vec<Metric>) -> Vec<ResourceMetrics> {
    vec![ResourceMetrics {
        resource: Some(Resource {
            attributes: attrs(resource),
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "lib".to_string(),
                version: "1.0".to_string(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }]
}

fn batch(metrics: Vec<Metric>) -> Vec<ResourceMetrics> {
    batch_with(&[("service.name", "api")], metrics)
}

fn all(_: &Metric) -> bool {
    true
}

/// Runs one batch through at wall time `now` (seconds after start).
fn run(
    c: &mut DeltaConverter,
    mut input: Vec<ResourceMetrics>,
    now: u64,
) -> (Vec<ResourceMetrics>, DeltaStats) {
    let stats = c.convert(&mut input, wall(now), &all);
    (input, stats)
}

fn metrics_of(out: &[ResourceMetrics]) -> Vec<&Metric> {
    out.iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .collect()
}

fn sum_of(m: &Metric) -> &Sum {
    match &m.data {
        Some(Data::Sum(s)) => s,
        other => panic!("not a sum: {other:?}"),
    }
}

/// The (start, time, value) of every int point of every sum in the output.
fn int_points(out: &[ResourceMetrics]) -> Vec<(u64, u64, i64)> {
    metrics_of(out)
        .into_iter()
        .flat_map(|m| &sum_of(m).data_points)
        .map(|p| match p.value {
            Some(NumberValue::AsInt(v)) => (p.start_time_unix_nano, p.time_unix_nano, v),
            ref other => panic!("not an int: {other:?}"),
        })
        .collect()
}

fn double_values(out: &[ResourceMetrics]) -> Vec<f64> {
    metrics_of(out)
        .into_iter()
        .flat_map(|m| &sum_of(m).data_points)
        .map(|p| match p.value {
            Some(NumberValue::AsDouble(v)) => v,
            ref other => panic!("not a double: {other:?}"),
        })
        .collect()
}

/// Feeds one int point per batch, each at wall time 0, and returns what came out.
fn feed_ints(c: &mut DeltaConverter, points: Vec<NumberDataPoint>) -> Vec<Option<(u64, u64, i64)>> {
    points
        .into_iter()
        .map(|p| {
            let (out, _) = run(c, batch(vec![counter(vec![p])]), 0);
            int_points(&out).first().copied()
        })
        .collect()
}

// ---- first points ----

#[test]
fn keep_emits_the_first_point_as_its_own_delta() {
    let mut c = converter(InitialValue::Keep);
    let out = feed_ints(
        &mut c,
        vec![
            int_point(0, at(10), 100, &[]),
            int_point(0, at(20), 150, &[]),
        ],
    );
    assert_eq!(
        out,
        vec![Some((0, at(10), 100)), Some((at(10), at(20), 50))]
    );
}

#[test]
fn drop_never_emits_the_first_point_but_keeps_it_as_baseline() {
    let mut c = converter(InitialValue::Drop);
    let start = at(5);
    let out = feed_ints(
        &mut c,
        vec![
            int_point(start, at(10), 100, &[]),
            int_point(start, at(20), 130, &[]),
        ],
    );
    assert_eq!(out, vec![None, Some((at(10), at(20), 30))]);
    assert_eq!(c.tracked(), 1);
}

#[test]
fn auto_keeps_a_first_point_only_for_a_series_that_started_while_running() {
    let cases = [
        // (start, time, emitted)
        (0, at(10), false),       // start time unset
        (at(-60), at(10), false), // started before the converter
        (at(10), at(10), false),  // start equals timestamp
        (at(5), at(10), true),    // started after the converter
        (at(0), at(10), true),    // started the same instant
    ];
    for (start, time, emitted) in cases {
        let mut c = converter(InitialValue::Auto);
        let out = feed_ints(&mut c, vec![int_point(start, time, 42, &[])]);
        let expected = emitted.then_some((start, time, 42));
        assert_eq!(out, vec![expected], "start {start} time {time}");
        // Either way the next point is a delta from it.
        let next = feed_ints(&mut c, vec![int_point(start, time + SEC, 50, &[])]);
        assert_eq!(next, vec![Some((time, time + SEC, 8))]);
    }
}

#[test]
fn the_default_initial_value_is_auto() {
    assert_eq!(InitialValue::default(), InitialValue::Auto);
    assert_eq!(DeltaSettings::default().initial_value, InitialValue::Auto);
    assert_eq!(DeltaSettings::default().max_staleness, Duration::ZERO);
}

// ---- sums ----

#[test]
fn int_sums_become_steady_deltas() {
    let mut c = converter(InitialValue::Auto);
    let s = at(-60);
    let out = feed_ints(
        &mut c,
        vec![
            int_point(s, at(10), 0, &[]),
            int_point(s, at(20), 100, &[]),
            int_point(s, at(30), 200, &[]),
            int_point(s, at(40), 500, &[]),
            int_point(s, at(50), 500, &[]),
        ],
    );
    assert_eq!(
        out,
        vec![
            None,
            Some((at(10), at(20), 100)),
            Some((at(20), at(30), 100)),
            Some((at(30), at(40), 300)),
            Some((at(40), at(50), 0)),
        ]
    );
}

#[test]
fn double_sums_become_steady_deltas() {
    let mut c = converter(InitialValue::Auto);
    let s = at(-60);
    let mut values = Vec::new();
    for (t, v) in [(10, 1.5), (20, 4.0), (30, 4.25)] {
        let (out, _) = run(
            &mut c,
            batch(vec![counter(vec![double_point(s, at(t), v)])]),
            0,
        );
        values.extend(double_values(&out));
    }
    assert_eq!(values, vec![2.5, 0.25]);
}

#[test]
fn converted_metrics_are_delta_and_keep_name_unit_and_description() {
    let mut c = converter(InitialValue::Keep);
    let (out, stats) = run(
        &mut c,
        batch(vec![counter(vec![int_point(0, at(1), 5, &[])])]),
        0,
    );
    let m = metrics_of(&out)[0];
    assert_eq!(m.name, "requests");
    assert_eq!(m.unit, "1");
    assert_eq!(m.description, "requests description");
    assert_eq!(sum_of(m).aggregation_temporality, DELTA);
    assert!(sum_of(m).is_monotonic);
    assert_eq!(
        stats,
        DeltaStats {
            converted_points: 1,
            dropped_points: 0
        }
    );
}

#[test]
fn a_lower_value_is_a_reset_dropped_and_the_new_baseline() {
    // Upstream's example: 100, 105, 120, 100, 110 gives 5, 15, 10.
    let mut c = converter(InitialValue::Auto);
    let s = at(-60);
    let out = feed_ints(
        &mut c,
        [100, 105, 120, 100, 110]
            .iter()
            .enumerate()
            .map(|(i, v)| int_point(s, at(10 * (i as i64 + 1)), *v, &[]))
            .collect(),
    );
    let values: Vec<i64> = out.iter().flatten().map(|p| p.2).collect();
    assert_eq!(values, vec![5, 15, 10]);
    assert_eq!(out[3], None);
}

#[test]
fn a_lower_double_value_is_a_reset_too() {
    let mut c = converter(InitialValue::Keep);
    let mut values = Vec::new();
    for (t, v) in [(10, 10.0), (20, 3.0), (30, 7.0)] {
        let (out, _) = run(
            &mut c,
            batch(vec![counter(vec![double_point(0, at(t), v)])]),
            0,
        );
        values.extend(double_values(&out));
    }
    assert_eq!(values, vec![10.0, 4.0]);
}

#[test]
fn a_new_start_time_is_a_restart_under_each_initial_value() {
    let old = at(-60);
    let new = at(25);
    for (initial, expected) in [
        (InitialValue::Auto, Some((new, at(30), 7))),
        (InitialValue::Keep, Some((new, at(30), 7))),
        (InitialValue::Drop, None),
    ] {
        let mut c = converter(initial);
        let out = feed_ints(
            &mut c,
            vec![
                int_point(old, at(10), 100, &[]),
                int_point(old, at(20), 150, &[]),
                int_point(new, at(30), 7, &[]),
                int_point(new, at(40), 10, &[]),
            ],
        );
        assert_eq!(out[1], Some((at(10), at(20), 50)), "{initial:?}");
        assert_eq!(out[2], expected, "{initial:?}");
        assert_eq!(out[3], Some((at(30), at(40), 3)), "{initial:?}");
        assert_eq!(c.tracked(), 1, "a restart replaces the series' state");
    }
}

#[test]
fn a_restart_from_before_the_converter_started_is_dropped_under_auto() {
    let mut c = converter(InitialValue::Auto);
    let out = feed_ints(
        &mut c,
        vec![
            int_point(at(-60), at(10), 100, &[]),
            int_point(at(-30), at(20), 5, &[]),
            int_point(at(-30), at(30), 9, &[]),
        ],
    );
    assert_eq!(out, vec![None, None, Some((at(20), at(30), 4))]);
}

#[test]
fn out_of_order_and_duplicate_points_are_dropped_and_change_nothing() {
    let mut c = converter(InitialValue::Auto);
    let s = at(-60);
    let out = feed_ints(
        &mut c,
        vec![
            int_point(s, at(10), 10, &[]),
            int_point(s, at(30), 30, &[]),
            int_point(s, at(20), 20, &[]), // older
            int_point(s, at(30), 30, &[]), // duplicate
            int_point(s, at(30), 35, &[]), // same time, other value
            int_point(s, at(40), 45, &[]),
        ],
    );
    assert_eq!(
        out,
        vec![
            None,
            Some((at(10), at(30), 20)),
            None,
            None,
            None,
            Some((at(30), at(40), 15)),
        ]
    );
}

#[test]
fn several_points_of_one_series_in_one_batch_are_converted_in_order() {
    let mut c = converter(InitialValue::Auto);
    let s = at(-60);
    let (out, stats) = run(
        &mut c,
        batch(vec![counter(vec![
            int_point(s, at(10), 0, &[]),
            int_point(s, at(20), 100, &[]),
            int_point(s, at(30), 200, &[]),
            int_point(s, at(40), 500, &[]),
        ])]),
        0,
    );
    assert_eq!(
        int_points(&out),
        vec![
            (at(10), at(20), 100),
            (at(20), at(30), 100),
            (at(30), at(40), 300)
        ]
    );
    assert_eq!(
        stats,
        DeltaStats {
            converted_points: 3,
            dropped_points: 1
        }
    );
}

#[test]
fn no_recorded_value_points_are_dropped_and_change_nothing() {
    // Upstream's example: 0, 100, (none), 200, 400 with Keep-like output 100, 100, 200.
    let mut c = converter(InitialValue::Auto);
    let s = at(-60);
    let mut points: Vec<NumberDataPoint> = [0, 100, 0, 200, 400]
        .iter()
        .enumerate()
        .map(|(i, v)| int_point(s, at(10 * (i as i64 + 1)), *v, &[]))
        .collect();
    points[2].flags = NO_RECORDED_VALUE;
    let (out, stats) = run(&mut c, batch(vec![counter(points)]), 0);
    let values: Vec<i64> = int_points(&out).iter().map(|p| p.2).collect();
    assert_eq!(values, vec![100, 100, 200]);
    assert_eq!(stats.dropped_points, 2);
}

#[test]
fn nan_double_points_pass_untouched_and_change_nothing() {
    let mut c = converter(InitialValue::Auto);
    let s = at(-60);
    let (out, stats) = run(
        &mut c,
        batch(vec![counter(vec![
            double_point(s, at(10), 0.0),
            double_point(s, at(20), 100.0),
            double_point(s, at(30), f64::NAN),
            double_point(s, at(40), 150.0),
        ])]),
        0,
    );
    let points = &sum_of(metrics_of(&out)[0]).data_points;
    assert_eq!(points.len(), 3);
    assert_eq!(points[0].value, Some(NumberValue::AsDouble(100.0)));
    assert!(matches!(points[1].value, Some(NumberValue::AsDouble(v)) if v.is_nan()));
    assert_eq!(
        points[1].start_time_unix_nano, s,
        "the NaN point is not rewritten"
    );
    assert_eq!(points[2].value, Some(NumberValue::AsDouble(50.0)));
    assert_eq!(points[2].start_time_unix_nano, at(20));
    assert_eq!(stats.converted_points, 2);
    assert_eq!(stats.dropped_points, 1);
}

#[test]
fn extreme_int_values_do_not_overflow() {
    let mut c = converter(InitialValue::Keep);
    let out = feed_ints(
        &mut c,
        vec![
            int_point(0, at(1), i64::MIN, &[]),
            int_point(0, at(2), i64::MAX, &[]),
        ],
    );
    assert_eq!(out[1], Some((at(1), at(2), i64::MAX)));
}

#[test]
fn a_sum_point_without_a_value_is_dropped() {
    let mut c = converter(InitialValue::Keep);
    let mut p = int_point(0, at(1), 1, &[]);
    p.value = None;
    let (out, stats) = run(&mut c, batch(vec![counter(vec![p])]), 0);
    assert!(out.is_empty());
    assert_eq!(stats.dropped_points, 1);
}

#[test]
fn an_int_series_turning_double_is_another_series() {
    let mut c = converter(InitialValue::Drop);
    let s = at(-60);
    run(
        &mut c,
        batch(vec![counter(vec![int_point(s, at(10), 10, &[])])]),
        0,
    );
    let (out, _) = run(
        &mut c,
        batch(vec![counter(vec![double_point(s, at(20), 12.0)])]),
        0,
    );
    assert!(out.is_empty(), "a first point under drop");
    assert_eq!(c.tracked(), 2);
}

// ---- what is left alone ----

#[test]
fn non_monotonic_delta_gauge_and_summary_metrics_are_untouched() {
    let mut c = converter(InitialValue::Drop);
    let gauge = Metric {
        name: "g".to_string(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![int_point(0, at(1), 3, &[])],
        })),
        ..Default::default()
    };
    let summary = Metric {
        name: "s".to_string(),
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: at(1),
                count: 4,
                sum: 8.0,
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let input = batch(vec![
        sum_metric(
            "updown",
            CUMULATIVE,
            false,
            vec![int_point(0, at(1), 7, &[])],
        ),
        sum_metric("delta", DELTA, true, vec![int_point(0, at(1), 7, &[])]),
        histogram_metric(DELTA, vec![histogram_point(at(1), 1, 1.0, &[1, 0], &[5.0])]),
        gauge,
        summary,
    ]);
    for _ in 0..2 {
        let (out, stats) = run(&mut c, input.clone(), 0);
        assert_eq!(out, input);
        assert_eq!(stats, DeltaStats::default());
    }
    assert_eq!(c.tracked(), 0);
}

#[test]
fn metrics_that_select_refuses_are_untouched() {
    let mut c = converter(InitialValue::Drop);
    let input = batch(vec![
        sum_metric("a", CUMULATIVE, true, vec![int_point(0, at(1), 7, &[])]),
        sum_metric("b", CUMULATIVE, true, vec![int_point(0, at(1), 7, &[])]),
    ]);
    let mut out = input.clone();
    let stats = c.convert(&mut out, wall(0), &|m: &Metric| m.name == "a");
    let names: Vec<&str> = metrics_of(&out).iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["b"]);
    assert_eq!(
        sum_of(metrics_of(&out)[0]).aggregation_temporality,
        CUMULATIVE
    );
    assert_eq!(stats.dropped_points, 1);
}

#[test]
fn emptied_metrics_scopes_and_resources_are_removed_but_empty_input_is_kept() {
    let mut c = converter(InitialValue::Drop);
    let mut input = batch(vec![counter(vec![int_point(0, at(1), 1, &[])])]);
    input.push(ResourceMetrics::default());
    let (out, _) = run(&mut c, input, 0);
    assert_eq!(out, vec![ResourceMetrics::default()]);

    // A resource with another scope that still holds a metric keeps that scope only.
    let mut input = batch(vec![counter(vec![int_point(0, at(1), 1, &[])])]);
    input[0].scope_metrics.push(ScopeMetrics {
        metrics: vec![sum_metric(
            "kept",
            DELTA,
            true,
            vec![int_point(0, at(1), 1, &[])],
        )],
        ..Default::default()
    });
    let mut c = converter(InitialValue::Drop);
    let (out, _) = run(&mut c, input, 0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].scope_metrics.len(), 1);
    assert_eq!(out[0].scope_metrics[0].metrics[0].name, "kept");
}

// ---- histograms ----

fn histogram_of(out: &[ResourceMetrics]) -> &Histogram {
    match &metrics_of(out)[0].data {
        Some(Data::Histogram(h)) => h,
        other => panic!("not a histogram: {other:?}"),
    }
}

#[test]
fn histograms_become_deltas_of_count_sum_and_every_bucket() {
    // Upstream's example: counts 0, 100, 200, 500.
    let mut c = converter(InitialValue::Auto);
    let bounds = [1.0, 10.0];
    let (out, stats) = run(
        &mut c,
        batch(vec![histogram_metric(
            CUMULATIVE,
            vec![
                histogram_point(at(10), 0, 0.0, &[0, 0, 0], &bounds),
                histogram_point(at(20), 100, 100.0, &[50, 25, 25], &bounds),
                histogram_point(at(30), 200, 200.0, &[100, 50, 50], &bounds),
                histogram_point(at(40), 500, 500.0, &[250, 125, 125], &bounds),
            ],
        )]),
        0,
    );
    let h = histogram_of(&out);
    assert_eq!(h.aggregation_temporality, DELTA);
    let got: Vec<(u64, u64, u64, Option<f64>, Vec<u64>)> = h
        .data_points
        .iter()
        .map(|p| {
            (
                p.start_time_unix_nano,
                p.time_unix_nano,
                p.count,
                p.sum,
                p.bucket_counts.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (at(10), at(20), 100, Some(100.0), vec![50, 25, 25]),
            (at(20), at(30), 100, Some(100.0), vec![50, 25, 25]),
            (at(30), at(40), 300, Some(300.0), vec![150, 75, 75]),
        ]
    );
    for p in &h.data_points {
        assert_eq!((p.min, p.max), (None, None), "min and max are removed");
        assert_eq!(p.explicit_bounds, bounds.to_vec());
    }
    assert_eq!(stats.converted_points, 3);
}

#[test]
fn a_histogram_first_point_kept_loses_min_and_max() {
    let mut c = converter(InitialValue::Keep);
    let (out, _) = run(
        &mut c,
        batch(vec![histogram_metric(
            CUMULATIVE,
            vec![histogram_point(at(10), 2, 3.0, &[1, 1], &[5.0])],
        )]),
        0,
    );
    let p = &histogram_of(&out).data_points[0];
    assert_eq!((p.count, p.min, p.max), (2, None, None));
}

#[test]
fn a_histogram_reset_goes_out_as_it_is() {
    let mut c = converter(InitialValue::Drop);
    let bounds = [1.0];
    let mut outs = Vec::new();
    for p in [
        histogram_point(at(10), 10, 20.0, &[6, 4], &bounds),
        histogram_point(at(20), 3, 4.0, &[2, 1], &bounds),
        histogram_point(at(30), 5, 9.0, &[3, 2], &bounds),
    ] {
        let (out, _) = run(
            &mut c,
            batch(vec![histogram_metric(CUMULATIVE, vec![p])]),
            0,
        );
        outs.extend(histogram_of_opt(&out));
    }
    assert_eq!(
        outs,
        vec![
            (at(10), 3, Some(4.0), vec![2, 1]),
            (at(20), 2, Some(5.0), vec![1, 1])
        ]
    );
}

fn histogram_of_opt(out: &[ResourceMetrics]) -> Vec<(u64, u64, Option<f64>, Vec<u64>)> {
    if out.is_empty() {
        return Vec::new();
    }
    histogram_of(out)
        .data_points
        .iter()
        .map(|p| {
            (
                p.start_time_unix_nano,
                p.count,
                p.sum,
                p.bucket_counts.clone(),
            )
        })
        .collect()
}

#[test]
fn a_shrinking_bucket_is_a_reset_even_when_the_count_grows() {
    let mut c = converter(InitialValue::Drop);
    let bounds = [1.0];
    run(
        &mut c,
        batch(vec![histogram_metric(
            CUMULATIVE,
            vec![histogram_point(at(10), 10, 1.0, &[6, 4], &bounds)],
        )]),
        0,
    );
    let (out, _) = run(
        &mut c,
        batch(vec![histogram_metric(
            CUMULATIVE,
            vec![histogram_point(at(20), 11, 2.0, &[5, 6], &bounds)],
        )]),
        0,
    );
    assert_eq!(
        histogram_of_opt(&out),
        vec![(at(10), 11, Some(2.0), vec![5, 6])]
    );
}

#[test]
fn a_bucket_layout_change_drops_the_point_and_starts_over() {
    let mut c = converter(InitialValue::Drop);
    let mut outs = Vec::new();
    for p in [
        histogram_point(at(10), 4, 4.0, &[2, 2], &[1.0]),
        histogram_point(at(20), 6, 6.0, &[2, 2, 2], &[1.0, 2.0]), // more buckets
        histogram_point(at(30), 9, 9.0, &[3, 3, 3], &[1.0, 2.0]),
        histogram_point(at(40), 12, 12.0, &[4, 4, 4], &[1.0, 3.0]), // other bounds
        histogram_point(at(50), 15, 15.0, &[5, 5, 5], &[1.0, 3.0]),
    ] {
        let (out, _) = run(
            &mut c,
            batch(vec![histogram_metric(CUMULATIVE, vec![p])]),
            0,
        );
        outs.push(histogram_of_opt(&out));
    }
    assert_eq!(
        outs,
        vec![
            vec![],
            vec![],
            vec![(at(20), 3, Some(3.0), vec![1, 1, 1])],
            vec![],
            vec![(at(40), 3, Some(3.0), vec![1, 1, 1])],
        ]
    );
}

#[test]
fn a_nan_histogram_sum_stays_nan_and_keeps_the_previous_sum_as_baseline() {
    // Upstream's example: sums 0, 100, NaN, 500 give 100, NaN, 400.
    let mut c = converter(InitialValue::Auto);
    let bounds = [1.0, 2.0];
    let (out, _) = run(
        &mut c,
        batch(vec![histogram_metric(
            CUMULATIVE,
            vec![
                histogram_point(at(10), 0, 0.0, &[0, 0, 0], &bounds),
                histogram_point(at(20), 100, 100.0, &[50, 25, 25], &bounds),
                histogram_point(at(30), 200, f64::NAN, &[100, 50, 50], &bounds),
                histogram_point(at(40), 500, 500.0, &[250, 125, 125], &bounds),
            ],
        )]),
        0,
    );
    let sums: Vec<Option<f64>> = histogram_of(&out)
        .data_points
        .iter()
        .map(|p| p.sum)
        .collect();
    assert_eq!(sums[0], Some(100.0));
    assert!(sums[1].is_some_and(f64::is_nan));
    assert_eq!(sums[2], Some(400.0));
}

#[test]
fn a_histogram_without_sum_stays_without_sum() {
    let mut c = converter(InitialValue::Drop);
    let mut points = vec![
        histogram_point(at(10), 2, 0.0, &[1, 1], &[1.0]),
        histogram_point(at(20), 5, 0.0, &[3, 2], &[1.0]),
    ];
    for p in &mut points {
        p.sum = None;
    }
    let (out, _) = run(&mut c, batch(vec![histogram_metric(CUMULATIVE, points)]), 0);
    assert_eq!(histogram_of_opt(&out), vec![(at(10), 3, None, vec![2, 1])]);
}

#[test]
fn no_recorded_value_histogram_points_are_dropped() {
    let mut c = converter(InitialValue::Auto);
    let bounds = [1.0, 2.0];
    let mut points = vec![
        histogram_point(at(10), 0, 0.0, &[0, 0, 0], &bounds),
        histogram_point(at(20), 100, 100.0, &[50, 25, 25], &bounds),
        histogram_point(at(30), 0, 0.0, &[0, 0, 0], &bounds),
        histogram_point(at(40), 500, 500.0, &[250, 125, 125], &bounds),
    ];
    points[2].flags = NO_RECORDED_VALUE;
    let (out, _) = run(&mut c, batch(vec![histogram_metric(CUMULATIVE, points)]), 0);
    assert_eq!(
        histogram_of_opt(&out),
        vec![
            (at(10), 100, Some(100.0), vec![50, 25, 25]),
            (at(20), 400, Some(400.0), vec![200, 100, 100])
        ]
    );
}

// ---- exponential histograms ----

type ExpOut = (u64, u64, u64, (i32, Vec<u64>), (i32, Vec<u64>));

fn exp_outputs(out: &[ResourceMetrics]) -> Vec<ExpOut> {
    if out.is_empty() {
        return Vec::new();
    }
    let Some(Data::ExponentialHistogram(h)) = &metrics_of(out)[0].data else {
        panic!("not an exponential histogram");
    };
    assert_eq!(h.aggregation_temporality, DELTA);
    h.data_points
        .iter()
        .map(|p| {
            assert_eq!((p.min, p.max), (None, None));
            let side = |b: &Option<Buckets>| {
                b.as_ref()
                    .map_or((0, Vec::new()), |b| (b.offset, b.bucket_counts.clone()))
            };
            (
                p.start_time_unix_nano,
                p.count,
                p.zero_count,
                side(&p.positive),
                side(&p.negative),
            )
        })
        .collect()
}

fn feed_exp(
    c: &mut DeltaConverter,
    points: Vec<ExponentialHistogramDataPoint>,
) -> Vec<Vec<ExpOut>> {
    points
        .into_iter()
        .map(|p| {
            let (out, _) = run(c, batch(vec![exp_metric(vec![p])]), 0);
            exp_outputs(&out)
        })
        .collect()
}

#[test]
fn exponential_histograms_become_deltas_with_moving_offsets() {
    let mut c = converter(InitialValue::Drop);
    let outs = feed_exp(
        &mut c,
        vec![
            exp_point(at(10), 2, (1, 0.0), (3, &[1, 2]), (0, &[1])),
            // A lower value appeared (offset 2) and a higher one (bucket 5).
            exp_point(at(20), 2, (2, 0.0), (2, &[1, 2, 4, 1]), (0, &[1, 1])),
        ],
    );
    assert_eq!(outs[0], vec![]);
    assert_eq!(
        outs[1],
        vec![(at(10), 7, 1, (2, vec![1, 1, 2, 1]), (0, vec![0, 1]))]
    );
    let (out, _) = run(
        &mut c,
        batch(vec![exp_metric(vec![exp_point(
            at(30),
            2,
            (2, 0.0),
            (2, &[1, 2, 4, 1]),
            (0, &[1, 1]),
        )])]),
        0,
    );
    let Some(Data::ExponentialHistogram(h)) = &metrics_of(&out)[0].data else {
        panic!()
    };
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.scale),
        (0, Some(0.0), 2),
        "no change is a zero delta"
    );
}

#[test]
fn a_lower_scale_merges_the_previous_buckets_before_subtracting() {
    let mut c = converter(InitialValue::Drop);
    let outs = feed_exp(
        &mut c,
        vec![
            // Scale 1: buckets 2..=5 hold 1, 2, 3, 4; -1 holds 1.
            exp_point(at(10), 1, (0, 0.0), (2, &[1, 2, 3, 4]), (-1, &[1])),
            // Scale 0: bucket i holds old buckets 2i and 2i+1, -1 holds old -2 and -1.
            exp_point(at(20), 0, (0, 0.0), (1, &[4, 9]), (-1, &[3])),
        ],
    );
    assert_eq!(
        outs[1],
        vec![(at(10), 5, 0, (1, vec![1, 2]), (-1, vec![2]))]
    );
}

#[test]
fn a_raised_zero_threshold_moves_the_previous_low_buckets_into_the_zero_count() {
    let mut c = converter(InitialValue::Drop);
    // Scale 0: bucket i covers (2^i, 2^(i+1)]; a threshold of 4 swallows buckets up to 1.
    let outs = feed_exp(
        &mut c,
        vec![
            exp_point(at(10), 0, (1, 0.5), (0, &[2, 3, 5]), (0, &[1])),
            exp_point(at(20), 0, (8, 4.0), (2, &[6]), (0, &[])),
        ],
    );
    assert_eq!(outs[1], vec![(at(10), 2, 1, (2, vec![1]), (0, vec![]))]);
}

#[test]
fn exponential_resets_drop_the_point_and_start_over() {
    for (label, second) in [
        (
            "lower count",
            exp_point(at(20), 0, (0, 0.0), (0, &[1]), (0, &[])),
        ),
        (
            "higher scale",
            exp_point(at(20), 1, (1, 0.5), (0, &[5, 5]), (0, &[])),
        ),
        (
            "lower zero threshold",
            exp_point(at(20), 0, (1, 0.1), (0, &[9]), (0, &[])),
        ),
        (
            "lower zero count",
            exp_point(at(20), 0, (0, 0.5), (0, &[9]), (0, &[])),
        ),
        (
            "a bucket gone",
            exp_point(at(20), 0, (1, 0.5), (1, &[9]), (0, &[])),
        ),
        (
            "a bucket shrank",
            exp_point(at(20), 0, (1, 0.5), (0, &[2, 9]), (0, &[])),
        ),
    ] {
        let mut c = converter(InitialValue::Drop);
        let first = exp_point(at(10), 0, (1, 0.5), (0, &[3, 1]), (0, &[]));
        let mut third = second.clone();
        third.time_unix_nano = at(30);
        third.count += 2;
        third.zero_count += 2;
        let outs = feed_exp(&mut c, vec![first, second, third]);
        assert_eq!(outs[1], vec![], "{label}");
        assert_eq!(
            outs[2].len(),
            1,
            "{label}: the reset point is the new baseline"
        );
        assert_eq!(outs[2][0].1, 2, "{label}");
        assert_eq!(outs[2][0].2, 2, "{label}");
    }
}

#[test]
fn exponential_histograms_with_absurd_scales_do_not_panic() {
    let mut c = converter(InitialValue::Keep);
    feed_exp(
        &mut c,
        vec![
            exp_point(
                at(10),
                i32::MAX,
                (0, f64::MIN_POSITIVE),
                (i32::MAX, &[1, 2]),
                (i32::MIN, &[1]),
            ),
            exp_point(
                at(20),
                i32::MIN,
                (0, f64::MAX),
                (i32::MIN, &[3, 4]),
                (i32::MAX, &[2]),
            ),
            exp_point(at(30), i32::MIN, (9, f64::INFINITY), (0, &[]), (0, &[])),
            exp_point(at(40), i32::MIN, (9, f64::NAN), (0, &[]), (0, &[])),
        ],
    );
}

// ---- staleness ----

#[test]
fn series_unseen_for_max_staleness_are_forgotten() {
    let mut c = DeltaConverter::with_start_time(
        DeltaSettings {
            max_staleness: Duration::from_secs(60),
            initial_value: InitialValue::Drop,
        },
        started(),
    );
    let s = at(-60);
    let point = |t: i64, v: i64, who: &str| counter(vec![int_point(s, at(t), v, &[("who", who)])]);
    run(&mut c, batch(vec![point(1, 10, "a"), point(1, 10, "b")]), 0);
    assert_eq!(c.tracked(), 2);
    // "a" stays fresh; "b" is not seen again.
    let (out, _) = run(&mut c, batch(vec![point(50, 15, "a")]), 50);
    assert_eq!(int_points(&out).len(), 1);
    assert_eq!(c.tracked(), 2, "nothing is stale yet");
    run(&mut c, batch(vec![point(100, 20, "a")]), 100);
    assert_eq!(c.tracked(), 1, "b was last seen 100s ago");
    // Once forgotten, a series starts over: its next point is a first point.
    let (out, _) = run(&mut c, batch(vec![point(101, 30, "b")]), 101);
    assert!(out.is_empty());
    assert_eq!(c.tracked(), 2);
}

#[test]
fn a_stale_series_starts_over_even_before_a_sweep() {
    let mut c = DeltaConverter::with_start_time(
        DeltaSettings {
            max_staleness: Duration::from_secs(60),
            initial_value: InitialValue::Drop,
        },
        started(),
    );
    let s = at(-60);
    run(
        &mut c,
        batch(vec![counter(vec![int_point(s, at(1), 10, &[])])]),
        0,
    );
    // Seen at 0; the sweep at 60 keeps it (not older than 60s); at 61, too soon for
    // another sweep, it is older than max_staleness.
    run(
        &mut c,
        batch(vec![sum_metric(
            "other",
            CUMULATIVE,
            true,
            vec![int_point(s, at(30), 1, &[])],
        )]),
        60,
    );
    assert_eq!(c.tracked(), 2);
    let (out, _) = run(
        &mut c,
        batch(vec![counter(vec![int_point(s, at(61), 20, &[])])]),
        61,
    );
    assert!(out.is_empty(), "a first point again under drop");
}

#[test]
fn zero_max_staleness_never_forgets() {
    let mut c = converter(InitialValue::Drop);
    let s = at(-60);
    run(
        &mut c,
        batch(vec![counter(vec![int_point(s, at(1), 10, &[])])]),
        0,
    );
    assert_eq!(c.remove_stale(wall(1_000_000)), 0);
    let (out, _) = run(
        &mut c,
        batch(vec![counter(vec![int_point(s, at(2), 12, &[])])]),
        1_000_000,
    );
    assert_eq!(int_points(&out), vec![(at(1), at(2), 2)]);
}

#[test]
fn remove_stale_can_be_called_directly() {
    let mut c = DeltaConverter::with_start_time(
        DeltaSettings {
            max_staleness: Duration::from_secs(10),
            initial_value: InitialValue::Drop,
        },
        started(),
    );
    run(
        &mut c,
        batch(vec![counter(vec![int_point(0, at(1), 1, &[])])]),
        0,
    );
    assert_eq!(c.remove_stale(wall(10)), 0);
    assert_eq!(c.remove_stale(wall(11)), 1);
    assert_eq!(c.tracked(), 0);
}

// ---- series identity ----

#[test]
fn many_series_are_kept_apart() {
    let mut c = converter(InitialValue::Drop);
    let s = at(-60);
    let n = 5_000;
    let round = |c: &mut DeltaConverter, t: i64, factor: i64| {
        let points = (0..n)
            .map(|i| int_point(s, at(t), i * factor, &[("id", &i.to_string())]))
            .collect();
        run(c, batch(vec![counter(points)]), 0)
    };
    round(&mut c, 10, 1);
    assert_eq!(c.tracked(), n as usize);
    let (out, stats) = round(&mut c, 20, 3);
    assert_eq!(stats.converted_points, n as u64);
    for (i, p) in int_points(&out).iter().enumerate() {
        assert_eq!(p.2, 2 * i as i64);
    }
}

#[test]
fn attribute_order_does_not_make_another_series() {
    let mut c = converter(InitialValue::Drop);
    let s = at(-60);
    let mut first = batch_with(
        &[("service.name", "api"), ("host", "h1")],
        vec![counter(vec![int_point(
            s,
            at(1),
            10,
            &[("a", "1"), ("b", "2")],
        )])],
    );
    if let Some(scope) = first[0].scope_metrics[0].scope.as_mut() {
        scope.attributes = attrs(&[("x", "1"), ("y", "2")]);
    }
    let mut second = batch_with(
        &[("host", "h1"), ("service.name", "api")],
        vec![counter(vec![int_point(
            s,
            at(2),
            15,
            &[("b", "2"), ("a", "1")],
        )])],
    );
    if let Some(scope) = second[0].scope_metrics[0].scope.as_mut() {
        scope.attributes = attrs(&[("y", "2"), ("x", "1")]);
    }
    c.convert(&mut first, wall(0), &all);
    c.convert(&mut second, wall(0), &all);
    assert_eq!(int_points(&second), vec![(at(1), at(2), 5)]);
    assert_eq!(c.tracked(), 1);
}

#[test]
fn whatever_names_a_series_keeps_series_apart() {
    let s = at(-60);
    let base = || batch(vec![counter(vec![int_point(s, at(1), 10, &[("a", "1")])])]);
    let variants: Vec<(&str, Box<dyn Fn(&mut Vec<ResourceMetrics>)>)> = vec![
        (
            "resource",
            Box::new(|b| {
                b[0].resource = Some(Resource {
                    attributes: attrs(&[("service.name", "web")]),
                    ..Default::default()
                })
            }),
        ),
        ("no resource", Box::new(|b| b[0].resource = None)),
        (
            "scope name",
            Box::new(|b| b[0].scope_metrics[0].scope.as_mut().unwrap().name = "other".into()),
        ),
        (
            "scope version",
            Box::new(|b| b[0].scope_metrics[0].scope.as_mut().unwrap().version = "2.0".into()),
        ),
        (
            "scope attributes",
            Box::new(|b| {
                b[0].scope_metrics[0].scope.as_mut().unwrap().attributes = attrs(&[("k", "v")])
            }),
        ),
        (
            "metric name",
            Box::new(|b| b[0].scope_metrics[0].metrics[0].name = "other".into()),
        ),
        (
            "unit",
            Box::new(|b| b[0].scope_metrics[0].metrics[0].unit = "By".into()),
        ),
        (
            "attribute value",
            Box::new(|b| {
                if let Some(Data::Sum(s)) = &mut b[0].scope_metrics[0].metrics[0].data {
                    s.data_points[0].attributes = attrs(&[("a", "2")]);
                }
            }),
        ),
        (
            "attribute key",
            Box::new(|b| {
                if let Some(Data::Sum(s)) = &mut b[0].scope_metrics[0].metrics[0].data {
                    s.data_points[0].attributes = attrs(&[("b", "1")]);
                }
            }),
        ),
        (
            "extra attribute",
            Box::new(|b| {
                if let Some(Data::Sum(s)) = &mut b[0].scope_metrics[0].metrics[0].data {
                    s.data_points[0].attributes.push(kv("c", "3"));
                }
            }),
        ),
        (
            "attribute type",
            Box::new(|b| {
                if let Some(Data::Sum(s)) = &mut b[0].scope_metrics[0].metrics[0].data {
                    s.data_points[0].attributes[0].value = Some(AnyValue {
                        value: Some(any_value::Value::IntValue(1)),
                    });
                }
            }),
        ),
    ];
    for (label, change) in variants {
        let mut c = converter(InitialValue::Drop);
        let mut first = base();
        c.convert(&mut first, wall(0), &all);
        let mut other = base();
        change(&mut other);
        if let Some(Data::Sum(s)) = &mut other[0].scope_metrics[0].metrics[0].data {
            s.data_points[0].time_unix_nano = at(2);
            s.data_points[0].value = Some(NumberValue::AsInt(15));
        }
        c.convert(&mut other, wall(0), &all);
        assert!(other.is_empty(), "{label}: a first point of another series");
        assert_eq!(c.tracked(), 2, "{label}");
    }
}

#[test]
fn the_same_metric_in_two_batches_and_resources_is_tracked_per_resource() {
    let mut c = converter(InitialValue::Drop);
    let s = at(-60);
    let mut input = batch_with(
        &[("host", "a")],
        vec![counter(vec![int_point(s, at(1), 10, &[])])],
    );
    input.extend(batch_with(
        &[("host", "b")],
        vec![counter(vec![int_point(s, at(1), 100, &[])])],
    ));
    c.convert(&mut input, wall(0), &all);
    let mut input = batch_with(
        &[("host", "a")],
        vec![counter(vec![int_point(s, at(2), 11, &[])])],
    );
    input.extend(batch_with(
        &[("host", "b")],
        vec![counter(vec![int_point(s, at(2), 150, &[])])],
    ));
    c.convert(&mut input, wall(0), &all);
    let values: Vec<i64> = int_points(&input).iter().map(|p| p.2).collect();
    assert_eq!(values, vec![1, 50]);
}

#[test]
fn identity_hashing_is_order_independent_for_nested_maps_and_ordered_for_arrays() {
    let keys = identity::IdentityKeys::new();
    let map = |pairs: &[(&str, &str)]| AnyValue {
        value: Some(any_value::Value::KvlistValue(
            crate::pdata::common::KeyValueList {
                values: attrs(pairs),
            },
        )),
    };
    let array = |items: &[&str]| AnyValue {
        value: Some(any_value::Value::ArrayValue(
            crate::pdata::common::ArrayValue {
                values: items
                    .iter()
                    .map(|s| AnyValue {
                        value: Some(any_value::Value::StringValue(s.to_string())),
                    })
                    .collect(),
            },
        )),
    };
    let with = |v: AnyValue| {
        vec![KeyValue {
            key: "k".into(),
            value: Some(v),
            ..Default::default()
        }]
    };
    assert_eq!(
        keys.attributes(&with(map(&[("a", "1"), ("b", "2")]))),
        keys.attributes(&with(map(&[("b", "2"), ("a", "1")])))
    );
    assert_ne!(
        keys.attributes(&with(array(&["a", "b"]))),
        keys.attributes(&with(array(&["b", "a"])))
    );
    assert_ne!(
        keys.attributes(&attrs(&[("ab", "c")])),
        keys.attributes(&attrs(&[("a", "bc")]))
    );
    assert_ne!(keys.attributes(&[]), keys.attributes(&attrs(&[("", "")])));
    // Two converters key differently; neither key is predictable from outside.
    let other = identity::IdentityKeys::new();
    assert_ne!(
        keys.attributes(&attrs(&[("a", "1")])),
        other.attributes(&attrs(&[("a", "1")]))
    );
}

#[test]
fn the_converter_can_be_sent_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    send(&converter(InitialValue::Auto));
}

#[test]
fn bucket_helpers_coarsen_negative_indices_and_find_threshold_buckets() {
    use super::buckets::{threshold_index, ExpBuckets};
    let mut b = ExpBuckets {
        offset: -3,
        counts: vec![1, 2, 3, 4],
    };
    b.coarsen(1);
    // -3 and -2 go to -2 and -1; -1 to -1; 0 to 0.
    assert_eq!(
        b,
        ExpBuckets {
            offset: -2,
            counts: vec![1, 5, 4]
        }
    );
    b.coarsen(200);
    assert_eq!(
        b,
        ExpBuckets {
            offset: -1,
            counts: vec![6, 4]
        }
    );
    assert_eq!(threshold_index(4.0, 0), 1);
    assert_eq!(threshold_index(1.0, 0), -1);
    assert_eq!(threshold_index(2.0, 1), 1);
    assert_eq!(threshold_index(f64::NAN, 3), 0);
    let mut b = ExpBuckets {
        offset: 0,
        counts: vec![2, 3, 5],
    };
    assert_eq!(b.take_up_to(1), 5);
    assert_eq!(b.counts, vec![0, 0, 5]);
}
