//! `kafka` exporter configuration: the shared client settings ([`ClientConfig`], at the top
//! level of the section as upstream squashes them) and the producer's own settings, with
//! upstream's names, defaults, the deprecated top-level `topic` and `encoding`, and
//! upstream's validation messages.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;

use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::exporter::config::{QueueSettings, RetrySettings};
use ferrotel_pipeline::kafka::{default_topic, ClientConfig};
use ferrotel_pipeline::Signal;

/// The exporter's configuration: the client settings and the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaExporterConfig {
    pub client: ClientConfig,
    pub producer_side: ProducerSettings,
}

/// Everything but the client settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerSettings {
    /// How long the broker may take to acknowledge a produce request.
    pub timeout: GoDuration,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
    /// Deprecated upstream (v0.124): the topic of every signal that sets none.
    pub topic: Option<String>,
    /// Deprecated upstream (v0.124): the encoding of every signal that sets none.
    pub encoding: Option<String>,
    pub traces: SignalSettings,
    pub metrics: SignalSettings,
    pub logs: SignalSettings,
    /// Accepted; profiles are not exported.
    pub profiles: SignalSettings,
    /// A resource attribute naming the topic of that resource's data.
    pub topic_from_attribute: String,
    /// Client metadata copied into record headers.
    pub include_metadata_keys: Vec<String>,
    /// Headers added to every record.
    pub record_headers: BTreeMap<String, String>,
    /// One record per trace, keyed by the trace ID: a trace stays in one partition.
    pub partition_traces_by_id: bool,
    /// One record per resource, keyed by a hash of its attributes.
    pub partition_metrics_by_resource_attributes: bool,
    /// One record per resource, keyed by a hash of its attributes.
    pub partition_logs_by_resource_attributes: bool,
    /// One record per trace, keyed by the trace ID.
    pub partition_logs_by_trace_id: bool,
    pub record_partitioner: RecordPartitioner,
    pub producer: Producer,
    pub signal_header: bool,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            timeout: GoDuration::from_secs(5),
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
            topic: None,
            encoding: None,
            traces: SignalSettings::default(),
            metrics: SignalSettings::default(),
            logs: SignalSettings::default(),
            profiles: SignalSettings::default(),
            topic_from_attribute: String::new(),
            include_metadata_keys: Vec::new(),
            record_headers: BTreeMap::new(),
            partition_traces_by_id: false,
            partition_metrics_by_resource_attributes: false,
            partition_logs_by_resource_attributes: false,
            partition_logs_by_trace_id: false,
            record_partitioner: RecordPartitioner::default(),
            producer: Producer::default(),
            signal_header: false,
        }
    }
}

/// `traces`, `metrics`, `logs`, `profiles`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalSettings {
    pub topic: Option<String>,
    pub encoding: Option<String>,
    /// Client metadata whose first value names the topic.
    pub topic_from_metadata_key: String,
    /// Client metadata whose first value is the record key.
    pub message_key_from_metadata_key: String,
}

/// `record_partitioner`: how a keyed record's partition is chosen.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordPartitioner {
    pub sticky_key: Option<StickyKey>,
    pub round_robin: Option<IgnoredAny>,
    pub least_backup: Option<IgnoredAny>,
    pub extension: Option<String>,
}

/// `record_partitioner.sticky_key`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StickyKey {
    /// `sarama_compat` (FNV-1a, upstream's default) or `murmur2` (the Java client's).
    pub hasher: String,
}

impl Default for StickyKey {
    fn default() -> Self {
        StickyKey {
            hasher: "sarama_compat".to_string(),
        }
    }
}

/// `producer`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Producer {
    pub max_message_bytes: i64,
    pub max_broker_write_bytes: i64,
    /// 0, 1, -1 or `all`.
    pub required_acks: Acks,
    pub compression: String,
    pub compression_params: CompressionParams,
    pub flush_max_messages: i64,
    pub allow_auto_topic_creation: bool,
    pub linger: GoDuration,
}

impl Default for Producer {
    fn default() -> Self {
        Producer {
            max_message_bytes: 1_000_000,
            max_broker_write_bytes: 104_857_600,
            required_acks: Acks::Number(1),
            compression: "none".to_string(),
            compression_params: CompressionParams::default(),
            flush_max_messages: 10_000,
            allow_auto_topic_creation: true,
            linger: GoDuration::from_millis(10),
        }
    }
}

/// `producer.required_acks` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Acks {
    Number(i64),
    Name(String),
}

/// `producer.compression_params`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionParams {
    /// 0 (and -1) mean the codec's default.
    pub level: i64,
}

/// How telemetry becomes a record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    OtlpProto,
    OtlpJson,
    /// Logs: one record per log record, its body's bytes (other bodies as JSON).
    Raw,
}

/// Where one signal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub topic: String,
    pub encoding: Encoding,
}

impl KafkaExporterConfig {
    fn signal(&self, signal: Signal) -> &SignalSettings {
        match signal {
            Signal::Traces => &self.producer_side.traces,
            Signal::Metrics => &self.producer_side.metrics,
            Signal::Logs => &self.producer_side.logs,
        }
    }

    /// The topic and encoding of `signal`: its own settings, then the deprecated top-level
    /// ones, then the defaults.
    pub fn destination(&self, signal: Signal) -> Result<Destination, String> {
        let own = self.signal(signal);
        let topic = own
            .topic
            .clone()
            .or_else(|| self.producer_side.topic.clone())
            .unwrap_or_else(|| default_topic(signal).to_string());
        if topic.is_empty() {
            return Err(format!("{}.topic must not be empty", signal.as_str()));
        }
        let encoding = own
            .encoding
            .as_deref()
            .or(self.producer_side.encoding.as_deref())
            .unwrap_or("otlp_proto");
        Ok(Destination {
            topic,
            encoding: parse_encoding(signal, encoding)?,
        })
    }

    /// `producer.required_acks` as a number: 0, 1 or -1 (all in-sync replicas).
    pub fn required_acks(&self) -> Result<i64, String> {
        match &self.producer_side.producer.required_acks {
            Acks::Number(n @ (-1..=1)) => Ok(*n),
            Acks::Name(name) if name == "all" => Ok(-1),
            Acks::Number(n) => Err(format!(
                "producer::required_acks: expected 'all' (-1), 0, or 1; configured value is {n}"
            )),
            Acks::Name(name) => Err(format!(
                "producer::required_acks: expected 'all' (-1), 0, or 1; configured value is {name}"
            )),
        }
    }

    /// Checks every setting, with upstream's messages.
    pub fn validate(&self) -> Result<(), String> {
        self.client.validate()?;
        let p = &self.producer_side;
        if p.partition_logs_by_resource_attributes && p.partition_logs_by_trace_id {
            return Err("partition_logs_by_resource_attributes and partition_logs_by_trace_id cannot both be enabled".to_string());
        }
        let producer = &p.producer;
        if producer.max_message_bytes < 0 {
            return Err(format!(
                "producer::max_message_bytes ({}) must be non-negative",
                producer.max_message_bytes
            ));
        }
        if producer.max_message_bytes > i64::from(i32::MAX) {
            return Err(format!(
                "producer::max_message_bytes ({}) must not exceed 2147483647",
                producer.max_message_bytes
            ));
        }
        if producer.max_broker_write_bytes < 0 {
            return Err(format!(
                "producer::max_broker_write_bytes ({}) must be non-negative",
                producer.max_broker_write_bytes
            ));
        }
        if producer.max_message_bytes > producer.max_broker_write_bytes {
            return Err(format!(
                "producer::max_message_bytes ({}) cannot be greater than max_broker_write_bytes ({})",
                producer.max_message_bytes, producer.max_broker_write_bytes
            ));
        }
        if producer.flush_max_messages < 1 {
            return Err(format!(
                "producer::flush_max_messages ({}) must be at least 1",
                producer.flush_max_messages
            ));
        }
        self.required_acks()?;
        let level = producer.compression_params.level;
        let level_ok = match producer.compression.as_str() {
            "none" => true,
            "gzip" => matches!(level, -2..=9),
            "zstd" => true,
            "snappy" | "lz4" => level == 0,
            other => {
                return Err(format!(
                    "producer::compression should be one of 'none', 'gzip', 'snappy', 'lz4', or 'zstd'. configured value is {other:?}"
                ))
            }
        };
        if !level_ok {
            return Err(format!(
                "producer::compression_params: unsupported parameters {{Level:{level}}} for compression type {:?}",
                producer.compression
            ));
        }
        let partitioner = &p.record_partitioner;
        if let Some(sticky) = &partitioner.sticky_key {
            if !matches!(sticky.hasher.as_str(), "sarama_compat" | "murmur2") {
                return Err(format!(
                    "record_partitioner::sticky_key::hasher: invalid value {:?}, expected one of sarama_compat, murmur2",
                    sticky.hasher
                ));
            }
        }
        if partitioner.round_robin.is_some()
            || partitioner.least_backup.is_some()
            || partitioner.extension.is_some()
        {
            return Err("record_partitioner: only sticky_key is supported".to_string());
        }
        // Client metadata does not reach the exporter yet: refused rather than ignored.
        if !p.include_metadata_keys.is_empty() {
            return Err("include_metadata_keys is not supported yet".to_string());
        }
        for (name, s) in [
            ("traces", &p.traces),
            ("metrics", &p.metrics),
            ("logs", &p.logs),
        ] {
            for (field, value) in [
                ("topic_from_metadata_key", &s.topic_from_metadata_key),
                (
                    "message_key_from_metadata_key",
                    &s.message_key_from_metadata_key,
                ),
            ] {
                if !value.is_empty() {
                    return Err(format!("{name}::{field} is not supported yet"));
                }
            }
        }
        p.sending_queue
            .validate()
            .map_err(|e| format!("sending_queue: {e}"))?;
        p.retry_on_failure
            .validate()
            .map_err(|e| format!("retry_on_failure: {e}"))?;
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            self.destination(signal)?;
        }
        Ok(())
    }
}

/// An encoding name for `signal`, as upstream names them.
fn parse_encoding(signal: Signal, name: &str) -> Result<Encoding, String> {
    match name {
        "otlp_proto" => Ok(Encoding::OtlpProto),
        "otlp_json" => Ok(Encoding::OtlpJson),
        "raw" if signal == Signal::Logs => Ok(Encoding::Raw),
        "jaeger_proto" | "jaeger_json" | "zipkin_proto" | "zipkin_json"
            if signal == Signal::Traces =>
        {
            Err(format!(
                "traces encoding {name:?} is not supported (supported: otlp_proto, otlp_json)"
            ))
        }
        _ => Err(format!(
            "unrecognized {} encoding \"{name}\"",
            signal.as_str()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrotel_pipeline::config::decode::decode_squashed;
    use ferrotel_pipeline::config::value::Value;

    fn config(yaml: &str) -> KafkaExporterConfig {
        let value = Value::from_yaml_str(yaml).unwrap();
        let (client, producer_side) = decode_squashed(&value).unwrap();
        KafkaExporterConfig {
            client,
            producer_side,
        }
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = config("{}");
        assert!(c.validate().is_ok());
        let p = &c.producer_side;
        assert_eq!(p.timeout.get().as_secs(), 5);
        assert_eq!(p.producer.max_message_bytes, 1_000_000);
        assert_eq!(p.producer.flush_max_messages, 10_000);
        assert_eq!(p.producer.linger.get().as_millis(), 10);
        assert_eq!(c.required_acks(), Ok(1));
        for (signal, topic) in [
            (Signal::Traces, "otlp_spans"),
            (Signal::Metrics, "otlp_metrics"),
            (Signal::Logs, "otlp_logs"),
        ] {
            assert_eq!(
                c.destination(signal).unwrap(),
                Destination {
                    topic: topic.to_string(),
                    encoding: Encoding::OtlpProto
                }
            );
        }
    }

    #[test]
    fn the_deprecated_top_level_topic_and_encoding() {
        let c = config("topic: all\nencoding: otlp_json\nlogs: {topic: app_logs, encoding: raw}");
        assert_eq!(
            c.destination(Signal::Traces).unwrap(),
            Destination {
                topic: "all".into(),
                encoding: Encoding::OtlpJson
            }
        );
        assert_eq!(
            c.destination(Signal::Logs).unwrap(),
            Destination {
                topic: "app_logs".into(),
                encoding: Encoding::Raw
            }
        );
        assert_eq!(
            config("producer: {required_acks: all}").required_acks(),
            Ok(-1)
        );
    }

    #[test]
    fn errors_read_as_upstreams() {
        let cases = [
            (
                "partition_logs_by_resource_attributes: true\npartition_logs_by_trace_id: true",
                "partition_logs_by_resource_attributes and partition_logs_by_trace_id cannot both be enabled",
            ),
            (
                "producer: {max_message_bytes: -1000}",
                "producer::max_message_bytes (-1000) must be non-negative",
            ),
            (
                "producer: {max_message_bytes: 209715200}",
                "producer::max_message_bytes (209715200) cannot be greater than max_broker_write_bytes (104857600)",
            ),
            (
                "producer: {flush_max_messages: 0}",
                "producer::flush_max_messages (0) must be at least 1",
            ),
            (
                "producer: {required_acks: 3}",
                "producer::required_acks: expected 'all' (-1), 0, or 1; configured value is 3",
            ),
            (
                "producer: {compression: brotli}",
                "producer::compression should be one of 'none', 'gzip', 'snappy', 'lz4', or 'zstd'. configured value is \"brotli\"",
            ),
            (
                "producer: {compression: gzip, compression_params: {level: -123}}",
                "producer::compression_params: unsupported parameters {Level:-123} for compression type \"gzip\"",
            ),
            (
                "metrics: {encoding: raw}",
                "unrecognized metrics encoding \"raw\"",
            ),
            ("brokers: []", "brokers must be specified"),
        ];
        for (yaml, message) in cases {
            assert_eq!(config(yaml).validate().unwrap_err(), message, "{yaml}");
        }
        assert!(
            config("producer: {compression: lz4, compression_params: {level: 3}}")
                .validate()
                .is_err()
        );
        assert!(
            config("producer: {compression: zstd, compression_params: {level: 19}}")
                .validate()
                .is_ok()
        );
        assert!(config("record_partitioner: {round_robin: {}}")
            .validate()
            .is_err());
        assert!(
            config("record_partitioner: {sticky_key: {hasher: murmur2}}")
                .validate()
                .is_ok()
        );
    }
}
