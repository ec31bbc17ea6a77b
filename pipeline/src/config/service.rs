//! The `service` section: pipelines, service extensions and the agent's own telemetry.

use indexmap::IndexMap;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::factory::Validate;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSection {
    pub extensions: Vec<String>,
    pub pipelines: IndexMap<String, PipelineSection>,
    pub telemetry: TelemetrySection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    pub receivers: Vec<String>,
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    pub logs: LogsTelemetry,
    pub metrics: MetricsTelemetry,
    /// Accepted so existing configs load; the agent does not trace itself.
    pub traces: Option<IgnoredAny>,
    /// Accepted so existing configs load; resource attributes of the agent's own telemetry.
    pub resource: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Dpanic,
    Panic,
    Fatal,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogEncoding {
    #[default]
    Console,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsTelemetry {
    pub level: LogLevel,
    pub development: bool,
    pub encoding: LogEncoding,
    pub sampling: Option<IgnoredAny>,
    pub output_paths: Vec<String>,
    pub error_output_paths: Vec<String>,
    pub disable_caller: bool,
    pub disable_stacktrace: bool,
    pub initial_fields: IndexMap<String, String>,
    pub processors: Option<IgnoredAny>,
}

impl Default for LogsTelemetry {
    fn default() -> Self {
        LogsTelemetry {
            level: LogLevel::Info,
            development: false,
            encoding: LogEncoding::Console,
            sampling: None,
            output_paths: vec!["stderr".to_string()],
            error_output_paths: vec!["stderr".to_string()],
            disable_caller: false,
            disable_stacktrace: false,
            initial_fields: IndexMap::new(),
            processors: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsLevel {
    None,
    Basic,
    #[default]
    Normal,
    Detailed,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTelemetry {
    pub level: MetricsLevel,
    /// Deprecated upstream form of a single Prometheus pull reader: `host:port`.
    pub address: Option<String>,
    pub readers: Option<Vec<MetricReader>>,
    pub views: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricReader {
    pub pull: Option<PullReader>,
    pub periodic: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullReader {
    pub exporter: PullExporter,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullExporter {
    pub prometheus: Option<PrometheusReader>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusReader {
    pub host: String,
    pub port: u16,
    pub without_scope_info: bool,
    pub without_units: bool,
    pub without_type_suffix: bool,
    pub with_resource_constant_labels: Option<IgnoredAny>,
    pub translation_strategy: Option<String>,
}

impl Default for PrometheusReader {
    fn default() -> Self {
        // Upstream's defaults for the reader it creates when none is configured.
        PrometheusReader {
            host: "localhost".to_string(),
            port: 8888,
            without_scope_info: true,
            without_units: true,
            without_type_suffix: true,
            with_resource_constant_labels: None,
            translation_strategy: None,
        }
    }
}

/// Where and how the agent serves its own metrics, after defaults and the deprecated
/// `address` form are applied. `None`: not served (level `none`, or no pull reader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsEndpoint {
    pub address: String,
    pub type_suffix: bool,
    pub units: bool,
}

impl MetricsTelemetry {
    pub fn endpoint(&self) -> Option<MetricsEndpoint> {
        if self.level == MetricsLevel::None {
            return None;
        }
        if let Some(readers) = &self.readers {
            let prom = readers
                .iter()
                .filter_map(|r| r.pull.as_ref())
                .find_map(|p| p.exporter.prometheus.as_ref())?;
            let host = if prom.host.contains(':') && !prom.host.starts_with('[') {
                format!("[{}]", prom.host)
            } else {
                prom.host.clone()
            };
            return Some(MetricsEndpoint {
                address: format!("{host}:{}", prom.port),
                type_suffix: !prom.without_type_suffix,
                units: !prom.without_units,
            });
        }
        Some(MetricsEndpoint {
            address: self
                .address
                .clone()
                .unwrap_or_else(|| "localhost:8888".to_string()),
            type_suffix: false,
            units: false,
        })
    }
}

impl Validate for MetricsTelemetry {
    fn validate(&self) -> Result<(), String> {
        if self.level != MetricsLevel::None {
            if let Some(readers) = &self.readers {
                if readers.is_empty() {
                    return Err(
                        "collector telemetry metrics reader should exist when metric level is not none"
                            .to_string(),
                    );
                }
            }
        }
        if self.views.is_some() && self.level != MetricsLevel::Detailed {
            return Err("views can only be configured when metric level is detailed".to_string());
        }
        Ok(())
    }
}
