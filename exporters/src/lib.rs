//! Exporters, where telemetry leaves the agent, and the connectors that join pipelines.

pub mod debug;
pub mod file;
pub mod forward;

use std::sync::Arc;

use ferrotel_pipeline::factory::Registry;

/// Registers every exporter and connector type this crate provides.
pub fn register(registry: &mut Registry) {
    registry.add_exporter(Arc::new(debug::DebugExporterFactory));
    registry.add_exporter(Arc::new(file::FileExporterFactory));
    registry.add_connector(Arc::new(forward::ForwardConnectorFactory));
}
