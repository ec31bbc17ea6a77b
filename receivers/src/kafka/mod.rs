//! The `kafka` receiver: reads OTLP (and, for logs, raw bytes, text or JSON) from Kafka
//! topics in a consumer group, and commits a record's offset only once every exporter
//! downstream has finished with it (at-least-once).

pub mod config;
pub mod decode;
pub mod logs;
pub mod offsets;

#[cfg(feature = "kafka")]
mod consumer;
#[cfg(feature = "kafka")]
mod receiver;

#[cfg(feature = "kafka")]
pub use receiver::KafkaReceiverFactory;
