//! One scrape's series as OTLP metrics, as the Collector's prometheus receiver builds them:
//! a resource per job and instance, a metric per family (counters as cumulative monotonic
//! sums, gauges and untyped as gauges, classic histograms with their buckets de-cumulated,
//! summaries with their quantiles), staleness as the no-recorded-value flag.

use std::collections::HashMap;

use indexmap::IndexMap;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::metrics::DataPointFlags;
use ferrotel_pipeline::pdata::metrics::{
    exemplar, metric, number_data_point, summary_data_point::ValueAtQuantile,
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use ferrotel_pipeline::pdata::resource::Resource;

use super::parse::{Metadata, MetricType};

/// The scope of metrics whose series name none (upstream's receiver name).
pub const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver";

/// Prometheus's marker of a series that went away.
pub const STALE_NAN: u64 = ferrotel_pipeline::prometheus::STALE_NAN_BITS;

const NO_RECORDED_VALUE: u32 = DataPointFlags::NoRecordedValueMask as u32;

/// A series of a scrape, with its final labels (target labels merged, metric relabeling
/// done; no `__name__`).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: i64,
    pub exemplar: Option<OwnedExemplar>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OwnedExemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl Series {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a scrape's series become OTLP.
pub struct Translator<'a> {
    /// The target's scheme (`url.scheme`).
    pub scheme: &'a str,
    /// Family metadata by name (from the exposition, plus the synthetic series').
    pub metadata: &'a HashMap<String, Metadata>,
    pub trim_suffixes: bool,
    pub scope_version: &'a str,
    /// Resource attributes from the target's discovery (`k8s.pod.name` ...).
    pub discovered: &'a [(String, String)],
}

/// The resource attributes upstream derives from Kubernetes discovery labels.
pub fn discovered_resource(labels: &[(String, String)]) -> Vec<(String, String)> {
    let get = |name: &str| {
        labels
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for (meta, attribute) in [
        ("__meta_kubernetes_pod_name", "k8s.pod.name"),
        ("__meta_kubernetes_pod_uid", "k8s.pod.uid"),
        ("__meta_kubernetes_pod_container_name", "k8s.container.name"),
        ("__meta_kubernetes_namespace", "k8s.namespace.name"),
    ] {
        if let Some(v) = get(meta) {
            out.push((attribute.to_string(), v));
        }
    }
    if let Some(node) = get("__meta_kubernetes_pod_node_name")
        .or_else(|| get("__meta_kubernetes_node_name"))
        .or_else(|| get("__meta_kubernetes_endpoint_node_name"))
    {
        out.push(("k8s.node.name".to_string(), node));
    }
    if let (Some(kind), Some(name)) = (
        get("__meta_kubernetes_pod_controller_kind"),
        get("__meta_kubernetes_pod_controller_name"),
    ) {
        let attribute = match kind.as_str() {
            "ReplicaSet" => Some("k8s.replicaset.name"),
            "DaemonSet" => Some("k8s.daemonset.name"),
            "StatefulSet" => Some("k8s.statefulset.name"),
            "Job" => Some("k8s.job.name"),
            "CronJob" => Some("k8s.cronjob.name"),
            _ => None,
        };
        if let Some(attribute) = attribute {
            out.push((attribute.to_string(), name));
        }
    }
    out
}

/// The synthetic series of every scrape, with their metadata.
pub const REPORT_SERIES: [(&str, &str, Option<&str>); 5] = [
    ("up", "The scraping was successful", None),
    (
        "scrape_duration_seconds",
        "Duration of the scrape",
        Some("seconds"),
    ),
    (
        "scrape_samples_scraped",
        "The number of samples the target exposed",
        None,
    ),
    (
        "scrape_samples_post_metric_relabeling",
        "The number of samples remaining after metric relabeling was applied",
        None,
    ),
    (
        "scrape_series_added",
        "The approximate number of new series in this scrape",
        None,
    ),
];

#[derive(Default)]
struct Point {
    attributes: Vec<KeyValue>,
    timestamp_ms: i64,
    value: Option<f64>,
    stale: bool,
    start_seconds: Option<f64>,
    buckets: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
    quantiles: Vec<(f64, f64)>,
    exemplars: Vec<Exemplar>,
}

struct Family {
    kind: MetricType,
    help: String,
    unit: String,
    points: IndexMap<Vec<(String, String)>, Point>,
}

#[derive(Default)]
struct Scope {
    attributes: Vec<KeyValue>,
    families: IndexMap<String, Family>,
}

#[derive(Default)]
struct ResourceParts {
    job: String,
    instance: String,
    extra: Vec<(String, String)>,
    scopes: IndexMap<(String, String), Scope>,
}

/// Labels that never become point attributes.
fn is_excluded(name: &str) -> bool {
    matches!(name, "job" | "instance") || name.starts_with("otel_scope_")
}

impl Translator<'_> {
    /// The family a series belongs to: its name, type and metadata (upstream's lookup:
    /// the exact name, then the name less one known suffix).
    fn family_of(&self, name: &str) -> (String, MetricType, Option<&Metadata>) {
        if let Some(m) = self.metadata.get(name) {
            return (
                name.to_string(),
                m.kind.unwrap_or(MetricType::Unknown),
                Some(m),
            );
        }
        for suffix in ["_bucket", "_count", "_sum", "_total", "_info", "_created"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            if base.is_empty() {
                continue;
            }
            if let Some(m) = self.metadata.get(base) {
                let kind = m.kind.unwrap_or(MetricType::Unknown);
                let family = match kind {
                    // OpenMetrics counters: `x_total` and `x_created` make family `x_total`.
                    MetricType::Counter => format!("{base}_total"),
                    _ => base.to_string(),
                };
                return (family, kind, Some(m));
            }
            break;
        }
        (name.to_string(), MetricType::Unknown, None)
    }

    /// Every series of one scrape as resource metrics.
    pub fn translate(&self, series: &[Series]) -> Vec<ResourceMetrics> {
        let mut resources: IndexMap<(String, String), ResourceParts> = IndexMap::new();
        for s in series {
            let job = s.label("job").unwrap_or_default().to_string();
            let instance = s.label("instance").unwrap_or_default().to_string();
            let resource = resources
                .entry((job.clone(), instance.clone()))
                .or_insert_with(|| ResourceParts {
                    job,
                    instance,
                    ..Default::default()
                });
            if s.name == "target_info" {
                for (k, v) in &s.labels {
                    if k != "job" && k != "instance" && !v.is_empty() {
                        resource.extra.push((k.clone(), v.clone()));
                    }
                }
                continue;
            }
            let scope_key = (
                s.label("otel_scope_name").unwrap_or_default().to_string(),
                s.label("otel_scope_version")
                    .unwrap_or_default()
                    .to_string(),
            );
            if s.name == "otel_scope_info" {
                let scope = resource.scopes.entry(scope_key).or_default();
                for (k, v) in &s.labels {
                    if !is_excluded(k) && !v.is_empty() {
                        scope.attributes.push(string_kv(k, v));
                    }
                }
                continue;
            }
            let (family_name, kind, meta) = self.family_of(&s.name);
            let scope = resource.scopes.entry(scope_key).or_default();
            let family = scope
                .families
                .entry(family_name.clone())
                .or_insert_with(|| Family {
                    kind,
                    help: meta.and_then(|m| m.help.clone()).unwrap_or_default(),
                    unit: meta
                        .and_then(|m| m.unit.as_deref())
                        .map(unit_word_to_ucum)
                        .unwrap_or_default(),
                    points: IndexMap::new(),
                });
            let special = match kind {
                MetricType::Histogram | MetricType::GaugeHistogram => Some("le"),
                MetricType::Summary => Some("quantile"),
                _ => None,
            };
            let key: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(k, v)| !is_excluded(k) && Some(k.as_str()) != special && !v.is_empty())
                .cloned()
                .collect();
            let point = family.points.entry(key).or_insert_with_key(|key| Point {
                attributes: key.iter().map(|(k, v)| string_kv(k, v)).collect(),
                timestamp_ms: s.timestamp_ms,
                ..Default::default()
            });
            let stale = s.value.to_bits() == STALE_NAN;
            let suffix = s.name.strip_prefix(family_name.trim_end_matches("_total"));
            if s.name.ends_with("_created") && s.name != family_name {
                point.start_seconds = Some(s.value);
                continue;
            }
            match kind {
                MetricType::Histogram | MetricType::GaugeHistogram if suffix == Some("_bucket") => {
                    let Some(le) = s.label("le").and_then(|le| le.parse::<f64>().ok()) else {
                        continue;
                    };
                    point.buckets.push((le, s.value));
                    if let Some(e) = &s.exemplar {
                        point.exemplars.push(exemplar_of(e, s.timestamp_ms));
                    }
                }
                MetricType::Histogram | MetricType::Summary if suffix == Some("_sum") => {
                    point.sum = Some(s.value);
                    point.stale |= stale;
                }
                MetricType::Histogram | MetricType::Summary if suffix == Some("_count") => {
                    point.count = Some(s.value);
                    point.timestamp_ms = s.timestamp_ms;
                    point.stale |= stale;
                }
                MetricType::Summary => {
                    let Some(q) = s.label("quantile").and_then(|q| q.parse::<f64>().ok()) else {
                        continue;
                    };
                    point.quantiles.push((q, s.value));
                }
                _ => {
                    point.value = Some(s.value);
                    point.stale = stale;
                    point.timestamp_ms = s.timestamp_ms;
                    if let Some(e) = &s.exemplar {
                        point.exemplars.push(exemplar_of(e, s.timestamp_ms));
                    }
                }
            }
        }
        resources
            .into_values()
            .map(|r| self.resource_metrics(r))
            .collect()
    }

    fn resource_metrics(&self, parts: ResourceParts) -> ResourceMetrics {
        let mut attributes = vec![
            string_kv("service.name", &parts.job),
            string_kv("service.instance.id", &parts.instance),
        ];
        if let Some((host, port)) = split_host_port(&parts.instance) {
            if !matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
                attributes.push(string_kv("server.address", host));
            }
            attributes.push(string_kv("server.port", port));
        }
        attributes.push(string_kv("url.scheme", self.scheme));
        for (k, v) in self.discovered {
            attributes.push(string_kv(k, v));
        }
        for (k, v) in &parts.extra {
            match attributes.iter_mut().find(|kv| &kv.key == k) {
                Some(kv) => *kv = string_kv(k, v),
                None => attributes.push(string_kv(k, v)),
            }
        }
        let scope_metrics = parts
            .scopes
            .into_iter()
            .filter(|(_, scope)| !scope.families.is_empty())
            .map(|((name, version), scope)| {
                let (name, version) = if name.is_empty() {
                    (SCOPE_NAME.to_string(), self.scope_version.to_string())
                } else {
                    (name, version)
                };
                ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name,
                        version,
                        attributes: scope.attributes,
                        dropped_attributes_count: 0,
                    }),
                    metrics: scope
                        .families
                        .into_iter()
                        .filter_map(|(name, family)| self.metric(name, family))
                        .collect(),
                    schema_url: String::new(),
                }
            })
            .collect();
        ResourceMetrics {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_metrics,
            schema_url: String::new(),
        }
    }

    fn metric(&self, name: String, family: Family) -> Option<Metric> {
        let kind = family.kind;
        let name = if self.trim_suffixes {
            trim_suffixes(&name, kind, &family.unit)
        } else {
            name
        };
        let data = match kind {
            MetricType::Counter | MetricType::Info | MetricType::StateSet => {
                metric::Data::Sum(Sum {
                    data_points: family
                        .points
                        .into_values()
                        .filter_map(number_point)
                        .collect(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: kind == MetricType::Counter,
                })
            }
            MetricType::Histogram => metric::Data::Histogram(Histogram {
                data_points: family
                    .points
                    .into_values()
                    .filter_map(histogram_point)
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
            MetricType::Summary => metric::Data::Summary(Summary {
                data_points: family
                    .points
                    .into_values()
                    .filter_map(summary_point)
                    .collect(),
            }),
            MetricType::Gauge | MetricType::Unknown | MetricType::GaugeHistogram => {
                metric::Data::Gauge(Gauge {
                    data_points: family
                        .points
                        .into_values()
                        .filter_map(number_point)
                        .collect(),
                })
            }
        };
        let empty = match &data {
            metric::Data::Sum(s) => s.data_points.is_empty(),
            metric::Data::Gauge(g) => g.data_points.is_empty(),
            metric::Data::Histogram(h) => h.data_points.is_empty(),
            metric::Data::Summary(s) => s.data_points.is_empty(),
            _ => true,
        };
        if empty {
            return None;
        }
        Some(Metric {
            name,
            description: family.help,
            unit: family.unit,
            metadata: vec![string_kv("prometheus.type", kind.as_str())],
            data: Some(data),
        })
    }
}

fn nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

fn start_nanos(seconds: Option<f64>) -> u64 {
    match seconds {
        Some(s) if s.is_finite() && s > 0.0 => (s * 1e9) as u64,
        _ => 0,
    }
}

fn number_point(p: Point) -> Option<NumberDataPoint> {
    let value = p.value?;
    Some(NumberDataPoint {
        attributes: p.attributes,
        start_time_unix_nano: start_nanos(p.start_seconds),
        time_unix_nano: nanos(p.timestamp_ms),
        exemplars: p.exemplars,
        flags: if p.stale { NO_RECORDED_VALUE } else { 0 },
        value: (!p.stale).then_some(number_data_point::Value::AsDouble(value)),
    })
}

fn histogram_point(mut p: Point) -> Option<HistogramDataPoint> {
    // A point needs its count, as upstream's receiver requires.
    let count = p.count?;
    let stale = p.stale || count.to_bits() == STALE_NAN;
    p.buckets
        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let finite: Vec<(f64, f64)> = p
        .buckets
        .iter()
        .copied()
        .filter(|(le, _)| le.is_finite())
        .collect();
    let mut bucket_counts = Vec::with_capacity(finite.len() + 1);
    if !stale {
        // Buckets are cumulative; a decreasing one or a count below the last makes the
        // point unusable, and it is dropped as upstream drops it.
        let mut previous = 0.0;
        for (_, cumulative) in &finite {
            if cumulative.is_nan() || *cumulative < previous {
                return None;
            }
            bucket_counts.push((cumulative - previous) as u64);
            previous = *cumulative;
        }
        if count.is_nan() || count < previous {
            return None;
        }
        bucket_counts.push((count - previous) as u64);
    } else {
        bucket_counts.resize(finite.len() + 1, 0);
    }
    Some(HistogramDataPoint {
        attributes: p.attributes,
        start_time_unix_nano: start_nanos(p.start_seconds),
        time_unix_nano: nanos(p.timestamp_ms),
        count: if stale { 0 } else { count as u64 },
        sum: if stale { None } else { p.sum },
        bucket_counts,
        explicit_bounds: finite.iter().map(|(le, _)| *le).collect(),
        exemplars: p.exemplars,
        flags: if stale { NO_RECORDED_VALUE } else { 0 },
        min: None,
        max: None,
    })
}

fn summary_point(mut p: Point) -> Option<SummaryDataPoint> {
    let count = p.count?;
    let stale = p.stale || count.to_bits() == STALE_NAN;
    p.quantiles
        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    Some(SummaryDataPoint {
        attributes: p.attributes,
        start_time_unix_nano: start_nanos(p.start_seconds),
        time_unix_nano: nanos(p.timestamp_ms),
        count: if stale { 0 } else { count as u64 },
        sum: if stale { 0.0 } else { p.sum.unwrap_or(0.0) },
        quantile_values: if stale {
            Vec::new()
        } else {
            p.quantiles
                .into_iter()
                .map(|(quantile, value)| ValueAtQuantile { quantile, value })
                .collect()
        },
        flags: if stale { NO_RECORDED_VALUE } else { 0 },
    })
}

fn exemplar_of(e: &OwnedExemplar, sample_ms: i64) -> Exemplar {
    let mut trace_id = Vec::new();
    let mut span_id = Vec::new();
    let mut attributes = Vec::new();
    for (k, v) in &e.labels {
        let id = |len: usize| {
            (v.len() == len * 2 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| hex(v))
                .filter(|b| b.iter().any(|x| *x != 0))
        };
        if k.eq_ignore_ascii_case("trace_id") {
            if let Some(b) = id(16) {
                trace_id = b;
                continue;
            }
        } else if k.eq_ignore_ascii_case("span_id") {
            if let Some(b) = id(8) {
                span_id = b;
                continue;
            }
        }
        if !v.is_empty() {
            attributes.push(string_kv(k, v));
        }
    }
    Exemplar {
        filtered_attributes: attributes,
        time_unix_nano: nanos(e.timestamp_ms.unwrap_or(sample_ms)),
        span_id,
        trace_id,
        value: Some(exemplar::Value::AsDouble(e.value)),
    }
}

fn hex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) << 4 | pair.get(1).map_or(0, |c| digit(*c))
        })
        .collect()
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// `host:port` of an instance (`[v6]:port` too).
fn split_host_port(instance: &str) -> Option<(&str, &str)> {
    let (host, port) = instance.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port))
}

/// An OpenMetrics unit word as UCUM, as upstream converts it (`seconds` -> `s`,
/// `bytes_per_second` -> `By/s`); unknown words stay.
pub fn unit_word_to_ucum(word: &str) -> String {
    fn one(w: &str) -> &str {
        match w {
            "days" | "day" => "d",
            "hours" | "hour" => "h",
            "minutes" | "minute" => "min",
            "seconds" | "second" => "s",
            "milliseconds" | "millisecond" => "ms",
            "microseconds" | "microsecond" => "us",
            "nanoseconds" | "nanosecond" => "ns",
            "bytes" | "byte" => "By",
            "kibibytes" => "KiBy",
            "mebibytes" => "MiBy",
            "gibibytes" => "GiBy",
            "tibibytes" => "TiBy",
            "kilobytes" => "KBy",
            "megabytes" => "MBy",
            "gigabytes" => "GBy",
            "terabytes" => "TBy",
            "meters" | "meter" => "m",
            "volts" => "V",
            "amperes" => "A",
            "joules" => "J",
            "watts" => "W",
            "grams" => "g",
            "celsius" => "Cel",
            "hertz" => "Hz",
            "ratio" => "1",
            "percent" => "%",
            other => other,
        }
    }
    fn per(w: &str) -> &str {
        match w {
            "second" => "s",
            "minute" => "m",
            "hour" => "h",
            "day" => "d",
            "week" => "w",
            "month" => "mo",
            "year" => "y",
            other => other,
        }
    }
    match word.split_once("_per_") {
        Some((a, b)) => format!("{}/{}", one(a), per(b)),
        None => one(word).to_string(),
    }
}

/// `trim_metric_suffixes`: the name without its type suffix and unit.
fn trim_suffixes(name: &str, kind: MetricType, ucum: &str) -> String {
    let mut name = name;
    if kind == MetricType::Counter {
        name = name.strip_suffix("_total").unwrap_or(name);
    }
    if kind == MetricType::Info {
        name = name.strip_suffix("_info").unwrap_or(name);
    }
    let words = match ucum {
        "s" => "_seconds",
        "By" => "_bytes",
        "1" => "_ratio",
        _ => "",
    };
    if !words.is_empty() {
        name = name.strip_suffix(words).unwrap_or(name);
    }
    name.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn series(name: &str, labels: &[(&str, &str)], value: f64) -> Series {
        let mut l: Vec<(String, String)> = vec![
            ("instance".into(), "web-1:9100".into()),
            ("job".into(), "node".into()),
        ];
        l.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Series {
            name: name.into(),
            labels: l,
            value,
            timestamp_ms: 1_700_000_000_000,
            exemplar: None,
        }
    }

    fn meta(kind: MetricType) -> Metadata {
        Metadata {
            kind: Some(kind),
            help: Some("help".into()),
            unit: None,
        }
    }

    fn translator(metadata: &HashMap<String, Metadata>) -> Translator<'_> {
        Translator {
            scheme: "http",
            metadata,
            trim_suffixes: false,
            scope_version: "test",
            discovered: &[],
        }
    }

    fn attr<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a str> {
        kvs.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            }
        })
    }

    #[test]
    fn resource_from_job_and_instance() {
        let metadata = HashMap::new();
        let out = translator(&metadata).translate(&[
            series("x", &[], 1.0),
            series("target_info", &[("env", "prod")], 1.0),
        ]);
        assert_eq!(out.len(), 1);
        let r = out[0].resource.as_ref().unwrap();
        assert_eq!(attr(&r.attributes, "service.name"), Some("node"));
        assert_eq!(
            attr(&r.attributes, "service.instance.id"),
            Some("web-1:9100")
        );
        assert_eq!(attr(&r.attributes, "server.address"), Some("web-1"));
        assert_eq!(attr(&r.attributes, "server.port"), Some("9100"));
        assert_eq!(attr(&r.attributes, "url.scheme"), Some("http"));
        assert_eq!(attr(&r.attributes, "env"), Some("prod"));
        let scope = &out[0].scope_metrics[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, SCOPE_NAME);
        assert_eq!(scope.metrics.len(), 1, "target_info is not a metric");
        let Some(metric::Data::Gauge(g)) = &scope.metrics[0].data else {
            panic!("untyped is a gauge")
        };
        assert!(attr(&g.data_points[0].attributes, "job").is_none());
    }

    #[test]
    fn counters_histograms_and_summaries() {
        let mut metadata = HashMap::new();
        metadata.insert("req_total".to_string(), meta(MetricType::Counter));
        metadata.insert("lat".to_string(), meta(MetricType::Histogram));
        metadata.insert("rpc".to_string(), meta(MetricType::Summary));
        let out = translator(&metadata).translate(&[
            series("req_total", &[("code", "200")], 7.0),
            series("lat_bucket", &[("le", "0.1")], 2.0),
            series("lat_bucket", &[("le", "1")], 5.0),
            series("lat_bucket", &[("le", "+Inf")], 6.0),
            series("lat_sum", &[], 3.5),
            series("lat_count", &[], 6.0),
            series("rpc", &[("quantile", "0.9")], 0.3),
            series("rpc", &[("quantile", "0.5")], 0.1),
            series("rpc_sum", &[], 10.0),
            series("rpc_count", &[], 40.0),
        ]);
        let metrics = &out[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 3);
        let Some(metric::Data::Sum(s)) = &metrics[0].data else {
            panic!("counter")
        };
        assert!(s.is_monotonic);
        assert_eq!(metrics[0].name, "req_total");
        let Some(metric::Data::Histogram(h)) = &metrics[1].data else {
            panic!("histogram")
        };
        let p = &h.data_points[0];
        assert_eq!(p.explicit_bounds, [0.1, 1.0]);
        assert_eq!(p.bucket_counts, [2, 3, 1]);
        assert_eq!(p.count, 6);
        assert_eq!(p.sum, Some(3.5));
        let Some(metric::Data::Summary(sm)) = &metrics[2].data else {
            panic!("summary")
        };
        let q: Vec<f64> = sm.data_points[0]
            .quantile_values
            .iter()
            .map(|v| v.quantile)
            .collect();
        assert_eq!(q, [0.5, 0.9]);
        assert_eq!(sm.data_points[0].count, 40);
    }

    #[test]
    fn openmetrics_counter_with_created_and_a_stale_gauge() {
        let mut metadata = HashMap::new();
        metadata.insert("c".to_string(), meta(MetricType::Counter));
        metadata.insert("g".to_string(), meta(MetricType::Gauge));
        let out = translator(&metadata).translate(&[
            series("c_total", &[], 3.0),
            series("c_created", &[], 1_600_000_000.5),
            series("g", &[], f64::from_bits(STALE_NAN)),
        ]);
        let metrics = &out[0].scope_metrics[0].metrics;
        assert_eq!(metrics[0].name, "c_total");
        let Some(metric::Data::Sum(s)) = &metrics[0].data else {
            panic!("counter")
        };
        assert_eq!(
            s.data_points[0].start_time_unix_nano,
            1_600_000_000_500_000_000
        );
        let Some(metric::Data::Gauge(g)) = &metrics[1].data else {
            panic!("gauge")
        };
        assert_eq!(g.data_points[0].flags, NO_RECORDED_VALUE);
        assert_eq!(g.data_points[0].value, None);
    }

    #[test]
    fn a_histogram_without_its_count_or_with_falling_buckets_is_dropped() {
        let mut metadata = HashMap::new();
        metadata.insert("h".to_string(), meta(MetricType::Histogram));
        let t = translator(&metadata);
        let out = t.translate(&[series("h_bucket", &[("le", "1")], 1.0)]);
        assert!(out[0].scope_metrics.iter().all(|s| s.metrics.is_empty()));
        let out = t.translate(&[
            series("h_bucket", &[("le", "1")], 5.0),
            series("h_bucket", &[("le", "2")], 3.0),
            series("h_count", &[], 5.0),
        ]);
        assert!(out[0].scope_metrics.iter().all(|s| s.metrics.is_empty()));
    }

    #[test]
    fn units_as_ucum() {
        assert_eq!(unit_word_to_ucum("seconds"), "s");
        assert_eq!(unit_word_to_ucum("bytes_per_second"), "By/s");
        assert_eq!(unit_word_to_ucum("ratio"), "1");
        assert_eq!(unit_word_to_ucum("widgets"), "widgets");
    }
}
