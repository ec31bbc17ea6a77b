//! The `resource` processor's configuration, with upstream's keys and messages.

use serde::Deserialize;

use ferrotel_pipeline::attraction::{ActionConfig, Actions};
use ferrotel_pipeline::component::ComponentConfig;
use ferrotel_pipeline::factory::Validate;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// The actions, applied in order to every resource's attributes; at least one.
    pub attributes: Vec<ActionConfig>,
}

impl Validate for ResourceConfig {
    fn validate(&self) -> Result<(), String> {
        if self.attributes.is_empty() {
            return Err("missing required field \"attributes\"".into());
        }
        Actions::new(&self.attributes).map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl ComponentConfig for ResourceConfig {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    use super::*;

    fn parse(yaml: &str) -> Result<ResourceConfig, String> {
        let value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        let config: ResourceConfig = decode(&value).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn reads_the_action_list() {
        let c = parse("attributes: [{key: a, value: 1, action: upsert}, {key: b, action: delete}]")
            .unwrap();
        assert_eq!(c.attributes.len(), 2);
        assert_eq!(c.attributes[1].action, "delete");
    }

    #[test]
    fn attributes_are_required_and_checked() {
        assert_eq!(
            parse("").unwrap_err(),
            "missing required field \"attributes\""
        );
        assert_eq!(
            parse("attributes: [{key: a, action: extract}]").unwrap_err(),
            "error with key \"a\" (0-th action): error creating AttrProc due to missing required field \"pattern\" for action \"extract\""
        );
    }
}
