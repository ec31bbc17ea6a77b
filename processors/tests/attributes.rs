//! The `attributes` processor through its factory with a recording downstream: upstream's
//! README and example configurations on spans, logs and metrics, include/exclude selection,
//! configuration errors, and what it hands on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use ferrotel_pipeline::component::{
    Accepted, Ack, ClientInfo, ConsumeResult, Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::expand::expand;
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{Factory, ProcessorFactory, Registry, Stability};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::metrics::{metric::Data, Metric};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{
    logs, metrics, trace, Encoded, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, Logs, Metrics, Payload, Signal, Traces,
};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_processors::attributes::AttributesProcessorFactory;

use any_value::Value as V;

// ---- telemetry builders ------------------------------------------------------------------

fn s(text: &str) -> V {
    V::StringValue(text.to_string())
}

fn int(n: i64) -> V {
    V::IntValue(n)
}

fn boolean(b: bool) -> V {
    V::BoolValue(b)
}

fn kv(key: &str, value: V) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

fn service(name: &str) -> Option<Resource> {
    resource(vec![kv("service.name", s(name))])
}

fn scope(name: &str, version: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: version.into(),
        ..Default::default()
    })
}

/// One span per resource, so each carries its own resource and scope.
struct SpanAt {
    resource: Option<Resource>,
    scope: Option<InstrumentationScope>,
    name: &'static str,
    kind: i32,
    attributes: Vec<KeyValue>,
}

fn span_at(resource: Option<Resource>, attributes: Vec<KeyValue>) -> SpanAt {
    SpanAt {
        resource,
        scope: None,
        name: "span",
        kind: 0,
        attributes,
    }
}

fn traces(spans: Vec<SpanAt>) -> Payload {
    Payload::Traces(Traces(ExportTraceServiceRequest {
        resource_spans: spans
            .into_iter()
            .map(|sp| trace::ResourceSpans {
                resource: sp.resource,
                scope_spans: vec![trace::ScopeSpans {
                    scope: sp.scope,
                    spans: vec![trace::Span {
                        name: sp.name.into(),
                        kind: sp.kind,
                        attributes: sp.attributes,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

fn span_attributes(payload: &Payload) -> Vec<Vec<KeyValue>> {
    let Payload::Traces(t) = payload else {
        panic!("not traces: {payload:?}")
    };
    t.0.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|sp| sp.attributes.clone())
        .collect()
}

struct LogAt {
    resource: Option<Resource>,
    body: &'static str,
    severity_text: &'static str,
    severity_number: i32,
    attributes: Vec<KeyValue>,
}

fn log_at(body: &'static str, severity_text: &'static str, attributes: Vec<KeyValue>) -> LogAt {
    LogAt {
        resource: None,
        body,
        severity_text,
        severity_number: 0,
        attributes,
    }
}

fn logs(records: Vec<LogAt>) -> Payload {
    Payload::Logs(Logs(ExportLogsServiceRequest {
        resource_logs: records
            .into_iter()
            .map(|lr| logs::ResourceLogs {
                resource: lr.resource,
                scope_logs: vec![logs::ScopeLogs {
                    log_records: vec![logs::LogRecord {
                        body: Some(AnyValue {
                            value: Some(s(lr.body)),
                        }),
                        severity_text: lr.severity_text.into(),
                        severity_number: lr.severity_number,
                        attributes: lr.attributes,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

fn log_attributes(payload: &Payload) -> Vec<Vec<KeyValue>> {
    let Payload::Logs(l) = payload else {
        panic!("not logs: {payload:?}")
    };
    l.0.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .map(|lr| lr.attributes.clone())
        .collect()
}

/// A metric of every kind, each with one data point carrying `attributes`.
fn every_metric_kind(attributes: Vec<KeyValue>) -> Vec<Metric> {
    let a = || attributes.clone();
    vec![
        Metric {
            name: "gauge".into(),
            data: Some(Data::Gauge(metrics::Gauge {
                data_points: vec![metrics::NumberDataPoint {
                    attributes: a(),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
        Metric {
            name: "sum".into(),
            data: Some(Data::Sum(metrics::Sum {
                data_points: vec![metrics::NumberDataPoint {
                    attributes: a(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        },
        Metric {
            name: "histogram".into(),
            data: Some(Data::Histogram(metrics::Histogram {
                data_points: vec![metrics::HistogramDataPoint {
                    attributes: a(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        },
        Metric {
            name: "exponential_histogram".into(),
            data: Some(Data::ExponentialHistogram(metrics::ExponentialHistogram {
                data_points: vec![metrics::ExponentialHistogramDataPoint {
                    attributes: a(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        },
        Metric {
            name: "summary".into(),
            data: Some(Data::Summary(metrics::Summary {
                data_points: vec![metrics::SummaryDataPoint {
                    attributes: a(),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ]
}

fn metrics_payload(resource: Option<Resource>, metrics: Vec<Metric>) -> Payload {
    Payload::Metrics(Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![metrics::ResourceMetrics {
            resource,
            scope_metrics: vec![metrics::ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

/// Every data point's attributes, by metric name.
fn point_attributes(payload: &Payload) -> Vec<(String, Vec<KeyValue>)> {
    let Payload::Metrics(m) = payload else {
        panic!("not metrics: {payload:?}")
    };
    let mut out = Vec::new();
    for metric in
        m.0.resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
    {
        let points: Vec<Vec<KeyValue>> = match &metric.data {
            Some(Data::Gauge(g)) => g.data_points.iter().map(|p| p.attributes.clone()).collect(),
            Some(Data::Sum(g)) => g.data_points.iter().map(|p| p.attributes.clone()).collect(),
            Some(Data::Histogram(g)) => {
                g.data_points.iter().map(|p| p.attributes.clone()).collect()
            }
            Some(Data::ExponentialHistogram(g)) => {
                g.data_points.iter().map(|p| p.attributes.clone()).collect()
            }
            Some(Data::Summary(g)) => g.data_points.iter().map(|p| p.attributes.clone()).collect(),
            None => vec![],
        };
        for p in points {
            out.push((metric.name.clone(), p));
        }
    }
    out
}

// ---- the processor -------------------------------------------------------------------------

#[derive(Default)]
struct Sink {
    got: Mutex<Vec<Envelope>>,
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.got.lock().unwrap().push(envelope);
        Ok(Accepted::default())
    }
}

fn settings() -> CreateSettings {
    CreateSettings {
        id: ComponentId::new("attributes", None),
        telemetry: Telemetry::for_tests(),
    }
}

/// The YAML of one processor, with `${env:...}` expanded from `env`.
fn tree(yaml: &str, env: &[(&str, &str)]) -> Value {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut notes = Vec::new();
    expand(
        Value::from_yaml_str(yaml).unwrap(),
        &|name| env.get(name).cloned(),
        &mut notes,
    )
    .unwrap()
}

fn build_with_env(
    yaml: &str,
    env: &[(&str, &str)],
    signal: Signal,
) -> Result<(Arc<dyn ConsumerComponent>, Arc<Sink>), String> {
    let config = AttributesProcessorFactory
        .decode(&tree(yaml, env))
        .map_err(|e| e.to_string())?;
    let sink = Arc::new(Sink::default());
    let processor = AttributesProcessorFactory
        .create(settings(), config.as_ref(), signal, sink.clone())
        .map_err(|e| e.to_string())?;
    Ok((processor, sink))
}

fn build(yaml: &str, signal: Signal) -> Result<(Arc<dyn ConsumerComponent>, Arc<Sink>), String> {
    build_with_env(yaml, &[], signal)
}

async fn run_with(yaml: &str, payload: Payload, client: Option<ClientInfo>) -> Payload {
    let (processor, sink) = build(yaml, payload.signal()).unwrap();
    let envelope = Envelope::new(payload).with_client(client.map(Arc::new));
    processor.consume(envelope).await.unwrap();
    let mut got = sink.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    got.pop().unwrap().into_payload()
}

async fn run(yaml: &str, payload: Payload) -> Payload {
    run_with(yaml, payload, None).await
}

// ---- upstream's README -----------------------------------------------------------------------

#[tokio::test]
async fn readme_value_from_attribute_from_context_and_default_value_forms() {
    let yaml = r#"
actions:
  - key: tier
    action: insert
    value: backend
  - key: copied
    action: upsert
    from_attribute: original
  - key: tenant
    action: update
    from_context: metadata.x-tenant
  - key: region
    action: insert
    from_attribute: cloud.region
    default_value: us-east-1
"#;
    let client = ClientInfo {
        addr: None,
        metadata: vec![("x-tenant".into(), "acme".into())],
    };
    let out = run_with(
        yaml,
        traces(vec![
            span_at(None, vec![kv("original", int(7)), kv("tenant", s("old"))]),
            span_at(
                None,
                vec![
                    kv("tier", s("frontend")),
                    kv("cloud.region", s("eu-west-1")),
                ],
            ),
        ]),
        Some(client),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![
            vec![
                kv("original", int(7)),
                kv("tenant", s("acme")),
                kv("tier", s("backend")),
                kv("copied", int(7)),
                kv("region", s("us-east-1")),
            ],
            vec![
                kv("tier", s("frontend")),
                kv("cloud.region", s("eu-west-1")),
                kv("region", s("eu-west-1")),
            ],
        ]
    );
}

#[tokio::test]
async fn readme_delete_hash_extract_convert_forms() {
    let yaml = r#"
actions:
  - key: credit_card
    action: delete
    pattern: ^secret\.
  - key: user.email
    action: hash
    pattern: ^token$
  - key: http.route
    pattern: ^/api/v1/document/(?P<documentId>.*)/update$
    action: extract
  - key: http.status_code
    action: convert
    converted_type: int
"#;
    let out = run(
        yaml,
        traces(vec![span_at(
            None,
            vec![
                kv("credit_card", s("1234")),
                kv("secret.a", s("x")),
                kv("user.email", s("john.doe@example.com")),
                kv("token", boolean(true)),
                kv("http.route", s("/api/v1/document/12345678/update")),
                kv("http.status_code", s("200")),
            ],
        )]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![vec![
            kv(
                "user.email",
                s("836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f")
            ),
            kv(
                "token",
                s("4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a")
            ),
            kv("http.route", s("/api/v1/document/12345678/update")),
            kv("http.status_code", int(200)),
            kv("documentId", s("12345678")),
        ]]
    );
}

/// The README's sample configuration, on spans, log records and every kind of data point.
#[tokio::test]
async fn readme_sample_configuration() {
    let yaml = r#"
actions:
  - key: db.table
    action: delete
  - key: redacted_span
    value: true
    action: upsert
  - key: copy_key
    from_attribute: key_original
    action: update
  - key: account_id
    value: 2245
    action: insert
  - key: account_password
    action: delete
  - key: account_email
    action: hash
  - key: http.status_code
    action: convert
    converted_type: int
  # Use default_value when source attribute doesn't exist
  - key: region
    from_attribute: cloud.region
    default_value: "us-east-1"
    action: insert
  # Use default_value when context value is not available
  - key: tenant_id
    from_context: "metadata.tenant"
    default_value: "default-tenant"
    action: upsert
"#;
    let input = vec![
        kv("db.table", s("users")),
        kv("copy_key", s("old")),
        kv("key_original", s("new")),
        kv("account_password", s("hunter2")),
        kv("account_email", s("foo")),
        kv("http.status_code", s("404")),
    ];
    let want_with_tenant = |tenant: &str| {
        vec![
            kv("copy_key", s("new")),
            kv("key_original", s("new")),
            kv(
                "account_email",
                s("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"),
            ),
            kv("http.status_code", int(404)),
            kv("redacted_span", boolean(true)),
            kv("account_id", int(2245)),
            kv("region", s("us-east-1")),
            kv("tenant_id", s(tenant)),
        ]
    };

    let out = run(yaml, traces(vec![span_at(None, input.clone())])).await;
    assert_eq!(
        span_attributes(&out),
        vec![want_with_tenant("default-tenant")]
    );

    let client = ClientInfo {
        addr: None,
        metadata: vec![("tenant".into(), "acme".into())],
    };
    let out = run_with(
        yaml,
        logs(vec![log_at("b", "", input.clone())]),
        Some(client),
    )
    .await;
    assert_eq!(log_attributes(&out), vec![want_with_tenant("acme")]);

    let out = run(yaml, metrics_payload(None, every_metric_kind(input))).await;
    let points = point_attributes(&out);
    assert_eq!(points.len(), 5);
    for (name, attributes) in points {
        assert_eq!(attributes, want_with_tenant("default-tenant"), "{name}");
    }
}

/// The README's include/exclude template with every property filled in.
#[tokio::test]
async fn readme_include_exclude_for_spans() {
    let yaml = r#"
include:
  match_type: regexp
  regexp:
    cacheenabled: true
    cachemaxnumentries: 100
  services: ["^svc"]
  resources:
    - key: host.type
      value: "^n1-"
  libraries:
    - name: "^io\\.opentelemetry"
      version: "^1\\."
  span_names: ["^GET "]
  span_kinds: ["SERVER|CLIENT"]
  attributes:
    - key: env
      value: "^prod"
    - key: tenant
exclude:
  match_type: strict
  attributes:
    - key: keep_secret
      value: true
actions:
  - key: password
    action: delete
"#;
    let base = || SpanAt {
        resource: resource(vec![
            kv("service.name", s("svc-web")),
            kv("host.type", s("n1-standard-1")),
        ]),
        scope: scope("io.opentelemetry.http", "1.2.0"),
        name: "GET /users",
        kind: 2,
        attributes: vec![
            kv("env", s("production")),
            kv("tenant", s("a")),
            kv("password", s("pw")),
        ],
    };
    let variants: Vec<(&str, SpanAt, bool)> = vec![
        ("all properties match", base(), true),
        (
            "service",
            SpanAt {
                resource: resource(vec![
                    kv("service.name", s("web")),
                    kv("host.type", s("n1-standard-1")),
                ]),
                ..base()
            },
            false,
        ),
        (
            "resource",
            SpanAt {
                resource: resource(vec![
                    kv("service.name", s("svc-web")),
                    kv("host.type", s("e2-small")),
                ]),
                ..base()
            },
            false,
        ),
        (
            "library name",
            SpanAt {
                scope: scope("com.example", "1.2.0"),
                ..base()
            },
            false,
        ),
        (
            "library version",
            SpanAt {
                scope: scope("io.opentelemetry.http", "2.0.0"),
                ..base()
            },
            false,
        ),
        (
            "span name",
            SpanAt {
                name: "POST /users",
                ..base()
            },
            false,
        ),
        ("span kind client", SpanAt { kind: 3, ..base() }, true),
        ("span kind internal", SpanAt { kind: 1, ..base() }, false),
        (
            "attribute value",
            SpanAt {
                attributes: vec![
                    kv("env", s("staging")),
                    kv("tenant", s("a")),
                    kv("password", s("pw")),
                ],
                ..base()
            },
            false,
        ),
        (
            "attribute key",
            SpanAt {
                attributes: vec![kv("env", s("prod")), kv("password", s("pw"))],
                ..base()
            },
            false,
        ),
        (
            "excluded",
            SpanAt {
                attributes: vec![
                    kv("env", s("prod")),
                    kv("tenant", s("a")),
                    kv("password", s("pw")),
                    kv("keep_secret", boolean(true)),
                ],
                ..base()
            },
            false,
        ),
        (
            "exclude compares types",
            SpanAt {
                attributes: vec![
                    kv("env", s("prod")),
                    kv("tenant", s("a")),
                    kv("password", s("pw")),
                    kv("keep_secret", s("true")),
                ],
                ..base()
            },
            true,
        ),
    ];
    for (what, span, edited) in variants {
        let before = span.attributes.clone();
        let out = run(yaml, traces(vec![span])).await;
        let after = &span_attributes(&out)[0];
        let removed = before.len() - after.len();
        assert_eq!(removed == 1, edited, "{what}: {after:?}");
        assert!(after.iter().all(|a| before.contains(a)), "{what}");
    }
}

#[tokio::test]
async fn readme_include_exclude_for_logs_and_metrics() {
    let logs_yaml = r#"
include:
  match_type: strict
  log_bodies: ["login failed"]
  log_severity_texts: ["WARN", "ERROR"]
  log_severity_number:
    min: 13
    match_undefined: false
actions:
  - {key: flagged, value: true, action: insert}
"#;
    let flagged = |lr: LogAt| async {
        let out = run(logs_yaml, logs(vec![lr])).await;
        log_attributes(&out)[0] == vec![kv("flagged", boolean(true))]
    };
    let record = |body, text, number| LogAt {
        severity_number: number,
        ..log_at(body, text, vec![])
    };
    assert!(flagged(record("login failed", "WARN", 13)).await);
    assert!(flagged(record("login failed", "ERROR", 17)).await);
    assert!(!flagged(record("login ok", "WARN", 13)).await);
    assert!(!flagged(record("login failed", "INFO", 13)).await);
    assert!(!flagged(record("login failed", "WARN", 9)).await);
    assert!(!flagged(record("login failed", "WARN", 0)).await);

    let metrics_yaml = r#"
exclude:
  match_type: regexp
  metric_names: ["histogram$"]
actions:
  - {key: seen, value: 1, action: insert}
"#;
    let out = run(
        metrics_yaml,
        metrics_payload(None, every_metric_kind(vec![])),
    )
    .await;
    let edited: Vec<(String, bool)> = point_attributes(&out)
        .into_iter()
        .map(|(name, attributes)| (name, attributes == vec![kv("seen", int(1))]))
        .collect();
    assert_eq!(
        edited,
        vec![
            ("gauge".to_string(), true),
            ("sum".to_string(), true),
            ("histogram".to_string(), false),
            ("exponential_histogram".to_string(), false),
            ("summary".to_string(), true),
        ]
    );
}

// ---- upstream's example configurations (processor/attributesprocessor/testdata) ---------------

#[tokio::test]
async fn example_insert() {
    let yaml = r#"
actions:
  - key: "attribute1"
    value: 123
    action: insert
  - key: "string key"
    from_attribute: "anotherkey"
    action: insert
"#;
    let out = run(
        yaml,
        traces(vec![
            span_at(None, vec![]),
            span_at(
                None,
                vec![kv("anotherkey", s("v")), kv("attribute1", s("x"))],
            ),
        ]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![
            vec![kv("attribute1", int(123))],
            vec![
                kv("anotherkey", s("v")),
                kv("attribute1", s("x")),
                kv("string key", s("v")),
            ],
        ]
    );
}

#[tokio::test]
async fn example_regex_insert_is_refused_for_its_unnamed_group() {
    // Upstream's example has `(\?|\&)`, an unnamed group, which upstream refuses too.
    let yaml = r#"
actions:
  - key: "http.url"
    pattern: ^(?P<http_protocol>.*):\/\/(?P<http_domain>.*)\/(?P<http_path>.*)(\?|\&)(?P<http_query_params>.*)
    action: extract
"#;
    assert_eq!(
        build(yaml, Signal::Traces).err().unwrap(),
        r#"error with key "http.url" (0-th action): error creating AttrProc. Field "pattern" contains at least one unnamed matcher group"#
    );
    // With the group made non-capturing it does what the example's comment says.
    let fixed = yaml.replace(r"(\?|\&)", r"(?:\?|\&)");
    let url = "http://example.com/path?queryParam1=value1,queryParam2=value2";
    let out = run(
        &fixed,
        traces(vec![span_at(None, vec![kv("http.url", s(url))])]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![vec![
            kv("http.url", s(url)),
            kv("http_protocol", s("http")),
            kv("http_domain", s("example.com")),
            kv("http_path", s("path")),
            kv(
                "http_query_params",
                s("queryParam1=value1,queryParam2=value2")
            ),
        ]]
    );
}

#[tokio::test]
async fn example_update_upsert_delete_hash_convert() {
    let update = r#"
actions:
  - key: "boo"
    from_attribute: "foo"
    action: update
  - key: db.secret
    value: redacted
    action: update
"#;
    let out = run(
        update,
        traces(vec![
            span_at(None, vec![kv("foo", s("f"))]),
            span_at(
                None,
                vec![
                    kv("boo", s("b")),
                    kv("foo", s("f")),
                    kv("db.secret", s("pw")),
                ],
            ),
        ]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![
            vec![kv("foo", s("f"))],
            vec![
                kv("boo", s("f")),
                kv("foo", s("f")),
                kv("db.secret", s("redacted"))
            ],
        ]
    );

    let upsert = r#"
actions:
  - key: region
    value: "planet-earth"
    action: upsert
  - key: new_user_key
    from_attribute: user_key
    action: upsert
"#;
    let out = run(
        upsert,
        traces(vec![
            span_at(None, vec![kv("region", s("mars"))]),
            span_at(None, vec![kv("user_key", int(1))]),
        ]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![
            vec![kv("region", s("planet-earth"))],
            vec![
                kv("user_key", int(1)),
                kv("region", s("planet-earth")),
                kv("new_user_key", int(1)),
            ],
        ]
    );

    let delete = r#"
actions:
  - key: credit_card
    action: delete
  - key: duplicate_key
    action: delete
"#;
    let out = run(
        delete,
        traces(vec![span_at(
            None,
            vec![
                kv("credit_card", s("1")),
                kv("a", s("b")),
                kv("duplicate_key", s("2")),
            ],
        )]),
    )
    .await;
    assert_eq!(span_attributes(&out), vec![vec![kv("a", s("b"))]]);

    let hash = "actions:\n  - key: user.email\n    action: hash\n";
    let out = run(
        hash,
        traces(vec![span_at(
            None,
            vec![kv("user.email", s("john.doe@example.com"))],
        )]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![vec![kv(
            "user.email",
            s("836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f")
        )]]
    );

    let convert =
        "actions:\n  - key: http.status_code\n    action: convert\n    converted_type: int\n";
    let out = run(
        convert,
        traces(vec![
            span_at(None, vec![kv("http.status_code", s("500"))]),
            span_at(None, vec![kv("http.status_code", s("five hundred"))]),
        ]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![
            vec![kv("http.status_code", int(500))],
            vec![kv("http.status_code", s("five hundred"))],
        ]
    );
}

const DELETE_CARD: &str = r#"
    actions:
      - key: credit_card
        action: delete
      - key: duplicate_key
        action: delete
"#;

#[tokio::test]
async fn example_excludemulti() {
    let yaml = format!(
        r#"
    exclude:
      match_type: strict
      services: ["svcA", "svcB"]
      attributes:
        - {{key: env, value: "dev"}}
        - {{key: test_request}}
{DELETE_CARD}"#
    );
    let spans = vec![
        span_at(
            service("svcB"),
            vec![
                kv("env", s("dev")),
                kv("test_request", int(123)),
                kv("credit_card", s("1234")),
            ],
        ),
        span_at(
            service("svcA"),
            vec![kv("env", s("dev")), kv("test_request", boolean(false))],
        ),
        span_at(
            service("svcB"),
            vec![
                kv("env", int(1)),
                kv("test_request", s("dev")),
                kv("credit_card", s("1234")),
            ],
        ),
        span_at(
            service("svcC"),
            vec![kv("env", s("dev")), kv("test_request", boolean(false))],
        ),
    ];
    let out = run(&yaml, traces(spans)).await;
    assert_eq!(
        span_attributes(&out),
        vec![
            // Span1 and Span2 match the exclude properties: untouched.
            vec![
                kv("env", s("dev")),
                kv("test_request", int(123)),
                kv("credit_card", s("1234"))
            ],
            vec![kv("env", s("dev")), kv("test_request", boolean(false))],
            // Span3 (env is an int) and Span4 (svcC) are processed.
            vec![kv("env", int(1)), kv("test_request", s("dev"))],
            vec![kv("env", s("dev")), kv("test_request", boolean(false))],
        ]
    );
}

#[tokio::test]
async fn example_excluderesources_and_excludelibrary() {
    let resources = format!(
        r#"
    exclude:
      match_type: strict
      resources:
        - {{key: host.type, value: "n1-standard-1"}}
{DELETE_CARD}"#
    );
    let card = || vec![kv("credit_card", s("1234"))];
    let out = run(
        &resources,
        traces(vec![
            span_at(resource(vec![kv("host.type", s("n1-standard-1"))]), card()),
            span_at(resource(vec![kv("host.type", s("n1-standard-2"))]), card()),
            span_at(None, card()),
        ]),
    )
    .await;
    assert_eq!(span_attributes(&out), vec![card(), vec![], vec![]]);

    let library = format!(
        r#"
    exclude:
      match_type: strict
      libraries:
        - {{name: "mongo-java-driver", version: "3.8.0"}}
{DELETE_CARD}"#
    );
    let at = |name, version| SpanAt {
        scope: scope(name, version),
        ..span_at(None, card())
    };
    let out = run(
        &library,
        traces(vec![
            at("mongo-java-driver", "3.8.0"),
            at("mongo-java-driver", "3.9.0"),
            at("mongo-java-driver", ""),
            at("redis", "3.8.0"),
        ]),
    )
    .await;
    assert_eq!(span_attributes(&out), vec![card(), vec![], vec![], vec![]]);
}

#[tokio::test]
async fn example_includeservices() {
    let yaml = format!(
        r#"
    include:
      match_type: regexp
      services: ["auth.*", "login.*"]
{DELETE_CARD}"#
    );
    let card = || vec![kv("credit_card", s("1234"))];
    let out = run(
        &yaml,
        traces(vec![
            span_at(service("auth-service"), card()),
            span_at(service("login"), card()),
            span_at(service("billing"), card()),
            span_at(None, card()),
        ]),
    )
    .await;
    assert_eq!(span_attributes(&out), vec![vec![], vec![], card(), card()]);
}

#[tokio::test]
async fn example_selectiveprocessing() {
    let yaml = format!(
        r#"
    include:
      match_type: strict
      services: ["svcA", "svcB"]
    exclude:
      match_type: strict
      attributes:
        - {{ key: redact_trace, value: false}}
{DELETE_CARD}"#
    );
    let spans = vec![
        span_at(
            service("svcB"),
            vec![
                kv("env", s("production")),
                kv("test_request", int(123)),
                kv("credit_card", s("1234")),
                kv("redact_trace", s("false")),
            ],
        ),
        span_at(
            service("svcA"),
            vec![
                kv("env", s("staging")),
                kv("test_request", boolean(false)),
                kv("redact_trace", boolean(true)),
            ],
        ),
        span_at(
            service("svcB"),
            vec![
                kv("env", s("production")),
                kv("test_request", boolean(true)),
                kv("credit_card", s("1234")),
                kv("redact_trace", boolean(false)),
            ],
        ),
        span_at(
            service("svcC"),
            vec![
                kv("env", s("dev")),
                kv("test_request", boolean(false)),
                kv("credit_card", s("1")),
            ],
        ),
    ];
    let out = run(&yaml, traces(spans)).await;
    let cards: Vec<bool> = span_attributes(&out)
        .iter()
        .map(|a| a.iter().any(|kv| kv.key == "credit_card"))
        .collect();
    // Span1 (redact_trace is a string) is processed; Span3 is excluded; Span4 not included.
    assert_eq!(cards, vec![false, false, true, true]);
}

#[tokio::test]
async fn example_complex() {
    let yaml = r#"
    actions:
      - key: operation
        value: default
        action: insert
      - key: svc.operation
        from_attribute: operation
        action: upsert
      - key: operation
        action: delete
"#;
    let out = run(
        yaml,
        traces(vec![
            span_at(
                None,
                vec![
                    kv("timeout", int(10)),
                    kv("svc.operation", s("addition")),
                    kv("operation", s("addition")),
                ],
            ),
            span_at(
                None,
                vec![kv("operation", s("subtract")), kv("math_value", int(123))],
            ),
            span_at(None, vec![kv("timeout", int(10)), kv("math_value", int(4))]),
            span_at(
                None,
                vec![kv("svc.operation", s("division")), kv("timeout", int(3))],
            ),
        ]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![
            vec![kv("timeout", int(10)), kv("svc.operation", s("addition"))],
            vec![
                kv("math_value", int(123)),
                kv("svc.operation", s("subtract"))
            ],
            vec![
                kv("timeout", int(10)),
                kv("math_value", int(4)),
                kv("svc.operation", s("default")),
            ],
            vec![kv("svc.operation", s("default")), kv("timeout", int(3))],
        ]
    );
}

#[tokio::test]
async fn example_regexp_and_regexp2() {
    let yaml = r#"
    include:
      match_type: regexp
      services: ["auth.*"]
    exclude:
      match_type: regexp
      span_names: ["login.*"]
    actions:
      - key: password
        action: update
        value: "obfuscated"
      - key: token
        action: delete
"#;
    let secret = || vec![kv("password", s("pw")), kv("token", s("t"))];
    let named = |svc, name| SpanAt {
        name,
        ..span_at(service(svc), secret())
    };
    let out = run(
        yaml,
        traces(vec![
            named("auth", "validate"),
            named("auth", "login_user"),
            named("billing", "validate"),
        ]),
    )
    .await;
    assert_eq!(
        span_attributes(&out),
        vec![vec![kv("password", s("obfuscated"))], secret(), secret()]
    );

    let yaml2 = r#"
    include:
      match_type: regexp
      attributes:
        - {key: env, value: 'SELECT \* FROM USERS.*'}
    actions:
      - key: db.statement
        action: update
        value: "SELECT * FROM USERS [obfuscated]"
"#;
    let statement = |env: &str| {
        vec![
            kv("env", s(env)),
            kv("db.statement", s("SELECT * FROM USERS WHERE pw = 'x'")),
        ]
    };
    let out = run(
        yaml2,
        traces(vec![
            span_at(None, statement("SELECT * FROM USERS WHERE pw = 'x'")),
            span_at(None, statement("SELECT * FROM ORDERS")),
        ]),
    )
    .await;
    let attributes = span_attributes(&out);
    assert_eq!(
        attributes[0][1],
        kv("db.statement", s("SELECT * FROM USERS [obfuscated]"))
    );
    assert_eq!(attributes[1], statement("SELECT * FROM ORDERS"));
}

#[tokio::test]
async fn example_log_body_and_severity_regexp() {
    let body = r#"
    include:
      match_type: regexp
      log_bodies: ["AUTH.*"]
    actions:
      - key: password
        action: update
        value: "obfuscated"
      - key: token
        action: delete
"#;
    let secret = || vec![kv("password", s("pw")), kv("token", s("t"))];
    let out = run(
        body,
        logs(vec![
            log_at("AUTH failed for bob", "", secret()),
            log_at("GET /", "", secret()),
        ]),
    )
    .await;
    assert_eq!(
        log_attributes(&out),
        vec![vec![kv("password", s("obfuscated"))], secret()]
    );
    // The same configuration in a traces pipeline is refused, as upstream does.
    assert_eq!(
        build(body, Signal::Traces).err().unwrap(),
        "log_bodies should not be specified for trace spans"
    );

    let severity = body.replace(
        r#"log_bodies: ["AUTH.*"]"#,
        r#"log_severity_texts: [ "debug.*" ]"#,
    );
    let out = run(
        &severity,
        logs(vec![
            log_at("x", "debug", secret()),
            log_at("x", "debug3", secret()),
            log_at("x", "info", secret()),
        ]),
    )
    .await;
    assert_eq!(
        log_attributes(&out),
        vec![
            vec![kv("password", s("obfuscated"))],
            vec![kv("password", s("obfuscated"))],
            secret(),
        ]
    );
}

#[tokio::test]
async fn example_from_context() {
    let yaml = r#"
    actions:
    - key: origin
      from_context: metadata.origin
      action: insert
    - key: enduser.id
      from_context: auth.subject
      action: insert
"#;
    let client = ClientInfo {
        addr: Some("10.0.0.7:55000".parse().unwrap()),
        metadata: vec![
            ("origin".into(), "edge-1".into()),
            ("origin".into(), "edge-2".into()),
        ],
    };
    let out = run_with(yaml, traces(vec![span_at(None, vec![])]), Some(client)).await;
    // No authenticator sets auth attributes yet: enduser.id is not inserted.
    assert_eq!(
        span_attributes(&out),
        vec![vec![kv("origin", s("edge-1;edge-2"))]]
    );

    let address = "actions:\n  - {key: client.ip, from_context: client.address, action: upsert}\n";
    let client = ClientInfo {
        addr: Some("10.0.0.7:55000".parse().unwrap()),
        metadata: vec![],
    };
    let out = run_with(address, logs(vec![log_at("x", "", vec![])]), Some(client)).await;
    assert_eq!(
        log_attributes(&out),
        vec![vec![kv("client.ip", s("10.0.0.7"))]]
    );
}

// ---- metrics -----------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_selected_by_name_and_resource() {
    let yaml = r#"
include:
  match_type: strict
  metric_names: [gauge, sum, summary]
  resources: [{key: env, value: prod}]
actions:
  - {key: seen, value: true, action: upsert}
"#;
    let seen = |payload: &Payload| -> Vec<(String, bool)> {
        point_attributes(payload)
            .into_iter()
            .map(|(name, a)| (name, a.contains(&kv("seen", boolean(true)))))
            .collect()
    };
    let prod = run(
        yaml,
        metrics_payload(
            resource(vec![kv("env", s("prod"))]),
            every_metric_kind(vec![]),
        ),
    )
    .await;
    assert_eq!(
        seen(&prod),
        vec![
            ("gauge".into(), true),
            ("sum".into(), true),
            ("histogram".into(), false),
            ("exponential_histogram".into(), false),
            ("summary".into(), true),
        ]
    );
    let dev = run(
        yaml,
        metrics_payload(
            resource(vec![kv("env", s("dev"))]),
            every_metric_kind(vec![]),
        ),
    )
    .await;
    assert!(seen(&dev).iter().all(|(_, seen)| !seen));
}

// ---- configuration errors --------------------------------------------------------------------

#[test]
fn configuration_errors_are_upstreams() {
    let decode = |yaml: &str| {
        AttributesProcessorFactory
            .decode(&Value::from_yaml_str(yaml).unwrap())
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(
        decode("").as_deref(),
        Some(r#"missing required field "actions""#)
    );
    assert_eq!(
        decode("actions: []").as_deref(),
        Some(r#"missing required field "actions""#)
    );
    assert_eq!(
        decode("include: {match_type: strict, services: [a]}").as_deref(),
        Some(r#"missing required field "actions""#)
    );
    assert_eq!(
        decode("actions:\n  - {key: k, action: insert}").as_deref(),
        Some(
            r#"error with key "k" (0-th action): error creating AttrProc. Either field "value", "from_attribute", "from_context", or "default_value" must be specified"#
        )
    );
    assert_eq!(
        decode("actions:\n  - {value: 1, action: insert}").as_deref(),
        Some(r#"error creating AttrProc due to missing required field "key" at the 0-th action"#)
    );
    assert!(
        decode("actions:\n  - {key: k, action: delete}\nincluded: {}")
            .unwrap()
            .contains("unknown field \"included\"")
    );
    assert!(
        decode("actions: [{key: k, action: delete}]\ninclude: {match_type: fuzzy}")
            .unwrap()
            .contains("invalid value \"fuzzy\"")
    );

    // Which include/exclude properties are allowed depends on the pipeline's signal.
    let spans_only =
        "include: {match_type: strict, services: [a]}\nactions: [{key: k, action: delete}]";
    assert!(build(spans_only, Signal::Traces).is_ok());
    assert!(build(spans_only, Signal::Metrics).is_ok());
    assert_eq!(
        build(spans_only, Signal::Logs).err().unwrap(),
        "services, span_names, and span_kinds are not valid for log records"
    );
    let empty_include = "include: {match_type: strict}\nactions: [{key: k, action: delete}]";
    assert_eq!(
        build(empty_include, Signal::Traces).err().unwrap(),
        r#"at least one of "attributes", "libraries",  or "resources" field must be specified"#
    );
    assert_eq!(
        build(empty_include, Signal::Logs).err().unwrap(),
        r#"at least one of "attributes", "libraries", "span_kinds", "resources", "log_bodies", "log_severity_texts" or "log_severity_number" field must be specified"#
    );
    assert_eq!(
        build(
            "exclude: {span_names: [a]}\nactions: [{key: k, action: delete}]",
            Signal::Traces
        )
        .err()
        .unwrap(),
        "error creating span name filters: unrecognized match_type: '', valid types are: [regexp strict]"
    );
}

#[tokio::test]
async fn a_value_from_the_environment_is_typed_and_an_unset_one_falls_back() {
    let yaml =
        "actions:\n  - {key: port, value: '${env:PORT}', default_value: 0, action: upsert}\n";
    let (processor, sink) = build_with_env(yaml, &[("PORT", "8080")], Signal::Traces).unwrap();
    processor
        .consume(Envelope::new(traces(vec![span_at(None, vec![])])))
        .await
        .unwrap();
    let (unset, unset_sink) = build_with_env(yaml, &[], Signal::Traces).unwrap();
    unset
        .consume(Envelope::new(traces(vec![span_at(None, vec![])])))
        .await
        .unwrap();
    let first = |sink: &Sink| span_attributes(&sink.got.lock().unwrap()[0].payload);
    assert_eq!(first(&sink), vec![vec![kv("port", int(8080))]]);
    assert_eq!(first(&unset_sink), vec![vec![kv("port", int(0))]]);
}

// ---- what it hands on --------------------------------------------------------------------------

#[tokio::test]
async fn encoded_batches_are_decoded_and_edited() {
    let yaml = "actions:\n  - {key: added, value: yes, action: insert}\n";
    let original = traces(vec![span_at(service("svc"), vec![])]);
    let encoded = Payload::Encoded(Encoded::from_decoded(&original));
    let out = run(yaml, encoded).await;
    assert_eq!(span_attributes(&out), vec![vec![kv("added", s("yes"))]]);
}

#[tokio::test]
async fn acknowledgements_and_client_travel_on_and_shared_batches_are_not_changed() {
    let yaml = "actions:\n  - {key: added, value: 1, action: insert}\n";
    let (processor, sink) = build(yaml, Signal::Traces).unwrap();
    assert!(!processor.accepts_encoded());
    let (ack, mut done) = Ack::new();
    let client = Arc::new(ClientInfo {
        addr: None,
        metadata: vec![("k".into(), "v".into())],
    });
    let mut envelope =
        Envelope::new(traces(vec![span_at(None, vec![])])).with_client(Some(client.clone()));
    envelope.acks.push(ack);
    let other_branch = envelope.fork();
    processor.consume(envelope).await.unwrap();

    // The other holder of the batch still sees it as it was.
    assert_eq!(span_attributes(&other_branch.payload), vec![vec![]]);
    let got = sink.got.lock().unwrap().pop().unwrap();
    assert_eq!(
        span_attributes(&got.payload),
        vec![vec![kv("added", int(1))]]
    );
    assert_eq!(got.client.as_deref(), Some(client.as_ref()));
    assert_eq!(got.acks.len(), 1);
    drop(other_branch);
    assert!(
        done.try_recv().is_err(),
        "resolved only when the last holder is done"
    );
    drop(got);
    assert_eq!(done.await.unwrap(), Ok(()));
}

#[test]
fn factory_and_registration() {
    let factory = AttributesProcessorFactory;
    assert_eq!(factory.type_name(), "attributes");
    for signal in Signal::ALL {
        assert_eq!(factory.stability(signal), Some(Stability::Beta));
    }
    let mut registry = Registry::default();
    ferrotel_processors::register(&mut registry);
    assert!(registry.processors.contains_key("attributes"));
}
