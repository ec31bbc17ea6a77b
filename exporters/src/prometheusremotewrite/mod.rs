//! The `prometheusremotewrite` exporter: sends metrics to a Prometheus remote write 1.0
//! endpoint (Prometheus, Mimir, Cortex, Thanos, VictoriaMetrics ...), named as the
//! Collector names them. Each batch is converted once, split into requests of at most
//! `max_batch_size_bytes`, and each request encoded and compressed once; a retry resends
//! only the requests not yet taken.

mod batch;
pub mod config;
mod convert;
mod proto;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::Full;
use tracing::{debug, warn};

use ferrotel_pipeline::component::{
    config_as, ComponentConfig, ComponentError, ConsumerComponent, CreateSettings,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::exporter::{ExportError, HelperSettings, QueuedExporter, Sender, Sent};
use ferrotel_pipeline::factory::{decode_config, ExporterFactory, Factory, Stability};
use ferrotel_pipeline::pdata::{Payload, Signal};
use ferrotel_pipeline::prometheus::MetricNamer;
use ferrotel_pipeline::telemetry::RemoteWriteMetrics;

use crate::http_client::{insert_configured, parse_url, user_agent, PooledClient};
use crate::parts::{PartBatch, PartOutcome};
pub use config::RemoteWriteConfig;
use convert::Settings;

/// The protocol's own headers, which configured `headers` cannot replace.
const VERSION_HEADER: &str = "x-prometheus-remote-write-version";
const PROTOCOL_VERSION: &str = "0.1.0";
const PROTOBUF: &str = "application/x-protobuf";
/// The part of an error body quoted in the error, as upstream quotes it.
const ERROR_BODY_BYTES: usize = 256;

pub struct PrometheusRemoteWriteExporterFactory;

impl Factory for PrometheusRemoteWriteExporterFactory {
    fn type_name(&self) -> &'static str {
        "prometheusremotewrite"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<RemoteWriteConfig>(value)
    }
}

impl ExporterFactory for PrometheusRemoteWriteExporterFactory {
    fn stability(&self, signal: Signal) -> Option<Stability> {
        (signal == Signal::Metrics).then_some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<RemoteWriteConfig>(config)?.clone();
        let id = settings.id.to_string();
        let helper = HelperSettings {
            // The timeout bounds each HTTP request (as upstream's client timeout does), not
            // an attempt, which may send several.
            timeout: Duration::ZERO,
            retry: config.retry_on_failure.clone(),
            queue: config.sending_queue(),
        };
        let metrics = settings.telemetry.remote_write(&id);
        let sender = RemoteWriteSender::new(&id, config, metrics)?;
        Ok(QueuedExporter::build(
            &id,
            &settings.telemetry,
            helper,
            sender,
        ))
    }
}

/// A batch converted, split and compressed, ready for every attempt.
pub(crate) type WriteBatch = PartBatch;

struct RemoteWriteSender {
    id: String,
    url: Uri,
    url_text: String,
    settings: Settings,
    max_bytes: usize,
    concurrency: usize,
    timeout: Duration,
    headers: HeaderMap,
    client: PooledClient,
    metrics: RemoteWriteMetrics,
}

/// Whether a configured header is one the protocol sets.
fn is_protocol_header(name: &str) -> bool {
    [
        CONTENT_ENCODING.as_str(),
        CONTENT_TYPE.as_str(),
        USER_AGENT.as_str(),
        VERSION_HEADER,
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// The configured headers, then the protocol's, which always win (upstream documents them as
/// not configurable; a configured one is ignored with a warning).
fn request_headers(id: &str, config: &RemoteWriteConfig) -> Result<HeaderMap, ComponentError> {
    let mut headers = HeaderMap::new();
    insert_configured(&mut headers, &config.headers, |name| {
        let protocol = is_protocol_header(name);
        if protocol {
            warn!(exporter = %id, header = %name, "Ignoring a configured header that the remote write protocol sets itself");
        }
        protocol
    })?;
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    headers.insert(
        HeaderName::from_static(VERSION_HEADER),
        HeaderValue::from_static(PROTOCOL_VERSION),
    );
    headers.insert(USER_AGENT, user_agent());
    Ok(headers)
}

impl RemoteWriteSender {
    fn new(
        id: &str,
        config: RemoteWriteConfig,
        metrics: RemoteWriteMetrics,
    ) -> Result<Self, ComponentError> {
        let url = parse_url(&config.endpoint)
            .map_err(|e| ComponentError::new(format!("endpoint must be a valid URL: {e}")))?;
        let external_labels = config.external_label_pairs().map_err(ComponentError::new)?;
        let headers = request_headers(id, &config)?;
        let conversion = &config.resource_to_telemetry_conversion;
        Ok(RemoteWriteSender {
            id: id.to_string(),
            url,
            url_text: config.endpoint.clone(),
            settings: Settings {
                namer: MetricNamer::new(&config.namespace, config.add_metric_suffixes),
                external_labels,
                target_info: config.target_info.enabled,
                resource_to_labels: conversion
                    .enabled
                    .then_some(conversion.exclude_service_attributes),
            },
            max_bytes: usize::try_from(config.max_batch_size_bytes).unwrap_or(usize::MAX),
            concurrency: config.concurrency(),
            timeout: config.timeout.get(),
            headers,
            client: PooledClient::new(id, config.connection()),
            metrics,
        })
    }

    /// One HTTP request, bounded by `timeout`.
    async fn post(&self, body: &Bytes) -> Result<(), ExportError> {
        let attempt = self.post_once(body);
        if self.timeout.is_zero() {
            return attempt.await;
        }
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ExportError::retryable(format!(
                "request to {} timed out after {:?}",
                self.url_text, self.timeout
            ))),
        }
    }

    async fn post_once(&self, body: &Bytes) -> Result<(), ExportError> {
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .body(Full::new(body.clone()))
            .map_err(|e| ExportError::permanent(format!("invalid request: {e}")))?;
        request.headers_mut().extend(self.headers.clone());
        let reply = self.client.send(request).await?;
        let status = reply.status;
        if status.is_success() {
            return Ok(());
        }
        let retry_after = reply
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = reply.body.unwrap_or_default();
        let quoted = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)]);
        let message = format!(
            "remote write returned HTTP status {status}: {}",
            quoted.trim()
        );
        debug!(exporter = %self.id, status = status.as_u16(), "Request refused");
        // 5xx: the receiver may take it later; 429: it asks to slow down (the spec allows a
        // retry). Any other answer would be the same next time.
        if status.is_server_error() || status.as_u16() == 429 {
            Err(ExportError::Retryable {
                message,
                throttle: retry_after.filter(|d| !d.is_zero()),
            })
        } else {
            Err(ExportError::Permanent { message })
        }
    }
}

#[async_trait]
impl Sender for RemoteWriteSender {
    type Request = WriteBatch;

    fn prepare(&self, payload: &Payload) -> Result<WriteBatch, ExportError> {
        let decoded = payload
            .decoded()
            .map_err(|e| ExportError::permanent(e.to_string()))?;
        let Payload::Metrics(metrics) = &*decoded else {
            return Err(ExportError::permanent(format!(
                "the prometheusremotewrite exporter takes metrics, not {}",
                payload.signal()
            )));
        };
        let conversion = convert::convert(&metrics.0.resource_metrics, &self.settings);
        self.metrics
            .translated_time_series
            .inc_by(conversion.series.len() as u64);
        if conversion.dropped_points > 0 {
            self.metrics.failed_translations.inc();
        }
        let mut drop_message = conversion.drop_message();
        let mut dropped_points = conversion.dropped_points;
        let plan = batch::plan(conversion.series, self.max_bytes);
        if plan.refused_series > 0 {
            dropped_points += plan.refused_points;
            let note = format!(
                "{} series larger than max_batch_size_bytes ({}) with a single sample dropped",
                plan.refused_series, self.max_bytes
            );
            drop_message = if drop_message.is_empty() {
                note
            } else {
                format!("{drop_message}; {note}")
            };
        }
        let parts = plan
            .requests
            .iter()
            .map(|(request, points)| {
                Ok((
                    batch::encode(request).map_err(ExportError::permanent)?,
                    *points,
                ))
            })
            .collect::<Result<Vec<_>, ExportError>>()?;
        Ok(PartBatch::new(
            parts,
            plan.split_series,
            dropped_points,
            drop_message,
        ))
    }

    async fn send(&self, batch: &WriteBatch) -> Result<Sent, ExportError> {
        batch
            .send(self.concurrency, |part| async move {
                match self.post(&part.body).await {
                    Ok(()) => PartOutcome::Taken {
                        rejected: 0,
                        note: None,
                    },
                    Err(ExportError::Permanent { message }) => PartOutcome::Refused(message),
                    Err(err) => PartOutcome::Retry(err),
                }
            })
            .await
    }

    async fn start(&self) -> Result<(), ComponentError> {
        self.client.start()
    }

    async fn shutdown(&self) {
        self.client.shutdown();
    }
}

#[cfg(test)]
mod tests;
