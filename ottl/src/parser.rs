//! Lexer and recursive-descent parser for OTTL statements and conditions (upstream's
//! GRAMMAR.md and LANGUAGE.md). Errors carry the column where the problem starts.

use crate::ast::*;

/// A syntax error: what was wrong and the column (from 1) where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    /// Characters from the start of the text, from 0.
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A name: lowercase (editor or path segment), capitalised (converter) or all
    /// uppercase (enum); keywords are names too.
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    Colon,
    Assign,
    Op(CompareOp),
    Plus,
    Minus,
    Star,
    Slash,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("\"{s}\""),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Int(i) => format!("{i}"),
            Tok::Float(f) => format!("{f}"),
            Tok::Bytes(_) => "a byte literal".to_string(),
            Tok::LParen => "\"(\"".to_string(),
            Tok::RParen => "\")\"".to_string(),
            Tok::LBracket => "\"[\"".to_string(),
            Tok::RBracket => "\"]\"".to_string(),
            Tok::LBrace => "\"{\"".to_string(),
            Tok::RBrace => "\"}\"".to_string(),
            Tok::Comma => "\",\"".to_string(),
            Tok::Dot => "\".\"".to_string(),
            Tok::Colon => "\":\"".to_string(),
            Tok::Assign => "\"=\"".to_string(),
            Tok::Op(op) => format!("\"{}\"", op.symbol()),
            Tok::Plus => "\"+\"".to_string(),
            Tok::Minus => "\"-\"".to_string(),
            Tok::Star => "\"*\"".to_string(),
            Tok::Slash => "\"/\"".to_string(),
            Tok::End => "the end of the statement".to_string(),
        }
    }
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        message: message.into(),
        pos,
    })
}

fn lex(text: &str) -> Result<Vec<(Tok, Pos)>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            ',' => Some(Tok::Comma),
            ':' => Some(Tok::Colon),
            '+' => Some(Tok::Plus),
            '-' => Some(Tok::Minus),
            '*' => Some(Tok::Star),
            '/' => Some(Tok::Slash),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push((tok, start));
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        match (c, next) {
            ('=', Some('=')) => {
                out.push((Tok::Op(CompareOp::Eq), start));
                i += 2;
                continue;
            }
            ('!', Some('=')) => {
                out.push((Tok::Op(CompareOp::Ne), start));
                i += 2;
                continue;
            }
            ('<', Some('=')) => {
                out.push((Tok::Op(CompareOp::Le), start));
                i += 2;
                continue;
            }
            ('>', Some('=')) => {
                out.push((Tok::Op(CompareOp::Ge), start));
                i += 2;
                continue;
            }
            ('<', _) => {
                out.push((Tok::Op(CompareOp::Lt), start));
                i += 1;
                continue;
            }
            ('>', _) => {
                out.push((Tok::Op(CompareOp::Gt), start));
                i += 1;
                continue;
            }
            ('=', _) => {
                out.push((Tok::Assign, start));
                i += 1;
                continue;
            }
            _ => {}
        }
        if c == '"' {
            let (s, end) = lex_string(&chars, i)?;
            out.push((Tok::Str(s), start));
            i = end;
            continue;
        }
        if c == '0' && matches!(next, Some('x') | Some('X')) {
            let mut j = i + 2;
            while j < chars.len() && chars[j].is_ascii_hexdigit() {
                j += 1;
            }
            let digits: String = chars[i + 2..j].iter().collect();
            if digits.is_empty() || digits.len() % 2 != 0 {
                return err(
                    start,
                    "a byte literal needs an even number of hex digits after 0x",
                );
            }
            let bytes = hex::decode(&digits).map_err(|e| SyntaxError {
                message: format!("invalid byte literal: {e}"),
                pos: start,
            })?;
            out.push((Tok::Bytes(bytes), start));
            i = j;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let mut float = false;
            if j < chars.len()
                && chars[j] == '.'
                && chars.get(j + 1).is_some_and(|n| n.is_ascii_digit())
            {
                float = true;
                j += 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let text: String = chars[i..j].iter().collect();
            if chars
                .get(j)
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
            {
                return err(
                    start,
                    format!("unexpected character after the number {text}"),
                );
            }
            if float {
                let f: f64 = text.parse().map_err(|_| SyntaxError {
                    message: format!("invalid number {text}"),
                    pos: start,
                })?;
                out.push((Tok::Float(f), start));
            } else {
                let n: i64 = text.parse().map_err(|_| SyntaxError {
                    message: format!("the integer {text} is out of range"),
                    pos: start,
                })?;
                out.push((Tok::Int(n), start));
            }
            i = j;
            continue;
        }
        if c == '.' {
            out.push((Tok::Dot, start));
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            out.push((Tok::Ident(chars[i..j].iter().collect()), start));
            i = j;
            continue;
        }
        return err(start, format!("unexpected character '{c}'"));
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

/// A double-quoted string with Go's escapes; returns the text and the index after it.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return err(start, "unterminated string");
        };
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return err(start, "unterminated string");
                };
                let simple = match e {
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'v' => Some('\u{b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    i += 2;
                    continue;
                }
                let width = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => {
                        return err(i, format!("invalid escape \\{e} in a string"));
                    }
                };
                let digits: String = chars
                    .get(i + 2..i + 2 + width)
                    .map(|d| d.iter().collect())
                    .unwrap_or_default();
                let code = u32::from_str_radix(&digits, 16)
                    .ok()
                    .filter(|_| digits.len() == width);
                let Some(ch) = code.and_then(char::from_u32) else {
                    return err(i, format!("invalid escape \\{e}{digits} in a string"));
                };
                out.push(ch);
                i += 2 + width;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

const KEYWORDS: [&str; 6] = ["where", "and", "or", "not", "true", "false"];

fn is_lower_start(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_lowercase() || c == '_')
}

fn is_upper_start(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}

fn is_enum_name(s: &str) -> bool {
    is_upper_start(s)
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at.min(self.toks.len() - 1)].0
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.toks[(self.at + ahead).min(self.toks.len() - 1)].0
    }

    fn pos(&self) -> Pos {
        self.toks[self.at.min(self.toks.len() - 1)].1
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.at < self.toks.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), SyntaxError> {
        if *self.peek() == want {
            self.bump();
            Ok(())
        } else {
            err(
                self.pos(),
                format!("expected {what}, found {}", self.peek().describe()),
            )
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == word)
    }

    fn statement(&mut self) -> Result<Statement, SyntaxError> {
        let pos = self.pos();
        let name = match self.peek() {
            Tok::Ident(name) if is_lower_start(name) && *self.peek_at(1) == Tok::LParen => {
                name.clone()
            }
            Tok::Ident(name) if is_upper_start(name) => {
                return err(
                    pos,
                    format!("a statement starts with an editor (a lowercase function such as set), not the converter {name}"),
                );
            }
            other => {
                return err(
                    pos,
                    format!(
                        "a statement starts with an editor such as set(...), found {}",
                        other.describe()
                    ),
                )
            }
        };
        self.bump();
        let editor = self.call_rest(name, pos)?;
        if !editor.keys.is_empty() {
            return err(pos, "an editor's result cannot be indexed");
        }
        let condition = if self.is_keyword("where") {
            self.bump();
            Some(self.bool_expr()?)
        } else {
            None
        };
        self.end()?;
        Ok(Statement { editor, condition })
    }

    fn end(&mut self) -> Result<(), SyntaxError> {
        if *self.peek() == Tok::End {
            Ok(())
        } else {
            err(
                self.pos(),
                format!("unexpected {} (expected the end)", self.peek().describe()),
            )
        }
    }

    /// After the name: `(args)` and, for converters, keys.
    fn call_rest(&mut self, name: String, pos: Pos) -> Result<Call, SyntaxError> {
        self.expect(Tok::LParen, "\"(\"")?;
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                let arg_pos = self.pos();
                let named = match (self.peek(), self.peek_at(1)) {
                    (Tok::Ident(n), Tok::Assign) if is_lower_start(n) => Some(n.clone()),
                    _ => None,
                };
                if named.is_some() {
                    self.bump();
                    self.bump();
                } else if args.iter().any(|a: &Arg| a.name.is_some()) {
                    return err(
                        arg_pos,
                        "a positional argument cannot follow a named argument",
                    );
                }
                let value = self.value()?;
                args.push(Arg {
                    name: named,
                    value,
                    pos: arg_pos,
                });
                if *self.peek() == Tok::Comma {
                    self.bump();
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RParen, "\",\" or \")\"")?;
        let keys = self.keys()?;
        Ok(Call {
            name,
            pos,
            args,
            keys,
        })
    }

    fn keys(&mut self) -> Result<Vec<Key>, SyntaxError> {
        let mut keys = Vec::new();
        while *self.peek() == Tok::LBracket {
            let pos = self.pos();
            self.bump();
            let key = match self.peek().clone() {
                Tok::Str(s) => {
                    self.bump();
                    Key::String(s)
                }
                Tok::Int(i) => {
                    self.bump();
                    Key::Int(i)
                }
                Tok::Ident(_) => {
                    let e = self.primary()?;
                    match e {
                        Expr::Path(_) | Expr::Call(_) => Key::Expr(Box::new(e)),
                        _ => {
                            return err(
                                pos + 1,
                                "a key is a string, an integer, a path or a converter",
                            )
                        }
                    }
                }
                other => {
                    return err(
                        self.pos(),
                        format!(
                            "a key is a string, an integer, a path or a converter, found {}",
                            other.describe()
                        ),
                    )
                }
            };
            self.expect(Tok::RBracket, "\"]\"")?;
            keys.push(key);
        }
        Ok(keys)
    }

    /// A value: a math expression over primaries.
    fn value(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => MathOp::Add,
                Tok::Minus => MathOp::Sub,
                _ => return Ok(left),
            };
            let pos = self.pos();
            self.bump();
            let right = self.term()?;
            left = Expr::Math(Box::new(left), op, Box::new(right), pos);
        }
    }

    fn term(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.factor()?;
        loop {
            let op = match self.peek() {
                Tok::Star => MathOp::Mul,
                Tok::Slash => MathOp::Div,
                _ => return Ok(left),
            };
            let pos = self.pos();
            self.bump();
            let right = self.factor()?;
            left = Expr::Math(Box::new(left), op, Box::new(right), pos);
        }
    }

    fn factor(&mut self) -> Result<Expr, SyntaxError> {
        if *self.peek() == Tok::LParen {
            self.bump();
            let e = self.value()?;
            self.expect(Tok::RParen, "\")\"")?;
            return Ok(e);
        }
        // A sign directly before a number is part of the literal.
        if matches!(self.peek(), Tok::Plus | Tok::Minus) {
            let negative = *self.peek() == Tok::Minus;
            let pos = self.pos();
            match self.peek_at(1).clone() {
                Tok::Int(i) => {
                    self.bump();
                    self.bump();
                    return Ok(Expr::Int(if negative { i.wrapping_neg() } else { i }));
                }
                Tok::Float(f) => {
                    self.bump();
                    self.bump();
                    return Ok(Expr::Float(if negative { -f } else { f }));
                }
                _ => return err(pos, "a sign must be followed by a number"),
            }
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::String(s))
            }
            Tok::Int(i) => {
                self.bump();
                Ok(Expr::Int(i))
            }
            Tok::Float(f) => {
                self.bump();
                Ok(Expr::Float(f))
            }
            Tok::Bytes(b) => {
                self.bump();
                Ok(Expr::Bytes(b))
            }
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                if *self.peek() != Tok::RBracket {
                    loop {
                        items.push(self.value()?);
                        if *self.peek() == Tok::Comma {
                            self.bump();
                            continue;
                        }
                        break;
                    }
                }
                self.expect(Tok::RBracket, "\",\" or \"]\"")?;
                Ok(Expr::List(items))
            }
            Tok::LBrace => {
                self.bump();
                let mut entries = Vec::new();
                if *self.peek() != Tok::RBrace {
                    loop {
                        let key = match self.bump() {
                            Tok::Str(s) => s,
                            other => {
                                return err(
                                    self.toks[self.at.saturating_sub(1)].1,
                                    format!("a map key is a string, found {}", other.describe()),
                                )
                            }
                        };
                        self.expect(Tok::Colon, "\":\"")?;
                        entries.push((key, self.value()?));
                        if *self.peek() == Tok::Comma {
                            self.bump();
                            continue;
                        }
                        break;
                    }
                }
                self.expect(Tok::RBrace, "\",\" or \"}\"")?;
                Ok(Expr::Map(entries))
            }
            Tok::Ident(name) => {
                if *self.peek_at(1) == Tok::LParen {
                    if is_lower_start(&name) {
                        return err(
                            pos,
                            format!("the editor {name} cannot be used as a value; converters (capitalised) can"),
                        );
                    }
                    self.bump();
                    return Ok(Expr::Call(self.call_rest(name, pos)?));
                }
                match name.as_str() {
                    "nil" => {
                        self.bump();
                        return Ok(Expr::Nil);
                    }
                    "true" => {
                        self.bump();
                        return Ok(Expr::Bool(true));
                    }
                    "false" => {
                        self.bump();
                        return Ok(Expr::Bool(false));
                    }
                    _ => {}
                }
                if KEYWORDS.contains(&name.as_str()) {
                    return err(pos, format!("unexpected keyword \"{name}\""));
                }
                if is_enum_name(&name) {
                    self.bump();
                    return Ok(Expr::Enum(name, pos));
                }
                if !is_lower_start(&name) {
                    return err(
                        pos,
                        format!("\"{name}\" is neither a path (lowercase), an enum (uppercase) nor a converter call"),
                    );
                }
                self.path()
            }
            other => err(pos, format!("expected a value, found {}", other.describe())),
        }
    }

    fn path(&mut self) -> Result<Expr, SyntaxError> {
        let pos = self.pos();
        let mut segments = Vec::new();
        loop {
            match self.bump() {
                Tok::Ident(s) if is_lower_start(&s) => segments.push(s),
                other => {
                    return err(
                        self.toks[self.at.saturating_sub(1)].1,
                        format!(
                            "expected a lowercase path segment, found {}",
                            other.describe()
                        ),
                    )
                }
            }
            if *self.peek() == Tok::Dot {
                self.bump();
                continue;
            }
            break;
        }
        let keys = self.keys()?;
        Ok(Expr::Path(Path {
            segments,
            keys,
            pos,
        }))
    }

    fn bool_expr(&mut self) -> Result<BoolExpr, SyntaxError> {
        let mut terms = vec![self.bool_term()?];
        while self.is_keyword("or") {
            self.bump();
            terms.push(self.bool_term()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            BoolExpr::Or(terms)
        })
    }

    fn bool_term(&mut self) -> Result<BoolExpr, SyntaxError> {
        let mut factors = vec![self.bool_factor()?];
        while self.is_keyword("and") {
            self.bump();
            factors.push(self.bool_factor()?);
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            BoolExpr::And(factors)
        })
    }

    fn bool_factor(&mut self) -> Result<BoolExpr, SyntaxError> {
        if self.is_keyword("not") {
            self.bump();
            return Ok(BoolExpr::Not(Box::new(self.bool_factor()?)));
        }
        // `(` opens either a grouped condition or a grouped math value that a comparison
        // follows: try the comparison first.
        let start = self.at;
        match self.comparison_or_value() {
            Ok(b) => Ok(b),
            Err(first) => {
                if self.toks[start].0 != Tok::LParen {
                    return Err(first);
                }
                self.at = start + 1;
                let inner = self.bool_expr()?;
                self.expect(Tok::RParen, "\")\"")?;
                Ok(inner)
            }
        }
    }

    fn comparison_or_value(&mut self) -> Result<BoolExpr, SyntaxError> {
        let left = self.value()?;
        if let Tok::Op(op) = *self.peek() {
            self.bump();
            let right = self.value()?;
            return Ok(BoolExpr::Compare(left, op, right));
        }
        match left {
            Expr::Bool(_) | Expr::Call(_) | Expr::Path(_) => Ok(BoolExpr::Value(left)),
            _ => err(
                self.pos(),
                format!(
                    "expected a comparison operator, \"and\", \"or\" or the end, found {}",
                    self.peek().describe()
                ),
            ),
        }
    }
}

/// Parses one statement: `editor(args) [where condition]`.
pub fn parse_statement(text: &str) -> Result<Statement, SyntaxError> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
    };
    p.statement()
}

/// Parses one condition (a boolean expression), as the filter processor takes them.
pub fn parse_condition(text: &str) -> Result<BoolExpr, SyntaxError> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
    };
    if *p.peek() == Tok::End {
        return err(0, "the condition is empty");
    }
    let b = p.bool_expr()?;
    p.end()?;
    Ok(b)
}

/// Parses a value expression on its own.
pub fn parse_value(text: &str) -> Result<Expr, SyntaxError> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
    };
    let v = p.value()?;
    p.end()?;
    Ok(v)
}
