#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use prost::Message;
use tokio_util::sync::CancellationToken;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::metrics::{
    exemplar, metric::Data, number_data_point, summary_data_point::ValueAtQuantile,
    Exemplar as OtlpExemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{ExportMetricsServiceRequest, Metrics};

use super::batch::{encode, plan};
use super::convert::{convert, decimal, Conversion, Converted, STALE_NAN_BITS};
use super::proto::{Exemplar, Label, Sample, TimeSeries, WriteRequest};
use super::*;
use ferrotel_pipeline::telemetry::Telemetry;

const T: u64 = 1_700_000_000_123_456_789;
const T_MS: i64 = 1_700_000_000_123;
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn service() -> Vec<KeyValue> {
    vec![
        kv("service.name", "checkout"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "pod-1"),
    ]
}

fn resource(attributes: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "meter".to_string(),
                version: "1.0".to_string(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn number(
    attributes: Vec<KeyValue>,
    time: u64,
    value: number_data_point::Value,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: T - 60_000_000_000,
        time_unix_nano: time,
        value: Some(value),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        unit: unit.to_string(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn sum(
    name: &str,
    unit: &str,
    temporality: i32,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.to_string(),
        unit: unit.to_string(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn histogram(name: &str, temporality: i32, point: HistogramDataPoint) -> Metric {
    Metric {
        name: name.to_string(),
        unit: "s".to_string(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![point],
            aggregation_temporality: temporality,
        })),
        ..Default::default()
    }
}

fn settings() -> Settings {
    Settings {
        namer: MetricNamer::new("", true),
        external_labels: vec![("cluster".to_string(), "eu-1".to_string())],
        target_info: false,
        resource_to_labels: None,
    }
}

/// Every series as `{name="value",...}` -> samples, for comparing whole conversions.
fn by_labels(conversion: &Conversion) -> BTreeMap<String, Vec<Sample>> {
    conversion
        .series
        .iter()
        .map(|c| (text(&c.series.labels), c.series.samples.clone()))
        .collect()
}

fn text(labels: &[Label]) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|l| format!("{}=\"{}\"", l.name, l.value))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

fn one(value: f64) -> Vec<Sample> {
    vec![Sample {
        value,
        timestamp: T_MS,
    }]
}

/// `{...}` of the series `name` of the test resource: `own` labels with `job`, `instance`
/// and the external label, sorted by name.
fn set(name: &str, own: &[(&str, &str)]) -> String {
    let mut all: Vec<(&str, &str)> = vec![
        ("__name__", name),
        ("cluster", "eu-1"),
        ("instance", "pod-1"),
        ("job", "shop/checkout"),
    ];
    all.extend_from_slice(own);
    all.sort();
    let labels: Vec<Label> = all.into_iter().map(|(k, v)| Label::new(k, v)).collect();
    text(&labels)
}

#[test]
fn gauges_and_sums_with_sorted_escaped_labels() {
    let metrics = vec![
        gauge(
            "system.memory.utilization",
            "1",
            vec![number(
                vec![
                    kv("state", "used"),
                    kv("1st.key", "a"),
                    kv("Zone", "z"),
                    kv("empty", ""),
                ],
                T,
                number_data_point::Value::AsDouble(0.42),
            )],
        ),
        sum(
            "http.server.requests",
            "{requests}",
            CUMULATIVE,
            true,
            vec![number(
                vec![kv("http.request.method", "GET")],
                T,
                number_data_point::Value::AsInt(10),
            )],
        ),
        sum(
            "queue.length",
            "{items}",
            CUMULATIVE,
            false,
            vec![number(vec![], T, number_data_point::Value::AsInt(-3))],
        ),
    ];
    let conversion = convert(&[resource(service(), metrics)], &settings());
    assert_eq!(conversion.dropped_points, 0);
    let want: BTreeMap<String, Vec<Sample>> = [
        (
            // Upper-case names sort before `__name__`, lower-case ones after; the empty
            // attribute is no label.
            set(
                "system_memory_utilization_ratio",
                &[("Zone", "z"), ("key_1st_key", "a"), ("state", "used")],
            ),
            one(0.42),
        ),
        (
            set(
                "http_server_requests_total",
                &[("http_request_method", "GET")],
            ),
            one(10.0),
        ),
        (set("queue_length", &[]), one(-3.0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_labels(&conversion), want);
    for c in &conversion.series {
        let names: Vec<&str> = c.series.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "labels are sorted by name");
        assert_eq!(c.points, 1);
    }
}

#[test]
fn colliding_attributes_join_and_attributes_win_over_external_labels() {
    let metrics = vec![gauge(
        "g",
        "",
        vec![number(
            vec![
                kv("k8s_pod", "b"),
                kv("k8s.pod", "a"),
                kv("cluster", "local"),
            ],
            T,
            number_data_point::Value::AsInt(1),
        )],
    )];
    let conversion = convert(&[resource(vec![], metrics)], &settings());
    // Joined in key order (`.` sorts before `_`); no job or instance without a service.
    assert_eq!(
        by_labels(&conversion),
        [(
            "{__name__=\"g\",cluster=\"local\",k8s_pod=\"a;b\"}".to_string(),
            one(1.0)
        )]
        .into_iter()
        .collect()
    );
}

#[test]
fn resource_attributes_become_labels_when_converted() {
    let mut attributes = service();
    attributes.push(kv("host.name", "node-a"));
    attributes.push(kv("state", "from-resource"));
    let metrics = vec![gauge(
        "g",
        "",
        vec![number(
            vec![kv("state", "from-point")],
            T,
            number_data_point::Value::AsInt(1),
        )],
    )];
    let mut s = settings();
    s.resource_to_labels = Some(true);
    let conversion = convert(&[resource(attributes.clone(), metrics.clone())], &s);
    assert_eq!(
        by_labels(&conversion).into_keys().collect::<Vec<_>>(),
        vec![set(
            "g",
            &[("host_name", "node-a"), ("state", "from-resource")]
        )]
    );
    s.resource_to_labels = Some(false);
    let conversion = convert(&[resource(attributes, metrics)], &s);
    assert_eq!(
        by_labels(&conversion).into_keys().collect::<Vec<_>>(),
        vec![set(
            "g",
            &[
                ("host_name", "node-a"),
                ("service_instance_id", "pod-1"),
                ("service_name", "checkout"),
                ("service_namespace", "shop"),
                ("state", "from-resource"),
            ]
        )]
    );
}

#[test]
fn histograms_become_cumulative_buckets_sum_and_count() {
    let point = HistogramDataPoint {
        attributes: vec![kv("http.route", "/a")],
        time_unix_nano: T,
        count: 10,
        sum: Some(12.5),
        // One count more than bounds + 1: left out.
        bucket_counts: vec![1, 2, 3, 4, 99],
        explicit_bounds: vec![0.005, 1.0, 1_000_000.0],
        exemplars: vec![
            OtlpExemplar {
                time_unix_nano: T,
                value: Some(exemplar::Value::AsDouble(0.5)),
                trace_id: vec![0xab; 16],
                span_id: vec![0xcd; 8],
                ..Default::default()
            },
            OtlpExemplar {
                time_unix_nano: T,
                value: Some(exemplar::Value::AsInt(5_000_000)),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let conversion = convert(
        &[resource(
            service(),
            vec![histogram("latency", CUMULATIVE, point)],
        )],
        &settings(),
    );
    let route = ("http_route", "/a");
    let bucket = |le: &str| set("latency_seconds_bucket", &[route, ("le", le)]);
    let want: BTreeMap<String, Vec<Sample>> = [
        (bucket("0.005"), one(1.0)),
        (bucket("1"), one(3.0)),
        (bucket("1000000"), one(6.0)),
        (bucket("+Inf"), one(10.0)),
        (set("latency_seconds_count", &[route]), one(10.0)),
        (set("latency_seconds_sum", &[route]), one(12.5)),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_labels(&conversion), want);
    let exemplars: BTreeMap<String, Vec<Exemplar>> = conversion
        .series
        .iter()
        .filter(|c| !c.series.exemplars.is_empty())
        .map(|c| (text(&c.series.labels), c.series.exemplars.clone()))
        .collect();
    assert_eq!(
        exemplars,
        [
            (
                bucket("1"),
                vec![Exemplar {
                    labels: vec![
                        Label::new("span_id", "cdcdcdcdcdcdcdcd"),
                        Label::new("trace_id", "ab".repeat(16)),
                    ],
                    value: 0.5,
                    timestamp: T_MS,
                }]
            ),
            (
                bucket("+Inf"),
                vec![Exemplar {
                    labels: vec![],
                    value: 5_000_000.0,
                    timestamp: T_MS,
                }]
            ),
        ]
        .into_iter()
        .collect()
    );
    // The point counts once, on `_count`.
    let points: u64 = conversion.series.iter().map(|c| c.points).sum();
    assert_eq!(points, 1);
    let no_sum = HistogramDataPoint {
        time_unix_nano: T,
        count: 1,
        bucket_counts: vec![1],
        ..Default::default()
    };
    let conversion = convert(
        &[resource(vec![], vec![histogram("h", CUMULATIVE, no_sum)])],
        &settings(),
    );
    assert_eq!(
        by_labels(&conversion).into_keys().collect::<Vec<_>>(),
        vec![
            "{__name__=\"h_seconds_bucket\",cluster=\"eu-1\",le=\"+Inf\"}".to_string(),
            "{__name__=\"h_seconds_count\",cluster=\"eu-1\"}".to_string(),
        ]
    );
}

#[test]
fn summaries_become_quantiles_sum_and_count() {
    let metric = Metric {
        name: "rpc.duration".to_string(),
        unit: "ms".to_string(),
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: T,
                count: 7,
                sum: 4.5,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 0.3,
                    },
                    ValueAtQuantile {
                        quantile: 1.0,
                        value: 2.0,
                    },
                ],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let conversion = convert(&[resource(service(), vec![metric])], &settings());
    let name = "rpc_duration_milliseconds";
    let want: BTreeMap<String, Vec<Sample>> = [
        (set(name, &[("quantile", "0.5")]), one(0.3)),
        (set(name, &[("quantile", "1")]), one(2.0)),
        (set(&format!("{name}_count"), &[]), one(7.0)),
        (set(&format!("{name}_sum"), &[]), one(4.5)),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_labels(&conversion), want);
}

#[test]
fn points_without_a_recorded_value_become_stale_markers() {
    let mut g = number(vec![], T, number_data_point::Value::AsDouble(1.0));
    g.flags = 1;
    let h = HistogramDataPoint {
        time_unix_nano: T,
        count: 3,
        sum: Some(1.0),
        bucket_counts: vec![1, 2],
        explicit_bounds: vec![1.0],
        flags: 1,
        ..Default::default()
    };
    let conversion = convert(
        &[resource(
            vec![],
            vec![gauge("g", "", vec![g]), histogram("h", CUMULATIVE, h)],
        )],
        &settings(),
    );
    assert_eq!(conversion.series.len(), 5);
    for c in &conversion.series {
        for s in &c.series.samples {
            assert_eq!(
                s.value.to_bits(),
                STALE_NAN_BITS,
                "{}",
                text(&c.series.labels)
            );
        }
    }
}

#[test]
fn delta_and_exponential_metrics_are_dropped_with_a_count() {
    let metrics = vec![
        sum(
            "jobs",
            "",
            DELTA,
            true,
            vec![
                number(vec![], T, number_data_point::Value::AsInt(1)),
                number(vec![kv("a", "b")], T, number_data_point::Value::AsInt(2)),
            ],
        ),
        sum(
            "gauge.like",
            "",
            DELTA,
            false,
            vec![number(vec![], T, number_data_point::Value::AsInt(1))],
        ),
        histogram(
            "delta.latency",
            DELTA,
            HistogramDataPoint {
                time_unix_nano: T,
                count: 1,
                ..Default::default()
            },
        ),
        Metric {
            name: "sizes".to_string(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    time_unix_nano: T,
                    count: 1,
                    ..Default::default()
                }],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        },
        gauge(
            "kept",
            "",
            vec![number(vec![], T, number_data_point::Value::AsInt(1))],
        ),
    ];
    let conversion = convert(&[resource(vec![], metrics)], &settings());
    assert_eq!(conversion.dropped_points, 5);
    assert_eq!(conversion.series.len(), 1);
    assert_eq!(
        conversion.drop_message(),
        "5 data points dropped: invalid temporality and type combination for metric \"jobs\"; \
invalid temporality and type combination for metric \"gauge.like\"; \
invalid temporality and type combination for metric \"delta.latency\"; \
exponential histogram \"sizes\" not sent: native histograms are not supported yet"
    );
}

#[test]
fn samples_of_a_series_go_in_time_order() {
    let points = vec![
        number(vec![], T + 2_000_000, number_data_point::Value::AsInt(3)),
        number(vec![], T, number_data_point::Value::AsInt(1)),
        number(vec![], T + 1_000_000, number_data_point::Value::AsInt(2)),
        // A second value for one timestamp: the later one in the batch stays.
        number(vec![], T + 1_000_000, number_data_point::Value::AsInt(20)),
    ];
    let conversion = convert(
        &[resource(vec![], vec![gauge("g", "", points)])],
        &settings(),
    );
    assert_eq!(conversion.series.len(), 1);
    let samples: Vec<(i64, f64)> = conversion.series[0]
        .series
        .samples
        .iter()
        .map(|s| (s.timestamp - T_MS, s.value))
        .collect();
    assert_eq!(samples, vec![(0, 1.0), (1, 20.0), (2, 3.0)]);
    assert_eq!(conversion.series[0].points, 4);
}

#[test]
fn target_info_per_resource() {
    let mut attributes = service();
    attributes.push(kv("host.name", "node-a"));
    attributes.push(kv("deployment.environment", "prod"));
    let metrics = vec![
        gauge(
            "g",
            "",
            vec![number(vec![], T, number_data_point::Value::AsInt(1))],
        ),
        // A later point, even of a metric that is dropped, dates target_info.
        sum(
            "d",
            "",
            DELTA,
            true,
            vec![number(
                vec![],
                T + 5_000_000,
                number_data_point::Value::AsInt(1),
            )],
        ),
    ];
    let mut s = settings();
    s.target_info = true;
    let conversion = convert(&[resource(attributes.clone(), metrics.clone())], &s);
    let target = conversion
        .series
        .iter()
        .find(|c| c.series.labels.iter().any(|l| l.value == "target_info"))
        .expect("target_info");
    assert_eq!(
        text(&target.series.labels),
        set(
            "target_info",
            &[("deployment_environment", "prod"), ("host_name", "node-a")]
        )
    );
    assert_eq!(
        target.series.samples,
        vec![Sample {
            value: 1.0,
            timestamp: T_MS + 5
        }]
    );
    assert_eq!(target.points, 0);

    // Namespaced like every metric.
    s.namer = MetricNamer::new("my-app", true);
    let conversion = convert(&[resource(attributes, metrics.clone())], &s);
    assert!(conversion.series.iter().any(|c| c
        .series
        .labels
        .iter()
        .any(|l| l.value == "my_app_target_info")));

    s.namer = MetricNamer::new("", true);
    let only_identifying = convert(&[resource(service(), metrics.clone())], &s);
    let without_job = convert(&[resource(vec![kv("host.name", "x")], metrics.clone())], &s);
    let with_instance_only = convert(
        &[resource(
            vec![kv("host.name", "x"), kv("service.instance.id", "i")],
            metrics.clone(),
        )],
        &s,
    );
    let count = |c: &Conversion| {
        c.series
            .iter()
            .filter(|c| c.series.labels.iter().any(|l| l.value == "target_info"))
            .count()
    };
    assert_eq!(count(&only_identifying), 0, "only job and instance");
    assert_eq!(count(&without_job), 0, "neither job nor instance");
    assert_eq!(count(&with_instance_only), 1);
    s.target_info = false;
    let mut attributes = service();
    attributes.push(kv("host.name", "node-a"));
    assert_eq!(count(&convert(&[resource(attributes, metrics)], &s)), 0);
}

#[test]
fn bounds_and_quantiles_print_as_go_prints_them() {
    for (f, want) in [
        (0.005, "0.005"),
        (1.0, "1"),
        (1e6, "1000000"),
        (2.5e-7, "0.00000025"),
        (1e21, "1000000000000000000000"),
        (-0.5, "-0.5"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(decimal(f), want);
    }
}

fn series(name: &str, samples: usize) -> Converted {
    Converted {
        series: TimeSeries {
            labels: vec![Label::new("__name__", name), Label::new("job", "j")],
            samples: (0..samples)
                .map(|i| Sample {
                    value: i as f64,
                    timestamp: T_MS + i as i64,
                })
                .collect(),
            exemplars: vec![],
        },
        points: samples as u64,
    }
}

#[test]
fn requests_are_split_to_stay_under_the_size_limit() {
    let all: Vec<Converted> = (0..100).map(|i| series(&format!("m{i}"), 3)).collect();
    let one_len = WriteRequest {
        timeseries: vec![all[0].series.clone()],
    }
    .encoded_len();
    let max = one_len * 7 + 3;
    let p = plan(all.clone(), max);
    assert!(!p.split_series);
    assert_eq!(p.refused_points, 0);
    assert!(p.requests.len() >= 100 / 7);
    for (request, _) in &p.requests {
        assert!(
            request.encoded_len() <= max,
            "{} > {max}",
            request.encoded_len()
        );
    }
    let sent: Vec<TimeSeries> = p
        .requests
        .iter()
        .flat_map(|(r, _)| r.timeseries.clone())
        .collect();
    assert_eq!(
        sent,
        all.iter().map(|c| c.series.clone()).collect::<Vec<_>>()
    );
    assert_eq!(p.requests.iter().map(|(_, n)| n).sum::<u64>(), 300);

    // Everything fits: one request.
    assert_eq!(plan(all, 3_000_000).requests.len(), 1);
}

#[test]
fn a_series_larger_than_the_limit_is_spread_in_order_or_refused() {
    let big = series("big", 1000);
    let max = 200;
    let p = plan(
        vec![series("small", 1), big.clone(), series("after", 1)],
        max,
    );
    assert!(p.split_series);
    assert_eq!(p.refused_points, 0);
    for (request, _) in &p.requests {
        assert!(request.encoded_len() <= max);
    }
    let big_samples: Vec<Sample> = p
        .requests
        .iter()
        .flat_map(|(r, _)| r.timeseries.iter())
        .filter(|s| s.labels[0].value == "big")
        .flat_map(|s| s.samples.clone())
        .collect();
    assert_eq!(big_samples, big.series.samples);
    assert_eq!(p.requests.iter().map(|(_, n)| n).sum::<u64>(), 1002);

    let p = plan(vec![series("x", 1), series("big", 2)], 10);
    assert_eq!((p.refused_series, p.refused_points), (2, 3));
    assert!(p.requests.is_empty());
}

#[test]
fn requests_are_protobuf_in_snappy_block_format() {
    let request = WriteRequest {
        timeseries: vec![series("m", 3).series, series("n", 2).series],
    };
    let body = encode(&request).unwrap();
    // The block format starts with the uncompressed length as a varint, no stream header.
    let raw = request.encode_to_vec();
    let mut expected_prefix = Vec::new();
    prost::encoding::encode_varint(raw.len() as u64, &mut expected_prefix);
    assert!(body.starts_with(&expected_prefix));
    let decoded =
        ferrotel_pipeline::compression::decompress("snappy", body.clone(), 1 << 20).unwrap();
    assert_eq!(decoded.as_ref(), raw.as_slice());
    assert_eq!(WriteRequest::decode(decoded).unwrap(), request);
}

/// A remote write endpoint that records what it is sent and answers from a script
/// (204 once the script is used up).
struct Endpoint {
    url: String,
    received: Arc<Mutex<Vec<(http::HeaderMap, WriteRequest)>>>,
    stop: CancellationToken,
}

impl Endpoint {
    async fn start(script: Vec<(u16, Option<&'static str>)>) -> Endpoint {
        let listener = ferrotel_pipeline::net::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let stop = CancellationToken::new();
        let log = received.clone();
        ferrotel_pipeline::net::serve_http(
            listener,
            None,
            move |req: http::Request<hyper::body::Incoming>, _peer| {
                let log = log.clone();
                let script = script.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let raw = ferrotel_pipeline::compression::decompress("snappy", body, 1 << 24)
                        .unwrap();
                    log.lock()
                        .unwrap()
                        .push((parts.headers, WriteRequest::decode(raw).unwrap()));
                    let (status, retry_after) =
                        script.lock().unwrap().pop_front().unwrap_or((204, None));
                    let mut response =
                        ferrotel_pipeline::net::response(status, "text/plain", "answer");
                    if let Some(after) = retry_after {
                        response
                            .headers_mut()
                            .insert(RETRY_AFTER, HeaderValue::from_static(after));
                    }
                    response
                }
            },
            stop.clone(),
            Duration::from_secs(1),
        );
        Endpoint {
            url,
            received,
            stop,
        }
    }

    fn requests(&self) -> Vec<(http::HeaderMap, WriteRequest)> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn sender(endpoint: &Endpoint, extra: &str) -> RemoteWriteSender {
    let yaml = format!("endpoint: {}\n{extra}", endpoint.url);
    let value = Value::from_yaml_str(&yaml).unwrap();
    let config: RemoteWriteConfig = ferrotel_pipeline::config::decode::decode(&value).unwrap();
    ferrotel_pipeline::factory::Validate::validate(&config).unwrap();
    let sender = RemoteWriteSender::new(
        "prometheusremotewrite",
        config,
        Telemetry::for_tests().remote_write("prometheusremotewrite"),
    )
    .unwrap();
    sender.start().await.unwrap();
    sender
}

fn payload(metrics: Vec<Metric>) -> Payload {
    Payload::Metrics(Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![resource(service(), metrics)],
    }))
}

fn gauges(n: usize) -> Vec<Metric> {
    (0..n)
        .map(|i| {
            gauge(
                &format!("gauge.{i}"),
                "",
                vec![number(vec![], T, number_data_point::Value::AsInt(i as i64))],
            )
        })
        .collect()
}

#[tokio::test]
async fn sends_the_protocol_headers_and_the_converted_series() {
    let endpoint = Endpoint::start(vec![]).await;
    let s = sender(
        &endpoint,
        "headers: {X-Scope-OrgID: tenant-1, Content-Type: text/plain, user-agent: me}\nexternal_labels: {cluster: eu-1}",
    )
    .await;
    let batch = s.prepare(&payload(gauges(2))).unwrap();
    assert_eq!(s.send(&batch).await.unwrap(), Sent::default());
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1);
    let (headers, request) = &requests[0];
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(header("content-encoding"), "snappy");
    assert_eq!(header("content-type"), "application/x-protobuf");
    assert_eq!(header("x-prometheus-remote-write-version"), "0.1.0");
    assert_eq!(
        header("user-agent"),
        format!("ferrotel/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(header("x-scope-orgid"), "tenant-1");
    let names: Vec<String> = request.timeseries.iter().map(|t| text(&t.labels)).collect();
    assert_eq!(names, vec![set("gauge_0", &[]), set("gauge_1", &[]),]);
    assert_eq!(request.timeseries[1].samples, one(1.0));
}

#[tokio::test]
async fn plain_requests_go_through_proxy_url() {
    // The "proxy" is the endpoint itself: it gets the request meant for another host.
    let endpoint = Endpoint::start(vec![]).await;
    let proxy = endpoint.url.trim_end_matches("/api/v1/write").to_string();
    let yaml = format!("endpoint: http://backend.invalid:9090/api/v1/write\nproxy_url: {proxy}");
    let value = Value::from_yaml_str(&yaml).unwrap();
    let config: RemoteWriteConfig = ferrotel_pipeline::config::decode::decode(&value).unwrap();
    ferrotel_pipeline::factory::Validate::validate(&config).unwrap();
    let s = RemoteWriteSender::new(
        "prometheusremotewrite",
        config,
        Telemetry::for_tests().remote_write("prometheusremotewrite"),
    )
    .unwrap();
    s.start().await.unwrap();
    let batch = s.prepare(&payload(gauges(1))).unwrap();
    assert_eq!(s.send(&batch).await.unwrap(), Sent::default());
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].0.get("host").and_then(|v| v.to_str().ok()),
        Some("backend.invalid:9090")
    );
}

#[tokio::test]
async fn statuses_decide_between_retry_and_refusal() {
    let endpoint = Endpoint::start(vec![(503, None), (429, Some("3")), (400, None)]).await;
    let s = sender(&endpoint, "").await;
    let batch = s.prepare(&payload(gauges(1))).unwrap();
    match s.send(&batch).await {
        Err(ExportError::Retryable { message, throttle }) => {
            assert!(message.contains("503"), "{message}");
            assert_eq!(throttle, None);
        }
        other => panic!("503: {other:?}"),
    }
    match s.send(&batch).await {
        Err(ExportError::Retryable { throttle, .. }) => {
            assert_eq!(throttle, Some(Duration::from_secs(3)));
        }
        other => panic!("429: {other:?}"),
    }
    match s.send(&batch).await {
        Err(ExportError::Permanent { message }) => {
            assert_eq!(
                message,
                "remote write returned HTTP status 400 Bad Request: answer"
            );
        }
        other => panic!("400: {other:?}"),
    }
    assert_eq!(endpoint.requests().len(), 3);
}

#[tokio::test]
async fn a_retry_resends_only_the_requests_not_taken() {
    // Three series per request at most: 7 gauges (and nothing else) make 3 requests.
    let probe = convert(&payload_resources(gauges(1)), &settings());
    let one_len = WriteRequest {
        timeseries: vec![probe.series[0].series.clone()],
    }
    .encoded_len();
    let endpoint = Endpoint::start(vec![(204, None), (500, None), (204, None)]).await;
    let s = sender(
        &endpoint,
        &format!(
            "max_batch_size_bytes: {}\nremote_write_queue: {{num_consumers: 1}}",
            one_len * 3 + 2
        ),
    )
    .await;
    let batch = s.prepare(&payload(gauges(7))).unwrap();
    assert_eq!(batch.parts.len(), 3);
    assert!(s.send(&batch).await.is_err());
    assert_eq!(endpoint.requests().len(), 3);
    assert_eq!(s.send(&batch).await.unwrap(), Sent::default());
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 4, "only the failed request again");
    assert_eq!(requests[3].1, requests[1].1);
    let mut names: Vec<String> = requests
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .flat_map(|(_, (_, r))| r.timeseries.iter().map(|t| t.labels[0].value.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        (0..7).map(|i| format!("gauge_{i}")).collect::<Vec<_>>()
    );
}

fn payload_resources(metrics: Vec<Metric>) -> Vec<ResourceMetrics> {
    vec![resource(service(), metrics)]
}

#[tokio::test]
async fn refused_requests_and_dropped_points_are_counted() {
    let probe = convert(&payload_resources(gauges(1)), &settings());
    let one_len = WriteRequest {
        timeseries: vec![probe.series[0].series.clone()],
    }
    .encoded_len();
    let endpoint = Endpoint::start(vec![(204, None), (400, None)]).await;
    let s = sender(
        &endpoint,
        &format!(
            "max_batch_size_bytes: {}\nremote_write_queue: {{num_consumers: 1}}",
            one_len * 2 + 2
        ),
    )
    .await;
    let mut metrics = gauges(4);
    metrics.push(sum(
        "delta",
        "",
        DELTA,
        true,
        vec![number(vec![], T, number_data_point::Value::AsInt(1))],
    ));
    let batch = s.prepare(&payload(metrics)).unwrap();
    // 4 gauges in 2 requests; target_info (host-less resource) is not sent.
    assert_eq!(batch.parts.len(), 2);
    let sent = s.send(&batch).await.unwrap();
    assert_eq!(
        sent.rejected_items, 3,
        "2 refused gauges and the delta point"
    );
    assert!(
        sent.message.contains("invalid temporality")
            && sent.message.contains("1 of 2 requests refused"),
        "{}",
        sent.message
    );

    // Nothing convertible: nothing sent, every point counted.
    let only_delta = vec![sum(
        "delta",
        "",
        DELTA,
        true,
        vec![number(vec![], T, number_data_point::Value::AsInt(1))],
    )];
    let before = endpoint.requests().len();
    let batch = s.prepare(&payload(only_delta)).unwrap();
    assert!(batch.parts.is_empty());
    assert_eq!(s.send(&batch).await.unwrap().rejected_items, 1);
    assert_eq!(endpoint.requests().len(), before);
    // Upstream's own metrics: series translated, and batches with something untranslatable.
    assert_eq!(s.metrics.translated_time_series.get(), 4);
    assert_eq!(s.metrics.failed_translations.get(), 2);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint = Endpoint {
        url: format!("http://127.0.0.1:{port}/api/v1/write"),
        received: Arc::default(),
        stop: CancellationToken::new(),
    };
    let s = sender(&endpoint, "").await;
    let batch = s.prepare(&payload(gauges(1))).unwrap();
    match s.send(&batch).await {
        Err(ExportError::Retryable { message, .. }) => {
            assert!(
                message.contains("failed to make an HTTP request"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}
