//! `filter` configuration: OTTL conditions per context (the `traces.span`-style lists and the
//! newer `trace_conditions` / `metric_conditions` / `log_conditions`), and `error_mode`.

use serde::Deserialize;

use ferrotel_ottl::groups::{
    compile_condition_entries, compile_conditions, CompiledConditions, ConditionEntry,
};
use ferrotel_ottl::{ContextKind, ErrorMode};
use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::filterset::{
    LogMatchProperties, MatchProperties, Matcher, MetricFilter, MetricMatchProperties, RegexpConfig,
};
use ferrotel_pipeline::pdata::Signal;

/// `traces`: conditions on spans and span events.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceFilters {
    pub span: Vec<String>,
    pub spanevent: Vec<String>,
}

/// `metrics`: conditions on metrics and data points.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricFilters {
    pub metric: Vec<String>,
    pub datapoint: Vec<String>,
    pub include: Option<MetricMatchProperties>,
    pub exclude: Option<MetricMatchProperties>,
    /// Accepted; matching needs no cache.
    pub regexp: Option<RegexpConfig>,
}

/// `logs`: conditions on log records.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogFilters {
    pub log_record: Vec<String>,
    pub include: Option<LogMatchProperties>,
    pub exclude: Option<LogMatchProperties>,
}

/// `spans`: the older include/exclude form.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanFilters {
    pub include: Option<MatchProperties>,
    pub exclude: Option<MatchProperties>,
}

/// The older include/exclude form of one signal, compiled: what it keeps.
#[derive(Debug)]
pub enum Legacy {
    Spans(Matcher),
    Logs(Matcher),
    Metrics(MetricFilter),
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// What a failing condition does: `propagate` (the default) refuses the batch.
    pub error_mode: ErrorMode,
    pub traces: TraceFilters,
    pub metrics: MetricFilters,
    pub logs: LogFilters,
    pub spans: SpanFilters,
    pub trace_conditions: Vec<ConditionEntry>,
    pub metric_conditions: Vec<ConditionEntry>,
    pub log_conditions: Vec<ConditionEntry>,
}

/// An older-form list: its config path, its context and its conditions.
type LegacyList<'a> = (&'static str, ContextKind, &'a [String]);

impl FilterConfig {
    /// The compiled condition groups for one signal, in the order they run.
    pub fn compile(&self, signal: Signal) -> Result<Vec<CompiledConditions>, String> {
        let mode = self.error_mode;
        let (new_name, new, legacy): (&str, &[ConditionEntry], Vec<LegacyList>) = match signal {
            Signal::Traces => (
                "trace_conditions",
                &self.trace_conditions,
                vec![
                    ("traces::span", ContextKind::Span, &self.traces.span),
                    (
                        "traces::spanevent",
                        ContextKind::SpanEvent,
                        &self.traces.spanevent,
                    ),
                ],
            ),
            Signal::Metrics => (
                "metric_conditions",
                &self.metric_conditions,
                vec![
                    ("metrics::metric", ContextKind::Metric, &self.metrics.metric),
                    (
                        "metrics::datapoint",
                        ContextKind::DataPoint,
                        &self.metrics.datapoint,
                    ),
                ],
            ),
            Signal::Logs => (
                "log_conditions",
                &self.log_conditions,
                vec![("logs::log_record", ContextKind::Log, &self.logs.log_record)],
            ),
        };
        let legacy_used = legacy.iter().any(|(_, _, l)| !l.is_empty());
        if !new.is_empty() && legacy_used {
            return Err(format!(
                "cannot use context inferred {new_name} and the settings {} at the same time",
                legacy
                    .iter()
                    .map(|(n, _, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !new.is_empty() {
            return compile_condition_entries(signal, new, mode)
                .map_err(|e| format!("{new_name}{e}"));
        }
        let mut out = Vec::new();
        for (name, ctx, texts) in legacy {
            if let Some(c) =
                compile_conditions(ctx, texts, mode).map_err(|e| format!("{name}{e}"))?
            {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn legacy_match_used(&self, signal: Signal) -> bool {
        match signal {
            Signal::Traces => self.spans.include.is_some() || self.spans.exclude.is_some(),
            Signal::Metrics => self.metrics.include.is_some() || self.metrics.exclude.is_some(),
            Signal::Logs => {
                let given =
                    |p: &Option<LogMatchProperties>| p.as_ref().is_some_and(|p| !p.is_empty());
                given(&self.logs.include) || given(&self.logs.exclude)
            }
        }
    }

    /// The older include/exclude form for one signal, when it is configured.
    pub fn legacy(&self, signal: Signal) -> Result<Option<Legacy>, String> {
        if !self.legacy_match_used(signal) {
            return Ok(None);
        }
        Ok(Some(match signal {
            Signal::Traces => Legacy::Spans(
                Matcher::new(
                    self.spans.include.as_ref(),
                    self.spans.exclude.as_ref(),
                    Signal::Traces,
                )
                .map_err(|e| format!("spans: {e}"))?,
            ),
            Signal::Logs => {
                let convert = |p: &Option<LogMatchProperties>| {
                    p.as_ref()
                        .filter(|p| !p.is_empty())
                        .map(LogMatchProperties::to_match_properties)
                };
                let (include, exclude) = (convert(&self.logs.include), convert(&self.logs.exclude));
                Legacy::Logs(
                    Matcher::new(include.as_ref(), exclude.as_ref(), Signal::Logs)
                        .map_err(|e| format!("logs: {e}"))?,
                )
            }
            Signal::Metrics => Legacy::Metrics(
                MetricFilter::new(self.metrics.include.as_ref(), self.metrics.exclude.as_ref())
                    .map_err(|e| format!("metrics: {e}"))?,
            ),
        }))
    }
}

impl Validate for FilterConfig {
    fn validate(&self) -> Result<(), String> {
        for signal in Signal::ALL {
            let conditions = self.compile(signal)?;
            if self.legacy(signal)?.is_some() && !conditions.is_empty() {
                return Err(format!(
                    "cannot use ottl conditions and include/exclude for {signal} at the same time"
                ));
            }
        }
        Ok(())
    }
}

impl ComponentConfig for FilterConfig {}
