//! `prometheus` receiver configuration: the Collector's options around `config:`, which holds
//! Prometheus's own configuration (`global`, `scrape_configs`) with Prometheus's names,
//! defaults and validation messages.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use ferrotel_pipeline::tls::ClientTlsSettings;

use super::relabel::RelabelConfig;

/// The receiver's section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusReceiverConfig {
    pub config: PromConfig,
    /// Drop type and unit suffixes (`_total`, `_seconds`) from metric names.
    pub trim_metric_suffixes: bool,
    /// Accepted; the extra series are not reported.
    pub report_extra_scrape_metrics: bool,
    /// Removed upstream (start times are no longer adjusted); accepted and ignored.
    pub use_start_time_metric: bool,
    pub start_time_metric_regex: Option<String>,
    pub target_allocator: Option<IgnoredAny>,
    pub api_server: Option<IgnoredAny>,
}

/// Prometheus's configuration, the parts a scraper reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromConfig {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub scrape_config_files: Option<Vec<String>>,
    pub alerting: Option<IgnoredAny>,
    pub rule_files: Option<IgnoredAny>,
    pub remote_write: Option<IgnoredAny>,
    pub remote_read: Option<IgnoredAny>,
    pub storage: Option<IgnoredAny>,
    pub tracing: Option<IgnoredAny>,
}

/// `global`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    pub evaluation_interval: Option<PromDuration>,
    pub rule_query_offset: Option<PromDuration>,
    pub external_labels: BTreeMap<String, String>,
    pub query_log_file: Option<String>,
    pub scrape_failure_log_file: Option<String>,
    pub scrape_protocols: Option<Vec<String>>,
    pub body_size_limit: Option<ByteSize>,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub honor_labels: bool,
    pub honor_timestamps: Option<bool>,
    pub track_timestamps_staleness: bool,
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    pub scrape_protocols: Option<Vec<String>>,
    pub scrape_classic_histograms: bool,
    pub always_scrape_classic_histograms: bool,
    pub native_histogram_bucket_limit: u64,
    pub native_histogram_min_bucket_factor: Option<f64>,
    pub metrics_path: Option<String>,
    pub scheme: Option<String>,
    pub params: BTreeMap<String, Vec<String>>,
    pub enable_compression: Option<bool>,
    pub body_size_limit: Option<ByteSize>,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
    // HTTP client settings.
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub proxy_url: Option<String>,
    pub no_proxy: Option<String>,
    pub proxy_from_environment: Option<bool>,
    pub oauth2: Option<IgnoredAny>,
    // Targets.
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<super::kubernetes::KubernetesSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// `Bearer` when empty.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub ca: Option<String>,
    pub cert_file: Option<String>,
    pub cert: Option<String>,
    pub key_file: Option<String>,
    pub key: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

impl TlsConfig {
    /// The shared client TLS settings these mean; `None` means the defaults.
    pub fn client_settings(tls: Option<&TlsConfig>) -> ClientTlsSettings {
        // Prometheus writes versions as `TLS12`; the shared settings as `1.2`.
        let version = |v: &Option<String>| {
            v.as_deref().map(|v| match v {
                "TLS10" => "1.0".to_string(),
                "TLS11" => "1.1".to_string(),
                "TLS12" => "1.2".to_string(),
                "TLS13" => "1.3".to_string(),
                other => other.to_string(),
            })
        };
        let mut settings = ClientTlsSettings::default();
        if let Some(t) = tls {
            settings.ca_file = t.ca_file.clone();
            settings.ca_pem = t.ca.clone();
            settings.cert_file = t.cert_file.clone();
            settings.cert_pem = t.cert.clone();
            settings.key_file = t.key_file.clone();
            settings.key_pem = t.key.clone();
            settings.insecure_skip_verify = t.insecure_skip_verify;
            settings.server_name_override = t.server_name.clone();
            settings.min_version = version(&t.min_version);
            settings.max_version = version(&t.max_version);
        }
        settings
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Option<PromDuration>,
}

/// A duration as Prometheus writes one: units `ms`, `s`, `m`, `h`, `d`, `w`, `y`, largest
/// first (`1h30m`, `90s`, `100ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Parses a Prometheus duration.
pub fn parse_prom_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("not a valid duration string: {text:?}");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad());
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut last_unit = 0usize;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // `ms` before `m`, so that `5ms` is not read as minutes.
        let (index, unit, scale) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .map(|(i, (u, s))| (i + 1, *u, *s))
            .ok_or_else(bad)?;
        // Units must come largest first, each once.
        if index <= last_unit {
            return Err(bad());
        }
        last_unit = index;
        rest = &rest[unit.len()..];
        total_ms = n
            .checked_mul(scale)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration as Prometheus prints one (`1m`, `15s`, `1h30m`, `500ms`).
pub fn format_prom_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, scale) in [
        ("y", 365 * 24 * 3600 * 1000u64),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= scale {
            out.push_str(&format!("{}{unit}", ms / scale));
            ms %= scale;
        }
    }
    out
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PromDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 15s, 1m or 1h30m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PromDuration, E> {
                parse_prom_duration(v).map(PromDuration).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A size in bytes as Prometheus writes one (`10MB`, `512KiB`, `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 10MB or 512KiB")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                let digits = v.bytes().take_while(u8::is_ascii_digit).count();
                let n: u64 = v[..digits]
                    .parse()
                    .map_err(|_| E::custom(format!("invalid size {v:?}")))?;
                let scale: u64 = match v[digits..].trim() {
                    "" | "B" => 1,
                    "KB" => 1000,
                    "MB" => 1000 * 1000,
                    "GB" => 1000 * 1000 * 1000,
                    "KiB" => 1 << 10,
                    "MiB" => 1 << 20,
                    "GiB" => 1 << 30,
                    other => return Err(E::custom(format!("invalid size unit {other:?}"))),
                };
                n.checked_mul(scale)
                    .map(ByteSize)
                    .ok_or_else(|| E::custom(format!("size {v:?} is too large")))
            }
        }
        deserializer.deserialize_any(V)
    }
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A job with every inherited setting resolved.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: ScrapeConfig,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub honor_timestamps: bool,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub body_size_limit: u64,
}

impl PromConfig {
    /// The global interval and timeout after Prometheus's defaulting.
    fn global_timing(&self) -> Result<(Duration, Duration), String> {
        let interval = self
            .global
            .scrape_interval
            .map(PromDuration::get)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_INTERVAL);
        let timeout = match self.global.scrape_timeout.map(PromDuration::get) {
            Some(t) if !t.is_zero() => t,
            _ => DEFAULT_TIMEOUT.min(interval),
        };
        if timeout > interval {
            return Err("global scrape timeout greater than scrape interval".to_string());
        }
        Ok((interval, timeout))
    }

    /// Every job, resolved, with Prometheus's validation.
    pub fn jobs(&self) -> Result<Vec<Job>, String> {
        let (global_interval, global_timeout) = self.global_timing()?;
        let mut names = std::collections::HashSet::new();
        let mut jobs = Vec::new();
        for sc in &self.scrape_configs {
            if sc.job_name.is_empty() {
                return Err("job_name is empty".to_string());
            }
            if !names.insert(sc.job_name.clone()) {
                return Err(format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                ));
            }
            let interval = sc
                .scrape_interval
                .map(PromDuration::get)
                .filter(|d| !d.is_zero())
                .unwrap_or(global_interval);
            let timeout = match sc.scrape_timeout.map(PromDuration::get) {
                Some(t) if !t.is_zero() => t,
                _ => global_timeout.min(interval),
            };
            if timeout > interval {
                return Err(format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    sc.job_name
                ));
            }
            let scheme = sc.scheme.clone().unwrap_or_else(|| "http".to_string());
            if scheme != "http" && scheme != "https" {
                return Err(format!(
                    "scrape config for job {:?}: invalid scheme {scheme:?} (http or https)",
                    sc.job_name
                ));
            }
            if sc.oauth2.is_some() || sc.proxy_url.is_some() {
                return Err(format!(
                    "scrape config for job {:?}: oauth2 and proxy_url are not supported yet",
                    sc.job_name
                ));
            }
            for sd in &sc.kubernetes_sd_configs {
                sd.validate()
                    .map_err(|e| format!("scrape config for job {:?}: {e}", sc.job_name))?;
            }
            for sd in &sc.file_sd_configs {
                super::discovery::validate(sd)
                    .map_err(|e| format!("scrape config for job {:?}: {e}", sc.job_name))?;
            }
            if sc.relabel_configs.is_empty() {
                for target in sc.static_configs.iter().flat_map(|s| &s.targets) {
                    if target.contains('/') {
                        return Err(format!("{target:?} is not a valid hostname"));
                    }
                }
            }
            for rule in sc.relabel_configs.iter().chain(&sc.metric_relabel_configs) {
                rule.validate()
                    .map_err(|e| format!("scrape config for job {:?}: {e}", sc.job_name))?;
            }
            let inherit = |own: u64, global: u64| if own == 0 { global } else { own };
            jobs.push(Job {
                interval,
                timeout,
                metrics_path: sc
                    .metrics_path
                    .clone()
                    .unwrap_or_else(|| "/metrics".to_string()),
                scheme,
                honor_timestamps: sc.honor_timestamps.unwrap_or(true),
                sample_limit: inherit(sc.sample_limit, self.global.sample_limit),
                label_limit: inherit(sc.label_limit, self.global.label_limit),
                body_size_limit: sc
                    .body_size_limit
                    .or(self.global.body_size_limit)
                    .map_or(0, |b| b.0),
                config: sc.clone(),
            });
        }
        Ok(jobs)
    }
}

impl PrometheusReceiverConfig {
    /// Checks everything, with Prometheus's messages where Prometheus has them.
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.config;
        let refused = [
            ("alerting", c.alerting.is_some()),
            ("rule_files", c.rule_files.is_some()),
            ("remote_write", c.remote_write.is_some()),
            ("remote_read", c.remote_read.is_some()),
        ];
        let refused: Vec<&str> = refused
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();
        if !refused.is_empty() {
            return Err(format!(
                "unsupported features: {} (the receiver only scrapes)",
                refused.join(", ")
            ));
        }
        if c.scrape_config_files.is_some() {
            return Err("config.scrape_config_files is not supported yet".to_string());
        }
        if self.target_allocator.is_some() {
            return Err("target_allocator is not supported yet".to_string());
        }
        if self.api_server.is_some() {
            return Err("api_server is not supported".to_string());
        }
        c.jobs().map(drop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    fn try_config(yaml: &str) -> Result<PrometheusReceiverConfig, String> {
        decode(&Value::from_yaml_str(yaml).unwrap()).map_err(|e| e.to_string())
    }

    fn config(yaml: &str) -> PrometheusReceiverConfig {
        try_config(yaml).unwrap()
    }

    #[test]
    fn durations_as_prometheus_writes_them() {
        let ms = |s: &str| parse_prom_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("15s"), Ok(15_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("100ms"), Ok(100));
        assert_eq!(ms("1m5ms"), Ok(60_005));
        assert_eq!(ms("2d"), Ok(172_800_000));
        assert_eq!(ms("0"), Ok(0));
        for bad in ["", "1", "s", "1.5s", "30m1h", "1s1s", "-1s", "1x"] {
            assert!(ms(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_prom_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_prom_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_prom_duration(Duration::from_millis(1500)), "1s500ms");
    }

    #[test]
    fn timing_inherits_and_defaults_as_prometheus() {
        let c = config(
            "config:\n  global: {scrape_interval: 30s}\n  scrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 5s\n  - job_name: c\n    scrape_interval: 20s\n    scrape_timeout: 15s\n",
        );
        let jobs = c.config.jobs().unwrap();
        assert_eq!(jobs[0].interval, Duration::from_secs(30));
        assert_eq!(jobs[0].timeout, Duration::from_secs(10));
        assert_eq!(jobs[1].timeout, Duration::from_secs(5));
        assert_eq!(jobs[2].timeout, Duration::from_secs(15));
        assert_eq!(jobs[0].metrics_path, "/metrics");
        assert_eq!(jobs[0].scheme, "http");
        assert!(jobs[0].honor_timestamps);
        let none = config("config: {scrape_configs: [{job_name: x}]}");
        assert_eq!(none.config.jobs().unwrap()[0].interval, DEFAULT_INTERVAL);
    }

    #[test]
    fn prometheus_validation_messages() {
        let err = |yaml: &str| config(yaml).validate().unwrap_err();
        assert_eq!(
            err("config: {scrape_configs: [{job_name: a, scrape_interval: 5s, scrape_timeout: 6s}]}"),
            "scrape timeout greater than scrape interval for scrape config with job name \"a\""
        );
        assert_eq!(
            err("config: {scrape_configs: [{job_name: a}, {job_name: a}]}"),
            "found multiple scrape configs with job name \"a\""
        );
        assert_eq!(
            err("config: {scrape_configs: [{job_name: ''}]}"),
            "job_name is empty"
        );
        assert_eq!(
            err("config: {global: {scrape_interval: 5s, scrape_timeout: 6s}}"),
            "global scrape timeout greater than scrape interval"
        );
        assert_eq!(
            err(
                "config: {scrape_configs: [{job_name: a, static_configs: [{targets: ['h:1/x']}]}]}"
            ),
            "\"h:1/x\" is not a valid hostname"
        );
        assert!(err("config: {rule_files: [a.yml]}").contains("unsupported features: rule_files"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = try_config("config: {scrape_configs: [{job_name: a, scrape_intervall: 5s}]}")
            .unwrap_err();
        assert!(err.contains("scrape_intervall"), "{err}");
    }
}
