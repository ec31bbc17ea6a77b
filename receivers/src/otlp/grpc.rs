//! OTLP over gRPC (tonic): the three export services, answering with OTLP status codes.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::KeyAndValueRef;
use tonic::server::{NamedService, UnaryService};
use tonic::transport::Server;
use tonic::{Code, Request, Response, Status};
use tracing::{debug, warn};

use ferrotel_pipeline::component::{ClientInfo, ConsumeError};
use ferrotel_pipeline::pdata::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse, ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse, ExportTracePartialSuccess, ExportTraceServiceResponse, Signal,
};
use ferrotel_pipeline::rpc;

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

    /// One export call: the request's bytes in, the encoded response out.
    async fn export(&self, signal: Signal, request: Request<Bytes>) -> Result<Bytes, Status> {
        let client = self.client(&request);
        // INTERNAL, as grpc-go (and tonic's protobuf codec) answers a request it cannot unmarshal.
        let payload = self
            .intake
            .decode_protobuf(signal, request.into_inner())
            .map_err(Status::internal)?;
        let (rejected, message) = match self.intake.push(payload, client).await {
            Ok(accepted) => (accepted.rejected_items, accepted.message),
            Err(err) => {
                debug!(error = %err, "Refusing an export request");
                return Err(to_status(&err));
            }
        };
        let rejected = i64::try_from(rejected).unwrap_or(i64::MAX);
        let partial = rejected > 0;
        let response = match signal {
            Signal::Traces => ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse {
                partial_success: partial.then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
        };
        Ok(response.into())
    }
}

/// The export services' codec: a request is handed over as its bytes, so the handler
/// decides whether to decode it or keep it encoded; answers are encoded by the handler.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // Splits the message off tonic's buffer without copying it.
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

/// The gRPC names of one signal's export service.
trait ExportKind: Send + Sync + 'static {
    const SIGNAL: Signal;
    const SERVICE: &'static str;
    const PATH: &'static str;
}

struct TraceKind;
struct MetricsKind;
struct LogsKind;

impl ExportKind for TraceKind {
    const SIGNAL: Signal = Signal::Traces;
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
}

impl ExportKind for MetricsKind {
    const SIGNAL: Signal = Signal::Metrics;
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
}

impl ExportKind for LogsKind {
    const SIGNAL: Signal = Signal::Logs;
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
}

/// One signal's OTLP export service (what tonic's generated server does, over [`RawCodec`]).
struct ExportService<K> {
    handler: Arc<Handler>,
    max_message_size: usize,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for ExportService<K> {
    fn clone(&self) -> Self {
        ExportService {
            handler: self.handler.clone(),
            max_message_size: self.max_message_size,
            kind: PhantomData,
        }
    }
}

impl<K: ExportKind> ExportService<K> {
    fn new(handler: Arc<Handler>, max_message_size: usize) -> Self {
        ExportService {
            handler,
            max_message_size,
            kind: PhantomData,
        }
    }
}

impl<K: ExportKind> NamedService for ExportService<K> {
    const NAME: &'static str = K::SERVICE;
}

/// The unary call itself.
struct ExportCall {
    handler: Arc<Handler>,
    signal: Signal,
}

impl UnaryService<Bytes> for ExportCall {
    type Response = Bytes;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handler = self.handler.clone();
        let signal = self.signal;
        Box::pin(async move { handler.export(signal, request).await.map(Response::new) })
    }
}

impl<K: ExportKind> tower::Service<http::Request<tonic::body::Body>> for ExportService<K> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let handler = self.handler.clone();
        let max = self.max_message_size;
        Box::pin(async move {
            if request.uri().path() != K::PATH {
                return Ok(Status::unimplemented("").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .max_decoding_message_size(max)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .accept_compressed(CompressionEncoding::Deflate)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd);
            let call = ExportCall {
                handler,
                signal: K::SIGNAL,
            };
            Ok(grpc.unary(call, request).await)
        })
    }
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
    let handler = Arc::new(Handler {
        intake: intake.clone(),
        include_metadata: config.include_metadata,
    });
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
        routes.add_service(ExportService::<TraceKind>::new(handler.clone(), max));
    }
    if intake.accepts(Signal::Metrics) {
        routes.add_service(ExportService::<MetricsKind>::new(handler.clone(), max));
    }
    if intake.accepts(Signal::Logs) {
        routes.add_service(ExportService::<LogsKind>::new(handler.clone(), max));
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
