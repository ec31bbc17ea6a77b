//! `cumulativetodelta` configuration, with upstream's keys, defaults and messages.

use std::time::Duration;

use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::config::types::{format_go_duration, GoDuration};
use ferrotel_pipeline::delta::{DeltaSettings, InitialValue};
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::filterset::{MatchType, RegexpConfig, StringFilter};
use ferrotel_pipeline::pdata::metrics::metric::Data;
use ferrotel_pipeline::pdata::metrics::Metric;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CumulativeToDeltaConfig {
    /// How long a series unseen is remembered; 0 (the default) means forever.
    pub max_staleness: GoDuration,
    /// What happens to a series' first point: `auto` (default), `keep` or `drop`.
    pub initial_value: InitialValue,
    /// Which metrics are converted; without it, all are.
    pub include: MatchMetrics,
    /// Which metrics are not converted; it wins over `include`.
    pub exclude: MatchMetrics,
}

/// An `include` or `exclude` block: metric names, compared strictly or as regular
/// expressions, and/or metric types.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchMetrics {
    pub match_type: Option<MatchType>,
    /// Upstream's cache of regular expression results; accepted, matching needs none.
    pub regexp: Option<RegexpConfig>,
    pub metrics: Vec<String>,
    /// `sum`, `histogram`, `exponentialhistogram`, in any letter case.
    pub metric_types: Vec<String>,
}

/// The metric types `metric_types` may name, as upstream lists them in its message.
const METRIC_TYPES: [&str; 3] = ["sum", "histogram", "exponentialhistogram"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricType {
    Sum,
    Histogram,
    ExponentialHistogram,
}

impl MetricType {
    fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sum" => Some(MetricType::Sum),
            "histogram" => Some(MetricType::Histogram),
            "exponentialhistogram" => Some(MetricType::ExponentialHistogram),
            _ => None,
        }
    }

    fn of(metric: &Metric) -> Option<Self> {
        match metric.data {
            Some(Data::Sum(_)) => Some(MetricType::Sum),
            Some(Data::Histogram(_)) => Some(MetricType::Histogram),
            Some(Data::ExponentialHistogram(_)) => Some(MetricType::ExponentialHistogram),
            _ => None,
        }
    }
}

/// One compiled block: a metric matches when every part given matches.
#[derive(Debug)]
struct CompiledMatch {
    names: Option<StringFilter>,
    types: Vec<MetricType>,
}

impl CompiledMatch {
    fn new(block: &MatchMetrics) -> Result<Option<Self>, String> {
        let names = if block.metrics.is_empty() {
            None
        } else {
            Some(StringFilter::new(&block.metrics, block.match_type)?)
        };
        let types = block
            .metric_types
            .iter()
            .filter_map(|t| MetricType::parse(t))
            .collect::<Vec<_>>();
        if names.is_none() && types.is_empty() {
            return Ok(None);
        }
        Ok(Some(CompiledMatch { names, types }))
    }

    fn names_match(&self, metric: &Metric) -> Option<bool> {
        self.names.as_ref().map(|f| f.matches(&metric.name))
    }

    fn type_matches(&self, metric: &Metric) -> Option<bool> {
        if self.types.is_empty() {
            return None;
        }
        Some(MetricType::of(metric).is_some_and(|t| self.types.contains(&t)))
    }
}

/// Which metrics are converted: what `include` selects (everything without one), less what
/// `exclude` names.
#[derive(Debug)]
pub struct Selector {
    include: Option<CompiledMatch>,
    exclude: Option<CompiledMatch>,
}

impl Selector {
    pub fn selects(&self, metric: &Metric) -> bool {
        if let Some(include) = &self.include {
            // Every part given must let the metric in.
            if include.names_match(metric) == Some(false)
                || include.type_matches(metric) == Some(false)
            {
                return false;
            }
        }
        if let Some(exclude) = &self.exclude {
            // Either part keeps the metric out.
            if exclude.names_match(metric) == Some(true)
                || exclude.type_matches(metric) == Some(true)
            {
                return false;
            }
        }
        true
    }
}

impl CumulativeToDeltaConfig {
    pub fn selector(&self) -> Result<Selector, String> {
        Ok(Selector {
            include: CompiledMatch::new(&self.include)?,
            exclude: CompiledMatch::new(&self.exclude)?,
        })
    }

    pub fn settings(&self) -> DeltaSettings {
        DeltaSettings {
            max_staleness: self.max_staleness.get(),
            initial_value: self.initial_value,
        }
    }
}

impl Validate for CumulativeToDeltaConfig {
    fn validate(&self) -> Result<(), String> {
        let (include, exclude) = (&self.include, &self.exclude);
        if (!include.metrics.is_empty() && include.match_type.is_none())
            || (!exclude.metrics.is_empty() && exclude.match_type.is_none())
        {
            return Err("match_type must be set if metrics are supplied".into());
        }
        if (include.match_type.is_some() && include.metrics.is_empty())
            || (exclude.match_type.is_some() && exclude.metrics.is_empty())
        {
            return Err("metrics must be supplied if match_type is set".into());
        }
        for (name, block) in [("exclude", exclude), ("include", include)] {
            if let Some(bad) = block
                .metric_types
                .iter()
                .find(|t| MetricType::parse(t).is_none())
            {
                return Err(format!(
                    "found invalid metric type in {name}.metric_types: {bad}. Valid values are [{}]",
                    METRIC_TYPES.join(" ")
                ));
            }
        }
        let staleness = self.max_staleness.get();
        if !staleness.is_zero() && staleness < Duration::from_millis(1) {
            // A bare number is read as nanoseconds: most likely a forgotten unit.
            let nanos = staleness.as_nanos();
            let shown = format_go_duration(staleness);
            if (1..=86_400).contains(&nanos) {
                let secs = nanos as u64;
                return Err(format!(
                    "max_staleness ({shown}) appears to be missing a unit suffix; did you mean '{secs}s' or '{}'? Use '0' for infinite retention",
                    format_go_duration(Duration::from_secs(secs))
                ));
            }
            return Err(format!(
                "max_staleness ({shown}) is unreasonably small; duration values require a unit suffix (e.g., '300s', '5m', '1h') or use '0' for infinite retention"
            ));
        }
        // Upstream finds a bad expression or match type only when it starts; here the
        // config check does.
        self.selector().map(|_| ())
    }
}

impl ComponentConfig for CumulativeToDeltaConfig {}
