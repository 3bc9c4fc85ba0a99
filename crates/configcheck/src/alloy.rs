//! Offline checks of rendered Grafana Alloy configs (`rendered/<env>/alloy-<service>.alloy`).
//!
//! A hand-written parser of the Alloy configuration syntax (blocks with optional string labels,
//! attributes, and expressions: literals, strings with escapes, raw strings, arrays, objects,
//! identifiers, dotted references, indexing, function calls, unary and binary operators), then
//! checks of what `alloy run` would only find on a host:
//!
//! - every component and nested block is known, with only documented arguments
//!   (`data/alloy-components.txt`, the pinned v1.21 release line) and its required ones;
//! - every reference names a declared component and one of its exports;
//! - every `forward_to` element is a receiver of the right signal (logs or metrics);
//! - no orphan: every component whose exports something must consume is consumed;
//! - every `sys.env("X")` is set in the sidecar's container (task definition or ECS agent).
//!
//! Entry points: [`check_alloy_config`] (all checks, findings with line:column), [`parse`],
//! [`env_names_from_container_definitions`] and [`ECS_AGENT_ENV`] for the `sys.env` list.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Environment variables the ECS agent sets in every container of a task on EC2, in addition to
/// the task definition's `environment` and `secrets`.
pub const ECS_AGENT_ENV: &[&str] = &[
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
    "ECS_AGENT_URI",
    "AWS_EXECUTION_ENV",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// The Alloy release line the argument table was written for.
pub const ALLOY_VERSION: &str = "v1.21";

const COMPONENT_TABLE: &str = include_str!("../data/alloy-components.txt");

/// Namespaces and functions of Alloy's standard library (syntax/internal/stdlib/stdlib.go).
const STDLIB_ROOTS: &[&str] =
    &["sys", "encoding", "string", "array", "convert", "file", "coalesce", "json_path", "constants"];
/// Un-namespaced functions kept only as deprecated aliases.
const DEPRECATED_FUNCTIONS: &[(&str, &str)] = &[
    ("env", "sys.env"),
    ("json_decode", "encoding.from_json"),
    ("yaml_decode", "encoding.from_yaml"),
    ("base64_decode", "encoding.from_base64"),
    ("concat", "array.concat"),
    ("format", "string.format"),
    ("join", "string.join"),
    ("replace", "string.replace"),
    ("split", "string.split"),
    ("to_lower", "string.to_lower"),
    ("to_upper", "string.to_upper"),
    ("trim", "string.trim"),
    ("trim_prefix", "string.trim_prefix"),
    ("trim_suffix", "string.trim_suffix"),
    ("trim_space", "string.trim_space"),
    ("nonsensitive", "convert.nonsensitive"),
];

// ---------------------------------------------------------------------------------------------
// Findings

/// One problem in a config, with the 1-based position it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

fn finding(pos: Pos, message: impl Into<String>) -> Finding {
    Finding { line: pos.line, column: pos.column, message: message.into() }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

/// A 1-based source position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// The statements of a file or of a block body.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Attribute(Attribute),
    Block(Block),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: Expr,
    pub pos: Pos,
}

/// `a.b.c "label" { ... }`: `name` is the dotted name, e.g. `loki.write` or `stage.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub name: String,
    pub label: Option<String>,
    pub body: Body,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Null(Pos),
    Bool(bool, Pos),
    Number(String, Pos),
    String(String, Pos),
    Array(Vec<Expr>, Pos),
    Object(Vec<(String, Expr)>, Pos),
    Identifier(String, Pos),
    /// `expr.name`
    Access(Box<Expr>, String, Pos),
    /// `expr[index]`
    Index(Box<Expr>, Box<Expr>, Pos),
    /// `function(args)`
    Call(Box<Expr>, Vec<Expr>, Pos),
    Unary(&'static str, Box<Expr>, Pos),
    Binary(&'static str, Box<Expr>, Box<Expr>, Pos),
}

impl Expr {
    pub fn pos(&self) -> Pos {
        match self {
            Expr::Null(p)
            | Expr::Bool(_, p)
            | Expr::Number(_, p)
            | Expr::String(_, p)
            | Expr::Array(_, p)
            | Expr::Object(_, p)
            | Expr::Identifier(_, p)
            | Expr::Access(_, _, p)
            | Expr::Index(_, _, p)
            | Expr::Call(_, _, p)
            | Expr::Unary(_, _, p)
            | Expr::Binary(_, _, _, p) => *p,
        }
    }

    /// `a.b.c` as ["a", "b", "c"] when the expression is a plain dotted reference.
    pub fn dotted(&self) -> Option<Vec<String>> {
        match self {
            Expr::Identifier(name, _) => Some(vec![name.clone()]),
            Expr::Access(inner, name, _) => {
                let mut parts = inner.dotted()?;
                parts.push(name.clone());
                Some(parts)
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Number(String),
    Punct(&'static str),
    Newline,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Str(_) => write!(f, "a string"),
            Tok::Number(n) => write!(f, "number {n}"),
            Tok::Punct(p) => write!(f, "`{p}`"),
            Tok::Newline => write!(f, "end of line"),
            Tok::Eof => write!(f, "end of file"),
        }
    }
}

const PUNCTS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "{", "}", "[", "]", "(", ")", ",", ".", "=", "<", ">", "+", "-", "*", "/", "%",
    "^", "!", ":",
];

fn lex(src: &str) -> Result<Vec<(Tok, Pos)>, Finding> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    // Advances over n characters, keeping line and column.
    macro_rules! bump {
        ($n:expr) => {
            for _ in 0..$n {
                if chars[i] == '\n' {
                    line += 1;
                    col = 1;
                } else {
                    col += 1;
                }
                i += 1;
            }
        };
    }
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, column: col };
        if c == '\n' {
            toks.push((Tok::Newline, pos));
            bump!(1);
        } else if c.is_whitespace() {
            bump!(1);
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                bump!(1);
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            bump!(2);
            loop {
                if i >= chars.len() {
                    return Err(finding(pos, "unterminated /* comment"));
                }
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    bump!(2);
                    break;
                }
                bump!(1);
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                bump!(1);
            }
            toks.push((Tok::Ident(chars[start..i].iter().collect()), pos));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                bump!(1);
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                bump!(1);
                while i < chars.len() && chars[i].is_ascii_digit() {
                    bump!(1);
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                bump!(1);
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    bump!(1);
                }
                if i >= chars.len() || !chars[i].is_ascii_digit() {
                    return Err(finding(pos, "malformed number exponent"));
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    bump!(1);
                }
            }
            toks.push((Tok::Number(chars[start..i].iter().collect()), pos));
        } else if c == '"' {
            bump!(1);
            let mut value = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(finding(pos, "unterminated string"));
                };
                match ch {
                    '"' => {
                        bump!(1);
                        break;
                    }
                    '\n' => return Err(finding(pos, "newline in string (use \\n or a `raw string`)")),
                    '\\' => {
                        let esc_pos = Pos { line, column: col };
                        let Some(&e) = chars.get(i + 1) else {
                            return Err(finding(esc_pos, "unterminated escape sequence"));
                        };
                        bump!(2);
                        match e {
                            'a' => value.push('\u{7}'),
                            'b' => value.push('\u{8}'),
                            'f' => value.push('\u{c}'),
                            'n' => value.push('\n'),
                            'r' => value.push('\r'),
                            't' => value.push('\t'),
                            'v' => value.push('\u{b}'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            '\'' => value.push('\''),
                            'x' | 'u' | 'U' => {
                                let n = match e {
                                    'x' => 2,
                                    'u' => 4,
                                    _ => 8,
                                };
                                let digits: String = chars.iter().skip(i).take(n).collect();
                                let code = (digits.len() == n)
                                    .then(|| u32::from_str_radix(&digits, 16).ok())
                                    .flatten()
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| finding(esc_pos, format!("invalid \\{e} escape")))?;
                                value.push(code);
                                bump!(n);
                            }
                            '0'..='7' => {
                                let digits: String =
                                    std::iter::once(e).chain(chars.iter().skip(i).take(2).copied()).collect();
                                let code = u32::from_str_radix(&digits, 8)
                                    .ok()
                                    .filter(|_| digits.len() == 3)
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| finding(esc_pos, "invalid octal escape"))?;
                                value.push(code);
                                bump!(2);
                            }
                            other => return Err(finding(esc_pos, format!("unknown escape sequence \\{other}"))),
                        }
                    }
                    other => {
                        value.push(other);
                        bump!(1);
                    }
                }
            }
            toks.push((Tok::Str(value), pos));
        } else if c == '`' {
            bump!(1);
            let start = i;
            while i < chars.len() && chars[i] != '`' {
                bump!(1);
            }
            if i >= chars.len() {
                return Err(finding(pos, "unterminated raw string"));
            }
            let value: String = chars[start..i].iter().collect();
            bump!(1);
            toks.push((Tok::Str(value), pos));
        } else if let Some(p) = PUNCTS.iter().find(|p| {
            let pc: Vec<char> = p.chars().collect();
            chars[i..].starts_with(&pc)
        }) {
            bump!(p.len());
            toks.push((Tok::Punct(p), pos));
        } else {
            return Err(finding(pos, format!("unexpected character `{c}`")));
        }
    }
    toks.push((Tok::Eof, Pos { line, column: col }));
    Ok(toks)
}

// ---------------------------------------------------------------------------------------------
// Parser (recursive descent; newlines end statements, and are skipped inside brackets)

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
}

type PResult<T> = Result<T, Finding>;

/// Parses a whole config file.
pub fn parse(src: &str) -> Result<Body, Finding> {
    let mut p = Parser { toks: lex(src)?, at: 0 };
    let body = p.body(true)?;
    Ok(body)
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at].0
    }
    fn pos(&self) -> Pos {
        self.toks[self.at].1
    }
    fn next(&mut self) -> (Tok, Pos) {
        let t = self.toks[self.at].clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }
    fn skip_newlines(&mut self) {
        while *self.peek() == Tok::Newline {
            self.next();
        }
    }
    fn expect(&mut self, p: &'static str) -> PResult<Pos> {
        if self.is_punct(p) {
            Ok(self.next().1)
        } else {
            Err(finding(self.pos(), format!("expected `{p}`, found {}", self.peek())))
        }
    }

    fn body(&mut self, top: bool) -> PResult<Body> {
        let mut statements = Vec::new();
        loop {
            self.skip_newlines();
            match self.peek() {
                Tok::Eof if top => break,
                Tok::Punct("}") if !top => break,
                Tok::Ident(_) => statements.push(self.statement()?),
                other => {
                    return Err(finding(self.pos(), format!("expected an attribute or block, found {other}")));
                }
            }
            // A statement ends at a newline, `}` or the end of the file.
            match self.peek() {
                Tok::Newline | Tok::Eof => {}
                Tok::Punct("}") if !top => {}
                other => {
                    return Err(finding(self.pos(), format!("expected a new line after the statement, found {other}")))
                }
            }
        }
        Ok(Body { statements })
    }

    fn statement(&mut self) -> PResult<Statement> {
        let (first, pos) = match self.next() {
            (Tok::Ident(name), pos) => (name, pos),
            (other, pos) => return Err(finding(pos, format!("expected a name, found {other}"))),
        };
        if self.is_punct("=") {
            self.next();
            let value = self.expr()?;
            return Ok(Statement::Attribute(Attribute { name: first, value, pos }));
        }
        let mut name = first;
        while self.is_punct(".") {
            self.next();
            match self.next() {
                (Tok::Ident(part), _) => {
                    name.push('.');
                    name.push_str(&part);
                }
                (other, pos) => return Err(finding(pos, format!("expected a name after `.`, found {other}"))),
            }
        }
        let label = if let Tok::Str(label) = self.peek().clone() {
            self.next();
            Some(label)
        } else {
            None
        };
        if !self.is_punct("{") {
            let what = if name.contains('.') || label.is_some() { "`{` to open the block" } else { "`=` or `{`" };
            return Err(finding(self.pos(), format!("expected {what} after `{name}`, found {}", self.peek())));
        }
        self.next();
        let body = self.body(false)?;
        self.expect("}")?;
        Ok(Statement::Block(Block { name, label, body, pos }))
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.binary(0)
    }

    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut lhs = self.unary()?;
        while let Tok::Punct(op) = *self.peek() {
            let Some(prec) = precedence(op) else { break };
            if prec < min_prec {
                break;
            }
            let pos = self.next().1;
            self.skip_newlines();
            // `^` is right-associative, the others left-associative.
            let next_min = if op == "^" { prec } else { prec + 1 };
            let rhs = self.binary(next_min)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs), pos);
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.is_punct("!") || self.is_punct("-") {
            let (tok, pos) = self.next();
            let op = if tok == Tok::Punct("!") { "!" } else { "-" };
            let inner = self.unary()?;
            return Ok(Expr::Unary(op, Box::new(inner), pos));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            if self.is_punct(".") {
                let pos = self.next().1;
                match self.next() {
                    (Tok::Ident(name), _) => e = Expr::Access(Box::new(e), name, pos),
                    (other, pos) => {
                        return Err(finding(pos, format!("expected a field name after `.`, found {other}")))
                    }
                }
            } else if self.is_punct("[") {
                let pos = self.next().1;
                self.skip_newlines();
                let index = self.expr()?;
                self.skip_newlines();
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(index), pos);
            } else if self.is_punct("(") {
                let pos = self.next().1;
                let args = self.list(")")?;
                e = Expr::Call(Box::new(e), args, pos);
            } else {
                break;
            }
        }
        Ok(e)
    }

    /// Comma-separated expressions up to `close`; newlines allowed, trailing comma allowed.
    fn list(&mut self, close: &'static str) -> PResult<Vec<Expr>> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            if self.is_punct(close) {
                self.next();
                return Ok(items);
            }
            items.push(self.expr()?);
            self.skip_newlines();
            if self.is_punct(",") {
                self.next();
            } else if self.is_punct(close) {
                self.next();
                return Ok(items);
            } else {
                return Err(finding(self.pos(), format!("expected `,` or `{close}`, found {}", self.peek())));
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let (tok, pos) = self.next();
        Ok(match tok {
            Tok::Str(s) => Expr::String(s, pos),
            Tok::Number(n) => Expr::Number(n, pos),
            Tok::Ident(name) => match name.as_str() {
                "true" => Expr::Bool(true, pos),
                "false" => Expr::Bool(false, pos),
                "null" => Expr::Null(pos),
                _ => Expr::Identifier(name, pos),
            },
            Tok::Punct("(") => {
                self.skip_newlines();
                let e = self.expr()?;
                self.skip_newlines();
                self.expect(")")?;
                e
            }
            Tok::Punct("[") => Expr::Array(self.list("]")?, pos),
            Tok::Punct("{") => Expr::Object(self.object_fields()?, pos),
            other => return Err(finding(pos, format!("expected an expression, found {other}"))),
        })
    }

    fn object_fields(&mut self) -> PResult<Vec<(String, Expr)>> {
        let mut fields = Vec::new();
        loop {
            self.skip_newlines();
            if self.is_punct("}") {
                self.next();
                return Ok(fields);
            }
            let key = match self.next() {
                (Tok::Ident(k), _) | (Tok::Str(k), _) => k,
                (other, pos) => return Err(finding(pos, format!("expected an object key, found {other}"))),
            };
            self.expect("=")?;
            self.skip_newlines();
            fields.push((key, self.expr()?));
            self.skip_newlines();
            if self.is_punct(",") {
                self.next();
            } else if self.is_punct("}") {
                self.next();
                return Ok(fields);
            } else {
                return Err(finding(self.pos(), format!("expected `,` or `}}` in object, found {}", self.peek())));
            }
        }
    }
}

fn precedence(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "==" | "!=" | "<" | "<=" | ">" | ">=" => 3,
        "+" | "-" => 4,
        "*" | "/" | "%" => 5,
        "^" => 6,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Component table (data/alloy-components.txt)

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    Logs,
    Metrics,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        })
    }
}

#[derive(Debug, Default, Clone)]
struct BlockSpec {
    attrs: BTreeSet<String>,
    required: BTreeSet<String>,
    blocks: BTreeMap<String, BlockSpec>,
    /// export name => receiver signal (None: not a receiver)
    exports: BTreeMap<String, Option<Signal>>,
    forwards: Option<Signal>,
    /// A top-level component (needs a label) rather than a configuration block.
    component: bool,
}

struct Table {
    top: BTreeMap<String, BlockSpec>,
}

fn load_table() -> Table {
    // group name => its raw lines (indentation relative to the group)
    let mut groups: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    let mut entries: Vec<(usize, String)> = Vec::new();
    let mut current_group: Option<String> = None;
    for raw in COMPONENT_TABLE.lines() {
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let indent = (raw.len() - raw.trim_start().len()) / 2;
        let text = raw.trim().to_string();
        if indent == 0 {
            current_group = text.strip_prefix("group ").map(str::to_string);
            if let Some(g) = &current_group {
                groups.insert(g.clone(), Vec::new());
                continue;
            }
        }
        match &current_group {
            Some(g) => groups.get_mut(g).expect("group").push((indent - 1, text)),
            None => entries.push((indent, text)),
        }
    }
    // Expand `use` lines recursively.
    fn expand(
        lines: &[(usize, String)],
        groups: &BTreeMap<String, Vec<(usize, String)>>,
        out: &mut Vec<(usize, String)>,
    ) {
        for (indent, text) in lines {
            if let Some(g) = text.strip_prefix("use ") {
                let body = groups.get(g).unwrap_or_else(|| panic!("alloy-components.txt: unknown group {g}"));
                let shifted: Vec<(usize, String)> = body.iter().map(|(i, t)| (i + indent, t.clone())).collect();
                expand(&shifted, groups, out);
            } else {
                out.push((*indent, text.clone()));
            }
        }
    }
    let mut lines = Vec::new();
    expand(&entries, &groups, &mut lines);

    let mut top = BTreeMap::new();
    let mut stack: Vec<(String, BlockSpec)> = Vec::new();
    let close = |stack: &mut Vec<(String, BlockSpec)>, top: &mut BTreeMap<String, BlockSpec>, depth: usize| {
        while stack.len() > depth {
            let (name, spec) = stack.pop().expect("non-empty");
            match stack.last_mut() {
                Some((_, parent)) => {
                    parent.blocks.insert(name, spec);
                }
                None => {
                    top.insert(name, spec);
                }
            }
        }
    };
    for (indent, text) in lines {
        let mut words = text.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let arg = words.next().unwrap_or_default().to_string();
        let flag = words.next();
        match kind {
            "component" | "config" => {
                close(&mut stack, &mut top, 0);
                stack.push((arg, BlockSpec { component: kind == "component", ..BlockSpec::default() }));
            }
            "block" => {
                close(&mut stack, &mut top, indent);
                stack.push((arg, BlockSpec::default()));
            }
            _ => {
                close(&mut stack, &mut top, indent);
                let spec = &mut stack.last_mut().expect("alloy-components.txt: line outside a block").1;
                match kind {
                    "attr" => {
                        if flag == Some("required") {
                            spec.required.insert(arg.clone());
                        }
                        spec.attrs.insert(arg);
                    }
                    "exports" => {
                        let (name, signal) = match arg.split_once(':') {
                            Some((n, "logs")) => (n.to_string(), Some(Signal::Logs)),
                            Some((n, "metrics")) => (n.to_string(), Some(Signal::Metrics)),
                            Some((_, other)) => {
                                panic!("alloy-components.txt: unknown signal {other}")
                            }
                            None => (arg, None),
                        };
                        spec.exports.insert(name, signal);
                    }
                    "forwards" => {
                        spec.forwards = Some(if arg == "logs" { Signal::Logs } else { Signal::Metrics });
                    }
                    other => panic!("alloy-components.txt: unknown keyword {other}"),
                }
            }
        }
    }
    close(&mut stack, &mut top, 0);
    Table { top }
}

// ---------------------------------------------------------------------------------------------
// Checks

struct Component<'a> {
    name: String,
    label: String,
    block: &'a Block,
    spec: &'a BlockSpec,
}

impl Component<'_> {
    fn id(&self) -> String {
        format!("{} \"{}\"", self.name, self.label)
    }
}

/// Runs every check on one config. `env_set_by_task`: the variables the sidecar container gets
/// from its task definition (`environment` and `secrets` names); [`ECS_AGENT_ENV`] is added.
/// An empty result means the config passed.
pub fn check_alloy_config(src: &str, env_set_by_task: &[&str]) -> Vec<Finding> {
    let body = match parse(src) {
        Ok(body) => body,
        Err(f) => return vec![Finding { message: format!("syntax error: {}", f.message), ..f }],
    };
    let table = load_table();
    let mut findings = Vec::new();

    // Components and configuration blocks.
    let mut components: Vec<Component> = Vec::new();
    let mut seen = BTreeSet::new();
    for statement in &body.statements {
        match statement {
            Statement::Attribute(a) => {
                findings.push(finding(a.pos, format!("attribute `{}` outside any block", a.name)));
            }
            Statement::Block(b) => {
                let Some(spec) = table.top.get(&b.name) else {
                    let hint = suggest(&b.name, table.top.keys().map(String::as_str));
                    findings.push(finding(
                        b.pos,
                        format!("unknown component `{}` for Alloy {ALLOY_VERSION}{hint}", b.name),
                    ));
                    continue;
                };
                check_body(&b.name, &b.body, spec, &mut findings);
                if spec.component {
                    let Some(label) = &b.label else {
                        findings.push(finding(
                            b.pos,
                            format!("component `{}` needs a label, e.g. {} \"default\" {{ ... }}", b.name, b.name),
                        ));
                        continue;
                    };
                    if !seen.insert((b.name.clone(), label.clone())) {
                        findings.push(finding(b.pos, format!("component {} \"{label}\" is declared twice", b.name)));
                        continue;
                    }
                    components.push(Component { name: b.name.clone(), label: label.clone(), block: b, spec });
                } else if let Some(label) = &b.label {
                    findings.push(finding(b.pos, format!("`{}` takes no label (found \"{label}\")", b.name)));
                }
            }
        }
    }

    // References, forward_to and sys.env.
    let mut env: BTreeSet<&str> = env_set_by_task.iter().copied().collect();
    env.extend(ECS_AGENT_ENV.iter().copied());
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for component in &components {
        let mut refs = Vec::new();
        collect_refs(&component.block.body, &mut refs, &mut findings, &env);
        for (parts, pos) in refs {
            match resolve(&parts, &components) {
                Ok((target, export)) => {
                    if target.id() == component.id() {
                        findings.push(finding(pos, format!("{} refers to itself", component.id())));
                    }
                    referenced.insert(format!("{}.{}", target.id(), export));
                    referenced.insert(target.id());
                }
                Err(message) => {
                    // A wrong export still uses the component: report the export only.
                    if let Some(target) = find_component(&parts, &components) {
                        referenced.insert(target.id());
                    }
                    findings.push(finding(pos, message));
                }
            }
        }
        check_forward_to(component, &components, &mut findings);
    }
    for b in body.statements.iter().filter_map(|s| match s {
        Statement::Block(b) if table.top.get(&b.name).is_some_and(|s| !s.component) => Some(b),
        _ => None,
    }) {
        let mut refs = Vec::new();
        collect_refs(&b.body, &mut refs, &mut findings, &env);
        for (parts, pos) in refs {
            match resolve(&parts, &components) {
                Ok((target, _)) => {
                    referenced.insert(target.id());
                }
                Err(message) => findings.push(finding(pos, message)),
            }
        }
    }

    // Orphans: a component that exports something nobody consumes does nothing.
    for component in &components {
        if !component.spec.exports.is_empty() && !referenced.contains(&component.id()) {
            let exports: Vec<&str> = component.spec.exports.keys().map(String::as_str).collect();
            findings.push(finding(
                component.block.pos,
                format!("orphan component {}: nothing uses its {}", component.id(), exports.join(" or ")),
            ));
        }
    }

    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

/// Arguments and nested blocks against the table, recursively.
fn check_body(path: &str, body: &Body, spec: &BlockSpec, findings: &mut Vec<Finding>) {
    let mut present = BTreeSet::new();
    for statement in &body.statements {
        match statement {
            Statement::Attribute(a) => {
                if !spec.attrs.contains(&a.name) {
                    let hint = suggest(&a.name, spec.attrs.iter().map(String::as_str));
                    findings.push(finding(
                        a.pos,
                        format!("{path}: unknown argument `{}` for Alloy {ALLOY_VERSION}{hint}", a.name),
                    ));
                } else if !present.insert(a.name.clone()) {
                    findings.push(finding(a.pos, format!("{path}: argument `{}` set twice", a.name)));
                }
            }
            Statement::Block(b) => {
                let inner_path = format!("{path} > {}", b.name);
                match spec.blocks.get(&b.name) {
                    Some(inner) => {
                        if let Some(label) = &b.label {
                            findings.push(finding(
                                b.pos,
                                format!("{inner_path}: nested blocks take no label (found \"{label}\")"),
                            ));
                        }
                        check_body(&inner_path, &b.body, inner, findings);
                    }
                    None => {
                        let hint = suggest(&b.name, spec.blocks.keys().map(String::as_str));
                        findings.push(finding(
                            b.pos,
                            format!("{path}: unknown block `{}` for Alloy {ALLOY_VERSION}{hint}", b.name),
                        ));
                    }
                }
            }
        }
    }
    for required in spec.required.difference(&present) {
        findings.push(finding(
            body_pos(body).unwrap_or_default(),
            format!("{path}: required argument `{required}` is missing"),
        ));
    }
}

fn body_pos(body: &Body) -> Option<Pos> {
    body.statements.first().map(|s| match s {
        Statement::Attribute(a) => a.pos,
        Statement::Block(b) => b.pos,
    })
}

/// Collects every component reference (dotted paths not rooted in the standard library) and
/// checks sys.env calls on the way.
fn collect_refs(body: &Body, refs: &mut Vec<(Vec<String>, Pos)>, findings: &mut Vec<Finding>, env: &BTreeSet<&str>) {
    for statement in &body.statements {
        match statement {
            Statement::Attribute(a) => collect_expr_refs(&a.value, refs, findings, env),
            Statement::Block(b) => collect_refs(&b.body, refs, findings, env),
        }
    }
}

fn collect_expr_refs(e: &Expr, refs: &mut Vec<(Vec<String>, Pos)>, findings: &mut Vec<Finding>, env: &BTreeSet<&str>) {
    match e {
        Expr::Null(_) | Expr::Bool(..) | Expr::Number(..) | Expr::String(..) => {}
        Expr::Array(items, _) => items.iter().for_each(|i| collect_expr_refs(i, refs, findings, env)),
        Expr::Object(fields, _) => fields.iter().for_each(|(_, v)| collect_expr_refs(v, refs, findings, env)),
        Expr::Unary(_, inner, _) => collect_expr_refs(inner, refs, findings, env),
        Expr::Binary(_, l, r, _) => {
            collect_expr_refs(l, refs, findings, env);
            collect_expr_refs(r, refs, findings, env);
        }
        Expr::Index(inner, index, _) => {
            collect_expr_refs(inner, refs, findings, env);
            collect_expr_refs(index, refs, findings, env);
        }
        Expr::Call(function, args, pos) => {
            let name = function.dotted().map(|p| p.join("."));
            match name.as_deref() {
                Some("sys.env") => match args.as_slice() {
                    [Expr::String(var, vpos)] => {
                        if !env.contains(var.as_str()) {
                            findings.push(finding(
                                *vpos,
                                format!("sys.env(\"{var}\") is read but the task definition does not set {var} (it would be \"\")"),
                            ));
                        }
                    }
                    _ => findings
                        .push(finding(*pos, "sys.env takes one string literal here, so the variable can be checked")),
                },
                Some(n) => {
                    if let Some((_, new)) = DEPRECATED_FUNCTIONS.iter().find(|(old, _)| *old == n) {
                        findings.push(finding(*pos, format!("`{n}` is a deprecated alias; use `{new}`")));
                    } else if !STDLIB_ROOTS.contains(&n.split('.').next().unwrap_or_default()) {
                        findings.push(finding(*pos, format!("unknown function `{n}`")));
                    }
                }
                None => collect_expr_refs(function, refs, findings, env),
            }
            args.iter().for_each(|a| collect_expr_refs(a, refs, findings, env));
        }
        Expr::Identifier(..) | Expr::Access(..) => match e.dotted() {
            Some(parts) if STDLIB_ROOTS.contains(&parts[0].as_str()) => {}
            Some(parts) => refs.push((parts, e.pos())),
            None => {
                if let Expr::Access(inner, _, _) = e {
                    collect_expr_refs(inner, refs, findings, env);
                }
            }
        },
    }
}

/// The component a dotted path starts with (`<name> <label> ...`).
fn find_component<'c, 'a>(parts: &[String], components: &'c [Component<'a>]) -> Option<&'c Component<'a>> {
    components.iter().find(|c| {
        let name_parts: Vec<&str> = c.name.split('.').collect();
        let n = name_parts.len();
        parts.len() > n && parts[..n].iter().zip(&name_parts).all(|(a, b)| a == b) && parts[n] == c.label
    })
}

/// `loki.write.default.receiver` => (the component, "receiver").
fn resolve<'c, 'a>(parts: &[String], components: &'c [Component<'a>]) -> Result<(&'c Component<'a>, String), String> {
    let text = parts.join(".");
    if let Some(c) = find_component(parts, components) {
        let n = c.name.split('.').count();
        {
            let Some(export) = parts.get(n + 1) else {
                return Err(format!("`{text}` names {} but no export of it", c.id()));
            };
            if !c.spec.exports.contains_key(export) {
                let known: Vec<&str> = c.spec.exports.keys().map(String::as_str).collect();
                let known = if known.is_empty() { "nothing".to_string() } else { known.join(", ") };
                return Err(format!("`{text}`: {} has no export `{export}` (it exports {known})", c.id()));
            }
            return Ok((c, export.clone()));
        }
    }
    Err(format!("dangling reference `{text}`: no such component in this config"))
}

/// Every forward_to element must be `<component>.<label>.receiver` of a receiver of the same signal.
fn check_forward_to(component: &Component, components: &[Component], findings: &mut Vec<Finding>) {
    for statement in &component.block.body.statements {
        let Statement::Attribute(a) = statement else {
            continue;
        };
        if a.name != "forward_to" {
            continue;
        }
        let Expr::Array(items, _) = &a.value else {
            findings.push(finding(a.pos, format!("{}: forward_to must be a list of receivers", component.id())));
            continue;
        };
        if items.is_empty() {
            findings.push(finding(a.pos, format!("{}: forward_to is empty, its data goes nowhere", component.id())));
        }
        for item in items {
            let Some(parts) = item.dotted() else {
                findings.push(finding(
                    item.pos(),
                    format!("{}: forward_to elements must be component receivers", component.id()),
                ));
                continue;
            };
            // Dangling references are reported by the reference check.
            let Ok((target, export)) = resolve(&parts, components) else {
                continue;
            };
            match (target.spec.exports.get(&export).copied().flatten(), component.spec.forwards) {
                (None, _) => findings.push(finding(
                    item.pos(),
                    format!("{}: forward_to `{}` is not a receiver", component.id(), parts.join(".")),
                )),
                (Some(got), Some(want)) if got != want => findings.push(finding(
                    item.pos(),
                    format!(
                        "{}: forward_to `{}` receives {got}, but this component sends {want}",
                        component.id(),
                        parts.join(".")
                    ),
                )),
                _ => {}
            }
        }
    }
}

/// ", did you mean `x`?" for a close known name.
fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .map(|k| (crate::edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Environment of the sidecar from ECS container definitions

/// Names of the `environment` and `secrets` entries of `container` in ECS container definitions
/// JSON (as in `aws ecs describe-task-definition` or the `container_definitions` attribute of a
/// Terraform plan), sorted. The ECS agent's own variables ([`ECS_AGENT_ENV`]) are not included.
pub fn env_names_from_container_definitions(json: &str, container: &str) -> Result<Vec<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("container definitions are not JSON: {e}"))?;
    let defs = value
        .as_array()
        .or_else(|| value.get("containerDefinitions").and_then(|v| v.as_array()))
        .ok_or("container definitions must be a JSON array (or an object with containerDefinitions)")?;
    let def = defs
        .iter()
        .find(|d| d.get("name").and_then(|n| n.as_str()) == Some(container))
        .ok_or_else(|| format!("no container named `{container}` in the container definitions"))?;
    let mut names = BTreeSet::new();
    for key in ["environment", "secrets"] {
        for entry in def.get(key).and_then(|v| v.as_array()).into_iter().flatten() {
            if let Some(name) = entry.get("name").and_then(|n| n.as_str()) {
                names.insert(name.to_string());
            }
        }
    }
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests;
