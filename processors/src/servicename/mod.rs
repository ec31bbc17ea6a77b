//! The `servicename` processor: gives each connector of a shared worker process (Kafka
//! Connect, Flink, ksqlDB) its own `service.name`, taken from an attribute of its spans,
//! data points and log records.
//!
//! A resource whose items all belong to one connector is renamed in place; one whose items
//! belong to several is split into one resource per connector, and a metric whose points
//! do into one metric per connector. Items without a connector keep their resource.

pub mod config;
mod regroup;
pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;
use tracing::warn;

use ferrotel_pipeline::component::{
    config_as, Component, ComponentConfig, ComponentError, ConsumeResult, Consumer,
    ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::pdata::{Payload, Signal};
use ferrotel_pipeline::ratelimit::LogLimiter;

pub use config::{ServiceNameConfig, SourceConfig};
pub use rules::Rules;

pub struct ServiceNameFactory;

impl Factory for ServiceNameFactory {
    fn type_name(&self) -> &'static str {
        "servicename"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<ServiceNameConfig>(value)
    }
}

impl ProcessorFactory for ServiceNameFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Alpha)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<ServiceNameConfig>(config)?;
        let rules = Rules::compile(config).map_err(ComponentError::new)?;
        Ok(Arc::new(ServiceNameProcessor::new(
            settings.id.to_string(),
            rules,
            next,
        )))
    }
}

pub struct ServiceNameProcessor {
    id: String,
    rules: Rules,
    next: Arc<dyn Consumer>,
    undecodable_log: LogLimiter,
}

impl ServiceNameProcessor {
    pub fn new(id: String, rules: Rules, next: Arc<dyn Consumer>) -> Self {
        ServiceNameProcessor {
            id,
            rules,
            next,
            undecodable_log: LogLimiter::default(),
        }
    }

    /// Edits the envelope's batch, copying a shared one only when something changes.
    fn edit(&self, envelope: &mut Envelope) {
        let plans = match &*envelope.payload {
            Payload::Traces(t) => regroup::plan(&t.0.resource_spans, &self.rules),
            Payload::Metrics(m) => regroup::plan(&m.0.resource_metrics, &self.rules),
            Payload::Logs(l) => regroup::plan(&l.0.resource_logs, &self.rules),
            Payload::Encoded(_) => None,
        };
        let Some(plans) = plans else {
            return;
        };
        match envelope.payload_mut() {
            Payload::Traces(t) => regroup::apply(&mut t.0.resource_spans, plans, &self.rules),
            Payload::Metrics(m) => regroup::apply(&mut m.0.resource_metrics, plans, &self.rules),
            Payload::Logs(l) => regroup::apply(&mut l.0.resource_logs, plans, &self.rules),
            Payload::Encoded(_) => {}
        }
    }
}

#[async_trait]
impl Consumer for ServiceNameProcessor {
    async fn consume(&self, mut envelope: Envelope) -> ConsumeResult {
        if matches!(*envelope.payload, Payload::Encoded(_)) {
            if let Err(err) = envelope.payload_mut().decode_in_place() {
                // Receivers check requests in full, so this is not expected; the batch goes
                // on as it is rather than being lost here.
                if let Some(suppressed) = self.undecodable_log.check() {
                    warn!(
                        processor = %self.id,
                        error = %err,
                        not_logged = suppressed,
                        "Passing on a batch that does not decode, without renaming services"
                    );
                }
                return self.next.consume(envelope).await;
            }
        }
        self.edit(&mut envelope);
        self.next.consume(envelope).await
    }
}

#[async_trait]
impl Component for ServiceNameProcessor {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
