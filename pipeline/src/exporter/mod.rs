//! What every exporter shares: a bounded sending queue, retries with backoff, per-attempt
//! timeouts, failure classification and the `otelcol_exporter_*` metrics. An exporter
//! supplies a [`Sender`] (encode a batch once, send it once); [`QueuedExporter`] does the rest.

pub mod config;
mod queue;
pub mod retry;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::component::{
    Accepted, Component, ComponentError, ConsumeError, ConsumeResult, Consumer, ConsumerComponent,
    Envelope, Host,
};
use crate::pdata::Payload;
use crate::ratelimit::LogLimiter;
use crate::telemetry::{ExporterMetrics, Telemetry};
use config::{QueueSettings, RetrySettings, Sizer};
use queue::{PushError, Queue, Queued};
use retry::Backoff;

/// How long shutdown waits for the queue to drain before dropping what is left.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(25);

/// Why one attempt failed, classified by the OTLP rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// Worth another attempt (network errors, 429/502/503/504, UNAVAILABLE, ...);
    /// `throttle` is the wait the destination asked for, if it did.
    #[error("{message}")]
    Retryable {
        message: String,
        throttle: Option<Duration>,
    },
    /// Another attempt would fail the same way (400, 401, 403, INVALID_ARGUMENT, ...).
    #[error("{message}")]
    Permanent { message: String },
}

impl ExportError {
    pub fn retryable(message: impl Into<String>) -> Self {
        ExportError::Retryable {
            message: message.into(),
            throttle: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ExportError::Permanent {
            message: message.into(),
        }
    }
}

/// What the destination reported about a request it took: items it rejected anyway (OTLP
/// partial success). Rejected items are never retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub rejected_items: u64,
    pub message: String,
}

/// The part of an exporter that talks to its destination.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// A batch ready to send (encoded and compressed), reused by every retry.
    type Request: Send + Sync;

    /// Encodes a batch once.
    fn prepare(&self, payload: &Payload) -> Result<Self::Request, ExportError>;

    /// One attempt.
    async fn send(&self, request: &Self::Request) -> Result<Sent, ExportError>;

    /// Whether [`Sender::prepare`] takes batches still encoded as protobuf without decoding
    /// them (see [`crate::component::Consumer::accepts_encoded`]).
    fn accepts_encoded(&self) -> bool {
        false
    }

    async fn start(&self) -> Result<(), ComponentError> {
        Ok(())
    }

    async fn shutdown(&self) {}
}

/// The shared settings of an exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct HelperSettings {
    /// Per attempt; zero means no limit.
    pub timeout: Duration,
    pub retry: RetrySettings,
    pub queue: QueueSettings,
}

struct Inner<S: Sender> {
    id: String,
    sender: S,
    settings: HelperSettings,
    metrics: ExporterMetrics,
    /// Cancelled when shutdown's drain deadline passes: retries stop and what is left is dropped.
    abort: CancellationToken,
    drop_log: LogLimiter,
    full_log: LogLimiter,
}

/// An exporter built from a [`Sender`]: a consumer that queues, retries and counts.
pub struct QueuedExporter<S: Sender> {
    inner: Arc<Inner<S>>,
    queue: Option<Arc<Queue>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl<S: Sender> QueuedExporter<S> {
    pub fn new(id: &str, telemetry: &Telemetry, settings: HelperSettings, sender: S) -> Self {
        let metrics = telemetry.exporter(id);
        let queue = if settings.queue.enabled {
            metrics
                .queue_capacity
                .set(i64::try_from(settings.queue.queue_size).unwrap_or(i64::MAX));
            Some(Arc::new(Queue::new(
                settings.queue.queue_size,
                metrics.queue_size.clone(),
            )))
        } else {
            None
        };
        QueuedExporter {
            inner: Arc::new(Inner {
                id: id.to_string(),
                sender,
                settings,
                metrics,
                abort: CancellationToken::new(),
                drop_log: LogLimiter::default(),
                full_log: LogLimiter::default(),
            }),
            queue,
            workers: Mutex::new(Vec::new()),
        }
    }

    /// Builds the exporter as the component the engine runs.
    pub fn build(
        id: &str,
        telemetry: &Telemetry,
        settings: HelperSettings,
        sender: S,
    ) -> Arc<dyn ConsumerComponent> {
        Arc::new(Self::new(id, telemetry, settings, sender))
    }

    fn size_of(&self, envelope: &Envelope) -> u64 {
        match self.inner.settings.queue.sizer {
            Sizer::Requests => 1,
            Sizer::Items => envelope.payload.item_count() as u64,
            Sizer::Bytes => envelope.payload.encoded_len() as u64,
        }
    }
}

impl<S: Sender> Inner<S> {
    /// Sends one batch, retrying what is retryable, and counts the outcome. The caller owns
    /// the envelope's acks: a queue worker fails them, a synchronous caller passes the error up.
    async fn deliver(&self, envelope: &Envelope) -> ConsumeResult {
        let signal = envelope.payload.signal();
        let items = envelope.payload.item_count();
        let result = {
            // A guard, so a caller that gives up (a client disconnecting) still decrements.
            let _in_flight = InFlight::new(&self.metrics.in_flight_requests);
            self.attempts(envelope).await
        };
        match &result {
            Ok(accepted) => {
                let rejected = usize::try_from(accepted.rejected_items)
                    .unwrap_or(items)
                    .min(items);
                self.metrics.sent.add(signal, items - rejected);
                self.metrics.send_failed.add(signal, rejected);
            }
            Err(_) => self.metrics.send_failed.add(signal, items),
        }
        result
    }

    async fn attempts(&self, envelope: &Envelope) -> ConsumeResult {
        let items = envelope.payload.item_count();
        let kind = envelope.payload.signal().item_name();
        if self.abort.is_cancelled() {
            return Err(self.dropped(
                items,
                kind,
                "the shutdown deadline passed before it was sent",
            ));
        }
        let request = match self.sender.prepare(&envelope.payload) {
            Ok(r) => r,
            Err(err) => {
                error!(exporter = %self.id, error = %err, dropped_items = items, "Exporting failed. Dropping data: it could not be encoded.");
                return Err(ConsumeError::permanent(err.to_string()));
            }
        };
        let retry = &self.settings.retry;
        let mut backoff = Backoff::new(retry);
        let started = tokio::time::Instant::now();
        loop {
            let attempt = async {
                let attempt = self.sender.send(&request);
                if self.settings.timeout.is_zero() {
                    attempt.await
                } else {
                    match tokio::time::timeout(self.settings.timeout, attempt).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err(ExportError::retryable(format!(
                            "request timed out after {:?}",
                            self.settings.timeout
                        ))),
                    }
                }
            };
            // The shutdown deadline cuts an attempt short too, not only the waits between.
            let outcome = tokio::select! {
                outcome = attempt => outcome,
                _ = self.abort.cancelled() => {
                    return Err(self.dropped(items, kind, "the shutdown deadline passed while sending"));
                }
            };
            match outcome {
                Ok(sent) => {
                    if sent.rejected_items > 0 {
                        warn!(exporter = %self.id, dropped_items = sent.rejected_items, kind, message = %sent.message, "Partial success response");
                    }
                    return Ok(Accepted {
                        rejected_items: sent.rejected_items,
                        message: sent.message,
                    });
                }
                Err(ExportError::Permanent { message }) => {
                    if let Some(skipped) = self.drop_log.check() {
                        error!(exporter = %self.id, error = %message, dropped_items = items, kind, similar_errors_skipped = skipped, "Exporting failed. Dropping data: the error is permanent and will not be retried.");
                    }
                    return Err(ConsumeError::permanent(message));
                }
                Err(ExportError::Retryable { message, throttle }) => {
                    if !retry.enabled {
                        if let Some(skipped) = self.drop_log.check() {
                            error!(exporter = %self.id, error = %message, dropped_items = items, kind, similar_errors_skipped = skipped, "Exporting failed. Dropping data: retry_on_failure is disabled.");
                        }
                        return Err(ConsumeError::unavailable(message));
                    }
                    let Some(wait) = backoff.next(started.elapsed(), throttle) else {
                        if let Some(skipped) = self.drop_log.check() {
                            error!(exporter = %self.id, error = %message, dropped_items = items, kind, similar_errors_skipped = skipped, "Exporting failed. No more retries left. Dropping data.");
                        }
                        return Err(ConsumeError::unavailable(format!(
                            "no more retries left: {message}"
                        )));
                    };
                    info!(exporter = %self.id, error = %message, interval = ?wait, "Exporting failed. Will retry the request after interval.");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.abort.cancelled() => {
                            return Err(self.dropped(items, kind, "the shutdown deadline passed while retrying"));
                        }
                    }
                }
            }
        }
    }

    fn dropped(&self, items: usize, kind: &str, why: &str) -> ConsumeError {
        if let Some(skipped) = self.drop_log.check() {
            error!(exporter = %self.id, dropped_items = items, kind, similar_errors_skipped = skipped, "Dropping data: {why}");
        }
        ConsumeError::unavailable(format!("exporter {}: {why}", self.id))
    }
}

#[async_trait]
impl<S: Sender> Consumer for QueuedExporter<S> {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        let Some(queue) = &self.queue else {
            return self.inner.deliver(&envelope).await;
        };
        let signal = envelope.payload.signal();
        let items = envelope.payload.item_count();
        let size = self.size_of(&envelope);
        let (done, wait) = if self.inner.settings.queue.wait_for_result {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let item = Queued {
            envelope,
            size,
            done,
        };
        match queue.push(item, self.inner.settings.queue.blocks()).await {
            Ok(()) => {}
            Err((item, reason)) => {
                self.inner.metrics.enqueue_failed.add(signal, items);
                let message = match reason {
                    PushError::Full => "sending queue is full",
                    PushError::Closed => "the exporter is shutting down",
                    PushError::TooLarge => "the request is larger than the whole sending queue",
                };
                if let Some(skipped) = self.inner.full_log.check() {
                    error!(exporter = %self.inner.id, dropped_items = items, kind = signal.item_name(), similar_errors_skipped = skipped, "Dropping data because {message}");
                }
                let err = match reason {
                    PushError::TooLarge => ConsumeError::permanent(message),
                    _ => ConsumeError::unavailable(message),
                };
                // Refused, not taken: the caller decides what becomes of the data and its acks.
                drop(item);
                return Err(err);
            }
        }
        match wait {
            Some(rx) => rx.await.unwrap_or_else(|_| {
                Err(ConsumeError::unavailable(
                    "the exporter stopped before sending",
                ))
            }),
            None => Ok(Accepted::default()),
        }
    }

    fn accepts_encoded(&self) -> bool {
        self.inner.sender.accepts_encoded()
    }
}

#[async_trait]
impl<S: Sender> Component for QueuedExporter<S> {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        self.inner.sender.start().await?;
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let mut workers = Vec::new();
        for _ in 0..self.inner.settings.queue.num_consumers {
            let queue = queue.clone();
            let inner = self.inner.clone();
            workers.push(tokio::spawn(async move {
                while let Some(item) = queue.pop().await {
                    let result = inner.deliver(&item.envelope).await;
                    finish(item, result);
                }
            }));
        }
        if let Ok(mut slot) = self.workers.lock() {
            *slot = workers;
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        if let Some(queue) = &self.queue {
            queue.close();
            // Whatever happens to this future (finished, or dropped at the service's own
            // deadline), what could not be sent is counted and its acks failed.
            let _leftovers = Leftovers {
                inner: &self.inner,
                queue,
            };
            let workers: Vec<JoinHandle<()>> = match self.workers.lock() {
                Ok(mut w) => w.drain(..).collect(),
                Err(_) => Vec::new(),
            };
            let all = futures::future::join_all(workers);
            tokio::pin!(all);
            if tokio::time::timeout(DRAIN_DEADLINE, &mut all)
                .await
                .is_err()
            {
                warn!(exporter = %self.inner.id, queued = queue.used(), "The sending queue did not drain in time; dropping what is left");
                self.inner.abort.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
            }
        }
        self.inner.sender.shutdown().await;
        Ok(())
    }
}

/// Answers a queued batch's waiting sender, or (when nobody waits) records a loss on its acks.
fn finish(item: Queued, result: ConsumeResult) {
    match item.done {
        // The sender waits: it owns the outcome, acks included.
        Some(done) => {
            if let Err(Err(err)) = done.send(result) {
                item.envelope.fail(&err);
            }
        }
        // The sender was answered when the batch was queued: the acks carry the loss.
        None => {
            if let Err(err) = &result {
                item.envelope.fail(err);
            }
        }
    }
}

/// Keeps `otelcol_exporter_in_flight_requests` right however an attempt ends.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// At the end of shutdown: stops every retry and counts what is still queued as dropped.
struct Leftovers<'a, S: Sender> {
    inner: &'a Arc<Inner<S>>,
    queue: &'a Queue,
}

impl<S: Sender> Drop for Leftovers<'_, S> {
    fn drop(&mut self) {
        self.inner.abort.cancel();
        let left = self.queue.drain_all();
        if left.is_empty() {
            return;
        }
        let mut dropped = 0usize;
        let err = ConsumeError::unavailable(format!(
            "exporter {}: dropped at shutdown before it was sent",
            self.inner.id
        ));
        for item in left {
            let signal = item.envelope.payload.signal();
            let items = item.envelope.payload.item_count();
            self.inner.metrics.send_failed.add(signal, items);
            dropped += items;
            finish(item, Err(err.clone()));
        }
        error!(exporter = %self.inner.id, dropped_items = dropped, "Dropping data still queued at shutdown");
    }
}

#[cfg(test)]
mod tests;
