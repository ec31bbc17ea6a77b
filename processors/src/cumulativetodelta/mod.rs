//! The `cumulativetodelta` processor: rewrites monotonic cumulative sums, cumulative
//! histograms and cumulative exponential histograms as deltas, remembering each series'
//! last value (the conversion itself is `ferrotel_pipeline::delta`). One converter per
//! processor instance, so a series must keep reaching the same pipeline.

pub mod config;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use tracing::debug;

use ferrotel_pipeline::component::{
    config_as, Accepted, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::delta::DeltaConverter;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::pdata::metrics::Metric;
use ferrotel_pipeline::pdata::{Payload, Signal};

pub use config::{CumulativeToDeltaConfig, MatchMetrics, Selector};

pub struct CumulativeToDeltaFactory;

impl Factory for CumulativeToDeltaFactory {
    fn type_name(&self) -> &'static str {
        "cumulativetodelta"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<CumulativeToDeltaConfig>(value)
    }
}

impl ProcessorFactory for CumulativeToDeltaFactory {
    fn stability(&self, signal: Signal) -> Option<Stability> {
        (signal == Signal::Metrics).then_some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<CumulativeToDeltaConfig>(config)?;
        let selector = config.selector().map_err(ComponentError::new)?;
        Ok(Arc::new(CumulativeToDelta {
            id: settings.id.to_string(),
            selector,
            converter: Mutex::new(DeltaConverter::new(config.settings())),
            next,
        }))
    }
}

pub struct CumulativeToDelta {
    id: String,
    selector: Selector,
    converter: Mutex<DeltaConverter>,
    next: Arc<dyn Consumer>,
}

impl CumulativeToDelta {
    /// Number of series remembered.
    pub fn tracked(&self) -> usize {
        self.converter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tracked()
    }
}

#[async_trait]
impl Consumer for CumulativeToDelta {
    async fn consume(&self, mut envelope: Envelope) -> ConsumeResult {
        let payload = envelope.payload_mut();
        payload
            .decode_in_place()
            .map_err(|e| ConsumeError::invalid(e.to_string()))?;
        let Payload::Metrics(metrics) = payload else {
            return self.next.consume(envelope).await;
        };
        let select = |metric: &Metric| self.selector.selects(metric);
        let stats = {
            // The state stays consistent between points, so a panic elsewhere that poisoned
            // the lock leaves it usable.
            let mut converter = self
                .converter
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            converter.convert(&mut metrics.0.resource_metrics, SystemTime::now(), &select)
        };
        if stats.dropped_points > 0 {
            debug!(
                processor = %self.id,
                dropped = stats.dropped_points,
                converted = stats.converted_points,
                "Dropped points that have no delta yet (first points, resets, out of order)"
            );
        }
        if payload.is_empty() {
            // Everything was held back: nothing goes on, and the sender hears success.
            return Ok(Accepted::default());
        }
        self.next.consume(envelope).await
    }
}

#[async_trait]
impl Component for CumulativeToDelta {}
