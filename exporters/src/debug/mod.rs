//! The `debug` exporter: writes what passes through to the agent's log or to stdout.

mod text;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use serde::de::IgnoredAny;
use serde::Deserialize;
use tracing::info;

use ferrotel_pipeline::component::{
    config_as, Accepted, Component, ComponentConfig, ComponentError, ConsumeError, ConsumeResult,
    Consumer, ConsumerComponent, CreateSettings, Envelope,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, ExporterFactory, Factory, Stability, Validate};
use ferrotel_pipeline::pdata::{Payload, Signal};
use ferrotel_pipeline::telemetry::ExporterMetrics;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    #[default]
    Basic,
    Normal,
    Detailed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    pub verbosity: Verbosity,
    /// Messages logged per second before sampling starts.
    pub sampling_initial: u64,
    /// After the initial ones, one message in this many is logged.
    pub sampling_thereafter: u64,
    pub use_internal_logger: bool,
    pub output_paths: Option<Vec<String>>,
    pub sending_queue: Option<IgnoredAny>,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig {
            verbosity: Verbosity::Basic,
            sampling_initial: 2,
            sampling_thereafter: 1,
            use_internal_logger: true,
            output_paths: None,
            sending_queue: None,
        }
    }
}

impl Validate for DebugConfig {
    fn validate(&self) -> Result<(), String> {
        if self.output_paths.is_some() && self.use_internal_logger {
            return Err("output_paths requires use_internal_logger to be false".to_string());
        }
        if let Some(paths) = &self.output_paths {
            for p in paths {
                if p != "stdout" && p != "stderr" {
                    return Err(format!(
                        "output_paths: unsupported output \"{p}\" (valid values: stdout, stderr)"
                    ));
                }
            }
        }
        if self.sampling_thereafter == 0 {
            return Err("sampling_thereafter must be at least 1".to_string());
        }
        Ok(())
    }
}

impl ComponentConfig for DebugConfig {}

pub struct DebugExporterFactory;

impl Factory for DebugExporterFactory {
    fn type_name(&self) -> &'static str {
        "debug"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<DebugConfig>(value)
    }
}

impl ExporterFactory for DebugExporterFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Development)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<DebugConfig>(config)?.clone();
        Ok(Arc::new(DebugExporter {
            id: settings.id.to_string(),
            metrics: settings.telemetry.exporter(&settings.id.to_string()),
            sampler: Sampler::new(config.sampling_initial, config.sampling_thereafter),
            config,
        }))
    }
}

/// Per-second sampling as upstream's logger does it: the first `initial` messages in each
/// second, then every `thereafter`-th.
struct Sampler {
    initial: u64,
    thereafter: u64,
    window: Mutex<Instant>,
    count: AtomicU64,
}

impl Sampler {
    fn new(initial: u64, thereafter: u64) -> Self {
        Sampler {
            initial,
            thereafter: thereafter.max(1),
            window: Mutex::new(Instant::now()),
            count: AtomicU64::new(0),
        }
    }

    fn allow(&self) -> bool {
        if let Ok(mut start) = self.window.lock() {
            if start.elapsed().as_secs() >= 1 {
                *start = Instant::now();
                self.count.store(0, Ordering::Relaxed);
            }
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        n <= self.initial || (n - self.initial) % self.thereafter == 0
    }
}

struct DebugExporter {
    id: String,
    config: DebugConfig,
    metrics: ExporterMetrics,
    sampler: Sampler,
}

impl DebugExporter {
    fn emit(&self, summary: String, body: Option<String>) {
        if self.config.use_internal_logger {
            match body {
                Some(body) => info!(exporter = %self.id, "{summary}\n{body}"),
                None => info!(exporter = %self.id, "{summary}"),
            }
        } else {
            let to_stderr = self
                .config
                .output_paths
                .as_ref()
                .is_some_and(|p| p.iter().any(|p| p == "stderr"));
            let mut text = summary;
            if let Some(body) = body {
                text.push('\n');
                text.push_str(&body);
            }
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let _ = if to_stderr {
                std::io::stderr().lock().write_all(text.as_bytes())
            } else {
                std::io::stdout().lock().write_all(text.as_bytes())
            };
        }
    }
}

#[async_trait]
impl Consumer for DebugExporter {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        let signal = envelope.payload.signal();
        let items = envelope.payload.item_count();
        if self.sampler.allow() {
            // Only a pipeline that reaches no debug exporter carries encoded batches; one that
            // still arrives here is shown decoded.
            let payload = match envelope.payload.decoded() {
                Ok(p) => p,
                Err(err) => {
                    self.metrics.send_failed.add(signal, items);
                    return Err(ConsumeError::permanent(err.to_string()));
                }
            };
            let payload: &Payload = &payload;
            let summary = match payload {
                Payload::Traces(t) => format!(
                    "Traces: resource spans: {}, spans: {}",
                    t.0.resource_spans.len(),
                    items
                ),
                Payload::Metrics(m) => format!(
                    "Metrics: resource metrics: {}, metrics: {}, data points: {}",
                    m.0.resource_metrics.len(),
                    m.metric_count(),
                    items
                ),
                Payload::Logs(l) => format!(
                    "Logs: resource logs: {}, log records: {}",
                    l.0.resource_logs.len(),
                    items
                ),
                Payload::Encoded(_) => format!("{signal}: {items} items"),
            };
            let body = match (self.config.verbosity, payload) {
                (Verbosity::Basic, _) => None,
                (Verbosity::Normal, Payload::Traces(t)) => Some(text::traces_normal(t)),
                (Verbosity::Normal, Payload::Metrics(m)) => Some(text::metrics_normal(m)),
                (Verbosity::Normal, Payload::Logs(l)) => Some(text::logs_normal(l)),
                (Verbosity::Detailed, Payload::Traces(t)) => Some(text::traces_detailed(t)),
                (Verbosity::Detailed, Payload::Metrics(m)) => Some(text::metrics_detailed(m)),
                (Verbosity::Detailed, Payload::Logs(l)) => Some(text::logs_detailed(l)),
                (_, Payload::Encoded(_)) => None,
            };
            self.emit(summary, body);
        }
        self.metrics.sent.add(signal, items);
        Ok(Accepted::default())
    }
}

#[async_trait]
impl Component for DebugExporter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_follows_initial_then_thereafter() {
        let s = Sampler::new(2, 3);
        let allowed: Vec<bool> = (0..8).map(|_| s.allow()).collect();
        assert_eq!(
            allowed,
            vec![true, true, false, false, true, false, false, true]
        );
    }
}
