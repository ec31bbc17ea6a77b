//! The `batch` processor's configuration, with upstream's defaults and validation messages.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::GoDuration;
use ferrotel_pipeline::factory::Validate;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Items (spans, data points, log records) that trigger a send; not a cap.
    pub send_batch_size: u32,
    /// Longest a pending batch waits before it is sent; 0 sends at once.
    pub timeout: GoDuration,
    /// Most items in one batch sent; 0 means no cap. Larger batches are split.
    pub send_batch_max_size: u32,
    /// Client metadata keys whose value combinations each get their own batcher.
    pub metadata_keys: Vec<String>,
    /// Most distinct value combinations of `metadata_keys`; 0 means no limit.
    pub metadata_cardinality_limit: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            timeout: GoDuration::from_millis(200),
            send_batch_max_size: 0,
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: 1000,
        }
    }
}

impl Validate for BatchConfig {
    fn validate(&self) -> Result<(), String> {
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            return Err("send_batch_max_size must be greater or equal to send_batch_size".into());
        }
        let mut seen = HashSet::new();
        for key in &self.metadata_keys {
            let lower = key.to_lowercase();
            if !seen.insert(lower.clone()) {
                return Err(format!(
                    "duplicate entry in metadata_keys: \"{lower}\" (case-insensitive)"
                ));
            }
        }
        Ok(())
    }
}

impl ComponentConfig for BatchConfig {}

impl BatchConfig {
    /// The pending batch is sent as soon as anything is in it: no timer is kept (upstream
    /// does the same when either setting is 0).
    pub(crate) fn sends_immediately(&self) -> bool {
        self.timeout.get() == Duration::ZERO || self.send_batch_size == 0
    }

    /// The metadata keys lower-cased and sorted, as upstream forms partition keys.
    pub(crate) fn normalized_metadata_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .metadata_keys
            .iter()
            .map(|k| k.to_lowercase())
            .collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    use super::*;

    fn parse(yaml: &str) -> Result<BatchConfig, String> {
        let value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let config: BatchConfig = decode(&value).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn defaults_match_upstream() {
        let c = parse("{}").unwrap();
        assert_eq!(c, BatchConfig::default());
        assert_eq!(c.send_batch_size, 8192);
        assert_eq!(c.timeout.get(), Duration::from_millis(200));
        assert_eq!(c.send_batch_max_size, 0);
        assert!(c.metadata_keys.is_empty());
        assert_eq!(c.metadata_cardinality_limit, 1000);
        assert_eq!(
            parse("").unwrap(),
            BatchConfig::default(),
            "null means defaults"
        );
    }

    #[test]
    fn reads_every_field() {
        let c = parse(
            "send_batch_size: 10\ntimeout: 1s\nsend_batch_max_size: 20\nmetadata_keys: [Tenant, b]\nmetadata_cardinality_limit: 5",
        )
        .unwrap();
        assert_eq!(c.send_batch_size, 10);
        assert_eq!(c.timeout.get(), Duration::from_secs(1));
        assert_eq!(c.send_batch_max_size, 20);
        assert_eq!(c.normalized_metadata_keys(), vec!["b", "tenant"]);
        assert_eq!(c.metadata_cardinality_limit, 5);
        assert!(!c.sends_immediately());
        assert!(parse("timeout: 0s").unwrap().sends_immediately());
        assert!(parse("send_batch_size: 0").unwrap().sends_immediately());
    }

    #[test]
    fn validation_messages_are_upstreams() {
        assert_eq!(
            parse("send_batch_size: 100\nsend_batch_max_size: 99").unwrap_err(),
            "send_batch_max_size must be greater or equal to send_batch_size"
        );
        assert!(parse("send_batch_size: 100\nsend_batch_max_size: 100").is_ok());
        assert!(parse("send_batch_size: 100\nsend_batch_max_size: 0").is_ok());
        assert_eq!(
            parse("metadata_keys: [Tenant, x, tenant]").unwrap_err(),
            "duplicate entry in metadata_keys: \"tenant\" (case-insensitive)"
        );
        let unknown = parse("send_batch_sizes: 1").unwrap_err();
        assert!(
            unknown.contains("unknown field \"send_batch_sizes\""),
            "{unknown}"
        );
        assert!(parse("send_batch_size: -1").is_err());
        assert!(parse("timeout: -1s").is_err());
    }
}
