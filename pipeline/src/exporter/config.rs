//! Settings every exporter shares, with upstream's names and defaults:
//! `retry_on_failure`, `sending_queue`, `compression`, and client TLS.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::config::types::GoDuration;

/// `retry_on_failure` (upstream `configretry.BackOffConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub enabled: bool,
    pub initial_interval: GoDuration,
    pub max_interval: GoDuration,
    /// 0 means retry for ever.
    pub max_elapsed_time: GoDuration,
    pub multiplier: f64,
    pub randomization_factor: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            enabled: true,
            initial_interval: GoDuration::from_secs(5),
            max_interval: GoDuration::from_secs(30),
            max_elapsed_time: GoDuration::from_secs(300),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

impl RetrySettings {
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            return Err(
                "retry_on_failure: 'randomization_factor' must be within [0, 1]".to_string(),
            );
        }
        if self.multiplier.is_nan() || self.multiplier <= 0.0 {
            return Err("retry_on_failure: 'multiplier' must be positive".to_string());
        }
        if !self.max_elapsed_time.get().is_zero() {
            if self.max_elapsed_time < self.initial_interval {
                return Err(
                    "retry_on_failure: 'max_elapsed_time' must not be less than 'initial_interval'"
                        .to_string(),
                );
            }
            if self.max_elapsed_time < self.max_interval {
                return Err(
                    "retry_on_failure: 'max_elapsed_time' must not be less than 'max_interval'"
                        .to_string(),
                );
            }
        }
        Ok(())
    }
}

/// How the sending queue measures its size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// Each request (batch) counts 1.
    #[default]
    Requests,
    /// Spans, data points or log records.
    Items,
    /// Encoded protobuf bytes.
    Bytes,
}

/// `sending_queue` (upstream `exporterhelper.QueueBatchConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    pub enabled: bool,
    pub num_consumers: usize,
    pub queue_size: u64,
    pub sizer: Sizer,
    /// Wait for room instead of dropping when the queue is full.
    pub block_on_overflow: bool,
    /// Answer the sender only once the data was exported.
    pub wait_for_result: bool,
    /// A storage extension for a persistent queue; not available yet.
    pub storage: Option<String>,
    /// Exporter-side batching; accepted, not applied yet (use the batch processor).
    pub batch: Option<IgnoredAny>,
    /// Deprecated upstream alias of `block_on_overflow`.
    pub blocking: Option<bool>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            enabled: true,
            num_consumers: 10,
            queue_size: 1000,
            sizer: Sizer::Requests,
            block_on_overflow: false,
            wait_for_result: false,
            storage: None,
            batch: None,
            blocking: None,
        }
    }
}

impl QueueSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.num_consumers == 0 {
            return Err("sending_queue: 'num_consumers' must be positive".to_string());
        }
        if self.queue_size == 0 {
            return Err("sending_queue: 'queue_size' must be positive".to_string());
        }
        if self.storage.is_some() {
            return Err(
                "sending_queue: 'storage' (persistent queue) is not supported yet".to_string(),
            );
        }
        Ok(())
    }

    pub fn blocks(&self) -> bool {
        self.block_on_overflow || self.blocking.unwrap_or(false)
    }
}

/// Request compression (upstream `configcompression.Type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    Snappy,
    Zlib,
    Deflate,
    #[serde(alias = "")]
    None,
}

impl Compression {
    /// The `Content-Encoding` / `grpc-encoding` name; `None` for no compression.
    pub fn encoding(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::Snappy => Some("snappy"),
            Compression::Zlib => Some("zlib"),
            Compression::Deflate => Some("deflate"),
            Compression::None => None,
        }
    }
}

pub use crate::tls::ClientTlsSettings;
