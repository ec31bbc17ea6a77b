//! String sets compared strictly or as regular expressions, and the regular expression rules
//! of the Collector's Go `regexp` package.

use std::collections::HashSet;

use regex::Regex;

use super::config::MatchType;

/// Compiles a regular expression written for the Collector (Go's RE2 syntax). Rust's syntax is
/// the same for what RE2 accepts; capture group names are held to RE2's rule (ASCII letters,
/// digits and `_`), which Rust's is looser about. The message reads like Go's.
pub fn compile_regexp(pattern: &str) -> Result<Regex, String> {
    let re = Regex::new(pattern).map_err(|err| {
        // Rust's message repeats the pattern over several lines; keep the reason only.
        let text = err.to_string();
        let reason = text
            .lines()
            .rev()
            .find_map(|line| line.trim().strip_prefix("error: "))
            .unwrap_or(text.trim())
            .to_string();
        format!("error parsing regexp: {reason}: `{pattern}`")
    })?;
    for name in re.capture_names().flatten() {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "error parsing regexp: invalid named capture: `(?P<{name}>`"
            ));
        }
    }
    Ok(re)
}

/// Upstream's message when strings must be compared and `match_type` is missing or `expr`.
pub fn unrecognized_match_type(match_type: Option<MatchType>) -> String {
    format!(
        "unrecognized match_type: '{}', valid types are: [regexp strict]",
        match_type.map_or("", MatchType::as_str)
    )
}

/// A list of strings a value is compared with: it matches when it equals one of them
/// (`strict`) or when one of them, as a regular expression, matches somewhere in it
/// (`regexp`).
#[derive(Debug, Clone)]
pub enum StringFilter {
    Strict(HashSet<String>),
    Regexp(Vec<Regex>),
}

impl StringFilter {
    /// Compiles `items` for `match_type`; every regular expression is compiled here, once.
    pub fn new(items: &[String], match_type: Option<MatchType>) -> Result<Self, String> {
        match match_type {
            Some(MatchType::Strict) => Ok(StringFilter::Strict(items.iter().cloned().collect())),
            Some(MatchType::Regexp) => {
                let mut seen = HashSet::new();
                let mut regexes = Vec::with_capacity(items.len());
                for item in items {
                    if seen.insert(item.as_str()) {
                        regexes.push(compile_regexp(item)?);
                    }
                }
                Ok(StringFilter::Regexp(regexes))
            }
            other => Err(unrecognized_match_type(other)),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            StringFilter::Strict(items) => items.contains(text),
            StringFilter::Regexp(regexes) => regexes.iter().any(|re| re.is_match(text)),
        }
    }
}
