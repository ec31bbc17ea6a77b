//! Turns parsed statements into executable ones for a context: paths resolved to fields,
//! functions looked up and their arguments checked, enums replaced by their numbers, regexes
//! compiled. Nothing is parsed or looked up again per item.

use std::borrow::Cow;

use crate::ast::{self, BoolExpr, CompareOp, Expr, MathOp, Pos};
use crate::context::{
    field_names, index, resolve_field, ContextKind, Field, KeyValueRef, TransformContext,
};
use crate::funcs::{self, Converter, Editor};
use crate::value::{compare, Value};
use crate::EvalError;

/// A problem found while compiling, at a column of the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub pos: Pos,
}

pub(crate) fn cerr<T>(pos: Pos, message: impl Into<String>) -> Result<T, CompileError> {
    Err(CompileError {
        message: message.into(),
        pos,
    })
}

/// A path resolved to a field of some level, with its keys.
#[derive(Debug)]
pub struct CompiledPath {
    pub field: Field,
    pub level: ContextKind,
    pub keys: Vec<CompiledKey>,
    pub text: String,
}

#[derive(Debug)]
pub enum CompiledKey {
    Str(String),
    Int(i64),
    Dyn(Box<Getter>),
}

/// Something that yields a value for an item.
#[derive(Debug)]
pub enum Getter {
    Literal(Value<'static>),
    Path(CompiledPath),
    Converter(Box<Converter>, Vec<CompiledKey>),
    List(Vec<Getter>),
    Map(Vec<(String, Getter)>),
    Math(Box<Getter>, MathOp, Box<Getter>),
}

fn borrow<'a>(v: &'a Value<'static>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        Value::Bytes(b) => Value::Bytes(Cow::Borrowed(b.as_ref())),
        Value::Map(m) => Value::Map(Cow::Borrowed(m.as_ref())),
        Value::List(l) => Value::List(Cow::Borrowed(l.as_ref())),
        Value::Nil => Value::Nil,
        Value::Bool(b) => Value::Bool(*b),
        Value::Int(i) => Value::Int(*i),
        Value::Float(f) => Value::Float(*f),
        Value::Time(t) => Value::Time(*t),
        Value::Duration(d) => Value::Duration(*d),
    }
}

/// One key's value for this item: fixed keys borrowed, computed ones evaluated.
fn resolve_key<'k>(
    k: &'k CompiledKey,
    ctx: &TransformContext,
) -> Result<KeyValueRef<'k>, EvalError> {
    Ok(match k {
        CompiledKey::Str(s) => KeyValueRef::Str(Cow::Borrowed(s)),
        CompiledKey::Int(i) => KeyValueRef::Int(*i),
        CompiledKey::Dyn(g) => match g.get(ctx)? {
            Value::Str(s) => KeyValueRef::Str(Cow::Owned(s.into_owned())),
            Value::Int(i) => KeyValueRef::Int(i),
            other => {
                return Err(EvalError(format!(
                    "a key must be a string or an int, got {}",
                    other.type_name()
                )))
            }
        },
    })
}

pub(crate) fn resolve_keys<'k>(
    keys: &'k [CompiledKey],
    ctx: &TransformContext,
) -> Result<Vec<KeyValueRef<'k>>, EvalError> {
    keys.iter().map(|k| resolve_key(k, ctx)).collect()
}

fn apply_keys<'a>(
    mut value: Value<'a>,
    keys: &'a [CompiledKey],
    ctx: &'a TransformContext,
) -> Result<Value<'a>, EvalError> {
    for k in keys {
        value = index(value, &resolve_key(k, ctx)?)?;
    }
    Ok(value)
}

impl CompiledPath {
    /// The path's value for this item.
    pub fn get<'a>(&'a self, ctx: &'a TransformContext) -> Result<Value<'a>, EvalError> {
        let v = ctx.get(self.field)?;
        if self.keys.is_empty() {
            return Ok(v);
        }
        // A string field indexed (trace_state["k"]) reads a W3C list entry.
        if self.field == Field::SpanTraceState {
            let keys = resolve_keys(&self.keys, ctx)?;
            let (Value::Str(state), [KeyValueRef::Str(k)]) = (v, keys.as_slice()) else {
                return Err(EvalError("trace_state takes one string key".to_string()));
            };
            return Ok(state
                .split(',')
                .filter_map(|e| e.trim().split_once('='))
                .find(|(name, _)| *name == k.as_ref())
                .map_or(Value::Nil, |(_, v)| Value::Str(Cow::Owned(v.to_string()))));
        }
        apply_keys(v, &self.keys, ctx)
    }
}

impl Getter {
    pub fn get<'a>(&'a self, ctx: &'a TransformContext) -> Result<Value<'a>, EvalError> {
        match self {
            Getter::Literal(v) => Ok(borrow(v)),
            Getter::Path(p) => p.get(ctx),
            Getter::Converter(c, keys) => {
                let v = c.call(ctx)?;
                if keys.is_empty() {
                    return Ok(v);
                }
                apply_keys(v, keys, ctx).map(Value::into_owned)
            }
            Getter::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for g in items {
                    let v = g.get(ctx)?;
                    out.push(v.into_any().unwrap_or_default());
                }
                Ok(Value::List(Cow::Owned(out)))
            }
            Getter::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, g) in entries {
                    out.push(ferrotel_pipeline::pdata::common::KeyValue {
                        key: k.clone(),
                        value: g.get(ctx)?.into_any(),
                        ..Default::default()
                    });
                }
                Ok(Value::Map(Cow::Owned(out)))
            }
            Getter::Math(a, op, b) => math(&a.get(ctx)?, *op, &b.get(ctx)?),
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, Getter::Literal(_))
    }

    /// The deepest context a value reads from, for context inference.
    pub(crate) fn deepest(&self, acc: &mut Option<ContextKind>) {
        match self {
            Getter::Literal(_) => {}
            Getter::Path(p) => {
                deepen(acc, p.level);
                for k in &p.keys {
                    if let CompiledKey::Dyn(g) = k {
                        g.deepest(acc);
                    }
                }
            }
            Getter::Converter(c, keys) => {
                c.deepest(acc);
                for k in keys {
                    if let CompiledKey::Dyn(g) = k {
                        g.deepest(acc);
                    }
                }
            }
            Getter::List(items) => items.iter().for_each(|g| g.deepest(acc)),
            Getter::Map(entries) => entries.iter().for_each(|(_, g)| g.deepest(acc)),
            Getter::Math(a, _, b) => {
                a.deepest(acc);
                b.deepest(acc);
            }
        }
    }
}

pub(crate) fn deepen(acc: &mut Option<ContextKind>, level: ContextKind) {
    match acc {
        Some(cur) if cur.depth() >= level.depth() => {}
        _ => *acc = Some(level),
    }
}

fn math<'a>(a: &Value, op: MathOp, b: &Value) -> Result<Value<'a>, EvalError> {
    use MathOp::*;
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(match op {
            Add => x.wrapping_add(*y),
            Sub => x.wrapping_sub(*y),
            Mul => x.wrapping_mul(*y),
            Div => {
                if *y == 0 {
                    return Err(EvalError("attempted to divide by 0".to_string()));
                }
                x.wrapping_div(*y)
            }
        }),
        (Value::Float(x), Value::Float(y)) => Value::Float(match op {
            Add => x + y,
            Sub => x - y,
            Mul => x * y,
            Div => {
                if *y == 0.0 {
                    return Err(EvalError("attempted to divide by 0".to_string()));
                }
                x / y
            }
        }),
        (Value::Time(t), Value::Time(u)) if op == Sub => Value::Duration(t.saturating_sub(*u)),
        (Value::Time(t), Value::Duration(d)) if op == Add => Value::Time(t.saturating_add(*d)),
        (Value::Duration(d), Value::Time(t)) if op == Add => Value::Time(t.saturating_add(*d)),
        (Value::Time(t), Value::Duration(d)) if op == Sub => Value::Time(t.saturating_sub(*d)),
        (Value::Duration(x), Value::Duration(y)) if op == Add => {
            Value::Duration(x.saturating_add(*y))
        }
        (Value::Duration(x), Value::Duration(y)) if op == Sub => {
            Value::Duration(x.saturating_sub(*y))
        }
        (x, y) => {
            return Err(EvalError(format!(
                "cannot compute {} {} {}",
                x.type_name(),
                match op {
                    Add => "+",
                    Sub => "-",
                    Mul => "*",
                    Div => "/",
                },
                y.type_name()
            )))
        }
    })
}

/// A compiled boolean expression.
#[derive(Debug)]
pub enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    Compare(Getter, CompareOp, Getter),
    Value(Getter),
}

impl Cond {
    pub fn eval(&self, ctx: &TransformContext) -> Result<bool, EvalError> {
        match self {
            Cond::Or(items) => {
                for c in items {
                    if c.eval(ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Cond::And(items) => {
                for c in items {
                    if !c.eval(ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Cond::Not(c) => Ok(!c.eval(ctx)?),
            Cond::Compare(a, op, b) => Ok(compare(&a.get(ctx)?, *op, &b.get(ctx)?)),
            Cond::Value(g) => match g.get(ctx)? {
                Value::Bool(b) => Ok(b),
                other => Err(EvalError(format!(
                    "a condition must be a bool, got {}",
                    other.type_name()
                ))),
            },
        }
    }

    pub(crate) fn deepest(&self, acc: &mut Option<ContextKind>) {
        match self {
            Cond::Or(items) | Cond::And(items) => items.iter().for_each(|c| c.deepest(acc)),
            Cond::Not(c) => c.deepest(acc),
            Cond::Compare(a, _, b) => {
                a.deepest(acc);
                b.deepest(acc);
            }
            Cond::Value(g) => g.deepest(acc),
        }
    }
}

/// The numbers of upstream's enums.
pub fn enum_value(name: &str) -> Option<i64> {
    Some(match name {
        "SPAN_KIND_UNSPECIFIED" => 0,
        "SPAN_KIND_INTERNAL" => 1,
        "SPAN_KIND_SERVER" => 2,
        "SPAN_KIND_CLIENT" => 3,
        "SPAN_KIND_PRODUCER" => 4,
        "SPAN_KIND_CONSUMER" => 5,
        "STATUS_CODE_UNSET" => 0,
        "STATUS_CODE_OK" => 1,
        "STATUS_CODE_ERROR" => 2,
        "METRIC_DATA_TYPE_NONE" => 0,
        "METRIC_DATA_TYPE_GAUGE" => 1,
        "METRIC_DATA_TYPE_SUM" => 2,
        "METRIC_DATA_TYPE_HISTOGRAM" => 3,
        "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM" => 4,
        "METRIC_DATA_TYPE_SUMMARY" => 5,
        "AGGREGATION_TEMPORALITY_UNSPECIFIED" => 0,
        "AGGREGATION_TEMPORALITY_DELTA" => 1,
        "AGGREGATION_TEMPORALITY_CUMULATIVE" => 2,
        "FLAG_NONE" => 0,
        "FLAG_NO_RECORDED_VALUE" => 1,
        "SEVERITY_NUMBER_UNSPECIFIED" => 0,
        "SEVERITY_NUMBER_TRACE" => 1,
        "SEVERITY_NUMBER_TRACE2" => 2,
        "SEVERITY_NUMBER_TRACE3" => 3,
        "SEVERITY_NUMBER_TRACE4" => 4,
        "SEVERITY_NUMBER_DEBUG" => 5,
        "SEVERITY_NUMBER_DEBUG2" => 6,
        "SEVERITY_NUMBER_DEBUG3" => 7,
        "SEVERITY_NUMBER_DEBUG4" => 8,
        "SEVERITY_NUMBER_INFO" => 9,
        "SEVERITY_NUMBER_INFO2" => 10,
        "SEVERITY_NUMBER_INFO3" => 11,
        "SEVERITY_NUMBER_INFO4" => 12,
        "SEVERITY_NUMBER_WARN" => 13,
        "SEVERITY_NUMBER_WARN2" => 14,
        "SEVERITY_NUMBER_WARN3" => 15,
        "SEVERITY_NUMBER_WARN4" => 16,
        "SEVERITY_NUMBER_ERROR" => 17,
        "SEVERITY_NUMBER_ERROR2" => 18,
        "SEVERITY_NUMBER_ERROR3" => 19,
        "SEVERITY_NUMBER_ERROR4" => 20,
        "SEVERITY_NUMBER_FATAL" => 21,
        "SEVERITY_NUMBER_FATAL2" => 22,
        "SEVERITY_NUMBER_FATAL3" => 23,
        "SEVERITY_NUMBER_FATAL4" => 24,
        _ => return None,
    })
}

/// Compiles against one context. `context: None` means the statement's context is inferred
/// from its paths, which then must all name their context.
pub struct Compiler {
    pub context: Option<ContextKind>,
}

impl Compiler {
    pub fn path(&self, p: &ast::Path) -> Result<CompiledPath, CompileError> {
        let text = p.segments.join(".");
        let first = p.segments[0].as_str();
        let (level, rest): (ContextKind, Vec<&str>) = match ContextKind::from_name(first) {
            Some(level) if p.segments.len() > 1 => {
                (level, p.segments[1..].iter().map(String::as_str).collect())
            }
            _ => match self.context {
                Some(ctx) => (ctx, p.segments.iter().map(String::as_str).collect()),
                None => {
                    return cerr(
                        p.pos,
                        format!("the path \"{text}\" does not say its context; write it with its context first, e.g. span.{text} or resource.{text}"),
                    )
                }
            },
        };
        if let Some(ctx) = self.context {
            if !ctx.sees(level) {
                return cerr(
                    p.pos,
                    format!(
                        "the path \"{text}\" is not available in the {} context: a statement sees its own level and the levels above it",
                        ctx.name()
                    ),
                );
            }
        }
        let Some(field) = resolve_field(level, &rest) else {
            return cerr(
                p.pos,
                format!(
                    "unknown path \"{text}\" in the {} context (valid: {})",
                    level.name(),
                    field_names(level)
                ),
            );
        };
        if !p.keys.is_empty() && !field.indexable() {
            return cerr(p.pos, format!("the path \"{text}\" cannot be indexed"));
        }
        let keys = self.keys(&p.keys)?;
        Ok(CompiledPath {
            field,
            level,
            keys,
            text,
        })
    }

    fn keys(&self, keys: &[ast::Key]) -> Result<Vec<CompiledKey>, CompileError> {
        keys.iter()
            .map(|k| {
                Ok(match k {
                    ast::Key::String(s) => CompiledKey::Str(s.clone()),
                    ast::Key::Int(i) => CompiledKey::Int(*i),
                    ast::Key::Expr(e) => CompiledKey::Dyn(Box::new(self.getter(e)?)),
                })
            })
            .collect()
    }

    pub fn getter(&self, e: &Expr) -> Result<Getter, CompileError> {
        Ok(match e {
            Expr::Nil => Getter::Literal(Value::Nil),
            Expr::Bool(b) => Getter::Literal(Value::Bool(*b)),
            Expr::Int(i) => Getter::Literal(Value::Int(*i)),
            Expr::Float(f) => Getter::Literal(Value::Float(*f)),
            Expr::String(s) => Getter::Literal(Value::Str(Cow::Owned(s.clone()))),
            Expr::Bytes(b) => Getter::Literal(Value::Bytes(Cow::Owned(b.clone()))),
            Expr::Enum(name, pos) => match enum_value(name) {
                Some(v) => Getter::Literal(Value::Int(v)),
                None => return cerr(*pos, format!("unknown enum \"{name}\"")),
            },
            Expr::Path(p) => Getter::Path(self.path(p)?),
            Expr::Call(c) => {
                let conv = funcs::compile_converter(self, c)?;
                Getter::Converter(Box::new(conv), self.keys(&c.keys)?)
            }
            Expr::List(items) => {
                let gs = items
                    .iter()
                    .map(|i| self.getter(i))
                    .collect::<Result<Vec<_>, _>>()?;
                if gs.iter().all(Getter::is_literal) {
                    let ctx_free = gs
                        .iter()
                        .map(|g| match g {
                            Getter::Literal(v) => v.to_any().unwrap_or_default(),
                            _ => Default::default(),
                        })
                        .collect();
                    Getter::Literal(Value::List(Cow::Owned(ctx_free)))
                } else {
                    Getter::List(gs)
                }
            }
            Expr::Map(entries) => Getter::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.getter(v)?)))
                    .collect::<Result<Vec<_>, CompileError>>()?,
            ),
            Expr::Math(a, op, b, pos) => {
                let a = self.getter(a)?;
                let b = self.getter(b)?;
                for side in [&a, &b] {
                    if let Getter::Literal(v) = side {
                        if !matches!(
                            v,
                            Value::Int(_) | Value::Float(_) | Value::Time(_) | Value::Duration(_)
                        ) {
                            return cerr(
                                *pos,
                                format!(
                                    "a math expression takes numbers, times or durations, not {}",
                                    v.type_name()
                                ),
                            );
                        }
                    }
                }
                Getter::Math(Box::new(a), *op, Box::new(b))
            }
        })
    }

    pub fn cond(&self, b: &BoolExpr) -> Result<Cond, CompileError> {
        Ok(match b {
            BoolExpr::Or(items) => Cond::Or(
                items
                    .iter()
                    .map(|i| self.cond(i))
                    .collect::<Result<_, _>>()?,
            ),
            BoolExpr::And(items) => Cond::And(
                items
                    .iter()
                    .map(|i| self.cond(i))
                    .collect::<Result<_, _>>()?,
            ),
            BoolExpr::Not(inner) => Cond::Not(Box::new(self.cond(inner)?)),
            BoolExpr::Compare(a, op, b) => Cond::Compare(self.getter(a)?, *op, self.getter(b)?),
            BoolExpr::Value(v) => Cond::Value(self.getter(v)?),
        })
    }

    pub fn editor(&self, c: &ast::Call) -> Result<Editor, CompileError> {
        funcs::compile_editor(self, c)
    }
}
