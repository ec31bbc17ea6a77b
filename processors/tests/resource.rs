//! The `resource` processor through its factory with a recording downstream: upstream's
//! README and example configurations, the SigNoz chart's use, every signal, configuration
//! errors, and what it hands on.
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
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{
    logs, metrics, trace, Encoded, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, Logs, Metrics, Payload, Signal, Traces,
};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_processors::resource::ResourceProcessorFactory;

use any_value::Value as V;

fn s(text: &str) -> V {
    V::StringValue(text.to_string())
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

/// One span under each resource given.
fn traces(resources: Vec<Option<Resource>>) -> Payload {
    Payload::Traces(Traces(ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|resource| trace::ResourceSpans {
                resource,
                scope_spans: vec![trace::ScopeSpans {
                    spans: vec![trace::Span {
                        name: "span".into(),
                        attributes: vec![kv("span.attr", s("kept"))],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

fn metrics_payload(resources: Vec<Option<Resource>>) -> Payload {
    Payload::Metrics(Metrics(ExportMetricsServiceRequest {
        resource_metrics: resources
            .into_iter()
            .map(|resource| metrics::ResourceMetrics {
                resource,
                scope_metrics: vec![metrics::ScopeMetrics {
                    metrics: vec![metrics::Metric {
                        name: "m".into(),
                        data: Some(metrics::metric::Data::Gauge(metrics::Gauge {
                            data_points: vec![metrics::NumberDataPoint {
                                attributes: vec![kv("point.attr", s("kept"))],
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

fn logs_payload(resources: Vec<Option<Resource>>) -> Payload {
    Payload::Logs(Logs(ExportLogsServiceRequest {
        resource_logs: resources
            .into_iter()
            .map(|resource| logs::ResourceLogs {
                resource,
                scope_logs: vec![logs::ScopeLogs {
                    log_records: vec![logs::LogRecord {
                        attributes: vec![kv("log.attr", s("kept"))],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }))
}

/// Every resource's attributes (`None` for a batch entry without a resource), and a check
/// that the items under them were left alone.
fn resources(payload: &Payload) -> Vec<Option<Vec<KeyValue>>> {
    let item_attributes: Vec<Vec<KeyValue>>;
    let out = match payload {
        Payload::Traces(t) => {
            item_attributes =
                t.0.resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .flat_map(|ss| &ss.spans)
                    .map(|sp| sp.attributes.clone())
                    .collect();
            t.0.resource_spans
                .iter()
                .map(|rs| rs.resource.as_ref().map(|r| r.attributes.clone()))
                .collect()
        }
        Payload::Metrics(m) => {
            item_attributes =
                m.0.resource_metrics
                    .iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|sm| &sm.metrics)
                    .flat_map(|metric| match &metric.data {
                        Some(metrics::metric::Data::Gauge(g)) => g.data_points.clone(),
                        _ => vec![],
                    })
                    .map(|p| p.attributes)
                    .collect();
            m.0.resource_metrics
                .iter()
                .map(|rm| rm.resource.as_ref().map(|r| r.attributes.clone()))
                .collect()
        }
        Payload::Logs(l) => {
            item_attributes =
                l.0.resource_logs
                    .iter()
                    .flat_map(|rl| &rl.scope_logs)
                    .flat_map(|sl| &sl.log_records)
                    .map(|lr| lr.attributes.clone())
                    .collect();
            l.0.resource_logs
                .iter()
                .map(|rl| rl.resource.as_ref().map(|r| r.attributes.clone()))
                .collect()
        }
        Payload::Encoded(_) => panic!("still encoded"),
    };
    for attributes in item_attributes {
        assert_eq!(attributes.len(), 1, "item attributes untouched");
        assert_eq!(
            attributes[0].value,
            Some(AnyValue {
                value: Some(s("kept"))
            })
        );
    }
    out
}

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
        id: ComponentId::new("resource", None),
        telemetry: Telemetry::for_tests(),
    }
}

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

fn decode_error(yaml: &str) -> String {
    ResourceProcessorFactory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

async fn run_full(
    yaml: &str,
    env: &[(&str, &str)],
    payload: Payload,
    client: Option<ClientInfo>,
) -> Payload {
    let config = ResourceProcessorFactory.decode(&tree(yaml, env)).unwrap();
    let sink = Arc::new(Sink::default());
    let processor: Arc<dyn ConsumerComponent> = ResourceProcessorFactory
        .create(settings(), config.as_ref(), payload.signal(), sink.clone())
        .unwrap();
    processor
        .consume(Envelope::new(payload).with_client(client.map(Arc::new)))
        .await
        .unwrap();
    let mut got = sink.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    got.pop().unwrap().into_payload()
}

async fn run(yaml: &str, payload: Payload) -> Payload {
    run_full(yaml, &[], payload, None).await
}

/// The README's example.
const README: &str = r#"
attributes:
- key: cloud.availability_zone
  value: "zone-1"
  action: upsert
- key: k8s.cluster.name
  from_attribute: k8s-cluster
  action: insert
- key: redundant-attribute
  action: delete
"#;

#[tokio::test]
async fn readme_example_on_every_signal() {
    let input = || {
        vec![
            resource(vec![
                kv("cloud.availability_zone", s("zone-0")),
                kv("k8s-cluster", s("prod-eu")),
                kv("redundant-attribute", s("x")),
            ]),
            resource(vec![
                kv("k8s.cluster.name", s("set")),
                kv("k8s-cluster", s("other")),
            ]),
            resource(vec![]),
            None,
        ]
    };
    let want = vec![
        Some(vec![
            kv("cloud.availability_zone", s("zone-1")),
            kv("k8s-cluster", s("prod-eu")),
            kv("k8s.cluster.name", s("prod-eu")),
        ]),
        Some(vec![
            kv("k8s.cluster.name", s("set")),
            kv("k8s-cluster", s("other")),
            kv("cloud.availability_zone", s("zone-1")),
        ]),
        Some(vec![kv("cloud.availability_zone", s("zone-1"))]),
        Some(vec![kv("cloud.availability_zone", s("zone-1"))]),
    ];
    assert_eq!(resources(&run(README, traces(input())).await), want);
    assert_eq!(
        resources(&run(README, metrics_payload(input())).await),
        want
    );
    assert_eq!(resources(&run(README, logs_payload(input())).await), want);
}

/// Upstream's `resource/with_defaults` example.
const WITH_DEFAULTS: &str = r#"
attributes:
# Use default when environment variable is not set
- key: deployment.environment
  value: "${DEPLOYMENT_ENV}"
  default_value: "development"
  action: upsert
# Use default when source attribute doesn't exist
- key: service.namespace
  from_attribute: namespace
  default_value: "default"
  action: insert
# Use default when context value is not available
- key: cloud.region
  from_context: "metadata.region"
  default_value: "us-east-1"
  action: upsert
"#;

#[tokio::test]
async fn example_with_defaults() {
    let out = run_full(WITH_DEFAULTS, &[], traces(vec![resource(vec![])]), None).await;
    assert_eq!(
        resources(&out),
        vec![Some(vec![
            kv("deployment.environment", s("development")),
            kv("service.namespace", s("default")),
            kv("cloud.region", s("us-east-1")),
        ])]
    );

    let client = ClientInfo {
        addr: None,
        metadata: vec![("region".into(), "eu-west-1".into())],
    };
    let out = run_full(
        WITH_DEFAULTS,
        &[("DEPLOYMENT_ENV", "staging")],
        logs_payload(vec![resource(vec![kv("namespace", s("shop"))])]),
        Some(client),
    )
    .await;
    assert_eq!(
        resources(&out),
        vec![Some(vec![
            kv("namespace", s("shop")),
            kv("deployment.environment", s("staging")),
            kv("service.namespace", s("shop")),
            kv("cloud.region", s("eu-west-1")),
        ])]
    );
}

#[test]
fn example_empty_is_refused() {
    // Upstream's `resource/empty`: no attributes.
    assert_eq!(decode_error(""), r#"missing required field "attributes""#);
    assert_eq!(
        decode_error("attributes: []"),
        r#"missing required field "attributes""#
    );
}

/// The SigNoz k8s-infra chart's `resource/deployenv`.
#[tokio::test]
async fn signoz_deployment_environment() {
    let yaml = "attributes:\n  - key: deployment.environment\n    value: ${env:DEPLOYMENT_ENVIRONMENT}\n    action: insert\n";
    let out = run_full(
        yaml,
        &[("DEPLOYMENT_ENVIRONMENT", "production")],
        metrics_payload(vec![
            resource(vec![kv("service.name", s("api"))]),
            resource(vec![kv("deployment.environment", s("kept"))]),
        ]),
        None,
    )
    .await;
    assert_eq!(
        resources(&out),
        vec![
            Some(vec![
                kv("service.name", s("api")),
                kv("deployment.environment", s("production")),
            ]),
            Some(vec![kv("deployment.environment", s("kept"))]),
        ]
    );

    // Unset, the value is null and the action has no source: refused, as upstream does.
    let err = ResourceProcessorFactory
        .decode(&tree(yaml, &[]))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        r#"error with key "deployment.environment" (0-th action): error creating AttrProc. Either field "value", "from_attribute", "from_context", or "default_value" must be specified"#
    );
}

/// Naming the service per receiver, with a pipeline per receiver.
#[tokio::test]
async fn service_name_per_receiver() {
    let upsert = "attributes:\n  - {key: service.name, value: node-exporter, action: upsert}\n";
    let insert = "attributes:\n  - {key: service.name, value: node-exporter, action: insert}\n";
    let input = || {
        traces(vec![
            resource(vec![kv("service.name", s("unknown_service"))]),
            None,
        ])
    };
    assert_eq!(
        resources(&run(upsert, input()).await),
        vec![
            Some(vec![kv("service.name", s("node-exporter"))]),
            Some(vec![kv("service.name", s("node-exporter"))]),
        ]
    );
    assert_eq!(
        resources(&run(insert, input()).await),
        vec![
            Some(vec![kv("service.name", s("unknown_service"))]),
            Some(vec![kv("service.name", s("node-exporter"))]),
        ]
    );
}

#[tokio::test]
async fn every_action_on_resources() {
    let yaml = r#"
attributes:
  - {key: host.name, action: hash}
  - {pattern: ^k8s\.pod\., action: delete}
  - {key: container.image, pattern: '^(?P<image.name>[^:]+):(?P<image.tag>.+)$', action: extract}
  - {key: process.pid, action: convert, converted_type: int}
  - {key: peer, from_context: client.address, action: insert}
  - {key: nothing, from_attribute: absent, action: update}
"#;
    let yaml = yaml
        .replace("image.name", "image_name")
        .replace("image.tag", "image_tag");
    let client = ClientInfo {
        addr: Some("[2001:db8::7]:9000".parse().unwrap()),
        metadata: vec![],
    };
    let out = run_full(
        &yaml,
        &[],
        traces(vec![resource(vec![
            kv("host.name", s("foo")),
            kv("k8s.pod.name", s("p")),
            kv("k8s.pod.uid", s("u")),
            kv("k8s.namespace.name", s("ns")),
            kv("container.image", s("nginx:1.27")),
            kv("process.pid", s("4242")),
        ])]),
        Some(client),
    )
    .await;
    assert_eq!(
        resources(&out),
        vec![Some(vec![
            kv(
                "host.name",
                s("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
            ),
            kv("k8s.namespace.name", s("ns")),
            kv("container.image", s("nginx:1.27")),
            kv("process.pid", V::IntValue(4242)),
            kv("image_name", s("nginx")),
            kv("image_tag", s("1.27")),
            kv("peer", s("2001:db8::7")),
        ])]
    );
}

#[tokio::test]
async fn a_missing_resource_stays_missing_when_nothing_is_added() {
    let yaml = "attributes:\n  - {key: gone, action: delete}\n  - {key: a, from_attribute: b, action: upsert}\n";
    assert_eq!(resources(&run(yaml, traces(vec![None])).await), vec![None]);
}

#[test]
fn configuration_errors_are_upstreams() {
    let cases = [
        (
            "attributes:\n  - {key: k, action: insert}",
            r#"error with key "k" (0-th action): error creating AttrProc. Either field "value", "from_attribute", "from_context", or "default_value" must be specified"#,
        ),
        (
            "attributes:\n  - {action: upsert, value: 1}",
            r#"error creating AttrProc due to missing required field "key" at the 0-th action"#,
        ),
        (
            "attributes:\n  - {key: a, value: 1, action: insert}\n  - {key: b, action: rename}",
            r#"error with key "b" (1-th action): error creating AttrProc due to unsupported action "rename""#,
        ),
        (
            "attributes:\n  - {key: c, action: convert, converted_type: bool}",
            r#"error with key "c" (0-th action): error creating AttrProc due to invalid value "bool" in field "converted_type" for action "convert""#,
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(decode_error(yaml), want, "{yaml}");
    }
    assert!(
        decode_error("attributes: [{key: a, action: delete}]\nactions: []")
            .contains("unknown field \"actions\"")
    );
    assert!(
        decode_error("attributes: [{key: a, action: delete}]\ninclude: {services: [a]}")
            .contains("unknown field \"include\"")
    );
}

#[tokio::test]
async fn encoded_batches_are_decoded_and_edited() {
    let yaml = "attributes:\n  - {key: env, value: prod, action: upsert}\n";
    let original = logs_payload(vec![resource(vec![kv("service.name", s("a"))])]);
    let out = run(yaml, Payload::Encoded(Encoded::from_decoded(&original))).await;
    assert_eq!(
        resources(&out),
        vec![Some(vec![kv("service.name", s("a")), kv("env", s("prod"))])]
    );
}

#[tokio::test]
async fn acknowledgements_travel_on() {
    let config = ResourceProcessorFactory
        .decode(&Value::from_yaml_str("attributes: [{key: a, value: 1, action: insert}]").unwrap())
        .unwrap();
    let sink = Arc::new(Sink::default());
    let processor = ResourceProcessorFactory
        .create(settings(), config.as_ref(), Signal::Traces, sink.clone())
        .unwrap();
    let (ack, done) = Ack::new();
    let mut envelope = Envelope::new(traces(vec![None]));
    envelope.acks.push(ack);
    processor.consume(envelope).await.unwrap();
    let got = sink.got.lock().unwrap().pop().unwrap();
    assert_eq!(got.acks.len(), 1);
    drop(got);
    assert_eq!(done.await.unwrap(), Ok(()));
}

#[test]
fn factory_and_registration() {
    let factory = ResourceProcessorFactory;
    assert_eq!(factory.type_name(), "resource");
    for signal in Signal::ALL {
        assert_eq!(factory.stability(signal), Some(Stability::Beta));
    }
    let mut registry = Registry::default();
    ferrotel_processors::register(&mut registry);
    assert!(registry.processors.contains_key("resource"));
}
