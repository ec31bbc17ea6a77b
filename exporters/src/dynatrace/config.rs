//! `dynatrace` configuration: upstream's fields (`endpoint`, `api_token`, `prefix`,
//! `default_dimensions`, `tags`, `resource_to_telemetry_conversion`, the HTTP client
//! settings, `sending_queue`, `retry_on_failure`), and the OTLP side for traces, logs and,
//! with `metrics_via: otlp`, metrics.

use indexmap::IndexMap;
use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::exporter::config::{
    ClientTlsSettings, Compression, Headers, QueueSettings, RetrySettings,
};
use ferrotel_pipeline::factory::Validate;

use crate::http_client::{connection_settings, parse_url, validate_proxy_url, ConnectionSettings};

/// The local OneAgent's metric ingest endpoint, used when `endpoint` is empty.
pub const ONEAGENT_METRICS: &str = "http://localhost:14499/metrics/ingest";
/// The local OneAgent's OTLP endpoint.
pub const ONEAGENT_OTLP: &str = "http://localhost:14499/otlp";
const METRICS_PATH: &str = "/api/v2/metrics/ingest";
const OTLP_PATH: &str = "/api/v2/otlp";

/// How metrics are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsVia {
    /// The Metrics API v2 line protocol.
    #[default]
    Lines,
    /// OTLP/HTTP protobuf to the OTLP endpoint, cumulative sums and histograms as delta.
    Otlp,
}

/// `resource_to_telemetry_conversion`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceToTelemetry {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynatraceConfig {
    /// The metric ingest URL; empty means the local OneAgent.
    pub endpoint: String,
    /// Required with an `endpoint`: sent as `Authorization: Api-Token <token>`.
    pub api_token: String,
    /// Joined to every metric key with a dot.
    pub prefix: String,
    /// Dimensions on every line; point attributes override them.
    pub default_dimensions: IndexMap<String, String>,
    /// Deprecated: `key=value` dimensions, as `default_dimensions`.
    pub tags: Vec<String>,
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    pub metrics_via: MetricsVia,
    /// Traces, logs (and metrics with `metrics_via: otlp`) go to `<otlp_endpoint>/v1/<signal>`;
    /// derived from `endpoint` when empty.
    pub otlp_endpoint: String,
    /// For the OTLP requests only (the line protocol is sent as it is).
    pub compression: Compression,
    /// Series of cumulative sums and histograms not seen for this long are forgotten.
    pub cumulative_max_staleness: GoDuration,
    /// Per HTTP request.
    pub timeout: GoDuration,
    pub headers: Headers,
    pub tls: ClientTlsSettings,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
    pub proxy_url: String,
    pub max_idle_conns: u64,
    /// 0: no limit of its own (`max_idle_conns` still applies).
    pub max_idle_conns_per_host: u64,
    /// 0: unlimited. Otherwise at most this many requests are in flight at once.
    pub max_conns_per_host: u64,
    pub idle_conn_timeout: GoDuration,
    pub http2_read_idle_timeout: GoDuration,
    pub http2_ping_timeout: GoDuration,
    pub disable_keep_alives: bool,
    pub force_attempt_http2: bool,
    /// Accepted; the HTTP stack sizes its own buffers.
    pub read_buffer_size: u64,
    /// Accepted; the HTTP stack sizes its own buffers.
    pub write_buffer_size: u64,
}

impl Default for DynatraceConfig {
    fn default() -> Self {
        DynatraceConfig {
            endpoint: String::new(),
            api_token: String::new(),
            prefix: String::new(),
            default_dimensions: IndexMap::new(),
            tags: Vec::new(),
            resource_to_telemetry_conversion: ResourceToTelemetry::default(),
            metrics_via: MetricsVia::Lines,
            otlp_endpoint: String::new(),
            compression: Compression::Gzip,
            cumulative_max_staleness: GoDuration::from_secs(900),
            timeout: GoDuration::from_secs(30),
            headers: Headers::default(),
            tls: ClientTlsSettings::default(),
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
            proxy_url: String::new(),
            max_idle_conns: 100,
            max_idle_conns_per_host: 0,
            max_conns_per_host: 0,
            idle_conn_timeout: GoDuration::from_secs(90),
            http2_read_idle_timeout: GoDuration::default(),
            http2_ping_timeout: GoDuration::default(),
            disable_keep_alives: false,
            force_attempt_http2: true,
            read_buffer_size: 0,
            write_buffer_size: 512 * 1024,
        }
    }
}

impl DynatraceConfig {
    /// Where lines go.
    pub fn metrics_url(&self) -> &str {
        if self.endpoint.is_empty() {
            ONEAGENT_METRICS
        } else {
            &self.endpoint
        }
    }

    /// Where OTLP goes: `otlp_endpoint`, or one derived from `endpoint`; `None` when it cannot
    /// be derived.
    pub fn otlp_url(&self) -> Option<String> {
        if !self.otlp_endpoint.is_empty() {
            return Some(self.otlp_endpoint.trim_end_matches('/').to_string());
        }
        if self.endpoint.is_empty() {
            return Some(ONEAGENT_OTLP.to_string());
        }
        let base = self.endpoint.trim_end_matches('/');
        base.strip_suffix(METRICS_PATH)
            .map(|root| format!("{root}{OTLP_PATH}"))
    }

    /// `default_dimensions` then `tags` (deprecated), as key and value pairs.
    pub fn dimensions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .default_dimensions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for tag in &self.tags {
            if let Some((k, v)) = tag.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
        out
    }

    pub(crate) fn connection(&self) -> ConnectionSettings {
        connection_settings!(self)
    }
}

impl Validate for DynatraceConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.endpoint.is_empty() {
            parse_url(&self.endpoint)
                .map_err(|e| format!("endpoint must start with http:// or https://: {e}"))?;
            if self.api_token.is_empty() {
                return Err("api_token is required if Endpoint is provided".to_string());
            }
        }
        if !self.otlp_endpoint.is_empty() {
            parse_url(&self.otlp_endpoint)
                .map_err(|e| format!("otlp_endpoint must be a valid URL: {e}"))?;
        }
        for tag in &self.tags {
            if !tag.contains('=') {
                return Err(format!("tags: \"{tag}\" is not of the form key=value"));
            }
        }
        if self.metrics_via == MetricsVia::Otlp && self.otlp_url().is_none() {
            return Err(
                "metrics_via: otlp needs otlp_endpoint (it cannot be derived from this endpoint)"
                    .to_string(),
            );
        }
        validate_proxy_url(&self.proxy_url)?;
        self.headers.validate_http()?;
        self.tls.validate()?;
        self.retry_on_failure.validate()?;
        self.sending_queue.validate()?;
        Ok(())
    }
}

impl ComponentConfig for DynatraceConfig {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrotel_pipeline::config::value::Value;

    fn parse(yaml: &str) -> Result<DynatraceConfig, String> {
        let value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let c: DynatraceConfig =
            ferrotel_pipeline::config::decode::decode(&value).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn endpoints_and_their_otlp_counterpart() {
        let c = parse("{}").unwrap();
        assert_eq!(c.metrics_url(), ONEAGENT_METRICS);
        assert_eq!(c.otlp_url().as_deref(), Some(ONEAGENT_OTLP));
        let c = parse(
            "endpoint: https://abc123.live.dynatrace.com/api/v2/metrics/ingest\napi_token: t",
        )
        .unwrap();
        assert_eq!(
            c.otlp_url().as_deref(),
            Some("https://abc123.live.dynatrace.com/api/v2/otlp")
        );
        let c = parse("endpoint: https://dt.example/e/env1/api/v2/metrics/ingest/\napi_token: t")
            .unwrap();
        assert_eq!(
            c.otlp_url().as_deref(),
            Some("https://dt.example/e/env1/api/v2/otlp")
        );
        let c = parse("endpoint: http://proxy:8080/ingest\napi_token: t").unwrap();
        assert_eq!(c.otlp_url(), None);
        let c = parse(
            "endpoint: http://proxy:8080/ingest\napi_token: t\notlp_endpoint: http://proxy:8080/otlp/",
        )
        .unwrap();
        assert_eq!(c.otlp_url().as_deref(), Some("http://proxy:8080/otlp"));
    }

    #[test]
    fn errors() {
        for (yaml, want) in [
            (
                "endpoint: https://x/api/v2/metrics/ingest",
                "api_token is required",
            ),
            ("endpoint: ftp://x\napi_token: t", "must start with http"),
            ("tags: [nokv]", "key=value"),
            (
                "endpoint: http://x/ingest\napi_token: t\nmetrics_via: otlp",
                "needs otlp_endpoint",
            ),
            ("metrics_via: grpc", "metrics_via"),
            ("api_tokn: t", "unknown field"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
        let c = parse("tags: [a=b]\ndefault_dimensions: {x: y}").unwrap();
        assert_eq!(
            c.dimensions(),
            vec![("x".into(), "y".into()), ("a".into(), "b".into())]
        );
    }
}
