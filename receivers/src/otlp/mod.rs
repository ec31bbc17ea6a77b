//! The `otlp` receiver: OTLP over gRPC and over HTTP (protobuf and JSON), for traces,
//! metrics and logs.

pub mod config;
mod grpc;
mod http;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use ferrotel_pipeline::component::{
    config_as, Accepted, ClientInfo, Component, ComponentConfig, ComponentError, ConsumeError,
    CreateSettings, Envelope, Host, SignalConsumers,
};
use ferrotel_pipeline::config::decode::DecodeError;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{decode_config, Factory, ReceiverFactory, Stability};
use ferrotel_pipeline::pdata::{
    Encoded, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    Payload, Signal,
};
use ferrotel_pipeline::telemetry::ReceiverMetrics;

use config::OtlpReceiverConfig;

pub struct OtlpReceiverFactory;

impl Factory for OtlpReceiverFactory {
    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        decode_config::<OtlpReceiverConfig>(value)
    }
}

impl ReceiverFactory for OtlpReceiverFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Stable)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = config_as::<OtlpReceiverConfig>(config)?.clone();
        let id = settings.id.to_string();
        Ok(Arc::new(OtlpReceiver {
            grpc_intake: Intake {
                consumers: consumers.clone(),
                metrics: settings.telemetry.receiver(&id, "grpc"),
            },
            http_intake: Intake {
                consumers,
                metrics: settings.telemetry.receiver(&id, "http"),
            },
            id,
            config,
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        }))
    }
}

/// Hands decoded requests to the pipelines and counts the outcome.
#[derive(Clone)]
pub(crate) struct Intake {
    consumers: SignalConsumers,
    metrics: ReceiverMetrics,
}

impl Intake {
    pub(crate) fn accepts(&self, signal: Signal) -> bool {
        self.consumers.get(signal).is_some()
    }

    /// A protobuf export request as the pipelines want it: checked and kept encoded when
    /// every stage downstream passes it through untouched, decoded otherwise.
    pub(crate) fn decode_protobuf(&self, signal: Signal, body: Bytes) -> Result<Payload, String> {
        let encoded = self
            .consumers
            .get(signal)
            .is_some_and(|c| c.accepts_encoded());
        if encoded {
            return Encoded::parse(signal, body)
                .map(Payload::Encoded)
                .map_err(|e| e.to_string());
        }
        match signal {
            Signal::Traces => ExportTraceServiceRequest::decode(body).map(Payload::from),
            Signal::Metrics => ExportMetricsServiceRequest::decode(body).map(Payload::from),
            Signal::Logs => ExportLogsServiceRequest::decode(body).map(Payload::from),
        }
        .map_err(|e| e.to_string())
    }

    pub(crate) async fn push(
        &self,
        payload: Payload,
        client: Option<Arc<ClientInfo>>,
    ) -> Result<Accepted, ConsumeError> {
        let signal = payload.signal();
        // An empty request succeeds without troubling the pipelines.
        if payload.is_empty() {
            return Ok(Accepted::default());
        }
        let Some(consumer) = self.consumers.get(signal) else {
            return Err(ConsumeError::permanent(format!(
                "{signal} are not accepted by this receiver"
            )));
        };
        let items = payload.item_count();
        let result = consumer
            .consume(Envelope::new(payload).with_client(client))
            .await;
        match &result {
            Ok(accepted) => {
                let rejected = usize::try_from(accepted.rejected_items)
                    .unwrap_or(items)
                    .min(items);
                self.metrics.accepted.add(signal, items - rejected);
                self.metrics.refused.add(signal, rejected);
            }
            Err(_) => self.metrics.refused.add(signal, items),
        }
        result
    }
}

impl OtlpReceiver {
    async fn start_servers(&self) -> Result<(), ComponentError> {
        if let Some(grpc) = &self.config.protocols.grpc {
            let listener = ferrotel_pipeline::net::bind(&grpc.endpoint)
                .await
                .map_err(|e| ComponentError::new(format!("gRPC endpoint: {e}")))?;
            let local = listener.local_addr().ok();
            let task = grpc::serve(
                grpc,
                listener,
                self.grpc_intake.clone(),
                self.shutdown.clone(),
            )
            .map_err(ComponentError::new)?;
            info!(receiver = %self.id, endpoint = ?local, "Starting GRPC server");
            self.keep(task);
        }
        if let Some(http) = &self.config.protocols.http {
            let listener = ferrotel_pipeline::net::bind(&http.endpoint)
                .await
                .map_err(|e| ComponentError::new(format!("HTTP endpoint: {e}")))?;
            let local = listener.local_addr().ok();
            let task = http::serve(
                http,
                listener,
                self.http_intake.clone(),
                self.shutdown.clone(),
            )
            .map_err(ComponentError::new)?;
            info!(receiver = %self.id, endpoint = ?local, "Starting HTTP server");
            self.keep(task);
        }
        Ok(())
    }

    fn keep(&self, task: JoinHandle<()>) {
        if let Ok(mut slot) = self.tasks.lock() {
            slot.push(task);
        }
    }
}

struct OtlpReceiver {
    id: String,
    config: OtlpReceiverConfig,
    grpc_intake: Intake,
    http_intake: Intake,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[async_trait]
impl Component for OtlpReceiver {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        let result = self.start_servers().await;
        if result.is_err() {
            // Whatever did start must not outlive a failed start.
            self.shutdown.cancel();
        }
        result
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.shutdown.cancel();
        let tasks: Vec<JoinHandle<()>> = match self.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        // Both servers finish their in-flight requests at the same time, within a bound that
        // leaves the rest of the shutdown its share of the service's deadline.
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            warn!(receiver = %self.id, "In-flight requests did not finish in time");
        }
        Ok(())
    }
}
