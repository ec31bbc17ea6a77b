//! Relabeling with Prometheus's semantics (`relabel_configs`, `metric_relabel_configs`): the
//! rule configuration with Prometheus's defaults and validation messages, its compiled form
//! ([`Compiled`]), the label set rules run on ([`Labels`]) and the engine ([`relabel`]).
//!
//! Regexes use Go's RE2 syntax and meaning: patterns are anchored as Prometheus anchors them and
//! rewritten where Rust's `regex` reads the same text differently (ASCII `\d`, `\w`, `\s`, `\b`;
//! a `{` that starts no repetition; `[` and set operators inside a class; `\Q…\E`).
//! Replacement templates follow Go's `Regexp.Expand`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use md5::Digest as _;
use regex::{Captures, Regex, RegexBuilder};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A label set: unique names kept sorted in byte order, as Prometheus keeps them, so lookups
/// are binary searches and equal sets compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Labels(Vec::with_capacity(capacity))
    }

    /// A set from pairs in any order; of repeated names the last one wins. Empty values are
    /// kept (a scraped `a=""` stays visible to `labelmap`), unlike with [`Labels::set`].
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut all: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        // Stable, so that repeated names stay in input order and the last can win.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(all.len());
        for pair in all {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        Labels(out)
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets a label. An empty value deletes it: Prometheus treats an empty value as absent.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.delete(name);
            return;
        }
        match self.position(name) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    if slot.1 != value {
                        value.clone_into(&mut slot.1);
                    }
                }
            }
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    /// Like [`Labels::set`], taking strings the caller already owns.
    pub fn set_owned(&mut self, name: String, value: String) {
        if value.is_empty() {
            self.delete(&name);
            return;
        }
        match self.position(&name) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.1 = value;
                }
            }
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// Like [`Labels::set_owned`], but O(1) when names arrive in ascending order, as when a
    /// set is built from an already sorted source.
    pub fn push(&mut self, name: String, value: String) {
        let in_order = self.0.last().is_none_or(|(last, _)| *last < name);
        if in_order && !value.is_empty() {
            self.0.push((name, value));
        } else {
            self.set_owned(name, value);
        }
    }

    /// Removes a label, returning its value.
    pub fn delete(&mut self, name: &str) -> Option<String> {
        let i = self.position(name).ok()?;
        Some(self.0.remove(i).1)
    }

    /// Keeps the labels for which `keep(name, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(n, v)| keep(n, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Labels::from_pairs(iter)
    }
}

impl From<Vec<(String, String)>> for Labels {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Labels::from_pairs(pairs)
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, as the exporters check it too.
pub use ferrotel_pipeline::prometheus::is_valid_label_name;

/// A relabeling action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The name as written in a configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Reads an action name in any letter case, as Prometheus does.
    pub fn parse(name: &str) -> Result<Action, String> {
        let lower = go_lowercase(name);
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| format!("unknown relabel action {}", go_quote(name)))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A null action leaves Go's field empty, which Prometheus reports as such.
        match Option::<String>::deserialize(deserializer)? {
            None => Err(D::Error::custom("relabel action cannot be empty")),
            Some(name) => Action::parse(&name).map_err(D::Error::custom),
        }
    }
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// One entry of `relabel_configs` or `metric_relabel_configs`, with Prometheus's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    #[serde(deserialize_with = "string_or_null")]
    pub separator: String,
    #[serde(deserialize_with = "string_or_null")]
    pub target_label: String,
    /// Unanchored, as written; compiled as `^(?:regex)$`. A null regex is the empty one.
    #[serde(deserialize_with = "string_or_null")]
    pub regex: String,
    #[serde(deserialize_with = "u64_or_null")]
    pub modulus: u64,
    #[serde(deserialize_with = "string_or_null")]
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            target_label: String::new(),
            regex: DEFAULT_REGEX.to_string(),
            modulus: 0,
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

/// Go's YAML decoder leaves a null field at its zero value.
fn string_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

fn u64_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(deserializer)?.unwrap_or_default())
}

impl RelabelConfig {
    /// Checks the rule as Prometheus does when it loads it, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }

    /// Validates the rule and compiles its regex and templates.
    pub fn compile(&self) -> Result<Compiled, String> {
        // Prometheus checks these while decoding, before the rule itself.
        for name in &self.source_labels {
            if !is_valid_label_name(name) {
                return Err(format!("{} is not a valid label name", go_quote(name)));
            }
        }
        let regex = compile_go_regex(&self.regex)?;
        self.check()?;
        let target = Template::compile(&self.target_label, &regex);
        let replacement = Template::compile(&self.replacement, &regex);
        let needs_groups = match self.action {
            Action::Replace => target.uses_groups() || replacement.uses_groups(),
            Action::LabelMap => replacement.uses_groups(),
            _ => false,
        };
        Ok(Compiled {
            action: self.action,
            source_labels: self.source_labels.clone(),
            separator: self.separator.clone(),
            default_regex: self.regex == DEFAULT_REGEX,
            regex,
            target_label: self.target_label.clone(),
            target,
            replacement,
            modulus: self.modulus,
            needs_groups,
        })
    }

    /// Prometheus's checks, in its order.
    fn check(&self) -> Result<(), String> {
        use Action::*;
        let action = self.action;
        let target = self.target_label.as_str();
        let invalid_target = || {
            Err(format!(
                "{} is invalid 'target_label' for {action} action",
                go_quote(target)
            ))
        };
        if action == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".to_string());
        }
        let sets_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if sets_target && target.is_empty() {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        if action == Replace {
            let valid = if target.contains('$') {
                is_valid_name_template(target)
            } else {
                is_valid_label_name(target)
            };
            if !valid {
                return invalid_target();
            }
        }
        let literal_target = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
        if literal_target && !is_valid_label_name(target) {
            return invalid_target();
        }
        if literal_target && self.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if action == LabelMap && !is_valid_name_template(&self.replacement) {
            return Err(format!(
                "{} is invalid 'replacement' for {action} action",
                go_quote(&self.replacement)
            ));
        }
        if action == HashMod && !is_valid_label_name(target) {
            return invalid_target();
        }
        if matches!(action, KeepEqual | DropEqual)
            && (self.regex != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !target.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

/// Compiles every rule of a list, stopping at the first error.
pub fn compile_all(configs: &[RelabelConfig]) -> Result<Vec<Compiled>, String> {
    configs.iter().map(RelabelConfig::compile).collect()
}

/// A validated rule, ready to run on label sets.
#[derive(Debug, Clone)]
pub struct Compiled {
    action: Action,
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    /// The default `(.*)` matches exactly the values without a newline, with group 1 the
    /// whole value, so the common rules need no regex run.
    default_regex: bool,
    target_label: String,
    target: Template,
    replacement: Template,
    modulus: u64,
    /// Whether a template reads capture groups; if not, a plain match test is enough.
    needs_groups: bool,
}

impl Compiled {
    pub fn action(&self) -> Action {
        self.action
    }

    /// Runs the rule; false when it drops the set. A borrowed set is copied only when the rule
    /// actually changes it.
    fn apply(&self, labels: &mut Cow<'_, Labels>) -> bool {
        match self.action {
            Action::Keep => self.matches(&self.source_value(labels)),
            Action::Drop => !self.matches(&self.source_value(labels)),
            Action::KeepEqual => self.target_equals_source(labels),
            Action::DropEqual => !self.target_equals_source(labels),
            Action::Replace => {
                self.replace(labels);
                true
            }
            Action::Lowercase | Action::Uppercase => {
                let change = {
                    let value = self.source_value(labels);
                    let cased = if self.action == Action::Lowercase {
                        go_lowercase(&value)
                    } else {
                        go_uppercase(&value)
                    };
                    would_change(labels, &self.target_label, &cased).then(|| cased.into_owned())
                };
                if let Some(value) = change {
                    labels.to_mut().set_owned(self.target_label.clone(), value);
                }
                true
            }
            Action::HashMod => {
                let digest = md5::Md5::digest(self.source_value(labels).as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&digest[8..]);
                // Compile refuses a zero modulus; checked_rem keeps a zero harmless anyway.
                if let Some(n) = u64::from_be_bytes(tail).checked_rem(self.modulus) {
                    let value = n.to_string();
                    if would_change(labels, &self.target_label, &value) {
                        labels.to_mut().set_owned(self.target_label.clone(), value);
                    }
                }
                true
            }
            Action::LabelMap => {
                self.label_map(labels);
                true
            }
            Action::LabelDrop => {
                self.drop_names(labels, true);
                true
            }
            Action::LabelKeep => {
                self.drop_names(labels, false);
                true
            }
        }
    }

    /// The source labels' values joined by the separator; missing labels count as empty.
    fn source_value<'l>(&self, labels: &'l Labels) -> Cow<'l, str> {
        match self.source_labels.as_slice() {
            [] => Cow::Borrowed(""),
            [one] => Cow::Borrowed(labels.get(one).unwrap_or("")),
            many => {
                let mut joined = String::new();
                for (i, name) in many.iter().enumerate() {
                    if i > 0 {
                        joined.push_str(&self.separator);
                    }
                    joined.push_str(labels.get(name).unwrap_or(""));
                }
                Cow::Owned(joined)
            }
        }
    }

    fn matches(&self, value: &str) -> bool {
        if self.default_regex {
            !value.contains('\n')
        } else {
            self.regex.is_match(value)
        }
    }

    /// The match of `value`, with its groups only when a template reads them.
    fn groups<'h>(&self, value: &'h str) -> Option<Groups<'h>> {
        if self.default_regex {
            (!value.contains('\n')).then_some(Groups::Whole(value))
        } else if self.needs_groups {
            self.regex.captures(value).map(Groups::Captures)
        } else {
            self.regex.is_match(value).then_some(Groups::Unused)
        }
    }

    fn target_equals_source(&self, labels: &Labels) -> bool {
        labels.get(&self.target_label).unwrap_or("") == self.source_value(labels)
    }

    fn replace(&self, labels: &mut Cow<'_, Labels>) {
        let change = {
            let value = self.source_value(labels);
            let Some(groups) = self.groups(&value) else {
                return;
            };
            let target = self.target.expand(&groups);
            if !is_valid_label_name(&target) {
                return;
            }
            let replacement = self.replacement.expand(&groups);
            would_change(labels, &target, &replacement)
                .then(|| (target.into_owned(), replacement.into_owned()))
        };
        if let Some((target, value)) = change {
            labels.to_mut().set_owned(target, value);
        }
    }

    /// Copies every label whose name matches to the expanded name. Like Prometheus, the new
    /// name is not checked: the scrape rejects a sample whose names are invalid.
    fn label_map(&self, labels: &mut Cow<'_, Labels>) {
        let mut sets: Vec<(String, String)> = Vec::new();
        for (name, value) in labels.iter() {
            if let Some(groups) = self.groups(name) {
                let new_name = self.replacement.expand(&groups).into_owned();
                sets.push((new_name, value.to_string()));
            }
        }
        // Only the last write to a name counts.
        let changes = sets.iter().enumerate().any(|(i, (name, value))| {
            let overwritten = sets
                .get(i + 1..)
                .is_some_and(|later| later.iter().any(|(n, _)| n == name));
            !overwritten && would_change(labels, name, value)
        });
        if changes {
            let owned = labels.to_mut();
            for (name, value) in sets {
                owned.set_owned(name, value);
            }
        }
    }

    fn drop_names(&self, labels: &mut Cow<'_, Labels>, drop_matching: bool) {
        if labels.iter().any(|(n, _)| self.matches(n) == drop_matching) {
            labels
                .to_mut()
                .retain(|n, _| self.matches(n) != drop_matching);
        }
    }
}

/// Whether setting `name` to `value` (empty: deleting it) changes `labels`.
fn would_change(labels: &Labels, name: &str, value: &str) -> bool {
    if value.is_empty() {
        labels.contains(name)
    } else {
        labels.get(name) != Some(value)
    }
}

/// Runs `rules` in order on `labels`: None when a rule dropped the set.
pub fn relabel(labels: &Labels, rules: &[Compiled]) -> Option<Labels> {
    relabel_cow(labels, rules).map(Cow::into_owned)
}

/// Like [`relabel`], but borrows `labels` back when no rule changed them.
pub fn relabel_cow<'a>(labels: &'a Labels, rules: &[Compiled]) -> Option<Cow<'a, Labels>> {
    let mut current = Cow::Borrowed(labels);
    for rule in rules {
        if !rule.apply(&mut current) {
            return None;
        }
    }
    Some(current)
}

/// Like [`relabel`], on an owned set: false when a rule dropped it (what is left in `labels`
/// is then unspecified).
pub fn relabel_in_place(labels: &mut Labels, rules: &[Compiled]) -> bool {
    let mut current: Cow<'_, Labels> = Cow::Owned(std::mem::take(labels));
    let mut kept = true;
    for rule in rules {
        if !rule.apply(&mut current) {
            kept = false;
            break;
        }
    }
    *labels = current.into_owned();
    kept
}

/// The groups of one match, as a template reads them ("" when absent).
enum Groups<'h> {
    /// No template reads a group.
    Unused,
    /// The default `(.*)`: groups 0 and 1 are the whole value.
    Whole(&'h str),
    Captures(Captures<'h>),
}

impl<'h> Groups<'h> {
    fn get(&self, index: usize) -> &'h str {
        match self {
            Groups::Unused => "",
            Groups::Whole(value) => {
                if index <= 1 {
                    value
                } else {
                    ""
                }
            }
            Groups::Captures(caps) => caps.get(index).map_or("", |m| m.as_str()),
        }
    }
}

/// A replacement template pre-parsed with Go's `Regexp.Expand` rules, so that expanding it per
/// series is only concatenation.
#[derive(Debug, Clone)]
struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Group(usize),
}

/// A `$` reference: Go reads an all-digit name as a group number.
enum Reference<'a> {
    Number(usize),
    Name(&'a str),
}

impl Template {
    fn compile(template: &str, regex: &Regex) -> Template {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            text.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                text.push('$');
                rest = after;
                continue;
            }
            let Some((reference, after)) = parse_reference(rest) else {
                // Go keeps the `$` of a malformed reference as text.
                text.push('$');
                continue;
            };
            rest = after;
            let group = match reference {
                Reference::Number(n) => (n < regex.captures_len()).then_some(n),
                Reference::Name(name) => regex.capture_names().position(|n| n == Some(name)),
            };
            // A reference to no group expands to nothing.
            if let Some(group) = group {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Group(group));
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Template { pieces }
    }

    fn uses_groups(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Group(_)))
    }

    fn expand<'a>(&'a self, groups: &Groups<'a>) -> Cow<'a, str> {
        match self.pieces.as_slice() {
            [] => Cow::Borrowed(""),
            [Piece::Text(text)] => Cow::Borrowed(text),
            [Piece::Group(i)] => Cow::Borrowed(groups.get(*i)),
            pieces => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => out.push_str(text),
                        Piece::Group(i) => out.push_str(groups.get(*i)),
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

/// Reads `name`, `{name}` after a `$`: the name is the longest run of Unicode letters, decimal
/// digits and `_`. None for a malformed reference.
fn parse_reference(s: &str) -> Option<(Reference<'_>, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !is_template_name_char(c))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let rest = if braced {
        body[end..].strip_prefix('}')?
    } else {
        &body[end..]
    };
    Some((classify_reference(name), rest))
}

/// Go's rule: digits only, no leading zero and below 1e8 make a group number; anything else is
/// a group name.
fn classify_reference(name: &str) -> Reference<'_> {
    let mut number: u64 = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || number >= 100_000_000 {
            return Reference::Name(name);
        }
        number = number * 10 + u64::from(b - b'0');
    }
    if name.len() > 1 && name.starts_with('0') {
        return Reference::Name(name);
    }
    usize::try_from(number).map_or(Reference::Name(name), Reference::Number)
}

fn is_template_name_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    // Go's unicode.IsLetter / IsDigit are exactly \p{L} / \p{Nd}; std has no such test.
    static LETTER_OR_DIGIT: OnceLock<Option<Regex>> = OnceLock::new();
    let mut buf = [0u8; 4];
    LETTER_OR_DIGIT
        .get_or_init(|| Regex::new(r"^[\p{L}\p{Nd}]$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(c.encode_utf8(&mut buf)))
}

/// Prometheus's test for a name that may hold `$` references:
/// `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$` with ASCII `\w`, i.e. a letter, `_` or reference
/// first, then word characters and references.
fn is_valid_name_template(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    if bytes.first().is_none_or(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'$' {
            i += 1;
            let braced = bytes.get(i) == Some(&b'{');
            if braced {
                i += 1;
            }
            let start = i;
            while bytes.get(i).is_some_and(|&b| word(b)) {
                i += 1;
            }
            if i == start {
                return false;
            }
            if braced {
                if bytes.get(i) != Some(&b'}') {
                    return false;
                }
                i += 1;
            }
        } else if word(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Compiles a Prometheus regex: anchored, with Go's syntax and meaning.
fn compile_go_regex(pattern: &str) -> Result<Regex, String> {
    let anchored = format!("^(?:{pattern})$");
    RegexBuilder::new(&go_to_rust_syntax(&anchored))
        // Go accepts octal escapes such as `\012`.
        .octal(true)
        .build()
        .map_err(|err| {
            format!(
                "error parsing regexp: {}: `{anchored}`",
                go_regex_error_code(&err)
            )
        })
}

/// Rewrites Go RE2 syntax where Rust's `regex` would read it differently.
fn go_to_rust_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    let mut in_class = false;
    // Right after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        let at_class_start = std::mem::replace(&mut class_start, false);
        match c {
            '\\' => {
                let Some(e) = rest.chars().next() else {
                    out.push('\\');
                    break;
                };
                rest = &rest[e.len_utf8()..];
                // Go's Perl classes and word boundaries are ASCII-only; Rust's are Unicode.
                let ascii_class = match (e, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('d', true) => Some("0-9"),
                    ('D', _) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('W', _) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some(r"[\t\n\f\r ]"),
                    ('s', true) => Some(r"\t\n\f\r "),
                    ('S', _) => Some(r"[^\t\n\f\r ]"),
                    ('b', false) => Some(r"(?-u:\b)"),
                    ('B', false) => Some(r"(?-u:\B)"),
                    _ => None,
                };
                if let Some(class) = ascii_class {
                    out.push_str(class);
                } else if e == 'Q' && !in_class {
                    // `\Q…\E` quotes literally, up to `\E` or the end.
                    let (literal, after) = match rest.find(r"\E") {
                        Some(end) => (&rest[..end], &rest[end + 2..]),
                        None => (rest, ""),
                    };
                    out.push_str(&regex::escape(literal));
                    rest = after;
                } else {
                    out.push('\\');
                    out.push(e);
                    // `\p{Greek}`, `\x{263a}`: the braces are no repetition.
                    if matches!(e, 'p' | 'P' | 'x') && rest.starts_with('{') {
                        let end = rest.find('}').map_or(rest.len(), |i| i + 1);
                        out.push_str(&rest[..end]);
                        rest = &rest[end..];
                    }
                }
            }
            '[' if !in_class => {
                out.push('[');
                in_class = true;
                class_start = true;
                if let Some(after) = rest.strip_prefix('^') {
                    out.push('^');
                    rest = after;
                }
            }
            // Inside a class Go has no nesting, only `[:name:]`.
            '[' => match rest.strip_prefix(':').and_then(|r| r.find(":]")) {
                Some(end) => {
                    out.push_str("[:");
                    out.push_str(&rest[1..end + 3]);
                    rest = &rest[end + 3..];
                }
                None => out.push_str(r"\["),
            },
            ']' if in_class && at_class_start => out.push_str(r"\]"),
            ']' if in_class => {
                out.push(']');
                in_class = false;
            }
            // Rust's class set operators (`&&`, `~~`, `--`) are plain characters in Go.
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            // Go has no `--` set difference: a `-` starting a class is a range start, and
            // one after a range operator is its end.
            '-' if in_class && rest.starts_with('-') => {
                if at_class_start {
                    out.push_str(r"\-");
                } else {
                    out.push_str(r"-\-");
                    rest = &rest[1..];
                }
            }
            // Go reads a `{` that starts no `{n}`, `{n,}` or `{n,m}` as a literal.
            '{' if !in_class => match repetition_len(rest) {
                Some(len) => {
                    out.push('{');
                    out.push_str(&rest[..len]);
                    rest = &rest[len..];
                }
                None => out.push_str(r"\{"),
            },
            '}' if !in_class => out.push_str(r"\}"),
            _ => out.push(c),
        }
    }
    out
}

/// The length of `n}`, `n,}` or `n,m}` at the start of `s` (just after a `{`).
fn repetition_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let digits = |from: usize| {
        bytes
            .get(from..)
            .map_or(0, |b| b.iter().take_while(|b| b.is_ascii_digit()).count())
    };
    let mut i = digits(0);
    if i == 0 {
        return None;
    }
    if bytes.get(i) == Some(&b',') {
        i += 1;
        i += digits(i);
    }
    (bytes.get(i) == Some(&b'}')).then_some(i + 1)
}

/// Go's wording for the regex syntax errors it shares with Rust's.
fn go_regex_error_code(err: &regex::Error) -> String {
    let text = match err {
        regex::Error::Syntax(text) => text,
        regex::Error::CompiledTooBig(_) => return "expression too large".to_string(),
        other => return other.to_string(),
    };
    let message = text
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(text.as_str())
        .trim();
    const CODES: [(&str, &str); 12] = [
        ("unclosed group", "missing closing )"),
        ("unopened group", "unexpected )"),
        ("unclosed character class", "missing closing ]"),
        ("unrecognized escape", "invalid escape sequence"),
        (
            "backreferences are not supported",
            "invalid escape sequence",
        ),
        (
            "incomplete escape sequence",
            "trailing backslash at end of expression",
        ),
        (
            "invalid character class range",
            "invalid character class range",
        ),
        (
            "repetition operator missing expression",
            "missing argument to repetition operator",
        ),
        ("invalid capture group", "invalid named capture"),
        ("empty capture group name", "invalid named capture"),
        ("unrecognized flag", "invalid or unsupported Perl syntax"),
        ("invalid repetition count range", "invalid repeat count"),
    ];
    CODES
        .iter()
        .find(|(rust, _)| message.starts_with(rust))
        .map_or_else(|| message.to_string(), |(_, go)| (*go).to_string())
}

/// Go's `strings.ToLower`: per character, with the simple (one-to-one) case mappings.
fn go_lowercase(s: &str) -> Cow<'_, str> {
    if s.chars().all(|c| lower_char(c) == c) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().map(lower_char).collect())
    }
}

/// Go's `strings.ToUpper`, like [`go_lowercase`].
fn go_uppercase(s: &str) -> Cow<'_, str> {
    if s.chars().all(|c| upper_char(c) == c) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().map(upper_char).collect())
    }
}

fn lower_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        // Only U+0130 has a longer full mapping; its simple one is `i`.
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

fn upper_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        // Longer full mappings (`ß` → `SS`): the simple mapping keeps the character, except for
        // the Greek letters with ypogegrammeni, which map to their titlecase forms.
        _ => match c {
            '\u{1f80}'..='\u{1f87}' | '\u{1f90}'..='\u{1f97}' | '\u{1fa0}'..='\u{1fa7}' => {
                char::from_u32(u32::from(c) + 8).unwrap_or(c)
            }
            '\u{1fb3}' => '\u{1fbc}',
            '\u{1fc3}' => '\u{1fcc}',
            '\u{1ff3}' => '\u{1ffc}',
            _ => c,
        },
    }
}

/// Go's `%q` for strings, so that messages match Prometheus's byte for byte in the usual cases.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint` (no general categories in std): controls, spaces
/// other than ' ' and the common format characters are escaped.
fn is_go_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{ad}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{feff}'
                | '\u{e000}'..='\u{f8ff}'
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotel_pipeline::config::decode::decode;
    use ferrotel_pipeline::config::value::Value;

    fn config(yaml: &str) -> Result<RelabelConfig, String> {
        let value = Value::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        decode::<RelabelConfig>(&value).map_err(|e| e.message)
    }

    fn rule(yaml: &str) -> Compiled {
        config(yaml).unwrap().compile().unwrap()
    }

    fn error(yaml: &str) -> String {
        match config(yaml) {
            Ok(c) => c.compile().unwrap_err(),
            Err(e) => e,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn run(yaml: &str, input: &[(&str, &str)]) -> Option<Labels> {
        relabel(&labels(input), &[rule(yaml)])
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn md5(data: &[u8]) -> Vec<u8> {
        md5::Md5::digest(data).to_vec()
    }

    #[test]
    fn md5_matches_rfc_1321_and_padding_boundaries() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(&md5(input)), want);
        }
        // Lengths around the 56- and 64-byte padding edges (from Python's hashlib).
        for (len, want) in [
            (55, "04364420e25c512fd958a70738aa8f72"),
            (56, "668a72d5ba17f08e62dabcafad6db14b"),
            (63, "7dc2ca208106a2f703567bdff99d8981"),
            (64, "c1bb4f81d892b2d57947682aeb252456"),
            (65, "1bc932052302d074bdec39795fe00cf6"),
            (1000, "398533d48111e9f664b1f64cb10c4b63"),
        ] {
            assert_eq!(hex(&md5(&vec![b'x'; len])), want, "length {len}");
        }
    }

    #[test]
    fn defaults_and_decoding() {
        let c = config("{}").unwrap();
        assert_eq!(c, RelabelConfig::default());
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex, "(.*)");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.modulus, 0);
        assert_eq!(c.action, Action::Replace);
        assert!(c.source_labels.is_empty() && c.target_label.is_empty());

        let c = config(
            "source_labels: [a, b]\nseparator: '-'\ntarget_label: t\nregex: 'x(.*)'\n\
             modulus: 8\nreplacement: 'y$1'\naction: HashMod",
        )
        .unwrap();
        assert_eq!(c.source_labels, ["a", "b"]);
        assert_eq!(c.separator, "-");
        assert_eq!(c.modulus, 8);
        assert_eq!(c.action, Action::HashMod);
        for name in ["KEEP", "Keep", "labelMap", "DropEqual", "UPPERCASE"] {
            assert!(config(&format!("action: {name}")).is_ok(), "{name}");
        }
        assert!(config("regexp: x").unwrap_err().contains("unknown field"));
        // Null fields take Go's zero values; a null regex is the empty regex.
        let c = config("regex: null\nseparator: ~\nreplacement: null").unwrap();
        assert_eq!((c.regex.as_str(), c.separator.as_str()), ("", ""));
        assert_eq!(c.replacement, "");
    }

    #[test]
    fn action_errors() {
        assert_eq!(error("action: null"), "relabel action cannot be empty");
        assert_eq!(error("action: foo"), r#"unknown relabel action "foo""#);
        assert_eq!(error("action: ''"), r#"unknown relabel action """#);
    }

    #[test]
    fn validation_errors() {
        let cases = [
            (
                "action: hashmod\ntarget_label: t",
                "relabel configuration for hashmod requires non-zero modulus",
            ),
            (
                "source_labels: [a]",
                "relabel configuration for replace action requires 'target_label' value",
            ),
            (
                "action: hashmod\nmodulus: 2",
                "relabel configuration for hashmod action requires 'target_label' value",
            ),
            (
                "action: lowercase",
                "relabel configuration for lowercase action requires 'target_label' value",
            ),
            (
                "action: uppercase",
                "relabel configuration for uppercase action requires 'target_label' value",
            ),
            (
                "action: keepequal",
                "relabel configuration for keepequal action requires 'target_label' value",
            ),
            (
                "action: dropequal",
                "relabel configuration for dropequal action requires 'target_label' value",
            ),
            (
                "target_label: 1abc",
                r#""1abc" is invalid 'target_label' for replace action"#,
            ),
            (
                "target_label: 'a-b'",
                r#""a-b" is invalid 'target_label' for replace action"#,
            ),
            (
                "target_label: '${1'",
                r#""${1" is invalid 'target_label' for replace action"#,
            ),
            (
                "target_label: 'x$$'",
                r#""x$$" is invalid 'target_label' for replace action"#,
            ),
            (
                "target_label: '$1-x'",
                r#""$1-x" is invalid 'target_label' for replace action"#,
            ),
            (
                "action: lowercase\ntarget_label: 'a.b'",
                r#""a.b" is invalid 'target_label' for lowercase action"#,
            ),
            (
                "action: uppercase\ntarget_label: '$1'",
                r#""$1" is invalid 'target_label' for uppercase action"#,
            ),
            (
                "action: keepequal\ntarget_label: '0'",
                r#""0" is invalid 'target_label' for keepequal action"#,
            ),
            (
                "action: hashmod\nmodulus: 2\ntarget_label: '$1'",
                r#""$1" is invalid 'target_label' for hashmod action"#,
            ),
            (
                "action: lowercase\ntarget_label: t\nreplacement: x",
                "'replacement' can not be set for lowercase action",
            ),
            (
                "action: uppercase\ntarget_label: t\nreplacement: ''",
                "'replacement' can not be set for uppercase action",
            ),
            (
                "action: dropequal\ntarget_label: t\nreplacement: x",
                "'replacement' can not be set for dropequal action",
            ),
            (
                "action: labelmap\nreplacement: 'l-$1'",
                r#""l-$1" is invalid 'replacement' for labelmap action"#,
            ),
            (
                "action: labelmap\nreplacement: ''",
                r#""" is invalid 'replacement' for labelmap action"#,
            ),
            (
                "action: keepequal\ntarget_label: t\nregex: 'a.*'",
                "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            (
                "action: dropequal\ntarget_label: t\nseparator: ','",
                "dropequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            (
                "action: keepequal\ntarget_label: t\nmodulus: 3",
                "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            (
                "action: labeldrop\nsource_labels: [a]",
                "labeldrop action requires only 'regex', and no other fields",
            ),
            (
                "action: labelkeep\ntarget_label: t",
                "labelkeep action requires only 'regex', and no other fields",
            ),
            (
                "action: labeldrop\nmodulus: 1",
                "labeldrop action requires only 'regex', and no other fields",
            ),
            (
                "action: labelkeep\nseparator: ','",
                "labelkeep action requires only 'regex', and no other fields",
            ),
            (
                "action: labeldrop\nreplacement: x",
                "labeldrop action requires only 'regex', and no other fields",
            ),
            (
                "source_labels: ['a-b']\ntarget_label: t",
                r#""a-b" is not a valid label name"#,
            ),
            (
                "target_label: t\nregex: '(abc'",
                "error parsing regexp: missing closing ): `^(?:(abc)$`",
            ),
            (
                "target_label: t\nregex: 'a))'",
                "error parsing regexp: unexpected ): `^(?:a)))$`",
            ),
            (
                "target_label: t\nregex: '[a'",
                "error parsing regexp: missing closing ]: `^(?:[a)$`",
            ),
            (
                "target_label: t\nregex: '*'",
                "error parsing regexp: missing argument to repetition operator: `^(?:*)$`",
            ),
            (
                "target_label: t\nregex: '\\Z'",
                "error parsing regexp: invalid escape sequence: `^(?:\\Z)$`",
            ),
            // Go's %q escapes control characters.
            (
                "target_label: \"a\\tb\"",
                r#""a\tb" is invalid 'target_label' for replace action"#,
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(error(yaml), want, "{yaml}");
        }
        // Accepted forms next to the refused ones.
        for yaml in [
            "target_label: '$1'",
            "target_label: '${1}_x'",
            "target_label: '__tmp_${name}'",
            "action: keepequal\ntarget_label: t\nregex: '(.*)'",
            "action: labelmap\nreplacement: 'x_${1}'",
            "action: labeldrop\nregex: 'a|b'",
            "action: hashmod\nmodulus: 1\ntarget_label: t",
            "action: drop",
            "action: keep\nregex: null",
        ] {
            assert!(config(yaml).unwrap().validate().is_ok(), "{yaml}");
        }
    }

    #[test]
    fn replace_with_groups() {
        let input = [("__address__", "10.0.0.1:9100"), ("job", "node")];
        let r = "source_labels: [__address__]\nregex: '(.+):(\\d+)'\ntarget_label: host\nreplacement: '$1'";
        assert_eq!(
            run(r, &input).unwrap(),
            labels(&[
                ("__address__", "10.0.0.1:9100"),
                ("host", "10.0.0.1"),
                ("job", "node")
            ])
        );
        let r = "source_labels: [__address__]\nregex: '(.+):(\\d+)'\ntarget_label: hp\nreplacement: '${2}_${1}x'";
        assert_eq!(run(r, &input).unwrap().get("hp"), Some("9100_10.0.0.1x"));
        let r = "source_labels: [__address__]\nregex: '(?P<host>.+):(?P<port>\\d+)'\n\
                 target_label: x\nreplacement: '$port/${host}'";
        assert_eq!(run(r, &input).unwrap().get("x"), Some("9100/10.0.0.1"));
        // `$1x` names group "1x", which does not exist; `$$` is a literal `$`.
        let r = "source_labels: [job]\nregex: '(.*)'\ntarget_label: x\nreplacement: 'a$1x$$b'";
        assert_eq!(run(r, &input).unwrap().get("x"), Some("a$b"));
        // `$01` is a name, not group 1; a malformed `${1` stays as text.
        let r = "source_labels: [job]\nregex: '(n)(.*)'\ntarget_label: x\nreplacement: '[$01]${1'";
        assert_eq!(run(r, &input).unwrap().get("x"), Some("[]${1"));
        // Templated target label.
        let r = "source_labels: [job]\nregex: '(.*)'\ntarget_label: 'is_${1}'\nreplacement: 'yes'";
        assert_eq!(run(r, &input).unwrap().get("is_node"), Some("yes"));
    }

    #[test]
    fn replace_edge_cases() {
        let input = [("a", "x"), ("b", "y"), ("t", "old")];
        // Joined source value with the separator.
        let r = "source_labels: [a, b, missing]\nseparator: '|'\ntarget_label: t";
        assert_eq!(run(r, &input).unwrap().get("t"), Some("x|y|"));
        // A missing source label is "": the default regex matches and `$1` is empty, which
        // deletes the target.
        let r = "source_labels: [missing]\ntarget_label: t";
        assert_eq!(run(r, &input).unwrap(), labels(&[("a", "x"), ("b", "y")]));
        // An empty replacement deletes the target.
        let r = "source_labels: [a]\ntarget_label: t\nreplacement: ''";
        assert_eq!(run(r, &input).unwrap().get("t"), None);
        // A literal replacement (no `$`).
        let r = "target_label: env\nreplacement: prod";
        assert_eq!(run(r, &input).unwrap().get("env"), Some("prod"));
        // No match: nothing happens. Regexes are anchored.
        let r = "source_labels: [a]\nregex: 'xx|'\ntarget_label: t\nreplacement: new";
        assert_eq!(run(r, &input).unwrap().get("t"), Some("old"));
        // The default `(.*)` does not match across a newline.
        let r = "source_labels: [a]\ntarget_label: t";
        assert_eq!(run(r, &[("a", "l1\nl2")]).unwrap().get("t"), None);
        assert_eq!(
            run(r, &[("a", "l1\nl2"), ("t", "v")]).unwrap().get("t"),
            Some("v")
        );
        // A target that expands to an invalid name skips the rule.
        let r = "source_labels: [a]\nregex: '(.*)'\ntarget_label: '$1'\nreplacement: v";
        assert_eq!(run(r, &[("a", "9x")]).unwrap(), labels(&[("a", "9x")]));
        assert_eq!(run(r, &[("a", "ok")]).unwrap().get("ok"), Some("v"));
        let r = "source_labels: [a]\nregex: '(.*)'\ntarget_label: '${1}'\nreplacement: v";
        assert_eq!(run(r, &[("a", "")]).unwrap(), labels(&[("a", "")]));
    }

    #[test]
    fn keep_and_drop() {
        let keep = "source_labels: [job]\nregex: 'node|api'\naction: keep";
        assert!(run(keep, &[("job", "node")]).is_some());
        assert!(run(keep, &[("job", "node2")]).is_none());
        assert!(run(keep, &[]).is_none());
        let drop = "source_labels: [__name__]\nregex: 'go_.*'\naction: drop";
        assert!(run(drop, &[("__name__", "go_goroutines")]).is_none());
        assert!(run(drop, &[("__name__", "up")]).is_some());
        // A missing label is "", which the default regex matches.
        assert!(run("source_labels: [x]\naction: drop", &[("a", "b")]).is_none());
        // A rule list stops at the first drop.
        let rules = [
            rule("target_label: a\nreplacement: set"),
            rule("source_labels: [a]\nregex: set\naction: drop"),
            rule("target_label: b\nreplacement: never"),
        ];
        assert_eq!(relabel(&labels(&[]), &rules), None);
    }

    #[test]
    fn keepequal_and_dropequal() {
        let keep = "source_labels: [__meta_port]\ntarget_label: __tmp_port\naction: keepequal";
        assert!(run(keep, &[("__meta_port", "80"), ("__tmp_port", "80")]).is_some());
        assert!(run(keep, &[("__meta_port", "80"), ("__tmp_port", "81")]).is_none());
        assert!(run(keep, &[]).is_some());
        let drop = "source_labels: [a, b]\ntarget_label: c\naction: dropequal";
        assert!(run(drop, &[("a", "1"), ("b", "2"), ("c", "1;2")]).is_none());
        assert!(run(drop, &[("a", "1"), ("b", "2"), ("c", "1")]).is_some());
    }

    #[test]
    fn hashmod() {
        // Expected values computed independently (Python's hashlib: last 8 bytes of the
        // digest, big-endian, modulo the modulus).
        let cases = [
            ("source_labels: [a]\nmodulus: 10", vec![("a", "foo")], "6"),
            (
                "source_labels: [__address__]\nmodulus: 4",
                vec![("__address__", "10.0.0.1:9100")],
                "1",
            ),
            (
                "source_labels: [a, b]\nmodulus: 7",
                vec![("a", "a"), ("b", "b")],
                "2",
            ),
            ("source_labels: [missing]\nmodulus: 1000", vec![], "958"),
            ("source_labels: [n]\nmodulus: 3", vec![("n", "node-1")], "2"),
            (
                "source_labels: [a]\nmodulus: 18446744073709551615",
                vec![("a", "__meta")],
                "4900324974304946479",
            ),
        ];
        for (yaml, input, want) in cases {
            let yaml = format!("{yaml}\ntarget_label: __tmp_hash\naction: hashmod");
            assert_eq!(
                run(&yaml, &input).unwrap().get("__tmp_hash"),
                Some(want),
                "{yaml}"
            );
        }
    }

    #[test]
    fn labelmap() {
        let input = [
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_label_tier", "front"),
            ("__meta_kubernetes_pod_name", "web-1"),
            ("job", "k8s"),
        ];
        let r = "action: labelmap\nregex: '__meta_kubernetes_pod_label_(.+)'";
        let mut want = labels(&input);
        want.set("app", "web");
        want.set("tier", "front");
        assert_eq!(run(r, &input).unwrap(), want);
        let r =
            "action: labelmap\nregex: '__meta_kubernetes_pod_label_(.+)'\nreplacement: 'k8s_${1}'";
        let out = run(r, &input).unwrap();
        assert_eq!(out.get("k8s_app"), Some("web"));
        assert_eq!(out.get("k8s_tier"), Some("front"));
        assert_eq!(out.len(), 6);
        // Name groups work too; without a match nothing changes.
        let r = "action: labelmap\nregex: '__meta_(?P<rest>.*_name)'\nreplacement: '$rest'";
        assert_eq!(
            run(r, &input).unwrap().get("kubernetes_pod_name"),
            Some("web-1")
        );
        let r = "action: labelmap\nregex: 'nothing_(.*)'";
        assert_eq!(run(r, &input).unwrap(), labels(&input));
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        let input = [("__name__", "up"), ("a", "1"), ("b", "2"), ("ab", "3")];
        let r = "action: labeldrop\nregex: 'a|b'";
        assert_eq!(
            run(r, &input).unwrap(),
            labels(&[("__name__", "up"), ("ab", "3")])
        );
        let r = "action: labelkeep\nregex: '__name__|a.*'";
        assert_eq!(
            run(r, &input).unwrap(),
            labels(&[("__name__", "up"), ("a", "1"), ("ab", "3")])
        );
    }

    #[test]
    fn lowercase_and_uppercase() {
        let r = "source_labels: [a, b]\ntarget_label: t\naction: lowercase";
        assert_eq!(
            run(r, &[("a", "FoO"), ("b", "ΣΑΣ")]).unwrap().get("t"),
            Some("foo;σασ")
        );
        let r = "source_labels: [a]\ntarget_label: a\naction: uppercase";
        assert_eq!(
            run(r, &[("a", "prod-eu")]).unwrap().get("a"),
            Some("PROD-EU")
        );
        // Go maps character by character with the simple mappings.
        assert_eq!(run(r, &[("a", "straße")]).unwrap().get("a"), Some("STRAßE"));
        assert_eq!(
            run(r, &[("a", "\u{1f80}")]).unwrap().get("a"),
            Some("\u{1f88}")
        );
        let r = "source_labels: [a]\ntarget_label: t\naction: lowercase";
        assert_eq!(run(r, &[("a", "İ")]).unwrap().get("t"), Some("i"));
        // An empty result deletes the target.
        assert_eq!(run(r, &[("t", "x")]).unwrap(), labels(&[]));
    }

    #[test]
    fn go_regex_meaning() {
        let matches = |pattern: &str, value: &str| {
            let yaml = format!("source_labels: [a]\nregex: '{pattern}'\naction: keep");
            run(&yaml, &[("a", value)]).is_some()
        };
        // Perl classes are ASCII in Go.
        assert!(matches(r"\d+", "123"));
        assert!(!matches(r"\d+", "١٢٣"));
        assert!(!matches(r"\w+", "é"));
        assert!(matches(r"[\w.]+", "a.b"));
        assert!(!matches(r"[\d]", "٣"));
        assert!(matches(r"[^\D]", "7"));
        assert!(!matches(r"\s", "\u{a0}"));
        assert!(matches(r"a\bé", "aé"));
        assert!(matches("[+--]+", "+,-"));
        assert!(matches("[--/]+", "-./"));
        // Unicode classes and hex escapes still work.
        assert!(matches(r"\pL+", "é"));
        assert!(matches(r"\p{Greek}+", "αβ"));
        assert!(matches(r"\x{41}{2}", "AA"));
        // A `{` that starts no repetition is a literal.
        assert!(matches("a{", "a{"));
        assert!(matches("a{x}", "a{x}"));
        assert!(matches("a{,2}", "a{,2}"));
        assert!(matches("a{2}", "aa"));
        assert!(matches("a{1,}", "aaa"));
        // Inside a class, `[` and `&&` are plain characters.
        assert!(matches("[[]", "["));
        assert!(matches("[a&&b]+", "a&b"));
        assert!(matches("[[:digit:]x]+", "1x"));
        assert!(matches("[]a]+", "]a"));
        // `\Q…\E` quotes.
        assert!(matches(r"\Q.*\E", ".*"));
        assert!(!matches(r"\Q.*\E", "ab"));
        // Anchoring and alternation: the alternation stays inside the anchors.
        assert!(!matches("foo", "foobar"));
        assert!(!matches("a|b", "ab"));
        assert!(matches("(?i)FOO", "foo"));
    }

    #[test]
    fn unchanged_sets_are_not_copied() {
        let input = labels(&[("job", "node"), ("instance", "h:1")]);
        let rules = compile_all(&[
            config("source_labels: [job]\ntarget_label: job").unwrap(),
            config("source_labels: [job]\nregex: node\naction: keep").unwrap(),
            config("action: labeldrop\nregex: '__meta_.*'").unwrap(),
            config("action: labelmap\nregex: '__meta_(.*)'").unwrap(),
            config("source_labels: [job]\ntarget_label: job\naction: lowercase").unwrap(),
        ])
        .unwrap();
        let out = relabel_cow(&input, &rules).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        let rules = [rule("target_label: env\nreplacement: prod")];
        let out = relabel_cow(&input, &rules).unwrap();
        assert!(matches!(out, Cow::Owned(_)));
        assert_eq!(out.get("env"), Some("prod"));

        let mut owned = input.clone();
        assert!(relabel_in_place(&mut owned, &rules));
        assert_eq!(owned.get("env"), Some("prod"));
        let drop = [rule("action: drop")];
        assert!(!relabel_in_place(&mut owned, &drop));
    }

    #[test]
    fn labels_type() {
        let mut l = Labels::from_pairs([("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(l.as_slice().len(), 2);
        assert_eq!(l.get("b"), Some("3"));
        l.set("c", "4");
        l.set("a", "");
        assert_eq!(l.iter().collect::<Vec<_>>(), [("b", "3"), ("c", "4")]);
        assert_eq!(l.delete("b"), Some("3".to_string()));
        assert_eq!(l.delete("b"), None);
        let mut p = Labels::new();
        for (n, v) in [("a", "1"), ("c", "3"), ("b", "2"), ("c", "4"), ("d", "")] {
            p.push(n.to_string(), v.to_string());
        }
        assert_eq!(p, Labels::from_pairs([("a", "1"), ("b", "2"), ("c", "4")]));
        assert!(is_valid_label_name("_a9") && !is_valid_label_name("9a"));
        assert!(!is_valid_label_name("") && !is_valid_label_name("a.b"));
    }

    #[test]
    fn odd_input_never_panics() {
        // Patterns, templates and values built from syntax characters, deterministically.
        const ALPHABET: [&str; 24] = [
            "\\", "[", "]", "^", "-", "{", "}", ",", "1", "$", "(", ")", "?", "P<", ">", ":", "Q",
            "E", "p", "x", "é", "\n", "*", "a",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        for _ in 0..3000 {
            let len = next(10);
            let text: String = (0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
            let _ = go_quote(&text);
            let _ = is_valid_name_template(&text);
            if let Ok(regex) = compile_go_regex(&text) {
                let template = Template::compile(&text, &regex);
                if let Some(caps) = regex.captures(&text) {
                    let _ = template.expand(&Groups::Captures(caps));
                }
            }
            let c = RelabelConfig {
                source_labels: vec!["a".into()],
                target_label: "t".into(),
                regex: text.clone(),
                replacement: text.clone(),
                ..RelabelConfig::default()
            };
            if let Ok(rule) = c.compile() {
                let _ = relabel(&labels(&[("a", &text)]), &[rule]);
            }
        }
    }

    #[test]
    fn name_templates() {
        for ok in [
            "a",
            "_",
            "a$1",
            "$1",
            "${1}x",
            "$name_b",
            "x${a}${b}y",
            "$é",
        ] {
            assert_eq!(is_valid_name_template(ok), !ok.contains('é'), "{ok}");
        }
        for bad in ["", "1a", "$", "${}", "${a", "a-$1", "$$", "a b"] {
            assert!(!is_valid_name_template(bad), "{bad}");
        }
        // Template references read Unicode letters in names, as Go does.
        let re = compile_go_regex("(?P<é>x)").unwrap();
        let t = Template::compile("$é!", &re);
        assert_eq!(t.pieces.len(), 2);
        assert_eq!(go_quote("a\u{1}\u{a0}\"é"), r#""a\x01\u00a0\"é""#);
    }
}
