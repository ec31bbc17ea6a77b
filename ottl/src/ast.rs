//! The syntax tree of OTTL statements and conditions, as the parser reads them. Names are
//! not resolved here: [`crate::compile`] checks functions, paths and enums against a
//! context.

/// Where something starts in the statement text, in characters from 0.
pub type Pos = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub editor: Call,
    pub condition: Option<BoolExpr>,
}

/// A function call: an editor (lowercase name) or a converter (capitalised name), with the
/// keys that index a converter's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<Arg>,
    pub keys: Vec<Key>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// `name = value`; named arguments come after positional ones.
    pub name: Option<String>,
    pub value: Expr,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    String(String),
    Int(i64),
    /// A path or converter whose value is the key.
    Expr(Box<Expr>),
}

/// A path: `[context.]field[.field...]` and keys, e.g. `resource.attributes["k"][0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub segments: Vec<String>,
    pub keys: Vec<Key>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    Enum(String, Pos),
    Path(Path),
    Call(Call),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    Math(Box<Expr>, MathOp, Box<Expr>, Pos),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BoolExpr {
    Or(Vec<BoolExpr>),
    And(Vec<BoolExpr>),
    Not(Box<BoolExpr>),
    Compare(Expr, CompareOp, Expr),
    /// A value that must be a boolean: a literal, a converter or a path.
    Value(Expr),
}
