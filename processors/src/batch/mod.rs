//! The `batch` processor: merges what arrives into larger batches, sent when enough items
//! are pending or when the oldest pending items have waited `timeout`.
//!
//! Unlike upstream's, it keeps backpressure: a batch downstream refuses for now is held and
//! retried, the task stops reading its bounded input meanwhile, and `consume` then tells the
//! receiver to have its client retry.

mod batcher;
pub mod config;

use ferrotel_pipeline::ratelimit::LogLimiter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn, Instrument};

use ferrotel_pipeline::component::{
    config_as, Accepted, ClientInfo, Component, ComponentConfig, ComponentError, ConsumeError,
    ConsumeResult, Consumer, ConsumerComponent, CreateSettings, Envelope, Host,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::pdata::Signal;
use ferrotel_pipeline::telemetry::BatchProcessorMetrics;

use batcher::{Batcher, Item};
pub use batcher::{RETRY_BUDGET, SHUTDOWN_RETRY_BUDGET};
pub use config::BatchConfig;

/// Envelopes (requests, not items) waiting for the batching task. The queue is a hand-off,
/// not a buffer: the task merges much faster than requests arrive unless downstream refuses,
/// and then a short queue makes the refusal reach the receivers quickly. Sixteen absorbs a
/// burst of concurrent requests while the task is busy sending.
pub const QUEUE_CAPACITY: usize = 16;
/// How long `consume` waits for room in a full queue before answering UNAVAILABLE: the
/// configured `timeout`, within these bounds, so a receiver is never held long.
pub const MIN_QUEUE_WAIT: Duration = Duration::from_millis(100);
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Upstream's message when a new metadata value combination would pass the limit.
pub const TOO_MANY_BATCHERS: &str = "too many batcher metadata-value combinations";

/// The values of each metadata key (sorted keys), as a partition's identity. A missing key
/// (no values) and an empty value are different partitions, as upstream has it.
pub(crate) type PartitionKey = Vec<Vec<String>>;

pub struct BatchProcessorFactory;

impl Factory for BatchProcessorFactory {
    fn type_name(&self) -> &'static str {
        "batch"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<BatchConfig>(value)
    }
}

impl ProcessorFactory for BatchProcessorFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<BatchConfig>(config)?;
        Ok(Arc::new(BatchProcessor::new(
            settings, config, signal, next,
        )))
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data (a map of
/// partitions, a handle) is still consistent, so keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the task and the processor share.
pub(crate) struct Shared {
    pub id: String,
    pub signal: Signal,
    pub next: Arc<dyn Consumer>,
    pub metrics: BatchProcessorMetrics,
    pub send_batch_size: usize,
    /// 0: no cap.
    pub max_size: usize,
    pub timeout: Duration,
    /// Send whatever arrives at once (timeout or send_batch_size is 0).
    pub immediate: bool,
    drop_log: LogLimiter,
}

impl Shared {
    /// Drops a batch for good: counted, logged (rate-limited), and its acknowledgements
    /// marked failed so a sender waiting on delivery learns it.
    pub(crate) fn drop_batch(
        &self,
        envelope: &Envelope,
        items: usize,
        error: &ConsumeError,
        why: &str,
    ) {
        self.metrics.dropped_items.inc_by(items as u64);
        envelope.fail(error);
        if let Some(suppressed) = self.drop_log.check() {
            warn!(
                processor = %self.id,
                signal = %self.signal,
                items,
                error = %error,
                dropped_batches_not_logged = suppressed,
                "Dropped a batch: {why}"
            );
        }
    }
}

pub struct BatchProcessor {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Item>,
    /// Taken by the task when it starts (or by shutdown when it never did).
    rx: Mutex<Option<mpsc::Receiver<Item>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
    closing: AtomicBool,
    queue_wait: Duration,
    /// Lower-cased, sorted.
    metadata_keys: Vec<String>,
    cardinality_limit: usize,
    /// The partitions seen so far, with the client info their batches carry downstream.
    partitions: Mutex<HashMap<PartitionKey, Option<Arc<ClientInfo>>>>,
    /// What this instance added to the shared cardinality gauge, taken back at shutdown.
    cardinality_added: AtomicU64,
}

impl BatchProcessor {
    pub fn new(
        settings: CreateSettings,
        config: &BatchConfig,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Self {
        let id = settings.id.to_string();
        let metrics = settings.telemetry.batch_processor(&id, signal);
        let metadata_keys = config.normalized_metadata_keys();
        let cardinality_added = AtomicU64::new(0);
        if metadata_keys.is_empty() {
            // One batcher for everything, as upstream reports it.
            metrics.metadata_cardinality.inc();
            cardinality_added.store(1, Ordering::Relaxed);
        }
        let timeout = config.timeout.get();
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        BatchProcessor {
            shared: Arc::new(Shared {
                id,
                signal,
                next,
                metrics,
                send_batch_size: config.send_batch_size as usize,
                max_size: config.send_batch_max_size as usize,
                timeout,
                immediate: config.sends_immediately(),
                drop_log: LogLimiter::default(),
            }),
            tx,
            rx: Mutex::new(Some(rx)),
            task: Mutex::new(None),
            stop: CancellationToken::new(),
            closing: AtomicBool::new(false),
            queue_wait: timeout.clamp(MIN_QUEUE_WAIT, MAX_QUEUE_WAIT),
            metadata_keys,
            cardinality_limit: config.metadata_cardinality_limit as usize,
            partitions: Mutex::new(HashMap::new()),
            cardinality_added,
        }
    }

    fn shutting_down(&self) -> ConsumeError {
        ConsumeError::unavailable(format!(
            "processor {}: batch processor is shutting down",
            self.shared.id
        ))
    }

    /// The partition an envelope belongs to; a new one is refused past the cardinality limit.
    fn partition_for(
        &self,
        envelope: &Envelope,
    ) -> Result<(PartitionKey, Option<Arc<ClientInfo>>), ConsumeError> {
        if self.metadata_keys.is_empty() {
            return Ok((Vec::new(), None));
        }
        let key: PartitionKey = self
            .metadata_keys
            .iter()
            .map(|k| match &envelope.client {
                Some(client) => client.get(k).map(str::to_string).collect(),
                None => Vec::new(),
            })
            .collect();
        let mut partitions = lock(&self.partitions);
        if let Some(client) = partitions.get(&key) {
            return Ok((key, client.clone()));
        }
        if self.cardinality_limit != 0 && partitions.len() >= self.cardinality_limit {
            return Err(ConsumeError::permanent(TOO_MANY_BATCHERS));
        }
        let metadata = self
            .metadata_keys
            .iter()
            .zip(&key)
            .flat_map(|(k, values)| values.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        let client = Some(Arc::new(ClientInfo {
            addr: None,
            metadata,
        }));
        partitions.insert(key.clone(), client.clone());
        self.shared.metrics.metadata_cardinality.inc();
        self.cardinality_added.fetch_add(1, Ordering::Relaxed);
        Ok((key, client))
    }
}

#[async_trait]
impl Consumer for BatchProcessor {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        if self.closing.load(Ordering::Acquire) {
            return Err(self.shutting_down());
        }
        let items = envelope.payload.item_count();
        if items == 0 {
            // Nothing to batch (upstream drops these too); its acknowledgements resolve now.
            return Ok(Accepted::default());
        }
        let (key, client) = self.partition_for(&envelope)?;
        let item = Item {
            key,
            client,
            items,
            envelope,
        };
        match self.tx.try_send(item) {
            Ok(()) => Ok(Accepted::default()),
            Err(TrySendError::Closed(_)) => Err(self.shutting_down()),
            Err(TrySendError::Full(item)) => {
                match tokio::time::timeout(self.queue_wait, self.tx.send(item)).await {
                    Ok(Ok(())) => Ok(Accepted::default()),
                    Ok(Err(_)) => Err(self.shutting_down()),
                    Err(_) => Err(ConsumeError::unavailable(format!(
                        "processor {}: batch queue is full because downstream is not keeping up; retry later",
                        self.shared.id
                    ))),
                }
            }
        }
    }

    fn accepts_encoded(&self) -> bool {
        self.shared.next.accepts_encoded()
    }
}

#[async_trait]
impl Component for BatchProcessor {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let Some(rx) = lock(&self.rx).take() else {
            return Ok(());
        };
        let span = tracing::info_span!(
            "processor",
            kind = "batch",
            id = %self.shared.id,
            signal = %self.shared.signal
        );
        let batcher = Batcher::new(self.shared.clone(), rx, self.stop.clone());
        *lock(&self.task) = Some(tokio::spawn(batcher.run().instrument(span)));
        Ok(())
    }

    /// Refuses new data, then sends everything pending downstream before returning.
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.closing.store(true, Ordering::Release);
        self.stop.cancel();
        let task = lock(&self.task).take();
        if let Some(task) = task {
            if let Err(err) = task.await {
                error!(processor = %self.shared.id, error = %err, "Batching task failed");
            }
        } else {
            let rx = lock(&self.rx).take();
            if let Some(rx) = rx {
                // Never started: what was queued is still sent, here.
                Batcher::new(self.shared.clone(), rx, self.stop.clone())
                    .run()
                    .await;
            }
        }
        let added = self.cardinality_added.swap(0, Ordering::Relaxed);
        self.shared
            .metrics
            .metadata_cardinality
            .sub(i64::try_from(added).unwrap_or(i64::MAX));
        Ok(())
    }
}
