//! The `attributes` processor's configuration, with upstream's keys and messages.

use serde::Deserialize;

use ferrotel_pipeline::attraction::{ActionConfig, Actions};
use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::factory::Validate;
use ferrotel_pipeline::filterset::MatchProperties;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributesConfig {
    /// The actions, applied in order to each selected item; at least one.
    pub actions: Vec<ActionConfig>,
    /// Only items matching these properties are edited.
    pub include: Option<MatchProperties>,
    /// Items matching these properties are left alone (checked after `include`).
    pub exclude: Option<MatchProperties>,
}

impl Validate for AttributesConfig {
    fn validate(&self) -> Result<(), String> {
        if self.actions.is_empty() {
            return Err("missing required field \"actions\"".into());
        }
        // Upstream finds these when the processor is created; finding them while the
        // configuration is read lets `validate` report them too. Which include/exclude
        // properties are allowed depends on the pipeline's signal, so those are checked
        // when the processor is created for it.
        Actions::new(&self.actions).map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl ComponentConfig for AttributesConfig {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;
    use ferrotel_pipeline::filterset::MatchType;

    use super::*;

    fn parse(yaml: &str) -> Result<AttributesConfig, String> {
        let value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let config: AttributesConfig = decode(&value).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn reads_actions_include_and_exclude() {
        let c = parse(
            "actions: [{key: a, value: 1, action: insert}]\ninclude: {match_type: regexp, services: [x]}\nexclude: {match_type: strict, span_names: [y]}",
        )
        .unwrap();
        assert_eq!(c.actions.len(), 1);
        assert_eq!(c.actions[0].key, "a");
        let include = c.include.unwrap();
        assert_eq!(include.match_type, Some(MatchType::Regexp));
        assert_eq!(include.services, vec!["x".to_string()]);
        assert_eq!(c.exclude.unwrap().span_names, vec!["y".to_string()]);
    }

    #[test]
    fn actions_are_required_and_checked() {
        assert_eq!(parse("").unwrap_err(), "missing required field \"actions\"");
        assert_eq!(
            parse("actions: [{key: a, action: nope}]").unwrap_err(),
            "error with key \"a\" (0-th action): error creating AttrProc due to unsupported action \"nope\""
        );
    }
}
