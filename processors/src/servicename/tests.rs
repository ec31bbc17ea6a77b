//! Regrouping at the level of the resource lists: the in-place fast path, metric splits of
//! every kind, entries without items, many connectors, and the renaming rules.

use std::sync::Arc;

use ferrotel_pipeline::component::{Accepted, ConsumeResult};
use ferrotel_pipeline::config::decode::decode;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::metrics::metric::Data;
use ferrotel_pipeline::pdata::metrics::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{trace, ExportTraceServiceRequest, Traces};

use super::regroup::{apply, plan, ResourceGroup};
use super::*;

fn rules(yaml: &str) -> Rules {
    let value = Value::from_yaml_str(yaml).unwrap();
    let config: ServiceNameConfig = decode(&value).unwrap();
    Rules::compile(&config).unwrap()
}

fn rewrite<R: ResourceGroup>(resources: &mut Vec<R>, rules: &Rules) {
    if let Some(plans) = plan(resources, rules) {
        apply(resources, plans, rules);
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v)).collect()
}

fn resource(pairs: &[(&str, &str)]) -> Option<Resource> {
    Some(Resource {
        attributes: attrs(pairs),
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        ..Default::default()
    })
}

fn span(name: &str, pairs: &[(&str, &str)]) -> trace::Span {
    trace::Span {
        name: name.into(),
        attributes: attrs(pairs),
        ..Default::default()
    }
}

fn resource_spans(
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
                schema_url: "https://scope.schema".into(),
            })
            .collect(),
        schema_url: "https://resource.schema".into(),
    }
}

fn point(value: i64, pairs: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(pairs),
        time_unix_nano: 1_000 + value as u64,
        value: Some(ferrotel_pipeline::pdata::metrics::number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} described"),
        unit: "By".into(),
        metadata: attrs(&[("meta", name)]),
        data: Some(data),
    }
}

fn resource_metrics(res: Option<Resource>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: res,
        scope_metrics: vec![ScopeMetrics {
            scope: scope("meter"),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

#[test]
fn a_resource_of_one_connector_is_renamed_in_place() {
    let r = rules("sources: [{attribute: connector}]\ntemplate: 'c-{name}'");
    let input = vec![
        resource_spans(
            resource(&[("service.name", "worker"), ("host.name", "h1")]),
            vec![(
                scope("s"),
                vec![
                    span("a", &[("connector", "x")]),
                    span("b", &[("connector", "x")]),
                ],
            )],
        ),
        resource_spans(
            resource(&[("service.name", "worker")]),
            vec![(scope("s"), vec![span("c", &[])])],
        ),
    ];
    let plans = plan(&input, &r).unwrap();
    assert_eq!(plans.len(), 2);
    assert!(plans[1].is_none(), "no connector: untouched");
    let mut output = input.clone();
    apply(&mut output, plans, &r);
    let mut expected = input;
    expected[0].resource = resource(&[("service.name", "c-x"), ("host.name", "h1")]);
    assert_eq!(output, expected);
}

#[test]
fn nothing_to_change_plans_nothing() {
    let r = rules("sources: [{attribute: connector}]");
    let input = vec![
        resource_spans(
            resource(&[("service.name", "worker")]),
            vec![(scope("s"), vec![span("a", &[("other", "x")])])],
        ),
        resource_spans(None, vec![]),
    ];
    assert_eq!(plan(&input, &r), None);
    assert_eq!(plan::<trace::ResourceSpans>(&[], &r), None);
}

#[test]
fn a_resource_without_attributes_gets_one() {
    let r = rules("sources: [{attribute: connector}]\noriginal_service_name_to: service.namespace");
    let mut output = vec![resource_spans(
        None,
        vec![(scope("s"), vec![span("a", &[("connector", "x")])])],
    )];
    rewrite(&mut output, &r);
    assert_eq!(
        output[0].resource,
        resource(&[("service.name", "x")]),
        "no previous name, so nothing is kept"
    );
}

#[test]
fn the_previous_name_replaces_an_existing_value_and_keeps_positions() {
    let r = rules("sources: [{attribute: connector}]\noriginal_service_name_to: service.namespace");
    let mut output = vec![resource_spans(
        resource(&[
            ("service.namespace", "old-namespace"),
            ("service.name", "worker"),
            ("k", "v"),
        ]),
        vec![(scope("s"), vec![span("a", &[("connector", "x")])])],
    )];
    rewrite(&mut output, &r);
    assert_eq!(
        output[0].resource,
        resource(&[
            ("service.namespace", "worker"),
            ("service.name", "x"),
            ("k", "v"),
        ])
    );
}

#[test]
fn a_non_string_previous_name_is_kept_as_it_is() {
    let r = rules("sources: [{attribute: connector}]\noriginal_service_name_to: previous");
    let int_name = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(42)),
        }),
        ..Default::default()
    };
    let mut output = vec![resource_spans(
        Some(Resource {
            attributes: vec![int_name.clone()],
            ..Default::default()
        }),
        vec![(scope("s"), vec![span("a", &[("connector", "x")])])],
    )];
    rewrite(&mut output, &r);
    let mut kept = int_name;
    kept.key = "previous".into();
    assert_eq!(
        output[0].resource.as_ref().unwrap().attributes,
        vec![kv("service.name", "x"), kept]
    );
}

#[test]
fn a_split_metric_keeps_its_kind_and_settings() {
    let r = rules("sources: [{attribute: connector}]");
    let a = [("connector", "a")];
    let b = [("connector", "b")];
    let sum = |points: Vec<NumberDataPoint>| {
        metric(
            "sum",
            Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: 1,
                is_monotonic: true,
            }),
        )
    };
    let gauge = |points: Vec<NumberDataPoint>| {
        metric(
            "gauge",
            Data::Gauge(Gauge {
                data_points: points,
            }),
        )
    };
    let histogram_point = |count: u64, pairs: &[(&str, &str)]| HistogramDataPoint {
        attributes: attrs(pairs),
        count,
        bucket_counts: vec![count],
        ..Default::default()
    };
    let histogram = |points: Vec<HistogramDataPoint>| {
        metric(
            "histogram",
            Data::Histogram(Histogram {
                data_points: points,
                aggregation_temporality: 2,
            }),
        )
    };
    let exp_point = |count: u64, pairs: &[(&str, &str)]| ExponentialHistogramDataPoint {
        attributes: attrs(pairs),
        count,
        scale: 3,
        ..Default::default()
    };
    let exponential = |points: Vec<ExponentialHistogramDataPoint>| {
        metric(
            "exponential",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: points,
                aggregation_temporality: 1,
            }),
        )
    };
    let summary_point = |count: u64, pairs: &[(&str, &str)]| SummaryDataPoint {
        attributes: attrs(pairs),
        count,
        ..Default::default()
    };
    let summary = |points: Vec<SummaryDataPoint>| {
        metric(
            "summary",
            Data::Summary(Summary {
                data_points: points,
            }),
        )
    };
    let res = resource(&[("service.name", "worker")]);
    let mut output = vec![resource_metrics(
        res.clone(),
        vec![
            sum(vec![
                point(1, &a),
                point(2, &[]),
                point(3, &b),
                point(4, &a),
            ]),
            gauge(vec![point(5, &b), point(6, &b)]),
            histogram(vec![histogram_point(7, &b), histogram_point(8, &a)]),
            exponential(vec![exp_point(9, &[]), exp_point(10, &a)]),
            summary(vec![summary_point(11, &a), summary_point(12, &b)]),
        ],
    )];
    rewrite(&mut output, &r);
    let expected = vec![
        resource_metrics(
            resource(&[("service.name", "a")]),
            vec![
                sum(vec![point(1, &a), point(4, &a)]),
                histogram(vec![histogram_point(8, &a)]),
                exponential(vec![exp_point(10, &a)]),
                summary(vec![summary_point(11, &a)]),
            ],
        ),
        resource_metrics(
            res,
            vec![
                sum(vec![point(2, &[])]),
                exponential(vec![exp_point(9, &[])]),
            ],
        ),
        resource_metrics(
            resource(&[("service.name", "b")]),
            vec![
                sum(vec![point(3, &b)]),
                gauge(vec![point(5, &b), point(6, &b)]),
                histogram(vec![histogram_point(7, &b)]),
                summary(vec![summary_point(12, &b)]),
            ],
        ),
    ];
    assert_eq!(output, expected);
}

#[test]
fn entries_without_items_go_with_the_item_before_them() {
    let r = rules("sources: [{attribute: connector}]");
    let empty = |name: &str| Metric {
        name: name.into(),
        ..Default::default()
    };
    let gauge = |name: &str, points: Vec<NumberDataPoint>| {
        metric(
            name,
            Data::Gauge(Gauge {
                data_points: points,
            }),
        )
    };
    let no_points = |name: &str| metric(name, Data::Gauge(Gauge::default()));
    let mut output = vec![ResourceMetrics {
        resource: None,
        scope_metrics: vec![
            ScopeMetrics {
                scope: scope("empty-first"),
                ..Default::default()
            },
            ScopeMetrics {
                scope: scope("m"),
                metrics: vec![
                    empty("no-data"),
                    gauge("g1", vec![point(1, &[("connector", "a")])]),
                    gauge("g2", vec![point(2, &[("connector", "b")])]),
                    no_points("no-points"),
                    gauge("g3", vec![point(3, &[("connector", "a")])]),
                ],
                schema_url: String::new(),
            },
            ScopeMetrics {
                scope: scope("empty-last"),
                ..Default::default()
            },
        ],
        schema_url: String::new(),
    }];
    rewrite(&mut output, &r);
    let expected = vec![
        ResourceMetrics {
            resource: resource(&[("service.name", "a")]),
            scope_metrics: vec![
                ScopeMetrics {
                    scope: scope("empty-first"),
                    ..Default::default()
                },
                ScopeMetrics {
                    scope: scope("m"),
                    metrics: vec![
                        empty("no-data"),
                        gauge("g1", vec![point(1, &[("connector", "a")])]),
                        gauge("g3", vec![point(3, &[("connector", "a")])]),
                    ],
                    schema_url: String::new(),
                },
                ScopeMetrics {
                    scope: scope("empty-last"),
                    ..Default::default()
                },
            ],
            schema_url: String::new(),
        },
        ResourceMetrics {
            resource: resource(&[("service.name", "b")]),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("m"),
                metrics: vec![
                    gauge("g2", vec![point(2, &[("connector", "b")])]),
                    no_points("no-points"),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        },
    ];
    assert_eq!(output, expected);
}

#[test]
fn many_interleaved_connectors_each_get_their_resource() {
    let r = rules("sources: [{attribute: connector}]\ntemplate: 'svc-{name}'");
    let connectors = 40;
    let spans: Vec<trace::Span> = (0..connectors * 5)
        .map(|i| {
            let connector = format!("c{}", i % connectors);
            span(&format!("span{i}"), &[("connector", &connector)])
        })
        .collect();
    let mut output = vec![resource_spans(
        resource(&[("service.name", "worker")]),
        vec![(scope("s"), spans)],
    )];
    rewrite(&mut output, &r);
    assert_eq!(output.len(), connectors);
    for (n, rs) in output.iter().enumerate() {
        assert_eq!(
            rs.resource,
            resource(&[("service.name", &format!("svc-c{n}"))])
        );
        assert_eq!(rs.scope_spans.len(), 1);
        let names: Vec<&str> = rs.scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let expected: Vec<String> = (0..5)
            .map(|k| format!("span{}", n + k * connectors))
            .collect();
        assert_eq!(names, expected);
    }
}

#[test]
fn a_split_puts_scopes_back_in_their_order() {
    let r = rules("sources: [{attribute: connector}]");
    let a = [("connector", "a")];
    let b = [("connector", "b")];
    let mut output = vec![resource_spans(
        resource(&[("service.name", "worker")]),
        vec![
            (
                scope("s1"),
                vec![span("1", &a), span("2", &b), span("3", &a)],
            ),
            (scope("s2"), vec![span("4", &b)]),
            (scope("s3"), vec![span("5", &a), span("6", &b)]),
        ],
    )];
    rewrite(&mut output, &r);
    let expected = vec![
        resource_spans(
            resource(&[("service.name", "a")]),
            vec![
                (scope("s1"), vec![span("1", &a), span("3", &a)]),
                (scope("s3"), vec![span("5", &a)]),
            ],
        ),
        resource_spans(
            resource(&[("service.name", "b")]),
            vec![
                (scope("s1"), vec![span("2", &b)]),
                (scope("s2"), vec![span("4", &b)]),
                (scope("s3"), vec![span("6", &b)]),
            ],
        ),
    ];
    assert_eq!(output, expected);
}

/// A downstream that keeps what it gets.
#[derive(Default)]
struct Keep(std::sync::Mutex<Vec<Envelope>>);

#[async_trait]
impl Consumer for Keep {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.0.lock().unwrap().push(envelope);
        Ok(Accepted::default())
    }
}

fn processor(yaml: &str, next: Arc<Keep>) -> ServiceNameProcessor {
    ServiceNameProcessor::new("servicename".into(), rules(yaml), next)
}

fn traces_with(connector: Option<&str>) -> Payload {
    let pairs: Vec<(&str, &str)> = connector.map(|c| ("connector", c)).into_iter().collect();
    Payload::Traces(Traces(ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(
            resource(&[("service.name", "worker")]),
            vec![(scope("s"), vec![span("a", &pairs)])],
        )],
    }))
}

#[tokio::test]
async fn a_shared_batch_is_not_copied_when_nothing_changes() {
    let keep = Arc::new(Keep::default());
    let p = processor("sources: [{attribute: connector}]", keep.clone());
    let envelope = Envelope::new(traces_with(None));
    let other_branch = envelope.fork();
    p.consume(envelope).await.unwrap();
    let passed = keep.0.lock().unwrap().pop().unwrap();
    assert!(Arc::ptr_eq(&passed.payload, &other_branch.payload));

    let envelope = Envelope::new(traces_with(Some("x")));
    let other_branch = envelope.fork();
    p.consume(envelope).await.unwrap();
    let passed = keep.0.lock().unwrap().pop().unwrap();
    assert!(!Arc::ptr_eq(&passed.payload, &other_branch.payload));
    assert_eq!(
        *other_branch.payload,
        traces_with(Some("x")),
        "the other branch's copy is untouched"
    );
    let Payload::Traces(t) = &*passed.payload else {
        panic!("traces expected");
    };
    assert_eq!(
        t.0.resource_spans[0].resource,
        resource(&[("service.name", "x")])
    );
}

#[tokio::test]
async fn an_encoded_batch_is_decoded_and_renamed() {
    let keep = Arc::new(Keep::default());
    let p = processor("sources: [{attribute: connector}]", keep.clone());
    let encoded = ferrotel_pipeline::pdata::Encoded::from_decoded(&traces_with(Some("x")));
    p.consume(Envelope::new(Payload::Encoded(encoded)))
        .await
        .unwrap();
    let passed = keep.0.lock().unwrap().pop().unwrap();
    let Payload::Traces(t) = &*passed.payload else {
        panic!("decoded traces expected");
    };
    assert_eq!(
        t.0.resource_spans[0].resource,
        resource(&[("service.name", "x")])
    );
}
