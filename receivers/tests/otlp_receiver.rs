//! The `otlp` receiver over real loopback sockets: HTTP (protobuf and JSON) and gRPC, with a
//! consumer that records what it gets and answers as each test tells it to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::Code;

use ferrotel_pipeline::component::{
    Accepted, Component, ConsumeError, ConsumeResult, Consumer, CreateSettings, Envelope, Host,
    ServiceStatus, SignalConsumers,
};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{Factory, ReceiverFactory};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::logs::{LogRecord, ResourceLogs, ScopeLogs};
use ferrotel_pipeline::pdata::metrics::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::trace::{ResourceSpans, ScopeSpans, Span};
use ferrotel_pipeline::pdata::{
    json, ExportLogsServiceRequest, ExportLogsServiceResponse, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse, ExportTraceServiceRequest, ExportTraceServiceResponse, Payload,
    Signal,
};
use ferrotel_pipeline::rpc;
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_receivers::otlp::OtlpReceiverFactory;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

/// Upper bound on every network wait.
const WAIT: Duration = Duration::from_secs(15);
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const MIB: usize = 1024 * 1024;

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(WAIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Test consumer and harness

/// Records every envelope; answers `Ok(Accepted::default())` unless told otherwise.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<Envelope>>,
    answer: Mutex<Option<ConsumeResult>>,
    /// Takes batches still encoded, as a pipeline of only pass-through stages does.
    encoded: AtomicBool,
}

impl Recorder {
    fn answer(&self, result: ConsumeResult) {
        *self.answer.lock().unwrap() = Some(result);
    }

    fn take(&self) -> Vec<Envelope> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

#[async_trait]
impl Consumer for Recorder {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.got.lock().unwrap().push(envelope);
        self.answer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| Ok(Accepted::default()))
    }

    fn accepts_encoded(&self) -> bool {
        self.encoded.load(Ordering::Relaxed)
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// `key: value` lines added under a protocol, indented to sit inside it.
fn indent(extra: &str) -> String {
    extra
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
}

struct Receiver {
    component: Arc<dyn Component>,
    telemetry: Arc<Telemetry>,
    traces: Arc<Recorder>,
    metrics: Arc<Recorder>,
    logs: Arc<Recorder>,
    http_port: u16,
    grpc_port: u16,
    _status: watch::Sender<ServiceStatus>,
}

struct Options<'a> {
    http: Option<&'a str>,
    grpc: Option<&'a str>,
    signals: &'a [Signal],
}

const ALL: &[Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            http: Some(""),
            grpc: Some(""),
            signals: ALL,
        }
    }
}

async fn start(options: Options<'_>) -> Receiver {
    let http_port = free_port();
    let grpc_port = free_port();
    let mut yaml = String::from("protocols:\n");
    if let Some(extra) = options.http {
        yaml.push_str(&format!(
            "  http:\n    endpoint: 127.0.0.1:{http_port}\n{}",
            indent(extra)
        ));
    }
    if let Some(extra) = options.grpc {
        yaml.push_str(&format!(
            "  grpc:\n    endpoint: 127.0.0.1:{grpc_port}\n{}",
            indent(extra)
        ));
    }
    let factory = OtlpReceiverFactory;
    let config = factory
        .decode(&Value::from_yaml_str(&yaml).unwrap())
        .unwrap_or_else(|e| panic!("config {yaml}: {e:?}"));
    let telemetry = Telemetry::for_tests();
    let (traces, metrics, logs) = (
        Arc::new(Recorder::default()),
        Arc::new(Recorder::default()),
        Arc::new(Recorder::default()),
    );
    let mut consumers = SignalConsumers::default();
    for signal in options.signals {
        let consumer: Arc<dyn Consumer> = match signal {
            Signal::Traces => traces.clone(),
            Signal::Metrics => metrics.clone(),
            Signal::Logs => logs.clone(),
        };
        consumers.set(*signal, consumer);
    }
    let component = factory
        .create(
            CreateSettings {
                id: ComponentId::new("otlp", None),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
            consumers,
        )
        .unwrap();
    let (status_tx, status_rx) = watch::channel(ServiceStatus::Starting);
    let host = Host {
        telemetry: telemetry.clone(),
        status: status_rx,
    };
    within("start", component.start(&host)).await.unwrap();
    Receiver {
        component,
        telemetry,
        traces,
        metrics,
        logs,
        http_port,
        grpc_port,
        _status: status_tx,
    }
}

impl Receiver {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    async fn channel(&self) -> Channel {
        within(
            "gRPC connect",
            Channel::from_shared(format!("http://127.0.0.1:{}", self.grpc_port))
                .unwrap()
                .connect_timeout(WAIT)
                .timeout(WAIT)
                .connect(),
        )
        .await
        .unwrap()
    }

    async fn stop(&self) {
        within("shutdown", self.component.shutdown()).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client helpers

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body {:?}: {e}", self.body))
    }

    fn status_proto(&self) -> rpc::Status {
        rpc::Status::decode(&self.body[..]).unwrap()
    }
}

async fn send(request: Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = within("HTTP request", client.request(request))
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = within("HTTP body", body.collect())
        .await
        .unwrap()
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

fn post(url: &str, content_type: &str) -> http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("content-type", content_type)
}

async fn post_body(url: &str, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let body = body.into();
    send(post(url, content_type).body(Full::new(body)).unwrap()).await
}

/// What a raw HTTP/1.1 exchange produced: the response text read until the server closed
/// (or the wait ended), and how many body bytes had been written when it first answered.
struct RawExchange {
    response: String,
    written_when_answered: u64,
}

impl RawExchange {
    fn status(&self) -> u16 {
        self.response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", self.response))
    }
}

/// Writes `head`, then `chunks` with `pause` between them, while reading the answer; stops
/// writing as soon as an answer arrived or the server stopped reading.
async fn raw_exchange(
    port: u16,
    head: String,
    chunks: impl Iterator<Item = Vec<u8>>,
    pause: Duration,
) -> RawExchange {
    let stream = within(
        "raw connect",
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let answered = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let written_when_answered = Arc::new(AtomicU64::new(u64::MAX));
    let reader = {
        let answered = answered.clone();
        let written = written.clone();
        let at = written_when_answered.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match tokio::time::timeout(WAIT, rd.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => {
                        if !answered.swap(true, Ordering::SeqCst) {
                            at.store(written.load(Ordering::SeqCst), Ordering::SeqCst);
                        }
                        out.extend_from_slice(&buf[..n]);
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let deadline = Instant::now() + WAIT;
    if wr.write_all(head.as_bytes()).await.is_ok() {
        for chunk in chunks {
            if answered.load(Ordering::SeqCst) || Instant::now() > deadline {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(2), wr.write_all(&chunk)).await {
                Ok(Ok(())) => {
                    written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                // Reset, or the server stopped reading and the buffers are full.
                _ => break,
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }
    let response = within("raw response", reader).await.unwrap();
    drop(wr);
    RawExchange {
        response,
        written_when_answered: written_when_answered.load(Ordering::SeqCst),
    }
}

fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Test data

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    })
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: s(value),
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", "checkout"), kv("host.name", "node-1")],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "ferrotel.test".into(),
        version: "1.2.3".into(),
        ..Default::default()
    })
}

/// Three spans in one resource, one scope.
fn traces() -> ExportTraceServiceRequest {
    let span = |i: u8| Span {
        trace_id: vec![
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, i,
        ],
        span_id: vec![0xeb, 0x9b, 0x12, 0x5c, 0x2f, 0x1a, 0x00, i],
        name: format!("GET /item/{i}"),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i),
        end_time_unix_nano: 1_700_000_000_500_000_000 + u64::from(i),
        attributes: vec![
            kv("http.method", "GET"),
            KeyValue {
                key: "http.status_code".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(200)),
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: vec![span(1), span(2), span(3)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A gauge with two points and a monotonic sum with one: three data points.
fn metrics() -> ExportMetricsServiceRequest {
    let point = |value: number_data_point::Value, core: &str| NumberDataPoint {
        attributes: vec![kv("cpu", core)],
        start_time_unix_nano: 1_700_000_000_000_000_000,
        time_unix_nano: 1_700_000_010_000_000_000,
        value: Some(value),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    Metric {
                        name: "system.cpu.utilization".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![
                                point(number_data_point::Value::AsDouble(0.25), "0"),
                                point(number_data_point::Value::AsDouble(0.75), "1"),
                            ],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.requests".into(),
                        unit: "{request}".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![point(number_data_point::Value::AsInt(42), "0")],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Two log records.
fn logs() -> ExportLogsServiceRequest {
    let record = |i: u64, text: &str| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        observed_time_unix_nano: 1_700_000_000_100_000_000 + i,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: s(text),
        attributes: vec![kv("log.file.name", "app.log")],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![record(1, "first line"), record(2, "second line")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The only envelope a recorder got, checked to come from a loopback client.
fn single(recorder: &Recorder) -> Envelope {
    let mut got = recorder.take();
    assert_eq!(got.len(), 1, "expected exactly one batch, got {got:?}");
    let envelope = got.remove(0);
    let addr: SocketAddr = envelope.client.as_ref().unwrap().addr.unwrap();
    assert!(addr.ip().is_loopback(), "client address {addr}");
    envelope
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[tokio::test]
async fn http_protobuf_requests_reach_the_consumer_and_get_protobuf_answers() {
    let r = start(Options::default()).await;

    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), PROTOBUF);
    assert_eq!(
        ExportTraceServiceResponse::decode(&reply.body[..]).unwrap(),
        ExportTraceServiceResponse::default()
    );
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));

    let reply = post_body(&r.url("/v1/metrics"), PROTOBUF, metrics().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), PROTOBUF);
    assert_eq!(
        ExportMetricsServiceResponse::decode(&reply.body[..]).unwrap(),
        ExportMetricsServiceResponse::default()
    );
    assert_eq!(*single(&r.metrics).payload, Payload::from(metrics()));

    let reply = post_body(&r.url("/v1/logs"), PROTOBUF, logs().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), PROTOBUF);
    assert_eq!(
        ExportLogsServiceResponse::decode(&reply.body[..]).unwrap(),
        ExportLogsServiceResponse::default()
    );
    assert_eq!(*single(&r.logs).payload, Payload::from(logs()));

    // Each signal went to its own consumer only.
    assert!(r.traces.take().is_empty() && r.metrics.take().is_empty() && r.logs.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_json_requests_reach_the_consumer_and_get_json_answers() {
    let r = start(Options::default()).await;

    let reply = post_body(&r.url("/v1/traces"), JSON, json::encode_traces(&traces())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), JSON);
    assert_eq!(reply.json(), serde_json::json!({}));
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));

    let reply = post_body(
        &r.url("/v1/metrics"),
        JSON,
        json::encode_metrics(&metrics()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), JSON);
    assert_eq!(reply.json(), serde_json::json!({}));
    assert_eq!(*single(&r.metrics).payload, Payload::from(metrics()));

    let reply = post_body(&r.url("/v1/logs"), JSON, json::encode_logs(&logs())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), JSON);
    assert_eq!(reply.json(), serde_json::json!({}));
    assert_eq!(*single(&r.logs).payload, Payload::from(logs()));
    r.stop().await;
}

#[tokio::test]
async fn http_json_as_sdks_write_it_is_decoded() {
    let r = start(Options::default()).await;
    // Hex IDs, lowerCamelCase keys, an int enum and an int64 as a decimal string.
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
        "scopeSpans":[{"scope":{"name":"ferrotel.test"},"spans":[{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eb9b125c2f1a0001",
        "name":"GET /item","kind":2,"startTimeUnixNano":"1700000000000000000",
        "endTimeUnixNano":"1700000000500000000",
        "attributes":[{"key":"http.status_code","value":{"intValue":"200"}}]}]}]}]}"#;
    let reply = post_body(&r.url("/v1/traces"), JSON, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let Payload::Traces(got) = single(&r.traces).into_payload() else {
        panic!("not traces")
    };
    let rs = &got.0.resource_spans[0];
    assert_eq!(
        rs.resource.as_ref().unwrap().attributes[0],
        kv("service.name", "checkout")
    );
    let span = &rs.scope_spans[0].spans[0];
    assert_eq!(
        span.trace_id,
        vec![
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ]
    );
    assert_eq!(
        span.span_id,
        vec![0xeb, 0x9b, 0x12, 0x5c, 0x2f, 0x1a, 0x00, 0x01]
    );
    assert_eq!(span.name, "GET /item");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_500_000_000);
    assert_eq!(
        span.attributes[0].value,
        Some(AnyValue {
            value: Some(any_value::Value::IntValue(200))
        })
    );
    r.stop().await;
}

#[tokio::test]
async fn http_content_type_parameters_are_ignored() {
    let r = start(Options::default()).await;
    let reply = post_body(
        &r.url("/v1/traces"),
        "application/json; charset=utf-8",
        json::encode_traces(&traces()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), JSON);
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));

    let reply = post_body(
        &r.url("/v1/traces"),
        "application/x-protobuf; charset=utf-8",
        traces().encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), PROTOBUF);
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));
    r.stop().await;
}

#[tokio::test]
async fn http_other_content_types_are_415() {
    let r = start(Options::default()).await;
    let expected =
        "415 unsupported media type, supported: [application/json, application/x-protobuf]";
    for content_type in ["text/plain", "application/grpc", "application/protobuf"] {
        let reply = post_body(&r.url("/v1/traces"), content_type, traces().encode_to_vec()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        assert_eq!(reply.text(), expected);
    }
    // No Content-Type at all.
    let reply = send(
        Request::builder()
            .method(Method::POST)
            .uri(r.url("/v1/logs"))
            .body(Full::new(Bytes::from(logs().encode_to_vec())))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.text(), expected);
    assert!(r.traces.take().is_empty() && r.logs.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_methods_other_than_post_are_405() {
    let r = start(Options::default()).await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let reply = send(
            Request::builder()
                .method(method.clone())
                .uri(r.url("/v1/traces"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_unknown_paths_are_404() {
    // Metrics have no consumer, so their path is not served either.
    let r = start(Options {
        signals: &[Signal::Traces, Signal::Logs],
        ..Default::default()
    })
    .await;
    for path in [
        "/",
        "/v1/trace",
        "/v1/traces/extra",
        "/v2/traces",
        "/v1/metrics",
    ] {
        let reply = post_body(&r.url(path), PROTOBUF, traces().encode_to_vec()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_custom_traces_url_path() {
    let r = start(Options {
        http: Some("traces_url_path: /custom/spans"),
        grpc: None,
        ..Default::default()
    })
    .await;
    let reply = post_body(&r.url("/custom/spans"), PROTOBUF, traces().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));
    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // The other signals keep their defaults.
    let reply = post_body(&r.url("/v1/logs"), PROTOBUF, logs().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(*single(&r.logs).payload, Payload::from(logs()));
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_undecodable_protobuf_is_400_with_a_protobuf_status() {
    let r = start(Options::default()).await;
    // Field 1 (resource_spans) claims 100 bytes but none follow.
    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, vec![0x0a, 0x64, 0x01]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.content_type(), PROTOBUF);
    let status = reply.status_proto();
    assert_eq!(status.code, 3);
    assert!(!status.message.is_empty());
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_undecodable_json_is_400_with_a_json_status() {
    let r = start(Options::default()).await;
    for body in [&b"{\"resourceSpans\": ["[..], b"not json", b"[1,2,3]"] {
        let reply = post_body(&r.url("/v1/traces"), JSON, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(reply.content_type(), JSON);
        let status = reply.json();
        assert_eq!(status["code"], 3, "{status}");
        assert!(status["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_compressed_bodies_are_accepted() {
    let r = start(Options::default()).await;
    let raw = traces().encode_to_vec();
    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    framed.write_all(&raw).unwrap();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("gzip", gzip(&raw)),
        ("zstd", zstd::encode_all(&raw[..], 3).unwrap()),
        ("deflate", zlib(&raw)),
        ("zlib", zlib(&raw)),
        (
            "snappy",
            snap::raw::Encoder::new().compress_vec(&raw).unwrap(),
        ),
        ("x-snappy-framed", framed.into_inner().unwrap()),
        ("identity", raw.clone()),
    ];
    for (encoding, body) in bodies {
        let reply = send(
            post(&r.url("/v1/traces"), PROTOBUF)
                .header("content-encoding", encoding)
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{encoding}: {:?}", reply.body);
        assert_eq!(
            *single(&r.traces).payload,
            Payload::from(traces()),
            "{encoding}"
        );
    }
    // A compressed JSON body too.
    let reply = send(
        post(&r.url("/v1/logs"), JSON)
            .header("content-encoding", "gzip")
            .body(Full::new(Bytes::from(gzip(&json::encode_logs(&logs())))))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), JSON);
    assert_eq!(*single(&r.logs).payload, Payload::from(logs()));
    r.stop().await;
}

#[tokio::test]
async fn http_unknown_or_corrupt_content_encoding_is_400() {
    let r = start(Options::default()).await;
    let raw = traces().encode_to_vec();
    for (encoding, body) in [
        ("br", raw.clone()),
        ("compress", raw.clone()),
        ("gzip", raw),
    ] {
        let reply = send(
            post(&r.url("/v1/traces"), PROTOBUF)
                .header("content-encoding", encoding)
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{encoding}");
        assert_eq!(reply.status_proto().code, 3, "{encoding}");
    }
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_declared_oversize_body_is_413_before_reading_it() {
    let r = start(Options {
        http: Some("max_request_body_size: 1048576"),
        grpc: None,
        ..Default::default()
    })
    .await;
    // Only the head is sent: the answer must not wait for a body that never comes.
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {}\r\n\r\n",
        MIB + 1
    );
    let started = Instant::now();
    let exchange = raw_exchange(r.http_port, head, std::iter::empty(), Duration::ZERO).await;
    assert_eq!(exchange.status(), 413, "{}", exchange.response);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Exactly at the limit is fine (the bytes are not valid OTLP, hence 400, not 413).
    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, vec![0xffu8; MIB]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_chunked_body_over_the_limit_is_413() {
    let r = start(Options {
        http: Some("max_request_body_size: 1048576"),
        grpc: None,
        ..Default::default()
    })
    .await;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    // Two MiB in 64 KiB chunks, then the terminating chunk.
    let chunks = (0..32)
        .map(|_| chunked(&[0x55u8; 64 * 1024]))
        .chain(std::iter::once(b"0\r\n\r\n".to_vec()));
    let exchange = raw_exchange(r.http_port, head, chunks, Duration::ZERO).await;
    assert_eq!(exchange.status(), 413, "{}", exchange.response);
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_huge_streamed_body_is_refused_early() {
    let r = start(Options {
        http: Some("max_request_body_size: 1048576"),
        grpc: None,
        ..Default::default()
    })
    .await;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    // Up to 100 MiB, 64 KiB at a time with a short pause: the answer must come long before.
    let total = 100 * MIB;
    let chunk = chunked(&[0x55u8; 64 * 1024]);
    let chunks = (0..total / (64 * 1024)).map(move |_| chunk.clone());
    let exchange = raw_exchange(r.http_port, head, chunks, Duration::from_millis(1)).await;
    assert_eq!(exchange.status(), 413, "{}", exchange.response);
    assert!(
        exchange.written_when_answered < 16 * MIB as u64,
        "answered only after {} bytes",
        exchange.written_when_answered
    );
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_gzip_bomb_is_413() {
    let r = start(Options {
        http: Some("max_request_body_size: 1048576"),
        grpc: None,
        ..Default::default()
    })
    .await;
    // 64 MiB of zeros shrink to well under the limit.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; 64 * MIB]).unwrap();
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < MIB / 4, "bomb is {} bytes", bomb.len());
    for content_type in [PROTOBUF, JSON] {
        let reply = send(
            post(&r.url("/v1/traces"), content_type)
                .header("content-encoding", "gzip")
                .body(Full::new(Bytes::from(bomb.clone())))
                .unwrap(),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{content_type}"
        );
        assert_eq!(reply.content_type(), content_type);
    }
    let zbomb = zstd::encode_all(&vec![0u8; 64 * MIB][..], 3).unwrap();
    let reply = send(
        post(&r.url("/v1/traces"), PROTOBUF)
            .header("content-encoding", "zstd")
            .body(Full::new(Bytes::from(zbomb)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.traces.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_empty_requests_succeed() {
    let r = start(Options::default()).await;
    for path in ["/v1/traces", "/v1/metrics", "/v1/logs"] {
        let reply = post_body(&r.url(path), JSON, "{}").await;
        assert_eq!(reply.status, StatusCode::OK, "{path} JSON");
        assert_eq!(reply.content_type(), JSON);
        assert_eq!(reply.json(), serde_json::json!({}));
        let reply = post_body(&r.url(path), PROTOBUF, Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path} protobuf");
        assert_eq!(reply.content_type(), PROTOBUF);
        assert!(reply.body.is_empty());
    }
    // Nothing to deliver, so the pipelines are not bothered.
    assert!(r.traces.take().is_empty() && r.metrics.take().is_empty() && r.logs.take().is_empty());
    r.stop().await;
}

#[tokio::test]
async fn http_consumer_refusals_map_to_status_codes() {
    let r = start(Options::default()).await;
    let cases = [
        (ConsumeError::unavailable("queue is full"), 503, 14),
        (
            ConsumeError::resource_exhausted("memory limit", Duration::from_secs(3)),
            429,
            8,
        ),
        (ConsumeError::permanent("exporter misconfigured"), 500, 13),
        (ConsumeError::invalid("bad data"), 400, 3),
    ];
    for (error, http_status, grpc_code) in cases {
        r.traces.answer(Err(error.clone()));
        let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces().encode_to_vec()).await;
        assert_eq!(reply.status.as_u16(), http_status, "{error:?}");
        assert_eq!(reply.content_type(), PROTOBUF);
        let status = reply.status_proto();
        assert_eq!(status.code, grpc_code);
        assert_eq!(status.message, error.message);
        if http_status == 429 {
            assert_eq!(reply.header("retry-after"), Some("3"));
            assert_eq!(status.details.len(), 1);
            assert_eq!(status.details[0].type_url, rpc::RETRY_INFO_TYPE);
            let info = rpc::RetryInfo::decode(&status.details[0].value[..]).unwrap();
            assert_eq!(info.retry_delay.unwrap().seconds, 3);
        } else {
            assert_eq!(reply.header("retry-after"), None, "{error:?}");
        }
        // The data did reach the consumer before it refused.
        assert_eq!(*single(&r.traces).payload, Payload::from(traces()));

        let reply = post_body(&r.url("/v1/traces"), JSON, json::encode_traces(&traces())).await;
        assert_eq!(reply.status.as_u16(), http_status, "{error:?} JSON");
        assert_eq!(reply.content_type(), JSON);
        assert_eq!(
            reply.json(),
            serde_json::json!({"code": grpc_code, "message": error.message})
        );
        if http_status == 429 {
            assert_eq!(reply.header("retry-after"), Some("3"));
        }
        r.traces.take();
    }
    r.stop().await;
}

#[tokio::test]
async fn http_partial_success_is_200_with_the_rejected_count() {
    let r = start(Options::default()).await;
    r.traces.answer(Ok(Accepted {
        rejected_items: 2,
        message: "2 spans dropped".into(),
    }));
    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(&reply.body[..])
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, "2 spans dropped");

    let reply = post_body(&r.url("/v1/traces"), JSON, json::encode_traces(&traces())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), JSON);
    let body = reply.json();
    // int64 is a decimal string in OTLP/JSON.
    assert_eq!(
        body,
        serde_json::json!({"partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 spans dropped"}})
    );

    r.metrics.answer(Ok(Accepted {
        rejected_items: 1,
        message: "one point dropped".into(),
    }));
    let reply = post_body(&r.url("/v1/metrics"), PROTOBUF, metrics().encode_to_vec()).await;
    let partial = ExportMetricsServiceResponse::decode(&reply.body[..])
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_data_points, 1);

    r.logs.answer(Ok(Accepted {
        rejected_items: 2,
        message: "both dropped".into(),
    }));
    let reply = post_body(&r.url("/v1/logs"), PROTOBUF, logs().encode_to_vec()).await;
    let partial = ExportLogsServiceResponse::decode(&reply.body[..])
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_log_records, 2);
    assert_eq!(partial.error_message, "both dropped");
    r.stop().await;
}

#[tokio::test]
async fn http_cors_preflight_and_allow_origin() {
    let r = start(Options {
        http: Some(
            "cors:\n  allowed_origins: [\"https://app.example.com\", \"https://*.test.example\"]\n  allowed_headers: [\"X-Tenant\"]\n  max_age: 600",
        ),
        grpc: None,
        ..Default::default()
    })
    .await;
    let preflight = |origin: &str, headers: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(r.url("/v1/traces"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", headers)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };

    let reply = send(preflight(
        "https://app.example.com",
        "content-type, x-tenant",
    ))
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(reply.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed = reply
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("content-type") && allowed.contains("x-tenant"),
        "{allowed}"
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));

    // A wildcard pattern.
    let reply = send(preflight("https://eu.test.example", "content-type")).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://eu.test.example")
    );

    // An origin not on the list gets no CORS headers.
    let reply = send(preflight("https://evil.example.org", "content-type")).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("access-control-allow-methods"), None);

    // A header not on the list fails the preflight.
    let reply = send(preflight("https://app.example.com", "x-secret")).await;
    assert_eq!(reply.header("access-control-allow-methods"), None);

    // The actual request carries Access-Control-Allow-Origin for an allowed origin only.
    let reply = send(
        post(&r.url("/v1/traces"), PROTOBUF)
            .header("origin", "https://app.example.com")
            .body(Full::new(Bytes::from(traces().encode_to_vec())))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let reply = send(
        post(&r.url("/v1/traces"), PROTOBUF)
            .header("origin", "https://evil.example.org")
            .body(Full::new(Bytes::from(traces().encode_to_vec())))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(r.traces.take().len(), 2);
    r.stop().await;
}

#[tokio::test]
async fn http_include_metadata_puts_headers_into_the_envelope() {
    let r = start(Options {
        http: Some("include_metadata: true"),
        grpc: Some("include_metadata: true"),
        ..Default::default()
    })
    .await;
    let reply = send(
        post(&r.url("/v1/traces"), PROTOBUF)
            .header("X-Tenant", "acme")
            .header("authorization", "Bearer abc")
            .body(Full::new(Bytes::from(traces().encode_to_vec())))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let envelope = single(&r.traces);
    let client = envelope.client.unwrap();
    assert_eq!(client.get("x-tenant").collect::<Vec<_>>(), vec!["acme"]);
    assert_eq!(
        client.get("authorization").collect::<Vec<_>>(),
        vec!["Bearer abc"]
    );
    assert_eq!(
        client.get("content-type").collect::<Vec<_>>(),
        vec![PROTOBUF]
    );

    // The same over gRPC.
    let mut request = tonic::Request::new(traces());
    request
        .metadata_mut()
        .insert("x-tenant", "globex".parse().unwrap());
    within(
        "gRPC export",
        TraceServiceClient::new(r.channel().await).export(request),
    )
    .await
    .unwrap();
    let client = single(&r.traces).client.unwrap();
    assert_eq!(client.get("x-tenant").collect::<Vec<_>>(), vec!["globex"]);
    r.stop().await;
}

#[tokio::test]
async fn http_without_include_metadata_keeps_headers_out() {
    let r = start(Options::default()).await;
    let reply = send(
        post(&r.url("/v1/traces"), PROTOBUF)
            .header("x-tenant", "acme")
            .body(Full::new(Bytes::from(traces().encode_to_vec())))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let client = single(&r.traces).client.unwrap();
    assert!(client.metadata.is_empty(), "{:?}", client.metadata);
    r.stop().await;
}

// ---------------------------------------------------------------------------------------------
// gRPC

#[tokio::test]
async fn grpc_exports_every_signal() {
    let r = start(Options::default()).await;
    let channel = r.channel().await;

    let response = within(
        "traces",
        TraceServiceClient::new(channel.clone()).export(traces()),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(response, ExportTraceServiceResponse::default());
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));

    let response = within(
        "metrics",
        MetricsServiceClient::new(channel.clone()).export(metrics()),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(response, ExportMetricsServiceResponse::default());
    assert_eq!(*single(&r.metrics).payload, Payload::from(metrics()));

    let response = within("logs", LogsServiceClient::new(channel).export(logs()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response, ExportLogsServiceResponse::default());
    assert_eq!(*single(&r.logs).payload, Payload::from(logs()));
    r.stop().await;
}

#[tokio::test]
async fn grpc_consumer_refusals_map_to_codes() {
    let r = start(Options {
        http: None,
        ..Default::default()
    })
    .await;
    let mut client = TraceServiceClient::new(r.channel().await);

    r.traces
        .answer(Err(ConsumeError::unavailable("queue is full")));
    let status = within("export", client.export(traces())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "queue is full");

    r.traces.answer(Err(ConsumeError::resource_exhausted(
        "memory limit",
        Duration::from_secs(3),
    )));
    let status = within("export", client.export(traces())).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "memory limit");
    let details = rpc::Status::decode(status.details()).unwrap();
    assert_eq!(details.code, 8);
    let retry = details
        .details
        .iter()
        .find(|any| any.type_url == "type.googleapis.com/google.rpc.RetryInfo")
        .expect("RetryInfo detail");
    let info = rpc::RetryInfo::decode(&retry.value[..]).unwrap();
    assert_eq!(
        info.retry_delay,
        Some(rpc::ProtoDuration {
            seconds: 3,
            nanos: 0
        })
    );

    r.traces.answer(Err(ConsumeError::invalid("bad data")));
    let status = within("export", client.export(traces())).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "bad data");

    r.traces.answer(Err(ConsumeError::permanent("broken")));
    let status = within("export", client.export(traces())).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);

    assert_eq!(r.traces.take().len(), 4);
    r.stop().await;
}

#[tokio::test]
async fn grpc_partial_success() {
    let r = start(Options {
        http: None,
        ..Default::default()
    })
    .await;
    r.traces.answer(Ok(Accepted {
        rejected_items: 2,
        message: "2 spans dropped".into(),
    }));
    let response = within(
        "export",
        TraceServiceClient::new(r.channel().await).export(traces()),
    )
    .await
    .unwrap()
    .into_inner();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, "2 spans dropped");
    r.stop().await;
}

#[tokio::test]
async fn grpc_message_over_max_recv_msg_size_is_refused_and_the_server_stays_up() {
    let r = start(Options {
        http: None,
        grpc: Some("max_recv_msg_size_mib: 1"),
        ..Default::default()
    })
    .await;
    let mut big = traces();
    big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(2 * MIB);
    let mut client = TraceServiceClient::new(r.channel().await);
    let status = within("oversize export", client.export(big))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(r.traces.take().is_empty());

    // The same connection and server still work.
    within("export", client.export(traces())).await.unwrap();
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));
    r.stop().await;
}

#[tokio::test]
async fn grpc_compressed_message_inflating_past_the_limit_is_refused() {
    let r = start(Options {
        http: None,
        grpc: Some("max_recv_msg_size_mib: 1"),
        ..Default::default()
    })
    .await;
    // 16 MiB of one letter gzip to a few KiB on the wire.
    let mut bomb = traces();
    bomb.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(16 * MIB);
    let mut client =
        TraceServiceClient::new(r.channel().await).send_compressed(CompressionEncoding::Gzip);
    let status = within("bomb export", client.export(bomb))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(r.traces.take().is_empty());
    within("export", client.export(traces())).await.unwrap();
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));
    r.stop().await;
}

#[tokio::test]
async fn grpc_compressed_requests_are_accepted() {
    let r = start(Options {
        http: None,
        ..Default::default()
    })
    .await;
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut client = TraceServiceClient::new(r.channel().await)
            .send_compressed(encoding)
            .accept_compressed(encoding);
        within("export", client.export(traces())).await.unwrap();
        assert_eq!(
            *single(&r.traces).payload,
            Payload::from(traces()),
            "{encoding:?}"
        );
    }
    r.stop().await;
}

#[tokio::test]
async fn grpc_signal_without_consumer_is_unimplemented() {
    let r = start(Options {
        http: None,
        signals: &[Signal::Traces],
        ..Default::default()
    })
    .await;
    let channel = r.channel().await;
    let status = within(
        "metrics",
        MetricsServiceClient::new(channel.clone()).export(metrics()),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let status = within(
        "logs",
        LogsServiceClient::new(channel.clone()).export(logs()),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    within("traces", TraceServiceClient::new(channel).export(traces()))
        .await
        .unwrap();
    assert_eq!(*single(&r.traces).payload, Payload::from(traces()));
    r.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Counters

/// The value of the one sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> u64 {
    let found: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in\n{text}");
    found[0].rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn counters_track_accepted_and_refused_items() {
    let r = start(Options::default()).await;
    let http = ["receiver=\"otlp\"", "transport=\"http\""];
    let grpc = ["receiver=\"otlp\"", "transport=\"grpc\""];

    // 3 accepted, twice.
    for _ in 0..2 {
        let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces().encode_to_vec()).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    // 3 refused.
    r.traces.answer(Err(ConsumeError::unavailable("full")));
    let reply = post_body(&r.url("/v1/traces"), JSON, json::encode_traces(&traces())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // 1 accepted and 2 refused.
    r.traces.answer(Ok(Accepted {
        rejected_items: 2,
        message: String::new(),
    }));
    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Undecodable: neither accepted nor refused.
    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, vec![0x0a, 0x64]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // Logs over gRPC: 2 refused.
    r.logs.answer(Err(ConsumeError::invalid("bad")));
    let status = within(
        "logs",
        LogsServiceClient::new(r.channel().await).export(logs()),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // Metrics over HTTP: 3 accepted.
    let reply = post_body(&r.url("/v1/metrics"), PROTOBUF, metrics().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);

    let text = r.telemetry.render();
    assert_eq!(sample(&text, "otelcol_receiver_accepted_spans", &http), 7);
    assert_eq!(sample(&text, "otelcol_receiver_refused_spans", &http), 5);
    assert_eq!(
        sample(&text, "otelcol_receiver_accepted_metric_points", &http),
        3
    );
    assert_eq!(
        sample(&text, "otelcol_receiver_refused_metric_points", &http),
        0
    );
    assert_eq!(
        sample(&text, "otelcol_receiver_refused_log_records", &grpc),
        2
    );
    assert_eq!(
        sample(&text, "otelcol_receiver_accepted_log_records", &grpc),
        0
    );
    assert_eq!(sample(&text, "otelcol_receiver_accepted_spans", &grpc), 0);
    r.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Pass-through: requests kept encoded when every stage downstream takes them so

fn pass_through(r: &Receiver) {
    for recorder in [&r.traces, &r.metrics, &r.logs] {
        recorder.encoded.store(true, Ordering::Relaxed);
    }
}

/// The one envelope recorded, which must still be encoded, and the request it holds.
fn encoded_request(recorder: &Recorder) -> (usize, Vec<u8>) {
    let got = recorder.take();
    assert_eq!(got.len(), 1);
    match &*got[0].payload {
        Payload::Encoded(e) => (e.item_count(), e.to_vec()),
        other => panic!("expected an encoded batch, got {other:?}"),
    }
}

#[tokio::test]
async fn pass_through_keeps_requests_encoded_over_grpc_and_http() {
    let r = start(Options::default()).await;
    pass_through(&r);
    let channel = r.channel().await;
    within(
        "traces",
        TraceServiceClient::new(channel.clone()).export(traces()),
    )
    .await
    .unwrap();
    let (items, bytes) = encoded_request(&r.traces);
    assert_eq!(items, 3);
    assert_eq!(
        ExportTraceServiceRequest::decode(&bytes[..]).unwrap(),
        traces()
    );
    within(
        "metrics",
        MetricsServiceClient::new(channel.clone())
            .send_compressed(CompressionEncoding::Gzip)
            .export(metrics()),
    )
    .await
    .unwrap();
    let (items, bytes) = encoded_request(&r.metrics);
    assert_eq!(items, 3);
    assert_eq!(
        ExportMetricsServiceRequest::decode(&bytes[..]).unwrap(),
        metrics()
    );
    within("logs", LogsServiceClient::new(channel).export(logs()))
        .await
        .unwrap();
    let (items, bytes) = encoded_request(&r.logs);
    assert_eq!(items, 2);
    assert_eq!(
        ExportLogsServiceRequest::decode(&bytes[..]).unwrap(),
        logs()
    );

    let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces().encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let (_, bytes) = encoded_request(&r.traces);
    assert_eq!(bytes, traces().encode_to_vec());
    // JSON is decoded whatever the pipeline takes.
    let reply = post_body(&r.url("/v1/logs"), JSON, json::encode_logs(&logs())).await;
    assert_eq!(reply.status, StatusCode::OK);
    let got = r.logs.take();
    assert!(matches!(&*got[0].payload, Payload::Logs(_)));

    let text = r.telemetry.render();
    let grpc = ["receiver=\"otlp\"", "transport=\"grpc\""];
    assert_eq!(sample(&text, "otelcol_receiver_accepted_spans", &grpc), 3);
    assert_eq!(
        sample(&text, "otelcol_receiver_accepted_metric_points", &grpc),
        3
    );
    assert_eq!(
        sample(&text, "otelcol_receiver_accepted_log_records", &grpc),
        2
    );
    r.stop().await;
}

/// A request whose span name is not UTF-8: prost refuses it, and so must a receiver that
/// does not decode, or the bad span would spoil every batch it is spliced into.
fn traces_with_bad_utf8() -> Vec<u8> {
    let mut request = traces();
    request.resource_spans[0].scope_spans[0].spans[0].name = "\u{7f}bad".into();
    let mut bytes = request.encode_to_vec();
    let at = bytes.iter().position(|&b| b == 0x7f).unwrap();
    bytes[at] = 0xc3;
    assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_err());
    bytes
}

#[tokio::test]
async fn malformed_requests_are_refused_whether_decoded_or_passed_through() {
    let r = start(Options::default()).await;
    for encoded in [false, true] {
        r.traces.encoded.store(encoded, Ordering::Relaxed);
        let reply = post_body(&r.url("/v1/traces"), PROTOBUF, traces_with_bad_utf8()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "encoded: {encoded}");
        let status = rpc::Status::decode(&reply.body[..]).unwrap();
        assert_eq!(status.code, rpc::code::INVALID_ARGUMENT);
        assert!(
            status
                .message
                .starts_with("failed to unmarshal request body:")
                && status.message.contains("UTF-8"),
            "{}",
            status.message
        );

        // Over gRPC, the raw bytes through a client that does not encode them itself.
        let mut grpc = tonic::client::Grpc::new(r.channel().await);
        grpc.ready().await.unwrap();
        let status = within(
            "export",
            grpc.unary(
                tonic::Request::new(Bytes::from(traces_with_bad_utf8())),
                http::uri::PathAndQuery::from_static(
                    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                ),
                RawBytes,
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::Internal, "encoded: {encoded}");
        assert!(status.message().contains("UTF-8"), "{}", status.message());
        assert!(r.traces.take().is_empty());
    }
    r.stop().await;
}

/// A client codec that sends bytes as they are and reads the answer as bytes.
#[derive(Clone, Copy)]
struct RawBytes;

impl tonic::codec::Codec for RawBytes {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl tonic::codec::Encoder for RawBytes {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Bytes>, tonic::Status> {
        use bytes::Buf;
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test]
async fn shutdown_is_prompt_and_closes_the_ports() {
    let r = start(Options::default()).await;
    // Leave a keep-alive HTTP connection and a gRPC connection open across the shutdown.
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = within(
        "HTTP",
        client.request(
            post(&r.url("/v1/traces"), PROTOBUF)
                .body(Full::new(Bytes::from(traces().encode_to_vec())))
                .unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    let channel = r.channel().await;
    within(
        "gRPC",
        TraceServiceClient::new(channel.clone()).export(traces()),
    )
    .await
    .unwrap();

    let started = Instant::now();
    r.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    for port in [r.http_port, r.grpc_port] {
        let connect = tokio::time::timeout(
            WAIT,
            tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
        )
        .await
        .unwrap();
        assert!(connect.is_err(), "port {port} still accepts connections");
    }
    drop(channel);
}
