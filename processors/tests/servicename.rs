//! The `servicename` processor built by its factory from YAML, against a recording
//! downstream: exact output for traces, metrics and logs with several connectors under one
//! resource, the documented Kafka Connect recipe, and config errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use ferrotel_pipeline::component::{
    Accepted, ConsumeResult, Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{Factory, ProcessorFactory, Registry, Stability};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::metrics::metric::Data;
use ferrotel_pipeline::pdata::metrics::{
    number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{
    logs, trace, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    Logs, Metrics, Payload, Signal, Traces,
};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_processors::servicename::ServiceNameFactory;

/// The configuration shown in the docs for Kafka Connect, word for word.
const KAFKA_CONNECT: &str = r#"
sources:
  - attribute: connector.name
  - attribute: messaging.client_id
    pattern: '^connector-(?:consumer|producer)-(?P<name>.+)-\d+$'
template: "connect-{name}"
original_service_name_to: service.namespace
"#;

/// Every kind of source at once.
const MIXED: &str = r#"
sources:
  - attribute: connector.name
  - attribute: messaging.client_id
    pattern: '^connector-(?:consumer|producer)-(?P<name>.+)-\d+$'
  - attribute: job
    pattern: '[a-z]+-job'
template: "svc-{name}"
"#;

/// Keeps every batch it receives.
#[derive(Default)]
struct Sink {
    received: Mutex<Vec<Payload>>,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.received.lock().unwrap().push(envelope.into_payload());
        Ok(Accepted::default())
    }
}

fn build(yaml: &str, signal: Signal, next: Arc<dyn Consumer>) -> Arc<dyn ConsumerComponent> {
    let factory = ServiceNameFactory;
    let config = factory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .unwrap_or_else(|e| panic!("config {yaml}: {e}"));
    factory
        .create(
            CreateSettings {
                id: ComponentId::new("servicename", None),
                telemetry: Telemetry::for_tests(),
            },
            config.as_ref(),
            signal,
            next,
        )
        .unwrap()
}

/// The batch as the next stage receives it.
async fn run(yaml: &str, input: Payload) -> Payload {
    let sink = Arc::new(Sink::default());
    let processor = build(yaml, input.signal(), sink.clone());
    processor.consume(Envelope::new(input)).await.unwrap();
    let mut received = sink.received.lock().unwrap();
    assert_eq!(received.len(), 1, "one batch in, one batch out");
    received.pop().unwrap()
}

async fn run_traces(yaml: &str, input: Vec<trace::ResourceSpans>) -> Vec<trace::ResourceSpans> {
    let input = Payload::Traces(Traces(ExportTraceServiceRequest {
        resource_spans: input,
    }));
    match run(yaml, input).await {
        Payload::Traces(t) => t.0.resource_spans,
        other => panic!("traces expected, got {other:?}"),
    }
}

async fn run_metrics(yaml: &str, input: Vec<ResourceMetrics>) -> Vec<ResourceMetrics> {
    let input = Payload::Metrics(Metrics(ExportMetricsServiceRequest {
        resource_metrics: input,
    }));
    match run(yaml, input).await {
        Payload::Metrics(m) => m.0.resource_metrics,
        other => panic!("metrics expected, got {other:?}"),
    }
}

async fn run_logs(yaml: &str, input: Vec<logs::ResourceLogs>) -> Vec<logs::ResourceLogs> {
    let input = Payload::Logs(Logs(ExportLogsServiceRequest {
        resource_logs: input,
    }));
    match run(yaml, input).await {
        Payload::Logs(l) => l.0.resource_logs,
        other => panic!("logs expected, got {other:?}"),
    }
}

type Pairs<'a> = &'a [(&'a str, &'a str)];

fn attrs(pairs: Pairs) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.to_string())),
            }),
            ..Default::default()
        })
        .collect()
}

fn resource(pairs: Pairs) -> Option<Resource> {
    Some(Resource {
        attributes: attrs(pairs),
        dropped_attributes_count: 2,
        ..Default::default()
    })
}

fn scope(name: &str, pairs: Pairs) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: "1.2.3".into(),
        attributes: attrs(pairs),
        dropped_attributes_count: 1,
    })
}

fn span(name: &str, pairs: Pairs) -> trace::Span {
    trace::Span {
        name: name.into(),
        trace_id: vec![7; 16],
        span_id: vec![name.len() as u8; 8],
        attributes: attrs(pairs),
        ..Default::default()
    }
}

fn spans_under(
    res: Option<Resource>,
    scopes: Vec<(Option<InstrumentationScope>, Vec<trace::Span>)>,
) -> trace::ResourceSpans {
    trace::ResourceSpans {
        resource: res,
        scope_spans: scopes
            .into_iter()
            .map(|(scope, spans)| trace::ScopeSpans {
                scope,
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect(),
        schema_url: "https://opentelemetry.io/schemas/1.25.0".into(),
    }
}

fn record(body: &str, pairs: Pairs) -> logs::LogRecord {
    logs::LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        attributes: attrs(pairs),
        ..Default::default()
    }
}

fn logs_under(
    res: Option<Resource>,
    scopes: Vec<(Option<InstrumentationScope>, Vec<logs::LogRecord>)>,
) -> logs::ResourceLogs {
    logs::ResourceLogs {
        resource: res,
        scope_logs: scopes
            .into_iter()
            .map(|(scope, log_records)| logs::ScopeLogs {
                scope,
                log_records,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect(),
        schema_url: "https://opentelemetry.io/schemas/1.25.0".into(),
    }
}

fn number(value: f64, pairs: Pairs) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(pairs),
        start_time_unix_nano: 1_000,
        time_unix_nano: 2_000,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn sum(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name}, described"),
        unit: "{record}".into(),
        metadata: attrs(&[("origin", "jmx")]),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name}, described"),
        unit: "1".into(),
        metadata: Vec::new(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
    }
}

fn histogram(name: &str, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name}, described"),
        unit: "ms".into(),
        metadata: Vec::new(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: 1,
        })),
    }
}

fn histogram_point(count: u64, pairs: Pairs) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attrs(pairs),
        count,
        sum: Some(count as f64 * 1.5),
        bucket_counts: vec![count, 0],
        explicit_bounds: vec![10.0],
        ..Default::default()
    }
}

fn metrics_under(
    res: Option<Resource>,
    scopes: Vec<(Option<InstrumentationScope>, Vec<Metric>)>,
) -> ResourceMetrics {
    ResourceMetrics {
        resource: res,
        scope_metrics: scopes
            .into_iter()
            .map(|(scope, metrics)| ScopeMetrics {
                scope,
                metrics,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect(),
        schema_url: "https://opentelemetry.io/schemas/1.25.0".into(),
    }
}

const WORKER: &[(&str, &str)] = &[
    ("service.name", "connect-worker"),
    ("host.name", "worker-1"),
    ("deployment.environment", "prod"),
];

/// The worker's resource with another service.name.
fn worker_as(service: &str) -> Option<Resource> {
    resource(&[
        ("service.name", service),
        ("host.name", "worker-1"),
        ("deployment.environment", "prod"),
    ])
}

#[tokio::test]
async fn traces_with_several_connectors_under_one_resource() {
    let orders: Pairs = &[("connector.name", "orders")];
    let payments: Pairs = &[("messaging.client_id", "connector-consumer-payments-sink-2")];
    let both: Pairs = &[
        ("connector.name", "orders"),
        ("messaging.client_id", "connector-consumer-payments-sink-2"),
    ];
    let no_match: Pairs = &[("messaging.client_id", "producer-7")];
    let billing: Pairs = &[("job", "nightly: billing-job #3")];
    let lib_a = || scope("lib-a", &[]);
    let lib_b = || scope("lib-b", &[("connector.name", "inventory")]);
    let lib_c = || scope("lib-c", &[]);
    let input = vec![
        spans_under(
            resource(WORKER),
            vec![
                (
                    lib_a(),
                    vec![
                        span("s0", orders),
                        span("s1", &[]),
                        span("s2", payments),
                        span("s3", both),
                        span("s4", no_match),
                        span("s5", billing),
                    ],
                ),
                (lib_b(), vec![span("s6", &[]), span("s7", orders)]),
            ],
        ),
        spans_under(
            resource(&[
                ("service.name", "connect-worker"),
                ("connector.name", "audit"),
            ]),
            vec![(lib_c(), vec![span("s8", &[]), span("s9", orders)])],
        ),
        spans_under(
            resource(&[("service.name", "other")]),
            vec![(lib_c(), vec![span("s10", &[])])],
        ),
    ];
    let output = run_traces(MIXED, input).await;
    let expected = vec![
        // Groups in order of their first item: orders (s0), none (s1), payments-sink (s2),
        // billing-job (s5), inventory (s6).
        spans_under(
            worker_as("svc-orders"),
            vec![
                // The first source wins over the second on s3; the item beats its scope on s7.
                (lib_a(), vec![span("s0", orders), span("s3", both)]),
                (lib_b(), vec![span("s7", orders)]),
            ],
        ),
        spans_under(
            resource(WORKER),
            vec![(lib_a(), vec![span("s1", &[]), span("s4", no_match)])],
        ),
        spans_under(
            worker_as("svc-payments-sink"),
            vec![(lib_a(), vec![span("s2", payments)])],
        ),
        spans_under(
            worker_as("svc-billing-job"),
            vec![(lib_a(), vec![span("s5", billing)])],
        ),
        spans_under(
            worker_as("svc-inventory"),
            vec![(lib_b(), vec![span("s6", &[])])],
        ),
        // The resource's own connector.name, unless the span names another.
        spans_under(
            resource(&[("service.name", "svc-audit"), ("connector.name", "audit")]),
            vec![(lib_c(), vec![span("s8", &[])])],
        ),
        spans_under(
            resource(&[("service.name", "svc-orders"), ("connector.name", "audit")]),
            vec![(lib_c(), vec![span("s9", orders)])],
        ),
        spans_under(
            resource(&[("service.name", "other")]),
            vec![(lib_c(), vec![span("s10", &[])])],
        ),
    ];
    assert_eq!(output, expected);
}

#[tokio::test]
async fn logs_with_several_connectors_under_one_resource() {
    let orders: Pairs = &[("connector.name", "orders")];
    let payments: Pairs = &[(
        "messaging.client_id",
        "connector-producer-payments-source-0",
    )];
    let billing: Pairs = &[("job", "billing-job")];
    let ignored: Pairs = &[("messaging.client_id", "connector-consumer-orders")];
    let app = || scope("org.apache.kafka.connect", &[]);
    let tagged = || scope("tagged", &[("connector.name", "inventory")]);
    let input = vec![logs_under(
        resource(WORKER),
        vec![
            (
                app(),
                vec![
                    record("l0", payments),
                    record("l1", orders),
                    record("l2", &[]),
                    record("l3", payments),
                    record("l4", ignored),
                    record("l5", billing),
                    record("l6", orders),
                ],
            ),
            (tagged(), vec![record("l7", &[]), record("l8", payments)]),
        ],
    )];
    let output = run_logs(MIXED, input).await;
    let expected = vec![
        logs_under(
            worker_as("svc-payments-source"),
            vec![(app(), vec![record("l0", payments), record("l3", payments)])],
        ),
        logs_under(
            worker_as("svc-orders"),
            vec![(app(), vec![record("l1", orders), record("l6", orders)])],
        ),
        logs_under(
            resource(WORKER),
            vec![(app(), vec![record("l2", &[]), record("l4", ignored)])],
        ),
        logs_under(
            worker_as("svc-billing-job"),
            vec![(app(), vec![record("l5", billing)])],
        ),
        // Sources go in order: the first one, found on the scope, beats the second one
        // on the record (l8).
        logs_under(
            worker_as("svc-inventory"),
            vec![(tagged(), vec![record("l7", &[]), record("l8", payments)])],
        ),
    ];
    assert_eq!(output, expected);
}

#[tokio::test]
async fn metrics_split_by_data_point() {
    let orders: Pairs = &[("connector.name", "orders")];
    let payments: Pairs = &[
        ("messaging.client_id", "connector-consumer-payments-sink-1"),
        ("partition", "3"),
    ];
    let jmx = || scope("jmx", &[]);
    let input = vec![metrics_under(
        resource(WORKER),
        vec![(
            jmx(),
            vec![
                // Only some points carry a connector: one metric per connector, the rest
                // stays under the worker.
                sum(
                    "records",
                    vec![
                        number(1.0, orders),
                        number(2.0, &[]),
                        number(3.0, payments),
                        number(4.0, orders),
                        number(5.0, &[("partition", "1")]),
                    ],
                ),
                // Every point of the worker itself: moves whole.
                gauge("threads", vec![number(6.0, &[]), number(7.0, &[])]),
                // Every point of one connector: moves whole.
                histogram(
                    "latency",
                    vec![histogram_point(8, payments), histogram_point(9, payments)],
                ),
            ],
        )],
    )];
    let output = run_metrics(MIXED, input).await;
    let expected = vec![
        metrics_under(
            worker_as("svc-orders"),
            vec![(
                jmx(),
                vec![sum(
                    "records",
                    vec![number(1.0, orders), number(4.0, orders)],
                )],
            )],
        ),
        metrics_under(
            resource(WORKER),
            vec![(
                jmx(),
                vec![
                    sum(
                        "records",
                        vec![number(2.0, &[]), number(5.0, &[("partition", "1")])],
                    ),
                    gauge("threads", vec![number(6.0, &[]), number(7.0, &[])]),
                ],
            )],
        ),
        metrics_under(
            worker_as("svc-payments-sink"),
            vec![(
                jmx(),
                vec![
                    sum("records", vec![number(3.0, payments)]),
                    histogram(
                        "latency",
                        vec![histogram_point(8, payments), histogram_point(9, payments)],
                    ),
                ],
            )],
        ),
    ];
    assert_eq!(output, expected);
}

#[tokio::test]
async fn kafka_connect_recipe_on_connect_worker_traces() {
    let sink_0: Pairs = &[("messaging.client_id", "connector-consumer-orders-sink-0")];
    let sink_1: Pairs = &[("messaging.client_id", "connector-consumer-orders-sink-1")];
    let source_3: Pairs = &[(
        "messaging.client_id",
        "connector-producer-payments-source-3",
    )];
    let admin: Pairs = &[("messaging.client_id", "connect-cluster-admin")];
    let named: Pairs = &[
        ("connector.name", "audit-log"),
        ("messaging.client_id", "connector-consumer-orders-sink-0"),
    ];
    let kafka = || scope("io.opentelemetry.kafka-clients-2.6", &[]);
    let input = vec![spans_under(
        resource(WORKER),
        vec![(
            kafka(),
            vec![
                span("poll orders", sink_0),
                span("send payments", source_3),
                span("poll orders", sink_1),
                span("admin", admin),
                span("audit", named),
            ],
        )],
    )];
    let output = run_traces(KAFKA_CONNECT, input).await;
    let renamed = |service: &str| {
        resource(&[
            ("service.name", service),
            ("host.name", "worker-1"),
            ("deployment.environment", "prod"),
            ("service.namespace", "connect-worker"),
        ])
    };
    let expected = vec![
        spans_under(
            renamed("connect-orders-sink"),
            vec![(
                kafka(),
                vec![span("poll orders", sink_0), span("poll orders", sink_1)],
            )],
        ),
        spans_under(
            renamed("connect-payments-source"),
            vec![(kafka(), vec![span("send payments", source_3)])],
        ),
        // The worker's own clients are not connectors.
        spans_under(
            resource(WORKER),
            vec![(kafka(), vec![span("admin", admin)])],
        ),
        spans_under(
            renamed("connect-audit-log"),
            vec![(kafka(), vec![span("audit", named)])],
        ),
    ];
    assert_eq!(output, expected);
}

#[tokio::test]
async fn kafka_connect_recipe_on_connect_worker_metrics_and_logs() {
    let sink_0: Pairs = &[("messaging.client_id", "connector-consumer-orders-sink-0")];
    let source_3: Pairs = &[(
        "messaging.client_id",
        "connector-producer-payments-source-3",
    )];
    let jmx = || scope("jmx", &[]);
    let renamed = |service: &str| {
        resource(&[
            ("service.name", service),
            ("host.name", "worker-1"),
            ("deployment.environment", "prod"),
            ("service.namespace", "connect-worker"),
        ])
    };
    let output = run_metrics(
        KAFKA_CONNECT,
        vec![metrics_under(
            resource(WORKER),
            vec![(
                jmx(),
                vec![sum(
                    "kafka.consumer.records_consumed",
                    vec![number(10.0, sink_0), number(20.0, source_3)],
                )],
            )],
        )],
    )
    .await;
    assert_eq!(
        output,
        vec![
            metrics_under(
                renamed("connect-orders-sink"),
                vec![(
                    jmx(),
                    vec![sum(
                        "kafka.consumer.records_consumed",
                        vec![number(10.0, sink_0)]
                    )]
                )],
            ),
            metrics_under(
                renamed("connect-payments-source"),
                vec![(
                    jmx(),
                    vec![sum(
                        "kafka.consumer.records_consumed",
                        vec![number(20.0, source_3)]
                    )]
                )],
            ),
        ]
    );

    // A whole resource of one connector is renamed as it is.
    let connector_scope = || {
        scope(
            "org.apache.kafka.connect",
            &[("connector.name", "orders-sink")],
        )
    };
    let output = run_logs(
        KAFKA_CONNECT,
        vec![logs_under(
            resource(WORKER),
            vec![(
                connector_scope(),
                vec![record("task started", &[]), record("committed", &[])],
            )],
        )],
    )
    .await;
    assert_eq!(
        output,
        vec![logs_under(
            renamed("connect-orders-sink"),
            vec![(
                connector_scope(),
                vec![record("task started", &[]), record("committed", &[])],
            )],
        )]
    );
}

#[tokio::test]
async fn the_previous_name_is_kept_only_when_there_was_one() {
    let yaml = "sources: [{attribute: connector.name}]\noriginal_service_name_to: worker.service";
    let orders: Pairs = &[("connector.name", "orders")];
    let s = || scope("s", &[]);
    let output = run_traces(
        yaml,
        vec![
            spans_under(
                resource(&[("host.name", "h")]),
                vec![(s(), vec![span("a", orders)])],
            ),
            spans_under(None, vec![(s(), vec![span("b", orders)])]),
            spans_under(
                resource(&[("service.name", "worker"), ("host.name", "h")]),
                vec![(s(), vec![span("c", orders)])],
            ),
        ],
    )
    .await;
    let expected = vec![
        spans_under(
            resource(&[("host.name", "h"), ("service.name", "orders")]),
            vec![(s(), vec![span("a", orders)])],
        ),
        spans_under(
            Some(Resource {
                attributes: attrs(&[("service.name", "orders")]),
                ..Default::default()
            }),
            vec![(s(), vec![span("b", orders)])],
        ),
        spans_under(
            resource(&[
                ("service.name", "orders"),
                ("host.name", "h"),
                ("worker.service", "worker"),
            ]),
            vec![(s(), vec![span("c", orders)])],
        ),
    ];
    assert_eq!(output, expected);
}

#[tokio::test]
async fn the_template_may_use_the_name_more_than_once() {
    let yaml = "sources: [{attribute: job.name}]\ntemplate: 'flink/{name}/{name}-job'";
    let s = || scope("s", &[]);
    let output = run_traces(
        yaml,
        vec![spans_under(
            resource(&[("service.name", "taskmanager")]),
            vec![(s(), vec![span("a", &[("job.name", "enrich")])])],
        )],
    )
    .await;
    assert_eq!(
        output[0].resource,
        resource(&[("service.name", "flink/enrich/enrich-job")])
    );
}

#[tokio::test]
async fn int_values_and_empty_names_yield_nothing() {
    let yaml =
        "sources: [{attribute: job.id}, {attribute: job.name, pattern: '^job-(?P<name>[a-z]*)$'}]";
    let int_id = KeyValue {
        key: "job.id".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(17)),
        }),
        ..Default::default()
    };
    let mut with_int = span("int", &[]);
    with_int.attributes.push(int_id);
    let s = || scope("s", &[]);
    let input = vec![spans_under(
        resource(&[("service.name", "worker")]),
        vec![(
            s(),
            vec![
                with_int,
                span("empty", &[("job.id", "")]),
                span("empty-group", &[("job.name", "job-")]),
            ],
        )],
    )];
    let output = run_traces(yaml, input.clone()).await;
    assert_eq!(output, input);
}

#[tokio::test]
async fn odd_input_passes_through() {
    let yaml = "sources: [{attribute: c}]";
    let odd = vec![
        trace::ResourceSpans::default(),
        trace::ResourceSpans {
            resource: None,
            scope_spans: vec![trace::ScopeSpans::default()],
            schema_url: String::new(),
        },
        spans_under(
            resource(&[("c", "")]),
            vec![(None, vec![trace::Span::default()])],
        ),
    ];
    assert_eq!(run_traces(yaml, odd.clone()).await, odd);
    assert_eq!(run_traces(yaml, Vec::new()).await, Vec::new());
    assert_eq!(
        run_metrics(yaml, vec![ResourceMetrics::default()]).await,
        vec![ResourceMetrics::default()]
    );
    assert_eq!(
        run_logs(yaml, vec![logs::ResourceLogs::default()]).await,
        vec![logs::ResourceLogs::default()]
    );
}

/// A deterministic pseudo-random sequence, so the test is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[tokio::test]
async fn every_span_ends_under_its_connector_in_order() {
    let mut rng = Lcg(42);
    let mut input = Vec::new();
    let mut expected_rows = Vec::new();
    for r in 0..6 {
        let mut scopes = Vec::new();
        for s in 0..3 {
            let mut spans = Vec::new();
            for i in 0..50 {
                let name = format!("r{r}s{s}i{i}");
                let pick = rng.next(5);
                let pairs: Vec<(String, String)> = match pick {
                    0 => Vec::new(),
                    1 => vec![("connector.name".into(), format!("c{}", rng.next(3)))],
                    _ => vec![(
                        "messaging.client_id".into(),
                        format!("connector-consumer-c{}-{}", rng.next(3), rng.next(4)),
                    )],
                };
                let connector = pairs.first().map(|(k, v)| {
                    if k == "connector.name" {
                        v.clone()
                    } else {
                        v.trim_start_matches("connector-consumer-")
                            .rsplit_once('-')
                            .unwrap()
                            .0
                            .to_string()
                    }
                });
                let service = connector
                    .map(|c| format!("connect-{c}"))
                    .unwrap_or_else(|| format!("worker-{r}"));
                expected_rows.push((service, format!("scope{s}"), name.clone()));
                let refs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                spans.push(span(&name, &refs));
            }
            scopes.push((scope(&format!("scope{s}"), &[]), spans));
        }
        input.push(spans_under(
            resource(&[("service.name", &format!("worker-{r}"))]),
            scopes,
        ));
    }
    let output = run_traces(KAFKA_CONNECT, input).await;
    // (service, scope, span) of every span, in output order.
    let mut rows = Vec::new();
    for rs in &output {
        let attributes = &rs.resource.as_ref().unwrap().attributes;
        let service = match &attributes[0].value.as_ref().unwrap().value {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("service.name {other:?}"),
        };
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                rows.push((
                    service.clone(),
                    ss.scope.as_ref().unwrap().name.clone(),
                    span.name.clone(),
                ));
            }
        }
    }
    assert_eq!(rows.len(), expected_rows.len(), "nothing lost or added");
    let mut sorted_rows = rows.clone();
    sorted_rows.sort_by(|a, b| a.2.cmp(&b.2));
    let mut sorted_expected = expected_rows.clone();
    sorted_expected.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        sorted_rows, sorted_expected,
        "every span under its service and scope"
    );
    // Within each service and resource of origin, spans keep their order.
    let order = |rows: &[(String, String, String)], service: &str, r: &str| -> Vec<String> {
        rows.iter()
            .filter(|row| row.0 == service && row.2.starts_with(r))
            .map(|row| row.2.clone())
            .collect()
    };
    for r in 0..6 {
        let prefix = format!("r{r}s");
        for service in [
            "connect-c0",
            "connect-c1",
            "connect-c2",
            &format!("worker-{r}"),
        ] {
            assert_eq!(
                order(&rows, service, &prefix),
                order(&expected_rows, service, &prefix),
                "{service} in resource {r}"
            );
        }
    }
}

fn decode_error(yaml: &str) -> String {
    match ServiceNameFactory.decode(&Value::from_yaml_str(yaml).unwrap()) {
        Ok(config) => panic!("{yaml} was accepted: {config:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn config_errors_name_the_field() {
    assert_eq!(
        decode_error("{}"),
        "sources: at least one source is required"
    );
    assert_eq!(
        decode_error("sources: [{attribute: a}, {pattern: 'x'}]"),
        "sources[1].attribute: must not be empty"
    );
    assert_eq!(
        decode_error("sources: [{attribute: a}, {attribute: b, pattern: '^c-(.+)-\\d+$'}]"),
        "sources[1].pattern: has capture groups but none named \"name\"; write (?P<name>...) around the connector name, or make the groups non-capturing (?:...) to use the whole match"
    );
    assert!(decode_error("sources: [{attribute: a, pattern: '[z-a]'}]")
        .starts_with("sources[0].pattern: invalid regular expression: "));
    assert_eq!(
        decode_error("sources: [{attribute: a}]\ntemplate: 'connect'"),
        "template: must contain {name}, where the connector name goes (got \"connect\")"
    );
    assert_eq!(
        decode_error("sources: [{attribute: a}]\noriginal_service_name_to: service.name"),
        "original_service_name_to: must not be service.name, which receives the new name"
    );
    assert!(decode_error("sources: [{attribute: a, name: b}]").contains("unknown field \"name\""));
    assert!(ServiceNameFactory
        .decode(&Value::from_yaml_str(KAFKA_CONNECT).unwrap())
        .is_ok());
}

#[test]
fn registered_for_every_signal() {
    let mut registry = Registry::default();
    ferrotel_processors::register(&mut registry);
    let registered = registry.processors.get("servicename").expect("registered");
    for signal in Signal::ALL {
        assert_eq!(registered.factory.stability(signal), Some(Stability::Alpha));
    }
    assert_eq!(registered.deprecated_for, None);
}

/// The `servicename` processors configured in the docs' examples, by ID.
fn documented_configs() -> Vec<(String, Value)> {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/processors.md");
    let text = std::fs::read_to_string(docs).unwrap();
    let section = text
        .split("\n## `servicename`\n")
        .nth(1)
        .expect("a servicename section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut configs = Vec::new();
    for block in section.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        let tree = Value::from_yaml_str(yaml).unwrap();
        let processors = tree.as_map().unwrap()["processors"].as_map().unwrap();
        for (id, config) in processors {
            if id == "servicename" || id.starts_with("servicename/") {
                configs.push((id.clone(), config.clone()));
            }
        }
    }
    configs
}

#[tokio::test]
async fn the_documented_examples_decode_and_behave() {
    let configs = documented_configs();
    let ids: Vec<&str> = configs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["servicename", "servicename/jobs"]);
    for (id, config) in &configs {
        if let Err(err) = ServiceNameFactory.decode(config) {
            panic!("{id}: {err}");
        }
    }
    // The Kafka Connect recipe is the one tested above, word for word.
    let recipe = ServiceNameFactory.decode(&configs[0].1).unwrap();
    let tested = ServiceNameFactory
        .decode(&Value::from_yaml_str(KAFKA_CONNECT).unwrap())
        .unwrap();
    assert_eq!(format!("{recipe:?}"), format!("{tested:?}"));

    // The job example: one service per job, whatever its version suffix. (JSON is YAML.)
    let jobs = configs[1].1.to_json().to_string();
    let s = || scope("org.apache.flink", &[]);
    let taskmanager = &[("service.name", "flink-taskmanager")];
    let output = run_traces(
        &jobs,
        vec![spans_under(
            resource(taskmanager),
            vec![(
                s(),
                vec![
                    span("a", &[("job.name", "enrich-orders-v12")]),
                    span("b", &[("job.name", "enrich-orders")]),
                    span("c", &[]),
                    span("d", &[("job.name", "fraud-v3")]),
                ],
            )],
        )],
    )
    .await;
    let job = |service: &str| {
        resource(&[
            ("service.name", service),
            ("service.namespace", "flink-taskmanager"),
        ])
    };
    assert_eq!(
        output,
        vec![
            spans_under(
                job("flink-enrich-orders"),
                vec![(
                    s(),
                    vec![
                        span("a", &[("job.name", "enrich-orders-v12")]),
                        span("b", &[("job.name", "enrich-orders")]),
                    ],
                )],
            ),
            spans_under(resource(taskmanager), vec![(s(), vec![span("c", &[])])]),
            spans_under(
                job("flink-fraud"),
                vec![(s(), vec![span("d", &[("job.name", "fraud-v3")])])],
            ),
        ]
    );
}
