//! What every component is made of: the envelope data travels in, the consumer interface it
//! travels through, the lifecycle, and the errors that map onto OTLP status codes.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};

use crate::config::id::ComponentId;
use crate::pdata::{Payload, Signal};
use crate::telemetry::Telemetry;

/// Who sent a batch: the peer address and, when a receiver has `include_metadata`, the
/// request's headers (keys lower-cased).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientInfo {
    pub addr: Option<SocketAddr>,
    pub metadata: Vec<(String, String)>,
}

impl ClientInfo {
    /// All values of one metadata key (case-insensitive).
    pub fn get<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.metadata
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// A batch on its way through the pipelines, with its request context and the delivery
/// acknowledgements of the requests it came from.
///
/// The payload is shared: a fan-out branch or a retried send holds another reference, not a
/// copy. A stage that edits data calls [`Envelope::payload_mut`], which copies only when
/// another branch still holds the same batch.
#[derive(Debug)]
pub struct Envelope {
    pub payload: Arc<Payload>,
    pub client: Option<Arc<ClientInfo>>,
    pub acks: Vec<Ack>,
}

impl Envelope {
    pub fn new(payload: Payload) -> Self {
        Envelope {
            payload: Arc::new(payload),
            client: None,
            acks: Vec::new(),
        }
    }

    pub fn with_client(mut self, client: Option<Arc<ClientInfo>>) -> Self {
        self.client = client;
        self
    }

    /// The payload to edit in place; copied first only if another holder shares it.
    pub fn payload_mut(&mut self) -> &mut Payload {
        Arc::make_mut(&mut self.payload)
    }

    /// Takes the payload out, copying it only if another holder shares it.
    pub fn into_payload(self) -> Payload {
        Arc::unwrap_or_clone(self.payload)
    }

    /// Another reference for one more branch of a fan-out, or for a retry; the
    /// acknowledgements are shared, so the sender hears back only when every holder is done.
    pub fn fork(&self) -> Envelope {
        Envelope {
            payload: self.payload.clone(),
            client: self.client.clone(),
            acks: self.acks.clone(),
        }
    }

    /// Marks every acknowledgement of this batch failed (it was dropped or refused for good).
    pub fn fail(&self, error: &ConsumeError) {
        for ack in &self.acks {
            ack.fail(error.clone());
        }
    }
}

/// Delivery acknowledgement. Every holder (fan-out branch, split batch) keeps a clone; when
/// the last clone is dropped the waiting side learns the outcome: success unless a holder
/// recorded a failure first. A pull receiver (Kafka) commits offsets on success.
///
/// The rule for failures: a stage that answers `consume` with `Err` leaves the acks alone,
/// because its caller owns the outcome (it may retry, as the batch processor does, or pass
/// the error to the sender). A stage that answered `Ok` and loses the data later (a queue
/// worker giving up) calls [`Envelope::fail`].
#[derive(Clone)]
pub struct Ack(Arc<AckState>);

struct AckState {
    failure: Mutex<Option<ConsumeError>>,
    tx: Mutex<Option<oneshot::Sender<Result<(), ConsumeError>>>>,
}

impl Drop for AckState {
    fn drop(&mut self) {
        let failure = self.failure.lock().ok().and_then(|mut f| f.take());
        let tx = self.tx.lock().ok().and_then(|mut t| t.take());
        if let Some(tx) = tx {
            let _ = tx.send(match failure {
                Some(err) => Err(err),
                None => Ok(()),
            });
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ack")
    }
}

impl Ack {
    /// A new acknowledgement and the receiving end that resolves when all clones are gone.
    pub fn new() -> (Ack, oneshot::Receiver<Result<(), ConsumeError>>) {
        let (tx, rx) = oneshot::channel();
        let ack = Ack(Arc::new(AckState {
            failure: Mutex::new(None),
            tx: Mutex::new(Some(tx)),
        }));
        (ack, rx)
    }

    /// Records a failure; the first one recorded is reported.
    pub fn fail(&self, error: ConsumeError) {
        if let Ok(mut slot) = self.0.failure.lock() {
            if slot.is_none() {
                *slot = Some(error);
            }
        }
    }
}

/// How a refusal should be treated by the sender, following the OTLP rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Retryable: gRPC UNAVAILABLE, HTTP 503.
    Unavailable,
    /// Retryable after a pause: gRPC RESOURCE_EXHAUSTED with RetryInfo, HTTP 429.
    ResourceExhausted,
    /// Permanent: the data is bad. gRPC INVALID_ARGUMENT, HTTP 400.
    InvalidArgument,
    /// Permanent: something failed that retrying will not fix. gRPC INTERNAL, HTTP 500.
    Internal,
}

impl ErrorKind {
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::ResourceExhausted)
    }
}

/// A refusal by a downstream stage.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConsumeError {
    pub kind: ErrorKind,
    pub message: String,
    /// How long the sender should wait before retrying, when known.
    pub retry_after: Option<Duration>,
    /// Some branches of a fan-out took the data: sending it again would duplicate it there.
    pub partial: bool,
}

impl ConsumeError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        ConsumeError {
            kind: ErrorKind::Unavailable,
            message: message.into(),
            retry_after: None,
            partial: false,
        }
    }

    pub fn resource_exhausted(message: impl Into<String>, retry_after: Duration) -> Self {
        ConsumeError {
            kind: ErrorKind::ResourceExhausted,
            message: message.into(),
            retry_after: Some(retry_after),
            partial: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ConsumeError {
            kind: ErrorKind::Internal,
            message: message.into(),
            retry_after: None,
            partial: false,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ConsumeError {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
            retry_after: None,
            partial: false,
        }
    }
}

/// What a stage reports back when it took the data: how many items it rejected anyway
/// (OTLP partial success), zero in the common case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    pub rejected_items: u64,
    pub message: String,
}

impl Accepted {
    /// Combines the reports of several branches of a fan-out.
    pub fn combine(&mut self, other: Accepted) {
        if other.rejected_items > self.rejected_items {
            self.rejected_items = other.rejected_items;
            self.message = other.message;
        }
    }
}

pub type ConsumeResult = Result<Accepted, ConsumeError>;

/// Anything data can be handed to: a processor, an exporter, a connector, a fan-out.
#[async_trait]
pub trait Consumer: Send + Sync {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult;

    /// Whether this stage, and every stage after it, can take a batch still in its protobuf
    /// encoding ([`crate::pdata::Encoded`]) without looking inside. A receiver keeps requests
    /// encoded only when its consumer says so; a stage that reads or edits the data keeps the
    /// default.
    fn accepts_encoded(&self) -> bool {
        false
    }
}

/// The lifecycle every component has. `start` runs before data flows (exporters first,
/// receivers last); `shutdown` runs in the reverse order and should finish in-flight work.
#[async_trait]
pub trait Component: Send + Sync {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// A component that is also a consumer: processors, exporters and connectors.
pub trait ConsumerComponent: Component + Consumer {}

impl<T: Component + Consumer> ConsumerComponent for T {}

/// A component that failed to start or stop.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ComponentError(pub String);

impl ComponentError {
    pub fn new(message: impl Into<String>) -> Self {
        ComponentError(message.into())
    }
}

/// The running state of the whole agent, watched by health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    Starting,
    Ready,
    Stopping,
}

/// What the agent offers its components while they run.
#[derive(Clone)]
pub struct Host {
    pub telemetry: Arc<Telemetry>,
    pub status: watch::Receiver<ServiceStatus>,
}

/// The typed configuration of one component, after decoding and validation.
pub trait ComponentConfig: Any + Send + Sync + fmt::Debug {
    /// Addresses this component listens on, to catch two components on one port.
    fn listen_endpoints(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Recovers a component's own config type from the erased one.
pub fn config_as<T: ComponentConfig>(config: &dyn ComponentConfig) -> Result<&T, ComponentError> {
    let any: &dyn Any = config;
    any.downcast_ref::<T>().ok_or_else(|| {
        ComponentError::new(format!(
            "internal: config of type {} expected",
            std::any::type_name::<T>()
        ))
    })
}

/// Where a component is being built: its ID and the agent's telemetry.
#[derive(Clone)]
pub struct CreateSettings {
    pub id: ComponentId,
    pub telemetry: Arc<Telemetry>,
}

/// The per-signal consumers a receiver (or the receiving side of a connector) feeds.
#[derive(Clone, Default)]
pub struct SignalConsumers {
    pub traces: Option<Arc<dyn Consumer>>,
    pub metrics: Option<Arc<dyn Consumer>>,
    pub logs: Option<Arc<dyn Consumer>>,
}

impl SignalConsumers {
    pub fn get(&self, signal: Signal) -> Option<&Arc<dyn Consumer>> {
        match signal {
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
            Signal::Logs => self.logs.as_ref(),
        }
    }

    pub fn set(&mut self, signal: Signal, consumer: Arc<dyn Consumer>) {
        match signal {
            Signal::Traces => self.traces = Some(consumer),
            Signal::Metrics => self.metrics = Some(consumer),
            Signal::Logs => self.logs = Some(consumer),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ack_resolves_when_last_clone_drops() {
        let (ack, mut rx) = Ack::new();
        let other = ack.clone();
        drop(ack);
        assert!(rx.try_recv().is_err(), "still held by one branch");
        drop(other);
        assert_eq!(rx.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn ack_reports_first_failure() {
        let (ack, rx) = Ack::new();
        let other = ack.clone();
        other.fail(ConsumeError::permanent("first"));
        ack.fail(ConsumeError::permanent("second"));
        drop(other);
        drop(ack);
        assert_eq!(rx.await.unwrap().unwrap_err().message, "first");
    }
}
