#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "kafka")]

//! The kafka exporter against a real broker (tansu, a Kafka-compatible broker, with sqlite
//! storage on 127.0.0.1): what is exported arrives in the signal's topic and decodes to what
//! was sent; traces are keyed by trace ID; raw log bodies; delivery once a stopped broker is
//! back. `./scripts/test` installs tansu; `FERROTEL_TANSU` may name the binary.

mod common;
#[path = "../../tests/support/tansu.rs"]
mod tansu;

use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::Message;

use ferrotel_exporters::kafka::KafkaExporterFactory;
use ferrotel_pipeline::pdata::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
};

use tansu::{Broker, WAIT};

/// One record as read: key, value, headers.
type Read = (Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>);

/// Reads `count` records from `topic` from the start, with a fresh consumer group.
async fn read(broker: &str, topic: &str, count: usize) -> Vec<Read> {
    static GROUP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let group = format!(
        "test-{}-{}",
        std::process::id(),
        GROUP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while out.len() < count {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{topic}: {} of {count} records in time", out.len()))
            .unwrap();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((
            message.key().map(<[u8]>::to_vec),
            message.payload().unwrap_or_default().to_vec(),
            headers,
        ));
    }
    out
}

fn config(broker: &str, extra: &str) -> String {
    format!(
        "brokers: [{broker}]\nretry_on_failure:\n  initial_interval: 100ms\n  max_interval: 500ms\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signal_arrives_in_its_topic_in_both_encodings() {
    let broker = Broker::start();
    broker.create_topics(&["otlp_spans", "otlp_metrics", "otlp_logs", "json_spans"]);
    let address = broker.address();
    let exporter = common::start(&KafkaExporterFactory, "kafka", &config(&address, "")).await;
    let sent = [common::traces(3), common::metrics(4), common::logs(5)];
    for payload in &sent {
        exporter.consume(payload.clone()).await.unwrap();
    }
    let traces = read(&address, "otlp_spans", 1).await;
    let decoded = ExportTraceServiceRequest::decode(&traces[0].1[..]).unwrap();
    assert_eq!(ferrotel_pipeline::pdata::Payload::from(decoded), sent[0]);
    let metrics = read(&address, "otlp_metrics", 1).await;
    let decoded = ExportMetricsServiceRequest::decode(&metrics[0].1[..]).unwrap();
    assert_eq!(ferrotel_pipeline::pdata::Payload::from(decoded), sent[1]);
    let logs = read(&address, "otlp_logs", 1).await;
    let decoded = ExportLogsServiceRequest::decode(&logs[0].1[..]).unwrap();
    assert_eq!(ferrotel_pipeline::pdata::Payload::from(decoded), sent[2]);
    assert_eq!(exporter.metric("otelcol_exporter_sent_spans"), 3.0);
    exporter.stop().await;

    // otlp_json to another topic.
    let exporter = common::start(
        &KafkaExporterFactory,
        "kafka",
        &config(
            &address,
            "traces: {topic: json_spans, encoding: otlp_json}\n",
        ),
    )
    .await;
    exporter.consume(common::traces(2)).await.unwrap();
    let records = read(&address, "json_spans", 1).await;
    let text = String::from_utf8(records[0].1.clone()).unwrap();
    assert!(text.starts_with("{\"resourceSpans\":"), "{text}");
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_keyed_by_trace_id_and_raw_log_bodies() {
    let broker = Broker::start();
    broker.create_topics(&["otlp_spans", "raw_logs"]);
    let address = broker.address();
    let exporter = common::start(
        &KafkaExporterFactory,
        "kafka",
        &config(
            &address,
            "partition_traces_by_id: true\nlogs: {topic: raw_logs, encoding: raw}\n\
             signal_header: true\nrecord_headers: {env: test}\n",
        ),
    )
    .await;
    exporter.consume(common::traces(3)).await.unwrap();
    exporter.consume(common::logs(2)).await.unwrap();
    let traces = read(&address, "otlp_spans", 1).await;
    assert_eq!(
        traces[0].0.as_deref(),
        Some(&b"01010101010101010101010101010101"[..])
    );
    let headers = &traces[0].2;
    assert!(
        headers.contains(&("env".to_string(), b"test".to_vec())),
        "{headers:?}"
    );
    assert!(
        headers.contains(&("otelcol.signal".to_string(), b"traces".to_vec())),
        "{headers:?}"
    );
    let logs = read(&address, "raw_logs", 2).await;
    for (_, body, _) in &logs {
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.starts_with('"') && text.ends_with('"'), "{text}");
    }
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_is_retried_until_it_is_back() {
    let mut broker = Broker::start();
    broker.create_topics(&["otlp_spans"]);
    let address = broker.address();
    let port = broker.port;
    let exporter = common::start(
        &KafkaExporterFactory,
        "kafka",
        &config(&address, "timeout: 1s\n"),
    )
    .await;
    broker.stop();
    // Queued and acknowledged to the pipeline; sent once the broker is back.
    exporter.consume(common::traces(4)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dir = std::mem::replace(&mut broker.dir, tempfile::tempdir().unwrap());
    let _again = Broker::start_on(port, dir);
    let traces = read(&address, "otlp_spans", 1).await;
    let decoded = ExportTraceServiceRequest::decode(&traces[0].1[..]).unwrap();
    assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 4);
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoded_batch_goes_out_as_it_came() {
    use ferrotel_pipeline::pdata::{Encoded, Payload, Signal};
    let broker = Broker::start();
    broker.create_topics(&["otlp_spans"]);
    let address = broker.address();
    let exporter = common::start(&KafkaExporterFactory, "kafka", &config(&address, "")).await;
    // Fields out of the usual order (scope spans before the resource): valid protobuf that
    // a decode and encode would reorder, so equal bytes mean the batch was not re-encoded.
    let Payload::Traces(traces) = common::traces(5) else {
        panic!("traces expected")
    };
    let rs = &traces.0.resource_spans[0];
    let mut inner = Vec::new();
    for ss in &rs.scope_spans {
        prost::encoding::message::encode(2, ss, &mut inner);
    }
    if let Some(resource) = &rs.resource {
        prost::encoding::message::encode(1, resource, &mut inner);
    }
    let mut bytes = Vec::new();
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut bytes);
    prost::encoding::encode_varint(inner.len() as u64, &mut bytes);
    bytes.extend(inner);
    let reencoded = ExportTraceServiceRequest::decode(&bytes[..])
        .unwrap()
        .encode_to_vec();
    assert_ne!(reencoded, bytes);
    let encoded = Encoded::parse(Signal::Traces, bytes.clone().into()).unwrap();
    exporter.consume(Payload::Encoded(encoded)).await.unwrap();
    let records = read(&address, "otlp_spans", 1).await;
    assert_eq!(
        records[0].1, bytes,
        "the record holds the batch's own bytes"
    );
    exporter.stop().await;
}
