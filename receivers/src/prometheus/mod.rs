//! The `prometheus` receiver: scrapes targets in Prometheus's own configuration and turns
//! what they expose into OTLP metrics. This module holds the exposition parser and the
//! relabeling so far.

pub mod parse;
pub mod relabel;
