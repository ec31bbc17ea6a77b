//! The include/exclude configuration, with upstream's keys (`filterconfig.MatchConfig`,
//! `MatchProperties`, `MetricMatchProperties`, and the filter processor's logs form).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::config::types::AnyValueConfig;

/// How the strings of a property are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// Equal strings.
    Strict,
    /// RE2 regular expressions, matching anywhere in the string (add `^...$` to anchor).
    Regexp,
    /// Upstream's `expr` language, for the filter processor's metrics only.
    Expr,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Strict => "strict",
            MatchType::Regexp => "regexp",
            MatchType::Expr => "expr",
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Upstream's options for `match_type: regexp`: an LRU cache of match results. Accepted for
/// compatibility; matching needs no cache here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexpConfig {
    pub cacheenabled: bool,
    pub cachemaxnumentries: i64,
}

/// `include` and `exclude`: an item is selected when it matches `include` (or there is none)
/// and does not match `exclude`. Include is evaluated before exclude.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    pub include: Option<MatchProperties>,
    pub exclude: Option<MatchProperties>,
}

/// One `include` or `exclude` block. Every property given must match (AND); within one
/// property's list any entry may match (OR), except `attributes` and `resources`, whose
/// entries must all match. Which properties a signal may use is checked when a
/// [`super::Matcher`] is built for it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchProperties {
    /// Required as soon as a property compares strings.
    pub match_type: Option<MatchType>,
    pub regexp: Option<RegexpConfig>,
    /// The resource's `service.name` (spans).
    pub services: Vec<String>,
    pub span_names: Vec<String>,
    /// `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`, ... (spans).
    pub span_kinds: Vec<String>,
    /// The body as text (logs).
    pub log_bodies: Vec<String>,
    pub log_severity_texts: Vec<String>,
    pub log_severity_number: Option<LogSeverityNumber>,
    /// Metric names (metrics).
    pub metric_names: Vec<String>,
    /// Span or log record attributes; every entry must match.
    pub attributes: Vec<Attribute>,
    /// Resource attributes; every entry must match.
    pub resources: Vec<Attribute>,
    /// Instrumentation scopes; every entry must match.
    pub libraries: Vec<Library>,
}

/// An attribute to look for: the key must be present, and when `value` is given the value
/// must equal it (`strict`, same type too) or match it as a regular expression (`regexp`, a
/// string pattern against the value as text).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attribute {
    pub key: String,
    pub value: Option<AnyValueConfig>,
}

/// An instrumentation scope (formerly library). Without `version` any version matches; with
/// `version: ""` only an empty version does.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Library {
    pub name: String,
    pub version: Option<String>,
}

/// Matches log records whose severity number is at least `min`; records with no severity
/// number match only with `match_undefined`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSeverityNumber {
    pub min: SeverityNumber,
    pub match_undefined: bool,
}

/// A log severity number: written as the number (`9`) or, as the filter processor takes it,
/// as its short name (`INFO`, `warn2`, case-insensitive). Empty text means 0 (unspecified).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeverityNumber(pub i32);

const SEVERITY_NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The severity number of a short severity name (`INFO`, `ERROR3`) or of its number as text
/// (`"9"`), case-insensitive, as the filter processor's logs form reads `severity_number.min`.
pub fn parse_severity(text: &str) -> Result<i32, String> {
    let invalid = || format!("'{text}' is not a valid severity: not a valid severity");
    if text.is_empty() {
        return Ok(0);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // Only the numbers' own spelling: "9", not "09".
        return match text.parse::<i32>() {
            Ok(n) if (1..=24).contains(&n) && n.to_string() == text => Ok(n),
            _ => Err(invalid()),
        };
    }
    let upper = text.to_ascii_uppercase();
    for (i, name) in SEVERITY_NAMES.iter().enumerate() {
        let Some(rest) = upper.strip_prefix(name) else {
            continue;
        };
        let step = match rest {
            "" => 0,
            "2" => 1,
            "3" => 2,
            "4" => 3,
            _ => return Err(invalid()),
        };
        // Four numbers per name: TRACE is 1-4, DEBUG 5-8 and so on.
        return Ok(i as i32 * 4 + 1 + step);
    }
    Err(invalid())
}

impl<'de> Deserialize<'de> for SeverityNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SeverityNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a severity number (9) or name (INFO)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SeverityNumber, E> {
                i32::try_from(v)
                    .map(SeverityNumber)
                    .map_err(|_| E::custom(format!("severity number {v} is out of range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SeverityNumber, E> {
                i32::try_from(v)
                    .map(SeverityNumber)
                    .map_err(|_| E::custom(format!("severity number {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SeverityNumber, E> {
                parse_severity(v).map(SeverityNumber).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The filter processor's legacy `metrics.include` / `metrics.exclude` block
/// (`filterconfig.MetricMatchProperties`). Resource attributes are matched per resource and
/// names per metric: an item is dropped when either says so. See [`super::MetricFilter`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricMatchProperties {
    pub match_type: Option<MatchType>,
    pub regexp: Option<RegexpConfig>,
    pub metric_names: Vec<String>,
    /// `expr` expressions; not supported yet (an error when given).
    pub expressions: Vec<String>,
    pub resource_attributes: Vec<Attribute>,
}

/// The filter processor's legacy `logs.include` / `logs.exclude` block. Its fields map onto
/// [`MatchProperties`] ([`Self::to_match_properties`]), which is how upstream evaluates it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogMatchProperties {
    pub match_type: Option<MatchType>,
    pub resource_attributes: Vec<Attribute>,
    pub record_attributes: Vec<Attribute>,
    pub severity_texts: Vec<String>,
    pub severity_number: Option<LogSeverityNumber>,
    pub bodies: Vec<String>,
}

impl LogMatchProperties {
    /// No property given: upstream then ignores the block altogether.
    pub fn is_empty(&self) -> bool {
        self.resource_attributes.is_empty()
            && self.record_attributes.is_empty()
            && self.severity_texts.is_empty()
            && self.bodies.is_empty()
            && self.severity_number.is_none()
    }

    /// The same block in the general form, as upstream converts it.
    pub fn to_match_properties(&self) -> MatchProperties {
        MatchProperties {
            match_type: self.match_type,
            resources: self.resource_attributes.clone(),
            attributes: self.record_attributes.clone(),
            log_severity_texts: self.severity_texts.clone(),
            log_bodies: self.bodies.clone(),
            log_severity_number: self.severity_number,
            ..Default::default()
        }
    }
}
