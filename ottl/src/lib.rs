//! The OpenTelemetry Transformation Language (OTTL): a parser for statements and conditions
//! as upstream's grammar defines them, a compiler that resolves paths, functions and enums
//! against a context once, and an evaluator over OTLP data in place.
//!
//! ```text
//! set(span.attributes["env"], "prod") where resource.attributes["k8s.namespace.name"] == "shop"
//! ```

pub mod ast;
pub mod compile;
pub mod context;
pub mod funcs;
pub mod groups;
pub mod parser;
pub mod time;
pub mod value;
pub mod walk;

use std::fmt;

use serde::Deserialize;

use compile::{Compiler, Cond};
pub use context::{ContextKind, Item, TransformContext};
use funcs::Editor;
pub use value::Value;

/// A failure while running a statement on one item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// A statement or condition that does not parse or compile, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OttlError {
    pub text: String,
    pub message: String,
    /// From 1.
    pub column: usize,
    pub what: &'static str,
}

impl fmt::Display for OttlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unable to parse OTTL {} \"{}\": {} (column {})",
            self.what, self.text, self.message, self.column
        )
    }
}

impl std::error::Error for OttlError {}

fn located(text: &str, what: &'static str, message: String, pos: usize) -> OttlError {
    OttlError {
        text: text.to_string(),
        message,
        column: pos + 1,
        what,
    }
}

/// What a processor does when a statement fails on an item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorMode {
    /// Log the error and go on with the next statement or item.
    Ignore,
    /// Return the error: the whole batch is refused.
    #[default]
    Propagate,
    /// Go on without logging.
    Silent,
}

impl<'de> Deserialize<'de> for ErrorMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "ignore" => Ok(ErrorMode::Ignore),
            "propagate" => Ok(ErrorMode::Propagate),
            "silent" => Ok(ErrorMode::Silent),
            _ => Err(serde::de::Error::custom(format!(
                "unknown error mode {s}, valid values are: ignore, propagate, silent"
            ))),
        }
    }
}

/// A compiled statement: an editor and its optional `where` condition.
#[derive(Debug)]
pub struct Statement {
    pub text: String,
    pub context: ContextKind,
    editor: Editor,
    condition: Option<Cond>,
}

impl Statement {
    /// Parses and compiles a statement for `context`, or, with `None`, for the context its
    /// paths name (every path must then start with its context, e.g. `span.name`).
    pub fn new(text: &str, context: Option<ContextKind>) -> Result<Statement, OttlError> {
        let ast = parser::parse_statement(text)
            .map_err(|e| located(text, "statement", e.message, e.pos))?;
        let compile = |ctx: Option<ContextKind>| -> Result<(Editor, Option<Cond>), OttlError> {
            let c = Compiler { context: ctx };
            let editor = c
                .editor(&ast.editor)
                .map_err(|e| located(text, "statement", e.message, e.pos))?;
            let condition = ast
                .condition
                .as_ref()
                .map(|b| c.cond(b))
                .transpose()
                .map_err(|e| located(text, "statement", e.message, e.pos))?;
            Ok((editor, condition))
        };
        let context = match context {
            Some(ctx) => ctx,
            None => {
                let (editor, condition) = compile(None)?;
                let mut deepest = None;
                editor.deepest(&mut deepest);
                if let Some(c) = &condition {
                    c.deepest(&mut deepest);
                }
                deepest.ok_or_else(|| {
                    located(
                        text,
                        "statement",
                        "the context could not be inferred: name it with a path such as span.name"
                            .to_string(),
                        0,
                    )
                })?
            }
        };
        let (editor, condition) = compile(Some(context))?;
        Ok(Statement {
            text: text.to_string(),
            context,
            editor,
            condition,
        })
    }

    /// The deepest context the statement's own paths name (for inferring a group's context).
    pub fn inferred_context(text: &str) -> Result<ContextKind, OttlError> {
        Statement::new(text, None).map(|s| s.context)
    }

    /// Runs the statement on one item; `Ok(true)` when its condition held and it ran.
    pub fn execute(&self, ctx: &mut TransformContext) -> Result<bool, EvalError> {
        if let Some(c) = &self.condition {
            if !c.eval(ctx)? {
                return Ok(false);
            }
        }
        self.editor.exec(ctx)?;
        Ok(true)
    }
}

/// A compiled condition (a boolean expression), as the filter processor and the transform
/// processor's `conditions` take them.
#[derive(Debug)]
pub struct Condition {
    pub text: String,
    pub context: ContextKind,
    cond: Cond,
}

impl Condition {
    /// Parses and compiles a condition for `context`, or for the context its paths name.
    pub fn new(text: &str, context: Option<ContextKind>) -> Result<Condition, OttlError> {
        let ast = parser::parse_condition(text)
            .map_err(|e| located(text, "condition", e.message, e.pos))?;
        let compile = |ctx: Option<ContextKind>| {
            Compiler { context: ctx }
                .cond(&ast)
                .map_err(|e| located(text, "condition", e.message, e.pos))
        };
        let context = match context {
            Some(ctx) => ctx,
            None => {
                let mut deepest = None;
                compile(None)?.deepest(&mut deepest);
                deepest.ok_or_else(|| {
                    located(
                        text,
                        "condition",
                        "the context could not be inferred: name it with a path such as span.name"
                            .to_string(),
                        0,
                    )
                })?
            }
        };
        Ok(Condition {
            text: text.to_string(),
            context,
            cond: compile(Some(context))?,
        })
    }

    pub fn eval(&self, ctx: &TransformContext) -> Result<bool, EvalError> {
        self.cond.eval(ctx)
    }
}

#[cfg(test)]
mod tests;
