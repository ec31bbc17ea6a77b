//! Component IDs (`type[/name]`) and pipeline IDs (`signal[/name]`), validated as upstream does.

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

use crate::pdata::Signal;

/// `type[/name]`, e.g. `otlp` or `otlp/2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    kind: String,
    name: Option<String>,
}

/// Upstream's `^[a-zA-Z][0-9a-zA-Z_]{0,62}$`.
fn valid_type(kind: &str) -> bool {
    let bytes = kind.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic())
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Upstream's `^[^\pZ\pC\pS]+$`: no separators, control or other invisible characters, or
/// symbols. ASCII names, nearly all of them, are checked by hand; the Unicode tables (a
/// regex) are loaded only for a name that needs them.
fn valid_name(name: &str) -> bool {
    if name.is_ascii() {
        // ASCII's Z (space), C (controls, DEL) and S (`$ + < = > ^ ` | ~`).
        return !name.is_empty()
            && name
                .bytes()
                .all(|b| b > b' ' && b != 0x7f && !b"$+<=>^`|~".contains(&b));
    }
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[^\pZ\pC\pS]+$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(name))
}

impl ComponentId {
    /// Parses and validates an ID, with upstream's error texts.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("id must not be empty".to_string());
        }
        let (kind, name) = match text.split_once('/') {
            Some((kind, name)) => (kind.trim(), Some(name.trim())),
            None => (text, None),
        };
        if !valid_type(kind) {
            return Err(format!("invalid character(s) in type \"{kind}\""));
        }
        if let Some(name) = name {
            if name.is_empty() {
                return Err(format!(
                    "in \"{text}\" id: the part after / should not be empty"
                ));
            }
            if name.chars().count() > 1024 {
                return Err(format!("name \"{name}\" is longer than 1024 characters"));
            }
            if !valid_name(name) {
                return Err(format!("invalid character(s) in name \"{name}\""));
            }
        }
        Ok(ComponentId {
            kind: kind.to_string(),
            name: name.map(str::to_string),
        })
    }

    pub fn new(kind: &str, name: Option<&str>) -> Self {
        ComponentId {
            kind: kind.to_string(),
            name: name.map(str::to_string),
        }
    }

    /// The component type, the part before `/`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{}", self.kind, name),
            None => f.write_str(&self.kind),
        }
    }
}

/// `signal[/name]`, e.g. `traces` or `metrics/internal`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    pub signal: Signal,
    pub name: Option<String>,
}

impl PipelineId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let id = ComponentId::parse(text)?;
        let signal = match id.kind() {
            "traces" => Signal::Traces,
            "metrics" => Signal::Metrics,
            "logs" => Signal::Logs,
            "profiles" => return Err(
                "the profiles signal is not supported yet (valid signals: traces, metrics, logs)"
                    .to_string(),
            ),
            other => {
                return Err(format!(
                    "unknown signal \"{other}\" (valid values: traces, metrics, logs)"
                ))
            }
        };
        Ok(PipelineId {
            signal,
            name: id.name,
        })
    }
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{}", self.signal, name),
            None => write!(f, "{}", self.signal),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hand_checks_agree_with_upstreams_regexes() {
        let name_re = Regex::new(r"^[^\pZ\pC\pS]+$").unwrap();
        let type_re = Regex::new(r"^[a-zA-Z][0-9a-zA-Z_]{0,62}$").unwrap();
        for c in 0u8..=127 {
            let one = (c as char).to_string();
            assert_eq!(valid_name(&one), name_re.is_match(&one), "name {c:#x}");
            let in_name = format!("a{}b", c as char);
            assert_eq!(valid_name(&in_name), name_re.is_match(&in_name), "{c:#x}");
            assert_eq!(valid_type(&one), type_re.is_match(&one), "type {c:#x}");
            let in_type = format!("a{}", c as char);
            assert_eq!(valid_type(&in_type), type_re.is_match(&in_type), "{c:#x}");
        }
        for t in ["", "a", "a_1", "1a", &"a".repeat(63), &"a".repeat(64)] {
            assert_eq!(valid_type(t), type_re.is_match(t), "type {t:?}");
        }
        for n in ["", "prod", "é", "a€", "a b", "a\u{200b}", "日本"] {
            assert_eq!(valid_name(n), name_re.is_match(n), "name {n:?}");
        }
    }

    #[test]
    fn parses_valid_ids() {
        let id = ComponentId::parse("otlp/2").unwrap();
        assert_eq!(id.kind(), "otlp");
        assert_eq!(id.name(), Some("2"));
        assert_eq!(id.to_string(), "otlp/2");
        assert_eq!(ComponentId::parse("batch").unwrap().name(), None);
        assert!(ComponentId::parse("otlp/my-backend.eu").is_ok());
    }

    #[test]
    fn rejects_invalid_ids_with_upstream_messages() {
        assert_eq!(ComponentId::parse("").unwrap_err(), "id must not be empty");
        assert_eq!(
            ComponentId::parse("1otlp").unwrap_err(),
            "invalid character(s) in type \"1otlp\""
        );
        assert_eq!(
            ComponentId::parse("otlp/").unwrap_err(),
            "in \"otlp/\" id: the part after / should not be empty"
        );
        assert_eq!(
            ComponentId::parse("otlp/a b").unwrap_err(),
            "invalid character(s) in name \"a b\""
        );
        let long = format!("otlp/{}", "a".repeat(1025));
        assert!(ComponentId::parse(&long)
            .unwrap_err()
            .ends_with("is longer than 1024 characters"));
    }

    #[test]
    fn pipeline_ids() {
        let p = PipelineId::parse("metrics/internal").unwrap();
        assert_eq!(p.signal, Signal::Metrics);
        assert_eq!(p.to_string(), "metrics/internal");
        assert!(PipelineId::parse("spans")
            .unwrap_err()
            .contains("valid values: traces, metrics, logs"));
    }
}
