//! The `kafka` exporter: writes OTLP (protobuf or JSON; for logs also raw bodies) to Kafka
//! topics through librdkafka, on the shared sending queue and retries. A batch becomes one
//! record, or one per resource or per trace when a partitioning option asks; a record larger
//! than `producer.max_message_bytes` is cut by items until each fits, and an item that alone
//! is too large is counted and reported, never dropped silently.

pub mod config;
pub mod keys;
pub mod split;

#[cfg(feature = "kafka")]
mod producer;

#[cfg(feature = "kafka")]
pub use producer::KafkaExporterFactory;
