//! Compiled include/exclude properties and how spans, log records and metrics are checked
//! against them.

use std::collections::BTreeMap;

use super::config::{
    Attribute, Library, LogSeverityNumber, MatchConfig, MatchProperties, MatchType,
    MetricMatchProperties,
};
use super::strings::{unrecognized_match_type, StringFilter};
use crate::pdata::common::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use crate::pdata::logs::LogRecord;
use crate::pdata::metrics::Metric;
use crate::pdata::resource::Resource;
use crate::pdata::trace::Span;
use crate::pdata::Signal;
use crate::prometheus::attribute_string;

/// What spans are matched against for `services` when the resource has no `service.name`.
pub const NIL_SERVICE_NAME: &str = "<nil-service-name>";

/// The span kinds `span_kinds` may name with `match_type: strict`, sorted.
pub const SPAN_KINDS: [&str; 5] = [
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_CONSUMER",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_SERVER",
];

/// A span kind as the proto names it (`SPAN_KIND_SERVER`); empty for an unknown number.
pub fn span_kind_name(kind: i32) -> &'static str {
    match kind {
        0 => "SPAN_KIND_UNSPECIFIED",
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "",
    }
}

/// The type name the Collector gives a value in messages (`Str`, `Int`, `Map` ...).
pub fn value_type_name(value: Option<&AnyValue>) -> &'static str {
    match value.and_then(|v| v.value.as_ref()) {
        None => "Empty",
        Some(Value::StringValue(_) | Value::StringValueStrindex(_)) => "Str",
        Some(Value::BoolValue(_)) => "Bool",
        Some(Value::IntValue(_)) => "Int",
        Some(Value::DoubleValue(_)) => "Double",
        Some(Value::ArrayValue(_)) => "Slice",
        Some(Value::KvlistValue(_)) => "Map",
        Some(Value::BytesValue(_)) => "Bytes",
    }
}

/// Whether two values are the same: same type and equal, maps whatever their key order.
pub fn same_value(a: Option<&AnyValue>, b: Option<&AnyValue>) -> bool {
    same_inner(
        a.and_then(|v| v.value.as_ref()),
        b.and_then(|v| v.value.as_ref()),
    )
}

fn same_inner(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::StringValue(x)), Some(Value::StringValue(y))) => x == y,
        (Some(Value::StringValueStrindex(x)), Some(Value::StringValueStrindex(y))) => x == y,
        (Some(Value::BoolValue(x)), Some(Value::BoolValue(y))) => x == y,
        (Some(Value::IntValue(x)), Some(Value::IntValue(y))) => x == y,
        (Some(Value::DoubleValue(x)), Some(Value::DoubleValue(y))) => x == y,
        (Some(Value::BytesValue(x)), Some(Value::BytesValue(y))) => x == y,
        (Some(Value::ArrayValue(x)), Some(Value::ArrayValue(y))) => {
            x.values.len() == y.values.len()
                && x.values
                    .iter()
                    .zip(&y.values)
                    .all(|(p, q)| same_inner(p.value.as_ref(), q.value.as_ref()))
        }
        (Some(Value::KvlistValue(x)), Some(Value::KvlistValue(y))) => {
            let by_key = |list: &[KeyValue]| -> BTreeMap<String, Option<Value>> {
                list.iter()
                    .map(|kv| {
                        (
                            kv.key.clone(),
                            kv.value.as_ref().and_then(|v| v.value.clone()),
                        )
                    })
                    .collect()
            };
            let (x, y) = (by_key(&x.values), by_key(&y.values));
            x.len() == y.len()
                && x.iter().all(|(key, value)| {
                    y.get(key)
                        .is_some_and(|other| same_inner(value.as_ref(), other.as_ref()))
                })
        }
        _ => false,
    }
}

/// An attribute value as text for a regular expression: strings, bools, ints and doubles;
/// other types never match.
fn regexp_text(value: Option<&AnyValue>) -> Option<String> {
    match value.and_then(|v| v.value.as_ref())? {
        Value::StringValue(s) => Some(s.clone()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(f) => Some(crate::prometheus::decimal(*f)),
        _ => None,
    }
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attributes.iter().find(|kv| kv.key == key)
}

#[derive(Debug, Clone)]
enum ValueCheck {
    /// Only the key must be present.
    Present,
    Equal(Option<AnyValue>),
    Pattern(StringFilter),
}

#[derive(Debug, Clone)]
struct AttributeMatcher {
    key: String,
    check: ValueCheck,
}

/// A list of attributes that must all be present (and match) on an item.
#[derive(Debug, Clone, Default)]
pub struct AttributesMatcher(Vec<AttributeMatcher>);

impl AttributesMatcher {
    pub fn new(attributes: &[Attribute], match_type: Option<MatchType>) -> Result<Self, String> {
        let mut matchers = Vec::with_capacity(attributes.len());
        for attribute in attributes {
            if attribute.key.is_empty() {
                return Err("can't have empty key in the list of attributes".to_string());
            }
            let check = match &attribute.value {
                None => ValueCheck::Present,
                Some(value) => match match_type {
                    Some(MatchType::Regexp) => match &value.0.value {
                        Some(Value::StringValue(pattern)) => ValueCheck::Pattern(
                            StringFilter::new(std::slice::from_ref(pattern), match_type)?,
                        ),
                        _ => {
                            return Err(format!(
                                "match_type=regexp for {:?} only supports Str, but found {}",
                                attribute.key,
                                value_type_name(Some(&value.0))
                            ))
                        }
                    },
                    Some(MatchType::Strict) => ValueCheck::Equal(Some(value.0.clone())),
                    other => return Err(unrecognized_match_type(other)),
                },
            };
            matchers.push(AttributeMatcher {
                key: attribute.key.clone(),
                check,
            });
        }
        Ok(AttributesMatcher(matchers))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every listed attribute is present and matches (always, for an empty list).
    pub fn matches(&self, attributes: &[KeyValue]) -> bool {
        self.0.iter().all(|m| {
            let Some(found) = find(attributes, &m.key) else {
                return false;
            };
            match &m.check {
                ValueCheck::Present => true,
                ValueCheck::Equal(want) => same_value(want.as_ref(), found.value.as_ref()),
                ValueCheck::Pattern(filter) => {
                    regexp_text(found.value.as_ref()).is_some_and(|text| filter.matches(&text))
                }
            }
        })
    }
}

#[derive(Debug, Clone)]
struct LibraryMatcher {
    name: StringFilter,
    version: Option<StringFilter>,
}

impl LibraryMatcher {
    fn new(library: &Library, match_type: Option<MatchType>) -> Result<Self, String> {
        let name = StringFilter::new(std::slice::from_ref(&library.name), match_type)
            .map_err(|e| format!("error creating library name filters: {e}"))?;
        let version = match &library.version {
            Some(version) => Some(
                StringFilter::new(std::slice::from_ref(version), match_type)
                    .map_err(|e| format!("error creating library version filters: {e}"))?,
            ),
            None => None,
        };
        Ok(LibraryMatcher { name, version })
    }

    fn matches(&self, scope: Option<&InstrumentationScope>) -> bool {
        let (name, version) = scope.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
        self.name.matches(name) && self.version.as_ref().is_none_or(|v| v.matches(version))
    }
}

fn string_filter(
    items: &[String],
    match_type: Option<MatchType>,
    what: &str,
) -> Result<Option<StringFilter>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    StringFilter::new(items, match_type)
        .map(Some)
        .map_err(|e| format!("error creating {what} filters: {e}"))
}

/// One `include` or `exclude` block compiled for one signal: the properties that signal
/// uses, every regular expression compiled once.
#[derive(Debug, Clone, Default)]
pub struct PropertiesMatcher {
    services: Option<StringFilter>,
    span_names: Option<StringFilter>,
    span_kinds: Option<StringFilter>,
    log_bodies: Option<StringFilter>,
    log_severity_texts: Option<StringFilter>,
    log_severity_number: Option<LogSeverityNumber>,
    metric_names: Option<StringFilter>,
    libraries: Vec<LibraryMatcher>,
    attributes: AttributesMatcher,
    resources: AttributesMatcher,
}

impl PropertiesMatcher {
    /// Checks `properties` for `signal` and compiles them, with upstream's rules and messages:
    /// - traces use `services`, `span_names`, `span_kinds`, `attributes`, `resources`,
    ///   `libraries`; the `log_*` properties are an error, and so is a block with none of
    ///   the span properties; with `match_type: strict`, `span_kinds` must name real kinds;
    /// - logs use `log_bodies`, `log_severity_texts`, `log_severity_number`, `attributes`,
    ///   `resources`, `libraries`; `services`, `span_names` and `span_kinds` are an error, and
    ///   so is a block with none of the log properties;
    /// - metrics use `metric_names` and `resources`; the others are ignored, and an empty
    ///   block matches every metric.
    pub fn new(properties: &MatchProperties, signal: Signal) -> Result<Self, String> {
        match signal {
            Signal::Traces => Self::for_spans(properties),
            Signal::Logs => Self::for_logs(properties),
            Signal::Metrics => Self::for_metrics(properties),
        }
    }

    fn common(properties: &MatchProperties) -> Result<Self, String> {
        let match_type = properties.match_type;
        let libraries = properties
            .libraries
            .iter()
            .map(|library| LibraryMatcher::new(library, match_type))
            .collect::<Result<Vec<_>, _>>()?;
        let attributes = AttributesMatcher::new(&properties.attributes, match_type)
            .map_err(|e| format!("error creating attribute filters: {e}"))?;
        let resources = AttributesMatcher::new(&properties.resources, match_type)
            .map_err(|e| format!("error creating resource filters: {e}"))?;
        Ok(PropertiesMatcher {
            libraries,
            attributes,
            resources,
            ..Default::default()
        })
    }

    fn for_spans(p: &MatchProperties) -> Result<Self, String> {
        if !p.log_bodies.is_empty() {
            return Err("log_bodies should not be specified for trace spans".into());
        }
        if !p.log_severity_texts.is_empty() {
            return Err("log_severity_texts should not be specified for trace spans".into());
        }
        if p.log_severity_number.is_some() {
            return Err("log_severity_number should not be specified for trace spans".into());
        }
        if p.services.is_empty()
            && p.span_names.is_empty()
            && p.attributes.is_empty()
            && p.libraries.is_empty()
            && p.resources.is_empty()
            && p.span_kinds.is_empty()
        {
            return Err(
                r#"at least one of "attributes", "libraries",  or "resources" field must be specified"#
                    .into(),
            );
        }
        if p.match_type == Some(MatchType::Strict)
            && p.span_kinds
                .iter()
                .any(|k| !SPAN_KINDS.contains(&k.as_str()))
        {
            return Err(format!(
                "span_kinds string must match one of the standard span kinds when match_type=strict: [{}]",
                SPAN_KINDS.join(" ")
            ));
        }
        let mut matcher = Self::common(p)?;
        matcher.services = string_filter(&p.services, p.match_type, "service name")?;
        matcher.span_names = string_filter(&p.span_names, p.match_type, "span name")?;
        matcher.span_kinds = string_filter(&p.span_kinds, p.match_type, "span kind")?;
        Ok(matcher)
    }

    fn for_logs(p: &MatchProperties) -> Result<Self, String> {
        if !p.span_names.is_empty() || !p.services.is_empty() || !p.span_kinds.is_empty() {
            return Err(
                "services, span_names, and span_kinds are not valid for log records".into(),
            );
        }
        if p.attributes.is_empty()
            && p.libraries.is_empty()
            && p.resources.is_empty()
            && p.log_bodies.is_empty()
            && p.log_severity_texts.is_empty()
            && p.log_severity_number.is_none()
        {
            return Err(r#"at least one of "attributes", "libraries", "span_kinds", "resources", "log_bodies", "log_severity_texts" or "log_severity_number" field must be specified"#.into());
        }
        let mut matcher = Self::common(p)?;
        matcher.log_bodies = string_filter(&p.log_bodies, p.match_type, "log record body")?;
        matcher.log_severity_texts = string_filter(
            &p.log_severity_texts,
            p.match_type,
            "log record severity text",
        )?;
        matcher.log_severity_number = p.log_severity_number;
        Ok(matcher)
    }

    fn for_metrics(p: &MatchProperties) -> Result<Self, String> {
        let metric_names = if p.metric_names.is_empty() {
            None
        } else {
            Some(StringFilter::new(&p.metric_names, p.match_type)?)
        };
        let resources = AttributesMatcher::new(&p.resources, p.match_type)
            .map_err(|e| format!("error creating resource filters: {e}"))?;
        Ok(PropertiesMatcher {
            metric_names,
            resources,
            ..Default::default()
        })
    }

    fn matches_scope_and_resource(
        &self,
        attributes: &[KeyValue],
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
    ) -> bool {
        self.libraries.iter().all(|l| l.matches(scope))
            && (self.resources.is_empty()
                || self
                    .resources
                    .matches(resource.map_or(&[], |r| r.attributes.as_slice())))
            && self.attributes.matches(attributes)
    }

    /// Whether a span has every property of this block.
    pub fn matches_span(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        span: &Span,
    ) -> bool {
        if let Some(services) = &self.services {
            let service = resource
                .and_then(|r| find(&r.attributes, "service.name"))
                .map_or_else(
                    || NIL_SERVICE_NAME.to_string(),
                    |kv| attribute_string(&kv.value),
                );
            if !services.matches(&service) {
                return false;
            }
        }
        if self
            .span_names
            .as_ref()
            .is_some_and(|f| !f.matches(&span.name))
        {
            return false;
        }
        if self
            .span_kinds
            .as_ref()
            .is_some_and(|f| !f.matches(span_kind_name(span.kind)))
        {
            return false;
        }
        self.matches_scope_and_resource(&span.attributes, resource, scope)
    }

    /// Whether a log record has every property of this block.
    pub fn matches_log(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        log: &LogRecord,
    ) -> bool {
        if self
            .log_bodies
            .as_ref()
            .is_some_and(|f| !f.matches(&attribute_string(&log.body)))
        {
            return false;
        }
        if self
            .log_severity_texts
            .as_ref()
            .is_some_and(|f| !f.matches(&log.severity_text))
        {
            return false;
        }
        if let Some(severity) = &self.log_severity_number {
            let matched = if log.severity_number == 0 {
                severity.match_undefined
            } else {
                log.severity_number >= severity.min.0
            };
            if !matched {
                return false;
            }
        }
        self.matches_scope_and_resource(&log.attributes, resource, scope)
    }

    /// Whether a metric has every property of this block (its name and its resource).
    pub fn matches_metric(
        &self,
        resource: Option<&Resource>,
        _scope: Option<&InstrumentationScope>,
        metric: &Metric,
    ) -> bool {
        if self
            .metric_names
            .as_ref()
            .is_some_and(|f| !f.matches(&metric.name))
        {
            return false;
        }
        self.resources.is_empty()
            || self
                .resources
                .matches(resource.map_or(&[], |r| r.attributes.as_slice()))
    }
}

/// `include` and `exclude` compiled for one signal. An item is selected (the processor acts
/// on it, the filter keeps it) when it matches `include`, or there is no `include`, and does
/// not match `exclude`. Build it for the signal whose items it will see: the `matches_*`
/// method of another signal looks only at what both share.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    include: Option<PropertiesMatcher>,
    exclude: Option<PropertiesMatcher>,
}

impl Matcher {
    pub fn new(
        include: Option<&MatchProperties>,
        exclude: Option<&MatchProperties>,
        signal: Signal,
    ) -> Result<Self, String> {
        Ok(Matcher {
            include: include
                .map(|p| PropertiesMatcher::new(p, signal))
                .transpose()?,
            exclude: exclude
                .map(|p| PropertiesMatcher::new(p, signal))
                .transpose()?,
        })
    }

    pub fn from_config(config: &MatchConfig, signal: Signal) -> Result<Self, String> {
        Self::new(config.include.as_ref(), config.exclude.as_ref(), signal)
    }

    /// Neither `include` nor `exclude`: everything is selected.
    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    fn select(&self, matches: impl Fn(&PropertiesMatcher) -> bool) -> bool {
        self.include.as_ref().is_none_or(&matches) && !self.exclude.as_ref().is_some_and(matches)
    }

    pub fn matches_span(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        span: &Span,
    ) -> bool {
        self.select(|p| p.matches_span(resource, scope, span))
    }

    pub fn matches_log(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        log: &LogRecord,
    ) -> bool {
        self.select(|p| p.matches_log(resource, scope, log))
    }

    pub fn matches_metric(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        metric: &Metric,
    ) -> bool {
        self.select(|p| p.matches_metric(resource, scope, metric))
    }
}

/// The filter processor's legacy metrics form compiled: resources are checked per resource
/// (`resource_attributes`) and metrics per name (`metric_names`), each with include before
/// exclude; an item goes when either check says so, as upstream evaluates it.
#[derive(Debug, Clone, Default)]
pub struct MetricFilter {
    include_resources: Option<AttributesMatcher>,
    exclude_resources: Option<AttributesMatcher>,
    include_names: Option<StringFilter>,
    exclude_names: Option<StringFilter>,
}

impl MetricFilter {
    pub fn new(
        include: Option<&MetricMatchProperties>,
        exclude: Option<&MetricMatchProperties>,
    ) -> Result<Self, String> {
        let resources = |p: Option<&MetricMatchProperties>| -> Result<_, String> {
            let Some(p) = p else { return Ok(None) };
            let matcher = AttributesMatcher::new(&p.resource_attributes, p.match_type)?;
            Ok((!matcher.is_empty()).then_some(matcher))
        };
        let names = |p: Option<&MetricMatchProperties>| -> Result<_, String> {
            let Some(p) = p else { return Ok(None) };
            if p.match_type == Some(MatchType::Expr) {
                if p.expressions.is_empty() {
                    return Ok(None);
                }
                return Err(
                    "match_type \"expr\" (expressions) is not supported yet; use metric_names with match_type strict or regexp, or OTTL conditions"
                        .to_string(),
                );
            }
            if p.metric_names.is_empty() {
                return Ok(None);
            }
            StringFilter::new(&p.metric_names, p.match_type).map(Some)
        };
        Ok(MetricFilter {
            include_resources: resources(include)?,
            exclude_resources: resources(exclude)?,
            include_names: names(include)?,
            exclude_names: names(exclude)?,
        })
    }

    /// Nothing to check: every resource and metric is kept.
    pub fn is_empty(&self) -> bool {
        self.include_resources.is_none()
            && self.exclude_resources.is_none()
            && self.include_names.is_none()
            && self.exclude_names.is_none()
    }

    /// Whether every metric of this resource goes, by `resource_attributes`.
    pub fn skips_resource(&self, resource: Option<&Resource>) -> bool {
        let attributes = resource.map_or(&[][..], |r| r.attributes.as_slice());
        self.include_resources
            .as_ref()
            .is_some_and(|m| !m.matches(attributes))
            || self
                .exclude_resources
                .as_ref()
                .is_some_and(|m| m.matches(attributes))
    }

    /// Whether this metric goes, by `metric_names`.
    pub fn skips_metric(&self, metric: &Metric) -> bool {
        self.include_names
            .as_ref()
            .is_some_and(|f| !f.matches(&metric.name))
            || self
                .exclude_names
                .as_ref()
                .is_some_and(|f| f.matches(&metric.name))
    }
}
