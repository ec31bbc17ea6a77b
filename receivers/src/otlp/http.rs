//! OTLP over HTTP: protobuf and JSON bodies, compressed or not, with the status codes and
//! bodies upstream's receiver answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use ferrotel_pipeline::component::{Accepted, ClientInfo};
use ferrotel_pipeline::compression::{self, DecompressError};
use ferrotel_pipeline::net;
use ferrotel_pipeline::pdata::{
    json, ExportLogsPartialSuccess, ExportLogsServiceResponse, ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse, ExportTracePartialSuccess, ExportTraceServiceResponse, Payload,
    Signal,
};
use ferrotel_pipeline::rpc;

use super::config::{CorsConfig, HttpServerConfig};
use super::Intake;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const UNSUPPORTED_MEDIA: &str =
    "415 unsupported media type, supported: [application/json, application/x-protobuf]";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Proto,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Proto => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

struct Routes {
    traces: String,
    metrics: String,
    logs: String,
}

struct State {
    intake: Intake,
    routes: Routes,
    max_body: usize,
    include_metadata: bool,
    compression: Option<Vec<String>>,
    cors: Option<CorsConfig>,
    response_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Starts serving on `listener`; the task ends once `shutdown` fired and open requests finished.
pub(crate) fn serve(
    config: &HttpServerConfig,
    listener: TcpListener,
    intake: Intake,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, String> {
    let tls = match &config.tls {
        Some(tls) => Some(tokio_rustls::TlsAcceptor::from(
            tls.build(&[b"h2", b"http/1.1"])?,
        )),
        None => None,
    };
    let mut response_headers = Vec::new();
    for (k, v) in &config.response_headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            format!("protocols::http::response_headers: invalid header name \"{k}\"")
        })?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| format!("protocols::http::response_headers: invalid value for \"{k}\""))?;
        response_headers.push((name, value));
    }
    let state = Arc::new(State {
        intake,
        routes: Routes {
            traces: config.traces_url_path.clone(),
            metrics: config.metrics_url_path.clone(),
            logs: config.logs_url_path.clone(),
        },
        max_body: config.max_body_bytes(),
        include_metadata: config.include_metadata,
        compression: config.compression_algorithms.clone(),
        cors: config.cors.clone(),
        response_headers,
    });
    Ok(net::serve_http(
        listener,
        tls,
        move |req, peer| {
            let state = state.clone();
            async move { state.handle(req, peer).await }
        },
        shutdown,
        Duration::from_secs(30),
    ))
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    net::response(status.as_u16(), "text/plain; charset=utf-8", body)
}

fn status_body(
    status: StatusCode,
    encoding: Encoding,
    code: i32,
    message: &str,
) -> Response<Full<Bytes>> {
    let body = match encoding {
        Encoding::Proto => rpc::Status {
            code,
            message: message.to_string(),
            details: Vec::new(),
        }
        .encode_to_vec(),
        Encoding::Json => json::encode_status(code, message),
    };
    net::response(status.as_u16(), encoding.content_type(), body)
}

impl State {
    fn signal_for(&self, path: &str) -> Option<Signal> {
        if path == self.routes.traces {
            Some(Signal::Traces)
        } else if path == self.routes.metrics {
            Some(Signal::Metrics)
        } else if path == self.routes.logs {
            Some(Signal::Logs)
        } else {
            None
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let origin = req.headers().get(http::header::ORIGIN).cloned();
        let mut res = self.route(req, peer).await;
        for (k, v) in &self.response_headers {
            res.headers_mut().insert(k.clone(), v.clone());
        }
        if let (Some(cors), Some(origin)) = (&self.cors, origin) {
            apply_cors_headers(cors, &origin, &mut res);
        }
        res
    }

    async fn route(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let Some(signal) = self
            .signal_for(req.uri().path())
            .filter(|s| self.intake.accepts(*s))
        else {
            return text(StatusCode::NOT_FOUND, "404 page not found");
        };
        if req.method() == Method::OPTIONS {
            if let Some(cors) = &self.cors {
                return preflight(cors, &req);
            }
        }
        if req.method() != Method::POST {
            let mut res = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 method not allowed, supported: [POST]",
            );
            res.headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
            return res;
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let encoding = match content_type.as_str() {
            PROTOBUF => Encoding::Proto,
            JSON => Encoding::Json,
            _ => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_MEDIA),
        };
        let content_encoding = req
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if let Some(allowed) = &self.compression {
            let ce = content_encoding.trim().to_ascii_lowercase();
            if !ce.is_empty()
                && ce != "identity"
                && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&ce))
            {
                return status_body(
                    StatusCode::BAD_REQUEST,
                    encoding,
                    rpc::code::INVALID_ARGUMENT,
                    &format!("unsupported Content-Encoding \"{ce}\""),
                );
            }
        }
        // Refuse a declared oversize body before reading any of it.
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return self.too_large(encoding);
        }
        let client = self.client_info(&req, peer);
        let body = match Limited::new(req.into_body(), self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return self.too_large(encoding);
                }
                debug!(error = %err, "Failed to read request body");
                return status_body(
                    StatusCode::BAD_REQUEST,
                    encoding,
                    rpc::code::INVALID_ARGUMENT,
                    &format!("failed to read request body: {err}"),
                );
            }
        };
        let body = match compression::decompress(&content_encoding, body, self.max_body) {
            Ok(b) => b,
            Err(DecompressError::TooLarge(_)) => return self.too_large(encoding),
            Err(err) => {
                return status_body(
                    StatusCode::BAD_REQUEST,
                    encoding,
                    rpc::code::INVALID_ARGUMENT,
                    &err.to_string(),
                )
            }
        };
        let decoded = match encoding {
            Encoding::Proto => self
                .intake
                .decode_protobuf(signal, body)
                .map_err(|e| format!("failed to unmarshal request body: {e}")),
            Encoding::Json => decode_json(signal, &body),
        };
        let payload = match decoded {
            Ok(p) => p,
            Err(message) => {
                return status_body(
                    StatusCode::BAD_REQUEST,
                    encoding,
                    rpc::code::INVALID_ARGUMENT,
                    &message,
                )
            }
        };
        match self.intake.push(payload, client).await {
            Ok(accepted) => success(signal, encoding, accepted),
            Err(err) => {
                let status = StatusCode::from_u16(err.kind.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let status_msg = rpc::status_for(&err);
                let body = match encoding {
                    Encoding::Proto => status_msg.encode_to_vec(),
                    Encoding::Json => json::encode_status(status_msg.code, &status_msg.message),
                };
                let mut res = net::response(status.as_u16(), encoding.content_type(), body);
                if let (Some(delay), true) = (err.retry_after, matches!(status.as_u16(), 429 | 503))
                {
                    if let Ok(v) =
                        HeaderValue::from_str(&rpc::retry_after_seconds(delay).to_string())
                    {
                        res.headers_mut().insert(http::header::RETRY_AFTER, v);
                    }
                }
                res
            }
        }
    }

    fn too_large(&self, encoding: Encoding) -> Response<Full<Bytes>> {
        let mut res = status_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            rpc::code::INVALID_ARGUMENT,
            &format!(
                "request body is larger than the limit of {} bytes",
                self.max_body
            ),
        );
        // The rest of the body is not read; tell the client the connection ends here.
        res.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        res
    }

    fn client_info<B>(&self, req: &Request<B>, peer: SocketAddr) -> Option<Arc<ClientInfo>> {
        let mut metadata = Vec::new();
        if self.include_metadata {
            for (k, v) in req.headers() {
                if let Ok(v) = v.to_str() {
                    metadata.push((k.as_str().to_string(), v.to_string()));
                }
            }
        }
        Some(Arc::new(ClientInfo {
            addr: Some(peer),
            metadata,
        }))
    }
}

fn decode_json(signal: Signal, body: &[u8]) -> Result<Payload, String> {
    match signal {
        Signal::Traces => json::decode_traces(body).map(Payload::from),
        Signal::Metrics => json::decode_metrics(body).map(Payload::from),
        Signal::Logs => json::decode_logs(body).map(Payload::from),
    }
    .map_err(|e| e.to_string())
}

fn success(signal: Signal, encoding: Encoding, accepted: Accepted) -> Response<Full<Bytes>> {
    let rejected = i64::try_from(accepted.rejected_items).unwrap_or(i64::MAX);
    let partial = rejected > 0;
    let body = match (signal, encoding) {
        (Signal::Traces, enc) => {
            let r = ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: accepted.message,
                }),
            };
            match enc {
                Encoding::Proto => r.encode_to_vec(),
                Encoding::Json => json::encode_traces_response(&r),
            }
        }
        (Signal::Metrics, enc) => {
            let r = ExportMetricsServiceResponse {
                partial_success: partial.then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message: accepted.message,
                }),
            };
            match enc {
                Encoding::Proto => r.encode_to_vec(),
                Encoding::Json => json::encode_metrics_response(&r),
            }
        }
        (Signal::Logs, enc) => {
            let r = ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: accepted.message,
                }),
            };
            match enc {
                Encoding::Proto => r.encode_to_vec(),
                Encoding::Json => json::encode_logs_response(&r),
            }
        }
    };
    net::response(200, encoding.content_type(), body)
}

fn origin_allowed(cors: &CorsConfig, origin: &str) -> bool {
    cors.allowed_origins
        .iter()
        .any(|pattern| match pattern.split_once('*') {
            None => pattern.eq_ignore_ascii_case(origin),
            Some((prefix, suffix)) => {
                origin.len() >= prefix.len() + suffix.len()
                    && origin[..prefix.len()].eq_ignore_ascii_case(prefix)
                    && origin[origin.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        })
}

fn apply_cors_headers(cors: &CorsConfig, origin: &HeaderValue, res: &mut Response<Full<Bytes>>) {
    let Ok(origin_text) = origin.to_str() else {
        return;
    };
    if !origin_allowed(cors, origin_text) {
        return;
    }
    let h = res.headers_mut();
    h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.append(http::header::VARY, HeaderValue::from_static("Origin"));
    if !cors.exposed_headers.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&cors.exposed_headers.join(", ")) {
            h.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }
}

/// Answers a CORS preflight: 204 with what is allowed, or 204 without CORS headers.
fn preflight<B>(cors: &CorsConfig, req: &Request<B>) -> Response<Full<Bytes>> {
    let mut res = net::response(204, "text/plain", Bytes::new());
    let origin = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let method_ok = req
        .headers()
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.eq_ignore_ascii_case("POST"));
    if !method_ok || !origin.is_some_and(|o| origin_allowed(cors, o)) {
        return res;
    }
    let mut allowed: Vec<String> = ["accept", "content-type", "x-requested-with", "origin"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    allowed.extend(cors.allowed_headers.iter().map(|h| h.to_ascii_lowercase()));
    let requested: Vec<String> = req
        .headers()
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let any_header = cors.allowed_headers.iter().any(|h| h == "*");
    if !any_header && requested.iter().any(|h| !allowed.contains(h)) {
        return res;
    }
    let h = res.headers_mut();
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    if !requested.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&requested.join(", ")) {
            h.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
    }
    if cors.max_age > 0 {
        if let Ok(v) = HeaderValue::from_str(&cors.max_age.to_string()) {
            h.insert(http::header::ACCESS_CONTROL_MAX_AGE, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origin_patterns() {
        let cors = CorsConfig {
            allowed_origins: vec![
                "https://*.example.com".into(),
                "http://localhost:3000".into(),
            ],
            ..Default::default()
        };
        assert!(origin_allowed(&cors, "https://app.example.com"));
        assert!(origin_allowed(&cors, "http://localhost:3000"));
        assert!(!origin_allowed(&cors, "https://example.org"));
        assert!(!origin_allowed(&cors, "http://app.example.com"));
    }
}
