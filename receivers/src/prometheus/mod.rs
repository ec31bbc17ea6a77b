//! The `prometheus` receiver: scrapes the targets of Prometheus's own configuration (the
//! `config:` section) and turns what they expose into OTLP metrics, as the Collector's
//! prometheus receiver does.

pub mod config;
pub mod discovery;
pub mod kubernetes;
pub mod parse;
pub mod relabel;
pub mod samples;
mod scrape;
pub mod staleness;
pub mod translate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use ferrotel_pipeline::component::{
    config_as, Component, ComponentConfig, ComponentError, CreateSettings, Host, SignalConsumers,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ReceiverFactory, Stability, Validate};
use ferrotel_pipeline::telemetry::ReceiverMetrics;
use ferrotel_pipeline::Signal;

use config::PrometheusReceiverConfig;
use scrape::{JobRuntime, Sink};

impl ComponentConfig for PrometheusReceiverConfig {}

impl Validate for PrometheusReceiverConfig {
    fn validate(&self) -> Result<(), String> {
        PrometheusReceiverConfig::validate(self)
    }
}

pub struct PrometheusReceiverFactory;

impl Factory for PrometheusReceiverFactory {
    fn type_name(&self) -> &'static str {
        "prometheus"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<PrometheusReceiverConfig>(value)
    }
}

impl ReceiverFactory for PrometheusReceiverFactory {
    fn stability(&self, signal: Signal) -> Option<Stability> {
        (signal == Signal::Metrics).then_some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = config_as::<PrometheusReceiverConfig>(config)?.clone();
        let id = settings.id.to_string();
        let consumer = consumers
            .metrics
            .clone()
            .ok_or_else(|| ComponentError::new(format!("{id}: only metrics are received")))?;
        Ok(Arc::new(PrometheusReceiver {
            metrics: settings.telemetry.receiver(&id, "http"),
            id,
            config,
            consumer,
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        }))
    }
}

struct PrometheusReceiver {
    id: String,
    config: PrometheusReceiverConfig,
    consumer: Arc<dyn ferrotel_pipeline::component::Consumer>,
    metrics: ReceiverMetrics,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[async_trait]
impl Component for PrometheusReceiver {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let jobs = self
            .config
            .config
            .jobs()
            .map_err(|e| ComponentError::new(format!("{}: {e}", self.id)))?;
        let sink = Sink {
            consumer: self.consumer.clone(),
            metrics: self.metrics.clone(),
            trim_suffixes: self.config.trim_metric_suffixes,
            external_labels: self
                .config
                .config
                .global
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            receiver: self.id.clone(),
        };
        let mut tasks = Vec::new();
        for job in jobs {
            let name = job.config.job_name.clone();
            let runtime = Arc::new(
                JobRuntime::new(job)
                    .map_err(|e| ComponentError::new(format!("{}: job {name:?}: {e}", self.id)))?,
            );
            tasks.push(tokio::spawn(scrape::manage(
                runtime,
                sink.clone(),
                self.shutdown.clone(),
            )));
        }
        if let Ok(mut slot) = self.tasks.lock() {
            slot.extend(tasks);
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.shutdown.cancel();
        let tasks: Vec<JoinHandle<()>> = match self.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            warn!(receiver = %self.id, "Scrapes did not stop in time");
        }
        Ok(())
    }
}
