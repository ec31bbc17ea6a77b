//! The editors and converters (upstream's `ottlfuncs`, plus the metric functions of the
//! transform processor and the filter processor's datapoint checks).

use std::borrow::Cow;

use regex::Regex;

use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::metrics::{metric, AggregationTemporality, Gauge, Sum};

use crate::ast::{Call, Expr, Pos};
use crate::compile::{cerr, deepen, resolve_keys, CompileError, CompiledPath, Compiler, Getter};
use crate::context::{
    navigate, point_attributes, point_count, point_ref, ContextKind, Slot, TransformContext,
};
use crate::value::{compare, json_to_any, Value};
use crate::EvalError;

/// Binds a call's arguments to parameter names: positional first, then named ones.
struct Bound<'c> {
    call: &'c Call,
    slots: Vec<Option<(&'c Expr, Pos)>>,
}

fn bind<'c>(call: &'c Call, params: &[&str], required: usize) -> Result<Bound<'c>, CompileError> {
    let mut slots: Vec<Option<(&Expr, Pos)>> = vec![None; params.len()];
    let mut positional = 0;
    for arg in &call.args {
        let idx = match &arg.name {
            None => {
                if positional >= params.len() {
                    return cerr(
                        arg.pos,
                        format!(
                            "too many arguments to {}: it takes {} ({})",
                            call.name,
                            params.len(),
                            params.join(", ")
                        ),
                    );
                }
                positional += 1;
                positional - 1
            }
            Some(name) => match params.iter().position(|p| p == name) {
                Some(i) => i,
                None => {
                    return cerr(
                        arg.pos,
                        format!(
                            "{} has no argument named \"{name}\" (its arguments: {})",
                            call.name,
                            params.join(", ")
                        ),
                    )
                }
            },
        };
        if slots[idx].is_some() {
            return cerr(
                arg.pos,
                format!(
                    "the argument \"{}\" of {} is given twice",
                    params[idx], call.name
                ),
            );
        }
        slots[idx] = Some((&arg.value, arg.pos));
    }
    for (i, p) in params.iter().enumerate().take(required) {
        if slots[i].is_none() {
            return cerr(
                call.pos,
                format!(
                    "{} needs the argument \"{p}\" ({} required: {})",
                    call.name,
                    required,
                    params[..required].join(", ")
                ),
            );
        }
    }
    Ok(Bound { call, slots })
}

impl<'c> Bound<'c> {
    fn expr(&self, i: usize) -> Option<(&'c Expr, Pos)> {
        self.slots[i]
    }

    fn getter(&self, c: &Compiler, i: usize) -> Result<Getter, CompileError> {
        match self.expr(i) {
            Some((e, _)) => c.getter(e),
            None => Ok(Getter::Literal(Value::Nil)),
        }
    }

    fn opt_getter(&self, c: &Compiler, i: usize) -> Result<Option<Getter>, CompileError> {
        self.expr(i).map(|(e, _)| c.getter(e)).transpose()
    }

    fn path(&self, c: &Compiler, i: usize) -> Result<CompiledPath, CompileError> {
        match self.expr(i) {
            Some((Expr::Path(p), _)) => c.path(p),
            Some((_, pos)) => cerr(
                pos,
                format!(
                    "the first argument of {} must be a path to a field",
                    self.call.name
                ),
            ),
            None => cerr(self.call.pos, "a target path is needed"),
        }
    }

    fn string(&self, i: usize, what: &str) -> Result<Option<String>, CompileError> {
        match self.expr(i) {
            None => Ok(None),
            Some((Expr::String(s), _)) => Ok(Some(s.clone())),
            Some((_, pos)) => cerr(
                pos,
                format!("{} of {} must be a string literal", what, self.call.name),
            ),
        }
    }

    fn int(&self, i: usize, what: &str) -> Result<Option<i64>, CompileError> {
        match self.expr(i) {
            None => Ok(None),
            Some((Expr::Int(n), _)) => Ok(Some(*n)),
            Some((_, pos)) => cerr(
                pos,
                format!("{} of {} must be an integer literal", what, self.call.name),
            ),
        }
    }

    fn bool(&self, i: usize, what: &str) -> Result<Option<bool>, CompileError> {
        match self.expr(i) {
            None => Ok(None),
            Some((Expr::Bool(b), _)) => Ok(Some(*b)),
            Some((_, pos)) => cerr(
                pos,
                format!("{} of {} must be true or false", what, self.call.name),
            ),
        }
    }

    fn regex(&self, i: usize) -> Result<Regex, CompileError> {
        let (e, pos) = self.expr(i).ok_or(CompileError {
            message: "a pattern is needed".to_string(),
            pos: self.call.pos,
        })?;
        let Expr::String(s) = e else {
            return cerr(
                pos,
                format!("the pattern of {} must be a string literal", self.call.name),
            );
        };
        Regex::new(s).map_err(|e| CompileError {
            message: format!(
                "the regex pattern supplied to {} is not a valid pattern: {e}",
                self.call.name
            ),
            pos,
        })
    }

    fn strings(&self, i: usize, what: &str) -> Result<Vec<String>, CompileError> {
        match self.expr(i) {
            None => Ok(Vec::new()),
            Some((Expr::List(items), pos)) => items
                .iter()
                .map(|e| match e {
                    Expr::String(s) => Ok(s.clone()),
                    _ => cerr(
                        pos,
                        format!("{what} of {} must be a list of strings", self.call.name),
                    ),
                })
                .collect(),
            Some((_, pos)) => cerr(
                pos,
                format!("{what} of {} must be a list of strings", self.call.name),
            ),
        }
    }

    fn hash_function(&self, i: usize) -> Result<Option<HashFn>, CompileError> {
        match self.expr(i) {
            None => Ok(None),
            Some((Expr::Enum(name, pos), _)) => match name.as_str() {
                "SHA1" => Ok(Some(HashFn::Sha1)),
                "SHA256" => Ok(Some(HashFn::Sha256)),
                "SHA512" => Ok(Some(HashFn::Sha512)),
                "MD5" => Ok(Some(HashFn::Md5)),
                other => cerr(
                    *pos,
                    format!("{other} cannot be used as the function of {}; use SHA1, SHA256, SHA512 or MD5", self.call.name),
                ),
            },
            Some((_, pos)) => cerr(
                pos,
                format!("the function of {} is a converter name such as SHA256", self.call.name),
            ),
        }
    }

    fn format(&self, i: usize) -> Result<Option<String>, CompileError> {
        let Some(f) = self.string(i, "the replacement format")? else {
            return Ok(None);
        };
        if f.matches("%s").count() != 1 || f.replace("%s", "").contains('%') {
            return cerr(
                self.expr(i).map_or(self.call.pos, |(_, p)| p),
                "the replacement format must contain exactly one %s and no other format specifier",
            );
        }
        Ok(Some(f))
    }
}

#[derive(Debug, Clone, Copy)]
pub enum HashFn {
    Sha1,
    Sha256,
    Sha512,
    Md5,
}

impl HashFn {
    fn apply(self, s: &str) -> String {
        use sha2::Digest;
        match self {
            HashFn::Sha1 => hex::encode(sha1::Sha1::digest(s.as_bytes())),
            HashFn::Sha256 => hex::encode(sha2::Sha256::digest(s.as_bytes())),
            HashFn::Sha512 => hex::encode(sha2::Sha512::digest(s.as_bytes())),
            HashFn::Md5 => hex::encode(md5::Md5::digest(s.as_bytes())),
        }
    }
}

/// The replacement of a `replace_*` editor: optionally hashed, then formatted.
#[derive(Debug)]
pub struct Replacement {
    text: Getter,
    function: Option<HashFn>,
    format: Option<String>,
}

impl Replacement {
    fn compile(b: &Bound, c: &Compiler, at: usize) -> Result<Replacement, CompileError> {
        Ok(Replacement {
            text: b.getter(c, at)?,
            function: b.hash_function(at + 1)?,
            format: b.format(at + 2)?,
        })
    }

    fn finish(&self, expanded: String) -> String {
        let hashed = match self.function {
            Some(f) => f.apply(&expanded),
            None => expanded,
        };
        match &self.format {
            Some(f) => f.replacen("%s", &hashed, 1),
            None => hashed,
        }
    }

    fn template<'a>(&'a self, ctx: &'a TransformContext) -> Result<Cow<'a, str>, EvalError> {
        match self.text.get(ctx)? {
            Value::Str(s) => Ok(s),
            other => Err(EvalError(format!(
                "the replacement must be a string, got {}",
                other.type_name()
            ))),
        }
    }

    /// Replaces every match of `re` in `s`; `None` when nothing matched.
    fn regex_replace(&self, re: &Regex, s: &str, template: &str) -> Option<String> {
        if !re.is_match(s) {
            return None;
        }
        if self.function.is_none() && self.format.is_none() {
            return Some(re.replace_all(s, template).into_owned());
        }
        Some(
            re.replace_all(s, |caps: &regex::Captures| {
                let mut expanded = String::new();
                caps.expand(template, &mut expanded);
                self.finish(expanded)
            })
            .into_owned(),
        )
    }
}

/// filepath.Match's glob syntax as a regex over the whole string.
fn glob_regex(glob: &str, pos: Pos) -> Result<Regex, CompileError> {
    let mut re = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => match chars.next() {
                Some(n) => re.push_str(&regex::escape(&n.to_string())),
                None => return cerr(pos, "syntax error in pattern: trailing backslash"),
            },
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == ']' {
                        closed = true;
                        break;
                    }
                    if n == '\\' || n == '[' {
                        re.push('\\');
                    }
                    re.push(n);
                }
                if !closed {
                    return cerr(pos, "syntax error in pattern: unclosed [");
                }
                re.push(']');
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| CompileError {
        message: format!("syntax error in pattern: {e}"),
        pos,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Insert,
    Update,
    Upsert,
}

#[derive(Debug)]
pub enum Editor {
    Set {
        target: CompiledPath,
        value: Getter,
    },
    DeleteKey {
        target: CompiledPath,
        key: Getter,
    },
    DeleteMatchingKeys {
        target: CompiledPath,
        pattern: Regex,
    },
    KeepKeys {
        target: CompiledPath,
        keys: Vec<String>,
    },
    KeepMatchingKeys {
        target: CompiledPath,
        pattern: Regex,
    },
    Limit {
        target: CompiledPath,
        limit: usize,
        priority: Vec<String>,
    },
    TruncateAll {
        target: CompiledPath,
        limit: usize,
    },
    ReplacePattern {
        target: CompiledPath,
        pattern: Regex,
        replacement: Replacement,
    },
    ReplaceAllPatterns {
        target: CompiledPath,
        keys: bool,
        pattern: Regex,
        replacement: Replacement,
    },
    ReplaceMatch {
        target: CompiledPath,
        pattern: Regex,
        replacement: Replacement,
    },
    ReplaceAllMatches {
        target: CompiledPath,
        pattern: Regex,
        replacement: Replacement,
    },
    MergeMaps {
        target: CompiledPath,
        source: Getter,
        strategy: Strategy,
    },
    Flatten {
        target: CompiledPath,
        prefix: Option<String>,
        depth: Option<usize>,
    },
    Append {
        target: CompiledPath,
        value: Option<Getter>,
        values: Option<Getter>,
    },
    ConvertSumToGauge,
    ConvertGaugeToSum {
        temporality: i32,
        monotonic: bool,
    },
}

fn non_negative(n: Option<i64>, what: &str, pos: Pos) -> Result<usize, CompileError> {
    match n {
        Some(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(n) => cerr(pos, format!("invalid {what} {n}: it must not be negative")),
        None => cerr(pos, format!("{what} is needed")),
    }
}

pub(crate) fn compile_editor(c: &Compiler, call: &Call) -> Result<Editor, CompileError> {
    let pos = call.pos;
    Ok(match call.name.as_str() {
        "set" => {
            let b = bind(call, &["target", "value"], 2)?;
            Editor::Set {
                target: b.path(c, 0)?,
                value: b.getter(c, 1)?,
            }
        }
        "delete_key" => {
            let b = bind(call, &["target", "key"], 2)?;
            Editor::DeleteKey {
                target: b.path(c, 0)?,
                key: b.getter(c, 1)?,
            }
        }
        "delete_matching_keys" => {
            let b = bind(call, &["target", "pattern"], 2)?;
            Editor::DeleteMatchingKeys {
                target: b.path(c, 0)?,
                pattern: b.regex(1)?,
            }
        }
        "keep_keys" => {
            let b = bind(call, &["target", "keys"], 2)?;
            Editor::KeepKeys {
                target: b.path(c, 0)?,
                keys: b.strings(1, "keys")?,
            }
        }
        "keep_matching_keys" => {
            let b = bind(call, &["target", "pattern"], 2)?;
            Editor::KeepMatchingKeys {
                target: b.path(c, 0)?,
                pattern: b.regex(1)?,
            }
        }
        "limit" => {
            let b = bind(call, &["target", "limit", "priority_keys"], 2)?;
            let limit = non_negative(b.int(1, "the limit")?, "limit", pos)?;
            let priority = b.strings(2, "priority_keys")?;
            if limit > 0 && priority.len() > limit {
                return cerr(
                    pos,
                    format!(
                        "number of priority keys ({}) cannot be greater than the limit ({limit})",
                        priority.len()
                    ),
                );
            }
            Editor::Limit {
                target: b.path(c, 0)?,
                limit,
                priority,
            }
        }
        "truncate_all" => {
            let b = bind(call, &["target", "limit"], 2)?;
            Editor::TruncateAll {
                target: b.path(c, 0)?,
                limit: non_negative(b.int(1, "the limit")?, "limit", pos)?,
            }
        }
        "replace_pattern" => {
            let b = bind(
                call,
                &["target", "regex", "replacement", "function", "replacement_format"],
                3,
            )?;
            Editor::ReplacePattern {
                target: b.path(c, 0)?,
                pattern: b.regex(1)?,
                replacement: Replacement::compile(&b, c, 2)?,
            }
        }
        "replace_all_patterns" => {
            let b = bind(
                call,
                &[
                    "target",
                    "mode",
                    "regex",
                    "replacement",
                    "function",
                    "replacement_format",
                ],
                4,
            )?;
            let keys = match b.string(1, "the mode")?.as_deref() {
                Some("key") => true,
                Some("value") => false,
                other => {
                    return cerr(
                        b.expr(1).map_or(pos, |(_, p)| p),
                        format!("invalid mode {other:?}, must be \"key\" or \"value\""),
                    )
                }
            };
            Editor::ReplaceAllPatterns {
                target: b.path(c, 0)?,
                keys,
                pattern: b.regex(2)?,
                replacement: Replacement::compile(&b, c, 3)?,
            }
        }
        "replace_match" | "replace_all_matches" => {
            let b = bind(
                call,
                &["target", "pattern", "replacement", "function", "replacement_format"],
                3,
            )?;
            let glob = b.string(1, "the pattern")?.unwrap_or_default();
            let pattern = glob_regex(&glob, b.expr(1).map_or(pos, |(_, p)| p))?;
            let target = b.path(c, 0)?;
            let replacement = Replacement::compile(&b, c, 2)?;
            if call.name == "replace_match" {
                Editor::ReplaceMatch {
                    target,
                    pattern,
                    replacement,
                }
            } else {
                Editor::ReplaceAllMatches {
                    target,
                    pattern,
                    replacement,
                }
            }
        }
        "merge_maps" => {
            let b = bind(call, &["target", "source", "strategy"], 3)?;
            let strategy = match b.string(2, "the strategy")?.as_deref() {
                Some("insert") => Strategy::Insert,
                Some("update") => Strategy::Update,
                Some("upsert") => Strategy::Upsert,
                other => {
                    return cerr(
                        b.expr(2).map_or(pos, |(_, p)| p),
                        format!("invalid value for strategy {other:?}, must be \"insert\", \"update\" or \"upsert\""),
                    )
                }
            };
            Editor::MergeMaps {
                target: b.path(c, 0)?,
                source: b.getter(c, 1)?,
                strategy,
            }
        }
        "flatten" => {
            let b = bind(call, &["target", "prefix", "depth", "resolve_conflicts"], 1)?;
            let depth = match b.int(2, "depth")? {
                None => None,
                Some(d) => Some(non_negative(Some(d), "depth", pos)?),
            };
            if b.bool(3, "resolve_conflicts")? == Some(true) {
                return cerr(pos, "flatten: resolve_conflicts is not supported yet");
            }
            Editor::Flatten {
                target: b.path(c, 0)?,
                prefix: b.string(1, "the prefix")?,
                depth,
            }
        }
        "append" => {
            let b = bind(call, &["target", "value", "values"], 1)?;
            let value = b.opt_getter(c, 1)?;
            let values = b.opt_getter(c, 2)?;
            if value.is_none() && values.is_none() {
                return cerr(pos, "at least one of the optional arguments ('value' or 'values') must be provided");
            }
            Editor::Append {
                target: b.path(c, 0)?,
                value,
                values,
            }
        }
        "convert_sum_to_gauge" => {
            bind(call, &[], 0)?;
            metric_only(c, call)?;
            Editor::ConvertSumToGauge
        }
        "convert_gauge_to_sum" => {
            let b = bind(call, &["aggregation_temporality", "is_monotonic"], 2)?;
            metric_only(c, call)?;
            let temporality = match b.string(0, "the aggregation temporality")?.as_deref() {
                Some("cumulative") => AggregationTemporality::Cumulative as i32,
                Some("delta") => AggregationTemporality::Delta as i32,
                other => {
                    return cerr(
                        b.expr(0).map_or(pos, |(_, p)| p),
                        format!("unknown aggregation temporality {other:?}: use \"cumulative\" or \"delta\""),
                    )
                }
            };
            Editor::ConvertGaugeToSum {
                temporality,
                monotonic: b.bool(1, "is_monotonic")?.unwrap_or(false),
            }
        }
        name if name.chars().next().is_some_and(char::is_uppercase) => {
            return cerr(
                pos,
                format!("{name} is a converter; a statement starts with an editor such as set"),
            )
        }
        other => {
            return cerr(
                pos,
                format!("undefined function \"{other}\" (editors: set, delete_key, delete_matching_keys, keep_keys, keep_matching_keys, limit, truncate_all, replace_pattern, replace_all_patterns, replace_match, replace_all_matches, merge_maps, flatten, append, convert_sum_to_gauge, convert_gauge_to_sum)"),
            )
        }
    })
}

fn metric_only(c: &Compiler, call: &Call) -> Result<(), CompileError> {
    match c.context {
        Some(ContextKind::Metric) | None => Ok(()),
        Some(other) => cerr(
            call.pos,
            format!(
                "{} runs in the metric context, not {}",
                call.name,
                other.name()
            ),
        ),
    }
}

impl Editor {
    /// The deepest context the editor reads or writes, for context inference.
    pub(crate) fn deepest(&self, acc: &mut Option<ContextKind>) {
        match self {
            Editor::Set { target, value } => {
                deepen(acc, target.level);
                value.deepest(acc);
            }
            Editor::DeleteKey { target, key } => {
                deepen(acc, target.level);
                key.deepest(acc);
            }
            Editor::MergeMaps { target, source, .. } => {
                deepen(acc, target.level);
                source.deepest(acc);
            }
            Editor::Append {
                target,
                value,
                values,
            } => {
                deepen(acc, target.level);
                for g in value.iter().chain(values.iter()) {
                    g.deepest(acc);
                }
            }
            Editor::DeleteMatchingKeys { target, .. }
            | Editor::KeepKeys { target, .. }
            | Editor::KeepMatchingKeys { target, .. }
            | Editor::Limit { target, .. }
            | Editor::TruncateAll { target, .. }
            | Editor::Flatten { target, .. } => deepen(acc, target.level),
            Editor::ReplacePattern {
                target,
                replacement,
                ..
            }
            | Editor::ReplaceAllPatterns {
                target,
                replacement,
                ..
            }
            | Editor::ReplaceMatch {
                target,
                replacement,
                ..
            }
            | Editor::ReplaceAllMatches {
                target,
                replacement,
                ..
            } => {
                deepen(acc, target.level);
                replacement.text.deepest(acc);
            }
            Editor::ConvertSumToGauge | Editor::ConvertGaugeToSum { .. } => {
                deepen(acc, ContextKind::Metric)
            }
        }
    }

    pub fn exec(&self, ctx: &mut TransformContext) -> Result<(), EvalError> {
        match self {
            Editor::Set { target, value } => {
                let v = value.get(ctx)?.into_owned();
                if v.is_nil() {
                    return Ok(());
                }
                set_path(ctx, target, v)
            }
            Editor::DeleteKey { target, key } => {
                let key = match key.get(ctx)? {
                    Value::Str(s) => s.into_owned(),
                    other => {
                        return Err(EvalError(format!(
                            "the key must be a string, got {}",
                            other.type_name()
                        )))
                    }
                };
                let map = map_mut(ctx, target)?;
                map.retain(|kv| kv.key != key);
                Ok(())
            }
            Editor::DeleteMatchingKeys { target, pattern } => {
                map_mut(ctx, target)?.retain(|kv| !pattern.is_match(&kv.key));
                Ok(())
            }
            Editor::KeepKeys { target, keys } => {
                map_mut(ctx, target)?.retain(|kv| keys.contains(&kv.key));
                Ok(())
            }
            Editor::KeepMatchingKeys { target, pattern } => {
                map_mut(ctx, target)?.retain(|kv| pattern.is_match(&kv.key));
                Ok(())
            }
            Editor::Limit {
                target,
                limit,
                priority,
            } => {
                let map = map_mut(ctx, target)?;
                if map.len() <= *limit {
                    return Ok(());
                }
                // Priority keys first, then the others in their order; the rest go.
                let mut kept = 0;
                let mut keep = vec![false; map.len()];
                for (i, kv) in map.iter().enumerate() {
                    if kept < *limit && priority.contains(&kv.key) {
                        keep[i] = true;
                        kept += 1;
                    }
                }
                for (i, flag) in keep.iter_mut().enumerate() {
                    if kept >= *limit {
                        break;
                    }
                    if !*flag && !priority.contains(&map[i].key) {
                        *flag = true;
                        kept += 1;
                    }
                }
                let mut i = 0;
                map.retain(|_| {
                    i += 1;
                    keep[i - 1]
                });
                Ok(())
            }
            Editor::TruncateAll { target, limit } => {
                for kv in map_mut(ctx, target)?.iter_mut() {
                    if let Some(AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    }) = &mut kv.value
                    {
                        truncate_chars(s, *limit);
                    }
                }
                Ok(())
            }
            Editor::ReplacePattern {
                target,
                pattern,
                replacement,
            } => {
                let new = match target.get(ctx)? {
                    Value::Str(current) => {
                        let template = replacement.template(ctx)?;
                        replacement.regex_replace(pattern, &current, &template)
                    }
                    _ => None,
                };
                if let Some(new) = new {
                    set_path(ctx, target, Value::Str(Cow::Owned(new)))?;
                }
                Ok(())
            }
            Editor::ReplaceAllPatterns {
                target,
                keys,
                pattern,
                replacement,
            } => {
                let template = replacement.template(ctx)?.into_owned();
                let map = map_mut(ctx, target)?;
                for kv in map.iter_mut() {
                    if *keys {
                        if let Some(new) = replacement.regex_replace(pattern, &kv.key, &template) {
                            kv.key = new;
                        }
                    } else if let Some(AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    }) = &mut kv.value
                    {
                        if let Some(new) = replacement.regex_replace(pattern, s, &template) {
                            *s = new;
                        }
                    }
                }
                Ok(())
            }
            Editor::ReplaceMatch {
                target,
                pattern,
                replacement,
            } => {
                let matched = match target.get(ctx)? {
                    Value::Str(s) => pattern.is_match(&s),
                    _ => false,
                };
                if matched {
                    let new = replacement.finish(replacement.template(ctx)?.into_owned());
                    set_path(ctx, target, Value::Str(Cow::Owned(new)))?;
                }
                Ok(())
            }
            Editor::ReplaceAllMatches {
                target,
                pattern,
                replacement,
            } => {
                let new = replacement.finish(replacement.template(ctx)?.into_owned());
                for kv in map_mut(ctx, target)?.iter_mut() {
                    if let Some(AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    }) = &mut kv.value
                    {
                        if pattern.is_match(s) {
                            s.clone_from(&new);
                        }
                    }
                }
                Ok(())
            }
            Editor::MergeMaps {
                target,
                source,
                strategy,
            } => {
                let source = match source.get(ctx)? {
                    Value::Map(m) => m.into_owned(),
                    other => {
                        return Err(EvalError(format!(
                            "expected a map as the source of merge_maps, got {}",
                            other.type_name()
                        )))
                    }
                };
                let map = map_mut(ctx, target)?;
                for kv in source {
                    match map.iter_mut().find(|t| t.key == kv.key) {
                        Some(existing) if *strategy != Strategy::Insert => {
                            existing.value = kv.value
                        }
                        Some(_) => {}
                        None if *strategy != Strategy::Update => map.push(kv),
                        None => {}
                    }
                }
                Ok(())
            }
            Editor::Flatten {
                target,
                prefix,
                depth,
            } => {
                let map = map_mut(ctx, target)?;
                let old = std::mem::take(map);
                let mut out = Vec::with_capacity(old.len());
                flatten_into(
                    &mut out,
                    prefix.as_deref().unwrap_or(""),
                    old,
                    depth.unwrap_or(usize::MAX),
                    0,
                );
                *map = out;
                Ok(())
            }
            Editor::Append {
                target,
                value,
                values,
            } => {
                let mut new: Vec<AnyValue> = Vec::new();
                if let Some(v) = value {
                    if let Some(any) = v.get(ctx)?.into_any() {
                        new.push(any);
                    }
                }
                if let Some(vs) = values {
                    match vs.get(ctx)? {
                        Value::List(l) => new.extend(l.into_owned()),
                        Value::Nil => {}
                        other => new.extend(other.into_any()),
                    }
                }
                let existing = target.get(ctx)?.into_owned();
                let mut list: Vec<AnyValue> = match existing {
                    Value::Nil => Vec::new(),
                    Value::List(l) => l.into_owned(),
                    other => other.into_any().into_iter().collect(),
                };
                list.extend(new);
                set_path(ctx, target, Value::List(Cow::Owned(list)))
            }
            Editor::ConvertSumToGauge => {
                let m = ctx.metric_mut()?;
                if let Some(metric::Data::Sum(s)) = m.data.take() {
                    m.data = Some(metric::Data::Gauge(Gauge {
                        data_points: s.data_points,
                    }));
                } else {
                    // Not a sum: left as it is.
                    if let Some(d) = m.data.take() {
                        m.data = Some(d);
                    }
                }
                Ok(())
            }
            Editor::ConvertGaugeToSum {
                temporality,
                monotonic,
            } => {
                let m = ctx.metric_mut()?;
                match m.data.take() {
                    Some(metric::Data::Gauge(g)) => {
                        m.data = Some(metric::Data::Sum(Sum {
                            data_points: g.data_points,
                            aggregation_temporality: *temporality,
                            is_monotonic: *monotonic,
                        }))
                    }
                    other => m.data = other,
                }
                Ok(())
            }
        }
    }
}

fn truncate_chars(s: &mut String, limit: usize) {
    if s.len() <= limit {
        return;
    }
    // Upstream truncates bytes, then drops a broken last character.
    let mut cut = limit;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
}

fn flatten_into(
    out: &mut Vec<KeyValue>,
    prefix: &str,
    map: Vec<KeyValue>,
    depth: usize,
    level: usize,
) {
    for kv in map {
        let key = if prefix.is_empty() {
            kv.key
        } else {
            format!("{prefix}.{}", kv.key)
        };
        match kv.value {
            Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(inner)),
            }) if level < depth => flatten_into(out, &key, inner.values, depth, level + 1),
            Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(arr)),
            }) if level < depth => {
                let items = arr
                    .values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| KeyValue {
                        key: i.to_string(),
                        value: Some(v),
                        ..Default::default()
                    })
                    .collect();
                flatten_into(out, &key, items, depth, level + 1)
            }
            value => {
                out.retain(|o: &KeyValue| o.key != key);
                out.push(KeyValue {
                    key,
                    value,
                    ..Default::default()
                });
            }
        }
    }
}

/// Writes a value to a path, creating maps along keyed paths.
pub(crate) fn set_path(
    ctx: &mut TransformContext,
    p: &CompiledPath,
    v: Value,
) -> Result<(), EvalError> {
    if p.keys.is_empty() {
        return ctx.set(p.field, v);
    }
    let keys = resolve_keys(&p.keys, ctx)?;
    let slot = ctx.slot_mut(p.field)?;
    if let Some(target) = navigate(slot, &keys, true)? {
        *target = v.into_any().unwrap_or_default();
    }
    Ok(())
}

/// The attribute map a path names, for editors that change maps in place.
pub(crate) fn map_mut<'c>(
    ctx: &'c mut TransformContext,
    p: &CompiledPath,
) -> Result<&'c mut Vec<KeyValue>, EvalError> {
    let keys = resolve_keys(&p.keys, ctx)?;
    let slot = ctx.slot_mut(p.field)?;
    let any = match (slot, keys.is_empty()) {
        (Slot::Map(m), true) => return Ok(m),
        (slot, _) => navigate(slot, &keys, false)?,
    };
    match any {
        Some(AnyValue {
            value: Some(any_value::Value::KvlistValue(kv)),
        }) => Ok(&mut kv.values),
        Some(other) => Err(EvalError(format!(
            "expected a map but got {}",
            Value::from_any(other).type_name()
        ))),
        None => Err(EvalError(format!(
            "expected a map but got nil at {}",
            p.text
        ))),
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Case {
    Lower,
    Upper,
    Snake,
    Camel,
}

#[derive(Debug)]
pub enum Converter {
    Concat(Vec<Getter>, Getter),
    IsMatch(Getter, Regex),
    Int(Getter),
    Double(Getter),
    String(Getter),
    Bool(Getter),
    Split(Getter, String),
    Substring(Getter, Getter, Getter),
    ConvertCase(Getter, Case),
    ParseJson(Getter),
    Hash(Getter, HashFn),
    Fnv(Getter),
    Len(Getter),
    IsString(Getter),
    IsMap(Getter),
    IsList(Getter),
    IsInt(Getter),
    IsDouble(Getter),
    IsBool(Getter),
    TraceId(Vec<u8>),
    SpanId(Vec<u8>),
    Hex(Getter),
    Time(Getter, String, Option<String>),
    UnixNano(Getter),
    UnixMicro(Getter),
    UnixMilli(Getter),
    UnixSeconds(Getter),
    Now,
    Duration(Getter),
    Uuid,
    HasAttrKeyOnDatapoint(String),
    HasAttrOnDatapoint(String, String),
}

fn one(call: &Call, c: &Compiler, name: &str) -> Result<Getter, CompileError> {
    bind(call, &[name], 1)?.getter(c, 0)
}

pub(crate) fn compile_converter(c: &Compiler, call: &Call) -> Result<Converter, CompileError> {
    let pos = call.pos;
    Ok(match call.name.as_str() {
        "Concat" => {
            let b = bind(call, &["vals", "delimiter"], 2)?;
            let vals = match b.expr(0) {
                Some((Expr::List(items), _)) => items
                    .iter()
                    .map(|e| c.getter(e))
                    .collect::<Result<Vec<_>, _>>()?,
                Some((_, p)) => return cerr(p, "the values of Concat must be a list [...]"),
                None => Vec::new(),
            };
            Converter::Concat(vals, b.getter(c, 1)?)
        }
        "IsMatch" => {
            let b = bind(call, &["target", "pattern"], 2)?;
            Converter::IsMatch(b.getter(c, 0)?, b.regex(1)?)
        }
        "Int" => Converter::Int(one(call, c, "value")?),
        "Double" => Converter::Double(one(call, c, "value")?),
        "String" => Converter::String(one(call, c, "value")?),
        "Bool" => Converter::Bool(one(call, c, "value")?),
        "Split" => {
            let b = bind(call, &["target", "delimiter"], 2)?;
            let d = b.string(1, "the delimiter")?.unwrap_or_default();
            Converter::Split(b.getter(c, 0)?, d)
        }
        "Substring" => {
            let b = bind(call, &["target", "start", "length"], 3)?;
            Converter::Substring(b.getter(c, 0)?, b.getter(c, 1)?, b.getter(c, 2)?)
        }
        "ConvertCase" => {
            let b = bind(call, &["target", "to_case"], 2)?;
            let case = match b.string(1, "the case")?.as_deref() {
                Some("lower") => Case::Lower,
                Some("upper") => Case::Upper,
                Some("snake") => Case::Snake,
                Some("camel") => Case::Camel,
                other => {
                    return cerr(
                        b.expr(1).map_or(pos, |(_, p)| p),
                        format!("invalid case: {}, allowed cases are: lower, upper, snake, camel", other.unwrap_or_default()),
                    )
                }
            };
            Converter::ConvertCase(b.getter(c, 0)?, case)
        }
        "ToLowerCase" => Converter::ConvertCase(one(call, c, "target")?, Case::Lower),
        "ToUpperCase" => Converter::ConvertCase(one(call, c, "target")?, Case::Upper),
        "ToSnakeCase" => Converter::ConvertCase(one(call, c, "target")?, Case::Snake),
        "ToCamelCase" => Converter::ConvertCase(one(call, c, "target")?, Case::Camel),
        "ParseJSON" => Converter::ParseJson(one(call, c, "target")?),
        "SHA1" => Converter::Hash(one(call, c, "value")?, HashFn::Sha1),
        "SHA256" => Converter::Hash(one(call, c, "value")?, HashFn::Sha256),
        "SHA512" => Converter::Hash(one(call, c, "value")?, HashFn::Sha512),
        "MD5" => Converter::Hash(one(call, c, "value")?, HashFn::Md5),
        "FNV" => Converter::Fnv(one(call, c, "value")?),
        "Len" => Converter::Len(one(call, c, "target")?),
        "IsString" => Converter::IsString(one(call, c, "value")?),
        "IsMap" => Converter::IsMap(one(call, c, "value")?),
        "IsList" => Converter::IsList(one(call, c, "value")?),
        "IsInt" => Converter::IsInt(one(call, c, "value")?),
        "IsDouble" => Converter::IsDouble(one(call, c, "value")?),
        "IsBool" => Converter::IsBool(one(call, c, "value")?),
        "TraceID" | "SpanID" => {
            let b = bind(call, &["bytes"], 1)?;
            let (e, p) = b.expr(0).ok_or(CompileError {
                message: "bytes are needed".to_string(),
                pos,
            })?;
            let Expr::Bytes(bytes) = e else {
                return cerr(p, format!("{} takes a byte literal such as 0x0102...", call.name));
            };
            let want = if call.name == "TraceID" { 16 } else { 8 };
            if bytes.len() != want {
                return cerr(
                    p,
                    format!("{} needs exactly {want} bytes, got {}", call.name, bytes.len()),
                );
            }
            if call.name == "TraceID" {
                Converter::TraceId(bytes.clone())
            } else {
                Converter::SpanId(bytes.clone())
            }
        }
        "Hex" => Converter::Hex(one(call, c, "value")?),
        "Time" => {
            let b = bind(call, &["time", "format", "location", "locale"], 2)?;
            let format = b.string(1, "the format")?.unwrap_or_default();
            if format.is_empty() {
                return cerr(pos, "format cannot be nil");
            }
            crate::time::check_format(&format).map_err(|m| CompileError {
                message: m,
                pos: b.expr(1).map_or(pos, |(_, p)| p),
            })?;
            let location = b.string(2, "the location")?;
            if let Some(l) = &location {
                crate::time::offset_of(l).map_err(|m| CompileError {
                    message: m,
                    pos: b.expr(2).map_or(pos, |(_, p)| p),
                })?;
            }
            Converter::Time(b.getter(c, 0)?, format, location)
        }
        "UnixNano" => Converter::UnixNano(one(call, c, "time")?),
        "UnixMicro" => Converter::UnixMicro(one(call, c, "time")?),
        "UnixMilli" => Converter::UnixMilli(one(call, c, "time")?),
        "UnixSeconds" => Converter::UnixSeconds(one(call, c, "time")?),
        "Now" => {
            bind(call, &[], 0)?;
            Converter::Now
        }
        "Duration" => Converter::Duration(one(call, c, "duration")?),
        "UUID" => {
            bind(call, &[], 0)?;
            Converter::Uuid
        }
        "HasAttrKeyOnDatapoint" => {
            let b = bind(call, &["key"], 1)?;
            metric_only(c, call)?;
            Converter::HasAttrKeyOnDatapoint(b.string(0, "the key")?.unwrap_or_default())
        }
        "HasAttrOnDatapoint" => {
            let b = bind(call, &["key", "expected_value"], 2)?;
            metric_only(c, call)?;
            Converter::HasAttrOnDatapoint(
                b.string(0, "the key")?.unwrap_or_default(),
                b.string(1, "the expected value")?.unwrap_or_default(),
            )
        }
        other => {
            return cerr(
                pos,
                format!("undefined function \"{other}\" (converters: Concat, IsMatch, Int, Double, String, Bool, Split, Substring, ConvertCase, ToLowerCase, ToUpperCase, ToSnakeCase, ToCamelCase, ParseJSON, SHA1, SHA256, SHA512, MD5, FNV, Len, IsString, IsMap, IsList, IsInt, IsDouble, IsBool, TraceID, SpanID, Hex, Time, UnixNano, UnixMicro, UnixMilli, UnixSeconds, Now, Duration, UUID, HasAttrKeyOnDatapoint, HasAttrOnDatapoint)"),
            )
        }
    })
}

/// A string-like value: strings as they are, other scalars as text; nil stays nil.
fn string_like(v: &Value) -> Option<String> {
    v.to_text()
}

fn want_string<'v>(v: Value<'v>, what: &str) -> Result<Cow<'v, str>, EvalError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(EvalError(format!(
            "{what}: expected string but got {}",
            other.type_name()
        ))),
    }
}

fn want_int(v: &Value, what: &str) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(EvalError(format!(
            "{what}: expected int but got {}",
            other.type_name()
        ))),
    }
}

fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            if i > 0
                && prev.is_some_and(|p| p != '_')
                && (prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                    || next.is_some_and(char::is_lowercase))
            {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c == ' ' || c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split(['_', ' ', '-']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn uuid_v4() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Converter {
    pub(crate) fn deepest(&self, acc: &mut Option<ContextKind>) {
        use Converter::*;
        match self {
            Concat(vals, d) => {
                vals.iter().for_each(|g| g.deepest(acc));
                d.deepest(acc);
            }
            Substring(a, b, c) => {
                a.deepest(acc);
                b.deepest(acc);
                c.deepest(acc);
            }
            IsMatch(g, _)
            | Int(g)
            | Double(g)
            | String(g)
            | Bool(g)
            | Split(g, _)
            | ConvertCase(g, _)
            | ParseJson(g)
            | Hash(g, _)
            | Fnv(g)
            | Len(g)
            | IsString(g)
            | IsMap(g)
            | IsList(g)
            | IsInt(g)
            | IsDouble(g)
            | IsBool(g)
            | Hex(g)
            | Time(g, _, _)
            | UnixNano(g)
            | UnixMicro(g)
            | UnixMilli(g)
            | UnixSeconds(g)
            | Duration(g) => g.deepest(acc),
            HasAttrKeyOnDatapoint(_) | HasAttrOnDatapoint(_, _) => deepen(acc, ContextKind::Metric),
            TraceId(_) | SpanId(_) | Now | Uuid => {}
        }
    }

    pub fn call<'a>(&'a self, ctx: &'a TransformContext) -> Result<Value<'a>, EvalError> {
        use Converter::*;
        Ok(match self {
            Concat(vals, delim) => {
                let delim = want_string(delim.get(ctx)?, "Concat delimiter")?;
                let mut out = std::string::String::new();
                for (i, g) in vals.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&delim);
                    }
                    match g.get(ctx)? {
                        Value::Str(s) => out.push_str(&s),
                        other => out
                            .push_str(&string_like(&other).unwrap_or_else(|| "<nil>".to_string())),
                    }
                }
                Value::Str(Cow::Owned(out))
            }
            IsMatch(target, re) => match target.get(ctx)? {
                Value::Nil => Value::Bool(false),
                Value::Str(s) => Value::Bool(re.is_match(&s)),
                other => match string_like(&other) {
                    Some(s) => Value::Bool(re.is_match(&s)),
                    None => Value::Bool(false),
                },
            },
            Int(g) => match g.get(ctx)? {
                Value::Int(i) => Value::Int(i),
                Value::Float(f) => Value::Int(f as i64),
                Value::Bool(b) => Value::Int(i64::from(b)),
                Value::Str(s) => s.trim().parse::<i64>().map_or(Value::Nil, Value::Int),
                _ => Value::Nil,
            },
            Double(g) => match g.get(ctx)? {
                Value::Int(i) => Value::Float(i as f64),
                Value::Float(f) => Value::Float(f),
                Value::Bool(b) => Value::Float(if b { 1.0 } else { 0.0 }),
                Value::Str(s) => s.trim().parse::<f64>().map_or(Value::Nil, Value::Float),
                _ => Value::Nil,
            },
            String(g) => match g.get(ctx)? {
                Value::Str(s) => Value::Str(s),
                other => string_like(&other).map_or(Value::Nil, |s| Value::Str(Cow::Owned(s))),
            },
            Bool(g) => match g.get(ctx)? {
                Value::Bool(b) => Value::Bool(b),
                Value::Int(i) => Value::Bool(i != 0),
                Value::Float(f) => Value::Bool(f != 0.0),
                Value::Str(s) => match s.as_ref() {
                    "1" | "t" | "T" | "TRUE" | "true" | "True" => Value::Bool(true),
                    "0" | "f" | "F" | "FALSE" | "false" | "False" => Value::Bool(false),
                    _ => Value::Nil,
                },
                _ => Value::Nil,
            },
            Split(g, delim) => match g.get(ctx)? {
                Value::Nil => Value::Nil,
                v => {
                    let s = want_string(v, "Split")?;
                    let parts: Vec<&str> = if delim.is_empty() {
                        // Go splits after each UTF-8 sequence.
                        s.char_indices()
                            .map(|(i, c)| &s[i..i + c.len_utf8()])
                            .collect()
                    } else {
                        s.split(delim.as_str()).collect()
                    };
                    Value::List(Cow::Owned(
                        parts
                            .into_iter()
                            .map(|p| AnyValue {
                                value: Some(any_value::Value::StringValue(p.to_string())),
                            })
                            .collect(),
                    ))
                }
            },
            Substring(g, start, length) => {
                let s = want_string(g.get(ctx)?, "Substring")?;
                let start = want_int(&start.get(ctx)?, "Substring start")?;
                let length = want_int(&length.get(ctx)?, "Substring length")?;
                if start < 0 {
                    return Err(EvalError(format!(
                        "invalid start for substring function, {start} cannot be negative"
                    )));
                }
                if length <= 0 {
                    return Err(EvalError(format!("invalid length for substring function, {length} cannot be negative or zero")));
                }
                let (st, len) = (start as usize, length as usize);
                if st.saturating_add(len) > s.len() {
                    return Err(EvalError(format!("invalid range for substring function, {} cannot be greater than the length of target string({})", st.saturating_add(len), s.len())));
                }
                match s.get(st..st + len) {
                    Some(sub) => Value::Str(Cow::Owned(sub.to_string())),
                    None => {
                        return Err(EvalError(
                            "invalid range for substring function: not on a character boundary"
                                .to_string(),
                        ))
                    }
                }
            }
            ConvertCase(g, case) => match g.get(ctx)? {
                Value::Nil => Value::Nil,
                v => {
                    let s = want_string(v, "ConvertCase")?;
                    Value::Str(Cow::Owned(match case {
                        Case::Lower => s.to_lowercase(),
                        Case::Upper => s.to_uppercase(),
                        Case::Snake => snake_case(&s),
                        Case::Camel => camel_case(&s),
                    }))
                }
            },
            ParseJson(g) => {
                let v = g.get(ctx)?;
                let text: &[u8] = match &v {
                    Value::Str(s) => s.as_bytes(),
                    Value::Bytes(b) => b,
                    other => {
                        return Err(EvalError(format!(
                            "ParseJSON: expected string but got {}",
                            other.type_name()
                        )))
                    }
                };
                let parsed: serde_json::Value = serde_json::from_slice(text)
                    .map_err(|e| EvalError(format!("ParseJSON: {e}")))?;
                match json_to_any(parsed).value {
                    Some(any_value::Value::KvlistValue(kv)) => Value::Map(Cow::Owned(kv.values)),
                    Some(any_value::Value::ArrayValue(a)) => Value::List(Cow::Owned(a.values)),
                    _ => {
                        return Err(EvalError(
                            "ParseJSON: the target is not a JSON object or array".to_string(),
                        ))
                    }
                }
            }
            Hash(g, f) => match g.get(ctx)? {
                Value::Nil => Value::Nil,
                v => {
                    let s = want_string(v, "hash")?;
                    Value::Str(Cow::Owned(f.apply(&s)))
                }
            },
            Fnv(g) => match g.get(ctx)? {
                Value::Nil => Value::Nil,
                v => {
                    let s = want_string(v, "FNV")?;
                    Value::Int(fnv1a64(s.as_bytes()) as i64)
                }
            },
            Len(g) => match g.get(ctx)? {
                Value::Str(s) => Value::Int(s.chars().count() as i64),
                Value::List(l) => Value::Int(l.len() as i64),
                Value::Map(m) => Value::Int(m.len() as i64),
                Value::Bytes(b) => Value::Int(b.len() as i64),
                other => {
                    return Err(EvalError(format!(
                        "Len: unsupported type {}",
                        other.type_name()
                    )))
                }
            },
            IsString(g) => Value::Bool(matches!(g.get(ctx)?, Value::Str(_))),
            IsMap(g) => Value::Bool(matches!(g.get(ctx)?, Value::Map(_))),
            IsList(g) => Value::Bool(matches!(g.get(ctx)?, Value::List(_))),
            IsInt(g) => Value::Bool(matches!(g.get(ctx)?, Value::Int(_))),
            IsDouble(g) => Value::Bool(matches!(g.get(ctx)?, Value::Float(_))),
            IsBool(g) => Value::Bool(matches!(g.get(ctx)?, Value::Bool(_))),
            TraceId(b) | SpanId(b) => Value::Bytes(Cow::Borrowed(b)),
            Hex(g) => match g.get(ctx)? {
                Value::Bytes(b) => Value::Str(Cow::Owned(hex::encode(b))),
                Value::Str(s) => Value::Str(Cow::Owned(hex::encode(s.as_bytes()))),
                Value::Int(i) => Value::Str(Cow::Owned(hex::encode(i.to_be_bytes()))),
                Value::Float(f) => Value::Str(Cow::Owned(hex::encode(f.to_bits().to_be_bytes()))),
                Value::Bool(b) => Value::Str(Cow::Owned(hex::encode([u8::from(b)]))),
                other => {
                    return Err(EvalError(format!(
                        "Hex: unsupported type {}",
                        other.type_name()
                    )))
                }
            },
            Time(g, format, location) => {
                let s = want_string(g.get(ctx)?, "Time")?;
                if s.is_empty() {
                    return Err(EvalError("time cannot be nil".to_string()));
                }
                Value::Time(crate::time::parse(&s, format, location.as_deref())?)
            }
            UnixNano(g) | UnixMicro(g) | UnixMilli(g) | UnixSeconds(g) => {
                let t = match g.get(ctx)? {
                    Value::Time(t) => t,
                    other => {
                        return Err(EvalError(format!(
                            "expected a time but got {}",
                            other.type_name()
                        )))
                    }
                };
                Value::Int(match self {
                    UnixNano(_) => t,
                    UnixMicro(_) => t.div_euclid(1_000),
                    UnixMilli(_) => t.div_euclid(1_000_000),
                    _ => t.div_euclid(1_000_000_000),
                })
            }
            Now => Value::Time(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            ),
            Duration(g) => {
                let s = want_string(g.get(ctx)?, "Duration")?;
                Value::Duration(crate::time::parse_duration(&s)?)
            }
            Uuid => Value::Str(Cow::Owned(uuid_v4())),
            HasAttrKeyOnDatapoint(key) => {
                let m = ctx.metric()?;
                Value::Bool((0..point_count(m)).any(|i| {
                    point_ref(m, i)
                        .is_some_and(|p| point_attributes(&p).iter().any(|kv| kv.key == *key))
                }))
            }
            HasAttrOnDatapoint(key, expected) => {
                let m = ctx.metric()?;
                let want = Value::Str(Cow::Borrowed(expected.as_str()));
                Value::Bool((0..point_count(m)).any(|i| {
                    point_ref(m, i).is_some_and(|p| {
                        point_attributes(&p).iter().any(|kv| {
                            kv.key == *key
                                && compare(
                                    &Value::from_any_opt(kv.value.as_ref()),
                                    crate::ast::CompareOp::Eq,
                                    &want,
                                )
                        })
                    })
                }))
            }
        })
    }
}
