//! The store's behaviour: naming and labels in the exposition, delta accumulation,
//! resets, expiration, and what cannot be shown.

use super::*;
use crate::prometheus::exposition::{write, Format};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope};
use ferrotel_pipeline::pdata::metrics::{
    exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
    ExponentialHistogram, Gauge, Histogram, ScopeMetrics, Sum, Summary,
};
use ferrotel_pipeline::pdata::resource::Resource;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn settings() -> Settings {
    Settings {
        namer: MetricNamer::new("", true),
        without_scope_info: false,
        const_labels: Vec::new(),
        send_timestamps: false,
        expiration: Duration::from_secs(300),
        resource_to_labels: None,
        target_info_name: TARGET_INFO.to_string(),
    }
}

fn store() -> Store {
    Store::new("prometheus", settings())
}

fn metric(name: &str, unit: &str, description: &str, data: MetricData) -> Metric {
    Metric {
        name: name.to_string(),
        unit: unit.to_string(),
        description: description.to_string(),
        data: Some(data),
        ..Default::default()
    }
}

/// One resource (`service.name` a, `service.instance.id` i unless `resource` says
/// otherwise) with one scope holding `metrics`.
fn batch(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "lib".to_string(),
                version: "1.0".to_string(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn service() -> Vec<KeyValue> {
    vec![kv("service.name", "a"), kv("service.instance.id", "i")]
}

fn number(attrs: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn int(start: u64, time: u64, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn sum(temporality: i32, monotonic: bool, points: Vec<NumberDataPoint>) -> MetricData {
    MetricData::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

fn gauge(points: Vec<NumberDataPoint>) -> MetricData {
    MetricData::Gauge(Gauge {
        data_points: points,
    })
}

fn histogram(temporality: i32, points: Vec<HistogramDataPoint>) -> MetricData {
    MetricData::Histogram(Histogram {
        data_points: points,
        aggregation_temporality: temporality,
    })
}

fn hpoint(start: u64, time: u64, bounds: &[f64], counts: &[u64], sum: f64) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn text(store: &mut Store, now: Instant) -> String {
    write(&store.families(now), Format::Text)
}

/// The sample lines of `text` (no comments), without the scope and resource labels every
/// series of these tests carries.
fn samples(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.replace("instance=\"i\",", "")
                .replace("job=\"a\",", "")
                .replace(",otel_scope_name=\"lib\",otel_scope_schema_url=\"\",otel_scope_version=\"1.0\"", "")
                .replace("otel_scope_name=\"lib\",otel_scope_schema_url=\"\",otel_scope_version=\"1.0\"", "")
                .replace("{}", "")
                .replace("{,", "{")
        })
        .filter(|l| !l.starts_with("target_info"))
        .collect()
}

#[test]
fn exposition_of_every_type() {
    let mut s = store();
    let now = Instant::now();
    let summary = MetricData::Summary(Summary {
        data_points: vec![SummaryDataPoint {
            start_time_unix_nano: T0,
            time_unix_nano: T0 + SEC,
            count: 4,
            sum: 10.0,
            quantile_values: vec![
                ValueAtQuantile {
                    quantile: 0.99,
                    value: 4.0,
                },
                ValueAtQuantile {
                    quantile: 0.5,
                    value: 2.0,
                },
            ],
            ..Default::default()
        }],
    });
    s.accumulate(
        &batch(
            vec![
                kv("service.name", "checkout"),
                kv("service.namespace", "shop"),
                kv("service.instance.id", "pod-1"),
                kv("host.name", "h1"),
            ],
            vec![
                metric(
                    "system.memory.utilization",
                    "1",
                    "Memory in use",
                    gauge(vec![number(vec![kv("state", "used")], 0, T0, 0.25)]),
                ),
                metric(
                    "http.server.requests",
                    "{requests}",
                    "Requests",
                    sum(
                        CUMULATIVE,
                        true,
                        vec![number(vec![kv("http.method", "GET")], T0, T0 + SEC, 7.0)],
                    ),
                ),
                metric(
                    "queue.size",
                    "{items}",
                    "Items queued",
                    sum(CUMULATIVE, false, vec![int(T0, T0 + SEC, -3)]),
                ),
                metric(
                    "http.server.duration",
                    "ms",
                    "Duration",
                    histogram(
                        CUMULATIVE,
                        vec![hpoint(T0, T0 + SEC, &[5.0, 10.0], &[1, 2, 1], 27.5)],
                    ),
                ),
                metric("rpc.latency", "s", "Latency", summary),
            ],
        ),
        now,
    );
    let want = r#"# HELP http_server_duration_milliseconds Duration
# TYPE http_server_duration_milliseconds histogram
http_server_duration_milliseconds_bucket{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0",le="5"} 1
http_server_duration_milliseconds_bucket{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0",le="10"} 3
http_server_duration_milliseconds_bucket{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0",le="+Inf"} 4
http_server_duration_milliseconds_sum{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0"} 27.5
http_server_duration_milliseconds_count{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0"} 4
# HELP http_server_requests_total Requests
# TYPE http_server_requests_total counter
http_server_requests_total{http_method="GET",instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0"} 7
# HELP queue_size Items queued
# TYPE queue_size gauge
queue_size{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0"} -3
# HELP rpc_latency_seconds Latency
# TYPE rpc_latency_seconds summary
rpc_latency_seconds{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0",quantile="0.5"} 2
rpc_latency_seconds{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0",quantile="0.99"} 4
rpc_latency_seconds_sum{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0"} 10
rpc_latency_seconds_count{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0"} 4
# HELP system_memory_utilization_ratio Memory in use
# TYPE system_memory_utilization_ratio gauge
system_memory_utilization_ratio{instance="pod-1",job="shop/checkout",otel_scope_name="lib",otel_scope_schema_url="",otel_scope_version="1.0",state="used"} 0.25
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{host_name="h1",instance="pod-1",job="shop/checkout"} 1
"#;
    assert_eq!(text(&mut s, now), want);
    // The same again: series are stable between scrapes.
    assert_eq!(text(&mut s, now), want);
}

#[test]
fn delta_sums_add_up() {
    let mut s = store();
    let now = Instant::now();
    let counter = |points| metric("requests", "", "", sum(DELTA, true, points));
    s.accumulate(
        &batch(service(), vec![counter(vec![int(T0, T0 + SEC, 3)])]),
        now,
    );
    s.accumulate(
        &batch(
            service(),
            vec![counter(vec![int(T0 + SEC, T0 + 2 * SEC, 4)])],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now)), ["requests_total 7"]);
    // A point older than the one held is ignored.
    s.accumulate(
        &batch(service(), vec![counter(vec![int(T0, T0 + SEC, 100)])]),
        now,
    );
    assert_eq!(samples(&text(&mut s, now)), ["requests_total 7"]);
    // A gap (the start is not the last end): the sender restarted, counting starts over.
    s.accumulate(
        &batch(
            service(),
            vec![counter(vec![int(T0 + 5 * SEC, T0 + 6 * SEC, 2)])],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now)), ["requests_total 2"]);
    s.accumulate(
        &batch(
            service(),
            vec![counter(vec![int(T0 + 6 * SEC, T0 + 7 * SEC, 5)])],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now)), ["requests_total 7"]);
    // Doubles add up too, and several points of one batch in order.
    let doubles = |points| metric("data.sent", "By", "", sum(DELTA, true, points));
    s.accumulate(
        &batch(
            service(),
            vec![doubles(vec![
                number(vec![], T0, T0 + SEC, 0.5),
                number(vec![], T0 + SEC, T0 + 2 * SEC, 0.25),
            ])],
        ),
        now,
    );
    assert_eq!(
        samples(&text(&mut s, now)),
        ["data_sent_bytes_total 0.75", "requests_total 7"]
    );
}

#[test]
fn sums_that_are_not_kept() {
    let mut s = store();
    let now = Instant::now();
    s.accumulate(
        &batch(
            service(),
            vec![
                // Delta up-down counters cannot be made cumulative without knowing the start.
                metric("a", "", "", sum(DELTA, false, vec![int(T0, T0 + SEC, 1)])),
                metric("b", "", "", sum(0, true, vec![int(T0, T0 + SEC, 1)])),
                metric(
                    "c",
                    "",
                    "",
                    sum(CUMULATIVE, true, vec![int(T0, T0 + SEC, 1)]),
                ),
            ],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now)), ["c_total 1"]);
    // Cumulative points replace each other, newest first.
    let c = |v, t| metric("c", "", "", sum(CUMULATIVE, true, vec![int(T0, t, v)]));
    s.accumulate(&batch(service(), vec![c(5, T0 + 3 * SEC)]), now);
    s.accumulate(&batch(service(), vec![c(4, T0 + 2 * SEC)]), now);
    assert_eq!(samples(&text(&mut s, now)), ["c_total 5"]);
    // A smaller value later is a reset, shown as it is.
    s.accumulate(&batch(service(), vec![c(1, T0 + 4 * SEC)]), now);
    assert_eq!(samples(&text(&mut s, now)), ["c_total 1"]);
}

#[test]
fn delta_histograms_add_up() {
    let mut s = store();
    let now = Instant::now();
    let h = |p| metric("latency", "s", "", histogram(DELTA, vec![p]));
    s.accumulate(
        &batch(
            service(),
            vec![h(hpoint(T0, T0 + SEC, &[1.0, 2.0], &[1, 0, 1], 3.5))],
        ),
        now,
    );
    s.accumulate(
        &batch(
            service(),
            vec![h(hpoint(
                T0 + SEC,
                T0 + 2 * SEC,
                &[1.0, 2.0],
                &[2, 1, 0],
                2.0,
            ))],
        ),
        now,
    );
    assert_eq!(
        samples(&text(&mut s, now)),
        [
            "latency_seconds_bucket{le=\"1\"} 3",
            "latency_seconds_bucket{le=\"2\"} 4",
            "latency_seconds_bucket{le=\"+Inf\"} 5",
            "latency_seconds_sum 5.5",
            "latency_seconds_count 5",
        ]
    );
    // Starting before the held interval ended: a second writer, dropped.
    s.accumulate(
        &batch(
            service(),
            vec![h(hpoint(T0, T0 + 3 * SEC, &[1.0, 2.0], &[9, 9, 9], 99.0))],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now))[4], "latency_seconds_count 5");
    // Starting after it: a restart.
    s.accumulate(
        &batch(
            service(),
            vec![h(hpoint(
                T0 + 9 * SEC,
                T0 + 10 * SEC,
                &[1.0, 2.0],
                &[1, 0, 0],
                0.5,
            ))],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now))[4], "latency_seconds_count 1");
    // Other bounds: the newer point replaces the sum.
    s.accumulate(
        &batch(
            service(),
            vec![h(hpoint(
                T0 + 10 * SEC,
                T0 + 11 * SEC,
                &[5.0],
                &[2, 0],
                1.0,
            ))],
        ),
        now,
    );
    assert_eq!(
        samples(&text(&mut s, now)),
        [
            "latency_seconds_bucket{le=\"5\"} 2",
            "latency_seconds_bucket{le=\"+Inf\"} 2",
            "latency_seconds_sum 1",
            "latency_seconds_count 2",
        ]
    );
}

#[test]
fn histogram_buckets_are_cumulative_and_well_formed() {
    let mut s = store();
    let now = Instant::now();
    let mut odd = hpoint(T0, T0 + SEC, &[2.0, 1.0, 2.0], &[1, 2, 3], 1.0);
    odd.count = 10;
    // Fewer counts than buckets: the missing ones are 0.
    let mut short = hpoint(T0, T0 + SEC, &[1.0, 2.0, 3.0], &[4], 1.0);
    short.count = 4;
    short.attributes = vec![kv("k", "short")];
    let mut inf = hpoint(T0, T0 + SEC, &[1.0, f64::INFINITY], &[1, 1, 0], 1.0);
    inf.attributes = vec![kv("k", "inf")];
    s.accumulate(
        &batch(
            service(),
            vec![metric(
                "h",
                "",
                "",
                histogram(CUMULATIVE, vec![odd, short, inf]),
            )],
        ),
        now,
    );
    assert_eq!(
        samples(&text(&mut s, now)),
        [
            // Bounds sorted, the first count of a repeated bound used.
            "h_bucket{le=\"1\"} 2",
            "h_bucket{le=\"2\"} 3",
            "h_bucket{le=\"+Inf\"} 10",
            "h_sum 1",
            "h_count 10",
            "h_bucket{k=\"inf\",le=\"1\"} 1",
            "h_bucket{k=\"inf\",le=\"+Inf\"} 2",
            "h_sum{k=\"inf\"} 1",
            "h_count{k=\"inf\"} 2",
            "h_bucket{k=\"short\",le=\"1\"} 4",
            "h_bucket{k=\"short\",le=\"2\"} 4",
            "h_bucket{k=\"short\",le=\"3\"} 4",
            "h_bucket{k=\"short\",le=\"+Inf\"} 4",
            "h_sum{k=\"short\"} 1",
            "h_count{k=\"short\"} 4",
        ]
    );
}

#[test]
fn exponential_histograms_show_count_and_sum() {
    let mut s = store();
    let now = Instant::now();
    let point = |start, time, count, scale| ExponentialHistogramDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        count,
        sum: Some(count as f64 * 1.5),
        scale,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![count],
        }),
        ..Default::default()
    };
    let e = |p| {
        metric(
            "payload",
            "By",
            "",
            MetricData::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![p],
                aggregation_temporality: DELTA,
            }),
        )
    };
    s.accumulate(&batch(service(), vec![e(point(T0, T0 + SEC, 2, 3))]), now);
    s.accumulate(
        &batch(service(), vec![e(point(T0 + SEC, T0 + 2 * SEC, 3, 3))]),
        now,
    );
    assert_eq!(
        samples(&text(&mut s, now)),
        [
            "payload_bytes_bucket{le=\"+Inf\"} 5",
            "payload_bytes_sum 7.5",
            "payload_bytes_count 5",
        ]
    );
    let mut t = store();
    t.accumulate(&batch(service(), vec![e(point(T0, T0 + SEC, 2, -5))]), now);
    assert_eq!(t.len(), 0);
}

#[test]
fn series_expire() {
    let mut s = Store::new(
        "prometheus",
        Settings {
            expiration: Duration::from_secs(60),
            ..settings()
        },
    );
    let t = Instant::now();
    let g = |name: &str, v| metric(name, "", "", gauge(vec![number(vec![], 0, T0, v)]));
    s.accumulate(&batch(service(), vec![g("old", 1.0), g("kept", 1.0)]), t);
    s.accumulate(
        &batch(service(), vec![g("kept", 2.0)]),
        t + Duration::from_secs(50),
    );
    assert_eq!(s.len(), 2);
    assert_eq!(
        samples(&text(&mut s, t + Duration::from_secs(60))),
        ["kept 2", "old 1"]
    );
    assert_eq!(
        samples(&text(&mut s, t + Duration::from_secs(61))),
        ["kept 2"]
    );
    assert_eq!(s.len(), 1);
    s.expire(t + Duration::from_secs(111));
    assert_eq!(s.len(), 0);
    // With nothing left, target_info goes too.
    assert_eq!(text(&mut s, t + Duration::from_secs(111)), "");
}

#[test]
fn no_recorded_value_ends_a_series() {
    let mut s = store();
    let now = Instant::now();
    s.accumulate(
        &batch(
            service(),
            vec![metric("g", "", "", gauge(vec![number(vec![], 0, T0, 1.0)]))],
        ),
        now,
    );
    let mut stale = number(vec![], 0, T0 + SEC, 0.0);
    stale.flags = NO_RECORDED_VALUE;
    s.accumulate(
        &batch(service(), vec![metric("g", "", "", gauge(vec![stale]))]),
        now,
    );
    assert_eq!(s.len(), 0);
}

#[test]
fn labels_scope_and_resource() {
    let mut s = Store::new(
        "prometheus",
        Settings {
            const_labels: vec![("region".to_string(), "eu".to_string())],
            ..settings()
        },
    );
    let now = Instant::now();
    let mut rm = batch(
        vec![kv("service.name", "a"), kv("host.name", "h")],
        vec![metric(
            "g",
            "",
            "",
            gauge(vec![number(
                vec![kv("1st", "x"), kv("_hidden", "y"), kv("a.b", "z")],
                0,
                T0,
                1.0,
            )]),
        )],
    );
    if let Some(scope) = rm.scope_metrics[0].scope.as_mut() {
        scope.attributes = vec![kv("team", "core")];
    }
    rm.scope_metrics[0].schema_url = "https://opentelemetry.io/schemas/1.21.0".to_string();
    s.accumulate(&rm, now);
    let out = text(&mut s, now);
    assert!(
        out.contains("g{a_b=\"z\",job=\"a\",key_1st=\"x\",key_hidden=\"y\",otel_scope_name=\"lib\",otel_scope_schema_url=\"https://opentelemetry.io/schemas/1.21.0\",otel_scope_team=\"core\",otel_scope_version=\"1.0\",region=\"eu\"} 1\n"),
        "{out}"
    );
    // No instance: no target_info.
    assert!(!out.contains("target_info"), "{out}");

    let mut s = Store::new(
        "prometheus",
        Settings {
            without_scope_info: true,
            resource_to_labels: Some(true),
            ..settings()
        },
    );
    s.accumulate(
        &batch(
            vec![
                kv("service.name", "a"),
                kv("service.instance.id", "i"),
                kv("host.name", "h"),
                kv("k", "from-resource"),
            ],
            vec![metric(
                "g",
                "",
                "",
                gauge(vec![number(vec![kv("k", "from-point")], 0, T0, 1.0)]),
            )],
        ),
        now,
    );
    let out = text(&mut s, now);
    assert!(
        out.contains("g{host_name=\"h\",instance=\"i\",job=\"a\",k=\"from-resource\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "target_info{host_name=\"h\",instance=\"i\",job=\"a\",k=\"from-resource\"} 1\n"
        ),
        "{out}"
    );
}

#[test]
fn unrepresentable_series_are_dropped() {
    let mut s = store();
    let now = Instant::now();
    s.accumulate(
        &batch(
            service(),
            vec![
                // Two attributes that escape to the same label.
                metric(
                    "dup",
                    "",
                    "",
                    gauge(vec![number(
                        vec![kv("a.b", "1"), kv("a_b", "2")],
                        0,
                        T0,
                        1.0,
                    )]),
                ),
                // An attribute named like a generated label.
                metric(
                    "clash",
                    "",
                    "",
                    gauge(vec![number(vec![kv("job", "x")], 0, T0, 1.0)]),
                ),
                metric("@@", "", "", gauge(vec![number(vec![], 0, T0, 1.0)])),
                metric(
                    "h",
                    "",
                    "",
                    histogram(
                        CUMULATIVE,
                        vec![HistogramDataPoint {
                            attributes: vec![kv("le", "1")],
                            ..Default::default()
                        }],
                    ),
                ),
                metric("ok", "", "", gauge(vec![number(vec![], 0, T0, 1.0)])),
            ],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now)), ["ok 1"]);
}

#[test]
fn first_type_of_a_name_wins() {
    let mut s = store();
    let now = Instant::now();
    s.accumulate(
        &batch(
            service(),
            vec![metric(
                "x",
                "",
                "first",
                gauge(vec![number(vec![], 0, T0, 1.0)]),
            )],
        ),
        now,
    );
    // Same Prometheus name, other type: refused while the gauge lives.
    s.accumulate(
        &batch(
            service(),
            vec![metric(
                "x",
                "",
                "second",
                histogram(CUMULATIVE, vec![hpoint(T0, T0, &[], &[1], 1.0)]),
            )],
        ),
        now,
    );
    let out = text(&mut s, now);
    assert!(out.contains("# HELP x first\n# TYPE x gauge\n"), "{out}");
    assert_eq!(samples(&out), ["x 1"]);
}

#[test]
fn open_metrics_exemplars() {
    let mut s = store();
    let now = Instant::now();
    let mut p = int(T0, T0 + SEC, 3);
    p.exemplars = vec![OtlpExemplar {
        time_unix_nano: T0 + SEC,
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        value: Some(exemplar::Value::AsInt(1)),
        ..Default::default()
    }];
    let mut h = hpoint(T0, T0 + SEC, &[1.0], &[0, 1], 2.0);
    h.exemplars = vec![OtlpExemplar {
        time_unix_nano: T0,
        trace_id: vec![0x01; 16],
        // Not a span id: left out.
        span_id: vec![0x02; 40],
        value: Some(exemplar::Value::AsDouble(2.0)),
        ..Default::default()
    }];
    s.accumulate(
        &batch(
            vec![kv("service.name", "a")],
            vec![
                metric("hits", "", "Hits", sum(CUMULATIVE, true, vec![p])),
                metric("size", "", "", histogram(CUMULATIVE, vec![h])),
            ],
        ),
        now,
    );
    let out = write(&s.families(now), Format::OpenMetrics1);
    let scope =
        "job=\"a\",otel_scope_name=\"lib\",otel_scope_schema_url=\"\",otel_scope_version=\"1.0\"";
    let want = format!(
        "# HELP hits Hits\n# TYPE hits counter\nhits_total{{{scope}}} 3.0 # {{span_id=\"cdcdcdcdcdcdcdcd\",trace_id=\"abababababababababababababababab\"}} 1.0 1.700000001e+09\n\
# HELP size \n\
# TYPE size histogram\n\
size_bucket{{{scope},le=\"1.0\"}} 0\n\
size_bucket{{{scope},le=\"+Inf\"}} 1 # {{trace_id=\"01010101010101010101010101010101\"}} 2.0 1.7e+09\n\
size_sum{{{scope}}} 2.0\n\
size_count{{{scope}}} 1\n\
# EOF\n"
    );
    assert_eq!(out, want);
}

#[test]
fn timestamps_when_asked() {
    let mut s = Store::new(
        "prometheus",
        Settings {
            send_timestamps: true,
            ..settings()
        },
    );
    let now = Instant::now();
    s.accumulate(
        &batch(
            vec![],
            vec![metric(
                "g",
                "",
                "",
                gauge(vec![number(vec![], 0, T0 + 1_500_000, 1.0)]),
            )],
        ),
        now,
    );
    assert_eq!(samples(&text(&mut s, now)), ["g 1 1700000000001"]);
}

#[test]
fn namespace_and_untyped() {
    let mut s = Store::new(
        "prometheus",
        Settings {
            namer: MetricNamer::new("my-app", false),
            target_info_name: target_info_name("my-app"),
            ..settings()
        },
    );
    let now = Instant::now();
    let mut m = metric("up.state", "s", "", gauge(vec![number(vec![], 0, T0, 1.0)]));
    m.metadata = vec![kv("prometheus.type", "unknown")];
    s.accumulate(&batch(service(), vec![m]), now);
    let out = text(&mut s, now);
    assert!(out.contains("# TYPE my_app_up_state untyped\n"), "{out}");
    assert!(out.contains("# TYPE my_app_target_info gauge\n"), "{out}");
    assert_eq!(target_info_name(""), "target_info");
    assert_eq!(target_info_name("1app"), "key_1app_target_info");
    assert_eq!(target_info_name(".."), "target_info");
}

#[test]
fn sample_names_of_histograms_are_reserved() {
    let mut s = store();
    let now = Instant::now();
    s.accumulate(
        &batch(
            service(),
            vec![
                metric(
                    "rpc",
                    "",
                    "",
                    histogram(CUMULATIVE, vec![hpoint(T0, T0, &[], &[1], 1.0)]),
                ),
                metric("rpc_count", "", "", gauge(vec![number(vec![], 0, T0, 1.0)])),
            ],
        ),
        now,
    );
    let out = text(&mut s, now);
    assert!(!out.contains("TYPE rpc_count"), "{out}");
    assert!(out.contains("rpc_count{"), "{out}");
}
