//! `prometheusremotewrite` configuration: upstream's field names and defaults, the HTTP client
//! settings (`confighttp.ClientConfig`) at the top level as upstream squashes them.

use indexmap::IndexMap;
use serde::de::IgnoredAny;
use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::exporter::config::{
    ClientTlsSettings, Headers, QueueSettings, RetrySettings, Sizer,
};
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::prometheus::label_name;

use crate::http_client::{connection_settings, parse_url, validate_proxy_url, ConnectionSettings};

/// `remote_write_queue`: upstream's own queue settings, applied to the shared sending queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteQueue {
    /// Off: each batch is sent while its sender waits.
    pub enabled: bool,
    /// Batches (as they left the pipeline) that may wait.
    pub queue_size: u64,
    /// Requests of one batch sent at once.
    pub num_consumers: usize,
}

impl Default for RemoteWriteQueue {
    fn default() -> Self {
        RemoteWriteQueue {
            enabled: true,
            queue_size: 10_000,
            num_consumers: 5,
        }
    }
}

pub use crate::prometheus::config::ResourceToTelemetry;

/// `target_info`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetInfo {
    pub enabled: bool,
}

impl Default for TargetInfo {
    fn default() -> Self {
        TargetInfo { enabled: true }
    }
}

/// `export_created_metric`: accepted; upstream no longer writes `_created` series.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreatedMetric {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// The remote write URL, e.g. `https://prometheus:9090/api/v1/write`.
    pub endpoint: String,
    /// Prefixed to every metric name.
    pub namespace: String,
    /// Added to every series that has no label of that name.
    pub external_labels: IndexMap<String, String>,
    pub headers: Headers,
    pub add_metric_suffixes: bool,
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    pub target_info: TargetInfo,
    pub export_created_metric: CreatedMetric,
    /// Accepted; metric metadata is not sent.
    pub send_metadata: bool,
    /// Uncompressed size above which a batch is split into several requests.
    pub max_batch_size_bytes: u64,
    /// Requests of one batch sent at once; overrides `remote_write_queue.num_consumers`.
    pub max_batch_request_parallelism: Option<usize>,
    pub remote_write_queue: RemoteWriteQueue,
    pub retry_on_failure: RetrySettings,
    /// Per HTTP request.
    pub timeout: GoDuration,
    pub tls: ClientTlsSettings,
    pub max_idle_conns: u64,
    /// 0: no limit of its own (`max_idle_conns` still applies).
    pub max_idle_conns_per_host: u64,
    /// 0: unlimited. Otherwise at most this many requests are in flight at once.
    pub max_conns_per_host: u64,
    pub idle_conn_timeout: GoDuration,
    /// HTTP/2: ping a connection that has been quiet this long; 0 turns pings off.
    pub http2_read_idle_timeout: GoDuration,
    /// HTTP/2: close the connection if a ping is not answered in this long; 0 means 15s.
    pub http2_ping_timeout: GoDuration,
    pub disable_keep_alives: bool,
    /// Offer HTTP/2 in the TLS handshake (ALPN).
    pub force_attempt_http2: bool,
    /// Accepted; the HTTP stack sizes its own buffers.
    pub read_buffer_size: u64,
    /// Accepted; the HTTP stack sizes its own buffers.
    pub write_buffer_size: u64,
    /// An `http://` proxy for every request; when empty, `HTTPS_PROXY`, `HTTP_PROXY` and
    /// `NO_PROXY` apply, as in Go.
    pub proxy_url: String,
    pub wal: Option<IgnoredAny>,
    pub cookies: Option<IgnoredAny>,
    pub auth: Option<IgnoredAny>,
    pub middlewares: Option<IgnoredAny>,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            endpoint: String::new(),
            namespace: String::new(),
            external_labels: IndexMap::new(),
            headers: Headers::default(),
            add_metric_suffixes: true,
            resource_to_telemetry_conversion: ResourceToTelemetry::default(),
            target_info: TargetInfo::default(),
            export_created_metric: CreatedMetric::default(),
            send_metadata: false,
            max_batch_size_bytes: 3_000_000,
            max_batch_request_parallelism: None,
            remote_write_queue: RemoteWriteQueue::default(),
            // Upstream's own, shorter than the shared defaults: a remote write endpoint is
            // usually close by, and batches wait behind the one being retried.
            retry_on_failure: RetrySettings {
                initial_interval: GoDuration::from_millis(50),
                max_interval: GoDuration::from_millis(200),
                max_elapsed_time: GoDuration::from_secs(60),
                ..RetrySettings::default()
            },
            timeout: GoDuration::from_secs(5),
            tls: ClientTlsSettings::default(),
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
            proxy_url: String::new(),
            wal: None,
            cookies: None,
            auth: None,
            middlewares: None,
        }
    }
}

impl RemoteWriteConfig {
    /// `external_labels` with their names escaped like attribute keys, sorted by name.
    pub fn external_label_pairs(&self) -> Result<Vec<(String, String)>, String> {
        let mut pairs = Vec::with_capacity(self.external_labels.len());
        for (key, value) in &self.external_labels {
            if key.is_empty() || value.is_empty() {
                return Err(
                    "prometheus remote write: external labels configuration contains an empty key or value"
                        .to_string(),
                );
            }
            let name = label_name(key).map_err(|e| format!("external_labels: {e}"))?;
            pairs.push((name, value.clone()));
        }
        pairs.sort();
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!(
                "external_labels: two keys escape to the label name \"{}\"",
                w[0].0
            ));
        }
        Ok(pairs)
    }

    pub(crate) fn connection(&self) -> ConnectionSettings {
        connection_settings!(self)
    }

    /// How many requests of one batch go out at once.
    pub fn concurrency(&self) -> usize {
        self.max_batch_request_parallelism
            .unwrap_or(self.remote_write_queue.num_consumers)
            .max(1)
    }

    /// The shared sending queue as `remote_write_queue` sets it up: one worker, so the
    /// batches (and the samples of each series) leave in the order they came;
    /// `num_consumers` sends the requests of one batch side by side instead.
    pub fn sending_queue(&self) -> QueueSettings {
        QueueSettings {
            enabled: self.remote_write_queue.enabled,
            num_consumers: 1,
            queue_size: self.remote_write_queue.queue_size,
            sizer: Sizer::Requests,
            ..QueueSettings::default()
        }
    }
}

impl Validate for RemoteWriteConfig {
    fn validate(&self) -> Result<(), String> {
        if self.endpoint.is_empty() {
            return Err("endpoint must be specified".to_string());
        }
        parse_url(&self.endpoint).map_err(|e| format!("endpoint must be a valid URL: {e}"))?;
        self.external_label_pairs()?;
        if self.remote_write_queue.enabled && self.remote_write_queue.queue_size == 0 {
            return Err("a 0 size queue will drop all the data".to_string());
        }
        if self.remote_write_queue.num_consumers == 0 {
            return Err("remote_write_queue: 'num_consumers' must be positive".to_string());
        }
        if self.max_batch_request_parallelism == Some(0) {
            return Err("max_batch_request_parallelism must be positive".to_string());
        }
        if self.max_batch_size_bytes == 0 {
            return Err("max_batch_size_bytes must be positive".to_string());
        }
        validate_proxy_url(&self.proxy_url)?;
        if self.wal.is_some() {
            return Err(
                "wal: the write-ahead log is not supported yet (data waits in the in-memory queue)"
                    .to_string(),
            );
        }
        if self.cookies.is_some() {
            return Err("cookies are not supported by this exporter".to_string());
        }
        if self.auth.is_some() {
            return Err(
                "auth: authenticator extensions are not supported yet; set credentials in \"headers\""
                    .to_string(),
            );
        }
        if self.middlewares.is_some() {
            return Err("middlewares are not supported yet".to_string());
        }
        self.headers.validate_http()?;
        self.tls.validate()?;
        self.retry_on_failure.validate()?;
        Ok(())
    }
}

impl ComponentConfig for RemoteWriteConfig {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    fn parse(yaml: &str) -> Result<RemoteWriteConfig, String> {
        let value: Value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let config: RemoteWriteConfig = decode(&value).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = parse("endpoint: http://127.0.0.1:9090/api/v1/write").unwrap();
        assert_eq!(c.max_batch_size_bytes, 3_000_000);
        assert!(c.add_metric_suffixes);
        assert!(c.target_info.enabled);
        assert!(!c.export_created_metric.enabled);
        assert_eq!(c.remote_write_queue, RemoteWriteQueue::default());
        assert_eq!(c.remote_write_queue.queue_size, 10_000);
        assert_eq!(c.concurrency(), 5);
        assert_eq!(c.timeout.get(), std::time::Duration::from_secs(5));
        assert_eq!(
            c.retry_on_failure.initial_interval.get(),
            std::time::Duration::from_millis(50)
        );
        assert_eq!(
            c.retry_on_failure.max_elapsed_time.get(),
            std::time::Duration::from_secs(60)
        );
        let queue = c.sending_queue();
        assert!(queue.enabled);
        assert_eq!((queue.num_consumers, queue.queue_size), (1, 10_000));
    }

    #[test]
    fn every_upstream_field_is_read() {
        let c = parse(
            r#"
endpoint: https://mimir:9009/api/v1/push
namespace: shop
external_labels: {cluster: eu-1, "k8s.region": west}
headers: {X-Scope-OrgID: tenant-1}
add_metric_suffixes: false
resource_to_telemetry_conversion: {enabled: true}
target_info: {enabled: false}
export_created_metric: {enabled: true}
send_metadata: true
max_batch_size_bytes: 1000
max_batch_request_parallelism: 2
remote_write_queue: {enabled: false, queue_size: 5, num_consumers: 3}
retry_on_failure: {enabled: true, initial_interval: 1s, max_interval: 2s, max_elapsed_time: 10s}
timeout: 3s
tls: {insecure_skip_verify: true}
max_idle_conns: 10
idle_conn_timeout: 5s
disable_keep_alives: true
read_buffer_size: 0
write_buffer_size: 1024
"#,
        )
        .unwrap();
        assert_eq!(c.namespace, "shop");
        assert!(!c.target_info.enabled);
        assert_eq!(c.concurrency(), 2);
        assert!(!c.sending_queue().enabled);
        assert_eq!(
            c.external_label_pairs().unwrap(),
            vec![
                ("cluster".to_string(), "eu-1".to_string()),
                ("k8s_region".to_string(), "west".to_string())
            ]
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let cases = [
            ("namespace: x", "endpoint must be specified"),
            ("endpoint: ftp://x/", "endpoint must be a valid URL"),
            (
                "endpoint: http://x/\nexternal_labels: {a: \"\"}",
                "prometheus remote write: external labels configuration contains an empty key or value",
            ),
            (
                "endpoint: http://x/\nexternal_labels: {a.b: 1, a_b: 2}",
                "two keys escape",
            ),
            (
                "endpoint: http://x/\nremote_write_queue: {queue_size: 0}",
                "a 0 size queue will drop all the data",
            ),
            (
                "endpoint: http://x/\nremote_write_queue: {num_consumers: 0}",
                "num_consumers",
            ),
            ("endpoint: http://x/\nmax_batch_size_bytes: 0", "max_batch_size_bytes"),
            ("endpoint: http://x/\nwal: {directory: /tmp}", "wal"),
            ("endpoint: http://x/\nproxy_url: https://p:3128", "only http:// proxies"),
            ("endpoint: http://x/\nsending_queue: {}", "unknown field"),
        ];
        for (yaml, want) in cases {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml}: {err}");
        }
        // Without the queue its size does not matter, as upstream checks it.
        parse("endpoint: http://x/\nremote_write_queue: {enabled: false, queue_size: 0}").unwrap();
    }
}
