//! OTLP over gRPC (tonic): the three export services, answering with OTLP status codes.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::metadata::KeyAndValueRef;
use tonic::transport::Server;
use tonic::{Code, Request, Response, Status};
use tracing::{debug, warn};

use ferrotel_pipeline::component::{ClientInfo, ConsumeError};
use ferrotel_pipeline::pdata::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse, Payload,
    Signal,
};
use ferrotel_pipeline::rpc;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};

use super::config::GrpcServerConfig;
use super::Intake;

#[derive(Clone)]
struct Handler {
    intake: Intake,
    include_metadata: bool,
}

fn to_status(error: &ConsumeError) -> Status {
    let code = Code::from_i32(error.kind.grpc_code());
    let details = rpc::status_for(error).encode_to_vec();
    Status::with_details(code, error.message.clone(), details.into())
}

impl Handler {
    fn client<T>(&self, request: &Request<T>) -> Option<Arc<ClientInfo>> {
        let addr = request.remote_addr();
        if !self.include_metadata && addr.is_none() {
            return None;
        }
        let mut metadata = Vec::new();
        if self.include_metadata {
            for entry in request.metadata().iter() {
                if let KeyAndValueRef::Ascii(key, value) = entry {
                    if let Ok(v) = value.to_str() {
                        metadata.push((key.as_str().to_ascii_lowercase(), v.to_string()));
                    }
                }
            }
        }
        Some(Arc::new(ClientInfo { addr, metadata }))
    }

    async fn export(
        &self,
        payload: Payload,
        client: Option<Arc<ClientInfo>>,
    ) -> Result<(u64, String), Status> {
        match self.intake.push(payload, client).await {
            Ok(accepted) => Ok((accepted.rejected_items, accepted.message)),
            Err(err) => {
                debug!(error = %err, "Refusing an export request");
                Err(to_status(&err))
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Handler {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let client = self.client(&request);
        let (rejected, message) =
            Handler::export(self, request.into_inner().into(), client).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Handler {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let client = self.client(&request);
        let (rejected, message) =
            Handler::export(self, request.into_inner().into(), client).await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Handler {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let client = self.client(&request);
        let (rejected, message) =
            Handler::export(self, request.into_inner().into(), client).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: message,
            }),
        }))
    }
}

macro_rules! configure {
    ($server:expr, $max:expr) => {
        $server
            .max_decoding_message_size($max)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Deflate)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd)
    };
}

/// tonic refuses a message over `max_recv_msg_size_mib` with OUT_OF_RANGE, which OTLP clients
/// retry; grpc-go, and so the Collector, answers RESOURCE_EXHAUSTED, which they do not retry.
/// The handlers never answer OUT_OF_RANGE themselves, so every such status is that refusal.
fn oversize_as_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
    let headers = response.headers_mut();
    if headers
        .get(&GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() == b"11")
    {
        headers.insert(GRPC_STATUS, http::HeaderValue::from_static("8"));
    }
    response
}

/// Starts serving on `listener`; the task ends once `shutdown` fired and open calls finished.
pub(crate) fn serve(
    config: &GrpcServerConfig,
    listener: TcpListener,
    intake: Intake,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, String> {
    let handler = Handler {
        intake: intake.clone(),
        include_metadata: config.include_metadata,
    };
    let max = config.max_recv_bytes();
    let mut builder = Server::builder();
    if config.max_concurrent_streams > 0 {
        builder = builder.concurrency_limit_per_connection(config.max_concurrent_streams as usize);
        builder = builder.max_concurrent_streams(config.max_concurrent_streams);
    }
    if let Some(ka) = config
        .keepalive
        .as_ref()
        .and_then(|k| k.server_parameters.as_ref())
    {
        if let Some(t) = ka.time {
            builder = builder.http2_keepalive_interval(Some(t.get()));
        }
        if let Some(t) = ka.timeout {
            builder = builder.http2_keepalive_timeout(Some(t.get()));
        }
        if let Some(age) = ka.max_connection_age {
            builder = builder.max_connection_age(age.get());
        }
    }
    let mut routes = tonic::service::RoutesBuilder::default();
    if intake.accepts(Signal::Traces) {
        routes.add_service(configure!(TraceServiceServer::new(handler.clone()), max));
    }
    if intake.accepts(Signal::Metrics) {
        routes.add_service(configure!(MetricsServiceServer::new(handler.clone()), max));
    }
    if intake.accepts(Signal::Logs) {
        routes.add_service(configure!(LogsServiceServer::new(handler.clone()), max));
    }
    let router = builder
        .layer(tower::util::MapResponseLayer::new(
            oversize_as_resource_exhausted::<tonic::body::Body>,
        ))
        .add_routes(routes.routes());
    let stop = shutdown.clone();
    match &config.tls {
        None => {
            // Answers are small: without TCP_NODELAY they wait on Nagle's algorithm (about 40 ms
            // per call when a client sends large requests back to back).
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            Ok(tokio::spawn(async move {
                if let Err(err) = router
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await
                {
                    warn!(error = %err, "gRPC server stopped with an error");
                }
            }))
        }
        Some(tls) => {
            let server_config = tls.build(&[b"h2"])?;
            let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            let accept_stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        _ = accept_stop.cancelled() => break,
                        a = listener.accept() => a,
                    };
                    let Ok((stream, peer)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls_stream)) => {
                                let _ = tx.send(Ok::<_, std::io::Error>(tls_stream)).await;
                            }
                            Ok(Err(err)) => debug!(error = %err, %peer, "TLS handshake failed"),
                            Err(_) => debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            });
            let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
            Ok(tokio::spawn(async move {
                if let Err(err) = router
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await
                {
                    warn!(error = %err, "gRPC server stopped with an error");
                }
            }))
        }
    }
}
