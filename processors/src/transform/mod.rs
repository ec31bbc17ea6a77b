//! The `transform` processor: runs OTTL statements on the data in place, compiled once at
//! start. Groups run in the order written; within a group the statements run in order on
//! each item of the group's context.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;

use ferrotel_ottl::groups::CompiledStatements;
use ferrotel_ottl::walk;
use ferrotel_pipeline::component::{
    config_as, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult, Consumer,
    ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::pdata::{Payload, Signal};

pub use config::TransformConfig;

pub struct TransformProcessorFactory;

impl Factory for TransformProcessorFactory {
    fn type_name(&self) -> &'static str {
        "transform"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<TransformConfig>(value)
    }
}

impl ProcessorFactory for TransformProcessorFactory {
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
        let config = config_as::<TransformConfig>(config)?;
        let groups = config.compile(signal).map_err(ComponentError::new)?;
        Ok(Arc::new(TransformProcessor {
            id: settings.id.to_string(),
            groups,
            next,
        }))
    }
}

pub struct TransformProcessor {
    id: String,
    groups: Vec<CompiledStatements>,
    next: Arc<dyn Consumer>,
}

impl TransformProcessor {
    /// Runs every group on a decoded batch.
    fn apply(&self, payload: &mut Payload) -> Result<(), String> {
        let id = self.id.as_str();
        for g in &self.groups {
            let run = |ctx: &mut ferrotel_ottl::TransformContext| g.run(id, ctx).map(|()| true);
            match payload {
                Payload::Traces(t) => walk::traces(&mut t.0.resource_spans, g.context, run)?,
                Payload::Metrics(m) => walk::metrics(&mut m.0.resource_metrics, g.context, run)?,
                Payload::Logs(l) => walk::logs(&mut l.0.resource_logs, g.context, run)?,
                Payload::Encoded(_) => {}
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Consumer for TransformProcessor {
    async fn consume(&self, mut envelope: Envelope) -> ConsumeResult {
        if !self.groups.is_empty() {
            let payload = envelope.payload_mut();
            payload
                .decode_in_place()
                .map_err(|e| ConsumeError::invalid(e.to_string()))?;
            self.apply(payload).map_err(ConsumeError::permanent)?;
        }
        self.next.consume(envelope).await
    }

    fn accepts_encoded(&self) -> bool {
        self.groups.is_empty() && self.next.accepts_encoded()
    }
}

#[async_trait]
impl Component for TransformProcessor {}
