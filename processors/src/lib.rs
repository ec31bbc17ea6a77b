//! Processors: what edits data between receivers and exporters.

pub mod batch;
pub mod memory_limiter;

use std::sync::Arc;

use ferrotel_pipeline::factory::Registry;

/// Registers every processor type this crate provides.
pub fn register(registry: &mut Registry) {
    registry.add_processor(Arc::new(batch::BatchProcessorFactory));
    registry.add_processor(Arc::new(memory_limiter::MemoryLimiterFactory));
}
