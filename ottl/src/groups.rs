//! Statement and condition lists as processors configure them: flat lists of strings whose
//! context is inferred from their paths, or groups `{context, statements | conditions,
//! error_mode}`; compiled once, then run over a batch with the error mode applied.

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use tracing::warn;

use ferrotel_pipeline::pdata::Signal;
use ferrotel_pipeline::ratelimit::LogLimiter;

use crate::context::{ContextKind, TransformContext};
use crate::{Condition, ErrorMode, EvalError, Statement};

/// One entry of `trace_statements` (and the like): a statement, or a group.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementEntry {
    Flat(String),
    Group(StatementGroup),
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatementGroup {
    /// Inferred from the statements' paths when absent.
    pub context: Option<String>,
    pub statements: Vec<String>,
    /// The statements run on an item only when one of these holds (none: always).
    pub conditions: Vec<String>,
    /// This group's own; the processor's when absent.
    pub error_mode: Option<ErrorMode>,
}

/// One entry of `trace_conditions` (and the like): a condition, or a group.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionEntry {
    Flat(String),
    Group(ConditionGroup),
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditionGroup {
    pub context: Option<String>,
    pub conditions: Vec<String>,
    pub error_mode: Option<ErrorMode>,
}

macro_rules! string_or_group {
    ($entry:ident, $group:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $entry {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $entry;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$entry, E> {
                        Ok($entry::Flat(v.to_string()))
                    }
                    fn visit_string<E: de::Error>(self, v: String) -> Result<$entry, E> {
                        Ok($entry::Flat(v))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$entry, A::Error> {
                        $group::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map($entry::Group)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<$entry, A::Error> {
                        Err(de::Error::custom(concat!("expected ", $expecting)))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

string_or_group!(
    StatementEntry,
    StatementGroup,
    "a statement or a group {context, statements, conditions, error_mode}"
);
string_or_group!(
    ConditionEntry,
    ConditionGroup,
    "a condition or a group {context, conditions, error_mode}"
);

/// The contexts statements of a signal may run in.
pub fn contexts_of(signal: Signal) -> &'static [ContextKind] {
    match signal {
        Signal::Traces => &[
            ContextKind::Resource,
            ContextKind::Scope,
            ContextKind::Span,
            ContextKind::SpanEvent,
        ],
        Signal::Metrics => &[
            ContextKind::Resource,
            ContextKind::Scope,
            ContextKind::Metric,
            ContextKind::DataPoint,
        ],
        Signal::Logs => &[ContextKind::Resource, ContextKind::Scope, ContextKind::Log],
    }
}

fn context_for(signal: Signal, name: &str) -> Result<ContextKind, String> {
    let valid = contexts_of(signal);
    let ctx = ContextKind::from_name(name.trim()).filter(|c| valid.contains(c));
    ctx.ok_or_else(|| {
        format!(
            "unknown context \"{name}\" for {signal} (valid: {})",
            valid
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn check_signal(signal: Signal, ctx: ContextKind, text: &str) -> Result<(), String> {
    if contexts_of(signal).contains(&ctx) {
        Ok(())
    } else {
        Err(format!(
            "\"{text}\" runs in the {} context, which {signal} do not have",
            ctx.name()
        ))
    }
}

/// Compiled statements of one group and how they treat errors.
#[derive(Debug)]
pub struct CompiledStatements {
    pub context: ContextKind,
    pub conditions: Vec<Condition>,
    pub statements: Vec<Statement>,
    pub error_mode: ErrorMode,
}

/// Compiles a signal's statement entries; consecutive flat statements of one inferred context
/// form one group, as upstream groups them.
pub fn compile_statements(
    signal: Signal,
    entries: &[StatementEntry],
    default_mode: ErrorMode,
) -> Result<Vec<CompiledStatements>, String> {
    let mut out: Vec<CompiledStatements> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry {
            StatementEntry::Flat(text) => {
                let st = Statement::new(text, None).map_err(|e| format!("[{i}]: {e}"))?;
                check_signal(signal, st.context, text).map_err(|e| format!("[{i}]: {e}"))?;
                match out.last_mut() {
                    Some(g)
                        if g.context == st.context
                            && g.conditions.is_empty()
                            && g.error_mode == default_mode =>
                    {
                        g.statements.push(st)
                    }
                    _ => out.push(CompiledStatements {
                        context: st.context,
                        conditions: Vec::new(),
                        statements: vec![st],
                        error_mode: default_mode,
                    }),
                }
            }
            StatementEntry::Group(g) => {
                if g.statements.is_empty() {
                    return Err(format!(
                        "[{i}]: statements: at least one statement is needed"
                    ));
                }
                let context =
                    group_context(signal, g.context.as_deref(), &g.statements, &g.conditions)
                        .map_err(|e| format!("[{i}]: {e}"))?;
                let statements = g
                    .statements
                    .iter()
                    .map(|s| Statement::new(s, Some(context)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("[{i}]: {e}"))?;
                let conditions = g
                    .conditions
                    .iter()
                    .map(|c| Condition::new(c, Some(context)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("[{i}]: {e}"))?;
                check_signal(signal, context, g.statements[0].as_str())
                    .map_err(|e| format!("[{i}]: {e}"))?;
                out.push(CompiledStatements {
                    context,
                    conditions,
                    statements,
                    error_mode: g.error_mode.unwrap_or(default_mode),
                });
            }
        }
    }
    Ok(out)
}

/// A group's context: the one it names, or the one its statements and conditions imply.
fn group_context(
    signal: Signal,
    named: Option<&str>,
    statements: &[String],
    conditions: &[String],
) -> Result<ContextKind, String> {
    match named {
        Some(name) => context_for(signal, name),
        None => infer(statements, conditions),
    }
}

/// The deepest context any of a group's statements and conditions name.
fn infer(statements: &[String], conditions: &[String]) -> Result<ContextKind, String> {
    let mut deepest: Option<ContextKind> = None;
    for s in statements {
        let c = Statement::inferred_context(s).map_err(|e| e.to_string())?;
        if deepest.is_none_or(|d| c.depth() > d.depth()) {
            deepest = Some(c);
        }
    }
    for s in conditions {
        let c = Condition::new(s, None).map_err(|e| e.to_string())?.context;
        if deepest.is_none_or(|d| c.depth() > d.depth()) {
            deepest = Some(c);
        }
    }
    deepest.ok_or_else(|| "the context could not be inferred".to_string())
}

/// Compiled conditions of one context.
#[derive(Debug)]
pub struct CompiledConditions {
    pub context: ContextKind,
    pub conditions: Vec<Condition>,
    pub error_mode: ErrorMode,
}

/// Compiles condition entries of the newer filter form; flat ones are grouped by context.
pub fn compile_condition_entries(
    signal: Signal,
    entries: &[ConditionEntry],
    default_mode: ErrorMode,
) -> Result<Vec<CompiledConditions>, String> {
    let mut out: Vec<CompiledConditions> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry {
            ConditionEntry::Flat(text) => {
                let c = Condition::new(text, None).map_err(|e| format!("[{i}]: {e}"))?;
                check_signal(signal, c.context, text).map_err(|e| format!("[{i}]: {e}"))?;
                match out
                    .iter_mut()
                    .find(|g| g.context == c.context && g.error_mode == default_mode)
                {
                    Some(g) => g.conditions.push(c),
                    None => out.push(CompiledConditions {
                        context: c.context,
                        conditions: vec![c],
                        error_mode: default_mode,
                    }),
                }
            }
            ConditionEntry::Group(g) => {
                if g.conditions.is_empty() {
                    return Err(format!(
                        "[{i}]: conditions: at least one condition is needed"
                    ));
                }
                let context = group_context(signal, g.context.as_deref(), &[], &g.conditions)
                    .map_err(|e| format!("[{i}]: {e}"))?;
                let conditions = g
                    .conditions
                    .iter()
                    .map(|c| Condition::new(c, Some(context)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("[{i}]: {e}"))?;
                out.push(CompiledConditions {
                    context,
                    conditions,
                    error_mode: g.error_mode.unwrap_or(default_mode),
                });
            }
        }
    }
    Ok(out)
}

/// Compiles a list of conditions that all run in one given context (the filter processor's
/// older `traces.span`-style lists).
pub fn compile_conditions(
    context: ContextKind,
    texts: &[String],
    error_mode: ErrorMode,
) -> Result<Option<CompiledConditions>, String> {
    if texts.is_empty() {
        return Ok(None);
    }
    let conditions = texts
        .iter()
        .enumerate()
        .map(|(i, c)| Condition::new(c, Some(context)).map_err(|e| format!("[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(CompiledConditions {
        context,
        conditions,
        error_mode,
    }))
}

static ERROR_LOG: LogLimiter = LogLimiter::new(std::time::Duration::from_secs(1));

/// Applies an error mode to a failure: `Err` to stop (propagate), `Ok` to go on.
pub fn handle_error(
    mode: ErrorMode,
    component: &str,
    what: &str,
    text: &str,
    err: EvalError,
) -> Result<(), String> {
    match mode {
        ErrorMode::Propagate => Err(format!("failed to {what} \"{text}\": {err}")),
        ErrorMode::Ignore => {
            if let Some(skipped) = ERROR_LOG.check() {
                warn!(
                    processor = %component,
                    statement = %text,
                    error = %err,
                    skipped,
                    "failed to {what}; error_mode is ignore, so processing goes on"
                );
            }
            Ok(())
        }
        ErrorMode::Silent => Ok(()),
    }
}

/// Whether any condition holds for the item; a failing one counts as false unless the error
/// mode propagates it.
fn any_holds(
    conditions: &[Condition],
    mode: ErrorMode,
    component: &str,
    ctx: &TransformContext,
) -> Result<bool, String> {
    for c in conditions {
        match c.eval(ctx) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => handle_error(mode, component, "evaluate condition", &c.text, e)?,
        }
    }
    Ok(false)
}

impl CompiledConditions {
    /// Whether any condition holds for the item.
    pub fn any(&self, component: &str, ctx: &TransformContext) -> Result<bool, String> {
        any_holds(&self.conditions, self.error_mode, component, ctx)
    }
}

impl CompiledStatements {
    /// Runs the group on one item: when it has no conditions, or one of them holds.
    pub fn run(&self, component: &str, ctx: &mut TransformContext) -> Result<(), String> {
        if !self.conditions.is_empty()
            && !any_holds(&self.conditions, self.error_mode, component, ctx)?
        {
            return Ok(());
        }
        for st in &self.statements {
            if let Err(e) = st.execute(ctx) {
                handle_error(self.error_mode, component, "execute statement", &st.text, e)?;
            }
        }
        Ok(())
    }
}
