//! The Collector's legacy include/exclude matching (upstream's `filterconfig` with
//! `filterspan`, `filterlog` and `filtermetric`), shared by the processors that select
//! telemetry with it: `attributes` (which items its actions apply to) and `filter` (its
//! `spans`, `logs` and `metrics` `include`/`exclude` forms).
//!
//! How to use it:
//! - decode the YAML into [`MatchConfig`] (or its two [`MatchProperties`] blocks), then build
//!   a [`Matcher`] for the signal of the pipeline: that checks which properties the signal
//!   may use, with upstream's messages, and compiles every regular expression once;
//! - ask [`Matcher::matches_span`], [`Matcher::matches_log`] or [`Matcher::matches_metric`]
//!   for each item with its resource and scope: `true` means selected (it matches `include`
//!   or there is none, and does not match `exclude`).
//!
//! Rules, as upstream applies them:
//! - every property given in a block must match (AND); within a property's list one entry
//!   matching is enough (OR), except `attributes`, `resources` and `libraries`, whose
//!   entries must all match;
//! - `match_type: strict` compares whole strings (and attribute values with their type);
//!   `regexp` finds the expression anywhere in the text (anchor it with `^...$`);
//! - `services` looks at the resource's `service.name`; `span_kinds` at names such as
//!   `SPAN_KIND_SERVER`; `log_bodies` at the body as text; `log_severity_number` at
//!   `min` and `match_undefined`; `metric_names` at the metric name.
//!
//! The filter processor's metrics form is [`MetricMatchProperties`], compiled into a
//! [`MetricFilter`]; its logs form is [`LogMatchProperties`], which converts into
//! [`MatchProperties`] as upstream converts it.

mod config;
mod matcher;
mod strings;

#[cfg(test)]
mod tests;

pub use config::{
    parse_severity, Attribute, Library, LogMatchProperties, LogSeverityNumber, MatchConfig,
    MatchProperties, MatchType, MetricMatchProperties, RegexpConfig, SeverityNumber,
};
pub use matcher::{
    same_value, span_kind_name, value_type_name, AttributesMatcher, Matcher, MetricFilter,
    PropertiesMatcher, NIL_SERVICE_NAME, SPAN_KINDS,
};
pub use strings::{compile_regexp, unrecognized_match_type, StringFilter};
