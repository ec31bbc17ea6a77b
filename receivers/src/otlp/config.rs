//! `otlp` receiver configuration, with upstream's field names and defaults.

use indexmap::IndexMap;
use serde::de::IgnoredAny;
use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::tls::ServerTlsSettings;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    #[serde(default)]
    pub protocols: Protocols,
}

/// A protocol is enabled when its key is present, even with no value (`grpc:`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    #[serde(deserialize_with = "present")]
    pub grpc: Option<GrpcServerConfig>,
    #[serde(deserialize_with = "present")]
    pub http: Option<HttpServerConfig>,
}

/// A key that is present with a null value means "enabled with defaults".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let value: Option<T> = Option::deserialize(deserializer)?;
    Ok(Some(value.unwrap_or_default()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    pub endpoint: String,
    /// Only `tcp` is supported.
    pub transport: String,
    pub tls: Option<ServerTlsSettings>,
    /// 0 means the gRPC default of 4 MiB.
    pub max_recv_msg_size_mib: u64,
    pub max_concurrent_streams: u32,
    pub read_buffer_size: usize,
    pub write_buffer_size: usize,
    pub keepalive: Option<Keepalive>,
    pub include_metadata: bool,
    pub auth: Option<IgnoredAny>,
    pub middlewares: Option<IgnoredAny>,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig {
            endpoint: "localhost:4317".to_string(),
            transport: "tcp".to_string(),
            tls: None,
            max_recv_msg_size_mib: 0,
            max_concurrent_streams: 0,
            read_buffer_size: 512 * 1024,
            write_buffer_size: 0,
            keepalive: None,
            include_metadata: false,
            auth: None,
            middlewares: None,
        }
    }
}

impl GrpcServerConfig {
    /// The largest message accepted, in bytes.
    pub fn max_recv_bytes(&self) -> usize {
        let mib = if self.max_recv_msg_size_mib == 0 {
            4
        } else {
            self.max_recv_msg_size_mib
        };
        usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keepalive {
    pub server_parameters: Option<KeepaliveServerParameters>,
    pub enforcement_policy: Option<KeepaliveEnforcementPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveServerParameters {
    pub max_connection_idle: Option<GoDuration>,
    pub max_connection_age: Option<GoDuration>,
    pub max_connection_age_grace: Option<GoDuration>,
    pub time: Option<GoDuration>,
    pub timeout: Option<GoDuration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveEnforcementPolicy {
    pub min_time: Option<GoDuration>,
    pub permit_without_stream: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    pub endpoint: String,
    pub tls: Option<ServerTlsSettings>,
    pub cors: Option<CorsConfig>,
    /// Bytes; 0 means the default of 20 MiB.
    pub max_request_body_size: u64,
    pub include_metadata: bool,
    pub response_headers: IndexMap<String, String>,
    pub compression_algorithms: Option<Vec<String>>,
    pub traces_url_path: String,
    pub metrics_url_path: String,
    pub logs_url_path: String,
    pub profiles_url_path: Option<String>,
    pub read_timeout: Option<GoDuration>,
    pub read_header_timeout: Option<GoDuration>,
    pub write_timeout: Option<GoDuration>,
    pub idle_timeout: Option<GoDuration>,
    pub keep_alives_enabled: Option<bool>,
    pub auth: Option<IgnoredAny>,
    pub middlewares: Option<IgnoredAny>,
}

pub const DEFAULT_MAX_REQUEST_BODY: u64 = 20 * 1024 * 1024;

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            endpoint: "localhost:4318".to_string(),
            tls: None,
            cors: None,
            max_request_body_size: 0,
            include_metadata: false,
            response_headers: IndexMap::new(),
            compression_algorithms: None,
            traces_url_path: "/v1/traces".to_string(),
            metrics_url_path: "/v1/metrics".to_string(),
            logs_url_path: "/v1/logs".to_string(),
            profiles_url_path: None,
            read_timeout: None,
            read_header_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            keep_alives_enabled: None,
            auth: None,
            middlewares: None,
        }
    }
}

impl HttpServerConfig {
    pub fn max_body_bytes(&self) -> usize {
        let n = if self.max_request_body_size == 0 {
            DEFAULT_MAX_REQUEST_BODY
        } else {
            self.max_request_body_size
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    pub allowed_origins: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub max_age: u64,
}

const COMPRESSIONS: [&str; 8] = [
    "",
    "gzip",
    "zstd",
    "zlib",
    "snappy",
    "deflate",
    "x-snappy-framed",
    "identity",
];

fn check_path(name: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "protocols::http::{name}: must start with \"/\", got \"{path}\""
        ));
    }
    Ok(())
}

impl Validate for OtlpReceiverConfig {
    fn validate(&self) -> Result<(), String> {
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            return Err(
                "must specify at least one protocol when using the OTLP receiver".to_string(),
            );
        }
        if let Some(grpc) = &self.protocols.grpc {
            if grpc.transport != "tcp" {
                return Err(format!(
                    "protocols::grpc::transport: unsupported transport \"{}\" (valid values: tcp)",
                    grpc.transport
                ));
            }
            if let Some(tls) = &grpc.tls {
                tls.validate()
                    .map_err(|e| format!("protocols::grpc::{e}"))?;
            }
            check_endpoint("grpc", &grpc.endpoint)?;
        }
        if let Some(http) = &self.protocols.http {
            check_path("traces_url_path", &http.traces_url_path)?;
            check_path("metrics_url_path", &http.metrics_url_path)?;
            check_path("logs_url_path", &http.logs_url_path)?;
            if let Some(tls) = &http.tls {
                tls.validate()
                    .map_err(|e| format!("protocols::http::{e}"))?;
            }
            if let Some(list) = &http.compression_algorithms {
                for alg in list {
                    if !COMPRESSIONS.contains(&alg.as_str()) && alg != "lz4" {
                        return Err(format!(
                            "protocols::http::compression_algorithms: unsupported compression \"{alg}\" (valid values: gzip, zstd, zlib, deflate, snappy, x-snappy-framed)"
                        ));
                    }
                }
            }
            if let Some(cors) = &http.cors {
                if cors.allowed_origins.iter().any(|o| o == "*") {
                    return Err("protocols::http::cors::allowed_origins: \"*\" is not allowed because credentials are allowed; list the origins".to_string());
                }
            }
            check_endpoint("http", &http.endpoint)?;
        }
        Ok(())
    }
}

fn check_endpoint(protocol: &str, endpoint: &str) -> Result<(), String> {
    match ferrotel_pipeline::config::split_host_port(endpoint) {
        Some(_) => Ok(()),
        None => Err(format!(
            "protocols::{protocol}::endpoint: \"{endpoint}\" is not host:port"
        )),
    }
}

impl ComponentConfig for OtlpReceiverConfig {
    fn listen_endpoints(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(g) = &self.protocols.grpc {
            out.push(g.endpoint.clone());
        }
        if let Some(h) = &self.protocols.http {
            out.push(h.endpoint.clone());
        }
        out
    }
}
