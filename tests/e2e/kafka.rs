//! The Kafka tier end to end, against a real broker (tansu, sqlite storage, 127.0.0.1):
//! agents writing OTLP to Kafka and agents reading it back in a consumer group; records
//! written by a client the project did not write (confluent-kafka, from Python); poison
//! records; a consumer killed mid-stream; two consumers sharing a group.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::delivery::{agent_config, Client};
use crate::harness::{self, Agent, Ports};
use crate::otlp_json::{assert_same_items, attr, flatten, string_value, Signal};
use crate::otlp_sink::Sink;
use crate::own_metrics;
use crate::tansu::Broker;
use crate::traffic;

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/python/kafka_client.py"
);
/// Bound of every wait for data to come through the broker.
const WAIT: Duration = Duration::from_secs(60);

/// A group id no earlier phase used (a group every member left can stall a rejoin).
fn group(name: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The common tail of a consuming agent's config: health check and own metrics.
fn service_tail(ports: &Ports, pipelines: &str) -> String {
    format!(
        r#"extensions:
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
        health = ports.health,
        metrics = ports.metrics,
    )
}

/// Polls the file exporter's output until it holds `want` items of `signal`.
fn wait_for_items(agent: &Agent, path: &Path, signal: Signal, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = if path.exists() {
            harness::read_json_lines(path)
        } else {
            Vec::new()
        };
        let items = flatten(signal, &lines);
        if items.len() >= want {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {} of {want} {signal:?} items within {WAIT:?}\n{}",
            path.display(),
            items.len(),
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs kafka_client.py to completion; its stdout.
fn kafka_client(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(harness::python());
    cmd.arg(CLIENT).args(args);
    let done = harness::run_bounded(&mut cmd, dir.path(), "kafka_client", WAIT);
    assert!(
        done.status.success(),
        "kafka_client.py {args:?}: {}\n{}",
        done.status,
        done.stderr
    );
    done.stdout
}

/// A producer running in the background (kafka_client.py produce).
struct Producer {
    child: Child,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
}

impl Producer {
    fn start(args: &[&str]) -> Producer {
        let out = tempfile::NamedTempFile::new().expect("temp file");
        let err = tempfile::NamedTempFile::new().expect("temp file");
        let child = Command::new(harness::python())
            .arg(CLIENT)
            .arg("produce")
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.reopen().expect("reopen"))
            .stderr(err.reopen().expect("reopen"))
            .spawn()
            .expect("start kafka_client.py");
        Producer { child, out, err }
    }

    /// Waits for the producer to finish; record number -> (partition, offset).
    fn finish(mut self) -> BTreeMap<u64, (i32, i64)> {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the producer did not finish");
            std::thread::sleep(Duration::from_millis(50));
        };
        let err = std::fs::read_to_string(self.err.path()).unwrap_or_default();
        assert!(status.success(), "kafka_client.py produce: {status}\n{err}");
        deliveries(&std::fs::read_to_string(self.out.path()).expect("producer output"))
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deliveries(text: &str) -> BTreeMap<u64, (i32, i64)> {
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("producer line");
            let n = |k: &str| v[k].as_i64().expect("number");
            (n("i") as u64, (n("partition") as i32, n("offset")))
        })
        .collect()
}

/// The group's committed offset per partition (negative: none).
fn committed(broker: &Broker, group: &str, topic: &str, partitions: u32) -> BTreeMap<i32, i64> {
    let out = kafka_client(&[
        "committed",
        "--broker",
        &broker.address(),
        "--group",
        group,
        "--topic",
        topic,
        "--partitions",
        &partitions.to_string(),
    ]);
    let v: Value = serde_json::from_str(out.trim()).expect("committed output");
    v.as_object()
        .expect("object")
        .iter()
        .map(|(p, o)| (p.parse().expect("partition"), o.as_i64().expect("offset")))
        .collect()
}

/// How many times the sink saw each span `r<i>` on `port`.
fn span_counts(sink: &Sink, port: u16) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for record in sink
        .records()
        .iter()
        .filter(|r| r.port == port && r.signal == "traces")
    {
        for rs in record.traces().resource_spans {
            for ss in rs.scope_spans {
                for span in ss.spans {
                    let i = span
                        .name
                        .strip_prefix('r')
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("unexpected span {}", span.name));
                    *counts.entry(i).or_default() += 1;
                }
            }
        }
    }
    counts
}

/// A consuming agent: the kafka receiver (traces from `topic`) into the sink's gRPC `port`.
fn consumer_config(ports: &Ports, broker: &str, topic: &str, group: &str, port: u16) -> String {
    format!(
        r#"receivers:
  kafka:
    brokers: [{broker}]
    group_id: {group}
    initial_offset: earliest
    session_timeout: 6s
    heartbeat_interval: 1s
    autocommit: {{interval: 100ms}}
    traces: {{topics: [{topic}]}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{port}
    tls: {{insecure: true}}
{tail}"#,
        tail = service_tail(
            ports,
            "    traces: {receivers: [kafka], exporters: [otlp]}\n"
        ),
    )
}

#[test]
fn otlp_through_kafka_arrives_exactly_in_both_encodings() {
    let broker = Broker::start();
    let topics = [
        "otlp_spans",
        "otlp_metrics",
        "otlp_logs",
        "json_spans",
        "json_metrics",
        "json_logs",
    ];
    broker.create_topics(&topics);
    let address = broker.address();
    // The agent tier: OTLP in, every signal to Kafka in both encodings.
    let exporters = format!(
        r#"  kafka:
    brokers: [{address}]
  kafka/json:
    brokers: [{address}]
    traces: {{topic: json_spans, encoding: otlp_json}}
    metrics: {{topic: json_metrics, encoding: otlp_json}}
    logs: {{topic: json_logs, encoding: otlp_json}}"#
    );
    let flow = "{receivers: [otlp], exporters: [kafka, kafka/json]}";
    let mut writer = Agent::start(|ports, _| {
        agent_config(
            ports,
            "",
            &exporters,
            &[("traces", flow), ("metrics", flow), ("logs", flow)],
        )
    });
    // The gateway tier: both topic sets read back, each into its own file.
    let (proto_group, json_group) = (group("proto"), group("json"));
    let mut reader = Agent::start(|ports, dir| {
        let file = |name: &str| {
            Value::String(dir.join(format!("{name}.json")).display().to_string()).to_string()
        };
        let mut pipelines = String::new();
        for signal in ["traces", "metrics", "logs"] {
            pipelines.push_str(&format!(
                "    {signal}/proto: {{receivers: [kafka], exporters: [file/proto]}}\n\
                 \x20   {signal}/json: {{receivers: [kafka/json], exporters: [file/json]}}\n"
            ));
        }
        format!(
            r#"receivers:
  kafka:
    brokers: [{address}]
    group_id: {proto_group}
    initial_offset: earliest
  kafka/json:
    brokers: [{address}]
    group_id: {json_group}
    initial_offset: earliest
    traces: {{topics: [json_spans], encoding: otlp_json}}
    metrics: {{topics: [json_metrics], encoding: otlp_json}}
    logs: {{topics: [json_logs], encoding: otlp_json}}
exporters:
  file/proto: {{path: {proto}, flush_interval: 100ms}}
  file/json: {{path: {json}, flush_interval: 100ms}}
{tail}"#,
            proto = file("proto"),
            json = file("json"),
            tail = service_tail(ports, &pipelines),
        )
    });
    let client = Client::new();
    let mut sent = Vec::new();
    for seed in 1..=5 {
        sent.push(traffic::traces(seed * 100, 4));
    }
    sent.push(traffic::metrics(6));
    sent.push(traffic::logs(7));
    for request in &sent {
        let signal = Signal::of(request).expect("a request");
        let path = match signal {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        };
        assert_eq!(client.post_json(writer.ports.http, path, request), 200);
    }
    for name in ["proto", "json"] {
        let path = reader.dir.path().join(format!("{name}.json"));
        for (signal, want) in [
            (Signal::Traces, 20),
            (Signal::Metrics, 6),
            (Signal::Logs, 7),
        ] {
            wait_for_items(&reader, &path, signal, want);
        }
        // Anything extra would have arrived by now.
        std::thread::sleep(Duration::from_millis(500));
        let written = harness::read_json_lines(&path);
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            assert_same_items(
                &format!("{name} {signal:?}"),
                &flatten(signal, &sent),
                &flatten(signal, &written),
            );
        }
    }
    own_metrics::wait_for(
        reader.ports.metrics,
        Duration::from_secs(10),
        &[
            (
                "otelcol_receiver_accepted_spans",
                &[("receiver", "kafka"), ("transport", "kafka")],
                20.0,
            ),
            (
                "otelcol_receiver_accepted_log_records",
                &[("receiver", "kafka/json")],
                7.0,
            ),
        ],
        || reader.log(),
    );
    assert!(reader.stop().success(), "{}", reader.log());
    assert!(writer.stop().success(), "{}", writer.log());
}

#[test]
fn records_from_a_third_party_producer_are_decoded() {
    let broker = Broker::start();
    broker.create_topic("py_spans", 3);
    broker.create_topic("orders", 1);
    let address = broker.address();
    let produce = |topic: &str, kind: &str, count: &str| {
        kafka_client(&[
            "produce",
            "--broker",
            &address,
            "--topic",
            topic,
            "--kind",
            kind,
            "--count",
            count,
            "--partitions",
            if topic == "orders" { "1" } else { "3" },
            "--header",
            "tenant=acme",
        ])
    };
    produce("py_spans", "traces", "12");
    produce("orders", "events", "5");
    let group = group("third-party");
    let mut reader = Agent::start(|ports, dir| {
        let out = Value::String(dir.join("out.json").display().to_string());
        format!(
            r#"receivers:
  kafka:
    brokers: [{address}]
    group_id: {group}
    initial_offset: earliest
    traces: {{topics: [py_spans]}}
    logs: {{topics: [orders], encoding: json}}
    header_extraction: {{extract_headers: true, headers: [tenant]}}
exporters:
  file: {{path: {out}, flush_interval: 100ms}}
{tail}"#,
            tail = service_tail(
                ports,
                "    traces: {receivers: [kafka], exporters: [file]}\n    \
                 logs: {receivers: [kafka], exporters: [file]}\n"
            ),
        )
    });
    let path = reader.dir.path().join("out.json");
    let spans = wait_for_items(&reader, &path, Signal::Traces, 12);
    let logs = wait_for_items(&reader, &path, Signal::Logs, 5);
    let mut names: Vec<String> = spans
        .iter()
        .map(|s| s["item"]["name"].as_str().expect("name").to_string())
        .collect();
    names.sort_by_key(|n| n[1..].parse::<u64>().expect("r<i>"));
    let want: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
    assert_eq!(names, want);
    for span in &spans {
        let i: u64 = span["item"]["name"].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(span["item"]["traceId"], format!("{:032x}", i + 1));
        assert_eq!(span["item"]["spanId"], format!("{:016x}", i + 1));
        assert_eq!(
            attr(&span["resource"], "kafka.header.tenant"),
            Some(&string_value("acme"))
        );
        assert_eq!(
            attr(&span["resource"], "service.name"),
            Some(&string_value("kafka-producer"))
        );
    }
    // JSON events stay structured: a map body, numbers as doubles, nested maps and lists.
    let mut orders: Vec<&Value> = logs.iter().map(|l| &l["item"]["body"]).collect();
    orders.sort_by_key(|b| attr_in(b, "order_id")["doubleValue"].as_f64().unwrap() as i64);
    let first = orders[0];
    assert_eq!(
        attr_in(first, "order_id"),
        &serde_json::json!({"doubleValue": 0.0})
    );
    assert_eq!(attr_in(first, "aggregator"), &string_value("swiggy"));
    assert_eq!(
        attr_in(first, "amount"),
        &serde_json::json!({"doubleValue": 12.5})
    );
    assert_eq!(
        attr_in(first, "items"),
        &serde_json::json!({"arrayValue": {"values": [{"stringValue": "dosa"}, {"stringValue": "idli"}]}})
    );
    let customer = &attr_in(first, "customer")["kvlistValue"];
    assert_eq!(kv(customer, "city"), Some(&string_value("Bengaluru")));
    for log in &logs {
        assert_eq!(
            attr(&log["resource"], "kafka.header.tenant"),
            Some(&string_value("acme"))
        );
    }
    assert!(reader.stop().success(), "{}", reader.log());
}

/// A key of an OTLP/JSON kvlist (`{"values": [{key, value}]}`).
fn kv<'a>(list: &'a Value, key: &str) -> Option<&'a Value> {
    list["values"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

/// A key of a map body (`{"kvlistValue": {"values": [...]}}`).
fn attr_in<'a>(body: &'a Value, key: &str) -> &'a Value {
    kv(&body["kvlistValue"], key).unwrap_or_else(|| panic!("no {key} in {body}"))
}

#[test]
fn a_poison_record_is_skipped_and_counted() {
    let broker = Broker::start();
    broker.create_topic("mixed", 1);
    let address = broker.address();
    let produce = |kind: &str, start: &str, count: &str| {
        kafka_client(&[
            "produce", "--broker", &address, "--topic", "mixed", "--kind", kind, "--start", start,
            "--count", count,
        ])
    };
    produce("traces", "0", "5");
    produce("garbage", "5", "1");
    produce("traces", "6", "5");
    let group = group("poison");
    let mut reader = Agent::start(|ports, dir| {
        let out = Value::String(dir.join("out.json").display().to_string());
        format!(
            r#"receivers:
  kafka:
    brokers: [{address}]
    group_id: {group}
    initial_offset: earliest
    traces: {{topics: [mixed]}}
exporters:
  file: {{path: {out}, flush_interval: 100ms}}
{tail}"#,
            tail = service_tail(
                ports,
                "    traces: {receivers: [kafka], exporters: [file]}\n"
            ),
        )
    });
    let path = reader.dir.path().join("out.json");
    let spans = wait_for_items(&reader, &path, Signal::Traces, 10);
    assert_eq!(spans.len(), 10);
    own_metrics::wait_for(
        reader.ports.metrics,
        Duration::from_secs(10),
        &[(
            "otelcol_kafka_receiver_unmarshal_failed_spans",
            &[
                ("receiver", "kafka"),
                ("topic", "mixed"),
                ("partition", "0"),
            ],
            1.0,
        )],
        || reader.log(),
    );
    let log = reader.log();
    assert!(
        log.contains("failed to unmarshal message") && log.contains("offset=5"),
        "the poison record is logged with its offset:\n{log}"
    );
    assert!(reader.stop().success(), "{}", reader.log());
    // Its offset was committed past: the group does not read it again.
    let offsets = committed(&broker, &group, "mixed", 1);
    assert_eq!(offsets.get(&0), Some(&11), "{offsets:?}");
}

#[test]
fn a_consumer_killed_mid_stream_resumes_from_its_last_commit() {
    let broker = Broker::start();
    broker.create_topic("stream", 3);
    let address = broker.address();
    // A backend slower than the stream (200 ms a request, ten at a time) keeps records
    // waiting in the exporter's queue: committing before delivery would lose them at the kill.
    let sink = Sink::start(1, 0, &["--delay-ms", "200"]);
    let port = sink.grpc_port();
    let group = group("killed");
    let total = 300u64;
    let producer = Producer::start(&[
        "--broker",
        &address,
        "--topic",
        "stream",
        "--kind",
        "traces",
        "--count",
        &total.to_string(),
        "--partitions",
        "3",
        "--rate",
        "100",
    ]);
    let config = |ports: &Ports, _: &Path| consumer_config(ports, &address, "stream", &group, port);
    let first = Agent::start(config);
    sink.wait_until(
        "the first consumer delivers part of the stream",
        WAIT,
        |s| span_counts(s, port).len() >= 60,
        || first.log(),
    );
    harness_kill(&first);
    let before_kill = span_counts(&sink, port);
    let commits = committed(&broker, &group, "stream", 3);
    assert!(
        commits.values().any(|o| *o > 0),
        "something was committed before the kill: {commits:?}"
    );
    let second = Agent::start(config);
    let placed = producer.finish();
    assert_eq!(placed.len() as u64, total);
    sink.wait_until(
        "every record arrives after the restart",
        WAIT,
        |s| span_counts(s, port).len() as u64 >= total,
        || second.log(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let counts = span_counts(&sink, port);
    let mut duplicates = 0;
    for (i, (partition, offset)) in &placed {
        let n = counts.get(i).copied().unwrap_or(0);
        assert!(
            n >= 1,
            "record {i} (partition {partition} offset {offset}) lost"
        );
        let commit = commits.get(partition).copied().unwrap_or(-1);
        if *offset < commit {
            assert_eq!(
                n, 1,
                "record {i} at offset {offset} < committed {commit} of partition {partition} was read again"
            );
            assert!(
                before_kill.contains_key(i),
                "committed before it was delivered: {i}"
            );
        } else if n > 1 {
            duplicates += 1;
        }
    }
    eprintln!(
        "killed after {} records delivered; committed {commits:?}; {duplicates} read twice",
        before_kill.len()
    );
    assert!(duplicates <= before_kill.len(), "{duplicates} duplicates");
    drop(second);
}

/// SIGKILL: no shutdown, no last commit.
fn harness_kill(agent: &Agent) {
    let status = Command::new("kill")
        .args(["-KILL", &agent.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn two_consumers_split_the_partitions_and_one_takes_over() {
    let broker = Broker::start();
    broker.create_topic("shared", 4);
    let address = broker.address();
    let sink = Sink::start(2, 0, &[]);
    let (port_a, port_b) = (sink.grpc_ports[0], sink.grpc_ports[1]);
    let group = group("pair");
    let total = 800u64;
    let producer = Producer::start(&[
        "--broker",
        &address,
        "--topic",
        "shared",
        "--kind",
        "traces",
        "--count",
        &total.to_string(),
        "--partitions",
        "4",
        "--rate",
        "80",
    ]);
    // The strategy docs/scaling.md recommends for gateways: partitions move one by one.
    let config = |ports: &Ports, port: u16| {
        let c = consumer_config(ports, &address, "shared", &group, port).replace(
            "    initial_offset: earliest\n",
            "    initial_offset: earliest\n    group_rebalance_strategies: [cooperative-sticky]\n",
        );
        assert!(c.contains("cooperative-sticky"));
        c
    };
    let mut a = Agent::start(|ports: &Ports, _: &Path| config(ports, port_a));
    let b = Agent::start(|ports: &Ports, _: &Path| config(ports, port_b));
    // Both members get partitions and deliver.
    sink.wait_until(
        "both consumers deliver",
        WAIT,
        |s| span_counts(s, port_a).len() >= 20 && span_counts(s, port_b).len() >= 20,
        || format!("{}\n---\n{}", a.log(), b.log()),
    );
    let a_before = span_counts(&sink, port_a).len();
    let b_before = span_counts(&sink, port_b).len();
    assert!(a.stop().success(), "{}", a.log());
    let placed = producer.finish();
    sink.wait_until(
        "the remaining consumer reads everything",
        WAIT,
        |s| {
            let mut all = span_counts(s, port_a);
            for (i, n) in span_counts(s, port_b) {
                *all.entry(i).or_default() += n;
            }
            all.len() as u64 >= total
        },
        || b.log(),
    );
    let after_a = span_counts(&sink, port_a);
    let after_b = span_counts(&sink, port_b);
    for i in placed.keys() {
        assert!(
            after_a.contains_key(i) || after_b.contains_key(i),
            "record {i} lost"
        );
    }
    // After the stop the survivor read every partition, the ones it took over included.
    let partitions: std::collections::BTreeSet<i32> = after_b
        .keys()
        .filter(|i| !after_a.contains_key(i))
        .map(|i| placed[i].0)
        .collect();
    eprintln!("before the stop: {a_before} and {b_before} records; the survivor read partitions {partitions:?} afterwards");
    assert_eq!(partitions.len(), 4, "{partitions:?}");
    assert!(a_before > 0 && b_before > 0);
    drop(b);
}

#[test]
fn a_backend_slower_than_the_topic_pauses_reading_and_loses_nothing() {
    let broker = Broker::start();
    broker.create_topic("backlog", 2);
    let address = broker.address();
    let placed = deliveries(&kafka_client(&[
        "produce",
        "--broker",
        &address,
        "--topic",
        "backlog",
        "--kind",
        "traces",
        "--count",
        "40",
        "--partitions",
        "2",
    ]));
    // 100 ms a request, one at a time, and room for two batches in the queue: the exporter
    // refuses most records when they come, so the receiver must pause and retry them.
    let sink = Sink::start(1, 0, &["--delay-ms", "100"]);
    let port = sink.grpc_port();
    let group = group("slow");
    let reader = Agent::start(|ports: &Ports, _: &Path| {
        consumer_config(ports, &address, "backlog", &group, port).replace(
            "    tls: {insecure: true}\n",
            "    tls: {insecure: true}\n    sending_queue: {queue_size: 2, num_consumers: 1}\n",
        )
    });
    sink.wait_until(
        "every record arrives",
        WAIT,
        |s| span_counts(s, port).len() >= placed.len(),
        || reader.log(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let counts = span_counts(&sink, port);
    for i in placed.keys() {
        assert_eq!(counts.get(i), Some(&1), "record {i}: {counts:?}");
    }
    let metrics = own_metrics::scrape(reader.ports.metrics);
    assert!(
        own_metrics::count(
            &metrics,
            "otelcol_exporter_enqueue_failed_spans",
            &[("exporter", "otlp")]
        ) > 0.0,
        "the queue did refuse records:\n{metrics}"
    );
    assert!(
        reader.log().contains("retrying it with reading paused"),
        "{}",
        reader.log()
    );
}
