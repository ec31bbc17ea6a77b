//! ferrotel's core: telemetry data, configuration, component traits, the pipeline graph and
//! the agent's own telemetry. Every receiver, processor, exporter and extension builds on it.

pub mod attraction;
pub mod component;
pub mod compression;
pub mod config;
pub mod delta;
pub mod exporter;
pub mod factory;
pub mod filterset;
pub mod kafka;
pub mod logging;
pub mod net;
pub mod pdata;
pub mod prometheus;
pub mod ratelimit;
pub mod rpc;
pub mod telemetry;
pub mod timefmt;
pub mod tls;
pub mod topology;

pub use component::{
    Accepted, Ack, ClientInfo, Component, ComponentConfig, ComponentError, ConsumeError,
    ConsumeResult, Consumer, ConsumerComponent, CreateSettings, Envelope, ErrorKind, Host,
    ServiceStatus, SignalConsumers,
};
pub use pdata::{Logs, Metrics, Payload, Signal, Traces};
