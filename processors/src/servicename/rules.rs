//! The compiled configuration, and the lookup that finds an item's connector name.

use std::ptr;

use regex::{CaptureLocations, Regex};

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};

use super::config::{check_original_to, template_pieces, ServiceNameConfig};

pub const SERVICE_NAME: &str = "service.name";

/// The capture group that holds the connector name.
const NAME_GROUP: &str = "name";

/// What the processor runs with: the sources with their patterns compiled, the template
/// split around its placeholders.
#[derive(Debug, Clone)]
pub struct Rules {
    sources: Vec<Source>,
    /// Literal text between the `{name}` placeholders (one more piece than placeholders).
    template: Vec<String>,
    original_to: Option<String>,
}

#[derive(Debug, Clone)]
struct Source {
    attribute: String,
    pattern: Option<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    /// The index of the group `name`; `None`: the whole match.
    group: Option<usize>,
}

impl Pattern {
    fn compile(text: &str, field: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err(format!(
                "{field}: must not be empty; leave it out to use the whole value"
            ));
        }
        let regex = Regex::new(text)
            .map_err(|err| format!("{field}: invalid regular expression: {err}"))?;
        let group = regex
            .capture_names()
            .position(|name| name == Some(NAME_GROUP));
        // Other groups are fine next to `name`; without it, a group would be ignored in
        // favour of the whole match, which is never what its author meant.
        if group.is_none() && regex.captures_len() > 1 {
            return Err(format!(
                "{field}: has capture groups but none named \"{NAME_GROUP}\"; write (?P<{NAME_GROUP}>...) around the connector name, or make the groups non-capturing (?:...) to use the whole match"
            ));
        }
        Ok(Pattern { regex, group })
    }

    /// The name in `value`, borrowed from it; `None` when it does not match or the name is
    /// empty.
    fn extract<'a>(
        &self,
        value: &'a str,
        locations: Option<&mut CaptureLocations>,
    ) -> Option<&'a str> {
        let name = match (self.group, locations) {
            (None, _) => self.regex.find(value)?.as_str(),
            (Some(group), Some(locations)) => {
                self.regex.captures_read(locations, value)?;
                let (start, end) = locations.get(group)?;
                value.get(start..end)?
            }
            (Some(group), None) => self.regex.captures(value)?.get(group)?.as_str(),
        };
        (!name.is_empty()).then_some(name)
    }
}

impl Rules {
    /// Checks a config and compiles it; errors name the field, e.g. `sources[1].pattern`.
    pub fn compile(config: &ServiceNameConfig) -> Result<Rules, String> {
        if config.sources.is_empty() {
            return Err("sources: at least one source is required".into());
        }
        let mut sources = Vec::with_capacity(config.sources.len());
        for (i, source) in config.sources.iter().enumerate() {
            if source.attribute.is_empty() {
                return Err(format!("sources[{i}].attribute: must not be empty"));
            }
            let pattern = match &source.pattern {
                Some(text) => Some(Pattern::compile(text, &format!("sources[{i}].pattern"))?),
                None => None,
            };
            sources.push(Source {
                attribute: source.attribute.clone(),
                pattern,
            });
        }
        let template = template_pieces(&config.template)?;
        check_original_to(config.original_service_name_to.as_deref())?;
        Ok(Rules {
            sources,
            template,
            original_to: config.original_service_name_to.clone(),
        })
    }

    /// The service name for a connector.
    pub fn service_name(&self, name: &str) -> String {
        let literal: usize = self.template.iter().map(String::len).sum();
        let placeholders = self.template.len().saturating_sub(1);
        let mut out = String::with_capacity(literal + placeholders * name.len());
        for (i, piece) in self.template.iter().enumerate() {
            if i > 0 {
                out.push_str(name);
            }
            out.push_str(piece);
        }
        out
    }

    /// The resource attribute that keeps the previous service name, if any.
    pub fn original_to(&self) -> Option<&str> {
        self.original_to.as_deref()
    }

    pub(crate) fn resolver<'a>(&self) -> Resolver<'_, 'a> {
        Resolver::new(self)
    }
}

/// What one level (item, scope or resource) says for one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found<'a> {
    /// The attribute is not there: ask the next level.
    Absent,
    /// The attribute is there; it decides for this source, with a name or without one.
    Present(Option<&'a str>),
}

/// Finds connector names within one batch. Names are borrowed from the batch's attributes,
/// so resolving an item allocates nothing.
pub(crate) struct Resolver<'r, 'a> {
    rules: &'r Rules,
    /// Per source: what the current resource says, then the current scope.
    resource: Vec<Found<'a>>,
    scope: Vec<Found<'a>>,
    /// Per source: the last value a pattern ran on and its result. Items of one connector
    /// carry equal values (often one after another), so most runs are saved.
    memo: Vec<Option<(&'a str, Option<&'a str>)>>,
    /// Per source with a `name` group: reused capture slots.
    locations: Vec<Option<CaptureLocations>>,
}

impl<'r, 'a> Resolver<'r, 'a> {
    fn new(rules: &'r Rules) -> Self {
        let n = rules.sources.len();
        Resolver {
            rules,
            resource: vec![Found::Absent; n],
            scope: vec![Found::Absent; n],
            memo: vec![None; n],
            locations: rules
                .sources
                .iter()
                .map(|s| match &s.pattern {
                    Some(p) if p.group.is_some() => Some(p.regex.capture_locations()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Reads the resource's attributes, for the items under it.
    pub(crate) fn enter_resource(&mut self, attributes: &'a [KeyValue]) {
        for i in 0..self.rules.sources.len() {
            let found = self.lookup(i, attributes);
            if let Some(slot) = self.resource.get_mut(i) {
                *slot = found;
            }
        }
    }

    /// Reads the scope's attributes, for the items under it.
    pub(crate) fn enter_scope(&mut self, attributes: &'a [KeyValue]) {
        for i in 0..self.rules.sources.len() {
            let found = self.lookup(i, attributes);
            if let Some(slot) = self.scope.get_mut(i) {
                *slot = found;
            }
        }
    }

    /// The connector name of an item with these attributes, under the current scope and
    /// resource: the first source that yields one wins; within a source the nearest level
    /// that has the attribute decides.
    pub(crate) fn resolve(&mut self, item: &'a [KeyValue]) -> Option<&'a str> {
        for i in 0..self.rules.sources.len() {
            let found = match self.lookup(i, item) {
                Found::Present(name) => name,
                Found::Absent => match self.scope.get(i).copied() {
                    Some(Found::Present(name)) => name,
                    _ => match self.resource.get(i).copied() {
                        Some(Found::Present(name)) => name,
                        _ => None,
                    },
                },
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn lookup(&mut self, source: usize, attributes: &'a [KeyValue]) -> Found<'a> {
        let rules = self.rules;
        let Some(spec) = rules.sources.get(source) else {
            return Found::Absent;
        };
        match attributes.iter().find(|kv| kv.key == spec.attribute) {
            None => Found::Absent,
            Some(kv) => Found::Present(self.extract(source, spec, kv.value.as_ref())),
        }
    }

    fn extract(
        &mut self,
        source: usize,
        spec: &Source,
        value: Option<&'a AnyValue>,
    ) -> Option<&'a str> {
        // Only strings name a connector; other types would need formatting, hence an
        // allocation per item, and no known platform puts names there.
        let Some(any_value::Value::StringValue(text)) = value.and_then(|v| v.value.as_ref()) else {
            return None;
        };
        let text = text.as_str();
        if text.is_empty() {
            return None;
        }
        let Some(pattern) = &spec.pattern else {
            return Some(text);
        };
        if let Some(Some((input, output))) = self.memo.get(source) {
            if ptr::eq(*input, text) || *input == text {
                return *output;
            }
        }
        let locations = self.locations.get_mut(source).and_then(Option::as_mut);
        let name = pattern.extract(text, locations);
        if let Some(slot) = self.memo.get_mut(source) {
            *slot = Some((text, name));
        }
        name
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::servicename::config::SourceConfig;

    fn rules(sources: &[(&str, Option<&str>)], template: &str) -> Rules {
        Rules::compile(&ServiceNameConfig {
            sources: sources
                .iter()
                .map(|(attribute, pattern)| SourceConfig {
                    attribute: attribute.to_string(),
                    pattern: pattern.map(str::to_string),
                })
                .collect(),
            template: template.into(),
            original_service_name_to: None,
        })
        .unwrap()
    }

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(value.into()))
    }

    #[test]
    fn template_fills_every_placeholder() {
        assert_eq!(rules(&[("a", None)], "{name}").service_name("x"), "x");
        assert_eq!(
            rules(&[("a", None)], "connect-{name}").service_name("orders"),
            "connect-orders"
        );
        assert_eq!(
            rules(&[("a", None)], "{name}/{name}.svc").service_name("o"),
            "o/o.svc"
        );
    }

    /// The name one item resolves to under a scope and a resource.
    fn resolve(
        r: &Rules,
        resource: &[KeyValue],
        scope: &[KeyValue],
        item: &[KeyValue],
    ) -> Option<String> {
        let mut res = r.resolver();
        res.enter_resource(resource);
        res.enter_scope(scope);
        res.resolve(item).map(str::to_string)
    }

    fn name(n: &str) -> Option<String> {
        Some(n.to_string())
    }

    #[test]
    fn item_then_scope_then_resource() {
        let r = rules(&[("c", None)], "{name}");
        let resource = [s("c", "from-resource")];
        let scope = [s("c", "from-scope")];
        let item = [s("c", "from-item")];
        assert_eq!(resolve(&r, &resource, &[], &item), name("from-item"));
        assert_eq!(resolve(&r, &resource, &[], &[]), name("from-resource"));
        assert_eq!(resolve(&r, &resource, &scope, &item), name("from-item"));
        assert_eq!(resolve(&r, &resource, &scope, &[]), name("from-scope"));
        assert_eq!(resolve(&r, &[], &scope, &[]), name("from-scope"));
        assert_eq!(resolve(&r, &[], &[], &[s("other", "x")]), None);
    }

    #[test]
    fn the_nearest_level_with_the_attribute_decides_its_source() {
        // The item's value does not match, so this source yields nothing even though the
        // resource's would; the next source is tried.
        let r = rules(&[("c", Some("^ok-.+$")), ("d", None)], "{name}");
        let resource = [s("c", "ok-resource")];
        assert_eq!(resolve(&r, &resource, &[], &[s("c", "bad")]), None);
        assert_eq!(
            resolve(&r, &resource, &[], &[s("c", "bad"), s("d", "dee")]),
            name("dee")
        );
        assert_eq!(resolve(&r, &resource, &[], &[]), name("ok-resource"));
    }

    #[test]
    fn first_source_that_yields_wins() {
        let r = rules(&[("a", None), ("b", None)], "{name}");
        assert_eq!(
            resolve(&r, &[], &[], &[s("b", "bee"), s("a", "ay")]),
            name("ay")
        );
        assert_eq!(resolve(&r, &[], &[], &[s("b", "bee")]), name("bee"));
        // The first source on the resource beats the second on the item.
        assert_eq!(
            resolve(&r, &[s("a", "ay-resource")], &[], &[s("b", "bee")]),
            name("ay-resource")
        );
    }

    #[test]
    fn only_non_empty_strings_yield_a_name() {
        let r = rules(&[("a", None), ("b", None)], "{name}");
        for value in [
            any_value::Value::IntValue(7),
            any_value::Value::BoolValue(true),
            any_value::Value::DoubleValue(1.5),
            any_value::Value::StringValue(String::new()),
        ] {
            let item = [kv("a", value), s("b", "fallback")];
            assert_eq!(resolve(&r, &[], &[], &item), name("fallback"));
        }
        let no_value = KeyValue {
            key: "a".into(),
            value: None,
            ..Default::default()
        };
        assert_eq!(resolve(&r, &[], &[], &[no_value]), None);
    }

    #[test]
    fn patterns_take_the_name_group_or_the_whole_match() {
        let r = rules(
            &[
                (
                    "id",
                    Some(r"^connector-(?:consumer|producer)-(?P<name>.+)-\d+$"),
                ),
                ("job", Some(r"[a-z]+-sink")),
            ],
            "{name}",
        );
        let consumer = [s("id", "connector-consumer-orders-sink-0")];
        let producer = [s("id", "connector-producer-payments-source-3")];
        let again = [s("id", "connector-producer-payments-source-3")];
        let whole = [s("id", "producer-1"), s("job", "job: orders-sink (v2)")];
        let neither = [s("id", "connector-consumer-x"), s("job", "NONE")];
        let mut res = r.resolver();
        res.enter_resource(&[]);
        res.enter_scope(&[]);
        assert_eq!(res.resolve(&consumer), Some("orders-sink"));
        assert_eq!(res.resolve(&producer), Some("payments-source"));
        // Remembered: an equal value from another attribute.
        assert_eq!(res.resolve(&again), Some("payments-source"));
        assert_eq!(res.resolve(&whole), Some("orders-sink"), "unanchored match");
        assert_eq!(res.resolve(&neither), None);
        assert_eq!(res.resolve(&consumer), Some("orders-sink"));
    }

    #[test]
    fn an_empty_or_missing_name_group_yields_nothing() {
        let r = rules(&[("id", Some(r"^c-(?P<name>[a-z]*)(?:-\d+)?$"))], "{name}");
        assert_eq!(resolve(&r, &[], &[], &[s("id", "c-")]), None);
        assert_eq!(resolve(&r, &[], &[], &[s("id", "c-ab-1")]), name("ab"));
        let r = rules(&[("id", Some(r"^x(?P<name>y)?"))], "{name}");
        assert_eq!(
            resolve(&r, &[], &[], &[s("id", "xz")]),
            None,
            "the group did not take part"
        );
        assert_eq!(resolve(&r, &[], &[], &[s("id", "xy")]), name("y"));
    }
}
