//! Delivery to an OTLP backend the project did not write (tests/e2e/python/otlp_sink.py):
//! the `otlp` (gRPC) and `otlphttp` exporters, retries, permanent errors, the drain at
//! shutdown and the batch processor's splitting, all checked against what the backend
//! recorded and the agent's own counters.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{self, Agent, Ports};
use crate::otlp_json::{assert_same_items, attr, flatten, string_value, Signal};
use crate::otlp_sink::{Attempt, Sink};
use crate::own_metrics;
use crate::traffic;

const SDK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/python/send_sdk.py");
/// Bound of every wait for data to reach the sink.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The exporters' shutdown drain deadline (docs/delivery.md).
const DRAIN_DEADLINE: Duration = Duration::from_secs(25);

/// A config with the OTLP receiver (gRPC and HTTP), health_check and own metrics on `ports`;
/// `processors` and `exporters` are YAML blocks indented by two spaces, `pipelines` pairs a
/// pipeline name with its flow-style definition.
pub fn agent_config(
    ports: &Ports,
    processors: &str,
    exporters: &str,
    pipelines: &[(&str, &str)],
) -> String {
    let processors = if processors.trim().is_empty() {
        String::new()
    } else {
        format!("processors:\n{processors}\n")
    };
    let pipelines: String = pipelines
        .iter()
        .map(|(name, def)| format!("    {name}: {def}\n"))
        .collect();
    format!(
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
{processors}exporters:
{exporters}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  pipelines:
{pipelines}  telemetry:
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {metrics}}}}}}}
"#,
        grpc = ports.grpc,
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
    )
}

/// Blocking OTLP/HTTP posts to the agent.
pub struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Client {
    pub fn new() -> Client {
        Client {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    /// POSTs OTLP/JSON to the agent's `/v1/{signal}`; the response status.
    pub fn post_json(&self, port: u16, signal: &str, body: &Value) -> u16 {
        self.rt
            .block_on(traffic::post(&self.http, port, signal, body))
            .unwrap_or_else(|e| panic!("POST /v1/{signal} to 127.0.0.1:{port}: {e}"))
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The span ids of `traffic::traces(seed, n)` for every seed.
fn sent_span_ids(seeds: impl IntoIterator<Item = u64>, n: u64) -> Vec<String> {
    seeds
        .into_iter()
        .flat_map(|seed| (0..n).map(move |i| traffic::span_id(seed, i)))
        .collect()
}

/// Fails unless the spans the sink accepted on `port` are exactly `expected`, each once.
fn assert_spans_exactly_once(sink: &Sink, port: u16, expected: &[String], what: &str) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for record in sink
        .records()
        .iter()
        .filter(|r| r.port == port && r.signal == "traces")
    {
        for id in record.span_ids() {
            *seen.entry(id).or_default() += 1;
        }
    }
    let expected_set: HashSet<&String> = expected.iter().collect();
    assert_eq!(
        expected_set.len(),
        expected.len(),
        "{what}: test sent duplicate ids"
    );
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let extra: Vec<_> = seen
        .keys()
        .filter(|id| !expected_set.contains(id))
        .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        duplicated.is_empty() && extra.is_empty() && missing.is_empty(),
        "{what}: {} spans expected, {} distinct received\nduplicated: {duplicated:?}\nextra: {extra:?}\nmissing: {missing:?}",
        expected.len(),
        seen.len()
    );
}

/// The attempts on `port`, in the order the sink saw them.
fn attempts_on(sink: &Sink, port: u16) -> Vec<Attempt> {
    let mut a: Vec<Attempt> = sink
        .attempts()
        .into_iter()
        .filter(|a| a.port == port)
        .collect();
    a.sort_by_key(|a| a.attempt);
    a
}

/// Attempts grouped by the request they carried, each group in order.
fn by_request(attempts: &[Attempt]) -> BTreeMap<String, Vec<Attempt>> {
    let mut groups: BTreeMap<String, Vec<Attempt>> = BTreeMap::new();
    for a in attempts {
        let digest = a.digest.clone().expect("the sink decoded every attempt");
        groups.entry(digest).or_default().push(a.clone());
    }
    groups
}

#[test]
fn forward_grpc_and_http_to_independent_sink() {
    let python = harness::python();
    // One sink, three ports: gRPC for `otlp`, HTTP for `otlphttp` and `otlphttp/json`.
    let sink = Sink::start(1, 2, &[]);
    let (grpc, proto, json) = (sink.grpc_port(), sink.http_ports[0], sink.http_ports[1]);
    let exporters = format!(
        r#"  otlp:
    endpoint: 127.0.0.1:{grpc}
    tls: {{insecure: true}}
    headers: {{x-ferrotel-exporter: otlp, x-tenant: grpc-tenant}}
  otlphttp:
    endpoint: http://127.0.0.1:{proto}
    headers: {{x-ferrotel-exporter: otlphttp, x-tenant: proto-tenant}}
  otlphttp/json:
    traces_endpoint: http://127.0.0.1:{json}/v1/traces
    metrics_endpoint: http://127.0.0.1:{json}/v1/metrics
    logs_endpoint: http://127.0.0.1:{json}/v1/logs
    encoding: json
    compression: none
    headers: {{x-ferrotel-exporter: otlphttp/json, x-tenant: json-tenant}}"#
    );
    let pipeline =
        "{receivers: [otlp], processors: [batch], exporters: [otlp, otlphttp, otlphttp/json]}";
    let mut agent = Agent::start(|ports, _| {
        agent_config(
            ports,
            "  batch: {timeout: 200ms}",
            &exporters,
            &[
                ("traces", pipeline),
                ("metrics", pipeline),
                ("logs", pipeline),
            ],
        )
    });

    let service = "ferrotel-e2e-delivery";
    let sent = harness::run_bounded(
        Command::new(&python).arg(SDK_SCRIPT).args([
            "--protocol",
            "grpc",
            "--endpoint",
            &format!("127.0.0.1:{}", agent.ports.grpc),
            "--service-name",
            service,
        ]),
        agent.dir.path(),
        "send_sdk",
        Duration::from_secs(90),
    );
    assert!(
        sent.status.success(),
        "the SDK script failed ({}):\n{}\nagent log:\n{}",
        sent.status,
        sent.stderr,
        agent.log()
    );
    let expected: Value = serde_json::from_str(&sent.stdout)
        .unwrap_or_else(|e| panic!("SDK script output is not JSON: {e}\n{}", sent.stdout));
    let signals = [
        (Signal::Traces, "traces"),
        (Signal::Metrics, "metrics"),
        (Signal::Logs, "logs"),
    ];
    let want: Vec<(Signal, &str, Vec<Value>)> = signals
        .iter()
        .map(|(s, key)| {
            let requests = expected[key].as_array().expect("requests list");
            (*s, *key, flatten(*s, requests))
        })
        .collect();

    sink.wait_until(
        "every item at every exporter's port",
        DELIVERY_TIMEOUT,
        |sink| {
            [grpc, proto, json].iter().all(|port| {
                want.iter()
                    .all(|(_, key, items)| sink.items_on(*port, key) >= items.len() as u64)
            })
        },
        || agent.log(),
    );
    let status = agent.stop();
    assert_eq!(status.code(), Some(0), "agent exit status\n{}", agent.log());

    let records = sink.records();
    for (port, exporter, content_type, encoding) in [
        (grpc, "otlp", "application/grpc", None),
        (proto, "otlphttp", "application/x-protobuf", Some("gzip")),
        (json, "otlphttp/json", "application/json", None),
    ] {
        let mine: Vec<_> = records.iter().filter(|r| r.port == port).collect();
        for r in &mine {
            assert_eq!(
                r.header("x-ferrotel-exporter"),
                Some(exporter),
                "{exporter}: headers {:?}",
                r.headers
            );
            let tenant = format!("{}-tenant", exporter_kind(exporter));
            assert_eq!(r.header("x-tenant"), Some(tenant.as_str()), "{exporter}");
            assert_eq!(r.content_type, content_type, "{exporter}: content type");
            if r.transport == "http" {
                assert_eq!(
                    r.content_encoding.as_deref(),
                    encoding,
                    "{exporter}: encoding"
                );
                assert_eq!(r.path, format!("/v1/{}", r.signal), "{exporter}: path");
            } else {
                assert_eq!(r.transport, "grpc");
            }
        }
        for (signal, key, items) in &want {
            let got: Vec<Value> = mine
                .iter()
                .filter(|r| r.signal == *key)
                .map(|r| r.otlp_json())
                .collect();
            let got = flatten(*signal, &got);
            assert_same_items(&format!("{exporter} {key}"), items, &got);
            for item in &got {
                assert_eq!(
                    attr(&item["resource"], "service.name"),
                    Some(&string_value(service)),
                    "{exporter}: resource of {item}"
                );
            }
        }
    }
}

fn exporter_kind(exporter: &str) -> &'static str {
    match exporter {
        "otlp" => "grpc",
        "otlphttp" => "proto",
        _ => "json",
    }
}

/// `otlp` to the sink's gRPC port and `otlphttp` to its HTTP port, both with `extra`
/// settings (YAML flow-map entries), in a traces pipeline with `processors`.
fn two_exporters(sink: &Sink, extra: &str) -> String {
    format!(
        r#"  otlp:
    endpoint: 127.0.0.1:{grpc}
    tls: {{insecure: true}}
    {extra}
  otlphttp:
    endpoint: http://127.0.0.1:{http}
    {extra}"#,
        grpc = sink.grpc_port(),
        http = sink.http_port(),
    )
}

#[test]
fn backend_503_then_recovers_nothing_lost() {
    const FAILURES: usize = 3;
    const REQUESTS: u64 = 4;
    const SPANS: u64 = 25;
    // Backoff: 200ms, then x1.5 each time, each wait within +-50%.
    const INITIAL: f64 = 0.2;
    const MULTIPLIER: f64 = 1.5;
    const RANDOMIZATION: f64 = 0.5;

    let sink = Sink::start(
        1,
        1,
        &[
            "--fail-first",
            &FAILURES.to_string(),
            "--fail-status",
            "503",
        ],
    );
    let exporters = two_exporters(
        &sink,
        &format!(
            "retry_on_failure: {{initial_interval: {}ms, max_interval: 2s, multiplier: {MULTIPLIER}, randomization_factor: {RANDOMIZATION}, max_elapsed_time: 60s}}",
            (INITIAL * 1000.0) as u64
        ),
    );
    let pipeline = "{receivers: [otlp], processors: [batch], exporters: [otlp, otlphttp]}";
    let mut agent = Agent::start(|ports, _| {
        agent_config(
            ports,
            "  batch: {timeout: 200ms}",
            &exporters,
            &[("traces", pipeline)],
        )
    });
    let client = Client::new();
    for seed in 0..REQUESTS {
        let status = client.post_json(agent.ports.http, "traces", &traffic::traces(seed, SPANS));
        assert_eq!(status, 200, "request {seed}\n{}", agent.log());
    }
    let total = REQUESTS * SPANS;
    sink.wait_until(
        "every span at both ports",
        DELIVERY_TIMEOUT,
        |s| {
            s.items_on(s.grpc_port(), "traces") >= total
                && s.items_on(s.http_port(), "traces") >= total
        },
        || agent.log(),
    );
    let t = f64::from(u32::try_from(total).expect("small"));
    own_metrics::wait_for(
        agent.ports.metrics,
        Duration::from_secs(10),
        &[
            ("otelcol_exporter_sent_spans", &[("exporter", "otlp")], t),
            (
                "otelcol_exporter_sent_spans",
                &[("exporter", "otlphttp")],
                t,
            ),
            (
                "otelcol_exporter_send_failed_spans",
                &[("exporter", "otlp")],
                0.0,
            ),
            (
                "otelcol_exporter_send_failed_spans",
                &[("exporter", "otlphttp")],
                0.0,
            ),
        ],
        || agent.log(),
    );
    let status = agent.stop();
    assert_eq!(status.code(), Some(0), "agent exit status\n{}", agent.log());

    let expected = sent_span_ids(0..REQUESTS, SPANS);
    for (port, failed_status) in [
        (sink.grpc_port(), Value::from("UNAVAILABLE")),
        (sink.http_port(), Value::from(503)),
    ] {
        assert_spans_exactly_once(&sink, port, &expected, &format!("port {port}"));
        let attempts = attempts_on(&sink, port);
        let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert!(
            outcomes.len() > FAILURES
                && outcomes[..FAILURES].iter().all(|o| *o == "failed")
                && outcomes[FAILURES..].iter().all(|o| *o == "accepted"),
            "port {port}: outcomes {outcomes:?}"
        );
        assert!(attempts[..FAILURES]
            .iter()
            .all(|a| a.status == failed_status));
        // Each request: failed attempts, then one accepted; retries spaced by at least the
        // backoff's lower bound, initial * multiplier^k * (1 - randomization).
        let groups = by_request(&attempts);
        for (digest, group) in &groups {
            let (last, failed) = group.split_last().expect("non-empty");
            assert_eq!(last.outcome, "accepted", "request {digest}: {group:#?}");
            assert!(failed.iter().all(|a| a.outcome == "failed"), "{group:#?}");
            for (k, pair) in group.windows(2).enumerate() {
                let gap = pair[1].start - pair[0].start;
                let lower = INITIAL * MULTIPLIER.powi(k as i32) * (1.0 - RANDOMIZATION);
                assert!(
                    gap >= lower - 0.002,
                    "port {port}, request {digest}: retry {} came {gap:.3}s after the previous attempt, before the backoff's lower bound {lower:.3}s",
                    k + 1
                );
            }
        }
        let gaps: Vec<Vec<String>> = groups
            .values()
            .map(|g| {
                g.windows(2)
                    .map(|p| format!("{:.3}s", p[1].start - p[0].start))
                    .collect()
            })
            .collect();
        eprintln!("port {port}: retry gaps per request {gaps:?}");
        let retried: usize = groups.values().map(|g| g.len() - 1).sum();
        assert_eq!(retried, FAILURES, "port {port}: every failure was retried");
    }
}

#[test]
fn backend_throttle_wait_is_honoured() {
    // The sink answers the first attempt on each port with HTTP 429 + Retry-After: 1 /
    // gRPC RESOURCE_EXHAUSTED + RetryInfo 1s; the exporters' own backoff would retry after
    // 50ms. gRPC RESOURCE_EXHAUSTED is retryable only because RetryInfo is present.
    let sink = Sink::start(
        1,
        1,
        &[
            "--fail-first",
            "1",
            "--resource-exhausted-with-retry-info",
            "1s",
        ],
    );
    let exporters = two_exporters(
        &sink,
        "retry_on_failure: {initial_interval: 50ms, max_interval: 50ms, randomization_factor: 0, max_elapsed_time: 30s}",
    );
    let pipeline = "{receivers: [otlp], exporters: [otlp, otlphttp]}";
    let mut agent =
        Agent::start(|ports, _| agent_config(ports, "", &exporters, &[("traces", pipeline)]));
    let client = Client::new();
    assert_eq!(
        client.post_json(agent.ports.http, "traces", &traffic::traces(7, 3)),
        200
    );
    sink.wait_until(
        "the spans at both ports",
        DELIVERY_TIMEOUT,
        |s| s.items_on(s.grpc_port(), "traces") >= 3 && s.items_on(s.http_port(), "traces") >= 3,
        || agent.log(),
    );
    assert_eq!(agent.stop().code(), Some(0), "{}", agent.log());
    let expected = sent_span_ids([7], 3);
    for (port, throttled) in [
        (sink.grpc_port(), Value::from("RESOURCE_EXHAUSTED")),
        (sink.http_port(), Value::from(429)),
    ] {
        assert_spans_exactly_once(&sink, port, &expected, &format!("port {port}"));
        let attempts = attempts_on(&sink, port);
        assert_eq!(attempts.len(), 2, "port {port}: {attempts:#?}");
        assert_eq!(attempts[0].status, throttled);
        assert_eq!(attempts[1].outcome, "accepted");
        assert_eq!(
            attempts[0].digest, attempts[1].digest,
            "a retry of the same request"
        );
        let gap = attempts[1].start - attempts[0].start;
        assert!(
            gap >= 0.998,
            "port {port}: retried {gap:.3}s after a throttle of 1s"
        );
    }
}

#[test]
fn backend_400_is_not_retried_and_counted() {
    const REQUESTS: u64 = 3;
    const SPANS: u64 = 10;
    let sink = Sink::start(1, 1, &["--always-status", "400"]);
    let exporters = two_exporters(
        &sink,
        "retry_on_failure: {initial_interval: 100ms, max_interval: 100ms, max_elapsed_time: 30s}",
    );
    // No batch processor: each request is one batch, so one attempt each.
    let pipeline = "{receivers: [otlp], exporters: [otlp, otlphttp]}";
    let mut agent =
        Agent::start(|ports, _| agent_config(ports, "", &exporters, &[("traces", pipeline)]));
    let client = Client::new();
    for seed in 0..REQUESTS {
        // Accepted into the sending queue: the sender is told 200.
        let status = client.post_json(agent.ports.http, "traces", &traffic::traces(seed, SPANS));
        assert_eq!(status, 200, "{}", agent.log());
    }
    let spans = (REQUESTS * SPANS) as f64;
    own_metrics::wait_for(
        agent.ports.metrics,
        DELIVERY_TIMEOUT,
        &[
            (
                "otelcol_exporter_send_failed_spans",
                &[("exporter", "otlp")],
                spans,
            ),
            (
                "otelcol_exporter_send_failed_spans",
                &[("exporter", "otlphttp")],
                spans,
            ),
            ("otelcol_exporter_sent_spans", &[("exporter", "otlp")], 0.0),
            (
                "otelcol_exporter_sent_spans",
                &[("exporter", "otlphttp")],
                0.0,
            ),
            (
                "otelcol_receiver_accepted_spans",
                &[("receiver", "otlp")],
                spans,
            ),
        ],
        || agent.log(),
    );
    // Ten backoff intervals: a retry, if any, would have come by now.
    std::thread::sleep(Duration::from_secs(1));
    let log = agent.log();
    assert_eq!(agent.stop().code(), Some(0), "{log}");
    assert!(sink.records().is_empty(), "the sink accepted nothing");
    for (port, transport, status) in [
        (sink.grpc_port(), "grpc", Value::from("INVALID_ARGUMENT")),
        (sink.http_port(), "http", Value::from(400)),
    ] {
        let attempts = attempts_on(&sink, port);
        assert_eq!(
            attempts.len() as u64,
            REQUESTS,
            "port {port}: one attempt per batch: {attempts:#?}"
        );
        assert!(
            attempts.iter().all(|a| a.status == status
                && a.items == Some(SPANS)
                && a.transport == transport
                && a.signal == "traces"),
            "port {port}: {attempts:#?}"
        );
        let digests: HashSet<_> = attempts.iter().map(|a| a.digest.clone()).collect();
        assert_eq!(digests.len() as u64, REQUESTS, "no request was sent twice");
    }
    let log_lower = log.to_lowercase();
    assert!(
        log_lower.contains("permanent"),
        "the log names the error permanent:\n{log}"
    );
    assert!(
        log.contains("otlp_sink: scripted failure"),
        "the log carries the destination's message:\n{log}"
    );
}

#[test]
fn shutdown_drains_a_non_empty_queue() {
    const REQUESTS: u64 = 20;
    const SPANS: u64 = 10;
    // Each answer takes 200ms and two batches go out at a time: about 2s of work queued.
    let sink = Sink::start(1, 1, &["--delay-ms", "200"]);
    let exporters = two_exporters(&sink, "sending_queue: {num_consumers: 2, queue_size: 100}");
    let pipeline = "{receivers: [otlp], exporters: [otlp, otlphttp]}";
    let mut agent =
        Agent::start(|ports, _| agent_config(ports, "", &exporters, &[("traces", pipeline)]));
    let client = Client::new();
    for seed in 0..REQUESTS {
        let status = client.post_json(agent.ports.http, "traces", &traffic::traces(seed, SPANS));
        assert_eq!(status, 200, "{}", agent.log());
    }
    let text = own_metrics::scrape(agent.ports.metrics);
    for exporter in ["otlp", "otlphttp"] {
        let queued = own_metrics::count(
            &text,
            "otelcol_exporter_queue_size",
            &[("exporter", exporter)],
        );
        assert!(
            queued > 0.0,
            "{exporter}: the queue holds data at SIGTERM (queue size {queued})"
        );
    }
    let accepted = own_metrics::count(
        &text,
        "otelcol_receiver_accepted_spans",
        &[("receiver", "otlp")],
    );
    assert_eq!(accepted, (REQUESTS * SPANS) as f64);

    let started = Instant::now();
    agent.sigterm();
    let status = agent.wait_exit();
    let took = started.elapsed();
    let log = agent.log();
    assert_eq!(status.code(), Some(0), "exit status\n{log}");
    assert!(
        took < DRAIN_DEADLINE,
        "the drain took {took:?}, past the {DRAIN_DEADLINE:?} deadline\n{log}"
    );
    let expected = sent_span_ids(0..REQUESTS, SPANS);
    for port in [sink.grpc_port(), sink.http_port()] {
        assert_spans_exactly_once(&sink, port, &expected, &format!("port {port}"));
    }
    eprintln!("drained {REQUESTS} requests to each of two exporters in {took:?} after SIGTERM");
}

#[test]
fn batch_splits_and_times_out() {
    let sink = Sink::start(0, 1, &[]);
    let exporters = format!(
        "  otlphttp:\n    endpoint: http://127.0.0.1:{}",
        sink.http_port()
    );
    let pipeline = "{receivers: [otlp], processors: [batch], exporters: [otlphttp]}";
    let mut agent = Agent::start(|ports, _| {
        agent_config(
            ports,
            "  batch: {send_batch_size: 10, send_batch_max_size: 10, timeout: 200ms}",
            &exporters,
            &[("traces", pipeline)],
        )
    });
    let client = Client::new();
    let before = unix_now();
    assert_eq!(
        client.post_json(agent.ports.http, "traces", &traffic::traces(3, 25)),
        200
    );
    sink.wait_until(
        "25 spans",
        DELIVERY_TIMEOUT,
        |s| s.items_on(s.http_port(), "traces") >= 25,
        || agent.log(),
    );
    own_metrics::wait_for(
        agent.ports.metrics,
        Duration::from_secs(10),
        &[
            (
                "otelcol_processor_batch_batch_size_trigger_send",
                &[("processor", "batch")],
                2.0,
            ),
            (
                "otelcol_processor_batch_timeout_trigger_send",
                &[("processor", "batch")],
                1.0,
            ),
        ],
        || agent.log(),
    );
    assert_eq!(agent.stop().code(), Some(0), "{}", agent.log());

    let mut records = sink.records();
    records.sort_by_key(|r| r.seq);
    let sizes: Vec<u64> = records.iter().map(|r| r.items).collect();
    assert_eq!(sizes, [10, 10, 5], "requests the sink received");
    let ids: Vec<Vec<String>> = records.iter().map(|r| r.span_ids()).collect();
    let all = sent_span_ids([3], 25);
    let full: HashSet<&String> = ids[0].iter().chain(&ids[1]).collect();
    assert_eq!(
        full,
        all[..20].iter().collect(),
        "the first 20 spans in the full batches"
    );
    assert_eq!(ids[2], all[20..], "the last 5 spans wait for the timeout");
    // The timer starts when the request reaches the batch processor, after `before`.
    let waited = records[2].unix - before;
    assert!(
        (0.195..2.0).contains(&waited),
        "the last batch arrived {waited:.3}s after the request was sent, want about 0.2s"
    );
    let full_batches_at = records[1].unix - before;
    assert!(
        full_batches_at < waited,
        "the full batches went out first ({full_batches_at:.3}s)"
    );
}
