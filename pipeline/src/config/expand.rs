//! Expansion of `${...}` references in a merged configuration tree, with the Collector's rules:
//!
//! * `${env:NAME}`, `${NAME}` (the default scheme is `env`), `${env:NAME:-default}`,
//!   `${file:path}` and `${yaml:inline}`;
//! * a field that is exactly one reference keeps both the YAML reading of the referenced text and
//!   the text itself ([`Value::Expanded`]); a reference inside a longer string splices the text;
//! * expansion repeats until nothing changes, so references may nest (`${env:${NAME}}`) and the
//!   referenced text may itself hold references;
//! * an odd number of `$` right before `${` escapes the reference, and once a field is fully
//!   expanded every `$$` becomes `$`;
//! * map keys are never expanded or unescaped.

use std::fmt;

use super::value::{Map, Value};

/// How many expansion rounds one field may take before it is considered self-referencing.
pub const MAX_EXPANSION_ROUNDS: usize = 1000;

/// The longest string an expansion may produce; a reference that repeats itself more than once
/// would otherwise double in size every round.
pub const MAX_EXPANDED_LEN: usize = 16 * 1024 * 1024;

/// The pattern environment variable names must match, as quoted in errors.
pub const ENV_NAME_PATTERN: &str = "^[a-zA-Z_][a-zA-Z0-9_]*$";

/// The schemes a reference or a `--config` URI may use.
pub const SUPPORTED_SCHEMES: &str = "env, file, yaml";

/// Severity of a [`Note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteLevel {
    Warn,
    Info,
}

/// Something worth logging that happened while expanding, such as a reference to an unset
/// environment variable. `name` is the variable's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub level: NoteLevel,
    pub message: String,
    pub name: String,
}

pub const UNSET_ENV_MESSAGE: &str = "Configuration references unset environment variable";
pub const EMPTY_ENV_MESSAGE: &str = "Configuration references empty environment variable";

/// One step of the path to a value in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Renders a path the way the Collector names config locations: `exporters::otlp::headers[0]`.
pub fn format_path(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push_str("::");
                }
                out.push_str(key);
            }
            PathSegment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// What went wrong while expanding one reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    #[error("environment variable {name:?} has invalid name: must match regex {ENV_NAME_PATTERN}")]
    InvalidEnvName { name: String },
    #[error("invalid uri: {uri:?}")]
    InvalidUri { uri: String },
    #[error("the uri {uri:?} contains unsupported characters ('$')")]
    UnsupportedCharacters { uri: String },
    #[error("scheme {scheme:?} is not supported for uri {uri:?} (supported schemes: {SUPPORTED_SCHEMES})")]
    UnsupportedScheme { scheme: String, uri: String },
    #[error("scheme {scheme:?} is not supported for uri {uri:?}: fetching configuration over the network is not supported, use a local file (supported schemes: {SUPPORTED_SCHEMES})")]
    RemoteScheme { scheme: String, uri: String },
    #[error("unable to read the file {uri}: {message}")]
    ReadFile { uri: String, message: String },
    #[error("expanding {reference}: {detail}")]
    NotAString { reference: String, detail: String },
    #[error("too many recursive expansions")]
    TooManyRecursiveExpansions,
    #[error("expanded value is longer than {MAX_EXPANDED_LEN} bytes")]
    TooLong,
}

/// An expansion failure and the config path of the field where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub path: Vec<PathSegment>,
    pub kind: ExpandErrorKind,
}

impl ExpandError {
    /// The map keys leading to the failing field, up to the first list index.
    pub fn key_path(&self) -> Vec<&str> {
        self.path
            .iter()
            .map_while(|segment| match segment {
                PathSegment::Key(key) => Some(key.as_str()),
                PathSegment::Index(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", format_path(&self.path), self.kind)
        }
    }
}

impl std::error::Error for ExpandError {}

/// Expands every `${...}` reference under `root`, then turns `$$` into `$`, field by field as
/// the Collector does. Notes (unset or empty environment variables) are appended to `notes`,
/// without repeating an identical note.
pub fn expand(
    root: Value,
    env: &dyn Fn(&str) -> Option<String>,
    notes: &mut Vec<Note>,
) -> Result<Value, ExpandError> {
    let mut expander = Expander { env, notes };
    let mut path = Vec::new();
    expander.expand_tree(root, &mut path)
}

/// Turns every `$$` into `$` in string values (map keys are left alone). Applied once a field
/// has been fully expanded, including to text that came from environment variables.
pub fn unescape(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace("$$", "$")),
        Value::Expanded { typed, raw } => Value::Expanded {
            typed: Box::new(unescape(*typed)),
            raw: raw.replace("$$", "$"),
        },
        Value::Seq(items) => Value::Seq(items.into_iter().map(unescape).collect()),
        Value::Map(map) => Value::Map(map.into_iter().map(|(k, v)| (k, unescape(v))).collect()),
        other => other,
    }
}

/// Whether `name` is a valid environment variable name for `${env:...}`.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `scheme` is a syntactically valid URI scheme: a letter followed by at least one
/// letter, digit, `+`, `.` or `-` (one-letter schemes are taken for drive letters).
pub fn is_valid_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    let rest = chars.as_str();
    !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

/// Reads the value of `${env:...}` (the part after `env:`): the name, and the default after the
/// first `:-`, used only when the variable is unset. Returns the text to read as YAML, or `None`
/// when an empty default applies (which must stay the empty string, not null).
pub fn lookup_env(
    opaque: &str,
    env: &dyn Fn(&str) -> Option<String>,
    notes: &mut Vec<Note>,
) -> Result<Option<String>, ExpandErrorKind> {
    let (name, default) = match opaque.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (opaque, None),
    };
    if !is_valid_env_name(name) {
        return Err(ExpandErrorKind::InvalidEnvName {
            name: name.to_string(),
        });
    }
    match env(name) {
        Some(value) => {
            if value.is_empty() {
                push_note(notes, NoteLevel::Info, EMPTY_ENV_MESSAGE, name);
            }
            Ok(Some(value))
        }
        None => match default {
            Some("") => Ok(None),
            Some(default) => Ok(Some(default.to_string())),
            None => {
                push_note(notes, NoteLevel::Warn, UNSET_ENV_MESSAGE, name);
                Ok(Some(String::new()))
            }
        },
    }
}

fn push_note(notes: &mut Vec<Note>, level: NoteLevel, message: &str, name: &str) {
    let note = Note {
        level,
        message: message.to_string(),
        name: name.to_string(),
    };
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// What a reference resolved to: its YAML reading and, when it has one, its text.
struct Retrieved {
    value: Value,
    text: Option<String>,
}

impl Retrieved {
    /// Reads referenced text as the Collector does: invalid YAML and anything that reads as a
    /// string keep the exact text (quotes, tags and comments included); other readings keep the
    /// text alongside.
    fn from_text(text: String) -> Retrieved {
        let value = match Value::from_yaml_str(&text) {
            Err(_) => Value::String(text.clone()),
            Ok(Value::String(s)) => {
                go_plain_number(&text, &s).unwrap_or_else(|| Value::String(text.clone()))
            }
            Ok(other) => other,
        };
        Retrieved {
            value,
            text: Some(text),
        }
    }

    fn as_string(&self) -> Result<String, String> {
        if let Some(text) = &self.text {
            return Ok(text.clone());
        }
        match &self.value {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "retrieved value does not have unambiguous string representation: {}",
                other.to_json()
            )),
        }
    }
}

/// The Collector's YAML reader resolves some plain scalars to numbers where a YAML 1.2 reader
/// sees strings: leading-zero octals (`0123` is 83), digits with `_` separators (`1_000`) and
/// decimal floats with leading zeros. `text` is the whole document and `parsed` its string
/// reading; only an unquoted, untagged scalar qualifies.
fn go_plain_number(text: &str, parsed: &str) -> Option<Value> {
    let first = parsed.chars().next()?;
    if !(first.is_ascii_digit() || first == '+' || first == '-') {
        return None;
    }
    // A quoted, tagged or block scalar (or a document marker) starts with something else.
    if text.trim_start().chars().next()? != first {
        return None;
    }
    let plain: String = parsed.chars().filter(|&c| c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Some(Value::Int(i));
    }
    if let Some(u) = go_parse_uint(&plain) {
        // Beyond i64, kept as its digits like the tree reader does.
        return Some(Value::String(u.to_string()));
    }
    if is_yaml_style_float(&plain) {
        if let Ok(f) = plain.parse::<f64>() {
            return Some(Value::Float(f));
        }
    }
    None
}

/// Splits a base prefix the way Go's base-0 integer parsing does: `0x`, `0o`, `0b`, or a
/// leading `0` for octal.
fn split_radix(digits: &str) -> (u32, &str) {
    let lower = digits.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => (10, digits),
    }
}

fn go_parse_uint(s: &str) -> Option<u64> {
    let (radix, digits) = split_radix(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = go_parse_uint(unsigned)?;
    if negative {
        if magnitude == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()),
        Some((int, frac)) => {
            !int.is_empty()
                && int.chars().all(|c| c.is_ascii_digit())
                && frac.chars().all(|c| c.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    mantissa_ok && exponent_ok
}

/// Finds the first reference to expand in `s`: the innermost `${...}` ending at the earliest `}`,
/// skipping escaped ones (an odd run of `$` right before the `${`). Returns the byte positions of
/// its `$` and its `}`.
fn find_reference(s: &str) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut from = 0;
    loop {
        let close = from + s.get(from..)?.find('}')?;
        if let Some(rel) = s[from..close].rfind("${") {
            let open = from + rel;
            let dollars = bytes[..open]
                .iter()
                .rev()
                .take_while(|&&b| b == b'$')
                .count();
            if dollars % 2 == 0 {
                return Some((open, close));
            }
        }
        from = close + 1;
    }
}

/// Replaces every occurrence of `reference` in `s` that is not escaped.
fn replace_unescaped(s: &str, reference: &str, replacement: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (at, _) in s.match_indices(reference) {
        if at < last {
            continue;
        }
        let dollars = bytes[..at].iter().rev().take_while(|&&b| b == b'$').count();
        if dollars % 2 == 1 {
            continue;
        }
        out.push_str(&s[last..at]);
        out.push_str(replacement);
        last = at + reference.len();
    }
    out.push_str(&s[last..]);
    out
}

struct Expander<'a, 'n> {
    env: &'a dyn Fn(&str) -> Option<String>,
    notes: &'n mut Vec<Note>,
}

impl Expander<'_, '_> {
    /// Walks maps and expands each field below them on its own, as the Collector expands each
    /// leaf key of the merged configuration.
    fn expand_tree(
        &mut self,
        value: Value,
        path: &mut Vec<PathSegment>,
    ) -> Result<Value, ExpandError> {
        match value {
            Value::Map(map) => {
                let mut out = Map::with_capacity(map.len());
                for (key, child) in map {
                    path.push(PathSegment::Key(key.clone()));
                    let expanded = self.expand_tree(child, path);
                    path.pop();
                    out.insert(key, expanded?);
                }
                Ok(Value::Map(out))
            }
            leaf => {
                let expanded = self.expand_field(leaf, path)?;
                Ok(unescape(expanded))
            }
        }
    }

    fn expand_field(
        &mut self,
        mut value: Value,
        path: &mut Vec<PathSegment>,
    ) -> Result<Value, ExpandError> {
        for _ in 0..MAX_EXPANSION_ROUNDS {
            let (next, changed) = self.expand_value(value, path)?;
            if !changed {
                return Ok(next);
            }
            value = next;
        }
        Err(ExpandError {
            path: path.clone(),
            kind: ExpandErrorKind::TooManyRecursiveExpansions,
        })
    }

    /// One expansion round over `value`: every string expands its first expandable reference.
    fn expand_value(
        &mut self,
        value: Value,
        path: &mut Vec<PathSegment>,
    ) -> Result<(Value, bool), ExpandError> {
        match value {
            Value::Expanded { typed, raw } => {
                let (typed, changed) = self.expand_value(*typed, path)?;
                if matches!(typed, Value::Expanded { .. } | Value::String(_)) {
                    return Ok((typed, changed));
                }
                // The target type is not known yet, so the text is expanded too; when that
                // fails (say the text holds a reference in a YAML comment) only the typed
                // reading is kept.
                match self.expand_value(Value::String(raw), path) {
                    Ok((Value::String(raw), raw_changed)) => Ok((
                        Value::Expanded {
                            typed: Box::new(typed),
                            raw,
                        },
                        changed || raw_changed,
                    )),
                    _ => Ok((typed, changed)),
                }
            }
            Value::String(s) => {
                if !(s.contains("${") && s.contains('}')) {
                    return Ok((Value::String(s), false));
                }
                self.expand_string(s, path)
            }
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut changed = false;
                for (i, item) in items.into_iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    let result = self.expand_value(item, path);
                    path.pop();
                    let (item, item_changed) = result?;
                    changed |= item_changed;
                    out.push(item);
                }
                Ok((Value::Seq(out), changed))
            }
            Value::Map(map) => {
                let mut out = Map::with_capacity(map.len());
                let mut changed = false;
                for (key, child) in map {
                    path.push(PathSegment::Key(key.clone()));
                    let result = self.expand_value(child, path);
                    path.pop();
                    let (child, child_changed) = result?;
                    changed |= child_changed;
                    out.insert(key, child);
                }
                Ok((Value::Map(out), changed))
            }
            other => Ok((other, false)),
        }
    }

    fn expand_string(
        &mut self,
        s: String,
        path: &[PathSegment],
    ) -> Result<(Value, bool), ExpandError> {
        let Some((open, close)) = find_reference(&s) else {
            return Ok((Value::String(s), false));
        };
        let reference = &s[open..=close];
        let retrieved = self.retrieve(reference).map_err(|kind| ExpandError {
            path: path.to_vec(),
            kind,
        })?;
        if open == 0 && close + 1 == s.len() {
            // The whole field is one reference: keep the typed reading and the text.
            return Ok(match retrieved.as_string() {
                Ok(raw) => (
                    Value::Expanded {
                        typed: Box::new(retrieved.value),
                        raw,
                    },
                    true,
                ),
                Err(_) => (retrieved.value, true),
            });
        }
        let replacement = retrieved.as_string().map_err(|detail| ExpandError {
            path: path.to_vec(),
            kind: ExpandErrorKind::NotAString {
                reference: reference.to_string(),
                detail,
            },
        })?;
        let replaced = replace_unescaped(&s, reference, &replacement);
        if replaced.len() > MAX_EXPANDED_LEN {
            return Err(ExpandError {
                path: path.to_vec(),
                kind: ExpandErrorKind::TooLong,
            });
        }
        Ok((Value::String(replaced), true))
    }

    /// Resolves one `${...}` reference (braces included).
    fn retrieve(&mut self, reference: &str) -> Result<Retrieved, ExpandErrorKind> {
        let inner = &reference[2..reference.len() - 1];
        let uri = if inner.contains(':') {
            inner.to_string()
        } else {
            format!("env:{inner}")
        };
        let Some((scheme, opaque)) = uri.split_once(':') else {
            return Err(ExpandErrorKind::InvalidUri { uri });
        };
        if !is_valid_scheme(scheme) {
            return Err(ExpandErrorKind::InvalidUri { uri });
        }
        if opaque.contains('$') {
            return Err(ExpandErrorKind::UnsupportedCharacters { uri });
        }
        match scheme {
            "env" => Ok(match lookup_env(opaque, self.env, self.notes)? {
                Some(text) => Retrieved::from_text(text),
                None => Retrieved {
                    value: Value::String(String::new()),
                    text: None,
                },
            }),
            "file" => match std::fs::read(opaque) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => Ok(Retrieved::from_text(text)),
                    Err(_) => Err(ExpandErrorKind::ReadFile {
                        uri,
                        message: "the file is not valid UTF-8".to_string(),
                    }),
                },
                Err(e) => Err(ExpandErrorKind::ReadFile {
                    uri,
                    message: io_error_message(&e),
                }),
            },
            "yaml" => Ok(Retrieved::from_text(opaque.to_string())),
            "http" | "https" => Err(ExpandErrorKind::RemoteScheme {
                scheme: scheme.to_string(),
                uri,
            }),
            _ => Err(ExpandErrorKind::UnsupportedScheme {
                scheme: scheme.to_string(),
                uri,
            }),
        }
    }
}

/// An I/O error's message without Rust's `(os error N)` suffix.
pub fn io_error_message(e: &std::io::Error) -> String {
    let message = e.to_string();
    match message.rfind(" (os error ") {
        Some(i) if message.ends_with(')') => message[..i].to_string(),
        _ => message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(root: Value, vars: &HashMap<String, String>) -> (Result<Value, ExpandError>, Vec<Note>) {
        let lookup = |name: &str| vars.get(name).cloned();
        let mut notes = Vec::new();
        let result = expand(root, &lookup, &mut notes);
        (result, notes)
    }

    fn yaml(text: &str) -> Value {
        Value::from_yaml_str(text).unwrap()
    }

    fn string(s: &str) -> Value {
        Value::String(s.to_string())
    }

    fn expanded(typed: Value, raw: &str) -> Value {
        Value::Expanded {
            typed: Box::new(typed),
            raw: raw.to_string(),
        }
    }

    /// Expands `{field: <input>}` and returns the field.
    fn field(input: &str, vars: &HashMap<String, String>) -> Result<Value, ExpandError> {
        let mut map = Map::new();
        map.insert("field".to_string(), string(input));
        let (result, _) = run(Value::Map(map), vars);
        result.map(|v| v.as_map().unwrap()["field"].clone())
    }

    fn field_ok(input: &str, vars: &HashMap<String, String>) -> Value {
        field(input, vars).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn field_err(input: &str, vars: &HashMap<String, String>) -> String {
        match field(input, vars) {
            Ok(v) => panic!("{input:?} expanded to {v:?}, expected an error"),
            Err(e) => e.to_string(),
        }
    }

    const EXPANDED_VALUE: &str = "some expanded value";

    fn escaped_env_vars() -> HashMap<String, String> {
        env_of(&[
            ("ENV_VALUE", EXPANDED_VALUE),
            (
                "ENV_LIST",
                "['$$ESCAPE_ME','$${ESCAPE_ME}','$${env:ESCAPE_ME}']",
            ),
            (
                "ENV_MAP",
                "{'key1':'$$ESCAPE_ME','key2':'$${ESCAPE_ME}','key3':'$${env:ESCAPE_ME}'}",
            ),
            ("ENV_NESTED_DOLLARSIGN", "here is 1 $$"),
            ("ENV_NESTED_DOLLARSIGN_ESCAPED", "here are 2 $$$"),
            (
                "ENV_EXPAND_NESTED",
                "${env:ENV_VALUE} came from nested expansion",
            ),
        ])
    }

    #[test]
    fn escaped_env_vector() {
        let doc = yaml(
            r#"
test_map:
  key1: "$$ENV_VALUE"
  key2: "$$$$ENV_VALUE"
  key3: "$$${ENV_VALUE}"
  key4: "some${ENV_VALUE}text"
  key5: "some$${ENV_VALUE}text"
  key6: "$${ONE}$${TWO}"
  key7: "text$$"
  key8: "$$"
  key9: "$${1}$${env:2}"
  key10: "some$${env:ENV_VALUE}text"
  key11: "$${env:${ENV_VALUE}}"
  key12: "$${env:$${ENV_VALUE}}"
  key13: "env:MAP_VALUE_2}$${ENV_VALUE}{"
  key14: "$$${env:ENV_VALUE}"
  key15: "$ENV_VALUE"
  key16: "${env:ENV_LIST}"
  key17: "${env:ENV_MAP}"
  key18: "${env:ENV_NESTED_DOLLARSIGN}"
  key19: "${env:ENV_NESTED_DOLLARSIGN_ESCAPED}"
  key20: "${env:ENV_EXPAND_NESTED}"
"#,
        );
        let (result, notes) = run(doc, &escaped_env_vars());
        let out = result.unwrap();
        assert_eq!(
            out.to_json(),
            json!({"test_map": {
                "key1": "$ENV_VALUE",
                "key2": "$$ENV_VALUE",
                "key3": "$some expanded value",
                "key4": "somesome expanded valuetext",
                "key5": "some${ENV_VALUE}text",
                "key6": "${ONE}${TWO}",
                "key7": "text$",
                "key8": "$",
                "key9": "${1}${env:2}",
                "key10": "some${env:ENV_VALUE}text",
                "key11": "${env:some expanded value}",
                "key12": "${env:${ENV_VALUE}}",
                "key13": "env:MAP_VALUE_2}${ENV_VALUE}{",
                "key14": "$some expanded value",
                "key15": "$ENV_VALUE",
                "key16": ["$ESCAPE_ME", "${ESCAPE_ME}", "${env:ESCAPE_ME}"],
                "key17": {"key1": "$ESCAPE_ME", "key2": "${ESCAPE_ME}", "key3": "${env:ESCAPE_ME}"},
                "key18": "here is 1 $",
                "key19": "here are 2 $$",
                "key20": "some expanded value came from nested expansion",
            }})
        );
        assert!(notes.is_empty(), "{notes:?}");
        // A whole-field reference keeps its text, unescaped too.
        let map = out.as_map().unwrap()["test_map"].as_map().unwrap().clone();
        assert_eq!(
            map["key16"],
            expanded(
                yaml("['$ESCAPE_ME', '${ESCAPE_ME}', '${env:ESCAPE_ME}']"),
                "['$ESCAPE_ME','${ESCAPE_ME}','${env:ESCAPE_ME}']"
            )
        );
        // Text that reads as a string ends up a plain string.
        assert_eq!(map["key18"], string("here is 1 $"));
        assert_eq!(
            map["key20"],
            string("some expanded value came from nested expansion")
        );
    }

    fn string_values_env() -> HashMap<String, String> {
        env_of(&[
            ("COMPLEX_VALUE", "[localhost:3042]"),
            ("HOST", "localhost"),
            ("TIMESTAMP", "2023-03-20T03:17:55.432328Z"),
            ("OS", "ubuntu"),
            ("PR", "amd"),
            ("PORT", "3044"),
            ("INT", "1"),
            ("FLOAT", "6.4"),
            ("BOOL", "true"),
        ])
    }

    #[test]
    fn string_values() {
        let vars = string_values_env();
        let cases: &[(&str, &str)] = &[
            // Embedded, with and without the default scheme.
            ("${HOST}:${PORT}", "localhost:3044"),
            ("${HOST}:$PORT", "localhost:$PORT"),
            ("${env:HOST}:3043", "localhost:3043"),
            ("${env:HOST}:${env:PORT}", "localhost:3044"),
            ("https://${env:HOST}:3045", "https://localhost:3045"),
            ("http://${env:HOST}:4318", "http://localhost:4318"),
            ("${env:HOST}:${PORT}", "localhost:3044"),
            ("test_${env:INT}", "test_1"),
            ("test_${env:FLOAT}", "test_6.4"),
            ("test_${env:BOOL}", "test_true"),
            ("test_${env:TIMESTAMP}", "test_2023-03-20T03:17:55.432328Z"),
            ("test_${env:BOOL}_test_${env:BOOL}", "test_true_test_true"),
            // Nested.
            ("${yaml:localhost:${env:PORT}}", "localhost:3044"),
            ("${yaml:localhost:${PORT}}", "localhost:3044"),
            ("${yaml:${env:HOST}:${env:PORT}}", "localhost:3044"),
            ("${yaml:${HOST}:${PORT}}", "localhost:3044"),
            (
                "${yaml:localhost:${env:PORT}}?os=${env:OS}",
                "localhost:3044?os=ubuntu",
            ),
            ("${env:${HOST_NAME_VAR}}", "localhost"),
            // Nothing to expand.
            ("env:HOST}", "env:HOST}"),
            ("${HOST", "${HOST"),
            ("HO{ST}", "HO{ST}"),
            (
                "${env:HOST${env:PORT?os=${env:OS",
                "${env:HOST${env:PORT?os=${env:OS",
            ),
            (
                "env:HOST}env:PORT}?os=env:OS}",
                "env:HOST}env:PORT}?os=env:OS}",
            ),
            ("env:HOST}${env:PORT", "env:HOST}${env:PORT"),
            ("$HOST", "$HOST"),
            ("plain text", "plain text"),
            // Partly expandable.
            ("env:HOST}${env:PORT}", "env:HOST}3044"),
            ("env:HOST}${PORT}", "env:HOST}3044"),
            ("${env:HOST}env:PORT}", "localhostenv:PORT}"),
            ("${env:HOST${env:PORT}", "${env:HOST3044"),
            ("${env:HOST}${env:PORT", "localhost${env:PORT"),
            (
                "env:HOST}env:PORT}?os=${env:OS}",
                "env:HOST}env:PORT}?os=ubuntu",
            ),
            (
                "${env:HOST${env:PORT?os=${env:OS}",
                "${env:HOST${env:PORT?os=ubuntu",
            ),
            (
                "${env:HOST}}}}}}${env:PORT?os=${env:OS}",
                "localhost}}}}}${env:PORT?os=ubuntu",
            ),
            (
                "${env:HOST}${${${${${env:PORT}?os=${env:OS}",
                "localhost${${${${3044?os=ubuntu",
            ),
            (
                "env:HOST}${env:PORT}?os=env:OS}&pr=${env:PR}",
                "env:HOST}3044?os=env:OS}&pr=amd",
            ),
            (
                "${env:HOST${env:PORT}?os=${env:OS&pr=${env:PR}",
                "${env:HOST3044?os=${env:OS&pr=amd",
            ),
            ("${HOST}${env:PORT}", "localhost3044"),
            ("${env:HOST}${PORT}", "localhost3044"),
            ("${HOST}", "localhost"),
        ];
        let mut vars = vars;
        vars.insert("HOST_NAME_VAR".to_string(), "HOST".to_string());
        for (input, want) in cases {
            assert_eq!(field_ok(input, &vars), string(want), "input {input:?}");
        }
    }

    #[test]
    fn whole_field_references_keep_typed_reading_and_text() {
        let vars = string_values_env();
        assert_eq!(
            field_ok("${env:COMPLEX_VALUE}", &vars),
            expanded(
                Value::Seq(vec![string("localhost:3042")]),
                "[localhost:3042]"
            )
        );
        assert_eq!(
            field_ok("${env:PORT}", &vars),
            expanded(Value::Int(3044), "3044")
        );
        assert_eq!(
            field_ok("${PORT}", &vars),
            expanded(Value::Int(3044), "3044")
        );
        assert_eq!(
            field_ok("${env:BOOL}", &vars),
            expanded(Value::Bool(true), "true")
        );
        assert_eq!(
            field_ok("${env:FLOAT}", &vars),
            expanded(Value::Float(6.4), "6.4")
        );
        assert_eq!(
            field_ok(
                "${yaml:1${yaml:2${yaml:3${yaml:4${yaml:5${yaml:6}}}}}}",
                &vars
            ),
            expanded(Value::Int(123456), "123456")
        );
        assert_eq!(
            field_ok("${yaml:[1, two]}", &vars),
            expanded(Value::Seq(vec![Value::Int(1), string("two")]), "[1, two]")
        );
    }

    /// The Collector's typing table, each value given directly and through another variable.
    #[test]
    fn types_table() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("123", expanded(Value::Int(123), "123"), "123"),
            ("0123", expanded(Value::Int(83), "0123"), "0123"),
            (
                "0xdeadbeef",
                expanded(Value::Int(3_735_928_559), "0xdeadbeef"),
                "0xdeadbeef",
            ),
            ("\"0123\"", string("\"0123\""), "\"0123\""),
            ("'0123'", string("'0123'"), "'0123'"),
            ("!!str 0123", string("!!str 0123"), "!!str 0123"),
            ("'!!str 0123'", string("'!!str 0123'"), "'!!str 0123'"),
            ("''", string("''"), "''"),
            ("\"\"", string("\"\""), "\"\""),
            ("t", string("t"), "t"),
            ("yes", string("yes"), "yes"),
            ("23", expanded(Value::Int(23), "23"), "23"),
            ("true", expanded(Value::Bool(true), "true"), "true"),
            ("false", expanded(Value::Bool(false), "false"), "false"),
            ("1.5", expanded(Value::Float(1.5), "1.5"), "1.5"),
            ("1e3", expanded(Value::Float(1000.0), "1e3"), "1e3"),
            ("foo\nbar", string("foo\nbar"), "foo\nbar"),
            (
                "{\"field\": 123}",
                expanded(yaml("{field: 123}"), "{\"field\": 123}"),
                "{\"field\": 123}",
            ),
            (
                "1111:1111:1111:1111:1111::",
                expanded(
                    yaml("1111:1111:1111:1111:1111::"),
                    "1111:1111:1111:1111:1111::",
                ),
                "1111:1111:1111:1111:1111::",
            ),
            (
                "2006-01-02T15:04:05Z07:00",
                string("2006-01-02T15:04:05Z07:00"),
                "2006-01-02T15:04:05Z07:00",
            ),
            // Plain scalars the Collector's YAML reader takes for numbers.
            ("0777", expanded(Value::Int(511), "0777"), "0777"),
            ("-0123", expanded(Value::Int(-83), "-0123"), "-0123"),
            ("1_000", expanded(Value::Int(1000), "1_000"), "1_000"),
            ("0o17", expanded(Value::Int(15), "0o17"), "0o17"),
            ("0b101", expanded(Value::Int(5), "0b101"), "0b101"),
            ("09", expanded(Value::Float(9.0), "09"), "09"),
            (
                "0123 # note",
                expanded(Value::Int(83), "0123 # note"),
                "0123 # note",
            ),
            ("  plain  ", string("  plain  "), "  plain  "),
        ];
        for (value, want_whole, want_inline) in cases {
            for indirect in [false, true] {
                let vars = if indirect {
                    env_of(&[("ENV", "${env:ENV2}"), ("ENV2", value)])
                } else {
                    env_of(&[("ENV", value)])
                };
                assert_eq!(
                    field_ok("${env:ENV}", &vars),
                    want_whole,
                    "whole field, value {value:?}, indirect {indirect}"
                );
                assert_eq!(
                    field_ok("inline field with ${env:ENV} expansion", &vars),
                    string(&format!("inline field with {want_inline} expansion")),
                    "inline, value {value:?}, indirect {indirect}"
                );
            }
        }
    }

    #[test]
    fn reference_in_a_comment_of_the_referenced_text() {
        let vars = env_of(&[("ENV", "true # comment with a ${env:hello.world} reference")]);
        // The typed reading stands; the text cannot be expanded, so it is dropped.
        assert_eq!(field_ok("${env:ENV}", &vars), Value::Bool(true));
        assert_eq!(
            field_err("inline field with ${env:ENV} expansion", &vars),
            "field: environment variable \"hello.world\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$"
        );
    }

    #[test]
    fn recursive_inline_strings() {
        for (value, want) in [
            ("123", "The value The value 123 is wrapped is wrapped"),
            (
                "opentelemetry",
                "The value The value opentelemetry is wrapped is wrapped",
            ),
        ] {
            let vars = env_of(&[
                ("ENV", "The value ${env:ENV2} is wrapped"),
                ("ENV2", "The value ${env:ENV3} is wrapped"),
                ("ENV3", value),
            ]);
            assert_eq!(field_ok("${env:ENV}", &vars), string(want));
            assert_eq!(
                field_ok("inline field with ${env:ENV} expansion", &vars),
                string(&format!("inline field with {want} expansion"))
            );
        }
    }

    #[test]
    fn recursive_maps() {
        let vars = env_of(&[
            (
                "ENV",
                r#"{env: "${env:ENV2}", inline: "inline ${env:ENV2}"}"#,
            ),
            ("ENV2", r#"{env2: "${env:ENV3}"}"#),
            ("ENV3", "{value: 123}"),
        ]);
        let out = field_ok("${env:ENV}", &vars);
        let Value::Expanded { typed, raw } = &out else {
            panic!("expected an expanded value, got {out:?}");
        };
        assert_eq!(
            raw,
            r#"{env: "{env2: "{value: 123}"}", inline: "inline {env2: "{value: 123}"}"}"#
        );
        assert_eq!(
            typed.to_json(),
            json!({"env": {"env2": {"value": 123}}, "inline": "inline {env2: \"{value: 123}\"}"})
        );
    }

    #[test]
    fn escaping() {
        let vars = env_of(&[("X", "x"), ("P", "3044"), ("D", "x$$y"), ("PRICE", "$$5")]);
        let cases: &[(&str, &str)] = &[
            ("$${env:X}", "${env:X}"),
            ("$$${env:X}", "$x"),
            ("$$$${env:X}", "$${env:X}"),
            ("$$$$${env:X}", "$$x"),
            ("$${X}", "${X}"),
            ("$X", "$X"),
            ("$$X", "$X"),
            ("$", "$"),
            ("$$", "$"),
            ("$$$", "$$"),
            ("a$$$b", "a$$b"),
            ("text$$", "text$"),
            ("$1 and $$1", "$1 and $1"),
            ("^k8s\\.(.*)$$", "^k8s\\.(.*)$"),
            ("kubernetes.$${1}.$${2}", "kubernetes.${1}.${2}"),
            // An escaped reference does not stop later ones from expanding.
            ("$${env:ESCAPED}:${env:P}", "${env:ESCAPED}:3044"),
            ("$${env:X}$${env:X}${env:P}", "${env:X}${env:X}3044"),
            // Only the unescaped copy of a repeated reference is replaced.
            ("${env:P}:$${env:P}", "3044:${env:P}"),
            ("$${env:P}:${env:P}", "${env:P}:3044"),
            // Text from a variable is unescaped too, once.
            ("a ${env:D}", "a x$y"),
            ("${env:D}", "x$y"),
            ("costs ${env:PRICE}", "costs $5"),
        ];
        for (input, want) in cases {
            assert_eq!(field_ok(input, &vars), string(want), "input {input:?}");
        }
    }

    #[test]
    fn defaults() {
        let vars = env_of(&[("EMPTY", ""), ("SET", "value")]);
        let cases: Vec<(&str, Value)> = vec![
            ("${env:UNSET:-fallback}", string("fallback")),
            ("${env:UNSET:-8080}", expanded(Value::Int(8080), "8080")),
            ("${env:UNSET:-}", string("")),
            ("${env:UNSET:-a:-b}", string("a:-b")),
            ("${env:UNSET:-a b}", string("a b")),
            ("${env:UNSET:-host:4317}", string("host:4317")),
            ("${env:SET:-fallback}", string("value")),
            // Empty is not unset: the default does not apply.
            ("${env:EMPTY:-fallback}", expanded(Value::Null, "")),
            (
                "http://${env:UNSET:-localhost}:4318",
                string("http://localhost:4318"),
            ),
            ("[${env:UNSET:-}]", string("[]")),
        ];
        for (input, want) in cases {
            assert_eq!(field_ok(input, &vars), want, "input {input:?}");
        }
        // Without `env:` the text before `:-` is taken for a scheme.
        assert_eq!(
            field_err("${UNSET:-x}", &vars),
            "field: scheme \"UNSET\" is not supported for uri \"UNSET:-x\" (supported schemes: env, file, yaml)"
        );
    }

    #[test]
    fn unset_and_empty_variables_are_noted() {
        let vars = env_of(&[("EMPTY", "")]);
        let doc = yaml(
            r#"
a: ${env:UNSET}
b: "x${env:UNSET}y"
c: ${UNSET}
d: ${env:EMPTY}
e: ${env:OTHER:-set}
"#,
        );
        let (result, notes) = run(doc, &vars);
        let out = result.unwrap();
        let map = out.as_map().unwrap();
        assert_eq!(map["a"], expanded(Value::Null, ""));
        assert!(map["a"].is_null());
        assert_eq!(map["b"], string("xy"));
        assert_eq!(map["d"], expanded(Value::Null, ""));
        assert_eq!(map["e"], string("set"));
        assert_eq!(
            notes,
            vec![
                Note {
                    level: NoteLevel::Warn,
                    message: UNSET_ENV_MESSAGE.to_string(),
                    name: "UNSET".to_string(),
                },
                Note {
                    level: NoteLevel::Info,
                    message: EMPTY_ENV_MESSAGE.to_string(),
                    name: "EMPTY".to_string(),
                },
            ]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let vars = env_of(&[]);
        let doc = yaml(
            r#"
exporters:
  otlp:
    endpoint: "${env:bad-name}:4317"
"#,
        );
        let (result, _) = run(doc, &vars);
        let err = result.unwrap_err();
        assert_eq!(err.key_path(), vec!["exporters", "otlp", "endpoint"]);
        assert_eq!(
            err.to_string(),
            "exporters::otlp::endpoint: environment variable \"bad-name\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$"
        );

        let doc = yaml("test: [{test: \"${test:$VALUE}\"}]");
        let err = run(doc, &vars).0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "test[0]::test: the uri \"test:$VALUE\" contains unsupported characters ('$')"
        );
        assert_eq!(err.key_path(), vec!["test"]);
    }

    #[test]
    fn error_table() {
        let vars = env_of(&[("LIST", "[a, b]")]);
        let cases: &[(&str, &str)] = &[
            (
                "${unsupported:VALUE}",
                "scheme \"unsupported\" is not supported for uri \"unsupported:VALUE\" (supported schemes: env, file, yaml)",
            ),
            (
                "x ${https://example.com/c.yaml}",
                "scheme \"https\" is not supported for uri \"https://example.com/c.yaml\": fetching configuration over the network is not supported, use a local file (supported schemes: env, file, yaml)",
            ),
            (
                "${env:hello.world}",
                "environment variable \"hello.world\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$",
            ),
            (
                "${1}",
                "environment variable \"1\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$",
            ),
            (
                "${}",
                "environment variable \"\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$",
            ),
            (
                "${env:}",
                "environment variable \"\" has invalid name: must match regex ^[a-zA-Z_][a-zA-Z0-9_]*$",
            ),
            ("${a:b}", "invalid uri: \"a:b\""),
            ("${1x:b}", "invalid uri: \"1x:b\""),
            ("${:b}", "invalid uri: \":b\""),
            (
                "${env:$X}",
                "the uri \"env:$X\" contains unsupported characters ('$')",
            ),
            (
                "${file:/nonexistent/ferrotel/x.yaml}",
                "unable to read the file file:/nonexistent/ferrotel/x.yaml: No such file or directory",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                field_err(input, &vars),
                format!("field: {want}"),
                "input {input:?}"
            );
        }
        // Inline, the text of a list is spliced.
        assert_eq!(field_ok("x ${env:LIST}", &vars), string("x [a, b]"));
    }

    #[test]
    fn self_reference_hits_the_recursion_limit() {
        for vars in [
            env_of(&[("X", "${env:X}")]),
            env_of(&[("X", "${X}")]),
            env_of(&[("X", "b${env:X}")]),
            env_of(&[("X", "${env:Y}"), ("Y", "${env:X}")]),
        ] {
            for input in ["${env:X}", "a${env:X}"] {
                let err = field(input, &vars).unwrap_err();
                assert_eq!(err.kind, ExpandErrorKind::TooManyRecursiveExpansions);
                assert_eq!(err.to_string(), "field: too many recursive expansions");
            }
        }
    }

    #[test]
    fn a_reference_that_doubles_itself_is_stopped() {
        let vars = env_of(&[("X", "${env:X}${env:X}")]);
        let err = field("${env:X}", &vars).unwrap_err();
        assert_eq!(err.kind, ExpandErrorKind::TooLong);
        assert_eq!(
            err.to_string(),
            "field: expanded value is longer than 16777216 bytes"
        );
    }

    #[test]
    fn long_but_finite_chains_expand() {
        let mut vars = HashMap::new();
        for i in 0..200 {
            vars.insert(format!("V{i}"), format!("${{env:V{}}}", i + 1));
        }
        vars.insert("V200".to_string(), "end".to_string());
        assert_eq!(field_ok("${env:V0}", &vars), string("end"));
    }

    #[test]
    fn map_keys_are_neither_expanded_nor_unescaped() {
        let vars = env_of(&[("HOST", "localhost")]);
        let doc = yaml(
            r#"
"${env:HOST}": "${env:HOST}"
"a$$b": "$$"
nested:
  "${HOST}": [1, "$${x}", "${HOST}"]
"#,
        );
        let out = run(doc, &vars).0.unwrap();
        assert_eq!(
            out.to_json(),
            json!({
                "${env:HOST}": "localhost",
                "a$$b": "$",
                "nested": {"${HOST}": [1, "${x}", "localhost"]},
            })
        );
    }

    #[test]
    fn non_string_values_are_untouched() {
        let doc = yaml("a: 1\nb: true\nc: null\nd: 1.5\ne: [1, {f: x}]\ng: {}");
        let out = run(doc.clone(), &HashMap::new()).0.unwrap();
        assert_eq!(out, doc);
    }

    #[test]
    fn references_inside_referenced_maps_expand() {
        let vars = env_of(&[
            (
                "CFG",
                "{endpoint: \"${env:HOST}:4317\", tls: {insecure: \"${env:INSECURE}\"}}",
            ),
            ("HOST", "collector"),
            ("INSECURE", "true"),
        ]);
        let out = field_ok("${env:CFG}", &vars);
        assert_eq!(
            out.to_json(),
            json!({"endpoint": "collector:4317", "tls": {"insecure": true}})
        );
        let insecure = &out.as_map().unwrap()["tls"].as_map().unwrap()["insecure"];
        assert_eq!(insecure, &expanded(Value::Bool(true), "true"));
    }

    #[test]
    fn file_and_yaml_references() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extra.yaml");
        std::fs::write(&path, "endpoint: ${env:HOST}:4317\nport: 0123\n").unwrap();
        let text_path = dir.path().join("token.txt");
        std::fs::write(&text_path, "s3cr3t").unwrap();
        let vars = env_of(&[("HOST", "collector")]);

        let out = field_ok(&format!("${{file:{}}}", path.display()), &vars);
        assert_eq!(
            out.to_json(),
            json!({"endpoint": "collector:4317", "port": "0123"})
        );
        assert_eq!(
            field_ok(&format!("Bearer ${{file:{}}}", text_path.display()), &vars),
            string("Bearer s3cr3t")
        );
        assert_eq!(
            field_ok("${yaml:[a, [b, 1]]}", &vars).to_json(),
            json!(["a", ["b", 1]])
        );
        // A reference ends at the first `}`, even one meant for the inline YAML.
        assert_eq!(field_ok("${yaml:{a: 1}}", &vars), string("{a: 1}"));
    }

    #[test]
    fn expanded_values_only_end_up_expanded_when_typed_differently() {
        let vars = env_of(&[("S", "text"), ("N", "42")]);
        assert_eq!(field_ok("${env:S}", &vars), string("text"));
        assert_eq!(field_ok("${env:N}", &vars), expanded(Value::Int(42), "42"));
    }

    #[test]
    fn go_number_resolution_helpers() {
        assert_eq!(go_parse_int("0x1F"), Some(31));
        assert_eq!(go_parse_int("0X1f"), Some(31));
        assert_eq!(go_parse_int("-0b11"), Some(-3));
        assert_eq!(go_parse_int("+7"), Some(7));
        assert_eq!(go_parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(go_parse_int("9223372036854775808"), None);
        assert_eq!(go_parse_int("08"), None);
        assert_eq!(go_parse_int("0x"), None);
        assert_eq!(go_parse_int(""), None);
        assert_eq!(go_parse_int("-"), None);
        assert!(is_yaml_style_float("1.5e-3"));
        assert!(is_yaml_style_float(".5"));
        assert!(is_yaml_style_float("12."));
        assert!(!is_yaml_style_float("1e"));
        assert!(!is_yaml_style_float("."));
        assert!(!is_yaml_style_float("1.2.3"));
        assert_eq!(go_plain_number("\"0123\"", "0123"), None);
        assert_eq!(go_plain_number("0123", "0123"), Some(Value::Int(83)));
        assert_eq!(go_plain_number("abc", "abc"), None);
    }

    #[test]
    fn reference_finder() {
        assert_eq!(find_reference("${a}"), Some((0, 3)));
        assert_eq!(find_reference("x${a${b}}"), Some((4, 7)));
        assert_eq!(find_reference("$${a}"), None);
        assert_eq!(find_reference("$${a}${b}"), Some((5, 8)));
        assert_eq!(find_reference("$$${a}"), Some((2, 5)));
        assert_eq!(find_reference("}}}"), None);
        assert_eq!(find_reference("é${ü}"), Some((2, 6)));
        assert_eq!(replace_unescaped("${a}$${a}${a}", "${a}", "x"), "x$${a}x");
    }

    #[test]
    fn paths_render_like_the_collector() {
        let path = vec![
            PathSegment::Key("service".to_string()),
            PathSegment::Key("pipelines".to_string()),
            PathSegment::Index(2),
            PathSegment::Key("x".to_string()),
        ];
        assert_eq!(format_path(&path), "service::pipelines[2]::x");
        assert_eq!(format_path(&[]), "");
    }
}
