//! Exporters, where telemetry leaves the agent, and the connectors that join pipelines.

pub mod debug;
pub mod dynatrace;
pub mod file;
pub mod forward;
mod http_client;
pub mod kafka;
pub mod otlp_grpc;
pub mod otlp_http;
mod parts;
pub mod prometheus;
pub mod prometheusremotewrite;
pub mod signoz;

use std::sync::Arc;

use ferrotel_pipeline::factory::Registry;

/// Registers every exporter and connector type this crate provides.
pub fn register(registry: &mut Registry) {
    registry.add_exporter(Arc::new(debug::DebugExporterFactory));
    registry.add_exporter(Arc::new(file::FileExporterFactory));
    #[cfg(feature = "kafka")]
    registry.add_exporter(Arc::new(kafka::KafkaExporterFactory));
    registry.add_exporter(Arc::new(otlp_grpc::OtlpGrpcExporterFactory));
    registry.add_exporter(Arc::new(otlp_http::OtlpHttpExporterFactory));
    registry.add_exporter(Arc::new(prometheus::PrometheusExporterFactory));
    registry.add_exporter(Arc::new(dynatrace::DynatraceExporterFactory));
    registry.add_exporter(Arc::new(
        prometheusremotewrite::PrometheusRemoteWriteExporterFactory,
    ));
    registry.add_exporter(Arc::new(signoz::SignozExporterFactory::new()));
    // The names real configs (SigNoz among them) still use; the loader warns about them.
    registry.alias_exporter("otlp", "otlp_grpc");
    registry.alias_exporter("otlphttp", "otlp_http");
    registry.add_connector(Arc::new(forward::ForwardConnectorFactory));
}
