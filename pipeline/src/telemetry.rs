//! The agent's own metrics, with upstream's `otelcol_*` names, in a Prometheus registry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::pdata::Signal;

/// How metric names are spelled on the Prometheus endpoint. Upstream's default reader leaves
/// out type suffixes (`_total`) and units; a reader configured with
/// `without_type_suffix: false` / `without_units: false` adds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Naming {
    pub type_suffix: bool,
    pub units: bool,
}

impl Naming {
    fn counter(&self, base: &str, unit: Option<&str>) -> String {
        let mut name = self.with_unit(base, unit);
        if self.type_suffix {
            name.push_str("_total");
        }
        name
    }

    fn gauge(&self, base: &str, unit: Option<&str>) -> String {
        self.with_unit(base, unit)
    }

    fn histogram(&self, base: &str, unit: Option<&str>) -> String {
        self.with_unit(base, unit)
    }

    fn with_unit(&self, base: &str, unit: Option<&str>) -> String {
        match unit {
            Some(unit) if self.units && !base.ends_with(&format!("_{unit}")) => {
                format!("{base}_{unit}")
            }
            _ => base.to_string(),
        }
    }
}

/// One counter per signal, already resolved for a component's labels.
#[derive(Clone)]
pub struct SignalCounters {
    traces: IntCounter,
    metrics: IntCounter,
    logs: IntCounter,
}

impl SignalCounters {
    pub fn add(&self, signal: Signal, n: usize) {
        let c = match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        };
        c.inc_by(n as u64);
    }

    pub fn get(&self, signal: Signal) -> u64 {
        match signal {
            Signal::Traces => self.traces.get(),
            Signal::Metrics => self.metrics.get(),
            Signal::Logs => self.logs.get(),
        }
    }
}

/// Counter families with one member per signal (`..._spans`, `..._metric_points`, `..._log_records`).
struct SignalFamily {
    traces: IntCounterVec,
    metrics: IntCounterVec,
    logs: IntCounterVec,
}

impl SignalFamily {
    fn new(
        registry: &Registry,
        naming: Naming,
        prefix: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<Self> {
        let make = |signal: Signal| -> prometheus::Result<IntCounterVec> {
            let name = naming.counter(&format!("{prefix}_{}", signal.item_name()), None);
            let help = format!("{help} ({})", signal.item_name().replace('_', " "));
            let vec = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec)
        };
        Ok(SignalFamily {
            traces: make(Signal::Traces)?,
            metrics: make(Signal::Metrics)?,
            logs: make(Signal::Logs)?,
        })
    }

    fn resolve(&self, labels: &[&str]) -> SignalCounters {
        SignalCounters {
            traces: self.traces.with_label_values(labels),
            metrics: self.metrics.with_label_values(labels),
            logs: self.logs.with_label_values(labels),
        }
    }
}

/// What a receiver counts, per upstream's receiverhelper.
#[derive(Clone)]
pub struct ReceiverMetrics {
    /// Items pushed into the pipeline successfully.
    pub accepted: SignalCounters,
    /// Items the pipeline refused (backpressure, memory limit, permanent downstream error).
    pub refused: SignalCounters,
    /// Items that could not be read at all (undecodable requests).
    pub failed: SignalCounters,
}

/// What an exporter counts, per upstream's exporterhelper.
#[derive(Clone)]
pub struct ExporterMetrics {
    pub sent: SignalCounters,
    pub send_failed: SignalCounters,
    pub enqueue_failed: SignalCounters,
    pub queue_size: IntGauge,
    pub queue_capacity: IntGauge,
    pub in_flight_requests: IntGauge,
}

/// What every processor counts.
#[derive(Clone)]
pub struct ProcessorMetrics {
    pub incoming: IntCounter,
    pub outgoing: IntCounter,
}

/// What the `batch` processor counts, per upstream's batchprocessor.
#[derive(Clone)]
pub struct BatchProcessorMetrics {
    /// Items per batch sent.
    pub send_size: Histogram,
    /// Encoded bytes per batch sent; only at the `detailed` metrics level, as upstream.
    pub send_size_bytes: Option<Histogram>,
    pub size_trigger_send: IntCounter,
    pub timeout_trigger_send: IntCounter,
    /// Distinct metadata value combinations (batchers) currently held.
    pub metadata_cardinality: IntGauge,
    /// Items dropped after downstream refused them for good (ferrotel's own).
    pub dropped_items: IntCounter,
}

/// What the `memory_limiter` processor counts.
#[derive(Clone)]
pub struct MemoryLimiterMetrics {
    pub accepted: SignalCounters,
    pub refused: SignalCounters,
}

/// Upstream's bucket boundaries for `otelcol_processor_batch_batch_send_size`.
const BATCH_SIZE_BUCKETS: [f64; 22] = [
    10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0,
    6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 20000.0, 30000.0, 50000.0, 100000.0,
];

/// Upstream's bucket boundaries for `otelcol_processor_batch_batch_send_size_bytes`.
const BATCH_BYTES_BUCKETS: [f64; 39] = [
    10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0,
    6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 20000.0, 30000.0, 50000.0, 100000.0, 200000.0,
    300000.0, 400000.0, 500000.0, 600000.0, 700000.0, 800000.0, 900000.0, 1000000.0, 2000000.0,
    3000000.0, 4000000.0, 5000000.0, 6000000.0, 7000000.0, 8000000.0, 9000000.0,
];

/// The processor-specific families, registered together.
struct ProcessorFamilies {
    batch_send_size: HistogramVec,
    batch_send_size_bytes: HistogramVec,
    batch_size_trigger: IntCounterVec,
    batch_timeout_trigger: IntCounterVec,
    batch_cardinality: IntGaugeVec,
    dropped: IntCounterVec,
    memory_limiter: [SignalFamily; 2],
}

impl ProcessorFamilies {
    fn new(r: &Registry, naming: Naming) -> prometheus::Result<Self> {
        let pl = &["processor"];
        let histogram = |base: &str, help: &str, unit, buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(naming.histogram(base, unit), help).buckets(buckets.to_vec()),
                pl,
            )?;
            r.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let counter = |base: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(naming.counter(base, None), help), labels)?;
            r.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let batch_cardinality = IntGaugeVec::new(
            Opts::new(
                naming.gauge("otelcol_processor_batch_metadata_cardinality", None),
                "Number of distinct metadata value combinations being processed",
            ),
            pl,
        )?;
        r.register(Box::new(batch_cardinality.clone()))?;
        Ok(ProcessorFamilies {
            batch_send_size: histogram(
                "otelcol_processor_batch_batch_send_size",
                "Number of units in the batch",
                None,
                &BATCH_SIZE_BUCKETS,
            )?,
            batch_send_size_bytes: histogram(
                "otelcol_processor_batch_batch_send_size_bytes",
                "Number of bytes in batch that was sent",
                Some("bytes"),
                &BATCH_BYTES_BUCKETS,
            )?,
            batch_size_trigger: counter(
                "otelcol_processor_batch_batch_size_trigger_send",
                "Number of times the batch was sent due to a size trigger",
                pl,
            )?,
            batch_timeout_trigger: counter(
                "otelcol_processor_batch_timeout_trigger_send",
                "Number of times the batch was sent due to a timeout trigger",
                pl,
            )?,
            batch_cardinality,
            dropped: counter(
                "ferrotel_processor_dropped_items",
                "Number of items a processor dropped because downstream refused them for good",
                &["processor", "otel_signal"],
            )?,
            memory_limiter: [
                SignalFamily::new(
                    r,
                    naming,
                    "otelcol_processor_memory_limiter_accepted",
                    "Number of items passed on by the memory limiter",
                    pl,
                )?,
                SignalFamily::new(
                    r,
                    naming,
                    "otelcol_processor_memory_limiter_refused",
                    "Number of items refused by the memory limiter because memory use was high",
                    pl,
                )?,
            ],
        })
    }
}

/// The `kafka` receiver's metrics for one partition it reads, resolved once per assignment.
#[derive(Clone)]
pub struct KafkaPartitionMetrics {
    /// Records handed on (`outcome="success"`) or that failed (`outcome="failure"`).
    pub records_success: IntCounter,
    pub records_failure: IntCounter,
    /// Records that could not be decoded, per signal.
    pub unmarshal_failed: SignalCounters,
    /// The offset of the last record read.
    pub current_offset: IntGauge,
}

/// The `kafka` receiver's metrics (upstream's `otelcol_kafka_receiver_*`).
#[derive(Clone)]
pub struct KafkaReceiverMetrics {
    receiver: String,
    records: IntCounterVec,
    unmarshal_failed: [IntCounterVec; 3],
    current_offset: IntGaugeVec,
    pub partition_start: IntCounter,
    pub partition_close: IntCounter,
}

impl KafkaReceiverMetrics {
    pub fn partition(&self, topic: &str, partition: i32) -> KafkaPartitionMetrics {
        let partition = partition.to_string();
        let labels = [self.receiver.as_str(), topic, partition.as_str()];
        let record = |outcome: &str| {
            self.records.with_label_values(&[
                self.receiver.as_str(),
                topic,
                partition.as_str(),
                outcome,
            ])
        };
        KafkaPartitionMetrics {
            records_success: record("success"),
            records_failure: record("failure"),
            unmarshal_failed: SignalCounters {
                traces: self.unmarshal_failed[0].with_label_values(&labels),
                metrics: self.unmarshal_failed[1].with_label_values(&labels),
                logs: self.unmarshal_failed[2].with_label_values(&labels),
            },
            current_offset: self.current_offset.with_label_values(&labels),
        }
    }
}

/// The families behind [`KafkaReceiverMetrics`], registered once for every `kafka` receiver.
struct KafkaReceiverFamilies {
    records: IntCounterVec,
    unmarshal_failed: [IntCounterVec; 3],
    current_offset: IntGaugeVec,
    partition_start: IntCounterVec,
    partition_close: IntCounterVec,
}

impl KafkaReceiverFamilies {
    fn new(r: &Registry, naming: Naming) -> prometheus::Result<Self> {
        let counter = |base: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(naming.counter(base, None), help), labels)?;
            r.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let partition = &["receiver", "topic", "partition"];
        let unmarshal = |signal: Signal| {
            counter(
                &format!(
                    "otelcol_kafka_receiver_unmarshal_failed_{}",
                    signal.item_name()
                ),
                &format!(
                    "Number of {} in Kafka records that could not be decoded",
                    signal.item_name().replace('_', " ")
                ),
                partition,
            )
        };
        let current_offset = IntGaugeVec::new(
            Opts::new(
                naming.gauge("otelcol_kafka_receiver_current_offset", None),
                "Offset of the last record read from the partition",
            ),
            partition,
        )?;
        r.register(Box::new(current_offset.clone()))?;
        Ok(KafkaReceiverFamilies {
            records: counter(
                "otelcol_kafka_receiver_records",
                "Number of Kafka records read, by outcome",
                &["receiver", "topic", "partition", "outcome"],
            )?,
            unmarshal_failed: [
                unmarshal(Signal::Traces)?,
                unmarshal(Signal::Metrics)?,
                unmarshal(Signal::Logs)?,
            ],
            current_offset,
            partition_start: counter(
                "otelcol_kafka_receiver_partition_start",
                "Number of partitions assigned to this receiver",
                &["receiver"],
            )?,
            partition_close: counter(
                "otelcol_kafka_receiver_partition_close",
                "Number of partitions revoked from this receiver",
                &["receiver"],
            )?,
        })
    }
}

/// The `prometheusremotewrite` exporter's own metrics (upstream's
/// `otelcol_exporter_prometheusremotewrite_*`), resolved for one exporter.
#[derive(Clone)]
pub struct RemoteWriteMetrics {
    /// Batches of which some metrics could not be translated.
    pub failed_translations: IntCounter,
    /// Prometheus series translated from OTLP metrics.
    pub translated_time_series: IntCounter,
}

/// The families behind [`RemoteWriteMetrics`].
struct RemoteWriteFamilies {
    failed_translations: IntCounterVec,
    translated_time_series: IntCounterVec,
}

impl RemoteWriteFamilies {
    fn new(r: &Registry, naming: Naming) -> prometheus::Result<Self> {
        let counter = |base: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(naming.counter(base, None), help), &["exporter"])?;
            r.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(RemoteWriteFamilies {
            failed_translations: counter(
                "otelcol_exporter_prometheusremotewrite_failed_translations",
                "Number of translation operations that failed to translate metrics from Otel to Prometheus",
            )?,
            translated_time_series: counter(
                "otelcol_exporter_prometheusremotewrite_translated_time_series",
                "Number of Prometheus time series that were translated from OTel metrics",
            )?,
        })
    }
}

/// The `filter` processor's counts of what it dropped (upstream's
/// `otelcol_processor_filter_{spans,datapoints,logs}.filtered`, with the dot written `_` as
/// the Prometheus text format requires), labelled `filter` with the processor's id.
struct FilterFamilies([IntCounterVec; 3]);

impl FilterFamilies {
    fn new(r: &Registry, naming: Naming) -> prometheus::Result<Self> {
        let counter = |base: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(naming.counter(base, None), help), &["filter"])?;
            r.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(FilterFamilies([
            counter(
                "otelcol_processor_filter_spans_filtered",
                "Number of spans dropped by the filter processor",
            )?,
            counter(
                "otelcol_processor_filter_datapoints_filtered",
                "Number of metric data points dropped by the filter processor",
            )?,
            counter(
                "otelcol_processor_filter_logs_filtered",
                "Number of logs dropped by the filter processor",
            )?,
        ]))
    }
}

/// The agent's own metrics registry.
pub struct Telemetry {
    registry: Registry,
    receiver: [SignalFamily; 3],
    exporter: [SignalFamily; 3],
    queue_size: IntGaugeVec,
    queue_capacity: IntGaugeVec,
    in_flight: IntGaugeVec,
    processor_incoming: IntCounterVec,
    processor_outgoing: IntCounterVec,
    processors: ProcessorFamilies,
    kafka_receiver: KafkaReceiverFamilies,
    remote_write: RemoteWriteFamilies,
    filter: FilterFamilies,
    /// The `detailed` metrics level: metrics upstream only records there are recorded too.
    detailed: AtomicBool,
    pub naming: Naming,
    pub started: Instant,
}

/// Identity of this agent instance, as labels on every metric (as upstream does since v0.148).
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    pub name: String,
    pub version: String,
    pub instance_id: String,
}

impl Telemetry {
    pub fn new(naming: Naming, identity: &ServiceIdentity) -> prometheus::Result<Arc<Telemetry>> {
        let mut labels = std::collections::HashMap::new();
        labels.insert("service_name".to_string(), identity.name.clone());
        labels.insert("service_version".to_string(), identity.version.clone());
        labels.insert(
            "service_instance_id".to_string(),
            identity.instance_id.clone(),
        );
        let registry = Registry::new_custom(None, Some(labels))?;
        let r = &registry;
        let rl = &["receiver", "transport"];
        let el = &["exporter"];
        let receiver = [
            SignalFamily::new(
                r,
                naming,
                "otelcol_receiver_accepted",
                "Number of items successfully pushed into the pipeline",
                rl,
            )?,
            SignalFamily::new(
                r,
                naming,
                "otelcol_receiver_refused",
                "Number of items that could not be pushed into the pipeline",
                rl,
            )?,
            SignalFamily::new(
                r,
                naming,
                "otelcol_receiver_failed",
                "Number of items the receiver failed to process",
                rl,
            )?,
        ];
        let exporter = [
            SignalFamily::new(
                r,
                naming,
                "otelcol_exporter_sent",
                "Number of items successfully sent to the destination",
                el,
            )?,
            SignalFamily::new(
                r,
                naming,
                "otelcol_exporter_send_failed",
                "Number of items in failed attempts to send to the destination",
                el,
            )?,
            SignalFamily::new(
                r,
                naming,
                "otelcol_exporter_enqueue_failed",
                "Number of items that failed to be added to the sending queue",
                el,
            )?,
        ];
        let gauge = |base: &str, help: &str| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(naming.gauge(base, None), help), el)?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let queue_size = gauge(
            "otelcol_exporter_queue_size",
            "Current size of the sending queue",
        )?;
        let queue_capacity = gauge(
            "otelcol_exporter_queue_capacity",
            "Fixed capacity of the sending queue",
        )?;
        let in_flight = gauge(
            "otelcol_exporter_in_flight_requests",
            "Number of requests being sent right now",
        )?;
        let counter = |base: &str, help: &str| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(
                Opts::new(naming.counter(base, None), help),
                &["processor", "otel_signal"],
            )?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let processor_incoming = counter(
            "otelcol_processor_incoming_items",
            "Number of items passed to the processor",
        )?;
        let processor_outgoing = counter(
            "otelcol_processor_outgoing_items",
            "Number of items emitted from the processor",
        )?;
        let processors = ProcessorFamilies::new(r, naming)?;
        let kafka_receiver = KafkaReceiverFamilies::new(r, naming)?;
        let remote_write = RemoteWriteFamilies::new(r, naming)?;
        let filter = FilterFamilies::new(r, naming)?;
        let started = Instant::now();
        registry.register(Box::new(ProcessCollector::new(naming, started)))?;
        let build = IntGaugeVec::new(
            Opts::new(
                "ferrotel_build_info",
                "Build information of this ferrotel binary; always 1",
            ),
            &["version"],
        )?;
        build.with_label_values(&[identity.version.as_str()]).set(1);
        registry.register(Box::new(build))?;
        Ok(Arc::new(Telemetry {
            registry,
            receiver,
            exporter,
            queue_size,
            queue_capacity,
            in_flight,
            processor_incoming,
            processor_outgoing,
            processors,
            kafka_receiver,
            remote_write,
            filter,
            detailed: AtomicBool::new(false),
            naming,
            started,
        }))
    }

    /// A registry with default naming, for tests and tools.
    pub fn for_tests() -> Arc<Telemetry> {
        let identity = ServiceIdentity {
            name: "ferrotel".into(),
            version: "test".into(),
            instance_id: "test".into(),
        };
        match Telemetry::new(Naming::default(), &identity) {
            Ok(t) => t,
            // Registering fixed, distinct names into a fresh registry cannot collide.
            Err(err) => unreachable!("telemetry registry: {err}"),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn receiver(&self, receiver: &str, transport: &str) -> ReceiverMetrics {
        let labels = [receiver, transport];
        ReceiverMetrics {
            accepted: self.receiver[0].resolve(&labels),
            refused: self.receiver[1].resolve(&labels),
            failed: self.receiver[2].resolve(&labels),
        }
    }

    pub fn exporter(&self, exporter: &str) -> ExporterMetrics {
        let labels = [exporter];
        ExporterMetrics {
            sent: self.exporter[0].resolve(&labels),
            send_failed: self.exporter[1].resolve(&labels),
            enqueue_failed: self.exporter[2].resolve(&labels),
            queue_size: self.queue_size.with_label_values(&labels),
            queue_capacity: self.queue_capacity.with_label_values(&labels),
            in_flight_requests: self.in_flight.with_label_values(&labels),
        }
    }

    pub fn processor(&self, processor: &str, signal: Signal) -> ProcessorMetrics {
        let labels = [processor, signal.as_str()];
        ProcessorMetrics {
            incoming: self.processor_incoming.with_label_values(&labels),
            outgoing: self.processor_outgoing.with_label_values(&labels),
        }
    }

    /// Sets the `detailed` metrics level (`service::telemetry::metrics::level`); components
    /// built afterwards record the metrics upstream keeps for that level.
    pub fn set_detailed(&self, detailed: bool) {
        self.detailed.store(detailed, Ordering::Relaxed);
    }

    pub fn is_detailed(&self) -> bool {
        self.detailed.load(Ordering::Relaxed)
    }

    pub fn batch_processor(&self, processor: &str, signal: Signal) -> BatchProcessorMetrics {
        let labels = [processor];
        let f = &self.processors;
        BatchProcessorMetrics {
            send_size: f.batch_send_size.with_label_values(&labels),
            send_size_bytes: self
                .is_detailed()
                .then(|| f.batch_send_size_bytes.with_label_values(&labels)),
            size_trigger_send: f.batch_size_trigger.with_label_values(&labels),
            timeout_trigger_send: f.batch_timeout_trigger.with_label_values(&labels),
            metadata_cardinality: f.batch_cardinality.with_label_values(&labels),
            dropped_items: f.dropped.with_label_values(&[processor, signal.as_str()]),
        }
    }

    pub fn memory_limiter(&self, processor: &str) -> MemoryLimiterMetrics {
        let labels = [processor];
        MemoryLimiterMetrics {
            accepted: self.processors.memory_limiter[0].resolve(&labels),
            refused: self.processors.memory_limiter[1].resolve(&labels),
        }
    }

    pub fn kafka_receiver(&self, receiver: &str) -> KafkaReceiverMetrics {
        let f = &self.kafka_receiver;
        KafkaReceiverMetrics {
            receiver: receiver.to_string(),
            records: f.records.clone(),
            unmarshal_failed: f.unmarshal_failed.clone(),
            current_offset: f.current_offset.clone(),
            partition_start: f.partition_start.with_label_values(&[receiver]),
            partition_close: f.partition_close.with_label_values(&[receiver]),
        }
    }

    pub fn remote_write(&self, exporter: &str) -> RemoteWriteMetrics {
        let f = &self.remote_write;
        RemoteWriteMetrics {
            failed_translations: f.failed_translations.with_label_values(&[exporter]),
            translated_time_series: f.translated_time_series.with_label_values(&[exporter]),
        }
    }

    /// The `filter` processor's counter of dropped items for one signal.
    pub fn filter_processor(&self, processor: &str, signal: Signal) -> IntCounter {
        let i = match signal {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        };
        self.filter.0[i].with_label_values(&[processor])
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut out = String::new();
        if let Err(err) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::warn!(error = %err, "Failed to encode internal metrics");
        }
        out
    }
}

/// `otelcol_process_*`, read from /proc at scrape time.
struct ProcessCollector {
    descs: Vec<Desc>,
    naming: Naming,
    started: Instant,
}

const UPTIME: &str = "otelcol_process_uptime";
const CPU: &str = "otelcol_process_cpu_seconds";
const RSS: &str = "otelcol_process_memory_rss";
const HEAP: &str = "otelcol_process_runtime_heap_alloc_bytes";

impl ProcessCollector {
    fn new(naming: Naming, started: Instant) -> Self {
        let descs = [
            (
                naming.counter(UPTIME, Some("seconds")),
                "Uptime of the process",
            ),
            (
                naming.counter(CPU, Some("seconds")),
                "Total CPU user and system time in seconds",
            ),
            (
                naming.gauge(RSS, Some("bytes")),
                "Total physical memory (resident set size)",
            ),
            (
                naming.gauge(HEAP, Some("bytes")),
                "Bytes of allocated heap objects",
            ),
        ]
        .into_iter()
        .filter_map(|(name, help)| {
            Desc::new(name, help.to_string(), vec![], Default::default()).ok()
        })
        .collect();
        ProcessCollector {
            descs,
            naming,
            started,
        }
    }

    fn family(name: String, help: &str, kind: MetricType, value: f64) -> MetricFamily {
        let mut metric = Metric::default();
        match kind {
            MetricType::COUNTER => {
                let mut c = Counter::default();
                c.set_value(value);
                metric.set_counter(c);
            }
            _ => {
                let mut g = Gauge::default();
                g.set_value(value);
                metric.set_gauge(g);
            }
        }
        metric.set_label(Vec::<LabelPair>::new());
        let mut family = MetricFamily::default();
        family.set_name(name);
        family.set_help(help.to_string());
        family.set_field_type(kind);
        family.set_metric(vec![metric]);
        family
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let n = self.naming;
        let mut out = vec![Self::family(
            n.counter(UPTIME, Some("seconds")),
            "Uptime of the process",
            MetricType::COUNTER,
            self.started.elapsed().as_secs_f64(),
        )];
        if let Some(cpu) = process_cpu_seconds() {
            out.push(Self::family(
                n.counter(CPU, Some("seconds")),
                "Total CPU user and system time in seconds",
                MetricType::COUNTER,
                cpu,
            ));
        }
        if let Some(rss) = process_rss_bytes() {
            out.push(Self::family(
                n.gauge(RSS, Some("bytes")),
                "Total physical memory (resident set size)",
                MetricType::GAUGE,
                rss as f64,
            ));
        }
        if let Some(heap) = heap_allocated_bytes() {
            out.push(Self::family(
                n.gauge(HEAP, Some("bytes")),
                "Bytes of allocated heap objects",
                MetricType::GAUGE,
                heap as f64,
            ));
        }
        out
    }
}

static HEAP_PROBE: std::sync::OnceLock<fn() -> Option<u64>> = std::sync::OnceLock::new();

/// Installs the allocator's "bytes allocated and not yet freed" reading. The binary does
/// this for its global allocator; without it, heap figures are unavailable.
pub fn set_heap_probe(probe: fn() -> Option<u64>) {
    let _ = HEAP_PROBE.set(probe);
}

/// Bytes of live heap allocations, when the allocator reports them.
pub fn heap_allocated_bytes() -> Option<u64> {
    HEAP_PROBE.get().and_then(|probe| probe())
}

/// CPU time (user + system) of this process, from /proc/self/stat in clock ticks.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some((utime + stime) / 100.0)
}

/// Resident set size of this process, from /proc/self/status.
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Serves `GET /metrics` (and `/`) in the Prometheus text format until `stop` fires.
pub fn serve_metrics(
    listener: tokio::net::TcpListener,
    telemetry: Arc<Telemetry>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    crate::net::serve_http(
        listener,
        None,
        move |req, _peer| {
            let telemetry = telemetry.clone();
            async move {
                match (req.method(), req.uri().path()) {
                    (&http::Method::GET, "/metrics") | (&http::Method::GET, "/") => {
                        crate::net::response(
                            200,
                            "text/plain; version=0.0.4; charset=utf-8",
                            telemetry.render(),
                        )
                    }
                    (_, "/metrics") | (_, "/") => crate::net::response(
                        405,
                        "text/plain; charset=utf-8",
                        "405 method not allowed",
                    ),
                    _ => {
                        crate::net::response(404, "text/plain; charset=utf-8", "404 page not found")
                    }
                }
            }
        },
        stop,
        std::time::Duration::from_secs(2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        let t = Telemetry::for_tests();
        t.receiver("otlp", "grpc").accepted.add(Signal::Traces, 3);
        let text = t.render();
        assert!(
            text.contains("# TYPE otelcol_receiver_accepted_spans counter"),
            "{text}"
        );
        let line = text
            .lines()
            .find(|l| l.starts_with("otelcol_receiver_accepted_spans{"))
            .unwrap_or_default();
        assert!(
            line.contains("receiver=\"otlp\",transport=\"grpc\""),
            "{line}"
        );
        assert!(line.contains("service_name=\"ferrotel\""), "{line}");
        assert!(line.ends_with(" 3"), "{line}");
        assert!(text.contains("otelcol_process_uptime"));
        assert!(text.contains("ferrotel_build_info{"));
    }

    #[test]
    fn type_suffixes_and_units_when_asked() {
        let identity = ServiceIdentity {
            name: "ferrotel".into(),
            version: "t".into(),
            instance_id: "i".into(),
        };
        let t = Telemetry::new(
            Naming {
                type_suffix: true,
                units: true,
            },
            &identity,
        )
        .ok();
        if let Some(t) = &t {
            t.receiver("otlp", "grpc");
        }
        let text = t.map(|t| t.render()).unwrap_or_default();
        assert!(text.contains("otelcol_receiver_accepted_spans_total"));
        assert!(text.contains("otelcol_process_uptime_seconds_total"));
        assert!(text.contains("otelcol_process_cpu_seconds_total"));
        assert!(text.contains("otelcol_process_memory_rss_bytes"));
    }
}
