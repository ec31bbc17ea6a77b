//! The real OpenTelemetry Python SDK sends spans, metrics and logs over OTLP; the `file`
//! exporter's output must hold exactly what the SDK exported, nothing missing, nothing extra.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{self, Agent};
use crate::otlp_json::{assert_same_items, attr, attrs, flatten, string_value, Signal};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/python/send_sdk.py");

#[test]
fn sdk_grpc_to_file() {
    sdk_to_file("grpc");
}

#[test]
fn sdk_http_to_file() {
    sdk_to_file("http");
}

fn sdk_to_file(protocol: &str) {
    let python = harness::python();
    let service = format!("ferrotel-e2e-{protocol}");
    let mut agent =
        Agent::start(|ports, dir| harness::otlp_to_file_config(ports, &dir.join("out.jsonl"), ""));
    let out_path = agent.dir.path().join("out.jsonl");
    let port = match protocol {
        "grpc" => agent.ports.grpc,
        _ => agent.ports.http,
    };

    let sent = harness::run_bounded(
        Command::new(&python).arg(SCRIPT).args([
            "--protocol",
            protocol,
            "--endpoint",
            &format!("127.0.0.1:{port}"),
            "--service-name",
            &service,
        ]),
        agent.dir.path(),
        "send_sdk",
        Duration::from_secs(90),
    );
    let agent_log = agent.log();
    assert!(
        sent.status.success(),
        "the SDK script failed ({}):\n{}\nagent log:\n{agent_log}",
        sent.status,
        sent.stderr
    );
    let status = agent.stop();
    assert_eq!(status.code(), Some(0), "agent exit status\n{agent_log}");

    let expected: Value = serde_json::from_str(&sent.stdout)
        .unwrap_or_else(|e| panic!("SDK script output is not JSON: {e}\n{}", sent.stdout));
    let written = harness::read_json_lines(&out_path);
    assert!(
        written.iter().all(|r| Signal::of(r).is_some()),
        "a line of the file exporter is not an OTLP export request"
    );

    for (signal, key) in [
        (Signal::Traces, "traces"),
        (Signal::Metrics, "metrics"),
        (Signal::Logs, "logs"),
    ] {
        let requests = expected[key].as_array().expect("requests list");
        let exp = flatten(signal, requests);
        let act = flatten(signal, &written);
        assert_same_items(&format!("{protocol} {key}"), &exp, &act);
        for item in &act {
            assert_eq!(
                attr(&item["resource"], "service.name"),
                Some(&string_value(&service)),
                "resource of {item}"
            );
        }
    }

    // The same outcome stated independently of the SDK's own record.
    check_spans(&flatten(Signal::Traces, &written));
    check_metrics(&flatten(Signal::Metrics, &written));
    check_logs(
        &flatten(Signal::Logs, &written),
        &flatten(Signal::Traces, &written),
    );
}

fn by_name<'a>(items: &'a [Value], name: &str) -> Vec<&'a Value> {
    items
        .iter()
        .filter(|i| i["item"]["name"] == name)
        .map(|i| &i["item"])
        .collect()
}

fn one<'a>(items: &'a [Value], name: &str) -> &'a Value {
    let found = by_name(items, name);
    assert_eq!(found.len(), 1, "exactly one {name}");
    found[0]
}

fn check_spans(spans: &[Value]) {
    assert_eq!(spans.len(), 3, "spans: {spans:#?}");
    let parent = one(spans, "parent");
    let child = one(spans, "child");
    let standalone = one(spans, "standalone");
    assert_eq!(parent["kind"], json!(2.0), "SERVER");
    assert_eq!(child["kind"], json!(3.0), "CLIENT");
    assert_eq!(standalone["kind"], json!(4.0), "PRODUCER");
    assert_eq!(child["traceId"], parent["traceId"]);
    assert_eq!(child["parentSpanId"], parent["spanId"]);
    assert_ne!(standalone["traceId"], parent["traceId"]);
    assert!(parent.get("parentSpanId").is_none());
    for span in [parent, child, standalone] {
        assert_eq!(span["traceId"].as_str().map(str::len), Some(32), "{span}");
        assert_eq!(span["spanId"].as_str().map(str::len), Some(16), "{span}");
    }
    assert_eq!(
        attrs(parent),
        [
            ("cached", json!({"boolValue": true})),
            ("http.route", string_value("/items")),
            ("ratio", json!({"doubleValue": 0.25})),
            ("retries", json!({"intValue": "3"})),
            (
                "tags",
                json!({"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}})
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    );
    assert_eq!(parent["events"][0]["name"], "checkpoint");
    assert_eq!(
        attr(&parent["events"][0], "step"),
        Some(&json!({"intValue": "1"}))
    );
    assert_eq!(child["events"][0]["name"], "query");
    assert_eq!(
        attr(&child["events"][0], "rows"),
        Some(&json!({"intValue": "7"}))
    );
    assert_eq!(parent["status"], json!({"code": 1.0}));
    assert_eq!(child["status"], json!({"code": 2.0, "message": "boom"}));
}

fn data<'a>(metric: &'a Value, kind: &str) -> (&'a Value, &'a Value) {
    let data = &metric[kind];
    assert!(data.is_object(), "{} is a {kind}: {metric}", metric["name"]);
    (data, &data["dataPoints"][0])
}

fn check_metrics(items: &[Value]) {
    // Cumulative sums and gauges: once on force_flush, once on shutdown.
    let requests = by_name(items, "e2e.requests");
    assert_eq!(requests.len(), 4, "{requests:#?}");
    for m in &requests {
        let (sum, dp) = data(m, "sum");
        assert_eq!(sum["aggregationTemporality"], json!(2.0));
        assert_eq!(sum["isMonotonic"], json!(true));
        assert_eq!(m["unit"], "1");
        let want = match attr(dp, "route").and_then(|v| v["stringValue"].as_str()) {
            Some("/a") => "6",
            Some("/b") => "2",
            other => panic!("unexpected route {other:?}"),
        };
        assert_eq!(dp["asInt"], want);
    }

    // Delta histogram: its only data point goes out on the first collection.
    let latency = by_name(items, "e2e.latency");
    assert_eq!(latency.len(), 1, "{latency:#?}");
    let (hist, dp) = data(latency[0], "histogram");
    assert_eq!(hist["aggregationTemporality"], json!(1.0));
    assert_eq!(dp["count"], "4");
    assert_eq!(dp["sum"], json!(320.75));
    assert_eq!(dp["min"], json!(1.5));
    assert_eq!(dp["max"], json!(300.0));
    let buckets: Vec<u64> = dp["bucketCounts"]
        .as_array()
        .expect("bucketCounts")
        .iter()
        .map(|c| c.as_str().and_then(|s| s.parse().ok()).expect("count"))
        .collect();
    assert_eq!(buckets.iter().sum::<u64>(), 4);

    let depth = by_name(items, "e2e.queue.depth");
    assert_eq!(depth.len(), 2);
    for m in depth {
        let (sum, dp) = data(m, "sum");
        assert!(sum.get("isMonotonic").is_none(), "up-down counter: {m}");
        assert_eq!(sum["aggregationTemporality"], json!(2.0));
        assert_eq!(dp["asInt"], "3");
    }

    let temperature = by_name(items, "e2e.temperature");
    assert_eq!(temperature.len(), 2);
    for m in temperature {
        let (_, dp) = data(m, "gauge");
        assert_eq!(dp["asDouble"], json!(21.5));
        assert_eq!(attr(dp, "room"), Some(&string_value("lab")));
    }

    let connections = by_name(items, "e2e.connections");
    assert_eq!(connections.len(), 2);
    for m in connections {
        let (_, dp) = data(m, "gauge");
        assert_eq!(dp["asInt"], "3");
    }
}

fn check_logs(logs: &[Value], spans: &[Value]) {
    assert_eq!(logs.len(), 3, "{logs:#?}");
    let body = |l: &Value| l["item"]["body"].clone();
    let find = |b: Value| {
        let found: Vec<&Value> = logs.iter().filter(|l| body(l) == b).collect();
        assert_eq!(found.len(), 1, "one log with body {b}");
        &found[0]["item"]
    };
    let parent = one(spans, "parent");
    let child = one(spans, "child");

    let warn = find(string_value("inside parent"));
    assert_eq!(warn["severityNumber"], json!(13.0));
    assert_eq!(warn["severityText"], "WARN");
    assert_eq!(attr(warn, "item.id"), Some(&json!({"intValue": "42"})));
    assert_eq!(warn["traceId"], parent["traceId"]);
    assert_eq!(warn["spanId"], parent["spanId"]);

    let structured = find(json!({"kvlistValue": {"values": [
        {"key": "msg", "value": {"stringValue": "structured"}},
        {"key": "code", "value": {"intValue": "7"}},
    ]}}));
    assert_eq!(structured["severityNumber"], json!(17.0));
    assert_eq!(attr(structured, "k"), Some(&string_value("v")));
    assert_eq!(structured["traceId"], child["traceId"]);
    assert_eq!(structured["spanId"], child["spanId"]);

    let info = find(string_value("outside any span"));
    assert_eq!(info["severityNumber"], json!(9.0));
    assert_eq!(attr(info, "user"), Some(&string_value("alice")));
    assert!(info.get("traceId").is_none() && info.get("spanId").is_none());
}
