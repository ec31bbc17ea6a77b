//! The `forward` connector: passes data unchanged from the pipelines where it is an exporter
//! to the pipelines of the same signal where it is a receiver.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use ferrotel_pipeline::component::{
    Component, ComponentConfig, ComponentError, ConsumeResult, Consumer, ConsumerComponent,
    CreateSettings, Envelope, SignalConsumers,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, ConnectorFactory, Factory, Stability, Validate};
use ferrotel_pipeline::pdata::Signal;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {}

impl Validate for ForwardConfig {}
impl ComponentConfig for ForwardConfig {}

pub struct ForwardConnectorFactory;

impl Factory for ForwardConnectorFactory {
    fn type_name(&self) -> &'static str {
        "forward"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<ForwardConfig>(value)
    }
}

impl ConnectorFactory for ForwardConnectorFactory {
    fn stability(&self, from: Signal, to: Signal) -> Option<Stability> {
        (from == to).then_some(Stability::Beta)
    }

    fn create(
        &self,
        _settings: CreateSettings,
        _config: &dyn ComponentConfig,
        from: Signal,
        to: SignalConsumers,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let next = to.get(from).cloned().ok_or_else(|| {
            ComponentError::new(format!("no {from} pipeline receives from this connector"))
        })?;
        Ok(Arc::new(Forward { next }))
    }
}

struct Forward {
    next: Arc<dyn Consumer>,
}

#[async_trait]
impl Consumer for Forward {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.next.consume(envelope).await
    }

    fn accepts_encoded(&self) -> bool {
        self.next.accepts_encoded()
    }
}

#[async_trait]
impl Component for Forward {}
