//! The `dynatrace` exporter: metrics as Metrics API v2 lines (or OTLP), traces and logs as
//! OTLP/HTTP protobuf to Dynatrace's OTLP endpoint, from one config block.
//!
//! Monotonic cumulative sums and histograms are converted to delta when they arrive, in the
//! order they arrive, before anything is queued: Dynatrace takes deltas only. The OTLP side
//! is an `otlp_http` exporter built from this block.

pub mod config;
pub mod lines;
pub mod serialize;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Uri};
use http_body_util::Full;
use serde::Deserialize;
use tracing::{debug, warn};

use ferrotel_pipeline::component::{
    config_as, Accepted, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope, Host,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::delta::{DeltaConverter, DeltaSettings, InitialValue};
use ferrotel_pipeline::exporter::config::Headers;
use ferrotel_pipeline::exporter::{ExportError, HelperSettings, QueuedExporter, Sender, Sent};
use ferrotel_pipeline::factory::{decode_config, ExporterFactory, Factory, Stability};
use ferrotel_pipeline::pdata::{Payload, Signal};
use ferrotel_pipeline::ratelimit::LogLimiter;

use crate::http_client::{insert_configured, parse_url, user_agent, PooledClient};
use crate::otlp_http::config::Encoding;
use crate::otlp_http::{OtlpHttpConfig, OtlpHttpExporterFactory};
use crate::parts::{PartBatch, PartOutcome};
pub use config::{DynatraceConfig, MetricsVia};

/// The API's limits on one request.
pub const MAX_LINES: usize = 1000;
pub const MAX_BYTES: usize = 1_000_000;
/// How much of an error body is quoted.
const ERROR_BODY_BYTES: usize = 512;
/// Invalid lines logged per refused request.
const INVALID_LINES_LOGGED: usize = 5;

static INVALID_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(1));

pub struct DynatraceExporterFactory;

impl Factory for DynatraceExporterFactory {
    fn type_name(&self) -> &'static str {
        "dynatrace"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<DynatraceConfig>(value)
    }
}

impl ExporterFactory for DynatraceExporterFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Alpha)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<DynatraceConfig>(config)?.clone();
        let id = settings.id.to_string();
        let token =
            (!config.api_token.is_empty()).then(|| format!("Api-Token {}", config.api_token));
        let otlp = match config.otlp_url() {
            Some(url) => Some(OtlpHttpExporterFactory.create(
                settings.clone(),
                &otlp_config(&config, url, token.as_deref()),
            )?),
            None => None,
        };
        let lines = match config.metrics_via {
            MetricsVia::Lines => {
                let helper = HelperSettings {
                    timeout: config.timeout.get(),
                    retry: config.retry_on_failure.clone(),
                    queue: config.sending_queue.clone(),
                };
                let sender = LineSender::new(&id, &config, token.as_deref())?;
                Some(QueuedExporter::build(
                    &id,
                    &settings.telemetry,
                    helper,
                    sender,
                ))
            }
            MetricsVia::Otlp => None,
        };
        Ok(Arc::new(DynatraceExporter {
            id,
            delta: Mutex::new(DeltaConverter::new(DeltaSettings {
                max_staleness: config.cumulative_max_staleness.get(),
                initial_value: InitialValue::Drop,
            })),
            lines,
            otlp,
        }))
    }
}

/// The `otlp_http` settings the OTLP side runs with.
fn otlp_config(config: &DynatraceConfig, url: String, token: Option<&str>) -> OtlpHttpConfig {
    let mut headers: Vec<(String, String)> = config.headers.0.clone();
    if let Some(token) = token {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        headers.push(("Authorization".to_string(), token.to_string()));
    }
    OtlpHttpConfig {
        endpoint: url,
        // Dynatrace takes binary protobuf only.
        encoding: Encoding::Proto,
        compression: config.compression,
        timeout: config.timeout,
        headers: Headers(headers),
        tls: config.tls.clone(),
        sending_queue: config.sending_queue.clone(),
        retry_on_failure: config.retry_on_failure.clone(),
        proxy_url: config.proxy_url.clone(),
        max_idle_conns: config.max_idle_conns,
        max_idle_conns_per_host: config.max_idle_conns_per_host,
        max_conns_per_host: config.max_conns_per_host,
        idle_conn_timeout: config.idle_conn_timeout,
        http2_read_idle_timeout: config.http2_read_idle_timeout,
        http2_ping_timeout: config.http2_ping_timeout,
        disable_keep_alives: config.disable_keep_alives,
        force_attempt_http2: config.force_attempt_http2,
        ..OtlpHttpConfig::default()
    }
}

/// Routes each signal: metrics to the line protocol or OTLP, traces and logs to OTLP.
pub struct DynatraceExporter {
    id: String,
    delta: Mutex<DeltaConverter>,
    lines: Option<Arc<dyn ConsumerComponent>>,
    otlp: Option<Arc<dyn ConsumerComponent>>,
}

impl DynatraceExporter {
    fn otlp(&self, signal: Signal) -> Result<&Arc<dyn ConsumerComponent>, ConsumeError> {
        self.otlp.as_ref().ok_or_else(|| {
            ConsumeError::permanent(format!(
                "{}: {signal} go to Dynatrace's OTLP endpoint, which cannot be derived from this endpoint: set otlp_endpoint",
                self.id
            ))
        })
    }
}

#[async_trait]
impl Consumer for DynatraceExporter {
    async fn consume(&self, mut envelope: Envelope) -> ConsumeResult {
        let signal = envelope.payload.signal();
        if signal != Signal::Metrics {
            return self.otlp(signal)?.consume(envelope).await;
        }
        let payload = envelope.payload_mut();
        payload
            .decode_in_place()
            .map_err(|e| ConsumeError::invalid(e.to_string()))?;
        if let Payload::Metrics(m) = payload {
            let stats = match self.delta.lock() {
                Ok(mut delta) => {
                    delta.convert(&mut m.0.resource_metrics, SystemTime::now(), &|_| true)
                }
                Err(_) => return Err(ConsumeError::permanent("the delta state is unusable")),
            };
            if stats.dropped_points > 0 {
                debug!(exporter = %self.id, points = stats.dropped_points, "Cumulative points kept as the start of their series (no delta yet), or out of order");
            }
        }
        if payload.is_empty() {
            return Ok(Accepted::default());
        }
        match &self.lines {
            Some(lines) => lines.consume(envelope).await,
            None => self.otlp(signal)?.consume(envelope).await,
        }
    }
}

#[async_trait]
impl Component for DynatraceExporter {
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        if let Some(lines) = &self.lines {
            lines.start(host).await?;
        }
        if let Some(otlp) = &self.otlp {
            otlp.start(host).await?;
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        let mut result = Ok(());
        for part in self.lines.iter().chain(self.otlp.iter()) {
            if let Err(e) = part.shutdown().await {
                result = Err(e);
            }
        }
        result
    }
}

/// The body of a 2xx or 400 answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IngestResponse {
    lines_ok: u64,
    lines_invalid: u64,
    error: Option<IngestError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IngestError {
    message: String,
    invalid_lines: Vec<InvalidLine>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InvalidLine {
    line: u64,
    error: String,
}

/// Sends lines to the metric ingest API.
pub(crate) struct LineSender {
    id: String,
    url: Uri,
    url_text: String,
    headers: HeaderMap,
    settings: lines::Settings,
    client: PooledClient,
}

impl LineSender {
    fn new(
        id: &str,
        config: &DynatraceConfig,
        token: Option<&str>,
    ) -> Result<Self, ComponentError> {
        let url_text = config.metrics_url().to_string();
        let url = parse_url(&url_text)
            .map_err(|e| ComponentError::new(format!("endpoint must be a valid URL: {e}")))?;
        let mut headers = HeaderMap::new();
        insert_configured(&mut headers, &config.headers, |_| false)?;
        // The protocol's own headers win, as upstream forces them.
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        headers.insert(USER_AGENT, user_agent());
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token)
                .map_err(|_| ComponentError::new("api_token holds characters a header cannot"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let mut default_dimensions = serialize::Dimensions::default();
        for (k, v) in config.dimensions() {
            default_dimensions.push(&k, &v);
        }
        Ok(LineSender {
            id: id.to_string(),
            url,
            url_text,
            headers,
            settings: lines::Settings {
                prefix: config.prefix.clone(),
                default_dimensions,
                resource_to_telemetry: config.resource_to_telemetry_conversion.enabled,
            },
            client: PooledClient::new(id, config.connection()),
        })
    }

    /// One request; what became of it.
    async fn post(&self, body: &Bytes, lines: u64) -> PartOutcome {
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .body(Full::new(body.clone()));
        let mut request = match request {
            Ok(r) => r,
            Err(e) => return PartOutcome::Refused(format!("invalid request: {e}")),
        };
        request.headers_mut().extend(self.headers.clone());
        let reply = match self.client.send(request).await {
            Ok(r) => r,
            Err(e) => return PartOutcome::Retry(e),
        };
        let status = reply.status.as_u16();
        let answer = reply.body.unwrap_or_default();
        let parsed: Option<IngestResponse> = serde_json::from_slice(&answer).ok();
        let quoted = || {
            let text = String::from_utf8_lossy(&answer[..answer.len().min(ERROR_BODY_BYTES)]);
            text.trim().to_string()
        };
        match status {
            200..=299 => {
                let r = parsed.unwrap_or_default();
                debug!(exporter = %self.id, lines_ok = r.lines_ok, lines_invalid = r.lines_invalid, "Lines ingested");
                let note = (r.lines_invalid > 0).then(|| {
                    format!(
                        "{} of {lines} lines invalid{}",
                        r.lines_invalid,
                        r.error.map(|e| format!(": {}", e.message)).unwrap_or_default()
                    )
                });
                PartOutcome::Taken {
                    rejected: r.lines_invalid,
                    note,
                }
            }
            400 => {
                // Some lines are invalid: the rest were taken; sending again would not help.
                let r = parsed.unwrap_or_default();
                let error = r.error.unwrap_or_default();
                let rejected = if r.lines_invalid > 0 {
                    r.lines_invalid
                } else if !error.invalid_lines.is_empty() {
                    error.invalid_lines.len() as u64
                } else {
                    lines
                };
                if let Some(skipped) = INVALID_LOG.check() {
                    // `line` indexes the lines of the request, from 0, as upstream reads it.
                    let sent = String::from_utf8_lossy(body);
                    let sent: Vec<&str> = sent.split('\n').collect();
                    for invalid in error.invalid_lines.iter().take(INVALID_LINES_LOGGED) {
                        let text = usize::try_from(invalid.line)
                            .ok()
                            .and_then(|i| sent.get(i))
                            .copied()
                            .unwrap_or("");
                        warn!(exporter = %self.id, line = invalid.line, text, error = %invalid.error, skipped, "Dynatrace refused a line");
                    }
                    warn!(exporter = %self.id, lines_ok = r.lines_ok, lines_invalid = rejected, message = %error.message, "Dynatrace refused some lines (HTTP 400); they are not sent again");
                }
                PartOutcome::Taken {
                    rejected,
                    note: Some(format!(
                        "{rejected} of {lines} lines refused as invalid (HTTP 400): {}",
                        if error.message.is_empty() {
                            quoted()
                        } else {
                            error.message
                        }
                    )),
                }
            }
            401 => PartOutcome::Refused(format!(
                "{} answered HTTP 401: the API token is missing, invalid or expired; check api_token",
                self.url_text
            )),
            403 => PartOutcome::Refused(format!(
                "{} answered HTTP 403: the API token lacks the metrics.ingest scope",
                self.url_text
            )),
            404 => PartOutcome::Refused(format!(
                "{} answered HTTP 404: no metric ingest API there (the metrics ingest v2 module was not found); check endpoint",
                self.url_text
            )),
            413 => PartOutcome::Refused(format!(
                "{} answered HTTP 413: the payload is too large",
                self.url_text
            )),
            429 | 500..=599 => {
                let throttle = reply
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .filter(|d| !d.is_zero());
                PartOutcome::Retry(ExportError::Retryable {
                    message: format!(
                        "{} answered HTTP {status}: {}",
                        self.url_text,
                        quoted()
                    ),
                    throttle,
                })
            }
            other => PartOutcome::Refused(format!(
                "{} answered HTTP {other}: {}",
                self.url_text,
                quoted()
            )),
        }
    }
}

/// Splits lines into request bodies of at most [`MAX_LINES`] lines and [`MAX_BYTES`] bytes,
/// each a slice of the one buffer the lines were written to.
pub fn chunk(lines: lines::Lines) -> Vec<(Bytes, u64)> {
    let text = Bytes::from(lines.text);
    let mut out = Vec::new();
    // The current request: from `start` to the end of its last line.
    let mut start = 0;
    let mut last_end = 0;
    let mut count = 0u64;
    for &end in &lines.ends {
        if count > 0 && (count as usize >= MAX_LINES || end - start > MAX_BYTES) {
            out.push((text.slice(start..last_end), count));
            start = last_end + 1;
            count = 0;
        }
        count += 1;
        last_end = end;
    }
    if count > 0 {
        out.push((text.slice(start..last_end), count));
    }
    out
}

#[async_trait]
impl Sender for LineSender {
    type Request = PartBatch;

    fn prepare(&self, payload: &Payload) -> Result<PartBatch, ExportError> {
        let decoded = payload
            .decoded()
            .map_err(|e| ExportError::permanent(e.to_string()))?;
        let Payload::Metrics(metrics) = &*decoded else {
            return Err(ExportError::permanent(format!(
                "the line protocol carries metrics, not {}",
                payload.signal()
            )));
        };
        let converted = lines::convert(&metrics.0.resource_metrics, &self.settings);
        let drop_message = converted.drop_message();
        let dropped = converted.dropped_points;
        Ok(PartBatch::new(
            chunk(converted),
            false,
            dropped,
            drop_message,
        ))
    }

    async fn send(&self, batch: &PartBatch) -> Result<Sent, ExportError> {
        batch
            .send(1, |part| self.post(&part.body, part.points))
            .await
    }

    async fn start(&self) -> Result<(), ComponentError> {
        self.client.start()
    }

    async fn shutdown(&self) {
        self.client.shutdown();
    }
}
