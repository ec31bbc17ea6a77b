//! `otlp_grpc` configuration: upstream's `configgrpc.ClientConfig` fields plus the shared
//! `timeout`, `sending_queue` and `retry_on_failure`, with upstream's names and defaults.

use serde::de::IgnoredAny;
use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::exporter::config::{
    ClientTlsSettings, Compression, Headers, QueueSettings, RetrySettings,
};
use ferrotel_pipeline::factory::Validate;

/// `keepalive` (upstream `configgrpc.KeepaliveClientConfig`): HTTP/2 pings on the connection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keepalive {
    /// Ping after this long without activity; 0 means no pings.
    pub time: GoDuration,
    /// Close the connection when a ping is not answered within this; 0 means grpc-go's 20s.
    pub timeout: GoDuration,
    pub permit_without_stream: bool,
}

/// gRPC's own default ping timeout, used when `keepalive.timeout` is 0.
pub const DEFAULT_KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The `otlp_grpc` (alias `otlp`) exporter's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpGrpcConfig {
    pub endpoint: String,
    pub tls: ClientTlsSettings,
    pub headers: Headers,
    pub compression: Compression,
    /// Per attempt.
    pub timeout: GoDuration,
    pub sending_queue: QueueSettings,
    pub retry_on_failure: RetrySettings,
    /// Accepted for compatibility: one HTTP/2 connection is used, as with `pick_first`.
    pub balancer_name: Option<String>,
    pub keepalive: Option<Keepalive>,
    /// Accepted; the HTTP/2 stack sizes its own buffers.
    pub write_buffer_size: u64,
    /// Accepted; the HTTP/2 stack sizes its own buffers.
    pub read_buffer_size: u64,
    /// Wait for the connection to come up (until the attempt's timeout) instead of failing fast.
    pub wait_for_ready: bool,
    /// Overrides the `:authority` of every call.
    pub authority: Option<String>,
    pub auth: Option<IgnoredAny>,
    pub middlewares: Option<IgnoredAny>,
}

impl Default for OtlpGrpcConfig {
    fn default() -> Self {
        OtlpGrpcConfig {
            endpoint: String::new(),
            tls: ClientTlsSettings::default(),
            headers: Headers::default(),
            compression: Compression::Gzip,
            timeout: GoDuration::from_secs(5),
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
            balancer_name: None,
            keepalive: None,
            write_buffer_size: 512 * 1024,
            read_buffer_size: 0,
            wait_for_ready: false,
            authority: None,
            auth: None,
            middlewares: None,
        }
    }
}

/// Where to connect, after upstream's endpoint rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub authority: String,
    pub tls: bool,
}

impl OtlpGrpcConfig {
    /// The endpoint without an `http://`, `https://` or `dns:` prefix, as upstream strips them.
    pub fn sanitized_endpoint(&self) -> &str {
        let e = self.endpoint.as_str();
        if let Some(rest) = e.strip_prefix("http://") {
            rest
        } else if let Some(rest) = e.strip_prefix("https://") {
            rest
        } else if let Some(rest) = e.strip_prefix("dns://") {
            // `dns:///host:port` and `dns://authority/host:port` name the same target here.
            match rest.split_once('/') {
                Some((_, target)) => target,
                None => rest,
            }
        } else if let Some(rest) = e.strip_prefix("dns:") {
            rest
        } else {
            e
        }
    }

    /// TLS is on unless `tls.insecure` is set without a CA; `https://` always means TLS. As in
    /// upstream's current code, `http://` alone does not turn TLS off.
    pub fn target(&self) -> Target {
        let has_ca = self.tls.ca_file.is_some() || self.tls.ca_pem.is_some();
        Target {
            authority: self.sanitized_endpoint().to_string(),
            tls: self.endpoint.starts_with("https://") || !self.tls.insecure || has_ca,
        }
    }
}

/// Splits `host:port` (IPv6 hosts in brackets) as Go's `net.SplitHostPort` does, with its
/// error wording.
pub(crate) fn split_host_port(address: &str) -> Result<(&str, &str), String> {
    let missing = || format!("address {address}: missing port in address");
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {address}: missing ']' in address"))?;
        let port = after.strip_prefix(':').ok_or_else(missing)?;
        return Ok((host, port));
    }
    let (host, port) = address.rsplit_once(':').ok_or_else(missing)?;
    if host.contains(':') {
        return Err(format!("address {address}: too many colons in address"));
    }
    Ok((host, port))
}

impl Validate for OtlpGrpcConfig {
    fn validate(&self) -> Result<(), String> {
        if self.endpoint.starts_with("unix://") {
            return Err("unix socket endpoints are not supported yet".to_string());
        }
        let endpoint = self.sanitized_endpoint();
        if endpoint.is_empty() {
            return Err(r#"requires a non-empty "endpoint""#.to_string());
        }
        let (_, port) = split_host_port(endpoint)?;
        if port.parse::<u16>().is_err() {
            return Err(format!("invalid port \"{port}\""));
        }
        if endpoint.parse::<http::uri::Authority>().is_err() {
            return Err(format!("invalid endpoint \"{}\"", self.endpoint));
        }
        if let Some(name) = self.balancer_name.as_deref() {
            if !matches!(name, "" | "pick_first" | "round_robin") {
                return Err(format!("invalid balancer_name: {name}"));
            }
        }
        match self.compression {
            Compression::Gzip | Compression::Zstd | Compression::None => {}
            Compression::Snappy => {
                return Err("compression \"snappy\" is not supported by this exporter yet (supported: gzip, zstd, none)".to_string());
            }
            Compression::Zlib | Compression::Deflate => {
                let name = self.compression.encoding().unwrap_or_default();
                return Err(format!("unsupported compression type \"{name}\""));
            }
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
        if let Some(authority) = &self.authority {
            if authority.parse::<http::uri::Authority>().is_err() {
                return Err(format!("invalid authority \"{authority}\""));
            }
        }
        self.headers.validate_grpc()?;
        self.tls.validate()?;
        self.retry_on_failure.validate()?;
        self.sending_queue.validate()?;
        Ok(())
    }
}

impl ComponentConfig for OtlpGrpcConfig {}
