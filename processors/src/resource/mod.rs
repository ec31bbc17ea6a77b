//! The `resource` processor: runs a list of attribute actions on the attributes of every
//! resource a batch holds.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;

use ferrotel_pipeline::attraction::{ActionContext, Actions};
use ferrotel_pipeline::component::{
    config_as, ClientInfo, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ProcessorFactory, Stability};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{Payload, Signal};

pub use config::ResourceConfig;

pub struct ResourceProcessorFactory;

impl Factory for ResourceProcessorFactory {
    fn type_name(&self) -> &'static str {
        "resource"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<ResourceConfig>(value)
    }
}

impl ProcessorFactory for ResourceProcessorFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }

    fn create(
        &self,
        _settings: CreateSettings,
        config: &dyn ComponentConfig,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<ResourceConfig>(config)?;
        let processor = ResourceProcessor::new(config, next).map_err(ComponentError)?;
        Ok(Arc::new(processor))
    }
}

pub struct ResourceProcessor {
    actions: Actions,
    next: Arc<dyn Consumer>,
}

impl ResourceProcessor {
    pub fn new(config: &ResourceConfig, next: Arc<dyn Consumer>) -> Result<Self, String> {
        let actions = Actions::new(&config.attributes).map_err(|e| e.to_string())?;
        Ok(ResourceProcessor { actions, next })
    }

    /// Edits a decoded batch in place; an encoded one is left as it is.
    pub fn process(&self, payload: &mut Payload, client: Option<&ClientInfo>) {
        let context = ActionContext::new(client);
        match payload {
            Payload::Traces(traces) => {
                for rs in &mut traces.0.resource_spans {
                    self.apply(&mut rs.resource, &context);
                }
            }
            Payload::Metrics(metrics) => {
                for rm in &mut metrics.0.resource_metrics {
                    self.apply(&mut rm.resource, &context);
                }
            }
            Payload::Logs(logs) => {
                for rl in &mut logs.0.resource_logs {
                    self.apply(&mut rl.resource, &context);
                }
            }
            Payload::Encoded(_) => {}
        }
    }

    /// A batch without a resource has an empty one, as upstream sees it; it is written
    /// only when the actions gave it something.
    fn apply(&self, resource: &mut Option<Resource>, context: &ActionContext<'_>) {
        match resource {
            Some(resource) => self.actions.apply(&mut resource.attributes, context),
            None => {
                let mut attributes = Vec::new();
                self.actions.apply(&mut attributes, context);
                if !attributes.is_empty() {
                    *resource = Some(Resource {
                        attributes,
                        ..Default::default()
                    });
                }
            }
        }
    }
}

#[async_trait]
impl Consumer for ResourceProcessor {
    async fn consume(&self, mut envelope: Envelope) -> ConsumeResult {
        let client = envelope.client.clone();
        let payload = envelope.payload_mut();
        payload
            .decode_in_place()
            .map_err(|err| ConsumeError::invalid(err.to_string()))?;
        self.process(payload, client.as_deref());
        self.next.consume(envelope).await
    }
}

#[async_trait]
impl Component for ResourceProcessor {}
