//! The `kafka` exporter: writes OTLP (and, for logs, raw bodies) to Kafka topics. This module
//! holds its configuration so far.

pub mod config;
pub mod keys;
pub mod split;
