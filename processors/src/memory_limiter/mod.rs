//! The `memory_limiter` processor: refuses data while the process uses too much memory, so
//! senders retry later instead of the agent running out of memory.
//!
//! A background task measures memory every `check_interval` and sets a flag that `consume`
//! reads; refusing costs one atomic load and leaves the data untouched.

pub mod config;
pub mod memory;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use ferrotel_pipeline::component::{
    config_as, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult, Consumer,
    ConsumerComponent, CreateSettings, Envelope, Host,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::pdata::Signal;
use ferrotel_pipeline::telemetry::MemoryLimiterMetrics;

pub use config::{Limits, MemoryLimiterConfig};
pub use memory::{MemorySource, ProcessMemory, ProcessRss, TotalMemory};

/// Upstream's refusal message (a retryable error: gRPC UNAVAILABLE, HTTP 503).
pub const DATA_REFUSED: &str = "data refused due to high memory usage";

const MIB: u64 = 1024 * 1024;

pub struct MemoryLimiterFactory;

impl Factory for MemoryLimiterFactory {
    fn type_name(&self) -> &'static str {
        "memory_limiter"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<MemoryLimiterConfig>(value)
    }
}

impl ProcessorFactory for MemoryLimiterFactory {
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
        let config = config_as::<MemoryLimiterConfig>(config)?;
        let limits = Limits::from_config(config, || TotalMemory::default().total_bytes())
            .map_err(ComponentError::new)?;
        Ok(Arc::new(MemoryLimiter::new(
            settings,
            config.check_interval.get(),
            limits,
            Arc::new(ProcessMemory),
            signal,
            next,
        )))
    }
}

/// A poisoned lock only means another thread panicked while holding it; a task handle is
/// still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the measuring task and `consume` share.
struct Gauge {
    id: String,
    limits: Limits,
    source: Arc<dyn MemorySource>,
    refusing: AtomicBool,
}

impl Gauge {
    /// Measures once and updates the flag; logs when refusing starts or ends.
    fn check(&self) -> bool {
        let Some(used) = self.source.used_bytes() else {
            return self.refusing.load(Ordering::Relaxed);
        };
        let above = used >= self.limits.soft;
        let was = self.refusing.swap(above, Ordering::Relaxed);
        if above && !was {
            warn!(
                processor = %self.id,
                cur_mem_mib = used / MIB,
                soft_limit_mib = self.limits.soft / MIB,
                "Memory usage is above soft limit. Refusing data."
            );
        } else if was && !above {
            info!(
                processor = %self.id,
                cur_mem_mib = used / MIB,
                "Memory usage back within limits. Resuming normal operation."
            );
        }
        above
    }
}

pub struct MemoryLimiter {
    gauge: Arc<Gauge>,
    check_interval: Duration,
    signal: Signal,
    next: Arc<dyn Consumer>,
    metrics: MemoryLimiterMetrics,
    task: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl MemoryLimiter {
    /// A limiter measuring `source` against `limits` every `check_interval` once started.
    pub fn new(
        settings: CreateSettings,
        check_interval: Duration,
        limits: Limits,
        source: Arc<dyn MemorySource>,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Self {
        let id = settings.id.to_string();
        MemoryLimiter {
            metrics: settings.telemetry.memory_limiter(&id),
            gauge: Arc::new(Gauge {
                id,
                limits,
                source,
                refusing: AtomicBool::new(false),
            }),
            // A zero interval would spin; validation refuses it, this guards direct callers.
            check_interval: check_interval.max(Duration::from_millis(1)),
            signal,
            next,
            task: Mutex::new(None),
        }
    }

    /// Measures now (as the task does every interval); true when data is being refused.
    pub fn check_now(&self) -> bool {
        self.gauge.check()
    }

    pub fn is_refusing(&self) -> bool {
        self.gauge.refusing.load(Ordering::Relaxed)
    }

    pub fn limits(&self) -> Limits {
        self.gauge.limits
    }
}

#[async_trait]
impl Consumer for MemoryLimiter {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        let items = envelope.payload.item_count();
        if self.gauge.refusing.load(Ordering::Relaxed) {
            self.metrics.refused.add(self.signal, items);
            return Err(ConsumeError::unavailable(DATA_REFUSED));
        }
        self.metrics.accepted.add(self.signal, items);
        self.next.consume(envelope).await
    }

    fn accepts_encoded(&self) -> bool {
        self.next.accepts_encoded()
    }
}

#[async_trait]
impl Component for MemoryLimiter {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let mut task = lock(&self.task);
        if task.is_some() {
            return Ok(());
        }
        let limits = self.gauge.limits;
        info!(
            processor = %self.gauge.id,
            limit_mib = limits.hard / MIB,
            spike_limit_mib = (limits.hard - limits.soft) / MIB,
            check_interval = ?self.check_interval,
            "Memory limiter configured"
        );
        if self.gauge.source.used_bytes().is_none() {
            warn!(processor = %self.gauge.id, "Cannot read this process's memory use; the memory limiter will not refuse data");
        }
        let stop = CancellationToken::new();
        let gauge = self.gauge.clone();
        let interval = self.check_interval;
        let cancelled = stop.clone();
        let span = tracing::info_span!(
            "processor",
            kind = "memory_limiter",
            id = %self.gauge.id,
            signal = %self.signal
        );
        let handle = tokio::spawn(
            async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = cancelled.cancelled() => break,
                        _ = ticker.tick() => {
                            gauge.check();
                        }
                    }
                }
            }
            .instrument(span),
        );
        *task = Some((stop, handle));
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        let task = lock(&self.task).take();
        if let Some((stop, handle)) = task {
            stop.cancel();
            let _ = handle.await;
        }
        Ok(())
    }
}
