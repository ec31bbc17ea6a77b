//! Processors: what edits data between receivers and exporters.

pub mod attributes;
pub mod batch;
pub mod cumulativetodelta;
pub mod filter;
pub mod memory_limiter;
pub mod resource;
pub mod servicename;
pub mod transform;

use std::sync::Arc;

use ferrotel_pipeline::factory::Registry;

/// Registers every processor type this crate provides.
pub fn register(registry: &mut Registry) {
    registry.add_processor(Arc::new(attributes::AttributesProcessorFactory));
    registry.add_processor(Arc::new(batch::BatchProcessorFactory));
    registry.add_processor(Arc::new(cumulativetodelta::CumulativeToDeltaFactory));
    registry.add_processor(Arc::new(filter::FilterProcessorFactory));
    registry.add_processor(Arc::new(memory_limiter::MemoryLimiterFactory));
    registry.add_processor(Arc::new(resource::ResourceProcessorFactory));
    registry.add_processor(Arc::new(servicename::ServiceNameFactory));
    registry.add_processor(Arc::new(transform::TransformProcessorFactory));
}
