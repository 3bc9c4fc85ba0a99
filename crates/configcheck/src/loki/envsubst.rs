//! What `-config.expand-env=true` does to a Loki config before YAML sees it.
//!
//! Loki 3.7 (pkg/util/cfg/files.go) runs `envsubst.EvalEnv` of `github.com/drone/envsubst`
//! v1.0.3 over the whole file, comments included, and stops at start-up on its first error. This
//! is an independent implementation of that module's grammar, written from its parser's rules and
//! tests, quirks included:
//! - only `${` starts a reference; `$NAME` without braces and a `$` before any other character
//!   stay literal;
//! - outside references `$$` becomes `$`, and (v1.0.3 only) `\\` becomes `\` and `\/` becomes `/`;
//! - `${NAME}`, `${NAME=w}`, `${NAME:=w}`, `${NAME:-w}`, `${NAME:?w}`, `${NAME:+w}` (all five
//!   mean "w if NAME is empty"), `${#NAME}`, `${NAME:pos}`, `${NAME:pos:len}`, `${NAME^}`,
//!   `${NAME^^}`, `${NAME,}`, `${NAME,,}`, `${NAME#p}`, `${NAME##p}`, `${NAME%p}`, `${NAME%%p}`,
//!   `${NAME/a/b}`, `${NAME//a/b}`, `${NAME/#a/b}`, `${NAME/%a/b}`; words may nest `${...}`;
//! - `${NAME-w}`, `${NAME+w}` and `${NAME?w}` (no colon) are not supported: "missing closing
//!   brace"; a body that is not a name (`${...}`, `${}`) is "unable to parse variable name";
//! - an unset variable expands to "" without any error, `:?` included.

/// drone/envsubst's parse errors, with its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    BadSubstitution,
    MissingClosingBrace,
    ParseVariableName,
    ParseFuncSubstitution,
    ParseDefaultFunction,
}

impl ParseError {
    pub fn message(self) -> &'static str {
        match self {
            ParseError::BadSubstitution => "bad substitution",
            ParseError::MissingClosingBrace => "missing closing brace",
            ParseError::ParseVariableName => "unable to parse variable name",
            ParseError::ParseFuncSubstitution => "unable to parse substitution within function",
            ParseError::ParseDefaultFunction => "unable to parse default function",
        }
    }
}

/// A parse failure and the byte offset (in the input) of the `${` being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub error: ParseError,
    pub offset: usize,
}

/// One `${...}` reference: the variable it reads and where its `${` starts (byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Func { param: String, op: String, args: Vec<Vec<Node>>, offset: usize },
}

/// Parses `input` as drone/envsubst v1.0.3 does.
fn parse(input: &str) -> Result<Vec<Node>, Failure> {
    let mut p = Parser::new(input);
    p.parse_all()
}

/// Expands `input` with `lookup` (None = unset, read as ""), as Loki does before parsing YAML.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Failure> {
    let nodes = parse(input)?;
    let mut out = String::with_capacity(input.len());
    eval(&nodes, &lookup, &mut out);
    Ok(out)
}

/// Every variable `input` reads, in order, nested defaults included.
pub fn references(input: &str) -> Result<Vec<Reference>, Failure> {
    fn walk(nodes: &[Node], out: &mut Vec<Reference>) {
        for node in nodes {
            if let Node::Func { param, args, offset, .. } = node {
                out.push(Reference { name: param.clone(), offset: *offset });
                args.iter().for_each(|a| walk(a, out));
            }
        }
    }
    let nodes = parse(input)?;
    let mut out = Vec::new();
    walk(&nodes, &mut out);
    Ok(out)
}

// --- Scanner ------------------------------------------------------------------------------------

const EOF: char = '\0';
const IDENT: u8 = 1;
const LBRACK: u8 = 2;
const RBRACK: u8 = 4;
const ESCAPE: u8 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Illegal,
    Eof,
    Ident,
    Lbrack,
    Rbrack,
}

/// `(char, position in the token counting from 1)` → part of the token?
type Accept = fn(char, usize) -> bool;

struct Parser {
    /// The text left to scan; escapes are removed from it as they are read.
    buf: Vec<char>,
    /// Byte offset in the original input of each char of `buf`.
    origin: Vec<usize>,
    end: usize,
    pos: usize,
    start: usize,
    width: usize,
    mode: u8,
    accept: Accept,
    /// Offset of the outermost `${` being parsed, for error positions.
    func_at: usize,
}

impl Parser {
    fn new(input: &str) -> Parser {
        let (origin, buf) = input.char_indices().unzip();
        Parser { buf, origin, end: input.len(), pos: 0, start: 0, width: 0, mode: 0, accept: |_, _| true, func_at: 0 }
    }

    fn read(&mut self) -> char {
        match self.buf.get(self.pos) {
            Some(&c) => {
                self.width = 1;
                self.pos += 1;
                c
            }
            None => {
                self.width = 0;
                EOF
            }
        }
    }

    fn unread(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&mut self) -> char {
        let c = self.read();
        self.unread();
        c
    }

    /// Drops the escape character just read; the character after it becomes part of the token.
    fn skip(&mut self) {
        self.buf.remove(self.pos - 1);
        self.origin.remove(self.pos - 1);
    }

    fn text(&self) -> String {
        self.buf[self.start..self.pos].iter().collect()
    }

    fn offset_of(&self, index: usize) -> usize {
        self.origin.get(index).copied().unwrap_or(self.end)
    }

    fn scan(&mut self) -> Token {
        self.start = self.pos;
        let c = self.read();
        if c == EOF {
            Token::Eof
        } else if self.lbrack(c) {
            Token::Lbrack
        } else if self.rbrack(c) {
            Token::Rbrack
        } else if self.ident(c) {
            Token::Ident
        } else {
            Token::Illegal
        }
    }

    fn lbrack(&mut self, c: char) -> bool {
        if self.mode & LBRACK == 0 || c != '$' {
            return false;
        }
        if self.read() == '{' {
            return true;
        }
        self.unread();
        false
    }

    fn rbrack(&self, c: char) -> bool {
        self.mode & RBRACK != 0 && c == '}'
    }

    fn escaped(&mut self, c: char) -> bool {
        if self.mode & ESCAPE == 0 {
            return false;
        }
        match c {
            '$' => self.peek() == '$',
            '\\' => matches!(self.peek(), '/' | '\\'),
            _ => false,
        }
    }

    fn ident(&mut self, first: char) -> bool {
        if self.mode & IDENT == 0 {
            return false;
        }
        if self.escaped(first) {
            self.skip();
        } else if !(self.accept)(first, self.pos - self.start) {
            return false;
        }
        loop {
            let c = self.read();
            if c == EOF {
                self.unread();
                break;
            }
            if self.lbrack(c) {
                // Stop before the `${` that starts the next reference.
                self.unread();
                self.unread();
                break;
            }
            if self.escaped(c) {
                self.skip();
                continue;
            }
            if !(self.accept)(c, self.pos - self.start) {
                self.unread();
                break;
            }
        }
        true
    }

    // --- Grammar --------------------------------------------------------------------------------

    fn fail(&self, error: ParseError) -> Failure {
        Failure { error, offset: self.func_at }
    }

    fn parse_all(&mut self) -> Result<Vec<Node>, Failure> {
        let mut nodes = Vec::new();
        loop {
            self.accept = |_, _| true;
            self.mode = IDENT | LBRACK | ESCAPE;
            match self.scan() {
                Token::Ident => nodes.push(Node::Text(self.text())),
                Token::Eof => return Ok(nodes),
                Token::Lbrack => {
                    self.func_at = self.offset_of(self.start);
                    nodes.push(self.parse_func()?);
                }
                _ => return Err(self.fail(ParseError::BadSubstitution)),
            }
        }
    }

    /// After `${`: a name, then an operator or `}`.
    fn parse_func(&mut self) -> Result<Node, Failure> {
        let offset = self.offset_of(self.start);
        if self.peek() == '#' {
            return self.parse_length(offset);
        }
        self.accept = is_name_char;
        self.mode = IDENT;
        if self.scan() != Token::Ident {
            return Err(self.fail(ParseError::ParseVariableName));
        }
        let param = self.text();
        match self.peek() {
            ':' => return self.parse_colon(param, offset),
            '=' => return self.parse_default(param, offset),
            ',' | '^' => return self.parse_case(param, offset),
            '/' => return self.parse_replace(param, offset),
            '#' => return self.parse_remove(param, offset, |c, i| c == '#' && i < 3),
            '%' => return self.parse_remove(param, offset, |c, i| c == '%' && i < 3),
            _ => {}
        }
        self.mode = RBRACK;
        match self.scan() {
            Token::Rbrack => Ok(Node::Func { param, op: String::new(), args: Vec::new(), offset }),
            _ => Err(self.fail(ParseError::MissingClosingBrace)),
        }
    }

    /// One word of an operator: a nested reference or text the accept function allows.
    fn parse_word(&mut self, accept: Accept, mode: u8) -> Result<Vec<Node>, Failure> {
        self.accept = accept;
        self.mode = mode | LBRACK;
        match self.scan() {
            Token::Lbrack => Ok(vec![self.parse_func()?]),
            Token::Ident | Token::Rbrack => Ok(vec![Node::Text(self.text())]),
            _ => Err(self.fail(ParseError::ParseFuncSubstitution)),
        }
    }

    fn operator(&mut self, accept: Accept, error: ParseError) -> Result<String, Failure> {
        self.accept = accept;
        self.mode = IDENT;
        match self.scan() {
            Token::Ident => Ok(self.text()),
            _ => Err(self.fail(error)),
        }
    }

    fn close(&mut self) -> Result<(), Failure> {
        self.mode = RBRACK;
        match self.scan() {
            Token::Rbrack => Ok(()),
            _ => Err(self.fail(ParseError::BadSubstitution)),
        }
    }

    /// `${NAME:` is a default (`:=`, `:-`, `:?`, `:+`) or a substring (`:pos`, `:pos:len`).
    fn parse_colon(&mut self, param: String, offset: usize) -> Result<Node, Failure> {
        self.read();
        let next = self.peek();
        self.unread();
        if matches!(next, '=' | '-' | '?' | '+') {
            return self.parse_default(param, offset);
        }
        let op = self.operator(|c, i| i == 1 && c == ':', ParseError::BadSubstitution)?;
        let mut args = vec![self.parse_word(|c, _| c != ':' && c != '}', IDENT)?];
        self.accept = |c, _| c == ':';
        self.mode = IDENT | RBRACK;
        match self.scan() {
            Token::Rbrack => return Ok(Node::Func { param, op, args, offset }),
            Token::Ident => {}
            _ => return Err(self.fail(ParseError::BadSubstitution)),
        }
        args.push(self.parse_word(|c, _| c != '}', IDENT)?);
        self.close()?;
        Ok(Node::Func { param, op, args, offset })
    }

    fn parse_default(&mut self, param: String, offset: usize) -> Result<Node, Failure> {
        let accept: Accept = if self.peek() == '=' {
            |c, i| i == 1 && c == '='
        } else {
            |c, i| (i == 1 && c == ':') || (i == 2 && matches!(c, '=' | '-' | '?' | '+'))
        };
        let op = self.operator(accept, ParseError::ParseDefaultFunction)?;
        let mut args = Vec::new();
        loop {
            if self.peek() == '}' {
                self.close()?;
                return Ok(Node::Func { param, op, args, offset });
            }
            args.push(self.parse_word(|c, _| c != '}', IDENT)?);
        }
    }

    fn parse_case(&mut self, param: String, offset: usize) -> Result<Node, Failure> {
        let op = self.operator(|c, i| matches!(c, ',' | '^') && i < 3, ParseError::BadSubstitution)?;
        self.close()?;
        Ok(Node::Func { param, op, args: Vec::new(), offset })
    }

    fn parse_remove(&mut self, param: String, offset: usize, accept: Accept) -> Result<Node, Failure> {
        let op = self.operator(accept, ParseError::BadSubstitution)?;
        let args = vec![self.parse_word(|c, _| c != '}', IDENT)?];
        self.close()?;
        Ok(Node::Func { param, op, args, offset })
    }

    fn parse_replace(&mut self, param: String, offset: usize) -> Result<Node, Failure> {
        let op = self.operator(
            |c, i| (i == 1 && c == '/') || (i == 2 && matches!(c, '/' | '#' | '%')),
            ParseError::BadSubstitution,
        )?;
        let mut args = vec![self.parse_word(|c, _| c != '/', IDENT | ESCAPE)?];
        self.operator(|c, _| c == '/', ParseError::BadSubstitution)?;
        if self.peek() != '}' {
            args.push(self.parse_word(|c, _| c != '}', IDENT | ESCAPE)?);
        }
        self.close()?;
        Ok(Node::Func { param, op, args, offset })
    }

    fn parse_length(&mut self, offset: usize) -> Result<Node, Failure> {
        let op = self.operator(|c, i| c == '#' && i == 1, ParseError::BadSubstitution)?;
        let param = self.operator(is_name_char, ParseError::BadSubstitution)?;
        self.close()?;
        Ok(Node::Func { param, op, args: Vec::new(), offset })
    }
}

/// Go's unicode.IsLetter || unicode.IsDigit || '_'.
fn is_name_char(c: char, _: usize) -> bool {
    c.is_alphabetic() || c.is_numeric() || c == '_'
}

// --- Evaluation ---------------------------------------------------------------------------------

fn eval(nodes: &[Node], lookup: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Func { param, op, args, .. } => {
                let args: Vec<String> = args
                    .iter()
                    .map(|a| {
                        let mut s = String::new();
                        eval(a, lookup, &mut s);
                        s
                    })
                    .collect();
                let value = lookup(param).unwrap_or_default();
                out.push_str(&apply(op, &value, &args));
            }
        }
    }
}

fn apply(op: &str, s: &str, args: &[String]) -> String {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (op, arg(0)) {
        (",", _) => map_first(s, |c| c.to_lowercase().collect()),
        (",,", _) => s.to_lowercase(),
        ("^", _) => map_first(s, |c| c.to_uppercase().collect()),
        ("^^", _) => s.to_uppercase(),
        ("#", None) => s.len().to_string(),
        ("#", Some(p)) => trim_prefix(s, p, false),
        ("##", Some(p)) => trim_prefix(s, p, true),
        ("%", Some(p)) => reverse(&trim_prefix(&reverse(s), &reverse(p), false)),
        ("%%", Some(p)) => reverse(&trim_prefix(&reverse(s), &reverse(p), true)),
        (":", Some(pos)) => substring(s, pos, arg(1)),
        ("/" | "//", Some(from)) => {
            let to = arg(1).unwrap_or("");
            if op == "/" {
                s.replacen(from, to, 1)
            } else {
                s.replace(from, to)
            }
        }
        ("/#", Some(from)) if args.len() == 2 && s.starts_with(from) => s.replacen(from, &args[1], 1),
        ("/%", Some(from)) if args.len() == 2 && s.ends_with(from) => {
            format!("{}{}", &s[..s.len() - from.len()], args[1])
        }
        ("##" | "%" | "%%" | "/#" | "/%", _) => s.to_string(),
        // Plain `${NAME}` and every default form: the value, or the words when it is empty.
        _ if s.is_empty() && !args.is_empty() => args.concat(),
        _ => s.to_string(),
    }
}

fn map_first(s: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

fn reverse(s: &str) -> String {
    s.chars().rev().collect()
}

/// Bash-like substring on bytes, as Go slices strings; a position or length that is not a number
/// leaves the value unchanged.
fn substring(s: &str, pos: &str, len: Option<&str>) -> String {
    let bytes = s.as_bytes();
    let Ok(mut p) = pos.parse::<i64>() else { return s.to_string() };
    let n = bytes.len() as i64;
    if p < 0 {
        p = (n + p).max(0);
    }
    let slice = |a: i64, b: i64| String::from_utf8_lossy(&bytes[a as usize..b as usize]).into_owned();
    match len {
        None => {
            if p < n {
                slice(p, n)
            } else {
                String::new()
            }
        }
        Some(l) => {
            let Ok(l) = l.parse::<i64>() else { return s.to_string() };
            if p + l >= n {
                if p < n {
                    slice(p, n)
                } else {
                    String::new()
                }
            } else {
                slice(p, (p + l).max(p))
            }
        }
    }
}

/// Removes the shortest (or longest) prefix of `s` that the glob `pattern` matches.
fn trim_prefix(s: &str, pattern: &str, longest: bool) -> String {
    let ends = s.char_indices().map(|(i, _)| i).skip(1).chain([s.len()]).filter(|&e| e > 0);
    let matching: Vec<usize> = ends.filter(|&e| glob(pattern, &s[..e])).collect();
    let end = if longest { matching.last() } else { matching.first() };
    match end {
        Some(&e) => s[e..].to_string(),
        None => s.to_string(),
    }
}

/// Go's path.Match: `*` and `?` never match `/`; `[...]` classes with ranges and `^`; `\` quotes.
fn glob(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = p.get(i) == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            i += 1;
            let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
                i += 1;
                let h = if p[i] == '\\' {
                    i += 1;
                    *p.get(i)?
                } else {
                    p[i]
                };
                i += 1;
                h
            } else {
                lo
            };
            matched |= lo <= c && c <= hi;
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).take_while(|&k| k == 0 || n[k - 1] != '/').any(|k| go(&p[1..], &n[k..])),
            Some('?') => n.first().is_some_and(|&c| c != '/') && go(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(p, n.first().copied().unwrap_or('\0'))) {
                (Some(&c), Some((true, used))) if c != '/' => go(&p[used..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests;
