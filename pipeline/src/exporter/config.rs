//! Settings every exporter shares, with upstream's names and defaults:
//! `retry_on_failure`, `sending_queue`, `compression`, and client TLS.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// `headers`: a map, or (as upstream's `configopaque.MapList` also reads it) a list of
/// `{name, value}` pairs. Scalar values are taken as their text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn check_duplicates(&self) -> Result<(), String> {
        let mut names: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let mut dups: Vec<&str> = names
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        dups.dedup();
        if dups.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "duplicate keys in map-style list: [{}]",
                dups.join(" ")
            ))
        }
    }

    /// Names and values must be valid gRPC metadata (`-bin` values are sent as raw bytes).
    pub fn validate_grpc(&self) -> Result<(), String> {
        self.check_duplicates()?;
        for (name, value) in &self.0 {
            let lower = name.to_ascii_lowercase();
            if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
                return Err(format!("headers: invalid metadata name \"{name}\""));
            }
            if !lower.ends_with("-bin") && http::HeaderValue::from_str(value).is_err() {
                return Err(format!(
                    "headers: the value of \"{name}\" is not valid in gRPC metadata"
                ));
            }
        }
        Ok(())
    }

    /// Names and values must be valid HTTP headers.
    pub fn validate_http(&self) -> Result<(), String> {
        self.check_duplicates()?;
        for (name, value) in &self.0 {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("headers: invalid header name \"{name}\""));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(format!(
                    "headers: the value of \"{name}\" is not a valid header value"
                ));
            }
        }
        Ok(())
    }
}

struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ScalarText, E> {
                Ok(ScalarText(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    name: String,
    value: ScalarText,
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of header names to values, or a list of {name, value}")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
                Ok(Headers::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, ScalarText>()? {
                    out.push((k, v.0));
                }
                Ok(Headers(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Headers, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<Pair>()? {
                    out.push((p.name, p.value.0));
                }
                Ok(Headers(out))
            }
        }
        d.deserialize_any(V)
    }
}

pub use crate::tls::ClientTlsSettings;
