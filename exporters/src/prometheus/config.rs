//! `prometheus` exporter configuration: upstream's field names and defaults, the HTTP server
//! settings (`confighttp.ServerConfig`) at the top level as upstream squashes them.

use indexmap::IndexMap;
use serde::de::IgnoredAny;
use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::exporter::config::QueueSettings;
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::prometheus::{label_name, TranslationStrategy};
use ferrotel_pipeline::tls::ServerTlsSettings;

/// `resource_to_telemetry_conversion`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceToTelemetry {
    /// Every resource attribute becomes a label of every series.
    pub enabled: bool,
    /// Leave out `service.name`, `service.namespace` and `service.instance.id`, which are
    /// already `job` and `instance`.
    pub exclude_service_attributes: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// `host:port` serving `/metrics`.
    pub endpoint: String,
    pub tls: Option<ServerTlsSettings>,
    /// Headers added to every response.
    pub response_headers: IndexMap<String, String>,
    /// Accepted; a scrape sends no body.
    pub max_request_body_size: u64,
    /// Accepted; a scrape has no data to attach metadata to.
    pub include_metadata: bool,
    /// Accepted; a scrape sends no body to decompress.
    pub compression_algorithms: Option<Vec<String>>,
    /// Accepted; the server applies its own limits.
    pub read_timeout: Option<GoDuration>,
    pub read_header_timeout: Option<GoDuration>,
    pub write_timeout: Option<GoDuration>,
    pub idle_timeout: Option<GoDuration>,
    pub keep_alives_enabled: Option<bool>,
    pub cors: Option<IgnoredAny>,
    pub auth: Option<IgnoredAny>,
    pub middlewares: Option<IgnoredAny>,
    /// Accepted and checked; unused, since taking a batch only updates memory.
    pub sending_queue: Option<QueueSettings>,
    pub namespace: String,
    pub const_labels: IndexMap<String, String>,
    pub send_timestamps: bool,
    /// Series not updated for this long are dropped.
    pub metric_expiration: GoDuration,
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    /// Upstream's newer selection of resource attributes as labels (behind a feature gate).
    pub resource_constant_labels: Option<IgnoredAny>,
    pub enable_open_metrics: bool,
    /// Deprecated upstream in favour of `translation_strategy`, which wins when set.
    pub add_metric_suffixes: bool,
    pub translation_strategy: String,
    pub without_scope_info: bool,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            endpoint: String::new(),
            tls: None,
            response_headers: IndexMap::new(),
            max_request_body_size: 0,
            include_metadata: false,
            compression_algorithms: None,
            read_timeout: None,
            read_header_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            keep_alives_enabled: None,
            cors: None,
            auth: None,
            middlewares: None,
            sending_queue: None,
            namespace: String::new(),
            const_labels: IndexMap::new(),
            send_timestamps: false,
            metric_expiration: GoDuration::from_secs(300),
            resource_to_telemetry_conversion: ResourceToTelemetry::default(),
            resource_constant_labels: None,
            enable_open_metrics: false,
            add_metric_suffixes: true,
            translation_strategy: String::new(),
            without_scope_info: false,
        }
    }
}

impl PrometheusConfig {
    /// The strategy in force: `translation_strategy` when set, else what
    /// `add_metric_suffixes` says.
    pub fn strategy(&self) -> Result<TranslationStrategy, String> {
        if self.translation_strategy.is_empty() {
            return Ok(if self.add_metric_suffixes {
                TranslationStrategy::UnderscoreEscapingWithSuffixes
            } else {
                TranslationStrategy::UnderscoreEscapingWithoutSuffixes
            });
        }
        let valid = || {
            TranslationStrategy::ALL
                .map(TranslationStrategy::as_str)
                .join(", ")
        };
        let strategy = TranslationStrategy::parse(&self.translation_strategy).ok_or_else(|| {
            format!(
                "invalid translation_strategy: {} (valid values: {})",
                self.translation_strategy,
                valid()
            )
        })?;
        if !strategy.escapes() {
            return Err(format!(
                "translation_strategy: {} is not supported: it keeps UTF-8 metric and label names, which the text format 0.0.4 and OpenMetrics 1.0 served here cannot carry; use UnderscoreEscapingWithSuffixes or UnderscoreEscapingWithoutSuffixes",
                strategy.as_str()
            ));
        }
        Ok(strategy)
    }

    /// `const_labels` with their names escaped like attribute keys.
    pub fn const_label_pairs(&self) -> Result<Vec<(String, String)>, String> {
        self.const_labels
            .iter()
            .map(|(k, v)| {
                label_name(k)
                    .map(|name| (name, v.clone()))
                    .map_err(|e| format!("const_labels: {e}"))
            })
            .collect()
    }
}

impl Validate for PrometheusConfig {
    fn validate(&self) -> Result<(), String> {
        if self.endpoint.trim().is_empty() {
            return Err(
                "expecting a non-blank address to run the Prometheus metrics handler".to_string(),
            );
        }
        if ferrotel_pipeline::config::split_host_port(self.endpoint.trim()).is_none() {
            return Err(format!("endpoint: \"{}\" is not host:port", self.endpoint));
        }
        self.strategy()?;
        let labels = self.const_label_pairs()?;
        for (i, (name, _)) in labels.iter().enumerate() {
            if labels[..i].iter().any(|(other, _)| other == name) {
                return Err(format!(
                    "const_labels: two labels are named \"{name}\" once escaped"
                ));
            }
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        for (name, value) in &self.response_headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("response_headers: invalid header name \"{name}\""));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(format!("response_headers: invalid value for \"{name}\""));
            }
        }
        if let Some(queue) = &self.sending_queue {
            queue.validate()?;
        }
        if self.resource_constant_labels.is_some() {
            return Err("resource_constant_labels is not supported yet; use resource_to_telemetry_conversion".to_string());
        }
        if self.cors.is_some() {
            return Err("cors is not supported by this exporter".to_string());
        }
        if self.auth.is_some() {
            return Err("auth: authenticator extensions are not supported yet".to_string());
        }
        if self.middlewares.is_some() {
            return Err("middlewares are not supported yet".to_string());
        }
        Ok(())
    }
}

impl ComponentConfig for PrometheusConfig {
    fn listen_endpoints(&self) -> Vec<String> {
        vec![self.endpoint.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    fn parse(yaml: &str) -> Result<PrometheusConfig, String> {
        let value: Value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let config: PrometheusConfig = decode(&value).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = parse("endpoint: 0.0.0.0:8889").unwrap();
        assert_eq!(c.metric_expiration, GoDuration::from_secs(300));
        assert!(!c.send_timestamps);
        assert!(!c.enable_open_metrics);
        assert!(c.add_metric_suffixes);
        assert!(!c.without_scope_info);
        assert!(!c.resource_to_telemetry_conversion.enabled);
        assert_eq!(
            c.strategy(),
            Ok(TranslationStrategy::UnderscoreEscapingWithSuffixes)
        );
    }

    #[test]
    fn upstream_example_decodes() {
        let c = parse(
            r#"
endpoint: "1.2.3.4:1234"
namespace: test-space
const_labels:
  label1: value1
  "another label": spaced value
  number: 12
send_timestamps: true
metric_expiration: 180m
enable_open_metrics: true
add_metric_suffixes: false
translation_strategy: "UnderscoreEscapingWithoutSuffixes"
resource_to_telemetry_conversion:
  enabled: true
  exclude_service_attributes: true
without_scope_info: true
sending_queue:
  enabled: false
response_headers:
  X-Test: yes
"#,
        )
        .unwrap();
        assert_eq!(c.metric_expiration, GoDuration::from_secs(180 * 60));
        assert_eq!(
            c.const_label_pairs().unwrap(),
            vec![
                ("label1".to_string(), "value1".to_string()),
                ("another_label".to_string(), "spaced value".to_string()),
                ("number".to_string(), "12".to_string()),
            ]
        );
        assert_eq!(
            c.strategy(),
            Ok(TranslationStrategy::UnderscoreEscapingWithoutSuffixes)
        );
    }

    #[test]
    fn strategy_choice() {
        let c = parse("endpoint: :8889\nadd_metric_suffixes: false").unwrap();
        assert_eq!(
            c.strategy(),
            Ok(TranslationStrategy::UnderscoreEscapingWithoutSuffixes)
        );
        // translation_strategy wins over the deprecated flag.
        let c = parse(
            "endpoint: :8889\nadd_metric_suffixes: false\ntranslation_strategy: UnderscoreEscapingWithSuffixes",
        )
        .unwrap();
        assert_eq!(
            c.strategy(),
            Ok(TranslationStrategy::UnderscoreEscapingWithSuffixes)
        );
        let err = parse("endpoint: :8889\ntranslation_strategy: Bogus").unwrap_err();
        assert_eq!(err, "invalid translation_strategy: Bogus (valid values: UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes, NoTranslation)");
        for utf8 in ["NoUTF8EscapingWithSuffixes", "NoTranslation"] {
            let err = parse(&format!("endpoint: :8889\ntranslation_strategy: {utf8}")).unwrap_err();
            assert!(
                err.starts_with(&format!("translation_strategy: {utf8} is not supported")),
                "{err}"
            );
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(
            parse("namespace: x").unwrap_err(),
            "expecting a non-blank address to run the Prometheus metrics handler"
        );
        assert_eq!(
            parse("endpoint: localhost").unwrap_err(),
            "endpoint: \"localhost\" is not host:port"
        );
        let err = parse("endpoint: :1\nbogus: 1").unwrap_err();
        assert!(
            err.starts_with("unknown field \"bogus\", expected one of"),
            "{err}"
        );
        let err =
            parse("endpoint: :1\nresource_to_telemetry_conversion: {enable: true}").unwrap_err();
        assert!(
            err.starts_with("resource_to_telemetry_conversion: unknown field \"enable\""),
            "{err}"
        );
        assert!(parse("endpoint: :1\nmetric_expiration: 5x")
            .unwrap_err()
            .starts_with("metric_expiration: invalid duration"));
        assert!(parse("endpoint: :1\nconst_labels: {\"..\": x}")
            .unwrap_err()
            .starts_with("const_labels: normalization for label name"));
        assert!(parse("endpoint: :1\nconst_labels: {a.b: x, a_b: y}")
            .unwrap_err()
            .contains("\"a_b\""));
        assert!(
            parse("endpoint: :1\nresource_constant_labels: {included: [\"*\"]}")
                .unwrap_err()
                .starts_with("resource_constant_labels is not supported")
        );
        assert!(parse("endpoint: :1\nauth: {authenticator: x}")
            .unwrap_err()
            .starts_with("auth:"));
        assert!(parse("endpoint: :1\nresponse_headers: {\"bad name\": x}")
            .unwrap_err()
            .starts_with("response_headers: invalid header name"));
        assert!(parse("endpoint: :1\ntls: {min_version: \"1.0\"}").is_err());
    }
}
