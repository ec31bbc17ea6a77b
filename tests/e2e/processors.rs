//! One YAML pipeline with every editing processor (filter, attributes, resource, transform,
//! servicename) in the real binary: OTLP/JSON in, the file exporter's output checked item by
//! item.

use serde_json::{json, Value};

use crate::delivery::Client;
use crate::harness::{self, Agent};
use crate::otlp_json::{attr, flatten, string_value, Signal};

fn config(ports: &harness::Ports, out: &std::path::Path) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
processors:
  filter/noise:
    error_mode: ignore
    traces:
      span: ['attributes["http.target"] == "/health"']
    metrics:
      datapoint: ['attributes["route"] == "/health"']
    logs:
      log_record: ['severity_number < SEVERITY_NUMBER_INFO']
  attributes/scrub:
    actions:
      - {{key: user.password, action: delete}}
      - {{key: user.email, action: hash}}
      - {{key: env, value: prod, action: insert}}
  resource/cluster:
    attributes:
      - {{key: k8s.cluster.name, value: eu-1, action: upsert}}
  transform/names:
    error_mode: ignore
    trace_statements:
      - 'set(span.name, Concat([span.attributes["http.method"], span.attributes["http.route"]], " ")) where span.attributes["http.route"] != nil'
    metric_statements:
      - 'set(metric.description, "requests by route") where metric.name == "http.requests"'
    log_statements:
      - context: log
        statements:
          - 'merge_maps(attributes, ParseJSON(body), "upsert") where IsMatch(body, "^\\{{")'
  servicename:
    sources:
      - attribute: messaging.client_id
        pattern: '^connector-(?:consumer|producer)-(?P<name>.+)-\d+$'
    template: "connect-{{name}}"
    original_service_name_to: service.namespace
exporters:
  file:
    path: {out}
    flush_interval: 100ms
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [filter/noise, attributes/scrub, resource/cluster, transform/names, servicename]
      exporters: [file]
    metrics:
      receivers: [otlp]
      processors: [filter/noise, attributes/scrub, resource/cluster, transform/names, servicename]
      exporters: [file]
    logs:
      receivers: [otlp]
      processors: [filter/noise, attributes/scrub, resource/cluster, transform/names, servicename]
      exporters: [file]
  telemetry:
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {metrics}}}}}}}
"#,
        http = ports.http,
        metrics = ports.metrics,
        health = ports.health,
        out = serde_json::Value::String(out.display().to_string()),
    )
}

fn kv(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn resource() -> Value {
    json!({"attributes": [kv("service.name", "connect-worker"), kv("host.name", "node-1")]})
}

fn span(name: &str, attributes: Vec<Value>) -> Value {
    json!({
        "traceId": "0102030405060708090a0b0c0d0e0f10",
        "spanId": "0102030405060708",
        "name": name,
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "attributes": attributes,
    })
}

fn point(route: &str, client: &str, value: i64) -> Value {
    json!({
        "attributes": [kv("route", route), kv("messaging.client_id", client)],
        "timeUnixNano": "1700000000000000000",
        "asInt": value.to_string(),
    })
}

fn log(body: &str, severity: i64, attributes: Vec<Value>) -> Value {
    json!({
        "timeUnixNano": "1700000000000000000",
        "severityNumber": severity,
        "body": {"stringValue": body},
        "attributes": attributes,
    })
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["item"]["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_editing_processor_in_one_pipeline() {
    let mut agent = Agent::start(|ports, dir| config(ports, &dir.join("out.jsonl")));
    let out = agent.dir.path().join("out.jsonl");
    let client = Client::new();
    let port = agent.ports.http;

    let traces = json!({"resourceSpans": [{
        "resource": resource(),
        "scopeSpans": [{"scope": {"name": "kafka-connect"}, "spans": [
            span("poll", vec![
                kv("messaging.client_id", "connector-consumer-orders-sink-0"),
                kv("user.password", "hunter2"),
                kv("user.email", "a@b.c"),
            ]),
            span("health", vec![kv("http.target", "/health")]),
            span("GET", vec![kv("http.method", "GET"), kv("http.route", "/orders")]),
            span("send", vec![kv("messaging.client_id", "connector-producer-payments-source-3")]),
        ]}],
    }]});
    let metrics = json!({"resourceMetrics": [{
        "resource": resource(),
        "scopeMetrics": [{"scope": {"name": "kafka-connect"}, "metrics": [{
            "name": "http.requests",
            "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
                point("/orders", "connector-consumer-orders-sink-0", 5),
                point("/health", "connector-consumer-orders-sink-0", 9),
                point("/pay", "connector-producer-payments-source-3", 7),
            ]},
        }]}],
    }]});
    let logs = json!({"resourceLogs": [{
        "resource": resource(),
        "scopeLogs": [{"scope": {"name": "kafka-connect"}, "logRecords": [
            log("debug chatter", 5, vec![]),
            log("{\"order\":\"o-1\",\"status\":\"rejected\"}", 13,
                vec![kv("messaging.client_id", "connector-consumer-orders-sink-1")]),
            log("plain text", 9, vec![]),
        ]}],
    }]});
    for (signal, body) in [("traces", &traces), ("metrics", &metrics), ("logs", &logs)] {
        assert_eq!(client.post_json(port, signal, body), 200, "{signal}");
    }
    let log_text = agent.log();
    let status = agent.stop();
    assert_eq!(status.code(), Some(0), "agent log:\n{log_text}");
    let written = harness::read_json_lines(&out);

    let service = |item: &Value| attr(&item["resource"], "service.name").cloned();
    let cluster = string_value("eu-1");

    // Traces: the health span is gone; names, scrubbing, hashing, services.
    let spans = flatten(Signal::Traces, &written);
    let mut got = names(&spans);
    got.sort();
    assert_eq!(got, ["GET /orders", "poll", "send"]);
    for s in &spans {
        assert_eq!(
            attr(&s["resource"], "k8s.cluster.name"),
            Some(&cluster),
            "{s}"
        );
        assert_eq!(attr(&s["item"], "env"), Some(&string_value("prod")), "{s}");
        assert_eq!(
            attr(&s["resource"], "host.name"),
            Some(&string_value("node-1"))
        );
        assert_eq!(s["scope"]["name"], "kafka-connect");
    }
    let by_name = |n: &str| spans.iter().find(|s| s["item"]["name"] == n).unwrap();
    let poll = by_name("poll");
    assert_eq!(attr(&poll["item"], "user.password"), None);
    assert_eq!(
        attr(&poll["item"], "user.email"),
        Some(&string_value(
            "d648b243a3e817eaa3309e00e183483f2867baadf522099f0c2121770536b25a"
        ))
    );
    assert_eq!(service(poll), Some(string_value("connect-orders-sink")));
    assert_eq!(
        attr(&poll["resource"], "service.namespace"),
        Some(&string_value("connect-worker"))
    );
    assert_eq!(
        service(by_name("send")),
        Some(string_value("connect-payments-source"))
    );
    assert_eq!(
        service(by_name("GET /orders")),
        Some(string_value("connect-worker"))
    );

    // Metrics: the health point is gone; the rest split by connector.
    let points = flatten(Signal::Metrics, &written);
    assert_eq!(points.len(), 2, "{points:?}");
    for p in &points {
        assert_eq!(p["item"]["description"], "requests by route");
        let dp = &p["item"]["sum"]["dataPoints"][0];
        assert_eq!(attr(dp, "env"), Some(&string_value("prod")));
        let want = match attr(dp, "route").and_then(|v| v["stringValue"].as_str()) {
            Some("/orders") => "connect-orders-sink",
            Some("/pay") => "connect-payments-source",
            other => panic!("unexpected point {other:?}"),
        };
        assert_eq!(service(p), Some(string_value(want)));
    }

    // Logs: debug is gone; the JSON body became attributes.
    let records = flatten(Signal::Logs, &written);
    assert_eq!(records.len(), 2, "{records:?}");
    let json_log = records
        .iter()
        .find(|r| attr(&r["item"], "order").is_some())
        .expect("the JSON log");
    assert_eq!(
        attr(&json_log["item"], "status"),
        Some(&string_value("rejected"))
    );
    assert_eq!(service(json_log), Some(string_value("connect-orders-sink")));
    let plain = records
        .iter()
        .find(|r| r["item"]["body"]["stringValue"] == "plain text")
        .expect("the plain log");
    assert_eq!(service(plain), Some(string_value("connect-worker")));
}
