//! The receiver's factory and lifecycle: the consumer is built and subscribed at start, and
//! its task drains and commits at shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use ferrotel_pipeline::component::{
    config_as, Component, ComponentConfig, ComponentError, CreateSettings, Host, SignalConsumers,
};
use ferrotel_pipeline::config::decode::{decode_squashed, DecodeError};
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::exporter::config::RetrySettings;
use ferrotel_pipeline::factory::{Factory, ReceiverFactory, Stability};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_pipeline::Signal;

use super::config::KafkaReceiverConfig;
use super::consumer::{Context, Reader, Routes, Shared};
use super::offsets::Marking;

impl ComponentConfig for KafkaReceiverConfig {}

pub struct KafkaReceiverFactory;

impl Factory for KafkaReceiverFactory {
    fn type_name(&self) -> &'static str {
        "kafka"
    }

    fn decode(&self, value: &Value) -> Result<Box<dyn ComponentConfig>, DecodeError> {
        let (client, consumer) = decode_squashed(value)?;
        let config = KafkaReceiverConfig { client, consumer };
        config.validate().map_err(|message| DecodeError {
            path: Vec::new(),
            message,
        })?;
        Ok(Box::new(config))
    }
}

impl ReceiverFactory for KafkaReceiverFactory {
    fn stability(&self, _signal: Signal) -> Option<Stability> {
        Some(Stability::Beta)
    }

    fn create(
        &self,
        settings: CreateSettings,
        config: &dyn ComponentConfig,
        consumers: SignalConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = config_as::<KafkaReceiverConfig>(config)?.clone();
        let id = settings.id.to_string();
        // Checked here, before anything starts: topics, encodings, routing.
        let routes = Routes::new(&config, &consumers)
            .map_err(|e| ComponentError::new(format!("{id}: {e}")))?;
        Ok(Arc::new(KafkaReceiver {
            id,
            config,
            consumers,
            routes: Mutex::new(Some(routes)),
            telemetry: settings.telemetry,
            shutdown: CancellationToken::new(),
            task: Mutex::new(None),
            shared: Mutex::new(None),
        }))
    }
}

struct KafkaReceiver {
    id: String,
    config: KafkaReceiverConfig,
    consumers: SignalConsumers,
    routes: Mutex<Option<Routes>>,
    telemetry: Arc<Telemetry>,
    shutdown: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    shared: Mutex<Option<Arc<Shared>>>,
}

impl KafkaReceiver {
    /// The consumer's librdkafka settings.
    fn client_config(&self) -> Result<rdkafka::ClientConfig, String> {
        let c = &self.config.consumer;
        let mut rd = rdkafka::ClientConfig::new();
        for (key, value) in self.config.client.librdkafka_properties()? {
            rd.set(key, value);
        }
        let ms = |d: &GoDuration| d.get().as_millis().max(1).to_string();
        // librdkafka's upper bounds (fetch.max.bytes; queued.max.messages.kbytes is at most
        // 2097151 KiB, which four of these stay under).
        const FETCH_MAX: i64 = 512 * 1024 * 1024;
        let fetch_max = c.max_fetch_size.clamp(1000, FETCH_MAX);
        rd.set("group.id", &c.group_id)
            // Offsets are committed by the receiver, once the pipelines are done.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &c.initial_offset)
            .set("session.timeout.ms", ms(&c.session_timeout))
            .set("heartbeat.interval.ms", ms(&c.heartbeat_interval))
            .set("fetch.min.bytes", c.min_fetch_size.max(1).to_string())
            .set("fetch.wait.max.ms", ms(&c.max_fetch_wait))
            // What is fetched ahead waits in memory: keep it to a few fetches.
            .set(
                "queued.max.messages.kbytes",
                (fetch_max.max(1 << 20) / 1024 * 4).to_string(),
            );
        if c.max_fetch_size > 0 {
            rd.set("fetch.max.bytes", fetch_max.to_string());
            // librdkafka wants a fetch to hold at least its largest protocol message.
            rd.set(
                "message.max.bytes",
                fetch_max.clamp(1000, 1_000_000).to_string(),
            );
        }
        if c.max_partition_fetch_size > 0 {
            rd.set(
                "max.partition.fetch.bytes",
                c.max_partition_fetch_size.clamp(1, FETCH_MAX).to_string(),
            );
        }
        let strategies = self.config.rebalance_strategies()?;
        if !strategies.is_empty() {
            rd.set("partition.assignment.strategy", strategies.join(","));
        }
        if !c.group_instance_id.is_empty() {
            rd.set("group.instance.id", &c.group_instance_id);
        }
        Ok(rd)
    }

    fn start_consumer(&self) -> Result<(), ComponentError> {
        let fail = |e: String| ComponentError::new(format!("{}: {e}", self.id));
        let routes = self
            .routes
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .ok_or_else(|| fail("started twice".to_string()))?;
        if routes.topics.is_empty() {
            return Ok(());
        }
        let c = &self.config.consumer;
        let marking = Marking {
            after: c.message_marking.after,
            on_error: c.message_marking.on_error,
            on_permanent_error: c
                .message_marking
                .on_permanent_error
                .unwrap_or(c.message_marking.on_error),
        };
        let shared = Arc::new(Shared::new(
            self.id.clone(),
            marking,
            self.telemetry.kafka_receiver(&self.id),
        ));
        let consumer: StreamConsumer<Context> = self
            .client_config()
            .map_err(&fail)?
            .create_with_context(Context {
                shared: shared.clone(),
            })
            .map_err(|e| fail(format!("cannot create the Kafka consumer: {e}")))?;
        let topics: Vec<&str> = routes.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| fail(format!("cannot subscribe to {topics:?}: {e}")))?;
        info!(receiver = %self.id, topics = ?topics, group_id = %c.group_id,
            brokers = %self.config.client.brokers.join(","), "Starting Kafka consumer");
        if let Ok(mut slot) = self.shared.lock() {
            *slot = Some(shared.clone());
        }
        let commit_every = if c.autocommit.enable {
            c.autocommit.interval.get().max(Duration::from_millis(10))
        } else {
            Duration::from_millis(100)
        };
        // Refused records are retried with reading paused; without `error_backoff` the
        // pauses are short and the retries never give up.
        let backoff = if c.error_backoff.enabled {
            c.error_backoff.clone()
        } else {
            RetrySettings {
                enabled: false,
                initial_interval: GoDuration::from_millis(100),
                max_interval: GoDuration::from_secs(5),
                max_elapsed_time: GoDuration::from_secs(0),
                multiplier: 1.5,
                randomization_factor: 0.0,
            }
        };
        let reader = Reader::new(
            shared,
            routes,
            self.consumers.clone(),
            self.telemetry.receiver(&self.id, "kafka"),
            commit_every,
            backoff,
            self.shutdown.clone(),
        );
        let task = tokio::spawn(reader.run(consumer));
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(task);
        }
        Ok(())
    }
}

#[async_trait]
impl Component for KafkaReceiver {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        self.start_consumer()
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.shutdown.cancel();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(mut task) = task {
            // Draining waits up to 10 s for deliveries; closing leaves the group.
            if tokio::time::timeout(Duration::from_secs(20), &mut task)
                .await
                .is_err()
            {
                warn!(receiver = %self.id, "The Kafka consumer did not stop in time; records after its last commit will be read again");
                // Nothing may be committed from here on: what the exporters drop at their
                // own shutdown must be read again.
                let shared = self.shared.lock().ok().and_then(|s| s.clone());
                if let Some(shared) = shared {
                    shared.tracker().close();
                }
                task.abort();
            }
        }
        Ok(())
    }
}
