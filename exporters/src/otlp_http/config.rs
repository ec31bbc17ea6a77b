//! `otlp_http` configuration: upstream's `confighttp.ClientConfig` fields, the per-signal
//! URLs and `encoding`, plus the shared `sending_queue` and `retry_on_failure`.

use serde::de::IgnoredAny;
use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::exporter::config::{
    ClientTlsSettings, Compression, Headers, QueueSettings, RetrySettings,
};
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::pdata::Signal;

use crate::http_client::{connection_settings, parse_url, validate_proxy_url, ConnectionSettings};

/// How request bodies are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Proto,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Proto => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `compression_params`: accepted; the default level of each algorithm is used.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionParams {
    pub level: i64,
}

/// `cookies`: upstream's older form has `enabled`; the current one turns cookies on by the
/// section being present.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cookies {
    pub enabled: Option<bool>,
}

/// The `otlp_http` (alias `otlphttp`) exporter's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpHttpConfig {
    /// Base URL; each signal goes to `<endpoint>/v1/<signal>`.
    pub endpoint: String,
    pub traces_endpoint: String,
    pub metrics_endpoint: String,
    pub logs_endpoint: String,
    /// Accepted; profiles are not supported yet.
    pub profiles_endpoint: String,
    pub encoding: Encoding,
    pub compression: Compression,
    pub compression_params: Option<CompressionParams>,
    /// Per attempt.
    pub timeout: GoDuration,
    pub headers: Headers,
    pub tls: ClientTlsSettings,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
    /// An `http://` proxy for every request; when empty, `HTTPS_PROXY`, `HTTP_PROXY` and
    /// `NO_PROXY` apply, as in Go.
    pub proxy_url: String,
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
    /// Accepted; the HTTP stack sizes its own buffers.
    pub read_buffer_size: u64,
    /// Accepted; the HTTP stack sizes its own buffers.
    pub write_buffer_size: u64,
    pub cookies: Option<Cookies>,
    /// Offer HTTP/2 in the TLS handshake (ALPN).
    pub force_attempt_http2: bool,
    pub auth: Option<IgnoredAny>,
    pub middlewares: Option<IgnoredAny>,
}

impl Default for OtlpHttpConfig {
    fn default() -> Self {
        OtlpHttpConfig {
            endpoint: String::new(),
            traces_endpoint: String::new(),
            metrics_endpoint: String::new(),
            logs_endpoint: String::new(),
            profiles_endpoint: String::new(),
            encoding: Encoding::Proto,
            compression: Compression::Gzip,
            compression_params: None,
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
            read_buffer_size: 0,
            write_buffer_size: 512 * 1024,
            cookies: None,
            force_attempt_http2: true,
            auth: None,
            middlewares: None,
        }
    }
}

impl OtlpHttpConfig {
    fn signal_override(&self, signal: Signal) -> &str {
        match signal {
            Signal::Traces => &self.traces_endpoint,
            Signal::Metrics => &self.metrics_endpoint,
            Signal::Logs => &self.logs_endpoint,
        }
    }

    /// The URL a signal is sent to: its own endpoint, or the base endpoint plus `/v1/<signal>`.
    pub fn signal_url(&self, signal: Signal) -> Result<String, String> {
        let own = self.signal_override(signal);
        if !own.is_empty() {
            return Ok(own.to_string());
        }
        if self.endpoint.is_empty() {
            return Err(format!(
                "either endpoint or {signal}_endpoint must be specified"
            ));
        }
        let sep = if self.endpoint.ends_with('/') {
            ""
        } else {
            "/"
        };
        Ok(format!("{}{sep}v1/{signal}", self.endpoint))
    }

    pub(crate) fn connection(&self) -> ConnectionSettings {
        connection_settings!(self)
    }

    pub fn cookies_enabled(&self) -> bool {
        self.cookies
            .as_ref()
            .is_some_and(|c| c.enabled.unwrap_or(true))
    }
}

impl Validate for OtlpHttpConfig {
    fn validate(&self) -> Result<(), String> {
        if self.endpoint.is_empty()
            && self.traces_endpoint.is_empty()
            && self.metrics_endpoint.is_empty()
            && self.logs_endpoint.is_empty()
            && self.profiles_endpoint.is_empty()
        {
            return Err("at least one endpoint must be specified".to_string());
        }
        for (name, value) in [
            ("endpoint", &self.endpoint),
            ("traces_endpoint", &self.traces_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
            ("logs_endpoint", &self.logs_endpoint),
            ("profiles_endpoint", &self.profiles_endpoint),
        ] {
            if !value.is_empty() {
                parse_url(value).map_err(|e| format!("{name} must be a valid URL: {e}"))?;
            }
        }
        validate_proxy_url(&self.proxy_url)?;
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
        self.sending_queue.validate()?;
        Ok(())
    }
}

impl ComponentConfig for OtlpHttpConfig {}
