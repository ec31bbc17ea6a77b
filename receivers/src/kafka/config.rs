//! `kafka` receiver configuration: the shared client settings ([`ClientConfig`], at the top
//! level of the section as upstream squashes them) and the consumer's own settings, with
//! upstream's names, defaults, every form of the topic settings that configurations still
//! use, and upstream's validation messages.

use serde::de::IgnoredAny;
use serde::Deserialize;

use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::exporter::config::RetrySettings;
use ferrotel_pipeline::kafka::{default_topic, ClientConfig};
use ferrotel_pipeline::Signal;

/// The receiver's configuration: the client settings and the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaReceiverConfig {
    pub client: ClientConfig,
    pub consumer: ConsumerSettings,
}

/// Everything but the client settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSettings {
    pub session_timeout: GoDuration,
    pub heartbeat_interval: GoDuration,
    pub group_id: String,
    /// `latest` or `earliest`: where a group without a committed offset starts.
    pub initial_offset: String,
    pub autocommit: AutoCommit,
    pub min_fetch_size: i64,
    /// Accepted for older configurations (the client sizes its fetches itself).
    pub default_fetch_size: i64,
    pub max_fetch_size: i64,
    pub max_fetch_wait: GoDuration,
    pub max_partition_fetch_size: i64,
    /// Deprecated upstream (v0.154) for `group_rebalance_strategies`.
    pub group_rebalance_strategy: Option<String>,
    pub group_rebalance_strategies: Option<Vec<String>>,
    /// Static group membership when not empty.
    pub group_instance_id: String,
    /// Deprecated upstream (v0.124): the topic of every signal that sets none.
    pub topic: Option<String>,
    /// Deprecated upstream (v0.124): the encoding of every signal that sets none.
    pub encoding: Option<String>,
    pub traces: SignalTopics,
    pub metrics: SignalTopics,
    pub logs: SignalTopics,
    /// Accepted; profiles are not received.
    pub profiles: SignalTopics,
    pub message_marking: MessageMarking,
    pub header_extraction: HeaderExtraction,
    #[serde(default = "error_backoff_default")]
    pub error_backoff: RetrySettings,
    pub partition_processing: PartitionProcessing,
    pub signal_header: bool,
    pub telemetry: Option<IgnoredAny>,
}

fn error_backoff_default() -> RetrySettings {
    RetrySettings {
        enabled: false,
        ..RetrySettings::default()
    }
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            session_timeout: GoDuration::from_secs(10),
            heartbeat_interval: GoDuration::from_secs(3),
            group_id: "otel-collector".to_string(),
            initial_offset: "latest".to_string(),
            autocommit: AutoCommit::default(),
            min_fetch_size: 1,
            default_fetch_size: 1_048_576,
            max_fetch_size: 1_048_576,
            max_fetch_wait: GoDuration::from_millis(250),
            max_partition_fetch_size: 1_048_576,
            group_rebalance_strategy: None,
            group_rebalance_strategies: None,
            group_instance_id: String::new(),
            topic: None,
            encoding: None,
            traces: SignalTopics::default(),
            metrics: SignalTopics::default(),
            logs: SignalTopics::default(),
            profiles: SignalTopics::default(),
            message_marking: MessageMarking::default(),
            header_extraction: HeaderExtraction::default(),
            error_backoff: error_backoff_default(),
            partition_processing: PartitionProcessing::default(),
            signal_header: false,
            telemetry: None,
        }
    }
}

/// `traces`, `metrics`, `logs`, `profiles`: what was written, so that the forms can be told
/// apart (see [`KafkaReceiverConfig::subscription`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalTopics {
    pub topics: Option<Vec<String>>,
    /// Deprecated upstream (v0.142) for `topics`.
    pub topic: Option<String>,
    pub encoding: Option<String>,
    pub exclude_topics: Option<Vec<String>>,
    /// Deprecated upstream (v0.142) for `exclude_topics`.
    pub exclude_topic: Option<String>,
}

/// `autocommit`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoCommit {
    pub enable: bool,
    pub interval: GoDuration,
}

impl Default for AutoCommit {
    fn default() -> Self {
        AutoCommit {
            enable: true,
            interval: GoDuration::from_secs(1),
        }
    }
}

/// `message_marking`: when a record's offset may be committed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageMarking {
    /// Mark a record after the pipeline took it (at-least-once) rather than before.
    pub after: bool,
    /// With `after`, mark a record the pipeline refused, too.
    pub on_error: bool,
    /// With `after`, mark a record that can never be taken (it does not decode); defaults
    /// to `on_error`.
    pub on_permanent_error: Option<bool>,
}

/// `header_extraction`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderExtraction {
    pub extract_headers: bool,
    /// Header names, matched exactly; each becomes resource attribute `kafka.header.<name>`.
    pub headers: Vec<String>,
}

/// `partition_processing`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartitionProcessing {
    pub independent: bool,
    pub max_buffered_batches: i64,
}

impl Default for PartitionProcessing {
    fn default() -> Self {
        PartitionProcessing {
            independent: false,
            max_buffered_batches: 1,
        }
    }
}

/// How a record's bytes become telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    OtlpProto,
    OtlpJson,
    /// Logs: one record, the bytes as its body.
    Raw,
    /// Logs: one record, the text as its body, decoded from this character set (a label
    /// such as `utf-8`, `shift_jis`; `text` alone is UTF-8).
    Text(String),
    /// Logs: one record, a JSON object as its body (a map).
    Json,
}

/// What the receiver reads for one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic names; a name starting with `^` is a regular expression.
    pub topics: Vec<String>,
    /// Regular expressions of topics not to read (with a `^` topic only).
    pub exclude_topics: Vec<String>,
    pub encoding: Encoding,
}

const STRATEGIES: &[&str] = &["range", "roundrobin", "cooperative-sticky"];

impl KafkaReceiverConfig {
    fn signal(&self, signal: Signal) -> &SignalTopics {
        match signal {
            Signal::Traces => &self.consumer.traces,
            Signal::Metrics => &self.consumer.metrics,
            Signal::Logs => &self.consumer.logs,
        }
    }

    /// The topics and encoding of `signal`: the signal's own settings first, then the
    /// deprecated top-level `topic` and `encoding`, then the defaults, as upstream reads them.
    pub fn subscription(&self, signal: Signal) -> Result<Subscription, String> {
        let name = signal.as_str();
        let own = self.signal(signal);
        let topics = list_or_one(&own.topics, &own.topic, name, "topic")?.unwrap_or_else(|| {
            vec![self
                .consumer
                .topic
                .clone()
                .unwrap_or_else(|| default_topic(signal).to_string())]
        });
        let exclude_topics = list_or_one(
            &own.exclude_topics,
            &own.exclude_topic,
            name,
            "exclude_topic",
        )?
        .unwrap_or_default();
        if topics.is_empty() || topics.iter().any(String::is_empty) {
            return Err(format!("{name}.topics must name at least one topic"));
        }
        for topic in topics.iter().filter(|t| t.starts_with('^')) {
            if let Err(e) = regex::Regex::new(topic) {
                return Err(format!("{name}.topics contains invalid regex pattern: {e}"));
            }
        }
        if !exclude_topics.is_empty() {
            if !topics.iter().any(|t| t.starts_with('^')) {
                return Err(format!(
                    "{name}.exclude_topics is configured but none of the configured {name}.topics use regex pattern (must start with '^')"
                ));
            }
            for pattern in &exclude_topics {
                if pattern.is_empty() {
                    return Err(format!(
                        "{name}.exclude_topics contains empty string, which would match all topics"
                    ));
                }
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(format!(
                        "{name}.exclude_topic contains invalid regex pattern: {e}"
                    ));
                }
            }
        }
        let encoding = own
            .encoding
            .as_deref()
            .or(self.consumer.encoding.as_deref())
            .unwrap_or("otlp_proto");
        Ok(Subscription {
            topics,
            exclude_topics,
            encoding: parse_encoding(signal, encoding)?,
        })
    }

    /// The group's partition assignment strategies, in order of preference (librdkafka's
    /// names); empty means the client's default.
    pub fn rebalance_strategies(&self) -> Result<Vec<String>, String> {
        let c = &self.consumer;
        let (field, list) =
            match (&c.group_rebalance_strategy, &c.group_rebalance_strategies) {
                (Some(_), Some(_)) => return Err(
                    "group_rebalance_strategy and group_rebalance_strategies cannot both be set"
                        .to_string(),
                ),
                (Some(one), None) => ("group_rebalance_strategy", vec![one.clone()]),
                (None, Some(list)) => ("group_rebalance_strategies", list.clone()),
                (None, None) => return Ok(Vec::new()),
            };
        for strategy in &list {
            if strategy.is_empty() {
                return Err(format!("{field} entries cannot be empty"));
            }
            if !STRATEGIES.contains(&strategy.as_str()) {
                return Err(format!(
                    "{field} {strategy:?} is not a supported strategy (one of {})",
                    STRATEGIES.join(", ")
                ));
            }
        }
        Ok(list)
    }

    /// Checks every setting, with upstream's messages.
    pub fn validate(&self) -> Result<(), String> {
        self.client.validate()?;
        let c = &self.consumer;
        if !matches!(c.initial_offset.as_str(), "latest" | "earliest") {
            return Err(format!(
                "initial_offset should be one of 'latest' or 'earliest'. configured value {}",
                c.initial_offset
            ));
        }
        if c.min_fetch_size < 0 {
            return Err(format!(
                "min_fetch_size ({}) must be non-negative",
                c.min_fetch_size
            ));
        }
        if c.max_fetch_size < 0 {
            return Err(format!(
                "max_fetch_size ({}) must be non-negative",
                c.max_fetch_size
            ));
        }
        if c.max_fetch_size < c.min_fetch_size {
            return Err(format!(
                "max_fetch_size ({}) cannot be less than min_fetch_size ({})",
                c.max_fetch_size, c.min_fetch_size
            ));
        }
        if c.max_partition_fetch_size < 0 {
            return Err(format!(
                "max_partition_fetch_size ({}) must be non-negative",
                c.max_partition_fetch_size
            ));
        }
        if c.partition_processing.max_buffered_batches <= 0 {
            return Err(
                "partition_processing.max_buffered_batches must be greater than zero".to_string(),
            );
        }
        if c.partition_processing.independent && !c.autocommit.enable {
            return Err("partition_processing.independent requires autocommit.enable".to_string());
        }
        self.rebalance_strategies()?;
        c.error_backoff
            .validate()
            .map_err(|e| format!("error_backoff: {e}"))?;
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            self.subscription(signal)?;
        }
        Ok(())
    }
}

/// A setting written as a list (`<field>s`) or, in older configurations, as one value
/// (`<field>`); both at once is an error.
fn list_or_one(
    list: &Option<Vec<String>>,
    one: &Option<String>,
    signal: &str,
    field: &str,
) -> Result<Option<Vec<String>>, String> {
    match (list, one) {
        (Some(_), Some(_)) => Err(format!(
            "both {signal}.{field} and {signal}.{field}s cannot be set"
        )),
        (Some(list), None) => Ok(Some(list.clone())),
        (None, Some(one)) => Ok(Some(vec![one.clone()])),
        (None, None) => Ok(None),
    }
}

/// An encoding name for `signal`, as upstream names them.
fn parse_encoding(signal: Signal, name: &str) -> Result<Encoding, String> {
    let logs = signal == Signal::Logs;
    match name {
        "otlp_proto" => Ok(Encoding::OtlpProto),
        "otlp_json" => Ok(Encoding::OtlpJson),
        "raw" if logs => Ok(Encoding::Raw),
        "json" if logs => Ok(Encoding::Json),
        "text" if logs => Ok(Encoding::Text("utf-8".to_string())),
        _ if logs && name.starts_with("text_") => {
            let label = &name["text_".len()..];
            super::logs::Charset::from_label(label)?;
            Ok(Encoding::Text(label.to_string()))
        }
        "jaeger_proto" | "jaeger_json" | "zipkin_proto" | "zipkin_json" | "zipkin_thrift"
            if signal == Signal::Traces =>
        {
            Err(format!(
                "traces encoding {name:?} is not supported (supported: otlp_proto, otlp_json)"
            ))
        }
        "azure_resource_logs" if logs => Err(format!(
            "logs encoding {name:?} is not supported (supported: otlp_proto, otlp_json, raw, text, text_<charset>, json)"
        )),
        _ => Err(format!("unrecognized {} encoding \"{name}\"", signal.as_str())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrotel_pipeline::config::decode::decode_squashed;
    use ferrotel_pipeline::config::value::Value;

    fn config(yaml: &str) -> KafkaReceiverConfig {
        let value = Value::from_yaml_str(yaml).unwrap();
        let (client, consumer) = decode_squashed(&value).unwrap();
        KafkaReceiverConfig { client, consumer }
    }

    fn topics(c: &KafkaReceiverConfig, signal: Signal) -> Vec<String> {
        c.subscription(signal).unwrap().topics
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = config("{}");
        assert!(c.validate().is_ok());
        assert_eq!(c.consumer.group_id, "otel-collector");
        assert_eq!(c.consumer.initial_offset, "latest");
        assert_eq!(c.consumer.session_timeout.get().as_secs(), 10);
        assert_eq!(c.consumer.heartbeat_interval.get().as_secs(), 3);
        assert!(c.consumer.autocommit.enable);
        assert!(!c.consumer.error_backoff.enabled);
        assert!(!c.consumer.message_marking.after);
        assert_eq!(topics(&c, Signal::Traces), ["otlp_spans"]);
        assert_eq!(topics(&c, Signal::Metrics), ["otlp_metrics"]);
        assert_eq!(topics(&c, Signal::Logs), ["otlp_logs"]);
        assert_eq!(
            c.subscription(Signal::Logs).unwrap().encoding,
            Encoding::OtlpProto
        );
        assert!(c.rebalance_strategies().unwrap().is_empty());
    }

    #[test]
    fn every_form_of_the_topic_settings() {
        // Before v0.124: one top-level topic and encoding for every signal.
        let c = config("topic: events\nencoding: otlp_json");
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            let s = c.subscription(signal).unwrap();
            assert_eq!(
                (s.topics, s.encoding),
                (vec!["events".to_string()], Encoding::OtlpJson)
            );
        }
        // A signal's own setting wins over the top-level one.
        let c = config("topic: events\nlogs: {topic: app_logs, encoding: json}");
        assert_eq!(topics(&c, Signal::Logs), ["app_logs"]);
        assert_eq!(
            c.subscription(Signal::Logs).unwrap().encoding,
            Encoding::Json
        );
        assert_eq!(topics(&c, Signal::Traces), ["events"]);
        // v0.124 to v0.141: per-signal `topic`; since v0.142: `topics`.
        let c = config("traces: {topics: [a, b]}\nmetrics: {topic: m}");
        assert_eq!(topics(&c, Signal::Traces), ["a", "b"]);
        assert_eq!(topics(&c, Signal::Metrics), ["m"]);
        // Regular expressions with exclusions, both spellings.
        let c = config("logs: {topics: ['^logs-.*'], exclude_topic: '^logs-debug$'}");
        assert_eq!(
            c.subscription(Signal::Logs).unwrap().exclude_topics,
            ["^logs-debug$"]
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn encodings_per_signal() {
        let enc = |yaml: &str, signal| config(yaml).subscription(signal).map(|s| s.encoding);
        assert_eq!(
            enc("logs: {encoding: raw}", Signal::Logs),
            Ok(Encoding::Raw)
        );
        assert_eq!(
            enc("logs: {encoding: text}", Signal::Logs),
            Ok(Encoding::Text("utf-8".into()))
        );
        assert_eq!(
            enc("logs: {encoding: text_shift_jis}", Signal::Logs),
            Ok(Encoding::Text("shift_jis".into()))
        );
        assert_eq!(
            enc("logs: {encoding: text_klingon}", Signal::Logs),
            Err("invalid text encoding: unsupported encoding 'klingon'".to_string())
        );
        assert_eq!(
            enc("metrics: {encoding: raw}", Signal::Metrics),
            Err("unrecognized metrics encoding \"raw\"".to_string())
        );
        assert_eq!(
            enc("traces: {encoding: protobuf}", Signal::Traces),
            Err("unrecognized traces encoding \"protobuf\"".to_string())
        );
        assert!(enc("traces: {encoding: jaeger_proto}", Signal::Traces)
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn errors_read_as_upstreams() {
        let cases = [
            (
                "logs: {topic: a, topics: [b]}",
                "both logs.topic and logs.topics cannot be set",
            ),
            (
                "traces: {topics: ['^t.*'], exclude_topic: a, exclude_topics: [b]}",
                "both traces.exclude_topic and traces.exclude_topics cannot be set",
            ),
            (
                "logs: {topics: [a], exclude_topics: [b]}",
                "logs.exclude_topics is configured but none of the configured logs.topics use regex pattern (must start with '^')",
            ),
            (
                "logs: {topics: ['^a'], exclude_topics: ['']}",
                "logs.exclude_topics contains empty string, which would match all topics",
            ),
            (
                "initial_offset: middle",
                "initial_offset should be one of 'latest' or 'earliest'. configured value middle",
            ),
            ("min_fetch_size: -100", "min_fetch_size (-100) must be non-negative"),
            (
                "min_fetch_size: 1000\nmax_fetch_size: 100",
                "max_fetch_size (100) cannot be less than min_fetch_size (1000)",
            ),
            (
                "partition_processing: {max_buffered_batches: 0}",
                "partition_processing.max_buffered_batches must be greater than zero",
            ),
            (
                "partition_processing: {independent: true}\nautocommit: {enable: false}",
                "partition_processing.independent requires autocommit.enable",
            ),
            (
                "group_rebalance_strategies: ['']",
                "group_rebalance_strategies entries cannot be empty",
            ),
            ("brokers: []", "brokers must be specified"),
        ];
        for (yaml, message) in cases {
            assert_eq!(config(yaml).validate().unwrap_err(), message, "{yaml}");
        }
        let err = config("logs: {topics: ['^a'], exclude_topics: ['(']}")
            .validate()
            .unwrap_err();
        assert!(
            err.starts_with("logs.exclude_topic contains invalid regex pattern: "),
            "{err}"
        );
        let err = config("group_rebalance_strategy: sticky")
            .validate()
            .unwrap_err();
        assert!(err.contains("not a supported strategy"), "{err}");
        assert_eq!(
            config("group_rebalance_strategy: range")
                .rebalance_strategies()
                .unwrap(),
            ["range"]
        );
    }

    #[test]
    fn an_unknown_key_lists_the_client_keys_too() {
        let value = Value::from_yaml_str("topicz: a").unwrap();
        let err = decode_squashed::<ClientConfig, ConsumerSettings>(&value).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("unknown field \"topicz\", expected one of "),
            "{text}"
        );
        assert!(
            text.contains("group_id") && text.contains("brokers"),
            "{text}"
        );
    }
}
