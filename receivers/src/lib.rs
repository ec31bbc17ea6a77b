//! Receivers: where telemetry enters the agent.

pub mod kafka;
pub mod otlp;
pub mod prometheus;

use std::sync::Arc;

use ferrotel_pipeline::factory::Registry;

/// Registers every receiver type this crate provides.
pub fn register(registry: &mut Registry) {
    registry.add_receiver(Arc::new(otlp::OtlpReceiverFactory));
    registry.add_receiver(Arc::new(prometheus::PrometheusReceiverFactory));
    #[cfg(feature = "kafka")]
    registry.add_receiver(Arc::new(kafka::KafkaReceiverFactory));
}
