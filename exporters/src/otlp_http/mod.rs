//! The `otlp_http` exporter (deprecated alias `otlphttp`): OTLP over HTTP, protobuf or JSON,
//! with the shared queue and retries. Each batch is encoded and compressed once.

mod client;
pub mod config;
mod response;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::header::{
    CONTENT_ENCODING, CONTENT_TYPE, COOKIE, HOST, PROXY_AUTHORIZATION, RETRY_AFTER, USER_AGENT,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;
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

use client::{CookieJar, HttpClient, Proxies};
pub use config::OtlpHttpConfig;
use config::{parse_url, Encoding};

/// Upstream reads at most this much of a response body.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

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
    proxies: Option<Arc<Proxies>>,
    cookies: Option<CookieJar>,
    /// `max_conns_per_host`: requests in flight at once.
    limit: Option<Semaphore>,
    /// Built at start (it reads the TLS files); taken at shutdown.
    client: Mutex<Option<HttpClient>>,
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
        let proxies = Proxies::from_config(&config, id).map(Arc::new);
        let limit = usize::try_from(config.max_conns_per_host)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| Semaphore::new(n.min(Semaphore::MAX_PERMITS)));
        Ok(HttpSender {
            id: id.to_string(),
            cookies: config.cookies_enabled().then(CookieJar::default),
            config,
            destinations,
            headers,
            proxies,
            limit,
            client: Mutex::new(None),
        })
    }

    fn client(&self) -> Result<HttpClient, ExportError> {
        self.client
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| ExportError::retryable("the exporter is not running"))
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
        // A plain-http request through a proxy carries the proxy's credentials itself; an
        // https one gave them in the CONNECT.
        if request.url.scheme_str() == Some("http") {
            if let Some(auth) = self
                .proxies
                .as_ref()
                .and_then(|p| p.intercept(&request.url))
                .and_then(|i| i.basic_auth().cloned())
            {
                headers.insert(PROXY_AUTHORIZATION, auth);
            }
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
    let agent = format!("ferrotel/{}", env!("CARGO_PKG_VERSION"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_str(&agent)
            .map_err(|e| ComponentError::new(format!("user agent: {e}")))?,
    );
    for (name, value) in &config.headers.0 {
        let bad = || ComponentError::new(format!("headers: invalid header \"{name}\""));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| bad())?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    if let Some(encoding) = config.compression.encoding() {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    // hyper derives Host from the URL unless one is given; an explicit Host header wins.
    if let Some(host) = headers.get(HOST) {
        if host.is_empty() {
            headers.remove(HOST);
        }
    }
    Ok(headers)
}

/// The whole error chain, since hyper's own message ("client error (Connect)") says little.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// Reads up to `MAX_RESPONSE_BYTES` of a body; the rest is left unread.
async fn read_limited(body: hyper::body::Incoming) -> Result<Bytes, String> {
    let mut body = body;
    let mut out = BytesMut::new();
    while out.len() < MAX_RESPONSE_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = MAX_RESPONSE_BYTES - out.len();
                    out.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => return Err(chain(&e)),
            None => break,
        }
    }
    Ok(out.freeze())
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
        let client = self.client()?;
        let _permit = match &self.limit {
            Some(limit) => Some(
                limit
                    .acquire()
                    .await
                    .map_err(|_| ExportError::retryable("the exporter is shutting down"))?,
            ),
            None => None,
        };
        let req = self.build_request(request)?;
        let response = client.request(req).await.map_err(|e| {
            ExportError::retryable(format!("failed to make an HTTP request: {}", chain(&e)))
        })?;
        let status = response.status();
        if let Some(jar) = &self.cookies {
            jar.store(&request.url, response.headers());
        }
        let media_type = response::media_type(
            response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(response.into_body()).await;
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
        let client = client::build(&self.config, self.proxies.clone())
            .map_err(|e| ComponentError::new(format!("{}: {e}", self.id)))?;
        if let Ok(mut slot) = self.client.lock() {
            *slot = Some(client);
        }
        Ok(())
    }

    async fn shutdown(&self) {
        if let Ok(mut slot) = self.client.lock() {
            slot.take();
        }
        if let Some(limit) = &self.limit {
            limit.close();
        }
    }
}
