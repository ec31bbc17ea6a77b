//! The exporter's factory and sender over librdkafka's producer.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::debug;

use ferrotel_pipeline::component::{
    config_as, ComponentConfig, ComponentError, ConsumerComponent, CreateSettings,
};
use ferrotel_pipeline::config::decode::{decode_squashed, DecodeError};
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::exporter::{ExportError, HelperSettings, QueuedExporter, Sender, Sent};
use ferrotel_pipeline::factory::{ExporterFactory, Factory, Stability};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue};
use ferrotel_pipeline::pdata::{Payload, Signal};

use super::config::{Encoding, KafkaExporterConfig};
use super::split;

impl ComponentConfig for KafkaExporterConfig {}

pub struct KafkaExporterFactory;

impl Factory for KafkaExporterFactory {
    fn type_name(&self) -> &'static str {
        "kafka"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        let (client, producer_side) = decode_squashed(value)?;
        let config = KafkaExporterConfig {
            client,
            producer_side,
        };
        config.validate().map_err(|message| DecodeError {
            path: Vec::new(),
            message,
        })?;
        Ok(Box::new(config))
    }
}

impl ExporterFactory for KafkaExporterFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
    ) -> Result<Arc<dyn ConsumerComponent>, ComponentError> {
        let config = config_as::<KafkaExporterConfig>(config)?.clone();
        let id = settings.id.to_string();
        // The broker's acknowledgement timeout bounds an attempt, as upstream's does.
        let helper = HelperSettings {
            timeout: Duration::ZERO,
            retry: config.producer_side.retry_on_failure.clone(),
            queue: config.producer_side.sending_queue.clone(),
        };
        let sender = KafkaSender {
            id: id.clone(),
            config,
            producer: Mutex::new(None),
        };
        Ok(QueuedExporter::build(
            &id,
            &settings.telemetry,
            helper,
            sender,
        ))
    }
}

/// One record to produce; `sent` is set once the broker has it, so that a retry resends only
/// what was not taken.
struct Record {
    topic: String,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    sent: AtomicBool,
}

/// A batch as records, and the items that no record could hold.
pub struct KafkaRequest {
    signal: Signal,
    records: Vec<Record>,
    too_large: u64,
}

struct KafkaSender {
    id: String,
    config: KafkaExporterConfig,
    /// Built at start; taken at shutdown.
    producer: Mutex<Option<FutureProducer>>,
}

impl KafkaSender {
    fn producer(&self) -> Result<FutureProducer, ExportError> {
        self.producer
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .ok_or_else(|| ExportError::retryable("the exporter is not running"))
    }

    /// The producer's librdkafka settings.
    fn client_config(&self) -> Result<rdkafka::ClientConfig, String> {
        let mut rd = rdkafka::ClientConfig::new();
        for (key, value) in self.config.client.librdkafka_properties()? {
            rd.set(key, value);
        }
        let producer = &self.config.producer_side.producer;
        let acks = match self.config.required_acks()? {
            -1 => "all".to_string(),
            n => n.to_string(),
        };
        let timeout_ms = self
            .config
            .producer_side
            .timeout
            .get()
            .as_millis()
            .max(1)
            .to_string();
        rd.set("acks", acks)
            .set("compression.type", producer.compression.clone())
            .set("message.max.bytes", producer.max_message_bytes.to_string())
            .set("linger.ms", producer.linger.get().as_millis().to_string())
            .set(
                "batch.num.messages",
                producer.flush_max_messages.clamp(1, 1_000_000).to_string(),
            )
            .set("request.timeout.ms", timeout_ms.clone())
            // A record the broker has not taken within the timeout fails the attempt, which
            // the queue retries with backoff.
            .set("message.timeout.ms", timeout_ms);
        // Keyed records: FNV-1a (upstream's default hasher) or murmur2 (the Java client's);
        // records without a key go to any partition.
        let hasher = self
            .config
            .producer_side
            .record_partitioner
            .sticky_key
            .as_ref()
            .map_or("sarama_compat", |s| s.hasher.as_str());
        rd.set(
            "partitioner",
            if hasher == "murmur2" {
                "murmur2_random"
            } else {
                "fnv1a_random"
            },
        );
        if producer.compression_params.level > 0 {
            rd.set(
                "compression.level",
                producer.compression_params.level.to_string(),
            );
        }
        Ok(rd)
    }

    /// Whether batches of `signal` go out whole, one record each (no partitioning option and
    /// no `topic_from_attribute`).
    fn whole_batches(&self, signal: Signal) -> bool {
        let p = &self.config.producer_side;
        let partitioned = match signal {
            Signal::Traces => p.partition_traces_by_id,
            Signal::Metrics => p.partition_metrics_by_resource_attributes,
            Signal::Logs => p.partition_logs_by_trace_id || p.partition_logs_by_resource_attributes,
        };
        !partitioned && p.topic_from_attribute.is_empty()
    }

    /// The partitioned parts of a decoded batch, each with its key; a batch that is not
    /// partitioned stays where it is.
    fn parts<'a>(&self, payload: Cow<'a, Payload>) -> Vec<split::Keyed<Cow<'a, Payload>>> {
        let p = &self.config.producer_side;
        let signal = payload.signal();
        if self.whole_batches(signal) {
            return vec![(None, payload)];
        }
        let (by_trace, keyed_by_resource) = match signal {
            Signal::Traces => (p.partition_traces_by_id, false),
            Signal::Metrics => (false, p.partition_metrics_by_resource_attributes),
            Signal::Logs => (
                p.partition_logs_by_trace_id,
                p.partition_logs_by_resource_attributes,
            ),
        };
        let parts = if by_trace {
            split::by_trace_id(payload.into_owned())
        } else {
            // `topic_from_attribute` alone also cuts per resource, so that each resource
            // reaches its own topic, but keys records only when a partitioning option asks,
            // as upstream does.
            split::by_resource(payload.into_owned())
                .into_iter()
                .map(|(k, part)| (k.filter(|_| keyed_by_resource), part))
                .collect()
        };
        parts
            .into_iter()
            .map(|(k, part)| (k, Cow::Owned(part)))
            .collect()
    }

    /// The topic of a part: its first resource's `topic_from_attribute`, else the signal's.
    fn topic_of(&self, part: &Payload, default: &str) -> String {
        let attribute = &self.config.producer_side.topic_from_attribute;
        if attribute.is_empty() {
            return default.to_string();
        }
        let attributes = match part {
            Payload::Traces(t) => t.0.resource_spans.first().and_then(|r| r.resource.as_ref()),
            Payload::Metrics(m) => {
                m.0.resource_metrics
                    .first()
                    .and_then(|r| r.resource.as_ref())
            }
            Payload::Logs(l) => l.0.resource_logs.first().and_then(|r| r.resource.as_ref()),
            Payload::Encoded(_) => None,
        };
        attributes
            .and_then(|r| r.attributes.iter().find(|kv| &kv.key == attribute))
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| default.to_string())
    }
}

/// The space a record's value may take: the broker's limit less what the key, the record
/// framing and the batch header take.
fn value_limit(max_message_bytes: i64, key: Option<&[u8]>) -> usize {
    const OVERHEAD: usize = 128;
    usize::try_from(max_message_bytes)
        .unwrap_or(0)
        .saturating_sub(OVERHEAD + key.map_or(0, <[u8]>::len))
}

/// A log body as upstream's `raw` encoding writes it: bytes as they are, anything else as
/// JSON (a string with its quotes); `None` for an empty body.
fn raw_body(body: Option<&AnyValue>) -> Option<Vec<u8>> {
    match body.and_then(|b| b.value.as_ref())? {
        any_value::Value::BytesValue(bytes) => Some(bytes.clone()),
        other => serde_json::to_vec(&json_of(other)).ok(),
    }
}

fn json_of(value: &any_value::Value) -> serde_json::Value {
    use any_value::Value as V;
    let of = |v: &AnyValue| v.value.as_ref().map_or(serde_json::Value::Null, json_of);
    match value {
        V::StringValue(s) => serde_json::Value::String(s.clone()),
        V::BoolValue(b) => serde_json::Value::Bool(*b),
        V::IntValue(i) => serde_json::Value::from(*i),
        V::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        V::ArrayValue(a) => serde_json::Value::Array(a.values.iter().map(of).collect()),
        V::KvlistValue(m) => serde_json::Value::Object(
            m.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map_or(serde_json::Value::Null, of),
                    )
                })
                .collect(),
        ),
        V::BytesValue(b) => {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        V::StringValueStrindex(_) => serde_json::Value::Null,
    }
}

/// Whether librdkafka's error can go away by itself (the queue retries it).
fn retryable(err: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    let code = match err {
        KafkaError::MessageProduction(code) => *code,
        _ => return true,
    };
    !matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessage
            | C::InvalidMessageSize
            | C::InvalidRecord
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::UnsupportedVersion
            | C::InvalidRequiredAcks
    )
}

#[async_trait]
impl Sender for KafkaSender {
    type Request = KafkaRequest;

    fn prepare(&self, payload: &Payload) -> Result<KafkaRequest, ExportError> {
        let signal = payload.signal();
        let destination = self
            .config
            .destination(signal)
            .map_err(ExportError::permanent)?;
        let max = self.config.producer_side.producer.max_message_bytes;
        // A batch still in its protobuf encoding that fits goes out as it came, undecoded.
        if let Payload::Encoded(encoded) = payload {
            if destination.encoding == Encoding::OtlpProto
                && self.whole_batches(signal)
                && encoded.encoded_len() <= value_limit(max, None)
            {
                return Ok(KafkaRequest {
                    signal,
                    records: vec![Record {
                        topic: destination.topic,
                        key: None,
                        value: encoded.to_vec(),
                        sent: AtomicBool::new(false),
                    }],
                    too_large: 0,
                });
            }
        }
        let decoded = payload
            .decoded()
            .map_err(|e| ExportError::permanent(e.to_string()))?;
        let mut records = Vec::new();
        let mut too_large = 0u64;
        for (key, part) in self.parts(decoded) {
            let topic = self.topic_of(&part, &destination.topic);
            if destination.encoding == Encoding::Raw {
                let Payload::Logs(logs) = part.as_ref() else {
                    continue;
                };
                for record in logs
                    .0
                    .resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .flat_map(|s| &s.log_records)
                {
                    let Some(value) = raw_body(record.body.as_ref()) else {
                        continue;
                    };
                    if value.len() > value_limit(max, key.as_deref()) {
                        too_large += 1;
                        continue;
                    }
                    records.push(Record {
                        topic: topic.clone(),
                        key: key.clone(),
                        value,
                        sent: AtomicBool::new(false),
                    });
                }
                continue;
            }
            let encode = |p: &Payload| match destination.encoding {
                Encoding::OtlpJson => p
                    .to_json()
                    .map_err(|e| ExportError::permanent(format!("encoding JSON: {e}"))),
                _ => Ok(p.to_protobuf()),
            };
            let (fits, oversized) = split::fit(part, value_limit(max, key.as_deref()), &encode)?;
            too_large += oversized.iter().map(|p| p.item_count() as u64).sum::<u64>();
            for value in fits {
                records.push(Record {
                    topic: topic.clone(),
                    key: key.clone(),
                    value,
                    sent: AtomicBool::new(false),
                });
            }
        }
        Ok(KafkaRequest {
            signal,
            records,
            too_large,
        })
    }

    fn accepts_encoded(&self) -> bool {
        // Encoded batches are passed through when every signal goes out whole in protobuf;
        // otherwise they are decoded before the exporter sees them.
        Signal::ALL.into_iter().all(|signal| {
            self.whole_batches(signal)
                && self
                    .config
                    .destination(signal)
                    .is_ok_and(|d| d.encoding == Encoding::OtlpProto)
        })
    }

    async fn send(&self, request: &KafkaRequest) -> Result<Sent, ExportError> {
        let producer = self.producer()?;
        let mut headers: Vec<(&str, &str)> = self
            .config
            .producer_side
            .record_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if self.config.producer_side.signal_header {
            // Lets one consumer tell the signals of a shared topic apart.
            headers.push(("otelcol.signal", request.signal.as_str()));
        }
        let deliveries = request
            .records
            .iter()
            .filter(|r| !r.sent.load(Ordering::Acquire))
            .map(|r| {
                let mut record = FutureRecord::to(&r.topic).payload(&r.value);
                if let Some(key) = &r.key {
                    record = record.key(key);
                }
                if !headers.is_empty() {
                    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
                    for &(name, value) in &headers {
                        owned = owned.insert(Header {
                            key: name,
                            value: Some(value),
                        });
                    }
                    record = record.headers(owned);
                }
                let producer = producer.clone();
                async move {
                    let outcome = producer.send(record, Duration::ZERO).await;
                    if outcome.is_ok() {
                        r.sent.store(true, Ordering::Release);
                    }
                    outcome.map(drop).map_err(|(err, _)| err)
                }
            });
        let outcomes = futures::future::join_all(deliveries).await;
        if let Some(err) = outcomes.into_iter().find_map(Result::err) {
            let message = format!("producing to Kafka failed: {err}");
            return Err(if retryable(&err) {
                ExportError::retryable(message)
            } else {
                ExportError::permanent(message)
            });
        }
        Ok(Sent {
            rejected_items: request.too_large,
            message: if request.too_large > 0 {
                format!(
                    "{} items are each larger than producer.max_message_bytes ({}) and were not sent",
                    request.too_large, self.config.producer_side.producer.max_message_bytes
                )
            } else {
                String::new()
            },
        })
    }

    async fn start(&self) -> Result<(), ComponentError> {
        let rd = self
            .client_config()
            .map_err(|e| ComponentError::new(format!("{}: {e}", self.id)))?;
        let producer: FutureProducer = rd.create().map_err(|e| {
            ComponentError::new(format!(
                "{}: cannot create the Kafka producer: {e}",
                self.id
            ))
        })?;
        if let Ok(mut slot) = self.producer.lock() {
            *slot = Some(producer);
        }
        debug!(exporter = %self.id, brokers = %self.config.client.brokers.join(","), "Kafka producer ready (connects on first use)");
        Ok(())
    }

    async fn shutdown(&self) {
        let producer = self.producer.lock().ok().and_then(|mut p| p.take());
        if let Some(producer) = producer {
            // Everything acknowledged to the queue was awaited already; this lets librdkafka
            // finish its own requests before its threads stop.
            let _ =
                tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
        }
    }
}
