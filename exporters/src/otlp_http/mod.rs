//! The `otlp_http` exporter (deprecated alias `otlphttp`): OTLP over HTTP, protobuf or JSON,
//! with the shared queue and retries. Each batch is encoded and compressed once.

pub mod config;
mod cookies;
mod response;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, COOKIE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Uri};
use http_body_util::Full;
use tracing::debug;

use ferrotel_pipeline::component::{
    config_as, ComponentConfig, ComponentError, ConsumerComponent, CreateSettings,
};
use ferrotel_pipeline::compression;
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::exporter::{ExportError, HelperSettings, QueuedExporter, Sender, Sent};
use ferrotel_pipeline::factory::{decode_config, ExporterFactory, Factory, Stability};
use ferrotel_pipeline::pdata::{Payload, Signal};

use crate::http_client::{insert_configured, parse_url, user_agent, PooledClient};
use config::Encoding;
pub use config::OtlpHttpConfig;
use cookies::CookieJar;

pub struct OtlpHttpExporterFactory;

impl Factory for OtlpHttpExporterFactory {
    fn type_name(&self) -> &'static str {
        "otlp_http"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<OtlpHttpConfig>(value)
    }
}

impl ExporterFactory for OtlpHttpExporterFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Stable)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<OtlpHttpConfig>(config)?.clone();
        let id = settings.id.to_string();
        let helper = HelperSettings {
            timeout: config.timeout.get(),
            retry: config.retry_on_failure.clone(),
            queue: config.sending_queue.clone(),
        };
        let sender = HttpSender::new(&id, config)?;
        Ok(QueuedExporter::build(
            &id,
            &settings.telemetry,
            helper,
            sender,
        ))
    }
}

/// Where a signal goes: its URL, or why it has none.
type Destination = Result<(Uri, String), String>;

/// A batch encoded and compressed, ready for every attempt.
pub struct HttpRequest {
    signal: Signal,
    url: Uri,
    url_text: String,
    body: Bytes,
}

struct HttpSender {
    id: String,
    config: OtlpHttpConfig,
    destinations: [Destination; 3],
    headers: HeaderMap,
    cookies: Option<CookieJar>,
    client: PooledClient,
}

fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl HttpSender {
    fn new(id: &str, config: OtlpHttpConfig) -> Result<Self, ComponentError> {
        let destinations = Signal::ALL.map(|signal| {
            let text = config.signal_url(signal)?;
            let uri = parse_url(&text)
                .map_err(|e| format!("{signal}_endpoint must be a valid URL: {e}"))?;
            Ok((uri, text))
        });
        let headers = request_headers(&config)?;
        Ok(HttpSender {
            id: id.to_string(),
            cookies: config.cookies_enabled().then(CookieJar::default),
            client: PooledClient::new(id, config.connection()),
            config,
            destinations,
            headers,
        })
    }

    fn build_request(
        &self,
        request: &HttpRequest,
    ) -> Result<http::Request<Full<Bytes>>, ExportError> {
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri(request.url.clone())
            .body(Full::new(request.body.clone()))
            .map_err(|e| ExportError::permanent(format!("invalid request: {e}")))?;
        let headers = req.headers_mut();
        headers.extend(self.headers.clone());
        if let Some(cookie) = self.cookies.as_ref().and_then(|j| j.header(&request.url)) {
            headers.insert(COOKIE, cookie);
        }
        Ok(req)
    }
}

/// Content-Type and User-Agent, then the configured headers (which may override both, as
/// upstream's do), then Content-Encoding.
fn request_headers(config: &OtlpHttpConfig) -> Result<HeaderMap, ComponentError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(config.encoding.content_type()),
    );
    headers.insert(USER_AGENT, user_agent());
    insert_configured(&mut headers, &config.headers, |_| false)?;
    if let Some(encoding) = config.compression.encoding() {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    Ok(headers)
}

#[async_trait]
impl Sender for HttpSender {
    type Request = HttpRequest;

    fn prepare(&self, payload: &Payload) -> Result<HttpRequest, ExportError> {
        let signal = payload.signal();
        let (url, url_text) = self.destinations[signal_index(signal)]
            .clone()
            .map_err(ExportError::permanent)?;
        let compressed = |parts: &[Bytes]| {
            compression::compress_parts(self.config.compression.encoding(), parts)
                .map_err(|e| ExportError::permanent(format!("compression: {e}")))
        };
        let body = match (self.config.encoding, self.config.compression.encoding()) {
            (Encoding::Proto, None) => payload.to_protobuf(),
            // An encoded batch's entries go to the compressor as they are.
            (Encoding::Proto, Some(_)) => compressed(&payload.to_protobuf_chunks())?,
            (Encoding::Json, encoding) => {
                let json = payload
                    .to_json()
                    .map_err(|e| ExportError::permanent(format!("OTLP/JSON encoding: {e}")))?;
                match encoding {
                    None => json,
                    Some(_) => compressed(&[Bytes::from(json)])?,
                }
            }
        };
        Ok(HttpRequest {
            signal,
            url,
            url_text,
            body: Bytes::from(body),
        })
    }

    fn accepts_encoded(&self) -> bool {
        self.config.encoding == Encoding::Proto
    }

    async fn send(&self, request: &HttpRequest) -> Result<Sent, ExportError> {
        let reply = self.client.send(self.build_request(request)?).await?;
        let status = reply.status;
        if let Some(jar) = &self.cookies {
            jar.store(&request.url, &reply.headers);
        }
        let media_type = response::media_type(
            reply
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let retry_after = reply
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = reply.body;
        let code = status.as_u16();
        if status.is_success() {
            let body = body.map_err(|e| {
                ExportError::retryable(format!("failed to read the response body: {e}"))
            })?;
            return response::partial_success(request.signal, &media_type, &body);
        }
        let body = body.unwrap_or_default();
        let message = response::error_message(
            &request.url_text,
            code,
            response::error_status(&media_type, &body),
        );
        debug!(exporter = %self.id, status = code, "Request refused");
        match code {
            429 | 502 | 503 | 504 => {
                let throttle = if matches!(code, 429 | 503) {
                    retry_after
                        .as_deref()
                        .and_then(|v| response::retry_after(v, SystemTime::now()))
                } else {
                    None
                };
                Err(ExportError::Retryable {
                    message,
                    throttle: throttle.filter(|d| !d.is_zero()),
                })
            }
            _ => Err(ExportError::Permanent { message }),
        }
    }

    async fn start(&self) -> Result<(), ComponentError> {
        self.client.start()
    }

    async fn shutdown(&self) {
        self.client.shutdown();
    }
}
