//! Extensions: capabilities of the agent outside the data path (health checks, ...).

pub mod health_check;

use std::sync::Arc;

use ferrotel_pipeline::factory::Registry;

/// Registers every extension type this crate provides.
pub fn register(registry: &mut Registry) {
    registry.add_extension(Arc::new(health_check::HealthCheckFactory));
}
