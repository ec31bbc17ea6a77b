//! End-to-end tests: the real `ferrotel` binary with real clients and tools (the
//! OpenTelemetry Python SDK, promtool). Run through ./scripts/test, which installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backpressure;
mod bench_smoke;
mod cli;
mod config_example;
mod delivery;
mod dynatrace;
mod harness;
#[cfg(feature = "kafka")]
mod kafka;
mod otlp_json;
mod otlp_proto;
mod otlp_sink;
mod own_metrics;
mod processors;
mod prometheus_exporter;
mod prometheus_receiver;
mod prometheus_remote_write;
mod prometheus_server;
mod promtool;
mod sdk;
mod shutdown;
#[cfg(feature = "kafka")]
#[path = "../support/tansu.rs"]
mod tansu;
mod traffic;
