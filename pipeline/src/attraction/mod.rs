//! Attribute actions, as the Collector's `attributes` and `resource` processors run them
//! (upstream's `attraction` package): a list of `insert`, `update`, `upsert`, `delete`,
//! `hash`, `extract` and `convert` steps applied in order to one attribute list.
//!
//! [`ActionConfig`] is one entry of the YAML list. [`Actions::new`] checks the list with
//! upstream's rules and messages and compiles it (regular expressions once); then
//! [`Actions::apply`] edits any number of attribute lists, with an [`ActionContext`] that
//! gives the request's client for `from_context`.

mod apply;

#[cfg(test)]
mod tests;

use regex::Regex;
use serde::Deserialize;

use crate::config::types::AnyValueConfig;
use crate::filterset::compile_regexp;
use crate::pdata::common::AnyValue;

pub use apply::{context_value, hash_value, ActionContext};

/// One action of the list, with upstream's keys.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionConfig {
    /// The attribute acted on.
    pub key: String,
    /// The value to set (`insert`, `update`, `upsert`), typed as YAML types it.
    pub value: Option<AnyValueConfig>,
    /// The value to set when `value`, `from_attribute` or `from_context` gives none.
    pub default_value: Option<AnyValueConfig>,
    /// A regular expression: attribute keys to act on (`delete`, `hash`), or the named
    /// groups to extract from the value (`extract`).
    pub pattern: String,
    /// Another attribute whose value is set.
    pub from_attribute: String,
    /// A request context value to set: `metadata.<key>` (client metadata, values joined
    /// with `;`), `auth.<key>`, `client.address`; another key reads client metadata.
    pub from_context: String,
    /// `int`, `double` or `string` (`convert`).
    pub converted_type: String,
    /// The action, in any letter case.
    pub action: String,
}

/// A list of actions that cannot run, with upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error(
        "error creating AttrProc due to missing required field \"key\" at the {index}-th action"
    )]
    MissingKey { index: usize },
    #[error("error creating AttrProc due to missing required field (at least one of \"key\" and \"pattern\" have to be used) at the {index}-th action")]
    MissingKeyAndPattern { index: usize },
    #[error("error with key {key:?} ({index}-th action): {problem}")]
    Invalid {
        index: usize,
        key: String,
        problem: Problem,
    },
}

/// What is wrong with one action that has a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("error creating AttrProc. Either field \"value\", \"from_attribute\", \"from_context\", or \"default_value\" must be specified")]
    MissingValueSource,
    #[error("error creating AttrProc due to multiple value sources being set")]
    MultipleValueSources,
    #[error("error creating AttrProc. Action \"{0}\" does not use the \"pattern\" field. This must not be specified")]
    PatternNotUsed(String),
    #[error("error creating AttrProc. Action \"{0}\" does not use the \"converted_type\" field. This must not be specified")]
    ConvertedTypeNotUsed(String),
    #[error("error creating AttrProc. Action \"{0}\" does not use \"value\" or \"from_attribute\" field. These must not be specified")]
    ValueNotUsed(String),
    #[error("error creating AttrProc. Action \"{0}\" does not use a value source field. These must not be specified")]
    ValueSourceNotUsed(String),
    #[error("error creating AttrProc. Action \"{0}\" does not use value sources or \"pattern\" field. These must not be specified")]
    ValueSourceOrPatternNotUsed(String),
    #[error(
        "error creating AttrProc due to missing required field \"pattern\" for action \"{0}\""
    )]
    MissingPattern(String),
    #[error("error creating AttrProc. Field \"pattern\" has invalid pattern: \"{0}\"")]
    InvalidPattern(String),
    #[error("error creating AttrProc. Field \"pattern\" contains no named matcher groups")]
    NoNamedGroups,
    #[error(
        "error creating AttrProc. Field \"pattern\" contains at least one unnamed matcher group"
    )]
    UnnamedGroup,
    #[error("error creating AttrProc due to missing required field \"converted_type\" for action \"{0}\"")]
    MissingConvertedType(String),
    #[error("error creating AttrProc due to invalid value \"{value}\" in field \"converted_type\" for action \"{action}\"")]
    InvalidConvertedType { value: String, action: String },
    #[error("error creating AttrProc due to unsupported action {0:?}")]
    UnsupportedAction(String),
}

/// Where `insert`, `update` and `upsert` take their value from, in this order of precedence.
#[derive(Debug, Clone)]
struct Source {
    value: Option<AnyValue>,
    from_context: String,
    from_attribute: String,
    default: Option<AnyValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Int,
    Double,
    String,
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        key: String,
        source: Source,
    },
    Update {
        key: String,
        source: Source,
    },
    Upsert {
        key: String,
        source: Source,
    },
    Delete {
        key: String,
        pattern: Option<Regex>,
    },
    Hash {
        key: String,
        pattern: Option<Regex>,
    },
    Extract {
        key: String,
        regex: Regex,
        /// The name of each capture group, in order.
        names: Vec<String>,
    },
    Convert {
        key: String,
        target: Target,
    },
}

/// A checked and compiled list of actions.
#[derive(Debug, Clone, Default)]
pub struct Actions {
    steps: Vec<Op>,
}

impl Actions {
    /// Checks every action in the order upstream does and compiles it; the first problem
    /// is reported, with the action's index.
    pub fn new(configs: &[ActionConfig]) -> Result<Actions, ActionError> {
        let steps = configs
            .iter()
            .enumerate()
            .map(|(index, config)| compile(index, config))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Actions { steps })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }
}

fn compile(index: usize, config: &ActionConfig) -> Result<Op, ActionError> {
    let action = config.action.to_lowercase();
    let key = config.key.clone();
    match action.as_str() {
        "delete" | "hash" => {
            if key.is_empty() && config.pattern.is_empty() {
                return Err(ActionError::MissingKeyAndPattern { index });
            }
        }
        _ => {
            if key.is_empty() {
                return Err(ActionError::MissingKey { index });
            }
        }
    }
    let fail = |problem: Problem| ActionError::Invalid {
        index,
        key: key.clone(),
        problem,
    };
    let sources = usize::from(config.value.is_some())
        + usize::from(!config.from_attribute.is_empty())
        + usize::from(!config.from_context.is_empty());
    let pattern = |config: &ActionConfig| {
        compile_regexp(&config.pattern).map_err(|_| Problem::InvalidPattern(config.pattern.clone()))
    };
    let op = match action.as_str() {
        "insert" | "update" | "upsert" => {
            if sources == 0 && config.default_value.is_none() {
                return Err(fail(Problem::MissingValueSource));
            }
            if sources > 1 {
                return Err(fail(Problem::MultipleValueSources));
            }
            if !config.pattern.is_empty() {
                return Err(fail(Problem::PatternNotUsed(action)));
            }
            if !config.converted_type.is_empty() {
                return Err(fail(Problem::ConvertedTypeNotUsed(action)));
            }
            let source = Source {
                value: config.value.as_ref().map(|v| v.0.clone()),
                from_context: config.from_context.clone(),
                from_attribute: config.from_attribute.clone(),
                default: config.default_value.as_ref().map(|v| v.0.clone()),
            };
            let key = key.clone();
            match action.as_str() {
                "insert" => Op::Insert { key, source },
                "update" => Op::Update { key, source },
                _ => Op::Upsert { key, source },
            }
        }
        "delete" | "hash" => {
            if config.value.is_some() || !config.from_attribute.is_empty() {
                return Err(fail(Problem::ValueNotUsed(action)));
            }
            let regex = if config.pattern.is_empty() {
                None
            } else {
                Some(pattern(config).map_err(&fail)?)
            };
            if !config.converted_type.is_empty() {
                return Err(fail(Problem::ConvertedTypeNotUsed(action)));
            }
            if action == "delete" {
                Op::Delete {
                    key: key.clone(),
                    pattern: regex,
                }
            } else {
                Op::Hash {
                    key: key.clone(),
                    pattern: regex,
                }
            }
        }
        "extract" => {
            if sources > 0 {
                return Err(fail(Problem::ValueSourceNotUsed(action)));
            }
            if config.pattern.is_empty() {
                return Err(fail(Problem::MissingPattern(action)));
            }
            if !config.converted_type.is_empty() {
                return Err(fail(Problem::ConvertedTypeNotUsed(action)));
            }
            let regex = pattern(config).map_err(&fail)?;
            let groups: Vec<Option<&str>> = regex.capture_names().skip(1).collect();
            if groups.is_empty() {
                return Err(fail(Problem::NoNamedGroups));
            }
            let mut names = Vec::with_capacity(groups.len());
            for group in groups {
                match group {
                    Some(name) => names.push(name.to_string()),
                    None => return Err(fail(Problem::UnnamedGroup)),
                }
            }
            Op::Extract {
                key: key.clone(),
                regex,
                names,
            }
        }
        "convert" => {
            if sources > 0 || !config.pattern.is_empty() {
                return Err(fail(Problem::ValueSourceOrPatternNotUsed(action)));
            }
            let target = match config.converted_type.as_str() {
                "int" => Target::Int,
                "double" => Target::Double,
                "string" => Target::String,
                "" => return Err(fail(Problem::MissingConvertedType(action))),
                other => {
                    return Err(fail(Problem::InvalidConvertedType {
                        value: other.to_string(),
                        action,
                    }))
                }
            };
            Op::Convert {
                key: key.clone(),
                target,
            }
        }
        _ => return Err(fail(Problem::UnsupportedAction(action))),
    };
    Ok(op)
}
