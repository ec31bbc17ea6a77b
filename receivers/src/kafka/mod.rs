//! The `kafka` receiver: reads OTLP (and, for logs, raw bytes, text or JSON) from Kafka topics
//! in a consumer group. This module holds its configuration so far.

pub mod config;
pub mod logs;
