//! The `otlp_grpc` exporter (deprecated alias `otlp`): OTLP over gRPC through one lazily
//! connected HTTP/2 channel, with the shared queue and retries. Each batch is encoded (and
//! compressed) once; retries resend the same bytes. An uncompressed request goes out as the
//! batch's own pieces, not copied into one buffer.

pub mod config;

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::uri::Scheme;
use http::{HeaderValue, Uri};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use tonic::codec::{CompressionEncoding, DecodeBuf, Decoder, Streaming};
use tonic::metadata::{AsciiMetadataKey, BinaryMetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::{debug, warn};

use ferrotel_pipeline::component::{
    config_as, ComponentConfig, ComponentError, ConsumerComponent, CreateSettings,
};
use ferrotel_pipeline::compression;
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::exporter::config::Compression;
use ferrotel_pipeline::exporter::{ExportError, HelperSettings, QueuedExporter, Sender, Sent};
use ferrotel_pipeline::factory::{decode_config, ExporterFactory, Factory, Stability};
use ferrotel_pipeline::pdata::{
    ExportLogsServiceResponse, ExportMetricsServiceResponse, ExportTraceServiceResponse, Payload,
    Signal,
};
use ferrotel_pipeline::rpc;

pub use config::OtlpGrpcConfig;
use config::DEFAULT_KEEPALIVE_TIMEOUT;

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

pub struct OtlpGrpcExporterFactory;

impl Factory for OtlpGrpcExporterFactory {
    fn type_name(&self) -> &'static str {
        "otlp_grpc"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<OtlpGrpcConfig>(value)
    }
}

impl ExporterFactory for OtlpGrpcExporterFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Stable)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<OtlpGrpcConfig>(config)?.clone();
        let id = settings.id.to_string();
        let helper = HelperSettings {
            timeout: config.timeout.get(),
            retry: config.retry_on_failure.clone(),
            queue: config.sending_queue.clone(),
        };
        let sender = GrpcSender::new(&id, config)?;
        Ok(QueuedExporter::build(
            &id,
            &settings.telemetry,
            helper,
            sender,
        ))
    }
}

/// A batch encoded as its OTLP export request, ready for every attempt: the pieces that,
/// written one after the other, are the request (an encoded batch's entries, not copied).
pub struct GrpcRequest {
    signal: Signal,
    /// The gRPC message: its five-byte prefix (compressed flag and length), then the
    /// protobuf request as pieces, or compressed in one.
    frames: Vec<Bytes>,
}

struct GrpcSender {
    id: String,
    config: OtlpGrpcConfig,
    metadata: MetadataMap,
    /// How requests are compressed (its `grpc-encoding` name): gzip, zstd or none.
    compression: Option<&'static str>,
    /// Built at start (it needs the runtime); taken at shutdown.
    channel: Mutex<Option<Channel>>,
}

impl GrpcSender {
    fn new(id: &str, config: OtlpGrpcConfig) -> Result<Self, ComponentError> {
        let metadata = metadata(&config)?;
        let compression = match config.compression {
            Compression::Gzip | Compression::Zstd | Compression::None => {
                config.compression.encoding()
            }
            other => {
                return Err(ComponentError::new(format!(
                    "unsupported compression type \"{}\"",
                    other.encoding().unwrap_or_default()
                )))
            }
        };
        Ok(GrpcSender {
            id: id.to_string(),
            config,
            metadata,
            compression,
            channel: Mutex::new(None),
        })
    }

    fn channel(&self) -> Result<Channel, ExportError> {
        self.channel
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| ExportError::retryable("the exporter is not running"))
    }

    /// The channel: lazy, so a destination that is down does not stop the agent from starting.
    fn build_channel(&self) -> Result<Channel, ComponentError> {
        let target = self.config.target();
        let fail = |e: String| ComponentError::new(format!("{}: {e}", self.id));
        let mut endpoint = Endpoint::from_shared(format!("http://{}", target.authority))
            .map_err(|e| fail(format!("invalid endpoint: {e}")))?
            .user_agent(format!("ferrotel/{}", env!("CARGO_PKG_VERSION")))
            .map_err(|e| fail(format!("user agent: {e}")))?
            .tcp_nodelay(true);
        let scheme = if target.tls { "https" } else { "http" };
        let authority = self
            .config
            .authority
            .clone()
            .unwrap_or_else(|| target.authority.clone());
        // The request's :scheme and :authority; the connector still dials `target.authority`.
        let origin: Uri = format!("{scheme}://{authority}")
            .parse()
            .map_err(|e| fail(format!("invalid authority: {e}")))?;
        endpoint = endpoint.origin(origin);
        if let Some(ka) = &self.config.keepalive {
            if !ka.time.get().is_zero() {
                let timeout = if ka.timeout.get().is_zero() {
                    DEFAULT_KEEPALIVE_TIMEOUT
                } else {
                    ka.timeout.get()
                };
                endpoint = endpoint
                    .http2_keep_alive_interval(ka.time.get())
                    .keep_alive_timeout(timeout)
                    .keep_alive_while_idle(ka.permit_without_stream);
            }
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        if !target.tls {
            return Ok(endpoint.connect_with_connector_lazy(http));
        }
        // hyper-rustls sets ALPN itself (h2) and refuses a config that already has it.
        let tls = self.config.tls.build(&[]).map_err(fail)?;
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
            .https_only();
        let builder = match &self.config.tls.server_name_override {
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| fail(format!("tls: invalid server_name_override: {e}")))?;
                builder.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let https = builder.enable_http2().wrap_connector(http);
        Ok(endpoint.connect_with_connector_lazy(TlsOnly(https)))
    }

    /// The gRPC message for a batch: compressed when configured, the pieces as they are
    /// otherwise.
    fn frame(&self, pieces: Vec<Bytes>) -> Result<Vec<Bytes>, ExportError> {
        let (flag, mut frames) = match self.compression {
            None => (0u8, pieces),
            Some(name) => {
                let packed = compression::compress_parts(Some(name), &pieces)
                    .map_err(|e| ExportError::permanent(format!("compressing: {e}")))?;
                (1, vec![Bytes::from(packed)])
            }
        };
        let body_len: usize = frames.iter().map(Bytes::len).sum();
        let body_len = u32::try_from(body_len).map_err(|_| {
            ExportError::permanent(format!(
                "the request is {body_len} bytes, more than a gRPC message can hold"
            ))
        })?;
        let mut prefix = [flag, 0, 0, 0, 0];
        prefix[1..].copy_from_slice(&body_len.to_be_bytes());
        frames.retain(|f| !f.is_empty());
        frames.insert(0, Bytes::copy_from_slice(&prefix));
        Ok(frames)
    }

    /// One unary call with an already framed message, answered as tonic's client would
    /// answer it (statuses in headers or trailers, compressed replies, HTTP errors).
    async fn call<R>(&self, path: &'static str, frames: &[Bytes]) -> Result<R, Status>
    where
        R: prost::Message + Default + Send + 'static,
    {
        let mut channel = match self.channel() {
            Ok(c) => c,
            Err(e) => return Err(Status::unavailable(e.to_string())),
        };
        tower::ServiceExt::ready(&mut channel)
            .await
            .map_err(|e| Status::unavailable(format!("the connection is not ready: {e}")))?;
        let body = tonic::body::Body::new(Frames(frames.iter().cloned().collect()));
        let mut request = http::Request::new(body);
        *request.method_mut() = http::Method::POST;
        *request.version_mut() = http::Version::HTTP_2;
        // The channel adds the scheme and authority of its origin.
        *request.uri_mut() = Uri::from_static(path);
        let headers = request.headers_mut();
        *headers = self.metadata.clone().into_headers();
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        if let Some(name) = self.compression {
            headers.insert("grpc-encoding", HeaderValue::from_static(name));
        }
        headers.insert(
            "grpc-accept-encoding",
            HeaderValue::from_static("gzip,zstd"),
        );
        let timeout = self.config.timeout.get();
        if !timeout.is_zero() {
            // Tells the server the deadline, as a Go client's context does.
            headers.insert("grpc-timeout", grpc_timeout(timeout));
        }
        let response = tower::Service::call(&mut channel, request)
            .await
            .map_err(|e| Status::from_error(e.into()))?;
        let encoding = match response.headers().get("grpc-encoding") {
            None => None,
            Some(v) => match v.as_bytes() {
                b"identity" => None,
                b"gzip" => Some(CompressionEncoding::Gzip),
                b"zstd" => Some(CompressionEncoding::Zstd),
                other => {
                    return Err(Status::unimplemented(format!(
                        "Content is compressed with `{}` which isn't supported",
                        String::from_utf8_lossy(other)
                    )))
                }
            },
        };
        if let Some(status) = Status::from_header_map(response.headers()) {
            // A trailers-only answer: no message follows.
            if status.code() != Code::Ok {
                return Err(status);
            }
            return Err(Status::internal("Missing response message."));
        }
        let status_code = response.status();
        let mut reply = Streaming::new_response(
            ProstDecoder::<R>(PhantomData),
            response.into_body(),
            status_code,
            encoding,
            None,
        );
        let message = reply
            .message()
            .await?
            .ok_or_else(|| Status::internal("Missing response message."))?;
        reply.trailers().await?;
        Ok(message)
    }

    /// One call; with `wait_for_ready`, a call that cannot connect waits and tries again
    /// (the attempt's timeout bounds it) instead of failing at once.
    async fn call_ready<R>(&self, path: &'static str, frames: &[Bytes]) -> Result<R, Status>
    where
        R: prost::Message + Default + Send + 'static,
    {
        let mut pause = Duration::from_millis(50);
        loop {
            match self.call::<R>(path, frames).await {
                Err(status) if self.config.wait_for_ready && is_local_failure(&status) => {
                    debug!(exporter = %self.id, error = %describe(&status), "Waiting for the connection to be ready");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }
}

/// A `grpc-timeout` value: the most precise unit that fits the eight digits gRPC allows.
fn grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let value = [
        (timeout.as_nanos(), 'n'),
        (timeout.as_micros(), 'u'),
        (timeout.as_millis(), 'm'),
        (u128::from(timeout.as_secs()), 'S'),
        (u128::from(timeout.as_secs() / 60), 'M'),
    ]
    .into_iter()
    .find(|(v, _)| *v <= MAX)
    .map_or_else(
        || format!("{}H", (timeout.as_secs() / 3600).min(99_999_999)),
        |(v, unit)| format!("{v}{unit}"),
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("99999999H"))
}

/// A request body that hands out its pieces as they are, one DATA chunk each: HTTP/2 writes
/// them to the socket without copying them together.
struct Frames(VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

#[async_trait]
impl Sender for GrpcSender {
    type Request = GrpcRequest;

    fn prepare(&self, payload: &Payload) -> Result<GrpcRequest, ExportError> {
        Ok(GrpcRequest {
            signal: payload.signal(),
            frames: self.frame(payload.to_protobuf_chunks())?,
        })
    }

    fn accepts_encoded(&self) -> bool {
        true
    }

    async fn send(&self, request: &GrpcRequest) -> Result<Sent, ExportError> {
        let partial = match request.signal {
            Signal::Traces => self
                .call_ready::<ExportTraceServiceResponse>(TRACES_PATH, &request.frames)
                .await
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_spans, p.error_message))
                }),
            Signal::Metrics => self
                .call_ready::<ExportMetricsServiceResponse>(METRICS_PATH, &request.frames)
                .await
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_data_points, p.error_message))
                }),
            Signal::Logs => self
                .call_ready::<ExportLogsServiceResponse>(LOGS_PATH, &request.frames)
                .await
                .map(|r| {
                    r.partial_success
                        .map(|p| (p.rejected_log_records, p.error_message))
                }),
        };
        match partial {
            Ok(Some((rejected, message))) => Ok(Sent {
                rejected_items: u64::try_from(rejected).unwrap_or(0),
                message,
            }),
            Ok(None) => Ok(Sent::default()),
            Err(status) => Err(classify(&status)),
        }
    }

    async fn start(&self) -> Result<(), ComponentError> {
        let target = self.config.target();
        if target.tls && self.config.endpoint.starts_with("http://") {
            warn!(exporter = %self.id, endpoint = %self.config.endpoint, "The endpoint starts with http:// but TLS is used, as upstream does; set tls.insecure: true for plain text");
        }
        let channel = self.build_channel()?;
        if let Ok(mut slot) = self.channel.lock() {
            *slot = Some(channel);
        }
        debug!(exporter = %self.id, endpoint = %target.authority, tls = target.tls, "gRPC channel ready (connects on first use)");
        Ok(())
    }

    async fn shutdown(&self) {
        if let Ok(mut slot) = self.channel.lock() {
            slot.take();
        }
    }
}

/// The configured headers as gRPC metadata; `-bin` keys carry their value's bytes.
fn metadata(config: &OtlpGrpcConfig) -> Result<MetadataMap, ComponentError> {
    let mut map = MetadataMap::new();
    for (name, value) in &config.headers.0 {
        let lower = name.to_ascii_lowercase();
        let bad = || ComponentError::new(format!("headers: invalid gRPC metadata \"{name}\""));
        if lower.ends_with("-bin") {
            let key = BinaryMetadataKey::from_bytes(lower.as_bytes()).map_err(|_| bad())?;
            map.append_bin(key, MetadataValue::from_bytes(value.as_bytes()));
        } else {
            let key = AsciiMetadataKey::from_bytes(lower.as_bytes()).map_err(|_| bad())?;
            let value = value.parse().map_err(|_| bad())?;
            map.append(key, value);
        }
    }
    Ok(map)
}

/// grpc-go's names for codes, so messages read as upstream's do.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// A status made on this side (the connection failed) rather than sent by the server: only
/// local statuses carry a source error.
fn is_local_failure(status: &Status) -> bool {
    use std::error::Error;
    status.source().is_some() && matches!(status.code(), Code::Unavailable | Code::Unknown)
}

fn describe(status: &Status) -> String {
    use std::error::Error;
    let mut text = format!(
        "rpc error: code = {} desc = {}",
        code_name(status.code()),
        status.message()
    );
    let mut source = status.source();
    while let Some(err) = source {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}

/// The `RetryInfo` delay in a status's details, if the server sent one.
fn retry_delay(status: &Status) -> Option<Duration> {
    use prost::Message;
    let details = status.details();
    if details.is_empty() {
        return None;
    }
    let decoded = rpc::Status::decode(details).ok()?;
    let any = decoded
        .details
        .iter()
        .find(|d| d.type_url == rpc::RETRY_INFO_TYPE)?;
    let info = rpc::RetryInfo::decode(any.value.as_slice()).ok()?;
    let delay = info.retry_delay.unwrap_or_default();
    let secs = u64::try_from(delay.seconds).unwrap_or(0);
    let nanos = u32::try_from(delay.nanos).unwrap_or(0);
    Some(Duration::new(secs, 0).saturating_add(Duration::from_nanos(u64::from(nanos))))
}

/// Upstream's rule: these codes are retried, RESOURCE_EXHAUSTED only when the server sent
/// RetryInfo, everything else is permanent. A connection that failed under a call (surfacing
/// as UNKNOWN with a local cause) is retried like one that could not be made.
fn classify(status: &Status) -> ExportError {
    let message = describe(status);
    let delay = retry_delay(status);
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => delay.is_some(),
        Code::Unknown => is_local_failure(status),
        _ => false,
    };
    if retryable {
        ExportError::Retryable {
            message,
            throttle: delay.filter(|d| !d.is_zero()),
        }
    } else {
        ExportError::Permanent { message }
    }
}

/// Decodes the reply with prost.
struct ProstDecoder<R>(PhantomData<R>);

impl<R: prost::Message + Default> Decoder for ProstDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("invalid response message: {e}")))
    }
}

/// Dials TLS whatever the URI's scheme: tonic itself refuses `https` URIs unless its own TLS
/// is configured, so the channel is given `http://` and this connector adds TLS.
#[derive(Clone)]
struct TlsOnly(HttpsConnector<HttpConnector>);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ConnectFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl tower::Service<Uri> for TlsOnly {
    type Response = <HttpsConnector<HttpConnector> as tower::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = ConnectFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut parts = uri.into_parts();
        parts.scheme = Some(Scheme::HTTPS);
        match Uri::from_parts(parts) {
            Ok(uri) => self.0.call(uri),
            Err(e) => Box::pin(std::future::ready(Err(Box::new(e) as BoxError))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn status_with_retry(code: Code, delay: Option<Duration>) -> Status {
        use prost::Message;
        let details = delay
            .map(|d| vec![rpc::retry_info_any(d)])
            .unwrap_or_default();
        let st = rpc::Status {
            code: code as i32,
            message: "m".into(),
            details,
        };
        Status::with_details(code, "m", st.encode_to_vec().into())
    }

    #[test]
    fn grpc_timeout_takes_the_most_precise_unit_that_fits() {
        let cases = [
            (Duration::from_nanos(1), "1n"),
            (Duration::from_millis(99), "99000000n"),
            (Duration::from_millis(100), "100000u"),
            (Duration::from_secs(5), "5000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(100_000), "100000S"),
            (Duration::from_secs(100_000_000), "1666666M"),
            (Duration::from_secs(6_000_000_000), "1666666H"),
        ];
        for (timeout, header) in cases {
            assert_eq!(
                grpc_timeout(timeout).to_str().unwrap(),
                header,
                "{timeout:?}"
            );
        }
    }

    #[test]
    fn classification_follows_upstream() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(
                matches!(
                    classify(&Status::new(code, "x")),
                    ExportError::Retryable { .. }
                ),
                "{code:?}"
            );
        }
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Internal,
            Code::Unimplemented,
            Code::FailedPrecondition,
            Code::AlreadyExists,
        ] {
            assert!(
                matches!(
                    classify(&Status::new(code, "x")),
                    ExportError::Permanent { .. }
                ),
                "{code:?}"
            );
        }
        assert!(matches!(
            classify(&status_with_retry(Code::ResourceExhausted, None)),
            ExportError::Permanent { .. }
        ));
        assert_eq!(
            classify(&status_with_retry(
                Code::ResourceExhausted,
                Some(Duration::from_millis(1500))
            )),
            ExportError::Retryable {
                message: "rpc error: code = ResourceExhausted desc = m".into(),
                throttle: Some(Duration::from_millis(1500)),
            }
        );
        assert!(matches!(
            classify(&status_with_retry(Code::Unavailable, Some(Duration::from_secs(2)))),
            ExportError::Retryable { throttle: Some(d), .. } if d == Duration::from_secs(2)
        ));
    }
}
