//! A destination that is down longer than the sending queue can hold: senders are told to
//! retry (503), memory stays bounded, every item is accounted for in the agent's counters,
//! and what was accepted is delivered once the destination is back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

use crate::delivery::agent_config;
use crate::harness::{self, Agent};
use crate::otlp_sink::Sink;
use crate::own_metrics;
use crate::traffic;

/// The agent's resident memory must stay below this while it refuses data.
const RSS_BOUND: u64 = 200 * 1024 * 1024;

#[test]
fn backend_down_longer_than_queue() {
    const QUEUE_SIZE: u64 = 5;
    const CONSUMERS: u64 = 1;
    const SPANS: u64 = 20;
    const SENDERS: u64 = 4;
    const SENDING_FOR: Duration = Duration::from_secs(3);

    // A port nothing listens on until the sink starts there later.
    let backend = harness::free_ports(1)[0];
    let exporters = format!(
        r#"  otlphttp:
    endpoint: http://127.0.0.1:{backend}
    timeout: 1s
    sending_queue: {{queue_size: {QUEUE_SIZE}, num_consumers: {CONSUMERS}}}
    retry_on_failure: {{initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0}}"#
    );
    let pipeline = "{receivers: [otlp], exporters: [otlphttp]}";
    let mut agent =
        Agent::start(|ports, _| agent_config(ports, "", &exporters, &[("traces", pipeline)]));
    let (http_port, metrics_port, pid) = (agent.ports.http, agent.ports.metrics, agent.pid());

    // Sample the agent's RSS while senders keep going.
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, max_rss) = (stop_sampling.clone(), max_rss.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::SeqCst) {
                if let Some(rss) = harness::rss_bytes(pid) {
                    max_rss.fetch_max(rss, Ordering::SeqCst);
                    samples += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        })
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let until = Instant::now() + SENDING_FOR;
    let tasks: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let client = client.clone();
            rt.spawn(async move {
                let mut outcomes: Vec<(u64, Result<u16, String>)> = Vec::new();
                let mut k = 0;
                while Instant::now() < until {
                    let seed = sender * 1_000_000 + k;
                    k += 1;
                    let body = traffic::traces(seed, SPANS);
                    let result = traffic::post(&client, http_port, "traces", &body)
                        .await
                        .map_err(|e| e.to_string());
                    outcomes.push((seed, result));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<(u64, Result<u16, String>)> = rt.block_on(async {
        let mut all = Vec::new();
        for t in tasks {
            let done = tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("sender finished")
                .expect("sender task");
            all.extend(done);
        }
        all
    });
    stop_sampling.store(true, Ordering::SeqCst);
    let samples = sampler.join().expect("sampler");
    let max_rss = max_rss.load(Ordering::SeqCst);

    let accepted: Vec<u64> = outcomes
        .iter()
        .filter(|(_, r)| r.as_ref().ok() == Some(&200))
        .map(|(seed, _)| *seed)
        .collect();
    let refused = outcomes
        .iter()
        .filter(|(_, r)| r.as_ref().ok() == Some(&503))
        .count() as u64;
    let other: Vec<_> = outcomes
        .iter()
        .filter(|(_, r)| !matches!(r, Ok(200) | Ok(503)))
        .collect();
    eprintln!(
        "sent {} requests: {} answered 200, {refused} answered 503; max RSS {:.1} MiB over {samples} samples",
        outcomes.len(),
        accepted.len(),
        max_rss as f64 / (1024.0 * 1024.0)
    );
    assert!(
        other.is_empty(),
        "only 200 or 503 expected: {other:?}\n{}",
        agent.log()
    );
    // One batch is with the (retrying) consumer, QUEUE_SIZE wait in the queue; the rest
    // is refused with a retryable status.
    assert_eq!(
        accepted.len() as u64,
        QUEUE_SIZE + CONSUMERS,
        "requests accepted while the destination is down\n{}",
        agent.log()
    );
    assert!(refused > 0, "the senders were told to retry");
    assert!(samples > 10, "RSS sampled {samples} times");
    assert!(
        max_rss < RSS_BOUND,
        "agent RSS reached {max_rss} bytes, above the {RSS_BOUND} bound"
    );

    // Every item the senders sent is accounted for: accepted by the receiver and waiting in
    // the exporter (queue or in flight), or refused at the receiver because the queue was
    // full. Nothing was sent, nothing dropped.
    let accepted_spans = (accepted.len() as u64 * SPANS) as f64;
    let refused_spans = (refused * SPANS) as f64;
    let exp = &[("exporter", "otlphttp")][..];
    let rcv = &[("receiver", "otlp"), ("transport", "http")][..];
    own_metrics::wait_for(
        metrics_port,
        Duration::from_secs(10),
        &[
            ("otelcol_receiver_accepted_spans", rcv, accepted_spans),
            ("otelcol_receiver_refused_spans", rcv, refused_spans),
            ("otelcol_exporter_enqueue_failed_spans", exp, refused_spans),
            ("otelcol_exporter_sent_spans", exp, 0.0),
            ("otelcol_exporter_send_failed_spans", exp, 0.0),
            ("otelcol_exporter_queue_size", exp, QUEUE_SIZE as f64),
            ("otelcol_exporter_queue_capacity", exp, QUEUE_SIZE as f64),
            ("otelcol_exporter_in_flight_requests", exp, CONSUMERS as f64),
        ],
        || agent.log(),
    );

    // The destination comes back: what was accepted is delivered, once.
    let sink = Sink::start_on(&[], &[backend], &[])
        .unwrap_or_else(|e| panic!("sink on the exporter's port {backend}: {e}"));
    let total = accepted.len() as u64 * SPANS;
    sink.wait_until(
        "the queued spans after the destination came back",
        Duration::from_secs(30),
        |s| s.items_on(backend, "traces") >= total,
        || agent.log(),
    );
    own_metrics::wait_for(
        metrics_port,
        Duration::from_secs(10),
        &[
            ("otelcol_exporter_sent_spans", exp, accepted_spans),
            ("otelcol_exporter_send_failed_spans", exp, 0.0),
            ("otelcol_exporter_queue_size", exp, 0.0),
            ("otelcol_exporter_in_flight_requests", exp, 0.0),
        ],
        || agent.log(),
    );
    assert_eq!(agent.stop().code(), Some(0), "{}", agent.log());
    let mut got: Vec<String> = sink.records().iter().flat_map(|r| r.span_ids()).collect();
    got.sort();
    let mut want: Vec<String> = accepted
        .iter()
        .flat_map(|&seed| (0..SPANS).map(move |i| traffic::span_id(seed, i)))
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "the delivered spans are exactly the accepted ones, once each"
    );
}

/// The body of one big log record. Held by the exporter, it costs this much twice: the
/// decoded record and the encoded request being retried.
const BIG_BODY: usize = 40 << 20;

/// An OTLP logs request (protobuf) with one record: attribute `n`, a body of `body_len`.
fn logs_request(n: i64, body_len: usize) -> Vec<u8> {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    severity_number: 9,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("x".repeat(body_len))),
                    }),
                    attributes: vec![KeyValue {
                        key: "n".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::IntValue(n)),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    request.encode_to_vec()
}

/// POSTs OTLP/protobuf logs to the agent: (status, body).
fn post_logs(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    port: u16,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    rt.block_on(async {
        let resp = client
            .post(format!("http://127.0.0.1:{port}/v1/logs"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /v1/logs: {e}"));
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("response body").to_vec();
        (status, body)
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[test]
fn memory_limiter_refuses_and_recovers() {
    // Refuse from 50 MiB of live heap. The idle agent (about 1 MiB) plus one request body is
    // below; once the exporter holds big records (decoded, and encoded for the attempts
    // that keep failing: the destination is down) the agent is above.
    const LIMIT_MIB: u64 = 150;
    const SPIKE_MIB: u64 = 100;
    const SOFT: u64 = (LIMIT_MIB - SPIKE_MIB) << 20;
    /// Heap this far from the soft limit is unambiguously on one side of it.
    const MARGIN: u64 = 8 << 20;
    /// Tries to get big requests accepted; one refused while being decoded is sent again.
    const MAX_BIG_REQUESTS: i64 = 20;
    const REFUSAL: &str = "data refused due to high memory usage";

    let backend = harness::free_ports(1)[0];
    let config = |ports: &harness::Ports| {
        format!(
            r#"receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
        max_request_body_size: 67108864
processors:
  memory_limiter: {{check_interval: 100ms, limit_mib: {LIMIT_MIB}, spike_limit_mib: {SPIKE_MIB}}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{backend}
    compression: none
    sending_queue: {{queue_size: 50, num_consumers: 1}}
    retry_on_failure: {{initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0}}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  pipelines:
    logs: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlphttp]}}
  telemetry:
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {metrics}}}}}}}
"#,
            http = ports.http,
            health = ports.health,
            metrics = ports.metrics,
        )
    };
    let mut agent = Agent::start(|ports, _| config(ports));
    let port = agent.ports.http;
    // What the limiter measures: the live heap, which the agent reports as a metric.
    let metrics_port = agent.ports.metrics;
    let rss = || {
        own_metrics::sample(
            &own_metrics::scrape(metrics_port),
            "otelcol_process_runtime_heap_alloc_bytes",
            &[],
        )
        .expect("the agent reports its heap") as u64
    };
    let idle = rss();
    let big = BIG_BODY as u64;
    assert!(
        idle + big + MARGIN <= SOFT && idle + 2 * big >= SOFT + MARGIN,
        "idle RSS {:.1} MiB does not fit the test's limits",
        mib(idle)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // Big requests, one at a time, each given three check intervals to register, until the
    // data the exporter holds keeps RSS above the soft limit. A request can be refused while
    // it is being decoded (the limiter measures the whole process, that request's body and
    // its decoded copy too); it is then sent again, as a client would.
    let mut accepted: Vec<i64> = Vec::new();
    let mut refused = 0u32;
    let mut trace = vec![format!("idle {:.1} MiB", mib(idle))];
    let mut steady = idle;
    for n in 0..MAX_BIG_REQUESTS {
        let (status, body) = post_logs(&rt, &client, port, logs_request(n, BIG_BODY));
        std::thread::sleep(Duration::from_millis(300));
        steady = rss();
        trace.push(format!("request {n}: {status}, RSS {:.1} MiB", mib(steady)));
        match status {
            200 => accepted.push(n),
            503 => {
                let text = String::from_utf8_lossy(&body);
                assert!(text.contains(REFUSAL), "503 body: {text}");
                refused += 1;
            }
            other => panic!("request {n}: status {other}\n{}", agent.log()),
        }
        // What the exporter holds: each accepted body, and the encoded copy in flight.
        let held = idle + big * (accepted.len() as u64 + 1);
        if held >= SOFT + MARGIN && steady >= SOFT + MARGIN {
            break;
        }
    }
    eprintln!("{}", trace.join("; "));
    assert!(
        !accepted.is_empty() && steady >= SOFT + MARGIN,
        "RSS not above the soft limit after {MAX_BIG_REQUESTS} big requests: {trace:?}\n{}",
        agent.log()
    );
    // Memory stays high while the queue holds the data: everything is refused, small
    // requests too.
    for n in 1000..1003 {
        let (status, body) = post_logs(&rt, &client, port, logs_request(n, 10));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 503, "{text}");
        assert!(text.contains(REFUSAL), "503 body: {text}");
        refused += 1;
    }
    let big_accepted = accepted.len() as f64;
    own_metrics::wait_for(
        agent.ports.metrics,
        Duration::from_secs(10),
        &[
            (
                "otelcol_processor_memory_limiter_accepted_log_records",
                &[("processor", "memory_limiter")],
                big_accepted,
            ),
            (
                "otelcol_processor_memory_limiter_refused_log_records",
                &[("processor", "memory_limiter")],
                f64::from(refused),
            ),
            (
                "otelcol_receiver_accepted_log_records",
                &[("receiver", "otlp")],
                big_accepted,
            ),
            (
                "otelcol_receiver_refused_log_records",
                &[("receiver", "otlp")],
                f64::from(refused),
            ),
        ],
        || agent.log(),
    );
    let log = agent.log();
    assert!(
        log.contains("Memory usage is above soft limit"),
        "the agent logs that it refuses:\n{log}"
    );

    // The destination comes back: the queue drains, memory is returned, data flows again.
    let sink = Sink::start_on(&[], &[backend], &[])
        .unwrap_or_else(|e| panic!("sink on the exporter's port {backend}: {e}"));
    let recovered_by = Instant::now() + Duration::from_secs(30);
    let mut k = 0;
    let small = loop {
        let n = 2000 + k;
        k += 1;
        let (status, _) = post_logs(&rt, &client, port, logs_request(n, 10));
        match status {
            200 => break n,
            503 => {}
            other => panic!("status {other}\n{}", agent.log()),
        }
        assert!(
            Instant::now() < recovered_by,
            "still refusing 30 s after the destination came back; RSS {:.1} MiB\n{}",
            mib(rss()),
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let want_records = accepted.len() + 1;
    sink.wait_until(
        "every accepted log record",
        Duration::from_secs(30),
        |s| {
            s.attempts()
                .iter()
                .filter(|a| a.outcome == "accepted")
                .count()
                >= want_records
        },
        || agent.log(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let drained = rss();
    eprintln!(
        "accepted {} big requests, refused {refused} requests at {:.1} MiB; accepting again after {k} tries; {:.1} MiB once drained",
        accepted.len(),
        mib(steady),
        mib(drained)
    );
    assert!(
        drained < SOFT,
        "RSS {:.1} MiB once everything was delivered",
        mib(drained)
    );
    assert_eq!(agent.stop().code(), Some(0), "{}", agent.log());

    // Exactly the accepted records arrived, whole, once each.
    let mut got: Vec<(i64, usize)> = Vec::new();
    for record in sink.records() {
        for rl in record.logs().resource_logs {
            for sl in rl.scope_logs {
                for lr in sl.log_records {
                    let n = match lr.attributes[0]
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                    {
                        Some(any_value::Value::IntValue(n)) => *n,
                        other => panic!("attribute n: {other:?}"),
                    };
                    let len = match lr.body.and_then(|b| b.value) {
                        Some(any_value::Value::StringValue(s)) => s.len(),
                        other => panic!("body: {:?}", other.map(|_| "not a string")),
                    };
                    got.push((n, len));
                }
            }
        }
    }
    got.sort();
    let mut want: Vec<(i64, usize)> = accepted.iter().map(|&n| (n, BIG_BODY)).collect();
    want.push((small, 10));
    assert_eq!(got, want, "records delivered (attribute n, body length)");
}
