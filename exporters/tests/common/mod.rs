//! Scriptable OTLP backends (gRPC with tonic, HTTP with hyper) on 127.0.0.1, test data,
//! certificates, and a way to build and drive exporters through their factories.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use ferrotel_pipeline::component::{
    ComponentConfig, ConsumeResult, ConsumerComponent, CreateSettings, Envelope, Host,
    ServiceStatus,
};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::ExporterFactory;
use ferrotel_pipeline::pdata::{
    common, json, logs, metrics, resource, trace, ExportLogsPartialSuccess,
    ExportLogsServiceRequest, ExportLogsServiceResponse, ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest, ExportMetricsServiceResponse, ExportTracePartialSuccess,
    ExportTraceServiceRequest, ExportTraceServiceResponse, Payload, Signal,
};
use ferrotel_pipeline::rpc;
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_pipeline::tls::ServerTlsSettings;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};

/// Everything in these tests finishes well within this.
pub const LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- test data

fn attr(key: &str, value: &str) -> common::KeyValue {
    common::KeyValue {
        key: key.to_string(),
        value: Some(common::AnyValue {
            value: Some(common::any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn resource() -> Option<resource::Resource> {
    Some(resource::Resource {
        attributes: vec![attr("service.name", "exporter-test")],
        ..Default::default()
    })
}

pub fn traces(n: usize) -> Payload {
    let spans = (0..n)
        .map(|i| trace::Span {
            trace_id: vec![1; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span-{i}"),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            end_time_unix_nano: 1_700_000_000_000_001_000 + i as u64,
            attributes: vec![attr("i", &i.to_string())],
            ..Default::default()
        })
        .collect();
    Payload::from(ExportTraceServiceRequest {
        resource_spans: vec![trace::ResourceSpans {
            resource: resource(),
            scope_spans: vec![trace::ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

pub fn metrics(n: usize) -> Payload {
    let points = (0..n)
        .map(|i| metrics::NumberDataPoint {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            value: Some(metrics::number_data_point::Value::AsDouble(i as f64 + 0.5)),
            ..Default::default()
        })
        .collect();
    Payload::from(ExportMetricsServiceRequest {
        resource_metrics: vec![metrics::ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![metrics::ScopeMetrics {
                metrics: vec![metrics::Metric {
                    name: "test.gauge".into(),
                    unit: "1".into(),
                    data: Some(metrics::metric::Data::Gauge(metrics::Gauge {
                        data_points: points,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

pub fn logs(n: usize) -> Payload {
    let records = (0..n)
        .map(|i| logs::LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(common::AnyValue {
                value: Some(common::any_value::Value::StringValue(format!("line {i}"))),
            }),
            ..Default::default()
        })
        .collect();
    Payload::from(ExportLogsServiceRequest {
        resource_logs: vec![logs::ResourceLogs {
            resource: resource(),
            scope_logs: vec![logs::ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

// ---------------------------------------------------------------- backend state

/// One scripted answer; when the script is empty the backend accepts.
#[derive(Clone, Debug)]
pub enum Reply {
    /// gRPC status code and message, with RetryInfo when a delay is given.
    Grpc {
        code: tonic::Code,
        message: String,
        retry: Option<Duration>,
    },
    /// HTTP status, extra headers, and a body with its content type.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        content_type: String,
        body: Vec<u8>,
    },
}

impl Reply {
    pub fn grpc(code: tonic::Code, message: &str) -> Reply {
        Reply::Grpc {
            code,
            message: message.to_string(),
            retry: None,
        }
    }

    pub fn http(status: u16) -> Reply {
        Reply::Http {
            status,
            headers: Vec::new(),
            content_type: String::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// An HTTP error with a protobuf `google.rpc.Status` body.
    pub fn http_status(status: u16, code: i32, message: &str) -> Reply {
        Reply::Http {
            status,
            headers: Vec::new(),
            content_type: "application/x-protobuf".into(),
            body: rpc::Status {
                code,
                message: message.to_string(),
                details: Vec::new(),
            }
            .encode_to_vec(),
        }
    }
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub at: Instant,
    /// The request target as sent (absolute form through a proxy).
    pub uri: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub version: http::Version,
}

impl Attempt {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub struct Backend {
    pub script: Mutex<VecDeque<Reply>>,
    /// Every request, accepted or not.
    pub attempts: Mutex<Vec<Attempt>>,
    /// The data of accepted requests.
    pub received: Mutex<Vec<Payload>>,
    /// Reported as partial success by every accepted request.
    pub partial: Mutex<Option<(i64, String)>>,
    /// Answer 2xx with this body and content type instead of an export response.
    pub raw_success: Mutex<Option<(String, Vec<u8>)>>,
    /// Sent with every HTTP answer.
    pub response_headers: Mutex<Vec<(String, String)>>,
}

impl Backend {
    pub fn script(&self, replies: Vec<Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    pub fn received(&self) -> Vec<Payload> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests were accepted, or fails.
    pub async fn wait_received(&self, n: usize) -> Vec<Payload> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} deliveries, got {} (attempts: {})",
                got.len(),
                self.attempts().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn record(&self, attempt: Attempt) -> Option<Reply> {
        self.attempts.lock().unwrap().push(attempt);
        self.script.lock().unwrap().pop_front()
    }
}

// ---------------------------------------------------------------- certificates

pub struct Pki {
    pub ca_pem: String,
    pub server_cert: String,
    pub server_key: String,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1.
pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
    }
}

/// Writes the CA to a file in `dir` and returns its path.
pub fn ca_file(dir: &tempfile::TempDir, pki: &Pki) -> String {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &pki.ca_pem).unwrap();
    path.display().to_string()
}

// ---------------------------------------------------------------- gRPC backend

pub struct Server {
    pub addr: SocketAddr,
    pub backend: Arc<Backend>,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct GrpcBackend(Arc<Backend>);

fn grpc_attempt<T>(request: &Request<T>, path: &str) -> Attempt {
    let headers = request
        .metadata()
        .clone()
        .into_headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    Attempt {
        at: Instant::now(),
        uri: path.to_string(),
        path: path.to_string(),
        headers,
        version: http::Version::HTTP_2,
    }
}

fn grpc_error(reply: Reply) -> Option<Status> {
    match reply {
        Reply::Grpc {
            code,
            message,
            retry,
        } => {
            let details = rpc::Status {
                code: code as i32,
                message: message.clone(),
                details: retry
                    .map(|d| vec![rpc::retry_info_any(d)])
                    .unwrap_or_default(),
            }
            .encode_to_vec();
            Some(Status::with_details(code, message, details.into()))
        }
        Reply::Http { .. } => None,
    }
}

impl GrpcBackend {
    fn handle<T: Clone + Into<Payload>>(
        &self,
        request: Request<T>,
        path: &str,
    ) -> Result<Option<(i64, String)>, Status> {
        let attempt = grpc_attempt(&request, path);
        if let Some(reply) = self.0.record(attempt) {
            if let Some(status) = grpc_error(reply) {
                return Err(status);
            }
        }
        self.0
            .received
            .lock()
            .unwrap()
            .push(request.into_inner().into());
        Ok(self.0.partial.lock().unwrap().clone())
    }
}

#[tonic::async_trait]
impl TraceService for GrpcBackend {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let partial = self.handle(request, "traces")?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: partial.map(|(n, m)| ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: m,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcBackend {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let partial = self.handle(request, "metrics")?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: partial.map(|(n, m)| ExportMetricsPartialSuccess {
                rejected_data_points: n,
                error_message: m,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcBackend {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let partial = self.handle(request, "logs")?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(n, m)| ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message: m,
            }),
        }))
    }
}

/// A gRPC OTLP backend on 127.0.0.1, plain or with the certificate of `pki`.
pub async fn grpc_server(pki: Option<&Pki>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    grpc_server_on(listener, pki).await
}

/// The same on an already bound listener.
pub async fn grpc_server_on(listener: TcpListener, pki: Option<&Pki>) -> Server {
    use tonic::codec::CompressionEncoding::{Gzip, Zstd};
    let addr = listener.local_addr().unwrap();
    let backend = Arc::new(Backend::default());
    let service = GrpcBackend(backend.clone());
    let mut builder = tonic::transport::Server::builder();
    if let Some(pki) = pki {
        let identity = tonic::transport::Identity::from_pem(&pki.server_cert, &pki.server_key);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .unwrap();
    }
    let router = builder
        .add_service(
            TraceServiceServer::new(service.clone())
                .accept_compressed(Gzip)
                .accept_compressed(Zstd),
        )
        .add_service(
            MetricsServiceServer::new(service.clone())
                .accept_compressed(Gzip)
                .accept_compressed(Zstd),
        )
        .add_service(
            LogsServiceServer::new(service)
                .accept_compressed(Gzip)
                .accept_compressed(Zstd),
        );
    let stop = CancellationToken::new();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let until = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        let _ = router.serve_with_incoming_shutdown(incoming, until).await;
    });
    Server {
        addr,
        backend,
        stop,
    }
}

// ---------------------------------------------------------------- HTTP backend

fn signal_of(path: &str) -> Option<Signal> {
    if path.ends_with("traces") {
        Some(Signal::Traces)
    } else if path.ends_with("metrics") {
        Some(Signal::Metrics)
    } else if path.ends_with("logs") {
        Some(Signal::Logs)
    } else {
        None
    }
}

fn decode(signal: Signal, json_body: bool, body: &[u8]) -> Result<Payload, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    Ok(match (signal, json_body) {
        (Signal::Traces, false) => ExportTraceServiceRequest::decode(body)
            .map_err(|x| e(&x))?
            .into(),
        (Signal::Metrics, false) => ExportMetricsServiceRequest::decode(body)
            .map_err(|x| e(&x))?
            .into(),
        (Signal::Logs, false) => ExportLogsServiceRequest::decode(body)
            .map_err(|x| e(&x))?
            .into(),
        (Signal::Traces, true) => json::decode_traces(body).map_err(|x| e(&x))?.into(),
        (Signal::Metrics, true) => json::decode_metrics(body).map_err(|x| e(&x))?.into(),
        (Signal::Logs, true) => json::decode_logs(body).map_err(|x| e(&x))?.into(),
    })
}

/// The export response for an accepted request, in the request's encoding.
fn success_body(signal: Signal, json_body: bool, partial: Option<(i64, String)>) -> Vec<u8> {
    match signal {
        Signal::Traces => {
            let r = ExportTraceServiceResponse {
                partial_success: partial.map(|(n, m)| ExportTracePartialSuccess {
                    rejected_spans: n,
                    error_message: m,
                }),
            };
            if json_body {
                json::encode_traces_response(&r)
            } else {
                r.encode_to_vec()
            }
        }
        Signal::Metrics => {
            let r = ExportMetricsServiceResponse {
                partial_success: partial.map(|(n, m)| ExportMetricsPartialSuccess {
                    rejected_data_points: n,
                    error_message: m,
                }),
            };
            if json_body {
                json::encode_metrics_response(&r)
            } else {
                r.encode_to_vec()
            }
        }
        Signal::Logs => {
            let r = ExportLogsServiceResponse {
                partial_success: partial.map(|(n, m)| ExportLogsPartialSuccess {
                    rejected_log_records: n,
                    error_message: m,
                }),
            };
            if json_body {
                json::encode_logs_response(&r)
            } else {
                r.encode_to_vec()
            }
        }
    }
}

fn respond(
    status: u16,
    content_type: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(status);
    if !content_type.is_empty() {
        builder = builder.header("content-type", content_type);
    }
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

async fn http_handle(
    backend: Arc<Backend>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    let attempt = Attempt {
        at: Instant::now(),
        uri: parts.uri.to_string(),
        path: parts.uri.path().to_string(),
        headers,
        version: parts.version,
    };
    let always = backend.response_headers.lock().unwrap().clone();
    if let Some(Reply::Http {
        status,
        headers,
        content_type,
        body,
    }) = backend.record(attempt)
    {
        let mut all = always.clone();
        all.extend(headers);
        return respond(status, &content_type, &all, body);
    }
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let json_body = content_type.starts_with("application/json");
    let encoding = parts
        .headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(signal) = signal_of(parts.uri.path()) else {
        return respond(404, "", &always, Vec::new());
    };
    let decoded = ferrotel_pipeline::compression::decompress(encoding, body, 64 << 20)
        .map_err(|e| e.to_string())
        .and_then(|plain| decode(signal, json_body, &plain));
    match decoded {
        Ok(payload) => {
            backend.received.lock().unwrap().push(payload);
            if let Some((content_type, body)) = backend.raw_success.lock().unwrap().clone() {
                return respond(200, &content_type, &always, body);
            }
            let partial = backend.partial.lock().unwrap().clone();
            respond(
                200,
                &content_type,
                &always,
                success_body(signal, json_body, partial),
            )
        }
        Err(e) => respond(
            400,
            "application/x-protobuf",
            &always,
            rpc::Status {
                code: 3,
                message: e,
                details: Vec::new(),
            }
            .encode_to_vec(),
        ),
    }
}

/// An OTLP/HTTP backend on 127.0.0.1 (HTTP/1.1 and HTTP/2), plain or with the certificate
/// of `pki` (ALPN h2 and http/1.1).
pub async fn http_server(pki: Option<&Pki>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = Arc::new(Backend::default());
    let stop = CancellationToken::new();
    let tls = pki.map(|pki| {
        let settings = ServerTlsSettings {
            cert_pem: Some(pki.server_cert.clone()),
            key_pem: Some(pki.server_key.clone()),
            ..Default::default()
        };
        tokio_rustls::TlsAcceptor::from(settings.build(&[b"h2", b"http/1.1"]).unwrap())
    });
    let until = stop.clone();
    let state = backend.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = until.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let state = state.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(http_handle(state, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Server {
        addr,
        backend,
        stop,
    }
}

// ---------------------------------------------------------------- exporters

pub struct Running {
    pub exporter: Arc<dyn ConsumerComponent>,
    pub telemetry: Arc<Telemetry>,
    pub id: String,
    _status: tokio::sync::watch::Sender<ServiceStatus>,
}

impl Running {
    pub async fn consume(&self, payload: Payload) -> ConsumeResult {
        tokio::time::timeout(LIMIT, self.exporter.consume(Envelope::new(payload)))
            .await
            .expect("consume finished in time")
    }

    /// A counter of this exporter, e.g. `otelcol_exporter_send_failed_spans`.
    pub fn metric(&self, name: &str) -> f64 {
        let label = format!("exporter=\"{}\"", self.id);
        self.telemetry
            .render()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
            .find_map(|l| l.rsplit(' ').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    pub async fn stop(&self) {
        tokio::time::timeout(LIMIT, self.exporter.shutdown())
            .await
            .expect("shutdown finished in time")
            .unwrap();
    }
}

/// Decodes `yaml` with `factory`, or returns the decoding error's text.
pub fn decode_config(
    factory: &dyn ExporterFactory,
    yaml: &str,
) -> Result<Box<dyn ComponentConfig>, String> {
    factory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .map_err(|e| e.to_string())
}

/// Builds and starts an exporter from its YAML config.
pub async fn start(factory: &dyn ExporterFactory, kind: &str, yaml: &str) -> Running {
    let config = decode_config(factory, yaml).unwrap();
    let telemetry = Telemetry::for_tests();
    let id = ComponentId::new(kind, None);
    let exporter = factory
        .create(
            CreateSettings {
                id: id.clone(),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
        )
        .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(ServiceStatus::Ready);
    tokio::time::timeout(
        LIMIT,
        exporter.start(&Host {
            telemetry: telemetry.clone(),
            status: rx,
        }),
    )
    .await
    .expect("start finished in time")
    .unwrap();
    Running {
        exporter,
        telemetry,
        id: id.to_string(),
        _status: tx,
    }
}
