//! The `filter` and `transform` processors built by their factories from YAML (upstream's
//! README examples among them), against a recording downstream: exact output, error modes,
//! the dropped-item counters and config errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use ferrotel_pipeline::component::{
    Accepted, ConsumeResult, Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{Factory, ProcessorFactory};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::logs::{LogRecord, ResourceLogs, ScopeLogs};
use ferrotel_pipeline::pdata::metrics::metric::Data;
use ferrotel_pipeline::pdata::metrics::{
    number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::trace::{span, ResourceSpans, ScopeSpans, Span};
use ferrotel_pipeline::pdata::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Logs,
    Metrics, Payload, Signal, Traces,
};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_processors::filter::FilterProcessorFactory;
use ferrotel_processors::transform::TransformProcessorFactory;

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

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(v),
        ..Default::default()
    }
}

fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, s(v))).collect()
}

fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

struct Built {
    processor: Arc<dyn ConsumerComponent>,
    sink: Arc<Sink>,
    telemetry: Arc<Telemetry>,
}

fn build<F: ProcessorFactory>(factory: F, name: &str, yaml: &str, signal: Signal) -> Built {
    let config = factory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .unwrap_or_else(|e| panic!("config {yaml}: {e}"));
    let sink = Arc::new(Sink::default());
    let telemetry = Telemetry::for_tests();
    let processor = factory
        .create(
            CreateSettings {
                id: ComponentId::new(name, None),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
            signal,
            sink.clone(),
        )
        .unwrap();
    Built {
        processor,
        sink,
        telemetry,
    }
}

fn config_error<F: Factory>(factory: F, yaml: &str) -> String {
    match factory.decode(&Value::from_yaml_str(yaml).unwrap()) {
        Ok(_) => panic!("accepted: {yaml}"),
        Err(e) => e.to_string(),
    }
}

impl Built {
    /// Runs one batch; `None` when nothing reached the next stage.
    async fn run(&self, input: Payload) -> Result<Option<Payload>, String> {
        let before = self.sink.received.lock().unwrap().len();
        self.processor
            .consume(Envelope::new(input))
            .await
            .map_err(|e| e.message)?;
        let mut received = self.sink.received.lock().unwrap();
        Ok((received.len() > before).then(|| received.pop().unwrap()))
    }

    fn filtered(&self, signal: Signal) -> u64 {
        self.telemetry.filter_processor("filter", signal).get()
    }
}

fn span(name: &str, a: &[(&str, &str)]) -> Span {
    Span {
        name: name.to_string(),
        attributes: attrs(a),
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        ..Default::default()
    }
}

fn traces(resources: Vec<(Vec<KeyValue>, Vec<Span>)>) -> Payload {
    Payload::Traces(Traces(ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(attributes, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".to_string(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }))
}

fn span_names(p: &Payload) -> Vec<String> {
    let Payload::Traces(t) = p else { panic!() };
    t.0.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
        .map(|s| s.name.clone())
        .collect()
}

fn number(v: i64, a: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(a),
        value: Some(number_data_point::Value::AsInt(v)),
        time_unix_nano: 1,
        ..Default::default()
    }
}

fn metrics(resource: &[(&str, &str)], metrics: Vec<Metric>) -> Payload {
    Payload::Metrics(Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: attrs(resource),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }))
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn sum(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn metric_list(p: &Payload) -> Vec<Metric> {
    let Payload::Metrics(m) = p else { panic!() };
    m.0.resource_metrics
        .iter()
        .flat_map(|rm| rm.scope_metrics.iter())
        .flat_map(|sm| sm.metrics.iter().cloned())
        .collect()
}

fn log(body: &str, severity: i32, a: &[(&str, &str)]) -> LogRecord {
    LogRecord {
        body: Some(s(body)),
        severity_number: severity,
        attributes: attrs(a),
        ..Default::default()
    }
}

fn logs(resource: &[(&str, &str)], records: Vec<LogRecord>) -> Payload {
    Payload::Logs(Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: attrs(resource),
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }))
}

fn log_list(p: &Payload) -> Vec<LogRecord> {
    let Payload::Logs(l) = p else { panic!() };
    l.0.resource_logs
        .iter()
        .flat_map(|rl| rl.scope_logs.iter())
        .flat_map(|sl| sl.log_records.iter().cloned())
        .collect()
}

/// The filter processor README's OTTL example.
const FILTER_README: &str = r#"
error_mode: ignore
traces:
  span:
    - 'attributes["container.name"] == "app_container_1"'
    - 'resource.attributes["host.name"] == "localhost"'
    - 'name == "app_3"'
  spanevent:
    - 'attributes["grpc"] == true'
    - 'IsMatch(name, ".*grpc.*")'
metrics:
  metric:
    - 'name == "my.metric" and resource.attributes["my_label"] == "abc123"'
    - 'type == METRIC_DATA_TYPE_HISTOGRAM'
  datapoint:
    - 'metric.type == METRIC_DATA_TYPE_SUMMARY'
    - 'resource.attributes["service.name"] == "my_service_name"'
logs:
  log_record:
    - 'IsMatch(body, ".*password.*")'
    - 'severity_number < SEVERITY_NUMBER_WARN'
"#;

#[tokio::test]
async fn filter_readme_example_drops_spans_and_events() {
    let f = build(
        FilterProcessorFactory,
        "filter",
        FILTER_README,
        Signal::Traces,
    );
    let mut keep = span("app_1", &[]);
    keep.events = vec![
        span::Event {
            name: "grpc.call".to_string(),
            ..Default::default()
        },
        span::Event {
            name: "exception".to_string(),
            ..Default::default()
        },
    ];
    let input = traces(vec![
        (
            attrs(&[("host.name", "web-1")]),
            vec![
                keep,
                span("app_2", &[("container.name", "app_container_1")]),
                span("app_3", &[]),
            ],
        ),
        (
            attrs(&[("host.name", "localhost")]),
            vec![span("app_4", &[])],
        ),
    ]);
    let out = f.run(input).await.unwrap().unwrap();
    assert_eq!(span_names(&out), ["app_1"]);
    let Payload::Traces(t) = &out else { panic!() };
    // The localhost resource lost every span and is gone; the grpc event is gone.
    assert_eq!(t.0.resource_spans.len(), 1);
    let events: Vec<&str> = t.0.resource_spans[0].scope_spans[0].spans[0]
        .events
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(events, ["exception"]);
    assert_eq!(f.filtered(Signal::Traces), 3);
}

#[tokio::test]
async fn filter_readme_example_drops_metrics_points_and_logs() {
    let f = build(
        FilterProcessorFactory,
        "filter",
        FILTER_README,
        Signal::Metrics,
    );
    let histogram = Metric {
        name: "latency".to_string(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint::default()],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let summary = Metric {
        name: "quantiles".to_string(),
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint::default(), SummaryDataPoint::default()],
        })),
        ..Default::default()
    };
    let input = metrics(
        &[("my_label", "abc123"), ("service.name", "other")],
        vec![
            gauge("my.metric", vec![number(1, &[])]),
            gauge("kept", vec![number(1, &[]), number(2, &[])]),
            histogram,
            summary,
        ],
    );
    let out = f.run(input).await.unwrap().unwrap();
    let names: Vec<String> = metric_list(&out).into_iter().map(|m| m.name).collect();
    // my.metric and the histogram by metric conditions; the summary lost both points.
    assert_eq!(names, ["kept"]);
    assert_eq!(f.filtered(Signal::Metrics), 4);

    // Only some points of a metric go.
    let f = build(
        FilterProcessorFactory,
        "filter",
        "metrics:\n  datapoint:\n    - 'attributes[\"route\"] == \"/health\"'\n",
        Signal::Metrics,
    );
    let input = metrics(
        &[],
        vec![sum(
            "requests",
            vec![
                number(1, &[("route", "/health")]),
                number(2, &[("route", "/orders")]),
            ],
        )],
    );
    let out = f.run(input).await.unwrap().unwrap();
    let m = metric_list(&out);
    let Some(Data::Sum(sum)) = &m[0].data else {
        panic!()
    };
    assert_eq!(sum.data_points.len(), 1);
    assert_eq!(
        get(&sum.data_points[0].attributes, "route"),
        Some(&s("/orders"))
    );
    assert_eq!(f.filtered(Signal::Metrics), 1);

    let f = build(
        FilterProcessorFactory,
        "filter",
        FILTER_README,
        Signal::Logs,
    );
    let input = logs(
        &[],
        vec![
            log("user password=1", 17, &[]),
            log("debug noise", 5, &[]),
            log("disk full", 17, &[]),
        ],
    );
    let out = f.run(input).await.unwrap().unwrap();
    let bodies: Vec<AnyValue> = log_list(&out).into_iter().filter_map(|l| l.body).collect();
    assert_eq!(bodies, [s("disk full")]);
    assert_eq!(f.filtered(Signal::Logs), 2);
}

#[tokio::test]
async fn filter_that_drops_everything_forwards_nothing() {
    // The SigNoz chart's filter that keeps only error logs.
    let f = build(
        FilterProcessorFactory,
        "filter",
        "logs:\n  log_record:\n    - 'not IsMatch(body, \".*error.*\")'\n",
        Signal::Logs,
    );
    let out = f
        .run(logs(
            &[],
            vec![log("all good", 9, &[]), log("fine", 9, &[])],
        ))
        .await
        .unwrap();
    assert!(out.is_none());
    assert_eq!(f.filtered(Signal::Logs), 2);
    let out = f
        .run(logs(
            &[],
            vec![log("an error happened", 17, &[]), log("fine", 9, &[])],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log_list(&out).len(), 1);
}

#[tokio::test]
async fn filter_error_modes() {
    let failing =
        "traces:\n  span:\n    - 'Substring(name, 10, 5) == \"x\"'\n    - 'name == \"drop\"'\n";
    let input = || traces(vec![(vec![], vec![span("short", &[]), span("drop", &[])])]);
    // propagate (the default): the batch is refused with the statement in the message.
    let f = build(FilterProcessorFactory, "filter", failing, Signal::Traces);
    let err = f.run(input()).await.unwrap_err();
    assert!(err.contains("Substring(name, 10, 5)"), "{err}");
    // ignore and silent: a failing condition is false; the next one still applies.
    for mode in ["ignore", "silent", "IGNORE"] {
        let f = build(
            FilterProcessorFactory,
            "filter",
            &format!("error_mode: {mode}\n{failing}"),
            Signal::Traces,
        );
        let out = f.run(input()).await.unwrap().unwrap();
        assert_eq!(span_names(&out), ["short"], "{mode}");
    }
}

#[tokio::test]
async fn filter_context_inferred_conditions() {
    let yaml = r#"
trace_conditions:
  - 'span.name == "a"'
  - 'resource.attributes["env"] == "dev"'
  - context: spanevent
    conditions: ['name == "noise"']
"#;
    let f = build(FilterProcessorFactory, "filter", yaml, Signal::Traces);
    let mut b = span("b", &[]);
    b.events = vec![span::Event {
        name: "noise".to_string(),
        ..Default::default()
    }];
    let out = f
        .run(traces(vec![
            (attrs(&[("env", "prod")]), vec![span("a", &[]), b]),
            (attrs(&[("env", "dev")]), vec![span("c", &[])]),
        ]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(span_names(&out), ["b"]);
    let Payload::Traces(t) = &out else { panic!() };
    assert!(t.0.resource_spans[0].scope_spans[0].spans[0]
        .events
        .is_empty());
    let err = config_error(
        FilterProcessorFactory,
        "trace_conditions: ['span.name == \"a\"']\ntraces:\n  span: ['name == \"b\"']\n",
    );
    assert!(err.contains("at the same time"), "{err}");
    let err = config_error(
        FilterProcessorFactory,
        "trace_conditions: ['name == \"a\"']\n",
    );
    assert!(err.contains("does not say its context"), "{err}");
    let err = config_error(
        FilterProcessorFactory,
        "traces:\n  span: ['name = \"a\"']\n",
    );
    assert!(
        err.contains("traces::span[0]: unable to parse OTTL condition \"name = \"a\"\""),
        "{err}"
    );
    let err = config_error(
        FilterProcessorFactory,
        "metric_conditions: ['log.body == \"a\"']\n",
    );
    assert!(err.contains("metrics do not have"), "{err}");
    let err = config_error(FilterProcessorFactory, "error_mode: loud\n");
    assert!(err.contains("ignore, propagate, silent"), "{err}");
}

/// The transform processor README's example (statements as upstream writes them).
const TRANSFORM_README: &str = r#"
error_mode: ignore
trace_statements:
  - context: resource
    statements:
      - keep_keys(attributes, ["service.name", "service.namespace", "cloud.region", "process.command_line"])
      - replace_pattern(attributes["process.command_line"], "password\\=[^\\s]*(\\s?)", "password=***")
      - limit(attributes, 100, [])
      - truncate_all(attributes, 4096)
  - context: span
    statements:
      - set(status.code, 1) where attributes["http.path"] == "/health"
      - set(name, attributes["http.route"])
      - replace_match(attributes["http.target"], "/user/*/list/*", "/user/{userId}/list/{listId}")
      - limit(attributes, 100, [])
      - truncate_all(attributes, 4096)
metric_statements:
  - context: resource
    statements:
      - keep_keys(attributes, ["host.name"])
      - truncate_all(attributes, 4096)
  - context: metric
    statements:
      - set(description, "Sum") where type == METRIC_DATA_TYPE_SUM
      - convert_sum_to_gauge() where name == "system.processes.count"
      - convert_gauge_to_sum("cumulative", false) where name == "prometheus_metric"
  - context: datapoint
    statements:
      - limit(attributes, 100, ["host.name"])
      - truncate_all(attributes, 4096)
log_statements:
  - context: resource
    statements:
      - keep_keys(attributes, ["service.name", "service.namespace", "cloud.region"])
  - context: log
    statements:
      - set(severity_text, "FAIL") where body == "request failed"
      - replace_all_matches(attributes, "/user/*/list/*", "/user/{userId}/list/{listId}")
      - replace_all_patterns(attributes, "value", "/account/\\d{4}", "/account/{accountId}")
      - set(body, attributes["http.route"])
"#;

#[tokio::test]
async fn transform_readme_example_on_traces() {
    let t = build(
        TransformProcessorFactory,
        "transform",
        TRANSFORM_README,
        Signal::Traces,
    );
    let input = traces(vec![(
        attrs(&[
            ("service.name", "shop"),
            ("host.name", "h1"),
            ("process.command_line", "run --password=secret --verbose"),
        ]),
        vec![span(
            "GET",
            &[
                ("http.path", "/health"),
                ("http.route", "/health/{check}"),
                ("http.target", "/user/42/list/7"),
            ],
        )],
    )]);
    let out = t.run(input).await.unwrap().unwrap();
    let Payload::Traces(tr) = &out else { panic!() };
    let rs = &tr.0.resource_spans[0];
    let resource = &rs.resource.as_ref().unwrap().attributes;
    let keys: Vec<&str> = resource.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["service.name", "process.command_line"]);
    assert_eq!(
        get(resource, "process.command_line"),
        Some(&s("run --password=***--verbose"))
    );
    let sp = &rs.scope_spans[0].spans[0];
    assert_eq!(sp.status.as_ref().unwrap().code, 1);
    assert_eq!(sp.name, "/health/{check}");
    assert_eq!(
        get(&sp.attributes, "http.target"),
        Some(&s("/user/{userId}/list/{listId}"))
    );
}

#[tokio::test]
async fn transform_readme_example_on_metrics_and_logs() {
    let t = build(
        TransformProcessorFactory,
        "transform",
        TRANSFORM_README,
        Signal::Metrics,
    );
    let input = metrics(
        &[("host.name", "h1"), ("os", "linux")],
        vec![
            sum("system.processes.count", vec![number(3, &[])]),
            gauge("prometheus_metric", vec![number(1, &[])]),
            sum("other", vec![number(1, &[])]),
        ],
    );
    let out = t.run(input).await.unwrap().unwrap();
    let Payload::Metrics(m) = &out else { panic!() };
    let keys: Vec<&str> = m.0.resource_metrics[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(keys, ["host.name"]);
    let ms = metric_list(&out);
    assert!(matches!(ms[0].data, Some(Data::Gauge(_))));
    assert_eq!(ms[0].description, "Sum");
    assert!(matches!(
        ms[1].data,
        Some(Data::Sum(Sum {
            aggregation_temporality: 2,
            is_monotonic: false,
            ..
        }))
    ));
    assert_eq!(ms[2].description, "Sum");

    let t = build(
        TransformProcessorFactory,
        "transform",
        TRANSFORM_README,
        Signal::Logs,
    );
    let input = logs(
        &[("service.name", "shop"), ("pod", "p-1")],
        vec![log(
            "request failed",
            17,
            &[
                ("http.route", "/orders"),
                ("path", "/user/1/list/2"),
                ("acct", "/account/1234/x"),
            ],
        )],
    );
    let out = t.run(input).await.unwrap().unwrap();
    let l = &log_list(&out)[0];
    assert_eq!(l.severity_text, "FAIL");
    assert_eq!(
        get(&l.attributes, "path"),
        Some(&s("/user/{userId}/list/{listId}"))
    );
    assert_eq!(
        get(&l.attributes, "acct"),
        Some(&s("/account/{accountId}/x"))
    );
    assert_eq!(l.body, Some(s("/orders")));
}

#[tokio::test]
async fn transform_flat_statements_and_error_modes() {
    let yaml = r#"
log_statements:
  - 'set(log.attributes["parsed"], ParseJSON(log.body))'
  - 'set(log.attributes["level"], log.attributes["parsed"]["level"])'
  - 'set(resource.attributes["seen"], true)'
"#;
    let input = || {
        logs(
            &[],
            vec![log("not json", 9, &[]), log(r#"{"level":"warn"}"#, 9, &[])],
        )
    };
    // propagate: the first record fails, so the batch is refused.
    let t = build(TransformProcessorFactory, "transform", yaml, Signal::Logs);
    let err = t.run(input()).await.unwrap_err();
    assert!(err.contains("failed to execute statement"), "{err}");
    assert!(err.contains("ParseJSON"), "{err}");
    // ignore: the failing statement is skipped; the others run on every record.
    let t = build(
        TransformProcessorFactory,
        "transform",
        &format!("error_mode: ignore\n{yaml}"),
        Signal::Logs,
    );
    let out = t.run(input()).await.unwrap().unwrap();
    let records = log_list(&out);
    assert!(get(&records[0].attributes, "level").is_none());
    assert_eq!(get(&records[1].attributes, "level"), Some(&s("warn")));
    let Payload::Logs(l) = &out else { panic!() };
    assert_eq!(
        get(
            &l.0.resource_logs[0].resource.as_ref().unwrap().attributes,
            "seen"
        ),
        Some(&AnyValue {
            value: Some(any_value::Value::BoolValue(true))
        })
    );
    // A group's own error_mode wins over the processor's.
    let yaml = r#"
error_mode: propagate
log_statements:
  - context: log
    error_mode: silent
    conditions: ['severity_number >= SEVERITY_NUMBER_INFO']
    statements: ['set(attributes["x"], ParseJSON(body)["level"])']
"#;
    let t = build(TransformProcessorFactory, "transform", yaml, Signal::Logs);
    let out = t.run(input()).await.unwrap().unwrap();
    assert_eq!(get(&log_list(&out)[1].attributes, "x"), Some(&s("warn")));
}

#[tokio::test]
async fn transform_config_errors_point_at_the_statement() {
    let err = config_error(
        TransformProcessorFactory,
        "trace_statements:\n  - context: span\n    statements: ['set(name, \"x\"']\n",
    );
    assert!(
        err.contains("trace_statements[0]: unable to parse OTTL statement \"set(name, \"x\"\"")
            && err.contains("column 14"),
        "{err}"
    );
    let err = config_error(
        TransformProcessorFactory,
        "metric_statements:\n  - context: span\n    statements: ['set(name, \"x\")']\n",
    );
    assert!(
        err.contains("unknown context \"span\" for metrics"),
        "{err}"
    );
    let err = config_error(
        TransformProcessorFactory,
        "log_statements:\n  - context: log\n    statements: ['set(metric.name, \"x\")']\n",
    );
    assert!(err.contains("not available in the log context"), "{err}");
    let err = config_error(
        TransformProcessorFactory,
        "trace_statements:\n  - {context: span}\n",
    );
    assert!(err.contains("at least one statement"), "{err}");
    let err = config_error(
        TransformProcessorFactory,
        "trace_statements:\n  - context: span\n    statement: []\n",
    );
    assert!(err.contains("statement"), "{err}");
}

#[tokio::test]
async fn filter_include_exclude_form() {
    let yaml = r#"
spans:
  include:
    match_type: strict
    services: [app_3, app_4]
  exclude:
    match_type: regexp
    span_names: ['^hello']
metrics:
  include:
    match_type: regexp
    metric_names: [prefix/.*, prefix_.*]
  exclude:
    match_type: strict
    metric_names: [prefix_skip]
logs:
  include:
    match_type: strict
    resource_attributes:
      - {key: host.name, value: web}
  exclude:
    match_type: regexp
    bodies: ['^debug']
"#;
    let f = build(FilterProcessorFactory, "filter", yaml, Signal::Traces);
    let out = f
        .run(traces(vec![
            (
                attrs(&[("service.name", "app_3")]),
                vec![span("hello_world", &[]), span("checkout", &[])],
            ),
            (attrs(&[("service.name", "app_1")]), vec![span("pay", &[])]),
        ]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(span_names(&out), ["checkout"]);
    assert_eq!(f.filtered(Signal::Traces), 2);

    let f = build(FilterProcessorFactory, "filter", yaml, Signal::Metrics);
    let out = f
        .run(metrics(
            &[],
            vec![
                gauge("prefix/a", vec![number(1, &[])]),
                gauge("prefix_skip", vec![number(1, &[])]),
                gauge("other", vec![number(1, &[])]),
                gauge("prefix_b", vec![number(1, &[])]),
            ],
        ))
        .await
        .unwrap()
        .unwrap();
    let names: Vec<String> = metric_list(&out).into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["prefix/a", "prefix_b"]);
    assert_eq!(f.filtered(Signal::Metrics), 2);

    let f = build(FilterProcessorFactory, "filter", yaml, Signal::Logs);
    let out = f
        .run(logs(
            &[("host.name", "web")],
            vec![log("debug: x", 5, &[]), log("kept", 9, &[])],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log_list(&out).len(), 1);
    let out = f
        .run(logs(&[("host.name", "db")], vec![log("kept?", 9, &[])]))
        .await
        .unwrap();
    assert!(out.is_none(), "a record outside include is dropped");

    let err = config_error(
        FilterProcessorFactory,
        "spans:\n  include:\n    match_type: strict\n    services: [a]\ntraces:\n  span: ['name == \"x\"']\n",
    );
    assert!(err.contains("at the same time"), "{err}");
    let err = config_error(
        FilterProcessorFactory,
        "spans:\n  include:\n    match_type: regexp\n    log_bodies: [x]\n",
    );
    assert!(err.contains("log_bodies"), "{err}");
}
