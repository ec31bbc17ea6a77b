//! The `signoz` exporter: one block for SigNoz Cloud (a region and an ingestion key) or a
//! self-hosted SigNoz (its collector's endpoint). It resolves to an `otlp_http` or
//! `otlp_grpc` configuration and runs that exporter, so queue, retries, compression and
//! TLS behave exactly as theirs.

pub mod config;

use std::sync::Arc;

use ferrotel_pipeline::component::{
    config_as, ComponentConfig, ComponentError, ConsumerComponent, CreateSettings,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{ExporterFactory, Factory, Stability};
use ferrotel_pipeline::pdata::Signal;

use crate::otlp_grpc::OtlpGrpcExporterFactory;
use crate::otlp_http::OtlpHttpExporterFactory;
pub use config::{KeyHeader, OtlpConfig, Protocol, SignozConfig};

/// Builds `signoz` exporters.
#[derive(Debug, Clone, Default)]
pub struct SignozExporterFactory {
    /// Replaces the address of every region; `None` in the registry.
    cloud_host: Option<String>,
}

impl SignozExporterFactory {
    /// The factory the registry uses: a region means `ingest.<region>.signoz.cloud:443`.
    pub fn new() -> Self {
        Self::default()
    }

    /// For tests only: every region is sent to `host_port` (a local TLS server) instead of
    /// SigNoz Cloud, through the same code path. Configuration cannot reach this.
    pub fn with_cloud_host_for_tests(host_port: impl Into<String>) -> Self {
        SignozExporterFactory {
            cloud_host: Some(host_port.into()),
        }
    }
}

impl Factory for SignozExporterFactory {
    fn type_name(&self) -> &'static str {
        "signoz"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        let config = config::decode_signoz(value, self.cloud_host.as_deref())?;
        Ok(Box::new(config))
    }
}

impl ExporterFactory for SignozExporterFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Alpha)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<SignozConfig>(config)?;
        match &config.otlp {
            OtlpConfig::Http(otlp) => OtlpHttpExporterFactory.create(settings, otlp),
            OtlpConfig::Grpc(otlp) => OtlpGrpcExporterFactory.create(settings, otlp),
        }
    }
}
