//! How OTLP metrics are named in Prometheus: metric names with their unit and type suffixes,
//! label names, label values, and the `job`, `instance` and `target_info` conventions. The
//! rules are those of the Collector's Prometheus translation (and of the OpenTelemetry
//! specification's Prometheus compatibility section), so a dashboard written against the
//! Collector's output keeps working. Shared by every component that turns OTLP metrics into
//! Prometheus series.

mod labels;
mod naming;

pub use labels::{
    attribute_labels, attribute_string, instance, is_identifying, job, label_name,
    target_info_labels, INSTANCE_LABEL, JOB_LABEL, SCOPE_ATTRIBUTE_PREFIX, SCOPE_NAME_LABEL,
    SCOPE_SCHEMA_URL_LABEL, SCOPE_VERSION_LABEL, SERVICE_INSTANCE_ID, SERVICE_NAME,
    SERVICE_NAMESPACE,
};
pub use naming::{unit_name, MetricNamer, MetricType, TranslationStrategy};

/// Prometheus's staleness marker: a NaN no computation produces, meaning "this series
/// ended".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it (`0.005`, `1000000`, `1`,
/// `NaN`, `+Inf`): how upstream writes `le` and `quantile` values and numbers as text.
pub fn decimal(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's shortest round-trip digits, never in exponent form: the same text.
        format!("{f}")
    }
}

/// The series that carries a resource's attributes, one per `job` and `instance`.
pub const TARGET_INFO: &str = "target_info";
/// Its HELP text.
pub const TARGET_INFO_HELP: &str = "Target metadata";
/// Exemplar label holding the trace id (lower-case hex).
pub const EXEMPLAR_TRACE_ID: &str = "trace_id";
/// Exemplar label holding the span id (lower-case hex).
pub const EXEMPLAR_SPAN_ID: &str = "span_id";
/// Metric metadata key the prometheus receiver sets to the type it scraped; a gauge whose
/// value is `unknown` goes back out as untyped.
pub const METADATA_TYPE_KEY: &str = "prometheus.type";

/// A name that cannot be turned into a valid Prometheus name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("normalization for metric \"{name}\" resulted in empty name")]
    EmptyMetricName { name: String },
    #[error("normalization for metric \"{name}\" resulted in invalid name \"{normalized}\"")]
    InvalidMetricName { name: String, normalized: String },
    #[error("normalization for label name \"{label}\" resulted in empty name")]
    EmptyLabelName { label: String },
    #[error("normalization for label name \"{label}\" resulted in invalid name \"{normalized}\"")]
    InvalidLabelName { label: String, normalized: String },
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: a name the text format 0.0.4 and OpenMetrics 1.0 can carry.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: a label name the text formats can carry.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_syntax() {
        for ok in ["a", "_a", ":a", "a:b_c9", "A"] {
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a.b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
        for ok in ["a", "_a", "a_9", "__name__"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a:b", "a.b"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }
}
