//! The `servicename` processor's configuration and its validation.

use serde::Deserialize;

use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::factory::Validate;

use super::rules::{Rules, SERVICE_NAME};

/// The placeholder a template puts the connector name in.
pub const NAME_PLACEHOLDER: &str = "{name}";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceNameConfig {
    /// Where the connector name comes from, tried in order; the first that yields one wins.
    pub sources: Vec<SourceConfig>,
    /// The new `service.name`: `{name}` stands for the connector name.
    pub template: String,
    /// A resource attribute that keeps the previous `service.name`.
    pub original_service_name_to: Option<String>,
}

impl Default for ServiceNameConfig {
    fn default() -> Self {
        ServiceNameConfig {
            sources: Vec::new(),
            template: NAME_PLACEHOLDER.to_string(),
            original_service_name_to: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Looked up on the item, then its scope, then its resource.
    pub attribute: String,
    /// Optional regular expression: the group `name`, or else the whole match, is the name.
    pub pattern: Option<String>,
}

impl Validate for ServiceNameConfig {
    fn validate(&self) -> Result<(), String> {
        Rules::compile(self).map(|_| ())
    }
}

impl ComponentConfig for ServiceNameConfig {}

/// Checks the template and splits it around its `{name}` placeholders.
pub(crate) fn template_pieces(template: &str) -> Result<Vec<String>, String> {
    if !template.contains(NAME_PLACEHOLDER) {
        return Err(format!(
            "template: must contain {NAME_PLACEHOLDER}, where the connector name goes (got \"{template}\")"
        ));
    }
    let pieces: Vec<String> = template
        .split(NAME_PLACEHOLDER)
        .map(str::to_string)
        .collect();
    // Braces are reserved for placeholders, so a misspelt one (`{Name}`) is caught here
    // instead of ending up in every service name.
    if pieces.iter().any(|p| p.contains(['{', '}'])) {
        return Err(format!(
            "template: {NAME_PLACEHOLDER} is the only placeholder, and braces may appear only in it (got \"{template}\")"
        ));
    }
    Ok(pieces)
}

/// Checks where the previous service name is kept.
pub(crate) fn check_original_to(key: Option<&str>) -> Result<(), String> {
    match key {
        Some("") => {
            Err("original_service_name_to: must not be empty; leave it out to keep nothing".into())
        }
        Some(SERVICE_NAME) => Err(format!(
            "original_service_name_to: must not be {SERVICE_NAME}, which receives the new name"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    use super::*;

    fn parse(yaml: &str) -> Result<ServiceNameConfig, String> {
        let value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let config: ServiceNameConfig = decode(&value).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn reads_the_documented_shape() {
        let c = parse(
            r#"
sources:
  - attribute: connector.name
  - attribute: messaging.client_id
    pattern: '^connector-(?:consumer|producer)-(?P<name>.+)-\d+$'
template: "connect-{name}"
original_service_name_to: service.namespace
"#,
        )
        .unwrap();
        assert_eq!(
            c,
            ServiceNameConfig {
                sources: vec![
                    SourceConfig {
                        attribute: "connector.name".into(),
                        pattern: None,
                    },
                    SourceConfig {
                        attribute: "messaging.client_id".into(),
                        pattern: Some(r"^connector-(?:consumer|producer)-(?P<name>.+)-\d+$".into()),
                    },
                ],
                template: "connect-{name}".into(),
                original_service_name_to: Some("service.namespace".into()),
            }
        );
    }

    #[test]
    fn template_defaults_to_the_name_alone() {
        let c = parse("sources: [{attribute: job.name}]").unwrap();
        assert_eq!(c.template, "{name}");
        assert_eq!(c.original_service_name_to, None);
    }

    #[test]
    fn validation_errors_name_the_field() {
        let cases = [
            ("{}", "sources: at least one source is required"),
            ("sources: []", "sources: at least one source is required"),
            (
                "sources: [{pattern: 'x'}]",
                "sources[0].attribute: must not be empty",
            ),
            (
                "sources: [{attribute: a}, {attribute: ''}]",
                "sources[1].attribute: must not be empty",
            ),
            (
                "sources: [{attribute: a}, {attribute: b, pattern: ''}]",
                "sources[1].pattern: must not be empty; leave it out to use the whole value",
            ),
            (
                "sources: [{attribute: a, pattern: '^x-(?P<job>.+)$'}]",
                "sources[0].pattern: has capture groups but none named \"name\"; write (?P<name>...) around the connector name, or make the groups non-capturing (?:...) to use the whole match",
            ),
            (
                "sources: [{attribute: a, pattern: '^x-(.+)$'}]",
                "sources[0].pattern: has capture groups but none named \"name\"; write (?P<name>...) around the connector name, or make the groups non-capturing (?:...) to use the whole match",
            ),
            (
                "sources: [{attribute: a}]\ntemplate: connect",
                "template: must contain {name}, where the connector name goes (got \"connect\")",
            ),
            (
                "sources: [{attribute: a}]\ntemplate: ''",
                "template: must contain {name}, where the connector name goes (got \"\")",
            ),
            (
                "sources: [{attribute: a}]\ntemplate: '{name}-{Name}'",
                "template: {name} is the only placeholder, and braces may appear only in it (got \"{name}-{Name}\")",
            ),
            (
                "sources: [{attribute: a}]\noriginal_service_name_to: service.name",
                "original_service_name_to: must not be service.name, which receives the new name",
            ),
            (
                "sources: [{attribute: a}]\noriginal_service_name_to: ''",
                "original_service_name_to: must not be empty; leave it out to keep nothing",
            ),
        ];
        for (yaml, message) in cases {
            assert_eq!(parse(yaml).unwrap_err(), message, "{yaml}");
        }
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_reported_with_its_index() {
        let err =
            parse("sources: [{attribute: a}, {attribute: b, pattern: '(unclosed'}]").unwrap_err();
        assert!(
            err.starts_with("sources[1].pattern: invalid regular expression: "),
            "{err}"
        );
        assert!(err.contains("unclosed group"), "{err}");
        // Look-around is not RE2 syntax.
        let err = parse("sources: [{attribute: a, pattern: '(?=x)'}]").unwrap_err();
        assert!(
            err.starts_with("sources[0].pattern: invalid regular expression: "),
            "{err}"
        );
    }

    #[test]
    fn accepts_both_named_group_syntaxes_and_group_free_patterns() {
        for pattern in [
            r"^c-(?P<name>[a-z]+)$",
            r"^c-(?<name>[a-z]+)$",
            r"^(?:a|b)-(?P<name>\w+)-(\d+)$",
            r"[a-z]+-sink",
        ] {
            let yaml = format!("sources: [{{attribute: a, pattern: '{pattern}'}}]");
            assert!(parse(&yaml).is_ok(), "{pattern}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse("sources: [{attribute: a, regex: x}]").unwrap_err();
        assert!(err.contains("unknown field \"regex\""), "{err}");
        let err = parse("sources: [{attribute: a}]\nkeep_original: true").unwrap_err();
        assert!(err.contains("unknown field \"keep_original\""), "{err}");
    }
}
